//! The login's settings as an app writes them: a fronting provider's page or the OIDC flow,
//! each with only the options it takes, and a provider's logout page. They compile into the
//! `CompiledLogin` the routes run.

use std::fmt;
use std::sync::{Arc, Mutex};

use reqwest::Url;

use super::{CompiledLogin, Kind, LoginPaths, OidcFlow};
use crate::error::{Error, ErrorKind};
use crate::secret::Secret;

/// How a validator signs browsers in.
#[derive(Clone)]
#[must_use]
pub struct Login {
    kind: LoginKind,
    app_domain: Option<String>,
    paths: LoginPaths,
}

#[derive(Clone)]
enum LoginKind {
    Url {
        url: String,
        redirect_param: String,
    },
    Oidc {
        client_id: String,
        client_secret: Option<Secret>,
        redirect_uri: String,
        scopes: Vec<String>,
        post_logout_redirect_uri: Option<String>,
    },
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            LoginKind::Url {
                url,
                redirect_param,
            } => f
                .debug_struct("Login")
                .field("url", url)
                .field("redirect_param", redirect_param)
                .finish(),
            LoginKind::Oidc {
                client_id,
                redirect_uri,
                ..
            } => f
                .debug_struct("Login")
                .field("client_id", client_id)
                .field("redirect_uri", redirect_uri)
                .finish_non_exhaustive(),
        }
    }
}

impl Login {
    /// A fronting provider's login page; the return path is added as `redirect_param`
    /// (default `redirect_url`). `{host}` in `url` becomes the app's host (see
    /// [`app_domain`](FrontingLogin::app_domain)).
    pub fn url(url: impl Into<String>) -> FrontingLogin {
        FrontingLogin(Self {
            kind: LoginKind::Url {
                url: url.into(),
                redirect_param: "redirect_url".into(),
            },
            app_domain: None,
            paths: LoginPaths::new(),
        })
    }

    /// The authorization-code flow against the validator's issuer (endpoints from its
    /// discovery document), for the client `client_id`, coming back to `redirect_uri` (whose
    /// path is the callback route, `/auth/callback` by convention).
    pub fn oidc(client_id: impl Into<String>, redirect_uri: impl Into<String>) -> OidcLogin {
        OidcLogin(Self {
            kind: LoginKind::Oidc {
                client_id: client_id.into(),
                client_secret: None,
                redirect_uri: redirect_uri.into(),
                scopes: vec!["openid".into(), "email".into(), "profile".into()],
                post_logout_redirect_uri: None,
            },
            app_domain: None,
            paths: LoginPaths::new(),
        })
    }

    /// The client id of an OIDC login (the ID token's audience).
    pub(crate) fn client_id(&self) -> Option<&str> {
        match &self.kind {
            LoginKind::Oidc { client_id, .. } => Some(client_id),
            LoginKind::Url { .. } => None,
        }
    }

    /// Checks the settings; `issuer` is the validator's (for discovery), `http` how the
    /// provider is reached.
    pub(crate) fn compile(
        &self,
        issuer: &str,
        logout: Option<&Logout>,
        http: &crate::remote::HttpClient,
    ) -> Result<CompiledLogin, Error> {
        let bad = |field, what: String| Error::new(ErrorKind::InvalidSetting, what).in_field(field);
        let absolute = |field, url: &str| -> Result<Url, Error> {
            let parsed = Url::parse(&url.replace("{host}", "host.invalid"))
                .map_err(|e| bad(field, format!("{url:?} is not an absolute URL: {e}")))?;
            if !matches!(parsed.scheme(), "https" | "http") {
                return Err(bad(field, format!("{url:?} must be http(s)")));
            }
            Ok(parsed)
        };
        let kind = match &self.kind {
            LoginKind::Url {
                url,
                redirect_param,
            } => {
                absolute("login.url", url)?;
                if redirect_param.is_empty() {
                    return Err(bad("login.redirect_param", "must not be empty".into()));
                }
                Kind::Fronting {
                    url: url.clone(),
                    redirect_param: redirect_param.clone(),
                }
            }
            LoginKind::Oidc {
                client_id,
                client_secret,
                redirect_uri,
                scopes,
                post_logout_redirect_uri,
            } => {
                if client_id.is_empty() {
                    return Err(bad("login.client_id", "must not be empty".into()));
                }
                let redirect_uri = absolute("login.redirect_uri", redirect_uri)?;
                if let Some(uri) = post_logout_redirect_uri {
                    absolute("login.post_logout_redirect_uri", uri)?;
                }
                let client_secret = client_secret
                    .as_ref()
                    .map(|s| {
                        s.resolve()
                            .map_err(|e| e.in_field("login.client_secret_env"))
                    })
                    .transpose()?;
                let client = http.login_client().map_err(|e| e.in_field("login"))?;
                Kind::Oidc(Arc::new(OidcFlow {
                    issuer: issuer.to_owned(),
                    client_id: client_id.clone(),
                    client_secret,
                    redirect_uri,
                    scopes: scopes.join(" "),
                    post_logout_redirect_uri: post_logout_redirect_uri.clone(),
                    client,
                    endpoints: Mutex::new(None),
                    full_claims: moka::sync::Cache::builder()
                        .max_capacity(10_000)
                        .time_to_live(std::time::Duration::from_secs(300))
                        .build(),
                }))
            }
        };
        let logout = logout
            .map(|l| -> Result<_, Error> {
                absolute("logout.url", &l.url)?;
                Ok(l.clone())
            })
            .transpose()?;
        let callback = match &kind {
            Kind::Oidc(flow) => Some(flow.redirect_uri.path()),
            Kind::Fronting { .. } => None,
        };
        self.paths.check(callback)?;
        Ok(CompiledLogin {
            kind,
            app_domain: self.app_domain.clone(),
            logout,
            paths: self.paths.clone(),
        })
    }
}

