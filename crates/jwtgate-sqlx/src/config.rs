//! `[directory]` from a jwtgate config file: `jwtgate` hands the table over
//! ([`Config::section`]) and locates the errors ([`Config::error_at`]); the keys, their checks
//! and the settings they make are this crate's.

use std::ops::Range;
use std::time::Duration;

use jwtgate::config::Config;
use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;

use crate::settings::{ContactsTable, SqlSettings, UsersTable};

/// `[directory]`, as this crate reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectoryToml {
    /// jwtgate's own (the directory in memory), refused beside `url` by jwtgate.
    #[serde(default, rename = "partners")]
    _partners: Option<IgnoredAny>,
    url: Option<Spanned<String>>,
    migrate: Option<Spanned<bool>>,
    cache_ttl_secs: Option<Spanned<u64>>,
    cache_capacity: Option<Spanned<u64>>,
    timeout_secs: Option<Spanned<u64>>,
    max_connections: Option<Spanned<u32>>,
    users: Option<Spanned<UsersTableToml>>,
    contacts: Option<Spanned<ContactsTableToml>>,
}

/// `[directory.users]`: an application's own users table; every column it has is named.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersTableToml {
    table: Spanned<String>,
    id: Spanned<String>,
    email: Spanned<String>,
    email_key: Spanned<String>,
    issuer: Option<Spanned<String>>,
    subject: Option<Spanned<String>>,
    service_name: Option<Spanned<String>>,
    first_name: Option<Spanned<String>>,
    last_name: Option<Spanned<String>>,
    full_name: Option<Spanned<String>>,
    phone: Option<Spanned<String>>,
    profile_complete: Option<Spanned<String>>,
    created_at: Option<Spanned<String>>,
    last_seen_at: Option<Spanned<String>>,
}

/// `[directory.contacts]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactsTableToml {
    table: Spanned<String>,
    id: Spanned<String>,
    email: Spanned<String>,
    first_name: Option<Spanned<String>>,
    last_name: Option<Spanned<String>>,
    phone: Option<Spanned<String>>,
    user_id: Option<Spanned<String>>,
}

fn text(v: Option<&Spanned<String>>) -> Option<String> {
    v.map(|v| v.get_ref().clone())
}

impl SqlSettings {
    /// The database directory of a config file's `[directory]`, when it sets `url`: every
    /// setting checked (the URL's scheme, the pool, each table and column name), an error
    /// naming the file, line, column and key otherwise.
    ///
    /// ```
    /// use jwtgate::config::Config;
    /// use jwtgate_sqlx::SqlSettings;
    ///
    /// let config = Config::from_toml_str(
    ///     "[directory]\nurl = \"sqlite://app.db\"\ncache_ttl_secs = 30\n",
    ///     "app.toml",
    ///     None,
    /// )?;
    /// let settings = SqlSettings::from_config(&config)?.expect("a url");
    /// assert_eq!(settings.cache_ttl.as_secs(), 30);
    /// # Ok::<(), jwtgate::Error>(())
    /// ```
    pub fn from_config(config: &Config) -> Result<Option<Self>, jwtgate::Error> {
        let Some(d) = config.section::<DirectoryToml>("directory")? else {
            return Ok(None);
        };
        let Some(url) = &d.url else {
            // jwtgate refuses adapter keys without `url` when it loads the file.
            return Ok(None);
        };
        let mut settings = Self::new(url.get_ref().clone());
        settings.migrate = d.migrate.as_ref().map(|m| *m.get_ref());
        if let Some(ttl) = &d.cache_ttl_secs {
            settings.cache_ttl = Duration::from_secs(*ttl.get_ref());
        }
        if let Some(capacity) = &d.cache_capacity {
            settings.cache_capacity = *capacity.get_ref();
        }
        if let Some(timeout) = &d.timeout_secs {
            settings.timeout = Duration::from_secs(*timeout.get_ref());
        }
        if let Some(max) = &d.max_connections {
            settings.max_connections = *max.get_ref();
        }
        if let Some(u) = &d.users {
            let u = u.get_ref();
            let mut t = UsersTable::mapped(
                u.table.get_ref().clone(),
                u.id.get_ref().clone(),
                u.email.get_ref().clone(),
                u.email_key.get_ref().clone(),
            );
            t.issuer = text(u.issuer.as_ref());
            t.subject = text(u.subject.as_ref());
            t.service_name = text(u.service_name.as_ref());
            t.first_name = text(u.first_name.as_ref());
            t.last_name = text(u.last_name.as_ref());
            t.full_name = text(u.full_name.as_ref());
            t.phone = text(u.phone.as_ref());
            t.profile_complete = text(u.profile_complete.as_ref());
            t.created_at = text(u.created_at.as_ref());
            t.last_seen_at = text(u.last_seen_at.as_ref());
            settings.users = Some(t);
        }
        if let Some(c) = &d.contacts {
            let c = c.get_ref();
            let mut t = ContactsTable::mapped(
                c.table.get_ref().clone(),
                c.id.get_ref().clone(),
                c.email.get_ref().clone(),
            );
            t.first_name = text(c.first_name.as_ref());
            t.last_name = text(c.last_name.as_ref());
            t.phone = text(c.phone.as_ref());
            t.user_id = text(c.user_id.as_ref());
            settings.contacts = Some(t);
        }
        settings.check().map_err(|e| {
            let field = e.field().unwrap_or("url");
            let span = d.span_of(field).unwrap_or_else(|| url.span());
            config.error_at(span, &format!("directory.{field}"), e.message())
        })?;
        Ok(Some(settings))
    }
}

