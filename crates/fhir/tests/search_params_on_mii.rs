//! The compiled search parameters, evaluated with the R4 model over the real MII resources: every
//! expression evaluates without error, and the well-known ones find what they should.

use std::collections::BTreeMap;

use medicus_fhir::{SearchParamType, r4};
use medicus_fhirpath::{Env, Item, Model};
use serde_json::Value;

fn mii_resources() -> Vec<Value> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/reference/mii-kds-testdata"
    );
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("MII test data") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let bundle: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("readable")).expect("JSON");
        for e in bundle["entry"].as_array().expect("entries") {
            out.push(e["resource"].clone());
        }
    }
    out
}

#[test]
fn every_search_parameter_compiles() {
    let d = r4();
    let mut missing = Vec::new();
    for &rt in d.resource_types() {
        for p in d.search_params(rt) {
            if p.expression.is_none()
                && !matches!(p.code, "_text" | "_content" | "_query" | "_list" | "_has")
            {
                missing.push(format!("{rt}.{}", p.code));
            }
            if p.kind == SearchParamType::Composite {
                assert!(
                    !p.components.is_empty(),
                    "{rt}.{} has no components",
                    p.code
                );
            }
        }
    }
    assert!(missing.is_empty(), "not compiled: {missing:?}");
}

#[test]
fn search_expressions_evaluate_on_mii_data() {
    let d = r4();
    let env = Env {
        model: Some(d as &dyn Model),
    };
    let mut errors = Vec::new();
    let mut hits: BTreeMap<String, usize> = BTreeMap::new();
    for resource in mii_resources() {
        let rt = resource["resourceType"].as_str().expect("resourceType");
        for p in d.search_params(rt) {
            let Some(expression) = &p.expression else {
                continue;
            };
            match expression.evaluate(&resource, &env) {
                Ok(items) => {
                    if !items.is_empty() {
                        *hits.entry(format!("{rt}.{}", p.code)).or_default() += 1;
                    }
                    for item in &items {
                        if let Item::Node(node) = item
                            && p.kind == SearchParamType::Composite
                        {
                            for c in &p.components {
                                let root = node.value;
                                if let Err(e) = c.expression.evaluate(root, &env) {
                                    errors
                                        .push(format!("{rt}.{} component {}: {e}", p.code, c.code));
                                }
                            }
                        }
                    }
                }
                Err(e) => errors.push(format!("{rt}.{} `{}`: {e}", p.code, expression.source())),
            }
        }
    }
    errors.sort();
    errors.dedup();
    assert!(
        errors.is_empty(),
        "{} errors:\n{}",
        errors.len(),
        errors.join("\n")
    );
    for key in [
        "Patient._id",
        "Patient.birthdate",
        "Patient.identifier",
        "Observation.subject",
        "Observation.patient",
        "Observation.code",
        "Observation.date",
        "Condition.code",
        "Condition.subject",
        "Encounter.subject",
        "Procedure.code",
        "MedicationStatement.subject",
    ] {
        assert!(
            hits.get(key).copied().unwrap_or(0) > 0,
            "{key} found nothing; hits: {hits:?}"
        );
    }
}

#[test]
fn typed_nodes_come_from_the_model() {
    let d = r4();
    let env = Env {
        model: Some(d as &dyn Model),
    };
    let obs = mii_resources()
        .into_iter()
        .find(|r| r["resourceType"] == "Observation" && r.get("valueQuantity").is_some())
        .expect("an MII Observation with valueQuantity");
    let value = d
        .search_param("Observation", "value-quantity")
        .expect("value-quantity");
    let items = value
        .expression
        .as_ref()
        .expect("compiled")
        .evaluate(&obs, &env)
        .expect("evaluates");
    assert!(
        items
            .iter()
            .any(|i| matches!(i, Item::Node(n) if n.type_name == Some("Quantity"))),
        "{items:?}"
    );
    let subject = d.search_param("Observation", "subject").expect("subject");
    let items = subject
        .expression
        .as_ref()
        .expect("compiled")
        .evaluate(&obs, &env)
        .expect("evaluates");
    assert!(
        items
            .iter()
            .any(|i| matches!(i, Item::Node(n) if n.type_name == Some("Reference"))),
        "{items:?}"
    );
}

#[test]
fn patient_compartment_params_find_the_patient() {
    let d = r4();
    let env = Env {
        model: Some(d as &dyn Model),
    };
    let mut checked = 0;
    for resource in mii_resources() {
        let rt = resource["resourceType"].as_str().expect("resourceType");
        if !matches!(
            rt,
            "Observation"
                | "Condition"
                | "Encounter"
                | "Procedure"
                | "MedicationStatement"
                | "Consent"
        ) {
            continue;
        }
        let mut references = Vec::new();
        for code in d.patient_compartment_params(rt) {
            let p = d
                .search_param(rt, code)
                .unwrap_or_else(|| panic!("{rt}.{code} is a search parameter"));
            let items = p
                .expression
                .as_ref()
                .expect("compiled")
                .evaluate(&resource, &env)
                .expect("evaluates");
            for item in items {
                if let Item::Node(n) = item
                    && let Some(r) = n.value.get("reference").and_then(Value::as_str)
                {
                    references.push(r.to_owned());
                }
            }
        }
        assert!(
            references.iter().any(|r| r.starts_with("Patient/")),
            "{rt}/{}: {references:?}",
            resource["id"]
        );
        checked += 1;
    }
    assert!(checked > 100, "{checked}");
}

#[test]
fn composite_components_evaluate_against_the_composite_node() {
    let d = r4();
    let env = Env {
        model: Some(d as &dyn Model),
    };
    let obs = serde_json::json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "1-1"}]},
        "valueDateTime": "2020-01-02"
    });
    let p = d
        .search_param("Observation", "code-value-date")
        .expect("code-value-date");
    let nodes = p
        .expression
        .as_ref()
        .expect("compiled")
        .evaluate(&obs, &env)
        .expect("evaluates");
    assert_eq!(nodes.len(), 1);
    let Item::Node(node) = &nodes[0] else {
        panic!("{nodes:?}")
    };
    let values = p.components[1]
        .expression
        .evaluate(node.value, &env)
        .expect("evaluates");
    assert_eq!(
        values.len(),
        1,
        "{}: {values:?}",
        p.components[1].expression.source()
    );
}
