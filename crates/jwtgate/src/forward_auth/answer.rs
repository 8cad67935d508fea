//! The answer to an accepted check: 200 with the identity in headers, named as oauth2-proxy
//! names them so that existing proxy snippets work. The proxy copies them into the request it
//! sends the app (and its config strips any the client sent).

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::CACHE_CONTROL;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};

use crate::error::{Error, ErrorKind};
use crate::identity::Identity;
use crate::percent::encode;

/// The names of the identity headers of an accepted check (default: oauth2-proxy's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityHeaders {
    user: HeaderName,
    email: HeaderName,
    validator: HeaderName,
    partner: HeaderName,
}

/// Envoy's `ext_authz` (HTTP service) removes the request headers this names.
const ENVOY_HEADERS_TO_REMOVE: HeaderName =
    HeaderName::from_static("x-envoy-auth-headers-to-remove");

/// What a check's own answer sets: no identity header may take one of these names.
const ANSWER_HEADERS: [HeaderName; 9] = [
    ENVOY_HEADERS_TO_REMOVE,
    http::header::SET_COOKIE,
    http::header::LOCATION,
    http::header::WWW_AUTHENTICATE,
    http::header::CACHE_CONTROL,
    http::header::CONTENT_TYPE,
    http::header::CONTENT_LENGTH,
    http::header::RETRY_AFTER,
    http::header::VARY,
];

impl IdentityHeaders {
    /// `X-Auth-Request-User` (the user id), `X-Auth-Request-Email`, `X-Auth-Request-Validator`
    /// and `X-Auth-Request-Partner` (when a partner is resolved).
    pub fn oauth2_proxy() -> Self {
        Self {
            user: HeaderName::from_static("x-auth-request-user"),
            email: HeaderName::from_static("x-auth-request-email"),
            validator: HeaderName::from_static("x-auth-request-validator"),
            partner: HeaderName::from_static("x-auth-request-partner"),
        }
    }

    /// Names the user id's header `name`.
    pub fn user(self, name: &str) -> Result<Self, Error> {
        Ok(Self {
            user: Self::name(name)?,
            ..self
        })
    }

    /// Names the email's header `name` (the directory's record, else the `email` claim).
    pub fn email(self, name: &str) -> Result<Self, Error> {
        Ok(Self {
            email: Self::name(name)?,
            ..self
        })
    }

    /// Names the validator's header `name`.
    pub fn validator(self, name: &str) -> Result<Self, Error> {
        Ok(Self {
            validator: Self::name(name)?,
            ..self
        })
    }

    /// Names the partner id's header `name`.
    pub fn partner(self, name: &str) -> Result<Self, Error> {
        Ok(Self {
            partner: Self::name(name)?,
            ..self
        })
    }

    /// The four names, each once.
    pub(super) fn check(&self) -> Result<(), Error> {
        let names = self.names();
        for (i, a) in names.iter().enumerate() {
            if names[i + 1..].contains(a) {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("identity header {a} is named twice"),
                ));
            }
        }
        Ok(())
    }

    fn name(name: &str) -> Result<HeaderName, Error> {
        let header = HeaderName::try_from(name).map_err(|_| {
            Error::new(
                ErrorKind::Config,
                format!("{name:?} is not an HTTP header name"),
            )
        })?;
        if ANSWER_HEADERS.contains(&header) {
            return Err(Error::new(
                ErrorKind::Config,
                format!("{name:?} is a header the check's answer sets itself; name another"),
            ));
        }
        Ok(header)
    }

    /// The four names.
    fn names(&self) -> [&HeaderName; 4] {
        [&self.user, &self.email, &self.validator, &self.partner]
    }

    /// Writes `identity` into `headers`.
    fn write(&self, identity: &Identity, headers: &mut HeaderMap) {
        headers.insert(&self.user, value(&identity.user_id().to_string()));
        headers.insert(&self.validator, value(identity.validator().as_str()));
        let email = identity
            .user_record()
            .and_then(|user| user.email.as_deref())
            .or_else(|| identity.payload().get_str("email"));
        if let Some(email) = email {
            headers.insert(&self.email, value(email));
        }
        if let Some(partner) = identity.partner_id() {
            headers.insert(&self.partner, HeaderValue::from(partner.0));
        }
    }
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        Self::oauth2_proxy()
    }
}

/// A claim as a header value: visible ASCII kept, every other byte (and `%`) written `%XX`,
/// so that no claim can end the header or add another.
fn value(text: &str) -> HeaderValue {
    let visible = |b: u8| b.is_ascii_graphic() && b != b'%';
    let encoded = encode(text, visible);
    HeaderValue::try_from(encoded).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The service behind a route's layer in a check: the layer let the request through, so the
/// answer is 200, with the identity when there is one (anonymous on `public_or_jwt_`: none).
#[derive(Clone)]
pub(super) struct Accept(pub(super) Arc<IdentityHeaders>);

impl Accept {
    pub(super) fn answer(&self, req: &Request<()>) -> Response<String> {
        let mut res = Response::new(String::new());
        let headers = res.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(identity) = req.extensions().get::<Identity>() {
            self.0.write(identity, headers);
        }
        // Envoy sets the identity headers the answer has on the request it forwards, and
        // removes the ones named here: those the answer lacks, so that one the client sent
        // under such a name never reaches the app. Other proxies copy only what they name.
        let missing: Vec<&str> = self
            .0
            .names()
            .into_iter()
            .filter(|name| !headers.contains_key(*name))
            .map(HeaderName::as_str)
            .collect();
        if !missing.is_empty()
            && let Ok(value) = HeaderValue::try_from(missing.join(", "))
        {
            headers.insert(ENVOY_HEADERS_TO_REMOVE, value);
        }
        res
    }
}

impl tower_service::Service<Request<()>> for Accept {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<()>) -> Self::Future {
        ready(Ok(self.answer(&req)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_are_not_visible_ascii_are_percent_encoded() {
        assert_eq!(value("mark@example.com"), "mark@example.com");
        assert_eq!(value("a b"), "a%20b");
        assert_eq!(
            value("evil\r\nX-Auth-Request-User: 1"),
            "evil%0D%0AX-Auth-Request-User:%201"
        );
        assert_eq!(value("Zoë 100%"), "Zo%C3%AB%20100%25");
        assert_eq!(value(""), "");
    }

    #[test]
    fn names_are_checked() {
        let h = IdentityHeaders::oauth2_proxy()
            .user("X-User")
            .unwrap()
            .email("X-Email")
            .unwrap();
        assert_eq!(h.user, "x-user");
        h.check().unwrap();
        assert!(
            IdentityHeaders::oauth2_proxy()
                .user("bad name")
                .unwrap_err()
                .to_string()
                .contains("is not an HTTP header name")
        );
        assert!(
            IdentityHeaders::oauth2_proxy()
                .partner("Set-Cookie")
                .unwrap_err()
                .to_string()
                .contains("a header the check's answer sets itself")
        );
        let twice = IdentityHeaders::oauth2_proxy()
            .user("X-Auth-Request-Email")
            .unwrap();
        assert!(
            twice
                .check()
                .unwrap_err()
                .to_string()
                .contains("x-auth-request-email is named twice")
        );
    }
}
