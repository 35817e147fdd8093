//! The `_summary` views of a resource (FHIR R4 search, `_summary=true|text|data`), driven by the
//! `isSummary` flags and cardinalities of the R4 definitions.

use serde_json::{Map, Value};

use crate::Definitions;
use crate::definitions::{TypeId, TypeKind, TypeTable, Variant};

/// A `_summary` view other than the full resource (`false`) and the count (`count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryMode {
    /// `_summary=true`: only the elements marked `isSummary` in R4, at every level.
    True,
    /// `_summary=text`: `text`, `id`, `meta` and the top-level mandatory elements.
    Text,
    /// `_summary=data`: everything except the top-level `text`.
    Data,
}

impl SummaryMode {
    /// The mode for a `_summary` value; `None` for `false`, `count` and anything else.
    pub fn parse(value: &str) -> Option<SummaryMode> {
        match value {
            "true" => Some(SummaryMode::True),
            "text" => Some(SummaryMode::Text),
            "data" => Some(SummaryMode::Data),
            _ => None,
        }
    }
}

/// Guards the recursion of `_summary=true` (contained resources and Bundles nest; stored JSON
/// is depth-limited on input already, so this is only a backstop).
const MAX_DEPTH: usize = 64;

impl Definitions {
    /// Whether `element` (an element name or a JSON key such as `valueQuantity`) of `type_name`
    /// (a resource, datatype or backbone path like `Patient.contact`) is marked `isSummary` in R4,
    /// inherited elements included; `None` when the type has no such element.
    pub fn is_summary(&self, type_name: &str, element: &str) -> Option<bool> {
        let ty = self.types.id(type_name)?;
        let r = self.types.lookup(ty, element)?;
        Some(self.types.element(r).summary)
    }

    /// The `_summary` view of `resource`. Resources of unknown type come back unchanged; elements
    /// this version of FHIR does not know are left out of the `true` and `text` views.
    /// The caller marks the result as SUBSETTED (`meta.tag`).
    pub fn summarize(&self, resource: &Value, mode: SummaryMode) -> Value {
        let Some(obj) = resource.as_object() else {
            return resource.clone();
        };
        let types = &self.types;
        let Some(ty) = resource_type_of(types, obj) else {
            return resource.clone();
        };
        match mode {
            SummaryMode::Data => {
                let mut out = obj.clone();
                out.remove("text");
                out.remove("_text");
                Value::Object(out)
            }
            SummaryMode::Text => {
                let keep = |key: &str| {
                    matches!(key, "resourceType" | "id" | "meta" | "text")
                        || types
                            .lookup(ty, key)
                            .is_some_and(|r| types.element(r).min >= 1)
                };
                let out: Map<String, Value> = obj
                    .iter()
                    .filter(|(k, _)| keep(k.strip_prefix('_').unwrap_or(k)))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                Value::Object(out)
            }
            SummaryMode::True => summary_object(types, ty, obj, 0),
        }
    }
}

fn resource_type_of(types: &TypeTable, obj: &Map<String, Value>) -> Option<TypeId> {
    let name = obj.get("resourceType")?.as_str()?;
    let id = types.id(name)?;
    (types.get(id).kind == TypeKind::Resource).then_some(id)
}

/// The summary elements of an object of type `ty` (a resource, datatype or backbone element).
fn summary_object(types: &TypeTable, ty: TypeId, obj: &Map<String, Value>, depth: usize) -> Value {
    let mut out = Map::new();
    for (key, value) in obj {
        if key == "resourceType" {
            out.insert(key.clone(), value.clone());
            continue;
        }
        // `_birthDate` (id and extensions of a primitive) goes with `birthDate`.
        let (name, sibling) = match key.strip_prefix('_') {
            Some(base) => (base, true),
            None => (key.as_str(), false),
        };
        let Some(r) = types.lookup(ty, name) else {
            continue;
        };
        let el = types.element(r);
        if !el.summary {
            continue;
        }
        let element_type = match r.variant {
            Variant::Plain => el.type_ids.first(),
            Variant::Choice(i) => el.type_ids.get(usize::from(i)),
            // A bare choice name is not a valid JSON key.
            Variant::ChoiceBase => None,
        };
        let Some(&element_type) = element_type else {
            continue;
        };
        if sibling || depth >= MAX_DEPTH {
            out.insert(key.clone(), value.clone());
            continue;
        }
        if let Some(v) = summary_value(types, element_type, value, depth) {
            out.insert(key.clone(), v);
        }
    }
    Value::Object(out)
}

