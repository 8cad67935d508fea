//! jwtgate quickstart: `cargo run -p quickstart`.
//!
//! Starts a demo identity provider (its own RSA key, a JWKS, an OIDC discovery document and a
//! sign-in page on a random 127.0.0.1 port), then an app on 127.0.0.1:3000 whose validator
//! finds its keys by OIDC discovery, with one route per auth mode, and a page `/` that a
//! browser signs in to through the provider. Prints curl commands with a fresh token and the
//! page's address.
//!
//! Users live in an embedded SQLite file (`target/quickstart.db`, nothing to install): the
//! demo user is registered on first sight, and a browser is asked once to complete its
//! profile (first and last name) before it reaches the page it asked for.
//!
//! A sign-out revokes the session: a copy of the old cookie is refused afterwards (in this
//! process's memory, or on Redis with `--redis redis://127.0.0.1:6379/0`, shared by every
//! quickstart that uses it).
//!
//! Sessions outlive their tokens: the demo provider's tokens live 30 s (`--token-lifetime
//! SECS`), and the signed-in page shows its ID token being replaced by refreshes, without a
//! sign-in, while the session goes on (idle timeout 1 h, absolute 12 h).
//!
//! `--listen ADDR` changes the app's address; `--database PATH` the SQLite file;
//! `--self-test` runs the printed requests itself and exits (non-zero if any answer is not the
//! expected one).

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use jwtgate::forward_auth::{ForwardAuth, Peer, SignInAnswer};
use jwtgate::{
    Algorithm, CookieMode, Identity, KeySource, Partner, Registry, User, Validator,
    directory::UserMatch, identity::UserRecord, login::BACKCHANNEL_LOGOUT_PATH, login::LOGIN_PATH,
    login::LOGOUT_PATH, login::Login,
};
use jwtgate_redis::{RedisSettings, RedisStore};
use jwtgate_sqlx::SqlDirectory;
use jwtgate_sqlx::SqlSettings;
use jwtgate_test::{Provider, TestKey, claims, jwks, mint};
use serde_json::{Value, json};

const AUDIENCE: &str = "quickstart-api";
const KID: &str = "quickstart-key";

/// The signed-in page: who the browser is, how old its ID token is (a session outlives it),
/// and a way out.
fn home(identity: &Identity, user: &UserRecord, refreshes: usize, lifetime: u64) -> Html<String> {
    let email = user.email.as_deref().unwrap_or("someone");
    let name = user.full_name.as_deref().unwrap_or("");
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let iat = identity
        .payload()
        .get("iat")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>jwtgate quickstart</title></head>\
         <body><h1>Hello, <span id=\"name\">{}</span></h1><p>Signed in as <span id=\"user\">{}</span>, \
         user {} through {}.</p>\
         <p>This page's ID token was issued at <span id=\"iat\">{iat}</span> ({} s ago) and lives \
         {lifetime} s. The session outlives it: reload after that, and it is refreshed at the \
         provider without a sign-in (refresh grants so far: <span id=\"refreshes\">{refreshes}</span>).</p>\
         <p><a id=\"sign-out\" href=\"{LOGOUT_PATH}\">Sign out</a></p></body></html>",
        esc(name),
        esc(email),
        esc(&identity.user_id().to_string()),
        esc(identity.validator().as_str()),
        now.saturating_sub(iat),
    ))
}

