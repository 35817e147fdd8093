//! Pratt parser: tokens to [`Expr`], resolving function names and compiling literal regexes.
//!
//! Precedence, loosest first: `implies`; `or xor`; `and`; `in contains`; `= ~ != !~`;
//! `< > <= >=`; `|`; `is as`; `+ - &`; `* / div mod`; unary `+ -`; `.` and `[]`.

use std::sync::Arc;

use crate::ParseError;
use crate::ast::{BinOp, Expr, Func, Literal, TypeSpec};
use crate::datetime::Temporal;
use crate::eval::functions::FnName;
use crate::lexer::{Tok, Token, tokenize};

/// Deepest syntax tree accepted. Evaluation recurses along the tree, so this bounds stack use.
pub(crate) const MAX_DEPTH: usize = 128;

const CALENDAR_KEYWORDS: &[&str] = &[
    "year",
    "years",
    "month",
    "months",
    "week",
    "weeks",
    "day",
    "days",
    "hour",
    "hours",
    "minute",
    "minutes",
    "second",
    "seconds",
    "millisecond",
    "milliseconds",
];

pub(crate) fn is_calendar_keyword(s: &str) -> bool {
    CALENDAR_KEYWORDS.contains(&s)
}

pub(crate) fn parse(src: &str) -> Result<Expr, ParseError> {
    let toks = tokenize(src)?;
    let mut p = Parser { toks, pos: 0 };
    let (e, _) = p.expr(0, 0)?;
    let t = p.peek();
    if t.tok != Tok::Eof {
        return Err(p.err_at(t.pos, "unexpected input after expression"));
    }
    Ok(e)
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
}

/// A sub-tree with its depth (the parser tracks depth itself because left-associative chains
/// such as `a + b + c + ...` grow the tree without recursing in the parser).
type Sub = (Expr, usize);

fn infix_op(tok: &Tok) -> Option<(BinOp, u8)> {
    let op = match tok {
        Tok::Sym(s) => match *s {
            "*" => BinOp::Mul,
            "/" => BinOp::Div,
            "+" => BinOp::Add,
            "-" => BinOp::Sub,
            "&" => BinOp::Concat,
            "|" => BinOp::Union,
            "<" => BinOp::Lt,
            ">" => BinOp::Gt,
            "<=" => BinOp::Le,
            ">=" => BinOp::Ge,
            "=" => BinOp::Eq,
            "~" => BinOp::Equiv,
            "!=" => BinOp::Ne,
            "!~" => BinOp::NotEquiv,
            _ => return None,
        },
        Tok::Ident {
            name,
            quoted: false,
        } => match name.as_str() {
            "div" => BinOp::IntDiv,
            "mod" => BinOp::Mod,
            "in" => BinOp::In,
            "contains" => BinOp::Contains,
            "and" => BinOp::And,
            "or" => BinOp::Or,
            "xor" => BinOp::Xor,
            "implies" => BinOp::Implies,
            _ => return None,
        },
        _ => return None,
    };
    let bp = match op {
        BinOp::Implies => 1,
        BinOp::Or | BinOp::Xor => 2,
        BinOp::And => 3,
        BinOp::In | BinOp::Contains => 4,
        BinOp::Eq | BinOp::Equiv | BinOp::Ne | BinOp::NotEquiv => 5,
        BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge => 6,
        BinOp::Union => 7,
        BinOp::Add | BinOp::Sub | BinOp::Concat => 9,
        BinOp::Mul | BinOp::Div | BinOp::IntDiv | BinOp::Mod => 10,
    };
    Some((op, bp))
}

/// Binding power of `is`/`as` (between `|` and additive operators).
const TYPE_OP_BP: u8 = 8;
const UNARY_BP: u8 = 11;

