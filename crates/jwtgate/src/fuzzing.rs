//! Entry points for the fuzz targets in `fuzz/` (and for the stable test that replays their
//! corpora): each feeds untrusted bytes to one reader the way a request, a provider or an
//! operator would. Not part of the API: hidden, and free to change.
//!
//! Each function only returns: a panic, an endless loop or an unbounded allocation is a
//! finding. The answers are checked for what must hold whatever the input.
// A fuzz harness asserts: a broken invariant must panic, so that the fuzzer reports it.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::{Arc, OnceLock};

use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};

use crate::jws::algorithm::Algorithm;
use crate::jws::claim_set::ClaimSet;
use crate::jws::claims::ClaimRules;

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// A compact JWS: the token reader (header, claims, signature bytes).
pub fn compact_jws(data: &[u8]) {
    let Some(token) = text(data) else { return };
    if let Ok(parsed) = crate::jws::token::parse(token) {
        let _ = parsed.claims.names().count();
        let _ = parsed.with_signature(<[u8]>::len);
    }
}

/// A claim set: the strict in-place reader, then everything a handler can read of it.
pub fn claim_set(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let Ok(claims) = ClaimSet::parse(text.into()) else {
        return;
    };
    // What passed the strict read is always a tree (a number beyond f64 never passes).
    assert!(
        claims.tree().is_object(),
        "an accepted claim set builds a tree"
    );
    for name in claims.names() {
        let value = claims.get(name).expect("a listed claim is there");
        let _ = (
            value.as_str(),
            value.as_f64(),
            value.as_u64(),
            value.as_bool(),
        );
        let _ = value.find_str(|_| false);
    }
    let rules = ClaimRules {
        issuers: vec!["i".into()],
        issuer_patterns: Vec::new(),
        audiences: vec!["a".into()],
        authorized_party: Some("c".into()),
        leeway: 30,
    };
    let _ = rules.check(&claims, 1_700_000_000);
    let _ = rules.verdicts(&claims, 1_700_000_000);
}

/// A JWK set document, as a key source or a provider serves it.
pub fn jwk_set(data: &[u8]) {
    let _ = crate::jws::jwk::parse_jwks(data, &Algorithm::ALL, true);
    let _ = crate::jws::jwk::parse_jwks(data, &[Algorithm::RS256], false);
}

/// An OIDC discovery document of issuer `https://idp.example`.
pub fn discovery_document(data: &[u8]) {
    let _ = crate::remote::read_jwks_uri(data, "https://idp.example");
}

/// A config file.
pub fn config_file(data: &[u8]) {
    let Some(text) = text(data) else { return };
    // Parsed and checked only: building the registry would read the files it names.
    if let Err(e) = crate::config::Config::from_toml_str(text, "fuzz.toml", None) {
        let _ = e.to_string();
    }
}

/// A `Cookie` header (one header value of any bytes).
pub fn cookie_header(data: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(http::header::COOKIE, value);
    for name in ["a", "session", "__Host-session", "jwtgate_login_v"] {
        let _ = crate::credentials::cookie_value(&headers, name);
    }
}

/// What a login callback reads from the browser: its query, and the pending-login and
/// session cookies (the first line of `data` is the query, the rest a cookie value).
pub fn login_callback(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let (query, cookie) = text.split_once('\n').unwrap_or((text, ""));
    let pairs = crate::percent::query_pairs(query, 32);
    assert!(pairs.len() <= 32, "the pairs read are bounded");
    let mode = cookie_mode();
    let _ = mode.open("jwtgate_login_v", cookie);
    let rules = ClaimRules {
        issuers: vec!["i".into()],
        issuer_patterns: Vec::new(),
        audiences: vec!["a".into()],
        authorized_party: None,
        leeway: 0,
    };
    let _ = mode.read(cookie, &rules, 1_700_000_000);
}

fn cookie_mode() -> &'static crate::cookie::CompiledCookieMode {
    static MODE: OnceLock<crate::cookie::CompiledCookieMode> = OnceLock::new();
    MODE.get_or_init(|| {
        crate::CookieMode::new("session")
            .secret("fuzz-cookie-secret-fuzz-cookie-32")
            .compile("v", &crate::session::SessionOptions::new())
            .expect("a valid cookie mode")
    })
}

