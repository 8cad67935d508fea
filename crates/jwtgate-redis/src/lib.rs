//! A [jwtgate] revocation store on Redis or Valkey: a sign-out, a revoked token or subject,
//! or a provider's back-channel logout written by one instance is refused by every instance
//! within about a second, with no Redis round trip per request.
//!
//! - Every entry is in one hash (`<prefix>{revocations}:entries`) and every write is also a
//!   record in a stream (`<prefix>{revocations}:log`), both by one script, so neither is
//!   ever without the other.
//! - Each instance loads the hash into its local mirror, then follows the stream with a
//!   blocking read that returns at least once a second; each return confirms the mirror
//!   current. After any error it reconnects (backoff from 100 ms to at most 2 s) and loads
//!   the hash again: what was written while it was away is in the hash, so nothing is lost,
//!   and the mirror takes it in one swap (adding what it missed, keeping what it has).
//! - When the mirror cannot be confirmed within the registry's `max_staleness`, requests are
//!   answered 503 (or fail open, if chosen) and `/healthz` says why; a Redis error never
//!   signs anyone out.
//!
//! ```no_run
//! use jwtgate::Registry;
//! use jwtgate_redis::{RedisSettings, RedisStore};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::new(RedisSettings::new("redis://127.0.0.1:6379/0").prefix("app:"))?;
//! let registry = Registry::builder()
//!     // .validator(...)
//!     .store(store)
//!     .build()?;
//! # let _ = registry;
//! # Ok(())
//! # }
//! ```
//!
//! The same store keeps sign-ins' session records (`<prefix>session:<validator>/<id>`, sealed
//! by jwtgate: Redis never sees a token) and their refresh locks
//! (`<prefix>session-lock:...`, taken with `SET NX PX`, renewed and released only by their
//! holder): a session signed in on one instance is refreshed once, on any of them.
//!
//! From a config file, `[store] url` (and `prefix`) are read by
//! [`RedisSettings::from_config`]; jwtgate reads the other keys of the table.
//!
//! [jwtgate]: https://docs.rs/jwtgate

mod config;
mod error;
mod follow;
mod keys;
mod reply;
mod sessions;
mod settings;
mod store;

pub use error::Error;
pub use settings::RedisSettings;
pub use store::RedisStore;
