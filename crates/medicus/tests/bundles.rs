//! FHIR R4 transactions and batches (http.html#transaction): atomicity, urn:uuid resolution,
//! conditional references and creates, processing rules, and independent batch entries.

mod common;

use common::{Fhir, Resp, patient, start};
use serde_json::{Value, json};

fn bundle(kind: &str, entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": kind, "entry": entries})
}

fn post_entry(full_url: &str, resource: Value) -> Value {
    let rt = resource["resourceType"].as_str().unwrap().to_owned();
    json!({"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": rt}})
}

fn put_entry(resource: Value) -> Value {
    let url = format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap(),
        resource["id"].as_str().unwrap()
    );
    json!({"fullUrl": format!("urn:uuid:{}", fake_uuid(&url)), "resource": resource, "request": {"method": "PUT", "url": url}})
}

/// A deterministic uuid-shaped string (the tests need distinct, well-formed urn:uuids).
fn fake_uuid(seed: &str) -> String {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for b in seed.bytes() {
        h = (h ^ u128::from(b)).wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    let s = format!("{h:032x}");
    format!(
        "{}-{}-4{}-8{}-{}",
        &s[0..8],
        &s[8..12],
        &s[13..16],
        &s[17..20],
        &s[20..32]
    )
}

fn with_identifier(mut resource: Value, system: &str, value: &str) -> Value {
    resource["identifier"] = json!([{"system": system, "value": value}]);
    resource
}

/// Patients carrying the marker identifier system.
fn count_marked(fhir: &Fhir, system: &str) -> usize {
    fhir.search_ids(&format!("Patient?identifier={system}|"))
        .len()
}

#[track_caller]
fn status_code(entry: &Value) -> u16 {
    let status = entry["response"]["status"]
        .as_str()
        .unwrap_or_else(|| panic!("entry without status: {entry}"));
    status.split_whitespace().next().unwrap().parse().unwrap()
}

#[track_caller]
fn assert_rejected(resp: &Resp) {
    assert!(
        (400..500).contains(&resp.status),
        "expected a 4xx for a failing transaction, got {} {}",
        resp.status,
        resp.text
    );
    assert_eq!(
        resp.body["resourceType"], "OperationOutcome",
        "{}",
        resp.text
    );
}

#[test]
fn transaction_resolves_urn_uuids_and_answers_per_entry() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    let pat_urn = "urn:uuid:7f3c8a2e-1b4d-4c6e-9f0a-2d5e8b1c3a47";
    let enc_urn = "urn:uuid:0d9b6f41-5a2c-4e8d-b7f3-91c4a6e2d058";
    let tx = bundle(
        "transaction",
        vec![
            post_entry(
                "urn:uuid:4e2a9c7d-8b1f-4a3e-a6d5-c0f7b9e3d214",
                json!({"resourceType": "Observation", "status": "final", "code": {"text": "Gewicht"},
                       "subject": {"reference": pat_urn}, "encounter": {"reference": enc_urn}}),
            ),
            post_entry(
                enc_urn,
                json!({"resourceType": "Encounter", "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                "subject": {"reference": pat_urn}}),
            ),
            post_entry(
                pat_urn,
                with_identifier(patient("Transakt", "Tina"), "urn:test:tx", "t-1"),
            ),
            put_entry(
                json!({"resourceType": "Patient", "id": "tx-put", "active": true,
                "link": [{"other": {"reference": pat_urn}, "type": "seealso"}]}),
            ),
        ],
    );
    let resp = fhir.post("", &tx);
    resp.expect(200);
    assert_eq!(resp.body["type"], "transaction-response", "{}", resp.text);
    let entries = resp.body["entry"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        4,
        "one response entry per request entry, in order"
    );
    assert_eq!(status_code(&entries[0]), 201);
    assert_eq!(status_code(&entries[1]), 201);
    assert_eq!(status_code(&entries[2]), 201);
    assert_eq!(status_code(&entries[3]), 201);
    for e in entries {
        let location = e["response"]["location"]
            .as_str()
            .unwrap_or_else(|| panic!("location: {e}"));
        assert!(location.contains("/_history/1"), "{location}");
        assert!(
            e["response"]["etag"]
                .as_str()
                .is_some_and(|t| t.contains('1')),
            "etag: {e}"
        );
    }

    let pat_id = fhir.search_ids("Patient?identifier=urn:test:tx|t-1");
    assert_eq!(pat_id.len(), 1);
    let pat_ref = format!("Patient/{}", pat_id[0]);
    // Observation: its location names it; references were rewritten to the new ids.
    let obs_loc = entries[0]["response"]["location"].as_str().unwrap();
    // Relative (`Observation/1/_history/1`) or absolute.
    let obs_path = obs_loc
        .rsplit("Observation/")
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let obs = fhir.get(&format!("Observation/{obs_path}"));
    obs.expect(200);
    assert_eq!(obs.body["subject"]["reference"], pat_ref.as_str());
    let enc_ref = obs.body["encounter"]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(enc_ref.starts_with("Encounter/"), "{enc_ref}");
    assert_eq!(
        fhir.get(&enc_ref).expect(200).body["subject"]["reference"],
        pat_ref.as_str()
    );
    assert_eq!(
        fhir.get("Patient/tx-put").expect(200).body["link"][0]["other"]["reference"],
        pat_ref.as_str()
    );
    // Searchable by the rewritten reference.
    assert_eq!(
        fhir.search_ids(&format!("Observation?subject={pat_ref}")),
        [obs_path]
    );
}

#[test]
fn transaction_conditional_references_and_creates() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    let existing = fhir.create(&with_identifier(
        patient("Bedingt", "Ben"),
        "urn:test:cond",
        "c-1",
    ));
    let existing_id = existing["id"].as_str().unwrap();

    // A conditional reference resolves to the one match; a conditional create that matches does
    // not create, and references to its fullUrl point at the match.
    let dup_urn = "urn:uuid:5b7e2d90-3c1a-4f6b-8e2d-a4c9f0b7e613";
    let tx = bundle(
        "transaction",
        vec![
            post_entry(
                "urn:uuid:9a1f4c2b-6d3e-4b7a-8c5f-e2d1b0a9c876",
                json!({"resourceType": "Observation", "status": "final", "code": {"text": "a"},
                       "subject": {"reference": "Patient?identifier=urn:test:cond|c-1"}}),
            ),
            {
                let mut e = post_entry(
                    dup_urn,
                    with_identifier(patient("Bedingt", "Ben"), "urn:test:cond", "c-1"),
                );
                e["request"]["ifNoneExist"] = json!("identifier=urn:test:cond|c-1");
                e
            },
            post_entry(
                "urn:uuid:c3e8a5f1-7b2d-4a9e-b6c0-d1f4e7a2b985",
                json!({"resourceType": "Observation", "status": "final", "code": {"text": "b"},
                       "subject": {"reference": dup_urn}}),
            ),
        ],
    );
    let resp = fhir.post("", &tx);
    resp.expect(200);
    let entries = resp.body["entry"].as_array().unwrap();
    assert_eq!(status_code(&entries[0]), 201);
    assert_eq!(
        status_code(&entries[1]),
        200,
        "ifNoneExist with a match: {}",
        resp.text
    );
    assert_eq!(status_code(&entries[2]), 201);
    assert_eq!(
        fhir.search_ids("Patient?identifier=urn:test:cond|c-1"),
        [existing_id]
    );
    let expected_ref = format!("Patient/{existing_id}");
    assert_eq!(
        fhir.search_ids(&format!("Observation?subject={expected_ref}"))
            .len(),
        2
    );

    // A conditional reference with no match fails the whole transaction.
    let before = fhir.history_total("_history?_count=1");
    let tx = bundle(
        "transaction",
        vec![
            post_entry(
                "urn:uuid:1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
                with_identifier(patient("Neu", "N"), "urn:test:cond2", "n"),
            ),
            post_entry(
                "urn:uuid:2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f",
                json!({"resourceType": "Observation", "status": "final", "code": {"text": "c"},
                       "subject": {"reference": "Patient?identifier=urn:test:cond|nobody"}}),
            ),
        ],
    );
    assert_rejected(&fhir.post("", &tx));
    assert_eq!(
        fhir.history_total("_history?_count=1"),
        before,
        "nothing written"
    );
    assert_eq!(count_marked(&fhir, "urn:test:cond2"), 0);

    // ... and so does one with several matches.
    fhir.create(&with_identifier(
        patient("Bedingt", "Bea"),
        "urn:test:cond",
        "c-2",
    ));
    fhir.create(&with_identifier(
        patient("Bedingt", "Bea"),
        "urn:test:cond",
        "c-2",
    ));
    let before = fhir.history_total("_history?_count=1");
    let tx = bundle(
        "transaction",
        vec![post_entry(
            "urn:uuid:3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f",
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "d"},
                   "subject": {"reference": "Patient?identifier=urn:test:cond|c-2"}}),
        )],
    );
    assert_rejected(&fhir.post("", &tx));
    assert_eq!(fhir.history_total("_history?_count=1"), before);
}

