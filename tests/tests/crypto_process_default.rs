//! An app may install its own jsonwebtoken process-wide provider. jwtgate must not switch to
//! it: here the installed provider counts its uses, and jwtgate never calls it.

use std::sync::atomic::{AtomicUsize, Ordering};

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, aws_lc};
use jsonwebtoken::{DecodingKey, EncodingKey};
use jwtgate::{Algorithm, CookieMode, KeySource, Registry, User, Validator};
use jwtgate_test::{TestKey, claims, mint};
use jwtgate_tests::{app, get_bearer, get_with, send};
use serde_json::json;

static USES: AtomicUsize = AtomicUsize::new(0);

// The signature is jsonwebtoken's `CryptoProvider` function pointer type.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn counting_verifier(
    alg: &jsonwebtoken::Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    USES.fetch_add(1, Ordering::SeqCst);
    (aws_lc::DEFAULT_PROVIDER.verifier_factory)(alg, key)
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn counting_signer(
    alg: &jsonwebtoken::Algorithm,
    key: &EncodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    USES.fetch_add(1, Ordering::SeqCst);
    (aws_lc::DEFAULT_PROVIDER.signer_factory)(alg, key)
}

static COUNTING: CryptoProvider = CryptoProvider {
    signer_factory: counting_signer,
    verifier_factory: counting_verifier,
    key_utils: jsonwebtoken::crypto::KeyUtils::new_unimplemented(),
};

#[tokio::test]
async fn jwtgate_never_uses_the_process_default() {
    COUNTING
        .install_default()
        .expect("first install in this process");
    let secret = "thesecret-thesecret-thesecret-32";
    let registry = Registry::builder()
        .validator(
            Validator::new("hs")
                .issuer("iss")
                .audience("api")
                .algorithm(Algorithm::HS256)
                .key(KeySource::secret(secret))
                .user(User::fixed(1))
                .cookie(CookieMode::new("c").secret(secret)),
        )
        .build()
        .unwrap();
    let app = app(&registry, &[("/jwt", "jwt_hs")]);
    let token = mint(
        &TestKey::hmac(secret),
        "HS256",
        json!({}),
        &claims("iss", "api", 100),
    );
    let r = get_bearer(&app, "/jwt", Some(&token)).await;
    assert_eq!(r.status, 200);
    let cookie = r.cookie("__Host-c").expect("cookie signed");
    let r = send(
        &app,
        get_with("/jwt", &[("cookie", &format!("__Host-c={cookie}"))]),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        USES.load(Ordering::SeqCst),
        0,
        "jwtgate called the process-wide provider"
    );

    // The counter works: a bare jsonwebtoken call goes through it.
    let _ = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({}),
        &EncodingKey::from_secret(b"x"),
    );
    assert_eq!(USES.load(Ordering::SeqCst), 1);
}
