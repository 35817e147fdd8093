//! Building response Bundles (searchset, history, transaction-/batch-response).

use medicus_store::api::ResourceVersion;
use serde_json::{Map, Value, json};

use super::headers::etag;
use super::time_fmt::instant;

/// `{base}/{Type}/{id}`.
pub fn full_url(fhir_base: &str, resource_type: &str, id: &str) -> String {
    format!("{fhir_base}/{resource_type}/{id}")
}

/// `Type/id/_history/n`, relative, as used in `Location` of Bundle responses.
pub fn versioned_reference(v: &ResourceVersion) -> String {
    format!("{}/{}/_history/{}", v.resource_type, v.id, v.version)
}

/// A Bundle link.
pub fn link(relation: &str, url: String) -> Value {
    json!({ "relation": relation, "url": url })
}

/// An empty Bundle of `bundle_type` with a fresh id and timestamp.
pub fn new_bundle(bundle_type: &str) -> Map<String, Value> {
    let mut bundle = Map::new();
    bundle.insert("resourceType".into(), json!("Bundle"));
    bundle.insert("id".into(), json!(uuid::Uuid::new_v4().to_string()));
    bundle.insert("type".into(), json!(bundle_type));
    bundle
}

/// A `Bundle.entry.response` element for a version.
pub fn entry_response(status: &str, v: &ResourceVersion, with_location: bool) -> Value {
    let mut response = json!({
        "status": status,
        "etag": etag(v.version),
        "lastModified": instant(v.last_updated_us),
    });
    if with_location {
        response["location"] = json!(versioned_reference(v));
    }
    response
}

/// A history Bundle entry: the version (no resource for a deletion) with its request/response.
pub fn history_entry(fhir_base: &str, mut v: ResourceVersion) -> Value {
    let (method, url, status) = if v.is_deleted() {
        (
            "DELETE",
            format!("{}/{}", v.resource_type, v.id),
            "204 No Content",
        )
    } else if v.version == 1 {
        ("POST", v.resource_type.clone(), "201 Created")
    } else {
        ("PUT", format!("{}/{}", v.resource_type, v.id), "200 OK")
    };
    let mut entry = Map::new();
    entry.insert(
        "fullUrl".into(),
        json!(full_url(fhir_base, &v.resource_type, &v.id)),
    );
    let deleted = v.is_deleted();
    if let Some(body) = v.body.take() {
        entry.insert("resource".into(), body);
    }
    entry.insert("request".into(), json!({ "method": method, "url": url }));
    entry.insert("response".into(), entry_response(status, &v, !deleted));
    Value::Object(entry)
}

/// A searchset Bundle entry (`search.mode = match`).
pub fn search_entry(fhir_base: &str, v: &ResourceVersion, resource: Value) -> Value {
    json!({
        "fullUrl": full_url(fhir_base, &v.resource_type, &v.id),
        "resource": resource,
        "search": { "mode": "match" },
    })
}

/// A searchset Bundle entry for an included resource (`search.mode = include`).
pub fn included_entry(fhir_base: &str, v: &ResourceVersion, resource: Value) -> Value {
    json!({
        "fullUrl": full_url(fhir_base, &v.resource_type, &v.id),
        "resource": resource,
        "search": { "mode": "include" },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(version: i64, body: Option<Value>) -> ResourceVersion {
        ResourceVersion {
            resource_type: "Patient".into(),
            id: "p1".into(),
            version,
            tx: 7,
            last_updated_us: 0,
            body,
        }
    }

    #[test]
    fn history_entries_describe_the_interaction() {
        let created = history_entry(
            "http://x/fhir/t",
            version(1, Some(json!({"resourceType": "Patient"}))),
        );
        assert_eq!(created["request"]["method"], "POST");
        assert_eq!(created["response"]["status"], "201 Created");
        assert_eq!(created["response"]["location"], "Patient/p1/_history/1");
        assert_eq!(created["fullUrl"], "http://x/fhir/t/Patient/p1");
        let deleted = history_entry("http://x/fhir/t", version(3, None));
        assert_eq!(deleted["request"]["method"], "DELETE");
        assert_eq!(deleted["request"]["url"], "Patient/p1");
        assert!(deleted.get("resource").is_none());
        assert_eq!(deleted["response"]["etag"], "W/\"3\"");
    }
}
