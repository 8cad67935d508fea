//! A validator checked, with its keys parsed (or its shared remote cache found), ready to
//! verify tokens.

use std::sync::Arc;

use super::{DEFAULT_MAX_LEEWAY, UserStrategy, Validator};
use crate::cookie::CompiledCookieMode;
use crate::credentials::{CompiledSource, TokenSource};
use crate::error::{Error, ErrorKind};
use crate::failure::Failure;
use crate::jws::algorithm::Algorithm;
use crate::jws::claim_set::ClaimSet;
use crate::jws::claims::ClaimRules;
use crate::jws::issuer_pattern::IssuerPattern;
use crate::jws::jwk::parse_jwks;
use crate::jws::key::{KeyId, VerifyingKey};
use crate::jws::key_set::{CheckedSignatures, KeySet};
use crate::jws::token::{
    DEFAULT_MAX_TOKEN_BYTES, MAX_TOKEN_BYTES_LIMIT, ShortText, TokenError, UnverifiedToken,
};
use crate::key_source::Repr;
use crate::remote::KeyCaches;
#[cfg(feature = "remote-keys")]
use crate::remote::RemoteKeys;

/// Where a compiled validator gets its keys.
pub(crate) enum Keys {
    Static(Arc<KeySet>),
    #[cfg(feature = "remote-keys")]
    Remote(Arc<RemoteKeys>),
    /// Each accepted issuer's own set, through its discovery.
    #[cfg(feature = "remote-keys")]
    PerIssuer(Arc<crate::remote::IssuerKeys>),
}

/// A validator ready to check tokens.
pub(crate) struct CompiledValidator {
    pub(crate) name: Arc<str>,
    pub(crate) algorithm: Algorithm,
    pub(crate) rules: ClaimRules,
    pub(crate) keys: Keys,
    pub(crate) user: UserStrategy,
    pub(crate) partner_required: Option<bool>,
    /// Where browsers of users with an incomplete profile are sent (a local path).
    pub(crate) profile_url: Option<Arc<str>>,
    /// This validator's place in the registry, set by the registry.
    pub(crate) index: usize,
    /// The validator to try next, linked by the registry.
    pub(crate) next: Option<usize>,
    pub(crate) cookie: Option<CompiledCookieMode>,
    pub(crate) sources: Vec<CompiledSource>,
    /// Accepted `typ` values, normalised (lowercase, without `application/`).
    pub(crate) typ: Option<Vec<String>>,
    pub(crate) max_token_bytes: usize,
    /// The rules a cookie-mode cookie is checked with: the validator's, plus the OIDC login's
    /// client id as an audience (the session of a browser sign-in holds the ID token's claims).
    pub(crate) cookie_rules: ClaimRules,
    #[cfg(feature = "login")]
    pub(crate) login: Option<crate::login::CompiledLogin>,
}

/// Keys that cannot be had now, as the refusal says it.
#[cfg(feature = "remote-keys")]
fn unavailable(u: crate::remote::Unavailable) -> Failure {
    Failure::KeysUnavailable {
        retry_after: u.retry_after,
        misconfigured: u.misconfigured,
    }
}

/// The token's `iss`, as a string.
#[cfg(feature = "remote-keys")]
fn issuer_of(claims: &ClaimSet) -> Option<std::borrow::Cow<'_, str>> {
    claims
        .registered(crate::jws::claim_set::Registered::Iss)?
        .as_str()
}

/// A path on this site without query or fragment (the profile page is compared by path).
fn is_local_path(path: &str) -> bool {
    crate::navigation::safe_path(path).is_some() && !path.contains(['?', '#'])
}

/// Which `typ` rule a token's header is held to.
#[derive(Clone, Copy)]
enum Typ {
    /// The validator's accepted types (any `typ` when it sets none).
    Validator,
    /// A back-channel logout token's: absent, `logout+jwt` or `JWT`.
    #[cfg(feature = "login")]
    Logout,
}

