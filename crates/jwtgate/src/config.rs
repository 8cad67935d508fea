//! Loading a whole setup from a TOML file: validators, partner directory and routes.
//!
//! Every error names the file, the line and the key. Unknown keys are errors, so a typo never
//! silently turns a check off.
//!
//! ```
//! use jwtgate::config::Config;
//!
//! let config = Config::from_toml_str(r#"
//! realm = "jwtgate"
//! [[validator]]
//! name = "demo"
//! issuer = "theissuer"
//! audience = ["auth_jwt_test_api"]
//! algorithm = "HS256"
//! secret = "thesecret-of-at-least-32-bytes!!"
//! user = { static = 42 }
//! partner = { by = "email", required = false }
//! [directory]
//! partners = [{ id = 17, email = "mark@example.com" }]
//! [[route]]
//! path = "/whoami"
//! auth = "jwt_demo"
//! "#, "inline.toml", None)?;
//! let registry = config.registry()?;
//! assert_eq!(config.routes()[0].path, "/whoami");
//! # let _ = registry;
//! # Ok::<(), jwtgate::Error>(())
//! ```

use std::path::{Path, PathBuf};
#[cfg(feature = "remote-keys")]
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::algorithm::Algorithm;
use crate::cookie::CookieConfig;
use crate::error::{Error, ErrorKind};
use crate::mode::AuthMode;
use crate::registry::Registry;
#[cfg(feature = "remote-keys")]
use crate::remote::RemoteKeyOptions;
use crate::strategy::InMemoryDirectory;
use crate::validator::Validator;

/// A parsed config file.
#[derive(Debug)]
pub struct Config {
    origin: String,
    text: String,
    base_dir: Option<PathBuf>,
    file: FileToml,
    routes: Vec<Route>,
}

