//! Browser sign-in and sign-out over HTTP, against the demo provider on 127.0.0.1: the OIDC
//! authorization-code flow, a Cloudflare-style fronting provider, and every refusal.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwtgate::revocation::Target;
use jwtgate::{Algorithm, CookieMode, KeySource, Preset, Registry, User, Validator, login::Login};
use jwtgate_test::{Provider, TestKey, jwks};
use jwtgate_tests::whoami;

mod support;
use reqwest::header::{ACCEPT, COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use support::Shared;

const HTML: &str = "text/html,application/xhtml+xml";

struct Site {
    base: String,
    provider: Provider,
    http: reqwest::Client,
}

/// An app on 127.0.0.1 whose `/` and `/page` need a sign-in through the demo provider.
async fn oidc_site(max_age: Duration) -> Site {
    oidc_site_with(max_age, None).await
}

/// The same, for a confidential client when `secret` is given.
async fn oidc_site_with(max_age: Duration, secret: Option<&str>) -> Site {
    let key = TestKey::rsa();
    let provider = Provider::start(jwks([key.jwk("k1", "RS256")])).await;
    provider.enable_login(key, "k1");
    let (base, _) = serve_instance(&provider, max_age, secret, None).await;
    Site {
        base,
        provider,
        http: reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .unwrap(),
    }
}

/// One instance of the app on 127.0.0.1, revoking in `store` (its own memory store when
/// `None`): its base URL and registry.
async fn serve_instance(
    provider: &Provider,
    max_age: Duration,
    secret: Option<&str>,
    store: Option<Shared>,
) -> (String, Registry) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let builder = Registry::builder().validator(
        Validator::new("idp")
            .issuer(provider.issuer())
            .audience("api")
            .algorithm(Algorithm::RS256)
            .key(KeySource::oidc_issuer(provider.issuer()))
            .user(User::claim("sub"))
            .cookie(
                CookieMode::new("idp_session")
                    .secure(false)
                    .max_age(max_age)
                    .secret("cookie-secret-cookie-secret-0032"),
            )
            .login({
                let login = Login::oidc("web", format!("{base}/auth/callback"))
                    .post_logout_redirect_uri(format!("{base}/"));
                match secret {
                    Some(s) => login.client_secret(s),
                    None => login,
                }
            }),
    );
    let registry = match store {
        Some(store) => store.apply(builder),
        None => builder,
    }
    .build()
    .unwrap();
    let auth = registry.login_service("idp").unwrap();
    let app = Router::new()
        .route("/", get(whoami))
        .route("/page", get(whoami))
        .route_layer(registry.layer("jwt_idp").unwrap())
        .merge(
            Router::new()
                .route("/public", get(whoami))
                .route_layer(registry.layer("public_or_jwt_idp").unwrap()),
        )
        .route_service("/auth/login", auth.clone())
        .route_service("/auth/callback", auth.clone())
        .route_service("/auth/logout", auth.clone())
        .route_service("/auth/backchannel-logout", auth);
    tokio::spawn(async move { axum::serve(listener, app).await });
    // A shared store is loaded in the background: wait for it, as a starting server would.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !registry.revocation_state().fresh {
        assert!(
            std::time::Instant::now() < deadline,
            "the store never loaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (base, registry)
}

/// What `check` gives once it gives something, polled every 20 ms for at most a second (a
/// revocation reaches another instance through Redis within milliseconds, not at once).
async fn eventually<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "not within 1 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `name=value` of every cookie a response sets.
fn set_cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|c| c.split(';').next().unwrap_or("").to_owned())
        .collect()
}

fn location(res: &reqwest::Response) -> String {
    res.headers()[LOCATION].to_str().unwrap().to_owned()
}

