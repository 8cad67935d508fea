//! Stage 2, the chain walk: each validator in order gets its credential checked, until one
//! accepts. A token is served from the verified-token cache (whose hit policy lives in
//! `token_cache`) or parsed once per request and verified; a cookie-mode session is read by
//! `cookie`. When none accepts, the refusals are combined into one answer.

use std::sync::Arc;

use http::HeaderValue;

use super::credentials::Found;
use super::{Accepted, Engine, Via};
use crate::cookie::Session;
use crate::credentials::Credential;
use crate::failure::Failure;
use crate::identity::Payload;
use crate::jws::claims;
use crate::jws::key_set::CheckedSignatures;
use crate::jws::token::{self, TokenError, UnverifiedToken};
use crate::rejection::{Rejection, RejectionKind};
use crate::token_cache::Verified;
use crate::validator::CompiledValidator;

/// Walks the chain. `Ok(None)`: no validator found any credential (an expired session counts
/// as none; its clearing cookie goes into `cleared`).
pub(super) async fn walk<'e>(
    engine: &'e Engine,
    found: &Found<'e, '_>,
    cleared: &mut Vec<HeaderValue>,
) -> Result<Option<Accepted<'e>>, Rejection> {
    let now = claims::now();
    let mut memo = TokenMemo::default();
    let mut seen = false;
    let mut failures: Vec<(&CompiledValidator, Failure)> = Vec::new();
    for (v, credential) in found {
        let result = match credential {
            None => Err(Failure::Missing),
            Some(Credential::Token(raw)) => {
                seen = true;
                match v.admits(raw) {
                    Err(f) => Err(f),
                    Ok(()) => {
                        let entry = memo.entry(raw, engine);
                        match engine.tokens.hit(v, &mut entry.remembered, raw, now) {
                            // The entry comes along: it keeps the token's revocation probe.
                            Some(result) => result.map(|p| (p, entry.remembered.clone())),
                            None => verify(engine, v, entry, now).await.map(|p| (p, None)),
                        }
                    }
                }
                .map(|(payload, remembered)| (payload, Via::Token, remembered))
            }
            Some(Credential::ModeCookie(raw)) => {
                match v.cookie.as_ref().map(|c| c.read(raw, &v.cookie_rules, now)) {
                    None => Err(Failure::Missing),
                    Some(Session::Valid { claims, id }) => {
                        seen = true;
                        Ok((Payload::new(claims), Via::Session(id), None))
                    }
                    Some(Session::Stored {
                        claims,
                        session,
                        fresh,
                    }) => match stored(engine, v, claims, session, fresh, now).await {
                        Ok((claims, session)) => {
                            seen = true;
                            Ok((Payload::new(claims), Via::Stored(session), None))
                        }
                        // Over: no credential, and its cookie is cleared.
                        Err(Failure::Missing) => {
                            cleared.extend(v.cookie.as_ref().and_then(|c| c.clear(&c.name)));
                            Err(Failure::Missing)
                        }
                        Err(failure) => {
                            seen = true;
                            Err(failure)
                        }
                    },
                    // Past its idle or absolute timeout: cleared, its record removed.
                    Some(Session::Ended { id, clear }) => {
                        forget(engine, v, &id).await;
                        cleared.extend(clear);
                        Err(Failure::Missing)
                    }
                    // An expired session is no credential: cleared, and a browser is sent to sign
                    // in again rather than shown an error.
                    Some(Session::Expired(clear)) => {
                        cleared.extend(clear);
                        Err(Failure::Missing)
                    }
                    Some(Session::Refused(failure)) => {
                        seen = true;
                        Err(failure)
                    }
                }
            }
        };
        match result {
            Ok((payload, via, remembered)) => {
                // The validators before it still say why they refused.
                log_refusals(&failures);
                return Ok(Some(Accepted {
                    validator: v,
                    payload,
                    via,
                    remembered,
                    now,
                }));
            }
            Err(failure) => failures.push((v, failure)),
        }
    }
    log_refusals(&failures);
    if seen {
        Err(combine(engine, &failures))
    } else {
        Ok(None)
    }
}

/// A sign-in's session with its whole claims: as it is when fresh (the record's claims when
/// its cookie carries only the registered ones), as it is when signed out (the revocation stage
/// refuses it next, and no refresh is spent on it), else resumed by its login. `Missing` when
/// it is over, `SessionUnavailable` when that cannot be known now.
async fn stored(
    engine: &Engine,
    v: &CompiledValidator,
    claims: Arc<crate::jws::claim_set::ClaimSet>,
    session: crate::cookie::StoredSession,
    fresh: bool,
    now: u64,
) -> Result<
    (
        Arc<crate::jws::claim_set::ClaimSet>,
        crate::cookie::StoredSession,
    ),
    Failure,
> {
    if fresh && !session.by_ref {
        return Ok((claims, session));
    }
    if fresh {
        let claims = full_claims(engine, v, &claims, &session).await?;
        return Ok((claims, session));
    }
    if super::revoked::signed_out(engine, &claims, &session.id, now) {
        return Ok((claims, session));
    }
    resume(engine, v, claims, session, now).await
}

