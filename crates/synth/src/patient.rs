//! The clinical model of one patient: demographics, chronic conditions with comorbidity, and a plan
//! of hospital contacts. Everything is drawn from the patient's own random stream, in a fixed order,
//! so a patient depends only on (seed, index) and the hospital list.

use crate::catalog::atc::{self, Atc};
use crate::catalog::icd::{self, Ages, Cluster, Course, Icd, Sexes};
use crate::catalog::loinc::Lab;
use crate::catalog::{names, ops, places};
use crate::date::Day;
use crate::hospital::Hospital;
use crate::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    Female,
    Male,
    /// FHIR `other` with the German `gender-amtlich-de` code D (divers).
    Diverse,
}

impl Sex {
    pub fn fhir(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
            Sex::Diverse => "other",
        }
    }

    fn matches(self, s: Sexes) -> bool {
        match s {
            Sexes::Any => true,
            Sexes::Male => self == Sex::Male,
            Sexes::Female => self == Sex::Female,
        }
    }

    /// Sex-specific reference ranges: diverse patients get the female range (the lower bound).
    pub fn is_male(self) -> bool {
        self == Sex::Male
    }
}

#[derive(Debug, Clone)]
pub struct Person {
    pub sex: Sex,
    pub birth: Day,
    pub death: Option<Day>,
    pub given: Vec<&'static str>,
    pub family: &'static str,
    pub street: &'static str,
    pub house_number: u32,
    pub city: &'static places::City,
    pub postal_code: String,
    pub kvid: String,
    pub record_number: String,
}

#[derive(Debug, Clone, Copy)]
pub struct Chronic {
    pub icd: &'static Icd,
    pub onset: Day,
}

#[derive(Debug, Clone)]
pub struct Statement {
    pub atc: &'static Atc,
    pub start: Day,
    /// Index into `Model::chronic` of the condition it treats.
    pub reason: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentKind {
    /// MII Broad Consent, all modules granted.
    Broad,
    /// Broad Consent later withdrawn (a second, WITHDRAWAL document).
    Withdrawn { after_days: i32 },
    /// Objection without prior consent (CONSENT-OPT-OUT).
    OptOut,
}

/// One planned hospital contact and everything that happens in it.
#[derive(Debug, Clone)]
pub struct Contact {
    pub inpatient: bool,
    pub start: Day,
    /// Length of stay in days (0 for same-day outpatient contacts).
    pub days: i32,
    pub department: &'static str,
    pub main: &'static Icd,
    /// The main diagnosis is one of the patient's chronic conditions (index), so no new Condition.
    pub main_chronic: Option<usize>,
    pub procedures: Vec<&'static str>,
    /// (medication, number of administrations).
    pub administrations: Vec<(&'static Atc, u8)>,
    /// Lab draws: day offset within the stay and the tests ordered.
    pub draws: Vec<(i32, Vec<Lab>)>,
    pub died_here: bool,
}

impl Contact {
    pub fn end(&self) -> Day {
        self.start.plus(self.days)
    }

    /// Resources this contact produces; must match what `resources::encounter` emits.
    fn resource_count(&self) -> u64 {
        let encounters = if self.inpatient { 2 } else { 1 };
        let condition = u64::from(self.main_chronic.is_none());
        let admin: u64 = self
            .administrations
            .iter()
            .map(|(_, n)| u64::from(*n))
            .sum();
        let labs: u64 = self.draws.iter().map(|(_, t)| 1 + t.len() as u64).sum();
        encounters + condition + self.procedures.len() as u64 + admin + labs
    }
}

/// Condition-derived facts the lab model needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flags {
    pub diabetes: bool,
    pub ckd_stage: u8,
    pub heart_failure: bool,
    pub coronary: bool,
    pub liver: bool,
    pub hypothyroid: bool,
    pub hyperthyroid: bool,
    pub anemia: bool,
    pub oncology: bool,
    pub leukemia: bool,
    pub lipids: bool,
    pub gout: bool,
    pub anticoagulated: bool,
    pub inflammatory: bool,
    pub thrombocytopenia: bool,
    pub obese: bool,
}

impl Flags {
    fn from_conditions(chronic: &[Chronic]) -> Flags {
        let mut f = Flags::default();
        for c in chronic {
            let code = c.icd.code;
            let has = |p: &str| code.starts_with(p);
            f.diabetes |= has("E10") || has("E11");
            if let Some(stage) = code.strip_prefix("N18.") {
                f.ckd_stage = f.ckd_stage.max(stage.parse().unwrap_or(3));
            }
            if has("Z99.2") {
                f.ckd_stage = 5;
            }
            f.heart_failure |= has("I50") || has("I11");
            f.coronary |= has("I25") || has("Z95.5");
            f.liver |= has("K70") || has("K74") || has("K76") || has("B18");
            f.hypothyroid |= has("E03");
            f.hyperthyroid |= has("E05");
            f.anemia |= has("D50") || has("D63");
            f.oncology |= code.starts_with('C');
            f.leukemia |= has("C91") || has("C92");
            f.lipids |= has("E78");
            f.gout |= has("E79") || has("M10");
            f.anticoagulated |= has("Z92.1") || has("I48");
            f.inflammatory |= has("M06") || has("K50") || has("K51") || has("M35") || has("M45");
            f.thrombocytopenia |= has("D69");
            f.obese |= has("E66");
        }
        f
    }

