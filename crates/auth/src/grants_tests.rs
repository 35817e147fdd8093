use super::*;
use crate::clients::{ClientCredentials, NewClient, NewClientKind};
use crate::service::tests::auth;
use crate::users::{Membership, NewUser};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const REDIRECT: &str = "https://app.example/cb";

fn setup() -> (Auth, crate::clock::ManualClock, User) {
    let (auth, clock, _) = auth();
    auth.register_client(NewClient {
        client_id: Some("app".into()),
        tenant: "t1".into(),
        name: "App".into(),
        kind: NewClientKind::Public,
        redirect_uris: vec![REDIRECT.into()],
        scopes: "openid fhirUser profile launch launch/patient offline_access online_access patient/*.rs user/*.cruds".into(),
    })
    .unwrap();
    let user = auth
        .create_user(NewUser {
            login: "doc".into(),
            display_name: "Dr Doc".into(),
            password: Some("correct horse battery".into()),
            memberships: vec![Membership {
                tenant: "t1".into(),
                roles: vec![Role::Clinician],
                fhir_user: Some("Practitioner/d1".into()),
            }],
        })
        .unwrap();
    (auth, clock, user)
}

fn request(scope: &str) -> AuthorizeRequest {
    AuthorizeRequest {
        response_type: Some("code".into()),
        client_id: Some("app".into()),
        redirect_uri: Some(REDIRECT.into()),
        scope: Some(scope.into()),
        state: Some("xyz".into()),
        code_challenge: Some(pkce_challenge(VERIFIER)),
        code_challenge_method: Some("S256".into()),
        aud: Some("https://m.example/fhir/t1".into()),
        launch: None,
        nonce: Some("n-1".into()),
    }
}

