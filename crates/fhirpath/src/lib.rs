//! FHIRPath (normative N1 subset used by FHIR R4) over resource JSON.
//!
//! CONTRACT (used by medicus-fhir and medicus-store; keep these signatures):
//! - `Expression::parse(src)` compiles once; `Expression::evaluate(root, &env)` runs many times.
//! - Results are `Item`s: either a node borrowed from the input JSON, with its FHIR type when known,
//!   or a value computed by the expression.
//! - Type knowledge comes from an optional `Model` (implemented by medicus-fhir from the R4 definitions).
//!   Without a model the evaluator still resolves choice elements (`value` → `valueQuantity`) by key suffix.
//!
//! Behaviour worth knowing when writing expressions against this engine:
//! - Limits: expressions nested deeper than 128 syntax-tree levels (or 64 nested calls/parentheses)
//!   are rejected at parse time, so evaluation cannot overflow the stack. Unknown functions and
//!   wrong argument counts are parse errors too.
//! - Navigation: a leading type name selects the root when it is (a subtype of) the root's type
//!   (`Patient.name`, `Resource.id`); other type names yield empty, which keeps multi-resource
//!   search expressions (`Condition.code | Observation.code`) working. Unknown elements yield
//!   empty rather than a semantic error; [`Expression::check`] reports them statically against
//!   a model, for validating expressions when they are loaded.
//! - Types: `is` / `ofType` / `as` match FHIR types through the model (or the built-in R4 tables),
//!   FHIR primitives exactly in `as`/`ofType` (`code` is not cast to `string`). The `as` operator
//!   filters collections (R4 search parameters rely on it); the `.as()` function requires a
//!   single item, per the specification. An unknown type name is an evaluation error.
//! - `resolve()` never fetches: `#id` finds the contained resource, Bundle-local references find
//!   the entry, anything else becomes a placeholder node with `Value::Null` typed by the
//!   reference's type segment, so `subject.where(resolve() is Patient)` works.
//! - `memberOf()` yields empty (no terminology); `htmlChecks()` yields true.
//! - Arithmetic overflow, division by zero and undecidable date comparisons yield empty.
//! - Decimals are exact (128-bit fixed point); division keeps 8 decimal places; `sqrt`, `ln`,
//!   `log`, `exp` and fractional `power` go through `f64`.

use serde_json::Value;

mod ast;
mod check;
mod codec;
mod datetime;
mod decimal;
mod eval;
mod lexer;
mod model;
mod parser;
mod quantity;
#[cfg(test)]
mod tests;

pub use model::builtin_type_name;

/// FHIR type knowledge the evaluator needs for navigation and `is`/`as`/`ofType`.
pub trait Model: Sync {
    /// Types of child element `element` of a node of type `parent_type`.
    /// One entry for a plain element, several for a choice element `element[x]`
    /// (whose JSON keys are `element` + capitalised type name, e.g. `valueQuantity`).
    /// Inline backbone elements are typed by their path, e.g. `Patient.contact`.
    /// `None` when the element does not exist.
    fn element_types(&self, parent_type: &str, element: &str) -> Option<&'static [&'static str]>;
    /// True when `ty` is `base` or derives from it (e.g. `Age` from `Quantity`,
    /// `Patient` from `DomainResource` and `Resource`, `Patient.contact` from `BackboneElement`).
    fn is_subtype_of(&self, ty: &str, base: &str) -> bool;
    /// The canonical `&'static` name of a known type (resource, datatype or primitive).
    fn type_name(&self, name: &str) -> Option<&'static str>;
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[error("FHIRPath syntax error at {position}: {message}")]
pub struct ParseError {
    pub position: usize,
    pub message: String,
}

