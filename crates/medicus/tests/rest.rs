//! FHIR R4 RESTful interactions (http.html): read, vread, create, update, delete, history,
//! conditional interactions, patch, version-aware updates, headers, Prefer, _format, capabilities.

mod common;

use common::{Resp, link, patient, start};
use serde_json::{Value, json};

fn id_of(resource: &Value) -> String {
    resource["id"].as_str().expect("id").to_owned()
}

fn version_of(resource: &Value) -> String {
    resource["meta"]["versionId"]
        .as_str()
        .expect("meta.versionId")
        .to_owned()
}

/// `Last-Modified` is an HTTP-date (RFC 7231 IMF-fixdate, `Tue, 24 Nov 2026 18:00:00 GMT`)
/// naming the same second as the body's `meta.lastUpdated`.
#[track_caller]
fn assert_last_modified(resp: &Resp) {
    let v = resp.header("last-modified").expect("Last-Modified header");
    let parts: Vec<&str> = v.split([' ', ',']).filter(|p| !p.is_empty()).collect();
    let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    assert!(
        v.len() == 29 && parts.len() == 6 && days.contains(&parts[0]) && parts[5] == "GMT",
        "not an HTTP-date: {v}"
    );
    let month = months.iter().position(|m| *m == parts[2]).expect("month") + 1;
    let as_instant = format!("{}-{month:02}-{}T{}", parts[3], parts[1], parts[4]);
    let last_updated = resp.body["meta"]["lastUpdated"]
        .as_str()
        .expect("meta.lastUpdated");
    if last_updated.ends_with('Z') || last_updated.ends_with("+00:00") {
        assert_eq!(
            &last_updated[..19],
            as_instant,
            "Last-Modified {v} vs lastUpdated {last_updated}"
        );
    }
}

#[test]
fn create_assigns_id_version_and_headers() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    let mut body = patient("Anlage", "Anna");
    body["id"] = json!("client-chosen");
    let resp = fhir.post_with("Patient", &body, &[("prefer", "return=representation")]);
    resp.expect(201);
    let created = &resp.body;
    let id = id_of(created);
    assert_ne!(id, "client-chosen", "create must ignore a client id");
    assert_eq!(version_of(created), "1");
    assert!(created["meta"]["lastUpdated"].is_string());
    assert_eq!(created["name"], body["name"]);
    let location = resp.header("location").expect("Location");
    assert!(
        location.starts_with("http://"),
        "Location must be absolute: {location}"
    );
    assert!(
        location.ends_with(&format!("/Patient/{id}/_history/1")),
        "{location}"
    );
    assert_eq!(
        resp.etag_version(),
        Some(1),
        "ETag {:?}",
        resp.header("etag")
    );
    assert_eq!(resp.header("etag"), Some("W/\"1\""));
    assert_last_modified(&resp);
    assert!(
        resp.content_type().starts_with("application/fhir+json"),
        "{}",
        resp.content_type()
    );

    // The Location can be read.
    fhir.get(location).expect(200);
    fhir.get("Patient/client-chosen").expect_outcome(404);
}

#[test]
fn read_and_vread() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    let created = fhir.create(&patient("Lesen", "Lea"));
    let id = id_of(&created);

    let read = fhir.get(&format!("Patient/{id}"));
    read.expect(200);
    assert_eq!(read.body, created);
    assert_eq!(read.header("etag"), Some("W/\"1\""));
    assert_last_modified(&read);

    let mut changed = created.clone();
    changed["active"] = json!(true);
    let updated = fhir.upsert(&changed);
    assert_eq!(version_of(&updated), "2");

    let v1 = fhir.get(&format!("Patient/{id}/_history/1"));
    v1.expect(200);
    assert_eq!(v1.body, created);
    assert_eq!(v1.header("etag"), Some("W/\"1\""));
    let v2 = fhir.get(&format!("Patient/{id}/_history/2"));
    v2.expect(200);
    assert_eq!(v2.body["active"], true);
    assert_eq!(fhir.get(&format!("Patient/{id}")).body, v2.body);

    fhir.get(&format!("Patient/{id}/_history/3"))
        .expect_outcome(404);
    fhir.get("Patient/does-not-exist").expect_outcome(404);
    fhir.get("Patient/does-not-exist/_history/1")
        .expect_outcome(404);
}

