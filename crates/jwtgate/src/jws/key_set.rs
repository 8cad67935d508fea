//! The keys of one validator or one JWKS URL, and how a token's key is selected and its
//! signature checked (once per key per request, however many validators ask).

use super::algorithm::Algorithm;
use super::key::{KeyId, VerifyingKey};

/// A token without `kid` is tried against at most this many keys of a JWK set (the first ones
/// that fit the pinned algorithm), so a large set cannot turn one token into many verifications.
pub(crate) const MAX_KIDLESS_KEYS: usize = 4;

/// The signatures of one token already checked in a request, so that two validators sharing a
/// key never verify the same signature twice.
#[derive(Debug, Default)]
pub(crate) struct CheckedSignatures(smallvec::SmallVec<[(KeyId, Algorithm, bool); 2]>);

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

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    #[test]
    fn selection_by_kid() {
        let x = URL_SAFE_NO_PAD.encode([1u8; 32]);
        let doc = serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "a"},
            {"kty": "OKP", "crv": "Ed25519", "x": x}
        ]});
        let (set, _) =
            crate::jws::jwk::parse_jwks(doc.to_string().as_bytes(), &[Algorithm::EdDSA], false)
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