/// An expression that is well-formed but cannot match the model (see [`Expression::check`]).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[error("FHIRPath semantic error: {message}")]
pub struct SemanticError {
    pub message: String,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum EvalError {
    #[error("{0}")]
    Message(String),
}

/// Evaluation environment.
#[derive(Clone, Copy, Default)]
pub struct Env<'m> {
    pub model: Option<&'m dyn Model>,
}

/// A node of the input JSON.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node<'a> {
    /// The JSON value (object, string, number, bool). For a primitive that only has an extension
    /// (`"_birthDate": {...}` without `birthDate`) this is `Value::Null`.
    pub value: &'a Value,
    /// FHIR type of the node when known (`"Coding"`, `"dateTime"`, `"Patient"`, `"Patient.contact"`).
    pub type_name: Option<&'static str>,
    /// The `_element` sibling of a primitive (id and extensions), when present.
    pub extension: Option<&'a Value>,
}

/// One item of a FHIRPath collection.
#[derive(Debug, Clone, PartialEq)]
pub enum Item<'a> {
    Node(Node<'a>),
    Boolean(bool),
    Integer(i64),
    /// Decimal kept as its source text so precision survives.
    Decimal(String),
    String(String),
    /// `@2020-01` style partial date, kept as text without the `@`.
    Date(String),
    DateTime(String),
    Time(String),
    Quantity {
        value: String,
        unit: String,
    },
}

/// A compiled FHIRPath expression.
#[derive(Debug, Clone)]
pub struct Expression {
    source: String,
    ast: ast::Expr,
}

impl Expression {
    pub fn parse(src: &str) -> Result<Self, ParseError> {
        let ast = parser::parse(src)?;
        Ok(Expression {
            source: src.to_string(),
            ast,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn evaluate<'a>(&self, root: &'a Value, env: &Env<'_>) -> Result<Vec<Item<'a>>, EvalError> {
        let ctx = eval::Ctx::new(root, env.model);
        let frame = eval::Frame {
            this: Some(ctx.root.clone()),
            index: None,
            total: None,
        };
        let focus = [ctx.root.clone()];
        ctx.eval(&self.ast, &focus, &frame)
    }

    /// Evaluates with `focus` as the context item (`$this`, `%context`) inside `resource`
    /// (`%resource`, `%rootResource`), with extra `%name` variables. For invariants on inner
    /// elements, consent rules and view definitions; [`Expression::evaluate`] is the special case
    /// of focusing the resource itself with no variables. Built-in variables (`%resource`,
    /// `%ucum`, ...) take precedence over same-named entries in `variables`.
    pub fn evaluate_in<'a>(
        &self,
        resource: &'a Value,
        focus: Item<'a>,
        variables: &[(&str, Vec<Item<'a>>)],
        env: &Env<'_>,
    ) -> Result<Vec<Item<'a>>, EvalError> {
        let mut ctx = eval::Ctx::new(resource, env.model);
        ctx.context = focus.clone();
        ctx.vars = variables;
        let frame = eval::Frame {
            this: Some(focus.clone()),
            index: None,
            total: None,
        };
        ctx.eval(&self.ast, &[focus], &frame)
    }

    /// Statically checks the expression against `model` for a context of type `context_type`
    /// (e.g. a SearchParameter base): reports element names that no type on the path has
    /// (`name.given1`, `Observation.valueQuantity`), and leading type names that cannot match
    /// the context (`Encounter.name` on `Patient`). Evaluation itself never fails for these
    /// (they yield empty), so call this when loading expressions. Check multi-resource
    /// expressions (`Condition.code | Observation.code`) per base, on the narrowed expression.
    pub fn check(&self, context_type: &str, model: &dyn Model) -> Result<(), SemanticError> {
        check::check(&self.ast, context_type, model)
    }

    /// The expression printed back in canonical, fully parenthesised form. Parsing the result
    /// yields an equivalent expression (useful for logging and round-trip tests).
    pub fn to_canonical_string(&self) -> String {
        self.ast.to_string()
    }
}

impl std::fmt::Display for Expression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}
