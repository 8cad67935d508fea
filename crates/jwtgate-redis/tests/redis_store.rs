//! The Redis store against real servers: two instances sharing one Redis, an instance cut
//! off and back, Redis stopped and restarted, an instance started while Redis is down, and
//! no Redis command per request in steady state.

mod support;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwtgate::revocation::{RevocationStore, Target};
use jwtgate_redis::{RedisSettings, RedisStore};
use serde_json::{Value, json};
use support::*;

const SECOND: Duration = Duration::from_secs(1);

/// The session id a cookie-mode cookie carries (in its signed header).
fn session_id(set_cookie: &str) -> String {
    let value = set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1;
    let header = URL_SAFE_NO_PAD
        .decode(value.split('.').next().unwrap())
        .unwrap();
    let header: Value = serde_json::from_slice(&header).unwrap();
    header["session"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_instance_is_refused_on_the_other_within_a_second() {
    let Some(url) = shared_url("two_instances") else {
        return;
    };
    let prefix = unique_prefix("two");
    let (a, b) = (
        instance(&url, &prefix, Duration::from_secs(5)),
        instance(&url, &prefix, Duration::from_secs(5)),
    );
    ready(&a).await;
    ready(&b).await;
    let app_b = routes(&b);
    let now = jwtgate_test::now() - 5;
    let bearer = token(json!({"sub": "ada", "jti": "j-1", "iat": now}));
    let other = token(json!({"sub": "bob", "jti": "j-2", "iat": now}));
    let subject = token(json!({"sub": "cy", "iat": now}));
    for t in [&bearer, &other, &subject] {
        assert_eq!(status(&app_b, t).await, 200);
    }
    // A session started on B by a bearer request, revoked from A by its id.
    let res = jwtgate_tests::get_bearer(
        &app_b,
        "/jwt",
        Some(&token(json!({"sub": "di", "iat": now}))),
    )
    .await;
    let set_cookie = res.header("set-cookie").to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let by_cookie = || {
        let (app_b, cookie) = (&app_b, &cookie);
        async move {
            jwtgate_tests::send(
                app_b,
                jwtgate_tests::get_with("/jwt", &[("cookie", cookie)]),
            )
            .await
            .status
            .as_u16()
        }
    };
    assert_eq!(by_cookie().await, 200);

    let revoker = a.revoker();
    let mut took = Vec::new();
    revoker
        .revoke("v", Target::Token("j-1".into()))
        .await
        .unwrap();
    took.push(
        within(SECOND, "jti refused on B", || async {
            status(&app_b, &bearer).await == 401
        })
        .await,
    );
    revoker
        .revoke("v", Target::subject_now("cy"))
        .await
        .unwrap();
    took.push(
        within(SECOND, "subject refused on B", || async {
            status(&app_b, &subject).await == 401
        })
        .await,
    );
    revoker
        .revoke("v", Target::Session(session_id(&set_cookie)))
        .await
        .unwrap();
    took.push(
        within(SECOND, "session refused on B", || async {
            by_cookie().await == 401
        })
        .await,
    );
    eprintln!("propagation A -> B: {took:?}");
    assert_eq!(status(&app_b, &other).await, 200, "only what was revoked");
    // What the store holds: one hash entry and one log record per revocation.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let entries: u64 = redis::cmd("HLEN")
        .arg(format!("{prefix}{{revocations}}:entries"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let records: u64 = redis::cmd("XLEN")
        .arg(format!("{prefix}{{revocations}}:log"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!((entries, records), (3, 3));
    assert_eq!(
        (a.revocation_state().entries, b.revocation_state().entries),
        (3, 3)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_state_requests_send_no_command_to_redis() {
    let Some(redis) = OwnRedis::start("commands", false).await else {
        return;
    };
    let registry = instance(&redis.url(), "app:", Duration::from_secs(5));
    ready(&registry).await;
    registry
        .revoker()
        .revoke("v", Target::Token("gone".into()))
        .await
        .unwrap();
    let app = routes(&registry);
    let good = token(json!({"sub": "ada", "jti": "kept"}));
    let gone = token(json!({"sub": "ada", "jti": "gone"}));
    let before = redis.command_calls().await;
    let started = std::time::Instant::now();
    for i in 0..10_000 {
        let expected = if i % 10 == 0 { 401 } else { 200 };
        let t = if i % 10 == 0 { &gone } else { &good };
        assert_eq!(status(&app, t).await, expected);
    }
    let secs = started.elapsed().as_secs();
    let after = redis.command_calls().await;
    let calls = |stats: &[(String, u64)], name: &str| {
        stats.iter().find(|(n, _)| n == name).map_or(0, |(_, c)| *c)
    };
    let mut other = Vec::new();
    for (name, count) in &after {
        let delta = count - calls(&before, name);
        if delta > 0 && name != "xread" && name != "info" {
            other.push((name.clone(), delta));
        }
    }
    assert_eq!(other, vec![], "commands other than the follower's reads");
    // The follower's blocking read returns about once a second, whatever the load.
    let reads = calls(&after, "xread") - calls(&before, "xread");
    assert!(reads <= secs + 2, "{reads} reads in {secs} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_cut_off_gets_every_revocation_when_it_is_back() {
    let Some(redis) = OwnRedis::start("cut_off", false).await else {
        return;
    };
    let relay = Relay::start(redis.port).await;
    let a = instance(&redis.url(), "app:", Duration::from_secs(2));
    let b = instance(&relay.url(), "app:", Duration::from_secs(2));
    ready(&a).await;
    ready(&b).await;
    let app_b = routes(&b);
    let good = token(json!({"sub": "ada"}));
    relay.cut().await;
    for i in 0..100 {
        a.revoker()
            .revoke("v", Target::Token(format!("t-{i}")))
            .await
            .unwrap();
    }
    // B cannot confirm its mirror: 503 once the bound has passed, /healthz says stale.
    within(Duration::from_secs(5), "503 on B while cut off", || async {
        status(&app_b, &good).await == 503
    })
    .await;
    let health = jwtgate_tests::send(&app_b, jwtgate_tests::get_with("/healthz", &[])).await;
    assert_eq!(health.status, 503);
    assert_eq!(health.body["revocation"]["status"], "stale");
    assert_eq!(b.revocation_state().entries, 0);
    relay.restore();
    let back = within(Duration::from_secs(10), "B current again", || async {
        status(&app_b, &good).await == 200
    })
    .await;
    eprintln!("B back {back:?} after the relay reopened");
    assert_eq!(b.revocation_state().entries, 100);
    assert_eq!(
        status(&app_b, &token(json!({"sub": "ada", "jti": "t-57"}))).await,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_is_a_503_and_a_restart_loses_nothing() {
    let Some(mut redis) = OwnRedis::start("restart", true).await else {
        return;
    };
    let registry = instance(&redis.url(), "app:", Duration::from_secs(2));
    ready(&registry).await;
    let app = routes(&registry);
    let good = token(json!({"sub": "ada"}));
    let gone = token(json!({"sub": "ada", "jti": "gone"}));
    registry
        .revoker()
        .revoke("v", Target::Token("gone".into()))
        .await
        .unwrap();
    assert_eq!(status(&app, &gone).await, 401);
    redis.stop();
    within(Duration::from_secs(6), "503 after the bound", || async {
        status(&app, &good).await == 503
    })
    .await;
    // A store error signs nobody out: the response clears no cookie.
    let res = jwtgate_tests::get_bearer(&app, "/jwt", Some(&good)).await;
    assert!(res.set_cookies().is_empty(), "{:?}", res.set_cookies());
    // A write while Redis is away fails, and says so.
    let err = registry
        .revoker()
        .revoke("v", Target::Token("later".into()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &jwtgate::ErrorKind::Store);
    redis.run().await;
    let back = within(
        Duration::from_secs(10),
        "200 again after the restart",
        || async { status(&app, &good).await == 200 },
    )
    .await;
    eprintln!("recovered {back:?} after Redis answered again");
    // Reloaded from the server's append-only file: still revoked.
    assert_eq!(status(&app, &gone).await, 401);
    assert!(registry.revocation_state().resyncs >= 2);
    // A fresh instance sees it too.
    let fresh = instance(&redis.url(), "app:", Duration::from_secs(2));
    ready(&fresh).await;
    assert_eq!(status(&routes(&fresh), &gone).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_started_while_redis_is_down_recovers_by_itself() {
    let Some(mut redis) = OwnRedis::start("late", false).await else {
        return;
    };
    redis.stop();
    let registry = instance(&redis.url(), "app:", Duration::from_secs(2));
    let app = routes(&registry);
    let good = token(json!({"sub": "ada"}));
    assert_eq!(status(&app, &good).await, 503);
    let health = jwtgate_tests::send(&app, jwtgate_tests::get_with("/healthz", &[])).await;
    assert_eq!(health.status, 503);
    within(Duration::from_secs(5), "the error shows", || async {
        registry.revocation_state().error.is_some()
    })
    .await;
    redis.run().await;
    within(
        Duration::from_secs(10),
        "200 once Redis answers",
        || async { status(&app, &good).await == 200 },
    )
    .await;
}

#[tokio::test]
async fn one_time_keys_are_new_once() {
    let Some(url) = shared_url("first_use") else {
        return;
    };
    let store = RedisStore::new(RedisSettings::new(url).prefix(unique_prefix("once"))).unwrap();
    let until = jwtgate_test::now() + 60;
    assert_eq!(store.first_use("iss jti-1", until).await, Ok(true));
    assert_eq!(store.first_use("iss jti-1", until).await, Ok(false));
    assert_eq!(store.first_use("iss jti-2", until).await, Ok(true));
}

#[tokio::test]
async fn bad_settings_are_errors_at_once_and_an_unreachable_server_is_not() {
    let err = RedisStore::new(RedisSettings::new("redis://h:notaport")).unwrap_err();
    assert_eq!(err.field(), "url");
    let store = RedisStore::new(RedisSettings::new(format!(
        "redis://127.0.0.1:{}/0",
        free_port()
    )))
    .unwrap();
    let err = store
        .revoke(&jwtgate::revocation::Revocation::new(
            ISS,
            Target::Token("x".into()),
            jwtgate_test::now() + 60,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.message(), "redis connect: connection refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_a_private_ca_works_and_an_untrusted_certificate_does_not() {
    let Some(redis) = OwnRedis::start_tls("tls").await else {
        return;
    };
    let ca = redis.dir.join("ca.crt");
    let store = RedisStore::new(RedisSettings::new(redis.url()).ca_file(&ca)).unwrap();
    let registry = jwtgate::Registry::builder()
        .validator(
            jwtgate::Validator::new("v")
                .issuer(ISS)
                .audience("api")
                .algorithm(jwtgate::Algorithm::HS256)
                .key(jwtgate::KeySource::secret(SECRET))
                .user(jwtgate::User::claim("sub")),
        )
        .store(store)
        .build()
        .unwrap();
    ready(&registry).await;
    registry
        .revoker()
        .revoke("v", Target::Token("over-tls".into()))
        .await
        .unwrap();
    let app = routes(&registry);
    assert_eq!(
        status(&app, &token(json!({"sub": "ada", "jti": "over-tls"}))).await,
        401
    );
    assert_eq!(status(&app, &token(json!({"sub": "ada"}))).await, 200);
    // The public roots do not know the test CA: the connection is refused, never made.
    let untrusted = RedisStore::new(RedisSettings::new(redis.url())).unwrap();
    let err = untrusted
        .revoke(&jwtgate::revocation::Revocation::new(
            ISS,
            Target::Token("x".into()),
            jwtgate_test::now() + 60,
        ))
        .await
        .unwrap_err();
    assert!(
        err.message().starts_with("redis connect:"),
        "{}",
        err.message()
    );
    // A CA file is for TLS URLs, and must be readable.
    let err = RedisStore::new(RedisSettings::new("redis://127.0.0.1/").ca_file(&ca)).unwrap_err();
    assert_eq!(err.field(), "ca_file");
    let err = RedisStore::new(RedisSettings::new(redis.url()).ca_file("/nonexistent/ca.pem"))
        .unwrap_err();
    assert!(
        err.message().starts_with("cannot read /nonexistent/ca.pem"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_sentinel_a_failover_loses_nothing_and_recovers_by_itself() {
    let Some(master) = OwnRedis::start("sentinel_master", false).await else {
        return;
    };
    let Some(mut replica) = OwnRedis::start("sentinel_replica", false).await else {
        return;
    };
    replica.stop();
    replica.extra = vec![
        "--replicaof".into(),
        "127.0.0.1".into(),
        master.port.to_string(),
    ];
    replica.run().await;
    let mut master = master;
    let sentinel = OwnSentinel::start("sentinel", master.port).await;
    let url = format!("redis+sentinel://127.0.0.1:{}/mymaster", sentinel.port);
    let registry = instance(&url, "app:", Duration::from_secs(2));
    ready(&registry).await;
    let app = routes(&registry);
    registry
        .revoker()
        .revoke("v", Target::Token("before".into()))
        .await
        .unwrap();
    // On the replica before the master goes (replication is asynchronous).
    let client = redis::Client::open(master.url()).unwrap();
    let conn = client.get_multiplexed_async_connection().await.unwrap();
    within(Duration::from_secs(10), "the replica has it", || {
        let conn = conn.clone();
        async move {
            let mut conn = conn;
            redis::cmd("WAIT")
                .arg(1)
                .arg(200)
                .query_async::<i64>(&mut conn)
                .await
                .is_ok_and(|acked| acked == 1)
        }
    })
    .await;
    let resyncs = registry.revocation_state().resyncs;
    master.stop();
    // The Sentinel promotes the replica; the instance finds it, reloads, and serves again.
    within(Duration::from_secs(20), "the replica promoted", || async {
        sentinel.master_port().await == replica.port
    })
    .await;
    // Served from the new master: a reload there, and the mirror current again (a request
    // answered before that came from the mirror as it was, still within max_staleness).
    within(
        Duration::from_secs(15),
        "a reload at the new master",
        || async {
            let state = registry.revocation_state();
            state.resyncs > resyncs && state.fresh
        },
    )
    .await;
    let good = token(json!({"sub": "ada"}));
    let back = within(Duration::from_secs(15), "200 at the new master", || async {
        status(&app, &good).await == 200
    })
    .await;
    eprintln!("serving again {back:?} after the promotion");
    assert_eq!(
        status(&app, &token(json!({"sub": "ada", "jti": "before"}))).await,
        401
    );
    // Writes go to the new master.
    within(
        Duration::from_secs(10),
        "a write at the new master",
        || async {
            registry
                .revoker()
                .revoke("v", Target::Token("after".into()))
                .await
                .is_ok()
        },
    )
    .await;
    assert_eq!(
        status(&app, &token(json!({"sub": "ada", "jti": "after"}))).await,
        401
    );
}

#[test]
fn a_registry_built_outside_a_runtime_follows_on_a_thread_of_its_own() {
    let Some(url) = shared_url("no_runtime") else {
        return;
    };
    // No tokio runtime here: the follower starts on its own thread.
    let registry = instance(&url, &unique_prefix("no-runtime"), Duration::from_secs(5));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !registry.revocation_state().fresh {
        assert!(
            std::time::Instant::now() < deadline,
            "the follower never loaded"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(registry.revocation_state().resyncs, 1);
}
