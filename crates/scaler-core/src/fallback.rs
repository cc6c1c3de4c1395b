//! `spec.fallback`: after too many consecutive failures of a metric, report a made-up value that
//! makes the HPA land on a chosen replica count.
//!
//! KEDA's rule (`pkg/fallback/fallback.go`), as reproduced here:
//! - **Fields read**: `spec.fallback.{failureThreshold, replicas, behavior}`,
//!   `spec.advanced.scalingModifiers.{target, metricType}` when modifiers are in use, the trigger's
//!   HPA target (value and type), `status.health`, and — passed in by the caller — the target's
//!   current replicas and its ready pods.
//! - **Configured** ([`is_configured`]): `fallback` present, `failureThreshold ≥ 0`,
//!   `replicas ≥ 0`, and with scalingModifiers their `target` parses as an **integer** > 0 (a
//!   fractional target such as `"2.5"` silently disables fallback).
//! - **Health**, per external metric name, on every query (scale loop and HPA request alike):
//!   success → `{numberOfFailures: 0, Happy}` when configured (nothing recorded otherwise);
//!   failure → when configured, `numberOfFailures + 1`, `Failing`; not configured → the error
//!   propagates and health is untouched.
//! - **Active** when `numberOfFailures > failureThreshold` (strict). Below that the error still
//!   propagates.
//! - **Replicas** per `behavior`: `static` → `replicas`; `currentReplicas` → current;
//!   `currentReplicasIfHigher` → `max(current, replicas)`; `currentReplicasIfLower` →
//!   `min(current, replicas)`; any behaviour but `static` needs the current count (if it cannot be
//!   read the original error propagates). `scalingModifiers` produces no value: the metric is nil
//!   to the formula (see [`crate::modifiers`]).
//! - With target type `Value` (or scalingModifiers `metricType: Value`) replicas are divided by
//!   the ready pods (Running and Ready); 0 ready pods → "error performing fallback".
//! - **Reported value**: `target × replicas`, truncated to milli units; named `composite-metric`
//!   with scalingModifiers (whose `target` is then the normalisation value).
//! - **Condition** `Fallback`: True `FallbackExists` when any health entry is Failing past the
//!   threshold, else False `NoFallbackFound`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::decision::{Condition, ConditionStatus};
use crate::metric::{MetricName, MetricTargetType};
use crate::modifiers::ScalingModifiers;

/// `spec.fallback.behavior`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FallbackBehavior {
    /// Always `fallback.replicas` (the default).
    #[default]
    Static,
    /// Keep the target's current replica count.
    CurrentReplicas,
    /// `max(current, fallback.replicas)`.
    CurrentReplicasIfHigher,
    /// `min(current, fallback.replicas)`.
    CurrentReplicasIfLower,
    /// Make the failing trigger nil in the scalingModifiers formula.
    ScalingModifiers,
}

impl FallbackBehavior {
    /// The CRD spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Static => "static",
            Self::CurrentReplicas => "currentReplicas",
            Self::CurrentReplicasIfHigher => "currentReplicasIfHigher",
            Self::CurrentReplicasIfLower => "currentReplicasIfLower",
            Self::ScalingModifiers => "scalingModifiers",
        }
    }
}

impl fmt::Display for FallbackBehavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FallbackBehavior {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "" | "static" => Ok(Self::Static),
            "currentReplicas" => Ok(Self::CurrentReplicas),
            "currentReplicasIfHigher" => Ok(Self::CurrentReplicasIfHigher),
            "currentReplicasIfLower" => Ok(Self::CurrentReplicasIfLower),
            "scalingModifiers" => Ok(Self::ScalingModifiers),
            other => Err(format!(
                "fallback behavior {other:?} is not one of static, currentReplicas, currentReplicasIfHigher, currentReplicasIfLower, scalingModifiers"
            )),
        }
    }
}

/// `spec.fallback`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FallbackSpec {
    /// `failureThreshold`: failures tolerated before fallback starts.
    pub failure_threshold: i32,
    /// `replicas`: the replica count to fall back to.
    pub replicas: i32,
    /// `behavior`.
    pub behavior: FallbackBehavior,
}

/// `status.health[].status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum HealthStatus {
    /// The last query succeeded.
    #[default]
    Happy,
    /// The last query failed.
    Failing,
}

impl HealthStatus {
    /// The status string KEDA writes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Happy => "Happy",
            Self::Failing => "Failing",
        }
    }
}

