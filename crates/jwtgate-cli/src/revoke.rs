//! `jwtgate revoke`: writes one revocation to the config file's `[store]`, where every
//! instance serving that config refuses it within its staleness bound.

use std::path::PathBuf;
use std::process::ExitCode;

use jwtgate::revocation::Target;

use crate::{Loaded, fail};

/// Revokes a session, a token or a subject in the config file's `[store]`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["session", "jti", "subject"])))]
pub(crate) struct RevokeArgs {
    /// The config file (its `[store]` needs a `url`).
    #[arg(long)]
    config: PathBuf,
    /// The validator whose issuer the credential comes from.
    #[arg(long)]
    validator: String,
    /// The issuer, for a validator of several issuers (one of its `issuers`, or an issuer its
    /// `{tenant}` pattern accepts); default: every issuer the validator names exactly.
    #[arg(long)]
    issuer: Option<String>,
    /// A jwtgate session id (the `session` member of the session cookie's header).
    #[arg(long)]
    session: Option<String>,
    /// A token's `jti`.
    #[arg(long)]
    jti: Option<String>,
    /// A subject (`sub`): every token and session issued at or before `--before`.
    #[arg(long)]
    subject: Option<String>,
    /// With `--subject`: the instant (RFC 3339 or Unix seconds; default now).
    #[arg(long, value_parser = parse_instant)]
    before: Option<u64>,
    /// When the revocation may be forgotten (RFC 3339 or Unix seconds; default: the store's
    /// retention from now, or from `--before`).
    #[arg(long, value_parser = parse_instant)]
    until: Option<u64>,
}

pub(crate) async fn run(args: RevokeArgs) -> ExitCode {
    // Checked before anything is loaded (clap's `requires` does not hold beside the group).
    if args.before.is_some() && args.subject.is_none() {
        return fail("--before goes with --subject");
    }
    let loaded = match Loaded::from_file(&args.config).await {
        Ok(loaded) => loaded,
        Err(e) => return fail(e),
    };
    if !loaded.config.has_store_url() {
        return fail(format!(
            "{}: no [store] url: revocations in memory live only in the process serving them \
             (revoke through the app, or give the config a shared store)",
            loaded.config.origin()
        ));
    }
    let target = match (args.session, args.jti, args.subject) {
        (Some(id), None, None) => Target::Session(id),
        (None, Some(jti), None) => Target::Token(jti),
        (None, None, Some(subject)) => match args.before {
            Some(before) => Target::Subject { subject, before },
            None => Target::subject_now(subject),
        },
        _ => return fail("give exactly one of --session, --jti and --subject"),
    };
    let kind = target.kind();
    let revoker = loaded.registry.revoker();
    let v = &args.validator;
    let written = match (&args.issuer, args.until) {
        (Some(iss), Some(until)) => revoker.revoke_issuer_until(v, iss, target, until).await,
        (Some(iss), None) => revoker.revoke_issuer(v, iss, target).await,
        (None, Some(until)) => revoker.revoke_until(v, target, until).await,
        (None, None) => revoker.revoke(v, target).await,
    };
    match written {
        Ok(()) => {
            println!("revoked: {kind} of validator {}", args.validator);
            ExitCode::SUCCESS
        }
        Err(e) if e.kind() == &jwtgate::ErrorKind::Store => {
            eprintln!("jwtgate: {e}");
            ExitCode::FAILURE
        }
        Err(e) => fail(e),
    }
}

/// Unix seconds, or an RFC 3339 date-time (`2026-12-04T10:00:00Z`, `...+01:00`, fractions
/// of a second dropped).
fn parse_instant(text: &str) -> Result<u64, String> {
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(secs);
    }
    rfc3339(text).ok_or_else(|| {
        format!("{text:?} is neither Unix seconds nor an RFC 3339 date-time (2026-12-04T10:00:00Z)")
    })
}

fn rfc3339(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let mut rest = &text[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let end = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        if end == 0 {
            return None;
        }
        rest = &frac[end..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(&rest[..1], "+" | "-") && &rest[3..4] == ":" => {
            let h: i64 = rest[1..3].parse().ok()?;
            let m: i64 = rest[4..6].parse().ok()?;
            if h > 23 || m > 59 {
                return None;
            }
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    let days_in_month = [
        31,
        28 + i64::from(is_leap(year)),
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month[usize::try_from(month - 1).ok()?]
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let secs =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    u64::try_from(secs).ok()
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_unix_seconds_or_rfc_3339() {
        assert_eq!(parse_instant("1733300000"), Ok(1_733_300_000));
        assert_eq!(parse_instant("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_instant("2026-12-04T10:00:00Z"), Ok(1_796_378_400));
        assert_eq!(
            parse_instant("2026-12-04T11:00:00.250+01:00"),
            Ok(1_796_378_400)
        );
        assert_eq!(parse_instant("2024-02-29T00:00:00Z"), Ok(1_709_164_800));
        for bad in [
            "2025-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-12-04 10:00",
            "2026-12-04T10:00:00",
            "2026-12-04T10:00:00+1:00",
            "1969-12-31T23:59:59Z",
            "yesterday",
        ] {
            assert!(parse_instant(bad).is_err(), "{bad}");
        }
    }
}
