//! Shared application state handed to every handler.

use std::sync::Arc;

use medicus_audit::AuditTrail;
use medicus_bulk::jobs::JobRegistry;
use medicus_cohort::service::FeasibilityService;
use medicus_store::api::Store;

use crate::access::AccessControl;
use crate::auth::AuthState;
use crate::config::ServerConfig;
use crate::research_ops::ResearchConfig;

/// What the router needs: the store, the configuration, the bulk job registry and the audit
/// trail. Built by the CLI.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: ServerConfig,
    /// `$export` / `$import` jobs; their files live under `config.bulk_dir`.
    pub jobs: Arc<JobRegistry>,
    /// Where every FHIR interaction is recorded; `None` turns auditing off (only for
    /// benchmark baselines).
    pub audit: Option<AuditTrail>,
    /// The OAuth2/OIDC/SMART authorisation server (`/auth`, the SMART configuration); `None`
    /// serves neither. Set with [`AppState::with_auth`].
    pub auth: Option<AuthState>,
    /// Whether FHIR requests need a token. [`AccessControl::Enforced`] unless the embedder
    /// turns it off with [`AppState::with_open_access`].
    pub access_control: AccessControl,
    /// The research operations' settings (`$research-objection`, the trust centre's
    /// `$pseudonymize`/`$de-pseudonymize`); without a trust-centre key the latter answer 501.
    pub research: Arc<ResearchConfig>,
    /// The feasibility service (`/research/feasibility`); `None` answers those routes with 503.
    /// Set with [`AppState::with_feasibility`].
    pub feasibility: Option<Arc<FeasibilityService>>,
}

impl AppState {
    /// State with an audit trail appending to `store` itself.
    pub fn new(store: Arc<dyn Store>, config: ServerConfig) -> Self {
        let audit = AuditTrail::new(store.clone());
        AppState::with_audit(store, config, Some(audit))
    }

    /// State with the given trail (shared with other components, e.g. the auth layer), or
    /// none: without a trail nothing is audited.
    pub fn with_audit(
        store: Arc<dyn Store>,
        config: ServerConfig,
        audit: Option<AuditTrail>,
    ) -> Self {
        let jobs = Arc::new(JobRegistry::new(config.bulk_dir.clone()));
        AppState {
            store,
            config,
            jobs,
            audit,
            auth: None,
            access_control: AccessControl::Enforced,
            research: Arc::new(ResearchConfig::default()),
            feasibility: None,
        }
    }

    /// No token checks on the FHIR API: every request may do everything. Only for embedding
    /// the router behind something that has decided already (the in-process test harness);
    /// the CLI never builds this.
    pub fn with_open_access(mut self) -> Self {
        self.access_control = AccessControl::Open;
        self
    }

    /// The research operations with these settings (e.g. the trust-centre key).
    pub fn with_research(mut self, research: ResearchConfig) -> Self {
        self.research = Arc::new(research);
        self
    }

    /// Answers feasibility queries with `service`.
    pub fn with_feasibility(mut self, service: Arc<FeasibilityService>) -> Self {
        self.feasibility = Some(service);
        self
    }

    /// Serves the authorisation server of `auth` as well.
    pub fn with_auth(mut self, auth: AuthState) -> Self {
        self.auth = Some(auth);
        self
    }
}
