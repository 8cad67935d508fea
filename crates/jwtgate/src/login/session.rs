//! A sign-in's session on the server: its record made at the callback, refreshed when its
//! tokens near expiry (one refresh per session at a time, across every instance), ended at
//! sign-out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::{Either, select};

use super::token_endpoint::{TokenError, Tokens};
use super::{ClientToken, OidcFlow, SignIn};
use crate::cookie::{CompiledCookieMode, StoredSession};
use crate::jws::claim_set::{ClaimSet, RawJson};
use crate::session::SessionStore;
use crate::session::record::{self, Record};

/// How long a refresh lock lasts unless renewed; it is renewed every third of that while the
/// provider answers, however long that takes (bounded by the HTTP client's timeout).
const LOCK_TTL: Duration = Duration::from_secs(6);
/// How long a request waits for another's refresh of its session.
const WAIT: Duration = Duration::from_secs(15);
/// How often a waiting request looks at the record again.
const POLL: Duration = Duration::from_millis(100);
/// How many times a refreshed record is written before giving up (the provider may have
/// rotated the refresh token: losing it ends the session at the next refresh).
const SAVE_ATTEMPTS: usize = 3;
/// A refresh that says nothing of expiry is good for this long.
const DEFAULT_LIFETIME: u64 = 300;

/// One session's refresh: whose, where it is kept, and its lock.
#[derive(Clone, Copy)]
struct Refresh<'a> {
    validator: &'a dyn SignIn,
    sessions: &'a dyn SessionStore,
    mode: &'a CompiledCookieMode,
    /// The record's store key.
    key: &'a str,
    /// The refresh lock's key, and who holds it.
    lock: &'a str,
    owner: &'a str,
    /// The cookie's `sub`, which the record must name too.
    subject: Option<&'a str>,
}

/// A stale session, resumed.
pub(crate) enum Resumed {
    /// Refreshed (by this request or another one): the new claims, fresh until the instant.
    Refreshed(Arc<ClaimSet>, u64),
    /// Another request is refreshing it and its tokens still hold: accepted as it is, with the
    /// record's claims.
    Current(Arc<ClaimSet>),
}

/// Why a stale session cannot go on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ResumeError {
    /// It is over: no record (signed out, never stored), no refresh token, or the provider
    /// refused the refresh. The browser signs in again.
    Ended,
    /// The store or the provider cannot be reached: a 503, the session kept.
    Unavailable,
}

fn instant(claims: &ClaimSet, name: &str) -> Option<u64> {
    let t = claims.get(name)?.as_f64()?;
    (t.is_finite() && t >= 0.0).then(|| t.min(u64::MAX as f64) as u64)
}

fn text(claims: &ClaimSet, name: &str) -> Option<String> {
    claims
        .get(name)
        .and_then(RawJson::as_str)
        .map(std::borrow::Cow::into_owned)
}

/// The claims of an ID token jwtgate verified before it stored it.
fn claims_of(id_token: &str) -> Option<Arc<ClaimSet>> {
    crate::jws::token::parse(id_token).ok().map(|t| t.claims)
}

impl Record {
    /// When tokens are due a refresh: a margin before the earliest expiry, or the expiry
    /// itself when the session cannot refresh; never after the session ends.
    fn freshness(
        &mut self,
        claims: &ClaimSet,
        mode: &CompiledCookieMode,
        now: u64,
        new_id_token: bool,
    ) {
        let options = &mode.sessions;
        let refreshable = options.refresh && self.refresh_token.is_some();
        let id_exp = new_id_token.then(|| instant(claims, "exp")).flatten();
        let mut at = match (id_exp, self.access_expires) {
            (Some(id), Some(access)) => id.min(access),
            (Some(t), None) | (None, Some(t)) => t,
            (None, None) => now + DEFAULT_LIFETIME,
        };
        if refreshable {
            let issued = instant(claims, "iat")
                .filter(|_| new_id_token)
                .unwrap_or(now);
            at = options.refresh_at(issued.min(now), at);
        }
        self.fresh_until = at.min(self.ends);
    }
}

impl OidcFlow {
    /// The record of a new sign-in: the code exchange's tokens and the ID token's verified
    /// claims.
    pub(super) fn record(
        tokens: Tokens,
        id_token: String,
        claims: &ClaimSet,
        mode: &CompiledCookieMode,
        now: u64,
    ) -> Record {
        let mut record = Record {
            subject: text(claims, "sub").unwrap_or_default(),
            sid: text(claims, "sid"),
            id_token,
            access_expires: tokens
                .access_token
                .as_ref()
                .and(tokens.expires_in)
                .map(|s| now.saturating_add(s)),
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            created: now,
            last_seen: now,
            // The cookie's own max age caps it too.
            ends: now.saturating_add(mode.sessions.absolute_timeout.min(mode.max_age()).as_secs()),
            fresh_until: now,
        };
        record.freshness(claims, mode, now, true);
        record
    }

