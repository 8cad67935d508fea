//! Loading a whole setup from a TOML file: validators, partner directory and routes.
//!
//! Every error names the file, the line and column of the offending key, and the key; its
//! [`kind`](crate::Error::kind) stays what the builder said (a weak secret is a
//! [`WeakSecret`](crate::ErrorKind::WeakSecret) here too). Unknown keys are errors, so a typo
//! never silently turns a check off. Everything maps onto the public builder: a config file
//! can do nothing that code cannot.
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

mod file;
mod forward_auth;
mod http;
mod route;
mod section;
mod toml_error;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use self::file::{
    FileToml, ProviderToml, SourceTable, SourceToml, ValidatorToml, column_of, key_offset, line_of,
};
use crate::cookie::CookieMode;
use crate::credentials::TokenSource;
use crate::directory::{InMemoryDirectory, UserMatch};
use crate::error::{Error, ErrorKind, Location};
use crate::identity::PartnerId;
use crate::jws::algorithm::Algorithm;
use crate::key_source::KeySource;
use crate::mode::AuthMode;
use crate::registry::{Registry, RegistryBuilder};
#[cfg(feature = "remote-keys")]
use crate::remote::RemoteKeyOptions;
use crate::revocation::StoreOptions;
use crate::validator::{Partner, Preset, User, Validator};

pub use self::route::Route;

/// A parsed config file.
#[derive(Debug)]
pub struct Config {
    origin: String,
    text: String,
    base_dir: Option<PathBuf>,
    file: FileToml,
    routes: Vec<Route>,
}

/// A key source set in a validator table, by its key.
type SetSource<'a> = (&'static str, Range<usize>, KeySourceValue<'a>);

