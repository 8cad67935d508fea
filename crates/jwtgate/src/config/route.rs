//! `[[route]]`: a path, its auth mode and its requirements; paths are checked when the file
//! loads, with the router axum uses, so that a bad one is an error at its key rather than a
//! panic when the app mounts it.

use crate::authz::{Requirement, Role};
use crate::error::Error;
use crate::layer::JwtAuthLayer;
use crate::mode::AuthMode;
use crate::registry::Registry;

/// One `[[route]]`: a path, its auth mode, and what an accepted token must grant.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Route {
    /// The route path, as axum writes it, or a prefix route `/app/*` (`/app/` and everything
    /// below it).
    pub path: String,
    /// The auth mode.
    pub auth: AuthMode,
    /// Scopes that must all be granted (`scopes = [...]`).
    pub scopes: Vec<String>,
    /// Scopes of which one must be granted (`any_scopes = [...]`).
    pub any_scopes: Vec<String>,
    /// Roles that must all be held (`roles = ["admin", { client = "my-app", role = "editor" }]`).
    pub roles: Vec<Role>,
    /// Roles of which one must be held (`any_roles = [...]`, the same forms).
    pub any_roles: Vec<Role>,
}

impl Route {
    /// The requirements of this route, for [`JwtAuthLayer::require`](JwtAuthLayer::require).
    pub fn requirements(&self) -> Vec<Requirement> {
        let mut out = Vec::new();
        if !self.scopes.is_empty() {
            out.push(Requirement::scopes(self.scopes.iter().cloned()));
        }
        if !self.any_scopes.is_empty() {
            out.push(Requirement::any_scope(self.any_scopes.iter().cloned()));
        }
        if !self.roles.is_empty() {
            out.push(Requirement::roles(self.roles.iter().cloned()));
        }
        if !self.any_roles.is_empty() {
            out.push(Requirement::any_role(self.any_roles.iter().cloned()));
        }
        out
    }

    /// The paths axum mounts this route at: its path, or for a prefix route `/app/*` both
    /// `/app/` and `/app/{*rest}`.
    pub fn mount_paths(&self) -> Vec<String> {
        crate::forward_auth::mount_paths(&self.path)
    }

    /// A layer for this route from `registry`, with its requirements.
    pub fn layer(&self, registry: &Registry) -> Result<JwtAuthLayer, Error> {
        let layer = registry.layer_for(&self.auth)?;
        Ok(self
            .requirements()
            .into_iter()
            .fold(layer, JwtAuthLayer::require))
    }
}

/// The paths of a file's routes, so far: each must be one axum can mount, and no two may
/// overlap (axum panics on both).
#[derive(Default)]
pub(super) struct Paths(matchit::Router<()>);

impl Paths {
    pub(super) fn add(&mut self, path: &str) -> Result<(), String> {
        check_path(path)?;
        for mounted in crate::forward_auth::mount_paths(path) {
            self.0.insert(mounted, ()).map_err(|e| match e {
                matchit::InsertError::Conflict { with } => {
                    format!("route path {path:?} overlaps the route {with:?} above")
                }
                other => format!("route path {path:?} is not a valid route: {other}"),
            })?;
        }
        Ok(())
    }
}

/// What axum's router checks besides matchit: a leading `/`, and no segment written in the
/// 0.7 syntax (`:id`, `*rest`), which axum 0.8 refuses. A last segment `*` is jwtgate's prefix
/// route.
fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("route path {path:?} must start with `/`"));
    }
    let path_without_prefix_star = path.strip_suffix("/*").unwrap_or(path);
    for segment in path_without_prefix_star.split('/') {
        if let Some(rest) = segment.strip_prefix(':') {
            return Err(format!(
                "route path {path:?}: write a capture as `{{{rest}}}`, not `:{rest}`"
            ));
        }
        if let Some(rest) = segment.strip_prefix('*') {
            let name = if rest.is_empty() { "rest" } else { rest };
            return Err(format!(
                "route path {path:?}: write a wildcard as `{{*{name}}}`, not `*{rest}`"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_axum_would_refuse_are_errors() {
        let cases = [
            (
                "/app/*/x",
                "route path \"/app/*/x\": write a wildcard as `{*rest}`, not `*`",
            ),
            (
                "/app/*all",
                "route path \"/app/*all\": write a wildcard as `{*all}`, not `*all`",
            ),
            (
                "/users/:id",
                "route path \"/users/:id\": write a capture as `{id}`, not `:id`",
            ),
            ("app", "route path \"app\" must start with `/`"),
            ("", "route path \"\" must start with `/`"),
            (
                "/a/{id",
                "route path \"/a/{id\" is not a valid route: Parameters must be registered with a valid name",
            ),
            (
                "/a/{*x}/b",
                "route path \"/a/{*x}/b\" is not a valid route: Catch-all parameters are only allowed at the end of a route",
            ),
        ];
        for (path, want) in cases {
            assert_eq!(Paths::default().add(path).unwrap_err(), want, "{path}");
        }
        let mut paths = Paths::default();
        for ok in [
            "/",
            "/whoami",
            "/users/{id}",
            "/files/{*rest}",
            "/a-{b}",
            "/app/*",
            "/app/admin/*",
        ] {
            paths.add(ok).unwrap();
        }
        assert_eq!(
            paths.add("/whoami").unwrap_err(),
            "route path \"/whoami\" overlaps the route \"/whoami\" above"
        );
        // A prefix route is mounted at its slash: a route there overlaps it.
        assert_eq!(
            paths.add("/app/").unwrap_err(),
            "route path \"/app/\" overlaps the route \"/app/\" above"
        );
    }
}
