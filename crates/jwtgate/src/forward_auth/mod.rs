//! Forward-auth: jwtgate as the auth service of a reverse proxy (nginx `auth_request`, Caddy
//! `forward_auth`, Traefik `forwardAuth`, Envoy `ext_authz`), so that it guards apps written
//! in any language with the same validators, modes, caches and revocations as a Rust app's
//! routes.
//!
//! The proxy sends a check request for every request it serves; [`ForwardAuth`] answers it:
//!
//! 1. the original request comes from `X-Forwarded-Method`, `-Uri`, `-Host`, `-Proto` (Traefik,
//!    Caddy) or `X-Original-Method`, `X-Original-URI` (nginx), believed only from a
//!    [`TrustedProxies`] peer; two families that disagree are refused;
//! 2. its path picks the route (exact, `{capture}`, or a prefix route `/app/*`; the longest
//!    wins); a path a proxy and an app could read differently (`/feed/../app`, `%2F`) and a
//!    path no route matches are 403: a gateway denies what it does not know;
//! 3. the route's layer judges the original request (its method, URI, headers, cookies):
//!    accepted is **200** with the identity in [`IdentityHeaders`]; refused is the layer's
//!    401/403/503 with `WWW-Authenticate`, `Retry-After` and the JSON body, and a browser that
//!    should sign in gets the login's 302 ([`SignInAnswer`]).
//!
//! # Example
//!
//! ```
//! use jwtgate::forward_auth::{ForwardAuth, Peer};
//! use jwtgate::{Algorithm, KeySource, Registry, User, Validator};
//!
//! # fn main() -> Result<(), jwtgate::Error> {
//! let registry = Registry::builder()
//!     .validator(
//!         Validator::new("demo")
//!             .issuer("https://issuer.example")
//!             .audience("my-api")
//!             .algorithm(Algorithm::HS256)
//!             .key(KeySource::secret("thesecret-of-at-least-32-bytes!!"))
//!             .user(User::claim("sub")),
//!     )
//!     .build()?;
//! let check = ForwardAuth::builder()
//!     .route("/app/*", registry.layer("jwt_demo")?)
//!     .route("/feed/*", registry.layer("public_or_jwt_demo")?)
//!     .build()?;
//!
//! // What nginx sends for `GET /app/x` without a token, from this machine:
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use tower::ServiceExt as _;
//! let mut req = http::Request::get("/auth/check")
//!     .header("x-original-uri", "/app/x")
//!     .body(())
//!     .unwrap();
//! req.extensions_mut().insert(Peer("127.0.0.1:50000".parse().unwrap()));
//! let res = check.clone().oneshot(req).await.unwrap();
//! assert_eq!(res.status(), 401);
//! assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"jwtgate\"");
//! # });
//! # Ok(())
//! # }
//! ```

mod answer;
mod original;
mod route_table;
mod trusted;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::header::{HOST, LOCATION, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_layer::Layer as _;
use tower_service::Service;

use self::answer::Accept;
pub use self::answer::IdentityHeaders;
use self::route_table::RouteTable;
#[cfg(feature = "config")]
pub(crate) use self::route_table::mount_paths;
pub use self::trusted::{Peer, TrustedProxies};
use crate::error::{Error, ErrorKind};
use crate::layer::{JsonRejection, JwtAuthLayer, RejectionResponse, ResponseFuture};
use crate::rejection::{Rejection, RejectionKind};

/// The header naming where a browser signs in, on a 401 answered with
/// [`SignInAnswer::Unauthorized`] (oauth2-proxy's name for the same thing).
pub const SIGN_IN_HEADER: HeaderName = HeaderName::from_static("x-auth-request-redirect");

/// How a check answers a browser navigation that should sign in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignInAnswer {
    /// The login's own answer: a 302 to the provider, with its cookies. Caddy, Traefik and
    /// Envoy pass it to the browser.
    #[default]
    Redirect,
    /// 401, with [`SIGN_IN_HEADER`] naming the login path and the path to come back to
    /// (`/auth/login?return_to=%2Fapp%2Fx`): nginx's `auth_request` cannot pass a 302, but
    /// its `error_page 401` can send the browser there.
    Unauthorized,
}

