//! The engine: one request, one chain of validators, read top to bottom in
//! [`Engine::authorize`]. Each stage has a file named for it:
//!
//! 1. [`credentials`]: the session-cookie guard, then every validator's credential, found
//!    before any is verified;
//! 2. [`walk`]: the chain walk; each credential is served from the verified-token cache or
//!    verified (a cookie-mode session is read by `cookie`), refusals combined into one answer.
//!    Every path ends in one [`Accepted`] credential, cache hits included;
//! 3. [`revoked`]: the accepted credential against the revocation mirror (no network);
//! 4. [`identify`]: the user, the partner and the cookie-mode cookie of the accepted token;
//! 5. [`require`]: the layer's scope and role requirements;
//! 6. [`browser`]: a refused navigation sent to sign in, an incomplete profile to its page;
//! 7. [`observe`]: span fields and metrics, then the identity into the request extensions.
//!
//! The registry owns the engine; a layer holds the engine and the chain it starts and asks it
//! once per request. The engine knows nothing of layers, and the verification kernel (`jws`)
//! knows nothing of the engine.

mod browser;
mod credentials;
mod identify;
mod inspect;
mod observe;
mod require;
mod revoked;
mod walk;

use std::sync::Arc;

use http::HeaderValue;
use http::request::Parts;

use crate::authz::Requirement;
pub(crate) use crate::cookie::Via;
use crate::credentials::RequestView;
use crate::directory::{PartnerDirectory, UserDirectory};
use crate::identity::{Anonymous, Identity, Payload};
use crate::rejection::{Rejection, RejectionKind};
use crate::remote::KeyCaches;
use crate::revocation::{Mirror, Revoker};
use crate::token_cache::{TokenCache, Verified};
use crate::validator::CompiledValidator;

#[cfg(all(feature = "login", feature = "forward-auth"))]
pub(crate) use self::browser::login_path;
pub use self::inspect::{Check, Verdict};

/// A chain of validators: where it starts, and whether anonymous requests pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Chain {
    pub(crate) start: usize,
    pub(crate) public: bool,
}

/// Every validator of an application, and what they share.
pub(crate) struct Engine {
    pub(crate) realm: Arc<str>,
    pub(crate) validators: Vec<CompiledValidator>,
    pub(crate) session_cookie: Option<String>,
    pub(crate) directory: Arc<dyn PartnerDirectory>,
    pub(crate) users: Option<Arc<dyn UserDirectory>>,
    #[cfg_attr(not(feature = "remote-keys"), allow(dead_code))]
    pub(crate) caches: KeyCaches,
    /// Tokens already verified, and by which validator.
    pub(crate) tokens: TokenCache,
    /// What every accepted credential is checked against.
    pub(crate) revocation: RevocationCheck,
    /// Writes revocations (sign-outs, the back-channel logout).
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) revoker: Revoker,
    /// Where sign-ins' session records live.
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) sessions: Arc<dyn crate::session::SessionStore>,
}

/// The revocation mirror and how a stale one is answered.
pub(crate) struct RevocationCheck {
    pub(crate) mirror: Mirror,
    pub(crate) staleness_secs: u64,
    pub(crate) fail_open: bool,
    /// The store's name, for `/healthz`.
    pub(crate) store: &'static str,
}

impl Drop for Engine {
    // The store's follower stops with the registry.
    fn drop(&mut self) {
        self.revocation.mirror.close();
    }
}

/// A credential the chain accepted: by whom, with what claims, and how it came.
pub(crate) struct Accepted<'e> {
    pub(crate) validator: &'e CompiledValidator,
    pub(crate) payload: Payload,
    /// A token from one of the validator's sources, or its own cookie-mode session.
    pub(crate) via: Via,
    /// The verified-token cache's entry, on a hit (it keeps what revocation looks up).
    pub(crate) remembered: Option<Arc<Verified>>,
    /// The clock the credential was checked against (read once per request).
    pub(crate) now: u64,
}

/// What the engine decided for a request that passes.
pub(crate) enum Decision<'e> {
    /// No credential (on a `public_or_jwt_` route); a session that ended is cleared.
    Anonymous { clear: Option<HeaderValue> },
    Identified {
        validator: &'e CompiledValidator,
        identity: Identity,
        /// Cookie mode's cookie, to set on the response.
        set_cookie: Option<HeaderValue>,
        /// A sign-in's session: how its tokens are read, if a handler asks.
        session: Option<crate::session::SessionTokens>,
    },
}

