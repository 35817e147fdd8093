//! The FHIRPath function library. Names are resolved at parse time into [`FnName`], so calls
//! dispatch on an enum and arity errors surface as parse errors.

use std::borrow::Cow;

use serde_json::Value;

use crate::ast::{Expr, Func, TypeSpec};
use crate::datetime::{Kind, Temporal};
use crate::decimal::Decimal;
use crate::eval::operators::{to_bool, union};
use crate::eval::value::{self, Val, item_of, temporal_item, val};
use crate::eval::{Coll, Ctx, Frame, NULL, err, types};
use crate::{EvalError, Item, Node};

macro_rules! functions {
    ($($variant:ident = $name:literal ($min:literal, $max:literal)),* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum FnName { $($variant),* }

        impl FnName {
            pub(crate) fn from_name(name: &str) -> Option<Self> {
                match name { $($name => Some(FnName::$variant),)* _ => None }
            }
            pub(crate) fn as_str(self) -> &'static str {
                match self { $(FnName::$variant => $name),* }
            }
            /// (minimum, maximum) number of arguments.
            pub(crate) fn arity(self) -> (usize, usize) {
                match self { $(FnName::$variant => ($min, $max)),* }
            }
        }
    };
}

functions! {
    Empty = "empty"(0, 0), Exists = "exists"(0, 1), All = "all"(1, 1),
    AllTrue = "allTrue"(0, 0), AnyTrue = "anyTrue"(0, 0), AllFalse = "allFalse"(0, 0), AnyFalse = "anyFalse"(0, 0),
    SubsetOf = "subsetOf"(1, 1), SupersetOf = "supersetOf"(1, 1), Count = "count"(0, 0),
    Distinct = "distinct"(0, 0), IsDistinct = "isDistinct"(0, 0), Not = "not"(0, 0),
    Where = "where"(1, 1), Select = "select"(1, 1), Repeat = "repeat"(1, 1), OfType = "ofType"(1, 1),
    As = "as"(1, 1), Is = "is"(1, 1),
    Single = "single"(0, 0), First = "first"(0, 0), Last = "last"(0, 0), Tail = "tail"(0, 0),
    Skip = "skip"(1, 1), Take = "take"(1, 1), Intersect = "intersect"(1, 1), Exclude = "exclude"(1, 1),
    Union = "union"(1, 1), Combine = "combine"(1, 1), Iif = "iif"(2, 3),
    ToBoolean = "toBoolean"(0, 0), ConvertsToBoolean = "convertsToBoolean"(0, 0),
    ToInteger = "toInteger"(0, 0), ConvertsToInteger = "convertsToInteger"(0, 0),
    ToDecimal = "toDecimal"(0, 0), ConvertsToDecimal = "convertsToDecimal"(0, 0),
    ToStringFn = "toString"(0, 0), ConvertsToString = "convertsToString"(0, 0),
    ToDate = "toDate"(0, 0), ConvertsToDate = "convertsToDate"(0, 0),
    ToDateTime = "toDateTime"(0, 0), ConvertsToDateTime = "convertsToDateTime"(0, 0),
    ToTime = "toTime"(0, 0), ConvertsToTime = "convertsToTime"(0, 0),
    ToQuantity = "toQuantity"(0, 1), ConvertsToQuantity = "convertsToQuantity"(0, 1),
    IndexOf = "indexOf"(1, 1), Substring = "substring"(1, 2), StartsWith = "startsWith"(1, 1),
    EndsWith = "endsWith"(1, 1), Contains = "contains"(1, 1), Upper = "upper"(0, 0), Lower = "lower"(0, 0),
    Replace = "replace"(2, 2), Matches = "matches"(1, 2), ReplaceMatches = "replaceMatches"(2, 2),
    Length = "length"(0, 0), ToChars = "toChars"(0, 0), Trim = "trim"(0, 0), Split = "split"(1, 1),
    Join = "join"(0, 1),
    Abs = "abs"(0, 0), Ceiling = "ceiling"(0, 0), Exp = "exp"(0, 0), Floor = "floor"(0, 0), Ln = "ln"(0, 0),
    Log = "log"(1, 1), Power = "power"(1, 1), Round = "round"(0, 1), Sqrt = "sqrt"(0, 0),
    Truncate = "truncate"(0, 0),
    Children = "children"(0, 0), Descendants = "descendants"(0, 0), Trace = "trace"(1, 2),
    Now = "now"(0, 0), Today = "today"(0, 0), TimeOfDay = "timeOfDay"(0, 0),
    Aggregate = "aggregate"(1, 2),
    Extension = "extension"(1, 1), HasValue = "hasValue"(0, 0), GetValue = "getValue"(0, 0),
    Resolve = "resolve"(0, 0), MemberOf = "memberOf"(1, 1), HtmlChecks = "htmlChecks"(0, 0),
    HtmlChecksLower = "htmlchecks"(0, 0), ConformsTo = "conformsTo"(1, 1),
    // FHIRPath 2.0 additions, cheap enough to support.
    Sort = "sort"(0, 8), Encode = "encode"(1, 1), Decode = "decode"(1, 1), Escape = "escape"(1, 1),
    Unescape = "unescape"(1, 1), Precision = "precision"(0, 0), Comparable = "comparable"(1, 1),
    MatchesFull = "matchesFull"(1, 2), LowBoundary = "lowBoundary"(0, 1),
    HighBoundary = "highBoundary"(0, 1), Type = "type"(0, 0), LastIndexOf = "lastIndexOf"(1, 1),
    YearOf = "yearOf"(0, 0), MonthOf = "monthOf"(0, 0), DayOf = "dayOf"(0, 0), HourOf = "hourOf"(0, 0),
    MinuteOf = "minuteOf"(0, 0), SecondOf = "secondOf"(0, 0), MillisecondOf = "millisecondOf"(0, 0),
    TimezoneOffsetOf = "timezoneOffsetOf"(0, 0), DateOf = "dateOf"(0, 0), TimeOf = "timeOf"(0, 0),
    Sum = "sum"(0, 0), Min = "min"(0, 0), Max = "max"(0, 0), Avg = "avg"(0, 0),
}

