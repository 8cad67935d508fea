//! How long sessions last.

use std::time::Duration;

/// Timeouts and refresh of a validator's sign-in sessions, whatever its tokens' lifetimes.
///
/// The defaults: a session ends after **1 hour without a request** (`idle_timeout`) and
/// **12 hours** after its sign-in (`absolute_timeout`), a working day; the provider's own
/// session usually outlives both, so signing in again is one redirect without a prompt. The
/// tokens are refreshed a **margin** before they expire (a quarter of their lifetime, at most
/// 60 s), whenever the provider sent a refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct SessionOptions {
    pub(crate) idle_timeout: Duration,
    pub(crate) absolute_timeout: Duration,
    pub(crate) refresh: bool,
    pub(crate) max_refresh_margin: Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(3600),
            absolute_timeout: Duration::from_secs(12 * 3600),
            refresh: true,
            max_refresh_margin: Duration::from_secs(60),
        }
    }
}

impl SessionOptions {
    /// The defaults (see the type).
    pub fn new() -> Self {
        Self::default()
    }

    /// A session without a request for this long ends (default 1 hour).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// A session ends this long after its sign-in, however active (default 12 hours).
    pub fn absolute_timeout(mut self, timeout: Duration) -> Self {
        self.absolute_timeout = timeout;
        self
    }

    /// Whether tokens are refreshed with the provider's refresh token (default `true`); with
    /// `false` a session ends when its ID token does.
    pub fn refresh(mut self, refresh: bool) -> Self {
        self.refresh = refresh;
        self
    }

    /// The most a refresh comes before the tokens expire (default 60 s; it is a quarter of
    /// their lifetime when that is shorter).
    pub fn max_refresh_margin(mut self, margin: Duration) -> Self {
        self.max_refresh_margin = margin;
        self
    }

    /// When tokens issued at `issued` and expiring at `expires` should be refreshed.
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) fn refresh_at(&self, issued: u64, expires: u64) -> u64 {
        let quarter = expires.saturating_sub(issued) / 4;
        expires.saturating_sub(quarter.min(self.max_refresh_margin.as_secs()))
    }

    pub(crate) fn check(&self) -> Result<(), crate::Error> {
        let bad = |field, what: &str| {
            crate::Error::new(crate::ErrorKind::InvalidSetting, what).in_field(field)
        };
        if self.idle_timeout.as_secs() == 0 {
            return Err(bad(
                "session.idle_timeout_secs",
                "idle_timeout must be at least one second",
            ));
        }
        if self.absolute_timeout < self.idle_timeout {
            return Err(bad(
                "session.absolute_timeout_secs",
                "absolute_timeout must be at least idle_timeout",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_margin_is_a_quarter_of_the_lifetime_at_most_the_maximum() {
        let o = SessionOptions::new();
        assert_eq!(o.refresh_at(1000, 1010), 1008);
        assert_eq!(o.refresh_at(1000, 1300), 1240);
        assert_eq!(o.refresh_at(1000, 4600), 4540);
        assert_eq!(o.refresh_at(1000, 1000), 1000);
        assert_eq!(o.refresh_at(2000, 1000), 1000);
    }

    #[test]
    fn timeouts_are_checked() {
        assert!(SessionOptions::new().check().is_ok());
        let e = SessionOptions::new()
            .idle_timeout(Duration::ZERO)
            .check()
            .unwrap_err();
        assert_eq!(e.field(), Some("session.idle_timeout_secs"));
        let e = SessionOptions::new()
            .absolute_timeout(Duration::from_secs(60))
            .check()
            .unwrap_err();
        assert_eq!(e.field(), Some("session.absolute_timeout_secs"));
    }
}
