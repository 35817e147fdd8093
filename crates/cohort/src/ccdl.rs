//! The Clinical Cohort Definition Language v2 (MII/FDPG): the model and a parser that checks
//! every rule of the published JSON Schema (`../shared/reference/ccdl/`) while it reads, so a
//! violation names the failing part as a JSON pointer (RFC 6901) instead of a serde position.
//!
//! Semantic checks that the schema cannot express (a known context, a known unit, the size
//! limits) are made by [`crate::plan::compile`], also with pointers.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::QueryError;

/// A coded concept: `system|code`, with an optional version and a display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TermCode {
    pub code: String,
    pub system: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub display: String,
}

impl TermCode {
    pub fn new(system: &str, code: &str) -> TermCode {
        TermCode {
            code: code.to_owned(),
            system: system.to_owned(),
            version: None,
            display: code.to_owned(),
        }
    }
}

/// A UCUM unit of a quantity filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unit {
    pub code: String,
    pub display: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Comparator {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Comparator {
    pub fn parse(s: &str) -> Option<Comparator> {
        Some(match s {
            "gt" => Comparator::Gt,
            "ge" => Comparator::Ge,
            "lt" => Comparator::Lt,
            "le" => Comparator::Le,
            "eq" => Comparator::Eq,
            "ne" => Comparator::Ne,
            _ => return None,
        })
    }

    pub fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Comparator::Gt => value > bound,
            Comparator::Ge => value >= bound,
            Comparator::Lt => value < bound,
            Comparator::Le => value <= bound,
            Comparator::Eq => value == bound,
            Comparator::Ne => value != bound,
        }
    }
}

/// What a `valueFilter` or a non-reference `attributeFilter` asks of a value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum Filter {
    #[serde(rename = "concept")]
    Concept {
        #[serde(rename = "selectedConcepts")]
        selected_concepts: Vec<TermCode>,
    },
    #[serde(rename = "quantity-comparator")]
    Comparator {
        comparator: Comparator,
        value: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        unit: Option<Unit>,
    },
    #[serde(rename = "quantity-range")]
    Range {
        #[serde(rename = "minValue")]
        min_value: f64,
        #[serde(rename = "maxValue")]
        max_value: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        unit: Option<Unit>,
    },
    /// Only in attribute filters: the linked resource must meet one of `criteria`.
    #[serde(rename = "reference")]
    Reference { criteria: Vec<Criterion> },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributeFilter {
    #[serde(rename = "attributeCode")]
    pub attribute_code: TermCode,
    #[serde(flatten)]
    pub filter: Filter,
}

/// Dates as written (`YYYY-MM-DD`), checked by the parser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct TimeRestriction {
    #[serde(rename = "afterDate", skip_serializing_if = "Option::is_none")]
    pub after_date: Option<String>,
    #[serde(rename = "beforeDate", skip_serializing_if = "Option::is_none")]
    pub before_date: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Criterion {
    pub context: TermCode,
    #[serde(rename = "termCodes")]
    pub term_codes: Vec<TermCode>,
    #[serde(rename = "valueFilter", skip_serializing_if = "Option::is_none")]
    pub value_filter: Option<Filter>,
    #[serde(rename = "attributeFilters", skip_serializing_if = "Vec::is_empty")]
    pub attribute_filters: Vec<AttributeFilter>,
    #[serde(rename = "timeRestriction", skip_serializing_if = "Option::is_none")]
    pub time_restriction: Option<TimeRestriction>,
}

/// A cohort definition: inclusion (AND of ORs) and NOT exclusion (OR of ANDs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ccdl {
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    #[serde(rename = "inclusionCriteria")]
    pub inclusion_criteria: Vec<Vec<Criterion>>,
    #[serde(rename = "exclusionCriteria", skip_serializing_if = "Vec::is_empty")]
    pub exclusion_criteria: Vec<Vec<Criterion>>,
}

impl Ccdl {
    /// Parses and validates CCDL JSON text.
    pub fn from_json(text: &str) -> Result<Ccdl, QueryError> {
        let value: Value = serde_json::from_str(text).map_err(|e| QueryError::Syntax {
            message: format!("not JSON: {e}"),
        })?;
        Ccdl::from_value(&value)
    }

