//! Why a request was refused: a [`Rejection`], with its RFC 6750 status, error code and
//! challenge. How it is written to the client is the job of a
//! [`RejectionResponse`](crate::layer::RejectionResponse) (JSON by default; RFC 9457, empty or
//! gRPC on request).
//!
//! A rejection is a response, never a service error: the layer's `Service::Error` stays the
//! inner service's (an error would drop the connection, as tower-http's timeout docs explain).
//! The [`Rejection`] is also put in the response extensions whatever the responder, so outer
//! layers (logging, metrics) can read why.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

/// A refused request.
///
/// Apps and extractors can build the same answers as the layer:
///
/// ```
/// use jwtgate::{rejection::Rejection, rejection::RejectionKind};
///
/// let r = Rejection::insufficient_scope("my-api", ["admin:write"]);
/// assert_eq!(r.status(), 403);
/// assert_eq!(
///     r.challenge().unwrap(),
///     "Bearer realm=\"my-api\", error=\"insufficient_scope\", scope=\"admin:write\""
/// );
/// let r = Rejection::new(RejectionKind::InvalidToken, "token expired", "my-api");
/// assert_eq!(r.error_code(), "invalid_token");
/// ```
#[derive(Clone)]
pub struct Rejection {
    kind: RejectionKind,
    description: Cow<'static, str>,
    realm: Arc<str>,
    retry_after: Option<u64>,
    scope: Option<Arc<str>>,
    /// For a browser navigation: where its login is (a 302), or the 401 page.
    login_redirect: Option<HeaderValue>,
    page: bool,
    /// Cookies to set or clear (the login's bounce and pending cookies, an expired session).
    cookies: Vec<HeaderValue>,
}

/// What kind of [`Rejection`] this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectionKind {
    /// No credentials at all: 401 with a bare `Bearer realm` challenge.
    MissingCredentials,
    /// A credential is not in its source's shape (`Authorization` not `Bearer <token>`, two
    /// headers, ...): 401 `invalid_request`.
    MalformedCredentials,
    /// A session cookie came with a JWT route: 401 `invalid_request`.
    SessionMismatch,
    /// The token is invalid (signature, algorithm, claims, unknown key, no user/partner): 401
    /// `invalid_token`.
    InvalidToken,
    /// The token is valid but lacks a required scope or role (or fails a requirement): 403
    /// `insufficient_scope` (RFC 6750 3.1).
    InsufficientScope,
    /// The keys needed to check the token cannot be had right now: 503 with `Retry-After`.
    KeysUnavailable,
    /// The user directory cannot be reached or timed out: 503 with `Retry-After`.
    DirectoryUnavailable,
    /// A browser should sign in, but the sign-in cannot be started (the provider's discovery
    /// document cannot be had): 503 with `Retry-After`, a page saying so.
    LoginUnavailable,
    /// The token is valid but its user has not completed their profile: a browser navigation
    /// is sent to the validator's profile page (302, whatever the responder); anything else
    /// gets 403 `profile_incomplete`.
    ProfileIncomplete,
    /// An application callback failed, or the route is miswired: 500.
    Internal,
    /// The credential was revoked (a sign-out, a revoked `jti` or subject): 401
    /// `invalid_token`; a browser navigation is sent to sign in again.
    Revoked,
    /// Sign-outs cannot be confirmed: the revocation store's mirror is not known current.
    /// 503 `temporarily_unavailable` with `Retry-After`.
    RevocationUnavailable,
    /// A signed-in session's record cannot be read or refreshed right now (the session store
    /// or the provider's token endpoint cannot be reached): 503 `temporarily_unavailable` with
    /// `Retry-After`. The session is not ended.
    SessionUnavailable,
    /// A forward-auth check that a gateway must deny whatever the credentials: no route
    /// matches the original path, or the original request is not known for sure (forwarded
    /// headers from an untrusted peer, two header families that disagree, a path the proxy
    /// and the app could read differently). 403 `access_denied`, no challenge.
    GatewayDenied,
}

