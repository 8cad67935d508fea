//! What a validated request carries: payload, user id, partner id and validator name.
//!
//! The layer puts one [`Identity`] into the request extensions (or an [`Anonymous`] marker on
//! a `public_or_jwt` route without credentials). Every part is behind an `Arc`, so cloning is cheap.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The decoded claims of the accepted token, a JSON object.
#[derive(Clone, PartialEq)]
pub struct Payload(Arc<Value>);

impl Payload {
    pub(crate) fn new(claims: Map<String, Value>) -> Self {
        Self(Arc::new(Value::Object(claims)))
    }

    /// Whether both are the very same claims (one verification), not merely equal ones.
    #[cfg(test)]
    pub(crate) fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The claims as a JSON object.
    pub fn as_map(&self) -> &Map<String, Value> {
        match &*self.0 {
            Value::Object(map) => map,
            _ => unreachable!("a payload is always an object"),
        }
    }

    /// The claims as a JSON value (always an object).
    pub fn as_json(&self) -> &Value {
        &self.0
    }

    /// One claim.
    pub fn get(&self, claim: &str) -> Option<&Value> {
        self.as_map().get(claim)
    }

    /// One string claim, such as `email` or `sub`.
    pub fn get_str(&self, claim: &str) -> Option<&str> {
        self.get(claim).and_then(Value::as_str)
    }

    /// Deserialises the claims into the application's own type.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&*self.0)
    }
}

impl From<Map<String, Value>> for Payload {
    fn from(claims: Map<String, Value>) -> Self {
        Self::new(claims)
    }
}

impl fmt::Debug for Payload {
    /// Prints claim names only: values may be personal data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.as_map().keys()).finish()
    }
}

/// The user a request acts as: a static id from the validator, or a claim's value as it is in
/// the token (a number or a string), or what a [`UserResolver`](crate::UserResolver) returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserId(UserIdRepr);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum UserIdRepr {
    Number(u64),
    Text(Arc<str>),
}

impl UserId {
    /// The id as a number, when it is one.
    pub fn as_u64(&self) -> Option<u64> {
        match &self.0 {
            UserIdRepr::Number(n) => Some(*n),
            UserIdRepr::Text(_) => None,
        }
    }

    /// The id as a string, when it is one.
    pub fn as_str(&self) -> Option<&str> {
        match &self.0 {
            UserIdRepr::Text(s) => Some(s),
            UserIdRepr::Number(_) => None,
        }
    }

    /// The id as JSON: a number or a string.
    pub fn to_json(&self) -> Value {
        match &self.0 {
            UserIdRepr::Number(n) => Value::from(*n),
            UserIdRepr::Text(s) => Value::from(&**s),
        }
    }

    /// Reads an id from a claim value: a non-negative integer or a non-empty string.
    pub(crate) fn from_claim(value: &Value) -> Option<Self> {
        match value {
            Value::Number(n) => n.as_u64().map(Self::from),
            Value::String(s) if !s.is_empty() => Some(Self::from(s.as_str())),
            _ => None,
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
        match &self.0 {
            UserIdRepr::Number(n) => write!(f, "{n}"),
            UserIdRepr::Text(s) => f.write_str(s),
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

/// A user as a [`UserDirectory`](crate::UserDirectory) keeps it: the request's [`UserId`] and
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

    /// The user as the [`UserDirectory`](crate::UserDirectory) keeps it, when the validator
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
        assert_eq!(UserId::from_claim(&json!(42)).unwrap().as_u64(), Some(42));
        assert_eq!(
            UserId::from_claim(&json!("abc")).unwrap().as_str(),
            Some("abc")
        );
        assert_eq!(
            UserId::from_claim(&json!("abc")).unwrap().to_json(),
            json!("abc")
        );
        assert!(UserId::from_claim(&json!("")).is_none());
        assert!(UserId::from_claim(&json!(-1)).is_none());
        assert!(UserId::from_claim(&json!(1.5)).is_none());
        assert!(UserId::from_claim(&json!({})).is_none());
    }

    #[test]
    fn identity_serialises_its_four_parts() {
        let mut claims = Map::new();
        claims.insert("sub".into(), json!("u1"));
        let id = Identity {
            payload: Payload::new(claims),
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
        let text = format!("{:?}", Payload::new(claims));
        assert_eq!(text, "{\"email\"}");
    }
}