/// A sign-in's session due a refresh, resumed by its login: its claims now (the same, or a
/// refresh's) and the session, marked refreshed when it was. `Missing` when it is over,
/// `SessionUnavailable` when that cannot be known now.
#[cfg_attr(not(feature = "login"), allow(clippy::unused_async, unused_variables))]
async fn resume(
    engine: &Engine,
    v: &CompiledValidator,
    claims: Arc<crate::jws::claim_set::ClaimSet>,
    session: crate::cookie::StoredSession,
    now: u64,
) -> Result<
    (
        Arc<crate::jws::claim_set::ClaimSet>,
        crate::cookie::StoredSession,
    ),
    Failure,
> {
    #[cfg(feature = "login")]
    {
        use crate::login::Resumed;
        let Some(login) = v.login.as_ref() else {
            return Err(Failure::Missing);
        };
        match login
            .resume(v, &*engine.sessions, &claims, &session, now)
            .await
        {
            Ok(Resumed::Refreshed(claims, fresh_until)) => Ok((
                claims,
                crate::cookie::StoredSession {
                    refreshed: Some(fresh_until),
                    ..session
                },
            )),
            Ok(Resumed::Current(claims)) => Ok((claims, session)),
            Err(e) => Err(resume_failure(&e)),
        }
    }
    #[cfg(not(feature = "login"))]
    Err(Failure::Missing)
}

/// The whole claims of a fresh session whose cookie carries only the registered ones.
#[cfg_attr(not(feature = "login"), allow(clippy::unused_async, unused_variables))]
async fn full_claims(
    engine: &Engine,
    v: &CompiledValidator,
    claims: &crate::jws::claim_set::ClaimSet,
    session: &crate::cookie::StoredSession,
) -> Result<Arc<crate::jws::claim_set::ClaimSet>, Failure> {
    #[cfg(feature = "login")]
    {
        let login = v.login.as_ref().ok_or(Failure::Missing)?;
        let fresh_until = claims
            .get("exp")
            .and_then(crate::jws::claim_set::RawJson::as_u64)
            .unwrap_or(0);
        login
            .full_claims(v, &*engine.sessions, session, fresh_until)
            .await
            .map_err(|e| resume_failure(&e))
    }
    #[cfg(not(feature = "login"))]
    Err(Failure::Missing)
}

/// A session that cannot go on: over (no credential: signs in again), or not known now.
#[cfg(feature = "login")]
fn resume_failure(e: &crate::login::ResumeError) -> Failure {
    match e {
        crate::login::ResumeError::Ended => Failure::Missing,
        crate::login::ResumeError::Unavailable => Failure::SessionUnavailable {
            retry_after: SESSION_RETRY_AFTER,
        },
    }
}

/// Seconds a client waits before asking again when its session cannot be renewed.
#[cfg_attr(not(feature = "login"), allow(dead_code))]
const SESSION_RETRY_AFTER: u64 = 5;

/// Removes the record of a session that ended (a store fault only leaves it to lapse at its
/// absolute timeout: the session is over either way, its cookie cleared).
async fn forget(engine: &Engine, v: &CompiledValidator, id: &crate::cookie::SessionId) {
    let key = crate::session::record::key(&v.name, id.as_str());
    if let Err(e) = engine.sessions.remove(&key).await {
        tracing::debug!(validator = %v.name, error = %e, "ended session's record not removed");
    }
}

fn log_refusals(failures: &[(&CompiledValidator, Failure)]) {
    for (v, failure) in failures {
        if *failure != Failure::Missing {
            tracing::debug!(validator = %v.name, reason = failure.description(), "token refused");
        }
    }
}

/// Parses (once per request) and verifies the token for `v`; a success is remembered.
async fn verify(
    engine: &Engine,
    v: &CompiledValidator,
    entry: &mut MemoToken<'_>,
    now: u64,
) -> Result<Payload, Failure> {
    let key = {
        let (token, checked) = entry.parsed().map_err(Failure::Token)?;
        v.verify(token, now, checked).await?
    };
    // Verified above, so parsed: the claims are there.
    let claims = entry
        .take_claims()
        .ok_or(Failure::Token(TokenError::Json))?;
    let payload = Payload::new(claims);
    engine.tokens.insert(
        entry.raw,
        Verified::new(v.index, payload.clone(), key, v.rules.leeway),
    );
    Ok(payload)
}

