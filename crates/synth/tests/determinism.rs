//! Same seed, same bytes; other seed, other data; a patient never depends on order or thread count.

use std::path::Path;

use medicus_synth::{Generator, GeneratorConfig, write_ndjson};

fn read_all(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn config(seed: u64, threads: usize) -> GeneratorConfig {
    GeneratorConfig {
        patients: 150,
        hospitals: 3,
        seed,
        threads,
        ..Default::default()
    }
}

#[test]
fn same_seed_gives_identical_files_for_any_thread_count() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let mut calls = 0;
    let sa = write_ndjson(&config(5, 1), a.path(), |_| calls += 1).unwrap();
    let sb = write_ndjson(&config(5, 3), b.path(), |_| {}).unwrap();
    write_ndjson(&config(6, 2), c.path(), |_| {}).unwrap();
    assert!(calls > 0, "progress was never reported");
    assert_eq!(sa, sb.with_files(sa.files.clone()));
    let fa = read_all(a.path());
    assert_eq!(fa.len(), 11);
    assert_eq!(fa, read_all(b.path()));
    assert_ne!(fa, read_all(c.path()));
    // Every line is one JSON resource.
    for (name, bytes) in &fa {
        for line in std::str::from_utf8(bytes).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(
                format!("{}.ndjson", v["resourceType"].as_str().unwrap()),
                *name
            );
        }
    }
}

/// Tiny helper so the comparison above ignores the (different) output paths.
trait WithFiles {
    fn with_files(self, files: Vec<std::path::PathBuf>) -> Self;
}
use medicus_synth::Summary;
impl WithFiles for Summary {
    fn with_files(mut self, files: Vec<std::path::PathBuf>) -> Self {
        self.files = files;
        self
    }
}

#[test]
fn patient_is_independent_of_order_and_slicing() {
    let generator = Generator::new(config(9, 0)).unwrap();
    let forward: Vec<_> = (0..20).map(|i| generator.patient(i)).collect();
    let backward: Vec<_> = (0..20).rev().map(|i| generator.patient(i)).collect();
    for (f, b) in forward.iter().zip(backward.iter().rev()) {
        assert_eq!(f, b);
    }
    let on_threads: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let g = &generator;
                s.spawn(move || g.patient(i))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(forward, on_threads);

    // A slice starting at 10 writes exactly patients 10.. of the full run.
    let full = tempfile::tempdir().unwrap();
    let tail = tempfile::tempdir().unwrap();
    write_ndjson(
        &GeneratorConfig {
            patients: 20,
            ..config(9, 2)
        },
        full.path(),
        |_| {},
    )
    .unwrap();
    write_ndjson(
        &GeneratorConfig {
            patients: 10,
            start_patient: 10,
            ..config(9, 2)
        },
        tail.path(),
        |_| {},
    )
    .unwrap();
    let full_patients = std::fs::read_to_string(full.path().join("Patient.ndjson")).unwrap();
    let tail_patients = std::fs::read_to_string(tail.path().join("Patient.ndjson")).unwrap();
    let expected: Vec<&str> = full_patients.lines().skip(10).collect();
    assert_eq!(expected, tail_patients.lines().collect::<Vec<_>>());
}

#[test]
fn different_seeds_differ_and_bad_config_is_an_error() {
    let a = Generator::new(config(1, 0)).unwrap().patient(0);
    let b = Generator::new(config(2, 0)).unwrap().patient(0);
    assert_ne!(a, b);
    let err = write_ndjson(
        &GeneratorConfig {
            hospitals: 0,
            ..config(1, 0)
        },
        Path::new("/nonexistent/never-written"),
        |_| {},
    );
    assert!(matches!(
        err,
        Err(medicus_synth::SynthError::InvalidConfig(_))
    ));
    let file = tempfile::NamedTempFile::new().unwrap();
    let err = write_ndjson(&config(1, 0), &file.path().join("sub"), |_| {});
    assert!(matches!(err, Err(medicus_synth::SynthError::Io { .. })));
}
