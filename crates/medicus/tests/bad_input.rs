//! Bad input gets a 4xx OperationOutcome, never a 500, and writes nothing.

mod common;

use common::{Options, Server, TestDir, patient, start};
use reqwest::Method;
use serde_json::json;

#[track_caller]
fn assert_invalid(resp: &common::Resp) {
    assert!(
        resp.status == 400 || resp.status == 422,
        "expected 400/422, got {} {}",
        resp.status,
        resp.text
    );
    resp.expect_outcome(resp.status);
    let issue = &resp.body["issue"][0];
    assert!(
        issue["code"].is_string(),
        "issue.code is required: {}",
        resp.text
    );
}

#[test]
fn malformed_json() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    for body in [
        &b"{\"resourceType\": \"Patient\","[..],
        b"",
        b"[1, 2, 3]",
        b"\"Patient\"",
        b"{\"resourceType\": \"Patient\", \"active\": true} trailing",
        b"{\"resourceType\": \"Patient\", \"name\": [{\"family\": \"\xff\xfe\"}]}",
    ] {
        let resp = fhir.send_raw(Method::POST, "Patient", Some(body.to_vec()), &[]);
        resp.expect_outcome(400);
        let resp = fhir.send_raw(Method::PUT, "Patient/x", Some(body.to_vec()), &[]);
        resp.expect_outcome(400);
        let resp = fhir.send_raw(Method::POST, "", Some(body.to_vec()), &[]);
        resp.expect_outcome(400);
    }
    assert_eq!(fhir.history_total("_history?_count=1"), 0);
}

#[test]
fn json_nested_too_deep() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    for depth in [200, 100_000] {
        let mut body = String::from("{\"resourceType\": \"Patient\", \"extension\": ");
        body.push_str(&"[{\"url\": \"http://x\", \"extension\": ".repeat(depth));
        body.push_str("[]");
        body.push_str(&"}]".repeat(depth));
        body.push('}');
        let resp = fhir.send_raw(Method::POST, "Patient", Some(body.into_bytes()), &[]);
        resp.expect_outcome(400);
    }
    // Deep nesting inside a transaction, too.
    let mut inner = String::from("[]");
    for _ in 0..10_000 {
        inner = format!("[{inner}]");
    }
    let body =
        format!("{{\"resourceType\": \"Bundle\", \"type\": \"transaction\", \"entry\": {inner}}}");
    fhir.send_raw(Method::POST, "", Some(body.into_bytes()), &[])
        .expect_outcome(400);
    assert_eq!(fhir.history_total("_history?_count=1"), 0);
    // Still alive.
    fhir.get("metadata").expect(200);
}

#[test]
fn body_over_the_limit_is_413() {
    let dir = TestDir::new();
    let server = Server::start_with(
        &dir,
        Options::default().env("MEDICUS_MAX_BODY_BYTES", "4096"),
    );
    let fhir = server.fhir();
    let mut big = patient("Gross", "Gerda");
    big["text"] = json!({"status": "generated",
        "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{}</div>", "x".repeat(8000))});
    fhir.post("Patient", &big).expect_outcome(413);
    big["id"] = json!("big");
    fhir.put("Patient/big", &big).expect_outcome(413);
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:11111111-2222-4333-8444-555555555555", "resource": big,
         "request": {"method": "POST", "url": "Patient"}}]});
    fhir.post("", &tx).expect_outcome(413);
    // Without a Content-Length (chunked), the limit holds too. The server may answer 413 and
    // close before the client has sent everything, so a cut connection is fine; any other
    // answer is not.
    let stream = reqwest::blocking::Body::new(std::io::Cursor::new(vec![b' '; 10_000]));
    let result = reqwest::blocking::Client::new()
        .post(fhir.url("Patient"))
        .bearer_auth(fhir.token().unwrap_or_default())
        .header("content-type", "application/fhir+json")
        .body(stream)
        .send();
    if let Ok(resp) = result {
        assert_eq!(resp.status(), 413, "chunked body over the limit");
    }
    // A small one still works.
    fhir.create(&patient("Klein", "Karl"));
    assert_eq!(fhir.history_total("_history?_count=1"), 1);
}

