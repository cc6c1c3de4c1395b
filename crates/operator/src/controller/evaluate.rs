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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use futures::FutureExt;
    use scaler_core::{MetricSpec, Scaler};

    use super::*;
    use crate::controller::scalers::BuiltTrigger;

    /// A scaler answering from a script: a value, or an error.
    #[derive(Debug)]
    struct Scripted {
        name: MetricName,
        target: f64,
        target_type: MetricTargetType,
        answer: Result<f64, ScalerError>,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl Scaler for Scripted {
        fn metric_specs(&self) -> Vec<MetricSpec> {
            vec![MetricSpec::External(ExternalMetric {
                name: self.name.clone(),
                target: self.target,
                target_type: self.target_type,
            })]
        }

        async fn sample(&self, _request: SampleRequest<'_>) -> Result<Sample, ScalerError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.answer
                .clone()
                .map(|value| Sample::with_threshold(value, 0.0))
        }
    }

    fn trigger(
        index: usize,
        name: Option<&str>,
        local: &str,
        answer: Result<f64, ScalerError>,
    ) -> BuiltTrigger {
        let scaler = Scripted {
            name: MetricName::indexed(index, local),
            target: 5.0,
            target_type: MetricTargetType::AverageValue,
            answer,
            calls: AtomicUsize::new(0),
        };
        BuiltTrigger {
            index,
            trigger_type: "external".to_owned(),
            name: name.map(str::to_owned),
            metric_specs: scaler.metric_specs(),
            scaler: Arc::new(scaler),
        }
    }

    fn scaled_object(extra_spec: &str) -> ScaledObject {
        serde_yaml_ng::from_str(&format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: worker, namespace: default}}\nspec:\n  scaleTargetRef: {{name: worker}}\n  triggers:\n  - {{type: external, name: a, metadata: {{}}}}\n  - {{type: external, name: b, metadata: {{}}}}\n{extra_spec}"
        ))
        .unwrap()
    }

    fn no_pods() -> BoxFuture<'static, Option<i32>> {
        async { None }.boxed()
    }

    async fn run(
        so: &ScaledObject,
        scalers: &ObjectScalers,
        health: &BTreeMap<MetricName, MetricHealth>,
    ) -> Evaluation {
        evaluate(so, scalers, health, Some(2), &no_pods, Utc::now()).await
    }

    #[tokio::test]
    async fn values_are_served_by_case_insensitive_name_and_activity_is_any_trigger() {
        let so = scaled_object("");
        let scalers = ObjectScalers {
            generation: Some(1),
            triggers: vec![
                trigger(0, Some("a"), "Queue", Ok(0.0)),
                trigger(1, Some("b"), "other", Ok(7.5)),
            ],
            formula: None,
        };
        let evaluation = run(&so, &scalers, &BTreeMap::new()).await;
        assert!(evaluation.activity.active);
        assert_eq!(
            evaluation.activity.active_metrics,
            vec![MetricName::indexed(1, "other")]
        );
        let served = evaluation.values_for("s0-queue").unwrap();
        assert_eq!(served[0].metric_name, "s0-Queue");
        assert_eq!(served[0].value, 0.0);
        assert_eq!(evaluation.values_for("s1-other").unwrap()[0].value, 7.5);
        assert!(matches!(
            evaluation.values_for("s2-nothing"),
            Err(MetricSourceError::MetricNotFound { .. })
        ));
        assert!(matches!(
            evaluation.values_for("composite-metric"),
            Err(MetricSourceError::MetricNotFound { .. })
        ));
    }

    #[tokio::test]
    async fn failures_count_per_poll_and_fallback_serves_target_times_replicas() {
        let so = scaled_object("  fallback: {failureThreshold: 1, replicas: 4}\n");
        let scalers = ObjectScalers {
            generation: Some(1),
            triggers: vec![trigger(
                0,
                Some("a"),
                "down",
                Err(ScalerError::connect("refused")),
            )],
            formula: None,
        };
        let first = run(&so, &scalers, &BTreeMap::new()).await;
        assert!(first.fallback_configured);
        assert!(first.any_error(), "one failure is within the threshold");
        assert!(matches!(
            first.values_for("s0-down"),
            Err(MetricSourceError::Scaler { .. })
        ));
        let second = run(&so, &scalers, &first.health).await;
        assert!(!second.any_error());
        assert!(second.activity.fallback_active);
        assert!(
            second.activity.active,
            "a fallback trigger counts as active"
        );
        // target 5 × 4 replicas: the HPA computes exactly 4.
        assert_eq!(second.values_for("s0-down").unwrap()[0].value, 20.0);
        assert_eq!(
            second.health[&MetricName::indexed(0, "down")].number_of_failures,
            2
        );
    }

    #[tokio::test]
    async fn an_error_without_fallback_is_served_as_an_error() {
        let so = scaled_object("");
        let scalers = ObjectScalers {
            generation: Some(1),
            triggers: vec![trigger(
                0,
                Some("a"),
                "down",
                Err(ScalerError::query("boom")),
            )],
            formula: None,
        };
        let evaluation = run(&so, &scalers, &BTreeMap::new()).await;
        assert!(evaluation.activity.error);
        assert!(!evaluation.activity.active);
        assert!(
            evaluation.health.is_empty(),
            "health is kept only with fallback"
        );
        match evaluation.values_for("s0-down") {
            Err(MetricSourceError::Scaler { message, .. }) => assert_eq!(message, "boom"),
            other => panic!("expected a scaler error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn scaling_modifiers_serve_the_composite_metric_and_decide_activity() {
        let so = scaled_object(
            "  advanced:\n    scalingModifiers: {formula: \"a + b\", target: \"10\", activationTarget: \"8\"}\n",
        );
        let engine = validate::engine_modifiers(so.scaling_modifiers().unwrap());
        let formula = modifiers::validate(
            &engine,
            &[
                scaler_core::modifiers::FormulaTrigger {
                    name: "a",
                    trigger_type: "external",
                },
                scaler_core::modifiers::FormulaTrigger {
                    name: "b",
                    trigger_type: "external",
                },
            ],
        )
        .unwrap();
        let scalers = ObjectScalers {
            generation: Some(1),
            triggers: vec![
                trigger(0, Some("a"), "x", Ok(3.0)),
                trigger(1, Some("b"), "y", Ok(4.5)),
            ],
            formula: Some(formula),
        };
        let evaluation = run(&so, &scalers, &BTreeMap::new()).await;
        let served = evaluation.values_for("Composite-Metric").unwrap();
        assert_eq!(served[0].metric_name, "composite-metric");
        assert_eq!(served[0].value, 7.5);
        assert!(
            !evaluation.activity.active,
            "7.5 does not exceed the activation target 8"
        );
    }
}
