//! Verification keys: parsing them once (secret, PEM, JWK set) and checking that each fits the
//! algorithm it will serve, so the request path only looks keys up.
//!
//! Every signature check goes through jsonwebtoken's aws-lc-rs provider by name, never through
//! its process-wide default, so another crate enabling `rust_crypto` can neither make jwtgate
//! panic nor switch its backend.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde::Deserialize;

use crate::algorithm::{Algorithm, KeyFamily};

/// RSA keys under this many bits are refused.
pub(crate) const MIN_RSA_BITS: usize = 2048;
/// A JWK set with more keys than this is cut (the rest are skipped with a reason).
pub(crate) const MAX_JWKS_KEYS: usize = 64;

/// One parsed public key or secret, ready to verify signatures.
#[derive(Clone)]
pub(crate) struct VerifyingKey {
    pub(crate) kid: Option<String>,
    family: KeyFamily,
    /// The JWK's own `alg`, when it names one.
    declared_alg: Option<Algorithm>,
    key: DecodingKey,
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
        let looks_public = [
            &b"-----BEGIN"[..],
            b"ssh-rsa",
            b"ssh-ed25519",
            b"ecdsa-sha2-",
        ]
        .iter()
        .any(|p| secret.trim_ascii_start().starts_with(p));
        if looks_public {
            return Err(
                "the secret looks like a PEM or SSH key; a public key is not an HMAC secret".into(),
            );
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
                let (n, _e) = (DEFAULT_PROVIDER
                    .key_utils
                    .rsa_pub_components_from_public_key)(raw)
                .map_err(|_| format!("the PEM is not an RSA public key usable with {alg}"))?;
                check_rsa_bits(&n)?;
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

fn check_rsa_bits(n: &[u8]) -> Result<(), String> {
    let n = match n.iter().position(|b| *b != 0) {
        Some(i) => &n[i..],
        None => &[][..],
    };
    let bits = n
        .first()
        .map_or(0, |b| (n.len() - 1) * 8 + (8 - b.leading_zeros() as usize));
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "RSA key has {bits} bits, at least {MIN_RSA_BITS} are required"
        ));
    }
    Ok(())
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

/// Why a key could not be selected for a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Selection {
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
    /// otherwise every key that fits `alg`.
    pub(crate) fn select(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<impl Iterator<Item = &VerifyingKey>, Selection> {
        let kid = kid.filter(|_| self.by_kid);
        if let Some(kid) = kid
            && !self.has_kid(kid)
        {
            return Err(Selection::UnknownKid);
        }
        let mut keys = self
            .keys
            .iter()
            .filter(move |k| k.fits(alg) && kid.is_none_or(|kid| k.kid.as_deref() == Some(kid)))
            .peekable();
        if keys.peek().is_none() {
            return Err(Selection::NoFittingKey);
        }
        Ok(keys)
    }
}

/// A key of a JWK set that was left out, with the reason (for logs and cache state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedKey {
    /// The key's `kid`, if it had one.
    pub kid: Option<String>,
    /// Why it was left out.
    pub reason: String,
}

#[derive(Deserialize)]
struct JwkSetDoc {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
    k: Option<String>,
}