/// `typ` compared as RFC 7515 4.1.9 asks: case-insensitively, `application/` optional.
fn normalise_typ(typ: &str) -> String {
    without_media_prefix(typ).to_ascii_lowercase()
}

/// `typ` without a leading `application/` (in any case).
fn without_media_prefix(typ: &str) -> &str {
    match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    }
}

impl CompiledValidator {
    /// Refuses a raw token longer than this validator accepts, before it is parsed.
    pub(crate) fn admits(&self, raw: &str) -> Result<(), Failure> {
        if raw.len() > self.max_token_bytes {
            return Err(Failure::Token(TokenError::TooLarge));
        }
        Ok(())
    }

    /// How old the served key set is, for remote keys.
    pub(crate) fn keys_age(&self) -> Option<std::time::Duration> {
        match &self.keys {
            Keys::Static(_) => None,
            #[cfg(feature = "remote-keys")]
            Keys::Remote(remote) => remote.age(),
            #[cfg(feature = "remote-keys")]
            Keys::PerIssuer(_) => None,
        }
    }

    /// Verifies a token the provider issued to the login's client `client_id`, for `kind`:
    /// this validator's issuer, algorithm and keys, the client id as audience (and, for an ID
    /// token, as authorized party); its claims. A logout token's `typ` may be absent,
    /// `logout+jwt` or `JWT` (Keycloak's), never the validator's own accepted types (an access
    /// token is no logout token); the logout-specific claims are the caller's.
    #[cfg(feature = "login")]
    pub(crate) async fn verify_client_token(
        &self,
        raw: &str,
        client_id: &str,
        kind: crate::login::ClientToken,
    ) -> Result<Arc<crate::jws::claim_set::ClaimSet>, Failure> {
        use crate::login::ClientToken;
        self.admits(raw)?;
        let token = crate::jws::token::parse(raw)?;
        let (typ, authorized_party) = match kind {
            ClientToken::Id => (Typ::Validator, Some(client_id.to_owned())),
            ClientToken::Logout => (Typ::Logout, None),
        };
        self.check_header(&token, typ)?;
        let rules = ClaimRules {
            audiences: vec![client_id.to_owned()],
            authorized_party,
            ..self.rules.clone()
        };
        let mut checked = CheckedSignatures::default();
        self.verify_signed(&token, crate::jws::claims::now(), &rules, &mut checked)
            .await?;
        Ok(token.claims)
    }

    /// Verifies a parsed token: pinned algorithm, `typ`, key, signature, then claims; the key
    /// that verified it. `checked` holds the signatures of this token already checked.
    pub(crate) async fn verify(
        &self,
        token: &UnverifiedToken<'_>,
        now: u64,
        checked: &mut CheckedSignatures,
    ) -> Result<KeyId, Failure> {
        self.check_header(token, Typ::Validator)?;
        self.verify_signed(token, now, &self.rules, checked).await
    }

    /// Whether this validator's keys come from `cache`.
    #[cfg(feature = "remote-keys")]
    pub(crate) fn reads_keys_of(&self, cache: &Arc<crate::remote::RemoteKeys>) -> bool {
        matches!(&self.keys, Keys::Remote(remote) if Arc::ptr_eq(remote, cache))
    }

    /// Whether key `id` is still in the key set of this validator (for per-issuer keys, of
    /// the issuer of `claims`); never fetches.
    #[cfg_attr(not(feature = "remote-keys"), allow(unused_variables))]
    pub(crate) fn still_has_key(&self, id: KeyId, claims: &ClaimSet) -> bool {
        match &self.keys {
            Keys::Static(set) => set.contains(id),
            #[cfg(feature = "remote-keys")]
            Keys::Remote(remote) => remote.serves(id),
            #[cfg(feature = "remote-keys")]
            Keys::PerIssuer(per) => issuer_of(claims).is_some_and(|iss| per.serves(&iss, id)),
        }
    }

