//! The audit event model and its canonical encoding.
//!
//! An event holds what an AuditEvent needs and nothing more: identifiers of the actor, the
//! entities touched (`Type/id`) or the search query, the outcome, the time, the network address
//! and the request id. No resource content is ever recorded.

use serde::{Deserialize, Serialize};

use crate::AuditError;

/// The chain of events that belong to no tenant (logins before a tenant is known, platform
/// administration).
pub const PLATFORM_CHAIN: &str = "_platform";

/// Current version of the record encoding (the `v` field).
pub const RECORD_VERSION: u8 = 1;

/// The FHIR AuditEvent action: create, read, update, delete, execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    C,
    R,
    U,
    D,
    E,
}

impl Action {
    pub fn code(self) -> &'static str {
        match self {
            Action::C => "C",
            Action::R => "R",
            Action::U => "U",
            Action::D => "D",
            Action::E => "E",
        }
    }

    pub fn parse(code: &str) -> Option<Action> {
        Some(match code {
            "C" => Action::C,
            "R" => Action::R,
            "U" => Action::U,
            "D" => Action::D,
            "E" => Action::E,
            _ => return None,
        })
    }
}

/// What happened: a FHIR RESTful interaction or a security event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Read,
    Vread,
    HistoryInstance,
    HistoryType,
    HistorySystem,
    SearchType,
    SearchSystem,
    Create,
    Update,
    Patch,
    Delete,
    Transaction,
    Batch,
    Capabilities,
    Operation,
    Login,
    LoginFailure,
    TokenIssued,
    AdminChange,
}

impl Kind {
    /// The code: the `restful-interaction` code for FHIR interactions, else our own.
    pub fn code(self) -> &'static str {
        match self {
            Kind::Read => "read",
            Kind::Vread => "vread",
            Kind::HistoryInstance => "history-instance",
            Kind::HistoryType => "history-type",
            Kind::HistorySystem => "history-system",
            Kind::SearchType => "search-type",
            Kind::SearchSystem => "search-system",
            Kind::Create => "create",
            Kind::Update => "update",
            Kind::Patch => "patch",
            Kind::Delete => "delete",
            Kind::Transaction => "transaction",
            Kind::Batch => "batch",
            Kind::Capabilities => "capabilities",
            Kind::Operation => "operation",
            Kind::Login => "login",
            Kind::LoginFailure => "login-failure",
            Kind::TokenIssued => "token-issued",
            Kind::AdminChange => "admin-change",
        }
    }

    pub fn parse(code: &str) -> Option<Kind> {
        ALL_KINDS.iter().copied().find(|k| k.code() == code)
    }

    /// Whether this is a FHIR RESTful interaction (type `rest`).
    pub fn is_rest(self) -> bool {
        !matches!(
            self,
            Kind::Login | Kind::LoginFailure | Kind::TokenIssued | Kind::AdminChange
        )
    }

    /// The action an interaction implies.
    pub fn action(self) -> Action {
        match self {
            Kind::Create => Action::C,
            Kind::Update | Kind::Patch | Kind::AdminChange => Action::U,
            Kind::Delete => Action::D,
            Kind::Transaction
            | Kind::Batch
            | Kind::Operation
            | Kind::Login
            | Kind::LoginFailure
            | Kind::TokenIssued => Action::E,
            Kind::Read
            | Kind::Vread
            | Kind::HistoryInstance
            | Kind::HistoryType
            | Kind::HistorySystem
            | Kind::SearchType
            | Kind::SearchSystem
            | Kind::Capabilities => Action::R,
        }
    }
}

const ALL_KINDS: [Kind; 19] = [
    Kind::Read,
    Kind::Vread,
    Kind::HistoryInstance,
    Kind::HistoryType,
    Kind::HistorySystem,
    Kind::SearchType,
    Kind::SearchSystem,
    Kind::Create,
    Kind::Update,
    Kind::Patch,
    Kind::Delete,
    Kind::Transaction,
    Kind::Batch,
    Kind::Capabilities,
    Kind::Operation,
    Kind::Login,
    Kind::LoginFailure,
    Kind::TokenIssued,
    Kind::AdminChange,
];

/// The FHIR AuditEvent outcome: 0 success, 4 minor failure (the client's: 4xx), 8 serious
/// failure (the server's: 5xx), 12 major failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeCode {
    Success,
    Minor,
    Serious,
    Major,
}

impl OutcomeCode {
    pub fn fhir_code(self) -> &'static str {
        match self {
            OutcomeCode::Success => "0",
            OutcomeCode::Minor => "4",
            OutcomeCode::Serious => "8",
            OutcomeCode::Major => "12",
        }
    }

    pub fn parse_fhir(code: &str) -> Option<OutcomeCode> {
        Some(match code {
            "0" => OutcomeCode::Success,
            "4" => OutcomeCode::Minor,
            "8" => OutcomeCode::Serious,
            "12" => OutcomeCode::Major,
            _ => return None,
        })
    }

    /// The outcome of an HTTP status.
    pub fn from_http(status: u16) -> OutcomeCode {
        match status {
            0..400 => OutcomeCode::Success,
            400..500 => OutcomeCode::Minor,
            _ => OutcomeCode::Serious,
        }
    }
}

