//! De-identification of one FHIR resource for a research project.
//!
//! Rules (docs/research.md lists them with their reasons):
//! - Names, telecom, photos, contacts and links are removed everywhere; an address keeps only
//!   the first two digits of its postal code.
//! - Every identifier (any `identifier`, `…Identifier`, `requisition`) is replaced: the Patient's
//!   by its project pseudonym (system [`PSEUDONYM_SYSTEM`], type `PSEUDED` as in the MII profile
//!   PatientPseudonymisiert), any other by a keyed token. Resource ids and references are
//!   rewritten consistently: `Patient/x` → `Patient/<pseudonym of x>`, `T/y` → `T/<token(T, y)>`;
//!   a reference that cannot be rewritten is removed.
//! - Dates are shifted by the patient's secret offset (default ±14 days, never 0): every string
//!   that is a date, dateTime or instant with a day, and partial dates under date-named keys.
//!   The birth date is not shifted but reduced to year-month (default) or year.
//! - Narrative and free text are dropped: `text`, `note`, `comment`, `description`, `conclusion`,
//!   string/markdown/annotation/attachment values, attachments, a Reference's `display`, element
//!   ids, and `meta` except `meta.profile`.
//!
//! The rules are a whitelist in spirit: what could carry free text goes, and an element left
//! empty (an extension without its value) goes with it.

use medicus_consent::Day;
use serde_json::{Map, Value};

use crate::error::{ResearchError, Result};
use crate::keys::ProjectKeys;

/// The identifier system of patient pseudonyms (MII).
pub const PSEUDONYM_SYSTEM: &str = "https://www.medizininformatik-initiative.de/fhir/sid/pseudonym";
/// The identifier system of the tokens replacing other identifiers.
pub const TOKEN_SYSTEM: &str = "https://medicus-health.github.io/fhir/sid/research-token";

/// How much of the birth date is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BirthDatePrecision {
    YearMonth,
    Year,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeidConfig {
    /// Dates move by a per-patient offset in `-max_shift_days..=max_shift_days`, never 0.
    pub max_shift_days: u32,
    pub birth_date: BirthDatePrecision,
}

impl Default for DeidConfig {
    fn default() -> Self {
        DeidConfig {
            max_shift_days: 14,
            birth_date: BirthDatePrecision::YearMonth,
        }
    }
}

/// Keys whose value is dropped wherever they appear.
const DROP: &[&str] = &[
    "text",
    "div",
    "note",
    "comment",
    "description",
    "conclusion",
    "patientInstruction",
    "name",
    "alias",
    "telecom",
    "photo",
    "contact",
    "link",
    "attachment",
    "presentedForm",
    "data",
    "subscriberId",
    "serialNumber",
    "lotNumber",
    "udiCarrier",
    "valueString",
    "valueMarkdown",
    "valueHumanName",
    "valueContactPoint",
    "valueAnnotation",
    "valueAttachment",
    "valueUri",
    "valueUrl",
    "valueBase64Binary",
    "answer",
];

/// De-identifies the resources of one patient for one project.
pub struct Deidentifier<'a> {
    keys: &'a ProjectKeys,
    tenant: &'a str,
    patient_id: &'a str,
    pseudonym: String,
    offset: i32,
    config: DeidConfig,
}

