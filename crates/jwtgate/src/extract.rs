//! axum extractors for what the layer found.
//!
//! Each extractor has an `Option<...>` form for `public_or_jwt` routes (`None` for an
//! anonymous request). Extracting on a route without the layer is a 500 that names the layer:
//! that is a wiring bug, not a client error.

#[doc(no_inline)]
pub use crate::identity::{Anonymous, Identity, PartnerId, Payload, UserId, ValidatorName};

use std::fmt;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use std::sync::Arc;

use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use serde::de::DeserializeOwned;

use crate::authz::{Roles, Scopes};
use crate::directory::UserRecord;
use crate::rejection::{Rejection, RejectionKind};

/// The claims, deserialised into the handler's own type.
#[derive(Clone, Debug)]
pub struct Claims<T>(pub T);

/// Why an extractor failed.
#[derive(Debug)]
pub struct ExtractRejection {
    kind: ExtractRejectionKind,
    /// The realm, for the challenge.
    realm: Option<Arc<str>>,
}

/// What kind of [`ExtractRejection`] this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtractRejectionKind {
    /// The route has no `JwtAuthLayer`: 500.
    MissingLayer,
    /// The request is anonymous (on a `public_or_jwt` route) but the handler needs a token: 401.
    Anonymous,
    /// The token matched no partner but the handler needs one: 403.
    NoPartner,
    /// The claims do not deserialise into the handler's type: 403.
    ClaimsShape,
    /// The handler asks for a [`UserRecord`] but the route's validator does not find its
    /// users in a directory: 500 (a wiring bug).
    NoUserRecord,
}

impl ExtractRejection {
    /// What kind of rejection this is.
    pub fn kind(&self) -> ExtractRejectionKind {
        self.kind
    }

    /// The response status.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            ExtractRejectionKind::MissingLayer | ExtractRejectionKind::NoUserRecord => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ExtractRejectionKind::Anonymous => StatusCode::UNAUTHORIZED,
            ExtractRejectionKind::NoPartner | ExtractRejectionKind::ClaimsShape => {
                StatusCode::FORBIDDEN
            }
        }
    }

    fn message(&self) -> &'static str {
        match self.kind {
            ExtractRejectionKind::MissingLayer => {
                "jwtgate: no JwtAuthLayer on this route; add `.route_layer(registry.layer(\"jwt_<validator>\")?)`"
            }
            ExtractRejectionKind::Anonymous => "this handler needs a bearer token",
            ExtractRejectionKind::NoPartner => "no partner matches the token",
            ExtractRejectionKind::ClaimsShape => "the token claims do not have the expected shape",
            ExtractRejectionKind::NoUserRecord => {
                "jwtgate: this route's validator has no directory user; use `user = { directory = \"email\" }`"
            }
        }
    }
}

impl fmt::Display for ExtractRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for ExtractRejection {}

impl ExtractRejection {
    /// The same [`Rejection`] the layer would answer with: one body shape and one challenge
    /// for every refusal, whoever makes it.
    pub fn rejection(&self) -> Rejection {
        let realm = self.realm.clone().unwrap_or_else(|| Arc::from("jwtgate"));
        match self.kind {
            ExtractRejectionKind::MissingLayer | ExtractRejectionKind::NoUserRecord => {
                Rejection::new(RejectionKind::Internal, self.message(), realm)
            }
            ExtractRejectionKind::Anonymous => {
                Rejection::new(RejectionKind::MissingCredentials, self.message(), realm)
            }
            ExtractRejectionKind::NoPartner | ExtractRejectionKind::ClaimsShape => {
                Rejection::new(RejectionKind::InsufficientScope, self.message(), realm)
            }
        }
    }
}

impl IntoResponse for ExtractRejection {
    fn into_response(self) -> Response {
        if self.status() == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!("{}", self.message());
        }
        self.rejection().into_response()
    }
}

fn reject(kind: ExtractRejectionKind, realm: Option<Arc<str>>) -> ExtractRejection {
    ExtractRejection { kind, realm }
}

/// The identity, `None` when anonymous, an error when the layer is missing.
fn identity(parts: &Parts) -> Result<Option<&Identity>, ExtractRejection> {
    match parts.extensions.get::<Identity>() {
        Some(identity) => Ok(Some(identity)),
        None if parts.extensions.get::<Anonymous>().is_some() => Ok(None),
        None => Err(reject(ExtractRejectionKind::MissingLayer, None)),
    }
}

