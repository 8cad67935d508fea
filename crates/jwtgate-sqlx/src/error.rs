//! The directory's error: an opaque struct with a kind, as jsonwebtoken and jwtgate do, so
//! sqlx's types stay out of the public API.

use std::fmt;

use jwtgate::directory::LookupError;

/// An error from [`SqlDirectory`](crate::SqlDirectory).
pub struct Error {
    kind: ErrorKind,
    message: String,
    /// The setting a [`Config`](ErrorKind::Config) error is about (`url`, `users.email`).
    field: Option<&'static str>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// What kind of [`Error`] this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A setting is wrong (the message names it, such as `directory.url`).
    Config,
    /// The database cannot be reached, or did not answer in time.
    Unavailable,
    /// Migrations failed.
    Migrate,
    /// The database answered with an error.
    Query,
    /// No such user (profile updates, `jwtgate users show`).
    NotFound,
    /// A value is not acceptable (an empty name on the profile form).
    Invalid,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            field: None,
            source: None,
        }
    }

    /// A wrong setting: the key (as `[directory]` names it) and what is wrong with it.
    pub(crate) fn setting(field: &'static str, message: String) -> Self {
        Self {
            field: Some(field),
            ..Self::new(ErrorKind::Config, message)
        }
    }

    /// The `[directory]` key a setting error is about (`url`, `users.email`, ...).
    pub fn field(&self) -> Option<&'static str> {
        self.field
    }

    /// What is wrong, without the key.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// From a sqlx error: unreachable, timed out or a lost connection is
    /// [`Unavailable`](ErrorKind::Unavailable), anything else [`Query`](ErrorKind::Query).
    pub(crate) fn from_sqlx(what: &str, e: sqlx::Error) -> Self {
        let kind = if is_unavailable(&e) {
            ErrorKind::Unavailable
        } else {
            ErrorKind::Query
        };
        Self::new(kind, format!("{what}: {e}")).with_source(e)
    }

    pub(crate) fn timed_out(what: &str) -> Self {
        Self::new(
            ErrorKind::Unavailable,
            format!("{what}: the database did not answer in time"),
        )
    }
}

/// Whether a sqlx error means "try again later": the server is unreachable, the pool has no
/// connection to give, the connection broke, or the server is shutting down or busy.
fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // Postgres: 08 connection exception, 57 operator intervention (shutdown),
            // 53 insufficient resources. SQLite: 5 busy, 6 locked.
            code.starts_with("08")
                || code.starts_with("57")
                || code.starts_with("53")
                || code == "5"
                || code == "6"
        }),
        _ => false,
    }
}

impl From<Error> for LookupError {
    fn from(e: Error) -> Self {
        match e.kind {
            ErrorKind::Unavailable => Self::unavailable(e),
            _ => Self::new(e),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(field) = self.field {
            write!(f, "directory.{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("field", &self.field)
            .finish_non_exhaustive()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
