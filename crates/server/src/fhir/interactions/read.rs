//! read and vread.

use medicus_store::api::{ReadSession, ResourceVersion};

use super::resource::ensure_valid_id;
use crate::fhir::error::FhirError;

fn not_found(resource_type: &str, id: &str) -> FhirError {
    FhirError::NotFound {
        resource_type: resource_type.to_string(),
        id: id.to_string(),
    }
}

fn gone(resource_type: &str, id: &str) -> FhirError {
    FhirError::Gone {
        resource_type: resource_type.to_string(),
        id: id.to_string(),
    }
}

/// The current version; 404 when unknown, 410 when deleted.
pub fn read(
    session: &mut dyn ReadSession,
    resource_type: &str,
    id: &str,
) -> Result<ResourceVersion, FhirError> {
    ensure_valid_id(id)?;
    match session.read(resource_type, id)? {
        None => Err(not_found(resource_type, id)),
        Some(v) if v.is_deleted() => Err(gone(resource_type, id)),
        Some(v) => Ok(v),
    }
}

/// A specific version; 404 when unknown, 410 when that version is a deletion.
pub fn vread(
    session: &mut dyn ReadSession,
    resource_type: &str,
    id: &str,
    version: &str,
) -> Result<ResourceVersion, FhirError> {
    ensure_valid_id(id)?;
    let Ok(number) = version.parse::<i64>() else {
        return Err(FhirError::NotFoundOther(format!(
            "{resource_type}/{id} has no version '{version}'"
        )));
    };
    match session.vread(resource_type, id, number)? {
        None => Err(FhirError::NotFoundOther(format!(
            "{resource_type}/{id} has no version {number}"
        ))),
        Some(v) if v.is_deleted() => Err(gone(resource_type, id)),
        Some(v) => Ok(v),
    }
}
