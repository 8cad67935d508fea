//! Remote keys: one cache per JWKS URL (or OIDC issuer), shared by every validator and route
//! that uses it.
//!
//! - Reads are lock-free ([`ArcSwapOption`]); no lock is ever held across I/O.
//! - Fetches have connect and total timeouts, a body limit, at most one redirect, and HTTPS
//!   (plain HTTP only on loopback addresses).
//! - A set is fresh for its TTL (`Cache-Control: max-age` within bounds, else the default) and
//!   refreshed in the background ahead of expiry; requests do not wait for it.
//! - An unknown `kid` causes at most one fetch per `min_refetch_interval`; concurrent misses
//!   share one fetch (single flight).
//! - When refreshes fail, the last good set is served up to `max_stale`, with backoff between
//!   attempts; with no good set at all, requests get a 503 with `Retry-After`.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use reqwest::header::{ACCEPT, CACHE_CONTROL};
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use crate::algorithm::Algorithm;
use crate::error::{Error, ErrorKind};
use crate::keys::{KeySet, SkippedKey, parse_jwks};
use crate::validator::{KeySource, Validator};

/// How a remote key set is fetched and cached. Every default is documented on its setter.
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

    fn backoff_after(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.backoff_base
            .saturating_mul(factor)
            .min(self.backoff_max)
    }

    fn ttl_for(&self, max_age: Option<u64>) -> Duration {
        match max_age {
            Some(secs) => {
                Duration::from_secs(secs).clamp(self.min_ttl, self.max_ttl.max(self.min_ttl))
            }
            None => self.ttl,
        }
    }
}

/// A snapshot of one remote key cache, for health endpoints and `jwtgate inspect`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct KeyCacheState {
    /// The configured JWKS URL or OIDC issuer.
    pub source: String,
    /// The JWKS URL in use (from discovery for an OIDC issuer).
    pub jwks_uri: Option<String>,
    /// The key ids currently served.
    pub key_ids: Vec<String>,
    /// When the served set was fetched.
    pub last_success: Option<SystemTime>,
    /// The last fetch error, if the last fetch failed.
    pub last_error: Option<String>,
    /// Failed fetches since the last success.
    pub consecutive_failures: u32,
    /// When the next refresh is due (or allowed, after a failure).
    pub next_refresh: Option<SystemTime>,
    /// Whether the served set is past its TTL.
    pub stale: bool,
    /// Fetch attempts so far.
    pub fetches: u64,
    /// Keys of the last fetched set that were left out, with reasons.
    pub skipped: Vec<SkippedKey>,
}

enum Source {
    Jwks(Url),
    Discovery { issuer: String, config: Url },
}

struct Snapshot {
    keys: Arc<KeySet>,
    fetched_system: SystemTime,
    refresh_at: Instant,
    fresh_until: Instant,
}

#[derive(Default)]
struct Status {
    last_attempt: Option<Instant>,
    retry_at: Option<Instant>,
    failures: u32,
    last_error: Option<String>,
    healthy: Option<bool>,
    jwks_uri: Option<Url>,
    fetches: u64,
    skipped: Vec<SkippedKey>,
    config_error: bool,
}

/// A fetch in flight; resolves to `false` when its task was cancelled before finishing.
type Flight = Shared<BoxFuture<'static, bool>>;

/// One cached remote key set.
pub(crate) struct RemoteKeys {
    label: String,
    source: Source,
    options: RemoteKeyOptions,
    algorithms: Mutex<Vec<Algorithm>>,
    client: reqwest::Client,
    current: ArcSwapOption<Snapshot>,
    in_flight: Mutex<Option<Flight>>,
    status: Mutex<Status>,
}

impl fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteKeys")
            .field("source", &self.label)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding these short locks leaves plain data; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// HTTPS, or HTTP to a loopback address.
fn check_url(url: &str, what: &str) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("{what} {url:?} is not a URL: {e}"))?;
    if allowed(&parsed) {
        Ok(parsed)
    } else {
        Err(format!(
            "{what} {url:?} must use https (plain http only on loopback addresses)"
        ))
    }
}

