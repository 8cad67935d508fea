//! Browser sign-in and sign-out.
//!
//! - **Fronting providers** (Cloudflare Access, oauth2-proxy-style gateways) set the token
//!   themselves; jwtgate only sends a browser that is not signed in to their login page
//!   ([`Login::url`]).
//! - **OIDC providers** that do not front the app (Keycloak, Auth0, Entra ID, Google, any
//!   issuer): jwtgate runs the authorization-code flow itself ([`Login::oidc`]): PKCE S256,
//!   `state` and `nonce` in a short-lived signed cookie bound to the validator, the code
//!   exchanged at the token endpoint, the ID token verified by the validator, and cookie mode's
//!   session cookie set.
//!
//! Only browser navigations (GET/HEAD, `Accept: text/html`, `Sec-Fetch-Mode: navigate` when
//! sent, no `X-Requested-With: XMLHttpRequest`) without any credential are redirected, and only
//! on `jwt_` routes; API calls, XHR and gRPC keep their 401. A present but invalid credential
//! gets a 401 HTML page, never a redirect, and a bounce cookie turns a third redirect within a
//! minute into that page: no loops. The return target is the request's own path and query,
//! never a URL from outside.

pub(crate) use crate::navigation::safe_path;
mod backchannel;
mod paths;
mod service;
mod session;
mod settings;
mod token_endpoint;

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HOST, LOCATION, SET_COOKIE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::credentials::cookie_value;
use crate::jws::claim_set::RawJson;
use crate::revocation::{Revocation, Revoker, Target};
use crate::session::SessionStore;
use crate::set_cookie::SetCookie;

pub use self::backchannel::BACKCHANNEL_LOGOUT_PATH;
pub use self::paths::LoginPaths;
pub(crate) use self::service::Site;
pub use self::service::{LOGIN_PATH, LOGOUT_PATH, LoginService};
pub(crate) use self::session::{ResumeError, Resumed};
pub use self::settings::{FrontingLogin, Login, Logout, OidcLogin};

/// How long a pending login (state, nonce, PKCE verifier) lives.
const PENDING_SECS: u64 = 600;
/// The bounce cookie: how many login redirects in the last minute.
pub(crate) const BOUNCE_COOKIE: &str = "jwtgate_bounce";
/// Redirects allowed within a minute before the 401 page is shown instead.
const MAX_BOUNCES: u32 = 2;

/// Which token a provider issued to the login's client is being verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientToken {
    /// The ID token of a sign-in (`aud` and `azp` the client).
    Id,
    /// A back-channel logout token (`aud` the client; its own `typ` rule).
    Logout,
}

/// What the sign-in flow needs of a validator; the compiled validator implements it, so this
/// module depends on nothing above it.
pub(crate) trait SignIn: Send + Sync {
    /// The validator's name.
    fn name(&self) -> &str;
    /// Its cookie mode, which holds OIDC sessions and signs pending logins.
    fn cookie_mode(&self) -> Option<&crate::cookie::CompiledCookieMode>;
    /// Verifies a token the provider issued to `client_id` (an ID token at the callback, a
    /// logout token at the back-channel logout); its claims.
    fn verify_client_token<'a>(
        &'a self,
        raw: &'a str,
        client_id: &'a str,
        kind: ClientToken,
    ) -> crate::directory::BoxFuture<
        'a,
        Result<std::sync::Arc<crate::jws::claim_set::ClaimSet>, crate::failure::Failure>,
    >;
    /// A session cookie's claims, id and (a sign-in's session) absolute end, when its
    /// signature holds and it has not ended (a sign-in's session due a refresh counts).
    fn read_session(&self, value: &str) -> Option<crate::cookie::VerifiedSession>;
}

/// A validator's compiled login.
pub(crate) struct CompiledLogin {
    kind: Kind,
    app_domain: Option<String>,
    logout: Option<Logout>,
    paths: LoginPaths,
}

enum Kind {
    Fronting { url: String, redirect_param: String },
    Oidc(Arc<OidcFlow>),
}

/// What the browser of a refused navigation gets.
/// Seconds a browser is asked to wait when the sign-in cannot be started.
const LOGIN_RETRY_AFTER_SECS: u64 = 10;