fn query(url: &str, name: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

impl Site {
    async fn get(&self, url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let url = if url.starts_with("http") {
            url.to_owned()
        } else {
            format!("{}{url}", self.base)
        };
        let mut req = self.http.get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// A browser navigation to `path` carrying `cookie`.
    async fn navigate(&self, path: &str, cookie: &str) -> reqwest::Response {
        self.get(path, &[(ACCEPT.as_str(), HTML), (COOKIE.as_str(), cookie)])
            .await
    }

    /// Starts a sign-in by navigating to `path`: the authorize URL and the pending cookie.
    async fn start(&self, path: &str) -> (String, String) {
        let res = self.get(path, &[(ACCEPT.as_str(), HTML)]).await;
        assert_eq!(res.status(), 302, "{path}");
        let pending = set_cookies(&res)
            .into_iter()
            .find(|c| c.starts_with("jwtgate_login_idp="))
            .unwrap();
        (location(&res), pending)
    }

    /// Submits the provider's form for `authorize`: the callback URL it sends back to.
    async fn sign_in(&self, authorize: &str, decision: &str) -> String {
        let form: Vec<(String, String)> = [
            "client_id",
            "redirect_uri",
            "state",
            "nonce",
            "code_challenge",
        ]
        .iter()
        .map(|k| ((*k).to_owned(), query(authorize, k).unwrap()))
        .chain([
            ("username".into(), "ada".into()),
            ("decision".into(), decision.into()),
        ])
        .collect();
        let res = self
            .http
            .post(format!("{}/authorize", self.provider.issuer()))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 302);
        location(&res)
    }
}

#[tokio::test]
async fn the_authorization_code_flow_end_to_end() {
    let site = oidc_site(Duration::from_secs(3600)).await;
    let (authorize, pending) = site.start("/page?tab=2").await;
    assert!(
        authorize.starts_with(&format!("{}/authorize?", site.provider.issuer())),
        "{authorize}"
    );
    for (k, v) in [
        ("response_type", "code"),
        ("client_id", "web"),
        ("code_challenge_method", "S256"),
        ("scope", "openid email profile"),
    ] {
        assert_eq!(query(&authorize, k).as_deref(), Some(v), "{k}");
    }
    assert_eq!(
        query(&authorize, "redirect_uri").unwrap(),
        format!("{}/auth/callback", site.base)
    );
    let callback = site.sign_in(&authorize, "allow").await;
    assert!(
        callback.starts_with(&format!("{}/auth/callback?code=", site.base)),
        "{callback}"
    );
    let res = site.get(&callback, &[(COOKIE.as_str(), &pending)]).await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), "/page?tab=2");
    let cookies = set_cookies(&res);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("idp_session="))
        .unwrap()
        .clone();
    assert!(
        cookies.contains(&"jwtgate_login_idp=".to_owned()),
        "the pending login is cleared: {cookies:?}"
    );
    // The session cookie signs the browser in: the user from the ID token.
    let res = site.navigate("/page?tab=2", &session).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (&body["uid"], &body["payload"]["email"]),
        (&Value::from("ada"), &Value::from("ada@example.com"))
    );
    // The same code again: the provider refuses it, the browser sees the 401 page.
    let res = site.get(&callback, &[(COOKIE.as_str(), &pending)]).await;
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("did not accept the sign-in code")
    );
    // Logout from XHR: JSON with the provider's end-session URL; every jwtgate cookie cleared.
    let res = site
        .get(
            "/auth/logout",
            &[
                ("x-requested-with", "XMLHttpRequest"),
                (COOKIE.as_str(), &session),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let cleared = set_cookies(&res);
    assert!(cleared.contains(&"idp_session=".to_owned()), "{cleared:?}");
    let body: Value = res.json().await.unwrap();
    let end = body["redirect_url"].as_str().unwrap();
    assert!(
        end.starts_with(&format!(
            "{}/logout?client_id=web&post_logout_redirect_uri=",
            site.provider.issuer()
        )),
        "{end}"
    );
    assert_eq!(
        query(end, "post_logout_redirect_uri").unwrap(),
        format!("{}/", site.base)
    );
    // The provider is told which session ends: the sign-in's own ID token as the hint.
    let hint = query(end, "id_token_hint").unwrap();
    let claims = jwt_claims(&hint);
    assert_eq!(
        (&claims["sub"], &claims["aud"]),
        (&json!("ada"), &json!("web"))
    );
    // A browser logout (GET or POST) is a redirect to the same place; without a session
    // there is no hint to give.
    let res = site
        .http
        .post(format!("{}/auth/logout", site.base))
        .send()
        .await
        .unwrap();
    let (without_hint, _) = end.split_once("&id_token_hint=").unwrap();
    assert_eq!(
        (res.status().as_u16(), location(&res)),
        (302, without_hint.to_owned())
    );
}

impl Site {
    /// Signs in through the provider starting at `path`: the session cookie (`name=value`).
    async fn session(&self, path: &str) -> String {
        let (authorize, pending) = self.start(path).await;
        let callback = self.sign_in(&authorize, "allow").await;
        let res = self.get(&callback, &[(COOKIE.as_str(), &pending)]).await;
        assert_eq!(res.status(), 302);
        set_cookies(&res)
            .into_iter()
            .find(|c| c.starts_with("idp_session=") && c.len() > 12)
            .unwrap()
    }
}

#[tokio::test]
async fn a_sign_out_holds_on_every_instance_sharing_the_store() {
    let store = Shared::new("login-sign_out");
    let key = TestKey::rsa();
    let provider = Provider::start(jwks([key.jwk("k1", "RS256")])).await;
    provider.enable_login(key, "k1");
    let hour = Duration::from_secs(3600);
    let (a, registry) = serve_instance(&provider, hour, None, Some(store.clone())).await;
    let (b, _) = serve_instance(&provider, hour, None, Some(store)).await;
    let site = Site {
        base: a,
        provider,
        http: reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .unwrap(),
    };
    let session = site.session("/page").await;
    let other = site.session("/page").await;
    assert_ne!(session, other, "each sign-in is its own session");
    let xhr = |cookie: &str| {
        [
            ("x-requested-with".to_owned(), "XMLHttpRequest".to_owned()),
            (COOKIE.as_str().to_owned(), cookie.to_owned()),
        ]
    };
    let on_b = |cookie: String| {
        let (site, b) = (&site, &b);
        async move {
            let headers = xhr(&cookie);
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            site.get(&format!("{b}/page"), &headers).await
        }
    };
    assert_eq!(on_b(session.clone()).await.status(), 200);
    // Sign out on A with the first session.
    let res = site
        .get("/auth/logout", &[(COOKIE.as_str(), &session)])
        .await;
    assert_eq!(res.status(), 302);
    // The copy of the old cookie is refused on B within a second: 401 for XHR, the cookie
    // cleared ...
    let res =
        eventually(|| async { Some(on_b(session.clone()).await).filter(|r| r.status() == 401) })
            .await;
    assert!(set_cookies(&res).contains(&"idp_session=".to_owned()));
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer realm=\"jwtgate\", error=\"invalid_token\", error_description=\"the session was signed out\""
    );
    // ... a navigation is sent to sign in again, and a public route sees it as anonymous.
    let res = site.navigate(&format!("{b}/page"), &session).await;
    assert_eq!(res.status(), 302);
    assert!(
        location(&res).starts_with(&site.provider.issuer()),
        "{}",
        location(&res)
    );
    let res = site.navigate(&format!("{b}/public"), &session).await;
    assert_eq!(res.status(), 200);
    assert!(set_cookies(&res).contains(&"idp_session=".to_owned()));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["uid"], Value::Null);
    // The other session of the same user stands.
    assert_eq!(on_b(other.clone()).await.status(), 200);
    // Revoking the subject from code ends it too; a sign-in after that works.
    registry
        .revoker()
        .revoke("idp", Target::subject_now("ada"))
        .await
        .unwrap();
    eventually(|| async { (on_b(other.clone()).await.status() == 401).then_some(()) }).await;
    // Credentials issued at or before the revocation's second are refused: a sign-in within
    // that second is too, the next one passes (polled, at most 3 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let again = site.session("/page").await;
        match on_b(again).await.status().as_u16() {
            200 => break,
            401 if std::time::Instant::now() < deadline => {}
            other => panic!("a sign-in after the revocation: {other}"),
        }
    }
}

