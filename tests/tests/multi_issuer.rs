//! One validator, many issuers: exact issuers and a `{tenant}` pattern, each issuer's keys
//! from its own discovery and cached per issuer; the token's `iss` matched before anything is
//! fetched; revocations kept per issuer; Entra ID's multi-tenant (`organizations`) preset.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use jwtgate::revocation::Target;
use jwtgate::{Algorithm, KeySource, Preset, Registry, User, Validator};
use jwtgate_test::{TestKey, claims, jwks, mint};
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// Realms at `http://127.0.0.1:PORT/realms/<name>`, each with its own key (`globex` the
/// alternative RSA key, every other realm the first), counting the requests each path got.
#[derive(Clone)]
struct Realms {
    base: String,
    hits: Arc<Mutex<BTreeMap<String, usize>>>,
}

fn realm_key(realm: &str) -> TestKey {
    match realm {
        "globex" => TestKey::rsa_alt(),
        _ => TestKey::rsa(),
    }
}

impl Realms {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let realms = Self {
            base,
            hits: Arc::default(),
        };
        let app = Router::new()
            .route(
                "/realms/{realm}/.well-known/openid-configuration",
                get(discovery),
            )
            .route("/realms/{realm}/certs", get(certs))
            .route("/organizations/discovery/v2.0/keys", get(entra_keys))
            .fallback(|State(r): State<Self>, uri: http::Uri| async move {
                r.hit(uri.path());
                http::StatusCode::NOT_FOUND
            })
            .with_state(realms.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        realms
    }

    fn hit(&self, path: &str) {
        *self
            .hits
            .lock()
            .unwrap()
            .entry(path.to_owned())
            .or_default() += 1;
    }

    fn hits(&self) -> BTreeMap<String, usize> {
        self.hits.lock().unwrap().clone()
    }

    fn issuer(&self, realm: &str) -> String {
        format!("{}/realms/{realm}", self.base)
    }
}

/// Every realm but `ghost`, which does not exist.
async fn discovery(
    State(r): State<Realms>,
    Path(realm): Path<String>,
) -> Result<axum::Json<Value>, http::StatusCode> {
    r.hit(&format!("/realms/{realm}/.well-known/openid-configuration"));
    if realm == "ghost" {
        return Err(http::StatusCode::NOT_FOUND);
    }
    let issuer = r.issuer(&realm);
    Ok(axum::Json(
        json!({"issuer": issuer, "jwks_uri": format!("{issuer}/certs")}),
    ))
}

async fn certs(State(r): State<Realms>, Path(realm): Path<String>) -> axum::Json<Value> {
    r.hit(&format!("/realms/{realm}/certs"));
    axum::Json(jwks([realm_key(&realm).jwk("k1", "RS256")]))
}

async fn entra_keys(State(r): State<Realms>) -> axum::Json<Value> {
    r.hit("/organizations/discovery/v2.0/keys");
    axum::Json(jwks([TestKey::rsa().jwk("k1", "RS256")]))
}

fn token(key: &TestKey, iss: &str, aud: &str, extra: &Value) -> String {
    let mut c = claims(iss, aud, 300);
    c["sub"] = json!("ada");
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    mint(key, "RS256", json!({"kid": "k1"}), &c)
}

