//! `medicus admin user create|role|disable`, `medicus admin client create`,
//! `medicus admin token`: identities, OAuth clients and service tokens for automation, written
//! through `medicus-auth` into the store's platform records.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};
use medicus_auth::clients::{NewClient, NewClientKind};
use medicus_auth::jws::Jwks;
use medicus_auth::tokens::TokenGrant;
use medicus_auth::users::{Membership, NewUser, User};
use medicus_auth::{Auth, AuthConfig, AuthError, Records, Role, ScopeSet, ServerKey, SystemClock};

use super::idp_admin::{audit_admin, audit_change};
use crate::cli::DataArgs;
use crate::config::{Database, FileConfig, data_dir, database};
use crate::error::CliError;
use medicus_audit::Kind;

/// Where the server key is and which URLs tokens name.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// File with the server key (32 bytes, base64) that seals TOTP seeds and signing keys;
    /// created with mode 0600 when missing [default: DATA/server.key]
    #[arg(long, env = "MEDICUS_SERVER_KEY_FILE", value_name = "FILE")]
    pub server_key_file: Option<PathBuf>,
    /// Public origin of the server: tokens are issued by `{URL}/auth` for `{URL}/fhir/{tenant}`
    #[arg(
        long,
        env = "MEDICUS_BASE_URL",
        value_name = "URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub base_url: String,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user with roles in one tenant. The password is read from standard input with
    /// --password-stdin, or from MEDICUS_NEW_PASSWORD; admin roles get a TOTP enrolment URI.
    Create {
        #[arg(long)]
        login: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        tenant: String,
        /// Roles in the tenant (comma-separated or repeated)
        #[arg(long = "role", value_delimiter = ',', required = true)]
        roles: Vec<String>,
        /// The user's FHIR resource in the tenant: Practitioner/<id> or Patient/<id>
        #[arg(long)]
        fhir_user: Option<String>,
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Set a user's roles in a tenant (an empty list removes the membership).
    Role {
        #[arg(long)]
        login: String,
        #[arg(long)]
        tenant: String,
        #[arg(long = "role", value_delimiter = ',')]
        roles: Vec<String>,
        #[arg(long)]
        fhir_user: Option<String>,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Disable a user (or enable again with --enable).
    Disable {
        #[arg(long)]
        login: String,
        #[arg(long)]
        enable: bool,
        #[command(flatten)]
        auth: AuthArgs,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ClientKindArg {
    /// A public app: PKCE, no secret.
    Public,
    /// Confidential with private_key_jwt (--jwks-file or --jwks-uri).
    Jwks,
    /// Confidential with a generated secret (printed once).
    Secret,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register an OAuth client (SMART app or backend service).
    Create {
        #[arg(long)]
        tenant: String,
        /// Client id [default: generated]
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        kind: ClientKindArg,
        /// Exact redirect URI (repeat for several)
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Scopes the client may ask for, space-separated
        #[arg(long)]
        scopes: String,
        #[arg(long)]
        jwks_file: Option<PathBuf>,
        #[arg(long)]
        jwks_uri: Option<String>,
        #[command(flatten)]
        auth: AuthArgs,
    },
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[arg(long)]
    pub tenant: String,
    /// system/ scopes, space-separated, e.g. "system/*.rs"
    #[arg(long)]
    pub scopes: String,
    /// Lifetime in seconds (at most one hour)
    #[arg(long, default_value_t = 300)]
    pub lifetime: i64,
    #[command(flatten)]
    pub auth: AuthArgs,
}

pub(super) fn open_auth(
    args: &AuthArgs,
    file: &FileConfig,
    lifetime: Option<i64>,
) -> Result<(Auth, Arc<dyn medicus_store::Store>), CliError> {
    let database = database(&args.data, file)?;
    let store = super::open_store(&database)?;
    let key = server_key(args, file, &database)?;
    let base = args.base_url.trim_end_matches('/');
    let mut config = AuthConfig::new(format!("{base}/auth"), format!("{base}/fhir"));
    if let Some(l) = lifetime {
        config.access_token_ttl_s = l;
    }
    let records: Records = store.clone();
    Ok((
        Auth::new(records, key, config, Arc::new(SystemClock)),
        store,
    ))
}

fn server_key(
    args: &AuthArgs,
    file: &FileConfig,
    database: &Database,
) -> Result<ServerKey, CliError> {
    let path = match &args.server_key_file {
        Some(p) => p.clone(),
        None => data_dir(&args.data, file).join("server.key"),
    };
    load_server_key(&path, database)
}

/// Reads the server key at `path`, or creates it (mode 0600) when the file does not exist.
/// `serve` and the admin commands share it, so tokens and sealed records agree.
pub(crate) fn load_server_key(
    path: &std::path::Path,
    database: &Database,
) -> Result<ServerKey, CliError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(ServerKey::from_base64(&text)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = ServerKey::generate()?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|source| CliError::Io {
                    context: "creating the server key's folder",
                    source,
                })?;
            }
            write_private(path, key.to_base64().as_bytes())?;
            if matches!(database, Database::Postgres(_)) {
                super::say(format_args!(
                    "created server key {} (every node needs the same key)",
                    path.display()
                ));
            }
            Ok(key)
        }
        Err(source) => Err(CliError::Io {
            context: "reading the server key",
            source,
        }),
    }
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path).map_err(|source| CliError::Io {
        context: "creating the server key",
        source,
    })?;
    f.write_all(bytes).map_err(|source| CliError::Io {
        context: "writing the server key",
        source,
    })
}

