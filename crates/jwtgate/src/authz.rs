//! Authorization after authentication: scopes, roles and predicates a layer (or a handler)
//! requires of an accepted token. A failing requirement is a 403 `insufficient_scope`
//! (RFC 6750 3.1), never a 401: the token is fine, it just does not grant enough.
//!
//! Scopes are read from `scope` (a space-separated string, RFC 8693/9068), `scp` (a string or
//! an array: Entra ID, Okta) and `permissions` (an array: Auth0 RBAC). Roles are of two kinds,
//! never compared as one string ([`Role`]): a token's own roles (Keycloak's
//! `realm_access.roles`, a plain `roles` claim: Entra ID app roles) and a client's roles
//! (Keycloak's `resource_access.<client>.roles`). Keycloak allows `:` in client ids and role
//! names, so no spelling of one kind can pass for the other: `Role::client("my", "app:editor")`,
//! `Role::client("my:app", "editor")` and the realm role `my:app:editor` are three roles.

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use serde_json::Value;

use crate::directory::BoxFuture;
use crate::identity::{Identity, Payload};
use crate::rejection::Rejection;

/// Something an accepted token must grant.
///
/// ```
/// use jwtgate::authz::Requirement;
///
/// let admin = Requirement::scopes(["admin:write"]);
/// use jwtgate::authz::Role;
/// let staff = Requirement::any_role([Role::named("admin"), Role::client("my-app", "editor")]);
/// let verified = Requirement::predicate(|id| id.payload().get("email_verified") == Some(&true.into()));
/// # let _ = (admin, staff, verified);
/// ```
#[derive(Clone)]
pub struct Requirement(Rule);

#[derive(Clone)]
enum Rule {
    AllScopes(Vec<String>),
    AnyScope(Vec<String>),
    AllRoles(Vec<Role>, Vec<String>),
    AnyRole(Vec<Role>, Vec<String>),
    Predicate(Arc<dyn Fn(&Identity) -> bool + Send + Sync>),
    AsyncPredicate(Arc<dyn Fn(Identity) -> BoxFuture<'static, bool> + Send + Sync>),
}

impl fmt::Debug for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Rule::AllScopes(s) => f.debug_tuple("AllScopes").field(s).finish(),
            Rule::AnyScope(s) => f.debug_tuple("AnyScope").field(s).finish(),
            Rule::AllRoles(r, _) => f.debug_tuple("AllRoles").field(r).finish(),
            Rule::AnyRole(r, _) => f.debug_tuple("AnyRole").field(r).finish(),
            Rule::Predicate(_) => f.write_str("Predicate(..)"),
            Rule::AsyncPredicate(_) => f.write_str("AsyncPredicate(..)"),
        }
    }
}

fn strings<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Vec<String> {
    items.into_iter().map(Into::into).collect()
}

/// Roles, and how a 403 names them.
fn roles<I: IntoIterator<Item = R>, R: Into<Role>>(items: I) -> (Vec<Role>, Vec<String>) {
    let roles: Vec<Role> = items.into_iter().map(Into::into).collect();
    let names = roles.iter().map(Role::to_string).collect();
    (roles, names)
}

/// A role a token may hold, of one kind or the other; a plain string is a [`named`](Self::named)
/// role, never split.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// One of the token's own roles: in `realm_access.roles` (Keycloak's realm roles) or in a
    /// plain `roles` claim (Entra ID app roles, and other providers').
    Named(String),
    /// A role of one client: in `resource_access.<client>.roles` (Keycloak's client roles).
    Client {
        /// The client id.
        client: String,
        /// The role's name.
        role: String,
    },
}

impl Role {
    /// One of the token's own roles (realm roles, the `roles` claim).
    pub fn named(role: impl Into<String>) -> Self {
        Self::Named(role.into())
    }

    /// A role of client `client` (Keycloak's `resource_access`).
    pub fn client(client: impl Into<String>, role: impl Into<String>) -> Self {
        Self::Client {
            client: client.into(),
            role: role.into(),
        }
    }
}

impl From<&str> for Role {
    fn from(role: &str) -> Self {
        Self::named(role)
    }
}

impl From<String> for Role {
    fn from(role: String) -> Self {
        Self::Named(role)
    }
}

