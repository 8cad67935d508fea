//! Identity-provider presets: what a user types (a team name and an AUD tag, a realm, a
//! tenant) becomes issuer, key source, algorithm, token sources and user rule. Every value can
//! be overridden on the validator.
//!
//! Each preset has a [`Preset::base_url`] override so that tests (and private deployments)
//! can point it at another host; the paths stay the provider's.

use super::{ServiceTokens, UserStrategy};
use crate::credentials::TokenSource;
use crate::error::{Error, ErrorKind};
use crate::jws::algorithm::Algorithm;
use crate::key_source::{KeySource, RemoteSource, Repr};

/// An identity provider's defaults for a [`Validator`](crate::Validator).
///
/// ```
/// use jwtgate::{Preset, Registry, Validator};
///
/// let registry = Registry::builder()
///     .validator(Validator::new("cf").preset(Preset::cloudflare_access("acme", "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2")))
///     .validator(
///         Validator::new("kc")
///             .preset(Preset::keycloak("https://sso.example.com", "main"))
///             .authorized_party("my-app"),
///     )
///     .build()?;
/// # let _ = registry;
/// # Ok::<(), jwtgate::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct Preset {
    provider: Provider,
    base_url: Option<String>,
    app_domain: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Provider {
    CloudflareAccess {
        team: String,
        aud: String,
        service_tokens: bool,
    },
    Keycloak {
        base_url: String,
        realm: String,
    },
    Auth0 {
        domain: String,
        audience: String,
    },
    EntraId {
        tenant: String,
        audience: String,
    },
    Google {
        client_id: String,
    },
    Cognito {
        region: String,
        user_pool_id: String,
        client_id: String,
    },
    Oidc {
        issuer: String,
    },
}

/// The Cloudflare Access preset, with the options only it has; made by
/// [`Preset::cloudflare_access`], used wherever a [`Preset`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct CloudflareAccess(Preset);

impl CloudflareAccess {
    /// The app's public host, for the login and logout URLs (default: the request's `Host`).
    pub fn app_domain(mut self, host: impl Into<String>) -> Self {
        self.0.app_domain = Some(host.into());
        self
    }

    /// Whether service tokens are accepted, their user being their `common_name` (default:
    /// refused, with the description "service tokens are not accepted").
    pub fn service_tokens(mut self, allowed: bool) -> Self {
        if let Provider::CloudflareAccess { service_tokens, .. } = &mut self.0.provider {
            *service_tokens = allowed;
        }
        self
    }

    /// Serves Cloudflare's paths from another base URL, as [`Preset::base_url`] does.
    pub fn base_url(self, base_url: impl Into<String>) -> Self {
        Self(self.0.base_url(base_url))
    }
}

impl From<CloudflareAccess> for Preset {
    fn from(preset: CloudflareAccess) -> Self {
        preset.0
    }
}

/// What a preset fills in.
#[derive(Clone, Debug)]
pub(crate) struct Defaults {
    pub(crate) issuers: Vec<String>,
    pub(crate) key: KeySource,
    pub(crate) algorithm: Algorithm,
    pub(crate) sources: Vec<TokenSource>,
    pub(crate) audiences: Vec<String>,
    pub(crate) authorized_party: Option<String>,
    pub(crate) user: UserStrategy,
    /// The claim that must name the tenant of an issuer pattern (Entra's `tid`).
    pub(crate) tenant_claim: Option<String>,
    /// How browsers sign in (Cloudflare Access: its login page).
    #[cfg(feature = "login")]
    pub(crate) login: Option<crate::login::Login>,
}

impl Defaults {
    /// RS256 from the `Authorization` header, the user from `user`, no audience yet.
    fn bearer(key: KeySource, issuers: Vec<String>, user: &str) -> Self {
        Self {
            issuers,
            key,
            algorithm: Algorithm::RS256,
            sources: vec![TokenSource::authorization()],
            audiences: Vec::new(),
            authorized_party: None,
            user: UserStrategy::Claim {
                claim: user.to_owned(),
                service: None,
            },
            tenant_claim: None,
            #[cfg(feature = "login")]
            login: None,
        }
    }
}

impl Preset {
    fn new(provider: Provider) -> Self {
        Self {
            provider,
            base_url: None,
            app_domain: None,
        }
    }

    /// Cloudflare Access: issuer `https://<team>.cloudflareaccess.com`, keys from
    /// `/cdn-cgi/access/certs`, RS256, the token from the `Cf-Access-Jwt-Assertion` header
    /// then the `CF_Authorization` cookie, audience the application's AUD tag, the user from
    /// `email`. Service tokens (no `email`, the client id in `common_name`) are refused unless
    /// [`service_tokens`](CloudflareAccess::service_tokens) allows them.
    pub fn cloudflare_access(team: impl Into<String>, aud: impl Into<String>) -> CloudflareAccess {
        CloudflareAccess(Self::new(Provider::CloudflareAccess {
            team: team.into(),
            aud: aud.into(),
            service_tokens: false,
        }))
    }

