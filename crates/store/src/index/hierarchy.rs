//! Code hierarchies that follow from the code structure alone, which answer token `:below` and
//! `:above` without a terminology server: ICD-10-GM, OPS and ATC (the German MII core data set).
//!
//! Both the BfArM and the older DIMDI URIs of ICD-10-GM and OPS name the same code system, so
//! each family has one canonical system key in the derived `below` rows and a search with either
//! URI finds codes stored under either.
//!
//! Levels by structure:
//! - ICD-10-GM: `E11.90` → `E11.9` → `E11` (the three-character category is the top; the
//!   block and chapter ranges such as `E10-E14` cannot be derived from a code). Marker suffixes
//!   (`†` `*` `!` `+`) are not part of the code and are removed.
//! - OPS: `5-470.11` → `5-470.1` → `5-470` → `5-47` → `5`. The three-character class (`5-47`)
//!   and the chapter (`5`, Operationen) are real OPS levels; `5-4` is not (the areas between
//!   are ranges such as `5-42…5-54`), so it is not an ancestor. A localisation suffix
//!   (`5-470.11:R`, `5-470.11 R`) is removed.
//! - ATC: `A10BA02` → `A10BA` → `A10B` → `A10` → `A` (levels of 1, 3, 4, 5 and 7 characters).

/// A code system whose hierarchy follows from its code structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Icd10Gm,
    Ops,
    Atc,
}

const ICD10GM_SYSTEMS: &[&str] = &[
    "http://fhir.de/CodeSystem/bfarm/icd-10-gm",
    "http://fhir.de/CodeSystem/dimdi/icd-10-gm",
];
const OPS_SYSTEMS: &[&str] = &[
    "http://fhir.de/CodeSystem/bfarm/ops",
    "http://fhir.de/CodeSystem/dimdi/ops",
];
const ATC_SYSTEMS: &[&str] = &[
    "http://fhir.de/CodeSystem/bfarm/atc",
    "http://www.whocc.no/atc",
];

/// Hierarchy levels are few; this bounds the rows of a pathological code.
const MAX_ANCESTORS: usize = 8;

impl Family {
    /// The family of a code system URI, `None` for systems without a structural hierarchy.
    pub fn of(system: &str) -> Option<Family> {
        [Family::Icd10Gm, Family::Ops, Family::Atc]
            .into_iter()
            .find(|f| f.systems().contains(&system))
    }

    /// Every URI that names this code system.
    pub fn systems(self) -> &'static [&'static str] {
        match self {
            Family::Icd10Gm => ICD10GM_SYSTEMS,
            Family::Ops => OPS_SYSTEMS,
            Family::Atc => ATC_SYSTEMS,
        }
    }

    /// The URI whose `keys::system_key` is the system of this family's derived `below` rows.
    pub fn canonical_system(self) -> &'static str {
        self.systems()[0]
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Icd10Gm => "ICD-10-GM",
            Family::Ops => "OPS",
            Family::Atc => "ATC",
        }
    }

    /// The code without decorations that are not part of it (ICD markers, OPS localisation).
    pub fn normalize_code(self, code: &str) -> String {
        let code = code.trim();
        let code = match self {
            Family::Icd10Gm => code.trim_end_matches(['†', '*', '!', '+', ' ']),
            Family::Ops => code
                .split([':', ' '])
                .next()
                .unwrap_or(code)
                .trim_end_matches(['†', '*', '!', '+']),
            Family::Atc => code,
        };
        code.to_owned()
    }

    /// The ancestors of a normalised code, nearest first; empty for a top-level or malformed code.
    fn ancestors_of(self, code: &str) -> Vec<String> {
        // All three code systems are ASCII; anything else is not a code of theirs.
        if !code.is_ascii() || code.is_empty() {
            return Vec::new();
        }
        let mut out = match self {
            Family::Icd10Gm => icd_ancestors(code),
            Family::Ops => ops_ancestors(code),
            Family::Atc => atc_ancestors(code),
        };
        out.truncate(MAX_ANCESTORS);
        out
    }
}

/// `E11.90` → `E11.9`, `E11`.
fn icd_ancestors(code: &str) -> Vec<String> {
    let Some((category, sub)) = code.split_once('.') else {
        return Vec::new();
    };
    if category.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<String> = (1..sub.len())
        .rev()
        .map(|i| format!("{category}.{}", &sub[..i]))
        .collect();
    out.push(category.to_owned());
    out
}

