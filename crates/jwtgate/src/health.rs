//! A ready-made health endpoint: 200 when every remote key set can be served, 503 with the
//! reasons otherwise, as JSON (`{"status": "ok"|"unavailable", "key_caches": [...]}`).
//!
//! ```
//! use axum::Router;
//! # fn main() -> Result<(), jwtgate::Error> {
//! # let registry = jwtgate::Registry::builder().build()?;
//! let app: Router = Router::new().route_service("/healthz", registry.health_service());
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Request, Response, StatusCode};
use tower_service::Service;

use std::sync::Arc;

use crate::engine::Engine;

/// Answers health checks for a registry's key caches. Made by
/// [`Registry::health_service`](crate::Registry::health_service); cheap to clone.
#[derive(Clone)]
pub struct HealthService {
    engine: Arc<Engine>,
}

impl std::fmt::Debug for HealthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthService").finish_non_exhaustive()
    }
}

impl HealthService {
    pub(crate) fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }

    /// The status and JSON body of a health check now.
    pub fn check(&self) -> (StatusCode, serde_json::Value) {
        #[cfg(feature = "remote-keys")]
        let caches: Vec<_> = self.engine.caches.iter().map(|c| c.state()).collect();
        #[cfg(feature = "remote-keys")]
        let ok = caches.iter().all(|c| c.usable);
        #[cfg(not(feature = "remote-keys"))]
        let (caches, ok) = (Vec::<()>::new(), true);
        let _ = &self.engine;
        let body = serde_json::json!({
            "status": if ok { "ok" } else { "unavailable" },
            "key_caches": caches,
        });
        let status = if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (status, body)
    }
}

impl<B> Service<Request<B>> for HealthService {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        let (status, body) = self.check();
        let mut res = Response::new(body.to_string());
        *res.status_mut() = status;
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        res.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        ready(Ok(res))
    }
}
