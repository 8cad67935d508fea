//! The registry: every validator of an app, compiled once and shared (one `Arc`, one key cache
//! per JWKS URL); per-route layers come from it.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::error::{Error, ErrorKind};
use crate::layer::JwtAuthLayer;
use crate::mode::AuthMode;
#[cfg(feature = "remote-keys")]
use crate::remote::{KeyCacheState, RemoteKeys};
use crate::strategy::{InMemoryDirectory, PartnerDirectory};
use crate::validator::{CompiledValidator, RemoteCaches, Validator, is_valid_name};

/// All validators of an application. Cheap to clone.
///
/// ```
/// use jwtgate::{Algorithm, Registry, Validator};
///
/// let registry = Registry::builder()
///     .validator(
///         Validator::new("demo")
///             .issuer("theissuer")
///             .audience("auth_jwt_test_api")
///             .algorithm(Algorithm::HS256)
///             .secret("thesecret-of-at-least-32-bytes!!")
///             .static_user(42),
///     )
///     .build()?;
/// let layer = registry.layer("jwt_demo")?;
/// assert!(registry.layer("jwt_nope").is_err());
/// # let _ = layer;
/// # Ok::<(), jwtgate::Error>(())
/// ```
#[derive(Clone)]
pub struct Registry {
    pub(crate) inner: Arc<RegistryInner>,
}

pub(crate) struct RegistryInner {
    pub(crate) realm: Arc<str>,
    pub(crate) validators: Vec<CompiledValidator>,
    pub(crate) session_cookie: Option<String>,
    pub(crate) directory: Arc<dyn PartnerDirectory>,
    #[cfg(feature = "remote-keys")]
    pub(crate) caches: Vec<Arc<RemoteKeys>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("realm", &self.inner.realm)
            .field("validators", &self.validator_names().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// One validator's verdict on a token, from [`Registry::inspect`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verdict {
    /// The validator's name.
    pub validator: String,
    /// Why it refused the token; `None` when it accepts it.
    pub refusal: Option<&'static str>,
}

/// Builds a [`Registry`].
#[must_use]
pub struct RegistryBuilder {
    realm: String,
    validators: Vec<Validator>,
    session_cookie: Option<String>,
    directory: Arc<dyn PartnerDirectory>,
}

impl fmt::Debug for RegistryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryBuilder")
            .field("realm", &self.realm)
            .field("validators", &self.validators)
            .field("session_cookie", &self.session_cookie)
            .finish_non_exhaustive()
    }
}

impl RegistryBuilder {
    /// The realm of `WWW-Authenticate` challenges (default `jwtgate`).
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Adds a validator.
    pub fn validator(mut self, validator: Validator) -> Self {
        self.validators.push(validator);
        self
    }

    /// Refuses JWT routes for requests that carry this session cookie, as auth_jwt refuses
    /// requests with an Odoo session (a token and a session must not disagree on the user).
    pub fn session_cookie(mut self, name: impl Into<String>) -> Self {
        self.session_cookie = Some(name.into());
        self
    }

    /// Where `partner_by_email` looks partners up (default: an empty in-memory directory).
    pub fn directory(mut self, directory: impl PartnerDirectory) -> Self {
        self.directory = Arc::new(directory);
        self
    }

    /// Checks every validator, parses static keys, links `next` chains and sets up key caches.
    /// No I/O happens here except reading key files and environment variables.
    pub fn build(self) -> Result<Registry, Error> {
        if self.realm.is_empty()
            || self
                .realm
                .chars()
                .any(|c| c == '"' || c == '\\' || !(c == ' ' || c.is_ascii_graphic()))
        {
            return Err(Error::new(
                ErrorKind::InvalidSetting,
                "realm must be non-empty printable ASCII without '\"' or '\\'",
            ));
        }
        let mut by_name = HashMap::new();
        for (i, v) in self.validators.iter().enumerate() {
            if !is_valid_name(&v.name) {
                return Err(Error::new(
                    ErrorKind::InvalidName,
                    format!(
                        "validator name {:?} is not a valid identifier ([A-Za-z_][A-Za-z0-9_]*)",
                        v.name
                    ),
                ));
            }
            if by_name.insert(v.name.as_str(), i).is_some() {
                return Err(Error::new(
                    ErrorKind::DuplicateName,
                    format!("validator names must be unique: {:?} is used twice", v.name),
                ));
            }
        }
        let mut next = Vec::with_capacity(self.validators.len());
        for v in &self.validators {
            next.push(match &v.next {
                None => None,
                Some(n) => Some(*by_name.get(n.as_str()).ok_or_else(|| {
                    Error::new(
                        ErrorKind::UnknownValidator,
                        format!(
                            "validator {:?}: next validator {n:?} does not exist",
                            v.name
                        ),
                    )
                })?),
            });
        }
        check_chains(&self.validators, &next)?;

        let mut caches = RemoteCaches::default();
        let mut validators = Vec::with_capacity(self.validators.len());
        for (v, next) in self.validators.iter().zip(next) {
            let mut compiled = v
                .compile(&mut caches)
                .map_err(|e| e.context(format_args!("validator {:?}", v.name)))?;
            compiled.next = next;
            validators.push(compiled);
        }
        Ok(Registry {
            inner: Arc::new(RegistryInner {
                realm: Arc::from(self.realm),
                validators,
                session_cookie: self.session_cookie,
                directory: self.directory,
                #[cfg(feature = "remote-keys")]
                caches,
            }),
        })
    }
}

