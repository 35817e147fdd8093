//! The server-rendered pages: login, consent with the patient picker, and errors. Plain HTML
//! forms, no JavaScript; every value that reaches the markup goes through [`esc`].

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Escapes text for HTML element content and double-quoted attribute values.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#222}\
h1{font-size:1.4rem}label{display:block;margin:.8rem 0 .2rem}input[type=text],input[type=password],input[type=search]{width:100%;padding:.4rem;box-sizing:border-box}\
button{margin:1rem .5rem 0 0;padding:.5rem 1.2rem}.error{color:#a00;border:1px solid #a00;padding:.5rem}\
ul.scopes{padding-left:1.2rem}fieldset{border:1px solid #ccc;margin-top:1rem}small{color:#555}";

/// A complete page with the headers every auth page carries: never cached, never framed, no
/// scripts, no referrer (the URL may hold a code or state).
pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} – medicus</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n{body}\n</body></html>\n",
        esc(title),
        esc(title)
    );
    let mut response = (status, html).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    page(
        status,
        "Sign-in cannot continue",
        &format!(
            "<p class=\"error\">{}</p>\n<p>Go back to the application and start again.</p>",
            esc(message)
        ),
    )
}

pub(crate) struct LoginView<'a> {
    pub client_name: &'a str,
    pub csrf: &'a str,
    pub login: &'a str,
    pub error: Option<&'a str>,
    /// Ask for the second factor too.
    pub totp: bool,
    /// The tenant's external identity providers: (id, label), one button each.
    pub providers: &'a [(String, String)],
}

pub(crate) fn login_page(status: StatusCode, v: &LoginView<'_>) -> Response {
    let error = v
        .error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>\n", esc(e)))
        .unwrap_or_default();
    let totp = if v.totp {
        "<label for=\"totp\">Code from your authenticator app</label>\
         <input type=\"text\" id=\"totp\" name=\"totp\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9]{6}\" required>\n"
    } else {
        ""
    };
    let body = format!(
        "<p><strong>{client}</strong> asks you to sign in.</p>\n{error}\
         <form method=\"post\" action=\"/auth/login\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <label for=\"login\">User name</label>\
         <input type=\"text\" id=\"login\" name=\"login\" value=\"{login}\" autocomplete=\"username\" required>\n\
         <label for=\"password\">Password</label>\
         <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\n\
         {totp}<button type=\"submit\">Sign in</button>\n</form>{providers}",
        client = esc(v.client_name),
        providers = provider_buttons(v.csrf, v.providers),
        csrf = esc(v.csrf),
        login = esc(v.login),
    );
    page(status, "Sign in", &body)
}

/// "Sign in with …" buttons: forms posting to `/auth/federation/start` with the session's
/// CSRF token (a plain link would let another site start a login in the user's session).
fn provider_buttons(csrf: &str, providers: &[(String, String)]) -> String {
    if providers.is_empty() {
        return String::new();
    }
    let buttons: String = providers
        .iter()
        .map(|(id, label)| {
            format!(
                "<form method=\"post\" action=\"/auth/federation/start\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                 <input type=\"hidden\" name=\"idp\" value=\"{}\">\
                 <button type=\"submit\">Sign in with {}</button></form>\n",
                esc(csrf),
                esc(id),
                esc(label)
            )
        })
        .collect();
    format!("\n<p>or</p>\n{buttons}")
}

pub(crate) struct EnrolView<'a> {
    pub csrf: &'a str,
    /// The new secret, shown once (after a wrong code only the form is shown again).
    pub enrolment: Option<&'a medicus_auth::users::TotpEnrolment>,
    pub error: Option<&'a str>,
}

/// TOTP enrolment: the secret as text and as an `otpauth://` URI (no QR image: the pages run
/// without scripts or external resources), a form for the first code, and a way to start over.
pub(crate) fn totp_enrol_page(status: StatusCode, v: &EnrolView<'_>) -> Response {
    let error = v
        .error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>\n", esc(e)))
        .unwrap_or_default();
    let csrf = esc(v.csrf);
    let secret = match v.enrolment {
        Some(e) => {
            let grouped: Vec<String> = e
                .secret_base32
                .as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            format!(
                "<p>Add this key to your authenticator app (type it in, time-based, 6 digits):</p>\n\
                 <p><code id=\"totp-secret\">{}</code></p>\n\
                 <p><small>or open <a id=\"totp-uri\" href=\"{uri}\">{uri}</a></small></p>\n",
                esc(&grouped.join(" ")),
                uri = esc(&e.uri),
            )
        }
        None => String::new(),
    };
    let body = format!(
        "<p>Set up a second factor for your account to continue.</p>\n{error}{secret}\
         <form method=\"post\" action=\"/auth/totp\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <label for=\"code\">Code shown by the app</label>\
         <input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9]{{6}}\" required>\n\
         <button type=\"submit\" name=\"action\" value=\"confirm\">Confirm</button>\
         <button type=\"submit\" name=\"action\" value=\"restart\" formnovalidate>Show a new key</button>\n</form>",
    );
    page(status, "Set up a second factor", &body)
}

/// What the consent page offers for the patient context.
pub(crate) enum Picker {
    /// No patient to choose (not asked for, from an EHR launch, or the user's own record).
    None,
    /// Choose from these (id, label), found with `query`.
    Choose {
        query: String,
        patients: Vec<(String, String)>,
    },
    /// The app wants a patient context, but the user's roles cannot choose one.
    NotAllowed,
}

