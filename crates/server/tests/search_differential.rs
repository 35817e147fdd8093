//! Differential test of search: a generated dataset (fixed seed) is loaded into the in-process
//! server, a few hundred random queries are run against it (following every `next` page), and
//! each answer is compared with the naive reference evaluator in `reference_eval`, which scans
//! every resource with the parameters' FHIRPath expressions and the spec's matching rules.
//!
//! The queries use what the server supports today. To extend the generator, add the feature to
//! the evaluator first (it refuses what it does not know), then to [`gen_criterion`]. Not
//! generated yet:
//! - the `ap` prefix (its tolerance is the server's choice);
//! - token `:text`, `:of-type`, `:above`/`:below`, `:in`/`:not-in`; reference `:identifier`;
//! - precision ranges on composite values (the data has one decimal, so drawn values are exact);
//!   UCUM unit conversion (the data's units are pairwise incomparable);
//! - `_sort` order, `_include`/`_revinclude`, `_summary`/`_elements` (conformance tests cover them);
//! - chains of more than two links.

mod common;
mod reference_eval;

use std::collections::BTreeSet;

use common::{TestApp, search_uri};
use reference_eval::Dataset;
use serde_json::{Value, json};

const BASE: &str = "http://test.local/fhir/default";
const SEED: u64 = 0x6d65_6469_6375_7331;
const PATIENTS: usize = 50;
const QUERIES: usize = 400;

const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";
const ICD: &str = "http://fhir.de/CodeSystem/bfarm/icd-10-gm";
const OPS: &str = "http://fhir.de/CodeSystem/bfarm/ops";
const ATC: &str = "http://fhir.de/CodeSystem/bfarm/atc";
const SCT: &str = "http://snomed.info/sct";
const MRN: &str = "urn:mrn";
const TAGS: &str = "http://example.org/tags";

/// splitmix64: small, deterministic, good enough to shuffle test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

const FAMILIES: &[&str] = &[
    "Müller",
    "Muller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Schäfer",
    "Koch",
    "Bauer",
    "Richter",
    "Klein",
    "Wolf",
    "Schröder",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Braun",
    "Krüger",
    "Hofmann",
    "Hartmann",
    "Lange",
    "Schmitt",
    "Werner",
    "Krause",
    "Meier",
    "Lehmann",
    "Schmid",
    "Köhler",
    "Herrmann",
    "König",
    "Walter",
    "Mayer",
    "Huber",
    "Kaiser",
    "Fuchs",
    "Peters",
    "Lang",
    "Scholz",
    "Möller",
    "Weiß",
    "Jung",
    "Hahn",
    "Vogel",
    "Friedrich",
    "Keller",
    "Günther",
    "Frank",
    "Berger",
    "Winkler",
    "Roth",
    "Beck",
    "Lorenz",
    "Baumann",
    "Franke",
    "Albrecht",
    "Dupré",
    "Léon",
];
const GIVENS: &[&str] = &[
    "Anna", "Anne", "Jürgen", "Jörg", "Maria", "Marie", "Hans", "Hannah", "Peter", "Petra",
    "Sören", "Zoë", "René", "Renée", "Lukas", "Lea", "Jonas", "Mia", "Élodie", "Paul",
];
const CITIES: &[&str] = &["Köln", "München", "Berlin", "Düsseldorf", "Münster", "Bonn"];
const ORGANIZATIONS: &[&str] = &[
    "Klinikum Nord",
    "Universitätsklinikum Süd",
    "Praxis am Markt",
];
const GENDERS: &[&str] = &["male", "female", "other", "unknown"];
/// LOINC code, UCUM unit, typical value range (tenths): units are pairwise incomparable, so unit
/// conversion can never make a difference.
const LABS: &[(&str, &str, i64, i64)] = &[
    ("2339-0", "mg/dL", 600, 2000),
    ("2345-7", "mmol/L", 30, 150),
    ("718-7", "g/dL", 80, 180),
    ("8867-4", "/min", 400, 1200),
    ("29463-7", "kg", 300, 1200),
    ("8302-2", "cm", 1400, 2000),
    ("8310-5", "Cel", 355, 410),
];
const BP: &str = "85354-9";
const ICDS: &[(&str, &str)] = &[
    ("E11.9", "Diabetes mellitus, Typ 2"),
    ("E11.90", "Diabetes mellitus, Typ 2, nicht entgleist"),
    ("I10.00", "Benigne essentielle Hypertonie"),
    ("J45.9", "Asthma bronchiale"),
    ("C50.9", "Brustdrüse, nicht näher bezeichnet"),
    ("K21.9", "Gastroösophageale Refluxkrankheit"),
    ("F32.1", "Mittelgradige depressive Episode"),
];
const OPSS: &[&str] = &[
    "5-470.11", "5-511.11", "1-632.0", "8-930", "3-200", "5-820.00",
];
const ATCS: &[&str] = &["A10BA02", "C09AA05", "N02BE01", "B01AC06", "C10AA01"];
const TIME_ZONES: &[&str] = &["Z", "+01:00", "+02:00", "-05:00", "+00:00"];

