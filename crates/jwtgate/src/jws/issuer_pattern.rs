//! Issuers named by a pattern with one `{tenant}` placeholder, for multi-tenant providers
//! (Entra ID's `https://login.microsoftonline.com/{tenant}/v2.0`, one Keycloak realm per
//! customer). A tenant is 1 to 64 letters, digits, `-` or `_`: it can never add a path
//! segment, a host or a query to the issuer (and so to the discovery URL built from it).

use super::claim_set::ClaimSet;

/// The placeholder a pattern holds once.
pub(crate) const TENANT: &str = "{tenant}";

/// The longest tenant a pattern matches.
const MAX_TENANT: usize = 64;

/// `prefix{tenant}suffix`, and the claim that must name the same tenant, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IssuerPattern {
    prefix: String,
    suffix: String,
    /// A claim the token must carry with the tenant as its value (Entra's `tid`).
    tenant_claim: Option<String>,
}

impl IssuerPattern {
    /// The pattern of `text`, which holds `{tenant}` exactly once; `None` for a plain issuer.
    pub(crate) fn parse(text: &str) -> Option<Result<Self, String>> {
        let (prefix, suffix) = text.split_once(TENANT)?;
        if suffix.contains(TENANT) {
            return Some(Err(format!(
                "issuer {text:?} holds {TENANT} more than once"
            )));
        }
        if prefix.is_empty() || suffix.contains(['{', '}']) || prefix.contains(['{', '}']) {
            return Some(Err(format!(
                "issuer {text:?}: only one {TENANT} placeholder, after the scheme and host"
            )));
        }
        Some(Ok(Self {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
            tenant_claim: None,
        }))
    }

    /// Requires the token's `claim` to name the tenant of its `iss`.
    pub(crate) fn with_tenant_claim(mut self, claim: &str) -> Self {
        self.tenant_claim = Some(claim.to_owned());
        self
    }

    /// The tenant of `iss`, when `iss` fits the pattern.
    pub(crate) fn tenant<'a>(&self, iss: &'a str) -> Option<&'a str> {
        let tenant = iss
            .strip_prefix(&*self.prefix)?
            .strip_suffix(&*self.suffix)?;
        let fits = (1..=MAX_TENANT).contains(&tenant.len())
            && tenant
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        fits.then_some(tenant)
    }

    /// Whether `iss` fits, its tenant claim included.
    pub(crate) fn accepts(&self, iss: &str, claims: &ClaimSet) -> bool {
        let Some(tenant) = self.tenant(iss) else {
            return false;
        };
        match &self.tenant_claim {
            None => true,
            Some(claim) => claims
                .get(claim)
                .and_then(super::claim_set::RawJson::as_str)
                .is_some_and(|value| value == tenant),
        }
    }

    /// The pattern as written.
    pub(crate) fn text(&self) -> String {
        format!("{}{TENANT}{}", self.prefix, self.suffix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_is_one_plain_segment() {
        let p = IssuerPattern::parse("https://login.microsoftonline.com/{tenant}/v2.0")
            .unwrap()
            .unwrap();
        assert_eq!(p.text(), "https://login.microsoftonline.com/{tenant}/v2.0");
        let tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        assert_eq!(
            p.tenant(&format!("https://login.microsoftonline.com/{tid}/v2.0")),
            Some(tid)
        );
        for no in [
            "https://login.microsoftonline.com//v2.0",
            "https://login.microsoftonline.com/a/b/v2.0",
            "https://login.microsoftonline.com/a.evil/v2.0",
            "https://login.microsoftonline.com/a?x=/v2.0",
            "https://login.microsoftonline.com/a%2F/v2.0",
            "https://login.microsoftonline.com/tenant/v2.0/",
            "http://login.microsoftonline.com/tenant/v2.0",
        ] {
            assert_eq!(p.tenant(no), None, "{no}");
        }
        let long = "a".repeat(65);
        assert_eq!(
            p.tenant(&format!("https://login.microsoftonline.com/{long}/v2.0")),
            None
        );
        let host = IssuerPattern::parse("https://{tenant}.auth.example/")
            .unwrap()
            .unwrap();
        assert_eq!(host.tenant("https://acme.auth.example/"), Some("acme"));
        assert_eq!(host.tenant("https://evil.com#.auth.example/"), None);
        assert_eq!(IssuerPattern::parse("https://plain.example"), None);
        for bad in [
            "{tenant}/x",
            "https://a/{tenant}/{tenant}",
            "https://a/{tenant}/{x}",
        ] {
            assert!(IssuerPattern::parse(bad).unwrap().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_tenant_claim_must_name_the_same_tenant() {
        let p = IssuerPattern::parse("https://login.example/{tenant}/v2.0")
            .unwrap()
            .unwrap()
            .with_tenant_claim("tid");
        let claims = |json: &str| ClaimSet::parse(json.into()).unwrap();
        let iss = "https://login.example/t1/v2.0";
        assert!(p.accepts(iss, &claims(r#"{"tid":"t1"}"#)));
        assert!(!p.accepts(iss, &claims(r#"{"tid":"t2"}"#)));
        assert!(!p.accepts(iss, &claims(r#"{}"#)));
        assert!(!p.accepts(iss, &claims(r#"{"tid":1}"#)));
    }
}
