//! Remote keys against a misbehaving provider on 127.0.0.1: rotation, kid storms, slow and
//! failing providers, cold start, header key injection, OIDC discovery.

use std::time::Duration;

use axum::Router;
use futures_util::future::join_all;
use jwtgate::{
    Algorithm, ErrorKind, KeySource, Registry, User, Validator, remote::RemoteKeyOptions,
};
use jwtgate_test::{Behavior, Provider, TestKey, b64, claims, jwks, mint};
use jwtgate_tests::{Logs, app, get_bearer};
use serde_json::{Value, json};

const AUD: &str = "api";

fn validator(provider: &Provider, options: RemoteKeyOptions) -> Validator {
    Validator::new("idp")
        .issuer(provider.issuer())
        .audience(AUD)
        .algorithm(Algorithm::RS256)
        .key(KeySource::jwks_url(provider.jwks_url()))
        .remote_options(options)
        .user(User::fixed(1))
}

fn setup(provider: &Provider, options: RemoteKeyOptions) -> (Registry, Router) {
    let registry = Registry::builder()
        .validator(validator(provider, options))
        .build()
        .unwrap();
    let app = app(&registry, &[("/jwt", "jwt_idp")]);
    (registry, app)
}

fn token(provider: &Provider, key: &TestKey, kid: Option<&str>) -> String {
    let header = kid.map_or(json!({}), |k| json!({ "kid": k }));
    mint(key, "RS256", header, &claims(&provider.issuer(), AUD, 300))
}

async fn status(app: &Router, t: &str) -> (u16, Value) {
    let r = get_bearer(app, "/jwt", Some(t)).await;
    (r.status.as_u16(), r.body)
}

fn fast() -> RemoteKeyOptions {
    RemoteKeyOptions::default()
        .timeout(Duration::from_millis(800))
        .connect_timeout(Duration::from_millis(300))
        .backoff(Duration::from_millis(20), Duration::from_millis(50))
}

#[tokio::test]
async fn rotation_new_kid_after_one_refetch_old_kid_gone_after_refresh() {
    let (k1, k2) = (TestKey::rsa(), TestKey::rsa_alt());
    let provider = Provider::start(jwks([k1.jwk("k1", "RS256")])).await;
    let options = fast()
        .min_refetch_interval(Duration::from_millis(50))
        .ttl(Duration::from_millis(300))
        .ttl_bounds(Duration::ZERO, Duration::from_secs(60));
    let (registry, app) = setup(&provider, options);

    assert_eq!(
        status(&app, &token(&provider, &k1, Some("k1"))).await.0,
        200
    );
    assert_eq!(provider.jwks_hits(), 1);
    // The provider rotates in k2.
    provider.set_jwks(jwks([k1.jwk("k1", "RS256"), k2.jwk("k2", "RS256")]));
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(
        status(&app, &token(&provider, &k2, Some("k2"))).await.0,
        200
    );
    assert_eq!(
        provider.jwks_hits(),
        2,
        "exactly one refetch for the new kid"
    );
    assert_eq!(
        status(&app, &token(&provider, &k2, Some("k2"))).await.0,
        200
    );
    assert_eq!(provider.jwks_hits(), 2, "the new kid is cached");

    // The provider drops k1; until the next refresh k1 tokens still pass.
    provider.set_jwks(jwks([k2.jwk("k2", "RS256")]));
    assert_eq!(
        status(&app, &token(&provider, &k1, Some("k1"))).await.0,
        200
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    // Past the TTL: this request triggers a background refresh.
    let _ = status(&app, &token(&provider, &k2, Some("k2"))).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, body) = status(&app, &token(&provider, &k1, Some("k1"))).await;
    assert_eq!(code, 401);
    assert_eq!(body["error_description"], "token key id is unknown");
    assert_eq!(registry.key_caches()[0].key_ids, ["k2"]);
}

