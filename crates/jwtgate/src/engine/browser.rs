//! Stage 5, browser answers: a refused navigation is sent to the chain's login (or shown the
//! 401 page), and a navigation of a user whose profile is incomplete goes to the profile page.
//! Only navigations are ever redirected: API calls, `fetch()` and XHR get the plain refusal.

use http::HeaderValue;
use http::request::Parts;

use super::{Chain, Decision, Engine};
use crate::navigation::{is_navigation, return_target};
use crate::percent::encode_query_value;
use crate::rejection::{Rejection, RejectionKind};

/// A refused request, pointed at the chain's first login when it is a navigation: a redirect
/// when no credential was sent (never on `public_or_jwt_` routes), the 401 page when one was
/// refused, a 503 page when the sign-in cannot be started.
#[cfg_attr(not(feature = "login"), allow(unused_variables, clippy::unused_async))]
pub(super) async fn refused(
    engine: &Engine,
    chain: Chain,
    parts: &Parts,
    rejection: Rejection,
) -> Rejection {
    #[cfg(feature = "login")]
    {
        use crate::login::BrowserAnswer;
        let sent = match rejection.kind() {
            // Signed out: sign in again, as if nothing had been sent.
            RejectionKind::MissingCredentials | RejectionKind::Revoked if !chain.public => false,
            RejectionKind::InvalidToken
            | RejectionKind::MalformedCredentials
            | RejectionKind::SessionMismatch => true,
            _ => return rejection,
        };
        if !is_navigation(parts) {
            return rejection;
        }
        let Some((v, login)) = engine
            .chain(chain.start)
            .find_map(|v| v.login.as_ref().map(|l| (v, l)))
        else {
            return rejection;
        };
        if sent {
            return rejection.with_page();
        }
        let (answer, cookies) = login
            .answer(v, &parts.headers, return_target(&parts.uri))
            .await;
        let rejection = match answer {
            BrowserAnswer::Redirect(location) => rejection.redirect_to(location),
            BrowserAnswer::Page => rejection.with_page(),
            BrowserAnswer::Unavailable { retry_after } => engine
                .reject(
                    RejectionKind::LoginUnavailable,
                    "sign-in is unavailable right now; try again in a minute",
                )
                .with_retry_after(retry_after)
                .with_page(),
        };
        cookies.into_iter().fold(rejection, Rejection::with_cookie)
    }
    #[cfg(not(feature = "login"))]
    rejection
}

/// The path of the chain's first login, where a browser that must sign in can be sent (the
/// forward-auth answer for nginx names it, with the path to come back to).
#[cfg(all(feature = "login", feature = "forward-auth"))]
pub(crate) fn login_path(engine: &Engine, chain: Chain) -> Option<&str> {
    engine
        .chain(chain.start)
        .find_map(|v| v.login.as_ref())
        .map(|login| login.paths().login_path())
}

/// Sends a browser navigation of a user whose profile is incomplete to the validator's
/// profile page (never the page itself, never an API call), keeping the session cookie.
pub(super) fn profile_redirect(
    engine: &Engine,
    parts: &Parts,
    decision: &Decision<'_>,
) -> Option<Rejection> {
    let Decision::Identified {
        validator,
        identity,
        set_cookie,
        ..
    } = decision
    else {
        return None;
    };
    if identity
        .user_record()
        .is_none_or(|record| record.profile_complete)
    {
        return None;
    }
    let profile_url = validator.profile_url.as_deref()?;
    if parts.uri.path() == profile_url || !is_navigation(parts) {
        return None;
    }
    let next = encode_query_value(return_target(&parts.uri));
    let location = HeaderValue::try_from(format!("{profile_url}?next={next}")).ok()?;
    tracing::debug!(validator = %validator.name, "profile incomplete: sent to the profile page");
    let rejection = engine
        .reject(
            RejectionKind::ProfileIncomplete,
            "the user's profile is incomplete",
        )
        .redirect_to(location);
    Some(
        set_cookie
            .iter()
            .cloned()
            .fold(rejection, Rejection::with_cookie),
    )
}
