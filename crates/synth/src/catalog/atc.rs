//! ATC-coded medications with a typical single dose and route, and which diagnoses they treat.

pub const SYSTEM: &str = "http://fhir.de/CodeSystem/bfarm/atc";
pub const VERSION: &str = "2025";
pub const ROUTE_SYSTEM: &str = "http://standardterms.edqm.eu";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Oral,
    Intravenous,
    Subcutaneous,
    Inhalation,
    Ocular,
}

impl Route {
    /// EDQM Standard Terms code and display.
    pub fn edqm(self) -> (&'static str, &'static str) {
        match self {
            Route::Oral => ("20053000", "Oral use"),
            Route::Intravenous => ("20045000", "Intravenous use"),
            Route::Subcutaneous => ("20066000", "Subcutaneous use"),
            Route::Inhalation => ("20020000", "Inhalation use"),
            Route::Ocular => ("20051000", "Ocular use"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Atc {
    pub code: &'static str,
    pub display: &'static str,
    /// Single dose in `unit` (UCUM).
    pub dose: f64,
    pub unit: &'static str,
    pub route: Route,
    /// Administrations per day.
    pub per_day: u8,
}

const fn m(
    code: &'static str,
    display: &'static str,
    dose: f64,
    unit: &'static str,
    route: Route,
    per_day: u8,
) -> Atc {
    Atc {
        code,
        display,
        dose,
        unit,
        route,
        per_day,
    }
}

use Route::*;

pub static CODES: &[Atc] = &[
    m("A10BA02", "Metformin", 1000.0, "mg", Oral, 2),
    m("A10BK01", "Dapagliflozin", 10.0, "mg", Oral, 1),
    m("A10BH01", "Sitagliptin", 100.0, "mg", Oral, 1),
    m("A10AE04", "Insulin glargin", 20.0, "[iU]", Subcutaneous, 1),
    m("A10AB05", "Insulin aspart", 6.0, "[iU]", Subcutaneous, 3),
    m("C09AA05", "Ramipril", 5.0, "mg", Oral, 1),
    m("C09CA01", "Losartan", 50.0, "mg", Oral, 1),
    m("C07AB07", "Bisoprolol", 5.0, "mg", Oral, 1),
    m("C07AB02", "Metoprolol", 47.5, "mg", Oral, 2),
    m("C08CA01", "Amlodipin", 5.0, "mg", Oral, 1),
    m("C03AA03", "Hydrochlorothiazid", 12.5, "mg", Oral, 1),
    m("C03CA04", "Torasemid", 10.0, "mg", Oral, 1),
    m("C03CA01", "Furosemid", 40.0, "mg", Intravenous, 2),
    m("C03DA01", "Spironolacton", 25.0, "mg", Oral, 1),
    m("C09DX04", "Valsartan und Sacubitril", 49.0, "mg", Oral, 2),
    m("C10AA05", "Atorvastatin", 20.0, "mg", Oral, 1),
    m("C10AA01", "Simvastatin", 40.0, "mg", Oral, 1),
    m("C10AX09", "Ezetimib", 10.0, "mg", Oral, 1),
    m("B01AC06", "Acetylsalicylsäure", 100.0, "mg", Oral, 1),
    m("B01AC04", "Clopidogrel", 75.0, "mg", Oral, 1),
    m("B01AC24", "Ticagrelor", 90.0, "mg", Oral, 2),
    m("B01AF01", "Rivaroxaban", 20.0, "mg", Oral, 1),
    m("B01AF02", "Apixaban", 5.0, "mg", Oral, 2),
    m("B01AB05", "Enoxaparin", 40.0, "mg", Subcutaneous, 1),
    m("B01AB01", "Heparin", 5000.0, "[iU]", Intravenous, 2),
    m("C01AA05", "Digoxin", 0.1, "mg", Oral, 1),
    m("C01BD01", "Amiodaron", 200.0, "mg", Oral, 1),
    m(
        "R03AK06",
        "Salmeterol und Fluticason",
        50.0,
        "ug",
        Inhalation,
        2,
    ),
    m("R03BB04", "Tiotropiumbromid", 18.0, "ug", Inhalation, 1),
    m("R03AC02", "Salbutamol", 100.0, "ug", Inhalation, 3),
    m("H02AB06", "Prednisolon", 40.0, "mg", Oral, 1),
    m("H02AB02", "Dexamethason", 8.0, "mg", Intravenous, 1),
    m(
        "J01CR02",
        "Amoxicillin und Clavulansäure",
        875.0,
        "mg",
        Oral,
        2,
    ),
    m("J01DD04", "Ceftriaxon", 2000.0, "mg", Intravenous, 1),
    m(
        "J01CR05",
        "Piperacillin und Tazobactam",
        4500.0,
        "mg",
        Intravenous,
        3,
    ),
    m("J01MA02", "Ciprofloxacin", 500.0, "mg", Oral, 2),
    m("J01XA01", "Vancomycin", 1000.0, "mg", Intravenous, 2),
    m("J01FA10", "Azithromycin", 500.0, "mg", Oral, 1),
    m("J01XE01", "Nitrofurantoin", 100.0, "mg", Oral, 2),
    m("J01DC02", "Cefuroxim", 1500.0, "mg", Intravenous, 3),
    m("J01XD01", "Metronidazol", 500.0, "mg", Intravenous, 3),
    m("J05AB11", "Valaciclovir", 1000.0, "mg", Oral, 3),
    m("N02BE01", "Paracetamol", 1000.0, "mg", Oral, 3),
    m("N02BB02", "Metamizol-Natrium", 1000.0, "mg", Intravenous, 3),
    m("N02AA01", "Morphin", 5.0, "mg", Subcutaneous, 4),
    m("N02AX02", "Tramadol", 50.0, "mg", Oral, 3),
    m("M01AE01", "Ibuprofen", 400.0, "mg", Oral, 3),
    m("A02BC02", "Pantoprazol", 40.0, "mg", Oral, 1),
    m("A04AA01", "Ondansetron", 4.0, "mg", Intravenous, 2),
    m("A06AD65", "Macrogol, Kombinationen", 13.0, "g", Oral, 1),
    m("H03AA01", "Levothyroxin-Natrium", 75.0, "ug", Oral, 1),
    m("H03BB02", "Thiamazol", 10.0, "mg", Oral, 1),
    m("A11CC05", "Colecalciferol", 1000.0, "[iU]", Oral, 1),
    m("M04AA01", "Allopurinol", 300.0, "mg", Oral, 1),
    m("M05BA04", "Alendronsäure", 70.0, "mg", Oral, 1),
    m("L04AX03", "Methotrexat", 15.0, "mg", Subcutaneous, 1),
    m("N06AB10", "Escitalopram", 10.0, "mg", Oral, 1),
    m("N06AX11", "Mirtazapin", 15.0, "mg", Oral, 1),
    m("N06AX16", "Venlafaxin", 75.0, "mg", Oral, 1),
    m("N05AH04", "Quetiapin", 50.0, "mg", Oral, 2),
    m("N05AX08", "Risperidon", 2.0, "mg", Oral, 1),
    m("N05AN01", "Lithium", 450.0, "mg", Oral, 2),
    m("N05BA01", "Diazepam", 5.0, "mg", Oral, 1),
    m("N03AX14", "Levetiracetam", 500.0, "mg", Oral, 2),
    m("N03AX12", "Gabapentin", 300.0, "mg", Oral, 3),
    m(
        "N04BA02",
        "Levodopa und Decarboxylasehemmer",
        100.0,
        "mg",
        Oral,
        3,
    ),
    m("N06DA02", "Donepezil", 10.0, "mg", Oral, 1),
    m("N06BA04", "Methylphenidat", 10.0, "mg", Oral, 2),
    m("N07BB01", "Disulfiram", 200.0, "mg", Oral, 1),
    m("N02CC01", "Sumatriptan", 50.0, "mg", Oral, 1),
    m("L02BA01", "Tamoxifen", 20.0, "mg", Oral, 1),
    m("L02BG04", "Letrozol", 2.5, "mg", Oral, 1),
    m("L02AE02", "Leuprorelin", 3.75, "mg", Subcutaneous, 1),
    m("L01BC02", "Fluorouracil", 400.0, "mg/m2", Intravenous, 1),
    m("L01XA03", "Oxaliplatin", 85.0, "mg/m2", Intravenous, 1),
    m("L01CD01", "Paclitaxel", 80.0, "mg/m2", Intravenous, 1),
    m("L01FD01", "Trastuzumab", 6.0, "mg/kg", Intravenous, 1),
    m("L01FF02", "Pembrolizumab", 200.0, "mg", Intravenous, 1),
    m("L01XX32", "Bortezomib", 1.3, "mg/m2", Subcutaneous, 1),
    m("L01EA01", "Imatinib", 400.0, "mg", Oral, 1),
    m("B03AA07", "Eisen(II)-sulfat", 100.0, "mg", Oral, 1),
    m("B03XA01", "Erythropoetin", 4000.0, "[iU]", Subcutaneous, 1),
    m("B05BB01", "Elektrolyte", 1000.0, "mL", Intravenous, 2),
    m("A12BA01", "Kaliumchlorid", 20.0, "mmol", Oral, 2),
    m("G04CA02", "Tamsulosin", 0.4, "mg", Oral, 1),
    m("L04AB02", "Infliximab", 5.0, "mg/kg", Intravenous, 1),
    m("J05AP08", "Sofosbuvir", 400.0, "mg", Oral, 1),
    m("J05AF07", "Tenofovirdisoproxil", 245.0, "mg", Oral, 1),
    m(
        "J05AR03",
        "Tenofovirdisoproxil und Emtricitabin",
        245.0,
        "mg",
        Oral,
        1,
    ),
    m("A07AA12", "Fidaxomicin", 200.0, "mg", Oral, 2),
    m("S01EE01", "Latanoprost", 1.0, "{drop}", Ocular, 1),
    m("R06AE07", "Cetirizin", 10.0, "mg", Oral, 1),
    m("G03CA03", "Estradiol", 1.0, "mg", Oral, 1),
    m("A10BJ06", "Semaglutid", 0.5, "mg", Subcutaneous, 1),
];

/// Long-term medication (MedicationStatement) by ICD code prefix; first match wins.
pub static CHRONIC_BY_DIAGNOSIS: &[(&str, &[&str])] = &[
    (
        "E11",
        &["A10BA02", "A10BK01", "A10BH01", "A10AE04", "A10BJ06"],
    ),
    ("E10", &["A10AE04", "A10AB05"]),
    ("E66", &["A10BJ06"]),
    ("E78", &["C10AA05", "C10AA01", "C10AX09"]),
    ("E79", &["M04AA01"]),
    ("M10", &["M04AA01"]),
    ("E03", &["H03AA01"]),
    ("E04", &["H03AA01"]),
    ("E05", &["H03BB02"]),
    ("E55", &["A11CC05"]),
    (
        "I10",
        &["C09AA05", "C08CA01", "C03AA03", "C09CA01", "C07AB07"],
    ),
    ("I11", &["C09AA05", "C07AB07"]),
    ("I25", &["B01AC06", "C10AA05", "C07AB07", "B01AC04"]),
    ("Z95.5", &["B01AC06", "B01AC04"]),
    (
        "I48",
        &["B01AF02", "B01AF01", "C07AB02", "C01AA05", "C01BD01"],
    ),
    ("Z92.1", &["B01AF02", "B01AF01"]),
    ("I50", &["C09DX04", "C07AB07", "C03CA04", "C03DA01"]),
    ("I70", &["B01AC06", "C10AA05"]),
    ("I73", &["B01AC04"]),
    ("I69", &["B01AC06", "C10AA05"]),
    ("N18", &["C03CA04", "B03XA01", "A11CC05"]),
    ("N40", &["G04CA02"]),
    ("J44", &["R03BB04", "R03AK06", "R03AC02"]),
    ("J45", &["R03AK06", "R03AC02"]),
    ("J84", &["H02AB06"]),
    ("C50", &["L02BA01", "L02BG04"]),
    ("C61", &["L02AE02"]),
    ("C92", &["L01EA01"]),
    ("C90", &["L01XX32"]),
    ("K21", &["A02BC02"]),
    ("K29", &["A02BC02"]),
    ("K50", &["L04AB02", "H02AB06"]),
    ("K51", &["L04AB02"]),
    ("K7", &["C03DA01"]),
    ("B18.1", &["J05AF07"]),
    ("B18.2", &["J05AP08"]),
    ("B24", &["J05AR03"]),
    ("G20", &["N04BA02"]),
    ("G30", &["N06DA02"]),
    ("F03", &["N06DA02", "N05AH04"]),
    ("G40", &["N03AX14"]),
    ("G43", &["N02CC01"]),
    ("G62", &["N03AX12"]),
    ("F32", &["N06AB10", "N06AX11"]),
    ("F33", &["N06AX16", "N06AB10"]),
    ("F41", &["N06AB10"]),
    ("F10", &["N07BB01"]),
    ("F20", &["N05AX08"]),
    ("F31", &["N05AN01", "N05AH04"]),
    ("F43", &["N06AX11"]),
    ("F90", &["N06BA04"]),
    ("M06", &["L04AX03", "H02AB06"]),
    ("M35", &["H02AB06"]),
    ("M81", &["M05BA04", "A11CC05"]),
    ("M1", &["M01AE01", "N02AX02"]),
    ("M4", &["M01AE01"]),
    ("M54", &["M01AE01", "N02AX02"]),
    ("L40", &["L04AX03"]),
    ("L20", &["R06AE07"]),
    ("H40", &["S01EE01"]),
    ("D50", &["B03AA07"]),
    ("D63", &["B03XA01"]),
    ("N95", &["G03CA03"]),
];

/// In-hospital medication (MedicationAdministration) by ICD code prefix of the main diagnosis.
pub static ACUTE_BY_DIAGNOSIS: &[(&str, &[&str])] = &[
    ("A41", &["J01CR05", "J01XA01", "B05BB01"]),
    ("J18", &["J01DD04", "J01FA10", "J01CR02"]),
    ("J15", &["J01DD04", "J01CR05"]),
    ("J44", &["H02AB06", "R03AC02", "J01CR02"]),
    ("J96", &["H02AB06", "R03AC02"]),
    ("J10", &["J01CR02", "N02BE01"]),
    ("U07", &["H02AB02", "B01AB05"]),
    ("N39", &["J01DD04", "J01MA02", "J01XE01"]),
    ("N10", &["J01DD04", "J01MA02"]),
    ("N30", &["J01XE01"]),
    ("L03", &["J01DC02", "J01CR02"]),
    ("A46", &["J01DC02"]),
    ("A04", &["A07AA12"]),
    ("A0", &["B05BB01", "A04AA01"]),
    ("B02", &["J05AB11"]),
    ("K35", &["J01DC02", "J01XD01", "N02BB02"]),
    ("K57", &["J01CR02", "J01XD01"]),
    ("K80", &["J01DD04", "N02BB02"]),
    ("K85", &["B05BB01", "N02AA01"]),
    ("K92", &["A02BC02"]),
    ("K25", &["A02BC02"]),
    ("K56", &["B05BB01", "A04AA01"]),
    ("K59", &["A06AD65"]),
    (
        "I21",
        &["B01AC06", "B01AC24", "B01AB01", "C10AA05", "N02AA01"],
    ),
    ("I20", &["B01AC06", "B01AB01", "C07AB07"]),
    ("I50", &["C03CA01", "C09AA05", "C07AB07"]),
    ("I63", &["B01AC06", "C10AA05"]),
    ("G45", &["B01AC06", "C10AA05"]),
    ("I26", &["B01AB01", "B01AF02"]),
    ("I80", &["B01AB05", "B01AF01"]),
    ("I48", &["C07AB02", "C01BD01", "B01AB01"]),
    ("I47", &["C07AB02"]),
    ("N17", &["B05BB01"]),
    ("E86", &["B05BB01"]),
    ("E87.6", &["A12BA01"]),
    ("E87", &["B05BB01"]),
    ("E1", &["A10AB05", "B05BB01"]),
    ("S72", &["B01AB05", "N02BB02", "N02AA01"]),
    ("S", &["N02BB02", "M01AE01", "B01AB05"]),
    ("T78", &["H02AB02", "R06AE07"]),
    (
        "C",
        &[
            "L01BC02", "L01XA03", "L01CD01", "L01FD01", "L01FF02", "A04AA01", "H02AB02",
        ],
    ),
    ("O", &["N02BE01", "M01AE01"]),
    ("G00", &["J01DD04", "H02AB02"]),
    ("R56", &["N03AX14", "N05BA01"]),
    ("F05", &["N05AH04"]),
    ("F10", &["N05BA01"]),
];

/// Given to most inpatients regardless of diagnosis: thrombosis prophylaxis, analgesia, gastric protection.
pub static INPATIENT_ROUTINE: &[&str] = &["B01AB05", "N02BE01", "N02BB02", "A02BC02"];

pub fn lookup(code: &str) -> Option<&'static Atc> {
    CODES.iter().find(|a| a.code == code)
}

pub fn chronic_for(icd: &str) -> Option<&'static [&'static str]> {
    CHRONIC_BY_DIAGNOSIS
        .iter()
        .find(|(p, _)| icd.starts_with(p))
        .map(|(_, c)| *c)
}

pub fn acute_for(icd: &str) -> Option<&'static [&'static str]> {
    ACUTE_BY_DIAGNOSIS
        .iter()
        .find(|(p, _)| icd.starts_with(p))
        .map(|(_, c)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mapped_code_is_in_the_catalog() {
        let mapped = CHRONIC_BY_DIAGNOSIS
            .iter()
            .chain(ACUTE_BY_DIAGNOSIS)
            .flat_map(|(_, c)| c.iter())
            .chain(INPATIENT_ROUTINE);
        for c in mapped {
            assert!(lookup(c).is_some(), "ATC {c} missing from CODES");
        }
        assert!(
            CHRONIC_BY_DIAGNOSIS
                .iter()
                .chain(ACUTE_BY_DIAGNOSIS)
                .all(|(_, menu)| !menu.is_empty())
        );
        let mut codes: Vec<&str> = CODES.iter().map(|a| a.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), CODES.len(), "duplicate ATC code");
    }
}
