//! The tower middleware: [`JwtAuthLayer`] holds configuration, [`JwtAuth`] checks requests,
//! a [`RejectionResponse`] writes refusals.
//!
//! Layer order: a layer sees the requests of what it wraps. With axum, `route_layer` adds the
//! layer to the routes above it only, so unknown paths still get 404; `Router::layer` wraps the
//! whole router, fallback included, so every unknown path becomes a 401 for an anonymous
//! client. Put tracing and CORS outside (added after) jwtgate, so that they see its refusals.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::get};
//! use jwtgate::{Algorithm, extract::Claims, KeySource, Registry, Validator, User};
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
//!             .user(User::claim("sub")),
//!     )
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/whoami", get(whoami))
//!     .route_layer(registry.layer("jwt_demo")?.require_scopes(["profile:read"]));
//!
//! // Requests through the router, as a test would send them:
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use tower::ServiceExt as _;
//! let res = app
//!     .oneshot(http::Request::get("/whoami").body(axum::body::Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(res.status(), 401);
//! assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"jwtgate\"");
//! # });
//! # Ok(())
//! # }
//! ```

mod preflight;
mod response;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::header::{ACCESS_CONTROL_REQUEST_METHOD, SET_COOKIE};
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument as _;

use self::preflight::Kind as PreflightKind;
pub use self::preflight::Preflight;
pub use response::{
    EmptyRejection, GrpcOrJsonRejection, GrpcRejection, JsonRejection, ProblemRejection,
    RejectionResponse,
};

use crate::authz::Requirement;
use crate::directory::BoxFuture;
use crate::engine::{Chain, Engine};
use crate::identity::Anonymous;
use crate::rejection::Rejection;

/// Authenticates requests for one auth mode. Made by [`Registry::layer`](crate::Registry::layer);
/// it holds only configuration (the shared engine, the chain it starts, its requirements and
/// its responder), so it is cheap to clone.
///
/// `R` writes refusals: [`GrpcOrJsonRejection`] by default (JSON, or gRPC status for gRPC
/// requests); change it with [`with_rejection_response`](Self::with_rejection_response).
#[derive(Clone)]
#[must_use]
pub struct JwtAuthLayer<R = GrpcOrJsonRejection> {
    /// Everything but the responder, behind one `Arc`: axum clones the layer and the service
    /// for every request of a router without state, so a clone is one reference count.
    config: Arc<LayerConfig>,
    responder: R,
}

#[derive(Clone)]
struct LayerConfig {
    engine: Arc<Engine>,
    chain: Chain,
    mode: Box<str>,
    preflight: Preflight,
    requirements: Vec<Requirement>,
}

impl<R> fmt::Debug for JwtAuthLayer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthLayer")
            .field("mode", &self.config.mode)
            .field("preflight", &self.config.preflight)
            .field("requirements", &self.config.requirements)
            .finish_non_exhaustive()
    }
}

impl JwtAuthLayer {
    pub(crate) fn new(engine: Arc<Engine>, chain: Chain, mode: String) -> Self {
        Self {
            config: Arc::new(LayerConfig {
                engine,
                chain,
                mode: mode.into(),
                preflight: Preflight::answer(),
                requirements: Vec::new(),
            }),
            responder: GrpcOrJsonRejection,
        }
    }
}

impl<R> JwtAuthLayer<R> {
    /// What CORS preflights get (default [`Preflight::answer`]: a 204 without calling the
    /// handler).
    pub fn preflight(mut self, preflight: Preflight) -> Self {
        Arc::make_mut(&mut self.config).preflight = preflight;
        self
    }

    /// Writes refusals with `responder` instead ([`JsonRejection`], [`ProblemRejection`],
    /// [`EmptyRejection`], [`GrpcRejection`] or a closure).
    pub fn with_rejection_response<R2>(self, responder: R2) -> JwtAuthLayer<R2> {
        JwtAuthLayer {
            config: self.config,
            responder,
        }
    }

    /// Adds a requirement an accepted token must meet; a failing one is a 403
    /// `insufficient_scope`. Anonymous requests on `public_or_jwt_` routes are not subject to
    /// requirements; authenticated ones are.
    pub fn require(mut self, requirement: Requirement) -> Self {
        Arc::make_mut(&mut self.config)
            .requirements
            .push(requirement);
        self
    }