fn allowed(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => url.host_str().is_some_and(|host| {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }),
        _ => false,
    }
}

/// The cache for `validator`'s remote source, shared with earlier validators of the same source.
pub(crate) fn shared_cache(
    caches: &mut crate::validator::RemoteCaches,
    validator: &Validator,
    algorithm: Algorithm,
) -> Result<Arc<RemoteKeys>, Error> {
    let invalid = |e: String| Error::new(ErrorKind::InvalidSetting, e);
    let (label, source) = match &validator.key {
        Some(KeySource::JwksUrl(url)) => (
            url.clone(),
            Source::Jwks(check_url(url, "jwks_url").map_err(invalid)?),
        ),
        Some(KeySource::OidcIssuer(issuer)) => {
            let base = check_url(issuer, "oidc_issuer").map_err(invalid)?;
            let config = format!(
                "{}/.well-known/openid-configuration",
                base.as_str().trim_end_matches('/')
            );
            let config = Url::parse(&config).map_err(|e| invalid(e.to_string()))?;
            (
                issuer.clone(),
                Source::Discovery {
                    issuer: issuer.clone(),
                    config,
                },
            )
        }
        _ => return Err(invalid("no remote key source".into())),
    };
    if let Some(existing) = caches.iter().find(|c| c.label == label) {
        if existing.options != validator.remote {
            tracing::warn!(source = %label, validator = %validator.name, "validators sharing a key source set different remote options; the first one's apply");
        }
        let mut algs = lock(&existing.algorithms);
        if !algs.contains(&algorithm) {
            algs.push(algorithm);
        }
        return Ok(existing.clone());
    }
    let options = validator.remote.clone();
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        // `previous()` holds the original URL and every redirect followed so far.
        if attempt.previous().len() > 1 {
            attempt.error("more than one redirect")
        } else if !allowed(attempt.url()) {
            attempt.error("redirect to a non-https URL")
        } else {
            attempt.follow()
        }
    });
    let client = reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .timeout(options.timeout)
        .redirect(policy)
        .user_agent(concat!("jwtgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::new(ErrorKind::InvalidSetting, format!("HTTP client: {e}")))?;
    let cache = Arc::new(RemoteKeys {
        label,
        source,
        options,
        algorithms: Mutex::new(vec![algorithm]),
        client,
        current: ArcSwapOption::empty(),
        in_flight: Mutex::new(None),
        status: Mutex::new(Status::default()),
    });
    caches.push(cache.clone());
    Ok(cache)
}

struct FetchError {
    message: String,
    config: bool,
}

impl From<String> for FetchError {
    fn from(message: String) -> Self {
        Self {
            message,
            config: false,
        }
    }
}

#[derive(Deserialize)]
struct Discovery {
    issuer: Option<String>,
    jwks_uri: Option<String>,
}

impl RemoteKeys {
    /// The key set to check a token with `kid` against, or the seconds to wait before retrying.
    pub(crate) async fn keys_for(self: &Arc<Self>, kid: Option<&str>) -> Result<Arc<KeySet>, u64> {
        let now = Instant::now();
        if let Some(snap) = self.usable(now) {
            if now >= snap.refresh_at {
                self.refresh_in_background(now);
            }
            let Some(kid) = kid.filter(|k| !snap.keys.has_kid(k)) else {
                return Ok(snap.keys.clone());
            };
            // An unknown kid may be a rotation: refetch, at most once per interval.
            let interval = self.options.min_refetch_interval;
            let due = {
                let s = lock(&self.status);
                s.last_attempt
                    .is_none_or(|t| now.duration_since(t) >= interval)
                    && s.retry_at.is_none_or(|t| now >= t)
            };
            self.fly(due).await;
            tracing::debug!(source = %self.label, kid_len = kid.len(), refetched = due, "unknown kid");
            return Ok(self
                .usable(Instant::now())
                .map_or(snap.keys.clone(), |s| s.keys.clone()));
        }
        let due = lock(&self.status).retry_at.is_none_or(|t| now >= t);
        self.fly(due).await;
        let now = Instant::now();
        self.usable(now)
            .map(|s| s.keys.clone())
            .ok_or_else(|| self.retry_after(now))
    }

    fn usable(&self, now: Instant) -> Option<Arc<Snapshot>> {
        self.current
            .load_full()
            .filter(|s| now <= later(s.fresh_until, self.options.max_stale))
    }

    fn retry_after(&self, now: Instant) -> u64 {
        let s = lock(&self.status);
        let wait = s
            .retry_at
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
        wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
    }

    /// Starts a refresh (on its own task) unless one is running or backoff says wait.
    fn refresh_in_background(self: &Arc<Self>, now: Instant) {
        if lock(&self.status).retry_at.is_some_and(|t| now < t) {
            return;
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            drop(self.flight(true));
        }
    }

    /// Joins the fetch in flight, or starts one when `start` is true, and waits for it.
    async fn fly(self: &Arc<Self>, start: bool) {
        for _ in 0..2 {
            let Some(flight) = self.flight(start) else {
                return;
            };
            if flight.clone().await {
                return;
            }
            // The fetch's task was cancelled (the runtime it ran on shut down, as when one
            // registry serves several test runtimes): forget it and fetch again from here.
            let mut slot = lock(&self.in_flight);
            if slot.as_ref().is_some_and(|f| f.ptr_eq(&flight)) {
                *slot = None;
            }
        }
    }

    /// The fetch in flight, or a new one when `start`. The lock is only held to read or swap
    /// the handle, never across the fetch.
    fn flight(self: &Arc<Self>, start: bool) -> Option<Flight> {
        let mut slot = lock(&self.in_flight);
        if let Some(flight) = slot.as_ref() {
            return Some(flight.clone());
        }
        if !start {
            return None;
        }
        lock(&self.status).last_attempt = Some(Instant::now());
        let this = self.clone();
        let work = async move {
            this.fetch_and_store().await;
            *lock(&this.in_flight) = None;
            true
        };
        // Run the fetch on its own task when there is a runtime, so that a request that gives
        // up does not stall it for the others.
        let flight: BoxFuture<'static, bool> = match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                let handle = rt.spawn(work);
                async move { handle.await.unwrap_or(false) }.boxed()
            }
            Err(_) => work.boxed(),
        };
        let flight = flight.shared();
        *slot = Some(flight.clone());
        Some(flight)
    }

    /// Fetches now, ignoring intervals and backoff; an error says why (for `prefetch`).
    pub(crate) async fn fetch_now(self: &Arc<Self>) -> Result<(), Error> {
        lock(&self.status).retry_at = None;
        self.fly(true).await;
        let s = lock(&self.status);
        match &s.last_error {
            Some(e) => {
                let kind = if s.config_error {
                    ErrorKind::InvalidSetting
                } else {
                    ErrorKind::KeyFetch
                };
                Err(Error::new(kind, format!("{}: {e}", self.label)))
            }
            None => Ok(()),
        }
    }

    async fn fetch_and_store(&self) {
        let started = Instant::now();
        let result = self.load().await;
        let mut s = lock(&self.status);
        s.fetches += 1;
        match result {
            Ok((keys, skipped, ttl, uri)) => {
                let now = Instant::now();
                let ids: Vec<_> = keys.keys.iter().filter_map(|k| k.kid.clone()).collect();
                // Providers often publish keys for other uses (Keycloak's encryption key):
                // warn when the skipped set changes, not at every refresh.
                let changed = skipped != s.skipped;
                for k in &skipped {
                    if changed {
                        tracing::warn!(source = %self.label, kid = ?k.kid, reason = %k.reason, "skipped a JWK");
                    } else {
                        tracing::debug!(source = %self.label, kid = ?k.kid, reason = %k.reason, "skipped a JWK");
                    }
                }
                tracing::debug!(source = %self.label, url = %uri, keys = keys.keys.len(), ?ids, duration_ms = started.elapsed().as_millis() as u64, "fetched key set");
                if s.healthy == Some(false) {
                    tracing::info!(source = %self.label, "key set fetch recovered");
                }
                self.current.store(Some(Arc::new(Snapshot {
                    keys: Arc::new(keys),
                    fetched_system: SystemTime::now(),
                    refresh_at: later(now, ttl.mul_f64(0.8)),
                    fresh_until: later(now, ttl),
                })));
                s.healthy = Some(true);
                s.failures = 0;
                s.retry_at = None;
                s.last_error = None;
                s.skipped = skipped;
                s.config_error = false;
            }
            Err(e) => {
                s.failures = s.failures.saturating_add(1);
                let backoff = self.options.backoff_after(s.failures);
                s.retry_at = Some(later(Instant::now(), backoff));
                s.config_error = e.config;
                if s.healthy != Some(false) {
                    tracing::warn!(source = %self.label, error = %e.message, duration_ms = started.elapsed().as_millis() as u64, "key set fetch failed; serving the last good set if any");
                } else {
                    tracing::debug!(source = %self.label, error = %e.message, "key set fetch failed again");
                }
                s.healthy = Some(false);
                s.last_error = Some(e.message);
            }
        }
    }

    async fn load(&self) -> Result<(KeySet, Vec<SkippedKey>, Duration, Url), FetchError> {
        let uri = match &self.source {
            Source::Jwks(url) => url.clone(),
            Source::Discovery { issuer, config } => {
                let known = lock(&self.status).jwks_uri.clone();
                match known {
                    Some(uri) => uri,
                    None => {
                        let uri = self.discover(issuer, config).await?;
                        lock(&self.status).jwks_uri = Some(uri.clone());
                        uri
                    }
                }
            }
        };
        let (body, max_age) = self.get(&uri).await?;
        let algs = lock(&self.algorithms).clone();
        let (keys, skipped) = parse_jwks(&body, &algs, false)?;
        Ok((keys, skipped, self.options.ttl_for(max_age), uri))
    }

    async fn discover(&self, issuer: &str, config: &Url) -> Result<Url, FetchError> {
        let (body, _) = self.get(config).await?;
        let doc: Discovery = serde_json::from_slice(&body)
            .map_err(|_| format!("{config} is not an OpenID configuration document"))?;
        match doc.issuer.as_deref() {
            Some(found) if found == issuer => {}
            found => {
                return Err(FetchError {
                    message: format!(
                        "OIDC discovery issuer mismatch: configured {issuer:?}, discovery document says {:?}",
                        found.unwrap_or("")
                    ),
                    config: true,
                });
            }
        }
        let uri = doc
            .jwks_uri
            .ok_or_else(|| format!("{config} has no jwks_uri"))?;
        check_url(&uri, "jwks_uri").map_err(|message| FetchError {
            message,
            config: true,
        })
    }

    async fn get(&self, url: &Url) -> Result<(Vec<u8>, Option<u64>), FetchError> {
        let mut res = self
            .client
            .get(url.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| describe(&e))?;
        if res.status() != StatusCode::OK {
            return Err(format!("{url} answered HTTP {}", res.status().as_u16()).into());
        }
        let limit = self.options.max_body;
        if res.content_length().is_some_and(|n| n > limit as u64) {
            return Err(format!("{url} body is larger than {limit} bytes").into());
        }
        let max_age = res
            .headers()
            .get(CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_max_age);
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| describe(&e))? {
            if body.len() + chunk.len() > limit {
                return Err(format!("{url} body is larger than {limit} bytes").into());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, max_age))
    }

    pub(crate) fn state(&self) -> KeyCacheState {
        let snap = self.current.load_full();
        let s = lock(&self.status);
        let now = Instant::now();
        let to_system = |t: Instant| {
            let now_sys = SystemTime::now();
            if t >= now {
                now_sys + (t - now)
            } else {
                now_sys - (now - t)
            }
        };
        let next = match (&snap, s.retry_at) {
            (_, Some(retry)) => Some(retry),
            (Some(snap), None) => Some(snap.refresh_at),
            (None, None) => None,
        };
        KeyCacheState {
            source: self.label.clone(),
            jwks_uri: match &self.source {
                Source::Jwks(u) => Some(u.to_string()),
                Source::Discovery { .. } => s.jwks_uri.as_ref().map(Url::to_string),
            },
            key_ids: snap
                .as_ref()
                .map(|s| s.keys.keys.iter().filter_map(|k| k.kid.clone()).collect())
                .unwrap_or_default(),
            last_success: snap.as_ref().map(|s| s.fetched_system),
            last_error: s.last_error.clone(),
            consecutive_failures: s.failures,
            next_refresh: next.map(to_system),
            stale: snap.as_ref().is_some_and(|s| now > s.fresh_until),
            fetches: s.fetches,
            skipped: s.skipped.clone(),
        }
    }
}

