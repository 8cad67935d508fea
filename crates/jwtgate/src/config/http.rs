//! `[http]`: how key fetches, discovery and the logins' calls reach providers (a proxy, extra
//! CA roots, a client certificate, the login's timeouts); see [`crate::remote::HttpClient`].

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "remote-keys"), allow(dead_code))]
pub(super) struct HttpToml {
    /// `"none"` (the default), `"env"` (`HTTPS_PROXY`, `NO_PROXY`), or a proxy URL.
    proxy: Option<Spanned<String>>,
    /// With a proxy URL: the hosts it does not serve (`NO_PROXY`'s syntax).
    no_proxy: Option<Spanned<String>>,
    /// A PEM bundle of CA certificates trusted beside the system's.
    root_certificates: Option<Spanned<PathBuf>>,
    /// A PEM with a client certificate chain and its key (mTLS).
    client_certificate: Option<Spanned<PathBuf>>,
    connect_timeout_ms: Option<u64>,
    timeout_ms: Option<u64>,
}

#[cfg(feature = "remote-keys")]
impl super::Config {
    /// The `[http]` table's client (jwtgate's default without one).
    pub(super) fn http_client(&self) -> Result<crate::remote::HttpClient, crate::Error> {
        use std::time::Duration;

        use crate::remote::{HttpClient, Proxy};

        let mut http = HttpClient::new();
        let Some(table) = &self.file.http else {
            return Ok(http);
        };
        let at = |span: std::ops::Range<usize>, key: &str, e: &dyn std::fmt::Display| {
            self.error_at(span, &format!("http.{key}"), e.to_string())
        };
        let no_proxy = table.no_proxy.as_ref();
        match table.proxy.as_ref().map(|p| (p, p.get_ref().as_str())) {
            None | Some((_, "none")) => {
                if let Some(n) = no_proxy {
                    return Err(at(n.span(), "no_proxy", &"no_proxy needs a proxy URL"));
                }
            }
            Some((_, "env")) => http = http.proxy(Proxy::from_env()),
            Some((p, url)) => {
                let proxy = Proxy::url(url, no_proxy.map(|n| n.get_ref().as_str()))
                    .map_err(|e| at(p.span(), "proxy", &e))?;
                http = http.proxy(proxy);
            }
        }
        let read = |file: &Spanned<PathBuf>, key: &str| {
            let path = self.resolve_path(file.get_ref());
            std::fs::read(&path).map_err(|e| {
                at(
                    file.span(),
                    key,
                    &format!("cannot read {}: {e}", path.display()),
                )
            })
        };
        if let Some(file) = &table.root_certificates {
            http = http
                .root_certificates_pem(&read(file, "root_certificates")?)
                .map_err(|e| at(file.span(), "root_certificates", &e))?;
        }
        if let Some(file) = &table.client_certificate {
            http = http
                .client_certificate_pem(&read(file, "client_certificate")?)
                .map_err(|e| at(file.span(), "client_certificate", &e))?;
        }
        if let Some(ms) = table.connect_timeout_ms {
            http = http.connect_timeout(Duration::from_millis(ms));
        }
        if let Some(ms) = table.timeout_ms {
            http = http.timeout(Duration::from_millis(ms));
        }
        Ok(http)
    }
}
