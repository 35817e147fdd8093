//! The engine's exact (pre-noise) counts equal the reference evaluator's, which scans the
//! generated NDJSON directly: on 240 random CCDL queries covering every criterion type, on the
//! shipped CCDL example, after updates and deletes through the change feed, and after a
//! snapshot round trip.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use medicus_cohort::ccdl::{
    AttributeFilter, Ccdl, Comparator, Criterion, Filter, TermCode, TimeRestriction, Unit,
};
use medicus_cohort::consent::MiiBroadConsent;
use medicus_cohort::date::days_from_civil;
use medicus_cohort::plan::{self, ATC, ICD10GM, ICD10GM_OLD, LOINC, OPS};
use medicus_cohort::reference::ReferenceData;
use medicus_cohort::{CohortEngine, compile};
use medicus_store::{Precondition, SqliteStore, Store};
use medicus_synth::{GeneratorConfig, write_ndjson};
use serde_json::Value;

const TENANT: &str = "default";

fn today() -> i32 {
    let (y, m, d) = medicus_synth::AS_OF;
    days_from_civil(y, m, d)
}

fn read_ndjson(dir: &Path) -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        for line in std::io::BufReader::new(std::fs::File::open(f).unwrap()).lines() {
            let line = line.unwrap();
            if !line.trim().is_empty() {
                out.push(serde_json::from_str(&line).unwrap());
            }
        }
    }
    out
}

fn put_all(store: &dyn Store, tenant: &str, resources: &[Value]) {
    store.create_tenant(tenant).unwrap();
    for chunk in resources.chunks(500) {
        let mut s = store.write_session(tenant).unwrap();
        for r in chunk {
            let rt = r["resourceType"].as_str().unwrap();
            let id = r["id"].as_str().unwrap();
            s.put(rt, id, r.clone(), Precondition::None).unwrap();
        }
        s.commit().unwrap();
    }
}

/// Codes, values and units seen in the data, to draw queries from.
#[derive(Default)]
struct Pool {
    icd: BTreeSet<String>,
    ops: BTreeSet<String>,
    labs: BTreeMap<String, (String, Vec<f64>)>,
    interpretations: BTreeSet<(String, String)>,
    atc: BTreeSet<String>,
    doses: Vec<(f64, String)>,
    dates: Vec<String>,
}