const SECRET: &str = "fuzz-signing-secret-fuzz-signing!";

/// What the fuzzed requests go through: one HS256 validator with a cookie mode, and a
/// runtime to drive the layer.
struct Site {
    registry: crate::Registry,
    runtime: tokio::runtime::Runtime,
}

fn site() -> &'static Site {
    static SITE: OnceLock<Site> = OnceLock::new();
    SITE.get_or_init(|| {
        let registry = crate::Registry::builder()
            .validator(
                crate::Validator::new("v")
                    .issuer("i")
                    .audience("a")
                    .algorithm(Algorithm::HS256)
                    .key(crate::KeySource::secret(SECRET))
                    .user(crate::User::claim("sub"))
                    .token_sources([
                        crate::TokenSource::authorization(),
                        crate::TokenSource::cookie("idp_token"),
                        crate::TokenSource::header("x-token"),
                    ])
                    .cookie(crate::CookieMode::new("session").secret(SECRET)),
            )
            .build()
            .expect("a valid registry");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        Site { registry, runtime }
    })
}

/// A back-channel logout token (verified as the login's client `web` would verify one).
pub fn logout_token(data: &[u8]) {
    use crate::login::ClientToken;
    let Some(token) = text(data) else { return };
    let site = site();
    let validator = &site.registry.engine().validators[0];
    let verdict =
        site.runtime
            .block_on(validator.verify_client_token(token, "web", ClientToken::Logout));
    // Nothing unsigned by the validator's key passes.
    if verdict.is_ok() {
        assert!(
            crate::jws::token::parse(token).is_ok(),
            "an accepted logout token parses"
        );
    }
}

/// A whole request through the layer of a `jwt_` route, its headers fuzzed: lines of
/// `name: value`. The answer is a 200 or a refusal the layer writes, never anything else.
pub fn request(data: &[u8]) {
    let site = site();
    let mut req = Request::get("/x");
    if let Some(headers) = req.headers_mut() {
        for line in data.split(|b| *b == b'\n').take(64) {
            let Some(at) = line.iter().position(|b| *b == b':') else {
                continue;
            };
            let (name, value) = line.split_at(at);
            let value = value[1..].trim_ascii();
            if let (Ok(name), Ok(value)) =
                (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
            {
                headers.append(name, value);
            }
        }
    }
    let Ok(req) = req.body(String::new()) else {
        return;
    };
    let layer = site.registry.layer("jwt_v").expect("a known validator");
    let inner = tower_service_fn(|_req: Request<String>| async {
        Ok::<_, std::convert::Infallible>(Response::new(String::from("ok")))
    });
    let mut service = tower_layer::Layer::layer(&layer, inner);
    let res = site.runtime.block_on(async move {
        std::future::poll_fn(|cx| tower_service::Service::poll_ready(&mut service, cx)).await?;
        tower_service::Service::call(&mut service, req).await
    });
    let Ok(res) = res;
    let status = res.status();
    assert!(
        [
            StatusCode::OK,
            StatusCode::NO_CONTENT,
            StatusCode::UNAUTHORIZED,
            StatusCode::FORBIDDEN,
            StatusCode::SERVICE_UNAVAILABLE,
        ]
        .contains(&status),
        "unexpected status {status}"
    );
    if status == StatusCode::UNAUTHORIZED {
        assert!(
            res.headers().contains_key(http::header::WWW_AUTHENTICATE),
            "every 401 has a challenge"
        );
    }
}

/// A `tower::service_fn` without the `tower` crate.
fn tower_service_fn<F>(f: F) -> ServiceFn<F> {
    ServiceFn(Arc::new(f))
}

struct ServiceFn<F>(Arc<F>);

impl<F> Clone for ServiceFn<F> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<F, Fut, Req, Res, E> tower_service::Service<Req> for ServiceFn<F>
where
    F: Fn(Req) -> Fut,
    Fut: std::future::Future<Output = Result<Res, E>>,
{
    type Response = Res;
    type Error = E;
    type Future = Fut;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), E>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Fut {
        (self.0)(req)
    }
}

