//! Token sources and identity-provider presets, over real TCP against an in-process provider
//! that serves each provider's own JWKS path and token shapes on 127.0.0.1.

use jwtgate::config::Config;
use jwtgate::{Algorithm, CookieMode, KeySource, Preset, Registry, TokenSource, User, Validator};
use jwtgate_test::{
    Provider, TestKey, auth0_claims, cloudflare_access_claims, cloudflare_service_claims,
    entra_id_claims, jwks, keycloak_claims, mint, now, rs256_token,
};
use jwtgate_tests::{app, serve};
use serde_json::{Value, json};

const AUD_TAG: &str = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";

struct Site {
    base: String,
    http: reqwest::Client,
}

impl Site {
    async fn new(registry: &Registry, routes: &[(&str, &str)]) -> Self {
        Self {
            base: serve(app(registry, routes)).await,
            http: reqwest::Client::new(),
        }
    }

    /// GETs `path` with a Cloudflare Access assertion header.
    async fn assertion(&self, path: &str, token: &str) -> (u16, Value, String) {
        self.get(path, &[("cf-access-jwt-assertion", token)]).await
    }

    /// GETs `path` with `headers`; (status, body, WWW-Authenticate).
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, Value, String) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let challenge = res
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (status, res.json().await.unwrap_or(Value::Null), challenge)
    }
}

async fn cloudflare(service_tokens: bool) -> (Provider, Site, TestKey) {
    let key = TestKey::rsa();
    let provider = Provider::start(jwks([key.jwk("cf1", "RS256")])).await;
    let registry = Registry::builder()
        .validator(
            Validator::new("cf").preset(
                Preset::cloudflare_access("acme", AUD_TAG)
                    .base_url(provider.issuer())
                    .service_tokens(service_tokens),
            ),
        )
        .build()
        .expect("registry");
    let site = Site::new(
        &registry,
        &[("/app", "jwt_cf"), ("/public", "public_or_jwt_cf")],
    )
    .await;
    (provider, site, key)
}

#[tokio::test]
async fn cloudflare_access_header_then_cookie() {
    let (provider, site, key) = cloudflare(false).await;
    let iss = provider.issuer();
    let token = rs256_token(
        &key,
        "cf1",
        &cloudflare_access_claims(&iss, AUD_TAG, "ada@example.com"),
    );
    let cookie = format!("CF_Authorization={token}");

    let (status, body, _) = site
        .get("/app", &[("cf-access-jwt-assertion", &token)])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["uid"], "ada@example.com");
    assert_eq!(body["validator"], "cf");
    assert_eq!(
        provider.jwks_hits(),
        1,
        "keys come from /cdn-cgi/access/certs"
    );

    // The cookie alone (a browser whose header was lost).
    let (status, body, _) = site.get("/app", &[("cookie", &cookie)]).await;
    assert_eq!((status, &body["uid"]), (200, &json!("ada@example.com")));

    // A present but invalid header never falls back to a valid cookie.
    let other = rs256_token(
        &key,
        "cf1",
        &cloudflare_access_claims("https://evil.cloudflareaccess.com", AUD_TAG, "x@y"),
    );
    let (status, body, _) = site
        .get(
            "/app",
            &[("cf-access-jwt-assertion", &other), ("cookie", &cookie)],
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error_description"], "token issuer not accepted");
    let (status, body, _) = site
        .get(
            "/app",
            &[
                ("cf-access-jwt-assertion", "not a token"),
                ("cookie", &cookie),
            ],
        )
        .await;
    assert_eq!((status, &body["error"]), (401, &json!("invalid_request")));

    // Authorization: Bearer is not a source of this preset.
    let (status, body, challenge) = site
        .get("/app", &[("authorization", &format!("Bearer {token}"))])
        .await;
    assert_eq!((status, &body["error"]), (401, &json!("missing_token")));
    assert_eq!(challenge, "Bearer realm=\"jwtgate\"");
    // It says where this route looks (it said "no bearer token or cookie was sent").
    assert_eq!(
        body["error_description"],
        "no credential was sent; this route reads the cf-access-jwt-assertion header or the \
         CF_Authorization cookie"
    );

    // Another application's AUD tag.
    let mut claims = cloudflare_access_claims(&iss, AUD_TAG, "ada@example.com");
    claims["aud"] = json!(["0000"]);
    let (status, body, _) = site
        .assertion("/app", &rs256_token(&key, "cf1", &claims))
        .await;
    assert_eq!(
        (status, &body["error_description"]),
        (401, &json!("token audience not accepted"))
    );
}

