//! Reading and writing FHIR `Parameters` bodies.

use serde_json::{Value, json};

use crate::fhir::FhirError;

/// The parameters of a `Parameters` body.
pub(crate) fn parameters(body: &Value) -> Result<&[Value], FhirError> {
    if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(FhirError::bad_request(
            "the body must be a Parameters resource",
        ));
    }
    Ok(body
        .get("parameter")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice))
}

/// The string-like values (`value[x]` of code, string, id, uri) of every parameter `name`.
pub(crate) fn strings<'a>(params: &'a [Value], name: &str) -> Vec<&'a str> {
    params
        .iter()
        .filter(|p| p.get("name").and_then(Value::as_str) == Some(name))
        .filter_map(|p| {
            ["valueCode", "valueString", "valueId", "valueUri"]
                .iter()
                .find_map(|k| p.get(*k).and_then(Value::as_str))
                .or_else(|| {
                    p.pointer("/valueReference/reference")
                        .and_then(Value::as_str)
                })
        })
        .collect()
}

pub(crate) fn one<'a>(params: &'a [Value], name: &str) -> Result<Option<&'a str>, FhirError> {
    let v = strings(params, name);
    if v.len() > 1 {
        return Err(FhirError::bad_request(format!(
            "parameter '{name}' may appear once"
        )));
    }
    Ok(v.first().copied())
}

pub(crate) fn required<'a>(params: &'a [Value], name: &str) -> Result<&'a str, FhirError> {
    one(params, name)?
        .ok_or_else(|| FhirError::bad_request(format!("parameter '{name}' is required")))
}

pub(crate) fn out(parameter: Vec<Value>) -> Value {
    json!({ "resourceType": "Parameters", "parameter": parameter })
}

pub(crate) fn p(name: &str, kind: &str, value: impl Into<Value>) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("name".into(), Value::from(name));
    o.insert(format!("value{kind}"), value.into());
    Value::Object(o)
}

pub(crate) fn part(name: &str, parts: Vec<Value>) -> Value {
    json!({ "name": name, "part": parts })
}
