//! Stage 4, requirements: what an accepted token must grant on this route (scopes, roles, an
//! app's own check). A failing one is a 403 `insufficient_scope`; anonymous requests on
//! `public_or_jwt_` routes are not subject to them.

use super::{Decision, Engine};
use crate::authz::Requirement;
use crate::rejection::Rejection;

pub(super) async fn check(
    engine: &Engine,
    requirements: &[Requirement],
    decision: &Decision<'_>,
) -> Result<(), Rejection> {
    let Decision::Identified { identity, .. } = decision else {
        return Ok(());
    };
    for requirement in requirements {
        if !requirement.is_met(identity).await {
            tracing::debug!(
                validator = %identity.validator(),
                requirement = ?requirement,
                "token refused: requirement not met"
            );
            return Err(Rejection::insufficient_scope(
                engine.realm.clone(),
                requirement.names(),
            ));
        }
    }
    Ok(())
}
