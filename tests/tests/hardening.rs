//! Stricter than jsonwebtoken alone: hostile tokens and headers, key/algorithm fit, every
//! algorithm end to end, CORS preflight, extractors, user strategies.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::routing::{any, get};
use jwtgate::{
    Algorithm, ErrorKind, KeySource, Registry, User, Validator, directory::BoxFuture,
    directory::LookupError, directory::UserResolver, extract::Claims, identity::PartnerId,
    identity::Payload, identity::UserId, identity::ValidatorName, rejection::Rejection,
    rejection::RejectionKind,
};
use jwtgate_test::{TestKey, b64, claims, jwks, mint, mint_raw};
use jwtgate_tests::{app, get_bearer, get_with, send};
use serde::Deserialize;
use serde_json::{Value, json};

const SECRET: &str = "thesecret-thesecret-thesecret-32";
const ISS: &str = "https://issuer.example";

fn hs(name: &str) -> Validator {
    Validator::new(name)
        .issuer(ISS)
        .audience("api")
        .algorithm(Algorithm::HS256)
        .key(KeySource::secret(SECRET))
        .user(User::fixed(7))
}

fn router(v: Validator) -> Router {
    let name = v.name().to_owned();
    let r = Registry::builder().validator(v).build().expect("registry");
    app(
        &r,
        &[
            ("/jwt", &format!("jwt_{name}")),
            ("/public", &format!("public_or_jwt_{name}")),
        ],
    )
}

fn raw(header: &str, claims: &str) -> String {
    mint_raw(&TestKey::hmac(SECRET), "HS256", header, claims)
}

async fn refused(app: &Router, token: &str, description: &str) {
    let r = get_bearer(app, "/jwt", Some(token)).await;
    assert_eq!(r.status, 401, "{description}");
    assert_eq!(r.body["error_description"], description);
}

