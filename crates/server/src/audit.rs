//! The audit trail at the HTTP edge: one AuditEvent per FHIR interaction (successes and
//! failures), recorded by a middleware after the response is built, and the read side
//! (`AuditEvent` search and read, `Patient/{id}/$access-log`) served from the chain.
//!
//! Handlers report the patients whose data a response carries through the [`AuditSubjects`]
//! response extension (filled by `FhirResponse` from the body it already holds), so the
//! middleware neither parses bodies nor touches the database: the event goes to the batching
//! [`AuditTrail`] thread.

use std::collections::BTreeSet;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use medicus_audit::fhir::{EventFilter, search, to_fhir};
use medicus_audit::{Action, AuditEvent, AuditTrail, Kind, OutcomeCode, TryRecord};
use medicus_fhirpath::{Env, Item, Model};
use serde_json::{Value, json};

use crate::access::{AuditActor, Reach};
use crate::context::{RequestContext, RequestId};
use crate::fhir::FhirError;
use crate::fhir::bundle::{link, new_bundle};
use crate::fhir::http::response::FhirResponse;
use crate::fhir::query::{encode_pairs, parse_pairs};
use crate::state::AppState;
use medicus_auth::policy::Interaction;

/// The name this server gives itself as the AuditEvent `source.observer`.
const OBSERVER: &str = "medicus";

/// Patients (`Patient/id`) whose data a response carried, for the audit middleware.
#[derive(Debug, Clone, Default)]
pub struct AuditSubjects(pub Vec<String>);

/// Set on the response when the tenant of the path does not exist: the event then goes to the
/// platform chain (an unknown name must not create a chain).
#[derive(Debug, Clone, Copy)]
pub struct UnknownTenantMarker;

/// The `Bundle.type` of a response to `POST /fhir/{tenant}` (transaction or batch).
#[derive(Debug, Clone)]
pub struct ResponseBundleType(pub String);

/// The `Patient/id` a reference points to (relative, absolute or versioned), if any.
pub fn patient_of_reference(reference: &str) -> Option<String> {
    let segments: Vec<&str> = reference.split('/').collect();
    let at = segments.iter().rposition(|s| *s == "Patient")?;
    let id = segments.get(at + 1).filter(|id| !id.is_empty())?;
    Some(format!("Patient/{id}"))
}

/// The patients of a resource's Patient compartment (the Patient itself for a Patient).
pub fn patients_of_resource(resource: &Value, out: &mut BTreeSet<String>) {
    let Some(rt) = resource.get("resourceType").and_then(Value::as_str) else {
        return;
    };
    if rt == "Patient" {
        if let Some(id) = resource.get("id").and_then(Value::as_str) {
            out.insert(format!("Patient/{id}"));
        }
        return;
    }
    let defs = medicus_fhir::r4();
    let params = defs.patient_compartment_params(rt);
    if params.is_empty() {
        return;
    }
    let env = Env {
        model: Some(defs as &dyn Model),
    };
    for code in params {
        let Some(expr) = defs
            .search_param(rt, code)
            .and_then(|p| p.expression.as_ref())
        else {
            continue;
        };
        let Ok(items) = expr.evaluate(resource, &env) else {
            continue;
        };
        for item in items {
            if let Item::Node(n) = item
                && let Some(r) = n.value.get("reference").and_then(Value::as_str)
                && let Some(p) = patient_of_reference(r)
            {
                out.insert(p);
            }
        }
    }
}

/// The patients a response body concerns: the resource's, or every Bundle entry's (the
/// resource, else the `response.location` of a transaction/batch entry).
pub fn patients_of_body(body: &Value) -> Vec<String> {
    let mut out = BTreeSet::new();
    if body.get("resourceType").and_then(Value::as_str) == Some("Bundle") {
        for entry in body
            .get("entry")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(r) = entry.get("resource") {
                patients_of_resource(r, &mut out);
            } else if let Some(p) = entry
                .pointer("/response/location")
                .and_then(Value::as_str)
                .and_then(patient_of_reference)
            {
                out.insert(p);
            }
        }
    } else {
        patients_of_resource(body, &mut out);
    }
    out.into_iter().collect()
}

