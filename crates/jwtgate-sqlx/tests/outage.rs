//! A Postgres that becomes unreachable mid-run, through a TCP proxy this test controls (the
//! shared server is never stopped): requests get 503 with `Retry-After`, never a 401 or a
//! 500, and the service recovers when the database is back.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http::StatusCode;
use jwtgate::{
    Algorithm, KeySource, Registry, User, Validator, directory::UserMatch, identity::UserId,
};
use jwtgate_sqlx::SqlDirectory;
use jwtgate_sqlx::SqlSettings;
use jwtgate_test::{TestKey, claims, mint};
use jwtgate_tests::{Reply, get_with, send};
use serde_json::json;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const UP: u8 = 0;
/// New connections are closed at once, open ones are cut.
const DOWN: u8 = 1;
/// New connections are accepted and never answered, open ones are cut.
const SILENT: u8 = 2;

/// A proxy to `target` whose state the test sets.
struct Proxy {
    port: u16,
    state: Arc<AtomicU8>,
    cut: watch::Sender<u64>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(AtomicU8::new(UP));
        let (cut, watch) = watch::channel(0_u64);
        let s = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let mut cuts = watch.clone();
                cuts.mark_unchanged();
                let target = target.clone();
                match s.load(Ordering::SeqCst) {
                    DOWN => drop(client),
                    SILENT => {
                        tokio::spawn(async move {
                            let _ = cuts.changed().await;
                            drop(client);
                        });
                    }
                    _ => {
                        tokio::spawn(async move {
                            let Ok(mut server) = TcpStream::connect(&target).await else {
                                return;
                            };
                            tokio::select! {
                                _ = copy_bidirectional(&mut client, &mut server) => {}
                                _ = cuts.changed() => {}
                            }
                        });
                    }
                }
            }
        });
        Self { port, state, cut }
    }

    fn set(&self, state: u8) {
        self.state.store(state, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }
}

fn token(email: &str) -> String {
    let mut c = claims("https://issuer.example", "api", 300);
    c["sub"] = json!(email);
    c["email"] = json!(email);
    mint(
        &TestKey::hmac("thesecret-of-at-least-32-bytes!!"),
        "HS256",
        json!({}),
        &c,
    )
}

async fn whoami(id: UserId) -> String {
    id.to_string()
}

async fn call(app: &Router, email: &str) -> Reply {
    let auth = format!("Bearer {}", token(email));
    send(app, get_with("/hello", &[("authorization", &auth)])).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_postgres_gives_503_and_the_service_recovers() {
    let Some(db) = support::postgres().await else {
        return;
    };
    let (host_port, name) = {
        let rest = db.url.split_once("@").map_or(db.url.as_str(), |(_, r)| r);
        let (hp, name) = rest.split_once('/').unwrap();
        (hp.to_owned(), name.to_owned())
    };
    let proxy = Proxy::start(host_port).await;
    let user = db
        .url
        .split_once("://")
        .unwrap()
        .1
        .split_once('@')
        .map(|(u, _)| u)
        .unwrap_or("postgres");
    let mut settings =
        SqlSettings::new(format!("postgres://{user}@127.0.0.1:{}/{name}", proxy.port));
    settings.timeout = Duration::from_secs(2);
    // Every request asks the database: the cache would hide the outage.
    settings.cache_ttl = Duration::ZERO;
    let directory = SqlDirectory::connect(&settings).await.unwrap();
    let registry = Registry::builder()
        .users(directory.clone())
        .validator(
            Validator::new("app")
                .issuer("https://issuer.example")
                .audience("api")
                .algorithm(Algorithm::HS256)
                .key(KeySource::secret("thesecret-of-at-least-32-bytes!!"))
                .user(User::directory(UserMatch::Email).register(true)),
        )
        .build()
        .unwrap();
    let app = Router::new()
        .route("/hello", get(whoami))
        .route_layer(registry.layer("jwt_app").unwrap())
        .route_service("/healthz", registry.health_service());
    let health = |app: Router| async move { send(&app, get_with("/healthz", &[])).await };

    let before = call(&app, "a@example.com").await;
    assert_eq!(before.status, StatusCode::OK);
    let healthy = health(app.clone()).await;
    assert_eq!(healthy.status, StatusCode::OK);
    assert_eq!(healthy.body["users"]["status"], "ok");

    for state in [DOWN, SILENT] {
        proxy.set(state);
        for email in ["a@example.com", "b@example.com"] {
            let reply = call(&app, email).await;
            assert_eq!(
                reply.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "state {state} {email}"
            );
            assert_eq!(reply.header("retry-after"), "5");
            assert_eq!(reply.body["error"], "temporarily_unavailable");
            assert_eq!(
                reply.body["error_description"],
                "the user directory is unavailable"
            );
            assert_eq!(reply.header("www-authenticate"), "");
        }
        // The outage shows in the health check, with the directory as its reason.
        let sick = health(app.clone()).await;
        assert_eq!(
            sick.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "state {state}"
        );
        assert_eq!(sick.body["status"], "unavailable");
        assert_eq!(sick.body["users"]["status"], "unavailable");
        assert!(
            sick.body["users"]["error"]
                .as_str()
                .is_some_and(|e| !e.is_empty())
        );
        proxy.set(UP);
        // Back: the pool drops its broken connections and opens new ones.
        let mut recovered = None;
        for _ in 0..20 {
            let reply = call(&app, "b@example.com").await;
            if reply.status == StatusCode::OK {
                recovered = Some(reply);
                break;
            }
            assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(
            recovered.is_some(),
            "state {state}: the service did not recover"
        );
    }
    assert_eq!(call(&app, "a@example.com").await.status, StatusCode::OK);
    let healthy = health(app.clone()).await;
    assert_eq!(healthy.status, StatusCode::OK, "{:?}", healthy.body);
    assert_eq!(db.count("SELECT COUNT(*) FROM jwtgate_users").await, 2);
    directory.close().await;
    db.finish().await;
}
