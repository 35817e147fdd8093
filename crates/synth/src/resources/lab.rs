//! Lab values that follow the patient's conditions, written as MII ObservationLab grouped under a
//! DiagnosticReportLab. The dependencies are deliberately simple and monotone (diabetes raises HbA1c
//! and glucose, kidney disease raises creatinine and lowers eGFR, infection raises CRP and
//! leukocytes, …) so that cohort queries over lab values find the expected patients.

use super::common::{Emitter, LOINC, ResourceKind, V2_0203, profile, quantity_fields, reference};
use crate::catalog::icd::{Cluster, Icd};
use crate::catalog::loinc::{self, Lab, LabTest};
use crate::patient::{Flags, Sex};
use crate::rng::Rng;

const INTERPRETATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";
const OBS_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

/// What a lab value depends on.
pub struct LabContext<'a> {
    pub sex: Sex,
    pub age: i32,
    pub flags: &'a Flags,
    pub cirrhosis: bool,
    /// Main diagnosis of the contact (acute events shift values).
    pub main: &'a Icd,
    /// Later draws of a stay recover towards normal.
    pub recovery: f64,
}

fn lognormal(rng: &mut Rng, median: f64, sigma: f64) -> f64 {
    median * rng.normal(0.0, sigma).exp()
}