pub(super) fn parse_roles(roles: &[String]) -> Result<Vec<Role>, CliError> {
    roles
        .iter()
        .filter(|r| !r.trim().is_empty())
        .map(|r| {
            Role::parse(r.trim())
                .ok_or_else(|| CliError::Auth(AuthError::Invalid(format!("unknown role '{r}'"))))
        })
        .collect()
}

fn find_user(auth: &Auth, login: &str) -> Result<User, CliError> {
    auth.user_by_login(login)?
        .ok_or_else(|| CliError::Auth(AuthError::NotFound(format!("user {login}"))))
}

pub(super) fn require_tenant(
    store: &dyn medicus_store::Store,
    tenant: &str,
) -> Result<(), CliError> {
    if store.list_tenants()?.iter().any(|t| t == tenant) {
        Ok(())
    } else {
        Err(CliError::Auth(AuthError::NotFound(format!(
            "tenant {tenant} (create it with `medicus admin tenant create`)"
        ))))
    }
}

fn role_list(roles: &[Role]) -> String {
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    format!("[{}]", names.join(", "))
}

pub fn run_user(command: UserCommand, file: &FileConfig) -> Result<(), CliError> {
    match command {
        UserCommand::Create {
            login,
            name,
            tenant,
            roles,
            fhir_user,
            password_stdin,
            auth,
        } => {
            let roles = parse_roles(&roles)?;
            let (auth, store) = open_auth(&auth, file, None)?;
            require_tenant(&*store, &tenant)?;
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .map_err(|source| CliError::Io {
                        context: "reading the password",
                        source,
                    })?;
                Some(line.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                std::env::var("MEDICUS_NEW_PASSWORD").ok()
            };
            let role_names = role_list(&roles);
            let user = auth.create_user(NewUser {
                login,
                display_name: name,
                password,
                memberships: vec![Membership {
                    tenant: tenant.clone(),
                    roles,
                    fhir_user,
                }],
            })?;
            audit_change(
                &store,
                &tenant,
                format!("user {} created with roles {role_names}", user.id),
            )?;
            super::say(format_args!("created user {} ({})", user.login, user.id));
            if user.requires_totp() {
                let enrolment = auth.begin_totp(&user.id, "medicus")?;
                super::say(format_args!(
                    "TOTP required for this role; add to an authenticator app: {}",
                    enrolment.uri
                ));
            }
            Ok(())
        }
        UserCommand::Role {
            login,
            tenant,
            roles,
            fhir_user,
            auth,
        } => {
            let roles = parse_roles(&roles)?;
            let (auth, store) = open_auth(&auth, file, None)?;
            require_tenant(&*store, &tenant)?;
            let user = find_user(&auth, &login)?;
            let user = auth.set_membership(
                &user.id,
                Membership {
                    tenant: tenant.clone(),
                    roles,
                    fhir_user,
                },
            )?;
            let names: Vec<&str> = user.roles_in(&tenant).iter().map(|r| r.as_str()).collect();
            audit_change(
                &store,
                &tenant,
                format!("user {} roles set to [{}]", user.id, names.join(", ")),
            )?;
            super::say(format_args!(
                "user {}: roles in {tenant}: {}",
                user.login,
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            ));
            Ok(())
        }
        UserCommand::Disable {
            login,
            enable,
            auth,
        } => {
            let (auth, store) = open_auth(&auth, file, None)?;
            let user = find_user(&auth, &login)?;
            auth.set_disabled(&user.id, !enable)?;
            audit_admin(
                &store,
                None,
                Kind::AdminChange,
                format!(
                    "user {} {}",
                    user.id,
                    if enable { "enabled" } else { "disabled" }
                ),
            )?;
            super::say(format_args!(
                "user {} {}",
                user.login,
                if enable { "enabled" } else { "disabled" }
            ));
            Ok(())
        }
    }
}

