//! Running one Bundle entry against a session: identity planning, reference resolution, and
//! the read/write interactions themselves.

use std::collections::HashMap;

use medicus_store::api::{HistoryScope, ReadSession, ResourceVersion, WriteSession};
use serde_json::Value;

use super::BundleOptions;
use super::entry::{Entry, Method, Target};
use super::result::EntryResult;
use crate::fhir::error::FhirError;
use crate::fhir::headers::{Handling, ReturnPreference};
use crate::fhir::interactions::conditional::{Matches, find_matches, parse_criteria};
use crate::fhir::interactions::create::create_with_id;
use crate::fhir::interactions::delete::{conditional_delete, delete};
use crate::fhir::interactions::history::{history, parse_history_params};
use crate::fhir::interactions::patch::{parse_patch, patch};
use crate::fhir::interactions::read::{read, vread};
use crate::fhir::interactions::references::{as_conditional, is_placeholder, rewrite_references};
use crate::fhir::interactions::resource::{
    body_id, ensure_supported_type, ensure_valid_id, new_id, resource_type_of, validate_resource,
};
use crate::fhir::interactions::search::{localize_reference_values, parse_search_params, search};
use crate::fhir::interactions::update::{conditional_update_target, update};
use crate::fhir::outcome::information;
use crate::fhir::query::parse_pairs;

/// The id a write entry resolves to, decided before anything is written.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Identity {
    /// Write under this id.
    Write(String),
    /// Conditional create matched this resource; nothing is written.
    Existing(ResourceVersion),
}

pub(super) fn plan_identity(
    session: &mut dyn WriteSession,
    entry: &Entry,
) -> Result<Identity, FhirError> {
    let ty = entry.target.resource_type();
    match (&entry.method, &entry.target) {
        (Method::Post, _) => {
            if let Some(criteria) = &entry.if_none_exist {
                match find_matches(session, ty, &parse_criteria(criteria))? {
                    Matches::None => {}
                    Matches::One(existing) => return Ok(Identity::Existing(existing)),
                    Matches::Many => {
                        return Err(FhirError::PreconditionFailed(
                            "ifNoneExist matched more than one resource".into(),
                        ));
                    }
                }
            }
            Ok(Identity::Write(new_id()))
        }
        (_, Target::Instance { id, .. }) => {
            ensure_valid_id(id)?;
            Ok(Identity::Write(id.clone()))
        }
        (Method::Put, Target::Type { query, .. }) => {
            let body = entry.resource.as_ref().unwrap_or(&Value::Null);
            conditional_update_target(session, ty, query, body).map(Identity::Write)
        }
        (Method::Patch, Target::Type { query, .. }) => match find_matches(session, ty, query)? {
            Matches::One(found) => Ok(Identity::Write(found.id)),
            Matches::None => Err(FhirError::NotFoundOther(
                "conditional patch matched no resource".into(),
            )),
            Matches::Many => Err(FhirError::PreconditionFailed(
                "conditional patch criteria matched more than one resource".into(),
            )),
        },
        _ => Err(FhirError::bad_request(
            "request.url does not fit request.method",
        )),
    }
}

/// A conditional reference or conditional entry URL in a form that ignores parameter order:
/// `Type?a=1&b=2` and `Type?b=2&a=1` give the same key.
pub fn conditional_key(resource_type: &str, criteria: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = criteria.iter().collect();
    sorted.sort();
    let query: Vec<String> = sorted.iter().map(|(n, v)| format!("{n}={v}")).collect();
    format!("{resource_type}?{}", query.join("&"))
}

/// The conditional key under which an entry of this Bundle can be referenced: a conditional
/// create (`ifNoneExist`) or a conditional update (`PUT Type?…`) defines `Type?criteria`.
pub(super) fn entry_conditional_key(entry: &Entry) -> Option<String> {
    let ty = entry.target.resource_type();
    match (&entry.method, &entry.target) {
        (Method::Post, _) => entry
            .if_none_exist
            .as_deref()
            .map(|c| conditional_key(ty, &parse_criteria(c))),
        (Method::Put, Target::Type { query, .. }) => Some(conditional_key(ty, query)),
        _ => None,
    }
}

