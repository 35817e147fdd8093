//! JSON files: a Bundle whose entries are imported as PUTs of their resources, or a single
//! resource.
//!
//! Entries refer to each other by `fullUrl` (`urn:uuid:…` in transaction Bundles). Each entry
//! gets a stable `Type/id` (its own id, the id in a `PUT Type/id` request, the UUID of a
//! `urn:uuid:` fullUrl, or a UUIDv5 of the fullUrl), and every reference to a fullUrl of the
//! Bundle is rewritten to it. Ids derive from the Bundle's content only, so importing the same
//! Bundle twice updates the same resources instead of creating copies.

use std::collections::HashMap;

use serde_json::Value;

use super::pipeline::{Raw, RawItem};

/// Bundle types whose entries are imported one by one. A `document` or `message` is a
/// resource in its own right (signed, one unit) and is stored as one Bundle.
const CONTAINER_TYPES: [&str; 5] = ["transaction", "batch", "collection", "searchset", "history"];

/// Namespace of ids derived from a fullUrl (a fixed random UUID).
const ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6d65_6469_6375_4b00_a1b2_c3d4_e5f6_0718);

/// Splits a parsed JSON document into items. `pos` of an item is its entry index + 1 (so 0
/// means "nothing committed" in checkpoints), and items up to `skip_until` are left out.
pub fn items(file: usize, doc: Value, skip_until: u64) -> Vec<RawItem> {
    let item = |pos: u64, raw: Raw| RawItem {
        file,
        pos,
        offset: 0,
        raw,
    };
    let is_container = doc.get("resourceType").and_then(Value::as_str) == Some("Bundle")
        && doc
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| CONTAINER_TYPES.contains(&t));
    if !is_container {
        let mut out = Vec::new();
        if skip_until == 0 {
            out.push(item(
                1,
                Raw::Resource {
                    body: doc,
                    id: None,
                },
            ));
        }
        out.push(item(1, Raw::FileEnd));
        return out;
    }
    let Some(Value::Array(entries)) = doc.get("entry") else {
        return vec![item(0, Raw::FileEnd)];
    };
    let ids: Vec<Option<(String, String)>> = entries.iter().map(entry_target).collect();
    let map: HashMap<&str, String> = entries
        .iter()
        .zip(&ids)
        .filter_map(|(e, id)| {
            let full_url = e.get("fullUrl")?.as_str()?;
            let (rt, id) = id.as_ref()?;
            Some((full_url, format!("{rt}/{id}")))
        })
        .collect();
    let count = entries.len() as u64;
    let mut out = Vec::with_capacity(entries.len() + 1);
    for (i, (entry, target)) in entries.iter().zip(&ids).enumerate() {
        let pos = i as u64 + 1;
        if pos <= skip_until {
            continue;
        }
        let method = entry
            .pointer("/request/method")
            .and_then(Value::as_str)
            .unwrap_or("PUT");
        let raw = match (entry.get("resource"), target) {
            _ if matches!(method, "DELETE" | "GET" | "HEAD" | "PATCH") => Raw::Error(format!(
                "{method} entries are not imported (only entries carrying a resource)"
            )),
            (Some(resource), Some((_, id))) => {
                let mut body = resource.clone();
                rewrite_references(&mut body, &map);
                Raw::Resource {
                    body,
                    id: Some(id.clone()),
                }
            }
            (Some(_), None) => Raw::Error("entry resource has no resourceType".into()),
            (None, _) => Raw::Error("entry has no resource".into()),
        };
        out.push(item(pos, raw));
    }
    out.push(item(count, Raw::FileEnd));
    out
}

