//! The store: writes go through one script (entry and change-log record together, or
//! neither), reads are the followers' (see `follow`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jwtgate::directory::BoxFuture;
use jwtgate::revocation::{Mirror, Revocation, RevocationStore, StoreError, Target};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::Error;
use crate::keys::Keys;
use crate::settings::RedisSettings;

/// How long a connection attempt and a command may take.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(2);
/// The change log keeps about this many records; a follower further behind reloads.
const LOG_LENGTH: u64 = 100_000;
/// The latest instant an entry holds: the script's JSON numbers are exact below 10^14.
const MAX_INSTANT: u64 = 99_999_999_999_999;

/// Writes the entry (merged with the one it widens) and its change-log record, atomically.
/// KEYS: entries, log. ARGV: entry key, entry JSON, cap, log length.
const WRITE: &str = r"
local value = ARGV[2]
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local ok, a = pcall(cjson.decode, old)
  if ok and type(a) == 'table' then
    local b = cjson.decode(value)
    if type(a['until']) == 'number' and a['until'] > b['until'] then b['until'] = a['until'] end
    if b['before'] and type(a['before']) == 'number' and a['before'] > b['before'] then
      b['before'] = a['before']
    end
    value = cjson.encode(b)
  end
elseif redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return redis.error_reply('FULL the revocation store holds max_entries entries')
end
redis.call('HSET', KEYS[1], ARGV[1], value)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'e', value)
return 1
";

