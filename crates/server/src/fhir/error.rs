//! The one error type of the FHIR layer and its mapping to HTTP status + OperationOutcome.
//!
//! Every failure, from the store, the validator, header parsing or axum's own rejections, ends
//! up here, so the status codes and issue codes are decided in one place.

use medicus_fhir::{Severity as ValidationSeverity, ValidationIssue};
use medicus_store::StoreError;

use super::outcome::{Issue, Severity, operation_outcome};

/// An HTTP status code as a plain number, so this module stays framework-free.
pub type Status = u16;

#[derive(Debug, thiserror::Error)]
pub enum FhirError {
    /// Malformed request: bad JSON, bad header, bad parameter, id mismatch.
    #[error("{0}")]
    BadRequest(String),
    /// The resource failed validation (every issue is reported).
    #[error("resource failed validation")]
    Invalid(Vec<ValidationIssue>),
    /// Valid FHIR, but a server business rule rejects it (422).
    #[error("{0}")]
    Unprocessable(String),
    #[error("unknown tenant")]
    UnknownTenant,
    /// No valid access token (401, `login`); the edge adds `WWW-Authenticate`.
    #[error("{0}")]
    Unauthorized(String),
    /// The token does not allow this interaction (403, `forbidden`).
    #[error("{0}")]
    Forbidden(String),
    #[error("resource type '{0}' is not supported")]
    UnsupportedType(String),
    #[error("{resource_type}/{id} is not known")]
    NotFound { resource_type: String, id: String },
    #[error("{resource_type}/{id} has been deleted")]
    Gone { resource_type: String, id: String },
    #[error("{0}")]
    NotFoundOther(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    NotSupported(String),
    /// `Prefer: handling=strict` and search parameters that are unknown or not supported (400,
    /// one issue each).
    #[error("unknown or unsupported search parameters: {}", .0.join(", "))]
    UnsupportedParameters(Vec<String>),
    /// A search the database stopped because it ran too long (400, `too-costly`): narrow it.
    #[error("{0}")]
    TooCostly(String),
    /// Something on our side failed; the detail is logged, not shown.
    #[error("internal error")]
    Internal(String),
    /// The database cannot be reached (503): the request can be retried; the detail is logged.
    #[error("the database is unavailable; retry later")]
    Unavailable(String),
    /// A failure inside entry `index` of a transaction or batch Bundle.
    #[error("Bundle.entry[{index}]: {source}")]
    InEntry {
        index: usize,
        source: Box<FhirError>,
    },
}

impl FhirError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        FhirError::BadRequest(message.into())
    }

    pub fn in_entry(self, index: usize) -> Self {
        match self {
            // Keep the innermost index only.
            e @ FhirError::InEntry { .. } => e,
            e => FhirError::InEntry {
                index,
                source: Box::new(e),
            },
        }
    }

    pub fn status(&self) -> Status {
        match self {
            FhirError::BadRequest(_)
            | FhirError::Invalid(_)
            | FhirError::UnsupportedParameters(_)
            | FhirError::TooCostly(_) => 400,
            FhirError::Unprocessable(_) => 422,
            FhirError::Unauthorized(_) => 401,
            FhirError::Forbidden(_) => 403,
            FhirError::UnknownTenant
            | FhirError::UnsupportedType(_)
            | FhirError::NotFound { .. }
            | FhirError::NotFoundOther(_) => 404,
            FhirError::Gone { .. } => 410,
            FhirError::PreconditionFailed(_) => 412,
            FhirError::Conflict(_) => 409,
            FhirError::NotAcceptable(_) => 406,
            FhirError::UnsupportedMediaType(_) => 415,
            FhirError::PayloadTooLarge(_) => 413,
            FhirError::MethodNotAllowed(_) => 405,
            FhirError::NotSupported(_) => 501,
            FhirError::Internal(_) => 500,
            FhirError::Unavailable(_) => 503,
            FhirError::InEntry { source, .. } => source.status(),
        }
    }

    /// The OperationOutcome issues describing this error.
    pub fn issues(&self) -> Vec<Issue> {
        match self {
            FhirError::Invalid(found) => {
                let mut issues: Vec<Issue> = found
                    .iter()
                    .filter(|i| {
                        matches!(
                            i.severity,
                            ValidationSeverity::Fatal | ValidationSeverity::Error
                        )
                    })
                    .map(|i| Issue {
                        severity: match i.severity {
                            ValidationSeverity::Fatal => Severity::Fatal,
                            _ => Severity::Error,
                        },
                        code: i.code.code(),
                        diagnostics: i.message.clone(),
                        expression: vec![i.expression.clone()],
                    })
                    .collect();
                if issues.is_empty() {
                    issues.push(Issue::error("invalid", "resource failed validation"));
                }
                issues
            }
            FhirError::InEntry { index, source } => source
                .issues()
                .into_iter()
                .map(|mut issue| {
                    let entry = format!("Bundle.entry[{index}]");
                    issue.diagnostics = format!("{entry}: {}", issue.diagnostics);
                    issue.expression = if issue.expression.is_empty() {
                        vec![entry]
                    } else {
                        issue
                            .expression
                            .iter()
                            .map(|e| entry_expression(&entry, e))
                            .collect()
                    };
                    issue
                })
                .collect(),
            FhirError::UnsupportedParameters(names) => names
                .iter()
                .map(|name| {
                    Issue::error(
                        "not-supported",
                        format!("unknown or unsupported search parameter '{name}'"),
                    )
                })
                .collect(),
            other => vec![Issue::error(other.issue_code(), other.to_string())],
        }
    }

    fn issue_code(&self) -> &'static str {
        match self {
            FhirError::BadRequest(_) | FhirError::Invalid(_) => "invalid",
            FhirError::Unprocessable(_) => "business-rule",
            FhirError::Unauthorized(_) => "login",
            FhirError::Forbidden(_) => "forbidden",
            FhirError::UnknownTenant | FhirError::NotFound { .. } | FhirError::NotFoundOther(_) => {
                "not-found"
            }
            FhirError::UnsupportedType(_)
            | FhirError::NotSupported(_)
            | FhirError::UnsupportedParameters(_)
            | FhirError::MethodNotAllowed(_) => "not-supported",
            FhirError::Gone { .. } => "deleted",
            FhirError::PreconditionFailed(_) | FhirError::Conflict(_) => "conflict",
            FhirError::NotAcceptable(_) | FhirError::UnsupportedMediaType(_) => "not-supported",
            FhirError::PayloadTooLarge(_) | FhirError::TooCostly(_) => "too-costly",
            FhirError::Internal(_) => "exception",
            FhirError::Unavailable(_) => "transient",
            FhirError::InEntry { source, .. } => source.issue_code(),
        }
    }

    /// The full OperationOutcome resource.
    pub fn to_operation_outcome(&self) -> serde_json::Value {
        operation_outcome(&self.issues())
    }
}

