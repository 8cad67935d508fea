//! What a validated request carries: payload, user id, partner id and validator name.
//!
//! The layer puts one [`Identity`] into the request extensions (or an [`Anonymous`] marker on
//! a `public_or_jwt` route without credentials). Every part is behind an `Arc`, so cloning is cheap.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::jws::claim_set::{ClaimSet, RawJson};

/// The decoded claims of the accepted token, a JSON object.
///
/// The claims are kept as the JSON text that was signed, indexed by claim: [`Payload::get_str`]
/// and [`Payload::deserialize`] read that text directly, and the `serde_json` tree behind
/// [`Payload::as_map`], [`Payload::as_json`] and [`Payload::get`] is built on first use only.
#[derive(Clone)]
pub struct Payload(Arc<ClaimSet>);

impl Payload {
    pub(crate) fn new(claims: Arc<ClaimSet>) -> Self {
        Self(claims)
    }

    /// Whether both are the very same claims (one verification), not merely equal ones.
    #[cfg(test)]
    pub(crate) fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The claims as they are, for the checks that read them in place.
    pub(crate) fn claims(&self) -> &ClaimSet {
        &self.0
    }

    /// One claim as JSON text, without building the tree.
    pub(crate) fn raw(&self, claim: &str) -> Option<RawJson<'_>> {
        self.0.get(claim)
    }

    /// The user id claim `claim` holds: a non-negative integer or a non-empty string (a string
    /// without escapes is shared with the claims, not copied).
    pub(crate) fn user_id(&self, claim: &str) -> Option<UserId> {
        let (raw, at) = self.0.get_at(claim)?;
        if let Some(n) = raw.as_u64() {
            return Some(UserId::from(n));
        }
        match raw.as_plain_str() {
            Some("") => None,
            Some(_) => Some(UserId(UserIdRepr::Claim(
                Arc::clone(&self.0),
                at.start + 1..at.end - 1,
            ))),
            None => raw
                .as_str()
                .filter(|s| !s.is_empty())
                .map(|s| UserId::from(&*s)),
        }
    }

    /// The claims as a JSON object.
    pub fn as_map(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        match self.0.tree() {
            Value::Object(map) => map,
            // A claim set is always an object.
            _ => EMPTY.get_or_init(Map::new),
        }
    }

    /// The claims as a JSON value (always an object).
    pub fn as_json(&self) -> &Value {
        self.0.tree()
    }

    /// One claim.
    pub fn get(&self, claim: &str) -> Option<&Value> {
        self.as_map().get(claim)
    }

    /// One string claim, such as `email` or `sub` (read in place: no tree is built unless the
    /// string holds JSON escapes).
    pub fn get_str(&self, claim: &str) -> Option<&str> {
        let raw = self.raw(claim)?;
        match raw.as_plain_str() {
            Some(text) => Some(text),
            None if raw.is_str() => self.get(claim).and_then(Value::as_str),
            None => None,
        }
    }

    /// The claims as they were signed, as JSON text.
    pub fn json_text(&self) -> &str {
        self.0.text()
    }

    /// Deserialises the claims into the application's own type, straight from the token's
    /// JSON text.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.text())
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || self.0.text() == other.0.text()
            || self.as_json() == other.as_json()
    }
}

impl From<Map<String, Value>> for Payload {
    fn from(claims: Map<String, Value>) -> Self {
        Self::new(Arc::new(ClaimSet::from_map(claims)))
    }
}

impl fmt::Debug for Payload {
    /// Prints claim names only: values may be personal data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The user a request acts as: a static id from the validator, or a claim's value as it is in
/// the token (a number or a string), or what a [`UserResolver`](crate::directory::UserResolver) returned.
#[derive(Clone)]
pub struct UserId(UserIdRepr);

#[derive(Clone)]
enum UserIdRepr {
    Number(u64),
    Text(Arc<str>),
    /// A string claim, shared with the claims it was read from rather than copied.
    Claim(Arc<ClaimSet>, Range<usize>),
}

/// What a [`UserId`] is, however it is held.
#[derive(Debug, PartialEq, Eq, Hash)]
enum UserIdView<'a> {
    Number(u64),
    Text(&'a str),
}

impl UserId {
    fn view(&self) -> UserIdView<'_> {
        match &self.0 {
            UserIdRepr::Number(n) => UserIdView::Number(*n),
            UserIdRepr::Text(s) => UserIdView::Text(s),
            UserIdRepr::Claim(claims, at) => {
                UserIdView::Text(claims.text().get(at.clone()).unwrap_or_default())
            }
        }
    }

