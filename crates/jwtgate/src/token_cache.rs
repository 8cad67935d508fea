//! The verified-token cache, Envoy's `jwt_cache_config` in a library: a token whose signature a
//! validator verified is not verified again while it stays valid.
//!
//! What makes a hit as good as a fresh verification:
//! - only successes are stored, with the validator that accepted the token, so a hit is served
//!   only when the chain walk reaches that validator (a route whose chain lacks it verifies
//!   afresh, and a validator earlier in the chain still gets its own say);
//! - the key is the whole token (the cache hashes it and compares it in full on a hit);
//! - every hit checks `exp`, `nbf` and `iat` with the validator's leeway against the clock;
//! - every hit checks that the key that verified the token is still in the validator's key set,
//!   and drops the entry when it is not;
//! - what follows acceptance (user and partner lookups, the cookie-mode cookie) runs on a hit
//!   exactly as after a verification.
//!
//! Tokens over [`MAX_CACHED_TOKEN_BYTES`] are not stored, and the cache holds at most its
//! capacity of entries (least recently and least frequently used go first), each until its
//! token expires.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::sync::Cache;

use crate::failure::Failure;
use crate::identity::Payload;
use crate::jws::claims;
use crate::jws::key::KeyId;
use crate::revocation::Probe;
use crate::validator::CompiledValidator;

/// How many verified tokens a registry remembers unless told otherwise.
pub(crate) const DEFAULT_CAPACITY: u64 = 10_000;

/// Longer tokens are verified every time: few real tokens are this large, and a cache of them
/// would hold a lot of memory for little gain.
pub(crate) const MAX_CACHED_TOKEN_BYTES: usize = 4 * 1024;

/// A successful verification.
pub(crate) struct Verified {
    /// The index of the validator that accepted the token.
    pub(crate) validator: usize,
    /// The token's claims, shared with every request that presents the token.
    pub(crate) payload: Payload,
    /// The key whose signature held.
    pub(crate) key: KeyId,
    /// The token's `exp`, `nbf` and `iat`, as every hit checks them.
    pub(crate) times: claims::Times,
    /// When the entry goes: the token's `exp` plus the validator's leeway (Unix seconds).
    expires_at: u64,
    /// What revocation looks the token up by, read on the first check that needs it.
    probe: OnceLock<Option<Probe>>,
}

impl Verified {
    pub(crate) fn new(validator: usize, payload: Payload, key: KeyId, leeway: u64) -> Self {
        // The claim checks' own reading (verified, so `exp` is present and valid).
        let times = claims::Times::read(payload.claims());
        let exp = times.exp().map_or(0, |e| e.ceil() as u64);
        Self {
            validator,
            payload,
            key,
            times,
            expires_at: exp.saturating_add(leeway),
            probe: OnceLock::new(),
        }
    }

    /// The token's revocation probe (made once, kept with the entry).
    pub(crate) fn probe(&self) -> Option<&Probe> {
        self.probe
            .get_or_init(|| Probe::of(self.payload.claims()))
            .as_ref()
    }
}

/// Entries leave when their token expires (every hit checks the clock anyway; this only frees
/// the memory).
struct UntilExpiry;

impl Expiry<Box<str>, Arc<Verified>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _token: &Box<str>,
        verified: &Arc<Verified>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(
            verified.expires_at.saturating_sub(claims::now()),
        ))
    }
}

/// A registry's verified tokens; a capacity of 0 turns the cache off.
#[cfg_attr(feature = "remote-keys", derive(Clone))]
pub(crate) struct TokenCache {
    cache: Option<Cache<Box<str>, Arc<Verified>, TokenHasher>>,
}