async fn whoami(identity: Option<Identity>) -> Json<Value> {
    // Anonymous requests answer the same four keys, all null.
    Json(match identity {
        Some(id) => json!(id),
        None => json!({"validator": null, "uid": null, "partner_id": null, "payload": null}),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "jwtgate=info".into()),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let self_test = args.iter().any(|a| a == "--self-test");
    let listen: SocketAddr = match args.iter().position(|a| a == "--listen") {
        Some(i) => args
            .get(i + 1)
            .ok_or("--listen needs an address")?
            .parse()?,
        None => "127.0.0.1:3000".parse()?,
    };
    let database = match args.iter().position(|a| a == "--database") {
        Some(i) => args.get(i + 1).ok_or("--database needs a path")?.clone(),
        None => concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/quickstart.db").to_owned(),
    };
    // The file's folder may not exist yet (a fresh clone, or `CARGO_TARGET_DIR` set elsewhere
    // so that `<repo>/target` was never made): SQLite creates files, not folders.
    if let Some(dir) = std::path::Path::new(&database).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {} for the database: {e}", dir.display()))?;
    }
    let database_url = format!("sqlite://{database}");
    // Sign-outs: in this process's memory, or shared on Redis with `--redis URL` (run two
    // quickstarts on one Redis and a sign-out on one holds on the other).
    // The demo provider's token lifetime: short, so that the session visibly outlives it.
    let lifetime: u64 = match args.iter().position(|a| a == "--token-lifetime") {
        Some(i) => args
            .get(i + 1)
            .ok_or("--token-lifetime needs seconds")?
            .parse()?,
        None => 30,
    };
    let redis = match args.iter().position(|a| a == "--redis") {
        Some(i) => Some(args.get(i + 1).ok_or("--redis needs a URL")?.clone()),
        None => None,
    };

    // 1. The demo identity provider: JWKS at /certs, discovery at /.well-known/openid-configuration,
    //    a sign-in page at /authorize, tokens at /token, sign-out at /logout.
    let key = TestKey::rsa();
    let provider = Provider::start(jwks([key.jwk(KID, "RS256")])).await;
    provider.enable_login(key.clone(), KID);
    provider.set_token_lifetime(lifetime);
    let issuer = provider.issuer();
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let base = format!("http://{}", listener.local_addr()?);

    // 2. The users: an embedded SQLite database, created and migrated on start.
    let users = SqlDirectory::connect(&SqlSettings::new(&database_url)).await?;

    // 3. The registry: one validator that finds its keys through OIDC discovery and its users
    //    in the database, registering them on first sight.
    let store = match &redis {
        Some(url) => Some(RedisStore::new(
            RedisSettings::new(url.as_str()).prefix("quickstart:"),
        )?),
        None => None,
    };
    let builder = match store {
        Some(store) => Registry::builder().store(store),
        None => Registry::builder(),
    };
    let registry = builder
        .realm("quickstart")
        .users(users.clone())
        .directory(users.clone())
        .validator(
            Validator::new("demo")
                .issuer(issuer.clone())
                .audience(AUDIENCE)
                .algorithm(Algorithm::RS256)
                .key(KeySource::oidc_issuer(issuer.clone()))
                .user(
                    User::directory(UserMatch::Email)
                        .register(true)
                        .profile_url("/profile"),
                )
                .partner(Partner::by_email())
                // Browsers sign in through the provider; the session lives in cookie mode.
                .cookie(
                    CookieMode::new("quickstart_session")
                        .secret("quickstart-cookie-secret-32bytes")
                        .secure(false)
                        // Sessions start at the sign-in: the curl calls get no cookie.
                        .from_bearer(false),
                )
                .login(
                    Login::oidc("quickstart", format!("{base}/auth/callback"))
                        .post_logout_redirect_uri(format!("{base}/")),
                ),
        )
        .build()?;
    registry.prefetch().await?;
    // With Redis, requests wait for nothing: they are refused (503) until the mirror of the
    // store is loaded. The quickstart waits for that once, so its first curl works.
    let loading = std::time::Instant::now();
    while !registry.revocation_state().fresh {
        if loading.elapsed() > Duration::from_secs(10) {
            return Err("the revocation store (--redis) does not answer".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // 4. The app: one route per mode, the profile form, plus the key cache state.
    let health = {
        let registry = registry.clone();
        move || async move {
            let caches: Vec<Value> = registry
                .key_caches()
                .into_iter()
                .map(|c| json!({"source": c.source, "jwks_uri": c.jwks_uri, "key_ids": c.key_ids, "fetches": c.fetches, "last_error": c.last_error}))
                .collect();
            Json(json!({ "key_caches": caches }))
        }
    };
    let auth = registry.login_service("demo")?;
    let app = Router::new()
        .route(
            "/",
            get({
                let provider = provider.clone();
                move |identity: Identity, user: UserRecord| async move {
                    home(&identity, &user, provider.refresh_grants(), lifetime)
                }
            }),
        )
        .route("/whoami", get(whoami))
        .merge(jwtgate_sqlx::profile::router(users.clone(), "/profile"))
        .route_layer(registry.layer("jwt_demo")?)
        .route_service(LOGIN_PATH, auth.clone())
        .route_service("/auth/callback", auth.clone())
        .route_service(LOGOUT_PATH, auth.clone())
        .route_service(BACKCHANNEL_LOGOUT_PATH, auth)
        .merge(
            Router::new()
                .route("/hello", get(whoami))
                .route_layer(registry.layer("public_or_jwt_demo")?),
        )
        .route("/health", get(health))
        .merge(forward_auth(&registry)?);
    tokio::spawn(async move {
        // The peer's address: the forward-auth check believes only a proxy on this machine.
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let _ = axum::serve(listener, app).await;
    });

    let mut c = claims(&issuer, AUDIENCE, 3600);
    c["sub"] = json!("ada");
    c["email"] = json!("ada@example.com");
    let token = mint(&key, "RS256", json!({ "kid": KID }), &c);

    println!("jwtgate quickstart on {base} (demo issuer {issuer})\n");
    println!("# token required: 200 with the token, 401 without");
    println!("curl -i -H 'Authorization: Bearer {token}' {base}/whoami");
    println!("curl -i {base}/whoami\n");
    println!("# anonymous allowed: 200 either way, but a bad token is a 401");
    println!("curl -i {base}/hello");
    println!("curl -i -H 'Authorization: Bearer not-a-token' {base}/hello\n");
    println!("# key cache state");
    println!("curl -s {base}/health\n");
    println!(
        "# in a browser: {base}/ sends you to the demo sign-in, once to the profile form, and \
         back, with a sign-out link\n"
    );
    println!(
        "# sessions outlive their tokens: the demo provider's live {lifetime} s \
         (--token-lifetime); the signed-in page shows its ID token replaced by refreshes\n"
    );
    println!(
        "# a sign-out really signs out: copy the quickstart_session cookie from the browser \
         before you sign out, then replay it (401, \"the session was signed out\"; sign-outs \
         live {})",
        match &redis {
            Some(url) => format!("on Redis at {url}, shared by every quickstart using it"),
            None => "in this process (--redis URL shares them)".to_owned(),
        }
    );
    println!("curl -i -b 'quickstart_session=PASTE' {base}/whoami\n");
    println!(
        "# any app behind nginx: nginx asks {base}{CHECK_PATH} about each request, and sends \
         the app only those it accepts, with X-Auth-Request-User/-Email (the whole config: \
         README, \"Protect any app\")"
    );
    println!(
        "curl -i -H 'X-Original-URI: /orders/7' -H 'Authorization: Bearer {token}' \
         {base}{CHECK_PATH}"
    );
    let addr = base.trim_start_matches("http://");
    println!(
        "#   location = {CHECK_PATH} {{ internal; proxy_pass http://{addr}; proxy_set_header X-Original-URI $request_uri; }}"
    );
    println!("#   location /auth/ {{ proxy_pass http://{addr}; }}");
    println!(
        "#   location / {{ auth_request {CHECK_PATH}; \
         auth_request_set $user $upstream_http_x_auth_request_user; \
         proxy_set_header X-Auth-Request-User $user; proxy_pass http://127.0.0.1:9000; }}\n"
    );
    println!("# the users table ({database})");
    println!("cargo run -q -p jwtgate-cli -- users list --database-url {database_url}\n");

    if self_test {
        run_self_test(&base, &token).await?;
        let ada = users.user_by_email("ada@example.com").await?;
        let ada = ada.ok_or("the demo user was not registered")?;
        println!(
            "registered: user {} <{}>",
            ada.id,
            ada.email.as_deref().unwrap_or("")
        );
        println!("self-test passed");
        return Ok(());
    }
    println!("Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// Where a reverse proxy asks about the requests of another app.
const CHECK_PATH: &str = "/auth/check";

/// The forward-auth check at [`CHECK_PATH`]: every path needs a token except `/public/*`, and a
/// browser that should sign in is named the login (as nginx needs it).
fn forward_auth(registry: &Registry) -> Result<Router, jwtgate::Error> {
    let check = ForwardAuth::builder()
        .route("/*", registry.layer("jwt_demo")?)
        .route("/public/*", registry.layer("public_or_jwt_demo")?)
        .sign_in(SignInAnswer::Unauthorized)
        .build()?;
    let with_peer = |mut req: axum::extract::Request| async move {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        if let Some(addr) = peer {
            req.extensions_mut().insert(Peer(addr));
        }
        req
    };
    Ok(Router::new()
        .route_service(CHECK_PATH, check)
        .route_layer(axum::middleware::map_request(with_peer)))
}

async fn run_self_test(base: &str, token: &str) -> Result<(), Box<dyn std::error::Error>> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let checks = [
        ("/whoami", Some(token), 200),
        ("/whoami", None, 401),
        ("/hello", None, 200),
        ("/hello", Some("not-a-token"), 401),
        ("/health", None, 200),
    ];
    let mut ok = true;
    for (path, bearer, expected) in checks {
        let mut req = http.get(format!("{base}{path}"));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let body = res.text().await?;
        println!(
            "{path} ({}) -> {status} {body}",
            if bearer.is_some() {
                "token"
            } else {
                "no token"
            }
        );
        ok &= status == expected;
    }
    // The forward-auth check, asked as nginx asks it.
    let checks = [
        ("/orders/7", Some(token), 200),
        ("/orders/7", None, 401),
        ("/public/feed", None, 200),
    ];
    for (original, bearer, expected) in checks {
        let mut req = http
            .get(format!("{base}{CHECK_PATH}"))
            .header("x-original-uri", original);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let user = res
            .headers()
            .get("x-auth-request-email")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned();
        println!(
            "{CHECK_PATH} for {original} ({}) -> {status} X-Auth-Request-Email: {user}",
            if bearer.is_some() {
                "token"
            } else {
                "no token"
            }
        );
        ok &= status == expected && (bearer.is_none() || user == "ada@example.com");
    }
    if ok {
        Ok(())
    } else {
        Err("self-test failed".into())
    }
}
