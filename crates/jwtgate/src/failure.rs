//! Why one validator refused a token. Logged with the validator's name; the client only ever
//! gets the description, which names no validator and echoes nothing from the request.

use crate::jws::claims::ClaimError;
use crate::jws::key_set::KeyMiss;
use crate::jws::token::TokenError;

/// One validator's reason for refusing a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No credentials for this validator.
    Missing,
    Token(TokenError),
    Claim(ClaimError),
    AlgorithmMismatch,
    TypeNotAccepted,
    Key(KeyMiss),
    BadSignature,
    #[cfg_attr(not(feature = "remote-keys"), allow(dead_code))]
    KeysUnavailable {
        retry_after: u64,
        /// The key source is misconfigured (an OIDC issuer that its discovery document
        /// contradicts), not merely unreachable.
        misconfigured: bool,
    },
    /// A Cloudflare Access service token where the validator does not accept them.
    ServiceToken,
    /// A signed-in session cannot be read or refreshed now (its store or the provider).
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    SessionUnavailable {
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
            Self::TypeNotAccepted => "token type (typ) not accepted",
            Self::Key(KeyMiss::UnknownKid) => "token key id is unknown",
            Self::Key(KeyMiss::NoFittingKey) => "no key fits the token",
            Self::BadSignature => "token signature is invalid",
            Self::KeysUnavailable {
                misconfigured: false,
                ..
            } => "signing keys are temporarily unavailable",
            Self::KeysUnavailable {
                misconfigured: true,
                ..
            } => {
                "signing keys are unavailable: the issuer's discovery document names another issuer"
            }
            Self::ServiceToken => "service tokens are not accepted",
            Self::SessionUnavailable { .. } => {
                "the session cannot be renewed right now; try again in a moment"
            }
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

impl From<KeyMiss> for Failure {
    fn from(e: KeyMiss) -> Self {
        Self::Key(e)
    }
}
