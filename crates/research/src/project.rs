//! Research projects (applications): the state machine, committee votes with a quorum, and the
//! data permit an approval issues.
//!
//! ```text
//! draft ──submit──► submitted ──start-review──► under-review ──(votes)──► approved ──activate──► active ──close──► closed
//!   ▲                   ▲                          │   │                      │                    └──expire──► expired
//!   │                   └──────resubmit────── changes-requested ◄─(votes)──┘   │                                 ▲
//!   │                                              └──(votes)──► rejected      └──────────expire─────────────────┘
//! ```
//!
//! Every transition is returned as a [`Transition`] (who, when, from, to, note) for the audit
//! trail and for notifications ([`Project::notification`] renders a FHIR Communication). The
//! project itself is a platform record under compare-and-set ([`NS_PROJECTS`]); its public face
//! is a FHIR ResearchStudy ([`Project::to_research_study`]).

use std::collections::{BTreeMap, BTreeSet};

use medicus_consent::LegalBasis;
use medicus_store::api::{Precondition, WriteSession};
use medicus_store::platform::{DocExpect, PlatformRecords};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::docs;
use crate::error::{ResearchError, Result};

/// The identifier system of platform users (a notification's recipient).
pub const USER_SYSTEM: &str = "https://medicus-health.github.io/fhir/sid/user";

/// Platform-record namespace of projects, keyed by project id.
pub const NS_PROJECTS: &str = "research-project";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProjectState {
    Draft,
    Submitted,
    UnderReview,
    ChangesRequested,
    Approved,
    Rejected,
    Active,
    Closed,
    Expired,
}

impl ProjectState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectState::Draft => "draft",
            ProjectState::Submitted => "submitted",
            ProjectState::UnderReview => "under-review",
            ProjectState::ChangesRequested => "changes-requested",
            ProjectState::Approved => "approved",
            ProjectState::Rejected => "rejected",
            ProjectState::Active => "active",
            ProjectState::Closed => "closed",
            ProjectState::Expired => "expired",
        }
    }

    /// The nearest R4 `ResearchStudy.status` (the exact state travels in an extension).
    pub fn research_study_status(self) -> &'static str {
        match self {
            ProjectState::Draft
            | ProjectState::Submitted
            | ProjectState::UnderReview
            | ProjectState::ChangesRequested => "in-review",
            ProjectState::Approved => "approved",
            ProjectState::Rejected => "disapproved",
            ProjectState::Active => "active",
            ProjectState::Closed => "completed",
            ProjectState::Expired => "administratively-completed",
        }
    }
}

/// What moves a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Submit,
    StartReview,
    RequestChanges,
    Approve,
    Reject,
    Activate,
    Close,
    Expire,
}

/// The state `action` leads to from `from`, or `None` when the move is illegal. The only place
/// that knows the transitions.
pub fn next_state(from: ProjectState, action: Action) -> Option<ProjectState> {
    use Action as A;
    use ProjectState as S;
    Some(match (from, action) {
        (S::Draft | S::ChangesRequested, A::Submit) => S::Submitted,
        (S::Submitted, A::StartReview) => S::UnderReview,
        (S::UnderReview, A::RequestChanges) => S::ChangesRequested,
        (S::UnderReview, A::Approve) => S::Approved,
        (S::UnderReview, A::Reject) => S::Rejected,
        (S::Approved, A::Activate) => S::Active,
        (S::Active, A::Close) => S::Closed,
        (S::Approved | S::Active, A::Expire) => S::Expired,
        _ => return None,
    })
}

/// What a project asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DataRequest {
    /// FHIR resource types.
    pub resource_types: Vec<String>,
    /// Elements per type (FHIRPath-like paths, e.g. `Observation.code`); empty: all that
    /// de-identification leaves.
    #[serde(default)]
    pub elements: BTreeMap<String, Vec<String>>,
    /// Data time window, FHIR dates.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
}

/// Kinds of output a permit allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputKind {
    Ndjson,
    Parquet,
    Aggregate,
}

