//! Server-side sessions: sign-ins that outlive the provider's 5-minute tokens.
//!
//! An OIDC sign-in (see [`login`](crate::login)) keeps what it needs to go on without the
//! browser in a session record: the subject, the provider's `sid`, the current ID and access
//! tokens, the refresh token, when the session started and was last seen. The record is
//! sealed (AES-256-GCM, with a key derived from the validator's cookie secret and bound to its
//! session): a dump of the store holds nothing a client could use.
//!
//! The browser's cookie keeps the ID token's claims, the session id and two instants (when the
//! session ends, when it was last seen), all signed: a request whose cookie is still fresh
//! needs no store read. Once its tokens are within a margin of expiry, the next request reads
//! the record and refreshes it at the provider (`grant_type=refresh_token`), one refresh per
//! session at a time across every instance (a store lock kept alive while the provider
//! answers); the requests that arrive meanwhile wait for its result instead of spending the
//! refresh token a second time. Idle and absolute timeouts ([`SessionOptions`]) end a session
//! whatever its tokens say.
//!
//! A handler calls APIs as the user with the session's current access token: the
//! [`AccessToken`] extractor (read from the record when asked for, never logged).
//!
//! A [`SessionStore`] keeps the records: the registry's store when it has one
//! ([`RevocationStore::sessions`](crate::revocation::RevocationStore::sessions)), so that
//! `jwtgate-redis` serves both, else [`MemorySessions`] (one process).

mod memory;
mod options;
pub(crate) mod record;
mod tokens;

use std::time::Duration;

pub use self::memory::MemorySessions;
pub use self::options::SessionOptions;
pub(crate) use self::tokens::SessionTokens;
pub use self::tokens::{AccessToken, AccessTokenError};
pub use crate::store::StoreError;

use crate::directory::BoxFuture;

/// Where session records live. Keys are opaque strings (a validator's name and a session id);
/// values are sealed bytes the store never reads.
pub trait SessionStore: Send + Sync + 'static {
    /// A short name for `/healthz` and logs (`memory`, `redis`).
    fn name(&self) -> &'static str;

    /// The record under `key`, if there is one.
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;

    /// Writes `value` under `key`, to be forgotten at `until` (Unix seconds).
    fn save<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        until: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Deletes the record under `key` (none is not an error).
    fn remove<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Takes the lock of `key` for `owner`, or renews it when `owner` holds it, for `ttl`:
    /// `true` when `owner` holds it now. Another owner's lock is never taken before it lapses.
    fn lock<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Releases the lock of `key` if `owner` still holds it (a lapsed lock another owner has
    /// taken since is left alone).
    fn unlock<'a>(&'a self, key: &'a str, owner: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;
}
