//! A strict JSON reader for untrusted documents (token headers and claims, JWK sets): no
//! duplicate members (serde_json keeps the last one, so two readers could disagree on what was
//! signed), and a bounded depth, so a hostile document cannot recurse deeply.

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
