//! The extension points an application (or an adapter crate such as a database directory)
//! implements: who the user of an accepted token is, and which partner matches its email.
//! This module depends on nothing but the identity types, so adapters see a small, stable
//! surface.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::identity::{PartnerId, Payload, UserId};

/// A boxed, `Send` future, the return type of [`UserResolver`] and [`PartnerDirectory`]
/// methods. The same type as `futures_util::future::BoxFuture`, defined here so that
/// implementors need no extra crate and jwtgate's public API names none.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An error from an application's [`UserResolver`] or [`PartnerDirectory`].
///
/// The request fails with a 500; the message goes to the log, never to the client.
#[derive(Debug)]
pub struct LookupError(Box<dyn std::error::Error + Send + Sync>);

impl LookupError {
    /// Wraps any error.
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(error.into())
    }
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for LookupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// Resolves (or registers) the user for an accepted token.
///
/// This is where automatic registration goes: look the `email` claim up, create the user when
/// missing, return its id. `Ok(None)` refuses the token with a 401.
pub trait UserResolver: Send + Sync + 'static {
    /// The user for `payload`, `None` to refuse it.
    fn resolve<'a>(
        &'a self,
        payload: &'a Payload,
    ) -> BoxFuture<'a, Result<Option<UserId>, LookupError>>;
}

/// Where partners are looked up by email.
pub trait PartnerDirectory: Send + Sync + 'static {
    /// Every partner whose email is exactly `email`.
    fn partners_by_email<'a>(
        &'a self,
        email: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PartnerId>, LookupError>>;
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

/// A directory held in memory, from code or from the config file's `[directory]`.
///
/// Emails compare exactly, as Odoo's `=` search does.
#[derive(Clone, Debug, Default)]
pub struct InMemoryDirectory {
    by_email: HashMap<String, Vec<PartnerId>>,
}

impl InMemoryDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a partner.
    #[must_use]
    pub fn with_partner(mut self, id: u64, email: impl Into<String>) -> Self {
        self.insert(PartnerId(id), email);
        self
    }

    /// Adds a partner in place.
    pub fn insert(&mut self, id: PartnerId, email: impl Into<String>) {
        self.by_email.entry(email.into()).or_default().push(id);
    }
}

impl PartnerDirectory for InMemoryDirectory {
    fn partners_by_email<'a>(
        &'a self,
        email: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PartnerId>, LookupError>> {
        let found = self.by_email.get(email).cloned().unwrap_or_default();
        Box::pin(async move { Ok(found) })
    }
}