impl RejectionKind {
    /// A short, stable name, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingCredentials => "missing_credentials",
            Self::MalformedCredentials => "malformed_credentials",
            Self::SessionMismatch => "session_mismatch",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::KeysUnavailable => "keys_unavailable",
            Self::DirectoryUnavailable => "directory_unavailable",
            Self::LoginUnavailable => "login_unavailable",
            Self::ProfileIncomplete => "profile_incomplete",
            Self::Internal => "internal",
            Self::Revoked => "revoked",
            Self::RevocationUnavailable => "revocation_unavailable",
            Self::SessionUnavailable => "session_unavailable",
            Self::GatewayDenied => "gateway_denied",
        }
    }
}

impl Rejection {
    /// A rejection of `kind`; `description` is sent to the client as `error_description`, so it
    /// must hold nothing secret (a realm with `"` or `\` is replaced by `jwtgate`).
    pub fn new(
        kind: RejectionKind,
        description: impl Into<Cow<'static, str>>,
        realm: impl Into<Arc<str>>,
    ) -> Self {
        let realm: Arc<str> = realm.into();
        let quotable = !realm.is_empty()
            && realm
                .chars()
                .all(|c| c != '"' && c != '\\' && (c == ' ' || c.is_ascii_graphic()));
        Self {
            kind,
            description: description.into(),
            realm: if quotable {
                realm
            } else {
                Arc::from("jwtgate")
            },
            retry_after: None,
            scope: None,
            login_redirect: None,
            page: false,
            cookies: Vec::new(),
        }
    }

    /// Sends a browser navigation to its login (or profile page) instead of a 401.
    pub(crate) fn redirect_to(mut self, location: HeaderValue) -> Self {
        self.login_redirect = Some(location);
        self
    }

