//! A [jwtgate] user and partner directory on SQLite (embedded, the default) or Postgres, through
//! sqlx: users found by email or by issuer and subject, registered on first sight (race-free),
//! partners (contacts) by email, a bounded lookup cache, and a profile form.
//!
//! ```no_run
//! use jwtgate::{Algorithm, KeySource, Registry, User, Validator, directory::UserMatch, identity::UserRecord};
//! use jwtgate_sqlx::{SqlDirectory, SqlSettings};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let directory = SqlDirectory::connect(&SqlSettings::new("sqlite://app.db")).await?;
//! let registry = Registry::builder()
//!     .users(directory.clone())
//!     .directory(directory.clone())
//!     .validator(
//!         Validator::new("app")
//!             .issuer("https://issuer.example")
//!             .audience("my-api")
//!             .algorithm(Algorithm::RS256)
//!             .key(KeySource::jwks_url("https://issuer.example/jwks.json"))
//!             .user(User::directory(UserMatch::Email).register(true).profile_url("/profile")),
//!     )
//!     .build()?;
//! let app = axum::Router::new()
//!     .route("/me", axum::routing::get(|user: UserRecord| async move { format!("{:?}", user.full_name) }))
//!     .merge(jwtgate_sqlx::profile::router(directory.clone(), "/profile"))
//!     .route_layer(registry.layer("jwt_app")?);
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
//!
//! - **Emails** compare by one rule on both databases (`jwtgate::directory::normalize_email`):
//!   leading and trailing spaces trimmed, ASCII letters lowercased, every other character as it
//!   is (Postgres is held to ASCII with the "C" collation), so a look-alike such as the Kelvin
//!   sign never meets another address. jwtgate never matches or registers by an email whose
//!   `email_verified` is `false`.
//! - **Registration** is one transaction per new user, race-free through a unique index and
//!   `INSERT ... ON CONFLICT DO NOTHING`: concurrent first requests create one user and all
//!   get its id. A user is filled from the single contact with that email (names, phone; the
//!   contact is linked), else is a placeholder with `profile_complete = false`.
//! - **Errors**: a database that cannot be reached or does not answer within `timeout` gives
//!   503 with `Retry-After`; a failing query 500; neither shows SQL or values to the client.
//! - **Cache**: found users and partners are kept for `cache_ttl` (default 60 s, bounded to
//!   `cache_capacity` entries), per validator and key; registration and profile changes go
//!   through the cache. `last_seen_at` is written on a cache miss, not on every request.
//! - **Schema**: migrations create `jwtgate_users` and `jwtgate_contacts` (recorded in
//!   `jwtgate_migrations`); an application maps its own tables with
//!   [`UsersTable`] and
//!   [`ContactsTable`] (names are checked and quoted,
//!   values always bound).
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod config;
mod directory;
mod error;
mod migrate;
#[cfg(feature = "axum")]
pub mod profile;
mod settings;
mod sql;

pub use directory::SqlDirectory;
pub use error::{Error, ErrorKind};
pub use settings::{ContactsTable, SqlSettings, UsersTable, redact_url};