pub(crate) struct ConsentView<'a> {
    pub client_name: &'a str,
    pub user_name: &'a str,
    pub csrf: &'a str,
    pub scopes: &'a [String],
    pub picker: Picker,
    pub error: Option<&'a str>,
    /// Offer setting up a second factor (a local account without one).
    pub offer_totp: bool,
}

pub(crate) fn consent_page(status: StatusCode, v: &ConsentView<'_>) -> Response {
    let error = v
        .error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>\n", esc(e)))
        .unwrap_or_default();
    let csrf = esc(v.csrf);
    let scopes: String = v
        .scopes
        .iter()
        .map(|s| {
            format!(
                "<li><label><input type=\"checkbox\" name=\"scope\" value=\"{value}\" checked> \
                 {what} <small><code>{value}</code></small></label></li>\n",
                value = esc(s),
                what = esc(&describe_scope(s)),
            )
        })
        .collect();
    let picker = match &v.picker {
        Picker::None => String::new(),
        Picker::NotAllowed => "<p class=\"error\">The application asks for a patient record, \
             but your role cannot choose one. Untick <code>launch/patient</code> or deny.</p>\n"
            .to_owned(),
        Picker::Choose { patients, .. } if patients.is_empty() => {
            "<fieldset><legend>Patient</legend><p>No patient found.</p></fieldset>\n".to_owned()
        }
        Picker::Choose { patients, .. } => {
            let options: String = patients
                .iter()
                .map(|(id, label)| {
                    format!(
                        "<label><input type=\"radio\" name=\"patient\" value=\"{}\" required> {}</label>\n",
                        esc(id),
                        esc(label)
                    )
                })
                .collect();
            format!("<fieldset><legend>Patient</legend>\n{options}</fieldset>\n")
        }
    };
    let search = match &v.picker {
        Picker::Choose { query, .. } => format!(
            "<form method=\"post\" action=\"/auth/consent\">\n\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"action\" value=\"search\">\n\
             <label for=\"name\">Find a patient by name</label>\
             <input type=\"search\" id=\"name\" name=\"name\" value=\"{}\">\n\
             <button type=\"submit\">Search</button>\n</form>\n",
            esc(query)
        ),
        _ => String::new(),
    };
    let body = format!(
        "<p>Signed in as <strong>{user}</strong>.</p>\n\
         <p><strong>{client}</strong> asks for access:</p>\n{error}{search}\
         <form method=\"post\" action=\"/auth/consent\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <ul class=\"scopes\">\n{scopes}</ul>\n{picker}\
         <button type=\"submit\" name=\"action\" value=\"approve\">Allow</button>\
         <button type=\"submit\" name=\"action\" value=\"deny\" formnovalidate>Deny</button>\n</form>{totp}",
        user = esc(v.user_name),
        client = esc(v.client_name),
        totp = if v.offer_totp {
            format!(
                "\n<form method=\"post\" action=\"/auth/totp\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <button type=\"submit\" name=\"action\" value=\"begin\">Set up a second factor (TOTP)</button>\
                 </form>"
            )
        } else {
            String::new()
        },
    );
    page(status, "Allow access?", &body)
}

/// A plain-language line for a scope.
fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => return "Confirm who you are".into(),
        "profile" => return "Your name and user name".into(),
        "fhirUser" => return "Your user record (Practitioner or Patient)".into(),
        "launch" => return "Open in the context of the current record".into(),
        "launch/patient" => return "Work with one patient's record".into(),
        "launch/encounter" => return "Work with one encounter".into(),
        "offline_access" => return "Stay connected when you are not signed in (30 days)".into(),
        "online_access" => return "Stay connected while you are signed in".into(),
        _ => {}
    }
    let Some((context, rest)) = scope.split_once('/') else {
        return scope.to_owned();
    };
    let (rest, constraint) = rest.split_once('?').unwrap_or((rest, ""));
    let Some((ty, perms)) = rest.rsplit_once('.') else {
        return scope.to_owned();
    };
    let what = if ty == "*" { "all data" } else { ty };
    let perms = match perms {
        "read" => "rs",
        "write" => "cud",
        "*" => "cruds",
        p => p,
    };
    let verbs: Vec<&str> = [
        ('c', "create"),
        ('r', "read"),
        ('u', "update"),
        ('d', "delete"),
        ('s', "search"),
    ]
    .iter()
    .filter(|(c, _)| perms.contains(*c))
    .map(|(_, v)| *v)
    .collect();
    let whose = match context {
        "patient" => "of the selected patient",
        "user" => "you have access to",
        _ => "",
    };
    let mut text = format!("{} {what} {whose}", capitalise(&verbs.join(", ")));
    if !constraint.is_empty() {
        text.push_str(" (restricted)");
    }
    text.trim_end().to_owned()
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }

    #[test]
    fn scope_lines() {
        assert_eq!(
            describe_scope("patient/Observation.rs"),
            "Read, search Observation of the selected patient"
        );
        assert_eq!(
            describe_scope("user/*.read"),
            "Read, search all data you have access to"
        );
        assert_eq!(describe_scope("openid"), "Confirm who you are");
    }
}
