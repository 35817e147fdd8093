//! The feasibility service without HTTP: what `POST /research/feasibility` and the term
//! catalogue do, so the server's handlers only map requests and statuses. A query is checked
//! against the rate limit of its user, parsed (CCDL JSON or the text form) with the size limits,
//! counted by the engine (consent mask inside) and obfuscated.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::engine::CohortEngine;
use crate::error::QueryError;
use crate::obfuscate::{Obfuscated, ObfuscationConfig, Obfuscator};
use crate::plan::Limits;

/// Settings of the service (MII defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServiceConfig {
    pub obfuscation: ObfuscationConfig,
    pub limits: Limits,
    /// Queries per user and window.
    pub rate_limit: u32,
    pub rate_window: Duration,
    /// Largest request body accepted.
    pub max_body: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            obfuscation: ObfuscationConfig::default(),
            limits: Limits::default(),
            rate_limit: 999,
            rate_window: Duration::from_secs(3600),
            max_body: 256 * 1024,
        }
    }
}

/// Why a feasibility request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// 400, with the JSON pointer of the failing part when there is one.
    #[error("{0}")]
    BadQuery(#[from] QueryError),
    /// 413.
    #[error("the query is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// 429 with `Retry-After`.
    #[error("rate limit reached; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
}

/// The answer to a feasibility query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeasibilityAnswer {
    #[serde(flatten)]
    pub result: Obfuscated,
}

/// One entry of the term catalogue: a queryable concept present in the data (no counts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Term {
    pub context: &'static str,
    pub system: String,
    pub code: String,
}

/// A sliding window of request times per user.
#[derive(Default)]
struct RateLimiter {
    seen: HashMap<String, Vec<Instant>>,
}

impl RateLimiter {
    fn check(&mut self, user: &str, limit: u32, window: Duration, now: Instant) -> Result<(), u64> {
        let times = self.seen.entry(user.to_owned()).or_default();
        times.retain(|t| now.duration_since(*t) < window);
        if times.len() >= limit as usize {
            let oldest = times.first().copied().unwrap_or(now);
            let wait = window.saturating_sub(now.duration_since(oldest));
            return Err(wait.as_secs().max(1));
        }
        times.push(now);
        Ok(())
    }
}

/// The feasibility service of one node.
pub struct FeasibilityService {
    engine: std::sync::Arc<CohortEngine>,
    obfuscator: Obfuscator,
    config: ServiceConfig,
    limiter: Mutex<RateLimiter>,
}

impl FeasibilityService {
    pub fn new(engine: std::sync::Arc<CohortEngine>, config: ServiceConfig) -> Self {
        FeasibilityService {
            engine,
            obfuscator: Obfuscator::new(config.obfuscation),
            config,
            limiter: Mutex::new(RateLimiter::default()),
        }
    }

    pub fn engine(&self) -> &CohortEngine {
        &self.engine
    }

    /// Answers `body` (CCDL JSON, or the text form) for `user` in `tenant` on `today`. The
    /// rate limit counts every request, also refused ones, so probing with bad queries costs.
    pub fn feasibility(
        &self,
        tenant: &str,
        user: &str,
        body: &str,
        today: i32,
    ) -> Result<FeasibilityAnswer, ServiceError> {
        {
            let mut l = self.limiter.lock().unwrap_or_else(|e| e.into_inner());
            l.check(
                user,
                self.config.rate_limit,
                self.config.rate_window,
                Instant::now(),
            )
            .map_err(|retry_after_secs| ServiceError::RateLimited { retry_after_secs })?;
        }
        if body.len() > self.config.max_body {
            return Err(ServiceError::BodyTooLarge(self.config.max_body));
        }
        let plan = crate::parse_query(body, self.config.limits)?;
        let exact = self.engine.count(tenant, &plan, today);
        Ok(FeasibilityAnswer {
            result: self.obfuscator.obfuscate(tenant, exact),
        })
    }

    /// The queryable concepts present in `tenant`, without counts.
    pub fn catalogue(&self, tenant: &str) -> Vec<Term> {
        self.engine
            .catalogue(tenant)
            .into_iter()
            .map(|(d, system, code)| Term {
                context: context_name(d),
                system,
                code,
            })
            .collect()
    }
}

/// The CCDL context (MII ontology) a domain is queried under.
pub fn context_name(d: crate::plan::Domain) -> &'static str {
    use crate::plan::Domain::*;
    match d {
        Condition => "Diagnose",
        Procedure => "Prozedur",
        Observation => "Laboruntersuchung",
        MedicationStatement | MedicationRequest => "Medikamentenverordnung",
        MedicationAdministration => "Medikamentenverabreichung",
        Consent => "Einwilligung",
        Specimen => "Bioprobe",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn rate_limit_answers_retry_after_and_bad_queries_carry_pointers() {
        let engine = Arc::new(CohortEngine::default());
        let svc = FeasibilityService::new(
            engine,
            ServiceConfig {
                rate_limit: 3,
                ..ServiceConfig::default()
            },
        );
        let r = svc.feasibility("t", "alice", "icd:E11", 20_000).unwrap();
        assert_eq!(r.result, Obfuscated::TooSmall);
        let e = svc
            .feasibility(
                "t",
                "alice",
                r#"{"version":"2","inclusionCriteria":[[{"context":{"code":"X","system":"s","display":"d"},"termCodes":[{"code":"a","system":"b","display":"c"}]}]]}"#,
                20_000,
            )
            .unwrap_err();
        match e {
            ServiceError::BadQuery(q) => {
                assert_eq!(q.pointer(), Some("/inclusionCriteria/0/0/context/code"))
            }
            other => panic!("{other:?}"),
        }
        assert!(svc.feasibility("t", "alice", "icd:", 20_000).is_err());
        match svc.feasibility("t", "alice", "icd:E11", 20_000) {
            Err(ServiceError::RateLimited { retry_after_secs }) => {
                assert!(retry_after_secs > 3000)
            }
            other => panic!("{other:?}"),
        }
        // Another user has their own budget.
        assert!(svc.feasibility("t", "bob", "icd:E11", 20_000).is_ok());
    }
}
