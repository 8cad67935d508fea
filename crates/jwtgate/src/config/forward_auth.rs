//! `[forward_auth]`: the check `jwtgate serve` answers for a reverse proxy in front of an app
//! in any language (see [`crate::forward_auth`]), judged by the file's `[[route]]`s.

use serde::Deserialize;
use toml::Spanned;

use super::Config;
use crate::error::Error;
use crate::forward_auth::{
    ForwardAuth, ForwardAuthBuilder, IdentityHeaders, SignInAnswer, TrustedProxies,
};
use crate::registry::Registry;

/// The check's path when the table names none.
const DEFAULT_PATH: &str = "/auth/check";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ForwardAuthToml {
    path: Option<Spanned<String>>,
    trusted_proxies: Option<Spanned<Vec<String>>>,
    sign_in: Option<Spanned<String>>,
    #[serde(default)]
    headers: HeadersToml,
}

/// `[forward_auth.headers]`: the identity headers' names.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadersToml {
    user: Option<Spanned<String>>,
    email: Option<Spanned<String>>,
    validator: Option<Spanned<String>>,
    partner: Option<Spanned<String>>,
}

impl Config {
    /// The path of the forward-auth check, when the file has a `[forward_auth]` table
    /// (default `/auth/check`).
    pub fn forward_auth_path(&self) -> Option<&str> {
        let table = self.file.forward_auth.as_ref()?;
        Some(table.path.as_ref().map_or(DEFAULT_PATH, |p| p.get_ref()))
    }

    /// The forward-auth check of `[forward_auth]`, its routes the file's `[[route]]`s with
    /// their modes and requirements from `registry`; `None` without the table.
    pub fn forward_auth(&self, registry: &Registry) -> Result<Option<ForwardAuth>, Error> {
        let Some(builder) = self.forward_auth_builder()? else {
            return Ok(None);
        };
        let builder = self.routes.iter().try_fold(builder, |b, route| {
            Ok::<_, Error>(b.route(route.path.clone(), route.layer(registry)?))
        })?;
        builder.build().map(Some)
    }

    /// The check's options, each checked at its key (on load, and again to build it).
    pub(super) fn forward_auth_builder(&self) -> Result<Option<ForwardAuthBuilder>, Error> {
        let Some(table) = &self.file.forward_auth else {
            return Ok(None);
        };
        let key = |name: &str| format!("forward_auth.{name}");
        if let Some(path) = &table.path
            && !(path.get_ref().starts_with('/') && path.get_ref().len() > 1)
        {
            return Err(self.error_at(
                path.span(),
                &key("path"),
                format!(
                    "{:?} must be a path such as \"{DEFAULT_PATH}\"",
                    path.get_ref()
                ),
            ));
        }
        let own_path = self.forward_auth_path().unwrap_or(DEFAULT_PATH);
        let mut builder = ForwardAuth::builder().path(own_path);
        if let Some(nets) = &table.trusted_proxies {
            let trusted = TrustedProxies::networks(nets.get_ref())
                .map_err(|e| self.error_at(nets.span(), &key("trusted_proxies"), e.to_string()))?;
            builder = builder.trusted_proxies(trusted);
        }
        if let Some(answer) = &table.sign_in {
            let answer = match answer.get_ref().as_str() {
                "redirect" => SignInAnswer::Redirect,
                "401" => SignInAnswer::Unauthorized,
                other => {
                    return Err(self.error_at(
                        answer.span(),
                        &key("sign_in"),
                        format!(
                            "{other:?} is not a sign-in answer: \"redirect\" (a 302, for \
                             Caddy, Traefik, Envoy) or \"401\" (with X-Auth-Request-Redirect, \
                             for nginx)"
                        ),
                    ));
                }
            };
            builder = builder.sign_in(answer);
        }
        let h = &table.headers;
        let mut headers = IdentityHeaders::oauth2_proxy();
        let renames: [(&str, &Option<Spanned<String>>, RenameFn); 4] = [
            ("user", &h.user, IdentityHeaders::user),
            ("email", &h.email, IdentityHeaders::email),
            ("validator", &h.validator, IdentityHeaders::validator),
            ("partner", &h.partner, IdentityHeaders::partner),
        ];
        for (name, value, rename) in renames {
            if let Some(value) = value {
                headers = rename(headers, value.get_ref()).map_err(|e| {
                    self.error_at(
                        value.span(),
                        &key(&format!("headers.{name}")),
                        e.to_string(),
                    )
                })?;
            }
        }
        Ok(Some(builder.identity_headers(headers)))
    }
}

