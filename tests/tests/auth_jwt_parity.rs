//! Every test of OCA auth_jwt's `tests/test_auth_jwt.py` that applies, named after it, plus
//! the cases its code implies (reference §B.1 and §B.3). Requests go through an axum router.
//!
//! Differences from auth_jwt, on purpose: the HMAC secret is 32 bytes (auth_jwt's tests use
//! "thesecret", too short for HS256), the scheme is case-insensitive, and failures carry
//! RFC 6750 challenges.

use jwtgate::{
    Algorithm, ErrorKind, KeySource, Partner, Registry, User, Validator,
    directory::InMemoryDirectory,
};
use jwtgate_test::{TestKey, claims, mint};
use jwtgate_tests::{app, get_bearer, get_with, send};
use serde_json::{Value, json};

const SECRET: &str = "thesecret-thesecret-thesecret-32";
const ISSUER: &str = "http://the.issuer";

fn validator(name: &str) -> Validator {
    Validator::new(name)
        .issuer(ISSUER)
        .audience("me")
        .algorithm(Algorithm::HS256)
        .key(KeySource::secret(SECRET))
        .user(User::fixed(1))
        .partner(Partner::by_email())
}

fn token_with(key: &str, aud: &str, iss: &str, exp_delta: i64, extra: Value) -> String {
    let mut c = claims(iss, aud, exp_delta);
    if let (Some(c), Value::Object(extra)) = (c.as_object_mut(), extra) {
        c.extend(extra);
    }
    mint(
        &TestKey::hmac(key.as_bytes().to_vec()),
        "HS256",
        json!({}),
        &c,
    )
}

fn token() -> String {
    token_with(SECRET, "me", ISSUER, 100, json!({}))
}

fn registry(validators: Vec<Validator>) -> Registry {
    let directory = InMemoryDirectory::new()
        .with_partner(17, "mark@example.com")
        .with_partner(21, "twins@example.com")
        .with_partner(22, "twins@example.com");
    validators
        .into_iter()
        .fold(Registry::builder().directory(directory), |b, v| {
            b.validator(v)
        })
        .build()
        .expect("valid registry")
}

fn one(v: Validator) -> axum::Router {
    let name = v.name().to_owned();
    let r = registry(vec![v]);
    app(
        &r,
        &[
            ("/jwt", &format!("jwt_{name}")),
            ("/public", &format!("public_or_jwt_{name}")),
        ],
    )
}

async fn assert_invalid(app: &axum::Router, token: &str, description: &str) {
    let r = get_bearer(app, "/jwt", Some(token)).await;
    assert_eq!(r.status, 401, "{description}: {:?}", r.body);
    assert_eq!(r.body["error"], "invalid_token");
    assert_eq!(r.body["error_description"], description);
    assert_eq!(
        r.header("www-authenticate"),
        format!(
            "Bearer realm=\"jwtgate\", error=\"invalid_token\", error_description=\"{description}\""
        )
    );
}

#[tokio::test]
async fn test_missing_authorization_header() {
    let app = one(validator("validator"));
    let r = get_bearer(&app, "/jwt", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), "Bearer realm=\"jwtgate\"");
    assert_eq!(r.body["error"], "missing_token");
}

