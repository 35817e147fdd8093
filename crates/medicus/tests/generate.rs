//! `medicus generate` through the real binary: output files, determinism, bad configuration.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{TestDir, medicus};

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn writes_one_valid_ndjson_file_per_type_deterministically() {
    let dir = TestDir::new();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    for (out, seed) in [(&a, "7"), (&b, "7"), (&c, "8")] {
        let run = medicus(&[
            "generate",
            "--patients",
            "20",
            "--seed",
            seed,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let (fa, fb, fc) = (files(&a), files(&b), files(&c));
    assert_eq!(fa, fb, "same seed, same bytes");
    assert_ne!(fa, fc, "another seed, other data");
    for name in [
        "Patient.ndjson",
        "Condition.ndjson",
        "Observation.ndjson",
        "Consent.ndjson",
        "Organization.ndjson",
    ] {
        assert!(fa.contains_key(name), "missing {name}");
    }
    let patients = String::from_utf8(fa["Patient.ndjson"].clone()).unwrap();
    assert_eq!(patients.lines().count(), 20);
    for (name, bytes) in &fa {
        let ty = name.trim_end_matches(".ndjson");
        for line in String::from_utf8(bytes.clone()).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["resourceType"], ty);
        }
    }
}

#[test]
fn rejects_bad_configuration_with_exit_code_2() {
    let dir = TestDir::new();
    let out = dir.path().join("x");
    let run = medicus(&[
        "generate",
        "--patients",
        "5",
        "--hospitals",
        "0",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("hospitals"));
}
