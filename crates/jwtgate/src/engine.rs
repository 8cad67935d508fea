//! The engine: for one request and one chain of validators, find each validator's credential,
//! verify it, combine refusals into one answer, and identify the user and partner of the
//! accepted token.
//!
//! The registry owns the engine; a layer holds the engine and the chain it starts. The engine
//! knows nothing of layers, and the verification kernel (`jws`) knows nothing of the engine.

use std::sync::Arc;

use http::request::Parts;
use http::{HeaderMap, HeaderValue, Uri};
use smallvec::SmallVec;

use crate::credentials::{Credential, RequestView};
use crate::directory::{
    LookupError, LookupErrorKind, PartnerDirectory, UserDirectory, UserKey, UserMatch, UserQuery,
    UserRecord,
};
use crate::failure::Failure;
use crate::identity::{Identity, Payload, ValidatorName};
use crate::jws::claim_set::ClaimSet;
use crate::jws::claims::{self, ClaimError};
use crate::jws::keys::CheckedSignatures;
use crate::jws::token::{self, TokenError, UnverifiedToken};
use crate::rejection::{Rejection, RejectionKind};
use crate::remote::KeyCaches;
use crate::token_cache::{TokenCache, Verified};
use crate::validator::{CompiledValidator, DirectoryUser, UserStrategy};

/// Seconds a client is asked to wait when the user directory is unreachable.
const DIRECTORY_RETRY_AFTER_SECS: u64 = 5;

/// What the engine learnt about a request.
pub(crate) enum Outcome {
    Anonymous,
    Authenticated {
        identity: Identity,
        set_cookie: Option<HeaderValue>,
    },
}

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

/// Tokens of one request, each looked up in the verified-token cache and parsed at most once
/// however many validators read it (the same token often comes from two sources: Cloudflare's
/// header and cookie), with the signatures already checked. The first token is kept inline: a
/// request rarely carries two different ones.
#[derive(Default)]
struct Parsed<'t> {
    first: Option<ParsedToken<'t>>,
    more: Vec<ParsedToken<'t>>,
}

struct ParsedToken<'t> {
    raw: &'t str,
    /// The cache's verification of this token, looked up once per request.
    remembered: Option<Arc<Verified>>,
    /// Parsed when first needed (a cache hit never parses).
    token: Option<Result<UnverifiedToken<'t>, TokenError>>,
    checked: CheckedSignatures,
}

