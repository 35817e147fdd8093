//! Objections (opt-out) and withdrawals: reading them for evaluation and for the patient's view,
//! and writing the Consent resources that record them.

use serde_json::{Value, json};

use crate::{Day, Objection, Period, codes};

/// Which gICS template a document follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectionKind {
    /// `CONSENT-OPT-OUT`: an objection (full, or per purpose).
    OptOut,
    /// `WITHDRAWAL`: a Broad Consent withdrawn.
    Withdrawal,
}

/// One objection document as the patient sees it (current and past).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ObjectionRecord {
    /// The Consent's id (absent only for a resource not yet stored).
    pub id: Option<String>,
    pub kind: ObjectionKind,
    /// `active`, or `inactive` once the objection was withdrawn.
    pub status: String,
    /// When it was recorded (`Consent.dateTime`).
    pub recorded: Option<String>,
    /// Purpose codes; empty for a full objection.
    pub purposes: Vec<String>,
    pub start: Option<Day>,
    pub end: Option<Day>,
}

/// A patient's objection status on one day.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ObjectionStatus {
    /// A full objection (or withdrawal) is in effect.
    pub full: bool,
    /// Purposes objected to by purpose-specific objections in effect.
    pub purposes: Vec<String>,
    /// Every objection document, active or withdrawn, oldest first.
    pub history: Vec<ObjectionRecord>,
}

/// The template of an objection document, `None` for any other Consent.
pub(crate) fn template(consent: &Value) -> Option<ObjectionKind> {
    let codings = consent
        .get("category")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|cc| cc.get("coding").and_then(Value::as_array))
        .flatten();
    for c in codings {
        if c.get("system").and_then(Value::as_str) != Some(codes::TEMPLATE_TYPE_SYSTEM) {
            continue;
        }
        match c.get("code").and_then(Value::as_str) {
            Some(codes::TEMPLATE_OPT_OUT) => return Some(ObjectionKind::OptOut),
            Some(codes::TEMPLATE_WITHDRAWAL) => return Some(ObjectionKind::Withdrawal),
            _ => {}
        }
    }
    None
}

/// Purposes of `provision.purpose`. A purpose coded only in a system medicus does not know
/// cannot be matched to a project: the objection then counts as full (fails closed).
fn purposes(consent: &Value) -> Vec<String> {
    let Some(list) = consent
        .pointer("/provision/purpose")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for coding in list {
        let known = coding.get("system").and_then(Value::as_str) == Some(codes::PURPOSE_SYSTEM);
        match coding.get("code").and_then(Value::as_str) {
            Some(code) if known => out.push(code.to_string()),
            _ => return Vec::new(),
        }
    }
    out
}

fn bounds(consent: &Value) -> (Option<Day>, Option<Day>) {
    let day = |ptr: &str| {
        consent
            .pointer(ptr)
            .and_then(Value::as_str)
            .and_then(Day::parse_fhir)
    };
    let start = day("/provision/period/start").or_else(|| day("/dateTime"));
    (start, day("/provision/period/end"))
}

/// The objection an active Consent records, if it is an objection document. Missing or partial
/// dates make it open on that side: an objection is never dropped for a bad date.
pub(crate) fn active_objection(consent: &Value) -> Option<Objection> {
    let kind = template(consent)?;
    let (start, end) = bounds(consent);
    let start = start.unwrap_or(Day::MIN);
    let end = end.unwrap_or(Day::MAX);
    Some(Objection {
        kind,
        purposes: purposes(consent),
        period: Period {
            start: start.min(end),
            end: end.max(start),
        },
    })
}

