//! A strict JSON reader for untrusted documents (token headers and claims, JWK sets): no
//! duplicate members (serde_json keeps the last one, so two readers could disagree on what was
//! signed), and a bounded depth, so a hostile document cannot recurse deeply.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a document was refused. A leaf type: the readers above (the JWS header and claim set,
/// JWK sets) convert it into their own errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// Not JSON, or JSON with something after the value, or a lone surrogate.
    Syntax,
    /// An object has the same member twice (also when one is written with escapes).
    DuplicateMember,
    /// Objects and arrays nested deeper than [`MAX_JSON_DEPTH`].
    TooDeep,
    /// A valid document that is not an object.
    NotAnObject,
    /// A document too large to index (over 4 GiB).
    TooLarge,
}

impl JsonError {
    pub(crate) const fn description(self) -> &'static str {
        match self {
            Self::Syntax => "not valid JSON",
            Self::DuplicateMember => "a member is duplicated",
            Self::TooDeep => "nested too deeply",
            Self::NotAnObject => "not a JSON object",
            Self::TooLarge => "too large",
        }
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

// The reason channel. serde's visitors can only fail with the deserializer's own error
// (`serde_json::Error`, built from a message), so the typed reason travels beside it: `refuse`
// records it where the document is refused, `outcome` takes it where the parse returns.
// Parsing is synchronous, so nothing else runs on the thread in between; a serde error raised
// without `refuse` (bad syntax) leaves no reason and is `Syntax`. Nothing reads message text.
thread_local! {
    static REASON: Cell<Option<JsonError>> = const { Cell::new(None) };
}

/// The error a visitor returns to refuse a document for `why`.
pub(crate) fn refuse<E: de::Error>(why: JsonError) -> E {
    REASON.with(|r| r.set(Some(why)));
    E::custom(why.description())
}

/// Runs one top-level parse, turning its serde error into the reason it was refused for.
fn outcome<T>(parse: impl FnOnce() -> Result<T, serde_json::Error>) -> Result<T, JsonError> {
    REASON.with(|r| r.set(None));
    parse().map_err(|_| REASON.with(Cell::take).unwrap_or(JsonError::Syntax))
}

/// Objects and arrays nested deeper than this are refused.
pub(crate) const MAX_JSON_DEPTH: usize = 16;

/// Parses a JSON object with no duplicate members and at most [`MAX_JSON_DEPTH`] levels.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, JsonError> {
    let value = outcome(|| {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let value = StrictValue { depth: 0 }.deserialize(&mut de)?;
        de.end()?;
        Ok(value)
    })?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(JsonError::NotAnObject),
    }
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
) -> Result<R::Out, JsonError> {
    let out = outcome(|| {
        let mut de = serde_json::Deserializer::from_str(text);
        let out = de::Deserializer::deserialize_any(&mut de, ObjectOnly(reader))?;
        de.end()?;
        Ok(out)
    })?;
    out.ok_or(JsonError::NotAnObject)
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

/// serde_json's private marker for `RawValue` (`serde_json::raw::TOKEN`, stable since 1.0.29).
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// The member names of one object, to refuse duplicates: on the stack for the usual handful,
/// in a hash set beyond (so a hostile document with thousands of members costs linear time).
#[derive(Default)]
pub(crate) struct Names<'de> {
    inline: smallvec::SmallVec<[Cow<'de, str>; INLINE_NAMES]>,
    more: HashSet<Cow<'de, str>>,
}

impl<'de> Names<'de> {
    /// Adds `name`; an error when the object already has it, or when it is the name
    /// serde_json reserves for `RawValue`: an object whose first member has it is read by
    /// `serde_json::Value` as the JSON text of its value, so the claims a handler's tree shows
    /// would differ from what was checked (found by the `claim_set` fuzz target).
    pub(crate) fn insert<E: de::Error>(&mut self, name: Cow<'de, str>) -> Result<(), E> {
        if name == RAW_VALUE_TOKEN {
            return Err(refuse(JsonError::Syntax));
        }
        let seen = self.inline.contains(&name) || self.more.contains(&name);
        if seen {
            return Err(refuse(JsonError::DuplicateMember));
        }
        if self.inline.len() < INLINE_NAMES {
            self.inline.push(name);
        } else {
            self.more.insert(name);
        }
        Ok(())
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
            return Err(refuse(JsonError::TooDeep));
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
            return Err(refuse(JsonError::TooDeep));
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
                return Err(refuse(JsonError::DuplicateMember));
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
            Some(JsonError::DuplicateMember)
        );
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(40), "]".repeat(40));
        assert_eq!(
            parse_object(deep.as_bytes()).err(),
            Some(JsonError::TooDeep)
        );
        assert_eq!(parse_object(b"[1]").err(), Some(JsonError::NotAnObject));
        assert_eq!(parse_object(b"{} x").err(), Some(JsonError::Syntax));
        assert!(parse_object(br#"{"a":{"b":[1,2,null]}}"#).is_ok());
        // The reason of one refusal never leaks into the next parse.
        assert_eq!(parse_object(b"{\"a\":").err(), Some(JsonError::Syntax));
    }
}