    /// Validates `value` against the CCDL v2 schema and reads it.
    pub fn from_value(value: &Value) -> Result<Ccdl, QueryError> {
        let p = Ptr::root();
        let o = object(value, &p)?;
        let version = match o.get("version") {
            None => return Err(missing(&p, "version")),
            Some(Value::String(s)) if s == "2" => s.clone(),
            Some(_) => return Err(invalid(&p.key("version"), "must be the string \"2\"")),
        };
        let display = opt_string(o, &p, "display")?;
        let inclusion = match o.get("inclusionCriteria") {
            None => return Err(missing(&p, "inclusionCriteria")),
            Some(v) => groups(v, &p.key("inclusionCriteria"))?,
        };
        let exclusion = match o.get("exclusionCriteria") {
            None => Vec::new(),
            Some(v) => groups(v, &p.key("exclusionCriteria"))?,
        };
        Ok(Ccdl {
            version,
            display,
            inclusion_criteria: inclusion,
            exclusion_criteria: exclusion,
        })
    }

    pub fn to_json(&self) -> String {
        // Serialising plain structs of strings and finite numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A JSON pointer under construction.
#[derive(Debug, Clone)]
pub(crate) struct Ptr(String);

impl Ptr {
    pub(crate) fn root() -> Ptr {
        Ptr(String::new())
    }
    pub(crate) fn key(&self, k: &str) -> Ptr {
        Ptr(format!(
            "{}/{}",
            self.0,
            k.replace('~', "~0").replace('/', "~1")
        ))
    }
    pub(crate) fn index(&self, i: usize) -> Ptr {
        Ptr(format!("{}/{i}", self.0))
    }
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

fn invalid(p: &Ptr, message: &str) -> QueryError {
    QueryError::Invalid {
        pointer: p.0.clone(),
        message: message.to_owned(),
    }
}

fn missing(p: &Ptr, key: &str) -> QueryError {
    invalid(p, &format!("required property \"{key}\" is missing"))
}

fn object<'a>(v: &'a Value, p: &Ptr) -> Result<&'a Map<String, Value>, QueryError> {
    v.as_object().ok_or_else(|| invalid(p, "must be an object"))
}

fn array<'a>(v: &'a Value, p: &Ptr, min: usize) -> Result<&'a Vec<Value>, QueryError> {
    let a = v.as_array().ok_or_else(|| invalid(p, "must be an array"))?;
    if a.len() < min {
        return Err(invalid(p, &format!("must have at least {min} item(s)")));
    }
    Ok(a)
}

fn opt_string(o: &Map<String, Value>, p: &Ptr, key: &str) -> Result<Option<String>, QueryError> {
    match o.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(&p.key(key), "must be a string")),
    }
}

fn req_string(o: &Map<String, Value>, p: &Ptr, key: &str) -> Result<String, QueryError> {
    opt_string(o, p, key)?.ok_or_else(|| missing(p, key))
}

fn number(o: &Map<String, Value>, p: &Ptr, key: &str) -> Result<f64, QueryError> {
    match o.get(key) {
        None => Err(missing(p, key)),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .ok_or_else(|| invalid(&p.key(key), "must be a finite number")),
        Some(_) => Err(invalid(&p.key(key), "must be a number")),
    }
}

fn groups(v: &Value, p: &Ptr) -> Result<Vec<Vec<Criterion>>, QueryError> {
    array(v, p, 1)?
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let gp = p.index(i);
            array(g, &gp, 1)?
                .iter()
                .enumerate()
                .map(|(j, c)| criterion(c, &gp.index(j), true))
                .collect()
        })
        .collect()
}

fn term_code(v: &Value, p: &Ptr) -> Result<TermCode, QueryError> {
    let o = object(v, p)?;
    Ok(TermCode {
        code: req_string(o, p, "code")?,
        system: req_string(o, p, "system")?,
        version: opt_string(o, p, "version")?,
        display: req_string(o, p, "display")?,
    })
}

fn term_codes(v: &Value, p: &Ptr) -> Result<Vec<TermCode>, QueryError> {
    array(v, p, 1)?
        .iter()
        .enumerate()
        .map(|(i, t)| term_code(t, &p.index(i)))
        .collect()
}