#[derive(Clone, Debug)]
pub(crate) enum BrowserAnswer {
    /// 302 to the login.
    Redirect(HeaderValue),
    /// The 401 page (credentials present but refused, or a redirect loop).
    Page,
    /// The sign-in cannot be started now (the provider cannot be reached): a 503 page.
    Unavailable { retry_after: u64 },
}

/// Whether the caller wants JSON rather than a redirect (XHR, `Accept: application/json`).
fn wants_json(headers: &HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    header("x-requested-with").is_some()
        || header(ACCEPT.as_str()).is_some_and(|a| a.contains("application/json"))
}

/// `url` with `param=value` appended, encoded once, whether `url` has a query or not.
fn with_param(url: &str, param: &str, value: &str) -> Option<String> {
    let mut url = Url::parse(url).ok()?;
    url.query_pairs_mut().append_pair(param, value);
    Some(url.into())
}

/// The app's host: the configured domain, else the request's `Host`.
fn app_host<'a>(app_domain: Option<&'a str>, headers: &'a HeaderMap) -> Option<&'a str> {
    app_domain
        .or_else(|| headers.get(HOST).and_then(|h| h.to_str().ok()))
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
}

/// `https`, or `http` for a loopback host (development and tests); `host` may carry a port.
fn scheme_for(host: &str) -> &'static str {
    let bare = host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    if crate::remote::is_loopback_host(bare) {
        "http"
    } else {
        "https"
    }
}

/// A pending authorization-code login, sealed in a cookie.
#[derive(Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    return_to: String,
    exp: u64,
}

fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

fn pkce_challenge(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Endpoints from the issuer's discovery document.
#[derive(Clone, Debug, Deserialize)]
struct Endpoints {
    authorization_endpoint: String,
    token_endpoint: String,
    end_session_endpoint: Option<String>,
    /// RFC 7009 (the refresh token is revoked there at sign-out).
    revocation_endpoint: Option<String>,
}

/// The authorization-code flow of one validator.
struct OidcFlow {
    issuer: String,
    client_id: String,
    client_secret: Option<Vec<u8>>,
    redirect_uri: Url,
    scopes: String,
    post_logout_redirect_uri: Option<String>,
    client: reqwest::Client,
    endpoints: Mutex<Option<Endpoints>>,
    /// Whole claims of sessions whose cookies carry only the registered ones, by store key,
    /// with the freshness they were read for.
    full_claims: moka::sync::Cache<String, (u64, Arc<crate::jws::claim_set::ClaimSet>)>,
}

impl OidcFlow {
    /// The discovery endpoints, fetched once (the lock is never held across the fetch).
    async fn endpoints(&self) -> Result<Endpoints, String> {
        if let Some(e) = self
            .endpoints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
        {
            return Ok(e);
        }
        let config = crate::remote::config_url(&self.issuer, "issuer")?;
        let found: Endpoints =
            crate::remote::document(&self.client, &self.issuer, &config, 256 * 1024)
                .await
                .map_err(|e| e.message)?;
        for endpoint in [
            Some(&found.authorization_endpoint),
            Some(&found.token_endpoint),
            found.end_session_endpoint.as_ref(),
            found.revocation_endpoint.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            crate::remote::endpoint(endpoint, "endpoint", &self.issuer).map_err(|e| e.message)?;
        }
        *self
            .endpoints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(found.clone());
        Ok(found)
    }

    /// The authorization request and the sealed pending login.
    async fn start(
        &self,
        validator: &dyn SignIn,
        return_to: &str,
    ) -> Result<(HeaderValue, HeaderValue), String> {
        let endpoints = self.endpoints().await?;
        let mode = validator
            .cookie_mode()
            .ok_or("OIDC login needs cookie mode")?;
        let (state, nonce, verifier) = (
            random_token().ok_or("no randomness")?,
            random_token().ok_or("no randomness")?,
            random_token().ok_or("no randomness")?,
        );
        let mut url = Url::parse(&endpoints.authorization_endpoint).map_err(|e| e.to_string())?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", self.redirect_uri.as_str())
            .append_pair("scope", &self.scopes)
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &pkce_challenge(&verifier))
            .append_pair("code_challenge_method", "S256");
        let pending = Pending {
            state,
            nonce,
            verifier,
            return_to: return_to.to_owned(),
            exp: crate::jws::claims::now() + PENDING_SECS,
        };
        let payload = serde_json::to_vec(&pending).map_err(|e| e.to_string())?;
        let cookie = mode
            .seal(&pending_cookie(validator.name()), &payload, PENDING_SECS)
            .ok_or("cannot seal the pending login")?;
        let location = HeaderValue::try_from(url.as_str()).map_err(|e| e.to_string())?;
        Ok((location, cookie))
    }
}

