//! This crate's errors: a setting that cannot work, named by its key.

use std::fmt;

/// A Redis store setting that cannot work (a bad URL, a bad prefix).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    field: &'static str,
    message: String,
}

impl Error {
    pub(crate) fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }

    /// The setting at fault (`url`, `prefix`).
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// What is wrong with it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store.{}: {}", self.field, self.message)
    }
}

impl std::error::Error for Error {}
