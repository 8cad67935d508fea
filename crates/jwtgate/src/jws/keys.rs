//! Verification keys: parsing them once (secret, PEM, JWK) and checking that each fits the
//! algorithm it will serve, so the request path only looks keys up.
//!
//! Every signature check goes through aws-lc-rs directly, with the key parsed when the set is
//! built (jsonwebtoken's verifiers re-parse the key on each call), never through jsonwebtoken's
//! process-wide provider, so another crate enabling `rust_crypto` or installing a provider can
//! neither make jwtgate panic nor switch its backend.

use std::fmt;

use aws_lc_rs::signature::{
    self, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents, VerificationAlgorithm,
};
use aws_lc_rs::{digest, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
use jsonwebtoken::{DecodingKey, EncodingKey};

use super::algorithm::{Algorithm, KeyFamily};

/// RSA keys under this many bits are refused.
pub(crate) const MIN_RSA_BITS: usize = 2048;
/// A token without `kid` is tried against at most this many keys of a JWK set (the first ones
/// that fit the pinned algorithm), so a large set cannot turn one token into many verifications.
pub(crate) const MAX_KIDLESS_KEYS: usize = 4;

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

/// The signatures of one token already checked in a request, so that two validators sharing a
/// key never verify the same signature twice.
#[derive(Debug, Default)]
pub(crate) struct CheckedSignatures(smallvec::SmallVec<[(KeyId, Algorithm, bool); 2]>);

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

    /// An HMAC secret for `alg`, refused when shorter than the hash or shaped like a public key.
    pub(crate) fn from_secret(alg: Algorithm, secret: &[u8]) -> Result<Self, String> {
        if !alg.is_hmac() {
            return Err(format!("a shared secret cannot be used with {alg}"));
        }
        if secret.len() < alg.min_secret_len() {
            return Err(format!(
                "the {alg} secret must be at least {} bytes long, it has {}",
                alg.min_secret_len(),
                secret.len()
            ));
        }
        if let Some(what) = looks_like_a_public_key(secret) {
            return Err(format!(
                "the secret looks like {what}; a public key is not an HMAC secret"
            ));
        }
        Self::new(
            None,
            KeyFamily::Hmac,
            None,
            Material::Secret(secret.to_vec()),
            &[alg],
        )
    }

    /// A PEM public key (SPKI, PKCS#1 or certificate) that must fit `alg`.
    pub(crate) fn from_pem(alg: Algorithm, pem: &[u8]) -> Result<Self, String> {
        if String::from_utf8_lossy(pem).contains("PRIVATE KEY") {
            return Err("expected a public key, found a private key PEM".into());
        }
        let family = alg.family();
        // jsonwebtoken reads the PEM armour and DER structure (no cryptography involved);
        // aws-lc-rs parses the key.
        let parsed = match family {
            KeyFamily::Hmac => {
                return Err(format!("{alg} takes a shared secret, not a public key"));
            }
            KeyFamily::Rsa => DecodingKey::from_rsa_pem(pem),
            KeyFamily::EcP256 | KeyFamily::EcP384 => DecodingKey::from_ec_pem(pem),
            KeyFamily::Ed25519 => DecodingKey::from_ed_pem(pem),
        };
        let key = parsed.map_err(|_| format!("the PEM is not a public key usable with {alg}"))?;
        let raw = key
            .try_get_as_bytes()
            .map_err(|_| "unreadable PEM key".to_owned())?;
        match family {
            KeyFamily::Rsa => {
                let (n, e) = (DEFAULT_PROVIDER
                    .key_utils
                    .rsa_pub_components_from_public_key)(raw)
                .map_err(|_| format!("the PEM is not an RSA public key usable with {alg}"))?;
                check_rsa(&n, &e)?;
            }
            KeyFamily::EcP256 if raw.len() != 65 => {
                return Err(format!("{alg} needs a P-256 key"));
            }
            KeyFamily::EcP384 if raw.len() != 97 => {
                return Err(format!("{alg} needs a P-384 key"));
            }
            KeyFamily::Ed25519 if raw.len() != 32 => {
                return Err(format!("{alg} needs an Ed25519 key"));
            }
            _ => {}
        }
        Self::new(None, family, None, Material::Public(raw.to_vec()), &[alg])
            .map_err(|_| format!("the PEM is not a public key usable with {alg}"))
    }
}

