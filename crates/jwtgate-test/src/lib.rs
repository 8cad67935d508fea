//! Test kit for jwtgate, and the way to test your own handlers: fixed key pairs (RSA, EC
//! P-256/P-384, Ed25519, HMAC), token minting with any header and claims (valid, expired,
//! for another audience), and an in-process JWKS / OIDC provider on 127.0.0.1 whose keys path
//! you choose and whose behaviour tests can change (slow, failing, garbage).
//!
//! ```
//! use jwtgate::{Algorithm, KeySource, Registry, Validator, User};
//! use jwtgate_test::{Provider, TestKey, expired_token, jwks, valid_token};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // A provider serving your key set where your real one does.
//! let key = TestKey::rsa();
//! let provider = Provider::start_at("/protocol/openid-connect/certs", jwks([key.jwk("k1", "RS256")])).await;
//! let registry = Registry::builder()
//!     .validator(
//!         Validator::new("idp")
//!             .issuer(provider.issuer())
//!             .audience("my-api")
//!             .algorithm(Algorithm::RS256)
//!             .key(KeySource::jwks_url(provider.jwks_url()))
//!             .user(User::claim("sub")),
//!     )
//!     .build()
//!     .unwrap();
//! let good = valid_token(&key, "RS256", Some("k1"), &provider.issuer(), "my-api", "ada");
//! let old = expired_token(&key, "RS256", Some("k1"), &provider.issuer(), "my-api", "ada");
//! let verdicts = registry.inspect(&good).await;
//! assert_eq!(verdicts[0].refusal(), None);
//! assert_eq!(registry.inspect(&old).await[0].refusal(), Some("token expired"));
//! # }
//! ```
//!
//! The kit does not depend on jwtgate, so jwtgate's own tests see exactly one copy of its
//! types.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
mod presets;

pub use presets::{
    auth0_claims, auth0_token, cloudflare_access_claims, cloudflare_access_token,
    cloudflare_service_claims, entra_id_claims, entra_id_token, keycloak_claims, keycloak_token,
    rs256_token,
};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// base64url without padding.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A signing key with its public halves.
#[derive(Clone)]
pub struct TestKey {
    private_pem: &'static str,
    public_pem: &'static str,
    jwk: Value,
    secret: Option<Vec<u8>>,
}

fn public_jwk(name: &str) -> Value {
    let all: Value =
        serde_json::from_str(include_str!("../keys/public_jwks.json")).expect("bundled JWKs");
    all[name].clone()
}

impl std::fmt::Debug for TestKey {
    /// Names the key type only; the private key stays out of test output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey")
            .field("kty", &self.jwk["kty"])
            .field("hmac", &self.secret.is_some())
            .finish_non_exhaustive()
    }
}

impl TestKey {
    /// A 2048-bit RSA key (RS*/PS*).
    pub fn rsa() -> Self {
        Self::pem(
            include_str!("../keys/rsa.pem"),
            include_str!("../keys/rsa_pub.pem"),
            "rsa",
        )
    }
    /// A second, different 2048-bit RSA key (for rotation and wrong-key tests).
    pub fn rsa_alt() -> Self {
        Self::pem(
            include_str!("../keys/rsa2.pem"),
            include_str!("../keys/rsa2_pub.pem"),
            "rsa2",
        )
    }
    /// A 1024-bit RSA key, too small to be accepted.
    pub fn rsa_1024() -> Self {
        Self::pem(
            include_str!("../keys/rsa1024.pem"),
            include_str!("../keys/rsa1024_pub.pem"),
            "rsa1024",
        )
    }
    /// A P-256 key (ES256).
    pub fn ec_p256() -> Self {
        Self::pem(
            include_str!("../keys/ec.pem"),
            include_str!("../keys/ec_pub.pem"),
            "ec",
        )
    }
    /// A P-384 key (ES384).
    pub fn ec_p384() -> Self {
        Self::pem(
            include_str!("../keys/ec384.pem"),
            include_str!("../keys/ec384_pub.pem"),
            "ec384",
        )
    }
    /// An Ed25519 key (EdDSA).
    pub fn ed25519() -> Self {
        Self::pem(
            include_str!("../keys/ed.pem"),
            include_str!("../keys/ed_pub.pem"),
            "ed",
        )
    }
    /// An HMAC secret (HS*).
    pub fn hmac(secret: impl Into<Vec<u8>>) -> Self {
        Self {
            private_pem: "",
            public_pem: "",
            jwk: Value::Null,
            secret: Some(secret.into()),
        }
    }

