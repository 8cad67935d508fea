//! The request flow: credentials, validator chain, user, partner, cookie.

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};

use crate::claims;
use crate::cookie;
use crate::identity::{Identity, Payload, ValidatorName};
use crate::registry::RegistryInner;
use crate::rejection::{Rejection, RejectionKind};
use crate::strategy::UserStrategy;
use crate::token::{self, MAX_TOKEN_LEN};
use crate::validator::{CompiledValidator, Failure};

/// What the layer learnt about a request.
pub(crate) enum Outcome {
    Anonymous,
    Authenticated {
        identity: Identity,
        set_cookie: Option<HeaderValue>,
    },
}

impl RegistryInner {
    fn reject(&self, kind: RejectionKind, description: &'static str) -> Rejection {
        Rejection::new(kind, description, self.realm.clone())
    }

    /// Reads the bearer token: `Bearer <token>`, scheme case-insensitive (RFC 7235), exactly one
    /// space, no space in the token, one header at most.
    fn bearer<'h>(&self, headers: &'h HeaderMap) -> Result<Option<&'h str>, Rejection> {
        let malformed = |why| self.reject(RejectionKind::MalformedCredentials, why);
        let mut values = headers.get_all(AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(malformed("more than one Authorization header"));
        }
        if value.len() > MAX_TOKEN_LEN + "Bearer ".len() {
            return Err(self.reject(RejectionKind::InvalidToken, "token too large"));
        }
        let value = value
            .to_str()
            .map_err(|_| malformed("malformed Authorization header"))?;
        match value.split_once(' ') {
            Some((scheme, token))
                if scheme.eq_ignore_ascii_case("bearer")
                    && !token.is_empty()
                    && !token.contains([' ', '\t']) =>
            {
                Ok(Some(token))
            }
            _ => Err(malformed(
                "malformed Authorization header, expected: Bearer <token>",
            )),
        }
    }

    /// Authenticates a request for the chain starting at validator `start`.
    pub(crate) async fn authenticate(
        &self,
        start: usize,
        public: bool,
        headers: &HeaderMap,
    ) -> Result<Outcome, Rejection> {
        if let Some(name) = &self.session_cookie
            && cookie::find(headers, name).is_some()
        {
            tracing::warn!("request carries both a session cookie and a JWT route");
            return Err(self.reject(
                RejectionKind::SessionMismatch,
                "a session cookie was sent to a token-authenticated route",
            ));
        }
        let bearer = self.bearer(headers)?;
        // The bearer token is parsed once for the whole chain.
        let mut bearer = match bearer.map(token::parse).transpose() {
            Ok(parsed) => parsed,
            Err(e) => {
                tracing::debug!(
                    reason = e.description(),
                    "token refused before any validator"
                );
                return Err(self.reject(RejectionKind::InvalidToken, e.description()));
            }
        };
        let now = claims::now();
        let mut credentials_seen = bearer.is_some();
        let mut failures: Vec<(&CompiledValidator, Failure)> = Vec::new();
        let mut accepted = None;
        let mut at = Some(start);
        while let Some(i) = at {
            let v = &self.validators[i];
            at = v.next;
            let result = match &bearer {
                Some(token) => v.verify(token, now).await.map(|()| None),
                // Only a missing header falls back to the cookie: a header always wins.
                None => match v
                    .cookie
                    .as_ref()
                    .and_then(|c| Some((c, cookie::find(headers, &c.name)?)))
                {
                    Some((rule, value)) => {
                        credentials_seen = true;
                        v.verify_cookie(rule, value, now).map(Some)
                    }
                    None => Err(Failure::Missing),
                },
            };
            match result {
                Ok(cookie_claims) => {
                    accepted = Some((v, cookie_claims));
                    break;
                }
                Err(failure) => failures.push((v, failure)),
            }
        }
        for (v, failure) in &failures {
            if *failure != Failure::Missing {
                tracing::debug!(validator = %v.name, reason = failure.description(), "token refused");
            }
        }
        let Some((v, cookie_claims)) = accepted else {
            if credentials_seen {
                return Err(self.combine(&failures));
            }
            if public {
                return Ok(Outcome::Anonymous);
            }
            return Err(self.reject(
                RejectionKind::MissingCredentials,
                "no bearer token or cookie was sent",
            ));
        };
        let claims = match (cookie_claims, bearer.take()) {
            (Some(claims), _) => claims,
            (None, Some(token)) => token.claims,
            (None, None) => unreachable!("a validator accepted a request without credentials"),
        };
        self.identify(v, claims, now).await
    }

    /// One 401 (or 503) for every failure of the chain; the details were logged.
    fn combine(&self, failures: &[(&CompiledValidator, Failure)]) -> Rejection {
        let mut real = failures
            .iter()
            .map(|(_, f)| *f)
            .filter(|f| *f != Failure::Missing);
        let retry = failures.iter().find_map(|(_, f)| match f {
            Failure::KeysUnavailable { retry_after } => Some(*retry_after),
            _ => None,
        });
        if let Some(retry_after) = retry {
            return self
                .reject(
                    RejectionKind::KeysUnavailable,
                    Failure::KeysUnavailable { retry_after }.description(),
                )
                .retry_after(retry_after);
        }
        match (real.next(), real.next()) {
            (Some(only), None) => self.reject(RejectionKind::InvalidToken, only.description()),
            _ => self.reject(
                RejectionKind::InvalidToken,
                "token refused by every validator of the chain",
            ),
        }
    }

    /// User, partner and cookie for a token accepted by `v`.
    async fn identify(
        &self,
        v: &CompiledValidator,
        claims: serde_json::Map<String, serde_json::Value>,
        now: u64,
    ) -> Result<Outcome, Rejection> {
        let set_cookie = v.cookie.as_ref().and_then(|c| c.issue(&claims, now));
        let payload = Payload::new(claims);
        let internal = |what: &str, e: &dyn std::fmt::Display| {
            tracing::error!(validator = %v.name, error = %e, "{what} failed");
            self.reject(RejectionKind::Internal, "authentication backend error")
        };
        let user = match &v.user {
            UserStrategy::Static(id) => id.clone(),
            UserStrategy::Claim(claim) => payload
                .get(claim)
                .and_then(crate::identity::UserId::from_claim)
                .ok_or_else(|| {
                    self.reject(
                        RejectionKind::InvalidToken,
                        "token has no usable user claim",
                    )
                })?,
            UserStrategy::Resolver(resolver) => resolver
                .resolve(&payload)
                .await
                .map_err(|e| internal("user resolver", &e))?
                .ok_or_else(|| {
                    self.reject(RejectionKind::InvalidToken, "token user is not known")
                })?,
        };
        let partner = match (v.partner_required, payload.get_str("email")) {
            (None, _) => None,
            (Some(_), None) => None,
            (Some(_), Some(email)) => {
                let found = self
                    .directory
                    .partners_by_email(email)
                    .await
                    .map_err(|e| internal("partner directory", &e))?;
                match found.as_slice() {
                    [one] => Some(*one),
                    _ => None,
                }
            }
        };
        if partner.is_none() && v.partner_required == Some(true) {
            tracing::info!(validator = %v.name, "no single partner matches the token email");
            return Err(self.reject(RejectionKind::InvalidToken, "no partner matches the token"));
        }
        Ok(Outcome::Authenticated {
            identity: Identity {
                payload,
                user,
                partner,
                validator: ValidatorName(v.name.clone()),
            },
            set_cookie,
        })
    }
}
