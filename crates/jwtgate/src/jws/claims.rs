//! Registered-claim checks (`exp`, `nbf`, `iat`, `iss`, `aud`, `azp`, `sub`, `jti`), stricter
//! than jsonwebtoken's: every registered claim that is present must have its registered type.

use std::time::{SystemTime, UNIX_EPOCH};

use std::borrow::Cow;

use super::claim_set::{ClaimSet, RawJson, Registered};
use super::issuer_pattern::IssuerPattern;

/// 9999-12-31T23:59:59Z: a NumericDate beyond it is a forged or broken token, not a long one.
const MAX_NUMERIC_DATE: f64 = 253_402_300_799.0;

/// What one validator requires of the registered claims.
#[derive(Clone, Debug)]
pub(crate) struct ClaimRules {
    /// Accepted `iss` values (one, except for providers that emit two spellings, and
    /// validators that accept several issuers).
    pub(crate) issuers: Vec<String>,
    /// Accepted `iss` patterns (`https://login.example/{tenant}/v2.0`).
    pub(crate) issuer_patterns: Vec<IssuerPattern>,
    /// Accepted audiences; empty when only the authorized party is checked.
    pub(crate) audiences: Vec<String>,
    /// The client the token must have been issued to (see [`ClaimRules::authorized_party`]).
    pub(crate) authorized_party: Option<String>,
    pub(crate) leeway: u64,
}

/// Why the claims were refused. The text is safe to send to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClaimError {
    MissingExp,
    BadExp,
    Expired,
    BadNbf,
    NotYetValid,
    BadIat,
    IssuedInFuture,
    MissingIss,
    BadIss,
    WrongIssuer,
    MissingAud,
    BadAud,
    WrongAudience,
    BadAzp,
    WrongAuthorizedParty,
    BadSub,
    BadJti,
}

impl ClaimError {
    pub(crate) const fn description(self) -> &'static str {
        match self {
            Self::MissingExp => "token has no exp claim",
            Self::BadExp => "token exp is not a number",
            Self::Expired => "token expired",
            Self::BadNbf => "token nbf is not a number",
            Self::NotYetValid => "token not yet valid",
            Self::BadIat => "token iat is not a number",
            Self::IssuedInFuture => "token issued in the future",
            Self::MissingIss => "token has no iss claim",
            Self::BadIss => "token iss is not a string",
            Self::WrongIssuer => "token issuer not accepted",
            Self::MissingAud => "token has no aud claim",
            Self::BadAud => "token aud is not a string or an array of strings",
            Self::WrongAudience => "token audience not accepted",
            Self::BadAzp => "token azp or client_id is not a string",
            Self::WrongAuthorizedParty => "token authorized party not accepted",
            Self::BadSub => "token sub is not a string",
            Self::BadJti => "token jti is not a string",
        }
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A NumericDate claim: a finite, non-negative number not beyond year 9999, or `bad`.
fn numeric_date(value: RawJson<'_>, bad: ClaimError) -> Result<f64, ClaimError> {
    match value.as_f64() {
        Some(t) if t.is_finite() && (0.0..=MAX_NUMERIC_DATE).contains(&t) => Ok(t),
        _ => Err(bad),
    }
}

impl ClaimRules {
    /// Checks the registered claims at time `now`, as PyJWT does for auth_jwt
    /// (`exp <= now - leeway` is expired), plus type checks jsonwebtoken skips.
    pub(crate) fn check(&self, claims: &ClaimSet, now: u64) -> Result<(), ClaimError> {
        self.check_time(claims, now)?;
        self.check_static(claims)
    }

    /// `exp`, `nbf` and `iat` against `now`.
    pub(crate) fn check_time(&self, claims: &ClaimSet, now: u64) -> Result<(), ClaimError> {
        self.check_times(&Times::read(claims), now)
    }

    /// [`ClaimRules::check_time`] from time claims read earlier (a remembered token).
    pub(crate) fn check_times(&self, times: &Times, now: u64) -> Result<(), ClaimError> {
        self.check_exp(times, now)?;
        self.check_nbf(times, now)?;
        self.check_iat(times, now)
    }

    fn check_exp(&self, times: &Times, now: u64) -> Result<(), ClaimError> {
        if times.exp? <= now as f64 - self.leeway as f64 {
            return Err(ClaimError::Expired);
        }
        Ok(())
    }

    fn check_nbf(&self, times: &Times, now: u64) -> Result<(), ClaimError> {
        if let Some(nbf) = times.nbf
            && nbf? > now as f64 + self.leeway as f64
        {
            return Err(ClaimError::NotYetValid);
        }
        Ok(())
    }

