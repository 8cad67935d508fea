//! `jwtgate`: serve a config file's routes, mint test tokens, inspect a token.
//!
//! Bad arguments or config: a message on stderr and exit code 2.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use std::io::IsTerminal as _;

use axum::response::{IntoResponse as _, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Parser, Subcommand};
use jsonwebtoken::EncodingKey;
use jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
use jwtgate::config::Config;
use jwtgate::directory::DirectorySettings;
use jwtgate::{Algorithm, Identity, identity::UserRecord};
use jwtgate_sqlx::SqlDirectory;
use metrics_exporter_prometheus::PrometheusBuilder;
use serde_json::{Map, Value, json};

#[derive(Parser)]
#[command(
    name = "jwtgate",
    version,
    about = "JWT bearer authentication: serve, mint, inspect"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serves every `[[route]]` of a config file; each answers with what the layer found.
    Serve {
        /// The TOML config file.
        #[arg(long)]
        config: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Fetch every remote key set (and run OIDC discovery) before listening; fail if any
        /// cannot be had, instead of answering 503 until it can.
        #[arg(long)]
        prefetch: bool,
        /// Serve Prometheus metrics at http://ADDR/metrics.
        #[arg(long, value_name = "ADDR")]
        metrics: Option<SocketAddr>,
        /// Path of the health check (200 when every key set can be served, 503 otherwise).
        #[arg(long, default_value = "/healthz")]
        health_path: String,
    },
    /// Signs a token for testing.
    Mint {
        /// Algorithm (HS256, RS256, ES256, EdDSA, ...).
        #[arg(long, default_value = "HS256")]
        alg: String,
        /// HMAC secret.
        #[arg(long, conflicts_with_all = ["secret_env", "key_file"])]
        secret: Option<String>,
        /// Environment variable holding the HMAC secret.
        #[arg(long, conflicts_with = "key_file")]
        secret_env: Option<String>,
        /// PEM private key file (RSA, EC, Ed25519).
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// `kid` header.
        #[arg(long)]
        kid: Option<String>,
        /// `iss` claim.
        #[arg(long)]
        iss: Option<String>,
        /// `aud` claim (repeat for an array).
        #[arg(long)]
        aud: Vec<String>,
        /// `sub` claim.
        #[arg(long)]
        sub: Option<String>,
        /// `email` claim.
        #[arg(long)]
        email: Option<String>,
        /// Seconds until `exp` (negative for an expired token: `--expires-in -10`).
        #[arg(long, default_value_t = 3600, allow_negative_numbers = true)]
        expires_in: i64,
        /// Extra claims as a JSON object, merged last.
        #[arg(long)]
        claims: Option<String>,
    },
    /// Reads the users of the config file's `[directory]` database (read-only).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Says, validator by validator, whether a token passes and why not.
    Inspect {
        /// The TOML config file.
        #[arg(long)]
        config: PathBuf,
        /// The token (without `Bearer `).
        token: String,
    },
}

/// Which database `jwtgate users` reads: a config file's `[directory]`, or a URL.
#[derive(clap::Args)]
struct DatabaseArgs {
    /// The TOML config file with `[directory] url`.
    #[arg(
        long,
        required_unless_present = "database_url",
        conflicts_with = "database_url"
    )]
    config: Option<PathBuf>,
    /// The database instead of a config file (`sqlite://path.db`, `postgres://...`).
    #[arg(long)]
    database_url: Option<String>,
}

