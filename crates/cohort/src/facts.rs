//! What a resource contributes to cohort queries: the patient it is about, its codes, its value,
//! its period and its filterable attributes, read from MII KDS-shaped JSON.

use serde_json::Value;

use crate::date::parse_partial;
use crate::plan::{Attr, Domain, Gender, normalize_system};

/// The value of an attribute of a fact.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrVal {
    Concept {
        system: String,
        code: String,
    },
    Quantity {
        value: f64,
        unit: Option<String>,
    },
    /// A literal reference `Type/id`.
    Reference(String),
}

/// One resource's contribution (a Consent contributes one per permitted policy code).
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    pub domain: Domain,
    /// (normalised system, code).
    pub codes: Vec<(String, String)>,
    /// For medication domains: the id of the Medication a `medicationReference` names.
    pub medication: Option<String>,
    pub quantity: Option<(f64, Option<String>)>,
    pub value_concepts: Vec<(String, String)>,
    /// Inclusive day range; `None` when the resource carries no usable date.
    pub period: Option<(i32, i32)>,
    pub attrs: Vec<(Attr, AttrVal)>,
}

/// What one resource means to the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Extracted {
    Patient {
        id: String,
        gender: Option<Gender>,
        birth: Option<i32>,
    },
    Medication {
        id: String,
        codes: Vec<(String, String)>,
    },
    Facts {
        patient: String,
        facts: Vec<Fact>,
        /// For Consent resources: the parts research eligibility is decided from.
        consent: Option<Value>,
    },
    /// Nothing the engine uses (other types, or no patient).
    Nothing,
}

/// The id of a `Patient/<id>` reference (relative or absolute).
pub fn patient_ref(v: Option<&Value>) -> Option<String> {
    let r = v?.get("reference")?.as_str()?;
    let mut parts = r.rsplit('/');
    let id = parts.next()?;
    (parts.next()? == "Patient" && !id.is_empty()).then(|| id.to_owned())
}

fn codings(v: Option<&Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut one = |cc: &Value| {
        if let Some(list) = cc.get("coding").and_then(Value::as_array) {
            for c in list {
                if let Some(code) = c.get("code").and_then(Value::as_str) {
                    let system = c.get("system").and_then(Value::as_str).unwrap_or("");
                    out.push((normalize_system(system).to_owned(), code.to_owned()));
                }
            }
        }
    };
    match v {
        Some(Value::Array(a)) => a.iter().for_each(&mut one),
        Some(cc) => one(cc),
        None => {}
    }
    out
}

