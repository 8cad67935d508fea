//! The claims of a token as they were signed: the decoded JSON text, checked as strictly as any
//! token JSON (no duplicate members, bounded depth) and indexed by top-level member, but not
//! turned into a tree. Claims are read from the text in place (a string without escapes is
//! borrowed, a number parsed where it stands); a `serde_json::Value` is built only when the
//! application asks for one, and typed claims deserialise from the text directly.
//!
//! This is what makes a verified request cost a handful of allocations whatever the size of
//! its claims: one for the text, none per claim.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

use serde::de::{self, DeserializeSeed as _, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use smallvec::SmallVec;

use super::json::{
    JsonError, MAX_JSON_DEPTH, NameSeed, Names, ReadMembers, StrictCheck, read_object, refuse,
};

/// Members indexed without a further allocation (a usual claim set has about ten).
const INLINE_MEMBERS: usize = 16;

/// A JWT Claims Set (RFC 7519 section 2): a JSON object with no duplicate members.
pub(crate) struct ClaimSet {
    text: Box<str>,
    members: SmallVec<[Member; INLINE_MEMBERS]>,
    /// Where the registered claims are in `members`, found while indexing: the checks read
    /// them on every request without a search.
    registered: [Option<u32>; Registered::COUNT],
    /// Member names that held escapes, unescaped (almost always empty).
    escaped: Vec<Box<str>>,
    /// The claims as a tree, built on first demand.
    tree: OnceLock<Value>,
}

/// A registered claim (RFC 7519 section 4.1, plus the authorized-party claims) that the
/// checks read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Registered {
    Exp,
    Nbf,
    Iat,
    Iss,
    Aud,
    Sub,
    Jti,
    Azp,
    ClientId,
}

impl Registered {
    const COUNT: usize = 9;

    fn of(name: &str) -> Option<Self> {
        Some(match name {
            "exp" => Self::Exp,
            "nbf" => Self::Nbf,
            "iat" => Self::Iat,
            "iss" => Self::Iss,
            "aud" => Self::Aud,
            "sub" => Self::Sub,
            "jti" => Self::Jti,
            "azp" => Self::Azp,
            "client_id" => Self::ClientId,
            _ => return None,
        })
    }
}

/// One member: where its name and value stand in the text (offsets fit in `u32`: the text is
/// a token's payload, or refused).
struct Member {
    name: Name,
    value: Span,
}

#[derive(Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn new(start: usize, len: usize) -> Option<Self> {
        Some(Self {
            start: u32::try_from(start).ok()?,
            end: u32::try_from(start + len).ok()?,
        })
    }

    fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

enum Name {
    /// The name as it stands in the text.
    Text(Span),
    /// Index into `escaped`.
    Escaped(u32),
}

impl ClaimSet {
    /// Checks and indexes `text`, a token's decoded payload.
    pub(crate) fn parse(text: Box<str>) -> Result<Self, JsonError> {
        Self::index(text, true, OnceLock::new())
    }

    /// Claims the application built itself: indexed, not checked for depth (a map has no
    /// duplicates), its tree kept.
    pub(crate) fn from_map(map: Map<String, Value>) -> Self {
        let tree = Value::Object(map);
        let text = tree.to_string().into_boxed_str();
        let built = OnceLock::from(tree);
        match Self::index(text, false, built) {
            Ok(set) => set,
            // A serialised map is always an object of unique members.
            Err(_) => Self {
                text: "{}".into(),
                members: SmallVec::new(),
                registered: [None; Registered::COUNT],
                escaped: Vec::new(),
                tree: OnceLock::from(Value::Object(Map::new())),
            },
        }
    }

    fn index(text: Box<str>, strict: bool, tree: OnceLock<Value>) -> Result<Self, JsonError> {
        if u32::try_from(text.len()).is_err() {
            return Err(JsonError::TooLarge);
        }
        let Index {
            members,
            registered,
            escaped,
        } = read_object(
            &text,
            TopLevel {
                text: &text,
                strict,
            },
        )?;
        Ok(Self {
            text,
            members,
            registered,
            escaped,
            tree,
        })
    }