/// The status and body of `GET /x` with `token` through the layer of mode `mode`.
async fn call(registry: &Registry, mode: &str, token: &str) -> (u16, Value) {
    let app: Router = Router::new()
        .route(
            "/x",
            get(|id: jwtgate::Identity| async move {
                axum::Json(json!({"iss": id.payload().get_str("iss")}))
            }),
        )
        .route_layer(registry.layer(mode).unwrap());
    let req = http::Request::get("/x")
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn tenants(realms: &Realms) -> Registry {
    Registry::builder()
        .validator(
            Validator::new("tenants")
                .issuers([
                    realms.issuer("main"),
                    format!("{}/realms/{{tenant}}", realms.base),
                ])
                .audience("api")
                .algorithm(Algorithm::RS256)
                .key(KeySource::oidc_discovery())
                .user(User::claim("sub")),
        )
        .build()
        .unwrap()
}

#[tokio::test]
async fn each_issuer_has_its_own_keys_and_an_unknown_issuer_causes_no_fetch() {
    let realms = Realms::start().await;
    let registry = tenants(&realms);
    // prefetch: the exactly named issuer only (no token named another yet).
    registry.prefetch().await.unwrap();
    assert_eq!(
        realms.hits().keys().cloned().collect::<Vec<_>>(),
        [
            "/realms/main/.well-known/openid-configuration",
            "/realms/main/certs"
        ]
    );
    for realm in ["main", "acme", "globex"] {
        let t = token(&realm_key(realm), &realms.issuer(realm), "api", &json!({}));
        let (status, body) = call(&registry, "jwt_tenants", &t).await;
        assert_eq!(status, 200, "{realm}: {body}");
        assert_eq!(body["iss"], realms.issuer(realm));
    }
    // A token of acme signed with globex's key: each issuer's own keys only.
    let crossed = token(
        &realm_key("globex"),
        &realms.issuer("acme"),
        "api",
        &json!({}),
    );
    assert_eq!(call(&registry, "jwt_tenants", &crossed).await.0, 401);
    let states = registry.key_caches();
    let mut sources: Vec<&str> = states.iter().map(|s| s.source.as_str()).collect();
    sources.sort_unstable();
    assert_eq!(
        sources,
        [
            realms.issuer("acme"),
            realms.issuer("globex"),
            realms.issuer("main")
        ]
    );

    // Issuers the validator does not accept: refused before any fetch.
    let before = realms.hits();
    for iss in [
        format!("{}/other/acme", realms.base),
        format!("{}/realms/a.b", realms.base),
        format!("{}/realms/acme/x", realms.base),
        format!("{}/realms/", realms.base),
        "https://evil.example/realms/acme".to_owned(),
    ] {
        let t = token(&realm_key("acme"), &iss, "api", &json!({}));
        let (status, body) = call(&registry, "jwt_tenants", &t).await;
        assert_eq!(status, 401, "{iss}");
        assert_eq!(
            body["error_description"], "token issuer not accepted",
            "{iss}"
        );
    }
    // `jwtgate inspect` checks the signature apart from the claims: still no fetch for an
    // issuer the validator refuses (the registry's inspect is what it runs).
    let t = token(
        &realm_key("acme"),
        &format!("{}/other/acme", realms.base),
        "api",
        &json!({}),
    );
    let verdicts = registry.inspect(&t).await;
    assert!(verdicts[0].refusal().is_some(), "{verdicts:?}");
    // The same for a wrong audience: nothing fetched for a tenant it names.
    let t = token(
        &realm_key("initech"),
        &realms.issuer("initech"),
        "other",
        &json!({}),
    );
    assert_eq!(call(&registry, "jwt_tenants", &t).await.0, 401);
    assert_eq!(realms.hits(), before, "a refused issuer caused a fetch");

    // A tenant whose discovery does not exist: 503 for its tokens only.
    let t = token(
        &realm_key("acme"),
        &format!("{}/realms/ghost", realms.base),
        "api",
        &json!({}),
    );
    realms.hits.lock().unwrap().clear();
    let ghost_discovery = "/realms/ghost/.well-known/openid-configuration";
    let (status, _) = call(&registry, "jwt_tenants", &t).await;
    assert_eq!(status, 503);
    assert_eq!(realms.hits().get(ghost_discovery), Some(&1));
    let t = token(
        &realm_key("acme"),
        &realms.issuer("acme"),
        "api",
        &json!({}),
    );
    assert_eq!(call(&registry, "jwt_tenants", &t).await.0, 200);
}

#[tokio::test]
async fn revocations_are_kept_per_issuer() {
    let realms = Realms::start().await;
    let registry = tenants(&realms);
    let acme = token(
        &realm_key("acme"),
        &realms.issuer("acme"),
        "api",
        &json!({"iat": 1}),
    );
    let globex = token(
        &realm_key("globex"),
        &realms.issuer("globex"),
        "api",
        &json!({"iat": 1}),
    );
    let revoker = registry.revoker();
    // Which issuer's `ada`? A validator of a pattern cannot say; the caller must.
    let e = revoker
        .revoke("tenants", Target::subject_now("ada"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("name the issuer"), "{e}");
    let e = revoker
        .revoke_issuer(
            "tenants",
            "https://evil.example/x",
            Target::subject_now("ada"),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("does not accept issuer"), "{e}");
    revoker
        .revoke_issuer(
            "tenants",
            &realms.issuer("acme"),
            Target::subject_now("ada"),
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while call(&registry, "jwt_tenants", &acme).await.0 != 401 {
        assert!(
            std::time::Instant::now() < deadline,
            "acme's ada still accepted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // globex's ada is someone else.
    assert_eq!(call(&registry, "jwt_tenants", &globex).await.0, 200);
}

#[tokio::test]
async fn entra_id_organizations_accepts_any_tenant_whose_tid_agrees() {
    let realms = Realms::start().await;
    let registry = Registry::builder()
        .validator(
            Validator::new("entra")
                .preset(Preset::entra_id("organizations", "api://acme").base_url(&realms.base)),
        )
        .build()
        .unwrap();
    let key = TestKey::rsa();
    let tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let iss = format!("{}/{tid}/v2.0", realms.base);
    let with = |extra: Value| token(&key, &iss, "api://acme", &extra);
    let ok = with(json!({"tid": tid, "oid": "o-1"}));
    assert_eq!(call(&registry, "jwt_entra", &ok).await.0, 200);
    for (why, t) in [
        (
            "tid of another tenant",
            with(json!({"tid": "other", "oid": "o-1"})),
        ),
        ("no tid", with(json!({"oid": "o-1"}))),
    ] {
        let (status, body) = call(&registry, "jwt_entra", &t).await;
        assert_eq!(status, 401, "{why}");
        assert_eq!(
            body["error_description"], "token issuer not accepted",
            "{why}"
        );
    }
    let other = format!("{}/11111111-2222-3333-4444-555555555555/v2.0", realms.base);
    let t = token(
        &key,
        &other,
        "api://acme",
        &json!({"tid": "11111111-2222-3333-4444-555555555555", "oid": "o-2"}),
    );
    assert_eq!(call(&registry, "jwt_entra", &t).await.0, 200);
    // One shared key set for every tenant.
    assert_eq!(
        realms.hits(),
        BTreeMap::from([("/organizations/discovery/v2.0/keys".to_owned(), 1)])
    );
}
