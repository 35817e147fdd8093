//! Load time of the definitions, search-parameter compilation, and validator throughput over the
//! MII test resources. `cargo run --release -p medicus-fhir --example validate_throughput`

use std::time::{Duration, Instant};

use serde_json::Value;

fn main() {
    let start = Instant::now();
    let defs = medicus_fhir::r4();
    println!(
        "r4() first call (type table, search sources, compartment): {:.1} ms, {} resource types",
        start.elapsed().as_secs_f64() * 1e3,
        defs.resource_types().len()
    );

    let start = Instant::now();
    let (mut pairs, mut compiled) = (0usize, 0usize);
    for p in defs
        .resource_types()
        .iter()
        .flat_map(|t| defs.search_params(t))
    {
        pairs += 1;
        compiled += usize::from(p.expression.is_some());
    }
    println!(
        "search parameters compiled on first use in {:.1} ms: {pairs} (type, parameter) pairs, {compiled} with a \
         compiled expression, {} without (R4 gives _text, _content, _query none)",
        start.elapsed().as_secs_f64() * 1e3,
        pairs - compiled
    );

    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/reference/mii-kds-testdata"
    );
    let mut resources: Vec<Value> = Vec::new();
    let mut bytes = 0usize;
    for entry in std::fs::read_dir(dir).expect("MII test data") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("readable");
        let bundle: Value = serde_json::from_str(&text).expect("JSON");
        for e in bundle["entry"].as_array().expect("entries") {
            bytes += serde_json::to_string(&e["resource"]).map_or(0, |s| s.len());
            resources.push(e["resource"].clone());
        }
    }
    let mut count = 0usize;
    let mut issues = 0usize;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        for r in &resources {
            issues += medicus_fhir::validate(r).len();
        }
        count += resources.len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "validate: {count} resources (avg {} bytes) in {secs:.2} s: {:.0} resources/s, {issues} issues",
        bytes / resources.len(),
        count as f64 / secs
    );
}
