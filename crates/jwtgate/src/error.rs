//! Errors raised while building a registry, loading a config file or fetching keys up front.
//!
//! Request-time failures are not errors but responses: see [`crate::rejection`].
//!
//! An [`Error`] is an opaque struct rather than an enum (as in jsonwebtoken and tower-http's
//! csrf) so that it can carry context without breaking matches: match on [`Error::kind`], read
//! the validator, the setting and the config-file location from their accessors. Nothing
//! locates an error by reading its text.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// An error from building or configuring jwtgate.
///
/// `Display` gives `file:line:column: validator "name": key `setting`: message`, with each
/// part present when known. No message contains a secret or a token.
#[derive(Clone)]
pub struct Error(Box<Inner>);

/// Boxed, as jsonwebtoken does, so that `Result<T, Error>` stays one pointer wide.
#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    message: String,
    validator: Option<String>,
    field: Option<Cow<'static, str>>,
    location: Option<Location>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// What kind of [`Error`] happened.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A validator name is not an identifier (`[A-Za-z_][A-Za-z0-9_]*`).
    InvalidName,
    /// Two validators share a name.
    DuplicateName,
    /// A mode, `next` link or layer names a validator that does not exist.
    UnknownValidator,
    /// Bare `jwt` / `public_or_jwt` with zero or several validators.
    AmbiguousValidator,
    /// `next` links form a loop.
    ClosedChain,
    /// An auth mode string is not `jwt_<name>` or `public_or_jwt_<name>`.
    InvalidMode,
    /// An unknown or forbidden algorithm.
    InvalidAlgorithm,
    /// A key that cannot be parsed or does not fit the pinned algorithm.
    InvalidKey,
    /// An HMAC secret shorter than the algorithm's hash, or a public key given as a secret.
    WeakSecret,
    /// A required setting is missing or a setting is out of range.
    InvalidSetting,
    /// A config file could not be read or parsed (syntax, unknown keys, wrong types).
    Config,
    /// Keys could not be fetched (only from an explicit prefetch).
    KeyFetch,
    /// The revocation store could not write (unreachable, or full).
    Store,
}

/// Where in a config file an error is: the offending key's own line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    file: String,
    line: usize,
    column: usize,
}

impl Location {
    #[cfg_attr(not(feature = "config"), allow(dead_code))]
    pub(crate) fn new(file: impl Into<String>, line: usize, column: usize) -> Self {
        Self {
            file: file.into(),
            line,
            column,
        }
    }

    /// The file, as it was named when loaded.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The line, from 1.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The column, from 1.
    pub fn column(&self) -> usize {
        self.column
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            kind,
            message: message.into(),
            validator: None,
            field: None,
            location: None,
            source: None,
        }))
    }

    /// Names the setting (as the config file names it: `secret`, `cookie.secret`, ...).
    /// An inner setting already named is kept: `cookie` around `cookie.secret` stays the latter.
    pub(crate) fn in_field(mut self, field: impl Into<Cow<'static, str>>) -> Self {
        if self.0.field.is_none() {
            self.0.field = Some(field.into());
        }
        self
    }

    /// Names the validator, unless an inner step already did.
    pub(crate) fn in_validator(mut self, name: &str) -> Self {
        if self.0.validator.is_none() {
            self.0.validator = Some(name.to_owned());
        }
        self
    }

    #[cfg_attr(not(feature = "config"), allow(dead_code))]
    pub(crate) fn at(mut self, location: Location) -> Self {
        self.0.location = Some(location);
        self
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.0.source = Some(Arc::new(source));
        self
    }

    /// What kind of error this is.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// What is wrong, without the context (validator, setting, location).
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The validator the error is about, if any.
    pub fn validator(&self) -> Option<&str> {
        self.0.validator.as_deref()
    }

    /// The setting the error is about, named as in the config file (`secret`, `audience`,
    /// `cookie.secret`, ...); the builder methods carry the same names.
    pub fn field(&self) -> Option<&str> {
        self.0.field.as_deref()
    }

    /// Where in a config file the offending key is, for errors from [`crate::config`].
    pub fn location(&self) -> Option<&Location> {
        self.0.location.as_ref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(at) = &self.0.location {
            write!(f, "{at}: ")?;
        }
        if let Some(v) = &self.0.validator {
            write!(f, "validator {v:?}: ")?;
        }
        if let Some(field) = &self.0.field {
            write!(f, "key `{field}`: ")?;
        }
        f.write_str(&self.0.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("message", &self.0.message)
            .field("validator", &self.0.validator)
            .field("field", &self.0.field)
            .field("location", &self.0.location)
            .field("source", &self.0.source)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_each_known_part() {
        let e = Error::new(ErrorKind::WeakSecret, "too short");
        assert_eq!(e.to_string(), "too short");
        let e = e
            .in_field("cookie.secret")
            .in_field("cookie")
            .in_validator("demo")
            .at(Location::new("app.toml", 7, 3));
        assert_eq!(
            e.to_string(),
            "app.toml:7:3: validator \"demo\": key `cookie.secret`: too short"
        );
        assert_eq!(e.kind(), &ErrorKind::WeakSecret);
        assert_eq!(e.field(), Some("cookie.secret"));
        assert_eq!(e.location().map(Location::line), Some(7));
        assert_eq!(e.message(), "too short");
    }

    #[test]
    fn source_is_kept() {
        use std::error::Error as _;
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = Error::new(ErrorKind::Config, "cannot read").with_source(io);
        assert_eq!(e.source().map(ToString::to_string), Some("gone".into()));
    }
}
