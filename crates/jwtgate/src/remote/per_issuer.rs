//! A key cache per issuer, for a validator of several issuers whose keys come from each
//! issuer's discovery (`oidc_discovery`). Only issuers the validator accepts get here (the
//! token's `iss` is matched first), but a pattern accepts many, and anyone can write a token
//! naming a tenant: so new issuers are admitted at a bounded rate, and at most
//! [`MAX_ISSUERS`] are remembered (the least recently used pattern issuer makes room; the
//! issuers configured exactly always stay). Each cache has today's refresh, rate limits and
//! caps.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::options::RemoteKeyOptions;
use super::{RemoteKeys, Source, Unavailable, lock};
use crate::error::Error;
use crate::jws::algorithm::Algorithm;
use crate::jws::key::KeyId;

/// How many issuers one validator remembers.
pub(crate) const MAX_ISSUERS: usize = 100;
/// How many issuers it has not seen before it admits per [`WINDOW`].
const ADMISSIONS: usize = 10;
const WINDOW: Duration = Duration::from_secs(60);

pub(crate) struct IssuerKeys {
    validator: String,
    options: RemoteKeyOptions,
    algorithm: Algorithm,
    client: reqwest::Client,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// When each recent new issuer was admitted.
    admitted: VecDeque<Instant>,
    /// Whether the refusals of this full window were logged (once: anyone can send them).
    warned: bool,
}

struct Entry {
    keys: Arc<RemoteKeys>,
    used: Instant,
    /// Named in the configuration: never evicted, never counted against admissions.
    configured: bool,
}

impl IssuerKeys {
    pub(super) fn new(
        validator: &str,
        options: &RemoteKeyOptions,
        algorithm: Algorithm,
        client: reqwest::Client,
    ) -> Arc<Self> {
        Arc::new(Self {
            validator: validator.to_owned(),
            options: options.clone(),
            algorithm,
            client,
            inner: Mutex::new(Inner::default()),
        })
    }

    fn cache(&self, issuer: &str, source: Source) -> Arc<RemoteKeys> {
        RemoteKeys::new(
            issuer.to_owned(),
            source,
            &self.options,
            self.algorithm,
            self.client.clone(),
        )
    }

    /// Makes the cache of an issuer the validator names exactly (its URL checked now).
    pub(super) fn admit_configured(&self, issuer: &str) -> Result<(), Error> {
        let source = Source::discovery(issuer, "issuer")?;
        let keys = self.cache(issuer, source);
        let entry = Entry {
            keys,
            used: Instant::now(),
            configured: true,
        };
        lock(&self.inner).entries.insert(issuer.to_owned(), entry);
        Ok(())
    }

    /// The cache of `issuer` (which the validator accepts), made when it is new and may be
    /// admitted now.
    pub(crate) fn for_issuer(&self, issuer: &str) -> Result<Arc<RemoteKeys>, Unavailable> {
        let now = Instant::now();
        let mut inner = lock(&self.inner);
        if let Some(entry) = inner.entries.get_mut(issuer) {
            entry.used = now;
            return Ok(Arc::clone(&entry.keys));
        }
        while inner
            .admitted
            .front()
            .is_some_and(|at| now.duration_since(*at) >= WINDOW)
        {
            inner.admitted.pop_front();
            inner.warned = false;
        }
        if inner.admitted.len() >= ADMISSIONS {
            let oldest = inner.admitted.front().copied().unwrap_or(now);
            let wait = WINDOW.saturating_sub(now.duration_since(oldest));
            if !std::mem::replace(&mut inner.warned, true) {
                tracing::warn!(validator = %self.validator, "new issuers arrive faster than admitted; refused for now");
            }
            return Err(Unavailable {
                retry_after: wait.as_secs().max(1),
                misconfigured: false,
            });
        }
        // The pattern keeps the tenant a plain segment, so this is an https URL of the
        // provider's; a loopback http issuer passes only if the pattern itself is one.
        let source = Source::discovery(issuer, "iss").map_err(|_| Unavailable {
            retry_after: WINDOW.as_secs(),
            misconfigured: true,
        })?;
        if inner.entries.len() >= MAX_ISSUERS {
            let evict = inner
                .entries
                .iter()
                .filter(|(_, e)| !e.configured)
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            match evict {
                Some(k) => {
                    inner.entries.remove(&k);
                }
                None => {
                    return Err(Unavailable {
                        retry_after: WINDOW.as_secs(),
                        misconfigured: false,
                    });
                }
            }
        }
        inner.admitted.push_back(now);
        let keys = self.cache(issuer, source);
        inner.entries.insert(
            issuer.to_owned(),
            Entry {
                keys: Arc::clone(&keys),
                used: now,
                configured: false,
            },
        );
        tracing::info!(validator = %self.validator, issuer, "key cache made for a new issuer");
        Ok(keys)
    }