impl Engine {
    /// Decides one request for `chain` and the layer's `requirements`: on success the
    /// [`Identity`] (or [`Anonymous`]) is in `parts`' extensions and the cookie to set, if any,
    /// is returned; on refusal the complete [`Rejection`], browser answers included.
    pub(crate) async fn authorize(
        &self,
        chain: Chain,
        requirements: &[Requirement],
        parts: &mut Parts,
    ) -> Result<Option<HeaderValue>, Rejection> {
        // Timed only for the duration histogram (two clock reads per request otherwise).
        let started = cfg!(feature = "metrics").then(std::time::Instant::now);
        let decision = self.decide(chain, requirements, parts).await;
        observe::record(self, chain, &decision, started.map(|s| s.elapsed()));
        match decision? {
            Decision::Anonymous { clear } => {
                parts.extensions.insert(Anonymous {
                    realm: self.realm.clone(),
                });
                Ok(clear)
            }
            Decision::Identified {
                identity,
                set_cookie,
                session,
                ..
            } => {
                parts.extensions.insert(identity);
                if let Some(session) = session {
                    parts.extensions.insert(session);
                }
                Ok(set_cookie)
            }
        }
    }

    /// The stages, in order.
    async fn decide(
        &self,
        chain: Chain,
        requirements: &[Requirement],
        parts: &Parts,
    ) -> Result<Decision<'_>, Rejection> {
        let mut view = RequestView::new(&parts.headers, &parts.uri);
        let mut cleared = Vec::new();
        let walked = match credentials::find(self, chain, &mut view) {
            Ok(found) => walk::walk(self, &found, &mut cleared).await,
            Err((kind, why)) => Err(self.reject(kind, why)),
        };
        let refused = match walked {
            Ok(Some(accepted)) => match revoked::check(self, &accepted).map_err(|r| *r) {
                Ok(()) => return self.pass(accepted, requirements, parts).await,
                Err(revoked::Refusal::Unavailable(rejection)) => return Err(rejection),
                // A signed-out session ends like an expired one: cleared, then anonymous on a
                // public route, sent to sign in elsewhere. A revoked token is refused.
                Err(revoked::Refusal::Revoked(_, Some(clear))) if chain.public => {
                    return Ok(Decision::Anonymous { clear: Some(clear) });
                }
                Err(revoked::Refusal::Revoked(rejection, clear)) => {
                    cleared.extend(clear);
                    rejection
                }
            },
            Ok(None) if chain.public => {
                return Ok(Decision::Anonymous {
                    clear: cleared.pop(),
                });
            }
            Ok(None) => {
                tracing::debug!("token refused: no credentials");
                credentials::nothing_sent(self, chain)
            }
            Err(refused) => refused,
        };
        let refused = cleared.into_iter().fold(refused, Rejection::with_cookie);
        Err(browser::refused(self, chain, parts, refused).await)
    }

    /// The stages after acceptance. Every accepted credential passes here, cache hits and
    /// cookie-mode sessions included.
    async fn pass<'e>(
        &'e self,
        accepted: Accepted<'e>,
        requirements: &[Requirement],
        parts: &Parts,
    ) -> Result<Decision<'e>, Rejection> {
        let decision = identify::identify(self, accepted).await?;
        if !requirements.is_empty() {
            require::check(self, requirements, &decision).await?;
        }
        match browser::profile_redirect(self, parts, &decision) {
            Some(redirect) => Err(redirect),
            None => Ok(decision),
        }
    }

    pub(crate) fn reject(&self, kind: RejectionKind, description: &'static str) -> Rejection {
        Rejection::new(kind, description, self.realm.clone())
    }

    /// The index of the validator named `name`.
    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.validators.iter().position(|v| &*v.name == name)
    }

    /// The validators of the chain starting at `start`, in order.
    fn chain(&self, start: usize) -> impl Iterator<Item = &CompiledValidator> {
        std::iter::successors(Some(&self.validators[start]), |v| {
            v.next.map(|i| &self.validators[i])
        })
    }
}
