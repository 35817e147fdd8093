//! The server-owned part of a stored body, the same for every backend.

use serde_json::{Map, Value};

/// Puts `resourceType`, `id` and `meta` first and sets `meta.versionId` and `meta.lastUpdated`;
/// every other element keeps its place, so stamping a stored body again (a copy between stores)
/// gives the same bytes.
pub(crate) fn stamp(
    resource_type: &str,
    id: &str,
    version: i64,
    last_updated: &str,
    body: Value,
) -> Value {
    let mut src = match body {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    // `shift_remove`: `remove` would move the last element into meta's place.
    let mut meta = match src.shift_remove("meta") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    meta.insert("versionId".into(), Value::String(version.to_string()));
    meta.insert("lastUpdated".into(), Value::String(last_updated.to_owned()));
    let mut out = Map::with_capacity(src.len() + 3);
    out.insert(
        "resourceType".into(),
        Value::String(resource_type.to_owned()),
    );
    out.insert("id".into(), Value::String(id.to_owned()));
    out.insert("meta".into(), Value::Object(meta));
    for (k, v) in src {
        if k != "resourceType" && k != "id" {
            out.insert(k, v);
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn server_fields_first_and_overwritten() {
        let body = serde_json::json!({"gender": "female", "id": "x", "resourceType": "Patient",
            "meta": {"versionId": "9", "profile": ["p"]}});
        let out = super::stamp("Patient", "p1", 2, "2024-01-01T00:00:00Z", body);
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["resourceType", "id", "meta", "gender"]);
        assert_eq!(out["id"], "p1");
        assert_eq!(out["meta"]["versionId"], "2");
        assert_eq!(out["meta"]["profile"][0], "p");
    }

    #[test]
    fn stamping_again_keeps_the_order() {
        let body = serde_json::json!({"resourceType": "Observation", "status": "final",
            "code": {"text": "x"}, "effectiveDateTime": "2024"});
        let once = super::stamp("Observation", "o", 1, "2024-01-01T00:00:00Z", body);
        let twice = super::stamp("Observation", "o", 1, "2024-01-01T00:00:00Z", once.clone());
        assert_eq!(
            serde_json::to_string(&once).unwrap(),
            serde_json::to_string(&twice).unwrap()
        );
    }
}