    /// Whether key `id` is still in the set of `issuer` (never fetches).
    pub(crate) fn serves(&self, issuer: &str, id: KeyId) -> bool {
        let keys = lock(&self.inner)
            .entries
            .get(issuer)
            .map(|e| Arc::clone(&e.keys));
        keys.is_some_and(|k| k.serves(id))
    }

    /// The caches remembered now.
    pub(super) fn caches(&self) -> Vec<Arc<RemoteKeys>> {
        lock(&self.inner)
            .entries
            .values()
            .map(|e| Arc::clone(&e.keys))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Arc<IssuerKeys> {
        IssuerKeys::new(
            "v",
            &RemoteKeyOptions::default(),
            Algorithm::RS256,
            reqwest::Client::new(),
        )
    }

    #[test]
    fn new_issuers_are_admitted_at_a_bounded_rate_and_remembered_up_to_a_cap() {
        let k = keys();
        k.admit_configured("https://sso.example/realms/main")
            .unwrap();
        for i in 0..ADMISSIONS {
            k.for_issuer(&format!("https://sso.example/realms/t{i}"))
                .unwrap();
        }
        // Known issuers are served whatever the rate; a new one waits.
        k.for_issuer("https://sso.example/realms/t0").unwrap();
        k.for_issuer("https://sso.example/realms/main").unwrap();
        let refused = k.for_issuer("https://sso.example/realms/late").unwrap_err();
        assert!(!refused.misconfigured);
        assert!((1..=60).contains(&refused.retry_after), "{refused:?}");
        assert_eq!(k.caches().len(), ADMISSIONS + 1);
        // At the cap, the least recently used pattern issuer makes room, never a configured one.
        {
            let mut inner = lock(&k.inner);
            inner.admitted.clear();
            let long_ago = Instant::now() - Duration::from_secs(3600);
            for i in ADMISSIONS..MAX_ISSUERS - 1 {
                let issuer = format!("https://sso.example/realms/t{i}");
                let source = Source::discovery(&issuer, "iss").unwrap();
                let entry = Entry {
                    keys: k.cache(&issuer, source),
                    used: Instant::now(),
                    configured: false,
                };
                inner.entries.insert(issuer, entry);
            }
            inner
                .entries
                .get_mut("https://sso.example/realms/t3")
                .unwrap()
                .used = long_ago;
            inner
                .entries
                .get_mut("https://sso.example/realms/main")
                .unwrap()
                .used = long_ago - Duration::from_secs(1);
        }
        assert_eq!(k.caches().len(), MAX_ISSUERS);
        k.for_issuer("https://sso.example/realms/new").unwrap();
        let inner = lock(&k.inner);
        assert_eq!(inner.entries.len(), MAX_ISSUERS);
        assert!(!inner.entries.contains_key("https://sso.example/realms/t3"));
        assert!(
            inner
                .entries
                .contains_key("https://sso.example/realms/main")
        );
    }

    #[test]
    fn an_issuer_that_is_no_fetchable_url_is_misconfigured_not_fetched() {
        let k = keys();
        let e = k.for_issuer("http://10.0.0.1/realms/t").unwrap_err();
        assert!(e.misconfigured);
        assert!(k.caches().is_empty());
        assert!(k.admit_configured("http://10.0.0.1/x").is_err());
    }
}
