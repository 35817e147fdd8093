//! FHIR R4 search basics (search.html): string, token, date, reference, AND/OR, `_id`,
//! `_lastUpdated`, `_count` paging, `total`.

mod common;

use common::{Fhir, link, match_ids, patient, resource_keys, sorted, start};
use serde_json::{Value, json};

/// PUT a Patient with a chosen id and extra elements.
fn put_patient(fhir: &Fhir, id: &str, family: &str, given: &str, extra: Value) {
    let mut p = patient(family, given);
    p["id"] = json!(id);
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            p[k] = v;
        }
    }
    fhir.upsert(&p);
}

#[track_caller]
fn assert_search(fhir: &Fhir, query: &str, expected: &[&str]) {
    assert_eq!(fhir.search_ids(query), sorted(expected), "search {query}");
}

#[test]
fn string_is_starts_with_case_and_accent_insensitive() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    put_patient(&fhir, "mueller-umlaut", "Müller", "Hans", json!({}));
    put_patient(&fhir, "muller-plain", "Muller", "Jana", json!({}));
    put_patient(&fhir, "mahler", "Mahler", "Gustav", json!({}));
    put_patient(&fhir, "schmueller", "Schmüller", "Ida", json!({}));

    assert_search(
        &fhir,
        "Patient?name=mül",
        &["mueller-umlaut", "muller-plain"],
    );
    assert_search(
        &fhir,
        "Patient?name=M%C3%BCl",
        &["mueller-umlaut", "muller-plain"],
    );
    assert_search(
        &fhir,
        "Patient?family=MUL",
        &["mueller-umlaut", "muller-plain"],
    );
    assert_search(
        &fhir,
        "Patient?family=m",
        &["mahler", "mueller-umlaut", "muller-plain"],
    );
    // `name` covers given names too.
    assert_search(&fhir, "Patient?name=gus", &["mahler"]);
    // Starts-with, not contains.
    assert_search(&fhir, "Patient?family=ller", &[]);
    // :exact is case- and accent-sensitive and matches the whole string.
    assert_search(&fhir, "Patient?family:exact=Müller", &["mueller-umlaut"]);
    assert_search(&fhir, "Patient?family:exact=Mül", &[]);
    assert_search(&fhir, "Patient?family:exact=müller", &[]);
    // :contains matches anywhere.
    assert_search(
        &fhir,
        "Patient?family:contains=LLER",
        &["mueller-umlaut", "muller-plain", "schmueller"],
    );
}

#[test]
fn token_system_and_code_forms() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    put_patient(
        &fhir,
        "a1",
        "Token",
        "A",
        json!({"identifier": [{"system": "urn:sys:a", "value": "1"}]}),
    );
    put_patient(
        &fhir,
        "b1",
        "Token",
        "B",
        json!({"identifier": [{"system": "urn:sys:b", "value": "1"}]}),
    );
    put_patient(
        &fhir,
        "none1",
        "Token",
        "N",
        json!({"identifier": [{"value": "1"}]}),
    );
    put_patient(
        &fhir,
        "a2",
        "Token",
        "C",
        json!({"identifier": [{"system": "urn:sys:a", "value": "2"}], "gender": "female"}),
    );

    assert_search(&fhir, "Patient?identifier=urn:sys:a|1", &["a1"]);
    assert_search(&fhir, "Patient?identifier=1", &["a1", "b1", "none1"]);
    assert_search(&fhir, "Patient?identifier=|1", &["none1"]);
    assert_search(&fhir, "Patient?identifier=urn:sys:a|", &["a1", "a2"]);
    assert_search(&fhir, "Patient?identifier=urn:sys:c|1", &[]);
    assert_search(&fhir, "Patient?gender=female", &["a2"]);
    // :not includes resources without the element; :missing asks for (no) value.
    assert_search(&fhir, "Patient?gender:not=female", &["a1", "b1", "none1"]);
    assert_search(&fhir, "Patient?gender:missing=true", &["a1", "b1", "none1"]);
    assert_search(&fhir, "Patient?gender:missing=false", &["a2"]);
    assert_search(
        &fhir,
        "Patient?gender=http://hl7.org/fhir/administrative-gender|female",
        &["a2"],
    );

    // CodeableConcept codes.
    let obs = |id: &str, system: &str, code: &str| {
        fhir.upsert(
            &json!({"resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": system, "code": code}]}}),
        );
    };
    obs("o-loinc", "http://loinc.org", "8302-2");
    obs("o-snomed", "http://snomed.info/sct", "8302-2");
    obs("o-other", "http://loinc.org", "29463-7");
    assert_search(
        &fhir,
        "Observation?code=http://loinc.org|8302-2",
        &["o-loinc"],
    );
    assert_search(&fhir, "Observation?code=8302-2", &["o-loinc", "o-snomed"]);
    assert_search(
        &fhir,
        "Observation?code=http://loinc.org|",
        &["o-loinc", "o-other"],
    );
    // OR by comma.
    assert_search(
        &fhir,
        "Observation?code=http://loinc.org|29463-7,http://snomed.info/sct|8302-2",
        &["o-other", "o-snomed"],
    );
}

