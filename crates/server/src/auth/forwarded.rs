//! The client address behind reverse proxies. `X-Forwarded-For` is believed only when the
//! peer is a configured trusted proxy, and then only as far as the chain of trusted proxies
//! goes: walking the header from the right (the hop nearest to us), the first address that
//! is not a trusted proxy is the client. Anything a client writes to the left of that is
//! ignored, so a client cannot choose its address for the per-IP login limit or the audit.

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;

/// An address range in CIDR notation (`10.0.0.0/8`, `::1/128`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// A trusted-proxy entry that is not an address or `address/prefix`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an IP address or CIDR range: '{0}'")]
pub struct BadIpNet(pub String);

impl FromStr for IpNet {
    type Err = BadIpNet;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadIpNet(text.to_owned());
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(IpNet { addr, prefix })
    }
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 peer may show up as an IPv4-mapped IPv6 address on a dual-stack socket.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Parses `--trusted-proxy` values (each may hold several, comma-separated).
pub fn parse_trusted(values: &[String]) -> Result<Vec<IpNet>, BadIpNet> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::parse)
        .collect()
}

/// Longest `X-Forwarded-For` chain looked at.
const MAX_HOPS: usize = 32;

/// The client's address: the peer, unless the peer is a trusted proxy, in which case the
/// right-most address of `X-Forwarded-For` that is not itself a trusted proxy. A malformed
/// entry stops the walk at the last address known to be good.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = peer?;
    if trusted.is_empty() || !trusted.iter().any(|n| n.contains(peer)) {
        return Some(peer);
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev().take(MAX_HOPS) {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            break;
        };
        client = ip;
        if !trusted.iter().any(|n| n.contains(ip)) {
            break;
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn ranges() {
        let net: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("192.0.2.1")));
        let one: IpNet = "::1".parse().unwrap();
        assert!(one.contains(ip("::1")) && !one.contains(ip("::2")));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("proxy.local".parse::<IpNet>().is_err());
        assert_eq!(
            parse_trusted(&["10.0.0.0/8, 127.0.0.1".into()])
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn forwarded_only_from_trusted_proxies() {
        let trusted = parse_trusted(&["10.0.0.0/8".into()]).unwrap();
        let h = xff(&["198.51.100.7"]);
        // Not configured, or not from a proxy: the peer, whatever the header says.
        assert_eq!(
            client_ip(Some(ip("10.0.0.2")), &h, &[]),
            Some(ip("10.0.0.2"))
        );
        assert_eq!(
            client_ip(Some(ip("203.0.113.9")), &h, &trusted),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(
            client_ip(Some(ip("10.0.0.2")), &h, &trusted),
            Some(ip("198.51.100.7"))
        );
        // A client's own header value left of the real one is ignored; proxy chains are walked.
        let h = xff(&["1.2.3.4, 198.51.100.7", "10.0.0.5"]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.2")), &h, &trusted),
            Some(ip("198.51.100.7"))
        );
        // Garbage stops the walk at the last good hop.
        let h = xff(&["198.51.100.7, junk"]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.2")), &h, &trusted),
            Some(ip("10.0.0.2"))
        );
        assert_eq!(client_ip(None, &h, &trusted), None);
    }
}