#[test]
fn one_bad_entry_rolls_back_the_whole_transaction() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    let keep = fhir.upsert(&json!({"resourceType": "Patient", "id": "keep", "active": true}));
    let before = fhir.history_total("_history?_count=1");

    let bad_entries: Vec<(&str, Value)> = vec![
        (
            "invalid date",
            json!({"resourceType": "Patient", "birthDate": "1980-02-31x"}),
        ),
        (
            "unknown element",
            json!({"resourceType": "Patient", "flavour": "vanilla"}),
        ),
        (
            "wrong type for element",
            json!({"resourceType": "Patient", "active": "yes"}),
        ),
    ];
    for (what, bad) in bad_entries {
        let tx = bundle(
            "transaction",
            vec![
                post_entry(
                    "urn:uuid:aa11bb22-cc33-4d44-8e55-ff6677889900",
                    with_identifier(patient("Atom", "A"), "urn:test:atom", "1"),
                ),
                put_entry(json!({"resourceType": "Patient", "id": "keep", "active": false})),
                post_entry("urn:uuid:bb22cc33-dd44-4e55-9f66-007788990011", bad),
            ],
        );
        let resp = fhir.post("", &tx);
        assert_rejected(&resp);
        assert_eq!(
            count_marked(&fhir, "urn:test:atom"),
            0,
            "{what}: the good POST was kept"
        );
        assert_eq!(
            fhir.get("Patient/keep").body,
            keep,
            "{what}: the good PUT was kept"
        );
        assert_eq!(fhir.history_total("_history?_count=1"), before, "{what}");
    }

    // The same resource twice in one transaction is an error.
    let tx = bundle(
        "transaction",
        vec![
            put_entry(json!({"resourceType": "Patient", "id": "keep", "active": false})),
            json!({"fullUrl": "urn:uuid:cc33dd44-ee55-4f66-8a77-118899001122",
                   "resource": {"resourceType": "Patient", "id": "keep", "gender": "other"},
                   "request": {"method": "PUT", "url": "Patient/keep"}}),
        ],
    );
    assert_rejected(&fhir.post("", &tx));
    assert_eq!(fhir.get("Patient/keep").body, keep);

    // A stale ifMatch fails the transaction.
    let mut e = put_entry(json!({"resourceType": "Patient", "id": "keep", "active": false}));
    e["request"]["ifMatch"] = json!("W/\"9\"");
    let tx = bundle(
        "transaction",
        vec![
            post_entry(
                "urn:uuid:dd44ee55-ff66-4a77-9b88-229900112233",
                with_identifier(patient("Atom", "B"), "urn:test:atom", "2"),
            ),
            e,
        ],
    );
    let resp = fhir.post("", &tx);
    assert!(
        resp.status == 409 || resp.status == 412,
        "stale ifMatch: {} {}",
        resp.status,
        resp.text
    );
    assert_eq!(count_marked(&fhir, "urn:test:atom"), 0);
    assert_eq!(fhir.history_total("_history?_count=1"), before);
}

