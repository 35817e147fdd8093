//! `medicus admin idp add|list|remove`: a tenant's external OpenID providers (federated login).
//! `add` reads the provider's discovery document unless every endpoint is given, stores the
//! provider in the platform records with medicus's client secret sealed under the server key
//! (it must be sent to the provider's token endpoint, so it is encrypted, not hashed), and
//! prints the redirect URI to register at the provider. Each change is an audit event
//! (*admin-change*) in the tenant's chain, naming the provider but never its secret.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;
use medicus_audit::{AuditEvent, AuditTrail, Kind};
use medicus_auth::federation::IdentityProvider;
use medicus_auth::{AuthError, Role};
use medicus_server::auth::{ProviderHttpConfig, callback_url, discover};

use super::auth_admin::{AuthArgs, open_auth, parse_roles, require_tenant};
use crate::config::FileConfig;
use crate::error::CliError;

// Parsed once per process: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum IdpCommand {
    /// Let a tenant's users sign in through its own OpenID provider (e.g. Keycloak), with
    /// provider roles or groups mapped to medicus roles. Replaces a provider of the same id.
    Add {
        #[arg(long)]
        tenant: String,
        /// Short name of the provider in the tenant: letters, digits, - and _
        #[arg(long, default_value = "oidc")]
        id: String,
        /// Shown on the login page as "Sign in with NAME" [default: the id]
        #[arg(long)]
        name: Option<String>,
        /// The provider's issuer, exactly as in its id_tokens; endpoints are discovered at
        /// ISSUER/.well-known/openid-configuration
        #[arg(long)]
        issuer: String,
        /// medicus's client id at the provider
        #[arg(long)]
        client_id: String,
        /// File holding medicus's client secret at the provider (stored sealed under the
        /// server key) [default: a public client]
        #[arg(long, value_name = "FILE")]
        client_secret_file: Option<PathBuf>,
        /// Claim holding the user's roles or groups, a dot path such as realm_access.roles
        #[arg(long)]
        role_claim: String,
        /// PROVIDER_VALUE=ROLE: a value of the role claim and the medicus role it grants
        /// (repeat for several; ROLE may be a comma-separated list)
        #[arg(long = "map", value_name = "VALUE=ROLE", required = true)]
        map: Vec<String>,
        /// Claim holding the user's FHIR resource (Practitioner/<id>)
        #[arg(long)]
        fhir_user_claim: Option<String>,
        /// Overrides the discovered authorization endpoint
        #[arg(long)]
        authorization_endpoint: Option<String>,
        /// Overrides the discovered token endpoint
        #[arg(long)]
        token_endpoint: Option<String>,
        /// Overrides the discovered JWKS URI
        #[arg(long)]
        jwks_uri: Option<String>,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// List a tenant's providers, one per line.
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Remove a provider (its users stay, but cannot sign in through it any more).
    Remove {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        id: String,
        #[command(flatten)]
        auth: AuthArgs,
    },
}

fn invalid(message: impl Into<String>) -> CliError {
    CliError::Auth(AuthError::Invalid(message.into()))
}

/// `doctors=clinician` or `admins=tenant-admin,clinician` → pairs.
fn parse_map(entries: &[String]) -> Result<Vec<(String, Role)>, CliError> {
    let mut map = Vec::new();
    for entry in entries {
        let Some((value, roles)) = entry.split_once('=') else {
            return Err(invalid(format!("--map expects VALUE=ROLE, not '{entry}'")));
        };
        if value.is_empty() {
            return Err(invalid(format!("--map '{entry}' has no provider value")));
        }
        let roles: Vec<String> = roles.split(',').map(str::to_owned).collect();
        for role in parse_roles(&roles)? {
            map.push((value.to_owned(), role));
        }
    }
    Ok(map)
}

/// Records an admin change in the tenant's chain and waits until it is stored.
pub(super) fn audit_change(
    store: &Arc<dyn medicus_store::Store>,
    tenant: &str,
    what: String,
) -> Result<(), CliError> {
    audit_admin(store, Some(tenant), Kind::AdminChange, what)
}

