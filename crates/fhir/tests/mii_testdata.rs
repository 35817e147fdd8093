//! Every resource of the 22 MII core data set test Bundles (real, valid MII data) must validate
//! without errors, and so must the Bundles themselves.

use std::path::PathBuf;

use serde_json::Value;

fn testdata_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/reference/mii-kds-testdata"
    ))
}

fn bundles() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let dir = testdata_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).expect("readable test bundle");
            let value: Value = serde_json::from_str(&text).expect("test bundle is JSON");
            out.push((
                path.file_name().unwrap().to_string_lossy().into_owned(),
                value,
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn all_mii_resources_validate_without_errors() {
    let bundles = bundles();
    assert_eq!(bundles.len(), 22, "expected the 22 MII test bundles");
    let mut resources = 0;
    let mut failures = Vec::new();
    for (name, bundle) in &bundles {
        for issue in medicus_fhir::validate(bundle) {
            failures.push(format!(
                "{name}: bundle: {} {}",
                issue.expression, issue.message
            ));
        }
        for entry in bundle["entry"].as_array().expect("bundle entries") {
            let resource = &entry["resource"];
            resources += 1;
            for issue in medicus_fhir::validate(resource) {
                failures.push(format!(
                    "{name}: {}/{}: {} {}",
                    resource["resourceType"].as_str().unwrap_or("?"),
                    resource["id"].as_str().unwrap_or("?"),
                    issue.expression,
                    issue.message
                ));
            }
        }
    }
    assert!(resources > 700, "only {resources} resources");
    assert!(
        failures.is_empty(),
        "{} issues:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