    /// The header and the signature of `token` for this validator, its claims left unread
    /// (`jwtgate inspect` reports the signature apart from each claim).
    pub(crate) async fn check_signature_only(
        &self,
        token: &UnverifiedToken<'_>,
    ) -> Result<KeyId, Failure> {
        self.check_header(token, Typ::Validator)?;
        self.verify_signature(token, &mut CheckedSignatures::default())
            .await
    }

    /// The pinned algorithm first, then `typ` (the order refusals have always been given in).
    fn check_header(&self, token: &UnverifiedToken<'_>, typ: Typ) -> Result<(), Failure> {
        if token.alg.as_str() != self.algorithm.as_str() {
            return Err(Failure::AlgorithmMismatch);
        }
        let typ_of = token.typ.as_ref().map(|t| without_media_prefix(t.as_str()));
        let accepted = match typ {
            Typ::Validator => self.typ.as_ref().is_none_or(|ok| {
                typ_of.is_some_and(|t| ok.iter().any(|a| a.eq_ignore_ascii_case(t)))
            }),
            #[cfg(feature = "login")]
            Typ::Logout => typ_of.is_none_or(|t| {
                t.eq_ignore_ascii_case("logout+jwt") || t.eq_ignore_ascii_case("jwt")
            }),
        };
        if accepted {
            Ok(())
        } else {
            Err(Failure::TypeNotAccepted)
        }
    }

    /// The claims (static, then the clock), then key and signature (the header was checked
    /// first).
    async fn verify_signed(
        &self,
        token: &UnverifiedToken<'_>,
        now: u64,
        rules: &ClaimRules,
        checked: &mut CheckedSignatures,
    ) -> Result<KeyId, Failure> {
        // Issuer, audience, party and claim types do not depend on the signature: a validator
        // that cannot accept the token finds out before it fetches keys or verifies anything
        // (a chain verifies only where it could accept, and a token for another issuer never
        // causes a key fetch). Nothing is trusted until the signature below holds.
        //
        // The clock too, before the signature: every claim's verdict is then the same whether
        // the signature holds or not, so no refusal tells a sender that a signature it made up
        // was valid ("token expired" only for a good signature would). The one answer that
        // depends on the signature is "token signature is invalid" against acceptance.
        rules.check_static(&token.claims)?;
        rules.check_time(&token.claims, now)?;
        self.verify_signature(token, checked).await
    }

    /// The key of this validator that signed `token`, its claims left unread (`jwtgate
    /// inspect` reports the signature apart from the claims).
    pub(crate) async fn verify_signature(
        &self,
        token: &UnverifiedToken<'_>,
        checked: &mut CheckedSignatures,
    ) -> Result<KeyId, Failure> {
        let kid = token.kid.as_ref().map(ShortText::as_str);
        let keys = match &self.keys {
            Keys::Static(set) => Arc::clone(set),
            #[cfg(feature = "remote-keys")]
            Keys::Remote(remote) => remote.keys_for(kid).await.map_err(unavailable)?,
            #[cfg(feature = "remote-keys")]
            Keys::PerIssuer(per) => {
                // Only an issuer the validator accepts may make a cache (and a fetch): checked
                // here, where the cache is made, since not every caller checks the claims
                // first (`jwtgate inspect` checks the signature apart from them).
                self.rules
                    .check_iss(&token.claims)
                    .map_err(Failure::Claim)?;
                let iss = issuer_of(&token.claims)
                    .ok_or(Failure::Claim(crate::jws::claims::ClaimError::MissingIss))?;
                let cache = per.for_issuer(&iss).map_err(unavailable)?;
                cache.keys_for(kid).await.map_err(unavailable)?
            }
        };
        let candidates = keys.select(kid, self.algorithm)?;
        let input = token.signing_input.as_bytes();
        let key = token
            .with_signature(|signature| {
                KeySet::verify(candidates, self.algorithm, input, signature, checked)
            })?
            .ok_or(Failure::BadSignature)?;
        Ok(key)
    }
}

