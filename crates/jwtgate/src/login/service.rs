//! The login, callback and logout routes as one tower service over one validator's login.

use std::fmt;
use std::sync::Arc;

use http::header::{LOCATION, SET_COOKIE};
use http::request::Parts;
use http::{Method, Response, StatusCode};

use super::{BrowserAnswer, CompiledLogin, SignIn, page, safe_path, url_decoded_pairs};

/// The login, callback and logout routes of one validator, as one tower service: made by
/// [`Registry::login_service`](crate::Registry::login_service). It answers
///
/// - `GET /auth/login?return_to=/path`: a redirect to the provider's login (every path here
///   is the default of [`LoginPaths`](super::LoginPaths); [`paths`](Self::paths) lists them);
/// - the path of the OIDC `redirect_uri` (`/auth/callback` by convention): the callback;
/// - `GET` or `POST /auth/logout`: revokes the session, clears jwtgate's cookies and
///   redirects to the provider's logout (`{"redirect_url": ...}` for XHR and JSON callers);
/// - `POST /auth/backchannel-logout` (OIDC logins): the provider's back-channel logout,
///   which revokes the sessions it names on every instance;
///
/// and 404 on any other path. With axum, mount it on each path:
///
/// ```
/// # fn app(registry: &jwtgate::Registry) -> Result<axum::Router, jwtgate::Error> {
/// let auth = registry.login_service("idp")?;
/// let app: axum::Router = axum::Router::new()
///     .route_service("/auth/login", auth.clone())
///     .route_service("/auth/callback", auth.clone())
///     .route_service("/auth/logout", auth.clone())
///     .route_service("/auth/backchannel-logout", auth);
/// # Ok(app)
/// # }
/// ```
#[derive(Clone)]
pub struct LoginService {
    site: Arc<dyn Site>,
}

/// What the sign-in routes need of the app: the validator that signs browsers in, its login,
/// and the realm. The registry implements it, so this module depends on nothing above it.
pub(crate) trait Site: Send + Sync + 'static {
    fn validator(&self) -> &dyn SignIn;
    fn login(&self) -> Option<&CompiledLogin>;
    fn realm(&self) -> &str;
    /// Where sign-outs are revoked.
    fn revoker(&self) -> &crate::revocation::Revoker;
    fn sessions(&self) -> &dyn crate::session::SessionStore;
}

impl fmt::Debug for LoginService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginService")
            .field("validator", &self.site.validator().name())
            .finish()
    }
}

/// The login route's path.
pub const LOGIN_PATH: &str = "/auth/login";
/// The logout route's path.
pub const LOGOUT_PATH: &str = "/auth/logout";

impl LoginService {
    pub(crate) fn new(site: Arc<dyn Site>) -> Self {
        Self { site }
    }

    /// The callback path of an OIDC login (`None` for a fronting provider).
    pub fn callback_path(&self) -> Option<&str> {
        self.login().and_then(CompiledLogin::callback_path)
    }

    /// Every path it answers, to mount it on: the sign-in and sign-out routes, and for an
    /// OIDC login the callback and the back-channel logout.
    pub fn paths(&self) -> Vec<&str> {
        let Some(login) = self.login() else {
            return Vec::new();
        };
        let paths = login.paths();
        let mut out = vec![paths.login_path(), paths.logout_path()];
        if let Some(callback) = login.callback_path() {
            out.push(callback);
            out.push(paths.backchannel_logout_path());
        }
        out
    }

    fn login(&self) -> Option<&CompiledLogin> {
        self.site.login()
    }

    /// Answers one request whose body is `body` (read only by the back-channel logout, at
    /// most 16 KiB; the [`Service`](tower_service::Service) impl reads it so).
    pub async fn handle_with_body(&self, parts: &Parts, body: &[u8]) -> Response<String> {
        if let Some(login) = self.login()
            && parts.uri.path() == login.paths().backchannel_logout_path()
            && parts.method == Method::POST
            && let Some(res) = login
                .backchannel_logout(self.site.validator(), self.site.revoker(), parts, body)
                .await
        {
            return res;
        }
        self.handle(parts).await
    }

    /// Answers one request (a back-channel logout needs its body: see
    /// [`handle_with_body`](Self::handle_with_body)).
    pub async fn handle(&self, parts: &Parts) -> Response<String> {
        let v = self.site.validator();
        let realm = self.site.realm();
        let Some(login) = self.login() else {
            return page(
                StatusCode::NOT_FOUND,
                "Not found",
                "No sign-in here.",
                realm,
            );
        };
        let path = parts.uri.path();
        if path == login.paths().logout_path()
            && (parts.method == Method::GET || parts.method == Method::POST)
        {
            return login
                .logout(v, self.site.revoker(), self.site.sessions(), parts, realm)
                .await;
        }
        if Some(path) == login.callback_path() && parts.method == Method::GET {
            return login.callback(v, self.site.sessions(), parts, realm).await;
        }
        if path == login.paths().login_path() && parts.method == Method::GET {
            let return_to = parts
                .uri
                .query()
                .map(url_decoded_pairs)
                .unwrap_or_default()
                .into_iter()
                .find(|(k, _)| k == "return_to")
                .map(|(_, v)| v)
                .filter(|v| safe_path(v).is_some())
                .unwrap_or_else(|| "/".to_owned());
            return match login.answer(v, &parts.headers, &return_to).await {
                (BrowserAnswer::Redirect(location), cookies) => {
                    let mut res = Response::new(String::new());
                    *res.status_mut() = StatusCode::FOUND;
                    res.headers_mut().insert(LOCATION, location);
                    for c in cookies {
                        res.headers_mut().append(SET_COOKIE, c);
                    }
                    res
                }
                (BrowserAnswer::Page, _) => page(
                    StatusCode::UNAUTHORIZED,
                    "Sign-in unavailable",
                    "The sign-in could not be started; try again in a minute.",
                    realm,
                ),
                (BrowserAnswer::Unavailable { retry_after }, _) => {
                    let mut res = page(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Sign-in unavailable",
                        "Sign-in is unavailable right now; try again in a minute.",
                        realm,
                    );
                    res.headers_mut()
                        .insert(http::header::RETRY_AFTER, retry_after.into());
                    res
                }
            };
        }
        page(
            StatusCode::NOT_FOUND,
            "Not found",
            "No such sign-in route.",
            realm,
        )
    }
}

impl<B> tower_service::Service<http::Request<B>> for LoginService
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<String>;
    type Error = std::convert::Infallible;
    type Future = crate::directory::BoxFuture<'static, Result<Response<String>, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let (parts, body) = req.into_parts();
        let this = self.clone();
        Box::pin(async move {
            let backchannel = this
                .login()
                .is_some_and(|l| parts.uri.path() == l.paths().backchannel_logout_path());
            if !backchannel || parts.method != Method::POST {
                return Ok(this.handle(&parts).await);
            }
            // Bounded: a body over the limit, or one that fails, is a 400.
            let limited = http_body_util::Limited::new(body, super::backchannel::MAX_BODY);
            match http_body_util::BodyExt::collect(limited).await {
                Ok(collected) => Ok(this.handle_with_body(&parts, &collected.to_bytes()).await),
                Err(_) => Ok(super::backchannel::invalid_request()),
            }
        })
    }
}
