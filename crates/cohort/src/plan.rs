//! From a validated CCDL document to a plan both evaluators run: contexts resolved to resource
//! domains, code systems normalised (both ICD-10-GM URIs, both ATC URIs), hierarchies marked,
//! units checked, dates turned into day ranges, size limits enforced.

use serde::{Deserialize, Serialize};

use crate::ccdl::{Ccdl, Comparator, Criterion, Filter, Ptr, TermCode, Unit};
use crate::date::{AgeUnit, parse_date};
use crate::error::QueryError;
use crate::units;

pub const ICD10GM: &str = "http://fhir.de/CodeSystem/bfarm/icd-10-gm";
pub const ICD10GM_OLD: &str = "http://fhir.de/CodeSystem/dimdi/icd-10-gm";
pub const OPS: &str = "http://fhir.de/CodeSystem/bfarm/ops";
pub const OPS_OLD: &str = "http://fhir.de/CodeSystem/dimdi/ops";
pub const ATC: &str = "http://fhir.de/CodeSystem/bfarm/atc";
pub const ATC_WHO: &str = "http://www.whocc.no/atc";
pub const LOINC: &str = "http://loinc.org";
pub const SNOMED: &str = "http://snomed.info/sct";
pub const CONSENT_POLICY: &str = "urn:oid:2.16.840.1.113883.3.1937.777.24.5.3";
/// The MII ontology's context system.
pub const CONTEXT_SYSTEM: &str = "fdpg.mii.cds";
/// LOINC codes the MII ontology uses for the Patient context.
pub const GENDER_CODES: &[&str] = &["LL2191-6", "76689-9", "46098-0"];
pub const AGE_CODE: &str = "30525-0";

/// Size limits of one query (a query over them is refused with 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Criteria in the whole document, nested ones included.
    pub criteria: usize,
    /// Term codes (and selected concepts) of one criterion or filter.
    pub codes_per_criterion: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            criteria: 100,
            codes_per_criterion: 500,
        }
    }
}

/// The resource kinds facts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Domain {
    Condition,
    Procedure,
    Observation,
    MedicationStatement,
    MedicationRequest,
    MedicationAdministration,
    Consent,
    Specimen,
}

impl Domain {
    pub const ALL: [Domain; 8] = [
        Domain::Condition,
        Domain::Procedure,
        Domain::Observation,
        Domain::MedicationStatement,
        Domain::MedicationRequest,
        Domain::MedicationAdministration,
        Domain::Consent,
        Domain::Specimen,
    ];

    /// Position in [`Domain::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn resource_type(self) -> &'static str {
        match self {
            Domain::Condition => "Condition",
            Domain::Procedure => "Procedure",
            Domain::Observation => "Observation",
            Domain::MedicationStatement => "MedicationStatement",
            Domain::MedicationRequest => "MedicationRequest",
            Domain::MedicationAdministration => "MedicationAdministration",
            Domain::Consent => "Consent",
            Domain::Specimen => "Specimen",
        }
    }

    pub fn from_resource_type(t: &str) -> Option<Domain> {
        Domain::ALL.into_iter().find(|d| d.resource_type() == t)
    }

    pub fn is_medication(self) -> bool {
        matches!(
            self,
            Domain::MedicationStatement
                | Domain::MedicationRequest
                | Domain::MedicationAdministration
        )
    }
}

/// A context's meaning: the Patient's own data, or facts of some domains.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Context {
    Patient,
    Facts(Vec<Domain>),
}

