//! The attack catalogue: one named test per way a token, a cookie or a redirect is forged or
//! bent, each asserting the answer jwtgate gives (status and description), never only that it
//! "fails". Tokens go through the layer of a real router; keys come from a live JWKS where the
//! attack is about fetching. The profile page's `next` is held to local paths by its own
//! tests (`jwtgate-sqlx`, `profile::tests`), and header-supplied algorithms, `crit`, JSON
//! strictness and claim types have more cases in `hardening.rs`.

use axum::Router;
use jwtgate::{Algorithm, CookieMode, KeySource, Registry, User, Validator, login::Login};
use jwtgate_test::{Provider, TestKey, b64, claims, jwks, mint, mint_raw};
use jwtgate_tests::{app, get_bearer, get_with, send};
use serde_json::{Value, json};

const ISS: &str = "https://issuer.example";
const SECRET: &str = "thesecret-thesecret-thesecret-32";

fn now() -> u64 {
    jwtgate_test::now()
}

fn good_claims() -> Value {
    claims(ISS, "api", 300)
}

/// An RS256 validator with a static public key.
fn rs256(key: &TestKey) -> Router {
    let v = Validator::new("v")
        .issuer(ISS)
        .audience("api")
        .algorithm(Algorithm::RS256)
        .key(KeySource::public_key_pem(key.public_pem()))
        .user(User::fixed(7));
    let r = Registry::builder().validator(v).build().unwrap();
    app(&r, &[("/jwt", "jwt_v")])
}

async fn refused(app: &Router, token: &str, description: &str) {
    let r = get_bearer(app, "/jwt", Some(token)).await;
    assert_eq!(
        (r.status.as_u16(), r.body["error_description"].as_str()),
        (401, Some(description)),
        "{token}"
    );
}

#[tokio::test]
async fn alg_confusion_rs256_key_used_as_an_hs256_secret() {
    let key = TestKey::rsa();
    let app = rs256(&key);
    // The public key is public: an attacker signs HS256 with its PEM as the secret.
    let forged = mint(
        &TestKey::hmac(key.public_pem()),
        "HS256",
        json!({}),
        &good_claims(),
    );
    refused(&app, &forged, "token algorithm not accepted").await;
    // The real RS256 token passes: the refusal is the algorithm's, not the claims'.
    let real = mint(&key, "RS256", json!({}), &good_claims());
    assert_eq!(get_bearer(&app, "/jwt", Some(&real)).await.status, 200);
}

#[tokio::test]
async fn alg_none_in_every_spelling() {
    let app = rs256(&TestKey::rsa());
    let payload = b64(good_claims().to_string());
    for alg in ["none", "None", "NONE", "nOnE", ""] {
        let header = b64(json!({"alg": alg, "typ": "JWT"}).to_string());
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}.e30"),
        ] {
            let r = get_bearer(&app, "/jwt", Some(&token)).await;
            assert_eq!(r.status, 401, "{alg}");
            assert_eq!(
                r.body["error_description"], "token algorithm not accepted",
                "{alg}"
            );
        }
    }
}

#[tokio::test]
async fn kid_injection_and_path_tricks_name_no_key_and_fetch_nothing() {
    let key = TestKey::rsa();
    let provider = Provider::start(jwks([key.jwk("k1", "RS256")])).await;
    let v = Validator::new("v")
        .issuer(ISS)
        .audience("api")
        .algorithm(Algorithm::RS256)
        .key(KeySource::jwks_url(provider.jwks_url()))
        .user(User::fixed(7));
    let r = Registry::builder().validator(v).build().unwrap();
    let app = app(&r, &[("/jwt", "jwt_v")]);
    // The first request fetches the set once.
    let ok = mint(&key, "RS256", json!({"kid": "k1"}), &good_claims());
    assert_eq!(get_bearer(&app, "/jwt", Some(&ok)).await.status, 200);
    let fetched = provider.jwks_hits();
    for kid in [
        "../../../../etc/passwd",
        "k1' OR '1'='1",
        "/dev/zero",
        "http://attacker.example/jwks.json",
        "k1\u{0}",
    ] {
        let token = mint(&key, "RS256", json!({ "kid": kid }), &good_claims());
        refused(&app, &token, "token key id is unknown").await;
    }
    // A kid is a name to look up, never a path or a URL; unknown ones are rate-limited
    // refetches of the same set, at most one here.
    assert!(
        provider.jwks_hits() <= fetched + 1,
        "{}",
        provider.jwks_hits()
    );
    assert_eq!(provider.other_hits(), 0, "nothing else was fetched");
}