/// The forward-auth check, a tower service (`Request<B>` to `Response<String>`, never an
/// error). Made by [`ForwardAuth::builder`]; cheap to clone.
pub struct ForwardAuth<R = JsonRejection> {
    shared: Arc<Shared<R>>,
}

impl<R> Clone for ForwardAuth<R> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

struct Shared<R> {
    routes: RouteTable,
    /// Each route's layer, with the path of its login (for [`SignInAnswer::Unauthorized`]).
    layers: Vec<(JwtAuthLayer<R>, Option<Arc<str>>)>,
    trusted: TrustedProxies,
    accept: Accept,
    sign_in: SignInAnswer,
    responder: R,
    realm: Arc<str>,
    /// The check's own path, when checks below it carry the original path (Envoy).
    path: Option<Box<str>>,
}

impl<R> std::fmt::Debug for ForwardAuth<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardAuth")
            .field("routes", &self.shared.layers.len())
            .field("trusted", &self.shared.trusted)
            .field("headers", &self.shared.accept.0)
            .field("sign_in", &self.shared.sign_in)
            .finish_non_exhaustive()
    }
}

/// Builds a [`ForwardAuth`]: its routes, whom it trusts, how it names the identity.
#[must_use]
#[derive(Debug)]
pub struct ForwardAuthBuilder<R = JsonRejection> {
    routes: Vec<(String, JwtAuthLayer<R>)>,
    path: Option<Box<str>>,
    trusted: TrustedProxies,
    headers: IdentityHeaders,
    sign_in: SignInAnswer,
    responder: R,
}

impl ForwardAuth {
    /// A check with no routes yet (every path is 403 until one is added), trusting loopback
    /// peers, naming the identity as oauth2-proxy does.
    pub fn builder() -> ForwardAuthBuilder {
        ForwardAuthBuilder {
            routes: Vec::new(),
            path: None,
            trusted: TrustedProxies::loopback(),
            headers: IdentityHeaders::oauth2_proxy(),
            sign_in: SignInAnswer::Redirect,
            responder: JsonRejection,
        }
    }
}

impl<R: Clone> ForwardAuthBuilder<R> {
    /// Judges original paths under `path` with `layer` (its mode and requirements). `path` is
    /// exact (`/feed`), has axum captures (`/users/{id}`), or is a prefix route (`/app/*`:
    /// `/app/` and everything below it). Paths are matched percent-decoded, case-sensitively.
    pub fn route<R2>(mut self, path: impl Into<String>, layer: JwtAuthLayer<R2>) -> Self {
        let layer = layer.with_rejection_response(self.responder.clone());
        self.routes.push((path.into(), layer));
        self
    }

    /// The check's own path (`/auth/check`): a check at `/auth/check/app/x?y=1` then asks about
    /// `/app/x?y=1` in the check's own method, as Envoy's `ext_authz` asks (its
    /// `path_prefix` followed by the original path). Mount the service at both.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into().into());
        self
    }

    /// Whose forwarded headers are believed (default [`TrustedProxies::loopback`]).
    pub fn trusted_proxies(mut self, trusted: TrustedProxies) -> Self {
        self.trusted = trusted;
        self
    }

    /// The names of the identity headers (default [`IdentityHeaders::oauth2_proxy`]).
    pub fn identity_headers(mut self, headers: IdentityHeaders) -> Self {
        self.headers = headers;
        self
    }

    /// How a browser that should sign in is answered (default [`SignInAnswer::Redirect`]).
    pub fn sign_in(mut self, answer: SignInAnswer) -> Self {
        self.sign_in = answer;
        self
    }

    /// Writes refusals with `responder` (default [`JsonRejection`]). Whatever it writes, a
    /// refusal is never answered 2xx: a responder that would (gRPC's) gets the refusal's
    /// status, since a proxy lets every 2xx through.
    pub fn with_rejection_response<R2: Clone>(self, responder: R2) -> ForwardAuthBuilder<R2> {
        ForwardAuthBuilder {
            routes: self
                .routes
                .into_iter()
                .map(|(p, l)| (p, l.with_rejection_response(responder.clone())))
                .collect(),
            path: self.path,
            trusted: self.trusted,
            headers: self.headers,
            sign_in: self.sign_in,
            responder,
        }
    }

    /// The check; an error for a route path that cannot be routed or overlaps another, or
    /// identity headers named twice.
    pub fn build(self) -> Result<ForwardAuth<R>, Error> {
        self.headers.check()?;
        let mut routes = RouteTable::default();
        let mut layers = Vec::with_capacity(self.routes.len());
        let mut realm: Arc<str> = Arc::from("jwtgate");
        for (i, (path, layer)) in self.routes.into_iter().enumerate() {
            routes
                .insert(&path, i)
                .map_err(|message| Error::new(ErrorKind::Config, message))?;
            realm = Arc::clone(layer.realm());
            #[cfg(feature = "login")]
            let login = layer.login_path().map(Arc::from);
            #[cfg(not(feature = "login"))]
            let login = None;
            layers.push((layer, login));
        }
        Ok(ForwardAuth {
            shared: Arc::new(Shared {
                routes,
                layers,
                trusted: self.trusted,
                accept: Accept(Arc::new(self.headers)),
                sign_in: self.sign_in,
                responder: self.responder,
                realm,
                path: self.path,
            }),
        })
    }
}

