//! Sign-in sessions that outlive their tokens, end on their timeouts and on a refused
//! refresh, are refreshed once however many requests ask, and are shared by instances: over
//! TCP against the test provider (short token lifetimes, rotating refresh tokens, a slow
//! token endpoint when asked).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwtgate::session::{AccessToken, SessionOptions};
use jwtgate::{Algorithm, CookieMode, KeySource, Registry, User, Validator, login::Login};
use jwtgate_test::{Provider, TestKey, jwks};
use jwtgate_tests::whoami;
use reqwest::header::{ACCEPT, COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::Value;

mod support;
use support::Shared;

const HTML: &str = "text/html,application/xhtml+xml";

/// A provider whose tokens live `lifetime` seconds.
async fn provider(lifetime: u64) -> Provider {
    let key = TestKey::rsa();
    let provider = Provider::start(jwks([key.jwk("k1", "RS256")])).await;
    provider.enable_login(key, "k1");
    provider.set_token_lifetime(lifetime);
    provider
}

/// One instance of an app on 127.0.0.1 with a sign-in, its sessions in `store`: its base URL.
async fn instance(provider: &Provider, store: &Shared, options: SessionOptions) -> String {
    serve(provider, store, options).await.0
}

/// The same, with its registry.
async fn serve(provider: &Provider, store: &Shared, options: SessionOptions) -> (String, Registry) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let registry = store
        .apply(Registry::builder())
        .validator(
            Validator::new("idp")
                .issuer(provider.issuer())
                .audience("web")
                .algorithm(Algorithm::RS256)
                .key(KeySource::oidc_issuer(provider.issuer()))
                .user(User::claim("sub"))
                .cookie(
                    CookieMode::new("idp_session")
                        .secure(false)
                        .secret("cookie-secret-cookie-secret-0032"),
                )
                .session(options)
                .login(Login::oidc("web", format!("{base}/auth/callback"))),
        )
        .build()
        .unwrap();
    let auth = registry.login_service("idp").unwrap();
    let app = Router::new()
        .route("/page", get(whoami))
        .route(
            "/relay",
            get(|token: AccessToken| async move { token.secret().to_owned() }),
        )
        .route_layer(registry.layer("jwt_idp").unwrap())
        .route_service("/auth/login", auth.clone())
        .route_service("/auth/callback", auth.clone())
        .route_service("/auth/logout", auth);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !registry.revocation_state().fresh {
        assert!(Instant::now() < deadline, "the store never loaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (base, registry)
}

/// A browser: it keeps the session cookie the app last set (and forgets it when cleared).
#[derive(Clone)]
struct Browser {
    http: reqwest::Client,
    cookie: Arc<Mutex<Option<String>>>,
}

impl Browser {
    fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            cookie: Arc::new(Mutex::new(None)),
        }
    }

    fn cookie(&self) -> Option<String> {
        self.cookie.lock().unwrap().clone()
    }

    fn set_cookie(&self, cookie: Option<String>) {
        *self.cookie.lock().unwrap() = cookie;
    }

    /// `GET url` as a navigation (`xhr == false`) or an XHR, with the cookie; keeps what the
    /// answer sets.
    async fn get(&self, url: &str, xhr: bool) -> reqwest::Response {
        let mut req = self.http.get(url);
        req = if xhr {
            req.header("x-requested-with", "XMLHttpRequest")
        } else {
            req.header(ACCEPT, HTML)
        };
        if let Some(cookie) = self.cookie() {
            req = req.header(COOKIE, cookie);
        }
        let res = req.send().await.unwrap();
        for set in res.headers().get_all(SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
            if let Some(value) = pair.strip_prefix("idp_session=") {
                self.set_cookie((!value.is_empty()).then_some(pair.clone()));
            }
        }
        res
    }

    /// Signs in at `base` through the provider, as `ada`.
    async fn sign_in(&self, base: &str, provider: &Provider) {
        let res = self.get(&format!("{base}/page"), false).await;
        assert_eq!(res.status(), 302);
        let authorize = location(&res);
        let pending = cookies(&res)
            .into_iter()
            .find(|c| c.starts_with("jwtgate_login_idp="))
            .unwrap();
        let form: Vec<(String, String)> = [
            "client_id",
            "redirect_uri",
            "state",
            "nonce",
            "code_challenge",
        ]
        .iter()
        .map(|k| ((*k).to_owned(), query(&authorize, k)))
        .chain([
            ("username".into(), "ada".into()),
            ("decision".into(), "allow".into()),
        ])
        .collect();
        let res = self
            .http
            .post(format!("{}/authorize", provider.issuer()))
            .form(&form)
            .send()
            .await
            .unwrap();
        let callback = location(&res);
        let res = self
            .http
            .get(callback)
            .header(COOKIE, pending)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 302, "{:?}", res.text().await);
        let session = cookies(&res)
            .into_iter()
            .find(|c| c.starts_with("idp_session=") && c.len() > 12)
            .expect("a session cookie");
        self.set_cookie(Some(session));
    }

    /// The claims the app saw (`/page` answers what the layer found), as a navigation.
    async fn page(&self, base: &str) -> Result<Value, reqwest::Response> {
        let res = self.get(&format!("{base}/page"), false).await;
        if res.status() != 200 {
            return Err(res);
        }
        Ok(res.json::<Value>().await.unwrap()["payload"].clone())
    }
}