    /// Answers a browser navigation with the 401 HTML page.
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) fn with_page(mut self) -> Self {
        self.page = true;
        self
    }

    /// Adds a `Set-Cookie` to the answer.
    pub(crate) fn with_cookie(mut self, cookie: HeaderValue) -> Self {
        self.cookies.push(cookie);
        self
    }

    /// Where a browser navigation is sent to sign in, when the route's validator has a login
    /// and the request carried no credential (the default responder answers 302).
    pub fn login_redirect(&self) -> Option<&HeaderValue> {
        self.login_redirect.as_ref()
    }

    /// Whether a browser navigation should see the 401 HTML page (credentials sent but
    /// refused, or a login loop stopped).
    pub fn wants_page(&self) -> bool {
        self.page
    }

    /// 401 with a bare challenge: the route needs a token and none was sent.
    pub fn missing_credentials(realm: impl Into<Arc<str>>) -> Self {
        Self::new(
            RejectionKind::MissingCredentials,
            "no bearer token or cookie was sent",
            realm,
        )
    }

    /// 403 `insufficient_scope` naming the `scopes` (or roles) the request needs.
    pub fn insufficient_scope<I, S>(realm: impl Into<Arc<str>>, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let scope: Vec<String> = scopes
            .into_iter()
            .map(|s| s.as_ref().to_owned())
            .filter(|s| {
                s.chars()
                    .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
            })
            .collect();
        let mut r = Self::new(
            RejectionKind::InsufficientScope,
            "the token lacks a required scope or role",
            realm,
        );
        if !scope.is_empty() {
            r.scope = Some(Arc::from(scope.join(" ")));
        }
        r
    }

    /// Asks the client to retry after `seconds` (503s).
    #[must_use]
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// What kind of rejection this is.
    pub fn kind(&self) -> RejectionKind {
        self.kind
    }

    /// The short, client-safe description sent as `error_description`.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The realm of the challenge.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Seconds until a retry may succeed (503s).
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// The scopes (or roles) a 403 names.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            RejectionKind::KeysUnavailable
            | RejectionKind::DirectoryUnavailable
            | RejectionKind::LoginUnavailable
            | RejectionKind::RevocationUnavailable
            | RejectionKind::SessionUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            RejectionKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            RejectionKind::InsufficientScope
            | RejectionKind::ProfileIncomplete
            | RejectionKind::GatewayDenied => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The OAuth error code of the body (and of the challenge, where RFC 6750 has one).
    pub fn error_code(&self) -> &'static str {
        match self.kind {
            RejectionKind::MissingCredentials => "missing_token",
            RejectionKind::MalformedCredentials | RejectionKind::SessionMismatch => {
                "invalid_request"
            }
            RejectionKind::InvalidToken | RejectionKind::Revoked => "invalid_token",
            RejectionKind::InsufficientScope => "insufficient_scope",
            RejectionKind::KeysUnavailable
            | RejectionKind::DirectoryUnavailable
            | RejectionKind::LoginUnavailable
            | RejectionKind::RevocationUnavailable
            | RejectionKind::SessionUnavailable => "temporarily_unavailable",
            RejectionKind::ProfileIncomplete => "profile_incomplete",
            RejectionKind::Internal => "server_error",
            // RFC 6749 4.1.2.1: the request is denied, not for want of a token or a scope.
            RejectionKind::GatewayDenied => "access_denied",
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750 3): a bare challenge when no credentials were
    /// sent, with `error` and `error_description` (and `scope` for a 403) otherwise; none for
    /// 5xx.
    pub fn challenge(&self) -> Option<HeaderValue> {
        let realm = &self.realm;
        let value = match self.kind {
            RejectionKind::MissingCredentials => format!("Bearer realm=\"{realm}\""),
            RejectionKind::InsufficientScope => {
                let mut v = format!("Bearer realm=\"{realm}\", error=\"insufficient_scope\"");
                if let Some(scope) = &self.scope {
                    v.push_str(&format!(", scope=\"{scope}\""));
                }
                v
            }
            RejectionKind::MalformedCredentials
            | RejectionKind::SessionMismatch
            | RejectionKind::InvalidToken
            | RejectionKind::Revoked => format!(
                "Bearer realm=\"{realm}\", error=\"{}\", error_description=\"{}\"",
                self.error_code(),
                quotable(&self.description)
            ),
            RejectionKind::KeysUnavailable
            | RejectionKind::DirectoryUnavailable
            | RejectionKind::LoginUnavailable
            | RejectionKind::RevocationUnavailable
            | RejectionKind::SessionUnavailable
            | RejectionKind::ProfileIncomplete
            | RejectionKind::GatewayDenied
            | RejectionKind::Internal => return None,
        };
        // Realm, description and scope were checked to be quotable ASCII.
        HeaderValue::try_from(value).ok()
    }

    /// The JSON body: `{"error": ..., "error_description": ...}` (plus `scope` for a 403).
    pub fn json_body(&self) -> String {
        let mut body = serde_json::json!({
            "error": self.error_code(),
            "error_description": self.description(),
        });
        if let Some(scope) = &self.scope {
            body["scope"] = serde_json::Value::from(&**scope);
        }
        body.to_string()
    }

    /// Sets what a refusal means on the wire, whatever its body: the challenge, `Retry-After`,
    /// `Cache-Control: no-store`, the cookies to set or clear, the rejection itself (in the
    /// extensions) and, for a browser sent to sign in, the 302 and its `Location`. Called once
    /// per answer, by the layer for every responder (a custom one cannot drop the challenge or
    /// the login redirect) and by [`to_json_response`](Self::to_json_response).
    pub(crate) fn decorate<B>(&self, res: &mut Response<B>) {
        if let Some(location) = &self.login_redirect {
            *res.status_mut() = StatusCode::FOUND;
            res.headers_mut().insert(LOCATION, location.clone());
        }
        let headers: &mut HeaderMap = res.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.login_redirect.is_none()
            && let Some(challenge) = self.challenge()
        {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        for cookie in &self.cookies {
            headers.append(http::header::SET_COOKIE, cookie.clone());
        }
        if let Some(secs) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        res.extensions_mut().insert(self.clone());
    }

    /// The whole JSON answer, as the layer would send it: for handlers and extractors that
    /// refuse a request themselves.
    pub fn to_json_response<B: From<String>>(&self) -> Response<B> {
        let mut res = self.json_response();
        self.decorate(&mut res);
        res
    }

    /// Status, JSON body and content type only: what
    /// [`JsonRejection`](crate::layer::JsonRejection) writes before the layer decorates it.
    pub(crate) fn json_response<B: From<String>>(&self) -> Response<B> {
        let mut res = Response::new(B::from(self.json_body()));
        *res.status_mut() = self.status();
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        res
    }
}