impl Parser {
    fn peek(&self) -> &Token {
        // The token list always ends with Eof and `pos` never passes it.
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)].tok
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn err_at(&self, position: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            position,
            message: message.into(),
        }
    }

    fn expect_sym(&mut self, sym: &'static str) -> Result<(), ParseError> {
        let t = self.bump();
        if t.tok == Tok::Sym(sym) {
            Ok(())
        } else {
            Err(self.err_at(t.pos, format!("expected '{sym}'")))
        }
    }

    fn check_depth(&self, depth: usize) -> Result<(), ParseError> {
        if depth > MAX_DEPTH {
            Err(self.err_at(self.peek().pos, "expression nested too deeply"))
        } else {
            Ok(())
        }
    }

    /// Parses operators binding tighter than `min_bp`. `nesting` counts parser recursion.
    fn expr(&mut self, min_bp: u8, nesting: usize) -> Result<Sub, ParseError> {
        self.check_depth(nesting)?;
        let mut lhs = match self.peek().tok {
            Tok::Sym("-") | Tok::Sym("+") => {
                let neg = self.bump().tok == Tok::Sym("-");
                let (e, d) = self.expr(UNARY_BP, nesting + 1)?;
                let e = Box::new(e);
                (if neg { Expr::Neg(e) } else { Expr::Pos(e) }, d + 1)
            }
            _ => self.term(nesting + 1)?,
        };
        loop {
            let tok = self.peek().tok.clone();
            if let Tok::Ident {
                name,
                quoted: false,
            } = &tok
                && (name == "is" || name == "as")
            {
                if TYPE_OP_BP <= min_bp {
                    break;
                }
                self.bump();
                let ts = self.type_spec()?;
                let inner = Box::new(lhs.0);
                lhs = (
                    if name == "is" {
                        Expr::Is(inner, ts)
                    } else {
                        Expr::As(inner, ts)
                    },
                    lhs.1 + 1,
                );
                self.check_depth(lhs.1)?;
                continue;
            }
            let Some((op, bp)) = infix_op(&tok) else {
                break;
            };
            if bp <= min_bp {
                break;
            }
            self.bump();
            let rhs = self.expr(bp, nesting + 1)?;
            let depth = lhs.1.max(rhs.1) + 1;
            self.check_depth(depth)?;
            lhs = (Expr::Binary(op, Box::new(lhs.0), Box::new(rhs.0)), depth);
        }
        Ok(lhs)
    }

    fn type_spec(&mut self) -> Result<TypeSpec, ParseError> {
        let t = self.bump();
        let Tok::Ident { name, .. } = t.tok else {
            return Err(self.err_at(t.pos, "expected a type name"));
        };
        if self.peek().tok == Tok::Sym(".")
            && let Tok::Ident { name: inner, .. } = self.peek_at(1).clone()
        {
            self.bump();
            self.bump();
            return Ok(TypeSpec {
                namespace: Some(name),
                name: inner,
            });
        }
        Ok(TypeSpec {
            namespace: None,
            name,
        })
    }

    /// A primary expression followed by any `.member`, `.call()` and `[index]` suffixes.
    fn term(&mut self, nesting: usize) -> Result<Sub, ParseError> {
        let (mut e, mut depth) = self.primary(nesting)?;
        loop {
            match self.peek().tok {
                Tok::Sym(".") => {
                    self.bump();
                    let t = self.bump();
                    let Tok::Ident { name, .. } = t.tok else {
                        return Err(self.err_at(t.pos, "expected a name after '.'"));
                    };
                    if self.peek().tok == Tok::Sym("(") {
                        let (call, d) = self.call(Some((e, depth)), &name, t.pos, nesting)?;
                        e = call;
                        depth = d;
                    } else {
                        e = Expr::Member(Box::new(e), name);
                        depth += 1;
                    }
                }
                Tok::Sym("[") => {
                    self.bump();
                    let (idx, d) = self.expr(0, nesting + 1)?;
                    self.expect_sym("]")?;
                    depth = depth.max(d) + 1;
                    e = Expr::Indexer(Box::new(e), Box::new(idx));
                }
                _ => break,
            }
            self.check_depth(depth)?;
        }
        Ok((e, depth))
    }

    fn primary(&mut self, nesting: usize) -> Result<Sub, ParseError> {
        let t = self.bump();
        let e =
            match t.tok {
                Tok::Number(text) => {
                    let unit = match self.peek().tok.clone() {
                        Tok::Str(u) => Some(u),
                        Tok::Ident {
                            name,
                            quoted: false,
                        } if is_calendar_keyword(&name) => Some(name),
                        _ => None,
                    };
                    if let Some(unit) = unit {
                        self.bump();
                        Expr::Lit(Literal::Quantity { value: text, unit })
                    } else if text.contains('.') {
                        Expr::Lit(Literal::Dec(text))
                    } else {
                        match text.parse::<i64>() {
                            Ok(i) => Expr::Lit(Literal::Int(i)),
                            Err(_) => Expr::Lit(Literal::Dec(text)),
                        }
                    }
                }
                Tok::Str(s) => Expr::Lit(Literal::Str(s)),
                Tok::DateTime(text) => Expr::Lit(date_literal(&text).ok_or_else(|| {
                    self.err_at(t.pos, format!("invalid date/time literal @{text}"))
                })?),
                Tok::External(name) => Expr::External(name),
                Tok::Special(name) => match name.as_str() {
                    "this" => Expr::This,
                    "index" => Expr::Index,
                    _ => Expr::Total,
                },
                Tok::Sym("(") => {
                    let (e, d) = self.expr(0, nesting + 1)?;
                    self.expect_sym(")")?;
                    return Ok((e, d));
                }
                Tok::Sym("{") => {
                    self.expect_sym("}")?;
                    Expr::Empty
                }
                Tok::Ident { name, quoted } => {
                    if self.peek().tok == Tok::Sym("(") {
                        return self.call(None, &name, t.pos, nesting);
                    }
                    match (name.as_str(), quoted) {
                        ("true", false) => Expr::Lit(Literal::Bool(true)),
                        ("false", false) => Expr::Lit(Literal::Bool(false)),
                        _ => Expr::Ident(name),
                    }
                }
                Tok::Eof => return Err(self.err_at(t.pos, "unexpected end of expression")),
                other => return Err(self.err_at(t.pos, format!("unexpected token {other:?}"))),
            };
        Ok((e, 1))
    }

    fn call(
        &mut self,
        target: Option<Sub>,
        name: &str,
        pos: usize,
        nesting: usize,
    ) -> Result<Sub, ParseError> {
        self.expect_sym("(")?;
        let mut args = Vec::new();
        let mut depth = target.as_ref().map_or(0, |t| t.1);
        if self.peek().tok != Tok::Sym(")") {
            loop {
                let (a, d) = self.expr(0, nesting + 1)?;
                depth = depth.max(d);
                args.push(a);
                if self.peek().tok == Tok::Sym(",") {
                    self.bump();
                } else {
                    break;
                }
            }
        }
        self.expect_sym(")")?;
        let fname = FnName::from_name(name)
            .ok_or_else(|| self.err_at(pos, format!("unknown function '{name}'")))?;
        let (min, max) = fname.arity();
        if args.len() < min || args.len() > max {
            return Err(self.err_at(pos, format!("wrong number of arguments to '{name}'")));
        }
        let mut func = Func {
            name: fname,
            type_arg: None,
            regex: None,
        };
        if fname.takes_type()
            && let Some(arg) = args.pop()
        {
            func.type_arg =
                Some(type_spec_of(&arg).ok_or_else(|| self.err_at(pos, "expected a type name"))?);
        }
        // Literal patterns compile once here (with flags only at run time).
        if (fname == FnName::ReplaceMatches || args.len() == 1)
            && matches!(
                fname,
                FnName::Matches | FnName::ReplaceMatches | FnName::MatchesFull
            )
            && let Some(Expr::Lit(Literal::Str(pattern))) = args.first()
        {
            let re = compile_regex(pattern, fname == FnName::MatchesFull, "")
                .map_err(|m| self.err_at(pos, m))?;
            func.regex = Some(Arc::new(re));
        }
        let depth = depth + 1;
        self.check_depth(depth)?;
        Ok((
            Expr::Call {
                target: target.map(|t| Box::new(t.0)),
                func,
                args,
            },
            depth,
        ))
    }
}