#[tokio::test]
async fn cloudflare_access_public_routes_are_anonymous_only_without_any_source() {
    let (provider, site, key) = cloudflare(false).await;
    let token = rs256_token(
        &key,
        "cf1",
        &cloudflare_access_claims(&provider.issuer(), AUD_TAG, "ada@example.com"),
    );
    let (status, body, _) = site.get("/public", &[]).await;
    assert_eq!((status, &body["uid"]), (200, &Value::Null));
    let (status, body, _) = site
        .get(
            "/public",
            &[("cookie", &format!("CF_Authorization={token}"))],
        )
        .await;
    assert_eq!((status, &body["uid"]), (200, &json!("ada@example.com")));
    // A sent but invalid token is refused, never silently anonymous.
    let (status, _, _) = site
        .get("/public", &[("cookie", "CF_Authorization=x.y.z")])
        .await;
    assert_eq!(status, 401);
    let (status, _, _) = site
        .get("/public", &[("cf-access-jwt-assertion", "a.b.c")])
        .await;
    assert_eq!(status, 401);
}

/// A Cloudflare Access service token from the preset's test provider.
fn service_token(key: &TestKey, issuer: &str) -> String {
    let claims =
        cloudflare_service_claims(issuer, AUD_TAG, "88bf3b6d86161464f6509f7219099e57.access");
    rs256_token(key, "cf1", &claims)
}

#[tokio::test]
async fn cloudflare_service_tokens_refused_by_default_allowed_when_enabled() {
    let (provider, site, key) = cloudflare(false).await;
    let token = service_token(&key, &provider.issuer());
    let (status, body, challenge) = site
        .get("/app", &[("cf-access-jwt-assertion", &token)])
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error_description"], "service tokens are not accepted");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");

    let (provider, site, key) = cloudflare(true).await;
    let token = service_token(&key, &provider.issuer());
    let (status, body, _) = site
        .get("/app", &[("cf-access-jwt-assertion", &token)])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["uid"], "88bf3b6d86161464f6509f7219099e57.access");
    // A user token without email is not a service token: no user claim.
    let mut claims = cloudflare_access_claims(&provider.issuer(), AUD_TAG, "x");
    claims.as_object_mut().unwrap().remove("email");
    let (status, body, _) = site
        .assertion("/app", &rs256_token(&key, "cf1", &claims))
        .await;
    assert_eq!(
        (status, &body["error_description"]),
        (401, &json!("token has no usable user claim"))
    );
}

#[tokio::test]
async fn cloudflare_access_from_the_config_file() {
    let key = TestKey::rsa();
    let provider = Provider::start(jwks([key.jwk("cf1", "RS256")])).await;
    let text = format!(
        r#"
[[validator]]
name = "cf"
provider = {{ cloudflare_access = {{ team = "acme", aud = "{AUD_TAG}", base_url = "{}" }} }}

[[route]]
path = "/app"
auth = "jwt_cf"
"#,
        provider.issuer()
    );
    let registry = Config::from_toml_str(&text, "cf.toml", None)
        .unwrap()
        .registry()
        .unwrap();
    let site = Site::new(&registry, &[("/app", "jwt_cf")]).await;
    let token = rs256_token(
        &key,
        "cf1",
        &cloudflare_access_claims(&provider.issuer(), AUD_TAG, "ada@example.com"),
    );
    let (status, body, _) = site
        .get("/app", &[("cf-access-jwt-assertion", &token)])
        .await;
    assert_eq!((status, &body["uid"]), (200, &json!("ada@example.com")));
}