/// Draws a value for `lab`.
pub fn value(rng: &mut Rng, lab: Lab, cx: &LabContext) -> f64 {
    let f = cx.flags;
    let code = cx.main.code;
    let acute_infection = cx.main.cluster == Cluster::Infection;
    let sepsis = code.starts_with("A41");
    let male = cx.sex.is_male();
    // Acute effects fade over the stay.
    let acute = 1.0 - cx.recovery;
    let v = match lab {
        Lab::Hemoglobin => {
            let mut m = if male { 14.8 } else { 13.2 };
            if cx.age == 0 {
                m = 16.5;
            }
            if f.anemia {
                m -= 2.2;
            }
            if f.ckd_stage >= 3 {
                m -= 0.6 * f64::from(f.ckd_stage - 2);
            }
            if f.oncology {
                m -= 1.4;
            }
            if code.starts_with("D62") || code.starts_with("K92") {
                m -= 3.5 * acute + 1.5;
            }
            rng.normal(m, 1.0).max(4.5)
        }
        Lab::Leukocytes => {
            if f.leukemia {
                lognormal(rng, 35.0, 0.6)
            } else if sepsis {
                rng.normal(8.0 + 10.0 * acute, 4.0).max(0.8)
            } else if acute_infection {
                rng.normal(7.5 + 6.0 * acute, 2.5).max(2.0)
            } else {
                rng.normal(7.0, 1.6).max(2.5)
            }
        }
        Lab::Platelets => {
            if f.thrombocytopenia {
                rng.normal(80.0, 25.0).max(10.0)
            } else if cx.cirrhosis {
                rng.normal(110.0, 30.0).max(20.0)
            } else {
                rng.normal(260.0, 55.0).max(60.0)
            }
        }
        Lab::Sodium => {
            if code.starts_with("E87.1") {
                rng.normal(137.0 - 11.0 * acute, 2.5)
            } else if code.starts_with("E86") {
                rng.normal(140.0 + 5.0 * acute, 2.5)
            } else if f.heart_failure {
                rng.normal(137.5, 2.8)
            } else {
                rng.normal(140.0, 2.2)
            }
        }
        Lab::Potassium => {
            let mut m = 4.2;
            if f.ckd_stage >= 4 {
                m += 0.6;
            }
            if code.starts_with("N17") {
                m += 0.7 * acute;
            }
            if code.starts_with("E87.6") {
                m -= 1.0 * acute;
            }
            rng.normal(m, 0.35).max(2.2)
        }
        Lab::Creatinine => creatinine(rng, cx),
        // eGFR is derived from creatinine in `draw` so the two agree; this path is a fallback.
        Lab::Egfr => egfr(creatinine(rng, cx), cx),
        Lab::Crp => {
            if sepsis {
                lognormal(rng, 40.0 + 160.0 * acute, 0.4)
            } else if acute_infection {
                lognormal(rng, 15.0 + 70.0 * acute, 0.6)
            } else if f.inflammatory || f.oncology {
                lognormal(rng, 12.0, 0.7)
            } else if code.starts_with("I21") || code.starts_with('S') {
                lognormal(rng, 8.0, 0.6)
            } else {
                lognormal(rng, 1.8, 0.6)
            }
        }
        Lab::Glucose => {
            if f.diabetes {
                rng.normal(165.0, 45.0).max(60.0)
            } else if code.starts_with("O24") {
                rng.normal(120.0, 20.0)
            } else {
                rng.normal(92.0, 10.0).max(55.0)
            }
        }
        Lab::Hba1c => {
            if f.diabetes {
                rng.normal(7.6, 1.2).max(5.6)
            } else if f.obese {
                rng.normal(5.8, 0.35)
            } else {
                rng.normal(5.3, 0.3)
            }
        }
        Lab::NtProBnp => {
            let mut median = 70.0 + f64::from(cx.age.max(20) - 20) * 2.0;
            if f.heart_failure {
                median = 2000.0;
            }
            if code.starts_with("I50.14") {
                median = 2500.0 + 4500.0 * acute;
            }
            if f.ckd_stage >= 4 {
                median *= 2.5;
            }
            lognormal(rng, median, 0.6)
        }
        Lab::TroponinT => {
            if code.starts_with("I21") {
                lognormal(rng, 40.0 + 400.0 * acute, 0.7)
            } else if code.starts_with("I20") || f.ckd_stage >= 4 {
                lognormal(rng, 22.0, 0.4)
            } else if f.coronary || f.heart_failure {
                lognormal(rng, 13.0, 0.4)
            } else {
                lognormal(rng, 6.0, 0.45)
            }
        }
        Lab::Tsh => {
            if f.hyperthyroid {
                lognormal(rng, 0.08, 0.6)
            } else if f.hypothyroid {
                lognormal(rng, 5.5, 0.4)
            } else {
                lognormal(rng, 1.6, 0.4)
            }
        }
        Lab::Alt => {
            if f.liver || code.starts_with("K8") {
                lognormal(rng, 65.0, 0.5)
            } else {
                lognormal(rng, if male { 26.0 } else { 20.0 }, 0.3)
            }
        }
        Lab::Ast => {
            if f.liver || code.starts_with("I21") {
                lognormal(rng, 70.0, 0.5)
            } else {
                lognormal(rng, 24.0, 0.25)
            }
        }
        Lab::Cholesterol => {
            if f.lipids {
                rng.normal(240.0, 35.0)
            } else {
                rng.normal(185.0, 30.0)
            }
        }
        Lab::Ldl => {
            if f.lipids {
                rng.normal(160.0, 30.0)
            } else {
                rng.normal(105.0, 25.0)
            }
        }
        Lab::Procalcitonin => {
            if sepsis {
                lognormal(rng, 0.5 + 7.5 * acute, 0.8)
            } else if acute_infection {
                lognormal(rng, 0.1 + 0.4 * acute, 0.7)
            } else {
                lognormal(rng, 0.04, 0.4)
            }
        }
        Lab::Lactate => {
            if sepsis {
                rng.normal(1.4 + 2.4 * acute, 0.8)
            } else {
                rng.normal(1.2, 0.35)
            }
        }
        Lab::Inr => {
            if f.anticoagulated {
                rng.normal(1.3, 0.2)
            } else if cx.cirrhosis {
                rng.normal(1.5, 0.3)
            } else {
                rng.normal(1.0, 0.06)
            }
        }
        Lab::Bilirubin => {
            if code.starts_with("P59") {
                rng.normal(14.0, 3.0)
            } else if cx.cirrhosis {
                rng.normal(2.5, 1.0)
            } else if code.starts_with("K80") {
                rng.normal(1.8, 0.8)
            } else {
                rng.normal(0.6, 0.25)
            }
        }
        Lab::UricAcid => {
            let base = if f.gout {
                8.6
            } else if male {
                5.6
            } else {
                4.5
            };
            rng.normal(base + if f.ckd_stage >= 3 { 1.2 } else { 0.0 }, 1.0)
        }
    };
    let t = loinc::test(lab);
    // Never report a value that rounds to zero or below.
    let floor = 1.0 / 10f64.powi(t.decimals as i32);
    v.max(floor)
}

