//! Structural validation of resource JSON against the R4 definitions.
//!
//! One pass over the JSON: every key is looked up in the flattened key table of its type (one hash
//! lookup), the JSON shape is checked against cardinality and type, primitives against their lexical
//! rules, and required elements after each object. The location is a stack of borrowed segments;
//! the expression string is rendered only for an issue, so valid resources allocate nothing but the
//! path stack.

mod path;
mod primitives;
mod reference;

use serde_json::{Map, Value};

use crate::definitions::{ElementDef, ElementRef, Primitive, TypeId, TypeKind, TypeTable, Variant};
use crate::{IssueType, Severity, ValidationIssue};
use path::{Path, Segment};

/// Deepest object nesting followed. serde_json refuses to parse deeper than 128 levels anyway; this
/// guards values built in code.
const MAX_DEPTH: usize = 100;

/// Input echoed into a message, cut short: the expression already locates it, and a hostile
/// megabyte-long key should not be copied around.
fn echo(s: &str) -> std::borrow::Cow<'_, str> {
    const MAX_CHARS: usize = 64;
    match s.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]).into(),
        None => s.into(),
    }
}

pub(crate) fn validate(types: &TypeTable, resource: &Value) -> Vec<ValidationIssue> {
    let mut v = Validator {
        types,
        path: Path::new(),
        issues: Vec::new(),
    };
    v.path.push(Segment::Name("Resource"));
    v.resource(resource, 0, true);
    v.issues
}

struct Validator<'a> {
    types: &'a TypeTable,
    path: Path<'a>,
    issues: Vec<ValidationIssue>,
}

/// The choice elements seen in one object, to report a second variant (`valueString` + `valueQuantity`).
/// A fixed array: no type has more than a handful of choice elements.
#[derive(Default)]
struct ChoicesSeen {
    seen: [(u16, u16, u8); 8],
    len: usize,
}

impl ChoicesSeen {
    /// True when another variant of the same choice element was seen before.
    fn conflicts(&mut self, r: ElementRef, variant: u8) -> bool {
        let key = (r.owner.0, r.index);
        for &(owner, index, v) in &self.seen[..self.len] {
            if (owner, index) == key {
                return v != variant;
            }
        }
        if self.len < self.seen.len() {
            self.seen[self.len] = (key.0, key.1, variant);
            self.len += 1;
        }
        false
    }
}

impl<'a> Validator<'a> {
    fn issue(&mut self, code: IssueType, message: impl Into<String>) {
        self.issues.push(ValidationIssue {
            severity: Severity::Error,
            code,
            expression: self.path.render(),
            message: message.into(),
        });
    }

    fn issue_at(&mut self, name: &'a str, code: IssueType, message: impl Into<String>) {
        self.path.push(Segment::Name(name));
        self.issue(code, message);
        self.path.pop();
    }

    /// A resource: the root, `contained`, `Bundle.entry.resource`, `Parameters.parameter.resource`.
    /// `root`: the current path segment is a placeholder to replace with the resource type.
    fn resource(&mut self, value: &'a Value, depth: usize, root: bool) {
        let Value::Object(obj) = value else {
            self.issue(IssueType::Structure, "a resource must be a JSON object");
            return;
        };
        let ty = match obj.get("resourceType") {
            Some(Value::String(name)) => match self.types.concrete_resource(name) {
                Some(ty) => ty,
                None => {
                    self.issue(
                        IssueType::Invalid,
                        format!("unknown resource type '{}'", echo(name)),
                    );
                    return;
                }
            },
            Some(_) => {
                self.issue_at(
                    "resourceType",
                    IssueType::Structure,
                    "resourceType must be a string",
                );
                return;
            }
            None => {
                self.issue(IssueType::Required, "resourceType is missing");
                return;
            }
        };
        if root {
            self.path.replace_root(self.types.get(ty).name);
        }
        self.object(obj, ty, depth, true);
    }

