//! `POST /auth/totp`: the TOTP enrolment an admin goes through at the first login without a
//! second factor (`LoginOutcome::TotpEnrolmentRequired`). The login step has checked the
//! password, stored a new sealed secret (`Auth::begin_totp`) and moved the session to
//! enrolment; here a first code from the app confirms the secret (`Auth::confirm_totp`), and
//! only then is the session logged in and the consent page shown. `action=restart` shows a
//! new secret. Any signed-in local account without a second factor may also choose to enrol
//! from the consent page (`action=begin`), which takes its session back to enrolment. Wrong codes count towards the per-IP login limit and end the session after
//! [`MAX_ATTEMPTS`]; every outcome that concerns the account is audited.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use medicus_audit::{AuditEvent, Kind};
use medicus_auth::users::TotpEnrolment;
use medicus_auth::{Auth, AuthError};
use medicus_store::Store;

use super::login::{
    ConsentData, TOTP_ISSUER, consent_data, consent_response, core_ttl, csrf_failed, login_event,
    read_form, refused, session_lost, set_session_cookie, too_many, unavailable,
};
use super::pages::{self, EnrolView};
use super::session::{self, LoginSession};
use super::{Authz, blocking};
use crate::state::AppState;

/// Wrong codes one enrolment session may send.
pub(crate) const MAX_ATTEMPTS: u32 = 5;