enum KeySourceValue<'a> {
    Text(&'a str),
    Path(&'a Path),
    /// A source without a value (`oidc_discovery = true`).
    Flag,
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
            .with_source(e)
        })?;
        Self::from_toml_str(&text, &path.display().to_string(), path.parent())
    }

    /// Parses config text; `origin` names it in errors, `base_dir` anchors relative paths.
    pub fn from_toml_str(text: &str, origin: &str, base_dir: Option<&Path>) -> Result<Self, Error> {
        let file: FileToml = toml::from_str(text)
            .map_err(|e| toml_error::describe(&e, text, origin).with_source(e))?;
        let mut config = Self {
            origin: origin.to_owned(),
            text: text.to_owned(),
            base_dir: base_dir.map(Path::to_path_buf),
            file,
            routes: Vec::new(),
        };
        config.check_directory()?;
        config.check_store()?;
        let mut routes = Vec::new();
        let mut paths = route::Paths::default();
        for r in &config.file.route {
            let auth = r.auth.get_ref().parse().map_err(|e: Error| {
                e.in_field("auth")
                    .at(config.location(&r.auth.span(), "auth"))
            })?;
            paths.add(r.path.get_ref()).map_err(|message| {
                Error::new(ErrorKind::Config, message)
                    .in_field("path")
                    .at(config.location(&r.path.span(), "path"))
            })?;
            routes.push(Route {
                path: r.path.get_ref().clone(),
                auth,
                scopes: r.scopes.clone(),
                any_scopes: r.any_scopes.clone(),
                roles: r.roles.iter().map(Into::into).collect(),
                any_roles: r.any_roles.iter().map(Into::into).collect(),
            });
        }
        config.routes = routes;
        // The check's options are checked on load, so that a bad one is an error at its key
        // whatever runs the file; its routes are built with the registry.
        config.forward_auth_builder()?;
        Ok(config)
    }

    /// Where the config came from (the file path, or the `origin` given to
    /// [`from_toml_str`](Self::from_toml_str)), for messages about it.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The `[[route]]` entries.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The realm (default `jwtgate`).
    pub fn realm(&self) -> &str {
        self.file
            .realm
            .as_ref()
            .map_or("jwtgate", |r| r.get_ref().as_str())
    }

    /// `[directory]` keys beyond `partners` are a database adapter's, and need `url`;
    /// `partners` are for the directory in memory, not beside `url`.
    fn check_directory(&self) -> Result<(), Error> {
        let Some(d) = &self.file.directory else {
            return Ok(());
        };
        let at = |key: &str| self.key_location("directory", key);
        match (d.adapter.contains_key("url"), d.adapter.keys().next()) {
            (false, Some(key)) => Err(Error::new(
                ErrorKind::Config,
                "this [directory] key needs `url` (a database directory)",
            )
            .in_field(format!("directory.{key}"))
            .at(at(key))),
            (true, _) if !d.partners.is_empty() => Err(Error::new(
                ErrorKind::Config,
                "`partners` is for a directory in memory; with `url`, partners are the \
                 database's contacts",
            )
            .in_field("directory.url")
            .at(at("url"))),
            _ => Ok(()),
        }
    }

    /// `[store]` options in range; adapter keys (beyond `url`) need `url`.
    fn check_store(&self) -> Result<(), Error> {
        let Some(s) = &self.file.store else {
            return Ok(());
        };
        let positive = [
            ("max_staleness_secs", &s.max_staleness_secs),
            ("retention_secs", &s.retention_secs),
            ("max_entries", &s.max_entries),
        ];
        for (key, value) in positive {
            if let Some(v) = value
                && *v.get_ref() == 0
            {
                return Err(self.error_at(v.span(), &format!("store.{key}"), "must be at least 1"));
            }
        }
        match (s.adapter.contains_key("url"), s.adapter.keys().next()) {
            (false, Some(key)) => Err(Error::new(
                ErrorKind::Config,
                "this [store] key needs `url` (a shared store such as Redis)",
            )
            .in_field(format!("store.{key}"))
            .at(self.key_location("store", key))),
            _ => Ok(()),
        }
    }

    /// Whether `[store]` sets `url`: revocations then live in a shared store, connected by an
    /// adapter (`jwtgate_redis::RedisStore::from_config`) and given to
    /// [`registry_with`](Self::registry_with).
    pub fn has_store_url(&self) -> bool {
        self.file
            .store
            .as_ref()
            .is_some_and(|s| s.adapter.contains_key("url"))
    }

    /// The `[store]` options (defaults where the file is silent).
    pub fn store_options(&self) -> StoreOptions {
        let mut options = StoreOptions::new();
        let Some(s) = &self.file.store else {
            return options;
        };
        if let Some(v) = &s.max_staleness_secs {
            options = options.max_staleness(Duration::from_secs(*v.get_ref()));
        }
        if let Some(v) = s.fail_open {
            options = options.fail_open(v);
        }
        if let Some(v) = &s.retention_secs {
            options = options.retention(Duration::from_secs(*v.get_ref()));
        }
        if let Some(v) = &s.max_entries {
            options = options.max_entries(usize::try_from(*v.get_ref()).unwrap_or(usize::MAX));
        }
        options
    }

    /// Where the key `key` of the table `[table]` is written (its own line, or its subtable
    /// `[table.key]`), else the table's header; for keys whose value has no span here.
    fn key_location(&self, table: &str, key: &str) -> Location {
        let header = format!("[{table}]");
        let sub = format!("[{table}.{key}]");
        let mut in_table = false;
        let mut offset = 0;
        let mut found = None;
        for line in self.text.split_inclusive('\n') {
            let trimmed = line.trim();
            if trimmed == sub {
                found = Some(offset + (line.len() - line.trim_start().len()));
                break;
            }
            if trimmed.starts_with('[') {
                if trimmed == header {
                    found = found.or(Some(offset));
                }
                in_table = trimmed == header;
            } else if in_table
                && trimmed
                    .strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            {
                found = Some(offset + (line.len() - line.trim_start().len()));
                break;
            }
            offset += line.len();
        }
        self.location_at(found.unwrap_or(0))
    }

    /// Where the key `key` whose value spans `span` is written.
    fn location(&self, span: &Range<usize>, key: &str) -> Location {
        self.location_at(key_offset(&self.text, span.start, key))
    }

    /// Where the table whose body spans `span` starts: its `[[header]]` line when it has one.
    fn table_location(&self, span: &Range<usize>) -> Location {
        let start = span.start.min(self.text.len());
        let at = self.text[..start]
            .trim_end()
            .rfind('\n')
            .map_or(0, |i| i + 1);
        self.location_at(if self.text[at..].starts_with("[[") {
            at
        } else {
            start
        })
    }

    /// The line and column of byte `at` of the file.
    fn location_at(&self, at: usize) -> Location {
        Location::new(
            &self.origin,
            line_of(&self.text, at),
            column_of(&self.text, at),
        )
    }

    /// Builds the registry; also checks that every route names an existing validator.
    ///
    /// With `[directory] url`, validators that find users in the directory need one: build
    /// with [`registry_with`](Self::registry_with) and `jwtgate-sqlx`.
    pub fn registry(&self) -> Result<Registry, Error> {
        self.registry_with(|builder| builder)
    }

    /// Builds the registry, letting `customize` add what a file cannot hold (a database
    /// directory: `|b| b.users(dir.clone()).directory(dir)`).
    pub fn registry_with(
        &self,
        customize: impl FnOnce(RegistryBuilder) -> RegistryBuilder,
    ) -> Result<Registry, Error> {
        let mut builder = Registry::builder().realm(self.realm());
        if let Some(name) = &self.file.session_cookie {
            builder = builder.session_cookie(name.get_ref().clone());
        }
        if let Some(capacity) = self.file.token_cache {
            builder = builder.token_cache(capacity);
        }
        #[cfg(feature = "remote-keys")]
        {
            builder = builder.http_client(self.http_client()?);
        }
        let mut directory = InMemoryDirectory::new();
        for p in self.file.directory.iter().flat_map(|d| &d.partners) {
            directory.insert(PartnerId(p.id), p.email.clone());
        }
        builder = customize(
            builder
                .directory(directory)
                .store_options(self.store_options()),
        );
        if self.has_store_url() && !builder.has_store() {
            return Err(Error::new(
                ErrorKind::Config,
                "[store] url needs a store adapter: connect one (jwtgate_redis::RedisStore) and \
                 pass it with Config::registry_with(|b| b.store(store))",
            )
            .in_field("store.url")
            .at(self.key_location("store", "url")));
        }
        for v in &self.file.validator {
            let validator = self
                .validator(v.get_ref())
                .map_err(|e| self.locate(e.in_validator(v.get_ref().name.get_ref())))?;
            builder = builder.validator(validator);
        }
        let registry = builder.build().map_err(|e| self.locate(e))?;
        for r in &self.file.route {
            let auth: AuthMode = r
                .auth
                .get_ref()
                .parse()
                .map_err(|e: Error| e.in_field("auth"))?;
            registry
                .chain(&auth)
                .map_err(|e| e.in_field("auth").at(self.location(&r.auth.span(), "auth")))?;
        }
        Ok(registry)
    }

    /// The top-level table `name` of the file (`[directory]` for `jwtgate-sqlx`), read by `T`'s
    /// own `Deserialize`: an adapter keeps its settings' shape, jwtgate keeps the locating. A
    /// TOML-layer error (an unknown key, a wrong type) names the file, line, column and key as
    /// every config error does; `Ok(None)` when the file has no such table. `T` may hold
    /// `toml::Spanned` values, whose spans [`error_at`](Self::error_at) turns into locations.
    pub fn section<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<Option<T>, Error> {
        let de = toml::de::Deserializer::parse(&self.text)
            .map_err(|e| toml_error::describe(&e, &self.text, &self.origin))?;
        serde::de::Deserializer::deserialize_map(de, section::Pick::new(name))
            .map_err(|e| toml_error::describe(&e, &self.text, &self.origin).with_source(e))
    }

    /// An error about the key `key` (dotted, as the file names it: `directory.users.email`)
    /// whose value `toml` spanned `span` (from a `toml::Spanned` of a [`section`](Self::section)),
    /// located at the key.
    pub fn error_at(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> Error {
        let own = key.rsplit('.').next().unwrap_or(key);
        Error::new(ErrorKind::InvalidSetting, message)
            .in_field(key.to_owned())
            .at(self.location(&span, own))
    }

    /// Whether `[directory]` sets `url`: users and partners then live in a database, read by
    /// an adapter (`jwtgate_sqlx::SqlSettings::from_config`).
    pub fn has_directory_url(&self) -> bool {
        self.file
            .directory
            .as_ref()
            .is_some_and(|d| d.adapter.contains_key("url"))
    }

    /// Adds the location of the key an error names, from the structured context the builder
    /// gave it (validator and setting), never from its text.
    fn locate(&self, e: Error) -> Error {
        if e.location().is_some() {
            return e;
        }
        let field = e.field();
        let table = e.validator().and_then(|name| {
            // The last table of that name: a duplicate is the offending one.
            self.file
                .validator
                .iter()
                .rev()
                .find(|v| v.get_ref().name.get_ref() == name)
        });
        let at = match (table, field) {
            (Some(t), Some(f)) => match t.get_ref().span_of(f) {
                Some((span, key)) => self.location(&span, key),
                // A required key that is not set: the table that lacks it.
                None => self.table_location(&t.span()),
            },
            (Some(t), None) => self.table_location(&t.span()),
            (None, Some("realm")) => match &self.file.realm {
                Some(r) => self.location(&r.span(), "realm"),
                None => Location::new(&self.origin, 1, 1),
            },
            (None, _) => Location::new(&self.origin, 1, 1),
        };
        e.at(at)
    }

    /// A path written in the file, relative to the file's folder (as key files are), for
    /// adapters' own paths (`jwtgate-redis`'s `ca_file`).
    pub fn resolve_path(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path(p.as_ref())
    }

    fn path(&self, p: &Path) -> PathBuf {
        match &self.base_dir {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p.to_path_buf(),
        }
    }

    fn validator(&self, v: &ValidatorToml) -> Result<Validator, Error> {
        let invalid = |field: &'static str, message: String| {
            Error::new(ErrorKind::InvalidSetting, message).in_field(field)
        };
        let mut out = Validator::new(v.name.get_ref().clone());
        if let Some(p) = &v.provider {
            out = out.preset(preset(p.get_ref()));
        }
        match (&v.issuer, &v.issuers) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "issuers",
                    "set issuer or issuers, not both".to_owned(),
                ));
            }
            (Some(issuer), None) => out = out.issuer(issuer.get_ref().clone()),
            (None, Some(issuers)) => out = out.issuers(issuers.get_ref().clone()),
            (None, None) => {}
        }
        if let Some(audience) = &v.audience {
            out = out.audiences(audience.get_ref().to_vec());
        }
        if let Some(party) = &v.authorized_party {
            out = out.authorized_party(party.get_ref().clone());
        }
        if let Some(alg) = &v.algorithm {
            let alg: Algorithm = alg
                .get_ref()
                .parse()
                .map_err(|e: Error| e.in_field("algorithm"))?;
            out = out.algorithm(alg);
        }
        let set = key_sources(v);
        if let [(first, _, _), (second, _, _), ..] = set.as_slice() {
            return Err(Error::new(
                ErrorKind::Config,
                format!("only one key source may be set, `{first}` is set too"),
            )
            .in_field(*second));
        }
        if let Some((field, _, value)) = set.into_iter().next() {
            out = out.key(self.key_source(field, value)?);
        }
        if let Some(sources) = &v.sources {
            let list = sources
                .get_ref()
                .iter()
                .map(token_source)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|message| invalid("sources", message))?;
            out = out.token_sources(list);
        }
        if let Some(typ) = &v.typ {
            out = out.token_types(typ.get_ref().to_vec());
        }
        if let Some(bytes) = &v.max_token_bytes {
            out = out.max_token_bytes(*bytes.get_ref());
        }
        if let Some(secs) = &v.leeway_secs {
            out = out.leeway(Duration::from_secs(*secs.get_ref()));
        }
        if let Some(secs) = &v.max_leeway_secs {
            out = out.max_leeway(Duration::from_secs(*secs.get_ref()));
        }
        // `register`, `service_users` and `profile_url` sit beside `user` in the file but are
        // options of a directory user.
        let directory_only = [
            ("register", v.register.is_some()),
            ("service_users", v.service_users.is_some()),
            ("profile_url", v.profile_url.is_some()),
        ];
        let user: Option<User> = match v.user.as_ref().map(Spanned::get_ref) {
            None => None,
            Some(user) => Some(match (&user.static_id, &user.claim, &user.directory) {
                (Some(toml::Value::Integer(id)), None, None) if *id >= 0 => User::fixed(*id as u64),
                (Some(toml::Value::String(id)), None, None) if !id.is_empty() => {
                    User::fixed(id.as_str())
                }
                (Some(_), None, None) => {
                    return Err(invalid(
                        "user",
                        "`static` must be a non-negative integer or a non-empty string".into(),
                    ));
                }
                (None, Some(claim), None) => User::claim(claim.clone()),
                (None, None, Some(by)) => {
                    let matching = match by.as_str() {
                        "email" => UserMatch::Email,
                        "subject" => UserMatch::Subject,
                        other => {
                            return Err(invalid(
                                "user",
                                format!(
                                    "unknown directory match {other:?}; use \"email\" or \"subject\""
                                ),
                            ));
                        }
                    };
                    let mut d = User::directory(matching);
                    if let Some(register) = &v.register {
                        d = d.register(*register.get_ref());
                    }
                    if let Some(service_users) = &v.service_users {
                        d = d.service_users(*service_users.get_ref());
                    }
                    if let Some(path) = &v.profile_url {
                        d = d.profile_url(path.get_ref().clone());
                    }
                    d.into()
                }
                _ => {
                    return Err(invalid(
                        "user",
                        "set exactly one of `static`, `claim` or `directory`".into(),
                    ));
                }
            }),
        };
        let directory_user = v
            .user
            .as_ref()
            .is_some_and(|u| u.get_ref().directory.is_some());
        if !directory_user
            && let Some((field, _)) = directory_only.into_iter().find(|(_, set)| *set)
        {
            return Err(invalid(
                field,
                format!("{field} needs a directory user (user = {{ directory = \"email\" }})"),
            ));
        }
        if let Some(user) = user {
            out = out.user(user);
        }
        if let Some(p) = &v.partner {
            let p = p.get_ref();
            if p.by != "email" {
                return Err(invalid(
                    "partner",
                    format!(
                        "unknown partner strategy {:?}; the only one is \"email\"",
                        p.by
                    ),
                ));
            }
            let partner = Partner::by_email();
            out = out.partner(if p.required {
                partner.required()
            } else {
                partner
            });
        }
        if let Some(next) = &v.next {
            out = out.next(next.get_ref().clone());
        }
        if let Some(c) = &v.cookie {
            let c = c.get_ref();
            let mut cookie = CookieMode::new(c.name.get_ref().clone());
            if let Some(path) = &c.path {
                cookie = cookie.path(path.get_ref().clone());
            }
            if let Some(secs) = &c.max_age_secs {
                cookie = cookie.max_age(Duration::from_secs(*secs.get_ref()));
            }
            if let Some(secure) = c.secure {
                cookie = cookie.secure(secure);
            }
            if let Some(prefix) = &c.host_prefix {
                cookie = cookie.host_prefix(*prefix.get_ref());
            }
            if let Some(from_bearer) = c.from_bearer {
                cookie = cookie.from_bearer(from_bearer);
            }
            cookie = match (&c.secret, &c.secret_env) {
                (Some(s), None) => cookie.secret(s.get_ref().clone()),
                (None, Some(var)) => cookie.secret_env(var.get_ref().clone()),
                _ => {
                    return Err(invalid(
                        "cookie",
                        "set exactly one of `secret` or `secret_env`".into(),
                    ));
                }
            };
            out = out.cookie(cookie);
        }
        if let Some(t) = &v.session {
            let t = t.get_ref();
            let mut session = crate::session::SessionOptions::new();
            if let Some(secs) = &t.idle_timeout_secs {
                session = session.idle_timeout(Duration::from_secs(*secs.get_ref()));
            }
            if let Some(secs) = &t.absolute_timeout_secs {
                session = session.absolute_timeout(Duration::from_secs(*secs.get_ref()));
            }
            if let Some(refresh) = t.refresh {
                session = session.refresh(refresh);
            }
            if let Some(secs) = &t.max_refresh_margin_secs {
                session = session.max_refresh_margin(Duration::from_secs(*secs.get_ref()));
            }
            out = out.session(session);
        }
        #[cfg(feature = "login")]
        {
            if let Some(l) = &v.login {
                out = out.login(login(l.get_ref()).map_err(|m| invalid("login", m))?);
            }
            if let Some(l) = &v.logout {
                let l = l.get_ref();
                let mut logout = crate::login::Logout::url(l.url.clone());
                if let Some(p) = &l.redirect_param {
                    logout = logout.redirect_param(p.clone());
                }
                out = out.logout(logout);
            }
        }
        #[cfg(not(feature = "login"))]
        if v.login.is_some() || v.logout.is_some() {
            return Err(invalid("login", "needs the `login` feature".into()));
        }
        if let Some(r) = &v.remote {
            #[cfg(feature = "remote-keys")]
            {
                out = out.remote_options(remote_options(r.get_ref()));
            }
            #[cfg(not(feature = "remote-keys"))]
            {
                let _ = r;
                return Err(invalid("remote", "needs the `remote-keys` feature".into()));
            }
        }
        Ok(out)
    }

    fn key_source(
        &self,
        field: &'static str,
        value: KeySourceValue<'_>,
    ) -> Result<KeySource, Error> {
        Ok(match (field, value) {
            ("secret", KeySourceValue::Text(s)) => KeySource::secret(s),
            ("secret_env", KeySourceValue::Text(s)) => KeySource::secret_env(s),
            ("public_key_pem", KeySourceValue::Text(s)) => KeySource::public_key_pem(s),
            ("jwks", KeySourceValue::Text(s)) => KeySource::jwks(s),
            ("public_key_file", KeySourceValue::Path(p)) => {
                KeySource::public_key_file(self.path(p))
            }
            ("jwks_file", KeySourceValue::Path(p)) => KeySource::jwks_file(self.path(p)),
            #[cfg(feature = "remote-keys")]
            ("jwks_url", KeySourceValue::Text(s)) => KeySource::jwks_url(s),
            #[cfg(feature = "remote-keys")]
            ("oidc_issuer", KeySourceValue::Text(s)) => KeySource::oidc_issuer(s),
            #[cfg(feature = "remote-keys")]
            ("oidc_discovery", KeySourceValue::Flag) => KeySource::oidc_discovery(),
            _ => {
                return Err(Error::new(
                    ErrorKind::Config,
                    "this key source needs the `remote-keys` feature",
                )
                .in_field(field));
            }
        })
    }
}