fn quantity(v: Option<&Value>) -> Option<(f64, Option<String>)> {
    let q = v?;
    let value = q.get("value")?.as_f64()?;
    let unit = q
        .get("code")
        .or_else(|| q.get("unit"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some((value, unit))
}

/// The day range of a dateTime or Period element.
fn period_of(date_time: Option<&Value>, period: Option<&Value>) -> Option<(i32, i32)> {
    if let Some(s) = date_time.and_then(Value::as_str) {
        return parse_partial(s);
    }
    let p = period?;
    let start = p
        .get("start")
        .and_then(Value::as_str)
        .and_then(parse_partial)
        .map(|r| r.0);
    let end = p
        .get("end")
        .and_then(Value::as_str)
        .and_then(parse_partial)
        .map(|r| r.1);
    match (start, end) {
        (None, None) => None,
        (s, e) => Some((s.unwrap_or(i32::MIN), e.unwrap_or(i32::MAX))),
    }
}

fn concept_attrs(out: &mut Vec<(Attr, AttrVal)>, attr: Attr, v: Option<&Value>) {
    for (system, code) in codings(v) {
        out.push((attr, AttrVal::Concept { system, code }));
    }
}

fn status_attr(out: &mut Vec<(Attr, AttrVal)>, r: &Value) {
    if let Some(s) = r.get("status").and_then(Value::as_str) {
        out.push((
            Attr::Status,
            AttrVal::Concept {
                system: String::new(),
                code: s.to_owned(),
            },
        ));
    }
}

fn references(out: &mut Vec<(Attr, AttrVal)>, attr: Attr, v: Option<&Value>) {
    let mut one = |r: &Value| {
        if let Some(s) = r.get("reference").and_then(Value::as_str) {
            out.push((attr, AttrVal::Reference(s.to_owned())));
        }
    };
    match v {
        Some(Value::Array(a)) => a.iter().for_each(&mut one),
        Some(r) => one(r),
        None => {}
    }
}

/// Reads one resource.
pub fn extract(r: &Value) -> Extracted {
    let Some(rt) = r.get("resourceType").and_then(Value::as_str) else {
        return Extracted::Nothing;
    };
    let id = r.get("id").and_then(Value::as_str).unwrap_or("").to_owned();
    match rt {
        "Patient" => {
            if id.is_empty() {
                return Extracted::Nothing;
            }
            Extracted::Patient {
                id,
                gender: r
                    .get("gender")
                    .and_then(Value::as_str)
                    .and_then(Gender::from_fhir),
                birth: r
                    .get("birthDate")
                    .and_then(Value::as_str)
                    .and_then(parse_partial)
                    .map(|p| p.0),
            }
        }
        "Medication" => Extracted::Medication {
            id,
            codes: codings(r.get("code")),
        },
        _ => {
            let Some(domain) = Domain::from_resource_type(rt) else {
                return Extracted::Nothing;
            };
            let subject = if domain == Domain::Consent {
                r.get("patient")
            } else {
                r.get("subject")
            };
            let Some(patient) = patient_ref(subject) else {
                return Extracted::Nothing;
            };
            if domain == Domain::Consent {
                return Extracted::Facts {
                    patient,
                    facts: consent_facts(r),
                    consent: Some(crate::consent::trim(r)),
                };
            }
            Extracted::Facts {
                patient,
                facts: vec![clinical_fact(domain, r)],
                consent: None,
            }
        }
    }
}

fn clinical_fact(domain: Domain, r: &Value) -> Fact {
    let mut attrs = Vec::new();
    let mut quantity_value = None;
    let mut value_concepts = Vec::new();
    let mut medication = None;
    let (codes, period) = match domain {
        Domain::Condition => {
            concept_attrs(&mut attrs, Attr::ClinicalStatus, r.get("clinicalStatus"));
            concept_attrs(
                &mut attrs,
                Attr::VerificationStatus,
                r.get("verificationStatus"),
            );
            concept_attrs(&mut attrs, Attr::Severity, r.get("severity"));
            concept_attrs(&mut attrs, Attr::BodySite, r.get("bodySite"));
            if let Some(s) = r.get("clinicalStatus") {
                // CCDL's "status" of a Diagnose is its clinical status.
                concept_attrs(&mut attrs, Attr::Status, Some(s));
            }
            let period = period_of(r.get("onsetDateTime"), r.get("onsetPeriod")).or_else(|| {
                r.get("recordedDate")
                    .and_then(Value::as_str)
                    .and_then(parse_partial)
            });
            (codings(r.get("code")), period)
        }
        Domain::Procedure => {
            status_attr(&mut attrs, r);
            concept_attrs(&mut attrs, Attr::BodySite, r.get("bodySite"));
            references(&mut attrs, Attr::Diagnosis, r.get("reasonReference"));
            (
                codings(r.get("code")),
                period_of(r.get("performedDateTime"), r.get("performedPeriod")),
            )
        }
        Domain::Observation => {
            status_attr(&mut attrs, r);
            concept_attrs(&mut attrs, Attr::Interpretation, r.get("interpretation"));
            concept_attrs(&mut attrs, Attr::Method, r.get("method"));
            concept_attrs(&mut attrs, Attr::BodySite, r.get("bodySite"));
            quantity_value = quantity(r.get("valueQuantity"));
            value_concepts = codings(r.get("valueCodeableConcept"));
            (
                codings(r.get("code")),
                period_of(r.get("effectiveDateTime"), r.get("effectivePeriod")).or_else(|| {
                    r.get("issued")
                        .and_then(Value::as_str)
                        .and_then(parse_partial)
                }),
            )
        }
        Domain::MedicationStatement
        | Domain::MedicationRequest
        | Domain::MedicationAdministration => {
            status_attr(&mut attrs, r);
            if domain != Domain::MedicationAdministration {
                references(&mut attrs, Attr::Diagnosis, r.get("reasonReference"));
            }
            let dosages: Vec<&Value> = match r.get("dosage").or_else(|| r.get("dosageInstruction"))
            {
                Some(Value::Array(a)) => a.iter().collect(),
                Some(d) => vec![d],
                None => Vec::new(),
            };
            for d in dosages {
                if let Some(q) = quantity(d.get("dose")) {
                    attrs.push((
                        Attr::Dose,
                        AttrVal::Quantity {
                            value: q.0,
                            unit: q.1,
                        },
                    ));
                }
                if let Some(Value::Array(list)) = d.get("doseAndRate") {
                    for dr in list {
                        if let Some(q) = quantity(dr.get("doseQuantity")) {
                            attrs.push((
                                Attr::Dose,
                                AttrVal::Quantity {
                                    value: q.0,
                                    unit: q.1,
                                },
                            ));
                        }
                    }
                }
            }
            medication = r
                .get("medicationReference")
                .and_then(|m| m.get("reference"))
                .and_then(Value::as_str)
                .and_then(|s| s.strip_prefix("Medication/"))
                .map(str::to_owned);
            let period = if domain == Domain::MedicationRequest {
                r.get("authoredOn")
                    .and_then(Value::as_str)
                    .and_then(parse_partial)
            } else {
                period_of(r.get("effectiveDateTime"), r.get("effectivePeriod"))
            };
            (codings(r.get("medicationCodeableConcept")), period)
        }
        Domain::Specimen => {
            status_attr(&mut attrs, r);
            let collection = r.get("collection");
            concept_attrs(
                &mut attrs,
                Attr::BodySite,
                collection.and_then(|c| c.get("bodySite")),
            );
            if let Some(Value::Array(exts)) = r.get("extension") {
                for e in exts {
                    let url = e.get("url").and_then(Value::as_str).unwrap_or("");
                    if url.ends_with("/Diagnose") {
                        references(&mut attrs, Attr::Diagnosis, e.get("valueReference"));
                    }
                }
            }
            (
                codings(r.get("type")),
                period_of(
                    collection.and_then(|c| c.get("collectedDateTime")),
                    collection.and_then(|c| c.get("collectedPeriod")),
                ),
            )
        }
        Domain::Consent => (Vec::new(), None),
    };
    Fact {
        domain,
        codes,
        medication,
        quantity: quantity_value,
        value_concepts,
        period,
        attrs,
    }
}

/// One fact per policy code a nested `permit` provision of an active Consent grants, with that
/// provision's period: a consent criterion asks whether a permit of the code overlaps the window.
fn consent_facts(r: &Value) -> Vec<Fact> {
    if r.get("status").and_then(Value::as_str) != Some("active") {
        return Vec::new();
    }
    let mut out = Vec::new();
    let nested = r
        .get("provision")
        .and_then(|p| p.get("provision"))
        .and_then(Value::as_array);
    for p in nested.into_iter().flatten() {
        if p.get("type").and_then(Value::as_str) != Some("permit") {
            continue;
        }
        let Some(period) = period_of(None, p.get("period")) else {
            continue;
        };
        for (system, code) in codings(p.get("code")) {
            out.push(Fact {
                domain: Domain::Consent,
                codes: vec![(system, code)],
                medication: None,
                quantity: None,
                value_concepts: Vec::new(),
                period: Some(period),
                attrs: Vec::new(),
            });
        }
    }
    out
}

/// The members [`extract`] reads, deserialised without building the rest of the resource:
/// the store's bodies carry narrative, identifiers, reference ranges and more that cohorts do
/// not need, and building them as `Value`s was most of the index build's time.
#[derive(serde::Deserialize)]
#[allow(non_snake_case)] // FHIR member names
struct Slim {
    resourceType: Option<Value>,
    id: Option<Value>,
    code: Option<Value>,
    subject: Option<Value>,
    patient: Option<Value>,
    status: Option<Value>,
    clinicalStatus: Option<Value>,
    verificationStatus: Option<Value>,
    severity: Option<Value>,
    bodySite: Option<Value>,
    onsetDateTime: Option<Value>,
    onsetPeriod: Option<Value>,
    recordedDate: Option<Value>,
    performedDateTime: Option<Value>,
    performedPeriod: Option<Value>,
    interpretation: Option<Value>,
    method: Option<Value>,
    valueQuantity: Option<Value>,
    valueCodeableConcept: Option<Value>,
    effectiveDateTime: Option<Value>,
    effectivePeriod: Option<Value>,
    issued: Option<Value>,
    dosage: Option<Value>,
    dosageInstruction: Option<Value>,
    medicationReference: Option<Value>,
    medicationCodeableConcept: Option<Value>,
    reasonReference: Option<Value>,
    authoredOn: Option<Value>,
    collection: Option<Value>,
    extension: Option<Value>,
    #[serde(rename = "type")]
    type_: Option<Value>,
    gender: Option<Value>,
    birthDate: Option<Value>,
    provision: Option<Value>,
    category: Option<Value>,
    dateTime: Option<Value>,
    policy: Option<Value>,
}

/// [`extract`] from stored JSON bytes; `None` when they are not a JSON object.
pub fn extract_bytes(json: &[u8]) -> Option<Extracted> {
    let s: Slim = serde_json::from_slice(json).ok()?;
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.to_owned(), v);
        }
    };
    put("resourceType", s.resourceType);
    put("id", s.id);
    put("code", s.code);
    put("subject", s.subject);
    put("patient", s.patient);
    put("status", s.status);
    put("clinicalStatus", s.clinicalStatus);
    put("verificationStatus", s.verificationStatus);
    put("severity", s.severity);
    put("bodySite", s.bodySite);
    put("onsetDateTime", s.onsetDateTime);
    put("onsetPeriod", s.onsetPeriod);
    put("recordedDate", s.recordedDate);
    put("performedDateTime", s.performedDateTime);
    put("performedPeriod", s.performedPeriod);
    put("interpretation", s.interpretation);
    put("method", s.method);
    put("valueQuantity", s.valueQuantity);
    put("valueCodeableConcept", s.valueCodeableConcept);
    put("effectiveDateTime", s.effectiveDateTime);
    put("effectivePeriod", s.effectivePeriod);
    put("issued", s.issued);
    put("dosage", s.dosage);
    put("dosageInstruction", s.dosageInstruction);
    put("medicationReference", s.medicationReference);
    put("medicationCodeableConcept", s.medicationCodeableConcept);
    put("reasonReference", s.reasonReference);
    put("authoredOn", s.authoredOn);
    put("collection", s.collection);
    put("extension", s.extension);
    put("type", s.type_);
    put("gender", s.gender);
    put("birthDate", s.birthDate);
    put("provision", s.provision);
    put("category", s.category);
    put("dateTime", s.dateTime);
    put("policy", s.policy);
    Some(extract(&Value::Object(m)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slim_extraction_equals_full_extraction() {
        let bundle: Value =
            serde_json::from_str(include_str!("../data/ccdl/test-data.json")).unwrap();
        let mut n = 0;
        for e in bundle["entry"].as_array().unwrap() {
            let r = &e["resource"];
            let bytes = serde_json::to_vec(r).unwrap();
            assert_eq!(extract_bytes(&bytes), Some(extract(r)), "{}", r["id"]);
            n += 1;
        }
        assert!(n > 5);
        assert_eq!(extract_bytes(b"[1,2]"), None);
    }
}
