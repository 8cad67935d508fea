//! auth_jwt_demo's HTTP tests (reference §B.2), over real TCP, plus the cookie-mode cases
//! its code implies (§B.3.8).

use jwtgate::{
    Algorithm, CookieMode, KeySource, Partner, Registry, User, Validator,
    directory::InMemoryDirectory,
};
use jwtgate_test::{Provider, TestKey, claims, jwks, mint};
use jwtgate_tests::{app, serve};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SECRET: &str = "thesecret-thesecret-thesecret-32";
const COOKIE_SECRET: &str = "cookie-secret-cookie-secret-0032";
const USER_DEMO: u64 = 6;

struct Demo {
    base: String,
    provider: Provider,
    http: reqwest::Client,
}

fn demo_validator(name: &str) -> Validator {
    Validator::new(name)
        .issuer("theissuer")
        .audience("auth_jwt_test_api")
        .algorithm(Algorithm::HS256)
        .key(KeySource::secret(SECRET))
        .user(User::fixed(USER_DEMO))
        .partner(Partner::by_email())
}

async fn demo() -> Demo {
    let rsa = TestKey::rsa();
    let provider = Provider::start(jwks([rsa.jwk("k1", "RS256")])).await;
    let registry = Registry::builder()
        .session_cookie("session_id")
        .directory(InMemoryDirectory::new().with_partner(3, "marc.demo@example.com"))
        .validator(demo_validator("demo"))
        .validator(
            demo_validator("demo_cookie")
                .cookie(CookieMode::new("demo_auth").secret(COOKIE_SECRET)),
        )
        .validator(
            Validator::new("demo_keycloak")
                .issuer(provider.issuer())
                .audience("auth_jwt_test_api")
                .algorithm(Algorithm::RS256)
                .key(KeySource::jwks_url(provider.jwks_url()))
                .user(User::fixed(1))
                .partner(Partner::by_email()),
        )
        .build()
        .expect("demo registry");
    let app = app(
        &registry,
        &[
            ("/auth_jwt_demo/whoami", "jwt_demo"),
            ("/auth_jwt_demo/whoami-public-or-jwt", "public_or_jwt_demo"),
            ("/auth_jwt_demo_cookie/whoami", "jwt_demo_cookie"),
            (
                "/auth_jwt_demo_cookie/whoami-public-or-jwt",
                "public_or_jwt_demo_cookie",
            ),
            ("/auth_jwt_demo/keycloak/whoami", "jwt_demo_keycloak"),
            (
                "/auth_jwt_demo/keycloak/whoami-public-or-jwt",
                "public_or_jwt_demo_keycloak",
            ),
        ],
    );
    Demo {
        base: serve(app).await,
        provider,
        http: reqwest::Client::new(),
    }
}

fn token(aud: Option<&str>, email: Option<&str>, exp_delta: i64) -> String {
    let mut c = claims("theissuer", aud.unwrap_or("auth_jwt_test_api"), exp_delta);
    if let Some(email) = email {
        c["email"] = json!(email);
    }
    mint(&TestKey::hmac(SECRET), "HS256", json!({}), &c)
}

struct Res {
    status: StatusCode,
    body: Value,
    set_cookie: Vec<String>,
}

impl Res {
    fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookie.iter().find_map(|c| {
            let pair = c.split(';').next()?;
            let (n, v) = pair.split_once('=')?;
            (n == name).then(|| v.to_owned())
        })
    }
}

