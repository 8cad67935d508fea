//! Cookie mode (auth_jwt 16.0): after a successful request, an HttpOnly cookie holding the
//! token's claims re-signed with a server secret, read back when a request carries none of the
//! validator's token sources.
//!
//! Unlike auth_jwt, the cookie never outlives the original token's `exp`, keeps the original
//! `aud` (so multi-audience validators work), is `SameSite=Lax`, and is bound to the validator
//! that issued it: each validator signs with its own key, derived from the cookie secret and its
//! name, so a cookie renamed to another validator's cookie never verifies there, even when both
//! share the secret.
//!
//! Each session has a random id of its own, in the cookie's signed JWS header (`"session"`):
//! the claims stay the token's, and a sign-out revokes that id (see `revocation`). A session
//! keeps its id when it refreshes itself; a sign-in starts a new one.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderValue;
use jsonwebtoken::EncodingKey;

use crate::credentials::is_token_char;
use crate::error::{Error, ErrorKind};
use crate::failure::Failure;
use crate::jws::algorithm::Algorithm;
use crate::jws::claim_set::ClaimSet;
use crate::jws::claims::{ClaimError, ClaimRules};
use crate::jws::key::VerifyingKey;
use crate::jws::token;
use crate::secret::Secret;
use crate::session::SessionOptions;
use crate::session::record::Sealer;
use crate::set_cookie::SetCookie;

/// Settings of a validator's cookie mode.
#[derive(Clone)]
#[must_use]
pub struct CookieMode {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) max_age: Duration,
    pub(crate) secure: bool,
    pub(crate) secret: Option<Secret>,
    pub(crate) from_bearer: bool,
    /// `None`: the `__Host-` prefix whenever it can be had (`Secure`, `Path=/`).
    pub(crate) host_prefix: Option<bool>,
}

impl fmt::Debug for CookieMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieMode")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("max_age", &self.max_age)
            .field("secure", &self.secure)
            .field("secret", &self.secret)
            .field("from_bearer", &self.from_bearer)
            .field("host_prefix", &self.host_prefix)
            .finish()
    }
}

