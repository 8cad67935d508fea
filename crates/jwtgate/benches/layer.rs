//! The layer's cost, as ratios against baselines measured in the same run:
//!
//! - `rs256` / `hs256`: an axum router with the jwtgate layer vs. the same router whose handler
//!   does a bare `jsonwebtoken::decode` of the same token, with the key and validation built
//!   once (target: under 1.10);
//! - `remote_vs_inline`: RS256 with the key served from the JWKS cache vs. the key given inline
//!   (target: about 1.00).
//!
//! Run with `cargo bench -p jwtgate --bench layer`; the ratios are printed at the end.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header::AUTHORIZATION};
use axum::routing::get;
use criterion::Criterion;
use jsonwebtoken::{DecodingKey, Validation};
use jwtgate::{Algorithm, KeySource, Registry, User, Validator, identity::UserId};
use jwtgate_test::{Provider, TestKey, claims, jwks, mint};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const ISS: &str = "https://issuer.example";
const AUD: &str = "bench-api";
const SECRET: &str = "bench-secret-bench-secret-bench!";

fn request(token: &str) -> Request<Body> {
    Request::get("/x")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request")
}

/// The baseline: the same router, the handler decoding the token with jsonwebtoken itself,
/// written as a competent user would: the key parsed and the validation built once, shared
/// behind an `Arc` (one reference-count increment per request, no copy of either).
fn bare_router(key: DecodingKey, alg: jsonwebtoken::Algorithm) -> Router {
    let mut validation = Validation::new(alg);
    validation.set_audience(&[AUD]);
    validation.set_issuer(&[ISS]);
    let shared = Arc::new((key, validation));
    Router::new().route(
        "/x",
        get(move |req: Request<Body>| {
            let shared = Arc::clone(&shared);
            async move {
                let (key, validation) = &*shared;
                let token = req
                    .headers()
                    .get(AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or_default();
                match jsonwebtoken::decode::<Value>(token, key, validation) {
                    Ok(data) => Ok(data.claims["exp"].to_string()),
                    Err(_) => Err(StatusCode::UNAUTHORIZED),
                }
            }
        }),
    )
}

fn layer_router(validator: Validator) -> Router {
    // The same token is sent on every iteration: the verified-token cache is off, so each one
    // is verified as the baseline's is (the cache has its own row in bench/peers).
    let registry = Registry::builder()
        .token_cache(0)
        .validator(validator)
        .build()
        .expect("registry");
    Router::new()
        .route("/x", get(|user: UserId| async move { user.to_string() }))
        .route_layer(registry.layer("jwt_v").expect("layer"))
}

fn validator(alg: Algorithm) -> Validator {
    Validator::new("v")
        .issuer(ISS)
        .audience(AUD)
        .algorithm(alg)
        .user(User::fixed(1))
}

fn compare(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    group: &str,
    routers: [(&str, Router); 2],
    token: &str,
) {
    let mut g = c.benchmark_group(group);
    for (name, router) in routers {
        let res = rt
            .block_on(router.clone().oneshot(request(token)))
            .expect("infallible");
        assert_eq!(res.status(), 200, "{group}/{name} must accept the token");
        g.bench_function(name, |b| {
            b.to_async(rt)
                .iter(|| router.clone().oneshot(request(token)));
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let rsa = TestKey::rsa();
    let claims = claims(ISS, AUD, 3600);

    let rs_token = mint(&rsa, "RS256", json!({"kid": "k1"}), &claims);
    let rs_key = DecodingKey::from_rsa_pem(rsa.public_pem().as_bytes()).expect("pem");
    compare(
        c,
        &rt,
        "rs256",
        [
            (
                "bare_decode",
                bare_router(rs_key, jsonwebtoken::Algorithm::RS256),
            ),
            (
                "layer",
                layer_router(
                    validator(Algorithm::RS256).key(KeySource::public_key_pem(rsa.public_pem())),
                ),
            ),
        ],
        &rs_token,
    );

    let hs_token = mint(&TestKey::hmac(SECRET), "HS256", json!({}), &claims);
    compare(
        c,
        &rt,
        "hs256",
        [
            (
                "bare_decode",
                bare_router(
                    DecodingKey::from_secret(SECRET.as_bytes()),
                    jsonwebtoken::Algorithm::HS256,
                ),
            ),
            (
                "layer",
                layer_router(validator(Algorithm::HS256).key(KeySource::secret(SECRET))),
            ),
        ],
        &hs_token,
    );

    let provider = rt.block_on(Provider::start(jwks([rsa.jwk("k1", "RS256")])));
    compare(
        c,
        &rt,
        "remote_vs_inline",
        [
            (
                "inline",
                layer_router(
                    validator(Algorithm::RS256).key(KeySource::public_key_pem(rsa.public_pem())),
                ),
            ),
            (
                "cached_jwks",
                layer_router(
                    validator(Algorithm::RS256).key(KeySource::jwks_url(provider.jwks_url())),
                ),
            ),
        ],
        &rs_token,
    );
    assert_eq!(
        provider.jwks_hits(),
        1,
        "the JWKS is fetched once, then served from the cache"
    );
}

/// Where criterion wrote its estimates: `$CRITERION_HOME`, else `<target>/criterion`.
fn criterion_dir() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return Some(PathBuf::from(home));
    }
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .find(|p| p.join("criterion").is_dir())
        .map(|p| p.join("criterion"))
}

fn mean_ns(dir: &std::path::Path, group: &str, name: &str) -> Option<f64> {
    let text =
        std::fs::read_to_string(dir.join(group).join(name).join("new/estimates.json")).ok()?;
    serde_json::from_str::<Value>(&text).ok()?["mean"]["point_estimate"].as_f64()
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
    let Some(dir) = criterion_dir() else {
        return;
    };
    println!("\nratios (same run):");
    for (group, base, candidate, target) in [
        ("rs256", "bare_decode", "layer", 1.10),
        ("hs256", "bare_decode", "layer", 1.10),
        ("remote_vs_inline", "inline", "cached_jwks", 1.05),
    ] {
        if let (Some(b), Some(x)) = (mean_ns(&dir, group, base), mean_ns(&dir, group, candidate)) {
            let ratio = x / b;
            let verdict = if ratio <= target { "ok" } else { "over target" };
            println!(
                "  {group}: {candidate}/{base} = {ratio:.3} ({:.2} µs vs {:.2} µs; target <= {target}: {verdict})",
                x / 1e3,
                b / 1e3
            );
        }
    }
}
