//! The client address of a request, for the per-client limits.
//!
//! ```text
//!  TCP peer ── trusted proxy? ── no ──► the peer is the client (headers ignored)
//!                  │ yes
//!                  ▼
//!  the configured header (X-Forwarded-For or Forwarded), read right to left:
//!  skip the addresses of trusted proxies; the first other one is the client
//!  (all trusted: the leftmost); no header: the peer; a malformed entry on the
//!  way: the peer (warned once, counted in `lapor_forwarded_malformed_total`)
//! ```
//!
//! Only the part of the chain that trusted proxies wrote is read: whatever the client put in
//! front of it (left of the first untrusted address) is never parsed, so junk there cannot
//! push a client into the proxy's shared bucket.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::HttpRequest;
use actix_web::http::header::HeaderMap;

use crate::config::{ClientAddressHeader, IpCidr, canonical_ip};

/// How the client address of a request was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The TCP peer (no trusted proxy, or no header).
    Peer,
    /// The trusted proxies' header.
    Forwarded,
    /// The header from a trusted proxy did not parse: the TCP peer.
    Malformed,
}

/// Resolves client addresses; `Send + Sync`.
#[derive(Debug)]
pub struct ClientAddresses {
    trusted: Vec<IpCidr>,
    header: ClientAddressHeader,
    warned: AtomicBool,
}

impl ClientAddresses {
    /// Believes `header` from the `trusted` proxies only.
    #[must_use]
    pub fn new(trusted: Vec<IpCidr>, header: ClientAddressHeader) -> Self {
        Self {
            trusted,
            header,
            warned: AtomicBool::new(false),
        }
    }

