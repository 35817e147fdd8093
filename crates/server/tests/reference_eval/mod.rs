//! A naive reference evaluator of FHIR R4 search, for differential tests of the server.
//!
//! It scans every resource of the searched type, evaluates the search parameter's FHIRPath
//! expression from the R4 definitions (`medicus_fhir::r4()`, `medicus_fhirpath`) and applies the
//! matching rules of https://hl7.org/fhir/R4/search.html written out here from the spec. It
//! shares nothing with the store's index or SQL, so a disagreement points at one of the two.
//!
//! Where the spec leaves a choice to the server, the evaluator follows the choice medicus
//! documents, and says so:
//! - dates without a time zone are UTC;
//! - `ge`/`le` on numbers and quantities are "`gt`/`lt` or equal", equality using the search
//!   value's precision range;
//! - a bare id in a reference search matches any target type, unless the parameter has one
//!   target type or a `:Type` modifier is given;
//! - for a `code` element (no system in the data, the system is implicit in its binding) a
//!   `system|code` search matches the code whatever the system (the generator avoids this).
//!
//! Supported: every parameter type except special; modifiers `:missing`, `:not`, `:exact`,
//! `:contains`, `:[type]`, `:below`/`:above` on uri; prefixes except `ap`; `_id`,
//! `_lastUpdated`; forward chains and `_has` (nested). Anything else is an `Err`, so a generator
//! that asks for more than this evaluator knows fails loudly instead of comparing nonsense.

#![allow(dead_code)]

pub mod dates;
pub mod decimal;

use std::collections::{BTreeSet, HashMap};

use dates::Range;
use decimal::Dec;
use medicus_fhir::{SearchParam, SearchParamType, r4};
use medicus_fhirpath::{Env, Item, Node};
use serde_json::Value;

/// The resources to search, by type and by `Type/id`.
pub struct Dataset {
    by_type: HashMap<String, Vec<Value>>,
    by_key: HashMap<String, Value>,
    /// This server's FHIR base (`http://test.local/fhir/default`): absolute references under it
    /// are local references.
    base: String,
}

fn env() -> Env<'static> {
    Env { model: Some(r4()) }
}

