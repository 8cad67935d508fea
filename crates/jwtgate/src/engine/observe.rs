//! Stage 6, observe: the outcome of one request on the current span and, with the `metrics`
//! feature, in `jwtgate_requests_total`, `jwtgate_authentication_duration_seconds` and
//! `jwtgate_key_set_age_seconds`. The accepted validator comes with the decision: nothing is
//! looked up again by name.

use std::time::Duration;

use super::{Chain, Decision, Engine};
use crate::rejection::Rejection;

pub(super) fn record(
    engine: &Engine,
    chain: Chain,
    decision: &Result<Decision<'_>, Rejection>,
    elapsed: Option<Duration>,
) {
    let span = tracing::Span::current();
    let first = &engine.validators[chain.start];
    let (validator, outcome, kind) = match decision {
        Ok(Decision::Identified { validator, .. }) => (*validator, "accepted", None),
        Ok(Decision::Anonymous { .. }) => (first, "anonymous", None),
        Err(r) => (first, "refused", Some(r.kind().as_str())),
    };
    span.record("validator", tracing::field::display(&validator.name));
    span.record("outcome", tracing::field::display(kind.unwrap_or(outcome)));
    // The key-set age costs a lookup: only when a span or the metrics will read it.
    let wanted = cfg!(feature = "metrics") || !span.is_disabled();
    let age = match decision {
        Ok(Decision::Identified { .. }) if wanted => validator.keys_age(),
        _ => None,
    };
    if let Some(age) = age {
        span.record("keys_age_secs", age.as_secs());
    }
    #[cfg(feature = "metrics")]
    {
        // Labels share the name (`Arc<str>`): no copy of it per request.
        let name = metrics::SharedString::from(std::sync::Arc::clone(&validator.name));
        metrics::counter!(
            "jwtgate_requests_total",
            "validator" => name.clone(),
            "outcome" => outcome,
            "kind" => kind.unwrap_or("none"),
        )
        .increment(1);
        if let Some(elapsed) = elapsed {
            metrics::histogram!("jwtgate_authentication_duration_seconds", "validator" => name.clone())
                .record(elapsed.as_secs_f64());
        }
        if let Some(age) = age {
            metrics::gauge!("jwtgate_key_set_age_seconds", "validator" => name)
                .set(age.as_secs_f64());
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = elapsed;
}