impl fmt::Display for Role {
    /// As a 403's challenge names it (for people: nothing is matched by this text): the role,
    /// or `<role>@<client>` for a client's.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Named(role) => f.write_str(role),
            Self::Client { client, role } => write!(f, "{role}@{client}"),
        }
    }
}

impl Requirement {
    /// Every one of these scopes.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        Self(Rule::AllScopes(strings(scopes)))
    }

    /// At least one of these scopes.
    pub fn any_scope<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        Self(Rule::AnyScope(strings(scopes)))
    }

    /// Every one of these roles: strings are [named](Role::named) roles, client roles are
    /// [`Role::client`].
    pub fn roles<I: IntoIterator<Item = R>, R: Into<Role>>(items: I) -> Self {
        let (roles, names) = roles(items);
        Self(Rule::AllRoles(roles, names))
    }

    /// At least one of these roles.
    pub fn any_role<I: IntoIterator<Item = R>, R: Into<Role>>(items: I) -> Self {
        let (roles, names) = roles(items);
        Self(Rule::AnyRole(roles, names))
    }

    /// An arbitrary check of the identity.
    pub fn predicate(f: impl Fn(&Identity) -> bool + Send + Sync + 'static) -> Self {
        Self(Rule::Predicate(Arc::new(f)))
    }

    /// An arbitrary asynchronous check (a database lookup, a policy engine); the identity is
    /// cheap to clone.
    pub fn async_predicate<F, Fut>(f: F) -> Self
    where
        F: Fn(Identity) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        Self(Rule::AsyncPredicate(Arc::new(move |id| Box::pin(f(id)))))
    }

    /// The scopes or roles named in the 403's challenge.
    pub(crate) fn names(&self) -> &[String] {
        match &self.0 {
            Rule::AllScopes(n) | Rule::AnyScope(n) | Rule::AllRoles(_, n) | Rule::AnyRole(_, n) => {
                n
            }
            Rule::Predicate(_) | Rule::AsyncPredicate(_) => &[],
        }
    }

    /// Whether `identity` meets this requirement.
    pub async fn is_met(&self, identity: &Identity) -> bool {
        match &self.0 {
            Rule::AllScopes(needed) => {
                let have = Scopes::from_payload(identity.payload());
                needed.iter().all(|s| have.contains(s))
            }
            Rule::AnyScope(needed) => {
                let have = Scopes::from_payload(identity.payload());
                needed.iter().any(|s| have.contains(s))
            }
            Rule::AllRoles(needed, _) => {
                let have = Roles::from_payload(identity.payload());
                needed.iter().all(|r| have.holds(r))
            }
            Rule::AnyRole(needed, _) => {
                let have = Roles::from_payload(identity.payload());
                needed.iter().any(|r| have.holds(r))
            }
            Rule::Predicate(f) => f(identity),
            Rule::AsyncPredicate(f) => f(identity.clone()).await,
        }
    }
}

/// Authorization in handlers (defined here, beside the requirements, so that `identity`
/// depends on nothing above it).
impl Identity {
    /// Checks a requirement in a handler: the same 403 `insufficient_scope` as the layer's.
    ///
    /// ```
    /// use jwtgate::{Identity, rejection::Rejection, authz::Requirement};
    ///
    /// async fn delete(identity: Identity) -> Result<&'static str, Rejection> {
    ///     identity.require(&Requirement::scopes(["things:delete"])).await?;
    ///     Ok("deleted")
    /// }
    /// ```
    pub async fn require(&self, requirement: &Requirement) -> Result<(), Rejection> {
        if requirement.is_met(self).await {
            Ok(())
        } else {
            Err(Rejection::insufficient_scope(
                self.realm.clone(),
                requirement.names(),
            ))
        }
    }

    /// The scopes the token grants.
    pub fn scopes(&self) -> Scopes {
        Scopes::from_payload(self.payload())
    }

    /// The roles the token carries.
    pub fn roles(&self) -> Roles {
        Roles::from_payload(self.payload())
    }
}

/// The scopes a token grants (`scope`, `scp`, `permissions`). An axum extractor too.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<String>);

