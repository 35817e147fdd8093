//! The feasibility API: `POST /research/feasibility` (a CCDL v2 query, JSON or the short text
//! form, answered with an obfuscated count or "too small") and `GET /research/feasibility/terms`
//! (the term catalogue: the codes present, no counts).
//!
//! The tenant is the token's. `/research/{tenant}/feasibility[/terms]` names it explicitly and
//! must then be the token's tenant (403 otherwise), so a client that keeps one URL per site
//! cannot ask the wrong one by mistake.
//!
//! These routes lie outside `/fhir/`, so neither the `authenticate` nor the audit middleware
//! sees them: the handlers verify the bearer token themselves (401 with `WWW-Authenticate`),
//! demand the researcher role (403), and record one AuditEvent per request, refused ones
//! included. The event names the operation and a digest of the query, never the count or the
//! query text (a count over a small cohort is data about patients).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use medicus_audit::{AuditEvent, Kind, OutcomeCode, TryRecord};
use medicus_auth::{Principal, Role};
use medicus_cohort::service::{FeasibilityService, ServiceError};
use serde_json::{Value, json};

use crate::auth::BearerError;
use crate::context::RequestId;
use crate::state::AppState;

/// The audit entity of a feasibility query and of a catalogue read.
const QUERY_ENTITY: &str = "$feasibility";
const TERMS_ENTITY: &str = "$feasibility-terms";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/research/feasibility", post(query_own))
        .route("/research/feasibility/terms", get(terms_own))
        .route("/research/{tenant}/feasibility", post(query_named))
        .route("/research/{tenant}/feasibility/terms", get(terms_named))
}

/// A refusal: status, OperationOutcome issue code, message, the JSON pointer of the failing
/// CCDL part, and `Retry-After` / `WWW-Authenticate` when they apply.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
    pointer: Option<String>,
    retry_after: Option<u64>,
    challenge: Option<String>,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            code,
            message: message.into(),
            pointer: None,
            retry_after: None,
            challenge: None,
        }
    }

    fn unauthorized(message: &str, error: Option<&str>) -> Refusal {
        let mut r = Refusal::new(StatusCode::UNAUTHORIZED, "login", message);
        r.challenge = Some(match error {
            Some(code) => format!("Bearer realm=\"medicus\", error=\"{code}\""),
            None => "Bearer realm=\"medicus\"".to_owned(),
        });
        r
    }

    fn forbidden(message: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut issue = json!({
            "severity": "error",
            "code": self.code,
            "diagnostics": self.message,
        });
        if let Some(p) = &self.pointer {
            // FHIRPath cannot address a CCDL document; the pointer is the location that can.
            issue["expression"] = json!([p]);
        }
        let body = json!({"resourceType": "OperationOutcome", "issue": [issue]});
        let mut response = (self.status, json_body(&body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/fhir+json"),
        );
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            headers.insert(header::RETRY_AFTER, v);
        }
        if let Some(c) = self.challenge.as_deref()
            && let Ok(v) = HeaderValue::from_str(c)
        {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
        response
    }
}