impl Pool {
    fn from(resources: &[Value]) -> Pool {
        let mut p = Pool::default();
        for r in resources {
            let code = r["code"]["coding"][0]["code"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            match r["resourceType"].as_str().unwrap_or("") {
                "Condition" => {
                    p.icd.insert(code);
                    if let Some(d) = r["onsetDateTime"].as_str() {
                        p.dates.push(d[..10].to_owned());
                    }
                }
                "Procedure" => {
                    p.ops.insert(code);
                }
                "Medication" => {
                    p.atc.insert(code);
                }
                "Observation" => {
                    if let (Some(v), Some(u)) = (
                        r["valueQuantity"]["value"].as_f64(),
                        r["valueQuantity"]["code"].as_str(),
                    ) {
                        let e = p
                            .labs
                            .entry(code)
                            .or_insert_with(|| (u.to_owned(), Vec::new()));
                        e.1.push(v);
                    }
                    if let Some(i) = r["interpretation"][0]["coding"][0].as_object() {
                        p.interpretations.insert((
                            i["system"].as_str().unwrap_or("").to_owned(),
                            i["code"].as_str().unwrap_or("").to_owned(),
                        ));
                    }
                }
                "MedicationStatement" => {
                    let q = &r["dosage"][0]["doseAndRate"][0]["doseQuantity"];
                    if let (Some(v), Some(u)) = (q["value"].as_f64(), q["code"].as_str()) {
                        p.doses.push((v, u.to_owned()));
                    }
                }
                _ => {}
            }
        }
        p
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

fn ctx(code: &str) -> TermCode {
    TermCode::new(plan::CONTEXT_SYSTEM, code)
}

fn num_filter(rng: &mut Rng, values: &[f64], unit: Option<Unit>) -> Filter {
    let a = *rng.pick(values);
    let b = *rng.pick(values);
    match rng.below(7) {
        0 => Filter::Range {
            min_value: a.min(b),
            max_value: a.max(b),
            unit,
        },
        n => Filter::Comparator {
            comparator: [
                Comparator::Gt,
                Comparator::Ge,
                Comparator::Lt,
                Comparator::Le,
                Comparator::Eq,
                Comparator::Ne,
            ][n - 1],
            value: a,
            unit,
        },
    }
}

fn time(rng: &mut Rng, pool: &Pool) -> Option<TimeRestriction> {
    if !rng.chance(35) || pool.dates.is_empty() {
        return None;
    }
    let mut a = rng.pick(&pool.dates).clone();
    let mut b = rng.pick(&pool.dates).clone();
    if a > b {
        std::mem::swap(&mut a, &mut b);
    }
    Some(match rng.below(3) {
        0 => TimeRestriction {
            after_date: Some(a),
            before_date: None,
        },
        1 => TimeRestriction {
            after_date: None,
            before_date: Some(b),
        },
        _ => TimeRestriction {
            after_date: Some(a),
            before_date: Some(b),
        },
    })
}

fn prefix(rng: &mut Rng, code: &str, min: usize) -> String {
    let cut = min + rng.below(code.len().saturating_sub(min) + 1);
    code[..cut.min(code.len())].to_owned()
}

fn diagnosis(rng: &mut Rng, pool: &Pool, nested: bool) -> Criterion {
    let icd: Vec<&String> = pool.icd.iter().collect();
    let code = {
        let c = rng_pick_str(rng, &icd);
        prefix(rng, c, 3)
    };
    let system = if rng.chance(50) { ICD10GM } else { ICD10GM_OLD };
    let mut attribute_filters = Vec::new();
    if rng.chance(30) {
        attribute_filters.push(AttributeFilter {
            attribute_code: TermCode::new(
                "http://hl7.org/fhir/StructureDefinition",
                "clinicalStatus",
            ),
            filter: Filter::Concept {
                selected_concepts: vec![TermCode::new(
                    "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    if rng.chance(70) { "active" } else { "resolved" },
                )],
            },
        });
    }
    Criterion {
        context: ctx("Diagnose"),
        term_codes: vec![TermCode::new(system, &code)],
        value_filter: None,
        attribute_filters,
        time_restriction: if nested { None } else { time(rng, pool) },
    }
}

fn rng_pick_str<'a>(rng: &mut Rng, v: &[&'a String]) -> &'a str {
    v[rng.below(v.len())].as_str()
}

