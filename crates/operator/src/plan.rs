//! `windlass plan`: sample every trigger of the ScaledObjects in a manifest set and show what
//! Windlass (0 ↔ min, idle, cooldown) and the HPA (1 ↔ max) would do.
//!
//! The state a real cluster would hold comes from flags: the target's current replicas
//! (`--current-replicas`, else the target manifest's `spec.replicas`, else 1), the last active
//! time (`--last-active`, else the manifest's `status.lastActiveTime`), the clock (`--at`).
//! With `--watch` the plan repeats every `pollingInterval` and carries its own state forward:
//! the replicas it decided, the last active time and the HPA's recommendation history.

use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use scaler_core::activity::{self, MetricOutcome, MetricResult, TriggerKind, TriggerOutcome};
use scaler_core::decision::{self, Action, TargetRef};
use scaler_core::hpa;
use scaler_core::metric::ExternalMetric;
use scaler_core::{MetricSpec, Sample, SampleRequest, ScalerError};
use serde::Serialize;

use crate::cli::{OutputFormat, PlanArgs};
use crate::manifest::ManifestSet;
use crate::prepare::{self, PreparedObject, PreparedTrigger};
use crate::resolve::ResolveOptions;

/// One trigger's sample in `-o json`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerPlan {
    pub index: usize,
    #[serde(rename = "type")]
    pub trigger_type: String,
    pub metric_name: Option<String>,
    pub value: Option<f64>,
    pub target: Option<f64>,
    pub metric_type: Option<String>,
    pub active: Option<bool>,
    /// What the HPA would want for this metric alone.
    pub proposed_replicas: Option<i32>,
    pub error: Option<String>,
}

/// Windlass's own 0 ↔ min decision.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionPlan {
    /// KEDA's branch, e.g. `Activate`, `CoolingDown`, `Deactivate`, `KeepActive`.
    pub action: String,
    /// The replica count Windlass itself would write through `/scale`.
    pub scale_to: Option<i32>,
    /// Seconds until the scale-in, while cooling down.
    pub cooldown_remaining_seconds: Option<i64>,
    /// The Active condition's reason.
    pub reason: Option<String>,
}

/// One ScaledObject's plan in `-o json`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectPlan {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub active: bool,
    pub current_replicas: i32,
    /// The replica count the target ends up with: Windlass's decision, then the HPA's.
    pub desired_replicas: i32,
    /// What the HPA would set; `None` while the target is at zero (the HPA is then disabled).
    pub hpa_replicas: Option<i32>,
    /// The highest per-metric proposal.
    pub max_proposed_replicas: Option<i32>,
    pub decision: DecisionPlan,
    pub triggers: Vec<TriggerPlan>,
    /// Why the object cannot be planned (it is invalid: see `windlass check`).
    pub errors: Vec<String>,
}

/// What one ScaledObject carries from one `--watch` round to the next.
#[derive(Clone, Debug, Default)]
struct ObjectState {
    current_replicas: i32,
    last_active_time: Option<DateTime<Utc>>,
    /// The HPA's memory: past recommendations and scale events.
    hpa_recommendations: Vec<hpa::Recommendation>,
    hpa_scale_ups: Vec<hpa::ScaleEvent>,
    hpa_scale_downs: Vec<hpa::ScaleEvent>,
}

/// Runs `windlass plan`.
pub async fn run(args: &PlanArgs) -> ExitCode {
    let set = match ManifestSet::load(&args.manifests.files) {
        Ok(set) => set,
        Err(error) => {
            eprintln!("windlass plan: {error}");
            return ExitCode::from(2);
        }
    };
    for warning in set.warnings() {
        eprintln!("windlass plan: warning: {warning}");
    }
    let registry = scalers::builtin_registry();
    let context = scalers::ScalerContext::default();
    let objects = prepare::prepare_all(&set, &registry, &context, &ResolveOptions::default());
    if objects.is_empty() {
        eprintln!(
            "windlass plan: no ScaledObject (apiVersion keda.sh/v1alpha1) in the given manifests"
        );
        return ExitCode::from(2);
    }
    let now = args.at.unwrap_or_else(Utc::now);
    // One state per document: a repeated ScaledObject must not inherit another copy's state.
    let mut states: Vec<ObjectState> = objects
        .iter()
        .map(|object| initial_state(object, &set, args, now))
        .collect();

    if !args.watch {
        let plans = plan_round(&objects, &mut states, now).await;
        print_plans(&plans, args.output);
        return if plans.iter().all(|p| p.errors.is_empty()) {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }

    let interval = objects
        .iter()
        .filter_map(|o| o.scaled_object.as_ref())
        .map(|so| so.polling_interval_seconds().max(1))
        .min()
        .unwrap_or(30);
    let started = Utc::now();
    loop {
        let now = args
            .at
            .map_or_else(Utc::now, |at| at + (Utc::now() - started));
        let plans = plan_round(&objects, &mut states, now).await;
        if args.output == OutputFormat::Text {
            // Redraw in place: cursor home, clear screen.
            crate::cli::emit(&format!(
                "\x1b[H\x1b[2Jwindlass plan --watch: every {interval}s, at {} (Ctrl-C to stop)\n\n",
                now.to_rfc3339()
            ));
        }
        print_plans(&plans, args.output);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(u64::try_from(interval).unwrap_or(30))) => {}
            _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
        }
    }
}

