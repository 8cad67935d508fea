//! Revoking from code: a handle the registry gives out.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Revocation, RevocationStore, StoreError, Target};
use crate::error::{Error, ErrorKind};

/// Writes revocations to the registry's store, naming validators rather than issuers: made
/// by [`Registry::revoker`](crate::Registry::revoker), cheap to clone.
#[derive(Clone)]
pub struct Revoker {
    store: Arc<dyn RevocationStore>,
    /// Each validator's issuers: an entry is written for each.
    issuers: Arc<HashMap<String, Vec<String>>>,
    retention: u64,
}

impl std::fmt::Debug for Revoker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revoker")
            .field("store", &self.store.name())
            .finish_non_exhaustive()
    }
}

impl Revoker {
    pub(crate) fn new(
        store: Arc<dyn RevocationStore>,
        issuers: HashMap<String, Vec<String>>,
        retention: u64,
    ) -> Self {
        Self {
            store,
            issuers: Arc::new(issuers),
            retention,
        }
    }

    /// Refuses `target` for every issuer of `validator`, kept for the store's retention
    /// ([`StoreOptions::retention`](super::StoreOptions::retention); from `before` for a
    /// subject). Returns once the store holds it; every instance refuses it within its
    /// staleness bound.
    pub async fn revoke(&self, validator: &str, target: Target) -> Result<(), Error> {
        let start = match target {
            Target::Subject { before, .. } => before.max(crate::jws::claims::now()),
            _ => crate::jws::claims::now(),
        };
        let until = start.saturating_add(self.retention);
        self.revoke_until(validator, target, until).await
    }

    /// As [`revoke`](Self::revoke), kept until `until` (Unix seconds): when it is known, the
    /// instant nothing it matches can still be valid (a token's `exp`).
    pub async fn revoke_until(
        &self,
        validator: &str,
        target: Target,
        until: u64,
    ) -> Result<(), Error> {
        let issuers = self.issuers.get(validator).ok_or_else(|| {
            Error::new(
                ErrorKind::UnknownValidator,
                format!("no validator named {validator:?}"),
            )
        })?;
        if target.value().is_empty() || target.value().len() > 1024 {
            return Err(Error::new(
                ErrorKind::InvalidSetting,
                "a revoked identifier must be 1 to 1024 bytes",
            ));
        }
        for issuer in issuers {
            self.write(Revocation::new(issuer.clone(), target.clone(), until))
                .await?;
        }
        Ok(())
    }

    /// Writes one entry as it is.
    pub(crate) async fn write(&self, revocation: Revocation) -> Result<(), Error> {
        match self.store.revoke(&revocation).await {
            Ok(()) => {
                tracing::info!(
                    kind = revocation.target().kind(),
                    issuer = revocation.issuer(),
                    "revocation written"
                );
                #[cfg(feature = "metrics")]
                metrics::counter!("jwtgate_revocations_written_total", "kind" => revocation.target().kind())
                    .increment(1);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(kind = revocation.target().kind(), error = %e, "revocation not written");
                #[cfg(feature = "metrics")]
                metrics::counter!("jwtgate_store_errors_total").increment(1);
                Err(Error::new(
                    ErrorKind::Store,
                    format!("revocation store ({}): {e}", self.store.name()),
                ))
            }
        }
    }

    /// Records a one-time key (the back-channel logout's replay set).
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) async fn first_use(&self, key: &str, until: u64) -> Result<bool, StoreError> {
        let result = self.store.first_use(key, until).await;
        if result.is_err() {
            #[cfg(feature = "metrics")]
            metrics::counter!("jwtgate_store_errors_total").increment(1);
        }
        result
    }

    /// How long revocations of unknown end are kept, in seconds.
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) fn retention(&self) -> u64 {
        self.retention
    }
}
