//! The per-ScaledObject scale loop (keda-spec §2.4–§2.6): every `pollingInterval`, or at once
//! when a push source reports activity, evaluate every trigger, publish the result for the
//! metrics API, and — on the leader only — apply KEDA's 0 ↔ min decision through `/scale`, emit
//! its events and write the status if anything changed.
//!
//! `status.lastActiveTime` is kept fresh in memory on every replica (each one evaluates every
//! object) and written only when the Active condition changes or it was never written, so an
//! object that stays active costs no status write per poll (KEDA writes one). Cooldown uses the
//! later of the memory and the written value, so a standby that takes over measures cooldown
//! from what it observed itself, not from the last transition.
//!
//! Loops of objects that existed before the operator started begin after a delay spread over
//! the first polling interval (by a hash of the object's key), so a restart does not poll every
//! backend at once; a new object or a spec change polls at once, as KEDA does. The period
//! is measured from the start of one poll to the next, so slow backends do not drift the
//! schedule.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::FutureExt;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::runtime::reflector::ObjectRef;
use scaler_core::activity;
use scaler_core::decision::{self, TargetRef};
use scaler_core::fallback;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::Context;
use super::evaluate::{self, Evaluation};
use super::runtime::{ObjectRuntime, lock};
use super::scalers::{self, ObjectScalers};
use super::target::{self, Target};
use crate::crd::conditions::{
    CONDITION_ACTIVE, CONDITION_FALLBACK, CONDITION_HPA_ACTIVE, CONDITION_PAUSED, CONDITION_READY,
};
use crate::crd::{
    ConditionStatus, HealthStatus, HealthStatusType, ScaledObject, TriggerActivityStatus,
};

/// Loops started within this long of the operator's start get a start delay.
const STARTUP_WINDOW: Duration = Duration::from_secs(60);
/// The longest start delay.
const MAX_START_JITTER: Duration = Duration::from_secs(30);

/// Starts (or restarts, on a new generation) the loop of `so`, unless it already runs.
pub fn ensure_running(ctx: &Arc<Context>, so: &ScaledObject) {
    let key = ObjectRef::from_obj(so);
    let runtime = ctx.runtimes.entry(&key);
    let generation = so.metadata.generation;
    if runtime.runs_generation(generation) {
        return;
    }
    // A new generation gets new scalers, as KEDA's scalers cache is keyed by generation.
    if let Ok(mut scalers) = runtime.scalers.try_lock()
        && scalers.as_ref().is_some_and(|s| s.generation != generation)
    {
        *scalers = None;
    }
    // Objects that existed before this process started are spread over their first interval;
    // an object created since (or a spec change) polls at once.
    let existed_before_start = so
        .metadata
        .creation_timestamp
        .as_ref()
        .and_then(|t| crate::time::to_chrono(&t.0))
        // Timestamps have whole seconds: only a creation a full second earlier is surely older.
        .is_some_and(|created| created + chrono::Duration::seconds(1) < ctx.started_at);
    let first_loop = runtime.loop_generation_is_unset();
    let delay = if existed_before_start && first_loop && ctx.started.elapsed() < STARTUP_WINDOW {
        start_jitter(&key, so.polling_interval_seconds())
    } else {
        Duration::ZERO
    };
    let task = tokio::spawn(run(ctx.clone(), runtime.clone(), delay));
    runtime.set_task(generation, task);
}

/// A stable delay in `[0, min(pollingInterval, 30 s))` derived from the object's key.
fn start_jitter(key: &ObjectRef<ScaledObject>, polling_interval_seconds: i32) -> Duration {
    let spread = Duration::from_secs(u64::try_from(polling_interval_seconds.max(1)).unwrap_or(30))
        .min(MAX_START_JITTER);
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    let millis = u64::try_from(spread.as_millis()).unwrap_or(30_000).max(1);
    Duration::from_millis(hasher.finish() % millis)
}

async fn run(ctx: Arc<Context>, runtime: Arc<ObjectRuntime>, delay: Duration) {
    let mut push_tasks = JoinSet::new();
    let mut subscribed_for: Option<usize> = None;
    if !delay.is_zero() {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = runtime.kicked() => {}
        }
    }
    loop {
        let Some(so) = ctx.scaled_objects.get(&runtime.key) else {
            debug!(object = %runtime.key, "scaled object gone; loop ends");
            ctx.runtimes.remove(&runtime.key);
            return;
        };
        let interval =
            Duration::from_secs(u64::try_from(so.polling_interval_seconds().max(1)).unwrap_or(30));
        *lock(&runtime.interval) = interval;
        let next = tokio::time::Instant::now() + interval;
        // Boxed: the poll's large state exists only while polling, not while the loop sleeps.
        let scalers = Box::pin(poll(&ctx, &runtime, &so)).await;
        // Subscribe push sources once per scaler set: `true` asks for a poll now.
        if let Some(scalers) = scalers {
            let identity = Arc::as_ptr(&scalers) as usize;
            if subscribed_for != Some(identity) {
                push_tasks.abort_all();
                subscribe_push(&ctx, &mut push_tasks, &scalers, &runtime);
                subscribed_for = Some(identity);
            }
        }
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = runtime.kicked() => {}
        }
    }
}

