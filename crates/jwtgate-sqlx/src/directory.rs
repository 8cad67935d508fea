//! [`SqlDirectory`]: users and contacts in SQLite or Postgres, with a lookup cache.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jwtgate::directory::{
    BoxFuture, LookupError, PartnerDirectory, UserDirectory, UserKey, UserQuery, UserRecord,
    normalize_email,
};

use crate::settings::{SqlSettings, redact_url};
use jwtgate::{identity::PartnerId, identity::UserId};
use moka::sync::Cache;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::error::{Error, ErrorKind};
use crate::migrate;
use crate::sql::{Statements, Values};

/// A user and partner directory on a database, for [`RegistryBuilder::users`] and
/// [`RegistryBuilder::directory`]. Cheap to clone (one pool, one cache).
///
/// [`RegistryBuilder::users`]: jwtgate::RegistryBuilder::users
/// [`RegistryBuilder::directory`]: jwtgate::RegistryBuilder::directory
#[derive(Clone)]
pub struct SqlDirectory {
    inner: Arc<Inner>,
}

/// Found users, per validator and key.
type UserCache = Cache<(Arc<str>, UserKey), Arc<UserRecord>>;

struct Inner {
    pool: AnyPool,
    sql: Statements,
    timeout: Duration,
    url: String,
    users: Option<UserCache>,
    partners: Option<Cache<String, Arc<[PartnerId]>>>,
}

impl fmt::Debug for SqlDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlDirectory")
            .field("url", &self.inner.url)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// How a `sqlite:` file is opened when its URL gives no `mode`.
#[derive(Clone, Copy)]
enum Access {
    /// `mode=rwc`: created when missing.
    ReadWriteCreate,
    /// `mode=ro`: never created or written.
    ReadOnly,
}

/// `url` with the `mode` of `access` added, for a `sqlite:` file whose URL gives none.
fn connect_url(url: &str, access: Access) -> String {
    if url.starts_with("sqlite:") && !url.contains("mode=") && !url.contains(":memory:") {
        let sep = if url.contains('?') { '&' } else { '?' };
        let mode = match access {
            Access::ReadWriteCreate => "rwc",
            Access::ReadOnly => "ro",
        };
        format!("{url}{sep}mode={mode}")
    } else {
        url.to_owned()
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn record(row: &AnyRow) -> Result<UserRecord, sqlx::Error> {
    let id: i64 = row.try_get(0)?;
    let mut r = UserRecord::new(u64::try_from(id).unwrap_or_default());
    r.email = row.try_get(1)?;
    r.first_name = row.try_get(2)?;
    r.last_name = row.try_get(3)?;
    r.full_name = row.try_get(4)?;
    r.phone = row.try_get(5)?;
    r.profile_complete = row.try_get::<i64, _>(6)? != 0;
    Ok(r)
}

/// A user id as the database has it (the directory's ids are non-negative integers).
fn db_id(id: &UserId) -> Result<i64, Error> {
    id.as_u64()
        .and_then(|n| i64::try_from(n).ok())
        .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("no user with id {id}")))
}

impl SqlDirectory {
    /// Connects (within the settings' timeout), runs the shipped migrations when asked, and
    /// builds the statements for the table mapping. Errors name the setting (`directory.url`
    /// for a bad URL or a database that cannot be reached) and never show a password.
    pub async fn connect(settings: &SqlSettings) -> Result<Self, Error> {
        Self::open(settings, Access::ReadWriteCreate).await
    }

    /// Connects for reading only (operators' listings): a SQLite file is opened read-only
    /// and never created, and no migration runs.
    pub async fn connect_read_only(settings: &SqlSettings) -> Result<Self, Error> {
        let mut settings = settings.clone();
        settings.migrate = Some(false);
        Self::open(&settings, Access::ReadOnly).await
    }