fn criterion(v: &Value, p: &Ptr, allow_reference: bool) -> Result<Criterion, QueryError> {
    let o = object(v, p)?;
    let context = match o.get("context") {
        None => return Err(missing(p, "context")),
        Some(c) => term_code(c, &p.key("context"))?,
    };
    let codes = match o.get("termCodes") {
        None => return Err(missing(p, "termCodes")),
        Some(c) => term_codes(c, &p.key("termCodes"))?,
    };
    let value_filter = match o.get("valueFilter") {
        None => None,
        Some(f) => Some(filter(f, &p.key("valueFilter"), false)?),
    };
    let attribute_filters = match o.get("attributeFilters") {
        None => Vec::new(),
        Some(a) => {
            let ap = p.key("attributeFilters");
            array(a, &ap, 0)?
                .iter()
                .enumerate()
                .map(|(i, f)| attribute_filter(f, &ap.index(i), allow_reference))
                .collect::<Result<_, _>>()?
        }
    };
    let time_restriction = match o.get("timeRestriction") {
        None => None,
        Some(t) => Some(time_restriction(t, &p.key("timeRestriction"))?),
    };
    Ok(Criterion {
        context,
        term_codes: codes,
        value_filter,
        attribute_filters,
        time_restriction,
    })
}

fn unit(o: &Map<String, Value>, p: &Ptr) -> Result<Option<Unit>, QueryError> {
    match o.get("unit") {
        None => Ok(None),
        Some(u) => {
            let up = p.key("unit");
            let uo = object(u, &up)?;
            Ok(Some(Unit {
                code: req_string(uo, &up, "code")?,
                display: req_string(uo, &up, "display")?,
            }))
        }
    }
}

/// A value or attribute filter; `attribute` allows the `reference` kind.
fn filter(v: &Value, p: &Ptr, attribute: bool) -> Result<Filter, QueryError> {
    let o = object(v, p)?;
    let kind = match o.get("type") {
        None => return Err(missing(p, "type")),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(invalid(&p.key("type"), "must be a string")),
    };
    match kind {
        "concept" => {
            let sc = o
                .get("selectedConcepts")
                .ok_or_else(|| missing(p, "selectedConcepts"))?;
            Ok(Filter::Concept {
                selected_concepts: term_codes(sc, &p.key("selectedConcepts"))?,
            })
        }
        "quantity-comparator" => {
            let comparator = match o.get("comparator") {
                None => return Err(missing(p, "comparator")),
                Some(Value::String(s)) => Comparator::parse(s).ok_or_else(|| {
                    invalid(
                        &p.key("comparator"),
                        "must be one of gt, ge, lt, le, eq, ne",
                    )
                })?,
                Some(_) => return Err(invalid(&p.key("comparator"), "must be a string")),
            };
            Ok(Filter::Comparator {
                comparator,
                value: number(o, p, "value")?,
                unit: unit(o, p)?,
            })
        }
        "quantity-range" => Ok(Filter::Range {
            min_value: number(o, p, "minValue")?,
            max_value: number(o, p, "maxValue")?,
            unit: unit(o, p)?,
        }),
        "reference" if attribute => Ok(Filter::Reference {
            criteria: Vec::new(),
        }),
        _ => Err(invalid(
            &p.key("type"),
            if attribute {
                "must be one of concept, quantity-comparator, quantity-range, reference"
            } else {
                "must be one of concept, quantity-comparator, quantity-range"
            },
        )),
    }
}

fn attribute_filter(
    v: &Value,
    p: &Ptr,
    allow_reference: bool,
) -> Result<AttributeFilter, QueryError> {
    let o = object(v, p)?;
    if !allow_reference && o.get("type").and_then(Value::as_str) == Some("reference") {
        return Err(invalid(
            &p.key("type"),
            "a criterion inside a reference filter cannot have a reference filter",
        ));
    }
    let mut f = filter(v, p, true)?;
    if let Filter::Reference { criteria } = &mut f {
        let cp = p.key("criteria");
        let list = o.get("criteria").ok_or_else(|| missing(p, "criteria"))?;
        *criteria = array(list, &cp, 1)?
            .iter()
            .enumerate()
            .map(|(i, c)| criterion(c, &cp.index(i), false))
            .collect::<Result<_, _>>()?;
    }
    let attribute_code = match o.get("attributeCode") {
        None => return Err(missing(p, "attributeCode")),
        Some(a) => term_code(a, &p.key("attributeCode"))?,
    };
    Ok(AttributeFilter {
        attribute_code,
        filter: f,
    })
}

