//! Fachabteilungsschlüssel (DKG, §301 SGB V) of the departments the synthetic hospitals have.

pub const SYSTEM: &str = "http://fhir.de/CodeSystem/dkgev/Fachabteilungsschluessel";

pub const INNERE: &str = "0100";
pub const GERIATRIE: &str = "0200";
pub const KARDIOLOGIE: &str = "0300";
pub const NEPHROLOGIE: &str = "0400";
pub const ONKOLOGIE: &str = "0500";
pub const ENDOKRINOLOGIE: &str = "0600";
pub const GASTROENTEROLOGIE: &str = "0700";
pub const PNEUMOLOGIE: &str = "0800";
pub const RHEUMATOLOGIE: &str = "0900";
pub const PAEDIATRIE: &str = "1000";
pub const NEONATOLOGIE: &str = "1200";
pub const CHIRURGIE: &str = "1500";
pub const UNFALLCHIRURGIE: &str = "1600";
pub const NEUROCHIRURGIE: &str = "1700";
pub const GEFAESSCHIRURGIE: &str = "1800";
pub const UROLOGIE: &str = "2200";
pub const ORTHOPAEDIE: &str = "2300";
pub const GYNAEKOLOGIE: &str = "2400";
pub const HNO: &str = "2600";
pub const AUGEN: &str = "2700";
pub const NEUROLOGIE: &str = "2800";
pub const PSYCHIATRIE: &str = "2900";
pub const KJP: &str = "3000";
pub const PSYCHOSOMATIK: &str = "3100";
pub const DERMATOLOGIE: &str = "3400";
pub const INTENSIV: &str = "3600";

/// (code, German name), in code order.
pub static ALL: &[(&str, &str)] = &[
    (INNERE, "Innere Medizin"),
    (GERIATRIE, "Geriatrie"),
    (KARDIOLOGIE, "Kardiologie"),
    (NEPHROLOGIE, "Nephrologie"),
    (ONKOLOGIE, "Hämatologie und internistische Onkologie"),
    (ENDOKRINOLOGIE, "Endokrinologie"),
    (GASTROENTEROLOGIE, "Gastroenterologie"),
    (PNEUMOLOGIE, "Pneumologie"),
    (RHEUMATOLOGIE, "Rheumatologie"),
    (PAEDIATRIE, "Pädiatrie"),
    (NEONATOLOGIE, "Neonatologie"),
    (CHIRURGIE, "Allgemeine Chirurgie"),
    (UNFALLCHIRURGIE, "Unfallchirurgie"),
    (NEUROCHIRURGIE, "Neurochirurgie"),
    (GEFAESSCHIRURGIE, "Gefäßchirurgie"),
    (UROLOGIE, "Urologie"),
    (ORTHOPAEDIE, "Orthopädie"),
    (GYNAEKOLOGIE, "Frauenheilkunde und Geburtshilfe"),
    (HNO, "Hals-, Nasen-, Ohrenheilkunde"),
    (AUGEN, "Augenheilkunde"),
    (NEUROLOGIE, "Neurologie"),
    (PSYCHIATRIE, "Allgemeine Psychiatrie"),
    (KJP, "Kinder- und Jugendpsychiatrie"),
    (PSYCHOSOMATIK, "Psychosomatik/Psychotherapie"),
    (DERMATOLOGIE, "Dermatologie"),
    (INTENSIV, "Intensivmedizin"),
];

/// Departments every synthetic hospital has, whatever its size: cases of departments a hospital
/// lacks are treated in internal medicine or general surgery, as in a real Grundversorger.
pub static CORE: &[&str] = &[
    INNERE,
    CHIRURGIE,
    UNFALLCHIRURGIE,
    GYNAEKOLOGIE,
    PAEDIATRIE,
    INTENSIV,
];

pub fn name(code: &str) -> &'static str {
    ALL.iter()
        .find(|(c, _)| *c == code)
        .map_or("Sonstige Fachabteilung", |(_, n)| n)
}

/// Departments that are surgical, so their cases get the surgical fallback.
pub fn is_surgical(code: &str) -> bool {
    matches!(
        code,
        CHIRURGIE | UNFALLCHIRURGIE | NEUROCHIRURGIE | GEFAESSCHIRURGIE | UROLOGIE | ORTHOPAEDIE
    )
}