fn context(code: &str) -> Option<Context> {
    use Domain::*;
    Some(match code.to_ascii_lowercase().as_str() {
        "patient" | "person" => Context::Patient,
        "diagnose" | "condition" => Context::Facts(vec![Condition]),
        "prozedur" | "procedure" => Context::Facts(vec![Procedure]),
        "laboruntersuchung" | "laborbefund" | "labor" | "observation" => {
            Context::Facts(vec![Observation])
        }
        "medikamentenverabreichung" | "medicationadministration" => {
            Context::Facts(vec![MedicationAdministration])
        }
        "medikamentenverordnung" | "medicationstatement" | "medicationrequest" => {
            Context::Facts(vec![MedicationStatement, MedicationRequest])
        }
        "medikation" | "medication" => Context::Facts(vec![
            MedicationStatement,
            MedicationRequest,
            MedicationAdministration,
        ]),
        "einwilligung" | "consent" => Context::Facts(vec![Consent]),
        "specimen" | "bioprobe" => Context::Facts(vec![Specimen]),
        _ => return None,
    })
}

/// The canonical URI of a code system (old and alternative URIs of the same system map to one).
pub fn normalize_system(system: &str) -> &str {
    match system {
        ICD10GM_OLD => ICD10GM,
        OPS_OLD => OPS,
        ATC_WHO => ATC,
        s => s,
    }
}

/// Systems whose codes nest by their structure: a code includes every code it is a prefix of
/// (ICD-10-GM `E11` ⊃ `E11.9` ⊃ `E11.90`; OPS `5-01` ⊃ `5-016` ⊃ `5-016.0`; ATC `A10` ⊃ `A10BA02`).
pub fn is_hierarchical(system: &str) -> bool {
    matches!(normalize_system(system), ICD10GM | OPS | ATC)
}

/// One code to look for: `code` exactly, or every code starting with it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CodeSel {
    pub system: String,
    pub code: String,
    pub prefix: bool,
}

impl CodeSel {
    fn from_term(t: &TermCode) -> CodeSel {
        let system = normalize_system(&t.system).to_owned();
        let (code, star) = match t.code.strip_suffix('*') {
            Some(c) => (c.to_owned(), true),
            None => (t.code.clone(), false),
        };
        let prefix = star || is_hierarchical(&system);
        CodeSel {
            system,
            code,
            prefix,
        }
    }

    pub fn matches(&self, system: &str, code: &str) -> bool {
        normalize_system(system) == self.system
            && if self.prefix {
                code.starts_with(&self.code)
            } else {
                code == self.code
            }
    }
}

/// A number test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NumTest {
    Cmp(Comparator, f64),
    /// Inclusive on both ends.
    Range(f64, f64),
}

impl NumTest {
    pub fn holds(self, v: f64) -> bool {
        match self {
            NumTest::Cmp(c, b) => c.holds(v, b),
            NumTest::Range(lo, hi) => v >= lo && v <= hi,
        }
    }
}

/// A coded value to look for; an empty system matches any system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConceptSel {
    pub system: String,
    pub code: String,
}

impl ConceptSel {
    pub fn matches(&self, system: &str, code: &str) -> bool {
        self.code == code && (self.system.is_empty() || normalize_system(system) == self.system)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ValueTest {
    Concept(Vec<ConceptSel>),
    /// `unit`: the UCUM code the value must carry; `None`: any unit.
    Quantity {
        test: NumTest,
        unit: Option<String>,
    },
}

/// The attributes a criterion can filter on, per domain, and where they are in the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Attr {
    ClinicalStatus,
    VerificationStatus,
    Severity,
    BodySite,
    Status,
    Interpretation,
    Method,
    /// Dose of a medication (quantity).
    Dose,
    /// Condition the resource is for: MedicationStatement/Request `reasonReference`,
    /// Procedure `reasonReference`, Specimen's MII `Diagnose` extension.
    Diagnosis,
}

/// What an attribute holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrKind {
    Concept,
    Quantity,
    Reference,
}

impl Attr {
    pub fn kind(self) -> AttrKind {
        match self {
            Attr::Dose => AttrKind::Quantity,
            Attr::Diagnosis => AttrKind::Reference,
            _ => AttrKind::Concept,
        }
    }

