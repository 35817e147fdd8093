//! Shared application state handed to every handler.

use std::sync::Arc;

use medicus_bulk::jobs::JobRegistry;
use medicus_store::api::Store;

use crate::config::ServerConfig;

/// What the router needs: the store, the configuration and the bulk job registry. Built by the CLI.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: ServerConfig,
    /// `$export` / `$import` jobs; their files live under `config.bulk_dir`.
    pub jobs: Arc<JobRegistry>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, config: ServerConfig) -> Self {
        let jobs = Arc::new(JobRegistry::new(config.bulk_dir.clone()));
        AppState {
            store,
            config,
            jobs,
        }
    }
}
