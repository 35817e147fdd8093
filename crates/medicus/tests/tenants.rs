//! Tenant isolation: what is written in one tenant is invisible in every path of another.

mod common;

use common::{Fhir, Server, TestDir, create_tenant, match_ids, patient, resource_keys};
use serde_json::{Value, json};

/// A server with tenants `default` and `b`.
fn start() -> (TestDir, Server) {
    let dir = TestDir::new();
    create_tenant(&dir, "b");
    let server = Server::start(&dir);
    (dir, server)
}

/// Write `id` (fixed) and a server-id Patient with identifier `marker` in `fhir`; return the server id.
fn seed(fhir: &Fhir, id: &str, marker: &str) -> String {
    let mut p = patient("Mandant", marker);
    p["id"] = json!(id);
    p["identifier"] = json!([{"system": "urn:test:tenant", "value": marker}]);
    fhir.upsert(&p);
    let mut q = patient("Mandant", marker);
    q["identifier"] = json!([{"system": "urn:test:tenant", "value": marker}]);
    fhir.create(&q)["id"].as_str().unwrap().to_owned()
}

#[track_caller]
fn assert_invisible(other: &Fhir, id: &str, marker: &str) {
    other.get(&format!("Patient/{id}")).expect_outcome(404);
    other
        .get(&format!("Patient/{id}/_history/1"))
        .expect_outcome(404);
    assert!(other.search_ids(&format!("Patient?_id={id}")).is_empty());
    assert!(
        other
            .search_ids(&format!("Patient?identifier=urn:test:tenant|{marker}"))
            .is_empty()
    );
    assert!(
        other
            .search_ids("Patient?family=mandant")
            .iter()
            .all(|i| i != id)
    );
    let h = other.get(&format!("Patient/{id}/_history"));
    assert!(
        h.status == 404 || (h.status == 200 && h.body["total"] == 0),
        "instance history: {}",
        h.text
    );
    for path in ["Patient/_history", "_history"] {
        let resp = other.get(path);
        resp.expect(200);
        let leaked = resp.resources().iter().any(|r| r["id"] == id);
        assert!(!leaked, "{path} shows {id}: {}", resp.text);
    }
    let sys = other.get(&format!("?_id={id}"));
    sys.expect(200);
    assert!(
        match_ids(&sys.body).is_empty(),
        "system search: {}",
        sys.text
    );
}

#[test]
fn tenants_do_not_see_each_other() {
    let (_dir, server) = start();
    let a = server.fhir();
    let b = server.tenant("b");
    let a_created = seed(&a, "shared-id", "in-a");
    // Only a's writes so far.
    assert_eq!(b.history_total("_history"), 0);
    assert_invisible(&b, "shared-id", "in-a");
    assert_invisible(&b, &a_created, "in-a");

    // The same id in b is a different resource: create, version 1.
    let mut p = patient("Mandant", "in-b");
    p["id"] = json!("shared-id");
    let resp = b.put_with(
        "Patient/shared-id",
        &p,
        &[("prefer", "return=representation")],
    );
    resp.expect(201);
    assert_eq!(resp.body["meta"]["versionId"], "1");
    let b_created = b.create(&patient("Mandant", "only-b"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_invisible(&a, &b_created, "only-b");
    assert_eq!(
        a.get("Patient/shared-id").body["name"][0]["given"][0],
        "in-a"
    );
    assert_eq!(
        b.get("Patient/shared-id").body["name"][0]["given"][0],
        "in-b"
    );
    assert_eq!(a.history_total("Patient/shared-id/_history"), 1);
    assert_eq!(b.history_total("Patient/shared-id/_history"), 1);
    assert_eq!(a.history_total("_history"), 2);
    assert_eq!(b.history_total("_history"), 2);

    // Versions are per tenant: a goes to version 2, b stays at 1 and refuses If-Match 2.
    let mut upd = a.get("Patient/shared-id").body;
    upd["active"] = json!(true);
    assert_eq!(a.upsert(&upd)["meta"]["versionId"], "2");
    b.put_with("Patient/shared-id", &upd, &[("if-match", "W/\"2\"")])
        .expect_outcome(412);
    assert_eq!(b.get("Patient/shared-id").body["meta"]["versionId"], "1");

    // Deleting in b leaves a untouched.
    b.delete("Patient/shared-id");
    b.get("Patient/shared-id").expect_outcome(410);
    assert_eq!(a.get("Patient/shared-id").expect(200).body["active"], true);
}

#[test]
fn conditional_operations_stay_in_their_tenant() {
    let (_dir, server) = start();
    let a = server.fhir();
    let b = server.tenant("b");
    seed(&a, "cond-a", "cond");

    // Conditional create in b does not match a's patients.
    let mut p = patient("Mandant", "cond");
    p["identifier"] = json!([{"system": "urn:test:tenant", "value": "cond"}]);
    b.post_with(
        "Patient",
        &p,
        &[("if-none-exist", "identifier=urn:test:tenant|cond")],
    )
    .expect(201);
    // Conditional update in b with a's identifier matches b's one patient only.
    b.put("Patient?identifier=urn:test:tenant|cond", &p)
        .expect(200);
    // Conditional delete in b leaves a's patients.
    b.delete("Patient?identifier=urn:test:tenant|cond");
    assert_eq!(
        a.search_ids("Patient?identifier=urn:test:tenant|cond")
            .len(),
        2
    );
    assert!(
        b.search_ids("Patient?identifier=urn:test:tenant|cond")
            .is_empty()
    );
}

#[test]
fn transactions_stay_in_their_tenant() {
    let (_dir, server) = start();
    let a = server.fhir();
    let b = server.tenant("b");
    seed(&a, "tx-a", "tx");

    // A conditional reference in b cannot resolve to a's patient: the transaction fails.
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [{
        "fullUrl": "urn:uuid:6f1e2d3c-4b5a-4978-8d6c-5b4a39281706",
        "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                     "subject": {"reference": "Patient?identifier=urn:test:tenant|tx"}},
        "request": {"method": "POST", "url": "Observation"}}]});
    let resp = b.post("", &tx);
    assert!(
        (400..500).contains(&resp.status),
        "{} {}",
        resp.status,
        resp.text
    );
    assert_eq!(b.history_total("_history"), 0);

    // GET entries of a transaction/batch in b do not see a.
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/tx-a"}},
        {"request": {"method": "GET", "url": "Patient?identifier=urn:test:tenant|tx"}}]});
    let resp = b.post("", &batch);
    resp.expect(200);
    let entries = resp.body["entry"].as_array().unwrap();
    assert!(
        entries[0]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("404"),
        "{}",
        resp.text
    );
    let search: &Value = &entries[1]["resource"];
    assert!(match_ids(search).is_empty(), "{}", resp.text);

    // A transaction PUT in b with a's id creates b's own resource.
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [{
        "fullUrl": "urn:uuid:7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d",
        "resource": {"resourceType": "Patient", "id": "tx-a", "active": false},
        "request": {"method": "PUT", "url": "Patient/tx-a"}}]});
    let resp = b.post("", &tx);
    resp.expect(200);
    assert!(
        resp.body["entry"][0]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("201"),
        "{}",
        resp.text
    );
    assert_eq!(a.get("Patient/tx-a").body["name"][0]["family"], "Mandant");
    assert_eq!(b.get("Patient/tx-a").body["active"], false);
}

