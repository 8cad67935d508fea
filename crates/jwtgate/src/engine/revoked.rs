//! Stage 3, revocation: every accepted credential, cache hits and cookie-mode sessions
//! included, is checked against the local mirror of the revocation store. No network round
//! trip: the store keeps the mirror current in the background. A mirror that cannot be
//! confirmed current refuses with 503 (unless the operator chose to fail open); a fault is
//! never taken for a sign-out.

use http::HeaderValue;

use super::{Accepted, Engine, Via};
use crate::rejection::{Rejection, RejectionKind};
use crate::revocation::{Probe, Revoked};

/// Why a credential the chain accepted does not pass.
pub(super) enum Refusal {
    /// Revoked: a 401, and for a session the cookie to clear (it is signed out).
    Revoked(Rejection, Option<HeaderValue>),
    /// The mirror is not known current: a 503, nothing cleared.
    Unavailable(Rejection),
}

/// Boxed: the refusal is the rare path, and two rejections side by side are large.
pub(super) fn check(engine: &Engine, accepted: &Accepted<'_>) -> Result<(), Box<Refusal>> {
    let revocation = &engine.revocation;
    let now = accepted.now;
    if !revocation.mirror.is_fresh(now, revocation.staleness_secs) {
        if revocation.fail_open {
            tracing::debug!("revocation mirror stale: accepted (fail_open)");
        } else {
            #[cfg(feature = "metrics")]
            metrics::counter!("jwtgate_revocation_unavailable_total").increment(1);
            tracing::warn!(
                validator = %accepted.validator.name,
                "revocation mirror stale: request refused"
            );
            return Err(Box::new(Refusal::Unavailable(
                engine
                    .reject(
                        RejectionKind::RevocationUnavailable,
                        "sign-outs cannot be confirmed right now",
                    )
                    .with_retry_after(revocation.staleness_secs),
            )));
        }
    }
    if revocation.mirror.is_empty() {
        return Ok(());
    }
    // A cache hit brings the probe made when it was first checked; anything else reads the
    // claims now.
    let fresh;
    let probe = match &accepted.remembered {
        Some(verified) => verified.probe(),
        None => {
            fresh = Probe::of(accepted.payload.claims());
            fresh.as_ref()
        }
    };
    // The chain checked `iss` against the validator: always there.
    let Some(probe) = probe else {
        return Ok(());
    };
    let session = accepted
        .via
        .session_id()
        .map(crate::cookie::SessionId::as_str);
    let Some(kind) = revocation.mirror.check(probe, session, now) else {
        return Ok(());
    };
    let v = accepted.validator;
    tracing::info!(validator = %v.name, kind = kind.as_str(), "credential refused: revoked");
    #[cfg(feature = "metrics")]
    metrics::counter!("jwtgate_revoked_requests_total", "kind" => kind.as_str()).increment(1);
    let description = match (&accepted.via, kind) {
        (Via::Session(_) | Via::Stored(_), _) => "the session was signed out",
        (Via::Token, Revoked::Subject | Revoked::ProviderSession) => {
            "the token's sessions were signed out"
        }
        (Via::Token, _) => "the token was revoked",
    };
    let clear = match &accepted.via {
        Via::Session(_) | Via::Stored(_) => v.cookie.as_ref().and_then(|c| c.clear(&c.name)),
        Via::Token => None,
    };
    Err(Box::new(Refusal::Revoked(
        engine.reject(RejectionKind::Revoked, description),
        clear,
    )))
}

/// Whether a session's cookie is revoked, asked before its record is read to refresh it: a
/// signed-out session is refused by [`check`] without a call to the provider.
pub(super) fn signed_out(
    engine: &Engine,
    claims: &crate::jws::claim_set::ClaimSet,
    id: &crate::cookie::SessionId,
    now: u64,
) -> bool {
    let mirror = &engine.revocation.mirror;
    !mirror.is_empty()
        && Probe::of(claims)
            .as_ref()
            .is_some_and(|probe| mirror.check(probe, Some(id.as_str()), now).is_some())
}
