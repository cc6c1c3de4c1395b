//! Reconcile of one ScaledObject (keda-spec §2.1): a short driver over named steps.
//!
//! On the leader: finalizer → pause → label → target → scalers → HPA → status → scale loop.
//! On a standby: only the scale loop, so its metrics API answers from warm state; it writes
//! nothing. When this replica becomes the leader every object is reconciled again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{self, Event as FinalizerEvent};
use kube::runtime::reflector::ObjectRef;
use tracing::{info, instrument, warn};

use super::Context;
use super::hpa;
use super::runtime::lock;
use super::scale_loop;
use super::scalers;
use super::target::{self, Target};
use crate::crd::conditions::{
    CONDITION_ACTIVE, CONDITION_FALLBACK, CONDITION_PAUSED, CONDITION_READY, MESSAGE_PAUSED,
    MESSAGE_READY_SUCCESS, REASON_PAUSED, REASON_READY_SUCCESS,
};
use crate::crd::{ConditionStatus, ScaledObject};

/// KEDA's finalizer, kept so objects handed over from KEDA (or back) are finalized by either.
pub const FINALIZER: &str = "finalizer.keda.sh";
/// The label the metrics API's selector matches.
pub const NAME_LABEL: &str = "scaledobject.keda.sh/name";

/// Why a reconcile failed; the variant decides the requeue.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The object is invalid or refers to something missing: retried slowly (a missing Secret
    /// or target may appear without the object changing).
    #[error("{message}: {detail}")]
    Check { message: String, detail: String },
    /// A Kubernetes call failed: retried soon.
    #[error("{operation}: {source}")]
    Api {
        operation: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("finalizer: {0}")]
    Finalizer(Box<finalizer::Error<ReconcileError>>),
}

impl ReconcileError {
    fn check(message: impl Into<String>, detail: impl ToString) -> Self {
        Self::Check {
            message: message.into(),
            detail: detail.to_string(),
        }
    }

    fn api(operation: &'static str) -> impl FnOnce(kube::Error) -> Self {
        move |source| Self::Api { operation, source }
    }

    /// A stable label for metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Check { .. } => "check",
            Self::Api { .. } => "api",
            Self::Finalizer(_) => "finalizer",
        }
    }
}

/// The Controller's reconcile function.
#[instrument(skip_all, fields(namespace = so.metadata.namespace.as_deref(), name = so.metadata.name.as_deref()))]
pub async fn reconcile(so: Arc<ScaledObject>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let result = reconcile_inner(so.clone(), ctx.clone()).await;
    if let Some(metrics) = &ctx.metrics {
        metrics.record_reconcile(
            &so,
            started.elapsed(),
            result.as_ref().err().map(ReconcileError::category),
        );
    }
    result
}

async fn reconcile_inner(
    so: Arc<ScaledObject>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let key = ObjectRef::from_obj(so.as_ref());
    if !ctx.is_leader() {
        if so.metadata.deletion_timestamp.is_none() && !so.needs_to_be_paused_by_annotation() {
            scale_loop::ensure_running(&ctx, &so);
        } else {
            ctx.runtimes.remove(&key);
        }
        return Ok(Action::await_change());
    }
    let namespace = so
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_owned());
    let api: Api<ScaledObject> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer::finalizer(&api, FINALIZER, so, |event| async {
        match event {
            FinalizerEvent::Apply(so) => apply(&ctx, &so).await,
            FinalizerEvent::Cleanup(so) => cleanup(&ctx, &so).await,
        }
    })
    .await
    .map_err(|e| ReconcileError::Finalizer(Box::new(e)))
}

/// How soon to retry after an error.
pub fn error_policy(_so: Arc<ScaledObject>, error: &ReconcileError, _ctx: Arc<Context>) -> Action {
    match error {
        ReconcileError::Check { .. } => Action::requeue(Duration::from_secs(30)),
        ReconcileError::Finalizer(inner)
            if matches!(
                **inner,
                finalizer::Error::ApplyFailed(ReconcileError::Check { .. })
            ) =>
        {
            Action::requeue(Duration::from_secs(30))
        }
        _ => Action::requeue(Duration::from_secs(5)),
    }
}