fn json_body(v: &Value) -> String {
    // Serialising a `Value` cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

fn ok_json(v: &Value) -> Response {
    let mut response = (StatusCode::OK, json_body(v)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Who asked, for the audit event; filled as far as the request got.
#[derive(Default)]
struct Asker {
    tenant: Option<String>,
    user: Option<String>,
    client: Option<String>,
    roles: Vec<String>,
}

impl Asker {
    fn of(p: &Principal) -> Asker {
        Asker {
            tenant: Some(p.tenant.clone()),
            user: Some(p.subject.clone()),
            client: Some(p.client_id.clone()),
            roles: p.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        }
    }
}

/// Verifies the bearer token, the researcher role and the tenant named by the URL, if any.
async fn authorise(
    state: &AppState,
    headers: &HeaderMap,
    url_tenant: Option<&str>,
    asker: &mut Asker,
) -> Result<Arc<Principal>, Refusal> {
    let Some(auth) = state.auth.as_ref() else {
        return Err(Refusal::unauthorized(
            "this server has no authorisation server configured; no token can be accepted",
            None,
        ));
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = match auth.verify_bearer(authorization).await {
        Ok(p) => p,
        Err(BearerError::Missing) => {
            return Err(Refusal::unauthorized(
                "an access token is required (Authorization: Bearer …)",
                None,
            ));
        }
        Err(BearerError::Invalid) => {
            return Err(Refusal::unauthorized(
                "the access token is invalid, expired or revoked",
                Some("invalid_token"),
            ));
        }
        Err(BearerError::Unavailable) => {
            return Err(Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "transient",
                "the token check could not read the store; retry later",
            ));
        }
    };
    *asker = Asker::of(&principal);
    if let Some(t) = url_tenant
        && t != principal.tenant
    {
        return Err(Refusal::forbidden(
            "the access token was issued for another tenant",
        ));
    }
    if !principal.has_role(Role::Researcher) {
        return Err(Refusal::forbidden(
            "feasibility queries are for users with the researcher role",
        ));
    }
    Ok(principal)
}

fn service(state: &AppState) -> Result<Arc<FeasibilityService>, Refusal> {
    state.feasibility.clone().ok_or_else(|| {
        Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-supported",
            "feasibility queries are not enabled on this server (no cohort index)",
        )
    })
}

/// Days since 1970-01-01, UTC: the day ages and consent periods are evaluated on.
fn today() -> i32 {
    let secs = time::OffsetDateTime::now_utc().unix_timestamp();
    i32::try_from(secs.div_euclid(86_400)).unwrap_or(i32::MAX)
}

/// `Some(true)` for the text form, `Some(false)` for JSON, `None` when no type is given (the
/// service tells them apart by the first character); an unsupported type is a 415.
fn body_kind(headers: &HeaderMap) -> Result<Option<bool>, Refusal> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(None);
    };
    let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    match essence {
        "text/plain" => Ok(Some(true)),
        "application/json" => Ok(Some(false)),
        e if e.starts_with("application/") && e.ends_with("+json") => Ok(Some(false)),
        _ => Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            "send the CCDL as application/json or the text form as text/plain",
        )),
    }
}

async fn query_own(State(state): State<AppState>, req: Request) -> Response {
    query(state, None, req).await
}

async fn query_named(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    req: Request,
) -> Response {
    query(state, Some(tenant), req).await
}

async fn terms_own(State(state): State<AppState>, req: Request) -> Response {
    terms(state, None, req).await
}

async fn terms_named(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    req: Request,
) -> Response {
    terms(state, Some(tenant), req).await
}

/// What the audit event says about a request beyond who asked.
struct Audited {
    entity: &'static str,
    query: Option<String>,
    address: Option<String>,
    request_id: Option<String>,
    at_us: i64,
}

impl Audited {
    fn start(state: &AppState, req: &Request, entity: &'static str) -> Audited {
        Audited {
            entity,
            query: None,
            address: crate::auth::request_ip(state, req.extensions(), req.headers())
                .map(|ip| ip.to_string()),
            request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
            at_us: medicus_audit::now_us(),
        }
    }
}

async fn query(state: AppState, url_tenant: Option<String>, req: Request) -> Response {
    let mut audited = Audited::start(&state, &req, QUERY_ENTITY);
    let mut asker = Asker::default();
    let (parts, body) = req.into_parts();
    let result = async {
        let principal =
            authorise(&state, &parts.headers, url_tenant.as_deref(), &mut asker).await?;
        let svc = service(&state)?;
        let text_form = body_kind(&parts.headers)?;
        let limit = state.config.max_body_bytes;
        let bytes: Bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
            Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-long",
                format!("the query is larger than {limit} bytes"),
            )
        })?;
        // A digest ties repeated queries together in the trail without recording them.
        audited.query = Some(format!(
            "feasibility sha256={}",
            hex(&medicus_auth::crypto::sha256(&bytes))
        ));
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| {
                Refusal::new(StatusCode::BAD_REQUEST, "invalid", "the query is not UTF-8")
            })?
            .to_owned();
        if text_form == Some(false) && !text.trim_start().starts_with('{') {
            let mut r = Refusal::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                "a CCDL body must be a JSON object",
            );
            r.pointer = Some(String::new());
            return Err(r);
        }
        if text_form == Some(true) && text.trim_start().starts_with('{') {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                "CCDL JSON must be sent as application/json; text/plain is for the text form",
            ));
        }
        let tenant = principal.tenant.clone();
        let user = format!("{}/{}", principal.tenant, principal.subject);
        let answer =
            tokio::task::spawn_blocking(move || svc.feasibility(&tenant, &user, &text, today()))
                .await
                .map_err(|_| {
                    Refusal::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "exception",
                        "the query failed",
                    )
                })?;
        match answer {
            Ok(a) => Ok(ok_json(&serde_json::to_value(&a).unwrap_or(Value::Null))),
            Err(ServiceError::BadQuery(e)) => {
                let mut r = Refusal::new(StatusCode::BAD_REQUEST, "invalid", e.to_string());
                r.pointer = e.pointer().map(str::to_owned);
                if matches!(e, medicus_cohort::QueryError::TooLarge { .. }) {
                    r.code = "too-costly";
                }
                Err(r)
            }
            Err(ServiceError::BodyTooLarge(n)) => Err(Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-long",
                format!("the query is larger than {n} bytes"),
            )),
            Err(ServiceError::RateLimited { retry_after_secs }) => {
                let mut r = Refusal::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "throttled",
                    format!("rate limit reached; retry after {retry_after_secs} s"),
                );
                r.retry_after = Some(retry_after_secs);
                Err(r)
            }
        }
    }
    .await;
    finish(&state, asker, audited, result).await
}

