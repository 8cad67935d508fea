//! Where the store is, and under which key names.

use std::fmt;

use crate::error::Error;

/// A Redis (or Valkey) store: `redis://` or `rediss://` (TLS) URL, and a key prefix.
#[derive(Clone, PartialEq, Eq)]
#[must_use]
pub struct RedisSettings {
    pub(crate) url: String,
    pub(crate) prefix: String,
    pub(crate) ca_file: Option<std::path::PathBuf>,
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &redact_url(&self.url))
            .field("prefix", &self.prefix)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl RedisSettings {
    /// The store at `url` (`redis://[user:password@]host[:port][/db]`, or `rediss://` for
    /// TLS), keys prefixed `jwtgate:`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "jwtgate:".into(),
            ca_file: None,
        }
    }

    /// For `rediss://`: trust the CA certificates of this PEM file instead of the public
    /// roots (a Redis behind a private or corporate CA).
    pub fn ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// The prefix of every key jwtgate writes (default `jwtgate:`): apps that share a Redis
    /// keep apart by it.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The URL with its password hidden, for logs.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        let scheme = self.url.split_once("://").map(|(s, _)| s);
        if !matches!(scheme, Some("redis" | "rediss")) {
            return Err(Error::new(
                "url",
                "the URL must start with redis:// or rediss:// (TLS)",
            ));
        }
        if self.ca_file.is_some() && scheme != Some("rediss") {
            return Err(Error::new(
                "ca_file",
                "a CA file is for a rediss:// (TLS) URL",
            ));
        }
        if self.prefix.len() > 64 || self.prefix.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(Error::new(
                "prefix",
                "the prefix must be at most 64 visible ASCII characters",
            ));
        }
        Ok(())
    }
}

/// `scheme://user:****@host/...`: the password never reaches a log.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<not a URL>".into();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:****@{host}"),
            None => format!("{scheme}://****@{host}"),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_prefixes_are_checked_and_passwords_hidden() {
        assert_eq!(
            RedisSettings::new("redis://127.0.0.1:6379/0").check(),
            Ok(())
        );
        assert_eq!(
            RedisSettings::new("rediss://cache.internal").check(),
            Ok(())
        );
        let err = RedisSettings::new("http://127.0.0.1").check().unwrap_err();
        assert_eq!(
            (err.field(), err.message()),
            ("url", "the URL must start with redis:// or rediss:// (TLS)")
        );
        let err = RedisSettings::new("redis://h")
            .prefix("a b")
            .check()
            .unwrap_err();
        assert_eq!(err.field(), "prefix");
        let s = RedisSettings::new("redis://app:s3cret@h:6379/1");
        assert_eq!(s.redacted_url(), "redis://app:****@h:6379/1");
        assert!(!format!("{s:?}").contains("s3cret"));
        assert_eq!(redact_url("redis://:s3cret@h"), "redis://:****@h");
    }
}
