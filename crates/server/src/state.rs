//! Shared application state handed to every handler.

use std::sync::Arc;

use medicus_store::api::Store;

use crate::config::ServerConfig;

/// What the router needs: the store and the configuration. Built by the CLI.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: ServerConfig,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, config: ServerConfig) -> Self {
        AppState { store, config }
    }
}
