//! MII Broad Consent and objection evaluation: which of a patient's data research may use, per
//! legal basis and purpose, and when.
//!
//! The Broad Consent part implements the algorithm of the MII extraction tool TORCH
//! (`docs/implementation/consent.md`), see [`evaluate`]:
//!
//! 1. Only `active` Consents count; only their nested provisions (`Consent.provision.provision`)
//!    with a policy code the [`ConsentPolicy`] names (default `.8` gate, `.6` data window, `.45`
//!    retrospective modifier) and a day-precise period.
//! 2. The start of a data-code provision (permit or deny) that lies inside an encounter
//!    (`encounter.start < provision.start <= encounter.end`) moves to the earliest such
//!    encounter's start: a stay that began before the signature is usable as a whole.
//! 3. Within one Consent, a `.6` permit that overlaps a `.45` permit starts at 1900-01-01
//!    (retrospective use); that Consent's `.45` denies are subtracted from it, and `.6` denies
//!    do not reduce it.
//! 4. Only Consents that permit every gate and every data code contribute permits; the deny
//!    periods of *any* active Consent (a revocation-only document too) are subtracted per code.
//! 5. The gate (`.8`) must hold on the evaluation day; the data window is the intersection of the
//!    data codes' (`.6`) periods.
//!
//! Objections (German law: full objection and objection per purpose) are Consents whose category
//! carries a gICS template type, `CONSENT-OPT-OUT` or `WITHDRAWAL`: from their provision period's
//! start (else their `dateTime`) until its end, for the purposes in `provision.purpose` (none:
//! every purpose). An objection excludes the patient from research under *every* legal basis
//! (consent, opt-out and statutory). Withdrawing an objection makes its Consent `inactive`.
//!
//! Where TORCH would silently drop something that restricts use (a deny or an objection with a
//! missing or partial date), this crate reads it as open-ended instead: unreadable restrictions
//! fail closed, unreadable permits fail open to nothing.

mod data_time;
mod day;
mod objection;
mod period;

pub use data_time::{DataTime, data_time};
pub use day::Day;
pub use objection::{
    ObjectionKind, ObjectionRecord, ObjectionStatus, WithdrawError, objection_consent,
    objection_history, objection_status, withdraw_objection,
};
pub use period::{Period, Periods};

use serde_json::Value;

/// Code systems and codes of the MII Broad Consent and the gICS templates.
pub mod codes {
    /// The system of the MII Broad Consent policy codes.
    pub const POLICY_SYSTEM: &str = "urn:oid:2.16.840.1.113883.3.1937.777.24.5.3";
    /// `.6` MDAT erheben: the data window.
    pub const MDAT_COLLECT: &str = "2.16.840.1.113883.3.1937.777.24.5.3.6";
    /// `.7` MDAT speichern, verarbeiten.
    pub const MDAT_STORE: &str = "2.16.840.1.113883.3.1937.777.24.5.3.7";
    /// `.8` MDAT wissenschaftlich nutzen: the validity gate.
    pub const MDAT_SCIENTIFIC_USE: &str = "2.16.840.1.113883.3.1937.777.24.5.3.8";
    /// `.45` MDAT retrospektiv speichern, verarbeiten: extends `.6` back in time.
    pub const MDAT_RETRO_STORE: &str = "2.16.840.1.113883.3.1937.777.24.5.3.45";
    /// `.46` MDAT retrospektiv wissenschaftlich nutzen (a retro modifier in TORCH's config).
    pub const MDAT_RETRO_USE: &str = "2.16.840.1.113883.3.1937.777.24.5.3.46";
    /// gICS template types in `Consent.category`.
    pub const TEMPLATE_TYPE_SYSTEM: &str =
        "http://fhir.de/ConsentManagement/CodeSystem/TemplateType";
    pub const TEMPLATE_OPT_OUT: &str = "CONSENT-OPT-OUT";
    pub const TEMPLATE_WITHDRAWAL: &str = "WITHDRAWAL";
    /// medicus research purposes, in an objection's `provision.purpose` and a project's purpose.
    pub const PURPOSE_SYSTEM: &str =
        "https://medicus-health.github.io/fhir/CodeSystem/research-purpose";
}