    /// A JSON object of a complex type, backbone element or resource.
    fn object(&mut self, obj: &'a Map<String, Value>, ty: TypeId, depth: usize, is_resource: bool) {
        if depth > MAX_DEPTH {
            self.issue(IssueType::Structure, "nested too deeply");
            return;
        }
        if obj.is_empty() {
            self.issue(IssueType::Invalid, "an object must have content");
            return;
        }
        let types = self.types;
        let mut choices = ChoicesSeen::default();
        for (key, value) in obj {
            if is_resource && key == "resourceType" {
                continue;
            }
            if let Some(name) = key.strip_prefix('_') {
                self.primitive_extension(obj, ty, key, name, value, depth, &mut choices);
                continue;
            }
            let Some(r) = types.lookup(ty, key) else {
                self.issue_at(
                    key,
                    IssueType::Structure,
                    format!("unknown element '{}'", echo(key)),
                );
                continue;
            };
            let el = types.element(r);
            let variant = match r.variant {
                Variant::Plain => 0,
                Variant::Choice(i) => {
                    if choices.conflicts(r, i) {
                        self.issue_at(
                            key,
                            IssueType::Invariant,
                            format!("only one of {}[x] may be present", el.name),
                        );
                    }
                    i
                }
                Variant::ChoiceBase => {
                    self.issue_at(
                        key,
                        IssueType::Structure,
                        format!("unknown element '{key}': a choice element needs its type suffix, like '{}'", el.json_keys[0]),
                    );
                    continue;
                }
            };
            let variant = usize::from(variant);
            let element_ty = el.type_ids[variant];
            // Nulls in a primitive array are allowed where the `_` sibling array has the extension.
            let aligned = match types.get(element_ty).kind {
                TypeKind::Primitive(_) if el.many => obj
                    .get(el.underscore_keys[variant])
                    .and_then(Value::as_array),
                _ => None,
            };
            self.path.push(Segment::Name(key));
            self.element_value(value, el, element_ty, aligned, depth);
            self.path.pop();
        }
        self.required(obj, ty);
        if ty == types.extension_type {
            self.extension_rule(obj);
        } else if ty == types.reference_type
            && let Some(Value::String(reference)) = obj.get("reference")
            && let Err(message) = reference::check(reference, types)
        {
            self.issue_at("reference", IssueType::Value, message);
        }
    }

    fn required(&mut self, obj: &Map<String, Value>, ty: TypeId) {
        let types = self.types;
        for &r in &types.get(ty).required {
            let el = types.element(r);
            let present = el
                .json_keys
                .iter()
                .zip(el.underscore_keys)
                .any(|(k, u)| obj.contains_key(*k) || obj.contains_key(*u));
            if !present {
                let shown = if el.is_choice {
                    format!("{}[x]", el.name)
                } else {
                    el.name.to_owned()
                };
                self.path.push(Segment::Name(el.name));
                self.issue(
                    IssueType::Required,
                    format!("required element '{shown}' is missing"),
                );
                self.path.pop();
            }
        }
    }

    /// ext-1: an extension has either a value or nested extensions, not both and not neither.
    fn extension_rule(&mut self, obj: &Map<String, Value>) {
        let has_value = obj
            .keys()
            .any(|k| k.starts_with("value") || k.starts_with("_value"));
        let has_nested = obj.contains_key("extension");
        if has_value && has_nested {
            self.issue(
                IssueType::Invariant,
                "an extension must have either a value or nested extensions, not both",
            );
        } else if !has_value && !has_nested {
            self.issue(
                IssueType::Invariant,
                "an extension must have a value or nested extensions",
            );
        }
    }

    /// The value of one element; the element's name is on the path.
    fn element_value(
        &mut self,
        value: &'a Value,
        el: &ElementDef,
        ty: TypeId,
        aligned: Option<&'a Vec<Value>>,
        depth: usize,
    ) {
        if !el.many {
            match value {
                Value::Array(_) => self.issue(
                    IssueType::Invariant,
                    "must be a single value, not an array (max 1)",
                ),
                Value::Null => self.issue(IssueType::Structure, "null is not allowed here"),
                _ => self.single(value, ty, depth),
            }
            return;
        }
        let Value::Array(items) = value else {
            self.issue(
                IssueType::Structure,
                "must be an array (the element repeats)",
            );
            return;
        };
        if items.is_empty() {
            self.issue(IssueType::Invalid, "an array must have content");
            return;
        }
        for (i, item) in items.iter().enumerate() {
            self.path.push(Segment::Index(i));
            if item.is_null() {
                let has_extension = aligned.and_then(|a| a.get(i)).is_some_and(|e| !e.is_null());
                if !has_extension {
                    self.issue(
                        IssueType::Structure,
                        "null is only allowed where the '_' sibling has an entry",
                    );
                }
            } else {
                self.single(item, ty, depth);
            }
            self.path.pop();
        }
    }