fn required(parts: &Parts) -> Result<&Identity, ExtractRejection> {
    identity(parts)?.ok_or_else(|| ExtractRejection {
        kind: ExtractRejectionKind::Anonymous,
        realm: parts.extensions.get::<Anonymous>().map(|a| a.realm.clone()),
    })
}

macro_rules! extractor {
    ($ty:ty, |$id:ident| $get:expr) => {
        impl<S: Send + Sync> FromRequestParts<S> for $ty {
            type Rejection = ExtractRejection;

            async fn from_request_parts(
                parts: &mut Parts,
                _state: &S,
            ) -> Result<Self, Self::Rejection> {
                let $id = required(parts)?;
                Ok($get)
            }
        }

        impl<S: Send + Sync> OptionalFromRequestParts<S> for $ty {
            type Rejection = ExtractRejection;

            async fn from_request_parts(
                parts: &mut Parts,
                _state: &S,
            ) -> Result<Option<Self>, Self::Rejection> {
                Ok(identity(parts)?.map(|$id| $get))
            }
        }
    };
}

extractor!(Identity, |id| id.clone());
extractor!(Payload, |id| id.payload.clone());
extractor!(UserId, |id| id.user.clone());
extractor!(ValidatorName, |id| id.validator.clone());
extractor!(Scopes, |id| id.scopes());
extractor!(Roles, |id| id.roles());

impl<S: Send + Sync> FromRequestParts<S> for PartnerId {
    type Rejection = ExtractRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let identity = required(parts)?;
        identity.partner.ok_or_else(|| {
            reject(
                ExtractRejectionKind::NoPartner,
                Some(identity.realm.clone()),
            )
        })
    }
}

/// `Option<PartnerId>` is `None` for an anonymous request and for a token without a partner.
impl<S: Send + Sync> OptionalFromRequestParts<S> for PartnerId {
    type Rejection = ExtractRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(identity(parts)?.and_then(|id| id.partner))
    }
}

fn user_record(identity: &Identity) -> Result<UserRecord, ExtractRejection> {
    identity.record.as_deref().cloned().ok_or_else(|| {
        reject(
            ExtractRejectionKind::NoUserRecord,
            Some(identity.realm.clone()),
        )
    })
}

/// The directory's record of the user (id, email, names, `profile_complete`).
impl<S: Send + Sync> FromRequestParts<S> for UserRecord {
    type Rejection = ExtractRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        user_record(required(parts)?)
    }
}

/// `Option<UserRecord>` is `None` for an anonymous request.
impl<S: Send + Sync> OptionalFromRequestParts<S> for UserRecord {
    type Rejection = ExtractRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        identity(parts)?.map(user_record).transpose()
    }
}

fn claims<T: DeserializeOwned>(identity: &Identity) -> Result<Claims<T>, ExtractRejection> {
    identity.payload.deserialize().map(Claims).map_err(|e| {
        tracing::debug!(error = %e, "claims do not fit the handler's type");
        reject(
            ExtractRejectionKind::ClaimsShape,
            Some(identity.realm.clone()),
        )
    })
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Claims<T> {
    type Rejection = ExtractRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        claims(required(parts)?)
    }
}

impl<T: DeserializeOwned, S: Send + Sync> OptionalFromRequestParts<S> for Claims<T> {
    type Rejection = ExtractRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        identity(parts)?.map(claims).transpose()
    }
}

/// The access token of the request's sign-in session (see
/// [`session`](crate::session)): 401 without a session, 503 when the store cannot be read.
impl<S: Send + Sync> FromRequestParts<S> for crate::session::AccessToken {
    type Rejection = crate::session::AccessTokenError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Self::of(parts).await
    }
}

impl IntoResponse for crate::session::AccessTokenError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Self::Unavailable(e) => {
                tracing::warn!(error = %e, "session store unavailable for the access token");
                (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
            }
            _ => (StatusCode::UNAUTHORIZED, "invalid_token"),
        };
        let body = serde_json::json!({ "error": code, "error_description": self.to_string() });
        let mut res = (status, body.to_string()).into_response();
        let headers = res.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        headers.insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("5"),
            );
        } else {
            headers.insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        res
    }
}