    /// Resumes a session whose cookie is no longer fresh.
    pub(super) async fn resume(
        &self,
        validator: &dyn SignIn,
        sessions: &dyn SessionStore,
        claims: &ClaimSet,
        session: &StoredSession,
        now: u64,
    ) -> Result<Resumed, ResumeError> {
        let mode = validator.cookie_mode().ok_or(ResumeError::Ended)?;
        let key = record::key(validator.name(), session.id.as_str());
        let lock = format!("{key}/refresh");
        let owner = super::random_token().ok_or(ResumeError::Unavailable)?;
        let subject = text(claims, "sub");
        let deadline = Instant::now() + WAIT;
        loop {
            let record = load(sessions, mode, &key, subject.as_deref()).await?;
            if let Some(resumed) = refreshed(&record, now) {
                return Ok(resumed);
            }
            if record.refresh_token.is_none() || !mode.sessions.refresh {
                return Err(ResumeError::Ended);
            }
            match sessions.lock(&lock, &owner, LOCK_TTL).await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(validator = %validator.name(), error = %e, "session refresh lock unavailable");
                    return Err(ResumeError::Unavailable);
                }
            }
            // Another request refreshes it; while its tokens hold, no need to wait.
            let at = crate::jws::claims::now();
            if holds(&record, at)
                && let Some(claims) = claims_of(&record.id_token)
            {
                return Ok(Resumed::Current(claims));
            }
            if Instant::now() >= deadline {
                tracing::warn!(validator = %validator.name(), "session refresh by another request did not finish");
                return Err(ResumeError::Unavailable);
            }
            tokio::time::sleep(POLL).await;
        }
        let refresh = Refresh {
            validator,
            sessions,
            mode,
            key: &key,
            lock: &lock,
            owner: &owner,
            subject: subject.as_deref(),
        };
        let result = self.refresh_locked(&refresh, now).await;
        if let Err(e) = sessions.unlock(&lock, &owner).await {
            // It lapses by itself within the lock's lifetime.
            tracing::debug!(error = %e, "session refresh lock not released");
        }
        result
    }

    /// The refresh, under the session's lock.
    async fn refresh_locked(&self, r: &Refresh<'_>, now: u64) -> Result<Resumed, ResumeError> {
        let Refresh {
            validator,
            sessions,
            mode,
            key,
            lock,
            owner,
            subject,
        } = *r;
        let name = validator.name();
        // Read again: a refresh may have finished between the first read and the lock.
        let mut record = load(sessions, mode, key, subject).await?;
        if let Some(resumed) = refreshed(&record, now) {
            return Ok(resumed);
        }
        let Some(refresh_token) = record.refresh_token.clone() else {
            return Err(ResumeError::Ended);
        };
        let call = std::pin::pin!(self.refresh(&refresh_token));
        let keep_alive = std::pin::pin!(async {
            loop {
                tokio::time::sleep(LOCK_TTL / 3).await;
                match sessions.lock(lock, owner, LOCK_TTL).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(validator = %name, "session refresh lock lost"),
                    Err(e) => {
                        tracing::warn!(validator = %name, error = %e, "session refresh lock not renewed");
                    }
                }
            }
        });
        let tokens = match select(call, keep_alive).await {
            Either::Left((tokens, _)) => tokens,
            Either::Right(((), _)) => return Err(ResumeError::Unavailable),
        };
        let tokens = match tokens {
            Ok(tokens) => tokens,
            Err(TokenError::Refused(why)) => {
                tracing::info!(validator = %name, reason = %why, "session refresh refused by the provider: session ended");
                if let Err(e) = sessions.remove(key).await {
                    tracing::warn!(validator = %name, error = %e, "ended session's record not removed");
                }
                return Err(ResumeError::Ended);
            }
            Err(TokenError::Unavailable(why)) => {
                tracing::warn!(validator = %name, error = %why, "session refresh failed");
                return Err(ResumeError::Unavailable);
            }
        };
        let old = claims_of(&record.id_token).ok_or(ResumeError::Ended)?;
        let at = crate::jws::claims::now();
        let claims = match &tokens.id_token {
            Some(raw) => {
                let new = validator
                    .verify_client_token(raw, &self.client_id, ClientToken::Id)
                    .await
                    .map_err(|f| {
                        tracing::warn!(validator = %name, reason = f.description(), "refreshed ID token refused");
                        match f {
                            crate::failure::Failure::KeysUnavailable { .. } => {
                                ResumeError::Unavailable
                            }
                            _ => ResumeError::Ended,
                        }
                    })?;
                // OIDC Core 12.2: the same issuer and subject; a nonce, if any, the first one.
                let same = |claim| text(&new, claim) == text(&old, claim);
                if !same("iss") || !same("sub") || (new.get("nonce").is_some() && !same("nonce")) {
                    tracing::warn!(validator = %name, "refreshed ID token is for another sign-in: session ended");
                    let _ = sessions.remove(key).await;
                    return Err(ResumeError::Ended);
                }
                new
            }
            None => old,
        };
        let new_id_token = tokens.id_token.is_some();
        if let Some(id_token) = tokens.id_token {
            record.id_token = id_token;
        }
        if let Some(access) = tokens.access_token {
            record.access_expires = tokens.expires_in.map(|s| at.saturating_add(s));
            record.access_token = Some(access);
        }
        // A rotated refresh token replaces the old one; the record is written once, whole.
        if let Some(rotated) = tokens.refresh_token {
            record.refresh_token = Some(rotated);
        }
        record.last_seen = at;
        record.freshness(&claims, mode, at, new_id_token);
        let sealed = mode
            .sealer
            .seal(key, &record)
            .ok_or(ResumeError::Unavailable)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match sessions.save(key, &sealed, record.ends).await {
                Ok(()) => break,
                Err(e) if attempt < SAVE_ATTEMPTS => {
                    tracing::warn!(validator = %name, error = %e, "refreshed session not written; again");
                    tokio::time::sleep(POLL).await;
                }
                Err(e) => {
                    tracing::error!(validator = %name, error = %e, "refreshed session not written");
                    return Err(ResumeError::Unavailable);
                }
            }
        }
        tracing::debug!(validator = %name, "session refreshed");
        Ok(Resumed::Refreshed(claims, record.fresh_until))
    }
}

