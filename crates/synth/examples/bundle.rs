//! Prints transaction Bundles for posting with curl:
//! `cargo run -p medicus-synth --example bundle -- reference` (Organizations and Medications), or
//! `cargo run -p medicus-synth --example bundle -- patients FROM TO [SEED]` (patients FROM..TO).

use medicus_synth::{Generator, GeneratorConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let seed: u64 = args.get(4).map_or(Ok(42), |s| s.parse())?;
    let generator = Generator::new(GeneratorConfig {
        seed,
        hospitals: 5,
        ..Default::default()
    })?;
    match args.get(1).map(String::as_str) {
        Some("reference") => println!(
            "{}",
            Generator::transaction_json(&generator.reference_resources())
        ),
        Some("patients") => {
            let from: u64 = args.get(2).map_or(Ok(0), |s| s.parse())?;
            let to: u64 = args.get(3).map_or(Ok(from + 1), |s| s.parse())?;
            println!("{}", generator.patients_bundle_json(from..to));
        }
        _ => return Err("usage: bundle reference | bundle patients FROM TO [SEED]".into()),
    }
    Ok(())
}