#[test]
fn update_and_create_on_update() {
    let (_dir, server) = start();
    let fhir = server.fhir();

    // Update as create: the client chooses the id.
    let mut p = patient("Setzen", "Sina");
    p["id"] = json!("chosen-1");
    let resp = fhir.put_with(
        "Patient/chosen-1",
        &p,
        &[("prefer", "return=representation")],
    );
    resp.expect(201);
    assert_eq!(resp.body["id"], "chosen-1");
    assert_eq!(version_of(&resp.body), "1");
    assert_eq!(resp.etag_version(), Some(1));
    assert!(
        resp.header("location")
            .is_some_and(|l| l.ends_with("/Patient/chosen-1/_history/1")),
        "Location: {:?}",
        resp.header("location")
    );

    // Update.
    p["gender"] = json!("female");
    let resp = fhir.put_with(
        "Patient/chosen-1",
        &p,
        &[("prefer", "return=representation")],
    );
    resp.expect(200);
    assert_eq!(version_of(&resp.body), "2");
    assert_eq!(resp.etag_version(), Some(2));
    assert_last_modified(&resp);
    assert_eq!(resp.body["gender"], "female");
    assert_eq!(fhir.get("Patient/chosen-1").body["gender"], "female");
    // An update replaces the whole resource: elements left out are gone.
    let mut replacement = json!({"resourceType": "Patient", "id": "chosen-1", "active": false});
    let resp = fhir.put_with(
        "Patient/chosen-1",
        &replacement,
        &[("prefer", "return=representation")],
    );
    resp.expect(200);
    replacement["meta"] = resp.body["meta"].clone();
    assert_eq!(resp.body, replacement);
    assert_eq!(fhir.get("Patient/chosen-1").body, replacement);
}

#[test]
fn delete_then_read_is_gone_and_history_remains() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    let created = fhir.create(&patient("Loeschen", "Lutz"));
    let id = id_of(&created);
    let resp = fhir.delete(&format!("Patient/{id}"));
    assert!(
        resp.status == 200 || resp.status == 204,
        "delete: {} {}",
        resp.status,
        resp.text
    );

    fhir.get(&format!("Patient/{id}")).expect_outcome(410);
    // Earlier versions stay readable.
    assert_eq!(
        fhir.get(&format!("Patient/{id}/_history/1"))
            .expect(200)
            .body,
        created
    );
    // The deletion itself is version 2: reading it says Gone.
    fhir.get(&format!("Patient/{id}/_history/2"))
        .expect_outcome(410);
    // Deleting again is not an error.
    let again = fhir.delete(&format!("Patient/{id}"));
    assert!(
        again.status == 200 || again.status == 204,
        "delete twice: {} {}",
        again.status,
        again.text
    );
    // The deleted resource is not found by search.
    assert!(fhir.search_ids(&format!("Patient?_id={id}")).is_empty());

    // History: create + delete, newest first, the deletion without a resource.
    let h = fhir.get(&format!("Patient/{id}/_history"));
    h.expect(200);
    assert_eq!(h.body["total"], 2, "{}", h.text);
    let entries = h.body["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["request"]["method"], "DELETE", "{}", h.text);
    assert!(entries[0].get("resource").is_none(), "{}", h.text);
    assert_eq!(entries[1]["resource"]["meta"]["versionId"], "1");

    // Re-creating by update continues the history.
    let mut again = patient("Loeschen", "Lutz");
    again["id"] = json!(id);
    let resp = fhir.put_with(
        &format!("Patient/{id}"),
        &again,
        &[("prefer", "return=representation")],
    );
    resp.expect(201);
    assert_eq!(version_of(&resp.body), "3");
    fhir.get(&format!("Patient/{id}")).expect(200);
    assert_eq!(fhir.history_total(&format!("Patient/{id}/_history")), 3);
}

