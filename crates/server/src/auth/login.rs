//! The browser side of the authorization-code flow: `GET|POST /auth/authorize` (validate,
//! start a login session, show the login page), `POST /auth/login` (password and TOTP, then
//! the consent page with the patient picker), `POST /auth/consent` (patient search, approve
//! → redirect with code and state, deny → `error=access_denied`).

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use medicus_audit::{AuditEvent, Kind, OutcomeCode};
use medicus_auth::grants::{AuthorizeError, Consent, ValidAuthorize};
use medicus_auth::policy::{category, role_bound};
use medicus_auth::scope::Perms;
use medicus_auth::users::{LoginOutcome, TotpEnrolment, User};
use medicus_auth::{Auth, AuthError, OAuthError, OAuthErrorCode, Role, Scope, ScopeSet};
use medicus_store::Store;
use serde_json::Value;

use super::pages::{self, ConsentView, LoginView, Picker};
use super::session::{self, AuthorizeParams, LoginSession};
use super::{AuthState, Authz, blocking};
use crate::fhir::query::parse_pairs;
use crate::state::AppState;

const FORM_LIMIT: usize = 64 * 1024;
/// The issuer an authenticator app shows beside the account.
pub(super) const TOTP_ISSUER: &str = "medicus";
/// Patients listed by the picker per search.
const PICKER_PAGE: usize = 20;

pub(crate) async fn authorize_get(Authz(auth): Authz, RawQuery(query): RawQuery) -> Response {
    let pairs = query.as_deref().map(parse_pairs).unwrap_or_default();
    authorize(auth, pairs).await
}

/// SMART `authorize-post`: the same parameters as a form.
pub(crate) async fn authorize_post(Authz(auth): Authz, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    match read_form(&parts.headers, body).await {
        Ok(pairs) => authorize(auth, pairs).await,
        Err(message) => pages::error_page(StatusCode::BAD_REQUEST, message),
    }
}

enum Started {
    Login {
        client_name: String,
        csrf: String,
        session_id: String,
        providers: Vec<(String, String)>,
    },
    Refused(AuthorizeError),
}

async fn authorize(auth: AuthState, pairs: Vec<(String, String)>) -> Response {
    let params = match AuthorizeParams::from_pairs(&pairs) {
        Ok(p) => p,
        Err(message) => return pages::error_page(StatusCode::BAD_REQUEST, &message),
    };
    let core = auth.core.clone();
    let ttl = auth.web.login_session_ttl_s;
    let started = blocking(move || match core.authorize(&params.to_request()) {
        Err(e) => Ok(Started::Refused(e)),
        Ok(valid) => {
            let s = LoginSession::new(params, ttl)?;
            let session_id = session::create(core.records(), &s)?;
            Ok(Started::Login {
                providers: super::federation::offered(&core, &valid.tenant)?,
                client_name: valid.client.name,
                csrf: s.csrf,
                session_id,
            })
        }
    })
    .await;
    match started {
        Ok(Started::Login {
            client_name,
            csrf,
            session_id,
            providers,
        }) => {
            let mut response = pages::login_page(
                StatusCode::OK,
                &LoginView {
                    client_name: &client_name,
                    csrf: &csrf,
                    login: "",
                    error: None,
                    totp: false,
                    providers: &providers,
                },
            );
            set_session_cookie(&mut response, &auth, Some(&session_id));
            response
        }
        Ok(Started::Refused(e)) => refused(&e),
        Err(e) => unavailable(&e),
    }
}

/// An invalid authorization request: back to the client when its redirect URI is known to
/// be the client's, else an error page (never an open redirect).
pub(super) fn refused(e: &AuthorizeError) -> Response {
    match (e.redirect_url(), e) {
        (Some(url), _) => Redirect::to(&url).into_response(),
        (None, AuthorizeError::NoRedirect(error)) => {
            pages::error_page(StatusCode::BAD_REQUEST, &error.description)
        }
        (None, _) => pages::error_page(StatusCode::BAD_REQUEST, "invalid authorization request"),
    }
}

