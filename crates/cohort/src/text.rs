//! The short text form of a cohort query, for the command line and tests. It compiles to a CCDL
//! document, so both forms run the same plan.
//!
//! ```text
//! query   := clause ( AND clause )*
//! clause  := NOT exclude | include
//! include := atom | "(" atom ( OR atom )* ")"        an inclusion group (OR)
//! exclude := atom | "(" atom ( AND atom )* ")"       an exclusion group (AND)
//! atom    := "gender:" word ( "," word )*
//!          | "age" number-filter
//!          | prefix ":" code [ number-filter ] [ "@" [date] ".." [date] ]
//! prefix  := icd | ops | loinc | atc | consent
//! number-filter := ( ">" | ">=" | "<" | "<=" | "=" | "!=" ) number [ "[" unit "]" ]
//!                | "=" number ".." number [ "[" unit "]" ]
//! ```
//! A trailing `*` on a code selects every code starting with it (ICD-10-GM, OPS and ATC codes
//! include their children anyway). `consent:8` is short for the MII policy code `…5.3.8`.
//! Example: `icd:E11 AND loinc:4548-4>7.5[%] AND NOT atc:A10A*`.

use crate::ccdl::{Ccdl, Comparator, Criterion, Filter, TermCode, TimeRestriction, Unit};
use crate::error::QueryError;
use crate::plan::{AGE_CODE, ATC, CONSENT_POLICY, CONTEXT_SYSTEM, ICD10GM, LOINC, OPS};

const CONSENT_OID: &str = "2.16.840.1.113883.3.1937.777.24.5.3";

/// (prefix, context, system).
const PREFIXES: &[(&str, &str, &str)] = &[
    ("icd", "Diagnose", ICD10GM),
    ("ops", "Prozedur", OPS),
    ("loinc", "Laboruntersuchung", LOINC),
    ("atc", "Medikation", ATC),
    ("consent", "Einwilligung", CONSENT_POLICY),
];

struct P<'a> {
    s: &'a str,
    i: usize,
}

fn err(at: usize, msg: &str) -> QueryError {
    QueryError::Syntax {
        message: format!("at character {at}: {msg}"),
    }
}

fn is_code_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '*')
}

