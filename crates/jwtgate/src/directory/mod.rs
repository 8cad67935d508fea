//! The extension points an application (or an adapter crate such as `jwtgate-sqlx`)
//! implements: who the user of an accepted token is, and which partner matches its email.
//! This module depends on nothing but the identity types, so adapters see a small, stable
//! surface.

mod memory;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use crate::identity::UserRecord;
use crate::identity::{PartnerId, Payload, UserId};

pub use memory::InMemoryDirectory;

/// A boxed, `Send` future, the return type of the directory traits' methods. The same type as
/// `futures_util::future::BoxFuture`, defined here so that implementors need no extra crate
/// and jwtgate's public API names none.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An error from a [`UserResolver`], [`UserDirectory`] or [`PartnerDirectory`].
///
/// [`Unavailable`](LookupErrorKind::Unavailable) answers 503 with `Retry-After`, anything
/// else 500; the message goes to the log, never to the client.
#[derive(Debug)]
pub struct LookupError {
    kind: LookupErrorKind,
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// What kind of [`LookupError`] this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LookupErrorKind {
    /// The backend cannot be reached or did not answer in time: 503, try again later.
    Unavailable,
    /// The backend answered with an error: 500.
    Failed,
}

impl LookupError {
    /// A failed lookup (500), wrapping any error.
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            kind: LookupErrorKind::Failed,
            source: error.into(),
        }
    }

    /// A backend that cannot be reached right now (503 with `Retry-After`).
    pub fn unavailable(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            kind: LookupErrorKind::Unavailable,
            source: error.into(),
        }
    }

    /// What kind of error this is.
    pub fn kind(&self) -> LookupErrorKind {
        self.kind
    }
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.source.fmt(f)
    }
}

impl std::error::Error for LookupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// Resolves (or registers) the user for an accepted token.
///
/// This is where an application's own lookup goes: read the claims, return the user's id.
/// `Ok(None)` refuses the token with a 401. For users kept in a database, a
/// [`UserDirectory`] (such as `jwtgate-sqlx`) does the lookup, registration and caching.
pub trait UserResolver: Send + Sync + 'static {
    /// The user for `payload`, `None` to refuse it.
    fn resolve<'a>(
        &'a self,
        payload: &'a Payload,
    ) -> BoxFuture<'a, Result<Option<UserId>, LookupError>>;
}

/// Where partners are looked up by email.
pub trait PartnerDirectory: Send + Sync + 'static {
    /// Every partner whose email is `email`. jwtgate passes the token's `email` claim as it
    /// is; a directory decides how it compares (the in-memory one exactly, `jwtgate-sqlx`
    /// trimmed and case-insensitively).
    fn partners_by_email<'a>(
        &'a self,
        email: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PartnerId>, LookupError>>;

    /// Whether the directory can answer now, for the health check (default: it always can).
    fn health(&self) -> BoxFuture<'_, Result<(), LookupError>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Any `Fn(&Payload) -> Future` is a resolver: `Validator::user_resolver(|p: &Payload| ...)`.
impl<F, Fut> UserResolver for F
where
    F: Fn(&Payload) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<UserId>, LookupError>> + Send + 'static,
{
    fn resolve<'a>(
        &'a self,
        payload: &'a Payload,
    ) -> BoxFuture<'a, Result<Option<UserId>, LookupError>> {
        Box::pin(self(payload))
    }
}

/// How a validator finds its users in a [`UserDirectory`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UserMatch {
    /// By the token's `email` (trimmed, case-insensitive), as Frappe does. The default.
    #[default]
    Email,
    /// By the token's issuer and subject; a user registered earlier under the same email is
    /// linked on first sight.
    Subject,
}

/// What identifies a token's user in a directory; jwtgate computes it from the claims.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UserKey {
    /// The token's email, normalised by [`normalize_email`].
    Email(String),
    /// The token's `iss` and `sub`.
    Subject {
        /// The `iss` claim.
        issuer: String,
        /// The `sub` claim.
        subject: String,
    },
    /// A service token's client name (Cloudflare Access's `common_name`), for a validator
    /// with service users on.
    Service(String),
}