impl<R> Shared<R> {
    /// Turns the check request into the original request, in place, and picks its route;
    /// the reason for a denial otherwise.
    fn route(&self, parts: &mut Parts) -> Result<usize, &'static str> {
        if !self.trusted.trusts(parts.extensions.get::<Peer>()) {
            // At debug, as other refusals: anyone who can reach the check could fill the log.
            // The answer's description says why, for whoever sets up the proxy.
            let peer = parts.extensions.get::<Peer>().map(|Peer(addr)| addr.ip());
            tracing::debug!(
                peer = ?peer,
                "forward-auth check from a peer that is not a trusted proxy: refused"
            );
            return Err(
                "the original request is believed only from a trusted proxy (trusted_proxies)",
            );
        }
        // Envoy's form: the original path and query after the check's own path.
        let in_path = self.path.as_deref().and_then(|own| {
            let rest = parts.uri.path().strip_prefix(own)?;
            rest.starts_with('/').then(|| {
                let start = own.len();
                &parts.uri.path_and_query().map_or("", |pq| pq.as_str())[start..]
            })
        });
        let original = original::read(&parts.headers, &parts.method, in_path)?;
        let index = {
            let path = original::route_path(original.uri.path())?;
            self.routes
                .at(&path)
                .ok_or("no route of the gateway matches this path")?
        };
        parts.method = original.method;
        parts.uri = original.uri;
        if let Some(host) = original.host {
            parts.headers.insert(HOST, host);
        }
        Ok(index)
    }
}

impl<B, R> Service<Request<B>> for ForwardAuth<R>
where
    R: RejectionResponse<String>,
{
    type Response = Response<String>;
    type Error = Infallible;
    type Future = ForwardAuthFuture<R>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // A check has no body worth reading: the proxy sends none.
        let (mut parts, _) = req.into_parts();
        let shared = &self.shared;
        match shared.route(&mut parts) {
            Ok(index) => {
                let (layer, login) = &shared.layers[index];
                // For a 401 sign-in answer: the login, and the original URI to come back to
                // (both shared, not copied: most checks pass).
                let sign_in = match shared.sign_in {
                    SignInAnswer::Unauthorized => login.clone().map(|l| (l, parts.uri.clone())),
                    SignInAnswer::Redirect => None,
                };
                let future = layer
                    .layer(shared.accept.clone())
                    .call(Request::from_parts(parts, ()));
                ForwardAuthFuture {
                    state: FutureState::Checking { future, sign_in },
                }
            }
            Err(why) => {
                let rejection =
                    Rejection::new(RejectionKind::GatewayDenied, why, Arc::clone(&shared.realm));
                let mut res = shared.responder.clone().respond(&parts, &rejection);
                rejection.decorate(&mut res);
                ForwardAuthFuture {
                    state: FutureState::Answered {
                        response: Some(res),
                    },
                }
            }
        }
    }
}