impl<'a> P<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.i..]
    }
    fn ws(&mut self) {
        let t = self.rest().trim_start();
        self.i = self.s.len() - t.len();
    }
    fn eat(&mut self, tok: &str) -> bool {
        if self.rest().starts_with(tok) {
            self.i += tok.len();
            true
        } else {
            false
        }
    }
    /// A keyword followed by a space or an opening parenthesis.
    fn keyword(&mut self, kw: &str) -> bool {
        self.ws();
        let r = self.rest();
        if r.len() >= kw.len()
            && r.is_char_boundary(kw.len())
            && r[..kw.len()].eq_ignore_ascii_case(kw)
            && r[kw.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_whitespace() || c == '(')
        {
            self.i += kw.len();
            true
        } else {
            false
        }
    }
    fn word(&mut self, what: &str) -> Result<&'a str, QueryError> {
        let r = self.rest();
        let n = r.find(|c: char| !is_code_char(c)).unwrap_or(r.len());
        if n == 0 {
            return Err(err(self.i, &format!("expected {what}")));
        }
        self.i += n;
        Ok(&r[..n])
    }
    fn number(&mut self) -> Result<f64, QueryError> {
        let r = self.rest();
        let b = r.as_bytes();
        let mut n = 0;
        if n < b.len() && (b[n] == b'-' || b[n] == b'+') {
            n += 1;
        }
        let digits_start = n;
        while n < b.len() && b[n].is_ascii_digit() {
            n += 1;
        }
        // A '.' belongs to the number only when a digit follows ("5..7" is a range).
        if n + 1 < b.len() && b[n] == b'.' && b[n + 1].is_ascii_digit() {
            n += 1;
            while n < b.len() && b[n].is_ascii_digit() {
                n += 1;
            }
        }
        if n == digits_start {
            return Err(err(self.i, "expected a number"));
        }
        let v: f64 = r[..n]
            .parse()
            .map_err(|_| err(self.i, "expected a number"))?;
        self.i += n;
        Ok(v)
    }
    fn unit(&mut self) -> Result<Option<Unit>, QueryError> {
        if !self.eat("[") {
            return Ok(None);
        }
        let r = self.rest();
        let n = r.find(']').ok_or_else(|| err(self.i, "unclosed unit"))?;
        let code = &r[..n];
        self.i += n + 1;
        Ok(Some(Unit {
            code: code.to_owned(),
            display: code.to_owned(),
        }))
    }
    fn number_filter(&mut self) -> Result<Option<Filter>, QueryError> {
        let cmp = if self.eat(">=") {
            Comparator::Ge
        } else if self.eat("<=") {
            Comparator::Le
        } else if self.eat("!=") {
            Comparator::Ne
        } else if self.eat(">") {
            Comparator::Gt
        } else if self.eat("<") {
            Comparator::Lt
        } else if self.eat("=") {
            Comparator::Eq
        } else {
            return Ok(None);
        };
        let v = self.number()?;
        if cmp == Comparator::Eq && self.eat("..") {
            let hi = self.number()?;
            return Ok(Some(Filter::Range {
                min_value: v,
                max_value: hi,
                unit: self.unit()?,
            }));
        }
        Ok(Some(Filter::Comparator {
            comparator: cmp,
            value: v,
            unit: self.unit()?,
        }))
    }
    fn date(&mut self) -> Result<Option<String>, QueryError> {
        let r = self.rest();
        if let Some(d) = r
            .get(..10)
            .filter(|d| d.starts_with(|c: char| c.is_ascii_digit()))
        {
            if crate::date::parse_date(d).is_none() {
                return Err(err(self.i, "expected a date YYYY-MM-DD"));
            }
            self.i += 10;
            return Ok(Some(d.to_owned()));
        }
        Ok(None)
    }

    fn atom(&mut self) -> Result<Criterion, QueryError> {
        self.ws();
        let start = self.i;
        let r = self.rest();
        let name_len = r
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(r.len());
        let name = r[..name_len].to_ascii_lowercase();
        self.i += name_len;
        let patient = TermCode {
            code: "Patient".into(),
            system: CONTEXT_SYSTEM.into(),
            version: None,
            display: "Patient".into(),
        };
        if name == "gender" {
            if !self.eat(":") {
                return Err(err(self.i, "expected ':' after gender"));
            }
            let mut concepts = Vec::new();
            loop {
                let w = self.word("a gender")?;
                concepts.push(TermCode {
                    code: w.to_owned(),
                    system: String::new(),
                    version: None,
                    display: w.to_owned(),
                });
                if !self.eat(",") {
                    break;
                }
            }
            return Ok(Criterion {
                context: patient,
                term_codes: vec![TermCode::new(LOINC, "LL2191-6")],
                value_filter: Some(Filter::Concept {
                    selected_concepts: concepts,
                }),
                attribute_filters: Vec::new(),
                time_restriction: None,
            });
        }
        if name == "age" {
            let f = self
                .number_filter()?
                .ok_or_else(|| err(self.i, "expected a comparison after age"))?;
            return Ok(Criterion {
                context: patient,
                term_codes: vec![TermCode::new(LOINC, AGE_CODE)],
                value_filter: Some(f),
                attribute_filters: Vec::new(),
                time_restriction: None,
            });
        }
        let Some(&(_, ctx, system)) = PREFIXES.iter().find(|p| p.0 == name) else {
            return Err(err(
                start,
                "expected gender:, age, or a code prefix (icd, ops, loinc, atc, consent)",
            ));
        };
        if !self.eat(":") {
            return Err(err(self.i, "expected ':' after the prefix"));
        }
        let mut code = self.word("a code")?.to_owned();
        if name == "consent" && code.bytes().all(|b| b.is_ascii_digit()) {
            code = format!("{CONSENT_OID}.{code}");
        }
        let value_filter = self.number_filter()?;
        let time_restriction = if self.eat("@") {
            let after = self.date()?;
            if !self.eat("..") {
                return Err(err(self.i, "expected '..' in a time window"));
            }
            let before = self.date()?;
            if after.is_none() && before.is_none() {
                return Err(err(self.i, "a time window needs a date"));
            }
            Some(TimeRestriction {
                after_date: after,
                before_date: before,
            })
        } else {
            None
        };
        Ok(Criterion {
            context: TermCode {
                code: ctx.into(),
                system: CONTEXT_SYSTEM.into(),
                version: None,
                display: ctx.into(),
            },
            term_codes: vec![TermCode::new(system, &code)],
            value_filter,
            attribute_filters: Vec::new(),
            time_restriction,
        })
    }

    /// An atom, or a parenthesised list of atoms joined by `joiner`.
    fn group(&mut self, joiner: &str) -> Result<Vec<Criterion>, QueryError> {
        self.ws();
        if !self.eat("(") {
            return Ok(vec![self.atom()?]);
        }
        let mut out = vec![self.atom()?];
        loop {
            self.ws();
            if self.eat(")") {
                return Ok(out);
            }
            if !self.keyword(joiner) {
                return Err(err(self.i, &format!("expected {joiner} or ')'")));
            }
            out.push(self.atom()?);
        }
    }
}