impl FnName {
    /// Functions whose single argument is a type specifier rather than an expression.
    pub(crate) fn takes_type(self) -> bool {
        matches!(self, FnName::OfType | FnName::As | FnName::Is)
    }
}

fn boolean<'a>(b: bool) -> Coll<'a> {
    vec![Item::Boolean(b)]
}

fn single<'c, 'a>(input: &'c [Item<'a>], f: FnName) -> Result<Option<&'c Item<'a>>, EvalError> {
    match input {
        [] => Ok(None),
        [x] => Ok(Some(x)),
        _ => Err(err(format!(
            "{}() expects a single item, got {}",
            f.as_str(),
            input.len()
        ))),
    }
}

/// Same item for `distinct`-style bookkeeping: nodes by identity, values by equality.
fn same_item(a: &Item<'_>, b: &Item<'_>) -> bool {
    match (a, b) {
        (Item::Node(x), Item::Node(y)) if x.value.is_object() || y.value.is_object() => {
            std::ptr::eq(x.value, y.value) || x.value == y.value
        }
        _ => value::equals(a, b) == Some(true),
    }
}

fn contains_item(c: &[Item<'_>], x: &Item<'_>) -> bool {
    c.iter().any(|y| same_item(x, y))
}

fn distinct<'a>(input: Coll<'a>) -> Coll<'a> {
    let mut out: Coll<'a> = Vec::with_capacity(input.len());
    for i in input {
        if !contains_item(&out, &i) {
            out.push(i);
        }
    }
    out
}

struct Call<'c, 'a, 'm> {
    ctx: &'c Ctx<'a, 'm>,
    func: &'c Func,
    args: &'c [Expr],
    focus: &'c [Item<'a>],
    fr: &'c Frame<'a>,
}

impl<'a> Call<'_, 'a, '_> {
    /// An ordinary argument, evaluated against the same focus as the call.
    fn arg(&self, i: usize) -> Result<Coll<'a>, EvalError> {
        match self.args.get(i) {
            Some(e) => self.ctx.eval(e, self.focus, self.fr),
            None => Ok(Vec::new()),
        }
    }

    /// A lambda argument, evaluated once per item with `$this` and `$index` bound.
    fn lambda(&self, i: usize, item: &Item<'a>, index: usize) -> Result<Coll<'a>, EvalError> {
        let Some(e) = self.args.get(i) else {
            return Ok(Vec::new());
        };
        let fr = Frame {
            this: Some(item.clone()),
            index: Some(index),
            total: self.fr.total.clone(),
        };
        self.ctx.eval(e, std::slice::from_ref(item), &fr)
    }

    fn str_arg(&self, i: usize) -> Result<Option<String>, EvalError> {
        let c = self.arg(i)?;
        match single(&c, self.func.name)? {
            None => Ok(None),
            Some(item) => match val(item) {
                Some(Val::Str(s)) => Ok(Some(s.into_owned())),
                None => Ok(None),
                _ => Err(err(format!(
                    "{}() expects a string argument",
                    self.func.name.as_str()
                ))),
            },
        }
    }

    fn int_arg(&self, i: usize) -> Result<Option<i64>, EvalError> {
        let c = self.arg(i)?;
        match single(&c, self.func.name)? {
            None => Ok(None),
            Some(item) => match val(item) {
                Some(Val::Int(n)) => Ok(Some(n)),
                None => Ok(None),
                _ => Err(err(format!(
                    "{}() expects an integer argument",
                    self.func.name.as_str()
                ))),
            },
        }
    }

    fn type_arg(&self) -> Result<&TypeSpec, EvalError> {
        self.func
            .type_arg
            .as_ref()
            .ok_or_else(|| err("missing type argument"))
    }
}