/// Who acted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// The user or token subject; `None` for an anonymous request.
    pub user: Option<String>,
    /// The OAuth client the request came through.
    pub client: Option<String>,
    /// The roles the actor acted in (e.g. `clinician`, `tenant-admin`).
    pub roles: Vec<String>,
}

/// One audited event. `at_us` and `subjects` are stored beside the encoded record (they are
/// indexed columns of the chain), so the record itself leaves them out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Encoding version.
    pub v: u8,
    /// The tenant, `None` for a platform-level event.
    pub tenant: Option<String>,
    pub kind: Kind,
    pub action: Action,
    pub agent: Agent,
    /// The entities acted on as `Type/id` (or `Type/id/_history/n`), or an operation name.
    pub entities: Vec<String>,
    /// For searches: the query string as received (parameters, no body).
    pub query: Option<String>,
    pub outcome: OutcomeCode,
    /// HTTP status of the response (0 when not an HTTP event).
    pub status: u16,
    /// A short, data-free description of a failure (e.g. the OperationOutcome issue code).
    pub outcome_desc: Option<String>,
    /// The client's network address.
    pub address: Option<String>,
    /// Purpose of use (a `v3-ActReason` code such as `TREAT`), when the request declared one.
    pub purpose: Option<String>,
    pub request_id: Option<String>,
    /// When the event happened, microseconds since the Unix epoch.
    #[serde(skip)]
    pub at_us: i64,
    /// The patients (`Patient/id`) whose data the event touched.
    #[serde(skip)]
    pub subjects: Vec<String>,
}

impl AuditEvent {
    /// A new event of `kind` at the current time, with the action `kind` implies.
    pub fn new(tenant: Option<String>, kind: Kind) -> AuditEvent {
        AuditEvent {
            v: RECORD_VERSION,
            tenant,
            kind,
            action: kind.action(),
            agent: Agent::default(),
            entities: Vec::new(),
            query: None,
            outcome: OutcomeCode::Success,
            status: 0,
            outcome_desc: None,
            address: None,
            purpose: None,
            request_id: None,
            at_us: now_us(),
            subjects: Vec::new(),
        }
    }

    /// The chain the event belongs to: its tenant, or [`PLATFORM_CHAIN`].
    pub fn chain(&self) -> &str {
        self.tenant.as_deref().unwrap_or(PLATFORM_CHAIN)
    }

    /// The canonical bytes of the record: JSON with the fields in declaration order, no
    /// whitespace. The chain hash covers these exact bytes as stored, so verification never
    /// depends on re-encoding.
    pub fn encode(&self) -> Result<Vec<u8>, AuditError> {
        serde_json::to_vec(self).map_err(|e| AuditError::Encode(e.to_string()))
    }

    /// Decodes a stored record; `at_us` and `subjects` come from the entry.
    pub fn decode(record: &[u8], at_us: i64, subjects: Vec<String>) -> Result<Self, AuditError> {
        let mut event: AuditEvent =
            serde_json::from_slice(record).map_err(|e| AuditError::Decode(e.to_string()))?;
        event.at_us = at_us;
        event.subjects = subjects;
        Ok(event)
    }
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for k in ALL_KINDS {
            assert_eq!(Kind::parse(k.code()), Some(k));
        }
        for a in [Action::C, Action::R, Action::U, Action::D, Action::E] {
            assert_eq!(Action::parse(a.code()), Some(a));
        }
        assert_eq!(OutcomeCode::from_http(201), OutcomeCode::Success);
        assert_eq!(OutcomeCode::from_http(404), OutcomeCode::Minor);
        assert_eq!(OutcomeCode::from_http(503), OutcomeCode::Serious);
    }

    #[test]
    fn record_leaves_out_the_columns_and_round_trips() {
        let mut e = AuditEvent::new(Some("t".into()), Kind::Read);
        e.entities.push("Patient/1".into());
        e.subjects.push("Patient/1".into());
        e.at_us = 42;
        let bytes = e.encode().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with(r#"{"v":1,"tenant":"t","kind":"read","action":"R""#));
        assert!(!text.contains("at_us") && !text.contains("subjects"));
        let back = AuditEvent::decode(&bytes, 42, vec!["Patient/1".into()]).unwrap();
        assert_eq!(back, e);
        // Deterministic: encoding twice gives the same bytes.
        assert_eq!(back.encode().unwrap(), bytes);
    }
}