    /// The claims as they were signed (JSON text).
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// Claim `name`, as JSON text.
    pub(crate) fn get(&self, name: &str) -> Option<RawJson<'_>> {
        self.get_at(name).map(|(raw, _)| raw)
    }

    /// Registered claim `claim`, as JSON text (no search: found while indexing).
    pub(crate) fn registered(&self, claim: Registered) -> Option<RawJson<'_>> {
        let i = self.registered[claim as usize]?;
        let member = self.members.get(i as usize)?;
        self.text.get(member.value.range()).map(RawJson)
    }

    /// The claim names, in the token's order.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|m| self.name(m))
    }

    /// Where the value of claim `name` stands in [`ClaimSet::text`].
    pub(crate) fn span(&self, name: &str) -> Option<Range<usize>> {
        self.get_at(name).map(|(_, at)| at)
    }

    /// Claim `name` as JSON text, and where it stands in [`ClaimSet::text`].
    pub(crate) fn get_at(&self, name: &str) -> Option<(RawJson<'_>, Range<usize>)> {
        let member = match Registered::of(name) {
            // Registered claims (`sub`, the usual user claim, among them): no search.
            Some(claim) => self
                .members
                .get(self.registered[claim as usize]? as usize)?,
            None => self.members.iter().find(|m| self.name(m) == name)?,
        };
        let at = member.value.range();
        Some((RawJson(self.text.get(at.clone())?), at))
    }

    /// The claims as a tree (built once, on first use).
    pub(crate) fn tree(&self) -> &Value {
        self.tree.get_or_init(|| {
            // The text was checked when the set was made: this cannot fail.
            serde_json::from_str(&self.text).unwrap_or_else(|_| Value::Object(Map::new()))
        })
    }

    fn name<'a>(&'a self, member: &Member) -> &'a str {
        match &member.name {
            Name::Text(span) => self.text.get(span.range()).unwrap_or_default(),
            Name::Escaped(i) => self.escaped.get(*i as usize).map_or("", |n| n),
        }
    }
}

impl fmt::Debug for ClaimSet {
    /// Claim names only: values may be personal data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

/// Where `part` (borrowed from `whole`) starts in `whole`.
fn offset(whole: &str, part: &str) -> usize {
    part.as_ptr().addr() - whole.as_ptr().addr()
}

/// Indexes the top-level object: each member's name and where its value stands.
struct TopLevel<'t> {
    text: &'t str,
    strict: bool,
}

/// What indexing finds: the members, where the registered claims are among them, and the
/// names that held escapes.
#[derive(Default)]
struct Index {
    members: SmallVec<[Member; INLINE_MEMBERS]>,
    registered: [Option<u32>; Registered::COUNT],
    escaped: Vec<Box<str>>,
}

impl<'de> ReadMembers<'de> for TopLevel<'de> {
    type Out = Index;

    fn read<A: MapAccess<'de>>(self, mut map: A) -> Result<Index, A::Error> {
        let Index {
            mut members,
            mut registered,
            mut escaped,
        } = Index::default();
        let mut names = Names::default();
        while let Some(name) = map.next_key_seed(NameSeed)? {
            let too_large = || refuse(JsonError::TooLarge);
            if let Some(claim) = Registered::of(&name) {
                registered[claim as usize] =
                    Some(u32::try_from(members.len()).map_err(|_| too_large())?);
            }
            let at = match &name {
                Cow::Borrowed(text) => Name::Text(
                    Span::new(offset(self.text, text), text.len()).ok_or_else(too_large)?,
                ),
                Cow::Owned(text) => {
                    escaped.push(text.as_str().into());
                    Name::Escaped(u32::try_from(escaped.len() - 1).map_err(|_| too_large())?)
                }
            };
            names.insert(name)?;
            let value: &'de RawValue = map.next_value()?;
            let value = value.get();
            if self.strict && needs_full_read(value) {
                let mut de = serde_json::Deserializer::from_str(value);
                // The inner refusal's reason stays recorded; this only carries it out.
                StrictCheck { depth: 1 }
                    .deserialize(&mut de)
                    .map_err(de::Error::custom)?;
            }
            members.push(Member {
                name: at,
                value: Span::new(offset(self.text, value), value.len()).ok_or_else(too_large)?,
            });
        }
        Ok(Index {
            members,
            registered,
            escaped,
        })
    }
}