/// Rewrites placeholder (`urn:uuid:`) and conditional (`Type?…`) references in `resource`.
/// Placeholders must be defined by `placeholders`. A conditional reference resolves to the entry
/// of this Bundle with the same conditional criteria, else it must match exactly one stored
/// resource (looked up in `session`); both kinds are kept in `conditional` by [`conditional_key`].
pub(super) fn resolve_references(
    session: &mut dyn WriteSession,
    resource: &mut Value,
    placeholders: &HashMap<String, String>,
    conditional: &mut HashMap<String, String>,
) -> Result<(), FhirError> {
    rewrite_references(resource, &mut |reference| {
        if let Some(target) = placeholders.get(reference) {
            return Ok(Some(target.clone()));
        }
        if is_placeholder(reference) {
            return Err(FhirError::bad_request(format!(
                "reference '{reference}' does not point to any entry of the Bundle"
            )));
        }
        if let Some((ty, query)) = as_conditional(reference) {
            let criteria = parse_pairs(query);
            let key = conditional_key(ty, &criteria);
            if let Some(target) = conditional.get(&key) {
                return Ok(Some(target.clone()));
            }
            ensure_supported_type(ty)?;
            let target = match find_matches(session, ty, &criteria)? {
                Matches::One(found) => format!("{ty}/{}", found.id),
                Matches::None => {
                    return Err(FhirError::PreconditionFailed(format!(
                        "conditional reference '{ty}?…' matched no resource"
                    )));
                }
                Matches::Many => {
                    return Err(FhirError::PreconditionFailed(format!(
                        "conditional reference '{ty}?…' matched more than one resource"
                    )));
                }
            };
            conditional.insert(key, target.clone());
            return Ok(Some(target));
        }
        Ok(None)
    })
}

pub(super) fn execute_delete(
    session: &mut dyn WriteSession,
    entry: &Entry,
    preference: ReturnPreference,
) -> Result<EntryResult, FhirError> {
    let ty = entry.target.resource_type();
    let deleted = match &entry.target {
        Target::Instance { id, .. } => delete(session, ty, id, entry.if_match)?,
        Target::Type { query, .. } => conditional_delete(session, ty, query)?,
        _ => {
            return Err(FhirError::bad_request(
                "request.url does not fit request.method",
            ));
        }
    };
    Ok(match deleted {
        Some(v) => {
            let mut result = EntryResult::from_version(204, &v, false, ReturnPreference::Minimal);
            if preference == ReturnPreference::OperationOutcome {
                result.outcome = Some(information("deleted"));
            }
            result
        }
        None => EntryResult {
            status: 204,
            ..EntryResult::default()
        },
    })
}

/// Executes a POST/PUT/PATCH entry whose identity is planned and references resolved.
pub(super) fn execute_write(
    session: &mut dyn WriteSession,
    entry: &Entry,
    identity: Identity,
    resource: Value,
    options: &BundleOptions,
) -> Result<EntryResult, FhirError> {
    let preference = options.return_preference;
    let ty = entry.target.resource_type();
    let id = match identity {
        Identity::Existing(existing) => {
            return Ok(EntryResult::from_version(200, &existing, true, preference));
        }
        Identity::Write(id) => id,
    };
    let written = match entry.method {
        Method::Post => {
            validate_resource(&resource, ty)?;
            create_with_id(session, ty, &id, resource)?
        }
        Method::Put => {
            let mut resource = resource;
            if matches!(entry.target, Target::Type { .. })
                && body_id(&resource).is_none()
                && let Some(obj) = resource.as_object_mut()
            {
                obj.insert("id".into(), Value::String(id.clone()));
            }
            update(session, ty, &id, resource, entry.if_match)?
        }
        Method::Patch => {
            let document = patch_document(&resource, options.max_json_depth)?;
            patch(session, ty, &id, &parse_patch(document)?, entry.if_match)?
        }
        _ => {
            return Err(FhirError::bad_request(
                "request.url does not fit request.method",
            ));
        }
    };
    let status = if written.created { 201 } else { 200 };
    Ok(EntryResult::from_version(
        status,
        &written.version,
        true,
        preference,
    ))
}

