//! `jwtgate-instructions <hit|verify> <requests>`: sends that many RS256 requests through an
//! axum router behind the layer (`oneshot`, no sockets), the verified-token cache on (`hit`:
//! the same token again) or off (`verify`). Run under callgrind twice with two counts; the
//! difference divided by the difference of counts is the instructions one request costs
//! (start-up, key parsing and the first verification cancel out).

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use jwtgate::{Algorithm, KeySource, Registry, User, Validator};
use jwtgate_test::{TestKey, mint, now};
use tower::ServiceExt as _;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "hit".to_owned());
    let n: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let key = TestKey::rsa();
    let registry = Registry::builder()
        .token_cache(if mode == "hit" { 10_000 } else { 0 })
        .validator(
            Validator::new("v0")
                .issuer("iss")
                .audience("aud")
                .algorithm(Algorithm::RS256)
                .key(KeySource::public_key_pem(key.public_pem()))
                .user(User::fixed(1)),
        )
        .build()
        .expect("a valid registry");
    let app: Router = Router::new()
        .route("/x", get(|| async { "ok" }))
        .route_layer(registry.layer("jwt_v0").expect("a known validator"));
    let claims = serde_json::json!({"iss": "iss", "aud": "aud", "exp": now() + 3600, "sub": "s"});
    let token = mint(&key, "RS256", serde_json::json!({"kid": "k"}), &claims);
    let auth = format!("Bearer {token}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        for _ in 0..n {
            let req = Request::get("/x")
                .header("authorization", &auth)
                .body(Body::empty())
                .expect("a request");
            let res = app.clone().oneshot(req).await.expect("infallible");
            assert_eq!(res.status(), 200);
        }
    });
}