async fn apply(ctx: &Arc<Context>, so: &ScaledObject) -> Result<Action, ReconcileError> {
    match apply_steps(ctx, so).await {
        Ok(action) => Ok(action),
        Err(error) => {
            let (message, detail) = match &error {
                ReconcileError::Check { message, detail } => (message.clone(), detail.clone()),
                other => ("reconcile failed".to_owned(), other.to_string()),
            };
            let full = format!("{message}: {detail}");
            warn!(error = %full, "reconcile failed");
            let written = ctx
                .status
                .update(so, |status| {
                    status.conditions.set(
                        CONDITION_READY,
                        ConditionStatus::False,
                        "ScaledObjectCheckFailed",
                        &full,
                    );
                    status.conditions.set(
                        CONDITION_ACTIVE,
                        ConditionStatus::Unknown,
                        "UnknownState",
                        "ScaledObject check failed",
                    );
                    no_fallback_without_spec(so, status);
                })
                .await;
            if let Ok((_, true)) = written {
                ctx.events
                    .warning(so, "ScaledObjectCheckFailed", &full)
                    .await;
            }
            Err(error)
        }
    }
}

async fn apply_steps(ctx: &Arc<Context>, so: &ScaledObject) -> Result<Action, ReconcileError> {
    let key = ObjectRef::from_obj(so);
    let was = ctx.status.current(so).await;
    let was_paused = was.conditions.status_of(CONDITION_PAUSED) == ConditionStatus::True;

    if so.needs_to_be_paused_by_annotation() {
        return pause(ctx, so, was_paused).await;
    }
    let unpausing = was_paused && !so.needs_to_pause_scale_in() && !so.needs_to_pause_scale_out();
    let pausing_one_way = so.needs_to_pause_scale_in() || so.needs_to_pause_scale_out();
    if pausing_one_way && !was_paused {
        ctx.events
            .normal(so, "ScaledObjectPaused", MESSAGE_PAUSED)
            .await;
    }
    if unpausing {
        ctx.events
            .normal(
                so,
                "ScaledObjectUnpaused",
                "pause annotation removed for ScaledObject",
            )
            .await;
    }

    if so.spec.scale_target_ref.name.is_empty() {
        return Err(ReconcileError::check(
            "ScaledObject doesn't have correct scaleTargetRef specification",
            "ScaledObject.spec.scaleTargetRef.name is missing",
        ));
    }
    ensure_name_label(ctx, so).await?;
    // Build from the object as it is now labelled, as KEDA does (it updates its copy in place).
    let mut labelled = so.clone();
    labelled
        .metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(
            NAME_LABEL.to_owned(),
            so.metadata.name.clone().unwrap_or_default(),
        );
    let so = &labelled;

    let target = resolve_target(ctx, so).await?;
    let scale = target::read_scale(&ctx.client, &target)
        .await
        .map_err(|e| {
            ReconcileError::check(
                "ScaledObject doesn't have correct scaleTargetRef specification",
                e,
            )
        })?;

    let runtime = ctx.runtimes.entry(&key);
    *lock(&runtime.target) = Some(target.clone());
    let built = {
        let mut slot = runtime.scalers.lock().await;
        match slot
            .as_ref()
            .filter(|s| s.generation == so.metadata.generation)
        {
            Some(existing) => existing.clone(),
            None => {
                let built = scalers::build(&ctx.build_inputs(), so)
                    .await
                    .map_err(|failure| {
                        ReconcileError::check(
                            "ScaledObject doesn't have correct triggers specification",
                            failure,
                        )
                    })?;
                for trigger in &built.triggers {
                    ctx.events
                        .normal(
                            so,
                            "KEDAScalersStarted",
                            &format!("Scaler {} is built", trigger.trigger_type),
                        )
                        .await;
                }
                let built = Arc::new(built);
                *slot = Some(built.clone());
                built
            }
        }
    };

    let specs = built.metric_specs();
    let desired = hpa::desired_hpa(&hpa::HpaInput {
        scaled_object: so,
        target: &target.gvkr,
        target_name: &target.name,
        metrics: &specs,
        operator_version: env!("CARGO_PKG_VERSION"),
    })
    .map_err(|e| {
        ReconcileError::check(
            "failed to ensure HPA is correctly created for ScaledObject",
            e,
        )
    })?;
    let hpa_name = desired
        .metadata
        .name
        .clone()
        .unwrap_or_else(|| so.hpa_name());
    apply_hpa(ctx, so, &desired, &target).await?;
    let names = hpa::metric_names(so, &specs);

    let original = scale.replicas;
    let (_, _) = ctx
        .status
        .update(so, |status| {
            status.scale_target_kind = Some(target.gvkr.gvk_string());
            status.scale_target_gvkr = Some(target.gvkr.clone());
            if status.original_replica_count.is_none() {
                status.original_replica_count = Some(original);
            }
            status.triggers_types =
                Some(distinct(so.spec.triggers.iter().map(|t| t.type_.as_str())));
            let auths = distinct(
                so.spec
                    .triggers
                    .iter()
                    .filter_map(|t| t.authentication_ref.as_ref())
                    .map(|a| a.name.as_str()),
            );
            status.authentications_types = (!auths.is_empty()).then_some(auths);
            status.hpa_name = Some(hpa_name.clone());
            status.external_metric_names = names.external.clone();
            status.resource_metric_names = names.resource.clone();
            status.composite_scaler_name = names.composite.clone();
            status
                .health
                .retain(|metric, _| names.external.iter().any(|n| n == metric));
            status.paused_replica_count = None;
            if pausing_one_way {
                status.conditions.set(
                    CONDITION_PAUSED,
                    ConditionStatus::True,
                    REASON_PAUSED,
                    MESSAGE_PAUSED,
                );
            } else if unpausing {
                status.conditions.set(
                    CONDITION_PAUSED,
                    ConditionStatus::False,
                    "ScaledObjectUnpaused",
                    "pause annotation removed for ScaledObject",
                );
            }
            no_fallback_without_spec(so, status);
            status.conditions.set(
                CONDITION_READY,
                ConditionStatus::True,
                REASON_READY_SUCCESS,
                MESSAGE_READY_SUCCESS,
            );
        })
        .await
        .map_err(ReconcileError::api("writing status"))?;
    if !was
        .conditions
        .get(CONDITION_READY)
        .is_some_and(|c| c.is_true())
    {
        ctx.events
            .normal(so, "ScaledObjectReady", "ScaledObject is ready for scaling")
            .await;
    }
    if let Some(metrics) = &ctx.metrics {
        metrics.set_paused(so, pausing_one_way);
    }
    scale_loop::ensure_running(ctx, so);
    // KEDA does not requeue a successful reconcile: the loop does the periodic work.
    Ok(Action::await_change())
}