/// Refuses `next` loops, naming the loop as auth_jwt does. Walks start from the validator
/// declared last, the one whose link closes the loop when validators are added in order.
fn check_chains(validators: &[Validator], next: &[Option<usize>]) -> Result<(), Error> {
    for start in (0..validators.len()).rev() {
        let mut path = vec![start];
        let mut at = next[start];
        while let Some(i) = at {
            path.push(i);
            if i == start {
                let names: Vec<_> = path.iter().map(|&i| validators[i].name.as_str()).collect();
                return Err(Error::new(
                    ErrorKind::ClosedChain,
                    format!(
                        "Validators mustn't make a closed chain: {}.",
                        names.join(" -> ")
                    ),
                ));
            }
            if path.len() > validators.len() {
                break; // a loop that does not pass through `start`; found from one of its members
            }
            at = next[i];
        }
    }
    Ok(())
}

impl Registry {
    /// Starts a registry.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder {
            realm: "jwtgate".into(),
            validators: Vec::new(),
            session_cookie: None,
            directory: Arc::new(InMemoryDirectory::new()),
        }
    }

    /// The names of every validator, in declaration order.
    pub fn validator_names(&self) -> impl Iterator<Item = &str> {
        self.inner.validators.iter().map(|v| &*v.name)
    }

    /// The realm of the challenges.
    pub fn realm(&self) -> &str {
        &self.inner.realm
    }

    pub(crate) fn index_of(&self, mode: &AuthMode) -> Result<usize, Error> {
        let validators = &self.inner.validators;
        match mode.validator() {
            Some(name) => validators
                .iter()
                .position(|v| &*v.name == name)
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::UnknownValidator,
                        format!("auth mode {mode}: no validator named {name:?}"),
                    )
                }),
            None if validators.len() == 1 => Ok(0),
            None => Err(Error::new(
                ErrorKind::AmbiguousValidator,
                format!(
                    "auth mode {mode} needs exactly one validator, there are {}; name one (`{mode}_<name>`)",
                    validators.len()
                ),
            )),
        }
    }

    /// A layer for an auth mode written as Odoo writes it: `jwt_<name>` or `public_or_jwt_<name>`.
    /// An unknown validator is an error now, not per request.
    pub fn layer(&self, mode: &str) -> Result<JwtAuthLayer, Error> {
        self.layer_for(mode.parse()?)
    }

    /// A layer for a parsed [`AuthMode`].
    pub fn layer_for(&self, mode: AuthMode) -> Result<JwtAuthLayer, Error> {
        let start = self.index_of(&mode)?;
        Ok(JwtAuthLayer::new(self.clone(), start, mode.is_public()))
    }

    /// `jwt_<name>`: a token is required.
    pub fn jwt(&self, validator: &str) -> Result<JwtAuthLayer, Error> {
        self.layer_for(AuthMode::Jwt(Some(validator.to_owned())))
    }

    /// `public_or_jwt_<name>`: anonymous requests pass, sent credentials must be valid.
    pub fn public_or_jwt(&self, validator: &str) -> Result<JwtAuthLayer, Error> {
        self.layer_for(AuthMode::PublicOrJwt(Some(validator.to_owned())))
    }

    /// Checks `token` against every validator on its own (no `next` chaining), saying for each
    /// whether it passes and why not. For diagnostics (`jwtgate inspect`), not for requests.
    pub async fn inspect(&self, token: &str) -> Vec<Verdict> {
        let now = crate::claims::now();
        let parsed = crate::token::parse(token);
        let mut out = Vec::with_capacity(self.inner.validators.len());
        for v in &self.inner.validators {
            let refusal = match &parsed {
                Ok(token) => v.verify(token, now).await.err().map(|f| f.description()),
                Err(e) => Some(e.description()),
            };
            out.push(Verdict {
                validator: v.name.to_string(),
                refusal,
            });
        }
        out
    }

    /// The state of every remote key cache (for a health endpoint).
    #[cfg(feature = "remote-keys")]
    pub fn key_caches(&self) -> Vec<KeyCacheState> {
        self.inner.caches.iter().map(|c| c.state()).collect()
    }

    /// Fetches every remote key set now (and runs OIDC discovery), failing on the first error,
    /// so an app can refuse to start without keys instead of answering 503.
    #[cfg(feature = "remote-keys")]
    pub async fn prefetch(&self) -> Result<(), Error> {
        for cache in &self.inner.caches {
            cache.fetch_now().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Algorithm;

    fn v(name: &str) -> Validator {
        Validator::new(name)
            .issuer("i")
            .audience("a")
            .algorithm(Algorithm::HS256)
            .secret("thesecret-of-at-least-32-bytes!!")
            .static_user(1)
    }

    #[test]
    fn a_tail_into_a_loop_reports_the_loop() {
        let err = Registry::builder()
            .validator(v("a").next("b"))
            .validator(v("b").next("c"))
            .validator(v("c").next("b"))
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Validators mustn't make a closed chain: c -> b -> c."
        );
    }

    #[test]
    fn unknown_next_and_duplicate_names() {
        let err = Registry::builder()
            .validator(v("a"))
            .validator(v("a"))
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::DuplicateName);
        let err = Registry::builder()
            .validator(v("a").next("zz"))
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "validator \"a\": next validator \"zz\" does not exist"
        );
    }

    #[test]
    fn realm_must_be_quotable() {
        assert!(Registry::builder().realm("a\"b").build().is_err());
        assert!(Registry::builder().realm("my app").build().is_ok());
    }
}
