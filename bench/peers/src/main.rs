//! jwtgate against its peers, on the same tokens, in one process, interleaved.
//!
//! Contenders: jwtgate, axum-jwt-auth, aliri_tower, jwt-authorizer, tower-oauth2-resource-server,
//! and the crypto limit: a router whose handler only checks the signature with an aws-lc-rs key
//! parsed once (no claims read at all). Each contender is an axum 0.8 `Router` answering
//! `GET /x` with 200, called with `oneshot` (no sockets). Every round runs every contender for
//! a batch of requests, the order rotating between rounds, so a noisy neighbour slows all of
//! them alike; the table gives each contender's median time per request and its ratio to the
//! crypto limit and to the best peer.
//!
//! Run: `cargo run --release --manifest-path bench/peers/Cargo.toml` (`PEERS_ROUNDS` sets the
//! number of rounds, default 15).

use std::sync::Arc;
use std::time::Instant;

use aliri::jwt::CoreClaims;
use aws_lc_rs::{hmac, signature};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header::AUTHORIZATION};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwtgate::{Algorithm, KeySource, Registry, Validator, User};
use jwtgate_test::{TestKey, jwks, mint};
use serde::Deserialize;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const ISS: &str = "https://issuer.example";
const AUD: &str = "bench-api";
const SECRET: &str = "bench-secret-bench-secret-bench!";
const KID: &str = "k1";

/// A contender: its name, the crypto backend it verifies with, its router.
struct Contender {
    name: &'static str,
    backend: &'static str,
    app: Router,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// About 200 bytes of claims, what an access token of an identity provider carries.
fn claims(iss: &str) -> Value {
    json!({
        "iss": iss, "aud": AUD, "sub": "user-1234", "exp": now() + 3600, "iat": now(),
        "email": "alice@example.com", "name": "Alice Example", "scope": "read write",
    })
}

/// About 2 KiB of claims: the same, plus group memberships (Entra ID, Keycloak).
fn large_claims() -> Value {
    let mut c = claims(ISS);
    c["groups"] = json!(
        (0..60)
            .map(|i| format!("group-{i:04}-members"))
            .collect::<Vec<_>>()
    );
    c
}

fn request(token: &str) -> Request<Body> {
    Request::get("/x")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

async fn status(app: &Router, token: &str) -> StatusCode {
    app.clone().oneshot(request(token)).await.unwrap().status()
}

/// The crypto limit: the signature checked with a key parsed once, nothing else.
fn crypto_limit(alg: Algorithm, key: &TestKey) -> Router {
    enum Key {
        Public(signature::ParsedPublicKey),
        Hmac(hmac::Key),
    }
    let pem = key.public_pem();
    let der = |k: Result<jsonwebtoken::DecodingKey, _>| {
        let k: jsonwebtoken::DecodingKey = k.unwrap();
        k.try_get_as_bytes().unwrap().to_vec()
    };
    let key = match alg {
        Algorithm::HS256 => Key::Hmac(hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes())),
        Algorithm::RS256 => Key::Public(
            signature::ParsedPublicKey::new(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                der(jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes())),
            )
            .unwrap(),
        ),
        Algorithm::ES256 => Key::Public(
            signature::ParsedPublicKey::new(
                &signature::ECDSA_P256_SHA256_FIXED,
                der(jsonwebtoken::DecodingKey::from_ec_pem(pem.as_bytes())),
            )
            .unwrap(),
        ),
        _ => Key::Public(
            signature::ParsedPublicKey::new(
                &signature::ED25519,
                der(jsonwebtoken::DecodingKey::from_ed_pem(pem.as_bytes())),
            )
            .unwrap(),
        ),
    };
    let key = Arc::new(key);
    Router::new().route(
        "/x",
        get(move |req: Request<Body>| {
            let key = Arc::clone(&key);
            async move {
                let token = req
                    .headers()
                    .get(AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or_default();
                let Some((input, sig)) = token.rsplit_once('.') else {
                    return StatusCode::UNAUTHORIZED;
                };
                let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
                    return StatusCode::UNAUTHORIZED;
                };
                let ok = match &*key {
                    Key::Public(k) => k.verify_sig(input.as_bytes(), &sig).is_ok(),
                    Key::Hmac(k) => hmac::verify(k, input.as_bytes(), &sig).is_ok(),
                };
                if ok {
                    StatusCode::OK
                } else {
                    StatusCode::UNAUTHORIZED
                }
            }
        }),
    )
}

