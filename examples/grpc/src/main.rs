//! `cargo run -p grpc-example`: a gRPC service behind jwtgate on 127.0.0.1:50051, with a demo
//! HS256 validator; prints a token and calls itself with and without it.

use jwtgate::{Algorithm, KeySource, Registry, User, Validator};

const SECRET: &str = "grpc-example-secret-of-32-bytes!";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let registry = Registry::builder()
        .validator(
            Validator::new("demo")
                .issuer("grpc-example")
                .audience("whoami")
                .algorithm(Algorithm::HS256)
                .key(KeySource::secret(SECRET))
                .user(User::claim("sub")),
        )
        .build()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:50051").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(grpc_example::serve(listener, registry.layer("jwt_demo")?));
    let exp = jwtgate_test::now() + 3600;
    let token = jwtgate_test::mint(
        &jwtgate_test::TestKey::hmac(SECRET),
        "HS256",
        serde_json::json!({}),
        &serde_json::json!({"iss": "grpc-example", "aud": "whoami", "sub": "ada", "exp": exp}),
    );
    println!("demo.Whoami on {addr}; a token: {token}");
    match grpc_example::call(addr, None).await {
        Ok(reply) => println!("without a token: {reply:?}"),
        Err(status) => println!("without a token: {:?} {}", status.code(), status.message()),
    }
    let reply = grpc_example::call(addr, Some(&token)).await?;
    println!(
        "with the token: user {} (validator {})",
        reply.user, reply.validator
    );
    Ok(())
}