    /// The id as a number, when it is one.
    pub fn as_u64(&self) -> Option<u64> {
        match self.view() {
            UserIdView::Number(n) => Some(n),
            UserIdView::Text(_) => None,
        }
    }

    /// The id as a string, when it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self.view() {
            UserIdView::Text(s) => Some(s),
            UserIdView::Number(_) => None,
        }
    }

    /// The id as JSON: a number or a string.
    pub fn to_json(&self) -> Value {
        match self.view() {
            UserIdView::Number(n) => Value::from(n),
            UserIdView::Text(s) => Value::from(s),
        }
    }
}

impl PartialEq for UserId {
    fn eq(&self, other: &Self) -> bool {
        self.view() == other.view()
    }
}

impl Eq for UserId {}

impl std::hash::Hash for UserId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.view().hash(state);
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.view() {
            UserIdView::Number(n) => f.debug_tuple("UserId").field(&n).finish(),
            UserIdView::Text(s) => f.debug_tuple("UserId").field(&s).finish(),
        }
    }
}

impl From<u64> for UserId {
    fn from(id: u64) -> Self {
        Self(UserIdRepr::Number(id))
    }
}

impl From<&str> for UserId {
    fn from(id: &str) -> Self {
        Self(UserIdRepr::Text(id.into()))
    }
}

impl From<String> for UserId {
    fn from(id: String) -> Self {
        Self(UserIdRepr::Text(id.into()))
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.view() {
            UserIdView::Number(n) => write!(f, "{n}"),
            UserIdView::Text(s) => f.write_str(s),
        }
    }
}

/// The partner (contact) found for the token's `email` claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartnerId(pub u64);

impl fmt::Display for PartnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Whether `name` can name a validator: `[A-Za-z_][A-Za-z0-9_]*`, as in `jwt_<name>` modes.
pub(crate) fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A user as a [`UserDirectory`](crate::directory::UserDirectory) keeps it: the request's [`UserId`] and
/// what the application shows. (Defined here, with the other identity types, so that the
/// identity does not depend on the directory.)
///
/// `Debug` prints the id and `profile_complete` only: the rest is personal data.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserRecord {
    /// The user's id, the request's [`UserId`].
    pub id: UserId,
    /// The email as registered.
    pub email: Option<String>,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Full name.
    pub full_name: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Whether the user filled in their profile; while not, browsers are sent to the
    /// validator's `profile_url`.
    pub profile_complete: bool,
}

impl UserRecord {
    /// A record with only an id (and a complete profile).
    pub fn new(id: impl Into<UserId>) -> Self {
        Self {
            id: id.into(),
            email: None,
            first_name: None,
            last_name: None,
            full_name: None,
            phone: None,
            profile_complete: true,
        }
    }
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("profile_complete", &self.profile_complete)
            .finish_non_exhaustive()
    }
}

/// The name of the validator that accepted the token (after `next` chaining).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ValidatorName(pub(crate) Arc<str>);

