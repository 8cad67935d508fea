//! `jwtgate serve`'s forward-auth check behind real proxies: Debian's nginx and Caddy, each
//! with the README's config as written (only the ports changed to free ones), in front of a
//! small upstream app that records what reaches it, driven with curl.
//!
//! Without nginx, Caddy or curl these tests say they were skipped, except under CI
//! (`CI` set), where `.ci/run` installs them and a missing one is a failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jwtgate_test::{Provider, TestKey, claims, mint};
use serde_json::{Value, json};

use tokio::process::{Child, Command};

mod support;
const SECRET: &str = "thesecret-of-at-least-32-bytes!!";

/// The fenced block after `<!-- readme-config: NAME -->` in the README.
fn readme_config(name: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let marker = format!("<!-- readme-config: {name} -->");
    let at = readme
        .find(&marker)
        .unwrap_or_else(|| panic!("README has no {marker}"));
    let after = &readme[at + marker.len()..];
    let fence = after.find("```").expect("a fenced block after the marker");
    let body = &after[fence..];
    let body = &body[body.find('\n').expect("a fence line") + 1..];
    body[..body.find("\n```").expect("the fence's end") + 1].to_owned()
}

/// Whether `program` can run here; under CI a missing one fails the test.
fn have(program: &str) -> bool {
    let found = std::process::Command::new(program)
        .arg(if program == "nginx" { "-v" } else { "version" })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} is not installed (.ci/run installs it)"
        );
        eprintln!("skipped: {program} is not installed");
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jwtgate-proxies-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Waits until something accepts connections on `port`.
async fn listening(port: u16, what: &str, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{what} does not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The app behind the proxy: answers every request with its path and headers, and records
/// each one, so that a test can tell what reached it.
#[derive(Clone, Default)]
struct Upstream(Arc<Mutex<Vec<Value>>>);

impl Upstream {
    async fn start() -> (Self, u16) {
        let seen = Self::default();
        let record = seen.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let record = record.clone();
            async move {
                let headers: BTreeMap<String, String> = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                    .collect();
                let seen = json!({"path": req.uri().to_string(), "headers": headers});
                record.0.lock().unwrap().push(seen.clone());
                axum::Json(seen)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (seen, port)
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// `jwtgate serve` with `config` on `port`.
async fn jwtgate(dir: &Path, config: &str, port: u16) -> Child {
    let path = dir.join("jwtgate.toml");
    std::fs::write(&path, config).unwrap();
    let listen = format!("127.0.0.1:{port}");
    let (child, mut lines, _) = support::serve(&path, &["--listen", &listen], |_| {})
        .await
        .unwrap_or_else(|stderr| panic!("jwtgate serve did not start: {stderr}"));
    // Read what it prints from now on, so that a full pipe never stops it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

/// The README's ports replaced by the test's: jwtgate's, the app's and the proxy's.
fn with_ports(text: &str, jwtgate: u16, app: u16, proxy: u16) -> String {
    text.replace("127.0.0.1:8080", &format!("127.0.0.1:{jwtgate}"))
        .replace("127.0.0.1:3000", &format!("127.0.0.1:{app}"))
        .replace("listen 8000;", &format!("listen 127.0.0.1:{proxy};"))
        .replace(":8000 {", &format!("http://127.0.0.1:{proxy} {{"))
}

/// nginx with the README's `server` block, in a main context of the test's own (paths in
/// `dir`, one process, no daemon).
async fn nginx(dir: &Path, server: &str, port: u16) -> Child {
    let d = dir.display();
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{}}\nhttp {{\n    access_log off;\n    client_body_temp_path {d}/body;\n    \
             proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n    \
             uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n{server}}}\n"
        ),
    )
    .unwrap();
    let log = dir.join("error.log");
    let mut child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    listening(port, "nginx", &mut child, &log).await;
    child
}

/// Caddy with the README's Caddyfile, its admin endpoint off and its state in `dir`.
async fn caddy(dir: &Path, caddyfile: &str, port: u16) -> Child {
    let file = dir.join("Caddyfile");
    std::fs::write(&file, format!("{{\n\tadmin off\n}}\n{caddyfile}")).unwrap();
    let log = dir.join("caddy.log");
    let mut child = Command::new("caddy")
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&file)
        .env("HOME", dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    listening(port, "caddy", &mut child, &log).await;
    child
}

/// One answer, as curl printed it.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The headers the upstream app received (the app answers them as JSON).
    fn upstream_headers(&self) -> BTreeMap<String, String> {
        let body: Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not the app's answer ({e}): {self:?}"));
        serde_json::from_value(body["headers"].clone()).unwrap()
    }
}

/// `curl -s -i --path-as-is ARGS URL` (no redirects followed).
async fn curl(url: &str, args: &[&str]) -> Answer {
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-s", "-i", "--path-as-is", "--max-time", "20"])
        .args(args)
        .arg(url);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("curl {url}: no answer: {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("curl {url}: no status line in {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

const IDENTITY: [&str; 4] = [
    "x-auth-request-user",
    "x-auth-request-email",
    "x-auth-request-validator",
    "x-auth-request-partner",
];

/// The file jwtgate serves behind both proxies: an HS256 validator in cookie mode on `/app/*`
/// (a scope on `/app/admin/*`), anonymous-or-token on `/feed/*`, an OIDC sign-in on
/// `/portal/*`.
fn config(provider: &Provider, proxy: u16, sign_in: &str) -> String {
    format!(
        r#"[[validator]]
name = "demo"
issuer = "theissuer"
audience = "api"
algorithm = "HS256"
secret = "{SECRET}"
user = {{ claim = "sub" }}
partner = {{ by = "email", required = false }}
cookie = {{ name = "demo_session", secure = false, secret = "cookie-secret-cookie-secret-0032" }}

[[validator]]
name = "idp"
issuer = "{issuer}"
audience = "api"
algorithm = "RS256"
oidc_issuer = "{issuer}"
user = {{ claim = "sub" }}
cookie = {{ name = "idp_session", secure = false, secret = "cookie-secret-cookie-secret-0032" }}

[validator.login]
client_id = "web"
redirect_uri = "http://127.0.0.1:{proxy}/auth/callback"
post_logout_redirect_uri = "http://127.0.0.1:{proxy}/"

[directory]
partners = [{{ id = 17, email = "mark@example.com" }}]

[[route]]
path = "/app/*"
auth = "jwt_demo"
[[route]]
path = "/app/admin/*"
auth = "jwt_demo"
scopes = ["admin"]
[[route]]
path = "/feed/*"
auth = "public_or_jwt_demo"
[[route]]
path = "/portal/*"
auth = "jwt_idp"

[forward_auth]
sign_in = "{sign_in}"
"#,
        issuer = provider.issuer()
    )
}

fn token(sub: &str, extra: &Value) -> String {
    let mut c = claims("theissuer", "api", 300);
    c["sub"] = json!(sub);
    c["email"] = json!("mark@example.com");
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    mint(&TestKey::hmac(SECRET), "HS256", json!({}), &c)
}

/// What both proxies must do with tokens: identity to the app, forgeries never, the layer's
/// refusals through, denials of what cannot be judged. `other_family` is the header the
/// proxy does not set itself, which a client can add.
async fn judged_like_the_layer(base: &str, app: &Upstream, other_family: &str) {
    let bearer = format!("authorization: Bearer {}", token("u1", &json!({})));
    let forged: Vec<String> = IDENTITY.iter().map(|h| format!("{h}: forged")).collect();
    let mut forging: Vec<&str> = forged.iter().flat_map(|h| ["-H", h.as_str()]).collect();

    // A valid token: the app gets the identity, whatever the client sent under its names.
    let mut args = vec!["-H", bearer.as_str()];
    args.extend(forging.iter().copied());
    let res = curl(&format!("{base}/app/x?y=1"), &args).await;
    assert_eq!(res.status, 200, "{res:?}");
    let seen = res.upstream_headers();
    assert_eq!(seen["x-auth-request-user"], "u1");
    assert_eq!(seen["x-auth-request-email"], "mark@example.com");
    assert_eq!(seen["x-auth-request-validator"], "demo");
    assert_eq!(seen["x-auth-request-partner"], "17");
    assert_eq!(
        serde_json::from_str::<Value>(&res.body).unwrap()["path"],
        "/app/x?y=1"
    );
    // The cookie the accepted check set (cookie mode) reaches the browser.
    assert!(
        res.all("set-cookie")
            .iter()
            .any(|c| c.starts_with("demo_session=ey")),
        "{res:?}"
    );

    // Anonymous on a public route: none of the identity headers reaches the app, forged or
    // as a proxy's placeholder text.
    let res = curl(&format!("{base}/feed/x"), &forging).await;
    assert_eq!(res.status, 200, "{res:?}");
    assert!(res.header("set-cookie").is_none(), "{res:?}");
    let seen = res.upstream_headers();
    for h in IDENTITY {
        assert!(!seen.contains_key(h), "{h} reached the app: {seen:?}");
    }
    // A token without an email claim: the forged email does not stay.
    let no_email = {
        let mut c = claims("theissuer", "api", 300);
        c["sub"] = json!("u3");
        format!(
            "authorization: Bearer {}",
            mint(&TestKey::hmac(SECRET), "HS256", json!({}), &c)
        )
    };
    forging.extend(["-H", no_email.as_str()]);
    let seen = curl(&format!("{base}/feed/x"), &forging)
        .await
        .upstream_headers();
    assert_eq!(seen["x-auth-request-user"], "u3");
    assert!(!seen.contains_key("x-auth-request-email"), "{seen:?}");
    assert!(!seen.contains_key("x-auth-request-partner"), "{seen:?}");

    // Refusals pass through, and the app never sees the request.
    let before = app.count();
    let res = curl(&format!("{base}/app/x"), &[]).await;
    assert_eq!(res.status, 401, "{res:?}");
    assert_eq!(
        res.header("www-authenticate"),
        Some("Bearer realm=\"jwtgate\"")
    );
    let res = curl(
        &format!("{base}/app/x"),
        &["-H", "authorization: Bearer a.b.c"],
    )
    .await;
    assert_eq!(res.status, 401);
    assert!(
        res.header("www-authenticate")
            .is_some_and(|c| c.contains("error=\"invalid_token\"")),
        "{res:?}"
    );
    let res = curl(&format!("{base}/app/admin/x"), &["-H", &bearer]).await;
    assert_eq!(res.status, 403, "{res:?}");
    let admin = format!(
        "authorization: Bearer {}",
        token("u1", &json!({"scope": "admin"}))
    );
    let refused = [
        // No route: denied, even with a valid token.
        (
            format!("{base}/other"),
            vec!["-H".to_owned(), bearer.clone()],
        ),
        // The family the proxy does not set, added by the client, names a public path.
        (
            format!("{base}/app/x"),
            vec!["-H".to_owned(), format!("{other_family}: /feed/x")],
        ),
        // Paths the proxy and the app could read differently.
        (format!("{base}/feed/../app/x"), vec![]),
        (format!("{base}/feed/%2e%2e/app/x"), vec![]),
        (format!("{base}/feed%2F..%2Fapp/x"), vec![]),
    ];
    for (url, args) in &refused {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let res = curl(url, &args).await;
        assert_eq!(res.status, 403, "{url} {args:?}: {res:?}");
    }
    assert_eq!(app.count(), before, "a refused request reached the app");
    // The scope the admin route requires lets it through.
    let res = curl(&format!("{base}/app/admin/x"), &["-H", &admin]).await;
    assert_eq!(res.status, 200, "{res:?}");
}

/// A cookie jar: the name=value pairs the answers set, forgetting cleared ones.
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn keep(&mut self, res: &Answer) {
        for set in res.all("set-cookie") {
            let pair = set.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || set.contains("Max-Age=0") {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn header(&self) -> String {
        let pairs: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("cookie: {}", pairs.join("; "))
    }
}

fn query(url: &str, key: &str) -> String {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("{url} has no {key}"))
}

/// A browser signs in through the proxy at `base` (the provider's login included), reads a
/// page as `ada`, signs out, and is refused with its old cookie. `via_login` is where the
/// proxy sends a browser that must sign in: jwtgate's login path (nginx) or the provider.
async fn signs_in_and_out(base: &str, provider: &Provider, app: &Upstream, via_login: bool) {
    const HTML: &str = "accept: text/html";
    let mut jar = Jar::default();
    let page = format!("{base}/portal/x?a=1&b=2");
    let mut res = curl(&page, &["-H", HTML]).await;
    assert_eq!(res.status, 302, "{res:?}");
    if via_login {
        let login = res.header("location").unwrap().to_owned();
        assert_eq!(
            login,
            format!("{base}/auth/login?return_to=%2Fportal%2Fx%3Fa%3D1%26b%3D2")
        );
        res = curl(&login, &["-H", HTML]).await;
        assert_eq!(res.status, 302, "{res:?}");
    }
    jar.keep(&res);
    let authorize = res.header("location").unwrap().to_owned();
    assert!(
        authorize.starts_with(&format!("{}/authorize?", provider.issuer())),
        "{authorize}"
    );
    assert_eq!(
        query(&authorize, "redirect_uri"),
        format!("{base}/auth/callback")
    );
    let mut form: Vec<String> = [
        "client_id",
        "redirect_uri",
        "state",
        "nonce",
        "code_challenge",
    ]
    .iter()
    .map(|k| format!("{k}={}", query(&authorize, k)))
    .collect();
    form.extend(["username=ada".to_owned(), "decision=allow".to_owned()]);
    let mut args = Vec::new();
    for f in &form {
        args.extend(["--data-urlencode", f.as_str()]);
    }
    let res = curl(&format!("{}/authorize", provider.issuer()), &args).await;
    let callback = res.header("location").unwrap().to_owned();
    assert!(
        callback.starts_with(&format!("{base}/auth/callback?")),
        "{callback}"
    );
    let res = curl(&callback, &["-H", HTML, "-H", &jar.header()]).await;
    assert_eq!(res.status, 302, "{res:?}");
    assert_eq!(res.header("location"), Some("/portal/x?a=1&b=2"));
    jar.keep(&res);
    assert!(jar.0.contains_key("idp_session"), "{res:?}");
    let signed_in = jar.header();

    let res = curl(&page, &["-H", HTML, "-H", &signed_in]).await;
    assert_eq!(res.status, 200, "{res:?}");
    let seen = res.upstream_headers();
    assert_eq!(seen["x-auth-request-user"], "ada");
    assert_eq!(seen["x-auth-request-validator"], "idp");

    // Sign-out through the proxy: the cookie is cleared, and the old one no longer works.
    let res = curl(
        &format!("{base}/auth/logout"),
        &["-H", HTML, "-H", &signed_in],
    )
    .await;
    assert_eq!(res.status, 302, "{res:?}");
    assert!(
        res.header("location")
            .is_some_and(|l| l.starts_with(&format!("{}/logout?", provider.issuer()))),
        "{res:?}"
    );
    jar.keep(&res);
    assert!(!jar.0.contains_key("idp_session"), "{res:?}");
    let before = app.count();
    let res = curl(&page, &["-H", &signed_in]).await;
    assert_eq!(
        res.status, 401,
        "the signed-out cookie still works: {res:?}"
    );
    let res = curl(&page, &["-H", HTML, "-H", &signed_in]).await;
    assert_eq!(res.status, 302, "{res:?}");
    assert_eq!(app.count(), before, "a signed-out request reached the app");

    // The back-channel logout is routed to jwtgate too (a bad logout token: its 400).
    let res = curl(
        &format!("{base}/auth/backchannel-logout"),
        &["--data", "logout_token=not-a-jwt"],
    )
    .await;
    assert_eq!(res.status, 400, "{res:?}");
    assert!(res.body.contains("invalid_request"), "{res:?}");
}

async fn provider() -> Provider {
    let key = TestKey::rsa();
    let provider = Provider::start(jwtgate_test::jwks([key.jwk("k1", "RS256")])).await;
    provider.enable_login(key, "k1");
    provider
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_with_the_readme_config_in_front_of_an_app() {
    if !have("nginx") || !have("curl") {
        return;
    }
    let dir = temp_dir("nginx");
    let provider = provider().await;
    let (app, app_port) = Upstream::start().await;
    let (jwtgate_port, proxy) = (free_port(), free_port());
    let _jwtgate = jwtgate(&dir, &config(&provider, proxy, "401"), jwtgate_port).await;
    let server = with_ports(&readme_config("nginx.conf"), jwtgate_port, app_port, proxy);
    let _nginx = nginx(&dir, &server, proxy).await;
    let base = format!("http://127.0.0.1:{proxy}");
    judged_like_the_layer(&base, &app, "x-forwarded-uri").await;
    // An API call on a sign-in route keeps its 401 (error_page does not redirect it).
    let res = curl(&format!("{base}/portal/x"), &[]).await;
    assert_eq!(res.status, 401, "{res:?}");
    assert_eq!(
        res.header("www-authenticate"),
        Some("Bearer realm=\"jwtgate\"")
    );
    signs_in_and_out(&base, &provider, &app, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_with_the_readme_config_in_front_of_an_app() {
    if !have("caddy") || !have("curl") {
        return;
    }
    let dir = temp_dir("caddy");
    let provider = provider().await;
    let (app, app_port) = Upstream::start().await;
    let (jwtgate_port, proxy) = (free_port(), free_port());
    let _jwtgate = jwtgate(&dir, &config(&provider, proxy, "redirect"), jwtgate_port).await;
    let caddyfile = with_ports(&readme_config("Caddyfile"), jwtgate_port, app_port, proxy);
    let _caddy = caddy(&dir, &caddyfile, proxy).await;
    let base = format!("http://127.0.0.1:{proxy}");
    judged_like_the_layer(&base, &app, "x-original-uri").await;
    // The login redirect passes through Caddy as jwtgate wrote it, cookies included.
    let res = curl(&format!("{base}/portal/x"), &["-H", "accept: text/html"]).await;
    assert_eq!(res.status, 302, "{res:?}");
    assert!(
        res.all("set-cookie")
            .iter()
            .any(|c| c.starts_with("jwtgate_login_idp=")),
        "{res:?}"
    );
    signs_in_and_out(&base, &provider, &app, false).await;
}

#[test]
fn the_readme_jwtgate_config_loads() {
    let text = readme_config("jwtgate.toml");
    let config = jwtgate::config::Config::from_toml_str(&text, "README.md", None).unwrap();
    assert_eq!(config.forward_auth_path(), Some("/auth/check"));
    let paths: Vec<&str> = config.routes().iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/admin/*", "/*", "/public/*"]);
}
