//! Partners held in memory, from code or from the config file's `[directory] partners`.

use std::collections::HashMap;

use super::{BoxFuture, LookupError, PartnerDirectory};
use crate::identity::PartnerId;

/// A directory held in memory, from code or from the config file's `[directory]`.
///
/// Emails compare exactly, as Odoo's `=` search does.
#[derive(Clone, Debug, Default)]
pub struct InMemoryDirectory {
    by_email: HashMap<String, Vec<PartnerId>>,
}

impl InMemoryDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a partner.
    #[must_use]
    pub fn with_partner(mut self, id: u64, email: impl Into<String>) -> Self {
        self.insert(PartnerId(id), email);
        self
    }

    /// Adds a partner in place.
    pub fn insert(&mut self, id: PartnerId, email: impl Into<String>) {
        self.by_email.entry(email.into()).or_default().push(id);
    }
}

impl PartnerDirectory for InMemoryDirectory {
    fn partners_by_email<'a>(
        &'a self,
        email: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PartnerId>, LookupError>> {
        let found = self.by_email.get(email).cloned().unwrap_or_default();
        Box::pin(async move { Ok(found) })
    }
}