    /// Requires every one of `scopes`.
    pub fn require_scopes<I: IntoIterator<Item = S>, S: Into<String>>(self, scopes: I) -> Self {
        self.require(Requirement::scopes(scopes))
    }

    /// Requires at least one of `scopes`.
    pub fn require_any_scope<I: IntoIterator<Item = S>, S: Into<String>>(self, scopes: I) -> Self {
        self.require(Requirement::any_scope(scopes))
    }

    /// Requires every one of `roles`.
    pub fn require_roles<I: IntoIterator<Item = T>, T: Into<crate::authz::Role>>(
        self,
        roles: I,
    ) -> Self {
        self.require(Requirement::roles(roles))
    }

    /// Requires at least one of `roles`.
    pub fn require_any_role<I: IntoIterator<Item = T>, T: Into<crate::authz::Role>>(
        self,
        roles: I,
    ) -> Self {
        self.require(Requirement::any_role(roles))
    }
}

impl<R> JwtAuthLayer<R> {
    /// Where a browser refused by this layer signs in: the path of its chain's first login.
    #[cfg(all(feature = "login", feature = "forward-auth"))]
    pub(crate) fn login_path(&self) -> Option<&str> {
        crate::engine::login_path(&self.config.engine, self.config.chain)
    }

    /// The realm of this layer's challenges.
    #[cfg_attr(not(feature = "forward-auth"), allow(dead_code))]
    pub(crate) fn realm(&self) -> &std::sync::Arc<str> {
        &self.config.engine.realm
    }
}

impl<S, R: Clone> Layer<S> for JwtAuthLayer<R> {
    type Service = JwtAuth<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        JwtAuth {
            inner,
            layer: self.clone(),
        }
    }
}

/// The middleware made by [`JwtAuthLayer`].
#[derive(Clone)]
pub struct JwtAuth<S, R = GrpcOrJsonRejection> {
    inner: S,
    layer: JwtAuthLayer<R>,
}

impl<S, R> JwtAuth<S, R> {
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

impl<S, R> fmt::Debug for JwtAuth<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuth")
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

impl<S, R, ReqBody, ResBody> Service<Request<ReqBody>> for JwtAuth<S, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    R: RejectionResponse<ResBody>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // The ready service handles this request; the clone waits for the next poll_ready.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let responder = self.layer.responder.clone();
        let config = &self.layer.config;
        if req.method() == Method::OPTIONS
            && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD)
        {
            match config.preflight.kind() {
                PreflightKind::Answer => {
                    return ResponseFuture::answered(inner, responder, preflight_answer());
                }
                // Browsers never send credentials on preflights: an anonymous request.
                PreflightKind::PassAnonymous => {
                    req.extensions_mut().insert(Anonymous {
                        realm: config.engine.realm.clone(),
                    });
                    return ResponseFuture::calling(inner, responder, req, None);
                }
                PreflightKind::Authenticate => {}
            }
        }
        let span = tracing::debug_span!(
            "jwtgate",
            mode = %config.mode,
            validator = tracing::field::Empty,
            outcome = tracing::field::Empty,
            keys_age_secs = tracing::field::Empty,
        );
        // Only the head goes into the boxed future; the body waits here, so it need not be
        // `Send` or `'static`.
        let (mut parts, body) = req.into_parts();
        let config = Arc::clone(config);
        let auth = async move {
            let LayerConfig {
                engine,
                chain,
                requirements,
                ..
            } = &*config;
            match engine.authorize(*chain, requirements, &mut parts).await {
                Ok(set_cookie) => Ok(Authenticated { parts, set_cookie }),
                Err(rejection) => Err(Refused { parts, rejection }),
            }
        }
        .instrument(span);
        ResponseFuture {
            state: State::Authenticating {
                auth: Box::pin(auth),
            },
            inner,
            responder,
            body: Some(body),
        }
    }
}

/// The head of a request that passed, and the cookie to set on its response (cookie mode).
struct Authenticated {
    parts: Parts,
    set_cookie: Option<HeaderValue>,
}

