//! One verification key, parsed once into aws-lc-rs objects for the algorithms it serves,
//! and its identity. Every signature check goes through aws-lc-rs directly, never through
//! jsonwebtoken's process-wide provider, so another crate enabling `rust_crypto` or installing
//! a provider can neither make jwtgate panic nor switch its backend.

use std::fmt;

use aws_lc_rs::signature::{
    self, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents, VerificationAlgorithm,
};
use aws_lc_rs::{digest, hmac};

use super::algorithm::{Algorithm, KeyFamily};

/// One key, parsed once into aws-lc-rs objects for the algorithms it serves.
#[derive(Clone)]
pub(crate) struct VerifyingKey {
    pub(crate) kid: Option<String>,
    pub(crate) family: KeyFamily,
    /// The JWK's own `alg`, when it names one.
    pub(crate) declared_alg: Option<Algorithm>,
    /// What the key is, whatever set it came in (a refetched set yields the same ids).
    pub(crate) id: KeyId,
    /// The key bytes, kept to prepare an algorithm the key was not built for (a validator that
    /// joins a shared remote key set after it was fetched).
    material: Material,
    /// The key parsed for each algorithm it was built for: a request only looks one up.
    prepared: Vec<(Algorithm, Prepared)>,
}

/// A key's identity: the first 128 bits of SHA-256 over its family and bytes. The verified-token
/// cache remembers which key verified a token, and serves it only while that key is in its set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct KeyId([u8; 16]);

impl KeyId {
    /// A key id no real key has.
    #[cfg(test)]
    pub(crate) const fn fake() -> Self {
        Self([0xee; 16])
    }

    fn of(family: KeyFamily, material: &Material) -> Self {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(format!("{family:?}").as_bytes());
        match material {
            Material::Secret(bytes) | Material::Public(bytes) => {
                ctx.update(b"\0");
                ctx.update(bytes);
            }
            Material::RsaComponents { n, e } => {
                ctx.update(b"\0n");
                ctx.update(n);
                ctx.update(b"\0e");
                ctx.update(e);
            }
        }
        let mut id = [0; 16];
        id.copy_from_slice(&ctx.finish().as_ref()[..16]);
        Self(id)
    }
}

/// A key's bytes, in the form aws-lc-rs reads them.
#[derive(Clone)]
pub(crate) enum Material {
    /// An HMAC secret.
    Secret(Vec<u8>),
    /// An RSA modulus and exponent (big-endian, no leading zeros).
    RsaComponents { n: Vec<u8>, e: Vec<u8> },
    /// A PKCS#1 or SPKI RSA key, an uncompressed EC point or an Ed25519 public key.
    Public(Vec<u8>),
}

/// A key ready to verify one algorithm's signatures.
#[derive(Clone)]
enum Prepared {
    Hmac(Box<hmac::Key>),
    Public(ParsedPublicKey),
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("family", &self.family)
            .finish_non_exhaustive()
    }
}

/// The aws-lc-rs verification algorithm of a public-key JWS algorithm; the RSA ones refuse
/// keys under 2048 bits, as jsonwebtoken's do.
fn public_algorithm(alg: Algorithm) -> Option<&'static RsaParameters> {
    Some(match alg {
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

fn verification_algorithm(alg: Algorithm) -> Option<&'static dyn VerificationAlgorithm> {
    if let Some(rsa) = public_algorithm(alg) {
        return Some(rsa);
    }
    Some(match alg {
        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
        Algorithm::EdDSA | Algorithm::Ed25519 => &signature::ED25519,
        _ => return None,
    })
}

fn hmac_algorithm(alg: Algorithm) -> Option<hmac::Algorithm> {
    match alg {
        Algorithm::HS256 => Some(hmac::HMAC_SHA256),
        Algorithm::HS384 => Some(hmac::HMAC_SHA384),
        Algorithm::HS512 => Some(hmac::HMAC_SHA512),
        _ => None,
    }
}

impl Material {
    /// Parses the key for `alg`; `None` when aws-lc-rs refuses it (not on the curve, ...).
    fn prepare(&self, alg: Algorithm) -> Option<Prepared> {
        match self {
            Self::Secret(secret) => Some(Prepared::Hmac(Box::new(hmac::Key::new(
                hmac_algorithm(alg)?,
                secret,
            )))),
            Self::RsaComponents { n, e } => RsaPublicKeyComponents { n, e }
                .to_parsed_public_key(public_algorithm(alg)?)
                .ok()
                .map(Prepared::Public),
            Self::Public(bytes) => ParsedPublicKey::new(verification_algorithm(alg)?, bytes)
                .ok()
                .map(Prepared::Public),
        }
    }
}

impl Prepared {
    fn verify(&self, input: &[u8], signature: &[u8]) -> bool {
        match self {
            // Constant-time comparison of the tags.
            Self::Hmac(key) => hmac::verify(key, input, signature).is_ok(),
            Self::Public(key) => key.verify_sig(input, signature).is_ok(),
        }
    }
}

impl VerifyingKey {
    /// A key of `family` for each of `algs` it fits, parsed now; an error when aws-lc-rs
    /// cannot read it.
    pub(crate) fn new(
        kid: Option<String>,
        family: KeyFamily,
        declared_alg: Option<Algorithm>,
        material: Material,
        algs: &[Algorithm],
    ) -> Result<Self, String> {
        let mut key = Self {
            kid,
            family,
            declared_alg,
            id: KeyId::of(family, &material),
            material,
            prepared: Vec::new(),
        };
        for &alg in algs {
            if key.fits(alg) && !key.prepared.iter().any(|(a, _)| *a == alg) {
                let prepared = key
                    .material
                    .prepare(alg)
                    .ok_or_else(|| format!("the key cannot be read as a {alg} key"))?;
                key.prepared.push((alg, prepared));
            }
        }
        Ok(key)
    }

    /// Whether this key may verify a token signed with `alg`.
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
        self.family == alg.family() && self.declared_alg.is_none_or(|a| a == alg)
    }

    /// Checks `signature` over `input` with `alg`, through aws-lc-rs whatever jsonwebtoken's
    /// process-wide provider, with the key parsed when the set was built.
    pub(crate) fn verify(&self, alg: Algorithm, input: &[u8], signature: &[u8]) -> bool {
        if !self.fits(alg) {
            return false;
        }
        match self.prepared.iter().find(|(a, _)| *a == alg) {
            Some((_, prepared)) => prepared.verify(input, signature),
            // Not built for `alg`: parsed for this one check.
            None => self
                .material
                .prepare(alg)
                .is_some_and(|p| p.verify(input, signature)),
        }
    }
}