#[test]
fn dates_with_prefixes_and_partial_precision() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    put_patient(
        &fhir,
        "d1979",
        "Datum",
        "A",
        json!({"birthDate": "1979-12-31"}),
    );
    put_patient(
        &fhir,
        "d1980a",
        "Datum",
        "B",
        json!({"birthDate": "1980-01-01"}),
    );
    put_patient(
        &fhir,
        "d1980b",
        "Datum",
        "C",
        json!({"birthDate": "1980-06-15"}),
    );
    put_patient(
        &fhir,
        "d1981",
        "Datum",
        "D",
        json!({"birthDate": "1981-03-03"}),
    );
    put_patient(&fhir, "dnone", "Datum", "E", json!({}));

    assert_search(&fhir, "Patient?birthdate=1980", &["d1980a", "d1980b"]);
    assert_search(&fhir, "Patient?birthdate=eq1980", &["d1980a", "d1980b"]);
    assert_search(&fhir, "Patient?birthdate=1980-06", &["d1980b"]);
    assert_search(&fhir, "Patient?birthdate=1980-06-15", &["d1980b"]);
    assert_search(&fhir, "Patient?birthdate=ne1980", &["d1979", "d1981"]);
    assert_search(&fhir, "Patient?birthdate=lt1980", &["d1979"]);
    assert_search(&fhir, "Patient?birthdate=gt1980", &["d1981"]);
    assert_search(
        &fhir,
        "Patient?birthdate=ge1980",
        &["d1980a", "d1980b", "d1981"],
    );
    assert_search(
        &fhir,
        "Patient?birthdate=le1980",
        &["d1979", "d1980a", "d1980b"],
    );
    assert_search(
        &fhir,
        "Patient?birthdate=ge1980-06-15",
        &["d1980b", "d1981"],
    );
    assert_search(
        &fhir,
        "Patient?birthdate=le1980-01-01",
        &["d1979", "d1980a"],
    );
    assert_search(&fhir, "Patient?birthdate=lt1980-01-01", &["d1979"]);
    // sa: starts after the search range; eb: ends before it.
    assert_search(&fhir, "Patient?birthdate=sa1980", &["d1981"]);
    assert_search(&fhir, "Patient?birthdate=eb1980", &["d1979"]);
    assert_search(&fhir, "Patient?birthdate:missing=true", &["dnone"]);
    // AND by repetition, OR by comma.
    assert_search(
        &fhir,
        "Patient?birthdate=ge1980-01-02&birthdate=lt1981",
        &["d1980b"],
    );
    assert_search(&fhir, "Patient?birthdate=1979,1981", &["d1979", "d1981"]);

    // dateTime with time zones: 23:30-02:00 on the 1st is after 12:00Z on the 1st.
    let obs = |id: &str, when: &str| {
        fhir.upsert(
            &json!({"resourceType": "Observation", "id": id, "status": "final",
            "code": {"text": "t"}, "effectiveDateTime": when}),
        );
    };
    obs("t1", "2024-03-01T23:30:00-02:00");
    obs("t2", "2024-03-01T12:00:00Z");
    assert_search(&fhir, "Observation?date=gt2024-03-02T01:00:00Z", &["t1"]);
    assert_search(
        &fhir,
        "Observation?date=lt2024-03-02T01:00:00%2B00:00",
        &["t2"],
    );
    assert_search(&fhir, "Observation?date=gt2024-03-01T12:00:00Z", &["t1"]);
    assert_search(
        &fhir,
        "Observation?date=ge2024-03-01T12:00:00Z",
        &["t1", "t2"],
    );
    assert_search(&fhir, "Observation?date=2024-03", &["t1", "t2"]);
}

