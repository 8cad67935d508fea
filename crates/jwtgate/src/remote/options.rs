//! How remote key sets are fetched and cached, and the state a cache reports.

use std::time::{Duration, SystemTime};

use crate::jws::jwk::SkippedKey;

/// How a remote key set (`KeySource::jwks_url`, `KeySource::oidc_issuer`, the presets) is
/// fetched and cached. Every default is documented on its setter.
///
/// There is one cache per URL (or issuer), shared by every validator and route that uses it:
///
/// - Reads are lock-free; no lock is ever held across I/O.
/// - Fetches have connect and total timeouts, a body limit, at most one redirect, and HTTPS
///   (plain HTTP only to loopback addresses).
/// - A set is fresh for its TTL (`Cache-Control: max-age` within bounds, else the default) and
///   refreshed in the background at 80% of it; requests do not wait for the refresh.
/// - An unknown `kid` causes at most one fetch per `min_refetch_interval`; concurrent misses
///   share one fetch (single flight). Only such kid-miss fetches count against the interval,
///   so a kid rotated in right after the initial or a scheduled fetch is found on its first
///   request.
/// - When refreshes fail, the last good set is served up to `max_stale`, with backoff between
///   attempts; with no good set at all, requests get a 503 with `Retry-After`.
/// - An OIDC issuer contradicted by its discovery document is a configuration error, not an
///   outage: logged at error level with both values on every attempt, shown as
///   [`KeyCacheState::misconfigured`], and named in the 503's description.
/// - Keys that cannot serve the validators of the cache are skipped with a reason
///   ([`KeyCacheState::skipped`]); a set with no usable key is a failed fetch whose error
///   lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct RemoteKeyOptions {
    pub(crate) connect_timeout: Duration,
    pub(crate) timeout: Duration,
    pub(crate) max_body: usize,
    pub(crate) ttl: Duration,
    pub(crate) min_ttl: Duration,
    pub(crate) max_ttl: Duration,
    pub(crate) min_refetch_interval: Duration,
    pub(crate) max_stale: Duration,
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_max: Duration,
}

impl Default for RemoteKeyOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            max_body: 64 * 1024,
            ttl: Duration::from_secs(300),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(86_400),
            min_refetch_interval: Duration::from_secs(30),
            max_stale: Duration::from_secs(86_400),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }
}

impl RemoteKeyOptions {
    /// Time allowed to connect (default 2 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }
    /// Time allowed for a whole fetch, body included (default 5 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }
    /// Largest accepted body (default 64 KiB).
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }
    /// Freshness when the response has no `Cache-Control: max-age` (default 5 min).
    pub fn ttl(mut self, d: Duration) -> Self {
        self.ttl = d;
        self
    }
    /// Bounds applied to `Cache-Control: max-age` (default 1 min to 24 h).
    pub fn ttl_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.min_ttl = min;
        self.max_ttl = max;
        self
    }
    /// Least time between two fetches caused by unknown `kid`s (default 30 s).
    pub fn min_refetch_interval(mut self, d: Duration) -> Self {
        self.min_refetch_interval = d;
        self
    }
    /// How long past its TTL the last good set is served while refreshes fail (default 24 h).
    pub fn max_stale(mut self, d: Duration) -> Self {
        self.max_stale = d;
        self
    }
    /// Backoff after failed fetches: doubles from `base` up to `max` (default 1 s to 60 s).
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max;
        self
    }

    pub(crate) fn backoff_after(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.backoff_base
            .saturating_mul(factor)
            .min(self.backoff_max)
    }

    pub(crate) fn ttl_for(&self, max_age: Option<u64>) -> Duration {
        match max_age {
            Some(secs) => {
                Duration::from_secs(secs).clamp(self.min_ttl, self.max_ttl.max(self.min_ttl))
            }
            None => self.ttl,
        }
    }
}

/// A snapshot of one remote key cache, for health endpoints and `jwtgate inspect`.
/// Serialises with times as Unix seconds.
#[derive(Clone, Debug, serde::Serialize)]
#[non_exhaustive]
pub struct KeyCacheState {
    /// The configured JWKS URL or OIDC issuer.
    pub source: String,
    /// The JWKS URL in use (from discovery for an OIDC issuer).
    pub jwks_uri: Option<String>,
    /// The key ids currently served.
    pub key_ids: Vec<String>,
    /// When the served set was fetched.
    #[serde(serialize_with = "unix_seconds")]
    pub last_success: Option<SystemTime>,
    /// The last fetch error, if the last fetch failed.
    pub last_error: Option<String>,
    /// Failed fetches since the last success.
    pub consecutive_failures: u32,
    /// When the next refresh is due (or allowed, after a failure).
    #[serde(serialize_with = "unix_seconds")]
    pub next_refresh: Option<SystemTime>,
    /// Whether the served set is past its TTL.
    pub stale: bool,
    /// Whether a key set can be served now (fresh, or stale within `max_stale`).
    pub usable: bool,
    /// Fetch attempts so far.
    pub fetches: u64,
    /// Keys of the last fetched set that were left out, with reasons.
    pub skipped: Vec<SkippedKey>,
    /// The source is misconfigured (an OIDC issuer its discovery document contradicts): no
    /// retry will fix it, the configuration must change.
    pub misconfigured: bool,
}

fn unix_seconds<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()) {
        Some(d) => s.serialize_some(&d.as_secs()),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_bounds() {
        let o = RemoteKeyOptions::default();
        assert_eq!(o.ttl_for(Some(5)), Duration::from_secs(60));
        assert_eq!(o.ttl_for(Some(600)), Duration::from_secs(600));
        assert_eq!(o.ttl_for(Some(10_000_000)), Duration::from_secs(86_400));
        assert_eq!(o.ttl_for(None), Duration::from_secs(300));
    }

    #[test]
    fn backoff_doubles_up_to_the_max() {
        let o = RemoteKeyOptions::default();
        assert_eq!(o.backoff_after(1), Duration::from_secs(1));
        assert_eq!(o.backoff_after(3), Duration::from_secs(4));
        assert_eq!(o.backoff_after(40), Duration::from_secs(60));
        let o = RemoteKeyOptions::default().backoff(Duration::MAX, Duration::MAX);
        assert_eq!(o.backoff_after(70), Duration::MAX);
    }
}