/// The single input as a string (strings only; other primitives are converted).
fn input_str<'x>(input: &'x [Item<'_>], f: FnName) -> Result<Option<Cow<'x, str>>, EvalError> {
    let Some(item) = single(input, f)? else {
        return Ok(None);
    };
    Ok(match val(item) {
        Some(Val::Str(s)) => Some(s),
        None => None,
        Some(Val::Complex(_)) => {
            return Err(err(format!(
                "{}() expects a string, got a complex value",
                f.as_str()
            )));
        }
        Some(_) => value::to_string(item).map(Cow::Owned),
    })
}

pub(crate) fn call<'a>(
    ctx: &Ctx<'a, '_>,
    input: Coll<'a>,
    explicit_input: bool,
    func: &Func,
    args: &[Expr],
    focus: &[Item<'a>],
    fr: &Frame<'a>,
) -> Result<Coll<'a>, EvalError> {
    use FnName as F;
    let c = Call {
        ctx,
        func,
        args,
        focus,
        fr,
    };
    let f = func.name;
    Ok(match f {
        F::Empty => boolean(input.is_empty()),
        F::Exists => {
            if args.is_empty() {
                boolean(!input.is_empty())
            } else {
                let mut any = false;
                for (i, item) in input.iter().enumerate() {
                    if criterion(&c.lambda(0, item, i)?) == Some(true) {
                        any = true;
                        break;
                    }
                }
                boolean(any)
            }
        }
        F::All => {
            for (i, item) in input.iter().enumerate() {
                if criterion(&c.lambda(0, item, i)?) != Some(true) {
                    return Ok(boolean(false));
                }
            }
            boolean(true)
        }
        F::AllTrue | F::AnyTrue | F::AllFalse | F::AnyFalse => {
            let mut bools = Vec::with_capacity(input.len());
            for item in &input {
                match val(item) {
                    Some(Val::Bool(b)) => bools.push(b),
                    _ => return Err(err(format!("{}() expects booleans", f.as_str()))),
                }
            }
            boolean(match f {
                F::AllTrue => bools.iter().all(|b| *b),
                F::AnyTrue => bools.iter().any(|b| *b),
                F::AllFalse => bools.iter().all(|b| !*b),
                _ => bools.iter().any(|b| !*b),
            })
        }
        F::SubsetOf => {
            let other = c.arg(0)?;
            boolean(input.iter().all(|i| contains_item(&other, i)))
        }
        F::SupersetOf => {
            let other = c.arg(0)?;
            boolean(other.iter().all(|i| contains_item(&input, i)))
        }
        F::Count => vec![Item::Integer(
            i64::try_from(input.len()).map_err(|_| err("count overflow"))?,
        )],
        F::Distinct => distinct(input),
        F::IsDistinct => {
            let n = input.len();
            boolean(distinct(input).len() == n)
        }
        F::Not => match to_bool(&input)? {
            Some(b) => boolean(!b),
            None => Vec::new(),
        },
        F::Where => {
            let mut out = Vec::new();
            for (i, item) in input.iter().enumerate() {
                if criterion(&c.lambda(0, item, i)?) == Some(true) {
                    out.push(item.clone());
                }
            }
            out
        }
        F::Select => {
            let mut out = Vec::new();
            for (i, item) in input.iter().enumerate() {
                out.extend(c.lambda(0, item, i)?);
            }
            out
        }
        F::Repeat => {
            let mut out: Coll<'a> = Vec::new();
            let mut queue = input;
            // Bounded so that a self-reproducing projection (`repeat('a')`) terminates.
            let mut rounds = 0;
            while !queue.is_empty() && rounds < 10_000 {
                rounds += 1;
                let mut next = Vec::new();
                for (i, item) in queue.iter().enumerate() {
                    for r in c.lambda(0, item, i)? {
                        if !contains_item(&out, &r) {
                            out.push(r.clone());
                            next.push(r);
                        }
                    }
                }
                queue = next;
            }
            out
        }
        F::OfType => {
            let ts = c.type_arg()?;
            types::check_known(ctx, ts)?;
            input
                .into_iter()
                .filter(|i| types::cast_matches(ctx, i, ts))
                .collect()
        }
        F::As => {
            let ts = c.type_arg()?;
            types::check_known(ctx, ts)?;
            match single(&input, f)? {
                Some(item) if types::cast_matches(ctx, item, ts) => vec![item.clone()],
                _ => Vec::new(),
            }
        }
        F::Is => {
            let ts = c.type_arg()?;
            types::check_known(ctx, ts)?;
            match single(&input, f)? {
                Some(item) => boolean(types::is_type(ctx, item, ts)),
                None => Vec::new(),
            }
        }
        F::Single => single(&input, f)?.cloned().into_iter().collect(),
        F::First => input.into_iter().take(1).collect(),
        F::Last => input.into_iter().last().into_iter().collect(),
        F::Tail => input.into_iter().skip(1).collect(),
        F::Skip => {
            let n = c.int_arg(0)?.unwrap_or(0);
            input
                .into_iter()
                .skip(usize::try_from(n).unwrap_or(0))
                .collect()
        }
        F::Take => {
            let n = c.int_arg(0)?.unwrap_or(0);
            input
                .into_iter()
                .take(usize::try_from(n).unwrap_or(0))
                .collect()
        }
        F::Intersect => {
            let other = c.arg(0)?;
            distinct(
                input
                    .into_iter()
                    .filter(|i| contains_item(&other, i))
                    .collect(),
            )
        }
        F::Exclude => {
            let other = c.arg(0)?;
            input
                .into_iter()
                .filter(|i| !contains_item(&other, i))
                .collect()
        }
        F::Union => union(input, c.arg(0)?),
        F::Combine => {
            let mut out = input;
            out.extend(c.arg(0)?);
            out
        }
        F::Iif => {
            if input.len() > 1 {
                return Err(err("iif() expects a single input"));
            }
            // With an explicit input (`x.iif(...)`) the arguments see it as `$this`.
            let item = input.first().filter(|_| explicit_input);
            let branch = |i: usize| match item {
                Some(item) => c.lambda(i, item, 0),
                None => c.arg(i),
            };
            let cond = branch(0)?;
            let cond = match cond.as_slice() {
                [] => None,
                [b] => match val(b) {
                    Some(Val::Bool(b)) => Some(b),
                    _ => return Err(err("iif() criterion must be a boolean")),
                },
                _ => return Err(err("iif() criterion must be a single boolean")),
            };
            if cond == Some(true) {
                branch(1)?
            } else {
                branch(2)?
            }
        }
        F::ToBoolean | F::ConvertsToBoolean => convert(f, F::ToBoolean, &input, to_boolean)?,
        F::ToInteger | F::ConvertsToInteger => convert(f, F::ToInteger, &input, to_integer)?,
        F::ToDecimal | F::ConvertsToDecimal => convert(f, F::ToDecimal, &input, to_decimal)?,
        F::ToStringFn | F::ConvertsToString => convert(f, F::ToStringFn, &input, |i| {
            value::to_string(i).map(Item::String)
        })?,
        F::ToDate | F::ConvertsToDate => {
            convert(f, F::ToDate, &input, |i| to_temporal(i, Kind::Date))?
        }
        F::ToDateTime | F::ConvertsToDateTime => {
            convert(f, F::ToDateTime, &input, |i| to_temporal(i, Kind::DateTime))?
        }
        F::ToTime | F::ConvertsToTime => {
            convert(f, F::ToTime, &input, |i| to_temporal(i, Kind::Time))?
        }
        F::ToQuantity | F::ConvertsToQuantity => {
            let unit = c.str_arg(0)?;
            let conv = |i: &Item<'a>| -> Option<Item<'a>> {
                let q = to_quantity(i)?;
                match (&unit, &q) {
                    (Some(u), Item::Quantity { value, unit: from }) if u != from => {
                        let v = Decimal::parse(value)?;
                        // Both in base units: value_in_u = base(value) / base(1 u).
                        let (base, one) =
                            crate::quantity::comparable((v, from), (Decimal::from_i64(1), u))?;
                        Some(Item::Quantity {
                            value: base.checked_div(one)?.to_string(),
                            unit: u.clone(),
                        })
                    }
                    _ => Some(q),
                }
            };
            convert(f, F::ToQuantity, &input, conv)?
        }
        F::Sum | F::Avg => {
            if input.is_empty() {
                return Ok(Vec::new());
            }
            let mut acc = input[0].clone();
            for item in &input[1..] {
                acc = match crate::eval::operators::add(&acc, item)? {
                    Some(v) => v,
                    None => return Ok(Vec::new()),
                };
            }
            if f == F::Avg {
                let n = Item::Integer(i64::try_from(input.len()).map_err(|_| err("avg overflow"))?);
                match crate::eval::operators::divide(&acc, &n)? {
                    Some(v) => vec![v],
                    None => Vec::new(),
                }
            } else {
                vec![acc]
            }
        }
        F::Min | F::Max => {
            let mut best: Option<&Item<'a>> = None;
            for item in &input {
                if val(item).is_none() {
                    // Value-less primitives make the extreme unknowable.
                    return Ok(Vec::new());
                }
                best = Some(match best {
                    None => item,
                    Some(b) => match value::compare(item, b)? {
                        Some(std::cmp::Ordering::Less) if f == F::Min => item,
                        Some(std::cmp::Ordering::Greater) if f == F::Max => item,
                        Some(_) => b,
                        None => return Ok(Vec::new()),
                    },
                });
            }
            best.cloned().into_iter().collect()
        }
        F::DateOf | F::TimeOf => {
            let Some(item) = single(&input, f)? else {
                return Ok(Vec::new());
            };
            let t = match val(item) {
                Some(Val::Temporal(t)) => Some(t),
                Some(Val::Str(s)) => Temporal::parse_datetime(&s),
                _ => None,
            };
            let out = t.and_then(|t| {
                if f == F::DateOf {
                    t.date_part()
                } else {
                    t.time_part()
                }
            });
            out.map(temporal_item).into_iter().collect()
        }
        F::YearOf
        | F::MonthOf
        | F::DayOf
        | F::HourOf
        | F::MinuteOf
        | F::SecondOf
        | F::MillisecondOf
        | F::TimezoneOffsetOf => {
            let Some(item) = single(&input, f)? else {
                return Ok(Vec::new());
            };
            let t = match val(item) {
                Some(Val::Temporal(t)) => Some(t),
                Some(Val::Str(s)) => {
                    Temporal::parse_datetime(&s).or_else(|| Temporal::parse_time(&s))
                }
                _ => None,
            };
            let Some(t) = t else {
                return Ok(Vec::new());
            };
            if f == F::TimezoneOffsetOf {
                let hours = t.tz_minutes().and_then(|m| {
                    Decimal::from_i64(i64::from(m)).checked_div(Decimal::from_i64(60))
                });
                return Ok(hours
                    .map(|h| Item::Decimal(h.to_string()))
                    .into_iter()
                    .collect());
            }
            let part = match f {
                F::YearOf => crate::datetime::Part::Year,
                F::MonthOf => crate::datetime::Part::Month,
                F::DayOf => crate::datetime::Part::Day,
                F::HourOf => crate::datetime::Part::Hour,
                F::MinuteOf => crate::datetime::Part::Minute,
                F::SecondOf => crate::datetime::Part::Second,
                _ => crate::datetime::Part::Millisecond,
            };
            t.component(part).map(Item::Integer).into_iter().collect()
        }
        F::IndexOf | F::StartsWith | F::EndsWith | F::Contains | F::LastIndexOf => {
            let Some(s) = input_str(&input, f)? else {
                return Ok(Vec::new());
            };
            let Some(arg) = c.str_arg(0)? else {
                return Ok(Vec::new());
            };
            match f {
                F::IndexOf => {
                    let idx = s
                        .find(arg.as_str())
                        .map_or(-1, |b| s[..b].chars().count() as i64);
                    vec![Item::Integer(idx)]
                }
                F::LastIndexOf => {
                    let idx = s
                        .rfind(arg.as_str())
                        .map_or(-1, |b| s[..b].chars().count() as i64);
                    vec![Item::Integer(idx)]
                }
                F::StartsWith => boolean(s.starts_with(arg.as_str())),
                F::EndsWith => boolean(s.ends_with(arg.as_str())),
                _ => boolean(s.contains(arg.as_str())),
            }
        }
        F::Substring => {
            let Some(s) = input_str(&input, f)? else {
                return Ok(Vec::new());
            };
            let Some(start) = c.int_arg(0)? else {
                return Ok(Vec::new());
            };
            let len = c.int_arg(1)?;
            let n = s.chars().count() as i64;
            if start < 0 || start >= n {
                return Ok(Vec::new());
            }
            let take = len.map_or(n, |l| l.max(0));
            let sub: String = s
                .chars()
                .skip(start as usize)
                .take(usize::try_from(take).unwrap_or(0))
                .collect();
            vec![Item::String(sub)]
        }
        F::Upper | F::Lower | F::Trim | F::Length | F::ToChars => {
            let Some(s) = input_str(&input, f)? else {
                return Ok(Vec::new());
            };
            match f {
                F::Upper => vec![Item::String(s.to_uppercase())],
                F::Lower => vec![Item::String(s.to_lowercase())],
                F::Trim => vec![Item::String(s.trim().to_string())],
                F::Length => vec![Item::Integer(s.chars().count() as i64)],
                _ => s.chars().map(|ch| Item::String(ch.to_string())).collect(),
            }
        }
        F::Replace => {
            let Some(s) = input_str(&input, f)? else {
                return Ok(Vec::new());
            };
            let (Some(pat), Some(rep)) = (c.str_arg(0)?, c.str_arg(1)?) else {
                return Ok(Vec::new());
            };
            vec![Item::String(s.replace(pat.as_str(), &rep))]
        }
        F::Matches | F::ReplaceMatches | F::MatchesFull => {
            let Some(s) = input_str(&input, f)? else {
                return Ok(Vec::new());
            };
            let compiled;
            let re = match &func.regex {
                Some(re) => re.as_ref(),
                None => {
                    let Some(p) = c.str_arg(0)? else {
                        return Ok(Vec::new());
                    };
                    let flags = if f == F::ReplaceMatches {
                        None
                    } else {
                        c.str_arg(1)?
                    };
                    compiled = crate::parser::compile_regex(
                        &p,
                        f == F::MatchesFull,
                        flags.as_deref().unwrap_or(""),
                    )
                    .map_err(err)?;
                    &compiled
                }
            };
            if matches!(f, F::Matches | F::MatchesFull) {
                boolean(re.is_match(&s))
            } else {
                let Some(rep) = c.str_arg(1)? else {
                    return Ok(Vec::new());
                };
                if re.as_str().is_empty() {
                    // An empty pattern would match between every character; FHIRPath leaves
                    // the input unchanged.
                    vec![Item::String(s.into_owned())]
                } else {
                    vec![Item::String(re.replace_all(&s, rep.as_str()).into_owned())]
                }
            }
        }
        F::Split => {
            let Some(s) = input_str(&input, f)? else {
                return Ok(Vec::new());
            };
            let Some(sep) = c.str_arg(0)? else {
                return Ok(Vec::new());
            };
            s.split(sep.as_str())
                .map(|p| Item::String(p.to_string()))
                .collect()
        }
        F::Join => {
            if input.is_empty() {
                return Ok(Vec::new());
            }
            let sep = c.str_arg(0)?.unwrap_or_default();
            let mut parts = Vec::with_capacity(input.len());
            for item in &input {
                match val(item) {
                    Some(Val::Str(s)) => parts.push(s.into_owned()),
                    // Primitives with only extensions have no text to join.
                    None => {}
                    _ => return Err(err("join() expects strings")),
                }
            }
            vec![Item::String(parts.join(&sep))]
        }
        F::Abs
        | F::Ceiling
        | F::Floor
        | F::Truncate
        | F::Round
        | F::Sqrt
        | F::Ln
        | F::Exp
        | F::Log
        | F::Power => {
            let Some(item) = single(&input, f)? else {
                return Ok(Vec::new());
            };
            math(&c, f, item)?.into_iter().collect()
        }
        F::Children => {
            let mut out = Vec::new();
            for item in &input {
                ctx.children(item, &mut out);
            }
            out
        }
        F::Descendants => {
            let mut out = Vec::new();
            let mut level = input;
            let mut guard = 0;
            while !level.is_empty() && guard < 1_000 {
                guard += 1;
                let mut next = Vec::new();
                for item in &level {
                    ctx.children(item, &mut next);
                }
                out.extend(next.iter().cloned());
                level = next;
            }
            out
        }
        F::Trace => input,
        F::Now => vec![temporal_item(Temporal::now())],
        F::Today => vec![temporal_item(Temporal::today())],
        F::TimeOfDay => vec![temporal_item(Temporal::time_of_day())],
        F::Aggregate => {
            let mut total = c.arg(1)?;
            let Some(e) = args.first() else {
                return Ok(total);
            };
            for (i, item) in input.iter().enumerate() {
                let fr = Frame {
                    this: Some(item.clone()),
                    index: Some(i),
                    total: Some(total),
                };
                total = ctx.eval(e, std::slice::from_ref(item), &fr)?;
            }
            total
        }
        F::Extension => {
            let Some(url) = c.str_arg(0)? else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            for item in &input {
                let mut exts = Vec::new();
                ctx.navigate(item, "extension", &mut exts);
                for e in exts {
                    if let Item::Node(n) = &e
                        && n.value.get("url").and_then(Value::as_str) == Some(url.as_str())
                    {
                        out.push(e);
                    }
                }
            }
            out
        }
        F::HasValue => match input.as_slice() {
            [Item::Node(n)] => {
                boolean(!n.value.is_null() && !n.value.is_object() && !n.value.is_array())
            }
            [_] => boolean(true),
            _ => boolean(false),
        },
        F::GetValue => match input.as_slice() {
            [item @ Item::Node(n)] if !n.value.is_null() && !n.value.is_object() => {
                val(item).map(item_of).into_iter().collect()
            }
            [Item::Node(_)] => Vec::new(),
            [item] => vec![item.clone()],
            _ => Vec::new(),
        },
        F::Resolve => {
            let mut out = Vec::new();
            for item in &input {
                if let Some(r) = resolve(ctx, item) {
                    out.push(r);
                }
            }
            out
        }
        // Terminology is not available inside the evaluator: membership is unknown (empty).
        F::MemberOf => Vec::new(),
        F::HtmlChecks | F::HtmlChecksLower => boolean(true),
        F::ConformsTo => {
            let Some(url) = c.str_arg(0)? else {
                return Ok(Vec::new());
            };
            // Only base-resource profiles can be checked without a validator.
            let name = url
                .strip_prefix("http://hl7.org/fhir/StructureDefinition/")
                .filter(|n| ctx.type_name(n).is_some())
                .ok_or_else(|| err(format!("conformsTo(): unknown profile {url}")))?;
            let ts = TypeSpec {
                namespace: None,
                name: name.to_string(),
            };
            match single(&input, f)? {
                Some(item) => boolean(types::is_type(ctx, item, &ts)),
                None => Vec::new(),
            }
        }
        F::Sort => sort(&c, input)?,
        F::Encode | F::Decode | F::Escape | F::Unescape => {
            let Some(s) = input_str(&input, f)? else {
                return Ok(Vec::new());
            };
            let Some(format) = c.str_arg(0)? else {
                return Ok(Vec::new());
            };
            match crate::codec::apply(f, &s, &format) {
                Some(out) => vec![Item::String(out)],
                // Malformed input to decode() is an error; an unknown format is simply empty.
                None if f == F::Decode
                    && matches!(format.as_str(), "base64" | "urlbase64" | "hex") =>
                {
                    return Err(err(format!("decode(): input is not valid {format}")));
                }
                None => Vec::new(),
            }
        }
        F::Precision => {
            let Some(item) = single(&input, f)? else {
                return Ok(Vec::new());
            };
            match val(item) {
                Some(Val::Dec(d)) => vec![Item::Integer(i64::from(d.scale()))],
                Some(Val::Int(_)) => vec![Item::Integer(0)],
                Some(Val::Temporal(t)) => vec![Item::Integer(t.precision_digits())],
                Some(Val::Str(s)) => vec![Item::Integer(s.chars().count() as i64)],
                _ => Vec::new(),
            }
        }
        F::LowBoundary | F::HighBoundary => {
            let Some(item) = single(&input, f)? else {
                return Ok(Vec::new());
            };
            let digits = c.int_arg(0)?;
            let high = f == F::HighBoundary;
            let out = match val(item) {
                Some(Val::Int(i)) => Decimal::from_i64(i)
                    .boundary(digits, high)
                    .map(|d| Item::Decimal(d.to_string())),
                Some(Val::Dec(d)) => d
                    .boundary(digits, high)
                    .map(|d| Item::Decimal(d.to_string())),
                Some(Val::Quantity(v, u)) => v.boundary(digits, high).map(|d| Item::Quantity {
                    value: d.to_string(),
                    unit: u.into_owned(),
                }),
                Some(Val::Temporal(t)) => t.boundary(digits, high).map(temporal_item),
                _ => None,
            };
            out.into_iter().collect()
        }
        F::Comparable => {
            let other = c.arg(0)?;
            let (Some(a), Some(b)) = (single(&input, f)?, single(&other, f)?) else {
                return Ok(Vec::new());
            };
            match (val(a), val(b)) {
                (Some(Val::Quantity(x, ux)), Some(Val::Quantity(y, uy))) => {
                    boolean(crate::quantity::comparable((x, &ux), (y, &uy)).is_some())
                }
                _ => Vec::new(),
            }
        }
        F::Type => input
            .iter()
            .filter_map(|i| types::type_of(ctx, i))
            .map(|(ns, name)| Item::String(format!("{ns}.{name}")))
            .collect(),
    })
}