#[tokio::test]
async fn only_navigations_without_credentials_are_redirected() {
    let site = oidc_site(Duration::from_secs(3600)).await;
    // API calls, XHR and non-navigation fetches keep their 401.
    for headers in [
        vec![(ACCEPT.as_str(), "application/json")],
        vec![
            (ACCEPT.as_str(), HTML),
            ("x-requested-with", "XMLHttpRequest"),
        ],
        vec![(ACCEPT.as_str(), HTML), ("sec-fetch-mode", "cors")],
    ] {
        let res = site.get("/page", &headers).await;
        assert_eq!(res.status(), 401, "{headers:?}");
        assert!(res.headers().get(LOCATION).is_none());
    }
    // Public routes never redirect.
    assert_eq!(
        site.get("/public", &[(ACCEPT.as_str(), HTML)])
            .await
            .status(),
        200
    );
    // A present but invalid credential: the 401 page, never a redirect (no loop).
    let res = site
        .get(
            "/page",
            &[(ACCEPT.as_str(), HTML), ("authorization", "Bearer a.b.c")],
        )
        .await;
    assert_eq!(res.status(), 401);
    assert!(res.headers().get(LOCATION).is_none());
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let res = site.navigate("/page", "idp_session=forged.x.y").await;
    assert_eq!(res.status(), 401);
    // A third redirect within a minute: the page instead.
    let res = site.navigate("/page", "jwtgate_bounce=1").await;
    assert_eq!(res.status(), 302);
    assert!(set_cookies(&res).contains(&"jwtgate_bounce=2".to_owned()));
    let res = site.navigate("/page", "jwtgate_bounce=2").await;
    assert_eq!(res.status(), 401);
    assert!(res.headers().get(LOCATION).is_none());
}

