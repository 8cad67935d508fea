//! Databases for the directory tests: a fresh SQLite file, and a fresh Postgres database on
//! the server `JWTGATE_TEST_POSTGRES_URL` names (required under `CI`, else skipped).

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// One database a test runs against.
#[derive(Debug)]
pub struct Db {
    pub backend: &'static str,
    pub url: String,
    /// Postgres: the admin URL and the database to drop afterwards.
    drop: Option<(String, String)>,
}

fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

/// A fresh SQLite file under cargo's temporary directory for tests.
pub fn sqlite() -> Db {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("jwtgate-sqlx");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.db", unique("t")));
    Db {
        backend: "sqlite",
        url: format!("sqlite://{}", path.display()),
        drop: None,
    }
}

/// The Postgres server's admin URL, or `None` (skipped) when unset outside CI.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("JWTGATE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI is set but JWTGATE_TEST_POSTGRES_URL is not: the Postgres tests must run")
        }
        _ => {
            eprintln!("skipped on Postgres: JWTGATE_TEST_POSTGRES_URL is not set");
            None
        }
    }
}

/// A fresh, empty Postgres database (so migrations start from nothing).
pub async fn postgres() -> Option<Db> {
    let admin = postgres_admin_url()?;
    sqlx::any::install_default_drivers();
    let name = unique("jwtgate_t");
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("Postgres at JWTGATE_TEST_POSTGRES_URL does not answer: {e}"));
    sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    Some(Db {
        backend: "postgres",
        url: format!("{base}/{name}"),
        drop: Some((admin, name)),
    })
}

/// SQLite, and Postgres when there is one.
pub async fn backends() -> Vec<Db> {
    let mut out = vec![sqlite()];
    out.extend(postgres().await);
    out
}

impl Db {
    /// A pool for seeding and checking rows directly.
    pub async fn pool(&self) -> AnyPool {
        sqlx::any::install_default_drivers();
        let url = if self.backend == "sqlite" {
            format!("{}?mode=rwc", self.url)
        } else {
            self.url.clone()
        };
        AnyPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .unwrap()
    }

    /// The first column of the first row of `sql`, as an integer.
    pub async fn count(&self, sql: &str) -> i64 {
        let pool = self.pool().await;
        let row = sqlx::query(sql).fetch_one(&pool).await.unwrap();
        let n = row.try_get::<i64, _>(0).unwrap();
        pool.close().await;
        n
    }

    /// Runs statements.
    pub async fn exec(&self, sql: &str) {
        let pool = self.pool().await;
        sqlx::raw_sql(sql).execute(&pool).await.unwrap();
        pool.close().await;
    }

    /// Adds a user with a complete profile to the shipped users table, as an application
    /// would have before jwtgate saw it (values from the test itself, never from input).
    pub async fn add_user(&self, email: &str, email_key: &str) {
        self.exec(&format!(
            "INSERT INTO jwtgate_users (email, email_key, profile_complete, created_at, last_seen_at) \
             VALUES ('{email}', '{email_key}', TRUE, 0, 0)"
        ))
        .await;
    }

    /// Drops a Postgres test database (best effort).
    pub async fn finish(self) {
        if let Some((admin, name)) = self.drop
            && let Ok(pool) = AnyPoolOptions::new()
                .max_connections(1)
                .connect(&admin)
                .await
        {
            let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&pool)
                .await;
            pool.close().await;
        }
    }
}
