//! Strict parsing of a compact JWS before any key is touched.
//!
//! jsonwebtoken's own `decode` accepts duplicated members (last one wins), `crit` headers and
//! tokens of any size. Here the token is split, size-checked and its JSON parsed with a bounded
//! depth and no duplicate members, so that what is verified is exactly what is read.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use smallvec::SmallVec;

use super::claim_set::ClaimSet;
use super::header::{HeaderText, NotText, parse_header};
use super::json::JsonError;

/// Headers up to this size are decoded into a buffer on the stack.
const HEADER_STACK_BYTES: usize = 512;

/// The default cap on a token's length (Entra ID and Keycloak tokens with many groups or roles
/// pass 8 KiB); a validator can change it with `max_token_bytes`.
pub(crate) const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The highest `max_token_bytes` a validator may set.
pub(crate) const MAX_TOKEN_BYTES_LIMIT: usize = 256 * 1024;

/// Text kept without a heap allocation when it is at most `N` bytes: a header's `alg`, `typ`
/// and `kid` (Cloudflare's are 64 hex digits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ShortText<const N: usize>(SmallVec<[u8; N]>);

impl<const N: usize> ShortText<N> {
    fn new(text: &str) -> Self {
        Self(SmallVec::from_slice(text.as_bytes()))
    }

    pub(crate) fn as_str(&self) -> &str {
        // Made from a `&str`: always UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// A compact JWS split and decoded, not yet verified. Nothing in it is borrowed from a heap
/// copy: the header is read on the stack, the signature is decoded on the stack when it is
/// checked (so it takes no room in the request's state while keys are fetched),
/// the claims kept as their text.
pub(crate) struct UnverifiedToken<'a> {
    /// The `alg` header, always a string.
    pub(crate) alg: ShortText<16>,
    /// The `kid` header, when present.
    pub(crate) kid: Option<ShortText<64>>,
    /// The `typ` header, when present.
    pub(crate) typ: Option<ShortText<32>>,
    /// The claims, always a JSON object.
    /// The claims, always a JSON object (shared: they become the request's payload as they are).
    pub(crate) claims: Arc<ClaimSet>,
    /// `base64(header) . base64(payload)`, the bytes the signature covers.
    pub(crate) signing_input: &'a str,
    /// The signature, still base64url (see [`UnverifiedToken::with_signature`]).
    signature: &'a str,
}

/// Why a token could not be parsed. The text is safe to send to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenError {
    TooLarge,
    Encrypted,
    NotCompactJws,
    Base64,
    Json,
    DuplicateMember,
    TooDeep,
    NotAnObject,
    AlgNotString,
    KidNotString,
    TypNotString,
    Crit,
}

impl TokenError {
    pub(crate) const fn description(self) -> &'static str {
        match self {
            Self::TooLarge => "token too large",
            Self::Encrypted => "encrypted tokens (JWE) are not supported",
            Self::NotCompactJws => "token is not a compact JWS",
            Self::Base64 => "token is not valid base64url",
            Self::Json => "token is not valid JSON",
            Self::DuplicateMember => "token has a duplicated member",
            Self::TooDeep => "token JSON is nested too deeply",
            Self::NotAnObject => "token header or claims are not a JSON object",
            Self::AlgNotString => "token alg is not a string",
            Self::KidNotString => "token kid is not a string",
            Self::TypNotString => "token typ is not a string",
            Self::Crit => "token has critical header extensions",
        }
    }
}