#[test]
fn wrong_content_type_is_415() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    let body = serde_json::to_vec(&patient("Typ", "Tom")).unwrap();
    for ct in [
        "text/plain",
        "application/xml",
        "application/fhir+xml",
        "application/x-www-form-urlencoded",
    ] {
        let resp = fhir.send_raw(
            Method::POST,
            "Patient",
            Some(body.clone()),
            &[("content-type", ct)],
        );
        resp.expect_outcome(415);
        let resp = fhir.send_raw(
            Method::PUT,
            "Patient/t",
            Some(body.clone()),
            &[("content-type", ct)],
        );
        resp.expect_outcome(415);
    }
    let resp = fhir.send_raw(
        Method::PATCH,
        "Patient/t",
        Some(b"[]".to_vec()),
        &[("content-type", "text/plain")],
    );
    resp.expect_outcome(415);
    assert_eq!(fhir.history_total("_history?_count=1"), 0);
    // application/json and a charset parameter are fine.
    let resp = fhir.send_raw(
        Method::POST,
        "Patient",
        Some(body.clone()),
        &[("content-type", "application/json")],
    );
    resp.expect(201);
    let resp = fhir.send_raw(
        Method::POST,
        "Patient",
        Some(body),
        &[("content-type", "application/fhir+json; charset=utf-8")],
    );
    resp.expect(201);
}

#[test]
fn unknown_resource_type_and_type_mismatch() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    // An unknown type in the URL is not found.
    fhir.post("Frobnicator", &json!({"resourceType": "Frobnicator"}))
        .expect_outcome(404);
    fhir.get("Frobnicator/1").expect_outcome(404);
    fhir.get("Frobnicator?name=x").expect_outcome(404);
    fhir.get("patient/1").expect_outcome(404);
    // An unknown or different type in the body is invalid.
    assert_invalid(&fhir.post("Patient", &json!({"resourceType": "Frobnicator"})));
    assert_invalid(&fhir.post(
        "Patient",
        &json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}),
    ));
    assert_invalid(&fhir.post("Patient", &json!({"name": [{"family": "NoType"}]})));
    assert_invalid(&fhir.put("Patient/p", &json!({"resourceType": "Observation", "id": "p", "status": "final", "code": {"text": "x"}})));
    assert_eq!(fhir.history_total("_history?_count=1"), 0);
}

#[test]
fn id_mismatch_and_bad_ids() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    let mut p = patient("Id", "Ida");
    p["id"] = json!("other");
    fhir.put("Patient/one", &p).expect_outcome(400);
    p.as_object_mut().unwrap().remove("id");
    fhir.put("Patient/one", &p).expect_outcome(400);
    // Ids are 1-64 of [A-Za-z0-9-.].
    p["id"] = json!("bad_id!");
    fhir.put("Patient/bad_id!", &p).expect_outcome(400);
    let long = "a".repeat(65);
    p["id"] = json!(long);
    fhir.put(&format!("Patient/{long}"), &p).expect_outcome(400);
    assert_eq!(fhir.history_total("_history?_count=1"), 0);
}

#[test]
fn invalid_content() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    for bad in [
        json!({"resourceType": "Patient", "birthDate": "1980-13-45"}),
        json!({"resourceType": "Patient", "birthDate": "yesterday"}),
        json!({"resourceType": "Patient", "birthDate": "1980-02-30"}),
        json!({"resourceType": "Patient", "deceasedDateTime": "2020-01-01T25:00:00Z"}),
        json!({"resourceType": "Patient", "gender": 1}),
        json!({"resourceType": "Patient", "active": "true"}),
        json!({"resourceType": "Patient", "unknownElement": true}),
        json!({"resourceType": "Patient", "name": {"family": "not an array"}}),
        json!({"resourceType": "Patient", "name": [{"family": ["array", "for a single value"]}]}),
        json!({"resourceType": "Patient", "name": []}),
        json!({"resourceType": "Patient", "name": [{}]}),
        json!({"resourceType": "Patient", "active": null}),
        json!({"resourceType": "Observation", "code": {"text": "missing required status"}}),
    ] {
        let rt = bad["resourceType"].as_str().unwrap();
        let resp = fhir.post(rt, &bad);
        assert_invalid(&resp);
        // The issue points at the element (FHIRPath in expression, or location).
        let issue = &resp.body["issue"][0];
        assert!(
            issue.get("expression").is_some()
                || issue.get("location").is_some()
                || issue.get("diagnostics").is_some(),
            "no hint where: {}",
            resp.text
        );
    }
    assert_eq!(fhir.history_total("_history?_count=1"), 0);
}

