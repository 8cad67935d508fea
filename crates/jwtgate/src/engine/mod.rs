//! The engine: one request, one chain of validators, read top to bottom in
//! [`Engine::authorize`]. Each stage has a file named for it:
//!
//! 1. [`credentials`]: the session-cookie guard, then every validator's credential, found
//!    before any is verified;
//! 2. [`walk`]: the chain walk; each credential is served from the verified-token cache or
//!    verified (a cookie-mode session is read by `cookie`), refusals combined into one answer.
//!    Every path ends in one [`Accepted`] credential, cache hits included: a check that must see
//!    every accepted credential (revocation) goes where `authorize` receives it;
//! 3. [`identify`]: the user, the partner and the cookie-mode cookie of the accepted token;
//! 4. [`require`]: the layer's scope and role requirements;
//! 5. [`browser`]: a refused navigation sent to sign in, an incomplete profile to its page;
//! 6. [`observe`]: span fields and metrics, then the identity into the request extensions.
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
mod walk;

use std::sync::Arc;

use http::HeaderValue;
use http::request::Parts;

use crate::authz::Requirement;
use crate::credentials::RequestView;
use crate::directory::{PartnerDirectory, UserDirectory};
use crate::identity::{Anonymous, Identity, Payload};
use crate::rejection::{Rejection, RejectionKind};
use crate::remote::KeyCaches;
use crate::token_cache::TokenCache;
use crate::validator::CompiledValidator;

pub use self::inspect::Verdict;

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
}

/// A credential the chain accepted: by whom, with what claims, and how it came.
pub(crate) struct Accepted<'e> {
    pub(crate) validator: &'e CompiledValidator,
    pub(crate) payload: Payload,
    /// The validator's own cookie-mode session, rather than a token from one of its sources.
    pub(crate) by_session_cookie: bool,
    /// The clock the credential was checked against (read once per request).
    pub(crate) now: u64,
}

/// What the engine decided for a request that passes.
pub(crate) enum Decision<'e> {
    Anonymous,
    Identified {
        validator: &'e CompiledValidator,
        identity: Identity,
        /// Cookie mode's cookie, to set on the response.
        set_cookie: Option<HeaderValue>,
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
            Decision::Anonymous => {
                parts.extensions.insert(Anonymous {
                    realm: self.realm.clone(),
                });
                Ok(None)
            }
            Decision::Identified {
                identity,
                set_cookie,
                ..
            } => {
                parts.extensions.insert(identity);
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
            Ok(Some(accepted)) => return self.pass(accepted, requirements, parts).await,
            Ok(None) if chain.public => return Ok(Decision::Anonymous),
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
