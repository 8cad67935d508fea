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
    /// The store at `url`, keys prefixed `jwtgate:`:
    ///
    /// - `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS;
    /// - `redis+sentinel://[user:password@]sentinel1:26379,sentinel2:26379/<master>[/db]`:
    ///   the master the Sentinels name, found again after a failover (the credentials and
    ///   database are the master's).
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
        if !matches!(scheme, Some("redis" | "rediss" | "redis+sentinel")) {
            return Err(Error::new(
                "url",
                "the URL must start with redis://, rediss:// (TLS) or redis+sentinel://",
            ));
        }
        if scheme == Some("redis+sentinel") {
            self.sentinel()?;
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

/// Where a `redis+sentinel://` URL points.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Sentinel {
    /// `redis://host:port` of each Sentinel.
    pub(crate) nodes: Vec<String>,
    pub(crate) master: String,
    pub(crate) db: i64,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
}

impl RedisSettings {
    /// The Sentinel form of the URL, read (`Ok(None)` for a plain URL).
    pub(crate) fn sentinel(&self) -> Result<Option<Sentinel>, Error> {
        let Some(rest) = self.url.strip_prefix("redis+sentinel://") else {
            return Ok(None);
        };
        let bad = |why: &str| Error::new("url", format!("redis+sentinel URL: {why}"));
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((auth, rest)) => (Some(auth), rest),
            None => (None, rest),
        };
        let (username, password) = match auth.map(|a| a.split_once(':').unwrap_or((a, ""))) {
            None => (None, None),
            Some((user, pass)) => (
                (!user.is_empty()).then(|| user.to_owned()),
                (!pass.is_empty()).then(|| pass.to_owned()),
            ),
        };
        let (hosts, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("the master's name is missing (…/mymaster)"))?;
        let nodes: Vec<String> = hosts
            .split(',')
            .map(|h| {
                let ok = !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
                ok.then(|| {
                    if h.rsplit_once(':')
                        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
                    {
                        format!("redis://{h}")
                    } else {
                        format!("redis://{h}:26379")
                    }
                })
                .ok_or_else(|| bad("a Sentinel address is empty or not host[:port]"))
            })
            .collect::<Result<_, _>>()?;
        let mut parts = path.split('/');
        let master = parts
            .next()
            .filter(|m| !m.is_empty())
            .ok_or_else(|| bad("the master's name is missing (…/mymaster)"))?;
        let db = match parts.next() {
            None | Some("") => 0,
            Some(db) => db
                .parse()
                .map_err(|_| bad("the database is not a number"))?,
        };
        if parts.next().is_some() {
            return Err(bad("too many path segments (…/master/db)"));
        }
        Ok(Some(Sentinel {
            nodes,
            master: master.to_owned(),
            db,
            username,
            password,
        }))
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
    fn sentinel_urls_name_their_nodes_master_and_database() {
        let s = RedisSettings::new("redis+sentinel://app:pw@s1:26380,s2/mymaster/2");
        assert_eq!(s.check(), Ok(()));
        assert_eq!(
            s.sentinel().unwrap().unwrap(),
            Sentinel {
                nodes: vec!["redis://s1:26380".into(), "redis://s2:26379".into()],
                master: "mymaster".into(),
                db: 2,
                username: Some("app".into()),
                password: Some("pw".into()),
            }
        );
        assert_eq!(
            s.redacted_url(),
            "redis+sentinel://app:****@s1:26380,s2/mymaster/2"
        );
        for (url, why) in [
            ("redis+sentinel://s1:26379", "the master's name is missing"),
            ("redis+sentinel://s1:26379/", "the master's name is missing"),
            ("redis+sentinel://s1,,s2/m", "a Sentinel address is empty"),
            ("redis+sentinel://s1/m/x", "the database is not a number"),
            ("redis+sentinel://s1/m/0/1", "too many path segments"),
        ] {
            let err = RedisSettings::new(url).check().unwrap_err();
            assert_eq!(err.field(), "url");
            assert!(err.message().contains(why), "{url}: {}", err.message());
        }
        assert_eq!(RedisSettings::new("redis://h").sentinel(), Ok(None));
    }

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
            (
                "url",
                "the URL must start with redis://, rediss:// (TLS) or redis+sentinel://"
            )
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
