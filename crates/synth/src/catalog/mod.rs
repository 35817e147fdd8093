//! Built-in code tables: compact, hand-curated subsets of ICD-10-GM, OPS, ATC, LOINC and the
//! Fachabteilungsschlüssel, plus German names and places. Compiled in so that generation needs no files.

pub mod atc;
pub mod departments;
pub mod icd;
pub mod loinc;
pub mod names;
pub mod ops;
pub mod places;
