//! OIDC discovery: `<issuer>/.well-known/openid-configuration` names the JWK set URL, and its
//! `issuer` must equal the configured one exactly (OIDC Discovery 4.3), or the configuration
//! is wrong.

use reqwest::Url;
use serde::Deserialize;

use super::fetch::{FetchError, check_url, get};

#[derive(Deserialize)]
struct Discovery {
    issuer: Option<String>,
    jwks_uri: Option<String>,
}

/// The `jwks_uri` of `issuer`, read from its discovery document at `config`.
pub(crate) async fn jwks_uri(
    client: &reqwest::Client,
    issuer: &str,
    config: &Url,
    max_body: usize,
) -> Result<Url, FetchError> {
    let (body, _) = get(client, config, max_body).await?;
    let doc: Discovery = serde_json::from_slice(&body)
        .map_err(|_| format!("{config} is not an OpenID configuration document"))?;
    match doc.issuer.as_deref() {
        Some(found) if found == issuer => {}
        found => {
            return Err(FetchError {
                message: format!(
                    "OIDC discovery issuer mismatch: configured {issuer:?}, discovery document says {:?}",
                    found.unwrap_or("")
                ),
                config: true,
            });
        }
    }
    let uri = doc
        .jwks_uri
        .ok_or_else(|| format!("{config} has no jwks_uri"))?;
    check_url(&uri, "jwks_uri").map_err(|message| FetchError {
        message,
        config: true,
    })
}
