//! Cookie mode (auth_jwt 16.0): after a successful request, an HttpOnly cookie holding the
//! token's claims re-signed with a server secret, read back when a request has no
//! `Authorization` header.
//!
//! Unlike auth_jwt, the cookie never outlives the original token's `exp`, keeps the original
//! `aud` (so multi-audience validators work) and is `SameSite=Lax`.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use jsonwebtoken::EncodingKey;
use serde_json::{Map, Value};

use crate::algorithm::Algorithm;
use crate::error::{Error, ErrorKind};
use crate::keys::{VerifyingKey, sign_hs256};
use crate::secret::Secret;

/// Settings of a validator's cookie mode.
#[derive(Clone)]
pub struct CookieConfig {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) max_age: Duration,
    pub(crate) secure: bool,
    pub(crate) secret: Option<Secret>,
}

impl fmt::Debug for CookieConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieConfig")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("max_age", &self.max_age)
            .field("secure", &self.secure)
            .field("secret", &self.secret)
            .finish()
    }
}

impl CookieConfig {
    /// A cookie named `name`, path `/`, max-age one year (capped by the token's `exp`), `Secure`.
    /// A secret must be set with [`secret`](Self::secret) or [`secret_env`](Self::secret_env).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            path: "/".into(),
            max_age: Duration::from_secs(86_400 * 365),
            secure: true,
            secret: None,
        }
    }

    /// The cookie's `Path`.
    #[must_use]
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// The longest the cookie may live; it never outlives the token it came from.
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Whether to send `Secure` (only turn off for development over plain HTTP).
    #[must_use]
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// The server secret that signs cookies (HS256, at least 32 bytes).
    #[must_use]
    pub fn secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.secret = Some(Secret::Inline(secret.into()));
        self
    }

    /// Reads the server secret from an environment variable when the registry is built.
    #[must_use]
    pub fn secret_env(mut self, var: impl Into<String>) -> Self {
        self.secret = Some(Secret::Env(var.into()));
        self
    }

    pub(crate) fn compile(self) -> Result<CookieRule, Error> {
        let bad = |what: &str| Error::new(ErrorKind::InvalidSetting, what.to_owned());
        let token_char = |c: char| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(c);
        if self.name.is_empty() || !self.name.chars().all(token_char) {
            return Err(bad("cookie name must be a non-empty HTTP token"));
        }
        if !self.path.starts_with('/')
            || self.path.chars().any(|c| c == ';' || !c.is_ascii_graphic())
        {
            return Err(bad(
                "cookie path must start with / and contain no ';', space or control character",
            ));
        }
        if self.max_age.is_zero() {
            return Err(bad("cookie max_age must be positive"));
        }
        let secret = self
            .secret
            .ok_or_else(|| bad("cookie mode needs a secret (secret or secret_env)"))?
            .resolve()?;
        let verify = VerifyingKey::from_secret(Algorithm::HS256, &secret)
            .map_err(|e| Error::new(ErrorKind::WeakSecret, format!("cookie secret: {e}")))?;
        Ok(CookieRule {
            name: self.name,
            path: self.path,
            max_age: self.max_age.as_secs().max(1),
            secure: self.secure,
            sign: EncodingKey::from_secret(&secret),
            verify,
        })
    }
}

/// A compiled cookie mode.
pub(crate) struct CookieRule {
    pub(crate) name: String,
    path: String,
    max_age: u64,
    secure: bool,
    sign: EncodingKey,
    pub(crate) verify: VerifyingKey,
}

impl CookieRule {
    /// The `Set-Cookie` value for accepted `claims` at time `now`, or `None` when the token
    /// is about to expire.
    pub(crate) fn issue(&self, claims: &Map<String, Value>, now: u64) -> Option<HeaderValue> {
        let token_exp = claims.get("exp")?.as_f64()?.floor();
        let exp = (token_exp.min(u64::MAX as f64) as u64).min(now.saturating_add(self.max_age));
        if exp <= now {
            return None;
        }
        let mut claims = claims.clone();
        claims.insert("exp".into(), Value::from(exp));
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string());
        let input = format!("{header}.{payload}");
        let signature = URL_SAFE_NO_PAD.encode(sign_hs256(&self.sign, input.as_bytes())?);
        let secure = if self.secure { "; Secure" } else { "" };
        let cookie = format!(
            "{}={input}.{signature}; Path={}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
            self.name,
            self.path,
            exp - now
        );
        HeaderValue::try_from(cookie).ok()
    }
}

/// The value of the first cookie named `name` in the request's `Cookie` headers.
pub(crate) fn find<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cookies_across_headers() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1; b=2"));
        h.append(COOKIE, HeaderValue::from_static("c=\"3\""));
        assert_eq!(find(&h, "b"), Some("2"));
        assert_eq!(find(&h, "c"), Some("3"));
        assert_eq!(find(&h, "d"), None);
    }

    #[test]
    fn validates_settings() {
        let ok = CookieConfig::new("demo_auth").secret(vec![1; 32]);
        assert!(ok.clone().compile().is_ok());
        assert!(ok.clone().path("no-slash").compile().is_err());
        assert!(
            CookieConfig::new("bad name")
                .secret(vec![1; 32])
                .compile()
                .is_err()
        );
        let err = CookieConfig::new("x")
            .secret(vec![1; 8])
            .compile()
            .err()
            .unwrap();
        assert_eq!(err.kind(), &ErrorKind::WeakSecret);
        let err = CookieConfig::new("x").compile().err().unwrap();
        assert!(err.to_string().contains("needs a secret"));
        assert!(!format!("{ok:?}").contains("[1, 1"));
    }

    #[test]
    fn cookie_never_outlives_the_token() {
        let rule = CookieConfig::new("c")
            .secret(vec![1; 32])
            .path("/app")
            .secure(false)
            .compile()
            .unwrap();
        let mut claims = Map::new();
        claims.insert("exp".into(), Value::from(1_000_100u64));
        let v = rule.issue(&claims, 1_000_000).unwrap();
        let v = v.to_str().unwrap();
        assert!(v.starts_with("c=ey"), "{v}");
        assert!(
            v.ends_with("; Path=/app; Max-Age=100; HttpOnly; SameSite=Lax"),
            "{v}"
        );
        assert!(rule.issue(&claims, 1_000_100).is_none());
    }
}