    fn check_iat(&self, times: &Times, now: u64) -> Result<(), ClaimError> {
        if let Some(iat) = times.iat
            && iat? > now as f64 + self.leeway as f64
        {
            return Err(ClaimError::IssuedInFuture);
        }
        Ok(())
    }

    /// Everything that does not depend on the clock: types, issuer, audience, party.
    pub(crate) fn check_static(&self, claims: &ClaimSet) -> Result<(), ClaimError> {
        check_types(claims)?;
        self.check_iss(claims)?;
        self.check_aud(claims)?;
        self.check_azp(claims)
    }

    /// Each claim's verdict on its own, in the order a request checks them (`jwtgate
    /// inspect`): what was checked, and why it failed.
    pub(crate) fn verdicts(
        &self,
        claims: &ClaimSet,
        now: u64,
    ) -> Vec<(&'static str, Result<(), ClaimError>)> {
        let times = Times::read(claims);
        let mut out = vec![
            ("sub, jti", check_types(claims)),
            ("iss", self.check_iss(claims)),
            ("aud", self.check_aud(claims)),
        ];
        if self.authorized_party.is_some() {
            out.push(("azp", self.check_azp(claims)));
        }
        out.push(("exp", self.check_exp(&times, now)));
        if times.nbf.is_some() {
            out.push(("nbf", self.check_nbf(&times, now)));
        }
        if times.iat.is_some() {
            out.push(("iat", self.check_iat(&times, now)));
        }
        out
    }

    pub(crate) fn check_iss(&self, claims: &ClaimSet) -> Result<(), ClaimError> {
        match claims.registered(Registered::Iss) {
            None => Err(ClaimError::MissingIss),
            Some(iss) if iss.is_null() => Err(ClaimError::MissingIss),
            Some(iss) => match iss.as_str() {
                Some(iss) if self.issuers.iter().any(|i| *i == iss) => Ok(()),
                Some(iss) if self.issuer_patterns.iter().any(|p| p.accepts(&iss, claims)) => Ok(()),
                Some(_) => Err(ClaimError::WrongIssuer),
                None => Err(ClaimError::BadIss),
            },
        }
    }

    fn check_aud(&self, claims: &ClaimSet) -> Result<(), ClaimError> {
        let audiences = audiences(claims)?;
        if !self.audiences.is_empty() {
            match &audiences {
                None => return Err(ClaimError::MissingAud),
                Some(auds) if auds.any(|a| self.audiences.iter().any(|x| x == a)) => {}
                Some(_) => return Err(ClaimError::WrongAudience),
            }
        }
        Ok(())
    }

    fn check_azp(&self, claims: &ClaimSet) -> Result<(), ClaimError> {
        if let Some(party) = &self.authorized_party
            && Self::authorized_party(claims, audiences(claims)?)?.as_deref()
                != Some(party.as_str())
        {
            return Err(ClaimError::WrongAuthorizedParty);
        }
        Ok(())
    }

    /// The client a token was issued to: `azp` (OpenID Connect), else `client_id` (RFC 9068
    /// access tokens, Cognito), else a single audience (OIDC Core 3.1.3.7: `azp` may be left
    /// out when the only audience is the client).
    fn authorized_party<'a>(
        claims: &'a ClaimSet,
        audiences: Option<Audiences<'a>>,
    ) -> Result<Option<Cow<'a, str>>, ClaimError> {
        for claim in [Registered::Azp, Registered::ClientId] {
            if let Some(party) = claims.registered(claim) {
                return party.as_str().map(Some).ok_or(ClaimError::BadAzp);
            }
        }
        Ok(audiences.and_then(Audiences::single))
    }
}

/// A token's `exp`, `nbf` and `iat`, each read (or refused) once: the verified-token cache
/// keeps them, so a hit compares numbers instead of reading the claims again.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Times {
    exp: Result<f64, ClaimError>,
    nbf: Option<Result<f64, ClaimError>>,
    iat: Option<Result<f64, ClaimError>>,
}

impl Times {
    pub(crate) fn read(claims: &ClaimSet) -> Self {
        let exp = match claims.registered(Registered::Exp) {
            Some(v) if !v.is_null() => numeric_date(v, ClaimError::BadExp),
            _ => Err(ClaimError::MissingExp),
        };
        Self {
            exp,
            nbf: claims
                .registered(Registered::Nbf)
                .map(|v| numeric_date(v, ClaimError::BadNbf)),
            iat: claims
                .registered(Registered::Iat)
                .map(|v| numeric_date(v, ClaimError::BadIat)),
        }
    }

    /// `exp`, when it is a valid NumericDate.
    pub(crate) fn exp(&self) -> Option<f64> {
        self.exp.ok()
    }
}