/// The summary view of one element value; `None` when nothing of it is left.
fn summary_value(types: &TypeTable, ty: TypeId, value: &Value, depth: usize) -> Option<Value> {
    match value {
        Value::Array(items) => {
            let kept: Vec<Value> = items
                .iter()
                .filter_map(|item| summary_value(types, ty, item, depth))
                .collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        Value::Object(obj) => {
            let nested_ty = match types.get(ty).kind {
                TypeKind::Complex | TypeKind::Backbone => ty,
                // An element typed `Resource` (Bundle.entry.resource, contained): the view of the
                // resource it holds.
                TypeKind::Resource => resource_type_of(types, obj)?,
                TypeKind::Primitive(_) | TypeKind::System => return Some(value.clone()),
            };
            let out = summary_object(types, nested_ty, obj, depth + 1);
            let empty = out
                .as_object()
                .is_none_or(|o| o.is_empty() || (o.len() == 1 && o.contains_key("resourceType")));
            (!empty).then_some(out)
        }
        _ => Some(value.clone()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn summary_flags_come_from_r4() {
        let defs = crate::r4();
        assert_eq!(defs.is_summary("Patient", "name"), Some(true));
        assert_eq!(defs.is_summary("Patient", "photo"), Some(false));
        assert_eq!(defs.is_summary("Patient", "id"), Some(true));
        assert_eq!(defs.is_summary("Patient", "text"), Some(false));
        assert_eq!(defs.is_summary("Patient", "deceasedBoolean"), Some(true));
        assert_eq!(defs.is_summary("Patient.contact", "name"), Some(false));
        assert_eq!(defs.is_summary("Patient.link", "other"), Some(true));
        assert_eq!(defs.is_summary("Attachment", "data"), Some(false));
        assert_eq!(defs.is_summary("Observation", "valueQuantity"), Some(true));
        assert_eq!(
            defs.is_summary("EvidenceVariable.characteristic", "definitionReference"),
            Some(true)
        );
        assert_eq!(defs.is_summary("Patient", "nope"), None);
        assert_eq!(defs.is_summary("Nope", "id"), None);
    }

    fn patient() -> Value {
        json!({
            "resourceType": "Patient",
            "id": "p1",
            "meta": {"versionId": "2", "extension": [{"url": "http://x", "valueString": "y"}]},
            "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
            "extension": [{"url": "http://x", "valueString": "y"}],
            "identifier": [{"system": "urn:s", "value": "1"}],
            "name": [{"family": "F", "extension": [{"url": "http://x", "valueString": "y"}]}],
            "birthDate": "1970",
            "_birthDate": {"extension": [{"url": "http://x", "valueString": "y"}]},
            "maritalStatus": {"text": "married"},
            "photo": [{"contentType": "image/png", "data": "AAAA"}],
            "contact": [{"name": {"family": "C"}}],
            "link": [{"other": {"reference": "Patient/p2"}, "type": "seealso"}],
            "contained": [{"resourceType": "Practitioner", "id": "c", "name": [{"family": "P"}]}]
        })
    }

    #[test]
    fn summary_true_keeps_summary_elements_at_every_level() {
        let s = crate::r4().summarize(&patient(), SummaryMode::True);
        let keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "resourceType",
                "id",
                "meta",
                "identifier",
                "name",
                "birthDate",
                "_birthDate",
                "link"
            ]
        );
        // Element.extension is not a summary element, nested or not.
        assert_eq!(s["name"], json!([{"family": "F"}]));
        assert_eq!(s["meta"], json!({"versionId": "2"}));
        assert_eq!(s["link"][0]["other"]["reference"], "Patient/p2");
    }

    #[test]
    fn summary_true_descends_into_resources_held_by_elements() {
        let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"fullUrl": "urn:x", "resource": patient()}
        ]});
        let s = crate::r4().summarize(&bundle, SummaryMode::True);
        let inner = &s["entry"][0]["resource"];
        assert_eq!(inner["resourceType"], "Patient");
        assert!(inner.get("photo").is_none() && inner.get("name").is_some());
    }

    #[test]
    fn summary_text_and_data() {
        let obs = json!({"resourceType": "Observation", "id": "o", "status": "final",
            "code": {"text": "x"}, "text": {"status": "generated", "div": "<div>x</div>"},
            "valueQuantity": {"value": 1}, "note": [{"text": "n"}]});
        let t = crate::r4().summarize(&obs, SummaryMode::Text);
        let keys: Vec<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["resourceType", "id", "status", "code", "text"]);
        let d = crate::r4().summarize(&obs, SummaryMode::Data);
        assert!(d.get("text").is_none());
        assert_eq!(d["note"], obs["note"]);
        assert_eq!(SummaryMode::parse("data"), Some(SummaryMode::Data));
        assert_eq!(SummaryMode::parse("count"), None);
    }

    #[test]
    fn unknown_types_are_returned_unchanged() {
        let r = json!({"resourceType": "Nope", "x": 1});
        assert_eq!(crate::r4().summarize(&r, SummaryMode::True), r);
    }
}