/// `paused` or `paused-replicas`: stop the loop, delete the HPA, pin the replicas.
async fn pause(
    ctx: &Arc<Context>,
    so: &ScaledObject,
    was_paused: bool,
) -> Result<Action, ReconcileError> {
    let key = ObjectRef::from_obj(so);
    if !was_paused {
        ctx.status
            .update(so, |status| {
                status.conditions.set(
                    CONDITION_PAUSED,
                    ConditionStatus::True,
                    REASON_PAUSED,
                    MESSAGE_PAUSED,
                );
            })
            .await
            .map_err(ReconcileError::api("writing status"))?;
        ctx.events
            .normal(so, "ScaledObjectPaused", MESSAGE_PAUSED)
            .await;
    }
    ctx.runtimes.remove(&key);
    let namespace = so.metadata.namespace.as_deref().unwrap_or("default");
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(ctx.client.clone(), namespace);
    let hpa_name = ctx
        .status
        .current(so)
        .await
        .hpa_name
        .unwrap_or_else(|| so.hpa_name());
    match hpas.delete(&hpa_name, &DeleteParams::default()).await {
        Ok(_) => info!(hpa = hpa_name, "deleted the HPA of a paused ScaledObject"),
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(source) => {
            return Err(ReconcileError::Api {
                operation: "failed to delete HPA for paused ScaledObject",
                source,
            });
        }
    }
    let paused_replicas = so.paused_replica_count().map_err(|e| {
        ReconcileError::check(
            "failed to scale target to paused replica count",
            format!("failed to parse paused replica count: {e}"),
        )
    })?;
    if let Some(replicas) = paused_replicas {
        let target = resolve_target(ctx, so).await?;
        let scale = target::read_scale(&ctx.client, &target)
            .await
            .map_err(|e| {
                ReconcileError::check("failed to scale target to paused replica count", e)
            })?;
        if scale.replicas != replicas {
            target::write_replicas(&ctx.client, &target, replicas)
                .await
                .map_err(|e| {
                    ReconcileError::check("failed to scale target to paused replica count", e)
                })?;
        }
    }
    ctx.status
        .update(so, |status| {
            status.paused_replica_count = paused_replicas;
            status.conditions.set(
                CONDITION_PAUSED,
                ConditionStatus::True,
                REASON_PAUSED,
                MESSAGE_PAUSED,
            );
            status.conditions.set(
                CONDITION_READY,
                ConditionStatus::True,
                REASON_READY_SUCCESS,
                MESSAGE_PAUSED,
            );
            no_fallback_without_spec(so, status);
        })
        .await
        .map_err(ReconcileError::api("writing status"))?;
    if let Some(metrics) = &ctx.metrics {
        metrics.set_paused(so, true);
    }
    Ok(Action::await_change())
}

