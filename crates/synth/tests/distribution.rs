//! The data look clinically plausible in aggregate: many distinct codes, lab values that follow the
//! diagnoses, the configured volume, and some objections.

use std::collections::{HashMap, HashSet};

use medicus_synth::{Generator, GeneratorConfig, ResourceKind};
use serde_json::Value;

struct Stats {
    icd: HashSet<String>,
    hba1c_diabetic: Vec<f64>,
    hba1c_other: Vec<f64>,
    crea_ckd: Vec<f64>,
    crea_other: Vec<f64>,
    crp_infection: Vec<f64>,
    crp_other: Vec<f64>,
    resources: u64,
    patients: u64,
    opt_outs: u64,
    withdrawals: u64,
    deceased: u64,
    genders: HashMap<String, u64>,
    codes_per_patient: Vec<HashSet<String>>,
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn collect(target: u32, patients: u64) -> Stats {
    let generator = Generator::new(GeneratorConfig {
        hospitals: 5,
        seed: 2024,
        resources_per_patient: target,
        ..Default::default()
    })
    .unwrap();
    let mut s = Stats {
        icd: HashSet::new(),
        hba1c_diabetic: vec![],
        hba1c_other: vec![],
        crea_ckd: vec![],
        crea_other: vec![],
        crp_infection: vec![],
        crp_other: vec![],
        resources: 0,
        patients,
        opt_outs: 0,
        withdrawals: 0,
        deceased: 0,
        genders: HashMap::new(),
        codes_per_patient: vec![],
    };
    for i in 0..patients {
        let record = generator.patient(i);
        s.resources += record.resources.len() as u64;
        let mut codes: HashSet<String> = HashSet::new();
        let mut hba1c: Vec<f64> = vec![];
        let mut crea: Vec<f64> = vec![];
        // Encounter reference -> main diagnosis code, and CRP values by encounter.
        let mut main_dx: HashMap<String, String> = HashMap::new();
        let mut crp: Vec<(String, f64)> = vec![];
        for r in &record.resources {
            let v: Value = r.to_value().unwrap();
            match r.kind {
                ResourceKind::Condition => {
                    let code = v["code"]["coding"][0]["code"].as_str().unwrap().to_string();
                    s.icd.insert(code.clone());
                    if let Some(enc) = v["encounter"]["reference"].as_str() {
                        main_dx.insert(enc.to_string(), code.clone());
                    }
                    codes.insert(code);
                }
                ResourceKind::Observation => {
                    let loinc = v["code"]["coding"][0]["code"].as_str().unwrap_or("");
                    let value = v["valueQuantity"]["value"].to_string().parse::<f64>();
                    match (loinc, value) {
                        ("4548-4", Ok(x)) => hba1c.push(x),
                        ("2160-0", Ok(x)) => crea.push(x),
                        ("1988-5", Ok(x)) => crp.push((
                            v["encounter"]["reference"]
                                .as_str()
                                .unwrap_or("")
                                .to_string(),
                            x,
                        )),
                        _ => {}
                    }
                }
                ResourceKind::Consent => {
                    let cats = v["category"].to_string();
                    if cats.contains("CONSENT-OPT-OUT") {
                        s.opt_outs += 1;
                    }
                    if cats.contains("WITHDRAWAL") {
                        s.withdrawals += 1;
                    }
                }
                ResourceKind::Patient => {
                    if v.get("deceasedDateTime").is_some() {
                        s.deceased += 1;
                    }
                    *s.genders
                        .entry(v["gender"].as_str().unwrap().to_string())
                        .or_default() += 1;
                }
                _ => {}
            }
        }
        let diabetic = codes
            .iter()
            .any(|c| c.starts_with("E10") || c.starts_with("E11"));
        let ckd = codes
            .iter()
            .any(|c| ["N18.3", "N18.4", "N18.5"].iter().any(|p| c.starts_with(p)));
        if diabetic {
            s.hba1c_diabetic.extend(hba1c);
        } else {
            s.hba1c_other.extend(hba1c);
        }
        if ckd {
            s.crea_ckd.extend(crea);
        } else {
            s.crea_other.extend(crea);
        }
        for (enc, x) in crp {
            let infection = main_dx.get(&enc).is_some_and(|c| {
                ["A41", "J18", "J15", "N39", "N10", "L03", "A46", "K35"]
                    .iter()
                    .any(|p| c.starts_with(p))
            });
            if infection {
                s.crp_infection.push(x);
            } else {
                s.crp_other.push(x);
            }
        }
        s.codes_per_patient.push(codes);
    }
    s
}

#[test]
fn two_thousand_patients_look_plausible() {
    let s = collect(100, 2000);
    eprintln!(
        "{} distinct ICD codes; {:.1} resources/patient; HbA1c {:.2} (E10/E11, n={}) vs {:.2} (n={}); creatinine {:.2} (N18.3-5) vs {:.2}; opt-out {}, withdrawal {}, deceased {}; {:?}",
        s.icd.len(),
        s.resources as f64 / s.patients as f64,
        mean(&s.hba1c_diabetic),
        s.hba1c_diabetic.len(),
        mean(&s.hba1c_other),
        s.hba1c_other.len(),
        mean(&s.crea_ckd),
        mean(&s.crea_other),
        s.opt_outs,
        s.withdrawals,
        s.deceased,
        s.genders
    );
    assert!(
        s.icd.len() >= 150,
        "only {} distinct ICD codes",
        s.icd.len()
    );

    let per_patient = s.resources as f64 / s.patients as f64;
    assert!(
        (80.0..=120.0).contains(&per_patient),
        "{per_patient:.1} resources per patient, target 100"
    );

    assert!(!s.hba1c_diabetic.is_empty() && !s.hba1c_other.is_empty());
    let (d, o) = (mean(&s.hba1c_diabetic), mean(&s.hba1c_other));
    assert!(d > o + 1.0, "HbA1c diabetic {d:.2} vs other {o:.2}");
    let (c, n) = (mean(&s.crea_ckd), mean(&s.crea_other));
    assert!(c > n * 1.5, "creatinine CKD {c:.2} vs other {n:.2}");
    let (i, o) = (mean(&s.crp_infection), mean(&s.crp_other));
    eprintln!(
        "CRP {i:.1} (bacterial infection, n={}) vs {o:.1}",
        s.crp_infection.len()
    );
    assert!(i > o * 3.0, "CRP infection {i:.1} vs other {o:.1}");

    assert!(s.opt_outs > 0 && s.withdrawals > 0);
    let objecting = (s.opt_outs + s.withdrawals) as f64 / s.patients as f64;
    assert!(
        (0.03..=0.15).contains(&objecting),
        "{objecting:.3} objecting"
    );
    assert!(s.deceased > 0);
    assert!(s.genders.get("male").copied().unwrap_or(0) > 800);
    assert!(s.genders.get("female").copied().unwrap_or(0) > 800);

    // Comorbidity: hypertension is far more common among type 2 diabetics than overall.
    let with = |p: &str, set: &HashSet<String>| set.iter().any(|c| c.starts_with(p));
    let diabetics: Vec<_> = s
        .codes_per_patient
        .iter()
        .filter(|c| with("E11", c))
        .collect();
    let htn_diab =
        diabetics.iter().filter(|c| with("I10", c)).count() as f64 / diabetics.len().max(1) as f64;
    let htn_all = s
        .codes_per_patient
        .iter()
        .filter(|c| with("I10", c))
        .count() as f64
        / s.patients as f64;
    assert!(
        htn_diab > htn_all * 1.5,
        "I10 among E11 {htn_diab:.2} vs all {htn_all:.2}"
    );
}

#[test]
fn volume_follows_the_configured_target() {
    for target in [40u32, 250] {
        let s = collect(target, 400);
        let per_patient = s.resources as f64 / s.patients as f64;
        eprintln!("target {target}: {per_patient:.1} resources/patient");
        let t = f64::from(target);
        assert!(
            (t * 0.8..=t * 1.2).contains(&per_patient),
            "{per_patient:.1} resources per patient, target {target}"
        );
    }
}