    /// One (non-array) value of type `ty`.
    fn single(&mut self, value: &'a Value, ty: TypeId, depth: usize) {
        let def = self.types.get(ty);
        match def.kind {
            TypeKind::Primitive(p) => {
                if let Err((code, message)) = primitives::check(p, value) {
                    self.issue(code, message);
                }
            }
            TypeKind::Resource => self.resource(value, depth + 1, false),
            TypeKind::Complex | TypeKind::Backbone => match value {
                Value::Object(obj) => self.object(obj, ty, depth + 1, false),
                _ => self.issue(
                    IssueType::Structure,
                    format!("must be a JSON object (type {})", def.name),
                ),
            },
            // Only a primitive's `value` has a system type, and that is never a JSON key.
            TypeKind::System => self.issue(IssueType::Structure, "unexpected element"),
        }
    }

    /// `_name`: the id and extensions of primitive `name` (or of each entry of a primitive array).
    #[allow(clippy::too_many_arguments)]
    fn primitive_extension(
        &mut self,
        obj: &'a Map<String, Value>,
        ty: TypeId,
        key: &'a str,
        name: &'a str,
        value: &'a Value,
        depth: usize,
        choices: &mut ChoicesSeen,
    ) {
        let types = self.types;
        let found = types.lookup(ty, name).and_then(|r| {
            let variant = match r.variant {
                Variant::Plain => 0,
                Variant::Choice(i) => i,
                Variant::ChoiceBase => return None,
            };
            let el = types.element(r);
            let ty = types.get(el.type_ids[usize::from(variant)]);
            // Element.id and Resource.id (defined on the abstract bases) are plain JSON strings
            // without a `_id` sibling (R4 JSON schema), and the narrative's xhtml takes no extensions.
            let extensible = match ty.kind {
                TypeKind::Primitive(p) => {
                    p != Primitive::Xhtml && !(el.name == "id" && types.get(r.owner).is_abstract)
                }
                _ => false,
            };
            extensible.then_some((r, el, variant))
        });
        let Some((r, el, variant)) = found else {
            self.issue_at(
                key,
                IssueType::Structure,
                format!("unknown element '{}'", echo(key)),
            );
            return;
        };
        if matches!(r.variant, Variant::Choice(_)) && choices.conflicts(r, variant) {
            self.issue_at(
                name,
                IssueType::Invariant,
                format!("only one of {}[x] may be present", el.name),
            );
        }
        let element = types.element_type;
        self.path.push(Segment::Name(name));
        if el.many {
            match value {
                Value::Array(entries) => {
                    let values = obj.get(name).and_then(Value::as_array);
                    if let Some(values) = values
                        && values.len() != entries.len()
                    {
                        self.issue(
                            IssueType::Structure,
                            format!("'{key}' must have as many entries as '{name}'"),
                        );
                    }
                    if entries.is_empty() {
                        self.issue(IssueType::Invalid, "an array must have content");
                    }
                    for (i, entry) in entries.iter().enumerate() {
                        self.path.push(Segment::Index(i));
                        match entry {
                            Value::Null => {
                                let has_value =
                                    values.and_then(|v| v.get(i)).is_some_and(|v| !v.is_null());
                                if !has_value {
                                    self.issue(
                                        IssueType::Structure,
                                        "a value or an extension must be present",
                                    );
                                }
                            }
                            Value::Object(o) => self.object(o, element, depth + 1, false),
                            _ => self.issue(
                                IssueType::Structure,
                                format!("'{key}' entries must be objects or null"),
                            ),
                        }
                        self.path.pop();
                    }
                }
                _ => self.issue(IssueType::Structure, format!("'{key}' must be an array")),
            }
        } else {
            match value {
                Value::Object(o) => self.object(o, element, depth + 1, false),
                Value::Array(_) => self.issue(
                    IssueType::Invariant,
                    format!("'{key}' must be a single object, not an array"),
                ),
                _ => self.issue(IssueType::Structure, format!("'{key}' must be an object")),
            }
        }
        self.path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::echo;

    #[test]
    fn echo_cuts_long_input_at_a_char_boundary() {
        assert_eq!(echo("short"), "short");
        let long = "ä".repeat(100);
        let shown = echo(&long);
        assert_eq!(shown.chars().count(), 65);
        assert!(shown.ends_with('…'));
    }
}