/// Runs a `toX()` conversion, or the matching `convertsToX()` check.
fn convert<'a>(
    f: FnName,
    to: FnName,
    input: &[Item<'a>],
    conv: impl Fn(&Item<'a>) -> Option<Item<'a>>,
) -> Result<Coll<'a>, EvalError> {
    let Some(item) = single(input, f)? else {
        return Ok(Vec::new());
    };
    let r = conv(item);
    Ok(if f == to {
        r.into_iter().collect()
    } else {
        boolean(r.is_some())
    })
}

fn to_boolean<'a>(item: &Item<'a>) -> Option<Item<'a>> {
    let b = match val(item)? {
        Val::Bool(b) => b,
        Val::Int(1) => true,
        Val::Int(0) => false,
        Val::Dec(d)
            if d == Decimal::from_i64(1)
                || d.partial_cmp(&Decimal::from_i64(1)) == Some(std::cmp::Ordering::Equal) =>
        {
            true
        }
        Val::Dec(d) if d.is_zero() => false,
        Val::Str(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" | "1.0" => true,
            "false" | "f" | "no" | "n" | "0" | "0.0" => false,
            _ => return None,
        },
        _ => return None,
    };
    Some(Item::Boolean(b))
}

fn is_integer_text(s: &str) -> bool {
    let d = s.strip_prefix(['+', '-']).unwrap_or(s);
    !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
}