#[test]
fn reference_to_a_missing_urn_uuid_fails_and_writes_nothing() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    let tx = bundle(
        "transaction",
        vec![
            post_entry(
                "urn:uuid:e1e2e3e4-f5f6-4a7a-8b8b-c9c9d0d0e1e1",
                with_identifier(patient("Fehlt", "F"), "urn:test:missing", "1"),
            ),
            post_entry(
                "urn:uuid:f1f2f3f4-a5a6-4b7b-9c8c-d9d9e0e0f1f1",
                json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                       "subject": {"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"}}),
            ),
        ],
    );
    assert_rejected(&fhir.post("", &tx));
    assert_eq!(count_marked(&fhir, "urn:test:missing"), 0);
    assert_eq!(fhir.history_total("_history?_count=1"), 0);
}

#[test]
fn transaction_delete_and_read_entries() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    fhir.upsert(&json!({"resourceType": "Patient", "id": "del-me", "active": true}));
    fhir.upsert(&json!({"resourceType": "Patient", "id": "read-me", "active": true}));
    let tx = bundle(
        "transaction",
        vec![
            json!({"request": {"method": "DELETE", "url": "Patient/del-me"}}),
            json!({"request": {"method": "GET", "url": "Patient/read-me"}}),
            put_entry(json!({"resourceType": "Patient", "id": "read-me", "active": false})),
        ],
    );
    let resp = fhir.post("", &tx);
    resp.expect(200);
    let entries = resp.body["entry"].as_array().unwrap();
    assert!(
        matches!(status_code(&entries[0]), 200 | 204),
        "{}",
        resp.text
    );
    // GETs are processed after the writes (http.html#trules).
    assert_eq!(status_code(&entries[1]), 200);
    assert_eq!(
        entries[1]["resource"]["active"], false,
        "GET sees the PUT of the same transaction: {}",
        resp.text
    );
    assert_eq!(status_code(&entries[2]), 200);
    fhir.get("Patient/del-me").expect_outcome(410);
}

