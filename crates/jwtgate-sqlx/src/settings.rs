//! The settings of the database directory: the URL, the pool, the cache and the table mapping
//! (`[directory]` in a config file, read by [`SqlSettings::from_config`](crate::SqlSettings::from_config)).

use std::fmt;
use std::time::Duration;

use crate::error::Error;

/// Where a database directory keeps users and contacts, and how it caches them.
///
/// `Debug` hides the URL's password.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqlSettings {
    /// `sqlite://path.db` (created when missing) or `postgres://user@host/db`.
    pub url: String,
    /// Whether the shipped migrations run on start; `None`: yes, unless a table is mapped.
    pub migrate: Option<bool>,
    /// How long a looked-up user or partner is served from memory (default 60 s; zero turns
    /// the cache off).
    pub cache_ttl: Duration,
    /// How many lookups the cache holds at most (default 10,000).
    pub cache_capacity: u64,
    /// How long a connection or a query may take before the request gets a 503 (default 5 s).
    pub timeout: Duration,
    /// The connection pool's size (default 10).
    pub max_connections: u32,
    /// The users table; `None`: the shipped `jwtgate_users`.
    pub users: Option<UsersTable>,
    /// The contacts table; `None`: the shipped `jwtgate_contacts`.
    pub contacts: Option<ContactsTable>,
}

impl SqlSettings {
    /// Settings for the database at `url`, with every default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            migrate: None,
            cache_ttl: Duration::from_secs(60),
            cache_capacity: 10_000,
            timeout: Duration::from_secs(5),
            max_connections: 10,
            users: None,
            contacts: None,
        }
    }

    /// Whether migrations run: as set, else only when both tables are the shipped ones.
    pub fn runs_migrations(&self) -> bool {
        self.migrate
            .unwrap_or(self.users.is_none() && self.contacts.is_none())
    }

    /// The users table to use.
    pub fn users_table(&self) -> UsersTable {
        self.users.clone().unwrap_or_default()
    }

    /// The contacts table to use.
    pub fn contacts_table(&self) -> ContactsTable {
        self.contacts.clone().unwrap_or_default()
    }

    /// Checks every setting: the URL's scheme, the pool and every table and column name (an
    /// identifier, `[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes, since names are written into
    /// SQL; values never are). The error's field is the key, such as `users.email`.
    pub fn check(&self) -> Result<(), Error> {
        let invalid = Error::setting;
        let scheme = self.url.split_once(':').map(|(s, _)| s);
        if !matches!(scheme, Some("sqlite" | "postgres" | "postgresql")) {
            return Err(invalid(
                "url",
                "the directory url must start with sqlite: or postgres:".into(),
            ));
        }
        if self.max_connections == 0 {
            return Err(invalid(
                "max_connections",
                "max_connections must be at least 1".into(),
            ));
        }
        if self.timeout.is_zero() {
            return Err(invalid(
                "timeout_secs",
                "timeout_secs must be at least 1".into(),
            ));
        }
        let users = self.users_table();
        let contacts = self.contacts_table();
        for (key, name) in users.columns().into_iter().chain(contacts.columns()) {
            check_identifier(key, name)?;
        }
        Ok(())
    }
}

fn check_identifier(field: &'static str, name: &str) -> Result<(), Error> {
    let mut bytes = name.bytes();
    let identifier = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if name.len() <= 63 && identifier {
        return Ok(());
    }
    Err(Error::setting(
        field,
        format!(
            "{name:?} is not a valid SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 bytes)"
        ),
    ))
}

impl fmt::Debug for SqlSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlSettings")
            .field("url", &redact_url(&self.url))
            .field("migrate", &self.migrate)
            .field("cache_ttl", &self.cache_ttl)
            .field("cache_capacity", &self.cache_capacity)
            .field("timeout", &self.timeout)
            .field("max_connections", &self.max_connections)
            .field("users", &self.users)
            .field("contacts", &self.contacts)
            .finish()
    }
}

/// `url` with any password replaced by `***`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let redacted_tail = redact_query_password(tail);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{scheme}://{masked}@{host}{redacted_tail}")
        }
        None => format!("{scheme}://{authority}{redacted_tail}"),
    }
}

/// Masks a `password=` query parameter (libpq accepts one).
fn redact_query_password(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

/// The users table and its columns. `id` (an integer), `email` and `email_key` (the email as
/// [`normalize_email`](jwtgate::directory::normalize_email) gives it, under a unique index:
/// registration relies on it) are required; a column left `None` is neither read nor written.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UsersTable {
    /// The table.
    pub table: String,
    /// Integer primary key, generated by the database.
    pub id: String,
    /// The email as registered.
    pub email: String,
    /// The normalised email, unique.
    pub email_key: String,
    /// Issuer of the first token (with `subject`, unique together).
    pub issuer: Option<String>,
    /// Subject of the first token.
    pub subject: Option<String>,
    /// A service token's client name, unique (service users only).
    pub service_name: Option<String>,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Full name.
    pub full_name: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Boolean; without it every profile counts as complete.
    pub profile_complete: Option<String>,
    /// Creation time, integer Unix seconds.
    pub created_at: Option<String>,
    /// Last time a request of the user missed the cache, integer Unix seconds.
    pub last_seen_at: Option<String>,
}

