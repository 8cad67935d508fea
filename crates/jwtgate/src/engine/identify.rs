//! Stage 3, identify: the user and partner of an accepted token, by the validator's rules,
//! and the cookie-mode cookie to set. Lookups that cannot be made are 503s, never a refusal
//! of the user.

use std::sync::Arc;

use super::{Accepted, Decision, Engine, Via};
use crate::directory::{LookupError, LookupErrorKind, UserKey, UserMatch, UserQuery, UserRecord};
use crate::failure::Failure;
use crate::identity::{Identity, Payload, ValidatorName};
use crate::rejection::{Rejection, RejectionKind};
use crate::validator::{CompiledValidator, DirectoryRule, UserStrategy};

/// Seconds a client is asked to wait when the user directory is unreachable.
const DIRECTORY_RETRY_AFTER_SECS: u64 = 5;

pub(super) async fn identify<'e>(
    engine: &'e Engine,
    accepted: Accepted<'e>,
) -> Result<Decision<'e>, Rejection> {
    let Accepted {
        validator: v,
        payload,
        via,
        now,
        ..
    } = accepted;
    // One refusal for every way the token's user cannot be had: logged, then a 401.
    let refuse = |why: &'static str| {
        tracing::debug!(validator = %v.name, reason = why, "token refused");
        engine.reject(RejectionKind::InvalidToken, why)
    };
    let no_user = || refuse("token has no usable user claim");
    let mut record: Option<Arc<UserRecord>> = None;
    let user = match &v.user {
        UserStrategy::Static(id) => id.clone(),
        UserStrategy::Claim { claim, service } => match (payload.user_id(claim), service) {
            (Some(user), _) => user,
            (None, Some(service)) if is_service_token(&payload) => {
                if !service.allowed {
                    return Err(refuse(Failure::ServiceToken.description()));
                }
                payload.user_id("common_name").ok_or_else(no_user)?
            }
            (None, _) => return Err(no_user()),
        },
        UserStrategy::Resolver(resolver) => resolver
            .resolve(&payload)
            .await
            .map_err(|e| lookup_failed(engine, v, "user resolver", &e))?
            .ok_or_else(|| refuse("token user is not known"))?,
        UserStrategy::Directory(d) => {
            let query = user_query(&v.name, *d, &payload).map_err(refuse)?;
            // The registry refuses to build a directory validator without a directory.
            let Some(users) = &engine.users else {
                tracing::error!(validator = %v.name, "no user directory");
                return Err(engine.reject(RejectionKind::Internal, "authentication backend error"));
            };
            let found = users
                .user(&query)
                .await
                .map_err(|e| lookup_failed(engine, v, "user directory", &e))?;
            let found = found.ok_or_else(|| refuse("token user is not known"))?;
            let id = found.id.clone();
            record = Some(found);
            id
        }
    };
    let partner = match (v.partner_required, payload.get_str("email")) {
        (None, _) | (Some(_), None) => None,
        (Some(_), Some(email)) => {
            let found = engine
                .directory
                .partners_by_email(email)
                .await
                .map_err(|e| lookup_failed(engine, v, "partner directory", &e))?;
            match found.as_slice() {
                [one] => Some(*one),
                _ => None,
            }
        }
    };
    if partner.is_none() && v.partner_required == Some(true) {
        tracing::info!(validator = %v.name, "no single partner matches the token email");
        return Err(engine.reject(RejectionKind::InvalidToken, "no partner matches the token"));
    }
    let set_cookie = v
        .cookie
        .as_ref()
        .and_then(|c| c.refresh(payload.claims(), &via, now));
    let session = match (&via, &v.cookie) {
        (Via::Stored(s), Some(c)) => Some(crate::session::SessionTokens::new(
            engine.sessions.clone(),
            c.sealer.clone(),
            crate::session::record::key(&v.name, s.id.as_str()),
        )),
        _ => None,
    };
    Ok(Decision::Identified {
        validator: v,
        identity: Identity {
            payload,
            user,
            partner,
            validator: ValidatorName(v.name.clone()),
            record,
            realm: engine.realm.clone(),
        },
        set_cookie,
        session,
    })
}

/// 503 with `Retry-After` for a resolver or directory that cannot be reached, 500 for one that
/// failed; the error goes to the log only.
fn lookup_failed(engine: &Engine, v: &CompiledValidator, what: &str, e: &LookupError) -> Rejection {
    if e.kind() == LookupErrorKind::Unavailable {
        tracing::warn!(validator = %v.name, error = %e, "{what} unavailable");
        return engine
            .reject(
                RejectionKind::DirectoryUnavailable,
                "the user directory is unavailable",
            )
            .with_retry_after(DIRECTORY_RETRY_AFTER_SECS);
    }
    tracing::error!(validator = %v.name, error = %e, "{what} failed");
    engine.reject(RejectionKind::Internal, "authentication backend error")
}