fn jwtgate_source(alg: Algorithm, key: &TestKey) -> KeySource {
    if alg == Algorithm::HS256 {
        KeySource::secret(SECRET)
    } else {
        KeySource::public_key_pem(key.public_pem())
    }
}

/// jwtgate on a chain of `issuers.len()` validators (the token's issuer last), the
/// verified-token cache on or off.
fn jwtgate(alg: Algorithm, key: &TestKey, issuers: &[String], cache: bool) -> Router {
    let mut builder = Registry::builder().token_cache(if cache { 10_000 } else { 0 });
    for (i, iss) in issuers.iter().enumerate() {
        let mut v = Validator::new(format!("v{i}"))
            .issuer(iss)
            .audience(AUD)
            .algorithm(alg)
            .key(jwtgate_source(alg, key))
            .user(User::fixed(1));
        if i + 1 < issuers.len() {
            v = v.next(format!("v{}", i + 1));
        }
        builder = builder.validator(v);
    }
    let registry = builder.build().unwrap();
    Router::new()
        .route("/x", get(|| async { "ok" }))
        .route_layer(registry.layer("jwt_v0").unwrap())
}

fn axum_jwt_auth(alg: Algorithm, key: &TestKey) -> Router {
    use axum_jwt_auth::{Claims, Decoder, LocalDecoder};
    use jsonwebtoken10::{Algorithm as A, DecodingKey, Validation};
    let pem = key.public_pem().as_bytes();
    let (key, alg) = match alg {
        Algorithm::HS256 => (DecodingKey::from_secret(SECRET.as_bytes()), A::HS256),
        Algorithm::RS256 => (DecodingKey::from_rsa_pem(pem).unwrap(), A::RS256),
        Algorithm::ES256 => (DecodingKey::from_ec_pem(pem).unwrap(), A::ES256),
        _ => (DecodingKey::from_ed_pem(pem).unwrap(), A::EdDSA),
    };
    let mut validation = Validation::new(alg);
    validation.set_audience(&[AUD]);
    validation.set_issuer(&[ISS]);
    let decoder = LocalDecoder::builder()
        .keys(vec![key])
        .validation(validation)
        .build()
        .unwrap();
    let decoder: Decoder<Value> = Arc::new(decoder);
    Router::new()
        .route("/x", get(|_: Claims<Value>| async { "ok" }))
        .with_state(decoder)
}

async fn jwt_authorizer(alg: Algorithm, key: &TestKey, issuers: &[String]) -> Router {
    use jwt_authorizer::{Authorizer, IntoLayer, JwtAuthorizer, Validation};
    let pem = key.public_pem();
    let mut authorizers: Vec<Authorizer<Value>> = Vec::new();
    for iss in issuers {
        let builder = match alg {
            Algorithm::HS256 => JwtAuthorizer::from_secret(SECRET),
            Algorithm::RS256 => JwtAuthorizer::from_rsa_pem_text(pem),
            Algorithm::ES256 => JwtAuthorizer::from_ec_pem_text(pem),
            _ => JwtAuthorizer::from_ed_pem_text(pem),
        };
        let validation = Validation::new().iss(&[iss]).aud(&[AUD]);
        authorizers.push(builder.validation(validation).build().await.unwrap());
    }
    // jwt-authorizer 0.15 is built for axum 0.7: its layer wraps an axum 0.7 handler, and the
    // response body is converted to axum 0.8's at the edge (the same work any app on axum 0.8
    // would add).
    let handler = tower::service_fn(|_req: Request<Body>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(axum07::body::Body::from("ok")))
    });
    let service = tower::ServiceBuilder::new()
        .map_response(|r: http::Response<axum07::body::Body>| r.map(Body::new))
        .layer(authorizers.into_layer())
        .service(handler);
    Router::new().route_service("/x", service)
}

