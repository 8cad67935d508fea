//! Stage 1, credentials: the session-cookie guard, then the credential of every validator of
//! the chain, all found before any is verified, so that a malformed one refuses the request
//! whichever validator would have read it.

use smallvec::SmallVec;

use super::{Chain, Engine};
use crate::credentials::{CompiledSource, Credential, RequestView};
use crate::rejection::{Rejection, RejectionKind};
use crate::validator::CompiledValidator;

/// Each validator of a chain, in order, with what the request carries for it. Inline: chains
/// are short.
pub(super) type Found<'e, 'r> = SmallVec<[(&'e CompiledValidator, Option<Credential<'r>>); 4]>;

/// Why the request is refused before any credential is checked: its kind and description.
pub(super) type Refusal = (RejectionKind, &'static str);

pub(super) fn find<'e, 'r>(
    engine: &'e Engine,
    chain: Chain,
    view: &mut RequestView<'r>,
) -> Result<Found<'e, 'r>, Refusal> {
    if let Some(name) = &engine.session_cookie
        && view.may_carry_cookie(name)
    {
        tracing::warn!("request carries both a session cookie and a JWT route");
        return Err((
            RejectionKind::SessionMismatch,
            "a session cookie was sent to a token-authenticated route",
        ));
    }
    let mut found = Found::new();
    for v in engine.chain(chain.start) {
        let mode_cookie = v.cookie.as_ref().map(|c| c.name.as_str());
        match view.find(&v.sources, mode_cookie) {
            Ok(credential) => found.push((v, credential)),
            Err(why) => {
                tracing::debug!(validator = %v.name, reason = why, "malformed credentials");
                return Err((RejectionKind::MalformedCredentials, why));
            }
        }
    }
    Ok(found)
}

/// The 401 for a request that carried nothing any validator of the chain reads; it says where
/// the route looks (a Cloudflare route sent `Authorization` learns it reads Cloudflare's
/// header and cookie).
pub(super) fn nothing_sent(engine: &Engine, chain: Chain) -> Rejection {
    let mut places: Vec<String> = Vec::new();
    for v in engine.chain(chain.start) {
        let mode_cookie = v.cookie.as_ref().map(|c| format!("the {} cookie", c.name));
        for place in v
            .sources
            .iter()
            .map(CompiledSource::describe)
            .chain(mode_cookie)
        {
            if !places.contains(&place) {
                places.push(place);
            }
        }
    }
    let places = match places.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => "nothing".to_owned(),
    };
    Rejection::new(
        RejectionKind::MissingCredentials,
        format!("no credential was sent; this route reads {places}"),
        engine.realm.clone(),
    )
}

#[cfg(test)]
mod tests {
    use crate::{Algorithm, CookieMode, KeySource, Preset, Registry, TokenSource, User, Validator};

    const SECRET: &str = "thesecret-of-at-least-32-bytes!!";

    fn hs(name: &str) -> Validator {
        Validator::new(name)
            .issuer("i")
            .audience("a")
            .algorithm(Algorithm::HS256)
            .key(KeySource::secret(SECRET))
            .user(User::fixed(1))
    }

    #[test]
    fn a_request_without_credentials_learns_where_the_route_looks() {
        let registry = Registry::builder()
            .validator(hs("plain").next("more"))
            .validator(
                hs("more")
                    .token_sources([
                        TokenSource::authorization(),
                        TokenSource::header("X-Token"),
                        TokenSource::query("access_token"),
                    ])
                    .cookie(CookieMode::new("more_auth").secret(SECRET)),
            )
            .validator(Validator::new("cf").preset(Preset::cloudflare_access("acme", "tag")))
            .build()
            .unwrap();
        let engine = registry.engine();
        let said = |start| {
            super::nothing_sent(
                engine,
                super::Chain {
                    start,
                    public: false,
                },
            )
            .description()
            .to_owned()
        };
        assert_eq!(
            said(0),
            "no credential was sent; this route reads the Authorization header (Bearer), the \
             x-token header, the access_token query parameter or the __Host-more_auth cookie"
        );
        assert_eq!(
            said(1),
            "no credential was sent; this route reads the Authorization header (Bearer), the \
             x-token header, the access_token query parameter or the __Host-more_auth cookie"
        );
        assert_eq!(
            said(2),
            "no credential was sent; this route reads the cf-access-jwt-assertion header or the \
             CF_Authorization cookie"
        );
    }
}