impl<'t> Parsed<'t> {
    fn entry(&mut self, raw: &'t str, cache: &TokenCache) -> &mut ParsedToken<'t> {
        let new = || ParsedToken {
            raw,
            remembered: cache.get(raw),
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

impl<'t> ParsedToken<'t> {
    fn parsed(&mut self) -> Result<(&UnverifiedToken<'t>, &mut CheckedSignatures), TokenError> {
        let raw = self.raw;
        match self.token.get_or_insert_with(|| token::parse(raw)) {
            Ok(token) => Ok((token, &mut self.checked)),
            Err(e) => Err(*e),
        }
    }

    fn take_claims(&mut self) -> Option<Arc<ClaimSet>> {
        match self.token.take() {
            Some(Ok(token)) => Some(token.claims),
            _ => None,
        }
    }
}

impl Engine {
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

    /// Authenticates a request for `chain`. A refused browser navigation is pointed at the
    /// chain's login, when it has one.
    pub(crate) async fn authenticate(
        &self,
        chain: Chain,
        parts: &Parts,
    ) -> Result<Outcome, Rejection> {
        let mut cleared = Vec::new();
        let result = self
            .authenticate_request(chain, &parts.headers, &parts.uri, &mut cleared)
            .await;
        let rejection = match result {
            Ok(outcome) => {
                return match self.profile_redirect(parts, &outcome) {
                    Some(redirect) => Err(redirect),
                    None => Ok(outcome),
                };
            }
            Err(r) => cleared.into_iter().fold(r, Rejection::with_cookie),
        };
        #[cfg(feature = "login")]
        let rejection = self.for_browsers(chain, parts, rejection).await;
        Err(rejection)
    }

    /// Sends a browser navigation of a user whose profile is incomplete to the validator's
    /// profile page (never the page itself, never an API call), keeping the session cookie.
    fn profile_redirect(&self, parts: &Parts, outcome: &Outcome) -> Option<Rejection> {
        let Outcome::Authenticated {
            identity,
            set_cookie,
        } = outcome
        else {
            return None;
        };
        if identity
            .user_record()
            .is_none_or(|record| record.profile_complete)
        {
            return None;
        }
        let i = self.position(identity.validator().as_str())?;
        let profile_url = self.validators[i].profile_url.as_deref()?;
        if parts.uri.path() == profile_url || !crate::navigation::is_navigation(parts) {
            return None;
        }
        let next =
            crate::navigation::encode_query_value(crate::navigation::return_target(&parts.uri));
        let location = HeaderValue::try_from(format!("{profile_url}?next={next}")).ok()?;
        tracing::debug!(validator = %identity.validator(), "profile incomplete: sent to the profile page");
        let rejection = self
            .reject(
                RejectionKind::ProfileIncomplete,
                "the user's profile is incomplete",
            )
            .redirect_to(location);
        Some(
            set_cookie
                .iter()
                .cloned()
                .fold(rejection, Rejection::with_cookie),
        )
    }

    /// Points a refused navigation at the chain's first login: a redirect when no credential
    /// was sent (never on `public_or_jwt_` routes), the 401 page when one was refused.
    #[cfg(feature = "login")]
    async fn for_browsers(&self, chain: Chain, parts: &Parts, rejection: Rejection) -> Rejection {
        let sent = match rejection.kind() {
            RejectionKind::MissingCredentials if !chain.public => false,
            RejectionKind::InvalidToken
            | RejectionKind::MalformedCredentials
            | RejectionKind::SessionMismatch => true,
            _ => return rejection,
        };
        if !crate::login::is_navigation(parts) {
            return rejection;
        }
        let Some((v, login)) = self
            .chain(chain.start)
            .find_map(|v| v.login.as_ref().map(|l| (v, l)))
        else {
            return rejection;
        };
        if sent {
            return rejection.with_page();
        }
        let return_to = crate::login::return_target(&parts.uri);
        let (answer, cookies) = login.answer(v, &parts.headers, return_to).await;
        let rejection = match answer {
            crate::login::BrowserAnswer::Redirect(location) => rejection.redirect_to(location),
            crate::login::BrowserAnswer::Page => rejection.with_page(),
        };
        cookies.into_iter().fold(rejection, Rejection::with_cookie)
    }

    async fn authenticate_request(
        &self,
        chain: Chain,
        headers: &HeaderMap,
        uri: &Uri,
        cleared: &mut Vec<HeaderValue>,
    ) -> Result<Outcome, Rejection> {
        let mut view = RequestView::new(headers, uri);
        if let Some(name) = &self.session_cookie
            && view.may_carry_cookie(name)
        {
            tracing::warn!("request carries both a session cookie and a JWT route");
            return Err(self.reject(
                RejectionKind::SessionMismatch,
                "a session cookie was sent to a token-authenticated route",
            ));
        }
        // Every credential is found before any is verified: a malformed one refuses the
        // request whichever validator would have read it.
        let mut credentials: SmallVec<[_; 4]> = SmallVec::new();
        for v in self.chain(chain.start) {
            let mode_cookie = v.cookie.as_ref().map(|c| c.name.as_str());
            match view.find(&v.sources, mode_cookie) {
                Ok(found) => credentials.push((v, found)),
                Err(why) => {
                    tracing::debug!(validator = %v.name, reason = why, "malformed credentials");
                    return Err(self.reject(RejectionKind::MalformedCredentials, why));
                }
            }
        }
        let now = claims::now();
        let mut parsed = Parsed::default();
        let mut seen = false;
        let mut failures: Vec<(&CompiledValidator, Failure)> = Vec::new();
        let mut accepted = None;
        for (v, credential) in &credentials {
            let result = match credential {
                None => Err(Failure::Missing),
                Some(Credential::Token(raw)) => {
                    seen = true;
                    match v.admits(raw) {
                        Err(f) => Err(f),
                        Ok(()) => {
                            let entry = parsed.entry(raw, &self.tokens);
                            match self.cached(v, entry, now) {
                                Some(result) => result,
                                None => self.verify(v, entry, now).await,
                            }
                        }
                    }
                }
                Some(Credential::ModeCookie(raw)) => match &v.cookie {
                    Some(mode) => match mode.verify(raw, &v.cookie_rules, now) {
                        // An expired session is no credential: cleared, and a browser is sent
                        // to sign in again rather than shown an error.
                        Err(Failure::Claim(ClaimError::Expired)) => {
                            cleared.extend(mode.clear(&mode.name));
                            Err(Failure::Missing)
                        }
                        other => {
                            seen = true;
                            other.map(Payload::new)
                        }
                    },
                    None => Err(Failure::Missing),
                },
            };
            match result {
                Ok(payload) => {
                    accepted = Some((*v, payload));
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
        let Some((v, payload)) = accepted else {
            if seen {
                return Err(self.combine(&failures));
            }
            if chain.public {
                return Ok(Outcome::Anonymous);
            }
            tracing::debug!("token refused: no credentials");
            return Err(self.reject(
                RejectionKind::MissingCredentials,
                "no bearer token or cookie was sent",
            ));
        };
        self.identify(v, payload, now).await
    }

    /// `v`'s remembered verification of the token, re-checked against the clock; `None` when
    /// there is none for `v` (or its key left the set), and the token must be verified.
    fn cached(
        &self,
        v: &CompiledValidator,
        entry: &mut ParsedToken<'_>,
        now: u64,
    ) -> Option<Result<Payload, Failure>> {
        let hit = entry.remembered.as_ref()?;
        if hit.validator != v.index {
            return None;
        }
        if !v.still_has_key(hit.key) {
            self.tokens.remove(entry.raw);
            entry.remembered = None;
            return None;
        }
        Some(match v.rules.check_times(&hit.times, now) {
            Ok(()) => Ok(hit.payload.clone()),
            Err(e) => Err(Failure::Claim(e)),
        })
    }

    /// Parses (once per request) and verifies the token for `v`; a success is remembered.
    async fn verify(
        &self,
        v: &CompiledValidator,
        entry: &mut ParsedToken<'_>,
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
        self.tokens.insert(
            entry.raw,
            Verified::new(v.index, payload.clone(), key, v.rules.leeway),
        );
        Ok(payload)
    }

    /// One 401 (or 503) for every failure of the chain; the details were logged. When every
    /// validator that saw a credential refused it for the same reason, that reason is the
    /// description.
    fn combine(&self, failures: &[(&CompiledValidator, Failure)]) -> Rejection {
        let retry = failures.iter().find_map(|(_, f)| match f {
            Failure::KeysUnavailable { retry_after, .. } => Some((*retry_after, *f)),
            _ => None,
        });
        if let Some((retry_after, failure)) = retry {
            return self
                .reject(RejectionKind::KeysUnavailable, failure.description())
                .with_retry_after(retry_after);
        }
        let mut real = failures
            .iter()
            .map(|(_, f)| *f)
            .filter(|f| *f != Failure::Missing);
        let first = real.next();
        match first {
            Some(only) if real.all(|f| f == only) => {
                self.reject(RejectionKind::InvalidToken, only.description())
            }
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
        payload: Payload,
        now: u64,
    ) -> Result<Outcome, Rejection> {
        // One refusal for every way the token's user cannot be had: logged, then a 401.
        let refuse = |why: &'static str| {
            tracing::debug!(validator = %v.name, reason = why, "token refused");
            self.reject(RejectionKind::InvalidToken, why)
        };
        let no_user = || refuse("token has no usable user claim");
        let set_cookie = v
            .cookie
            .as_ref()
            .and_then(|c| c.issue(payload.claims(), now));
        let mut record: Option<Arc<UserRecord>> = None;
        let user = match &v.user {
            UserStrategy::Static(id) => id.clone(),
            UserStrategy::Claim { claim, service } => match (payload.user_id(claim), service) {
                (Some(user), _) => user,
                (None, Some(service)) if is_service_token(&payload) => {
                    if !service.allowed {
                        return Err(refuse(Failure::ServiceToken.description()));
                    }
                    payload.user_id("common_name").ok_or_else(no_user)?
                }
                (None, _) => return Err(no_user()),
            },
            UserStrategy::Resolver(resolver) => resolver
                .resolve(&payload)
                .await
                .map_err(|e| self.lookup_failed(v, "user resolver", &e))?
                .ok_or_else(|| refuse("token user is not known"))?,
            UserStrategy::Directory(d) => {
                let query = user_query(v, *d, &payload).map_err(refuse)?;
                // The registry refuses to build a directory validator without a directory.
                let Some(users) = &self.users else {
                    tracing::error!(validator = %v.name, "no user directory");
                    return Err(
                        self.reject(RejectionKind::Internal, "authentication backend error")
                    );
                };
                let found = users
                    .user(&query)
                    .await
                    .map_err(|e| self.lookup_failed(v, "user directory", &e))?;
                let found = found.ok_or_else(|| refuse("token user is not known"))?;
                let id = found.id.clone();
                record = Some(found);
                id
            }
        };
        let partner = match (v.partner_required, payload.get_str("email")) {
            (None, _) | (Some(_), None) => None,
            (Some(_), Some(email)) => {
                let found = self
                    .directory
                    .partners_by_email(email)
                    .await
                    .map_err(|e| self.lookup_failed(v, "partner directory", &e))?;
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
                record,
                realm: self.realm.clone(),
            },
            set_cookie,
        })
    }
}

impl Engine {
    /// 503 with `Retry-After` for a resolver or directory that cannot be reached, 500 for one
    /// that failed; the error goes to the log only.
    fn lookup_failed(&self, v: &CompiledValidator, what: &str, e: &LookupError) -> Rejection {
        if e.kind() == LookupErrorKind::Unavailable {
            tracing::warn!(validator = %v.name, error = %e, "{what} unavailable");
            return self
                .reject(
                    RejectionKind::DirectoryUnavailable,
                    "the user directory is unavailable",
                )
                .with_retry_after(DIRECTORY_RETRY_AFTER_SECS);
        }
        tracing::error!(validator = %v.name, error = %e, "{what} failed");
        self.reject(RejectionKind::Internal, "authentication backend error")
    }
}

/// Who a directory should look for: the verified email, the issuer and subject, or (service
/// users on) a service token's `common_name`. An email marked unverified is never used.
fn user_query<'a>(
    v: &'a CompiledValidator,
    d: DirectoryUser,
    payload: &'a Payload,
) -> Result<UserQuery<'a>, &'static str> {
    let raw_email = payload
        .get_str("email")
        .map(str::trim)
        .filter(|e| !e.is_empty());
    let unverified = payload
        .raw("email_verified")
        .is_some_and(|v| v.as_bool() == Some(false))
        || payload
            .get_str("email_verified")
            .is_some_and(|s| s.eq_ignore_ascii_case("false"));
    let email = raw_email.filter(|_| !unverified);
    let issuer = payload.get_str("iss").filter(|s| !s.is_empty());
    let subject = payload.get_str("sub").filter(|s| !s.is_empty());
    let key = match (d.matching, email, issuer, subject) {
        (UserMatch::Email, Some(email), _, _) => {
            UserKey::Email(crate::directory::normalize_email(email))
        }
        (UserMatch::Subject, _, Some(issuer), Some(subject)) => UserKey::Subject {
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
        },
        _ if raw_email.is_some() && unverified => return Err("token email is not verified"),
        _ => {
            // The same definition of a service token as the claim strategy uses.
            let service = is_service_token(payload)
                .then(|| payload.get_str("common_name"))
                .flatten();
            match service {
                Some(name) if d.service_users => UserKey::Service(name.to_owned()),
                Some(_) => return Err("service tokens are not accepted: service users are off"),
                None if d.matching == UserMatch::Subject => {
                    return Err("token has no issuer and subject");
                }
                None => return Err("token has no email"),
            }
        }
    };
    Ok(UserQuery {
        validator: &v.name,
        key,
        email,
        issuer,
        subject,
        register: d.register,
        payload,
    })
}

impl Engine {
    /// Records the outcome of one request on the current span and, with the `metrics`
    /// feature, in `jwtgate_requests_total`, `jwtgate_authentication_duration_seconds` and
    /// `jwtgate_key_set_age_seconds`.
    pub(crate) fn record(
        &self,
        chain: Chain,
        result: &Result<Outcome, Rejection>,
        elapsed: Option<std::time::Duration>,
    ) {
        let span = tracing::Span::current();
        let (validator, outcome, kind) = match result {
            Ok(Outcome::Authenticated { identity, .. }) => {
                (&identity.validator.0, "accepted", None)
            }
            Ok(Outcome::Anonymous) => (&self.validators[chain.start].name, "anonymous", None),
            Err(r) => (
                &self.validators[chain.start].name,
                "refused",
                Some(r.kind().as_str()),
            ),
        };
        span.record("validator", tracing::field::display(validator));
        span.record("outcome", tracing::field::display(kind.unwrap_or(outcome)));
        // The key-set age costs a lookup: only when a span or the metrics will read it.
        let wanted = cfg!(feature = "metrics") || !span.is_disabled();
        let age = match result {
            Ok(Outcome::Authenticated { .. }) if wanted => self.keys_age(validator),
            _ => None,
        };
        if let Some(age) = age {
            span.record("keys_age_secs", age.as_secs());
        }
        #[cfg(feature = "metrics")]
        {
            // Labels share the name (`Arc<str>`): no copy of it per request.
            let validator = metrics::SharedString::from(Arc::clone(validator));
            metrics::counter!(
                "jwtgate_requests_total",
                "validator" => validator.clone(),
                "outcome" => outcome,
                "kind" => kind.unwrap_or("none"),
            )
            .increment(1);
            if let Some(elapsed) = elapsed {
                metrics::histogram!("jwtgate_authentication_duration_seconds", "validator" => validator.clone())
                    .record(elapsed.as_secs_f64());
            }
            if let Some(age) = age {
                metrics::gauge!("jwtgate_key_set_age_seconds", "validator" => validator)
                    .set(age.as_secs_f64());
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = elapsed;
    }

    /// How old the key set of validator `name` is (remote keys only).
    fn keys_age(&self, name: &str) -> Option<std::time::Duration> {
        self.validators[self.position(name)?].keys_age()
    }
}

/// A Cloudflare Access service token: no `email`, an empty `sub`, a `common_name`.
fn is_service_token(payload: &Payload) -> bool {
    payload.raw("email").is_none()
        && payload.get_str("sub").is_some_and(str::is_empty)
        && payload
            .get_str("common_name")
            .is_some_and(|c| !c.is_empty())
}
