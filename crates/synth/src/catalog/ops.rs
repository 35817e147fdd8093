//! OPS (Operationen- und Prozedurenschlüssel) codes and which diagnoses they follow.

pub const SYSTEM: &str = "http://fhir.de/CodeSystem/bfarm/ops";
pub const VERSION: &str = "2025";

/// (code, German display).
pub static CODES: &[(&str, &str)] = &[
    (
        "8-930",
        "Monitoring von Atmung, Herz und Kreislauf ohne Messung des Pulmonalarteriendruckes und des zentralen Venendruckes",
    ),
    (
        "8-931.0",
        "Monitoring mit Messung des zentralen Venendruckes: Ohne kontinuierliche reflektionsspektrometrische Messung der zentralvenösen Sauerstoffsättigung",
    ),
    (
        "8-980.0",
        "Intensivmedizinische Komplexbehandlung (Basisprozedur): 1 bis 184 Aufwandspunkte",
    ),
    (
        "8-800.c0",
        "Transfusion von Vollblut, Erythrozytenkonzentrat und Thrombozytenkonzentrat: Erythrozytenkonzentrat: 1 TE bis unter 6 TE",
    ),
    (
        "8-831.0",
        "Legen und Wechsel eines Katheters in zentralvenöse Gefäße: Legen",
    ),
    (
        "8-854.2",
        "Hämodialyse: Intermittierend, Antikoagulation mit Heparin oder ohne Antikoagulation",
    ),
    (
        "8-542.11",
        "Nicht komplexe Chemotherapie: 1 Tag: 1 Substanz",
    ),
    (
        "8-543.21",
        "Mittelgradig komplexe und intensive Blockchemotherapie: 2 Tage: 1 Substanz",
    ),
    (
        "8-522.91",
        "Hochvoltstrahlentherapie: Linearbeschleuniger, intensitätsmodulierte Radiotherapie: Mit bildgestützter Einstellung",
    ),
    (
        "8-550.1",
        "Geriatrische frührehabilitative Komplexbehandlung: Mindestens 14 Behandlungstage und 20 Therapieeinheiten",
    ),
    (
        "8-561.1",
        "Funktionsorientierte physikalische Therapie: Funktionsorientierte physikalische Monotherapie",
    ),
    ("8-701", "Einfache endotracheale Intubation"),
    ("8-706", "Anlegen einer Maske zur maschinellen Beatmung"),
    (
        "8-810.j4",
        "Transfusion von Plasmabestandteilen: Fibrinogenkonzentrat: 1,0 g bis unter 2,0 g",
    ),
    (
        "8-836.0c",
        "Perkutan-transluminale Gefäßintervention: Ballon-Angioplastie: Gefäße Unterschenkel",
    ),
    (
        "8-837.00",
        "Perkutan-transluminale Gefäßintervention an Herz und Koronargefäßen: Ballon-Angioplastie: Eine Koronararterie",
    ),
    (
        "8-837.m0",
        "Perkutan-transluminale Gefäßintervention an Herz und Koronargefäßen: Einlegen eines medikamentefreisetzenden Stents: Ein Stent in eine Koronararterie",
    ),
    (
        "8-640.0",
        "Externe elektrische Defibrillation (Kardioversion) des Herzrhythmus: Synchronisiert (Kardioversion)",
    ),
    (
        "8-981.20",
        "Neurologische Komplexbehandlung des akuten Schlaganfalls: Mindestens 24 bis höchstens 72 Stunden",
    ),
    (
        "8-020.8",
        "Therapeutische Injektion: Systemische Thrombolyse",
    ),
    (
        "8-836.80",
        "Perkutan-transluminale Gefäßintervention: Thrombektomie: Gefäße intrakraniell",
    ),
    (
        "1-275.0",
        "Transarterielle Linksherz-Katheteruntersuchung: Koronarangiographie ohne weitere Maßnahmen",
    ),
    (
        "1-632.0",
        "Diagnostische Ösophagogastroduodenoskopie: Bei normalem Situs",
    ),
    ("1-650.2", "Diagnostische Koloskopie: Total, mit Ileoskopie"),
    (
        "1-440.a",
        "Endoskopische Biopsie an oberem Verdauungstrakt, Gallengängen und Pankreas: 1 bis 5 Biopsien am oberen Verdauungstrakt",
    ),
    (
        "1-444.7",
        "Endoskopische Biopsie am unteren Verdauungstrakt: 1 bis 5 Biopsien",
    ),
    (
        "1-620.00",
        "Diagnostische Tracheobronchoskopie: Mit flexiblem Instrument: Ohne weitere Maßnahmen",
    ),
    ("1-710", "Ganzkörperplethysmographie"),
    (
        "1-207.0",
        "Elektroenzephalographie (EEG): Routine-EEG (10-20-System)",
    ),
    (
        "1-204.2",
        "Untersuchung des Liquorsystems: Lumbale Liquorpunktion zur Liquorentnahme",
    ),
    (
        "1-494.31",
        "Perkutane Biopsie an anderen Organen und Geweben mit Steuerung durch bildgebende Verfahren: Mamma: Durch Ultraschall",
    ),
    (
        "1-463.1",
        "Perkutane Biopsie an Harnorganen und männlichen Genitalorganen mit Steuerung durch bildgebende Verfahren: Prostata",
    ),
    ("3-200", "Native Computertomographie des Schädels"),
    ("3-222", "Computertomographie des Thorax mit Kontrastmittel"),
    (
        "3-225",
        "Computertomographie des Abdomens mit Kontrastmittel",
    ),
    ("3-202", "Native Computertomographie des Thorax"),
    ("3-800", "Native Magnetresonanztomographie des Schädels"),
    (
        "3-820",
        "Magnetresonanztomographie des Schädels mit Kontrastmittel",
    ),
    (
        "3-802",
        "Native Magnetresonanztomographie von Wirbelsäule und Rückenmark",
    ),
    ("3-052", "Transösophageale Echokardiographie [TEE]"),
    (
        "3-990",
        "Computergestützte Bilddatenanalyse mit 3D-Auswertung",
    ),
    (
        "5-470.11",
        "Appendektomie: Laparoskopisch: Absetzung durch Klammern (Stapler)",
    ),
    (
        "5-511.11",
        "Cholezystektomie: Einfach, laparoskopisch: Ohne laparoskopische Revision der Gallengänge",
    ),
    (
        "5-530.31",
        "Verschluss einer Hernia inguinalis: Mit alloplastischem, allogenem oder xenogenem Material: Laparoskopisch transperitoneal [TAPP]",
    ),
    (
        "5-455.41",
        "Partielle Resektion des Dickdarmes: Hemikolektomie rechts: Offen chirurgisch mit Anastomose",
    ),
    (
        "5-484.31",
        "Rektumresektion unter Sphinktererhaltung: Anteriore Rektumresektion: Offen chirurgisch mit Anastomose",
    ),
    (
        "5-324.71",
        "Einfache Lobektomie und Bilobektomie der Lunge: Lobektomie ohne radikale Lymphadenektomie: Thorakoskopisch",
    ),
    (
        "5-870.a1",
        "Partielle (brusterhaltende) Exzision der Mamma und Destruktion von Mammagewebe: Partielle Resektion: Defektdeckung durch Mobilisation und Adaptation von bis zu 25 % des Brustgewebes",
    ),
    (
        "5-604.02",
        "Radikale Prostatovesikulektomie: Retropubisch: Mit regionaler Lymphadenektomie",
    ),
    (
        "5-601.1",
        "Transurethrale Exzision und Destruktion von Prostatagewebe: Elektroresektion",
    ),
    (
        "5-573.40",
        "Transurethrale Inzision, Exzision, Destruktion und Resektion von (erkranktem) Gewebe der Harnblase: Resektion: Nicht fluoreszenzgestützt",
    ),
    (
        "5-820.00",
        "Implantation einer Endoprothese am Hüftgelenk: Totalendoprothese: Nicht zementiert",
    ),
    (
        "5-822.g1",
        "Implantation einer Endoprothese am Kniegelenk: Bikondyläre Oberflächenersatzprothese: Zementiert",
    ),
    (
        "5-790.5f",
        "Geschlossene Reposition einer Fraktur oder Epiphysenlösung mit Osteosynthese: Durch Marknagel mit Gelenkkomponente: Femur proximal",
    ),
    (
        "5-794.k6",
        "Offene Reposition einer Mehrfragment-Fraktur im Gelenkbereich eines langen Röhrenknochens: Durch winkelstabile Platte: Radius distal",
    ),
    (
        "5-793.3r",
        "Offene Reposition einer einfachen Fraktur im Gelenkbereich eines langen Röhrenknochens: Durch Platte: Fibula distal",
    ),
    (
        "5-896.1f",
        "Chirurgische Wundtoilette [Wunddebridement] mit Entfernung von erkranktem Gewebe an Haut und Unterhaut: Großflächig: Unterschenkel",
    ),
    (
        "5-900.04",
        "Einfache Wiederherstellung der Oberflächenkontinuität an Haut und Unterhaut: Primärnaht: Sonstige Teile Kopf",
    ),
    (
        "5-377.30",
        "Implantation eines Herzschrittmachers, Defibrillators und Ereignis-Rekorders: Schrittmacher, Zweikammersystem: Ohne antitachykarde Stimulation",
    ),
    (
        "5-35a.00",
        "Minimalinvasive Operationen an Herzklappen: Implantation eines Aortenklappenersatzes: Endovaskulär",
    ),
    (
        "5-381.70",
        "Endarteriektomie: Arterien Oberschenkel: A. femoralis",
    ),
    ("5-740.0", "Klassische Sectio caesarea: Primär"),
    (
        "5-758.2",
        "Rekonstruktion weiblicher Geschlechtsorgane nach Ruptur, post partum [Dammriss]: Vagina",
    ),
    ("9-260", "Überwachung und Leitung einer normalen Geburt"),
    (
        "9-262.0",
        "Postnatale Versorgung des Neugeborenen: Routineversorgung",
    ),
    (
        "8-560.2",
        "Lichttherapie: Lichttherapie des Neugeborenen (bei Hyperbilirubinämie)",
    ),
    (
        "8-711.00",
        "Maschinelle Beatmung und Atemunterstützung bei Neugeborenen und Säuglingen: Atemunterstützung mit kontinuierlichem positiven Atemwegsdruck [CPAP]: Bei Neugeborenen (1. bis 28. Lebenstag)",
    ),
    (
        "5-281.0",
        "Tonsillektomie (ohne Adenotomie): Mit Dissektionstechnik",
    ),
    (
        "5-144.5a",
        "Extrakapsuläre Extraktion der Linse [ECCE]: Linsenkernverflüssigung [Phakoemulsifikation] über kornealen Zugang: Mit Einführung einer kapselfixierten Hinterkammerlinse, monofokale Intraokularlinse",
    ),
    (
        "9-607",
        "Regelbehandlung bei psychischen und psychosomatischen Störungen und Verhaltensstörungen bei Erwachsenen",
    ),
    (
        "9-984.7",
        "Pflegebedürftigkeit: Pflegebedürftig nach Pflegegrad 2",
    ),
    (
        "9-984.8",
        "Pflegebedürftigkeit: Pflegebedürftig nach Pflegegrad 3",
    ),
    (
        "9-401.00",
        "Psychosoziale Interventionen: Sozialrechtliche Beratung: Mindestens 50 Minuten bis 2 Stunden",
    ),
    (
        "1-771",
        "Standardisiertes geriatrisches Basisassessment (GBA)",
    ),
    (
        "8-191.00",
        "Verband bei großflächigen und schwerwiegenden Hauterkrankungen: Feuchtverband mit antiseptischer Lösung: Ohne Debridement-Bad",
    ),
];