/// The key sources a validator table sets, in the order of [`KeySource`]'s constructors.
fn key_sources(v: &ValidatorToml) -> Vec<SetSource<'_>> {
    fn text<'a>(field: &'static str, v: &'a Option<Spanned<String>>) -> Option<SetSource<'a>> {
        v.as_ref()
            .map(|s| (field, s.span(), KeySourceValue::Text(s.get_ref())))
    }
    fn path<'a>(field: &'static str, v: &'a Option<Spanned<PathBuf>>) -> Option<SetSource<'a>> {
        v.as_ref()
            .map(|s| (field, s.span(), KeySourceValue::Path(s.get_ref())))
    }
    let mut set: Vec<_> = [
        text("secret", &v.secret),
        text("secret_env", &v.secret_env),
        text("public_key_pem", &v.public_key_pem),
        path("public_key_file", &v.public_key_file),
        text("jwks", &v.jwks),
        path("jwks_file", &v.jwks_file),
        text("jwks_url", &v.jwks_url),
        text("oidc_issuer", &v.oidc_issuer),
        v.oidc_discovery
            .as_ref()
            .filter(|on| *on.get_ref())
            .map(|on| ("oidc_discovery", on.span(), KeySourceValue::Flag)),
    ]
    .into_iter()
    .flatten()
    .collect();
    // In file order, so that "set too" names the later key.
    set.sort_by_key(|(_, span, _)| span.start);
    set
}