async fn tower_oauth2(alg: Algorithm, key: &TestKey, issuers: &[String]) -> Router {
    use tower_oauth2_resource_server::server::OAuth2ResourceServer;
    use tower_oauth2_resource_server::tenant::TenantConfiguration;
    use tower_oauth2_resource_server::validation::ClaimsValidationSpec;
    let jwt_alg = match alg {
        Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
        Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        _ => jsonwebtoken::Algorithm::EdDSA,
    };
    let set = jwks([key.jwk(KID, alg.as_str())]).to_string();
    let mut builder = OAuth2ResourceServer::<Value>::builder();
    for iss in issuers {
        let tenant = TenantConfiguration::static_builder(set.clone())
            .identifier(iss)
            .audiences(&[AUD])
            .claims_validation(
                // `recommended` also requires `nbf`, which these tokens (like most) lack.
                ClaimsValidationSpec::new()
                    .iss(iss)
                    .exp(true)
                    .aud(&vec![AUD.to_owned()]),
            )
            .allowed_algorithms(&[jwt_alg])
            .build()
            .unwrap();
        builder = builder.add_tenant(tenant);
    }
    let server = builder.build().await.unwrap();
    Router::new()
        .route("/x", get(|| async { "ok" }))
        .layer(server.into_layer())
}

#[derive(Clone, Debug, Deserialize)]
struct AliriClaims {
    iss: aliri::jwt::Issuer,
    aud: aliri::jwt::Audiences,
    sub: aliri::jwt::Subject,
    exp: aliri_clock::UnixTime,
    #[serde(default)]
    scope: aliri_oauth2::scope::Scope,
    #[serde(flatten)]
    _rest: serde_json::Map<String, Value>,
}

impl CoreClaims for AliriClaims {
    fn nbf(&self) -> Option<aliri_clock::UnixTime> {
        None
    }
    fn exp(&self) -> Option<aliri_clock::UnixTime> {
        Some(self.exp)
    }
    fn aud(&self) -> &aliri::jwt::Audiences {
        &self.aud
    }
    fn iss(&self) -> Option<&aliri::jwt::IssuerRef> {
        Some(&self.iss)
    }
    fn sub(&self) -> Option<&aliri::jwt::SubjectRef> {
        Some(&self.sub)
    }
}

impl aliri_oauth2::HasScope for AliriClaims {
    fn scope(&self) -> &aliri_oauth2::scope::Scope {
        &self.scope
    }
}

fn aliri_tower(alg: Algorithm, key: &TestKey) -> Router {
    use aliri::{Jwk, Jwks, jwa, jwk, jwt};
    let (jwk, jwa_alg) = if alg == Algorithm::HS256 {
        let secret = aliri_base64::Base64Url::from_raw(SECRET.as_bytes().to_vec());
        (Jwk::from(jwa::Hmac::new(secret)), jwa::Algorithm::HS256)
    } else {
        let jwk = key.jwk(KID, "RS256");
        let part = |name: &str| {
            let raw = URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
            aliri_base64::Base64Url::from_raw(raw)
        };
        let rsa = jwa::Rsa::from_public_components(part("n"), part("e")).unwrap();
        (Jwk::from(rsa), jwa::Algorithm::RS256)
    };
    let mut set = Jwks::default();
    set.add_key(
        jwk.with_algorithm(jwa_alg)
            .with_key_id(jwk::KeyId::from_static(KID)),
    );
    let validator = jwt::CoreValidator::default()
        .add_approved_algorithm(jwa_alg)
        .add_allowed_audience(jwt::Audience::from_static(AUD))
        .require_issuer(jwt::Issuer::from_static(ISS));
    let authority = aliri_oauth2::Authority::new(set, validator);
    let authorizer = aliri_tower::Oauth2Authorizer::new()
        .with_claims::<AliriClaims>()
        .with_terse_error_handler();
    Router::new()
        .route("/x", get(|| async { "ok" }))
        .layer(authorizer.jwt_layer(authority))
}

fn test_key(alg: Algorithm) -> TestKey {
    match alg {
        Algorithm::HS256 => TestKey::hmac(SECRET),
        Algorithm::RS256 => TestKey::rsa(),
        Algorithm::ES256 => TestKey::ec_p256(),
        _ => TestKey::ed25519(),
    }
}

/// The contenders of one scenario, and the token they all get.
struct Scenario {
    name: &'static str,
    token: String,
    contenders: Vec<Contender>,
}

