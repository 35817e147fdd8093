//! Tree-walking evaluator over borrowed resource JSON.

pub(crate) mod functions;
mod operators;
pub(crate) mod types;
pub(crate) mod value;

use serde_json::Value;

use crate::ast::{Expr, Literal};
use crate::model::{choice_suffix_type, static_type_name};
use crate::{EvalError, Item, Model, Node};

/// Stands in for the value of a primitive that only has an `_element` extension, and for
/// `resolve()` placeholders.
pub(crate) static NULL: Value = Value::Null;

pub(crate) type Coll<'a> = Vec<Item<'a>>;

/// Per-evaluation state shared by every step.
pub(crate) struct Ctx<'a, 'm> {
    /// `%resource` / `%rootResource`.
    pub root: Item<'a>,
    /// `%context`: the root unless evaluation started at an inner node.
    pub context: Item<'a>,
    pub model: Option<&'m dyn Model>,
    /// Caller-supplied `%name` variables.
    pub vars: &'m [(&'m str, Vec<Item<'a>>)],
}

/// Variables in scope inside function arguments.
#[derive(Clone)]
pub(crate) struct Frame<'a> {
    pub this: Option<Item<'a>>,
    pub index: Option<usize>,
    pub total: Option<Coll<'a>>,
}

pub(crate) fn err(msg: impl Into<String>) -> EvalError {
    EvalError::Message(msg.into())
}

/// The `_name` sibling of element `name` (a primitive's id and extensions), looked up without
/// allocating for ordinary element names.
fn sibling<'v>(map: &'v serde_json::Map<String, Value>, name: &str) -> Option<&'v Value> {
    let mut buf = [0u8; 64];
    if name.len() < buf.len() {
        buf[0] = b'_';
        buf[1..=name.len()].copy_from_slice(name.as_bytes());
        // '_' followed by the bytes of a `str` is valid UTF-8.
        map.get(std::str::from_utf8(&buf[..=name.len()]).ok()?)
    } else {
        map.get(&format!("_{name}"))
    }
}

/// `suffix` is `ty` with its first letter upper-cased (`DateTime` for `dateTime`).
fn is_capitalized(ty: &str, suffix: &str) -> bool {
    let (mut t, mut s) = (ty.chars(), suffix.chars());
    match (t.next(), s.next()) {
        (Some(a), Some(b)) => a.to_ascii_uppercase() == b && t.as_str() == s.as_str(),
        _ => false,
    }
}

pub(crate) fn literal_item(l: &Literal) -> Item<'static> {
    match l {
        Literal::Bool(b) => Item::Boolean(*b),
        Literal::Str(s) => Item::String(s.clone()),
        Literal::Int(i) => Item::Integer(*i),
        Literal::Dec(d) => Item::Decimal(d.clone()),
        Literal::Date(d) => Item::Date(d.clone()),
        Literal::DateTime(d) => Item::DateTime(d.clone()),
        Literal::Time(t) => Item::Time(t.clone()),
        Literal::Quantity { value, unit } => Item::Quantity {
            value: value.clone(),
            unit: unit.clone(),
        },
    }
}

impl<'a, 'm> Ctx<'a, 'm> {
    pub(crate) fn new(root: &'a Value, model: Option<&'m dyn Model>) -> Self {
        let mut ctx = Ctx {
            root: Item::Boolean(false),
            context: Item::Boolean(false),
            model,
            vars: &[],
        };
        ctx.root = Item::Node(Node {
            value: root,
            type_name: ctx.resource_type(root),
            extension: None,
        });
        ctx.context = ctx.root.clone();
        ctx
    }