fn preset(p: &ProviderToml) -> Preset {
    let with_base = |preset: Preset, base: &Option<String>| match base {
        Some(b) => preset.base_url(b.clone()),
        None => preset,
    };
    match p {
        ProviderToml::CloudflareAccess {
            team,
            aud,
            service_tokens,
            base_url,
            app_domain,
        } => {
            let preset = Preset::cloudflare_access(team.clone(), aud.clone())
                .service_tokens(*service_tokens);
            let preset = match app_domain {
                Some(host) => preset.app_domain(host.clone()),
                None => preset,
            };
            with_base(preset.into(), base_url)
        }
        ProviderToml::Keycloak { base_url, realm } => {
            Preset::keycloak(base_url.clone(), realm.clone())
        }
        ProviderToml::Auth0 {
            domain,
            audience,
            base_url,
        } => with_base(Preset::auth0(domain.clone(), audience.clone()), base_url),
        ProviderToml::EntraId {
            tenant,
            audience,
            base_url,
        } => with_base(Preset::entra_id(tenant.clone(), audience.clone()), base_url),
        ProviderToml::Google {
            client_id,
            base_url,
        } => with_base(Preset::google(client_id.clone()), base_url),
        ProviderToml::Cognito {
            region,
            user_pool_id,
            client_id,
            base_url,
        } => with_base(
            Preset::cognito(region.clone(), user_pool_id.clone(), client_id.clone()),
            base_url,
        ),
        ProviderToml::Oidc { issuer } => Preset::oidc(issuer.clone()),
    }
}

