//! The tower middleware: [`JwtAuthLayer`] holds configuration, [`JwtAuth`] checks requests.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::get};
//! use jwtgate::{Algorithm, Claims, KeySource, Registry, Validator};
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
//!             .key(KeySource::secret("thesecret-of-at-least-32-bytes!!"))
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

use http::header::{ACCESS_CONTROL_REQUEST_METHOD, SET_COOKIE};
use http::{HeaderValue, Method, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::directory::BoxFuture;
use crate::engine::{Chain, Engine, Outcome};
use crate::identity::Anonymous;
use crate::rejection::Rejection;

/// Authenticates requests for one auth mode. Made by [`Registry::layer`](crate::Registry::layer);
/// it holds only configuration (the shared engine and the chain it starts), so it is cheap to
/// clone.
#[derive(Clone)]
#[must_use]
pub struct JwtAuthLayer {
    engine: Arc<Engine>,
    chain: Chain,
    allow_preflight: bool,
}

impl fmt::Debug for JwtAuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthLayer")
            .field(
                "validator",
                &&*self.engine.validators[self.chain.start].name,
            )
            .field("public", &self.chain.public)
            .field("allow_preflight", &self.allow_preflight)
            .finish()
    }
}

impl JwtAuthLayer {
    pub(crate) fn new(engine: Arc<Engine>, chain: Chain) -> Self {
        Self {
            engine,
            chain,
            allow_preflight: true,
        }
    }

    /// Whether CORS preflight requests (`OPTIONS` with `Access-Control-Request-Method`) pass
    /// without authentication (default `true`: browsers never send credentials on them). A
    /// preflight that passes reaches the handler as an anonymous request, even on a `jwt_`
    /// route.
    pub fn allow_preflight(mut self, allow: bool) -> Self {
        self.allow_preflight = allow;
        self
    }
}

impl<S> Layer<S> for JwtAuthLayer {
    type Service = JwtAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        JwtAuth {
            inner,
            layer: self.clone(),
        }
    }
}

/// The middleware made by [`JwtAuthLayer`].
#[derive(Clone)]
pub struct JwtAuth<S> {
    inner: S,
    layer: JwtAuthLayer,
}

impl<S> JwtAuth<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming the middleware.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S> fmt::Debug for JwtAuth<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuth")
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for JwtAuth<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
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
        let inner = std::mem::replace(&mut self.inner, clone);
        let engine = self.layer.engine.clone();
        let chain = self.layer.chain;
        if self.layer.allow_preflight
            && req.method() == Method::OPTIONS
            && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD)
        {
            // Browsers never send credentials on preflights; handlers see an anonymous request.
            req.extensions_mut().insert(Anonymous {
                realm: engine.realm.clone(),
            });
            return ResponseFuture::calling(inner, req, None);
        }
        let auth = Box::pin(async move {
            let (parts, body) = req.into_parts();
            let outcome = engine
                .authenticate(chain, &parts.headers, &parts.uri)
                .await?;
            let mut req = Request::from_parts(parts, body);
            Ok(match outcome {
                Outcome::Anonymous => {
                    req.extensions_mut().insert(Anonymous {
                        realm: engine.realm.clone(),
                    });
                    Authenticated {
                        req,
                        set_cookie: None,
                    }
                }
                Outcome::Authenticated {
                    identity,
                    set_cookie,
                } => {
                    req.extensions_mut().insert(identity);
                    Authenticated { req, set_cookie }
                }
            })
        });
        ResponseFuture {
            state: State::Authenticating { auth },
            inner,
        }
    }
}

/// A request that passed, and the cookie to set on its response (cookie mode).
struct Authenticated<B> {
    req: Request<B>,
    set_cookie: Option<HeaderValue>,
}

type AuthFuture<B> = BoxFuture<'static, Result<Authenticated<B>, Rejection>>;

pin_project! {
    /// Response future of [`JwtAuth`]. The inner service is kept outside the state, as in
    /// tower-http's `AsyncRequireAuthorization`.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S::Future, B>,
        inner: S,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Authenticating {
            auth: AuthFuture<B>,
        },
        Calling {
            #[pin]
            future: F,
            set_cookie: Option<HeaderValue>,
        },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn calling(mut inner: S, req: Request<B>, set_cookie: Option<HeaderValue>) -> Self {
        let future = inner.call(req);
        Self {
            state: State::Calling { future, set_cookie },
            inner,
        }
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
                StateProj::Authenticating { auth } => {
                    let Authenticated { req, set_cookie } = match ready!(auth.as_mut().poll(cx)) {
                        Ok(done) => done,
                        Err(rejection) => return Poll::Ready(Ok(rejection.into_response())),
                    };
                    let future = this.inner.call(req);
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