fn initial_state(
    object: &PreparedObject,
    set: &ManifestSet,
    args: &PlanArgs,
    now: DateTime<Utc>,
) -> ObjectState {
    let manifest_replicas = object.scaled_object.as_ref().and_then(|so| {
        let target = &so.spec.scale_target_ref;
        let group = target
            .api_version_or_default()
            .rsplit_once('/')
            .map(|(g, _)| g)
            .unwrap_or_default();
        set.find(
            group,
            target.kind_or_default(),
            Some(&object.namespace),
            &target.name,
        )
        .and_then(|doc| doc.value.pointer("/spec/replicas"))
        .and_then(serde_json::Value::as_i64)
        .and_then(|r| i32::try_from(r).ok())
    });
    let status_last_active = object
        .scaled_object
        .as_ref()
        .and_then(|so| so.status.as_ref())
        .and_then(|status| status.last_active_time.as_ref())
        .and_then(|time| crate::time::to_chrono(&time.0));
    ObjectState {
        current_replicas: args.current_replicas.or(manifest_replicas).unwrap_or(1),
        last_active_time: args.last_active.map(|ago| now - ago).or(status_last_active),
        ..ObjectState::default()
    }
}

async fn plan_round(
    objects: &[PreparedObject],
    states: &mut [ObjectState],
    now: DateTime<Utc>,
) -> Vec<ObjectPlan> {
    join_all(
        objects
            .iter()
            .zip(states.iter_mut())
            .map(|(object, state)| plan_object(object, state, now)),
    )
    .await
}