#[test]
fn history_instance_type_system_with_since_and_count() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    let a = fhir.create(&patient("Verlauf", "Aaron"));
    let a_id = id_of(&a);
    let mut a2 = a.clone();
    a2["active"] = json!(true);
    let a2 = fhir.upsert(&a2);
    let b = fhir.create(&patient("Verlauf", "Berta"));
    let obs = fhir.create(&json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]},
        "subject": {"reference": format!("Patient/{a_id}")}
    }));

    assert_eq!(fhir.history_total(&format!("Patient/{a_id}/_history")), 2);
    assert_eq!(fhir.history_total("Patient/_history"), 3);
    assert_eq!(fhir.history_total("Observation/_history"), 1);
    assert_eq!(fhir.history_total("_history"), 4);

    // Entries carry fullUrl, the resource, request and response; newest first.
    let h = fhir.get(&format!("Patient/{a_id}/_history")).body;
    let entries = h["entry"].as_array().unwrap();
    assert_eq!(entries[0]["resource"], a2);
    assert_eq!(entries[1]["resource"], a);
    assert_eq!(entries[0]["request"]["method"], "PUT");
    assert_eq!(entries[1]["request"]["method"], "POST");
    assert!(
        entries[0]["fullUrl"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("/Patient/{a_id}"))),
        "{h}"
    );
    assert!(
        entries[0]["response"]["status"]
            .as_str()
            .is_some_and(|s| s.starts_with("200")),
        "{h}"
    );
    assert!(
        entries[1]["response"]["status"]
            .as_str()
            .is_some_and(|s| s.starts_with("201")),
        "{h}"
    );

    // _since: versions at or after the instant. `+` in an offset must be escaped in a URL.
    let since = b["meta"]["lastUpdated"]
        .as_str()
        .unwrap()
        .replace('+', "%2B");
    assert_eq!(
        fhir.history_total(&format!("_history?_since={since}")),
        2,
        "b and the Observation"
    );
    assert_eq!(
        fhir.history_total(&format!("Patient/_history?_since={since}")),
        1
    );
    assert_eq!(
        fhir.history_total(&format!("Patient/{a_id}/_history?_since={since}")),
        0
    );

    // _count pages through the history; following next links yields every version once.
    let pages = fhir.search_pages("_history?_count=1");
    for page in &pages {
        assert!(
            page["entry"].as_array().map_or(0, Vec::len) <= 1,
            "_count=1: {page}"
        );
    }
    let mut seen: Vec<(String, String)> = pages
        .iter()
        .flat_map(|p| p["entry"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            (
                e["resource"]["id"].as_str().unwrap().to_owned(),
                version_of(&e["resource"]),
            )
        })
        .collect();
    seen.sort();
    let mut expected = vec![
        (a_id.clone(), "1".to_owned()),
        (a_id.clone(), "2".to_owned()),
        (id_of(&b), "1".to_owned()),
        (id_of(&obs), "1".to_owned()),
    ];
    expected.sort();
    assert_eq!(seen, expected);
    assert!(
        link(&pages[0], "self").is_some(),
        "history Bundle needs a self link"
    );
}

#[test]
fn conditional_create() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    let mut p = patient("Bedingt", "Bea");
    p["identifier"] = json!([{"system": "urn:test:mrn", "value": "cc-1"}]);
    let first = fhir.post_with(
        "Patient",
        &p,
        &[("if-none-exist", "identifier=urn:test:mrn|cc-1")],
    );
    first.expect(201);
    // One match: nothing is created, 200 OK.
    let second = fhir.post_with(
        "Patient",
        &p,
        &[("if-none-exist", "identifier=urn:test:mrn|cc-1")],
    );
    second.expect(200);
    assert_eq!(
        fhir.search_ids("Patient?identifier=urn:test:mrn|cc-1")
            .len(),
        1
    );
    assert_eq!(fhir.history_total("Patient/_history"), 1);

    // Several matches: 412, nothing written.
    p["identifier"] = json!([{"system": "urn:test:mrn", "value": "cc-2"}]);
    fhir.create(&p);
    fhir.create(&p);
    fhir.post_with(
        "Patient",
        &p,
        &[("if-none-exist", "identifier=urn:test:mrn|cc-2")],
    )
    .expect_outcome(412);
    assert_eq!(fhir.history_total("Patient/_history"), 3);
}

