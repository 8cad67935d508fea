//! The signature algorithms a validator can pin.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, ErrorKind};

/// A JWS signature algorithm. Each validator pins exactly one.
///
/// `none` is not a variant: an unsigned token can never pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// EdDSA with an Ed25519 key (RFC 8037).
    EdDSA,
    /// Ed25519 as a fully specified JWS algorithm (RFC 9864), what oidc-provider 9, jose 6
    /// and joserfc sign with; the same Ed25519 keys as `EdDSA`.
    Ed25519,
}

/// The kind of key an algorithm needs; used to refuse a key of the wrong type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyFamily {
    Hmac,
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl Algorithm {
    /// Every algorithm, in the order of the JWA registry.
    pub const ALL: [Self; 13] = [
        Self::HS256,
        Self::HS384,
        Self::HS512,
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
        Self::EdDSA,
        Self::Ed25519,
    ];

    /// The name used in a token header's `alg`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
            Self::Ed25519 => "Ed25519",
        }
    }

    /// Whether this is an HMAC (shared secret) algorithm.
    pub const fn is_hmac(self) -> bool {
        matches!(self, Self::HS256 | Self::HS384 | Self::HS512)
    }

    pub(crate) const fn family(self) -> KeyFamily {
        match self {
            Self::HS256 | Self::HS384 | Self::HS512 => KeyFamily::Hmac,
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512 => {
                KeyFamily::Rsa
            }
            Self::ES256 => KeyFamily::EcP256,
            Self::ES384 => KeyFamily::EcP384,
            Self::EdDSA | Self::Ed25519 => KeyFamily::Ed25519,
        }
    }

    /// RFC 7518 §3.2: an HMAC key must be at least as long as the hash output.
    pub(crate) const fn min_secret_len(self) -> usize {
        match self {
            Self::HS384 => 48,
            Self::HS512 => 64,
            _ => 32,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = Error;

    /// Parses the exact (case-sensitive) JWA name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(alg) = Self::ALL.into_iter().find(|a| a.as_str() == s) {
            return Ok(alg);
        }
        let why = if s.eq_ignore_ascii_case("none") {
            "unsigned tokens (`none`) are never accepted".to_owned()
        } else {
            let names: Vec<_> = Self::ALL.iter().map(|a| a.as_str()).collect();
            format!(
                "unknown algorithm {s:?}; expected one of {}",
                names.join(", ")
            )
        };
        Err(Error::new(ErrorKind::InvalidAlgorithm, why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_name_and_round_trips() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.as_str().parse::<Algorithm>().unwrap(), alg);
        }
    }

    #[test]
    fn none_and_lowercase_are_refused() {
        let err = "none".parse::<Algorithm>().unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidAlgorithm);
        assert!(err.to_string().contains("never accepted"), "{err}");
        assert!("hs256".parse::<Algorithm>().is_err());
        assert!("ES512".parse::<Algorithm>().is_err());
    }

    #[test]
    fn secret_lengths_follow_the_hash() {
        assert_eq!(Algorithm::HS256.min_secret_len(), 32);
        assert_eq!(Algorithm::HS384.min_secret_len(), 48);
        assert_eq!(Algorithm::HS512.min_secret_len(), 64);
    }
}
