//! Parsing Bundle entries: method, target URL, resource and conditional headers.

use medicus_store::api::Precondition;
use serde_json::Value;

use crate::fhir::error::FhirError;
use crate::fhir::headers::parse_etag_version;
use crate::fhir::interactions::resource::{ensure_supported_type, resource_type_of};
use crate::fhir::query::parse_pairs;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    /// Processing rank within a transaction.
    pub(super) fn rank(self) -> u8 {
        match self {
            Method::Delete => 0,
            Method::Post => 1,
            Method::Put | Method::Patch => 2,
            Method::Get | Method::Head => 3,
        }
    }

    pub fn is_write(self) -> bool {
        matches!(
            self,
            Method::Post | Method::Put | Method::Patch | Method::Delete
        )
    }
}

/// What an entry's `request.url` addresses.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// `Type` or `Type?query`.
    Type {
        resource_type: String,
        query: Vec<(String, String)>,
    },
    /// `Type/id`.
    Instance { resource_type: String, id: String },
    /// `Type/id/_history/vid`.
    Version {
        resource_type: String,
        id: String,
        version: String,
    },
    /// `Type/id/_history`.
    InstanceHistory {
        resource_type: String,
        id: String,
        query: Vec<(String, String)>,
    },
    /// `Type/_history`.
    TypeHistory {
        resource_type: String,
        query: Vec<(String, String)>,
    },
}

impl Target {
    pub fn resource_type(&self) -> &str {
        match self {
            Target::Type { resource_type, .. }
            | Target::Instance { resource_type, .. }
            | Target::Version { resource_type, .. }
            | Target::InstanceHistory { resource_type, .. }
            | Target::TypeHistory { resource_type, .. } => resource_type,
        }
    }
}

/// One parsed Bundle entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub index: usize,
    pub method: Method,
    pub target: Target,
    pub full_url: Option<String>,
    pub resource: Option<Value>,
    pub if_none_exist: Option<String>,
    pub if_match: Precondition,
}

/// The Bundle's `type`, checked to be `transaction` or `batch`.
pub fn bundle_kind(bundle: &Value) -> Result<&str, FhirError> {
    if resource_type_of(bundle) != Some("Bundle") {
        return Err(FhirError::bad_request(
            "only a Bundle can be posted to the server base",
        ));
    }
    match bundle.get("type").and_then(Value::as_str) {
        Some(kind @ ("transaction" | "batch")) => Ok(kind),
        Some(other) => Err(FhirError::bad_request(format!(
            "Bundle.type '{other}' cannot be processed; use transaction or batch"
        ))),
        None => Err(FhirError::bad_request("Bundle.type is missing")),
    }
}

/// The raw `Bundle.entry` array.
pub(super) fn raw_entries(bundle: &Value) -> Result<&[Value], FhirError> {
    match bundle.get("entry") {
        None => Ok(&[]),
        Some(Value::Array(entries)) => Ok(entries),
        Some(_) => Err(FhirError::bad_request("Bundle.entry must be an array")),
    }
}

/// Parses `request.url` relative to the server (an absolute URL on our own base is accepted).
pub fn parse_request_url(url: &str, fhir_base: &str) -> Result<Target, FhirError> {
    let relative = url.strip_prefix(fhir_base).unwrap_or(url);
    if relative.contains("://") {
        return Err(FhirError::bad_request(
            "request.url must be relative to this server's base",
        ));
    }
    let relative = relative.trim_start_matches('/');
    let (path, query) = relative.split_once('?').unwrap_or((relative, ""));
    let query = parse_pairs(query);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let target = match segments.as_slice() {
        [ty] => Target::Type {
            resource_type: ty.to_string(),
            query,
        },
        [ty, "_history"] => Target::TypeHistory {
            resource_type: ty.to_string(),
            query,
        },
        [ty, id] => Target::Instance {
            resource_type: ty.to_string(),
            id: id.to_string(),
        },
        [ty, id, "_history"] => Target::InstanceHistory {
            resource_type: ty.to_string(),
            id: id.to_string(),
            query,
        },
        [ty, id, "_history", v] => Target::Version {
            resource_type: ty.to_string(),
            id: id.to_string(),
            version: v.to_string(),
        },
        _ => {
            return Err(FhirError::bad_request(format!(
                "request.url '{url}' is not supported in a Bundle"
            )));
        }
    };
    ensure_supported_type(target.resource_type())?;
    Ok(target)
}