fn subscribe_push(
    ctx: &Arc<Context>,
    tasks: &mut JoinSet<()>,
    scalers: &ObjectScalers,
    runtime: &Arc<ObjectRuntime>,
) {
    for trigger in &scalers.triggers {
        let Some(push) = trigger.scaler.as_push() else {
            continue;
        };
        if let Some(mut changes) = push.metric_spec_changes() {
            // New specs (KEDA's StreamMetricSpec): rebuild the scalers, which ask for the specs
            // again, and reconcile so the HPA follows at once.
            let weak = Arc::downgrade(runtime);
            let reconcile = ctx.spec_changed.clone();
            tasks.spawn(async move {
                while changes.next().await.is_some() {
                    let Some(runtime) = weak.upgrade() else {
                        return;
                    };
                    debug!(object = %runtime.key, "pushed metric specs changed");
                    *runtime.scalers.lock().await = None;
                    if reconcile.unbounded_send(runtime.key.clone()).is_err() {
                        return;
                    }
                }
            });
        }
        let mut stream = push.activity_stream();
        let weak = Arc::downgrade(runtime);
        tasks.spawn(async move {
            while let Some(event) = stream.next().await {
                let Some(runtime) = weak.upgrade() else {
                    return;
                };
                debug!(object = %runtime.key, event = ?event, "pushed activity");
                if let Ok(true) = event {
                    runtime.push_active();
                }
            }
        });
    }
}

/// Builds the scalers if needed (a new generation, or after an error).
async fn scalers_for(
    ctx: &Arc<Context>,
    runtime: &ObjectRuntime,
    so: &ScaledObject,
) -> Option<Arc<ObjectScalers>> {
    let mut slot = runtime.scalers.lock().await;
    if let Some(existing) = slot
        .as_ref()
        .filter(|s| s.generation == so.metadata.generation)
    {
        return Some(existing.clone());
    }
    match scalers::build(&ctx.build_inputs(), so).await {
        Ok(built) => {
            let built = Arc::new(built);
            *slot = Some(built.clone());
            Some(built)
        }
        Err(failure) => {
            warn!(object = %runtime.key, error = %failure, "building scalers failed");
            None
        }
    }
}

/// The target, from reconcile's resolution or resolved now.
async fn target_of(ctx: &Context, runtime: &ObjectRuntime, so: &ScaledObject) -> Option<Target> {
    if let Some(target) = lock(&runtime.target).clone() {
        return Some(target);
    }
    let namespace = so.metadata.namespace.as_deref().unwrap_or("default");
    let target = ctx
        .resolver
        .resolve(&ctx.client, namespace, &so.spec.scale_target_ref)
        .await
        .ok()?;
    *lock(&runtime.target) = Some(target.clone());
    Some(target)
}

/// One poll. Returns the scalers used, for push subscriptions.
async fn poll(
    ctx: &Arc<Context>,
    runtime: &Arc<ObjectRuntime>,
    so: &Arc<ScaledObject>,
) -> Option<Arc<ObjectScalers>> {
    if so.metadata.deletion_timestamp.is_some() || so.needs_to_be_paused_by_annotation() {
        return None;
    }
    let scalers = scalers_for(ctx, runtime, so).await?;
    let leader = ctx.is_leader();
    let target = target_of(ctx, runtime, so).await;
    let fallback_needs_replicas = so.spec.fallback.is_some();
    let scale = match (&target, leader || fallback_needs_replicas) {
        (Some(target), true) => Some(target::read_scale(&ctx.client, target).await),
        _ => None,
    };
    let current_replicas = scale
        .as_ref()
        .and_then(|s| s.as_ref().ok())
        .map(|s| s.replicas);
    let selector = scale
        .as_ref()
        .and_then(|s| s.as_ref().ok())
        .and_then(|s| s.selector.clone());
    let namespace = so
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_owned());
    let client = ctx.client.clone();
    let ready_pods =
        move || count_ready_pods(client.clone(), namespace.clone(), selector.clone()).boxed();
    let pushed_active = runtime.take_pushed_active();
    let previous_health = lock(&runtime.health).clone();
    let now = Utc::now();
    debug!(object = %runtime.key, leader, replicas = ?current_replicas, "sampling");
    let evaluation = evaluate::evaluate(
        so,
        &scalers,
        &previous_health,
        current_replicas,
        &ready_pods,
        now,
    )
    .await;
    let mut evaluation = evaluation;
    if pushed_active && !evaluation.activity.active {
        // KEDA's push path: a pushed `true` requests the scale as active (and not failed),
        // whatever the last sample said; deactivation goes through normal polling.
        evaluation.activity.active = true;
        evaluation.activity.error = false;
        evaluation.activity.active_metrics = evaluation
            .readings
            .iter()
            .filter(|r| r.trigger_type == "external-push")
            .map(|r| r.metric.name.clone())
            .collect();
    }
    debug!(object = %runtime.key, active = evaluation.activity.active, error = evaluation.activity.error, pushed_active, "evaluated");
    *lock(&runtime.health) = evaluation.health.clone();
    if let Some(metrics) = &ctx.metrics {
        metrics.record_evaluation(so, &evaluation);
    }
    if evaluation.any_error() {
        // KEDA discards the whole scaler set after an error; the next poll rebuilds it,
        // re-reading Secrets and env.
        let mut slot = runtime.scalers.lock().await;
        if slot.as_ref().is_some_and(|s| Arc::ptr_eq(s, &scalers)) {
            *slot = None;
        }
    }
    runtime.publish(evaluation.clone());
    if leader && let Some(target) = target {
        act(
            ctx,
            runtime,
            so,
            &target,
            scale.and_then(Result::ok).map(|s| s.replicas),
            &evaluation,
        )
        .await;
    } else if evaluation.activity.active && !evaluation.activity.error {
        // A standby tracks activity too, so it can take over without shortening a cooldown.
        *lock(&runtime.last_active) = Some(evaluation.at);
    }
    Some(scalers)
}