    /// The attribute an `attributeCode` names within a domain.
    pub fn resolve(domain: Domain, code: &str) -> Option<Attr> {
        use Domain::*;
        let a = match code.to_ascii_lowercase().as_str() {
            "clinicalstatus" | "klinischerstatus" => Attr::ClinicalStatus,
            "verificationstatus" => Attr::VerificationStatus,
            "severity" | "schweregrad" => Attr::Severity,
            "bodysite" | "körperstelle" | "koerperstelle" | "entnahmeort" => Attr::BodySite,
            "status" => Attr::Status,
            "interpretation" => Attr::Interpretation,
            "method" | "methode" => Attr::Method,
            "dose" | "dosis" => Attr::Dose,
            "diagnose" | "diagnosis" | "reason" | "reasonreference" | "indikation" => {
                Attr::Diagnosis
            }
            _ => return None,
        };
        let ok = match a {
            Attr::ClinicalStatus | Attr::VerificationStatus | Attr::Severity => domain == Condition,
            Attr::BodySite => matches!(domain, Condition | Procedure | Observation | Specimen),
            Attr::Status => domain != Consent,
            Attr::Interpretation | Attr::Method => domain == Observation,
            Attr::Dose => domain.is_medication(),
            Attr::Diagnosis => matches!(
                domain,
                MedicationStatement | MedicationRequest | Procedure | Specimen
            ),
        };
        ok.then_some(a)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AttrTest {
    Concept(Vec<ConceptSel>),
    Quantity {
        test: NumTest,
        unit: Option<String>,
    },
    /// The referenced resource meets one of these (same patient; no further references).
    Reference(Vec<FactCrit>),
}

/// A criterion on the facts of some domains: one resource must meet all of it.
#[derive(Debug, Clone, PartialEq)]
pub struct FactCrit {
    pub domains: Vec<Domain>,
    pub codes: Vec<CodeSel>,
    pub value: Option<ValueTest>,
    pub attrs: Vec<(Attr, AttrTest)>,
    /// Inclusive day range the resource's period must overlap.
    pub time: Option<(i32, i32)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Gender {
    Female,
    Male,
    Other,
    Unknown,
}

impl Gender {
    pub fn from_fhir(s: &str) -> Option<Gender> {
        Some(match s {
            "female" => Gender::Female,
            "male" => Gender::Male,
            "other" => Gender::Other,
            "unknown" => Gender::Unknown,
            _ => return None,
        })
    }

    /// A selected concept of the gender criterion (MII: LOINC answer codes F/M, or FHIR codes).
    fn from_concept(code: &str) -> Option<Gender> {
        Some(match code.to_ascii_lowercase().as_str() {
            "f" | "female" | "la3-6" | "w" => Gender::Female,
            "m" | "male" | "la2-8" => Gender::Male,
            "d" | "other" | "diverse" | "x" | "la46-8" => Gender::Other,
            "u" | "unknown" | "la4489-6" => Gender::Unknown,
            _ => return None,
        })
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Crit {
    Gender(Vec<Gender>),
    /// Age on the day of the query.
    Age {
        test: NumTest,
        unit: AgeUnit,
    },
    Facts(FactCrit),
}

/// A compiled query: AND over `include` groups (each an OR), minus the patients meeting any
/// `exclude` group (each an AND).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub include: Vec<Vec<Crit>>,
    pub exclude: Vec<Vec<Crit>>,
}

/// Compiles with the default limits.
pub fn compile(ccdl: &Ccdl) -> Result<Plan, QueryError> {
    compile_with(ccdl, Limits::default())
}

pub fn compile_with(ccdl: &Ccdl, limits: Limits) -> Result<Plan, QueryError> {
    let mut count = 0usize;
    let root = Ptr::root();
    let mut groups = |list: &[Vec<Criterion>], key: &str| -> Result<Vec<Vec<Crit>>, QueryError> {
        let p = root.key(key);
        list.iter()
            .enumerate()
            .map(|(i, g)| {
                g.iter()
                    .enumerate()
                    .map(|(j, c)| crit(c, &p.index(i).index(j), limits, &mut count))
                    .collect()
            })
            .collect()
    };
    let include = groups(&ccdl.inclusion_criteria, "inclusionCriteria")?;
    let exclude = groups(&ccdl.exclusion_criteria, "exclusionCriteria")?;
    Ok(Plan { include, exclude })
}

fn invalid(p: &Ptr, message: impl Into<String>) -> QueryError {
    QueryError::Invalid {
        pointer: p.as_str().to_owned(),
        message: message.into(),
    }
}

fn count_one(p: &Ptr, limits: Limits, count: &mut usize) -> Result<(), QueryError> {
    *count += 1;
    if *count > limits.criteria {
        return Err(QueryError::TooLarge {
            pointer: p.as_str().to_owned(),
            message: format!("more than {} criteria", limits.criteria),
        });
    }
    Ok(())
}

fn check_codes(p: &Ptr, n: usize, limits: Limits) -> Result<(), QueryError> {
    if n > limits.codes_per_criterion {
        return Err(QueryError::TooLarge {
            pointer: p.as_str().to_owned(),
            message: format!("more than {} codes", limits.codes_per_criterion),
        });
    }
    Ok(())
}

fn crit(c: &Criterion, p: &Ptr, limits: Limits, count: &mut usize) -> Result<Crit, QueryError> {
    count_one(p, limits, count)?;
    check_codes(&p.key("termCodes"), c.term_codes.len(), limits)?;
    match context(&c.context.code) {
        None => Err(invalid(
            &p.key("context").key("code"),
            format!("unknown context \"{}\"", c.context.code),
        )),
        Some(Context::Patient) => {
            let all_gender = c
                .term_codes
                .iter()
                .all(|t| GENDER_CODES.contains(&t.code.as_str()));
            let all_age = c.term_codes.iter().all(|t| t.code == AGE_CODE);
            if all_gender || all_age {
                if c.time_restriction.is_some() {
                    return Err(invalid(
                        &p.key("timeRestriction"),
                        "a time restriction does not apply to gender or age",
                    ));
                }
                if !c.attribute_filters.is_empty() {
                    return Err(invalid(
                        &p.key("attributeFilters"),
                        "gender and age have no attributes",
                    ));
                }
            }
            if all_gender {
                gender(c, p)
            } else if all_age {
                age(c, p)
            } else {
                // Other codes in the Patient context are person-module observations
                // (vital status, body measurements): facts of the Observation domain.
                facts(c, p, vec![Domain::Observation], true, limits, count).map(Crit::Facts)
            }
        }
        Some(Context::Facts(domains)) => facts(c, p, domains, true, limits, count).map(Crit::Facts),
    }
}

fn gender(c: &Criterion, p: &Ptr) -> Result<Crit, QueryError> {
    let vp = p.key("valueFilter");
    match &c.value_filter {
        Some(Filter::Concept { selected_concepts }) => {
            let mut out = Vec::new();
            for (i, t) in selected_concepts.iter().enumerate() {
                let g = Gender::from_concept(&t.code).ok_or_else(|| {
                    invalid(
                        &vp.key("selectedConcepts").index(i).key("code"),
                        format!("unknown gender \"{}\"", t.code),
                    )
                })?;
                if !out.contains(&g) {
                    out.push(g);
                }
            }
            Ok(Crit::Gender(out))
        }
        _ => Err(invalid(&vp, "gender needs a concept value filter")),
    }
}

fn age(c: &Criterion, p: &Ptr) -> Result<Crit, QueryError> {
    let vp = p.key("valueFilter");
    let (test, unit) = match &c.value_filter {
        Some(Filter::Comparator {
            comparator,
            value,
            unit,
        }) => (NumTest::Cmp(*comparator, *value), unit),
        Some(Filter::Range {
            min_value,
            max_value,
            unit,
        }) => (NumTest::Range(*min_value, *max_value), unit),
        _ => return Err(invalid(&vp, "age needs a quantity value filter")),
    };
    let unit = match unit {
        None => AgeUnit::Years,
        Some(u) => units::age_unit(&u.code).ok_or_else(|| {
            invalid(
                &vp.key("unit").key("code"),
                format!("unknown age unit \"{}\"", u.code),
            )
        })?,
    };
    Ok(Crit::Age { test, unit })
}

fn quantity_unit(u: &Option<Unit>, p: &Ptr) -> Result<Option<String>, QueryError> {
    match u {
        None => Ok(None),
        Some(u) if units::is_known(&u.code) => Ok(Some(u.code.clone())),
        Some(u) => Err(invalid(
            &p.key("unit").key("code"),
            format!("unknown unit \"{}\"", u.code),
        )),
    }
}

fn concepts(list: &[TermCode], p: &Ptr, limits: Limits) -> Result<Vec<ConceptSel>, QueryError> {
    check_codes(&p.key("selectedConcepts"), list.len(), limits)?;
    Ok(list
        .iter()
        .map(|t| ConceptSel {
            system: normalize_system(&t.system).to_owned(),
            code: t.code.clone(),
        })
        .collect())
}

fn facts(
    c: &Criterion,
    p: &Ptr,
    domains: Vec<Domain>,
    top: bool,
    limits: Limits,
    count: &mut usize,
) -> Result<FactCrit, QueryError> {
    let codes = c.term_codes.iter().map(CodeSel::from_term).collect();
    let vp = p.key("valueFilter");
    let value = match &c.value_filter {
        None => None,
        Some(Filter::Concept { selected_concepts }) => Some(ValueTest::Concept(concepts(
            selected_concepts,
            &vp,
            limits,
        )?)),
        Some(Filter::Comparator {
            comparator,
            value,
            unit,
        }) => Some(ValueTest::Quantity {
            test: NumTest::Cmp(*comparator, *value),
            unit: quantity_unit(unit, &vp)?,
        }),
        Some(Filter::Range {
            min_value,
            max_value,
            unit,
        }) => Some(ValueTest::Quantity {
            test: NumTest::Range(*min_value, *max_value),
            unit: quantity_unit(unit, &vp)?,
        }),
        Some(Filter::Reference { .. }) => {
            return Err(invalid(
                &vp.key("type"),
                "a value filter cannot be a reference",
            ));
        }
    };
    if value.is_some() && !domains.contains(&Domain::Observation) {
        return Err(invalid(&vp, "only observations have values"));
    }
    let mut attrs = Vec::new();
    for (i, f) in c.attribute_filters.iter().enumerate() {
        let ap = p.key("attributeFilters").index(i);
        let attr = domains
            .iter()
            .find_map(|d| Attr::resolve(*d, &f.attribute_code.code))
            .ok_or_else(|| {
                invalid(
                    &ap.key("attributeCode").key("code"),
                    format!(
                        "unknown attribute \"{}\" for this context",
                        f.attribute_code.code
                    ),
                )
            })?;
        let test = match (&f.filter, attr.kind()) {
            (Filter::Concept { selected_concepts }, AttrKind::Concept) => {
                AttrTest::Concept(concepts(selected_concepts, &ap, limits)?)
            }
            (
                Filter::Comparator {
                    comparator,
                    value,
                    unit,
                },
                AttrKind::Quantity,
            ) => AttrTest::Quantity {
                test: NumTest::Cmp(*comparator, *value),
                unit: quantity_unit(unit, &ap)?,
            },
            (
                Filter::Range {
                    min_value,
                    max_value,
                    unit,
                },
                AttrKind::Quantity,
            ) => AttrTest::Quantity {
                test: NumTest::Range(*min_value, *max_value),
                unit: quantity_unit(unit, &ap)?,
            },
            (Filter::Reference { criteria }, AttrKind::Reference) if top => {
                let cp = ap.key("criteria");
                let mut nested = Vec::new();
                for (j, n) in criteria.iter().enumerate() {
                    let np = cp.index(j);
                    count_one(&np, limits, count)?;
                    check_codes(&np.key("termCodes"), n.term_codes.len(), limits)?;
                    match context(&n.context.code) {
                        Some(Context::Facts(d)) if d.contains(&Domain::Condition) => {
                            nested.push(facts(n, &np, d, false, limits, count)?);
                        }
                        _ => {
                            return Err(invalid(
                                &np.key("context").key("code"),
                                "a reference filter links to a Diagnose criterion",
                            ));
                        }
                    }
                }
                AttrTest::Reference(nested)
            }
            _ => {
                return Err(invalid(
                    &ap.key("type"),
                    "this filter type does not fit the attribute",
                ));
            }
        };
        attrs.push((attr, test));
    }
    let time = match &c.time_restriction {
        None => None,
        Some(t) => {
            let tp = p.key("timeRestriction");
            let after = match &t.after_date {
                None => i32::MIN,
                Some(d) => {
                    parse_date(d).ok_or_else(|| invalid(&tp.key("afterDate"), "not a date"))?
                }
            };
            let before = match &t.before_date {
                None => i32::MAX,
                Some(d) => {
                    parse_date(d).ok_or_else(|| invalid(&tp.key("beforeDate"), "not a date"))?
                }
            };
            if after > before {
                return Err(invalid(&tp, "afterDate is after beforeDate"));
            }
            Some((after, before))
        }
    };
    Ok(FactCrit {
        domains,
        codes,
        value,
        attrs,
        time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../data/ccdl/ccdl-all-properties.json");

    #[test]
    fn example_compiles() {
        let plan = compile(&Ccdl::from_json(EXAMPLE).unwrap()).unwrap();
        assert_eq!(plan.include.len(), 4);
        assert!(matches!(plan.include[0][0], Crit::Gender(ref g) if g.len() == 2));
        assert!(matches!(
            plan.include[1][0],
            Crit::Age {
                unit: AgeUnit::Years,
                ..
            }
        ));
        let Crit::Facts(f) = &plan.include[2][1] else {
            panic!()
        };
        assert_eq!(f.codes[0].system, ICD10GM, "old ICD URI normalised");
        assert!(f.codes[0].prefix);
        assert!(f.time.is_some());
        let Crit::Facts(f) = &plan.include[3][0] else {
            panic!()
        };
        assert_eq!(f.domains, vec![Domain::Specimen]);
        assert!(
            matches!(f.attrs[0], (Attr::Diagnosis, AttrTest::Reference(ref n)) if n.len() == 2)
        );
    }

    #[test]
    fn semantic_errors_point_at_the_part() {
        let mut v: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
        v["inclusionCriteria"][2][0]["context"]["code"] = "Wetter".into();
        let e = compile(&Ccdl::from_value(&v).unwrap()).unwrap_err();
        assert_eq!(e.pointer(), Some("/inclusionCriteria/2/0/context/code"));

        let mut v: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
        v["exclusionCriteria"][2][1]["valueFilter"]["unit"]["code"] = "furlong".into();
        let e = compile(&Ccdl::from_value(&v).unwrap()).unwrap_err();
        assert_eq!(
            e.pointer(),
            Some("/exclusionCriteria/2/1/valueFilter/unit/code")
        );

        let v: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
        let e = compile_with(
            &Ccdl::from_value(&v).unwrap(),
            Limits {
                criteria: 3,
                codes_per_criterion: 10,
            },
        )
        .unwrap_err();
        assert!(matches!(e, QueryError::TooLarge { .. }));
    }

    #[test]
    fn hierarchy_by_code_structure() {
        let t = TermCode::new(ICD10GM_OLD, "E11");
        let s = CodeSel::from_term(&t);
        assert!(s.matches(ICD10GM, "E11.9"));
        assert!(s.matches(ICD10GM_OLD, "E11"));
        assert!(!s.matches(ICD10GM, "E10.9"));
        let s = CodeSel::from_term(&TermCode::new(OPS, "5-01"));
        assert!(s.matches(OPS, "5-016.0"));
        let s = CodeSel::from_term(&TermCode::new(LOINC, "4548-4"));
        assert!(!s.matches(LOINC, "4548-40"));
    }
}