fn date_text(rng: &mut Rng, year_lo: i64, year_hi: i64, precision: usize) -> String {
    let y = rng.range(year_lo, year_hi);
    let m = rng.range(1, 12);
    let d = rng.range(1, 28);
    match precision {
        0 => format!("{y}"),
        1 => format!("{y}-{m:02}"),
        2 => format!("{y}-{m:02}-{d:02}"),
        _ => {
            let (h, mi, s) = (rng.range(0, 23), rng.range(0, 59), rng.range(0, 59));
            let tz = rng.pick(TIME_ZONES);
            format!("{y}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}{tz}")
        }
    }
}

/// A dateTime in the clinical years, mostly with a time.
fn clinical_time(rng: &mut Rng) -> String {
    let precision = if rng.chance(75) { 3 } else { rng.below(3) };
    date_text(rng, 2015, 2024, precision)
}

/// A Period; `start` before `end`, either may be absent (never both).
fn period(rng: &mut Rng) -> Value {
    let y = rng.range(2015, 2023);
    let start = format!(
        "{y}-{:02}-{:02}T08:00:00Z",
        rng.range(1, 12),
        rng.range(1, 28)
    );
    let end = format!(
        "{}-{:02}-{:02}T17:30:00+01:00",
        y + rng.range(0, 1),
        rng.range(1, 12),
        rng.range(1, 28)
    );
    // An end before the start is not what the data means; keep them ordered by year + 1.
    let end = if end < start {
        format!("{}-12-31T23:00:00Z", y + 1)
    } else {
        end
    };
    match rng.below(6) {
        0 => json!({"start": start}),
        1 => json!({"end": end}),
        _ => json!({"start": start, "end": end}),
    }
}

fn quantity(value_tenths: i64, unit: &str) -> Value {
    let text = format!("{}.{}", value_tenths / 10, value_tenths % 10);
    // serde_json keeps the decimal text (arbitrary_precision), as a client would send it.
    let number: serde_json::Number = text.parse().expect("decimal");
    json!({"value": number, "unit": unit, "system": UCUM, "code": unit})
}