type RenameFn = fn(IdentityHeaders, &str) -> Result<IdentityHeaders, Error>;

#[cfg(test)]
mod tests {
    use tower::ServiceExt as _;

    use super::*;
    use crate::forward_auth::Peer;

    const FILE: &str = r#"[[validator]]
name = "demo"
issuer = "i"
audience = "a"
algorithm = "HS256"
secret = "thesecret-of-at-least-32-bytes!!"
user = { claim = "sub" }

[[route]]
path = "/app/*"
auth = "jwt_demo"

[[route]]
path = "/feed/*"
auth = "public_or_jwt_demo"

[forward_auth]
trusted_proxies = ["127.0.0.0/8", "::1", "10.0.0.0/8"]
sign_in = "401"

[forward_auth.headers]
user = "X-User"
"#;

    fn parse(text: &str) -> Result<Config, Error> {
        Config::from_toml_str(text, "app.toml", None)
    }

    #[tokio::test]
    async fn the_table_builds_a_check_of_the_files_routes() {
        let config = parse(FILE).unwrap();
        assert_eq!(config.forward_auth_path(), Some("/auth/check"));
        let registry = config.registry().unwrap();
        let check = config.forward_auth(&registry).unwrap().unwrap();
        let token = jwtgate_test::mint(
            &jwtgate_test::TestKey::hmac("thesecret-of-at-least-32-bytes!!"),
            "HS256",
            serde_json::json!({}),
            &serde_json::json!({"iss": "i", "aud": "a", "sub": "u9",
                "exp": crate::jws::claims::now() + 60}),
        );
        let ask = |uri: &str, token: Option<&str>| {
            let mut req = http::Request::get("/auth/check").header("x-original-uri", uri);
            if let Some(t) = token {
                req = req.header("authorization", format!("Bearer {t}"));
            }
            let mut req = req.body(()).unwrap();
            req.extensions_mut()
                .insert(Peer("10.1.2.3:999".parse().unwrap()));
            check.clone().oneshot(req)
        };
        let res = ask("/app/x", Some(&token)).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["x-user"], "u9");
        assert_eq!(ask("/app/x", None).await.unwrap().status(), 401);
        assert_eq!(ask("/feed/x", None).await.unwrap().status(), 200);
        assert_eq!(ask("/other", Some(&token)).await.unwrap().status(), 403);
        // Without the table: no check.
        let plain = parse(&FILE[..FILE.find("[forward_auth]").unwrap()]).unwrap();
        assert_eq!(plain.forward_auth_path(), None);
        assert!(plain.forward_auth(&registry).unwrap().is_none());
    }

    #[test]
    fn bad_options_are_errors_at_their_keys() {
        let cases = [
            (
                FILE.replace("sign_in = \"401\"", "sign_in = \"302\""),
                "app.toml:19:1: key `forward_auth.sign_in`: \"302\" is not a sign-in answer",
            ),
            (
                FILE.replace("\"10.0.0.0/8\"", "\"10.0.0.1/8\""),
                "app.toml:18:1: key `forward_auth.trusted_proxies`: \"10.0.0.1/8\" has host bits set",
            ),
            (
                FILE.replace("user = \"X-User\"", "user = \"X User\""),
                "app.toml:22:1: key `forward_auth.headers.user`: \"X User\" is not an HTTP header name",
            ),
            (
                FILE.replace("sign_in = \"401\"", "path = \"auth/check\""),
                "app.toml:19:1: key `forward_auth.path`: \"auth/check\" must be a path",
            ),
        ];
        for (text, want) in cases {
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e}\nwanted: {want}");
        }
        let e = parse(&FILE.replace("sign_in", "signin"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "app.toml:19:1: unknown key `signin`; did you mean `sign_in`?"
        );
    }
}