pub(super) fn unavailable(e: &AuthError) -> Response {
    tracing::error!(error = %e, "auth page failed");
    pages::error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "The service is temporarily unavailable.",
    )
}

pub(super) fn set_session_cookie(response: &mut Response, auth: &AuthState, id: Option<&str>) {
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(id, auth.secure_cookies(), auth.web.login_session_ttl_s),
    );
}

/// The pairs of an `application/x-www-form-urlencoded` body.
pub(crate) async fn read_form(
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<(String, String)>, &'static str> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return Err("expected an application/x-www-form-urlencoded form");
    }
    let bytes = to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| "form too large")?;
    let text = std::str::from_utf8(&bytes).map_err(|_| "form is not UTF-8")?;
    Ok(parse_pairs(text))
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

pub(super) fn session_lost() -> Response {
    pages::error_page(
        StatusCode::BAD_REQUEST,
        "Your sign-in session has expired, or your browser does not accept cookies.",
    )
}

pub(super) fn csrf_failed() -> Response {
    pages::error_page(
        StatusCode::FORBIDDEN,
        "The form could not be verified (missing or wrong security token).",
    )
}

/// What the consent page shows, computed on a blocking thread.
pub(super) struct ConsentData {
    client_name: String,
    user_name: String,
    scopes: Vec<String>,
    picker: Picker,
    /// A local account without a second factor may set one up from here.
    offer_totp: bool,
}

enum LoginStep {
    SessionLost,
    CsrfFailed,
    Again {
        client_name: String,
        csrf: String,
        status: StatusCode,
        error: Option<&'static str>,
        totp: bool,
        providers: Vec<(String, String)>,
    },
    /// An admin without a second factor: enrol one before anything else.
    Enrol {
        csrf: String,
        session_id: String,
        enrolment: TotpEnrolment,
    },
    Failed(StatusCode, String),
    Refused(AuthorizeError),
    Consent {
        data: ConsentData,
        csrf: String,
        session_id: String,
    },
}

pub(crate) async fn login(
    Authz(auth): Authz,
    State(state): State<AppState>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    // Counted before anything else, so that no form content escapes the limit.
    if let Err(retry_after) = auth.limiter.attempt(auth.client_ip(&parts)) {
        return too_many(retry_after);
    }
    let pairs = match read_form(&parts.headers, body).await {
        Ok(p) => p,
        Err(message) => return pages::error_page(StatusCode::BAD_REQUEST, message),
    };
    let Some(session_id) = session::session_id(&parts.headers, auth.secure_cookies()) else {
        return session_lost();
    };
    let login_name = field(&pairs, "login").unwrap_or("").to_owned();
    let core = auth.core.clone();
    let store = state.store.clone();
    let step = blocking(move || login_step(&core, &*store, &session_id, &pairs)).await;
    let step = match step {
        Ok((step, event)) => {
            if let Some(event) = event {
                super::audit(&state, &parts, event).await;
            }
            Ok(step)
        }
        Err(e) => Err(e),
    };
    match step {
        Ok(LoginStep::SessionLost) => session_lost(),
        Ok(LoginStep::CsrfFailed) => csrf_failed(),
        Ok(LoginStep::Again {
            client_name,
            csrf,
            status,
            error,
            totp,
            providers,
        }) => pages::login_page(
            status,
            &LoginView {
                client_name: &client_name,
                csrf: &csrf,
                login: &login_name,
                error,
                totp,
                providers: &providers,
            },
        ),
        Ok(LoginStep::Enrol {
            csrf,
            session_id,
            enrolment,
        }) => {
            let mut response = pages::totp_enrol_page(
                StatusCode::OK,
                &pages::EnrolView {
                    csrf: &csrf,
                    enrolment: Some(&enrolment),
                    error: None,
                },
            );
            set_session_cookie(&mut response, &auth, Some(&session_id));
            response
        }
        Ok(LoginStep::Failed(status, message)) => pages::error_page(status, &message),
        Ok(LoginStep::Refused(e)) => refused(&e),
        Ok(LoginStep::Consent {
            data,
            csrf,
            session_id,
        }) => {
            let mut response = consent_response(StatusCode::OK, &data, &csrf, None);
            set_session_cookie(&mut response, &auth, Some(&session_id));
            response
        }
        Err(e) => unavailable(&e),
    }
}

