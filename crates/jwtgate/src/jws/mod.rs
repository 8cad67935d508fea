//! The verification kernel: strict compact-JWS parsing, registered-claim rules, algorithms,
//! parsed keys and JWK sets. It knows nothing of HTTP, validators or the registry, so it can be
//! read, tested and fuzzed on its own.

pub(crate) mod algorithm;
pub(crate) mod claim_set;
pub(crate) mod claims;
pub(crate) mod header;
pub(crate) mod import;
pub(crate) mod issuer_pattern;
pub(crate) mod json;
pub(crate) mod jwk;
pub(crate) mod key;
pub(crate) mod key_set;
pub(crate) mod token;
