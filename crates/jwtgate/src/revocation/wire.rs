//! The one format every store keeps entries in: a line of JSON, read back with bounds.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Revocation, Target};

/// The longest entry read back, and the longest issuer and identifier in one.
const MAX_ENTRY: usize = 4096;
const MAX_ISSUER: usize = 2048;
const MAX_VALUE: usize = 1024;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<'a> {
    kind: &'a str,
    #[serde(borrow)]
    iss: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    value: std::borrow::Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    before: Option<u64>,
    until: u64,
}

/// Why a stored entry could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(&'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stored revocation unreadable: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

pub(super) fn encode(r: &Revocation) -> String {
    let before = match r.target {
        Target::Subject { before, .. } => Some(before),
        _ => None,
    };
    let wire = Wire {
        kind: r.target.kind(),
        iss: r.issuer.as_str().into(),
        value: r.target.value().into(),
        before,
        until: r.until,
    };
    // A struct of strings and integers always serializes.
    serde_json::to_string(&wire).unwrap_or_default()
}

pub(super) fn decode(text: &[u8]) -> Result<Revocation, DecodeError> {
    if text.len() > MAX_ENTRY {
        return Err(DecodeError("longer than 4096 bytes"));
    }
    let wire: Wire<'_> =
        serde_json::from_slice(text).map_err(|_| DecodeError("not an entry's JSON"))?;
    if wire.iss.is_empty() || wire.iss.len() > MAX_ISSUER {
        return Err(DecodeError("issuer empty or too long"));
    }
    if wire.value.is_empty() || wire.value.len() > MAX_VALUE {
        return Err(DecodeError("identifier empty or too long"));
    }
    let value = wire.value.into_owned();
    let target = match (wire.kind, wire.before) {
        ("session", None) => Target::Session(value),
        ("provider_session", None) => Target::ProviderSession(value),
        ("token", None) => Target::Token(value),
        ("subject", Some(before)) => Target::Subject {
            subject: value,
            before,
        },
        ("subject", None) => return Err(DecodeError("a subject entry needs `before`")),
        ("session" | "provider_session" | "token", Some(_)) => {
            return Err(DecodeError("only a subject entry has `before`"));
        }
        _ => return Err(DecodeError("unknown kind")),
    };
    Ok(Revocation {
        issuer: wire.iss.into_owned(),
        target,
        until: wire.until,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_as_written() {
        let entries = [
            Revocation::new("https://i", Target::Session("s\"1".into()), 9),
            Revocation::new("https://i", Target::ProviderSession("p".into()), 9),
            Revocation::new("https://i", Target::Token("j".into()), 9),
            Revocation::new(
                "https://i",
                Target::Subject {
                    subject: "ada".into(),
                    before: 7,
                },
                9,
            ),
        ];
        for r in entries {
            assert_eq!(Revocation::decode(r.encode().as_bytes()), Ok(r.clone()));
        }
        assert_eq!(
            Revocation::new("i", Target::Token("j".into()), 9).encode(),
            r#"{"kind":"token","iss":"i","value":"j","until":9}"#
        );
    }

    #[test]
    fn what_a_store_should_not_hold_is_refused_with_its_reason() {
        let long = format!(
            r#"{{"kind":"token","iss":"i","value":"{}","until":9}}"#,
            "v".repeat(1025)
        );
        let huge = "x".repeat(5000);
        let cases: [(&str, &str); 9] = [
            ("{", "not an entry's JSON"),
            (
                r#"{"kind":"token","iss":"i","value":"j","until":9,"x":1}"#,
                "not an entry's JSON",
            ),
            (
                r#"{"kind":"token","iss":"i","iss":"k","value":"j","until":9}"#,
                "not an entry's JSON",
            ),
            (
                r#"{"kind":"token","iss":"","value":"j","until":9}"#,
                "issuer empty or too long",
            ),
            (&long, "identifier empty or too long"),
            (
                r#"{"kind":"role","iss":"i","value":"j","until":9}"#,
                "unknown kind",
            ),
            (
                r#"{"kind":"subject","iss":"i","value":"j","until":9}"#,
                "a subject entry needs `before`",
            ),
            (
                r#"{"kind":"token","iss":"i","value":"j","before":1,"until":9}"#,
                "only a subject entry has `before`",
            ),
            (&huge, "longer than 4096 bytes"),
        ];
        for (text, why) in cases {
            assert_eq!(
                Revocation::decode(text.as_bytes()),
                Err(DecodeError(why)),
                "{text}"
            );
        }
    }
}