/// `5-470.11` → `5-470.1`, `5-470`, `5-47`, `5`.
fn ops_ancestors(code: &str) -> Vec<String> {
    let Some((chapter, rest)) = code.split_once('-') else {
        return Vec::new();
    };
    if chapter.is_empty() || rest.is_empty() {
        return Vec::new();
    }
    let (main, sub) = rest.split_once('.').unwrap_or((rest, ""));
    let mut out: Vec<String> = (1..sub.len())
        .rev()
        .map(|i| format!("{chapter}-{main}.{}", &sub[..i]))
        .collect();
    if !sub.is_empty() {
        out.push(format!("{chapter}-{main}"));
    }
    // The four-character level (`5-470`) and the three-character class (`5-47`).
    for len in (2..main.len()).rev() {
        out.push(format!("{chapter}-{}", &main[..len]));
    }
    out.push(chapter.to_owned());
    out
}

/// `A10BA02` → `A10BA`, `A10B`, `A10`, `A`.
fn atc_ancestors(code: &str) -> Vec<String> {
    [5, 4, 3, 1]
        .into_iter()
        .filter(|&len| len < code.len())
        .map(|len| code[..len].to_owned())
        .collect()
}

/// The ancestors of `code` in `system` by code structure, nearest first; empty when the system
/// has no structural hierarchy (see the module documentation for the levels).
pub fn ancestors(system: &str, code: &str) -> Vec<String> {
    match Family::of(system) {
        Some(f) => f.ancestors_of(&f.normalize_code(code)),
        None => Vec::new(),
    }
}

/// The normalised code followed by its ancestors: the codes of a coding's derived `below` rows.
pub fn self_and_ancestors(family: Family, code: &str) -> Vec<String> {
    let code = family.normalize_code(code);
    if code.is_empty() {
        return Vec::new();
    }
    let mut out = vec![code.clone()];
    out.extend(family.ancestors_of(&code));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ICD: &str = "http://fhir.de/CodeSystem/bfarm/icd-10-gm";
    const OPS: &str = "http://fhir.de/CodeSystem/dimdi/ops";
    const ATC: &str = "http://www.whocc.no/atc";

    #[test]
    fn icd_levels_and_markers() {
        assert_eq!(ancestors(ICD, "E11.90"), vec!["E11.9", "E11"]);
        assert_eq!(ancestors(ICD, "E11.9"), vec!["E11"]);
        assert!(ancestors(ICD, "E11").is_empty());
        assert_eq!(ancestors(ICD, "G63.2*"), vec!["G63"]);
        assert_eq!(ancestors(ICD, "E10.40†"), vec!["E10.4", "E10"]);
        assert_eq!(ancestors(ICD, "U07.1!"), vec!["U07"]);
        assert_eq!(
            self_and_ancestors(Family::Icd10Gm, "E11.90+"),
            vec!["E11.90", "E11.9", "E11"]
        );
        assert!(ancestors(ICD, ".5").is_empty());
    }

    #[test]
    fn ops_levels() {
        assert_eq!(
            ancestors(OPS, "5-470.11"),
            vec!["5-470.1", "5-470", "5-47", "5"]
        );
        assert_eq!(ancestors(OPS, "5-470"), vec!["5-47", "5"]);
        assert_eq!(ancestors(OPS, "1-632.0"), vec!["1-632", "1-63", "1"]);
        assert_eq!(ancestors(OPS, "5-470.11:R"), ancestors(OPS, "5-470.11"));
        assert!(ancestors(OPS, "5").is_empty());
        assert!(ancestors(OPS, "-470").is_empty());
    }

    #[test]
    fn atc_levels() {
        assert_eq!(ancestors(ATC, "A10BA02"), vec!["A10BA", "A10B", "A10", "A"]);
        assert_eq!(ancestors(ATC, "A10"), vec!["A"]);
        assert!(ancestors(ATC, "A").is_empty());
    }

    #[test]
    fn families_by_either_uri() {
        assert_eq!(
            Family::of("http://fhir.de/CodeSystem/dimdi/icd-10-gm"),
            Some(Family::Icd10Gm)
        );
        assert_eq!(
            Family::of("http://fhir.de/CodeSystem/bfarm/atc"),
            Some(Family::Atc)
        );
        assert_eq!(Family::of("http://loinc.org"), None);
        assert!(ancestors("http://loinc.org", "4548-4").is_empty());
        // Non-ASCII input is no code of these systems; it must not panic on a char boundary.
        assert!(ancestors(ATC, "Äö10").is_empty());
        assert!(ancestors(OPS, "5-ä7.ü1").is_empty());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_ancestors_are_shorter(code in "\\PC{0,16}") {
            for system in [ICD, OPS, ATC] {
                let family = Family::of(system).unwrap();
                let code = family.normalize_code(&code);
                for a in ancestors(system, &code) {
                    proptest::prop_assert!(a.len() < code.len());
                }
            }
        }
    }
}
