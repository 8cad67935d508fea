//! This test crate enables jsonwebtoken's `rust_crypto` next to jwtgate's `aws_lc_rs`, as a
//! peer crate in a real app might. jsonwebtoken's own `decode` then panics (it cannot choose a
//! process default); jwtgate calls the aws-lc-rs provider by name and keeps working.

use jwtgate::{Algorithm, KeySource, Registry, User, Validator};
use jwtgate_test::{TestKey, claims, mint};
use jwtgate_tests::{app, get_bearer};
use serde_json::{Value, json};

#[tokio::test]
async fn jwtgate_works_where_a_bare_decode_panics() {
    let rsa = TestKey::rsa();
    let registry = Registry::builder()
        .validator(
            Validator::new("rs")
                .issuer("iss")
                .audience("api")
                .algorithm(Algorithm::RS256)
                .key(KeySource::public_key_pem(rsa.public_pem()))
                .user(User::fixed(1)),
        )
        .build()
        .unwrap();
    let app = app(&registry, &[("/jwt", "jwt_rs")]);
    let token = mint(&rsa, "RS256", json!({}), &claims("iss", "api", 100));
    assert_eq!(get_bearer(&app, "/jwt", Some(&token)).await.status, 200);

    let key = jsonwebtoken::DecodingKey::from_rsa_pem(rsa.public_pem().as_bytes()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["api"]);
    let bare =
        std::panic::catch_unwind(|| jsonwebtoken::decode::<Value>(&token, &key, &validation));
    assert!(
        bare.is_err(),
        "with both backends enabled, jsonwebtoken::decode panics"
    );

    // jwtgate is unaffected, before and after.
    assert_eq!(get_bearer(&app, "/jwt", Some(&token)).await.status, 200);
    let forged = mint(
        &TestKey::rsa_alt(),
        "RS256",
        json!({}),
        &claims("iss", "api", 100),
    );
    assert_eq!(get_bearer(&app, "/jwt", Some(&forged)).await.status, 401);
}