#[tokio::test]
async fn callback_refusals() {
    let site = oidc_site(Duration::from_secs(3600)).await;
    let (authorize, pending) = site.start("/page").await;
    let callback = site.sign_in(&authorize, "allow").await;
    // No pending login in this browser: 400.
    let res = site.get(&callback, &[]).await;
    assert_eq!(res.status(), 400);
    // Another state: 400, and no code is spent.
    let hits = site.provider.token_hits();
    let forged = callback.replace("state=", "state=x");
    assert_eq!(
        site.get(&forged, &[(COOKIE.as_str(), &pending)])
            .await
            .status(),
        400
    );
    assert_eq!(site.provider.token_hits(), hits);
    // The provider's error: the 401 page.
    let (authorize, pending) = site.start("/page").await;
    let denied = site.sign_in(&authorize, "deny").await;
    let res = site.get(&denied, &[(COOKIE.as_str(), &pending)]).await;
    assert_eq!(res.status(), 401);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("refused the sign-in (access_denied)")
    );
    // A code issued for another sign-in (another nonce), sent with this sign-in's state.
    let (first, first_pending) = site.start("/page").await;
    let (second, _) = site.start("/page").await;
    let second_callback = site.sign_in(&second, "allow").await;
    let code = query(&second_callback, "code").unwrap();
    let state = query(&first, "state").unwrap();
    let mixed = format!("{}/auth/callback?code={code}&state={state}", site.base);
    let res = site.get(&mixed, &[(COOKIE.as_str(), &first_pending)]).await;
    assert_eq!(res.status(), 401);
    // PKCE binds the code to the sign-in that asked for it: the provider refuses it.
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("did not accept the sign-in code")
    );
    // An ID token with another nonce (a replayed or injected token): the 401 page.
    site.provider.force_nonce(Some("someone-elses-nonce"));
    let (authorize, pending) = site.start("/page").await;
    let callback = site.sign_in(&authorize, "allow").await;
    let res = site.get(&callback, &[(COOKIE.as_str(), &pending)]).await;
    assert_eq!(res.status(), 401);
    assert!(set_cookies(&res).contains(&"jwtgate_login_idp=".to_owned()));
    assert!(res.text().await.unwrap().contains("(nonce)"));
    site.provider.force_nonce(None);
    // A tampered pending cookie is no pending login.
    let tampered = first_pending.replace('.', "x.");
    assert_eq!(
        site.get(&mixed, &[(COOKIE.as_str(), &tampered)])
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn return_targets_never_leave_the_app() {
    let site = oidc_site(Duration::from_secs(3600)).await;
    let return_to = |pending: &str| -> String {
        let value = pending.split_once('=').unwrap().1;
        let body = value.split('.').next().unwrap();
        let json: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
        json["return_to"].as_str().unwrap().to_owned()
    };
    for (asked, kept) in [
        ("/page?x=%2F%2Fevil", "/page?x=%2F%2Fevil"),
        ("//evil.example/", "/"),
        ("/%5Cevil.example", "/%5Cevil.example"),
    ] {
        let res = site.get(asked, &[(ACCEPT.as_str(), HTML)]).await;
        if res.status() == 404 {
            continue; // not a route of the app: axum's 404 before any redirect
        }
        let pending = set_cookies(&res)
            .into_iter()
            .find(|c| c.starts_with("jwtgate_login_"))
            .unwrap();
        assert_eq!(return_to(&pending), kept, "{asked}");
    }
    for asked in [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "evil",
    ] {
        let url = format!("/auth/login?return_to={}", url_encode(asked));
        let res = site.get(&url, &[]).await;
        assert_eq!(res.status(), 302, "{asked}");
        let pending = set_cookies(&res)
            .into_iter()
            .find(|c| c.starts_with("jwtgate_login_"))
            .unwrap();
        assert_eq!(return_to(&pending), "/", "{asked}");
    }
}

/// The claims of a JWT, unverified (to look at what jwtgate sent).
fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = URL_SAFE_NO_PAD.decode(payload).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn an_expired_session_is_cleared_and_the_browser_signs_in_again() {
    let site = oidc_site(Duration::from_secs(1)).await;
    let (authorize, pending) = site.start("/page").await;
    let callback = site.sign_in(&authorize, "allow").await;
    let res = site.get(&callback, &[(COOKIE.as_str(), &pending)]).await;
    let session = set_cookies(&res)
        .into_iter()
        .find(|c| c.starts_with("idp_session="))
        .unwrap();
    // The session lives a second: poll until it has run out (a deadline, not a fixed sleep).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let res = loop {
        let res = site.navigate("/page", &session).await;
        if res.status() != 200 || std::time::Instant::now() > deadline {
            break res;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(res.status(), 302, "an expired session counts as absent");
    assert!(set_cookies(&res).contains(&"idp_session=".to_owned()));
    // An API call with the same expired session: 401 without a redirect.
    let res = site.get("/page", &[(COOKIE.as_str(), &session)]).await;
    assert_eq!(res.status(), 401);
    // The session is cleared once: one `Set-Cookie` per name, with the cleared value.
    assert_eq!(set_cookies(&res), ["idp_session="]);
    assert_eq!(res.headers().get_all(SET_COOKIE).iter().count(), 1);
}

#[tokio::test]
async fn a_fronting_provider_gets_the_app_host_aud_and_path() {
    let key = TestKey::rsa();
    let provider = Provider::start(jwks([key.jwk("cf1", "RS256")])).await;
    let registry = Registry::builder()
        .validator(
            Validator::new("cf")
                .preset(Preset::cloudflare_access("acme", "aud-tag").base_url(provider.issuer())),
        )
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let auth = registry.login_service("cf").unwrap();
    let app = Router::new()
        .route("/app", get(whoami))
        .route_layer(registry.layer("jwt_cf").unwrap())
        .route_service("/auth/logout", auth);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let res = http
        .get(format!("http://{host}/app?x=1&y=a b"))
        .header(ACCEPT, HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(
        location(&res),
        format!(
            "{}/cdn-cgi/access/login/{host}?kid=aud-tag&redirect_url=%2Fapp%3Fx%3D1%26y%3Da%2520b",
            provider.issuer()
        )
    );
    let res = http
        .get(format!("http://{host}/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&res),
        format!("http://{host}/cdn-cgi/access/logout")
    );
    // With the cookie Access sets, the app is reachable.
    let mut claims = jwtgate_test::claims(&provider.issuer(), vec!["aud-tag"], 300);
    claims["email"] = "ada@example.com".into();
    let token = jwtgate_test::mint(&key, "RS256", serde_json::json!({"kid": "cf1"}), &claims);
    let res = http
        .get(format!("http://{host}/app"))
        .header(COOKIE, format!("CF_Authorization={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn logout_goes_to_a_configured_page_or_home() {
    use jwtgate::config::Config;
    let config = |logout: &str| {
        format!(
            r#"[[validator]]
name = "gw"
issuer = "https://gw.example"
audience = "api"
algorithm = "HS256"
secret = "thesecret-thesecret-thesecret-32"
user = {{ claim = "sub" }}
login = {{ url = "https://gw.example/oauth2/start?x=1", redirect_param = "rd" }}
{logout}
"#
        )
    };
    let head = |host: &str| {
        let req = http::Request::get("/auth/logout")
            .header("host", host)
            .body(())
            .unwrap();
        req.into_parts().0
    };
    let load = |text: &str| Config::from_toml_str(text, "gw.toml", None).and_then(|c| c.registry());
    let logout = |registry: Registry| async move {
        registry
            .login_service("gw")
            .unwrap()
            .handle(&head("app.example.com"))
            .await
    };
    let res = logout(
        load(&config(
            "logout = { url = \"https://gw.example/oauth2/sign_out\", redirect_param = \"rd\" }",
        ))
        .unwrap(),
    )
    .await;
    assert_eq!(res.status(), 302);
    assert_eq!(
        res.headers()["location"],
        "https://gw.example/oauth2/sign_out?rd=https%3A%2F%2Fapp.example.com%2F"
    );
    // No logout known: the app's home.
    let res = logout(load(&config("")).unwrap()).await;
    assert_eq!(res.headers()["location"], "/");
    // A login table must be one kind or the other.
    let err =
        load(&config("").replace("redirect_param = \"rd\" }", "client_id = \"x\" }")).unwrap_err();
    assert_eq!(err.field(), Some("login"));
    assert!(
        err.to_string()
            .starts_with("gw.toml:8:1: validator \"gw\": key `login`:"),
        "{err}"
    );
    // An OIDC login needs cookie mode for its session.
    let err = load(&config("").replace(
        "url = \"https://gw.example/oauth2/start?x=1\", redirect_param = \"rd\"",
        "client_id = \"web\", redirect_uri = \"https://app.example.com/auth/callback\"",
    ))
    .unwrap_err();
    assert!(err.message().contains("cookie mode"), "{err}");
    // A fronting login gets the path, encoded once.
    let registry = load(&config("")).unwrap();
    let req = http::Request::get("/auth/login?return_to=%2Fa%3Fb%3Dc")
        .body(())
        .unwrap();
    let res = registry
        .login_service("gw")
        .unwrap()
        .handle(&req.into_parts().0)
        .await;
    assert_eq!(
        res.headers()["location"],
        "https://gw.example/oauth2/start?x=1&rd=%2Fa%3Fb%3Dc"
    );
}

#[tokio::test]
async fn public_clients_send_their_id_confidential_ones_basic_credentials() {
    for (secret, expected) in [
        (None, "public web"),
        (Some("s3cret:with&chars"), "basic web:s3cret%3Awith%26chars"),
    ] {
        let site = oidc_site_with(Duration::from_secs(3600), secret).await;
        let (authorize, pending) = site.start("/page").await;
        let callback = site.sign_in(&authorize, "allow").await;
        let res = site.get(&callback, &[(COOKIE.as_str(), &pending)]).await;
        assert_eq!(res.status(), 302, "{secret:?}");
        assert_eq!(site.provider.client_auth(), [expected]);
    }
}

#[tokio::test]
async fn a_provider_that_cannot_be_reached_is_a_503_sign_in_page_not_a_401() {
    // An issuer nothing listens on: discovery cannot be had, so no sign-in can start.
    let gone = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", gone.local_addr().unwrap());
    drop(gone);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let registry = Registry::builder()
        .validator(
            Validator::new("idp")
                .issuer(&issuer)
                .audience("api")
                .algorithm(Algorithm::RS256)
                .key(KeySource::oidc_issuer(&issuer))
                .user(User::claim("sub"))
                .cookie(
                    CookieMode::new("idp_session")
                        .secure(false)
                        .secret("cookie-secret-cookie-secret-0032"),
                )
                .login(Login::oidc("web", format!("{base}/auth/callback"))),
        )
        .build()
        .unwrap();
    let auth = registry.login_service("idp").unwrap();
    let app = Router::new()
        .route("/page", get(whoami))
        .route_layer(registry.layer("jwt_idp").unwrap())
        .route_service("/auth/login", auth);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    // A navigation that should be sent to sign in (it answered 401 "no bearer token or cookie
    // was sent").
    let res = http
        .get(format!("{base}/page"))
        .header(ACCEPT, HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "10");
    assert!(res.headers().get(LOCATION).is_none());
    assert!(res.headers().get("www-authenticate").is_none());
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = res.text().await.unwrap();
    assert!(
        page.contains("<title>Sign-in unavailable</title>"),
        "{page}"
    );
    assert!(page.contains("sign-in is unavailable right now"), "{page}");
    // The sign-in route itself says the same.
    let res = http
        .get(format!("{base}/auth/login?return_to=/page"))
        .header(ACCEPT, HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "10");
    // An API call is not a navigation: its 401 is unchanged.
    let res = http.get(format!("{base}/page")).send().await.unwrap();
    assert_eq!(res.status(), 401);
}

/// The `sid` of a session cookie's claims (the provider session it came from).
fn cookie_claim(cookie: &str, claim: &str) -> Value {
    let value = cookie.split_once('=').unwrap().1;
    let payload = URL_SAFE_NO_PAD
        .decode(value.split('.').nth(1).unwrap())
        .unwrap();
    serde_json::from_slice::<Value>(&payload).unwrap()[claim].clone()
}

#[tokio::test]
async fn the_back_channel_logout_revokes_what_the_provider_names_and_nothing_else() {
    const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
    let store = Shared::new("login-back_channel");
    let key = TestKey::rsa();
    let provider = Provider::start(jwks([key.jwk("k1", "RS256")])).await;
    provider.enable_login(key.clone(), "k1");
    let hour = Duration::from_secs(3600);
    let (a, registry) = serve_instance(&provider, hour, None, Some(store.clone())).await;
    let (b, _) = serve_instance(&provider, hour, None, Some(store)).await;
    let site = Site {
        base: a.clone(),
        provider,
        http: reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .unwrap(),
    };
    let on_b = |cookie: &str| {
        let (site, b, cookie) = (&site, b.clone(), cookie.to_owned());
        async move {
            site.get(
                &format!("{b}/page"),
                &[
                    ("x-requested-with", "XMLHttpRequest"),
                    (COOKIE.as_str(), &cookie),
                ],
            )
            .await
            .status()
            .as_u16()
        }
    };
    let logout_token =
        |header: Value, claims: Value| jwtgate_test::mint(&key, "RS256", header, &claims);
    let iss = site.provider.issuer();
    let now = jwtgate_test::now();
    let claims = |sid: &Value, jti: &str| {
        json!({
            "iss": iss, "aud": "web", "iat": now, "exp": now + 120, "jti": jti,
            "sub": "ada", "sid": sid, "events": {EVENT: {}},
        })
    };
    let post = |body: String| {
        let (site, a) = (&site, a.clone());
        async move {
            site.http
                .post(format!("{a}/auth/backchannel-logout"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let form = |token: &str| format!("logout_token={token}");
    let entries = || registry.revocation_state().entries;

    // Each accepted `typ` revokes its own provider session, seen at once on B.
    for typ in [
        json!({"typ": "logout+jwt"}),
        json!({"typ": "JWT"}),
        json!({}),
    ] {
        let session = site.session("/page").await;
        let kept = site.session("/page").await;
        let sid = cookie_claim(&session, "sid");
        assert!(sid.as_str().unwrap().starts_with("sid-"), "{sid}");
        assert_eq!(on_b(&session).await, 200);
        let mut header = typ.clone();
        header["kid"] = json!("k1");
        let token = logout_token(header, claims(&sid, &format!("jti-{typ}")));
        let res = post(form(&token)).await;
        assert_eq!(res.status(), 200, "{typ}");
        assert_eq!(res.headers()["cache-control"], "no-store");
        eventually(|| async { (on_b(&session).await == 401).then_some(()) }).await;
        assert_eq!(
            on_b(&kept).await,
            200,
            "another provider session stands: {typ}"
        );
    }
    assert_eq!(entries(), 3);

    // Refused: 400 invalid_request, and nothing revoked.
    let session = site.session("/page").await;
    let sid = cookie_claim(&session, "sid");
    let header = json!({"kid": "k1", "typ": "logout+jwt"});
    let good = claims(&sid, "jti-good");
    let without = |name: &str| {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(name);
        c
    };
    let with = |name: &str, value: Value| {
        let mut c = good.clone();
        c[name] = value;
        c
    };
    let replayed = logout_token(header.clone(), claims(&sid, "jti-{\"typ\":\"JWT\"}"));
    let mut bad_signature = logout_token(header.clone(), good.clone());
    bad_signature.push('A');
    let cases: Vec<(&str, String)> = vec![
        ("replayed jti", replayed),
        (
            "nonce",
            logout_token(header.clone(), with("nonce", json!("n"))),
        ),
        (
            "wrong aud",
            logout_token(header.clone(), with("aud", json!("api"))),
        ),
        ("no events", logout_token(header.clone(), without("events"))),
        (
            "events without the member",
            logout_token(header.clone(), with("events", json!({"x": {}}))),
        ),
        (
            "event not an object",
            logout_token(header.clone(), with("events", json!({EVENT: true}))),
        ),
        ("no exp", logout_token(header.clone(), without("exp"))),
        ("no iat", logout_token(header.clone(), without("iat"))),
        ("no jti", logout_token(header.clone(), without("jti"))),
        (
            "typ at+jwt",
            logout_token(json!({"kid": "k1", "typ": "at+jwt"}), good.clone()),
        ),
        (
            "typ dpop+jwt",
            logout_token(json!({"kid": "k1", "typ": "dpop+jwt"}), good.clone()),
        ),
        ("bad signature", bad_signature),
        ("neither sid nor sub", {
            let mut c = without("sid");
            c.as_object_mut().unwrap().remove("sub");
            logout_token(header.clone(), c)
        }),
        (
            "another key",
            jwtgate_test::mint(&TestKey::rsa_alt(), "RS256", header.clone(), &good),
        ),
    ];
    for (case, token) in cases {
        let res = post(form(&token)).await;
        assert_eq!(res.status(), 400, "{case}");
        assert_eq!(
            res.json::<Value>().await.unwrap(),
            json!({"error": "invalid_request"}),
            "{case}"
        );
        assert_eq!(entries(), 3, "{case}: nothing revoked");
        assert_eq!(on_b(&session).await, 200, "{case}");
    }
    // Not a form, or two tokens: 400 too; a GET is no back-channel logout.
    let good_token = logout_token(header.clone(), good.clone());
    let res = site
        .http
        .post(format!("{a}/auth/backchannel-logout"))
        .header("content-type", "application/json")
        .body(form(&good_token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        post(format!("{}&{}", form(&good_token), form(&good_token)))
            .await
            .status(),
        400
    );
    assert_eq!(
        site.get("/auth/backchannel-logout", &[]).await.status(),
        404
    );
    assert_eq!(entries(), 3);
    // The good one still works after all that, once.
    assert_eq!(post(form(&good_token)).await.status(), 200);
    eventually(|| async { (on_b(&session).await == 401).then_some(()) }).await;
    assert_eq!(post(form(&good_token)).await.status(), 400, "its replay");

    // `sub` alone: every session of the subject up to the token's `iat`.
    let one = site.session("/page").await;
    let two = site.session("/page").await;
    let mut c = without("sid");
    c["jti"] = json!("jti-sub");
    c["iat"] = json!(jwtgate_test::now());
    let token_sub = logout_token(header.clone(), c);
    assert_eq!(post(form(&token_sub)).await.status(), 200);
    eventually(|| async { ((on_b(&one).await, on_b(&two).await) == (401, 401)).then_some(()) })
        .await;
}
