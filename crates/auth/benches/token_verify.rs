//! Micro benchmark of access-token checking (issue 6: ≤ 50 µs per request at p50).
//! `cargo bench -p medicus-auth --bench token_verify` prints p50/p90/p99 of
//! - cold: a token seen for the first time (RS256 signature, claims, scope parsing, cache insert),
//! - cached: a token seen before (SHA-256 of the token, cache lookup, expiry and revocation check),
//! - policy: one `decide` for a patient-context read.

use std::sync::Arc;
use std::time::Instant;

use medicus_auth::policy::{Access, Interaction, decide};
use medicus_auth::testing::MemRecords;
use medicus_auth::tokens::TokenGrant;
use medicus_auth::{Auth, AuthConfig, Role, ScopeSet, ServerKey, SystemClock};

fn percentiles(mut ns: Vec<u128>) -> String {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() as f64 - 1.0) * q) as usize] as f64 / 1000.0;
    format!(
        "p50 {:>7.2} µs   p90 {:>7.2} µs   p99 {:>7.2} µs   (n={})",
        at(0.5),
        at(0.9),
        at(0.99),
        ns.len()
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let records = Arc::new(MemRecords::new(SystemClock));
    let auth = Auth::new(
        records,
        ServerKey::generate()?,
        AuthConfig::new("https://m.example/auth", "https://m.example/fhir"),
        Arc::new(SystemClock),
    );
    auth.ensure_signing_key()?;
    let grant = TokenGrant {
        subject: "user-1".into(),
        tenant: "hospital-a".into(),
        roles: vec![Role::Clinician],
        scopes: ScopeSet::parse(
            "launch/patient openid fhirUser offline_access patient/*.rs user/Observation.rs",
        )?,
        patient: Some("p-123".into()),
        fhir_user: Some("Practitioner/d-1".into()),
        client_id: "app".into(),
        family: Some("fam".into()),
    };
    let n = 5000;
    let tokens: Vec<String> = (0..n)
        .map(|_| auth.issue_access_token(&grant).map(|t| t.0))
        .collect::<Result<_, _>>()?;
    println!("token size: {} bytes", tokens[0].len());

    // Warm-up (keys loaded, revocation view synced).
    auth.verify_access_token(&tokens[0])?;

    let mut cold = Vec::with_capacity(n);
    for t in &tokens[1..] {
        let start = Instant::now();
        auth.verify_access_token(t)?;
        cold.push(start.elapsed().as_nanos());
    }
    println!("verify cold   {}", percentiles(cold));

    let mut cached = Vec::with_capacity(n * 4);
    for _ in 0..4 {
        for t in &tokens {
            let start = Instant::now();
            auth.verify_access_token(t)?;
            cached.push(start.elapsed().as_nanos());
        }
    }
    println!("verify cached {}", percentiles(cached));

    let mut in_memory = Vec::with_capacity(n);
    for t in &tokens {
        let start = Instant::now();
        let p = auth.verify_access_token_in_memory(t)?;
        in_memory.push(start.elapsed().as_nanos());
        if p.is_none() {
            // The revocation view went stale (a second boundary): refresh it as a request would.
            auth.verify_access_token(t)?;
        }
    }
    println!("in-memory     {}", percentiles(in_memory));

    let principal = auth.verify_access_token(&tokens[0])?;
    let mut policy = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let d = decide(
            &principal,
            &Access {
                tenant: "hospital-a",
                interaction: Interaction::Search,
                resource_type: Some("Observation"),
                resource: None,
            },
        );
        policy.push(start.elapsed().as_nanos());
        std::hint::black_box(d);
    }
    println!("policy decide {}", percentiles(policy));
    Ok(())
}