impl Scopes {
    /// Reads the scopes of a payload.
    pub fn from_payload(payload: &Payload) -> Self {
        let mut out = BTreeSet::new();
        for claim in ["scope", "scp", "permissions"] {
            match payload.get(claim) {
                Some(Value::String(s)) => out.extend(s.split_whitespace().map(str::to_owned)),
                Some(Value::Array(items)) => {
                    out.extend(items.iter().filter_map(Value::as_str).map(str::to_owned));
                }
                _ => {}
            }
        }
        Self(out)
    }

    /// Whether `scope` is granted.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    /// Every granted scope, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// The roles a token carries, each of its kind ([`Role`]): `realm_access.roles` and `roles`
/// as named roles, `resource_access.<client>.roles` as that client's. An axum extractor too.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roles(BTreeSet<Role>);

impl Roles {
    /// Reads the roles of a payload.
    pub fn from_payload(payload: &Payload) -> Self {
        let names = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut out: BTreeSet<Role> = names(payload.get("roles"))
            .into_iter()
            .map(Role::Named)
            .collect();
        out.extend(
            names(payload.get("realm_access").and_then(|r| r.get("roles")))
                .into_iter()
                .map(Role::Named),
        );
        if let Some(Value::Object(clients)) = payload.get("resource_access") {
            for (client, access) in clients {
                for role in names(access.get("roles")) {
                    out.insert(Role::client(client.as_str(), role));
                }
            }
        }
        Self(out)
    }

    /// Whether the named role `role` is held (realm roles, the `roles` claim; never a
    /// client's).
    pub fn contains(&self, role: &str) -> bool {
        self.0.contains(&Role::named(role))
    }

    /// Whether `role` is held, of its kind.
    pub fn holds(&self, role: &Role) -> bool {
        self.0.contains(role)
    }

    /// Every role, named ones first, each kind sorted.
    pub fn iter(&self) -> impl Iterator<Item = &Role> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn payload(v: Value) -> Payload {
        Payload::from(v.as_object().unwrap().clone())
    }

    #[test]
    fn scopes_from_every_provider_shape() {
        let s = Scopes::from_payload(&payload(json!({
            "scope": "openid  read:a",
            "scp": ["Files.Read"],
            "permissions": ["write:b"]
        })));
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            ["Files.Read", "openid", "read:a", "write:b"]
        );
        let s = Scopes::from_payload(&payload(json!({"scp": "User.Read Mail.Send"})));
        assert!(s.contains("Mail.Send"));
        assert!(
            Scopes::from_payload(&payload(json!({"scope": 5})))
                .iter()
                .next()
                .is_none()
        );
    }

    #[test]
    fn roles_keep_client_roles_apart() {
        let r = Roles::from_payload(&payload(json!({
            "realm_access": {"roles": ["admin"]},
            "resource_access": {"other-app": {"roles": ["owner"]}, "my-app": {"roles": ["editor"]}},
            "roles": ["Task.Read"]
        })));
        assert_eq!(
            r.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["Task.Read", "admin", "editor@my-app", "owner@other-app"]
        );
        assert!(
            !r.contains("owner"),
            "another client's role never passes as a plain role"
        );
        assert!(r.holds(&Role::client("my-app", "editor")) && r.contains("admin"));
    }

    #[tokio::test]
    async fn no_spelling_of_a_role_passes_for_another_kind() {
        let identity = |claims: Value| crate::identity::Identity::for_tests(payload(claims));
        // Client `my` with role `app:editor`, and a realm role spelled like a client role.
        let token = identity(json!({
            "resource_access": {"my": {"roles": ["app:editor"]}},
            "realm_access": {"roles": ["other:viewer"]},
        }));
        for (needed, met) in [
            (Role::client("my", "app:editor"), true),
            (Role::client("my:app", "editor"), false),
            (Role::named("my:app:editor"), false),
            (Role::named("my:app:editor"), false),
            (Role::named("other:viewer"), true),
            (Role::client("other", "viewer"), false),
        ] {
            assert_eq!(
                Requirement::roles([needed.clone()]).is_met(&token).await,
                met,
                "{needed:?}"
            );
        }
        // A string is a named role, never split at `:`.
        assert!(!Requirement::roles(["my:app:editor"]).is_met(&token).await);
        assert!(
            !Requirement::any_role(["my:app:editor", "nope"])
                .is_met(&token)
                .await
        );
        assert_eq!(
            Requirement::roles([Role::client("my", "x"), Role::named("y")]).names(),
            ["x@my", "y"]
        );
    }
}
