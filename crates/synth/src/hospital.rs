//! Synthetic hospitals: names, IK numbers, cities and departments, derived from the seed.

use crate::catalog::departments;
use crate::catalog::places::{self, City};
use crate::rng::Rng;

pub const IKNR_SYSTEM: &str = "http://fhir.de/sid/arge-ik/iknr";

#[derive(Debug, Clone)]
pub struct Hospital {
    /// `hosp-<index>`.
    pub id: String,
    pub name: String,
    /// Nine-digit Institutionskennzeichen, hospitals start with `26`.
    pub iknr: String,
    pub city: &'static City,
    pub postal_code: String,
    /// Fachabteilungsschlüssel of its departments, sorted.
    pub departments: Vec<&'static str>,
    /// Relative share of patients: the university hospital is the largest.
    pub size: f64,
}

impl Hospital {
    pub fn department_id(&self, code: &str) -> String {
        format!("{}-dept-{code}", self.id)
    }

    /// The department that treats a case of `wanted`: itself if present, otherwise paediatrics for
    /// children, general surgery for surgical specialties, internal medicine for the rest.
    pub fn department_for(&self, wanted: &'static str, age: i32) -> &'static str {
        if self.departments.contains(&wanted) {
            wanted
        } else if departments::is_surgical(wanted) {
            departments::CHIRURGIE
        } else if age < 18 {
            departments::PAEDIATRIE
        } else {
            departments::INNERE
        }
    }

    /// Namespace for this hospital's local identifiers (record numbers, case numbers, lab ids).
    pub fn identifier_system(&self, what: &str) -> String {
        format!("https://fhir.medicus.example/{}/sid/{what}", self.id)
    }
}

pub fn build(seed: u64, count: u32) -> Vec<Hospital> {
    (0..count)
        .map(|index| {
            // Own stream per hospital, separate from patient streams (which use the patient index).
            let mut rng = Rng::new(seed ^ 0x4855_5350_4954_414C, u64::from(index));
            let city = &places::CITIES[index as usize % places::CITIES.len()];
            let pattern = if index == 0 {
                places::HOSPITAL_PATTERNS[0]
            } else {
                places::HOSPITAL_PATTERNS
                    [1 + (index as usize - 1) % (places::HOSPITAL_PATTERNS.len() - 1)]
            };
            let mut name = pattern.replace("{}", city.name);
            let round = index as usize / places::CITIES.len();
            if round > 0 {
                name.push_str(&format!(" (Standort {})", round + 1));
            }
            let university = index == 0;
            let mut depts: Vec<&'static str> = departments::ALL
                .iter()
                .map(|(c, _)| *c)
                .filter(|c| university || departments::CORE.contains(c) || rng.chance(0.45))
                .collect();
            depts.sort_unstable();
            let size = if university {
                4.0
            } else {
                1.0 + rng.below(3) as f64
            };
            let postal = rng.range(i64::from(city.postal.0), i64::from(city.postal.1));
            Hospital {
                id: format!("hosp-{index}"),
                name,
                iknr: format!(
                    "26{:07}",
                    (u64::from(index) * 7919 + 1_080_001) % 10_000_000
                ),
                city,
                postal_code: format!("{postal:05}"),
                departments: depts,
                size,
            }
        })
        .collect()
}