/// Procedures that follow a diagnosis, by ICD code prefix. The first matching prefix wins, so more
/// specific prefixes come first. Each inner list is a menu: one to three entries are drawn.
pub static BY_DIAGNOSIS: &[(&str, &[&str])] = &[
    ("A41", &["8-930", "8-980.0", "8-831.0", "8-931.0"]),
    ("J96", &["8-706", "8-930", "8-980.0", "8-701"]),
    ("J18", &["3-202", "8-930", "1-620.00"]),
    ("J15", &["3-202", "8-930"]),
    ("J44", &["1-710", "8-706", "3-202"]),
    ("J84", &["1-710", "1-620.00", "3-202"]),
    ("J93", &["3-202", "8-930"]),
    ("J35", &["5-281.0"]),
    ("K35", &["5-470.11", "3-225"]),
    ("K80", &["5-511.11", "3-225", "1-632.0"]),
    ("K85", &["3-225", "1-632.0", "8-930"]),
    ("K92", &["1-632.0", "1-440.a", "8-800.c0", "1-650.2"]),
    ("K25", &["1-632.0", "1-440.a"]),
    ("K56", &["3-225", "8-930"]),
    ("K57", &["3-225", "1-650.2"]),
    ("K40", &["5-530.31"]),
    ("K42", &["5-530.31"]),
    ("K2", &["1-632.0", "1-440.a"]),
    ("K5", &["1-650.2", "1-444.7"]),
    ("K7", &["1-632.0", "3-225"]),
    ("D12", &["1-650.2", "1-444.7"]),
    ("I21", &["1-275.0", "8-837.m0", "8-837.00", "8-930"]),
    ("I20", &["1-275.0", "8-837.m0"]),
    ("I25", &["1-275.0", "8-837.m0"]),
    ("I35", &["5-35a.00", "3-052", "1-275.0"]),
    ("I44", &["5-377.30", "8-930"]),
    ("I49", &["5-377.30"]),
    ("I48", &["8-640.0", "3-052"]),
    ("I50", &["8-930", "3-052"]),
    (
        "I63",
        &["8-981.20", "3-200", "8-020.8", "8-836.80", "3-800"],
    ),
    ("I61", &["3-200", "8-981.20", "8-930"]),
    ("G45", &["3-200", "3-800", "8-981.20"]),
    ("I70", &["8-836.0c", "5-381.70"]),
    ("I73", &["8-836.0c"]),
    ("I26", &["3-222", "8-930"]),
    ("I71", &["3-225"]),
    ("S72", &["5-790.5f", "5-820.00", "8-800.c0", "8-561.1"]),
    ("S52", &["5-794.k6"]),
    ("S82", &["5-793.3r"]),
    ("S06", &["3-200", "8-930"]),
    ("S01", &["5-900.04", "3-200"]),
    ("S32", &["3-802", "8-561.1"]),
    ("S42", &["5-794.k6", "8-561.1"]),
    ("M16", &["5-820.00", "8-561.1"]),
    ("M17", &["5-822.g1", "8-561.1"]),
    ("M48", &["3-802", "8-561.1"]),
    ("M54", &["3-802", "8-561.1"]),
    ("L03", &["5-896.1f"]),
    ("T81", &["5-896.1f"]),
    ("C50", &["5-870.a1", "1-494.31", "8-542.11", "8-522.91"]),
    ("C18", &["5-455.41", "1-650.2", "8-543.21", "3-225"]),
    ("C20", &["5-484.31", "1-650.2", "8-522.91"]),
    ("C34", &["5-324.71", "1-620.00", "3-222", "8-542.11"]),
    ("C61", &["5-604.02", "1-463.1", "8-522.91"]),
    ("C67", &["5-573.40"]),
    ("C7", &["8-542.11", "3-990", "3-820"]),
    ("C9", &["8-543.21", "8-800.c0", "8-542.11"]),
    ("C8", &["8-543.21", "8-542.11"]),
    ("C", &["8-542.11", "3-225", "3-222"]),
    ("N40", &["5-601.1"]),
    ("N18.5", &["8-854.2"]),
    ("Z99.2", &["8-854.2"]),
    ("N17", &["8-854.2", "8-831.0"]),
    ("D62", &["8-800.c0"]),
    ("D63", &["8-800.c0"]),
    ("G00", &["1-204.2", "3-200"]),
    ("G40", &["1-207.0", "3-800"]),
    ("R56", &["1-207.0", "3-200"]),
    ("G35", &["3-820", "1-204.2"]),
    ("F0", &["1-771", "9-984.8"]),
    ("G30", &["1-771", "9-984.8"]),
    ("F", &["9-607", "9-401.00"]),
    ("H25", &["5-144.5a"]),
    ("O80", &["9-260"]),
    ("O82", &["5-740.0"]),
    ("O70", &["5-758.2", "9-260"]),
    ("Z38", &["9-262.0"]),
    ("P59", &["8-560.2", "9-262.0"]),
    ("P07", &["8-711.00", "9-262.0"]),
    ("P22", &["8-711.00"]),
    ("L2", &["8-191.00"]),
];

/// Extra procedures any older inpatient may get (assessment, care level).
pub static GERIATRIC: &[&str] = &["1-771", "9-984.7", "9-984.8", "8-550.1", "8-561.1"];

pub fn display(code: &str) -> &'static str {
    CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("", |(_, d)| d)
}

/// Procedure menu for a diagnosis, if any.
pub fn for_diagnosis(icd: &str) -> Option<&'static [&'static str]> {
    BY_DIAGNOSIS
        .iter()
        .find(|(prefix, _)| icd.starts_with(prefix))
        .map(|(_, codes)| *codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mapped_code_has_a_display() {
        for (_, codes) in BY_DIAGNOSIS {
            assert!(!codes.is_empty(), "empty procedure menu");
            for c in *codes {
                assert!(!display(c).is_empty(), "OPS {c} missing from CODES");
            }
        }
        for c in GERIATRIC {
            assert!(!display(c).is_empty(), "OPS {c} missing from CODES");
        }
    }
}
