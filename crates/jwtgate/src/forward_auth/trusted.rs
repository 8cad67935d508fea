//! Who may say what the original request was. A forward-auth check judges the request its
//! proxy describes in `X-Forwarded-*` / `X-Original-*` headers; anyone who can reach the check
//! directly could describe any request, so those headers are believed only from the proxies
//! named here (default: this machine, where a sidecar proxy runs).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::error::{Error, ErrorKind};

/// The address of the peer that sent a request, in its extensions. `jwtgate serve` inserts it
/// from the connection; an axum app can insert it from `ConnectInfo<SocketAddr>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

/// The peers whose forwarded headers a [`ForwardAuth`](super::ForwardAuth) believes.
#[derive(Clone, PartialEq, Eq)]
pub struct TrustedProxies(Kind);

#[derive(Clone, PartialEq, Eq)]
enum Kind {
    /// Every caller: for a service called in-process, where no socket peer exists.
    Any,
    Networks(Vec<Network>),
}

/// An address and a prefix length (`10.0.0.0/8`, `::1/128`).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl TrustedProxies {
    /// This machine only (`127.0.0.0/8` and `::1`): the default, for a proxy beside jwtgate.
    pub fn loopback() -> Self {
        Self(Kind::Networks(vec![
            Network {
                addr: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)),
                prefix: 8,
            },
            Network {
                addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
                prefix: 128,
            },
        ]))
    }

    /// Every caller, with or without a [`Peer`]: only for a service that no network client
    /// can reach (called in-process by the app's own proxy code).
    pub fn any() -> Self {
        Self(Kind::Any)
    }

    /// The given addresses and networks (`"10.0.0.0/8"`, `"192.168.1.5"`, `"fd00::/8"`).
    pub fn networks<I, S>(networks: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        networks
            .into_iter()
            .map(|n| Network::parse(n.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(|nets| Self(Kind::Networks(nets)))
            .map_err(|message| Error::new(ErrorKind::Config, message))
    }

    /// Whether a request from `peer` may describe its original request.
    pub(crate) fn trusts(&self, peer: Option<&Peer>) -> bool {
        match &self.0 {
            Kind::Any => true,
            Kind::Networks(nets) => peer.is_some_and(|Peer(addr)| {
                // A dual-stack listener sees IPv4 peers as `::ffff:a.b.c.d`.
                let ip = addr.ip().to_canonical();
                nets.iter().any(|n| n.contains(ip))
            }),
        }
    }
}

impl Default for TrustedProxies {
    fn default() -> Self {
        Self::loopback()
    }
}

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Any => f.write_str("TrustedProxies::any()"),
            Kind::Networks(nets) => f
                .debug_list()
                .entries(nets.iter().map(|n| format!("{}/{}", n.addr, n.prefix)))
                .finish(),
        }
    }
}

impl Network {
    fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not an IP address or network (`10.0.0.0/8`, `::1`)");
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(bad)?,
        };
        let network = Self { addr, prefix };
        // `10.1.2.3/8` names 10.0.0.0/8: refused, as a typo that would trust more than meant.
        if !network.contains(addr) || network.masked(addr) != addr {
            return Err(format!(
                "{text:?} has host bits set; write the network address (`{}/{prefix}`)",
                network.masked(addr)
            ));
        }
        Ok(network)
    }

    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        self.addr.is_ipv4() == ip.is_ipv4() && self.masked(ip) == self.addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: &str) -> Peer {
        Peer(SocketAddr::new(ip.parse().unwrap(), 4000))
    }

    #[test]
    fn loopback_is_the_default_and_trusts_this_machine_only() {
        let t = TrustedProxies::default();
        for ok in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"] {
            assert!(t.trusts(Some(&peer(ok))), "{ok}");
        }
        for no in ["10.0.0.1", "128.0.0.1", "::2", "::ffff:10.0.0.1"] {
            assert!(!t.trusts(Some(&peer(no))), "{no}");
        }
        // No peer known: not trusted (unless any()).
        assert!(!t.trusts(None));
        assert!(TrustedProxies::any().trusts(None));
    }

    #[test]
    fn networks_parse_and_match() {
        let t = TrustedProxies::networks(["10.0.0.0/8", "192.168.1.5", "fd00::/8", "0.0.0.0/0"])
            .unwrap();
        assert!(t.trusts(Some(&peer("10.200.3.4"))));
        assert!(t.trusts(Some(&peer("fd12::1"))));
        assert!(
            t.trusts(Some(&peer("8.8.8.8"))),
            "0.0.0.0/0 is every IPv4 peer"
        );
        assert!(!t.trusts(Some(&peer("fe80::1"))));
        let only = TrustedProxies::networks(["192.168.1.5"]).unwrap();
        assert!(only.trusts(Some(&peer("192.168.1.5"))));
        assert!(!only.trusts(Some(&peer("192.168.1.6"))));
        for (bad, why) in [
            ("10.0.0.0/33", "is not an IP address or network"),
            ("ten", "is not an IP address or network"),
            ("10.0.0.0/x", "is not an IP address or network"),
            (
                "10.1.2.3/8",
                "has host bits set; write the network address (`10.0.0.0/8`)",
            ),
        ] {
            let e = TrustedProxies::networks([bad]).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