impl CookieMode {
    /// A cookie named `name`, path `/`, max-age one year (capped by the token's `exp`), `Secure`.
    /// A secret must be set with [`secret`](Self::secret) or [`secret_env`](Self::secret_env).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            path: "/".into(),
            max_age: Duration::from_secs(86_400 * 365),
            secure: true,
            secret: None,
            from_bearer: true,
            host_prefix: None,
        }
    }

    /// Names the cookie `__Host-<name>`, which browsers accept only with `Secure`, `Path=/`
    /// and no `Domain`, and which no subdomain or plain-HTTP page can set or overwrite. On by
    /// default whenever the cookie is `Secure` with path `/`; `true` elsewhere is an error.
    pub fn host_prefix(mut self, on: bool) -> Self {
        self.host_prefix = Some(on);
        self
    }

    /// The cookie's `Path`.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// The longest the cookie may live; it never outlives the token it came from.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Whether to send `Secure` (only turn off for development over plain HTTP).
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Whether a token accepted from one of the validator's sources (an API client's
    /// `Authorization: Bearer`, a proxy's header) starts a cookie session (default `true`, as
    /// auth_jwt does: every successful request sets the cookie, so a browser app that sends
    /// its token once is signed in). With `false` only sessions refresh themselves, and they
    /// start at a sign-in (an OIDC login's callback): API clients get no cookie they would
    /// never send back.
    pub fn from_bearer(mut self, from_bearer: bool) -> Self {
        self.from_bearer = from_bearer;
        self
    }

    /// The server secret that signs cookies (HS256, at least 32 bytes).
    pub fn secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.secret = Some(Secret::Inline(secret.into()));
        self
    }

    /// Reads the server secret from an environment variable when the registry is built.
    pub fn secret_env(mut self, var: impl Into<String>) -> Self {
        self.secret = Some(Secret::Env(var.into()));
        self
    }

    /// The cookie's name as browsers see it (with the `__Host-` prefix when it has one).
    pub(crate) fn name(&self) -> String {
        if self.prefixed() {
            format!("__Host-{}", self.name)
        } else {
            self.name.clone()
        }
    }

    fn prefixed(&self) -> bool {
        self.host_prefix.unwrap_or(self.secure && self.path == "/")
    }

    /// Checks the settings and derives the signing key of validator `validator`.
    pub(crate) fn compile(
        &self,
        validator: &str,
        sessions: &SessionOptions,
    ) -> Result<CompiledCookieMode, Error> {
        let bad = |field, what: &str| Error::new(ErrorKind::InvalidSetting, what).in_field(field);
        if self.name.is_empty() || !self.name.bytes().all(is_token_char) {
            return Err(bad(
                "cookie.name",
                "cookie name must be a non-empty HTTP token",
            ));
        }
        if !self.path.starts_with('/')
            || self.path.chars().any(|c| c == ';' || !c.is_ascii_graphic())
        {
            return Err(bad(
                "cookie.path",
                "cookie path must start with / and contain no ';', space or control character",
            ));
        }
        if self.host_prefix == Some(true) && !(self.secure && self.path == "/") {
            return Err(bad(
                "cookie.host_prefix",
                "the __Host- prefix needs secure = true and path = \"/\"",
            ));
        }
        if self.max_age.is_zero() {
            return Err(bad(
                "cookie.max_age_secs",
                "cookie max_age must be positive",
            ));
        }
        let secret = self.secret.as_ref().ok_or_else(|| {
            bad(
                "cookie.secret",
                "cookie mode needs a secret (secret or secret_env)",
            )
        })?;
        let field = secret.field("cookie.secret", "cookie.secret_env");
        let secret = secret.resolve().map_err(|e| e.in_field(field))?;
        VerifyingKey::from_secret(Algorithm::HS256, &secret).map_err(|e| {
            Error::new(ErrorKind::WeakSecret, format!("cookie secret: {e}")).in_field(field)
        })?;
        // HMAC-SHA256(secret, context || name): one key per validator, so that a cookie issued
        // by one validator is refused by every other.
        let context = format!("jwtgate cookie mode v1\0{validator}");
        let derived = sign_hs256(&EncodingKey::from_secret(&secret), context.as_bytes())
            .ok_or_else(|| bad(field, "cookie secret: cannot derive the validator key"))?;
        let verify = VerifyingKey::from_secret(Algorithm::HS256, &derived)
            .map_err(|e| bad(field, &format!("cookie secret: {e}")))?;
        // A key of its own seals the validator's session records (AES-256-GCM).
        let context = format!("jwtgate session record v1\0{validator}");
        let sealer = sign_hs256(&EncodingKey::from_secret(&secret), context.as_bytes())
            .and_then(|key| Sealer::new(&key))
            .ok_or_else(|| bad(field, "cookie secret: cannot derive the session key"))?;
        sessions.check()?;
        Ok(CompiledCookieMode {
            name: self.name(),
            path: self.path.clone(),
            max_age: self.max_age.as_secs().max(1),
            secure: self.secure,
            from_bearer: self.from_bearer,
            sign: EncodingKey::from_secret(&derived),
            verify,
            sealer: std::sync::Arc::new(sealer),
            sessions: sessions.clone(),
        })
    }
}

/// A compiled cookie mode.
pub(crate) struct CompiledCookieMode {
    pub(crate) name: String,
    path: String,
    max_age: u64,
    secure: bool,
    from_bearer: bool,
    sign: EncodingKey,
    verify: VerifyingKey,
    /// Seals the validator's session records.
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) sealer: std::sync::Arc<Sealer>,
    pub(crate) sessions: SessionOptions,
}

/// A session cookie that verified: its claims, its id and, for a sign-in's session, when it
/// ends.
#[cfg_attr(not(feature = "login"), allow(dead_code))]
pub(crate) struct VerifiedSession {
    pub(crate) claims: std::sync::Arc<ClaimSet>,
    pub(crate) id: Option<SessionId>,
    pub(crate) ends: Option<u64>,
}

/// A cookie-mode session read back from a request.
pub(crate) enum Session {
    /// Its claims and session id: the session stands (signature and claims hold; revocation
    /// is the engine's next check). A cookie issued before sessions had ids has none.
    Valid {
        claims: std::sync::Arc<ClaimSet>,
        id: Option<SessionId>,
    },
    /// A sign-in's session, with a record in the session store: within its timeouts, its
    /// claims `fresh` (no store read needed) or due a refresh.
    Stored {
        claims: std::sync::Arc<ClaimSet>,
        session: StoredSession,
        fresh: bool,
    },
    /// A sign-in's session past its idle or absolute timeout: this clears it, and its record
    /// can go.
    Ended {
        id: SessionId,
        clear: Option<HeaderValue>,
    },
    /// It ran out: no credential, and this clears it.
    Expired(Option<HeaderValue>),
    /// Forged, altered, another validator's, or its claims fail the rules.
    Refused(Failure),
}

