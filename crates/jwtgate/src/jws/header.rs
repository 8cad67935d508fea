//! The JWS protected header (RFC 7515 4), read without a map: `alg`, `kid` and `typ` borrowed
//! from the document, `crit` noticed, every other member checked as strictly as any token JSON
//! (no duplicates, bounded depth) and dropped.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::json::{JsonError, NameSeed, Names, ReadMembers, StrictCheck, read_object};

/// Reads a JWS header: a JSON object, strict as [`parse_object`](super::json::parse_object).
pub(crate) fn parse_header(text: &str) -> Result<HeaderMembers<'_>, JsonError> {
    read_object(text, HeaderReader)
}

/// Reads a JWS header's members.
struct HeaderReader;

/// A string member of a JWS header as it was read: borrowed from the document unless it held
/// escapes, or `NotText` when the member is not a string.
pub(crate) type HeaderText<'de> = Result<Cow<'de, str>, NotText>;

/// A header member that should have been a string and is not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NotText;

/// The members of a JWS header jwtgate reads. Every member is checked as any token JSON is (no
/// duplicates, bounded depth), but no map is built and nothing is copied: the others are
/// dropped as they are read.
#[derive(Default)]
pub(crate) struct HeaderMembers<'de> {
    pub(crate) alg: Option<HeaderText<'de>>,
    pub(crate) kid: Option<HeaderText<'de>>,
    pub(crate) typ: Option<HeaderText<'de>>,
    pub(crate) crit: bool,
}

impl<'de> ReadMembers<'de> for HeaderReader {
    type Out = HeaderMembers<'de>;

    fn read<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Out, A::Error> {
        let mut out = HeaderMembers::default();
        let mut names = Names::default();
        while let Some(name) = map.next_key_seed(NameSeed)? {
            let slot = match &*name {
                "alg" => Some(&mut out.alg),
                "kid" => Some(&mut out.kid),
                "typ" => Some(&mut out.typ),
                _ => None,
            };
            out.crit |= name == "crit";
            names.insert(name)?;
            match slot {
                Some(slot) => *slot = Some(map.next_value_seed(TextSeed { depth: 1 })?),
                None => map.next_value_seed(StrictCheck { depth: 1 })?,
            }
        }
        Ok(out)
    }
}

/// A member that should be a string: its text, or `NotText` (anything else is still checked).
struct TextSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for TextSeed {
    type Value = HeaderText<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TextSeed {
    type Value = HeaderText<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Ok(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Ok(Cow::Owned(v.to_owned())))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(NotText))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(NotText))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(NotText))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(NotText))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Err(NotText))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        StrictCheck { depth: self.depth }.visit_seq(seq)?;
        Ok(Err(NotText))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        StrictCheck { depth: self.depth }.visit_map(map)?;
        Ok(Err(NotText))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read_without_a_map_and_as_strictly() {
        let h = parse_header(r#"{"alg":"RS256","kid":"k","x5t":"t","n":{"a":[1]}}"#).unwrap();
        assert_eq!(h.alg, Some(Ok(Cow::Borrowed("RS256"))));
        assert_eq!(h.kid, Some(Ok(Cow::Borrowed("k"))));
        assert!(h.typ.is_none() && !h.crit);
        let h = parse_header(r#"{"\u0061lg":"R\u0053256","typ":{"a":1},"crit":[]}"#).unwrap();
        assert_eq!(h.alg, Some(Ok(Cow::Owned("RS256".into()))));
        assert_eq!(h.typ, Some(Err(NotText)));
        assert!(h.crit);
        for (doc, err) in [
            (
                r#"{"alg":"HS256","alg":"none"}"#,
                JsonError::DuplicateMember,
            ),
            (r#"{"x":1,"\u0078":2}"#, JsonError::DuplicateMember),
            (r#"{"typ":{"a":1,"a":2}}"#, JsonError::DuplicateMember),
            (r#"[1]"#, JsonError::NotAnObject),
            (r#""alg""#, JsonError::NotAnObject),
            (r#"{"alg":"HS256"} x"#, JsonError::Syntax),
        ] {
            assert_eq!(parse_header(doc).err(), Some(err), "{doc:?}");
        }
        // More members than the names kept inline: duplicates are still found.
        let many: Vec<String> = (0..40).map(|i| format!("\"m{i}\":{i}")).collect();
        let doc = format!("{{{},\"m3\":0}}", many.join(","));
        assert_eq!(parse_header(&doc).err(), Some(JsonError::DuplicateMember));
        let doc = format!("{{{},\"m39\":0}}", many.join(","));
        assert_eq!(parse_header(&doc).err(), Some(JsonError::DuplicateMember));
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(40), "]".repeat(40));
        assert_eq!(parse_header(&deep).err(), Some(JsonError::TooDeep));
    }
}
