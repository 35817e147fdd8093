//! Four-eyes de-pseudonymisation: a request with a recorded justification that two distinct
//! trust-centre users other than the requester must approve before it runs, once.
//!
//! States: `pending` → `approved` (the required number of distinct approvals) → `executed`;
//! `pending` → `rejected` (any approver may refuse); `pending`/`approved` → `expired` once its
//! deadline passed. Every other move is refused. The caller (the server) checks that requester
//! and approvers hold the trust-centre role and writes each step to the audit trail.

use medicus_store::platform::{DocExpect, PlatformRecords};
use serde::{Deserialize, Serialize};

use crate::docs;
use crate::error::{ResearchError, Result};
use crate::keys::ProjectKeys;
use crate::pseudonym::{Identity, resolve};

/// Platform-record namespace of requests, keyed by request id.
pub const NS_REQUESTS: &str = "research-depseudo";

/// The least number of approvals any request needs (four eyes).
pub const MIN_APPROVALS: usize = 2;
/// A justification must say something.
pub const MIN_JUSTIFICATION_CHARS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestState {
    Pending,
    Approved,
    Rejected,
    Executed,
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub by: String,
    pub at_s: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepseudoRequest {
    pub id: String,
    pub project: String,
    pub pseudonyms: Vec<String>,
    pub justification: String,
    pub requested_by: String,
    pub requested_at_s: i64,
    /// After this (seconds since the epoch) the request can no longer be approved or run.
    pub expires_at_s: i64,
    pub required_approvals: usize,
    pub state: RequestState,
    pub approvals: Vec<Approval>,
    #[serde(default)]
    pub rejected_by: Option<Approval>,
    #[serde(default)]
    pub rejection_reason: Option<String>,
    #[serde(default)]
    pub executed_by: Option<Approval>,
}

impl DepseudoRequest {
    /// A new pending request; `required_approvals` below [`MIN_APPROVALS`] is raised to it.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: &str,
        project: &str,
        pseudonyms: Vec<String>,
        justification: &str,
        requested_by: &str,
        now_s: i64,
        ttl_s: i64,
        required_approvals: usize,
    ) -> Result<DepseudoRequest> {
        if pseudonyms.is_empty() {
            return Err(ResearchError::Invalid(
                "no pseudonyms to de-pseudonymise".into(),
            ));
        }
        if justification.trim().chars().count() < MIN_JUSTIFICATION_CHARS {
            return Err(ResearchError::Invalid(format!(
                "a justification of at least {MIN_JUSTIFICATION_CHARS} characters is required"
            )));
        }
        if requested_by.is_empty() || id.is_empty() || project.is_empty() {
            return Err(ResearchError::Invalid(
                "request id, project and requester are required".into(),
            ));
        }
        Ok(DepseudoRequest {
            id: id.into(),
            project: project.into(),
            pseudonyms,
            justification: justification.trim().into(),
            requested_by: requested_by.into(),
            requested_at_s: now_s,
            expires_at_s: now_s.saturating_add(ttl_s.max(0)),
            required_approvals: required_approvals.max(MIN_APPROVALS),
            state: RequestState::Pending,
            approvals: Vec::new(),
            rejected_by: None,
            rejection_reason: None,
            executed_by: None,
        })
    }

    /// Moves a request past its deadline to `expired`; true if it did.
    fn lapse(&mut self, now_s: i64) -> bool {
        if matches!(self.state, RequestState::Pending | RequestState::Approved)
            && now_s > self.expires_at_s
        {
            self.state = RequestState::Expired;
            return true;
        }
        false
    }

    fn refuse(&self, what: &str) -> ResearchError {
        ResearchError::IllegalTransition(
            format!(
                "cannot {what} a {:?} de-pseudonymisation request",
                self.state
            )
            .to_lowercase(),
        )
    }

    pub fn approve(&mut self, approver: &str, now_s: i64) -> Result<()> {
        if self.lapse(now_s) || self.state != RequestState::Pending {
            return Err(self.refuse("approve"));
        }
        if approver == self.requested_by {
            return Err(ResearchError::Forbidden(
                "the requester cannot approve their own request".into(),
            ));
        }
        if self.approvals.iter().any(|a| a.by == approver) {
            return Err(ResearchError::Forbidden("each approver counts once".into()));
        }
        self.approvals.push(Approval {
            by: approver.into(),
            at_s: now_s,
        });
        if self.approvals.len() >= self.required_approvals {
            self.state = RequestState::Approved;
        }
        Ok(())
    }

    pub fn reject(&mut self, by: &str, reason: &str, now_s: i64) -> Result<()> {
        if self.lapse(now_s) || self.state != RequestState::Pending {
            return Err(self.refuse("reject"));
        }
        self.state = RequestState::Rejected;
        self.rejected_by = Some(Approval {
            by: by.into(),
            at_s: now_s,
        });
        self.rejection_reason = Some(reason.into());
        Ok(())
    }

    /// Marks an approved request as run (single use).
    pub fn execute(&mut self, by: &str, now_s: i64) -> Result<()> {
        if self.lapse(now_s) || self.state != RequestState::Approved {
            return Err(self.refuse("execute"));
        }
        self.state = RequestState::Executed;
        self.executed_by = Some(Approval {
            by: by.into(),
            at_s: now_s,
        });
        Ok(())
    }
}