    pub fn cirrhosis(chronic: &[Chronic]) -> bool {
        chronic
            .iter()
            .any(|c| c.icd.code.starts_with("K70.3") || c.icd.code.starts_with("K74"))
    }
}

#[derive(Debug, Clone)]
pub struct Model {
    pub index: u64,
    pub hospital: u32,
    pub id: String,
    pub person: Person,
    pub chronic: Vec<Chronic>,
    pub statements: Vec<Statement>,
    pub contacts: Vec<Contact>,
    pub consent: ConsentKind,
    pub consent_date: Day,
    pub flags: Flags,
    pub cirrhosis: bool,
    /// Resources the patient will produce (exact).
    pub planned: u64,
}

/// Hospital population by age band: (lowest age, highest age, weight). Old people dominate.
const AGE_BANDS: &[(i32, i32, f64)] = &[
    (0, 0, 3.0),
    (1, 4, 2.0),
    (5, 17, 5.0),
    (18, 29, 8.0),
    (30, 39, 8.0),
    (40, 49, 9.0),
    (50, 59, 14.0),
    (60, 69, 16.0),
    (70, 79, 18.0),
    (80, 89, 13.0),
    (90, 102, 4.0),
];

/// Years of history generated per patient.
const HISTORY_DAYS: i32 = 10 * 365;

/// Probability that a patient is "affected" by a disease cluster, before age scaling.
fn cluster_base(c: Cluster) -> f64 {
    match c {
        Cluster::Metabolic => 0.35,
        Cluster::Cardio => 0.35,
        Cluster::Renal => 0.2,
        Cluster::Respiratory => 0.2,
        Cluster::Infection => 0.25,
        Cluster::Oncology => 0.12,
        Cluster::Gastro => 0.2,
        Cluster::Neuro => 0.15,
        Cluster::Psych => 0.15,
        Cluster::Musculoskeletal => 0.25,
        Cluster::Trauma => 0.2,
        Cluster::Obstetric => 0.3,
        Cluster::Neonatal => 1.0,
        Cluster::Other => 0.2,
    }
}

/// Explicit comorbidity: having the first code raises the chance of the second.
const COMORBIDITY: &[(&str, &str, f64)] = &[
    ("E11", "I10.00", 0.55),
    ("E11", "E78.0", 0.40),
    ("E11", "N18.3", 0.20),
    ("E11", "E66.99", 0.35),
    ("E11", "G62.9", 0.10),
    ("E66", "E11.90", 0.20),
    ("I10", "I25.19", 0.10),
    ("I10", "N18.3", 0.08),
    ("I25", "E78.0", 0.40),
    ("I25", "Z95.5", 0.30),
    ("I48", "Z92.1", 0.60),
    ("I48", "I50.9", 0.25),
    ("I50", "I48.9", 0.30),
    ("I50", "N18.3", 0.25),
    ("N18.3", "D63.8", 0.25),
    ("N18.4", "D63.8", 0.45),
    ("N18.5", "Z99.2", 0.50),
    ("J44", "F17.1", 0.50),
    ("J44", "I50.9", 0.15),
    ("C34", "F17.1", 0.60),
    ("C18", "C78.7", 0.20),
    ("C50", "C79.5", 0.10),
    ("C61", "C79.5", 0.12),
    ("F10", "K70.3", 0.15),
    ("F03", "F32.9", 0.20),
    ("G30", "F03", 0.30),
    ("M81", "M54.5", 0.20),
    ("K70", "F10.2", 0.70),
];

/// Everything a patient's generation needs that is shared and read-only.
pub struct World<'a> {
    pub seed: u64,
    pub target: u32,
    pub hospitals: &'a [Hospital],
    pub hospital_weights: &'a [f64],
    pub as_of: Day,
}