#[tokio::test]
async fn test_malformed_authorization_header() {
    let app = one(validator("validator"));
    for value in [
        "a",
        "Bearer",
        "Bearer ",
        "Bearer x y",
        "Bearer token ",
        "Basic dXNlcjpwYXNz",
        "",
    ] {
        let r = send(&app, get_with("/jwt", &[("authorization", value)])).await;
        assert_eq!(r.status, 401, "{value:?}");
        assert_eq!(r.body["error"], "invalid_request", "{value:?}");
        assert!(
            r.header("www-authenticate")
                .contains("error=\"invalid_request\""),
            "{value:?}"
        );
    }
    // auth_jwt refuses `bearer token` as malformed; RFC 7235 makes the scheme case-insensitive,
    // so here it is a bearer token that is not a JWT.
    let r = send(&app, get_with("/jwt", &[("authorization", "bearer token")])).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"], "invalid_token");
    let r = send(
        &app,
        get_with("/jwt", &[("authorization", &format!("bEaReR {}", token()))]),
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn test_auth_method_valid_token() {
    let app = one(validator("validator"));
    let r = get_bearer(&app, "/jwt", Some(&token())).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["validator"], "validator");
    assert_eq!(r.body["uid"], 1);
    assert_eq!(r.body["payload"]["aud"], "me");
    assert!(r.header("set-cookie").is_empty());
}

#[tokio::test]
async fn test_user_id_strategy() {
    let app = one(validator("validator5").user(User::fixed(5)));
    let r = get_bearer(&app, "/jwt", Some(&token())).await;
    assert_eq!(r.body["uid"], 5);
}

async fn two_validators(v2: Validator, chained: bool) -> (u16, Value, u16) {
    let v2 = if chained { v2.next("validator3") } else { v2 };
    let r = registry(vec![v2, validator("validator3")]);
    let app = app(&r, &[("/v2", "jwt_validator2"), ("/v3", "jwt_validator3")]);
    let r2 = get_bearer(&app, "/v2", Some(&token())).await;
    let r3 = get_bearer(&app, "/v3", Some(&token())).await;
    (r2.status.as_u16(), r2.body, r3.status.as_u16())
}

#[tokio::test]
async fn test_auth_method_valid_token_two_validators_one_bad_issuer() {
    let (s2, body, s3) =
        two_validators(validator("validator2").issuer("http://other.issuer"), false).await;
    assert_eq!((s2, s3), (401, 200));
    assert_eq!(body["error_description"], "token issuer not accepted");
}

#[tokio::test]
async fn test_auth_method_valid_token_two_validators_one_bad_issuer_chained() {
    let (s2, body, _) =
        two_validators(validator("validator2").issuer("http://other.issuer"), true).await;
    assert_eq!(s2, 200);
    assert_eq!(body["validator"], "validator3");
}

#[tokio::test]
async fn test_auth_method_valid_token_two_validators_one_bad_audience() {
    let v2 = Validator::new("validator2")
        .issuer(ISSUER)
        .audience("bad")
        .algorithm(Algorithm::HS256)
        .key(KeySource::secret(SECRET))
        .user(User::fixed(1));
    let (s2, body, s3) = two_validators(v2, false).await;
    assert_eq!((s2, s3), (401, 200));
    assert_eq!(body["error_description"], "token audience not accepted");
}

#[tokio::test]
async fn test_auth_method_valid_token_two_validators_one_bad_audience_chained() {
    let v2 = Validator::new("validator2")
        .issuer(ISSUER)
        .audience("bad")
        .algorithm(Algorithm::HS256)
        .key(KeySource::secret(SECRET))
        .user(User::fixed(2));
    let (s2, body, _) = two_validators(v2, true).await;
    assert_eq!(s2, 200);
    assert_eq!(body["validator"], "validator3");
    // The validator that accepted the token decides the user.
    assert_eq!(body["uid"], 1);
}

#[tokio::test]
async fn test_auth_method_invalid_token() {
    let app = one(validator("validator4"));
    let bad = token_with(SECRET, "bad", ISSUER, 100, json!({}));
    assert_invalid(&app, &bad, "token audience not accepted").await;
}

#[tokio::test]
async fn test_auth_method_invalid_token_on_chain() {
    let bad_key = "another-secret-another-secret-32";
    let v = |name: &str, iss: &str, aud: &str, key: &str, next: Option<&str>| {
        let v = Validator::new(name)
            .issuer(iss)
            .audience(aud)
            .algorithm(Algorithm::HS256)
            .key(KeySource::secret(key))
            .user(User::fixed(1));
        match next {
            Some(n) => v.next(n),
            None => v,
        }
    };
    let r = registry(vec![
        v("validator1", "bad", "me", SECRET, Some("validator2")),
        v(
            "validator2",
            ISSUER,
            "bad audience",
            SECRET,
            Some("validator3"),
        ),
        v("validator3", ISSUER, "me", bad_key, Some("validator4")),
        v(
            "validator4",
            "bad",
            "bad audience",
            SECRET,
            Some("validator5"),
        ),
        v("validator5", "bad", "me", bad_key, Some("validator6")),
        v(
            "validator6",
            ISSUER,
            "bad audience",
            bad_key,
            Some("validator7"),
        ),
        v("validator7", "bad", "bad audience", bad_key, None),
    ]);
    let app = app(&r, &[("/jwt", "jwt_validator1")]);
    let res = get_bearer(&app, "/jwt", Some(&token())).await;
    assert_eq!(res.status, 401);
    assert_eq!(res.body["error"], "invalid_token");
    assert_eq!(
        res.body["error_description"],
        "token refused by every validator of the chain"
    );
    // Unlike auth_jwt's composite error, nothing names a validator.
    let everything = format!("{:?}{}", res.headers, res.body);
    assert!(
        !everything.contains("validator1") && !everything.contains("validator7"),
        "{everything}"
    );
}

#[test]
fn test_invalid_validation_chain() {
    let err = Registry::builder()
        .validator(validator("validator").next("validator2"))
        .validator(validator("validator2").next("validator3"))
        .validator(validator("validator3").next("validator"))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::ClosedChain);
    // auth_jwt's exact message; the validator that closes the loop is context around it.
    assert_eq!(err.validator(), Some("validator3"));
    assert_eq!(
        err.message(),
        "Validators mustn't make a closed chain: validator3 -> validator -> validator2 -> validator3."
    );
}