    /// Keycloak: issuer `<base_url>/realms/<realm>`, keys from
    /// `/protocol/openid-connect/certs`, RS256, the user from `sub`. Keycloak access tokens
    /// often carry no audience for the API: set an audience or an
    /// [`authorized_party`](crate::Validator::authorized_party) (the client id).
    pub fn keycloak(base_url: impl Into<String>, realm: impl Into<String>) -> Self {
        Self::new(Provider::Keycloak {
            base_url: base_url.into(),
            realm: realm.into(),
        })
    }

    /// Auth0: issuer `https://<domain>/` (with its trailing slash), keys from
    /// `/.well-known/jwks.json`, RS256, audience the API identifier, the user from `sub`.
    pub fn auth0(domain: impl Into<String>, audience: impl Into<String>) -> Self {
        Self::new(Provider::Auth0 {
            domain: domain.into(),
            audience: audience.into(),
        })
    }

    /// Microsoft Entra ID, v2.0 tokens: issuer `https://login.microsoftonline.com/<tenant>/v2.0`,
    /// keys from `/<tenant>/discovery/v2.0/keys`, RS256, the user from `oid` (stable across
    /// applications). `tenant` is the tenant id, or `organizations` (or `common`) for a
    /// multi-tenant app: then any tenant's issuer is accepted when the token's `tid` names the
    /// same tenant, with the keys of `/organizations/discovery/v2.0/keys`. Restrict tenants
    /// with [`Validator::issuers`](crate::Validator::issuers) if the app serves only some.
    pub fn entra_id(tenant: impl Into<String>, audience: impl Into<String>) -> Self {
        Self::new(Provider::EntraId {
            tenant: tenant.into(),
            audience: audience.into(),
        })
    }

    /// Google ID tokens: issuer `https://accounts.google.com` (or `accounts.google.com`, which
    /// Google also emits), keys from `https://www.googleapis.com/oauth2/v3/certs`, RS256,
    /// audience the OAuth client id, the user from `sub`.
    pub fn google(client_id: impl Into<String>) -> Self {
        Self::new(Provider::Google {
            client_id: client_id.into(),
        })
    }

    /// Amazon Cognito: issuer `https://cognito-idp.<region>.amazonaws.com/<user_pool_id>`,
    /// keys from `/.well-known/jwks.json`, RS256, the user from `sub`. Cognito access tokens
    /// have no `aud` but a `client_id`, so the client id is checked as the authorized party
    /// (ID tokens pass too: their only audience is the client).
    pub fn cognito(
        region: impl Into<String>,
        user_pool_id: impl Into<String>,
        client_id: impl Into<String>,
    ) -> Self {
        Self::new(Provider::Cognito {
            region: region.into(),
            user_pool_id: user_pool_id.into(),
            client_id: client_id.into(),
        })
    }

    /// Any OpenID Connect issuer: keys through discovery, RS256, the user from `sub`. Set an
    /// audience or an authorized party.
    pub fn oidc(issuer: impl Into<String>) -> Self {
        Self::new(Provider::Oidc {
            issuer: issuer.into(),
        })
    }

