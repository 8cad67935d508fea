//! The config file's shape: private serde types with `deny_unknown_fields` (a typo never
//! silently turns a check off) and a span on every key that can fail, so an error points at the
//! key's own line and column.

use std::ops::Range;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileToml {
    pub(super) realm: Option<Spanned<String>>,
    pub(super) session_cookie: Option<Spanned<String>>,
    /// How many verified tokens are remembered (0 turns the cache off).
    pub(super) token_cache: Option<u64>,
    #[serde(default)]
    pub(super) validator: Vec<Spanned<ValidatorToml>>,
    pub(super) directory: Option<DirectoryToml>,
    pub(super) store: Option<StoreToml>,
    #[serde(default)]
    pub(super) route: Vec<RouteToml>,
    pub(super) forward_auth: Option<super::forward_auth::ForwardAuthToml>,
    #[cfg_attr(not(feature = "remote-keys"), allow(dead_code))]
    pub(super) http: Option<super::http::HttpToml>,
}

/// `[store]`: what instances share (revocations, the back-channel replay set). The options
/// are jwtgate's; `url` and every other key belong to a store adapter (`jwtgate-redis` reads
/// them through [`Config::section`]). No `url`: a store in this process's memory.
///
/// [`Config::section`]: super::Config::section
#[derive(Debug, Deserialize)]
pub(super) struct StoreToml {
    pub(super) max_staleness_secs: Option<Spanned<u64>>,
    pub(super) fail_open: Option<bool>,
    pub(super) retention_secs: Option<Spanned<u64>>,
    pub(super) max_entries: Option<Spanned<u64>>,
    #[serde(flatten)]
    pub(super) adapter: toml::Table,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ValidatorToml {
    pub(super) name: Spanned<String>,
    pub(super) provider: Option<Spanned<ProviderToml>>,
    pub(super) issuer: Option<Spanned<String>>,
    pub(super) issuers: Option<Spanned<Vec<String>>>,
    pub(super) audience: Option<Spanned<OneOrMany>>,
    pub(super) authorized_party: Option<Spanned<String>>,
    pub(super) algorithm: Option<Spanned<String>>,
    pub(super) secret: Option<Spanned<String>>,
    pub(super) secret_env: Option<Spanned<String>>,
    pub(super) public_key_pem: Option<Spanned<String>>,
    pub(super) public_key_file: Option<Spanned<PathBuf>>,
    pub(super) jwks: Option<Spanned<String>>,
    pub(super) jwks_file: Option<Spanned<PathBuf>>,
    pub(super) jwks_url: Option<Spanned<String>>,
    pub(super) oidc_issuer: Option<Spanned<String>>,
    pub(super) oidc_discovery: Option<Spanned<bool>>,
    pub(super) sources: Option<Spanned<Vec<SourceToml>>>,
    pub(super) typ: Option<Spanned<OneOrMany>>,
    pub(super) max_token_bytes: Option<Spanned<usize>>,
    pub(super) leeway_secs: Option<Spanned<u64>>,
    pub(super) max_leeway_secs: Option<Spanned<u64>>,
    pub(super) user: Option<Spanned<UserToml>>,
    pub(super) partner: Option<Spanned<PartnerToml>>,
    pub(super) register: Option<Spanned<bool>>,
    pub(super) service_users: Option<Spanned<bool>>,
    pub(super) profile_url: Option<Spanned<String>>,
    pub(super) next: Option<Spanned<String>>,
    pub(super) cookie: Option<Spanned<CookieToml>>,
    pub(super) session: Option<Spanned<SessionToml>>,
    pub(super) remote: Option<Spanned<RemoteToml>>,
    pub(super) login: Option<Spanned<LoginToml>>,
    pub(super) logout: Option<Spanned<LogoutToml>>,
}

/// `[validator.login]`: a fronting provider's `url`, or an OIDC `client_id`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "login"), allow(dead_code))]
pub(super) struct LoginToml {
    pub(super) url: Option<String>,
    pub(super) redirect_param: Option<String>,
    pub(super) app_domain: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) client_secret_env: Option<String>,
    pub(super) redirect_uri: Option<String>,
    pub(super) scopes: Option<Vec<String>>,
    pub(super) post_logout_redirect_uri: Option<String>,
    /// The login's own routes (defaults `/auth/login`, `/auth/logout`,
    /// `/auth/backchannel-logout`).
    pub(super) login_path: Option<Spanned<String>>,
    pub(super) logout_path: Option<Spanned<String>>,
    pub(super) backchannel_logout_path: Option<Spanned<String>>,
}

