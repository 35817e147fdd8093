//! Rendering chain entries as FHIR R4 `AuditEvent` resources, and searching a chain.

use base64::Engine;
use medicus_store::{AuditEntry, AuditQuery, PlatformRecords};
use serde_json::{Map, Value, json};

use crate::{Action, AuditError, AuditEvent, Kind, OutcomeCode};

const AUDIT_EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
const RESTFUL_INTERACTION: &str = "http://hl7.org/fhir/restful-interaction";
const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const MEDICUS_SUBTYPE: &str = "https://medicus.health/fhir/CodeSystem/audit-event-subtype";
const REQUEST_ID_EXT: &str = "https://medicus.health/fhir/StructureDefinition/request-id";

/// RFC 3339 with microseconds in UTC.
pub fn instant(at_us: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_us) * 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

fn type_and_subtype(kind: Kind) -> (Value, Value) {
    if kind.is_rest() {
        return (
            json!({"system": AUDIT_EVENT_TYPE, "code": "rest", "display": "RESTful Operation"}),
            json!({"system": RESTFUL_INTERACTION, "code": kind.code()}),
        );
    }
    match kind {
        Kind::Login | Kind::LoginFailure => (
            json!({"system": DCM, "code": "110114", "display": "User Authentication"}),
            json!({"system": DCM, "code": "110122", "display": "Login"}),
        ),
        Kind::AdminChange => (
            json!({"system": DCM, "code": "110136", "display": "Security Roles Changed"}),
            json!({"system": MEDICUS_SUBTYPE, "code": kind.code()}),
        ),
        _ => (
            json!({"system": DCM, "code": "110114", "display": "User Authentication"}),
            json!({"system": MEDICUS_SUBTYPE, "code": kind.code()}),
        ),
    }
}

/// The entry `entry` of a chain as an `AuditEvent` resource (`id` = seq).
pub fn to_fhir(entry: &AuditEntry, observer: &str) -> Result<Value, AuditError> {
    let e = AuditEvent::decode(&entry.record, entry.at_us, entry.subjects.clone())?;
    let recorded = instant(entry.at_us);
    let (ty, subtype) = type_and_subtype(e.kind);
    let mut r = Map::new();
    r.insert("resourceType".into(), json!("AuditEvent"));
    r.insert("id".into(), json!(entry.seq.to_string()));
    r.insert("meta".into(), json!({"lastUpdated": recorded}));
    if let Some(id) = &e.request_id {
        r.insert(
            "extension".into(),
            json!([{"url": REQUEST_ID_EXT, "valueString": id}]),
        );
    }
    r.insert("type".into(), ty);
    r.insert("subtype".into(), json!([subtype]));
    r.insert("action".into(), json!(e.action.code()));
    r.insert("recorded".into(), json!(recorded));
    r.insert("outcome".into(), json!(e.outcome.fhir_code()));
    let desc = match (&e.outcome_desc, e.status) {
        (Some(d), s) if s > 0 => Some(format!("HTTP {s}: {d}")),
        (Some(d), _) => Some(d.clone()),
        (None, s) if s > 0 => Some(format!("HTTP {s}")),
        (None, _) => None,
    };
    if let Some(d) = desc {
        r.insert("outcomeDesc".into(), json!(d));
    }
    if let Some(p) = &e.purpose {
        r.insert(
            "purposeOfEvent".into(),
            json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": p}]}]),
        );
    }
    let mut agent = Map::new();
    agent.insert(
        "type".into(),
        json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type", "code": "humanuser", "display": "human user"}]}),
    );
    if !e.agent.roles.is_empty() {
        agent.insert(
            "role".into(),
            Value::Array(e.agent.roles.iter().map(|r| json!({"text": r})).collect()),
        );
    }
    agent.insert(
        "who".into(),
        match &e.agent.user {
            Some(u) => json!({"identifier": {"value": u}}),
            None => json!({"display": "anonymous"}),
        },
    );
    agent.insert("requestor".into(), json!(true));
    if let Some(a) = &e.address {
        // Network access point type 2: an IP address.
        agent.insert("network".into(), json!({"address": a, "type": "2"}));
    }
    let mut agents = vec![Value::Object(agent)];
    if let Some(c) = &e.agent.client {
        agents.push(json!({
            "type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110150", "display": "Application"}]},
            "who": {"identifier": {"value": c}},
            "requestor": false
        }));
    }
    r.insert("agent".into(), Value::Array(agents));
    r.insert(
        "source".into(),
        json!({
            "observer": {"display": observer},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}]
        }),
    );
    let mut entities = Vec::new();
    for what in &e.entities {
        entities.push(json!({
            "what": {"reference": what},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"}
        }));
    }
    if let Some(q) = &e.query {
        entities.push(json!({
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "24", "display": "Query"},
            "query": base64::engine::general_purpose::STANDARD.encode(q.as_bytes())
        }));
    }
    for s in &e.subjects {
        if e.entities.iter().any(|w| w == s) {
            continue;
        }
        entities.push(json!({
            "what": {"reference": s},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"}
        }));
    }
    if !entities.is_empty() {
        r.insert("entity".into(), Value::Array(entities));
    }
    Ok(Value::Object(r))
}

