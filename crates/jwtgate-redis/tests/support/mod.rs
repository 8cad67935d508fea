//! Real Redis for the tests: the shared server CI provides (`JWTGATE_TEST_REDIS_URL`), or a
//! `redis-server` of a test's own on a free port in a temp dir (for tests that stop, restart
//! or cut it off), stopped by its PID; and a TCP relay that can cut one instance off.

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use jwtgate::{Algorithm, CookieMode, KeySource, Registry, User, Validator};
use jwtgate_redis::{RedisSettings, RedisStore};
use jwtgate_test::{TestKey, claims, mint};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

pub const SECRET: &str = "thesecret-thesecret-thesecret-32";
pub const ISS: &str = "https://issuer.example";

/// The shared server's URL, or `None` (the test is skipped) off CI.
pub fn shared_url(test: &str) -> Option<String> {
    match std::env::var("JWTGATE_TEST_REDIS_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must set JWTGATE_TEST_REDIS_URL (.ci/run does)"
            );
            eprintln!("{test}: skipped, JWTGATE_TEST_REDIS_URL is not set");
            None
        }
    }
}

/// A prefix no other test run uses.
pub fn unique_prefix(test: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "test:{test}:{}:{}:{}:",
        std::process::id(),
        jwtgate_test::now(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` of the test's own.
pub struct OwnRedis {
    pub port: u16,
    pub dir: PathBuf,
    aof: bool,
    /// Serves TLS only (`rediss://`), with a certificate for 127.0.0.1 from `dir/ca.crt`.
    tls: bool,
    /// More arguments (`--replicaof ...`).
    pub extra: Vec<String>,
    child: Option<Child>,
}

impl OwnRedis {
    /// Started and answering, or `None` (skipped) where there is no `redis-server` off CI.
    pub async fn start(test: &str, aof: bool) -> Option<Self> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must have redis-server installed"
            );
            eprintln!("{test}: skipped, no redis-server");
            return None;
        }
        let dir = std::env::temp_dir().join(unique_prefix(test).replace(':', "-"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self {
            port: free_port(),
            dir,
            aof,
            tls: false,
            extra: Vec::new(),
            child: None,
        };
        server.run().await;
        Some(server)
    }

    /// A server that speaks TLS only, its certificate (for IP 127.0.0.1) issued by a CA made
    /// here with `openssl` (`dir/ca.crt`).
    pub async fn start_tls(test: &str) -> Option<Self> {
        let mut server = Self::start(test, false).await?;
        server.stop();
        let dir = server.dir.clone();
        let openssl = |args: &[&str]| {
            let ok = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "openssl {args:?}");
        };
        std::fs::write(
            dir.join("ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=jwtgate test CA",
                ],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=127.0.0.1",
                ],
            ]
            .concat(),
        );
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext",
        ]);
        server.tls = true;
        server.run().await;
        Some(server)
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}/0", self.port)
    }

    /// Starts it (again, on the same port and directory) and waits until it answers.
    pub async fn run(&mut self) {
        let mut cmd = Command::new("redis-server");
        if self.tls {
            cmd.args(["--port", "0", "--tls-port", &self.port.to_string()])
                .args([
                    "--tls-cert-file",
                    "server.crt",
                    "--tls-key-file",
                    "server.key",
                ])
                .args(["--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no"])
                .current_dir(&self.dir);
        } else {
            cmd.args(["--port", &self.port.to_string()]);
        }
        let child = cmd
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--save", "", "--daemonize", "no"])
            .args(["--appendonly", if self.aof { "yes" } else { "no" }])
            .args(["--appendfsync", "always"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        let client = || match self.tls {
            false => redis::Client::open(self.url()),
            true => redis::Client::build_with_tls(
                self.url(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(std::fs::read(self.dir.join("ca.crt")).unwrap()),
                },
            ),
        };
        loop {
            if let Ok(client) = client()
                && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not answer");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops it by its PID (SIGKILL: with `appendfsync always`, every write is on disk).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Calls per command since the server started (`INFO commandstats`).
    pub async fn command_calls(&self) -> Vec<(String, u64)> {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut conn)
            .await
            .unwrap();
        info.lines()
            .filter_map(|l| {
                let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = rest
                    .strip_prefix("calls=")?
                    .split(',')
                    .next()?
                    .parse()
                    .ok()?;
                Some((name.to_owned(), calls))
            })
            .collect()
    }
}

/// A Sentinel watching `master` on 127.0.0.1 as `mymaster` (quorum 1, down after 1 s).
pub struct OwnSentinel {
    pub port: u16,
    dir: PathBuf,
    child: Child,
}

impl OwnSentinel {
    pub async fn start(test: &str, master: u16) -> Self {
        let dir = std::env::temp_dir().join(unique_prefix(test).replace(':', "-"));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor mymaster 127.0.0.1 {master} 1\n\
                 sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 5000\n",
                dir.display()
            ),
        )
        .unwrap();
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server --sentinel starts");
        // Owned at once: stopped by Drop whatever happens below.
        let sentinel = Self { port, dir, child };
        let url = format!("redis://127.0.0.1:{port}/");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(client) = redis::Client::open(url.as_str())
                && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && let Ok(addr) = redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg("mymaster")
                    .query_async::<Vec<String>>(&mut conn)
                    .await
                && addr.len() == 2
            {
                return sentinel;
            }
            assert!(Instant::now() < deadline, "the Sentinel did not answer");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The port of the master the Sentinel names now.
    pub async fn master_port(&self) -> u16 {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let addr: Vec<String> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg("mymaster")
            .query_async(&mut conn)
            .await
            .unwrap();
        addr[1].parse().unwrap()
    }
}

impl Drop for OwnSentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP relay to Redis that can cut its clients off (open connections dropped, new ones
/// closed at once) and let them through again.
pub struct Relay {
    pub port: u16,
    open: Arc<AtomicBool>,
    conns: Arc<Mutex<JoinSet<()>>>,
}

impl Relay {
    pub async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(Mutex::new(JoinSet::new()));
        let (o, c) = (open.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !o.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                c.lock().await.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self { port, open, conns }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub async fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.conns.lock().await.abort_all();
    }

    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

/// One app instance on a Redis store.
pub fn instance(url: &str, prefix: &str, staleness: Duration) -> Registry {
    let store = RedisStore::new(RedisSettings::new(url).prefix(prefix)).unwrap();
    Registry::builder()
        .validator(
            Validator::new("v")
                .issuer(ISS)
                .audience("api")
                .algorithm(Algorithm::HS256)
                .key(KeySource::secret(SECRET))
                .user(User::claim("sub"))
                .cookie(
                    CookieMode::new("v_session")
                        .secure(false)
                        .secret("cookie-secret-cookie-secret-0032"),
                ),
        )
        .store(store)
        .store_options(jwtgate::revocation::StoreOptions::new().max_staleness(staleness))
        .build()
        .unwrap()
}

pub fn routes(registry: &Registry) -> Router {
    jwtgate_tests::app(registry, &[("/jwt", "jwt_v")])
        .route_service("/healthz", registry.health_service())
}

pub fn token(extra: Value) -> String {
    let mut c = claims(ISS, "api", 600);
    let Value::Object(extra) = extra else {
        panic!("claims are an object")
    };
    for (k, v) in extra {
        c[k] = v;
    }
    mint(&TestKey::hmac(SECRET), "HS256", json!({}), &c)
}

pub async fn status(app: &Router, token: &str) -> u16 {
    jwtgate_tests::get_bearer(app, "/jwt", Some(token))
        .await
        .status
        .as_u16()
}

/// Polls `check` every 20 ms until it holds; the time it took, or a panic at the deadline.
pub async fn within<F, Fut>(deadline: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < deadline,
            "not within {deadline:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the instance's mirror is loaded and current.
pub async fn ready(registry: &Registry) {
    within(Duration::from_secs(10), "mirror fresh", || async {
        registry.revocation_state().fresh
    })
    .await;
}
