//! End to end against a real OpenID provider (npm `oidc-provider`, in `tests/oidc-provider`,
//! installed by `.ci/run`): sign in through its login and consent pages, then end the session
//! at the provider; it posts a back-channel logout token to jwtgate, and the session cookie
//! is refused on both instances, which share their revocations (on Redis when
//! `JWTGATE_TEST_REDIS_URL` is set, else in memory).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use jwtgate::login::{BACKCHANNEL_LOGOUT_PATH, LOGIN_PATH, LOGOUT_PATH, Login};
use jwtgate::revocation::MemoryStore;
use jwtgate::{Algorithm, CookieMode, KeySource, Registry, RegistryBuilder, User, Validator};
use jwtgate_redis::{RedisSettings, RedisStore};
use jwtgate_tests::whoami;
use reqwest::header::{ACCEPT, LOCATION};
use tokio::io::{AsyncBufReadExt as _, BufReader};

const SECRET: &str = "web-secret-web-secret-web-secret";

fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oidc-provider")
}

/// `node provider.mjs` on a free port, once it listens; `None` (skipped) where the provider
/// is not installed, off CI.
async fn start_provider(
    redirects: &[String],
    backchannel: &str,
    token_ttl: u64,
) -> Option<(tokio::process::Child, String)> {
    let dir = provider_dir();
    if !dir.join("node_modules/oidc-provider").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install tests/oidc-provider (.ci/run runs npm ci there)"
        );
        eprintln!("oidc_provider: skipped, run `npm ci --prefix tests/oidc-provider` first");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new("node")
        .arg("provider.mjs")
        .current_dir(&dir)
        .env("PORT", port.to_string())
        .env("REDIRECT_URIS", redirects.join(","))
        .env("BACKCHANNEL_URI", backchannel)
        .env("TOKEN_TTL", token_ttl.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .expect("the provider starts within 20 s")
            .unwrap()
            .expect("the provider prints its address");
        if let Some(issuer) = line.strip_prefix("listening on ") {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Some((child, issuer.to_owned()));
        }
    }
}

fn store(builder: RegistryBuilder, prefix: &str, memory: &MemoryStore) -> RegistryBuilder {
    match std::env::var("JWTGATE_TEST_REDIS_URL") {
        Ok(url) => builder.store(RedisStore::new(RedisSettings::new(url).prefix(prefix)).unwrap()),
        Err(_) => builder.store(memory.clone()),
    }
}

/// One app instance at `base` (its listener already bound).
fn instance(issuer: &str, base: &str, prefix: &str, memory: &MemoryStore) -> (Registry, Router) {
    let builder = Registry::builder().validator(
        Validator::new("op")
            .issuer(issuer)
            .audience("web")
            .algorithm(Algorithm::RS256)
            .key(KeySource::oidc_issuer(issuer))
            .user(User::claim("sub"))
            .cookie(
                CookieMode::new("op_session")
                    .secure(false)
                    .secret("cookie-secret-cookie-secret-0032"),
            )
            .login(
                Login::oidc("web", format!("{base}/auth/callback"))
                    .client_secret(SECRET)
                    .post_logout_redirect_uri(format!("{base}/")),
            ),
    );
    let registry = store(builder, prefix, memory).build().unwrap();
    let auth = registry.login_service("op").unwrap();
    let app = Router::new()
        .route("/page", get(whoami))
        .route_layer(registry.layer("jwt_op").unwrap())
        .route_service(LOGIN_PATH, auth.clone())
        .route_service("/auth/callback", auth.clone())
        .route_service(LOGOUT_PATH, auth.clone())
        .route_service(BACKCHANNEL_LOGOUT_PATH, auth);
    (registry, app)
}

/// The first form of a page: its action and hidden fields.
fn form(html: &str) -> (String, Vec<(String, String)>) {
    let attr = |tag: &str, name: &str| {
        let at = tag.find(&format!("{name}=\""))? + name.len() + 2;
        Some(tag[at..].split('"').next()?.replace("&amp;", "&"))
    };
    let start = html.find("<form").expect("a form");
    let tag = &html[start..start + html[start..].find('>').unwrap()];
    let action = attr(tag, "action").expect("a form action");
    let body = &html[start..];
    let end = body.find("</form>").unwrap_or(body.len());
    let hidden = body[..end]
        .split("<input")
        .skip(1)
        .filter(|i| i.contains("type=\"hidden\""))
        .filter_map(|i| Some((attr(i, "name")?, attr(i, "value")?)))
        .collect();
    (action, hidden)
}

fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http") {
        location.to_owned()
    } else {
        format!("{base}{location}")
    }
}