#[test]
fn test_invalid_validation_auto_chain() {
    let err = Registry::builder()
        .validator(validator("validator").next("validator"))
        .build()
        .unwrap_err();
    assert_eq!(
        err.message(),
        "Validators mustn't make a closed chain: validator -> validator."
    );
}

#[tokio::test]
async fn test_partner_id_strategy_email_found() {
    let app = one(validator("validator6"));
    let t = token_with(
        SECRET,
        "me",
        ISSUER,
        100,
        json!({"email": "mark@example.com"}),
    );
    let r = get_bearer(&app, "/jwt", Some(&t)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["partner_id"], 17);
}

#[tokio::test]
async fn test_partner_id_strategy_email_not_found() {
    let app = one(validator("validator6"));
    for email in [
        "notanemail@example.com",
        "twins@example.com",
        "MARK@example.com",
    ] {
        let t = token_with(SECRET, "me", ISSUER, 100, json!({"email": email}));
        let r = get_bearer(&app, "/jwt", Some(&t)).await;
        assert_eq!(r.status, 200, "{email}");
        assert_eq!(r.body["partner_id"], Value::Null, "{email}");
    }
}

#[tokio::test]
async fn test_partner_id_strategy_email_not_found_partner_required() {
    let app = one(validator("validator6").partner(Partner::by_email().required()));
    let t = token_with(
        SECRET,
        "me",
        ISSUER,
        100,
        json!({"email": "notanemail@example.com"}),
    );
    assert_invalid(&app, &t, "no partner matches the token").await;
    let t = token_with(
        SECRET,
        "me",
        ISSUER,
        100,
        json!({"email": "mark@example.com"}),
    );
    assert_eq!(get_bearer(&app, "/jwt", Some(&t)).await.status, 200);
}

#[test]
fn test_get_validator() {
    let none = Registry::builder().build().unwrap();
    assert_eq!(
        none.layer("jwt").unwrap_err().kind(),
        &ErrorKind::AmbiguousValidator
    );
    assert_eq!(
        none.layer("jwt_notavalidator").unwrap_err().kind(),
        &ErrorKind::UnknownValidator
    );
    let one = registry(vec![validator("validator1")]);
    assert_eq!(
        one.layer("jwt_notavalidator").unwrap_err().kind(),
        &ErrorKind::UnknownValidator
    );
    assert!(one.layer("jwt").is_ok());
    assert!(one.layer("jwt_validator1").is_ok());
    let two = registry(vec![validator("validator1"), validator("validator2")]);
    assert_eq!(
        two.layer("jwt").unwrap_err().kind(),
        &ErrorKind::AmbiguousValidator
    );
    assert!(two.layer("jwt_validator2").is_ok());
}

#[tokio::test]
async fn test_bad_tokens() {
    let app = one(validator("validator"));
    let cases = [
        (
            token_with(
                "badsecret-badsecret-badsecret-32",
                "me",
                ISSUER,
                100,
                json!({}),
            ),
            "token signature is invalid",
        ),
        (
            token_with(SECRET, "badaudience", ISSUER, 100, json!({})),
            "token audience not accepted",
        ),
        (
            token_with(SECRET, "me", "badissuer", 100, json!({})),
            "token issuer not accepted",
        ),
        (
            token_with(SECRET, "me", ISSUER, -100, json!({})),
            "token expired",
        ),
    ];
    for (t, why) in cases {
        assert_invalid(&app, &t, why).await;
    }
}