fn generate(rng: &mut Rng) -> (Vec<Value>, Vec<Vec<Value>>) {
    let mut shared = Vec::new();
    for (i, name) in ORGANIZATIONS.iter().enumerate() {
        shared
            .push(json!({"resourceType": "Organization", "id": format!("org-{i}"), "name": name}));
    }
    for i in 0..4 {
        shared.push(
            json!({"resourceType": "Practitioner", "id": format!("pr-{i}"),
                           "name": [{"family": rng.pick(FAMILIES), "given": [rng.pick(GIVENS)]}]}),
        );
    }
    for (i, atc) in ATCS.iter().enumerate() {
        shared.push(
            json!({"resourceType": "Medication", "id": format!("med-{i}"),
                           "code": {"coding": [{"system": ATC, "code": atc}]}}),
        );
    }
    let mut per_patient = Vec::new();
    for p in 0..PATIENTS {
        let pid = format!("pat-{p}");
        let subject = json!({"reference": format!("Patient/{pid}")});
        let mut out = Vec::new();
        let mut patient = json!({"resourceType": "Patient", "id": pid,
            "identifier": [{"system": MRN, "value": format!("{}", 10_000 + p)}],
            "name": [{"family": rng.pick(FAMILIES), "given": [rng.pick(GIVENS)]}]});
        if rng.chance(30) {
            patient["name"][0]["given"]
                .as_array_mut()
                .expect("array")
                .push(json!(rng.pick(GIVENS)));
        }
        if rng.chance(10) {
            patient["name"] =
                json!([{"text": format!("{} {}", rng.pick(GIVENS), rng.pick(FAMILIES))}]);
        }
        if rng.chance(90) {
            patient["gender"] = json!(rng.pick(GENDERS));
        }
        if rng.chance(90) {
            let precision = [0, 1, 2, 2, 2, 2][rng.below(6)];
            patient["birthDate"] = json!(date_text(rng, 1930, 2020, precision));
        }
        if rng.chance(70) {
            patient["active"] = json!(rng.chance(80));
        }
        if rng.chance(60) {
            patient["address"] = json!([{"city": rng.pick(CITIES), "country": "DE"}]);
        }
        if rng.chance(50) {
            patient["managingOrganization"] =
                json!({"reference": format!("Organization/org-{}", rng.below(3))});
        }
        if rng.chance(40) {
            patient["generalPractitioner"] =
                json!([{"reference": format!("Practitioner/pr-{}", rng.below(4))}]);
        }
        if rng.chance(30) {
            patient["meta"] =
                json!({"tag": [{"system": TAGS, "code": format!("study-{}", rng.below(2))}]});
        }
        out.push(patient);

        let encounters: Vec<String> = (0..rng.range(1, 3))
            .map(|k| format!("enc-{p}-{k}"))
            .collect();
        for eid in &encounters {
            let class = *rng.pick(&["IMP", "AMB", "EMER"]);
            let mut e = json!({"resourceType": "Encounter", "id": eid,
                "status": rng.pick(&["finished", "in-progress"]),
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": class},
                "subject": subject, "period": period(rng)});
            if rng.chance(60) {
                e["serviceProvider"] =
                    json!({"reference": format!("Organization/org-{}", rng.below(3))});
            }
            out.push(e);
        }
        let encounter_ref =
            |rng: &mut Rng| json!({"reference": format!("Encounter/{}", rng.pick(&encounters))});

        for k in 0..rng.range(2, 6) {
            let mut o = json!({"resourceType": "Observation", "id": format!("obs-{p}-{k}"),
                "status": rng.pick(&["final", "preliminary", "amended"]), "subject": subject});
            let kind = rng.below(10);
            if kind < 6 {
                let (code, unit, lo, hi) = *rng.pick(LABS);
                o["code"] = json!({"coding": [{"system": LOINC, "code": code}]});
                o["category"] = json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}]);
                o["valueQuantity"] = quantity(rng.range(lo, hi), unit);
            } else if kind < 8 {
                o["code"] = json!({"coding": [{"system": LOINC, "code": BP}]});
                o["category"] = json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}]);
                o["component"] = json!([
                    {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": quantity(rng.range(900, 1800), "mm[Hg]")},
                    {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, "valueQuantity": quantity(rng.range(500, 1100), "mm[Hg]")}]);
            } else if kind < 9 {
                o["code"] = json!({"coding": [{"system": LOINC, "code": "8251-1"}]});
                o["valueString"] = json!(format!(
                    "{} {}",
                    rng.pick(&["Schmerz", "Übelkeit", "Schwindel", "Müdigkeit"]),
                    rng.pick(&["leicht", "stark", "mäßig"])
                ));
            } else {
                o["code"] = json!({"coding": [{"system": LOINC, "code": "882-1"}]});
                o["valueCodeableConcept"] = json!({"coding": [{"system": SCT, "code": rng.pick(&["112144000", "165743006", "58460004"])}], "text": "Blutgruppe"});
            }
            match rng.below(10) {
                0..7 => o["effectiveDateTime"] = json!(clinical_time(rng)),
                7..9 => o["effectivePeriod"] = period(rng),
                _ => {}
            }
            if rng.chance(50) {
                o["encounter"] = encounter_ref(rng);
            }
            out.push(o);
        }
        for k in 0..rng.range(0, 3) {
            let (code, display) = *rng.pick(ICDS);
            let mut c = json!({"resourceType": "Condition", "id": format!("cond-{p}-{k}"), "subject": subject,
                "code": {"coding": [{"system": ICD, "code": code, "display": display}]},
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                                "code": rng.pick(&["active", "resolved", "remission"])}]}});
            if rng.chance(25) {
                c["code"]["coding"]
                    .as_array_mut()
                    .expect("array")
                    .push(json!({"system": SCT, "code": "73211009"}));
            }
            if rng.chance(70) {
                c["recordedDate"] = json!(clinical_time(rng));
            }
            match rng.below(3) {
                0 => {
                    let precision = rng.below(4);
                    c["onsetDateTime"] = json!(date_text(rng, 1990, 2024, precision));
                }
                1 => c["onsetPeriod"] = period(rng),
                _ => {}
            }
            if rng.chance(50) {
                c["encounter"] = encounter_ref(rng);
            }
            out.push(c);
        }
        for k in 0..rng.range(0, 2) {
            let mut pr = json!({"resourceType": "Procedure", "id": format!("proc-{p}-{k}"),
                "status": rng.pick(&["completed", "in-progress"]), "subject": subject,
                "code": {"coding": [{"system": OPS, "code": rng.pick(OPSS)}]}});
            if rng.chance(70) {
                pr["performedDateTime"] = json!(clinical_time(rng));
            } else {
                pr["performedPeriod"] = period(rng);
            }
            out.push(pr);
        }
        for k in 0..rng.range(0, 2) {
            let mut ms = json!({"resourceType": "MedicationStatement", "id": format!("ms-{p}-{k}"),
                "status": rng.pick(&["active", "completed", "stopped"]), "subject": subject});
            if rng.chance(60) {
                ms["medicationCodeableConcept"] =
                    json!({"coding": [{"system": ATC, "code": rng.pick(ATCS)}]});
            } else {
                ms["medicationReference"] =
                    json!({"reference": format!("Medication/med-{}", rng.below(ATCS.len()))});
            }
            if rng.chance(60) {
                ms["effectiveDateTime"] = json!(clinical_time(rng));
            } else {
                ms["effectivePeriod"] = period(rng);
            }
            if rng.chance(40) {
                ms["context"] = encounter_ref(rng);
            }
            out.push(ms);
        }
        for k in 0..rng.range(0, 2) {
            let mut ma = json!({"resourceType": "MedicationAdministration", "id": format!("ma-{p}-{k}"),
                "status": rng.pick(&["completed", "in-progress"]), "subject": subject,
                "context": encounter_ref(rng)});
            if rng.chance(60) {
                ma["medicationCodeableConcept"] =
                    json!({"coding": [{"system": ATC, "code": rng.pick(ATCS)}]});
            } else {
                ma["medicationReference"] =
                    json!({"reference": format!("Medication/med-{}", rng.below(ATCS.len()))});
            }
            if rng.chance(60) {
                ma["effectiveDateTime"] = json!(clinical_time(rng));
            } else {
                ma["effectivePeriod"] = period(rng);
            }
            out.push(ma);
        }
        per_patient.push(out);
    }
    (shared, per_patient)
}

