//! JWT bearer authentication for axum and tower.
//!
//! Tokens are read from wherever providers put them ([`TokenSource`]: the `Authorization`
//! header, a raw header, a provider's cookie), and [`Preset`]s configure Cloudflare Access,
//! Keycloak, Auth0, Entra ID, Google, Cognito or any OIDC issuer from a few values.
//!
//! jwtgate brings Odoo's `auth_jwt` model to Rust services: named **validators** (issuer,
//! audiences, one pinned algorithm, a key source, a [`User`] and [`Partner`] rule, `next`
//! chaining, cookie mode) and per-route **auth modes** `jwt_<validator>` (token required) and
//! `public_or_jwt_<validator>` (anonymous allowed, sent credentials must be valid).
//!
//! A request that passes carries an [`Identity`] in its extensions (payload, user id, partner
//! id, validator name), read by the axum extractors of [`extract`] ([`Claims`](extract::Claims),
//! [`UserId`](identity::UserId), [`PartnerId`](identity::PartnerId), ...). A request that fails
//! gets an RFC 6750 response: 401 with `WWW-Authenticate: Bearer ...`, or 503 with
//! `Retry-After` when keys cannot be had.
//!
//! ```
//! use axum::{Router, routing::get};
//! use jwtgate::identity::UserId;
//! use jwtgate::{Algorithm, KeySource, Registry, User, Validator};
//!
//! # fn main() -> Result<(), jwtgate::Error> {
//! let registry = Registry::builder()
//!     .validator(
//!         Validator::new("demo")
//!             .issuer("https://issuer.example")
//!             .audience("my-api")
//!             .algorithm(Algorithm::HS256)
//!             .key(KeySource::secret("thesecret-of-at-least-32-bytes!!"))
//!             .user(User::fixed(42)),
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
//! # Where things are
//!
//! The root holds what a first app names. The rest is by module:
//!
//! | module | what |
//! |---|---|
//! | [`validator`] | [`Validator`], [`Preset`] and its Cloudflare options, the [`User`] and [`Partner`] rules |
//! | [`registry`] | [`Registry`], its builder, [`Verdict`](registry::Verdict) (`inspect`) |
//! | [`layer`] | the tower middleware and the responders that write refusals |
//! | [`rejection`] | why a request was refused, as a value |
//! | [`identity`] | what an accepted request carries: [`Identity`], payload, user, partner |
//! | [`extract`] | axum extractors (feature `axum`) |
//! | [`authz`] | scope and role requirements |
//! | [`directory`] | the extension points: user resolvers and directories, partner directories |
//! | [`login`] | browser sign-in and sign-out (feature `login`) |
//! | [`session`] | sign-ins' sessions: timeouts, refresh, where they are stored, the access token relay |
//! | [`revocation`] | sign-outs and revoked tokens on every instance |
//! | [`remote`] | remote key sets: options and cache state (feature `remote-keys`) |
//! | [`config`] | a whole setup from a TOML file (feature `config`) |
//! | [`health`] | a health-check service |
//! | [`error`] | build and configuration errors |
//!
//! # Features
//!
//! | feature | what | default |
//! |---|---|---|
//! | `axum` | the extractors of [`extract`] through `axum-core` | yes |
//! | `config` | [`config::Config`]: a whole setup from a TOML file | yes |
//! | `remote-keys` | [`KeySource::jwks_url`], [`KeySource::oidc_issuer`] and the presets' key sets, with a shared cache | yes |
//! | `login` | browser sign-in: login redirects, the OIDC authorization-code flow, logout (needs `remote-keys`) | yes |
//! | `metrics` | counters, a histogram and gauges through the `metrics` facade, for any exporter | no |
//!
//! # Security defaults
//! - One pinned algorithm per validator; `none` never passes; the key type must fit it.
//! - `exp`, `iss` and `aud` are required; `nbf` and `iat` are checked when present.
//! - Tokens with `crit` headers, duplicated members, deep JSON, 5 parts (JWE) or over 16 KiB
//!   (configurable) are refused before any key is used; header keys (`jku`, `x5u`, `jwk`,
//!   `x5c`) are ignored.
//! - Registered claims that are present have their registered types (`exp`/`nbf`/`iat`
//!   finite, non-negative, before year 10000; `sub`/`jti` strings).
//! - No token or secret is logged or shown by `Debug`.
//! - Signatures are checked with jsonwebtoken's aws-lc-rs provider, called by name, so another
//!   crate enabling jsonwebtoken's `rust_crypto` changes nothing here.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]
// Test helpers take values (`json!(..)`) for brevity at the call sites.
#![cfg_attr(test, allow(clippy::needless_pass_by_value))]

// The layout reads edge to kernel: `layer` (tower) -> `engine` (chain, combine, identify) ->
// `validator` (settings, presets) -> `jws` (parsing, claims, keys; no HTTP). `credentials`
// reads tokens from requests, `cookie` is Odoo's cookie mode, `directory` holds the extension
// points, `remote` the shared key caches.

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
#[path = "fuzzing.rs"]
pub mod __fuzz;
pub mod authz;
#[cfg(feature = "config")]
pub mod config;
mod cookie;
mod credentials;
pub mod directory;
mod engine;
pub mod error;
#[cfg(feature = "axum")]
pub mod extract;
mod failure;
#[cfg(feature = "forward-auth")]
pub mod forward_auth;
pub mod health;
pub mod identity;
mod jws;
mod key_source;
pub mod layer;
#[cfg(feature = "login")]
pub mod login;
mod mode;
mod navigation;
mod percent;
pub mod registry;
pub mod rejection;
#[cfg(feature = "remote-keys")]
pub mod remote;
#[cfg(not(feature = "remote-keys"))]
#[path = "remote/disabled.rs"]
mod remote;
pub mod revocation;
mod secret;
pub mod session;
mod set_cookie;
mod store;
mod suggest;
mod token_cache;
pub mod validator;

// The root holds what a first app names; everything else is reached through its module
// (`jwtgate::extract::Claims`, `jwtgate::login::Login`, `jwtgate::layer::JsonRejection`, ...).
pub use cookie::CookieMode;
pub use credentials::TokenSource;
#[doc(no_inline)]
pub use error::{Error, ErrorKind};
#[doc(no_inline)]
pub use identity::Identity;
pub use jws::algorithm::Algorithm;
pub use key_source::KeySource;
pub use mode::AuthMode;
#[doc(no_inline)]
pub use registry::{Registry, RegistryBuilder};
#[doc(no_inline)]
pub use validator::{Partner, Preset, User, Validator};

/// The README's examples compile (`cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