/// The application as the applicant writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    pub title: String,
    pub public_summary: String,
    pub principal_investigator: String,
    pub institution: String,
    pub legal_basis: LegalBasis,
    /// A purpose code (`medicus_consent::codes::PURPOSE_SYSTEM`).
    pub purpose: String,
    /// The requested cohort as CCDL.
    pub cohort: Value,
    pub data: DataRequest,
    pub duration_days: u32,
    /// Reference to the ethics vote document (e.g. `DocumentReference/…`).
    #[serde(default)]
    pub ethics_vote: Option<String>,
    /// Users to be named on the permit.
    pub team: Vec<String>,
    pub outputs: Vec<OutputKind>,
}

impl Application {
    /// What must be filled in before submission.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let blank = |s: &str| s.trim().is_empty();
        if blank(&self.title) {
            out.push("title");
        }
        if blank(&self.public_summary) {
            out.push("public summary");
        }
        if blank(&self.principal_investigator) {
            out.push("principal investigator");
        }
        if blank(&self.institution) {
            out.push("institution");
        }
        if blank(&self.purpose) {
            out.push("purpose");
        }
        if !self.cohort.is_object() {
            out.push("cohort (CCDL)");
        }
        if self.data.resource_types.is_empty() {
            out.push("requested resource types");
        }
        if self.duration_days == 0 {
            out.push("duration");
        }
        if self.ethics_vote.as_deref().is_none_or(blank) {
            out.push("ethics vote");
        }
        if self.team.is_empty() {
            out.push("team");
        }
        if self.outputs.is_empty() {
            out.push("outputs");
        }
        out
    }
}

/// The use-and-access committee of a project: who may vote and how many votes decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committee {
    pub members: BTreeSet<String>,
    /// Votes needed before anything is decided (at least 1, at most the members).
    pub quorum: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Vote {
    Approve,
    Reject,
    RequestChanges,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub by: String,
    pub at_s: i64,
    pub text: String,
    pub round: u32,
}

/// One recorded state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub action: Action,
    pub from: ProjectState,
    pub to: ProjectState,
    pub by: String,
    pub at_s: i64,
    #[serde(default)]
    pub note: Option<String>,
}

/// The data permit an approval issues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataPermit {
    pub id: String,
    pub project: String,
    pub legal_basis: LegalBasis,
    pub purpose: String,
    pub scope: DataRequest,
    pub cohort: Value,
    pub issued_at_s: i64,
    pub expires_at_s: i64,
    pub allowed_outputs: BTreeSet<OutputKind>,
    pub named_users: BTreeSet<String>,
    /// Set when the project is active; a permit of an approved but not yet active project is
    /// not usable.
    pub active: bool,
    #[serde(default)]
    pub revoked: bool,
}

/// Why a permit does not allow a use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PermitDenied {
    #[error("the permit is not active")]
    NotActive,
    #[error("the permit has expired")]
    Expired,
    #[error("the permit was revoked")]
    Revoked,
    #[error("the user is not named on the permit")]
    UserNotNamed,
    #[error("the permit does not allow this output")]
    OutputNotAllowed,
}

