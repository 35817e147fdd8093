//! Tenant identifiers.

use crate::error::StoreError;

/// The tenant that exists on first start.
pub const DEFAULT_TENANT: &str = "default";

/// Tenant ids appear in URLs (`/fhir/{tenant}`) and bucket names later: keep them to a safe
/// alphabet and length.
pub fn validate_tenant_id(id: &str) -> Result<(), StoreError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidTenantId(id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids() {
        assert!(validate_tenant_id("default").is_ok());
        assert!(validate_tenant_id("uk-freiburg_2").is_ok());
        assert!(validate_tenant_id("").is_err());
        assert!(validate_tenant_id("a/b").is_err());
        assert!(validate_tenant_id(&"x".repeat(65)).is_err());
    }
}
