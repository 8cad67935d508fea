//! One top-level table of a config file, picked out of the whole document for an adapter's
//! own `Deserialize` (so its values keep the spans `toml` gives them); the other tables are
//! skipped unread.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, Visitor};

/// The visitor that keeps the table `name` as `T`.
pub(super) struct Pick<'n, T> {
    name: &'n str,
    out: PhantomData<T>,
}

impl<'n, T> Pick<'n, T> {
    pub(super) fn new(name: &'n str) -> Self {
        Self {
            name,
            out: PhantomData,
        }
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for Pick<'_, T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML document")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
        let mut out = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == self.name {
                out = Some(map.next_value::<T>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}