#[tokio::test]
async fn test_multiple_aud() {
    let app = one(validator("validator").audience("a1").audience("a2"));
    for aud in ["a1", "a2"] {
        let t = token_with(SECRET, aud, ISSUER, 100, json!({}));
        assert_eq!(
            get_bearer(&app, "/jwt", Some(&t)).await.status,
            200,
            "{aud}"
        );
    }
    let t = token_with(SECRET, "a3", ISSUER, 100, json!({}));
    assert_invalid(&app, &t, "token audience not accepted").await;
}

#[tokio::test]
async fn test_nbf() {
    let app = one(validator("validator"));
    let past = token_with(
        SECRET,
        "me",
        ISSUER,
        100,
        json!({"nbf": jwtgate_test::now() - 60}),
    );
    assert_eq!(get_bearer(&app, "/jwt", Some(&past)).await.status, 200);
    let future = token_with(
        SECRET,
        "me",
        ISSUER,
        100,
        json!({"nbf": jwtgate_test::now() + 60}),
    );
    assert_invalid(&app, &future, "token not yet valid").await;
}

/// auth_jwt registers `_auth_method_jwt_<name>` and `_auth_method_public_or_jwt_<name>` when a
/// validator is created; here both modes resolve exactly when the registry holds the validator.
#[test]
fn test_auth_method_registration_on_create() {
    let before = registry(vec![]);
    assert_eq!(
        before.layer("jwt_validator1").unwrap_err().kind(),
        &ErrorKind::UnknownValidator
    );
    assert_eq!(
        before.layer("public_or_jwt_validator1").unwrap_err().kind(),
        &ErrorKind::UnknownValidator
    );
    let created = registry(vec![validator("validator1")]);
    assert!(created.layer("jwt_validator1").is_ok());
    assert!(created.layer("public_or_jwt_validator1").is_ok());
}

#[test]
fn test_auth_method_unregistration_on_unlink() {
    let with = registry(vec![validator("validator1"), validator("validator2")]);
    assert!(with.layer("jwt_validator1").is_ok());
    let without = registry(vec![validator("validator2")]);
    assert!(without.layer("jwt_validator1").is_err());
    assert!(without.layer("public_or_jwt_validator1").is_err());
}

#[test]
fn test_auth_method_registration_on_rename() {
    let renamed = registry(vec![validator("validator2")]);
    assert!(renamed.layer("jwt_validator1").is_err());
    assert!(renamed.layer("public_or_jwt_validator1").is_err());
    assert!(renamed.layer("jwt_validator2").is_ok());
    assert!(renamed.layer("public_or_jwt_validator2").is_ok());
}

#[test]
fn test_name_check() {
    let err = Registry::builder()
        .validator(validator("not an identifier"))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidName);
    assert!(
        registry(vec![validator("validator_1")])
            .layer("jwt_validator_1")
            .is_ok()
    );
    assert!(
        Registry::builder()
            .validator(validator("1abc"))
            .build()
            .is_err()
    );
}

#[tokio::test]
async fn test_public_or_jwt_valid_token() {
    let app = one(validator("validator"));
    let r = get_bearer(&app, "/public", Some(&token())).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["payload"]["aud"], "me");
    assert_eq!(r.body["uid"], 1);
}

#[tokio::test]
async fn test_public_or_jwt_no_token() {
    let app = one(validator("validator"));
    let r = get_bearer(&app, "/public", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"validator": null, "uid": null, "partner_id": null, "payload": null})
    );
}

// ---- §B.3: cases implied by auth_jwt's code ----

#[tokio::test]
async fn public_or_jwt_refuses_empty_malformed_invalid_and_expired_credentials() {
    let app = one(validator("validator"));
    let expired = token_with(SECRET, "me", ISSUER, -1, json!({}));
    for (value, error) in [
        ("", "invalid_request"),
        ("Bearer", "invalid_request"),
        ("Bearer x y", "invalid_request"),
        ("Bearer not-a-jwt", "invalid_token"),
        (&format!("Bearer {expired}") as &str, "invalid_token"),
    ] {
        let r = send(&app, get_with("/public", &[("authorization", value)])).await;
        assert_eq!(r.status, 401, "{value:?}");
        assert_eq!(r.body["error"], error, "{value:?}");
    }
}

