//! `jwtgate-instructions <hit|verify|cookie|signin|refresh|mint> <requests> [revoked]`: sends that
//! many RS256 requests through an axum router behind the layer (`oneshot`, no sockets), the
//! verified-token cache on (`hit`: the same token again) or off (`verify`), or a cookie-mode
//! session cookie instead of the token (`cookie`: the cookie the first request set), or a
//! sign-in's session cookie (`signin`: fresh, its record never read; `refresh`: due a refresh
//! at every request, which goes to the demo provider on 127.0.0.1 and back, the provider's
//! two RS256 signatures per refresh included; `mint` counts those two alone), with `revoked` entries in the
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
    if mode == "signin" || mode == "refresh" {
        return sign_in_mode(&mode, n);
    }
    if mode == "mint" {
        // What the demo provider spends per refresh on signing: two RS256 tokens.
        let key = TestKey::rsa();
        let claims = serde_json::json!({"iss": "i", "sub": "ada", "exp": now() + 30});
        for _ in 0..n {
            for _ in 0..2 {
                std::hint::black_box(mint(
                    &key,
                    "RS256",
                    serde_json::json!({"kid": "k1"}),
                    &claims,
                ));
            }
        }
        return;
    }
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
        .token_cache(if mode == "hit" || mode == "check" {
            10_000
        } else {
            0
        })
        .validator(validator)
        .build()
        .expect("a valid registry");
    let app: Router = match mode.as_str() {
        // The forward-auth check a proxy asks about `/x` (a cache hit, as `hit`).
        "check" => Router::new().route_service(
            "/auth/check",
            jwtgate::forward_auth::ForwardAuth::builder()
                .route("/x", registry.layer("jwt_v0").expect("a known validator"))
                .build()
                .expect("a valid check"),
        ),
        _ => Router::new()
            .route("/x", get(|| async { "ok" }))
            .route_layer(registry.layer("jwt_v0").expect("a known validator")),
    };
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
            let mut req = match mode.as_str() {
                "cookie" => Request::get("/x").header("cookie", &session),
                "check" => Request::get("/auth/check")
                    .header("x-original-uri", "/x")
                    .header("authorization", &auth),
                _ => Request::get("/x").header("authorization", &auth),
            }
            .body(Body::empty())
            .expect("a request");
            // The proxy's address, as `jwtgate serve` puts it in (loopback: trusted).
            req.extensions_mut().insert(jwtgate::forward_auth::Peer(
                std::net::SocketAddr::from(([127, 0, 0, 1], 40000)),
            ));
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

/// `signin` and `refresh`: a session signed in through the demo provider (OIDC code flow,
/// the callback through the same router), then `n` requests carrying its cookie.
fn sign_in_mode(mode: &str, n: usize) {
    use jwtgate::login::Login;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let key = TestKey::rsa();
        let provider =
            jwtgate_test::Provider::start(jwtgate_test::jwks([key.jwk("k1", "RS256")])).await;
        provider.enable_login(key, "k1");
        if mode == "refresh" {
            // Tokens valid 30 s, said to be issued hours ago: past their refresh margin at
            // once, so every request refreshes.
            provider.set_token_lifetime(30);
            provider.set_issued_earlier(36_000);
        }
        let base = "http://app.bench";
        let registry = Registry::builder()
            .validator(
                Validator::new("v0")
                    .issuer(provider.issuer())
                    .audience("web")
                    .algorithm(Algorithm::RS256)
                    .key(KeySource::oidc_issuer(provider.issuer()))
                    .user(User::fixed(1))
                    .cookie(
                        jwtgate::CookieMode::new("session")
                            .secret("bench-cookie-secret-bench-cookie!")
                            .secure(false)
                            .from_bearer(false),
                    )
                    .login(Login::oidc("web", format!("{base}/auth/callback"))),
            )
            .build()
            .expect("a valid registry");
        let auth = registry.login_service("v0").expect("a login");
        let app: Router = Router::new()
            .route("/x", get(|| async { "ok" }))
            .route_layer(registry.layer("jwt_v0").expect("a known validator"))
            .route_service("/auth/callback", auth);
        let send = |req: Request<Body>| {
            let app = app.clone();
            async move { app.oneshot(req).await.expect("infallible") }
        };
        let cookie = |res: &axum::response::Response, name: &str| {
            res.headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(|set| set.split(';').next().unwrap_or_default().to_owned())
                .find(|c| c.starts_with(name))
                .expect("the cookie")
        };
        let res = send(
            Request::get("/x")
                .header("accept", "text/html")
                .body(Body::empty())
                .expect("a request"),
        )
        .await;
        let pending = cookie(&res, "jwtgate_login_v0=");
        let authorize =
            url::Url::parse(res.headers()["location"].to_str().expect("ascii")).expect("a URL");
        let mut form: Vec<(String, String)> = authorize
            .query_pairs()
            .filter(|(k, _)| {
                [
                    "client_id",
                    "redirect_uri",
                    "state",
                    "nonce",
                    "code_challenge",
                ]
                .contains(&k.as_ref())
            })
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        form.extend([
            ("username".into(), "ada".into()),
            ("decision".into(), "allow".into()),
        ]);
        let submitted = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client")
            .post(format!("{}/authorize", provider.issuer()))
            .form(&form)
            .send()
            .await
            .expect("the provider answers");
        let callback = url::Url::parse(submitted.headers()["location"].to_str().expect("ascii"))
            .expect("a URL");
        let path = format!("{}?{}", callback.path(), callback.query().unwrap_or(""));
        let res = send(
            Request::get(path)
                .header("cookie", pending)
                .body(Body::empty())
                .expect("a request"),
        )
        .await;
        assert_eq!(res.status(), 302, "signed in");
        let session = cookie(&res, "session=");
        for _ in 0..n {
            let req = Request::get("/x")
                .header("cookie", &session)
                .body(Body::empty())
                .expect("a request");
            assert_eq!(send(req).await.status(), 200);
        }
        if mode == "refresh" {
            assert!(provider.refresh_grants() >= n, "a refresh per request");
        }
    });
}