impl CompiledCookieMode {
    /// Reads the session cookie `value` of a request.
    pub(crate) fn read(&self, value: &str, rules: &ClaimRules, now: u64) -> Session {
        let (claims, header) = match self.verify_signature(value) {
            Ok(read) => read,
            Err(failure) => return Session::Refused(failure),
        };
        let checked = rules.check(&claims, now);
        match header {
            Header::Stored(session) => {
                if !self.within_timeouts(&session, now) {
                    return Session::Ended {
                        id: session.id,
                        clear: self.clear(&self.name),
                    };
                }
                match checked {
                    // The cookie's `exp` is jwtgate's own (when its tokens need a refresh),
                    // compared without leeway.
                    Ok(()) => {
                        let fresh = claims
                            .get("exp")
                            .and_then(crate::jws::claim_set::RawJson::as_f64)
                            .is_some_and(|exp| exp > now as f64);
                        Session::Stored {
                            claims,
                            session,
                            fresh,
                        }
                    }
                    Err(ClaimError::Expired) => Session::Stored {
                        claims,
                        session,
                        fresh: false,
                    },
                    Err(e) => Session::Refused(Failure::Claim(e)),
                }
            }
            Header::Plain(id) => match checked {
                Ok(()) => Session::Valid { claims, id },
                Err(ClaimError::Expired) => Session::Expired(self.clear(&self.name)),
                Err(e) => Session::Refused(Failure::Claim(e)),
            },
        }
    }

