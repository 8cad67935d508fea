//! Keeping one mirror current: load the whole set, then follow the change log with a
//! blocking read that returns at least once a second (each return confirms the mirror),
//! and on any error reconnect and load again. Nothing published while an instance was away
//! is lost: the set is the truth, the log only what changed since it was read.

use std::time::{Duration, Instant};

use jwtgate::revocation::{Mirror, Revocation, StoreError};
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;

use crate::reply;
use crate::store::{RedisStore, TIMEOUT, store_error};

/// How long one read of the log blocks when nothing happens.
const BLOCK_MS: u64 = 1000;
/// Records read at once.
const BATCH: usize = 1000;
/// Reconnect backoff: from 100 ms, doubling, at most 2 s (so that the store is seen again
/// within a few seconds of answering).
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// A full reload now and then also drops ended entries from the server.
const RELOAD_EVERY: Duration = Duration::from_secs(300);

/// Starts the follower on the current tokio runtime, or on a thread of its own when the
/// registry is built outside one.
pub(crate) fn start(store: RedisStore, mirror: Mirror) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(run(store, mirror));
        }
        Err(_) => {
            let spawned = std::thread::Builder::new()
                .name("jwtgate-redis-follower".into())
                .spawn(move || {
                    match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt.block_on(run(store, mirror)),
                        Err(e) => mirror.report_error(&StoreError::new(format!(
                            "cannot start the follower: {e}"
                        ))),
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start the revocation follower");
            }
        }
    }
}

async fn run(store: RedisStore, mirror: Mirror) {
    let mut backoff = BACKOFF_MIN;
    while !mirror.is_closed() {
        match follow_once(&store, &mirror).await {
            // Closed, or due for a reload: go round without waiting.
            Ok(()) => backoff = BACKOFF_MIN,
            Err(e) => {
                tracing::warn!(error = %e, "revocation store: following failed; reconnecting");
                mirror.report_error(&e);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// One connection's life: load, then follow until an error, a due reload or the close.
async fn follow_once(store: &RedisStore, mirror: &Mirror) -> Result<(), StoreError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(TIMEOUT))
        .set_response_timeout(Some(TIMEOUT + Duration::from_millis(BLOCK_MS)));
    let mut conn = store
        .client()
        .await?
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| store_error("connect", &e))?;
    let mut last = load(store, &mut conn, mirror).await?;
    let loaded = Instant::now();
    while !mirror.is_closed() && loaded.elapsed() < RELOAD_EVERY {
        let read: redis::Value = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(BLOCK_MS)
            .arg("STREAMS")
            .arg(&store.inner.keys.log)
            .arg(&last)
            .query_async(&mut conn)
            .await
            .map_err(|e| store_error("read", &e))?;
        match reply::read_log(&read).map_err(|e| StoreError::new(format!("redis read: {}", e.0)))? {
            None => {}
            Some(read) => {
                if read.unreadable > 0 {
                    tracing::warn!(
                        records = read.unreadable,
                        "revocation log: unreadable records skipped"
                    );
                }
                mirror.apply(read.entries);
                last = read.last;
            }
        }
        mirror.confirm();
    }
    Ok(())
}

/// Reads the whole set, dropping ended entries from the server as it goes; the mirror takes
/// it in one swap when the set is read. Returns the log position the set is current at.
async fn load(
    store: &RedisStore,
    conn: &mut MultiplexedConnection,
    mirror: &Mirror,
) -> Result<String, StoreError> {
    let keys = &store.inner.keys;
    // The position first: whatever is written after it is both in the set and in the log
    // read next (applying it twice is harmless).
    let tail: redis::Value = redis::cmd("XREVRANGE")
        .arg(&keys.log)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await
        .map_err(|e| store_error("load", &e))?;
    let last =
        reply::last_id(&tail).map_err(|e| StoreError::new(format!("redis load: {}", e.0)))?;
    let now = jwtgate_now();
    let cap = mirror.capacity();
    let mut entries: Vec<Revocation> = Vec::new();
    let mut ended: Vec<Vec<u8>> = Vec::new();
    let mut bad = 0usize;
    let mut cursor = 0u64;
    loop {
        let page: redis::Value = redis::cmd("HSCAN")
            .arg(&keys.entries)
            .arg(cursor)
            .arg("COUNT")
            .arg(BATCH)
            .query_async(conn)
            .await
            .map_err(|e| store_error("load", &e))?;
        let (next, pairs) =
            reply::scan_page(&page).map_err(|e| StoreError::new(format!("redis load: {}", e.0)))?;
        for (field, value) in pairs {
            match Revocation::decode(value) {
                Ok(r) if r.until() <= now => ended.push(field.to_vec()),
                Ok(r) => entries.push(r),
                Err(_) => bad += 1,
            }
        }
        // More than the cap: the mirror says it is incomplete (requests get 503), and the
        // reading stops growing here.
        if entries.len() > cap {
            break;
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    if bad > 0 {
        tracing::warn!(entries = bad, "revocation set: unreadable entries skipped");
    }
    for chunk in ended.chunks(100) {
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(&keys.entries);
        for field in chunk {
            cmd.arg(field.as_slice());
        }
        // Cleaning up is best effort: another instance will do it otherwise.
        let _: redis::RedisResult<i64> = cmd.query_async(conn).await;
    }
    tracing::debug!(entries = entries.len(), "revocation set loaded");
    mirror.reload(entries);
    mirror.confirm();
    Ok(last)
}

fn jwtgate_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
