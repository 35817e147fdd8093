//! What access control adds to a FHIR request (issue 6: token checking ≤ 50 µs at p50).
//! `cargo bench -p medicus-server --bench access_overhead` serves the same router over one
//! SQLite store twice — once open, once enforced with a cached bearer token — and times the
//! same requests interleaved (open, enforced, open, …) so that a noisy machine affects both
//! alike. Reported: medians per request kind and the difference.
//!
//! Cases: a read (`GET Patient/p1`), a search (`GET Observation?code=…`) with a clinician
//! token, and the same search with a patient-context token (the compartment clause added).

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::Request;
use medicus_auth::tokens::TokenGrant;
use medicus_auth::{Auth, AuthConfig, Records, Role, ScopeSet, ServerKey, SystemClock};
use medicus_server::access::AccessControl;
use medicus_server::auth::{AuthState, WebAuthConfig};
use medicus_server::{AppState, ServerConfig, router};
use medicus_store::{SqliteStore, Store};
use serde_json::json;
use tower::ServiceExt;

const ROUNDS: usize = 2_000;

async fn call(app: &Router, uri: &str, token: Option<&str>) -> u16 {
    let mut req = Request::builder().uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let Ok(req) = req.body(Body::empty()) else {
        return 0;
    };
    match app.clone().oneshot(req).await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let _ = to_bytes(resp.into_body(), usize::MAX).await;
            status
        }
        Err(never) => match never {},
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path())?);
    store.create_tenant("bench")?;
    {
        let mut s = store.write_session("bench")?;
        for p in 0..200 {
            let id = format!("p{p}");
            s.put(
                "Patient",
                &id,
                json!({"resourceType":"Patient","id":id}),
                Default::default(),
            )?;
            for o in 0..10 {
                let oid = format!("o{p}-{o}");
                let code = if o % 2 == 0 { "4548-4" } else { "2339-0" };
                s.put(
                    "Observation",
                    &oid,
                    json!({"resourceType":"Observation","id":oid,"status":"final",
                    "code":{"coding":[{"system":"http://loinc.org","code":code}]},
                    "subject":{"reference":format!("Patient/{id}")}}),
                    Default::default(),
                )?;
            }
        }
        s.commit()?;
    }
    let base = "http://bench.local";
    let config = ServerConfig {
        base_url: Some(base.into()),
        ..ServerConfig::default()
    };
    let records: Records = store.clone();
    let core = Arc::new(Auth::new(
        records,
        ServerKey::generate()?,
        AuthConfig::new(format!("{base}/auth"), format!("{base}/fhir")),
        Arc::new(SystemClock),
    ));
    core.ensure_signing_key()?;
    let token = |role: Role, scopes: &str, patient: Option<&str>| {
        core.issue_access_token(&TokenGrant {
            subject: "bench".into(),
            tenant: "bench".into(),
            roles: vec![role],
            scopes: ScopeSet::parse(scopes).map_err(|e| e.to_string())?,
            patient: patient.map(str::to_owned),
            fhir_user: Some("Practitioner/x".into()),
            client_id: "bench".into(),
            family: None,
        })
        .map(|(t, _)| t)
        .map_err(|e| e.to_string())
    };
    let clinician = token(Role::Clinician, "user/*.rs", None)?;
    let patient = token(Role::Clinician, "patient/*.rs", Some("p7"))?;
    // No audit trail in either: this measures access control only.
    let open = router(AppState::with_audit(store.clone(), config.clone(), None).with_open_access());
    let mut enforced_state = AppState::with_audit(store.clone(), config, None)
        .with_auth(AuthState::new(core.clone(), WebAuthConfig::default()));
    enforced_state.access_control = AccessControl::Enforced;
    let enforced = router(enforced_state);

    let cases: [(&str, &str, &str); 3] = [
        (
            "read Patient/p7",
            "/fhir/bench/Patient/p7",
            clinician.as_str(),
        ),
        (
            "search Observation?code (user/*.rs)",
            "/fhir/bench/Observation?code=http://loinc.org|4548-4&_count=10",
            clinician.as_str(),
        ),
        (
            "search Observation?code (patient p7)",
            "/fhir/bench/Observation?code=http://loinc.org|4548-4&_count=10",
            patient.as_str(),
        ),
    ];
    println!(
        "access control overhead, {ROUNDS} interleaved rounds per case, 200 patients / 2,000 Observations (SQLite, in-process router)"
    );
    println!("| case | open p50 (µs) | enforced p50 (µs) | added (µs) |");
    println!("|---|---|---|---|");
    for (name, uri, tok) in cases {
        // Warm up both (token cache, statement cache).
        for _ in 0..50 {
            assert_eq!(call(&open, uri, None).await, 200);
            assert_eq!(call(&enforced, uri, Some(tok)).await, 200);
        }
        let (mut a, mut b) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
        for _ in 0..ROUNDS {
            let t = Instant::now();
            call(&open, uri, None).await;
            a.push(t.elapsed().as_nanos() as f64 / 1000.0);
            let t = Instant::now();
            call(&enforced, uri, Some(tok)).await;
            b.push(t.elapsed().as_nanos() as f64 / 1000.0);
        }
        let (ma, mb) = (median(a), median(b));
        println!("| {name} | {ma:.1} | {mb:.1} | {:.1} |", mb - ma);
    }
    Ok(())
}