    /// The longest the cookie may live.
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) fn max_age(&self) -> Duration {
        Duration::from_secs(self.max_age)
    }

    /// Whether a sign-in's session is within its absolute and idle timeouts at `now`.
    pub(crate) fn within_timeouts(&self, session: &StoredSession, now: u64) -> bool {
        now < session.ends
            && now
                < session
                    .seen
                    .saturating_add(self.sessions.idle_timeout.as_secs())
    }

    /// The cookie to set after a request accepted with `claims`: a session refreshes itself
    /// (keeping its id), a token from a source starts one unless [`CookieMode::from_bearer`]
    /// is off.
    pub(crate) fn refresh(&self, claims: &ClaimSet, via: &Via, now: u64) -> Option<HeaderValue> {
        if let Via::Stored(session) = via {
            return self.refresh_stored(claims, session, now);
        }
        let id = match via {
            Via::Session(Some(id)) => id.clone(),
            // A cookie from before session ids, or a token that starts a session.
            Via::Session(None) => SessionId::new()?,
            Via::Token if self.from_bearer => SessionId::new()?,
            Via::Token | Via::Stored(_) => return None,
        };
        self.issue(claims, &id, now)
    }

    /// Verifies a cookie read back from a request: HS256 with this validator's derived key, then
    /// the validator's claim rules (a sign-in's session: its timeouts, and its claims but for
    /// `exp`, since it refreshes). Its claims, session id and, for a sign-in, when it ends.
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) fn verify(
        &self,
        value: &str,
        rules: &ClaimRules,
        now: u64,
    ) -> Result<VerifiedSession, Failure> {
        match self.read(value, rules, now) {
            Session::Valid { claims, id } => Ok(VerifiedSession {
                claims,
                id,
                ends: None,
            }),
            Session::Stored {
                claims, session, ..
            } => Ok(VerifiedSession {
                claims,
                id: Some(session.id),
                ends: Some(session.ends),
            }),
            Session::Ended { .. } | Session::Expired(_) => Err(Failure::Claim(ClaimError::Expired)),
            Session::Refused(failure) => Err(failure),
        }
    }

    /// The claims and header of a cookie this validator signed (HS256 with its derived key);
    /// the claims are not checked yet.
    fn verify_signature(&self, value: &str) -> Result<(std::sync::Arc<ClaimSet>, Header), Failure> {
        let token = token::parse(value)?;
        if token.alg.as_str() != Algorithm::HS256.as_str() {
            return Err(Failure::AlgorithmMismatch);
        }
        let input = token.signing_input.as_bytes();
        if !token
            .with_signature(|signature| self.verify.verify(Algorithm::HS256, input, signature))?
        {
            return Err(Failure::BadSignature);
        }
        // Signed by this validator's key: the header is ours, read for its session only.
        let header = token
            .signing_input
            .split_once('.')
            .map_or(Header::Plain(None), |(header, _)| Header::read(header));
        Ok((token.claims, header))
    }

    /// `Set-Cookie` values that delete the cookie `name`: same path and attributes, `Max-Age=0`.
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) fn clear(&self, name: &str) -> Option<HeaderValue> {
        SetCookie {
            name,
            value: "",
            path: &self.path,
            max_age: 0,
            secure: self.secure,
        }
        .header()
    }

    /// A cookie `name` holding `payload`, signed with this validator's key (and a context of
    /// its own, so that it is never mistaken for a session), living `max_age` seconds.
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) fn seal(&self, name: &str, payload: &[u8], max_age: u64) -> Option<HeaderValue> {
        let body = URL_SAFE_NO_PAD.encode(payload);
        let signature = sign_hs256(&self.sign, format!("sealed:{name}:{body}").as_bytes())?;
        SetCookie {
            name,
            value: &format!("{body}.{}", URL_SAFE_NO_PAD.encode(signature)),
            path: &self.path,
            max_age,
            secure: self.secure,
        }
        .header()
    }

    /// The payload of a cookie made by [`seal`](Self::seal), if its signature holds.
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) fn open(&self, name: &str, value: &str) -> Option<Vec<u8>> {
        let (body, signature) = value.split_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let input = format!("sealed:{name}:{body}");
        if !self
            .verify
            .verify(Algorithm::HS256, input.as_bytes(), &signature)
        {
            return None;
        }
        URL_SAFE_NO_PAD.decode(body).ok()
    }

    /// The `Set-Cookie` value of session `session` for accepted `claims` at time `now`, or
    /// `None` when the token is about to expire.
    pub(crate) fn issue(
        &self,
        claims: &ClaimSet,
        session: &SessionId,
        now: u64,
    ) -> Option<HeaderValue> {
        let token_exp = claims.get("exp")?.as_f64()?.floor();
        let exp = (token_exp.min(u64::MAX as f64) as u64).min(now.saturating_add(self.max_age));
        if exp <= now {
            return None;
        }
        let header = format!("{SESSION_HEADER}{}{SESSION_HEADER_END}", session.0);
        self.write(claims, &header, exp, exp - now)
    }

    /// The cookie of a sign-in's `session` with `claims` fresh until `exp`, seen `now`: it
    /// lives until the session's idle or absolute timeout, whichever comes first (the browser
    /// keeps sending it after `exp`, for the refresh).
    pub(crate) fn issue_stored(
        &self,
        claims: &ClaimSet,
        session: &StoredSession,
        exp: u64,
        now: u64,
    ) -> Option<HeaderValue> {
        let ends = session
            .ends
            .min(now.saturating_add(self.sessions.idle_timeout.as_secs()));
        if ends <= now {
            return None;
        }
        let header = |by_ref: bool| {
            format!(
                "{SESSION_HEADER}{}{STORED_ENDS}{}{STORED_SEEN}{now}{}}}",
                session.id.0,
                session.ends,
                if by_ref { STORED_BY_REF } else { "" }
            )
        };
        let exp = exp.min(session.ends);
        if !session.by_ref
            && let Some(full) = self.write(claims, &header(false), exp, ends - now)
        {
            return Some(full);
        }
        // Too large for a cookie (a token with many groups): the registered claims only; the
        // layer reads the rest from the record.
        let compact = compact(claims)?;
        self.write(&compact, &header(true), exp, ends - now)
    }

    /// A sign-in's cookie after a request: a new one after a refresh; else only when the
    /// last one is a minute old (a quarter of the idle timeout when shorter), which keeps
    /// the idle timeout current without signing a cookie per request.
    fn refresh_stored(
        &self,
        claims: &ClaimSet,
        session: &StoredSession,
        now: u64,
    ) -> Option<HeaderValue> {
        let exp = match session.refreshed {
            Some(exp) => exp,
            None => {
                let step = (self.sessions.idle_timeout.as_secs() / 4).clamp(1, 60);
                if now < session.seen.saturating_add(step) {
                    return None;
                }
                let exp = claims.get("exp")?.as_f64()?.floor();
                exp.clamp(0.0, u64::MAX as f64) as u64
            }
        };
        self.issue_stored(claims, session, exp, now)
    }

    /// Signs `claims` (their text as they came, with `exp` replaced in place) under `header`
    /// into a cookie living `max_age` seconds.
    fn write(
        &self,
        claims: &ClaimSet,
        header: &str,
        exp: u64,
        max_age: u64,
    ) -> Option<HeaderValue> {
        let text = claims.text();
        let at = claims.span("exp")?;
        let json = format!("{}{exp}{}", text.get(..at.start)?, text.get(at.end..)?);
        let header = URL_SAFE_NO_PAD.encode(header);
        let payload = URL_SAFE_NO_PAD.encode(json);
        let input = format!("{header}.{payload}");
        let signature = URL_SAFE_NO_PAD.encode(sign_hs256(&self.sign, input.as_bytes())?);
        SetCookie {
            name: &self.name,
            value: &format!("{input}.{signature}"),
            path: &self.path,
            max_age,
            secure: self.secure,
        }
        .header()
        .filter(|set| {
            let fits = set.len() <= MAX_COOKIE_BYTES;
            if !fits {
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| {
                    tracing::warn!(
                        cookie = %self.name,
                        "a session cookie would be larger than browsers keep (4096 bytes): not set; sign-ins' sessions keep their claims in the store instead"
                    );
                });
            }
            fits
        })
    }
}

