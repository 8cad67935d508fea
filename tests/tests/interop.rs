//! What real providers and libraries send, and the red-team findings on keys and claims: each
//! case through HTTP (or the registry build, for configuration mistakes).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwtgate::{Algorithm, ErrorKind, KeySource, Registry, User, Validator};
use jwtgate_test::{Provider, TestKey, claims, jwks, mint, mint_raw, now};
use jwtgate_tests::{app, get_bearer};
use serde_json::{Value, json};

const ISS: &str = "https://issuer.example";
const AUD: &str = "api";

fn validator(alg: Algorithm, key: KeySource) -> Validator {
    Validator::new("v")
        .issuer(ISS)
        .audience(AUD)
        .algorithm(alg)
        .key(key)
        .user(User::fixed(1))
}

fn router(v: Validator) -> axum::Router {
    let registry = Registry::builder().validator(v).build().expect("registry");
    app(&registry, &[("/jwt", "jwt_v")])
}

async fn outcome(app: &axum::Router, token: &str) -> (u16, Value) {
    let r = get_bearer(app, "/jwt", Some(token)).await;
    (r.status.as_u16(), r.body["error_description"].clone())
}

/// A token with `alg: Ed25519` (RFC 9864), signed with an Ed25519 key.
fn ed25519_token(kid: Option<&str>, alg: &str) -> String {
    let mut header = json!({"alg": alg, "typ": "JWT"});
    if let Some(kid) = kid {
        header["kid"] = json!(kid);
    }
    mint_raw(
        &TestKey::ed25519(),
        "EdDSA",
        &header.to_string(),
        &claims(ISS, AUD, 300).to_string(),
    )
}

#[tokio::test]
async fn rfc_9864_ed25519_is_a_pinnable_algorithm() {
    let ed = TestKey::ed25519();
    let by_pem = router(validator(
        Algorithm::Ed25519,
        KeySource::public_key_pem(ed.public_pem()),
    ));
    assert_eq!(
        outcome(&by_pem, &ed25519_token(None, "Ed25519")).await.0,
        200
    );
    // Pinned: the older name is another algorithm.
    assert_eq!(
        outcome(&by_pem, &ed25519_token(None, "EdDSA")).await,
        (401, json!("token algorithm not accepted"))
    );
    // JWKs with alg Ed25519, or none, serve it; one that says EdDSA does not.
    let set = jwks([
        ed.jwk("a", "Ed25519"),
        ed.bare_jwk("b"),
        ed.jwk("c", "EdDSA"),
    ])
    .to_string();
    let by_jwks = router(validator(Algorithm::Ed25519, KeySource::jwks(set)));
    assert_eq!(
        outcome(&by_jwks, &ed25519_token(Some("a"), "Ed25519"))
            .await
            .0,
        200
    );
    assert_eq!(
        outcome(&by_jwks, &ed25519_token(Some("b"), "Ed25519"))
            .await
            .0,
        200
    );
    assert_eq!(
        outcome(&by_jwks, &ed25519_token(Some("c"), "Ed25519")).await,
        (401, json!("token key id is unknown"))
    );
    // And the EdDSA validator still works as before.
    let eddsa = router(validator(
        Algorithm::EdDSA,
        KeySource::public_key_pem(ed.public_pem()),
    ));
    assert_eq!(outcome(&eddsa, &ed25519_token(None, "EdDSA")).await.0, 200);
}

#[tokio::test]
async fn rsa_jwk_with_a_leading_zero_octet_verifies() {
    let key = TestKey::rsa();
    let mut jwk = key.jwk("z", "RS256");
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let mut padded = vec![0u8];
    padded.extend_from_slice(&n);
    jwk["n"] = json!(URL_SAFE_NO_PAD.encode(&padded));
    let app = router(validator(
        Algorithm::RS256,
        KeySource::jwks(jwks([jwk]).to_string()),
    ));
    let token = mint(&key, "RS256", json!({"kid": "z"}), &claims(ISS, AUD, 300));
    assert_eq!(outcome(&app, &token).await.0, 200);
    let forged = mint(
        &TestKey::rsa_alt(),
        "RS256",
        json!({"kid": "z"}),
        &claims(ISS, AUD, 300),
    );
    assert_eq!(
        outcome(&app, &forged).await,
        (401, json!("token signature is invalid"))
    );
}

