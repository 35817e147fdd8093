//! `resolve()`: references resolved without fetching anything.

use serde_json::Value;

use crate::eval::{Ctx, NULL};
use crate::{Item, Node};

/// `resolve()` without fetching: contained and Bundle-local targets resolve to the real
/// resource; anything else becomes a placeholder node typed by the reference's type segment.
pub(super) fn resolve<'a>(ctx: &Ctx<'a, '_>, item: &Item<'a>) -> Option<Item<'a>> {
    let reference: &str = match item {
        Item::Node(n) => match n.value {
            Value::Object(m) => m.get("reference")?.as_str()?,
            Value::String(s) => s,
            _ => return None,
        },
        Item::String(s) => {
            // A computed string has no lifetime tie to the input; resolve by type only.
            return placeholder(ctx, s);
        }
        _ => return None,
    };
    let Item::Node(root) = &ctx.root else {
        return None;
    };
    if let Some(id) = reference.strip_prefix('#') {
        let contained = root.value.get("contained")?.as_array()?;
        let found = contained
            .iter()
            .find(|r| r.get("id").and_then(Value::as_str) == Some(id))?;
        return Some(Item::Node(Node {
            value: found,
            type_name: ctx.resource_type(found),
            extension: None,
        }));
    }
    if root.value.get("resourceType").and_then(Value::as_str) == Some("Bundle")
        && let Some(entries) = root.value.get("entry").and_then(Value::as_array)
    {
        for e in entries {
            let Some(res) = e.get("resource") else {
                continue;
            };
            let full = e.get("fullUrl").and_then(Value::as_str);
            let local = match (
                res.get("resourceType").and_then(Value::as_str),
                res.get("id").and_then(Value::as_str),
            ) {
                (Some(t), Some(id)) => Some(format!("{t}/{id}")),
                _ => None,
            };
            if full == Some(reference)
                || local
                    .as_deref()
                    .is_some_and(|l| reference == l || reference.ends_with(&format!("/{l}")))
            {
                return Some(Item::Node(Node {
                    value: res,
                    type_name: ctx.resource_type(res),
                    extension: None,
                }));
            }
        }
    }
    placeholder(ctx, reference)
}

pub(super) fn placeholder<'a>(ctx: &Ctx<'a, '_>, reference: &str) -> Option<Item<'a>> {
    let (ty, _) = type_and_id(reference)?;
    let ty = ctx.type_name(ty)?;
    if !crate::model::is_resource_type(ty) && ctx.model.is_none() {
        return None;
    }
    Some(Item::Node(Node {
        value: &NULL,
        type_name: Some(ty),
        extension: None,
    }))
}

/// `(type, id)` of a relative or absolute reference (`Patient/1`, `http://x/fhir/Patient/1`,
/// `Patient/1/_history/2`); `None` for contained (`#id`) and other references.
fn type_and_id(reference: &str) -> Option<(&str, &str)> {
    let reference = reference.split(['?', '#']).next().unwrap_or(reference);
    let segments: Vec<&str> = reference.split('/').filter(|s| !s.is_empty()).collect();
    let end = match segments.iter().rposition(|s| *s == "_history") {
        Some(i) => i,
        None => segments.len(),
    };
    if end < 2 {
        return None;
    }
    Some((segments[end - 2], segments[end - 1]))
}

/// `getReferenceKey([type])`: the id a Reference points to, when it names a resource of `wanted`
/// type (or any type). Matches `getResourceKey()` of the target, which is its `id`.
pub(super) fn reference_key(item: &Item<'_>, wanted: Option<&str>) -> Option<String> {
    let reference = match item {
        Item::Node(n) => n.value.get("reference")?.as_str()?,
        Item::String(s) => s.as_str(),
        _ => return None,
    };
    let (ty, id) = type_and_id(reference)?;
    if wanted.is_some_and(|w| w != ty) {
        return None;
    }
    Some(id.to_string())
}