/// The claims of [`COMPACT_CLAIMS`] that `claims` has, as their own claim set.
fn compact(claims: &ClaimSet) -> Option<ClaimSet> {
    let mut text = String::from("{");
    for name in COMPACT_CLAIMS {
        if let Some(value) = claims.get(name) {
            if text.len() > 1 {
                text.push(',');
            }
            text.push('"');
            text.push_str(name);
            text.push_str("\":");
            text.push_str(value.json_text());
        }
    }
    text.push('}');
    ClaimSet::parse(text.into()).ok()
}

/// How an accepted credential came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Via {
    /// A token from one of the validator's sources (a header, a query parameter, a cookie).
    Token,
    /// The validator's cookie-mode session, with its id (none in a cookie from before ids).
    Session(Option<SessionId>),
    /// A sign-in's session, which has a record in the session store.
    Stored(StoredSession),
}

impl Via {
    /// The id of the session it came with, if any.
    pub(crate) fn session_id(&self) -> Option<&SessionId> {
        match self {
            Self::Token | Self::Session(None) => None,
            Self::Session(Some(id)) => Some(id),
            Self::Stored(s) => Some(&s.id),
        }
    }
}

/// A sign-in's session as its cookie says (signed): its id, when it ends, when it was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredSession {
    pub(crate) id: SessionId,
    /// The absolute timeout's instant.
    pub(crate) ends: u64,
    /// The last request that renewed the cookie (the idle timeout counts from it).
    pub(crate) seen: u64,
    /// Refreshed during this request: the new claims are fresh until then.
    pub(crate) refreshed: Option<u64>,
    /// The cookie carries only the registered claims (the token's would not fit in a cookie):
    /// the others are in the session's record.
    pub(crate) by_ref: bool,
}

/// What a session cookie's header says.
enum Header {
    /// A cookie-mode session (an id, or none from before ids).
    Plain(Option<SessionId>),
    Stored(StoredSession),
}

impl Header {
    fn read(header: &str) -> Self {
        // Decoded on the stack: the header is at most 128 bytes.
        let mut buf = [0u8; 160];
        let Ok(n) = URL_SAFE_NO_PAD.decode_slice(header, &mut buf) else {
            return Self::Plain(None);
        };
        let Some(rest) = buf
            .get(..n)
            .and_then(|b| b.strip_prefix(SESSION_HEADER.as_bytes()))
        else {
            return Self::Plain(None);
        };
        let Some((id, rest)) = rest.split_at_checked(22) else {
            return Self::Plain(None);
        };
        let Some(id) = SessionId::of_bytes(id) else {
            return Self::Plain(None);
        };
        if rest == SESSION_HEADER_END.as_bytes() {
            return Self::Plain(Some(id));
        }
        let stored = (|| {
            let rest = rest.strip_prefix(STORED_ENDS.as_bytes())?;
            let at = rest.iter().position(|b| !b.is_ascii_digit())?;
            let (ends, rest) = rest.split_at(at);
            let rest = rest
                .strip_prefix(STORED_SEEN.as_bytes())?
                .strip_suffix(b"}")?;
            let (seen, by_ref) = match rest.strip_suffix(STORED_BY_REF.as_bytes()) {
                Some(seen) => (seen, true),
                None => (rest, false),
            };
            Some(StoredSession {
                id: id.clone(),
                ends: digits(ends)?,
                seen: digits(seen)?,
                refreshed: None,
                by_ref,
            })
        })();
        stored.map_or(Self::Plain(None), Self::Stored)
    }
}

