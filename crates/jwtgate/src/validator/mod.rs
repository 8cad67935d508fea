//! Named validators: one issuer, its audiences (or authorized party), one pinned algorithm and
//! one key source each (one Odoo `auth.jwt.validator` record), where the token is read from,
//! and how its user is found.
//!
//! [`Validator`] is the builder; a registry compiles it into a `CompiledValidator`
//! (`compiled.rs`). Presets for identity providers live in `presets.rs`.

mod compiled;
mod presets;
mod rules;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub(crate) use compiled::CompiledValidator;

pub use presets::{CloudflareAccess, Preset};
pub use rules::{DirectoryUser, Partner, User};

use crate::cookie::CookieMode;
use crate::credentials::TokenSource;
use crate::directory::{UserMatch, UserResolver};
use crate::identity::UserId;
use crate::jws::algorithm::Algorithm;
use crate::key_source::KeySource;
#[cfg(feature = "remote-keys")]
use crate::remote::RemoteKeyOptions;

/// The most clock skew a validator accepts unless [`Validator::max_leeway`] raises it: more
/// turns an expired token into a valid one for longer than any clock is wrong.
pub(crate) const DEFAULT_MAX_LEEWAY: Duration = Duration::from_secs(300);

/// The configuration of one named validator; a registry compiles it.
///
/// Required: an issuer, an audience or an authorized party, an algorithm, a key source and a
/// user rule. A [`Preset`] fills them for an identity provider; any value set on the validator
/// itself wins over the preset's, whatever the order of the calls.
///
/// ```
/// use jwtgate::{Algorithm, KeySource, Validator, User, Partner};
///
/// let v = Validator::new("demo")
///     .issuer("https://issuer.example")
///     .audience("my-api")
///     .algorithm(Algorithm::HS256)
///     .key(KeySource::secret("a-secret-of-at-least-32-bytes!!!"))
///     .user(User::fixed(42))
///     .partner(Partner::by_email());
/// assert_eq!(v.name(), "demo");
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct Validator {
    pub(crate) name: String,
    pub(crate) issuers: Vec<String>,
    pub(crate) audiences: Vec<String>,
    pub(crate) authorized_party: Option<String>,
    pub(crate) algorithm: Option<Algorithm>,
    pub(crate) key: Option<KeySource>,
    pub(crate) leeway: Duration,
    pub(crate) max_leeway: Option<Duration>,
    pub(crate) user: Option<User>,
    pub(crate) partner: Option<bool>,
    pub(crate) next: Option<String>,
    pub(crate) cookie: Option<CookieMode>,
    pub(crate) session: crate::session::SessionOptions,
    pub(crate) sources: Option<Vec<TokenSource>>,
    pub(crate) typ: Option<Vec<String>>,
    pub(crate) max_token_bytes: Option<usize>,
    pub(crate) preset: Option<Preset>,
    #[cfg(feature = "login")]
    pub(crate) login: Option<crate::login::Login>,
    #[cfg(feature = "login")]
    pub(crate) logout: Option<crate::login::Logout>,
    #[cfg(feature = "remote-keys")]
    pub(crate) remote: RemoteKeyOptions,
}

/// Which user a validated request acts as.
///
/// There is no default: auth_jwt's default (the superuser) silently grants too much.
#[derive(Clone)]
pub(crate) enum UserStrategy {
    /// Always this user.
    Static(UserId),
    /// The value of `claim`, as it is in the token (a number or a string); a token without it
    /// is refused, unless it is a Cloudflare Access service token and `service` says how.
    Claim {
        claim: String,
        service: Option<ServiceTokens>,
    },
    /// An application callback.
    Resolver(Arc<dyn UserResolver>),
    /// The registry's [`UserDirectory`](crate::directory::UserDirectory).
    Directory(DirectoryRule),
}

/// How a validator's users are found in (and registered into) the directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DirectoryRule {
    pub(crate) matching: UserMatch,
    pub(crate) register: bool,
    pub(crate) service_users: bool,
}

/// Cloudflare Access service tokens: no `email`, an empty `sub`, the client id in
/// `common_name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ServiceTokens {
    /// Whether they are accepted (their user is their `common_name`) or refused.
    pub(crate) allowed: bool,
}

impl fmt::Debug for UserStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Static(id) => f.debug_tuple("Static").field(id).finish(),
            Self::Claim { claim, service } => f
                .debug_struct("Claim")
                .field("claim", claim)
                .field("service", service)
                .finish(),
            Self::Resolver(_) => f.write_str("Resolver(..)"),
            Self::Directory(d) => f.debug_tuple("Directory").field(d).finish(),
        }
    }
}