/// One `[[route]]`: a path and its auth mode.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Route {
    /// The route path, as axum writes it.
    pub path: String,
    /// The auth mode.
    pub auth: AuthMode,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    realm: Option<String>,
    session_cookie: Option<String>,
    #[serde(default)]
    validator: Vec<Spanned<ValidatorToml>>,
    directory: Option<DirectoryToml>,
    #[serde(default)]
    route: Vec<Spanned<RouteToml>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidatorToml {
    name: String,
    issuer: String,
    audience: OneOrMany,
    algorithm: String,
    secret: Option<String>,
    secret_env: Option<String>,
    public_key_pem: Option<String>,
    public_key_file: Option<PathBuf>,
    jwks: Option<String>,
    jwks_file: Option<PathBuf>,
    jwks_url: Option<String>,
    oidc_issuer: Option<String>,
    #[serde(default)]
    leeway_secs: u64,
    user: UserToml,
    partner: Option<PartnerToml>,
    next: Option<String>,
    cookie: Option<CookieToml>,
    remote: Option<RemoteToml>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserToml {
    #[serde(rename = "static")]
    static_id: Option<toml::Value>,
    claim: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartnerToml {
    by: String,
    #[serde(default)]
    required: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CookieToml {
    name: String,
    path: Option<String>,
    max_age_secs: Option<u64>,
    secure: Option<bool>,
    secret: Option<String>,
    secret_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "remote-keys"), allow(dead_code))]
struct RemoteToml {
    connect_timeout_ms: Option<u64>,
    timeout_ms: Option<u64>,
    max_body_bytes: Option<usize>,
    ttl_secs: Option<u64>,
    min_ttl_secs: Option<u64>,
    max_ttl_secs: Option<u64>,
    min_refetch_interval_secs: Option<u64>,
    max_stale_secs: Option<u64>,
    backoff_base_ms: Option<u64>,
    backoff_max_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectoryToml {
    #[serde(default)]
    partners: Vec<PartnerEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartnerEntry {
    id: u64,
    email: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteToml {
    path: String,
    auth: String,
}

impl Config {
    /// Reads and parses a config file. Relative key file paths are relative to the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("{}: cannot read: {e}", path.display()),
            )
        })?;
        Self::from_toml_str(&text, &path.display().to_string(), path.parent())
    }

    /// Parses config text; `origin` names it in errors, `base_dir` anchors relative paths.
    pub fn from_toml_str(text: &str, origin: &str, base_dir: Option<&Path>) -> Result<Self, Error> {
        let file: FileToml = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    format!(
                        "{origin}:{}:{}",
                        line_of(text, s.start),
                        column_of(text, s.start)
                    )
                })
                .unwrap_or_else(|| origin.to_owned());
            Error::new(
                ErrorKind::Config,
                format!("{at}: {}", e.message().trim_end()),
            )
        })?;
        let mut routes = Vec::new();
        for r in &file.route {
            let auth = r.get_ref().auth.parse().map_err(|e: Error| {
                Error::new(
                    ErrorKind::Config,
                    format!(
                        "{origin}:{}: key `auth`: {e}",
                        line_of(text, r.span().start)
                    ),
                )
            })?;
            routes.push(Route {
                path: r.get_ref().path.clone(),
                auth,
            });
        }
        Ok(Self {
            origin: origin.to_owned(),
            text: text.to_owned(),
            base_dir: base_dir.map(Path::to_path_buf),
            file,
            routes,
        })
    }

    /// The `[[route]]` entries.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The realm (default `jwtgate`).
    pub fn realm(&self) -> &str {
        self.file.realm.as_deref().unwrap_or("jwtgate")
    }

    fn at(&self, offset: usize) -> String {
        format!("{}:{}", self.origin, line_of(&self.text, offset))
    }

    /// Builds the registry; also checks that every route names an existing validator.
    pub fn registry(&self) -> Result<Registry, Error> {
        let mut builder = Registry::builder().realm(self.realm());
        if let Some(name) = &self.file.session_cookie {
            builder = builder.session_cookie(name.clone());
        }
        let mut directory = InMemoryDirectory::new();
        for p in self.file.directory.iter().flat_map(|d| &d.partners) {
            directory.insert(crate::identity::PartnerId(p.id), p.email.clone());
        }
        builder = builder.directory(directory);
        for spanned in &self.file.validator {
            let at = self.at(spanned.span().start);
            let v = spanned.get_ref();
            let validator = self.validator(v).map_err(|(key, e)| {
                Error::new(
                    ErrorKind::Config,
                    format!("{at}: validator {:?}: key `{key}`: {e}", v.name),
                )
            })?;
            builder = builder.validator(validator);
        }
        let registry = builder.build().map_err(|e| self.locate(e))?;
        for (route, spanned) in self.routes.iter().zip(&self.file.route) {
            registry.index_of(&route.auth).map_err(|e| {
                Error::new(
                    ErrorKind::Config,
                    format!(
                        "{}: route {:?}: key `auth`: {e}",
                        self.at(spanned.span().start),
                        route.path
                    ),
                )
            })?;
        }
        Ok(registry)
    }

    /// Adds file, line and key to a registry error, from the validator it names.
    fn locate(&self, e: Error) -> Error {
        let message = e.to_string();
        let named = self.file.validator.iter().find_map(|v| {
            let prefix = format!("validator {:?}: ", v.get_ref().name);
            message.strip_prefix(&prefix).map(|detail| (v, detail))
        });
        if let Some((v, detail)) = named {
            let key = key_for(e.kind(), detail, &key_sources(v.get_ref()));
            return Error::new(
                ErrorKind::Config,
                format!(
                    "{}: validator {:?}: key `{key}`: {detail}",
                    self.at(v.span().start),
                    v.get_ref().name
                ),
            );
        }
        // Name and chain errors name validators inside the message.
        let found = self.file.validator.iter().rev().find(|v| {
            let name = &v.get_ref().name;
            message.contains(&format!("{name:?}")) || message.contains(&format!("chain: {name} "))
        });
        let at = found.map_or_else(|| self.origin.clone(), |v| self.at(v.span().start));
        let key = key_for(e.kind(), &message, &[]);
        Error::new(ErrorKind::Config, format!("{at}: key `{key}`: {message}"))
    }

    fn path(&self, p: &Path) -> PathBuf {
        match &self.base_dir {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p.to_path_buf(),
        }
    }

    fn validator(&self, v: &ValidatorToml) -> Result<Validator, (&'static str, String)> {
        let algorithm: Algorithm = v
            .algorithm
            .parse()
            .map_err(|e: Error| ("algorithm", e.to_string()))?;
        let mut out = Validator::new(v.name.clone())
            .issuer(v.issuer.clone())
            .algorithm(algorithm)
            .leeway(std::time::Duration::from_secs(v.leeway_secs));
        out = match &v.audience {
            OneOrMany::One(a) => out.audience(a.clone()),
            OneOrMany::Many(a) => out.audiences(a.iter().cloned()),
        };
        let sources = key_sources(v);
        out = match sources.as_slice() {
            ["secret"] => out.secret(v.secret.clone().unwrap_or_default()),
            ["secret_env"] => out.secret_env(v.secret_env.clone().unwrap_or_default()),
            ["public_key_pem"] => out.public_key_pem(v.public_key_pem.clone().unwrap_or_default()),
            ["public_key_file"] => out.public_key_file(self.path(v.public_key_file.as_deref().unwrap_or(Path::new("")))),
            ["jwks"] => out.jwks(v.jwks.clone().unwrap_or_default()),
            ["jwks_file"] => out.jwks_file(self.path(v.jwks_file.as_deref().unwrap_or(Path::new("")))),
            #[cfg(feature = "remote-keys")]
            ["jwks_url"] => out.jwks_url(v.jwks_url.clone().unwrap_or_default()),
            #[cfg(feature = "remote-keys")]
            ["oidc_issuer"] => out.oidc_issuer(v.oidc_issuer.clone().unwrap_or_default()),
            [] => return Err(("secret", "one key source is required: secret, secret_env, public_key_pem, public_key_file, jwks, jwks_file, jwks_url or oidc_issuer".into())),
            [one] => return Err((one, "this key source needs the `remote-keys` feature".into())),
            [first, second, ..] => return Err((second, format!("only one key source may be set, `{first}` is set too"))),
        };
        out = match (&v.user.static_id, &v.user.claim) {
            (Some(toml::Value::Integer(id)), None) if *id >= 0 => out.static_user(*id as u64),
            (Some(toml::Value::String(id)), None) if !id.is_empty() => out.static_user(id.as_str()),
            (Some(_), None) => {
                return Err((
                    "user",
                    "`static` must be a non-negative integer or a non-empty string".into(),
                ));
            }
            (None, Some(claim)) => out.user_from_claim(claim.clone()),
            _ => return Err(("user", "set exactly one of `static` or `claim`".into())),
        };
        if let Some(p) = &v.partner {
            if p.by != "email" {
                return Err((
                    "partner",
                    format!(
                        "unknown partner strategy {:?}; the only one is \"email\"",
                        p.by
                    ),
                ));
            }
            out = out.partner_by_email(p.required);
        }
        if let Some(next) = &v.next {
            out = out.next(next.clone());
        }
        if let Some(c) = &v.cookie {
            let mut cookie = CookieConfig::new(c.name.clone());
            if let Some(path) = &c.path {
                cookie = cookie.path(path.clone());
            }
            if let Some(secs) = c.max_age_secs {
                cookie = cookie.max_age(std::time::Duration::from_secs(secs));
            }
            if let Some(secure) = c.secure {
                cookie = cookie.secure(secure);
            }
            cookie = match (&c.secret, &c.secret_env) {
                (Some(s), None) => cookie.secret(s.clone()),
                (None, Some(var)) => cookie.secret_env(var.clone()),
                _ => {
                    return Err((
                        "cookie",
                        "set exactly one of `secret` or `secret_env`".into(),
                    ));
                }
            };
            out = out.cookie(cookie);
        }
        if let Some(r) = &v.remote {
            #[cfg(feature = "remote-keys")]
            {
                out = out.remote_options(remote_options(r));
            }
            #[cfg(not(feature = "remote-keys"))]
            {
                let _ = r;
                return Err(("remote", "needs the `remote-keys` feature".into()));
            }
        }
        Ok(out)
    }
}

