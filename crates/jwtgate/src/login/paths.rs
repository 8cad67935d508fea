//! Where a login's own routes are: settings, so that two apps (or two validators) can share a
//! domain without their sign-in routes colliding.

use crate::error::{Error, ErrorKind};

use super::BACKCHANNEL_LOGOUT_PATH;
use super::service::{LOGIN_PATH, LOGOUT_PATH};

/// The paths of a login's sign-in, sign-out and back-channel logout routes (the callback's is
/// the path of the OIDC `redirect_uri`). Default `/auth/login`, `/auth/logout`,
/// `/auth/backchannel-logout`.
///
/// ```
/// use jwtgate::login::{Login, LoginPaths};
/// let paths = LoginPaths::under("/billing/auth");
/// assert_eq!(paths.login_path(), "/billing/auth/login");
/// let login = Login::oidc("billing", "https://app.example.com/billing/auth/callback").paths(paths);
/// # let _ = login;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct LoginPaths {
    login: String,
    logout: String,
    backchannel_logout: String,
}

impl Default for LoginPaths {
    fn default() -> Self {
        Self {
            login: LOGIN_PATH.to_owned(),
            logout: LOGOUT_PATH.to_owned(),
            backchannel_logout: BACKCHANNEL_LOGOUT_PATH.to_owned(),
        }
    }
}

impl LoginPaths {
    /// The default paths.
    pub fn new() -> Self {
        Self::default()
    }

    /// `{prefix}/login`, `{prefix}/logout` and `{prefix}/backchannel-logout`.
    pub fn under(prefix: &str) -> Self {
        let prefix = prefix.trim_end_matches('/');
        Self {
            login: format!("{prefix}/login"),
            logout: format!("{prefix}/logout"),
            backchannel_logout: format!("{prefix}/backchannel-logout"),
        }
    }

    /// The sign-in route (`GET ?return_to=/path`).
    pub fn login(mut self, path: impl Into<String>) -> Self {
        self.login = path.into();
        self
    }

    /// The sign-out route (`GET` and `POST`).
    pub fn logout(mut self, path: impl Into<String>) -> Self {
        self.logout = path.into();
        self
    }

    /// The back-channel logout route (`POST`, OIDC logins).
    pub fn backchannel_logout(mut self, path: impl Into<String>) -> Self {
        self.backchannel_logout = path.into();
        self
    }

    /// The sign-in route's path.
    pub fn login_path(&self) -> &str {
        &self.login
    }

    /// The sign-out route's path.
    pub fn logout_path(&self) -> &str {
        &self.logout
    }

    /// The back-channel logout route's path.
    pub fn backchannel_logout_path(&self) -> &str {
        &self.backchannel_logout
    }

    /// Each path is an absolute path without query, fragment or odd bytes, and no two
    /// routes (the callback's included) share one.
    pub(crate) fn check(&self, callback: Option<&str>) -> Result<(), Error> {
        let named = [
            ("login.login_path", &self.login),
            ("login.logout_path", &self.logout),
            ("login.backchannel_logout_path", &self.backchannel_logout),
        ];
        for (field, path) in named {
            let ok = path.starts_with('/')
                && !path.starts_with("//")
                && path.len() <= 256
                && path
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !matches!(b, b'?' | b'#' | b'\\' | b'%'));
            if !ok {
                return Err(Error::new(
                    ErrorKind::InvalidSetting,
                    format!(
                        "{path:?} is not a route path (one leading /, visible ASCII, no ?, #, % or \\)"
                    ),
                )
                .in_field(field));
            }
        }
        for (i, (field, path)) in named.iter().enumerate() {
            let clash = named[..i]
                .iter()
                .map(|(_, p)| p.as_str())
                .chain(callback)
                .find(|other| *other == path.as_str());
            if let Some(other) = clash {
                return Err(Error::new(
                    ErrorKind::InvalidSetting,
                    format!("{other:?} is the path of another sign-in route"),
                )
                .in_field(*field));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked_and_never_shared() {
        assert!(LoginPaths::new().check(Some("/auth/callback")).is_ok());
        let under = LoginPaths::under("/billing/auth/");
        assert_eq!(
            (
                under.login_path(),
                under.logout_path(),
                under.backchannel_logout_path()
            ),
            (
                "/billing/auth/login",
                "/billing/auth/logout",
                "/billing/auth/backchannel-logout"
            )
        );
        let err = |paths: LoginPaths| {
            let e = paths.check(Some("/auth/callback")).unwrap_err();
            (e.field().map(str::to_owned), e.message().to_owned())
        };
        assert_eq!(
            err(LoginPaths::new().login("auth/login")),
            (
                Some("login.login_path".into()),
                "\"auth/login\" is not a route path (one leading /, visible ASCII, no ?, #, % or \\)".into()
            )
        );
        for bad in ["//evil", "/a?b", "/a b", "/a#b", "/a%2F"] {
            assert!(LoginPaths::new().logout(bad).check(None).is_err(), "{bad}");
        }
        assert_eq!(
            err(LoginPaths::new().logout("/auth/login")),
            (
                Some("login.logout_path".into()),
                "\"/auth/login\" is the path of another sign-in route".into()
            )
        );
        assert_eq!(
            err(LoginPaths::new().backchannel_logout("/auth/callback"))
                .0
                .as_deref(),
            Some("login.backchannel_logout_path")
        );
    }
}