fn transaction(resources: &[Value]) -> Value {
    let entries: Vec<Value> = resources
        .iter()
        .map(|r| {
            let url = format!("{}/{}", r["resourceType"].as_str().unwrap_or(""), r["id"].as_str().unwrap_or(""));
            json!({"fullUrl": format!("{BASE}/{url}"), "resource": r, "request": {"method": "PUT", "url": url}})
        })
        .collect();
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

// ---------------------------------------------------------------------------------------------
// Query generation

/// What the generator draws search values from: the resources as stored.
struct Pools<'a> {
    ds: &'a Dataset,
}

impl Pools<'_> {
    fn id(&self, rng: &mut Rng, ty: &str) -> String {
        let rs = self.ds.resources(ty);
        if rs.is_empty() || rng.chance(10) {
            return format!("{}-missing", ty.to_lowercase());
        }
        rs[rng.below(rs.len())]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
    fn last_updated(&self, rng: &mut Rng, ty: &str) -> String {
        let rs = self.ds.resources(ty);
        let stamp = rs[rng.below(rs.len())]["meta"]["lastUpdated"]
            .as_str()
            .unwrap_or("2020")
            .to_owned();
        // Milliseconds or seconds precision (the store keeps microseconds; finer search values
        // would test rounding, not matching).
        let cut = match stamp.find('.') {
            Some(dot) if rng.chance(50) => format!("{}Z", &stamp[..dot]),
            Some(dot) => format!("{}Z", &stamp[..(dot + 4).min(stamp.len() - 1)]),
            None => stamp,
        };
        format!("{}{cut}", rng.pick(&["gt", "lt", "ge", "le"]))
    }
}