#[cfg(feature = "remote-keys")]
fn remote_options(r: &RemoteToml) -> RemoteKeyOptions {
    let d = RemoteKeyOptions::default();
    let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
    let secs = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_secs);
    d.clone()
        .connect_timeout(ms(r.connect_timeout_ms, d.connect_timeout))
        .timeout(ms(r.timeout_ms, d.timeout))
        .max_body(r.max_body_bytes.unwrap_or(d.max_body))
        .ttl(secs(r.ttl_secs, d.ttl))
        .ttl_bounds(
            secs(r.min_ttl_secs, d.min_ttl),
            secs(r.max_ttl_secs, d.max_ttl),
        )
        .min_refetch_interval(secs(r.min_refetch_interval_secs, d.min_refetch_interval))
        .max_stale(secs(r.max_stale_secs, d.max_stale))
        .backoff(
            ms(r.backoff_base_ms, d.backoff_base),
            ms(r.backoff_max_ms, d.backoff_max),
        )
}

/// The key sources a validator table sets, by key name.
fn key_sources(v: &ValidatorToml) -> Vec<&'static str> {
    [
        ("secret", v.secret.is_some()),
        ("secret_env", v.secret_env.is_some()),
        ("public_key_pem", v.public_key_pem.is_some()),
        ("public_key_file", v.public_key_file.is_some()),
        ("jwks", v.jwks.is_some()),
        ("jwks_file", v.jwks_file.is_some()),
        ("jwks_url", v.jwks_url.is_some()),
        ("oidc_issuer", v.oidc_issuer.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, set)| set.then_some(k))
    .collect()
}

