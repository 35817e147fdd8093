//! Transaction and batch Bundles.
//!
//! A transaction runs in one write session that the caller commits; any failing entry fails the
//! whole Bundle (the caller drops the session, which rolls back). Entries are processed in the
//! order the spec prescribes: DELETE, POST, PUT/PATCH, GET/HEAD. Before anything is written,
//! every POST/PUT/PATCH entry gets its final identity (new ids, conditional matches), so that
//! `urn:uuid:` placeholders and conditional references can be rewritten in all resources.
//!
//! A batch runs every entry on its own: each write entry in its own write session; a failing
//! entry becomes that entry's error response.

use std::collections::{HashMap, HashSet};

use medicus_store::api::{
    HistoryScope, Precondition, ReadSession, ResourceVersion, Store, WriteSession,
};
use serde_json::{Map, Value, json};

use super::conditional::{Matches, find_matches, parse_criteria};
use super::create::create_with_id;
use super::delete::{conditional_delete, delete};
use super::history::{history, parse_history_params};
use super::patch::{parse_patch, patch};
use super::read::{read, vread};
use super::references::{as_conditional, is_placeholder, rewrite_references};
use super::resource::{
    body_id, ensure_supported_type, ensure_valid_id, new_id, resource_type_of, validate_resource,
};
use super::search::{PageSizes, localize_reference_values, parse_search_params, search};
use super::update::{conditional_update_target, update};
use crate::fhir::bundle::{entry_response, new_bundle};
use crate::fhir::error::FhirError;
use crate::fhir::headers::{Handling, ReturnPreference, parse_etag_version};
use crate::fhir::outcome::information;
use crate::fhir::query::parse_pairs;

