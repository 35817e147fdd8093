//! The MII core data set test Bundles (shared/reference/mii-kds-testdata), searched by the
//! parameters the MII KDS profiles are retrieved by. The reference folder documents no
//! CapabilityStatement with SHALL parameters, so these are the common ones:
//!
//! | profile | parameters |
//! |---|---|
//! | Patient | identifier, birthdate, gender |
//! | Condition (Diagnose) | code, subject, recorded-date |
//! | Observation (Laboratory and others) | code, date, subject, value-quantity |
//! | Encounter (Fall) | date, subject, class |
//! | Procedure | code, date |
//! | MedicationAdministration / MedicationStatement | medication, code, effective(-time) |
//! | Consent | patient, date |
//!
//! Every expected id set is computed from the raw Bundles (the last version of each resource),
//! with the FHIR matching rules written out here, and compared exactly with the server's answer
//! (all pages).

mod common;

#[path = "../../server/tests/reference_eval/dates.rs"]
#[allow(dead_code)]
mod dates;
#[path = "../../server/tests/reference_eval/decimal.rs"]
#[allow(dead_code)]
mod decimal;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use common::{Fhir, Server, TestDir};
use dates::Range;
use decimal::Dec;
use serde_json::Value;

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/reference/mii-kds-testdata"
);