/// Which policy codes play which role (TORCH's `consent-code-config.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentPolicy {
    /// Today (the evaluation day) must lie in each one's permitted period.
    pub gate_codes: Vec<String>,
    /// Their permitted periods, intersected, are the data window.
    pub data_codes: Vec<String>,
    /// Retrospective modifiers of the data codes (applied only when listed here: TORCH applies
    /// them only when the cohort definition requests them).
    pub retro_codes: Vec<String>,
}

impl Default for ConsentPolicy {
    fn default() -> Self {
        ConsentPolicy {
            gate_codes: vec![codes::MDAT_SCIENTIFIC_USE.into()],
            data_codes: vec![codes::MDAT_COLLECT.into()],
            retro_codes: vec![codes::MDAT_RETRO_STORE.into()],
        }
    }
}

/// Where a retro-extended data period starts (as in TORCH).
pub fn retrospective_start() -> Day {
    Day(-25_567) // 1900-01-01
}

/// On what a research project relies to use a patient's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LegalBasis {
    /// MII Broad Consent: the TORCH evaluation decides.
    Consent,
    /// Use unless the patient objected (e.g. §363 SGB V).
    OptOut,
    /// A statutory basis; objections still exclude the patient.
    Statutory,
}

/// Why a patient's data may not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Exclusion {
    /// No active Consent permits every gate and data code (or a deny removed all of it).
    NoConsent,
    /// The gate does not hold on the evaluation day (not yet valid, expired or revoked).
    GateClosed,
    /// The patient objected to research, fully or for this purpose.
    Objected,
}

/// A patient's consent situation, compiled once from their Consents and encounters; cheap to
/// ask for any day, purpose and legal basis (the cohort engine keeps one per patient).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PatientConsent {
    /// Days on which every gate code is permitted (empty without a qualifying consent).
    pub gate: Periods,
    /// The Broad Consent data window (empty without a qualifying consent).
    pub window: Periods,
    /// Active objections (withdrawn ones are `inactive` and not here).
    pub objections: Vec<Objection>,
}

/// An active objection as evaluation uses it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Objection {
    pub kind: ObjectionKind,
    /// Purpose codes objected to; empty for a full objection.
    pub purposes: Vec<String>,
    pub period: Period,
}

impl Objection {
    /// Whether this objection excludes research for `purpose` on `at`.
    pub fn applies(&self, purpose: &str, at: Day) -> bool {
        self.period.contains(at)
            && (self.purposes.is_empty() || self.purposes.iter().any(|p| p == purpose))
    }
}

impl PatientConsent {
    /// The days of data research for `purpose` may use on day `at`, or why none.
    pub fn decide(&self, basis: LegalBasis, purpose: &str, at: Day) -> Result<&Periods, Exclusion> {
        if self.objections.iter().any(|o| o.applies(purpose, at)) {
            return Err(Exclusion::Objected);
        }
        match basis {
            LegalBasis::Consent => {
                if self.window.is_empty() {
                    Err(Exclusion::NoConsent)
                } else if !self.gate.contains(at) {
                    Err(Exclusion::GateClosed)
                } else {
                    Ok(&self.window)
                }
            }
            LegalBasis::OptOut | LegalBasis::Statutory => Ok(ALL_DAYS.get_or_init(Periods::all)),
        }
    }

    /// Whether research for `purpose` under `basis` may include this patient on `at` (the
    /// cohort mask).
    pub fn permits_research(&self, basis: LegalBasis, purpose: &str, at: Day) -> bool {
        self.decide(basis, purpose, at).is_ok()
    }

    /// The permitted data window (empty when the patient is excluded).
    pub fn data_window(&self, basis: LegalBasis, purpose: &str, at: Day) -> Periods {
        self.decide(basis, purpose, at).cloned().unwrap_or_default()
    }

