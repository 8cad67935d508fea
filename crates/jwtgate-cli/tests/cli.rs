//! The `jwtgate` binary: serve the issue's exact config shape, mint, inspect, and exit code 2
//! on bad input.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use jwtgate_test::{TestKey, claims, mint};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;

mod support;

use support::BIN;
const SECRET: &str = "thesecret-of-at-least-32-bytes!!";

const CONFIG: &str = r#"realm = "jwtgate"
[[validator]]
name = "demo"
issuer = "theissuer"
audience = ["auth_jwt_test_api"]
algorithm = "HS256"
secret = "thesecret-of-at-least-32-bytes!!"  # or secret_env = "VAR"
leeway_secs = 0
user = { static = 42 }          # or { claim = "sub" }
partner = { by = "email", required = false }
next = "other"                  # optional
cookie = { name = "demo_auth", path = "/", max_age_secs = 31536000, secure = true, secret_env = "COOKIE_SECRET" }  # optional

[[validator]]
name = "other"
issuer = "otherissuer"
audience = "auth_jwt_test_api"
algorithm = "HS256"
secret_env = "OTHER_SECRET"
user = { claim = "sub" }

[directory]
partners = [{ id = 17, email = "mark@example.com" }]
[[route]]
path = "/whoami"
auth = "jwt_demo"
[[route]]
path = "/public"
auth = "public_or_jwt_demo"
"#;

fn write_config(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jwtgate-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jwtgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `jwtgate ARGS`, which must exit with code 2; what it wrote to stderr.
fn exits_2<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = command().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    stderr
}

/// The secrets the example configs read from the environment.
const SECRETS: [(&str, &str); 2] = [
    ("COOKIE_SECRET", "cookie-secret-cookie-secret-0032"),
    ("OTHER_SECRET", "other-secret-other-secret-other!"),
];

fn command() -> Command {
    let mut c = Command::new(BIN);
    c.envs(SECRETS).env("RUST_LOG", "off");
    c
}