    fn pem(private_pem: &'static str, public_pem: &'static str, name: &str) -> Self {
        Self {
            private_pem,
            public_pem,
            jwk: public_jwk(name),
            secret: None,
        }
    }

    /// The public key as PEM (SPKI).
    pub fn public_pem(&self) -> &'static str {
        self.public_pem
    }

    /// The private key as PEM (PKCS#8), for `jwtgate mint`.
    pub fn private_pem(&self) -> &'static str {
        self.private_pem
    }

    /// The public JWK with `kid`, `use: sig` and `alg`.
    pub fn jwk(&self, kid: &str, alg: &str) -> Value {
        let mut jwk = self.jwk.clone();
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        jwk["alg"] = json!(alg);
        jwk
    }

    /// The public JWK with only `kid` (no `use`, no `alg`).
    pub fn bare_jwk(&self, kid: &str) -> Value {
        let mut jwk = self.jwk.clone();
        jwk["kid"] = json!(kid);
        jwk
    }

    fn encoding_key(&self) -> EncodingKey {
        if let Some(secret) = &self.secret {
            return EncodingKey::from_secret(secret);
        }
        let pem = self.private_pem.as_bytes();
        match self.jwk["kty"].as_str() {
            Some("RSA") => EncodingKey::from_rsa_pem(pem),
            Some("EC") => EncodingKey::from_ec_pem(pem),
            _ => EncodingKey::from_ed_pem(pem),
        }
        .expect("bundled key parses")
    }

    /// Signs `input` with `alg` (through aws-lc-rs, whatever the process default).
    pub fn sign(&self, alg: &str, input: &[u8]) -> Vec<u8> {
        let alg: Algorithm = alg.parse().expect("a known algorithm");
        let signer = (DEFAULT_PROVIDER.signer_factory)(&alg, &self.encoding_key())
            .expect("key fits algorithm");
        signer.try_sign(input).expect("signing works")
    }
}

/// A JWK set document from JWKs.
pub fn jwks(keys: impl IntoIterator<Item = Value>) -> Value {
    json!({ "keys": keys.into_iter().collect::<Vec<_>>() })
}

/// Mints a compact JWS from raw header and claims JSON, signed by `key` with `sign_alg`
/// (which may differ from the header's `alg`, to forge confused tokens).
pub fn mint_raw(key: &TestKey, sign_alg: &str, header_json: &str, claims_json: &str) -> String {
    let input = format!("{}.{}", b64(header_json), b64(claims_json));
    let signature = key.sign(sign_alg, input.as_bytes());
    format!("{input}.{}", b64(signature))
}

/// Mints a token: header `{"alg": alg, "typ": "JWT"}` plus `extra_header`, and `claims`.
pub fn mint(key: &TestKey, alg: &str, extra_header: Value, claims: &Value) -> String {
    let mut header = json!({ "alg": alg, "typ": "JWT" });
    if let (Some(h), Value::Object(extra)) = (header.as_object_mut(), extra_header) {
        h.extend(extra);
    }
    mint_raw(key, alg, &header.to_string(), &claims.to_string())
}

/// A token for `sub`, from `iss` to `aud`, valid for five minutes.
pub fn valid_token(
    key: &TestKey,
    alg: &str,
    kid: Option<&str>,
    iss: &str,
    aud: &str,
    sub: &str,
) -> String {
    token_for(key, alg, kid, iss, aud, sub, 300)
}

/// The same token, expired a minute ago.
pub fn expired_token(
    key: &TestKey,
    alg: &str,
    kid: Option<&str>,
    iss: &str,
    aud: &str,
    sub: &str,
) -> String {
    token_for(key, alg, kid, iss, aud, sub, -60)
}

