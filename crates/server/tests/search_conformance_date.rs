//! Conformance of date search parameters (FHIR R4 search §3.1.1.4.3 and the prefix table of
//! §3.1.1.4.1): search values and stored values are both ranges given by their precision; a
//! Period is the range from its start to its end (open ends are unbounded); a Timing is the range
//! of its events. The prefixes compare the two ranges:
//!
//! | prefix | the target range `t` matches the search range `s` when |
//! |---|---|
//! | eq | `s` contains `t` |
//! | ne | `s` does not contain `t` |
//! | gt | `t` ends after `s` |
//! | lt | `t` starts before `s` |
//! | ge | `gt` or `eq` |
//! | le | `lt` or `eq` |
//! | sa | `t` starts after `s` ends |
//! | eb | `t` ends before `s` starts |
//! | ap | `t` and `s` overlap, or are close (the spec leaves the tolerance to the server) |
//!
//! Dates without a time zone are taken as UTC.

mod common;

use common::TestApp;
use serde_json::{Value, json};

fn patient(id: &str, birth: Option<&str>) -> Value {
    let mut p = json!({"resourceType": "Patient", "id": id});
    if let Some(b) = birth {
        p["birthDate"] = json!(b);
    }
    p
}

fn observation(id: &str, effective: (&str, Value)) -> Value {
    let mut o =
        json!({"resourceType": "Observation", "id": id, "status": "final", "code": {"text": "x"}});
    o[effective.0] = effective.1;
    o
}

fn service_request(id: &str, occurrence: (&str, Value)) -> Value {
    let mut s = json!({"resourceType": "ServiceRequest", "id": id, "status": "active", "intent": "order",
                       "subject": {"reference": "Patient/b-1980"}});
    s[occurrence.0] = occurrence.1;
    s
}

fn fixtures() -> Vec<Value> {
    vec![
        patient("b-1980", Some("1980")),
        patient("b-198006", Some("1980-06")),
        patient("b-19800615", Some("1980-06-15")),
        patient("b-19800101", Some("1980-01-01")),
        patient("b-1981", Some("1981-03-04")),
        patient("b-1979", Some("1979-12-31")),
        patient("b-1900", Some("1900-01-01")),
        patient("b-none", None),
        observation(
            "o-sec",
            ("effectiveDateTime", json!("2024-03-01T10:30:15+01:00")),
        ),
        observation("o-day", ("effectiveDateTime", json!("2024-03-01"))),
        observation(
            "o-instant",
            ("effectiveInstant", json!("2024-03-01T09:30:15.250Z")),
        ),
        observation(
            "o-period",
            (
                "effectivePeriod",
                json!({"start": "2024-02-28", "end": "2024-03-02"}),
            ),
        ),
        observation(
            "o-open-end",
            ("effectivePeriod", json!({"start": "2024-03-01T12:00:00Z"})),
        ),
        observation(
            "o-open-start",
            ("effectivePeriod", json!({"end": "2024-02-01"})),
        ),
        // 2024-01-01T00:30:00Z in UTC, though the local date is still 2023.
        observation(
            "o-tz",
            ("effectiveDateTime", json!("2023-12-31T23:30:00-01:00")),
        ),
        service_request(
            "sr-timing",
            (
                "occurrenceTiming",
                json!({"event": ["2024-05-01T08:00:00Z", "2024-05-03T08:00:00Z"]}),
            ),
        ),
        service_request("sr-dt", ("occurrenceDateTime", json!("2024-05-02"))),
        service_request(
            "sr-period",
            (
                "occurrencePeriod",
                json!({"start": "2024-05-01", "end": "2024-05-31"}),
            ),
        ),
    ]
}

async fn app() -> TestApp {
    let app = TestApp::new();
    app.put_all(&fixtures()).await;
    app
}

/// Asserts that the matches include all of `must` and none of `must_not`.
async fn assert_includes(app: &TestApp, query: &str, must: &[&str], must_not: &[&str]) {
    let got = app.search_ids(&common::search_uri(query)).await;
    for id in must {
        assert!(
            got.iter().any(|g| g == id),
            "GET {query}: {id} missing from {got:?}"
        );
    }
    for id in must_not {
        assert!(
            !got.iter().any(|g| g == id),
            "GET {query}: {id} should not be in {got:?}"
        );
    }
}

