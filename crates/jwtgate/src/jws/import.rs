//! Keys from what an operator writes: an HMAC secret (refused when short, or when it is really
//! a public key: the classic algorithm-confusion mistake) or a PEM public key, each checked
//! against the algorithm it will serve; and the RSA checks JWKs share.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;

use super::algorithm::{Algorithm, KeyFamily};
use super::key::{Material, VerifyingKey};

/// RSA keys under this many bits are refused.
pub(crate) const MIN_RSA_BITS: usize = 2048;
impl VerifyingKey {
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
        [] | [1 | 2] => return Err("RSA exponent is below 3".into()),
        [.., last] if last % 2 == 0 => return Err("RSA exponent is even".into()),
        _ => {}
    }
    if roca_fingerprint(n) {
        return Err(
            "RSA modulus has the ROCA weakness (CVE-2017-15361): its private key can be \
             computed; the issuer must replace it"
                .into(),
        );
    }
    Ok(())
}

/// Whether RSA modulus `n` (big-endian) has the ROCA fingerprint (CVE-2017-15361, Infineon's
/// RSALib 2012-2017): such moduli are a multiple of a primorial plus a power of 65537, so `n`
/// mod each of the first small primes lies in the subgroup 65537 generates there. A random
/// modulus passes for all 38 primes with negligible probability (the published detector's test).
fn roca_fingerprint(n: &[u8]) -> bool {
    const PRIMES: [u32; 38] = [
        3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89,
        97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
    ];
    PRIMES.iter().all(|&p| {
        let residue = n.iter().fold(0, |acc, &b| (acc * 256 + u32::from(b)) % p);
        let generator = 65537 % p;
        let mut power = 1;
        loop {
            if power == residue {
                return true;
            }
            power = power * generator % p;
            if power == 1 {
                return false;
            }
        }
    })
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn rsa_moduli_with_the_roca_fingerprint_are_refused() {
        // A modulus built as ROCA's are: 65537^a mod M (M the primorial of the 38 primes)
        // plus a multiple of M has the fingerprint; the moduli of ordinary keys do not.
        assert!(roca_fingerprint(&[1]));
        let generated = [
            jwtgate_test::TestKey::rsa(),
            jwtgate_test::TestKey::rsa_alt(),
        ];
        for key in generated {
            let n = key.jwk("k", "RS256")["n"].as_str().unwrap().to_owned();
            let n = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, n)
                .unwrap();
            assert!(!roca_fingerprint(&n));
            assert_eq!(check_rsa(&n, &[1, 0, 1]), Ok(()));
        }
    }

    #[test]
    fn short_or_misplaced_secrets_are_refused() {
        assert_eq!(
            VerifyingKey::from_secret(Algorithm::HS256, &[7; 31])
                .err()
                .as_deref(),
            Some("the HS256 secret must be at least 32 bytes long, it has 31")
        );
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
}