impl DatabaseArgs {
    /// The directory, read-only when given by URL (never created or migrated by a read).
    async fn connect(&self) -> Result<SqlDirectory, String> {
        match (&self.config, &self.database_url) {
            (Some(path), _) => {
                let config = Config::from_file(path).map_err(|e| e.to_string())?;
                connect_directory(&config)
                    .await?
                    .ok_or_else(|| format!("{}: no [directory] url", path.display()))
            }
            (None, Some(url)) => SqlDirectory::connect_read_only(&DirectorySettings::new(url))
                .await
                .map_err(|e| e.to_string()),
            (None, None) => Err("give --config or --database-url".to_owned()),
        }
    }
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Lists users by id.
    List {
        #[command(flatten)]
        database: DatabaseArgs,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Shows one user, by id or email.
    Show {
        #[command(flatten)]
        database: DatabaseArgs,
        /// A user id, or an email (trimmed, case-insensitive).
        user: String,
    },
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("jwtgate: {message}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "jwtgate=info".into()),
        )
        // Colour codes only for a person at a terminal, never in a log file or a pipe.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    match cli.command {
        Command::Serve {
            config,
            listen,
            prefetch,
            metrics,
            health_path,
        } => runtime.block_on(serve(Serve {
            path: config,
            listen,
            prefetch,
            metrics,
            health_path,
        })),
        Command::Inspect { config, token } => runtime.block_on(inspect(config, token)),
        Command::Users { command } => runtime.block_on(users(command)),
        Command::Mint {
            alg,
            secret,
            secret_env,
            key_file,
            kid,
            iss,
            aud,
            sub,
            email,
            expires_in,
            claims,
        } => {
            let key = match (secret, secret_env, key_file) {
                (Some(s), _, _) => KeyArg::Secret(s.into_bytes()),
                (_, Some(var), _) => match std::env::var(&var) {
                    Ok(s) if !s.is_empty() => KeyArg::Secret(s.into_bytes()),
                    _ => return fail(format!("environment variable {var} is not set")),
                },
                (_, _, Some(path)) => match std::fs::read(&path) {
                    Ok(pem) => KeyArg::Pem(pem),
                    Err(e) => return fail(format!("{}: {e}", path.display())),
                },
                _ => return fail("a key is required: --secret, --secret-env or --key-file"),
            };
            let mut c = Map::new();
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()) as i64;
            c.insert("iat".into(), json!(now));
            c.insert("exp".into(), json!(now + expires_in));
            if let Some(iss) = iss {
                c.insert("iss".into(), json!(iss));
            }
            match aud.as_slice() {
                [] => {}
                [one] => {
                    c.insert("aud".into(), json!(one));
                }
                many => {
                    c.insert("aud".into(), json!(many));
                }
            }
            for (k, v) in [("sub", sub), ("email", email)] {
                if let Some(v) = v {
                    c.insert(k.into(), json!(v));
                }
            }
            if let Some(extra) = claims {
                match serde_json::from_str::<Value>(&extra) {
                    Ok(Value::Object(extra)) => c.extend(extra),
                    _ => return fail("--claims must be a JSON object"),
                }
            }
            match mint(&alg, &key, kid.as_deref(), &Value::Object(c)) {
                Ok(token) => {
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
    }
}

enum KeyArg {
    Secret(Vec<u8>),
    Pem(Vec<u8>),
}

fn mint(alg: &str, key: &KeyArg, kid: Option<&str>, claims: &Value) -> Result<String, String> {
    let parsed: Algorithm = alg.parse().map_err(|e: jwtgate::Error| e.to_string())?;
    let encoding = match key {
        KeyArg::Secret(s) if parsed.is_hmac() => Ok(EncodingKey::from_secret(s)),
        KeyArg::Secret(_) => return Err(format!("{alg} needs --key-file, not a secret")),
        KeyArg::Pem(_) if parsed.is_hmac() => {
            return Err(format!("{alg} needs --secret, not a key file"));
        }
        KeyArg::Pem(pem) => match alg {
            a if a.starts_with("RS") || a.starts_with("PS") => EncodingKey::from_rsa_pem(pem),
            a if a.starts_with("ES") => EncodingKey::from_ec_pem(pem),
            _ => EncodingKey::from_ed_pem(pem),
        },
    }
    .map_err(|e| format!("the key file does not hold a private key for {alg}: {e}"))?;
    let mut header = json!({"alg": alg, "typ": "JWT"});
    if let Some(kid) = kid {
        header["kid"] = json!(kid);
    }
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    // RFC 9864 `Ed25519` signs as EdDSA with an Ed25519 key; only the header differs.
    let signing_alg = if parsed == Algorithm::Ed25519 {
        "EdDSA"
    } else {
        alg
    };
    let jwt_alg: jsonwebtoken::Algorithm = signing_alg
        .parse()
        .map_err(|_| format!("unknown algorithm {alg}"))?;
    let signer = (DEFAULT_PROVIDER.signer_factory)(&jwt_alg, &encoding)
        .map_err(|e| format!("cannot sign with {alg}: {e}"))?;
    let signature = signer
        .try_sign(input.as_bytes())
        .map_err(|e| format!("signing failed: {e}"))?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
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

fn user_json(user: &UserRecord) -> Value {
    json!({
        "id": user.id.to_json(),
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "full_name": user.full_name,
        "phone": user.phone,
        "profile_complete": user.profile_complete,
    })
}

/// The config's database directory, connected (migrations run when the settings ask).
async fn connect_directory(config: &Config) -> Result<Option<SqlDirectory>, String> {
    let Some(settings) = config.directory_settings().map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    SqlDirectory::connect(&settings)
        .await
        .map(Some)
        .map_err(|e| format!("{}: {e}", config.origin()))
}

/// `jwtgate users list|show`: read-only views for operators.
async fn users(command: UsersCommand) -> ExitCode {
    let (UsersCommand::List { database, .. } | UsersCommand::Show { database, .. }) = &command;
    let connected = database.connect().await;
    let directory = match connected {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    match command {
        UsersCommand::List { limit, json, .. } => {
            let list = match directory.users(limit).await {
                Ok(list) => list,
                Err(e) => return fail(e),
            };
            if json {
                for user in &list {
                    println!("{}", user_json(user));
                }
            } else {
                println!("{:<8} {:<32} {:<24} profile", "id", "email", "name");
                for user in &list {
                    println!(
                        "{:<8} {:<32} {:<24} {}",
                        user.id,
                        user.email.as_deref().unwrap_or("-"),
                        user.full_name.as_deref().unwrap_or("-"),
                        if user.profile_complete {
                            "complete"
                        } else {
                            "incomplete"
                        },
                    );
                }
                println!("{} user(s)", list.len());
            }
            ExitCode::SUCCESS
        }
        UsersCommand::Show { user, .. } => {
            let found = match user.parse::<u64>() {
                Ok(id) => directory.user_by_id(&id.into()).await,
                Err(_) => directory.user_by_email(&user).await,
            };
            match found {
                Ok(Some(record)) => {
                    println!("{:#}", user_json(&record));
                    ExitCode::SUCCESS
                }
                Ok(None) => {
                    eprintln!("jwtgate: no user {user:?}");
                    ExitCode::from(1)
                }
                Err(e) => fail(e),
            }
        }
    }
}

/// What `jwtgate serve` was asked to do.
struct Serve {
    path: PathBuf,
    listen: SocketAddr,
    prefetch: bool,
    metrics: Option<SocketAddr>,
    health_path: String,
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

async fn serve(args: Serve) -> ExitCode {
    let Serve {
        path,
        listen,
        prefetch,
        metrics,
        health_path,
    } = args;
    if !health_path.starts_with('/') {
        return fail(format!("--health-path {health_path:?} must start with /"));
    }
    let config = match Config::from_file(&path) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let directory = match connect_directory(&config).await {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let registry = match config.registry_with(|builder| match &directory {
        Some(d) => builder.users(d.clone()).directory(d.clone()),
        None => builder,
    }) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if prefetch && let Err(e) = registry.prefetch().await {
        return fail(e);
    }
    if config.routes().is_empty() {
        return fail(format!("{}: no [[route]] to serve", path.display()));
    }
    let mut app = Router::new().route_service(&health_path, registry.health_service());
    // Browser sign-in: the login, callback and logout routes of the first validator that has
    // a login (one set of routes per app).
    let with_login: Vec<&str> = registry
        .validator_names()
        .filter(|name| registry.login_service(name).is_ok())
        .collect();
    if with_login.len() > 1 {
        return fail(format!(
            "{}: only one validator may have a login in `jwtgate serve` ({} do)",
            path.display(),
            with_login.join(", ")
        ));
    }
    let mut login_line = None;
    if let Some(name) = with_login.first() {
        let auth = match registry.login_service(name) {
            Ok(a) => a,
            Err(e) => return fail(e),
        };
        let mut paths = vec![
            jwtgate::login::LOGIN_PATH.to_owned(),
            jwtgate::login::LOGOUT_PATH.to_owned(),
        ];
        paths.extend(auth.callback_path().map(str::to_owned));
        for p in &paths {
            app = app.route_service(p, auth.clone());
        }
        login_line = Some(format!("  {} -> sign-in for {name}", paths.join(", ")));
    }
    // The config checked its own paths; these are the command's.
    let taken: Vec<(&str, &str)> =
        std::iter::once((health_path.as_str(), "the health check's (--health-path)"))
            .chain(
                login_line
                    .is_some()
                    .then_some((jwtgate::login::LOGIN_PATH, "the sign-in's")),
            )
            .chain(
                login_line
                    .is_some()
                    .then_some((jwtgate::login::LOGOUT_PATH, "the sign-out's")),
            )
            .collect();
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
        app = app.merge(
            Router::new()
                .route(&route.path, any(whoami))
                .route_layer(layer),
        );
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
    if let Some(line) = login_line {
        println!("{line}");
    }
    for line in profile_lines {
        println!("{line}");
    }
    if let Some(d) = &directory {
        println!("  users in {}", d.url());
    }
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

async fn inspect(path: PathBuf, token: String) -> ExitCode {
    let registry = match Config::from_file(&path).and_then(|c| c.registry()) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let token = token.trim();
    let token = token.strip_prefix("Bearer ").unwrap_or(token);
    let verdicts = registry.inspect(token).await;
    for v in &verdicts {
        match v.refusal() {
            None => println!("{}: accepted", v.validator()),
            Some(why) => println!("{}: refused: {why}", v.validator()),
        }
    }
    for cache in registry.key_caches() {
        println!(
            "keys {}: kids {:?}, fetches {}, failures {}, last error {}{}",
            cache.source,
            cache.key_ids,
            cache.fetches,
            cache.consecutive_failures,
            cache.last_error.as_deref().unwrap_or("none"),
            if cache.misconfigured {
                " (misconfigured: fix the configuration)"
            } else {
                ""
            }
        );
    }
    if verdicts.iter().any(|v| v.refusal().is_none()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