#[tokio::test]
async fn eq_means_the_search_range_contains_the_target_range() {
    let app = app().await;
    app.assert_search(
        "Patient?birthdate=1980",
        &["b-1980", "b-198006", "b-19800615", "b-19800101"],
    )
    .await;
    app.assert_search(
        "Patient?birthdate=eq1980",
        &["b-1980", "b-198006", "b-19800615", "b-19800101"],
    )
    .await;
    // A year is not inside one of its months.
    app.assert_search("Patient?birthdate=1980-06", &["b-198006", "b-19800615"])
        .await;
    app.assert_search("Patient?birthdate=1980-06-15", &["b-19800615"])
        .await;
    app.assert_search("Patient?birthdate=1980-06-16", &[]).await;
    app.assert_search(
        "Patient?birthdate=1980-06,1981",
        &["b-198006", "b-19800615", "b-1981"],
    )
    .await;
}

#[tokio::test]
async fn every_prefix_on_a_date_element() {
    let app = app().await;
    app.assert_search(
        "Patient?birthdate=ne1980-06",
        &["b-1980", "b-19800101", "b-1981", "b-1979", "b-1900"],
    )
    .await;
    app.assert_search(
        "Patient?birthdate=lt1980-06",
        &["b-1980", "b-19800101", "b-1979", "b-1900"],
    )
    .await;
    app.assert_search("Patient?birthdate=gt1980-06", &["b-1980", "b-1981"])
        .await;
    app.assert_search(
        "Patient?birthdate=ge1980-06",
        &["b-1980", "b-1981", "b-198006", "b-19800615"],
    )
    .await;
    app.assert_search(
        "Patient?birthdate=le1980-06",
        &[
            "b-1980",
            "b-19800101",
            "b-1979",
            "b-1900",
            "b-198006",
            "b-19800615",
        ],
    )
    .await;
    app.assert_search("Patient?birthdate=sa1980-06", &["b-1981"])
        .await;
    app.assert_search(
        "Patient?birthdate=eb1980-06",
        &["b-19800101", "b-1979", "b-1900"],
    )
    .await;
    assert_includes(
        &app,
        "Patient?birthdate=ap1980-06",
        &["b-1980", "b-198006", "b-19800615"],
        &["b-1900", "b-none"],
    )
    .await;
    // Exact day boundaries.
    app.assert_search(
        "Patient?birthdate=gt1979-12-31",
        &["b-1980", "b-198006", "b-19800615", "b-19800101", "b-1981"],
    )
    .await;
    app.assert_search("Patient?birthdate=lt1980-01-01", &["b-1979", "b-1900"])
        .await;
    app.assert_search(
        "Patient?birthdate=le1980-01-01",
        &["b-1979", "b-1900", "b-19800101"],
    )
    .await;
}

#[tokio::test]
async fn date_time_instant_and_time_zones() {
    let app = app().await;
    // A day (UTC) contains the second, the day and the instant that fall in it.
    app.assert_search(
        "Observation?date=2024-03-01",
        &["o-sec", "o-day", "o-instant"],
    )
    .await;
    // A second contains the instant within it, in any time zone notation.
    app.assert_search(
        "Observation?date=2024-03-01T09:30:15Z",
        &["o-sec", "o-instant"],
    )
    .await;
    app.assert_search(
        "Observation?date=2024-03-01T10:30:15+01:00",
        &["o-sec", "o-instant"],
    )
    .await;
    app.assert_search(
        "Observation?date=2024-03-01T04:30:15-05:00",
        &["o-sec", "o-instant"],
    )
    .await;
    app.assert_search("Observation?date=2024-03-01T09:30:16Z", &[])
        .await;
    // Local 2023-12-31T23:30-01:00 is 2024 in UTC.
    app.assert_search(
        "Observation?date=2024",
        &["o-sec", "o-day", "o-instant", "o-period", "o-tz"],
    )
    .await;
    app.assert_search("Observation?date=2023", &[]).await;
    app.assert_search("Observation?date=2024-01-01", &["o-tz"])
        .await;
    app.assert_search("Observation?date=2024-01-01T00:30:00Z", &["o-tz"])
        .await;
}

