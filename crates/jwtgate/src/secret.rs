//! Secrets given inline or by environment variable, never printed.

use std::fmt;

use crate::error::{Error, ErrorKind};

/// A secret value or the environment variable that holds it.
#[derive(Clone)]
pub(crate) enum Secret {
    Inline(Vec<u8>),
    Env(String),
}

impl Secret {
    /// The setting this secret came from: `inline` or `env`, as the config file names them.
    pub(crate) fn field(&self, inline: &'static str, env: &'static str) -> &'static str {
        match self {
            Self::Inline(_) => inline,
            Self::Env(_) => env,
        }
    }

    /// The secret's bytes; an unset or empty variable is an error naming the variable.
    pub(crate) fn resolve(&self) -> Result<Vec<u8>, Error> {
        match self {
            Self::Inline(bytes) => Ok(bytes.clone()),
            Self::Env(var) => match std::env::var_os(var) {
                Some(v) if !v.is_empty() => Ok(v.into_encoded_bytes()),
                _ => Err(Error::new(
                    ErrorKind::InvalidSetting,
                    format!("environment variable {var} is not set"),
                )),
            },
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inline(_) => f.write_str("Secret([redacted])"),
            Self::Env(var) => f.debug_tuple("SecretEnv").field(var).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_inline_secrets() {
        let s = Secret::Inline(b"hunter2-hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
    }

    #[test]
    fn missing_env_names_the_variable() {
        let err = Secret::Env("JWTGATE_TEST_SURELY_UNSET".into())
            .resolve()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable JWTGATE_TEST_SURELY_UNSET is not set"
        );
    }
}