/// The config key an error from building the registry is about.
fn key_for(kind: &ErrorKind, detail: &str, sources: &[&'static str]) -> &'static str {
    let source = sources.first().copied().unwrap_or("secret");
    match kind {
        ErrorKind::InvalidName | ErrorKind::DuplicateName => "name",
        ErrorKind::ClosedChain | ErrorKind::UnknownValidator => "next",
        ErrorKind::InvalidAlgorithm => "algorithm",
        _ if detail.starts_with("cookie") => "cookie",
        ErrorKind::WeakSecret | ErrorKind::InvalidKey => source,
        _ if detail.starts_with("issuer") => "issuer",
        _ if detail.contains("audience") => "audience",
        _ if detail.starts_with("user") => "user",
        _ if detail.contains("environment variable") => source,
        _ => "validator",
    }
}

fn column_of(text: &str, offset: usize) -> usize {
    let before = &text.as_bytes()[..offset.min(text.len())];
    before.iter().rev().take_while(|b| **b != b'\n').count() + 1
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = r#"realm = "jwtgate"
[[validator]]
name = "demo"
issuer = "theissuer"
audience = ["auth_jwt_test_api"]
algorithm = "HS256"
secret = "thesecret-of-at-least-32-bytes!!"
leeway_secs = 0
user = { static = 42 }
partner = { by = "email", required = false }
next = "other"
cookie = { name = "demo_auth", path = "/", max_age_secs = 31536000, secure = true, secret = "cookie-secret-cookie-secret-0032" }

[[validator]]
name = "other"
issuer = "theissuer"
audience = "auth_jwt_test_api"
algorithm = "HS256"
secret = "thesecret-of-at-least-32-bytes!!"
user = { claim = "sub" }

[directory]
partners = [{ id = 17, email = "mark@example.com" }]

[[route]]
path = "/whoami"
auth = "jwt_demo"
"#;

    fn load(text: &str) -> Result<Registry, Error> {
        Config::from_toml_str(text, "app.toml", None)?.registry()
    }

    #[test]
    fn the_documented_shape_loads() {
        let config = Config::from_toml_str(DEMO, "app.toml", None).unwrap();
        let registry = config.registry().unwrap();
        assert_eq!(
            registry.validator_names().collect::<Vec<_>>(),
            ["demo", "other"]
        );
        assert_eq!(config.routes()[0].auth, AuthMode::Jwt(Some("demo".into())));
    }

    #[test]
    fn unknown_keys_name_line_and_column() {
        let text = DEMO.replace("leeway_secs = 0", "leeway = 0");
        let err = load(&text).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Config);
        let msg = err.to_string();
        assert!(
            msg.starts_with("app.toml:8:1: unknown field `leeway`"),
            "{msg}"
        );
    }

    #[test]
    fn semantic_errors_name_file_line_and_key() {
        let err = load(&DEMO.replace(
            "thesecret-of-at-least-32-bytes!!\"\nleeway",
            "short\"\nleeway",
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "app.toml:2: validator \"demo\": key `secret`: the HS256 secret must be at least 32 bytes long, it has 5"
        );
        let err = load(&DEMO.replace(
            "algorithm = \"HS256\"\nsecret = \"thesecret-of-at-least-32-bytes!!\"\nleeway",
            "algorithm = \"none\"\nsecret = \"x\"\nleeway",
        ))
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("app.toml:2: validator \"demo\": key `algorithm`:"),
            "{err}"
        );
        let err = load(&DEMO.replace(
            "user = { static = 42 }",
            "user = { static = 42, claim = \"sub\" }",
        ))
        .unwrap_err();
        assert!(
            err.to_string().contains("key `user`: set exactly one"),
            "{err}"
        );
        let err = load(&DEMO.replace("name = \"other\"", "name = \"other thing\"")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("app.toml:14: key `name`: validator name \"other thing\""),
            "{err}"
        );
        let err = load(&DEMO.replace("auth = \"jwt_demo\"", "auth = \"jwt_nope\"")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("app.toml:25: route \"/whoami\": key `auth`:"),
            "{err}"
        );
        let err = load(&DEMO.replace(
            "secret = \"thesecret-of-at-least-32-bytes!!\"\nuser = { claim",
            "secret = \"thesecret-of-at-least-32-bytes!!\"\nnext = \"demo\"\nuser = { claim",
        ))
        .unwrap_err();
        assert!(
            err.to_string().contains(
                "key `next`: Validators mustn't make a closed chain: other -> demo -> other."
            ),
            "{err}"
        );
        let err = load(&DEMO.replace(
            "secret = \"thesecret-of-at-least-32-bytes!!\"\nleeway",
            "secret = \"thesecret-of-at-least-32-bytes!!\"\njwks_url = \"https://x\"\nleeway",
        ))
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("key `jwks_url`: only one key source"),
            "{err}"
        );
    }

    #[cfg(feature = "remote-keys")]
    #[test]
    fn remote_options_load_and_are_checked() {
        let remote = DEMO.replace(
            "algorithm = \"HS256\"\nsecret = \"thesecret-of-at-least-32-bytes!!\"\nleeway",
            "algorithm = \"RS256\"\njwks_url = \"https://idp.example/certs\"\nremote = { timeout_ms = 1500, ttl_secs = 120, max_stale_secs = 3600 }\nleeway",
        );
        let config = Config::from_toml_str(&remote, "app.toml", None).unwrap();
        let v = &config.file.validator[0];
        let opts = remote_options(v.get_ref().remote.as_ref().unwrap());
        assert_eq!(opts.timeout, Duration::from_millis(1500));
        assert_eq!(opts.ttl, Duration::from_secs(120));
        assert_eq!(opts.max_stale, Duration::from_secs(3600));
        assert_eq!(opts.connect_timeout, Duration::from_secs(2));
        assert_eq!(config.registry().unwrap().key_caches().len(), 1);
        let err = load(&remote.replace("ttl_secs = 120", "ttl = 120")).unwrap_err();
        assert!(err.to_string().starts_with("app.toml:8:31:"), "{err}");
        assert!(err.to_string().contains("unknown field `ttl`"), "{err}");
    }

    #[test]
    fn cookie_and_audience_errors_point_at_their_keys() {
        let err = load(&DEMO.replace(
            "secret = \"cookie-secret-cookie-secret-0032\"",
            "secret = \"short\"",
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "app.toml:2: validator \"demo\": key `cookie`: cookie secret: the HS256 secret must be at least 32 bytes long, it has 5"
        );
        let err =
            load(&DEMO.replace("audience = [\"auth_jwt_test_api\"]", "audience = []")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "app.toml:2: validator \"demo\": key `audience`: a non-empty audience is required"
        );
    }

    #[test]
    fn secrets_from_the_environment() {
        let text = DEMO.replace(
            "secret = \"thesecret-of-at-least-32-bytes!!\"\nleeway",
            "secret_env = \"JWTGATE_CONFIG_TEST_UNSET\"\nleeway",
        );
        let err = load(&text).unwrap_err();
        assert!(
            err.to_string().contains(
                "key `secret_env`: environment variable JWTGATE_CONFIG_TEST_UNSET is not set"
            ),
            "{err}"
        );
    }
}