/// Follows the browser's way from `url` through the provider's pages (login as `user`,
/// consent) until a response comes from `until`; that response.
async fn browse(
    http: &reqwest::Client,
    issuer: &str,
    mut url: String,
    user: &str,
    until: &str,
) -> reqwest::Response {
    for _ in 0..20 {
        let res = http
            .get(&url)
            .header(ACCEPT, "text/html")
            .send()
            .await
            .unwrap();
        if url.starts_with(until) {
            return res;
        }
        if res.status().is_redirection() {
            let location = res.headers()[LOCATION].to_str().unwrap().to_owned();
            let from = reqwest::Url::parse(&url).unwrap();
            url = absolute(&from.origin().ascii_serialization(), &location);
            continue;
        }
        let status = res.status();
        let html = res.text().await.unwrap();
        assert!(html.contains("<form"), "{url}: {status} {html}");
        let (action, mut fields) = form(&html);
        if html.contains("name=\"login\"") {
            fields.extend([
                ("login".into(), user.into()),
                ("password".into(), "any".into()),
            ]);
        }
        // The provider's sign-out page: "Yes, sign me out" (of the provider, every client).
        if action.ends_with("/session/end/confirm") {
            fields.push(("logout".into(), "yes".into()));
        }
        let res = http
            .post(absolute(issuer, &action))
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_redirection(), "{action}: {}", res.status());
        let location = res.headers()[LOCATION].to_str().unwrap().to_owned();
        url = absolute(issuer, &location);
    }
    panic!("no way to {until}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_the_session_at_the_provider_signs_the_browser_out_of_every_instance() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("jwtgate=debug")
        .with_test_writer()
        .try_init();
    let (la, lb) = (
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    );
    let a = format!("http://{}", la.local_addr().unwrap());
    let b = format!("http://{}", lb.local_addr().unwrap());
    let redirects = [format!("{a}/auth/callback"), format!("{b}/auth/callback")];
    let Some((_provider, issuer)) =
        start_provider(&redirects, &format!("{a}{BACKCHANNEL_LOGOUT_PATH}"), 3600).await
    else {
        return;
    };
    let prefix = format!("oidc-e2e:{}:{}:", std::process::id(), jwtgate_test::now());
    let memory = MemoryStore::new();
    let (registry_a, app_a) = instance(&issuer, &a, &prefix, &memory);
    let (registry_b, app_b) = instance(&issuer, &b, &prefix, &memory);
    tokio::spawn(async move { axum::serve(la, app_a).await });
    tokio::spawn(async move { axum::serve(lb, app_b).await });
    for r in [&registry_a, &registry_b] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !r.revocation_state().fresh {
            assert!(Instant::now() < deadline, "store not ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    // Sign in on A: the provider's login and consent pages, back to the callback.
    let res = browse(
        &browser,
        &issuer,
        format!("{a}/page"),
        "ada",
        &format!("{a}/auth/callback"),
    )
    .await;
    assert_eq!(res.status(), 302, "{}", res.text().await.unwrap());
    let session = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("op_session=") && !c.starts_with("op_session=;"))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    // A copy of the cookie, sent as an API client would, on both instances.
    let api = reqwest::Client::new();
    let status = |base: String| {
        let (api, session) = (&api, &session);
        async move {
            api.get(format!("{base}/page"))
                .header("cookie", session)
                .header("x-requested-with", "XMLHttpRequest")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        (status(a.clone()).await, status(b.clone()).await),
        (200, 200)
    );
    let before = registry_b.revocation_state().entries;

    // End the session at the provider (its own sign-out page): it posts a logout token to A.
    let res = browse(
        &browser,
        &issuer,
        format!("{issuer}/session/end"),
        "ada",
        &format!("{issuer}/session/end/success"),
    )
    .await;
    assert_eq!(res.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (on_a, on_b) = (status(a.clone()).await, status(b.clone()).await);
        if (on_a, on_b) == (401, 401) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {on_a}/{on_b} after the provider's logout"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(registry_b.revocation_state().entries, before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_outlives_the_providers_five_second_tokens_through_rotating_refreshes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let Some((_provider, issuer)) = start_provider(
        &[format!("{base}/auth/callback")],
        &format!("{base}{BACKCHANNEL_LOGOUT_PATH}"),
        5,
    )
    .await
    else {
        return;
    };
    let memory = MemoryStore::new();
    let prefix = format!(
        "oidc-refresh:{}:{}:",
        std::process::id(),
        jwtgate_test::now()
    );
    let (_registry, app) = instance(&issuer, &base, &prefix, &memory);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let res = browse(
        &browser,
        &issuer,
        format!("{base}/page"),
        "ada",
        &format!("{base}/auth/callback"),
    )
    .await;
    assert_eq!(res.status(), 302);
    // 15 s of use (three token lifetimes), a request every 300 ms: always answered. The
    // provider rotates refresh tokens, so a second refresh works only if the first one's new
    // refresh token replaced the old one.
    let started = Instant::now();
    let mut issued: Vec<u64> = Vec::new();
    while started.elapsed() < Duration::from_secs(15) {
        let res = browser
            .get(format!("{base}/page"))
            .header(ACCEPT, "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "after {:?}", started.elapsed());
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["uid"], "ada");
        let iat = body["payload"]["iat"].as_u64().unwrap();
        if issued.last() != Some(&iat) {
            issued.push(iat);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(issued.len() >= 3, "ID tokens seen: {issued:?}");
    // Signing out ends it: the provider is sent the session's ID token as the hint.
    let res = browser
        .get(format!("{base}{LOGOUT_PATH}"))
        .header(ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let end = res.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(end.starts_with(&format!("{issuer}/session/end?")), "{end}");
    assert!(end.contains("id_token_hint=ey"), "{end}");
}
