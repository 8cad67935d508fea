//! Tokens shaped as identity providers issue them, for tests of jwtgate's presets: each
//! `*_claims` gives the claim set (to change a member first), each `*_token` signs it in one
//! call (RS256, `kid` in the header), valid for an hour from now.

use serde_json::{Value, json};

use crate::{TestKey, mint, now};

/// Signs `claims` RS256 with `key`, `kid` in the header.
pub fn rs256_token(key: &TestKey, kid: &str, claims: &Value) -> String {
    mint(key, "RS256", json!({ "kid": kid }), claims)
}

/// A Cloudflare Access application token as Access sends it to the origin: `aud` the
/// application's AUD tag (in an array), the user's `email`, `type` "app".
pub fn cloudflare_access_claims(issuer: &str, aud_tag: &str, email: &str) -> Value {
    let t = now();
    json!({
        "aud": [aud_tag],
        "email": email,
        "exp": t + 3600,
        "iat": t,
        "nbf": t,
        "iss": issuer,
        "type": "app",
        "identity_nonce": "6ei69kawdKzMIAPF",
        "sub": "7335d417-61da-459d-899c-0a01c76a2f94",
        "country": "US"
    })
}

/// A Cloudflare Access service token: no `email`, an empty `sub`, the client id in
/// `common_name`.
pub fn cloudflare_service_claims(issuer: &str, aud_tag: &str, common_name: &str) -> Value {
    let t = now();
    json!({
        "aud": [aud_tag],
        "exp": t + 3600,
        "iat": t,
        "iss": issuer,
        "type": "app",
        "common_name": common_name,
        "sub": ""
    })
}

/// A Keycloak access token: `aud` "account", the client in `azp`, the realm roles in
/// `realm_access.roles`, body `typ` "Bearer".
pub fn keycloak_claims(issuer: &str, azp: &str, sub: &str, realm_roles: &[&str]) -> Value {
    let t = now();
    json!({
        "exp": t + 3600, "iat": t, "jti": "onrtac:5c0f", "iss": issuer,
        "aud": "account", "sub": sub, "typ": "Bearer",
        "azp": azp, "sid": "a1", "acr": "1",
        "realm_access": { "roles": realm_roles },
        "resource_access": { "account": { "roles": ["manage-account"] } },
        "scope": "openid email profile", "email_verified": true,
        "preferred_username": "ada", "email": "ada@example.com"
    })
}

/// A Microsoft Entra ID v2.0 access token: the user in `oid` (stable across apps), the tenant
/// in `tid`, app roles in `roles`.
pub fn entra_id_claims(issuer: &str, aud: &str, tenant: &str, oid: &str) -> Value {
    let t = now();
    json!({
        "aud": aud, "iss": issuer, "iat": t, "nbf": t, "exp": t + 3600,
        "oid": oid, "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "tid": tenant,
        "ver": "2.0", "roles": ["Task.Read"], "scp": "access_as_user"
    })
}

/// An Auth0 access token: `aud` the API identifier and the tenant's userinfo URL, `scope` and
/// `permissions`.
pub fn auth0_claims(issuer: &str, audience: &str, sub: &str, scope: &str) -> Value {
    let t = now();
    let userinfo = format!(
        "{}userinfo",
        if issuer.ends_with('/') {
            issuer.to_owned()
        } else {
            format!("{issuer}/")
        }
    );
    json!({
        "iss": issuer, "sub": sub, "aud": [audience, userinfo], "iat": t, "exp": t + 3600,
        "azp": "spa", "scope": scope,
        "permissions": scope.split(' ').filter(|s| !s.is_empty() && *s != "openid").collect::<Vec<_>>()
    })
}

/// [`cloudflare_access_claims`], signed.
pub fn cloudflare_access_token(
    key: &TestKey,
    kid: &str,
    issuer: &str,
    aud_tag: &str,
    email: &str,
) -> String {
    rs256_token(key, kid, &cloudflare_access_claims(issuer, aud_tag, email))
}

/// [`keycloak_claims`], signed.
pub fn keycloak_token(
    key: &TestKey,
    kid: &str,
    issuer: &str,
    azp: &str,
    sub: &str,
    realm_roles: &[&str],
) -> String {
    rs256_token(key, kid, &keycloak_claims(issuer, azp, sub, realm_roles))
}

/// [`entra_id_claims`], signed.
pub fn entra_id_token(
    key: &TestKey,
    kid: &str,
    issuer: &str,
    aud: &str,
    tenant: &str,
    oid: &str,
) -> String {
    rs256_token(key, kid, &entra_id_claims(issuer, aud, tenant, oid))
}

/// [`auth0_claims`], signed.
pub fn auth0_token(
    key: &TestKey,
    kid: &str,
    issuer: &str,
    audience: &str,
    sub: &str,
    scope: &str,
) -> String {
    rs256_token(key, kid, &auth0_claims(issuer, audience, sub, scope))
}