#[test]
fn batch_entries_are_independent() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    let batch = bundle(
        "batch",
        vec![
            post_entry(
                "urn:uuid:0a0b0c0d-1e1f-4a2b-8c3d-4e5f6a7b8c9d",
                with_identifier(patient("Stapel", "S"), "urn:test:batch", "1"),
            ),
            post_entry(
                "urn:uuid:1a1b1c1d-2e2f-4a3b-8c4d-5e6f7a8b9c0d",
                json!({"resourceType": "Patient", "birthDate": "not-a-date"}),
            ),
            json!({"request": {"method": "GET", "url": "Patient/nope"}}),
            put_entry(json!({"resourceType": "Patient", "id": "batch-put", "active": true})),
            json!({"fullUrl": "urn:uuid:2a2b2c2d-3e3f-4a4b-8c5d-6e7f8a9b0c1d",
                   "resource": {"resourceType": "Patient", "id": "other"},
                   "request": {"method": "PUT", "url": "Patient/mismatch"}}),
        ],
    );
    let resp = fhir.post("", &batch);
    resp.expect(200);
    assert_eq!(resp.body["type"], "batch-response", "{}", resp.text);
    let entries = resp.body["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 5);
    assert_eq!(status_code(&entries[0]), 201);
    let bad = status_code(&entries[1]);
    assert!(bad == 400 || bad == 422, "invalid entry: {}", resp.text);
    assert_eq!(
        entries[1]["response"]["outcome"]["resourceType"], "OperationOutcome",
        "{}",
        resp.text
    );
    assert_eq!(status_code(&entries[2]), 404);
    assert_eq!(status_code(&entries[3]), 201);
    assert_eq!(status_code(&entries[4]), 400, "id mismatch: {}", resp.text);

    assert_eq!(count_marked(&fhir, "urn:test:batch"), 1);
    fhir.get("Patient/batch-put").expect(200);
    fhir.get("Patient/mismatch").expect_outcome(404);
    fhir.get("Patient/other").expect_outcome(404);
}

#[test]
fn bundles_that_are_not_transaction_or_batch_are_refused() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    let resp = fhir.post(
        "",
        &bundle(
            "collection",
            vec![post_entry(
                "urn:uuid:3a3b3c3d-4e4f-4a5b-8c6d-7e8f9a0b1c2d",
                patient("X", "Y"),
            )],
        ),
    );
    resp.expect_outcome(400);
    fhir.post("", &json!({"resourceType": "Patient"}))
        .expect_outcome(400);
    assert_eq!(fhir.history_total("_history?_count=1"), 0);
}