#[tokio::test]
async fn tokens_jsonwebtoken_would_accept_are_refused() {
    let app = router(hs("v"));
    let exp = jwtgate_test::now() + 100;
    let hs256 = r#"{"alg":"HS256"}"#;
    let good = format!(r#"{{"iss":"{ISS}","aud":"api","exp":{exp}}}"#);
    assert_eq!(
        get_bearer(&app, "/jwt", Some(&raw(hs256, &good)))
            .await
            .status,
        200
    );

    let claims = |extra: &str| format!(r#"{{"iss":"{ISS}","aud":"api","exp":{exp}{extra}}}"#);
    let deep = claims(&format!(r#","x":{}1{}"#, "[".repeat(64), "]".repeat(64)));
    // (header, claims, description)
    let cases = [
        (
            r#"{"alg":"HS256","crit":["exp"]}"#,
            good.clone(),
            "token has critical header extensions",
        ),
        (
            r#"{"alg":"HS256","crit":[]}"#,
            good.clone(),
            "token has critical header extensions",
        ),
        (
            hs256,
            format!(r#"{{"iss":"evil","iss":"{ISS}","aud":"api","exp":{exp}}}"#),
            "token has a duplicated member",
        ),
        (
            hs256,
            claims(r#","role":"user","role":"admin""#),
            "token has a duplicated member",
        ),
        // A number beyond an f64 (the raw scan takes it, no tree can hold it): refused, never
        // accepted with claims that read as empty (where "fals\u0065" would then count as
        // absent, and so as verified).
        (
            hs256,
            claims(r#","big":1e400,"email":"a@b.c","email_verified":"fals\u0065""#),
            "token is not valid JSON",
        ),
        (
            hs256,
            claims(r#","n":[1,-1e999]"#),
            "token is not valid JSON",
        ),
        (
            hs256,
            format!(r#"{{"iss":5,"aud":"api","exp":{exp}}}"#),
            "token iss is not a string",
        ),
        (
            hs256,
            format!(r#"{{"iss":["{ISS}"],"aud":"api","exp":{exp}}}"#),
            "token iss is not a string",
        ),
        (
            hs256,
            format!(r#"{{"iss":"{ISS}","aud":{{}},"exp":{exp}}}"#),
            "token aud is not a string or an array of strings",
        ),
        (
            hs256,
            format!(r#"{{"iss":"{ISS}","exp":{exp}}}"#),
            "token has no aud claim",
        ),
        (
            hs256,
            claims(&format!(r#","nbf":{}"#, exp + 50)),
            "token not yet valid",
        ),
        (
            hs256,
            claims(&format!(r#","iat":{exp}"#)),
            "token issued in the future",
        ),
        (
            r#"{"alg":["HS256"]}"#,
            good.clone(),
            "token alg is not a string",
        ),
        (
            r#"{"alg":"HS256","kid":{}}"#,
            good.clone(),
            "token kid is not a string",
        ),
        (hs256, deep, "token JSON is nested too deeply"),
    ];
    for (header, claims, description) in cases {
        refused(&app, &raw(header, &claims), description).await;
    }

    let big = format!("{}.{}.{}", b64(hs256), "A".repeat(17_000), "sig");
    for (token, description) in [
        (
            "a.b.c.d.e".to_owned(),
            "encrypted tokens (JWE) are not supported",
        ),
        ("a.b".to_owned(), "token is not a compact JWS"),
        (big, "token too large"),
        ("A".repeat(1 << 20), "token too large"),
    ] {
        refused(&app, &token, description).await;
    }
}

#[tokio::test]
async fn no_refusal_tells_whether_a_made_up_signature_was_valid() {
    let app = router(hs("v"));
    let now = jwtgate_test::now();
    let forged = |claims: &str| {
        mint_raw(
            &TestKey::hmac("not-the-secret-not-the-secret-32"),
            "HS256",
            r#"{"alg":"HS256"}"#,
            claims,
        )
    };
    for claims in [
        format!(r#"{{"iss":"{ISS}","aud":"api","exp":{}}}"#, now - 100),
        format!(
            r#"{{"iss":"{ISS}","aud":"api","exp":{},"nbf":{}}}"#,
            now + 600,
            now + 300
        ),
        format!(
            r#"{{"iss":"{ISS}","aud":"api","exp":{},"iat":{}}}"#,
            now + 600,
            now + 300
        ),
        format!(r#"{{"iss":"{ISS}","aud":"other","exp":{}}}"#, now + 600),
        format!(r#"{{"iss":"elsewhere","aud":"api","exp":{}}}"#, now + 600),
        format!(r#"{{"iss":"{ISS}","aud":"api"}}"#),
    ] {
        // The same answer for the real signature and a made-up one: the claims decide first.
        let real = get_bearer(&app, "/jwt", Some(&raw(r#"{"alg":"HS256"}"#, &claims))).await;
        let fake = get_bearer(&app, "/jwt", Some(&forged(&claims))).await;
        assert_eq!(real.status, 401, "{claims}");
        assert_eq!(
            (fake.status, &fake.body["error_description"]),
            (real.status, &real.body["error_description"]),
            "{claims}"
        );
        assert_eq!(
            fake.header("www-authenticate"),
            real.header("www-authenticate")
        );
    }
    // Only claims that pass meet the signature check.
    let good = format!(r#"{{"iss":"{ISS}","aud":"api","exp":{}}}"#, now + 600);
    refused(&app, &forged(&good), "token signature is invalid").await;
}

#[tokio::test]
async fn header_shapes() {
    let app = router(hs("v"));
    let t = mint(
        &TestKey::hmac(SECRET),
        "HS256",
        json!({}),
        &claims(ISS, "api", 100),
    );
    let auth = format!("Bearer {t}");
    let r = send(
        &app,
        get_with(
            "/jwt",
            &[("authorization", &auth), ("authorization", &auth)],
        ),
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.body["error"].as_str()),
        (401, Some("invalid_request"))
    );
    assert_eq!(
        r.body["error_description"],
        "more than one Authorization header"
    );
    let tab = format!("Bearer {t}\tx");
    let r = send(&app, get_with("/jwt", &[("authorization", &tab)])).await;
    assert_eq!(r.body["error"], "invalid_request");
    let mut req = get_with("/jwt", &[]);
    req.headers_mut().insert(
        "authorization",
        http::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
    );
    let r = send(&app, req).await;
    assert_eq!(r.body["error"], "invalid_request");
}

#[tokio::test]
async fn rejection_is_in_the_response_extensions() {
    use tower::ServiceExt as _;
    let res = router(hs("v"))
        .oneshot(get_with("/jwt", &[]))
        .await
        .unwrap();
    let rejection = res
        .extensions()
        .get::<Rejection>()
        .expect("rejection extension");
    assert_eq!(rejection.kind(), RejectionKind::MissingCredentials);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.headers()["cache-control"], "no-store");
}

#[test]
fn key_type_must_fit_the_algorithm() {
    let build = |v: Validator| Registry::builder().validator(v).build();
    let base = |alg| {
        Validator::new("v")
            .issuer(ISS)
            .audience("api")
            .algorithm(alg)
            .user(User::fixed(1))
    };
    let rsa_pem = TestKey::rsa().public_pem();
    // An RSA public key is never an HMAC secret.
    let err = build(base(Algorithm::HS256).key(KeySource::secret(rsa_pem))).unwrap_err();
    assert!(err.to_string().contains("looks like a PEM"), "{err}");
    let err = build(base(Algorithm::HS256).key(KeySource::public_key_pem(rsa_pem))).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidKey);
    assert!(build(base(Algorithm::ES256).key(KeySource::public_key_pem(rsa_pem))).is_err());
    assert!(
        build(
            base(Algorithm::ES384).key(KeySource::public_key_pem(TestKey::ec_p256().public_pem()))
        )
        .is_err()
    );
    assert!(
        build(
            base(Algorithm::ES256).key(KeySource::public_key_pem(TestKey::ec_p384().public_pem()))
        )
        .is_err()
    );
    assert!(
        build(
            base(Algorithm::RS256).key(KeySource::public_key_pem(TestKey::ed25519().public_pem()))
        )
        .is_err()
    );
    assert!(build(base(Algorithm::RS256).key(KeySource::secret(SECRET))).is_err());
    let err = build(
        base(Algorithm::RS256).key(KeySource::public_key_pem(TestKey::rsa_1024().public_pem())),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "validator \"v\": key `public_key_pem`: RSA key has 1024 bits, at least 2048 are required"
    );
    let err =
        build(base(Algorithm::RS256).key(KeySource::public_key_pem(TestKey::rsa().private_pem())))
            .unwrap_err();
    assert!(err.to_string().contains("private key"), "{err}");
    let err = build(base(Algorithm::HS512).key(KeySource::secret(SECRET))).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::WeakSecret);
    assert_eq!(
        err.to_string(),
        "validator \"v\": key `secret`: the HS512 secret must be at least 64 bytes long, it has 32"
    );
    assert!(!format!("{err:?}").contains(SECRET));
}

#[tokio::test]
async fn alg_confusion_with_the_public_key_as_secret_fails() {
    let rsa = TestKey::rsa();
    let v = Validator::new("v")
        .issuer(ISS)
        .audience("api")
        .algorithm(Algorithm::RS256)
        .key(KeySource::public_key_pem(rsa.public_pem()))
        .user(User::fixed(1));
    let app = router(v);
    let forged = mint(
        &TestKey::hmac(rsa.public_pem()),
        "HS256",
        json!({}),
        &claims(ISS, "api", 100),
    );
    refused(&app, &forged, "token algorithm not accepted").await;
    let real = mint(&rsa, "RS256", json!({}), &claims(ISS, "api", 100));
    assert_eq!(get_bearer(&app, "/jwt", Some(&real)).await.status, 200);
    let other = mint(
        &TestKey::rsa_alt(),
        "RS256",
        json!({}),
        &claims(ISS, "api", 100),
    );
    refused(&app, &other, "token signature is invalid").await;
}

#[tokio::test]
async fn every_algorithm_end_to_end() {
    let cases = [
        (Algorithm::RS256, TestKey::rsa()),
        (Algorithm::RS384, TestKey::rsa()),
        (Algorithm::RS512, TestKey::rsa()),
        (Algorithm::PS256, TestKey::rsa()),
        (Algorithm::PS384, TestKey::rsa()),
        (Algorithm::PS512, TestKey::rsa()),
        (Algorithm::ES256, TestKey::ec_p256()),
        (Algorithm::ES384, TestKey::ec_p384()),
        (Algorithm::EdDSA, TestKey::ed25519()),
    ];
    for (alg, key) in cases {
        let base = Validator::new("v")
            .issuer(ISS)
            .audience("api")
            .algorithm(alg)
            .user(User::fixed(1));
        let c = claims(ISS, "api", 100);
        // PEM
        let app = router(
            base.clone()
                .key(KeySource::public_key_pem(key.public_pem())),
        );
        let t = mint(&key, alg.as_str(), json!({}), &c);
        assert_eq!(
            get_bearer(&app, "/jwt", Some(&t)).await.status,
            200,
            "{alg} pem"
        );
        // inline JWK set, selected by kid
        let set = jwks([
            key.jwk("k1", alg.as_str()),
            TestKey::rsa_alt().jwk("k2", "RS256"),
        ]);
        let app = router(base.key(KeySource::jwks(set.to_string())));
        let t = mint(&key, alg.as_str(), json!({"kid": "k1"}), &c);
        assert_eq!(
            get_bearer(&app, "/jwt", Some(&t)).await.status,
            200,
            "{alg} jwks"
        );
        let t = mint(&key, alg.as_str(), json!({"kid": "nope"}), &c);
        refused(&app, &t, "token key id is unknown").await;
    }
    for (alg, len) in [
        (Algorithm::HS256, 32),
        (Algorithm::HS384, 48),
        (Algorithm::HS512, 64),
    ] {
        let secret = "s".repeat(len);
        let v = Validator::new("v")
            .issuer(ISS)
            .audience("api")
            .algorithm(alg)
            .key(KeySource::secret(secret.clone()))
            .user(User::fixed(1));
        let t = mint(
            &TestKey::hmac(secret),
            alg.as_str(),
            json!({}),
            &claims(ISS, "api", 100),
        );
        assert_eq!(
            get_bearer(&router(v), "/jwt", Some(&t)).await.status,
            200,
            "{alg}"
        );
    }
}

#[tokio::test]
async fn cors_preflights_never_reach_a_jwt_handler_unless_asked() {
    let r = Registry::builder().validator(hs("v")).build().unwrap();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app_with = |preflight: jwtgate::layer::Preflight| {
        let calls = calls.clone();
        Router::new()
            .route(
                "/x",
                any(move |identity: Option<jwtgate::Identity>| {
                    calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    async move { identity.map_or("anonymous".to_owned(), |_| "user".to_owned()) }
                }),
            )
            .route_layer(r.layer("jwt_v").unwrap().preflight(preflight))
    };
    let preflight = || {
        http::Request::options("/x")
            .header("origin", "https://app.example")
            .header("access-control-request-method", "DELETE")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let count = || calls.load(std::sync::atomic::Ordering::SeqCst);
    // By default: 204 here, the handler never called, nothing granted to the origin.
    let answered = send(&app_with(jwtgate::layer::Preflight::default()), preflight()).await;
    assert_eq!(answered.status, 204);
    assert_eq!(answered.header("access-control-allow-origin"), "");
    assert!(answered.header("vary").contains("origin"));
    assert_eq!(count(), 0);
    // OPTIONS without the preflight header is an ordinary request: 401.
    let plain_options = http::Request::options("/x")
        .body(axum::body::Body::empty())
        .unwrap();
    let app = app_with(jwtgate::layer::Preflight::answer());
    assert_eq!(send(&app, plain_options).await.status, 401);
    assert_eq!(count(), 0);
    // Opted in: the handler answers it, as an anonymous request.
    let passed = send(
        &app_with(jwtgate::layer::Preflight::pass_anonymous()),
        preflight(),
    )
    .await;
    assert_eq!((passed.status.as_u16(), count()), (200, 1));
    // Authenticated like anything else: 401.
    let strict = send(
        &app_with(jwtgate::layer::Preflight::authenticate()),
        preflight(),
    )
    .await;
    assert_eq!((strict.status.as_u16(), count()), (401, 1));
}

#[derive(Deserialize)]
struct Mine {
    sub: String,
    exp: u64,
}

async fn typed(
    Claims(c): Claims<Mine>,
    user: UserId,
    v: ValidatorName,
    p: Option<PartnerId>,
) -> String {
    format!("{} {} {} {} {:?}", c.sub, c.exp > 0, user, v, p)
}

async fn optional(
    user: Option<UserId>,
    payload: Option<Payload>,
    claims: Option<Claims<Value>>,
) -> String {
    format!(
        "{:?} {} {}",
        user.map(|u| u.to_string()),
        payload.is_some(),
        claims.is_some()
    )
}

async fn needs_partner(p: PartnerId) -> String {
    p.to_string()
}

#[tokio::test]
async fn extractors() {
    let r = Registry::builder().validator(hs("v")).build().unwrap();
    let app = Router::new()
        .route("/typed", get(typed))
        .route("/partner", get(needs_partner))
        .route_layer(r.layer("jwt_v").unwrap())
        .merge(
            Router::new()
                .route("/opt", get(optional))
                .route("/user", get(|u: UserId| async move { u.to_string() }))
                .route_layer(r.layer("public_or_jwt_v").unwrap()),
        )
        .merge(Router::new().route("/nolayer", get(|u: UserId| async move { u.to_string() })));
    let mut c = claims(ISS, "api", 100);
    c["sub"] = json!("alice");
    let t = mint(&TestKey::hmac(SECRET), "HS256", json!({}), &c);
    let text = |r: &jwtgate_tests::Reply| r.body.clone();
    let res = get_bearer(&app, "/typed", Some(&t)).await;
    assert_eq!(res.status, 200);
    let _ = text(&res);
    let res = send(
        &app,
        get_with("/typed", &[("authorization", &format!("Bearer {t}"))]),
    )
    .await;
    assert_eq!(res.status, 200);

    // Shape mismatch: 403.
    let no_sub = mint(
        &TestKey::hmac(SECRET),
        "HS256",
        json!({}),
        &claims(ISS, "api", 100),
    );
    let res = get_bearer(&app, "/typed", Some(&no_sub)).await;
    assert_eq!(res.status, 403);
    // The same body shape and challenge as the layer's refusals.
    assert_eq!(res.body["error"], "insufficient_scope");
    assert_eq!(
        res.body["error_description"],
        "the token claims do not have the expected shape"
    );
    assert_eq!(
        res.header("www-authenticate"),
        "Bearer realm=\"jwtgate\", error=\"insufficient_scope\""
    );
    // A required partner that is absent: 403.
    assert_eq!(get_bearer(&app, "/partner", Some(&t)).await.status, 403);
    // Optional forms on an anonymous request.
    let res = jwtgate_tests::send(&app, get_with("/opt", &[])).await;
    assert_eq!(res.status, 200);
    // A required extractor on an anonymous request: 401.
    let res = get_bearer(&app, "/user", None).await;
    assert_eq!(res.status, 401);
    assert_eq!(res.body["error"], "missing_token");
    assert_eq!(
        res.body["error_description"],
        "this handler needs a bearer token"
    );
    assert_eq!(res.header("www-authenticate"), "Bearer realm=\"jwtgate\"");
    // No layer: a 500 that names it.
    let res = get_bearer(&app, "/nolayer", Some(&t)).await;
    assert_eq!(res.status, 500);
    assert_eq!(res.body["error"], "server_error");
    assert!(
        res.body["error_description"]
            .as_str()
            .unwrap()
            .contains("JwtAuthLayer"),
        "{:?}",
        res.body
    );
}

#[tokio::test]
async fn extractor_values() {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let r = Registry::builder().validator(hs("v")).build().unwrap();
    let app = Router::new()
        .route("/typed", get(typed))
        .route_layer(r.layer("jwt_v").unwrap())
        .merge(
            Router::new()
                .route("/opt", get(optional))
                .route_layer(r.layer("public_or_jwt_v").unwrap()),
        );
    let mut c = claims(ISS, "api", 100);
    c["sub"] = json!("alice");
    let t = mint(&TestKey::hmac(SECRET), "HS256", json!({}), &c);
    let body = |req: http::Request<axum::body::Body>| {
        let app = app.clone();
        async move {
            let res = app.oneshot(req).await.unwrap();
            String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
        }
    };
    let auth = format!("Bearer {t}");
    assert_eq!(
        body(get_with("/typed", &[("authorization", &auth)])).await,
        "alice true 7 v None"
    );
    assert_eq!(
        body(get_with("/opt", &[("authorization", &auth)])).await,
        "Some(\"7\") true true"
    );
    assert_eq!(body(get_with("/opt", &[])).await, "None false false");
}

#[tokio::test]
async fn user_from_claim() {
    // A user claim is read as it is, a string or a number (`sub` itself must be a string).
    let app = router(hs("v").user(User::claim("uid")));
    let key = TestKey::hmac(SECRET);
    for (value, uid) in [(json!("abc"), json!("abc")), (json!(42), json!(42))] {
        let mut c = claims(ISS, "api", 100);
        c["uid"] = value;
        let r = get_bearer(&app, "/jwt", Some(&mint(&key, "HS256", json!({}), &c))).await;
        assert_eq!(r.body["uid"], uid);
    }
    refused(
        &app,
        &mint(&key, "HS256", json!({}), &claims(ISS, "api", 100)),
        "token has no usable user claim",
    )
    .await;
}

/// Automatic registration: unknown emails get a new user id, known ones keep theirs.
struct Registering {
    next: AtomicU64,
    users: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

impl UserResolver for Registering {
    fn resolve<'a>(
        &'a self,
        payload: &'a Payload,
    ) -> BoxFuture<'a, Result<Option<UserId>, LookupError>> {
        Box::pin(async move {
            let Some(email) = payload.get_str("email") else {
                return Ok(None);
            };
            if email == "broken@example.com" {
                return Err(LookupError::new("database down"));
            }
            if email == "unreachable@example.com" {
                return Err(LookupError::unavailable("database unreachable"));
            }
            let mut users = self.users.lock().unwrap();
            let id = *users
                .entry(email.to_owned())
                .or_insert_with(|| self.next.fetch_add(1, Ordering::SeqCst));
            Ok(Some(UserId::from(id)))
        })
    }
}

#[tokio::test]
async fn user_resolver_registers_and_refuses() {
    let resolver = Registering {
        next: AtomicU64::new(100),
        users: Default::default(),
    };
    let app = router(hs("v").user(User::resolver(resolver)));
    let key = TestKey::hmac(SECRET);
    let with_email = |e: &str| {
        let mut c = claims(ISS, "api", 100);
        c["email"] = json!(e);
        mint(&key, "HS256", json!({}), &c)
    };
    assert_eq!(
        get_bearer(&app, "/jwt", Some(&with_email("a@example.com")))
            .await
            .body["uid"],
        100
    );
    assert_eq!(
        get_bearer(&app, "/jwt", Some(&with_email("b@example.com")))
            .await
            .body["uid"],
        101
    );
    assert_eq!(
        get_bearer(&app, "/jwt", Some(&with_email("a@example.com")))
            .await
            .body["uid"],
        100
    );
    refused(
        &app,
        &mint(&key, "HS256", json!({}), &claims(ISS, "api", 100)),
        "token user is not known",
    )
    .await;
    let r = get_bearer(&app, "/jwt", Some(&with_email("broken@example.com"))).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.body["error"], "server_error");
    assert!(
        !r.body.to_string().contains("database"),
        "backend error text stays in the log"
    );
    // A resolver's backend that cannot be reached is a 503 to retry, as a directory's is.
    let r = get_bearer(&app, "/jwt", Some(&with_email("unreachable@example.com"))).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), "5");
    assert_eq!(r.body["error"], "temporarily_unavailable");
    assert!(!r.body.to_string().contains("database"));
}

#[test]
fn debug_output_has_no_secrets() {
    let r = Registry::builder()
        .validator(
            hs("v")
                .cookie(jwtgate::CookieMode::new("c").secret("cookie-secret-cookie-secret-0032")),
        )
        .build()
        .unwrap();
    let text = format!("{r:?} {:?} {:?}", r.layer("jwt_v").unwrap(), hs("v"));
    assert!(
        !text.contains(SECRET) && !text.contains("cookie-secret"),
        "{text}"
    );
    assert!(text.contains("\"v\""), "{text}");
    let _ = Arc::new(r);
}

/// A small deterministic generator, so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[tokio::test]
async fn mutated_tokens_and_cookies_never_panic_and_never_pass() {
    let v = hs("v").cookie(jwtgate::CookieMode::new("c").secret(SECRET));
    let app = router(v);
    let good = mint(
        &TestKey::hmac(SECRET),
        "HS256",
        json!({"kid": "k"}),
        &claims(ISS, "api", 100),
    );
    assert_eq!(get_bearer(&app, "/jwt", Some(&good)).await.status, 200);
    let alphabet = b"ABCxyz019-_.=+/ \"{}[]:,\\";
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for round in 0..2000 {
        let mut bytes = good.clone().into_bytes();
        for _ in 0..=rng.below(4) {
            let i = rng.below(bytes.len());
            match rng.below(3) {
                0 => bytes[i] = alphabet[rng.below(alphabet.len())],
                1 => {
                    bytes.remove(i);
                }
                _ => bytes.insert(i, alphabet[rng.below(alphabet.len())]),
            }
        }
        let mutated = String::from_utf8(bytes).unwrap();
        if mutated == good {
            continue;
        }
        let auth = format!("Bearer {mutated}");
        let cookie = format!("__Host-c={mutated}");
        let (path, header) = if round % 2 == 0 {
            ("/jwt", ("authorization", auth.as_str()))
        } else {
            ("/public", ("cookie", cookie.as_str()))
        };
        let r = send(&app, get_with(path, &[header])).await;
        // Strict base64url leaves no spare bits, so every change fails, except quotes around a
        // cookie value, which RFC 6265 allows and which are not part of the value.
        if r.status == 200 {
            assert!(
                path == "/public" && mutated.trim_matches('"') == good,
                "{mutated} passed"
            );
        } else {
            assert_eq!(r.status, 401, "{mutated}");
        }
    }
}