/// The verified-token cache serves a token only while the key that verified it is in the set:
/// the very same token string, accepted (and remembered) before the rotation, is refused once
/// a refresh drops its key.
#[tokio::test]
async fn a_remembered_token_goes_when_its_key_leaves_the_set() {
    let (k1, k2) = (TestKey::rsa(), TestKey::rsa_alt());
    let provider = Provider::start(jwks([k1.jwk("k1", "RS256"), k2.jwk("k2", "RS256")])).await;
    let options = fast()
        .min_refetch_interval(Duration::from_millis(50))
        .ttl(Duration::from_millis(300))
        .ttl_bounds(Duration::ZERO, Duration::from_secs(60));
    let (_registry, app) = setup(&provider, options);
    let old = token(&provider, &k1, Some("k1"));
    for _ in 0..3 {
        assert_eq!(status(&app, &old).await.0, 200);
    }
    provider.set_jwks(jwks([k2.jwk("k2", "RS256")]));
    tokio::time::sleep(Duration::from_millis(350)).await;
    let new = token(&provider, &k2, Some("k2"));
    // Past the TTL: this request starts a background refresh.
    assert_eq!(status(&app, &new).await.0, 200);
    let mut refused = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (code, body) = status(&app, &old).await;
        if code == 401 {
            refused = Some(body);
            break;
        }
    }
    let body = refused.expect("the token of the removed key is refused after the refresh");
    assert_eq!(body["error_description"], "token key id is unknown");
    assert_eq!(status(&app, &new).await.0, 200);
}

#[tokio::test]
async fn kid_storm_causes_at_most_one_fetch_per_interval() {
    let key = TestKey::rsa();
    let provider = Provider::start(jwks([key.jwk("k1", "RS256")])).await;
    let interval = Duration::from_secs(3);
    let (_registry, app) = setup(&provider, fast().min_refetch_interval(interval));
    let random_kid_tokens = |wave: usize| -> Vec<String> {
        (0..1000)
            .map(|i| token(&provider, &key, Some(&format!("kid-{wave}-{i}"))))
            .collect()
    };
    // Signing 3,000 tokens takes a while: do it before the clock matters.
    let (wave1, wave2, wave3) = (
        random_kid_tokens(1),
        random_kid_tokens(2),
        random_kid_tokens(3),
    );
    // Cold cache, 1,000 concurrent random kids: one shared fetch.
    let tokens = wave1;
    let results = join_all(tokens.iter().map(|t| status(&app, t))).await;
    assert!(
        results
            .iter()
            .all(|(c, b)| *c == 401 && b["error_description"] == "token key id is unknown")
    );
    assert_eq!(provider.jwks_hits(), 1);
    // The cold fetch does not count against the kid-miss interval (a kid rotated in just
    // after it must be found): the next wave makes one kid-miss fetch, shared by all.
    let tokens = wave2;
    let results = join_all(tokens.iter().map(|t| status(&app, t))).await;
    assert!(results.iter().all(|(c, _)| *c == 401));
    assert_eq!(provider.jwks_hits(), 2);
    // Again within the interval: no fetch at all.
    let again: Vec<_> = (0..200)
        .map(|i| token(&provider, &key, Some(&format!("kid-again-{i}"))))
        .collect();
    join_all(again.iter().map(|t| status(&app, t))).await;
    assert_eq!(provider.jwks_hits(), 2);
    // After the interval: one more fetch for the whole wave.
    tokio::time::sleep(interval + Duration::from_millis(50)).await;
    let tokens = wave3;
    join_all(tokens.iter().map(|t| status(&app, t))).await;
    assert_eq!(provider.jwks_hits(), 3);
    // Known kids never fetch.
    assert_eq!(
        status(&app, &token(&provider, &key, Some("k1"))).await.0,
        200
    );
    assert_eq!(provider.jwks_hits(), 3);
}