/// The session's record, opened; `Ended` when there is none (or it is not one this validator
/// sealed, or for another subject), `Unavailable` when the store cannot say.
pub(super) async fn load(
    sessions: &dyn SessionStore,
    mode: &CompiledCookieMode,
    key: &str,
    subject: Option<&str>,
) -> Result<Record, ResumeError> {
    let sealed = sessions.load(key).await.map_err(|e| {
        tracing::warn!(error = %e, "session store unavailable");
        ResumeError::Unavailable
    })?;
    let Some(sealed) = sealed else {
        return Err(ResumeError::Ended);
    };
    let Some(record) = mode.sealer.open(key, &sealed) else {
        tracing::warn!(
            "a session record does not open (another secret, or altered): session ended"
        );
        return Err(ResumeError::Ended);
    };
    if subject.is_some_and(|s| s != record.subject) {
        return Err(ResumeError::Ended);
    }
    Ok(record)
}

/// The record's claims when another request has refreshed it since the cookie was made.
fn refreshed(record: &Record, now: u64) -> Option<Resumed> {
    if record.fresh_until <= now {
        return None;
    }
    let claims = claims_of(&record.id_token)?;
    Some(Resumed::Refreshed(claims, record.fresh_until))
}

/// Whether the record's tokens are still valid at `now` (if not fresh).
fn holds(record: &Record, now: u64) -> bool {
    let id_exp = claims_of(&record.id_token).and_then(|c| instant(&c, "exp"));
    id_exp.is_some_and(|e| e > now) && record.access_expires.is_none_or(|e| e > now)
}

impl OidcFlow {
    /// The record's claims of a fresh session whose cookie carries only the registered ones.
    pub(super) async fn full_claims(
        &self,
        validator: &dyn SignIn,
        sessions: &dyn SessionStore,
        session: &StoredSession,
        fresh_until: u64,
    ) -> Result<Arc<ClaimSet>, ResumeError> {
        let mode = validator.cookie_mode().ok_or(ResumeError::Ended)?;
        let key = record::key(validator.name(), session.id.as_str());
        if let Some((at, claims)) = self.full_claims.get(&key)
            && at == fresh_until
        {
            return Ok(claims);
        }
        let record = load(sessions, mode, &key, None).await?;
        let claims = claims_of(&record.id_token).ok_or(ResumeError::Ended)?;
        self.full_claims
            .insert(key, (record.fresh_until, claims.clone()));
        Ok(claims)
    }

    /// Ends session `id` at sign-out (after its revocation): the refresh token revoked at the
    /// provider (RFC 7009) when it has an endpoint for it, the record removed; the ID token,
    /// for the provider's logout (`id_token_hint`). Failures are logged: the session is
    /// already revoked.
    pub(super) async fn end(
        &self,
        validator: &dyn SignIn,
        sessions: &dyn SessionStore,
        id: &crate::cookie::SessionId,
    ) -> Option<String> {
        let name = validator.name();
        let mode = validator.cookie_mode()?;
        let key = record::key(name, id.as_str());
        let record = load(sessions, mode, &key, None).await.ok()?;
        if let Some(refresh_token) = &record.refresh_token {
            match self.revoke(refresh_token).await {
                Ok(true) => tracing::debug!(validator = %name, "refresh token revoked"),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(validator = %name, error = %e, "refresh token not revoked at the provider");
                }
            }
        }
        if let Err(e) = sessions.remove(&key).await {
            tracing::warn!(validator = %name, error = %e, "signed-out session's record not removed");
        }
        self.full_claims.invalidate(&key);
        Some(record.id_token)
    }
}
