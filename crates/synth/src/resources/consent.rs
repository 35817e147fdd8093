//! MII Broad Consent (Einwilligung), its withdrawal, and objection (opt-out) documents.
//!
//! Shape follows the MII test data: a top-level `deny` provision over the document's whole period
//! with nested `permit` provisions, one per policy code, each with its own period. Objections are
//! deny-only documents whose category carries the gICS template type (CONSENT-OPT-OUT or WITHDRAWAL).

use super::common::{Emitter, LOINC, ResourceKind, profile, reference};
use crate::date::Day;
use crate::json::Obj;
use crate::patient::{ConsentKind, Model};

const POLICY_CODES: &str = "urn:oid:2.16.840.1.113883.3.1937.777.24.5.3";
/// The policy codes themselves are `<oid>.<n>` (without `urn:oid:`).
const POLICY_OID: &str = "2.16.840.1.113883.3.1937.777.24.5.3";
/// The consent document version (Mustertext 1.6d), as `policy.uri` in the MII test data.
const POLICY_URI: &str = "urn:oid:2.16.840.1.113883.3.1937.777.24.2.1791";
const VERSION_MODULES: &str = "https://www.medizininformatik-initiative.de/fhir/modul-consent/CodeSystem/mii-cs-consent-version-modules";
const VERSION_MODULE_CODE: &str = "2.16.840.1.113883.3.1937.777.24.2.184";
const TEMPLATE_TYPE: &str = "http://fhir.de/ConsentManagement/CodeSystem/TemplateType";

/// (policy code suffix, display, validity in years). Displays only where the MII data shows them.
const PERMITS: &[(&str, &str, i32)] = &[
    ("6", "MDAT erheben", 5),
    ("7", "MDAT speichern, verarbeiten", 30),
    ("8", "MDAT wissenschaftlich nutzen", 30),
    ("9", "MDAT zusammenfuehren Dritte", 30),
    ("37", "", 5),
    ("44", "", 30),
    ("45", "", 30),
];

fn years(d: Day, y: i32) -> Day {
    d.plus(y * 365 + y / 4)
}

fn period(o: &mut Obj, start: Day, end: Option<Day>) {
    o.obj("period", |p| {
        p.str("start", &start.date_string());
        if let Some(e) = end {
            p.str("end", &e.date_string());
        }
    });
}

fn header(o: &mut Obj, m: &Model, hospital_id: &str, date: Day, template: Option<&str>) {
    o.str("status", "active");
    o.obj("scope", |s| {
        s.arr("coding", |a| {
            a.obj(|c| {
                c.str(
                    "system",
                    "http://terminology.hl7.org/CodeSystem/consentscope",
                )
                .str("code", "research");
            });
        });
    });
    o.arr("category", |a| {
        a.obj(|c| {
            c.arr("coding", |a| {
                a.obj(|cd| {
                    cd.str("system", LOINC).str("code", "57016-8");
                });
            });
        });
        match template {
            None => {
                a.obj(|c| {
                    c.arr("coding", |a| {
                        a.obj(|cd| {
                            cd.str("system", VERSION_MODULES)
                                .str("code", VERSION_MODULE_CODE);
                        });
                    });
                });
            }
            Some(t) => {
                a.obj(|c| {
                    c.arr("coding", |a| {
                        a.obj(|cd| {
                            cd.str("system", TEMPLATE_TYPE).str("code", t);
                        });
                    });
                });
            }
        }
    });
    reference(o, "patient", "Patient", &m.id);
    o.str("dateTime", &date.date_time_string(10 * 60));
    o.arr("organization", |a| {
        a.obj(|r| {
            r.str("reference", &format!("Organization/{hospital_id}"));
        });
    });
    o.arr("policy", |a| {
        a.obj(|p| {
            p.str("uri", POLICY_URI);
        });
    });
}

pub fn emit(em: &mut Emitter, m: &Model, hospital_id: &str) {
    let date = m.consent_date;
    match m.consent {
        ConsentKind::Broad | ConsentKind::Withdrawn { .. } => {
            let end = years(date, 30);
            em.emit(
                ResourceKind::Consent,
                &format!("{}-consent-1", m.id),
                Some(profile::CONSENT),
                |o| {
                    header(o, m, hospital_id, date, None);
                    o.obj("provision", |p| {
                        p.str("type", "deny");
                        period(p, date, Some(end));
                        p.arr("provision", |a| {
                            for (code, display, valid) in PERMITS {
                                a.obj(|n| {
                                    n.str("type", "permit");
                                    period(n, date, Some(years(date, *valid)));
                                    n.arr("code", |a| {
                                        a.obj(|c| {
                                            c.arr("coding", |a| {
                                                a.obj(|cd| {
                                                    cd.str("system", POLICY_CODES).str(
                                                        "code",
                                                        &format!("{POLICY_OID}.{code}"),
                                                    );
                                                    if !display.is_empty() {
                                                        cd.str("display", display);
                                                    }
                                                });
                                            });
                                        });
                                    });
                                });
                            }
                        });
                    });
                },
            );
            if let ConsentKind::Withdrawn { after_days } = m.consent {
                let withdrawn = date.plus(after_days);
                em.emit(
                    ResourceKind::Consent,
                    &format!("{}-consent-2", m.id),
                    Some(profile::CONSENT),
                    |o| {
                        header(o, m, hospital_id, withdrawn, Some("WITHDRAWAL"));
                        o.obj("provision", |p| {
                            p.str("type", "deny");
                            period(p, withdrawn, Some(end));
                        });
                    },
                );
            }
        }
        ConsentKind::OptOut => {
            em.emit(
                ResourceKind::Consent,
                &format!("{}-consent-1", m.id),
                Some(profile::CONSENT),
                |o| {
                    header(o, m, hospital_id, date, Some("CONSENT-OPT-OUT"));
                    o.obj("provision", |p| {
                        p.str("type", "deny");
                        period(p, date, None);
                    });
                },
            );
        }
    }
}
