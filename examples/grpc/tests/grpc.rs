//! A real tonic client against the example server over 127.0.0.1: every refusal arrives as
//! the gRPC status it means.

use std::net::SocketAddr;

use grpc_example::{call, serve};
use jwtgate::{Algorithm, KeySource, Registry, User, Validator, layer::JwtAuthLayer};
use jwtgate_test::{TestKey, mint, now};
use serde_json::json;
use tonic::Code;

const SECRET: &str = "grpc-example-secret-of-32-bytes!";

fn registry() -> Registry {
    Registry::builder()
        .validator(
            Validator::new("demo")
                .issuer("grpc-example")
                .audience("whoami")
                .algorithm(Algorithm::HS256)
                .key(KeySource::secret(SECRET))
                .user(User::claim("sub")),
        )
        // Keys from a provider that cannot be reached.
        .validator(
            Validator::new("down")
                .issuer("https://down.example")
                .audience("whoami")
                .algorithm(Algorithm::RS256)
                .key(KeySource::jwks_url("http://127.0.0.1:9/certs"))
                .user(User::claim("sub")),
        )
        .build()
        .unwrap()
}

async fn start(layer: JwtAuthLayer) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, layer));
    addr
}

fn token(scope: &str) -> String {
    mint(
        &TestKey::hmac(SECRET),
        "HS256",
        json!({}),
        &json!({"iss": "grpc-example", "aud": "whoami", "sub": "ada", "email": "ada@example.com",
                "scope": scope, "exp": now() + 300}),
    )
}

#[tokio::test]
async fn a_tonic_client_gets_grpc_statuses() {
    let registry = registry();
    let addr = start(
        registry
            .layer("jwt_demo")
            .unwrap()
            .require_scopes(["whoami:read"]),
    )
    .await;

    let status = call(addr, None).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(
        status.message(),
        "no credential was sent; this route reads the Authorization header (Bearer)"
    );

    let reply = call(addr, Some(&token("whoami:read"))).await.unwrap();
    assert_eq!(reply.user, "ada");
    assert_eq!(reply.validator, "demo");
    assert_eq!(reply.email, "ada@example.com");

    let forged = mint(
        &TestKey::hmac("another-secret-another-secret-32"),
        "HS256",
        json!({}),
        &json!({"iss": "grpc-example", "aud": "whoami", "sub": "ada", "exp": now() + 300}),
    );
    let status = call(addr, Some(&forged)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "token signature is invalid");

    let status = call(addr, Some(&token("other"))).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn unreachable_keys_are_unavailable() {
    let addr = start(registry().layer("jwt_down").unwrap()).await;
    let token = mint(
        &TestKey::rsa(),
        "RS256",
        json!({"kid": "k1"}),
        &json!({"iss": "https://down.example", "aud": "whoami", "sub": "ada", "exp": now() + 300}),
    );
    let status = call(addr, Some(&token)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), "signing keys are temporarily unavailable");
}
