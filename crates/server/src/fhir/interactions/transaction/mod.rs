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
//!
//! Layout: `entry` parses Bundle entries, `execute` runs one entry against a session,
//! `result` renders entry outcomes; this module orders and drives them.

mod entry;
mod execute;
mod result;

use std::collections::{HashMap, HashSet};

use crate::access::Access;
use crate::access::guard::{with_read, with_write};
use medicus_store::api::{Store, WriteSession};
use serde_json::Value;

pub use entry::{Entry, Method, Target, bundle_kind, parse_entry, parse_request_url};
pub use execute::{conditional_key, decode_base64};
pub use result::{EntryResult, status_text};

use super::resource::new_id;
use super::search::PageSizes;
use crate::fhir::bundle::new_bundle;
use crate::fhir::error::FhirError;
use crate::fhir::headers::ReturnPreference;
use entry::raw_entries;
use execute::{
    Identity, entry_conditional_key, execute_delete, execute_read, execute_write, plan_identity,
    resolve_references,
};

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
        // Two conditional entries with the same criteria would each create a resource that the
        // other one should have found; that Bundle is ambiguous.
        if let Some(key) = entry_conditional_key(entry)
            && conditional_refs.insert(key, target.clone()).is_some()
        {
            return Err(FhirError::bad_request(
                "more than one entry has the same conditional criteria",
            )
            .in_entry(i));
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
    access: &Access,
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
            .and_then(|entry| run_batch_entry(store, tenant, access, &entry, options));
        results.push(Some(result.unwrap_or_else(|e| EntryResult::from_error(&e))));
    }
    Ok(response_bundle("batch-response", results))
}

fn run_batch_entry(
    store: &dyn Store,
    tenant: &str,
    access: &Access,
    entry: &Entry,
    options: &BundleOptions,
) -> Result<EntryResult, FhirError> {
    if !entry.method.is_write() {
        let mut session = store.read_session(tenant)?;
        return with_read(&mut *session, access, false, |s| {
            execute_read(s, entry, options)
        });
    }
    let mut session = store.write_session(tenant)?;
    let result = with_write(&mut *session, access, |session| {
        if entry.method == Method::Delete {
            return execute_delete(session, entry, options.return_preference);
        }
        let identity = plan_identity(session, entry)?;
        let mut resource = entry.resource.clone().unwrap_or(Value::Null);
        // Batch entries must not depend on each other: no placeholders are defined.
        resolve_references(session, &mut resource, &HashMap::new(), &mut HashMap::new())?;
        execute_write(session, entry, identity, resource, options)
    })?;
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

    #[test]
    fn processing_order_is_delete_post_put_get() {
        use Method::*;
        let methods = [Get, Put, Post, Delete, Patch, Post, Head, Delete];
        assert_eq!(processing_order(&methods), vec![3, 7, 2, 5, 1, 4, 0, 6]);
    }
}