fn creatinine(rng: &mut Rng, cx: &LabContext) -> f64 {
    let base = if cx.age < 14 {
        0.45
    } else if cx.sex.is_male() {
        0.95
    } else {
        0.75
    };
    let mut m = match cx.flags.ckd_stage {
        2 => base * 1.3,
        3 => 1.75,
        4 => 2.9,
        5 => 5.8,
        _ => base,
    };
    if cx.main.code.starts_with("N17") {
        m *= 1.0 + 1.4 * (1.0 - cx.recovery);
    }
    rng.normal(m, m * 0.12).max(0.2)
}

/// MDRD estimate from creatinine, age and sex (the formula the LOINC code names).
fn egfr(creatinine: f64, cx: &LabContext) -> f64 {
    let age = f64::from(cx.age.max(18));
    let sex = if cx.sex.is_male() { 1.0 } else { 0.742 };
    (175.0 * creatinine.powf(-1.154) * age.powf(-0.203) * sex).clamp(3.0, 150.0)
}

fn range(t: &LabTest, sex: Sex) -> (f64, f64) {
    if sex.is_male() { t.male } else { t.female }
}

/// Draws a whole panel; eGFR follows the drawn creatinine.
pub fn draw(rng: &mut Rng, labs: &[Lab], cx: &LabContext) -> Vec<(Lab, f64)> {
    let mut out: Vec<(Lab, f64)> = Vec::with_capacity(labs.len());
    for &lab in labs {
        let v = if lab == Lab::Egfr {
            let crea = out
                .iter()
                .find(|(l, _)| *l == Lab::Creatinine)
                .map(|(_, v)| *v)
                .unwrap_or_else(|| creatinine(rng, cx));
            egfr(crea, cx)
        } else {
            value(rng, lab, cx)
        };
        out.push((lab, v));
    }
    out
}

pub struct ReportIds<'a> {
    pub patient: &'a str,
    pub encounter: &'a str,
    /// Prefix for this draw's ids, e.g. `pat-0-7-e2-lab1`.
    pub prefix: &'a str,
    pub identifier_system: &'a str,
    /// Organization id of the hospital that assigns the lab identifiers.
    pub hospital: &'a str,
}