async fn resolve_target(ctx: &Context, so: &ScaledObject) -> Result<Target, ReconcileError> {
    let namespace = so.metadata.namespace.as_deref().unwrap_or("default");
    ctx.resolver
        .resolve(&ctx.client, namespace, &so.spec.scale_target_ref)
        .await
        .map_err(|e| {
            ReconcileError::check(
                "ScaledObject doesn't have correct scaleTargetRef specification",
                e,
            )
        })
}

/// KEDA adds `scaledobject.keda.sh/name=<name>` to every ScaledObject.
async fn ensure_name_label(ctx: &Context, so: &ScaledObject) -> Result<(), ReconcileError> {
    let name = so.metadata.name.as_deref().unwrap_or_default();
    let present = so
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(NAME_LABEL))
        .is_some_and(|v| v == name);
    if present {
        return Ok(());
    }
    let namespace = so.metadata.namespace.as_deref().unwrap_or("default");
    let api: Api<ScaledObject> = Api::namespaced(ctx.client.clone(), namespace);
    let patch = serde_json::json!({ "metadata": { "labels": { NAME_LABEL: name } } });
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(ReconcileError::api(
            "failed to update ScaledObject with scaledObjectName label",
        ))?;
    Ok(())
}

/// Creates, adopts, renames or updates the HPA so it matches `desired`, as KEDA does: a new
/// HPA is created, a renamed one deleted and recreated, a changed one replaced whole (so fields
/// a third party added are dropped), with the live resourceVersion as precondition.
async fn apply_hpa(
    ctx: &Context,
    so: &ScaledObject,
    desired: &HorizontalPodAutoscaler,
    target: &Target,
) -> Result<(), ReconcileError> {
    let namespace = so.metadata.namespace.as_deref().unwrap_or("default");
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(ctx.client.clone(), namespace);
    let check = |e: String| {
        ReconcileError::check(
            "failed to ensure HPA is correctly created for ScaledObject",
            e,
        )
    };
    let mut live = api
        .get_opt(&hpa::lookup_name(so))
        .await
        .map_err(ReconcileError::api("reading the HPA"))?;
    if let Some(found) = live.as_ref().filter(|found| hpa::is_renamed(so, found)) {
        let old = found.metadata.name.clone().unwrap_or_default();
        match api.delete(&old, &DeleteParams::default()).await {
            Ok(_) => info!(hpa = old, "deleted the HPA under its previous name"),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(source) => {
                return Err(ReconcileError::Api {
                    operation: "deleting the renamed HPA",
                    source,
                });
            }
        }
        live = None;
    }
    let name = desired.metadata.name.clone().unwrap_or_default();
    if live.is_none() {
        // The desired name may still hold an HPA (renamed back, or someone else's).
        live = api
            .get_opt(&name)
            .await
            .map_err(ReconcileError::api("reading the HPA"))?;
    }
    let operation = match &live {
        None => {
            api.create(&PostParams::default(), desired)
                .await
                .map_err(ReconcileError::api(
                    "failed to ensure HPA is correctly created for ScaledObject",
                ))?;
            "create"
        }
        Some(live) => {
            match hpa::adoption(live, so, &target.gvkr) {
                hpa::Adoption::Owned if !hpa::needs_update(desired, live) => return Ok(()),
                hpa::Adoption::Owned | hpa::Adoption::Adopt => {}
                hpa::Adoption::Conflict(reason) => return Err(check(reason)),
            }
            tracing::debug!(
                desired = %serde_json::to_string(desired).unwrap_or_default(),
                live = %serde_json::to_string(live).unwrap_or_default(),
                "the HPA differs"
            );
            let mut replacement = desired.clone();
            replacement.metadata.resource_version = live.metadata.resource_version.clone();
            replacement.status = live.status.clone();
            api.replace(&name, &PostParams::default(), &replacement)
                .await
                .map_err(ReconcileError::api("failed to update HPA"))?;
            "update"
        }
    };
    if let Some(metrics) = &ctx.metrics {
        metrics.record_hpa_write(so, operation);
    }
    info!(hpa = name, operation, "HPA written");
    Ok(())
}

