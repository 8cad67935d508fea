//! Without the `remote-keys` feature there are no remote caches to share.

/// Stands in for the shared caches of remote key sets.
#[derive(Default)]
pub(crate) struct KeyCaches;
