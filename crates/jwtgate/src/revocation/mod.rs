//! Revocation: sign-outs that hold on every instance.
//!
//! A [`Revocation`] names what is no longer accepted, always within one issuer (a `sub` or a
//! `sid` is unique only there):
//!
//! - [`Target::Session`]: one jwtgate browser session (the cookie-mode cookie carries a random
//!   session id of its own);
//! - [`Target::ProviderSession`]: every session and bearer token carrying the provider's `sid`
//!   (what an OpenID back-channel logout names);
//! - [`Target::Token`]: one token by its `jti`. A token without `jti` cannot be revoked alone;
//!   revoke its subject (or its provider session) instead;
//! - [`Target::Subject`]: every token and session of `sub` issued at or before an instant (by
//!   `iat`; a credential without `iat` counts as issued before).
//!
//! Every entry carries `until`, the instant after which nothing it matches can still be valid;
//! it disappears then, so the set never grows without bound (and it has a cap,
//! [`StoreOptions::max_entries`]).
//!
//! The check runs on every accepted credential, verified-token cache hits included, against a
//! local [`Mirror`] of the store: no network round trip per request. A [`RevocationStore`]
//! writes revocations and keeps every instance's mirror current: [`MemoryStore`] for one
//! process (the default), `jwtgate-redis` for several. When a store cannot confirm its mirror
//! is current within [`StoreOptions::max_staleness`], requests are answered 503 (unless
//! [`StoreOptions::fail_open`]) and `/healthz` says so; a store fault never ends a session.
//!
//! ```
//! # async fn run(registry: jwtgate::Registry) -> Result<(), jwtgate::Error> {
//! use jwtgate::revocation::Target;
//! // Everything `user-7` holds from the validator's issuer, as of now.
//! registry
//!     .revoker()
//!     .revoke("idp", Target::subject_now("user-7"))
//!     .await?;
//! # Ok(())
//! # }
//! ```

mod memory;
mod mirror;
mod options;
mod probe;
mod revoker;
mod wire;

use std::fmt;

pub use self::memory::MemoryStore;
pub use self::mirror::{Mirror, MirrorState};
pub use self::options::StoreOptions;
pub use self::revoker::Revoker;
pub use self::wire::DecodeError;
pub use crate::store::StoreError;

pub(crate) use self::mirror::Revoked;
pub(crate) use self::probe::Probe;

use crate::directory::BoxFuture;

/// What a [`Revocation`] refuses, within its issuer.
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Target {
    /// One jwtgate browser session, by its session id.
    Session(String),
    /// Every session and token carrying the provider's session id (`sid`).
    ProviderSession(String),
    /// One token, by its `jti`.
    Token(String),
    /// Every token and session of `subject` whose `iat` is at or before `before` (Unix
    /// seconds).
    Subject {
        /// The `sub` claim.
        subject: String,
        /// Credentials issued at or before this instant are refused.
        before: u64,
    },
}

impl Target {
    /// Every token and session of `subject` issued up to now.
    pub fn subject_now(subject: impl Into<String>) -> Self {
        Self::Subject {
            subject: subject.into(),
            before: crate::jws::claims::now(),
        }
    }

    /// A short, stable name of the kind (`session`, `provider_session`, `token`, `subject`),
    /// for logs and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Session(_) => "session",
            Self::ProviderSession(_) => "provider_session",
            Self::Token(_) => "token",
            Self::Subject { .. } => "subject",
        }
    }

    /// The identifier it names (session id, `sid`, `jti` or `sub`).
    pub fn value(&self) -> &str {
        match self {
            Self::Session(v) | Self::ProviderSession(v) | Self::Token(v) => v,
            Self::Subject { subject, .. } => subject,
        }
    }
}

// Identifiers are not secrets, but session ids are bearer-like: shown shortened.
impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Session(id) => write!(f, "Session({}…)", id.get(..6).unwrap_or("")),
            Self::ProviderSession(sid) => f.debug_tuple("ProviderSession").field(sid).finish(),
            Self::Token(jti) => f.debug_tuple("Token").field(jti).finish(),
            Self::Subject { subject, before } => f
                .debug_struct("Subject")
                .field("subject", subject)
                .field("before", before)
                .finish(),
        }
    }
}

/// One revocation: what, within which issuer, and until when it must hold.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Revocation {
    issuer: String,
    target: Target,
    until: u64,
}

impl Revocation {
    /// Refuses `target` of `issuer` until `until` (Unix seconds), after which nothing it
    /// matches can still be valid.
    pub fn new(issuer: impl Into<String>, target: Target, until: u64) -> Self {
        Self {
            issuer: issuer.into(),
            target,
            until,
        }
    }

    /// The issuer (`iss`) whose credentials it refuses.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// What it refuses.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// When it ends (Unix seconds).
    pub fn until(&self) -> u64 {
        self.until
    }

    /// The identity of the entry in a store: two revocations with the same key are one entry
    /// (the later `before` and `until` win). Unambiguous whatever the issuer holds.
    pub fn key(&self) -> String {
        format!(
            "{}:{}:{}{}",
            self.target.kind(),
            self.issuer.len(),
            self.issuer,
            self.target.value()
        )
    }

    /// The entry as a store keeps it (a line of JSON; [`decode`](Self::decode) reads it back).
    pub fn encode(&self) -> String {
        wire::encode(self)
    }

    /// Reads an entry a store kept. Store contents are untrusted: sizes are bounded and
    /// anything unexpected is an error.
    pub fn decode(text: &[u8]) -> Result<Self, DecodeError> {
        wire::decode(text)
    }