pub(super) fn too_many(retry_after: u64) -> Response {
    let mut response = pages::error_page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many sign-in attempts from your network. Wait a minute and try again.",
    );
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

fn login_step(
    core: &Auth,
    store: &dyn Store,
    session_id: &str,
    pairs: &[(String, String)],
) -> Result<(LoginStep, Option<AuditEvent>), AuthError> {
    let Some(s) = session::load(core.records(), session_id)? else {
        return Ok((LoginStep::SessionLost, None));
    };
    if !s.csrf_ok(field(pairs, "csrf")) {
        return Ok((LoginStep::CsrfFailed, None));
    }
    let valid = match core.authorize(&s.request.to_request()) {
        Ok(v) => v,
        Err(e) => return Ok((LoginStep::Refused(e), None)),
    };
    let providers = super::federation::offered(core, &valid.tenant)?;
    let again = |status, error, totp| LoginStep::Again {
        client_name: valid.client.name.clone(),
        csrf: s.csrf.clone(),
        status,
        error: Some(error),
        totp,
        providers: providers.clone(),
    };
    let login = field(pairs, "login").unwrap_or("");
    let password = field(pairs, "password").unwrap_or("");
    let totp = field(pairs, "totp")
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if login.is_empty() || password.is_empty() {
        let step = again(
            StatusCode::BAD_REQUEST,
            "Enter your user name and password.",
            totp.is_some(),
        );
        return Ok((step, None));
    }
    let failure = |step: LoginStep, status: StatusCode, why: &str, user: Option<&User>| {
        let event = login_event(&valid, Kind::LoginFailure, status, user, Some(why));
        Ok((step, Some(event)))
    };
    let user = match core.login(login, password, totp)? {
        LoginOutcome::Success(user) => user,
        LoginOutcome::TotpRequired => {
            let step = again(
                StatusCode::OK,
                "Enter your password again with the code from your authenticator app.",
                true,
            );
            return Ok((step, None));
        }
        LoginOutcome::Invalid => {
            let status = StatusCode::UNAUTHORIZED;
            let step = again(status, "Wrong user name or password.", totp.is_some());
            return failure(step, status, "invalid credentials", None);
        }
        LoginOutcome::TotpInvalid => {
            let status = StatusCode::UNAUTHORIZED;
            let step = again(status, "Wrong code.", true);
            return failure(step, status, "invalid second factor", None);
        }
        LoginOutcome::Locked { .. } => {
            let status = StatusCode::FORBIDDEN;
            let step = again(
                status,
                "Too many failed attempts for this account. Try again later.",
                totp.is_some(),
            );
            return failure(step, status, "account locked", None);
        }
        LoginOutcome::Disabled => {
            let status = StatusCode::FORBIDDEN;
            let step = LoginStep::Failed(status, "This account is disabled.".into());
            return failure(step, status, "account disabled", None);
        }
        LoginOutcome::TotpEnrolmentRequired(user) => {
            // The password was right; the session continues only on the enrolment page,
            // under a new id, and is logged in once a first code confirms the new secret.
            let mut next = LoginSession::new(s.request.clone(), core_ttl(&s))?;
            next.enrol_user_id = Some(user.id.clone());
            let Some(new_id) = session::rotate(core.records(), session_id, &next)? else {
                return Ok((LoginStep::SessionLost, None));
            };
            let enrolment = core.begin_totp(&user.id, TOTP_ISSUER)?;
            return Ok((
                LoginStep::Enrol {
                    csrf: next.csrf,
                    session_id: new_id,
                    enrolment,
                },
                None,
            ));
        }
    };
    if user.roles_in(&valid.tenant).is_empty() {
        session::take(core.records(), session_id)?;
        let status = StatusCode::FORBIDDEN;
        let step = LoginStep::Failed(
            status,
            "Your account has no access to the organisation of this application.".into(),
        );
        return failure(step, status, "no role in the tenant", Some(&user));
    }
    let mut next = LoginSession::new(s.request.clone(), core_ttl(&s))?;
    next.user_id = Some(user.id.clone());
    let Some(new_id) = session::rotate(core.records(), session_id, &next)? else {
        return Ok((LoginStep::SessionLost, None));
    };
    let data = consent_data(&valid, &user, store, "")?;
    let event = login_event(&valid, Kind::Login, StatusCode::OK, Some(&user), None);
    Ok((
        LoginStep::Consent {
            data,
            csrf: next.csrf,
            session_id: new_id,
        },
        Some(event),
    ))
}

