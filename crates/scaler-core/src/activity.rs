//! Combining the triggers' results into the ScaledObject's activity (`isActive`, `isError`).
//!
//! KEDA's rule (`getScaledObjectState` / `getScalerState` in `pkg/scaling/scale_handler.go`), as
//! reproduced by [`evaluate`]:
//! - **Fields read**: `spec.triggers[].type` (cpu/memory vs the rest),
//!   `spec.advanced.scalingModifiers.activationTarget`, and each metric's query result after
//!   fallback ([`crate::fallback`]).
//! - cpu/memory triggers (no External metric) are skipped: never active, never failing.
//! - Per trigger, a metric that failed (with no active fallback) marks the trigger — and so the
//!   ScaledObject — as failed. A trigger is active when its *last successful* metric was active or
//!   had fallback active (KEDA overwrites the flag metric by metric). All metric names of an active
//!   trigger (including fallback ones) are the active names.
//! - ScaledObject active = any trigger active; error = any trigger failed.
//! - With scalingModifiers the activity is recomputed: active iff no trigger failed and the
//!   composite value > `activationTarget` (default 0); the only active name is then
//!   `composite-metric`.
//! - If **every** trigger is cpu/memory and nothing failed, the ScaledObject is always active.
//! - `fallback_active` is true when any metric's fallback produced a value (the placeholder of
//!   behaviour `scalingModifiers` does not count).

use std::collections::BTreeMap;

use crate::error::ScalerError;
use crate::metric::MetricName;
use crate::scaler::Sample;

/// What kind of metrics a trigger produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TriggerKind {
    /// `cpu` or `memory`: Resource metrics the HPA reads itself.
    Resource,
    /// Everything else: external metrics Windlass samples.
    External,
}

impl TriggerKind {
    /// The kind of a `triggers[].type`.
    pub fn of(trigger_type: &str) -> Self {
        match trigger_type {
            "cpu" | "memory" => Self::Resource,
            _ => Self::External,
        }
    }
}

/// One metric's query result, after fallback was applied.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricResult {
    /// The scaler answered.
    Sample(Sample),
    /// The scaler failed and fallback is active: the value to serve instead.
    Fallback {
        /// The fallback value.
        value: f64,
    },
    /// The scaler failed past the threshold under fallback behaviour `scalingModifiers`: the
    /// metric is nil to the formula, neither active nor failed.
    FallbackPlaceholder,
    /// The scaler failed and fallback does not apply.
    Error(ScalerError),
}

/// One metric of a trigger and its result.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricOutcome {
    /// The external metric name.
    pub name: MetricName,
    /// Its result.
    pub result: MetricResult,
}

/// One trigger's results, in metric-spec order.
#[derive(Clone, Debug, PartialEq)]
pub struct TriggerOutcome {
    /// Resource (cpu/memory) or external.
    pub kind: TriggerKind,
    /// One entry per external metric (empty for cpu/memory).
    pub metrics: Vec<MetricOutcome>,
}

/// The composite metric's evaluation, when scalingModifiers are in use.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CompositeActivity {
    /// The composite value; `None` when the formula could not be evaluated.
    pub value: Option<f64>,
    /// `activationTarget` (0 when unset).
    pub activation_target: f64,
}

/// The ScaledObject's activity for one poll.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Activity {
    /// KEDA's `isActive`.
    pub active: bool,
    /// KEDA's `isError`: some trigger failed.
    pub error: bool,
    /// The active metric names (the activation event and `status.triggersActivity`).
    pub active_metrics: Vec<MetricName>,
    /// Whether any metric is served by fallback.
    pub fallback_active: bool,
    /// The errors, by metric name, for events and logs.
    pub errors: Vec<(MetricName, ScalerError)>,
}

/// Combines the triggers' outcomes; `composite` is `Some` when scalingModifiers are in use.
pub fn evaluate(triggers: &[TriggerOutcome], composite: Option<&CompositeActivity>) -> Activity {
    let mut activity = Activity::default();
    let mut resource_triggers = 0;
    for trigger in triggers {
        if trigger.kind == TriggerKind::Resource {
            resource_triggers += 1;
            continue;
        }
        let mut trigger_active = false;
        let mut served: Vec<&MetricName> = Vec::new();
        for metric in &trigger.metrics {
            match &metric.result {
                MetricResult::Sample(sample) => {
                    trigger_active = sample.active;
                    served.push(&metric.name);
                }
                MetricResult::Fallback { .. } => {
                    trigger_active = true;
                    activity.fallback_active = true;
                    served.push(&metric.name);
                }
                MetricResult::FallbackPlaceholder => {
                    trigger_active = false;
                    served.push(&metric.name);
                }
                MetricResult::Error(error) => {
                    activity.error = true;
                    activity.errors.push((metric.name.clone(), error.clone()));
                }
            }
        }
        if trigger_active {
            activity.active = true;
            activity.active_metrics.extend(served.into_iter().cloned());
        }
    }
    if let Some(composite) = composite {
        activity.active = false;
        activity.active_metrics.clear();
        if !activity.error
            && let Some(value) = composite.value
            && value > composite.activation_target
        {
            activity.active = true;
            activity.active_metrics.push(MetricName::composite());
        }
    }
    if triggers.len() <= resource_triggers && !activity.error {
        activity.active = true;
    }
    activity
}

