//! Helpers for the cross-crate tests in `tests/tests/`: an app that echoes what the layer
//! found, and request helpers that go through the axum router or over real TCP.

/// Headless Chromium for browser tests.
pub mod browser;

use axum::body::Body;
use axum::routing::get;
use axum::{Json, Router};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt as _;
use jwtgate::{Identity, Registry};
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// The body every test route answers: what the layer put into the request.
pub async fn whoami(identity: Option<Identity>) -> Json<Value> {
    // Anonymous requests answer the same four keys, all null.
    Json(match identity {
        Some(id) => json!(id),
        None => json!({"validator": null, "uid": null, "partner_id": null, "payload": null}),
    })
}

/// A router with one `whoami` route per `(path, mode)`.
pub fn app(registry: &Registry, routes: &[(&str, &str)]) -> Router {
    let mut app = Router::new();
    for (path, mode) in routes {
        let layer = registry.layer(mode).expect("mode names a validator");
        app = app.merge(Router::new().route(path, get(whoami)).route_layer(layer));
    }
    app
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body as JSON (`Null` when empty or not JSON).
    pub body: Value,
}

impl Reply {
    /// A header as a string ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Every `Set-Cookie` value.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// The value of the cookie `name` set by the response.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies().iter().find_map(|c| {
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (n, v) = pair.split_once('=')?;
            (n == name).then(|| v.to_owned())
        })
    }
}

/// Sends `req` through `app` (the full axum router, in process).
pub async fn send(app: &Router, req: Request<Body>) -> Reply {
    let res = app.clone().oneshot(req).await.expect("infallible router");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
    }
}

/// A GET with the given headers.
pub fn get_with(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut req = Request::get(path);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(Body::empty()).expect("valid request")
}

/// GETs `path` through `app` with an optional bearer token.
pub async fn get_bearer(app: &Router, path: &str, token: Option<&str>) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    send(app, get_with(path, &headers)).await
}

/// Serves `app` on 127.0.0.1 and returns its base URL.
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// Collects formatted log lines, for tests that check what is (and is not) logged.
#[derive(Clone, Debug, Default)]
pub struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Installs a subscriber writing here (at `level`, without colours) for this thread.
    pub fn capture(&self, level: tracing::Level) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// Like [`capture`](Self::capture), also logging each span when it closes, with the
    /// fields recorded on it.
    pub fn capture_spans(&self, level: tracing::Level) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }

    /// How often `needle` was logged.
    pub fn count(&self, needle: &str) -> usize {
        self.text().matches(needle).count()
    }
}