#[tokio::test]
async fn slow_provider_does_not_slow_cached_kids() {
    let key = TestKey::rsa();
    let provider = Provider::start(jwks([key.jwk("k1", "RS256")])).await;
    let options = fast()
        .timeout(Duration::from_millis(500))
        .min_refetch_interval(Duration::ZERO)
        .ttl(Duration::from_millis(100))
        .ttl_bounds(Duration::ZERO, Duration::from_secs(60));
    let (registry, app) = setup(&provider, options);
    assert_eq!(
        status(&app, &token(&provider, &key, Some("k1"))).await.0,
        200
    );
    provider.set_behavior(Behavior::Delay(Duration::from_secs(10)));
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Past the TTL, a refresh hangs in the background; cached kids answer at once.
    for _ in 0..5 {
        let quick = tokio::time::timeout(
            Duration::from_millis(400),
            status(&app, &token(&provider, &key, Some("k1"))),
        )
        .await;
        assert_eq!(quick.expect("cached kid not slowed").0, 200);
    }
    // An unknown kid waits for the fetch, which gives up at the timeout.
    let bounded = tokio::time::timeout(
        Duration::from_secs(3),
        status(&app, &token(&provider, &key, Some("zz"))),
    )
    .await;
    assert_eq!(bounded.expect("ends within the timeout").0, 401);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let state = &registry.key_caches()[0];
    assert!(
        state
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("timed out"),
        "{state:?}"
    );
    assert_eq!(state.key_ids, ["k1"]);
}