/// One 401 (or 503) for every failure of the chain; the details were logged. When every
/// validator that saw a credential refused it for the same reason, that reason is the
/// description.
pub(super) fn combine(engine: &Engine, failures: &[(&CompiledValidator, Failure)]) -> Rejection {
    let retry = failures.iter().find_map(|(_, f)| match f {
        Failure::KeysUnavailable { retry_after, .. } => Some((*retry_after, *f)),
        _ => None,
    });
    if let Some((retry_after, failure)) = retry {
        return engine
            .reject(RejectionKind::KeysUnavailable, failure.description())
            .with_retry_after(retry_after);
    }
    if let Some((_, failure @ Failure::SessionUnavailable { retry_after })) = failures
        .iter()
        .find(|(_, f)| matches!(f, Failure::SessionUnavailable { .. }))
    {
        return engine
            .reject(RejectionKind::SessionUnavailable, failure.description())
            .with_retry_after(*retry_after);
    }
    let mut real = failures
        .iter()
        .map(|(_, f)| *f)
        .filter(|f| *f != Failure::Missing);
    let first = real.next();
    match first {
        Some(only) if real.all(|f| f == only) => {
            engine.reject(RejectionKind::InvalidToken, only.description())
        }
        _ => engine.reject(
            RejectionKind::InvalidToken,
            "token refused by every validator of the chain",
        ),
    }
}

/// Tokens of one request, each looked up in the verified-token cache and parsed at most once
/// however many validators read it (the same token often comes from two sources: Cloudflare's
/// header and cookie), with the signatures already checked. The first token is kept inline: a
/// request rarely carries two different ones.
#[derive(Default)]
struct TokenMemo<'t> {
    first: Option<MemoToken<'t>>,
    more: Vec<MemoToken<'t>>,
}

struct MemoToken<'t> {
    raw: &'t str,
    /// The cache's verification of this token, looked up once per request.
    remembered: Option<Arc<Verified>>,
    /// Parsed when first needed (a cache hit never parses).
    token: Option<Result<UnverifiedToken<'t>, TokenError>>,
    checked: CheckedSignatures,
}

impl<'t> TokenMemo<'t> {
    fn entry(&mut self, raw: &'t str, engine: &Engine) -> &mut MemoToken<'t> {
        let new = || MemoToken {
            raw,
            remembered: engine.tokens.get(raw),
            token: None,
            checked: CheckedSignatures::default(),
        };
        if self.first.as_ref().is_none_or(|t| t.raw == raw) {
            return self.first.get_or_insert_with(new);
        }
        let i = match self.more.iter().position(|t| t.raw == raw) {
            Some(i) => i,
            None => {
                self.more.push(new());
                self.more.len() - 1
            }
        };
        &mut self.more[i]
    }
}

impl<'t> MemoToken<'t> {
    fn parsed(&mut self) -> Result<(&UnverifiedToken<'t>, &mut CheckedSignatures), TokenError> {
        let raw = self.raw;
        match self.token.get_or_insert_with(|| token::parse(raw)) {
            Ok(token) => Ok((token, &mut self.checked)),
            Err(e) => Err(*e),
        }
    }

    fn take_claims(&mut self) -> Option<Arc<crate::jws::claim_set::ClaimSet>> {
        match self.token.take() {
            Some(Ok(token)) => Some(token.claims),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jws::claims::ClaimError;
    use crate::{Algorithm, KeySource, Registry, User, Validator};

    fn engine_with(n: usize) -> Registry {
        let mut b = Registry::builder();
        for i in 0..n {
            b = b.validator(
                Validator::new(format!("v{i}"))
                    .issuer("i")
                    .audience("a")
                    .algorithm(Algorithm::HS256)
                    .key(KeySource::secret("thesecret-of-at-least-32-bytes!!"))
                    .user(User::fixed(1)),
            );
        }
        b.build().unwrap()
    }

    #[test]
    fn refusals_combine_into_one_answer() {
        let registry = engine_with(3);
        let e = registry.engine();
        let (a, b, c) = (&e.validators[0], &e.validators[1], &e.validators[2]);
        let expired = Failure::Claim(ClaimError::Expired);
        let down = Failure::KeysUnavailable {
            retry_after: 7,
            misconfigured: false,
        };
        type Case<'a> = (
            Vec<(&'a CompiledValidator, Failure)>,
            RejectionKind,
            &'a str,
            Option<u64>,
        );
        let cases: [Case<'_>; 5] = [
            // One reason, whoever gave it: that reason.
            (
                vec![(a, expired), (b, Failure::Missing)],
                RejectionKind::InvalidToken,
                "token expired",
                None,
            ),
            (
                vec![(a, expired), (b, expired)],
                RejectionKind::InvalidToken,
                "token expired",
                None,
            ),
            // Different reasons: a generic one (the details are in the log).
            (
                vec![(a, expired), (b, Failure::BadSignature)],
                RejectionKind::InvalidToken,
                "token refused by every validator of the chain",
                None,
            ),
            // Keys that cannot be had win: the client should retry, not give up.
            (
                vec![(a, Failure::BadSignature), (b, down), (c, expired)],
                RejectionKind::KeysUnavailable,
                down.description(),
                Some(7),
            ),
            (
                vec![(c, down)],
                RejectionKind::KeysUnavailable,
                down.description(),
                Some(7),
            ),
        ];
        for (failures, kind, description, retry) in cases {
            let r = combine(e, &failures);
            assert_eq!(
                (r.kind(), r.description(), r.retry_after()),
                (kind, description, retry)
            );
        }
    }
}