/// What Bundle processing needs to know about the request.
#[derive(Debug, Clone)]
pub struct BundleOptions {
    /// The FHIR base of the tenant, e.g. `http://host/fhir/default`.
    pub fhir_base: String,
    pub return_preference: ReturnPreference,
    pub page_sizes: PageSizes,
    /// Depth limit for JSON decoded from inside the Bundle (JSON Patch documents in Binary).
    pub max_json_depth: usize,
}

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
    fn rank(self) -> u8 {
        match self {
            Method::Delete => 0,
            Method::Post => 1,
            Method::Put | Method::Patch => 2,
            Method::Get | Method::Head => 3,
        }
    }

    fn is_write(self) -> bool {
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
    fn resource_type(&self) -> &str {
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
    fn from_version(
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

    fn from_error(error: &FhirError) -> Self {
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
fn raw_entries(bundle: &Value) -> Result<&[Value], FhirError> {
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

fn check_entry_shape(entry: &Entry) -> Result<(), FhirError> {
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

/// The id a write entry resolves to, decided before anything is written.
#[derive(Debug, Clone, PartialEq)]
enum Identity {
    /// Write under this id.
    Write(String),
    /// Conditional create matched this resource; nothing is written.
    Existing(ResourceVersion),
}

fn plan_identity(session: &mut dyn WriteSession, entry: &Entry) -> Result<Identity, FhirError> {
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
fn entry_conditional_key(entry: &Entry) -> Option<String> {
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
fn resolve_references(
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

fn execute_delete(
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
fn execute_write(
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
fn execute_read(
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

/// Rejects a transaction that writes the same resource twice (the spec forbids it).
fn ensure_distinct_targets(entries: &[Entry]) -> Result<(), FhirError> {
    let mut seen = HashSet::new();
    for entry in entries.iter().filter(|e| e.method.is_write()) {
        if let Target::Instance { resource_type, id } = &entry.target
            && !seen.insert((resource_type.as_str(), id.as_str()))
        {
            return Err(FhirError::bad_request(format!(
                "{resource_type}/{id} is the target of more than one entry"
            ))
            .in_entry(entry.index));
        }
    }
    Ok(())
}

/// The order in which transaction entries are processed: DELETE, POST, PUT/PATCH, GET/HEAD,
/// keeping Bundle order within each group.
pub fn processing_order(methods: &[Method]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..methods.len()).collect();
    order.sort_by_key(|&i| methods[i].rank());
    order
}

/// Processes a `transaction` Bundle in `session` and returns the `transaction-response`. The
/// caller commits the session on `Ok` and drops it on `Err` (rollback).
pub fn process_transaction(
    session: &mut dyn WriteSession,
    bundle: &Value,
    options: &BundleOptions,
) -> Result<Value, FhirError> {
    let raw = raw_entries(bundle)?;
    let entries = raw
        .iter()
        .enumerate()
        .map(|(i, e)| parse_entry(i, e, &options.fhir_base).map_err(|err| err.in_entry(i)))
        .collect::<Result<Vec<_>, _>>()?;
    ensure_distinct_targets(&entries)?;
    let order = processing_order(&entries.iter().map(|e| e.method).collect::<Vec<_>>());
    let mut results: Vec<Option<EntryResult>> = vec![None; entries.len()];
    let preference = options.return_preference;

    // 1. Deletes.
    for &i in order
        .iter()
        .filter(|&&i| entries[i].method == Method::Delete)
    {
        results[i] =
            Some(execute_delete(session, &entries[i], preference).map_err(|e| e.in_entry(i))?);
    }

    // 2. Identities of every POST/PUT/PATCH, so placeholders can be resolved.
    let writes: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| {
            matches!(
                entries[i].method,
                Method::Post | Method::Put | Method::Patch
            )
        })
        .collect();
    let mut identities: HashMap<usize, Identity> = HashMap::new();
    let mut placeholders: HashMap<String, String> = HashMap::new();
    let mut conditional_refs: HashMap<String, String> = HashMap::new();
    for &i in &writes {
        let entry = &entries[i];
        let identity = plan_identity(session, entry).map_err(|e| e.in_entry(i))?;
        let id = match &identity {
            Identity::Write(id) => id.clone(),
            Identity::Existing(v) => v.id.clone(),
        };
        let target = format!("{}/{id}", entry.target.resource_type());
        if let Some(key) = entry_conditional_key(entry) {
            conditional_refs.insert(key, target.clone());
        }
        if let Some(full_url) = &entry.full_url
            && placeholders.insert(full_url.clone(), target).is_some()
        {
            return Err(FhirError::bad_request(format!(
                "fullUrl '{full_url}' is used by more than one entry"
            ))
            .in_entry(i));
        }
        identities.insert(i, identity);
    }

    // 3. References, then 4. the writes themselves, in processing order.
    for &i in &writes {
        let entry = &entries[i];
        let mut resource = entry.resource.clone().unwrap_or(Value::Null);
        resolve_references(session, &mut resource, &placeholders, &mut conditional_refs)
            .map_err(|e| e.in_entry(i))?;
        let identity = identities
            .remove(&i)
            .unwrap_or_else(|| Identity::Write(new_id()));
        results[i] = Some(
            execute_write(session, entry, identity, resource, options)
                .map_err(|e| e.in_entry(i))?,
        );
    }

    // 5. Reads see the writes of this transaction.
    for &i in order.iter().filter(|&&i| !entries[i].method.is_write()) {
        results[i] = Some(execute_read(session, &entries[i], options).map_err(|e| e.in_entry(i))?);
    }

    Ok(response_bundle("transaction-response", results))
}

/// Processes a `batch` Bundle: every entry independently, in Bundle order; write entries each in
/// their own committed write session. Fails as a whole only for an unknown tenant or a Bundle
/// that is not a batch.
pub fn process_batch(
    store: &dyn Store,
    tenant: &str,
    bundle: &Value,
    options: &BundleOptions,
) -> Result<Value, FhirError> {
    if !store.tenant_exists(tenant)? {
        return Err(FhirError::UnknownTenant);
    }
    let raw = raw_entries(bundle)?;
    let mut results = Vec::with_capacity(raw.len());
    for (i, raw_entry) in raw.iter().enumerate() {
        let result = parse_entry(i, raw_entry, &options.fhir_base)
            .and_then(|entry| run_batch_entry(store, tenant, &entry, options));
        results.push(Some(result.unwrap_or_else(|e| EntryResult::from_error(&e))));
    }
    Ok(response_bundle("batch-response", results))
}

fn run_batch_entry(
    store: &dyn Store,
    tenant: &str,
    entry: &Entry,
    options: &BundleOptions,
) -> Result<EntryResult, FhirError> {
    if !entry.method.is_write() {
        let mut session = store.read_session(tenant)?;
        return execute_read(&mut *session, entry, options);
    }
    let mut session = store.write_session(tenant)?;
    let result = if entry.method == Method::Delete {
        execute_delete(&mut *session, entry, options.return_preference)?
    } else {
        let identity = plan_identity(&mut *session, entry)?;
        let mut resource = entry.resource.clone().unwrap_or(Value::Null);
        // Batch entries must not depend on each other: no placeholders are defined.
        resolve_references(
            &mut *session,
            &mut resource,
            &HashMap::new(),
            &mut HashMap::new(),
        )?;
        execute_write(&mut *session, entry, identity, resource, options)?
    };
    session.commit()?;
    Ok(result)
}

fn response_bundle(kind: &str, results: Vec<Option<EntryResult>>) -> Value {
    let mut bundle = new_bundle(kind);
    let entries = results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                EntryResult::from_error(&FhirError::Internal("entry not processed".into()))
            })
        })
        .map(|r| r.to_json())
        .collect();
    bundle.insert("entry".into(), Value::Array(entries));
    Value::Object(bundle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://h/fhir/t";

    #[test]
    fn processing_order_is_delete_post_put_get() {
        use Method::*;
        let methods = [Get, Put, Post, Delete, Patch, Post, Head, Delete];
        assert_eq!(processing_order(&methods), vec![3, 7, 2, 5, 1, 4, 0, 6]);
    }

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
    fn status_texts() {
        assert_eq!(status_text(201), "201 Created");
        assert_eq!(status_text(412), "412 Precondition Failed");
        assert_eq!(status_text(418), "418");
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
        let _ = BASE;
    }
}