    /// Merges a later write of the same entry: the wider of the two.
    pub(crate) fn merge(&mut self, other: &Self) {
        self.until = self.until.max(other.until);
        if let (Target::Subject { before, .. }, Target::Subject { before: b, .. }) =
            (&mut self.target, &other.target)
        {
            *before = (*before).max(*b);
        }
    }
}

/// Where revocations live: written by one instance, seen by all. The core keeps the check on
/// a local [`Mirror`]; a store writes entries and keeps mirrors current.
pub trait RevocationStore: Send + Sync + 'static {
    /// A short name for `/healthz` and logs (`memory`, `redis`).
    fn name(&self) -> &'static str;

    /// Writes `revocation` where every instance will see it, and applies it to this
    /// instance's mirrors. `Ok` only once it is stored.
    fn revoke<'a>(&'a self, revocation: &'a Revocation) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Starts keeping `mirror` current (called once per registry, when it is built): load what
    /// the store holds, follow its changes in order, load again after a disconnect, and
    /// [`confirm`](Mirror::confirm) each time the mirror is known current. Runs until the
    /// mirror's registry is dropped.
    fn follow(&self, mirror: Mirror);

    /// Records `key` as used until `until` (Unix seconds): `true` the first time, `false` when
    /// it was already (the back-channel logout's `jti` replay set).
    fn first_use<'a>(&'a self, key: &'a str, until: u64)
    -> BoxFuture<'a, Result<bool, StoreError>>;

    /// The same store's session records, when it keeps them (`jwtgate-redis` and
    /// [`MemoryStore`] do): sign-ins' sessions then live where revocations do. `None` (the
    /// default): they stay in this process.
    fn sessions(&self) -> Option<std::sync::Arc<dyn crate::session::SessionStore>> {
        None
    }
}

#[cfg(all(test, feature = "metrics"))]
mod metrics_tests {
    use axum::body::Body;
    use http::{Request, StatusCode};
    use tower::ServiceExt as _;

    use super::{Mirror, Revocation, RevocationStore, StoreError, Target};
    use crate::directory::BoxFuture;
    use crate::{Algorithm, Registry, RegistryBuilder, User, Validator};

    const SECRET: &str = "thesecret-thesecret-thesecret-32";

    fn build(builder: RegistryBuilder) -> Registry {
        builder
            .validator(
                Validator::new("v")
                    .issuer("i")
                    .audience("a")
                    .algorithm(Algorithm::HS256)
                    .key(crate::KeySource::secret(SECRET))
                    .user(User::claim("sub")),
            )
            .build()
            .unwrap()
    }

    /// The status of `path` on `app` with a bearer token of `extra` claims (`iss`, `aud`,
    /// `sub` and `exp` given).
    async fn status(app: &axum::Router, path: &str, extra: serde_json::Value) -> StatusCode {
        let mut claims = serde_json::json!({
            "iss": "i", "aud": "a", "sub": "ada", "exp": crate::jws::claims::now() + 60,
        });
        if let (Some(c), serde_json::Value::Object(extra)) = (claims.as_object_mut(), extra) {
            c.extend(extra);
        }
        let token = jwtgate_test::mint(
            &jwtgate_test::TestKey::hmac(SECRET),
            "HS256",
            serde_json::json!({}),
            &claims,
        );
        let req = Request::get(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        app.clone().oneshot(req).await.unwrap().status()
    }

    fn routes(registry: &Registry) -> axum::Router {
        axum::Router::new()
            .route("/x", axum::routing::get(|| async { "ok" }))
            .route_layer(registry.layer("jwt_v").unwrap())
            .route_service("/healthz", registry.health_service())
    }

    /// A store that never confirms its mirror and fails every write.
    struct Away;

    impl RevocationStore for Away {
        fn name(&self) -> &'static str {
            "away"
        }
        fn revoke<'a>(&'a self, _: &'a Revocation) -> BoxFuture<'a, Result<(), StoreError>> {
            Box::pin(async { Err(StoreError::new("connection refused")) })
        }
        fn follow(&self, mirror: Mirror) {
            mirror.report_error(&StoreError::new("connection refused"));
        }
        fn first_use<'a>(&'a self, _: &'a str, _: u64) -> BoxFuture<'a, Result<bool, StoreError>> {
            Box::pin(async { Ok(true) })
        }
    }

    /// What revocation records through the `metrics` facade, read back as Prometheus text.
    #[test]
    fn revocations_refusals_and_the_mirror_are_counted() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        metrics::with_local_recorder(&recorder, || {
            rt.block_on(async {
                let registry = build(Registry::builder());
                registry
                    .revoker()
                    .revoke("v", Target::Token("gone".into()))
                    .await
                    .unwrap();
                let app = routes(&registry);
                let revoked = serde_json::json!({"jti": "gone"});
                assert_eq!(status(&app, "/x", revoked).await, StatusCode::UNAUTHORIZED);
                assert_eq!(
                    status(&app, "/healthz", serde_json::json!({})).await,
                    StatusCode::OK
                );
                // A store that never confirms its mirror: refused requests and the store's
                // errors are counted too.
                let registry = build(Registry::builder().store(Away));
                assert!(
                    registry
                        .revoker()
                        .revoke("v", Target::Token("x".into()))
                        .await
                        .is_err()
                );
                let app = routes(&registry);
                assert_eq!(
                    status(&app, "/x", serde_json::json!({})).await,
                    StatusCode::SERVICE_UNAVAILABLE
                );
            });
        });
        let text = handle.render();
        for line in [
            "jwtgate_revocation_unavailable_total 1",
            "jwtgate_store_errors_total 2",
            "jwtgate_revocations_written_total{kind=\"token\"} 1",
            "jwtgate_revoked_requests_total{kind=\"token\"} 1",
            "jwtgate_revocation_entries 1",
            "jwtgate_revocation_staleness_seconds 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }
}
