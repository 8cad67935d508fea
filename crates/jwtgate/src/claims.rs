//! Registered-claim checks (`exp`, `nbf`, `iat`, `iss`, `aud`), stricter than jsonwebtoken's.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// What one validator requires of the registered claims.
#[derive(Clone, Debug)]
pub(crate) struct ClaimRules {
    pub(crate) issuer: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) leeway: u64,
}

/// Why the claims were refused. The text is safe to send to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClaimError {
    MissingExp,
    BadExp,
    Expired,
    BadNbf,
    NotYetValid,
    BadIat,
    IssuedInFuture,
    MissingIss,
    BadIss,
    WrongIssuer,
    MissingAud,
    BadAud,
    WrongAudience,
}

impl ClaimError {
    pub(crate) const fn description(self) -> &'static str {
        match self {
            Self::MissingExp => "token has no exp claim",
            Self::BadExp => "token exp is not a number",
            Self::Expired => "token expired",
            Self::BadNbf => "token nbf is not a number",
            Self::NotYetValid => "token not yet valid",
            Self::BadIat => "token iat is not a number",
            Self::IssuedInFuture => "token issued in the future",
            Self::MissingIss => "token has no iss claim",
            Self::BadIss => "token iss is not a string",
            Self::WrongIssuer => "token issuer not accepted",
            Self::MissingAud => "token has no aud claim",
            Self::BadAud => "token aud is not a string or an array of strings",
            Self::WrongAudience => "token audience not accepted",
        }
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl ClaimRules {
    /// Checks the registered claims at time `now`, as PyJWT does for auth_jwt
    /// (`exp <= now - leeway` is expired), plus type checks jsonwebtoken skips.
    pub(crate) fn check(&self, claims: &Map<String, Value>, now: u64) -> Result<(), ClaimError> {
        let now = now as f64;
        let leeway = self.leeway as f64;
        let exp = match claims.get("exp") {
            None | Some(Value::Null) => return Err(ClaimError::MissingExp),
            Some(v) => v.as_f64().ok_or(ClaimError::BadExp)?,
        };
        if exp <= now - leeway {
            return Err(ClaimError::Expired);
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = nbf.as_f64().ok_or(ClaimError::BadNbf)?;
            if nbf > now + leeway {
                return Err(ClaimError::NotYetValid);
            }
        }
        if let Some(iat) = claims.get("iat") {
            let iat = iat.as_f64().ok_or(ClaimError::BadIat)?;
            if iat > now + leeway {
                return Err(ClaimError::IssuedInFuture);
            }
        }
        match claims.get("iss") {
            None | Some(Value::Null) => return Err(ClaimError::MissingIss),
            Some(Value::String(iss)) if *iss == self.issuer => {}
            Some(Value::String(_)) => return Err(ClaimError::WrongIssuer),
            Some(_) => return Err(ClaimError::BadIss),
        }
        let accepted = |aud: &str| self.audiences.iter().any(|a| a == aud);
        match claims.get("aud") {
            None | Some(Value::Null) => Err(ClaimError::MissingAud),
            Some(Value::String(aud)) if accepted(aud) => Ok(()),
            Some(Value::String(_)) => Err(ClaimError::WrongAudience),
            Some(Value::Array(items)) => {
                let mut found = false;
                for item in items {
                    let Value::String(aud) = item else {
                        return Err(ClaimError::BadAud);
                    };
                    found |= accepted(aud);
                }
                if found {
                    Ok(())
                } else {
                    Err(ClaimError::WrongAudience)
                }
            }
            Some(_) => Err(ClaimError::BadAud),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn rules() -> ClaimRules {
        ClaimRules {
            issuer: "http://the.issuer".into(),
            audiences: vec!["a1".into(), "a2".into()],
            leeway: 0,
        }
    }

    fn check(claims: Value) -> Result<(), ClaimError> {
        rules().check(claims.as_object().unwrap(), NOW)
    }

    fn base() -> Value {
        json!({"iss": "http://the.issuer", "aud": "a1", "exp": NOW + 100})
    }

    fn with(key: &str, value: Value) -> Value {
        let mut v = base();
        v[key] = value;
        v
    }

    fn without(key: &str) -> Value {
        let mut v = base();
        v.as_object_mut().unwrap().remove(key);
        v
    }

    #[test]
    fn accepts_a_valid_set() {
        assert_eq!(check(base()), Ok(()));
        assert_eq!(check(with("aud", json!(["zz", "a2"]))), Ok(()));
        assert_eq!(check(with("exp", json!(NOW as f64 + 0.5))), Ok(()));
    }

    #[test]
    fn exp_equal_to_now_is_expired() {
        assert_eq!(check(with("exp", json!(NOW))), Err(ClaimError::Expired));
        assert_eq!(check(with("exp", json!(NOW + 1))), Ok(()));
        let leeway = ClaimRules {
            leeway: 5,
            ..rules()
        };
        let claims = with("exp", json!(NOW - 4));
        assert_eq!(leeway.check(claims.as_object().unwrap(), NOW), Ok(()));
    }

    #[test]
    fn required_claims() {
        assert_eq!(check(without("exp")), Err(ClaimError::MissingExp));
        assert_eq!(check(without("iss")), Err(ClaimError::MissingIss));
        assert_eq!(check(without("aud")), Err(ClaimError::MissingAud));
        assert_eq!(check(with("exp", json!(null))), Err(ClaimError::MissingExp));
    }

    #[test]
    fn wrong_types() {
        assert_eq!(
            check(with("exp", json!("9999999999"))),
            Err(ClaimError::BadExp)
        );
        assert_eq!(check(with("iss", json!(5))), Err(ClaimError::BadIss));
        assert_eq!(
            check(with("iss", json!(["http://the.issuer"]))),
            Err(ClaimError::BadIss)
        );
        assert_eq!(check(with("aud", json!({}))), Err(ClaimError::BadAud));
        assert_eq!(
            check(with("aud", json!(["a1", 3]))),
            Err(ClaimError::BadAud)
        );
        assert_eq!(check(with("nbf", json!("0"))), Err(ClaimError::BadNbf));
        assert_eq!(check(with("iat", json!(true))), Err(ClaimError::BadIat));
    }

    #[test]
    fn time_windows() {
        assert_eq!(check(with("nbf", json!(NOW - 60))), Ok(()));
        assert_eq!(
            check(with("nbf", json!(NOW + 60))),
            Err(ClaimError::NotYetValid)
        );
        assert_eq!(check(with("iat", json!(NOW))), Ok(()));
        assert_eq!(
            check(with("iat", json!(NOW + 60))),
            Err(ClaimError::IssuedInFuture)
        );
    }

    #[test]
    fn audience_and_issuer_must_match() {
        assert_eq!(
            check(with("aud", json!("a3"))),
            Err(ClaimError::WrongAudience)
        );
        assert_eq!(
            check(with("aud", json!([]))),
            Err(ClaimError::WrongAudience)
        );
        assert_eq!(
            check(with("iss", json!("http://other"))),
            Err(ClaimError::WrongIssuer)
        );
    }
}
