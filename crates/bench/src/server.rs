//! An in-process medicus server on a free loopback port, over a fresh store.

use std::net::SocketAddr;
use std::sync::Arc;

use medicus_server::{AppState, ServerConfig};
use medicus_store::{SqliteStore, Store};
use tokio::task::JoinHandle;

use crate::BenchError;

pub struct BenchServer {
    pub addr: SocketAddr,
    handle: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl BenchServer {
    /// Starts a server with one tenant `bench` on a new data directory.
    pub async fn start() -> Result<BenchServer, BenchError> {
        let dir = tempfile::tempdir()?;
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path())?);
        store.create_tenant("bench")?;
        let (addr, handle) = spawn(store).await?;
        Ok(BenchServer {
            addr,
            handle,
            _dir: dir,
        })
    }

    pub fn base(&self) -> String {
        format!("http://{}/fhir/bench", self.addr)
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }
}

/// Serves `store` on a free loopback port until the returned task is aborted.
pub async fn spawn(store: Arc<dyn Store>) -> Result<(SocketAddr, JoinHandle<()>), BenchError> {
    // `MEDICUS_BENCH_AUDIT=off`: the baseline without the audit trail (BENCHMARKS.md, Audit).
    let state = if std::env::var("MEDICUS_BENCH_AUDIT").is_ok_and(|v| v == "off") {
        AppState::with_audit(store, ServerConfig::default(), None)
    } else {
        AppState::new(store, ServerConfig::default())
    };
    // The suite measures the FHIR engine; token verification has its own benchmark
    // (`cargo bench -p medicus-auth --bench token_verify`), so requests carry no token here.
    let app = medicus_server::router(state.with_open_access());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        let _ = axum_serve(listener, app).await;
    });
    Ok((addr, handle))
}

async fn axum_serve(listener: tokio::net::TcpListener, app: axum::Router) -> std::io::Result<()> {
    axum::serve(listener, app).await
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        self.handle.abort();
    }
}
