//! The registry: every validator of an app, compiled once into one engine and shared (one
//! `Arc`, one key cache per JWKS URL); per-route layers come from it.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::directory::{InMemoryDirectory, PartnerDirectory, UserDirectory};
use crate::engine::{Chain, Engine, RevocationCheck};
pub use crate::engine::{Check, Verdict};
use crate::error::{Error, ErrorKind};
use crate::identity::is_valid_name;
use crate::layer::JwtAuthLayer;
use crate::mode::AuthMode;
#[cfg(feature = "remote-keys")]
use crate::remote::KeyCacheState;
use crate::remote::KeyCaches;
use crate::revocation::{MemoryStore, Mirror, RevocationStore, Revoker, StoreOptions};
use crate::token_cache::TokenCache;
use crate::validator::{CompiledValidator, Validator};

/// All validators of an application. Cheap to clone.
///
/// ```
/// use jwtgate::{Algorithm, KeySource, Registry, Validator, User};
///
/// let registry = Registry::builder()
///     .validator(
///         Validator::new("demo")
///             .issuer("theissuer")
///             .audience("auth_jwt_test_api")
///             .algorithm(Algorithm::HS256)
///             .key(KeySource::secret("thesecret-of-at-least-32-bytes!!"))
///             .user(User::fixed(42)),
///     )
///     .build()?;
/// let layer = registry.layer("jwt_demo")?;
/// assert!(registry.layer("jwt_nope").is_err());
/// # let _ = layer;
/// # Ok::<(), jwtgate::Error>(())
/// ```
#[derive(Clone)]
pub struct Registry {
    engine: Arc<Engine>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("realm", &self.engine.realm)
            .field("validators", &self.validator_names().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Registry`].
#[must_use]
pub struct RegistryBuilder {
    realm: String,
    validators: Vec<Validator>,
    session_cookie: Option<String>,
    directory: Arc<dyn PartnerDirectory>,
    users: Option<Arc<dyn UserDirectory>>,
    token_cache: u64,
    store: Option<Arc<dyn RevocationStore>>,
    store_options: StoreOptions,
    sessions: Option<Arc<dyn crate::session::SessionStore>>,
    #[cfg(feature = "remote-keys")]
    http: crate::remote::HttpClient,
}

impl fmt::Debug for RegistryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryBuilder")
            .field("realm", &self.realm)
            .field("validators", &self.validators)
            .field("session_cookie", &self.session_cookie)
            .field("token_cache", &self.token_cache)
            .field("store", &self.store.as_ref().map(|s| s.name()))
            .field("store_options", &self.store_options)
            .finish_non_exhaustive()
    }
}

impl RegistryBuilder {
    /// The realm of `WWW-Authenticate` challenges (default `jwtgate`).
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Adds a validator.
    pub fn validator(mut self, validator: Validator) -> Self {
        self.validators.push(validator);
        self
    }

    /// Refuses JWT routes for requests that carry this session cookie, as auth_jwt refuses
    /// requests with an Odoo session (a token and a session must not disagree on the user).
    pub fn session_cookie(mut self, name: impl Into<String>) -> Self {
        self.session_cookie = Some(name.into());
        self
    }

    /// Where `partner_by_email` looks partners up (default: an empty in-memory directory).
    pub fn directory(mut self, directory: impl PartnerDirectory) -> Self {
        self.directory = Arc::new(directory);
        self
    }

    /// Where validators with a [`User::directory`](crate::User::directory) find (and register) their
    /// users, such as `jwtgate_sqlx::SqlDirectory`.
    pub fn users(mut self, users: impl UserDirectory) -> Self {
        self.users = Some(Arc::new(users));
        self
    }

    /// How many verified tokens are remembered (default 10,000; 0 turns the cache off).
    ///
    /// A token presented again is then not verified again while it stays valid: each use
    /// still checks `exp`, `nbf` and `iat` against the clock, is served only by the validator
    /// that accepted it (and only on routes whose chain holds that validator), and only while
    /// the key that verified it is in that validator's key set. Users and partners are still
    /// looked up on every request. Tokens over 4 KiB are not remembered.
    pub fn token_cache(mut self, capacity: u64) -> Self {
        self.token_cache = capacity;
        self
    }

    /// How key fetches, discovery and the logins' calls reach providers: a proxy, extra CA
    /// roots, a client certificate, or the app's own `reqwest::Client` (default: straight, the
    /// system's roots).
    #[cfg(feature = "remote-keys")]
    pub fn http_client(mut self, http: crate::remote::HttpClient) -> Self {
        self.http = http;
        self
    }

    /// Where revocations live, shared by every instance that uses the same store (default: a
    /// [`MemoryStore`] of this registry alone). Every accepted credential is checked against
    /// it; see [`revocation`](crate::revocation).
    pub fn store(mut self, store: impl RevocationStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Where sign-ins' session records live, when not in the store's own (see
    /// [`RevocationStore::sessions`]); without either, in this process.
    pub fn session_store(mut self, sessions: impl crate::session::SessionStore) -> Self {
        self.sessions = Some(Arc::new(sessions));
        self
    }

    /// How a stale store is answered and how much it keeps (default [`StoreOptions::new`]).
    pub fn store_options(mut self, options: StoreOptions) -> Self {
        self.store_options = options;
        self
    }

    /// Whether a store was set (a config file with `[store] url` needs one).
    #[cfg(feature = "config")]
    pub(crate) fn has_store(&self) -> bool {
        self.store.is_some()
    }

    /// Checks every validator, parses static keys, links `next` chains and sets up key caches.
    /// No I/O happens here except reading key files and environment variables.
    pub fn build(self) -> Result<Registry, Error> {
        if self.realm.is_empty()
            || self
                .realm
                .chars()
                .any(|c| c == '"' || c == '\\' || !(c == ' ' || c.is_ascii_graphic()))
        {
            return Err(Error::new(
                ErrorKind::InvalidSetting,
                "realm must be non-empty printable ASCII without '\"' or '\\'",
            )
            .in_field("realm"));
        }
        let mut by_name = HashMap::new();
        for (i, v) in self.validators.iter().enumerate() {
            if !is_valid_name(&v.name) {
                return Err(Error::new(
                    ErrorKind::InvalidName,
                    format!(
                        "validator name {:?} is not a valid identifier ([A-Za-z_][A-Za-z0-9_]*)",
                        v.name
                    ),
                )
                .in_validator(&v.name)
                .in_field("name"));
            }
            if by_name.insert(v.name.as_str(), i).is_some() {
                return Err(Error::new(
                    ErrorKind::DuplicateName,
                    format!("validator names must be unique: {:?} is used twice", v.name),
                )
                .in_validator(&v.name)
                .in_field("name"));
            }
        }
        let mut next = Vec::with_capacity(self.validators.len());
        for v in &self.validators {
            next.push(match &v.next {
                None => None,
                Some(n) => Some(*by_name.get(n.as_str()).ok_or_else(|| {
                    let names = self.validators.iter().map(|v| v.name.as_str());
                    let hint = crate::suggest::did_you_mean(n, names)
                        .map_or(String::new(), |near| format!("; did you mean {near:?}?"));
                    Error::new(
                        ErrorKind::UnknownValidator,
                        format!("no validator named {n:?}{hint}"),
                    )
                    .in_validator(&v.name)
                    .in_field("next")
                })?),
            });
        }
        check_chains(&self.validators, &next)?;
        check_cookie_names(&self.validators, self.session_cookie.as_deref())?;

        #[cfg_attr(not(feature = "remote-keys"), allow(unused_mut))]
        let mut caches = KeyCaches::default();
        #[cfg(feature = "remote-keys")]
        {
            caches.http = self.http.clone();
        }
        let mut validators = Vec::with_capacity(self.validators.len());
        for (index, (v, next)) in self.validators.iter().zip(next).enumerate() {
            let compiled = v
                .compile(&mut caches)
                .map_err(|e| e.in_validator(&v.name))?;
            if matches!(compiled.user, crate::validator::UserStrategy::Directory(_))
                && self.users.is_none()
            {
                return Err(Error::new(
                    ErrorKind::InvalidSetting,
                    "the validator finds users in a directory, but the registry has none \
                     (RegistryBuilder::users, or [directory] url in the config file)",
                )
                .in_validator(&v.name)
                .in_field("user"));
            }
            validators.push(CompiledValidator {
                index,
                next,
                ..compiled
            });
        }
        let tokens = TokenCache::new(self.token_cache);
        #[cfg(feature = "remote-keys")]
        tokens.watch(&caches, &validators);
        let store: Arc<dyn RevocationStore> = match self.store {
            Some(store) => store,
            None => Arc::new(MemoryStore::new()),
        };
        let options = self.store_options;
        let mirror = Mirror::new(options.max_entries);
        store.follow(mirror.clone());
        let issuers = validators
            .iter()
            .map(|v| {
                let issuers = (v.rules.issuers.clone(), v.rules.issuer_patterns.clone());
                (v.name.to_string(), issuers)
            })
            .collect();
        let revoker = Revoker::new(store.clone(), issuers, options.retention.as_secs());
        // Sessions live where revocations do when the store keeps them; else here.
        let sessions = self
            .sessions
            .or_else(|| store.sessions())
            .unwrap_or_else(|| Arc::new(crate::session::MemorySessions::new()));
        Ok(Registry {
            engine: Arc::new(Engine {
                realm: Arc::from(self.realm),
                validators,
                session_cookie: self.session_cookie,
                directory: self.directory,
                users: self.users,
                caches,
                tokens,
                revocation: RevocationCheck {
                    mirror,
                    staleness_secs: options.staleness_secs(),
                    fail_open: options.fail_open,
                    store: store.name(),
                },
                revoker,
                sessions,
            }),
        })
    }
}

/// Refuses `next` loops, naming the loop as auth_jwt does. Walks start from the validator
/// declared last, the one whose link closes the loop when validators are added in order.
fn check_chains(validators: &[Validator], next: &[Option<usize>]) -> Result<(), Error> {
    for start in (0..validators.len()).rev() {
        let mut path = vec![start];
        let mut at = next[start];
        while let Some(i) = at {
            path.push(i);
            if i == start {
                let names: Vec<_> = path.iter().map(|&i| validators[i].name.as_str()).collect();
                // auth_jwt's exact message; the validator whose `next` closes the loop is context.
                return Err(Error::new(
                    ErrorKind::ClosedChain,
                    format!(
                        "Validators mustn't make a closed chain: {}.",
                        names.join(" -> ")
                    ),
                )
                .in_validator(&validators[start].name)
                .in_field("next"));
            }
            if path.len() > validators.len() {
                break; // a loop that does not pass through `start`; found from one of its members
            }
            at = next[i];
        }
    }
    Ok(())
}

/// jwtgate never issues a cookie that a provider (or the session guard) owns: a cookie-mode
/// cookie named like a source cookie would overwrite the provider's token.
fn check_cookie_names(validators: &[Validator], session: Option<&str>) -> Result<(), Error> {
    for v in validators {
        let Some(name) = v.cookie.as_ref().map(super::cookie::CookieMode::name) else {
            continue;
        };
        let clash = validators
            .iter()
            .find(|other| other.source_cookies().contains(&name));
        let why = match clash {
            Some(other) => format!(
                "cookie {name:?} is a token source of validator {:?}; jwtgate would overwrite the provider's cookie",
                other.name
            ),
            None if session == Some(name.as_str()) => {
                format!("cookie {name:?} is the session cookie")
            }
            None => continue,
        };
        return Err(Error::new(ErrorKind::InvalidSetting, why)
            .in_validator(&v.name)
            .in_field("cookie.name"));
    }
    Ok(())
}

/// One validator of the engine, as the sign-in routes see it.
#[cfg(feature = "login")]
struct ValidatorSite {
    engine: Arc<Engine>,
    index: usize,
}

#[cfg(feature = "login")]
impl crate::login::Site for ValidatorSite {
    fn validator(&self) -> &dyn crate::login::SignIn {
        &self.engine.validators[self.index]
    }
    fn login(&self) -> Option<&crate::login::CompiledLogin> {
        self.engine.validators[self.index].login.as_ref()
    }
    fn realm(&self) -> &str {
        &self.engine.realm
    }
    fn revoker(&self) -> &Revoker {
        &self.engine.revoker
    }
    fn sessions(&self) -> &dyn crate::session::SessionStore {
        &*self.engine.sessions
    }
}

impl Registry {
    /// Starts a registry.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder {
            realm: "jwtgate".into(),
            validators: Vec::new(),
            session_cookie: None,
            directory: Arc::new(InMemoryDirectory::new()),
            users: None,
            token_cache: crate::token_cache::DEFAULT_CAPACITY,
            store: None,
            store_options: StoreOptions::new(),
            sessions: None,
            #[cfg(feature = "remote-keys")]
            http: crate::remote::HttpClient::new(),
        }
    }

    /// Revokes sessions, tokens and subjects in the registry's store (see
    /// [`revocation`](crate::revocation)).
    pub fn revoker(&self) -> Revoker {
        self.engine.revoker.clone()
    }

    /// The revocation mirror's state now (entries, staleness), as `/healthz` shows it.
    pub fn revocation_state(&self) -> crate::revocation::MirrorState {
        let check = &self.engine.revocation;
        check.mirror.state(check.staleness_secs)
    }

    /// The names of every validator, in declaration order.
    pub fn validator_names(&self) -> impl Iterator<Item = &str> {
        self.engine.validators.iter().map(|v| &*v.name)
    }

    /// The profile page of validator `name` (`profile_url`), where the app serves a profile
    /// form such as `jwtgate_sqlx::profile::router`.
    pub fn profile_url(&self, name: &str) -> Option<&str> {
        let i = self.engine.position(name)?;
        self.engine.validators[i].profile_url.as_deref()
    }

    /// The realm of the challenges.
    pub fn realm(&self) -> &str {
        &self.engine.realm
    }

    /// The engine, for tests and fuzz targets that look inside it.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The chain a mode starts; an unknown or ambiguous validator is an error.
    pub(crate) fn chain(&self, mode: &AuthMode) -> Result<Chain, Error> {
        let start = self.index_of(mode)?;
        Ok(Chain {
            start,
            public: mode.is_public(),
        })
    }

    fn index_of(&self, mode: &AuthMode) -> Result<usize, Error> {
        let validators = &self.engine.validators;
        match mode.validator() {
            Some(name) => self.engine.position(name).ok_or_else(|| {
                let near = crate::suggest::did_you_mean(name, self.validator_names());
                let hint = near.map_or(String::new(), |near| {
                    let prefix = if mode.is_public() {
                        "public_or_jwt"
                    } else {
                        "jwt"
                    };
                    format!("; did you mean `{prefix}_{near}`?")
                });
                Error::new(
                    ErrorKind::UnknownValidator,
                    format!("auth mode {mode}: no validator named {name:?}{hint}"),
                )
            }),
            None if validators.len() == 1 => Ok(0),
            None => Err(Error::new(
                ErrorKind::AmbiguousValidator,
                format!(
                    "auth mode {mode} needs exactly one validator, there are {}; name one (`{mode}_<name>`)",
                    validators.len()
                ),
            )),
        }
    }

    /// A layer for an auth mode written as Odoo writes it: `jwt_<name>` or `public_or_jwt_<name>`.
    /// An unknown validator is an error now, not per request.
    pub fn layer(&self, mode: &str) -> Result<JwtAuthLayer, Error> {
        self.layer_for(&mode.parse()?)
    }

    /// A layer for a parsed [`AuthMode`].
    pub fn layer_for(&self, mode: &AuthMode) -> Result<JwtAuthLayer, Error> {
        let chain = self.chain(mode)?;
        Ok(JwtAuthLayer::new(
            self.engine.clone(),
            chain,
            mode.to_string(),
        ))
    }

    /// `jwt_<name>`: a token is required.
    pub fn jwt(&self, validator: &str) -> Result<JwtAuthLayer, Error> {
        self.layer_for(&AuthMode::Jwt(Some(validator.to_owned())))
    }

    /// `public_or_jwt_<name>`: anonymous requests pass, sent credentials must be valid.
    pub fn public_or_jwt(&self, validator: &str) -> Result<JwtAuthLayer, Error> {
        self.layer_for(&AuthMode::PublicOrJwt(Some(validator.to_owned())))
    }

    /// Checks `token` against every validator on its own (no `next` chaining), saying for each
    /// whether it passes and why not, through every stage a request goes through (claims,
    /// signature, user and partner). For diagnostics (`jwtgate inspect`), not for requests.
    pub async fn inspect(&self, token: &str) -> Vec<Verdict> {
        self.engine.inspect(token).await
    }

    /// The login, callback and logout routes of `validator` (see
    /// [`LoginService`](crate::login::LoginService)); an error when it has no login.
    #[cfg(feature = "login")]
    pub fn login_service(&self, validator: &str) -> Result<crate::login::LoginService, Error> {
        let index = self.engine.position(validator).ok_or_else(|| {
            Error::new(
                ErrorKind::UnknownValidator,
                format!("no validator named {validator:?}"),
            )
        })?;
        if self.engine.validators[index].login.is_none() {
            return Err(
                Error::new(ErrorKind::InvalidSetting, "this validator has no login")
                    .in_validator(validator)
                    .in_field("login"),
            );
        }
        Ok(crate::login::LoginService::new(Arc::new(ValidatorSite {
            engine: self.engine.clone(),
            index,
        })))
    }

    /// A tower service answering health checks: 200 when every remote key set can be
    /// served, 503 with the reasons otherwise (see [`HealthService`](crate::health::HealthService)).
    pub fn health_service(&self) -> crate::health::HealthService {
        crate::health::HealthService::new(self.engine.clone())
    }

    /// The state of every remote key cache (for a health endpoint).
    #[cfg(feature = "remote-keys")]
    pub fn key_caches(&self) -> Vec<KeyCacheState> {
        let per_issuer = self.engine.caches.per_issuer_caches();
        self.engine
            .caches
            .iter()
            .chain(per_issuer.iter())
            .map(|c| c.state())
            .collect()
    }

    /// Fetches every remote key set now (and runs OIDC discovery), failing on the first error,
    /// so an app can refuse to start without keys instead of answering 503.
    #[cfg(feature = "remote-keys")]
    pub async fn prefetch(&self) -> Result<(), Error> {
        // Per-issuer caches: those of the issuers configured exactly (no token has named
        // another yet).
        let per_issuer = self.engine.caches.per_issuer_caches();
        for cache in self.engine.caches.iter().chain(per_issuer.iter()) {
            cache.fetch_now().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Algorithm, CookieMode, KeySource, Preset, User};

    fn v(name: &str) -> Validator {
        Validator::new(name)
            .issuer("i")
            .audience("a")
            .algorithm(Algorithm::HS256)
            .key(KeySource::secret("thesecret-of-at-least-32-bytes!!"))
            .user(User::fixed(1))
    }

    #[test]
    fn a_tail_into_a_loop_reports_the_loop() {
        let err = Registry::builder()
            .validator(v("a").next("b"))
            .validator(v("b").next("c"))
            .validator(v("c").next("b"))
            .build()
            .unwrap_err();
        assert_eq!(
            err.message(),
            "Validators mustn't make a closed chain: c -> b -> c."
        );
        assert_eq!((err.validator(), err.field()), (Some("c"), Some("next")));
    }

    #[test]
    fn unknown_next_and_duplicate_names() {
        let err = Registry::builder()
            .validator(v("a"))
            .validator(v("a"))
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::DuplicateName);
        let err = Registry::builder()
            .validator(v("a").next("zz"))
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "validator \"a\": key `next`: no validator named \"zz\""
        );
    }

    #[test]
    fn cookie_mode_never_takes_a_provider_cookie() {
        let cf = Validator::new("cf").preset(Preset::cloudflare_access("acme", "aud"));
        let err = Registry::builder()
            .validator(cf)
            .validator(
                v("b").cookie(
                    CookieMode::new("CF_Authorization")
                        .host_prefix(false)
                        .secret(vec![1; 32]),
                ),
            )
            .build()
            .unwrap_err();
        assert_eq!(
            (err.validator(), err.field()),
            (Some("b"), Some("cookie.name"))
        );
        assert!(
            err.message().contains("token source of validator \"cf\""),
            "{err}"
        );
        let err = Registry::builder()
            .session_cookie("sid")
            .validator(
                v("b").cookie(
                    CookieMode::new("sid")
                        .host_prefix(false)
                        .secret(vec![1; 32]),
                ),
            )
            .build()
            .unwrap_err();
        assert_eq!(err.field(), Some("cookie.name"));
        // With the __Host- prefix (the default for a Secure cookie on /), the name is
        // another: nothing is overwritten.
        let registry = Registry::builder()
            .session_cookie("sid")
            .validator(v("b").cookie(CookieMode::new("sid").secret(vec![1; 32])))
            .build();
        assert!(registry.is_ok());
        let err = CookieMode::new("c")
            .path("/app")
            .host_prefix(true)
            .secret(vec![1; 32])
            .compile("b", &crate::session::SessionOptions::new())
            .err()
            .unwrap();
        assert_eq!(
            (err.field(), err.message()),
            (
                Some("cookie.host_prefix"),
                "the __Host- prefix needs secure = true and path = \"/\""
            )
        );
    }

    #[test]
    fn realm_must_be_quotable() {
        let err = Registry::builder().realm("a\"b").build().unwrap_err();
        assert_eq!(err.field(), Some("realm"));
        assert_eq!(err.kind(), &ErrorKind::InvalidSetting);
        assert!(Registry::builder().realm("my app").build().is_ok());
    }
}
