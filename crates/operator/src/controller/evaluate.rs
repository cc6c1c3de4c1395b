//! One evaluation of a ScaledObject: every trigger sampled at once, fallback applied per metric,
//! scalingModifiers' composite metric computed, and the object's activity decided — KEDA's
//! `getScaledObjectState` (keda-spec §2.5, §2.9, §2.10).
//!
//! The scale loop runs one evaluation per poll; the external metrics API serves the latest one
//! ([`Evaluation::values_for`]) instead of asking the backend again for every HPA read.
//! Consequence, and a deliberate difference from KEDA: fallback failures are counted per poll,
//! not per poll *and* per HPA read, so `failureThreshold` means "polls" whatever the HPA's sync
//! period is.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::{BoxFuture, join_all};
use scaler_core::activity::{
    self, Activity, CompositeActivity, MetricOutcome, MetricResult, TriggerKind, TriggerOutcome,
};
use scaler_core::fallback::{
    self, FallbackBehavior, FallbackContext, FallbackOutcome, FallbackSpec, MetricHealth,
    MetricQuery,
};
use scaler_core::metric::{ExternalMetric, MetricName};
use scaler_core::modifiers::{self, CompositeInputs};
use scaler_core::{MetricTargetType, Sample, SampleRequest, ScalerError};

use super::scalers::ObjectScalers;
use crate::crd::ScaledObject;
use crate::metrics_api::{MetricSourceError, MetricValue};
use crate::validate;

/// What one metric read gave, after fallback.
#[derive(Clone, Debug, PartialEq)]
pub enum Reading {
    /// The scaler answered.
    Sample(Sample),
    /// The scaler failed and fallback serves `value` (under `served_as`).
    Fallback { value: f64, served_as: MetricName },
    /// Fallback behaviour `scalingModifiers` past the threshold: nil to the formula.
    Placeholder,
    /// The scaler failed and nothing replaces it.
    Error(ScalerError),
}

/// One external metric's result in an evaluation.
#[derive(Clone, Debug)]
pub struct MetricReading {
    pub trigger_index: usize,
    pub trigger_type: String,
    pub trigger_name: Option<String>,
    pub metric: ExternalMetric,
    pub reading: Reading,
    /// How long the scaler took.
    pub duration: Duration,
}

/// One evaluation of a ScaledObject.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub at: DateTime<Utc>,
    pub readings: Vec<MetricReading>,
    /// The composite metric, with scalingModifiers.
    pub composite: Option<Result<f64, String>>,
    pub activity: Activity,
    /// `status.health` after this evaluation; empty unless fallback is configured.
    pub health: BTreeMap<MetricName, MetricHealth>,
    /// Whether a valid fallback is configured (KEDA's `HasValidFallback`).
    pub fallback_configured: bool,
}

/// One metric's sample and how long it took.
type TimedSample = (ExternalMetric, Result<Sample, ScalerError>, Duration);