/// One `status.health` entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricHealth {
    /// `numberOfFailures`: consecutive failed queries.
    pub number_of_failures: i32,
    /// `status`.
    pub status: HealthStatus,
}

impl MetricHealth {
    /// The entry after a successful query.
    pub fn happy() -> Self {
        Self::default()
    }

    /// The entry after a failed query, given the previous one.
    pub fn after_failure(previous: Option<&Self>) -> Self {
        Self {
            number_of_failures: previous
                .map_or(0, |h| h.number_of_failures)
                .saturating_add(1),
            status: HealthStatus::Failing,
        }
    }

    /// Whether this entry puts its metric in fallback (Failing, failures > threshold).
    pub fn exceeds(&self, failure_threshold: i32) -> bool {
        self.status == HealthStatus::Failing && self.number_of_failures > failure_threshold
    }
}

/// KEDA's `HasValidFallback` (with `fallback` present): whether fallback applies at all.
/// `modifiers` is `Some` when scalingModifiers are in use.
pub fn is_configured(
    fallback: Option<&FallbackSpec>,
    modifiers: Option<&ScalingModifiers>,
) -> bool {
    let Some(spec) = fallback else {
        return false;
    };
    let modifiers_ok = match modifiers.filter(|m| m.is_used()) {
        Some(m) => modifiers_integer_target(m).is_some_and(|t| t > 0),
        None => true,
    };
    spec.failure_threshold >= 0 && spec.replicas >= 0 && modifiers_ok
}

/// `strconv.ParseInt(target, 10, 64)`.
fn modifiers_integer_target(modifiers: &ScalingModifiers) -> Option<i64> {
    let text = modifiers.target.as_str();
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The `Fallback` condition for the health map, as KEDA recomputes it on every health update.
/// Without a configured fallback the condition is always False.
pub fn condition<'a>(
    configured: Option<&FallbackSpec>,
    health: impl IntoIterator<Item = &'a MetricHealth>,
) -> Condition {
    let active = configured.is_some_and(|spec| {
        health
            .into_iter()
            .any(|h| h.exceeds(spec.failure_threshold))
    });
    if active {
        Condition::new(
            ConditionStatus::True,
            "FallbackExists",
            "At least one trigger is falling back on this scaled object",
        )
    } else {
        Condition::new(
            ConditionStatus::False,
            "NoFallbackFound",
            "No fallbacks are active on this scaled object",
        )
    }
}

/// Everything [`apply`] needs about the ScaledObject and the target.
#[derive(Clone, Copy, Debug)]
pub struct FallbackContext<'a> {
    /// `spec.fallback`.
    pub fallback: Option<&'a FallbackSpec>,
    /// `spec.advanced.scalingModifiers`, when present.
    pub modifiers: Option<&'a ScalingModifiers>,
    /// The target's current replica count, if it could be read.
    pub current_replicas: Option<i32>,
    /// The target's Running and Ready pods, if they could be counted (only needed for `Value`).
    pub ready_pods: Option<i32>,
}

/// One metric query as fallback sees it.
#[derive(Clone, Copy, Debug)]
pub struct MetricQuery<'a> {
    /// The external metric name (the `status.health` key).
    pub name: &'a MetricName,
    /// The trigger's HPA target value.
    pub target: f64,
    /// The trigger's HPA target type.
    pub target_type: MetricTargetType,
    /// Whether the scaler answered.
    pub succeeded: bool,
    /// The metric's current `status.health` entry.
    pub previous: Option<&'a MetricHealth>,
}

/// Why a fallback could not be computed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum FallbackError {
    /// `Value` target and no ready pod to divide by (or the pods could not be counted).
    #[error("error performing fallback")]
    NoReadyPods,
}

/// What to serve for one metric after a query.
#[derive(Clone, Debug, PartialEq)]
pub enum FallbackOutcome {
    /// The query succeeded: serve the scaler's value.
    Sample,
    /// The query failed and fallback does not apply (yet): the scaler's error stands.
    Error,
    /// Fallback is active: serve `value` under `metric_name` instead; the trigger counts as active.
    Active {
        /// `composite-metric` with scalingModifiers, the metric's own name otherwise.
        metric_name: MetricName,
        /// `target × replicas` (÷ ready pods for `Value`), truncated to milli units.
        value: f64,
        /// The replica count the value stands for.
        replicas: f64,
    },
    /// Behaviour `scalingModifiers`: the metric is nil to the formula (KEDA serves a -1
    /// placeholder and reports fallback as not active).
    Placeholder,
    /// Fallback is due but could not be computed.
    Failed(FallbackError),
}