/// One user lookup, as a validator with a directory user asks it.
#[derive(Debug)]
#[non_exhaustive]
pub struct UserQuery<'a> {
    /// The validator that accepted the token (a directory caches per validator and key).
    pub validator: &'a str,
    /// Who to find.
    pub key: UserKey,
    /// The token's email, trimmed, when it has one that is not marked unverified: the
    /// address to register, and (with [`UserMatch::Subject`]) to link an existing user by.
    pub email: Option<&'a str>,
    /// The token's `iss`, recorded on registration.
    pub issuer: Option<&'a str>,
    /// The token's `sub`, recorded on registration.
    pub subject: Option<&'a str>,
    /// Whether a missing user is created (`register = true`).
    pub register: bool,
    /// The whole payload, for directories that read more claims.
    pub payload: &'a Payload,
}

impl<'a> UserQuery<'a> {
    /// A query for `key` with no email, issuer or subject, registration off.
    pub fn new(validator: &'a str, key: UserKey, payload: &'a Payload) -> Self {
        Self {
            validator,
            key,
            email: None,
            issuer: None,
            subject: None,
            register: false,
            payload,
        }
    }
}

/// Finds (and, when asked, registers) the user of an accepted token.
///
/// jwtgate decides *who* to look for (the [`UserKey`], refusing unverified emails and, unless
/// service users are on, service tokens); the directory decides how to find or create them.
/// `Ok(None)` refuses the token with a 401 (an unknown user and registration off).
pub trait UserDirectory: Send + Sync + 'static {
    /// The user for `query`.
    fn user<'a>(
        &'a self,
        query: &'a UserQuery<'a>,
    ) -> BoxFuture<'a, Result<Option<Arc<UserRecord>>, LookupError>>;

    /// Whether the directory can answer now, for the registry's
    /// [`health_service`](crate::Registry::health_service) (default: it always can). A health
    /// check never decides a request.
    fn health(&self) -> BoxFuture<'_, Result<(), LookupError>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

impl<T: UserDirectory + ?Sized> UserDirectory for Arc<T> {
    fn user<'a>(
        &'a self,
        query: &'a UserQuery<'a>,
    ) -> BoxFuture<'a, Result<Option<Arc<UserRecord>>, LookupError>> {
        (**self).user(query)
    }

    fn health(&self) -> BoxFuture<'_, Result<(), LookupError>> {
        (**self).health()
    }
}

impl<T: PartnerDirectory + ?Sized> PartnerDirectory for Arc<T> {
    fn partners_by_email<'a>(
        &'a self,
        email: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PartnerId>, LookupError>> {
        (**self).partners_by_email(email)
    }

    fn health(&self) -> BoxFuture<'_, Result<(), LookupError>> {
        (**self).health()
    }
}

/// An email as directories compare it (its *key*): leading and trailing spaces (U+0020)
/// removed, ASCII letters lowercased, every other character kept as it is.
///
/// The rule is what SQL computes the same way on every database (`trim()` removes spaces
/// alone; `lower()` is held to ASCII), so a key made here and one made by a query agree.
/// Nothing wider: Unicode case folding or whitespace would make look-alikes meet (the Kelvin
/// sign `\u{212A}ate@example.com` would become `kate@example.com`, an ideographic space
/// `\u{3000}` would vanish); an address with other characters matches only itself, byte for
/// byte after the rule.
pub fn normalize_email(email: &str) -> String {
    email.trim_matches(' ').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_compare_trimmed_and_case_insensitively() {
        assert_eq!(normalize_email("  Ada@Example.COM  "), "ada@example.com");
        assert_eq!(normalize_email("ada@example.com"), "ada@example.com");
        // Only spaces are trimmed, only ASCII is lowercased: look-alikes stay apart.
        assert_eq!(normalize_email("ada@example.com\t"), "ada@example.com\t");
        assert_eq!(
            normalize_email("mark@example.com\u{3000}"),
            "mark@example.com\u{3000}"
        );
        assert_eq!(
            normalize_email("\u{212A}ate@Example.com"),
            "\u{212A}ate@example.com"
        );
        assert_eq!(normalize_email("JÖRG@example.com"), "jÖrg@example.com");
    }

    #[test]
    fn a_user_record_does_not_print_personal_data() {
        let mut r = UserRecord::new(7);
        r.email = Some("ada@example.com".into());
        r.phone = Some("+100".into());
        let shown = format!("{r:?}");
        assert!(shown.contains('7') && !shown.contains("ada") && !shown.contains("+100"));
    }

    #[test]
    fn lookup_errors_keep_their_kind_and_source() {
        let e = LookupError::unavailable(std::io::Error::other("down"));
        assert_eq!(e.kind(), LookupErrorKind::Unavailable);
        assert_eq!(e.to_string(), "down");
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(LookupError::new("x").kind(), LookupErrorKind::Failed);
    }
}