#[cfg(feature = "login")]
impl crate::login::SignIn for CompiledValidator {
    fn name(&self) -> &str {
        &self.name
    }

    fn cookie_mode(&self) -> Option<&CompiledCookieMode> {
        self.cookie.as_ref()
    }

    fn verify_client_token<'a>(
        &'a self,
        raw: &'a str,
        client_id: &'a str,
        kind: crate::login::ClientToken,
    ) -> crate::directory::BoxFuture<'a, Result<Arc<crate::jws::claim_set::ClaimSet>, Failure>>
    {
        Box::pin(Self::verify_client_token(self, raw, client_id, kind))
    }

    fn read_session(&self, value: &str) -> Option<crate::cookie::VerifiedSession> {
        let mode = self.cookie.as_ref()?;
        mode.verify(value, &self.cookie_rules, crate::jws::claims::now())
            .ok()
    }
}

/// Reads a file for a validator's key, naming the file in the error.
fn read_key_file(path: &std::path::Path, field: &'static str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| {
        Error::new(
            ErrorKind::InvalidKey,
            format!("cannot read {}: {e}", path.display()),
        )
        .in_field(field)
        .with_source(e)
    })
}

impl Validator {
    /// Checks every setting (the preset's filling what is unset), parses static keys and finds
    /// (or adds) the remote key cache. `next` is linked by the registry.
    pub(crate) fn compile(&self, caches: &mut KeyCaches) -> Result<CompiledValidator, Error> {
        let missing = |field: &'static str, what: &str| {
            Error::new(ErrorKind::InvalidSetting, format!("{what} is required")).in_field(field)
        };
        let invalid = |field: &'static str, what: String| {
            Error::new(ErrorKind::InvalidSetting, what).in_field(field)
        };
        let preset = self
            .preset
            .as_ref()
            .map(|p| p.defaults().map_err(|e| e.in_field("provider")))
            .transpose()?;
        let named = match (self.issuers.is_empty(), &preset) {
            (false, _) => self.issuers.clone(),
            (true, Some(p)) => p.issuers.clone(),
            (true, None) => Vec::new(),
        };
        if named.is_empty() || named.iter().any(String::is_empty) {
            return Err(missing("issuer", "issuer"));
        }
        // Exact issuers, and patterns with one `{tenant}` (a provider's tenants must also name
        // themselves in the preset's tenant claim, Entra's `tid`).
        let tenant_claim = preset.as_ref().and_then(|p| p.tenant_claim.as_deref());
        let field = if named.len() == 1 {
            "issuer"
        } else {
            "issuers"
        };
        let mut issuers = Vec::new();
        let mut issuer_patterns = Vec::new();
        for text in named {
            match IssuerPattern::parse(&text) {
                None => issuers.push(text),
                Some(Ok(p)) => issuer_patterns.push(match tenant_claim {
                    Some(claim) => p.with_tenant_claim(claim),
                    None => p,
                }),
                Some(Err(e)) => return Err(invalid(field, e)),
            }
        }
        let audiences = match &preset {
            Some(p) if self.audiences.is_empty() => p.audiences.clone(),
            _ => self.audiences.clone(),
        };
        if audiences.iter().any(String::is_empty) {
            return Err(invalid("audience", "an audience must not be empty".into()));
        }
        let authorized_party = self
            .authorized_party
            .clone()
            .or_else(|| preset.as_ref().and_then(|p| p.authorized_party.clone()));
        if authorized_party.as_deref() == Some("") {
            return Err(invalid(
                "authorized_party",
                "the authorized party must not be empty".into(),
            ));
        }
        if audiences.is_empty() && authorized_party.is_none() {
            return Err(missing(
                "audience",
                "an audience or an authorized_party (or both; never neither)",
            ));
        }
        let algorithm = self
            .algorithm
            .or(preset.as_ref().map(|p| p.algorithm))
            .ok_or_else(|| missing("algorithm", "algorithm"))?;
        let (user, profile_url) = match (&self.user, &preset) {
            (Some(u), _) => (u.strategy.clone(), u.profile_url.as_deref()),
            (None, Some(p)) => (p.user.clone(), None),
            (None, None) => {
                return Err(missing(
                    "user",
                    "user (static id, claim or resolver; there is no default user)",
                ));
            }
        };
        if let UserStrategy::Claim { claim, .. } = &user
            && claim.is_empty()
        {
            return Err(missing("user", "user claim name"));
        }
        let profile_url = match profile_url {
            None => None,
            Some(path) if is_local_path(path) => Some(Arc::from(path)),
            Some(_) => {
                return Err(invalid(
                    "profile_url",
                    "profile_url must be a local path such as \"/profile\"".into(),
                ));
            }
        };
        let max_leeway = self.max_leeway.unwrap_or(DEFAULT_MAX_LEEWAY);
        if self.leeway > max_leeway {
            return Err(invalid(
                "leeway_secs",
                format!(
                    "leeway {} s is above the maximum of {} s (raise max_leeway_secs to allow it)",
                    self.leeway.as_secs(),
                    max_leeway.as_secs()
                ),
            ));
        }
        let max_token_bytes = self.max_token_bytes.unwrap_or(DEFAULT_MAX_TOKEN_BYTES);
        if !(1024..=MAX_TOKEN_BYTES_LIMIT).contains(&max_token_bytes) {
            return Err(invalid(
                "max_token_bytes",
                format!("max_token_bytes must be between 1024 and {MAX_TOKEN_BYTES_LIMIT}"),
            ));
        }
        let typ = match &self.typ {
            None => None,
            Some(list) if list.is_empty() || list.iter().any(String::is_empty) => {
                return Err(invalid(
                    "typ",
                    "typ must list at least one non-empty type".into(),
                ));
            }
            Some(list) => Some(list.iter().map(|t| normalise_typ(t)).collect()),
        };
        let sources = self
            .sources
            .clone()
            .or_else(|| preset.as_ref().map(|p| p.sources.clone()))
            .unwrap_or_else(|| vec![TokenSource::authorization()]);
        if sources.is_empty() {
            return Err(invalid(
                "sources",
                "at least one token source is required".into(),
            ));
        }
        let sources = sources
            .iter()
            .map(TokenSource::compile)
            .collect::<Result<Vec<_>, _>>()?;
        let key = self
            .key
            .clone()
            .or_else(|| preset.as_ref().map(|p| p.key.clone()))
            .ok_or_else(|| {
                missing(
                    "secret",
                    "a key (secret, secret_env, public_key_pem, public_key_file, jwks, jwks_file, jwks_url, oidc_issuer or oidc_discovery)",
                )
            })?;
        let field = key.field();
        let keys = self
            .keys(&key.0, algorithm, caches, &issuers)
            .map_err(|e| e.in_field(field))?;
        let rules = ClaimRules {
            issuers,
            issuer_patterns,
            audiences,
            authorized_party,
            leeway: self.leeway.as_secs(),
        };
        #[cfg(feature = "login")]
        let login = self
            .login
            .clone()
            .or_else(|| preset.as_ref().and_then(|p| p.login.clone()));
        #[cfg(feature = "login")]
        let (login, cookie_rules) = {
            let mut cookie_rules = rules.clone();
            if let Some(client_id) = login.as_ref().and_then(|l| l.client_id()) {
                if self.cookie.is_none() {
                    return Err(Error::new(
                        ErrorKind::InvalidSetting,
                        "an OIDC login keeps its session in cookie mode: set `cookie` too",
                    )
                    .in_field("login"));
                }
                cookie_rules.audiences.push(client_id.to_owned());
                cookie_rules.authorized_party = None;
                if rules.issuers.len() != 1 || !rules.issuer_patterns.is_empty() {
                    return Err(Error::new(
                        ErrorKind::InvalidSetting,
                        "an OIDC login signs in at one issuer: give this validator one issuer \
                         (and another validator for the others)",
                    )
                    .in_field("login"));
                }
            }
            let compiled = login
                .map(|l| l.compile(&rules.issuers[0], self.logout.as_ref(), &caches.http))
                .transpose()?;
            (compiled, cookie_rules)
        };
        #[cfg(not(feature = "login"))]
        let cookie_rules = rules.clone();
        Ok(CompiledValidator {
            name: Arc::from(self.name.as_str()),
            algorithm,
            cookie_rules,
            #[cfg(feature = "login")]
            login,
            rules,
            keys,
            user,
            partner_required: self.partner,
            profile_url,
            index: 0,
            next: None,
            cookie: self
                .cookie
                .as_ref()
                .map(|c| {
                    c.compile(&self.name, &self.session)
                        .map_err(|e| e.in_field("cookie"))
                })
                .transpose()?,
            sources,
            typ,
            max_token_bytes,
        })
    }

    fn keys(
        &self,
        key: &Repr,
        algorithm: Algorithm,
        caches: &mut KeyCaches,
        issuers: &[String],
    ) -> Result<Keys, Error> {
        let key_err = |e: String| Error::new(ErrorKind::InvalidKey, e);
        let set = match key {
            Repr::Secret(secret) => {
                let secret = secret.resolve()?;
                let key = VerifyingKey::from_secret(algorithm, &secret).map_err(|e| {
                    let kind = if algorithm.is_hmac() {
                        ErrorKind::WeakSecret
                    } else {
                        ErrorKind::InvalidKey
                    };
                    Error::new(kind, e)
                })?;
                KeySet::single(key)
            }
            Repr::PublicKeyPem(pem) => {
                KeySet::single(VerifyingKey::from_pem(algorithm, pem).map_err(key_err)?)
            }
            Repr::PublicKeyFile(path) => {
                let pem = read_key_file(path, "public_key_file")?;
                let key = VerifyingKey::from_pem(algorithm, &pem)
                    .map_err(|e| key_err(format!("{}: {e}", path.display())))?;
                KeySet::single(key)
            }
            Repr::Jwks(json) => self.static_jwks(json, algorithm)?,
            Repr::JwksFile(path) => {
                let json = read_key_file(path, "jwks_file")?;
                self.static_jwks(&json, algorithm).map_err(|e| {
                    Error::new(
                        e.kind().clone(),
                        format!("{}: {}", path.display(), e.message()),
                    )
                })?
            }
            Repr::Remote(source) => {
                if algorithm.is_hmac() {
                    return Err(key_err(format!(
                        "{algorithm} needs a shared secret; remote key sets never hold secrets"
                    )));
                }
                #[cfg(feature = "remote-keys")]
                return Ok(match source {
                    crate::key_source::RemoteSource::EachIssuer => Keys::PerIssuer(
                        caches.per_issuer(&self.remote, algorithm, &self.name, issuers)?,
                    ),
                    _ => {
                        Keys::Remote(caches.shared(source, &self.remote, algorithm, &self.name)?)
                    }
                });
                #[cfg(not(feature = "remote-keys"))]
                {
                    let _ = (source, caches, issuers);
                    return Err(key_err(
                        "remote key sources need the `remote-keys` feature".into(),
                    ));
                }
            }
        };
        Ok(Keys::Static(Arc::new(set)))
    }

    fn static_jwks(&self, json: &[u8], algorithm: Algorithm) -> Result<KeySet, Error> {
        let (set, skipped) = parse_jwks(json, &[algorithm], true)
            .map_err(|e| Error::new(ErrorKind::InvalidKey, e.message))?;
        for s in skipped {
            tracing::warn!(validator = %self.name, kid = ?s.kid, reason = %s.reason, "skipped a JWK");
        }
        Ok(set)
    }
}