async fn count_ready_pods(
    client: kube::Client,
    namespace: String,
    selector: Option<String>,
) -> Option<i32> {
    let selector = selector?;
    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .ok()?;
    let ready = list
        .items
        .iter()
        .filter(|pod| {
            let status = pod.status.as_ref();
            status.and_then(|s| s.phase.as_deref()) == Some("Running")
                && status
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .count();
    i32::try_from(ready).ok()
}

/// The leader's half of a poll: decide, scale, record events, write status.
async fn act(
    ctx: &Arc<Context>,
    runtime: &ObjectRuntime,
    so: &ScaledObject,
    target: &Target,
    current_replicas: Option<i32>,
    evaluation: &Evaluation,
) {
    let now = evaluation.at;
    let status = ctx.status.current(so).await;
    let Some(current) = current_replicas else {
        let message = "Error getting current replicas count for ScaleTarget".to_owned();
        let result = ctx
            .status
            .update(so, |status| {
                status.conditions.set(
                    CONDITION_READY,
                    ConditionStatus::False,
                    "ErrorGettingCurrentReplicas",
                    &message,
                );
            })
            .await;
        if let Err(error) = result {
            warn!(error = %error, "writing status failed");
        }
        return;
    };
    let activity = &evaluation.activity;
    // Fallback (de)activation events, against the condition as last written.
    let fallback_was_active =
        status.conditions.status_of(CONDITION_FALLBACK) == ConditionStatus::True;
    if activity.fallback_active != fallback_was_active && evaluation.fallback_configured {
        let (reason, message) = if activity.fallback_active {
            (
                "ScaledObjectFallbackActivated",
                "ScaledObject fallback is active",
            )
        } else {
            (
                "ScaledObjectFallbackDeactivated",
                "ScaledObject fallback is no longer active",
            )
        };
        ctx.events.normal(so, reason, message).await;
    }
    for (metric, error) in &activity.errors {
        let reason = if so.is_using_modifiers() {
            "KEDAMetricSourceFailed"
        } else {
            "KEDAScalerFailed"
        };
        ctx.events
            .warning(so, reason, &format!("{metric}: {}", error.message))
            .await;
    }

    let last_active_time = status
        .last_active_time
        .as_ref()
        .and_then(|t| crate::time::to_chrono(&t.0))
        .max(*lock(&runtime.last_active));
    let input = so.decision_input(
        activity,
        current,
        last_active_time,
        TargetRef {
            kind: target.kind_string(),
            namespace: target.namespace.clone(),
            name: target.name.clone(),
        },
    );
    let decided = decision::decide(&input, now);
    let mut last_active_time = decided.last_active_time;
    if let Some(to) = decided.scale_to
        && to != current
    {
        match target::write_replicas(&ctx.client, target, to).await {
            Ok(()) => {
                info!(object = %ObjectRef::from_obj(so), from = current, to, action = ?decided.action, "scaled target");
                if let Some(metrics) = &ctx.metrics {
                    metrics.record_scale(so, current, to);
                }
                if let Some(events) = &decided.events {
                    ctx.events.engine(so, &events.on_success).await;
                }
            }
            Err(error) => {
                warn!(object = %ObjectRef::from_obj(so), error = %error, "scaling target failed");
                if decided.action == decision::Action::Activate {
                    last_active_time = None;
                }
                if let Some(events) = &decided.events {
                    ctx.events.engine(so, &events.on_failure).await;
                }
            }
        }
    }
    if let Some(time) = last_active_time {
        *lock(&runtime.last_active) = Some(time);
    }
    // Written on transitions only: when the Active condition changes, or when never written.
    let active_changes = decided.active.as_ref().is_some_and(|active| {
        status.conditions.status_of(CONDITION_ACTIVE) != active.status.into_crd()
    });
    let write_last_active = (active_changes || status.last_active_time.is_none())
        .then(|| *lock(&runtime.last_active))
        .flatten();
    let hpa_active = hpa_active_condition(ctx, so, &status);
    let external_names: Vec<_> = evaluation
        .readings
        .iter()
        .map(|r| r.metric.name.clone())
        .collect();
    let triggers_activity = activity::triggers_activity(&external_names, activity);
    let fallback_spec = evaluate::engine_fallback(so);
    let fallback_condition = fallback::condition(
        fallback_spec
            .as_ref()
            .filter(|_| evaluation.fallback_configured),
        evaluation.health.values(),
    );
    let result = ctx
        .status
        .update(so, |status| {
            status.conditions.set(
                CONDITION_READY,
                decided.ready.status.into_crd(),
                decided.ready.reason,
                &decided.ready.message,
            );
            if let Some(active) = &decided.active {
                status.conditions.set(
                    CONDITION_ACTIVE,
                    active.status.into_crd(),
                    active.reason,
                    &active.message,
                );
            }
            if let Some(paused) = &decided.paused {
                status.conditions.set(
                    CONDITION_PAUSED,
                    paused.status.into_crd(),
                    paused.reason,
                    &paused.message,
                );
            }
            status.conditions.set(
                CONDITION_FALLBACK,
                fallback_condition.status.into_crd(),
                fallback_condition.reason,
                &fallback_condition.message,
            );
            if let Some((status_value, reason, message)) = &hpa_active {
                status
                    .conditions
                    .set(CONDITION_HPA_ACTIVE, *status_value, reason, message);
            }
            if let Some(time) = write_last_active {
                status.last_active_time = Some(crate::time::to_k8s(time));
            }
            status.triggers_activity = triggers_activity
                .iter()
                .map(|(name, active)| {
                    (
                        name.to_string(),
                        TriggerActivityStatus { is_active: *active },
                    )
                })
                .collect();
            if evaluation.fallback_configured {
                status.health = evaluation
                    .health
                    .iter()
                    .map(|(name, health)| {
                        (
                            name.to_string(),
                            HealthStatus {
                                number_of_failures: Some(health.number_of_failures),
                                status: Some(match health.status {
                                    fallback::HealthStatus::Happy => HealthStatusType::Happy,
                                    fallback::HealthStatus::Failing => HealthStatusType::Failing,
                                }),
                            },
                        )
                    })
                    .collect();
            }
        })
        .await;
    if let Err(error) = result {
        warn!(object = %ObjectRef::from_obj(so), error = %error, "writing status failed");
    }
}

/// KEDA's `getHPAHealth`: the HPA's `ScalingActive` condition, mirrored; `None` leaves
/// `HPAActive` as it is.
fn hpa_active_condition(
    ctx: &Context,
    so: &ScaledObject,
    status: &crate::crd::ScaledObjectStatus,
) -> Option<(ConditionStatus, String, String)> {
    let name = status.hpa_name.as_deref()?;
    let namespace = so.metadata.namespace.as_deref().unwrap_or("default");
    let hpa = ctx.hpas.get(&ObjectRef::new(name).within(namespace))?;
    let condition = hpa
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "ScalingActive")?
        .clone();
    Some(if condition.status == "True" {
        (
            ConditionStatus::True,
            "HPAActive".to_owned(),
            "HPA is actively scaling".to_owned(),
        )
    } else if condition.reason.as_deref() == Some("ScalingDisabled") {
        (
            ConditionStatus::True,
            "ScalingDisabled".to_owned(),
            condition.message.unwrap_or_default(),
        )
    } else {
        (
            ConditionStatus::False,
            condition
                .reason
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "HPAMetricsUnavailable".to_owned()),
            format!(
                "HPA is not actively scaling: {}",
                condition.message.unwrap_or_default()
            ),
        )
    })
}

/// The engine's and the CRD's condition status are the same three values.
trait IntoCrd {
    fn into_crd(self) -> ConditionStatus;
}

impl IntoCrd for scaler_core::decision::ConditionStatus {
    fn into_crd(self) -> ConditionStatus {
        match self {
            Self::True => ConditionStatus::True,
            Self::False => ConditionStatus::False,
            Self::Unknown => ConditionStatus::Unknown,
        }
    }
}