/// A login event of the client's tenant (the user only when known: an unknown login name
/// and a wrong password look alike, and the name typed is not recorded).
pub(super) fn login_event(
    valid: &ValidAuthorize,
    kind: Kind,
    status: StatusCode,
    user: Option<&User>,
    why: Option<&str>,
) -> AuditEvent {
    let mut event = AuditEvent::new(Some(valid.tenant.clone()), kind);
    event.status = status.as_u16();
    event.outcome = if kind == Kind::Login {
        OutcomeCode::Success
    } else {
        OutcomeCode::Minor
    };
    event.outcome_desc = why.map(str::to_owned);
    event.agent.client = Some(valid.client.client_id.clone());
    if let Some(u) = user {
        event.agent.user = Some(u.id.clone());
        event.agent.roles = u
            .roles_in(&valid.tenant)
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect();
    }
    event
}

/// The rest of the session's lifetime (login does not extend it).
pub(super) fn core_ttl(s: &LoginSession) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    (s.expires_s - now).max(1)
}

pub(super) fn consent_data(
    valid: &ValidAuthorize,
    user: &User,
    store: &dyn Store,
    query: &str,
) -> Result<ConsentData, AuthError> {
    Ok(ConsentData {
        client_name: valid.client.name.clone(),
        user_name: user.display_name.clone(),
        scopes: valid.scopes.iter().map(ToString::to_string).collect(),
        picker: picker(valid, user, store, query)?,
        offer_totp: user.has_password() && !user.has_totp(),
    })
}

/// Roles that may read any Patient of the tenant choose the launch patient; a patient is
/// their own context (the core fills it in); anyone else cannot launch with a patient.
fn may_choose_patient(user: &User, tenant: &str) -> bool {
    user.roles_in(tenant).iter().any(|r| {
        let (perms, own_only) = role_bound(*r, category("Patient"));
        perms.contains(Perms::R) && !own_only
    })
}

fn picker(
    valid: &ValidAuthorize,
    user: &User,
    store: &dyn Store,
    query: &str,
) -> Result<Picker, AuthError> {
    if !valid.needs_patient_picker {
        return Ok(Picker::None);
    }
    if may_choose_patient(user, &valid.tenant) {
        let patients = find_patients(store, &valid.tenant, query)?;
        return Ok(Picker::Choose {
            query: query.to_owned(),
            patients,
        });
    }
    if user.roles_in(&valid.tenant).contains(&Role::Patient) {
        return Ok(Picker::None);
    }
    Ok(Picker::NotAllowed)
}

fn find_patients(
    store: &dyn Store,
    tenant: &str,
    name: &str,
) -> Result<Vec<(String, String)>, AuthError> {
    let mut params = vec![("_count".to_owned(), PICKER_PAGE.to_string())];
    let name = name.trim();
    if !name.is_empty() {
        params.push(("name".to_owned(), name.to_owned()));
    }
    let mut query =
        medicus_store::search::parse_search(medicus_fhir::r4(), Some("Patient"), &params)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
    query.total = false;
    let mut session = store.read_session(tenant)?;
    let page = session.search(Some("Patient"), &query)?;
    Ok(page
        .resources
        .iter()
        .filter_map(|r| {
            r.body
                .as_ref()
                .map(|b| (r.id.clone(), patient_label(&r.id, b)))
        })
        .collect())
}