impl<'a> Deidentifier<'a> {
    /// For the resources of patient `patient_id` of `tenant`.
    pub fn new(
        keys: &'a ProjectKeys,
        tenant: &'a str,
        patient_id: &'a str,
        config: DeidConfig,
    ) -> Deidentifier<'a> {
        Deidentifier {
            keys,
            tenant,
            patient_id,
            pseudonym: keys.patient_pseudonym(tenant, patient_id),
            offset: keys.date_offset(tenant, patient_id, config.max_shift_days),
            config,
        }
    }

    /// The patient's pseudonym in the project.
    pub fn pseudonym(&self) -> &str {
        &self.pseudonym
    }

    /// The de-identified copy of `resource`.
    pub fn deidentify(&self, resource: &Value) -> Result<Value> {
        let obj = resource
            .as_object()
            .ok_or_else(|| ResearchError::Invalid("a resource is a JSON object".into()))?;
        self.resource(obj).map(Value::Object)
    }

    fn resource(&self, obj: &Map<String, Value>) -> Result<Map<String, Value>> {
        let rtype = obj
            .get("resourceType")
            .and_then(Value::as_str)
            .ok_or_else(|| ResearchError::Invalid("resourceType missing".into()))?;
        let mut out = Map::new();
        for (k, v) in obj {
            match k.as_str() {
                "resourceType" => {
                    out.insert(k.clone(), v.clone());
                }
                "id" => {
                    if let Some(id) = v.as_str() {
                        out.insert("id".into(), Value::from(self.map_id(rtype, id)));
                    }
                }
                "meta" => {
                    if let Some(profile) = v.get("profile").filter(|p| p.is_array()) {
                        let mut meta = Map::new();
                        meta.insert("profile".into(), profile.clone());
                        out.insert("meta".into(), Value::Object(meta));
                    }
                }
                "contained" => {
                    let list: Vec<Value> = v
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|c| c.as_object())
                        .filter_map(|c| self.contained(c).ok())
                        .map(Value::Object)
                        .collect();
                    if !list.is_empty() {
                        out.insert(k.clone(), Value::Array(list));
                    }
                }
                "birthDate" => {
                    if let Some(b) = v.as_str().and_then(|b| self.birth_date(b)) {
                        out.insert(k.clone(), Value::from(b));
                    }
                }
                _ if is_identifier_key(k) => {
                    if let Some(v) = self.identifiers(rtype == "Patient", v) {
                        out.insert(k.clone(), v);
                    }
                }
                _ => {
                    if let Some(v) = self.element(k, v) {
                        out.insert(k.clone(), v);
                    }
                }
            }
        }
        Ok(out)
    }

    /// A contained resource keeps its local id (references to it are `#id`).
    fn contained(&self, obj: &Map<String, Value>) -> Result<Map<String, Value>> {
        let mut out = self.resource(obj)?;
        if let Some(id) = obj.get("id") {
            out.insert("id".into(), id.clone());
        }
        Ok(out)
    }

    /// Any element below the resource level; `None` drops it.
    fn element(&self, key: &str, v: &Value) -> Option<Value> {
        if dropped(key) {
            return None;
        }
        if is_identifier_key(key) {
            return self.identifiers(false, v);
        }
        match v {
            Value::Object(o) => {
                if key == "address" || key == "valueAddress" {
                    return address(o);
                }
                self.object(o).map(Value::Object)
            }
            Value::Array(a) => {
                if key == "address" {
                    let list: Vec<Value> = a
                        .iter()
                        .filter_map(|x| x.as_object())
                        .filter_map(address)
                        .collect();
                    return (!list.is_empty()).then_some(Value::Array(list));
                }
                let list: Vec<Value> = a.iter().filter_map(|x| self.element(key, x)).collect();
                (!list.is_empty()).then_some(Value::Array(list))
            }
            Value::String(s) => self.string(key, s),
            other => Some(other.clone()),
        }
    }

    fn object(&self, o: &Map<String, Value>) -> Option<Map<String, Value>> {
        if o.contains_key("resourceType") {
            // A resource inside an element (Bundle entries, Parameters): de-identified as one.
            return self.resource(o).ok();
        }
        let is_coding = o.contains_key("code") || o.contains_key("system");
        let mut out = Map::new();
        for (k, v) in o {
            match k.as_str() {
                // Element ids are free strings.
                "id" => {}
                "reference" | "fullUrl" => {
                    if let Some(r) = v.as_str().and_then(|r| self.reference(r)) {
                        out.insert(k.clone(), Value::from(r));
                    }
                }
                // A Reference's display names its target (often the patient); a Coding's
                // display is the code system's text.
                "display" if !is_coding => {}
                _ => {
                    if let Some(v) = self.element(k, v) {
                        out.insert(k.clone(), v);
                    }
                }
            }
        }
        // An extension reduced to its url says nothing.
        if out.len() == 1 && out.contains_key("url") && o.len() > 1 {
            return None;
        }
        (!out.is_empty()).then_some(out)
    }

    fn string(&self, key: &str, s: &str) -> Option<Value> {
        // Only a 4- or 7-character string can be a partial date: ask the key only then.
        let partial_ok = matches!(s.len(), 4 | 7) && date_key(key);
        if let Some(shifted) = shift_date(s, self.offset, partial_ok) {
            return Some(Value::from(shifted));
        }
        Some(Value::from(s))
    }

    fn birth_date(&self, b: &str) -> Option<String> {
        let year = b
            .get(0..4)
            .filter(|y| y.bytes().all(|c| c.is_ascii_digit()))?;
        match self.config.birth_date {
            BirthDatePrecision::Year => Some(year.to_string()),
            BirthDatePrecision::YearMonth => match b.get(4..7) {
                Some(m)
                    if m.as_bytes()[0] == b'-' && m[1..].bytes().all(|c| c.is_ascii_digit()) =>
                {
                    Some(format!("{year}{m}"))
                }
                _ => Some(year.to_string()),
            },
        }
    }

    /// The id of a resource of `rtype` in the output.
    pub fn map_id(&self, rtype: &str, id: &str) -> String {
        if rtype == "Patient" {
            if id == self.patient_id {
                self.pseudonym.clone()
            } else {
                self.keys.patient_pseudonym(self.tenant, id)
            }
        } else {
            self.keys.token(rtype, id)
        }
    }

    /// `Type/id` (relative, absolute or versioned) → `Type/<mapped id>`; `#local` as is;
    /// `urn:uuid:` → a token; anything else `None`.
    fn reference(&self, r: &str) -> Option<String> {
        if r.starts_with('#') {
            return Some(r.to_string());
        }
        if let Some(u) = r.strip_prefix("urn:uuid:") {
            return Some(format!("urn:uuid:{}", self.keys.token("urn:uuid", u)));
        }
        let path = r.split("/_history/").next().unwrap_or(r);
        let mut parts = path.rsplit('/');
        let id = parts.next()?;
        let rtype = parts.next()?;
        let valid_type = rtype.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && rtype.chars().all(|c| c.is_ascii_alphanumeric());
        if !valid_type || id.is_empty() {
            return None;
        }
        Some(format!("{rtype}/{}", self.map_id(rtype, id)))
    }

    fn identifiers(&self, patient: bool, v: &Value) -> Option<Value> {
        match v {
            Value::Array(a) => {
                if patient {
                    // All of the patient's identifiers become the one pseudonym.
                    return Some(Value::Array(vec![self.patient_identifier()]));
                }
                let list: Vec<Value> = a.iter().filter_map(|x| self.identifier(x)).collect();
                (!list.is_empty()).then_some(Value::Array(list))
            }
            Value::Object(_) if patient => Some(self.patient_identifier()),
            Value::Object(_) => self.identifier(v),
            _ => None,
        }
    }

    fn patient_identifier(&self) -> Value {
        serde_json::json!({
            "type": { "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                "code": "PSEUDED"
            }]},
            "system": PSEUDONYM_SYSTEM,
            "value": self.pseudonym,
        })
    }

    fn identifier(&self, v: &Value) -> Option<Value> {
        let value = v.get("value").and_then(Value::as_str)?;
        let system = v.get("system").and_then(Value::as_str).unwrap_or("");
        Some(serde_json::json!({
            "system": TOKEN_SYSTEM,
            "value": self.keys.token(&format!("identifier|{system}"), value),
        }))
    }
}