impl DirectoryToml {
    /// The span of the value of `field` (`users.email` names a column of `[directory.users]`).
    fn span_of(&self, field: &str) -> Option<Range<usize>> {
        let (top, inner) = field.split_once('.').unwrap_or((field, ""));
        let s = |v: &Spanned<String>| Some(v.span());
        let o = |v: &Option<Spanned<String>>| v.as_ref().map(Spanned::span);
        match (top, &self.users, &self.contacts) {
            ("users", Some(u), _) => {
                let u = u.get_ref();
                match inner {
                    "table" => s(&u.table),
                    "id" => s(&u.id),
                    "email" => s(&u.email),
                    "email_key" => s(&u.email_key),
                    "issuer" => o(&u.issuer),
                    "subject" => o(&u.subject),
                    "service_name" => o(&u.service_name),
                    "first_name" => o(&u.first_name),
                    "last_name" => o(&u.last_name),
                    "full_name" => o(&u.full_name),
                    "phone" => o(&u.phone),
                    "profile_complete" => o(&u.profile_complete),
                    "created_at" => o(&u.created_at),
                    "last_seen_at" => o(&u.last_seen_at),
                    _ => None,
                }
            }
            ("contacts", _, Some(c)) => {
                let c = c.get_ref();
                match inner {
                    "table" => s(&c.table),
                    "id" => s(&c.id),
                    "email" => s(&c.email),
                    "first_name" => o(&c.first_name),
                    "last_name" => o(&c.last_name),
                    "phone" => o(&c.phone),
                    "user_id" => o(&c.user_id),
                    _ => None,
                }
            }
            ("url", ..) => self.url.as_ref().map(Spanned::span),
            ("timeout_secs", ..) => self.timeout_secs.as_ref().map(Spanned::span),
            ("max_connections", ..) => self.max_connections.as_ref().map(Spanned::span),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALIDATOR: &str = r#"
[[validator]]
name = "app"
issuer = "i"
audience = "a"
algorithm = "HS256"
secret = "thesecret-of-at-least-32-bytes!!"
user = { directory = "subject" }
register = true
service_users = true
profile_url = "/profile"
"#;

    fn settings(text: &str) -> Result<Option<SqlSettings>, jwtgate::Error> {
        SqlSettings::from_config(&Config::from_toml_str(text, "app.toml", None)?)
    }

    #[test]
    fn a_database_directory_loads_with_its_mapping_and_cache() {
        let text = format!(
            "{VALIDATOR}\n[directory]\nurl = \"postgres://app:pw@db/app\"\ncache_ttl_secs = 0\ntimeout_secs = 2\n\
             [directory.users]\ntable = \"accounts\"\nid = \"account_id\"\nemail = \"mail\"\nemail_key = \"mail_key\"\nfirst_name = \"given\"\n"
        );
        let settings = settings(&text).unwrap().unwrap();
        assert_eq!(settings.url, "postgres://app:pw@db/app");
        assert_eq!(settings.cache_ttl, Duration::ZERO);
        assert_eq!(settings.timeout, Duration::from_secs(2));
        let users = settings.users.clone().unwrap();
        assert_eq!(
            (users.table.as_str(), users.first_name.as_deref()),
            ("accounts", Some("given"))
        );
        assert_eq!(users.last_name, None);
        assert!(!settings.runs_migrations());
        assert!(!format!("{settings:?}").contains(":pw@"));
        // A file without a database directory has none.
        assert_eq!(settings_of_none(), None);
    }

    fn settings_of_none() -> Option<SqlSettings> {
        settings(VALIDATOR).unwrap()
    }

    #[test]
    fn errors_name_the_file_line_and_key() {
        let bad_column = format!(
            "{VALIDATOR}\n[directory]\nurl = \"sqlite://x.db\"\n[directory.users]\ntable = \"accounts\"\n\
             id = \"id\"\nemail = \"mail\"\nemail_key = \"mail key\"\n"
        );
        let err = settings(&bad_column).unwrap_err();
        assert_eq!(err.field(), Some("directory.users.email_key"));
        assert_eq!(
            err.to_string(),
            "app.toml:19:1: key `directory.users.email_key`: \"mail key\" is not a valid SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 bytes)"
        );
        let bad_url = format!("{VALIDATOR}\n[directory]\nurl = \"mysql://x\"\n");
        let err = settings(&bad_url).unwrap_err();
        assert_eq!(
            err.to_string(),
            "app.toml:14:1: key `directory.url`: the directory url must start with sqlite: or postgres:"
        );
        // The TOML layer: a misspelt key, told as jwtgate tells its own.
        let typo =
            format!("{VALIDATOR}\n[directory]\nurl = \"sqlite://x.db\"\ncache_tll_secs = 5\n");
        let err = settings(&typo).unwrap_err();
        assert_eq!(
            err.to_string(),
            "app.toml:15:1: unknown key `cache_tll_secs`; did you mean `cache_ttl_secs`?"
        );
        let zero =
            format!("{VALIDATOR}\n[directory]\nurl = \"sqlite://x.db\"\nmax_connections = 0\n");
        let err = settings(&zero).unwrap_err();
        assert_eq!(
            err.to_string(),
            "app.toml:15:1: key `directory.max_connections`: max_connections must be at least 1"
        );
    }
}