/// A valid token for another audience (`someone-else`).
pub fn wrong_audience_token(
    key: &TestKey,
    alg: &str,
    kid: Option<&str>,
    iss: &str,
    sub: &str,
) -> String {
    token_for(key, alg, kid, iss, "someone-else", sub, 300)
}

fn token_for(
    key: &TestKey,
    alg: &str,
    kid: Option<&str>,
    iss: &str,
    aud: &str,
    sub: &str,
    exp_delta: i64,
) -> String {
    let mut c = claims(iss, aud, exp_delta);
    c["sub"] = json!(sub);
    c["iat"] = json!(now());
    let header = match kid {
        Some(kid) => json!({ "kid": kid }),
        None => json!({}),
    };
    mint(key, alg, header, &c)
}

/// Claims with `iss`, `aud` and `exp = now + exp_delta`.
pub fn claims(iss: &str, aud: impl Into<Value>, exp_delta: i64) -> Value {
    json!({ "iss": iss, "aud": aud.into(), "exp": now() as i64 + exp_delta })
}

/// How the provider answers its JWKS endpoint.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Behavior {
    /// The current key set, 200.
    Serve,
    /// This status with a short HTML body.
    Status(u16),
    /// 200 with this body as `application/json`.
    Body(String),
    /// Sleeps, then serves the key set.
    Delay(Duration),
    /// 200 with a JSON-looking body of this many bytes.
    Huge(usize),
    /// 302 to this URL.
    Redirect(String),
}

/// A code handed out by `/authorize`, waiting for `/token`.
struct Grant {
    client_id: String,
    redirect_uri: String,
    nonce: String,
    challenge: String,
    user: String,
    /// The provider session this sign-in opened (`sid` in the ID token).
    sid: String,
}

/// A refresh token handed out by `/token`, waiting to be spent (once: they rotate).
struct Refreshable {
    client_id: String,
    user: String,
    sid: String,
}

/// What the token endpoint does with sessions: lifetimes, delays, refresh tokens.
struct Sessions {
    /// Lifetime of the ID and access tokens it issues, in seconds.
    lifetime: u64,
    /// How long a refresh grant takes to answer.
    refresh_delay: Duration,
    refresh_tokens: HashMap<String, Refreshable>,
    /// Refresh grants answered so far (refused ones included).
    refresh_grants: usize,
    /// Tokens sent to the revocation endpoint (RFC 7009).
    revoked: Vec<String>,
    next: usize,
    /// Claims added to every ID token (say 150 groups, as large Entra or Keycloak tokens).
    extra_claims: serde_json::Map<String, Value>,
    /// How long before now tokens say they were issued (`iat`).
    backdate: u64,
}

struct ProviderState {
    sessions: Mutex<Sessions>,
    login_key: Mutex<Option<(TestKey, String)>>,
    grants: Mutex<HashMap<String, Grant>>,
    next_code: AtomicUsize,
    token_hits: AtomicUsize,
    forced_nonce: Mutex<Option<String>>,
    client_auth: Mutex<Vec<String>>,
    jwks: Mutex<Value>,
    behavior: Mutex<Behavior>,
    cache_control: Mutex<Option<String>>,
    discovery_issuer: Mutex<Option<String>>,
    base: String,
    keys_path: String,
    jwks_hits: AtomicUsize,
    discovery_hits: AtomicUsize,
    other_hits: AtomicUsize,
}

/// The paths real providers serve their key sets at, which the test provider serves too, so
/// that presets can be tested against it with only their base URL changed.
pub const PROVIDER_JWKS_PATHS: [&str; 5] = [
    "/cdn-cgi/access/certs",          // Cloudflare Access
    "/protocol/openid-connect/certs", // Keycloak (under /realms/<realm>)
    "/.well-known/jwks.json",         // Auth0, Cognito (under /<pool>)
    "/discovery/v2.0/keys",           // Entra ID (under /<tenant>)
    "/oauth2/v3/certs",               // Google
];

