//! The quickstart in a real browser (headless Chromium): sign in through the demo identity
//! provider, come back to the page asked for, stay signed in across a reload and past the
//! tokens' lifetime (a refresh), sign out through the provider, be asked to sign in again, and
//! find a copy of the old cookie refused.

use jwtgate_tests::browser::Browser;
use tokio::io::{AsyncBufReadExt as _, BufReader};

/// Starts the quickstart on a free port; its base URL.
async fn quickstart() -> (tokio::process::Child, String) {
    // A fresh database: the demo user is new, so the profile form is asked for once.
    let db = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("quickstart-browser.db");
    let _ = std::fs::remove_file(&db);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--token-lifetime",
            "4",
            "--database",
        ])
        .arg(&db)
        .env("RUST_LOG", "off")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("quickstart runs");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next_line().await.unwrap().expect("a first line");
    let base = first
        .strip_prefix("jwtgate quickstart on ")
        .and_then(|rest| rest.split_whitespace().next())
        .expect("prints its address")
        .to_owned();
    // Keep reading so the quickstart never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, base)
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_and_out_through_the_demo_provider() {
    let Some(browser) = Browser::start("sign_in_and_out_through_the_demo_provider").await else {
        return;
    };
    let (_quickstart, base) = quickstart().await;
    let b = &browser;

    // The protected page sends the browser to the provider's sign-in.
    b.client.goto(&format!("{base}/?from=test")).await.unwrap();
    b.click("sign-in").await;
    // Registered on first sight with an empty profile: the profile form comes first.
    b.element("first_name").await;
    let url = b.url().await;
    assert!(
        url.starts_with(&format!("{base}/profile?next=%2F%3Ffrom%3Dtest")),
        "{url}"
    );
    b.fill("first_name", "Ada").await;
    b.fill("last_name", "Lovelace").await;
    b.click("save").await;
    // Back on the page first asked for, signed in, with the name just given.
    assert_eq!(b.text("name").await, "Ada Lovelace");
    assert_eq!(b.text("user").await, "ada@example.com");
    assert_eq!(b.url().await, format!("{base}/?from=test"));
    let shot = b.screenshot("quickstart-signed-in").await;
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 1000,
        "{}",
        shot.display()
    );
    let cookies = b.cookie_names().await;
    assert!(
        cookies.contains(&"quickstart_session".to_owned()),
        "{cookies:?}"
    );

    // A reload keeps the session: no new sign-in.
    b.client.refresh().await.unwrap();
    assert_eq!(b.text("user").await, "ada@example.com");
    assert_eq!(b.text("name").await, "Ada Lovelace");
    assert_eq!(b.url().await, format!("{base}/?from=test"));

    // The session outlives its 4 s tokens: reloads past their lifetime stay on the page, and
    // the page shows a new ID token, from a refresh grant.
    let first_iat: u64 = b.text("iat").await.parse().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        b.client.refresh().await.unwrap();
        assert_eq!(
            b.url().await,
            format!("{base}/?from=test"),
            "never sent to sign in"
        );
        assert_eq!(b.text("user").await, "ada@example.com");
        let iat: u64 = b.text("iat").await.parse().unwrap();
        if iat > first_iat {
            assert!(b.text("refreshes").await.parse::<u64>().unwrap() >= 1);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no refresh within 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    b.screenshot("quickstart-refreshed").await;

    // Keep a copy of the session cookie, as someone who took it from this browser would.
    let copied = b
        .client
        .get_named_cookie("quickstart_session")
        .await
        .expect("the session cookie");
    let copied = format!("quickstart_session={}", copied.value());
    let replay = || {
        let (copied, base) = (copied.clone(), base.clone());
        async move {
            reqwest::Client::new()
                .get(format!("{base}/whoami"))
                .header("cookie", copied)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(replay().await.status(), 200);

    // Signing out lands on the provider's end-session page...
    b.click("sign-out").await;
    assert_eq!(b.text("signed-out").await, "You are signed out");
    let url = b.url().await;
    assert!(url.contains("/logout?client_id=quickstart"), "{url}");
    // ... told which session ends (the refreshed ID token as the hint).
    assert!(url.contains("&id_token_hint=ey"), "{url}");
    // ...which leads back to the app, where the session is gone and a sign-in is asked again.
    b.click("return").await;
    b.element("sign-in").await;
    let url = b.url().await;
    assert!(url.contains("/authorize?response_type=code"), "{url}");
    // The copied cookie no longer works: the sign-out revoked the session server side.
    let res = replay().await;
    assert_eq!(res.status(), 401);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error_description"], "the session was signed out");
    b.client.goto(&format!("{base}/health")).await.unwrap();
    let cookies = b.cookie_names().await;
    assert!(
        !cookies.contains(&"quickstart_session".to_owned()),
        "{cookies:?}"
    );
    browser.stop().await;
}