impl Dataset {
    pub fn new(resources: Vec<Value>, base: &str) -> Dataset {
        let mut by_type: HashMap<String, Vec<Value>> = HashMap::new();
        let mut by_key = HashMap::new();
        for r in resources {
            let ty = r["resourceType"].as_str().unwrap_or_default().to_owned();
            let id = r["id"].as_str().unwrap_or_default().to_owned();
            by_key.insert(format!("{ty}/{id}"), r.clone());
            by_type.entry(ty).or_default().push(r);
        }
        Dataset {
            by_type,
            by_key,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    pub fn resources(&self, ty: &str) -> &[Value] {
        self.by_type.get(ty).map_or(&[], Vec::as_slice)
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Ids of the resources of `ty` that match every parameter (AND), each an OR of its values.
    pub fn search(
        &self,
        ty: &str,
        params: &[(String, String)],
    ) -> Result<BTreeSet<String>, String> {
        let mut out = BTreeSet::new();
        for r in self.resources(ty) {
            let mut all = true;
            for (name, value) in params {
                if !self.matches(ty, r, name, value)? {
                    all = false;
                    break;
                }
            }
            if all {
                out.insert(r["id"].as_str().unwrap_or_default().to_owned());
            }
        }
        Ok(out)
    }

    /// Whether resource `r` of type `ty` matches one query parameter.
    pub fn matches(&self, ty: &str, r: &Value, name: &str, value: &str) -> Result<bool, String> {
        if value.is_empty() {
            return Ok(true);
        }
        if let Some(rest) = name.strip_prefix("_has:") {
            return self.has(ty, r, rest, value);
        }
        if let Some((head, tail)) = name.split_once('.') {
            return self.chain(ty, r, head, tail, value);
        }
        let (code, modifier) = match name.split_once(':') {
            Some((c, m)) => (c, Some(m)),
            None => (name, None),
        };
        match code {
            "_id" => {
                if modifier.is_some() {
                    return Err(format!("{name}: modifiers on _id"));
                }
                let id = r["id"].as_str().unwrap_or_default();
                return Ok(split_or(value).iter().any(|v| v == id));
            }
            "_lastUpdated" => {
                let t = r["meta"]["lastUpdated"]
                    .as_str()
                    .and_then(dates::parse)
                    .ok_or("resource without meta.lastUpdated")?;
                for v in split_or(value) {
                    if date_matches(&[t], &v)? {
                        return Ok(true);
                    }
                }
                return Ok(false);
            }
            _ => {}
        }
        let param = r4()
            .search_param(ty, code)
            .ok_or_else(|| format!("{ty} has no search parameter '{code}'"))?;
        let expr = param
            .expression
            .as_ref()
            .ok_or_else(|| format!("{ty}.{code} has no expression"))?;
        let items = expr
            .evaluate(r, &env())
            .map_err(|e| format!("{ty}.{code}: {e}"))?;
        if modifier == Some("missing") {
            let present = match param.kind {
                SearchParamType::Composite => !items.is_empty(),
                kind => has_values(kind, &items, &self.base),
            };
            return match value {
                "true" => Ok(!present),
                "false" => Ok(present),
                _ => Err(format!("{name}={value}")),
            };
        }
        if param.kind == SearchParamType::Reference
            && let Some(m) = modifier
            && r4().is_resource_type(m)
        {
            let refs = references(&items, &self.base);
            return Ok(split_or(value)
                .iter()
                .any(|v| reference_matches(&refs, v, Some(m), param, &self.base)));
        }
        let negate = modifier == Some("not");
        if negate && param.kind != SearchParamType::Token {
            return Err(format!("{name}: :not is a token modifier"));
        }
        let modifier = if negate { None } else { modifier };
        let mut any = false;
        for v in split_or(value) {
            if self.value_matches(param, &items, modifier, &v)? {
                any = true;
                break;
            }
        }
        Ok(any != negate)
    }

    fn value_matches(
        &self,
        param: &SearchParam,
        items: &[Item<'_>],
        modifier: Option<&str>,
        v: &str,
    ) -> Result<bool, String> {
        let bad = || Err(format!("{}: modifier {modifier:?}", param.code));
        match param.kind {
            SearchParamType::String => {
                let mode = match modifier {
                    None => StringMode::StartsWith,
                    Some("exact") => StringMode::Exact,
                    Some("contains") => StringMode::Contains,
                    _ => return bad(),
                };
                Ok(string_matches(&strings(items), v, mode))
            }
            SearchParamType::Token => {
                if modifier.is_some() {
                    return bad();
                }
                Ok(token_matches(&tokens(items), v))
            }
            SearchParamType::Date => {
                if modifier.is_some() {
                    return bad();
                }
                date_matches(&date_ranges(items), v)
            }
            SearchParamType::Number => {
                if modifier.is_some() {
                    return bad();
                }
                number_matches(&numbers(items), v)
            }
            SearchParamType::Quantity => {
                if modifier.is_some() {
                    return bad();
                }
                quantity_matches(&quantities(items), v)
            }
            SearchParamType::Reference => {
                if modifier.is_some() {
                    return bad();
                }
                Ok(reference_matches(
                    &references(items, &self.base),
                    v,
                    None,
                    param,
                    &self.base,
                ))
            }
            SearchParamType::Uri => {
                let uris = uris(items);
                Ok(match modifier {
                    None => uris.iter().any(|u| u == v),
                    Some("below") => uris.iter().any(|u| u.starts_with(v)),
                    Some("above") => uris.iter().any(|u| v.starts_with(u.as_str())),
                    _ => return bad(),
                })
            }
            SearchParamType::Composite => {
                if modifier.is_some() {
                    return bad();
                }
                composite_matches(param, items, v, &self.base)
            }
            SearchParamType::Special => Err(format!("special parameter {}", param.code)),
        }
    }

    /// `head.tail=value`: some local reference of `head` (`param` or `param:Type`) points to a
    /// resource in the dataset that matches `tail=value`.
    fn chain(
        &self,
        ty: &str,
        r: &Value,
        head: &str,
        tail: &str,
        value: &str,
    ) -> Result<bool, String> {
        let (code, target_type) = match head.split_once(':') {
            Some((c, t)) => (c, Some(t)),
            None => (head, None),
        };
        let param = r4()
            .search_param(ty, code)
            .filter(|p| p.kind == SearchParamType::Reference)
            .ok_or_else(|| format!("{ty}.{code} is not a reference parameter"))?;
        let items = param
            .expression
            .as_ref()
            .ok_or("no expression")?
            .evaluate(r, &env())
            .map_err(|e| e.to_string())?;
        let tail_code = tail.split(['.', ':']).next().unwrap_or_default();
        for reference in references(&items, &self.base) {
            let Some((t, id)) = local_parts(&reference, &self.base) else {
                continue;
            };
            if target_type.is_some_and(|want| want != t) {
                continue;
            }
            if !tail.starts_with("_has:")
                && r4().search_param(t, tail_code).is_none()
                && !tail_code.starts_with('_')
            {
                continue;
            }
            if let Some(target) = self.by_key.get(&format!("{t}/{id}"))
                && self.matches(t, target, tail, value)?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// `_has:Source:param:rest=value`: some `Source` resource matches `rest=value` and refers to
    /// `r` through `param`.
    fn has(&self, ty: &str, r: &Value, spec: &str, value: &str) -> Result<bool, String> {
        let mut parts = spec.splitn(3, ':');
        let (Some(source), Some(code), Some(rest)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("_has:{spec}"));
        };
        let param = r4()
            .search_param(source, code)
            .filter(|p| p.kind == SearchParamType::Reference)
            .ok_or_else(|| format!("{source}.{code} is not a reference parameter"))?;
        let expr = param.expression.as_ref().ok_or("no expression")?;
        let me = format!("{ty}/{}", r["id"].as_str().unwrap_or_default());
        for s in self.resources(source) {
            let items = expr.evaluate(s, &env()).map_err(|e| e.to_string())?;
            let refers = references(&items, &self.base)
                .iter()
                .filter_map(|x| local_parts(x, &self.base))
                .any(|(t, id)| format!("{t}/{id}") == me);
            if refers && self.matches(source, s, rest, value)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Splits a parameter value on unescaped commas, keeping the escapes (`\,` `\|` `\$` `\\`) for
/// the type-specific parsing that follows.
pub fn split_or(value: &str) -> Vec<String> {
    split_unescaped(value, ',')
}

fn split_unescaped(value: &str, sep: char) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        let last = out.last_mut().expect("never empty");
        if c == '\\' {
            last.push(c);
            if let Some(n) = chars.next() {
                last.push(n);
            }
        } else if c == sep {
            out.push(String::new());
        } else {
            last.push(c);
        }
    }
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `a|b|c` split at unescaped bars, each part unescaped.
fn bars(v: &str) -> Vec<String> {
    split_unescaped(v, '|')
        .iter()
        .map(|s| unescape(s))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Values of the items a parameter's expression yields, per parameter type.

fn node<'a>(item: &Item<'a>) -> Option<Node<'a>> {
    match item {
        Item::Node(n) => Some(*n),
        _ => None,
    }
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

fn type_of(n: &Node<'_>) -> &'static str {
    n.type_name.unwrap_or("")
}

fn is_quantity_type(t: &str) -> bool {
    matches!(
        t,
        "Quantity" | "Age" | "Count" | "Distance" | "Duration" | "SimpleQuantity" | "MoneyQuantity"
    )
}

fn has_values(kind: SearchParamType, items: &[Item<'_>], base: &str) -> bool {
    match kind {
        SearchParamType::String => !strings(items).is_empty(),
        SearchParamType::Token => !tokens(items).is_empty(),
        SearchParamType::Date => !date_ranges(items).is_empty(),
        SearchParamType::Number => !numbers(items).is_empty(),
        SearchParamType::Quantity => !quantities(items).is_empty(),
        SearchParamType::Reference => !references(items, base).is_empty(),
        SearchParamType::Uri => !uris(items).is_empty(),
        SearchParamType::Composite | SearchParamType::Special => !items.is_empty(),
    }
}

/// String search targets: the string itself, or the parts of a HumanName / Address (R4 search
/// §3.1.1.4.9).
fn strings(items: &[Item<'_>]) -> Vec<String> {
    let mut out = Vec::new();
    for item in items {
        let n = match item {
            Item::String(s) => {
                out.push(s.clone());
                continue;
            }
            Item::Node(n) => *n,
            _ => continue,
        };
        let parts: &[&str] = match type_of(&n) {
            "HumanName" => &["family", "given", "prefix", "suffix", "text"],
            "Address" => &[
                "line",
                "city",
                "district",
                "state",
                "postalCode",
                "country",
                "text",
            ],
            _ => {
                if let Some(s) = n.value.as_str() {
                    out.push(s.to_owned());
                }
                continue;
            }
        };
        for p in parts {
            match n.value.get(*p) {
                Some(Value::String(s)) => out.push(s.clone()),
                Some(Value::Array(a)) => {
                    out.extend(a.iter().filter_map(Value::as_str).map(str::to_owned))
                }
                _ => {}
            }
        }
    }
    out
}

/// A token search target: `system` is `Implicit` for a `code` element (its system comes from
/// the binding, not from the data).
#[derive(Debug, Clone, PartialEq)]
enum System {
    None,
    Implicit,
    Uri(String),
}

#[derive(Debug, Clone)]
struct Token {
    system: System,
    code: Option<String>,
}

fn push_token(out: &mut Vec<Token>, system: Option<&str>, code: Option<&str>) {
    let system = system.map_or(System::None, |s| System::Uri(s.to_owned()));
    let code = code.filter(|c| !c.is_empty()).map(str::to_owned);
    if code.is_some() || system != System::None {
        out.push(Token { system, code });
    }
}

/// Token search targets (R4 search §3.1.1.4.10: Coding, CodeableConcept, Identifier,
/// ContactPoint, code, boolean, string).
fn tokens(items: &[Item<'_>]) -> Vec<Token> {
    let mut out = Vec::new();
    for item in items {
        let n = match item {
            Item::Boolean(b) => {
                push_token(&mut out, None, Some(if *b { "true" } else { "false" }));
                continue;
            }
            Item::String(s) => {
                push_token(&mut out, None, Some(s));
                continue;
            }
            Item::Node(n) => *n,
            _ => continue,
        };
        let v = n.value;
        match type_of(&n) {
            "CodeableConcept" => {
                for c in v
                    .get("coding")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    push_token(&mut out, field(c, "system"), field(c, "code"));
                }
            }
            "Coding" => push_token(&mut out, field(v, "system"), field(v, "code")),
            "Identifier" | "ContactPoint" => {
                push_token(&mut out, field(v, "system"), field(v, "value"))
            }
            "code" => {
                if let Some(c) = v.as_str().filter(|c| !c.is_empty()) {
                    out.push(Token {
                        system: System::Implicit,
                        code: Some(c.to_owned()),
                    });
                }
            }
            "boolean" => {
                if let Some(b) = v.as_bool() {
                    push_token(&mut out, None, Some(if b { "true" } else { "false" }));
                }
            }
            _ => {
                if let Some(s) = v.as_str() {
                    push_token(&mut out, None, Some(s));
                }
            }
        }
    }
    out
}

/// `[system]|[code]`, `|[code]`, `[system]|`, `[code]`.
fn token_matches(targets: &[Token], v: &str) -> bool {
    let parts = bars(v);
    let (system, code): (Option<&str>, Option<&str>) = match parts.as_slice() {
        [code] => (None, Some(code)),
        [s, c] => (Some(s), (!c.is_empty()).then_some(c.as_str())),
        _ => return false,
    };
    targets.iter().any(|t| {
        let code_ok = match code {
            Some(c) => t.code.as_deref() == Some(c),
            None => true,
        };
        let system_ok = match (system, &t.system) {
            (None, _) => true,
            (Some(""), s) => *s == System::None,
            (Some(_), System::Implicit) => code.is_some(),
            (Some(want), System::Uri(have)) => want == have,
            (Some(_), System::None) => false,
        };
        code_ok && system_ok
    })
}

#[derive(Clone, Copy)]
enum StringMode {
    StartsWith,
    Exact,
    Contains,
}

/// Lower case, accents removed (the combining marks of the Latin letters the generator uses),
/// runs of white space as one space, trimmed.
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = true;
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_whitespace() {
            if !space {
                out.push(' ');
            }
            space = true;
            continue;
        }
        space = false;
        out.push(match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'ç' => 'c',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ñ' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ý' | 'ÿ' => 'y',
            c => c,
        });
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

fn string_matches(targets: &[String], v: &str, mode: StringMode) -> bool {
    let v = unescape(v);
    let nv = normalize(&v);
    targets.iter().any(|t| match mode {
        StringMode::StartsWith => normalize(t).starts_with(&nv),
        StringMode::Contains => normalize(t).contains(&nv),
        StringMode::Exact => *t == v,
    })
}

/// Date targets (R4 search §3.1.1.4.3): date/dateTime/instant by precision, Period from start to
/// end (an open end is unbounded), Timing from its first to its last event.
fn date_ranges(items: &[Item<'_>]) -> Vec<Range> {
    let mut out = Vec::new();
    for item in items {
        let n = match item {
            Item::Date(s) | Item::DateTime(s) | Item::String(s) => {
                out.extend(dates::parse(s));
                continue;
            }
            Item::Node(n) => *n,
            _ => continue,
        };
        let v = n.value;
        match type_of(&n) {
            "Period" => {
                let lo = field(v, "start")
                    .and_then(dates::parse)
                    .map_or(i64::MIN, |r| r.lo);
                let hi = field(v, "end")
                    .and_then(dates::parse)
                    .map_or(i64::MAX, |r| r.hi);
                if lo != i64::MIN || hi != i64::MAX {
                    out.push(Range { lo, hi });
                }
            }
            "Timing" => {
                let events: Vec<Range> = v
                    .get("event")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .filter_map(dates::parse)
                    .collect();
                if let (Some(lo), Some(hi)) = (
                    events.iter().map(|r| r.lo).min(),
                    events.iter().map(|r| r.hi).max(),
                ) {
                    out.push(Range { lo, hi });
                }
            }
            "date" | "dateTime" | "instant" => out.extend(v.as_str().and_then(dates::parse)),
            _ => {}
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

fn split_prefix(v: &str) -> (Prefix, &str) {
    let p = match v.get(..2) {
        Some("eq") => Prefix::Eq,
        Some("ne") => Prefix::Ne,
        Some("gt") => Prefix::Gt,
        Some("lt") => Prefix::Lt,
        Some("ge") => Prefix::Ge,
        Some("le") => Prefix::Le,
        Some("sa") => Prefix::Sa,
        Some("eb") => Prefix::Eb,
        Some("ap") => Prefix::Ap,
        _ => return (Prefix::Eq, v),
    };
    (p, &v[2..])
}

/// The prefix table of R4 search §3.1.1.4.1, "range" column, for target `t` and search `s`.
fn range_matches(p: Prefix, t: Range, s: Range) -> bool {
    let contained = t.lo >= s.lo && t.hi <= s.hi;
    match p {
        Prefix::Eq => contained,
        Prefix::Ne => !contained,
        Prefix::Gt => t.hi > s.hi,
        Prefix::Lt => t.lo < s.lo,
        Prefix::Ge => t.hi > s.hi || contained,
        Prefix::Le => t.lo < s.lo || contained,
        Prefix::Sa => t.lo > s.hi,
        Prefix::Eb => t.hi < s.lo,
        // The tolerance of `ap` is the server's choice; the evaluator does not guess it.
        Prefix::Ap => unreachable!("refused before"),
    }
}

fn date_matches(targets: &[Range], v: &str) -> Result<bool, String> {
    let (p, rest) = split_prefix(v);
    if p == Prefix::Ap {
        return Err("ap is not evaluated".into());
    }
    let s = dates::parse(rest).ok_or_else(|| format!("bad date {v}"))?;
    Ok(targets.iter().any(|t| range_matches(p, *t, s)))
}

fn number_text(item: &Item<'_>) -> Option<String> {
    match item {
        Item::Integer(i) => Some(i.to_string()),
        Item::Decimal(s) => Some(s.clone()),
        Item::Node(n) => n.value.as_number().map(|x| x.to_string()),
        _ => None,
    }
}

fn numbers(items: &[Item<'_>]) -> Vec<Dec> {
    items
        .iter()
        .filter_map(number_text)
        .filter_map(|s| Dec::parse(&s))
        .collect()
}

/// Numbers (R4 search §3.1.1.4.2): equality within the search value's precision, comparisons
/// against the value itself; `ge`/`le` are `gt`/`lt` or equal.
fn number_compare(p: Prefix, t: Dec, s: Dec) -> Result<bool, String> {
    let (lo, hi) = s.precision_range();
    let eq = t >= lo && t < hi;
    Ok(match p {
        Prefix::Eq => eq,
        Prefix::Ne => !eq,
        Prefix::Gt | Prefix::Sa => t > s,
        Prefix::Lt | Prefix::Eb => t < s,
        Prefix::Ge => t > s || eq,
        Prefix::Le => t < s || eq,
        Prefix::Ap => return Err("ap is not evaluated".into()),
    })
}

fn parse_number(v: &str) -> Result<(Prefix, Dec), String> {
    let (p, rest) = split_prefix(v);
    let d = Dec::parse(rest).ok_or_else(|| format!("bad number {v}"))?;
    Ok((p, d))
}

fn number_matches(targets: &[Dec], v: &str) -> Result<bool, String> {
    let (p, s) = parse_number(v)?;
    for t in targets {
        if number_compare(p, *t, s)? {
            return Ok(true);
        }
    }
    Ok(false)
}

#[derive(Debug, Clone)]
struct Quantity {
    value: Dec,
    system: Option<String>,
    code: Option<String>,
    unit: Option<String>,
}

fn quantities(items: &[Item<'_>]) -> Vec<Quantity> {
    let mut out = Vec::new();
    for item in items {
        let Some(n) = node(item) else { continue };
        if !is_quantity_type(type_of(&n)) {
            continue;
        }
        let v = n.value;
        let Some(value) = v
            .get("value")
            .and_then(Value::as_number)
            .and_then(|x| Dec::parse(&x.to_string()))
        else {
            continue;
        };
        out.push(Quantity {
            value,
            system: field(v, "system").map(str::to_owned),
            code: field(v, "code").map(str::to_owned),
            unit: field(v, "unit").map(str::to_owned),
        });
    }
    out
}

/// `[prefix]number[|system|code]` (R4 search §3.1.1.4.6); `number||code` matches the code or
/// the unit in any system. No unit conversion: the generator keeps units incomparable.
fn quantity_matches(targets: &[Quantity], v: &str) -> Result<bool, String> {
    let parts = bars(v);
    let (num, system, code) = match parts.as_slice() {
        [n] => (n.as_str(), None, None),
        [n, s, c] => (
            n.as_str(),
            (!s.is_empty()).then_some(s.as_str()),
            (!c.is_empty()).then_some(c.as_str()),
        ),
        _ => return Err(format!("bad quantity {v}")),
    };
    let (p, s) = parse_number(num)?;
    for t in targets {
        let unit_ok = match (system, code) {
            (None, None) => true,
            (Some(sys), Some(c)) => {
                t.system.as_deref() == Some(sys) && t.code.as_deref() == Some(c)
            }
            (None, Some(c)) => t.code.as_deref() == Some(c) || t.unit.as_deref() == Some(c),
            (Some(sys), None) => t.system.as_deref() == Some(sys),
        };
        if unit_ok && number_compare(p, t.value, s)? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn references(items: &[Item<'_>], _base: &str) -> Vec<String> {
    items
        .iter()
        .filter_map(|item| match item {
            Item::String(s) => Some(s.clone()),
            Item::Node(n) => match n.value {
                Value::String(s) => Some(s.clone()),
                Value::Object(_) => field(n.value, "reference").map(str::to_owned),
                _ => None,
            },
            _ => None,
        })
        .filter(|r| !r.is_empty() && !r.starts_with('#'))
        .collect()
}

/// `(type, id)` of a local reference: `Type/id`, `Type/id/_history/n`, or an absolute URL under
/// this server's base.
fn local_parts<'a>(reference: &'a str, base: &str) -> Option<(&'a str, &'a str)> {
    let local = match reference.strip_prefix(base) {
        Some(rest) => rest.strip_prefix('/')?,
        None if reference.contains("://") || reference.starts_with("urn:") => return None,
        None => reference,
    };
    let local = local.split("/_history/").next().unwrap_or(local);
    let (t, id) = local.split_once('/')?;
    (!t.is_empty() && !id.is_empty() && !id.contains('/')).then_some((t, id))
}

/// Reference search (R4 search §3.1.1.4.8): `Type/id`, a bare id (any type, unless the parameter
/// has a single target type or the `:Type` modifier narrows it), or an absolute URL (this
/// server's base means the local resource; any other URL matches only itself).
fn reference_matches(
    targets: &[String],
    v: &str,
    modifier_type: Option<&str>,
    param: &SearchParam,
    base: &str,
) -> bool {
    let v = unescape(v);
    let search_local = local_parts(&v, base);
    let implied_type = modifier_type.or(match param.targets {
        [only] => Some(*only),
        _ => None,
    });
    targets.iter().any(|t| {
        let local = local_parts(t, base);
        match (search_local, local) {
            (Some((st, sid)), Some((tt, tid))) => st == tt && sid == tid,
            (Some(_), None) => false,
            (None, _) if v.contains('/') => *t == v,
            (None, Some((tt, tid))) => tid == v && implied_type.is_none_or(|want| want == tt),
            (None, None) => false,
        }
    })
}

fn uris(items: &[Item<'_>]) -> Vec<String> {
    items
        .iter()
        .filter_map(|item| match item {
            Item::String(s) => Some(s.clone()),
            Item::Node(n) => n.value.as_str().map(str::to_owned),
            _ => None,
        })
        .collect()
}

/// Composite (R4 search §3.1.1.4.11): `a$b`, every component matching by its own type's rules
/// within the same node of the composite's expression.
fn composite_matches(
    param: &SearchParam,
    items: &[Item<'_>],
    v: &str,
    base: &str,
) -> Result<bool, String> {
    let parts = split_unescaped(v, '$');
    if parts.len() != param.components.len() {
        return Err(format!(
            "{}: {} components expected",
            param.code,
            param.components.len()
        ));
    }
    for item in items {
        let Some(n) = node(item) else { continue };
        let mut all = true;
        for (component, part) in param.components.iter().zip(&parts) {
            let values = component
                .expression
                .evaluate(n.value, &env())
                .map_err(|e| e.to_string())?;
            let ok = match component.kind {
                SearchParamType::Token => token_matches(&tokens(&values), part),
                SearchParamType::String => {
                    string_matches(&strings(&values), part, StringMode::StartsWith)
                }
                SearchParamType::Date => date_matches(&date_ranges(&values), part)?,
                SearchParamType::Number => number_matches(&numbers(&values), part)?,
                SearchParamType::Quantity => quantity_matches(&quantities(&values), part)?,
                SearchParamType::Reference => {
                    reference_matches(&references(&values, base), part, None, param, base)
                }
                SearchParamType::Uri => uris(&values).iter().any(|u| *u == unescape(part)),
                SearchParamType::Composite | SearchParamType::Special => {
                    return Err("nested composite".into());
                }
            };
            if !ok {
                all = false;
                break;
            }
        }
        if all {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ds() -> Dataset {
        Dataset::new(
            vec![
                json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Müller", "given": ["Anna"]}],
                       "birthDate": "1980-06", "gender": "female",
                       "meta": {"lastUpdated": "2024-01-01T00:00:00.123Z"}}),
                json!({"resourceType": "Observation", "id": "o1", "status": "final",
                       "code": {"coding": [{"system": "http://loinc.org", "code": "1-8"}]},
                       "subject": {"reference": "Patient/p1"},
                       "valueQuantity": {"value": 5.4, "system": "http://unitsofmeasure.org", "code": "mg"}}),
            ],
            "http://test.local/fhir/default",
        )
    }

    fn q(ds: &Dataset, ty: &str, query: &[(&str, &str)]) -> Vec<String> {
        let params: Vec<(String, String)> = query
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        ds.search(ty, &params).unwrap().into_iter().collect()
    }

    #[test]
    fn evaluates_the_spec_rules() {
        let d = ds();
        assert_eq!(q(&d, "Patient", &[("family", "mul")]), ["p1"]);
        assert!(q(&d, "Patient", &[("family:exact", "Muller")]).is_empty());
        assert_eq!(q(&d, "Patient", &[("birthdate", "1980")]), ["p1"]);
        assert!(q(&d, "Patient", &[("birthdate", "1980-06-01")]).is_empty());
        assert_eq!(q(&d, "Patient", &[("birthdate", "ge1980-06-01")]), ["p1"]);
        assert_eq!(q(&d, "Patient", &[("gender:not", "male")]), ["p1"]);
        assert_eq!(
            q(&d, "Observation", &[("code", "http://loinc.org|1-8")]),
            ["o1"]
        );
        assert!(q(&d, "Observation", &[("code", "|1-8")]).is_empty());
        assert_eq!(
            q(&d, "Observation", &[("value-quantity", "5.4||mg")]),
            ["o1"]
        );
        assert_eq!(q(&d, "Observation", &[("value-quantity", "gt5")]), ["o1"]);
        assert_eq!(q(&d, "Observation", &[("subject", "p1")]), ["o1"]);
        assert_eq!(
            q(&d, "Observation", &[("subject:Patient.birthdate", "1980")]),
            ["o1"]
        );
        assert_eq!(
            q(&d, "Patient", &[("_has:Observation:subject:code", "1-8")]),
            ["p1"]
        );
        assert_eq!(q(&d, "Patient", &[("_lastUpdated", "2024-01-01")]), ["p1"]);
        assert!(
            q(
                &d,
                "Patient",
                &[("_lastUpdated", "gt2024-01-01T00:00:00.123Z")]
            )
            .is_empty()
        );
    }
}