fn pending_cookie(validator: &str) -> String {
    format!("jwtgate_login_{validator}")
}

impl CompiledLogin {
    /// The answer to a navigation without credentials that should come back to `return_to`
    /// (a local path, see [`return_target`]): a redirect to the login, or the 401 page when
    /// the bounce cookie shows a loop.
    pub(crate) async fn answer(
        &self,
        validator: &dyn SignIn,
        headers: &HeaderMap,
        return_to: &str,
    ) -> (BrowserAnswer, Vec<HeaderValue>) {
        let bounces: u32 = cookie_value(headers, BOUNCE_COOKIE)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if bounces >= MAX_BOUNCES {
            tracing::info!(validator = %validator.name(), "login redirect loop stopped");
            return (BrowserAnswer::Page, Vec::new());
        }
        // A counter, not a credential: sent over plain HTTP too, so that a loop is stopped in
        // development as well.
        let bounce = SetCookie {
            name: BOUNCE_COOKIE,
            value: &(bounces + 1).to_string(),
            path: "/",
            max_age: 60,
            secure: false,
        }
        .header();
        let (location, extra) = match &self.kind {
            Kind::Fronting {
                url,
                redirect_param,
            } => {
                let url = if url.contains("{host}") {
                    let Some(host) = app_host(self.app_domain.as_deref(), headers) else {
                        return (BrowserAnswer::Page, Vec::new());
                    };
                    url.replace("{host}", host)
                } else {
                    url.clone()
                };
                match with_param(&url, redirect_param, return_to)
                    .and_then(|u| HeaderValue::try_from(u).ok())
                {
                    Some(location) => (location, None),
                    None => return (BrowserAnswer::Page, Vec::new()),
                }
            }
            Kind::Oidc(flow) => match flow.start(validator, return_to).await {
                Ok((location, pending)) => (location, Some(pending)),
                Err(e) => {
                    tracing::error!(validator = %validator.name(), error = %e, "cannot start the login");
                    return (
                        BrowserAnswer::Unavailable {
                            retry_after: LOGIN_RETRY_AFTER_SECS,
                        },
                        Vec::new(),
                    );
                }
            },
        };
        let cookies = bounce.into_iter().chain(extra).collect();
        (BrowserAnswer::Redirect(location), cookies)
    }

    /// The callback path of an OIDC login.
    /// Where its routes are.
    pub(crate) fn paths(&self) -> &LoginPaths {
        &self.paths
    }

    pub(crate) fn callback_path(&self) -> Option<&str> {
        match &self.kind {
            Kind::Oidc(flow) => Some(flow.redirect_uri.path()),
            Kind::Fronting { .. } => None,
        }
    }

    /// Resumes a sign-in's session whose cookie is no longer fresh (OIDC logins only: only
    /// they make such sessions).
    pub(crate) async fn resume(
        &self,
        validator: &dyn SignIn,
        sessions: &dyn SessionStore,
        claims: &crate::jws::claim_set::ClaimSet,
        session: &crate::cookie::StoredSession,
        now: u64,
    ) -> Result<Resumed, ResumeError> {
        match &self.kind {
            Kind::Oidc(flow) => flow.resume(validator, sessions, claims, session, now).await,
            Kind::Fronting { .. } => Err(ResumeError::Ended),
        }
    }

    /// The whole claims of a fresh sign-in's session whose cookie carries only the registered
    /// ones: from its record (cached for as long as the cookie is fresh).
    pub(crate) async fn full_claims(
        &self,
        validator: &dyn SignIn,
        sessions: &dyn SessionStore,
        session: &crate::cookie::StoredSession,
        fresh_until: u64,
    ) -> Result<Arc<crate::jws::claim_set::ClaimSet>, ResumeError> {
        match &self.kind {
            Kind::Oidc(flow) => {
                flow.full_claims(validator, sessions, session, fresh_until)
                    .await
            }
            Kind::Fronting { .. } => Err(ResumeError::Ended),
        }
    }