/// Parses the text form into a CCDL document.
pub fn parse(input: &str) -> Result<Ccdl, QueryError> {
    if input.len() > 64 * 1024 {
        return Err(err(0, "query too long"));
    }
    let mut p = P { s: input, i: 0 };
    let mut inclusion = Vec::new();
    let mut exclusion = Vec::new();
    loop {
        if p.keyword("NOT") {
            exclusion.push(p.group("AND")?);
        } else {
            inclusion.push(p.group("OR")?);
        }
        p.ws();
        if p.rest().is_empty() {
            break;
        }
        if !p.keyword("AND") {
            return Err(err(p.i, "expected AND"));
        }
    }
    if inclusion.is_empty() {
        return Err(err(
            0,
            "a query needs at least one criterion that is not negated",
        ));
    }
    Ok(Ccdl {
        version: "2".into(),
        display: None,
        inclusion_criteria: inclusion,
        exclusion_criteria: exclusion,
    })
}

fn fmt_num(v: f64) -> String {
    format!("{v}")
}

fn render_filter(f: &Filter) -> Option<String> {
    let unit = |u: &Option<Unit>| {
        u.as_ref()
            .map(|u| format!("[{}]", u.code))
            .unwrap_or_default()
    };
    match f {
        Filter::Comparator {
            comparator,
            value,
            unit: u,
        } => {
            let op = match comparator {
                Comparator::Gt => ">",
                Comparator::Ge => ">=",
                Comparator::Lt => "<",
                Comparator::Le => "<=",
                Comparator::Eq => "=",
                Comparator::Ne => "!=",
            };
            Some(format!("{op}{}{}", fmt_num(*value), unit(u)))
        }
        Filter::Range {
            min_value,
            max_value,
            unit: u,
        } => Some(format!(
            "={}..{}{}",
            fmt_num(*min_value),
            fmt_num(*max_value),
            unit(u)
        )),
        _ => None,
    }
}

