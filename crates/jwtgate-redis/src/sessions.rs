//! Session records and refresh locks (see `jwtgate::session`): plain keys with an expiry,
//! the locks compared and changed by scripts so that only their holder renews or releases
//! them.

use std::time::Duration;

use jwtgate::directory::BoxFuture;
use jwtgate::session::{SessionStore, StoreError};

use crate::store::{RedisStore, store_error};

/// The largest record read back: a larger value is refused without being sent.
const MAX_RECORD: usize = 256 * 1024;

/// KEYS: record. ARGV: the largest size read.
const LOAD: &str = r"
if redis.call('STRLEN', KEYS[1]) > tonumber(ARGV[1]) then
  return redis.error_reply('TOOBIG the session record is larger than allowed')
end
return redis.call('GET', KEYS[1])
";

/// Takes the lock for its owner, or renews it when the owner holds it.
/// KEYS: lock. ARGV: owner, ttl in milliseconds.
const LOCK: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
elseif holder then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
";

/// Releases the lock when its owner still holds it. KEYS: lock. ARGV: owner.
const UNLOCK: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// The latest instant a record lives to (as `EXAT` takes it).
const MAX_INSTANT: u64 = 99_999_999_999_999;

impl RedisStore {
    async fn session_query<T: redis::FromRedisValue>(
        &self,
        doing: &str,
        run: impl AsyncFnOnce(&mut redis::aio::ConnectionManager) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self.writer().await?;
        run(&mut conn).await.map_err(|e| {
            self.writer_failed(&e);
            store_error(doing, &e)
        })
    }
}

impl SessionStore for RedisStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move {
            let name = self.inner.keys.session(key);
            self.session_query("session read", async |conn| {
                redis::Script::new(LOAD)
                    .key(&name)
                    .arg(MAX_RECORD)
                    .invoke_async(conn)
                    .await
            })
            .await
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        until: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let name = self.inner.keys.session(key);
            self.session_query("session write", async |conn| {
                redis::cmd("SET")
                    .arg(&name)
                    .arg(value)
                    .arg("EXAT")
                    .arg(until.clamp(1, MAX_INSTANT))
                    .query_async::<()>(conn)
                    .await
            })
            .await
        })
    }

    fn remove<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let name = self.inner.keys.session(key);
            self.session_query("session delete", async |conn| {
                redis::cmd("DEL").arg(&name).query_async::<()>(conn).await
            })
            .await
        })
    }

    fn lock<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let name = self.inner.keys.lock(key);
            let ttl = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            self.session_query("session lock", async |conn| {
                redis::Script::new(LOCK)
                    .key(&name)
                    .arg(owner)
                    .arg(ttl)
                    .invoke_async::<i64>(conn)
                    .await
            })
            .await
            .map(|held| held == 1)
        })
    }

    fn unlock<'a>(&'a self, key: &'a str, owner: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let name = self.inner.keys.lock(key);
            self.session_query("session unlock", async |conn| {
                redis::Script::new(UNLOCK)
                    .key(&name)
                    .arg(owner)
                    .invoke_async::<i64>(conn)
                    .await
            })
            .await
            .map(|_| ())
        })
    }
}
