//! Named validators: one issuer, its audiences, one pinned algorithm and one key source each
//! (one Odoo `auth.jwt.validator` record).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::algorithm::Algorithm;
use crate::claims::{ClaimError, ClaimRules};
use crate::cookie::{CookieConfig, CookieRule};
use crate::error::{Error, ErrorKind};
use crate::identity::UserId;
use crate::keys::{KeySet, Selection, VerifyingKey, parse_jwks};
#[cfg(feature = "remote-keys")]
use crate::remote::{RemoteKeyOptions, RemoteKeys};
use crate::secret::Secret;
use crate::strategy::{UserResolver, UserStrategy};
use crate::token::{self, TokenError, UnverifiedToken};

/// Where a validator's key comes from.
#[derive(Clone)]
pub(crate) enum KeySource {
    Secret(Secret),
    PublicKeyPem(Vec<u8>),
    PublicKeyFile(PathBuf),
    Jwks(Vec<u8>),
    JwksFile(PathBuf),
    #[cfg(feature = "remote-keys")]
    JwksUrl(String),
    #[cfg(feature = "remote-keys")]
    OidcIssuer(String),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(s) => s.fmt(f),
            Self::PublicKeyPem(_) => f.write_str("PublicKeyPem(..)"),
            Self::PublicKeyFile(p) => f.debug_tuple("PublicKeyFile").field(p).finish(),
            Self::Jwks(_) => f.write_str("Jwks(..)"),
            Self::JwksFile(p) => f.debug_tuple("JwksFile").field(p).finish(),
            #[cfg(feature = "remote-keys")]
            Self::JwksUrl(u) => f.debug_tuple("JwksUrl").field(u).finish(),
            #[cfg(feature = "remote-keys")]
            Self::OidcIssuer(u) => f.debug_tuple("OidcIssuer").field(u).finish(),
        }
    }
}

/// The configuration of one named validator; a registry compiles it.
///
/// ```
/// use jwtgate::{Algorithm, Validator};
///
/// let v = Validator::new("demo")
///     .issuer("https://issuer.example")
///     .audience("my-api")
///     .algorithm(Algorithm::HS256)
///     .secret("a-secret-of-at-least-32-bytes!!!")
///     .static_user(42)
///     .partner_by_email(false);
/// assert_eq!(v.name(), "demo");
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct Validator {
    pub(crate) name: String,
    pub(crate) issuer: Option<String>,
    pub(crate) audiences: Vec<String>,
    pub(crate) algorithm: Option<Algorithm>,
    pub(crate) key: Option<KeySource>,
    pub(crate) leeway: Duration,
    pub(crate) user: Option<UserStrategy>,
    pub(crate) partner: Option<bool>,
    pub(crate) next: Option<String>,
    pub(crate) cookie: Option<CookieConfig>,
    #[cfg(feature = "remote-keys")]
    pub(crate) remote: RemoteKeyOptions,
}