/// What the request path says about the interaction: kind, entities, query, path patient.
struct Classified {
    tenant: String,
    kind: Kind,
    entities: Vec<String>,
    /// For searches and operations: the query (operations prefixed with their name).
    query: Option<String>,
    /// `Patient/id` named by the path.
    path_patient: Option<String>,
}

fn classify(method: &Method, path: &str, query: Option<&str>) -> Option<Classified> {
    let rest = path.strip_prefix("/fhir/")?;
    let mut segs: Vec<&str> = rest.split('/').collect();
    if segs.last() == Some(&"") {
        segs.pop();
    }
    let tenant = (*segs.first()?).to_string();
    if tenant.is_empty() {
        return None;
    }
    let s = &segs[1..];
    // Public discovery documents (`.well-known/smart-configuration`) touch no clinical data.
    if s.first().is_some_and(|seg| seg.starts_with(".well-known")) {
        return None;
    }
    let get = method == Method::GET || method == Method::HEAD;
    let q = || query.map(str::to_string);
    let op = |name: &str| {
        Some(format!(
            "{name}{}",
            query.map(|q| format!("?{q}")).unwrap_or_default()
        ))
    };
    let mut path_patient = None;
    let (kind, entities, query) = match s {
        [] if get => (Kind::SearchSystem, vec![], q()),
        [] => (Kind::Transaction, vec![], None),
        ["metadata"] => (Kind::Capabilities, vec![], None),
        ["_history"] => (Kind::HistorySystem, vec![], q()),
        ["_search"] => (Kind::SearchSystem, vec![], q()),
        [name] if name.starts_with('$') => (Kind::Operation, vec![], op(name)),
        [name, id, ..] if name.starts_with('$') => {
            (Kind::Operation, vec![], op(&format!("{name}/{id}")))
        }
        [ty] => match *method {
            Method::GET | Method::HEAD => (Kind::SearchType, vec![], q()),
            Method::POST => (Kind::Create, vec![], None),
            Method::PUT => (Kind::Update, vec![], q()),
            Method::DELETE => (Kind::Delete, vec![(*ty).to_string()], q()),
            Method::PATCH => (Kind::Patch, vec![], q()),
            _ => (Kind::Operation, vec![], None),
        },
        [_, "_search"] => (Kind::SearchType, vec![], q()),
        [_, "_history"] => (Kind::HistoryType, vec![], q()),
        [_, name] if name.starts_with('$') => (Kind::Operation, vec![], op(name)),
        [ty, id] => {
            let kind = match *method {
                Method::GET | Method::HEAD => Kind::Read,
                Method::PUT => Kind::Update,
                Method::DELETE => Kind::Delete,
                Method::PATCH => Kind::Patch,
                _ => Kind::Operation,
            };
            (kind, vec![format!("{ty}/{id}")], None)
        }
        [ty, id, "_history"] => (Kind::HistoryInstance, vec![format!("{ty}/{id}")], q()),
        [ty, id, "_history", vid] => (Kind::Vread, vec![format!("{ty}/{id}/_history/{vid}")], None),
        [ty, id, name] if name.starts_with('$') => {
            (Kind::Operation, vec![format!("{ty}/{id}")], op(name))
        }
        // Compartment search `Patient/{id}/{type}`.
        [ty, id, target] => (
            Kind::SearchType,
            vec![format!("{ty}/{id}")],
            Some(format!(
                "{target}{}",
                query.map(|q| format!("?{q}")).unwrap_or_default()
            )),
        ),
        _ => (Kind::Operation, vec![], q()),
    };
    if let [ty, id, ..] = s
        && *ty == "Patient"
        && !id.starts_with('_')
        && !id.starts_with('$')
    {
        path_patient = Some(format!("Patient/{id}"));
    }
    Some(Classified {
        tenant,
        kind,
        entities,
        query,
        path_patient,
    })
}