impl DataPermit {
    /// Whether `user` may produce `output` under this permit at `now_s`.
    pub fn check(&self, user: &str, output: OutputKind, now_s: i64) -> Result<(), PermitDenied> {
        if self.revoked {
            return Err(PermitDenied::Revoked);
        }
        if now_s >= self.expires_at_s {
            return Err(PermitDenied::Expired);
        }
        if !self.active {
            return Err(PermitDenied::NotActive);
        }
        if !self.named_users.contains(user) {
            return Err(PermitDenied::UserNotNamed);
        }
        if !self.allowed_outputs.contains(&output) {
            return Err(PermitDenied::OutputNotAllowed);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub applicant: String,
    pub application: Application,
    pub committee: Committee,
    pub state: ProjectState,
    /// Review round: votes count within one round; a resubmission starts the next.
    pub round: u32,
    pub votes: BTreeMap<String, Vote>,
    pub comments: Vec<Comment>,
    pub history: Vec<Transition>,
    pub permit: Option<DataPermit>,
}

impl Project {
    /// A new draft.
    pub fn new(
        id: &str,
        applicant: &str,
        application: Application,
        committee: Committee,
    ) -> Result<Project> {
        if applicant.is_empty() {
            return Err(ResearchError::Invalid("an applicant is required".into()));
        }
        // The id is also the ResearchStudy's: a FHIR id.
        if id.is_empty()
            || id.len() > 64
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(ResearchError::Invalid(
                "a project id is 1 to 64 letters, digits, '-' or '.'".into(),
            ));
        }
        if committee.quorum == 0 || committee.quorum > committee.members.len() {
            return Err(ResearchError::Invalid(
                "the quorum must lie between 1 and the number of committee members".into(),
            ));
        }
        if committee.members.contains(applicant) {
            return Err(ResearchError::Invalid(
                "the applicant cannot sit on the project's committee".into(),
            ));
        }
        Ok(Project {
            id: id.into(),
            applicant: applicant.into(),
            application,
            committee,
            state: ProjectState::Draft,
            round: 0,
            votes: BTreeMap::new(),
            comments: Vec::new(),
            history: Vec::new(),
            permit: None,
        })
    }

    fn apply(
        &mut self,
        action: Action,
        by: &str,
        at_s: i64,
        note: Option<String>,
    ) -> Result<Transition> {
        let to = next_state(self.state, action).ok_or_else(|| {
            ResearchError::IllegalTransition(format!(
                "{:?} is not allowed in state {}",
                action,
                self.state.as_str()
            ))
        })?;
        let t = Transition {
            action,
            from: self.state,
            to,
            by: by.into(),
            at_s,
            note,
        };
        self.state = to;
        self.history.push(t.clone());
        Ok(t)
    }

    /// Only a draft (or a project sent back) can be edited, by the applicant.
    pub fn edit(&mut self, by: &str, application: Application) -> Result<()> {
        if by != self.applicant {
            return Err(ResearchError::Forbidden(
                "only the applicant edits the application".into(),
            ));
        }
        if !matches!(
            self.state,
            ProjectState::Draft | ProjectState::ChangesRequested
        ) {
            return Err(ResearchError::IllegalTransition(format!(
                "cannot edit in state {}",
                self.state.as_str()
            )));
        }
        self.application = application;
        Ok(())
    }

    /// The applicant submits a complete application (again, after changes were requested).
    pub fn submit(&mut self, by: &str, at_s: i64) -> Result<Transition> {
        if by != self.applicant {
            return Err(ResearchError::Forbidden(
                "only the applicant submits".into(),
            ));
        }
        let missing = self.application.missing();
        if !missing.is_empty() && next_state(self.state, Action::Submit).is_some() {
            return Err(ResearchError::Invalid(format!(
                "incomplete application: {}",
                missing.join(", ")
            )));
        }
        self.apply(Action::Submit, by, at_s, None)
    }

    /// A committee member opens the review; votes of earlier rounds no longer count.
    pub fn start_review(&mut self, by: &str, at_s: i64) -> Result<Transition> {
        self.member(by)?;
        let t = self.apply(Action::StartReview, by, at_s, None)?;
        self.round += 1;
        self.votes.clear();
        Ok(t)
    }

    fn member(&self, by: &str) -> Result<()> {
        if self.committee.members.contains(by) {
            Ok(())
        } else {
            Err(ResearchError::Forbidden(
                "not a member of the project's committee".into(),
            ))
        }
    }

    /// A committee member comments (in any state but draft).
    pub fn comment(&mut self, by: &str, text: &str, at_s: i64) -> Result<()> {
        if by != self.applicant {
            self.member(by)?;
        }
        if self.state == ProjectState::Draft || text.trim().is_empty() {
            return Err(ResearchError::Invalid(
                "nothing to comment on, or an empty comment".into(),
            ));
        }
        self.comments.push(Comment {
            by: by.into(),
            at_s,
            text: text.into(),
            round: self.round,
        });
        Ok(())
    }

    /// A member votes (or changes their vote) while under review. Once `quorum` votes are in,
    /// a strict majority of them decides: approve issues the permit, reject ends it, request
    /// changes sends it back to the applicant. Without a majority the review goes on.
    pub fn vote(
        &mut self,
        by: &str,
        vote: Vote,
        at_s: i64,
        permit_id: &str,
    ) -> Result<Option<Transition>> {
        self.member(by)?;
        if self.state != ProjectState::UnderReview {
            return Err(ResearchError::IllegalTransition(format!(
                "cannot vote in state {}",
                self.state.as_str()
            )));
        }
        self.votes.insert(by.into(), vote);
        let cast = self.votes.len();
        if cast < self.committee.quorum {
            return Ok(None);
        }
        let count = |v: Vote| self.votes.values().filter(|x| **x == v).count();
        let decided = [Vote::Approve, Vote::Reject, Vote::RequestChanges]
            .into_iter()
            .find(|v| count(*v) * 2 > cast);
        let note = Some(format!("decided by {cast} votes in round {}", self.round));
        let t = match decided {
            None => return Ok(None),
            Some(Vote::Approve) => {
                let t = self.apply(Action::Approve, by, at_s, note)?;
                self.permit = Some(self.issue_permit(permit_id, at_s));
                t
            }
            Some(Vote::Reject) => self.apply(Action::Reject, by, at_s, note)?,
            Some(Vote::RequestChanges) => self.apply(Action::RequestChanges, by, at_s, note)?,
        };
        Ok(Some(t))
    }

    fn issue_permit(&self, id: &str, at_s: i64) -> DataPermit {
        let a = &self.application;
        DataPermit {
            id: id.into(),
            project: self.id.clone(),
            legal_basis: a.legal_basis,
            purpose: a.purpose.clone(),
            scope: a.data.clone(),
            cohort: a.cohort.clone(),
            issued_at_s: at_s,
            expires_at_s: at_s.saturating_add(i64::from(a.duration_days) * 86_400),
            allowed_outputs: a.outputs.iter().copied().collect(),
            named_users: a.team.iter().cloned().collect(),
            active: false,
            revoked: false,
        }
    }

    /// The applicant starts the approved project; the permit becomes usable.
    pub fn activate(&mut self, by: &str, at_s: i64) -> Result<Transition> {
        if by != self.applicant {
            return Err(ResearchError::Forbidden(
                "only the applicant activates".into(),
            ));
        }
        if self.permit.as_ref().is_some_and(|p| at_s >= p.expires_at_s) {
            return Err(ResearchError::IllegalTransition(
                "the permit has expired".into(),
            ));
        }
        let t = self.apply(Action::Activate, by, at_s, None)?;
        if let Some(p) = &mut self.permit {
            p.active = true;
        }
        Ok(t)
    }

    /// The applicant or a committee member closes an active project; the permit ends.
    pub fn close(&mut self, by: &str, at_s: i64, note: Option<String>) -> Result<Transition> {
        if by != self.applicant {
            self.member(by)?;
        }
        let t = self.apply(Action::Close, by, at_s, note)?;
        if let Some(p) = &mut self.permit {
            p.active = false;
        }
        Ok(t)
    }

    /// Moves an approved or active project whose permit ran out to `expired` (run by the
    /// platform, `by` = `system`); `Ok(None)` when it has not run out.
    pub fn expire_if_due(&mut self, at_s: i64) -> Result<Option<Transition>> {
        let due = self.permit.as_ref().is_some_and(|p| at_s >= p.expires_at_s);
        if !due || next_state(self.state, Action::Expire).is_none() {
            return Ok(None);
        }
        let t = self.apply(Action::Expire, "system", at_s, None)?;
        if let Some(p) = &mut self.permit {
            p.active = false;
        }
        Ok(Some(t))
    }

    /// Revokes the permit at once (e.g. misuse); the project stays as it is.
    pub fn revoke_permit(&mut self, by: &str) -> Result<()> {
        self.member(by)?;
        match &mut self.permit {
            Some(p) => {
                p.revoked = true;
                Ok(())
            }
            None => Err(ResearchError::NotFound("permit".into())),
        }
    }

    /// Who hears of a transition: the applicant, the PI and the team always; the committee
    /// when it has something to do or decided.
    pub fn recipients(&self, t: &Transition) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = BTreeSet::new();
        out.insert(self.applicant.clone());
        out.insert(self.application.principal_investigator.clone());
        out.extend(self.application.team.iter().cloned());
        if matches!(
            t.to,
            ProjectState::Submitted
                | ProjectState::UnderReview
                | ProjectState::Approved
                | ProjectState::Rejected
                | ProjectState::ChangesRequested
                | ProjectState::Closed
        ) {
            out.extend(self.committee.members.iter().cloned());
        }
        out.remove(&t.by);
        out
    }

