//! How revocation behaves when its store is away, and how much it keeps.

use std::time::Duration;

/// Settings shared by every store: [`RegistryBuilder::store_options`](crate::RegistryBuilder::store_options),
/// or the `[store]` table of a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct StoreOptions {
    pub(crate) max_staleness: Duration,
    pub(crate) fail_open: bool,
    pub(crate) retention: Duration,
    pub(crate) max_entries: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl StoreOptions {
    /// The defaults: a mirror at most 5 seconds behind its store, closed when it is not;
    /// revocations whose end is unknown kept 7 days; at most 1,000,000 entries.
    ///
    /// Five seconds: a store's follower confirms its mirror about once a second, so a healthy
    /// instance never comes near it, while a sign-out is never ignored for longer than a
    /// user could notice by trying the copied cookie right away.
    pub fn new() -> Self {
        Self {
            max_staleness: Duration::from_secs(5),
            fail_open: false,
            retention: Duration::from_secs(7 * 86_400),
            max_entries: 1_000_000,
        }
    }

    /// How far behind its store the mirror may be before requests are refused with 503
    /// (`temporarily_unavailable`, `Retry-After`). Whole seconds; at least one.
    pub fn max_staleness(mut self, bound: Duration) -> Self {
        self.max_staleness = bound.max(Duration::from_secs(1));
        self
    }

    /// Accepts requests on a stale mirror instead of refusing them (checked against what it
    /// holds; `/healthz` still says stale). Off by default: a revocation written while this
    /// instance is cut off would otherwise be ignored.
    pub fn fail_open(mut self, fail_open: bool) -> Self {
        self.fail_open = fail_open;
        self
    }

    /// How long a revocation is kept when nothing says when what it matches ends (a `jti` or a
    /// subject revoked by hand, a provider session): set it to at least the longest lifetime
    /// of your providers' tokens and of a session.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention.max(Duration::from_secs(1));
        self
    }

    /// The most entries held; a write beyond it fails, and a mirror that would hold more
    /// refuses requests (it could not be complete).
    pub fn max_entries(mut self, max: usize) -> Self {
        self.max_entries = max.max(1);
        self
    }

    /// The staleness bound in whole seconds.
    pub(crate) fn staleness_secs(&self) -> u64 {
        self.max_staleness.as_secs().max(1)
    }
}