/// The result of [`apply`]: the new health entry (if health is tracked) and what to serve.
#[derive(Clone, Debug, PartialEq)]
pub struct FallbackStep {
    /// The `status.health` entry to write; `None` leaves health untouched.
    pub health: Option<MetricHealth>,
    /// What to serve.
    pub outcome: FallbackOutcome,
}

/// KEDA's `GetMetricsWithFallback` for one metric query.
pub fn apply(context: &FallbackContext<'_>, query: &MetricQuery<'_>) -> FallbackStep {
    let configured = is_configured(context.fallback, context.modifiers);
    let spec = match context.fallback {
        Some(spec) if configured => spec,
        _ => {
            return FallbackStep {
                health: None,
                outcome: if query.succeeded {
                    FallbackOutcome::Sample
                } else {
                    FallbackOutcome::Error
                },
            };
        }
    };
    if query.succeeded {
        return FallbackStep {
            health: Some(MetricHealth::happy()),
            outcome: FallbackOutcome::Sample,
        };
    }
    let health = MetricHealth::after_failure(query.previous);
    let outcome = if health.number_of_failures > spec.failure_threshold {
        fallback_outcome(context, spec, query)
    } else {
        FallbackOutcome::Error
    };
    FallbackStep {
        health: Some(health),
        outcome,
    }
}

fn fallback_outcome(
    context: &FallbackContext<'_>,
    spec: &FallbackSpec,
    query: &MetricQuery<'_>,
) -> FallbackOutcome {
    if spec.behavior == FallbackBehavior::ScalingModifiers {
        return FallbackOutcome::Placeholder;
    }
    let current = if spec.behavior == FallbackBehavior::Static {
        0
    } else {
        match context.current_replicas {
            Some(current) => current,
            None => return FallbackOutcome::Error,
        }
    };
    let Some(mut replicas) = fallback_replicas(spec, current) else {
        return FallbackOutcome::Placeholder;
    };
    let modifiers = context.modifiers.filter(|m| m.is_used());
    let target_type = match modifiers {
        Some(m) => m.target_type(),
        None => query.target_type,
    };
    if target_type == MetricTargetType::Value {
        match context.ready_pods {
            Some(ready) if ready > 0 => replicas /= f64::from(ready),
            _ => return FallbackOutcome::Failed(FallbackError::NoReadyPods),
        }
    }
    let (metric_name, target) = match modifiers {
        Some(m) => (MetricName::composite(), m.target_value().unwrap_or(0.0)),
        None => (query.name.clone(), query.target),
    };
    FallbackOutcome::Active {
        metric_name,
        value: milli_truncated(target * 1000.0 * replicas),
        replicas,
    }
}

/// `resource.NewMilliQuantity(int64(milli))` read back as a float.
fn milli_truncated(milli: f64) -> f64 {
    if milli.is_nan() {
        return 0.0;
    }
    (milli.trunc().clamp(i64::MIN as f64, i64::MAX as f64) as i64) as f64 / 1000.0
}

/// The replica count a behaviour falls back to, given the current count (ignored by `static`);
/// `None` for `scalingModifiers`.
pub fn fallback_replicas(spec: &FallbackSpec, current_replicas: i32) -> Option<f64> {
    let replicas = match spec.behavior {
        FallbackBehavior::Static => spec.replicas,
        FallbackBehavior::CurrentReplicas => current_replicas,
        FallbackBehavior::CurrentReplicasIfHigher => current_replicas.max(spec.replicas),
        FallbackBehavior::CurrentReplicasIfLower => current_replicas.min(spec.replicas),
        FallbackBehavior::ScalingModifiers => return None,
    };
    Some(f64::from(replicas))
}

/// Whether a metric is nil to a scalingModifiers formula: fallback behaviour `scalingModifiers`
/// and its health entry past the threshold (KEDA's `scalingModifierTriggerValue`).
pub fn is_nil_for_formula(fallback: Option<&FallbackSpec>, health: Option<&MetricHealth>) -> bool {
    match (fallback, health) {
        (Some(spec), Some(health)) if spec.behavior == FallbackBehavior::ScalingModifiers => {
            health.number_of_failures > spec.failure_threshold
        }
        _ => false,
    }
}

