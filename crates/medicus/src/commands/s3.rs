//! The S3 listener of `medicus serve`/`demo` (`--s3-listen`, `--s3-domain`,
//! `--master-key-file`) and `medicus admin s3-key`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use clap::{Args, Subcommand};
use medicus_objects::access;
use medicus_objects::{KeyProvider, LocalMasterKey, ObjectError, Objects};
use medicus_server::s3::S3Options;
use medicus_store::Store;

use crate::cli::{DataArgs, ServeArgs};
use crate::config::{FileConfig, data_dir, database};
use crate::error::CliError;

/// The listener's default address.
pub const DEFAULT_S3_LISTEN: &str = "127.0.0.1:9000";

/// Flags of `serve` and `demo` for the S3 listener.
#[derive(Debug, Clone, Default, Args)]
pub struct S3Args {
    /// Address of the S3 listener, `IP:PORT`; port 0 picks a free port; `off` disables it
    /// [default: 127.0.0.1:9000; when that is taken the server starts without S3 and says so]
    #[arg(long, env = "MEDICUS_S3_LISTEN", value_name = "ADDR")]
    pub s3_listen: Option<String>,

    /// Domain for virtual-hosted-style requests (`BUCKET.DOMAIN`); `localhost` always is one;
    /// repeat for several
    #[arg(
        long = "s3-domain",
        env = "MEDICUS_S3_DOMAINS",
        value_name = "DOMAIN",
        value_delimiter = ','
    )]
    pub s3_domains: Vec<String>,

    /// File with the master key (32 bytes, base64) that wraps the tenants' object keys and
    /// the S3 secrets; created with mode 0600 when missing. `MEDICUS_MASTER_KEY` holds the key
    /// itself instead [default: DATA/master.key]
    #[arg(long, env = "MEDICUS_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
}

/// Resolved S3 settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// `None`: off.
    pub listen: Option<String>,
    /// Whether `listen` is the default (a busy default port is not fatal).
    pub default_listen: bool,
    pub domains: Vec<String>,
    pub master_key_file: Option<PathBuf>,
}

impl S3Settings {
    pub fn resolve(args: &ServeArgs) -> S3Settings {
        let a = &args.s3;
        let (listen, default_listen) = match a.s3_listen.as_deref().map(str::trim) {
            Some("off") | Some("") => (None, false),
            Some(addr) => (Some(addr.to_owned()), false),
            None => (Some(DEFAULT_S3_LISTEN.to_owned()), true),
        };
        S3Settings {
            listen,
            default_listen,
            domains: a.s3_domains.clone(),
            master_key_file: a.master_key_file.clone(),
        }
    }
}

fn objects_error(e: ObjectError) -> CliError {
    CliError::Io {
        context: "object storage",
        source: std::io::Error::other(e.to_string()),
    }
}

/// The master key as configured.
pub fn master_key(file: Option<&Path>, data: &Path) -> Result<Arc<dyn KeyProvider>, CliError> {
    Ok(Arc::new(
        LocalMasterKey::from_env_or_file(file, data).map_err(objects_error)?,
    ))
}

/// A bound S3 listener, ready to serve once the runtime runs.
pub struct S3Listener {
    listener: std::net::TcpListener,
    pub addr: SocketAddr,
    service: s3s::service::S3Service,
    objects: Arc<Objects>,
    domains: Vec<String>,
}

