//! Extraction of one project's data under an active permit: the patients whose consent (or the
//! permit's legal basis) allows the purpose, the requested types, elements and time window,
//! de-identified, as NDJSON lines per type, with a manifest.
//!
//! Reproducible: the output is a function of the permit, the project keys, the data and the
//! evaluation day (the caller hands patients over in a fixed order, e.g. by id). Refused when
//! the permit does not allow the user, the output or the moment ([`DataPermit::check`]).

use std::collections::BTreeMap;

use medicus_consent::{ConsentPolicy, Day, Exclusion, Period, Periods, data_time, evaluate};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::deid::{DeidConfig, Deidentifier};
use crate::error::{ResearchError, Result};
use crate::keys::ProjectKeys;
use crate::project::{DataPermit, OutputKind};

/// Where NDJSON lines go (files in the project's bucket, or memory).
pub trait NdjsonSink {
    /// Appends one line (without the newline) to the file of `resource_type`.
    fn line(&mut self, resource_type: &str, json: &[u8]) -> Result<()>;
}

/// Files in memory, by type.
impl NdjsonSink for BTreeMap<String, Vec<u8>> {
    fn line(&mut self, resource_type: &str, json: &[u8]) -> Result<()> {
        let file = self.entry(resource_type.to_string()).or_default();
        file.extend_from_slice(json);
        file.push(b'\n');
        Ok(())
    }
}

/// One patient, prepared for writing ([`Extractor::prepare`]).
#[derive(Debug)]
pub struct Prepared {
    outcome: Result<(), Exclusion>,
    /// `(resource type, NDJSON line)` in the order of the patient's resources.
    lines: Vec<(String, Vec<u8>)>,
}

/// What happened to one patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatientOutcome {
    Excluded(Exclusion),
    Extracted { resources: usize },
}

#[derive(Default)]
struct FileStats {
    lines: u64,
    hash: Sha256,
}

/// One extraction run.
pub struct Extractor<'a> {
    permit: &'a DataPermit,
    keys: &'a ProjectKeys,
    tenant: &'a str,
    policy: ConsentPolicy,
    deid: DeidConfig,
    today: Day,
    /// The permit's requested time window.
    window: Periods,
    files: BTreeMap<String, FileStats>,
    patients: u64,
    excluded: BTreeMap<&'static str, u64>,
}