/// Filters of an AuditEvent search. Date range and subject are answered by the store's
/// indexes; the rest is checked on the decoded entries.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// `from_us <= at_us < to_us`.
    pub from_us: Option<i64>,
    pub to_us: Option<i64>,
    /// A patient reference (`Patient/id`) among the subjects.
    pub subject: Option<String>,
    /// Any of these references among the entities or subjects.
    pub entity: Vec<String>,
    pub action: Vec<Action>,
    pub outcome: Vec<OutcomeCode>,
    /// Type or subtype codes (`rest`, `read`, `search-type`, `login`, …).
    pub kind: Vec<String>,
}

impl EventFilter {
    fn matches(&self, e: &AuditEvent) -> bool {
        (self.entity.is_empty()
            || self
                .entity
                .iter()
                .any(|r| e.entities.contains(r) || e.subjects.contains(r)))
            && (self.action.is_empty() || self.action.contains(&e.action))
            && (self.outcome.is_empty() || self.outcome.contains(&e.outcome))
            && (self.kind.is_empty()
                || self
                    .kind
                    .iter()
                    .any(|k| k == e.kind.code() || (k == "rest" && e.kind.is_rest())))
    }
}

/// One page of a search, newest first.
#[derive(Debug, Clone)]
pub struct EventPage {
    pub entries: Vec<AuditEntry>,
    /// Continue with `before_seq` = this to get the next page; `None` at the end.
    pub next_before: Option<i64>,
}

/// Entries examined per search request at most: a filter that matches rarely returns a short
/// page with a next link rather than scanning the whole chain in one request.
const SCAN_BUDGET: usize = 20_000;

/// Up to `count` entries of `chain` matching `filter`, newest first, below `before_seq`.
pub fn search<S: PlatformRecords + ?Sized>(
    store: &S,
    chain: &str,
    filter: &EventFilter,
    count: usize,
    before_seq: Option<i64>,
) -> Result<EventPage, AuditError> {
    let mut entries = Vec::new();
    let mut before = before_seq;
    let mut scanned = 0;
    let chunk = (count * 2).clamp(50, 1000);
    loop {
        let page = store.audit_query(
            chain,
            &AuditQuery {
                before_seq: before,
                from_us: filter.from_us,
                to_us: filter.to_us,
                subject: filter.subject.clone(),
                newest_first: true,
                limit: chunk,
                ..AuditQuery::default()
            },
        )?;
        let exhausted = page.len() < chunk;
        for e in page {
            scanned += 1;
            before = Some(e.seq);
            let event = AuditEvent::decode(&e.record, e.at_us, e.subjects.clone())?;
            if filter.matches(&event) {
                entries.push(e);
                if entries.len() == count {
                    return Ok(EventPage {
                        entries,
                        next_before: before.filter(|&s| s > 1),
                    });
                }
            }
        }
        if exhausted {
            return Ok(EventPage {
                entries,
                next_before: None,
            });
        }
        if scanned >= SCAN_BUDGET {
            return Ok(EventPage {
                entries,
                next_before: before,
            });
        }
    }
}
