//! Heap allocations per request, counted by a counting global allocator (alone in this test
//! binary: the count is process-wide). One request through an axum router with the layer,
//! against the same router without it.

use std::alloc::System;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header::AUTHORIZATION};
use axum::routing::get;
use jwtgate::{Algorithm, KeySource, Registry, User, Validator};
use jwtgate_test::{TestKey, mint};
use serde_json::{Value, json};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::ServiceExt as _;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

// At most 22 allocations for a verified RS256 request with about 200 B of claims through a
// router (the router alone makes 13), at most one more per claim; a cache hit makes fewer.
// BENCHMARKS.md says where each goes.
const LIMIT_VERIFIED: usize = 22;
const LIMIT_HIT: usize = 20;
const LIMIT_PER_CLAIM: f64 = 1.0;

// With the `metrics` feature (`cargo test --workspace` has it: the CLI enables it), every
// metric recorded builds its label set, one allocation each, whatever the exporter. The test
// counts those calls with a recorder of its own and allows one allocation for each, so that
// both builds are held to the same bound.
static METRIC_CALLS: AtomicUsize = AtomicUsize::new(0);

struct CountingRecorder;

impl metrics::Recorder for CountingRecorder {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        METRIC_CALLS.fetch_add(1, Ordering::Relaxed);
        metrics::Counter::noop()
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        METRIC_CALLS.fetch_add(1, Ordering::Relaxed);
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        METRIC_CALLS.fetch_add(1, Ordering::Relaxed);
        metrics::Histogram::noop()
    }
}

const ISS: &str = "https://issuer.example";
const AUD: &str = "bench-api";

fn claims(extra: usize) -> Value {
    let now = jwtgate_test::now();
    let mut c = json!({
        "iss": ISS, "aud": AUD, "sub": "user-1234", "exp": now + 3600, "iat": now,
        "email": "alice@example.com", "name": "Alice Example", "scope": "read write",
        "jti": "c2f1e7a0-3b7d-4d6f-9a61-2b8c0d7e4f10",
    });
    for i in 0..extra {
        c[format!("claim_{i}")] = json!(format!("value-{i}"));
    }
    c
}

fn router(cache: u64) -> Router {
    let key = TestKey::rsa();
    let registry = Registry::builder()
        .token_cache(cache)
        .validator(
            Validator::new("api")
                .issuer(ISS)
                .audience(AUD)
                .algorithm(Algorithm::RS256)
                .key(KeySource::public_key_pem(key.public_pem()))
                .user(User::claim("sub")),
        )
        .build()
        .unwrap();
    Router::new()
        .route("/x", get(|| async { "ok" }))
        .route_layer(registry.layer("jwt_api").unwrap())
}

fn token(claims: &Value) -> String {
    mint(&TestKey::rsa(), "RS256", json!({ "kid": "k1" }), claims)
}

/// Allocations made by one request to `app` with `token` (the request is built outside the
/// count, the best of three to skip one-time work), less one per metric recorded (see above).
fn allocations(rt: &tokio::runtime::Runtime, app: &Router, token: &str) -> usize {
    let mut best = usize::MAX;
    for _ in 0..3 {
        let req = Request::get("/x")
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let app = app.clone();
        let metric_calls = METRIC_CALLS.load(Ordering::Relaxed);
        let region = Region::new(GLOBAL);
        let status = block_on(rt, async move { app.oneshot(req).await.unwrap().status() });
        let counted = region.change().allocations;
        let metric_calls = METRIC_CALLS.load(Ordering::Relaxed) - metric_calls;
        assert_eq!(status, StatusCode::OK);
        assert!(metric_calls <= 3, "{metric_calls} metrics per request");
        best = best.min(counted - metric_calls);
    }
    best
}

fn block_on<F: Future>(rt: &tokio::runtime::Runtime, f: F) -> F::Output {
    rt.block_on(f)
}

#[test]
fn allocations_per_request() {
    metrics::set_global_recorder(CountingRecorder).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let bare = Router::new().route("/x", get(|| async { "ok" }));
    let router_alone = allocations(&rt, &bare, "x");

    let uncached = router(0);
    let t = token(&claims(0));
    assert!((180..=260).contains(&(t.split('.').nth(1).unwrap().len() * 3 / 4)));
    let verified = allocations(&rt, &uncached, &t);
    let per_claim = {
        let (few, many) = (token(&claims(10)), token(&claims(30)));
        let (few, many) = (
            allocations(&rt, &uncached, &few),
            allocations(&rt, &uncached, &many),
        );
        (many - few) as f64 / 20.0
    };
    let cached = router(1000);
    let _ = allocations(&rt, &cached, &t);
    let hit = allocations(&rt, &cached, &t);
    println!(
        "allocations per request: router alone {router_alone}, RS256 verified {verified}, \
         cache hit {hit}, per extra claim {per_claim:.2}"
    );
    assert!(verified <= LIMIT_VERIFIED, "{verified} allocations");
    assert!(hit <= LIMIT_HIT, "{hit} allocations on a cache hit");
    assert!(
        per_claim <= LIMIT_PER_CLAIM,
        "{per_claim} allocations per claim"
    );
}
