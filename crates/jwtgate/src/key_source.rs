//! Where a validator's keys come from: exactly one [`KeySource`] per validator, a typed value in
//! the manner of tower-http's `AllowOrigin`.

use std::fmt;
use std::path::PathBuf;

use crate::secret::Secret;

/// Where a validator's verification key(s) come from. A validator has exactly one; setting
/// another with [`Validator::key`](crate::Validator::key) replaces it.
///
/// ```
/// use jwtgate::{Algorithm, KeySource, Validator};
///
/// let v = Validator::new("idp")
///     .algorithm(Algorithm::RS256)
///     .key(KeySource::jwks_url("https://idp.example.com/certs"));
/// # let _ = v;
/// ```
#[derive(Clone)]
pub struct KeySource(pub(crate) Repr);

#[derive(Clone)]
pub(crate) enum Repr {
    Secret(Secret),
    PublicKeyPem(Vec<u8>),
    PublicKeyFile(PathBuf),
    Jwks(Vec<u8>),
    JwksFile(PathBuf),
    #[cfg_attr(not(feature = "remote-keys"), allow(dead_code))]
    Remote(RemoteSource),
}

/// A key set fetched over HTTPS; the remote key caches take this, never a validator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RemoteSource {
    /// A JWK set URL.
    JwksUrl(String),
    /// An OIDC issuer, whose discovery document names the JWK set URL.
    OidcIssuer(String),
    /// Each accepted issuer's own discovery document (a validator of several issuers).
    #[cfg_attr(not(feature = "remote-keys"), allow(dead_code))]
    EachIssuer,
}

impl RemoteSource {
    /// The configured URL or issuer, which names the shared cache.
    #[cfg_attr(not(feature = "remote-keys"), allow(dead_code))]
    pub(crate) fn label(&self) -> &str {
        match self {
            Self::JwksUrl(u) | Self::OidcIssuer(u) => u,
            Self::EachIssuer => "each issuer's discovery",
        }
    }
}

impl KeySource {
    /// An HMAC secret, at least as long as the hash (32/48/64 bytes for HS256/384/512).
    pub fn secret(secret: impl Into<Vec<u8>>) -> Self {
        Self(Repr::Secret(Secret::Inline(secret.into())))
    }

    /// An HMAC secret read from an environment variable when the registry is built.
    pub fn secret_env(var: impl Into<String>) -> Self {
        Self(Repr::Secret(Secret::Env(var.into())))
    }

    /// A PEM public key (SPKI, PKCS#1 RSA, or certificate).
    pub fn public_key_pem(pem: impl Into<Vec<u8>>) -> Self {
        Self(Repr::PublicKeyPem(pem.into()))
    }

    /// A PEM public key read from a file when the registry is built.
    pub fn public_key_file(path: impl Into<PathBuf>) -> Self {
        Self(Repr::PublicKeyFile(path.into()))
    }

    /// A JWK set given as JSON; tokens select a key by `kid`.
    pub fn jwks(json: impl Into<Vec<u8>>) -> Self {
        Self(Repr::Jwks(json.into()))
    }

    /// A JWK set read from a file when the registry is built.
    pub fn jwks_file(path: impl Into<PathBuf>) -> Self {
        Self(Repr::JwksFile(path.into()))
    }

    /// A JWK set fetched from a URL (HTTPS, or HTTP on a loopback address) and cached.
    #[cfg(feature = "remote-keys")]
    pub fn jwks_url(url: impl Into<String>) -> Self {
        Self(Repr::Remote(RemoteSource::JwksUrl(url.into())))
    }

    /// The JWK set found through OIDC discovery (`<issuer>/.well-known/openid-configuration`),
    /// whose `issuer` must equal this one exactly.
    #[cfg(feature = "remote-keys")]
    pub fn oidc_issuer(issuer: impl Into<String>) -> Self {
        Self(Repr::Remote(RemoteSource::OidcIssuer(issuer.into())))
    }

    /// The JWK set of each issuer the validator accepts, found through that issuer's OIDC
    /// discovery (`<iss>/.well-known/openid-configuration`) and cached per issuer: for a
    /// validator of several issuers ([`Validator::issuers`](crate::Validator::issuers)). A
    /// token's `iss` is matched against the accepted issuers before anything is fetched.
    #[cfg(feature = "remote-keys")]
    pub fn oidc_discovery() -> Self {
        Self(Repr::Remote(RemoteSource::EachIssuer))
    }

    /// The config key of this source (`secret`, `jwks_url`, ...), which errors name.
    pub(crate) fn field(&self) -> &'static str {
        match &self.0 {
            Repr::Secret(s) => s.field("secret", "secret_env"),
            Repr::PublicKeyPem(_) => "public_key_pem",
            Repr::PublicKeyFile(_) => "public_key_file",
            Repr::Jwks(_) => "jwks",
            Repr::JwksFile(_) => "jwks_file",
            Repr::Remote(RemoteSource::JwksUrl(_)) => "jwks_url",
            Repr::Remote(RemoteSource::OidcIssuer(_)) => "oidc_issuer",
            Repr::Remote(RemoteSource::EachIssuer) => "oidc_discovery",
        }
    }
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Secret(s) => s.fmt(f),
            Repr::PublicKeyPem(_) => f.write_str("PublicKeyPem(..)"),
            Repr::PublicKeyFile(p) => f.debug_tuple("PublicKeyFile").field(p).finish(),
            Repr::Jwks(_) => f.write_str("Jwks(..)"),
            Repr::JwksFile(p) => f.debug_tuple("JwksFile").field(p).finish(),
            Repr::Remote(RemoteSource::JwksUrl(u)) => f.debug_tuple("JwksUrl").field(u).finish(),
            Repr::Remote(RemoteSource::OidcIssuer(u)) => {
                f.debug_tuple("OidcIssuer").field(u).finish()
            }
            Repr::Remote(RemoteSource::EachIssuer) => f.write_str("OidcDiscovery"),
        }
    }
}
