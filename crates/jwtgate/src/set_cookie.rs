//! The one writer of `Set-Cookie` values: every cookie jwtgate sets or clears (cookie-mode
//! sessions, sealed pending logins, the login bounce counter) is `HttpOnly` and
//! `SameSite=Lax`, and `Secure` unless the app turned it off for development over plain HTTP.

use http::HeaderValue;

/// One cookie to set (`max_age` > 0) or clear (`max_age` 0, empty value).
pub(crate) struct SetCookie<'a> {
    pub(crate) name: &'a str,
    pub(crate) value: &'a str,
    pub(crate) path: &'a str,
    pub(crate) max_age: u64,
    pub(crate) secure: bool,
}

impl SetCookie<'_> {
    /// The header value; `None` when a part cannot stand in a header (names and paths are
    /// checked when the registry is built, values are base64url).
    pub(crate) fn header(&self) -> Option<HeaderValue> {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::try_from(format!(
            "{}={}; Path={}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
            self.name, self.value, self.path, self.max_age
        ))
        .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cookie_is_http_only_and_lax() {
        let set = SetCookie {
            name: "s",
            value: "v",
            path: "/app",
            max_age: 60,
            secure: true,
        };
        assert_eq!(
            set.header().unwrap(),
            "s=v; Path=/app; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
        let clear = SetCookie {
            value: "",
            max_age: 0,
            secure: false,
            ..set
        };
        assert_eq!(
            clear.header().unwrap(),
            "s=; Path=/app; Max-Age=0; HttpOnly; SameSite=Lax"
        );
        let broken = SetCookie {
            value: "a\nb",
            ..clear
        };
        assert!(broken.header().is_none());
    }
}