/// "Given Family, born 1970-01-01 (id)".
fn patient_label(id: &str, patient: &Value) -> String {
    let name = patient["name"].get(0).map(|n| {
        n["text"].as_str().map(str::to_owned).unwrap_or_else(|| {
            let given: Vec<&str> = n["given"]
                .as_array()
                .map(|g| g.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut parts = given.join(" ");
            if let Some(family) = n["family"].as_str() {
                if !parts.is_empty() {
                    parts.push(' ');
                }
                parts.push_str(family);
            }
            parts
        })
    });
    let mut label = name
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "(no name)".into());
    if let Some(born) = patient["birthDate"].as_str() {
        label.push_str(", born ");
        label.push_str(born);
    }
    label.push_str(&format!(" ({id})"));
    label
}

pub(super) fn consent_response(
    status: StatusCode,
    data: &ConsentData,
    csrf: &str,
    error: Option<&str>,
) -> Response {
    let picker = match &data.picker {
        Picker::None => Picker::None,
        Picker::NotAllowed => Picker::NotAllowed,
        Picker::Choose { query, patients } => Picker::Choose {
            query: query.clone(),
            patients: patients.clone(),
        },
    };
    pages::consent_page(
        status,
        &ConsentView {
            client_name: &data.client_name,
            user_name: &data.user_name,
            csrf,
            scopes: &data.scopes,
            picker,
            error,
            offer_totp: data.offer_totp,
        },
    )
}

enum ConsentStep {
    SessionLost,
    CsrfFailed,
    Refused(AuthorizeError),
    Page {
        status: StatusCode,
        data: ConsentData,
        csrf: String,
        error: Option<&'static str>,
    },
    Redirect(String),
    Failed(StatusCode, String),
}

pub(crate) async fn consent(
    Authz(auth): Authz,
    State(state): State<AppState>,
    req: Request,
) -> Response {
    let (parts, body): (Parts, Body) = req.into_parts();
    let pairs = match read_form(&parts.headers, body).await {
        Ok(p) => p,
        Err(message) => return pages::error_page(StatusCode::BAD_REQUEST, message),
    };
    let Some(session_id) = session::session_id(&parts.headers, auth.secure_cookies()) else {
        return session_lost();
    };
    let core = auth.core.clone();
    let store = state.store.clone();
    let step = blocking(move || consent_step(&core, store, &session_id, &pairs)).await;
    match step {
        Ok(ConsentStep::SessionLost) => session_lost(),
        Ok(ConsentStep::CsrfFailed) => csrf_failed(),
        Ok(ConsentStep::Refused(e)) => refused(&e),
        Ok(ConsentStep::Page {
            status,
            data,
            csrf,
            error,
        }) => consent_response(status, &data, &csrf, error),
        Ok(ConsentStep::Redirect(url)) => {
            let mut response = Redirect::to(&url).into_response();
            set_session_cookie(&mut response, &auth, None);
            response
        }
        Ok(ConsentStep::Failed(status, message)) => pages::error_page(status, &message),
        Err(e) => unavailable(&e),
    }
}