/// A provider's logout page, for providers whose logout is not found otherwise.
#[derive(Clone, Debug)]
#[must_use]
pub struct Logout {
    pub(super) url: String,
    pub(super) redirect_param: Option<String>,
}

impl Logout {
    /// Sends the browser to `url` on logout (`{host}` is the app's host).
    pub fn url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            redirect_param: None,
        }
    }

    /// Adds the app's home page as this query parameter (`returnTo`, `redirect_url`, ...).
    pub fn redirect_param(mut self, param: impl Into<String>) -> Self {
        self.redirect_param = Some(param.into());
        self
    }
}

/// A fronting provider's login page (Cloudflare Access, an identity-aware proxy); made by
/// [`Login::url`], used wherever a [`Login`] is.
#[derive(Clone, Debug)]
#[must_use]
pub struct FrontingLogin(Login);

impl FrontingLogin {
    /// The query parameter that carries the return path to a fronting login page.
    pub fn redirect_param(mut self, param: impl Into<String>) -> Self {
        if let LoginKind::Url { redirect_param, .. } = &mut self.0.kind {
            *redirect_param = param.into();
        }
        self
    }

    /// The app's public host, for `{host}` in login and logout URLs (default: the request's
    /// `Host`).
    pub fn app_domain(mut self, host: impl Into<String>) -> Self {
        self.0.app_domain = Some(host.into());
        self
    }
}

impl FrontingLogin {
    /// Where its sign-in and sign-out routes are (default [`LoginPaths::new`]).
    pub fn paths(mut self, paths: LoginPaths) -> Self {
        self.0.paths = paths;
        self
    }
}

impl From<FrontingLogin> for Login {
    fn from(login: FrontingLogin) -> Self {
        login.0
    }
}

/// The OpenID Connect authorization-code flow (PKCE, state, nonce) against the validator's
/// issuer; made by [`Login::oidc`], used wherever a [`Login`] is.
#[derive(Clone, Debug)]
#[must_use]
pub struct OidcLogin(Login);

impl OidcLogin {
    /// The client secret (client_secret_basic); without one the client is public and PKCE
    /// alone protects the code.
    pub fn client_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        if let LoginKind::Oidc { client_secret, .. } = &mut self.0.kind {
            *client_secret = Some(Secret::Inline(secret.into()));
        }
        self
    }

    /// The client secret, read from an environment variable when the registry is built.
    pub fn client_secret_env(mut self, var: impl Into<String>) -> Self {
        if let LoginKind::Oidc { client_secret, .. } = &mut self.0.kind {
            *client_secret = Some(Secret::Env(var.into()));
        }
        self
    }

    /// The scopes asked for (default `openid email profile`).
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, list: I) -> Self {
        if let LoginKind::Oidc { scopes, .. } = &mut self.0.kind {
            *scopes = list.into_iter().map(Into::into).collect();
        }
        self
    }

    /// Where the provider sends the browser after logout.
    pub fn post_logout_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        if let LoginKind::Oidc {
            post_logout_redirect_uri,
            ..
        } = &mut self.0.kind
        {
            *post_logout_redirect_uri = Some(uri.into());
        }
        self
    }

    /// The app's public host, for `{host}` in login and logout URLs (default: the request's
    /// `Host`).
    pub fn app_domain(mut self, host: impl Into<String>) -> Self {
        self.0.app_domain = Some(host.into());
        self
    }
}

impl OidcLogin {
    /// Where its sign-in, sign-out and back-channel logout routes are (default
    /// [`LoginPaths::new`]; the callback's is the `redirect_uri`'s path).
    pub fn paths(mut self, paths: LoginPaths) -> Self {
        self.0.paths = paths;
        self
    }
}

impl From<OidcLogin> for Login {
    fn from(login: OidcLogin) -> Self {
        login.0
    }
}