/// Whether an element is dropped: the listed names, any choice of a free-text type
/// (`onsetString`, `authorString`, `valueAttachment`, …), and the `_x` siblings of them all
/// (a primitive's id and extensions).
fn dropped(key: &str) -> bool {
    let key = key.strip_prefix('_').unwrap_or(key);
    DROP.contains(&key)
        || key.starts_with(|c: char| c.is_ascii_lowercase())
            && FREE_TEXT_TYPES
                .iter()
                .any(|t| key.len() > t.len() && key.ends_with(t))
}

/// FHIR data types that carry free text or contact data, as a choice element's suffix.
const FREE_TEXT_TYPES: &[&str] = &[
    "String",
    "Markdown",
    "Annotation",
    "Attachment",
    "HumanName",
    "ContactPoint",
    "Uri",
    "Url",
    "Base64Binary",
];

fn is_identifier_key(k: &str) -> bool {
    k == "identifier" || k.ends_with("Identifier") || k == "requisition"
}

/// Only the first two digits of the postal code survive.
fn address(o: &Map<String, Value>) -> Option<Value> {
    let pc = o.get("postalCode").and_then(Value::as_str)?;
    let two: String = pc.chars().filter(char::is_ascii_digit).take(2).collect();
    (two.len() == 2).then(|| serde_json::json!({ "postalCode": two }))
}

/// Keys under which a partial date (year, year-month) is a date.
fn date_key(k: &str) -> bool {
    let has = |needle: &str| {
        k.as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    };
    has("date")
        || has("instant")
        || matches!(
            k,
            "start" | "end" | "issued" | "created" | "recorded" | "lastUpdated" | "timestamp"
        )
}

/// `s` shifted by `days` if it is a FHIR date/dateTime/instant (with a day, or partial when
/// `partial_ok`), keeping its precision and time of day.
fn shift_date(s: &str, days: i32, partial_ok: bool) -> Option<String> {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    if !digits(0..4) {
        return None;
    }
    let year: i32 = s.get(0..4)?.parse().ok()?;
    match b.len() {
        4 if partial_ok => {
            let d = Day::from_ymd(year, 1, 1)?.plus(days);
            Some(format!("{:04}", d.ymd().0))
        }
        7 if partial_ok && b[4] == b'-' && digits(5..7) => {
            let month: u32 = s.get(5..7)?.parse().ok()?;
            let (y, m, _) = Day::from_ymd(year, month, 1)?.plus(days).ymd();
            Some(format!("{y:04}-{m:02}"))
        }
        n if n >= 10 => {
            let day = Day::parse_fhir(s)?;
            Some(format!("{}{}", day.plus(days), &s[10..]))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