/// Finalizer: stop the loop, restore the original replica count if asked, record the event.
async fn cleanup(ctx: &Arc<Context>, so: &ScaledObject) -> Result<Action, ReconcileError> {
    let key = ObjectRef::from_obj(so);
    ctx.runtimes.remove(&key);
    let status = ctx.status.current(so).await;
    if so.restore_to_original_replica_count()
        && let (Some(gvkr), Some(original)) = (
            status.scale_target_gvkr.clone(),
            status.original_replica_count,
        )
    {
        let target = Target {
            gvkr,
            namespace: so
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".to_owned()),
            name: so.spec.scale_target_ref.name.clone(),
        };
        match target::write_replicas(&ctx.client, &target, original).await {
            Ok(()) => info!(
                replicas = original,
                "restored the target's original replica count"
            ),
            Err(error) => warn!(error = %error, "restoring the original replica count failed"),
        }
    }
    ctx.status.forget(&key);
    if let Some(metrics) = &ctx.metrics {
        metrics.forget(so);
    }
    ctx.events
        .warning(so, "ScaledObjectDeleted", "ScaledObject was deleted")
        .await;
    Ok(Action::await_change())
}

/// KEDA sets Fallback=False whenever no fallback is configured.
fn no_fallback_without_spec(so: &ScaledObject, status: &mut crate::crd::ScaledObjectStatus) {
    if so.spec.fallback.is_none() {
        status.conditions.set(
            CONDITION_FALLBACK,
            ConditionStatus::False,
            "NoFallbackFound",
            "No fallbacks are active on this scaled object",
        );
    }
}

/// KEDA's comma-joined unique values, in order.
fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for value in values {
        if !seen.contains(&value) {
            seen.push(value);
        }
    }
    seen.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_keeps_first_occurrence_order() {
        assert_eq!(
            distinct(["prometheus", "cron", "prometheus"].into_iter()),
            "prometheus,cron"
        );
        assert_eq!(distinct(std::iter::empty()), "");
    }
}