/// An identity provider on 127.0.0.1: `/certs` and every path of [`PROVIDER_JWKS_PATHS`]
/// (JWKS), `/.well-known/openid-configuration`, and any other path counted as a stray hit.
#[derive(Clone)]
pub struct Provider {
    addr: SocketAddr,
    state: Arc<ProviderState>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// Starts a provider serving `jwks` at `/certs` on the current tokio runtime.
    pub async fn start(jwks: Value) -> Self {
        Self::start_at("/certs", jwks).await
    }

    /// Starts a provider serving `jwks` at `keys_path` (say Keycloak's
    /// `/protocol/openid-connect/certs`); [`jwks_url`](Self::jwks_url) and the discovery
    /// document name it.
    pub async fn start_at(keys_path: &str, jwks: Value) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        Self::serve_at(listener, keys_path, jwks)
    }

    /// Serves on an already bound listener (the quickstart binds its own port).
    pub fn serve(listener: tokio::net::TcpListener, jwks: Value) -> Self {
        Self::serve_at(listener, "/certs", jwks)
    }

    /// Serves on an already bound listener, the key set at `keys_path`.
    pub fn serve_at(listener: tokio::net::TcpListener, keys_path: &str, jwks: Value) -> Self {
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(ProviderState {
            sessions: Mutex::new(Sessions {
                lifetime: 300,
                refresh_delay: Duration::ZERO,
                refresh_tokens: HashMap::new(),
                refresh_grants: 0,
                revoked: Vec::new(),
                next: 1,
                extra_claims: serde_json::Map::new(),
                backdate: 0,
            }),
            login_key: Mutex::new(None),
            grants: Mutex::new(HashMap::new()),
            next_code: AtomicUsize::new(1),
            token_hits: AtomicUsize::new(0),
            forced_nonce: Mutex::new(None),
            client_auth: Mutex::new(Vec::new()),
            jwks: Mutex::new(jwks),
            behavior: Mutex::new(Behavior::Serve),
            cache_control: Mutex::new(None),
            discovery_issuer: Mutex::new(None),
            base: format!("http://{addr}"),
            keys_path: format!("/{}", keys_path.trim_start_matches('/')),
            jwks_hits: AtomicUsize::new(0),
            discovery_hits: AtomicUsize::new(0),
            other_hits: AtomicUsize::new(0),
        });
        let app = Self::router(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state }
    }

    /// The provider's routes, to mount in another app.
    fn router(state: Arc<ProviderState>) -> Router {
        Router::new()
            .route("/certs", get(certs))
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(authorize_form).post(authorize_submit))
            .route("/token", axum::routing::post(token))
            .route("/revoke", axum::routing::post(revoke))
            .route("/logout", get(end_session))
            .route(
                "/cdn-cgi/access/login/{host}",
                get(access_login_form).post(access_login_submit),
            )
            .fallback(other)
            .with_state(state)
    }

    /// `http://127.0.0.1:<port>`, also the issuer of the discovery document.
    pub fn issuer(&self) -> String {
        self.state.base.clone()
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        format!("{}{}", self.state.base, self.state.keys_path)
    }

    /// The address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the served key set.
    pub fn set_jwks(&self, jwks: Value) {
        *self.state.jwks.lock().expect("lock") = jwks;
    }

    /// Changes how `/certs` answers.
    pub fn set_behavior(&self, behavior: Behavior) {
        *self.state.behavior.lock().expect("lock") = behavior;
    }

    /// Sends this `Cache-Control` with the key set.
    pub fn set_cache_control(&self, value: Option<&str>) {
        *self.state.cache_control.lock().expect("lock") = value.map(str::to_owned);
    }

    /// Makes the discovery document claim another issuer.
    pub fn set_discovery_issuer(&self, issuer: &str) {
        *self.state.discovery_issuer.lock().expect("lock") = Some(issuer.to_owned());
    }

    /// Turns on the login endpoints (`/authorize`, `/token`, `/logout`, and a Cloudflare
    /// Access-style `/cdn-cgi/access/login/<host>`): ID tokens are signed by `key` with `kid`
    /// (which the served key set must hold). Any user name signs in; its email is
    /// `<name>@example.com`.
    pub fn enable_login(&self, key: TestKey, kid: &str) {
        *self.state.login_key.lock().expect("lock") = Some((key, kid.to_owned()));
    }

    /// Makes `/token` put this `nonce` in ID tokens instead of the one asked for (a test of
    /// nonce checking).
    pub fn force_nonce(&self, nonce: Option<&str>) {
        *self.state.forced_nonce.lock().expect("lock") = nonce.map(str::to_owned);
    }

    /// How each `/token` request authenticated its client: `basic <id>:<secret>` or
    /// `public <id>`.
    pub fn client_auth(&self) -> Vec<String> {
        self.state.client_auth.lock().expect("lock").clone()
    }

    /// How long the ID and access tokens of sign-ins and refreshes live (default 300 s).
    pub fn set_token_lifetime(&self, secs: u64) {
        self.state.sessions.lock().expect("lock").lifetime = secs;
    }

    /// How long a refresh grant takes to answer (default: at once).
    pub fn set_refresh_delay(&self, delay: Duration) {
        self.state.sessions.lock().expect("lock").refresh_delay = delay;
    }

    /// Claims every ID token from now on carries besides its own (a large `groups` list...).
    pub fn set_extra_claims(&self, claims: Value) {
        if let Value::Object(map) = claims {
            self.state.sessions.lock().expect("lock").extra_claims = map;
        }
    }

    /// Tokens say they were issued `secs` before they were (a long lifetime on paper, so that
    /// a client's refresh margin comes before their real `exp`: the bench's every-request
    /// refresh).
    pub fn set_issued_earlier(&self, secs: u64) {
        self.state.sessions.lock().expect("lock").backdate = secs;
    }

    /// Refresh grants asked for so far (refused ones included).
    pub fn refresh_grants(&self) -> usize {
        self.state.sessions.lock().expect("lock").refresh_grants
    }

    /// Refresh tokens still valid (each is spent by one refresh: they rotate).
    pub fn live_refresh_tokens(&self) -> Vec<String> {
        let sessions = self.state.sessions.lock().expect("lock");
        sessions.refresh_tokens.keys().cloned().collect()
    }

    /// Revokes every refresh token, as a provider's admin ending sessions would.
    pub fn revoke_refresh_tokens(&self) {
        self.state
            .sessions
            .lock()
            .expect("lock")
            .refresh_tokens
            .clear();
    }

    /// Tokens sent to the revocation endpoint (RFC 7009) so far.
    pub fn revoked_tokens(&self) -> Vec<String> {
        self.state.sessions.lock().expect("lock").revoked.clone()
    }

    /// Requests to `/token` so far.
    pub fn token_hits(&self) -> usize {
        self.state.token_hits.load(Ordering::SeqCst)
    }

    /// Requests to `/certs` so far.
    pub fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    /// Requests to the discovery document so far.
    pub fn discovery_hits(&self) -> usize {
        self.state.discovery_hits.load(Ordering::SeqCst)
    }

    /// Requests to any other path so far.
    pub fn other_hits(&self) -> usize {
        self.state.other_hits.load(Ordering::SeqCst)
    }
}

