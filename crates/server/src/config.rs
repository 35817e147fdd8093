//! Server configuration, set by the CLI.

use std::path::PathBuf;

/// Configuration of the FHIR HTTP layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Public origin of the server (e.g. `https://fhir.example.org`, no trailing `/fhir`), used for
    /// `fullUrl`, `Location` and paging links. When `None`, it is derived from the request's
    /// `Host` header (and `X-Forwarded-Proto`, defaulting to `http`).
    pub base_url: Option<String>,
    /// Largest accepted request body; larger bodies get 413.
    pub max_body_bytes: usize,
    /// Deepest accepted JSON nesting of a request body; deeper bodies get 400 before parsing.
    pub max_json_depth: usize,
    /// Page size of search and history when `_count` is absent.
    pub default_page_size: usize,
    /// Upper bound for `_count`.
    pub max_page_size: usize,
    /// Where bulk jobs write their files (the CLI uses `<data>/bulk`).
    pub bulk_dir: PathBuf,
    /// Largest accepted `$import` body (streamed to disk, so not bounded by `max_body_bytes`).
    pub max_import_bytes: u64,
    /// Most links in one chained or reverse-chained (`_has`) search parameter; deeper: 400.
    pub max_chain_depth: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            base_url: None,
            max_body_bytes: 16 * 1024 * 1024,
            max_json_depth: 64,
            default_page_size: medicus_store::search::DEFAULT_COUNT,
            max_page_size: medicus_store::search::MAX_COUNT,
            bulk_dir: std::env::temp_dir().join("medicus-bulk"),
            max_import_bytes: 10 << 30,
            max_chain_depth: medicus_store::search::DEFAULT_MAX_CHAIN_DEPTH,
        }
    }
}
