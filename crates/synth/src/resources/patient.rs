//! Patient (MII Person) and its Vitalstatus Observation.

use super::common::{
    Emitter, LOINC, ResourceKind, V2_0203, concept, concept_list, profile, reference,
};
use crate::date::Day;
use crate::hospital::{Hospital, IKNR_SYSTEM};
use crate::patient::{Model, Sex};

const KVID_SYSTEM: &str = "http://fhir.de/sid/gkv/kvid-10";
const IDENTIFIER_TYPE_DE: &str = "http://fhir.de/CodeSystem/identifier-type-de-basis";
const VITALSTATUS_CS: &str =
    "https://www.medizininformatik-initiative.de/fhir/core/modul-person/CodeSystem/Vitalstatus";
/// IK numbers of a few statutory health insurers (Krankenkassen) as the KVID assigner.
const INSURERS: &[&str] = &[
    "108018007",
    "101575519",
    "104940005",
    "105313145",
    "108310400",
];

pub fn emit(em: &mut Emitter, m: &Model, hosp: &Hospital, as_of: Day) {
    let p = &m.person;
    em.emit(ResourceKind::Patient, &m.id, Some(profile::PATIENT), |o| {
        o.arr("identifier", |a| {
            a.obj(|i| {
                i.str("use", "official");
                concept(i, "type", IDENTIFIER_TYPE_DE, "KVZ10", "");
                i.str("system", KVID_SYSTEM).str("value", &p.kvid);
                i.obj("assigner", |asg| {
                    asg.obj("identifier", |id| {
                        let insurer = INSURERS[(m.index % INSURERS.len() as u64) as usize];
                        id.str("use", "official")
                            .str("system", IKNR_SYSTEM)
                            .str("value", insurer);
                    });
                });
            });
            a.obj(|i| {
                i.str("use", "usual");
                concept(i, "type", V2_0203, "MR", "Medical record number");
                i.str("system", &hosp.identifier_system("patient"))
                    .str("value", &p.record_number);
                reference(i, "assigner", "Organization", &hosp.id);
            });
        });
        o.arr("name", |a| {
            a.obj(|n| {
                n.str("use", "official").str("family", p.family);
                n.arr("given", |g| {
                    for name in &p.given {
                        g.str(name);
                    }
                });
            });
        });
        o.str("gender", p.sex.fhir());
        if p.sex == Sex::Diverse {
            // The German base profile says which "other": D (divers), as in the MII test data.
            o.obj("_gender", |g| {
                g.arr("extension", |a| {
                    a.obj(|e| {
                        e.str(
                            "url",
                            "http://fhir.de/StructureDefinition/gender-amtlich-de",
                        );
                        e.obj("valueCoding", |c| {
                            c.str("system", "http://fhir.de/CodeSystem/gender-amtlich-de")
                                .str("code", "D")
                                .str("display", "divers");
                        });
                    });
                });
            });
        }
        o.str("birthDate", &p.birth.date_string());
        if let Some(d) = p.death {
            o.str("deceasedDateTime", &d.date_string());
        }
        o.arr("address", |a| {
            a.obj(|ad| {
                ad.str("type", "both");
                ad.arr("line", |l| {
                    l.str(&format!("{} {}", p.street, p.house_number));
                });
                ad.str("city", p.city.name)
                    .str("postalCode", &p.postal_code)
                    .str("country", "DE");
            });
        });
        reference(o, "managingOrganization", "Organization", &hosp.id);
    });

    // Vital status as of the last known contact: death date, or the generation's reference date.
    let (code, display, when) = match p.death {
        Some(d) => ("T", "Patient verstorben", d),
        None => ("L", "Patient lebt", as_of),
    };
    em.emit(
        ResourceKind::Observation,
        &format!("{}-vitalstatus", m.id),
        Some(profile::VITALSTATUS),
        |o| {
            o.str("status", "final");
            concept_list(
                o,
                "category",
                "http://terminology.hl7.org/CodeSystem/observation-category",
                "survey",
                "Survey",
            );
            concept(o, "code", LOINC, "67162-8", "");
            reference(o, "subject", "Patient", &m.id);
            o.str("effectiveDateTime", &when.date_time_string(12 * 60));
            concept(o, "valueCodeableConcept", VITALSTATUS_CS, code, display);
        },
    );
}
