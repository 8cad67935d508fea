//! Verification keys: parsing them once (secret, PEM, JWK) and checking that each fits the
//! algorithm it will serve, so the request path only looks keys up.
//!
//! Every signature check goes through jsonwebtoken's aws-lc-rs provider by name, never through
//! its process-wide default, so another crate enabling `rust_crypto` can neither make jwtgate
//! panic nor switch its backend.

use std::fmt;

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

/// One parsed public key or secret, ready to verify signatures.
#[derive(Clone)]
pub(crate) struct VerifyingKey {
    pub(crate) kid: Option<String>,
    pub(crate) family: KeyFamily,
    /// The JWK's own `alg`, when it names one.
    pub(crate) declared_alg: Option<Algorithm>,
    pub(crate) key: DecodingKey,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("family", &self.family)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Whether this key may verify a token signed with `alg`.
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
        self.family == alg.family() && self.declared_alg.is_none_or(|a| a == alg)
    }

    /// Checks `signature` over `input` with `alg`, using aws-lc-rs whatever the process default.
    // jsonwebtoken's verifier takes its signature type, `Vec<u8>`, by reference.
    #[allow(clippy::ptr_arg)]
    pub(crate) fn verify(&self, alg: Algorithm, input: &[u8], signature: &Vec<u8>) -> bool {
        if !self.fits(alg) {
            return false;
        }
        match (DEFAULT_PROVIDER.verifier_factory)(&alg.to_jwt(), &self.key) {
            Ok(verifier) => verifier.verify(input, signature).is_ok(),
            Err(_) => false,
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
        Ok(Self {
            kid: None,
            family: KeyFamily::Hmac,
            declared_alg: None,
            key: DecodingKey::from_secret(secret),
        })
    }

    /// A PEM public key (SPKI, PKCS#1 or certificate) that must fit `alg`.
    pub(crate) fn from_pem(alg: Algorithm, pem: &[u8]) -> Result<Self, String> {
        if String::from_utf8_lossy(pem).contains("PRIVATE KEY") {
            return Err("expected a public key, found a private key PEM".into());
        }
        let family = alg.family();
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
        Ok(Self {
            kid: None,
            family,
            declared_alg: None,
            key,
        })
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