/// Revocations on Redis (or Valkey), shared by every instance that uses the same server and
/// prefix. Cheap to clone. Creating it does no I/O: an unreachable server is reported by
/// `/healthz` and answered per the registry's [`StoreOptions`](jwtgate::revocation::StoreOptions),
/// never a crash.
#[derive(Clone)]
pub struct RedisStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    source: Source,
    pub(crate) keys: Keys,
    settings: RedisSettings,
    /// Connected on first use; reconnects by itself afterwards (backoff capped at 2 s), and
    /// is made again after a connection fault (behind Sentinel: at the new master).
    writer: Mutex<Option<ConnectionManager>>,
    script: redis::Script,
    mirrors: Mutex<Vec<Mirror>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for `settings`; a bad URL is an error now, an unreachable server is not.
    pub fn new(settings: RedisSettings) -> Result<Self, Error> {
        settings.check()?;
        if settings.url.starts_with("rediss://") {
            // rustls needs a process-wide provider: the app's if it installed one, else
            // aws-lc-rs (jwtgate's own backend). An app installing its own later gets an
            // error from rustls, not a panic; install yours before building the store.
            if rustls::crypto::CryptoProvider::get_default().is_none() {
                let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            }
        }
        let source = match settings.sentinel()? {
            Some(sentinel) => Source::sentinel(&sentinel)?,
            None => Source::Direct(Self::direct(&settings)?),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                source,
                keys: Keys::new(&settings.prefix),
                settings,
                writer: Mutex::new(None),
                script: redis::Script::new(WRITE),
                mirrors: Mutex::new(Vec::new()),
            }),
        })
    }

    fn direct(settings: &RedisSettings) -> Result<redis::Client, Error> {
        // The client's own message may quote the URL, password included: not repeated.
        let client = match &settings.ca_file {
            None => redis::Client::open(settings.url.as_str()),
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    Error::new("ca_file", format!("cannot read {}: {e}", path.display()))
                })?;
                redis::Client::build_with_tls(
                    settings.url.as_str(),
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem),
                    },
                )
            }
        }
        .map_err(|e| match &settings.ca_file {
            Some(_) if e.kind() == redis::ErrorKind::InvalidClientConfig => {
                Error::new("ca_file", "not a PEM file of CA certificates")
            }
            _ => Error::new("url", format!("not a Redis URL ({:?})", e.kind())),
        })?;
        Ok(client)
    }

    pub(crate) async fn writer(&self) -> Result<ConnectionManager, StoreError> {
        if let Some(writer) = self.lock_writer().as_ref() {
            return Ok(writer.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_max_delay(TIMEOUT)
            .set_number_of_retries(2);
        let client = self.inner.source.client().await?;
        let writer = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| store_error("connect", &e))?;
        *self.lock_writer() = Some(writer.clone());
        Ok(writer)
    }

    /// Forgets the writer after a connection fault or a write refused by a replica (a
    /// failover): the next write connects again, to the master of the moment.
    pub(crate) fn writer_failed(&self, e: &redis::RedisError) {
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_timeout()
            || e.code() == Some("READONLY")
        {
            *self.lock_writer() = None;
        }
    }

    fn lock_writer(&self) -> std::sync::MutexGuard<'_, Option<ConnectionManager>> {
        self.inner
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A client for the store's server (behind Sentinel: its master now).
    pub(crate) async fn client(&self) -> Result<redis::Client, StoreError> {
        self.inner.source.client().await
    }

    fn mirrors(&self) -> std::sync::MutexGuard<'_, Vec<Mirror>> {
        self.inner
            .mirrors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// How the store finds its server.
enum Source {
    Direct(redis::Client),
    /// Asked of the Sentinels at every (re)connection.
    Sentinel(tokio::sync::Mutex<redis::sentinel::SentinelClient>),
}

impl Source {
    fn sentinel(s: &crate::settings::Sentinel) -> Result<Self, Error> {
        let mut info = redis::RedisConnectionInfo::default().set_db(s.db);
        if let Some(user) = &s.username {
            info = info.set_username(user);
        }
        if let Some(password) = &s.password {
            info = info.set_password(password);
        }
        let node =
            redis::sentinel::SentinelNodeConnectionInfo::default().set_redis_connection_info(info);
        redis::sentinel::SentinelClient::build(
            s.nodes.clone(),
            s.master.clone(),
            Some(node),
            redis::sentinel::SentinelServerType::Master,
        )
        .map(|c| Self::Sentinel(tokio::sync::Mutex::new(c)))
        .map_err(|e| Error::new("url", format!("redis+sentinel URL: {:?}", e.kind())))
    }

    async fn client(&self) -> Result<redis::Client, StoreError> {
        match self {
            Self::Direct(client) => Ok(client.clone()),
            Self::Sentinel(sentinel) => sentinel
                .lock()
                .await
                .async_get_client()
                .await
                .map_err(|e| store_error("sentinel", &e)),
        }
    }
}

/// A Redis error as the store reports it: what was being done and the error's kind (its
/// text can quote arguments).
pub(crate) fn store_error(doing: &str, e: &redis::RedisError) -> StoreError {
    let what = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connection_refusal() {
        "connection refused".to_owned()
    } else if e.is_io_error() || e.is_connection_dropped() {
        "connection lost".to_owned()
    } else {
        match e.code() {
            Some(code) => format!("server said {code}"),
            None => format!("{:?}", e.kind()),
        }
    };
    StoreError::new(format!("redis {doing}: {what}"))
}

fn clamped(revocation: &Revocation) -> Revocation {
    let target = match revocation.target() {
        Target::Subject { subject, before } => Target::Subject {
            subject: subject.clone(),
            before: (*before).min(MAX_INSTANT),
        },
        other => other.clone(),
    };
    Revocation::new(
        revocation.issuer(),
        target,
        revocation.until().min(MAX_INSTANT),
    )
}

impl RevocationStore for RedisStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn revoke<'a>(&'a self, revocation: &'a Revocation) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let revocation = clamped(revocation);
            let cap = self
                .mirrors()
                .iter()
                .map(Mirror::capacity)
                .min()
                .unwrap_or(1_000_000);
            let mut conn = self.writer().await?;
            let written: redis::RedisResult<i64> = self
                .inner
                .script
                .key(&self.inner.keys.entries)
                .key(&self.inner.keys.log)
                .arg(revocation.key())
                .arg(revocation.encode())
                .arg(cap)
                .arg(LOG_LENGTH)
                .invoke_async(&mut conn)
                .await;
            match written {
                Ok(_) => {}
                Err(e) if e.code() == Some("FULL") => {
                    return Err(StoreError::new(format!(
                        "the revocation store is full (max_entries = {cap})"
                    )));
                }
                Err(e) => {
                    self.writer_failed(&e);
                    return Err(store_error("write", &e));
                }
            }
            // This instance sees it at once; the log brings it to the others (and back here,
            // where it is already known).
            for mirror in self.mirrors().iter() {
                mirror.apply([revocation.clone()]);
            }
            Ok(())
        })
    }

    fn follow(&self, mirror: Mirror) {
        {
            let mut mirrors = self.mirrors();
            mirrors.retain(|m| !m.is_closed());
            mirrors.push(mirror.clone());
        }
        crate::follow::start(self.clone(), mirror);
    }

    fn first_use<'a>(
        &'a self,
        key: &'a str,
        until: u64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut conn = self.writer().await?;
            let set: redis::RedisResult<Option<String>> = redis::cmd("SET")
                .arg(self.inner.keys.used(key))
                .arg(1)
                .arg("NX")
                .arg("EXAT")
                .arg(until.clamp(1, MAX_INSTANT))
                .query_async(&mut conn)
                .await;
            set.map(|reply| reply.is_some()).map_err(|e| {
                self.writer_failed(&e);
                store_error("replay check", &e)
            })
        })
    }

    fn sessions(&self) -> Option<Arc<dyn jwtgate::session::SessionStore>> {
        Some(Arc::new(self.clone()))
    }
}