pub fn patient_id(hospital: u32, index: u64) -> String {
    format!("pat-{hospital}-{index}")
}

/// KVID-10: a letter, eight digits, a check digit. The check digit follows §290 SGB V: the letter
/// becomes its two-digit alphabet position, the ten digits are weighted 1,2,1,2,…, the digit sums of
/// the products are added, and the last digit of the sum is the check digit.
pub fn kvid(letter: u8, digits: u32) -> String {
    let letter = letter.clamp(b'A', b'Z');
    let body = format!("{:02}{:08}", letter - b'A' + 1, digits % 100_000_000);
    let sum: u32 = body
        .bytes()
        .enumerate()
        .map(|(i, b)| {
            let p = u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 2 };
            p / 10 + p % 10
        })
        .sum();
    format!("{}{:08}{}", letter as char, digits % 100_000_000, sum % 10)
}

fn age_at(birth: Day, day: Day) -> i32 {
    birth.years_until(day).max(0)
}

pub fn build(world: &World, index: u64) -> Model {
    let mut rng = Rng::new(world.seed, index);
    let hospital = rng.weighted(world.hospital_weights) as u32;
    let hosp = &world.hospitals[hospital as usize];
    let id = patient_id(hospital, index);

    // Demographics.
    let sex = match rng.below(1000) {
        0..=489 => Sex::Male,
        490..=996 => Sex::Female,
        _ => Sex::Diverse,
    };
    let band_weights: Vec<f64> = AGE_BANDS.iter().map(|b| b.2).collect();
    let band = AGE_BANDS[rng.weighted(&band_weights)];
    let age_now = rng.range(i64::from(band.0), i64::from(band.1)) as i32;
    let birth = world
        .as_of
        .plus(-(age_now * 365 + age_now / 4) - rng.range(0, 364) as i32);
    let age = age_at(birth, world.as_of);

    let first_names = match sex {
        Sex::Male => names::MALE,
        Sex::Female => names::FEMALE,
        Sex::Diverse => {
            if rng.chance(0.5) {
                names::MALE
            } else {
                names::FEMALE
            }
        }
    };
    let mut given = vec![*rng.pick(first_names)];
    if rng.chance(0.25) {
        let second = *rng.pick(first_names);
        if second != given[0] {
            given.push(second);
        }
    }
    let family = *rng.pick(names::FAMILY);
    // Most patients live near their hospital.
    let city = if rng.chance(0.7) {
        hosp.city
    } else {
        rng.pick(places::CITIES)
    };
    let postal = rng.range(i64::from(city.postal.0), i64::from(city.postal.1));
    let person_street = *rng.pick(places::STREETS);
    let house_number = 1 + rng.below(120) as u32;
    let kvid = kvid(b'A' + rng.below(26) as u8, rng.below(100_000_000) as u32);
    let record_number = format!("{:010}", mix_record_number(world.seed, index));

    // Chronic conditions: cluster affection first, then per-code draws, then explicit comorbidity.
    let mut affected = [false; Cluster::ALL.len()];
    let age_scale = 0.4 + (f64::from(age) / 70.0).min(1.3);
    for c in Cluster::ALL {
        affected[c.index()] = rng.chance((cluster_base(c) * age_scale).min(0.9));
    }
    let mut chronic: Vec<Chronic> = Vec::new();
    let onset_for = |rng: &mut Rng, icd: &Icd| -> Day {
        let min_age = match icd.ages {
            Ages::Newborn | Ages::Child | Ages::Any => 0,
            Ages::Fertile | Ages::Young => 15,
            Ages::Adult => 18,
            Ages::Middle => 30,
            Ages::Elderly => 45,
        };
        let earliest = birth.plus(min_age * 365).max(birth);
        let span = (world.as_of.0 - earliest.0).clamp(1, 20 * 365);
        world
            .as_of
            .plus(-(rng.below(span as u64) as i32) - 1)
            .max(birth)
    };
    for icd in icd::CHRONIC {
        if !sex.matches(icd.sex) {
            // Draw anyway so the stream does not depend on which codes apply.
            rng.next_u64();
            continue;
        }
        let boost = if affected[icd.cluster.index()] {
            2.5
        } else {
            0.35
        };
        let p = (icd.weight * icd.ages.factor(age) * boost).min(0.85);
        if rng.chance(p) {
            let onset = onset_for(&mut rng, icd);
            chronic.push(Chronic { icd, onset });
        }
    }
    for (from, to, p) in COMORBIDITY {
        let has_from = chronic.iter().any(|c| c.icd.code.starts_with(from));
        let has_to = chronic.iter().any(|c| c.icd.code == *to);
        let roll = rng.unit();
        if has_from
            && !has_to
            && roll < *p
            && let Some(icd) = icd::lookup(to).filter(|i| sex.matches(i.sex))
        {
            let onset = onset_for(&mut rng, icd);
            chronic.push(Chronic { icd, onset });
        }
    }
    let flags = Flags::from_conditions(&chronic);
    let cirrhosis = Flags::cirrhosis(&chronic);

    // Death: age-dependent, higher with cancer and heart failure.
    let mut p_death = match age {
        0..=59 => 0.01,
        60..=79 => 0.06,
        _ => 0.16,
    };
    if flags.oncology {
        p_death += 0.12;
    }
    if flags.heart_failure {
        p_death += 0.05;
    }
    let mut death = if rng.chance(p_death) {
        let back = rng.below(3 * 365) as i32;
        Some(world.as_of.plus(-back).max(birth.plus(1)))
    } else {
        None
    };
    let end = death.unwrap_or(world.as_of);
    // Conditions were dated before death was known: nothing starts after it.
    for c in &mut chronic {
        c.onset = c.onset.min(end);
    }
    let window_start = end.plus(-HISTORY_DAYS).max(birth);
    let window = (end.0 - window_start.0).max(1);

    // Consent.
    let consent = match rng.below(1000) {
        // About 5 % object: half withdraw a Broad Consent, half object without one.
        0..=949 => ConsentKind::Broad,
        950..=974 => ConsentKind::Withdrawn {
            after_days: 30 + rng.below(3 * 365) as i32,
        },
        _ => ConsentKind::OptOut,
    };

    // Long-term medication for chronic conditions.
    let mut statements: Vec<Statement> = Vec::new();
    for (i, c) in chronic.iter().enumerate() {
        let Some(menu) = atc::chronic_for(c.icd.code) else {
            continue;
        };
        let n = if menu.len() > 1 && rng.chance(0.3) {
            2
        } else {
            1
        };
        let first = rng.below(menu.len() as u64) as usize;
        for k in 0..n {
            let code = menu[(first + k) % menu.len()];
            if statements.iter().any(|s| s.atc.code == code) {
                continue;
            }
            if let Some(a) = atc::lookup(code) {
                let start = c.onset.plus(rng.below(90) as i32).min(end);
                statements.push(Statement {
                    atc: a,
                    start,
                    reason: i,
                });
            }
        }
    }

    let fixed = 3 // Patient, Vitalstatus, Consent
        + u64::from(matches!(consent, ConsentKind::Withdrawn { .. }))
        + chronic.len() as u64
        + statements.len() as u64;

    // Acute diagnosis weights for this patient (age and sex at generation time, cluster boosts).
    let acute_weights: Vec<f64> = icd::ACUTE
        .iter()
        .map(|i| {
            // Birth is planned explicitly below, once.
            if !sex.matches(i.sex) || i.code == "Z38.0" {
                return 0.0;
            }
            let boost = if affected[i.cluster.index()] {
                2.0
            } else {
                1.0
            };
            i.weight * i.ages.factor(age) * boost
        })
        .collect();
    let has_acute = acute_weights.iter().any(|w| *w > 0.0);

    // Resource budget: the patient's share of the configured mean, skewed towards the sick.
    let morbidity = (chronic.len() as f64 / 4.0).min(1.5);
    let spread = 0.25 + 1.5 * (0.6 * rng.unit() + 0.4 * (morbidity / 1.5));
    // 1.08 calibrates the mean of `spread` (about 0.9) and the stop rule so the mean lands on target.
    let budget = (f64::from(world.target) * spread * 1.08) as u64;

    let mut contacts: Vec<Contact> = Vec::new();
    let mut planned = fixed;
    // A newborn's first contact is its birth.
    if age == 0
        && let Some(z38) = icd::lookup("Z38.0")
    {
        let c = plan_contact(&mut rng, hosp, birth, true, z38, None, &flags, age, end);
        planned += c.resource_count();
        contacts.push(c);
    }
    for _ in 0..400 {
        if planned >= budget {
            break;
        }
        let start = window_start.plus(rng.below(window as u64) as i32);
        let contact_age = age_at(birth, start);
        let inpatient = rng.chance(if contact_age >= 65 { 0.6 } else { 0.45 });
        let active: Vec<usize> = (0..chronic.len())
            .filter(|&i| chronic[i].onset <= start)
            .collect();
        let use_chronic = !active.is_empty() && rng.chance(if inpatient { 0.35 } else { 0.7 });
        let (main, main_chronic) = if use_chronic || !has_acute {
            match active.get(rng.below(active.len() as u64) as usize) {
                Some(&i) => (chronic[i].icd, Some(i)),
                None => break,
            }
        } else {
            (&icd::ACUTE[rng.weighted(&acute_weights)], None)
        };
        let c = plan_contact(
            &mut rng,
            hosp,
            start,
            inpatient,
            main,
            main_chronic,
            &flags,
            contact_age,
            end,
        );
        let n = c.resource_count();
        // Stop rather than overshoot by more than half a contact: keeps the mean on target.
        if planned + n / 2 > budget && !contacts.is_empty() {
            break;
        }
        planned += n;
        contacts.push(c);
    }
    contacts.sort_by_key(|c| (c.start, c.inpatient));

    // Half of the deceased die in hospital, at the end of their last stay.
    if let (Some(_), Some(last)) = (death, contacts.last_mut())
        && last.inpatient
        && rng.chance(0.5)
    {
        last.died_here = true;
        let died = last.end();
        death = Some(died);
        for c in &mut chronic {
            c.onset = c.onset.min(died);
        }
        for st in &mut statements {
            st.start = st.start.min(died);
        }
    }
    let consent_date = contacts
        .first()
        .map_or(window_start, |c| c.start)
        .max(birth);
    // A withdrawal happens while the patient is alive and before the data's end date.
    let last_day = death.unwrap_or(world.as_of);
    let consent = match consent {
        ConsentKind::Withdrawn { after_days } => ConsentKind::Withdrawn {
            after_days: after_days.min(last_day.0 - consent_date.0).max(0),
        },
        other => other,
    };

    Model {
        index,
        hospital,
        id,
        person: Person {
            sex,
            birth,
            death,
            given,
            family,
            street: person_street,
            house_number,
            city,
            postal_code: format!("{postal:05}"),
            kvid,
            record_number,
        },
        chronic,
        statements,
        contacts,
        consent,
        consent_date,
        flags,
        cirrhosis,
        planned,
    }
}

