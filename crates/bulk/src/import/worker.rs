//! The parallel part of an import: UTF-8 and JSON parsing, validation and index extraction,
//! everything that does not need the write lock.

use medicus_fhir::Severity;
use medicus_store::index::{IndexEntry, extract_entries};
use serde_json::Value;

use super::pipeline::{Raw, RawItem};

/// A resource ready to be written, or why a line/entry failed.
pub(crate) enum Prepared {
    Ready(Box<ReadyResource>),
    Failed {
        error: String,
        expression: Option<String>,
    },
    /// All of the file was read.
    FileEnd,
}

pub(crate) struct ReadyResource {
    pub resource_type: String,
    pub id: String,
    pub body: Value,
    /// Empty when `conditional` (extracted after the references are resolved).
    pub entries: Vec<IndexEntry>,
    /// The body holds `Type?criteria` references, resolved by the writer, which sees the store
    /// including earlier resources of the same import.
    pub conditional: bool,
    /// Input size, for batching by bytes.
    pub size: usize,
}

pub(crate) struct PreparedItem {
    pub file: usize,
    pub pos: u64,
    pub offset: u64,
    pub prepared: Prepared,
}

/// Namespace for ids of NDJSON lines without one (a fixed random UUID): the id derives from the
/// file identity and line, so resuming or re-running an import does not duplicate them.
const LINE_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x9f1c_2a7e_44d0_4b8e_8a55_0d3e_6c21_77b4);

pub(crate) fn prepare(item: RawItem, identity: &str, validate: bool) -> PreparedItem {
    let RawItem {
        file,
        pos,
        offset,
        raw,
    } = item;
    let prepared = match raw {
        Raw::FileEnd => Prepared::FileEnd,
        Raw::Error(error) => Prepared::Failed {
            error,
            expression: None,
        },
        Raw::Line(bytes) => {
            let size = bytes.len();
            match parse_line(&bytes) {
                Ok(body) => resource(body, None, identity, pos, size, validate),
                Err(error) => Prepared::Failed {
                    error,
                    expression: None,
                },
            }
        }
        Raw::Resource { body, id } => resource(body, id, identity, pos, 0, validate),
    };
    PreparedItem {
        file,
        pos,
        offset,
        prepared,
    }
}

fn parse_line(bytes: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("invalid UTF-8 at byte {} of the line", e.valid_up_to() + 1))?;
    serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))
}

fn resource(
    body: Value,
    forced_id: Option<String>,
    identity: &str,
    pos: u64,
    size: usize,
    validate: bool,
) -> Prepared {
    let failed = |error: String| Prepared::Failed {
        error,
        expression: None,
    };
    let Some(rt) = body.get("resourceType").and_then(Value::as_str) else {
        return failed("not a FHIR resource: no resourceType".into());
    };
    if !medicus_fhir::r4().is_resource_type(rt) {
        return failed(format!("unknown resourceType '{rt}'"));
    }
    let resource_type = rt.to_owned();
    if validate {
        let errors: Vec<_> = medicus_fhir::validate(&body)
            .into_iter()
            .filter(|i| matches!(i.severity, Severity::Error | Severity::Fatal))
            .collect();
        if let Some(first) = errors.first() {
            let mut error = format!("{}: {}", first.expression, first.message);
            if errors.len() > 1 {
                error.push_str(&format!(" (and {} more)", errors.len() - 1));
            }
            return Prepared::Failed {
                error,
                expression: Some(first.expression.clone()),
            };
        }
    }
    let id = match forced_id.or_else(|| body.get("id").and_then(Value::as_str).map(str::to_owned)) {
        Some(id) => id,
        None => uuid::Uuid::new_v5(&LINE_ID_NAMESPACE, format!("{identity}#{pos}").as_bytes())
            .to_string(),
    };
    let size = if size == 0 { 1024 } else { size };
    let conditional = has_conditional_reference(&body);
    let entries = if conditional {
        Vec::new()
    } else {
        extract_entries(medicus_fhir::r4(), &resource_type, &body)
    };
    Prepared::Ready(Box::new(ReadyResource {
        resource_type,
        id,
        body,
        entries,
        conditional,
        size,
    }))
}

/// `Type?criteria` in a `reference`: a conditional reference (FHIR transaction semantics).
pub(crate) fn conditional_target(reference: &str) -> Option<(&str, &str)> {
    let (rt, query) = reference.split_once('?')?;
    (!rt.contains('/') && medicus_fhir::r4().is_resource_type(rt)).then_some((rt, query))
}

fn has_conditional_reference(value: &Value) -> bool {
    match value {
        Value::Object(obj) => obj.iter().any(|(k, v)| match v {
            Value::String(s) if k == "reference" => conditional_target(s).is_some(),
            _ => has_conditional_reference(v),
        }),
        Value::Array(items) => items.iter().any(has_conditional_reference),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prep(line: &[u8]) -> Prepared {
        prepare(
            RawItem {
                file: 0,
                pos: 7,
                offset: 0,
                raw: Raw::Line(line.to_vec()),
            },
            "f",
            true,
        )
        .prepared
    }

    fn error_of(p: Prepared) -> String {
        match p {
            Prepared::Failed { error, .. } => error,
            _ => panic!("expected a failure"),
        }
    }

    #[test]
    fn classifies_lines() {
        assert!(error_of(prep(b"{\"resourceType\":")).starts_with("invalid JSON"));
        assert!(error_of(prep(b"{\"a\":\"\xff\"}")).starts_with("invalid UTF-8"));
        assert!(error_of(prep(br#"{"resourceType":"Nope"}"#)).contains("unknown resourceType"));
        assert!(error_of(prep(br#"{"resourceType":"Patient","gender":7}"#)).contains("gender"));
        let Prepared::Ready(r) = prep(br#"{"resourceType":"Patient","gender":"male"}"#) else {
            panic!("expected a resource")
        };
        assert_eq!(r.id.len(), 36);
        assert!(!r.entries.is_empty());
        let Prepared::Ready(r) = prep(
            br#"{"resourceType":"Observation","id":"o","status":"final","code":{"text":"x"},"subject":{"reference":"Patient?identifier=s|1"}}"#,
        ) else {
            panic!("expected a resource")
        };
        assert!(r.conditional);
        assert_eq!(r.id, "o");
    }
}