async fn terms(state: AppState, url_tenant: Option<String>, req: Request) -> Response {
    let audited = Audited::start(&state, &req, TERMS_ENTITY);
    let mut asker = Asker::default();
    let headers = req.headers().clone();
    let result = async {
        let principal = authorise(&state, &headers, url_tenant.as_deref(), &mut asker).await?;
        let svc = service(&state)?;
        let tenant = principal.tenant.clone();
        let terms = tokio::task::spawn_blocking(move || svc.catalogue(&tenant))
            .await
            .map_err(|_| {
                Refusal::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "exception",
                    "the catalogue failed",
                )
            })?;
        Ok(ok_json(&json!({ "terms": terms })))
    }
    .await;
    finish(&state, asker, audited, result).await
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Records the event and renders the response.
async fn finish(
    state: &AppState,
    asker: Asker,
    audited: Audited,
    result: Result<Response, Refusal>,
) -> Response {
    let (response, desc) = match result {
        Ok(r) => (r, None),
        Err(refusal) => {
            let desc = refusal.code;
            (refusal.into_response(), Some(desc.to_owned()))
        }
    };
    if let Some(trail) = state.audit.clone() {
        let status = response.status().as_u16();
        let mut event = AuditEvent::new(asker.tenant, Kind::Operation);
        event.at_us = audited.at_us;
        event.entities = vec![audited.entity.to_owned()];
        event.query = audited.query;
        event.status = status;
        event.outcome = OutcomeCode::from_http(status);
        event.outcome_desc = desc;
        event.address = audited.address;
        event.request_id = audited.request_id;
        event.agent.user = asker.user;
        event.agent.client = asker.client;
        event.agent.roles = asker.roles;
        match trail.try_record(event) {
            Ok(()) => {}
            Err(TryRecord::Full(event)) => {
                let done = tokio::task::spawn_blocking(move || trail.record(*event)).await;
                if !matches!(done, Ok(Ok(()))) {
                    tracing::error!("audit event could not be handed to the writer");
                }
            }
            Err(TryRecord::Failed(e)) => tracing::error!(error = %e, "audit event not recorded"),
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_type(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        h
    }

    #[test]
    fn body_kinds() {
        assert_eq!(body_kind(&HeaderMap::new()).ok(), Some(None));
        assert_eq!(
            body_kind(&with_type("text/plain; charset=utf-8")).ok(),
            Some(Some(true))
        );
        assert_eq!(
            body_kind(&with_type("application/json")).ok(),
            Some(Some(false))
        );
        assert_eq!(
            body_kind(&with_type("application/fhir+json")).ok(),
            Some(Some(false))
        );
        let refused = body_kind(&with_type("application/xml")).err().unwrap();
        assert_eq!(refused.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[tokio::test]
    async fn refusals_are_operation_outcomes_with_pointer_and_headers() {
        let mut r = Refusal::new(StatusCode::TOO_MANY_REQUESTS, "throttled", "slow down");
        r.retry_after = Some(42);
        r.pointer = Some("/inclusionCriteria/0/0".into());
        let response = r.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "42");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["resourceType"], "OperationOutcome");
        assert_eq!(v["issue"][0]["code"], "throttled");
        assert_eq!(v["issue"][0]["expression"][0], "/inclusionCriteria/0/0");
        let response = Refusal::unauthorized("no token", Some("invalid_token")).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(
            response.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );
    }
}