/// `Type/id` of a `Location` (`{base}/Type/id/_history/n`).
fn location_entity(headers: &HeaderMap) -> Option<String> {
    let loc = headers.get(header::LOCATION)?.to_str().ok()?;
    let segs: Vec<&str> = loc.split('/').collect();
    let at = segs.iter().rposition(|s| *s == "_history")?;
    if at < 2 {
        return None;
    }
    Some(format!("{}/{}", segs[at - 2], segs[at - 1]))
}

/// Records one AuditEvent per request under `/fhir/`. The event is handed to the batching
/// writer; the response never waits for the database.
pub async fn record_interaction(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let Some(trail) = state.audit.clone() else {
        return next.run(req).await;
    };
    let method = req.method().clone();
    let Some(c) = classify(&method, req.uri().path(), req.uri().query()) else {
        return next.run(req).await;
    };
    let address =
        crate::auth::request_ip(&state, req.extensions(), req.headers()).map(|ip| ip.to_string());
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let purpose = req
        .headers()
        .get("x-purpose-of-use")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=32).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_string);
    let at_us = medicus_audit::now_us();

    let response = next.run(req).await;

    let status = response.status().as_u16();
    let unknown_tenant = response.extensions().get::<UnknownTenantMarker>().is_some();
    let mut event = AuditEvent::new((!unknown_tenant).then(|| c.tenant.clone()), c.kind);
    if c.kind == Kind::Transaction
        && let Some(ResponseBundleType(t)) = response.extensions().get::<ResponseBundleType>()
        && t == "batch-response"
    {
        event.kind = Kind::Batch;
        event.action = Action::E;
    }
    event.at_us = at_us;
    event.entities = c.entities;
    if c.kind == Kind::Create
        && let Some(e) = location_entity(response.headers())
    {
        event.entities.push(e);
    }
    event.query = c.query;
    event.status = status;
    event.outcome = OutcomeCode::from_http(status);
    if unknown_tenant {
        event.outcome_desc = Some("unknown tenant".into());
    }
    event.address = address;
    event.request_id = request_id;
    event.purpose = purpose;
    if let Some(actor) = response.extensions().get::<AuditActor>() {
        event.agent.user = Some(actor.user.clone());
        event.agent.client = Some(actor.client.clone());
        event.agent.roles = actor.roles.clone();
    }
    let mut subjects: BTreeSet<String> = response
        .extensions()
        .get::<AuditSubjects>()
        .map(|s| s.0.iter().cloned().collect())
        .unwrap_or_default();
    subjects.extend(c.path_patient);
    event.subjects = subjects.into_iter().collect();
    hand_over(&trail, event).await;
    response
}

/// Hands `event` to the trail; when its channel is full, waits on a blocking thread (the
/// event is never dropped, and no runtime thread blocks).
async fn hand_over(trail: &AuditTrail, event: AuditEvent) {
    match trail.try_record(event) {
        Ok(()) => {}
        Err(TryRecord::Full(event)) => {
            let trail = trail.clone();
            let done = tokio::task::spawn_blocking(move || trail.record(*event)).await;
            if !matches!(done, Ok(Ok(()))) {
                tracing::error!("audit event could not be handed to the writer");
            }
        }
        Err(TryRecord::Failed(e)) => tracing::error!(error = %e, "audit event not recorded"),
    }
}

// ---- the read side -------------------------------------------------------------------------

/// Access control for reading a tenant's audit trail: the policy's Audit category (the
/// tenant's admins), unrestricted.
fn authorize_audit_read(ctx: &RequestContext, interaction: Interaction) -> Result<(), FhirError> {
    let reach = ctx.access.require(interaction, "AuditEvent")?;
    if !reach.is_unrestricted() {
        return Err(FhirError::Forbidden(
            "the audit trail is readable only without a patient or constraint restriction".into(),
        ));
    }
    Ok(())
}