fn consent_step(
    core: &Auth,
    store: Arc<dyn Store>,
    session_id: &str,
    pairs: &[(String, String)],
) -> Result<ConsentStep, AuthError> {
    let Some(s) = session::load(core.records(), session_id)? else {
        return Ok(ConsentStep::SessionLost);
    };
    if !s.csrf_ok(field(pairs, "csrf")) {
        return Ok(ConsentStep::CsrfFailed);
    }
    let Some(user_id) = s.user_id.clone() else {
        return Ok(ConsentStep::Failed(
            StatusCode::FORBIDDEN,
            "Sign in first.".into(),
        ));
    };
    let valid = match core.authorize(&s.request.to_request()) {
        Ok(v) => v,
        Err(e) => return Ok(ConsentStep::Refused(e)),
    };
    let Some(user) = core.user(&user_id)?.filter(|u| !u.disabled) else {
        session::take(core.records(), session_id)?;
        return Ok(ConsentStep::Failed(
            StatusCode::FORBIDDEN,
            "This account is disabled.".into(),
        ));
    };
    let page = |status, query: &str, error| -> Result<ConsentStep, AuthError> {
        Ok(ConsentStep::Page {
            status,
            data: consent_data(&valid, &user, &*store, query)?,
            csrf: s.csrf.clone(),
            error,
        })
    };
    let deny = |description: &str| {
        AuthorizeError::Redirect {
            redirect_uri: valid.redirect_uri.clone(),
            state: valid.state.clone(),
            error: OAuthError::new(OAuthErrorCode::AccessDenied, description),
        }
        .redirect_url()
        .unwrap_or_default()
    };
    let granted: Vec<&str> = pairs
        .iter()
        .filter(|(n, _)| n == "scope")
        .map(|(_, v)| v.as_str())
        .collect();
    match field(pairs, "action") {
        Some("search") => return page(StatusCode::OK, field(pairs, "name").unwrap_or(""), None),
        Some("approve") if !granted.is_empty() => {}
        Some("approve" | "deny") => {
            if session::take(core.records(), session_id)?.is_none() {
                return Ok(ConsentStep::SessionLost);
            }
            return Ok(ConsentStep::Redirect(deny("the user denied access")));
        }
        _ => return page(StatusCode::BAD_REQUEST, "", Some("Choose Allow or Deny.")),
    }
    let Ok(scopes) = ScopeSet::parse(&granted.join(" ")) else {
        return page(StatusCode::BAD_REQUEST, "", Some("Unknown scope."));
    };
    if !scopes.is_within(&valid.scopes) {
        return page(StatusCode::BAD_REQUEST, "", Some("Unknown scope."));
    }
    let mut patient = None;
    if valid.needs_patient_picker && scopes.has(&Scope::LaunchPatient) {
        if may_choose_patient(&user, &valid.tenant) {
            let Some(id) = field(pairs, "patient").filter(|p| !p.is_empty()) else {
                return page(StatusCode::BAD_REQUEST, "", Some("Choose a patient."));
            };
            let exists = store
                .read_session(&valid.tenant)?
                .read("Patient", id)?
                .is_some_and(|r| r.body.is_some());
            if !exists {
                return page(StatusCode::BAD_REQUEST, "", Some("No such patient."));
            }
            patient = Some(id.to_owned());
        } else if !user.roles_in(&valid.tenant).contains(&Role::Patient) {
            return page(
                StatusCode::FORBIDDEN,
                "",
                Some("Your role cannot choose a patient; untick launch/patient or deny."),
            );
        }
    }
    // Single use: a second submission of the same form finds no session.
    if session::take(core.records(), session_id)?.is_none() {
        return Ok(ConsentStep::SessionLost);
    }
    let consent = Consent {
        scopes: Some(scopes),
        patient,
    };
    match core.issue_code(&valid, &user, &consent) {
        Ok(url) => Ok(ConsentStep::Redirect(url)),
        Err(AuthError::OAuth(e)) => Ok(ConsentStep::Redirect(
            AuthorizeError::Redirect {
                redirect_uri: valid.redirect_uri.clone(),
                state: valid.state.clone(),
                error: e,
            }
            .redirect_url()
            .unwrap_or_default(),
        )),
        Err(AuthError::Invalid(message)) => {
            Ok(ConsentStep::Failed(StatusCode::BAD_REQUEST, message))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patient_labels() {
        let p = serde_json::json!({"name":[{"given":["Ann","B."],"family":"Cee"}],"birthDate":"1970-01-02"});
        assert_eq!(patient_label("p1", &p), "Ann B. Cee, born 1970-01-02 (p1)");
        assert_eq!(
            patient_label("p2", &serde_json::json!({})),
            "(no name) (p2)"
        );
    }
}