    /// The type of a resource object, from its `resourceType`.
    pub(crate) fn resource_type(&self, v: &Value) -> Option<&'static str> {
        let rt = v.get("resourceType")?.as_str()?;
        static_type_name(self.model, rt)
    }

    pub(crate) fn type_name(&self, name: &str) -> Option<&'static str> {
        static_type_name(self.model, name)
    }

    pub(crate) fn eval(
        &self,
        e: &Expr,
        focus: &[Item<'a>],
        fr: &Frame<'a>,
    ) -> Result<Coll<'a>, EvalError> {
        Ok(match e {
            Expr::Empty => Vec::new(),
            Expr::Lit(l) => vec![literal_item(l)],
            Expr::This => fr.this.clone().into_iter().collect(),
            Expr::Index => match fr.index {
                Some(i) => vec![Item::Integer(
                    i64::try_from(i).map_err(|_| err("index overflow"))?,
                )],
                None => Vec::new(),
            },
            Expr::Total => fr.total.clone().unwrap_or_default(),
            Expr::External(name) => self.external(name)?,
            Expr::Ident(name) => {
                let mut out = Vec::new();
                for item in focus {
                    if let Item::Node(n) = item
                        && self.names_own_type(n, name)
                    {
                        out.push(item.clone());
                    } else {
                        self.navigate(item, name, &mut out);
                    }
                }
                out
            }
            Expr::Member(target, name) => {
                if let Some(parts) = self.type_info_member(target, name, focus, fr)? {
                    return Ok(parts);
                }
                let input = self.eval(target, focus, fr)?;
                let mut out = Vec::new();
                for item in &input {
                    self.navigate(item, name, &mut out);
                }
                out
            }
            Expr::Call { target, func, args } => {
                let input = match target {
                    Some(t) => self.eval(t, focus, fr)?,
                    None => focus.to_vec(),
                };
                functions::call(self, input, target.is_some(), func, args, focus, fr)?
            }
            Expr::Indexer(target, idx) => {
                let input = self.eval(target, focus, fr)?;
                let idx = self.eval(idx, focus, fr)?;
                match idx.as_slice() {
                    [] => Vec::new(),
                    [Item::Integer(i)] => match usize::try_from(*i) {
                        Ok(i) => input.into_iter().nth(i).into_iter().collect(),
                        Err(_) => Vec::new(),
                    },
                    _ => return Err(err("indexer expects a single integer")),
                }
            }
            Expr::Neg(inner) => operators::negate(self.eval(inner, focus, fr)?)?,
            Expr::Pos(inner) => self.eval(inner, focus, fr)?,
            Expr::Binary(op, l, r) => operators::binary(self, *op, l, r, focus, fr)?,
            Expr::Is(inner, ts) => {
                types::check_known(self, ts)?;
                let input = self.eval(inner, focus, fr)?;
                match input.as_slice() {
                    [] => Vec::new(),
                    [item] => vec![Item::Boolean(types::is_type(self, item, ts))],
                    _ => return Err(err("'is' expects a single item")),
                }
            }
            Expr::As(inner, ts) => {
                types::check_known(self, ts)?;
                // Lenient on purpose: R4 search parameters apply `as` to collections
                // (`(ActivityDefinition.useContext.value as CodeableConcept)`).
                let input = self.eval(inner, focus, fr)?;
                input
                    .into_iter()
                    .filter(|i| types::cast_matches(self, i, ts))
                    .collect()
            }
        })
    }

    /// `x.type().name` / `x.type().namespace`: `type()` yields a TypeInfo, which has no `Item`
    /// form, so its two members are answered here directly.
    fn type_info_member(
        &self,
        target: &Expr,
        member: &str,
        focus: &[Item<'a>],
        fr: &Frame<'a>,
    ) -> Result<Option<Coll<'a>>, EvalError> {
        let Expr::Call {
            target: inner,
            func,
            ..
        } = target
        else {
            return Ok(None);
        };
        if func.name != functions::FnName::Type || !matches!(member, "name" | "namespace") {
            return Ok(None);
        }
        let input = match inner {
            Some(t) => self.eval(t, focus, fr)?,
            None => focus.to_vec(),
        };
        Ok(Some(
            input
                .iter()
                .filter_map(|i| types::type_of(self, i))
                .map(|(ns, name)| {
                    Item::String(if member == "name" { name } else { ns }.to_string())
                })
                .collect(),
        ))
    }

    fn external(&self, name: &str) -> Result<Coll<'a>, EvalError> {
        let s = |v: &str| Ok(vec![Item::String(v.to_string())]);
        match name {
            "resource" | "rootResource" => Ok(vec![self.root.clone()]),
            "context" => Ok(vec![self.context.clone()]),
            "ucum" => s("http://unitsofmeasure.org"),
            "sct" => s("http://snomed.info/sct"),
            "loinc" => s("http://loinc.org"),
            _ => {
                if let Some(vs) = name.strip_prefix("vs-") {
                    return s(&format!("http://hl7.org/fhir/ValueSet/{vs}"));
                }
                if let Some(ext) = name.strip_prefix("ext-") {
                    return s(&format!("http://hl7.org/fhir/StructureDefinition/{ext}"));
                }
                if let Some((_, v)) = self.vars.iter().find(|(n, _)| *n == name) {
                    return Ok(v.clone());
                }
                Err(err(format!("unknown variable %{name}")))
            }
        }
    }

    /// A leading `Patient` on a Patient (or `Resource` on anything) selects the node itself.
    fn names_own_type(&self, n: &Node<'a>, name: &str) -> bool {
        if !name.starts_with(|c: char| c.is_ascii_uppercase()) {
            return false;
        }
        match n.type_name {
            Some(t) if t == name => true,
            // Fast path for multi-resource expressions (`Condition.code | Observation.code`):
            // a concrete resource type other than the node's own never matches.
            Some(_)
                if crate::model::is_resource_type(name)
                    && !matches!(name, "Resource" | "DomainResource") =>
            {
                false
            }
            Some(t) => crate::model::is_subtype(self.model, t, name),
            None => n.value.get("resourceType").and_then(Value::as_str) == Some(name),
        }
    }

    /// Appends the children named `name` of `item` to `out`.
    pub(crate) fn navigate(&self, item: &Item<'a>, name: &str, out: &mut Coll<'a>) {
        let node = match item {
            Item::Node(node) => node,
            // A computed quantity exposes its parts like a FHIR Quantity would.
            Item::Quantity { value, unit } => {
                match name {
                    "value" => out.push(Item::Decimal(value.clone())),
                    "unit" | "code" => out.push(Item::String(unit.clone())),
                    _ => {}
                }
                return;
            }
            _ => return,
        };
        let map = match node.value {
            Value::Object(m) => m,
            // A primitive's `id` and `extension` live in its `_element` sibling.
            _ => {
                if let Some(ext) = node.extension
                    && (name == "extension" || name == "id")
                    && let Some(v) = ext.get(name)
                {
                    let ty = if name == "id" {
                        Some("string")
                    } else {
                        self.type_name("Extension")
                    };
                    self.push_value(v, None, ty, out);
                }
                return;
            }
        };
        if let (Some(model), Some(parent)) = (self.model, node.type_name)
            && let Some(types) = model.element_types(parent, name)
        {
            if let Some(v) = map.get(name) {
                let ext = sibling(map, name);
                self.push_value(v, ext, types.first().copied(), out);
                return;
            }
            if types.len() == 1
                && let Some(e) = sibling(map, name)
            {
                self.push_value(&NULL, Some(e), types.first().copied(), out);
                return;
            }
            // A choice element: one scan of the keys (`valueQuantity`, `_valueString`) instead
            // of building a key per allowed type.
            for (key, v) in map {
                let (rest, underscored) = match key.strip_prefix('_') {
                    Some(k) => (k.strip_prefix(name), true),
                    None => (key.strip_prefix(name), false),
                };
                let Some(ty) =
                    rest.and_then(|r| types.iter().copied().find(|t| is_capitalized(t, r)))
                else {
                    continue;
                };
                if !underscored {
                    self.push_value(v, sibling(map, key), Some(ty), out);
                } else if !map.contains_key(&key[1..]) {
                    self.push_value(&NULL, Some(v), Some(ty), out);
                }
            }
            return;
        }
        // No model (or an element the model does not know): plain key, then choice suffixes.
        if let Some(v) = map.get(name) {
            let ext = sibling(map, name);
            let ty = if name == "extension" || name == "modifierExtension" {
                self.type_name("Extension")
            } else {
                None
            };
            self.push_value(v, ext, ty, out);
            return;
        }
        if let Some(e) = sibling(map, name) {
            self.push_value(&NULL, Some(e), None, out);
            return;
        }
        // A choice element, typed by the key's suffix (`valueQuantity`); `_valueString` alone is
        // a choice primitive with only an extension.
        for (key, v) in map {
            let (rest, underscored) = match key.strip_prefix('_') {
                Some(k) => (k.strip_prefix(name), true),
                None => (key.strip_prefix(name), false),
            };
            let Some(ty) = rest.and_then(choice_suffix_type) else {
                continue;
            };
            if !underscored {
                self.push_value(v, sibling(map, key), Some(ty), out);
            } else if !map.contains_key(&key[1..]) {
                self.push_value(&NULL, Some(v), Some(ty), out);
            }
        }
    }

    /// Pushes a JSON value (flattening arrays) as typed nodes; `ext` is the `_element` sibling.
    pub(crate) fn push_value(
        &self,
        v: &'a Value,
        ext: Option<&'a Value>,
        ty: Option<&'static str>,
        out: &mut Coll<'a>,
    ) {
        match v {
            Value::Array(items) => {
                let exts = ext.and_then(Value::as_array);
                for (i, el) in items.iter().enumerate() {
                    let e = exts.and_then(|a| a.get(i)).filter(|e| !e.is_null());
                    if el.is_null() && e.is_none() {
                        continue;
                    }
                    self.push_single(el, e, ty, out);
                }
                // `_given` longer than `given` (values omitted entirely) still carries extensions.
                if let Some(exts) = exts {
                    for e in exts.iter().skip(items.len()).filter(|e| !e.is_null()) {
                        self.push_single(&NULL, Some(e), ty, out);
                    }
                }
            }
            Value::Null => {
                if let Some(e) = ext {
                    match e {
                        Value::Array(es) => {
                            for e in es.iter().filter(|e| !e.is_null()) {
                                self.push_single(&NULL, Some(e), ty, out);
                            }
                        }
                        _ => self.push_single(&NULL, Some(e), ty, out),
                    }
                }
            }
            _ => self.push_single(v, ext.filter(|e| e.is_object()), ty, out),
        }
    }

    fn push_single(
        &self,
        v: &'a Value,
        ext: Option<&'a Value>,
        ty: Option<&'static str>,
        out: &mut Coll<'a>,
    ) {
        // Resources (contained, Bundle.entry.resource, Parameters.parameter.resource) carry their type.
        let ty = match v {
            Value::Object(_) => self.resource_type(v).or(ty),
            _ => ty,
        };
        out.push(Item::Node(Node {
            value: v,
            type_name: ty,
            extension: ext,
        }));
    }

    /// All child nodes of an item (`children()`), in document order.
    pub(crate) fn children(&self, item: &Item<'a>, out: &mut Coll<'a>) {
        let Item::Node(node) = item else { return };
        let Value::Object(map) = node.value else {
            if let Some(Value::Object(ext)) = node.extension {
                for key in ext.keys() {
                    self.navigate(item, key, out);
                }
            }
            return;
        };
        for key in map.keys() {
            if key == "resourceType" {
                continue;
            }
            if let Some(stripped) = key.strip_prefix('_') {
                // Only visit `_x` when `x` is absent; otherwise it was merged into `x`.
                if map.contains_key(stripped) {
                    continue;
                }
                self.navigate_key(node, map, stripped, out);
                continue;
            }
            self.navigate_key(node, map, key, out);
        }
    }

    /// Navigates an exact JSON key, typing it through the model when the key is a choice.
    fn navigate_key(
        &self,
        node: &Node<'a>,
        map: &'a serde_json::Map<String, Value>,
        key: &str,
        out: &mut Coll<'a>,
    ) {
        let ext = sibling(map, key);
        let v = map.get(key).unwrap_or(&NULL);
        let mut ty = None;
        if let (Some(model), Some(parent)) = (self.model, node.type_name) {
            if let Some(types) = model.element_types(parent, key) {
                ty = types.first().copied();
            } else {
                // `valueQuantity` → element `value` with type `Quantity`.
                for (i, _) in key.char_indices().skip(1) {
                    let (base, suffix) = key.split_at(i);
                    if suffix.starts_with(|c: char| c.is_ascii_uppercase())
                        && let Some(types) = model.element_types(parent, base)
                    {
                        ty = types.iter().copied().find(|t| is_capitalized(t, suffix));
                        if ty.is_some() {
                            break;
                        }
                    }
                }
            }
        }
        if ty.is_none() {
            ty = key.char_indices().skip(1).find_map(|(i, c)| {
                if c.is_ascii_uppercase() {
                    choice_suffix_type(&key[i..])
                } else {
                    None
                }
            });
        }
        self.push_value(v, ext, ty, out);
    }
}
