//! How long a revocation written by one instance takes to reach another through Redis:
//! `cargo run --release -p jwtgate-redis --example propagation [-- redis://127.0.0.1:6379/0]`.
//! Two registries with their own stores (their own connections, as two processes would have)
//! share a server under a fresh prefix; each of 100 revocations is written on A and B's
//! mirror is polled until it holds it. Prints the median and the maximum.

use std::time::{Duration, Instant};

use jwtgate::revocation::Target;
use jwtgate::{Algorithm, KeySource, Registry, User, Validator};
use jwtgate_redis::{RedisSettings, RedisStore};

fn instance(url: &str, prefix: &str) -> Registry {
    Registry::builder()
        .validator(
            Validator::new("v")
                .issuer("https://issuer.example")
                .audience("api")
                .algorithm(Algorithm::HS256)
                .key(KeySource::secret("thesecret-thesecret-thesecret-32"))
                .user(User::claim("sub")),
        )
        .store(RedisStore::new(RedisSettings::new(url).prefix(prefix)).expect("a Redis URL"))
        .build()
        .expect("a registry")
}

#[tokio::main]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "redis://127.0.0.1:6379/0".to_owned());
    let prefix = format!("propagation:{}:", std::process::id());
    let (a, b) = (instance(&url, &prefix), instance(&url, &prefix));
    let start = Instant::now();
    while !(a.revocation_state().fresh && b.revocation_state().fresh) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "Redis does not answer at {url}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut took = Vec::with_capacity(100);
    for i in 0..100 {
        let written = Instant::now();
        a.revoker()
            .revoke("v", Target::Token(format!("jti-{i}")))
            .await
            .expect("written");
        while b.revocation_state().entries <= i {
            tokio::task::yield_now().await;
        }
        took.push(written.elapsed());
    }
    took.sort();
    println!(
        "propagation A -> B over 100 revocations: median {:?}, max {:?} (write included)",
        took[took.len() / 2],
        took[took.len() - 1]
    );
}
