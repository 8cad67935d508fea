//! Revocation in one process: bearer tokens by `jti`, subject and provider session, checked on
//! verified-token cache hits; a store that cannot confirm its mirror is a 503 (or fails open
//! when told), shown on `/healthz`, and recovers by itself; a write that fails is an error,
//! never a silent success.

use std::sync::{Arc, Mutex};

use axum::Router;
use jwtgate::directory::BoxFuture;
use jwtgate::revocation::{
    MemoryStore, Mirror, Revocation, RevocationStore, StoreError, StoreOptions, Target,
};
use jwtgate::{Algorithm, ErrorKind, KeySource, Registry, RegistryBuilder, User, Validator};
use jwtgate_test::{TestKey, claims, mint};
use jwtgate_tests::{app, get_bearer, get_with, send};
use serde_json::{Value, json};

const SECRET: &str = "thesecret-thesecret-thesecret-32";
const ISS: &str = "https://issuer.example";

fn builder() -> RegistryBuilder {
    Registry::builder().validator(
        Validator::new("v")
            .issuer(ISS)
            .audience("api")
            .algorithm(Algorithm::HS256)
            .key(KeySource::secret(SECRET))
            .user(User::claim("sub")),
    )
}

fn routes(registry: &Registry) -> Router {
    app(
        registry,
        &[("/jwt", "jwt_v"), ("/public", "public_or_jwt_v")],
    )
    .route_service("/healthz", registry.health_service())
}

fn token(extra: Value) -> String {
    let mut c = claims(ISS, "api", 300);
    let Value::Object(extra) = extra else {
        panic!("claims are an object")
    };
    for (k, v) in extra {
        c[k] = v;
    }
    mint(&TestKey::hmac(SECRET), "HS256", json!({}), &c)
}

async fn status(app: &Router, token: &str) -> (u16, Value) {
    let r = get_bearer(app, "/jwt", Some(token)).await;
    (r.status.as_u16(), r.body["error_description"].clone())
}

#[tokio::test]
async fn a_revoked_token_is_refused_even_from_the_verified_token_cache() {
    let registry = builder().build().unwrap();
    let app = routes(&registry);
    // Tokens issued a while ago; the subject's revocation is one second before now.
    let now = jwtgate_test::now() - 10;
    let first = token(json!({"sub": "ada", "jti": "t-1", "iat": now, "sid": "p-1"}));
    let second = token(json!({"sub": "ada", "jti": "t-2", "iat": now}));
    // Twice each: the second request of a token is a cache hit.
    for t in [&first, &first, &second, &second] {
        assert_eq!(status(&app, t).await.0, 200);
    }
    registry
        .revoker()
        .revoke("v", Target::Token("t-1".into()))
        .await
        .unwrap();
    assert_eq!(
        status(&app, &first).await,
        (401, json!("the token was revoked"))
    );
    let r = get_bearer(&app, "/public", Some(&first)).await;
    assert_eq!(
        r.status, 401,
        "a sent token must be valid on a public route too"
    );
    assert_eq!(status(&app, &second).await.0, 200);
    // The provider's session: every token carrying its `sid`.
    let in_session = token(json!({"sub": "bob", "jti": "t-3", "iat": now, "sid": "p-2"}));
    assert_eq!(status(&app, &in_session).await.0, 200);
    registry
        .revoker()
        .revoke("v", Target::ProviderSession("p-2".into()))
        .await
        .unwrap();
    assert_eq!(
        status(&app, &in_session).await,
        (401, json!("the token's sessions were signed out"))
    );
    // A subject, up to an instant: tokens issued after it pass, and so do other subjects.
    registry
        .revoker()
        .revoke(
            "v",
            Target::Subject {
                subject: "ada".into(),
                before: now + 9,
            },
        )
        .await
        .unwrap();
    assert_eq!(status(&app, &second).await.0, 401);
    let at_the_instant = token(json!({"sub": "ada", "iat": now + 9}));
    assert_eq!(status(&app, &at_the_instant).await.0, 401);
    let later = token(json!({"sub": "ada", "iat": now + 10}));
    let without_iat = token(json!({"sub": "ada"}));
    let other = token(json!({"sub": "cy", "iat": now + 9}));
    assert_eq!(status(&app, &later).await.0, 200);
    assert_eq!(
        status(&app, &without_iat).await.0,
        401,
        "no iat: issued before"
    );
    assert_eq!(status(&app, &other).await.0, 200);
    // The same value under another issuer is another entry.
    let state = registry.revocation_state();
    assert_eq!((state.entries, state.fresh), (3, true));
}

#[tokio::test]
async fn the_revoker_names_validators_and_bounds_identifiers() {
    let registry = builder().build().unwrap();
    let err = registry
        .revoker()
        .revoke("nope", Target::Token("x".into()))
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.message()),
        (&ErrorKind::UnknownValidator, "no validator named \"nope\"")
    );
    let err = registry
        .revoker()
        .revoke("v", Target::Token("x".repeat(1025)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidSetting);
    // A full store refuses the write and says so.
    let registry = builder()
        .store_options(StoreOptions::new().max_entries(1))
        .build()
        .unwrap();
    registry
        .revoker()
        .revoke("v", Target::Token("1".into()))
        .await
        .unwrap();
    let err = registry
        .revoker()
        .revoke("v", Target::Token("2".into()))
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.message()),
        (
            &ErrorKind::Store,
            "revocation store (memory): the revocation store is full (max_entries = 1)"
        )
    );
}