fn time_restriction(v: &Value, p: &Ptr) -> Result<TimeRestriction, QueryError> {
    let o = object(v, p)?;
    let after = opt_string(o, p, "afterDate")?;
    let before = opt_string(o, p, "beforeDate")?;
    if after.is_none() && before.is_none() {
        return Err(invalid(p, "needs afterDate or beforeDate"));
    }
    for (key, d) in [("afterDate", &after), ("beforeDate", &before)] {
        if let Some(d) = d
            && crate::date::parse_date(d).is_none()
        {
            return Err(invalid(&p.key(key), "must be a date (YYYY-MM-DD)"));
        }
    }
    Ok(TimeRestriction {
        after_date: after,
        before_date: before,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../data/ccdl/ccdl-all-properties.json");

    fn err(v: Value) -> (String, String) {
        match Ccdl::from_value(&v) {
            Err(QueryError::Invalid { pointer, message }) => (pointer, message),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn shipped_example_parses_and_round_trips() {
        let c = Ccdl::from_json(EXAMPLE).unwrap();
        assert_eq!(c.inclusion_criteria.len(), 4);
        assert_eq!(c.exclusion_criteria.len(), 3);
        let again = Ccdl::from_json(&c.to_json()).unwrap();
        assert_eq!(c, again);
        let Filter::Reference { criteria } =
            &c.inclusion_criteria[3][0].attribute_filters[0].filter
        else {
            panic!("reference filter expected")
        };
        assert_eq!(criteria.len(), 2);
    }

    #[test]
    fn violations_point_at_the_failing_part() {
        let base: Value = serde_json::from_str(EXAMPLE).unwrap();
        let mut v = base.clone();
        v["version"] = "3".into();
        assert_eq!(err(v).0, "/version");

        let mut v = base.clone();
        v.as_object_mut().unwrap().remove("inclusionCriteria");
        assert_eq!(err(v).0, "");

        let mut v = base.clone();
        v["inclusionCriteria"][1][0]["valueFilter"]
            .as_object_mut()
            .unwrap()
            .remove("value");
        let (ptr, msg) = err(v);
        assert_eq!(ptr, "/inclusionCriteria/1/0/valueFilter");
        assert!(msg.contains("value"), "{msg}");

        let mut v = base.clone();
        v["inclusionCriteria"][1][0]["valueFilter"]["comparator"] = "gte".into();
        assert_eq!(err(v).0, "/inclusionCriteria/1/0/valueFilter/comparator");

        let mut v = base.clone();
        v["inclusionCriteria"][2][1]["timeRestriction"]["afterDate"] = "2021-13-01".into();
        assert_eq!(err(v).0, "/inclusionCriteria/2/1/timeRestriction/afterDate");

        let mut v = base.clone();
        v["inclusionCriteria"][3][0]["attributeFilters"][0]["criteria"][0]["termCodes"][0]
            .as_object_mut()
            .unwrap()
            .remove("display");
        assert_eq!(
            err(v).0,
            "/inclusionCriteria/3/0/attributeFilters/0/criteria/0/termCodes/0"
        );

        let mut v = base.clone();
        v["inclusionCriteria"][3][0]["attributeFilters"][0]["criteria"][0]["attributeFilters"][0]
            ["type"] = "reference".into();
        assert_eq!(
            err(v).0,
            "/inclusionCriteria/3/0/attributeFilters/0/criteria/0/attributeFilters/0/type"
        );

        let mut v = base.clone();
        v["exclusionCriteria"][0] = Value::Array(vec![]);
        assert_eq!(err(v).0, "/exclusionCriteria/0");

        let mut v = base.clone();
        v["inclusionCriteria"][0][0]["termCodes"] = Value::Array(vec![]);
        assert_eq!(err(v).0, "/inclusionCriteria/0/0/termCodes");

        let mut v = base;
        v["inclusionCriteria"][0][0]["valueFilter"]["type"] = "reference".into();
        assert_eq!(err(v).0, "/inclusionCriteria/0/0/valueFilter/type");
    }
}
