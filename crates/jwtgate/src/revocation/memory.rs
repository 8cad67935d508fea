//! The default store: this process only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{Mirror, Revocation, RevocationStore, StoreError};
use crate::directory::BoxFuture;

/// Revocations kept in this process: every registry following it (clones share it) sees a
/// revocation at once; other processes never do. The default when no store is set.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
    sessions: crate::session::MemorySessions,
}

#[derive(Default)]
struct Inner {
    mirrors: Vec<Mirror>,
    /// One-time keys and when each may be forgotten.
    used: HashMap<String, u64>,
}

/// The most one-time keys remembered: beyond it, new ones are refused (a flood of distinct
/// logout tokens cannot grow memory without bound).
const MAX_USED: usize = 100_000;

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl RevocationStore for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn revoke<'a>(&'a self, revocation: &'a Revocation) -> BoxFuture<'a, Result<(), StoreError>> {
        let result = {
            let mut inner = self.lock();
            inner.mirrors.retain(|m| !m.is_closed());
            inner
                .mirrors
                .iter()
                .try_for_each(|mirror| mirror.admit(revocation.clone()))
        };
        Box::pin(async move { result })
    }

    fn follow(&self, mirror: Mirror) {
        mirror.confirm_local();
        self.lock().mirrors.push(mirror);
    }

    fn first_use<'a>(
        &'a self,
        key: &'a str,
        until: u64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let now = crate::jws::claims::now();
        let result = {
            let mut inner = self.lock();
            if inner.used.len() >= MAX_USED {
                inner.used.retain(|_, until| *until > now);
            }
            match inner.used.get(key) {
                Some(at) if *at > now => Ok(false),
                _ if inner.used.len() >= MAX_USED => {
                    Err(StoreError::new("too many one-time keys in memory"))
                }
                _ => {
                    inner.used.insert(key.to_owned(), until);
                    Ok(true)
                }
            }
        };
        Box::pin(async move { result })
    }

    fn sessions(&self) -> Option<Arc<dyn crate::session::SessionStore>> {
        Some(Arc::new(self.sessions.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Target;
    use super::*;

    #[tokio::test]
    async fn every_follower_sees_a_revocation_at_once() {
        let store = MemoryStore::new();
        let (a, b) = (Mirror::new(10), Mirror::new(10));
        store.follow(a.clone());
        store.clone().follow(b.clone());
        let far = crate::jws::claims::now() + 60;
        store
            .revoke(&Revocation::new("i", Target::Token("j".into()), far))
            .await
            .unwrap();
        assert_eq!((a.len(), b.len()), (1, 1));
        assert!(a.state(1).fresh && b.state(1).fresh);
        // A closed follower is let go.
        b.close();
        store
            .revoke(&Revocation::new("i", Target::Token("k".into()), far))
            .await
            .unwrap();
        assert_eq!((a.len(), b.len()), (2, 1));
        assert_eq!(store.lock().mirrors.len(), 1);
    }

    #[tokio::test]
    async fn a_full_mirror_fails_the_write() {
        let store = MemoryStore::new();
        let mirror = Mirror::new(1);
        store.follow(mirror.clone());
        let far = crate::jws::claims::now() + 60;
        let first = Revocation::new("i", Target::Token("1".into()), far);
        store.revoke(&first).await.unwrap();
        let err = store
            .revoke(&Revocation::new("i", Target::Token("2".into()), far))
            .await
            .unwrap_err();
        assert_eq!(
            err.message(),
            "the revocation store is full (max_entries = 1)"
        );
        // Refused, not half-applied: the mirror still serves requests.
        assert_eq!(mirror.len(), 1);
        assert!(mirror.state(5).fresh);
    }

    #[tokio::test]
    async fn a_one_time_key_is_new_once_until_it_ends() {
        let store = MemoryStore::new();
        let now = crate::jws::claims::now();
        assert_eq!(store.first_use("k", now + 60).await, Ok(true));
        assert_eq!(store.first_use("k", now + 60).await, Ok(false));
        assert_eq!(store.first_use("other", now + 60).await, Ok(true));
        // One that ended may be used again (nothing it guarded can still be valid).
        assert_eq!(store.first_use("old", now - 1).await, Ok(true));
        assert_eq!(store.first_use("old", now + 60).await, Ok(true));
    }
}