/// Stores a new request (refused if the id exists).
pub fn create_request(records: &dyn PlatformRecords, request: &DepseudoRequest) -> Result<()> {
    docs::put(
        records,
        NS_REQUESTS,
        &request.id,
        request,
        DocExpect::Absent,
    )
    .map(|_| ())
}

pub fn get_request(records: &dyn PlatformRecords, id: &str) -> Result<Option<DepseudoRequest>> {
    Ok(docs::get(records, NS_REQUESTS, id)?.map(|(r, _)| r))
}

/// Records an approval (compare-and-set: two approvers at once both count, once each).
pub fn approve_request(
    records: &dyn PlatformRecords,
    id: &str,
    approver: &str,
    now_s: i64,
) -> Result<DepseudoRequest> {
    docs::update(records, NS_REQUESTS, id, |r: &mut DepseudoRequest| {
        r.approve(approver, now_s)
    })
    .map(|(r, ())| r)
}

pub fn reject_request(
    records: &dyn PlatformRecords,
    id: &str,
    by: &str,
    reason: &str,
    now_s: i64,
) -> Result<DepseudoRequest> {
    docs::update(records, NS_REQUESTS, id, |r: &mut DepseudoRequest| {
        r.reject(by, reason, now_s)
    })
    .map(|(r, ())| r)
}

/// A pseudonym and the identity behind it (`None`: no mapping recorded).
pub type Resolved = (String, Option<Identity>);

/// Runs an approved request: marks it executed (so it cannot run twice, even concurrently) and
/// returns the identities, `None` for a pseudonym without a mapping. `keys` must be the
/// request's project's.
pub fn de_pseudonymize(
    records: &dyn PlatformRecords,
    keys: &ProjectKeys,
    id: &str,
    executor: &str,
    now_s: i64,
) -> Result<(DepseudoRequest, Vec<Resolved>)> {
    let (request, ()) = docs::update(records, NS_REQUESTS, id, |r: &mut DepseudoRequest| {
        if r.project != keys.project() {
            return Err(ResearchError::Forbidden(
                "the request belongs to another project".into(),
            ));
        }
        r.execute(executor, now_s)
    })?;
    let mut out = Vec::with_capacity(request.pseudonyms.len());
    for p in &request.pseudonyms {
        out.push((p.clone(), resolve(records, keys, p)?));
    }
    Ok((request, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> DepseudoRequest {
        DepseudoRequest::new(
            "r1",
            "p",
            vec!["psn-a".into()],
            "incidental finding: patient must be informed",
            "tc-alice",
            100,
            1000,
            2,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn two_distinct_approvers_then_one_execution() {
        let mut r = req();
        assert!(r.execute("tc-bob", 101).is_err(), "pending");
        r.approve("tc-bob", 102).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.state, RequestState::Pending);
        assert!(
            r.execute("tc-bob", 103).is_err(),
            "one approval is not enough"
        );
        assert!(
            matches!(r.approve("tc-bob", 104), Err(ResearchError::Forbidden(_))),
            "same approver twice"
        );
        r.approve("tc-carol", 105).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.state, RequestState::Approved);
        assert!(
            r.approve("tc-dave", 106).is_err(),
            "no approvals after the decision"
        );
        r.execute("tc-carol", 107).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.state, RequestState::Executed);
        assert!(r.execute("tc-carol", 108).is_err(), "single use");
    }

    #[test]
    fn requester_cannot_approve_and_justification_is_required() {
        let mut r = req();
        assert!(matches!(
            r.approve("tc-alice", 101),
            Err(ResearchError::Forbidden(_))
        ));
        assert!(
            DepseudoRequest::new("r", "p", vec!["x".into()], "because", "a", 0, 10, 2).is_err()
        );
        assert!(
            DepseudoRequest::new(
                "r",
                "p",
                vec![],
                "a long enough justification text",
                "a",
                0,
                10,
                2
            )
            .is_err()
        );
        // Fewer than two approvals cannot be configured.
        let r = DepseudoRequest::new(
            "r",
            "p",
            vec!["x".into()],
            "a long enough justification text",
            "a",
            0,
            10,
            1,
        );
        assert_eq!(r.map(|r| r.required_approvals).ok(), Some(2));
    }

    #[test]
    fn rejection_and_expiry_are_final() {
        let mut r = req();
        r.reject("tc-bob", "not justified", 101)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(r.approve("tc-carol", 102).is_err());
        assert!(r.execute("tc-carol", 102).is_err());
        let mut r = req();
        r.approve("tc-bob", 101).unwrap_or_else(|e| panic!("{e}"));
        r.approve("tc-carol", 102).unwrap_or_else(|e| panic!("{e}"));
        assert!(r.execute("tc-bob", 100 + 1001).is_err());
        assert_eq!(r.state, RequestState::Expired);
    }
}
