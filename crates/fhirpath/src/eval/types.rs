//! `is` / `as` / `ofType`: the type of an item and matching it against a type specifier.

use serde_json::Value;

use crate::ast::TypeSpec;
use crate::eval::{Ctx, err};
use crate::{EvalError, Item, model};

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

const SYSTEM_TYPES: &[&str] = &[
    "Boolean", "Integer", "Decimal", "String", "Date", "DateTime", "Time", "Quantity",
];

/// Rejects type specifiers that name no known type (`ofType(string1)`).
pub(crate) fn check_known(ctx: &Ctx<'_, '_>, ts: &TypeSpec) -> Result<(), EvalError> {
    let known = match ts.namespace.as_deref() {
        // `System.Patient` is simply no type any value has.
        Some("System") => true,
        Some("FHIR") => ctx.type_name(&ts.name).is_some(),
        Some(_) => false,
        None => SYSTEM_TYPES.contains(&ts.name.as_str()) || ctx.type_name(&ts.name).is_some(),
    };
    if known {
        Ok(())
    } else {
        Err(err(format!("unknown type '{}'", ts.name)))
    }
}

/// FHIR primitive types match exactly: `code` is not treated as a `string` (nor `id` as one),
/// as the FHIRPath conformance suite expects.
fn fhir_matches(ctx: &Ctx<'_, '_>, ty: &str, wanted: &str, exact_primitives: bool) -> bool {
    if exact_primitives && model::builtin_type_name(ty).is_some_and(model::is_primitive) {
        return ty == wanted;
    }
    model::is_subtype(ctx.model, ty, wanted)
}

/// `is`: the item's type is `ts` or derives from it.
/// Whether the evaluation runs over a FHIR resource (rather than arbitrary JSON).
fn inside_resource(ctx: &Ctx<'_, '_>) -> bool {
    matches!(&ctx.root, Item::Node(n) if n.type_name.is_some())
}

/// JSON that no model typed (`{"a": 1}` outside FHIR) also answers to the System type its shape
/// suggests, so `ofType(Integer)` works on plain JSON.
fn untyped_system_match(item: &Item<'_>, name: &str) -> bool {
    let Item::Node(n) = item else { return false };
    if n.type_name.is_some() {
        return false;
    }
    match n.value {
        Value::Bool(_) => name == "Boolean",
        Value::String(_) => name == "String",
        Value::Number(num) if num.as_str().contains(['.', 'e', 'E']) => name == "Decimal",
        Value::Number(_) => name == "Integer",
        _ => false,
    }
}

pub(crate) fn is_type(ctx: &Ctx<'_, '_>, item: &Item<'_>, ts: &TypeSpec) -> bool {
    matches_type(ctx, item, ts, false)
}

/// `as` / `ofType`: like [`is_type`], but FHIR primitives must match exactly (`code` is not
/// cast to `string`), as the conformance suite expects.
pub(crate) fn cast_matches(ctx: &Ctx<'_, '_>, item: &Item<'_>, ts: &TypeSpec) -> bool {
    matches_type(ctx, item, ts, true)
}

fn matches_type(ctx: &Ctx<'_, '_>, item: &Item<'_>, ts: &TypeSpec, exact_primitives: bool) -> bool {
    let Some((ns, ty)) = type_of(ctx, item) else {
        return false;
    };
    match ts.namespace.as_deref() {
        Some("System") => ns == "System" && ty == ts.name,
        Some("FHIR") => ns == "FHIR" && fhir_matches(ctx, ty, &ts.name, exact_primitives),
        Some(_) => false,
        None => {
            if ns == "System" {
                ty == ts.name
            } else if !inside_resource(ctx) && untyped_system_match(item, &ts.name) {
                true
            } else {
                fhir_matches(ctx, ty, &ts.name, exact_primitives)
            }
        }
    }
}