#[tokio::test]
async fn periods_with_open_ends() {
    let app = app().await;
    app.assert_search("Observation?date=gt2024-03-01", &["o-period", "o-open-end"])
        .await;
    app.assert_search(
        "Observation?date=lt2024-03-01",
        &["o-period", "o-open-start", "o-tz"],
    )
    .await;
    // Only the open end reaches beyond the 2nd; the closed period is not contained in the 2nd.
    app.assert_search("Observation?date=ge2024-03-02", &["o-open-end"])
        .await;
    app.assert_search(
        "Observation?date=le2024-03-01",
        &[
            "o-period",
            "o-open-start",
            "o-tz",
            "o-sec",
            "o-day",
            "o-instant",
        ],
    )
    .await;
    app.assert_search("Observation?date=sa2024-03-01", &[])
        .await;
    app.assert_search(
        "Observation?date=sa2024-02-29",
        &["o-sec", "o-day", "o-instant", "o-open-end"],
    )
    .await;
    app.assert_search("Observation?date=eb2024-03-01", &["o-open-start", "o-tz"])
        .await;
    app.assert_search(
        "Observation?date=ne2024-03-01",
        &["o-period", "o-open-end", "o-open-start", "o-tz"],
    )
    .await;
    // The open end starts before the 2nd, so it is `le` the 2nd as well.
    app.assert_search(
        "Observation?date=ge2024-02-28&date=le2024-03-02",
        &["o-sec", "o-day", "o-instant", "o-period", "o-open-end"],
    )
    .await;
    assert_includes(
        &app,
        "Observation?date=ap2024-03-01",
        &["o-sec", "o-day", "o-instant", "o-period", "o-open-end"],
        &[],
    )
    .await;
}

#[tokio::test]
async fn and_or_of_date_values() {
    let app = app().await;
    app.assert_search(
        "Observation?date=ge2024-02-29&date=le2024-03-01",
        &["o-sec", "o-day", "o-instant", "o-period"],
    )
    .await;
    app.assert_search(
        "Observation?date=2024-03-01T09:30:15Z,2024-01",
        &["o-sec", "o-instant", "o-tz"],
    )
    .await;
}

#[tokio::test]
async fn timing_is_the_range_of_its_events() {
    let app = app().await;
    app.assert_search(
        "ServiceRequest?occurrence=2024-05",
        &["sr-timing", "sr-dt", "sr-period"],
    )
    .await;
    app.assert_search("ServiceRequest?occurrence=2024-05-02", &["sr-dt"])
        .await;
    app.assert_search("ServiceRequest?occurrence=ge2024-05-03", &["sr-period"])
        .await;
    app.assert_search(
        "ServiceRequest?occurrence=sa2024-04-30",
        &["sr-timing", "sr-dt", "sr-period"],
    )
    .await;
    app.assert_search(
        "ServiceRequest?occurrence=eb2024-05-04",
        &["sr-timing", "sr-dt"],
    )
    .await;
    app.assert_search(
        "ServiceRequest?occurrence=lt2024-05-02",
        &["sr-timing", "sr-period"],
    )
    .await;
}

#[tokio::test]
async fn missing() {
    let app = app().await;
    app.assert_search("Patient?birthdate:missing=true", &["b-none"])
        .await;
    assert_eq!(
        app.search_ids(&common::search_uri("Patient?birthdate:missing=false"))
            .await
            .len(),
        7
    );
}

const MALFORMED: [&str; 11] = [
    "1980-13",
    "1980-02-30",
    "xx1980",
    "gt",
    "eq",
    "1980-06-15T25:00:00Z",
    "1980-6-1",
    "19800615",
    "' OR 1=1 --",
    "%",
    "ge1980-06-15T10:00:00+25:00",
];

#[tokio::test]
async fn malformed_dates_and_prefixes_are_400() {
    let app = app().await;
    for bad in MALFORMED {
        app.assert_rejected(&format!("Patient?birthdate={bad}"))
            .await;
    }
    app.assert_rejected("Observation?date=2024-03-01,notadate")
        .await;
    app.assert_rejected("Observation?date:exact=2024").await;
}

#[tokio::test]
async fn malformed_dates_name_the_parameter() {
    let app = app().await;
    for bad in MALFORMED {
        app.assert_bad_search(&format!("Patient?birthdate={bad}"), "birthdate")
            .await;
    }
    app.assert_bad_search("Observation?date=2024-03-01,notadate", "date")
        .await;
}