/// The `aud` claim, its members checked to be strings (read in place, no list is built).
enum Audiences<'a> {
    One(Cow<'a, str>),
    Many(RawJson<'a>),
}

impl<'a> Audiences<'a> {
    /// Whether any audience satisfies `test`.
    fn any(&self, mut test: impl FnMut(&str) -> bool) -> bool {
        match self {
            Self::One(aud) => test(aud),
            Self::Many(items) => items.find_str(test).unwrap_or(false),
        }
    }

    /// The only audience, when there is exactly one.
    fn single(self) -> Option<Cow<'a, str>> {
        match self {
            Self::One(aud) => Some(aud),
            Self::Many(items) => {
                let (mut count, mut only) = (0, None);
                items.find_str(|aud| {
                    count += 1;
                    only = Some(aud.to_owned());
                    false
                })?;
                (count == 1).then_some(only).flatten().map(Cow::Owned)
            }
        }
    }
}

/// The `aud` claim; `None` when absent.
/// `sub` and `jti`, when present, are strings.
fn check_types(claims: &ClaimSet) -> Result<(), ClaimError> {
    for (claim, bad) in [
        (Registered::Sub, ClaimError::BadSub),
        (Registered::Jti, ClaimError::BadJti),
    ] {
        if claims.registered(claim).is_some_and(|v| !v.is_str()) {
            return Err(bad);
        }
    }
    Ok(())
}

