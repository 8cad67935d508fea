//! The shipped schema, applied in order and recorded in `jwtgate_migrations` (not sqlx's
//! `_sqlx_migrations`, which the application may use for its own history). Each migration
//! runs in a transaction with its record, so two processes starting at once apply it once:
//! the second one's insert of the same version fails and its DDL rolls back.

use std::time::Duration;

use sqlx::{AnyPool, Row};

use crate::error::{Error, ErrorKind};

/// `(version, description, sqlite, postgres)`.
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[(
    1,
    "users and contacts",
    include_str!("../migrations/sqlite/0001_directory.sql"),
    include_str!("../migrations/postgres/0001_directory.sql"),
)];

pub(crate) async fn run(pool: &AnyPool, postgres: bool, timeout: Duration) -> Result<(), Error> {
    let work = async {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS jwtgate_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL)",
        )
        .execute(pool)
        .await?;
        let applied: Vec<i64> = sqlx::query("SELECT version FROM jwtgate_migrations")
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| row.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()?;
        for (version, description, sqlite, pg) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            let mut tx = pool.begin().await?;
            sqlx::query("INSERT INTO jwtgate_migrations (version, description) VALUES ($1, $2)")
                .bind(*version)
                .bind(*description)
                .execute(&mut *tx)
                .await?;
            sqlx::raw_sql(if postgres { pg } else { sqlite })
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(version, description, "directory migration applied");
        }
        Ok::<_, sqlx::Error>(())
    };
    match tokio::time::timeout(timeout * 4, work).await {
        Ok(result) => result.map_err(|e| {
            Error::new(ErrorKind::Migrate, format!("directory.migrate: {e}")).with_source(e)
        }),
        Err(_) => Err(Error::new(
            ErrorKind::Unavailable,
            "directory.migrate: the database did not answer in time",
        )),
    }
}