fn mix_record_number(seed: u64, index: u64) -> u64 {
    crate::rng::mix(seed ^ 0x5245_434F_5244, index) % 10_000_000_000
}

#[allow(clippy::too_many_arguments)] // a private planning step; a struct would only rename the list
fn plan_contact(
    rng: &mut Rng,
    hosp: &Hospital,
    start: Day,
    inpatient: bool,
    main: &'static Icd,
    main_chronic: Option<usize>,
    flags: &Flags,
    age: i32,
    end: Day,
) -> Contact {
    let max_days = (end.0 - start.0).max(0);
    let days = if inpatient {
        let los = 1
            + rng.below(4) as i32
            + if rng.chance(0.4) {
                rng.below(12) as i32
            } else {
                0
            };
        los.min(max_days)
    } else {
        0
    };
    let department = hosp.department_for(main.dept, age);

    let mut procedures: Vec<&'static str> = Vec::new();
    if let Some(menu) = ops::for_diagnosis(main.code) {
        let n = if inpatient {
            1 + rng.below(menu.len().min(3) as u64) as usize
        } else {
            usize::from(rng.chance(0.3))
        };
        let first = rng.below(menu.len() as u64) as usize;
        for k in 0..n {
            procedures.push(menu[(first + k) % menu.len()]);
        }
    }
    if inpatient && age >= 75 && rng.chance(0.35) {
        let g = *rng.pick(ops::GERIATRIC);
        if !procedures.contains(&g) {
            procedures.push(g);
        }
    }

    let mut administrations: Vec<(&'static Atc, u8)> = Vec::new();
    if inpatient {
        let per_drug = |rng: &mut Rng| 1 + rng.below(u64::from((days.clamp(1, 3)) as u8)) as u8;
        if let Some(menu) = atc::acute_for(main.code) {
            let n = 1 + rng.below(menu.len().min(3) as u64) as usize;
            let first = rng.below(menu.len() as u64) as usize;
            for k in 0..n {
                if let Some(a) = atc::lookup(menu[(first + k) % menu.len()]) {
                    let times = per_drug(rng);
                    administrations.push((a, times));
                }
            }
        }
        let routine = rng.below(3) as usize;
        for _ in 0..routine {
            if let Some(a) = atc::lookup(rng.pick::<&str>(atc::INPATIENT_ROUTINE))
                && !administrations.iter().any(|(x, _)| x.code == a.code)
            {
                let times = per_drug(rng);
                administrations.push((a, times));
            }
        }
    }

    let mut draws: Vec<(i32, Vec<Lab>)> = Vec::new();
    if inpatient {
        let n = 1 + usize::from(days > 3) + usize::from(days > 8);
        for d in 0..n {
            let offset = if d == 0 {
                0
            } else {
                (days * d as i32) / n as i32
            };
            draws.push((offset, inpatient_panel(main, flags, age, d == 0)));
        }
    } else if rng.chance(0.75) {
        draws.push((0, outpatient_panel(main, flags)));
    }

    Contact {
        inpatient,
        start,
        days,
        department,
        main,
        main_chronic,
        procedures,
        administrations,
        draws,
        died_here: false,
    }
}

fn inpatient_panel(main: &Icd, f: &Flags, age: i32, admission: bool) -> Vec<Lab> {
    let mut labs = vec![
        Lab::Hemoglobin,
        Lab::Leukocytes,
        Lab::Platelets,
        Lab::Sodium,
        Lab::Potassium,
        Lab::Creatinine,
        Lab::Egfr,
        Lab::Crp,
    ];
    if age == 0 {
        labs = vec![Lab::Hemoglobin, Lab::Leukocytes, Lab::Crp, Lab::Bilirubin];
        return labs;
    }
    labs.push(Lab::Glucose);
    if !admission {
        return labs;
    }
    let code = main.code;
    // HbA1c for diabetics, and as screening for patients with metabolic or vascular risk.
    if f.diabetes || f.obese || f.lipids || f.coronary {
        labs.push(Lab::Hba1c);
    }
    if f.heart_failure || code.starts_with("I50") {
        labs.push(Lab::NtProBnp);
    }
    if code.starts_with("I2") || code.starts_with("R07") || f.coronary {
        labs.push(Lab::TroponinT);
    }
    if f.hypothyroid || f.hyperthyroid || code.starts_with("I48") {
        labs.push(Lab::Tsh);
    }
    if f.liver || code.starts_with("K8") || code.starts_with("K7") {
        labs.extend([Lab::Alt, Lab::Ast, Lab::Bilirubin]);
    }
    if f.lipids || f.coronary {
        labs.extend([Lab::Cholesterol, Lab::Ldl]);
    }
    if main.cluster == Cluster::Infection || code.starts_with("A41") {
        labs.extend([Lab::Procalcitonin, Lab::Lactate]);
    }
    if f.anticoagulated || main.course == Course::Acute && code.starts_with('S') {
        labs.push(Lab::Inr);
    }
    if f.gout {
        labs.push(Lab::UricAcid);
    }
    labs
}

fn outpatient_panel(main: &Icd, f: &Flags) -> Vec<Lab> {
    let mut labs = vec![Lab::Hemoglobin, Lab::Creatinine, Lab::Egfr, Lab::Crp];
    if f.diabetes {
        labs.extend([Lab::Hba1c, Lab::Glucose]);
    } else if f.obese || f.lipids || f.coronary {
        labs.push(Lab::Hba1c);
    }
    if f.hypothyroid || f.hyperthyroid {
        labs.push(Lab::Tsh);
    }
    if f.lipids {
        labs.extend([Lab::Cholesterol, Lab::Ldl]);
    }
    if f.ckd_stage >= 3 {
        labs.push(Lab::Potassium);
    }
    if main.cluster == Cluster::Infection {
        labs.push(Lab::Leukocytes);
    }
    labs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kvid_has_valid_check_digit() {
        // Worked example: A123456780 appears in the MII test data.
        assert_eq!(kvid(b'A', 12_345_678), "A123456780");
        let k = kvid(b'Z', 7);
        assert_eq!(k.len(), 10);
        assert!(k.starts_with('Z'));
    }
}