fn criterion(rng: &mut Rng, pool: &Pool) -> Criterion {
    match rng.below(8) {
        0 => diagnosis(rng, pool, false),
        1 => {
            let ops: Vec<&String> = pool.ops.iter().collect();
            let code = {
                let c = rng_pick_str(rng, &ops);
                prefix(rng, c, 4)
            };
            Criterion {
                context: ctx("Prozedur"),
                term_codes: vec![TermCode::new(OPS, &code)],
                value_filter: None,
                attribute_filters: vec![],
                time_restriction: time(rng, pool),
            }
        }
        2 | 3 => {
            let labs: Vec<(&String, &(String, Vec<f64>))> = pool.labs.iter().collect();
            let (code, (unit, values)) = *rng.pick(&labs);
            let unit = match rng.below(4) {
                0 => None,
                // A known unit that this test does not use: nothing matches.
                1 => Some(Unit {
                    code: "mg/L".into(),
                    display: "mg/L".into(),
                }),
                _ => Some(Unit {
                    code: unit.clone(),
                    display: unit.clone(),
                }),
            };
            let mut attribute_filters = Vec::new();
            if rng.chance(20) {
                let list: Vec<&(String, String)> = pool.interpretations.iter().collect();
                let (s, c) = *rng.pick(&list);
                attribute_filters.push(AttributeFilter {
                    attribute_code: TermCode::new("x", "interpretation"),
                    filter: Filter::Concept {
                        selected_concepts: vec![TermCode::new(s, c)],
                    },
                });
            }
            Criterion {
                context: ctx("Laboruntersuchung"),
                term_codes: vec![TermCode::new(LOINC, code)],
                value_filter: if rng.chance(80) {
                    Some(num_filter(rng, values, unit))
                } else {
                    None
                },
                attribute_filters,
                time_restriction: time(rng, pool),
            }
        }
        4 => {
            let atc: Vec<&String> = pool.atc.iter().collect();
            let code = {
                let c = rng_pick_str(rng, &atc);
                prefix(rng, c, 1)
            };
            let statement = rng.chance(50);
            let mut attribute_filters = Vec::new();
            if rng.chance(30) && !pool.doses.is_empty() {
                let (_, u) = rng.pick(&pool.doses).clone();
                let values: Vec<f64> = pool.doses.iter().map(|d| d.0).collect();
                attribute_filters.push(AttributeFilter {
                    attribute_code: TermCode::new("x", "dose"),
                    filter: {
                        let unit = if rng.chance(50) {
                            Some(Unit {
                                code: u.clone(),
                                display: u,
                            })
                        } else {
                            None
                        };
                        num_filter(rng, &values, unit)
                    },
                });
            }
            if statement && rng.chance(50) {
                let n = 1 + rng.below(2);
                attribute_filters.push(AttributeFilter {
                    attribute_code: TermCode::new("x", "reasonReference"),
                    filter: Filter::Reference {
                        criteria: (0..n).map(|_| diagnosis(rng, pool, true)).collect(),
                    },
                });
            }
            Criterion {
                context: ctx(if statement {
                    "Medikamentenverordnung"
                } else {
                    "Medikation"
                }),
                term_codes: vec![TermCode::new(
                    if rng.chance(50) { ATC } else { plan::ATC_WHO },
                    &code,
                )],
                value_filter: None,
                attribute_filters,
                time_restriction: time(rng, pool),
            }
        }
        5 => {
            let all = ["F", "M", "female", "male", "D", "unknown"];
            let n = 1 + rng.below(2);
            Criterion {
                context: ctx("Patient"),
                term_codes: vec![TermCode::new(LOINC, "LL2191-6")],
                value_filter: Some(Filter::Concept {
                    selected_concepts: (0..n)
                        .map(|_| TermCode::new("", all[rng.below(all.len())]))
                        .collect(),
                }),
                attribute_filters: vec![],
                time_restriction: None,
            }
        }
        6 => {
            let ages: Vec<f64> = (0..100).map(f64::from).collect();
            let unit = ["a", "year", "mo"][rng.below(3)];
            let mut f = num_filter(
                rng,
                &ages,
                Some(Unit {
                    code: unit.into(),
                    display: unit.into(),
                }),
            );
            if unit == "mo" {
                f = match f {
                    Filter::Comparator {
                        comparator,
                        value,
                        unit,
                    } => Filter::Comparator {
                        comparator,
                        value: value * 12.0,
                        unit,
                    },
                    Filter::Range {
                        min_value,
                        max_value,
                        unit,
                    } => Filter::Range {
                        min_value: min_value * 12.0,
                        max_value: max_value * 12.0,
                        unit,
                    },
                    other => other,
                };
            }
            Criterion {
                context: ctx("Patient"),
                term_codes: vec![TermCode::new(LOINC, plan::AGE_CODE)],
                value_filter: Some(f),
                attribute_filters: vec![],
                time_restriction: None,
            }
        }
        _ => {
            let code = ["6", "7", "8", "9", "37", "44", "45"][rng.below(7)];
            Criterion {
                context: ctx("Einwilligung"),
                term_codes: vec![TermCode::new(
                    plan::CONSENT_POLICY,
                    &format!("2.16.840.1.113883.3.1937.777.24.5.3.{code}"),
                )],
                value_filter: None,
                attribute_filters: vec![],
                time_restriction: time(rng, pool),
            }
        }
    }
}

