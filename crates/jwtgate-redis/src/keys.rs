//! The keys the store writes, all under one prefix. The entries and their change log share a
//! hash tag (`{revocations}`), so that a script may touch both on a Redis Cluster too.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Clone, Debug)]
pub(crate) struct Keys {
    /// HASH: entry key -> entry (the whole set, read on every resync).
    pub(crate) entries: String,
    /// STREAM: every write, in order (followed by every instance).
    pub(crate) log: String,
    used: String,
    sessions: String,
    locks: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            entries: format!("{prefix}{{revocations}}:entries"),
            log: format!("{prefix}{{revocations}}:log"),
            used: format!("{prefix}used:"),
            sessions: format!("{prefix}session:"),
            locks: format!("{prefix}session-lock:"),
        }
    }

    /// A session record's name (the core's key: validator and session id).
    pub(crate) fn session(&self, key: &str) -> String {
        format!("{}{key}", self.sessions)
    }

    /// A session lock's name.
    pub(crate) fn lock(&self, key: &str) -> String {
        format!("{}{key}", self.locks)
    }

    /// A one-time key's name: its SHA-256, so no identifier is spelled out in key names
    /// and any length fits.
    pub(crate) fn used(&self, key: &str) -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes());
        format!("{}{}", self.used, URL_SAFE_NO_PAD.encode(digest.as_ref()))
    }
}
