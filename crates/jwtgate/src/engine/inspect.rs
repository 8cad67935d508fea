//! Diagnostics (`jwtgate inspect`): a token put to each validator on its own, through the same
//! stages a request goes through (checks, verification, revocation, user and partner), so that what it
//! says accepted is what a route of that validator accepts.

use std::borrow::Cow;

use http::HeaderValue;

use super::credentials::Found;
use super::{Chain, Engine, identify, revoked, walk};
use crate::credentials::Credential;

/// One validator's verdict on a token, from [`Registry::inspect`](crate::Registry::inspect):
/// the request's answer, and each check on its own (the signature apart from every claim), so
/// that "wrong key" and "wrong audience" are told apart whatever fails first.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verdict {
    validator: String,
    refusal: Option<Cow<'static, str>>,
    checks: Vec<Check>,
}

/// One check of a [`Verdict`]: what was checked (`signature`, `iss`, `aud`, `exp`, ...), and
/// why it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Check {
    what: &'static str,
    refusal: Option<&'static str>,
}

impl Check {
    /// What was checked: `token` (its form), `signature` (the header's algorithm and `typ`,
    /// then a key of the validator), or a claim (`sub, jti` for their types).
    pub fn what(&self) -> &str {
        self.what
    }

    /// Why it failed; `None` when it passed.
    pub fn refusal(&self) -> Option<&str> {
        self.refusal
    }
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

    /// Each check on its own: the token's form, the signature, then every claim rule, each
    /// with its own verdict (all of them, even after one failed).
    pub fn checks(&self) -> &[Check] {
        &self.checks
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
                checks: checks(v, token).await,
            });
        }
        out
    }
}

/// The form, the signature and each claim of `token` for `v`, every one checked.
async fn checks(v: &crate::validator::CompiledValidator, token: &str) -> Vec<Check> {
    let parsed = v
        .admits(token)
        .and_then(|()| crate::jws::token::parse(token).map_err(crate::failure::Failure::Token));
    let token = match parsed {
        Ok(token) => token,
        Err(f) => {
            return vec![Check {
                what: "token",
                refusal: Some(f.description()),
            }];
        }
    };
    let mut out = vec![Check {
        what: "signature",
        refusal: v
            .check_signature_only(&token)
            .await
            .err()
            .map(crate::failure::Failure::description),
    }];
    let now = crate::jws::claims::now();
    out.extend(
        v.rules
            .verdicts(&token.claims, now)
            .into_iter()
            .map(|(what, result)| Check {
                what,
                refusal: result
                    .err()
                    .map(crate::jws::claims::ClaimError::description),
            }),
    );
    out
}
