//! How a validator turns an accepted token into a user and a partner.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::identity::{PartnerId, Payload, UserId};

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

impl std::error::Error for LookupError {}

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

/// Which user a validated request acts as.
///
/// There is no default: auth_jwt's default (the superuser) silently grants too much.
#[derive(Clone)]
#[non_exhaustive]
pub enum UserStrategy {
    /// Always this user.
    Static(UserId),
    /// The value of this claim, as it is in the token (a number or a string); a token without
    /// it is refused.
    Claim(String),
    /// An application callback.
    Resolver(Arc<dyn UserResolver>),
}

impl fmt::Debug for UserStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Static(id) => f.debug_tuple("Static").field(id).finish(),
            Self::Claim(c) => f.debug_tuple("Claim").field(c).finish(),
            Self::Resolver(_) => f.write_str("Resolver(..)"),
        }
    }
}

/// Where partners are looked up by email.
pub trait PartnerDirectory: Send + Sync + 'static {
    /// Every partner whose email is exactly `email`.
    fn partners_by_email<'a>(
        &'a self,
        email: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PartnerId>, LookupError>>;
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