#[cfg(feature = "login")]
fn login(l: &file::LoginToml) -> Result<crate::login::Login, String> {
    use crate::login::{Login, LoginPaths};
    let mut paths = LoginPaths::new();
    if let Some(p) = &l.login_path {
        paths = paths.login(p.get_ref().clone());
    }
    if let Some(p) = &l.logout_path {
        paths = paths.logout(p.get_ref().clone());
    }
    if let Some(p) = &l.backchannel_logout_path {
        paths = paths.backchannel_logout(p.get_ref().clone());
    }
    match (&l.url, &l.client_id, &l.redirect_uri) {
        (Some(url), None, None) => {
            let oidc_only = [
                ("client_secret_env", l.client_secret_env.is_some()),
                ("scopes", l.scopes.is_some()),
                (
                    "post_logout_redirect_uri",
                    l.post_logout_redirect_uri.is_some(),
                ),
                (
                    "backchannel_logout_path",
                    l.backchannel_logout_path.is_some(),
                ),
            ];
            if let Some((key, _)) = oidc_only.into_iter().find(|(_, set)| *set) {
                return Err(format!(
                    "`{key}` goes with `client_id` (OIDC), not with `url`"
                ));
            }
            let mut login = Login::url(url.clone()).paths(paths);
            if let Some(p) = &l.redirect_param {
                login = login.redirect_param(p.clone());
            }
            if let Some(host) = &l.app_domain {
                login = login.app_domain(host.clone());
            }
            Ok(login.into())
        }
        (None, Some(client_id), Some(redirect_uri)) => {
            if l.redirect_param.is_some() {
                return Err("`redirect_param` goes with `url`, not with `client_id`".into());
            }
            let mut login = Login::oidc(client_id.clone(), redirect_uri.clone()).paths(paths);
            if let Some(var) = &l.client_secret_env {
                login = login.client_secret_env(var.clone());
            }
            if let Some(scopes) = &l.scopes {
                login = login.scopes(scopes.iter().cloned());
            }
            if let Some(after) = &l.post_logout_redirect_uri {
                login = login.post_logout_redirect_uri(after.clone());
            }
            if let Some(host) = &l.app_domain {
                login = login.app_domain(host.clone());
            }
            Ok(login.into())
        }
        (None, Some(_), None) => Err("an OIDC login needs `redirect_uri`".into()),
        _ => Err(
            "set either `url` (a fronting provider) or `client_id` and `redirect_uri` (OIDC)"
                .into(),
        ),
    }
}

fn token_source(s: &SourceToml) -> Result<TokenSource, String> {
    match s {
        SourceToml::Name(name) if name == "authorization" => Ok(TokenSource::authorization()),
        SourceToml::Name(other) => Err(format!(
            "unknown source {other:?}; expected \"authorization\", {{ header = \"...\" }}, {{ cookie = \"...\" }} or {{ query = \"...\" }}"
        )),
        SourceToml::Table(t) => match t {
            SourceTable {
                header: Some(h),
                scheme,
                cookie: None,
                query: None,
            } => Ok(match scheme {
                Some(scheme) => TokenSource::header_with_scheme(h.clone(), scheme.clone()),
                None => TokenSource::header(h.clone()),
            }),
            SourceTable {
                header: None,
                scheme: None,
                cookie: Some(c),
                query: None,
            } => Ok(TokenSource::cookie(c.clone())),
            SourceTable {
                header: None,
                scheme: None,
                cookie: None,
                query: Some(q),
            } => Ok(TokenSource::query(q.clone())),
            _ => Err("a source table sets exactly one of `header` (with an optional `scheme`), `cookie` or `query`".into()),
        },
    }
}

