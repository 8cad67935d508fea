//! Revoking from code: a handle the registry gives out.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Revocation, RevocationStore, StoreError, Target};
use crate::error::{Error, ErrorKind};
use crate::jws::issuer_pattern::IssuerPattern;

/// A validator's exact issuers and issuer patterns.
pub(crate) type ValidatorIssuers = (Vec<String>, Vec<IssuerPattern>);

/// Writes revocations to the registry's store, naming validators rather than issuers: made
/// by [`Registry::revoker`](crate::Registry::revoker), cheap to clone.
#[derive(Clone)]
pub struct Revoker {
    store: Arc<dyn RevocationStore>,
    /// Each validator's exact issuers (an entry is written for each) and issuer patterns.
    issuers: Arc<HashMap<String, ValidatorIssuers>>,
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
        issuers: HashMap<String, ValidatorIssuers>,
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
        let until = self.until(&target);
        self.revoke_until(validator, target, until).await
    }

    /// The end of the retention of `target` (from `before` for a subject).
    fn until(&self, target: &Target) -> u64 {
        let start = match target {
            Target::Subject { before, .. } => (*before).max(crate::jws::claims::now()),
            _ => crate::jws::claims::now(),
        };
        start.saturating_add(self.retention)
    }

    /// As [`revoke`](Self::revoke), kept until `until` (Unix seconds): when it is known, the
    /// instant nothing it matches can still be valid (a token's `exp`).
    pub async fn revoke_until(
        &self,
        validator: &str,
        target: Target,
        until: u64,
    ) -> Result<(), Error> {
        let (issuers, patterns) = self.issuers_of(validator)?;
        if let Some(p) = patterns.first() {
            return Err(Error::new(
                ErrorKind::InvalidSetting,
                format!(
                    "validator {validator:?} accepts issuers by pattern ({}): name the issuer \
                     (Revoker::revoke_issuer)",
                    p.text()
                ),
            ));
        }
        check_target(&target)?;
        for issuer in issuers {
            self.write(Revocation::new(issuer.clone(), target.clone(), until))
                .await?;
        }
        Ok(())
    }

    /// As [`revoke`](Self::revoke), for one issuer of `validator` (a validator of several
    /// issuers, or of issuer patterns: one tenant's subject or session).
    pub async fn revoke_issuer(
        &self,
        validator: &str,
        issuer: &str,
        target: Target,
    ) -> Result<(), Error> {
        let until = self.until(&target);
        self.revoke_issuer_until(validator, issuer, target, until)
            .await
    }

    /// As [`revoke_issuer`](Self::revoke_issuer), kept until `until` (Unix seconds).
    pub async fn revoke_issuer_until(
        &self,
        validator: &str,
        issuer: &str,
        target: Target,
        until: u64,
    ) -> Result<(), Error> {
        let (issuers, patterns) = self.issuers_of(validator)?;
        let accepted = issuers.iter().any(|i| i == issuer)
            || patterns.iter().any(|p| p.tenant(issuer).is_some());
        if !accepted {
            return Err(Error::new(
                ErrorKind::InvalidSetting,
                format!("validator {validator:?} does not accept issuer {issuer:?}"),
            ));
        }
        check_target(&target)?;
        self.write(Revocation::new(issuer, target, until)).await
    }

    fn issuers_of(&self, validator: &str) -> Result<&ValidatorIssuers, Error> {
        self.issuers.get(validator).ok_or_else(|| {
            Error::new(
                ErrorKind::UnknownValidator,
                format!("no validator named {validator:?}"),
            )
        })
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

/// A revoked identifier is 1 to 1024 bytes.
fn check_target(target: &Target) -> Result<(), Error> {
    if target.value().is_empty() || target.value().len() > 1024 {
        return Err(Error::new(
            ErrorKind::InvalidSetting,
            "a revoked identifier must be 1 to 1024 bytes",
        ));
    }
    Ok(())
}