/// What a would-be HMAC secret looks like when it is really a public key: an armoured PEM
/// (also after a UTF-8 BOM), an SSH key, the base64 DER body of a PEM without its armour, or a
/// JWK. Using a public key as an HMAC secret is the classic algorithm-confusion mistake.
fn looks_like_a_public_key(secret: &[u8]) -> Option<&'static str> {
    let trimmed = secret
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(secret)
        .trim_ascii();
    if trimmed.starts_with(b"-----BEGIN") {
        return Some("a PEM key");
    }
    if [&b"ssh-rsa"[..], b"ssh-ed25519", b"ecdsa-sha2-"]
        .iter()
        .any(|p| trimmed.starts_with(p))
    {
        return Some("an SSH key");
    }
    if trimmed.starts_with(b"{")
        && super::json::parse_object(trimmed).is_ok_and(|jwk| jwk.contains_key("kty"))
    {
        return Some("a JWK");
    }
    // DER of a key or certificate starts with a SEQUENCE (0x30) whose long-form length makes
    // its base64 start with "MI".
    if trimmed.starts_with(b"MI") {
        let compact: Vec<u8> = trimmed
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        if STANDARD
            .decode(&compact)
            .is_ok_and(|der| der.first() == Some(&0x30))
        {
            return Some("the base64 DER body of a PEM key");
        }
    }
    None
}

/// `bytes` without its leading zero octets (big-endian integers in JWKs may carry one).
pub(crate) fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// Refuses RSA moduli under [`MIN_RSA_BITS`] and exponents below 3 or even (no valid RSA key
/// has one; such keys are forged or broken).
pub(crate) fn check_rsa(n: &[u8], e: &[u8]) -> Result<(), String> {
    let n = strip_leading_zeros(n);
    let bits = n
        .first()
        .map_or(0, |b| (n.len() - 1) * 8 + (8 - b.leading_zeros() as usize));
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "RSA key has {bits} bits, at least {MIN_RSA_BITS} are required"
        ));
    }
    let e = strip_leading_zeros(e);
    match e {
        [] | [1 | 2] => Err("RSA exponent is below 3".into()),
        [.., last] if last % 2 == 0 => Err("RSA exponent is even".into()),
        _ => Ok(()),
    }
}

/// Signs `input` with HMAC-SHA256 (cookie mode), through aws-lc-rs.
pub(crate) fn sign_hs256(secret: &EncodingKey, input: &[u8]) -> Option<Vec<u8>> {
    let signer = (DEFAULT_PROVIDER.signer_factory)(&jsonwebtoken::Algorithm::HS256, secret).ok()?;
    signer.try_sign(input).ok()
}

/// A set of keys for one validator or one JWKS URL.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeySet {
    pub(crate) keys: Vec<VerifyingKey>,
    /// JWK sets select by `kid`; a single configured key ignores it.
    pub(crate) by_kid: bool,
}

/// Why no key could be selected for a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyMiss {
    UnknownKid,
    NoFittingKey,
}

impl KeySet {
    pub(crate) fn single(key: VerifyingKey) -> Self {
        Self {
            keys: vec![key],
            by_kid: false,
        }
    }

    /// Whether the key `id` is (still) in this set.
    pub(crate) fn contains(&self, id: KeyId) -> bool {
        self.keys.iter().any(|k| k.id == id)
    }

    /// The key among `candidates` whose signature over `input` holds, each checked at most once
    /// per request however many validators ask (`checked` remembers the verdicts).
    pub(crate) fn verify<'k>(
        candidates: impl Iterator<Item = &'k VerifyingKey>,
        alg: Algorithm,
        input: &[u8],
        signature: &[u8],
        checked: &mut CheckedSignatures,
    ) -> Option<KeyId> {
        for key in candidates {
            let seen = checked
                .0
                .iter()
                .find(|(id, a, _)| *id == key.id && *a == alg)
                .map(|(_, _, ok)| *ok);
            let ok = seen.unwrap_or_else(|| {
                let ok = key.verify(alg, input, signature);
                checked.0.push((key.id, alg, ok));
                ok
            });
            if ok {
                return Some(key.id);
            }
        }
        None
    }

    pub(crate) fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// The keys to try for a token with `kid` and `alg`: the one named by `kid` in a JWK set,
    /// otherwise the keys that fit `alg` (at most [`MAX_KIDLESS_KEYS`] of a JWK set).
    pub(crate) fn select(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<impl Iterator<Item = &VerifyingKey>, KeyMiss> {
        let kid = kid.filter(|_| self.by_kid);
        if let Some(kid) = kid
            && !self.has_kid(kid)
        {
            return Err(KeyMiss::UnknownKid);
        }
        let limit = if self.by_kid && kid.is_none() {
            MAX_KIDLESS_KEYS
        } else {
            usize::MAX
        };
        let mut keys = self
            .keys
            .iter()
            .filter(move |k| k.fits(alg) && kid.is_none_or(|kid| k.kid.as_deref() == Some(kid)))
            .take(limit)
            .peekable();
        if keys.peek().is_none() {
            return Err(KeyMiss::NoFittingKey);
        }
        Ok(keys)
    }
}

/// A key of a JWK set that was left out, with the reason (for logs and cache state).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SkippedKey {
    /// The key's `kid`, if it had one.
    pub kid: Option<String>,
    /// Why it was left out.
    pub reason: String,
}

