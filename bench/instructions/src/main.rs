//! `jwtgate-instructions <hit|verify|cookie> <requests> [revoked]`: sends that many RS256
//! requests through an axum router behind the layer (`oneshot`, no sockets), the
//! verified-token cache on (`hit`: the same token again) or off (`verify`), or a cookie-mode
//! session cookie instead of the token (`cookie`: the cookie the first request set), with `revoked` entries in the
//! revocation mirror (none by default; a quarter of each kind, same issuer, none matching the
//! token, whose `sub`, `jti`, `sid` and `iat` are all probed). `memory <revoked>` prints the
//! resident memory the entries take instead. Run under callgrind twice with two counts; the
//! difference divided by the difference of counts is the instructions one request costs
//! (start-up, key parsing and the first verification cancel out).

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use jwtgate::revocation::Target;
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
    let validator = Validator::new("v0")
        .issuer("iss")
        .audience("aud")
        .algorithm(Algorithm::RS256)
        .key(KeySource::public_key_pem(key.public_pem()))
        .user(User::fixed(1));
    // Cookie mode only for `cookie`: the other modes' figures stay comparable with earlier runs.
    let validator = match mode.as_str() {
        "cookie" => validator.cookie(
            jwtgate::CookieMode::new("session")
                .secret("bench-cookie-secret-bench-cookie!")
                .secure(false),
        ),
        _ => validator,
    };
    let registry = Registry::builder()
        .token_cache(if mode == "hit" { 10_000 } else { 0 })
        .validator(validator)
        .build()
        .expect("a valid registry");
    let app: Router = Router::new()
        .route("/x", get(|| async { "ok" }))
        .route_layer(registry.layer("jwt_v0").expect("a known validator"));
    let revoked: usize = match mode.as_str() {
        "memory" => n,
        _ => std::env::args()
            .nth(3)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let rss_before = resident_bytes();
    rt.block_on(async {
        let revoker = registry.revoker();
        for i in 0..revoked {
            let target = match i % 4 {
                0 => Target::Token(format!("jti-{i:08}")),
                1 => Target::Subject {
                    subject: format!("user-{i:08}"),
                    before: now(),
                },
                2 => Target::ProviderSession(format!("sid-{i:08}-0f3c2a9e")),
                _ => Target::Session(format!("{i:022}")),
            };
            revoker.revoke("v0", target).await.expect("written");
        }
    });
    if mode == "memory" {
        let bytes = resident_bytes().saturating_sub(rss_before);
        println!(
            "{revoked} revocations: {:.1} MiB resident ({} bytes per entry)",
            bytes as f64 / 1_048_576.0,
            bytes / revoked.max(1)
        );
        return;
    }
    let claims = serde_json::json!({
        "iss": "iss", "aud": "aud", "exp": now() + 3600, "iat": now() - 60, "sub": "s",
        "jti": "7f0c6c1e-5b1a-4d8e-9d61-2f5a0e1b3c4d", "sid": "a1b2c3d4-e5f6-4711-8899-aabbccddeeff",
    });
    let token = mint(&key, "RS256", serde_json::json!({"kid": "k"}), &claims);
    let auth = format!("Bearer {token}");
    // The session cookie the token's first request starts (cookie mode), for `cookie`.
    let session = rt.block_on(async {
        let req = Request::get("/x")
            .header("authorization", &auth)
            .body(Body::empty())
            .expect("a request");
        let res = app.clone().oneshot(req).await.expect("infallible");
        res.headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|set| set.split(';').next())
            .unwrap_or_default()
            .to_owned()
    });
    rt.block_on(async {
        for _ in 0..n {
            let req = match mode.as_str() {
                "cookie" => Request::get("/x").header("cookie", &session),
                _ => Request::get("/x").header("authorization", &auth),
            }
            .body(Body::empty())
            .expect("a request");
            let res = app.clone().oneshot(req).await.expect("infallible");
            assert_eq!(res.status(), 200);
        }
    });
}

/// The process's resident set (Linux `/proc/self/statm`, in pages of 4 KiB).
fn resident_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}
