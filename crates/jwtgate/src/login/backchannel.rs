//! The OpenID Connect Back-Channel Logout 1.0 receiver: the provider posts a signed logout
//! token when a user's session ends there (a sign-out, an admin ending sessions), and the
//! sessions and tokens it names are revoked on every instance.
//!
//! The token is verified with the validator's issuer, algorithm and keys, `aud` = the
//! login's client id; `iat`, `exp` (errata 1) and `jti` are required, `events` must hold the
//! back-channel logout member with an object value, `sid` and/or `sub` must be there and
//! `nonce` must not; `typ` may be absent, `logout+jwt` or `JWT`. Its `jti` is recorded in the
//! store's replay set once every other check passed; a replay is refused. The answer is 200
//! with `Cache-Control: no-store` (also when nothing was signed in), 400
//! `{"error":"invalid_request"}` otherwise, and nothing is revoked for a refused token.
//!
//! What is revoked: with `sid`, that provider session (the jwtgate sessions started from it,
//! and every bearer token carrying the same `sid`, as Keycloak's access tokens do); with only
//! `sub`, every credential of the subject issued up to the logout token's `iat` (so a replay
//! of an old token can never end a later session).

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use super::SignIn;
use crate::jws::claim_set::{ClaimSet, RawJson};
use crate::revocation::{Revocation, Revoker, Target};

/// The receiver's path.
pub const BACKCHANNEL_LOGOUT_PATH: &str = "/auth/backchannel-logout";

/// The most body read (a logout token is a few hundred bytes; RSA-4096 and many claims
/// stay well below).
pub(crate) const MAX_BODY: usize = 16 * 1024;

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Seconds a provider is asked to wait when the store cannot take the logout.
const RETRY_AFTER: &str = "5";

/// Handles one back-channel logout request body.
pub(crate) async fn receive(
    validator: &dyn SignIn,
    client_id: &str,
    revoker: &Revoker,
    headers: &HeaderMap,
    body: &[u8],
) -> Response<String> {
    let form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return refused(validator, "not a form post");
    }
    let Ok(body) = std::str::from_utf8(body) else {
        return refused(validator, "the body is not UTF-8");
    };
    let params = crate::percent::query_pairs(body, 8);
    let mut tokens = params.iter().filter(|(k, _)| k == "logout_token");
    let (Some((_, raw)), None) = (tokens.next(), tokens.next()) else {
        return refused(validator, "exactly one logout_token is needed");
    };
    let claims = match validator
        .verify_client_token(raw, client_id, super::ClientToken::Logout)
        .await
    {
        Ok(claims) => claims,
        Err(failure) => return refused(validator, failure.description()),
    };
    let logout = match Logout::read(&claims) {
        Ok(logout) => logout,
        Err(why) => return refused(validator, why),
    };
    let replay_key = format!("backchannel:{}:{}", logout.issuer.len(), logout.issuer) + &logout.jti;
    match revoker.first_use(&replay_key, logout.exp).await {
        Ok(true) => {}
        Ok(false) => return refused(validator, "logout token replayed (jti seen before)"),
        Err(e) => return unavailable(validator, &e.to_string()),
    }
    let now = crate::jws::claims::now();
    let (target, from) = match (logout.sid, logout.sub) {
        (Some(sid), _) => (Target::ProviderSession(sid), now),
        (None, Some(sub)) => {
            let before = logout.iat.min(now);
            (
                Target::Subject {
                    subject: sub,
                    before,
                },
                before,
            )
        }
        (None, None) => return refused(validator, "neither sid nor sub"),
    };
    let kind = target.kind();
    let until = from.saturating_add(revoker.retention());
    if let Err(e) = revoker
        .write(Revocation::new(logout.issuer, target, until))
        .await
    {
        return unavailable(validator, e.message());
    }
    tracing::info!(validator = %validator.name(), kind, "back-channel logout: revoked");
    let mut res = Response::new(String::new());
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The claims a logout token must have, read after its signature held.
struct Logout {
    issuer: String,
    jti: String,
    iat: u64,
    exp: u64,
    sid: Option<String>,
    sub: Option<String>,
}

impl Logout {
    fn read(claims: &ClaimSet) -> Result<Self, &'static str> {
        let text = |name| {
            claims
                .get(name)
                .and_then(RawJson::as_str)
                .map(std::borrow::Cow::into_owned)
        };
        let bounded = |name, why| match text(name) {
            Some(v) if v.is_empty() || v.len() > 1024 => Err(why),
            other => Ok(other),
        };
        let instant = |name| {
            claims
                .get(name)
                .and_then(RawJson::as_f64)
                .filter(|t| *t >= 0.0)
                .map(|t| t.floor() as u64)
        };
        if claims.get("nonce").is_some() {
            return Err("a logout token must not have a nonce");
        }
        let events = claims.get("events").ok_or("events is missing")?;
        let events: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(events.json_text()).map_err(|_| "events is not an object")?;
        if !events.get(EVENT).is_some_and(serde_json::Value::is_object) {
            return Err("events has no back-channel logout event object");
        }
        let jti = bounded("jti", "jti is empty or too long")?.ok_or("jti is missing")?;
        let iat = instant("iat").ok_or("iat is missing")?;
        let exp = instant("exp").ok_or("exp is missing")?;
        let sid = bounded("sid", "sid is empty or too long")?;
        let sub = bounded("sub", "sub is empty or too long")?;
        if sid.is_none() && sub.is_none() {
            return Err("neither sid nor sub");
        }
        // `iss` was checked against the validator: a string.
        let issuer = text("iss").ok_or("iss is missing")?;
        Ok(Self {
            issuer,
            jti,
            iat,
            exp,
            sid,
            sub,
        })
    }
}

fn refused(validator: &dyn SignIn, why: &str) -> Response<String> {
    tracing::info!(validator = %validator.name(), reason = why, "back-channel logout refused");
    invalid_request()
}

/// The one refusal a provider is told: 400 `{"error":"invalid_request"}` (the reason is
/// logged, not sent). Also for a body that cannot be read or is too large.
pub(super) fn invalid_request() -> Response<String> {
    super::json(
        StatusCode::BAD_REQUEST,
        &serde_json::json!({"error": "invalid_request"}),
    )
}

fn unavailable(validator: &dyn SignIn, why: &str) -> Response<String> {
    tracing::warn!(validator = %validator.name(), error = why, "back-channel logout not written");
    let mut res = super::json(
        StatusCode::SERVICE_UNAVAILABLE,
        &serde_json::json!({"error": "temporarily_unavailable"}),
    );
    res.headers_mut().insert(
        http::header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER),
    );
    res
}