impl fmt::Display for SkippedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kid {
            Some(kid) => write!(f, "kid {kid:?}: {}", self.reason),
            None => write!(f, "a key without kid: {}", self.reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    #[test]
    fn short_or_misplaced_secrets_are_refused() {
        assert!(VerifyingKey::from_secret(Algorithm::HS256, &[7; 31]).is_err());
        assert!(VerifyingKey::from_secret(Algorithm::HS256, &[7; 32]).is_ok());
        let err = VerifyingKey::from_secret(Algorithm::HS512, &[7; 63]).unwrap_err();
        assert!(err.contains("64 bytes"), "{err}");
        assert!(VerifyingKey::from_secret(Algorithm::RS256, &[7; 64]).is_err());
        let pem = format!("-----BEGIN PUBLIC KEY-----{}", "A".repeat(40));
        assert!(VerifyingKey::from_secret(Algorithm::HS256, pem.as_bytes()).is_err());
    }

    #[test]
    fn public_keys_in_disguise_are_not_secrets() {
        let der_body = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW/VDL5AaWTg0nLVkjRo9z+40RQzuVaE8AkAFmxZzow3x+VJYKdjykkJ0iT9wCS0DRTXu269V264Vf/3jvredZiKRkgwlL9xNAwxXFg0x/XFw005UWVRIkdgcKWTjpBP2dPwVZ4WWC+9aGVd+Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbcmwIDAQAB";
        for (secret, what) in [
            (
                format!("\u{feff}-----BEGIN PUBLIC KEY-----\n{der_body}\n-----END PUBLIC KEY-----"),
                "a PEM key",
            ),
            (der_body.to_owned(), "the base64 DER body"),
            (
                format!("{}\n{}", &der_body[..64], &der_body[64..]),
                "the base64 DER body",
            ),
            (
                r#"{"kty":"RSA","n":"AQAB","e":"AQAB","padding":"xxxxxxxxxx"}"#.to_owned(),
                "a JWK",
            ),
            (
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx".to_owned(),
                "an SSH key",
            ),
        ] {
            let err = VerifyingKey::from_secret(Algorithm::HS256, secret.as_bytes()).unwrap_err();
            assert!(err.contains(what), "{err}");
        }
        // Ordinary random secrets, even base64 ones, pass.
        assert!(
            VerifyingKey::from_secret(Algorithm::HS256, b"MIsecret-but-not-base64-der!!!!!!!")
                .is_ok()
        );
        assert!(
            VerifyingKey::from_secret(Algorithm::HS256, b"{\"not\":\"a jwk, just json......\"}")
                .is_ok()
        );
    }

    #[test]
    fn rsa_exponents() {
        let mut n = vec![0x80u8];
        n.extend(vec![0u8; 255]);
        assert!(check_rsa(&n, &[1, 0, 1]).is_ok());
        assert!(check_rsa(&n, &[0, 0, 3]).is_ok());
        assert_eq!(check_rsa(&n, &[1]).unwrap_err(), "RSA exponent is below 3");
        assert_eq!(check_rsa(&n, &[0]).unwrap_err(), "RSA exponent is below 3");
        assert_eq!(check_rsa(&n, &[]).unwrap_err(), "RSA exponent is below 3");
        assert_eq!(
            check_rsa(&n, &[1, 0, 0]).unwrap_err(),
            "RSA exponent is even"
        );
    }

    #[test]
    fn rsa_bit_count() {
        let mut n = vec![0u8, 0x80];
        n.extend(vec![0u8; 255]);
        assert!(check_rsa(&n, &[1, 0, 1]).is_ok());
        let mut n = vec![0x7f];
        n.extend(vec![0u8; 255]);
        assert_eq!(
            check_rsa(&n, &[1, 0, 1]).unwrap_err(),
            "RSA key has 2047 bits, at least 2048 are required"
        );
    }

    #[test]
    fn selection_by_kid() {
        let x = URL_SAFE_NO_PAD.encode([1u8; 32]);
        let doc = serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "a"},
            {"kty": "OKP", "crv": "Ed25519", "x": x}
        ]});
        let (set, _) =
            super::super::jwk::parse_jwks(doc.to_string().as_bytes(), &[Algorithm::EdDSA], false)
                .unwrap();
        assert_eq!(set.select(Some("a"), Algorithm::EdDSA).unwrap().count(), 1);
        assert_eq!(set.select(None, Algorithm::EdDSA).unwrap().count(), 2);
        assert_eq!(
            set.select(Some("zz"), Algorithm::EdDSA).err(),
            Some(KeyMiss::UnknownKid)
        );
        assert_eq!(
            set.select(None, Algorithm::ES256).err(),
            Some(KeyMiss::NoFittingKey)
        );
    }
}