enum Step {
    SessionLost,
    CsrfFailed,
    Refused(medicus_auth::grants::AuthorizeError),
    Page {
        status: StatusCode,
        csrf: String,
        session_id: String,
        enrolment: Option<TotpEnrolment>,
        error: Option<&'static str>,
    },
    Failed(StatusCode, &'static str),
    Consent {
        data: ConsentData,
        csrf: String,
        session_id: String,
    },
}

pub(crate) async fn enrol(
    Authz(auth): Authz,
    State(state): State<AppState>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
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
    let core = auth.core.clone();
    let store = state.store.clone();
    let step = blocking(move || enrol_step(&core, &*store, &session_id, &pairs)).await;
    let step = match step {
        Ok((step, event)) => {
            if let Some(event) = event {
                super::audit(&state, &parts, event).await;
            }
            step
        }
        Err(e) => return unavailable(&e),
    };
    match step {
        Step::SessionLost => session_lost(),
        Step::CsrfFailed => csrf_failed(),
        Step::Refused(e) => refused(&e),
        Step::Failed(status, message) => pages::error_page(status, message),
        Step::Page {
            status,
            csrf,
            session_id,
            enrolment,
            error,
        } => {
            let mut response = pages::totp_enrol_page(
                status,
                &EnrolView {
                    csrf: &csrf,
                    enrolment: enrolment.as_ref(),
                    error,
                },
            );
            set_session_cookie(&mut response, &auth, Some(&session_id));
            response
        }
        Step::Consent {
            data,
            csrf,
            session_id,
        } => {
            let mut response = consent_response(StatusCode::OK, &data, &csrf, None);
            set_session_cookie(&mut response, &auth, Some(&session_id));
            response
        }
    }
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn enrol_step(
    core: &Auth,
    store: &dyn Store,
    session_id: &str,
    pairs: &[(String, String)],
) -> Result<(Step, Option<AuditEvent>), AuthError> {
    let Some(s) = session::load(core.records(), session_id)? else {
        return Ok((Step::SessionLost, None));
    };
    if !s.csrf_ok(field(pairs, "csrf")) {
        return Ok((Step::CsrfFailed, None));
    }
    // A signed-in local user without a second factor may choose to set one up (from the
    // consent page): the session goes back to enrolment until a code confirms it.
    let voluntary = s.enrol_user_id.is_none() && field(pairs, "action") == Some("begin");
    let Some(user_id) = s
        .enrol_user_id
        .clone()
        .or_else(|| s.user_id.clone().filter(|_| voluntary))
    else {
        return Ok((Step::Failed(StatusCode::FORBIDDEN, "Sign in first."), None));
    };
    let valid = match core.authorize(&s.request.to_request()) {
        Ok(v) => v,
        Err(e) => return Ok((Step::Refused(e), None)),
    };
    let Some(user) = core.user(&user_id)?.filter(|u| !u.disabled) else {
        session::take(core.records(), session_id)?;
        return Ok((
            Step::Failed(StatusCode::FORBIDDEN, "This account is disabled."),
            None,
        ));
    };
    // Every answer moves the session to a new id and CSRF token.
    let mut next = LoginSession::new(s.request.clone(), core_ttl(&s))?;
    next.enrol_user_id = Some(user_id.clone());
    next.enrol_attempts = s.enrol_attempts;
    if voluntary && (!user.has_password() || user.has_totp()) {
        return Ok((
            Step::Failed(
                StatusCode::BAD_REQUEST,
                "This account already has a second factor, or signs in elsewhere.",
            ),
            None,
        ));
    }
    if voluntary || field(pairs, "action") == Some("restart") {
        let Some(new_id) = session::rotate(core.records(), session_id, &next)? else {
            return Ok((Step::SessionLost, None));
        };
        let enrolment = core.begin_totp(&user_id, TOTP_ISSUER)?;
        return Ok((
            Step::Page {
                status: StatusCode::OK,
                csrf: next.csrf,
                session_id: new_id,
                enrolment: Some(enrolment),
                error: None,
            },
            None,
        ));
    }
    let code = field(pairs, "code").map(str::trim).unwrap_or("");
    let confirmed = !code.is_empty()
        && code.len() <= 10
        && match core.confirm_totp(&user_id, code) {
            Ok(ok) => ok,
            // The enrolment was replaced or finished meanwhile (another tab): a wrong code.
            Err(AuthError::Invalid(_)) => false,
            Err(e) => return Err(e),
        };
    if !confirmed {
        next.enrol_attempts = s.enrol_attempts.saturating_add(1);
        let event = login_event(
            &valid,
            Kind::LoginFailure,
            StatusCode::UNAUTHORIZED,
            Some(&user),
            Some("invalid second factor at enrolment"),
        );
        if next.enrol_attempts >= MAX_ATTEMPTS {
            session::take(core.records(), session_id)?;
            return Ok((
                Step::Failed(
                    StatusCode::FORBIDDEN,
                    "Too many wrong codes. Go back to the application and start again.",
                ),
                Some(event),
            ));
        }
        let Some(new_id) = session::rotate(core.records(), session_id, &next)? else {
            return Ok((Step::SessionLost, None));
        };
        return Ok((
            Step::Page {
                status: StatusCode::UNAUTHORIZED,
                csrf: next.csrf,
                session_id: new_id,
                enrolment: None,
                error: Some(
                    "Wrong code. Check the key in your app and its clock, or show a new key.",
                ),
            },
            Some(event),
        ));
    }
    // Re-read: the consent page must see the confirmed second factor.
    let user = core.user(&user_id)?.unwrap_or(user);
    if user.roles_in(&valid.tenant).is_empty() {
        session::take(core.records(), session_id)?;
        let event = login_event(
            &valid,
            Kind::LoginFailure,
            StatusCode::FORBIDDEN,
            Some(&user),
            Some("no role in the tenant"),
        );
        return Ok((
            Step::Failed(
                StatusCode::FORBIDDEN,
                "Your account has no access to the organisation of this application.",
            ),
            Some(event),
        ));
    }
    let mut next = LoginSession::new(s.request.clone(), core_ttl(&s))?;
    next.user_id = Some(user.id.clone());
    let Some(new_id) = session::rotate(core.records(), session_id, &next)? else {
        return Ok((Step::SessionLost, None));
    };
    let data = consent_data(&valid, &user, store, "")?;
    let mut event = login_event(&valid, Kind::Login, StatusCode::OK, Some(&user), None);
    event.outcome_desc = Some("second factor enrolled".into());
    Ok((
        Step::Consent {
            data,
            csrf: next.csrf,
            session_id: new_id,
        },
        Some(event),
    ))
}