/// A small HTML page: `title`, then `text` (escaped), for browsers.
pub(crate) fn page_html(title: &str, text: &str) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body><h1>{t}</h1><p id=\"reason\">{x}</p><p><a href=\"/\">Home</a></p></body></html>",
        t = esc(title),
        x = esc(text)
    )
}

/// `text` with every character that cannot stand in a quoted header value replaced by `?`.
fn quotable(text: &str) -> Cow<'_, str> {
    let ok = |c: char| c == ' ' || (c.is_ascii_graphic() && c != '"' && c != '\\');
    if text.chars().all(ok) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.chars().map(|c| if ok(c) { c } else { '?' }).collect())
    }
}

impl fmt::Debug for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejection")
            .field("kind", &self.kind)
            .field("description", &self.description)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_code(), self.description)
    }
}

impl std::error::Error for Rejection {}

#[cfg(feature = "axum")]
impl axum_core::response::IntoResponse for Rejection {
    fn into_response(self) -> axum_core::response::Response {
        self.to_json_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(kind: RejectionKind, description: &'static str) -> Response<String> {
        Rejection::new(kind, description, "app").to_json_response()
    }

    #[test]
    fn missing_credentials_has_a_bare_challenge() {
        let res = rejection(RejectionKind::MissingCredentials, "no bearer token");
        assert_eq!(res.status(), 401);
        assert_eq!(res.headers()[WWW_AUTHENTICATE], "Bearer realm=\"app\"");
        let body: serde_json::Value = serde_json::from_str(res.body()).unwrap();
        assert_eq!(body["error"], "missing_token");
        assert_eq!(
            res.extensions().get::<Rejection>().unwrap().kind(),
            RejectionKind::MissingCredentials
        );
    }

    #[test]
    fn invalid_token_names_the_error() {
        let res = rejection(RejectionKind::InvalidToken, "token expired");
        assert_eq!(
            res.headers()[WWW_AUTHENTICATE],
            "Bearer realm=\"app\", error=\"invalid_token\", error_description=\"token expired\""
        );
        assert_eq!(
            res.body(),
            r#"{"error":"invalid_token","error_description":"token expired"}"#
        );
    }

    #[test]
    fn unavailable_keys_ask_to_retry() {
        let res: Response<String> =
            Rejection::new(RejectionKind::KeysUnavailable, "keys unavailable", "a")
                .with_retry_after(0)
                .to_json_response();
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()[RETRY_AFTER], "1");
        assert!(res.headers().get(WWW_AUTHENTICATE).is_none());
    }

    #[test]
    fn insufficient_scope_is_a_403_naming_the_scopes() {
        let res: Response<String> =
            Rejection::insufficient_scope("app", ["read", "write"]).to_json_response();
        assert_eq!(res.status(), 403);
        assert_eq!(
            res.headers()[WWW_AUTHENTICATE],
            "Bearer realm=\"app\", error=\"insufficient_scope\", scope=\"read write\""
        );
        let body: serde_json::Value = serde_json::from_str(res.body()).unwrap();
        assert_eq!(body["error"], "insufficient_scope");
        assert_eq!(body["scope"], "read write");
    }

    #[test]
    fn values_that_cannot_be_quoted_never_break_the_header() {
        let r = Rejection::new(
            RejectionKind::InvalidToken,
            String::from("bad \"quote\"\n"),
            "a\"b",
        );
        let challenge = r.challenge().unwrap();
        assert_eq!(
            challenge,
            "Bearer realm=\"jwtgate\", error=\"invalid_token\", error_description=\"bad ?quote??\""
        );
        assert_eq!(r.description(), "bad \"quote\"\n");
        let r = Rejection::insufficient_scope("a", ["ok", "not\"ok"]);
        assert_eq!(r.scope(), Some("ok"));
    }
}
