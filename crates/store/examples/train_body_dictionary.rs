//! Trains the zstd dictionary for resource bodies from synthetic MII-shaped resources and writes
//! it to `crates/store/data/body.zdict` (committed). Re-run when the body format changes:
//! `cargo run --release -p medicus-store --example train_body_dictionary`
//!
//! It also prints the compressed size per resource with and without the dictionary on resources
//! that were not part of the training sample.

use medicus_synth::{Generator, GeneratorConfig};

const DICT_BYTES: usize = 112 * 1024;

fn sample(seed: u64, patients: u64) -> Vec<Vec<u8>> {
    let config = GeneratorConfig {
        patients,
        seed,
        ..GeneratorConfig::default()
    };
    let generator = Generator::new(config).expect("generator");
    let mut out: Vec<Vec<u8>> = generator
        .organizations()
        .iter()
        .map(|v| v.to_string().into_bytes())
        .collect();
    for i in 0..patients {
        for r in generator.patient(i).resources {
            out.push(r.json.into_bytes());
        }
    }
    out
}

fn mii_resources() -> Vec<Vec<u8>> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/reference/mii-kds-testdata"
    );
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        let Ok(bundle) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            out.push(entry["resource"].to_string().into_bytes());
        }
    }
    out
}

fn mean_size(samples: &[Vec<u8>], mut compress: impl FnMut(&[u8]) -> usize) -> f64 {
    samples.iter().map(|s| compress(s) as f64).sum::<f64>() / samples.len() as f64
}

fn main() {
    let training = sample(7, 600);
    let dict = zstd::dict::from_samples(&training, DICT_BYTES).expect("train");
    let held_out = sample(99, 100);
    let plain = mean_size(&held_out, |s| {
        zstd::bulk::compress(s, 3).map_or(0, |c| c.len())
    });
    let mut with_dict = zstd::bulk::Compressor::with_dictionary(3, &dict).expect("compressor");
    let dict_size = mean_size(&held_out, |s| with_dict.compress(s).map_or(0, |c| c.len()));
    let json = mean_size(&held_out, <[u8]>::len);
    // Real MII test data from another generator: the honest check of how the dictionary generalises.
    let mii = mii_resources();
    if !mii.is_empty() {
        let plain = mean_size(&mii, |s| zstd::bulk::compress(s, 3).map_or(0, |c| c.len()));
        let dict_size = mean_size(&mii, |s| with_dict.compress(s).map_or(0, |c| c.len()));
        let json = mean_size(&mii, <[u8]>::len);
        println!(
            "MII test data ({} resources): mean JSON {json:.0} B, zstd {plain:.0} B, zstd+dictionary {dict_size:.0} B",
            mii.len()
        );
    }
    println!(
        "resources: {} training, {} held out",
        training.len(),
        held_out.len()
    );
    println!("mean JSON {json:.0} B, zstd {plain:.0} B, zstd+dictionary {dict_size:.0} B");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/body.zdict");
    std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/data")).expect("data dir");
    std::fs::write(path, &dict).expect("write dictionary");
    println!("wrote {} ({} bytes)", path, dict.len());
}