#[tokio::test]
async fn embedded_jwk_jku_x5u_and_x5c_headers_are_never_used() {
    let key = TestKey::rsa();
    let attacker = TestKey::rsa_alt();
    let watcher = Provider::start(jwks([attacker.jwk("a", "RS256")])).await;
    let app = rs256(&key);
    for header in [
        json!({ "jwk": attacker.jwk("a", "RS256") }),
        json!({ "jku": watcher.jwks_url(), "kid": "a" }),
        json!({ "x5u": watcher.jwks_url() }),
        json!({ "x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"] }),
    ] {
        let token = mint(&attacker, "RS256", header.clone(), &good_claims());
        refused(&app, &token, "token signature is invalid").await;
    }
    assert_eq!(
        (watcher.jwks_hits(), watcher.other_hits()),
        (0, 0),
        "no URL from a header was fetched"
    );
}

#[tokio::test]
async fn crit_headers_are_refused_whatever_they_name() {
    let hs = hs_app();
    for crit in [json!(["exp"]), json!([]), json!(["b64"]), json!("exp")] {
        let token = mint(
            &TestKey::hmac(SECRET),
            "HS256",
            json!({ "crit": crit }),
            &good_claims(),
        );
        let r = get_bearer(&hs, "/jwt", Some(&token)).await;
        assert_eq!(r.status, 401, "{crit}");
        assert!(
            r.body["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("crit")),
            "{crit}: {}",
            r.body
        );
    }
}

fn hs_app() -> Router {
    let v = Validator::new("v")
        .issuer(ISS)
        .audience("api")
        .algorithm(Algorithm::HS256)
        .key(KeySource::secret(SECRET))
        .user(User::fixed(7));
    let r = Registry::builder().validator(v).build().unwrap();
    app(&r, &[("/jwt", "jwt_v")])
}

fn hs_raw(header: &str, claims: &str) -> String {
    mint_raw(&TestKey::hmac(SECRET), "HS256", header, claims)
}

#[tokio::test]
async fn duplicate_members_in_header_or_claims_are_refused() {
    let app = hs_app();
    let exp = now() + 300;
    for (header, claims) in [
        (
            r#"{"alg":"HS256","alg":"none"}"#.to_owned(),
            format!(r#"{{"iss":"{ISS}","aud":"api","exp":{exp}}}"#),
        ),
        (
            r#"{"alg":"HS256"}"#.to_owned(),
            format!(r#"{{"iss":"{ISS}","aud":"api","aud":"admin","exp":{exp}}}"#),
        ),
        (
            r#"{"alg":"HS256"}"#.to_owned(),
            format!(r#"{{"iss":"{ISS}","aud":"api","exp":{exp},"\u0069ss":"x"}}"#),
        ),
    ] {
        let r = get_bearer(&app, "/jwt", Some(&hs_raw(&header, &claims))).await;
        assert_eq!(r.status, 401, "{header} {claims}");
        assert!(
            r.body["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("duplicated member")),
            "{}",
            r.body
        );
    }
}

#[tokio::test]
async fn oversized_and_deeply_nested_tokens_are_refused_before_any_key_is_used() {
    let app = hs_app();
    let exp = now() + 300;
    let deep = format!(
        r#"{{"iss":"{ISS}","aud":"api","exp":{exp},"x":{}1{}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    let r = get_bearer(&app, "/jwt", Some(&hs_raw(r#"{"alg":"HS256"}"#, &deep))).await;
    assert_eq!(r.status, 401);
    let huge = format!(
        r#"{{"iss":"{ISS}","aud":"api","exp":{exp},"pad":"{}"}}"#,
        "a".repeat(64 * 1024)
    );
    let r = get_bearer(&app, "/jwt", Some(&hs_raw(r#"{"alg":"HS256"}"#, &huge))).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error_description"], "token too large");
}

#[tokio::test]
async fn jwe_shaped_tokens_are_refused() {
    let app = hs_app();
    let header = b64(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#);
    let token = format!("{header}.a2V5.aXY.Y2lwaGVy.dGFn");
    let r = get_bearer(&app, "/jwt", Some(&token)).await;
    assert_eq!(r.status, 401);
    assert!(
        r.body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("JWE") || d.contains("three") || d.contains("parts")),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn a_stripped_or_emptied_signature_is_refused() {
    let app = hs_app();
    let token = mint(&TestKey::hmac(SECRET), "HS256", json!({}), &good_claims());
    let (input, _) = token.rsplit_once('.').unwrap();
    for stripped in [
        format!("{input}."),
        input.to_owned(),
        format!("{input}.AAAA"),
    ] {
        let r = get_bearer(&app, "/jwt", Some(&stripped)).await;
        assert_eq!(r.status, 401, "{stripped}");
        assert_ne!(r.body["error_description"], Value::Null);
    }
    refused(&app, &format!("{input}.AAAA"), "token signature is invalid").await;
}

#[tokio::test]
async fn a_session_cookie_is_refused_by_every_other_validator() {
    let cookie = |name: &str| CookieMode::new(name).secret(SECRET).secure(false);
    let v = |name: &str, c: &str| {
        Validator::new(name)
            .issuer(ISS)
            .audience("api")
            .algorithm(Algorithm::HS256)
            .key(KeySource::secret(SECRET))
            .user(User::fixed(7))
            .cookie(cookie(c))
    };
    let r = Registry::builder()
        .validator(v("a", "a_session"))
        .validator(v("b", "b_session"))
        .build()
        .unwrap();
    let app = app(&r, &[("/a", "jwt_a"), ("/b", "jwt_b")]);
    let token = mint(&TestKey::hmac(SECRET), "HS256", json!({}), &good_claims());
    let res = get_bearer(&app, "/a", Some(&token)).await;
    let set = res.cookie("a_session").expect("a session cookie");
    // The same cookie value under b's name (same secret, same issuer): b's key differs.
    let replay = send(
        &app,
        get_with("/b", &[("cookie", &format!("b_session={set}"))]),
    )
    .await;
    assert_eq!(replay.status, 401);
    assert_eq!(
        replay.body["error_description"],
        "token signature is invalid"
    );
    // On its own validator it works.
    let own = send(
        &app,
        get_with("/a", &[("cookie", &format!("a_session={set}"))]),
    )
    .await;
    assert_eq!(own.status, 200);
}

#[tokio::test]
async fn login_and_logout_never_redirect_off_site() {
    let key = TestKey::rsa();
    let provider = Provider::start(jwks([key.jwk("k1", "RS256")])).await;
    provider.enable_login(key, "k1");
    let v = Validator::new("idp")
        .issuer(provider.issuer())
        .audience("web")
        .algorithm(Algorithm::RS256)
        .key(KeySource::oidc_issuer(provider.issuer()))
        .user(User::claim("sub"))
        .cookie(CookieMode::new("idp_session").secret(SECRET).secure(false))
        .login(Login::oidc("web", "http://app.example/auth/callback"));
    let r = Registry::builder().validator(v).build().unwrap();
    let auth = r.login_service("idp").unwrap();
    let app: Router = Router::new()
        .route_service("/auth/login", auth.clone())
        .route_service("/auth/logout", auth);
    for target in [
        "//evil.example/x",
        "/\\evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "%2F%2Fevil.example",
        // Browsers drop tabs and newlines from URLs: "/\t/evil" would be "//evil".
        "/\t/evil.example",
        "/\n/evil.example",
    ] {
        let encoded: String = target.bytes().map(|b| format!("%{b:02X}")).collect();
        let res = send(
            &app,
            get_with(&format!("/auth/login?return_to={encoded}"), &[]),
        )
        .await;
        assert_eq!(res.status, 302, "{target}");
        // The sign-in starts at the provider, and comes back home, never to the target.
        assert!(
            res.header("location").starts_with(&provider.issuer()),
            "{target}: {}",
            res.header("location")
        );
        let pending = res
            .set_cookies()
            .into_iter()
            .find(|c| c.starts_with("jwtgate_login_idp="))
            .unwrap();
        let body = pending
            .split_once('=')
            .unwrap()
            .1
            .split('.')
            .next()
            .unwrap();
        let sealed: Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, body)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(sealed["return_to"], "/", "{target}");
    }
    // A logout goes to the provider's end-session endpoint, whatever the request asks.
    let res = send(
        &app,
        get_with(
            "/auth/logout?post_logout_redirect_uri=https://evil.example&next=//evil.example",
            &[("host", "evil.example")],
        ),
    )
    .await;
    assert_eq!(res.status, 302);
    assert!(
        res.header("location")
            .starts_with(&format!("{}/logout?", provider.issuer())),
        "{}",
        res.header("location")
    );
    assert!(
        !res.header("location").contains("evil.example/"),
        "{}",
        res.header("location")
    );
}