async fn scenario(
    name: &'static str,
    alg: Algorithm,
    payload: Value,
    chain: usize,
    cache: bool,
) -> Scenario {
    let key = test_key(alg);
    let issuers: Vec<String> = (0..chain)
        .map(|i| {
            if i + 1 == chain {
                ISS.to_owned()
            } else {
                format!("{ISS}/other-{i}")
            }
        })
        .collect();
    let token = mint(&key, alg.as_str(), json!({ "kid": KID }), &payload);
    let mut c = vec![Contender {
        name: "crypto limit (aws-lc-rs, key parsed once, bare router)",
        backend: "aws-lc-rs",
        app: crypto_limit(alg, &key),
    }];
    c.push(Contender {
        name: if cache {
            "jwtgate (cache hit)"
        } else {
            "jwtgate"
        },
        backend: "aws-lc-rs",
        app: jwtgate(alg, &key, &issuers, cache),
    });
    if chain == 1 {
        c.push(Contender {
            name: "axum-jwt-auth 0.7",
            backend: "aws-lc-rs (jsonwebtoken 10)",
            app: axum_jwt_auth(alg, &key),
        });
    }
    if chain == 1 && matches!(alg, Algorithm::RS256 | Algorithm::HS256) {
        c.push(Contender {
            name: "aliri_tower 0.6",
            backend: "ring (its only backend)",
            app: aliri_tower(alg, &key),
        });
    }
    c.push(Contender {
        name: "jwt-authorizer 0.15",
        backend: "ring (jsonwebtoken 9)",
        app: jwt_authorizer(alg, &key, &issuers).await,
    });
    if alg != Algorithm::HS256 {
        c.push(Contender {
            name: "tower-oauth2-resource-server 0.12",
            backend: "aws-lc-rs (jsonwebtoken 11)",
            app: tower_oauth2(alg, &key, &issuers).await,
        });
    }
    Scenario {
        name,
        token,
        contenders: c,
    }
}

/// Nanoseconds per request for a batch of `n`.
async fn batch(app: &Router, token: &str, n: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        let res = app.clone().oneshot(request(token)).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn run(s: &Scenario, rounds: usize) -> Vec<f64> {
    // Every contender must accept the token, and refuse it with a flipped signature byte.
    let mut forged = s.token.clone().into_bytes();
    let last = forged.len() - 3;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    for c in &s.contenders {
        assert_eq!(
            status(&c.app, &s.token).await,
            StatusCode::OK,
            "{} accepts",
            c.name
        );
        assert_ne!(
            status(&c.app, &forged).await,
            StatusCode::OK,
            "{} refuses",
            c.name
        );
    }
    // A batch of about 20 ms for the slowest contender.
    let slowest = {
        let mut worst = 0.0f64;
        for c in &s.contenders {
            worst = worst.max(batch(&c.app, &s.token, 20).await);
        }
        worst
    };
    let n = ((20e6 / slowest) as usize).clamp(20, 200_000);
    let mut samples = vec![Vec::new(); s.contenders.len()];
    for round in 0..rounds {
        for i in 0..s.contenders.len() {
            let at = (i + round) % s.contenders.len();
            samples[at].push(batch(&s.contenders[at].app, &s.token, n).await);
        }
    }
    samples.into_iter().map(median).collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // axum-jwt-auth enables jsonwebtoken 10's rust_crypto; every contender that can verifies
    // with aws-lc-rs.
    jsonwebtoken10::crypto::aws_lc::DEFAULT_PROVIDER
        .install_default()
        .unwrap();
    let rounds: usize = std::env::var("PEERS_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(15);
    let plan = [
        ("RS256", Algorithm::RS256, claims(ISS), 1, false),
        ("HS256", Algorithm::HS256, claims(ISS), 1, false),
        ("ES256", Algorithm::ES256, claims(ISS), 1, false),
        ("EdDSA", Algorithm::EdDSA, claims(ISS), 1, false),
        (
            "RS256, repeated token",
            Algorithm::RS256,
            claims(ISS),
            1,
            true,
        ),
        (
            "RS256, 2 KiB of claims",
            Algorithm::RS256,
            large_claims(),
            1,
            false,
        ),
        (
            "RS256, 5-validator chain",
            Algorithm::RS256,
            claims(ISS),
            5,
            false,
        ),
    ];
    println!("| scenario | contender | backend | µs/request | vs crypto limit | vs best peer |");
    println!("|---|---|---|---:|---:|---:|");
    for (name, alg, payload, chain, cache) in plan {
        let s = scenario(name, alg, payload, chain, cache).await;
        let medians = run(&s, rounds).await;
        let limit = medians[0];
        let best_peer = medians[2..].iter().copied().fold(f64::INFINITY, f64::min);
        for (c, m) in s.contenders.iter().zip(&medians) {
            println!(
                "| {} ({} B token) | {} | {} | {:.2} | {:.3} | {:.3} |",
                s.name,
                s.token.len(),
                c.name,
                c.backend,
                m / 1000.0,
                m / limit,
                m / best_peer
            );
        }
    }
}
