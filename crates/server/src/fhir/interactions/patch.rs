//! PATCH with JSON Patch (RFC 6902).

use medicus_store::api::{Precondition, WriteOutcome, WriteSession};
use serde_json::Value;

use super::read::read;
use super::resource::validate_resource;
use crate::fhir::error::FhirError;

/// Parses a JSON Patch document (400 when it is not one).
pub fn parse_patch(document: Value) -> Result<json_patch::Patch, FhirError> {
    serde_json::from_value(document)
        .map_err(|e| FhirError::bad_request(format!("invalid JSON Patch document: {e}")))
}

/// Applies `patch` to the current version of `Type/id`, validates the result and writes it as
/// the next version. `If-Match` is checked against the current version before patching; the
/// write is then guarded on the version that was patched.
pub fn patch(
    session: &mut dyn WriteSession,
    resource_type: &str,
    id: &str,
    patch: &json_patch::Patch,
    precondition: Precondition,
) -> Result<WriteOutcome, FhirError> {
    let current = read(session, resource_type, id)?;
    if let Precondition::VersionIs(expected) = precondition
        && expected != current.version
    {
        return Err(FhirError::PreconditionFailed(format!(
            "version conflict on {resource_type}/{id}: expected version {expected}, current is {}",
            current.version
        )));
    }
    let mut body = current.body.unwrap_or(Value::Null);
    json_patch::patch(&mut body, patch)
        .map_err(|e| FhirError::Unprocessable(format!("the patch could not be applied: {e}")))?;
    if body.get("id").and_then(Value::as_str) != Some(id) {
        return Err(FhirError::Unprocessable(
            "a patch must not change or remove the resource id".into(),
        ));
    }
    validate_resource(&body, resource_type).map_err(|e| match e {
        FhirError::BadRequest(m) => FhirError::Unprocessable(m),
        other => other,
    })?;
    Ok(session.put(
        resource_type,
        id,
        body,
        Precondition::VersionIs(current.version),
    )?)
}
