//! delete and conditional delete.

use medicus_store::api::{Precondition, ResourceVersion, WriteSession};

use super::conditional::{Matches, find_matches};
use super::resource::ensure_valid_id;
use crate::fhir::error::FhirError;

/// DELETE `Type/id`: the deletion marker, or `None` when there was nothing to delete.
pub fn delete(
    session: &mut dyn WriteSession,
    resource_type: &str,
    id: &str,
    precondition: Precondition,
) -> Result<Option<ResourceVersion>, FhirError> {
    ensure_valid_id(id)?;
    Ok(session.delete(resource_type, id, precondition)?)
}

/// DELETE `Type?criteria` (single-match mode): several matches → 412.
pub fn conditional_delete(
    session: &mut dyn WriteSession,
    resource_type: &str,
    criteria: &[(String, String)],
) -> Result<Option<ResourceVersion>, FhirError> {
    match find_matches(session, resource_type, criteria)? {
        Matches::None => Ok(None),
        Matches::One(found) => Ok(session.delete(resource_type, &found.id, Precondition::None)?),
        Matches::Many => Err(FhirError::PreconditionFailed(
            "conditional delete criteria matched more than one resource".into(),
        )),
    }
}
