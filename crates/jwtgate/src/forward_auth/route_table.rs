//! Which route an original path falls under: exact paths, axum captures, and prefix routes
//! written `/app/*`, matched by the router axum uses so that `jwtgate serve` and its
//! forward-auth check pick the same route for a path. A static segment beats a capture and a
//! capture beats a prefix, so the longest prefix wins.

/// The paths axum mounts a route at: the path itself, or for a prefix route `/app/*` the
/// prefix with its slash (`/app/`) and everything below it; `/app` and `/apps/x` are not
/// under it.
pub(crate) fn mount_paths(path: &str) -> Vec<String> {
    match path.strip_suffix("/*") {
        Some(prefix) => vec![format!("{prefix}/"), format!("{prefix}/{{*{REST}}}")],
        None => vec![path.to_owned()],
    }
}

/// The capture name of a prefix route's rest (one no route would name itself).
const REST: &str = "jwtgate_rest";

/// Routes by path, each to the index of its layer.
#[derive(Clone, Default)]
pub(super) struct RouteTable(matchit::Router<usize>);

impl RouteTable {
    /// Adds route `path`; an error when axum could not mount it beside the others.
    pub(super) fn insert(&mut self, path: &str, index: usize) -> Result<(), String> {
        if !path.starts_with('/') {
            return Err(format!("route path {path:?} must start with `/`"));
        }
        for mounted in mount_paths(path) {
            self.0.insert(mounted, index).map_err(|e| match e {
                matchit::InsertError::Conflict { with } => {
                    format!("route path {path:?} overlaps the route {with:?}")
                }
                other => format!("route path {path:?} is not a valid route: {other}"),
            })?;
        }
        Ok(())
    }

    /// The route of a (decoded) path.
    pub(super) fn at(&self, path: &str) -> Option<usize> {
        self.0.at(path).ok().map(|m| *m.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_prefix_routes_longest_wins() {
        let mut t = RouteTable::default();
        for (i, p) in [
            "/app/*",
            "/app/admin/*",
            "/feed",
            "/users/{id}",
            "/users/me",
            "/*",
        ]
        .iter()
        .enumerate()
        {
            t.insert(p, i).unwrap();
        }
        let cases = [
            ("/app/x", Some(0)),
            ("/app/", Some(0)),
            ("/app/a/b/c", Some(0)),
            ("/app/admin/x", Some(1)),
            ("/app/admin/", Some(1)),
            ("/app/admin", Some(0)),
            ("/feed", Some(2)),
            ("/users/42", Some(3)),
            ("/users/me", Some(4)),
            ("/apps/x", Some(5)),
            ("/app", Some(5)),
            ("/", Some(5)),
        ];
        for (path, want) in cases {
            assert_eq!(t.at(path), want, "{path}");
        }
        let mut bare = RouteTable::default();
        bare.insert("/app/*", 0).unwrap();
        bare.insert("/feed", 1).unwrap();
        for path in ["/apps/x", "/app", "/", "/feed/", "/feedx"] {
            assert_eq!(bare.at(path), None, "{path}");
        }
        assert_eq!(
            bare.insert("/app/", 2).unwrap_err(),
            "route path \"/app/\" overlaps the route \"/app/\""
        );
        assert!(
            bare.insert("app", 2)
                .unwrap_err()
                .contains("must start with `/`")
        );
    }

    #[test]
    fn mount_paths_of_a_prefix_route() {
        assert_eq!(mount_paths("/app/*"), ["/app/", "/app/{*jwtgate_rest}"]);
        assert_eq!(mount_paths("/*"), ["/", "/{*jwtgate_rest}"]);
        assert_eq!(mount_paths("/app"), ["/app"]);
    }
}