/// A string search on a pool value: a prefix, case and accents changed, or `:exact`/`:contains`.
fn string_criterion(rng: &mut Rng, name: &str, pool: &[&str]) -> (String, String) {
    let s = *rng.pick(pool);
    let chars: Vec<char> = s.chars().collect();
    match rng.below(6) {
        0 => (
            format!("{name}:exact"),
            if rng.chance(70) {
                s.to_owned()
            } else {
                s.to_lowercase()
            },
        ),
        1 => {
            let a = rng.below(chars.len());
            let b = (a + 1 + rng.below(chars.len() - a)).min(chars.len());
            (
                format!("{name}:contains"),
                chars[a..b].iter().collect::<String>().to_uppercase(),
            )
        }
        2 => (name.to_owned(), reference_eval::normalize(s)),
        _ => {
            let n = 1 + rng.below(chars.len());
            let prefix: String = chars[..n].iter().collect();
            (
                name.to_owned(),
                if rng.chance(50) {
                    prefix.to_lowercase()
                } else {
                    prefix
                },
            )
        }
    }
}

const PREFIXES: &[&str] = &["", "eq", "ne", "lt", "gt", "le", "ge", "sa", "eb"];

fn date_criterion(rng: &mut Rng, name: &str, year_lo: i64, year_hi: i64) -> (String, String) {
    let precision = rng.below(4);
    let prefix = rng.pick(PREFIXES);
    (
        name.to_owned(),
        format!("{prefix}{}", date_text(rng, year_lo, year_hi, precision)),
    )
}

fn token_criterion(rng: &mut Rng, name: &str, system: &str, codes: &[&str]) -> (String, String) {
    let code = *rng.pick(codes);
    let code = if rng.chance(5) { "no-such-code" } else { code };
    match rng.below(7) {
        0 => (name.to_owned(), code.to_owned()),
        1 => (name.to_owned(), format!("{system}|")),
        2 => (format!("{name}:not"), format!("{system}|{code}")),
        3 => (name.to_owned(), format!("|{code}")),
        _ => (name.to_owned(), format!("{system}|{code}")),
    }
}

fn subject_criterion(rng: &mut Rng, pools: &Pools<'_>, name: &str) -> (String, String) {
    let id = pools.id(rng, "Patient");
    match rng.below(4) {
        0 => (name.to_owned(), id),
        1 => (format!("{name}:Patient"), id),
        2 => (name.to_owned(), format!("{BASE}/Patient/{id}")),
        _ => (name.to_owned(), format!("Patient/{id}")),
    }
}

fn missing(rng: &mut Rng, name: &str) -> (String, String) {
    (
        format!("{name}:missing"),
        (if rng.chance(50) { "true" } else { "false" }).to_owned(),
    )
}

fn quantity_criterion(rng: &mut Rng, name: &str) -> (String, String) {
    let (code, unit, lo, hi) = *rng.pick(LABS);
    let _ = code;
    let v = rng.range(lo, hi);
    let number = format!("{}{}.{}", rng.pick(PREFIXES), v / 10, v % 10);
    let unit = if rng.chance(10) { "mg" } else { unit };
    let value = match rng.below(4) {
        0 => number,
        1 => format!("{number}||{unit}"),
        _ => format!("{number}|{UCUM}|{unit}"),
    };
    (name.to_owned(), value)
}

