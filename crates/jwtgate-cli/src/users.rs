//! `jwtgate users list|show`: read-only views of the `[directory]` database for operators.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use jwtgate::config::Config;
use jwtgate::identity::UserRecord;
use jwtgate_sqlx::SqlDirectory;
use jwtgate_sqlx::SqlSettings;
use serde_json::{Value, json};

use crate::{connect_directory, fail};

/// Which database `jwtgate users` reads: a config file's `[directory]`, or a URL.
#[derive(clap::Args)]
pub(crate) struct DatabaseArgs {
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
            (None, Some(url)) => SqlDirectory::connect_read_only(&SqlSettings::new(url))
                .await
                .map_err(|e| e.to_string()),
            (None, None) => Err("give --config or --database-url".to_owned()),
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum UsersCommand {
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

/// `jwtgate users list|show`: read-only views for operators.
pub(crate) async fn run(command: UsersCommand) -> ExitCode {
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

/// A user record as `users show` and the served routes print it.
pub(crate) fn user_json(user: &UserRecord) -> Value {
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