    async fn open(settings: &SqlSettings, access: Access) -> Result<Self, Error> {
        settings.check()?;
        sqlx::any::install_default_drivers();
        let shown = redact_url(&settings.url);
        let url = connect_url(&settings.url, access);
        let connect = AnyPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.timeout)
            .connect(&url);
        let pool = match tokio::time::timeout(settings.timeout, connect).await {
            Ok(Ok(pool)) => pool,
            Ok(Err(e)) => {
                let kind = match e {
                    sqlx::Error::Configuration(_) => ErrorKind::Config,
                    _ => ErrorKind::Unavailable,
                };
                // The error's text can quote the URL: redact it too.
                let text = e.to_string().replace(&settings.url, &shown);
                return Err(Error::new(
                    kind,
                    format!("directory.url: cannot connect to {shown}: {text}"),
                ));
            }
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "directory.url: cannot connect to {shown}: no answer within {} s",
                        settings.timeout.as_secs()
                    ),
                ));
            }
        };
        if settings.runs_migrations() {
            let postgres = !settings.url.starts_with("sqlite:");
            migrate::run(&pool, postgres, settings.timeout).await?;
        }
        let ttl = settings.cache_ttl;
        let capacity = settings.cache_capacity;
        let cached = !ttl.is_zero() && capacity > 0;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                sql: Statements::new(
                    &settings.users_table(),
                    &settings.contacts_table(),
                    !settings.url.starts_with("sqlite:"),
                ),
                timeout: settings.timeout,
                url: shown,
                users: cached.then(|| {
                    Cache::builder()
                        .max_capacity(capacity)
                        .time_to_live(ttl)
                        .support_invalidation_closures()
                        .build()
                }),
                partners: cached.then(|| {
                    Cache::builder()
                        .max_capacity(capacity)
                        .time_to_live(ttl)
                        .build()
                }),
            }),
        })
    }

    /// Runs `fut` within the timeout; a timeout is "unavailable".
    async fn timed<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.inner.timeout, fut).await {
            Ok(result) => result.map_err(|e| Error::from_sqlx(what, e)),
            Err(_) => Err(Error::timed_out(what)),
        }
    }

    async fn fetch_user(
        &self,
        what: &str,
        stmt: &crate::sql::Stmt,
        values: &Values<'_>,
    ) -> Result<Option<UserRecord>, Error> {
        let row = self
            .timed(what, stmt.bind(values).fetch_optional(&self.inner.pool))
            .await?;
        row.as_ref()
            .map(record)
            .transpose()
            .map_err(|e| Error::from_sqlx(what, e))
    }

    /// The user `key` names, without registering.
    async fn find(&self, key: &UserKey) -> Result<Option<UserRecord>, Error> {
        let sql = &self.inner.sql;
        match key {
            UserKey::Email(email_key) => {
                let values = Values {
                    email_key: Some(email_key),
                    ..Values::default()
                };
                self.fetch_user("user by email", &sql.user_by_email_key, &values)
                    .await
            }
            UserKey::Subject { issuer, subject } => {
                let stmt = sql.user_by_subject.as_ref().ok_or_else(|| {
                    Error::new(
                        ErrorKind::Config,
                        "matching users by subject needs users.issuer and users.subject columns",
                    )
                })?;
                let values = Values {
                    issuer: Some(issuer),
                    subject: Some(subject),
                    ..Values::default()
                };
                self.fetch_user("user by subject", stmt, &values).await
            }
            UserKey::Service(name) => {
                let stmt = sql.user_by_service.as_ref().ok_or_else(|| {
                    Error::new(
                        ErrorKind::Config,
                        "service users need a users.service_name column",
                    )
                })?;
                let values = Values {
                    service: Some(name),
                    ..Values::default()
                };
                self.fetch_user("service user", stmt, &values).await
            }
            _ => Err(Error::new(ErrorKind::Config, "unsupported user key")),
        }
    }

    /// Finds, links or registers the user of `query`.
    async fn lookup(&self, query: &UserQuery<'_>) -> Result<Option<UserRecord>, Error> {
        if let Some(found) = self.find(&query.key).await? {
            self.touch(&found).await;
            return Ok(Some(found));
        }
        let email_key = query.email.map(normalize_email);
        // By subject: a user registered earlier under this (verified) email, with no
        // subject yet, is linked on first sight.
        if let (UserKey::Subject { issuer, subject }, Some(key), Some(link)) =
            (&query.key, &email_key, &self.inner.sql.link_subject)
        {
            let values = Values {
                issuer: Some(issuer),
                subject: Some(subject),
                email_key: Some(key),
                ..Values::default()
            };
            let done = self
                .timed("link subject", link.bind(&values).execute(&self.inner.pool))
                .await?;
            if done.rows_affected() == 1 {
                tracing::info!("linked a user to its token's issuer and subject");
                return self.find(&query.key).await;
            }
        }
        if !query.register {
            return Ok(None);
        }
        self.register(query, email_key.as_deref(), true).await?;
        let mut found = self.find(&query.key).await?;
        if found.is_none() && matches!(query.key, UserKey::Email(_)) {
            // Found by email, the issuer and subject are only a record of the first token: when
            // another user holds them already (an address changed at the provider), the new
            // user is registered without them.
            self.register(query, email_key.as_deref(), false).await?;
            found = self.find(&query.key).await?;
        }
        if found.is_none() {
            // The insert met another unique value (the email of a user with another
            // subject, say): never merged silently.
            tracing::info!("registration conflicts with an existing user; token refused");
        }
        Ok(found)
    }

    /// Creates the user in its own transaction: the insert comes first (so SQLite takes its
    /// write lock before reading), does nothing on a unique conflict (a concurrent first
    /// request won), then copies the one contact with that email, if there is exactly one.
    async fn register(
        &self,
        query: &UserQuery<'_>,
        email_key: Option<&str>,
        with_subject: bool,
    ) -> Result<(), Error> {
        let sql = &self.inner.sql;
        let service = match &query.key {
            UserKey::Service(name) => Some(name.as_str()),
            _ => None,
        };
        if service.is_some() && sql.user_by_service.is_none() {
            return Err(Error::new(
                ErrorKind::Config,
                "service users need a users.service_name column",
            ));
        }
        let values = Values {
            email: query.email,
            email_key,
            issuer: query.issuer.filter(|_| with_subject),
            subject: query.subject.filter(|_| with_subject && service.is_none()),
            service,
            now: now(),
            ..Values::default()
        };
        let work = async {
            let mut tx = self.inner.pool.begin().await?;
            let inserted = sql
                .insert_user
                .bind(&values)
                .fetch_optional(&mut *tx)
                .await?;
            let id: Option<i64> = inserted.map(|row| row.try_get(0)).transpose()?;
            if let (Some(id), Some(key)) = (id, email_key) {
                let lookup = Values {
                    email_key: Some(key),
                    ..Values::default()
                };
                let contacts = sql
                    .contacts_by_email
                    .bind(&lookup)
                    .fetch_all(&mut *tx)
                    .await?;
                if let [contact] = contacts.as_slice() {
                    let contact_id: i64 = contact.try_get(0)?;
                    let first: Option<String> = contact.try_get(1)?;
                    let last: Option<String> = contact.try_get(2)?;
                    let phone: Option<String> = contact.try_get(3)?;
                    let full = full_name(first.as_deref(), last.as_deref());
                    let fill = Values {
                        first_name: first.as_deref(),
                        last_name: last.as_deref(),
                        full_name: full.as_deref(),
                        phone: phone.as_deref(),
                        complete: first.as_deref().is_some_and(|f| !f.trim().is_empty()),
                        user_id: id,
                        ..Values::default()
                    };
                    sql.fill_from_contact.bind(&fill).execute(&mut *tx).await?;
                    if let Some(link) = &sql.link_contact {
                        let link_values = Values {
                            user_id: id,
                            contact_id,
                            ..Values::default()
                        };
                        link.bind(&link_values).execute(&mut *tx).await?;
                    }
                }
            }
            tx.commit().await?;
            if id.is_some() {
                tracing::info!(validator = query.validator, "registered a new user");
            }
            Ok(())
        };
        self.timed("register user", work).await
    }

    /// Records when the user was last seen (once per cache miss, not per request).
    async fn touch(&self, user: &UserRecord) {
        let Some(stmt) = &self.inner.sql.touch else {
            return;
        };
        let Ok(id) = db_id(&user.id) else {
            return;
        };
        let values = Values {
            now: now(),
            user_id: id,
            ..Values::default()
        };
        if let Err(e) = self
            .timed("touch user", stmt.bind(&values).execute(&self.inner.pool))
            .await
        {
            tracing::warn!(error = %e, "could not record last-seen time");
        }
    }

    /// Sets a user's first and last name (trimmed, non-empty, at most 100 characters each)
    /// and marks the profile complete; the user's cached lookups are dropped.
    pub async fn complete_profile(
        &self,
        user: &UserId,
        first_name: &str,
        last_name: &str,
    ) -> Result<UserRecord, Error> {
        let first = first_name.trim();
        let last = last_name.trim();
        for (name, value) in [("first name", first), ("last name", last)] {
            if value.is_empty()
                || value.chars().count() > 100
                || value.chars().any(char::is_control)
            {
                return Err(Error::new(
                    ErrorKind::Invalid,
                    format!("the {name} must be 1 to 100 printable characters"),
                ));
            }
        }
        let id = db_id(user)?;
        let full = full_name(Some(first), Some(last));
        let values = Values {
            first_name: Some(first),
            last_name: Some(last),
            full_name: full.as_deref(),
            user_id: id,
            ..Values::default()
        };
        let done = self
            .timed(
                "complete profile",
                self.inner
                    .sql
                    .complete_profile
                    .bind(&values)
                    .execute(&self.inner.pool),
            )
            .await?;
        self.forget(user);
        if done.rows_affected() == 0 {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("no user with id {user}"),
            ));
        }
        self.user_by_id(user)
            .await?
            .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("no user with id {user}")))
    }

    /// Drops every cached lookup of `user` (after a change made outside this directory).
    pub fn forget(&self, user: &UserId) {
        if let Some(cache) = &self.inner.users {
            let user = user.clone();
            // Closures are supported: the cache was built with them.
            let _ = cache.invalidate_entries_if(move |_, record| record.id == user);
        }
    }

    /// One user by id.
    pub async fn user_by_id(&self, user: &UserId) -> Result<Option<UserRecord>, Error> {
        let Ok(id) = db_id(user) else {
            return Ok(None);
        };
        let values = Values {
            user_id: id,
            ..Values::default()
        };
        self.fetch_user("user by id", &self.inner.sql.user_by_id, &values)
            .await
    }

    /// One user by email (trimmed, case-insensitive).
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, Error> {
        self.find(&UserKey::Email(normalize_email(email))).await
    }

    /// The first `limit` users, by id.
    pub async fn users(&self, limit: u32) -> Result<Vec<UserRecord>, Error> {
        let values = Values {
            limit: i64::from(limit),
            ..Values::default()
        };
        let rows = self
            .timed(
                "list users",
                self.inner
                    .sql
                    .list_users
                    .bind(&values)
                    .fetch_all(&self.inner.pool),
            )
            .await?;
        rows.iter()
            .map(record)
            .collect::<Result<_, _>>()
            .map_err(|e| Error::from_sqlx("list users", e))
    }

    /// The connection pool's URL, password hidden.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Closes the pool (waits for connections in use).
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }
}

