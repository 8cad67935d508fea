//! Errors raised while building a registry, loading a config file or fetching keys up front.
//!
//! Request-time failures are not errors but responses: see [`crate::rejection`].

use std::fmt;

/// An error from building or configuring jwtgate.
///
/// The message says what is wrong and where (validator name, config file line and key);
/// it never contains a secret or a token.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
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
    /// An HMAC secret shorter than the algorithm's hash.
    WeakSecret,
    /// A required setting is missing or a setting is out of range.
    InvalidSetting,
    /// A config file could not be read or parsed.
    Config,
    /// Keys could not be fetched (only from an explicit prefetch).
    KeyFetch,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// What kind of error this is.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Prefixes the message with where the error was found, such as `file.toml:12`.
    pub(crate) fn context(mut self, at: impl fmt::Display) -> Self {
        self.message = format!("{at}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .finish()
    }
}

impl std::error::Error for Error {}