/// Who a directory should look for: the verified email, the issuer and subject, or (service
/// users on) a service token's `common_name`. An email marked unverified is never used.
fn user_query<'a>(
    validator: &'a str,
    d: DirectoryRule,
    payload: &'a Payload,
) -> Result<UserQuery<'a>, &'static str> {
    let raw_email = payload
        .get_str("email")
        .map(|e| e.trim_matches(' '))
        .filter(|e| !e.is_empty());
    let unverified = payload
        .raw("email_verified")
        .is_some_and(|v| v.as_bool() == Some(false))
        || payload
            .get_str("email_verified")
            .is_some_and(|s| s.eq_ignore_ascii_case("false"));
    let email = raw_email.filter(|_| !unverified);
    let issuer = payload.get_str("iss").filter(|s| !s.is_empty());
    let subject = payload.get_str("sub").filter(|s| !s.is_empty());
    let key = match (d.matching, email, issuer, subject) {
        (UserMatch::Email, Some(email), _, _) => {
            UserKey::Email(crate::directory::normalize_email(email))
        }
        (UserMatch::Subject, _, Some(issuer), Some(subject)) => UserKey::Subject {
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
        },
        _ if raw_email.is_some() && unverified => return Err("token email is not verified"),
        _ => {
            // The same definition of a service token as the claim strategy uses.
            let service = is_service_token(payload)
                .then(|| payload.get_str("common_name"))
                .flatten();
            match service {
                Some(name) if d.service_users => UserKey::Service(name.to_owned()),
                Some(_) => return Err("service tokens are not accepted: service users are off"),
                None if d.matching == UserMatch::Subject => {
                    return Err("token has no issuer and subject");
                }
                None => return Err("token has no email"),
            }
        }
    };
    Ok(UserQuery {
        validator,
        key,
        email,
        issuer,
        subject,
        register: d.register,
        payload,
    })
}

/// A Cloudflare Access service token: no `email`, an empty `sub`, a `common_name`.
fn is_service_token(payload: &Payload) -> bool {
    payload.raw("email").is_none()
        && payload.get_str("sub").is_some_and(str::is_empty)
        && payload
            .get_str("common_name")
            .is_some_and(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::jws::claim_set::ClaimSet;

    fn payload(claims: Value) -> Payload {
        Payload::new(Arc::new(ClaimSet::from_map(
            claims.as_object().unwrap().clone(),
        )))
    }

    fn directory(matching: UserMatch, service_users: bool) -> DirectoryRule {
        DirectoryRule {
            matching,
            register: true,
            service_users,
        }
    }

    #[test]
    fn service_tokens_are_what_cloudflare_sends_for_them() {
        let cases = [
            (json!({"sub": "", "common_name": "ci.access"}), true),
            (json!({"sub": "", "common_name": ""}), false),
            (json!({"sub": "u1", "common_name": "ci.access"}), false),
            (json!({"common_name": "ci.access"}), false),
            // An email, even null, means a person.
            (
                json!({"sub": "", "email": null, "common_name": "ci.access"}),
                false,
            ),
            (
                json!({"sub": "", "email": "a@b.c", "common_name": "ci.access"}),
                false,
            ),
        ];
        for (claims, want) in cases {
            assert_eq!(is_service_token(&payload(claims.clone())), want, "{claims}");
        }
    }

    #[test]
    fn escaped_claims_read_as_what_they_say() {
        let query = |text: &str| {
            let claims = crate::jws::claim_set::ClaimSet::parse(text.into()).unwrap();
            let p = Payload::new(std::sync::Arc::new(claims));
            user_query("v", directory(UserMatch::Email, false), &p).map(|q| q.key)
        };
        // "fals\u0065" is "false": unverified, never matched or registered by its email.
        assert_eq!(
            query(r#"{"email":"a@b.c","email_verified":"fals\u0065"}"#),
            Err("token email is not verified")
        );
        assert_eq!(
            query(r#"{"email":"\u0061da@b.c","email_verified":true}"#),
            Ok(UserKey::Email("ada@b.c".into()))
        );
    }

    #[test]
    fn the_user_query_uses_only_verified_emails() {
        let email = |e: &str| Ok(UserKey::Email(e.to_owned()));
        let cases: [(Value, UserMatch, bool, Result<UserKey, &str>); 11] = [
            (
                json!({"email": " Ada@Example.COM "}),
                UserMatch::Email,
                false,
                email("ada@example.com"),
            ),
            (
                json!({"email": "a@b.c", "email_verified": true}),
                UserMatch::Email,
                false,
                email("a@b.c"),
            ),
            (
                json!({"email": "a@b.c", "email_verified": false}),
                UserMatch::Email,
                false,
                Err("token email is not verified"),
            ),
            // Some providers send the flag as a string.
            (
                json!({"email": "a@b.c", "email_verified": "FALSE"}),
                UserMatch::Email,
                false,
                Err("token email is not verified"),
            ),
            (
                json!({"email": "a@b.c", "email_verified": "true"}),
                UserMatch::Email,
                false,
                email("a@b.c"),
            ),
            (
                json!({"email": "  "}),
                UserMatch::Email,
                false,
                Err("token has no email"),
            ),
            (
                json!({"iss": "i", "sub": "s"}),
                UserMatch::Subject,
                false,
                Ok(UserKey::Subject {
                    issuer: "i".into(),
                    subject: "s".into(),
                }),
            ),
            (
                json!({"iss": "i", "sub": ""}),
                UserMatch::Subject,
                false,
                Err("token has no issuer and subject"),
            ),
            (
                json!({"sub": "", "common_name": "ci"}),
                UserMatch::Email,
                true,
                Ok(UserKey::Service("ci".into())),
            ),
            (
                json!({"sub": "", "common_name": "ci"}),
                UserMatch::Email,
                false,
                Err("service tokens are not accepted: service users are off"),
            ),
            (
                json!({"iss": "i", "sub": "s", "email": "a@b.c", "email_verified": false}),
                UserMatch::Subject,
                false,
                Ok(UserKey::Subject {
                    issuer: "i".into(),
                    subject: "s".into(),
                }),
            ),
        ];
        for (claims, matching, service_users, want) in cases {
            let p = payload(claims.clone());
            let got = user_query("v", directory(matching, service_users), &p).map(|q| {
                // An unverified email is never handed to the directory, not even beside the key.
                if claims["email_verified"] == json!(false) {
                    assert_eq!(q.email, None, "{claims}");
                }
                q.key
            });
            assert_eq!(got, want, "{claims}");
        }
    }
}
