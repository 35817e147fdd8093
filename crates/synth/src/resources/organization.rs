//! Hospitals and their departments as Organizations; the medication catalogue as Medications.

use super::common::{Emitter, ResourceKind, concept_list, profile, reference};
use crate::catalog::{atc, departments};
use crate::hospital::{Hospital, IKNR_SYSTEM};

const ORG_TYPE: &str = "http://terminology.hl7.org/CodeSystem/organization-type";

pub fn emit_hospital(em: &mut Emitter, h: &Hospital) {
    // No MII core profile exists for a plain hospital Organization, so none is claimed.
    em.emit(ResourceKind::Organization, &h.id, None, |o| {
        o.arr("identifier", |a| {
            a.obj(|i| {
                i.str("system", IKNR_SYSTEM).str("value", &h.iknr);
            });
        });
        o.bool("active", true);
        concept_list(o, "type", ORG_TYPE, "prov", "Healthcare Provider");
        o.str("name", &h.name);
        o.arr("address", |a| {
            a.obj(|ad| {
                ad.str("city", h.city.name)
                    .str("postalCode", &h.postal_code)
                    .str("state", h.city.state)
                    .str("country", "DE");
            });
        });
    });
    for code in &h.departments {
        let id = h.department_id(code);
        em.emit(ResourceKind::Organization, &id, None, |o| {
            o.arr("identifier", |a| {
                a.obj(|i| {
                    i.str("system", &h.identifier_system("fachabteilung"))
                        .str("value", code);
                });
            });
            o.bool("active", true);
            o.arr("type", |a| {
                a.obj(|c| {
                    c.arr("coding", |a| {
                        a.obj(|cd| {
                            cd.str("system", ORG_TYPE)
                                .str("code", "dept")
                                .str("display", "Hospital Department");
                        });
                    });
                });
                a.obj(|c| {
                    c.arr("coding", |a| {
                        a.obj(|cd| {
                            cd.str("system", departments::SYSTEM)
                                .str("code", code)
                                .str("display", departments::name(code));
                        });
                    });
                });
            });
            o.str("name", &format!("{} – {}", departments::name(code), h.name));
            reference(o, "partOf", "Organization", &h.id);
        });
    }
}

pub fn medication_id(code: &str) -> String {
    format!("med-{code}")
}

pub fn emit_medications(em: &mut Emitter) {
    for m in atc::CODES {
        em.emit(
            ResourceKind::Medication,
            &medication_id(m.code),
            Some(profile::MEDICATION),
            |o| {
                o.obj("code", |c| {
                    c.arr("coding", |a| {
                        a.obj(|cd| {
                            cd.str("system", atc::SYSTEM)
                                .str("version", atc::VERSION)
                                .str("code", m.code)
                                .str("display", m.display);
                        });
                    });
                    c.str("text", m.display);
                });
                o.str("status", "active");
            },
        );
    }
}
