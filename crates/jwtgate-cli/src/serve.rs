//! `jwtgate serve`: every `[[route]]` of a config file behind its layer, answering with what
//! the layer found; `/healthz`, the sign-in routes, profile forms and, on request, metrics.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use axum::extract::ConnectInfo;
use axum::response::{IntoResponse as _, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use jwtgate::Identity;
use jwtgate::forward_auth::Peer;
use metrics_exporter_prometheus::PrometheusBuilder;
use serde_json::{Value, json};

use crate::users::user_json;
use crate::{Loaded, fail};

/// Serves every `[[route]]` of a config file; each answers with what the layer found.
#[derive(clap::Args)]
pub(crate) struct ServeArgs {
    /// The TOML config file.
    #[arg(long)]
    pub(crate) config: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,
    /// Fetch every remote key set (and run OIDC discovery) before listening; fail if any
    /// cannot be had, instead of answering 503 until it can.
    #[arg(long)]
    pub(crate) prefetch: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics: Option<SocketAddr>,
    /// Path of the health check (200 when every key set can be served, 503 otherwise).
    #[arg(long, default_value = "/healthz")]
    pub(crate) health_path: String,
}

/// What every served route answers: the identity's four parts, plus the directory's record
/// of the user when the validator has one.
async fn whoami(identity: Option<Identity>) -> Response {
    match identity {
        // Written straight from the identity (no JSON tree built per request first).
        Some(id) => Json(WhoAmI {
            user: id.user_record().map(|user| user_json(user)),
            identity: &id,
        })
        .into_response(),
        // Anonymous requests answer the same four keys, all null.
        None => Json(json!({"validator": null, "uid": null, "partner_id": null, "payload": null}))
            .into_response(),
    }
}

/// The body of a served route for a signed-in request.
#[derive(serde::Serialize)]
struct WhoAmI<'a> {
    #[serde(flatten)]
    identity: &'a Identity,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<Value>,
}

/// The forward-auth check at `check_path`, and below it (where Envoy's ext_authz asks, the
/// original path appended), unless another route is there.
fn forward_auth(
    config: &jwtgate::config::Config,
    registry: &jwtgate::Registry,
    taken: &[(String, String)],
    check_path: &str,
) -> Result<Router, String> {
    let below = format!("{check_path}/");
    let clashes = |p: &str| p == check_path || p.starts_with(&below);
    let whose = taken
        .iter()
        .find(|(p, _)| clashes(p))
        .map(|(_, whose)| whose.clone())
        .or_else(|| {
            let mounted = |r: &&jwtgate::config::Route| r.mount_paths().iter().any(|m| clashes(m));
            config
                .routes()
                .iter()
                .find(mounted)
                .map(|_| "a [[route]]'s".to_owned())
        });
    if let Some(whose) = whose {
        return Err(format!(
            "{}: [forward_auth] path {check_path:?} is {whose}; give the check another path",
            config.origin()
        ));
    }
    let check = config
        .forward_auth(registry)
        .map_err(|e| e.to_string())?
        .ok_or("the file has no [forward_auth] table")?;
    Ok(Router::new()
        .route_service(check_path, check.clone())
        .route_service(&format!("{below}{{*original}}"), check)
        .route_layer(axum::middleware::map_request(with_peer)))
}

/// The connection's peer as jwtgate's [`Peer`], for the forward-auth check.
async fn with_peer(mut req: axum::extract::Request) -> axum::extract::Request {
    if let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        req.extensions_mut().insert(Peer(addr));
    }
    req
}

/// Installs the Prometheus recorder and serves its text format at `addr`/metrics.
async fn serve_metrics(addr: SocketAddr) -> Result<SocketAddr, String> {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} for metrics: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(
                        http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                )
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(bound)
}

