//! Checks every write applies to a resource body: known type, id format, validation.

use medicus_fhir::Severity;
use serde_json::Value;

use crate::fhir::error::FhirError;

/// Rejects resource types the R4 definitions do not know (404, per spec for an unknown type in
/// the URL).
pub fn ensure_supported_type(resource_type: &str) -> Result<(), FhirError> {
    if medicus_fhir::r4().is_resource_type(resource_type) {
        Ok(())
    } else {
        Err(FhirError::UnsupportedType(resource_type.to_string()))
    }
}

/// The FHIR `id` pattern: `[A-Za-z0-9\-\.]{1,64}`.
pub fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

pub fn ensure_valid_id(id: &str) -> Result<(), FhirError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(FhirError::bad_request(
            "invalid resource id: use 1-64 characters of A-Z a-z 0-9 - .",
        ))
    }
}

/// A fresh server-assigned id (a UUID, 36 characters).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The `resourceType` of a body.
pub fn resource_type_of(body: &Value) -> Option<&str> {
    body.get("resourceType").and_then(Value::as_str)
}

/// Checks that `body` is a `resource_type` resource and passes structural validation.
pub fn validate_resource(body: &Value, resource_type: &str) -> Result<(), FhirError> {
    if !body.is_object() {
        return Err(FhirError::bad_request("the resource must be a JSON object"));
    }
    match resource_type_of(body) {
        None => return Err(FhirError::bad_request("the resource has no resourceType")),
        Some(found) if found != resource_type => {
            return Err(FhirError::bad_request(format!(
                "resourceType '{found}' does not match the type '{resource_type}' of the request"
            )));
        }
        Some(_) => {}
    }
    let issues = medicus_fhir::validate(body);
    if issues
        .iter()
        .any(|i| matches!(i.severity, Severity::Fatal | Severity::Error))
    {
        return Err(FhirError::Invalid(issues));
    }
    Ok(())
}

/// The `id` element of a body, if any.
pub fn body_id(body: &Value) -> Option<&str> {
    body.get("id").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_pattern() {
        assert!(is_valid_id("abc-1.2"));
        assert!(is_valid_id(&"a".repeat(64)));
        assert!(!is_valid_id(&"a".repeat(65)));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("a/b"));
        assert!(!is_valid_id("a_b"));
        assert!(is_valid_id(&new_id()));
    }
}