pub fn run_client(command: ClientCommand, file: &FileConfig) -> Result<(), CliError> {
    let ClientCommand::Create {
        tenant,
        id,
        name,
        kind,
        redirect_uris,
        scopes,
        jwks_file,
        jwks_uri,
        auth,
    } = command;
    let (auth, store) = open_auth(&auth, file, None)?;
    require_tenant(&*store, &tenant)?;
    let kind = match kind {
        ClientKindArg::Public => NewClientKind::Public,
        ClientKindArg::Secret => NewClientKind::Secret,
        ClientKindArg::Jwks => {
            let jwks = match jwks_file {
                Some(path) => {
                    let text = std::fs::read_to_string(&path).map_err(|source| CliError::Io {
                        context: "reading the JWKS file",
                        source,
                    })?;
                    Some(Jwks::from_json(&text)?)
                }
                None => None,
            };
            NewClientKind::PrivateKeyJwt { jwks, jwks_uri }
        }
    };
    let (client, secret) = auth.register_client(NewClient {
        client_id: id,
        tenant: tenant.clone(),
        name,
        kind,
        redirect_uris,
        scopes,
    })?;
    audit_change(
        &store,
        &tenant,
        format!("client {} registered", client.client_id),
    )?;
    super::say(format_args!("created client {}", client.client_id));
    if let Some(secret) = secret {
        super::say(format_args!("client_secret (shown once): {secret}"));
    }
    Ok(())
}

/// Prints a service access token (role `service`, system scopes) for scripts.
pub fn run_token(args: TokenArgs, file: &FileConfig) -> Result<(), CliError> {
    if !(1..=3600).contains(&args.lifetime) {
        return Err(CliError::Auth(AuthError::Invalid(
            "--lifetime must be 1..3600 seconds".into(),
        )));
    }
    let scopes = ScopeSet::parse(&args.scopes)?;
    if scopes.is_empty() || scopes.iter().any(|s| !s.to_string().starts_with("system/")) {
        return Err(CliError::Auth(AuthError::Invalid(
            "admin tokens carry system/ scopes only".into(),
        )));
    }
    let (auth, store) = open_auth(&args.auth, file, Some(args.lifetime))?;
    require_tenant(&*store, &args.tenant)?;
    auth.ensure_signing_key()?;
    let tenant = args.tenant.clone();
    let (token, claims) = auth.issue_access_token(&TokenGrant {
        subject: "medicus-admin".into(),
        tenant: args.tenant,
        roles: vec![Role::Service],
        scopes,
        patient: None,
        fhir_user: None,
        client_id: "medicus-cli".into(),
        family: None,
    })?;
    audit_admin(
        &store,
        Some(&tenant),
        Kind::TokenIssued,
        format!(
            "service token {} issued by the admin CLI, scopes {}, lifetime {} s",
            claims.jti, claims.scope, args.lifetime
        ),
    )?;
    super::say(format_args!("{token}"));
    Ok(())
}
