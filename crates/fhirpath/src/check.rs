//! Optional static check of an expression against a [`Model`]: finds paths that can never
//! match, such as misspelt elements (`name.given1`), choice variants used as elements
//! (`Observation.valueQuantity`) or casts to a type lacking the element
//! (`(Observation.value as Period).unit`). Evaluation stays lenient (such paths yield empty);
//! this is for validating expressions when they are loaded.
//!
//! Only what is statically certain is reported: as soon as the type of a sub-expression is not
//! known (function results, `resolve()`, abstract types such as `Resource`, primitives) checking
//! of that branch stops.

use crate::ast::{BinOp, Expr, TypeSpec};
use crate::eval::functions::FnName;
use crate::{Model, SemanticError};

/// Possible FHIR types of a collection; `None` when not statically known.
type Types = Option<Vec<&'static str>>;

/// Abstract bases: their instances may carry the elements of any subtype.
const OPEN_TYPES: &[&str] = &["Resource", "DomainResource", "Element", "BackboneElement"];
/// Bases whose elements (`id`, `extension`, `meta`, ...) every subtype inherits.
const INHERITED_FROM: &[&str] = &["BackboneElement", "Element", "DomainResource", "Resource"];

pub(crate) fn check(e: &Expr, context_type: &str, model: &dyn Model) -> Result<(), SemanticError> {
    let Some(root) = model.type_name(context_type) else {
        return Ok(());
    };
    Checker { model }
        .expr(e, &Some(vec![root]), true)
        .map(|_| ())
}

fn fail(message: String) -> SemanticError {
    SemanticError { message }
}

fn merge(a: Types, b: Types) -> Types {
    let (mut a, b) = (a?, b?);
    for t in b {
        if !a.contains(&t) {
            a.push(t);
        }
    }
    Some(a)
}

struct Checker<'m> {
    model: &'m dyn Model,
}

impl Checker<'_> {
    /// Checks `e` evaluated on a focus of type `focus`; `at_root` while the focus is the
    /// expression's context (where a leading type name must name it).
    fn expr(&self, e: &Expr, focus: &Types, at_root: bool) -> Result<Types, SemanticError> {
        Ok(match e {
            Expr::This => focus.clone(),
            Expr::Ident(name) => self.step(focus, name, at_root)?,
            Expr::Member(target, name) => {
                let t = self.expr(target, focus, at_root)?;
                self.step(&t, name, false)?
            }
            Expr::Call { target, func, args } => {
                let input = match target {
                    Some(t) => self.expr(t, focus, at_root)?,
                    None => focus.clone(),
                };
                let lambda = matches!(
                    func.name,
                    FnName::Where
                        | FnName::Select
                        | FnName::Repeat
                        | FnName::All
                        | FnName::Exists
                        | FnName::Aggregate
                        | FnName::Sort
                        | FnName::Trace
                );
                let mut arg_types = Vec::with_capacity(args.len());
                for a in args {
                    arg_types.push(if lambda {
                        self.expr(a, &input, false)?
                    } else {
                        self.expr(a, focus, at_root)?
                    });
                }
                let first_arg = arg_types.into_iter().next().flatten();
                match func.name {
                    FnName::Where
                    | FnName::First
                    | FnName::Last
                    | FnName::Tail
                    | FnName::Skip
                    | FnName::Take
                    | FnName::Single
                    | FnName::Distinct
                    | FnName::Intersect
                    | FnName::Exclude
                    | FnName::Trace
                    | FnName::Sort => input,
                    FnName::Select => first_arg,
                    FnName::OfType | FnName::As => {
                        func.type_arg.as_ref().and_then(|ts| self.type_of_spec(ts))
                    }
                    FnName::Extension => self.model.type_name("Extension").map(|t| vec![t]),
                    FnName::Union | FnName::Combine => merge(input, first_arg),
                    _ => None,
                }
            }
            Expr::Indexer(target, index) => {
                self.expr(index, focus, at_root)?;
                self.expr(target, focus, at_root)?
            }
            Expr::Neg(inner) | Expr::Pos(inner) | Expr::Is(inner, _) => {
                self.expr(inner, focus, at_root)?;
                None
            }
            Expr::As(inner, ts) => {
                self.expr(inner, focus, at_root)?;
                self.type_of_spec(ts)
            }
            Expr::Binary(op, l, r) => {
                let a = self.expr(l, focus, at_root)?;
                let b = self.expr(r, focus, at_root)?;
                if *op == BinOp::Union {
                    merge(a, b)
                } else {
                    None
                }
            }
            Expr::Empty | Expr::Lit(_) | Expr::Index | Expr::Total | Expr::External(_) => None,
        })
    }

    fn type_of_spec(&self, ts: &TypeSpec) -> Types {
        if ts.namespace.as_deref() == Some("System") {
            return None;
        }
        self.model.type_name(&ts.name).map(|t| vec![t])
    }

    /// Navigation of `name` from a focus of the given types.
    fn step(&self, focus: &Types, name: &str, at_root: bool) -> Result<Types, SemanticError> {
        let Some(types) = focus else {
            return Ok(None);
        };
        if types
            .iter()
            .any(|t| OPEN_TYPES.contains(t) || crate::model::is_primitive(t))
        {
            return Ok(None);
        }
        if name.starts_with(|c: char| c.is_ascii_uppercase()) {
            let matching: Vec<&'static str> = types
                .iter()
                .copied()
                .filter(|t| self.model.is_subtype_of(t, name) || *t == name)
                .collect();
            if !matching.is_empty() {
                return Ok(Some(matching));
            }
            if at_root && self.model.type_name(name).is_some() {
                return Err(fail(format!(
                    "'{name}' cannot match the context type {}",
                    types.join(" | ")
                )));
            }
        }
        let mut out: Vec<&'static str> = Vec::new();
        for t in types {
            let found = self.model.element_types(t, name).or_else(|| {
                INHERITED_FROM
                    .iter()
                    .filter(|base| self.model.is_subtype_of(t, base))
                    .find_map(|base| self.model.element_types(base, name))
            });
            match found {
                Some(ts) => {
                    for ty in ts {
                        if !out.contains(ty) {
                            out.push(ty);
                        }
                    }
                }
                // A type the model does not know: nothing can be said.
                None if self.model.type_name(t).is_none() && !t.contains('.') => return Ok(None),
                None => {}
            }
        }
        if out.is_empty() {
            return Err(fail(format!(
                "no element '{name}' on {}",
                types.join(" | ")
            )));
        }
        Ok(Some(out))
    }
}