#[test]
fn conditional_update() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    let mut p = patient("Bedingt", "Bodo");
    p["identifier"] = json!([{"system": "urn:test:mrn", "value": "cu-1"}]);

    // No match: created with a server id.
    let resp = fhir.put_with(
        "Patient?identifier=urn:test:mrn|cu-1",
        &p,
        &[("prefer", "return=representation")],
    );
    resp.expect(201);
    let id = id_of(&resp.body);

    // One match: that resource is updated.
    p["gender"] = json!("male");
    let resp = fhir.put_with(
        "Patient?identifier=urn:test:mrn|cu-1",
        &p,
        &[("prefer", "return=representation")],
    );
    resp.expect(200);
    assert_eq!(id_of(&resp.body), id);
    assert_eq!(version_of(&resp.body), "2");
    assert_eq!(fhir.get(&format!("Patient/{id}")).body["gender"], "male");

    // Several matches: 412.
    let mut q = patient("Bedingt", "Bruno");
    q["identifier"] = json!([{"system": "urn:test:mrn", "value": "cu-2"}]);
    fhir.create(&q);
    fhir.create(&q);
    fhir.put("Patient?identifier=urn:test:mrn|cu-2", &q)
        .expect_outcome(412);
    assert_eq!(fhir.history_total("Patient/_history"), 4);

    // One match, but the body names another id: 400, nothing written.
    let mut other = p.clone();
    other["id"] = json!("someone-else");
    fhir.put("Patient?identifier=urn:test:mrn|cu-1", &other)
        .expect_outcome(400);
    // One match and the body names the matched id: an ordinary update.
    let mut same = p.clone();
    same["id"] = json!(id);
    fhir.put("Patient?identifier=urn:test:mrn|cu-1", &same)
        .expect(200);
    assert_eq!(fhir.history_total("Patient/_history"), 5);
    // No match, id provided: update as create with that id.
    let mut fresh = patient("Bedingt", "Bernd");
    fresh["id"] = json!("cu-chosen");
    fresh["identifier"] = json!([{"system": "urn:test:mrn", "value": "cu-3"}]);
    fhir.put("Patient?identifier=urn:test:mrn|cu-3", &fresh)
        .expect(201);
    assert_eq!(
        fhir.get("Patient/cu-chosen").expect(200).body["identifier"],
        fresh["identifier"]
    );
}

#[test]
fn conditional_delete() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    let mut p = patient("Bedingt", "Dora");
    p["identifier"] = json!([{"system": "urn:test:mrn", "value": "cd-1"}]);
    let keep = fhir.create(&patient("Bedingt", "Dieter"));
    let gone = fhir.create(&p);
    let resp = fhir.delete("Patient?identifier=urn:test:mrn|cd-1");
    assert!(
        resp.status == 200 || resp.status == 204,
        "{} {}",
        resp.status,
        resp.text
    );
    fhir.get(&format!("Patient/{}", id_of(&gone)))
        .expect_outcome(410);
    fhir.get(&format!("Patient/{}", id_of(&keep))).expect(200);
    // No match: nothing to do, still success.
    let resp = fhir.delete("Patient?identifier=urn:test:mrn|cd-nothing");
    assert!(
        resp.status == 200 || resp.status == 204,
        "{} {}",
        resp.status,
        resp.text
    );
    fhir.get(&format!("Patient/{}", id_of(&keep))).expect(200);

    // Several matches: the server deletes all of them or refuses with 412; never some.
    p["identifier"] = json!([{"system": "urn:test:mrn", "value": "cd-2"}]);
    let both = [id_of(&fhir.create(&p)), id_of(&fhir.create(&p))];
    let resp = fhir.delete("Patient?identifier=urn:test:mrn|cd-2");
    let expected_status = match resp.status {
        200 | 204 => 410,
        412 => 200,
        other => panic!("conditional delete of several: {other} {}", resp.text),
    };
    for id in &both {
        assert_eq!(
            fhir.get(&format!("Patient/{id}")).status,
            expected_status,
            "Patient/{id}"
        );
    }
    fhir.get(&format!("Patient/{}", id_of(&keep))).expect(200);
}