/// Access control for a patient's access log: the tenant's admins, and the patient themself
/// (the policy answers with the patient's own compartment, which must be this record).
fn authorize_access_log(ctx: &RequestContext, patient_id: &str) -> Result<(), FhirError> {
    match ctx
        .access
        .require(Interaction::Operation("access-log".into()), "Patient")?
    {
        Reach::All { .. } => Ok(()),
        Reach::Patient { patient, .. } if patient == patient_id => Ok(()),
        Reach::Patient { .. } => Err(FhirError::Forbidden(
            "a patient may read the access log of their own record only".into(),
        )),
    }
}

/// `date` with a FHIR prefix as an `[from, to)` bound in microseconds, intersected into `f`.
fn apply_date(f: &mut EventFilter, value: &str) -> Result<(), FhirError> {
    let prefixes = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"];
    let (prefix, date) = match value.get(..2) {
        Some(p) if prefixes.contains(&p) && value.len() > 2 => (p, &value[2..]),
        _ => ("eq", value),
    };
    let range = medicus_store::index::datetime::parse_range(date)
        .ok_or_else(|| FhirError::bad_request(format!("date: '{value}' is not a FHIR date")))?;
    let lo = range.lo.saturating_mul(1000);
    let hi_excl = range.hi.saturating_add(1).saturating_mul(1000);
    let (from, to) = match prefix {
        "eq" | "ap" => (Some(lo), Some(hi_excl)),
        "ge" => (Some(lo), None),
        "gt" | "sa" => (Some(hi_excl), None),
        "le" => (None, Some(hi_excl)),
        "lt" | "eb" => (None, Some(lo)),
        _ => {
            return Err(FhirError::NotSupported(
                "date: the prefix 'ne' is not supported on AuditEvent".into(),
            ));
        }
    };
    if let Some(from) = from {
        f.from_us = Some(f.from_us.map_or(from, |x| x.max(from)));
    }
    if let Some(to) = to {
        f.to_us = Some(f.to_us.map_or(to, |x| x.min(to)));
    }
    Ok(())
}

fn code_of(token: &str) -> &str {
    token.rsplit_once('|').map_or(token, |(_, c)| c)
}

struct SearchRequest {
    filter: EventFilter,
    count: usize,
    before: Option<i64>,
    /// The parameters to repeat in paging links (without `_before`).
    kept: Vec<(String, String)>,
}

fn parse_search(state: &AppState, query: Option<&str>) -> Result<SearchRequest, FhirError> {
    let pairs = query.map(parse_pairs).unwrap_or_default();
    let mut filter = EventFilter::default();
    let mut count = state.config.default_page_size;
    let mut before = None;
    let mut kept = Vec::new();
    for (name, value) in &pairs {
        let values = || value.split(',').filter(|v| !v.is_empty());
        match name.as_str() {
            "date" => apply_date(&mut filter, value)?,
            "patient" => {
                let reference = if value.contains('/') {
                    value.clone()
                } else {
                    format!("Patient/{value}")
                };
                filter.subject = Some(patient_of_reference(&reference).ok_or_else(|| {
                    FhirError::bad_request("patient: expected Patient/{id} or an id")
                })?);
            }
            "entity" | "entity-id" => filter.entity.extend(values().map(str::to_string)),
            "action" => {
                for v in values() {
                    filter.action.push(Action::parse(v).ok_or_else(|| {
                        FhirError::bad_request(format!("action: unknown code '{v}'"))
                    })?);
                }
            }
            "outcome" => {
                for v in values() {
                    filter
                        .outcome
                        .push(OutcomeCode::parse_fhir(code_of(v)).ok_or_else(|| {
                            FhirError::bad_request(format!("outcome: unknown code '{v}'"))
                        })?);
                }
            }
            "type" | "subtype" => filter.kind.extend(values().map(|v| code_of(v).to_string())),
            "_count" => {
                count = value
                    .parse::<usize>()
                    .map_err(|_| FhirError::bad_request("_count: expected a number"))?
                    .min(state.config.max_page_size);
            }
            "_before" => {
                before = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| FhirError::bad_request("_before: expected a number"))?,
                );
                continue;
            }
            // Format parameters are handled by the format middleware; others are ignored
            // (lenient handling), as for other resource types.
            _ => {}
        }
        kept.push((name.clone(), value.clone()));
    }
    Ok(SearchRequest {
        filter,
        count,
        before,
        kept,
    })
}

