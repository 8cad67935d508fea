//! `jwtgate`: serve a config file's routes, mint test tokens, inspect a token, read the users
//! database. One file per command.
//!
//! Bad arguments or config: a message on stderr and exit code 2.

mod inspect;
mod mint;
mod revoke;
mod serve;
mod users;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use jwtgate::config::Config;
use jwtgate_redis::{RedisSettings, RedisStore};
use jwtgate_sqlx::{SqlDirectory, SqlSettings};

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
    Serve(serve::ServeArgs),
    /// Signs a token for testing.
    Mint(mint::MintArgs),
    /// Reads the users of the config file's `[directory]` database (read-only).
    Users {
        #[command(subcommand)]
        command: users::UsersCommand,
    },
    /// Says, validator by validator, whether a token passes and why not.
    Inspect(inspect::InspectArgs),
    /// Revokes a session, a token or a subject in the config file's `[store]`.
    Revoke(revoke::RevokeArgs),
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
        Command::Serve(args) => runtime.block_on(serve::run(args)),
        Command::Mint(args) => mint::run(args),
        Command::Users { command } => runtime.block_on(users::run(command)),
        Command::Inspect(args) => runtime.block_on(inspect::run(args)),
        Command::Revoke(args) => runtime.block_on(revoke::run(args)),
    }
}

/// The config's database directory, connected (migrations run when the settings ask).
async fn connect_directory(config: &Config) -> Result<Option<SqlDirectory>, String> {
    let Some(settings) = SqlSettings::from_config(config).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    SqlDirectory::connect(&settings)
        .await
        .map(Some)
        .map_err(|e| format!("{}: {e}", config.origin()))
}

/// The config's `[store]` on Redis, when it has a URL (no I/O: an unreachable server is
/// reported by `/healthz`, not here).
fn store(config: &Config) -> Result<Option<RedisStore>, String> {
    let Some(settings) = RedisSettings::from_config(config).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    RedisStore::new(settings)
        .map(Some)
        .map_err(|e| format!("{}: {e}", config.origin()))
}

/// A config file with what `serve` and `inspect` build from it: its database directory
/// (connected, migrated when the settings ask) and the registry using it.
struct Loaded {
    config: Config,
    directory: Option<SqlDirectory>,
    registry: jwtgate::Registry,
}

impl Loaded {
    async fn from_file(path: &std::path::Path) -> Result<Self, String> {
        let config = Config::from_file(path).map_err(|e| e.to_string())?;
        let directory = connect_directory(&config).await?;
        let store = store(&config)?;
        let registry = config
            .registry_with(|builder| {
                let builder = match &directory {
                    Some(d) => builder.users(d.clone()).directory(d.clone()),
                    None => builder,
                };
                match store {
                    Some(s) => builder.store(s),
                    None => builder,
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(Self {
            config,
            directory,
            registry,
        })
    }
}