    /// Handles a back-channel logout (OIDC logins only: a fronting provider sends none).
    pub(crate) async fn backchannel_logout(
        &self,
        validator: &dyn SignIn,
        revoker: &Revoker,
        parts: &Parts,
        body: &[u8],
    ) -> Option<Response<String>> {
        let Kind::Oidc(flow) = &self.kind else {
            return None;
        };
        Some(backchannel::receive(validator, &flow.client_id, revoker, &parts.headers, body).await)
    }

    /// Handles the callback: `state` against the pending login, the code exchanged, the ID
    /// token verified by `validator`, the session cookie set.
    pub(crate) async fn callback(
        &self,
        validator: &dyn SignIn,
        sessions: &dyn SessionStore,
        parts: &Parts,
        realm: &str,
    ) -> Response<String> {
        let Kind::Oidc(flow) = &self.kind else {
            return page(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no sign-in callback here.",
                realm,
            );
        };
        let Some(mode) = validator.cookie_mode() else {
            return page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Sign-in unavailable",
                "The sign-in is misconfigured.",
                realm,
            );
        };
        let name = pending_cookie(validator.name());
        let clear_pending = mode.clear(&name);
        let with_clear = |mut res: Response<String>| {
            if let Some(c) = &clear_pending {
                res.headers_mut().append(SET_COOKIE, c.clone());
            }
            res
        };
        let query: Vec<(String, String)> =
            parts.uri.query().map(url_decoded_pairs).unwrap_or_default();
        let param = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let pending: Option<Pending> = cookie_value(&parts.headers, &name)
            .and_then(|v| mode.open(&name, v))
            .and_then(|p| serde_json::from_slice(&p).ok())
            .filter(|p: &Pending| p.exp > crate::jws::claims::now());
        let Some(pending) = pending else {
            tracing::debug!(validator = %validator.name(), "sign-in callback without a pending login");
            return with_clear(page(
                StatusCode::BAD_REQUEST,
                "Sign-in expired",
                "There is no sign-in in progress in this browser (or it took longer than ten minutes). Start again from the page you wanted.",
                realm,
            ));
        };
        if param("state") != Some(pending.state.as_str()) {
            tracing::debug!(validator = %validator.name(), "sign-in callback state mismatch");
            return with_clear(page(
                StatusCode::BAD_REQUEST,
                "Sign-in refused",
                "The sign-in response does not belong to this browser's sign-in.",
                realm,
            ));
        }
        let refused = |why: &str| {
            tracing::info!(validator = %validator.name(), reason = why, "sign-in refused");
            with_clear(page(
                StatusCode::UNAUTHORIZED,
                "Sign-in refused",
                why,
                realm,
            ))
        };
        if let Some(error) = param("error") {
            let error: String = error
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect();
            return refused(&format!(
                "The identity provider refused the sign-in ({error})."
            ));
        }
        let Some(code) = param("code") else {
            return refused("The identity provider sent no code.");
        };
        let mut tokens = match flow.exchange(code, &pending.verifier).await {
            Ok(t) => t,
            Err(e) => {
                tracing::info!(validator = %validator.name(), error = %e, "code exchange failed");
                return refused("The identity provider did not accept the sign-in code.");
            }
        };
        let Some(id_token) = tokens.id_token.take() else {
            tracing::info!(validator = %validator.name(), "token response has no id_token");
            return refused("The identity provider did not accept the sign-in code.");
        };
        let claims = match validator
            .verify_client_token(&id_token, &flow.client_id, ClientToken::Id)
            .await
        {
            Ok(claims) => claims,
            Err(f) => return refused(&format!("The ID token was refused: {}.", f.description())),
        };
        if claims
            .get("nonce")
            .and_then(crate::jws::claim_set::RawJson::as_str)
            .as_deref()
            != Some(pending.nonce.as_str())
        {
            return refused("The ID token does not belong to this sign-in (nonce).");
        }
        let now = crate::jws::claims::now();
        // A sign-in starts a new session: a new id, never one the browser brought, and a
        // record on the server (its tokens, sealed).
        let record = OidcFlow::record(tokens, id_token, &claims, mode, now);
        // Due a refresh at once is fine when it can refresh; else the sign-in is too late.
        let refreshable = mode.sessions.refresh && record.refresh_token.is_some();
        if record.fresh_until <= now && !refreshable {
            return refused("The ID token is about to expire.");
        }
        let Some(id) = crate::cookie::SessionId::new() else {
            return refused("The sign-in could not be completed.");
        };
        let key = crate::session::record::key(validator.name(), id.as_str());
        let saved = match mode.sealer.seal(&key, &record) {
            Some(sealed) => sessions.save(&key, &sealed, record.ends).await,
            None => Err(crate::session::StoreError::new("cannot seal the session")),
        };
        if let Err(e) = saved {
            tracing::warn!(validator = %validator.name(), error = %e, "sign-in's session not stored");
            let mut res = with_clear(page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in unavailable",
                "The sign-in cannot be completed right now; try again in a moment.",
                realm,
            ));
            res.headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from_static("5"));
            return res;
        }
        let stored = crate::cookie::StoredSession {
            id,
            ends: record.ends,
            seen: now,
            refreshed: None,
            by_ref: false,
        };
        let Some(session) = mode.issue_stored(&claims, &stored, record.fresh_until, now) else {
            return refused("The ID token is about to expire.");
        };
        let target = safe_path(&pending.return_to).unwrap_or("/");
        let mut res = redirect(target);
        res.headers_mut().append(SET_COOKIE, session);
        with_clear(res)
    }

    /// Logout: revokes the session (on every instance), clears jwtgate's cookies and sends
    /// the browser to the provider's logout (a JSON `{"redirect_url"}` for XHR and JSON
    /// callers). When the store cannot take the revocation, nothing is cleared: a 503 asks
    /// to try again, rather than a sign-out that only looks done.
    pub(crate) async fn logout(
        &self,
        validator: &dyn SignIn,
        revoker: &Revoker,
        sessions: &dyn SessionStore,
        parts: &Parts,
        realm: &str,
    ) -> Response<String> {
        let revoked = revoke_session(validator, revoker, &parts.headers).await;
        if let Err(e) = &revoked {
            tracing::warn!(validator = %validator.name(), error = %e, "sign-out not written");
            let mut res = if wants_json(&parts.headers) {
                json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &serde_json::json!({
                        "error": "temporarily_unavailable",
                        "error_description": "the sign-out cannot be recorded right now; try again",
                    }),
                )
            } else {
                page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Sign-out unavailable",
                    "The sign-out cannot be recorded right now; try again in a moment.",
                    realm,
                )
            };
            res.headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from_static("5"));
            return res;
        }
        // Revoked: its record goes, and its refresh token is revoked at the provider.
        let id_token = match (&self.kind, revoked.ok().flatten()) {
            (Kind::Oidc(flow), Some(id)) => flow.end(validator, sessions, &id).await,
            _ => None,
        };
        let host = app_host(self.app_domain.as_deref(), &parts.headers);
        let home = host.map(|h| format!("{}://{h}/", scheme_for(h)));
        let target = match (&self.logout, &self.kind) {
            (Some(l), _) => {
                let url = host.map_or(l.url.clone(), |h| l.url.replace("{host}", h));
                match (&l.redirect_param, &home) {
                    (Some(p), Some(home)) => with_param(&url, p, home),
                    _ => Some(url),
                }
            }
            (None, Kind::Oidc(flow)) => match flow.endpoints().await {
                Ok(Endpoints {
                    end_session_endpoint: Some(end),
                    ..
                }) => {
                    let mut url = Url::parse(&end).ok();
                    if let Some(url) = &mut url {
                        let mut q = url.query_pairs_mut();
                        q.append_pair("client_id", &flow.client_id);
                        if let Some(after) = &flow.post_logout_redirect_uri {
                            q.append_pair("post_logout_redirect_uri", after);
                        }
                        // RP-Initiated Logout 1.0: the hint names the session to end.
                        if let Some(hint) = &id_token {
                            q.append_pair("id_token_hint", hint);
                        }
                    }
                    url.map(String::from)
                }
                _ => None,
            },
            (None, Kind::Fronting { url, .. }) if url.contains("/cdn-cgi/access/") => {
                host.map(|h| format!("{}://{h}/cdn-cgi/access/logout", scheme_for(h)))
            }
            (None, Kind::Fronting { .. }) => None,
        }
        .unwrap_or_else(|| "/".to_owned());
        let mut res = if wants_json(&parts.headers) {
            json(
                StatusCode::OK,
                &serde_json::json!({ "redirect_url": target }),
            )
        } else {
            redirect(&target)
        };
        let cookies = validator.cookie_mode().map(|m| (m, m.name.clone()));
        if let Some((mode, name)) = cookies {
            for name in [
                name,
                pending_cookie(validator.name()),
                BOUNCE_COOKIE.to_owned(),
            ] {
                if let Some(c) = mode.clear(&name) {
                    res.headers_mut().append(SET_COOKIE, c);
                }
            }
        } else if let Some(c) = (SetCookie {
            name: BOUNCE_COOKIE,
            value: "",
            path: "/",
            max_age: 0,
            secure: false,
        })
        .header()
        {
            res.headers_mut().append(SET_COOKIE, c);
        }
        res
    }
}