#[test]
fn references_by_type_and_id() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    put_patient(&fhir, "p1", "Ref", "Eins", json!({}));
    put_patient(&fhir, "p2", "Ref", "Zwei", json!({}));
    let obs = |id: &str, subject: &str| {
        fhir.upsert(
            &json!({"resourceType": "Observation", "id": id, "status": "final",
            "code": {"text": "t"}, "subject": {"reference": subject}}),
        );
    };
    obs("o1", "Patient/p1");
    obs("o2", "Patient/p2");
    obs("o3", "Patient/p1");
    assert_search(&fhir, "Observation?subject=Patient/p1", &["o1", "o3"]);
    assert_search(&fhir, "Observation?subject=p1", &["o1", "o3"]);
    assert_search(&fhir, "Observation?patient=p2", &["o2"]);
    assert_search(&fhir, "Observation?subject:Patient=p1", &["o1", "o3"]);
    assert_search(
        &fhir,
        "Observation?subject=Patient/p1,Patient/p2",
        &["o1", "o2", "o3"],
    );
    assert_search(&fhir, "Observation?subject=Patient/nope", &[]);
    // An absolute reference to this server's base counts as the local one.
    assert_search(
        &fhir,
        &format!("Observation?subject={}/Patient/p2", fhir.base),
        &["o2"],
    );
}

#[test]
fn and_or_id_and_last_updated() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    put_patient(&fhir, "x1", "Kombi", "Anna", json!({"gender": "female"}));
    put_patient(&fhir, "x2", "Kombi", "Berta", json!({"gender": "female"}));
    put_patient(&fhir, "x3", "Kombi", "Anna", json!({"gender": "male"}));
    put_patient(&fhir, "x4", "Anders", "Anna", json!({"gender": "female"}));

    assert_search(&fhir, "Patient?family=kombi&given=anna", &["x1", "x3"]);
    assert_search(
        &fhir,
        "Patient?family=kombi&given=anna&gender=female",
        &["x1"],
    );
    assert_search(&fhir, "Patient?given=anna&given=an", &["x1", "x3", "x4"]);
    assert_search(
        &fhir,
        "Patient?given=berta,anna&family=kombi",
        &["x1", "x2", "x3"],
    );
    assert_search(&fhir, "Patient?_id=x2", &["x2"]);
    assert_search(&fhir, "Patient?_id=x2,x4,nope", &["x2", "x4"]);
    assert_search(&fhir, "Patient?_id=x1&gender=male", &[]);

    // _lastUpdated: x5 is written after everything above.
    put_patient(&fhir, "x5", "Kombi", "Zoe", json!({}));
    let x5 = fhir.get("Patient/x5").body;
    let ts = x5["meta"]["lastUpdated"]
        .as_str()
        .unwrap()
        .replace('+', "%2B");
    assert_search(&fhir, &format!("Patient?_lastUpdated=ge{ts}"), &["x5"]);
    assert_search(
        &fhir,
        &format!("Patient?_lastUpdated=lt{ts}"),
        &["x1", "x2", "x3", "x4"],
    );
    // A day-precision bound that covers every write so far.
    assert_search(
        &fhir,
        "Patient?_lastUpdated=gt2000-01-01",
        &["x1", "x2", "x3", "x4", "x5"],
    );
    assert_search(&fhir, "Patient?_lastUpdated=lt2000-01-01", &[]);
    // Deleted resources are not found.
    fhir.delete("Patient/x1");
    assert_search(&fhir, "Patient?family=kombi&given=anna", &["x3"]);
}