pin_project! {
    /// Response future of [`ForwardAuth`].
    pub struct ForwardAuthFuture<R> {
        #[pin]
        state: FutureState<R>,
    }
}

pin_project! {
    #[project = FutureStateProj]
    enum FutureState<R> {
        Answered { response: Option<Response<String>> },
        Checking {
            #[pin]
            future: ResponseFuture<Accept, (), R>,
            // The login path and the path to come back to, for a 401 sign-in answer.
            sign_in: Option<(Arc<str>, http::Uri)>,
        },
    }
}

impl<R> std::fmt::Debug for ForwardAuthFuture<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardAuthFuture").finish_non_exhaustive()
    }
}

impl<R: RejectionResponse<String>> Future for ForwardAuthFuture<R> {
    type Output = Result<Response<String>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            FutureStateProj::Answered { response } => {
                let Some(res) = response.take() else {
                    unreachable!("a check's answer is given once")
                };
                Poll::Ready(Ok(res))
            }
            FutureStateProj::Checking { future, sign_in } => {
                let Ok(mut res) = ready!(future.poll(cx));
                let refused = res
                    .extensions()
                    .get::<Rejection>()
                    .map(|r| (r.status(), r.challenge()));
                if let Some((status, challenge)) = refused {
                    if res.status().is_success() {
                        *res.status_mut() = status;
                    }
                    if res.status() == StatusCode::FOUND
                        && let Some((login, original)) = sign_in.take()
                    {
                        let return_to = crate::navigation::return_target(&original);
                        unauthorized_sign_in(&mut res, &login, return_to, status, challenge);
                    }
                }
                Poll::Ready(Ok(res))
            }
        }
    }
}