/// Emits the Observations of one draw and the DiagnosticReport that groups them.
pub fn emit_report(
    em: &mut Emitter,
    ids: &ReportIds,
    sex: Sex,
    results: &[(Lab, f64)],
    effective: &str,
) {
    let mut obs_ids: Vec<String> = Vec::with_capacity(results.len());
    for (n, (lab, v)) in results.iter().enumerate() {
        let t = loinc::test(*lab);
        let id = format!("{}-obs-{}", ids.prefix, n + 1);
        let (low, high) = range(t, sex);
        // Compare the value as reported (rounded), so interpretation matches what a reader sees.
        let scale = 10f64.powi(t.decimals as i32);
        let shown = (v * scale).round() / scale;
        let (flag, flag_display) = if shown > high {
            ("H", "High")
        } else if shown < low {
            ("L", "Low")
        } else {
            ("N", "Normal")
        };
        em.emit(
            ResourceKind::Observation,
            &id,
            Some(profile::OBSERVATION_LAB),
            |o| {
                o.arr("identifier", |a| {
                    a.obj(|i| {
                        i.obj("type", |c| {
                            c.arr("coding", |a| {
                                a.obj(|cd| {
                                    cd.str("system", V2_0203).str("code", "OBI");
                                });
                            });
                        });
                        i.str("system", ids.identifier_system).str("value", &id);
                        reference(i, "assigner", "Organization", ids.hospital);
                    });
                });
                o.str("status", "final");
                o.arr("category", |a| {
                    a.obj(|c| {
                        c.arr("coding", |a| {
                            a.obj(|cd| {
                                cd.str("system", LOINC)
                                    .str("code", "26436-6")
                                    .str("display", "Laboratory studies (set)");
                            });
                            a.obj(|cd| {
                                cd.str("system", OBS_CATEGORY)
                                    .str("code", "laboratory")
                                    .str("display", "Laboratory");
                            });
                        });
                    });
                });
                o.obj("code", |c| {
                    c.arr("coding", |a| {
                        a.obj(|cd| {
                            cd.str("system", LOINC)
                                .str("code", t.loinc)
                                .str("display", t.display);
                        });
                    });
                });
                reference(o, "subject", "Patient", ids.patient);
                reference(o, "encounter", "Encounter", ids.encounter);
                o.str("effectiveDateTime", effective);
                o.str("issued", effective);
                o.obj("valueQuantity", |q| {
                    quantity_fields(q, *v, t.decimals, t.ucum)
                });
                o.arr("interpretation", |a| {
                    a.obj(|c| {
                        c.arr("coding", |a| {
                            a.obj(|cd| {
                                cd.str("system", INTERPRETATION)
                                    .str("code", flag)
                                    .str("display", flag_display);
                            });
                        });
                    });
                });
                o.arr("referenceRange", |a| {
                    a.obj(|r| {
                        if low > 0.0 {
                            r.obj("low", |q| quantity_fields(q, low, t.decimals, t.ucum));
                        }
                        r.obj("high", |q| quantity_fields(q, high, t.decimals, t.ucum));
                        r.obj("type", |c| {
                            c.arr("coding", |a| {
                                a.obj(|cd| {
                                    cd.str(
                                    "system",
                                    "http://terminology.hl7.org/CodeSystem/referencerange-meaning",
                                )
                                .str("code", "normal")
                                .str("display", "Normal Range");
                                });
                            });
                        });
                    });
                });
            },
        );
        obs_ids.push(id);
    }
    let report_id = format!("{}-report", ids.prefix);
    em.emit(
        ResourceKind::DiagnosticReport,
        &report_id,
        Some(profile::DIAGNOSTIC_REPORT_LAB),
        |o| {
            o.arr("identifier", |a| {
                a.obj(|i| {
                    i.obj("type", |c| {
                        c.arr("coding", |a| {
                            a.obj(|cd| {
                                cd.str("system", V2_0203).str("code", "FILL");
                            });
                        });
                    });
                    i.str("system", ids.identifier_system)
                        .str("value", &report_id);
                    reference(i, "assigner", "Organization", ids.hospital);
                });
            });
            o.str("status", "final");
            o.arr("category", |a| {
                a.obj(|c| {
                    c.arr("coding", |a| {
                        a.obj(|cd| {
                            cd.str("system", LOINC)
                                .str("code", "26436-6")
                                .str("display", "Laboratory studies (set)");
                        });
                        a.obj(|cd| {
                            cd.str("system", "http://terminology.hl7.org/CodeSystem/v2-0074")
                                .str("code", "LAB");
                        });
                    });
                });
            });
            o.obj("code", |c| {
                c.arr("coding", |a| {
                    a.obj(|cd| {
                        cd.str("system", LOINC)
                            .str("code", "11502-2")
                            .str("display", "Laboratory report");
                    });
                });
            });
            reference(o, "subject", "Patient", ids.patient);
            reference(o, "encounter", "Encounter", ids.encounter);
            o.str("effectiveDateTime", effective);
            o.str("issued", effective);
            o.arr("result", |a| {
                for id in &obs_ids {
                    a.obj(|r| {
                        r.str("reference", &format!("Observation/{id}"));
                    });
                }
            });
        },
    );
}