pub(crate) async fn run(args: ServeArgs) -> ExitCode {
    let ServeArgs {
        config: path,
        listen,
        prefetch,
        metrics,
        health_path,
    } = args;
    if !health_path.starts_with('/') {
        return fail(format!("--health-path {health_path:?} must start with /"));
    }
    let Loaded {
        config,
        directory,
        registry,
    } = match Loaded::from_file(&path).await {
        Ok(loaded) => loaded,
        Err(e) => return fail(e),
    };
    if prefetch && let Err(e) = registry.prefetch().await {
        return fail(e);
    }
    if config.routes().is_empty() {
        return fail(format!("{}: no [[route]] to serve", path.display()));
    }
    let mut app = Router::new().route_service(&health_path, registry.health_service());
    // Browser sign-in: each validator with a login answers its own routes (sign-in,
    // sign-out, and for OIDC the callback and the back-channel logout), at its own paths.
    let mut taken: Vec<(String, String)> = vec![(
        health_path.clone(),
        "the health check's (--health-path)".to_owned(),
    )];
    let mut login_lines = Vec::new();
    let names: Vec<String> = registry.validator_names().map(str::to_owned).collect();
    for name in &names {
        let Ok(auth) = registry.login_service(name) else {
            continue;
        };
        let paths: Vec<String> = auth.paths().into_iter().map(str::to_owned).collect();
        for p in &paths {
            if let Some((_, whose)) = taken.iter().find(|(t, _)| t == p) {
                return fail(format!(
                    "{}: path {p:?} of validator {name}'s sign-in routes is also {whose}; \
                     give one of them other paths ([validator.login] login_path, logout_path, \
                     backchannel_logout_path, or its redirect_uri)",
                    path.display()
                ));
            }
            taken.push((p.clone(), format!("validator {name}'s sign-in route")));
            app = app.route_service(p, auth.clone());
        }
        login_lines.push(format!("  {} -> sign-in for {name}", paths.join(", ")));
    }
    for route in config.routes() {
        if let Some((_, whose)) = taken.iter().find(|(p, _)| *p == route.path) {
            return fail(format!(
                "{}: route path {:?} is {whose}",
                path.display(),
                route.path
            ));
        }
        let layer = match route.layer(&registry) {
            Ok(l) => l,
            Err(e) => return fail(e),
        };
        if !route.path.starts_with('/') {
            return fail(format!(
                "{}: route path {:?} must start with /",
                path.display(),
                route.path
            ));
        }
        let mut routes = Router::new();
        for mounted in route.mount_paths() {
            routes = routes.route(&mounted, any(whoami));
        }
        app = app.merge(routes.route_layer(layer));
    }
    // The forward-auth check for a reverse proxy in front of another app, judged by the same
    // routes; the peer's address tells whether its forwarded headers are believed.
    let check_path = config.forward_auth_path().map(str::to_owned);
    if let Some(check_path) = &check_path {
        match forward_auth(&config, &registry, &taken, check_path) {
            Ok(router) => app = app.merge(router),
            Err(e) => return fail(e),
        }
    }
    // Profile pages: a minimal form at each validator's `profile_url`, behind its layer.
    let mut profile_lines = Vec::new();
    if let Some(directory) = &directory {
        let names: Vec<String> = registry.validator_names().map(str::to_owned).collect();
        for name in names {
            let Some(url) = registry.profile_url(&name) else {
                continue;
            };
            let layer = match registry.layer(&format!("jwt_{name}")) {
                Ok(l) => l,
                Err(e) => return fail(e),
            };
            app =
                app.merge(jwtgate_sqlx::profile::router(directory.clone(), url).route_layer(layer));
            profile_lines.push(format!("  {url} -> profile form for {name}"));
        }
    }
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => return fail(format!("cannot listen on {listen}: {e}")),
    };
    let addr = listener.local_addr().map_or(listen, |a| a);
    if let Some(metrics) = metrics {
        match serve_metrics(metrics).await {
            Ok(bound) => println!("metrics on http://{bound}/metrics"),
            Err(e) => return fail(e),
        }
    }
    println!("listening on http://{addr}");
    for route in config.routes() {
        println!("  {} -> {}", route.path, route.auth);
    }
    println!("  {health_path} -> health");
    for line in login_lines {
        println!("{line}");
    }
    for line in profile_lines {
        println!("{line}");
    }
    if let Some(d) = &directory {
        println!("  users in {}", d.url());
    }
    if let Some(check_path) = &check_path {
        println!("  {check_path} -> forward-auth check");
    }
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}
