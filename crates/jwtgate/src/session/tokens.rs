//! Token relay: the access token of the request's session, for a handler that calls an API
//! as the user. Read from the session's record only when a handler asks for it.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::request::Parts;

use super::record::Sealer;
use super::{SessionStore, StoreError};

/// What a request that came with a sign-in's session carries (an extension), so that its
/// tokens can be read when asked for.
#[derive(Clone)]
pub(crate) struct SessionTokens {
    store: Arc<dyn SessionStore>,
    sealer: Arc<Sealer>,
    key: String,
}

impl SessionTokens {
    pub(crate) fn new(store: Arc<dyn SessionStore>, sealer: Arc<Sealer>, key: String) -> Self {
        Self { store, sealer, key }
    }
}

/// The current access token of the request's sign-in session (kept fresh by the session's
/// refresh), to call downstream APIs as the user. Never logged; `Debug` shows its expiry only.
///
/// ```
/// # #[cfg(feature = "axum")]
/// # async fn handler(token: jwtgate::session::AccessToken) -> String {
/// // reqwest::Client::new().get(url).bearer_auth(token.secret()) ...
/// # let _ = token.secret();
/// # String::new()
/// # }
/// ```
#[derive(Clone)]
pub struct AccessToken {
    token: String,
    expires_at: Option<u64>,
}

impl AccessToken {
    /// The token, to send as `Authorization: Bearer`.
    pub fn secret(&self) -> &str {
        &self.token
    }

    /// When it expires, as the provider said (`None`: it did not say).
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at.map(|t| UNIX_EPOCH + Duration::from_secs(t))
    }

    /// The access token of the session the request `parts` came with (they passed the layer).
    pub async fn of(parts: &Parts) -> Result<Self, AccessTokenError> {
        let tokens = parts
            .extensions
            .get::<SessionTokens>()
            .ok_or(AccessTokenError::NoSession)?;
        let sealed = tokens
            .store
            .load(&tokens.key)
            .await
            .map_err(AccessTokenError::Unavailable)?
            .ok_or(AccessTokenError::NoToken)?;
        let record = tokens
            .sealer
            .open(&tokens.key, &sealed)
            .ok_or(AccessTokenError::NoToken)?;
        let token = record.access_token.ok_or(AccessTokenError::NoToken)?;
        Ok(Self {
            token,
            expires_at: record.access_expires,
        })
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Why a request's access token cannot be had.
#[derive(Debug)]
#[non_exhaustive]
pub enum AccessTokenError {
    /// The request did not come with a sign-in's session (a bearer token, an anonymous
    /// request, or a route without the layer): 401.
    NoSession,
    /// The session has no access token (the provider gave none, or it ended meanwhile): 401.
    NoToken,
    /// The session store cannot be read now: 503.
    Unavailable(StoreError),
}

impl fmt::Display for AccessTokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSession => f.write_str("this request has no signed-in session"),
            Self::NoToken => f.write_str("the session has no access token"),
            Self::Unavailable(e) => write!(f, "the session store is unavailable: {e}"),
        }
    }
}

impl std::error::Error for AccessTokenError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::MemorySessions;
    use crate::session::record::Record;

    fn parts_with(tokens: Option<SessionTokens>) -> Parts {
        let mut parts = http::Request::new(()).into_parts().0;
        if let Some(tokens) = tokens {
            parts.extensions.insert(tokens);
        }
        parts
    }

    #[tokio::test]
    async fn the_relay_reads_the_sessions_access_token_and_never_shows_it() {
        let store = MemorySessions::new();
        let sealer = Arc::new(Sealer::new(&[3; 32]).unwrap());
        let record = Record {
            subject: "ada".into(),
            sid: None,
            id_token: "h.p.s".into(),
            access_token: Some("the-access-token".into()),
            access_expires: Some(2_000_000_000),
            refresh_token: None,
            created: 1,
            last_seen: 1,
            ends: u64::MAX / 2,
            fresh_until: 2,
        };
        let sealed = sealer.seal("v/s1", &record).unwrap();
        store.save("v/s1", &sealed, u64::MAX / 2).await.unwrap();
        let tokens = |key: &str| {
            Some(SessionTokens::new(
                Arc::new(store.clone()),
                sealer.clone(),
                key.to_owned(),
            ))
        };
        let token = AccessToken::of(&parts_with(tokens("v/s1"))).await.unwrap();
        assert_eq!(token.secret(), "the-access-token");
        assert_eq!(
            token.expires_at(),
            Some(UNIX_EPOCH + Duration::from_secs(2_000_000_000))
        );
        assert!(
            !format!("{token:?}").contains("the-access-token"),
            "{token:?}"
        );
        // No session on the request, or none in the store: no token.
        assert!(matches!(
            AccessToken::of(&parts_with(None)).await,
            Err(AccessTokenError::NoSession)
        ));
        assert!(matches!(
            AccessToken::of(&parts_with(tokens("v/s2"))).await,
            Err(AccessTokenError::NoToken)
        ));
    }
}
