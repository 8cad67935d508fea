//! OIDC discovery: `<issuer>/.well-known/openid-configuration` names the JWK set URL (and, for
//! browser sign-in, the login endpoints), and its `issuer` must equal the configured one
//! exactly (OIDC Discovery 4.3), or the configuration is wrong.

use reqwest::Url;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::fetch::{FetchError, check_url, get};

/// The discovery document's URL for `issuer` (which must be HTTPS, or HTTP on loopback).
pub(crate) fn config_url(issuer: &str, what: &str) -> Result<Url, String> {
    let base = check_url(issuer, what)?;
    let config = format!(
        "{}/.well-known/openid-configuration",
        base.as_str().trim_end_matches('/')
    );
    Url::parse(&config).map_err(|e| e.to_string())
}

/// A discovery document: its `issuer`, and the members `T` reads.
#[derive(Deserialize)]
struct WithIssuer<T> {
    issuer: Option<String>,
    #[serde(flatten)]
    doc: T,
}

/// Fetches `issuer`'s discovery document at `config` and reads it as `T`, refusing a document
/// that names another issuer (a configuration error, never a transient one).
pub(crate) async fn document<T: DeserializeOwned>(
    client: &reqwest::Client,
    issuer: &str,
    config: &Url,
    max_body: usize,
) -> Result<T, FetchError> {
    let (body, _) = get(client, config, max_body).await?;
    read_document(&body, issuer, config.as_str())
}

/// A discovery document's body read as `T`, refusing one that names another issuer.
fn read_document<T: DeserializeOwned>(
    body: &[u8],
    issuer: &str,
    config: &str,
) -> Result<T, FetchError> {
    let found: WithIssuer<T> = serde_json::from_slice(body)
        .map_err(|_| format!("{config} is not an OpenID configuration document"))?;
    match found.issuer.as_deref() {
        Some(found) if found == issuer => Ok(()),
        found => Err(FetchError {
            message: format!(
                "OIDC discovery issuer mismatch: configured {issuer:?}, discovery document says {:?}",
                found.unwrap_or("")
            ),
            config: true,
        }),
    }?;
    Ok(found.doc)
}

/// An endpoint named by `issuer`'s discovery document: HTTPS, or HTTP on loopback for an
/// issuer that is itself plain HTTP (development); an https issuer's endpoints are https.
pub(crate) fn endpoint(url: &str, what: &str, issuer: &str) -> Result<Url, FetchError> {
    let config = |message| FetchError {
        message,
        config: true,
    };
    let found = check_url(url, what).map_err(config)?;
    if issuer.starts_with("https:") && found.scheme() != "https" {
        return Err(config(format!(
            "{what} {url:?} is plain http, but the issuer {issuer:?} is https"
        )));
    }
    Ok(found)
}

#[derive(Deserialize)]
struct JwksDoc {
    jwks_uri: Option<String>,
}

/// The `jwks_uri` of `issuer`, read from its discovery document at `config`.
pub(crate) async fn jwks_uri(
    client: &reqwest::Client,
    issuer: &str,
    config: &Url,
    max_body: usize,
) -> Result<Url, FetchError> {
    let doc: JwksDoc = document(client, issuer, config, max_body).await?;
    jwks_uri_of(doc, issuer, config.as_str())
}

fn jwks_uri_of(doc: JwksDoc, issuer: &str, config: &str) -> Result<Url, FetchError> {
    let uri = doc
        .jwks_uri
        .ok_or_else(|| format!("{config} has no jwks_uri"))?;
    endpoint(&uri, "jwks_uri", issuer)
}

/// The `jwks_uri` a discovery document's `body` names for `issuer` (the fuzz target's way in).
#[cfg(feature = "fuzzing")]
pub(crate) fn read_jwks_uri(body: &[u8], issuer: &str) -> Result<Url, FetchError> {
    let config = format!("{issuer}/.well-known/openid-configuration");
    jwks_uri_of(read_document(body, issuer, &config)?, issuer, &config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_https_issuer_names_only_https_endpoints() {
        let https = "https://idp.example";
        assert!(endpoint("https://idp.example/certs", "jwks_uri", https).is_ok());
        let err = endpoint("http://127.0.0.1:8080/certs", "jwks_uri", https).unwrap_err();
        assert!(err.config);
        assert_eq!(
            err.message,
            "jwks_uri \"http://127.0.0.1:8080/certs\" is plain http, but the issuer \"https://idp.example\" is https"
        );
        // A loopback issuer over plain http (development) may name loopback endpoints.
        assert!(
            endpoint(
                "http://127.0.0.1:8080/certs",
                "jwks_uri",
                "http://127.0.0.1:8080"
            )
            .is_ok()
        );
        assert!(endpoint("http://10.0.0.1/certs", "jwks_uri", "http://127.0.0.1:8080").is_err());
    }
}
