//! The FHIRPath function library. Names are resolved at parse time into [`FnName`], so calls
//! dispatch on an enum and arity errors surface as parse errors.

use std::borrow::Cow;

use serde_json::Value;

use crate::ast::{Expr, Func, TypeSpec};
use crate::datetime::{Kind, Temporal};
use crate::decimal::Decimal;
use crate::eval::operators::{to_bool, union};
use crate::eval::value::{self, Val, item_of, temporal_item, val};
use crate::eval::{Coll, Ctx, Frame, err, types};
use crate::{EvalError, Item};

mod aggregate;
mod conversion;
mod math;
mod ordering;
mod reference;
mod strings;
mod temporal;

use conversion::{convert, to_boolean, to_decimal, to_integer, to_quantity, to_temporal};
use math::math;
use ordering::sort;
use reference::resolve;

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
    TimezoneOffsetOf = "timezoneOffsetOf"(0, 0),
    // SQL-on-FHIR view functions.
    GetResourceKey = "getResourceKey"(0, 0), GetReferenceKey = "getReferenceKey"(0, 1), DateOf = "dateOf"(0, 0), TimeOf = "timeOf"(0, 0),
    Sum = "sum"(0, 0), Min = "min"(0, 0), Max = "max"(0, 0), Avg = "avg"(0, 0),
}

impl FnName {
    /// Functions whose single argument is a type specifier rather than an expression.
    pub(crate) fn takes_type(self) -> bool {
        matches!(
            self,
            FnName::OfType | FnName::As | FnName::Is | FnName::GetReferenceKey
        )
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
        F::Sum | F::Avg | F::Min | F::Max => aggregate::aggregate(f, input)?,
        F::DateOf
        | F::TimeOf
        | F::YearOf
        | F::MonthOf
        | F::DayOf
        | F::HourOf
        | F::MinuteOf
        | F::SecondOf
        | F::MillisecondOf
        | F::TimezoneOffsetOf => temporal::part(f, &input)?,
        F::IndexOf
        | F::StartsWith
        | F::EndsWith
        | F::Contains
        | F::LastIndexOf
        | F::Substring
        | F::Upper
        | F::Lower
        | F::Trim
        | F::Length
        | F::ToChars
        | F::Replace
        | F::Matches
        | F::ReplaceMatches
        | F::MatchesFull
        | F::Split
        | F::Join
        | F::Encode
        | F::Decode
        | F::Escape
        | F::Unescape => strings::call(&c, f, &input)?,
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
        F::GetResourceKey => input
            .iter()
            .filter_map(|i| match i {
                Item::Node(n) => n.value.get("id").and_then(Value::as_str),
                _ => None,
            })
            .map(|id| Item::String(id.to_string()))
            .collect(),
        F::GetReferenceKey => {
            let wanted = func.type_arg.as_ref().map(|t| t.name.as_str());
            input
                .iter()
                .filter_map(|i| reference::reference_key(i, wanted))
                .map(Item::String)
                .collect()
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
