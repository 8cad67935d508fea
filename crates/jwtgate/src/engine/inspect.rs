//! Diagnostics (`jwtgate inspect`): a token put to each validator on its own, through the same
//! stages a request goes through (checks, verification, revocation, user and partner), so that what it
//! says accepted is what a route of that validator accepts.

use std::borrow::Cow;

use http::HeaderValue;

use super::credentials::Found;
use super::{Chain, Engine, identify, revoked, walk};
use crate::credentials::Credential;

/// One validator's verdict on a token, from [`Registry::inspect`](crate::Registry::inspect).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verdict {
    validator: String,
    refusal: Option<Cow<'static, str>>,
}

impl Verdict {
    /// The validator's name.
    pub fn validator(&self) -> &str {
        &self.validator
    }

    /// Why it refused the token, as a client would be told; `None` when it accepts it.
    pub fn refusal(&self) -> Option<&str> {
        self.refusal.as_deref()
    }
}

impl Engine {
    /// Checks `token` against every validator on its own (no `next` chaining), as a bearer
    /// token from its sources.
    pub(crate) async fn inspect(&self, token: &str) -> Vec<Verdict> {
        let mut out = Vec::with_capacity(self.validators.len());
        for (start, v) in self.validators.iter().enumerate() {
            let chain = Chain {
                start,
                public: false,
            };
            let found: Found<'_, '_> = [(v, Some(Credential::Token(Cow::Borrowed(token))))]
                .into_iter()
                .collect();
            let mut cleared: Vec<HeaderValue> = Vec::new();
            let refusal = match walk::walk(self, &found, &mut cleared).await {
                Ok(Some(accepted)) => match revoked::check(self, &accepted) {
                    Err(refusal) => Some(Cow::Owned(match *refusal {
                        revoked::Refusal::Revoked(r, _) | revoked::Refusal::Unavailable(r) => {
                            r.description().to_owned()
                        }
                    })),
                    Ok(()) => match identify::identify(self, accepted).await {
                        Ok(_) => None,
                        Err(r) => Some(Cow::Owned(r.description().to_owned())),
                    },
                },
                Ok(None) => Some(Cow::Owned(
                    super::credentials::nothing_sent(self, chain)
                        .description()
                        .to_owned(),
                )),
                Err(r) => Some(Cow::Owned(r.description().to_owned())),
            };
            out.push(Verdict {
                validator: v.name.to_string(),
                refusal,
            });
        }
        out
    }
}