/// A decimal number of at most 15 digits.
fn digits(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 15 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// A session cookie's JWS header, exactly as jwtgate writes it, around the session id: read
/// back on every request by comparing bytes, not by parsing JSON (it is signed by us).
const SESSION_HEADER: &str = r#"{"alg":"HS256","typ":"JWT","session":""#;
const SESSION_HEADER_END: &str = r#""}"#;
/// A sign-in's session header goes on with its two instants.
const STORED_ENDS: &str = r#"","ends":"#;
const STORED_SEEN: &str = r#","seen":"#;
/// Ends the header of a sign-in's cookie whose claims are in the session's record.
const STORED_BY_REF: &str = r#","claims":"record""#;

/// The most a `Set-Cookie` value may hold: browsers keep cookies of up to 4096 bytes (name,
/// value and attributes), and drop larger ones silently.
const MAX_COOKIE_BYTES: usize = 4096;

/// The claims a by-reference cookie keeps: what the validator's rules, revocation and the
/// user's id need without reading the record.
const COMPACT_CLAIMS: [&str; 10] = [
    "iss",
    "sub",
    "aud",
    "azp",
    "exp",
    "iat",
    "nbf",
    "sid",
    "jti",
    "auth_time",
];

/// A browser session's own id: 128 random bits, base64url. It names the session in a
/// revocation; it grants nothing by itself (the cookie's signature does).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SessionId(Box<str>);

impl SessionId {
    /// A new random id (`None` only if the system's random source fails).
    pub(crate) fn new() -> Option<Self> {
        let mut bytes = [0u8; 16];
        aws_lc_rs::rand::fill(&mut bytes).ok()?;
        Some(Self(URL_SAFE_NO_PAD.encode(bytes).into()))
    }

    /// A session id as a cookie's header holds it: 22 base64url characters.
    fn of_bytes(id: &[u8]) -> Option<Self> {
        let id = std::str::from_utf8(id).ok()?;
        (id.len() == 22
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| Self(id.into()))
    }

    /// The id in a plain session cookie's header; `None` for one from before ids, a sign-in's,
    /// or any other.
    #[cfg(test)]
    fn of_header(header: &str) -> Option<Self> {
        match Header::read(header) {
            Header::Plain(id) => id,
            Header::Stored(_) => None,
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({}…)", self.0.get(..6).unwrap_or(""))
    }
}

/// Signs `input` with HMAC-SHA256 (cookie mode), through aws-lc-rs.
pub(crate) fn sign_hs256(secret: &EncodingKey, input: &[u8]) -> Option<Vec<u8>> {
    let signer = (jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.signer_factory)(
        &jsonwebtoken::Algorithm::HS256,
        secret,
    )
    .ok()?;
    signer.try_sign(input).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_settings() {
        let ok = CookieMode::new("demo_auth").secret(vec![1; 32]);
        assert!(ok.compile("v", &SessionOptions::new()).is_ok());
        let err = ok
            .clone()
            .path("no-slash")
            .compile("v", &SessionOptions::new())
            .err()
            .unwrap();
        assert_eq!(err.field(), Some("cookie.path"));
        let err = CookieMode::new("bad name")
            .secret(vec![1; 32])
            .compile("v", &SessionOptions::new())
            .err()
            .unwrap();
        assert_eq!(
            (err.field(), err.message()),
            (
                Some("cookie.name"),
                "cookie name must be a non-empty HTTP token"
            )
        );
        let err = CookieMode::new("x")
            .secret(vec![1; 8])
            .compile("v", &SessionOptions::new())
            .err()
            .unwrap();
        assert_eq!(err.kind(), &ErrorKind::WeakSecret);
        assert_eq!(err.field(), Some("cookie.secret"));
        let err = CookieMode::new("x")
            .compile("v", &SessionOptions::new())
            .err()
            .unwrap();
        assert!(err.to_string().contains("needs a secret"));
        assert!(!format!("{ok:?}").contains("[1, 1"));
    }

    #[test]
    fn a_secure_cookie_on_slash_gets_the_host_prefix() {
        let name = |mode: CookieMode| {
            mode.secret(vec![1; 32])
                .compile("v", &SessionOptions::new())
                .unwrap()
                .name
        };
        assert_eq!(name(CookieMode::new("c")), "__Host-c");
        assert_eq!(name(CookieMode::new("c").path("/app")), "c");
        assert_eq!(name(CookieMode::new("c").secure(false)), "c");
        assert_eq!(name(CookieMode::new("c").host_prefix(false)), "c");
        let set = CookieMode::new("c")
            .secret(vec![1; 32])
            .compile("v", &SessionOptions::new())
            .unwrap()
            .clear("__Host-c")
            .unwrap();
        // What browsers ask of a __Host- cookie: Secure, Path=/, no Domain.
        assert_eq!(
            set,
            "__Host-c=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure"
        );
    }

    #[test]
    fn the_session_id_is_read_from_the_header_jwtgate_writes_and_no_other() {
        let header = |json: &str| URL_SAFE_NO_PAD.encode(json);
        let id = "AAAAAAAAAAAAAAAAAAAAAA";
        let ours = header(&format!(
            r#"{{"alg":"HS256","typ":"JWT","session":"{id}"}}"#
        ));
        assert_eq!(SessionId::of_header(&ours).map(|s| s.0), Some(id.into()));
        for other in [
            header(r#"{"alg":"HS256","typ":"JWT"}"#),
            header(&format!(
                r#"{{"alg":"HS256","typ":"JWT","session":"{id}","x":1}}"#
            )),
            header(r#"{"alg":"HS256","typ":"JWT","session":"short"}"#),
            header(r#"{"alg":"HS256","typ":"JWT","session":"AAAAAAAAAAAAAAAAAAAA/="}"#),
            "not base64!".to_owned(),
            "A".repeat(200),
        ] {
            assert_eq!(SessionId::of_header(&other), None, "{other}");
        }
    }

    #[test]
    fn a_sign_in_too_large_for_a_cookie_keeps_its_claims_by_reference() {
        let mode = CookieMode::new("c")
            .secret(vec![1; 32])
            .compile("v", &SessionOptions::new())
            .unwrap();
        let groups: Vec<String> = (0..150)
            .map(|i| format!("group-number-{i:04}-of-many"))
            .collect();
        let claims = serde_json::json!({
            "iss": "i", "aud": "x", "sub": "ada", "sid": "s1", "exp": 2_000_000, "iat": 999_000,
            "groups": groups,
        });
        let claims = ClaimSet::parse(claims.to_string().into()).unwrap();
        let session = StoredSession {
            id: SessionId::new().unwrap(),
            ends: 1_040_000,
            seen: 1_000_000,
            refreshed: None,
            by_ref: false,
        };
        // A plain session cookie that large is not set at all (browsers would drop it) ...
        assert!(mode.issue(&claims, &session.id, 1_000_000).is_none());
        // ... a sign-in's keeps the registered claims and says the rest is in the record.
        let set = mode
            .issue_stored(&claims, &session, 1_000_500, 1_000_000)
            .unwrap();
        assert!(set.len() <= MAX_COOKIE_BYTES, "{}", set.len());
        let value = set.to_str().unwrap().split(';').next().unwrap();
        let value = value.strip_prefix("__Host-c=").unwrap();
        let rules = ClaimRules {
            issuers: vec!["i".into()],
            issuer_patterns: Vec::new(),
            audiences: vec!["x".into()],
            authorized_party: None,
            leeway: 0,
        };
        let Session::Stored {
            claims: back,
            session: read,
            fresh: true,
        } = mode.read(value, &rules, 1_000_001)
        else {
            panic!("a fresh sign-in's session");
        };
        assert!(read.by_ref && read.id == session.id && read.seen == 1_000_000);
        assert_eq!(
            back.text(),
            r#"{"iss":"i","sub":"ada","aud":"x","exp":1000500,"iat":999000,"sid":"s1"}"#
        );
    }

    #[test]
    fn cookie_never_outlives_the_token() {
        let rule = CookieMode::new("c")
            .secret(vec![1; 32])
            .path("/app")
            .secure(false)
            .compile("v", &SessionOptions::new())
            .unwrap();
        let claims = ClaimSet::parse(r#"{"exp": 1000100.5}"#.into()).unwrap();
        let id = SessionId::new().unwrap();
        let v = rule.issue(&claims, &id, 1_000_000).unwrap();
        let v = v.to_str().unwrap();
        assert!(v.starts_with("c=ey"), "{v}");
        assert!(
            v.ends_with("; Path=/app; Max-Age=100; HttpOnly; SameSite=Lax"),
            "{v}"
        );
        assert!(rule.issue(&claims, &id, 1_000_100).is_none());
    }

    #[test]
    fn sealed_cookies_open_only_with_their_validator_and_name() {
        let mode = CookieMode::new("c").secret(vec![1; 32]).secure(false);
        let (a, b) = (
            mode.compile("a", &SessionOptions::new()).unwrap(),
            mode.compile("b", &SessionOptions::new()).unwrap(),
        );
        let set = a.seal("pending", b"{\"x\":1}", 600).unwrap();
        let set = set.to_str().unwrap();
        assert!(
            set.ends_with("; Path=/; Max-Age=600; HttpOnly; SameSite=Lax"),
            "{set}"
        );
        let value = set
            .split(';')
            .next()
            .unwrap()
            .strip_prefix("pending=")
            .unwrap();
        assert_eq!(a.open("pending", value).unwrap(), b"{\"x\":1}");
        assert!(b.open("pending", value).is_none());
        assert!(a.open("other", value).is_none());
        assert!(a.open("pending", &value.replace('.', "x.")).is_none());
        assert_eq!(
            a.clear("c").unwrap(),
            "c=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn a_cookie_verifies_only_for_the_validator_that_issued_it() {
        let mode = CookieMode::new("c").secret(vec![1; 32]);
        let (a, b) = (
            mode.compile("a", &SessionOptions::new()).unwrap(),
            mode.compile("b", &SessionOptions::new()).unwrap(),
        );
        let rules = ClaimRules {
            issuers: vec!["i".into()],
            issuer_patterns: Vec::new(),
            audiences: vec!["x".into()],
            authorized_party: None,
            leeway: 0,
        };
        let claims = r#"{"iss":"i","aud":"x","exp":99000000,"name":"J\u00f6rg"}"#;
        let claims = ClaimSet::parse(claims.into()).unwrap();
        let id = SessionId::new().unwrap();
        let set = a.issue(&claims, &id, 1_000_000).unwrap();
        let value = set.to_str().unwrap().split(';').next().unwrap();
        // Secure with path /: the __Host- prefix.
        let value = value.strip_prefix("__Host-c=").unwrap();
        // The token's claims as signed, `exp` shortened to the cookie's life; the session id
        // comes back with them.
        let VerifiedSession {
            claims: back,
            id: back_id,
            ..
        } = a.verify(value, &rules, 1_000_000).unwrap();
        assert_eq!(back_id, Some(id.clone()));
        let exp = 1_000_000 + CookieMode::new("c").max_age.as_secs();
        assert_eq!(
            back.text(),
            format!(r#"{{"iss":"i","aud":"x","exp":{exp},"name":"J\u00f6rg"}}"#)
        );
        assert_eq!(
            b.verify(value, &rules, 1_000_000).err(),
            Some(Failure::BadSignature)
        );
        // A session refreshes itself under its own id; a cookie without one, or a token
        // that starts a session, gets a new one.
        let again = |via: &Via| {
            let set = a.refresh(&claims, via, 1_000_000).unwrap();
            let value = set.to_str().unwrap().split(';').next().unwrap();
            let value = value.split_once('=').unwrap().1.to_owned();
            a.verify(&value, &rules, 1_000_000).unwrap().id.unwrap()
        };
        assert_eq!(again(&Via::Session(Some(id.clone()))), id);
        let fresh = again(&Via::Session(None));
        assert!(fresh != id && again(&Via::Token) != fresh);
        assert_eq!(fresh.as_str().len(), 22);
    }
}
