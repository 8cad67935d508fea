//! How jwtgate reaches identity providers (key sets, discovery documents, the login's token,
//! revocation and end-session calls): through a proxy, trusting an extra CA (a private
//! Keycloak behind a corporate CA), with a client certificate (mTLS), or with the app's own
//! `reqwest::Client`. Whatever the client, jwtgate keeps its own rules: https only (plain http
//! to loopback), never from https to http, bounded bodies, per-request timeouts.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, ErrorKind};

/// The HTTP client settings of a registry ([`RegistryBuilder::http_client`]).
///
/// [`RegistryBuilder::http_client`]: crate::RegistryBuilder::http_client
#[derive(Clone, Default)]
#[must_use]
pub struct HttpClient(Kind);

#[derive(Clone)]
enum Kind {
    Settings(Box<Settings>),
    /// The app's own client, used as it is (its proxy, roots, identity, timeouts, redirects).
    Own(reqwest::Client),
}

impl Default for Kind {
    fn default() -> Self {
        Self::Settings(Box::default())
    }
}

#[derive(Clone, Default)]
struct Settings {
    proxy: Proxy,
    roots: Vec<reqwest::Certificate>,
    identity: Option<reqwest::Identity>,
    /// The login's token calls; key fetches have their own ([`RemoteKeyOptions`]).
    ///
    /// [`RemoteKeyOptions`]: super::RemoteKeyOptions
    connect_timeout: Option<Duration>,
    timeout: Option<Duration>,
}

/// Where requests to providers go: straight (the default), through one proxy, or as the
/// environment says.
#[derive(Clone, Default)]
pub struct Proxy(ProxyKind);

#[derive(Clone, Default)]
enum ProxyKind {
    /// Straight to the provider; `HTTPS_PROXY` and the like are ignored.
    #[default]
    None,
    /// `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` and `NO_PROXY`, read when the registry is built.
    FromEnv,
    Url(Box<ProxyUrl>),
}

#[derive(Clone)]
struct ProxyUrl {
    proxy: reqwest::Proxy,
    /// Without its password, for `Debug`.
    url: String,
}

impl Proxy {
    /// Straight to the provider (the default): a proxy set in the environment is not used
    /// unless asked for, so that moving a service never reroutes its key fetches silently.
    pub fn none() -> Self {
        Self(ProxyKind::None)
    }

    /// The environment's proxy: `HTTPS_PROXY` (`https_proxy`), `HTTP_PROXY`, `ALL_PROXY`, and
    /// the hosts `NO_PROXY` exempts.
    pub fn from_env() -> Self {
        Self(ProxyKind::FromEnv)
    }

    /// Every request through the proxy at `url` (`http://proxy.internal:3128`, credentials in
    /// the URL if it needs them), except to the hosts `no_proxy` lists (`NO_PROXY`'s syntax:
    /// `localhost,.internal,10.0.0.0/8`; `None` for none).
    pub fn url(url: &str, no_proxy: Option<&str>) -> Result<Self, Error> {
        let proxy = reqwest::Proxy::all(url).map_err(|e| {
            Error::new(
                ErrorKind::InvalidSetting,
                format!("proxy {:?} is not a proxy URL: {e}", redact(url)),
            )
        })?;
        let proxy = proxy.no_proxy(no_proxy.and_then(reqwest::NoProxy::from_string));
        Ok(Self(ProxyKind::Url(Box::new(ProxyUrl {
            proxy,
            url: redact(url),
        }))))
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            ProxyKind::None => f.write_str("Proxy::none()"),
            ProxyKind::FromEnv => f.write_str("Proxy::from_env()"),
            ProxyKind::Url(p) => write!(f, "Proxy::url({:?})", p.url),
        }
    }
}

/// A proxy URL without its password, for messages.
fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

impl HttpClient {
    /// jwtgate's own client: no proxy, the system's roots, no client certificate.
    pub fn new() -> Self {
        Self::default()
    }

    /// The app's own client for every call to providers, as it is configured (its proxy,
    /// roots, client certificate, timeouts and redirect policy). jwtgate still refuses
    /// non-https URLs, a final URL reached by a redirect it would not follow, and large bodies.
    pub fn client(client: reqwest::Client) -> Self {
        Self(Kind::Own(client))
    }

    fn settings(&mut self) -> &mut Settings {
        if let Kind::Own(_) = self.0 {
            self.0 = Kind::Settings(Box::default());
        }
        match &mut self.0 {
            Kind::Settings(s) => s,
            Kind::Own(_) => unreachable!("replaced above"),
        }
    }

