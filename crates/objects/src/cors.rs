//! CORS rules of a bucket and how a browser request is matched against them (first matching
//! rule wins, as in S3). Origins and headers may hold one `*` wildcard.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    #[serde(default)]
    pub id: String,
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<u32>,
}

/// `pattern` with at most one `*` matches `value` (case-insensitively for header names).
fn wildcard(pattern: &str, value: &str, fold: bool) -> bool {
    let (p, v) = if fold {
        (pattern.to_ascii_lowercase(), value.to_ascii_lowercase())
    } else {
        (pattern.to_owned(), value.to_owned())
    };
    match p.split_once('*') {
        None => p == v,
        Some((pre, post)) => {
            v.len() >= pre.len() + post.len() && v.starts_with(pre) && v.ends_with(post)
        }
    }
}

impl CorsRule {
    /// Whether the rule allows `origin` to use `method` with `headers` (a preflight's
    /// `Access-Control-Request-Headers`).
    pub fn allows(&self, origin: &str, method: &str, headers: &[&str]) -> bool {
        self.allowed_origins
            .iter()
            .any(|o| wildcard(o, origin, false))
            && self
                .allowed_methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(method))
            && headers
                .iter()
                .all(|h| self.allowed_headers.iter().any(|a| wildcard(a, h, true)))
    }
}

/// The first rule that allows the request.
pub fn find<'r>(
    rules: &'r [CorsRule],
    origin: &str,
    method: &str,
    headers: &[&str],
) -> Option<&'r CorsRule> {
    rules.iter().find(|r| r.allows(origin, method, headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let r = CorsRule {
            allowed_origins: vec!["https://*.example.org".into()],
            allowed_methods: vec!["GET".into(), "PUT".into()],
            allowed_headers: vec!["x-amz-*".into(), "content-type".into()],
            ..Default::default()
        };
        assert!(r.allows("https://app.example.org", "GET", &[]));
        assert!(r.allows(
            "https://app.example.org",
            "PUT",
            &["X-Amz-Date", "Content-Type"]
        ));
        assert!(!r.allows("https://evil.org", "GET", &[]));
        assert!(!r.allows("https://app.example.org", "DELETE", &[]));
        assert!(!r.allows("https://app.example.org", "PUT", &["authorization"]));
        let any = CorsRule {
            allowed_origins: vec!["*".into()],
            allowed_methods: vec!["GET".into()],
            ..Default::default()
        };
        assert!(find(&[r.clone(), any.clone()], "https://x.test", "GET", &[]).is_some());
        assert!(find(&[r], "https://x.test", "GET", &[]).is_none());
    }
}