fn to_integer<'a>(item: &Item<'a>) -> Option<Item<'a>> {
    match val(item)? {
        Val::Int(i) => Some(Item::Integer(i)),
        Val::Bool(b) => Some(Item::Integer(i64::from(b))),
        Val::Str(s) if is_integer_text(&s) => s.parse().ok().map(Item::Integer),
        _ => None,
    }
}

fn to_decimal<'a>(item: &Item<'a>) -> Option<Item<'a>> {
    match val(item)? {
        Val::Int(i) => Some(Item::Decimal(i.to_string())),
        Val::Dec(d) => Some(Item::Decimal(d.to_string())),
        Val::Bool(b) => Some(Item::Decimal(if b { "1.0" } else { "0.0" }.to_string())),
        Val::Str(s) => {
            let body = s.strip_prefix(['+', '-']).unwrap_or(&s);
            let ok = match body.split_once('.') {
                Some((i, f)) => {
                    is_integer_text(i) && is_integer_text(f) && !f.starts_with(['+', '-'])
                }
                None => is_integer_text(body),
            } && !body.starts_with(['+', '-']);
            if ok {
                Decimal::parse(&s).map(|d| Item::Decimal(d.to_string()))
            } else {
                None
            }
        }
        _ => None,
    }
}

fn to_temporal<'a>(item: &Item<'a>, kind: Kind) -> Option<Item<'a>> {
    let t = match val(item)? {
        Val::Temporal(t) => t,
        Val::Str(s) => match kind {
            Kind::Time => Temporal::parse_time(s.strip_prefix('T').unwrap_or(&s))?,
            _ => Temporal::parse_datetime(&s)?,
        },
        _ => return None,
    };
    let t = match (kind, t.kind) {
        (Kind::Time, Kind::Time) => t,
        (Kind::Time, _) | (_, Kind::Time) => return None,
        (Kind::Date, _) => t.to_date(),
        (Kind::DateTime, _) => t.as_datetime(),
    };
    Some(temporal_item(t))
}