#[test]
fn json_patch() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    let created = fhir.create(&patient("Flicken", "Fritz"));
    let id = id_of(&created);
    let path = format!("Patient/{id}");

    let ops = json!([
        {"op": "add", "path": "/active", "value": true},
        {"op": "replace", "path": "/name/0/given/0", "value": "Franz"}
    ]);
    let resp = fhir.patch(&path, &ops, &[("prefer", "return=representation")]);
    resp.expect(200);
    assert_eq!(version_of(&resp.body), "2");
    assert_eq!(resp.etag_version(), Some(2));
    let read = fhir.get(&path).body;
    assert_eq!(read["active"], true);
    assert_eq!(read["name"][0]["given"][0], "Franz");
    assert_eq!(read["name"][0]["family"], "Flicken");

    // A failing `test` op changes nothing.
    let failing = json!([{"op": "test", "path": "/active", "value": false}, {"op": "remove", "path": "/active"}]);
    let resp = fhir.patch(&path, &failing, &[]);
    assert!(
        (400..500).contains(&resp.status),
        "failed test op: {} {}",
        resp.status,
        resp.text
    );
    assert_eq!(
        resp.body["resourceType"], "OperationOutcome",
        "{}",
        resp.text
    );
    // A patch that makes the resource invalid is rejected.
    let invalid = json!([{"op": "add", "path": "/birthDate", "value": "not a date"}]);
    let resp = fhir.patch(&path, &invalid, &[]);
    assert!(
        resp.status == 400 || resp.status == 422,
        "{} {}",
        resp.status,
        resp.text
    );
    // The id cannot be patched away.
    let reid = json!([{"op": "replace", "path": "/id", "value": "other"}]);
    let resp = fhir.patch(&path, &reid, &[]);
    assert!(
        (400..500).contains(&resp.status),
        "{} {}",
        resp.status,
        resp.text
    );
    // Stale If-Match.
    fhir.patch(
        &path,
        &json!([{"op": "add", "path": "/gender", "value": "male"}]),
        &[("if-match", "W/\"1\"")],
    )
    .expect_outcome(412);
    assert_eq!(
        version_of(&fhir.get(&path).body),
        "2",
        "rejected patches must not write"
    );
    // Unknown resource.
    let resp = fhir.patch("Patient/nope", &ops, &[]);
    assert_eq!(resp.status, 404, "{}", resp.text);
}

#[test]
fn if_match_version_aware_update() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    let created = fhir.create(&patient("Version", "Vera"));
    let id = id_of(&created);
    let path = format!("Patient/{id}");
    let mut body = created.clone();
    body["active"] = json!(true);

    fhir.put_with(&path, &body, &[("if-match", "W/\"7\"")])
        .expect_outcome(412);
    assert_eq!(version_of(&fhir.get(&path).body), "1");
    let resp = fhir.put_with(&path, &body, &[("if-match", "W/\"1\"")]);
    resp.expect(200);
    assert_eq!(resp.etag_version(), Some(2));
    // The same precondition again is now stale.
    fhir.put_with(&path, &body, &[("if-match", "W/\"1\"")])
        .expect_outcome(412);
    assert_eq!(fhir.history_total(&format!("{path}/_history")), 2);
}