/// One criterion `(name, value)` for a search on `ty`.
fn gen_criterion(rng: &mut Rng, pools: &Pools<'_>, ty: &str) -> (String, String) {
    let codes_lab: Vec<&str> = LABS
        .iter()
        .map(|l| l.0)
        .chain([BP, "8251-1", "882-1"])
        .collect();
    let icd: Vec<&str> = ICDS.iter().map(|c| c.0).collect();
    let common = rng.below(12);
    if common == 0 {
        let mut ids = vec![pools.id(rng, ty)];
        if rng.chance(40) {
            ids.push(pools.id(rng, ty));
        }
        return ("_id".into(), ids.join(","));
    }
    if common == 1 {
        return ("_lastUpdated".into(), pools.last_updated(rng, ty));
    }
    match ty {
        "Patient" => match rng.below(14) {
            0 => string_criterion(rng, "family", FAMILIES),
            1 => string_criterion(rng, "given", GIVENS),
            2 => {
                let pool = if rng.chance(50) { FAMILIES } else { GIVENS };
                string_criterion(rng, "name", pool)
            }
            3 => {
                let g = rng.pick(GENDERS).to_string();
                if rng.chance(30) {
                    ("gender:not".into(), g)
                } else {
                    ("gender".into(), g)
                }
            }
            4 | 5 => date_criterion(rng, "birthdate", 1925, 2022),
            6 => {
                let v = format!("{}", 10_000 + rng.below(PATIENTS + 5));
                match rng.below(4) {
                    0 => ("identifier".into(), v),
                    1 => ("identifier".into(), format!("{MRN}|")),
                    2 => ("identifier".into(), format!("|{v}")),
                    _ => ("identifier".into(), format!("{MRN}|{v}")),
                }
            }
            7 => (
                "active".into(),
                (if rng.chance(50) { "true" } else { "false" }).into(),
            ),
            8 => string_criterion(rng, "address-city", CITIES),
            9 => (
                "organization".into(),
                format!("Organization/org-{}", rng.below(4)),
            ),
            10 => {
                let name = *rng.pick(&[
                    "gender",
                    "birthdate",
                    "active",
                    "general-practitioner",
                    "address",
                ]);
                missing(rng, name)
            }
            11 => token_criterion(rng, "_tag", TAGS, &["study-0", "study-1"]),
            12 => (
                "_has:Condition:subject:code".into(),
                format!("{ICD}|{}", rng.pick(&icd)),
            ),
            _ if rng.chance(50) => (
                "_has:Observation:patient:code".into(),
                rng.pick(&codes_lab).to_string(),
            ),
            // Nested: patients with an encounter during which such an observation was made.
            _ => (
                "_has:Encounter:subject:_has:Observation:encounter:code".into(),
                rng.pick(&codes_lab).to_string(),
            ),
        },
        "Observation" => match rng.below(15) {
            0 | 1 => token_criterion(rng, "code", LOINC, &codes_lab),
            2 | 3 => date_criterion(rng, "date", 2014, 2025),
            4 => subject_criterion(rng, pools, "subject"),
            5 => subject_criterion(rng, pools, "patient"),
            6 | 7 => quantity_criterion(rng, "value-quantity"),
            8 => (
                "status".into(),
                rng.pick(&["final", "preliminary", "amended", "cancelled"])
                    .to_string(),
            ),
            9 => token_criterion(
                rng,
                "category",
                "http://terminology.hl7.org/CodeSystem/observation-category",
                &["laboratory", "vital-signs"],
            ),
            10 => (
                "encounter".into(),
                format!("Encounter/{}", pools.id(rng, "Encounter")),
            ),
            11 => {
                let (code, unit, lo, hi) = *rng.pick(LABS);
                let v = rng.range(lo, hi);
                let number = format!("{}.{}", v / 10, v % 10);
                // Exact values drawn from the data now and then, so that pairs are found.
                let number = match pools
                    .ds
                    .resources("Observation")
                    .iter()
                    .find(|o| o["code"]["coding"][0]["code"] == code && rng.chance(30))
                {
                    Some(o) => o["valueQuantity"]["value"].to_string(),
                    None => number,
                };
                let value = if rng.chance(50) {
                    format!("{code}${number}")
                } else {
                    format!("{LOINC}|{code}${number}|{UCUM}|{unit}")
                };
                ("code-value-quantity".into(), value)
            }
            12 => string_criterion(
                rng,
                "value-string",
                &["Schmerz", "Übelkeit", "Schwindel", "Müdigkeit"],
            ),
            13 => {
                let name = *rng.pick(&["value-quantity", "encounter", "date", "value-string"]);
                missing(rng, name)
            }
            _ => match rng.below(5) {
                0 => (
                    "subject:Patient.gender".into(),
                    rng.pick(GENDERS).to_string(),
                ),
                1 => {
                    let (_, v) = date_criterion(rng, "x", 1925, 2022);
                    ("patient.birthdate".into(), v)
                }
                2 => {
                    // Two links.
                    let (n, v) = string_criterion(rng, "name", ORGANIZATIONS);
                    (format!("subject:Patient.organization.{n}"), v)
                }
                3 => {
                    // A comparison prefix on the value of a composite.
                    let (code, _, lo, hi) = *rng.pick(LABS);
                    let v = rng.range(lo, hi);
                    let prefix = rng.pick(&["gt", "lt", "ge", "le", "ne"]);
                    (
                        "code-value-quantity".into(),
                        format!("{code}${prefix}{}.{}", v / 10, v % 10),
                    )
                }
                _ => {
                    let (n, v) = string_criterion(rng, "family", FAMILIES);
                    (format!("subject:Patient.{n}"), v)
                }
            },
        },
        "Condition" => match rng.below(8) {
            0 | 1 => token_criterion(rng, "code", ICD, &icd),
            2 => token_criterion(
                rng,
                "clinical-status",
                "http://terminology.hl7.org/CodeSystem/condition-clinical",
                &["active", "resolved", "remission"],
            ),
            3 => subject_criterion(rng, pools, "subject"),
            4 => date_criterion(rng, "recorded-date", 2014, 2025),
            5 => date_criterion(rng, "onset-date", 1989, 2025),
            6 => (
                "encounter".into(),
                format!("Encounter/{}", pools.id(rng, "Encounter")),
            ),
            _ => {
                let name = *rng.pick(&["recorded-date", "onset-date", "encounter"]);
                missing(rng, name)
            }
        },
        "Encounter" => match rng.below(8) {
            0 | 1 => date_criterion(rng, "date", 2014, 2025),
            2 => token_criterion(
                rng,
                "class",
                "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                &["IMP", "AMB", "EMER"],
            ),
            3 => (
                "status".into(),
                rng.pick(&["finished", "in-progress", "planned"])
                    .to_string(),
            ),
            4 => subject_criterion(rng, pools, "subject"),
            5 => ("service-provider".into(), format!("org-{}", rng.below(4))),
            6 => (
                "_has:Observation:encounter:code".into(),
                rng.pick(&codes_lab).to_string(),
            ),
            _ => missing(rng, "service-provider"),
        },
        "Procedure" => match rng.below(5) {
            0 | 1 => token_criterion(rng, "code", OPS, OPSS),
            2 => date_criterion(rng, "date", 2014, 2025),
            3 => subject_criterion(rng, pools, "subject"),
            _ => (
                "status".into(),
                rng.pick(&["completed", "in-progress"]).to_string(),
            ),
        },
        "MedicationStatement" | "MedicationAdministration" => match rng.below(6) {
            0 => token_criterion(rng, "code", ATC, ATCS),
            1 | 2 => {
                let name = if ty == "MedicationStatement" {
                    "effective"
                } else {
                    "effective-time"
                };
                date_criterion(rng, name, 2014, 2025)
            }
            3 => subject_criterion(rng, pools, "subject"),
            4 => (
                "medication".into(),
                format!("Medication/med-{}", rng.below(ATCS.len() + 1)),
            ),
            _ => {
                if rng.chance(30) {
                    missing(rng, "context")
                } else {
                    (
                        "context".into(),
                        format!("Encounter/{}", pools.id(rng, "Encounter")),
                    )
                }
            }
        },
        other => unreachable!("no generator for {other}"),
    }
}

