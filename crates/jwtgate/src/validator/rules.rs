//! The user and partner rules of a validator as values, in the manner of reqwest's redirect
//! `Policy` and tower-http's `AllowOrigin`: one [`User`] (fixed, a claim, a resolver or the
//! directory) and one [`Partner`], each carrying only the options that apply to it, so that no
//! setter can silently do nothing.

use std::fmt;
use std::sync::Arc;

use super::{DirectoryRule, UserStrategy};
use crate::directory::{UserMatch, UserResolver};
use crate::identity::UserId;

/// Which user a validated request acts as. There is no default: auth_jwt's default (the
/// superuser) silently grants too much.
///
/// ```
/// use jwtgate::directory::UserMatch;
/// use jwtgate::User;
///
/// let fixed = User::fixed(42);
/// let from_claim = User::claim("sub");
/// let from_directory = User::directory(UserMatch::Email)
///     .register(true)
///     .profile_url("/profile");
/// # let _ = (fixed, from_claim, User::from(from_directory));
/// ```
#[derive(Clone)]
#[must_use]
pub struct User {
    pub(crate) strategy: UserStrategy,
    pub(crate) profile_url: Option<String>,
}

impl User {
    fn of(strategy: UserStrategy) -> Self {
        Self {
            strategy,
            profile_url: None,
        }
    }

    /// Every request acts as this user.
    pub fn fixed(id: impl Into<UserId>) -> Self {
        Self::of(UserStrategy::Static(id.into()))
    }

    /// The value of `claim` (such as `sub`), as it is in the token (a number or a string); a
    /// token without it is refused.
    pub fn claim(claim: impl Into<String>) -> Self {
        Self::of(UserStrategy::Claim {
            claim: claim.into(),
            service: None,
        })
    }

    /// What `resolver` returns (a lookup, an automatic registration); a closure
    /// `Fn(&Payload) -> impl Future<Output = Result<Option<UserId>, LookupError>>` will do.
    pub fn resolver(resolver: impl UserResolver) -> Self {
        Self::of(UserStrategy::Resolver(Arc::new(resolver)))
    }

    /// Found in the registry's [`UserDirectory`](crate::directory::UserDirectory) (see
    /// `jwtgate-sqlx`), by email or by issuer and subject, with the directory's own options.
    /// A token whose `email_verified` is `false` is never matched or registered by its email.
    pub fn directory(matching: UserMatch) -> DirectoryUser {
        DirectoryUser {
            rule: DirectoryRule {
                matching,
                register: false,
                service_users: false,
            },
            profile_url: None,
        }
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("strategy", &self.strategy)
            .field("profile_url", &self.profile_url)
            .finish()
    }
}

/// Users from the directory, and what the directory may do with them; made by
/// [`User::directory`], used wherever a [`User`] is.
#[derive(Clone, Debug)]
#[must_use]
pub struct DirectoryUser {
    rule: DirectoryRule,
    profile_url: Option<String>,
}

impl DirectoryUser {
    /// A valid token whose user does not exist creates it (from the contact with that email
    /// when there is one). Default off.
    pub fn register(mut self, register: bool) -> Self {
        self.rule.register = register;
        self
    }

    /// Tokens without an email (Cloudflare Access service tokens) are users keyed by their
    /// `common_name`. Default off: they are refused.
    pub fn service_users(mut self, enabled: bool) -> Self {
        self.rule.service_users = enabled;
        self
    }

    /// While a user's profile is incomplete, browser navigations to this validator's routes
    /// are sent to this local path (`?next=` the asked page).
    pub fn profile_url(mut self, path: impl Into<String>) -> Self {
        self.profile_url = Some(path.into());
        self
    }
}

impl From<DirectoryUser> for User {
    fn from(d: DirectoryUser) -> Self {
        Self {
            strategy: UserStrategy::Directory(d.rule),
            profile_url: d.profile_url,
        }
    }
}

/// How a validated request's partner is found: the `email` claim looked up in the registry's
/// partner directory.
///
/// ```
/// use jwtgate::Partner;
///
/// let optional = Partner::by_email();
/// let required = Partner::by_email().required();
/// # let _ = (optional, required);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct Partner {
    pub(crate) required: bool,
}

impl Partner {
    /// The single partner whose email is the token's; none when there is no single one.
    pub fn by_email() -> Self {
        Self { required: false }
    }

    /// A token that matches no single partner is refused.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
}