/// Whether a value serde_json's raw scan accepted needs the strict read too. The scan checks
/// the grammar (control characters, escapes, numbers, brackets); what it lets through is what
/// the strict read checks beyond it: members of objects (duplicates), the code points of
/// escapes (a lone surrogate) and depth. A value with no `{`, no `\\` and too few `[` to
/// nest past the bound (strings, numbers, literals, arrays of them: group lists) needs no
/// more. Found with memchr: a 2 KiB group list is scanned in a few dozen instructions.
fn needs_full_read(value: &str) -> bool {
    let bytes = value.as_bytes();
    memchr::memchr2(b'{', b'\\', bytes).is_some()
        || memchr::memchr_iter(b'[', bytes)
            .nth(MAX_JSON_DEPTH - 1)
            .is_some()
        || may_leave_f64(bytes)
}

/// Whether a number in `bytes` may lie beyond an f64 (`1e400`, 400 digits): the raw scan
/// accepts it, a tree of the claims cannot hold it, so the strict read must refuse it (else
/// the token would pass with claims no handler can read). An exponent follows a digit; a
/// string like `"v1e2"` only costs a strict read.
fn may_leave_f64(bytes: &[u8]) -> bool {
    memchr::memchr2_iter(b'e', b'E', bytes).any(|i| i > 0 && bytes[i - 1].is_ascii_digit())
        || (bytes.len() > MAX_F64_DIGITS
            && bytes
                .split(|b| !b.is_ascii_digit())
                .any(|digits| digits.len() > MAX_F64_DIGITS))
}

/// More digits than this may not fit an f64 (its largest finite value has 309).
const MAX_F64_DIGITS: usize = 300;

/// One claim's value as JSON text, read without building a tree.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawJson<'a>(&'a str);

impl<'a> RawJson<'a> {
    /// The value's JSON text, as it was signed.
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) fn json_text(self) -> &'a str {
        self.0
    }

    /// Whether the value is `null`.
    pub(crate) fn is_null(self) -> bool {
        self.0 == "null"
    }

    /// A string, borrowed when it holds no escapes.
    pub(crate) fn as_str(self) -> Option<Cow<'a, str>> {
        match self.as_plain_str() {
            Some(plain) => Some(Cow::Borrowed(plain)),
            None if self.0.starts_with('"') => serde_json::from_str(self.0).ok().map(Cow::Owned),
            None => None,
        }
    }

    /// A string without escapes, borrowed; `None` for anything else.
    pub(crate) fn as_plain_str(self) -> Option<&'a str> {
        let inner = self.0.strip_prefix('"')?.strip_suffix('"')?;
        (!inner.contains('\\')).then_some(inner)
    }

    /// Whether the value is a string.
    pub(crate) fn is_str(self) -> bool {
        self.0.starts_with('"')
    }

    /// A number, as `serde_json::Value::as_f64` reads it.
    pub(crate) fn as_f64(self) -> Option<f64> {
        // NumericDates are plain integers: read those without a JSON reader (up to 15 digits,
        // which an f64 holds exactly).
        if self.0.len() <= 15 && self.0.bytes().all(|b| b.is_ascii_digit()) {
            return self.0.parse::<u64>().ok().map(|n| n as f64);
        }
        self.is_number()
            .then(|| serde_json::from_str(self.0).ok())
            .flatten()
    }

    /// A non-negative integer.
    pub(crate) fn as_u64(self) -> Option<u64> {
        self.is_number()
            .then(|| serde_json::from_str(self.0).ok())
            .flatten()
    }

    /// A boolean.
    pub(crate) fn as_bool(self) -> Option<bool> {
        match self.0 {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }

    fn is_number(self) -> bool {
        self.0.starts_with(|c: char| c == '-' || c.is_ascii_digit())
    }

    /// Calls `each` with every member of an array of strings, stopping when it returns `true`;
    /// `None` when the value is not an array of strings (checked to the end), else whether
    /// `each` stopped.
    pub(crate) fn find_str(self, each: impl FnMut(&str) -> bool) -> Option<bool> {
        if !self.0.starts_with('[') {
            return None;
        }
        let mut de = serde_json::Deserializer::from_str(self.0);
        de::Deserializer::deserialize_seq(&mut de, FindStr { each }).ok()
    }
}

/// Walks an array of strings (see [`RawJson::find_str`]).
struct FindStr<F> {
    each: F,
}