#[test]
fn includes_do_not_cross_tenants() {
    let (_dir, server) = start();
    let a = server.fhir();
    let b = server.tenant("b");
    // a has Patient/p and an Observation about it; b has only an Observation pointing at the
    // same reference, which in b resolves to nothing.
    a.upsert(&json!({"resourceType": "Patient", "id": "p", "active": true}));
    let obs = |id: &str| {
        json!({"resourceType": "Observation", "id": id, "status": "final",
               "code": {"text": "x"}, "subject": {"reference": "Patient/p"}})
    };
    a.upsert(&obs("in-a"));
    b.upsert(&obs("in-b"));

    // b's Observation points at Patient/p, which exists only in a: nothing to include.
    let resp = b.get("Observation?_include=Observation:subject");
    resp.expect(200);
    assert_eq!(
        resource_keys(&resp.body),
        ["Observation/in-b"],
        "{}",
        resp.text
    );

    // Reverse includes list only the tenant's own Observations.
    let resp = a.get("Patient?_id=p&_revinclude=Observation:subject");
    resp.expect(200);
    assert_eq!(
        resource_keys(&resp.body),
        ["Observation/in-a", "Patient/p"],
        "{}",
        resp.text
    );
    b.upsert(&json!({"resourceType": "Patient", "id": "p", "active": false}));
    let resp = b.get("Patient?_id=p&_revinclude=Observation:subject");
    resp.expect(200);
    assert_eq!(
        resource_keys(&resp.body),
        ["Observation/in-b", "Patient/p"],
        "{}",
        resp.text
    );
    let p = resp
        .resources()
        .into_iter()
        .find(|r| r["id"] == "p")
        .unwrap();
    assert_eq!(p["active"], false, "b's own Patient/p");
}

#[test]
fn a_tenant_created_while_running_is_served_at_once() {
    let (dir, server) = start();
    server.tenant("late").get("metadata").expect_outcome(404);
    create_tenant(&dir, "late");
    let late = server.tenant("late");
    late.get("metadata").expect(200);
    let id = late.create(&patient("Spaet", "Sven"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    late.get(&format!("Patient/{id}")).expect(200);
    server
        .fhir()
        .get(&format!("Patient/{id}"))
        .expect_outcome(404);
}

#[test]
fn unknown_tenant_is_404_everywhere() {
    let (dir, server) = start();
    let x = server.tenant("nobody");
    x.get("metadata").expect_outcome(404);
    x.get("Patient/1").expect_outcome(404);
    x.get("Patient?name=a").expect_outcome(404);
    x.get("_history").expect_outcome(404);
    x.post("Patient", &patient("Nie", "Nora"))
        .expect_outcome(404);
    x.put("Patient/p", &json!({"resourceType": "Patient", "id": "p"}))
        .expect_outcome(404);
    x.post(
        "",
        &json!({"resourceType": "Bundle", "type": "batch", "entry": []}),
    )
    .expect_outcome(404);
    // Writing to an unknown tenant does not create it.
    drop(server);
    let out = common::medicus(&[
        "admin",
        "tenant",
        "list",
        "--data",
        dir.data().to_str().unwrap(),
    ]);
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!listed.lines().any(|l| l == "nobody"), "{listed}");
    // Invalid tenant ids in the URL are refused, not looked up.
    let server = Server::start(&dir);
    let resp = server.tenant("bad%20id").get("Patient");
    assert!(
        resp.status == 400 || resp.status == 404,
        "{} {}",
        resp.status,
        resp.text
    );
}
