//! `medicus serve`: open the store, make sure the `default` tenant exists, listen, and shut down
//! gracefully on SIGINT/SIGTERM.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use medicus_cohort::service::{FeasibilityService, ServiceConfig};
use medicus_cohort::{CohortEngine, EngineError};

use medicus_auth::{Auth, AuthConfig, Records, ServerKey, SystemClock};
use medicus_server::auth::{AuthState, JwksFetchConfig, WebAuthConfig, http_jwks_fetcher};
use medicus_server::research_ops::ResearchConfig;
use medicus_server::{AppState, ServerConfig};
use medicus_store::Store;
use medicus_store::tenant::DEFAULT_TENANT;
use tokio::net::TcpListener;

use crate::cli::ServeArgs;
use crate::config::{FileConfig, ServeSettings};
use crate::error::CliError;

pub fn run(args: &ServeArgs, file: &FileConfig) -> Result<(), CliError> {
    let settings = ServeSettings::resolve(args, file)?;
    let server = Server::open(&settings)?;
    server.run(|_| {})
}

/// A store ready to be served: the data directory is open and the `default` tenant exists.
/// `demo` seeds data between [`Server::open`] and [`Server::run`].
pub struct Server {
    pub store: Arc<dyn Store>,
    addrs: Vec<SocketAddr>,
    listen: String,
    config: ServerConfig,
    server_key: ServerKey,
    web: WebAuthConfig,
    s3: Option<super::s3::S3Listener>,
    research: ResearchConfig,
    /// The data directory (the cohort index snapshot lives under it).
    data: PathBuf,
}

/// Where the server is reachable once it listens.
pub struct Listening {
    pub addr: SocketAddr,
}

impl Listening {
    /// The FHIR base URL of `tenant`.
    pub fn fhir_base(&self, tenant: &str) -> String {
        format!("http://{}/fhir/{tenant}", self.addr)
    }
}

impl Server {
    pub fn open(settings: &ServeSettings) -> Result<Server, CliError> {
        // Resolve the address before touching the data directory, so a typo changes nothing.
        let addrs: Vec<SocketAddr> = settings
            .listen
            .to_socket_addrs()
            .map_err(|e| CliError::ListenAddress {
                addr: settings.listen.clone(),
                message: e.to_string(),
            })?
            .collect();
        if addrs.is_empty() {
            return Err(CliError::ListenAddress {
                addr: settings.listen.clone(),
                message: "resolves to no address".into(),
            });
        }
        let store = super::open_store(&settings.database)?;
        let server_key =
            super::auth_admin::load_server_key(&settings.server_key_file, &settings.database)?;
        if store.create_tenant(DEFAULT_TENANT)? {
            tracing::info!(tenant = DEFAULT_TENANT, "created tenant");
        }
        let s3 = super::s3::prepare(&settings.s3, &settings.data, &store)?;
        let research = match &settings.trust_centre_key_file {
            Some(path) => ResearchConfig::with_key_file(path).map_err(|e| {
                CliError::Config(crate::config::ConfigError::Invalid {
                    key: "trust_centre_key_file",
                    message: e.to_string(),
                })
            })?,
            None => ResearchConfig::default(),
        };
        tracing::info!(
            data = %settings.data.display(),
            store = %settings.database.describe(),
            "store open"
        );
        Ok(Server {
            store,
            addrs,
            listen: settings.listen.clone(),
            config: settings.server.clone(),
            server_key,
            web: WebAuthConfig {
                trusted_proxies: settings.trusted_proxies.clone(),
                ..WebAuthConfig::default()
            },
            s3,
            research,
            data: settings.data.clone(),
        })
    }

    /// Listen and serve until SIGINT or SIGTERM. `on_listening` runs once the socket is bound,
    /// after the one line with the FHIR base URL has been printed.
    pub fn run(self, on_listening: impl FnOnce(&Listening)) -> Result<(), CliError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|source| CliError::Io {
                context: "cannot start the async runtime",
                source,
            })?;
        let Server {
            store,
            addrs,
            listen,
            config,
            server_key,
            web,
            s3,
            research,
            data,
        } = self;
        // Bound before the runtime runs: the issuer may name the port, and the auth setup
        // below reads the store, which must not happen on an async worker.
        let std_listener = std::net::TcpListener::bind(&addrs[..])
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| CliError::Listen {
                addr: listen.clone(),
                source,
            })?;
        let addr = std_listener
            .local_addr()
            .map_err(|source| CliError::Listen {
                addr: listen.clone(),
                source,
            })?;
        let auth = start_auth(&store, server_key, config.base_url.as_deref(), addr, web)?;
        let cohort = Cohort::start(&store, &data)?;
        let feasibility = Arc::new(FeasibilityService::new(
            cohort.engine.clone(),
            ServiceConfig::default(),
        ));
        let served = runtime.block_on(async move {
            runtime_purge(auth.core.clone());
            let listener =
                TcpListener::from_std(std_listener).map_err(|source| CliError::Listen {
                    addr: listen,
                    source,
                })?;
            let listening = Listening { addr };
            if let Some(s3) = s3 {
                super::s3::spawn(s3, shutdown_signal())?;
            }
            super::say(format_args!(
                "medicus: FHIR base URL {}",
                listening.fhir_base(DEFAULT_TENANT)
            ));
            on_listening(&listening);
            tracing::info!(%addr, "listening");

            let app = medicus_server::router(
                AppState::new(store, config)
                    .with_auth(auth)
                    .with_research(research)
                    .with_feasibility(feasibility),
            );
            // With the peer address, so audit events record the client's IP.
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown_signal())
            .await
            .map_err(|source| CliError::Io {
                context: "server failed",
                source,
            })
        });
        // The index is saved even when serving failed: it is as good as the feed it followed.
        cohort.stop();
        served?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// How often the change feed is polled: new data counts within a second.