/// Whether any metric of the map is in fallback (the `Fallback` condition's test).
pub fn any_active(spec: &FallbackSpec, health: &BTreeMap<MetricName, MetricHealth>) -> bool {
    health.values().any(|h| h.exceeds(spec.failure_threshold))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> MetricName {
        MetricName::indexed(0, "some-metric")
    }

    fn spec(failure_threshold: i32, replicas: i32, behavior: FallbackBehavior) -> FallbackSpec {
        FallbackSpec {
            failure_threshold,
            replicas,
            behavior,
        }
    }

    struct ApplyCase {
        name: &'static str,
        fallback: Option<FallbackSpec>,
        modifiers: Option<ScalingModifiers>,
        current_replicas: Option<i32>,
        ready_pods: Option<i32>,
        target: f64,
        target_type: MetricTargetType,
        succeeded: bool,
        previous: Option<MetricHealth>,
        expected_health: Option<MetricHealth>,
        expected: FallbackOutcome,
    }

    fn failing(n: i32) -> MetricHealth {
        MetricHealth {
            number_of_failures: n,
            status: HealthStatus::Failing,
        }
    }

    fn base() -> ApplyCase {
        ApplyCase {
            name: "",
            fallback: Some(spec(3, 10, FallbackBehavior::Static)),
            modifiers: None,
            current_replicas: Some(5),
            ready_pods: Some(5),
            target: 10.0,
            target_type: MetricTargetType::AverageValue,
            succeeded: false,
            previous: None,
            expected_health: None,
            expected: FallbackOutcome::Error,
        }
    }

    fn active(value: f64, replicas: f64) -> FallbackOutcome {
        FallbackOutcome::Active {
            metric_name: name(),
            value,
            replicas,
        }
    }

    #[test]
    fn apply_follows_keda_fallback_tests() {
        let cases = [
            ApplyCase {
                name: "fallback disabled: sample passes through, no health",
                fallback: None,
                succeeded: true,
                expected: FallbackOutcome::Sample,
                ..base()
            },
            ApplyCase {
                name: "fallback disabled: error propagates, health untouched",
                fallback: None,
                previous: Some(failing(2)),
                expected: FallbackOutcome::Error,
                ..base()
            },
            ApplyCase {
                name: "success initialises health",
                succeeded: true,
                expected_health: Some(MetricHealth::happy()),
                expected: FallbackOutcome::Sample,
                ..base()
            },
            ApplyCase {
                name: "success resets failures",
                succeeded: true,
                previous: Some(failing(10)),
                expected_health: Some(MetricHealth::happy()),
                expected: FallbackOutcome::Sample,
                ..base()
            },
            ApplyCase {
                name: "failure bumps the count",
                previous: Some(failing(1)),
                expected_health: Some(failing(2)),
                expected: FallbackOutcome::Error,
                ..base()
            },
            ApplyCase {
                name: "failures equal to the threshold still propagate",
                previous: Some(failing(2)),
                expected_health: Some(failing(3)),
                expected: FallbackOutcome::Error,
                ..base()
            },
            ApplyCase {
                name: "beyond the threshold: normalised metric 10 × 10",
                previous: Some(MetricHealth {
                    number_of_failures: 3,
                    status: HealthStatus::Happy,
                }),
                expected_health: Some(failing(4)),
                expected: active(100.0, 10.0),
                ..base()
            },
            ApplyCase {
                name: "invalid fallback (negative replicas): error, no health",
                fallback: Some(spec(3, -1, FallbackBehavior::Static)),
                previous: Some(failing(5)),
                expected_health: None,
                expected: FallbackOutcome::Error,
                ..base()
            },
            ApplyCase {
                name: "currentReplicasIfHigher uses fallback replicas when current is lower",
                fallback: Some(spec(3, 10, FallbackBehavior::CurrentReplicasIfHigher)),
                previous: Some(failing(3)),
                expected_health: Some(failing(4)),
                expected: active(100.0, 10.0),
                ..base()
            },
            ApplyCase {
                name: "currentReplicasIfLower uses current when lower",
                fallback: Some(spec(3, 10, FallbackBehavior::CurrentReplicasIfLower)),
                previous: Some(failing(3)),
                expected_health: Some(failing(4)),
                expected: active(50.0, 5.0),
                ..base()
            },
            ApplyCase {
                name: "currentReplicas keeps the current count",
                fallback: Some(spec(3, 10, FallbackBehavior::CurrentReplicas)),
                previous: Some(failing(3)),
                expected_health: Some(failing(4)),
                expected: active(50.0, 5.0),
                ..base()
            },
            ApplyCase {
                name: "static ignores current replicas, even unreadable",
                current_replicas: None,
                previous: Some(failing(3)),
                expected_health: Some(failing(4)),
                expected: active(100.0, 10.0),
                ..base()
            },
            ApplyCase {
                name: "currentReplicas with unreadable target: original error",
                fallback: Some(spec(3, 10, FallbackBehavior::CurrentReplicas)),
                current_replicas: None,
                previous: Some(failing(3)),
                expected_health: Some(failing(4)),
                expected: FallbackOutcome::Error,
                ..base()
            },
            ApplyCase {
                name: "Value target divides by ready pods, truncated to milli",
                target_type: MetricTargetType::Value,
                ready_pods: Some(3),
                previous: Some(failing(3)),
                expected_health: Some(failing(4)),
                expected: active(33.333, 10.0 / 3.0),
                ..base()
            },
            ApplyCase {
                name: "Value target with no ready pods fails",
                target_type: MetricTargetType::Value,
                ready_pods: Some(0),
                previous: Some(failing(3)),
                expected_health: Some(failing(4)),
                expected: FallbackOutcome::Failed(FallbackError::NoReadyPods),
                ..base()
            },
            ApplyCase {
                name: "behavior scalingModifiers yields a placeholder",
                fallback: Some(spec(3, 10, FallbackBehavior::ScalingModifiers)),
                modifiers: Some(ScalingModifiers {
                    formula: "a ?? 1".into(),
                    target: "2".into(),
                    ..ScalingModifiers::default()
                }),
                previous: Some(failing(3)),
                expected_health: Some(failing(4)),
                expected: FallbackOutcome::Placeholder,
                ..base()
            },
            ApplyCase {
                name: "scalingModifiers target normalises and renames the metric",
                modifiers: Some(ScalingModifiers {
                    formula: "a".into(),
                    target: "2".into(),
                    ..ScalingModifiers::default()
                }),
                previous: Some(failing(3)),
                expected_health: Some(failing(4)),
                expected: FallbackOutcome::Active {
                    metric_name: MetricName::composite(),
                    value: 20.0,
                    replicas: 10.0,
                },
                ..base()
            },
            ApplyCase {
                name: "fractional scalingModifiers target disables fallback",
                modifiers: Some(ScalingModifiers {
                    formula: "a".into(),
                    target: "2.5".into(),
                    ..ScalingModifiers::default()
                }),
                previous: Some(failing(3)),
                expected_health: None,
                expected: FallbackOutcome::Error,
                ..base()
            },
        ];
        for case in cases {
            let metric = name();
            let context = FallbackContext {
                fallback: case.fallback.as_ref(),
                modifiers: case.modifiers.as_ref(),
                current_replicas: case.current_replicas,
                ready_pods: case.ready_pods,
            };
            let query = MetricQuery {
                name: &metric,
                target: case.target,
                target_type: case.target_type,
                succeeded: case.succeeded,
                previous: case.previous.as_ref(),
            };
            let step = apply(&context, &query);
            assert_eq!(step.health, case.expected_health, "{}", case.name);
            assert_eq!(step.outcome, case.expected, "{}", case.name);
        }
    }

    #[test]
    fn condition_reflects_health_past_threshold() {
        let configured = spec(3, 10, FallbackBehavior::Static);
        let past = [failing(4)];
        let at = [failing(3)];
        assert_eq!(condition(Some(&configured), &past).reason, "FallbackExists");
        assert_eq!(condition(Some(&configured), &at).reason, "NoFallbackFound");
        assert_eq!(condition(None, &past).status, ConditionStatus::False);
    }

    #[test]
    fn nil_for_formula_needs_behavior_and_strictly_more_failures() {
        let modifiers_spec = spec(3, 5, FallbackBehavior::ScalingModifiers);
        assert!(!is_nil_for_formula(None, Some(&failing(5))));
        assert!(!is_nil_for_formula(Some(&modifiers_spec), None));
        assert!(!is_nil_for_formula(
            Some(&modifiers_spec),
            Some(&failing(2))
        ));
        assert!(!is_nil_for_formula(
            Some(&modifiers_spec),
            Some(&failing(3))
        ));
        assert!(is_nil_for_formula(Some(&modifiers_spec), Some(&failing(4))));
        assert!(!is_nil_for_formula(
            Some(&modifiers_spec),
            Some(&MetricHealth::happy())
        ));
    }

    #[test]
    fn behaviors_parse_with_static_default() {
        assert_eq!("".parse(), Ok(FallbackBehavior::Static));
        assert_eq!(
            "currentReplicasIfLower".parse(),
            Ok(FallbackBehavior::CurrentReplicasIfLower)
        );
        assert!("sometimes".parse::<FallbackBehavior>().is_err());
    }
}