/// `toQuantity()`: numbers get unit `'1'`, strings are parsed as `value ['unit' | keyword]`.
fn to_quantity<'a>(item: &Item<'a>) -> Option<Item<'a>> {
    match val(item)? {
        Val::Int(i) => Some(Item::Quantity {
            value: i.to_string(),
            unit: "1".into(),
        }),
        Val::Dec(d) => Some(Item::Quantity {
            value: d.to_string(),
            unit: "1".into(),
        }),
        Val::Bool(b) => Some(Item::Quantity {
            value: if b { "1.0" } else { "0.0" }.into(),
            unit: "1".into(),
        }),
        Val::Quantity(v, u) => Some(Item::Quantity {
            value: v.to_string(),
            unit: u.into_owned(),
        }),
        Val::Str(s) => {
            let s = s.trim();
            let (num, rest) = match s.find(' ') {
                Some(i) => (&s[..i], s[i..].trim()),
                None => (s, ""),
            };
            to_decimal(&Item::String(num.to_string()))?;
            let unit = if rest.is_empty() {
                "1".to_string()
            } else if let Some(u) = rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
                u.to_string()
            } else if crate::parser::is_calendar_keyword(rest) {
                rest.to_string()
            } else {
                return None;
            };
            Some(Item::Quantity {
                value: num.to_string(),
                unit,
            })
        }
        _ => None,
    }
}

