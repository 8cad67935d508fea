//! `jwtgate mint`: signs a token for testing, with the algorithm and key given.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
use jwtgate::Algorithm;
use serde_json::{Map, Value, json};

use crate::fail;

/// Signs a token for testing.
#[derive(clap::Args)]
pub(crate) struct MintArgs {
    /// Algorithm (HS256, RS256, ES256, EdDSA, ...).
    #[arg(long, default_value = "HS256")]
    pub(crate) alg: String,
    /// HMAC secret.
    #[arg(long, conflicts_with_all = ["secret_env", "key_file"])]
    pub(crate) secret: Option<String>,
    /// Environment variable holding the HMAC secret.
    #[arg(long, conflicts_with = "key_file")]
    pub(crate) secret_env: Option<String>,
    /// PEM private key file (RSA, EC, Ed25519).
    #[arg(long)]
    pub(crate) key_file: Option<PathBuf>,
    /// `kid` header.
    #[arg(long)]
    pub(crate) kid: Option<String>,
    /// `iss` claim.
    #[arg(long)]
    pub(crate) iss: Option<String>,
    /// `aud` claim (repeat for an array).
    #[arg(long)]
    pub(crate) aud: Vec<String>,
    /// `sub` claim.
    #[arg(long)]
    pub(crate) sub: Option<String>,
    /// `email` claim.
    #[arg(long)]
    pub(crate) email: Option<String>,
    /// Seconds until `exp` (negative for an expired token: `--expires-in -10`).
    #[arg(long, default_value_t = 3600, allow_negative_numbers = true)]
    pub(crate) expires_in: i64,
    /// Extra claims as a JSON object, merged last.
    #[arg(long)]
    pub(crate) claims: Option<String>,
}

pub(crate) fn run(args: MintArgs) -> ExitCode {
    let MintArgs {
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
    } = args;
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