/// `Quantity` or `FHIR.Quantity` written as a function argument.
fn type_spec_of(e: &Expr) -> Option<TypeSpec> {
    match e {
        Expr::Ident(n) => Some(TypeSpec {
            namespace: None,
            name: n.clone(),
        }),
        Expr::Member(inner, n) => match inner.as_ref() {
            Expr::Ident(ns) => Some(TypeSpec {
                namespace: Some(ns.clone()),
                name: n.clone(),
            }),
            _ => None,
        },
        _ => None,
    }
}

/// Compiles a FHIRPath regex: "dot matches newline" always (as FHIRPath specifies); `flags`
/// may add `i` (case insensitive) and `m` (multi-line anchors).
pub(crate) fn compile_regex(
    pattern: &str,
    whole: bool,
    flags: &str,
) -> Result<regex::Regex, String> {
    // `matchesFull` must match the entire string.
    let anchored;
    let pattern = if whole {
        anchored = format!("^(?:{pattern})$");
        anchored.as_str()
    } else {
        pattern
    };
    regex::RegexBuilder::new(pattern)
        .dot_matches_new_line(true)
        .case_insensitive(flags.contains('i'))
        .multi_line(flags.contains('m'))
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("invalid regular expression: {e}"))
}

fn date_literal(text: &str) -> Option<Literal> {
    if let Some(t) = text.strip_prefix('T') {
        Temporal::parse_time(t)?;
        return Some(Literal::Time(t.to_string()));
    }
    if text.contains('T') {
        Temporal::parse_datetime(text)?;
        // `@2015T` is a year-precision dateTime; keep it without the trailing T.
        let t = text.strip_suffix('T').unwrap_or(text);
        return Some(Literal::DateTime(t.to_string()));
    }
    Temporal::parse_date(text)?;
    Some(Literal::Date(text.to_string()))
}