/// `at + d`, saturating far in the future instead of overflowing on huge configured durations.
fn later(at: Instant, d: Duration) -> Instant {
    at.checked_add(d)
        .or_else(|| at.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(at)
}

fn describe(e: &reqwest::Error) -> FetchError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_redirect() {
        "redirect refused"
    } else {
        "request failed"
    };
    let url = e.url().map(|u| u.to_string()).unwrap_or_default();
    format!("{url} {what}").into()
}

fn parse_max_age(value: &str) -> Option<u64> {
    let mut max_age = None;
    for directive in value.split(',') {
        let directive = directive.trim();
        if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache")
        {
            return Some(0);
        }
        if let Some((name, secs)) = directive.split_once('=')
            && name.trim().eq_ignore_ascii_case("max-age")
        {
            max_age = secs.trim().trim_matches('"').parse().ok();
        }
    }
    max_age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_or_loopback() {
        assert!(
            check_url(
                "https://team.cloudflareaccess.com/cdn-cgi/access/certs",
                "u"
            )
            .is_ok()
        );
        assert!(check_url("http://127.0.0.1:8080/certs", "u").is_ok());
        assert!(check_url("http://[::1]/certs", "u").is_ok());
        assert!(check_url("http://localhost/certs", "u").is_ok());
        let err = check_url("http://10.0.0.1/certs", "jwks_url").unwrap_err();
        assert!(err.contains("must use https"), "{err}");
        assert!(check_url("ftp://x/", "u").is_err());
        assert!(check_url("not a url", "u").is_err());
    }

    #[test]
    fn cache_control() {
        assert_eq!(parse_max_age("public, max-age=600"), Some(600));
        assert_eq!(parse_max_age("no-store"), Some(0));
        assert_eq!(parse_max_age("public"), None);
        let o = RemoteKeyOptions::default();
        assert_eq!(o.ttl_for(Some(5)), Duration::from_secs(60));
        assert_eq!(o.ttl_for(Some(600)), Duration::from_secs(600));
        assert_eq!(o.ttl_for(Some(10_000_000)), Duration::from_secs(86_400));
        assert_eq!(o.ttl_for(None), Duration::from_secs(300));
    }

    #[test]
    fn huge_durations_do_not_overflow() {
        let now = Instant::now();
        assert!(later(now, Duration::MAX) > now);
        let o = RemoteKeyOptions::default().backoff(Duration::MAX, Duration::MAX);
        assert_eq!(o.backoff_after(70), Duration::MAX);
    }

    #[test]
    fn backoff_doubles_up_to_the_max() {
        let o = RemoteKeyOptions::default();
        assert_eq!(o.backoff_after(1), Duration::from_secs(1));
        assert_eq!(o.backoff_after(3), Duration::from_secs(4));
        assert_eq!(o.backoff_after(40), Duration::from_secs(60));
    }
}
