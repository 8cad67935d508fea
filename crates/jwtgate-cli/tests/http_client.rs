//! How jwtgate reaches providers through real networks: an OIDC issuer over TLS under a test
//! CA (rcgen), with and without client-certificate authentication, through a local forward
//! proxy (HTTP CONNECT), and with the app's own `reqwest::Client`; then the same from a config
//! file's `[http]` table through `jwtgate serve --prefetch`, with the environment's proxy
//! taken only when asked for.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use jwtgate::remote::{HttpClient, Proxy};
use jwtgate::{Algorithm, KeySource, Registry, User, Validator};
use jwtgate_test::{TestKey, claims, jwks, mint};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject as _;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tower::ServiceExt as _;

mod support;

/// A test CA, a server certificate for 127.0.0.1 and localhost, and a client certificate.
struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    /// The client's certificate and key in one PEM, as `client_certificate_pem` takes it.
    client: String,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "jwtgate test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
    client
        .distinguished_name
        .push(DnType::CommonName, "jwtgate");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client.signed_by(&client_key, &issuer).unwrap();
    Pki {
        ca: ca_cert.pem(),
        server_cert: server.pem(),
        server_key: server_key.serialize_pem(),
        client: format!("{}{}", client_cert.pem(), client_key.serialize_pem()),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// TCP with a TLS handshake per connection; a failed handshake is counted and skipped.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    refused: Arc<AtomicUsize>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            match tokio::time::timeout(Duration::from_secs(5), self.acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => return (tls, addr),
                _ => {
                    self.refused.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// An OIDC issuer at `https://127.0.0.1:PORT` (discovery and JWKS) under the test CA; with
/// `mtls`, it accepts only clients with a certificate from that CA. Returns its issuer
/// URL and the count of refused handshakes.
async fn tls_issuer(pki: &Pki, key: &TestKey, mtls: bool) -> (String, Arc<AtomicUsize>) {
    let certs = certificates(&pki.server_cert);
    let private_key =
        rustls::pki_types::PrivateKeyDer::from_pem_slice(pki.server_key.as_bytes()).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if mtls {
        let mut roots = rustls::RootCertStore::empty();
        for cert in certificates(&pki.ca) {
            roots.add(cert).unwrap();
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder.with_single_cert(certs, private_key).unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("https://127.0.0.1:{}", tcp.local_addr().unwrap().port());
    let refused = Arc::new(AtomicUsize::new(0));
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        refused: refused.clone(),
    };
    let discovery = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/certs")});
    let keys = jwks([key.jwk("k1", "RS256")]);
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move { axum::Json(discovery) }),
        )
        .route("/certs", get(move || async move { axum::Json(keys) }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (issuer, refused)
}

fn certificates(text: &str) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    rustls::pki_types::CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A forward proxy for HTTPS (`CONNECT host:port`): counts the tunnels it opened.
async fn connect_proxy() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let tunnels = Arc::new(AtomicUsize::new(0));
    let count = tunnels.clone();
    tokio::spawn(async move {
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let count = count.clone();
            tokio::spawn(async move {
                // The request head, byte by byte (the client sends nothing else before 200).
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    let mut byte = [0u8];
                    if client.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head);
                let Some(target) = head
                    .strip_prefix("CONNECT ")
                    .and_then(|rest| rest.split(' ').next())
                else {
                    let _ = client
                        .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                        .await;
                    return;
                };
                let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                if client
                    .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                    .await
                    .is_ok()
                {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    (url, tunnels)
}

/// A registry of one validator reading `issuer`'s keys through `http`.
fn registry(issuer: &str, http: HttpClient) -> Registry {
    Registry::builder()
        .http_client(http)
        .validator(
            Validator::new("v")
                .issuer(issuer)
                .audience("api")
                .algorithm(Algorithm::RS256)
                .key(KeySource::oidc_issuer(issuer))
                .user(User::claim("sub")),
        )
        .build()
        .unwrap()
}

/// The status of a request with a token of `key` from `issuer`, through the registry's layer.
async fn status_with_token(registry: &Registry, issuer: &str, key: &TestKey) -> u16 {
    let mut c = claims(issuer, "api", 300);
    c["sub"] = json!("ada");
    let token = mint(key, "RS256", json!({"kid": "k1"}), &c);
    let app: Router = Router::new()
        .route("/x", get(|| async { "ok" }))
        .route_layer(registry.layer("jwt_v").unwrap());
    let req = http::Request::get("/x")
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .unwrap();
    app.oneshot(req).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_private_ca_is_trusted_only_when_added_and_its_issuer_then_works() {
    let pki = pki();
    let key = TestKey::rsa();
    let (issuer, _) = tls_issuer(&pki, &key, false).await;
    // jwtgate's default client does not know the test CA.
    let plain = registry(&issuer, HttpClient::new());
    let e = plain.prefetch().await.unwrap_err().to_string();
    assert!(e.contains("connection failed"), "{e}");
    assert_eq!(status_with_token(&plain, &issuer, &key).await, 503);
    // With the CA's PEM added to the roots: discovery, keys, and the token accepted.
    let with_ca = registry(
        &issuer,
        HttpClient::new()
            .root_certificates_pem(pki.ca.as_bytes())
            .unwrap(),
    );
    with_ca.prefetch().await.unwrap();
    assert_eq!(status_with_token(&with_ca, &issuer, &key).await, 200);
    // The app's own client, configured by the app, is used as it is.
    let own = reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(pki.ca.as_bytes()).unwrap())
        .build()
        .unwrap();
    let with_own = registry(&issuer, HttpClient::client(own));
    with_own.prefetch().await.unwrap();
    assert_eq!(status_with_token(&with_own, &issuer, &key).await, 200);
}

#[tokio::test]
async fn a_client_certificate_is_presented_to_an_issuer_that_requires_one() {
    let pki = pki();
    let key = TestKey::rsa();
    let (issuer, refused) = tls_issuer(&pki, &key, true).await;
    let trusting = || {
        HttpClient::new()
            .root_certificates_pem(pki.ca.as_bytes())
            .unwrap()
    };
    let without = registry(&issuer, trusting());
    assert!(without.prefetch().await.is_err());
    assert!(
        refused.load(Ordering::SeqCst) >= 1,
        "the issuer saw no refused handshake"
    );
    let with = registry(
        &issuer,
        trusting()
            .client_certificate_pem(pki.client.as_bytes())
            .unwrap(),
    );
    with.prefetch().await.unwrap();
    assert_eq!(status_with_token(&with, &issuer, &key).await, 200);
}

#[tokio::test]
async fn a_forward_proxy_carries_key_fetches_except_to_hosts_it_exempts() {
    let pki = pki();
    let key = TestKey::rsa();
    let (issuer, _) = tls_issuer(&pki, &key, false).await;
    let (proxy, tunnels) = connect_proxy().await;
    let trusting = || {
        HttpClient::new()
            .root_certificates_pem(pki.ca.as_bytes())
            .unwrap()
    };
    let via = registry(&issuer, trusting().proxy(Proxy::url(&proxy, None).unwrap()));
    via.prefetch().await.unwrap();
    assert!(
        tunnels.load(Ordering::SeqCst) >= 1,
        "no tunnel through the proxy"
    );
    assert_eq!(status_with_token(&via, &issuer, &key).await, 200);
    // NO_PROXY-style exemptions go straight to the issuer.
    let before = tunnels.load(Ordering::SeqCst);
    let exempt = registry(
        &issuer,
        trusting().proxy(Proxy::url(&proxy, Some("localhost,127.0.0.1")).unwrap()),
    );
    exempt.prefetch().await.unwrap();
    assert_eq!(tunnels.load(Ordering::SeqCst), before);
    // A proxy that cannot be reached is a fetch failure (503), never a silent way around it.
    let dead = registry(
        &issuer,
        trusting().proxy(Proxy::url("http://127.0.0.1:9", None).unwrap()),
    );
    assert!(dead.prefetch().await.is_err());
    assert_eq!(status_with_token(&dead, &issuer, &key).await, 503);
}

/// `jwtgate serve --prefetch` with `http` as its `[http]` table and `env` in its environment:
/// whether it started (every key set fetched) and what it printed otherwise.
async fn serve_prefetch(
    dir: &Path,
    issuer: &str,
    http: &str,
    env: &[(&str, &str)],
) -> Result<(), String> {
    let config = dir.join("jwtgate.toml");
    std::fs::write(
        &config,
        format!(
            r#"[[validator]]
name = "v"
issuer = "{issuer}"
audience = "api"
algorithm = "RS256"
oidc_issuer = "{issuer}"
user = {{ claim = "sub" }}

[[route]]
path = "/x"
auth = "jwt_v"

[http]
root_certificates = "ca.pem"
{http}
"#
        ),
    )
    .unwrap();
    let args = ["--prefetch", "--listen", "127.0.0.1:0"];
    support::serve(&config, &args, |cmd| {
        for name in ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"] {
            cmd.env_remove(name).env_remove(name.to_ascii_lowercase());
        }
        cmd.envs(env.iter().copied());
    })
    .await
    .map(|_| ())
}

#[tokio::test]
async fn the_config_files_http_table_and_the_environments_proxy_only_when_asked_for() {
    let pki = pki();
    let key = TestKey::rsa();
    let (issuer, _) = tls_issuer(&pki, &key, false).await;
    let (proxy, tunnels) = connect_proxy().await;
    let dir = std::env::temp_dir().join(format!("jwtgate-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), &pki.ca).unwrap();
    // The environment's proxy is not taken unless asked for: a dead one changes nothing.
    serve_prefetch(&dir, &issuer, "", &[("HTTPS_PROXY", "http://127.0.0.1:9")])
        .await
        .unwrap();
    assert_eq!(tunnels.load(Ordering::SeqCst), 0);
    // proxy = "env": HTTPS_PROXY is taken, and NO_PROXY is honoured.
    serve_prefetch(&dir, &issuer, "proxy = \"env\"", &[("HTTPS_PROXY", &proxy)])
        .await
        .unwrap();
    let through = tunnels.load(Ordering::SeqCst);
    assert!(through >= 1, "HTTPS_PROXY was not used");
    serve_prefetch(
        &dir,
        &issuer,
        "proxy = \"env\"",
        &[("HTTPS_PROXY", &proxy), ("NO_PROXY", "127.0.0.1")],
    )
    .await
    .unwrap();
    assert_eq!(tunnels.load(Ordering::SeqCst), through);
    // A proxy URL in the file, and its exemptions.
    serve_prefetch(&dir, &issuer, &format!("proxy = \"{proxy}\""), &[])
        .await
        .unwrap();
    assert!(tunnels.load(Ordering::SeqCst) > through);
    // Bad settings are errors at their key.
    let e = serve_prefetch(&dir, &issuer, "client_certificate = \"missing.pem\"", &[])
        .await
        .unwrap_err();
    assert!(
        e.contains("key `http.client_certificate`: cannot read"),
        "{e}"
    );
    let e = serve_prefetch(&dir, &issuer, "no_proxy = \"localhost\"", &[])
        .await
        .unwrap_err();
    assert!(
        e.contains("key `http.no_proxy`: no_proxy needs a proxy URL"),
        "{e}"
    );
    let e = serve_prefetch(&dir, &issuer, "proxy = \"::not a url\"", &[])
        .await
        .unwrap_err();
    assert!(e.contains("key `http.proxy`"), "{e}");
}

/// A server that accepts connections and never answers.
async fn silent_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    url
}

#[tokio::test]
async fn the_logins_calls_give_up_after_the_timeout_set_for_them() {
    let issuer = silent_server().await;
    let key = TestKey::rsa();
    let registry = |http: HttpClient| {
        Registry::builder()
            .http_client(http)
            .validator(
                Validator::new("v")
                    .issuer(&issuer)
                    .audience("api")
                    .algorithm(Algorithm::RS256)
                    .key(KeySource::public_key_pem(key.public_pem()))
                    .user(User::claim("sub"))
                    .cookie(
                        jwtgate::CookieMode::new("v_session")
                            .secret("cookie-secret-cookie-secret-0032")
                            .secure(false),
                    )
                    .login(jwtgate::login::Login::oidc(
                        "web",
                        "http://127.0.0.1:9/auth/callback",
                    )),
            )
            .build()
            .unwrap()
    };
    // The sign-in starts with the provider's discovery, which never answers: with a 300 ms
    // timeout the browser gets the 503 page long before the default 10 s would pass.
    let login = registry(HttpClient::new().timeout(Duration::from_millis(300)))
        .login_service("v")
        .unwrap();
    let req = http::Request::get("/auth/login")
        .header("accept", "text/html")
        .body(axum::body::Body::empty())
        .unwrap();
    let res = tokio::time::timeout(Duration::from_secs(5), login.oneshot(req))
        .await
        .expect("the login's call did not time out")
        .unwrap();
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
}