fn dec_out(d: Option<Decimal>) -> Option<Item<'static>> {
    d.map(|d| Item::Decimal(d.to_string()))
}

fn math<'a>(
    c: &Call<'_, 'a, '_>,
    f: FnName,
    item: &Item<'a>,
) -> Result<Option<Item<'a>>, EvalError> {
    use FnName as F;
    // A primitive node without a value (only extensions) behaves as empty.
    let Some(v) = val(item) else {
        return Ok(None);
    };
    let d = match &v {
        Val::Int(i) => Decimal::from_i64(*i),
        Val::Dec(d) => *d,
        Val::Quantity(q, u)
            if matches!(f, F::Abs | F::Ceiling | F::Floor | F::Truncate | F::Round) =>
        {
            // Rounding-like functions apply to the value and keep the unit.
            let r = math(c, f, &Item::Decimal(q.to_string()))?;
            return Ok(r
                .and_then(|r| match r {
                    Item::Integer(i) => Some(i.to_string()),
                    Item::Decimal(d) => Some(d),
                    _ => None,
                })
                .map(|value| Item::Quantity {
                    value,
                    unit: u.to_string(),
                }));
        }
        _ => return Err(err(format!("{}() expects a number", f.as_str()))),
    };
    let int = |x: Option<i128>| x.and_then(|x| i64::try_from(x).ok()).map(Item::Integer);
    let float = |x: f64| dec_out(Decimal::from_f64(x));
    Ok(match f {
        F::Abs => match v {
            Val::Int(i) => i.checked_abs().map(Item::Integer),
            _ => dec_out(Some(d.abs())),
        },
        F::Ceiling => int(d.ceil()),
        F::Floor => int(d.floor()),
        F::Truncate => int(d.trunc()),
        F::Round => {
            let p = c.int_arg(0)?.unwrap_or(0);
            let p = u32::try_from(p).map_err(|_| err("round() precision must be non-negative"))?;
            dec_out(d.round(p.min(28)))
        }
        F::Sqrt => {
            if d.is_negative() {
                None
            } else {
                float(d.to_f64().sqrt())
            }
        }
        F::Ln => {
            if d.is_negative() || d.is_zero() {
                None
            } else {
                float(d.to_f64().ln())
            }
        }
        F::Exp => float(d.to_f64().exp()),
        F::Log => {
            let base = c.arg(0)?;
            let Some(b) = single(&base, f)? else {
                return Ok(None);
            };
            let b = match val(b) {
                Some(Val::Int(i)) => i as f64,
                Some(Val::Dec(x)) => x.to_f64(),
                None => return Ok(None),
                _ => return Err(err("log() expects a numeric base")),
            };
            float(d.to_f64().ln() / b.ln())
        }
        F::Power => {
            let e = c.arg(0)?;
            let Some(e) = single(&e, f)? else {
                return Ok(None);
            };
            match (&v, val(e)) {
                (Val::Int(b), Some(Val::Int(x))) if x >= 0 => u32::try_from(x)
                    .ok()
                    .and_then(|x| b.checked_pow(x))
                    .map(Item::Integer),
                (_, Some(Val::Int(x))) => float(d.to_f64().powf(x as f64)),
                (_, Some(Val::Dec(x))) => float(d.to_f64().powf(x.to_f64())),
                (_, None) => None,
                _ => return Err(err("power() expects a numeric exponent")),
            }
        }
        _ => None,
    })
}

