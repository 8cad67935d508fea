//! Observability: one span per request with its outcome, an event for every refusal, and no
//! token, cookie or secret in any of it. Alone in its binary: tracing caches per-callsite
//! interest for the whole process, so tests without a subscriber running beside it could hide
//! its events.

use axum::Router;
use axum::routing::get;
use jwtgate::{Algorithm, KeySource, Registry, User, Validator};
use jwtgate_test::{TestKey, claims, mint};
use jwtgate_tests::{get_with, send, whoami};
use serde_json::json;

const SECRET: &str = "thesecret-thesecret-thesecret-32";
const ISS: &str = "https://issuer.example";

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

#[tokio::test]
async fn one_span_per_request_an_event_per_refusal_and_no_secrets() {
    let logs = jwtgate_tests::Logs::default();
    let _guard = logs.capture_spans(tracing::Level::DEBUG);
    let r = Registry::builder()
        .validator(
            Validator::new("v")
                .issuer(ISS)
                .audience("api")
                .algorithm(Algorithm::HS256)
                .key(KeySource::secret(SECRET))
                .user(User::claim("uid"))
                .cookie(
                    jwtgate::CookieMode::new("v_auth").secret("cookie-secret-cookie-secret-0032"),
                ),
        )
        .build()
        .unwrap();
    let app = Router::new()
        .route("/x", get(whoami))
        .route_layer(r.layer("jwt_v").unwrap().require_scopes(["s"]));
    let mut c = claims(ISS, "api", 300);
    c["uid"] = json!(5);
    c["scope"] = json!("s");
    let good = mint(&TestKey::hmac(SECRET), "HS256", json!({}), &c);
    let res = send(&app, get_with("/x", &[("authorization", &bearer(&good))])).await;
    assert_eq!(res.status, 200);
    let cookie = res.cookie("__Host-v_auth").unwrap();
    // Silent before: a token without the user claim.
    let mut c = claims(ISS, "api", 300);
    c["scope"] = json!("s");
    let no_user = mint(&TestKey::hmac(SECRET), "HS256", json!({}), &c);
    assert_eq!(
        send(
            &app,
            get_with("/x", &[("authorization", &bearer(&no_user))])
        )
        .await
        .status,
        401
    );
    assert_eq!(send(&app, get_with("/x", &[])).await.status, 401);
    let text = logs.text();
    assert!(
        text.contains("jwtgate{mode=jwt_v validator=v outcome=accepted"),
        "{text}"
    );
    assert!(text.contains("outcome=invalid_token"), "{text}");
    assert!(text.contains("outcome=missing_credentials"), "{text}");
    assert!(text.contains("token refused: no credentials"), "{text}");
    assert!(text.contains("token has no usable user claim"), "{text}");
    for secret in [
        &good[..],
        &no_user,
        &cookie,
        SECRET,
        "cookie-secret-cookie-secret-0032",
    ] {
        assert!(!text.contains(secret), "a secret reached the log");
    }
}