/// Binds the listener and opens the object store (collecting what a crash left behind).
/// `None` when S3 is off, or its default address is taken.
pub fn prepare(
    settings: &S3Settings,
    data: &Path,
    store: &Arc<dyn Store>,
) -> Result<Option<S3Listener>, CliError> {
    let Some(listen) = &settings.listen else {
        return Ok(None);
    };
    let listener = match std::net::TcpListener::bind(listen.as_str())
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
    {
        Ok(l) => l,
        Err(e) if settings.default_listen => {
            tracing::warn!(addr = %listen, error = %e, "S3 listener not started (use --s3-listen)");
            return Ok(None);
        }
        Err(source) => {
            return Err(CliError::Listen {
                addr: listen.clone(),
                source,
            });
        }
    };
    let addr = listener.local_addr().map_err(|source| CliError::Listen {
        addr: listen.clone(),
        source,
    })?;
    let master = master_key(settings.master_key_file.as_deref(), data)?;
    let objects =
        Arc::new(Objects::open(data, store.clone(), master.clone()).map_err(objects_error)?);
    let started = SystemTime::now();
    match objects.collect_orphans(started) {
        Ok(0) => {}
        Ok(n) => tracing::info!(files = n, "collected orphaned object data"),
        Err(e) => tracing::warn!(error = %e, "orphan collection failed"),
    }
    let service = medicus_server::s3::service(
        objects.clone(),
        master,
        &S3Options {
            domains: settings.domains.clone(),
        },
    );
    Ok(Some(S3Listener {
        listener,
        addr,
        service,
        objects,
        domains: settings.domains.clone(),
    }))
}

/// Serves S3 on the runtime this runs in until `shutdown`.
pub fn spawn(
    l: S3Listener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), CliError> {
    let listener =
        tokio::net::TcpListener::from_std(l.listener).map_err(|source| CliError::Listen {
            addr: l.addr.to_string(),
            source,
        })?;
    super::say(format_args!("medicus: S3 endpoint http://{}", l.addr));
    tracing::info!(addr = %l.addr, "S3 listening");
    // Rules count in days: an hourly pass is precise enough.
    medicus_server::s3::spawn_lifecycle(l.objects.clone(), std::time::Duration::from_secs(3600));
    let cors = medicus_server::s3::Cors::new(l.objects, &S3Options { domains: l.domains });
    tokio::spawn(async move {
        if let Err(e) = medicus_server::s3::serve(listener, l.service, cors, shutdown).await {
            tracing::error!(error = %e, "S3 listener failed");
        }
    });
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum S3KeyCommand {
    /// Create an access key of a tenant; prints the key id and the secret (shown only once).
    Create {
        /// The tenant the key belongs to.
        #[arg(long)]
        tenant: String,
        /// `BUCKET:PERM` with PERM one of read, rw, admin; `*:PERM` for every bucket of the
        /// tenant; repeat for several. Creating a bucket needs admin on its name (or `*`).
        #[arg(long = "bucket", value_name = "BUCKET:PERM")]
        buckets: Vec<String>,
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, env = "MEDICUS_MASTER_KEY_FILE", value_name = "FILE")]
        master_key_file: Option<PathBuf>,
    },
    /// Delete an access key.
    Delete {
        id: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Re-wrap every tenant key and access-key secret under a new master key (no object data is
    /// rewritten); then start the server with the new key file.
    RotateMaster {
        /// The new master key file (created with mode 0600 if missing).
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
        #[command(flatten)]
        data: DataArgs,
        /// The current master key file [default: as serve finds it]
        #[arg(long, env = "MEDICUS_MASTER_KEY_FILE", value_name = "FILE")]
        master_key_file: Option<PathBuf>,
    },
    /// Start a new key version for a tenant's objects: new data keys are wrapped by it, existing
    /// ones keep theirs (nothing is rewritten).
    RotateTenant {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, env = "MEDICUS_MASTER_KEY_FILE", value_name = "FILE")]
        master_key_file: Option<PathBuf>,
    },
}