#[tokio::test]
async fn serve_answers_prefix_routes_and_the_forward_auth_check() {
    let text = CONFIG.replace("path = \"/whoami\"", "path = \"/app/*\"") + "[forward_auth]\n";
    let config = write_config("prefix", &text);
    let (_child, mut lines, base) = serve(&config, &["--listen", "127.0.0.1:0"], |_| {}).await;
    let mut printed = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        let done = line.contains("forward-auth check");
        printed.push(line);
        if done {
            break;
        }
    }
    assert!(
        printed.contains(&"  /app/* -> jwt_demo".to_owned()),
        "{printed:?}"
    );
    assert!(
        printed.contains(&"  /auth/check -> forward-auth check".to_owned()),
        "{printed:?}"
    );
    let token = mint(
        &TestKey::hmac(SECRET),
        "HS256",
        json!({}),
        &claims("theissuer", "auth_jwt_test_api", 300),
    );
    let http = reqwest::Client::new();
    // GET `path`, with the original URI a proxy names and a token, when given.
    let send = |path: &str, original: Option<&str>, token: Option<&str>| {
        let mut req = http.get(format!("{base}{path}"));
        if let Some(uri) = original {
            req = req.header("x-original-uri", uri);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let get = |path: &str, token: Option<&str>| send(path, None, token);
    // serve's own routes: `/app/*` is `/app/` and below, not `/app` or `/apps/x`.
    for path in ["/app/", "/app/x", "/app/x/y"] {
        let res = get(path, Some(&token)).await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.json::<Value>().await.unwrap()["uid"], 42, "{path}");
        assert_eq!(get(path, None).await.unwrap().status(), 401, "{path}");
    }
    for path in ["/app", "/apps/x"] {
        assert_eq!(
            get(path, Some(&token)).await.unwrap().status(),
            404,
            "{path}"
        );
    }
    // The check, asked as nginx asks it from this machine, judges by the same routes.
    let check = |uri: &str, token: Option<&str>| send("/auth/check", Some(uri), token);
    let res = check("/app/x", Some(&token)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-auth-request-user"], "42");
    assert_eq!(res.headers()["x-auth-request-validator"], "demo");
    assert_eq!(check("/app/x", None).await.unwrap().status(), 401);
    assert_eq!(check("/public", None).await.unwrap().status(), 200);
    assert_eq!(check("/apps/x", Some(&token)).await.unwrap().status(), 403);
    // Envoy's form: the original path after the check's own.
    let res = send("/auth/check/app/x", None, Some(&token)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-auth-request-user"], "42");
}

#[tokio::test]
async fn serve_answers_with_validator_uid_partner_and_payload() {
    let config = write_config("serve", CONFIG);
    let (mut child, _lines, base) = serve(&config, &["--listen", "127.0.0.1:0"], |_| {}).await;
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");

    let http = reqwest::Client::new();
    let mut c = claims("theissuer", "auth_jwt_test_api", 60);
    c["email"] = json!("mark@example.com");
    let token = mint(&TestKey::hmac(SECRET), "HS256", json!({}), &c);
    let res = http
        .get(format!("{base}/whoami"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("__Host-demo_auth=")
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["validator"], "demo");
    assert_eq!(body["uid"], 42);
    assert_eq!(body["partner_id"], 17);
    assert_eq!(body["payload"]["email"], "mark@example.com");

    // `next`: a token for "other" passes on the demo route, with uid from its `sub` claim.
    let mut c = claims("otherissuer", "auth_jwt_test_api", 60);
    c["sub"] = json!("u-9");
    let other = mint(
        &TestKey::hmac("other-secret-other-secret-other!"),
        "HS256",
        json!({}),
        &c,
    );
    let body: Value = http
        .get(format!("{base}/whoami"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&body["validator"], &body["uid"], &body["partner_id"]),
        (&json!("other"), &json!("u-9"), &Value::Null)
    );

    let res = http.get(format!("{base}/public")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"validator": null, "uid": null, "partner_id": null, "payload": null})
    );

    let res = http.get(format!("{base}/whoami")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer realm=\"jwtgate\""
    );
    child.kill().await.unwrap();
}

#[test]
fn bad_config_and_arguments_exit_2_with_a_message() {
    let config = write_config(
        "bad",
        &CONFIG.replace("leeway_secs = 0", "leeway_secs = 0\ncolour = \"red\""),
    );
    let out = command()
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("jwtgate.toml:9:1: validator \"demo\": unknown key `colour`; expected one of name, provider,"),
        "{err}"
    );

    // Each of these spun forever at full CPU (a missing key), or panicked (exit 101) when
    // axum mounted the route; now each is a message at its key and exit code 2.
    let cases = [
        (
            CONFIG.replace(
                "secret = \"thesecret-of-at-least-32-bytes!!\"  # or secret_env = \"VAR\"\n",
                "",
            ),
            "jwtgate.toml:2:1: validator \"demo\": key `secret`: a key (secret, secret_env,",
        ),
        (
            CONFIG.replace("issuer = \"theissuer\"\n", ""),
            "jwtgate.toml:2:1: validator \"demo\": key `issuer`: issuer is required",
        ),
        (
            CONFIG.replace(
                "user = { static = 42 }          # or { claim = \"sub\" }\n",
                "",
            ),
            "jwtgate.toml:2:1: validator \"demo\": key `user`: user (static id, claim or resolver",
        ),
        (
            CONFIG.replace("path = \"/whoami\"", "path = \"/app/*all\""),
            "jwtgate.toml:25:1: key `path`: route path \"/app/*all\": write a wildcard as `{*all}`",
        ),
        (
            CONFIG.replace("path = \"/public\"", "path = \"/healthz\""),
            "route path \"/healthz\" is the health check's (--health-path)",
        ),
        (
            format!("{CONFIG}[forward_auth]\npath = \"/whoami\"\n"),
            "[forward_auth] path \"/whoami\" is a [[route]]'s; give the check another path",
        ),
        (
            format!("{CONFIG}[forward_auth]\nsign_in = \"302\"\n"),
            "key `forward_auth.sign_in`: \"302\" is not a sign-in answer",
        ),
    ];
    for (i, (text, want)) in cases.into_iter().enumerate() {
        let config = write_config(&format!("missing-{i}"), &text);
        let mut child = command()
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                panic!("serve did not stop for case {i} ({want})");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(2), "{err}");
        assert!(err.contains(want), "case {i}: {err}");
    }

    let out = command()
        .args(["serve", "--config", "/nonexistent/jwtgate.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));

    let config = write_config("env", CONFIG);
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("COOKIE_SECRET")
        .env_remove("OTHER_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("environment variable"), "{err}");

    let out = command().args(["serve"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = command().args(["frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = command()
        .args(["mint", "--alg", "none", "--secret", SECRET])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("never accepted"));
}

/// The lines `inspect` prints for validator `name`: its verdict and its checks.
fn section<'a>(text: &'a str, name: &str) -> &'a str {
    let start = text
        .find(&format!("{name}: "))
        .unwrap_or_else(|| panic!("{name} in {text}"));
    let rest = &text[start..];
    let end = rest[1..]
        .find(|c: char| c != ' ')
        .and_then(|_| {
            rest.match_indices('\n')
                .map(|(i, _)| i + 1)
                .find(|&i| !rest[i..].starts_with("  "))
        })
        .unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn mint_then_inspect() {
    let config = write_config("inspect", CONFIG);
    let token = minted(&[
        "--secret",
        SECRET,
        "--iss",
        "theissuer",
        "--aud",
        "auth_jwt_test_api",
        "--email",
        "mark@example.com",
    ]);
    assert_eq!(token.split('.').count(), 3);

    let out = inspect(&config, &token);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("demo: accepted"), "{text}");
    assert!(
        // "other" expects another issuer: it says so without verifying the signature.
        text.contains("other: refused: token issuer not accepted"),
        "{text}"
    );

    let expired = minted(&[
        "--secret",
        SECRET,
        "--iss",
        "theissuer",
        "--aud",
        "auth_jwt_test_api",
        "--expires-in",
        "-10",
    ]);
    let out = inspect(&config, &expired);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("demo: refused: token expired"), "{text}");
    // The signature is judged apart from the claims: good, though the token expired.
    let demo = section(&text, "demo");
    assert!(demo.contains("  signature: ok\n"), "{demo}");
    assert!(demo.contains("  exp: refused: token expired\n"), "{demo}");
    assert!(
        demo.contains("  aud: ok\n") && demo.contains("  iss: ok\n"),
        "{demo}"
    );

    // Signed with another key, for another audience: both are said, each on its line (a
    // request stops at the audience and never says the key was wrong).
    let wrong = minted(&[
        "--secret",
        "not-the-secret-not-the-secret-32",
        "--iss",
        "theissuer",
        "--aud",
        "someone-else",
    ]);
    let out = inspect(&config, &wrong);
    let text = String::from_utf8_lossy(&out.stdout);
    let demo = section(&text, "demo");
    assert!(
        demo.starts_with("demo: refused: token audience not accepted\n"),
        "{demo}"
    );
    assert!(
        demo.contains("  signature: refused: token signature is invalid\n"),
        "{demo}"
    );
    assert!(
        demo.contains("  aud: refused: token audience not accepted\n"),
        "{demo}"
    );
    assert!(demo.contains("  exp: ok\n"), "{demo}");

    // A token whose signature and claims hold but that names no user: `serve` refuses it, and
    // `inspect` says so (it said "accepted": it stopped after the signature).
    let no_user = minted(&[
        "--secret",
        "other-secret-other-secret-other!",
        "--iss",
        "otherissuer",
        "--aud",
        "auth_jwt_test_api",
    ]);
    let out = inspect(&config, &no_user);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("other: refused: token has no usable user claim"),
        "{text}"
    );

    let key = std::env::temp_dir().join(format!("jwtgate-cli-{}-rsa.pem", std::process::id()));
    std::fs::write(&key, TestKey::rsa().private_pem()).unwrap();
    mint_with_key_file(
        &[
            "--alg", "RS256", "--kid", "k1", "--iss", "x", "--aud", "a", "--aud", "b",
        ],
        &key,
    );
}

#[tokio::test]
async fn serve_prefetch_fails_on_a_mismatched_oidc_issuer() {
    let provider =
        jwtgate_test::Provider::start(jwtgate_test::jwks([TestKey::rsa().jwk("k1", "RS256")]))
            .await;
    provider.set_discovery_issuer("https://evil.example");
    let config = write_config(
        "prefetch",
        &format!(
            r#"[[validator]]
name = "idp"
issuer = "{issuer}"
audience = "api"
algorithm = "RS256"
oidc_issuer = "{issuer}"
user = {{ claim = "sub" }}
remote = {{ timeout_ms = 2000 }}
[[route]]
path = "/x"
auth = "jwt_idp"
"#,
            issuer = provider.issuer()
        ),
    );
    let out = tokio::process::Command::from(command())
        .args(["serve", "--prefetch", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("OIDC discovery issuer mismatch") && err.contains("https://evil.example"),
        "{err}"
    );
}

#[tokio::test]
async fn inspect_shows_key_cache_state_and_files_resolve_next_to_the_config() {
    let rsa = TestKey::rsa();
    let provider =
        jwtgate_test::Provider::start(jwtgate_test::jwks([rsa.jwk("k1", "RS256")])).await;
    let config = write_config(
        "files",
        &format!(
            r#"[[validator]]
name = "remote"
issuer = "{issuer}"
audience = "api"
algorithm = "RS256"
jwks_url = "{jwks}"
user = {{ static = 1 }}

[[validator]]
name = "pem"
issuer = "{issuer}"
audience = "api"
algorithm = "RS256"
public_key_file = "keys/rsa.pem"
user = {{ static = 2 }}

[[validator]]
name = "set"
issuer = "{issuer}"
audience = "api"
algorithm = "RS256"
jwks_file = "keys/jwks.json"
user = {{ static = 3 }}
"#,
            issuer = provider.issuer(),
            jwks = provider.jwks_url()
        ),
    );
    let keys = config.parent().unwrap().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(keys.join("rsa.pem"), rsa.public_pem()).unwrap();
    std::fs::write(
        keys.join("jwks.json"),
        jwtgate_test::jwks([rsa.jwk("k1", "RS256")]).to_string(),
    )
    .unwrap();
    let token = mint(
        &rsa,
        "RS256",
        json!({"kid": "k1"}),
        &claims(&provider.issuer(), "api", 60),
    );
    let out = tokio::process::Command::from(command())
        .args(["inspect", "--config"])
        .arg(&config)
        .arg(&token)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in ["remote: accepted", "pem: accepted", "set: accepted"] {
        assert!(text.contains(line), "{text}");
    }
    let cache_line = format!(
        "keys {}: kids [\"k1\"], fetches 1, failures 0, last error none",
        provider.jwks_url()
    );
    assert!(text.contains(&cache_line), "{text}");

    std::fs::remove_file(keys.join("rsa.pem")).unwrap();
    let out = command()
        .args(["inspect", "--config"])
        .arg(&config)
        .arg(&token)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("validator \"pem\"") && err.contains("rsa.pem"),
        "{err}"
    );
}

#[test]
fn mint_and_inspect_an_rfc_9864_ed25519_token() {
    let config = write_config(
        "ed25519",
        &format!(
            "[[validator]]\nname = \"ed\"\nissuer = \"x\"\naudience = \"a\"\nalgorithm = \"Ed25519\"\npublic_key_pem = \"\"\"{}\"\"\"\nuser = {{ claim = \"sub\" }}\n",
            TestKey::ed25519().public_pem()
        ),
    );
    let key = config.parent().unwrap().join("ed.pem");
    std::fs::write(&key, TestKey::ed25519().private_pem()).unwrap();
    let token = mint_with_key_file(
        &["--alg", "Ed25519", "--iss", "x", "--aud", "a", "--sub", "u"],
        &key,
    );
    let header = token.split('.').next().unwrap();
    assert!(
        String::from_utf8(jwtgate_test_b64_decode(header))
            .unwrap()
            .contains("\"alg\":\"Ed25519\"")
    );
    let out = command()
        .args(["inspect", "--config"])
        .arg(&config)
        .arg(token.trim())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ed: accepted\n  signature: ok\n  sub, jti: ok\n  iss: ok\n  aud: ok\n  exp: ok\n  iat: ok"
    );
}