/// Records a `kind` event of the admin CLI in the tenant's chain (the platform chain for
/// `None`) and waits until it is stored: a change that cannot be audited is reported.
pub(super) fn audit_admin(
    store: &Arc<dyn medicus_store::Store>,
    tenant: Option<&str>,
    kind: Kind,
    what: String,
) -> Result<(), CliError> {
    let mut event = AuditEvent::new(tenant.map(str::to_owned), kind);
    event.agent.user = Some("medicus-admin".into());
    event.agent.client = Some("medicus-cli".into());
    event.outcome_desc = Some(what);
    let trail = AuditTrail::new(store.clone());
    trail
        .record(event)
        .and_then(|()| trail.flush())
        .map_err(|e| invalid(format!("the change was made but not audited: {e}")))
}

fn read_secret(path: &PathBuf) -> Result<String, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
        context: "reading the client secret file",
        source,
    })?;
    let secret = text.trim_end_matches(['\r', '\n']).to_owned();
    if secret.is_empty() {
        return Err(invalid("the client secret file is empty"));
    }
    Ok(secret)
}

pub fn run(command: IdpCommand, file: &FileConfig) -> Result<(), CliError> {
    match command {
        IdpCommand::Add {
            tenant,
            id,
            name,
            issuer,
            client_id,
            client_secret_file,
            role_claim,
            map,
            fhir_user_claim,
            authorization_endpoint,
            token_endpoint,
            jwks_uri,
            auth: args,
        } => {
            let role_map = parse_map(&map)?;
            let secret = client_secret_file.as_ref().map(read_secret).transpose()?;
            let (authorization_endpoint, token_endpoint, jwks_uri) =
                match (authorization_endpoint, token_endpoint, jwks_uri) {
                    (Some(a), Some(t), Some(j)) => (a, t, j),
                    (a, t, j) => {
                        let meta = discover(&issuer, &ProviderHttpConfig::default())
                            .map_err(|e| invalid(e.to_string()))?;
                        (
                            a.unwrap_or(meta.authorization_endpoint),
                            t.unwrap_or(meta.token_endpoint),
                            j.unwrap_or(meta.jwks_uri),
                        )
                    }
                };
            let (auth, store) = open_auth(&args, file, None)?;
            require_tenant(&*store, &tenant)?;
            let idp = auth.register_idp(
                IdentityProvider {
                    id,
                    tenant,
                    display_name: name,
                    issuer,
                    authorization_endpoint,
                    token_endpoint,
                    jwks_uri,
                    client_id,
                    sealed_client_secret: None,
                    role_claim,
                    role_map,
                    fhir_user_claim,
                },
                secret.as_deref(),
            )?;
            audit_change(
                &store,
                &idp.tenant,
                format!("identity provider {} set ({})", idp.id, idp.issuer),
            )?;
            super::say(format_args!(
                "identity provider {} of tenant {} ({})",
                idp.id, idp.tenant, idp.issuer
            ));
            super::say(format_args!(
                "register this redirect URI at the provider: {}",
                callback_url(&auth.config().issuer)
            ));
            Ok(())
        }
        IdpCommand::List { tenant, auth: args } => {
            let (auth, _) = open_auth(&args, file, None)?;
            for idp in auth.list_idps(&tenant)? {
                let map: Vec<String> = idp
                    .role_map
                    .iter()
                    .map(|(v, r)| format!("{v}={}", r.as_str()))
                    .collect();
                super::say(format_args!(
                    "{}\t{}\t{}\t{}\t{}",
                    idp.id,
                    idp.issuer,
                    idp.client_id,
                    idp.role_claim,
                    map.join(",")
                ));
            }
            Ok(())
        }
        IdpCommand::Remove {
            tenant,
            id,
            auth: args,
        } => {
            let (auth, store) = open_auth(&args, file, None)?;
            if auth.remove_idp(&tenant, &id)? {
                audit_change(&store, &tenant, format!("identity provider {id} removed"))?;
                super::say(format_args!(
                    "removed identity provider {id} of tenant {tenant}"
                ));
                Ok(())
            } else {
                Err(CliError::Auth(AuthError::NotFound(format!(
                    "identity provider {id} of tenant {tenant}"
                ))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_maps() {
        let map = parse_map(&[
            "doctors=clinician".into(),
            "it=tenant-admin,researcher".into(),
        ])
        .unwrap();
        assert_eq!(
            map,
            vec![
                ("doctors".to_string(), Role::Clinician),
                ("it".to_string(), Role::TenantAdmin),
                ("it".to_string(), Role::Researcher),
            ]
        );
        assert!(parse_map(&["doctors".into()]).is_err());
        assert!(parse_map(&["=clinician".into()]).is_err());
        assert!(parse_map(&["x=wizard".into()]).is_err());
    }
}
