//! MedicationStatement (long-term medication) and MedicationAdministration (given in hospital).

use super::common::{Emitter, ResourceKind, profile, quantity_fields, reference};
use super::organization::medication_id;
use crate::catalog::atc::{self, Atc};
use crate::json::Obj;

fn route(o: &mut Obj, a: &Atc) {
    let (code, display) = a.route.edqm();
    o.obj("route", |r| {
        r.arr("coding", |c| {
            c.obj(|cd| {
                cd.str("system", atc::ROUTE_SYSTEM)
                    .str("code", code)
                    .str("display", display);
            });
        });
    });
}

/// Whole doses print without decimals (500 mg), fractional ones with two (0.40 mg).
fn dose_decimals(a: &Atc) -> usize {
    if a.dose.fract() == 0.0 { 0 } else { 2 }
}

fn dose_text(a: &Atc) -> String {
    let dose = if a.dose.fract() == 0.0 {
        format!("{}", a.dose as i64)
    } else {
        format!("{}", a.dose)
    };
    format!("{} {dose} {} {}x täglich", a.display, a.unit, a.per_day)
}

pub struct StatementArgs<'a> {
    pub id: &'a str,
    pub patient: &'a str,
    pub atc: &'a Atc,
    pub start: &'a str,
    pub end: Option<&'a str>,
    pub reason_condition: &'a str,
}

pub fn emit_statement(em: &mut Emitter, s: &StatementArgs) {
    em.emit(
        ResourceKind::MedicationStatement,
        s.id,
        Some(profile::MEDICATION_STATEMENT),
        |o| {
            o.str(
                "status",
                if s.end.is_some() {
                    "completed"
                } else {
                    "active"
                },
            );
            reference(
                o,
                "medicationReference",
                "Medication",
                &medication_id(s.atc.code),
            );
            reference(o, "subject", "Patient", s.patient);
            o.obj("effectivePeriod", |p| {
                p.str("start", s.start);
                if let Some(e) = s.end {
                    p.str("end", e);
                }
            });
            o.str("dateAsserted", s.start);
            o.arr("reasonReference", |a| {
                a.obj(|r| {
                    r.str("reference", &format!("Condition/{}", s.reason_condition));
                });
            });
            o.arr("dosage", |a| {
                a.obj(|d| {
                    d.str("text", &dose_text(s.atc));
                    d.obj("timing", |t| {
                        t.obj("repeat", |r| {
                            r.int("frequency", i64::from(s.atc.per_day))
                                .int("period", 1)
                                .str("periodUnit", "d");
                        });
                    });
                    route(d, s.atc);
                    d.arr("doseAndRate", |a| {
                        a.obj(|dr| {
                            dr.obj("doseQuantity", |q| {
                                quantity_fields(q, s.atc.dose, dose_decimals(s.atc), s.atc.unit)
                            });
                        });
                    });
                });
            });
        },
    );
}

pub struct AdministrationArgs<'a> {
    pub id: &'a str,
    pub patient: &'a str,
    pub encounter: &'a str,
    pub atc: &'a Atc,
    pub when: &'a str,
}

pub fn emit_administration(em: &mut Emitter, a: &AdministrationArgs) {
    em.emit(
        ResourceKind::MedicationAdministration,
        a.id,
        Some(profile::MEDICATION_ADMINISTRATION),
        |o| {
            o.str("status", "completed");
            o.obj("category", |c| {
                c.arr("coding", |arr| {
                    arr.obj(|cd| {
                        cd.str(
                            "system",
                            "http://terminology.hl7.org/CodeSystem/medication-admin-category",
                        )
                        .str("code", "inpatient")
                        .str("display", "Inpatient");
                    });
                });
            });
            reference(
                o,
                "medicationReference",
                "Medication",
                &medication_id(a.atc.code),
            );
            reference(o, "subject", "Patient", a.patient);
            reference(o, "context", "Encounter", a.encounter);
            o.str("effectiveDateTime", a.when);
            o.obj("dosage", |d| {
                d.str("text", &dose_text(a.atc));
                route(d, a.atc);
                d.obj("dose", |q| {
                    quantity_fields(q, a.atc.dose, dose_decimals(a.atc), a.atc.unit)
                });
            });
        },
    );
}