    /// The in-platform notification of `t` for the user `recipient` (a platform user id), as a
    /// FHIR Communication; `sent` is its FHIR `dateTime`.
    pub fn notification(&self, t: &Transition, recipient: &str, sent: &str) -> Value {
        json!({
            "resourceType": "Communication",
            "status": "completed",
            "category": [{ "coding": [{ "system": "https://medicus-health.github.io/fhir/CodeSystem/notification", "code": "research-project" }] }],
            "about": [{ "reference": format!("ResearchStudy/{}", self.id) }],
            "recipient": [{ "identifier": { "system": USER_SYSTEM, "value": recipient } }],
            "sent": sent,
            "payload": [{ "contentString": format!(
                "Project \"{}\": {} → {} ({})",
                self.application.title, t.from.as_str(), t.to.as_str(), format!("{:?}", t.action).to_lowercase()
            ) }]
        })
    }

    /// The project as a FHIR ResearchStudy (public metadata only).
    pub fn to_research_study(&self) -> Value {
        let a = &self.application;
        let mut study = json!({
            "resourceType": "ResearchStudy",
            "id": self.id,
            "extension": [{
                "url": "https://medicus-health.github.io/fhir/StructureDefinition/research-project-state",
                "valueCode": self.state.as_str()
            }, {
                "url": "https://medicus-health.github.io/fhir/StructureDefinition/research-legal-basis",
                "valueCode": serde_json::to_value(a.legal_basis).unwrap_or(Value::Null)
            }],
            "title": a.title,
            "status": self.state.research_study_status(),
            "description": a.public_summary,
            "category": [{ "coding": [{ "system": medicus_consent::codes::PURPOSE_SYSTEM, "code": a.purpose }] }],
            "principalInvestigator": { "display": a.principal_investigator },
            "sponsor": { "display": a.institution },
        });
        if let (Some(p), Some(obj)) = (&self.permit, study.as_object_mut()) {
            obj.insert(
                "period".into(),
                json!({ "end": format_epoch_day(p.expires_at_s) }),
            );
        }
        study
    }
}

