//! The reference evaluator: reads resources (e.g. the NDJSON `medicus generate` writes) and
//! answers a plan by brute force, patient sets and linear scans, with none of the index's
//! machinery (no ordinals, bitmaps, sorted columns, key ranges or change handling). Tests and
//! the benchmark compare the engine's exact counts with it.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;

use serde_json::Value;

use crate::consent::ResearchEligibility;
use crate::date::age_in;
use crate::error::EngineError;
use crate::facts::{AttrVal, Extracted, Fact, extract};
use crate::plan::{AttrTest, Crit, FactCrit, Gender, Plan, ValueTest};

#[derive(Debug, Default)]
pub struct ReferenceData {
    patients: HashMap<String, (Option<Gender>, Option<i32>)>,
    /// (patient, `Type/id`, fact).
    facts: Vec<(String, String, Fact)>,
    medications: HashMap<String, Vec<(String, String)>>,
    consents: HashMap<String, Vec<Value>>,
    /// Indexes into `facts` per patient (built lazily by `count`), so a patient's check scans
    /// only their own facts.
    by_patient: std::sync::OnceLock<HashMap<String, Vec<usize>>>,
    resources: u64,
}

impl ReferenceData {
    pub fn new() -> ReferenceData {
        ReferenceData::default()
    }

    pub fn resources(&self) -> u64 {
        self.resources
    }

    /// Adds one resource (each resource once: this evaluator has no notion of updates).
    pub fn add(&mut self, r: &Value) {
        self.resources += 1;
        self.by_patient = std::sync::OnceLock::new();
        let rt = r.get("resourceType").and_then(Value::as_str).unwrap_or("");
        let id = r.get("id").and_then(Value::as_str).unwrap_or("");
        match extract(r) {
            Extracted::Patient { id, gender, birth } => {
                self.patients.insert(id, (gender, birth));
            }
            Extracted::Medication { id, codes } => {
                self.medications.insert(id, codes);
            }
            Extracted::Facts {
                patient,
                facts,
                consent,
            } => {
                let name = format!("{rt}/{id}");
                for f in facts {
                    self.facts.push((patient.clone(), name.clone(), f));
                }
                if let Some(c) = consent {
                    self.consents.entry(patient).or_default().push(c);
                }
            }
            Extracted::Nothing => {}
        }
    }

    /// Reads every `*.ndjson` file of `dir`.
    pub fn load_dir(dir: &Path) -> Result<ReferenceData, EngineError> {
        let mut data = ReferenceData::new();
        let mut files: Vec<_> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
            .collect();
        files.sort();
        for f in files {
            let reader = std::io::BufReader::new(std::fs::File::open(&f)?);
            for (n, line) in reader.lines().enumerate() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                let v: Value = serde_json::from_str(&line)
                    .map_err(|e| EngineError::Data(format!("{}:{}: {e}", f.display(), n + 1)))?;
                data.add(&v);
            }
        }
        Ok(data)
    }

    fn all_patients(&self) -> HashSet<&str> {
        let mut out: HashSet<&str> = self.patients.keys().map(String::as_str).collect();
        out.extend(self.facts.iter().map(|f| f.0.as_str()));
        out.extend(self.consents.keys().map(String::as_str));
        out
    }

    /// The exact count of `plan` among the patients research may count on `today`.
    pub fn count(&self, plan: &Plan, today: i32, eligibility: &dyn ResearchEligibility) -> u64 {
        let eligible: HashSet<&str> = self
            .consents
            .iter()
            .filter(|(_, list)| eligibility.permits(&eligibility.compile(list), today))
            .map(|(p, _)| p.as_str())
            .collect();
        let everyone = self.all_patients();
        let mut n = 0;
        'patients: for p in everyone {
            if !eligible.contains(p) {
                continue;
            }
            for group in &plan.include {
                if !group.iter().any(|c| self.meets(p, c, today)) {
                    continue 'patients;
                }
            }
            for group in &plan.exclude {
                if group.iter().all(|c| self.meets(p, c, today)) {
                    continue 'patients;
                }
            }
            n += 1;
        }
        n
    }

    fn meets(&self, patient: &str, c: &Crit, today: i32) -> bool {
        let demo = self.patients.get(patient);
        match c {
            Crit::Gender(list) => demo.and_then(|d| d.0).is_some_and(|g| list.contains(&g)),
            Crit::Age { test, unit } => demo
                .and_then(|d| d.1)
                .is_some_and(|b| test.holds(age_in(*unit, b, today))),
            Crit::Facts(fc) => self.of(patient).iter().any(|&i| {
                let (p, name, f) = &self.facts[i];
                self.fact_meets(p, name, f, fc)
            }),
        }
    }

    fn of(&self, patient: &str) -> &[usize] {
        let map = self.by_patient.get_or_init(|| {
            let mut m: HashMap<String, Vec<usize>> = HashMap::new();
            for (i, f) in self.facts.iter().enumerate() {
                m.entry(f.0.clone()).or_default().push(i);
            }
            m
        });
        map.get(patient).map(Vec::as_slice).unwrap_or(&[])
    }

    fn fact_meets(&self, patient: &str, _name: &str, f: &Fact, fc: &FactCrit) -> bool {
        if !fc.domains.contains(&f.domain) {
            return false;
        }
        let coded = fc.codes.iter().any(|sel| {
            f.codes.iter().any(|(s, c)| sel.matches(s, c))
                || (f.domain.is_medication()
                    && f.medication.as_ref().is_some_and(|m| {
                        self.medications
                            .get(m)
                            .is_some_and(|codes| codes.iter().any(|(s, c)| sel.matches(s, c)))
                    }))
        });
        if !coded {
            return false;
        }
        if let Some((a, b)) = fc.time {
            match f.period {
                Some((s, e)) if s <= b && e >= a => {}
                _ => return false,
            }
        }
        match &fc.value {
            None => {}
            Some(ValueTest::Quantity { test, unit }) => match &f.quantity {
                Some((v, u)) if test.holds(*v) && (unit.is_none() || u == unit) => {}
                _ => return false,
            },
            Some(ValueTest::Concept(sel))
                if !f
                    .value_concepts
                    .iter()
                    .any(|(s, c)| sel.iter().any(|x| x.matches(s, c))) =>
            {
                return false;
            }
            Some(ValueTest::Concept(_)) => {}
        }
        fc.attrs.iter().all(|(attr, test)| {
            f.attrs
                .iter()
                .filter(|(a, _)| a == attr)
                .any(|(_, v)| match (test, v) {
                    (AttrTest::Concept(sel), AttrVal::Concept { system, code }) => {
                        sel.iter().any(|x| x.matches(system, code))
                    }
                    (AttrTest::Quantity { test, unit }, AttrVal::Quantity { value, unit: u }) => {
                        test.holds(*value) && (unit.is_none() || u == unit)
                    }
                    (AttrTest::Reference(nested), AttrVal::Reference(target)) => {
                        self.of(patient).iter().any(|&i| {
                            let (p, name, nf) = &self.facts[i];
                            name == target && nested.iter().any(|n| self.fact_meets(p, name, nf, n))
                        })
                    }
                    _ => false,
                })
        })
    }
}
