//! Syntax tree of a compiled expression, and a printer whose output parses back to the same tree.

use std::fmt;
use std::sync::Arc;

use crate::eval::functions::FnName;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Bool(bool),
    Str(String),
    Int(i64),
    /// Decimal source text (precision is significant).
    Dec(String),
    Date(String),
    DateTime(String),
    Time(String),
    Quantity {
        value: String,
        unit: String,
    },
}

/// A type specifier such as `Quantity`, `FHIR.Quantity` or `System.String`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TypeSpec {
    pub namespace: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Mul,
    Div,
    IntDiv,
    Mod,
    Add,
    Sub,
    Concat,
    Union,
    Lt,
    Gt,
    Le,
    Ge,
    Eq,
    Equiv,
    Ne,
    NotEquiv,
    In,
    Contains,
    And,
    Or,
    Xor,
    Implies,
}

impl BinOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::IntDiv => "div",
            BinOp::Mod => "mod",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Concat => "&",
            BinOp::Union => "|",
            BinOp::Lt => "<",
            BinOp::Gt => ">",
            BinOp::Le => "<=",
            BinOp::Ge => ">=",
            BinOp::Eq => "=",
            BinOp::Equiv => "~",
            BinOp::Ne => "!=",
            BinOp::NotEquiv => "!~",
            BinOp::In => "in",
            BinOp::Contains => "contains",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Xor => "xor",
            BinOp::Implies => "implies",
        }
    }
}

/// A resolved function call: the function, its compile-time type argument (`ofType(X)`) and,
/// for `matches`/`replaceMatches` with a literal pattern, the regex compiled once.
#[derive(Debug, Clone)]
pub(crate) struct Func {
    pub name: FnName,
    pub type_arg: Option<TypeSpec>,
    pub regex: Option<Arc<regex::Regex>>,
}

impl PartialEq for Func {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.type_arg == o.type_arg
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// `{}`
    Empty,
    Lit(Literal),
    This,
    Index,
    Total,
    /// `%name`
    External(String),
    /// A leading identifier, evaluated against the focus (may name the root's type).
    Ident(String),
    Member(Box<Expr>, String),
    Call {
        target: Option<Box<Expr>>,
        func: Func,
        args: Vec<Expr>,
    },
    Indexer(Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    Pos(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Is(Box<Expr>, TypeSpec),
    As(Box<Expr>, TypeSpec),
}

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str, quote: char) -> fmt::Result {
    write!(f, "{quote}")?;
    for c in s.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\u{c}' => f.write_str("\\f")?,
            c if c == quote => write!(f, "\\{c}")?,
            c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    write!(f, "{quote}")
}

impl fmt::Display for TypeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ns) = &self.namespace {
            write_quoted(f, ns, '`')?;
            f.write_str(".")?;
        }
        write_quoted(f, &self.name, '`')
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Str(s) => write_quoted(f, s, '\''),
            Literal::Int(i) => write!(f, "{i}"),
            Literal::Dec(d) => f.write_str(d),
            Literal::Date(d) => write!(f, "@{d}"),
            Literal::DateTime(d) => {
                // `@2015T` style literals need the trailing T to stay dateTimes.
                if d.contains('T') {
                    write!(f, "@{d}")
                } else {
                    write!(f, "@{d}T")
                }
            }
            Literal::Time(t) => write!(f, "@T{t}"),
            Literal::Quantity { value, unit } => {
                write!(f, "{value} ")?;
                if crate::parser::is_calendar_keyword(unit) {
                    f.write_str(unit)
                } else {
                    write_quoted(f, unit, '\'')
                }
            }
        }
    }
}

impl fmt::Display for Expr {
    /// Fully parenthesised output: unambiguous, and `parse(print(e)) == e`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Empty => f.write_str("{}"),
            Expr::Lit(l) => match l {
                // Negative numbers print as a unary minus applied to a literal.
                Literal::Int(i) if *i < 0 => write!(f, "({l})"),
                _ => write!(f, "{l}"),
            },
            Expr::This => f.write_str("$this"),
            Expr::Index => f.write_str("$index"),
            Expr::Total => f.write_str("$total"),
            Expr::External(n) => {
                f.write_str("%")?;
                write_quoted(f, n, '`')
            }
            Expr::Ident(n) => write_quoted(f, n, '`'),
            Expr::Member(t, n) => {
                write!(f, "({t}).")?;
                write_quoted(f, n, '`')
            }
            Expr::Call { target, func, args } => {
                if let Some(t) = target {
                    write!(f, "({t}).")?;
                }
                write_quoted(f, func.name.as_str(), '`')?;
                f.write_str("(")?;
                if let Some(ts) = &func.type_arg {
                    write!(f, "{ts}")?;
                }
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
            Expr::Indexer(t, i) => write!(f, "({t})[{i}]"),
            Expr::Neg(e) => write!(f, "-({e})"),
            Expr::Pos(e) => write!(f, "+({e})"),
            Expr::Binary(op, l, r) => write!(f, "(({l}) {} ({r}))", op.symbol()),
            Expr::Is(e, t) => write!(f, "(({e}) is {t})"),
            Expr::As(e, t) => write!(f, "(({e}) as {t})"),
        }
    }
}
