//! Bounded memory: exporting far more data than the bound must not grow the process's peak
//! RSS by more than the bound. The engine streams pages of raw bodies into buffered files, so
//! the growth is SQLite's page cache of the reader (at most 64 MiB, see the store's PRAGMAs)
//! plus a page of resources, whatever the data size.
//!
//! Alone in its own test binary, so no other test shares the process's memory counters.

use medicus_bulk::export::{ExportLevel, ExportRequest, ExportSettings, export};
use medicus_bulk::jobs::{JobKind, JobRegistry};
use medicus_store::{Precondition, SqliteStore, Store};
use serde_json::json;

const RESOURCES: usize = 200_000;
/// Each body carries this much free text, so the export is ~0.5 GB of NDJSON.
const TEXT_BYTES: usize = 2_400;
const BOUND_MB: u64 = 150;

fn status_kb(field: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn exporting_half_a_gigabyte_grows_peak_rss_by_less_than_the_bound() {
    if status_kb("VmHWM:").is_none() {
        eprintln!("no /proc/self/status here: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db")).unwrap();
    store.create_tenant("t").unwrap();
    // Pseudo-random text compresses like real narrative, not like a run of one letter.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut text = |n: usize| -> String {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                char::from(b'a' + (seed % 26) as u8)
            })
            .collect()
    };
    for batch in 0..RESOURCES / 5000 {
        let mut s = store.write_session("t").unwrap();
        for i in 0..5000 {
            let id = format!("o{batch}-{i}");
            let body = json!({"resourceType": "Observation", "status": "final",
                "code": {"text": "memory test"}, "note": [{"text": text(TEXT_BYTES)}]});
            // No index rows: a system export reads the resource table, not the indexes.
            s.put_extracted("Observation", &id, body, Vec::new(), Precondition::None)
                .unwrap();
        }
        s.commit().unwrap();
    }

    let jobs = JobRegistry::new(dir.path().join("bulk"));
    let job = jobs.create("t", JobKind::Export, "x").unwrap();
    let request = ExportRequest::new(ExportLevel::System);
    let settings = ExportSettings::new("http://h/f");
    // Reset the peak mark so VmHWM afterwards is the export's own peak; where the kernel does
    // not allow that, the mark still includes the load phase, which only makes this stricter.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = if reset {
        status_kb("VmRSS:").unwrap()
    } else {
        status_kb("VmHWM:").unwrap()
    };
    let manifest = export(&store, &job, &request, &settings).unwrap();
    let peak = status_kb("VmHWM:").unwrap();

    let count: u64 = manifest["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["count"].as_u64().unwrap())
        .sum();
    assert_eq!(count, RESOURCES as u64);
    let bytes: u64 = std::fs::read_dir(&job.dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let growth_mb = peak.saturating_sub(before) / 1024;
    eprintln!(
        "exported {count} resources, {} MB of NDJSON; RSS before {} MB, peak during export {} MB, growth {growth_mb} MB (bound {BOUND_MB} MB, peak reset: {reset})",
        bytes / 1_000_000,
        before / 1024,
        peak / 1024
    );
    assert!(
        bytes > 3 * BOUND_MB * 1_000_000,
        "the data must dwarf the bound"
    );
    assert!(
        growth_mb < BOUND_MB,
        "peak RSS grew by {growth_mb} MB while exporting"
    );
}
