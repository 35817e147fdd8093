//! Encounters (MII KontaktGesundheitseinrichtung: Einrichtungskontakt with an Abteilungskontakt
//! for inpatient stays), diagnoses (MII Diagnose) and procedures (MII Procedure, OPS).

use super::common::{
    Emitter, ResourceKind, SNOMED, V2_0203, concept, concept_list, profile, reference,
};
use crate::catalog::icd::{self, Icd};
use crate::catalog::{departments, ops};
use crate::json::Obj;

const CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
const VERIFICATION: &str = "http://terminology.hl7.org/CodeSystem/condition-ver-status";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const KONTAKTEBENE: &str = "http://fhir.de/CodeSystem/Kontaktebene";
const KONTAKTART: &str = "http://fhir.de/CodeSystem/kontaktart-de";
const DIAGNOSIS_ROLE: &str = "http://terminology.hl7.org/CodeSystem/diagnosis-role";

pub struct ConditionArgs<'a> {
    pub id: &'a str,
    pub patient: &'a str,
    pub icd: &'a Icd,
    pub onset: &'a str,
    pub recorded: &'a str,
    pub encounter: Option<&'a str>,
    pub resolved: bool,
}

pub fn emit_condition(em: &mut Emitter, c: &ConditionArgs) {
    em.emit(
        ResourceKind::Condition,
        c.id,
        Some(profile::CONDITION),
        |o| {
            concept(
                o,
                "clinicalStatus",
                CLINICAL,
                if c.resolved { "resolved" } else { "active" },
                "",
            );
            concept(o, "verificationStatus", VERIFICATION, "confirmed", "");
            o.obj("code", |cc| {
                cc.arr("coding", |a| {
                    a.obj(|cd| {
                        cd.str("system", icd::SYSTEM)
                            .str("version", icd::VERSION)
                            .str("code", c.icd.code)
                            .str("display", c.icd.display);
                    });
                });
            });
            reference(o, "subject", "Patient", c.patient);
            if let Some(e) = c.encounter {
                reference(o, "encounter", "Encounter", e);
            }
            o.str("onsetDateTime", c.onset);
            o.str("recordedDate", c.recorded);
        },
    );
}

pub struct EncounterArgs<'a> {
    pub id: &'a str,
    pub patient: &'a str,
    pub hospital_id: &'a str,
    pub hospital_name: &'a str,
    pub case_system: &'a str,
    pub inpatient: bool,
    pub department: &'a str,
    pub start: &'a str,
    pub end: &'a str,
    /// Condition ids; the first is the main (discharge) diagnosis.
    pub diagnoses: &'a [String],
    pub died: bool,
}

fn class(o: &mut Obj, inpatient: bool) {
    o.obj("class", |c| {
        c.str("system", ACT_CODE);
        if inpatient {
            c.str("code", "IMP").str("display", "inpatient encounter");
        } else {
            c.str("code", "AMB").str("display", "ambulatory");
        }
    });
}

fn service_type(o: &mut Obj, department: &str) {
    concept(
        o,
        "serviceType",
        departments::SYSTEM,
        department,
        departments::name(department),
    );
}

fn dkg_extension(o: &mut Obj, url: &str, parts: &[(&str, &str, &str, &str)]) {
    o.arr("extension", |a| {
        a.obj(|e| {
            e.arr("extension", |inner| {
                for (name, system, code, display) in parts {
                    inner.obj(|p| {
                        p.str("url", name);
                        p.obj("valueCoding", |c| {
                            c.str("system", system).str("code", code);
                            if !display.is_empty() {
                                c.str("display", display);
                            }
                        });
                    });
                }
            });
            e.str("url", url);
        });
    });
}

