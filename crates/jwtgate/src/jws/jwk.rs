//! JWK and JWK-set parsing: each key is checked against the algorithms it will serve, and every
//! key that cannot serve them is skipped with a reason that reaches the logs, the key-cache
//! state and, when no key is left, the error.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::algorithm::{Algorithm, KeyFamily};
use super::import::{check_rsa, strip_leading_zeros};
use super::key::{Material, VerifyingKey};
use super::key_set::KeySet;

/// A JWK set with more keys than this is cut (the rest are skipped with a reason).
pub(crate) const MAX_JWKS_KEYS: usize = 64;
/// How many skipped keys an error lists by name before it only counts the rest.
const LISTED_SKIPS: usize = 8;

/// Members that only a private key (or an RSA private key's CRT parameters) has.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];

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
    key_ops: Option<Vec<String>>,
    alg: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
    k: Option<String>,
}

/// Why a JWK set could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JwksError {
    pub(crate) message: String,
    /// The set holds private key material: a configuration mistake, never a transient one.
    pub(crate) private: bool,
}

/// Parses a JWK set, keeping the keys that can serve at least one of `algs`.
///
/// `allow_oct` admits symmetric keys (never in a remote set). A document that is not a JWK set,
/// or one with no usable key, is an error listing the skipped keys; unusable keys are returned
/// as [`SkippedKey`]s.
pub(crate) fn parse_jwks(
    doc: &[u8],
    algs: &[Algorithm],
    allow_oct: bool,
) -> Result<(KeySet, Vec<SkippedKey>), JwksError> {
    let plain = |message: String| JwksError {
        message,
        private: false,
    };
    let doc = super::json::parse_object(doc).map_err(|e| plain(format!("not a JWK set: {e}")))?;
    let doc: JwkSetDoc = serde_json::from_value(serde_json::Value::Object(doc))
        .map_err(|_| plain("not a JWK set: expected an object with a \"keys\" array".into()))?;
    let mut parsed: Vec<VerifyingKey> = Vec::new();
    let mut skipped = Vec::new();
    let mut private = false;
    for (i, raw) in doc.keys.into_iter().enumerate() {
        let kid = raw.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
        if i >= MAX_JWKS_KEYS {
            let reason = format!("more than {MAX_JWKS_KEYS} keys in the set");
            skipped.push(SkippedKey { kid, reason });
            continue;
        }
        if raw.as_object().is_some_and(|o| {
            o.get("kty").and_then(|k| k.as_str()) != Some("oct")
                && PRIVATE_MEMBERS.iter().any(|m| o.contains_key(*m))
        }) {
            private = true;
            let reason = "private key material (\"d\"); publish only public keys".to_owned();
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
    if private {
        return Err(JwksError {
            message: format!(
                "the JWK set holds a private key: {}",
                list(skipped.iter().filter(|s| s.reason.starts_with("private")))
            ),
            private: true,
        });
    }
    if keys.is_empty() {
        let algs: Vec<_> = algs.iter().map(|a| a.as_str()).collect();
        let why = if skipped.is_empty() {
            "it is empty".to_owned()
        } else {
            format!("skipped {}", list(skipped.iter()))
        };
        return Err(plain(format!(
            "the JWK set has no key usable with {}: {why}",
            algs.join("/"),
        )));
    }
    Ok((KeySet { keys, by_kid: true }, skipped))
}

/// `kid "a": reason; kid "b": reason (and 3 more)`, bounded whatever the set's size.
fn list<'a>(skipped: impl Iterator<Item = &'a SkippedKey>) -> String {
    let all: Vec<_> = skipped.collect();
    let mut text = all
        .iter()
        .take(LISTED_SKIPS)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    if all.len() > LISTED_SKIPS {
        text.push_str(&format!(" (and {} more)", all.len() - LISTED_SKIPS));
    }
    text
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
    if let Some(ops) = &jwk.key_ops
        && !ops.iter().any(|op| op == "verify")
    {
        return Err("key_ops does not include \"verify\"".into());
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
            check_rsa(&n, &e)?;
            // PyJWT and jose accept an `n` with a leading zero octet (a DER habit); the
            // verifier wants the bare big-endian integer.
            let (n, e) = (strip_leading_zeros(&n), strip_leading_zeros(&e));
            (
                KeyFamily::Rsa,
                Material::RsaComponents {
                    n: n.to_vec(),
                    e: e.to_vec(),
                },
            )
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
            (family, Material::Public(point))
        }
        ("OKP", Some("Ed25519")) => {
            let x = b64(&jwk.x, "x")?;
            if x.len() != 32 {
                return Err("Ed25519 x has the wrong length".into());
            }
            (KeyFamily::Ed25519, Material::Public(x))
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
            (KeyFamily::Hmac, Material::Secret(k))
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
    let fits = |a: &Algorithm| a.family() == family && declared_alg.is_none_or(|d| d == *a);
    if !algs.iter().any(fits) {
        let algs: Vec<_> = algs.iter().map(|a| a.as_str()).collect();
        return Err(match declared_alg {
            Some(d) => format!("alg {d} differs from {}", algs.join("/")),
            None => format!("{} key cannot serve {}", jwk.kty, algs.join("/")),
        });
    }
    VerifyingKey::new(jwk.kid, family, declared_alg, key, algs)
}

/// A key of a JWK set that was left out, with the reason (for logs and cache state).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
#[cfg_attr(not(feature = "remote-keys"), allow(unreachable_pub))]
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
    use super::*;

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
        let shape = "not a JWK set: expected an object with a \"keys\" array";
        let cases: [(&[u8], &str); 5] = [
            (b"{}", shape),
            (b"{\"keys\":\"x\"}", shape),
            (b"<html>", "not a JWK set: not valid JSON"),
            (b"{\"keys\":[", "not a JWK set: not valid JSON"),
            (
                b"{\"keys\":[]}",
                "the JWK set has no key usable with RS256: it is empty",
            ),
        ];
        for (doc, message) in cases {
            let err = parse_jwks(doc, &[Algorithm::RS256], false).unwrap_err();
            assert_eq!(err.message, message, "{doc:?}");
        }
        // JSON faults are told as such, not as a token's ("token has a duplicated member").
        let cases: [(&[u8], &str); 3] = [
            (
                br#"{"keys":[],"keys":[]}"#,
                "not a JWK set: a member is duplicated",
            ),
            (b"[]", "not a JWK set: not a JSON object"),
            (b"{\"keys\":[", "not a JWK set: not valid JSON"),
        ];
        for (doc, message) in cases {
            let err = parse_jwks(doc, &[Algorithm::RS256], false).unwrap_err();
            assert_eq!(err.message, message);
        }
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

    #[test]
    fn errors_list_each_skipped_key() {
        let x = URL_SAFE_NO_PAD.encode([1u8; 32]);
        let doc = serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "enc", "use": "enc"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "wrap", "key_ops": ["wrapKey"]},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB"}
        ]});
        let err = parse_jwks(doc.to_string().as_bytes(), &[Algorithm::EdDSA], false).unwrap_err();
        assert_eq!(
            err.message,
            "the JWK set has no key usable with EdDSA: skipped kid \"enc\": use is \"enc\", not \"sig\"; \
             kid \"wrap\": key_ops does not include \"verify\"; \
             a key without kid: RSA key has 17 bits, at least 2048 are required"
        );
        assert!(!err.private);
        let many: Vec<_> = (0..20)
            .map(|i| serde_json::json!({"kty": "EC", "kid": format!("k{i}")}))
            .collect();
        let err = parse_jwks(
            serde_json::json!({"keys": many}).to_string().as_bytes(),
            &[Algorithm::ES256],
            false,
        )
        .unwrap_err();
        assert!(err.message.ends_with("(and 12 more)"), "{}", err.message);
        let err = parse_jwks(br#"{"keys":[]}"#, &[Algorithm::ES256], false).unwrap_err();
        assert_eq!(
            err.message,
            "the JWK set has no key usable with ES256: it is empty"
        );
    }

    #[test]
    fn key_ops_with_verify_and_ed25519_alg() {
        let x = URL_SAFE_NO_PAD.encode([1u8; 32]);
        let doc = serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "a", "key_ops": ["verify"], "alg": "Ed25519"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "b"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "c", "alg": "EdDSA"}
        ]});
        let (set, skipped) =
            parse_jwks(doc.to_string().as_bytes(), &[Algorithm::Ed25519], false).unwrap();
        let kids: Vec<_> = set.keys.iter().filter_map(|k| k.kid.as_deref()).collect();
        assert_eq!(kids, ["a", "b"]);
        assert_eq!(skipped[0].reason, "alg EdDSA differs from Ed25519");
    }

    #[test]
    fn private_keys_are_refused() {
        let x = URL_SAFE_NO_PAD.encode([1u8; 32]);
        let doc = serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "pub"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "d": x, "kid": "priv"}
        ]});
        let err = parse_jwks(doc.to_string().as_bytes(), &[Algorithm::EdDSA], false).unwrap_err();
        assert!(err.private);
        assert!(
            err.message.contains("kid \"priv\": private key material"),
            "{}",
            err.message
        );
    }
}