/// In a Bundle a JSON Patch travels as a Binary resource (`contentType`
/// `application/json-patch+json`, base64 `data`).
fn patch_document(resource: &Value, max_json_depth: usize) -> Result<Value, FhirError> {
    let is_json_patch_binary = resource_type_of(resource) == Some("Binary")
        && resource
            .get("contentType")
            .and_then(Value::as_str)
            .is_some_and(|ct| ct.starts_with("application/json-patch+json"));
    if !is_json_patch_binary {
        return Err(FhirError::UnsupportedMediaType(
            "a PATCH entry must carry a Binary with contentType application/json-patch+json".into(),
        ));
    }
    let data = resource.get("data").and_then(Value::as_str).unwrap_or("");
    let bytes = decode_base64(data)
        .ok_or_else(|| FhirError::bad_request("Binary.data is not valid base64"))?;
    crate::fhir::json_body::parse_json(&bytes, max_json_depth)
}

/// Standard base64 (with or without padding; whitespace ignored).
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buf = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Executes a GET/HEAD entry.
pub(super) fn execute_read(
    session: &mut dyn ReadSession,
    entry: &Entry,
    options: &BundleOptions,
) -> Result<EntryResult, FhirError> {
    let base = &options.fhir_base;
    let (version, bundle) = match &entry.target {
        Target::Instance { resource_type, id } => (Some(read(session, resource_type, id)?), None),
        Target::Version {
            resource_type,
            id,
            version,
        } => (Some(vread(session, resource_type, id, version)?), None),
        Target::Type {
            resource_type,
            query,
        } => {
            let query = localize_reference_values(Some(resource_type), query.clone(), base);
            let params = parse_search_params(
                Some(resource_type),
                &query,
                options.page_sizes,
                Handling::Lenient,
            )?;
            (
                None,
                Some(search(
                    session,
                    Some(resource_type),
                    &params,
                    base,
                    &format!("{base}/{resource_type}"),
                )?),
            )
        }
        Target::TypeHistory {
            resource_type,
            query,
        } => {
            let params = parse_history_params(query, options.page_sizes)?;
            let url = format!("{base}/{resource_type}/_history");
            (
                None,
                Some(history(
                    session,
                    HistoryScope::Type(resource_type),
                    &params,
                    base,
                    &url,
                )?),
            )
        }
        Target::InstanceHistory {
            resource_type,
            id,
            query,
        } => {
            ensure_valid_id(id)?;
            let params = parse_history_params(query, options.page_sizes)?;
            let url = format!("{base}/{resource_type}/{id}/_history");
            (
                None,
                Some(history(
                    session,
                    HistoryScope::Instance(resource_type, id),
                    &params,
                    base,
                    &url,
                )?),
            )
        }
    };
    let head = entry.method == Method::Head;
    Ok(match (version, bundle) {
        (Some(v), _) => {
            let mut result =
                EntryResult::from_version(200, &v, false, ReturnPreference::Representation);
            if head {
                result.resource = None;
            }
            result
        }
        (None, bundle) => EntryResult {
            status: 200,
            resource: bundle.filter(|_| !head),
            ..EntryResult::default()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditional_keys_ignore_parameter_order() {
        let a = conditional_key("Patient", &parse_pairs("identifier=s|1&active=true"));
        let b = conditional_key("Patient", &parse_pairs("active=true&identifier=s%7C1"));
        assert_eq!(a, b);
        assert_ne!(
            a,
            conditional_key("Group", &parse_pairs("identifier=s|1&active=true"))
        );
    }

    #[test]
    fn base64() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbG8").unwrap(), b"hello");
        assert_eq!(
            decode_base64("W3sib3AiOiJ0ZXN0In1d").unwrap(),
            br#"[{"op":"test"}]"#
        );
        assert!(decode_base64("a$b").is_none());
    }
}