/// `[validator.logout]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "login"), allow(dead_code))]
pub(super) struct LogoutToml {
    pub(super) url: String,
    pub(super) redirect_param: Option<String>,
}

/// `provider = { cloudflare_access = { team = "...", aud = "..." } }` and so on, with the
/// preset constructors' argument names.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum ProviderToml {
    CloudflareAccess {
        team: String,
        aud: String,
        #[serde(default)]
        service_tokens: bool,
        base_url: Option<String>,
        app_domain: Option<String>,
    },
    Keycloak {
        base_url: String,
        realm: String,
    },
    Auth0 {
        domain: String,
        audience: String,
        base_url: Option<String>,
    },
    EntraId {
        tenant: String,
        audience: String,
        base_url: Option<String>,
    },
    Google {
        client_id: String,
        base_url: Option<String>,
    },
    Cognito {
        region: String,
        user_pool_id: String,
        client_id: String,
        base_url: Option<String>,
    },
    Oidc {
        issuer: String,
    },
}

/// `"authorization"`, `{ header = "...", scheme = "..." }`, `{ cookie = "..." }` or
/// `{ query = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum SourceToml {
    Name(String),
    Table(SourceTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SourceTable {
    pub(super) header: Option<String>,
    pub(super) scheme: Option<String>,
    pub(super) cookie: Option<String>,
    pub(super) query: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(super) fn to_vec(&self) -> Vec<String> {
        match self {
            Self::One(one) => vec![one.clone()],
            Self::Many(many) => many.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UserToml {
    #[serde(rename = "static")]
    pub(super) static_id: Option<toml::Value>,
    pub(super) claim: Option<String>,
    /// `"email"` or `"subject"`: users from the `[directory]`.
    pub(super) directory: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PartnerToml {
    pub(super) by: String,
    #[serde(default)]
    pub(super) required: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CookieToml {
    pub(super) name: Spanned<String>,
    pub(super) path: Option<Spanned<String>>,
    pub(super) max_age_secs: Option<Spanned<u64>>,
    pub(super) secure: Option<bool>,
    /// The `__Host-` name prefix (default: on when `secure` and `path = "/"`).
    pub(super) host_prefix: Option<Spanned<bool>>,
    /// Whether a bearer token starts a cookie session (default true, as auth_jwt).
    pub(super) from_bearer: Option<bool>,
    pub(super) secret: Option<Spanned<String>>,
    pub(super) secret_env: Option<Spanned<String>>,
}

/// `[validator.session]`: how long sign-ins' sessions last (see `SessionOptions`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SessionToml {
    pub(super) idle_timeout_secs: Option<Spanned<u64>>,
    pub(super) absolute_timeout_secs: Option<Spanned<u64>>,
    pub(super) refresh: Option<bool>,
    pub(super) max_refresh_margin_secs: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "remote-keys"), allow(dead_code))]
pub(super) struct RemoteToml {
    pub(super) connect_timeout_ms: Option<u64>,
    pub(super) timeout_ms: Option<u64>,
    pub(super) max_body_bytes: Option<usize>,
    pub(super) ttl_secs: Option<u64>,
    pub(super) min_ttl_secs: Option<u64>,
    pub(super) max_ttl_secs: Option<u64>,
    pub(super) min_refetch_interval_secs: Option<u64>,
    pub(super) max_stale_secs: Option<u64>,
    pub(super) backoff_base_ms: Option<u64>,
    pub(super) backoff_max_ms: Option<u64>,
}

/// `[directory]`: the in-memory `partners`; every other key belongs to a database adapter
/// (`jwtgate-sqlx` reads `url`, the pool and the tables through [`Config::section`], with its
/// own checks), and needs `url`.
///
/// [`Config::section`]: super::Config::section
#[derive(Debug, Deserialize)]
pub(super) struct DirectoryToml {
    #[serde(default)]
    pub(super) partners: Vec<PartnerEntry>,
    #[serde(flatten)]
    pub(super) adapter: toml::Table,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PartnerEntry {
    pub(super) id: u64,
    pub(super) email: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RouteToml {
    pub(super) path: Spanned<String>,
    pub(super) auth: Spanned<String>,
    #[serde(default)]
    pub(super) scopes: Vec<String>,
    #[serde(default)]
    pub(super) any_scopes: Vec<String>,
    #[serde(default)]
    pub(super) roles: Vec<RoleToml>,
    #[serde(default)]
    pub(super) any_roles: Vec<RoleToml>,
}

/// A role in `roles`/`any_roles`: a string is a named role (realm roles, the `roles` claim),
/// `{ client = "...", role = "..." }` a client's.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RoleToml {
    Named(String),
    Client { client: String, role: String },
}

impl From<&RoleToml> for crate::authz::Role {
    fn from(role: &RoleToml) -> Self {
        match role {
            RoleToml::Named(name) => Self::named(name.as_str()),
            RoleToml::Client { client, role } => Self::client(client.as_str(), role.as_str()),
        }
    }
}

fn span<T>(v: &Option<Spanned<T>>) -> Option<Range<usize>> {
    v.as_ref().map(Spanned::span)
}

impl ValidatorToml {
    /// The span of the value of `field` (`cookie.secret` names a key inside `cookie`), with
    /// the key's own name for finding its column.
    pub(super) fn span_of(&self, field: &str) -> Option<(Range<usize>, &'static str)> {
        let (top, inner) = field.split_once('.').unwrap_or((field, ""));
        if top == "cookie"
            && let Some(c) = &self.cookie
        {
            let c = c.get_ref();
            let found = match inner {
                "name" => Some((c.name.span(), "name")),
                "path" => span(&c.path).map(|s| (s, "path")),
                "max_age_secs" => span(&c.max_age_secs).map(|s| (s, "max_age_secs")),
                "secret" => span(&c.secret).map(|s| (s, "secret")),
                "secret_env" => span(&c.secret_env).map(|s| (s, "secret_env")),
                "host_prefix" => span(&c.host_prefix).map(|s| (s, "host_prefix")),
                _ => None,
            };
            if found.is_some() {
                return found;
            }
        }
        if top == "session"
            && let Some(t) = &self.session
        {
            let t = t.get_ref();
            let found = match inner {
                "idle_timeout_secs" => span(&t.idle_timeout_secs).map(|s| (s, "idle_timeout_secs")),
                "absolute_timeout_secs" => {
                    span(&t.absolute_timeout_secs).map(|s| (s, "absolute_timeout_secs"))
                }
                _ => None,
            };
            if found.is_some() {
                return found;
            }
        }
        if top == "login"
            && let Some(l) = &self.login
        {
            let l = l.get_ref();
            let found = match inner {
                "login_path" => span(&l.login_path).map(|s| (s, "login_path")),
                "logout_path" => span(&l.logout_path).map(|s| (s, "logout_path")),
                "backchannel_logout_path" => {
                    span(&l.backchannel_logout_path).map(|s| (s, "backchannel_logout_path"))
                }
                _ => None,
            };
            if found.is_some() {
                return found;
            }
        }
        let found = match top {
            "name" => Some((self.name.span(), "name")),
            "provider" => span(&self.provider).map(|s| (s, "provider")),
            "issuer" => span(&self.issuer)
                .map(|s| (s, "issuer"))
                .or_else(|| span(&self.issuers).map(|s| (s, "issuers"))),
            "issuers" => span(&self.issuers).map(|s| (s, "issuers")),
            "audience" => span(&self.audience).map(|s| (s, "audience")),
            "authorized_party" => span(&self.authorized_party).map(|s| (s, "authorized_party")),
            "algorithm" => span(&self.algorithm).map(|s| (s, "algorithm")),
            "secret" => span(&self.secret).map(|s| (s, "secret")),
            "secret_env" => span(&self.secret_env).map(|s| (s, "secret_env")),
            "public_key_pem" => span(&self.public_key_pem).map(|s| (s, "public_key_pem")),
            "public_key_file" => span(&self.public_key_file).map(|s| (s, "public_key_file")),
            "jwks" => span(&self.jwks).map(|s| (s, "jwks")),
            "jwks_file" => span(&self.jwks_file).map(|s| (s, "jwks_file")),
            "jwks_url" => span(&self.jwks_url).map(|s| (s, "jwks_url")),
            "oidc_issuer" => span(&self.oidc_issuer).map(|s| (s, "oidc_issuer")),
            "oidc_discovery" => span(&self.oidc_discovery).map(|s| (s, "oidc_discovery")),
            "sources" => span(&self.sources).map(|s| (s, "sources")),
            "typ" => span(&self.typ).map(|s| (s, "typ")),
            "max_token_bytes" => span(&self.max_token_bytes).map(|s| (s, "max_token_bytes")),
            "leeway_secs" => span(&self.leeway_secs).map(|s| (s, "leeway_secs")),
            "max_leeway_secs" => span(&self.max_leeway_secs).map(|s| (s, "max_leeway_secs")),
            "user" => span(&self.user).map(|s| (s, "user")),
            "partner" => span(&self.partner).map(|s| (s, "partner")),
            "register" => span(&self.register).map(|s| (s, "register")),
            "service_users" => span(&self.service_users).map(|s| (s, "service_users")),
            "profile_url" => span(&self.profile_url).map(|s| (s, "profile_url")),
            "next" => span(&self.next).map(|s| (s, "next")),
            "cookie" => span(&self.cookie).map(|s| (s, "cookie")),
            "session" => span(&self.session).map(|s| (s, "session")),
            "remote" => span(&self.remote).map(|s| (s, "remote")),
            "login" => span(&self.login).map(|s| (s, "login")),
            "logout" => span(&self.logout).map(|s| (s, "logout")),
            _ => None,
        };
        // A key the preset filled has no span of its own: point at the preset.
        found.or_else(|| span(&self.provider).map(|s| (s, "provider")))
    }
}

/// The line (from 1) of byte `offset`.
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The column (from 1, in characters) of byte `offset`.
pub(super) fn column_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    text.get(start..offset).map_or(1, |s| s.chars().count() + 1)
}

/// Where the key `key` whose value starts at `value_start` is written: `key = value` on the
/// same line (also inside an inline table). Falls back to the value itself.
pub(super) fn key_offset(text: &str, value_start: usize, key: &str) -> usize {
    let value_start = value_start.min(text.len());
    if key.is_empty() {
        return value_start;
    }
    let line_start = text[..value_start].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..value_start];
    let mut search = before.len();
    while let Some(at) = before[..search].rfind(key) {
        let rest = before[at + key.len()..].trim();
        let boundary = before[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        if rest == "=" && boundary {
            return line_start + at;
        }
        search = at;
    }
    value_start
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_before_their_values() {
        let text = "a = 1\ncookie = { name = \"x\", secret = \"short\" }\n";
        let value = text.find("\"short\"").unwrap();
        let at = key_offset(text, value, "secret");
        assert_eq!((line_of(text, at), column_of(text, at)), (2, 24));
        let value = text.find("{ name").unwrap();
        assert_eq!(column_of(text, key_offset(text, value, "cookie")), 1);
        // Not a key on this line: the value's own place.
        assert_eq!(key_offset(text, value, "nope"), value);
        // No key at all (a table's own place): the value's place, at once (this looped).
        assert_eq!(key_offset(text, value, ""), value);
    }
}