#[test]
fn count_paging_and_total() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    let mut expected = Vec::new();
    for i in 0..7 {
        let id = format!("page-{i}");
        put_patient(&fhir, &id, "Seite", &format!("N{i}"), json!({}));
        expected.push(id);
    }
    put_patient(&fhir, "other", "Anders", "O", json!({}));
    expected.sort();

    let first = fhir.get("Patient?family=seite&_count=3");
    first.expect(200);
    assert_eq!(first.body["type"], "searchset");
    assert_eq!(first.body["total"], 7, "{}", first.text);
    assert_eq!(match_ids(&first.body).len(), 3);
    assert!(link(&first.body, "self").is_some(), "self link");
    assert!(link(&first.body, "next").is_some(), "next link");
    // Entries carry fullUrl and search.mode.
    let e0 = &first.body["entry"][0];
    let full_url = e0["fullUrl"].as_str().unwrap();
    assert!(
        full_url.ends_with(&format!(
            "/Patient/{}",
            e0["resource"]["id"].as_str().unwrap()
        )),
        "{full_url}"
    );
    assert_eq!(e0["search"]["mode"], "match");

    let pages = fhir.search_pages("Patient?family=seite&_count=3");
    let sizes: Vec<usize> = pages
        .iter()
        .map(|p| match_ids(p).len())
        .filter(|&n| n > 0)
        .collect();
    assert_eq!(sizes, [3, 3, 1]);
    let mut all: Vec<String> = pages.iter().flat_map(match_ids).collect();
    all.sort();
    assert_eq!(all, expected, "every match exactly once across pages");

    // _count=0 and _summary=count: only the total.
    let count = fhir.get("Patient?family=seite&_summary=count");
    count.expect(200);
    assert_eq!(count.body["total"], 7);
    assert!(match_ids(&count.body).is_empty());
    let zero = fhir.get("Patient?family=seite&_count=0");
    zero.expect(200);
    assert_eq!(zero.body["total"], 7);
    assert!(match_ids(&zero.body).is_empty());

    // Searching by POST to _search gives the same result.
    let resp = reqwest::blocking::Client::new()
        .post(fhir.url("Patient/_search"))
        .bearer_auth(fhir.token().unwrap_or_default())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("family=seite&_count=100")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().unwrap();
    assert_eq!(match_ids(&body), expected);
}

#[test]
fn quantities_and_numbers() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    let obs = |id: &str, value: f64, code: &str| {
        fhir.upsert(&json!({"resourceType": "Observation", "id": id, "status": "final",
            "code": {"text": "t"},
            "valueQuantity": {"value": value, "unit": code, "system": "http://unitsofmeasure.org", "code": code}}));
    };
    obs("q1", 5.4, "mg/dL");
    obs("q2", 7.0, "mg/dL");
    obs("q3", 5.4, "mmol/L");
    let ucum = "http://unitsofmeasure.org";
    // A value without prefix matches within its precision: 5.4 is [5.35, 5.45).
    assert_search(
        &fhir,
        &format!("Observation?value-quantity=5.4|{ucum}|mg/dL"),
        &["q1"],
    );
    assert_search(&fhir, "Observation?value-quantity=5.4||mg/dL", &["q1"]);
    assert_search(&fhir, "Observation?value-quantity=5.4", &["q1", "q3"]);
    assert_search(
        &fhir,
        &format!("Observation?value-quantity=gt5|{ucum}|mg/dL"),
        &["q1", "q2"],
    );
    assert_search(
        &fhir,
        &format!("Observation?value-quantity=lt6|{ucum}|mg/dL"),
        &["q1"],
    );
    assert_search(
        &fhir,
        &format!("Observation?value-quantity=ge7|{ucum}|mg/dL"),
        &["q2"],
    );
    // 5 means [4.5, 5.5), which holds 5.4; 5.0 means [4.95, 5.05), which does not.
    assert_search(&fhir, "Observation?value-quantity=5", &["q1", "q3"]);
    assert_search(&fhir, "Observation?value-quantity=5.0", &[]);
}

#[test]
fn system_search_across_types() {
    let (_dir, server) = start();
    let fhir = server.fhir();
    put_patient(&fhir, "s1", "System", "S", json!({}));
    fhir.upsert(&json!({"resourceType": "Observation", "id": "s2", "status": "final", "code": {"text": "t"}}));
    let bundle = fhir.get("?_id=s1,s2");
    bundle.expect(200);
    assert_eq!(
        resource_keys(&bundle.body),
        ["Observation/s2", "Patient/s1"]
    );
}