const TYPES: &[&str] = &[
    "Patient",
    "Patient",
    "Observation",
    "Observation",
    "Observation",
    "Condition",
    "Encounter",
    "Procedure",
    "MedicationStatement",
    "MedicationAdministration",
];

fn gen_query(rng: &mut Rng, pools: &Pools<'_>) -> (String, Vec<(String, String)>) {
    let ty = *rng.pick(TYPES);
    let mut params: Vec<(String, String)> = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let (name, value) = gen_criterion(rng, pools, ty);
        // Sometimes an OR of two values of the same parameter.
        if rng.chance(25)
            && !name.ends_with(":missing")
            && !name.starts_with("_has")
            && name != "_lastUpdated"
        {
            let (name2, value2) = gen_criterion(rng, pools, ty);
            if name2 == name {
                params.push((name, format!("{value},{value2}")));
                continue;
            }
        }
        params.push((name, value));
    }
    (ty.to_owned(), params)
}

/// The generated dataset loaded into a fresh server, and the dataset as stored.
async fn load(rng: &mut Rng) -> (TestApp, Dataset) {
    let app = TestApp::new();
    let (shared, per_patient) = generate(rng);
    for resources in std::iter::once(&shared).chain(&per_patient) {
        let r = app
            .send_json("POST", "/fhir/default", &transaction(resources))
            .await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    }
    app.analyze();
    // The dataset as stored (with meta.lastUpdated), read back in one page per type.
    let mut stored = Vec::new();
    for ty in [
        "Organization",
        "Practitioner",
        "Medication",
        "Patient",
        "Encounter",
        "Observation",
        "Condition",
        "Procedure",
        "MedicationStatement",
        "MedicationAdministration",
    ] {
        let r = app.get(&format!("/fhir/default/{ty}?_count=1000")).await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.text);
        stored.extend(
            r.json["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| e["resource"].clone()),
        );
    }
    let sent: usize = shared.len() + per_patient.iter().map(Vec::len).sum::<usize>();
    assert_eq!(stored.len(), sent, "every generated resource is stored");
    (app, Dataset::new(stored, BASE))
}