impl UsersTable {
    /// A mapped table with its required columns; optional ones start unset.
    pub fn mapped(
        table: impl Into<String>,
        id: impl Into<String>,
        email: impl Into<String>,
        email_key: impl Into<String>,
    ) -> Self {
        Self {
            table: table.into(),
            id: id.into(),
            email: email.into(),
            email_key: email_key.into(),
            issuer: None,
            subject: None,
            service_name: None,
            first_name: None,
            last_name: None,
            full_name: None,
            phone: None,
            profile_complete: None,
            created_at: None,
            last_seen_at: None,
        }
    }

    /// Every named column, as `(key, name)` (`users.email`, ...), the table first.
    pub fn columns(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![
            ("users.table", self.table.as_str()),
            ("users.id", self.id.as_str()),
            ("users.email", self.email.as_str()),
            ("users.email_key", self.email_key.as_str()),
        ];
        let optional = [
            ("users.issuer", &self.issuer),
            ("users.subject", &self.subject),
            ("users.service_name", &self.service_name),
            ("users.first_name", &self.first_name),
            ("users.last_name", &self.last_name),
            ("users.full_name", &self.full_name),
            ("users.phone", &self.phone),
            ("users.profile_complete", &self.profile_complete),
            ("users.created_at", &self.created_at),
            ("users.last_seen_at", &self.last_seen_at),
        ];
        out.extend(
            optional
                .into_iter()
                .filter_map(|(k, v)| Some((k, v.as_deref()?))),
        );
        out
    }
}

impl Default for UsersTable {
    /// The shipped `jwtgate_users` table.
    fn default() -> Self {
        let some = |s: &str| Some(s.to_owned());
        Self {
            issuer: some("issuer"),
            subject: some("subject"),
            service_name: some("service_name"),
            first_name: some("first_name"),
            last_name: some("last_name"),
            full_name: some("full_name"),
            phone: some("phone"),
            profile_complete: some("profile_complete"),
            created_at: some("created_at"),
            last_seen_at: some("last_seen_at"),
            ..Self::mapped("jwtgate_users", "id", "email", "email_key")
        }
    }
}

/// The contacts table (Odoo's partners, Frappe's Contacts). Emails compare as
/// `lower(trim(email))`. A column left `None` is neither read nor written.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContactsTable {
    /// The table.
    pub table: String,
    /// Integer primary key: the [`PartnerId`](jwtgate::identity::PartnerId).
    pub id: String,
    /// The contact's email.
    pub email: String,
    /// First name, copied to a user registered from the contact.
    pub first_name: Option<String>,
    /// Last name, copied likewise.
    pub last_name: Option<String>,
    /// Phone, copied likewise.
    pub phone: Option<String>,
    /// The user registered from this contact (set on registration).
    pub user_id: Option<String>,
}

impl ContactsTable {
    /// A mapped table with its required columns; optional ones start unset.
    pub fn mapped(
        table: impl Into<String>,
        id: impl Into<String>,
        email: impl Into<String>,
    ) -> Self {
        Self {
            table: table.into(),
            id: id.into(),
            email: email.into(),
            first_name: None,
            last_name: None,
            phone: None,
            user_id: None,
        }
    }

    /// Every named column, as `(key, name)` (`contacts.email`, ...), the table first.
    pub fn columns(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![
            ("contacts.table", self.table.as_str()),
            ("contacts.id", self.id.as_str()),
            ("contacts.email", self.email.as_str()),
        ];
        let optional = [
            ("contacts.first_name", &self.first_name),
            ("contacts.last_name", &self.last_name),
            ("contacts.phone", &self.phone),
            ("contacts.user_id", &self.user_id),
        ];
        out.extend(
            optional
                .into_iter()
                .filter_map(|(k, v)| Some((k, v.as_deref()?))),
        );
        out
    }
}

impl Default for ContactsTable {
    /// The shipped `jwtgate_contacts` table.
    fn default() -> Self {
        let some = |s: &str| Some(s.to_owned());
        Self {
            first_name: some("first_name"),
            last_name: some("last_name"),
            phone: some("phone"),
            user_id: some("user_id"),
            ..Self::mapped("jwtgate_contacts", "id", "email")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let s = SqlSettings::new(
            "postgres://app:s3cret@db.internal:5432/app?password=x2&sslmode=require",
        );
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("x2"),
            "{shown}"
        );
        assert!(
            shown.contains("postgres://app:***@db.internal:5432/app?password=***&sslmode=require")
        );
        assert_eq!(redact_url("sqlite://target/a.db"), "sqlite://target/a.db");
    }

    #[test]
    fn identifiers_are_checked_and_named_by_their_key() {
        let mut s = SqlSettings::new("sqlite://x.db");
        assert!(s.check().is_ok());
        let mut users = UsersTable::mapped("accounts", "account_id", "mail", "mail_key");
        users.first_name = Some("given name; DROP TABLE x".into());
        s.users = Some(users);
        let err = s.check().unwrap_err();
        assert_eq!(err.field(), Some("users.first_name"));
        assert!(err.message().contains("not a valid SQL identifier"));
        s.users = None;
        s.contacts = Some(ContactsTable::mapped("c", "id", &*"e".repeat(64)));
        assert_eq!(s.check().unwrap_err().field(), Some("contacts.email"));
    }

    #[test]
    fn only_sqlite_and_postgres_urls_and_migrations_follow_the_mapping() {
        assert_eq!(
            SqlSettings::new("mysql://x").check().unwrap_err().field(),
            Some("url")
        );
        let mut s = SqlSettings::new("postgres://localhost/test");
        assert!(s.runs_migrations());
        s.contacts = Some(ContactsTable::mapped("c", "id", "email"));
        assert!(!s.runs_migrations());
        s.migrate = Some(true);
        assert!(s.runs_migrations());
    }
}
