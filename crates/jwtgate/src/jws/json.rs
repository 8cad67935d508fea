//! A strict JSON reader for untrusted documents (token headers and claims, JWK sets): no
//! duplicate members (serde_json keeps the last one, so two readers could disagree on what was
//! signed), and a bounded depth, so a hostile document cannot recurse deeply.

use std::borrow::Cow;
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

/// The members of a JWS header jwtgate reads. Every member is checked as any token JSON is (no
/// duplicates, bounded depth), but no map is built: the others are dropped as they are read.
#[derive(Default)]
pub(crate) struct HeaderMembers {
    pub(crate) alg: Option<Value>,
    pub(crate) kid: Option<Value>,
    pub(crate) typ: Option<Value>,
    pub(crate) crit: bool,
}

/// Reads a JWS header: a JSON object, strict as [`parse_object`].
pub(crate) fn parse_header(bytes: &[u8]) -> Result<HeaderMembers, TokenError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let members =
        de::Deserializer::deserialize_any(&mut de, HeaderVisitor).map_err(|e| classify(&e))?;
    de.end().map_err(|_| TokenError::Json)?;
    members.ok_or(TokenError::NotAnObject)
}

/// Header member names seen so far, kept on the stack for the usual handful of members.
const INLINE_NAMES: usize = 16;

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    /// `None` when the header is not an object.
    type Value = Option<HeaderMembers>;

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
        while seq.next_element_seed(StrictValue { depth: 1 })?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = HeaderMembers::default();
        let mut inline: [Option<Cow<'de, str>>; INLINE_NAMES] = Default::default();
        let mut more: Vec<Cow<'de, str>> = Vec::new();
        let mut count = 0;
        while let Some(name) = map.next_key_seed(NameSeed)? {
            if inline
                .iter()
                .flatten()
                .chain(&more)
                .any(|seen| *seen == name)
            {
                return Err(de::Error::custom(DUPLICATE));
            }
            let value = map.next_value_seed(StrictValue { depth: 1 })?;
            match &*name {
                "alg" => out.alg = Some(value),
                "kid" => out.kid = Some(value),
                "typ" => out.typ = Some(value),
                "crit" => out.crit = true,
                _ => {}
            }
            match inline.get_mut(count) {
                Some(slot) => *slot = Some(name),
                None => more.push(name),
            }
            count += 1;
        }
        Ok(Some(out))
    }
}

/// A member name, borrowed from the document unless it holds escapes.
struct NameSeed;

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for NameSeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
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

const DUPLICATE: &str = "jwtgate:duplicate";
const TOO_DEEP: &str = "jwtgate:too-deep";

fn classify(e: &serde_json::Error) -> TokenError {
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
        let h = parse_header(br#"{"alg":"RS256","kid":"k","x5t":"t","n":{"a":[1]}}"#).unwrap();
        assert_eq!(h.alg, Some(Value::from("RS256")));
        assert_eq!(h.kid, Some(Value::from("k")));
        assert!(h.typ.is_none() && !h.crit);
        for (doc, err) in [
            (
                &br#"{"alg":"HS256","alg":"none"}"#[..],
                TokenError::DuplicateMember,
            ),
            (br#"{"x":1,"\u0078":2}"#, TokenError::DuplicateMember),
            (br#"[1]"#, TokenError::NotAnObject),
            (br#""alg""#, TokenError::NotAnObject),
            (br#"{"alg":"HS256"} x"#, TokenError::Json),
        ] {
            assert_eq!(parse_header(doc).err(), Some(err), "{doc:?}");
        }
        // More members than the names kept inline: duplicates are still found.
        let many: Vec<String> = (0..40).map(|i| format!("\"m{i}\":{i}")).collect();
        let doc = format!("{{{},\"m3\":0}}", many.join(","));
        assert_eq!(
            parse_header(doc.as_bytes()).err(),
            Some(TokenError::DuplicateMember)
        );
        let doc = format!("{{{},\"m39\":0}}", many.join(","));
        assert_eq!(
            parse_header(doc.as_bytes()).err(),
            Some(TokenError::DuplicateMember)
        );
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(40), "]".repeat(40));
        assert_eq!(
            parse_header(deep.as_bytes()).err(),
            Some(TokenError::TooDeep)
        );
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