async fn certs(State(state): State<Arc<ProviderState>>) -> Response {
    state.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let behavior = state.behavior.lock().expect("lock").clone();
    let json = |body: String| {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(cc) = state.cache_control.lock().expect("lock").as_deref()
            && let Ok(v) = HeaderValue::from_str(cc)
        {
            headers.insert(header::CACHE_CONTROL, v);
        }
        (StatusCode::OK, headers, body).into_response()
    };
    match behavior {
        Behavior::Serve => json(state.jwks.lock().expect("lock").to_string()),
        Behavior::Delay(d) => {
            tokio::time::sleep(d).await;
            json(state.jwks.lock().expect("lock").to_string())
        }
        Behavior::Status(code) => (
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body>provider error</body></html>",
        )
            .into_response(),
        Behavior::Body(body) => json(body),
        Behavior::Redirect(to) => (StatusCode::FOUND, [(header::LOCATION, to)]).into_response(),
        Behavior::Huge(n) => {
            let filler = "a".repeat(n.saturating_sub(14));
            json(format!("{{\"keys\":[\"{filler}\"]}}"))
        }
    }
}

async fn discovery(State(state): State<Arc<ProviderState>>) -> Response {
    state.discovery_hits.fetch_add(1, Ordering::SeqCst);
    let issuer = state
        .discovery_issuer
        .lock()
        .expect("lock")
        .clone()
        .unwrap_or_else(|| state.base.clone());
    let doc = json!({
        "issuer": issuer,
        "jwks_uri": format!("{}{}", state.base, state.keys_path),
        "authorization_endpoint": format!("{}/authorize", state.base),
        "token_endpoint": format!("{}/token", state.base),
        "end_session_endpoint": format!("{}/logout", state.base),
        "revocation_endpoint": format!("{}/revoke", state.base),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.to_string(),
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html(body: &str) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!("<!doctype html><html><head><meta charset=\"utf-8\"><title>Demo sign-in</title></head><body>{body}</body></html>"),
    )
        .into_response()
}

fn bad_request(why: &str) -> Response {
    (StatusCode::BAD_REQUEST, why.to_owned()).into_response()
}

/// The authorization endpoint: a sign-in form carrying the request's parameters.
async fn authorize_form(Query(q): Query<HashMap<String, String>>) -> Response {
    let required = [
        "client_id",
        "redirect_uri",
        "state",
        "nonce",
        "code_challenge",
    ];
    if q.get("response_type").map(String::as_str) != Some("code")
        || q.get("code_challenge_method").map(String::as_str) != Some("S256")
        || required
            .iter()
            .any(|k| q.get(*k).is_none_or(String::is_empty))
    {
        return bad_request("response_type=code, PKCE S256, state and nonce are required");
    }
    let hidden: String = required
        .iter()
        .map(|k| {
            format!(
                "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
                escape(&q[*k])
            )
        })
        .collect();
    html(&format!(
        "<h1>Demo identity provider</h1><form method=\"post\" action=\"/authorize\">{hidden}\
         <label>User <input id=\"username\" name=\"username\" value=\"ada\"></label>\
         <button id=\"sign-in\" name=\"decision\" value=\"allow\" type=\"submit\">Sign in</button>\
         <button id=\"deny\" name=\"decision\" value=\"deny\" type=\"submit\">Deny</button></form>"
    ))
}

fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            )
        })
        .collect();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", query.join("&"))
}

