//! Virtual-hosted-style addressing: a `Host` of `BUCKET.DOMAIN[:port]` names the bucket for
//! one of the configured domains; every other host (an IP address, the bare domain, a name we
//! do not serve) is path-style, so `http://127.0.0.1:9000/bucket/key` always works.

use s3s::S3Result;
use s3s::host::{S3Host, VirtualHost};

#[derive(Debug, Clone)]
pub struct Domains(Vec<String>);

impl Domains {
    pub fn new(domains: &[String]) -> Domains {
        let mut all: Vec<String> = domains
            .iter()
            .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|d| !d.is_empty())
            .collect();
        all.push("localhost".to_owned());
        all.sort();
        all.dedup();
        Domains(all)
    }

    /// The bucket a host names, if any.
    pub fn bucket_of<'a>(&self, host: &'a str) -> Option<&'a str> {
        let name = strip_port(host);
        self.0.iter().find_map(|d| {
            let bucket = name.strip_suffix(d.as_str())?.strip_suffix('.')?;
            (!bucket.is_empty()).then_some(bucket)
        })
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // IPv6 literal: never a bucket.
        return host;
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

impl S3Host for Domains {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        Ok(match self.bucket_of(host) {
            Some(bucket) => VirtualHost::new(host).with_bucket(bucket),
            None => VirtualHost::new(host),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let d = Domains::new(&["s3.example.org".to_owned()]);
        assert_eq!(d.bucket_of("photos.localhost:9000"), Some("photos"));
        assert_eq!(d.bucket_of("photos.s3.example.org"), Some("photos"));
        assert_eq!(d.bucket_of("a.b.s3.example.org"), Some("a.b"));
        assert_eq!(d.bucket_of("localhost:9000"), None);
        assert_eq!(d.bucket_of("127.0.0.1:9000"), None);
        assert_eq!(d.bucket_of("s3.example.org"), None);
        assert_eq!(d.bucket_of("other.example.org"), None);
        assert_eq!(d.bucket_of("[::1]:9000"), None);
    }
}