/// Tokens are hashed with foldhash, seeded per process: hashing a 600-byte token with std's
/// SipHash took a third of a cache hit. Its weaker flooding resistance does not matter here:
/// only tokens whose signature held are ever stored, so no client can fill the cache with
/// keys of its choosing, and every lookup still compares the whole token.
type TokenHasher = foldhash::fast::RandomState;

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the tokens.
        f.debug_struct("TokenCache")
            .field(
                "capacity",
                &self.cache.as_ref().and_then(|c| c.policy().max_capacity()),
            )
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    pub(crate) fn new(capacity: u64) -> Self {
        let cache = (capacity > 0).then(|| {
            Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilExpiry)
                .support_invalidation_closures()
                .build_with_hasher(TokenHasher::default())
        });
        Self { cache }
    }

    /// The verification of `raw`, when one is remembered.
    pub(crate) fn get(&self, raw: &str) -> Option<Arc<Verified>> {
        if raw.len() > MAX_CACHED_TOKEN_BYTES {
            return None;
        }
        self.cache.as_ref()?.get(raw)
    }

    /// The hit policy: `remembered` (this request's lookup of `raw`) serves validator `v` when
    /// `v` verified it and its key is still in `v`'s set, re-checked against the clock. `None`
    /// when the token must be verified; an entry whose key left the set is forgotten.
    pub(crate) fn hit(
        &self,
        v: &CompiledValidator,
        remembered: &mut Option<Arc<Verified>>,
        raw: &str,
        now: u64,
    ) -> Option<Result<Payload, Failure>> {
        let hit = remembered.as_ref()?;
        if hit.validator != v.index {
            return None;
        }
        if !v.still_has_key(hit.key, hit.payload.claims()) {
            self.remove(raw);
            *remembered = None;
            return None;
        }
        Some(match v.rules.check_times(&hit.times, now) {
            Ok(()) => Ok(hit.payload.clone()),
            Err(e) => Err(Failure::Claim(e)),
        })
    }

    /// Remembers a successful verification of `raw` (not when `raw` is too long to cache).
    pub(crate) fn insert(&self, raw: &str, verified: Verified) {
        if let Some(cache) = &self.cache
            && raw.len() <= MAX_CACHED_TOKEN_BYTES
        {
            cache.insert(Box::from(raw), Arc::new(verified));
        }
    }

    /// Has every remote key cache tell this cache when a refresh drops keys: the tokens those
    /// keys verified, for the validators reading that set, are forgotten at once.
    #[cfg(feature = "remote-keys")]
    pub(crate) fn watch(
        &self,
        caches: &crate::remote::KeyCaches,
        validators: &[CompiledValidator],
    ) {
        for cache in caches.iter() {
            let readers: Arc<[usize]> = validators
                .iter()
                .filter(|v| v.reads_keys_of(cache))
                .map(|v| v.index)
                .collect();
            let tokens = self.clone();
            cache.on_keys_dropped(move |keys| {
                tokens.forget_keys_outside(Arc::clone(&readers), Arc::clone(keys));
            });
        }
    }

    /// Forgets every token that one of `validators` verified with a key not in `keys` (a key
    /// set refresh dropped it). moka applies the predicate in the background, and never
    /// returns a matching entry meanwhile.
    #[cfg(feature = "remote-keys")]
    fn forget_keys_outside(
        &self,
        validators: Arc<[usize]>,
        keys: Arc<crate::jws::key_set::KeySet>,
    ) {
        if let Some(cache) = &self.cache
            && let Err(e) = cache.invalidate_entries_if(move |_, verified| {
                validators.contains(&verified.validator) && !keys.contains(verified.key)
            })
        {
            tracing::warn!(error = %e, "could not forget the tokens of dropped keys");
        }
    }

    /// Forgets `raw` (its key left the key set).
    pub(crate) fn remove(&self, raw: &str) {
        if let Some(cache) = &self.cache {
            cache.invalidate(raw);
        }
    }

    /// How many tokens are remembered, after pending evictions ran (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| {
            c.run_pending_tasks();
            c.entry_count()
        })
    }
}

#[cfg(test)]
mod tests {
    use http::header::AUTHORIZATION;
    use http::request::Parts;
    use serde_json::{Value, json};

    use super::*;
    use crate::engine::Chain;
    use crate::identity::Identity;
    use crate::rejection::Rejection;
    use crate::{Algorithm, CookieMode, KeySource, Registry, User, Validator};

    const SECRET: &str = "thesecret-of-at-least-32-bytes!!";

    fn validator(name: &str, audience: &str) -> Validator {
        Validator::new(name)
            .issuer("i")
            .audience(audience)
            .algorithm(Algorithm::HS256)
            .key(KeySource::secret(SECRET))
            .user(User::fixed(7))
    }

    fn token(claims: &Value) -> String {
        let mut claims = claims.clone();
        let exp = claims::now() + 60;
        claims["exp"] = claims.get("exp").cloned().unwrap_or(json!(exp));
        jwtgate_test::mint(
            &jwtgate_test::TestKey::hmac(SECRET),
            "HS256",
            json!({}),
            &claims,
        )
    }

