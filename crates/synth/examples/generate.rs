//! `cargo run --release -p medicus-synth --example generate -- PATIENTS OUT_DIR [SEED] [THREADS]`:
//! writes NDJSON and reports throughput (until the CLI's `medicus generate` is wired up).

use std::time::Instant;

use medicus_synth::{GeneratorConfig, write_ndjson};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let patients: u64 = args.get(1).map_or(Ok(1000), |s| s.parse())?;
    let out = args.get(2).map_or("synth-out", String::as_str);
    let seed: u64 = args.get(3).map_or(Ok(42), |s| s.parse())?;
    let threads: usize = args.get(4).map_or(Ok(0), |s| s.parse())?;
    let config = GeneratorConfig {
        patients,
        seed,
        threads,
        hospitals: 5,
        ..Default::default()
    };
    let started = Instant::now();
    let summary = write_ndjson(&config, std::path::Path::new(out), |_| {})?;
    let secs = started.elapsed().as_secs_f64();
    for (t, n) in &summary.by_type {
        println!("{t:>26} {n:>10}");
    }
    println!(
        "{} patients, {} resources in {secs:.2} s: {:.0} resources/s, {:.1} resources/patient",
        summary.patients,
        summary.resources,
        summary.resources as f64 / secs,
        summary.resources as f64 / summary.patients.max(1) as f64
    );
    Ok(())
}
