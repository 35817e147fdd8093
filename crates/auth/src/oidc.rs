//! Discovery documents: OpenID Provider metadata (`/auth/.well-known/openid-configuration`),
//! SMART configuration (`/fhir/{tenant}/.well-known/smart-configuration`), userinfo claims.

use serde_json::{Value, json};

use crate::error::AuthError;
use crate::service::Auth;
use crate::tokens::Principal;

pub const SCOPES_SUPPORTED: &[&str] = &[
    "openid",
    "fhirUser",
    "profile",
    "launch",
    "launch/patient",
    "offline_access",
    "online_access",
    "patient/*.rs",
    "patient/*.cruds",
    "user/*.rs",
    "user/*.cruds",
    "system/*.rs",
    "system/*.cruds",
];

pub const SMART_CAPABILITIES: &[&str] = &[
    "launch-standalone",
    "launch-ehr",
    "client-public",
    "client-confidential-asymmetric",
    "sso-openid-connect",
    "context-standalone-patient",
    "context-ehr-patient",
    "permission-v2",
    "permission-v1",
    "permission-patient",
    "permission-user",
    "permission-offline",
    "permission-online",
    "authorize-post",
];

impl Auth {
    fn endpoint(&self, path: &str) -> String {
        format!("{}/{path}", self.config.issuer)
    }

    /// OpenID Provider metadata (OIDC Discovery 1.0 §3).
    pub fn openid_configuration(&self) -> Value {
        json!({
            "issuer": self.config.issuer,
            "authorization_endpoint": self.endpoint("authorize"),
            "token_endpoint": self.endpoint("token"),
            "userinfo_endpoint": self.endpoint("userinfo"),
            "jwks_uri": self.endpoint("jwks"),
            "introspection_endpoint": self.endpoint("introspect"),
            "revocation_endpoint": self.endpoint("revoke"),
            "scopes_supported": SCOPES_SUPPORTED,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "client_secret_post", "none"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "fhirUser", "name", "preferred_username"],
        })
    }

    /// SMART App Launch 2.2 configuration for one tenant's FHIR base.
    pub fn smart_configuration(&self, tenant: &str) -> Value {
        json!({
            "issuer": self.config.issuer,
            "jwks_uri": self.endpoint("jwks"),
            "authorization_endpoint": self.endpoint("authorize"),
            "token_endpoint": self.endpoint("token"),
            "introspection_endpoint": self.endpoint("introspect"),
            "revocation_endpoint": self.endpoint("revoke"),
            "userinfo_endpoint": self.endpoint("userinfo"),
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "client_secret_post", "none"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
            "scopes_supported": SCOPES_SUPPORTED,
            "response_types_supported": ["code"],
            "capabilities": SMART_CAPABILITIES,
            "code_challenge_methods_supported": ["S256"],
            "fhir_base": self.config.audience(tenant),
        })
    }

    /// The JWKS document.
    pub fn jwks_json(&self) -> Result<Value, AuthError> {
        serde_json::to_value(self.jwks()?).map_err(|e| AuthError::Invalid(e.to_string()))
    }

    /// Userinfo claims (OIDC Core §5.3) for a verified access token with `openid`.
    pub fn userinfo(&self, principal: &Principal) -> Result<Value, AuthError> {
        if !principal.scopes.has(&crate::scope::Scope::OpenId) {
            return Err(AuthError::InvalidToken("token lacks the openid scope"));
        }
        let user = self
            .user(&principal.subject)?
            .filter(|u| !u.disabled)
            .ok_or(AuthError::InvalidToken("user no longer active"))?;
        let mut out = json!({ "sub": user.id });
        if principal.scopes.has(&crate::scope::Scope::Profile) {
            out["name"] = json!(user.display_name);
            out["preferred_username"] = json!(user.login);
        }
        if principal.scopes.has(&crate::scope::Scope::FhirUser)
            && let Some(r) = user
                .membership(&principal.tenant)
                .and_then(|m| m.fhir_user.as_ref())
        {
            out["fhirUser"] = json!(format!("{}/{r}", self.config.audience(&principal.tenant)));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::service::tests::auth;

    #[test]
    fn discovery_documents() {
        let (auth, _, _) = auth();
        let oidc = auth.openid_configuration();
        assert_eq!(oidc["issuer"], "https://m.example/auth");
        assert_eq!(oidc["token_endpoint"], "https://m.example/auth/token");
        assert_eq!(
            oidc["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert!(
            oidc["id_token_signing_alg_values_supported"]
                .as_array()
                .unwrap()
                .contains(&"RS256".into())
        );
        let smart = auth.smart_configuration("t1");
        for cap in [
            "launch-standalone",
            "launch-ehr",
            "client-public",
            "client-confidential-asymmetric",
            "sso-openid-connect",
            "context-standalone-patient",
            "permission-v2",
            "permission-v1",
            "permission-patient",
            "permission-user",
            "authorize-post",
        ] {
            assert!(
                smart["capabilities"]
                    .as_array()
                    .unwrap()
                    .contains(&cap.into()),
                "{cap}"
            );
        }
        assert!(
            smart["token_endpoint_auth_methods_supported"]
                .as_array()
                .unwrap()
                .contains(&"private_key_jwt".into())
        );
        assert_eq!(
            smart["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        let jwks = auth.jwks_json().unwrap();
        assert_eq!(jwks["keys"][0]["kty"], "RSA");
        assert!(jwks["keys"][0].get("d").is_none());
    }
}
