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

/// One acknowledged write.
#[derive(Debug, Clone)]
enum Ack {
    /// A create or update: `Patient/{id}` at `version` carries `marker` in `name[0].given[0]`.
    Write {
        id: String,
        version: i64,
        marker: String,
        created: bool,
    },
    /// A transaction of `TX_SIZE` creates, all with the identifier value `marker`.
    Transaction { marker: String },
}

const TX_SIZE: usize = 5;

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
                acks.lock().unwrap().push(Ack::Write {
                    id,
                    version: resp.etag_version().expect("ETag"),
                    marker,
                    created: true,
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
                acks.lock().unwrap().push(Ack::Write {
                    id,
                    version: resp.etag_version().expect("ETag"),
                    marker,
                    created: false,
                });
            }
        }));
    }
    // Writer 3: transactions of TX_SIZE creates sharing one identifier value; acknowledged
    // ones are recorded with version 0 (checked by count, not by version).
    {
        let (fhir, acks, stop) = (fhir.clone(), acks.clone(), stop.clone());
        handles.push(thread::spawn(move || {
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let marker = format!("r{round}-t{i}");
                let entries: Vec<_> = (0..TX_SIZE)
                    .map(|k| {
                        let mut p = patient("Dauer", &marker);
                        p["identifier"] = json!([{"system": "urn:test:durable-tx", "value": marker}]);
                        json!({"fullUrl": format!("urn:uuid:00000000-0000-4000-8000-{round:04}{i:04}{k:04}"),
                               "resource": p, "request": {"method": "POST", "url": "Patient"}})
                    })
                    .collect();
                let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
                let body = serde_json::to_vec(&tx).unwrap();
                let Ok(resp) = fhir.try_send_raw(Method::POST, "", Some(body), &[]) else {
                    return;
                };
                if resp.status != 200 {
                    return;
                }
                acks.lock().unwrap().push(Ack::Transaction { marker });
            }
        }));
    }
    handles
}

/// (all acknowledged writes, acknowledged transactions)
fn ack_count(acks: &Arc<Mutex<Vec<Ack>>>) -> (usize, usize) {
    let acks = acks.lock().unwrap();
    let txs = acks
        .iter()
        .filter(|a| matches!(a, Ack::Transaction { .. }))
        .count();
    (acks.len(), txs)
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = TestDir::new();
    let mut server = Server::start(&dir);
    let acks = Arc::new(Mutex::new(Vec::<Ack>::new()));

    for round in 0..2 {
        let stop = Arc::new(AtomicBool::new(false));
        let (before, tx_before) = ack_count(&acks);
        let writers = start_writers(&server.fhir(), round, &acks, &stop);
        // Kill once enough writes of this round are acknowledged, while the writers keep going.
        loop {
            let (all, txs) = ack_count(&acks);
            if all >= before + 300 && txs >= tx_before + 10 {
                break;
            }
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
    let mut created = std::collections::BTreeSet::new();
    let mut tx_markers = Vec::new();
    for ack in &acks {
        let (id, version, marker) = match ack {
            Ack::Write {
                id,
                version,
                marker,
                created: is_create,
            } => {
                if *is_create {
                    created.insert(id.clone());
                }
                (id, *version, marker)
            }
            Ack::Transaction { marker } => {
                tx_markers.push(marker.clone());
                continue;
            }
        };
        let slot = max_version.entry(id.clone()).or_default();
        *slot = (*slot).max(version);
        let v = fhir.get(&format!("Patient/{id}/_history/{version}"));
        if v.status != 200 {
            failures.push(format!("{id}/_history/{version}: {} {}", v.status, v.text));
        } else if v.body["name"][0]["given"][0] != marker.as_str() {
            failures.push(format!(
                "{id}/_history/{version}: holds {} not {marker}",
                v.body["name"]
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
    let found: std::collections::BTreeSet<String> = fhir
        .search_ids("Patient?identifier=urn:test:durable|&_count=1000")
        .into_iter()
        .collect();
    let missing: Vec<_> = created.difference(&found).collect();
    if !missing.is_empty() {
        failures.push(format!("search misses acknowledged creates: {missing:?}"));
    }
    // Transactions are all or nothing, also across a crash: every marker has TX_SIZE patients
    // or none, and every acknowledged one has all of them.
    let mut per_marker: std::collections::BTreeMap<String, usize> = Default::default();
    for page in fhir.search_pages("Patient?identifier=urn:test:durable-tx|&_count=1000") {
        for r in common::bundle_resources(&page) {
            let marker = r["identifier"][0]["value"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            *per_marker.entry(marker).or_default() += 1;
        }
    }
    for (marker, n) in &per_marker {
        if *n != TX_SIZE {
            failures.push(format!(
                "transaction {marker}: {n} of {TX_SIZE} entries stored"
            ));
        }
    }
    for marker in &tx_markers {
        if !per_marker.contains_key(marker) {
            failures.push(format!("acknowledged transaction {marker} is gone"));
        }
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
