//! Crash durability: every write acknowledged with a 2xx survives a SIGKILL of the server, and
//! the store is consistent after the restart.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{Fhir, Server, TestDir, patient};
use reqwest::Method;
use serde_json::json;

/// One acknowledged write: the resource, the version the server confirmed, and the marker that
/// version carries (`name[0].given[0]`).
#[derive(Debug, Clone)]
struct Ack {
    id: String,
    version: i64,
    marker: String,
}

/// Writers that run until the server dies (or `stop`), recording every 2xx.
fn start_writers(
    fhir: &Fhir,
    round: usize,
    acks: &Arc<Mutex<Vec<Ack>>>,
    stop: &Arc<AtomicBool>,
) -> Vec<thread::JoinHandle<()>> {
    let mut handles = Vec::new();
    // Writer 1: creates (POST) with an identifier per write.
    {
        let (fhir, acks, stop) = (fhir.clone(), acks.clone(), stop.clone());
        handles.push(thread::spawn(move || {
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let marker = format!("r{round}-c{i}");
                let mut p = patient("Dauer", &marker);
                p["identifier"] = json!([{"system": "urn:test:durable", "value": marker}]);
                let body = serde_json::to_vec(&p).unwrap();
                let Ok(resp) = fhir.try_send_raw(Method::POST, "Patient", Some(body), &[]) else {
                    return;
                };
                if resp.status != 201 {
                    return;
                }
                let location = resp.header("location").unwrap_or_default().to_owned();
                let id = location
                    .split("/Patient/")
                    .nth(1)
                    .and_then(|r| r.split('/').next())
                    .map(str::to_owned);
                let id = id.unwrap_or_else(|| panic!("201 without Location: {resp:?}"));
                acks.lock().unwrap().push(Ack {
                    id,
                    version: resp.etag_version().expect("ETag"),
                    marker,
                });
            }
        }));
    }
    // Writer 2: updates (PUT) cycling over a few ids, so versions pile up.
    {
        let (fhir, acks, stop) = (fhir.clone(), acks.clone(), stop.clone());
        handles.push(thread::spawn(move || {
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let id = format!("durable-{}", i % 5);
                let marker = format!("r{round}-u{i}");
                let mut p = patient("Dauer", &marker);
                p["id"] = json!(id);
                let body = serde_json::to_vec(&p).unwrap();
                let Ok(resp) =
                    fhir.try_send_raw(Method::PUT, &format!("Patient/{id}"), Some(body), &[])
                else {
                    return;
                };
                if resp.status != 200 && resp.status != 201 {
                    return;
                }
                acks.lock().unwrap().push(Ack {
                    id,
                    version: resp.etag_version().expect("ETag"),
                    marker,
                });
            }
        }));
    }
    handles
}

fn ack_count(acks: &Arc<Mutex<Vec<Ack>>>) -> usize {
    acks.lock().unwrap().len()
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = TestDir::new();
    let mut server = Server::start(&dir);
    let acks = Arc::new(Mutex::new(Vec::<Ack>::new()));

    for round in 0..2 {
        let stop = Arc::new(AtomicBool::new(false));
        let before = ack_count(&acks);
        let writers = start_writers(&server.fhir(), round, &acks, &stop);
        // Kill once enough writes of this round are acknowledged, while the writers keep going.
        while ack_count(&acks) < before + 300 {
            assert!(
                !writers.iter().all(|w| w.is_finished()),
                "writers stopped early; log:\n{}",
                server.log()
            );
            thread::sleep(Duration::from_millis(5));
        }
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        server.restart();
    }

    let fhir = server.fhir();
    let acks = acks.lock().unwrap().clone();
    let mut failures = Vec::new();
    let mut max_version: std::collections::BTreeMap<String, i64> = Default::default();
    for ack in &acks {
        let slot = max_version.entry(ack.id.clone()).or_default();
        *slot = (*slot).max(ack.version);
        let v = fhir.get(&format!("Patient/{}/_history/{}", ack.id, ack.version));
        if v.status != 200 {
            failures.push(format!(
                "{}/_history/{}: {} {}",
                ack.id, ack.version, v.status, v.text
            ));
        } else if v.body["name"][0]["given"][0] != ack.marker.as_str() {
            failures.push(format!(
                "{}/_history/{}: holds {} not {}",
                ack.id, ack.version, v.body["name"], ack.marker
            ));
        }
    }
    for (id, acked) in &max_version {
        let current = fhir.get(&format!("Patient/{id}"));
        let version: i64 = current.body["meta"]["versionId"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1);
        if current.status != 200 || version < *acked {
            failures.push(format!(
                "Patient/{id}: current {} v{version}, acknowledged v{acked}",
                current.status
            ));
            continue;
        }
        // No deletes were made: the history holds exactly versions 1..=current.
        let history = fhir.get(&format!("Patient/{id}/_history?_count=1000"));
        if history.body["total"].as_i64() != Some(version) {
            failures.push(format!(
                "Patient/{id}: history total {} for current v{version}",
                history.body["total"]
            ));
        }
    }
    // Search finds every acknowledged create.
    let created: std::collections::BTreeSet<String> = acks
        .iter()
        .filter(|a| a.marker.contains("-c"))
        .map(|a| a.id.clone())
        .collect();
    let found: std::collections::BTreeSet<String> = fhir
        .search_ids("Patient?identifier=urn:test:durable|&_count=1000")
        .into_iter()
        .collect();
    let missing: Vec<_> = created.difference(&found).collect();
    if !missing.is_empty() {
        failures.push(format!("search misses acknowledged creates: {missing:?}"));
    }
    assert!(
        failures.is_empty(),
        "{} of {} acknowledged writes are inconsistent after SIGKILL:\n{}",
        failures.len(),
        acks.len(),
        failures
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );

    // And the server keeps working.
    let after = fhir.create(&patient("Dauer", "danach"));
    fhir.get(&format!("Patient/{}", after["id"].as_str().unwrap()))
        .expect(200);
}