fn audiences(claims: &ClaimSet) -> Result<Option<Audiences<'_>>, ClaimError> {
    let Some(aud) = claims.registered(Registered::Aud).filter(|a| !a.is_null()) else {
        return Ok(None);
    };
    if let Some(one) = aud.as_str() {
        return Ok(Some(Audiences::One(one)));
    }
    match aud.find_str(|_| false) {
        Some(_) => Ok(Some(Audiences::Many(aud))),
        None => Err(ClaimError::BadAud),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn set(claims: &Value) -> ClaimSet {
        ClaimSet::parse(claims.to_string().into()).unwrap()
    }

    const NOW: u64 = 1_700_000_000;

    fn rules() -> ClaimRules {
        ClaimRules {
            issuers: vec!["http://the.issuer".into()],
            issuer_patterns: Vec::new(),
            audiences: vec!["a1".into(), "a2".into()],
            authorized_party: None,
            leeway: 0,
        }
    }

    fn check(claims: Value) -> Result<(), ClaimError> {
        rules().check(&set(&claims), NOW)
    }

    fn base() -> Value {
        json!({"iss": "http://the.issuer", "aud": "a1", "exp": NOW + 100})
    }

    fn with(key: &str, value: Value) -> Value {
        let mut v = base();
        v[key] = value;
        v
    }

    fn without(key: &str) -> Value {
        let mut v = base();
        v.as_object_mut().unwrap().remove(key);
        v
    }

    #[test]
    fn accepts_a_valid_set() {
        assert_eq!(check(base()), Ok(()));
        assert_eq!(check(with("aud", json!(["zz", "a2"]))), Ok(()));
        assert_eq!(check(with("exp", json!(NOW as f64 + 0.5))), Ok(()));
    }

    #[test]
    fn exp_equal_to_now_is_expired() {
        assert_eq!(check(with("exp", json!(NOW))), Err(ClaimError::Expired));
        assert_eq!(check(with("exp", json!(NOW + 1))), Ok(()));
        let leeway = ClaimRules {
            leeway: 5,
            ..rules()
        };
        let claims = with("exp", json!(NOW - 4));
        assert_eq!(leeway.check(&set(&claims), NOW), Ok(()));
    }

    #[test]
    fn required_claims() {
        assert_eq!(check(without("exp")), Err(ClaimError::MissingExp));
        assert_eq!(check(without("iss")), Err(ClaimError::MissingIss));
        assert_eq!(check(without("aud")), Err(ClaimError::MissingAud));
        assert_eq!(check(with("exp", json!(null))), Err(ClaimError::MissingExp));
    }

    #[test]
    fn wrong_types() {
        assert_eq!(
            check(with("exp", json!("9999999999"))),
            Err(ClaimError::BadExp)
        );
        assert_eq!(check(with("iss", json!(5))), Err(ClaimError::BadIss));
        assert_eq!(
            check(with("iss", json!(["http://the.issuer"]))),
            Err(ClaimError::BadIss)
        );
        assert_eq!(check(with("aud", json!({}))), Err(ClaimError::BadAud));
        assert_eq!(
            check(with("aud", json!(["a1", 3]))),
            Err(ClaimError::BadAud)
        );
        assert_eq!(check(with("nbf", json!("0"))), Err(ClaimError::BadNbf));
        assert_eq!(check(with("iat", json!(true))), Err(ClaimError::BadIat));
    }

    #[test]
    fn time_windows() {
        assert_eq!(check(with("nbf", json!(NOW - 60))), Ok(()));
        assert_eq!(
            check(with("nbf", json!(NOW + 60))),
            Err(ClaimError::NotYetValid)
        );
        assert_eq!(check(with("iat", json!(NOW))), Ok(()));
        assert_eq!(
            check(with("iat", json!(NOW + 60))),
            Err(ClaimError::IssuedInFuture)
        );
    }

    #[test]
    fn audience_and_issuer_must_match() {
        assert_eq!(
            check(with("aud", json!("a3"))),
            Err(ClaimError::WrongAudience)
        );
        assert_eq!(
            check(with("aud", json!([]))),
            Err(ClaimError::WrongAudience)
        );
        assert_eq!(
            check(with("iss", json!("http://other"))),
            Err(ClaimError::WrongIssuer)
        );
    }

    #[test]
    fn registered_claims_have_their_types_and_ranges() {
        for (claim, value, err) in [
            ("exp", json!(-1), ClaimError::BadExp),
            ("exp", json!(1e300), ClaimError::BadExp),
            ("exp", json!(253_402_300_800u64), ClaimError::BadExp),
            ("nbf", json!(-5), ClaimError::BadNbf),
            ("nbf", json!(1e20), ClaimError::BadNbf),
            ("iat", json!(-0.5), ClaimError::BadIat),
            ("sub", json!(5), ClaimError::BadSub),
            ("sub", json!(null), ClaimError::BadSub),
            ("jti", json!(["x"]), ClaimError::BadJti),
        ] {
            assert_eq!(
                check(with(claim, value.clone())),
                Err(err),
                "{claim} = {value}"
            );
        }
        assert_eq!(check(with("sub", json!(""))), Ok(()));
        assert_eq!(check(with("exp", json!(253_402_300_799u64))), Ok(()));
    }

    #[test]
    fn authorized_party_instead_of_or_beside_audience() {
        let party = |audiences: Vec<String>| ClaimRules {
            audiences,
            authorized_party: Some("web".into()),
            ..rules()
        };
        let only = party(Vec::new());
        let ok = |r: &ClaimRules, v: Value| r.check(&set(&v), NOW);
        // Keycloak access token: aud "account", azp the client.
        let kc = with("aud", json!("account"));
        let mut kc_azp = kc.clone();
        kc_azp["azp"] = json!("web");
        assert_eq!(ok(&only, kc_azp.clone()), Ok(()));
        assert_eq!(ok(&only, kc.clone()), Err(ClaimError::WrongAuthorizedParty));
        let mut other = kc.clone();
        other["azp"] = json!("mobile");
        assert_eq!(ok(&only, other), Err(ClaimError::WrongAuthorizedParty));
        // RFC 9068 / Cognito access token: client_id and no aud.
        let mut cognito = without("aud");
        cognito["client_id"] = json!("web");
        assert_eq!(ok(&only, cognito), Ok(()));
        // An ID token whose only audience is the client needs no azp.
        assert_eq!(ok(&only, with("aud", json!(["web"]))), Ok(()));
        assert_eq!(
            ok(&only, with("aud", json!(["web", "x"]))),
            Err(ClaimError::WrongAuthorizedParty)
        );
        let mut bad = kc.clone();
        bad["azp"] = json!(7);
        assert_eq!(ok(&only, bad), Err(ClaimError::BadAzp));
        // Beside an audience: both must hold.
        let both = party(vec!["account".into()]);
        assert_eq!(ok(&both, kc_azp), Ok(()));
        assert_eq!(ok(&both, kc), Err(ClaimError::WrongAuthorizedParty));
    }

    #[test]
    fn several_issuer_spellings() {
        let r = ClaimRules {
            issuers: vec![
                "https://accounts.google.com".into(),
                "accounts.google.com".into(),
            ],
            ..rules()
        };
        for iss in ["https://accounts.google.com", "accounts.google.com"] {
            assert_eq!(r.check(&set(&with("iss", json!(iss))), NOW), Ok(()));
        }
    }

    #[test]
    fn issuer_patterns_accept_their_tenants_only() {
        let pattern = IssuerPattern::parse("https://sso.example/realms/{tenant}")
            .unwrap()
            .unwrap();
        let r = ClaimRules {
            issuer_patterns: vec![pattern],
            ..rules()
        };
        let iss = |v: &str| r.check(&set(&with("iss", json!(v))), NOW);
        assert_eq!(iss("https://sso.example/realms/acme"), Ok(()));
        assert_eq!(iss("http://the.issuer"), Ok(()), "the exact issuer still");
        for no in [
            "https://sso.example/realms/",
            "https://sso.example/realms/acme/x",
            "https://sso.example/realms/a.b",
            "https://sso.example/other/acme",
        ] {
            assert_eq!(iss(no), Err(ClaimError::WrongIssuer), "{no}");
        }
    }
}