/// A store whose mirror is confirmed, or not, by the test, and whose writes fail on demand.
#[derive(Clone, Default)]
struct RemoteLike {
    mirror: Arc<Mutex<Option<Mirror>>>,
    failing: Arc<Mutex<bool>>,
}

impl RemoteLike {
    fn mirror(&self) -> Mirror {
        self.mirror.lock().unwrap().clone().unwrap()
    }
}

impl RevocationStore for RemoteLike {
    fn name(&self) -> &'static str {
        "remote-like"
    }
    fn revoke<'a>(&'a self, r: &'a Revocation) -> BoxFuture<'a, Result<(), StoreError>> {
        let result = if *self.failing.lock().unwrap() {
            Err(StoreError::new("connection refused"))
        } else {
            self.mirror().apply([r.clone()]);
            Ok(())
        };
        Box::pin(async move { result })
    }
    fn follow(&self, mirror: Mirror) {
        *self.mirror.lock().unwrap() = Some(mirror);
    }
    fn first_use<'a>(&'a self, _: &'a str, _: u64) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async { Ok(true) })
    }
}

async fn health(app: &Router) -> (u16, Value) {
    let r = send(app, get_with("/healthz", &[])).await;
    (r.status.as_u16(), r.body)
}

#[tokio::test]
async fn a_mirror_not_known_current_is_a_503_until_it_is_again() {
    let store = RemoteLike::default();
    let registry = builder().store(store.clone()).build().unwrap();
    let app = routes(&registry);
    let t = token(json!({"sub": "ada"}));
    // Started while the store is away: never confirmed.
    let r = get_bearer(&app, "/jwt", Some(&t)).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), "5");
    assert_eq!(r.body["error"], "temporarily_unavailable");
    assert_eq!(
        r.body["error_description"],
        "sign-outs cannot be confirmed right now"
    );
    // No credential, nothing to check: a public route still answers.
    assert_eq!(get_bearer(&app, "/public", None).await.status, 200);
    let (code, body) = health(&app).await;
    assert_eq!(code, 503);
    assert_eq!(body["revocation"]["status"], "stale");
    assert_eq!(body["revocation"]["store"], "remote-like");
    assert_eq!(body["revocation"]["staleness_secs"], Value::Null);
    store
        .mirror()
        .report_error(&StoreError::new("connection refused"));
    assert_eq!(
        health(&app).await.1["revocation"]["error"],
        "connection refused"
    );
    // The store answers again: everything recovers, no restart.
    store.mirror().confirm();
    assert_eq!(get_bearer(&app, "/jwt", Some(&t)).await.status, 200);
    let (code, body) = health(&app).await;
    assert_eq!((code, &body["revocation"]["status"]), (200, &json!("ok")));
    assert_eq!(body["revocation"]["error"], Value::Null);
    // A write that fails is an error for the caller, and revokes nothing.
    *store.failing.lock().unwrap() = true;
    let err = registry
        .revoker()
        .revoke(
            "v",
            Target::Subject {
                subject: "ada".into(),
                before: u64::MAX / 2,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Store);
    assert_eq!(get_bearer(&app, "/jwt", Some(&t)).await.status, 200);
}

#[tokio::test]
async fn fail_open_serves_a_stale_mirror_but_health_says_stale() {
    let store = RemoteLike::default();
    let registry = builder()
        .store(store.clone())
        .store_options(StoreOptions::new().fail_open(true))
        .build()
        .unwrap();
    let app = routes(&registry);
    let revoked = token(json!({"sub": "ada", "jti": "gone"}));
    store.mirror().apply([Revocation::new(
        ISS,
        Target::Token("gone".into()),
        jwtgate_test::now() + 60,
    )]);
    assert_eq!(status(&app, &token(json!({"sub": "ada"}))).await.0, 200);
    // What the stale mirror holds still counts.
    assert_eq!(status(&app, &revoked).await.0, 401);
    let (code, body) = health(&app).await;
    assert_eq!(
        (code, &body["revocation"]["fail_open"]),
        (503, &json!(true))
    );
}

#[tokio::test]
async fn registries_sharing_a_memory_store_share_revocations() {
    let store = MemoryStore::new();
    let a = builder().store(store.clone()).build().unwrap();
    let b = builder().store(store).build().unwrap();
    let app_b = routes(&b);
    let t = token(json!({"sub": "ada", "jti": "shared"}));
    assert_eq!(status(&app_b, &t).await.0, 200);
    a.revoker()
        .revoke("v", Target::Token("shared".into()))
        .await
        .unwrap();
    assert_eq!(status(&app_b, &t).await.0, 401);
}
