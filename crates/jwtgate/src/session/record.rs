//! A session's record and its sealing: what the store holds, readable only with the
//! validator's cookie secret.
// Records are made and read by the sign-in (feature `login`); without it only sealing keys exist.
#![cfg_attr(not(feature = "login"), allow(dead_code))]

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use serde::{Deserialize, Serialize};

/// What a session keeps on the server. Tokens never appear in `Debug`.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) subject: String,
    /// The provider's session (`sid`), when its ID token names one.
    pub(crate) sid: Option<String>,
    pub(crate) id_token: String,
    pub(crate) access_token: Option<String>,
    /// When the access token expires (Unix seconds), as the provider said.
    pub(crate) access_expires: Option<u64>,
    pub(crate) refresh_token: Option<String>,
    pub(crate) created: u64,
    pub(crate) last_seen: u64,
    /// When the session ends, however active (`created` + the absolute timeout).
    pub(crate) ends: u64,
    /// Until when its tokens need no refresh: the `exp` of the cookie it issues.
    pub(crate) fresh_until: u64,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("subject", &self.subject)
            .field("sid", &self.sid)
            .field("refreshable", &self.refresh_token.is_some())
            .field("created", &self.created)
            .field("last_seen", &self.last_seen)
            .field("ends", &self.ends)
            .field("fresh_until", &self.fresh_until)
            .finish_non_exhaustive()
    }
}

/// The store key of session `id` of validator `validator`.
pub(crate) fn key(validator: &str, id: &str) -> String {
    format!("{validator}/{id}")
}

/// The largest sealed record read back: a store holding more is refused, not decrypted.
const MAX_SEALED: usize = 256 * 1024;
/// The first byte of a sealed record: its format.
const VERSION: u8 = 1;

/// Seals and opens one validator's records: AES-256-GCM, a random nonce per write, the store
/// key as associated data (a record moved to another session's key does not open).
pub(crate) struct Sealer(RandomizedNonceKey);

impl Sealer {
    /// A sealer for a 32-byte key derived from the cookie secret.
    pub(crate) fn new(key: &[u8]) -> Option<Self> {
        RandomizedNonceKey::new(&AES_256_GCM, key).ok().map(Self)
    }

    /// `record` sealed for `key`.
    pub(crate) fn seal(&self, key: &str, record: &Record) -> Option<Vec<u8>> {
        let mut body = serde_json::to_vec(record).ok()?;
        let nonce = self
            .0
            .seal_in_place_append_tag(Aad::from(key.as_bytes()), &mut body)
            .ok()?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + body.len());
        out.push(VERSION);
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&body);
        Some(out)
    }

    /// The record sealed for `key`, or `None` when it was not sealed by this validator for
    /// this key (another secret, another session, altered, or not a record).
    pub(crate) fn open(&self, key: &str, sealed: &[u8]) -> Option<Record> {
        if sealed.len() > MAX_SEALED {
            return None;
        }
        let (&version, rest) = sealed.split_first()?;
        if version != VERSION || rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(key.as_bytes()), &mut body)
            .ok()?;
        serde_json::from_slice(plain).ok()
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn record() -> Record {
        Record {
            subject: "ada".into(),
            sid: Some("sid-1".into()),
            id_token: "id.token.here".into(),
            access_token: Some("access-token-value".into()),
            access_expires: Some(2000),
            refresh_token: Some("refresh-token-value".into()),
            created: 1000,
            last_seen: 1500,
            ends: 44_200,
            fresh_until: 1990,
        }
    }

    #[test]
    fn a_sealed_record_opens_only_with_its_key_and_store_key() {
        let sealer = Sealer::new(&[7; 32]).unwrap();
        let sealed = sealer.seal("v/abc", &record()).unwrap();
        assert_eq!(sealer.open("v/abc", &sealed), Some(record()));
        // Nothing of the tokens is readable in what the store holds.
        let text = String::from_utf8_lossy(&sealed);
        for secret in ["refresh-token-value", "access-token-value", "ada", "sid-1"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        // Another session's key, another secret, an altered byte, a truncation: nothing.
        assert_eq!(sealer.open("v/abd", &sealed), None);
        assert_eq!(Sealer::new(&[8; 32]).unwrap().open("v/abc", &sealed), None);
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert_eq!(sealer.open("v/abc", &altered), None);
        assert_eq!(sealer.open("v/abc", &sealed[..10]), None);
        assert_eq!(sealer.open("v/abc", &[]), None);
        assert_eq!(sealer.open("v/abc", &vec![1; MAX_SEALED + 1]), None);
        // Two seals of one record differ (a fresh nonce each time).
        assert_ne!(sealer.seal("v/abc", &record()).unwrap(), sealed);
    }

    #[test]
    fn debug_shows_no_token() {
        let shown = format!("{:?}", record());
        assert!(
            !shown.contains("token-value") && !shown.contains("id.token"),
            "{shown}"
        );
        assert!(shown.contains("refreshable: true"), "{shown}");
    }
}