    /// Whether a resource dated `data_day` may be used (TORCH's per-resource enforcement).
    pub fn permits_data(&self, basis: LegalBasis, purpose: &str, at: Day, data_day: Day) -> bool {
        self.decide(basis, purpose, at)
            .is_ok_and(|w| w.contains(data_day))
    }
}

static ALL_DAYS: std::sync::OnceLock<Periods> = std::sync::OnceLock::new();

/// One nested provision TORCH looks at.
#[derive(Debug, Clone, Copy)]
struct Provision {
    /// Index into the policy's codes (gate codes, then data codes, then retro codes).
    code: usize,
    permit: bool,
    period: Period,
}

/// Compiles a patient's consent situation from their Consent resources and encounters (both as
/// stored; resources of other types or patients must be filtered out by the caller).
/// Unusable resources and provisions are skipped (see the crate docs for which way).
pub fn evaluate(
    policy: &ConsentPolicy,
    consents: &[Value],
    encounters: &[Value],
) -> PatientConsent {
    let all_codes: Vec<&str> = policy
        .gate_codes
        .iter()
        .chain(&policy.data_codes)
        .chain(&policy.retro_codes)
        .map(String::as_str)
        .collect();
    let n_gate = policy.gate_codes.len();
    let n_data = policy.data_codes.len();
    let is_gate = |c: usize| c < n_gate;
    let is_data = |c: usize| (n_gate..n_gate + n_data).contains(&c);
    let is_retro = |c: usize| c >= n_gate + n_data;

    let encounter_periods: Vec<Period> = encounters.iter().filter_map(encounter_period).collect();

    let mut objections = Vec::new();
    // Per code: the qualifying permits, the retro-extended data periods, every deny.
    let mut permits: Vec<Vec<Period>> = vec![Vec::new(); all_codes.len()];
    let mut retro_extended: Vec<Vec<Period>> = vec![Vec::new(); all_codes.len()];
    let mut denies: Vec<Vec<Period>> = vec![Vec::new(); all_codes.len()];

    for consent in consents {
        if consent.get("resourceType").and_then(Value::as_str) != Some("Consent")
            || consent.get("status").and_then(Value::as_str) != Some("active")
        {
            continue;
        }
        if let Some(o) = objection::active_objection(consent) {
            objections.push(o);
        }
        let mut provisions = nested_provisions(consent, &all_codes);
        // Step 5: encounter adjustment of non-gate codes (permits and denies alike, as TORCH).
        for p in &mut provisions {
            if is_gate(p.code) {
                continue;
            }
            let earliest = encounter_periods
                .iter()
                .filter(|e| e.start < p.period.start && p.period.start <= e.end)
                .map(|e| e.start)
                .min();
            if let Some(start) = earliest {
                p.period.start = start;
            }
        }
        for p in provisions.iter().filter(|p| !p.permit) {
            denies[p.code].push(p.period);
        }
        // Step 7: only a Consent permitting every gate and data code contributes permits.
        let complete =
            (0..n_gate + n_data).all(|c| provisions.iter().any(|p| p.permit && p.code == c));
        if !complete {
            continue;
        }
        // Step 6: retrospective modifiers, within this Consent only.
        let retro_permits: Vec<Period> = provisions
            .iter()
            .filter(|p| p.permit && is_retro(p.code))
            .map(|p| p.period)
            .collect();
        let retro_denies: Vec<Period> = provisions
            .iter()
            .filter(|p| !p.permit && is_retro(p.code))
            .map(|p| p.period)
            .collect();
        for p in provisions.iter().filter(|p| p.permit && !is_retro(p.code)) {
            if is_data(p.code) && retro_permits.iter().any(|r| r.overlaps(&p.period)) {
                let extended = Periods::of([Period {
                    start: retrospective_start().min(p.period.start),
                    end: p.period.end,
                }]);
                let extended = retro_denies.iter().fold(extended, |acc, d| acc.subtract(d));
                retro_extended[p.code].extend_from_slice(extended.periods());
            } else {
                permits[p.code].push(p.period);
            }
        }
    }

    let merged = |c: usize| -> Periods {
        let normal = Periods::of(permits[c].iter().copied());
        let normal = denies[c].iter().fold(normal, |acc, d| acc.subtract(d));
        // Retro-extended periods are immune to the data code's own denies.
        normal.union(&Periods::of(retro_extended[c].iter().copied()))
    };
    let per_code: Vec<Periods> = (0..n_gate + n_data).map(merged).collect();
    // A required code left empty excludes the patient (TORCH returns no periods at all).
    if per_code.is_empty() || per_code.iter().any(Periods::is_empty) {
        return PatientConsent {
            gate: Periods::empty(),
            window: Periods::empty(),
            objections,
        };
    }
    let intersect_all = |range: std::ops::Range<usize>| -> Periods {
        range.fold(Periods::all(), |acc, c| acc.intersect(&per_code[c]))
    };
    let gate = intersect_all(0..n_gate);
    let window = intersect_all(n_gate..n_gate + n_data);
    PatientConsent {
        gate,
        window,
        objections,
    }
}