/// Runs a chain search on a blocking thread after flushing what is queued, so a reader sees
/// every event recorded before its request.
async fn search_chain(
    state: &AppState,
    ctx: &RequestContext,
    req: SearchRequest,
    self_path: &str,
) -> Result<Response, FhirError> {
    let store = state.store.clone();
    let trail = state.audit.clone();
    let tenant = ctx.tenant.clone();
    let (filter, count, before) = (req.filter, req.count, req.before);
    let (page, resources) = crate::fhir::http::blocking(move || {
        if !store.tenant_exists(&tenant)? {
            return Err(FhirError::UnknownTenant);
        }
        if let Some(t) = trail
            && let Err(e) = t.flush()
        {
            tracing::warn!(error = %e, "audit flush before a read failed");
        }
        let page = search(&*store, &tenant, &filter, count, before)
            .map_err(|e| FhirError::Internal(e.to_string()))?;
        let resources = page
            .entries
            .iter()
            .map(|e| to_fhir(e, OBSERVER))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| FhirError::Internal(e.to_string()))?;
        Ok((page, resources))
    })
    .await?;
    let base = &ctx.fhir_base;
    let mut bundle = new_bundle("searchset");
    let link_for = |before: Option<i64>| {
        let mut pairs: Vec<(&str, String)> = req
            .kept
            .iter()
            .map(|(n, v)| (n.as_str(), v.clone()))
            .collect();
        if let Some(b) = before {
            pairs.push(("_before", b.to_string()));
        }
        let q = encode_pairs(pairs.iter().map(|(n, v)| (*n, v.as_str())));
        if q.is_empty() {
            format!("{base}/{self_path}")
        } else {
            format!("{base}/{self_path}?{q}")
        }
    };
    let mut links = vec![link("self", link_for(before))];
    if let Some(next) = page.next_before {
        links.push(link("next", link_for(Some(next))));
    }
    bundle.insert("link".into(), Value::Array(links));
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|r| {
            let id = r["id"].as_str().unwrap_or_default().to_string();
            json!({
                "fullUrl": format!("{base}/AuditEvent/{id}"),
                "resource": r,
                "search": {"mode": "match"},
            })
        })
        .collect();
    bundle.insert("entry".into(), Value::Array(entries));
    Ok(FhirResponse::ok(Value::Object(bundle)).into_response())
}

/// `GET /fhir/{tenant}/AuditEvent`.
pub async fn search_audit_events(
    State(state): State<AppState>,
    ctx: RequestContext,
    RawQuery(query): RawQuery,
) -> Result<Response, FhirError> {
    authorize_audit_read(&ctx, Interaction::Search)?;
    let req = parse_search(&state, query.as_deref())?;
    search_chain(&state, &ctx, req, "AuditEvent").await
}