fn full_name(first: Option<&str>, last: Option<&str>) -> Option<String> {
    let parts: Vec<&str> = [first, last]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

impl UserDirectory for SqlDirectory {
    fn user<'a>(
        &'a self,
        query: &'a UserQuery<'a>,
    ) -> BoxFuture<'a, Result<Option<Arc<UserRecord>>, LookupError>> {
        Box::pin(async move {
            let key = (Arc::<str>::from(query.validator), query.key.clone());
            if let Some(cache) = &self.inner.users
                && let Some(hit) = cache.get(&key)
            {
                return Ok(Some(hit));
            }
            let Some(found) = self.lookup(query).await? else {
                return Ok(None);
            };
            let found = Arc::new(found);
            if let Some(cache) = &self.inner.users {
                cache.insert(key, found.clone());
            }
            Ok(Some(found))
        })
    }

    /// One `SELECT 1` within the timeout: the pool can reach the database.
    fn health(&self) -> BoxFuture<'_, Result<(), LookupError>> {
        Box::pin(async move {
            self.timed(
                "health check",
                sqlx::query("SELECT 1").execute(&self.inner.pool),
            )
            .await?;
            Ok(())
        })
    }
}

impl PartnerDirectory for SqlDirectory {
    /// Contacts whose email matches `email` trimmed and case-insensitively (at most 100).
    fn partners_by_email<'a>(
        &'a self,
        email: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PartnerId>, LookupError>> {
        Box::pin(async move {
            let key = normalize_email(email);
            if let Some(cache) = &self.inner.partners
                && let Some(hit) = cache.get(&key)
            {
                return Ok(hit.to_vec());
            }
            let values = Values {
                email_key: Some(&key),
                ..Values::default()
            };
            let rows = self
                .timed(
                    "partners by email",
                    self.inner
                        .sql
                        .contacts_by_email
                        .bind(&values)
                        .fetch_all(&self.inner.pool),
                )
                .await?;
            let ids: Vec<PartnerId> = rows
                .iter()
                .map(|row| row.try_get::<i64, _>(0))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| LookupError::new(Error::from_sqlx("partners by email", e)))?
                .into_iter()
                .filter_map(|id| u64::try_from(id).ok().map(PartnerId))
                .collect();
            if let Some(cache) = &self.inner.partners {
                cache.insert(key, Arc::from(ids.as_slice()));
            }
            Ok(ids)
        })
    }

    fn health(&self) -> BoxFuture<'_, Result<(), LookupError>> {
        UserDirectory::health(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_files_are_created_unless_a_mode_is_given() {
        let rwc = Access::ReadWriteCreate;
        assert_eq!(
            connect_url("sqlite://target/a.db", rwc),
            "sqlite://target/a.db?mode=rwc"
        );
        assert_eq!(
            connect_url("sqlite://a.db?x=1", Access::ReadOnly),
            "sqlite://a.db?x=1&mode=ro"
        );
        assert_eq!(
            connect_url("sqlite://a.db?mode=ro", rwc),
            "sqlite://a.db?mode=ro"
        );
        assert_eq!(connect_url("postgres://h/db", rwc), "postgres://h/db");
    }

    #[test]
    fn full_names_join_what_is_there() {
        assert_eq!(
            full_name(Some("Ada"), Some("Lovelace")).as_deref(),
            Some("Ada Lovelace")
        );
        assert_eq!(
            full_name(None, Some(" Lovelace ")).as_deref(),
            Some("Lovelace")
        );
        assert_eq!(full_name(Some(" "), None), None);
    }
}