impl Demo {
    async fn get(&self, path: &str, bearer: Option<&str>, cookie: Option<&str>) -> Res {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = bearer {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let set_cookie = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        let body = res.json().await.unwrap_or(Value::Null);
        Res {
            status,
            body,
            set_cookie,
        }
    }
}

#[test]
fn test_auth_method_exists() {
    let registry = Registry::builder()
        .validator(demo_validator("demo"))
        .build()
        .unwrap();
    assert_eq!(registry.validator_names().collect::<Vec<_>>(), ["demo"]);
    assert!(registry.layer("jwt_demo").is_ok());
}

#[tokio::test]
async fn test_whoami() {
    let d = demo().await;
    let t = token(None, Some("marc.demo@example.com"), 60);
    let r = d.get("/auth_jwt_demo/whoami", Some(&t), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["partner_id"], 3);
    assert_eq!(r.body["uid"], USER_DEMO);
    assert_eq!(r.body["validator"], "demo");
    assert_eq!(r.body["payload"]["email"], "marc.demo@example.com");
    // With a logged-in session as well: session mismatch.
    let r = d
        .get("/auth_jwt_demo/whoami", Some(&t), Some("session_id=abc123"))
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"], "invalid_request");
    // The public route refuses it too, even without a token.
    let r = d
        .get(
            "/auth_jwt_demo/whoami-public-or-jwt",
            None,
            Some("session_id=abc123"),
        )
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn test_whoami_cookie() {
    let d = demo().await;
    let t = token(None, Some("marc.demo@example.com"), 60);
    let r = d.get("/auth_jwt_demo_cookie/whoami", Some(&t), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["partner_id"], 3);
    assert_eq!(r.body["uid"], USER_DEMO);
    let cookie = r.cookie("__Host-demo_auth").expect("cookie set");
    let attrs = &r.set_cookie[0];
    assert!(
        attrs.contains("; Path=/;")
            && attrs.contains("; HttpOnly")
            && attrs.contains("; SameSite=Lax")
            && attrs.ends_with("; Secure"),
        "{attrs}"
    );
    let max_age: u64 = attrs
        .split("Max-Age=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (58..=60).contains(&max_age),
        "cookie outlives the token: {attrs}"
    );

    let r2 = d
        .get(
            "/auth_jwt_demo_cookie/whoami",
            None,
            Some(&format!("__Host-demo_auth={cookie}")),
        )
        .await;
    assert_eq!(r2.status, 200);
    assert_eq!(r2.body["partner_id"], 3);
    assert_eq!(r2.body["uid"], USER_DEMO);
    assert_eq!(
        r2.body["payload"]["exp"], r.body["payload"]["exp"],
        "refresh keeps the token's exp"
    );
    assert!(r2.cookie("__Host-demo_auth").is_some(), "cookie refreshed");
}

#[tokio::test]
async fn test_forbidden() {
    let d = demo().await;
    let r = d
        .get(
            "/auth_jwt_demo/whoami",
            Some(&token(Some("invalid"), None, 60)),
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"], "invalid_token");
}

#[tokio::test]
async fn test_public() {
    let d = demo().await;
    let r = d
        .get("/auth_jwt_demo/whoami-public-or-jwt", None, None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["uid"], Value::Null);
    let t = token(None, Some("not-a-partner@example.com"), 60);
    let r = d
        .get("/auth_jwt_demo/whoami-public-or-jwt", Some(&t), None)
        .await;
    assert_eq!(
        (r.status.as_u16(), &r.body["partner_id"], &r.body["uid"]),
        (200, &Value::Null, &json!(USER_DEMO))
    );
    let t = token(None, Some("marc.demo@example.com"), 60);
    let r = d
        .get("/auth_jwt_demo/whoami-public-or-jwt", Some(&t), None)
        .await;
    assert_eq!((r.status.as_u16(), &r.body["partner_id"]), (200, &json!(3)));
}

#[tokio::test]
async fn test_public_cookie_mode() {
    let d = demo().await;
    let path = "/auth_jwt_demo_cookie/whoami-public-or-jwt";
    let r = d.get(path, None, None).await;
    assert_eq!((r.status.as_u16(), &r.body["uid"]), (200, &Value::Null));
    assert!(r.set_cookie.is_empty(), "no cookie for anonymous requests");

    let r = d
        .get(
            path,
            Some(&token(None, Some("not-a-partner@example.com"), 60)),
            None,
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), &r.body["partner_id"], &r.body["uid"]),
        (200, &Value::Null, &json!(USER_DEMO))
    );
    assert!(r.cookie("__Host-demo_auth").is_some());

    let r = d
        .get(
            path,
            Some(&token(None, Some("marc.demo@example.com"), 60)),
            None,
        )
        .await;
    assert_eq!(r.body["partner_id"], 3);
    let cookie = r.cookie("__Host-demo_auth").expect("cookie");

    let r = d
        .get(path, None, Some(&format!("__Host-demo_auth={cookie}")))
        .await;
    assert_eq!(
        (r.status.as_u16(), &r.body["partner_id"], &r.body["uid"]),
        (200, &json!(3), &json!(USER_DEMO))
    );
    assert!(r.cookie("__Host-demo_auth").is_some());
}

#[tokio::test]
async fn test_public_keyloak() {
    let d = demo().await;
    let r = d
        .get("/auth_jwt_demo/keycloak/whoami-public-or-jwt", None, None)
        .await;
    assert_eq!((r.status.as_u16(), &r.body["uid"]), (200, &Value::Null));
    assert_eq!(
        d.provider.jwks_hits(),
        0,
        "no JWKS fetch for an anonymous request"
    );
    // And a real RS256 token through the JWKS.
    let t = mint(
        &TestKey::rsa(),
        "RS256",
        json!({"kid": "k1"}),
        &claims(&d.provider.issuer(), "auth_jwt_test_api", 60),
    );
    let r = d
        .get("/auth_jwt_demo/keycloak/whoami", Some(&t), None)
        .await;
    assert_eq!(
        (r.status.as_u16(), &r.body["validator"], &r.body["uid"]),
        (200, &json!("demo_keycloak"), &json!(1))
    );
    assert_eq!(d.provider.jwks_hits(), 1);
}

// ---- §B.3.8: cookie mode ----

async fn cookie_for(d: &Demo, email: &str) -> String {
    let r = d
        .get(
            "/auth_jwt_demo_cookie/whoami",
            Some(&token(None, Some(email), 60)),
            None,
        )
        .await;
    r.cookie("__Host-demo_auth").expect("cookie")
}

#[tokio::test]
async fn header_wins_over_cookie() {
    let d = demo().await;
    let cookie = format!(
        "__Host-demo_auth={}",
        cookie_for(&d, "marc.demo@example.com").await
    );
    let other = token(None, Some("someone@example.com"), 60);
    let r = d
        .get("/auth_jwt_demo_cookie/whoami", Some(&other), Some(&cookie))
        .await;
    assert_eq!(r.body["payload"]["email"], "someone@example.com");
    // A malformed or invalid header does not fall back to a valid cookie.
    let res = d
        .http
        .get(format!("{}/auth_jwt_demo_cookie/whoami", d.base))
        .header("authorization", "Bearer")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let r = d
        .get(
            "/auth_jwt_demo_cookie/whoami",
            Some(&token(Some("bad"), None, 60)),
            Some(&cookie),
        )
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn tampered_or_foreign_cookies_are_refused() {
    let d = demo().await;
    let cookie = cookie_for(&d, "marc.demo@example.com").await;
    let mut parts: Vec<String> = cookie.split('.').map(str::to_owned).collect();
    parts[1] = jwtgate_test::b64(json!({"iss": "theissuer", "aud": "auth_jwt_test_api", "exp": jwtgate_test::now() + 999, "email": "boss@example.com"}).to_string());
    let tampered = parts.join(".");
    for path in [
        "/auth_jwt_demo_cookie/whoami",
        "/auth_jwt_demo_cookie/whoami-public-or-jwt",
    ] {
        let r = d
            .get(path, None, Some(&format!("__Host-demo_auth={tampered}")))
            .await;
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.body["error_description"], "token signature is invalid");
    }
    // The upstream token itself is not a valid cookie: cookies are signed with the server secret.
    let upstream = token(None, None, 60);
    let r = d
        .get(
            "/auth_jwt_demo_cookie/whoami",
            None,
            Some(&format!("__Host-demo_auth={upstream}")),
        )
        .await;
    assert_eq!(r.status, 401);
    // A stale cookie locks the public route, as in auth_jwt.
    let r = d
        .get(
            "/auth_jwt_demo_cookie/whoami-public-or-jwt",
            None,
            Some("__Host-demo_auth=garbage"),
        )
        .await;
    assert_eq!(r.status, 401);
    // The cookie of another validator is not read on a route without cookie mode.
    let r = d
        .get(
            "/auth_jwt_demo/whoami",
            None,
            Some(&format!("__Host-demo_auth={cookie}")),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body["error"].as_str()),
        (401, Some("missing_token"))
    );
}

#[tokio::test]
async fn cookie_mode_works_with_several_audiences() {
    let registry = Registry::builder()
        .validator(
            demo_validator("multi")
                .audiences(["other_api", "auth_jwt_test_api"])
                .cookie(
                    CookieMode::new("m")
                        .secret(COOKIE_SECRET)
                        .secure(false)
                        .path("/multi"),
                ),
        )
        .build()
        .unwrap();
    let base = serve(app(&registry, &[("/multi", "jwt_multi")])).await;
    let http = reqwest::Client::new();
    let res = http
        .get(format!("{base}/multi"))
        .bearer_auth(token(None, None, 60))
        .send()
        .await
        .unwrap();
    let set = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("; Path=/multi;") && !set.contains("Secure"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_owned();
    let res = http
        .get(format!("{base}/multi"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