    /// Serves the provider's paths from another base URL (a test double on 127.0.0.1, or a
    /// private deployment); the issuer becomes that base with the provider's path.
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }

    /// Resolves the preset; an argument that cannot be part of a URL is an error.
    pub(crate) fn defaults(&self) -> Result<Defaults, Error> {
        let base = |default: String| -> Result<String, Error> {
            Ok(self
                .base_url
                .clone()
                .unwrap_or(default)
                .trim_end_matches('/')
                .to_owned())
        };
        let d = match &self.provider {
            Provider::CloudflareAccess {
                team,
                aud,
                service_tokens,
            } => {
                let issuer = base(format!(
                    "https://{}.cloudflareaccess.com",
                    host_label("team", team)?
                ))?;
                // Access's login page takes the app's host in its path and the AUD tag as kid.
                #[cfg(feature = "login")]
                let login = {
                    let login = crate::login::Login::url(format!(
                        "{issuer}/cdn-cgi/access/login/{{host}}?kid={aud}"
                    ))
                    .redirect_param("redirect_url");
                    Some(
                        match &self.app_domain {
                            Some(host) => login.app_domain(host.clone()),
                            None => login,
                        }
                        .into(),
                    )
                };
                Defaults {
                    #[cfg(feature = "login")]
                    login,
                    sources: cloudflare_sources(),
                    audiences: vec![non_empty("aud", aud)?],
                    user: UserStrategy::Claim {
                        claim: "email".into(),
                        service: Some(ServiceTokens {
                            allowed: *service_tokens,
                        }),
                    },
                    ..Defaults::bearer(
                        jwks_url(format!("{issuer}/cdn-cgi/access/certs")),
                        vec![issuer],
                        "email",
                    )
                }
            }
            Provider::Keycloak { base_url, realm } => {
                let root = self.base_url.as_deref().unwrap_or(base_url);
                let issuer = format!(
                    "{}/realms/{}",
                    non_empty("base_url", root)?.trim_end_matches('/'),
                    path_segment("realm", realm)?
                );
                Defaults::bearer(
                    jwks_url(format!("{issuer}/protocol/openid-connect/certs")),
                    vec![issuer],
                    "sub",
                )
            }
            Provider::Auth0 { domain, audience } => {
                let root = base(format!("https://{}", host("domain", domain)?))?;
                Defaults {
                    audiences: vec![non_empty("audience", audience)?],
                    ..Defaults::bearer(
                        jwks_url(format!("{root}/.well-known/jwks.json")),
                        vec![format!("{root}/")],
                        "sub",
                    )
                }
            }
            Provider::EntraId { tenant, audience } => {
                let tenant = path_segment("tenant", tenant)?;
                if tenant == "consumers" {
                    return Err(Error::new(
                        ErrorKind::InvalidSetting,
                        "tenant \"consumers\" is one tenant under another name: give its id \
                         (9188040d-6c67-4c5b-b112-36a304b66dad)",
                    ));
                }
                let root = base("https://login.microsoftonline.com".into())?;
                // A multi-tenant app: any tenant's iss, each token's `tid` naming the same
                // tenant (Microsoft's rule), keys from the shared multi-tenant set.
                let multi = tenant == "organizations" || tenant == "common";
                let issuer = if multi {
                    format!("{root}/{{tenant}}/v2.0")
                } else {
                    format!("{root}/{tenant}/v2.0")
                };
                Defaults {
                    audiences: vec![non_empty("audience", audience)?],
                    tenant_claim: multi.then(|| "tid".to_owned()),
                    ..Defaults::bearer(
                        jwks_url(format!("{root}/{tenant}/discovery/v2.0/keys")),
                        vec![issuer],
                        "oid",
                    )
                }
            }
            Provider::Google { client_id } => {
                let (issuers, certs) = match &self.base_url {
                    Some(b) => {
                        let b = b.trim_end_matches('/');
                        (vec![b.to_owned()], format!("{b}/oauth2/v3/certs"))
                    }
                    None => (
                        vec![
                            "https://accounts.google.com".to_owned(),
                            "accounts.google.com".to_owned(),
                        ],
                        "https://www.googleapis.com/oauth2/v3/certs".to_owned(),
                    ),
                };
                Defaults {
                    audiences: vec![non_empty("client_id", client_id)?],
                    ..Defaults::bearer(jwks_url(certs), issuers, "sub")
                }
            }
            Provider::Cognito {
                region,
                user_pool_id,
                client_id,
            } => {
                let root = base(format!(
                    "https://cognito-idp.{}.amazonaws.com",
                    host_label("region", region)?
                ))?;
                let issuer = format!("{root}/{}", path_segment("user_pool_id", user_pool_id)?);
                Defaults {
                    authorized_party: Some(non_empty("client_id", client_id)?),
                    ..Defaults::bearer(
                        jwks_url(format!("{issuer}/.well-known/jwks.json")),
                        vec![issuer],
                        "sub",
                    )
                }
            }
            Provider::Oidc { issuer } => {
                let issuer = self.base_url.clone().unwrap_or_else(|| issuer.clone());
                Defaults::bearer(
                    oidc_issuer(non_empty("issuer", &issuer)?),
                    vec![issuer],
                    "sub",
                )
            }
        };
        Ok(d)
    }
}

fn cloudflare_sources() -> Vec<TokenSource> {
    vec![
        TokenSource::header("Cf-Access-Jwt-Assertion"),
        TokenSource::cookie("CF_Authorization"),
    ]
}

fn jwks_url(url: String) -> KeySource {
    KeySource(Repr::Remote(RemoteSource::JwksUrl(url)))
}

fn oidc_issuer(issuer: String) -> KeySource {
    KeySource(Repr::Remote(RemoteSource::OidcIssuer(issuer)))
}

fn bad(what: &str, value: &str, why: &str) -> Error {
    Error::new(ErrorKind::InvalidSetting, format!("{what} {value:?} {why}"))
}

fn non_empty(what: &str, value: &str) -> Result<String, Error> {
    if value.trim().is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidSetting,
            format!("{what} must not be empty"),
        ));
    }
    Ok(value.to_owned())
}

