//! The auth flows on the real store backends (SQLite, or PostgreSQL when
//! `MEDICUS_TEST_DATABASE` is set): documents, compare-and-set, single-use take and expiry as
//! the backends implement them, and two `Auth` instances (two processes) on one store.

use std::sync::Arc;

use medicus_auth::clients::{ClientCredentials, NewClient, NewClientKind};
use medicus_auth::grants::{AuthorizeRequest, Consent, TokenRequest, pkce_challenge};
use medicus_auth::password::PasswordCost;
use medicus_auth::users::{LoginOutcome, Membership, NewUser};
use medicus_auth::{Auth, AuthConfig, AuthError, Records, Role, ServerKey, SystemClock};
use medicus_store::testing::TestStore;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const REDIRECT: &str = "https://app.example/cb";

fn instance(records: Records, key: &ServerKey) -> Auth {
    let mut config = AuthConfig::new("https://m.example/auth", "https://m.example/fhir");
    config.password_cost = PasswordCost::TEST;
    Auth::new(records, key.clone(), config, Arc::new(SystemClock))
}

fn code_request(code: &str) -> TokenRequest {
    TokenRequest {
        grant_type: "authorization_code".into(),
        code: Some(code.into()),
        redirect_uri: Some(REDIRECT.into()),
        code_verifier: Some(VERIFIER.into()),
        credentials: ClientCredentials {
            client_id: Some("app".into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn full_flow_on_the_store() -> Result<(), AuthError> {
    let dir = tempfile::tempdir().map_err(|e| AuthError::Invalid(e.to_string()))?;
    let store = TestStore::open(dir.path())?;
    let records: Records = store.store.clone();
    let key = ServerKey::generate()?;
    let a = instance(records.clone(), &key);
    let b = instance(records.clone(), &key);
    a.ensure_signing_key()?;
    b.ensure_signing_key()?;
    assert_eq!(a.jwks()?.keys.len(), 1, "two processes agree on one key");

    a.register_client(NewClient {
        client_id: Some("app".into()),
        tenant: "t1".into(),
        name: "App".into(),
        kind: NewClientKind::Public,
        redirect_uris: vec![REDIRECT.into()],
        scopes: "openid fhirUser launch/patient offline_access patient/*.rs user/*.rs".into(),
    })?;
    let user = a.create_user(NewUser {
        login: "doc".into(),
        display_name: "Dr Doc".into(),
        password: Some("correct horse battery".into()),
        memberships: vec![Membership {
            tenant: "t1".into(),
            roles: vec![Role::Clinician],
            fhir_user: Some("Practitioner/d1".into()),
        }],
    })?;
    assert!(
        b.create_user(NewUser {
            login: "DOC".into(),
            display_name: "x".into(),
            password: None,
            memberships: vec![]
        })
        .is_err(),
        "login names are unique across processes"
    );
    let LoginOutcome::Success(logged_in) = b.login("doc", "correct horse battery", None)? else {
        panic!("login failed")
    };
    assert_eq!(logged_in.id, user.id);

    let request = AuthorizeRequest {
        response_type: Some("code".into()),
        client_id: Some("app".into()),
        redirect_uri: Some(REDIRECT.into()),
        scope: Some("openid fhirUser launch/patient patient/*.rs offline_access".into()),
        state: Some("s".into()),
        code_challenge: Some(pkce_challenge(VERIFIER)),
        code_challenge_method: Some("S256".into()),
        aud: Some("https://m.example/fhir/t1".into()),
        ..Default::default()
    };
    let valid = a
        .authorize(&request)
        .map_err(|e| AuthError::Invalid(format!("{e:?}")))?;
    let url = a.issue_code(
        &valid,
        &logged_in,
        &Consent {
            scopes: None,
            patient: Some("p1".into()),
        },
    )?;
    let code = url
        .split("code=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .unwrap_or_default()
        .to_owned();

    // Process B redeems the code; process A sees the token as valid.
    let tokens = b.token(&code_request(&code))?;
    let principal = a.verify_access_token(&tokens.access_token)?;
    assert_eq!(principal.patient.as_deref(), Some("p1"));
    // The code again, in process A: refused, and the tokens die in both processes.
    assert!(a.token(&code_request(&code)).is_err());
    assert!(a.verify_access_token(&tokens.access_token).is_err());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(b.verify_access_token(&tokens.access_token).is_err());

    // Refresh rotation across processes.
    let url = a.issue_code(
        &valid,
        &logged_in,
        &Consent {
            scopes: None,
            patient: Some("p1".into()),
        },
    )?;
    let code = url
        .split("code=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .unwrap_or_default()
        .to_owned();
    let first = a.token(&code_request(&code))?;
    let refresh = |rt: &str| TokenRequest {
        grant_type: "refresh_token".into(),
        refresh_token: Some(rt.into()),
        credentials: ClientCredentials {
            client_id: Some("app".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let rt1 = first.refresh_token.clone().unwrap_or_default();
    let second = b.token(&refresh(&rt1))?;
    assert!(
        a.token(&refresh(&rt1)).is_err(),
        "rotated refresh token reused"
    );
    assert!(
        a.token(&refresh(
            second.refresh_token.as_deref().unwrap_or_default()
        ))
        .is_err(),
        "family revoked"
    );

    // Key rotation in A; B verifies A's new tokens (unknown kid → reload).
    a.rotate_signing_key()?;
    let url = a.issue_code(
        &valid,
        &logged_in,
        &Consent {
            scopes: None,
            patient: Some("p1".into()),
        },
    )?;
    let code = url
        .split("code=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .unwrap_or_default()
        .to_owned();
    let fresh = a.token(&code_request(&code))?;
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(b.verify_access_token(&fresh.access_token).is_ok());
    assert_eq!(b.jwks()?.keys.len(), 2, "the retired key stays published");

    // A wrong server key cannot unseal the signing key.
    let stranger = instance(records, &ServerKey::generate()?);
    assert!(stranger.reload_keys().is_err());
    Ok(())
}