const FOLLOW_EVERY: Duration = Duration::from_millis(200);
/// How often the snapshot is written while serving (and once at shutdown).
const SNAPSHOT_EVERY: Duration = Duration::from_secs(300);

/// The cohort index of `serve`: opened from its snapshot or built from the store, following
/// the change feed on a plain thread (store calls block), snapshotted now and then.
struct Cohort {
    engine: Arc<CohortEngine>,
    stop: Arc<AtomicBool>,
    follower: Option<std::thread::JoinHandle<()>>,
    saver: Option<std::thread::JoinHandle<()>>,
    snapshot: PathBuf,
}

impl Cohort {
    fn start(store: &Arc<dyn Store>, data: &Path) -> Result<Cohort, CliError> {
        let snapshot = medicus_cohort::snapshot_path(data);
        let engine = Arc::new(CohortEngine::default());
        let started = Instant::now();
        engine.open(&**store, &snapshot).map_err(|e| match e {
            EngineError::Store(e) => CliError::Store(e),
            EngineError::Io(source) => CliError::Io {
                context: "cohort index",
                source,
            },
            other => CliError::Io {
                context: "cohort index",
                source: std::io::Error::other(other.to_string()),
            },
        })?;
        tracing::info!(
            seconds = started.elapsed().as_secs_f64(),
            position = engine.position(),
            "cohort index ready"
        );
        let stop = Arc::new(AtomicBool::new(false));
        let follower = engine.follow(store.clone(), FOLLOW_EVERY, stop.clone());
        let saver = {
            let engine = engine.clone();
            let stop = stop.clone();
            let path = snapshot.clone();
            std::thread::Builder::new()
                .name("cohort-snapshot".into())
                .spawn(move || {
                    let mut saved = engine.position();
                    let mut last = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(500));
                        if last.elapsed() < SNAPSHOT_EVERY || engine.position() == saved {
                            continue;
                        }
                        last = Instant::now();
                        saved = engine.position();
                        if let Err(e) = engine.save_snapshot(&path) {
                            tracing::warn!(error = %e, "saving the cohort snapshot failed");
                        }
                    }
                })
                .map_err(|source| CliError::Io {
                    context: "cannot start the cohort snapshot thread",
                    source,
                })?
        };
        Ok(Cohort {
            engine,
            stop,
            follower: Some(follower),
            saver: Some(saver),
            snapshot,
        })
    }

    /// Stops following and writes the snapshot, so the next start needs no rebuild.
    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in [self.follower.take(), self.saver.take()]
            .into_iter()
            .flatten()
        {
            let _ = t.join();
        }
        match self.engine.save_snapshot(&self.snapshot) {
            Ok(()) => tracing::info!(path = %self.snapshot.display(), "cohort snapshot saved"),
            Err(e) => tracing::warn!(error = %e, "saving the cohort snapshot failed"),
        }
    }
}

/// The authorisation server: issuer `{base}/auth`, audience `{base}/fhir/{tenant}`, the
/// same as `medicus admin` computes from `--base-url`. Without a configured base URL the
/// bound address stands in (loopback for a wildcard address).
fn start_auth(
    store: &Arc<dyn Store>,
    server_key: ServerKey,
    base_url: Option<&str>,
    addr: SocketAddr,
    web: WebAuthConfig,
) -> Result<AuthState, CliError> {
    let base = match base_url {
        Some(b) => b.trim_end_matches('/').to_owned(),
        None => {
            let mut local = addr;
            if local.ip().is_unspecified() {
                local.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            tracing::warn!(
                "no base URL configured: tokens are issued for http://{local}; set --base-url for other clients"
            );
            format!("http://{local}")
        }
    };
    let records: Records = store.clone();
    let core = Auth::new(
        records,
        server_key,
        AuthConfig::new(format!("{base}/auth"), format!("{base}/fhir")),
        Arc::new(SystemClock),
    )
    .with_jwks_fetcher(http_jwks_fetcher(JwksFetchConfig::default()));
    core.ensure_signing_key()?;
    let core = Arc::new(core);
    Auth::start_background_refresh(&core).map_err(|source| CliError::Io {
        context: "cannot start the auth refresh thread",
        source,
    })?;
    Ok(AuthState::new(core, web))
}

/// Removes expired grants, codes, login sessions and revocation markers every ten minutes,
/// until the runtime stops.
fn runtime_purge(auth: Arc<Auth>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            every.tick().await;
            let auth = auth.clone();
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || auth.purge_expired()).await {
                tracing::warn!(error = %e, "purging expired auth records failed");
            }
        }
    });
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
