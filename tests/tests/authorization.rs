//! Authorization after authentication (403 `insufficient_scope`) and the pluggable rejection
//! responses, through an axum router.

use axum::Router;
use axum::routing::get;
use http::request::Parts;
use http::{Response, StatusCode};
use jwtgate::layer::{EmptyRejection, JsonRejection, ProblemRejection};
use jwtgate::{
    Algorithm, Identity, KeySource, Registry, User, Validator, authz::Requirement, authz::Role,
    authz::Roles, authz::Scopes, rejection::Rejection, rejection::RejectionKind,
};
use jwtgate_test::{TestKey, claims, mint};
use jwtgate_tests::{get_with, send, whoami};
use serde_json::{Value, json};

const SECRET: &str = "thesecret-thesecret-thesecret-32";
const ISS: &str = "https://issuer.example";

fn registry() -> Registry {
    Registry::builder()
        .realm("api")
        .validator(
            Validator::new("v")
                .issuer(ISS)
                .audience("api")
                .algorithm(Algorithm::HS256)
                .key(KeySource::secret(SECRET))
                .user(User::claim("sub")),
        )
        .build()
        .unwrap()
}

fn token(extra: Value) -> String {
    let mut c = claims(ISS, "api", 300);
    c["sub"] = json!("ada");
    if let (Some(c), Value::Object(extra)) = (c.as_object_mut(), extra) {
        c.extend(extra);
    }
    mint(&TestKey::hmac(SECRET), "HS256", json!({}), &c)
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn app() -> Router {
    let r = registry();
    let route = |path: &str, layer: jwtgate::layer::JwtAuthLayer| {
        Router::new().route(path, get(whoami)).route_layer(layer)
    };
    Router::new()
        .merge(route(
            "/write",
            r.layer("jwt_v")
                .unwrap()
                .require_scopes(["things:write", "things:read"]),
        ))
        .merge(route(
            "/any",
            r.layer("jwt_v").unwrap().require_any_scope(["a", "b"]),
        ))
        .merge(route(
            "/admin",
            r.layer("jwt_v").unwrap().require_roles(["admin"]),
        ))
        .merge(route(
            "/editor",
            r.layer("jwt_v")
                .unwrap()
                .require_any_role([Role::client("my-app", "editor"), Role::named("owner")]),
        ))
        .merge(route(
            "/verified",
            r.layer("jwt_v")
                .unwrap()
                .require(Requirement::predicate(|id: &Identity| {
                    id.payload().get("email_verified") == Some(&json!(true))
                })),
        ))
        .merge(route(
            "/async",
            r.layer("jwt_v")
                .unwrap()
                .require(Requirement::async_predicate(|id: Identity| async move {
                    tokio::task::yield_now().await;
                    id.user_id().as_str() == Some("ada")
                })),
        ))
        .merge(route(
            "/public",
            r.layer("public_or_jwt_v")
                .unwrap()
                .require_scopes(["things:read"]),
        ))
        .merge(
            Router::new()
                .route(
                    "/handler",
                    get(|id: Identity, scopes: Scopes, roles: Roles| async move {
                        id.require(&Requirement::scopes(["delete"])).await?;
                        Ok::<_, Rejection>(format!(
                            "{} {}",
                            scopes.iter().collect::<Vec<_>>().join(","),
                            roles
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(",")
                        ))
                    }),
                )
                .route_layer(r.layer("jwt_v").unwrap()),
        )
}

async fn status(app: &Router, path: &str, token: Option<&str>) -> (u16, Value, String) {
    let auth = token.map(bearer);
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let r = send(app, get_with(path, &headers)).await;
    (
        r.status.as_u16(),
        r.body.clone(),
        r.header("www-authenticate").to_owned(),
    )
}

#[tokio::test]
async fn scopes_from_scope_scp_and_permissions() {
    let app = app();
    for extra in [
        json!({"scope": "openid things:read things:write"}),
        json!({"scp": ["things:read", "things:write"]}),
        json!({"scp": "things:write things:read"}),
        json!({"permissions": ["things:write", "things:read"]}),
    ] {
        assert_eq!(
            status(&app, "/write", Some(&token(extra.clone()))).await.0,
            200,
            "{extra}"
        );
    }
    let (code, body, challenge) = status(
        &app,
        "/write",
        Some(&token(json!({"scope": "things:read"}))),
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(
        challenge,
        "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"things:write things:read\""
    );
    assert_eq!(
        status(&app, "/any", Some(&token(json!({"scope": "b"}))))
            .await
            .0,
        200
    );
    assert_eq!(
        status(&app, "/any", Some(&token(json!({"scope": "c"}))))
            .await
            .0,
        403
    );
    // An invalid token is still a 401, not a 403.
    let (code, body, _) = status(&app, "/write", Some("x.y.z")).await;
    assert_eq!((code, &body["error"]), (401, &json!("invalid_token")));
}

#[tokio::test]
async fn roles_from_keycloak_and_plain_claims() {
    let app = app();
    let kc = |realm: &[&str], clients: Value| {
        token(json!({"realm_access": {"roles": realm}, "resource_access": clients}))
    };
    assert_eq!(
        status(&app, "/admin", Some(&kc(&["admin"], json!({}))))
            .await
            .0,
        200
    );
    assert_eq!(
        status(&app, "/admin", Some(&token(json!({"roles": ["admin"]}))))
            .await
            .0,
        200
    );
    // Another client's "admin" is not the realm role.
    let other = kc(&[], json!({"other-app": {"roles": ["admin"]}}));
    let (code, _, challenge) = status(&app, "/admin", Some(&other)).await;
    assert_eq!(code, 403);
    assert!(challenge.ends_with("scope=\"admin\""), "{challenge}");
    let editor = kc(&[], json!({"my-app": {"roles": ["editor"]}}));
    assert_eq!(status(&app, "/editor", Some(&editor)).await.0, 200);
    // Keycloak allows `:` in client ids and role names: client `my` with role `app-editor`
    // spelled with colons, or a realm role spelled like the client role, never passes for it.
    for (realm, clients) in [
        (vec![], json!({"my": {"roles": ["app:editor"]}})),
        (vec!["my-app:editor"], json!({})),
    ] {
        let spoof = kc(&realm, clients);
        let (code, _, challenge) = status(&app, "/editor", Some(&spoof)).await;
        assert_eq!(code, 403, "{realm:?}");
        assert!(
            challenge.ends_with("scope=\"editor@my-app owner\""),
            "{challenge}"
        );
    }
}

#[tokio::test]
async fn predicates_sync_and_async() {
    let app = app();
    assert_eq!(
        status(
            &app,
            "/verified",
            Some(&token(json!({"email_verified": true})))
        )
        .await
        .0,
        200
    );
    let (code, body, challenge) = status(
        &app,
        "/verified",
        Some(&token(json!({"email_verified": false}))),
    )
    .await;
    assert_eq!((code, &body["error"]), (403, &json!("insufficient_scope")));
    assert_eq!(
        challenge,
        "Bearer realm=\"api\", error=\"insufficient_scope\""
    );
    assert_eq!(status(&app, "/async", Some(&token(json!({})))).await.0, 200);
    let mut c = claims(ISS, "api", 300);
    c["sub"] = json!("bob");
    let bob = mint(&TestKey::hmac(SECRET), "HS256", json!({}), &c);
    assert_eq!(status(&app, "/async", Some(&bob)).await.0, 403);
}

#[tokio::test]
async fn public_routes_check_requirements_only_when_authenticated() {
    let app = app();
    let (code, body, _) = status(&app, "/public", None).await;
    assert_eq!((code, &body["uid"]), (200, &Value::Null));
    assert_eq!(
        status(
            &app,
            "/public",
            Some(&token(json!({"scope": "things:read"})))
        )
        .await
        .0,
        200
    );
    assert_eq!(
        status(&app, "/public", Some(&token(json!({"scope": "other"}))))
            .await
            .0,
        403
    );
}

#[tokio::test]
async fn handlers_require_with_the_same_403_and_read_scopes_and_roles() {
    let app = app();
    let t = token(json!({"scope": "delete read", "realm_access": {"roles": ["admin"]}}));
    let r = send(
        &app,
        get_with("/handler", &[("authorization", &bearer(&t))]),
    )
    .await;
    assert_eq!(r.status, 200);
    let (code, body, challenge) =
        status(&app, "/handler", Some(&token(json!({"scope": "read"})))).await;
    assert_eq!((code, &body["error"]), (403, &json!("insufficient_scope")));
    assert_eq!(
        challenge,
        "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"delete\""
    );
}

async fn with_responder<R>(responder: R, headers: &[(&str, &str)]) -> Response<axum::body::Body>
where
    R: jwtgate::layer::RejectionResponse<axum::body::Body> + Send + Sync + 'static,
{
    use tower::ServiceExt as _;
    let layer = registry()
        .layer("jwt_v")
        .unwrap()
        .with_rejection_response(responder);
    let app: Router = Router::new().route("/x", get(whoami)).route_layer(layer);
    app.oneshot(get_with("/x", headers)).await.unwrap()
}

#[tokio::test]
async fn responders_choose_the_body_never_the_challenge() {
    use http_body_util::BodyExt as _;
    let body = |res: Response<axum::body::Body>| async move {
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    };
    // JSON.
    let res = with_responder(JsonRejection, &[]).await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(
        res.extensions().get::<Rejection>().unwrap().kind(),
        RejectionKind::MissingCredentials
    );
    // RFC 9457.
    let res = with_responder(ProblemRejection, &[("authorization", "Bearer x.y.z")]).await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let problem: Value = serde_json::from_str(&body(res).await).unwrap();
    assert_eq!(problem["status"], 401);
    assert_eq!(problem["title"], "Unauthorized");
    // Empty.
    let res = with_responder(EmptyRejection, &[]).await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"api\"");
    assert!(body(res).await.is_empty());
    // A closure that forgets the challenge: the layer puts it back, with the rejection.
    let plain = |_: &Parts, r: &Rejection| {
        let mut res = Response::new(axum::body::Body::from(format!("no: {}", r.description())));
        *res.status_mut() = StatusCode::UNAUTHORIZED;
        res
    };
    let res = with_responder(plain, &[]).await;
    assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"api\"");
    assert!(res.extensions().get::<Rejection>().is_some());
    assert_eq!(
        body(res).await,
        "no: no credential was sent; this route reads the Authorization header (Bearer)"
    );
}