impl<'de, F: FnMut(&str) -> bool> Visitor<'de> for FindStr<F> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of strings")
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(item) = seq.next_element_seed(NameSeed)? {
            found = found || (self.each)(&item);
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn set(text: &str) -> Result<ClaimSet, JsonError> {
        ClaimSet::parse(text.into())
    }

    #[test]
    fn claims_are_read_in_place() {
        let s = set(
            r#"{ "iss" : "a\"b", "n": 12, "f": 1.5e3, "sub":"u", "aud":["x","y"],
            "ok": true, "nothing": null, "o": {"k": [1, 2]}, "\u0065mail": "e@x"}"#,
        )
        .unwrap();
        assert_eq!(s.get("iss").unwrap().as_str().unwrap(), "a\"b");
        assert_eq!(s.get("iss").unwrap().as_plain_str(), None);
        assert_eq!(s.get("sub").unwrap().as_plain_str(), Some("u"));
        assert_eq!(s.get("n").unwrap().as_u64(), Some(12));
        assert_eq!(s.get("n").unwrap().as_f64(), Some(12.0));
        assert_eq!(s.get("f").unwrap().as_f64(), Some(1500.0));
        let big = set(r#"{"a":123456789012345,"b":1234567890123456789,"c":-5,"d":""}"#).unwrap();
        assert_eq!(big.get("a").unwrap().as_f64(), Some(123_456_789_012_345.0));
        assert_eq!(
            big.get("b").unwrap().as_f64(),
            Some(1.234_567_890_123_456_8e18)
        );
        assert_eq!(big.get("c").unwrap().as_f64(), Some(-5.0));
        assert_eq!(big.get("d").unwrap().as_f64(), None);
        assert_eq!(s.get("f").unwrap().as_u64(), None);
        assert_eq!(s.get("sub").unwrap().as_f64(), None);
        assert_eq!(s.get("ok").unwrap().as_bool(), Some(true));
        assert!(s.get("nothing").unwrap().is_null());
        assert!(s.get("missing").is_none());
        assert_eq!(s.get("email").unwrap().as_plain_str(), Some("e@x"));
        let mut seen = Vec::new();
        let found = s.get("aud").unwrap().find_str(|a| {
            seen.push(a.to_owned());
            a == "x"
        });
        assert_eq!(found, Some(true));
        assert_eq!(seen, ["x"], "stops at the first match");
        assert_eq!(s.get("aud").unwrap().find_str(|_| false), Some(false));
        assert_eq!(s.get("o").unwrap().find_str(|_| true), None);
        for bad in [r#"{"a":[1,"x"]}"#, r#"{"a":["x",1]}"#, r#"{"a":"x"}"#] {
            let bad = set(bad).unwrap();
            assert_eq!(
                bad.get("a").unwrap().find_str(|_| true),
                None,
                "checked to the end"
            );
        }
        assert_eq!(
            s.names().collect::<Vec<_>>(),
            ["iss", "n", "f", "sub", "aud", "ok", "nothing", "o", "email"]
        );
        assert_eq!(s.text().get(s.span("n").unwrap()), Some("12"));
        assert_eq!(
            s.registered(Registered::Iss).unwrap().as_str().unwrap(),
            "a\"b"
        );
        assert_eq!(
            s.registered(Registered::Sub).unwrap().as_plain_str(),
            Some("u")
        );
        assert!(s.registered(Registered::Exp).is_none());
        let escaped = set(r#"{"\u0065xp": 5, "client_id": "c"}"#).unwrap();
        assert_eq!(
            escaped.registered(Registered::Exp).unwrap().as_u64(),
            Some(5)
        );
        assert_eq!(
            escaped
                .registered(Registered::ClientId)
                .unwrap()
                .as_plain_str(),
            Some("c")
        );
        assert_eq!(s.tree()["o"]["k"][1], json!(2));
        assert_eq!(s.tree()["email"], json!("e@x"));
    }

    #[test]
    fn checked_as_strictly_as_a_tree() {
        for (doc, err) in [
            (r#"{"a":1,"a":2}"#, JsonError::DuplicateMember),
            (r#"{"a":1,"\u0061":2}"#, JsonError::DuplicateMember),
            (r#"{"x":{"a":1,"a":2}}"#, JsonError::DuplicateMember),
            (r#"{"x":[{"a":1,"a":2}]}"#, JsonError::DuplicateMember),
            ("[1]", JsonError::NotAnObject),
            ("\"x\"", JsonError::NotAnObject),
            ("{} x", JsonError::Syntax),
            (r#"{"a":"\u0000bad\x"}"#, JsonError::Syntax),
            (r#"{"a":"\ud800"}"#, JsonError::Syntax),
            (r#"{"a":["\udc00"]}"#, JsonError::Syntax),
            (r#"{"a":1.}"#, JsonError::Syntax),
            (r#"{"a":tru}"#, JsonError::Syntax),
            ("{\"a\":\"tab\there\"}", JsonError::Syntax),
        ] {
            assert_eq!(set(doc).err(), Some(err), "{doc}");
        }
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(40), "]".repeat(40));
        assert_eq!(set(&deep).err(), Some(JsonError::TooDeep));
        let ok = format!("{{\"a\":{}1{}}}", "[".repeat(15), "]".repeat(15));
        assert!(set(&ok).is_ok());
        let over = format!("{{\"a\":{}1{}}}", "[".repeat(16), "]".repeat(16));
        assert_eq!(set(&over).err(), Some(JsonError::TooDeep));
        // Brackets inside strings never count as depth; past the quick path's bracket count,
        // the strict read decides.
        let groups: Vec<String> = (0..40).map(|i| format!("\"g[{i}]\"")).collect();
        let doc = format!("{{\"groups\":[{}]}}", groups.join(","));
        assert_eq!(set(&doc).unwrap().names().count(), 1);
        assert!(needs_full_read(&doc) && !needs_full_read(r#"["a","b"]"#));
        assert!(needs_full_read(r#""\u0061""#) && !needs_full_read("12.5"));
        // Numbers beyond an f64, alone or in arrays: the token is refused, never accepted with
        // claims a tree cannot hold.
        let digits = "9".repeat(400);
        for doc in [
            r#"{"a":1e400}"#.to_owned(),
            r#"{"a":-1e999}"#.to_owned(),
            r#"{"a":1.5E+309}"#.to_owned(),
            r#"{"a":["x",1e400]}"#.to_owned(),
            format!(r#"{{"a":{digits}}}"#),
            format!(r#"{{"a":[-{digits}]}}"#),
        ] {
            assert_eq!(set(&doc).err(), Some(JsonError::Syntax), "{doc}");
        }
        // serde_json's RawValue marker as a member name, at any depth: a tree would read the
        // member's string as JSON text in place of the object.
        for doc in [
            r#"{"$serde_json::private::RawValue":"\u0030"}"#,
            r#"{"iss":"i","realm_access":{"$serde_json::private::RawValue":"{\"roles\":[\"admin\"]}"}}"#,
            r#"{"a":[{"$serde_json::private::RawValue":"1"}]}"#,
            r#"{"\u0024serde_json::private::RawValue":"1"}"#,
        ] {
            assert_eq!(set(doc).err(), Some(JsonError::Syntax), "{doc}");
        }
        for doc in [
            r#"{"a":1e300,"b":-2.5E-300,"c":[1e10]}"#.to_owned(),
            r#"{"v":"x1e5","t":true,"f":false}"#.to_owned(),
            format!(r#"{{"s":"{digits}"}}"#),
        ] {
            let s = set(&doc).unwrap();
            assert!(s.tree().as_object().is_some_and(|m| !m.is_empty()), "{doc}");
        }
        assert!(!needs_full_read(r#"["engineering","true"]"#) && !needs_full_read("true"));
        // Past the names kept inline, duplicates are still found, nested ones too.
        let many: Vec<String> = (0..40).map(|i| format!("\"m{i}\":{i}")).collect();
        for dup in ["m3", "m39"] {
            let doc = format!("{{{},\"{dup}\":0}}", many.join(","));
            assert_eq!(set(&doc).err(), Some(JsonError::DuplicateMember));
            let doc = format!("{{\"o\":{{{},\"{dup}\":0}}}}", many.join(","));
            assert_eq!(set(&doc).err(), Some(JsonError::DuplicateMember));
        }
        assert_eq!(
            set(&format!("{{{}}}", many.join(",")))
                .unwrap()
                .names()
                .count(),
            40
        );
    }

    #[test]
    fn built_from_a_map() {
        let map = json!({"sub": "u", "deep": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]})
            .as_object()
            .unwrap()
            .clone();
        let s = ClaimSet::from_map(map);
        assert_eq!(s.get("sub").unwrap().as_plain_str(), Some("u"));
        assert!(
            s.get("deep").is_some(),
            "an application's map is not held to the depth bound"
        );
        assert_eq!(format!("{s:?}"), r#"{"deep", "sub"}"#);
    }
}
