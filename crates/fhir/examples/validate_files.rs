//! Validate the resources in JSON files (single resources, or Bundles whose entries are validated one
//! by one) and print a summary of the issues: a quick way to check the validator on a corpus.
//! `cargo run -p medicus-fhir --example validate_files -- FILE...`

use std::collections::BTreeMap;

use serde_json::Value;

fn main() {
    let mut resources = 0usize;
    let mut by_message: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for path in std::env::args().skip(1) {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        let value: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        let entries: Vec<&Value> = match value["entry"].as_array() {
            Some(entries) if value["resourceType"] == "Bundle" => {
                entries.iter().map(|e| &e["resource"]).collect()
            }
            _ => vec![&value],
        };
        for resource in entries {
            resources += 1;
            for issue in medicus_fhir::validate(resource) {
                // Group by message and the expression without indexes.
                let mut expr = String::new();
                let mut in_index = false;
                for c in issue.expression.chars() {
                    match c {
                        '[' => in_index = true,
                        ']' => in_index = false,
                        _ if !in_index => expr.push(c),
                        _ => {}
                    }
                }
                let key = format!("{expr}: {}", issue.message);
                let example = format!(
                    "{}/{} {}",
                    resource["resourceType"], resource["id"], issue.expression
                );
                by_message.entry(key).or_insert((0, example)).0 += 1;
            }
        }
    }
    println!(
        "{resources} resources, {} distinct issues",
        by_message.len()
    );
    for (key, (count, example)) in &by_message {
        println!("{count:6} {key}   e.g. {example}");
    }
}