/// Re-roots a resource-relative expression (`Patient.name[0]`) at the Bundle entry
/// (`Bundle.entry[3].resource.name[0]`).
fn entry_expression(entry: &str, expression: &str) -> String {
    if expression.starts_with("Bundle.") {
        return expression.to_string();
    }
    match expression.find('.') {
        Some(dot)
            if expression[..dot]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_uppercase()) =>
        {
            format!("{entry}.resource{}", &expression[dot..])
        }
        None if expression
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase()) =>
        {
            format!("{entry}.resource")
        }
        _ => format!("{entry}.{expression}"),
    }
}

impl From<StoreError> for FhirError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnknownTenant(_) | StoreError::InvalidTenantId(_) => {
                FhirError::UnknownTenant
            }
            StoreError::VersionConflict {
                resource_type,
                id,
                expected,
                current,
            } => FhirError::PreconditionFailed(match current {
                Some(current) => format!(
                    "version conflict on {resource_type}/{id}: expected version {expected}, current is {current}"
                ),
                None => format!(
                    "version conflict on {resource_type}/{id}: expected version {expected}, but it does not exist"
                ),
            }),
            StoreError::InvalidSearch(message) => {
                FhirError::BadRequest(format!("invalid search: {message}"))
            }
            StoreError::Unavailable(detail) => FhirError::Unavailable(detail),
            e @ StoreError::DocConflict { .. } => FhirError::Conflict(e.to_string()),
            StoreError::Forbidden(reason) => FhirError::Forbidden(reason),
            e @ StoreError::TooCostly(_) => FhirError::TooCostly(format!(
                "{e}; narrow the search (more selective parameters, a smaller _count, no _total=accurate)"
            )),
            e @ (StoreError::Database(_) | StoreError::Corrupt(_)) => {
                FhirError::Internal(e.to_string())
            }
        }
    }
}

impl From<serde_json::Error> for FhirError {
    fn from(e: serde_json::Error) -> Self {
        FhirError::BadRequest(format!("invalid JSON: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_errors_carry_the_entry_index_in_message_and_expression() {
        let e = FhirError::Invalid(vec![ValidationIssue {
            severity: ValidationSeverity::Error,
            code: medicus_fhir::IssueType::Value,
            expression: "Patient.birthDate".into(),
            message: "bad date".into(),
        }])
        .in_entry(3);
        assert_eq!(e.status(), 400);
        let issues = e.issues();
        assert_eq!(
            issues[0].expression,
            vec!["Bundle.entry[3].resource.birthDate".to_string()]
        );
        assert!(issues[0].diagnostics.starts_with("Bundle.entry[3]: "));
        let e = FhirError::PreconditionFailed("x".into())
            .in_entry(1)
            .in_entry(7);
        assert_eq!(e.status(), 412);
        assert_eq!(
            e.issues()[0].expression,
            vec!["Bundle.entry[1]".to_string()]
        );
    }

    #[test]
    fn store_errors_map_to_statuses() {
        assert_eq!(
            FhirError::from(StoreError::UnknownTenant("t".into())).status(),
            404
        );
        let conflict = StoreError::VersionConflict {
            resource_type: "Patient".into(),
            id: "1".into(),
            expected: 1,
            current: Some(2),
        };
        assert_eq!(FhirError::from(conflict).status(), 412);
        assert_eq!(
            FhirError::from(StoreError::InvalidSearch("x".into())).status(),
            400
        );
        assert_eq!(
            FhirError::from(StoreError::Unavailable("x".into())).status(),
            503
        );
        assert_eq!(
            FhirError::from(StoreError::Database("x".into())).status(),
            500
        );
        let slow = FhirError::from(StoreError::TooCostly("statement timeout".into()));
        assert_eq!((slow.status(), slow.issue_code()), (400, "too-costly"));
        assert_eq!(
            FhirError::from(StoreError::DocConflict {
                ns: "user".into(),
                key: "k".into()
            })
            .status(),
            409
        );
    }
}