/// Revokes the session whose cookie the request carries (none, or one that no longer holds:
/// nothing to revoke); its id. It stays revoked until the cookie would have ended (a sign-in's
/// session: until its absolute timeout).
async fn revoke_session(
    validator: &dyn SignIn,
    revoker: &Revoker,
    headers: &HeaderMap,
) -> Result<Option<crate::cookie::SessionId>, crate::Error> {
    let Some(mode) = validator.cookie_mode() else {
        return Ok(None);
    };
    let Some(crate::cookie::VerifiedSession { claims, id, ends }) =
        cookie_value(headers, &mode.name).and_then(|v| validator.read_session(v))
    else {
        return Ok(None);
    };
    let claim = |name| claims.get(name).and_then(RawJson::as_str);
    let Some(issuer) = claim("iss") else {
        return Ok(None);
    };
    let until = ends.unwrap_or_else(|| {
        claims
            .get("exp")
            .and_then(RawJson::as_f64)
            .map_or(u64::MAX, |t| t.max(0.0).ceil() as u64)
    });
    // A cookie from before session ids: its ID token, by `jti`, if it has one.
    let target = match (&id, claim("jti")) {
        (Some(id), _) => Target::Session(id.as_str().to_owned()),
        (None, Some(jti)) => Target::Token(jti.into_owned()),
        (None, None) => return Ok(None),
    };
    revoker
        .write(Revocation::new(issuer.into_owned(), target, until))
        .await?;
    Ok(id)
}