fn query(rng: &mut Rng, pool: &Pool) -> Ccdl {
    let groups = |rng: &mut Rng, n: usize, width: usize| -> Vec<Vec<Criterion>> {
        (0..n)
            .map(|_| {
                (0..1 + rng.below(width))
                    .map(|_| criterion(rng, pool))
                    .collect()
            })
            .collect()
    };
    let inc = 1 + rng.below(3);
    let exc = rng.below(3);
    let inclusion_criteria = groups(rng, inc, 3);
    let exclusion_criteria = groups(rng, exc, 2);
    Ccdl {
        version: "2".into(),
        display: None,
        inclusion_criteria,
        exclusion_criteria,
    }
}

fn generate(dir: &Path, patients: u64, seed: u64) {
    let config = GeneratorConfig {
        patients,
        hospitals: 2,
        seed,
        resources_per_patient: 25,
        threads: 2,
        ..GeneratorConfig::default()
    };
    write_ndjson(&config, dir, |_| {}).unwrap();
}

#[test]
fn engine_counts_equal_the_reference_on_random_queries_and_after_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("ndjson");
    generate(&data, 300, 42);
    let resources = read_ndjson(&data);
    let pool = Pool::from(&resources);
    let reference = ReferenceData::load_dir(&data).unwrap();

    let store = SqliteStore::open(&tmp.path().join("store")).unwrap();
    put_all(&store, TENANT, &resources);
    let eligibility = Arc::new(MiiBroadConsent::default());
    let engine = CohortEngine::new(eligibility.clone());
    let stats = engine.build(&store).unwrap();
    assert_eq!(
        stats.resources as usize,
        resources.len() - {
            // Organizations and Encounters, DiagnosticReports are not read.
            resources
                .iter()
                .filter(|r| {
                    !medicus_cohort::engine::TYPES.contains(&r["resourceType"].as_str().unwrap())
                })
                .count()
        }
    );

    let today = today();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut nonzero = 0;
    let mut kinds = BTreeSet::new();
    for i in 0..240 {
        let q = query(&mut rng, &pool);
        // Every generated query is valid CCDL and survives its JSON form.
        let q = Ccdl::from_json(&q.to_json()).unwrap();
        for c in q
            .inclusion_criteria
            .iter()
            .chain(&q.exclusion_criteria)
            .flatten()
        {
            kinds.insert(c.context.code.clone());
            if let Some(f) = &c.value_filter {
                kinds.insert(format!("{:?}", std::mem::discriminant(f)));
            }
            for a in &c.attribute_filters {
                kinds.insert(format!("attr {}", a.attribute_code.code));
            }
            if c.time_restriction.is_some() {
                kinds.insert("time".into());
            }
        }
        let plan = compile(&q).unwrap_or_else(|e| panic!("query {i}: {e}\n{}", q.to_json()));
        let want = reference.count(&plan, today, &*eligibility);
        let got = engine.count(TENANT, &plan, today);
        assert_eq!(got, want, "query {i}: {}", q.to_json());
        if want > 0 {
            nonzero += 1;
        }
    }
    assert!(nonzero >= 80, "only {nonzero} of 240 queries match anyone");
    assert!(kinds.len() >= 14, "criterion kinds covered: {kinds:?}");

    // The shipped example, and the masked universe (everyone of either gender).
    let example = include_str!("../data/ccdl/ccdl-all-properties.json");
    let plan = compile(&Ccdl::from_json(example).unwrap()).unwrap();
    assert_eq!(
        engine.count(TENANT, &plan, today),
        reference.count(&plan, today, &*eligibility)
    );
    let everyone = medicus_cohort::parse_query("gender:F,M,D,U", Default::default()).unwrap();
    let all = engine.count(TENANT, &everyone, today);
    assert_eq!(all, reference.count(&everyone, today, &*eligibility));
    assert!(
        all > 100 && all < 300,
        "the consent mask removes some of 300: {all}"
    );

    // Changes through the feed: delete some resources, change others, then compare with a
    // reference over the resulting data.
    let mut current: BTreeMap<(String, String), Value> = resources
        .iter()
        .map(|r| {
            (
                (
                    r["resourceType"].as_str().unwrap().to_owned(),
                    r["id"].as_str().unwrap().to_owned(),
                ),
                r.clone(),
            )
        })
        .collect();
    let keys: Vec<(String, String)> = current.keys().cloned().collect();
    let mut s = store.write_session(TENANT).unwrap();
    for (n, (rt, id)) in keys.iter().enumerate() {
        if rt == "Organization" || rt == "Medication" {
            continue;
        }
        match n % 17 {
            0 => {
                s.delete(rt, id, Precondition::None).unwrap();
                current.remove(&(rt.clone(), id.clone()));
            }
            1 => {
                let mut r = current[&(rt.clone(), id.clone())].clone();
                match rt.as_str() {
                    "Condition" => r["code"]["coding"][0]["code"] = "E11.9".into(),
                    "Observation" => {
                        if r["valueQuantity"].is_object() {
                            r["valueQuantity"]["value"] = serde_json::json!(7.7);
                        }
                        r["effectiveDateTime"] = "2021-06-01T10:00:00+01:00".into();
                    }
                    "Patient" => r["gender"] = "female".into(),
                    "Consent" => r["status"] = "inactive".into(),
                    _ => {}
                }
                s.put(rt, id, r.clone(), Precondition::None).unwrap();
                current.insert((rt.clone(), id.clone()), r);
            }
            _ => {}
        }
    }
    s.commit().unwrap();
    let applied = engine.catch_up(&store).unwrap();
    assert!(applied > 100);
    let mut after = ReferenceData::new();
    for r in current.values() {
        after.add(r);
    }
    let mut rng = Rng(7);
    for i in 0..60 {
        let q = query(&mut rng, &pool);
        let plan = compile(&q).unwrap();
        assert_eq!(
            engine.count(TENANT, &plan, today),
            after.count(&plan, today, &*eligibility),
            "after changes, query {i}: {}",
            q.to_json()
        );
    }
    let e11 = medicus_cohort::parse_query("icd:E11", Default::default()).unwrap();
    assert_eq!(
        engine.count(TENANT, &e11, today),
        after.count(&e11, today, &*eligibility)
    );

    // Snapshot round trip, then more changes followed from the snapshot's position.
    let snap = tmp.path().join("data").join("cohort.snapshot");
    engine.save_snapshot(&snap).unwrap();
    let restarted = CohortEngine::new(eligibility.clone());
    restarted.load_snapshot(&snap).unwrap();
    assert_eq!(restarted.position(), engine.position());
    let mut rng = Rng(99);
    for _ in 0..40 {
        let plan = compile(&query(&mut rng, &pool)).unwrap();
        assert_eq!(
            restarted.count(TENANT, &plan, today),
            engine.count(TENANT, &plan, today)
        );
    }
    let mut s = store.write_session(TENANT).unwrap();
    let mut c = current
        .values()
        .find(|r| r["resourceType"] == "Condition")
        .unwrap()
        .clone();
    c["code"]["coding"][0]["code"] = "Q99.9".into();
    let cid = c["id"].as_str().unwrap().to_owned();
    s.put("Condition", &cid, c, Precondition::None).unwrap();
    s.commit().unwrap();
    restarted.catch_up(&store).unwrap();
    let q99 = medicus_cohort::parse_query("icd:Q99", Default::default()).unwrap();
    let masked = restarted.count(TENANT, &q99, today);
    assert!(masked <= 1);
}