/// `GET /fhir/{tenant}/Patient/{id}/$access-log`: who accessed this patient's data.
pub async fn access_log(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path((_tenant, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, FhirError> {
    authorize_access_log(&ctx, &id)?;
    let mut req = parse_search(&state, query.as_deref())?;
    req.filter.subject = Some(format!("Patient/{id}"));
    req.kept.retain(|(n, _)| n != "patient");
    search_chain(&state, &ctx, req, &format!("Patient/{id}/$access-log")).await
}

/// `GET /fhir/{tenant}/AuditEvent/{id}`: the entry with that seq.
pub async fn read_audit_event(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path((_tenant, id)): Path<(String, String)>,
) -> Result<Response, FhirError> {
    authorize_audit_read(&ctx, Interaction::Read)?;
    let not_found = || FhirError::NotFound {
        resource_type: "AuditEvent".into(),
        id: id.clone(),
    };
    let seq: i64 = id.parse().map_err(|_| not_found())?;
    if seq < 1 {
        return Err(not_found());
    }
    let store = state.store.clone();
    let trail = state.audit.clone();
    let tenant = ctx.tenant.clone();
    let entry = crate::fhir::http::blocking(move || {
        if !store.tenant_exists(&tenant)? {
            return Err(FhirError::UnknownTenant);
        }
        if let Some(t) = trail
            && let Err(e) = t.flush()
        {
            tracing::warn!(error = %e, "audit flush before a read failed");
        }
        let mut found = store.audit_query(
            &tenant,
            &medicus_store::AuditQuery {
                after_seq: Some(seq - 1),
                limit: 1,
                ..Default::default()
            },
        )?;
        Ok(found.pop().filter(|e| e.seq == seq))
    })
    .await?
    .ok_or_else(not_found)?;
    let resource = to_fhir(&entry, OBSERVER).map_err(|e| FhirError::Internal(e.to_string()))?;
    let mut response = FhirResponse::ok(resource);
    response = response.header(
        header::LAST_MODIFIED,
        &crate::fhir::time_fmt::http_date(entry.at_us),
    );
    Ok(response.into_response())
}

/// Any write to `AuditEvent`: the trail is append-only and written by the server alone.
pub async fn refuse_write() -> FhirError {
    FhirError::MethodNotAllowed(
        "AuditEvent is read-only: the server writes the audit trail itself".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_to_patients() {
        assert_eq!(
            patient_of_reference("Patient/1").as_deref(),
            Some("Patient/1")
        );
        assert_eq!(
            patient_of_reference("http://x/fhir/t/Patient/1/_history/2").as_deref(),
            Some("Patient/1")
        );
        assert_eq!(patient_of_reference("Group/1"), None);
        assert_eq!(patient_of_reference("Patient/"), None);
    }

    #[test]
    fn compartment_patients_of_bodies() {
        let obs = json!({"resourceType": "Observation", "id": "o", "status": "final",
            "code": {"text": "x"}, "subject": {"reference": "Patient/p1"},
            "performer": [{"reference": "Practitioner/d"}]});
        assert_eq!(patients_of_body(&obs), ["Patient/p1"]);
        let bundle = json!({"resourceType": "Bundle", "type": "searchset", "entry": [
            {"resource": obs},
            {"resource": {"resourceType": "Patient", "id": "p2"}},
            {"resource": {"resourceType": "Practitioner", "id": "d"}},
            {"response": {"location": "Patient/p3/_history/1", "status": "201"}}
        ]});
        assert_eq!(
            patients_of_body(&bundle),
            ["Patient/p1", "Patient/p2", "Patient/p3"]
        );
    }

    #[test]
    fn paths_classify() {
        assert!(
            classify(
                &Method::GET,
                "/fhir/t/.well-known/smart-configuration",
                None
            )
            .is_none()
        );
        let c = classify(&Method::GET, "/fhir/t/Observation/1", None).unwrap();
        assert_eq!(
            (c.kind, c.entities.clone()),
            (Kind::Read, vec!["Observation/1".to_string()])
        );
        let c = classify(
            &Method::GET,
            "/fhir/t/Patient/1/Observation",
            Some("code=x"),
        )
        .unwrap();
        assert_eq!(c.kind, Kind::SearchType);
        assert_eq!(c.path_patient.as_deref(), Some("Patient/1"));
        assert_eq!(c.query.as_deref(), Some("Observation?code=x"));
        let c = classify(&Method::POST, "/fhir/t/$import", None).unwrap();
        assert_eq!(
            (c.kind, c.query.as_deref()),
            (Kind::Operation, Some("$import"))
        );
        let c = classify(&Method::GET, "/fhir/t/Patient/_history", None).unwrap();
        assert_eq!((c.kind, c.path_patient), (Kind::HistoryType, None));
        let c = classify(&Method::GET, "/fhir/t/Patient/9/_history/2", None).unwrap();
        assert_eq!(c.kind, Kind::Vread);
        assert_eq!(c.entities, ["Patient/9/_history/2"]);
        assert!(classify(&Method::GET, "/healthz", None).is_none());
    }
}