/// The sign-in routes' query pairs (at most 32), decoded strictly.
pub(crate) fn url_decoded_pairs(query: &str) -> Vec<(String, String)> {
    crate::percent::query_pairs(query, 32)
}

fn redirect(location: &str) -> Response<String> {
    let mut res = Response::new(String::new());
    *res.status_mut() = StatusCode::FOUND;
    if let Ok(v) = HeaderValue::try_from(location) {
        res.headers_mut().insert(LOCATION, v);
    }
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A JSON answer of the sign-in routes: never cached.
fn json(status: StatusCode, value: &serde_json::Value) -> Response<String> {
    let mut res = Response::new(value.to_string());
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

use crate::rejection::page_html;

pub(crate) fn page(status: StatusCode, title: &str, text: &str, realm: &str) -> Response<String> {
    let mut res = Response::new(page_html(title, text));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED
        && let Ok(v) = HeaderValue::try_from(format!("Bearer realm=\"{realm}\""))
    {
        res.headers_mut().insert(http::header::WWW_AUTHENTICATE, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_encoded_once_whatever_the_url_holds() {
        assert_eq!(
            with_param("https://t.example/login", "redirect_url", "/a?b=c&d").unwrap(),
            "https://t.example/login?redirect_url=%2Fa%3Fb%3Dc%26d"
        );
        assert_eq!(
            with_param("https://t.example/login/app?kid=abc", "redirect_url", "/x").unwrap(),
            "https://t.example/login/app?kid=abc&redirect_url=%2Fx"
        );
    }

    #[test]
    fn pkce_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn pages_escape_what_they_show() {
        let html = page_html("T", "<script>x</script>");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }
}