/// Parses a JWK set, keeping the keys that can serve at least one of `algs`.
///
/// `allow_oct` admits symmetric keys (never in a remote set). A document that is not a JWK set,
/// or one with no usable key, is an error; unusable keys are returned as [`SkippedKey`]s.
pub(crate) fn parse_jwks(
    doc: &[u8],
    algs: &[Algorithm],
    allow_oct: bool,
) -> Result<(KeySet, Vec<SkippedKey>), String> {
    let doc = crate::token::parse_object(doc).map_err(|e| format!("not a JWK set: {e}"))?;
    let doc: JwkSetDoc = serde_json::from_value(serde_json::Value::Object(doc))
        .map_err(|_| "not a JWK set: expected an object with a \"keys\" array".to_owned())?;
    let mut parsed: Vec<VerifyingKey> = Vec::new();
    let mut skipped = Vec::new();
    for (i, raw) in doc.keys.into_iter().enumerate() {
        let kid = raw.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
        if i >= MAX_JWKS_KEYS {
            let reason = format!("more than {MAX_JWKS_KEYS} keys in the set");
            skipped.push(SkippedKey { kid, reason });
            continue;
        }
        match parse_jwk(raw, algs, allow_oct) {
            Ok(key) => parsed.push(key),
            Err(reason) => skipped.push(SkippedKey { kid, reason }),
        }
    }
    // A kid used twice: neither copy can be trusted to be the one the issuer meant.
    let mut keys = Vec::with_capacity(parsed.len());
    for key in &parsed {
        let uses = parsed
            .iter()
            .filter(|k| key.kid.is_some() && k.kid == key.kid)
            .count();
        if uses <= 1 {
            keys.push(key.clone());
        } else if !skipped
            .iter()
            .any(|s| s.kid == key.kid && s.reason == "duplicate kid")
        {
            let reason = "duplicate kid".to_owned();
            skipped.push(SkippedKey {
                kid: key.kid.clone(),
                reason,
            });
        }
    }
    if keys.is_empty() {
        let algs: Vec<_> = algs.iter().map(|a| a.as_str()).collect();
        return Err(format!(
            "the JWK set has no key usable with {} ({} skipped)",
            algs.join("/"),
            skipped.len()
        ));
    }
    Ok((KeySet { keys, by_kid: true }, skipped))
}

