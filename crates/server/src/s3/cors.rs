//! CORS for browsers: a preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered
//! from the bucket's CORS rules without a signature, as S3 does; an actual request with an
//! `Origin` gets the `Access-Control-*` headers of the first matching rule. Requests without
//! `Origin` pass untouched.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use medicus_objects::Objects;
use medicus_objects::cors::{CorsRule, find};

use super::Cors;

fn value(s: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(s).ok()
}

/// The bucket a request addresses: from a virtual host, else the first path segment.
fn bucket_of(cors: &Cors, req: &Request) -> Option<String> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if let Some(b) = cors.domains.bucket_of(host) {
        return Some(b.to_owned());
    }
    let first = req.uri().path().trim_start_matches('/').split('/').next()?;
    (!first.is_empty()).then(|| first.to_owned())
}

async fn rules(cors: &Cors, bucket: String) -> Vec<CorsRule> {
    let objects = cors.objects.clone();
    tokio::task::spawn_blocking(move || {
        objects
            .store()
            .bucket_get(&bucket)
            .ok()
            .flatten()
            .and_then(|b| Objects::bucket_config(&b).ok())
            .map(|c| c.cors)
            .unwrap_or_default()
    })
    .await
    .unwrap_or_default()
}

fn allow_origin(rule: &CorsRule, origin: &str) -> Option<HeaderValue> {
    if rule.allowed_origins.iter().any(|o| o == "*") {
        Some(HeaderValue::from_static("*"))
    } else {
        value(origin)
    }
}

pub async fn handle(State(cors): State<Arc<Cors>>, req: Request, next: Next) -> Response {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_owned)
    else {
        return next.run(req).await;
    };
    let Some(bucket) = bucket_of(&cors, &req) else {
        return next.run(req).await;
    };
    let preflight_method = (req.method() == Method::OPTIONS)
        .then(|| {
            req.headers()
                .get(header::ACCESS_CONTROL_REQUEST_METHOD)
                .and_then(|m| m.to_str().ok())
                .map(str::to_owned)
        })
        .flatten();
    let rules = rules(&cors, bucket).await;
    if let Some(method) = preflight_method {
        let requested: Vec<String> = req
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        let asked: Vec<&str> = requested.iter().map(String::as_str).collect();
        let Some(rule) = find(&rules, &origin, &method, &asked) else {
            return (
                StatusCode::FORBIDDEN,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessForbidden</Code><Message>CORSResponse: This CORS request is not allowed.</Message></Error>",
            )
                .into_response();
        };
        let mut resp = StatusCode::OK.into_response();
        let h = resp.headers_mut();
        if let Some(v) = allow_origin(rule, &origin) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        }
        if let Some(v) = value(&rule.allowed_methods.join(", ")) {
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
        }
        if !requested.is_empty()
            && let Some(v) = value(&requested.join(", "))
        {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
        if let Some(age) = rule.max_age_seconds {
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
        }
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        return resp;
    }
    let method = req.method().as_str().to_owned();
    let rule = find(&rules, &origin, &method, &[]).cloned();
    let mut resp = next.run(req).await;
    if let Some(rule) = rule {
        let h = resp.headers_mut();
        if let Some(v) = allow_origin(&rule, &origin) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        }
        if !rule.expose_headers.is_empty()
            && let Some(v) = value(&rule.expose_headers.join(", "))
        {
            h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
        }
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    resp
}