impl Validator {
    /// A validator named `name` (`[A-Za-z_][A-Za-z0-9_]*`, used in `jwt_<name>` modes).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            issuer: None,
            audiences: Vec::new(),
            algorithm: None,
            key: None,
            leeway: Duration::ZERO,
            user: None,
            partner: None,
            next: None,
            cookie: None,
            #[cfg(feature = "remote-keys")]
            remote: RemoteKeyOptions::default(),
        }
    }

    /// The validator's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The exact `iss` a token must carry (required).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Adds an accepted audience; a token passes when any accepted audience is in its `aud`.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Adds several accepted audiences.
    pub fn audiences<I: IntoIterator<Item = S>, S: Into<String>>(mut self, audiences: I) -> Self {
        self.audiences.extend(audiences.into_iter().map(Into::into));
        self
    }

    /// The one algorithm tokens must be signed with (required).
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = Some(algorithm);
        self
    }

    /// An HMAC secret, at least as long as the hash (32/48/64 bytes).
    pub fn secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.key = Some(KeySource::Secret(Secret::Inline(secret.into())));
        self
    }

    /// An HMAC secret read from an environment variable when the registry is built.
    pub fn secret_env(mut self, var: impl Into<String>) -> Self {
        self.key = Some(KeySource::Secret(Secret::Env(var.into())));
        self
    }

    /// A PEM public key (SPKI, PKCS#1 RSA, or certificate).
    pub fn public_key_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.key = Some(KeySource::PublicKeyPem(pem.into()));
        self
    }

    /// A PEM public key read from a file when the registry is built.
    pub fn public_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key = Some(KeySource::PublicKeyFile(path.into()));
        self
    }

    /// A JWK set given as JSON; tokens select a key by `kid`.
    pub fn jwks(mut self, json: impl Into<Vec<u8>>) -> Self {
        self.key = Some(KeySource::Jwks(json.into()));
        self
    }

    /// A JWK set read from a file when the registry is built.
    pub fn jwks_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key = Some(KeySource::JwksFile(path.into()));
        self
    }

    /// A JWK set fetched from a URL (HTTPS, or HTTP on a loopback address) and cached.
    #[cfg(feature = "remote-keys")]
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.key = Some(KeySource::JwksUrl(url.into()));
        self
    }

    /// Finds the JWK set through OIDC discovery (`<issuer>/.well-known/openid-configuration`),
    /// whose `issuer` must equal this one exactly.
    #[cfg(feature = "remote-keys")]
    pub fn oidc_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.key = Some(KeySource::OidcIssuer(issuer.into()));
        self
    }

    /// How fetched keys are cached and fetched.
    #[cfg(feature = "remote-keys")]
    pub fn remote_options(mut self, options: RemoteKeyOptions) -> Self {
        self.remote = options;
        self
    }

    /// Clock skew allowed on `exp`, `nbf` and `iat` (default zero: `exp == now` is expired).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// How the user is chosen (required).
    pub fn user(mut self, strategy: UserStrategy) -> Self {
        self.user = Some(strategy);
        self
    }

    /// Every request acts as this user.
    pub fn static_user(self, id: impl Into<UserId>) -> Self {
        self.user(UserStrategy::Static(id.into()))
    }

    /// The user is the value of `claim` (such as `sub`).
    pub fn user_from_claim(self, claim: impl Into<String>) -> Self {
        self.user(UserStrategy::Claim(claim.into()))
    }

    /// The user is what `resolver` returns (lookup or automatic registration).
    pub fn user_resolver(self, resolver: impl UserResolver) -> Self {
        self.user(UserStrategy::Resolver(Arc::new(resolver)))
    }

    /// Looks the `email` claim up in the registry's partner directory; with `required`, a token
    /// that matches no single partner is refused.
    pub fn partner_by_email(mut self, required: bool) -> Self {
        self.partner = Some(required);
        self
    }

    /// The validator to try when this one refuses the token.
    pub fn next(mut self, name: impl Into<String>) -> Self {
        self.next = Some(name.into());
        self
    }

    /// Turns on cookie mode.
    pub fn cookie(mut self, cookie: CookieConfig) -> Self {
        self.cookie = Some(cookie);
        self
    }
}

/// Checks `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Where a compiled validator gets its keys.
pub(crate) enum KeyStore {
    Static(Arc<KeySet>),
    #[cfg(feature = "remote-keys")]
    Remote(Arc<RemoteKeys>),
}

/// Why one validator refused a token (logged; the client gets only the description).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No credentials for this validator.
    Missing,
    Token(TokenError),
    Claim(ClaimError),
    AlgorithmMismatch,
    UnknownKid,
    NoFittingKey,
    BadSignature,
    KeysUnavailable {
        retry_after: u64,
    },
}

impl Failure {
    pub(crate) const fn description(self) -> &'static str {
        match self {
            Self::Missing => "no credentials",
            Self::Token(e) => e.description(),
            Self::Claim(e) => e.description(),
            Self::AlgorithmMismatch => "token algorithm not accepted",
            Self::UnknownKid => "token key id is unknown",
            Self::NoFittingKey => "no key fits the token",
            Self::BadSignature => "token signature is invalid",
            Self::KeysUnavailable { .. } => "signing keys are temporarily unavailable",
        }
    }
}