#[tokio::test]
async fn the_default_answers_grpc_requests_in_grpc_form() {
    let r = registry();
    let app = Router::new()
        .route("/pkg.Svc/Call", axum::routing::post(whoami))
        .route_layer(r.layer("jwt_v").unwrap());
    let req = http::Request::post("/pkg.Svc/Call")
        .version(http::Version::HTTP_2)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(axum::body::Body::empty())
        .unwrap();
    let res = send(&app, req).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), "application/grpc");
    assert_eq!(res.header("grpc-status"), "16");
    assert_eq!(
        res.header("grpc-message"),
        "no credential was sent; this route reads the Authorization header (Bearer)"
    );
    assert_eq!(res.header("www-authenticate"), "Bearer realm=\"api\"");
    // A 403 is PERMISSION_DENIED.
    let app = Router::new()
        .route("/pkg.Svc/Call", axum::routing::post(whoami))
        .route_layer(r.layer("jwt_v").unwrap().require_scopes(["x"]));
    let req = http::Request::post("/pkg.Svc/Call")
        .version(http::Version::HTTP_2)
        .header("content-type", "application/grpc+proto")
        .header("authorization", bearer(&token(json!({}))))
        .body(axum::body::Body::empty())
        .unwrap();
    let res = send(&app, req).await;
    assert_eq!((res.status.as_u16(), res.header("grpc-status")), (200, "7"));
    // The same header on HTTP/1.1, where gRPC never runs: the plain 403 (a client cannot
    // turn its refusals into 200s), and `application/grpcfoo` is no gRPC on HTTP/2 either.
    for (version, content_type) in [
        (http::Version::HTTP_11, "application/grpc+proto"),
        (http::Version::HTTP_2, "application/grpcfoo"),
    ] {
        let req = http::Request::post("/pkg.Svc/Call")
            .version(version)
            .header("content-type", content_type)
            .header("authorization", bearer(&token(json!({}))))
            .body(axum::body::Body::empty())
            .unwrap();
        let res = send(&app, req).await;
        assert_eq!((res.status.as_u16(), res.header("grpc-status")), (403, ""));
        assert_eq!(res.body["error"], "insufficient_scope");
    }
}