#[test]
fn prefer_return() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    let p = patient("Vorzug", "Paula");

    let minimal = fhir.post_with("Patient", &p, &[("prefer", "return=minimal")]);
    minimal.expect(201);
    assert!(
        minimal.text.trim().is_empty(),
        "return=minimal must have no body: {}",
        minimal.text
    );
    assert!(minimal.header("location").is_some());
    assert_eq!(minimal.etag_version(), Some(1));

    let full = fhir.post_with("Patient", &p, &[("prefer", "return=representation")]);
    full.expect(201);
    assert_eq!(full.body["resourceType"], "Patient");
    assert_eq!(full.body["name"], p["name"]);

    let outcome = fhir.post_with("Patient", &p, &[("prefer", "return=OperationOutcome")]);
    outcome.expect(201);
    assert_eq!(
        outcome.body["resourceType"], "OperationOutcome",
        "{}",
        outcome.text
    );

    // The same on update.
    let id = id_of(&full.body);
    let mut body = full.body.clone();
    body["active"] = json!(false);
    let upd = fhir.put_with(
        &format!("Patient/{id}"),
        &body,
        &[("prefer", "return=minimal")],
    );
    upd.expect(200);
    assert!(upd.text.trim().is_empty(), "{}", upd.text);
    let upd = fhir.put_with(
        &format!("Patient/{id}"),
        &body,
        &[("prefer", "return=OperationOutcome")],
    );
    upd.expect(200);
    assert_eq!(upd.body["resourceType"], "OperationOutcome");
    let upd = fhir.put_with(
        &format!("Patient/{id}"),
        &body,
        &[("prefer", "return=representation")],
    );
    upd.expect(200);
    assert_eq!(upd.body["active"], false);
}

#[test]
fn format_parameter_and_accept() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    let id = id_of(&fhir.create(&patient("Format", "Franka")));
    for format in ["json", "application/json", "application/fhir+json"] {
        let resp = fhir.get_with(
            &format!("Patient/{id}?_format={}", format.replace('+', "%2B")),
            &[("accept", "application/fhir+xml")],
        );
        resp.expect(200);
        assert_eq!(resp.body["id"], id.as_str(), "_format={format}");
        assert!(
            resp.content_type().contains("json"),
            "_format={format}: {}",
            resp.content_type()
        );
    }
    // Unsupported formats are refused with 406.
    fhir.get(&format!("Patient/{id}?_format=xml")).expect(406);
    fhir.get_with(
        &format!("Patient/{id}"),
        &[("accept", "application/fhir+xml")],
    )
    .expect(406);
    // Generic and wildcard Accept work.
    fhir.get_with(&format!("Patient/{id}"), &[("accept", "*/*")])
        .expect(200);
    let resp = fhir.get_with(&format!("Patient/{id}"), &[("accept", "application/json")]);
    resp.expect(200);
    assert!(resp.content_type().contains("json"));
}

#[test]
fn capability_statement() {
    let (_dir, server) = start();
    let resp = server.fhir().get("metadata");
    resp.expect(200);
    let cs = &resp.body;
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    assert_eq!(cs["kind"], "instance");
    assert!(
        cs["status"].is_string() && cs["date"].is_string(),
        "status and date are required"
    );
    let formats: Vec<&str> = cs["format"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(formats.iter().any(|f| f.contains("json")), "{formats:?}");
    assert!(
        cs["patchFormat"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "application/json-patch+json"))
    );
    let rest = &cs["rest"][0];
    assert_eq!(rest["mode"], "server");
    let patient = rest["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .expect("Patient in CapabilityStatement");
    let interactions: Vec<&str> = patient["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["code"].as_str())
        .collect();
    for code in [
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "history-instance",
        "history-type",
        "create",
        "search-type",
    ] {
        assert!(
            interactions.contains(&code),
            "Patient interaction {code} missing: {interactions:?}"
        );
    }
    // `versioned-update` also announces If-Match support.
    assert!(
        matches!(
            patient["versioning"].as_str(),
            Some("versioned" | "versioned-update")
        ),
        "{patient}"
    );
    assert_eq!(patient["conditionalCreate"], true);
    let params: Vec<&str> = patient["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for p in ["name", "family", "birthdate", "identifier"] {
        assert!(params.contains(&p), "Patient search param {p}: {params:?}");
    }
    let system: Vec<&str> = rest["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["code"].as_str())
        .collect();
    for code in ["transaction", "batch", "history-system"] {
        assert!(
            system.contains(&code),
            "system interaction {code}: {system:?}"
        );
    }
}