impl<'a> Extractor<'a> {
    /// Starts a run for `user` at `now_s` (seconds since the epoch), evaluating consent on the
    /// day of `now_s`.
    pub fn new(
        permit: &'a DataPermit,
        keys: &'a ProjectKeys,
        tenant: &'a str,
        user: &str,
        now_s: i64,
        deid: DeidConfig,
    ) -> Result<Extractor<'a>> {
        permit
            .check(user, OutputKind::Ndjson, now_s)
            .map_err(|denied| ResearchError::Forbidden(denied.to_string()))?;
        if keys.project() != permit.project {
            return Err(ResearchError::Forbidden(
                "the keys belong to another project".into(),
            ));
        }
        let bound = |v: &Option<String>, open: Day| -> Result<Day> {
            match v {
                None => Ok(open),
                Some(s) => Day::parse_fhir(s).ok_or_else(|| {
                    ResearchError::Invalid("the permit's time window is not made of dates".into())
                }),
            }
        };
        let from = bound(&permit.scope.from, Day::MIN)?;
        let to = bound(&permit.scope.to, Day::MAX)?;
        let window = Period::new(from, to)
            .map(|p| Periods::of([p]))
            .unwrap_or_default();
        Ok(Extractor {
            permit,
            keys,
            tenant,
            policy: ConsentPolicy::default(),
            deid,
            today: Day(i32::try_from(now_s.div_euclid(86_400)).unwrap_or(Day::MAX.0)),
            window,
            files: BTreeMap::new(),
            patients: 0,
            excluded: BTreeMap::new(),
        })
    }

    /// Another consent policy (e.g. with `.46` as a retrospective modifier).
    pub fn with_policy(mut self, policy: ConsentPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Extracts one patient of the cohort from all their resources (their compartment,
    /// including their Consents and Encounters): [`Extractor::prepare`] then
    /// [`Extractor::write`].
    pub fn patient(
        &mut self,
        patient_id: &str,
        resources: &[Value],
        sink: &mut dyn NdjsonSink,
    ) -> Result<PatientOutcome> {
        let prepared = self.prepare(patient_id, resources)?;
        self.write(prepared, sink)
    }

    /// The work of one patient without writing it: consent, window, selection and
    /// de-identification. Takes `&self`, so patients can be prepared on several threads; the
    /// results go to [`Extractor::write`] in the patients' order, which keeps the output
    /// reproducible.
    pub fn prepare(&self, patient_id: &str, resources: &[Value]) -> Result<Prepared> {
        let of_type = |t: &'static str| -> Vec<Value> {
            resources
                .iter()
                .filter(|r| r.get("resourceType").and_then(Value::as_str) == Some(t))
                .cloned()
                .collect()
        };
        let consent = evaluate(&self.policy, &of_type("Consent"), &of_type("Encounter"));
        let window = match consent.decide(self.permit.legal_basis, &self.permit.purpose, self.today)
        {
            Ok(w) => w.intersect(&self.window),
            Err(why) => {
                return Ok(Prepared {
                    outcome: Err(why),
                    lines: Vec::new(),
                });
            }
        };
        let deid = Deidentifier::new(self.keys, self.tenant, patient_id, self.deid);
        let mut lines = Vec::new();
        for r in resources {
            let Some(rtype) = r.get("resourceType").and_then(Value::as_str) else {
                continue;
            };
            if !self.permit.scope.resource_types.iter().any(|t| t == rtype)
                || !data_time(r).within(&window)
            {
                continue;
            }
            let out = select(deid.deidentify(r)?, self.permit.scope.elements.get(rtype));
            let line =
                serde_json::to_vec(&out).map_err(|e| ResearchError::Invalid(e.to_string()))?;
            lines.push((rtype.to_string(), line));
        }
        Ok(Prepared {
            outcome: Ok(()),
            lines,
        })
    }

    /// Writes a prepared patient and counts it.
    pub fn write(
        &mut self,
        prepared: Prepared,
        sink: &mut dyn NdjsonSink,
    ) -> Result<PatientOutcome> {
        if let Err(why) = prepared.outcome {
            *self.excluded.entry(exclusion_name(why)).or_default() += 1;
            return Ok(PatientOutcome::Excluded(why));
        }
        let written = prepared.lines.len();
        for (rtype, line) in prepared.lines {
            sink.line(&rtype, &line)?;
            let stats = self.files.entry(rtype).or_default();
            stats.lines += 1;
            stats.hash.update(&line);
            stats.hash.update(b"\n");
        }
        self.patients += 1;
        Ok(PatientOutcome::Extracted { resources: written })
    }

    /// The manifest: permit, counts and the SHA-256 of every file (`{type}.ndjson`).
    pub fn manifest(self) -> Value {
        let files: Vec<Value> = self
            .files
            .into_iter()
            .map(|(t, s)| {
                let hash: String = s
                    .hash
                    .finalize()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                json!({ "type": t, "url": format!("{t}.ndjson"), "count": s.lines, "sha256": hash })
            })
            .collect();
        json!({
            "project": self.permit.project,
            "permit": self.permit.id,
            "purpose": self.permit.purpose,
            "legalBasis": self.permit.legal_basis,
            "consentEvaluatedOn": self.today.to_string(),
            "patients": self.patients,
            "excluded": self.excluded,
            "output": files,
        })
    }
}

fn exclusion_name(e: Exclusion) -> &'static str {
    match e {
        Exclusion::NoConsent => "no-consent",
        Exclusion::GateClosed => "consent-not-valid",
        Exclusion::Objected => "objected",
    }
}

/// Only the requested elements (as `Type.element…` or `element…`; the first segment counts),
/// plus `resourceType`, `id` and `meta`; all when none are listed.
fn select(resource: Value, elements: Option<&Vec<String>>) -> Value {
    let Some(elements) = elements.filter(|e| !e.is_empty()) else {
        return resource;
    };
    let Value::Object(obj) = resource else {
        return resource;
    };
    let wanted: Vec<&str> = elements
        .iter()
        .map(|e| {
            let mut parts = e.split('.');
            let first = parts.next().unwrap_or_default();
            // `Observation.code` → `code`; a bare `code` stays.
            if first.starts_with(|c: char| c.is_ascii_uppercase()) {
                parts.next().unwrap_or_default()
            } else {
                first
            }
        })
        .collect();
    let out: Map<String, Value> = obj
        .into_iter()
        .filter(|(k, _)| {
            matches!(k.as_str(), "resourceType" | "id" | "meta")
                || wanted.iter().any(|w| {
                    // `effective` selects `effectiveDateTime`, `effectivePeriod`, … (a choice).
                    k.strip_prefix(w).is_some_and(|rest| {
                        rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_uppercase())
                    })
                })
        })
        .collect();
    Value::Object(out)
}

#[cfg(test)]
#[path = "extract_tests.rs"]
mod tests;