/// The strict reader's reasons, told as token faults (what a client is sent).
impl From<JsonError> for TokenError {
    fn from(e: JsonError) -> Self {
        match e {
            JsonError::Syntax => Self::Json,
            JsonError::DuplicateMember => Self::DuplicateMember,
            JsonError::TooDeep => Self::TooDeep,
            JsonError::NotAnObject => Self::NotAnObject,
            JsonError::TooLarge => Self::TooLarge,
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// Splits and decodes `token`. Every failure is a [`TokenError`]; nothing here panics. The
/// caller checks the length first, against its own cap.
pub(crate) fn parse(token: &str) -> Result<UnverifiedToken<'_>, TokenError> {
    let signed = parse_signed(token)?;
    let claims = String::from_utf8(decode_b64(signed.payload)?).map_err(|_| TokenError::Json)?;
    let claims = Arc::new(ClaimSet::parse(claims.into_boxed_str())?);
    Ok(UnverifiedToken {
        alg: signed.alg,
        kid: signed.kid,
        typ: signed.typ,
        claims,
        signing_input: signed.signing_input,
        signature: signed.signature,
    })
}

/// A compact JWS split and its header read, its payload left as it came (a JWT's claims are
/// read by [`parse`]; published signature vectors sign payloads that are not claim sets).
pub(crate) struct SignedParts<'t> {
    pub(crate) alg: ShortText<16>,
    pub(crate) kid: Option<ShortText<64>>,
    pub(crate) typ: Option<ShortText<32>>,
    pub(crate) payload: &'t str,
    pub(crate) signing_input: &'t str,
    pub(crate) signature: &'t str,
}

/// The header and the parts of a compact JWS (see [`parse`]).
pub(crate) fn parse_signed(token: &str) -> Result<SignedParts<'_>, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::NotCompactJws);
    };
    match parts.count() {
        0 => {}
        2 => return Err(TokenError::Encrypted),
        _ => return Err(TokenError::NotCompactJws),
    }
    let signing_input = &token[..header.len() + 1 + payload.len()];

    // Headers are small: decoded on the stack, read without building a map.
    let mut buf = [0u8; HEADER_STACK_BYTES];
    let heap;
    let header = match URL_SAFE_NO_PAD.decode_slice(header, &mut buf) {
        Ok(len) => &buf[..len],
        Err(base64::DecodeSliceError::OutputSliceTooSmall) => {
            heap = decode_b64(header)?;
            &heap[..]
        }
        Err(_) => return Err(TokenError::Base64),
    };
    let header = parse_header(std::str::from_utf8(header).map_err(|_| TokenError::Json)?)?;
    if header.crit {
        return Err(TokenError::Crit);
    }
    let alg = text(header.alg, TokenError::AlgNotString)?.ok_or(TokenError::AlgNotString)?;
    let kid = text(header.kid, TokenError::KidNotString)?;
    let typ = text(header.typ, TokenError::TypNotString)?;
    Ok(SignedParts {
        alg: ShortText::new(&alg),
        kid: kid.as_deref().map(ShortText::new),
        typ: typ.as_deref().map(ShortText::new),
        payload,
        signing_input,
        signature,
    })
}

impl UnverifiedToken<'_> {
    /// Calls `check` with the decoded signature (on the stack up to RSA-4096).
    pub(crate) fn with_signature<T>(
        &self,
        check: impl FnOnce(&[u8]) -> T,
    ) -> Result<T, TokenError> {
        with_signature(self.signature, check)
    }
}

/// Calls `check` with the decoded `signature` part (on the stack up to RSA-4096).
pub(crate) fn with_signature<T>(
    signature: &str,
    check: impl FnOnce(&[u8]) -> T,
) -> Result<T, TokenError> {
    let mut sig: SmallVec<[u8; 512]> = SmallVec::from_elem(0, signature.len() * 3 / 4);
    let len = URL_SAFE_NO_PAD
        .decode_slice(signature, &mut sig)
        .map_err(|_| TokenError::Base64)?;
    Ok(check(&sig[..len]))
}

/// A header member that must be a string when present.
fn text(
    member: Option<HeaderText<'_>>,
    bad: TokenError,
) -> Result<Option<Cow<'_, str>>, TokenError> {
    match member {
        None => Ok(None),
        Some(Ok(text)) => Ok(Some(text)),
        Some(Err(NotText)) => Err(bad),
    }
}

/// A payload part decoded (strict base64url), as [`parse`] decodes it before reading claims.
#[cfg(feature = "fuzzing")]
pub(crate) fn decode_payload(payload: &str) -> Result<Vec<u8>, TokenError> {
    decode_b64(payload)
}