/// The target's replica counts fallback may need; only asked for when a metric failed.
pub type ReadyPods<'a> = &'a (dyn Fn() -> BoxFuture<'static, Option<i32>> + Send + Sync);

/// The CRD's fallback as the engine reads it.
pub fn engine_fallback(so: &ScaledObject) -> Option<FallbackSpec> {
    use crate::crd::scaled_object::FallbackBehavior as Written;
    so.spec.fallback.as_ref().map(|f| FallbackSpec {
        failure_threshold: f.failure_threshold,
        replicas: f.replicas,
        behavior: match f.behavior_or_default() {
            Written::Static => FallbackBehavior::Static,
            Written::CurrentReplicas => FallbackBehavior::CurrentReplicas,
            Written::CurrentReplicasIfHigher => FallbackBehavior::CurrentReplicasIfHigher,
            Written::CurrentReplicasIfLower => FallbackBehavior::CurrentReplicasIfLower,
            Written::ScalingModifiers => FallbackBehavior::ScalingModifiers,
        },
    })
}

/// Samples every trigger of `so` at once and combines the results as KEDA does.
pub async fn evaluate(
    so: &ScaledObject,
    scalers: &ObjectScalers,
    previous_health: &BTreeMap<MetricName, MetricHealth>,
    current_replicas: Option<i32>,
    ready_pods: ReadyPods<'_>,
    now: DateTime<Utc>,
) -> Evaluation {
    let sampled: Vec<Vec<TimedSample>> =
        join_all(scalers.triggers.iter().map(|trigger| async move {
            let metrics: Vec<ExternalMetric> = trigger
                .metric_specs
                .iter()
                .filter_map(|s| s.external().cloned())
                .collect();
            join_all(metrics.into_iter().map(|metric| async move {
                let started = Instant::now();
                let result = trigger
                    .scaler
                    .sample(SampleRequest {
                        metric: &metric.name,
                        now,
                    })
                    .await;
                (metric, result, started.elapsed())
            }))
            .await
        }))
        .await;

    let fallback_spec = engine_fallback(so);
    let engine_modifiers = so.scaling_modifiers().map(validate::engine_modifiers);
    let configured = fallback::is_configured(fallback_spec.as_ref(), engine_modifiers.as_ref());
    let any_failed = sampled.iter().flatten().any(|(_, r, _)| r.is_err());
    let needs_pods = configured
        && any_failed
        && (engine_modifiers.as_ref().is_some_and(|m| m.is_used())
            && engine_modifiers.as_ref().map(|m| m.target_type()) == Some(MetricTargetType::Value)
            || sampled
                .iter()
                .flatten()
                .any(|(m, r, _)| r.is_err() && m.target_type == MetricTargetType::Value));
    let ready = if needs_pods { ready_pods().await } else { None };
    let context = FallbackContext {
        fallback: fallback_spec.as_ref(),
        modifiers: engine_modifiers.as_ref(),
        current_replicas,
        ready_pods: ready,
    };

    let mut health = BTreeMap::new();
    let mut readings = Vec::new();
    let mut outcomes = Vec::new();
    let mut composite_inputs = CompositeInputs {
        fallback_replicas: fallback_spec.as_ref().map(|f| f.replicas),
        target: engine_modifiers
            .as_ref()
            .and_then(|m| m.target_value())
            .unwrap_or(0.0),
        ..CompositeInputs::default()
    };
    for (trigger, metrics) in scalers.triggers.iter().zip(sampled) {
        let mut trigger_outcome = TriggerOutcome {
            kind: TriggerKind::of(&trigger.trigger_type),
            metrics: Vec::new(),
        };
        for (metric, result, duration) in metrics {
            let step = fallback::apply(
                &context,
                &MetricQuery {
                    name: &metric.name,
                    target: metric.target,
                    target_type: metric.target_type,
                    succeeded: result.is_ok(),
                    previous: previous_health.get(&metric.name),
                },
            );
            if let Some(entry) = step.health {
                health.insert(metric.name.clone(), entry);
            }
            let reading = match (result, step.outcome) {
                (Ok(sample), _) => Reading::Sample(sample),
                (
                    Err(_),
                    FallbackOutcome::Active {
                        metric_name, value, ..
                    },
                ) => Reading::Fallback {
                    value,
                    served_as: metric_name,
                },
                (Err(_), FallbackOutcome::Placeholder) => Reading::Placeholder,
                (Err(error), FallbackOutcome::Failed(problem)) => Reading::Error(ScalerError::new(
                    error.category,
                    format!("{}: {problem}", error.message),
                )),
                (Err(error), _) => Reading::Error(error),
            };
            if let Some(name) = trigger.name.as_deref().filter(|n| !n.is_empty()) {
                match &reading {
                    Reading::Sample(sample) => {
                        composite_inputs
                            .values
                            .insert(name.to_owned(), Some(sample.value));
                    }
                    Reading::Placeholder => {
                        composite_inputs.values.insert(name.to_owned(), None);
                    }
                    Reading::Fallback { value, .. } => {
                        composite_inputs.fallback_values.push(*value);
                    }
                    Reading::Error(_) => {}
                }
            } else if let Reading::Fallback { value, .. } = &reading {
                composite_inputs.fallback_values.push(*value);
            }
            trigger_outcome.metrics.push(MetricOutcome {
                name: metric.name.clone(),
                result: match &reading {
                    Reading::Sample(sample) => MetricResult::Sample(*sample),
                    Reading::Fallback { value, .. } => MetricResult::Fallback { value: *value },
                    Reading::Placeholder => MetricResult::FallbackPlaceholder,
                    Reading::Error(error) => MetricResult::Error(error.clone()),
                },
            });
            readings.push(MetricReading {
                trigger_index: trigger.index,
                trigger_type: trigger.trigger_type.clone(),
                trigger_name: trigger.name.clone(),
                metric,
                reading,
                duration,
            });
        }
        outcomes.push(trigger_outcome);
    }

    let composite = scalers.formula.as_ref().map(|formula| {
        if outcomes
            .iter()
            .flat_map(|t| &t.metrics)
            .any(|m| matches!(m.result, MetricResult::Error(_)))
        {
            return Err("a trigger of the composite metric failed".to_owned());
        }
        modifiers::composite_value(formula, &composite_inputs).map_err(|e| e.to_string())
    });
    let composite_activity =
        engine_modifiers
            .as_ref()
            .filter(|m| m.is_used())
            .map(|m| CompositeActivity {
                value: composite.as_ref().and_then(|c| c.as_ref().ok().copied()),
                activation_target: m.activation_target_value().unwrap_or(0.0),
            });
    let activity = activity::evaluate(&outcomes, composite_activity.as_ref());
    Evaluation {
        at: now,
        readings,
        composite,
        activity,
        health,
        fallback_configured: configured,
    }
}

impl Evaluation {
    /// What the HPA gets for `metric_name` (matched case-insensitively, as KEDA does).
    pub fn values_for(&self, metric_name: &str) -> Result<Vec<MetricValue>, MetricSourceError> {
        let composite_name = MetricName::composite();
        if composite_name.matches(metric_name) {
            return match &self.composite {
                Some(Ok(value)) => Ok(vec![MetricValue {
                    metric_name: composite_name.to_string(),
                    value: *value,
                    timestamp: self.at,
                }]),
                Some(Err(message)) => Err(MetricSourceError::Scaler {
                    metric_name: composite_name.to_string(),
                    message: message.clone(),
                }),
                None => Err(MetricSourceError::MetricNotFound {
                    metric_name: metric_name.to_owned(),
                }),
            };
        }
        let reading = self
            .readings
            .iter()
            .find(|r| r.metric.name.matches(metric_name))
            .ok_or_else(|| MetricSourceError::MetricNotFound {
                metric_name: metric_name.to_owned(),
            })?;
        let value = match &reading.reading {
            Reading::Sample(sample) => sample.value,
            Reading::Fallback { value, .. } => *value,
            // KEDA serves its -1 placeholder, which the quantity rules turn into 0.
            Reading::Placeholder => -1.0,
            Reading::Error(error) => {
                return Err(MetricSourceError::Scaler {
                    metric_name: reading.metric.name.to_string(),
                    message: error.message.clone(),
                });
            }
        };
        Ok(vec![MetricValue {
            metric_name: reading.metric.name.to_string(),
            value,
            timestamp: self.at,
        }])
    }

    /// Whether any trigger failed without fallback (KEDA rebuilds the scalers then).
    pub fn any_error(&self) -> bool {
        self.readings
            .iter()
            .any(|r| matches!(r.reading, Reading::Error(_)))
    }
}