    /// Where requests go (default [`Proxy::none`]).
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.settings().proxy = proxy;
        self
    }

    /// Trusts the CA certificates of a PEM bundle as well as the system's.
    pub fn root_certificates_pem(mut self, pem: &[u8]) -> Result<Self, Error> {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidSetting,
                    "no PEM certificate could be read (-----BEGIN CERTIFICATE-----)",
                )
            })?;
        self.settings().roots.extend(certs);
        Ok(self)
    }

    /// Presents a client certificate (mTLS): a PEM with the certificate chain and its private
    /// key (PKCS#8, PKCS#1 or SEC1).
    pub fn client_certificate_pem(mut self, pem: &[u8]) -> Result<Self, Error> {
        let identity = reqwest::Identity::from_pem(pem).map_err(|_| {
            Error::new(
                ErrorKind::InvalidSetting,
                "the client certificate PEM needs a certificate and its private key",
            )
        })?;
        self.settings().identity = Some(identity);
        Ok(self)
    }

    /// How long the login's calls to the provider may take to connect (default 2 s); key
    /// fetches have their own, per validator ([`RemoteKeyOptions`](super::RemoteKeyOptions)).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings().connect_timeout = Some(timeout);
        self
    }

    /// How long the login's calls to the provider may take in all (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings().timeout = Some(timeout);
        self
    }

    /// The client of the login's calls: no redirects followed, the timeouts set here (2 s to
    /// connect, 10 s in all by default).
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) fn login_client(&self) -> Result<reqwest::Client, Error> {
        let (connect, timeout) = match &self.0 {
            Kind::Settings(s) => (s.connect_timeout, s.timeout),
            Kind::Own(_) => (None, None),
        };
        self.build(
            reqwest::redirect::Policy::none(),
            connect.unwrap_or(Duration::from_secs(2)),
            timeout.unwrap_or(Duration::from_secs(10)),
        )
    }

    /// A client with `redirect`, `connect` and `timeout`; the app's own client as it is.
    pub(crate) fn build(
        &self,
        redirect: reqwest::redirect::Policy,
        connect: Duration,
        timeout: Duration,
    ) -> Result<reqwest::Client, Error> {
        let s = match &self.0 {
            Kind::Own(client) => return Ok(client.clone()),
            Kind::Settings(s) => s,
        };
        let mut builder = reqwest::Client::builder()
            .connect_timeout(connect)
            .timeout(timeout)
            .redirect(redirect)
            .user_agent(concat!("jwtgate/", env!("CARGO_PKG_VERSION")));
        builder = match &s.proxy.0 {
            ProxyKind::None => builder.no_proxy(),
            // reqwest reads the environment's proxies unless told not to.
            ProxyKind::FromEnv => builder,
            ProxyKind::Url(p) => builder.proxy(p.proxy.clone()),
        };
        if !s.roots.is_empty() {
            builder = builder.tls_certs_merge(s.roots.iter().cloned());
        }
        if let Some(identity) = &s.identity {
            builder = builder.identity(identity.clone());
        }
        builder.build().map_err(|e| {
            Error::new(ErrorKind::InvalidSetting, format!("HTTP client: {e}")).with_source(e)
        })
    }
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Own(_) => f.write_str("HttpClient::client(..)"),
            Kind::Settings(s) => f
                .debug_struct("HttpClient")
                .field("proxy", &s.proxy)
                .field("root_certificates", &s.roots.len())
                .field("client_certificate", &s.identity.is_some())
                .field("connect_timeout", &s.connect_timeout)
                .field("timeout", &s.timeout)
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_and_debug_shows_no_secret() {
        let e = HttpClient::new()
            .root_certificates_pem(b"not a pem")
            .unwrap_err();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        let e = HttpClient::new()
            .client_certificate_pem(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
            .unwrap_err();
        assert!(
            e.to_string().contains("a certificate and its private key"),
            "{e}"
        );
        let proxy =
            Proxy::url("http://user:hunter2@proxy.internal:3128", Some("localhost")).unwrap();
        let shown = format!("{:?}", HttpClient::new().proxy(proxy));
        assert!(
            shown.contains("Proxy::url(\"http://user:***@proxy.internal:3128/\")"),
            "{shown}"
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(Proxy::url("not a url", None).is_err());
        let client = HttpClient::new().timeout(Duration::from_secs(3)).build(
            reqwest::redirect::Policy::none(),
            Duration::from_secs(1),
            Duration::from_secs(9),
        );
        assert!(client.is_ok());
    }
}