#[tokio::test]
async fn keycloak_authorized_party_and_typ() {
    let key = TestKey::rsa();
    let provider = Provider::start(jwks([key.jwk("kc1", "RS256")])).await;
    let kc = || {
        Validator::new("kc")
            .preset(Preset::keycloak(provider.issuer(), "main"))
            .authorized_party("web")
    };
    let registry = Registry::builder()
        .validator(kc())
        .validator(
            Validator::new("kc_at")
                .preset(Preset::keycloak(provider.issuer(), "main"))
                .authorized_party("web")
                .token_types(["at+jwt"]),
        )
        .build()
        .unwrap();
    let site = Site::new(&registry, &[("/kc", "jwt_kc"), ("/at", "jwt_kc_at")]).await;
    let issuer = format!("{}/realms/main", provider.issuer());
    let token = rs256_token(
        &key,
        "kc1",
        &keycloak_claims(
            &issuer,
            "web",
            "f1b2c3d4-0000-4000-8000-000000000001",
            &["offline_access", "uma_authorization", "admin"],
        ),
    );
    let bearer = format!("Bearer {token}");
    let (status, body, _) = site.get("/kc", &[("authorization", &bearer)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["uid"], "f1b2c3d4-0000-4000-8000-000000000001");
    assert_eq!(body["payload"]["realm_access"]["roles"][2], "admin");

    let other = format!(
        "Bearer {}",
        rs256_token(
            &key,
            "kc1",
            &keycloak_claims(
                &issuer,
                "mobile",
                "f1b2c3d4-0000-4000-8000-000000000001",
                &["offline_access", "uma_authorization", "admin"]
            )
        )
    );
    let (status, body, _) = site.get("/kc", &[("authorization", &other)]).await;
    assert_eq!(
        (status, &body["error_description"]),
        (401, &json!("token authorized party not accepted"))
    );

    // typ: the header says "JWT" (an ID token could too); at+jwt in any spelling passes.
    let (status, body, _) = site.get("/at", &[("authorization", &bearer)]).await;
    assert_eq!(
        (status, &body["error_description"]),
        (401, &json!("token type (typ) not accepted"))
    );
    for typ in ["at+jwt", "application/at+JWT"] {
        let t = mint(
            &key,
            "RS256",
            json!({"kid": "kc1", "typ": typ}),
            &keycloak_claims(
                &issuer,
                "web",
                "f1b2c3d4-0000-4000-8000-000000000001",
                &["offline_access", "uma_authorization", "admin"],
            ),
        );
        let (status, _, _) = site
            .get("/at", &[("authorization", &format!("Bearer {t}"))])
            .await;
        assert_eq!(status, 200, "{typ}");
    }
}

#[tokio::test]
async fn auth0_entra_google_cognito_and_oidc() {
    let key = TestKey::rsa();
    let provider = Provider::start(jwks([key.jwk("p1", "RS256")])).await;
    let base = provider.issuer();
    let tenant = "9188040d-6c67-4c5b-b112-36a304b66dad";
    let registry = Registry::builder()
        .validator(
            Validator::new("auth0")
                .preset(Preset::auth0("acme.eu.auth0.com", "https://api.acme").base_url(&base)),
        )
        .validator(
            Validator::new("entra").preset(Preset::entra_id(tenant, "api://acme").base_url(&base)),
        )
        .validator(
            Validator::new("google")
                .preset(Preset::google("123.apps.googleusercontent.com").base_url(&base)),
        )
        .validator(
            Validator::new("cognito")
                .preset(Preset::cognito("eu-west-1", "eu-west-1_AbC", "client9").base_url(&base)),
        )
        .validator(
            Validator::new("oidc")
                .preset(Preset::oidc(&base))
                .audience("api"),
        )
        .build()
        .unwrap();
    let site = Site::new(
        &registry,
        &[
            ("/auth0", "jwt_auth0"),
            ("/entra", "jwt_entra"),
            ("/google", "jwt_google"),
            ("/cognito", "jwt_cognito"),
            ("/oidc", "jwt_oidc"),
        ],
    )
    .await;
    let t = now();
    let cases = [
        (
            "/auth0",
            auth0_claims(
                &format!("{base}/"),
                "https://api.acme",
                "auth0|123",
                "openid read:things",
            ),
            json!("auth0|123"),
        ),
        (
            "/entra",
            entra_id_claims(
                &format!("{base}/{tenant}/v2.0"),
                "api://acme",
                tenant,
                "00000000-0000-0000-66f3-3332eca7ea81",
            ),
            json!("00000000-0000-0000-66f3-3332eca7ea81"),
        ),
        (
            "/google",
            json!({"iss": &base, "azp": "123.apps.googleusercontent.com", "aud": "123.apps.googleusercontent.com", "sub": "110169484474386276334", "email": "ada@gmail.com", "email_verified": true, "iat": t, "exp": t + 60}),
            json!("110169484474386276334"),
        ),
        (
            "/cognito",
            json!({"sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "iss": format!("{base}/eu-west-1_AbC"), "client_id": "client9", "token_use": "access", "scope": "aws.cognito.signin.user.admin", "auth_time": t, "exp": t + 60, "iat": t, "jti": "j", "username": "ada"}),
            json!("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"),
        ),
        (
            "/cognito",
            json!({"sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "iss": format!("{base}/eu-west-1_AbC"), "aud": "client9", "token_use": "id", "exp": t + 60, "iat": t, "email": "ada@example.com"}),
            json!("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"),
        ),
        (
            "/oidc",
            json!({"iss": &base, "aud": "api", "sub": "s1", "exp": t + 60}),
            json!("s1"),
        ),
    ];
    for (path, claims, uid) in cases {
        let bearer = format!("Bearer {}", rs256_token(&key, "p1", &claims));
        let (status, body, _) = site.get(path, &[("authorization", &bearer)]).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["uid"], uid, "{path}");
    }
    // Cognito: another app client's access token.
    let claims = json!({"sub": "s", "iss": format!("{base}/eu-west-1_AbC"), "client_id": "other", "token_use": "access", "exp": t + 60});
    let (status, body, _) = site
        .get(
            "/cognito",
            &[(
                "authorization",
                &format!("Bearer {}", rs256_token(&key, "p1", &claims)),
            )],
        )
        .await;
    assert_eq!(
        (status, &body["error_description"]),
        (401, &json!("token authorized party not accepted"))
    );
    // Auth0's issuer has a trailing slash: without it, refused.
    let claims = json!({"iss": &base, "sub": "x", "aud": "https://api.acme", "exp": t + 60});
    let (status, _, _) = site
        .get(
            "/auth0",
            &[(
                "authorization",
                &format!("Bearer {}", rs256_token(&key, "p1", &claims)),
            )],
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        provider.discovery_hits(),
        1,
        "only the oidc preset uses discovery"
    );
}

#[tokio::test]
async fn preset_values_can_be_overridden() {
    let key = TestKey::rsa();
    let provider = Provider::start(jwks([key.jwk("cf1", "RS256")])).await;
    let registry = Registry::builder()
        .validator(
            Validator::new("cf")
                .user(User::claim("sub"))
                .token_sources([TokenSource::authorization()])
                .preset(Preset::cloudflare_access("acme", AUD_TAG).base_url(provider.issuer())),
        )
        .build()
        .unwrap();
    let site = Site::new(&registry, &[("/app", "jwt_cf")]).await;
    let token = rs256_token(
        &key,
        "cf1",
        &cloudflare_access_claims(&provider.issuer(), AUD_TAG, "ada@example.com"),
    );
    let (status, body, _) = site
        .get("/app", &[("authorization", &format!("Bearer {token}"))])
        .await;
    assert_eq!(
        (status, &body["uid"]),
        (200, &json!("7335d417-61da-459d-899c-0a01c76a2f94"))
    );
    let (status, _, _) = site
        .get("/app", &[("cf-access-jwt-assertion", &token)])
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn header_with_scheme_and_opt_in_query_sources() {
    const SECRET: &str = "thesecret-thesecret-thesecret-32";
    let registry = Registry::builder()
        .validator(
            Validator::new("ws")
                .issuer("i")
                .audience("a")
                .algorithm(Algorithm::HS256)
                .key(KeySource::secret(SECRET))
                .user(User::claim("sub"))
                .token_sources([
                    TokenSource::header_with_scheme("X-Auth", "Token"),
                    TokenSource::query("access_token"),
                ]),
        )
        .build()
        .unwrap();
    let site = Site::new(&registry, &[("/ws", "jwt_ws")]).await;
    let t = now();
    let token = mint(
        &TestKey::hmac(SECRET),
        "HS256",
        json!({}),
        &json!({"iss": "i", "aud": "a", "sub": "u", "exp": t + 60}),
    );
    let (status, _, _) = site
        .get("/ws", &[("x-auth", &format!("token {token}"))])
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = site
        .get(&format!("/ws?v=1&access_token={token}"), &[])
        .await;
    assert_eq!(status, 200);
    let (status, body, _) = site.get("/ws?access_token=a&access_token=b", &[]).await;
    assert_eq!((status, &body["error"]), (401, &json!("invalid_request")));
    // The header comes first and a bad one is not rescued by the query.
    let (status, _, _) = site
        .get(&format!("/ws?access_token={token}"), &[("x-auth", &token)])
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn cookie_mode_cookies_are_bound_to_their_validator() {
    const SECRET: &str = "thesecret-thesecret-thesecret-32";
    const COOKIE_SECRET: &str = "cookie-secret-cookie-secret-0032";
    let v = |name: &str, user: u64| {
        Validator::new(name)
            .issuer("i")
            .audience("a")
            .algorithm(Algorithm::HS256)
            .key(KeySource::secret(SECRET))
            .user(User::fixed(user))
            .cookie(
                CookieMode::new(format!("{name}_auth"))
                    .secret(COOKIE_SECRET)
                    .secure(false),
            )
    };
    let registry = Registry::builder()
        .validator(v("a", 1))
        .validator(v("b", 2))
        .build()
        .unwrap();
    let site = Site::new(&registry, &[("/a", "jwt_a"), ("/b", "jwt_b")]).await;
    let t = now();
    let token = mint(
        &TestKey::hmac(SECRET),
        "HS256",
        json!({}),
        &json!({"iss": "i", "aud": "a", "exp": t + 600}),
    );
    let res = site
        .http
        .get(format!("{}/a", site.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let set = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    let value = set
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("a_auth=")
        .unwrap()
        .to_owned();
    let (status, body, _) = site
        .get("/a", &[("cookie", &format!("a_auth={value}"))])
        .await;
    assert_eq!((status, &body["uid"]), (200, &json!(1)));
    // Renamed to b's cookie: same secret, same claims, refused by b.
    let (status, body, _) = site
        .get("/b", &[("cookie", &format!("b_auth={value}"))])
        .await;
    assert_eq!(
        (status, &body["error_description"]),
        (401, &json!("token signature is invalid"))
    );
}

#[tokio::test]
async fn session_guard_reads_cookie_bytes() {
    const SECRET: &str = "thesecret-thesecret-thesecret-32";
    let registry = Registry::builder()
        .session_cookie("session_id")
        .validator(
            Validator::new("v")
                .issuer("i")
                .audience("a")
                .algorithm(Algorithm::HS256)
                .key(KeySource::secret(SECRET))
                .user(User::fixed(1)),
        )
        .build()
        .unwrap();
    let site = Site::new(&registry, &[("/p", "public_or_jwt_v")]).await;
    for cookie in [
        "session_id =1",
        "a=1; session_id=2",
        "garbage",
        "x=1;;(bad)=2",
    ] {
        let (status, body, _) = site.get("/p", &[("cookie", cookie)]).await;
        assert_eq!(
            (status, &body["error"]),
            (401, &json!("invalid_request")),
            "{cookie}"
        );
    }
    let (status, _, _) = site.get("/p", &[("cookie", "a=1; sessionid=2")]).await;
    assert_eq!(status, 200);
}

#[test]
fn the_readme_preset_setups_load_as_written() {
    let readme = include_str!("../../README.md");
    let blocks: Vec<&str> = readme
        .split("```toml")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .filter(|b| {
            b.lines()
                .any(|l| l.trim_start().starts_with("provider = {"))
        })
        .collect();
    assert!(blocks.len() >= 2, "the README shows preset setups");
    for block in blocks {
        // The secrets the README reads from the environment, given inline here (setting
        // environment variables is `unsafe` in edition 2024, which this workspace forbids).
        // A `[store]` table needs its adapter crate (jwtgate-redis loads it in its own tests).
        let block = match block.split_once("[store]") {
            Some((before, after)) => {
                format!(
                    "{before}{}",
                    after.split_once("\n\n").map_or("", |(_, rest)| rest)
                )
            }
            None => block.to_owned(),
        };
        let block = block
            .replace(
                "secret_env = \"SESSION_SECRET\"",
                "secret = \"readme-session-secret-of-32-bytes\"",
            )
            .lines()
            .filter(|l| !l.starts_with("client_secret_env"))
            .collect::<Vec<_>>()
            .join("\n");
        let config = Config::from_toml_str(&block, "README.md", None).unwrap();
        let registry = config.registry().unwrap();
        for route in config.routes() {
            let _layer = registry.layer_for(&route.auth).unwrap();
        }
    }
}