/// Runs the random queries with page sizes from `page_size` and returns the disagreements.
async fn compare(
    app: &TestApp,
    ds: &Dataset,
    rng: &mut Rng,
    page_size: fn(&mut Rng) -> usize,
) -> Vec<String> {
    let pools = Pools { ds };
    let mut failures = Vec::new();
    let mut hits = 0;
    for _ in 0..QUERIES {
        let (ty, params) = gen_query(rng, &pools);
        let query: String = params
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let expected = match ds.search(&ty, &params) {
            Ok(e) => e,
            Err(e) => panic!(
                "the generator asked the evaluator for something it does not know: {ty}?{query}: {e}"
            ),
        };
        if !expected.is_empty() {
            hits += 1;
        }
        let count = page_size(rng);
        let uri = search_uri(&format!("{ty}?{query}&_count={count}"));
        let first = app.get(&uri).await;
        if first.status.as_u16() != 200 {
            failures.push(format!(
                "{ty}?{query}&_count={count}: status {} {}",
                first.status, first.text
            ));
            continue;
        }
        let ids = app.search_ids(&uri).await;
        let got: BTreeSet<String> = ids.iter().cloned().collect();
        if got != expected {
            let missing: Vec<_> = expected.difference(&got).collect();
            let extra: Vec<_> = got.difference(&expected).collect();
            failures.push(format!(
                "{ty}?{query}&_count={count}: {} expected, {} found; missing {missing:?}, extra {extra:?}",
                expected.len(),
                got.len()
            ));
        } else if ids.len() != got.len() {
            failures.push(format!(
                "{ty}?{query}&_count={count}: a resource is on several pages"
            ));
        } else if first.json["total"].as_u64() != Some(expected.len() as u64) {
            failures.push(format!(
                "{ty}?{query}: total {} for {} matches",
                first.json["total"],
                expected.len()
            ));
        }
    }
    // The generator must produce queries that find something, or the comparison means little.
    assert!(
        hits > QUERIES / 3,
        "only {hits} of {QUERIES} queries had matches"
    );
    failures
}

#[track_caller]
fn assert_agree(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} of {QUERIES} queries disagree with the reference evaluator:\n{}",
        failures.len(),
        failures
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Matching semantics: every query's matches fit on one page.
#[tokio::test]
async fn random_queries_agree_with_the_reference_evaluator() {
    let mut rng = Rng(SEED);
    let (app, ds) = load(&mut rng).await;
    let failures = compare(&app, &ds, &mut rng, |_| 1000).await;
    assert_agree(&failures);
}

/// The same with small pages: following `next` must give every match exactly once.
#[tokio::test]
async fn random_queries_agree_across_pages() {
    let mut rng = Rng(SEED ^ 0x5a5a);
    let (app, ds) = load(&mut rng).await;
    let failures = compare(&app, &ds, &mut rng, |rng| 3 + rng.below(40)).await;
    assert_agree(&failures);
}