#[cfg(feature = "remote-keys")]
fn remote_options(r: &file::RemoteToml) -> RemoteKeyOptions {
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
    fn every_missing_required_key_is_an_error_at_its_table() {
        // Each of these looped forever (an empty key searched on the table's line).
        let base = "realm = \"x\"\n\n[[validator]]\nname = \"demo\"\nissuer = \"theissuer\"\naudience = \"api\"\nalgorithm = \"HS256\"\nsecret = \"thesecret-of-at-least-32-bytes!!\"\nuser = { static = 42 }\n";
        let cases = [
            ("issuer = \"theissuer\"\n", "issuer", "issuer is required"),
            (
                "audience = \"api\"\n",
                "audience",
                "an audience or an authorized_party",
            ),
            (
                "algorithm = \"HS256\"\n",
                "algorithm",
                "algorithm is required",
            ),
            (
                "secret = \"thesecret-of-at-least-32-bytes!!\"\n",
                "secret",
                "a key (secret, secret_env",
            ),
            (
                "user = { static = 42 }\n",
                "user",
                "user (static id, claim or resolver",
            ),
        ];
        for (line, key, message) in cases {
            let text = base.replace(line, "");
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || tx.send(load(&text).map(drop)));
            let err = rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("loading without `{key}` did not finish"))
                .unwrap_err();
            assert_eq!(err.field(), Some(key));
            assert_eq!(err.validator(), Some("demo"));
            let at = err.location().unwrap();
            assert_eq!(
                (at.file(), at.line(), at.column()),
                ("app.toml", 3, 1),
                "{err}"
            );
            assert!(
                err.to_string().starts_with(&format!(
                    "app.toml:3:1: validator \"demo\": key `{key}`: {message}"
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn route_paths_axum_cannot_mount_are_errors_at_their_key() {
        let err = load(&DEMO.replace("path = \"/whoami\"", "path = \"/app/*all\"")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "app.toml:26:1: key `path`: route path \"/app/*all\": write a wildcard as `{*all}`, not `*all`"
        );
        // `/app/*` is a prefix route.
        load(&DEMO.replace("path = \"/whoami\"", "path = \"/app/*\"")).unwrap();
        assert_eq!(err.kind(), &ErrorKind::Config);
        let twice = format!("{DEMO}\n[[route]]\npath = \"/whoami\"\nauth = \"jwt_other\"\n");
        let err = load(&twice).unwrap_err();
        assert_eq!(
            err.to_string(),
            "app.toml:30:1: key `path`: route path \"/whoami\" overlaps the route \"/whoami\" above"
        );
    }

    #[test]
    fn unknown_keys_name_line_and_column() {
        let text = DEMO.replace("leeway_secs = 0", "leeway = 0");
        let err = load(&text).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Config);
        let msg = err.to_string();
        assert_eq!(
            msg,
            "app.toml:8:1: validator \"demo\": unknown key `leeway`; did you mean `leeway_secs`?"
        );
        assert_eq!(err.validator(), Some("demo"));
    }

    #[test]
    fn toml_errors_name_the_validator_and_key_and_suggest_near_misses() {
        let cases = [
            (
                DEMO.replace("audience = [", "audiance = ["),
                "app.toml:5:1: validator \"demo\": unknown key `audiance`; did you mean `audience`?",
                None,
            ),
            (
                DEMO.replace("leeway_secs = 0", "leeway_secs = \"0\""),
                "app.toml:8:15: validator \"demo\": key `leeway_secs`: invalid type: string \"0\", expected u64",
                Some("leeway_secs"),
            ),
            (
                DEMO.replace(
                    "issuer = \"theissuer\"\naudience = \"auth",
                    "provider = { cloudflare = { team = \"t\", aud = \"a\" } }\naudience = \"auth",
                ),
                "app.toml:16:14: validator \"other\": key `provider`: unknown key `cloudflare`; did you mean `cloudflare_access`?",
                Some("provider"),
            ),
            (
                DEMO.replace("user = { claim", "user = { clam"),
                "app.toml:20:10: validator \"other\": key `user`: unknown key `clam`; did you mean `claim`?",
                Some("user"),
            ),
            (
                DEMO.replace("name = \"demo_auth\"", "name = 5"),
                "app.toml:12:19: validator \"demo\": key `cookie.name`: invalid type: integer `5`, expected a string",
                Some("cookie.name"),
            ),
        ];
        for (text, want, field) in cases {
            let err = load(&text).unwrap_err();
            assert_eq!(err.to_string(), want);
            assert_eq!(err.kind(), &ErrorKind::Config);
            assert_eq!(err.field(), field);
        }
        let err = load(&DEMO.replace("auth = \"jwt_demo\"", "auth = \"jwt_dmeo\"")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "app.toml:27:1: key `auth`: auth mode jwt_dmeo: no validator named \"dmeo\"; did you mean `jwt_demo`?"
        );
        assert_eq!(err.kind(), &ErrorKind::UnknownValidator);
    }

    #[test]
    fn semantic_errors_name_file_line_column_and_key_and_keep_their_kind() {
        let err = load(&DEMO.replace(
            "thesecret-of-at-least-32-bytes!!\"\nleeway",
            "short\"\nleeway",
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "app.toml:7:1: validator \"demo\": key `secret`: the HS256 secret must be at least 32 bytes long, it has 5"
        );
        assert_eq!(err.kind(), &ErrorKind::WeakSecret);
        let at = err.location().unwrap();
        assert_eq!((at.file(), at.line(), at.column()), ("app.toml", 7, 1));
        let err = load(&DEMO.replace(
            "algorithm = \"HS256\"\nsecret = \"thesecret-of-at-least-32-bytes!!\"\nleeway",
            "algorithm = \"none\"\nsecret = \"x\"\nleeway",
        ))
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("app.toml:6:1: validator \"demo\": key `algorithm`:"),
            "{err}"
        );
        assert_eq!(err.kind(), &ErrorKind::InvalidAlgorithm);
        let err = load(&DEMO.replace(
            "user = { static = 42 }",
            "user = { static = 42, claim = \"sub\" }",
        ))
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("app.toml:9:1: validator \"demo\": key `user`: set exactly one"),
            "{err}"
        );
        let err = load(&DEMO.replace("name = \"other\"", "name = \"other thing\"")).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "app.toml:15:1: validator \"other thing\": key `name`: validator name \"other thing\""
            ),
            "{err}"
        );
        assert_eq!(err.kind(), &ErrorKind::InvalidName);
        let err = load(&DEMO.replace("auth = \"jwt_demo\"", "auth = \"jwt_nope\"")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("app.toml:27:1: key `auth`: auth mode jwt_nope: no validator named"),
            "{err}"
        );
        assert_eq!(err.kind(), &ErrorKind::UnknownValidator);
        let err = load(&DEMO.replace(
            "secret = \"thesecret-of-at-least-32-bytes!!\"\nuser = { claim",
            "secret = \"thesecret-of-at-least-32-bytes!!\"\nnext = \"demo\"\nuser = { claim",
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "app.toml:20:1: validator \"other\": key `next`: Validators mustn't make a closed chain: other -> demo -> other."
        );
        let err = load(&DEMO.replace(
            "secret = \"thesecret-of-at-least-32-bytes!!\"\nleeway",
            "secret = \"thesecret-of-at-least-32-bytes!!\"\njwks_url = \"https://x\"\nleeway",
        ))
        .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "app.toml:8:1: validator \"demo\": key `jwks_url`: only one key source"
            ),
            "{err}"
        );
        let err = load(&DEMO.replace("next = \"other\"", "next = \"othre\"")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "app.toml:11:1: validator \"demo\": key `next`: no validator named \"othre\"; did you mean \"other\"?"
        );
        let err = load(&DEMO.replace("next = \"other\"", "next = \"nope\"")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "app.toml:11:1: validator \"demo\": key `next`: no validator named \"nope\""
        );
        let err = load(&DEMO.replace("leeway_secs = 0", "leeway_secs = 3600")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("app.toml:8:1: validator \"demo\": key `leeway_secs`:"),
            "{err}"
        );
        assert!(
            load(&DEMO.replace(
                "leeway_secs = 0",
                "leeway_secs = 3600\nmax_leeway_secs = 3600"
            ))
            .is_ok()
        );
        let err = load(&DEMO.replace("realm = \"jwtgate\"", "realm = \"a\\\"b\"")).unwrap_err();
        assert!(
            err.to_string().starts_with("app.toml:1:1: key `realm`:"),
            "{err}"
        );
    }

    #[test]
    fn several_issuers_load_with_a_cache_per_issuer_and_mistakes_are_errors_at_their_key() {
        let text = r#"[[validator]]
name = "tenants"
issuers = ["https://sso.example/realms/main", "https://sso.example/realms/{tenant}"]
audience = "api"
algorithm = "RS256"
oidc_discovery = true
user = { claim = "sub" }
"#;
        let registry = Config::from_toml_str(text, "app.toml", None)
            .unwrap()
            .registry()
            .unwrap();
        let v = &registry.engine().validators[0];
        assert_eq!(v.rules.issuers, ["https://sso.example/realms/main"]);
        assert_eq!(v.rules.issuer_patterns.len(), 1);
        // The exact issuer's cache exists before any token (prefetch fetches it).
        let sources: Vec<String> = registry
            .key_caches()
            .into_iter()
            .map(|s| s.source)
            .collect();
        assert_eq!(sources, ["https://sso.example/realms/main"]);
        let err = |text: &str| {
            Config::from_toml_str(text, "app.toml", None)
                .and_then(|c| c.registry())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&text.replace("audience = \"api\"", "issuer = \"x\"\naudience = \"api\"")),
            "app.toml:3:1: validator \"tenants\": key `issuers`: set issuer or issuers, not both"
        );
        assert_eq!(
            err(&text.replace("realms/{tenant}", "{tenant}/{tenant}")),
            "app.toml:3:1: validator \"tenants\": key `issuers`: issuer \"https://sso.example/{tenant}/{tenant}\" holds {tenant} more than once"
        );
    }

    #[test]
    fn sources_providers_and_types_load() {
        let text = r#"
[[validator]]
name = "cf"
provider = { cloudflare_access = { team = "acme", aud = "4714c1358e65fe4b", service_tokens = true } }

[[validator]]
name = "kc"
provider = { keycloak = { base_url = "https://sso.example.com", realm = "main" } }
authorized_party = "web"
typ = ["at+jwt"]
max_token_bytes = 32768
sources = ["authorization", { header = "X-Token", scheme = "Token" }, { cookie = "kc_token" }, { query = "access_token" }]

[[validator]]
name = "plain"
issuer = "i"
audience = "a"
algorithm = "Ed25519"
public_key_pem = """-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=
-----END PUBLIC KEY-----"""
user = { claim = "sub" }
"#;
        let registry = load(text).unwrap();
        assert_eq!(
            registry.validator_names().collect::<Vec<_>>(),
            ["cf", "kc", "plain"]
        );
        let err = load(&text.replace("realm = \"main\" }", "realm = \"../x\" }")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("app.toml:8:1: validator \"kc\": key `provider`: realm \"../x\""),
            "{err}"
        );
        let err = load(&text.replace("{ query = \"access_token\" }", "\"bearer\"")).unwrap_err();
        assert!(
            err.to_string()
                .contains("key `sources`: unknown source \"bearer\""),
            "{err}"
        );
        let err = load(&text.replace(
            "{ cookie = \"kc_token\" }",
            "{ cookie = \"kc_token\", header = \"x\" }",
        ))
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("key `sources`: a source table sets exactly one"),
            "{err}"
        );
        let err = load(&text.replace("team = \"acme\"", "tenant = \"acme\"")).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Config);
        assert!(err.to_string().starts_with("app.toml:4:"), "{err}");
        let err = load(&text.replace("authorized_party = \"web\"\n", "")).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "app.toml:8:1: validator \"kc\": key `audience`: an audience or an authorized_party"
            ),
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
        let opts = remote_options(v.get_ref().remote.as_ref().unwrap().get_ref());
        assert_eq!(opts.timeout, Duration::from_millis(1500));
        assert_eq!(opts.ttl, Duration::from_secs(120));
        assert_eq!(opts.max_stale, Duration::from_secs(3600));
        assert_eq!(opts.connect_timeout, Duration::from_secs(2));
        assert_eq!(config.registry().unwrap().key_caches().len(), 1);
        let err = load(&remote.replace("ttl_secs = 120", "ttl = 120")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "app.toml:8:31: validator \"demo\": key `remote`: unknown key `ttl`; did you mean `ttl_secs`?"
        );
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
            "app.toml:12:84: validator \"demo\": key `cookie.secret`: cookie secret: the HS256 secret must be at least 32 bytes long, it has 5"
        );
        assert_eq!(err.kind(), &ErrorKind::WeakSecret);
        let err =
            load(&DEMO.replace("audience = [\"auth_jwt_test_api\"]", "audience = []")).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "app.toml:5:1: validator \"demo\": key `audience`: an audience or an authorized_party"
            ),
            "{err}"
        );
        let err = load(
            &DEMO
                .replace("name = \"demo_auth\"", "name = \"session_id\"")
                // Unprefixed, so that it is the session cookie's very name.
                .replace("secure = true,", "secure = true, host_prefix = false,")
                .replace(
                    "realm = \"jwtgate\"",
                    "realm = \"jwtgate\"\nsession_cookie = \"session_id\"",
                ),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("app.toml:13:12: validator \"demo\": key `cookie.name`:"),
            "{err}"
        );
    }

    #[test]
    fn session_timeouts_are_read_and_checked_at_their_keys() {
        let with =
            |table: &str| DEMO.replace("cookie = { name", &format!("{table}\ncookie = {{ name"));
        let registry = load(&with(
            "session = { idle_timeout_secs = 600, absolute_timeout_secs = 7200, refresh = false, max_refresh_margin_secs = 30 }",
        ))
        .unwrap();
        let mode = registry.engine().validators[0].cookie.as_ref().unwrap();
        assert_eq!(
            mode.sessions,
            crate::session::SessionOptions::new()
                .idle_timeout(Duration::from_secs(600))
                .absolute_timeout(Duration::from_secs(7200))
                .refresh(false)
                .max_refresh_margin(Duration::from_secs(30))
        );
        let err = load(&with(
            "session = { idle_timeout_secs = 600, absolute_timeout_secs = 60 }",
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "app.toml:12:38: validator \"demo\": key `session.absolute_timeout_secs`: absolute_timeout must be at least idle_timeout"
        );
        let err = load(&with("session = { idle = 1 }")).unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown key `idle`; did you mean `idle_timeout_secs`?"),
            "{err}"
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

    const DIRECTORY_VALIDATOR: &str = r#"
[[validator]]
name = "app"
issuer = "i"
audience = "a"
algorithm = "HS256"
secret = "thesecret-of-at-least-32-bytes!!"
user = { directory = "subject" }
register = true
service_users = true
profile_url = "/profile"
"#;

    #[test]
    fn a_database_directory_is_the_adapters_and_needs_one() {
        let text = format!(
            "{DIRECTORY_VALIDATOR}\n[directory]\nurl = \"sqlite://x.db\"\ntimeout_secs = 2\n"
        );
        let config = Config::from_toml_str(&text, "app.toml", None).unwrap();
        assert!(config.has_directory_url());
        // Without a user directory, the validator cannot be built: the error points at `user`.
        let err = config.registry().unwrap_err();
        assert_eq!(err.field(), Some("user"));
        assert_eq!(err.location().map(Location::line), Some(8), "{err}");
    }

    #[test]
    fn the_store_table_sets_options_and_its_adapter_keys_need_a_url() {
        const V: &str = "[[validator]]\nname = \"v\"\nissuer = \"i\"\naudience = \"a\"\nalgorithm = \"HS256\"\nsecret = \"thesecret-of-at-least-32-bytes!!\"\nuser = { static = 1 }\n";
        let config = Config::from_toml_str(
            &format!("{V}[store]\nmax_staleness_secs = 9\nfail_open = true\nretention_secs = 60\nmax_entries = 10\n"),
            "app.toml",
            None,
        )
        .unwrap();
        assert!(!config.has_store_url());
        assert_eq!(
            config.store_options(),
            StoreOptions::new()
                .max_staleness(Duration::from_secs(9))
                .fail_open(true)
                .retention(Duration::from_secs(60))
                .max_entries(10)
        );
        let registry = config.registry().unwrap();
        assert_eq!(registry.revocation_state().entries, 0);
        let err = |text: String| {
            Config::from_toml_str(&text, "app.toml", None)
                .and_then(|c| c.registry())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(format!("{V}[store]\nprefix = \"app:\"\n")),
            "app.toml:9:1: key `store.prefix`: this [store] key needs `url` (a shared store such as Redis)"
        );
        assert_eq!(
            err(format!("{V}[store]\nmax_staleness_secs = 0\n")),
            "app.toml:9:1: key `store.max_staleness_secs`: must be at least 1"
        );
        let wrong_type = err(format!("{V}[store]\nfail_open = \"yes\"\n"));
        assert!(wrong_type.starts_with("app.toml:9:"), "{wrong_type}");
        assert!(wrong_type.contains("fail_open"), "{wrong_type}");
        // A URL is an adapter's: without one given to the builder, the registry says which.
        assert_eq!(
            err(format!("{V}[store]\nurl = \"redis://127.0.0.1/\"\n")),
            "app.toml:9:1: key `store.url`: [store] url needs a store adapter: connect one \
             (jwtgate_redis::RedisStore) and pass it with Config::registry_with(|b| b.store(store))"
        );
    }

    #[test]
    fn directory_errors_point_at_their_keys() {
        let no_url = format!("{DIRECTORY_VALIDATOR}\n[directory]\ncache_ttl_secs = 5\n");
        let err = Config::from_toml_str(&no_url, "app.toml", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "app.toml:14:1: key `directory.cache_ttl_secs`: this [directory] key needs `url` (a database directory)"
        );
        let both = format!(
            "{DIRECTORY_VALIDATOR}\n[directory]\nurl = \"sqlite://x.db\"\npartners = [{{ id = 1, email = \"a@b\" }}]\n"
        );
        let err = Config::from_toml_str(&both, "app.toml", None).unwrap_err();
        assert_eq!(err.field(), Some("directory.url"));
        assert!(
            err.message()
                .contains("`partners` is for a directory in memory"),
            "{err}"
        );
        assert_eq!(err.location().map(Location::line), Some(14), "{err}");
        let unknown = DIRECTORY_VALIDATOR.replace("\"subject\"", "\"phone\"");
        let err = Config::from_toml_str(&unknown, "app.toml", None)
            .unwrap()
            .registry()
            .unwrap_err();
        assert!(
            err.message().contains("unknown directory match \"phone\""),
            "{err}"
        );
        let stray = DIRECTORY_VALIDATOR.replace(
            "user = { directory = \"subject\" }",
            "user = { static = 1 }",
        );
        let err = Config::from_toml_str(&stray, "app.toml", None)
            .unwrap()
            .registry()
            .unwrap_err();
        assert_eq!(err.field(), Some("register"));
        assert_eq!(err.location().map(Location::line), Some(9), "{err}");
    }
}