#[test]
fn conditional_create_with_several_matches_is_412() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    let mut p = patient("Mehrfach", "M");
    p["identifier"] = json!([{"system": "urn:test", "value": "dup"}]);
    fhir.create(&p);
    fhir.create(&p);
    fhir.post_with(
        "Patient",
        &p,
        &[("if-none-exist", "identifier=urn:test|dup")],
    )
    .expect_outcome(412);
    assert_eq!(fhir.history_total("_history?_count=1"), 2);
}

#[test]
fn bad_search_and_history_parameters() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    for query in [
        "Patient?birthdate=notadate",
        "Patient?birthdate=xx1980",
        "Patient?_count=abc",
        "_history?_since=yesterday",
        "Patient?_lastUpdated=2020-13",
    ] {
        let resp = fhir.get(query);
        resp.expect_outcome(400);
    }
    // Unknown parameters are ignored by default, but refused with handling=strict.
    fhir.get("Patient?nonsense=1").expect(200);
    fhir.get_with("Patient?nonsense=1", &[("prefer", "handling=strict")])
        .expect_outcome(400);
}

#[test]
fn unsupported_methods() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    let resp = fhir.send(Method::POST, "Patient/123", Some(&patient("A", "B")), &[]);
    assert!(
        resp.status == 405 || resp.status == 400,
        "{} {}",
        resp.status,
        resp.text
    );
    assert_eq!(
        resp.body["resourceType"], "OperationOutcome",
        "{}",
        resp.text
    );
    assert_eq!(fhir.history_total("_history?_count=1"), 0);
}

/// Deterministic xorshift, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Every JSON pointer in `v` (objects and arrays included).
fn pointers(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(x, p, out);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(x, p, out);
            }
        }
        _ => {}
    }
}

/// Mutated versions of a real MII transaction: never a 5xx, and a refused transaction writes
/// nothing.
#[test]
fn mutated_transactions_never_cause_5xx_or_partial_writes() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/reference/mii-kds-testdata/Bundle-mii-exa-test-data-bundle-dokument-1.json"
    );
    let original: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut all = Vec::new();
    pointers(&original, String::new(), &mut all);
    let replacements = [
        json!(null),
        json!(""),
        json!(0),
        json!(-1.5e300),
        json!(true),
        json!({}),
        json!([]),
        json!("urn:uuid:00000000-0000-4000-8000-000000000000"),
        json!("Patient/does-not-exist"),
        json!("\u{0000}\u{ffff}"),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut failures = Vec::new();
    for round in 0..150 {
        let mut bundle = original.clone();
        let target = &all[rng.below(all.len())];
        let raw = match rng.below(3) {
            0 => {
                // Remove the element.
                let (parent, key) = target.rsplit_once('/').unwrap();
                match bundle.pointer_mut(parent) {
                    Some(serde_json::Value::Object(o)) => {
                        o.remove(&key.replace("~1", "/").replace("~0", "~"));
                    }
                    Some(serde_json::Value::Array(a)) => {
                        a.remove(key.parse::<usize>().unwrap());
                    }
                    _ => {}
                }
                serde_json::to_vec(&bundle).unwrap()
            }
            1 => {
                // Replace it with a value of another shape.
                *bundle.pointer_mut(target).unwrap() =
                    replacements[rng.below(replacements.len())].clone();
                serde_json::to_vec(&bundle).unwrap()
            }
            _ => {
                // Cut the document short.
                let bytes = serde_json::to_vec(&bundle).unwrap();
                bytes[..rng.below(bytes.len())].to_vec()
            }
        };
        let before = fhir.history_total("_history?_count=1");
        let resp = fhir.send_raw(Method::POST, "", Some(raw), &[]);
        if resp.status >= 500 {
            failures.push(format!(
                "round {round} ({target}): {} {}",
                resp.status, resp.text
            ));
        } else if resp.status >= 400 {
            if resp.body["resourceType"] != "OperationOutcome" {
                failures.push(format!(
                    "round {round} ({target}): {} without OperationOutcome",
                    resp.status
                ));
            }
            let after = fhir.history_total("_history?_count=1");
            if after != before {
                failures.push(format!(
                    "round {round} ({target}): refused, but {} versions written",
                    after - before
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    fhir.get("metadata").expect(200);
}