/// Samples one ScaledObject's triggers and decides, updating `state` for the next round.
async fn plan_object(
    object: &PreparedObject,
    state: &mut ObjectState,
    now: DateTime<Utc>,
) -> ObjectPlan {
    let mut plan = ObjectPlan {
        kind: "ScaledObject",
        namespace: object.namespace.clone(),
        name: object.name.clone(),
        active: false,
        current_replicas: state.current_replicas,
        desired_replicas: state.current_replicas,
        hpa_replicas: None,
        max_proposed_replicas: None,
        decision: DecisionPlan {
            action: "NoChange".into(),
            scale_to: None,
            cooldown_remaining_seconds: None,
            reason: None,
        },
        triggers: Vec::new(),
        errors: Vec::new(),
    };
    let Some(so) = object.scaled_object.as_ref().filter(|_| object.is_valid()) else {
        plan.errors = object.errors.iter().map(ToString::to_string).collect();
        for trigger in &object.triggers {
            plan.errors.extend(
                trigger
                    .errors
                    .iter()
                    .map(|e| format!("trigger {}: {e}", trigger.index)),
            );
        }
        if plan.errors.is_empty() {
            plan.errors
                .push("the ScaledObject is invalid: run `windlass check` for details".into());
        }
        return plan;
    };

    let behavior = so
        .spec
        .advanced
        .as_ref()
        .and_then(|a| a.horizontal_pod_autoscaler_config.as_ref())
        .and_then(|h| h.behavior.as_ref())
        .map(crate::hpa_behavior::to_engine);

    // Sample every trigger at once, as KEDA does: one slow backend must not delay the others.
    let sampled = join_all(
        object
            .triggers
            .iter()
            .map(|trigger| sample_trigger(trigger, now)),
    )
    .await;
    let tolerances = hpa::Tolerances::for_behavior(behavior.as_ref());
    let mut outcomes = Vec::with_capacity(sampled.len());
    let mut hpa_metrics = Vec::new();
    for trigger in sampled {
        plan.triggers.extend(trigger.notes);
        let mut metrics = Vec::with_capacity(trigger.samples.len());
        for (metric, result) in trigger.samples {
            let mut row = TriggerPlan {
                index: trigger.index,
                trigger_type: trigger.trigger_type.clone(),
                metric_name: Some(metric.name.to_string()),
                value: None,
                target: Some(metric.target),
                metric_type: Some(metric.target_type.to_string()),
                active: None,
                proposed_replicas: None,
                error: None,
            };
            // A failed metric reaches the HPA too: it does not scale down while one fails.
            let mut reading = hpa::MetricReading {
                target_type: metric.target_type,
                target: metric.target,
                value: None,
            };
            let result = match result {
                Ok(sample) => {
                    let value = scaler_core::metric::to_milli_precision(sample.value);
                    row.value = Some(value);
                    row.active = Some(sample.active);
                    row.proposed_replicas = Some(hpa::proposed_replicas(
                        &metric,
                        value,
                        hpa::TargetReplicas::settled(state.current_replicas.max(1)),
                        tolerances,
                    ));
                    reading.value = Some(value);
                    MetricResult::Sample(sample)
                }
                Err(error) => {
                    row.error = Some(error.message.clone());
                    MetricResult::Error(error)
                }
            };
            hpa_metrics.push(reading);
            metrics.push(MetricOutcome {
                name: metric.name.clone(),
                result,
            });
            plan.triggers.push(row);
        }
        outcomes.push(TriggerOutcome {
            kind: trigger.kind,
            metrics,
        });
    }
    plan.max_proposed_replicas = plan
        .triggers
        .iter()
        .filter_map(|t| t.proposed_replicas)
        .max();

    let activity = activity::evaluate(&outcomes, None);
    plan.active = activity.active || so.needs_to_force_activation();
    let input = so.decision_input(
        &activity,
        state.current_replicas,
        state.last_active_time,
        TargetRef {
            kind: format!(
                "{}.{}",
                so.spec.scale_target_ref.api_version_or_default(),
                so.spec.scale_target_ref.kind_or_default()
            ),
            namespace: object.namespace.clone(),
            name: so.spec.scale_target_ref.name.clone(),
        },
    );
    let decided = decision::decide(&input, now);
    plan.decision = DecisionPlan {
        action: format!("{:?}", decided.action),
        scale_to: decided.scale_to,
        cooldown_remaining_seconds: decided.cooldown_remaining.map(|d| d.num_seconds()),
        reason: decided.active.as_ref().map(|c| c.reason.to_string()),
    };
    if let Some(time) = decided.last_active_time {
        state.last_active_time = Some(time);
    }

    // Windlass moves the target between 0/idle and min; the HPA takes it from there.
    let after_windlass = decided.scale_to.unwrap_or(state.current_replicas);
    if decided.action == Action::Paused {
        plan.desired_replicas = so
            .paused_replica_count()
            .ok()
            .flatten()
            .unwrap_or(state.current_replicas);
    } else if after_windlass == 0 || hpa_metrics.is_empty() && !activity.active {
        plan.desired_replicas = after_windlass;
    } else {
        let input = hpa::HpaInput {
            metrics: hpa_metrics,
            replicas: hpa::TargetReplicas::settled(after_windlass),
            min_replicas: so.hpa_min_replicas(),
            max_replicas: so.hpa_max_replicas(),
            behavior,
            recommendations: state.hpa_recommendations.clone(),
            scale_up_events: state.hpa_scale_ups.clone(),
            scale_down_events: state.hpa_scale_downs.clone(),
            downscale_stabilization_seconds: hpa::DEFAULT_SCALE_DOWN_STABILIZATION_SECONDS,
        };
        let recommended = hpa::recommend(&input, now);
        if let Some(record) = recommended.record {
            state.hpa_recommendations.push(record);
        }
        match recommended.scale_event {
            Some((true, event)) => state.hpa_scale_ups.push(event),
            Some((false, event)) => state.hpa_scale_downs.push(event),
            None => {}
        }
        plan.hpa_replicas = Some(recommended.desired_replicas);
        plan.desired_replicas = recommended.desired_replicas;
    }
    state.current_replicas = plan.desired_replicas;
    plan
}

/// What one trigger's scaler answered in one round.
struct SampledTrigger {
    index: usize,
    trigger_type: String,
    kind: TriggerKind,
    /// Each external metric with its sample.
    samples: Vec<(ExternalMetric, Result<Sample, ScalerError>)>,
    /// Rows for what has no sample: resource metrics, or metrics the backend did not name.
    notes: Vec<TriggerPlan>,
}