impl ValidatorName {
    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ValidatorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for ValidatorName {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for ValidatorName {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

/// Everything the layer learnt from an accepted token; a request extension.
///
/// Serialises as `{"validator": ..., "uid": ..., "partner_id": ..., "payload": {...}}`.
#[derive(Clone, Debug)]
pub struct Identity {
    pub(crate) payload: Payload,
    pub(crate) user: UserId,
    pub(crate) partner: Option<PartnerId>,
    pub(crate) validator: ValidatorName,
    /// The directory's record of the user, for validators with a directory user.
    pub(crate) record: Option<Arc<UserRecord>>,
    /// The realm of the registry, for the 403 of [`Identity::require`].
    pub(crate) realm: Arc<str>,
}

#[cfg(test)]
impl Identity {
    /// An identity of user `u` through validator `v` with `payload`.
    pub(crate) fn for_tests(payload: Payload) -> Self {
        Self {
            payload,
            user: UserId::from("u"),
            partner: None,
            validator: ValidatorName(Arc::from("v")),
            record: None,
            realm: Arc::from("r"),
        }
    }
}

impl Identity {
    /// The decoded claims.
    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    /// The resolved user.
    pub fn user_id(&self) -> &UserId {
        &self.user
    }

    /// The partner matched by email, if the validator looks one up and exactly one matched.
    pub fn partner_id(&self) -> Option<PartnerId> {
        self.partner
    }

    /// The validator that accepted the token.
    pub fn validator(&self) -> &ValidatorName {
        &self.validator
    }

    /// The user as the [`UserDirectory`](crate::directory::UserDirectory) keeps it, when the validator
    /// finds its users there (names, email, whether the profile is complete).
    pub fn user_record(&self) -> Option<&Arc<UserRecord>> {
        self.record.as_ref()
    }
}

impl serde::Serialize for Identity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut s = serializer.serialize_struct("Identity", 4)?;
        s.serialize_field("validator", self.validator.as_str())?;
        s.serialize_field("uid", &self.user.to_json())?;
        s.serialize_field("partner_id", &self.partner.map(|p| p.0))?;
        s.serialize_field("payload", self.payload.as_json())?;
        s.end()
    }
}

/// A request extension marking an anonymous request on a `public_or_jwt` route (or a CORS
/// preflight). It carries the realm, so that a handler that needs a token can still send a
/// proper `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anonymous {
    pub(crate) realm: Arc<str>,
}

impl Anonymous {
    /// The realm of the route's registry.
    pub fn realm(&self) -> &str {
        &self.realm
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_are_identifiers() {
        for ok in ["validator_1", "_x", "demo", "A9"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "not an identifier", "1abc", "a-b", "é", "a.b"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn user_ids_from_claims() {
        let claims = ClaimSet::parse(
            r#"{"n":42,"s":"abc","e":"a\u0062c","empty":"","neg":-1,"f":1.5,"o":{}}"#.into(),
        )
        .unwrap();
        let payload = Payload::new(Arc::new(claims));
        let id = |claim| payload.user_id(claim);
        assert_eq!(id("n").unwrap().as_u64(), Some(42));
        assert_eq!(id("n"), Some(UserId::from(42)));
        assert_eq!(id("s").unwrap().as_str(), Some("abc"));
        assert_eq!(id("e").unwrap().as_str(), Some("abc"));
        assert_eq!(id("s").unwrap().to_json(), json!("abc"));
        // Shared or copied, the same id: equal, same hash, same text.
        assert_eq!(id("s"), id("e"));
        assert_eq!(id("s"), Some(UserId::from("abc")));
        let hash = |id: &UserId| {
            use std::hash::{BuildHasher as _, RandomState};
            static STATE: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
            STATE.get_or_init(RandomState::new).hash_one(id)
        };
        assert_eq!(hash(&id("s").unwrap()), hash(&UserId::from("abc")));
        assert_eq!(
            format!("{:?} {}", id("s").unwrap(), id("s").unwrap()),
            r#"UserId("abc") abc"#
        );
        assert_eq!(format!("{:?}", UserId::from(7)), "UserId(7)");
        for none in ["empty", "neg", "f", "o", "missing"] {
            assert!(id(none).is_none(), "{none}");
        }
    }

    #[test]
    fn identity_serialises_its_four_parts() {
        let mut claims = Map::new();
        claims.insert("sub".into(), json!("u1"));
        let id = Identity {
            payload: Payload::from(claims),
            user: UserId::from(42),
            partner: Some(PartnerId(17)),
            validator: ValidatorName(Arc::from("demo")),
            record: None,
            realm: Arc::from("r"),
        };
        assert_eq!(
            serde_json::to_value(&id).unwrap(),
            json!({"validator": "demo", "uid": 42, "partner_id": 17, "payload": {"sub": "u1"}})
        );
    }

    #[test]
    fn payload_debug_hides_values() {
        let mut claims = Map::new();
        claims.insert("email".into(), json!("secret@example.com"));
        let text = format!("{:?}", Payload::from(claims));
        assert_eq!(text, "{\"email\"}");
    }
}