fn format_epoch_day(s: i64) -> String {
    medicus_consent::Day(i32::try_from(s.div_euclid(86_400)).unwrap_or(i32::MAX / 2)).to_string()
}

/// Writes what a transition changes in the FHIR store, in the caller's session (so it commits
/// with whatever else the request writes): the project's ResearchStudy, and one Communication
/// per person to notify. `sent` is the FHIR `dateTime` of the notification.
pub fn record_transition(
    session: &mut dyn WriteSession,
    project: &Project,
    transition: &Transition,
    sent: &str,
) -> Result<()> {
    session.put(
        "ResearchStudy",
        &project.id,
        project.to_research_study(),
        Precondition::None,
    )?;
    for recipient in project.recipients(transition) {
        let id = crate::pseudonym::random_id()?;
        let mut c = project.notification(transition, &recipient, sent);
        c["id"] = Value::from(id.clone());
        session.put("Communication", &id, c, Precondition::None)?;
    }
    Ok(())
}

/// Stores a new project (refused if the id exists).
pub fn create_project(records: &dyn PlatformRecords, project: &Project) -> Result<()> {
    docs::put(
        records,
        NS_PROJECTS,
        &project.id,
        project,
        DocExpect::Absent,
    )
    .map(|_| ())
}

pub fn get_project(records: &dyn PlatformRecords, id: &str) -> Result<Option<Project>> {
    Ok(docs::get(records, NS_PROJECTS, id)?.map(|(p, _)| p))
}

pub fn list_projects(records: &dyn PlatformRecords) -> Result<Vec<Project>> {
    docs::list(records, NS_PROJECTS, "")
}

/// Applies `change` to the stored project under compare-and-set (retried on concurrent
/// writes); returns the project as written and what `change` returned.
pub fn update_project<R>(
    records: &dyn PlatformRecords,
    id: &str,
    change: impl FnMut(&mut Project) -> Result<R>,
) -> Result<(Project, R)> {
    docs::update(records, NS_PROJECTS, id, change)
}

#[cfg(test)]
#[path = "project_tests.rs"]
mod tests;
