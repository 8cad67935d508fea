//! JWT bearer authentication for axum and tower.
//!
//! jwtgate brings Odoo's `auth_jwt` model to Rust services: named **validators** (issuer,
//! audiences, one pinned algorithm, a key source, user and partner strategies, `next`
//! chaining, cookie mode) and per-route **auth modes** `jwt_<validator>` (token required) and
//! `public_or_jwt_<validator>` (anonymous allowed, sent credentials must be valid).
//!
//! A request that passes carries an [`Identity`] in its extensions (payload, user id, partner
//! id, validator name), read by the axum extractors [`Claims`], [`Payload`], [`UserId`],
//! [`PartnerId`] and [`ValidatorName`]. A request that fails gets an RFC 6750 response: 401
//! with `WWW-Authenticate: Bearer ...`, or 503 with `Retry-After` when keys cannot be had.
//!
//! ```
//! use axum::{Router, routing::get};
//! use jwtgate::{Algorithm, Registry, UserId, Validator};
//!
//! # fn main() -> Result<(), jwtgate::Error> {
//! let registry = Registry::builder()
//!     .validator(
//!         Validator::new("demo")
//!             .issuer("https://issuer.example")
//!             .audience("my-api")
//!             .algorithm(Algorithm::HS256)
//!             .secret("thesecret-of-at-least-32-bytes!!")
//!             .static_user(42),
//!     )
//!     .build()?;
//!
//! let app: Router = Router::new()
//!     .route("/whoami", get(|user: UserId| async move { user.to_string() }))
//!     .route_layer(registry.layer("jwt_demo")?)
//!     .merge(
//!         Router::new()
//!             .route("/hello", get(|user: Option<UserId>| async move { format!("{user:?}") }))
//!             .route_layer(registry.layer("public_or_jwt_demo")?),
//!     );
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
//!
//! # Security defaults
//! - One pinned algorithm per validator; `none` never passes; the key type must fit it.
//! - `exp`, `iss` and `aud` are required; `nbf` and `iat` are checked when present.
//! - Tokens with `crit` headers, duplicated members, deep JSON, 5 parts (JWE) or over 8 KiB are
//!   refused before any key is used; header keys (`jku`, `x5u`, `jwk`, `x5c`) are ignored.
//! - No token or secret is logged or shown by `Debug`.
//! - Signatures are checked with jsonwebtoken's aws-lc-rs provider, called by name, so another
//!   crate enabling jsonwebtoken's `rust_crypto` changes nothing here.
#![cfg_attr(docsrs, feature(doc_auto_cfg))]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod algorithm;
mod auth;
mod claims;
#[cfg(feature = "config")]
pub mod config;
mod cookie;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod identity;
mod keys;
pub mod layer;
mod mode;
mod registry;
pub mod rejection;
#[cfg(feature = "remote-keys")]
mod remote;
mod secret;
mod strategy;
mod token;
mod validator;

pub use algorithm::Algorithm;
pub use cookie::CookieConfig;
pub use error::{Error, ErrorKind};
#[cfg(feature = "axum")]
pub use extract::{Claims, ExtractRejection, ExtractRejectionKind};
pub use identity::{Anonymous, Identity, PartnerId, Payload, UserId, ValidatorName};
pub use keys::SkippedKey;
pub use layer::{JwtAuth, JwtAuthLayer};
pub use mode::AuthMode;
pub use registry::{Registry, RegistryBuilder, Verdict};
pub use rejection::{Rejection, RejectionKind};
#[cfg(feature = "remote-keys")]
pub use remote::{KeyCacheState, RemoteKeyOptions};
pub use strategy::{InMemoryDirectory, LookupError, PartnerDirectory, UserResolver, UserStrategy};
pub use validator::Validator;

/// Re-exported so that implementors of [`UserResolver`] and [`PartnerDirectory`] need not
/// depend on `futures-util` themselves.
pub use futures_util::future::BoxFuture;

/// The README's examples compile (`cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