    /// The client address of `req` (`None` only when actix knows no peer, as in unit tests of
    /// handlers), and how it was found. A malformed header is warned about once per process.
    pub fn of(&self, req: &HttpRequest) -> Option<(IpAddr, Source)> {
        let peer = req.peer_addr()?.ip();
        let (ip, source) = self.resolve(peer, req.headers());
        if source == Source::Malformed && !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                header = self.header_name(),
                "a trusted proxy sent a malformed client-address header; using the proxy's \
                 address (further cases are only counted)"
            );
        }
        Some((ip, source))
    }

    /// The client address of a request from `peer` with `headers`.
    #[must_use]
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> (IpAddr, Source) {
        let peer = canonical_ip(peer);
        if !self.is_trusted(peer) {
            return (peer, Source::Peer);
        }
        let mut values = Vec::new();
        for v in headers.get_all(self.header_name()) {
            match v.to_str() {
                Ok(s) => values.push(s),
                Err(_) => return (peer, Source::Malformed),
            }
        }
        if values.is_empty() {
            return (peer, Source::Peer);
        }
        let parse = match self.header {
            ClientAddressHeader::XForwardedFor => parse_xff_entry,
            ClientAddressHeader::Forwarded => parse_forwarded_element,
        };
        let entries: Vec<&str> = values.iter().flat_map(|v| v.split(',')).collect();
        let mut leftmost = None;
        for entry in entries.iter().rev() {
            match parse(entry) {
                None => return (peer, Source::Malformed),
                Some(ip) if self.is_trusted(ip) => leftmost = Some(ip),
                Some(ip) => return (ip, Source::Forwarded),
            }
        }
        leftmost.map_or((peer, Source::Peer), |ip| (ip, Source::Forwarded))
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(ip))
    }

    const fn header_name(&self) -> &'static str {
        match self.header {
            ClientAddressHeader::XForwardedFor => "x-forwarded-for",
            ClientAddressHeader::Forwarded => "forwarded",
        }
    }
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:80`,
/// `[2001:db8::1]:80`) or in brackets.
fn parse_xff_entry(entry: &str) -> Option<IpAddr> {
    parse_node(entry.trim())
}

/// One RFC 7239 `Forwarded` element (`for=1.2.3.4;proto=https`, `For="[2001:db8::1]:80"`): its
/// `for` parameter. `unknown` and obfuscated identifiers (`_hidden`) give no address.
fn parse_forwarded_element(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("for") {
            return None;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        parse_node(v)
    })
}

/// An address, `ADDR:PORT`, `[V6]` or `[V6]:PORT`; IPv4-mapped IPv6 as IPv4.
fn parse_node(s: &str) -> Option<IpAddr> {
    let ip = s
        .parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            s.strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|r| r.parse::<std::net::Ipv6Addr>().ok())
                .map(IpAddr::V6)
        })?;
    Some(canonical_ip(ip))
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn cidrs(list: &[&str]) -> Vec<IpCidr> {
        list.iter().map(|s| IpCidr::parse(s).unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(name: &'static str, values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                HeaderName::from_static(name),
                HeaderValue::from_bytes(v).unwrap(),
            );
        }
        h
    }

    fn xff(trusted: &[&str]) -> ClientAddresses {
        ClientAddresses::new(cidrs(trusted), ClientAddressHeader::XForwardedFor)
    }

    #[test]
    fn cidr_parsing_and_matching() {
        let net = IpCidr::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.255.1.2")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(net.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped matches");
        assert!(!net.contains(ip("::1")));
        let one = IpCidr::parse("127.0.0.1").unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6 = IpCidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let all = IpCidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("1.2.3.4")) && !all.contains(ip("::2")));
        assert!(IpCidr::parse("::/0").unwrap().contains(ip("2001:db8::1")));
        for bad in [
            "10.0.0.1/8",
            "10.0.0.0/33",
            "::/129",
            "nope",
            "10.0.0.0/",
            "1.2.3.4/x",
        ] {
            assert!(IpCidr::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(net.to_string(), "10.0.0.0/8");
    }

    #[test]
    fn untrusted_peer_headers_are_ignored() {
        let c = xff(&["10.0.0.0/8"]);
        let h = headers("x-forwarded-for", &[b"203.0.113.9"]);
        assert_eq!(
            c.resolve(ip("192.0.2.1"), &h),
            (ip("192.0.2.1"), Source::Peer)
        );
        let c = xff(&[]);
        assert_eq!(
            c.resolve(ip("192.0.2.1"), &h),
            (ip("192.0.2.1"), Source::Peer)
        );
    }

    #[test]
    fn rightmost_untrusted_address_is_the_client() {
        let c = xff(&["127.0.0.1", "10.0.0.0/8"]);
        let peer = ip("127.0.0.1");
        let cases: &[(&[&[u8]], &str, Source)] = &[
            (&[b"203.0.113.9"], "203.0.113.9", Source::Forwarded),
            // The client wrote the first entry; the proxy appended the real address.
            (&[b"1.1.1.1, 203.0.113.9"], "203.0.113.9", Source::Forwarded),
            (
                &[b"203.0.113.9, 10.1.1.1"],
                "203.0.113.9",
                Source::Forwarded,
            ),
            // Two header lines are one list; junk left of the client is never read.
            (
                &[b"garbage, 198.51.100.7", b"10.1.1.1"],
                "198.51.100.7",
                Source::Forwarded,
            ),
            (&[b"[2001:db8::7]:4711"], "2001:db8::7", Source::Forwarded),
            (&[b"203.0.113.9:80"], "203.0.113.9", Source::Forwarded),
            (&[b"::ffff:203.0.113.9"], "203.0.113.9", Source::Forwarded),
            // Only proxies in the chain: the leftmost.
            (&[b"10.0.0.2, 10.0.0.3"], "10.0.0.2", Source::Forwarded),
            (&[], "127.0.0.1", Source::Peer),
        ];
        for (values, want, source) in cases {
            let h = headers("x-forwarded-for", values);
            assert_eq!(c.resolve(peer, &h), (ip(want), *source), "{values:?}");
        }
    }

    #[test]
    fn malformed_entries_on_the_trusted_path_fall_back_to_the_peer() {
        let c = xff(&["127.0.0.1", "10.0.0.0/8"]);
        let peer = ip("127.0.0.1");
        for values in [
            &[&b"garbage"[..]][..],
            &[b"203.0.113.9, garbage, 10.0.0.1"],
            &[b"203.0.113.9,"],
            &[b""],
            &[b"203.0.113.9\xff"],
            &[b"unknown"],
        ] {
            let h = headers("x-forwarded-for", values);
            assert_eq!(c.resolve(peer, &h), (peer, Source::Malformed), "{values:?}");
        }
    }

    #[test]
    fn forwarded_header_for_parameter() {
        let c = ClientAddresses::new(cidrs(&["127.0.0.1"]), ClientAddressHeader::Forwarded);
        let peer = ip("127.0.0.1");
        let cases: &[(&[u8], &str, Source)] = &[
            (
                b"for=192.0.2.60;proto=http;by=203.0.113.43",
                "192.0.2.60",
                Source::Forwarded,
            ),
            (
                b"For=\"[2001:db8:cafe::17]:4711\"",
                "2001:db8:cafe::17",
                Source::Forwarded,
            ),
            (
                b"for=192.0.2.43, for=198.51.100.17",
                "198.51.100.17",
                Source::Forwarded,
            ),
            (
                b"for=192.0.2.43, for=127.0.0.1",
                "192.0.2.43",
                Source::Forwarded,
            ),
            (b"for=unknown", "127.0.0.1", Source::Malformed),
            (b"for=_hidden", "127.0.0.1", Source::Malformed),
            (b"proto=https", "127.0.0.1", Source::Malformed),
        ];
        for (value, want, source) in cases {
            let h = headers("forwarded", &[value]);
            assert_eq!(c.resolve(peer, &h), (ip(want), *source), "{value:?}");
        }
        // X-Forwarded-For is not read when Forwarded is configured.
        let h = headers("x-forwarded-for", &[b"192.0.2.1"]);
        assert_eq!(c.resolve(peer, &h), (peer, Source::Peer));
    }
}
