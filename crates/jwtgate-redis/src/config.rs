//! `[store]` from a jwtgate config file: jwtgate reads its own options (staleness, fail-open,
//! retention, cap) and hands the table over ([`Config::section`]); `url` and `prefix` are this
//! crate's, their errors located by [`Config::error_at`].

use jwtgate::config::Config;
use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;

use crate::settings::RedisSettings;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreToml {
    url: Option<Spanned<String>>,
    prefix: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
    // jwtgate's own keys.
    #[serde(default, rename = "max_staleness_secs")]
    _max_staleness_secs: Option<IgnoredAny>,
    #[serde(default, rename = "fail_open")]
    _fail_open: Option<IgnoredAny>,
    #[serde(default, rename = "retention_secs")]
    _retention_secs: Option<IgnoredAny>,
    #[serde(default, rename = "max_entries")]
    _max_entries: Option<IgnoredAny>,
}

impl RedisSettings {
    /// The settings of the config file's `[store]` table; `Ok(None)` without `url` (a store
    /// in memory). Every error names the file, line and key.
    pub fn from_config(config: &Config) -> Result<Option<Self>, jwtgate::Error> {
        let Some(table) = config.section::<StoreToml>("store")? else {
            return Ok(None);
        };
        let Some(url) = table.url else {
            return Ok(None);
        };
        let mut settings = Self::new(url.get_ref().clone());
        if let Some(prefix) = &table.prefix {
            settings = settings.prefix(prefix.get_ref().clone());
        }
        if let Some(ca) = &table.ca_file {
            settings = settings.ca_file(config.resolve_path(ca.get_ref()));
        }
        settings.check().map_err(|e| {
            let span = match (e.field(), &table.prefix, &table.ca_file) {
                ("prefix", Some(p), _) => p.span(),
                ("ca_file", _, Some(c)) => c.span(),
                _ => url.span(),
            };
            config.error_at(span, &format!("store.{}", e.field()), e.message())
        })?;
        Ok(Some(settings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "[[validator]]\nname = \"v\"\nissuer = \"i\"\naudience = \"a\"\nalgorithm = \"HS256\"\nsecret = \"thesecret-of-at-least-32-bytes!!\"\nuser = { static = 1 }\n";

    fn read(store: &str) -> Result<Option<RedisSettings>, String> {
        let config = Config::from_toml_str(&format!("{V}{store}"), "app.toml", None)
            .map_err(|e| e.to_string())?;
        RedisSettings::from_config(&config).map_err(|e| e.to_string())
    }

    #[test]
    fn the_store_table_reads_with_located_errors() {
        assert_eq!(read(""), Ok(None));
        assert_eq!(read("[store]\nfail_open = true\n"), Ok(None));
        assert_eq!(
            read(
                "[store]\nurl = \"redis://127.0.0.1:6379/0\"\nprefix = \"app:\"\nmax_staleness_secs = 3\n"
            ),
            Ok(Some(
                RedisSettings::new("redis://127.0.0.1:6379/0").prefix("app:")
            ))
        );
        assert_eq!(
            read("[store]\nurl = \"http://127.0.0.1\"\n"),
            Err("app.toml:9:1: key `store.url`: the URL must start with redis://, rediss:// (TLS) or redis+sentinel://".into())
        );
        assert_eq!(
            read("[store]\nurl = \"redis://h\"\nprefix = \"a b\"\n"),
            Err("app.toml:10:1: key `store.prefix`: the prefix must be at most 64 visible ASCII characters".into())
        );
        assert_eq!(
            read("[store]\nurl = \"rediss://h\"\nca_file = \"certs/ca.pem\"\n"),
            Ok(Some(
                RedisSettings::new("rediss://h").ca_file("certs/ca.pem")
            ))
        );
        assert_eq!(
            read("[store]\nurl = \"redis://h\"\nca_file = \"ca.pem\"\n"),
            Err(
                "app.toml:10:1: key `store.ca_file`: a CA file is for a rediss:// (TLS) URL".into()
            )
        );
        let unknown = read("[store]\nurl = \"redis://h\"\npool = 3\n").unwrap_err();
        assert!(
            unknown.starts_with("app.toml:") && unknown.contains("pool"),
            "{unknown}"
        );
    }
}
