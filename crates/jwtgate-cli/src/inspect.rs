//! `jwtgate inspect`: says, validator by validator, whether a token passes and why not,
//! through every stage `serve` runs, then the verdict of the signature and of each claim on its
//! own, and the state of each remote key cache.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::{Loaded, fail};

/// Says, validator by validator, whether a token passes and why not.
#[derive(clap::Args)]
pub(crate) struct InspectArgs {
    /// The TOML config file.
    #[arg(long)]
    pub(crate) config: PathBuf,
    /// The token (without `Bearer `).
    pub(crate) token: String,
}

pub(crate) async fn run(args: InspectArgs) -> ExitCode {
    let InspectArgs {
        config: path,
        token,
    } = args;
    // The registry `serve` builds, directory included: every stage a request goes through.
    let registry = match Loaded::from_file(&path).await {
        Ok(loaded) => loaded.registry,
        Err(e) => return fail(e),
    };
    // A shared store is loaded by its follower: give it the time a starting server has
    // (a store that stays away shows in the verdicts as "sign-outs cannot be confirmed").
    let loading = std::time::Instant::now();
    while !registry.revocation_state().fresh && loading.elapsed().as_secs() < 5 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let token = token.trim();
    let token = token.strip_prefix("Bearer ").unwrap_or(token);
    let verdicts = registry.inspect(token).await;
    for v in &verdicts {
        match v.refusal() {
            None => println!("{}: accepted", v.validator()),
            Some(why) => println!("{}: refused: {why}", v.validator()),
        }
        // Each check on its own, the signature apart from the claims: "wrong key" and "wrong
        // audience" are told apart whichever a request meets first.
        for check in v.checks() {
            match check.refusal() {
                None => println!("  {}: ok", check.what()),
                Some(why) => println!("  {}: refused: {why}", check.what()),
            }
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