fn load_bundles() -> Vec<Value> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(DATA)
        .unwrap_or_else(|e| panic!("{DATA}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert_eq!(paths.len(), 22, "expected the 22 MII Bundles in {DATA}");
    paths
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

fn entry_key(entry: &Value) -> String {
    let url = entry["request"]["url"].as_str().unwrap_or_default();
    if entry["request"]["method"] == "PUT" && url.contains('/') && !url.contains('?') {
        return url.to_owned();
    }
    let r = &entry["resource"];
    format!(
        "{}/{}",
        r["resourceType"].as_str().unwrap(),
        r["id"].as_str().unwrap()
    )
}

/// References to other entries' fullUrls become the local `Type/id` the server stores.
fn rewrite(value: &mut Value, map: &HashMap<String, String>) {
    match value {
        Value::Object(obj) => {
            for (k, v) in obj.iter_mut() {
                if k == "reference"
                    && let Some(target) = v.as_str().and_then(|s| map.get(s))
                {
                    *v = Value::String(target.clone());
                    continue;
                }
                rewrite(v, map);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite(v, map)),
        _ => {}
    }
}

/// Posts every Bundle as a transaction; returns what each `Type/id` holds afterwards.
fn post_all(fhir: &Fhir, bundles: &[Value]) -> BTreeMap<String, Value> {
    let mut current = BTreeMap::new();
    for bundle in bundles {
        let resp = fhir.post("", bundle);
        assert_eq!(resp.status, 200, "{}", resp.text);
        let entries = bundle["entry"].as_array().unwrap();
        let full_urls: HashMap<String, String> = entries
            .iter()
            .filter_map(|e| Some((e["fullUrl"].as_str()?.to_owned(), entry_key(e))))
            .collect();
        for e in entries {
            let mut r = e["resource"].clone();
            rewrite(&mut r, &full_urls);
            current.insert(entry_key(e), r);
        }
    }
    current
}

/// The resources of one type, by id.
fn of_type<'a>(current: &'a BTreeMap<String, Value>, ty: &str) -> Vec<(&'a str, &'a Value)> {
    current
        .iter()
        .filter_map(|(k, v)| {
            let (t, id) = k.split_once('/')?;
            (t == ty).then_some((id, v))
        })
        .collect()
}

fn codings(cc: &Value) -> Vec<(String, String)> {
    cc["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            Some((
                c["system"].as_str()?.to_owned(),
                c["code"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// A date target: date/dateTime by precision, Period from start to end (open ends unbounded).
fn target_range(value: &Value) -> Option<Range> {
    if let Some(s) = value.as_str() {
        return dates::parse(s);
    }
    let start = value.get("start").and_then(Value::as_str);
    let end = value.get("end").and_then(Value::as_str);
    if start.is_none() && end.is_none() {
        return None;
    }
    Some(Range {
        lo: start.and_then(dates::parse).map_or(i64::MIN, |r| r.lo),
        hi: end.and_then(dates::parse).map_or(i64::MAX, |r| r.hi),
    })
}

/// The R4 prefix table for ranges (search §3.1.1.4.1).
fn date_matches(prefix: &str, t: Range, s: Range) -> bool {
    let contained = t.lo >= s.lo && t.hi <= s.hi;
    match prefix {
        "" | "eq" => contained,
        "ne" => !contained,
        "gt" => t.hi > s.hi,
        "lt" => t.lo < s.lo,
        "ge" => t.hi > s.hi || contained,
        "le" => t.lo < s.lo || contained,
        "sa" => t.lo > s.hi,
        "eb" => t.hi < s.lo,
        other => panic!("prefix {other}"),
    }
}

/// Queries with their expected ids.
struct Expectations {
    queries: BTreeMap<String, BTreeSet<String>>,
}

impl Expectations {
    /// `ty?name=value`, expected: every resource of `ty` for which `pred` holds.
    fn add(
        &mut self,
        current: &BTreeMap<String, Value>,
        ty: &str,
        query: String,
        pred: impl Fn(&Value) -> bool,
    ) {
        let ids = of_type(current, ty)
            .into_iter()
            .filter(|(_, r)| pred(r))
            .map(|(id, _)| id.to_owned())
            .collect();
        self.queries.insert(format!("{ty}?{query}"), ids);
    }

    /// Date queries for each own date of the resources of `ty`: equality with the value itself,
    /// and the day of its start with every prefix.
    fn dates(
        &mut self,
        current: &BTreeMap<String, Value>,
        ty: &str,
        param: &str,
        targets: impl Fn(&Value) -> Vec<Value>,
    ) {
        let mut search_values = BTreeSet::new();
        // Each value is searched for as itself, and its day with one of the prefixes (in turn,
        // so that every prefix is used without multiplying the queries).
        let prefixes = ["", "ne", "gt", "lt", "ge", "le", "sa", "eb"];
        let mut turn = 0;
        for (_, r) in of_type(current, ty) {
            for t in targets(r) {
                let text = t
                    .as_str()
                    .or_else(|| t.get("start").and_then(Value::as_str))
                    .or_else(|| t.get("end").and_then(Value::as_str));
                if let Some(text) = text {
                    search_values.insert((String::new(), text.to_owned()));
                    let day = text.get(..10).unwrap_or(text).to_owned();
                    search_values.insert((prefixes[turn % prefixes.len()].to_owned(), day));
                    turn += 1;
                }
            }
        }
        for (prefix, value) in search_values {
            let s = dates::parse(&value).unwrap_or_else(|| panic!("{value}"));
            self.add(current, ty, format!("{param}={prefix}{value}"), |r| {
                targets(r)
                    .iter()
                    .filter_map(target_range)
                    .any(|t| date_matches(&prefix, t, s))
            });
        }
    }
}

/// A UCUM unit as (dimension, power of ten) for the units that occur in the data and are
/// comparable with one another: volumes (mL, L) and dimensionless units (1, %, annotations like
/// `{ratio}`). The server converts UCUM units, so `0.5|…|{ratio}` also finds `45 %`.
fn ucum_scale(code: &str) -> Option<(&'static str, i32)> {
    match code {
        "mL" | "ml" => Some(("volume", 0)),
        "L" | "l" => Some(("volume", 3)),
        "1" => Some(("one", 0)),
        "%" => Some(("one", -2)),
        c if c.starts_with('{') && c.ends_with('}') && !c[1..].contains('{') => Some(("one", 0)),
        _ => None,
    }
}

/// `value-quantity=value[|system|code]` with the precision range of `value`.
fn quantity_matches(q: &Value, value: &str, system: Option<&str>, code: Option<&str>) -> bool {
    let Some(v) = q["value"]
        .as_number()
        .and_then(|n| Dec::parse(&n.to_string()))
    else {
        return false;
    };
    let (lo, hi) = Dec::parse(value).expect("number").precision_range();
    let Some(code) = code else {
        return v >= lo && v < hi;
    };
    if q["system"].as_str() != system {
        return false;
    }
    let Some(have) = q["code"].as_str() else {
        return false;
    };
    if have == code {
        return v >= lo && v < hi;
    }
    match (ucum_scale(have), ucum_scale(code)) {
        (Some((da, a)), Some((db, b))) if da == db => {
            let v = v.times_pow10(a);
            v >= lo.times_pow10(b) && v < hi.times_pow10(b)
        }
        _ => false,
    }
}

fn expectations(current: &BTreeMap<String, Value>) -> Expectations {
    let mut ex = Expectations {
        queries: BTreeMap::new(),
    };
    let subject_of = |r: &Value, field: &str| r[field]["reference"].as_str().map(str::to_owned);

    // Patient: identifier, birthdate, gender.
    for (_, p) in of_type(current, "Patient") {
        for i in p["identifier"].as_array().into_iter().flatten() {
            let (Some(s), Some(v)) = (i["system"].as_str(), i["value"].as_str()) else {
                continue;
            };
            let has = |r: &Value, system: Option<&str>| {
                r["identifier"].as_array().into_iter().flatten().any(|j| {
                    j["value"].as_str() == Some(v)
                        && system.is_none_or(|s| j["system"].as_str() == Some(s))
                })
            };
            ex.add(current, "Patient", format!("identifier={s}|{v}"), |r| {
                has(r, Some(s))
            });
            ex.add(current, "Patient", format!("identifier={v}"), |r| {
                has(r, None)
            });
        }
    }
    for g in ["male", "female", "other", "unknown"] {
        ex.add(current, "Patient", format!("gender={g}"), |r| {
            r["gender"] == g
        });
    }
    ex.dates(current, "Patient", "birthdate", |r| {
        r.get("birthDate").cloned().into_iter().collect()
    });

    // Condition: code, subject, recorded-date.
    let mut codes: BTreeSet<(String, String, String)> = BTreeSet::new();
    for ty in ["Condition", "Observation", "Procedure"] {
        for (_, r) in of_type(current, ty) {
            for (s, c) in codings(&r["code"]) {
                codes.insert((ty.to_owned(), s, c));
            }
        }
    }
    for (ty, s, c) in &codes {
        ex.add(current, ty, format!("code={s}|{c}"), |r| {
            codings(&r["code"])
                .iter()
                .any(|(s2, c2)| s2 == s && c2 == c)
        });
        ex.add(current, ty, format!("code={c}"), |r| {
            codings(&r["code"]).iter().any(|(_, c2)| c2 == c)
        });
    }
    let mut subjects: BTreeSet<(String, String, String)> = BTreeSet::new();
    for (ty, field, param) in [
        ("Condition", "subject", "subject"),
        ("Observation", "subject", "subject"),
        ("Encounter", "subject", "subject"),
        ("Procedure", "subject", "subject"),
        ("MedicationAdministration", "subject", "subject"),
        ("MedicationStatement", "subject", "subject"),
        ("Consent", "patient", "patient"),
    ] {
        for (_, r) in of_type(current, ty) {
            if let Some(s) = subject_of(r, field) {
                subjects.insert((ty.to_owned(), field.to_owned(), format!("{param}={s}")));
            }
        }
    }
    for (ty, field, query) in &subjects {
        let target = query
            .split_once('=')
            .map(|(_, v)| v.to_owned())
            .unwrap_or_default();
        ex.add(current, ty, query.clone(), |r| {
            subject_of(r, field).as_deref() == Some(target.as_str())
        });
    }
    ex.dates(current, "Condition", "recorded-date", |r| {
        r.get("recordedDate").cloned().into_iter().collect()
    });

    // Observation: date (value-quantity: see `quantity_expectations`).
    ex.dates(current, "Observation", "date", |r| {
        ["effectiveDateTime", "effectivePeriod", "effectiveInstant"]
            .iter()
            .filter_map(|f| r.get(*f).cloned())
            .collect()
    });
    // Encounter: date (period), class.
    ex.dates(current, "Encounter", "date", |r| {
        r.get("period").cloned().into_iter().collect()
    });
    let mut classes = BTreeSet::new();
    for (_, r) in of_type(current, "Encounter") {
        if let (Some(s), Some(c)) = (r["class"]["system"].as_str(), r["class"]["code"].as_str()) {
            classes.insert((s.to_owned(), c.to_owned()));
        }
    }
    for (s, c) in &classes {
        ex.add(current, "Encounter", format!("class={s}|{c}"), |r| {
            r["class"]["system"].as_str() == Some(s) && r["class"]["code"].as_str() == Some(c)
        });
    }

    // Procedure: date (performed[x]).
    ex.dates(current, "Procedure", "date", |r| {
        ["performedDateTime", "performedPeriod"]
            .iter()
            .filter_map(|f| r.get(*f).cloned())
            .collect()
    });

    // Medication*: medication (reference), code (CodeableConcept), effective(-time).
    for (ty, date_param) in [
        ("MedicationAdministration", "effective-time"),
        ("MedicationStatement", "effective"),
    ] {
        let mut meds = BTreeSet::new();
        let mut med_codes = BTreeSet::new();
        for (_, r) in of_type(current, ty) {
            if let Some(m) = r["medicationReference"]["reference"].as_str() {
                meds.insert(m.to_owned());
            }
            for c in codings(&r["medicationCodeableConcept"]) {
                med_codes.insert(c);
            }
        }
        for m in &meds {
            ex.add(current, ty, format!("medication={m}"), |r| {
                r["medicationReference"]["reference"].as_str() == Some(m)
            });
        }
        for (s, c) in &med_codes {
            ex.add(current, ty, format!("code={s}|{c}"), |r| {
                codings(&r["medicationCodeableConcept"])
                    .iter()
                    .any(|(s2, c2)| s2 == s && c2 == c)
            });
        }
        ex.dates(current, ty, date_param, |r| {
            ["effectiveDateTime", "effectivePeriod"]
                .iter()
                .filter_map(|f| r.get(*f).cloned())
                .collect()
        });
    }

    // Consent: date (dateTime).
    ex.dates(current, "Consent", "date", |r| {
        r.get("dateTime").cloned().into_iter().collect()
    });
    ex
}

/// Observation `value-quantity` with each value of the data, alone and with its system and code.
fn quantity_expectations(current: &BTreeMap<String, Value>) -> Expectations {
    let mut ex = Expectations {
        queries: BTreeMap::new(),
    };
    let mut quantities: BTreeSet<(String, Option<String>, Option<String>)> = BTreeSet::new();
    for (_, r) in of_type(current, "Observation") {
        let q = &r["valueQuantity"];
        if let Some(v) = q["value"].as_number() {
            quantities.insert((v.to_string(), None, None));
            if let (Some(s), Some(c)) = (q["system"].as_str(), q["code"].as_str()) {
                quantities.insert((v.to_string(), Some(s.to_owned()), Some(c.to_owned())));
            }
        }
    }
    for (v, s, c) in &quantities {
        let query = match (s, c) {
            (Some(s), Some(c)) => format!("value-quantity={v}|{s}|{c}"),
            _ => format!("value-quantity={v}"),
        };
        ex.add(current, "Observation", query, |r| {
            r.get("valueQuantity")
                .is_some_and(|q| quantity_matches(q, v, s.as_deref(), c.as_deref()))
        });
    }

    ex
}

fn check(fhir: &Fhir, ex: &Expectations) {
    let mut failures = Vec::new();
    for (query, expected) in &ex.queries {
        let encoded = query.replace('+', "%2B").replace('#', "%23");
        let found: BTreeSet<String> = fhir
            .search_ids(&format!("{encoded}&_count=100"))
            .into_iter()
            .collect();
        if &found != expected {
            let missing: Vec<_> = expected.difference(&found).collect();
            let extra: Vec<_> = found.difference(expected).collect();
            failures.push(format!("{query}: missing {missing:?}, extra {extra:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} MII searches disagree with the data:\n{}",
        failures.len(),
        ex.queries.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn mii_required_parameters_find_what_the_bundles_say() {
    let dir = TestDir::new();
    let server = Server::start(&dir);
    let fhir = server.fhir();
    let current = post_all(&fhir, &load_bundles());
    let ex = expectations(&current);

    // Enough queries, and most of them find something, or the comparison means little.
    let non_empty = ex.queries.values().filter(|ids| !ids.is_empty()).count();
    assert!(
        ex.queries.len() > 500 && non_empty > 300,
        "{} queries, {non_empty} with matches",
        ex.queries.len()
    );
    for ty in [
        "Patient",
        "Condition",
        "Observation",
        "Encounter",
        "Procedure",
        "MedicationAdministration",
        "MedicationStatement",
        "Consent",
    ] {
        assert!(
            ex.queries.keys().any(|q| q.starts_with(&format!("{ty}?"))),
            "no queries for {ty}"
        );
    }

    check(&fhir, &ex);
}

#[test]
fn mii_value_quantity_finds_what_the_bundles_say() {
    let dir = TestDir::new();
    let server = Server::start(&dir);
    let fhir = server.fhir();
    let current = post_all(&fhir, &load_bundles());
    let ex = quantity_expectations(&current);
    assert!(ex.queries.len() > 100, "{} queries", ex.queries.len());
    check(&fhir, &ex);
}