/// One failure mode: stale keys are served up to max-stale, the failure shows in the cache
/// state, then requests get 503 with `Retry-After`.
async fn stale_then_unavailable(behavior: Behavior, expected: &str) {
    let key = TestKey::rsa();
    let provider = Provider::start(jwks([key.jwk("k1", "RS256")])).await;
    let options = fast()
        .min_refetch_interval(Duration::ZERO)
        .ttl(Duration::from_millis(50))
        .ttl_bounds(Duration::ZERO, Duration::from_secs(60))
        .max_stale(Duration::from_secs(3));
    let (registry, app) = setup(&provider, options);
    let t = token(&provider, &key, Some("k1"));
    assert_eq!(status(&app, &t).await.0, 200);
    let fetched = std::time::Instant::now();
    provider.set_behavior(behavior.clone());
    tokio::time::sleep(Duration::from_millis(80)).await;
    // Stale but within max-stale: still served, while refreshes fail in the background. Wait
    // (bounded) for a failed refresh to show, however busy the machine is.
    let state = loop {
        assert_eq!(status(&app, &t).await.0, 200, "{behavior:?}");
        let state = registry.key_caches().remove(0);
        if state.last_error.is_some() || fetched.elapsed() > Duration::from_secs(2) {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        state.last_error.as_deref().unwrap_or("").contains(expected),
        "{behavior:?}: {state:?}"
    );
    assert!(state.consecutive_failures >= 1 && state.stale);
    assert_eq!(state.key_ids, ["k1"]);
    // Past max-stale: 503 with Retry-After, never a 401 or a panic.
    tokio::time::sleep(Duration::from_millis(3200).saturating_sub(fetched.elapsed())).await;
    let r = get_bearer(&app, "/jwt", Some(&t)).await;
    assert_eq!(r.status, 503, "{behavior:?}");
    assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(r.body["error"], "temporarily_unavailable");
}

#[tokio::test]
async fn failing_provider_keeps_stale_keys_up_to_max_stale() {
    let oct =
        r#"{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0","kid":"k1"}]}"#;
    join_all([
        stale_then_unavailable(Behavior::Status(500), "answered HTTP 500"),
        stale_then_unavailable(Behavior::Body("<html>oops</html>".into()), "not a JWK set"),
        stale_then_unavailable(Behavior::Body("{}".into()), "not a JWK set"),
        stale_then_unavailable(Behavior::Body(r#"{"keys":"x"}"#.into()), "not a JWK set"),
        stale_then_unavailable(
            Behavior::Body(r#"{"keys":[{"kty":"RSA","#.into()),
            "not a JWK set",
        ),
        stale_then_unavailable(Behavior::Body(oct.into()), "no key usable"),
        stale_then_unavailable(Behavior::Huge(10 << 20), "larger than 65536 bytes"),
    ])
    .await;
}

#[tokio::test]
async fn cold_start_with_the_provider_down_then_back() {
    let key = TestKey::rsa();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{addr}");
    let v = Validator::new("idp")
        .issuer(url.clone())
        .audience(AUD)
        .algorithm(Algorithm::RS256)
        .key(KeySource::jwks_url(format!("{url}/certs")))
        .remote_options(fast())
        .user(User::fixed(1));
    let registry = Registry::builder().validator(v).build().unwrap();
    let err = registry.prefetch().await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::KeyFetch);
    assert!(err.to_string().contains("connection failed"), "{err}");
    let app = app(&registry, &[("/jwt", "jwt_idp")]);
    let t = mint(&key, "RS256", json!({"kid": "k1"}), &claims(&url, AUD, 300));
    let r = get_bearer(&app, "/jwt", Some(&t)).await;
    assert_eq!(r.status, 503);
    assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert!(r.header("www-authenticate").is_empty());

    // The provider comes back on the same address.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let provider = Provider::serve(listener, jwks([key.jwk("k1", "RS256")]));
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(get_bearer(&app, "/jwt", Some(&t)).await.status, 200);
    assert_eq!(provider.jwks_hits(), 1);
}

#[tokio::test]
async fn header_supplied_keys_are_never_used_or_fetched() {
    let key = TestKey::rsa();
    let attacker = TestKey::rsa_alt();
    let provider = Provider::start(jwks([key.jwk("k1", "RS256")])).await;
    let evil = Provider::start(jwks([attacker.jwk("k1", "RS256")])).await;
    let (_registry, app) = setup(&provider, fast());
    let c = claims(&provider.issuer(), AUD, 300);
    let x5c = json!(["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]);
    for header in [
        json!({"kid": "k1", "jku": evil.jwks_url()}),
        json!({"kid": "k1", "x5u": format!("{}/cert.pem", evil.issuer())}),
        json!({"kid": "k1", "jwk": attacker.jwk("k1", "RS256")}),
        json!({"kid": "k1", "x5c": x5c}),
        json!({"jku": evil.jwks_url(), "jwk": attacker.jwk("evil", "RS256")}),
    ] {
        let forged = mint(&attacker, "RS256", header.clone(), &c);
        assert_eq!(status(&app, &forged).await.0, 401, "{header}");
        let genuine = mint(&key, "RS256", header.clone(), &c);
        assert_eq!(status(&app, &genuine).await.0, 200, "{header}");
    }
    assert_eq!(
        evil.jwks_hits() + evil.other_hits() + evil.discovery_hits(),
        0
    );
    assert_eq!(provider.jwks_hits(), 1);
    assert_eq!(provider.other_hits(), 0);
}

#[tokio::test]
async fn a_token_without_kid_tries_the_keys_of_its_algorithm() {
    let (k1, k2) = (TestKey::rsa(), TestKey::rsa_alt());
    let provider = Provider::start(jwks([
        k1.jwk("k1", "RS256"),
        k2.jwk("k2", "RS256"),
        TestKey::ec_p256().jwk("e1", "ES256"),
    ]))
    .await;
    let (_registry, app) = setup(&provider, fast());
    assert_eq!(status(&app, &token(&provider, &k2, None)).await.0, 200);
    assert_eq!(status(&app, &token(&provider, &k1, None)).await.0, 200);
    // k1's header and claims with k2's signature over other claims: no key verifies it.
    let a = token(&provider, &k1, None);
    let mut other = claims(&provider.issuer(), AUD, 301);
    other["x"] = json!(1);
    let b = mint(&k2, "RS256", json!({}), &other);
    let spliced = format!(
        "{}.{}",
        a.rsplit_once('.').unwrap().0,
        b.rsplit_once('.').unwrap().1
    );
    let (code, body) = status(&app, &spliced).await;
    assert_eq!(
        (code, body["error_description"].as_str()),
        (401, Some("token signature is invalid"))
    );
}

#[tokio::test]
async fn unusable_keys_are_skipped_with_reasons() {
    let key = TestKey::rsa();
    let provider = Provider::start(jwks([
        key.jwk("good", "RS256"),
        TestKey::rsa_1024().jwk("small", "RS256"),
        key.jwk("ps", "PS256"),
        TestKey::ec_p256().jwk("ec", "ES256"),
        json!({"kty": "oct", "k": b64([7u8; 32]), "kid": "oct"}),
        {
            let mut j = key.jwk("enc", "RS256");
            j["use"] = json!("enc");
            j
        },
    ]))
    .await;
    let (registry, app) = setup(&provider, fast());
    assert_eq!(
        status(&app, &token(&provider, &key, Some("good"))).await.0,
        200
    );
    let state = registry.key_caches().remove(0);
    assert_eq!(state.key_ids, ["good"]);
    let reasons: Vec<_> = state
        .skipped
        .iter()
        .map(|s| (s.kid.clone().unwrap(), s.reason.clone()))
        .collect();
    assert_eq!(
        reasons,
        [
            (
                "small".to_owned(),
                "RSA key has 1024 bits, at least 2048 are required".to_owned()
            ),
            ("ps".to_owned(), "alg PS256 differs from RS256".to_owned()),
            ("ec".to_owned(), "alg ES256 differs from RS256".to_owned()),
            (
                "oct".to_owned(),
                "symmetric (oct) keys are not accepted here".to_owned()
            ),
            ("enc".to_owned(), "use is \"enc\", not \"sig\"".to_owned()),
        ]
    );
    // The skipped kid is unknown: one kid-miss fetch, then none within the interval.
    for _ in 0..3 {
        assert_eq!(
            status(&app, &token(&provider, &key, Some("small"))).await.0,
            401
        );
    }
    assert_eq!(provider.jwks_hits(), 2);
}

#[tokio::test]
async fn a_kid_rotated_in_right_after_a_fetch_is_found_on_its_first_request() {
    let (old, new) = (TestKey::rsa(), TestKey::rsa_alt());
    let provider = Provider::start(jwks([old.jwk("old", "RS256")])).await;
    let (registry, app) = setup(
        &provider,
        fast().min_refetch_interval(Duration::from_secs(60)),
    );
    registry.prefetch().await.unwrap();
    assert_eq!(provider.jwks_hits(), 1);
    // The provider rotates a moment after the initial fetch.
    provider.set_jwks(jwks([old.jwk("old", "RS256"), new.jwk("new", "RS256")]));
    assert_eq!(
        status(&app, &token(&provider, &new, Some("new"))).await.0,
        200
    );
    assert_eq!(provider.jwks_hits(), 2);
    // That was the kid-miss fetch of this interval: a forged kid now costs nothing.
    assert_eq!(
        status(&app, &token(&provider, &new, Some("forged")))
            .await
            .0,
        401
    );
    assert_eq!(provider.jwks_hits(), 2);
}

#[tokio::test]
async fn one_cache_per_url_shared_by_validators_and_routes() {
    let key = TestKey::rsa();
    let provider = Provider::start(jwks([
        key.jwk("k1", "RS256"),
        TestKey::ec_p256().jwk("e1", "ES256"),
    ]))
    .await;
    let registry = Registry::builder()
        .validator(validator(&provider, fast()))
        .validator(
            Validator::new("idp_ec")
                .issuer(provider.issuer())
                .audience(AUD)
                .algorithm(Algorithm::ES256)
                .key(KeySource::jwks_url(provider.jwks_url()))
                .user(User::fixed(2)),
        )
        .build()
        .unwrap();
    assert_eq!(registry.key_caches().len(), 1);
    let app = app(
        &registry,
        &[
            ("/jwt", "jwt_idp"),
            ("/a", "public_or_jwt_idp"),
            ("/ec", "jwt_idp_ec"),
        ],
    );
    assert_eq!(
        status(&app, &token(&provider, &key, Some("k1"))).await.0,
        200
    );
    assert_eq!(
        get_bearer(&app, "/a", Some(&token(&provider, &key, Some("k1"))))
            .await
            .status,
        200
    );
    let ec = mint(
        &TestKey::ec_p256(),
        "ES256",
        json!({"kid": "e1"}),
        &claims(&provider.issuer(), AUD, 300),
    );
    assert_eq!(get_bearer(&app, "/ec", Some(&ec)).await.status, 200);
    assert_eq!(provider.jwks_hits(), 1);
    assert_eq!(registry.key_caches()[0].key_ids, ["k1", "e1"]);
}

#[tokio::test]
async fn cache_control_max_age_sets_the_ttl() {
    let key = TestKey::rsa();
    let provider = Provider::start(jwks([key.jwk("k1", "RS256")])).await;
    provider.set_cache_control(Some("public, max-age=1000"));
    let (registry, _app) = setup(&provider, fast());
    registry.prefetch().await.unwrap();
    let state = registry.key_caches().remove(0);
    let due = state
        .next_refresh
        .unwrap()
        .duration_since(std::time::SystemTime::now())
        .unwrap();
    // Refresh ahead at 80% of the TTL.
    assert!(
        (Duration::from_secs(790)..=Duration::from_secs(800)).contains(&due),
        "{due:?}"
    );
}

#[tokio::test]
async fn oidc_discovery() {
    let key = TestKey::rsa();
    let provider = Provider::start(jwks([key.jwk("k1", "RS256")])).await;
    let v = Validator::new("oidc")
        .issuer(provider.issuer())
        .audience(AUD)
        .algorithm(Algorithm::RS256)
        .key(KeySource::oidc_issuer(provider.issuer()))
        .remote_options(fast())
        .user(User::fixed(1));
    let registry = Registry::builder().validator(v.clone()).build().unwrap();
    registry.prefetch().await.unwrap();
    let state = registry.key_caches().remove(0);
    assert_eq!(
        state.jwks_uri.as_deref(),
        Some(provider.jwks_url().as_str())
    );
    let router = app(&registry, &[("/jwt", "jwt_oidc")]);
    assert_eq!(
        status(&router, &token(&provider, &key, Some("k1"))).await.0,
        200
    );
    assert_eq!(provider.discovery_hits(), 1);

    // A discovery document naming another issuer is a configuration error naming both.
    provider.set_discovery_issuer("https://evil.example");
    let registry = Registry::builder().validator(v).build().unwrap();
    let err = registry.prefetch().await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidSetting);
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("configured {:?}", provider.issuer()))
            && msg.contains("\"https://evil.example\""),
        "{msg}"
    );
    let app = app(&registry, &[("/jwt", "jwt_oidc")]);
    assert_eq!(
        status(&app, &token(&provider, &key, Some("k1"))).await.0,
        503
    );
}

#[test]
fn remote_urls_must_be_https_except_loopback() {
    let v = |url: &str| {
        Validator::new("v")
            .issuer("i")
            .audience("a")
            .algorithm(Algorithm::RS256)
            .key(KeySource::jwks_url(url))
            .user(User::fixed(1))
    };
    let err = Registry::builder()
        .validator(v("http://example.com/certs"))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("must use https"), "{err}");
    assert!(
        Registry::builder()
            .validator(v("https://team.cloudflareaccess.com/cdn-cgi/access/certs"))
            .build()
            .is_ok()
    );
    let hs = Validator::new("v")
        .issuer("i")
        .audience("a")
        .algorithm(Algorithm::HS256)
        .key(KeySource::jwks_url("https://x/certs"))
        .user(User::fixed(1));
    assert_eq!(
        Registry::builder()
            .validator(hs)
            .build()
            .unwrap_err()
            .kind(),
        &ErrorKind::InvalidKey
    );
}

#[tokio::test]
async fn at_most_one_redirect_and_never_to_plain_http_elsewhere() {
    let key = TestKey::rsa();
    let target = Provider::start(jwks([key.jwk("k1", "RS256")])).await;
    let hop = Provider::start(jwks([])).await;
    let entry = Provider::start(jwks([])).await;
    let v = |p: &Provider| {
        Validator::new("idp")
            .issuer(target.issuer())
            .audience(AUD)
            .algorithm(Algorithm::RS256)
            .key(KeySource::jwks_url(p.jwks_url()))
            .remote_options(fast())
            .user(User::fixed(1))
    };
    // One redirect is followed.
    entry.set_behavior(Behavior::Redirect(target.jwks_url()));
    let registry = Registry::builder().validator(v(&entry)).build().unwrap();
    registry.prefetch().await.unwrap();
    assert_eq!(registry.key_caches()[0].key_ids, ["k1"]);
    // Two are not.
    hop.set_behavior(Behavior::Redirect(target.jwks_url()));
    entry.set_behavior(Behavior::Redirect(hop.jwks_url()));
    let hits = target.jwks_hits();
    let registry = Registry::builder().validator(v(&entry)).build().unwrap();
    let err = registry.prefetch().await.unwrap_err();
    assert!(err.to_string().contains("redirect refused"), "{err}");
    assert_eq!(target.jwks_hits(), hits);
    // Nor one to plain http off this machine.
    entry.set_behavior(Behavior::Redirect("http://example.com/certs".into()));
    let registry = Registry::builder().validator(v(&entry)).build().unwrap();
    let err = registry.prefetch().await.unwrap_err();
    assert!(err.to_string().contains("redirect refused"), "{err}");
}

#[tokio::test]
async fn outages_are_logged_once_per_state_change_and_tokens_never() {
    let logs = Logs::default();
    let _guard = logs.capture(tracing::Level::DEBUG);

    let key = TestKey::rsa();
    let provider = Provider::start(jwks([key.jwk("k1", "RS256")])).await;
    let (registry, app) = setup(&provider, fast().min_refetch_interval(Duration::ZERO));
    let t = token(&provider, &key, Some("k1"));
    assert_eq!(status(&app, &t).await.0, 200);
    provider.set_behavior(Behavior::Status(502));
    for _ in 0..4 {
        registry.prefetch().await.unwrap_err();
    }
    assert_eq!(
        logs.count("key set fetch failed; serving the last good set"),
        1
    );
    assert_eq!(logs.count("key set fetch failed again"), 3);
    provider.set_behavior(Behavior::Serve);
    registry.prefetch().await.unwrap();
    registry.prefetch().await.unwrap();
    assert_eq!(logs.count("key set fetch recovered"), 1);
    // Refused tokens are logged with a reason, never with the token.
    let forged = token(&provider, &TestKey::rsa_alt(), Some("k1"));
    assert_eq!(status(&app, &forged).await.0, 401);
    assert_eq!(logs.count("token refused"), 1);
    let all = logs.text();
    for secret in [&t, &forged] {
        let signature = secret.rsplit('.').next().unwrap();
        assert!(!all.contains(signature), "a token reached the log");
    }
}

/// One registry, several runtimes (as with a shared registry across `#[tokio::test]`s): a fetch
/// cancelled with its runtime does not block the next runtime's requests.
#[test]
fn a_registry_outlives_the_runtime_that_started_a_fetch() {
    let provider_rt = tokio::runtime::Runtime::new().unwrap();
    let key = TestKey::rsa();
    let provider = provider_rt.block_on(Provider::start(jwks([key.jwk("k1", "RS256")])));
    provider.set_behavior(Behavior::Delay(Duration::from_secs(2)));
    let (registry, app) = setup(&provider, fast().timeout(Duration::from_secs(5)));
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    first.block_on(async {
        let started = tokio::time::timeout(Duration::from_millis(100), registry.prefetch()).await;
        assert!(started.is_err(), "the fetch is still in flight");
    });
    drop(first);
    provider.set_behavior(Behavior::Serve);
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let t = token(&provider, &key, Some("k1"));
    assert_eq!(second.block_on(status(&app, &t)).0, 200);
}

#[tokio::test]
async fn claims_that_cannot_match_are_refused_before_any_key_fetch() {
    let key = TestKey::rsa();
    let provider = Provider::start(jwks([key.jwk("k1", "RS256")])).await;
    let (_registry, app) = setup(&provider, fast().min_refetch_interval(Duration::ZERO));
    // Another issuer, another audience, with fresh kids each time: no fetch at all.
    for (i, (iss, aud)) in [
        ("https://other.example", AUD),
        (provider.issuer().as_str(), "other-api"),
    ]
    .into_iter()
    .enumerate()
    {
        let t = mint(
            &key,
            "RS256",
            json!({"kid": format!("random-{i}")}),
            &claims(iss, aud, 300),
        );
        let (code, body) = status(&app, &t).await;
        assert_eq!(code, 401);
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("not accepted"),
            "{body}"
        );
    }
    assert_eq!(provider.jwks_hits(), 0);
    // The token it can accept is verified (one fetch), and a forged one with good claims still
    // fails on its signature.
    assert_eq!(
        status(&app, &token(&provider, &key, Some("k1"))).await.0,
        200
    );
    let forged = token(&provider, &TestKey::rsa_alt(), Some("k1"));
    assert_eq!(
        status(&app, &forged).await.1["error_description"],
        "token signature is invalid"
    );
    assert_eq!(provider.jwks_hits(), 1);
}
