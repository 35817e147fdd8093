//! Shared FHIR building blocks: the resource emitter, profile canonicals, codings, references.

use crate::json::{Obj, object};

/// The resource types the generator writes, in output-file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    Organization,
    Medication,
    Patient,
    Consent,
    Encounter,
    Condition,
    Procedure,
    MedicationStatement,
    MedicationAdministration,
    Observation,
    DiagnosticReport,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 11] = [
        ResourceKind::Organization,
        ResourceKind::Medication,
        ResourceKind::Patient,
        ResourceKind::Consent,
        ResourceKind::Encounter,
        ResourceKind::Condition,
        ResourceKind::Procedure,
        ResourceKind::MedicationStatement,
        ResourceKind::MedicationAdministration,
        ResourceKind::Observation,
        ResourceKind::DiagnosticReport,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::Organization => "Organization",
            ResourceKind::Medication => "Medication",
            ResourceKind::Patient => "Patient",
            ResourceKind::Consent => "Consent",
            ResourceKind::Encounter => "Encounter",
            ResourceKind::Condition => "Condition",
            ResourceKind::Procedure => "Procedure",
            ResourceKind::MedicationStatement => "MedicationStatement",
            ResourceKind::MedicationAdministration => "MedicationAdministration",
            ResourceKind::Observation => "Observation",
            ResourceKind::DiagnosticReport => "DiagnosticReport",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// MII core data set profile canonicals (as in the MII test data's `meta.profile`).
pub mod profile {
    pub const PATIENT: &str = "https://www.medizininformatik-initiative.de/fhir/core/modul-person/StructureDefinition/Patient";
    pub const VITALSTATUS: &str = "https://www.medizininformatik-initiative.de/fhir/core/modul-person/StructureDefinition/Vitalstatus";
    pub const ENCOUNTER: &str = "https://www.medizininformatik-initiative.de/fhir/core/modul-fall/StructureDefinition/KontaktGesundheitseinrichtung";
    pub const CONDITION: &str = "https://www.medizininformatik-initiative.de/fhir/core/modul-diagnose/StructureDefinition/Diagnose";
    pub const PROCEDURE: &str = "https://www.medizininformatik-initiative.de/fhir/core/modul-prozedur/StructureDefinition/Procedure";
    pub const MEDICATION: &str = "https://www.medizininformatik-initiative.de/fhir/core/modul-medikation/StructureDefinition/Medication";
    pub const MEDICATION_STATEMENT: &str = "https://www.medizininformatik-initiative.de/fhir/core/modul-medikation/StructureDefinition/MedicationStatement";
    pub const MEDICATION_ADMINISTRATION: &str = "https://www.medizininformatik-initiative.de/fhir/core/modul-medikation/StructureDefinition/MedicationAdministration";
    pub const OBSERVATION_LAB: &str = "https://www.medizininformatik-initiative.de/fhir/core/modul-labor/StructureDefinition/ObservationLab";
    pub const DIAGNOSTIC_REPORT_LAB: &str = "https://www.medizininformatik-initiative.de/fhir/core/modul-labor/StructureDefinition/DiagnosticReportLab";
    pub const CONSENT: &str = "https://www.medizininformatik-initiative.de/fhir/modul-consent/StructureDefinition/mii-pr-consent-einwilligung";

    /// Every profile the generator uses (for conformance tests and documentation).
    pub const ALL: &[&str] = &[
        PATIENT,
        VITALSTATUS,
        ENCOUNTER,
        CONDITION,
        PROCEDURE,
        MEDICATION,
        MEDICATION_STATEMENT,
        MEDICATION_ADMINISTRATION,
        OBSERVATION_LAB,
        DIAGNOSTIC_REPORT_LAB,
        CONSENT,
    ];

    #[cfg(test)]
    #[test]
    fn profiles_are_mii() {
        const CORE: &str = "https://www.medizininformatik-initiative.de/fhir/core";
        for p in ALL {
            assert!(
                p.starts_with(CORE)
                    || p.starts_with(
                        "https://www.medizininformatik-initiative.de/fhir/modul-consent/"
                    )
            );
        }
    }
}

pub const UCUM: &str = "http://unitsofmeasure.org";
pub const LOINC: &str = "http://loinc.org";
pub const SNOMED: &str = "http://snomed.info/sct";
pub const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";

/// One generated resource as compact JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub kind: ResourceKind,
    pub id: String,
    /// The resource as one line of JSON (no trailing newline).
    pub json: String,
}

impl Resource {
    pub fn resource_type(&self) -> &'static str {
        self.kind.name()
    }

    pub fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(&self.json)
    }
}

/// Where finished resources go: a record of one patient, or per-type NDJSON buffers.
pub trait Sink {
    fn accept(&mut self, kind: ResourceKind, id: &str, json: &str);
}

impl Sink for Vec<Resource> {
    fn accept(&mut self, kind: ResourceKind, id: &str, json: &str) {
        self.push(Resource {
            kind,
            id: id.to_string(),
            json: json.to_string(),
        });
    }
}

/// Writes resources into a reused scratch buffer and hands them to a sink.
pub struct Emitter<'s> {
    scratch: String,
    sink: &'s mut dyn Sink,
    pub count: u64,
}

impl<'s> Emitter<'s> {
    pub fn new(sink: &'s mut dyn Sink) -> Self {
        Emitter {
            scratch: String::with_capacity(4096),
            sink,
            count: 0,
        }
    }

    /// Writes `resourceType`, `id` and `meta.profile`, then the body.
    pub fn emit(
        &mut self,
        kind: ResourceKind,
        id: &str,
        profile: Option<&str>,
        body: impl FnOnce(&mut Obj),
    ) {
        self.scratch.clear();
        object(&mut self.scratch, |o| {
            o.str("resourceType", kind.name()).str("id", id);
            if let Some(p) = profile {
                o.obj("meta", |m| {
                    m.arr("profile", |a| {
                        a.str(p);
                    });
                });
            }
            body(o);
        });
        self.sink.accept(kind, id, &self.scratch);
        self.count += 1;
    }
}

/// Writes the members of a Coding into `o`; an empty display is left out.
pub fn coding_fields(o: &mut Obj, system: &str, code: &str, display: &str) {
    o.str("system", system).str("code", code);
    if !display.is_empty() {
        o.str("display", display);
    }
}

/// `key: {coding: [{system, code, display}]}`.
pub fn concept(o: &mut Obj, key: &str, system: &str, code: &str, display: &str) {
    o.obj(key, |c| {
        c.arr("coding", |a| {
            a.obj(|cd| coding_fields(cd, system, code, display));
        });
    });
}

/// `key: [{coding: [...]}]` with a single concept.
pub fn concept_list(o: &mut Obj, key: &str, system: &str, code: &str, display: &str) {
    o.arr(key, |a| {
        a.obj(|c| {
            c.arr("coding", |a| {
                a.obj(|cd| coding_fields(cd, system, code, display));
            });
        });
    });
}

/// `key: {reference: "Type/id"}`.
pub fn reference(o: &mut Obj, key: &str, resource_type: &str, id: &str) {
    o.obj(key, |r| {
        r.str("reference", &format!("{resource_type}/{id}"));
    });
}

/// UCUM quantity members.
pub fn quantity_fields(o: &mut Obj, value: f64, decimals: usize, unit: &str) {
    o.decimal("value", value, decimals)
        .str("unit", unit)
        .str("system", UCUM)
        .str("code", unit);
}
