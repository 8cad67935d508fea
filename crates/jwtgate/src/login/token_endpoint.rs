//! The provider's token endpoint (the code exchange, refresh grants) and its revocation
//! endpoint (RFC 7009): one way to authenticate the client and to read answers, bounded.

use std::fmt;

use base64::Engine as _;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;

use super::OidcFlow;

/// The most of a provider's answer that is read.
const MAX_ANSWER: usize = 256 * 1024;

/// A token endpoint's answer (RFC 6749 5.1, OIDC Core 3.1.3.3). Tokens never appear in `Debug`.
#[derive(Deserialize)]
pub(crate) struct Tokens {
    pub(crate) id_token: Option<String>,
    pub(crate) access_token: Option<String>,
    pub(crate) expires_in: Option<u64>,
    pub(crate) refresh_token: Option<String>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("id_token", &self.id_token.is_some())
            .field("access_token", &self.access_token.is_some())
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &self.refresh_token.is_some())
            .finish()
    }
}

/// Why the endpoint gave no tokens.
#[derive(Debug)]
pub(crate) enum TokenError {
    /// The provider refused the grant (`invalid_grant`: a used, expired or revoked code or
    /// refresh token): asking again cannot help.
    Refused(String),
    /// The provider could not be asked, or answered something else: try later.
    Unavailable(String),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(why) => write!(f, "refused: {why}"),
            Self::Unavailable(why) => f.write_str(why),
        }
    }
}

impl OidcFlow {
    /// Exchanges `code` at the token endpoint.
    pub(super) async fn exchange(&self, code: &str, verifier: &str) -> Result<Tokens, TokenError> {
        let redirect_uri = self.redirect_uri.as_str();
        self.token_call(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ])
        .await
    }

    /// Spends `refresh_token` for new tokens (RFC 6749 6).
    pub(super) async fn refresh(&self, refresh_token: &str) -> Result<Tokens, TokenError> {
        self.token_call(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// Revokes `refresh_token` at the provider (RFC 7009), when discovery names a revocation
    /// endpoint: `Ok(false)` when it names none.
    pub(super) async fn revoke(&self, refresh_token: &str) -> Result<bool, String> {
        let endpoints = self.endpoints().await?;
        let Some(endpoint) = &endpoints.revocation_endpoint else {
            return Ok(false);
        };
        let res = self
            .post(
                endpoint,
                &[
                    ("token", refresh_token),
                    ("token_type_hint", "refresh_token"),
                ],
            )
            .send()
            .await
            .map_err(|e| {
                format!(
                    "revocation endpoint: {}",
                    crate::remote::describe(&e).message
                )
            })?;
        // RFC 7009 2.2: 200 whether or not the token was still valid.
        if res.status().is_success() {
            Ok(true)
        } else {
            Err(format!(
                "revocation endpoint answered HTTP {}",
                res.status().as_u16()
            ))
        }
    }

    async fn token_call(&self, form: &[(&str, &str)]) -> Result<Tokens, TokenError> {
        let endpoints = self.endpoints().await.map_err(TokenError::Unavailable)?;
        let res = self
            .post(&endpoints.token_endpoint, form)
            .send()
            .await
            .map_err(|e| {
                TokenError::Unavailable(format!(
                    "token endpoint: {}",
                    crate::remote::describe(&e).message
                ))
            })?;
        let status = res.status();
        let bytes = crate::remote::read_body(res, MAX_ANSWER)
            .await
            .map_err(|e| TokenError::Unavailable(e.message))?;
        if !status.is_success() {
            #[derive(Deserialize)]
            struct Refusal {
                error: String,
            }
            let error = serde_json::from_slice::<Refusal>(&bytes)
                .ok()
                .map(|r| r.error);
            return Err(match error.as_deref() {
                // RFC 6749 5.2: the grant itself is bad (or the client no longer may use it).
                Some(e @ ("invalid_grant" | "unauthorized_client")) => {
                    TokenError::Refused(e.to_owned())
                }
                _ => TokenError::Unavailable(format!(
                    "token endpoint answered HTTP {}",
                    status.as_u16()
                )),
            });
        }
        serde_json::from_slice(&bytes)
            .map_err(|_| TokenError::Unavailable("token response is not JSON".to_owned()))
    }

    /// A form POST to the provider, the client authenticated: `client_secret_basic`
    /// (RFC 6749 2.3.1, both parts form-encoded first), or `client_id` in the form for a
    /// public client.
    fn post(&self, url: &str, form: &[(&str, &str)]) -> reqwest::RequestBuilder {
        let mut req = self.client.post(url);
        let mut body = url::form_urlencoded::Serializer::new(String::new());
        body.extend_pairs(form);
        match &self.client_secret {
            Some(secret) => {
                let enc = |s: &[u8]| url::form_urlencoded::byte_serialize(s).collect::<String>();
                let credentials = format!("{}:{}", enc(self.client_id.as_bytes()), enc(secret));
                let value = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(credentials)
                );
                req = req.header(AUTHORIZATION, value);
            }
            None => {
                body.append_pair("client_id", &self.client_id);
            }
        }
        req.header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(body.finish())
    }
}