#[test]
fn a_key_set_with_no_usable_key_says_why_for_each_key() {
    let key = TestKey::rsa();
    let mut enc = key.jwk("enc", "RS256");
    enc["use"] = json!("enc");
    let mut wrap = key.jwk("wrap", "RS256");
    wrap["key_ops"] = json!(["wrapKey"]);
    let mut even = key.jwk("even", "RS256");
    even["e"] = json!(URL_SAFE_NO_PAD.encode([1u8, 0, 0]));
    let mut one = key.jwk("one", "RS256");
    one["e"] = json!("AQ");
    let set = jwks([enc, wrap, even, one, TestKey::ec_p256().jwk("ec", "ES256")]).to_string();
    let err = Registry::builder()
        .validator(validator(Algorithm::RS256, KeySource::jwks(set)))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidKey);
    assert_eq!(err.field(), Some("jwks"));
    assert_eq!(
        err.message(),
        "the JWK set has no key usable with RS256: skipped kid \"enc\": use is \"enc\", not \"sig\"; \
         kid \"wrap\": key_ops does not include \"verify\"; kid \"even\": RSA exponent is even; \
         kid \"one\": RSA exponent is below 3; kid \"ec\": alg ES256 differs from RS256"
    );
}

#[tokio::test]
async fn key_ops_with_verify_is_usable() {
    let key = TestKey::rsa();
    let mut jwk = key.jwk("k", "RS256");
    jwk["key_ops"] = json!(["verify"]);
    let app = router(validator(
        Algorithm::RS256,
        KeySource::jwks(jwks([jwk]).to_string()),
    ));
    let token = mint(&key, "RS256", json!({"kid": "k"}), &claims(ISS, AUD, 300));
    assert_eq!(outcome(&app, &token).await.0, 200);
}

#[tokio::test]
async fn private_jwks_are_refused_statically_and_remotely() {
    let key = TestKey::ed25519();
    let mut private = key.jwk("p", "EdDSA");
    private["d"] = json!(URL_SAFE_NO_PAD.encode([9u8; 32]));
    let set = jwks([key.jwk("pub", "EdDSA"), private]);
    let err = Registry::builder()
        .validator(validator(
            Algorithm::EdDSA,
            KeySource::jwks(set.to_string()),
        ))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidKey);
    assert!(
        err.message().contains("holds a private key: kid \"p\""),
        "{err}"
    );
    assert!(
        !err.to_string().contains("CQkJ"),
        "the private value is never echoed: {err}"
    );

    let provider = Provider::start(set).await;
    let registry = Registry::builder()
        .validator(validator(
            Algorithm::EdDSA,
            KeySource::jwks_url(provider.jwks_url()),
        ))
        .build()
        .unwrap();
    let err = registry.prefetch().await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidSetting);
    let state = registry.key_caches().remove(0);
    assert!(state.misconfigured);
    assert!(state.last_error.unwrap().contains("private key"));
}

#[tokio::test]
async fn skipped_reasons_reach_the_remote_cache_error() {
    let key = TestKey::rsa();
    let mut enc = key.jwk("enc", "RS256");
    enc["use"] = json!("enc");
    let provider = Provider::start(jwks([enc])).await;
    let registry = Registry::builder()
        .validator(validator(
            Algorithm::RS256,
            KeySource::jwks_url(provider.jwks_url()),
        ))
        .build()
        .unwrap();
    let app = app(&registry, &[("/jwt", "jwt_v")]);
    let token = mint(&key, "RS256", json!({"kid": "enc"}), &claims(ISS, AUD, 300));
    assert_eq!(outcome(&app, &token).await.0, 503);
    let state = registry.key_caches().remove(0);
    assert!(!state.misconfigured);
    let error = state.last_error.unwrap();
    assert!(
        error.ends_with("skipped kid \"enc\": use is \"enc\", not \"sig\""),
        "{error}"
    );
}

