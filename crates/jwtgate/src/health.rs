//! A ready-made health endpoint: 200 when every remote key set can be served and the user and
//! partner directories answer, 503 with the reasons otherwise, as JSON
//! (`{"status": "ok"|"unavailable", "key_caches": [...], "users": {...}, "partners": {...}}`).
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
use std::task::{Context, Poll};

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Request, Response, StatusCode};
use tower_service::Service;

use std::sync::Arc;

use crate::directory::{BoxFuture, LookupError};
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

    /// The status and JSON body of a health check now. The directories are asked in turn
    /// (each within its own timeout: `jwtgate-sqlx` runs one query).
    pub async fn check(&self) -> (StatusCode, serde_json::Value) {
        #[cfg(feature = "remote-keys")]
        let caches: Vec<_> = self.engine.caches.iter().map(|c| c.state()).collect();
        #[cfg(feature = "remote-keys")]
        let keys_ok = caches.iter().all(|c| c.usable);
        #[cfg(not(feature = "remote-keys"))]
        let (caches, keys_ok) = (Vec::<()>::new(), true);
        let answer = |result: Result<(), LookupError>| match result {
            Ok(()) => (true, serde_json::json!({"status": "ok"})),
            Err(e) => (
                false,
                serde_json::json!({"status": "unavailable", "error": e.to_string()}),
            ),
        };
        let users = match &self.engine.users {
            Some(users) => Some(answer(users.health().await)),
            None => None,
        };
        let (partners_ok, partners) = answer(self.engine.directory.health().await);
        let check = &self.engine.revocation;
        let mirror = check.mirror.state(check.staleness_secs);
        #[cfg(feature = "metrics")]
        {
            metrics::gauge!("jwtgate_revocation_entries").set(mirror.entries as f64);
            if let Some(secs) = mirror.staleness_secs {
                metrics::gauge!("jwtgate_revocation_staleness_seconds").set(secs as f64);
            }
        }
        // A stale mirror with fail_open still serves requests, but it is not healthy.
        let ok = keys_ok && partners_ok && users.as_ref().is_none_or(|(ok, _)| *ok) && mirror.fresh;
        let mut body = serde_json::json!({
            "status": if ok { "ok" } else { "unavailable" },
            "key_caches": caches,
            "partners": partners,
            "revocation": {
                "store": check.store,
                "status": if mirror.fresh { "ok" } else { "stale" },
                "entries": mirror.entries,
                "staleness_secs": mirror.staleness_secs,
                "max_staleness_secs": check.staleness_secs,
                "fail_open": check.fail_open,
                "resyncs": mirror.resyncs,
                "error": mirror.error,
            },
        });
        if let Some((_, users)) = users {
            body["users"] = users;
        }
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
    type Future = BoxFuture<'static, Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let (status, body) = this.check().await;
            let mut res = Response::new(body.to_string());
            *res.status_mut() = status;
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            res.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(res)
        })
    }
}