impl From<TokenError> for Failure {
    fn from(e: TokenError) -> Self {
        Self::Token(e)
    }
}

impl From<ClaimError> for Failure {
    fn from(e: ClaimError) -> Self {
        Self::Claim(e)
    }
}

/// A validator ready to check tokens.
pub(crate) struct CompiledValidator {
    pub(crate) name: Arc<str>,
    pub(crate) algorithm: Algorithm,
    pub(crate) rules: ClaimRules,
    pub(crate) keys: KeyStore,
    pub(crate) user: UserStrategy,
    pub(crate) partner_required: Option<bool>,
    pub(crate) next: Option<usize>,
    pub(crate) cookie: Option<CookieRule>,
}

impl CompiledValidator {
    /// Verifies a parsed bearer token: pinned algorithm, key, signature, then claims.
    pub(crate) async fn verify(
        &self,
        token: &UnverifiedToken<'_>,
        now: u64,
    ) -> Result<(), Failure> {
        if token.alg != self.algorithm.as_str() {
            return Err(Failure::AlgorithmMismatch);
        }
        let kid = token.kid.as_deref();
        let keys = match &self.keys {
            KeyStore::Static(set) => Arc::clone(set),
            #[cfg(feature = "remote-keys")]
            KeyStore::Remote(remote) => remote
                .keys_for(kid)
                .await
                .map_err(|retry_after| Failure::KeysUnavailable { retry_after })?,
        };
        let mut candidates = keys.select(kid, self.algorithm).map_err(|e| match e {
            Selection::UnknownKid => Failure::UnknownKid,
            Selection::NoFittingKey => Failure::NoFittingKey,
        })?;
        let input = token.signing_input.as_bytes();
        if !candidates.any(|k| k.verify(self.algorithm, input, &token.signature)) {
            return Err(Failure::BadSignature);
        }
        self.rules.check(&token.claims, now)?;
        Ok(())
    }

    /// Verifies this validator's cookie: HS256 with the server secret, same claim rules.
    pub(crate) fn verify_cookie(
        &self,
        cookie: &CookieRule,
        value: &str,
        now: u64,
    ) -> Result<Map<String, Value>, Failure> {
        let token = token::parse(value)?;
        if token.alg != Algorithm::HS256.as_str() {
            return Err(Failure::AlgorithmMismatch);
        }
        if !cookie.verify.verify(
            Algorithm::HS256,
            token.signing_input.as_bytes(),
            &token.signature,
        ) {
            return Err(Failure::BadSignature);
        }
        self.rules.check(&token.claims, now)?;
        Ok(token.claims)
    }
}

/// Reads a file for a validator's key, naming the file in the error.
fn read_key_file(path: &PathBuf) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| {
        Error::new(
            ErrorKind::InvalidKey,
            format!("cannot read {}: {e}", path.display()),
        )
    })
}

/// The remote key caches built so far, shared by validators of the same source.
#[cfg(feature = "remote-keys")]
pub(crate) type RemoteCaches = Vec<Arc<RemoteKeys>>;
/// Without remote keys there is nothing to share.
#[cfg(not(feature = "remote-keys"))]
pub(crate) type RemoteCaches = ();