/// `Consent.provision.provision[]` with one of `codes`, as `(code index, permit, period)`; a
/// provision carrying several codes counts once per code.
fn nested_provisions(consent: &Value, codes: &[&str]) -> Vec<Provision> {
    let Some(list) = consent
        .pointer("/provision/provision")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(codes.len());
    for prov in list {
        let Some(obj) = prov.as_object() else {
            continue;
        };
        // One pass over the members: cheaper than a lookup per member.
        let (mut kind, mut period, mut code) = (None, None, None);
        for (k, v) in obj {
            match k.as_str() {
                "type" => kind = v.as_str(),
                "period" => period = Some(v),
                "code" => code = v.as_array(),
                _ => {}
            }
        }
        let permit = match kind {
            Some("permit") => true,
            Some("deny") => false,
            _ => continue,
        };
        // The codes first: most provisions carry codes the policy does not ask about.
        let matched = code
            .into_iter()
            .flatten()
            .filter_map(|cc| cc.get("coding").and_then(Value::as_array))
            .flatten()
            .filter(|coding| {
                coding
                    .get("system")
                    .and_then(Value::as_str)
                    .is_none_or(|s| s == codes::POLICY_SYSTEM)
            })
            .filter_map(|coding| coding.get("code").and_then(Value::as_str))
            .filter_map(|c| codes.iter().position(|x| *x == c));
        let mut parsed: Option<Option<Period>> = None;
        for i in matched {
            let period = *parsed.get_or_insert_with(|| {
                if permit {
                    permit_period(period)
                } else {
                    Some(deny_period(period))
                }
            });
            if let Some(period) = period {
                out.push(Provision {
                    code: i,
                    permit,
                    period,
                });
            }
        }
    }
    out
}

/// A permit needs a start and an end, both day-precise (TORCH skips it otherwise).
fn permit_period(period: Option<&Value>) -> Option<Period> {
    let p = period?;
    let start = Day::parse_fhir(p.get("start")?.as_str()?)?;
    let end = Day::parse_fhir(p.get("end")?.as_str()?)?;
    Period::new(start, end)
}

/// A deny restricts: a missing or unreadable bound is open on that side, and a reversed period
/// denies its whole span rather than nothing.
fn deny_period(period: Option<&Value>) -> Period {
    let bound = |key: &str| {
        period
            .and_then(|p| p.get(key))
            .and_then(Value::as_str)
            .and_then(Day::parse_fhir)
    };
    let start = bound("start").unwrap_or(Day::MIN);
    let end = bound("end").unwrap_or(Day::MAX);
    Period {
        start: start.min(end),
        end: end.max(start),
    }
}

/// An encounter's period when it has a day-precise start and end (as TORCH requires).
fn encounter_period(encounter: &Value) -> Option<Period> {
    permit_period(encounter.get("period"))
}

#[cfg(test)]
mod tests;