    fn parts(token: &str) -> Parts {
        http::Request::builder()
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    async fn send(
        registry: &Registry,
        start: &str,
        token: &str,
    ) -> Result<(Identity, Option<http::HeaderValue>), Rejection> {
        let engine = registry.engine();
        let chain = Chain {
            start: engine.position(start).unwrap(),
            public: false,
        };
        let mut parts = parts(token);
        let set_cookie = engine.authorize(chain, &[], &mut parts).await?;
        let identity = parts.extensions.remove::<Identity>().expect("an identity");
        Ok((identity, set_cookie))
    }

    fn tokens(registry: &Registry) -> &TokenCache {
        &registry.engine().tokens
    }

    #[tokio::test]
    async fn a_repeated_token_is_served_from_the_cache_with_the_same_outcome() {
        let registry = Registry::builder()
            .validator(
                validator("a", "x").cookie(CookieMode::new("a_auth").secret(SECRET).secure(false)),
            )
            .build()
            .unwrap();
        let t = token(&json!({"iss": "i", "aud": "x", "email": "e@x"}));
        let (first, cookie1) = send(&registry, "a", &t).await.unwrap();
        assert_eq!(tokens(&registry).len(), 1);
        let remembered = tokens(&registry).get(&t).unwrap();
        assert!(remembered.payload.same(first.payload()));
        let (second, cookie2) = send(&registry, "a", &t).await.unwrap();
        assert!(
            second.payload().same(first.payload()),
            "the second request was not verified again"
        );
        // The same outcome: user, validator, claims, and a fresh cookie-mode cookie.
        assert_eq!(second.user_id(), first.user_id());
        assert_eq!(second.validator(), "a");
        assert_eq!(second.payload().get_str("email"), Some("e@x"));
        for cookie in [cookie1, cookie2] {
            assert!(cookie.unwrap().to_str().unwrap().starts_with("a_auth="));
        }
        assert_eq!(tokens(&registry).len(), 1);
    }

    #[tokio::test]
    async fn every_hit_checks_the_clock() {
        let registry = Registry::builder()
            .validator(validator("a", "x"))
            .build()
            .unwrap();
        let t = token(&json!({"iss": "i", "aud": "x"}));
        send(&registry, "a", &t).await.unwrap();
        let key = tokens(&registry).get(&t).unwrap().key;
        // The remembered claims say the token expired (or is not valid yet): a hit must say
        // so, although the token itself would pass a fresh verification.
        for (claims, why) in [
            (json!({"exp": claims::now() - 5}), "token expired"),
            (
                json!({"exp": claims::now() + 60, "nbf": claims::now() + 30}),
                "token not yet valid",
            ),
        ] {
            let Value::Object(claims) = claims else {
                unreachable!()
            };
            tokens(&registry).insert(&t, Verified::new(0, Payload::from(claims), key, 0));
            let refused = send(&registry, "a", &t).await.unwrap_err();
            assert_eq!(refused.description(), why);
        }
    }

    #[tokio::test]
    async fn hits_respect_the_chain() {
        // a and b accept the same token; c refuses it and falls back to a.
        let registry = Registry::builder()
            .validator(validator("a", "x"))
            .validator(validator("b", "x"))
            .validator(validator("c", "other").next("a"))
            .build()
            .unwrap();
        let t = token(&json!({"iss": "i", "aud": "x"}));
        let (by_a, _) = send(&registry, "a", &t).await.unwrap();
        // A route whose chain lacks a verifies afresh, and b accepts.
        let (by_b, _) = send(&registry, "b", &t).await.unwrap();
        assert_eq!(by_b.validator(), "b");
        assert!(!by_b.payload().same(by_a.payload()));
        // c refuses; a, next in the chain, is served from the cache (remembered for b now, so
        // a verifies once more and is remembered again).
        let (via_c, _) = send(&registry, "c", &t).await.unwrap();
        assert_eq!(via_c.validator(), "a");
        let (again, _) = send(&registry, "c", &t).await.unwrap();
        assert_eq!(again.validator(), "a");
        assert!(again.payload().same(via_c.payload()));
    }

    #[tokio::test]
    async fn an_entry_whose_key_left_the_set_is_not_served() {
        let registry = Registry::builder()
            .validator(validator("a", "x"))
            .build()
            .unwrap();
        let t = token(&json!({"iss": "i", "aud": "x"}));
        let (first, _) = send(&registry, "a", &t).await.unwrap();
        let gone = Payload::from(first.payload().as_map().clone());
        tokens(&registry).insert(&t, Verified::new(0, gone.clone(), KeyId::fake(), 0));
        let (second, _) = send(&registry, "a", &t).await.unwrap();
        assert!(!second.payload().same(&gone), "verified afresh");
        assert_ne!(tokens(&registry).get(&t).unwrap().key, KeyId::fake());
    }

    #[tokio::test]
    async fn the_cache_is_bounded_and_skips_large_tokens() {
        let registry = Registry::builder()
            .validator(validator("a", "x"))
            .token_cache(3)
            .build()
            .unwrap();
        for i in 0..20 {
            let t = token(&json!({"iss": "i", "aud": "x", "jti": format!("t{i}")}));
            send(&registry, "a", &t).await.unwrap();
            assert!(tokens(&registry).len() <= 3);
        }
        // Bounded, and in use (which tokens stay is moka's admission policy's choice).
        assert!((1..=3).contains(&tokens(&registry).len()));

        let registry = Registry::builder()
            .validator(validator("a", "x"))
            .build()
            .unwrap();
        let large = token(&json!({"iss": "i", "aud": "x", "pad": "p".repeat(3100)}));
        assert!(large.len() > MAX_CACHED_TOKEN_BYTES);
        send(&registry, "a", &large).await.unwrap();
        assert_eq!(tokens(&registry).len(), 0);
        let small = token(&json!({"iss": "i", "aud": "x", "pad": "p".repeat(2900)}));
        assert!(small.len() <= MAX_CACHED_TOKEN_BYTES);
        send(&registry, "a", &small).await.unwrap();
        assert_eq!(tokens(&registry).len(), 1);

        let off = Registry::builder()
            .validator(validator("a", "x"))
            .token_cache(0)
            .build()
            .unwrap();
        let t = token(&json!({"iss": "i", "aud": "x"}));
        let (first, _) = send(&off, "a", &t).await.unwrap();
        let (second, _) = send(&off, "a", &t).await.unwrap();
        assert!(!second.payload().same(first.payload()));
        assert_eq!(tokens(&off).len(), 0);
    }

    /// A refresh that drops a key forgets the tokens it verified at once, before anyone
    /// presents them again; tokens of the keys that stay are kept.
    #[cfg(feature = "remote-keys")]
    #[tokio::test]
    async fn tokens_go_when_a_refresh_drops_their_key() {
        use std::time::Duration;

        use jwtgate_test::{Provider, TestKey, claims, jwks, mint};

        use crate::remote::RemoteKeyOptions;

        let (k1, k2) = (TestKey::rsa(), TestKey::rsa_alt());
        let provider = Provider::start(jwks([k1.jwk("k1", "RS256"), k2.jwk("k2", "RS256")])).await;
        let options = RemoteKeyOptions::default()
            .min_refetch_interval(Duration::from_millis(50))
            .ttl(Duration::from_millis(300))
            .ttl_bounds(Duration::ZERO, Duration::from_secs(60));
        let registry = Registry::builder()
            .validator(
                Validator::new("r")
                    .issuer(provider.issuer())
                    .audience("x")
                    .algorithm(Algorithm::RS256)
                    .key(KeySource::jwks_url(provider.jwks_url()))
                    .remote_options(options)
                    .user(User::fixed(1)),
            )
            .build()
            .unwrap();
        let signed = |key: &TestKey, kid: &str, jti: &str| {
            let mut c = claims(&provider.issuer(), "x", 300);
            c["jti"] = json!(jti);
            mint(key, "RS256", json!({ "kid": kid }), &c)
        };
        let (old, kept) = (signed(&k1, "k1", "old"), signed(&k2, "k2", "kept"));
        send(&registry, "r", &old).await.unwrap();
        send(&registry, "r", &kept).await.unwrap();
        assert_eq!(tokens(&registry).len(), 2);

        provider.set_jwks(jwks([k2.jwk("k2", "RS256")]));
        tokio::time::sleep(Duration::from_millis(350)).await;
        // Past the TTL: a request with another token starts the refresh that drops k1.
        send(&registry, "r", &signed(&k2, "k2", "trigger"))
            .await
            .unwrap();
        let mut forgotten = false;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if tokens(&registry).get(&old).is_none() {
                forgotten = true;
                break;
            }
        }
        assert!(forgotten, "the token of the dropped key left the cache");
        assert!(tokens(&registry).get(&kept).is_some(), "k2's tokens stay");
        assert_eq!(tokens(&registry).len(), 2, "kept and trigger");
    }
}
