//! `is` / `as` / `ofType`: the type of an item and matching it against a type specifier.

use serde_json::Value;

use crate::ast::TypeSpec;
use crate::eval::Ctx;
use crate::{Item, model};

/// The namespace and name of an item's type.
pub(crate) fn type_of<'x>(
    ctx: &Ctx<'_, '_>,
    item: &'x Item<'_>,
) -> Option<(&'static str, &'x str)> {
    let system = |n: &'static str| Some(("System", n));
    match item {
        Item::Boolean(_) => system("Boolean"),
        Item::Integer(_) => system("Integer"),
        Item::Decimal(_) => system("Decimal"),
        Item::String(_) => system("String"),
        Item::Date(_) => system("Date"),
        Item::DateTime(_) => system("DateTime"),
        Item::Time(_) => system("Time"),
        Item::Quantity { .. } => system("Quantity"),
        Item::Node(n) => {
            if let Some(t) = n.type_name {
                return Some(("FHIR", t));
            }
            // Untyped JSON: the best guess from its shape.
            let t = match n.value {
                Value::Bool(_) => "boolean",
                Value::Number(num) if num.as_str().contains(['.', 'e', 'E']) => "decimal",
                Value::Number(_) => "integer",
                Value::String(_) => "string",
                Value::Object(_) => return ctx.resource_type(n.value).map(|t| ("FHIR", t)),
                _ => return None,
            };
            Some(("FHIR", t))
        }
    }
}

pub(crate) fn is_type(ctx: &Ctx<'_, '_>, item: &Item<'_>, ts: &TypeSpec) -> bool {
    let Some((ns, ty)) = type_of(ctx, item) else {
        return false;
    };
    match ts.namespace.as_deref() {
        Some("System") => ns == "System" && ty == ts.name,
        Some("FHIR") => ns == "FHIR" && model::is_subtype(ctx.model, ty, &ts.name),
        Some(_) => false,
        None => {
            if ns == "System" {
                ty == ts.name
            } else {
                model::is_subtype(ctx.model, ty, &ts.name)
            }
        }
    }
}