/// Every objection document among `consents` (any status), oldest first.
pub fn objection_history(consents: &[Value]) -> Vec<ObjectionRecord> {
    let mut out: Vec<ObjectionRecord> = consents
        .iter()
        .filter(|c| c.get("resourceType").and_then(Value::as_str) == Some("Consent"))
        .filter_map(|c| {
            let kind = template(c)?;
            let (start, end) = bounds(c);
            Some(ObjectionRecord {
                id: c.get("id").and_then(Value::as_str).map(str::to_string),
                kind,
                status: c
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_string(),
                recorded: c
                    .get("dateTime")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                purposes: purposes(c),
                start,
                end,
            })
        })
        .collect();
    out.sort_by(|a, b| (a.start, &a.recorded, &a.id).cmp(&(b.start, &b.recorded, &b.id)));
    out
}

/// The objections in effect on `at` and the whole history.
pub fn objection_status(consents: &[Value], at: Day) -> ObjectionStatus {
    let mut full = false;
    let mut purposes: Vec<String> = Vec::new();
    for c in consents {
        if c.get("resourceType").and_then(Value::as_str) != Some("Consent")
            || c.get("status").and_then(Value::as_str) != Some("active")
        {
            continue;
        }
        let Some(o) = active_objection(c) else {
            continue;
        };
        if !o.period.contains(at) {
            continue;
        }
        if o.purposes.is_empty() {
            full = true;
        } else {
            purposes.extend(o.purposes);
        }
    }
    purposes.sort();
    purposes.dedup();
    ObjectionStatus {
        full,
        purposes,
        history: objection_history(consents),
    }
}

/// A new objection Consent for `patient_id`, in effect from `from` (open-ended): full when
/// `purposes` is empty, else for those purposes. `recorded` is the FHIR `dateTime` of recording.
pub fn objection_consent(
    patient_id: &str,
    purposes: &[String],
    from: Day,
    recorded: &str,
) -> Value {
    let mut provision = json!({
        "type": "deny",
        "period": { "start": from.to_string() },
    });
    if !purposes.is_empty() {
        provision["purpose"] = Value::Array(
            purposes
                .iter()
                .map(|p| json!({ "system": codes::PURPOSE_SYSTEM, "code": p }))
                .collect(),
        );
    }
    json!({
        "resourceType": "Consent",
        "status": "active",
        "scope": { "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/consentscope",
            "code": "research"
        }]},
        "category": [
            { "coding": [{ "system": "http://loinc.org", "code": "57016-8" }] },
            { "coding": [{ "system": codes::TEMPLATE_TYPE_SYSTEM, "code": codes::TEMPLATE_OPT_OUT }] }
        ],
        "patient": { "reference": format!("Patient/{patient_id}") },
        "dateTime": recorded,
        "policy": [{ "uri": codes::POLICY_SYSTEM }],
        "provision": provision,
    })
}

/// Why an objection cannot be withdrawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WithdrawError {
    NotAnObjection,
    NotActive,
}

impl std::fmt::Display for WithdrawError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WithdrawError::NotAnObjection => "the Consent is not an objection",
            WithdrawError::NotActive => "the objection is not active",
        })
    }
}

impl std::error::Error for WithdrawError {}

/// The next version of an objection Consent once the patient withdrew it on `on`: `inactive`,
/// its period ending the day before (kept for the history). Only `CONSENT-OPT-OUT` objections
/// can be withdrawn this way; a withdrawn Broad Consent needs a new consent.
pub fn withdraw_objection(consent: &Value, on: Day) -> Result<Value, WithdrawError> {
    if template(consent) != Some(ObjectionKind::OptOut) {
        return Err(WithdrawError::NotAnObjection);
    }
    if consent.get("status").and_then(Value::as_str) != Some("active") {
        return Err(WithdrawError::NotActive);
    }
    let mut next = consent.clone();
    next["status"] = Value::from("inactive");
    let start = bounds(consent).0;
    let end = on.plus(-1);
    if let Some(provision) = next.get_mut("provision").and_then(Value::as_object_mut) {
        let period = provision.entry("period").or_insert_with(|| json!({}));
        if let Some(p) = period.as_object_mut() {
            // An objection recorded and withdrawn on the same day covered no full day.
            let end = start.map_or(end, |s| end.max(s));
            p.insert("end".into(), Value::from(end.to_string()));
        }
    }
    Ok(next)
}