/// The form's submission: a single-use code back to the client (or `access_denied`).
async fn authorize_submit(
    State(state): State<Arc<ProviderState>>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let field = |k: &str| f.get(k).cloned().unwrap_or_default();
    let redirect_uri = field("redirect_uri");
    if redirect_uri.is_empty() {
        return bad_request("no redirect_uri");
    }
    let target = if field("decision") == "deny" {
        with_query(
            &redirect_uri,
            &[("error", "access_denied"), ("state", &field("state"))],
        )
    } else {
        let code = format!("code-{}", state.next_code.fetch_add(1, Ordering::SeqCst));
        state.grants.lock().expect("lock").insert(
            code.clone(),
            Grant {
                client_id: field("client_id"),
                redirect_uri: redirect_uri.clone(),
                nonce: field("nonce"),
                challenge: field("code_challenge"),
                user: field("username"),
                sid: format!("sid-{}", code.trim_start_matches("code-")),
            },
        );
        with_query(
            &redirect_uri,
            &[("code", &code), ("state", &field("state"))],
        )
    };
    (StatusCode::FOUND, [(header::LOCATION, target)]).into_response()
}

/// The token endpoint: each code once, for its client and redirect URI, with its verifier.
async fn token(
    State(state): State<Arc<ProviderState>>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    state.token_hits.fetch_add(1, Ordering::SeqCst);
    let invalid = |why: &str| {
        (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"error": "invalid_grant", "error_description": why}).to_string(),
        )
            .into_response()
    };
    let field = |k: &str| f.get(k).cloned().unwrap_or_default();
    if field("grant_type") == "refresh_token" {
        return refresh(&state, &field("refresh_token")).await;
    }
    let Some(grant) = state.grants.lock().expect("lock").remove(&field("code")) else {
        return invalid("unknown or used code");
    };
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let client_id = match &basic {
        Some(credentials) => {
            state
                .client_auth
                .lock()
                .expect("lock")
                .push(format!("basic {credentials}"));
            credentials
                .split_once(':')
                .map(|(id, _)| id.to_owned())
                .unwrap_or_default()
        }
        None => {
            state
                .client_auth
                .lock()
                .expect("lock")
                .push(format!("public {}", field("client_id")));
            field("client_id")
        }
    };
    let verifier_hash = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        field("code_verifier").as_bytes(),
    );
    if field("grant_type") != "authorization_code"
        || client_id != grant.client_id
        || field("redirect_uri") != grant.redirect_uri
        || b64(verifier_hash.as_ref()) != grant.challenge
    {
        return invalid("client, redirect_uri or code_verifier does not match");
    }
    let nonce = state
        .forced_nonce
        .lock()
        .expect("lock")
        .clone()
        .unwrap_or(grant.nonce);
    issue_tokens(
        &state,
        Refreshable {
            client_id: grant.client_id,
            user: grant.user,
            sid: grant.sid,
        },
        Some(&nonce),
    )
}