fn location(res: &reqwest::Response) -> String {
    res.headers()[LOCATION].to_str().unwrap().to_owned()
}

fn cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect()
}

fn query(url: &str, name: &str) -> String {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("{name} in {url}"))
}

/// The claims a session cookie carries (signed by jwtgate; read here to look).
fn cookie_claims(cookie: &str) -> Value {
    let value = cookie.split_once('=').unwrap().1;
    let payload = value.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Polls `check` every 50 ms until it gives something, for at most `secs` seconds.
async fn within<T, F, Fut>(secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "not within {secs} s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the clock is past `instant` (Unix seconds), bounded.
async fn until_past(instant: u64) {
    within(30, || async {
        (jwtgate_test::now() > instant).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_session_used_for_three_token_lifetimes_never_redirects() {
    let provider = provider(4).await;
    let store = Shared::new("sessions-long");
    let base = instance(&provider, &store, SessionOptions::new()).await;
    let browser = Browser::new();
    browser.sign_in(&base, &provider).await;
    let first = browser.page(&base).await.unwrap();
    let started = Instant::now();
    let mut issued = vec![first["iat"].as_u64().unwrap()];
    // 12 s of use, a request every 200 ms: every one is answered, none sent to sign in.
    while started.elapsed() < Duration::from_secs(12) {
        let claims = match browser.page(&base).await {
            Ok(claims) => claims,
            Err(res) => panic!(
                "after {:?}: {} {:?}",
                started.elapsed(),
                res.status(),
                res.headers().get(LOCATION)
            ),
        };
        assert_eq!(claims["sub"], "ada");
        let iat = claims["iat"].as_u64().unwrap();
        if issued.last() != Some(&iat) {
            issued.push(iat);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The ID token was refreshed at least twice (its `iat` moved), each refresh spending the
    // last refresh token: one is live.
    assert!(issued.len() >= 3, "{issued:?}");
    assert!(provider.refresh_grants() >= 2);
    assert_eq!(provider.live_refresh_tokens().len(), 1);
    // The relay gets the access token of the latest refresh, valid at the provider.
    let res = browser.get(&format!("{base}/relay"), true).await;
    assert_eq!(res.status(), 200);
    let token = res.text().await.unwrap();
    assert_eq!(cookie_claims(&format!("t={token}"))["aud"], "api");
    assert!(
        cookie_claims(&format!("t={token}"))["iat"]
            .as_u64()
            .unwrap()
            >= *issued.last().unwrap()
    );
}

#[tokio::test]
async fn fifty_requests_at_expiry_share_one_slow_refresh() {
    let provider = provider(4).await;
    let store = Shared::new("sessions-fifty");
    let base = instance(&provider, &store, SessionOptions::new()).await;
    let browser = Browser::new();
    browser.sign_in(&base, &provider).await;
    let claims = browser.page(&base).await.unwrap();
    provider.set_refresh_delay(Duration::from_secs(3));
    // The moment the tokens have expired: nothing can be served as it is.
    until_past(claims["exp"].as_u64().unwrap()).await;
    let cookie = browser.cookie();
    // 50 XHRs at once, each carrying the same expired cookie (as a page's parallel calls do).
    let requests = (0..50).map(|_| {
        let tab = Browser {
            http: browser.http.clone(),
            cookie: Arc::new(Mutex::new(cookie.clone())),
        };
        let url = format!("{base}/page");
        async move { tab.get(&url, true).await.status().as_u16() }
    });
    let statuses = futures_util::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(provider.refresh_grants(), 1, "exactly one refresh grant");
}

#[tokio::test]
async fn a_session_refreshed_on_one_instance_is_current_on_the_other() {
    let provider = provider(4).await;
    let store = Shared::new("sessions-two");
    let a = instance(&provider, &store, SessionOptions::new()).await;
    let b = instance(&provider, &store, SessionOptions::new()).await;
    let browser = Browser::new();
    browser.sign_in(&a, &provider).await;
    let before = browser.page(&a).await.unwrap();
    let stale = browser.cookie().unwrap();
    until_past(before["exp"].as_u64().unwrap()).await;
    // Refreshed on B ...
    let on_b = browser.page(&b).await.unwrap();
    assert_eq!(provider.refresh_grants(), 1);
    assert!(
        on_b["iat"].as_u64() > before["iat"].as_u64(),
        "{on_b} {before}"
    );
    // ... and A, given the stale cookie again (another tab), sees B's refresh: no second
    // grant, the same new claims.
    browser.set_cookie(Some(stale));
    let on_a = browser.page(&a).await.unwrap();
    assert_eq!(provider.refresh_grants(), 1);
    assert_eq!(on_a["iat"], on_b["iat"]);
}

#[tokio::test]
async fn a_refresh_the_provider_refuses_ends_the_session() {
    let provider = provider(4).await;
    let store = Shared::new("sessions-refused");
    let base = instance(&provider, &store, SessionOptions::new()).await;
    let browser = Browser::new();
    browser.sign_in(&base, &provider).await;
    let claims = browser.page(&base).await.unwrap();
    let session = browser.cookie();
    provider.revoke_refresh_tokens();
    until_past(claims["exp"].as_u64().unwrap()).await;
    // An XHR: 401, the cookie cleared.
    let res = browser.get(&format!("{base}/page"), true).await;
    assert_eq!(res.status(), 401);
    assert!(cookies(&res).contains(&"idp_session=".to_owned()));
    assert_eq!(provider.refresh_grants(), 1);
    // A navigation with the same cookie: sent to sign in, no second refresh attempted (the
    // refused session's record is gone).
    browser.set_cookie(session);
    let res = browser.get(&format!("{base}/page"), false).await;
    assert_eq!(res.status(), 302);
    assert!(location(&res).starts_with(&format!("{}/authorize?", provider.issuer())));
    assert_eq!(provider.refresh_grants(), 1);
}

#[tokio::test]
async fn a_session_the_provider_signed_out_is_refused_without_a_refresh() {
    let provider = provider(4).await;
    let store = Shared::new("sessions-signed-out");
    let (base, registry) = serve(&provider, &store, SessionOptions::new()).await;
    let browser = Browser::new();
    browser.sign_in(&base, &provider).await;
    let claims = browser.page(&base).await.unwrap();
    // What a back-channel logout names: the provider's session.
    let sid = claims["sid"].as_str().unwrap().to_owned();
    registry
        .revoker()
        .revoke("idp", jwtgate::revocation::Target::ProviderSession(sid))
        .await
        .unwrap();
    until_past(claims["exp"].as_u64().unwrap()).await;
    let res = browser.get(&format!("{base}/page"), true).await;
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("the session was signed out")
    );
    assert_eq!(
        provider.refresh_grants(),
        0,
        "no refresh for a signed-out session"
    );
}

#[tokio::test]
async fn the_idle_timeout_ends_a_session_left_alone() {
    let provider = provider(300).await;
    let store = Shared::new("sessions-idle");
    let options = SessionOptions::new().idle_timeout(Duration::from_secs(2));
    let base = instance(&provider, &store, options).await;
    let browser = Browser::new();
    browser.sign_in(&base, &provider).await;
    let signed_in = jwtgate_test::now();
    assert!(browser.page(&base).await.is_ok());
    // Left alone past the idle timeout (whole seconds: up to 3 s): sent to sign in.
    until_past(signed_in + 3).await;
    let res = browser.page(&base).await.unwrap_err();
    assert_eq!(res.status(), 302);
    assert!(browser.cookie().is_none(), "the session cookie is cleared");
}

#[tokio::test]
async fn the_absolute_timeout_ends_a_session_however_active() {
    let provider = provider(300).await;
    let store = Shared::new("sessions-absolute");
    let options = SessionOptions::new()
        .idle_timeout(Duration::from_secs(2))
        .absolute_timeout(Duration::from_secs(6));
    let base = instance(&provider, &store, options).await;
    let browser = Browser::new();
    browser.sign_in(&base, &provider).await;
    let signed_in = jwtgate_test::now();
    // Used every 300 ms, it outlives its idle timeout ...
    let mut answered_after_idle = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    let res = loop {
        assert!(Instant::now() < deadline, "the session never ended");
        let at = jwtgate_test::now();
        match browser.page(&base).await {
            Ok(_) => answered_after_idle |= at > signed_in + 3,
            Err(res) => break (res, at),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let (res, at) = res;
    assert!(answered_after_idle, "still signed in past the idle timeout");
    // ... and ends at its absolute timeout.
    assert_eq!(res.status(), 302);
    assert!(
        at >= signed_in + 6,
        "ended at {at}, signed in at {signed_in}"
    );
}

#[tokio::test]
async fn sign_out_revokes_the_refresh_token_and_removes_the_record() {
    let provider = provider(300).await;
    let store = Shared::new("sessions-sign-out");
    let base = instance(&provider, &store, SessionOptions::new()).await;
    let browser = Browser::new();
    browser.sign_in(&base, &provider).await;
    let live = provider.live_refresh_tokens();
    assert_eq!(live.len(), 1);
    let session = browser.cookie();
    let res = browser.get(&format!("{base}/auth/logout"), false).await;
    assert_eq!(res.status(), 302);
    // RFC 7009 at the provider: the session's refresh token, now dead there.
    assert_eq!(provider.revoked_tokens(), live);
    assert!(provider.live_refresh_tokens().is_empty());
    // The provider's logout is told which session ends.
    assert!(location(&res).contains("id_token_hint="));
    // The old cookie is refused (revoked), and the relay finds no session.
    browser.set_cookie(session);
    let res = browser.get(&format!("{base}/relay"), true).await;
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn a_token_with_150_groups_still_makes_a_cookie_browsers_keep() {
    let provider = provider(4).await;
    let groups: Vec<String> = (0..150)
        .map(|i| format!("/tenants/acme/departments/engineering/team-{i:03}"))
        .collect();
    provider.set_extra_claims(serde_json::json!({ "groups": groups }));
    let store = Shared::new("sessions-large");
    let base = instance(&provider, &store, SessionOptions::new()).await;
    let browser = Browser::new();
    browser.sign_in(&base, &provider).await;
    // The ID token alone is over 7 KB; the cookie stays under the 4096 bytes browsers keep.
    let cookie = browser.cookie().unwrap();
    assert!(cookie.len() < 4000, "{} bytes", cookie.len());
    assert!(cookie_claims(&cookie).get("groups").is_none());
    // The handler sees every group, before and after a refresh.
    let claims = browser.page(&base).await.unwrap();
    assert_eq!(claims["groups"].as_array().unwrap().len(), 150);
    assert!(
        claims.to_string().len() > 7000,
        "the token's claims are large"
    );
    until_past(claims["exp"].as_u64().unwrap()).await;
    let refreshed = browser.page(&base).await.unwrap();
    assert_eq!(provider.refresh_grants(), 1);
    assert!(refreshed["iat"].as_u64() > claims["iat"].as_u64());
    assert_eq!(refreshed["groups"].as_array().unwrap().len(), 150);
    assert!(browser.cookie().unwrap().len() < 4000);
}

#[tokio::test]
async fn a_dump_of_the_store_holds_no_usable_token() {
    let store = Shared::new("sessions-dump");
    let Shared::Redis { url, prefix } = store.clone() else {
        eprintln!("skipped: JWTGATE_TEST_REDIS_URL is not set");
        return;
    };
    let provider = provider(300).await;
    let base = instance(&provider, &store, SessionOptions::new()).await;
    let browser = Browser::new();
    browser.sign_in(&base, &provider).await;
    let res = browser.get(&format!("{base}/relay"), true).await;
    let access = res.text().await.unwrap();
    let refresh = provider.live_refresh_tokens().pop().unwrap();
    // Everything under the app's prefix, as a dump would have it.
    let dump = redis_dump(&url, &prefix).await;
    assert!(
        dump.iter()
            .any(|(k, _)| k.starts_with(&format!("{prefix}session:idp/"))),
        "{:?}",
        dump.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
    for (key, value) in &dump {
        let text = String::from_utf8_lossy(value);
        for secret in [&refresh, &access] {
            assert!(!text.contains(secret.as_str()), "a token in {key}");
        }
        assert!(!text.contains("ada"), "the subject in {key}");
    }
}

/// Every key under `prefix` with its value (strings only; other types as empty).
async fn redis_dump(url: &str, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut out = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let value: Vec<u8> = if kind == "string" {
            redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap()
        } else {
            Vec::new()
        };
        out.push((key, value));
    }
    out
}