/// `status.triggersActivity`: every external metric name of the ScaledObject → whether it is
/// among the active names.
pub fn triggers_activity(
    external_metric_names: &[MetricName],
    activity: &Activity,
) -> BTreeMap<MetricName, bool> {
    external_metric_names
        .iter()
        .map(|name| (name.clone(), activity.active_metrics.contains(name)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn external(metrics: Vec<(&str, MetricResult)>) -> TriggerOutcome {
        TriggerOutcome {
            kind: TriggerKind::External,
            metrics: metrics
                .into_iter()
                .map(|(name, result)| MetricOutcome {
                    name: MetricName::from_raw(name),
                    result,
                })
                .collect(),
        }
    }

    fn resource() -> TriggerOutcome {
        TriggerOutcome {
            kind: TriggerKind::Resource,
            metrics: Vec::new(),
        }
    }

    fn sample(value: f64, active: bool) -> MetricResult {
        MetricResult::Sample(Sample { value, active })
    }

    fn error() -> MetricResult {
        MetricResult::Error(ScalerError::connect("refused"))
    }

    struct Case {
        name: &'static str,
        triggers: Vec<TriggerOutcome>,
        composite: Option<CompositeActivity>,
        active: bool,
        error: bool,
        fallback_active: bool,
        active_metrics: &'static [&'static str],
    }

    #[test]
    fn activity_combines_triggers_like_keda() {
        let cases = [
            Case {
                name: "one active trigger makes the object active",
                triggers: vec![
                    external(vec![("s0-a", sample(5.0, true))]),
                    external(vec![("s1-b", sample(0.0, false))]),
                ],
                composite: None,
                active: true,
                error: false,
                fallback_active: false,
                active_metrics: &["s0-a"],
            },
            Case {
                name: "nothing active",
                triggers: vec![external(vec![("s0-a", sample(0.0, false))])],
                composite: None,
                active: false,
                error: false,
                fallback_active: false,
                active_metrics: &[],
            },
            Case {
                name: "an error with another active trigger is partial",
                triggers: vec![
                    external(vec![("s0-a", sample(5.0, true))]),
                    external(vec![("s1-b", error())]),
                ],
                composite: None,
                active: true,
                error: true,
                fallback_active: false,
                active_metrics: &["s0-a"],
            },
            Case {
                name: "fallback counts as active and not failed",
                triggers: vec![external(vec![(
                    "s0-a",
                    MetricResult::Fallback { value: 50.0 },
                )])],
                composite: None,
                active: true,
                error: false,
                fallback_active: true,
                active_metrics: &["s0-a"],
            },
            Case {
                name: "placeholder is neither active nor failed",
                triggers: vec![external(vec![("s0-a", MetricResult::FallbackPlaceholder)])],
                composite: None,
                active: false,
                error: false,
                fallback_active: false,
                active_metrics: &[],
            },
            Case {
                name: "cpu and memory only, no errors: always active",
                triggers: vec![resource(), resource()],
                composite: None,
                active: true,
                error: false,
                fallback_active: false,
                active_metrics: &[],
            },
            Case {
                name: "cpu plus an inactive trigger: inactive",
                triggers: vec![resource(), external(vec![("s1-a", sample(0.0, false))])],
                composite: None,
                active: false,
                error: false,
                fallback_active: false,
                active_metrics: &[],
            },
            Case {
                name: "last successful metric of a trigger decides its activity",
                triggers: vec![external(vec![
                    ("s0-a", sample(3.0, true)),
                    ("s0-b", sample(0.0, false)),
                ])],
                composite: None,
                active: false,
                error: false,
                fallback_active: false,
                active_metrics: &[],
            },
            Case {
                name: "modifiers: composite above activation target",
                triggers: vec![
                    external(vec![("s0-a", sample(1.0, false))]),
                    external(vec![("s1-b", sample(2.0, false))]),
                ],
                composite: Some(CompositeActivity {
                    value: Some(3.0),
                    activation_target: 2.0,
                }),
                active: true,
                error: false,
                fallback_active: false,
                active_metrics: &["composite-metric"],
            },
            Case {
                name: "modifiers: composite equal to activation target is inactive",
                triggers: vec![external(vec![("s0-a", sample(9.0, true))])],
                composite: Some(CompositeActivity {
                    value: Some(2.0),
                    activation_target: 2.0,
                }),
                active: false,
                error: false,
                fallback_active: false,
                active_metrics: &[],
            },
            Case {
                name: "modifiers: any error makes it inactive",
                triggers: vec![
                    external(vec![("s0-a", sample(9.0, true))]),
                    external(vec![("s1-b", error())]),
                ],
                composite: Some(CompositeActivity {
                    value: Some(100.0),
                    activation_target: 0.0,
                }),
                active: false,
                error: true,
                fallback_active: false,
                active_metrics: &[],
            },
            Case {
                name: "modifiers: formula failure is inactive",
                triggers: vec![external(vec![("s0-a", sample(9.0, true))])],
                composite: Some(CompositeActivity {
                    value: None,
                    activation_target: 0.0,
                }),
                active: false,
                error: false,
                fallback_active: false,
                active_metrics: &[],
            },
        ];
        for case in cases {
            let activity = evaluate(&case.triggers, case.composite.as_ref());
            assert_eq!(activity.active, case.active, "{}", case.name);
            assert_eq!(activity.error, case.error, "{}", case.name);
            assert_eq!(
                activity.fallback_active, case.fallback_active,
                "{}",
                case.name
            );
            let names: Vec<&str> = activity
                .active_metrics
                .iter()
                .map(MetricName::as_str)
                .collect();
            assert_eq!(names, case.active_metrics, "{}", case.name);
        }
    }

    #[test]
    fn triggers_activity_lists_every_external_metric() {
        let activity = evaluate(
            &[
                external(vec![("s0-a", sample(5.0, true))]),
                external(vec![("s1-b", sample(0.0, false))]),
            ],
            None,
        );
        let names = [MetricName::from_raw("s0-a"), MetricName::from_raw("s1-b")];
        let map = triggers_activity(&names, &activity);
        assert_eq!(map.get(&names[0]), Some(&true));
        assert_eq!(map.get(&names[1]), Some(&false));
    }
}
