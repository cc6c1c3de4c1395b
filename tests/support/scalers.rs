//! Building scalers in tests the way the operator does: through the registry, so the timeout
//! and query-sharing decorators are part of what is tested.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use scaler_core::registry::TriggerConfig;
use scaler_core::{Sample, SampleRequest, Scaler, ScalerError, TriggerParams};
use scalers::{ScalerContext, Settings};

/// Key/value pairs as tests write them.
pub type Pairs<'a> = &'a [(&'a str, &'a str)];

fn map(pairs: Pairs<'_>) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Trigger 0 of `trigger_type` with this metadata and these TriggerAuthentication parameters.
pub fn trigger(trigger_type: &str, metadata: Pairs<'_>, auth: Pairs<'_>) -> TriggerConfig {
    TriggerConfig {
        trigger_type: trigger_type.to_owned(),
        params: TriggerParams {
            metadata: map(metadata),
            auth_params: map(auth),
            resolved_env: BTreeMap::new(),
        },
        ..TriggerConfig::default()
    }
}

/// The scaler of that trigger, built by the registry with its decorators; panics on bad input.
pub fn build(
    context: &ScalerContext,
    trigger_type: &str,
    metadata: Pairs<'_>,
    auth: Pairs<'_>,
) -> Arc<dyn Scaler> {
    scalers::builtin_registry()
        .build(&trigger(trigger_type, metadata, auth), context)
        .unwrap_or_else(|e| panic!("building {trigger_type} {metadata:?}: {e}"))
}

/// A context that never reuses a finished query's answer, so every sample reaches the server.
pub fn unshared_context() -> ScalerContext {
    ScalerContext::new(Settings {
        shared_query_window: Duration::ZERO,
        ..Settings::default()
    })
}

/// Samples the scaler's first external metric now.
pub async fn sample_first(scaler: &Arc<dyn Scaler>) -> Result<Sample, ScalerError> {
    let specs = scaler.metric_specs();
    let Some(metric) = specs.first().and_then(|spec| spec.external()) else {
        panic!("the scaler has no external metric");
    };
    scaler
        .sample(SampleRequest {
            metric: &metric.name,
            now: chrono::Utc::now(),
        })
        .await
}