impl Validator {
    /// Checks every setting, parses static keys and finds (or adds) the remote key cache.
    /// `next` is linked by the registry. Errors are prefixed by the caller.
    pub(crate) fn compile(&self, caches: &mut RemoteCaches) -> Result<CompiledValidator, Error> {
        let missing =
            |what: &str| Error::new(ErrorKind::InvalidSetting, format!("{what} is required"));
        let issuer = self
            .issuer
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or_else(|| missing("issuer"))?;
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            return Err(missing("a non-empty audience"));
        }
        let algorithm = self.algorithm.ok_or_else(|| missing("algorithm"))?;
        let user = self.user.clone().ok_or_else(|| {
            missing("user (static id, claim or resolver; there is no default user)")
        })?;
        if let UserStrategy::Claim(c) = &user
            && c.is_empty()
        {
            return Err(missing("user claim name"));
        }
        let key_err = |e: String| Error::new(ErrorKind::InvalidKey, e);
        let keys = match self
            .key
            .as_ref()
            .ok_or_else(|| missing("a key (secret, public key, JWK set or URL)"))?
        {
            KeySource::Secret(secret) => {
                let secret = secret.resolve()?;
                let key = VerifyingKey::from_secret(algorithm, &secret).map_err(|e| {
                    let kind = if algorithm.is_hmac() {
                        ErrorKind::WeakSecret
                    } else {
                        ErrorKind::InvalidKey
                    };
                    Error::new(kind, e)
                })?;
                KeySet::single(key)
            }
            KeySource::PublicKeyPem(pem) => {
                KeySet::single(VerifyingKey::from_pem(algorithm, pem).map_err(key_err)?)
            }
            KeySource::PublicKeyFile(path) => {
                let pem = read_key_file(path)?;
                let key = VerifyingKey::from_pem(algorithm, &pem)
                    .map_err(|e| key_err(format!("{}: {e}", path.display())))?;
                KeySet::single(key)
            }
            KeySource::Jwks(json) => self.static_jwks(json, algorithm)?,
            KeySource::JwksFile(path) => self
                .static_jwks(&read_key_file(path)?, algorithm)
                .map_err(|e| e.context(path.display()))?,
            #[cfg(feature = "remote-keys")]
            KeySource::JwksUrl(_) | KeySource::OidcIssuer(_) => {
                if algorithm.is_hmac() {
                    return Err(key_err(format!(
                        "{algorithm} needs a shared secret; remote key sets never hold secrets"
                    )));
                }
                let cache = crate::remote::shared_cache(caches, self, algorithm)?;
                return self.finish(issuer, algorithm, user, KeyStore::Remote(cache));
            }
        };
        #[cfg(not(feature = "remote-keys"))]
        let () = caches;
        self.finish(issuer, algorithm, user, KeyStore::Static(Arc::new(keys)))
    }

    fn finish(
        &self,
        issuer: String,
        algorithm: Algorithm,
        user: UserStrategy,
        keys: KeyStore,
    ) -> Result<CompiledValidator, Error> {
        Ok(CompiledValidator {
            name: Arc::from(self.name.as_str()),
            algorithm,
            rules: ClaimRules {
                issuer,
                audiences: self.audiences.clone(),
                leeway: self.leeway.as_secs(),
            },
            keys,
            user,
            partner_required: self.partner,
            next: None,
            cookie: self.cookie.clone().map(CookieConfig::compile).transpose()?,
        })
    }

    fn static_jwks(&self, json: &[u8], algorithm: Algorithm) -> Result<KeySet, Error> {
        let (set, skipped) = parse_jwks(json, &[algorithm], true)
            .map_err(|e| Error::new(ErrorKind::InvalidKey, e))?;
        for s in skipped {
            tracing::warn!(validator = %self.name, kid = ?s.kid, reason = %s.reason, "skipped a JWK");
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_identifiers() {
        for ok in ["validator_1", "_x", "demo", "A9"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "not an identifier", "1abc", "a-b", "é", "a.b"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn required_settings_are_named() {
        let base = Validator::new("v")
            .issuer("i")
            .audience("a")
            .algorithm(Algorithm::HS256);
        let err = base
            .clone()
            .compile(&mut RemoteCaches::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("user"), "{err}");
        let err = base
            .clone()
            .static_user(1)
            .compile(&mut RemoteCaches::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("a key"), "{err}");
        let err = Validator::new("v")
            .compile(&mut RemoteCaches::default())
            .err()
            .unwrap();
        assert_eq!(err.to_string(), "issuer is required");
        let err = base
            .clone()
            .static_user(1)
            .secret("short")
            .compile(&mut RemoteCaches::default())
            .err()
            .unwrap();
        assert_eq!(err.kind(), &ErrorKind::WeakSecret);
    }

    #[test]
    fn debug_output_has_no_secret() {
        let v = Validator::new("v").secret("thesecret-of-at-least-32-bytes!!");
        assert!(!format!("{v:?}").contains("thesecret"));
    }
}
