//! Errors of the auth crate. OAuth protocol errors carry the RFC 6749 error code the HTTP
//! layer puts on the wire; everything else maps to 400/401/403/500 there.

use medicus_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// A bearer token that must not be accepted; the reason is for logs, never for the client.
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    #[error("invalid scope '{scope}': {reason}")]
    InvalidScope { scope: String, reason: &'static str },
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    Exists(String),
    /// A stored record could not be decoded or unsealed (wrong server key, tampering).
    #[error("stored auth record is unreadable: {0}")]
    Corrupt(String),
    #[error("cryptographic failure: {0}")]
    Crypto(&'static str),
    /// Several writers kept racing on one record; the caller may retry.
    #[error("concurrent update of {0}, retry")]
    Contention(String),
}

/// RFC 6749 §4.1.2.1 / §5.2 error codes (plus RFC 7009 / 6750 ones the token endpoint needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    ServerError,
}

impl OAuthErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
        }
    }

    /// The HTTP status of a token-endpoint error response (RFC 6749 §5.2).
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidClient => 401,
            Self::ServerError => 500,
            _ => 400,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    pub code: OAuthErrorCode,
    /// Safe to show to the client (`error_description`): no secrets, no personal data.
    pub description: String,
}

impl OAuthError {
    pub fn new(code: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    /// The JSON body of an error response.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"error": self.code.as_str(), "error_description": self.description})
    }
}

pub(crate) fn oauth(code: OAuthErrorCode, description: impl Into<String>) -> AuthError {
    AuthError::OAuth(OAuthError::new(code, description))
}