fn render_atom(c: &Criterion) -> Option<String> {
    let t = c.term_codes.first()?;
    if c.term_codes.len() != 1 || !c.attribute_filters.is_empty() {
        return None;
    }
    if c.context.code == "Patient" {
        return match (t.code.as_str(), &c.value_filter) {
            ("LL2191-6", Some(Filter::Concept { selected_concepts })) => Some(format!(
                "gender:{}",
                selected_concepts
                    .iter()
                    .map(|s| s.code.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            )),
            (AGE_CODE, Some(f)) => Some(format!("age{}", render_filter(f)?)),
            _ => None,
        };
    }
    let (prefix, _, _) = PREFIXES
        .iter()
        .find(|p| p.1 == c.context.code && p.2 == t.system)?;
    let mut out = format!("{prefix}:{}", t.code);
    if let Some(f) = &c.value_filter {
        out.push_str(&render_filter(f)?);
    }
    if let Some(tr) = &c.time_restriction {
        out.push('@');
        out.push_str(tr.after_date.as_deref().unwrap_or(""));
        out.push_str("..");
        out.push_str(tr.before_date.as_deref().unwrap_or(""));
    }
    Some(out)
}

/// The text form of a document, when it has one (single codes, no attribute filters).
pub fn render(c: &Ccdl) -> Option<String> {
    let group = |g: &[Criterion], joiner: &str| -> Option<String> {
        let atoms: Option<Vec<String>> = g.iter().map(render_atom).collect();
        let atoms = atoms?;
        Some(if atoms.len() == 1 {
            atoms[0].clone()
        } else {
            format!("({})", atoms.join(&format!(" {joiner} ")))
        })
    };
    let mut parts = Vec::new();
    for g in &c.inclusion_criteria {
        parts.push(group(g, "OR")?);
    }
    for g in &c.exclusion_criteria {
        parts.push(format!("NOT {}", group(g, "AND")?));
    }
    Some(parts.join(" AND "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Crit, compile};
    use proptest::prelude::*;

    #[test]
    fn the_issue_example_compiles_like_its_ccdl() {
        let text = parse("icd:E11 AND loinc:4548-4>7.5 AND NOT atc:A10A*").unwrap();
        let json = r#"{"version":"2","inclusionCriteria":[
            [{"context":{"code":"Diagnose","system":"fdpg.mii.cds","display":"Diagnose"},
              "termCodes":[{"code":"E11","system":"http://fhir.de/CodeSystem/dimdi/icd-10-gm","display":"x"}]}],
            [{"context":{"code":"Laboruntersuchung","system":"fdpg.mii.cds","display":"L"},
              "termCodes":[{"code":"4548-4","system":"http://loinc.org","display":"HbA1c"}],
              "valueFilter":{"type":"quantity-comparator","comparator":"gt","value":7.5}}]],
          "exclusionCriteria":[[{"context":{"code":"Medikation","system":"fdpg.mii.cds","display":"M"},
              "termCodes":[{"code":"A10A*","system":"http://www.whocc.no/atc","display":"Insulin"}]}]]}"#;
        let a = compile(&text).unwrap();
        let b = compile(&Ccdl::from_json(json).unwrap()).unwrap();
        assert_eq!(a, b);
        assert!(
            matches!(&a.exclude[0][0], Crit::Facts(f) if f.codes[0].prefix && f.codes[0].code == "A10A")
        );
    }

    #[test]
    fn errors_name_the_position() {
        for bad in [
            "",
            "icd:",
            "foo:E11",
            "icd:E11 AND",
            "icd:E11 OR ops:5-01",
            "(icd:E11 AND ops:5-01)",
            "NOT icd:E11",
            "loinc:4548-4>",
            "loinc:4548-4>7.5[%",
            "icd:E11@2020-13-01..",
            "icd:E11@..",
            "age",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    fn code() -> impl Strategy<Value = String> {
        "[A-Z][0-9]{2}(\\.[0-9]{1,2})?\\*?"
    }

    fn date() -> impl Strategy<Value = String> {
        (1990i32..2030, 1u32..13, 1u32..29).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}"))
    }

    fn num() -> impl Strategy<Value = f64> {
        prop_oneof![
            (-1000i32..1000).prop_map(f64::from),
            (0u32..100000).prop_map(|v| f64::from(v) / 100.0)
        ]
    }

    fn unit() -> impl Strategy<Value = Option<Unit>> {
        prop::option::of(
            prop::sample::select(vec!["%", "mg/dL", "10*3/uL", "mmol/L"]).prop_map(|u| Unit {
                code: u.into(),
                display: u.into(),
            }),
        )
    }

    fn filter() -> impl Strategy<Value = Filter> {
        prop_oneof![
            (
                prop::sample::select(vec![
                    Comparator::Gt,
                    Comparator::Ge,
                    Comparator::Lt,
                    Comparator::Le,
                    Comparator::Eq,
                    Comparator::Ne
                ]),
                num(),
                unit()
            )
                .prop_map(|(comparator, value, unit)| Filter::Comparator {
                    comparator,
                    value,
                    unit
                }),
            (num(), num(), unit()).prop_map(|(a, b, unit)| Filter::Range {
                min_value: a,
                max_value: b,
                unit
            }),
        ]
    }

    fn criterion() -> impl Strategy<Value = Criterion> {
        let ctx = |c: &str| TermCode {
            code: c.into(),
            system: CONTEXT_SYSTEM.into(),
            version: None,
            display: c.into(),
        };
        fn tr() -> impl Strategy<Value = TimeRestriction> {
            (prop::option::of(date()), prop::option::of(date()))
                .prop_filter("one date", |(a, b)| a.is_some() || b.is_some())
                .prop_map(|(a, b)| TimeRestriction {
                    after_date: a,
                    before_date: b,
                })
        }
        let icd = (code(), prop::option::of(tr())).prop_map(move |(c, t): (String, _)| Criterion {
            context: ctx("Diagnose"),
            term_codes: vec![TermCode::new(ICD10GM, &c)],
            value_filter: None,
            attribute_filters: vec![],
            time_restriction: t,
        });
        let lab = (
            "[0-9]{3,5}-[0-9]",
            prop::option::of(filter()),
            prop::option::of(tr()),
        )
            .prop_map(move |(c, f, t): (String, _, _)| Criterion {
                context: ctx("Laboruntersuchung"),
                term_codes: vec![TermCode::new(LOINC, &c)],
                value_filter: f,
                attribute_filters: vec![],
                time_restriction: t,
            });
        let gender =
            prop::collection::vec(prop::sample::select(vec!["F", "M", "female", "D"]), 1..3)
                .prop_map(move |gs| Criterion {
                    context: ctx("Patient"),
                    term_codes: vec![TermCode::new(LOINC, "LL2191-6")],
                    value_filter: Some(Filter::Concept {
                        selected_concepts: gs
                            .into_iter()
                            .map(|g| TermCode {
                                code: g.into(),
                                system: String::new(),
                                version: None,
                                display: g.into(),
                            })
                            .collect(),
                    }),
                    attribute_filters: vec![],
                    time_restriction: None,
                });
        let age = filter().prop_map(move |f| Criterion {
            context: ctx("Patient"),
            term_codes: vec![TermCode::new(LOINC, AGE_CODE)],
            value_filter: Some(f),
            attribute_filters: vec![],
            time_restriction: None,
        });
        prop_oneof![icd, lab, gender, age]
    }

    fn ccdl() -> impl Strategy<Value = Ccdl> {
        (
            prop::collection::vec(prop::collection::vec(criterion(), 1..4), 1..4),
            prop::collection::vec(prop::collection::vec(criterion(), 1..3), 0..3),
        )
            .prop_map(|(i, e)| Ccdl {
                version: "2".into(),
                display: None,
                inclusion_criteria: i,
                exclusion_criteria: e,
            })
    }

    proptest! {
        #[test]
        fn text_round_trips(c in ccdl()) {
            let text = render(&c).expect("renderable");
            let back = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(&back, &c, "{}", text);
            // And the CCDL JSON of the parsed text validates and reads back the same.
            prop_assert_eq!(Ccdl::from_json(&back.to_json()).unwrap(), c);
        }

        #[test]
        fn arbitrary_text_never_panics(s in ".{0,80}") {
            let _ = parse(&s);
        }

        #[test]
        fn dates_with_wide_characters_never_panic(s in "icd:E11@20[0-9é€-]{0,12}") {
            let _ = parse(&s);
        }

        #[test]
        fn near_miss_text_never_panics(s in "(icd|loinc|age|gender|NOT|AND|OR|[()<>=!.@\\[\\]:,*0-9 -]){0,30}") {
            let _ = parse(&s);
        }
    }
}
