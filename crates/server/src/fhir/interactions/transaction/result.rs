//! The outcome of one Bundle entry and its rendering as `Bundle.entry.response`.

use medicus_store::api::ResourceVersion;
use serde_json::{Map, Value, json};

use crate::fhir::bundle::entry_response;
use crate::fhir::error::FhirError;
use crate::fhir::headers::ReturnPreference;
use crate::fhir::outcome::information;

/// The outcome of one entry, rendered as `Bundle.entry` of the response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EntryResult {
    pub status: u16,
    pub location: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub resource: Option<Value>,
    pub outcome: Option<Value>,
}

impl EntryResult {
    pub fn from_version(
        status: u16,
        v: &ResourceVersion,
        with_location: bool,
        preference: ReturnPreference,
    ) -> Self {
        let response = entry_response("", v, with_location);
        let text = |k: &str| response.get(k).and_then(Value::as_str).map(str::to_string);
        let mut result = EntryResult {
            status,
            location: text("location"),
            etag: text("etag"),
            last_modified: text("lastModified"),
            ..EntryResult::default()
        };
        match preference {
            ReturnPreference::Representation => result.resource = v.body.clone(),
            ReturnPreference::OperationOutcome => {
                result.outcome = Some(information(format!(
                    "{} {}/{}",
                    status_text(status),
                    v.resource_type,
                    v.id
                )));
            }
            ReturnPreference::Minimal => {}
        }
        result
    }

    pub fn from_error(error: &FhirError) -> Self {
        EntryResult {
            status: error.status(),
            outcome: Some(error.to_operation_outcome()),
            ..EntryResult::default()
        }
    }

    pub fn to_json(&self) -> Value {
        let mut response = Map::new();
        response.insert("status".into(), json!(status_text(self.status)));
        for (key, value) in [
            ("location", &self.location),
            ("etag", &self.etag),
            ("lastModified", &self.last_modified),
        ] {
            if let Some(value) = value {
                response.insert(key.into(), json!(value));
            }
        }
        if let Some(outcome) = &self.outcome {
            response.insert("outcome".into(), outcome.clone());
        }
        let mut entry = Map::new();
        if let Some(resource) = &self.resource {
            entry.insert("resource".into(), resource.clone());
        }
        entry.insert("response".into(), Value::Object(response));
        Value::Object(entry)
    }
}

/// `"201 Created"` style status text for `Bundle.entry.response.status`.
pub fn status_text(status: u16) -> String {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        412 => "Precondition Failed",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        _ => "",
    };
    if reason.is_empty() {
        status.to_string()
    } else {
        format!("{status} {reason}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_texts() {
        assert_eq!(status_text(201), "201 Created");
        assert_eq!(status_text(412), "412 Precondition Failed");
        assert_eq!(status_text(418), "418");
    }

    #[test]
    fn entry_results_render_as_bundle_entries() {
        let r = EntryResult {
            status: 201,
            location: Some("Patient/1/_history/1".into()),
            ..EntryResult::default()
        };
        let j = r.to_json();
        assert_eq!(j["response"]["status"], "201 Created");
        assert_eq!(j["response"]["location"], "Patient/1/_history/1");
        assert!(j.get("resource").is_none());
        let e = EntryResult::from_error(&FhirError::PreconditionFailed("x".into()));
        assert_eq!(
            e.to_json()["response"]["outcome"]["resourceType"],
            "OperationOutcome"
        );
    }
}