#[tokio::test]
async fn required_claims_are_required() {
    let app = one(validator("validator"));
    let key = TestKey::hmac(SECRET);
    let now = jwtgate_test::now();
    for (c, why) in [
        (
            json!({"iss": ISSUER, "aud": "me"}),
            "token has no exp claim",
        ),
        (
            json!({"iss": ISSUER, "exp": now + 100}),
            "token has no aud claim",
        ),
        (
            json!({"aud": "me", "exp": now + 100}),
            "token has no iss claim",
        ),
        (
            json!({"iss": ISSUER, "aud": "me", "exp": now}),
            "token expired",
        ),
        (
            json!({"iss": ISSUER, "aud": "me", "exp": now + 100, "iat": now + 60}),
            "token issued in the future",
        ),
        (
            json!({"iss": ISSUER, "aud": ["x", 1], "exp": now + 100}),
            "token aud is not a string or an array of strings",
        ),
    ] {
        assert_invalid(&app, &mint(&key, "HS256", json!({}), &c), why).await;
    }
    let ok = json!({"iss": ISSUER, "aud": ["x", "me"], "exp": now + 100});
    assert_eq!(
        get_bearer(&app, "/jwt", Some(&mint(&key, "HS256", json!({}), &ok)))
            .await
            .status,
        200
    );
    let none = json!({"iss": ISSUER, "aud": ["x"], "exp": now + 100});
    assert_invalid(
        &app,
        &mint(&key, "HS256", json!({}), &none),
        "token audience not accepted",
    )
    .await;
}

#[tokio::test]
async fn only_the_pinned_algorithm_passes() {
    let app = one(validator("validator"));
    let c = claims(ISSUER, "me", 100);
    let hs384 = mint(&TestKey::hmac(SECRET.repeat(2)), "HS384", json!({}), &c);
    assert_invalid(&app, &hs384, "token algorithm not accepted").await;
    let rs256 = mint(&TestKey::rsa(), "RS256", json!({}), &c);
    assert_invalid(&app, &rs256, "token algorithm not accepted").await;
    let header = jwtgate_test::b64(r#"{"alg":"none","typ":"JWT"}"#);
    let body = jwtgate_test::b64(c.to_string());
    assert_invalid(
        &app,
        &format!("{header}.{body}."),
        "token algorithm not accepted",
    )
    .await;
}

#[tokio::test]
async fn a_single_failing_validator_gives_its_own_reason() {
    let r = registry(vec![
        validator("v1").issuer("http://other").next("v2"),
        validator("v2").key(KeySource::secret("another-secret-another-secret-32")),
    ]);
    let composite = app(&r, &[("/jwt", "jwt_v1")]);
    // v2 fails for another reason: composite.
    let res = get_bearer(&composite, "/jwt", Some(&token())).await;
    assert_eq!(
        res.body["error_description"],
        "token refused by every validator of the chain"
    );
    // Every validator of the chain refuses for the same reason: that reason.
    let r = registry(vec![
        validator("v1").issuer("http://other").next("v2"),
        validator("v2").issuer("x"),
    ]);
    let same = app(&r, &[("/jwt", "jwt_v1")]);
    assert_invalid(&same, &token(), "token issuer not accepted").await;
    // A lone validator: its reason.
    let app = one(validator("v1").issuer("http://other"));
    assert_invalid(&app, &token(), "token issuer not accepted").await;
}

#[tokio::test]
async fn the_accepting_validator_decides_user_partner_and_cookie() {
    let v1 = validator("v1")
        .issuer("http://other")
        .user(User::fixed(10))
        .next("v2");
    let v2 = validator("v2")
        .user(User::fixed(20))
        .partner(Partner::by_email())
        .cookie(jwtgate::CookieMode::new("v2_auth").secret(SECRET));
    let r = registry(vec![v1, v2]);
    let app = app(&r, &[("/jwt", "jwt_v1")]);
    let t = token_with(
        SECRET,
        "me",
        ISSUER,
        100,
        json!({"email": "mark@example.com"}),
    );
    let res = get_bearer(&app, "/jwt", Some(&t)).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["validator"], "v2");
    assert_eq!(res.body["uid"], 20);
    assert_eq!(res.body["partner_id"], 17);
    assert!(
        res.cookie("__Host-v2_auth").is_some(),
        "{:?}",
        res.set_cookies()
    );
}