/// A refused request: its head (for the responder) and why.
struct Refused {
    parts: Parts,
    rejection: Rejection,
}

type AuthFuture = BoxFuture<'static, Result<Authenticated, Refused>>;

pin_project! {
    /// Response future of [`JwtAuth`]. The inner service is kept outside the state, as in
    /// tower-http's `AsyncRequireAuthorization`.
    pub struct ResponseFuture<S, B, R>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S::Future, S::Response>,
        inner: S,
        responder: R,
        // The request body, until the request passes.
        body: Option<B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, T> {
        Authenticating {
            auth: AuthFuture,
        },
        // A CORS preflight answered here.
        Answered {
            response: Option<T>,
        },
        Calling {
            #[pin]
            future: F,
            set_cookie: Option<HeaderValue>,
        },
    }
}

impl<S, B, R> ResponseFuture<S, B, R>
where
    S: Service<Request<B>>,
{
    fn calling(
        mut inner: S,
        responder: R,
        req: Request<B>,
        set_cookie: Option<HeaderValue>,
    ) -> Self {
        let future = inner.call(req);
        Self {
            state: State::Calling { future, set_cookie },
            inner,
            responder,
            body: None,
        }
    }
}

impl<S, B, R> ResponseFuture<S, B, R>
where
    S: Service<Request<B>>,
{
    fn answered(inner: S, responder: R, response: S::Response) -> Self {
        Self {
            state: State::Answered {
                response: Some(response),
            },
            inner,
            responder,
            body: None,
        }
    }
}

/// The answer to a CORS preflight that no CORS layer answered: 204, no `Access-Control-Allow-*`
/// header (so it grants nothing), `Vary` as a CORS answer would have it.
fn preflight_answer<B: Default>() -> Response<B> {
    let mut res = Response::new(B::default());
    *res.status_mut() = http::StatusCode::NO_CONTENT;
    res.headers_mut().insert(
        http::header::VARY,
        HeaderValue::from_static(
            "origin, access-control-request-method, access-control-request-headers",
        ),
    );
    res
}