fn code_from(url: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    let code = query
        .split('&')
        .find_map(|p| p.strip_prefix("code="))
        .unwrap();
    assert!(query.contains("state=xyz"));
    percent_encoding::percent_decode_str(code)
        .decode_utf8()
        .unwrap()
        .into_owned()
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

fn get_code(auth: &Auth, user: &User, scope: &str, patient: Option<&str>) -> String {
    let valid = auth.authorize(&request(scope)).unwrap();
    code_from(
        &auth
            .issue_code(
                &valid,
                user,
                &Consent {
                    scopes: None,
                    patient: patient.map(Into::into),
                },
            )
            .unwrap(),
    )
}

fn oauth_code(err: AuthError) -> OAuthErrorCode {
    match err {
        AuthError::OAuth(e) => e.code,
        other => panic!("not an OAuth error: {other:?}"),
    }
}

#[test]
fn rfc7636_challenge_vector() {
    assert_eq!(
        pkce_challenge(VERIFIER),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}

#[test]
fn standalone_launch_code_flow() {
    let (auth, _, user) = setup();
    let valid = auth
        .authorize(&request(
            "openid fhirUser launch/patient patient/*.rs offline_access",
        ))
        .unwrap();
    assert!(valid.needs_patient_picker);
    // Without a picked patient no code is issued.
    assert!(auth.issue_code(&valid, &user, &Consent::default()).is_err());
    let url = auth
        .issue_code(
            &valid,
            &user,
            &Consent {
                scopes: None,
                patient: Some("p1".into()),
            },
        )
        .unwrap();
    assert!(url.starts_with("https://app.example/cb?code="));
    let response = auth.token(&code_request(&code_from(&url))).unwrap();
    assert_eq!(response.patient.as_deref(), Some("p1"));
    assert_eq!(response.token_type, "Bearer");
    assert_eq!(response.expires_in, 300);
    assert!(response.refresh_token.is_some());
    let p = auth.verify_access_token(&response.access_token).unwrap();
    assert_eq!(
        (
            p.tenant.as_str(),
            p.patient.as_deref(),
            p.fhir_user.as_deref()
        ),
        ("t1", Some("p1"), Some("Practitioner/d1"))
    );
    assert_eq!(p.roles, vec![Role::Clinician]);
    // id_token: RS256, aud = client, nonce, fhirUser as absolute URL.
    let id = response.id_token.unwrap();
    let parsed = crate::jws::parse(&id).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&parsed.payload).unwrap();
    assert_eq!(claims["aud"], "app");
    assert_eq!(claims["nonce"], "n-1");
    assert_eq!(
        claims["fhirUser"],
        "https://m.example/fhir/t1/Practitioner/d1"
    );
    // The id_token is not an access token.
    assert!(auth.verify_access_token(&id).is_err());
}

#[test]
fn authorize_request_attacks() {
    let (auth, _, _) = setup();
    let mut r = request("patient/*.rs");
    r.code_challenge_method = Some("plain".into());
    let err = auth.authorize(&r).unwrap_err();
    assert!(
        matches!(&err, AuthorizeError::Redirect { error, .. } if error.code == OAuthErrorCode::InvalidRequest && error.description.contains("plain"))
    );
    assert!(
        err.redirect_url()
            .unwrap()
            .starts_with("https://app.example/cb?error=invalid_request&")
    );
    let mut r = request("patient/*.rs");
    r.code_challenge_method = None;
    assert!(auth.authorize(&r).is_err(), "PKCE missing");
    // Redirect URI mismatch: never redirected, even for near misses.
    for uri in [
        "https://app.example/cb/",
        "https://app.example/cb?x=1",
        "https://evil.example/cb",
        "https://APP.example/cb",
    ] {
        let mut r = request("patient/*.rs");
        r.redirect_uri = Some(uri.into());
        assert!(
            matches!(auth.authorize(&r), Err(AuthorizeError::NoRedirect(_))),
            "{uri}"
        );
    }
    let mut r = request("patient/*.rs");
    r.client_id = Some("nobody".into());
    assert!(matches!(
        auth.authorize(&r),
        Err(AuthorizeError::NoRedirect(_))
    ));
    let mut r = request("patient/*.rs");
    r.response_type = Some("token".into());
    assert!(
        matches!(auth.authorize(&r), Err(AuthorizeError::Redirect { error, .. }) if error.code == OAuthErrorCode::UnsupportedResponseType)
    );
    // Scopes beyond the client's.
    assert!(
        matches!(auth.authorize(&request("system/*.rs")), Err(AuthorizeError::Redirect { error, .. }) if error.code == OAuthErrorCode::InvalidScope)
    );
    assert!(
        matches!(auth.authorize(&request("user/*.cruds patient/Observation.c")), Err(AuthorizeError::Redirect { error, .. }) if error.code == OAuthErrorCode::InvalidScope)
    );
    let mut r = request("patient/*.rs");
    r.state = None;
    assert!(auth.authorize(&r).is_err(), "state missing");
    let mut r = request("patient/*.rs");
    r.aud = Some("https://m.example/fhir/t2".into());
    assert!(auth.authorize(&r).is_err(), "aud of another tenant");
}

#[test]
fn code_is_single_use_and_reuse_revokes() {
    let (auth, _, user) = setup();
    let code = get_code(&auth, &user, "user/*.rs offline_access", None);
    let first = auth.token(&code_request(&code)).unwrap();
    assert!(auth.verify_access_token(&first.access_token).is_ok());
    assert_eq!(
        oauth_code(auth.token(&code_request(&code)).unwrap_err()),
        OAuthErrorCode::InvalidGrant
    );
    // The tokens issued from the code are revoked: access and refresh.
    assert!(auth.verify_access_token(&first.access_token).is_err());
    let refresh = TokenRequest {
        grant_type: "refresh_token".into(),
        refresh_token: first.refresh_token,
        credentials: ClientCredentials {
            client_id: Some("app".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(
        oauth_code(auth.token(&refresh).unwrap_err()),
        OAuthErrorCode::InvalidGrant
    );
}

#[test]
fn code_checks_pkce_redirect_client_and_expiry() {
    let (auth, clock, user) = setup();
    let code = get_code(&auth, &user, "user/*.rs", None);
    let mut r = code_request(&code);
    r.code_verifier = Some("x".repeat(43));
    assert_eq!(
        oauth_code(auth.token(&r).unwrap_err()),
        OAuthErrorCode::InvalidGrant
    );

    let code = get_code(&auth, &user, "user/*.rs", None);
    let mut r = code_request(&code);
    r.redirect_uri = Some("https://app.example/other".into());
    assert_eq!(
        oauth_code(auth.token(&r).unwrap_err()),
        OAuthErrorCode::InvalidGrant
    );

    let code = get_code(&auth, &user, "user/*.rs", None);
    let mut r = code_request(&code);
    r.code_verifier = None;
    assert!(auth.token(&r).is_err());

    let code = get_code(&auth, &user, "user/*.rs", None);
    clock.advance(61);
    assert_eq!(
        oauth_code(auth.token(&code_request(&code)).unwrap_err()),
        OAuthErrorCode::InvalidGrant
    );

    // A code of one client redeemed by another.
    auth.register_client(NewClient {
        client_id: Some("other".into()),
        tenant: "t1".into(),
        name: "O".into(),
        kind: NewClientKind::Public,
        redirect_uris: vec![REDIRECT.into()],
        scopes: "user/*.rs".into(),
    })
    .unwrap();
    let code = get_code(&auth, &user, "user/*.rs", None);
    let mut r = code_request(&code);
    r.credentials.client_id = Some("other".into());
    assert_eq!(
        oauth_code(auth.token(&r).unwrap_err()),
        OAuthErrorCode::InvalidGrant
    );

    // A user disabled between login and token exchange gets nothing.
    let code = get_code(&auth, &user, "user/*.rs", None);
    auth.set_disabled(&user.id, true).unwrap();
    assert!(auth.token(&code_request(&code)).is_err());
}

#[test]
fn refresh_rotation_and_reuse_detection() {
    let (auth, _, user) = setup();
    let refresh = |token: &str, scope: Option<&str>| TokenRequest {
        grant_type: "refresh_token".into(),
        refresh_token: Some(token.into()),
        scope: scope.map(Into::into),
        credentials: ClientCredentials {
            client_id: Some("app".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    // An unrelated family that must survive what follows.
    let code = get_code(&auth, &user, "user/*.rs offline_access", None);
    let other = auth.token(&code_request(&code)).unwrap();

    let code = get_code(&auth, &user, "user/*.rs offline_access", None);
    let a = auth.token(&code_request(&code)).unwrap();
    let rt_a = a.refresh_token.clone().unwrap();
    // Up-scoping is refused and leaves the token usable; down-scoping works.
    assert_eq!(
        oauth_code(
            auth.token(&refresh(&rt_a, Some("user/*.cruds")))
                .unwrap_err()
        ),
        OAuthErrorCode::InvalidScope
    );
    let b = auth
        .token(&refresh(&rt_a, Some("user/Observation.r")))
        .unwrap();
    assert_eq!(b.scope, "user/Observation.r");
    let rt_b = b.refresh_token.clone().unwrap();
    assert_ne!(rt_a, rt_b, "rotated");
    let c = auth.token(&refresh(&rt_b, None)).unwrap();
    assert_eq!(
        c.scope, "user/*.rs offline_access",
        "the refresh chain keeps the original grant"
    );
    // Reusing a rotated refresh token revokes the family: the newest tokens die too.
    assert!(auth.verify_access_token(&c.access_token).is_ok());
    assert_eq!(
        oauth_code(auth.token(&refresh(&rt_a, None)).unwrap_err()),
        OAuthErrorCode::InvalidGrant
    );
    assert!(auth.verify_access_token(&c.access_token).is_err());
    assert!(auth.verify_access_token(&b.access_token).is_err());
    assert_eq!(
        oauth_code(
            auth.token(&refresh(c.refresh_token.as_ref().unwrap(), None))
                .unwrap_err()
        ),
        OAuthErrorCode::InvalidGrant
    );
    // Other families are untouched.
    assert!(auth.verify_access_token(&other.access_token).is_ok());
    assert!(
        auth.token(&refresh(other.refresh_token.as_ref().unwrap(), None))
            .is_ok()
    );
}

#[test]
fn no_refresh_token_without_offline_or_online_access() {
    let (auth, _, user) = setup();
    let code = get_code(&auth, &user, "user/*.rs", None);
    let response = auth.token(&code_request(&code)).unwrap();
    assert!(response.refresh_token.is_none() && response.id_token.is_none());
    let code = get_code(&auth, &user, "user/*.rs online_access", None);
    assert!(
        auth.token(&code_request(&code))
            .unwrap()
            .refresh_token
            .is_some()
    );
}

#[test]
fn ehr_launch_and_patient_users() {
    let (auth, _, user) = setup();
    let launch = auth.create_launch("t1", Some("p9")).unwrap();
    let mut r = request("launch patient/*.rs");
    r.launch = Some(launch);
    let valid = auth.authorize(&r).unwrap();
    assert_eq!(valid.launch_patient.as_deref(), Some("p9"));
    assert!(!valid.needs_patient_picker);
    let code = code_from(&auth.issue_code(&valid, &user, &Consent::default()).unwrap());
    assert_eq!(
        auth.token(&code_request(&code)).unwrap().patient.as_deref(),
        Some("p9")
    );
    let mut r = request("launch patient/*.rs");
    r.launch = Some("forged".into());
    assert!(auth.authorize(&r).is_err());
    let other_tenant = auth.create_launch("t2", Some("p9")).unwrap();
    let mut r = request("launch patient/*.rs");
    r.launch = Some(other_tenant);
    assert!(auth.authorize(&r).is_err(), "launch of another tenant");

    // A patient user is their own launch context and cannot pick someone else.
    let patient = auth
        .create_user(NewUser {
            login: "pat".into(),
            display_name: "P".into(),
            password: Some("correct horse battery".into()),
            memberships: vec![Membership {
                tenant: "t1".into(),
                roles: vec![Role::Patient],
                fhir_user: Some("Patient/p5".into()),
            }],
        })
        .unwrap();
    let valid = auth
        .authorize(&request("launch/patient patient/*.rs"))
        .unwrap();
    let code = code_from(
        &auth
            .issue_code(&valid, &patient, &Consent::default())
            .unwrap(),
    );
    assert_eq!(
        auth.token(&code_request(&code)).unwrap().patient.as_deref(),
        Some("p5")
    );
    assert!(
        auth.issue_code(
            &valid,
            &patient,
            &Consent {
                scopes: None,
                patient: Some("p6".into())
            }
        )
        .is_err()
    );
    // A user without a role in the tenant gets no code.
    let stranger = auth
        .create_user(NewUser {
            login: "x".into(),
            display_name: "X".into(),
            password: None,
            memberships: vec![Membership {
                tenant: "t2".into(),
                roles: vec![Role::Clinician],
                fhir_user: None,
            }],
        })
        .unwrap();
    assert!(
        auth.issue_code(
            &valid,
            &stranger,
            &Consent {
                scopes: None,
                patient: Some("p1".into())
            }
        )
        .is_err()
    );
    // Consent cannot widen the request.
    let valid = auth.authorize(&request("user/Observation.rs")).unwrap();
    assert!(
        auth.issue_code(
            &valid,
            &user,
            &Consent {
                scopes: Some(ScopeSet::parse("user/*.rs").unwrap()),
                patient: None
            }
        )
        .is_err()
    );
}

#[test]
fn client_credentials_with_private_key_jwt() {
    let (auth, _, _) = setup();
    let key = crate::clients::tests::service_client(&auth, crate::jws::Alg::ES384);
    let request = |jti: &str, scope: Option<&str>| TokenRequest {
        grant_type: "client_credentials".into(),
        scope: scope.map(Into::into),
        credentials: ClientCredentials {
            client_assertion_type: Some(crate::clients::JWT_BEARER.into()),
            client_assertion: Some(crate::clients::tests::assertion(
                &key,
                crate::clients::tests::good_claims(jti),
            )),
            ..Default::default()
        },
        ..Default::default()
    };
    let response = auth
        .token(&request("a", Some("system/Observation.rs")))
        .unwrap();
    let p = auth.verify_access_token(&response.access_token).unwrap();
    assert_eq!(p.roles, vec![Role::Service]);
    assert_eq!(p.subject, "svc");
    assert!(response.refresh_token.is_none());
    assert_eq!(
        oauth_code(
            auth.token(&request("b", Some("system/*.cruds")))
                .unwrap_err()
        ),
        OAuthErrorCode::InvalidScope
    );
    assert_eq!(
        oauth_code(auth.token(&request("c", Some("user/*.rs"))).unwrap_err()),
        OAuthErrorCode::InvalidScope
    );
    assert_eq!(
        oauth_code(auth.token(&request("a", None)).unwrap_err()),
        OAuthErrorCode::InvalidClient,
        "assertion replay"
    );
    // A public client cannot use client_credentials.
    let public = TokenRequest {
        grant_type: "client_credentials".into(),
        credentials: ClientCredentials {
            client_id: Some("app".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(
        oauth_code(auth.token(&public).unwrap_err()),
        OAuthErrorCode::UnauthorizedClient
    );
    assert_eq!(
        oauth_code(
            auth.token(&TokenRequest {
                grant_type: "password".into(),
                ..Default::default()
            })
            .unwrap_err()
        ),
        OAuthErrorCode::UnsupportedGrantType
    );
}

#[test]
fn introspection_and_revocation() {
    let (auth, _, user) = setup();
    let app = auth.client("app").unwrap().unwrap();
    let code = get_code(&auth, &user, "user/*.rs offline_access", None);
    let response = auth.token(&code_request(&code)).unwrap();
    let info = auth.introspect(&app, &response.access_token).unwrap();
    assert_eq!(info["active"], true);
    assert_eq!(info["scope"], "user/*.rs offline_access");
    assert_eq!(info["client_id"], "app");
    assert_eq!(info["aud"], "https://m.example/fhir/t1");
    let rt = response.refresh_token.clone().unwrap();
    assert_eq!(auth.introspect(&app, &rt).unwrap()["active"], true);
    assert_eq!(
        auth.introspect(&app, "garbage").unwrap(),
        serde_json::json!({"active": false})
    );
    // Revoking the access token.
    auth.revoke(&app, &response.access_token).unwrap();
    assert_eq!(
        auth.introspect(&app, &response.access_token).unwrap()["active"],
        false
    );
    assert!(auth.verify_access_token(&response.access_token).is_err());
    // Revoking the refresh token ends the family.
    let code = get_code(&auth, &user, "user/*.rs offline_access", None);
    let response = auth.token(&code_request(&code)).unwrap();
    auth.revoke(&app, response.refresh_token.as_ref().unwrap())
        .unwrap();
    assert_eq!(
        auth.introspect(&app, response.refresh_token.as_ref().unwrap())
            .unwrap()["active"],
        false
    );
    assert!(auth.verify_access_token(&response.access_token).is_err());
    // Unknown tokens are fine.
    auth.revoke(&app, "nothing").unwrap();
}