/// Emits the Einrichtungskontakt and, for stays, its Abteilungskontakt (`<id>-a`).
pub fn emit_encounter(em: &mut Emitter, e: &EncounterArgs) {
    em.emit(ResourceKind::Encounter, e.id, Some(profile::ENCOUNTER), |o| {
        o.arr("identifier", |a| {
            a.obj(|i| {
                concept(i, "type", V2_0203, "VN", "Visit number");
                i.str("system", e.case_system).str("value", e.id);
            });
        });
        o.str("status", "finished");
        class(o, e.inpatient);
        o.arr("type", |a| {
            a.obj(|c| {
                c.arr("coding", |a| {
                    a.obj(|cd| {
                        cd.str("system", KONTAKTEBENE)
                            .str("code", "einrichtungskontakt")
                            .str("display", "Einrichtungskontakt");
                    });
                });
            });
            // Kontaktart only for stays: outpatient contacts have no agreed code in kontaktart-de.
            if e.inpatient {
                a.obj(|c| {
                    c.arr("coding", |a| {
                        a.obj(|cd| {
                            cd.str("system", KONTAKTART).str("code", "normalstationaer");
                        });
                    });
                });
            }
        });
        service_type(o, e.department);
        reference(o, "subject", "Patient", e.patient);
        o.obj("period", |p| {
            p.str("start", e.start).str("end", e.end);
        });
        if !e.diagnoses.is_empty() {
            o.arr("diagnosis", |a| {
                for (rank, cond) in e.diagnoses.iter().enumerate() {
                    a.obj(|d| {
                        d.obj("condition", |r| {
                            r.str("reference", &format!("Condition/{cond}"));
                        });
                        if rank == 0 {
                            concept(d, "use", DIAGNOSIS_ROLE, "DD", "Discharge diagnosis");
                        } else {
                            concept(d, "use", DIAGNOSIS_ROLE, "CM", "Comorbidity diagnosis");
                        }
                        d.int("rank", rank as i64 + 1);
                    });
                }
            });
        }
        if e.inpatient {
            o.obj("hospitalization", |h| {
                concept(
                    h,
                    "admitSource",
                    "http://fhir.de/CodeSystem/dgkev/Aufnahmeanlass",
                    "E",
                    "Einweisung durch einen Arzt",
                );
                h.obj("dischargeDisposition", |d| {
                    let (code, display) = if e.died {
                        ("07", "Tod")
                    } else {
                        ("01", "Behandlung regulär beendet")
                    };
                    dkg_extension(
                        d,
                        "http://fhir.de/StructureDefinition/Entlassungsgrund",
                        &[
                            (
                                "ErsteUndZweiteStelle",
                                "http://fhir.de/CodeSystem/dkgev/EntlassungsgrundErsteUndZweiteStelle",
                                code,
                                display,
                            ),
                            (
                                "DritteStelle",
                                "http://fhir.de/CodeSystem/dkgev/EntlassungsgrundDritteStelle",
                                "9",
                                "keine Angabe",
                            ),
                        ],
                    );
                });
            });
        }
        o.obj("serviceProvider", |r| {
            r.str("reference", &format!("Organization/{}", e.hospital_id))
                .str("display", e.hospital_name);
        });
    });
    if e.inpatient {
        let id = format!("{}-a", e.id);
        em.emit(
            ResourceKind::Encounter,
            &id,
            Some(profile::ENCOUNTER),
            |o| {
                o.str("status", "finished");
                class(o, true);
                concept_list(
                    o,
                    "type",
                    KONTAKTEBENE,
                    "abteilungskontakt",
                    "Abteilungskontakt",
                );
                service_type(o, e.department);
                reference(o, "subject", "Patient", e.patient);
                o.obj("period", |p| {
                    p.str("start", e.start).str("end", e.end);
                });
                o.obj("serviceProvider", |r| {
                    r.str(
                        "reference",
                        &format!("Organization/{}-dept-{}", e.hospital_id, e.department),
                    );
                });
                reference(o, "partOf", "Encounter", e.id);
            },
        );
    }
}

pub struct ProcedureArgs<'a> {
    pub id: &'a str,
    pub patient: &'a str,
    pub encounter: &'a str,
    pub ops: &'a str,
    pub performed: &'a str,
}

pub fn emit_procedure(em: &mut Emitter, p: &ProcedureArgs) {
    // SNOMED category by OPS chapter: 1 and 3 diagnostic, 5 surgical, 8 and 9 therapeutic/other.
    let (cat, cat_display) = match p.ops.as_bytes().first() {
        Some(b'1') | Some(b'3') => ("103693007", "Diagnostic procedure"),
        Some(b'5') => ("387713003", "Surgical procedure"),
        _ => ("277132007", "Therapeutic procedure"),
    };
    em.emit(
        ResourceKind::Procedure,
        p.id,
        Some(profile::PROCEDURE),
        |o| {
            o.arr("extension", |a| {
                a.obj(|e| {
                    e.str(
                        "url",
                        "http://fhir.de/StructureDefinition/ProzedurDokumentationsdatum",
                    )
                    .str("valueDateTime", p.performed);
                });
            });
            o.str("status", "completed");
            concept(o, "category", SNOMED, cat, cat_display);
            o.obj("code", |c| {
                c.arr("coding", |a| {
                    a.obj(|cd| {
                        cd.str("system", ops::SYSTEM)
                            .str("version", ops::VERSION)
                            .str("code", p.ops)
                            .str("display", ops::display(p.ops));
                    });
                });
            });
            reference(o, "subject", "Patient", p.patient);
            reference(o, "encounter", "Encounter", p.encounter);
            o.str("performedDateTime", p.performed);
        },
    );
}