#[test]
fn snapshot_corruption_is_refused_and_open_rebuilds() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("ndjson");
    generate(&data, 40, 5);
    let resources = read_ndjson(&data);
    let store = SqliteStore::open(&tmp.path().join("store")).unwrap();
    put_all(&store, TENANT, &resources);
    let engine = CohortEngine::default();
    engine.build(&store).unwrap();
    let snap = medicus_cohort::snapshot_path(tmp.path());
    engine.save_snapshot(&snap).unwrap();
    let plan = medicus_cohort::parse_query("gender:F,M", Default::default()).unwrap();
    let want = engine.count(TENANT, &plan, today());

    let mut bytes = std::fs::read(&snap).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x55;
    std::fs::write(&snap, &bytes).unwrap();
    let other = CohortEngine::default();
    let e = other.load_snapshot(&snap).unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");
    bytes[16] = 99; // format version
    std::fs::write(&snap, &bytes).unwrap();
    assert!(
        other
            .load_snapshot(&snap)
            .unwrap_err()
            .to_string()
            .contains("version")
    );
    std::fs::write(&snap, &bytes[..20]).unwrap();
    assert!(other.load_snapshot(&snap).is_err());
    // open() falls back to a rebuild.
    other.open(&store, &snap).unwrap();
    assert_eq!(other.count(TENANT, &plan, today()), want);
}