/// The signature-level entry point published vectors (Wycheproof's JSON Web Signature and
/// JSON Web Key files) run through: compact JWS `jws` against `key` (a JWK or a JWK set, as
/// JSON) the way a validator pinned to the key's algorithm verifies a token: the header read
/// strictly (`crit` refused), the algorithm pinned, keys parsed and checked as a key source's
/// (type against algorithm, `use`, `key_ops`, sizes), the key chosen by `kid`, the signature
/// verified. The payload is not read as claims (the vectors sign plain bytes). `Ok` when it
/// verifies; else why not.
#[allow(clippy::missing_errors_doc)]
pub fn verify_jws(jws: &str, key: &str) -> Result<(), String> {
    let key: serde_json::Value = serde_json::from_str(key).map_err(|e| e.to_string())?;
    let set = if key.get("keys").is_some() {
        key
    } else {
        serde_json::json!({ "keys": [key] })
    };
    let parts = crate::jws::token::parse_signed(jws).map_err(|e| e.description().to_owned())?;
    // The payload is decoded as a token's always is (strict base64url), though not read.
    crate::jws::token::decode_payload(parts.payload).map_err(|e| e.description().to_owned())?;
    // The operator's pin: the keys' one algorithm; keys that name none (or several) leave it
    // to the token's header, which is what a validator configured for that algorithm does.
    let named: Vec<&str> = set["keys"]
        .as_array()
        .map(|keys| keys.iter().filter_map(|k| k["alg"].as_str()).collect())
        .unwrap_or_default();
    let pinned = match named.as_slice() {
        [one, rest @ ..] if rest.iter().all(|a| a == one) => *one,
        _ => parts.alg.as_str(),
    };
    let alg: Algorithm = pinned.parse().map_err(|e: crate::Error| e.to_string())?;
    if parts.alg.as_str() != alg.as_str() {
        return Err("token algorithm not accepted".into());
    }
    let (keys, _) = crate::jws::jwk::parse_jwks(set.to_string().as_bytes(), &[alg], true)
        .map_err(|e| e.message)?;
    let candidates = keys
        .select(
            parts.kid.as_ref().map(crate::jws::token::ShortText::as_str),
            alg,
        )
        .map_err(|e| crate::failure::Failure::Key(e).description().to_owned())?;
    let mut checked = crate::jws::key_set::CheckedSignatures::default();
    let verified = crate::jws::token::with_signature(parts.signature, |signature| {
        crate::jws::key_set::KeySet::verify(
            candidates,
            alg,
            parts.signing_input.as_bytes(),
            signature,
            &mut checked,
        )
    })
    .map_err(|e| e.description().to_owned())?;
    verified
        .map(|_| ())
        .ok_or_else(|| "token signature is invalid".to_owned())
}

/// Everything a handler can read of one claim, for the JSON readers' differential test.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimRead {
    /// The value's JSON text, as it was signed.
    pub text: String,
    /// As a string (escapes resolved).
    pub string: Option<String>,
    /// As a number.
    pub number: Option<f64>,
    /// As a non-negative integer.
    pub integer: Option<u64>,
    /// As a boolean.
    pub boolean: Option<bool>,
    /// Whether it is `null`.
    pub null: bool,
    /// The claim in the tree a handler's `Payload::as_json` shows.
    pub tree: serde_json::Value,
}

/// A claim set's text read by jwtgate's strict in-place reader: each top-level claim as
/// handlers read it, or why the set is refused.
#[allow(clippy::missing_errors_doc)]
pub fn read_claims(text: &str) -> Result<Vec<(String, ClaimRead)>, String> {
    let claims = ClaimSet::parse(text.into()).map_err(|e| e.to_string())?;
    let tree = claims.tree().clone();
    Ok(claims
        .names()
        .filter_map(|name| {
            let raw = claims.get(name)?;
            Some((
                name.to_owned(),
                ClaimRead {
                    text: raw.json_text().to_owned(),
                    string: raw.as_str().map(std::borrow::Cow::into_owned),
                    number: raw.as_f64(),
                    integer: raw.as_u64(),
                    boolean: raw.as_bool(),
                    null: raw.is_null(),
                    tree: tree.get(name).cloned().unwrap_or(serde_json::Value::Null),
                },
            ))
        })
        .collect())
}
