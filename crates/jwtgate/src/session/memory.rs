//! Session records in this process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{SessionStore, StoreError};
use crate::directory::BoxFuture;

/// Session records kept in this process (clones share them): the default when the registry's
/// store keeps none. Other processes never see them: use `jwtgate-redis` for several instances.
#[derive(Clone, Default)]
pub struct MemorySessions {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    records: HashMap<String, (Vec<u8>, u64)>,
    locks: HashMap<String, (String, Instant)>,
}

/// The most records kept: beyond it, ended ones are dropped, then new ones refused.
const MAX_RECORDS: usize = 100_000;

impl std::fmt::Debug for MemorySessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySessions").finish_non_exhaustive()
    }
}

impl MemorySessions {
    /// No sessions yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many records it holds (ended ones included until they are swept).
    pub fn len(&self) -> usize {
        self.inner().records.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SessionStore for MemorySessions {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        let now = crate::jws::claims::now();
        let found = self
            .inner()
            .records
            .get(key)
            .filter(|(_, until)| *until > now)
            .map(|(value, _)| value.clone());
        Box::pin(async move { Ok(found) })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        until: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let now = crate::jws::claims::now();
        let result = {
            let mut inner = self.inner();
            if inner.records.len() >= MAX_RECORDS && !inner.records.contains_key(key) {
                inner.records.retain(|_, (_, until)| *until > now);
            }
            if inner.records.len() >= MAX_RECORDS && !inner.records.contains_key(key) {
                Err(StoreError::new("too many sessions in memory"))
            } else {
                inner
                    .records
                    .insert(key.to_owned(), (value.to_vec(), until));
                Ok(())
            }
        };
        Box::pin(async move { result })
    }

    fn remove<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner().records.remove(key);
        Box::pin(async move { Ok(()) })
    }

    fn lock<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let now = Instant::now();
        let held = {
            let mut inner = self.inner();
            inner.locks.retain(|_, (_, until)| *until > now);
            match inner.locks.get_mut(key) {
                Some((holder, until)) if holder == owner => {
                    *until = now + ttl;
                    true
                }
                Some(_) => false,
                None => {
                    inner
                        .locks
                        .insert(key.to_owned(), (owner.to_owned(), now + ttl));
                    true
                }
            }
        };
        Box::pin(async move { Ok(held) })
    }

    fn unlock<'a>(&'a self, key: &'a str, owner: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut inner = self.inner();
        if inner
            .locks
            .get(key)
            .is_some_and(|(holder, _)| holder == owner)
        {
            inner.locks.remove(key);
        }
        Box::pin(async move { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_are_kept_until_they_end() {
        let store = MemorySessions::new();
        let now = crate::jws::claims::now();
        store.save("a", b"one", now + 60).await.unwrap();
        store.save("b", b"two", now).await.unwrap();
        assert_eq!(store.load("a").await.unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(store.load("b").await.unwrap(), None);
        store.remove("a").await.unwrap();
        assert_eq!(store.load("a").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_lock_has_one_owner_until_released_or_lapsed() {
        let store = MemorySessions::new();
        let ttl = Duration::from_millis(200);
        assert!(store.lock("k", "one", ttl).await.unwrap());
        assert!(!store.lock("k", "two", ttl).await.unwrap());
        // Renewed by its owner; another owner's release does nothing.
        assert!(store.lock("k", "one", ttl).await.unwrap());
        store.unlock("k", "two").await.unwrap();
        assert!(!store.lock("k", "two", ttl).await.unwrap());
        store.unlock("k", "one").await.unwrap();
        assert!(store.lock("k", "two", ttl).await.unwrap());
        // Lapsed: taken by the next one.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !store.lock("k", "three", ttl).await.unwrap() {
            assert!(Instant::now() < deadline, "the lock never lapsed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