/// Decodes unpadded base64url into a buffer of exactly the decoded size (no spare capacity, so
/// the claims text needs no second allocation to be boxed).
fn decode_b64(part: &str) -> Result<Vec<u8>, TokenError> {
    let mut out = vec![0; part.len() * 3 / 4];
    let len = URL_SAFE_NO_PAD
        .decode_slice(part, &mut out)
        .map_err(|_| TokenError::Base64)?;
    out.truncate(len);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn token(header: &str, claims: &str) -> String {
        format!("{}.{}.{}", b64(header), b64(claims), b64("sig"))
    }

    #[test]
    fn parses_a_plain_token() {
        let t = token(
            r#"{"alg":"HS256","kid":"k1"}"#,
            r#"{"iss":"x","n":[1,{"a":null}]}"#,
        );
        let parsed = parse(&t).unwrap();
        assert_eq!(parsed.alg.as_str(), "HS256");
        assert_eq!(parsed.kid.as_ref().map(ShortText::as_str), Some("k1"));
        assert_eq!(parsed.claims.get("iss").unwrap().as_plain_str(), Some("x"));
        assert_eq!(parsed.with_signature(<[u8]>::to_vec), Ok(b"sig".to_vec()));
        let bad = format!("{}.{}.!!", b64(r#"{"alg":"HS256"}"#), b64("{}"));
        assert_eq!(
            parse(&bad).unwrap().with_signature(|_| ()),
            Err(TokenError::Base64)
        );
        assert_eq!(parsed.signing_input.matches('.').count(), 1);
    }

    #[test]
    fn refuses_duplicates_anywhere() {
        let t = token(r#"{"alg":"HS256"}"#, r#"{"iss":"a","iss":"b"}"#);
        assert_eq!(parse(&t).err(), Some(TokenError::DuplicateMember));
        let t = token(r#"{"alg":"HS256","alg":"none"}"#, "{}");
        assert_eq!(parse(&t).err(), Some(TokenError::DuplicateMember));
        let t = token(r#"{"alg":"HS256"}"#, r#"{"x":{"a":1,"a":2}}"#);
        assert_eq!(parse(&t).err(), Some(TokenError::DuplicateMember));
    }

    #[test]
    fn refuses_deep_nesting_without_recursing_far() {
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(40), "]".repeat(40));
        let t = token(r#"{"alg":"HS256"}"#, &deep);
        assert_eq!(parse(&t).err(), Some(TokenError::TooDeep));
        let ok = format!("{{\"a\":{}1{}}}", "[".repeat(10), "]".repeat(10));
        assert!(parse(&token(r#"{"alg":"HS256"}"#, &ok)).is_ok());
    }

    #[test]
    fn refuses_bad_shapes() {
        assert_eq!(parse("a.b").err(), Some(TokenError::NotCompactJws));
        assert_eq!(parse("a.b.c.d.e").err(), Some(TokenError::Encrypted));
        assert_eq!(parse("a.b.c.d").err(), Some(TokenError::NotCompactJws));
        assert_eq!(parse("!!.b.c").err(), Some(TokenError::Base64));
        let t = token(r#"{"alg":"HS256","typ":1}"#, "{}");
        assert_eq!(parse(&t).err(), Some(TokenError::TypNotString));
        let t = token(r#"{"alg":5}"#, "{}");
        assert_eq!(parse(&t).err(), Some(TokenError::AlgNotString));
        let t = token(r#"{"kid":"x"}"#, "{}");
        assert_eq!(parse(&t).err(), Some(TokenError::AlgNotString));
        let t = token(r#"{"alg":"HS256","kid":7}"#, "{}");
        assert_eq!(parse(&t).err(), Some(TokenError::KidNotString));
        let t = token(r#"{"alg":"HS256","crit":["exp"]}"#, "{}");
        assert_eq!(parse(&t).err(), Some(TokenError::Crit));
        let t = token(r#"{"alg":"HS256"}"#, "[1]");
        assert_eq!(parse(&t).err(), Some(TokenError::NotAnObject));
        let t = token(r#"{"alg":"HS256"}"#, "{} x");
        assert_eq!(parse(&t).err(), Some(TokenError::Json));
    }

    #[test]
    fn padded_base64_is_refused() {
        let t = format!("{}=.{}.{}", b64(r#"{"alg":"HS256"}"#), b64("{}"), b64("s"));
        assert_eq!(parse(&t).err(), Some(TokenError::Base64));
    }
}