/// Samples every external metric of one trigger (asking the backend for their names first
/// when only it knows them, as external scalers do).
async fn sample_trigger(trigger: &PreparedTrigger, now: DateTime<Utc>) -> SampledTrigger {
    let mut sampled = SampledTrigger {
        index: trigger.index,
        trigger_type: trigger.trigger_type.clone(),
        kind: TriggerKind::of(&trigger.trigger_type),
        samples: Vec::new(),
        notes: Vec::new(),
    };
    let note = |metric_name: Option<String>, error: String| TriggerPlan {
        index: trigger.index,
        trigger_type: trigger.trigger_type.clone(),
        metric_name,
        value: None,
        target: None,
        metric_type: None,
        active: None,
        proposed_replicas: None,
        error: Some(error),
    };
    let Some(scaler) = &trigger.scaler else {
        sampled
            .notes
            .push(note(None, "the trigger could not be built".into()));
        return sampled;
    };
    let mut specs = trigger.metric_specs();
    if specs.is_empty() {
        match scaler.live_metric_specs().await {
            Ok(live) => specs = live,
            Err(error) => {
                sampled.notes.push(note(None, error.message));
                return sampled;
            }
        }
    }
    if specs.is_empty() {
        sampled.notes.push(note(
            None,
            ScalerError::unsupported(&trigger.trigger_type).message,
        ));
    }
    for spec in specs {
        match spec {
            MetricSpec::External(metric) => {
                let result = scaler
                    .sample(SampleRequest {
                        metric: &metric.name,
                        now,
                    })
                    .await;
                sampled.samples.push((metric, result));
            }
            MetricSpec::Resource(_) => sampled.notes.push(note(
                Some(trigger.trigger_type.clone()),
                "read by the HPA from the resource metrics API; never activates".into(),
            )),
        }
    }
    sampled
}

fn print_plans(plans: &[ObjectPlan], output: OutputFormat) {
    match output {
        OutputFormat::Json => match serde_json::to_string_pretty(plans) {
            Ok(json) => crate::cli::emit(&format!("{json}\n")),
            Err(error) => eprintln!("windlass plan: {error}"),
        },
        OutputFormat::Text => crate::cli::emit(&render_text(plans)),
    }
}

fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v}"))
}

/// The human-readable plan: a table of triggers per object, then the decision.
pub fn render_text(plans: &[ObjectPlan]) -> String {
    let mut out = String::new();
    for plan in plans {
        out.push_str(&format!("ScaledObject {}/{}\n", plan.namespace, plan.name));
        if !plan.errors.is_empty() {
            for error in &plan.errors {
                out.push_str(&format!("  error: {error}\n"));
            }
            out.push('\n');
            continue;
        }
        let header = [
            "#",
            "TYPE",
            "METRIC",
            "VALUE",
            "TARGET",
            "METRIC TYPE",
            "ACTIVE",
            "PROPOSED",
        ];
        let rows: Vec<[String; 8]> = plan
            .triggers
            .iter()
            .map(|t| {
                [
                    t.index.to_string(),
                    t.trigger_type.clone(),
                    t.metric_name.clone().unwrap_or_else(|| "-".into()),
                    t.error
                        .as_ref()
                        .map_or_else(|| number(t.value), |_| "error".into()),
                    number(t.target),
                    t.metric_type.clone().unwrap_or_else(|| "-".into()),
                    t.active.map_or_else(
                        || "-".into(),
                        |a| if a { "yes".into() } else { "no".into() },
                    ),
                    t.proposed_replicas
                        .map_or_else(|| "-".into(), |p| p.to_string()),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            format!("  {}\n", padded.join("  ").trim_end())
        };
        out.push_str(&line(&header.map(str::to_owned)));
        for row in &rows {
            out.push_str(&line(row));
        }
        for trigger in &plan.triggers {
            if let Some(error) = &trigger.error {
                out.push_str(&format!(
                    "  trigger {} ({}): {error}\n",
                    trigger.index, trigger.trigger_type
                ));
            }
        }
        let max = plan
            .max_proposed_replicas
            .map_or_else(|| "-".into(), |m| m.to_string());
        out.push_str(&format!(
            "  max proposed: {max}   active: {}   current replicas: {}\n",
            if plan.active { "yes" } else { "no" },
            plan.current_replicas
        ));
        let decision = &plan.decision;
        let detail = match (decision.scale_to, decision.cooldown_remaining_seconds) {
            (Some(to), _) => format!("scale {} → {to}", plan.current_replicas),
            (None, Some(left)) => {
                format!("cooling down: scale in after {left}s more without activity")
            }
            (None, None) => "no change by Windlass".into(),
        };
        out.push_str(&format!("  windlass: {} ({detail})\n", decision.action));
        match plan.hpa_replicas {
            Some(replicas) => out.push_str(&format!(
                "  hpa: {replicas} replica{}\n",
                if replicas == 1 { "" } else { "s" }
            )),
            None => out.push_str("  hpa: idle (the target is at zero)\n"),
        }
        out.push_str(&format!(
            "  desired replicas: {}\n\n",
            plan.desired_replicas
        ));
    }
    out
}
