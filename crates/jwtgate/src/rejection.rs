//! Why a request was refused, and the RFC 6750 response it becomes.
//!
//! A rejection is a response, never a service error: the layer's `Service::Error` stays the
//! inner service's. The [`Rejection`] is also put in the response extensions, so outer layers
//! (logging, metrics) can read why.

use std::fmt;
use std::sync::Arc;

use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};

/// A refused request.
#[derive(Clone)]
pub struct Rejection {
    kind: RejectionKind,
    description: &'static str,
    realm: Arc<str>,
    retry_after: Option<u64>,
}

/// What kind of [`Rejection`] this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectionKind {
    /// No bearer token and no validator cookie: 401 with a bare `Bearer realm` challenge.
    MissingCredentials,
    /// The `Authorization` header is not `Bearer <token>`: 401 `invalid_request`.
    MalformedCredentials,
    /// A session cookie came with a JWT route: 401 `invalid_request`.
    SessionMismatch,
    /// The token is invalid (signature, algorithm, claims, unknown key, no user/partner): 401
    /// `invalid_token`.
    InvalidToken,
    /// The keys needed to check the token cannot be had right now: 503 with `Retry-After`.
    KeysUnavailable,
    /// An application callback failed: 500.
    Internal,
}

impl Rejection {
    pub(crate) fn new(kind: RejectionKind, description: &'static str, realm: Arc<str>) -> Self {
        Self {
            kind,
            description,
            realm,
            retry_after: None,
        }
    }

    pub(crate) fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// What kind of rejection this is.
    pub fn kind(&self) -> RejectionKind {
        self.kind
    }

    /// The short, client-safe description sent as `error_description`.
    pub fn description(&self) -> &str {
        self.description
    }

    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            RejectionKind::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            RejectionKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
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
            RejectionKind::InvalidToken => "invalid_token",
            RejectionKind::KeysUnavailable => "temporarily_unavailable",
            RejectionKind::Internal => "server_error",
        }
    }

    fn challenge(&self) -> Option<String> {
        match self.kind {
            RejectionKind::MissingCredentials => Some(format!("Bearer realm=\"{}\"", self.realm)),
            RejectionKind::MalformedCredentials
            | RejectionKind::SessionMismatch
            | RejectionKind::InvalidToken => Some(format!(
                "Bearer realm=\"{}\", error=\"{}\", error_description=\"{}\"",
                self.realm,
                self.error_code(),
                self.description
            )),
            RejectionKind::KeysUnavailable | RejectionKind::Internal => None,
        }
    }

    /// The response: status, `WWW-Authenticate`, `Retry-After`, and a small JSON body.
    pub fn into_response<B: From<String>>(self) -> Response<B> {
        let body = serde_json::json!({
            "error": self.error_code(),
            "error_description": self.description,
        })
        .to_string();
        let mut res = Response::new(B::from(body));
        *res.status_mut() = self.status();
        let headers = res.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        // The realm is checked when the registry is built and descriptions are constants,
        // so these values are always valid; a failure would only drop the header.
        if let Some(challenge) = self.challenge().and_then(|c| HeaderValue::try_from(c).ok()) {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        if let Some(secs) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        res.extensions_mut().insert(self);
        res
    }
}

impl fmt::Debug for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejection")
            .field("kind", &self.kind)
            .field("description", &self.description)
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
        Rejection::into_response(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(kind: RejectionKind, description: &'static str) -> Response<String> {
        Rejection::new(kind, description, Arc::from("app")).into_response()
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
        let res: Response<String> = Rejection::new(
            RejectionKind::KeysUnavailable,
            "keys unavailable",
            Arc::from("a"),
        )
        .retry_after(0)
        .into_response();
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()[RETRY_AFTER], "1");
        assert!(res.headers().get(WWW_AUTHENTICATE).is_none());
    }
}