/// A token response for a sign-in (with its `nonce`) or a refresh: an ID token, an access
/// token and a new refresh token.
fn issue_tokens(state: &ProviderState, who: Refreshable, nonce: Option<&str>) -> Response {
    let Some((key, kid)) = state.login_key.lock().expect("lock").clone() else {
        return bad_request("login is not enabled");
    };
    let t = now();
    let mut sessions = state.sessions.lock().expect("lock");
    let lifetime = sessions.lifetime;
    let iat = t.saturating_sub(sessions.backdate);
    let mut claims = json!({
        "iss": state.base, "aud": who.client_id, "sub": who.user,
        "email": format!("{}@example.com", who.user), "name": who.user,
        "sid": who.sid, "iat": iat, "exp": t + lifetime,
    });
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    if let Value::Object(map) = &mut claims {
        map.extend(sessions.extra_claims.clone());
    }
    let id_token = mint(&key, "RS256", json!({"kid": kid}), &claims);
    let access = json!({
        "iss": state.base, "aud": "api", "sub": who.user, "iat": iat, "exp": t + lifetime,
        "jti": format!("at-{}", sessions.next),
    });
    let access_token = mint(&key, "RS256", json!({"kid": kid}), &access);
    let refresh_token = format!("rt-{}-{}", sessions.next, b64(t.to_be_bytes()));
    sessions.next += 1;
    sessions.refresh_tokens.insert(refresh_token.clone(), who);
    (
        [(header::CONTENT_TYPE, "application/json")],
        json!({
            "access_token": access_token, "id_token": id_token, "token_type": "Bearer",
            "expires_in": lifetime, "refresh_token": refresh_token,
        })
        .to_string(),
    )
        .into_response()
}

/// A refresh grant: after the configured delay, the token spent (rotation) for new ones, or
/// `invalid_grant` for a spent, revoked or unknown one.
async fn refresh(state: &ProviderState, refresh_token: &str) -> Response {
    let delay = {
        let mut sessions = state.sessions.lock().expect("lock");
        sessions.refresh_grants += 1;
        sessions.refresh_delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let who = state
        .sessions
        .lock()
        .expect("lock")
        .refresh_tokens
        .remove(refresh_token);
    match who {
        Some(who) => issue_tokens(state, who, None),
        None => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"error": "invalid_grant", "error_description": "refresh token spent or revoked"})
                .to_string(),
        )
            .into_response(),
    }
}

/// The revocation endpoint (RFC 7009): the token forgotten, 200 whatever it was.
async fn revoke(
    State(state): State<Arc<ProviderState>>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let token = f.get("token").cloned().unwrap_or_default();
    let mut sessions = state.sessions.lock().expect("lock");
    sessions.refresh_tokens.remove(&token);
    sessions.revoked.push(token);
    StatusCode::OK.into_response()
}