pub fn run_key(command: S3KeyCommand, file: &FileConfig) -> Result<(), CliError> {
    match command {
        S3KeyCommand::Create {
            tenant,
            buckets,
            data,
            master_key_file,
        } => {
            let mut grants = BTreeMap::new();
            for b in &buckets {
                let (bucket, perm) = access::parse_grant(b).map_err(objects_error)?;
                grants.insert(bucket, perm);
            }
            if grants.is_empty() {
                return Err(objects_error(ObjectError::InvalidArgument(
                    "name at least one --bucket BUCKET:PERM (or '*:PERM')".into(),
                )));
            }
            let dir = data_dir(&data, file);
            let store = super::open_store(&database(&data, file)?)?;
            super::auth_admin::require_tenant(&*store, &tenant)?;
            let master = master_key(master_key_file.as_deref(), &dir)?;
            let (id, secret) = access::create_key(
                store.as_ref(),
                master.as_ref(),
                &tenant,
                grants.clone(),
                medicus_objects::engine::now_us(),
            )
            .map_err(objects_error)?;
            log_key_change(&tenant, "create", &id);
            super::idp_admin::audit_change(
                &store,
                &tenant,
                format!("S3 access key {id} created for {}", grant_list(&grants)),
            )?;
            super::say(format_args!("access key id:     {id}"));
            super::say(format_args!("secret access key: {secret}"));
            let list: Vec<String> = grants.iter().map(|(b, p)| format!("{b}:{p}")).collect();
            super::say(format_args!("tenant {tenant}, buckets {}", list.join(", ")));
            Ok(())
        }
        S3KeyCommand::RotateMaster {
            new_key_file,
            data,
            master_key_file,
        } => {
            let dir = data_dir(&data, file);
            let store = super::open_store(&database(&data, file)?)?;
            let old = master_key(master_key_file.as_deref(), &dir)?;
            let new = LocalMasterKey::load_or_create(&new_key_file).map_err(objects_error)?;
            if new.key_id() == old.key_id() {
                return Err(objects_error(ObjectError::InvalidArgument(
                    "the new master key is the current one".into(),
                )));
            }
            let objects = Objects::open(&dir, store.clone(), old.clone()).map_err(objects_error)?;
            let tenants = objects.keyring().rewrap_all(&new).map_err(objects_error)?;
            let keys =
                access::rewrap_all(store.as_ref(), old.as_ref(), &new).map_err(objects_error)?;
            tracing::info!(tenants, keys, "master key rotated");
            super::idp_admin::audit_admin(
                &store,
                None,
                medicus_audit::Kind::AdminChange,
                format!(
                    "master key rotated to {}: {tenants} tenant keys, {keys} access keys re-wrapped",
                    new.key_id()
                ),
            )?;
            super::say(format_args!(
                "re-wrapped {tenants} tenant keys and {keys} access keys under {}; start the server with --master-key-file {}",
                new.key_id(),
                new_key_file.display()
            ));
            Ok(())
        }
        S3KeyCommand::RotateTenant {
            tenant,
            data,
            master_key_file,
        } => {
            let dir = data_dir(&data, file);
            let store = super::open_store(&database(&data, file)?)?;
            let master = master_key(master_key_file.as_deref(), &dir)?;
            let objects = Objects::open(&dir, store.clone(), master).map_err(objects_error)?;
            let v = objects
                .keyring()
                .rotate_tenant_key(&tenant)
                .map_err(objects_error)?;
            super::idp_admin::audit_change(
                &store,
                &tenant,
                format!("object key of the tenant rotated to version {v}"),
            )?;
            super::say(format_args!("tenant {tenant}: object key version {v}"));
            Ok(())
        }
        S3KeyCommand::Delete { id, data } => {
            let store = super::open_store(&database(&data, file)?)?;
            if access::delete_key(store.as_ref(), &id).map_err(objects_error)? {
                log_key_change("-", "delete", &id);
                super::idp_admin::audit_admin(
                    &store,
                    None,
                    medicus_audit::Kind::AdminChange,
                    format!("S3 access key {id} deleted"),
                )?;
                super::say(format_args!("deleted {id}"));
                Ok(())
            } else {
                Err(objects_error(ObjectError::InvalidArgument(format!(
                    "no access key {id}"
                ))))
            }
        }
    }
}

fn grant_list<P: std::fmt::Display>(grants: &BTreeMap<String, P>) -> String {
    let list: Vec<String> = grants.iter().map(|(b, p)| format!("{b}:{p}")).collect();
    list.join(", ")
}

/// Key changes go to the log (the key id and tenant only; never the secret).
fn log_key_change(tenant: &str, action: &str, key_id: &str) {
    tracing::info!(action, tenant, key_id, "S3 access key changed");
}
