//! What an accepted credential is looked up by, read from its claims once: a token served
//! from the verified-token cache keeps its probe, so a hit reads no claim and hashes nothing.

use std::hash::BuildHasher;
use std::sync::OnceLock;

use crate::jws::claim_set::{ClaimSet, RawJson, Registered};

/// The kinds of entry, as the mirror indexes them.
pub(crate) const SESSION: usize = 0;
pub(crate) const PROVIDER_SESSION: usize = 1;
pub(crate) const TOKEN: usize = 2;
pub(crate) const SUBJECT: usize = 3;

/// The process's hash of entries and probes (one random seed per process, so that a probe
/// made once is valid for every lookup).
pub(crate) fn hash(kind: usize, issuer: &str, value: &str) -> u64 {
    static STATE: OnceLock<foldhash::fast::RandomState> = OnceLock::new();
    STATE
        .get_or_init(foldhash::fast::RandomState::default)
        .hash_one((kind, issuer, value))
}

/// One identifier of the credential and its hash.
#[derive(Debug)]
pub(crate) struct Key {
    pub(crate) value: Box<str>,
    pub(crate) hash: u64,
}

/// The credential's issuer, subject, `jti`, provider `sid` and `iat`, escapes decoded (an
/// entry for `a/b` matches `"a\/b"`).
#[derive(Debug)]
pub(crate) struct Probe {
    pub(crate) issuer: Box<str>,
    pub(crate) subject: Option<Key>,
    pub(crate) jti: Option<Key>,
    pub(crate) sid: Option<Key>,
    /// Fractional seconds floored; absent (or not a number) counts as issued before.
    pub(crate) iat: Option<u64>,
}

impl Probe {
    /// The probe of `claims`; `None` without a string `iss` (which no validator accepts).
    pub(crate) fn of(claims: &ClaimSet) -> Option<Self> {
        let issuer: Box<str> = claims.registered(Registered::Iss)?.as_str()?.into();
        let key = |kind, raw: Option<RawJson<'_>>| {
            let value: Box<str> = raw?.as_str()?.into();
            Some(Key {
                hash: hash(kind, &issuer, &value),
                value,
            })
        };
        Some(Self {
            subject: key(SUBJECT, claims.registered(Registered::Sub)),
            jti: key(TOKEN, claims.registered(Registered::Jti)),
            sid: key(PROVIDER_SESSION, claims.get("sid")),
            iat: claims
                .registered(Registered::Iat)
                .and_then(RawJson::as_f64)
                .filter(|t| *t >= 0.0)
                .map(|t| t.floor() as u64),
            issuer,
        })
    }
}