/// Parses and checks one raw entry.
pub fn parse_entry(index: usize, raw: &Value, fhir_base: &str) -> Result<Entry, FhirError> {
    let request = raw
        .get("request")
        .filter(|r| r.is_object())
        .ok_or_else(|| FhirError::bad_request("entry has no request"))?;
    let method = match request.get("method").and_then(Value::as_str) {
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        Some("POST") => Method::Post,
        Some("PUT") => Method::Put,
        Some("PATCH") => Method::Patch,
        Some("DELETE") => Method::Delete,
        Some(other) => {
            return Err(FhirError::bad_request(format!(
                "request.method '{other}' is not supported"
            )));
        }
        None => return Err(FhirError::bad_request("entry has no request.method")),
    };
    let url = request
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| FhirError::bad_request("entry has no request.url"))?;
    let target = parse_request_url(url, fhir_base)?;
    let resource = raw.get("resource").cloned();
    let if_match = match request.get("ifMatch").and_then(Value::as_str) {
        None => Precondition::None,
        Some(v) => Precondition::VersionIs(
            parse_etag_version(v)
                .ok_or_else(|| FhirError::bad_request("request.ifMatch must be like W/\"3\""))?,
        ),
    };
    let entry = Entry {
        index,
        method,
        target,
        full_url: raw
            .get("fullUrl")
            .and_then(Value::as_str)
            .map(str::to_string),
        resource,
        if_none_exist: request
            .get("ifNoneExist")
            .and_then(Value::as_str)
            .map(str::to_string),
        if_match,
    };
    check_entry_shape(&entry)?;
    Ok(entry)
}

pub(super) fn check_entry_shape(entry: &Entry) -> Result<(), FhirError> {
    let needs_resource = matches!(entry.method, Method::Post | Method::Put | Method::Patch);
    if needs_resource && !entry.resource.as_ref().is_some_and(Value::is_object) {
        return Err(FhirError::bad_request("entry has no resource"));
    }
    let ok = match (&entry.method, &entry.target) {
        (Method::Post, Target::Type { query, .. }) => query.is_empty(),
        (Method::Put | Method::Patch | Method::Delete, Target::Instance { .. }) => true,
        (Method::Put | Method::Patch | Method::Delete, Target::Type { query, .. }) => {
            !query.is_empty()
        }
        (Method::Get | Method::Head, _) => true,
        _ => false,
    };
    if !ok {
        return Err(FhirError::bad_request(
            "request.url does not fit request.method",
        ));
    }
    if let (Method::Post | Method::Put, Some(resource), target) =
        (&entry.method, &entry.resource, &entry.target)
        && resource_type_of(resource) != Some(target.resource_type())
    {
        return Err(FhirError::bad_request(format!(
            "resourceType of the entry's resource does not match '{}'",
            target.resource_type()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bundle_kind_checks_type() {
        assert_eq!(
            bundle_kind(&json!({"resourceType": "Bundle", "type": "batch"})).unwrap(),
            "batch"
        );
        assert_eq!(
            bundle_kind(&json!({"resourceType": "Bundle", "type": "collection"}))
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            bundle_kind(&json!({"resourceType": "Patient"}))
                .unwrap_err()
                .status(),
            400
        );
    }

    // Entry parsing needs the R4 definitions (resource type check); see the router tests.
    #[test]
    fn entry_shape_rules() {
        let entry = |method, target, resource: Option<Value>| Entry {
            index: 0,
            method,
            target,
            full_url: None,
            resource,
            if_none_exist: None,
            if_match: Precondition::None,
        };
        let ty = |q: &str| Target::Type {
            resource_type: "Patient".into(),
            query: parse_pairs(q),
        };
        let inst = Target::Instance {
            resource_type: "Patient".into(),
            id: "1".into(),
        };
        let patient = Some(json!({"resourceType": "Patient"}));
        assert!(check_entry_shape(&entry(Method::Post, ty(""), patient.clone())).is_ok());
        assert!(check_entry_shape(&entry(Method::Post, ty(""), None)).is_err());
        assert!(check_entry_shape(&entry(Method::Post, inst.clone(), patient.clone())).is_err());
        assert!(check_entry_shape(&entry(Method::Put, ty(""), patient.clone())).is_err());
        assert!(
            check_entry_shape(&entry(Method::Put, ty("identifier=a|b"), patient.clone())).is_ok()
        );
        assert!(check_entry_shape(&entry(Method::Delete, inst.clone(), None)).is_ok());
        assert!(
            check_entry_shape(&entry(
                Method::Put,
                inst,
                Some(json!({"resourceType": "Observation"}))
            ))
            .is_err()
        );
    }
}
