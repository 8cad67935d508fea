//! An OIDC issuer contradicted by its discovery document is a configuration error: a 503 that
//! says why, `misconfigured` in the cache state, and an error log line with both values on
//! every attempt. Alone in its binary: it asserts on log lines, and tracing caches callsite
//! interest for the whole process, so tests running beside it without a subscriber could hide
//! them.

use std::time::Duration;

use jwtgate::{Algorithm, KeySource, Registry, User, Validator, remote::RemoteKeyOptions};
use jwtgate_test::{Provider, TestKey, claims, jwks, mint};
use jwtgate_tests::{Logs, app, get_bearer};
use serde_json::json;

const AUD: &str = "api";

#[tokio::test]
async fn an_issuer_its_discovery_contradicts_is_a_configuration_error() {
    let logs = Logs::default();
    let _guard = logs.capture(tracing::Level::INFO);

    let key = TestKey::rsa();
    let provider = Provider::start(jwks([key.jwk("k1", "RS256")])).await;
    provider.set_discovery_issuer("https://evil.example");
    let registry = Registry::builder()
        .validator(
            Validator::new("v")
                .issuer(provider.issuer())
                .audience(AUD)
                .algorithm(Algorithm::RS256)
                .key(KeySource::oidc_issuer(provider.issuer()))
                .remote_options(RemoteKeyOptions::default().backoff(Duration::ZERO, Duration::ZERO))
                .user(User::fixed(1)),
        )
        .build()
        .unwrap();
    let app = app(&registry, &[("/jwt", "jwt_v")]);
    let token = mint(
        &key,
        "RS256",
        json!({"kid": "k1"}),
        &claims(&provider.issuer(), AUD, 300),
    );
    for _ in 0..2 {
        let r = get_bearer(&app, "/jwt", Some(&token)).await;
        assert_eq!(r.status, 503);
        assert_eq!(
            r.body["error_description"],
            "signing keys are unavailable: the issuer's discovery document names another issuer"
        );
        assert!(!r.header("retry-after").is_empty());
    }
    let state = registry.key_caches().remove(0);
    assert!(state.misconfigured);
    let error = state.last_error.unwrap();
    assert!(
        error.contains(&provider.issuer()) && error.contains("https://evil.example"),
        "{error}"
    );
    // Logged at error level, with both values, on every attempt.
    let text = logs.text();
    let lines: Vec<_> = text
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("key source misconfigured"))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("https://evil.example") && l.contains(&provider.issuer()))
    );
}
