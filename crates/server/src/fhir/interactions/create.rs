//! create and conditional create.

use medicus_store::api::{Precondition, ResourceVersion, WriteOutcome, WriteSession};
use serde_json::Value;

use super::conditional::{Matches, find_matches};
use super::resource::{new_id, validate_resource};
use crate::fhir::error::FhirError;

#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    /// A new resource was written (201).
    Created(WriteOutcome),
    /// `If-None-Exist` matched exactly one resource; nothing was written (200).
    Existing(ResourceVersion),
}

impl CreateOutcome {
    pub fn version(&self) -> &ResourceVersion {
        match self {
            CreateOutcome::Created(w) => &w.version,
            CreateOutcome::Existing(v) => v,
        }
    }
}

/// POST: validates, honours `If-None-Exist` (`if_none_exist` criteria), and writes under a new
/// server-assigned id. A client-supplied `id` in the body is ignored, as the spec says.
pub fn create(
    session: &mut dyn WriteSession,
    resource_type: &str,
    body: Value,
    if_none_exist: Option<&[(String, String)]>,
) -> Result<CreateOutcome, FhirError> {
    validate_resource(&body, resource_type)?;
    if let Some(criteria) = if_none_exist {
        match find_matches(session, resource_type, criteria)? {
            Matches::None => {}
            Matches::One(existing) => return Ok(CreateOutcome::Existing(existing)),
            Matches::Many => {
                return Err(FhirError::PreconditionFailed(
                    "If-None-Exist matched more than one resource".into(),
                ));
            }
        }
    }
    create_with_id(session, resource_type, &new_id(), body).map(CreateOutcome::Created)
}

/// Writes an already validated body under `id` (a transaction pre-assigns ids).
pub(crate) fn create_with_id(
    session: &mut dyn WriteSession,
    resource_type: &str,
    id: &str,
    mut body: Value,
) -> Result<WriteOutcome, FhirError> {
    if let Some(obj) = body.as_object_mut() {
        obj.insert("id".into(), Value::String(id.to_string()));
    }
    Ok(session.put(resource_type, id, body, Precondition::None)?)
}
