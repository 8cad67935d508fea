//! What several test binaries share.
#![allow(dead_code)]

use jwtgate::revocation::MemoryStore;

/// A store two instances share: Redis under a fresh prefix when the tests have one
/// (`JWTGATE_TEST_REDIS_URL`), else one memory store.
#[derive(Clone)]
pub(crate) enum Shared {
    Memory(MemoryStore),
    Redis { url: String, prefix: String },
}

impl Shared {
    pub(crate) fn new(test: &str) -> Self {
        match std::env::var("JWTGATE_TEST_REDIS_URL") {
            Ok(url) => Self::Redis {
                url,
                prefix: format!("{test}:{}:{}:", std::process::id(), jwtgate_test::now()),
            },
            Err(_) => Self::Memory(MemoryStore::new()),
        }
    }

    pub(crate) fn apply(&self, builder: jwtgate::RegistryBuilder) -> jwtgate::RegistryBuilder {
        match self {
            Self::Memory(store) => builder.store(store.clone()),
            Self::Redis { url, prefix } => builder.store(
                jwtgate_redis::RedisStore::new(
                    jwtgate_redis::RedisSettings::new(url.as_str()).prefix(prefix.as_str()),
                )
                .unwrap(),
            ),
        }
    }
}
