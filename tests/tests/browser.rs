//! A fronting provider in a real browser (headless Chromium): a Cloudflare Access-style login
//! page on 127.0.0.1 sets `CF_Authorization` and sends the browser back; jwtgate only
//! redirects. Logout goes to `/cdn-cgi/access/logout` on the app's host, which the edge
//! (simulated here by a route of the app) answers by clearing the cookie.

use axum::Router;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use jwtgate::{Identity, Preset, Registry, Validator};
use jwtgate_test::{Provider, TestKey, jwks};
use jwtgate_tests::browser::Browser;

const AUD: &str = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";

async fn page(identity: Identity) -> Html<String> {
    Html(format!(
        "<h1>Hello, <span id=\"user\">{}</span></h1><a id=\"sign-out\" href=\"/auth/logout\">Sign out</a>",
        identity.user_id()
    ))
}

/// What Cloudflare's edge does at `/cdn-cgi/access/logout` on the app's domain.
async fn edge_logout() -> impl IntoResponse {
    (
        [(
            http::header::SET_COOKIE,
            "CF_Authorization=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax",
        )],
        Html(
            "<h1 id=\"logged-out\">You have been logged out of Access</h1><a id=\"again\" href=\"/app\">Back</a>",
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn cloudflare_style_sign_in_and_out() {
    let Some(browser) = Browser::start("cloudflare_style_sign_in_and_out").await else {
        return;
    };
    let key = TestKey::rsa();
    let provider = Provider::start(jwks([key.jwk("cf1", "RS256")])).await;
    provider.enable_login(key, "cf1");
    let registry = Registry::builder()
        .validator(
            Validator::new("cf")
                .preset(Preset::cloudflare_access("acme", AUD).base_url(provider.issuer())),
        )
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/app", get(page))
        .route_layer(registry.layer("jwt_cf").unwrap())
        .route_service("/auth/logout", registry.login_service("cf").unwrap())
        .route("/cdn-cgi/access/logout", get(edge_logout));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let b = &browser;

    b.client.goto(&format!("{base}/app?tab=1")).await.unwrap();
    // On the provider's Access login page for this app's host, with the AUD tag as kid.
    let url = b.url().await;
    assert!(
        url.starts_with(&format!(
            "{}/cdn-cgi/access/login/127.0.0.1:",
            provider.issuer()
        )),
        "{url}"
    );
    assert!(
        url.contains(&format!("kid={AUD}")) && url.contains("redirect_url=%2Fapp%3Ftab%3D1"),
        "{url}"
    );
    b.click("sign-in").await;
    // Back on the page asked for, signed in by the cookie the provider set.
    assert_eq!(b.text("user").await, "ada@example.com");
    assert_eq!(b.url().await, format!("{base}/app?tab=1"));
    assert!(
        b.cookie_names()
            .await
            .contains(&"CF_Authorization".to_owned())
    );
    b.screenshot("cloudflare-style-signed-in").await;

    // Sign out: through the app's logout to the edge's, which clears the cookie.
    b.click("sign-out").await;
    assert_eq!(
        b.text("logged-out").await,
        "You have been logged out of Access"
    );
    assert_eq!(b.url().await, format!("{base}/cdn-cgi/access/logout"));
    assert!(
        !b.cookie_names()
            .await
            .contains(&"CF_Authorization".to_owned())
    );
    // The page asks for a sign-in again.
    b.click("again").await;
    b.element("sign-in").await;
    assert!(b.url().await.contains("/cdn-cgi/access/login/"));
    browser.stop().await;
}