/// A sign-in redirect turned into a 401 naming the local login (nginx's answer): the cookies
/// the redirect would have set are dropped, since the login sets them again when the browser
/// gets there.
fn unauthorized_sign_in(
    res: &mut Response<String>,
    login: &str,
    return_to: &str,
    status: StatusCode,
    challenge: Option<HeaderValue>,
) {
    let location = format!(
        "{login}?return_to={}",
        crate::percent::encode_query_value(return_to)
    );
    let headers = res.headers_mut();
    headers.remove(LOCATION);
    headers.remove(http::header::SET_COOKIE);
    if let Ok(value) = HeaderValue::try_from(location) {
        headers.insert(SIGN_IN_HEADER, value);
    }
    if let Some(challenge) = challenge {
        headers.insert(WWW_AUTHENTICATE, challenge);
    }
    *res.status_mut() = if status == StatusCode::FOUND {
        StatusCode::UNAUTHORIZED
    } else {
        status
    };
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tower::ServiceExt as _;

    use super::*;
    use crate::directory::InMemoryDirectory;
    use crate::layer::GrpcRejection;
    use crate::{Algorithm, KeySource, Partner, Registry, User, Validator};

    const SECRET: &str = "thesecret-of-at-least-32-bytes!!";

    fn validator() -> Validator {
        Validator::new("v")
            .issuer("i")
            .audience("a")
            .algorithm(Algorithm::HS256)
            .key(KeySource::secret(SECRET))
            .user(User::claim("sub"))
            .partner(Partner::by_email())
    }

    fn registry(v: Validator) -> Registry {
        Registry::builder()
            .validator(v)
            .directory(InMemoryDirectory::new().with_partner(17, "mark@example.com"))
            .build()
            .unwrap()
    }

    fn token(claims: serde_json::Value) -> String {
        let mut all = json!({"iss": "i", "aud": "a", "exp": crate::jws::claims::now() + 60});
        all.as_object_mut()
            .unwrap()
            .extend(claims.as_object().unwrap().clone());
        jwtgate_test::mint(
            &jwtgate_test::TestKey::hmac(SECRET),
            "HS256",
            json!({}),
            &all,
        )
    }

    /// A check of `/app/*` (token required, scope `read` on `/app/admin/*`) and `/feed/*`
    /// (anonymous allowed).
    fn check(registry: &Registry) -> ForwardAuthBuilder {
        ForwardAuth::builder()
            .route("/app/*", registry.layer("jwt_v").unwrap())
            .route(
                "/app/admin/*",
                registry.layer("jwt_v").unwrap().require_scopes(["read"]),
            )
            .route("/feed/*", registry.layer("public_or_jwt_v").unwrap())
    }

    /// A check request from `peer` with `headers`.
    fn from(peer: Option<&str>, headers: &[(&str, &str)]) -> Request<()> {
        let mut req = Request::get("/auth/check");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = req.body(()).unwrap();
        if let Some(peer) = peer {
            req.extensions_mut().insert(Peer(peer.parse().unwrap()));
        }
        req
    }

    fn local(headers: &[(&str, &str)]) -> Request<()> {
        from(Some("127.0.0.1:40000"), headers)
    }

    async fn answer<R: RejectionResponse<String>>(
        check: &ForwardAuth<R>,
        req: Request<()>,
    ) -> Response<String> {
        check.clone().oneshot(req).await.unwrap()
    }

    fn error(res: &Response<String>) -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(res.body()).unwrap()["error"].clone()
    }

    #[tokio::test]
    async fn accepted_is_200_with_the_identity_and_refused_is_the_layers_answer() {
        let registry = registry(validator());
        let check = check(&registry).build().unwrap();
        let good = token(json!({"sub": "u1", "email": "mark@example.com", "scope": "read"}));
        let bearer = format!("Bearer {good}");
        let res = answer(
            &check,
            local(&[
                ("x-original-uri", "/app/x?y=1"),
                ("authorization", &bearer),
                // What a client forges never comes back: the answer is built from the token.
                ("x-auth-request-user", "admin"),
            ]),
        )
        .await;
        assert_eq!(res.status(), 200);
        let h = res.headers();
        assert_eq!(h["x-auth-request-user"], "u1");
        assert_eq!(h["x-auth-request-email"], "mark@example.com");
        assert_eq!(h["x-auth-request-validator"], "v");
        assert_eq!(h["x-auth-request-partner"], "17");
        assert_eq!(h["cache-control"], "no-store");
        assert!(
            h.get("x-envoy-auth-headers-to-remove").is_none(),
            "all four are set"
        );
        assert_eq!(res.body(), "");

        // No token on a jwt_ route: the layer's 401 and challenge.
        let res = answer(&check, local(&[("x-forwarded-uri", "/app/x")])).await;
        assert_eq!(res.status(), 401);
        assert_eq!(
            res.headers()["www-authenticate"],
            "Bearer realm=\"jwtgate\""
        );
        assert_eq!(error(&res), "missing_token");
        // A bad token, even on a public route.
        let res = answer(
            &check,
            local(&[
                ("x-forwarded-uri", "/feed/x"),
                ("authorization", "Bearer a.b.c"),
            ]),
        )
        .await;
        assert_eq!(res.status(), 401);
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("error=\"invalid_token\"")
        );
        // Anonymous on public_or_jwt_: 200 without identity, and Envoy told to remove all
        // four from the request (a client may have sent them).
        let res = answer(&check, local(&[("x-forwarded-uri", "/feed/x")])).await;
        assert_eq!(res.status(), 200);
        assert!(res.headers().get("x-auth-request-user").is_none());
        assert_eq!(
            res.headers()["x-envoy-auth-headers-to-remove"],
            "x-auth-request-user, x-auth-request-email, x-auth-request-validator, x-auth-request-partner"
        );
        // The longest route wins: /app/admin/* requires a scope the token lacks.
        let unscoped = format!("Bearer {}", token(json!({"sub": "u2"})));
        let res = answer(
            &check,
            local(&[
                ("x-forwarded-uri", "/app/admin/x"),
                ("authorization", &unscoped),
            ]),
        )
        .await;
        assert_eq!(res.status(), 403);
        assert_eq!(error(&res), "insufficient_scope");
        let res = answer(
            &check,
            local(&[("x-forwarded-uri", "/app/x"), ("authorization", &unscoped)]),
        )
        .await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["x-auth-request-user"], "u2");
        // No email in the token, so no partner either: those two are for Envoy to remove.
        assert_eq!(
            res.headers()["x-envoy-auth-headers-to-remove"],
            "x-auth-request-email, x-auth-request-partner"
        );
        // The method is the original's: a preflight is let through (the app answers CORS).
        let res = answer(
            &check,
            local(&[
                ("x-forwarded-uri", "/app/x"),
                ("x-forwarded-method", "OPTIONS"),
                ("access-control-request-method", "POST"),
            ]),
        )
        .await;
        assert_eq!(res.status(), 204);
    }

    #[tokio::test]
    async fn what_a_gateway_cannot_judge_is_denied() {
        let registry = registry(validator());
        let narrow = check(&registry).build().unwrap();
        let good = format!("Bearer {}", token(json!({"sub": "u1"})));
        let denied = [
            // Not from a trusted proxy (or no peer known).
            (
                from(Some("10.0.0.7:5000"), &[("x-forwarded-uri", "/feed/x")]),
                "trusted proxy",
            ),
            (
                from(None, &[("x-forwarded-uri", "/feed/x")]),
                "trusted proxy",
            ),
            // No route: even with a valid token.
            (
                local(&[("x-forwarded-uri", "/apps/x"), ("authorization", &good)]),
                "no route",
            ),
            (local(&[("x-forwarded-uri", "/app")]), "no route"),
            // The two families disagree: /app/x is never judged as the public /feed/x.
            (
                local(&[("x-original-uri", "/app/x"), ("x-forwarded-uri", "/feed/x")]),
                "different requests",
            ),
            // Paths the proxy and the app could read differently.
            (
                local(&[("x-forwarded-uri", "/feed/../app/x")]),
                "dot or empty",
            ),
            (
                local(&[("x-forwarded-uri", "/feed/%2e%2e/app/x")]),
                "dot or empty",
            ),
            (
                local(&[("x-forwarded-uri", "/feed%2F..%2Fapp")]),
                "dot or empty",
            ),
            (local(&[]), "neither X-Forwarded-Uri nor X-Original-URI"),
        ];
        for (req, why) in denied {
            let headers = format!("{:?}", req.headers());
            let res = answer(&narrow, req).await;
            assert_eq!(res.status(), 403, "{headers}");
            assert_eq!(error(&res), "access_denied", "{headers}");
            assert!(res.headers().get("www-authenticate").is_none());
            let body: serde_json::Value = serde_json::from_str(res.body()).unwrap();
            let description = body["error_description"].as_str().unwrap();
            assert!(description.contains(why), "{headers}: {description}");
        }
        // Other peers are believed once trusted; percent-escapes of plain letters are decoded.
        let wide = check(&registry)
            .trusted_proxies(TrustedProxies::networks(["10.0.0.0/8"]).unwrap())
            .build()
            .unwrap();
        let res = answer(
            &wide,
            from(Some("10.0.0.7:5000"), &[("x-forwarded-uri", "/%61pp/x")]),
        )
        .await;
        assert_eq!(res.status(), 401, "judged as /app/x");
    }

    #[tokio::test]
    async fn identity_values_cannot_inject_headers_and_names_can_change() {
        let registry = registry(validator());
        let check = check(&registry)
            .identity_headers(IdentityHeaders::oauth2_proxy().user("X-User").unwrap())
            .build()
            .unwrap();
        let evil = format!(
            "Bearer {}",
            token(json!({"sub": "u1\r\nX-Admin: yes", "email": "zoë@example.com"}))
        );
        let res = answer(
            &check,
            local(&[("x-forwarded-uri", "/app/x"), ("authorization", &evil)]),
        )
        .await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["x-user"], "u1%0D%0AX-Admin:%20yes");
        assert!(res.headers().get("x-admin").is_none());
        assert!(res.headers().get("x-auth-request-user").is_none());
        assert_eq!(
            res.headers()["x-auth-request-email"],
            "zo%C3%AB@example.com"
        );
        // No partner resolved: no partner header.
        assert!(res.headers().get("x-auth-request-partner").is_none());
    }

    #[tokio::test]
    async fn a_responder_that_answers_200_never_lets_a_refusal_through() {
        let registry = registry(validator());
        let check = check(&registry)
            .with_rejection_response(GrpcRejection)
            .build()
            .unwrap();
        let res = answer(
            &check,
            local(&[
                ("x-forwarded-uri", "/app/x"),
                ("content-type", "application/grpc"),
            ]),
        )
        .await;
        assert_eq!(res.status(), 401);
    }

    #[cfg(feature = "login")]
    #[tokio::test]
    async fn a_browser_is_sent_to_sign_in_by_302_or_for_nginx_by_a_401_naming_the_login() {
        let registry =
            registry(validator().login(crate::login::Login::url("https://login.example/start")));
        let navigation = || {
            local(&[
                ("x-forwarded-uri", "/app/x?y=1&z=2"),
                ("x-forwarded-host", "app.example"),
                ("x-forwarded-proto", "https"),
                ("accept", "text/html"),
            ])
        };
        let redirect = check(&registry).build().unwrap();
        let res = answer(&redirect, navigation()).await;
        assert_eq!(res.status(), 302);
        assert_eq!(
            res.headers()["location"],
            "https://login.example/start?redirect_url=%2Fapp%2Fx%3Fy%3D1%26z%3D2"
        );
        let nginx = check(&registry)
            .sign_in(SignInAnswer::Unauthorized)
            .build()
            .unwrap();
        let res = answer(&nginx, navigation()).await;
        assert_eq!(res.status(), 401);
        assert_eq!(
            res.headers()[SIGN_IN_HEADER],
            "/auth/login?return_to=%2Fapp%2Fx%3Fy%3D1%26z%3D2"
        );
        assert!(res.headers().get("location").is_none());
        assert!(res.headers().get("set-cookie").is_none());
        assert_eq!(
            res.headers()["www-authenticate"],
            "Bearer realm=\"jwtgate\""
        );
        // An API call is never sent to sign in, either way.
        for check in [&redirect, &nginx] {
            let res = answer(check, local(&[("x-forwarded-uri", "/app/x")])).await;
            assert_eq!(res.status(), 401);
            assert!(res.headers().get(SIGN_IN_HEADER).is_none());
            assert!(res.headers().get("location").is_none());
        }
    }

    #[tokio::test]
    async fn envoy_asks_with_the_original_path_after_the_checks_own() {
        let registry = registry(validator());
        let envoy = check(&registry).path("/auth/check").build().unwrap();
        let at = |target: &str, headers: &[(&str, &str)]| {
            let mut req = local(headers);
            *req.uri_mut() = target.parse().unwrap();
            *req.method_mut() = http::Method::POST;
            req
        };
        let bearer = format!("Bearer {}", token(json!({"sub": "u1"})));
        let res = answer(
            &envoy,
            at("/auth/check/app/x?y=1", &[("authorization", &bearer)]),
        )
        .await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["x-auth-request-user"], "u1");
        assert_eq!(
            answer(&envoy, at("/auth/check/app/x", &[])).await.status(),
            401
        );
        assert_eq!(
            answer(&envoy, at("/auth/check/feed/x", &[])).await.status(),
            200
        );
        // A family header that names another path than the check's is refused.
        let res = answer(
            &envoy,
            at("/auth/check/app/x", &[("x-forwarded-uri", "/feed/x")]),
        )
        .await;
        assert_eq!(res.status(), 403);
        // Not below the check's path: no original named.
        assert_eq!(
            answer(&envoy, at("/auth/checkapp/x", &[])).await.status(),
            403
        );
        // Without `path`, the check's path says nothing.
        let plain = check(&registry).build().unwrap();
        assert_eq!(
            answer(&plain, at("/auth/check/feed/x", &[])).await.status(),
            403
        );
    }

    #[test]
    fn bad_routes_are_errors_at_build() {
        let registry = registry(validator());
        let e = ForwardAuth::builder()
            .route("/app/*", registry.layer("jwt_v").unwrap())
            .route("/app/", registry.layer("jwt_v").unwrap())
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("overlaps the route"), "{e}");
    }
}
