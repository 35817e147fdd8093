//! `$validate`: structural validation without writing anything.

use medicus_fhir::Severity as ValidationSeverity;
use serde_json::Value;

use super::resource::resource_type_of;
use crate::fhir::error::FhirError;
use crate::fhir::outcome::{Issue, Severity, operation_outcome};

/// The resource to validate: the body itself, or the `resource` part of a Parameters body.
pub fn resource_to_validate(body: Value) -> Result<Value, FhirError> {
    if resource_type_of(&body) != Some("Parameters") {
        return Ok(body);
    }
    body.get("parameter")
        .and_then(Value::as_array)
        .and_then(|parts| {
            parts
                .iter()
                .find(|p| p.get("name").and_then(Value::as_str) == Some("resource"))
        })
        .and_then(|p| p.get("resource"))
        .cloned()
        .ok_or_else(|| FhirError::bad_request("Parameters for $validate need a 'resource' part"))
}

/// Validates `resource` as a `resource_type` and reports every issue (warnings included) as an
/// OperationOutcome; a clean resource gets one informational issue.
pub fn validate_operation(resource: &Value, resource_type: Option<&str>) -> Value {
    let mut issues = Vec::new();
    match (resource_type_of(resource), resource_type) {
        (None, _) => issues.push(Issue::error(
            "structure",
            "the resource has no resourceType",
        )),
        (Some(found), Some(expected)) if found != expected => issues.push(Issue::error(
            "invalid",
            format!("resourceType '{found}' does not match the type '{expected}' of the request"),
        )),
        _ => {}
    }
    if issues.is_empty() {
        issues.extend(medicus_fhir::validate(resource).into_iter().map(|i| Issue {
            severity: match i.severity {
                ValidationSeverity::Fatal => Severity::Fatal,
                ValidationSeverity::Error => Severity::Error,
                ValidationSeverity::Warning => Severity::Warning,
                ValidationSeverity::Information => Severity::Information,
            },
            code: i.code.code(),
            diagnostics: i.message,
            expression: vec![i.expression],
        }));
    }
    if issues.is_empty() {
        issues.push(Issue::information("informational", "no issues found"));
    }
    operation_outcome(&issues)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parameters_wrapper_is_unpacked() {
        let p = json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {"resourceType": "Patient"}}]});
        assert_eq!(resource_to_validate(p).unwrap()["resourceType"], "Patient");
        let empty = json!({"resourceType": "Parameters", "parameter": []});
        assert_eq!(resource_to_validate(empty).unwrap_err().status(), 400);
        let plain = json!({"resourceType": "Patient"});
        assert_eq!(resource_to_validate(plain.clone()).unwrap(), plain);
    }
}
