//! The tower middleware: [`JwtAuthLayer`] holds configuration, [`JwtAuth`] checks requests.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::get};
//! use jwtgate::{Algorithm, Claims, Registry, Validator};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Me {
//!     sub: String,
//! }
//!
//! async fn whoami(Claims(me): Claims<Me>) -> String {
//!     me.sub
//! }
//!
//! # fn main() -> Result<(), jwtgate::Error> {
//! let registry = Registry::builder()
//!     .validator(
//!         Validator::new("demo")
//!             .issuer("theissuer")
//!             .audience("my-api")
//!             .algorithm(Algorithm::HS256)
//!             .secret("thesecret-of-at-least-32-bytes!!")
//!             .user_from_claim("sub"),
//!     )
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/whoami", get(whoami))
//!     .route_layer(registry.layer("jwt_demo")?);
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures_util::future::BoxFuture;
use http::header::{ACCESS_CONTROL_REQUEST_METHOD, SET_COOKIE};
use http::{HeaderValue, Method, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::auth::Outcome;
use crate::identity::Anonymous;
use crate::registry::Registry;
use crate::rejection::Rejection;

/// Authenticates requests for one auth mode. Made by [`Registry::layer`]; cheap to clone.
#[derive(Clone)]
pub struct JwtAuthLayer {
    state: Arc<LayerState>,
}

struct LayerState {
    registry: Registry,
    start: usize,
    public: bool,
    allow_preflight: bool,
}

impl fmt::Debug for JwtAuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.state;
        f.debug_struct("JwtAuthLayer")
            .field("validator", &&*s.registry.inner.validators[s.start].name)
            .field("public", &s.public)
            .field("allow_preflight", &s.allow_preflight)
            .finish()
    }
}

impl JwtAuthLayer {
    pub(crate) fn new(registry: Registry, start: usize, public: bool) -> Self {
        Self {
            state: Arc::new(LayerState {
                registry,
                start,
                public,
                allow_preflight: true,
            }),
        }
    }

    /// Whether CORS preflight requests (`OPTIONS` with `Access-Control-Request-Method`) pass
    /// without authentication (default `true`: browsers never send credentials on them).
    #[must_use]
    pub fn allow_preflight(self, allow: bool) -> Self {
        let s = &self.state;
        Self {
            state: Arc::new(LayerState {
                registry: s.registry.clone(),
                start: s.start,
                public: s.public,
                allow_preflight: allow,
            }),
        }
    }
}

impl<S> Layer<S> for JwtAuthLayer {
    type Service = JwtAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        JwtAuth {
            inner,
            state: self.state.clone(),
        }
    }
}

/// The middleware made by [`JwtAuthLayer`].
#[derive(Clone)]
pub struct JwtAuth<S> {
    inner: S,
    state: Arc<LayerState>,
}

impl<S> fmt::Debug for JwtAuth<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuth").finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for JwtAuth<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // The ready service handles this request; the clone waits for the next poll_ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        if state.allow_preflight
            && req.method() == Method::OPTIONS
            && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD)
        {
            // Browsers never send credentials on preflights; handlers see an anonymous request.
            let realm = state.registry.inner.realm.clone();
            req.extensions_mut().insert(Anonymous { realm });
            return ResponseFuture {
                state: State::Calling {
                    future: inner.call(req),
                    set_cookie: None,
                },
            };
        }
        let auth = Box::pin(async move {
            let s = &state;
            let outcome = s
                .registry
                .inner
                .authenticate(s.start, s.public, req.headers())
                .await?;
            Ok(match outcome {
                Outcome::Anonymous => {
                    let realm = s.registry.inner.realm.clone();
                    req.extensions_mut().insert(Anonymous { realm });
                    (req, None)
                }
                Outcome::Authenticated {
                    identity,
                    set_cookie,
                } => {
                    req.extensions_mut().insert(identity);
                    (req, set_cookie)
                }
            })
        });
        ResponseFuture {
            state: State::Authenticating {
                auth,
                inner: Some(inner),
            },
        }
    }
}

type AuthFuture<B> = BoxFuture<'static, Result<(Request<B>, Option<HeaderValue>), Rejection>>;

pin_project! {
    /// Response future of [`JwtAuth`].
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        Authenticating {
            auth: AuthFuture<B>,
            inner: Option<S>,
        },
        Calling {
            #[pin]
            future: S::Future,
            set_cookie: Option<HeaderValue>,
        },
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: From<String>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Authenticating { auth, inner } => {
                    let (req, set_cookie) = match ready!(auth.as_mut().poll(cx)) {
                        Ok(done) => done,
                        Err(rejection) => return Poll::Ready(Ok(rejection.into_response())),
                    };
                    let Some(mut inner) = inner.take() else {
                        unreachable!("ResponseFuture polled after the inner service was taken")
                    };
                    let future = inner.call(req);
                    this.state.set(State::Calling { future, set_cookie });
                }
                StateProj::Calling { future, set_cookie } => {
                    let mut res = ready!(future.poll(cx))?;
                    if let Some(cookie) = set_cookie.take() {
                        res.headers_mut().append(SET_COOKIE, cookie);
                    }
                    return Poll::Ready(Ok(res));
                }
            }
        }
    }
}