#[test]
fn mii_test_data_resources_are_read() {
    // The CCDL project's test data: MII-shaped resources incl. a Specimen whose Diagnose
    // extension references a Condition (the reference filter).
    let bundle: Value = serde_json::from_str(include_str!("../data/ccdl/test-data.json")).unwrap();
    let mut reference = ReferenceData::new();
    let mut ix = medicus_cohort::index::TenantIndex::new();
    let eligibility = MiiBroadConsent::default();
    for e in bundle["entry"].as_array().unwrap() {
        let r = &e["resource"];
        reference.add(r);
        ix.apply(
            r["resourceType"].as_str().unwrap(),
            r["id"].as_str().unwrap(),
            Some(r),
            &eligibility,
        );
    }
    ix.refresh();
    let example = include_str!("../data/ccdl/ccdl-all-properties.json");
    let plan = compile(&Ccdl::from_json(example).unwrap()).unwrap();
    assert_eq!(
        ix.count(&plan, today(), &eligibility),
        reference.count(&plan, today(), &eligibility)
    );
}

#[test]
fn a_new_write_counts_within_a_second_when_following_the_feed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("ndjson");
    generate(&data, 30, 11);
    let resources = read_ndjson(&data);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&tmp.path().join("store")).unwrap());
    put_all(&*store, TENANT, &resources);
    let engine = Arc::new(CohortEngine::default());
    engine.build(&*store).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let follower = engine.follow(
        Arc::clone(&store),
        std::time::Duration::from_millis(100),
        Arc::clone(&stop),
    );
    // A patient research may count (the mask holds for them).
    let everyone = medicus_cohort::parse_query("gender:F,M,D,U", Default::default()).unwrap();
    assert!(engine.count(TENANT, &everyone, today()) > 0);
    let q = medicus_cohort::parse_query("icd:Q87", Default::default()).unwrap();
    let before = engine.count(TENANT, &q, today());
    // A patient with a Broad Consent and no other consent document (no withdrawal, no
    // objection): research may count them.
    let consents: Vec<&Value> = resources
        .iter()
        .filter(|r| r["resourceType"] == "Consent")
        .collect();
    let owner = |r: &Value| r["patient"]["reference"].as_str().unwrap_or("").to_owned();
    let patient = consents
        .iter()
        .filter(|r| !r.to_string().contains("TemplateType"))
        .map(|r| owner(r))
        .find(|p| consents.iter().filter(|r| owner(r) == *p).count() == 1)
        .unwrap()
        .trim_start_matches("Patient/")
        .to_owned();
    let t = std::time::Instant::now();
    let mut s = store.write_session(TENANT).unwrap();
    s.put(
        "Condition",
        "new-0",
        serde_json::json!({"resourceType": "Condition",
            "code": {"coding": [{"system": ICD10GM, "code": "Q87.1"}]},
            "subject": {"reference": format!("Patient/{patient}")}}),
        Precondition::None,
    )
    .unwrap();
    s.commit().unwrap();
    let mut counted = None;
    while t.elapsed() < std::time::Duration::from_secs(2) {
        if engine.count(TENANT, &q, today()) > before {
            counted = Some(t.elapsed());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    follower.join().unwrap();
    let took = counted.expect("the new diagnosis counted within a second");
    assert!(took < std::time::Duration::from_secs(1));
    // And a delete uncounts it.
    let mut s = store.write_session(TENANT).unwrap();
    s.delete("Condition", "new-0", Precondition::None).unwrap();
    s.commit().unwrap();
    engine.catch_up(&*store).unwrap();
    assert_eq!(engine.count(TENANT, &q, today()), before);
}