/// The end-session endpoint: a page with a way back.
async fn end_session(Query(q): Query<HashMap<String, String>>) -> Response {
    let back = q
        .get("post_logout_redirect_uri")
        .map(|u| {
            format!(
                "<a id=\"return\" href=\"{}\">Return to the app</a>",
                escape(u)
            )
        })
        .unwrap_or_default();
    html(&format!(
        "<h1 id=\"signed-out\">You are signed out</h1>{back}"
    ))
}

/// A Cloudflare Access-style login page for `<host>`.
async fn access_login_form(
    Path(host): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let hidden: String = ["kid", "redirect_url"]
        .iter()
        .map(|k| {
            format!(
                "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
                escape(q.get(*k).map_or("", String::as_str))
            )
        })
        .collect();
    html(&format!(
        "<h1>Access</h1><form method=\"post\" action=\"/cdn-cgi/access/login/{}\">{hidden}\
         <button id=\"sign-in\" type=\"submit\">Sign in</button></form>",
        escape(&host)
    ))
}

/// Access sets `CF_Authorization` and sends the browser back to the app.
async fn access_login_submit(
    State(state): State<Arc<ProviderState>>,
    Path(host): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let Some((key, kid)) = state.login_key.lock().expect("lock").clone() else {
        return bad_request("login is not enabled");
    };
    let path = f.get("redirect_url").cloned().unwrap_or_else(|| "/".into());
    if !path.starts_with('/') || path.starts_with("//") {
        return bad_request("redirect_url must be a path");
    }
    let t = now();
    let claims = json!({
        "aud": [f.get("kid").cloned().unwrap_or_default()], "email": "ada@example.com",
        "exp": t + 3600, "iat": t, "nbf": t, "iss": state.base, "type": "app",
        "identity_nonce": "n", "sub": "7335d417-61da-459d-899c-0a01c76a2f94",
    });
    let token = mint(&key, "RS256", json!({"kid": kid}), &claims);
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, format!("http://{host}{path}")),
            (
                header::SET_COOKIE,
                format!("CF_Authorization={token}; Path=/; HttpOnly; SameSite=Lax"),
            ),
        ],
    )
        .into_response()
}

async fn other(State(state): State<Arc<ProviderState>>, uri: axum::http::Uri) -> Response {
    if uri.path() == state.keys_path || PROVIDER_JWKS_PATHS.iter().any(|p| uri.path().ends_with(p))
    {
        return certs(State(state)).await;
    }
    state.other_hits.fetch_add(1, Ordering::SeqCst);
    StatusCode::NOT_FOUND.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_helpers_set_what_they_say() {
        let key = TestKey::hmac(vec![1; 32]);
        let payload = |t: &str| -> Value {
            let part = t.split('.').nth(1).unwrap();
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
        };
        let good = payload(&valid_token(&key, "HS256", None, "i", "a", "u"));
        assert_eq!(
            (&good["iss"], &good["aud"], &good["sub"]),
            (&json!("i"), &json!("a"), &json!("u"))
        );
        assert!(good["exp"].as_u64().unwrap() > now());
        let old = payload(&expired_token(&key, "HS256", Some("k"), "i", "a", "u"));
        assert!(old["exp"].as_u64().unwrap() < now());
        let other = payload(&wrong_audience_token(&key, "HS256", None, "i", "u"));
        assert_eq!(other["aud"], "someone-else");
    }

    #[test]
    fn every_key_signs() {
        for (key, alg) in [
            (TestKey::rsa(), "RS256"),
            (TestKey::rsa(), "PS512"),
            (TestKey::ec_p256(), "ES256"),
            (TestKey::ec_p384(), "ES384"),
            (TestKey::ed25519(), "EdDSA"),
            (TestKey::hmac(vec![1; 32]), "HS256"),
        ] {
            let t = mint(&key, alg, json!({"kid": "k"}), &claims("i", "a", 60));
            assert_eq!(t.split('.').count(), 3);
        }
    }
}