impl<S, B, R> fmt::Debug for ResponseFuture<S, B, R>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, B, R, ResBody> Future for ResponseFuture<S, B, R>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    R: RejectionResponse<ResBody>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Authenticating { auth } => {
                    let Authenticated { parts, set_cookie } = match ready!(auth.as_mut().poll(cx)) {
                        Ok(done) => done,
                        Err(Refused { parts, rejection }) => {
                            let mut res = this.responder.respond(&parts, &rejection);
                            rejection.decorate(&mut res);
                            return Poll::Ready(Ok(res));
                        }
                    };
                    // The auth future completes once, so the body is still here.
                    let Some(body) = this.body.take() else {
                        unreachable!("a request body is taken once, when its request passes")
                    };
                    let future = this.inner.call(Request::from_parts(parts, body));
                    this.state.set(State::Calling { future, set_cookie });
                }
                StateProj::Answered { response } => {
                    let Some(res) = response.take() else {
                        unreachable!("a preflight's answer is given once")
                    };
                    return Poll::Ready(Ok(res));
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

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use tower::{ServiceExt as _, service_fn};

    use super::*;
    use crate::{Algorithm, CookieMode, Identity, KeySource, Registry, User, Validator};

    const SECRET: &str = "thesecret-of-at-least-32-bytes!!";

    /// Validator `v`: HS256, user 7, cookie mode `v_auth` over plain HTTP.
    fn validator(cookie: CookieMode) -> Validator {
        Validator::new("v")
            .issuer("i")
            .audience("a")
            .algorithm(Algorithm::HS256)
            .key(KeySource::secret(SECRET))
            .user(User::fixed(7))
            .cookie(cookie.secret(SECRET).secure(false))
    }

    fn registry_of(v: Validator) -> Registry {
        Registry::builder().validator(v).build().unwrap()
    }

    fn registry() -> Registry {
        registry_of(validator(CookieMode::new("v_auth")))
    }

    fn token() -> String {
        let exp = crate::jws::claims::now() + 60;
        jwtgate_test::mint(
            &jwtgate_test::TestKey::hmac(SECRET),
            "HS256",
            serde_json::json!({}),
            &serde_json::json!({"iss": "i", "aud": "a", "exp": exp}),
        )
    }

    /// An inner service that is neither `Send` nor `Sync` (it holds an `Rc`), answering with
    /// what the layer put in the request.
    fn echo()
    -> impl Service<Request<String>, Response = Response<String>, Error = Infallible> + Clone {
        let not_send = Rc::new(());
        service_fn(move |req: Request<String>| {
            let _keep = Rc::clone(&not_send);
            let who = match (
                req.extensions().get::<Identity>(),
                req.extensions().get::<Anonymous>(),
            ) {
                (Some(id), _) => format!("user {}", id.user_id()),
                (None, Some(_)) => "anonymous".to_owned(),
                (None, None) => "nothing".to_owned(),
            };
            std::future::ready(Ok::<_, Infallible>(Response::new(who)))
        })
    }

    use std::convert::Infallible;

    async fn call<R: RejectionResponse<String>>(
        layer: JwtAuthLayer<R>,
        req: Request<String>,
    ) -> Response<String> {
        layer.layer(echo()).oneshot(req).await.unwrap()
    }

    #[tokio::test]
    async fn the_service_contract_without_axum() {
        let r = registry();
        let layer = r
            .layer("jwt_v")
            .unwrap()
            .with_rejection_response(EmptyRejection);
        // Refused: status and challenge, an empty `String` body, the rejection attached.
        let res = call(layer.clone(), Request::new(String::new())).await;
        assert_eq!(res.status(), 401);
        assert!(res.body().is_empty());
        assert_eq!(
            res.headers()["www-authenticate"],
            "Bearer realm=\"jwtgate\""
        );
        assert!(res.extensions().get::<Rejection>().is_some());
        // Accepted: the identity reaches the inner service, cookie mode sets its cookie.
        let req = Request::get("/")
            .header("authorization", format!("Bearer {}", token()))
            .body(String::new())
            .unwrap();
        let res = call(layer.clone(), req).await;
        assert_eq!(res.body(), "user 7");
        assert!(
            res.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .starts_with("v_auth=")
        );
        // Preflight: answered here (204, the inner service never called), passed on as an
        // anonymous request when asked, or authenticated.
        let preflight = || {
            Request::options("/")
                .header("access-control-request-method", "GET")
                .body(String::new())
                .unwrap()
        };
        let res = call(layer.clone(), preflight()).await;
        assert_eq!((res.status().as_u16(), res.body().as_str()), (204, ""));
        assert!(res.headers().get("access-control-allow-origin").is_none());
        let passed = layer.clone().preflight(Preflight::pass_anonymous());
        assert_eq!(call(passed, preflight()).await.body(), "anonymous");
        let strict = layer.clone().preflight(Preflight::authenticate());
        assert_eq!(call(strict, preflight()).await.status(), 401);
        // The public mode lets anonymous requests through.
        let public = r
            .layer("public_or_jwt_v")
            .unwrap()
            .with_rejection_response(EmptyRejection);
        assert_eq!(
            call(public, Request::new(String::new())).await.body(),
            "anonymous"
        );
    }

    /// A validator with a fronting login, for the browser answers.
    #[cfg(feature = "login")]
    fn with_login() -> Registry {
        registry_of(
            validator(CookieMode::new("v_auth"))
                .login(crate::login::Login::url("https://login.example/start")),
        )
    }

    #[cfg(feature = "login")]
    #[tokio::test]
    async fn a_custom_responder_keeps_the_sign_in_redirect_and_each_cookie_is_set_once() {
        let custom = |_: &Parts, r: &Rejection| {
            let mut res = Response::new(format!("custom: {}", r.description()));
            *res.status_mut() = r.status();
            res
        };
        let navigation = || {
            Request::get("/page")
                .header("accept", "text/html")
                .body(String::new())
                .unwrap()
        };
        let layer = with_login().layer("jwt_v").unwrap();
        // This answered the custom 401 page: the login redirect was the responder's to write.
        let res = call(layer.clone().with_rejection_response(custom), navigation()).await;
        assert_eq!(res.status(), 302);
        let location = res.headers()["location"].to_str().unwrap();
        assert!(
            location.starts_with("https://login.example/start?redirect_url="),
            "{location}"
        );
        assert!(res.headers().get("www-authenticate").is_none());
        // The same with every shipped responder.
        let shipped = [
            call(layer.clone(), navigation()).await,
            call(
                layer.clone().with_rejection_response(JsonRejection),
                navigation(),
            )
            .await,
            call(
                layer.clone().with_rejection_response(EmptyRejection),
                navigation(),
            )
            .await,
        ];
        for res in shipped {
            assert_eq!(res.status(), 302);
            assert_eq!(res.headers()["location"], location);
            assert_eq!(res.headers().get_all("set-cookie").iter().count(), 1);
        }
        // An API call (not a navigation) with an expired session: one 401, the session
        // cleared once (the JSON responder and the layer both appended it).
        let now = crate::jws::claims::now();
        let expired = registry().engine().validators[0]
            .cookie
            .as_ref()
            .unwrap()
            .issue(
                &crate::jws::claim_set::ClaimSet::from_map(
                    serde_json::json!({"iss": "i", "aud": "a", "exp": now - 10})
                        .as_object()
                        .unwrap()
                        .clone(),
                ),
                &crate::cookie::SessionId::new().unwrap(),
                now - 20,
            );
        let cookie = expired
            .unwrap()
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let api = || {
            Request::get("/api")
                .header("cookie", &cookie)
                .body(String::new())
                .unwrap()
        };
        let answers = [
            call(layer.clone(), api()).await,
            call(layer.with_rejection_response(JsonRejection), api()).await,
        ];
        for res in answers {
            assert_eq!(res.status(), 401);
            let cookies: Vec<_> = res.headers().get_all("set-cookie").iter().collect();
            assert_eq!(cookies.len(), 1, "{cookies:?}");
            assert!(
                cookies[0]
                    .to_str()
                    .unwrap()
                    .starts_with("v_auth=; Path=/; Max-Age=0")
            );
        }
    }

    #[tokio::test]
    async fn cookie_mode_can_leave_bearer_calls_without_a_cookie() {
        let registry = |from_bearer| {
            registry_of(validator(
                CookieMode::new("v_auth").from_bearer(from_bearer),
            ))
        };
        let bearer = || {
            Request::get("/")
                .header("authorization", format!("Bearer {}", token()))
                .body(String::new())
                .unwrap()
        };
        // auth_jwt's behaviour by default: the bearer call starts a session.
        let res = call(registry(true).layer("jwt_v").unwrap(), bearer()).await;
        let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(cookie.starts_with("v_auth="), "{cookie}");
        // Off: the API call is answered without one...
        let off = registry(false).layer("jwt_v").unwrap();
        let res = call(off.clone(), bearer()).await;
        assert_eq!(res.body(), "user 7");
        assert!(res.headers().get("set-cookie").is_none());
        // ...while a session (here the one issued above) still refreshes itself.
        let session = cookie.split(';').next().unwrap().to_owned();
        let req = Request::get("/")
            .header("cookie", session)
            .body(String::new())
            .unwrap();
        let res = call(off, req).await;
        assert_eq!(res.body(), "user 7");
        assert!(
            res.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .starts_with("v_auth=")
        );
    }

    #[tokio::test]
    async fn request_bodies_need_not_be_send() {
        // An `Rc` body: only the request head enters the boxed (Send) authentication future.
        let inner = service_fn(|req: Request<Rc<str>>| {
            std::future::ready(Ok::<_, Infallible>(Response::new(
                req.into_body().to_string(),
            )))
        });
        let svc = registry()
            .layer("public_or_jwt_v")
            .unwrap()
            .with_rejection_response(EmptyRejection)
            .layer(inner);
        let res = svc
            .oneshot(Request::new(Rc::from("the body")))
            .await
            .unwrap();
        assert_eq!(res.body(), "the body");
    }

    #[tokio::test]
    async fn inner_service_accessors() {
        let layer = registry().layer("jwt_v").unwrap();
        let mut svc = layer.layer(7u8);
        assert_eq!(*svc.get_ref(), 7);
        *svc.get_mut() = 8;
        assert_eq!(svc.into_inner(), 8);
    }
}