/// The `(type, id)` an entry's resource is stored as.
fn entry_target(entry: &Value) -> Option<(String, String)> {
    let resource = entry.get("resource")?;
    let rt = resource.get("resourceType")?.as_str()?.to_owned();
    if let Some(id) = resource.get("id").and_then(Value::as_str) {
        return Some((rt, id.to_owned()));
    }
    // `PUT Type/id`
    if let Some(url) = entry.pointer("/request/url").and_then(Value::as_str)
        && let Some((t, id)) = url.split('?').next().unwrap_or("").split_once('/')
        && t == rt
        && !id.is_empty()
        && !id.contains('/')
    {
        return Some((rt, id.to_owned()));
    }
    let full_url = entry.get("fullUrl").and_then(Value::as_str);
    if let Some(uuid) = full_url.and_then(|u| u.strip_prefix("urn:uuid:"))
        && is_fhir_id(uuid)
    {
        return Some((rt, uuid.to_ascii_lowercase()));
    }
    // An absolute `…/Type/id` fullUrl names its id.
    if let Some(url) = full_url
        && let Some((t, id)) = url
            .rsplit_once('/')
            .and_then(|(head, id)| head.rsplit_once('/').map(|(_, t)| (t, id)))
        && t == rt
        && is_fhir_id(id)
    {
        return Some((rt, id.to_owned()));
    }
    // No usable name: derive a stable one from whatever identifies the entry.
    let basis = full_url.map_or_else(|| resource.to_string(), str::to_owned);
    let id = uuid::Uuid::new_v5(&ID_NAMESPACE, basis.as_bytes()).to_string();
    Some((rt, id))
}

fn is_fhir_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Rewrites every `reference` that names a fullUrl of the Bundle (also with a `#fragment`).
fn rewrite_references(value: &mut Value, map: &HashMap<&str, String>) {
    match value {
        Value::Object(obj) => {
            for (k, v) in obj.iter_mut() {
                if k == "reference"
                    && let Value::String(s) = v
                {
                    let (base, frag) = match s.split_once('#') {
                        Some((b, f)) => (b, Some(f)),
                        None => (s.as_str(), None),
                    };
                    if let Some(target) = map.get(base) {
                        *s = match frag {
                            Some(f) => format!("{target}#{f}"),
                            None => target.clone(),
                        };
                    }
                } else {
                    rewrite_references(v, map);
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                rewrite_references(v, map);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn resources(items: Vec<RawItem>) -> Vec<(u64, Value, Option<String>)> {
        items
            .into_iter()
            .filter_map(|i| match i.raw {
                Raw::Resource { body, id } => Some((i.pos, body, id)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn urn_uuid_references_resolve_to_stable_ids() {
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:11111111-2222-3333-4444-555555555555",
             "resource": {"resourceType": "Patient"},
             "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": "urn:uuid:aaaaaaaa-2222-3333-4444-555555555555",
             "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                          "subject": {"reference": "urn:uuid:11111111-2222-3333-4444-555555555555"}},
             "request": {"method": "POST", "url": "Observation"}},
            {"fullUrl": "http://other/fhir/Encounter/e1",
             "resource": {"resourceType": "Encounter", "status": "finished", "class": {"code": "IMP"},
                          "subject": {"reference": "urn:uuid:11111111-2222-3333-4444-555555555555"}}},
            {"request": {"method": "DELETE", "url": "Patient/x"}}
        ]});
        let items = items(0, bundle.clone(), 0);
        assert!(matches!(items[3].raw, Raw::Error(_)));
        let res = resources(items);
        assert_eq!(
            res[0].2.as_deref(),
            Some("11111111-2222-3333-4444-555555555555")
        );
        assert_eq!(
            res[1].1["subject"]["reference"],
            "Patient/11111111-2222-3333-4444-555555555555"
        );
        assert_eq!(res[2].2.as_deref(), Some("e1"));
        // Resuming after entry 2 yields only what follows.
        let rest = resources(super::items(0, bundle, 2));
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].0, 3);
    }

    #[test]
    fn single_resources_and_derived_ids() {
        let one = resources(items(0, json!({"resourceType": "Patient"}), 0));
        assert_eq!(one.len(), 1);
        let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"fullUrl": "urn:x:1", "resource": {"resourceType": "Patient"}}]});
        let a = resources(items(0, bundle.clone(), 0));
        let b = resources(items(0, bundle, 0));
        assert_eq!(a[0].2, b[0].2);
        assert!(a[0].2.is_some());
    }
}