/// `resolve()` without fetching: contained and Bundle-local targets resolve to the real
/// resource; anything else becomes a placeholder node typed by the reference's type segment.
fn resolve<'a>(ctx: &Ctx<'a, '_>, item: &Item<'a>) -> Option<Item<'a>> {
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

fn placeholder<'a>(ctx: &Ctx<'a, '_>, reference: &str) -> Option<Item<'a>> {
    let reference = reference.split(['?', '#']).next().unwrap_or(reference);
    let segments: Vec<&str> = reference.split('/').filter(|s| !s.is_empty()).collect();
    // `Type/id/_history/vid` → drop the version part.
    let end = match segments.iter().rposition(|s| *s == "_history") {
        Some(i) => i,
        None => segments.len(),
    };
    if end < 2 {
        return None;
    }
    let ty = ctx.type_name(segments[end - 2])?;
    if !crate::model::is_resource_type(ty) && ctx.model.is_none() {
        return None;
    }
    Some(Item::Node(Node {
        value: &NULL,
        type_name: Some(ty),
        extension: None,
    }))
}

/// `sort(key, ...)`: stable sort by each key in turn; a key written `-expr` sorts descending.
fn sort<'a>(c: &Call<'_, 'a, '_>, input: Coll<'a>) -> Result<Coll<'a>, EvalError> {
    let mut keyed = Vec::with_capacity(input.len());
    for (i, item) in input.into_iter().enumerate() {
        let mut keys = Vec::with_capacity(c.args.len().max(1));
        if c.args.is_empty() {
            keys.push((vec![item.clone()], false));
        }
        for arg in c.args {
            let (expr, desc) = match arg {
                Expr::Neg(inner) => (inner.as_ref(), true),
                other => (other, false),
            };
            let fr = Frame {
                this: Some(item.clone()),
                index: Some(i),
                total: None,
            };
            keys.push((c.ctx.eval(expr, std::slice::from_ref(&item), &fr)?, desc));
        }
        keyed.push((keys, item));
    }
    keyed.sort_by(|(ka, _), (kb, _)| {
        for ((a, desc), (b, _)) in ka.iter().zip(kb) {
            let ord = match (a.first(), b.first()) {
                (None, None) => std::cmp::Ordering::Equal,
                // Items without a key sort after all others (before them when descending).
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(_), None) => std::cmp::Ordering::Less,
                (Some(x), Some(y)) => value::compare(x, y)
                    .ok()
                    .flatten()
                    .unwrap_or(std::cmp::Ordering::Equal),
            };
            let ord = if *desc { ord.reverse() } else { ord };
            if ord != std::cmp::Ordering::Equal {
                return ord;
            }
        }
        std::cmp::Ordering::Equal
    });
    Ok(keyed.into_iter().map(|(_, item)| item).collect())
}

/// A `where`/`exists`/`all` criterion: true only for a single `true`. Lenient where the
/// specification would raise an error for several items: a non-empty result that is not a
/// single boolean counts as true (`name.exists(given)`), as most engines do.
fn criterion(c: &[Item<'_>]) -> Option<bool> {
    match c {
        [] => None,
        [item] => match val(item) {
            Some(Val::Bool(b)) => Some(b),
            _ => Some(true),
        },
        _ => Some(true),
    }
}