/// Runs `jwtgate mint ARGS --key-file KEY`, which must succeed, and returns the token.
/// `jwtgate mint ARGS`, which must succeed: the token.
fn minted(args: &[&str]) -> String {
    let out = command().arg("mint").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `jwtgate inspect --config CONFIG TOKEN`.
fn inspect(config: &std::path::Path, token: &str) -> std::process::Output {
    command()
        .args(["inspect", "--config"])
        .arg(config)
        .arg(token)
        .output()
        .unwrap()
}

fn mint_with_key_file(args: &[&str], key: &std::path::Path) -> String {
    let out = command()
        .arg("mint")
        .args(args)
        .arg("--key-file")
        .arg(key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Starts `jwtgate serve --config CONFIG ARGS` with the secrets `command()` sets (after
/// `configure`): the child, its remaining stdout lines, and the base URL it prints.
async fn serve(
    config: &std::path::Path,
    args: &[&str],
    configure: impl FnOnce(&mut tokio::process::Command),
) -> (tokio::process::Child, support::Stdout, String) {
    support::serve(config, args, |cmd| {
        cmd.envs(SECRETS);
        configure(cmd);
    })
    .await
    .unwrap_or_else(|stderr| panic!("jwtgate serve printed no address: {stderr}"))
}

fn jwtgate_test_b64_decode(part: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap()
}

#[tokio::test]
async fn serve_enforces_route_scopes_and_roles_exposes_metrics_and_health() {
    let config = write_config(
        "authz",
        &format!(
            r#"realm = "api"
[[validator]]
name = "kc"
issuer = "theissuer"
audience = "api"
algorithm = "HS256"
secret = "{SECRET}"
user = {{ claim = "sub" }}

[[route]]
path = "/admin"
auth = "jwt_kc"
scopes = ["admin:write"]
roles = ["admin"]

[[route]]
path = "/read"
auth = "public_or_jwt_kc"
any_scopes = ["read", "admin:write"]

[[route]]
path = "/edit"
auth = "jwt_kc"
any_roles = ["owner", {{ client = "my-app", role = "editor" }}]
"#
        ),
    );
    let metrics = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let metrics_addr = metrics.local_addr().unwrap();
    drop(metrics);
    let metrics_arg = metrics_addr.to_string();
    let (_child, _lines, base) = serve(
        &config,
        &["--listen", "127.0.0.1:0", "--metrics", &metrics_arg],
        |_| {},
    )
    .await;
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let http = reqwest::Client::new();
    let token = |extra: Value| {
        let mut c = claims("theissuer", "api", 60);
        c["sub"] = json!("ada");
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        mint(&TestKey::hmac(SECRET), "HS256", json!({}), &c)
    };
    let get = |path: &str, token: Option<String>| {
        let mut req = http.get(format!("{base}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let both = token(json!({"scope": "admin:write", "realm_access": {"roles": ["admin"]}}));
    assert_eq!(get("/admin", Some(both)).await.unwrap().status(), 200);
    let res = get("/admin", Some(token(json!({"scope": "admin:write"}))))
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"admin\""
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(get("/admin", None).await.unwrap().status(), 401);
    assert_eq!(get("/read", None).await.unwrap().status(), 200);
    assert_eq!(
        get("/read", Some(token(json!({"scope": "read"}))))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        get("/read", Some(token(json!({"scope": "x"}))))
            .await
            .unwrap()
            .status(),
        403
    );
    // A client role named in the file passes only as that client's role: not as a realm role
    // spelled `my-app:editor`, not as client `my` with role `app:editor`.
    for (roles, want) in [
        (
            json!({"resource_access": {"my-app": {"roles": ["editor"]}}}),
            200,
        ),
        (json!({"realm_access": {"roles": ["my-app:editor"]}}), 403),
        (
            json!({"resource_access": {"my": {"roles": ["app:editor"]}}}),
            403,
        ),
        (json!({"roles": ["owner"]}), 200),
    ] {
        let status = get("/edit", Some(token(roles.clone())))
            .await
            .unwrap()
            .status();
        assert_eq!(status, want, "{roles}");
    }
    // gRPC runs over HTTP/2 only: an HTTP/1.1 request that merely says `application/grpc`
    // gets the plain 401, never a 200 with grpc-status that hides the refusal.
    let res = http
        .post(format!("{base}/admin"))
        .header("content-type", "application/grpc")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    assert!(res.headers().get("grpc-status").is_none());

    let health = get("/healthz", None).await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");

    let text = http
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "jwtgate_requests_total{validator=\"kc\",outcome=\"accepted\",kind=\"none\"} 4",
        "jwtgate_requests_total{validator=\"kc\",outcome=\"refused\",kind=\"insufficient_scope\"} 4",
        "jwtgate_requests_total{validator=\"kc\",outcome=\"refused\",kind=\"missing_credentials\"} 2",
        "jwtgate_requests_total{validator=\"kc\",outcome=\"anonymous\",kind=\"none\"} 1",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    assert!(
        text.contains("jwtgate_authentication_duration_seconds"),
        "{text}"
    );
}

#[tokio::test]
async fn healthz_is_503_with_reasons_while_keys_cannot_be_had() {
    let config = write_config(
        "health",
        r#"[[validator]]
name = "idp"
issuer = "https://idp.example"
audience = "api"
algorithm = "RS256"
jwks_url = "http://127.0.0.1:9/certs"
user = { claim = "sub" }
[[route]]
path = "/x"
auth = "jwt_idp"
"#,
    );
    let (mut child, _lines, base) = serve(
        &config,
        &["--listen", "127.0.0.1:0", "--health-path", "/status"],
        |c| {
            c.env("RUST_LOG", "jwtgate=info").stderr(Stdio::piped());
        },
    )
    .await;
    let res = reqwest::get(format!("{base}/status")).await.unwrap();
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["key_caches"][0]["source"], "http://127.0.0.1:9/certs");
    assert_eq!(body["key_caches"][0]["usable"], false);
    // A request makes the cache fetch (and fail); the warning reaches stderr without colour
    // codes, since stderr is a pipe here.
    let token = mint(
        &TestKey::rsa(),
        "RS256",
        json!({"kid": "k1"}),
        &claims("https://idp.example", "api", 60),
    );
    let res = reqwest::Client::new()
        .get(format!("{base}/x"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    child.kill().await.unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(stderr.contains("WARN"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

#[tokio::test]
async fn serve_runs_the_oidc_sign_in_from_config() {
    let key = TestKey::rsa();
    let provider =
        jwtgate_test::Provider::start(jwtgate_test::jwks([key.jwk("k1", "RS256")])).await;
    provider.enable_login(key, "k1");
    let listen = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listen.local_addr().unwrap();
    drop(listen);
    let config = write_config(
        "login",
        &format!(
            r#"[[validator]]
name = "idp"
issuer = "{issuer}"
audience = "api"
algorithm = "RS256"
oidc_issuer = "{issuer}"
user = {{ claim = "sub" }}
cookie = {{ name = "idp_session", secure = false, secret = "cookie-secret-cookie-secret-0032" }}

[validator.login]
client_id = "web"
redirect_uri = "http://{addr}/auth/callback"
post_logout_redirect_uri = "http://{addr}/"

[[route]]
path = "/me"
auth = "jwt_idp"
"#,
            issuer = provider.issuer()
        ),
    );
    let listen = addr.to_string();
    let (_child, mut lines, base) = serve(&config, &["--listen", &listen], |_| {}).await;
    assert_eq!(base, format!("http://{addr}"));
    let mut printed = Vec::new();
    for _ in 0..3 {
        printed.push(lines.next_line().await.unwrap().unwrap());
    }
    assert!(
        printed.iter().any(|l| l.contains(
            "/auth/login, /auth/logout, /auth/callback, /auth/backchannel-logout -> sign-in for idp"
        )),
        "{printed:?}"
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // A browser is sent to the provider; an API call is not.
    let res = http
        .get(format!("http://{addr}/me"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!(
            "{}/authorize?response_type=code&client_id=web",
            provider.issuer()
        )),
        "{location}"
    );
    assert_eq!(
        http.get(format!("http://{addr}/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // Logout from JSON callers names the provider's end-session endpoint.
    let res = http
        .get(format!("http://{addr}/auth/logout"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert!(
        body["redirect_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/logout?client_id=web", provider.issuer()))
    );
}

#[tokio::test]
async fn serve_registers_users_in_the_config_database_and_users_list_and_show_read_them() {
    let dir = std::env::temp_dir().join(format!("jwtgate-cli-{}-users", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("users.db");
    let _ = std::fs::remove_file(&db);
    let config = write_config(
        "directory",
        &format!(
            r#"[[validator]]
name = "app"
issuer = "theissuer"
audience = "api"
algorithm = "HS256"
secret = "{SECRET}"
user = {{ directory = "email" }}
register = true
profile_url = "/profile"
[directory]
url = "sqlite://{}"
[[route]]
path = "/whoami"
auth = "jwt_app"
"#,
            db.display()
        ),
    );
    let (_child, _lines, base) = serve(&config, &["--listen", "127.0.0.1:0"], |_| {}).await;
    let mut c = claims("theissuer", "api", 300);
    c["sub"] = json!("s1");
    c["email"] = json!("Neo@Example.com");
    let token = mint(&TestKey::hmac(SECRET), "HS256", json!({}), &c);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let body: Value = http
        .get(format!("{base}/whoami"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["uid"], 1, "{body}");
    assert_eq!(body["user"]["email"], "Neo@Example.com");
    assert_eq!(body["user"]["profile_complete"], false);
    // A browser is sent to the profile form, which `serve` mounts at profile_url.
    let nav = http
        .get(format!("{base}/whoami"))
        .bearer_auth(&token)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(nav.status(), 302);
    assert_eq!(nav.headers()["location"], "/profile?next=%2Fwhoami");
    let form = http
        .get(format!("{base}/profile?next=%2Fwhoami"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    assert!(form.text().await.unwrap().contains("name=\"first_name\""));

    // Operators read the rows, by config or by URL; read-only.
    let out = command()
        .args(["users", "list", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("Neo@Example.com") && stdout.contains("incomplete"),
        "{stdout}"
    );
    assert!(stdout.contains("1 user(s)"), "{stdout}");
    let url = format!("sqlite://{}", db.display());
    let out = command()
        .args(["users", "show", "--database-url", &url, " neo@example.COM "])
        .output()
        .unwrap();
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["id"], 1);
    assert_eq!(shown["email"], "Neo@Example.com");
    let out = command()
        .args(["users", "show", "--database-url", &url, "42"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // A database that does not exist is not created by a read.
    let missing = dir.join("missing.db");
    let out = command()
        .args(["users", "list", "--database-url"])
        .arg(format!("sqlite://{}", missing.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("directory.url: cannot connect"));
    assert!(!missing.exists());
}

#[test]
fn serve_with_an_unreachable_database_exits_2_naming_the_setting() {
    let config = write_config(
        "unreachable",
        &format!(
            "{}\n[directory]\nurl = \"postgres://app:secretpw@127.0.0.1:1/app\"\ntimeout_secs = 2\n",
            CONFIG
                .replace(
                    "user = { static = 42 }          # or { claim = \"sub\" }",
                    "user = { directory = \"email\" }"
                )
                .replace(
                    "[directory]\npartners = [{ id = 17, email = \"mark@example.com\" }]\n",
                    ""
                )
        ),
    );
    let out = command()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("directory.url: cannot connect to postgres://app:***@127.0.0.1:1/app"),
        "{stderr}"
    );
    assert!(!stderr.contains("secretpw"), "{stderr}");
}

#[tokio::test]
async fn revoke_writes_to_the_store_every_serve_instance_follows() {
    let Ok(url) = std::env::var("JWTGATE_TEST_REDIS_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set JWTGATE_TEST_REDIS_URL"
        );
        eprintln!("revoke: skipped, JWTGATE_TEST_REDIS_URL is not set");
        return;
    };
    let prefix = format!("cli-test:{}:{}:", std::process::id(), jwtgate_test::now());
    let text = format!(
        "{CONFIG}\n[store]\nurl = \"{url}\"\nprefix = \"{prefix}\"\nmax_staleness_secs = 3\n"
    );
    let config = write_config("revoke", &text);
    let (_a, _a_out, a) = serve(&config, &["--listen", "127.0.0.1:0"], |_| {}).await;
    let (_b, _b_out, b) = serve(&config, &["--listen", "127.0.0.1:0"], |_| {}).await;
    let http = reqwest::Client::new();
    let mut c = claims("theissuer", "auth_jwt_test_api", 300);
    c["jti"] = json!("leaked-1");
    let token = mint(&TestKey::hmac(SECRET), "HS256", json!({}), &c);
    let status = |base: String| {
        let (http, token) = (&http, &token);
        async move {
            http.get(format!("{base}/whoami"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Both instances up, their mirrors loaded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while status(a.clone()).await != 200 || status(b.clone()).await != 200 {
        assert!(std::time::Instant::now() < deadline, "instances not ready");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let health: Value = http
        .get(format!("{b}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            &health["revocation"]["store"],
            &health["revocation"]["status"]
        ),
        (&json!("redis"), &json!("ok"))
    );
    let out = command()
        .args(["revoke", "--config"])
        .arg(&config)
        .args(["--validator", "demo", "--jti", "leaked-1"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "revoked: token of validator demo\n"
    );
    // One issuer of the validator, named; an issuer it does not accept is refused.
    let out = command()
        .args(["revoke", "--config"])
        .arg(&config)
        .args([
            "--validator",
            "demo",
            "--issuer",
            "theissuer",
            "--jti",
            "leaked-2",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut elsewhere = vec!["revoke", "--config", config.to_str().unwrap()];
    elsewhere.extend([
        "--validator",
        "demo",
        "--issuer",
        "https://elsewhere",
        "--jti",
        "x",
    ]);
    assert!(
        exits_2(elsewhere)
            .contains("validator \"demo\" does not accept issuer \"https://elsewhere\"")
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while status(a.clone()).await != 401 || status(b.clone()).await != 401 {
        assert!(
            std::time::Instant::now() < deadline,
            "not refused within 1 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // inspect runs the revocation check too.
    let out = command()
        .args(["inspect", "--config"])
        .arg(&config)
        .arg(&token)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("demo: refused: the token was revoked"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Bad arguments: exit 2 with a message.
    let plain = write_config("revoke-memory", CONFIG);
    for (args, message) in [
        (
            vec!["--validator", "demo"],
            "the following required arguments were not provided",
        ),
        (
            vec!["--validator", "demo", "--jti", "x", "--before", "1"],
            "--subject",
        ),
        (
            vec!["--validator", "demo", "--subject", "s", "--before", "soon"],
            "neither Unix seconds nor an RFC 3339",
        ),
        (
            vec!["--validator", "nope", "--jti", "x"],
            "no validator named \"nope\"",
        ),
    ] {
        let stderr = exits_2(
            ["revoke".as_ref(), "--config".as_ref(), config.as_os_str()]
                .into_iter()
                .chain(args.iter().map(AsRef::as_ref)),
        );
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let stderr = exits_2([
        "revoke".as_ref(),
        "--config".as_ref(),
        plain.as_os_str(),
        "--validator".as_ref(),
        "demo".as_ref(),
        "--jti".as_ref(),
        "x".as_ref(),
    ]);
    assert!(stderr.contains("no [store] url"), "{stderr}");
}

#[tokio::test]
async fn serve_starts_while_its_store_is_unreachable_and_says_so() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!("{CONFIG}\n[store]\nurl = \"redis://127.0.0.1:{port}/0\"\n");
    let config = write_config("store-down", &text);
    let (_child, _out, base) = serve(&config, &["--listen", "127.0.0.1:0"], |_| {}).await;
    let http = reqwest::Client::new();
    let token = mint(
        &TestKey::hmac(SECRET),
        "HS256",
        json!({}),
        &claims("theissuer", "auth_jwt_test_api", 300),
    );
    let res = http
        .get(format!("{base}/whoami"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let res = http.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(res.status(), 503);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["revocation"]["status"], "stale");
        if body["revocation"]["error"] == "redis connect: connection refused" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn serve_mounts_every_validator_with_a_login_at_its_own_paths() {
    let key = TestKey::rsa();
    let provider =
        jwtgate_test::Provider::start(jwtgate_test::jwks([key.jwk("k1", "RS256")])).await;
    provider.enable_login(key, "k1");
    let validator = |name: &str, paths: &str| {
        format!(
            r#"[[validator]]
name = "{name}"
issuer = "{issuer}"
audience = "api"
algorithm = "RS256"
oidc_issuer = "{issuer}"
user = {{ claim = "sub" }}
cookie = {{ name = "{name}_session", secure = false, secret = "cookie-secret-cookie-secret-0032" }}

[validator.login]
client_id = "{name}"
redirect_uri = "http://127.0.0.1/{name}/auth/callback"
{paths}
"#,
            issuer = provider.issuer()
        )
    };
    let own = |name: &str| {
        format!(
            "login_path = \"/{name}/auth/login\"\nlogout_path = \"/{name}/auth/logout\"\nbackchannel_logout_path = \"/{name}/auth/backchannel-logout\"\n"
        )
    };
    const ROUTE: &str = "[[route]]\npath = \"/me\"\nauth = \"jwt_billing\"\n";
    let text = format!(
        "{}{}{ROUTE}",
        validator("billing", &own("billing")),
        validator("shop", &own("shop"))
    );
    let config = write_config("two-logins", &text);
    let (_child, mut lines, base) = serve(&config, &["--listen", "127.0.0.1:0"], |_| {}).await;
    let mut printed = Vec::new();
    for _ in 0..4 {
        printed.push(lines.next_line().await.unwrap().unwrap());
    }
    for name in ["billing", "shop"] {
        let line = format!(
            "  /{name}/auth/login, /{name}/auth/logout, /{name}/auth/callback, /{name}/auth/backchannel-logout -> sign-in for {name}"
        );
        assert!(printed.contains(&line), "{printed:?}");
    }
    // Each sign-in route starts its own validator's sign-in: its client id at the provider.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for name in ["billing", "shop"] {
        let res = http
            .get(format!("{base}/{name}/auth/login?return_to=/x"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 302);
        let location = res.headers()["location"].to_str().unwrap();
        assert!(
            location.contains(&format!("client_id={name}")),
            "{location}"
        );
    }
    let res = http.get(format!("{base}/auth/login")).send().await.unwrap();
    assert_eq!(res.status(), 404, "no route at the defaults");
    // Two logins on the default paths collide: exit 2, naming what to change.
    let clash = write_config(
        "two-logins-clash",
        &format!(
            "{}{}{ROUTE}",
            validator("billing", ""),
            validator("shop", "")
        ),
    );
    let stderr = exits_2([
        "serve".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--config".as_ref(),
        clash.as_os_str(),
    ]);
    assert!(
        stderr.contains("path \"/auth/login\" of validator shop's sign-in routes is also validator billing's sign-in route"),
        "{stderr}"
    );
    // A bad path is an error at its key.
    let bad = write_config(
        "bad-login-path",
        &format!(
            "{}{ROUTE}",
            validator("billing", "login_path = \"auth/login\"\n")
        ),
    );
    let stderr = exits_2([
        "serve".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--config".as_ref(),
        bad.as_os_str(),
    ]);
    assert!(
        stderr.contains("jwtgate.toml:13:1: validator \"billing\": key `login.login_path`: \"auth/login\" is not a route path"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_speaks_http2_to_a_real_grpc_client_and_http11_on_the_same_port() {
    let config = write_config(
        "grpc",
        &format!(
            r#"[[validator]]
name = "kc"
issuer = "theissuer"
audience = "api"
algorithm = "HS256"
secret = "{SECRET}"
user = {{ claim = "sub" }}

[[route]]
path = "/demo.Whoami/Get"
auth = "jwt_kc"
scopes = ["whoami"]
"#
        ),
    );
    let (_child, _lines, base) = serve(&config, &["--listen", "127.0.0.1:0"], |_| {}).await;
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let token = |scope: &str| {
        let mut c = claims("theissuer", "api", 60);
        c["sub"] = json!("ada");
        c["scope"] = json!(scope);
        mint(&TestKey::hmac(SECRET), "HS256", json!({}), &c)
    };
    // A tonic client (HTTP/2 with prior knowledge): refusals come as gRPC statuses.
    let none = grpc_example::call(addr, None).await.unwrap_err();
    assert_eq!(none.code(), tonic::Code::Unauthenticated, "{none:?}");
    assert!(
        none.message().contains("no credential was sent"),
        "{none:?}"
    );
    let bad = grpc_example::call(addr, Some("not-a-token"))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::Unauthenticated, "{bad:?}");
    let scope = grpc_example::call(addr, Some(&token("other")))
        .await
        .unwrap_err();
    assert_eq!(scope.code(), tonic::Code::PermissionDenied, "{scope:?}");
    // Accepted: the route's answer reaches the client (serve's JSON echo, which a gRPC client
    // cannot decode, so not Unauthenticated or PermissionDenied).
    let accepted = grpc_example::call(addr, Some(&token("whoami"))).await;
    if let Err(status) = &accepted {
        assert!(
            !matches!(
                status.code(),
                tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
            ),
            "{status:?}"
        );
    }
    // HTTP/1.1 on the same port, with the JSON 401 (no gRPC form without HTTP/2).
    let res = reqwest::Client::new()
        .post(format!("{base}/demo.Whoami/Get"))
        .header("content-type", "application/grpc")
        .send()
        .await
        .unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_11);
    assert_eq!(res.status().as_u16(), 401);
    assert!(res.headers().get("grpc-status").is_none());
}
