//! update (incl. create-on-update) and conditional update.

use medicus_store::api::{Precondition, WriteOutcome, WriteSession};
use serde_json::Value;

use super::conditional::{Matches, find_matches};
use super::create::create_with_id;
use super::resource::{body_id, ensure_valid_id, new_id, validate_resource};
use crate::fhir::error::FhirError;

/// PUT `Type/id`: the body must carry the same `id`. Creates the resource when it does not
/// exist (201, `updateCreate`).
pub fn update(
    session: &mut dyn WriteSession,
    resource_type: &str,
    id: &str,
    body: Value,
    precondition: Precondition,
) -> Result<WriteOutcome, FhirError> {
    ensure_valid_id(id)?;
    match body_id(&body) {
        None => {
            return Err(FhirError::bad_request(
                "the resource in an update must have an id",
            ));
        }
        Some(found) if found != id => {
            return Err(FhirError::bad_request(format!(
                "the resource id '{found}' does not match the id '{id}' in the URL"
            )));
        }
        Some(_) => {}
    }
    validate_resource(&body, resource_type)?;
    Ok(session.put(resource_type, id, body, precondition)?)
}

/// The id a conditional update writes to, decided by the criteria:
/// no match → the body's id or a new one; one match → that resource; several → 412.
pub fn conditional_update_target(
    session: &mut dyn WriteSession,
    resource_type: &str,
    criteria: &[(String, String)],
    body: &Value,
) -> Result<String, FhirError> {
    match find_matches(session, resource_type, criteria)? {
        Matches::None => match body_id(body) {
            Some(id) => {
                ensure_valid_id(id)?;
                Ok(id.to_string())
            }
            None => Ok(new_id()),
        },
        Matches::One(existing) => match body_id(body) {
            Some(id) if id != existing.id => Err(FhirError::bad_request(format!(
                "the resource id '{id}' does not match the resource found by the conditional update"
            ))),
            _ => Ok(existing.id),
        },
        Matches::Many => Err(FhirError::PreconditionFailed(
            "conditional update criteria matched more than one resource".into(),
        )),
    }
}

/// PUT `Type?criteria`.
pub fn conditional_update(
    session: &mut dyn WriteSession,
    resource_type: &str,
    criteria: &[(String, String)],
    body: Value,
    precondition: Precondition,
) -> Result<WriteOutcome, FhirError> {
    validate_resource(&body, resource_type)?;
    let id = conditional_update_target(session, resource_type, criteria, &body)?;
    if precondition == Precondition::None {
        create_with_id(session, resource_type, &id, body)
    } else {
        let mut body = body;
        if let Some(obj) = body.as_object_mut() {
            obj.insert("id".into(), Value::String(id.clone()));
        }
        Ok(session.put(resource_type, &id, body, precondition)?)
    }
}
