//! TLS to PostgreSQL: rustls, always verifying the server's certificate (chain and host name)
//! against the system's CA roots and the CA file named by `sslrootcert` in the URL.
//!
//! `sslmode` keeps tokio-postgres' meaning: `disable` never encrypts, `prefer` (the default)
//! encrypts when the server offers it, `require` refuses a server that does not. Unlike libpq,
//! an encrypted connection is never unverified: a certificate nobody vouches for fails the
//! connection (name its CA with `sslrootcert`, or use `sslmode=disable` on a trusted network).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::StoreError;

/// The URL's own options that tokio-postgres does not know, taken out of the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// `sslrootcert=FILE`: PEM certificates of CAs trusted besides the system's.
    pub root_cert: Option<PathBuf>,
}

/// Splits `sslrootcert` off a `postgres://…?…` URL; returns the URL tokio-postgres parses.
pub fn split_url(url: &str) -> Result<(String, TlsOptions), StoreError> {
    let url = url.trim();
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), TlsOptions { root_cert: None }));
    };
    let mut root_cert = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslrootcert", value)) => {
                let path = percent_encoding::percent_decode_str(value)
                    .decode_utf8()
                    .map_err(|_| invalid("sslrootcert is not UTF-8"))?;
                if path.is_empty() {
                    return Err(invalid("sslrootcert is empty"));
                }
                root_cert = Some(PathBuf::from(path.as_ref()));
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, TlsOptions { root_cert }))
}

fn invalid(message: &str) -> StoreError {
    StoreError::Database(format!("invalid PostgreSQL URL: {message}"))
}

/// The TLS connector for `options`.
pub fn connector(options: &TlsOptions) -> Result<MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates are skipped: a named CA file may be all that is needed.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = &options.root_cert {
        for cert in read_certificates(path)? {
            roots
                .add(cert)
                .map_err(|e| ca_error(path, &e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Database(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, StoreError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| ca_error(path, &e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ca_error(path, &e.to_string()))?;
    if certs.is_empty() {
        return Err(ca_error(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

fn ca_error(path: &Path, detail: &str) -> StoreError {
    StoreError::Database(format!(
        "sslrootcert {}: cannot read CA certificates: {detail}",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslrootcert_is_taken_out_of_the_url() {
        let (url, o) = split_url(
            "postgres://u@h:5/db?sslmode=require&sslrootcert=%2Fetc%2Fca%20x.pem&application_name=a",
        )
        .unwrap();
        assert_eq!(
            url,
            "postgres://u@h:5/db?sslmode=require&application_name=a"
        );
        assert_eq!(o.root_cert, Some(PathBuf::from("/etc/ca x.pem")));
        let (url, o) = split_url("postgres://u@h/db?sslrootcert=/ca.pem").unwrap();
        assert_eq!(
            (url.as_str(), o.root_cert.is_some()),
            ("postgres://u@h/db", true)
        );
        let (url, o) = split_url(" postgres://u@h/db ").unwrap();
        assert_eq!((url.as_str(), o.root_cert), ("postgres://u@h/db", None));
        assert!(split_url("postgres://u@h/db?sslrootcert=").is_err());
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_a_clear_error() {
        let missing = TlsOptions {
            root_cert: Some(PathBuf::from("/nonexistent/ca.pem")),
        };
        let Err(e) = connector(&missing) else {
            panic!("a missing CA file must fail");
        };
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").unwrap();
        let Err(e) = connector(&TlsOptions {
            root_cert: Some(empty),
        }) else {
            panic!("a file without certificates must fail");
        };
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        assert!(connector(&TlsOptions { root_cert: None }).is_ok());
    }
}