fn parse_jwk(
    raw: serde_json::Value,
    algs: &[Algorithm],
    allow_oct: bool,
) -> Result<VerifyingKey, String> {
    let jwk: Jwk = serde_json::from_value(raw).map_err(|_| "malformed JWK".to_owned())?;
    if let Some(use_) = &jwk.use_
        && use_ != "sig"
    {
        return Err(format!("use is {use_:?}, not \"sig\""));
    }
    let declared_alg = match &jwk.alg {
        None => None,
        Some(a) => Some(
            a.parse::<Algorithm>()
                .map_err(|_| format!("unsupported alg {a:?}"))?,
        ),
    };
    let b64 = |field: &Option<String>, name: &str| -> Result<Vec<u8>, String> {
        let v = field.as_deref().ok_or_else(|| format!("missing {name}"))?;
        URL_SAFE_NO_PAD
            .decode(v)
            .map_err(|_| format!("{name} is not base64url"))
    };
    let (family, key) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("RSA", _) => {
            let n = b64(&jwk.n, "n")?;
            let e = b64(&jwk.e, "e")?;
            check_rsa_bits(&n)?;
            (KeyFamily::Rsa, DecodingKey::from_rsa_raw_components(&n, &e))
        }
        ("EC", Some(crv @ ("P-256" | "P-384"))) => {
            let (family, len) = if crv == "P-256" {
                (KeyFamily::EcP256, 32)
            } else {
                (KeyFamily::EcP384, 48)
            };
            let (x, y) = (b64(&jwk.x, "x")?, b64(&jwk.y, "y")?);
            if x.len() != len || y.len() != len {
                return Err(format!("{crv} coordinates have the wrong length"));
            }
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            (family, DecodingKey::from_ec_der(&point))
        }
        ("OKP", Some("Ed25519")) => {
            let x = b64(&jwk.x, "x")?;
            if x.len() != 32 {
                return Err("Ed25519 x has the wrong length".into());
            }
            (KeyFamily::Ed25519, DecodingKey::from_ed_der(&x))
        }
        ("oct", _) if !allow_oct => return Err("symmetric (oct) keys are not accepted here".into()),
        ("oct", _) => {
            let k = b64(&jwk.k, "k")?;
            let alg = declared_alg.or_else(|| algs.iter().copied().find(|a| a.is_hmac()));
            if let Some(alg) = alg
                && k.len() < alg.min_secret_len()
            {
                return Err(format!(
                    "oct key shorter than {} bytes",
                    alg.min_secret_len()
                ));
            }
            (KeyFamily::Hmac, DecodingKey::from_secret(&k))
        }
        (kty, crv) => {
            return Err(match crv {
                Some(crv) => format!("unsupported key type {kty:?} / curve {crv:?}"),
                None => format!("unsupported key type {kty:?}"),
            });
        }
    };
    if let Some(d) = declared_alg.filter(|d| d.family() != family) {
        return Err(format!("alg {d} does not fit the {} key", jwk.kty));
    }
    let key = VerifyingKey {
        kid: jwk.kid,
        family,
        declared_alg,
        key,
    };
    if !algs.iter().any(|a| key.fits(*a)) {
        let algs: Vec<_> = algs.iter().map(|a| a.as_str()).collect();
        return Err(match declared_alg {
            Some(d) => format!("alg {d} differs from {}", algs.join("/")),
            None => format!("{} key cannot serve {}", jwk.kty, algs.join("/")),
        });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
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
    fn rsa_bit_count() {
        let mut n = vec![0u8, 0x80];
        n.extend(vec![0u8; 255]);
        assert!(check_rsa_bits(&n).is_ok());
        let mut n = vec![0x7f];
        n.extend(vec![0u8; 255]);
        assert_eq!(
            check_rsa_bits(&n).unwrap_err(),
            "RSA key has 2047 bits, at least 2048 are required"
        );
    }

    #[test]
    fn jwks_parsing_skips_with_reasons() {
        let x = URL_SAFE_NO_PAD.encode([1u8; 32]);
        let doc = serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "good"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "enc", "use": "enc"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "alg", "alg": "ES256"},
            {"kty": "oct", "k": "AAAA", "kid": "oct"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "small"},
            {"kty": "EC", "crv": "P-521", "x": x, "y": x, "kid": "p521"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "dup"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "dup"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "dup"},
            "not an object"
        ]});
        let (set, skipped) =
            parse_jwks(doc.to_string().as_bytes(), &[Algorithm::EdDSA], false).unwrap();
        let kids: Vec<_> = set.keys.iter().map(|k| k.kid.clone().unwrap()).collect();
        assert_eq!(kids, ["good"]);
        let reasons: Vec<_> = skipped.iter().map(|s| s.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "use is \"enc\", not \"sig\"",
                "alg ES256 does not fit the OKP key",
                "symmetric (oct) keys are not accepted here",
                "RSA key has 17 bits, at least 2048 are required",
                "unsupported key type \"EC\" / curve \"P-521\"",
                "malformed JWK",
                "duplicate kid",
            ]
        );
    }

    #[test]
    fn documents_that_are_not_key_sets_fail() {
        for doc in [
            &b"{}"[..],
            b"{\"keys\":\"x\"}",
            b"<html>",
            b"{\"keys\":[",
            b"{\"keys\":[]}",
        ] {
            assert!(
                parse_jwks(doc, &[Algorithm::RS256], false).is_err(),
                "{doc:?}"
            );
        }
    }

    #[test]
    fn selection_by_kid() {
        let x = URL_SAFE_NO_PAD.encode([1u8; 32]);
        let doc = serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "a"},
            {"kty": "OKP", "crv": "Ed25519", "x": x}
        ]});
        let (set, _) = parse_jwks(doc.to_string().as_bytes(), &[Algorithm::EdDSA], false).unwrap();
        assert_eq!(set.select(Some("a"), Algorithm::EdDSA).unwrap().count(), 1);
        assert_eq!(set.select(None, Algorithm::EdDSA).unwrap().count(), 2);
        assert_eq!(
            set.select(Some("zz"), Algorithm::EdDSA).err(),
            Some(Selection::UnknownKid)
        );
        assert_eq!(
            set.select(None, Algorithm::ES256).err(),
            Some(Selection::NoFittingKey)
        );
    }

    #[test]
    fn mutated_key_sets_never_panic() {
        let x = URL_SAFE_NO_PAD.encode([1u8; 32]);
        let n = URL_SAFE_NO_PAD.encode([0xC5u8; 256]);
        let doc = serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "a", "use": "sig"},
            {"kty": "RSA", "n": n, "e": "AQAB", "kid": "b", "alg": "RS256"},
            {"kty": "EC", "crv": "P-256", "x": x, "y": x, "kid": "c"}
        ]})
        .to_string()
        .into_bytes();
        let alphabet = b"{}[]\":,0aZ-_ ";
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for _ in 0..5000 {
            let mut d = doc.clone();
            for _ in 0..=next(3) {
                let i = next(d.len());
                match next(3) {
                    0 => d[i] = alphabet[next(alphabet.len())],
                    1 => {
                        d.remove(i);
                    }
                    _ => d.insert(i, alphabet[next(alphabet.len())]),
                }
            }
            let _ = parse_jwks(
                &d,
                &[Algorithm::EdDSA, Algorithm::RS256, Algorithm::ES256],
                false,
            );
        }
    }
}