impl Validator {
    /// A validator named `name` (`[A-Za-z_][A-Za-z0-9_]*`, used in `jwt_<name>` modes).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            issuers: Vec::new(),
            audiences: Vec::new(),
            authorized_party: None,
            algorithm: None,
            key: None,
            leeway: Duration::ZERO,
            max_leeway: None,
            user: None,
            partner: None,
            next: None,
            cookie: None,
            session: crate::session::SessionOptions::default(),
            sources: None,
            typ: None,
            max_token_bytes: None,
            preset: None,
            #[cfg(feature = "login")]
            login: None,
            #[cfg(feature = "login")]
            logout: None,
            #[cfg(feature = "remote-keys")]
            remote: RemoteKeyOptions::default(),
        }
    }

    /// The validator's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Fills issuer, key source, algorithm, token sources and user rule for an identity
    /// provider; every value set on the validator itself wins over the preset's.
    pub fn preset(mut self, preset: impl Into<Preset>) -> Self {
        self.preset = Some(preset.into());
        self
    }

    /// The exact `iss` a token must carry (an issuer is required: this one, or those of
    /// [`issuers`](Self::issuers) or of the preset).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers = vec![issuer.into()];
        self
    }

    /// The issuers a token may come from, for a validator of several tenants or realms: exact
    /// `iss` values, and patterns with one `{tenant}` placeholder
    /// (`https://sso.example.com/realms/{tenant}`) whose tenant is 1 to 64 letters, digits,
    /// `-` or `_`. With [`KeySource::oidc_discovery`](crate::KeySource::oidc_discovery), each
    /// issuer's keys come from its own discovery, cached per issuer; revocations, sessions
    /// and replay entries are kept per issuer as always.
    pub fn issuers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, issuers: I) -> Self {
        self.issuers = issuers.into_iter().map(Into::into).collect();
        self
    }

    /// Adds an accepted audience; a token passes when any accepted audience is in its `aud`.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Adds several accepted audiences.
    pub fn audiences<I: IntoIterator<Item = S>, S: Into<String>>(mut self, audiences: I) -> Self {
        self.audiences.extend(audiences.into_iter().map(Into::into));
        self
    }

    /// The client the token must have been issued to, instead of or beside an audience:
    /// `azp`, else `client_id` (RFC 9068, Cognito), else the token's only audience (OIDC Core
    /// 3.1.3.7). Keycloak access tokens often name the API in no `aud`, only in `azp`. With an
    /// audience too, both must match.
    pub fn authorized_party(mut self, client_id: impl Into<String>) -> Self {
        self.authorized_party = Some(client_id.into());
        self
    }

    /// The one algorithm tokens must be signed with (required).
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = Some(algorithm);
        self
    }

    /// Where the keys come from (required, exactly one; a second call replaces the first).
    pub fn key(mut self, source: KeySource) -> Self {
        self.key = Some(source);
        self
    }

    /// Where the token is read from, in order (default: the `Authorization` header). The first
    /// source present in a request is the credential; a malformed or invalid one is refused
    /// without trying the next.
    pub fn token_sources(mut self, sources: impl IntoIterator<Item = TokenSource>) -> Self {
        self.sources = Some(sources.into_iter().collect());
        self
    }

    /// Accepted `typ` header values (RFC 9068: access tokens are `at+jwt`), compared
    /// case-insensitively with or without `application/`; a token without `typ` is refused.
    /// Without a list, any `typ` passes.
    pub fn token_types<I: IntoIterator<Item = S>, S: Into<String>>(mut self, types: I) -> Self {
        self.typ = Some(types.into_iter().map(Into::into).collect());
        self
    }

    /// The longest token accepted, in bytes (default 16 KiB, at most 256 KiB).
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = Some(bytes);
        self
    }

    /// How fetched keys are cached and fetched.
    #[cfg(feature = "remote-keys")]
    pub fn remote_options(mut self, options: RemoteKeyOptions) -> Self {
        self.remote = options;
        self
    }

    /// Clock skew allowed on `exp`, `nbf` and `iat` (default zero: `exp == now` is expired; at
    /// most 300 s unless [`max_leeway`](Self::max_leeway) allows more).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Raises the bound on [`leeway`](Self::leeway) above its 300 s default.
    pub fn max_leeway(mut self, max: Duration) -> Self {
        self.max_leeway = Some(max);
        self
    }

    /// Which user a validated request acts as (required, unless a preset gives one):
    /// [`User::fixed`], [`User::claim`], [`User::resolver`] or [`User::directory`].
    pub fn user(mut self, user: impl Into<User>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// How the partner is found ([`Partner::by_email`]); none by default.
    pub fn partner(mut self, partner: Partner) -> Self {
        self.partner = Some(partner.required);
        self
    }

    /// The validator to try when this one refuses the token.
    pub fn next(mut self, name: impl Into<String>) -> Self {
        self.next = Some(name.into());
        self
    }

    /// Turns on cookie mode: jwtgate issues a cookie of its own after a successful request.
    pub fn cookie(mut self, cookie: CookieMode) -> Self {
        self.cookie = Some(cookie);
        self
    }

    /// How long the sessions of its sign-ins last, and whether they refresh their tokens (see
    /// [`session`](crate::session)); the defaults when not set.
    pub fn session(mut self, session: crate::session::SessionOptions) -> Self {
        self.session = session;
        self
    }

    /// How browsers that are not signed in are sent to sign in (a fronting provider's page,
    /// or the OIDC authorization-code flow). Only navigations on `jwt_` routes are redirected.
    #[cfg(feature = "login")]
    pub fn login(mut self, login: impl Into<crate::login::Login>) -> Self {
        self.login = Some(login.into());
        self
    }

    /// The provider's logout page, when it is not found otherwise (a Cloudflare Access preset
    /// and OIDC discovery give it).
    #[cfg(feature = "login")]
    pub fn logout(mut self, logout: crate::login::Logout) -> Self {
        self.logout = Some(logout);
        self
    }

    /// The cookies this validator reads as token sources (its preset's included; a preset
    /// that does not resolve is reported when the validator compiles).
    pub(crate) fn source_cookies(&self) -> Vec<String> {
        let preset = self
            .preset
            .as_ref()
            .and_then(|p| p.defaults().ok())
            .map(|d| d.sources);
        self.sources
            .as_ref()
            .or(preset.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|s| s.cookie_name().map(str::to_owned))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::remote::KeyCaches;

    fn compile(v: Validator) -> Result<CompiledValidator, crate::Error> {
        v.compile(&mut KeyCaches::default())
    }

    #[test]
    fn required_settings_are_named() {
        let base = Validator::new("v")
            .issuer("i")
            .audience("a")
            .algorithm(Algorithm::HS256);
        let err = compile(base.clone()).err().unwrap();
        assert_eq!(err.field(), Some("user"));
        let err = compile(base.clone().user(User::fixed(1))).err().unwrap();
        assert_eq!(err.field(), Some("secret"));
        assert!(err.message().contains("a key"), "{err}");
        let err = compile(Validator::new("v")).err().unwrap();
        assert_eq!(err.to_string(), "key `issuer`: issuer is required");
        let err = compile(Validator::new("v").issuer("i").algorithm(Algorithm::HS256))
            .err()
            .unwrap();
        assert_eq!(err.field(), Some("audience"));
        assert!(err.message().contains("authorized_party"), "{err}");
        let err = compile(base.user(User::fixed(1)).key(KeySource::secret("short")))
            .err()
            .unwrap();
        assert_eq!(err.kind(), &ErrorKind::WeakSecret);
        assert_eq!(err.field(), Some("secret"));
    }

    #[test]
    fn leeway_is_bounded_unless_raised() {
        let v = Validator::new("v")
            .issuer("i")
            .audience("a")
            .algorithm(Algorithm::HS256)
            .key(KeySource::secret("thesecret-of-at-least-32-bytes!!"))
            .user(User::fixed(1));
        assert!(compile(v.clone().leeway(Duration::from_secs(300))).is_ok());
        let err = compile(v.clone().leeway(Duration::from_secs(301)))
            .err()
            .unwrap();
        assert_eq!(err.field(), Some("leeway_secs"));
        assert!(
            compile(
                v.clone()
                    .leeway(Duration::from_secs(900))
                    .max_leeway(Duration::from_secs(900))
            )
            .is_ok()
        );
        let err = compile(v.clone().max_token_bytes(10 << 20)).err().unwrap();
        assert_eq!(err.field(), Some("max_token_bytes"));
        let err = compile(v.token_types(Vec::<String>::new())).err().unwrap();
        assert_eq!(err.field(), Some("typ"));
    }

    #[test]
    fn debug_output_has_no_secret() {
        let v = Validator::new("v").key(KeySource::secret("thesecret-of-at-least-32-bytes!!"));
        assert!(!format!("{v:?}").contains("thesecret"));
    }
}
