//! Per-route auth modes, written as Odoo writes them: `jwt_<validator>` and
//! `public_or_jwt_<validator>` (bare `jwt` / `public_or_jwt` mean "the only validator").

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, ErrorKind};

/// How a route authenticates.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMode {
    /// A valid token (or validator cookie) is required.
    Jwt(Option<String>),
    /// Anonymous requests pass; credentials, when sent, must be valid.
    PublicOrJwt(Option<String>),
}

impl AuthMode {
    /// The validator this mode names, `None` for "the only one".
    pub fn validator(&self) -> Option<&str> {
        match self {
            Self::Jwt(v) | Self::PublicOrJwt(v) => v.as_deref(),
        }
    }

    /// Whether anonymous requests pass.
    pub fn is_public(&self) -> bool {
        matches!(self, Self::PublicOrJwt(_))
    }
}

impl FromStr for AuthMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let named = |rest: &str| {
            if crate::identity::is_valid_name(rest) {
                Ok(Some(rest.to_owned()))
            } else {
                Err(Error::new(
                    ErrorKind::InvalidMode,
                    format!("invalid auth mode {s:?}: {rest:?} is not a validator name"),
                ))
            }
        };
        match s {
            "jwt" => Ok(Self::Jwt(None)),
            "public_or_jwt" => Ok(Self::PublicOrJwt(None)),
            _ => {
                if let Some(rest) = s.strip_prefix("public_or_jwt_") {
                    named(rest).map(Self::PublicOrJwt)
                } else if let Some(rest) = s.strip_prefix("jwt_") {
                    named(rest).map(Self::Jwt)
                } else {
                    Err(Error::new(
                        ErrorKind::InvalidMode,
                        format!(
                            "invalid auth mode {s:?}: expected jwt_<validator> or public_or_jwt_<validator>"
                        ),
                    ))
                }
            }
        }
    }
}

impl fmt::Display for AuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (prefix, name) = match self {
            Self::Jwt(n) => ("jwt", n),
            Self::PublicOrJwt(n) => ("public_or_jwt", n),
        };
        match name {
            Some(n) => write!(f, "{prefix}_{n}"),
            None => f.write_str(prefix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_odoo_writes_it() {
        assert_eq!(
            "jwt_demo".parse::<AuthMode>().unwrap(),
            AuthMode::Jwt(Some("demo".into()))
        );
        assert_eq!(
            "public_or_jwt_demo".parse::<AuthMode>().unwrap(),
            AuthMode::PublicOrJwt(Some("demo".into()))
        );
        assert_eq!(
            "jwt_public_or_jwt_x"
                .parse::<AuthMode>()
                .unwrap()
                .validator(),
            Some("public_or_jwt_x")
        );
        assert_eq!("jwt".parse::<AuthMode>().unwrap(), AuthMode::Jwt(None));
        for m in ["jwt_demo", "public_or_jwt_demo", "jwt", "public_or_jwt"] {
            assert_eq!(m.parse::<AuthMode>().unwrap().to_string(), m);
        }
    }

    #[test]
    fn refuses_other_strings() {
        for bad in [
            "",
            "user",
            "jwt_",
            "jwt_not valid",
            "JWT_demo",
            "public_demo",
            "jwt-demo",
        ] {
            let err = bad.parse::<AuthMode>().unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::InvalidMode, "{bad}");
        }
    }
}
