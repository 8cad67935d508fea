//! A strict JSON reader for untrusted documents (token headers and claims, JWK sets): no
//! duplicate members (serde_json keeps the last one, so two readers could disagree on what was
//! signed), and a bounded depth, so a hostile document cannot recurse deeply.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::token::TokenError;

/// Objects and arrays nested deeper than this are refused.
pub(crate) const MAX_JSON_DEPTH: usize = 16;

/// Parses a JSON object with no duplicate members and at most [`MAX_JSON_DEPTH`] levels.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, TokenError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue { depth: 0 }
        .deserialize(&mut de)
        .map_err(|e| classify(&e))?;
    de.end().map_err(|_| TokenError::Json)?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(TokenError::NotAnObject),
    }
}

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

/// Reads a JWS header: a JSON object, strict as [`parse_object`].
pub(crate) fn parse_header(text: &str) -> Result<HeaderMembers<'_>, TokenError> {
    read_object(text, HeaderReader)
}

/// What reads the members of an object for [`read_object`].
pub(crate) trait ReadMembers<'de> {
    type Out;
    fn read<A: MapAccess<'de>>(self, map: A) -> Result<Self::Out, A::Error>;
}

/// Reads `text`, which must be one JSON object, with `reader`: strict as [`parse_object`]
/// (the reader checks its members' values; anything that is not an object is `NotAnObject`,
/// after an array was checked as strictly).
pub(crate) fn read_object<'de, R: ReadMembers<'de>>(
    text: &'de str,
    reader: R,
) -> Result<R::Out, TokenError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let out =
        de::Deserializer::deserialize_any(&mut de, ObjectOnly(reader)).map_err(|e| classify(&e))?;
    de.end().map_err(|_| TokenError::Json)?;
    out.ok_or(TokenError::NotAnObject)
}

/// The visitor behind [`read_object`]: `None` for anything but an object.
struct ObjectOnly<R>(R);

impl<'de, R: ReadMembers<'de>> Visitor<'de> for ObjectOnly<R> {
    type Value = Option<R::Out>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element_seed(StrictCheck { depth: 1 })?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.read(map).map(Some)
    }
}

/// Member names kept on the stack before a set is built: the usual handful of members.
const INLINE_NAMES: usize = 16;

/// The member names of one object, to refuse duplicates: on the stack for the usual handful,
/// in a hash set beyond (so a hostile document with thousands of members costs linear time).
#[derive(Default)]
pub(crate) struct Names<'de> {
    inline: smallvec::SmallVec<[Cow<'de, str>; INLINE_NAMES]>,
    more: HashSet<Cow<'de, str>>,
}

impl<'de> Names<'de> {
    /// Adds `name`; an error when the object already has it.
    pub(crate) fn insert<E: de::Error>(&mut self, name: Cow<'de, str>) -> Result<(), E> {
        let seen = self.inline.contains(&name) || self.more.contains(&name);
        if seen {
            return Err(E::custom(DUPLICATE));
        }
        if self.inline.len() < INLINE_NAMES {
            self.inline.push(name);
        } else {
            self.more.insert(name);
        }
        Ok(())
    }
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

/// Reads a JWS header's members.
struct HeaderReader;

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

/// A member name, borrowed from the document unless it holds escapes.
pub(crate) struct NameSeed;

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for NameSeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// Checks a value as [`StrictValue`] does (no duplicate members, bounded depth) without
/// building it: names are borrowed from the document, nothing else is kept.
pub(crate) struct StrictCheck {
    pub(crate) depth: usize,
}

impl<'de> DeserializeSeed<'de> for StrictCheck {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl StrictCheck {
    fn nested<E: de::Error>(&self) -> Result<Self, E> {
        if self.depth >= MAX_JSON_DEPTH {
            return Err(E::custom(TOO_DEEP));
        }
        Ok(Self {
            depth: self.depth + 1,
        })
    }
}

impl<'de> Visitor<'de> for StrictCheck {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let child = self.nested()?;
        while seq
            .next_element_seed(Self { depth: child.depth })?
            .is_some()
        {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let child = self.nested()?;
        let mut names = Names::default();
        while let Some(name) = map.next_key_seed(NameSeed)? {
            names.insert(name)?;
            map.next_value_seed(Self { depth: child.depth })?;
        }
        Ok(())
    }
}

const DUPLICATE: &str = "jwtgate:duplicate";
const TOO_DEEP: &str = "jwtgate:too-deep";

pub(crate) fn classify(e: &serde_json::Error) -> TokenError {
    let text = e.to_string();
    if text.starts_with(DUPLICATE) {
        TokenError::DuplicateMember
    } else if text.starts_with(TOO_DEEP) {
        TokenError::TooDeep
    } else {
        TokenError::Json
    }
}

/// A `serde_json::Value` deserializer that refuses duplicate members and deep nesting.
struct StrictValue {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl StrictValue {
    fn nested<E: de::Error>(&self) -> Result<Self, E> {
        if self.depth >= MAX_JSON_DEPTH {
            return Err(E::custom(TOO_DEEP));
        }
        Ok(Self {
            depth: self.depth + 1,
        })
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let child = self.nested()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Self { depth: child.depth })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let child = self.nested()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(DUPLICATE));
            }
            let value = map.next_value_seed(Self { depth: child.depth })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
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
                TokenError::DuplicateMember,
            ),
            (r#"{"x":1,"\u0078":2}"#, TokenError::DuplicateMember),
            (r#"{"typ":{"a":1,"a":2}}"#, TokenError::DuplicateMember),
            (r#"[1]"#, TokenError::NotAnObject),
            (r#""alg""#, TokenError::NotAnObject),
            (r#"{"alg":"HS256"} x"#, TokenError::Json),
        ] {
            assert_eq!(parse_header(doc).err(), Some(err), "{doc:?}");
        }
        // More members than the names kept inline: duplicates are still found.
        let many: Vec<String> = (0..40).map(|i| format!("\"m{i}\":{i}")).collect();
        let doc = format!("{{{},\"m3\":0}}", many.join(","));
        assert_eq!(parse_header(&doc).err(), Some(TokenError::DuplicateMember));
        let doc = format!("{{{},\"m39\":0}}", many.join(","));
        assert_eq!(parse_header(&doc).err(), Some(TokenError::DuplicateMember));
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(40), "]".repeat(40));
        assert_eq!(parse_header(&deep).err(), Some(TokenError::TooDeep));
    }

    #[test]
    fn duplicates_and_depth() {
        assert_eq!(
            parse_object(br#"{"a":1,"a":2}"#).err(),
            Some(TokenError::DuplicateMember)
        );
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(40), "]".repeat(40));
        assert_eq!(
            parse_object(deep.as_bytes()).err(),
            Some(TokenError::TooDeep)
        );
        assert_eq!(parse_object(b"[1]").err(), Some(TokenError::NotAnObject));
        assert_eq!(parse_object(b"{} x").err(), Some(TokenError::Json));
        assert!(parse_object(br#"{"a":{"b":[1,2,null]}}"#).is_ok());
    }
}