#[tokio::test]
async fn the_token_size_cap_is_configurable() {
    const SECRET: &str = "thesecret-thesecret-thesecret-32";
    let token_of = |bytes: usize| {
        let mut c = claims(ISS, AUD, 300);
        // An Entra ID or Keycloak token with many groups.
        c["groups"] = json!(vec!["00000000-0000-0000-0000-000000000000"; bytes / 40]);
        mint(&TestKey::hmac(SECRET), "HS256", json!({}), &c)
    };
    let default = router(validator(Algorithm::HS256, KeySource::secret(SECRET)));
    let (t12, t20) = (token_of(12 * 1024), token_of(20 * 1024));
    assert!(t12.len() > 8 * 1024 && t20.len() > 16 * 1024);
    assert_eq!(outcome(&default, &t12).await.0, 200);
    assert_eq!(
        outcome(&default, &t20).await,
        (401, json!("token too large"))
    );
    let large =
        router(validator(Algorithm::HS256, KeySource::secret(SECRET)).max_token_bytes(32 * 1024));
    assert_eq!(outcome(&large, &t20).await.0, 200);
}

#[tokio::test]
async fn a_token_without_kid_tries_only_a_few_keys_of_a_set() {
    // Six symmetric keys in a static set; a kid-less token is tried against the first four.
    let secrets: Vec<String> = (0..6)
        .map(|i| format!("secret-number-{i}-of-the-set-32bytes"))
        .collect();
    let set = jwks(secrets.iter().enumerate().map(
        |(i, s)| json!({"kty": "oct", "kid": format!("k{i}"), "k": URL_SAFE_NO_PAD.encode(s)}),
    ));
    let app = router(validator(
        Algorithm::HS256,
        KeySource::jwks(set.to_string()),
    ));
    let signed_by = |i: usize| {
        mint(
            &TestKey::hmac(secrets[i].clone()),
            "HS256",
            json!({}),
            &claims(ISS, AUD, 300),
        )
    };
    assert_eq!(outcome(&app, &signed_by(3)).await.0, 200);
    assert_eq!(
        outcome(&app, &signed_by(4)).await,
        (401, json!("token signature is invalid"))
    );
    // With its kid, any key of the set.
    let with_kid = mint(
        &TestKey::hmac(secrets[5].clone()),
        "HS256",
        json!({"kid": "k5"}),
        &claims(ISS, AUD, 300),
    );
    assert_eq!(outcome(&app, &with_kid).await.0, 200);
}

#[tokio::test]
async fn registered_claims_have_their_types() {
    const SECRET: &str = "thesecret-thesecret-thesecret-32";
    let app = router(validator(Algorithm::HS256, KeySource::secret(SECRET)));
    let t = now();
    for (claim, value, description) in [
        ("exp", json!(-1), "token exp is not a number"),
        ("exp", json!(1e300), "token exp is not a number"),
        (
            "exp",
            json!(253_402_300_800u64),
            "token exp is not a number",
        ),
        ("nbf", json!(-10), "token nbf is not a number"),
        ("iat", json!(1e15), "token iat is not a number"),
        ("sub", json!(42), "token sub is not a string"),
        ("jti", json!({"a": 1}), "token jti is not a string"),
    ] {
        let mut c = json!({"iss": ISS, "aud": AUD, "exp": t + 300});
        c[claim] = value;
        let token = mint(&TestKey::hmac(SECRET), "HS256", json!({}), &c);
        assert_eq!(
            outcome(&app, &token).await,
            (401, json!(description)),
            "{claim}"
        );
    }
}

#[test]
fn secrets_shaped_like_public_keys_and_unbounded_leeway_are_refused() {
    let rsa = TestKey::rsa().public_pem();
    let body: String = rsa.lines().filter(|l| !l.starts_with("-----")).collect();
    let jwk = TestKey::rsa().jwk("k", "RS256").to_string();
    for secret in [format!("\u{feff}{rsa}"), body, jwk] {
        let err = Registry::builder()
            .validator(validator(Algorithm::HS256, KeySource::secret(secret)))
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::WeakSecret, "{err}");
        assert!(
            err.message().contains("a public key is not an HMAC secret"),
            "{err}"
        );
    }
    let err = Registry::builder()
        .validator(
            validator(
                Algorithm::HS256,
                KeySource::secret("thesecret-thesecret-thesecret-32"),
            )
            .leeway(Duration::from_secs(3600)),
        )
        .build()
        .unwrap_err();
    assert_eq!(err.field(), Some("leeway_secs"));
}