/// One DNS label (a Cloudflare team name, an AWS region).
fn host_label<'a>(what: &str, value: &'a str) -> Result<&'a str, Error> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(value)
    } else {
        Err(bad(what, value, "is not a DNS label"))
    }
}

/// A host name (an Auth0 domain).
fn host<'a>(what: &str, value: &'a str) -> Result<&'a str, Error> {
    if !value.is_empty() && value.split('.').all(|l| host_label(what, l).is_ok()) {
        Ok(value)
    } else {
        Err(bad(
            what,
            value,
            "is not a host name (give it without https://)",
        ))
    }
}

/// A URL path segment (a realm, a tenant, a user pool id).
fn path_segment<'a>(what: &str, value: &'a str) -> Result<&'a str, Error> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
        && value != "."
        && value != "..";
    if ok {
        Ok(value)
    } else {
        Err(bad(what, value, "is not a plain path segment"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer_and_keys(p: impl Into<Preset>) -> (Vec<String>, String) {
        let d = p.into().defaults().unwrap();
        (d.issuers, format!("{:?}", d.key))
    }

    #[test]
    fn each_provider_fills_its_urls() {
        let (iss, key) = issuer_and_keys(Preset::cloudflare_access("acme", "aud"));
        assert_eq!(iss, ["https://acme.cloudflareaccess.com"]);
        assert!(
            key.contains("https://acme.cloudflareaccess.com/cdn-cgi/access/certs"),
            "{key}"
        );
        let (iss, key) = issuer_and_keys(Preset::keycloak("https://sso.example.com/", "main"));
        assert_eq!(iss, ["https://sso.example.com/realms/main"]);
        assert!(
            key.contains("/realms/main/protocol/openid-connect/certs"),
            "{key}"
        );
        let (iss, key) = issuer_and_keys(Preset::auth0("acme.eu.auth0.com", "https://api"));
        assert_eq!(iss, ["https://acme.eu.auth0.com/"]);
        assert!(
            key.contains("https://acme.eu.auth0.com/.well-known/jwks.json"),
            "{key}"
        );
        let tenant = "9188040d-6c67-4c5b-b112-36a304b66dad";
        let (iss, key) = issuer_and_keys(Preset::entra_id(tenant, "api://x"));
        assert_eq!(
            iss,
            [format!("https://login.microsoftonline.com/{tenant}/v2.0")]
        );
        assert!(
            key.contains(&format!("{tenant}/discovery/v2.0/keys")),
            "{key}"
        );
        let (iss, _) = issuer_and_keys(Preset::google("123.apps.googleusercontent.com"));
        assert_eq!(iss, ["https://accounts.google.com", "accounts.google.com"]);
        let (iss, key) = issuer_and_keys(Preset::cognito("eu-west-1", "eu-west-1_AbC", "client"));
        assert_eq!(
            iss,
            ["https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC"]
        );
        assert!(key.contains("eu-west-1_AbC/.well-known/jwks.json"), "{key}");
        let (iss, key) = issuer_and_keys(Preset::oidc("https://idp.example"));
        assert_eq!(iss, ["https://idp.example"]);
        assert!(key.contains("OidcIssuer"), "{key}");
    }

    #[test]
    fn base_url_moves_every_path() {
        let (iss, key) = issuer_and_keys(
            Preset::cloudflare_access("acme", "aud").base_url("http://127.0.0.1:9/"),
        );
        assert_eq!(iss, ["http://127.0.0.1:9"]);
        assert!(
            key.contains("http://127.0.0.1:9/cdn-cgi/access/certs"),
            "{key}"
        );
        let (iss, _) =
            issuer_and_keys(Preset::auth0("x.auth0.com", "a").base_url("http://127.0.0.1:9"));
        assert_eq!(iss, ["http://127.0.0.1:9/"]);
    }

    #[test]
    fn arguments_that_would_bend_urls_are_refused() {
        let cases: [(Preset, &str); 7] = [
            (
                Preset::cloudflare_access("acme.evil.com/x", "aud").into(),
                "team",
            ),
            (Preset::cloudflare_access("", "aud").into(), "team"),
            (Preset::cloudflare_access("acme", "").into(), "aud"),
            (Preset::keycloak("https://sso", "../admin"), "realm"),
            (Preset::auth0("https://acme.auth0.com", "a"), "domain"),
            (Preset::entra_id("consumers", "a"), "tenant"),
            (
                Preset::cognito("eu-west-1", "pool/../x", "c"),
                "user_pool_id",
            ),
        ];
        for (p, argument) in cases {
            let err = p.defaults().unwrap_err();
            assert_eq!(err.kind(), &crate::ErrorKind::InvalidSetting, "{p:?}");
            assert!(err.message().contains(argument), "{p:?}: {err}");
        }
    }
}
