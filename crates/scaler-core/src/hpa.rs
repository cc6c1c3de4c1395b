//! What the Kubernetes HPA will do with the external metrics KEDA (and Windlass) serve.
//!
//! The HPA owns the 1..N range; this module predicts it so that `windlass plan` can print
//! per-trigger proposals and the replica count the HPA will settle on. Rules ported from
//! `pkg/controller/podautoscaler/{horizontal.go, replica_calculator.go}`:
//! - **Fields read**: `spec.minReplicaCount` (HPA `minReplicas = max(1, minReplicaCount)`),
//!   `spec.maxReplicaCount` (default 100), `spec.advanced.horizontalPodAutoscalerConfig.behavior`,
//!   each trigger's metric target; plus the target's `/scale` spec and status replicas and its
//!   ready pods, and the HPA's recommendation and scale-event history.
//! - **Per metric** (milli units, as the HPA compares quantities): `AverageValue` →
//!   `ratio = value / (target × statusReplicas)`, keep `statusReplicas` when the ratio is within
//!   tolerance, else `ceil(value / target)`; `Value` → `ratio = value / target`, keep
//!   `specReplicas` when within tolerance, else `ceil(ratio × readyPods)` (`ceil(ratio)` at 0).
//!   Tolerance: `1 − 0.1 ≤ ratio ≤ 1 + 0.1` keeps the count (per-direction tolerances from
//!   `behavior` are honoured, as with the `HPAConfigurableTolerance` feature gate).
//! - **Across metrics**: the maximum of the valid proposals; if every metric failed, or some
//!   failed and the rest would scale down, the HPA does nothing.
//! - **Bounds first**: target at 0 replicas → scaling disabled (no change); above `maxReplicas`
//!   → `maxReplicas`; below `minReplicas` → `minReplicas`; no metrics are read in those cases.
//! - **Without `behavior`**: the maximum recommendation of the last 300 s (downscale
//!   stabilisation), then clamp to `[minReplicas, min(maxReplicas, max(2 × current, 4))]`.
//! - **With `behavior`**: missing fields take the API defaults (scaleUp: window 0, `Max` of 4 pods
//!   and 100 % per 15 s; scaleDown: window 300 s, 100 % per 15 s); the recommendation is
//!   stabilised between the minimum of the scale-up window and the maximum of the scale-down
//!   window (windows exclusive of their start); then the rate limits: the policy limit over each
//!   policy's period, starting from the replicas at the period's start (current − added + removed
//!   in the period), `Pods` ±value, `Percent` `ceil(start × (1 + v/100))` up and
//!   `trunc(start × (1 − v/100))` down, combined by `selectPolicy` (`Disabled` freezes that
//!   direction), never beyond the bounds.

use chrono::{DateTime, Duration, Utc};

use crate::decision::DEFAULT_MAX_REPLICA_COUNT;
use crate::metric::{ExternalMetric, MetricTargetType};

/// The HPA controller's default tolerance (`--horizontal-pod-autoscaler-tolerance`).
pub const DEFAULT_TOLERANCE: f64 = 0.1;
/// The HPA controller's default downscale stabilisation window, in seconds.
pub const DEFAULT_SCALE_DOWN_STABILIZATION_SECONDS: i32 = 300;
/// Without `behavior`, the HPA never more than doubles at once…
const SCALE_UP_LIMIT_FACTOR: f64 = 2.0;
/// …but may always go to 4.
const SCALE_UP_LIMIT_MINIMUM: f64 = 4.0;

/// HPA `minReplicas` for a ScaledObject: `minReplicaCount` if > 0, else 1 (KEDA's
/// `GetHPAMinReplicas`).
pub fn hpa_min_replicas(min_replica_count: Option<i32>) -> i32 {
    min_replica_count.filter(|&m| m > 0).unwrap_or(1)
}

/// HPA `maxReplicas` for a ScaledObject: `maxReplicaCount` or 100 (KEDA's `GetHPAMaxReplicas`).
pub fn hpa_max_replicas(max_replica_count: Option<i32>) -> i32 {
    max_replica_count.unwrap_or(DEFAULT_MAX_REPLICA_COUNT)
}

/// `selectPolicy` of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SelectPolicy {
    /// The policy allowing the largest change (default).
    #[default]
    Max,
    /// The policy allowing the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// A scaling policy's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyType {
    /// An absolute number of pods per period.
    Pods,
    /// A percentage of the replicas at the period's start.
    Percent,
}

/// One `policies[]` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScalingPolicy {
    /// `type`.
    pub policy_type: PolicyType,
    /// `value`.
    pub value: i32,
    /// `periodSeconds`.
    pub period_seconds: i32,
}

/// `behavior.scaleUp` or `behavior.scaleDown`, as written (unset fields `None`/empty).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScalingRules {
    /// `stabilizationWindowSeconds`.
    pub stabilization_window_seconds: Option<i32>,
    /// `selectPolicy`.
    pub select_policy: Option<SelectPolicy>,
    /// `policies`; empty means the API default.
    pub policies: Vec<ScalingPolicy>,
    /// `tolerance` (a fraction, e.g. 0.05).
    pub tolerance: Option<f64>,
}

/// `spec.behavior` of an autoscaling/v2 HPA.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Behavior {
    /// `scaleUp`.
    pub scale_up: Option<ScalingRules>,
    /// `scaleDown`.
    pub scale_down: Option<ScalingRules>,
}

/// Scaling rules with the API server's defaults filled in.
#[derive(Clone, Debug, PartialEq)]
struct Rules {
    window: i64,
    select: SelectPolicy,
    policies: Vec<ScalingPolicy>,
}

fn scale_up_rules(rules: Option<&ScalingRules>) -> Rules {
    let policies = match rules {
        Some(r) if !r.policies.is_empty() => r.policies.clone(),
        _ => vec![
            ScalingPolicy {
                policy_type: PolicyType::Pods,
                value: 4,
                period_seconds: 15,
            },
            ScalingPolicy {
                policy_type: PolicyType::Percent,
                value: 100,
                period_seconds: 15,
            },
        ],
    };
    Rules {
        window: i64::from(
            rules
                .and_then(|r| r.stabilization_window_seconds)
                .unwrap_or(0),
        ),
        select: rules.and_then(|r| r.select_policy).unwrap_or_default(),
        policies,
    }
}

fn scale_down_rules(rules: Option<&ScalingRules>, default_window: i32) -> Rules {
    let policies = match rules {
        Some(r) if !r.policies.is_empty() => r.policies.clone(),
        _ => vec![ScalingPolicy {
            policy_type: PolicyType::Percent,
            value: 100,
            period_seconds: 15,
        }],
    };
    Rules {
        window: i64::from(
            rules
                .and_then(|r| r.stabilization_window_seconds)
                .unwrap_or(default_window),
        ),
        select: rules.and_then(|r| r.select_policy).unwrap_or_default(),
        policies,
    }
}

/// The usage-ratio band within which the HPA keeps the current count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerances {
    /// How far below 1 the ratio may fall.
    pub scale_down: f64,
    /// How far above 1 the ratio may rise.
    pub scale_up: f64,
}

impl Default for Tolerances {
    fn default() -> Self {
        Self {
            scale_down: DEFAULT_TOLERANCE,
            scale_up: DEFAULT_TOLERANCE,
        }
    }
}

impl Tolerances {
    /// The tolerances an HPA with `behavior` uses.
    pub fn for_behavior(behavior: Option<&Behavior>) -> Self {
        let mut tolerances = Self::default();
        if let Some(b) = behavior {
            if let Some(t) = b.scale_down.as_ref().and_then(|r| r.tolerance) {
                tolerances.scale_down = t;
            }
            if let Some(t) = b.scale_up.as_ref().and_then(|r| r.tolerance) {
                tolerances.scale_up = t;
            }
        }
        tolerances
    }

    /// Whether `ratio` is close enough to 1 to change nothing (inclusive bounds).
    pub fn is_within(&self, ratio: f64) -> bool {
        (1.0 - self.scale_down) <= ratio && ratio <= (1.0 + self.scale_up)
    }
}

/// The replica counts of the target the HPA reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetReplicas {
    /// `/scale` `spec.replicas`: the HPA's "current replicas".
    pub spec: i32,
    /// `/scale` `status.replicas`: divides `AverageValue` usage.
    pub status: i32,
    /// Running and Ready pods: multiplies the `Value` ratio.
    pub ready: i32,
}

impl TargetReplicas {
    /// A settled target: spec, status and ready pods all equal to `replicas`.
    pub fn settled(replicas: i32) -> Self {
        Self {
            spec: replicas,
            status: replicas,
            ready: replicas,
        }
    }
}

/// A quantity's `MilliValue` (values are already at milli precision).
fn milli(value: f64) -> f64 {
    if value.is_finite() {
        (value * 1000.0).round()
    } else {
        value
    }
}

/// `int32(math.Ceil(x))`, saturating.
fn ceil_i32(x: f64) -> i32 {
    if x.is_nan() {
        return 0;
    }
    x.ceil().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
}

/// What the HPA would want for one external metric alone: the "proposed replicas" of
/// `metric` with current value `value` (before bounds, stabilisation and rate limits).
pub fn proposed_replicas(
    metric: &ExternalMetric,
    value: f64,
    replicas: TargetReplicas,
    tolerances: Tolerances,
) -> i32 {
    proposed_for_target(
        metric.target_type,
        metric.target,
        value,
        replicas,
        tolerances,
    )
}

/// [`proposed_replicas`] from the target's type and value.
pub fn proposed_for_target(
    target_type: MetricTargetType,
    target: f64,
    value: f64,
    replicas: TargetReplicas,
    tolerances: Tolerances,
) -> i32 {
    let usage = milli(value);
    let target = milli(target);
    match target_type {
        MetricTargetType::Value => {
            let ratio = usage / target;
            if replicas.spec != 0 {
                if tolerances.is_within(ratio) {
                    replicas.spec
                } else {
                    ceil_i32(ratio * f64::from(replicas.ready))
                }
            } else {
                ceil_i32(ratio)
            }
        }
        // The HPA receives only Value and AverageValue targets for external metrics.
        MetricTargetType::AverageValue | MetricTargetType::Utilization => {
            let ratio = usage / (target * f64::from(replicas.status));
            if tolerances.is_within(ratio) {
                replicas.status
            } else {
                ceil_i32(usage / target)
            }
        }
    }
}

/// One external metric as the HPA sees it on a sync.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricReading {
    /// `AverageValue` or `Value`.
    pub target_type: MetricTargetType,
    /// The target, at milli precision.
    pub target: f64,
    /// The value served (the sum of the items); `None` when the HPA could not get it.
    pub value: Option<f64>,
}

/// One past unstabilised recommendation of the HPA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recommendation {
    /// The recommended count.
    pub replicas: i32,
    /// When it was made.
    pub timestamp: DateTime<Utc>,
}

/// One past rescale of the HPA, in one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScaleEvent {
    /// How many replicas were added (scale-up list) or removed (scale-down list); positive.
    pub replica_change: i32,
    /// When.
    pub timestamp: DateTime<Utc>,
}

/// Everything [`recommend`] reads.
#[derive(Clone, Debug, PartialEq)]
pub struct HpaInput {
    /// The HPA's external metrics, in order.
    pub metrics: Vec<MetricReading>,
    /// The target's replica counts.
    pub replicas: TargetReplicas,
    /// HPA `minReplicas` (see [`hpa_min_replicas`]).
    pub min_replicas: i32,
    /// HPA `maxReplicas` (see [`hpa_max_replicas`]).
    pub max_replicas: i32,
    /// HPA `behavior`.
    pub behavior: Option<Behavior>,
    /// The HPA's past recommendations. The HPA seeds this with `{current, first sync}`; pass
    /// an empty list to ignore stabilisation (what [`recommend_once`] does).
    pub recommendations: Vec<Recommendation>,
    /// Past scale-ups (only kept by HPAs with `behavior`).
    pub scale_up_events: Vec<ScaleEvent>,
    /// Past scale-downs (only kept by HPAs with `behavior`).
    pub scale_down_events: Vec<ScaleEvent>,
    /// The controller's `--horizontal-pod-autoscaler-downscale-stabilization`, in seconds.
    pub downscale_stabilization_seconds: i32,
}

/// Why the HPA lands where it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HpaState {
    /// The target is at 0: the HPA does nothing (`ScalingDisabled`).
    ScalingDisabled,
    /// Current replicas above `maxReplicas`: set to max without reading metrics.
    AboveMax,
    /// Current replicas below `minReplicas`: set to min without reading metrics.
    BelowMin,
    /// Every metric failed, or some failed and the rest would scale down: no change.
    InvalidMetrics,
    /// Computed from the metrics.
    FromMetrics,
}

/// What limited the metrics' recommendation, with the HPA's `ScalingLimited` reason names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Within range.
    DesiredWithinRange,
    /// Capped by `maxReplicas`.
    TooManyReplicas,
    /// Raised to `minReplicas`.
    TooFewReplicas,
    /// Capped by the scale-up rate.
    ScaleUpLimit,
    /// Held by the scale-down rate.
    ScaleDownLimit,
}

/// What [`recommend`] predicts.
#[derive(Clone, Debug, PartialEq)]
pub struct HpaRecommendation {
    /// The replica count the target will have after this sync.
    pub desired_replicas: i32,
    /// Whether the HPA writes `/scale`.
    pub rescale: bool,
    /// The branch taken.
    pub state: HpaState,
    /// Each metric's own proposal (`None` for a failed metric), in input order.
    pub per_metric: Vec<Option<i32>>,
    /// The maximum across metrics, before stabilisation and limits.
    pub metric_replicas: Option<i32>,
    /// After stabilisation, before rate limits and bounds.
    pub stabilized_replicas: Option<i32>,
    /// What limited the result.
    pub limit: Option<Limit>,
    /// The unstabilised recommendation the HPA records at `now`.
    pub record: Option<Recommendation>,
    /// The scale event the HPA records (only with `behavior`): `(true, e)` for a scale-up.
    pub scale_event: Option<(bool, ScaleEvent)>,
}

/// The HPA's sync at time `now`.
pub fn recommend(input: &HpaInput, now: DateTime<Utc>) -> HpaRecommendation {
    let current = input.replicas.spec;
    let mut result = HpaRecommendation {
        desired_replicas: current,
        rescale: false,
        state: HpaState::FromMetrics,
        per_metric: Vec::new(),
        metric_replicas: None,
        stabilized_replicas: None,
        limit: None,
        record: None,
        scale_event: None,
    };
    let tolerances = Tolerances::for_behavior(input.behavior.as_ref());
    result.per_metric = input
        .metrics
        .iter()
        .map(|m| {
            m.value.map(|v| {
                proposed_for_target(m.target_type, m.target, v, input.replicas, tolerances)
            })
        })
        .collect();

    let desired = if current == 0 && input.min_replicas != 0 {
        result.state = HpaState::ScalingDisabled;
        return result;
    } else if current > input.max_replicas {
        result.state = HpaState::AboveMax;
        input.max_replicas
    } else if current < input.min_replicas {
        result.state = HpaState::BelowMin;
        input.min_replicas
    } else {
        let mut replicas = 0;
        let mut invalid = 0;
        for proposal in &result.per_metric {
            match proposal {
                Some(p) if replicas == 0 || *p > replicas => replicas = *p,
                Some(_) => {}
                None => invalid += 1,
            }
        }
        if invalid >= result.per_metric.len() || (invalid > 0 && replicas < current) {
            result.state = HpaState::InvalidMetrics;
            return result;
        }
        result.metric_replicas = Some(replicas);
        let prenormalized = replicas.max(0);
        result.record = Some(Recommendation {
            replicas: prenormalized,
            timestamp: now,
        });
        let (stabilized, desired, limit) = match &input.behavior {
            None => normalize(input, prenormalized, now),
            Some(behavior) => normalize_with_behavior(input, behavior, prenormalized, now),
        };
        result.stabilized_replicas = Some(stabilized);
        result.limit = Some(limit);
        desired
    };
    result.desired_replicas = desired;
    result.rescale = desired != current;
    if result.rescale && input.behavior.is_some() {
        let up = desired > current;
        result.scale_event = Some((
            up,
            ScaleEvent {
                replica_change: (desired - current).abs(),
                timestamp: now,
            },
        ));
    }
    result
}

/// `normalizeDesiredReplicas`: max over the downscale window, then the fixed limits.
fn normalize(input: &HpaInput, prenormalized: i32, now: DateTime<Utc>) -> (i32, i32, Limit) {
    let cutoff = now - Duration::seconds(i64::from(input.downscale_stabilization_seconds));
    let stabilized = input
        .recommendations
        .iter()
        .filter(|r| r.timestamp >= cutoff)
        .map(|r| r.replicas)
        .fold(prenormalized, i32::max);
    let current = input.replicas.spec;
    let scale_up_limit =
        (SCALE_UP_LIMIT_FACTOR * f64::from(current)).max(SCALE_UP_LIMIT_MINIMUM) as i32;
    let (maximum, limit_reason) = if input.max_replicas > scale_up_limit {
        (scale_up_limit, Limit::ScaleUpLimit)
    } else {
        (input.max_replicas, Limit::TooManyReplicas)
    };
    let (desired, limit) = if stabilized < input.min_replicas {
        (input.min_replicas, Limit::TooFewReplicas)
    } else if stabilized > maximum {
        (maximum, limit_reason)
    } else {
        (stabilized, Limit::DesiredWithinRange)
    };
    (stabilized, desired, limit)
}

/// `normalizeDesiredReplicasWithBehaviors`.
fn normalize_with_behavior(
    input: &HpaInput,
    behavior: &Behavior,
    prenormalized: i32,
    now: DateTime<Utc>,
) -> (i32, i32, Limit) {
    let up = scale_up_rules(behavior.scale_up.as_ref());
    let down = scale_down_rules(
        behavior.scale_down.as_ref(),
        input.downscale_stabilization_seconds,
    );
    let current = input.replicas.spec;

    let up_cutoff = now - Duration::seconds(up.window);
    let down_cutoff = now - Duration::seconds(down.window);
    let mut up_recommendation = prenormalized;
    let mut down_recommendation = prenormalized;
    for rec in &input.recommendations {
        if rec.timestamp > up_cutoff {
            up_recommendation = up_recommendation.min(rec.replicas);
        }
        if rec.timestamp > down_cutoff {
            down_recommendation = down_recommendation.max(rec.replicas);
        }
    }
    let stabilized = current.max(up_recommendation).min(down_recommendation);

    if stabilized > current {
        let limit = scale_up_limit(current, input, &up, now).max(current);
        let (maximum, reason) = if input.max_replicas > limit {
            (limit, Limit::ScaleUpLimit)
        } else {
            (input.max_replicas, Limit::TooManyReplicas)
        };
        if stabilized > maximum {
            return (stabilized, maximum, reason);
        }
    } else if stabilized < current {
        let limit = scale_down_limit(current, input, &down, now).min(current);
        let (minimum, reason) = if input.min_replicas < limit {
            (limit, Limit::ScaleDownLimit)
        } else {
            (input.min_replicas, Limit::TooFewReplicas)
        };
        if stabilized < minimum {
            return (stabilized, minimum, reason);
        }
    }
    (stabilized, stabilized, Limit::DesiredWithinRange)
}

/// Replicas changed within the last `period_seconds` (exclusive of the period's start).
fn change_in_period(events: &[ScaleEvent], period_seconds: i32, now: DateTime<Utc>) -> i32 {
    let cutoff = now - Duration::seconds(i64::from(period_seconds));
    events
        .iter()
        .filter(|e| e.timestamp > cutoff)
        .map(|e| e.replica_change)
        .fold(0, i32::saturating_add)
}

fn period_start(current: i32, input: &HpaInput, period_seconds: i32, now: DateTime<Utc>) -> i32 {
    let added = change_in_period(&input.scale_up_events, period_seconds, now);
    let removed = change_in_period(&input.scale_down_events, period_seconds, now);
    current.saturating_sub(added).saturating_add(removed)
}

/// `calculateScaleUpLimitWithScalingRules`.
fn scale_up_limit(current: i32, input: &HpaInput, rules: &Rules, now: DateTime<Utc>) -> i32 {
    let (mut result, pick): (i32, fn(i32, i32) -> i32) = match rules.select {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Min => (i32::MAX, i32::min),
        SelectPolicy::Max => (i32::MIN, i32::max),
    };
    for policy in &rules.policies {
        let start = period_start(current, input, policy.period_seconds, now);
        let proposed = match policy.policy_type {
            PolicyType::Pods => start.saturating_add(policy.value),
            PolicyType::Percent => {
                ceil_i32(f64::from(start) * (1.0 + f64::from(policy.value) / 100.0))
            }
        };
        result = pick(result, proposed);
    }
    result
}

/// `calculateScaleDownLimitWithBehaviors`.
fn scale_down_limit(current: i32, input: &HpaInput, rules: &Rules, now: DateTime<Utc>) -> i32 {
    let (mut result, pick): (i32, fn(i32, i32) -> i32) = match rules.select {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Min => (i32::MIN, i32::max),
        SelectPolicy::Max => (i32::MAX, i32::min),
    };
    for policy in &rules.policies {
        let start = period_start(current, input, policy.period_seconds, now);
        let proposed = match policy.policy_type {
            PolicyType::Pods => start.saturating_sub(policy.value),
            PolicyType::Percent => {
                // Go's int32(float) truncates toward zero.
                (f64::from(start) * (1.0 - f64::from(policy.value) / 100.0))
                    .trunc()
                    .clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
            }
        };
        result = pick(result, proposed);
    }
    result
}

/// A one-shot prediction without history (no stabilisation, no past scale events): what the HPA
/// steers to right now for these metrics, for a target settled at `current` replicas.
pub fn recommend_once(
    metrics: &[MetricReading],
    current: i32,
    min_replicas: i32,
    max_replicas: i32,
    behavior: Option<&Behavior>,
    now: DateTime<Utc>,
) -> HpaRecommendation {
    recommend(
        &HpaInput {
            metrics: metrics.to_vec(),
            replicas: TargetReplicas::settled(current),
            min_replicas,
            max_replicas,
            behavior: behavior.cloned(),
            recommendations: Vec::new(),
            scale_up_events: Vec::new(),
            scale_down_events: Vec::new(),
            downscale_stabilization_seconds: DEFAULT_SCALE_DOWN_STABILIZATION_SECONDS,
        },
        now,
    )
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
    }

    fn average(target: f64, value: f64) -> MetricReading {
        MetricReading {
            target_type: MetricTargetType::AverageValue,
            target,
            value: Some(value),
        }
    }

    fn value_metric(target: f64, value: f64) -> MetricReading {
        MetricReading {
            target_type: MetricTargetType::Value,
            target,
            value: Some(value),
        }
    }

    fn failed() -> MetricReading {
        MetricReading {
            target_type: MetricTargetType::AverageValue,
            target: 1.0,
            value: None,
        }
    }

    fn input(current: i32) -> HpaInput {
        HpaInput {
            metrics: Vec::new(),
            replicas: TargetReplicas::settled(current),
            min_replicas: 1,
            max_replicas: 100,
            behavior: None,
            recommendations: Vec::new(),
            scale_up_events: Vec::new(),
            scale_down_events: Vec::new(),
            downscale_stabilization_seconds: DEFAULT_SCALE_DOWN_STABILIZATION_SECONDS,
        }
    }

    struct ReplicasCase {
        name: &'static str,
        min: Option<i32>,
        max: Option<i32>,
        expected_min: i32,
        expected_max: i32,
    }

    #[test]
    fn hpa_replicas_like_get_hpa_replicas() {
        let cases = [
            ReplicasCase {
                name: "Default min and max",
                min: None,
                max: None,
                expected_min: 1,
                expected_max: 100,
            },
            ReplicasCase {
                name: "Custom min, default max",
                min: Some(5),
                max: None,
                expected_min: 5,
                expected_max: 100,
            },
            ReplicasCase {
                name: "Default min, custom max",
                min: None,
                max: Some(10),
                expected_min: 1,
                expected_max: 10,
            },
            ReplicasCase {
                name: "Custom min and max",
                min: Some(5),
                max: Some(10),
                expected_min: 5,
                expected_max: 10,
            },
            ReplicasCase {
                name: "Zero min, default max",
                min: Some(0),
                max: None,
                expected_min: 1,
                expected_max: 100,
            },
        ];
        for case in cases {
            assert_eq!(
                hpa_min_replicas(case.min),
                case.expected_min,
                "{}",
                case.name
            );
            assert_eq!(
                hpa_max_replicas(case.max),
                case.expected_max,
                "{}",
                case.name
            );
        }
    }

    struct ProposalCase {
        name: &'static str,
        target_type: MetricTargetType,
        target: f64,
        value: f64,
        replicas: TargetReplicas,
        expected: i32,
    }

    #[test]
    fn per_metric_proposals() {
        let cases = [
            ProposalCase {
                name: "AverageValue: ceil(value / target)",
                target_type: MetricTargetType::AverageValue,
                target: 10.0,
                value: 45.0,
                replicas: TargetReplicas::settled(1),
                expected: 5,
            },
            ProposalCase {
                name: "AverageValue: within tolerance keeps status replicas",
                target_type: MetricTargetType::AverageValue,
                target: 10.0,
                value: 41.0,
                replicas: TargetReplicas::settled(4),
                expected: 4,
            },
            ProposalCase {
                name: "AverageValue: exactly 1.1 is still within",
                target_type: MetricTargetType::AverageValue,
                target: 10.0,
                value: 44.0,
                replicas: TargetReplicas::settled(4),
                expected: 4,
            },
            ProposalCase {
                name: "AverageValue: just past 1.1 scales",
                target_type: MetricTargetType::AverageValue,
                target: 10.0,
                value: 44.1,
                replicas: TargetReplicas::settled(4),
                expected: 5,
            },
            ProposalCase {
                name: "AverageValue: scale down below 0.9",
                target_type: MetricTargetType::AverageValue,
                target: 10.0,
                value: 5.0,
                replicas: TargetReplicas::settled(4),
                expected: 1,
            },
            ProposalCase {
                name: "AverageValue: zero value proposes zero",
                target_type: MetricTargetType::AverageValue,
                target: 10.0,
                value: 0.0,
                replicas: TargetReplicas::settled(4),
                expected: 0,
            },
            ProposalCase {
                name: "cron-style target 1 gives exactly the value",
                target_type: MetricTargetType::AverageValue,
                target: 1.0,
                value: 7.0,
                replicas: TargetReplicas::settled(2),
                expected: 7,
            },
            ProposalCase {
                name: "Value: ceil(ready × value / target)",
                target_type: MetricTargetType::Value,
                target: 10.0,
                value: 25.0,
                replicas: TargetReplicas::settled(2),
                expected: 5,
            },
            ProposalCase {
                name: "Value: uses ready pods, not spec replicas",
                target_type: MetricTargetType::Value,
                target: 10.0,
                value: 25.0,
                replicas: TargetReplicas {
                    spec: 4,
                    status: 4,
                    ready: 2,
                },
                expected: 5,
            },
            ProposalCase {
                name: "Value: within tolerance keeps spec replicas",
                target_type: MetricTargetType::Value,
                target: 10.0,
                value: 10.5,
                replicas: TargetReplicas::settled(3),
                expected: 3,
            },
            ProposalCase {
                name: "Value at zero replicas: ceil(ratio)",
                target_type: MetricTargetType::Value,
                target: 10.0,
                value: 25.0,
                replicas: TargetReplicas::settled(0),
                expected: 3,
            },
        ];
        for case in cases {
            let got = proposed_for_target(
                case.target_type,
                case.target,
                case.value,
                case.replicas,
                Tolerances::default(),
            );
            assert_eq!(got, case.expected, "{}", case.name);
        }
        let metric = ExternalMetric {
            name: crate::metric::MetricName::indexed(0, "redis-list"),
            target: 5.0,
            target_type: MetricTargetType::AverageValue,
        };
        assert_eq!(
            proposed_replicas(
                &metric,
                23.0,
                TargetReplicas::settled(1),
                Tolerances::default()
            ),
            5
        );
    }

    struct RecommendCase {
        name: &'static str,
        input: HpaInput,
        desired: i32,
        state: HpaState,
        limit: Option<Limit>,
    }

    fn with(mut input: HpaInput, metrics: Vec<MetricReading>) -> HpaInput {
        input.metrics = metrics;
        input
    }

    fn at(seconds_ago: i64, replicas: i32) -> Recommendation {
        Recommendation {
            replicas,
            timestamp: now() - Duration::seconds(seconds_ago),
        }
    }

    fn event(seconds_ago: i64, replica_change: i32) -> ScaleEvent {
        ScaleEvent {
            replica_change,
            timestamp: now() - Duration::seconds(seconds_ago),
        }
    }

    fn rules(
        policies: Vec<ScalingPolicy>,
        select: Option<SelectPolicy>,
        window: Option<i32>,
    ) -> ScalingRules {
        ScalingRules {
            stabilization_window_seconds: window,
            select_policy: select,
            policies,
            tolerance: None,
        }
    }

    fn pods(value: i32, period_seconds: i32) -> ScalingPolicy {
        ScalingPolicy {
            policy_type: PolicyType::Pods,
            value,
            period_seconds,
        }
    }

    fn percent(value: i32, period_seconds: i32) -> ScalingPolicy {
        ScalingPolicy {
            policy_type: PolicyType::Percent,
            value,
            period_seconds,
        }
    }

    #[test]
    fn recommend_follows_the_hpa_controller() {
        let cases = [
            RecommendCase {
                name: "maximum across metrics",
                input: with(input(2), vec![average(10.0, 30.0), average(5.0, 35.0)]),
                desired: 4,
                state: HpaState::FromMetrics,
                limit: Some(Limit::ScaleUpLimit),
            },
            RecommendCase {
                name: "without behavior the scale up is capped at max(2 × current, 4)",
                input: with(input(3), vec![average(1.0, 20.0)]),
                desired: 6,
                state: HpaState::FromMetrics,
                limit: Some(Limit::ScaleUpLimit),
            },
            RecommendCase {
                name: "capped by maxReplicas",
                input: HpaInput {
                    max_replicas: 5,
                    ..with(input(4), vec![average(1.0, 20.0)])
                },
                desired: 5,
                state: HpaState::FromMetrics,
                limit: Some(Limit::TooManyReplicas),
            },
            RecommendCase {
                name: "raised to minReplicas",
                input: HpaInput {
                    min_replicas: 3,
                    ..with(input(4), vec![average(10.0, 1.0)])
                },
                desired: 3,
                state: HpaState::FromMetrics,
                limit: Some(Limit::TooFewReplicas),
            },
            RecommendCase {
                name: "target at zero disables the HPA",
                input: with(input(0), vec![average(1.0, 20.0)]),
                desired: 0,
                state: HpaState::ScalingDisabled,
                limit: None,
            },
            RecommendCase {
                name: "above max goes to max without metrics",
                input: HpaInput {
                    max_replicas: 5,
                    ..with(input(9), vec![failed()])
                },
                desired: 5,
                state: HpaState::AboveMax,
                limit: None,
            },
            RecommendCase {
                name: "below min goes to min without metrics",
                input: HpaInput {
                    min_replicas: 3,
                    ..with(input(1), vec![failed()])
                },
                desired: 3,
                state: HpaState::BelowMin,
                limit: None,
            },
            RecommendCase {
                name: "all metrics failed: no change",
                input: with(input(4), vec![failed()]),
                desired: 4,
                state: HpaState::InvalidMetrics,
                limit: None,
            },
            RecommendCase {
                name: "one failed and the rest would scale down: no change",
                input: with(input(4), vec![failed(), average(10.0, 10.0)]),
                desired: 4,
                state: HpaState::InvalidMetrics,
                limit: None,
            },
            RecommendCase {
                name: "one failed and the rest scale up: scale",
                input: with(input(2), vec![failed(), average(10.0, 30.0)]),
                desired: 3,
                state: HpaState::FromMetrics,
                limit: Some(Limit::DesiredWithinRange),
            },
            RecommendCase {
                name: "downscale stabilisation keeps the highest recent recommendation",
                input: HpaInput {
                    recommendations: vec![at(100, 6), at(400, 9)],
                    ..with(input(8), vec![average(10.0, 20.0)])
                },
                desired: 6,
                state: HpaState::FromMetrics,
                limit: Some(Limit::DesiredWithinRange),
            },
            RecommendCase {
                name: "behavior defaults: scale up by max(4 pods, 100 %) per 15 s",
                input: HpaInput {
                    behavior: Some(Behavior::default()),
                    ..with(input(10), vec![average(1.0, 50.0)])
                },
                desired: 20,
                state: HpaState::FromMetrics,
                limit: Some(Limit::ScaleUpLimit),
            },
            RecommendCase {
                name: "behavior: recent scale-ups count against the period",
                input: HpaInput {
                    behavior: Some(Behavior {
                        scale_up: Some(rules(vec![pods(2, 60)], None, None)),
                        scale_down: None,
                    }),
                    scale_up_events: vec![event(30, 2), event(90, 5)],
                    ..with(input(6), vec![average(1.0, 50.0)])
                },
                desired: 6,
                state: HpaState::FromMetrics,
                limit: Some(Limit::ScaleUpLimit),
            },
            RecommendCase {
                name: "behavior: selectPolicy Min picks the smaller scale up",
                input: HpaInput {
                    behavior: Some(Behavior {
                        scale_up: Some(rules(
                            vec![pods(4, 60), percent(10, 60)],
                            Some(SelectPolicy::Min),
                            None,
                        )),
                        scale_down: None,
                    }),
                    ..with(input(10), vec![average(1.0, 50.0)])
                },
                desired: 11,
                state: HpaState::FromMetrics,
                limit: Some(Limit::ScaleUpLimit),
            },
            RecommendCase {
                name: "behavior: scale up Disabled (paused-scale-out)",
                input: HpaInput {
                    behavior: Some(Behavior {
                        scale_up: Some(rules(Vec::new(), Some(SelectPolicy::Disabled), None)),
                        scale_down: None,
                    }),
                    ..with(input(3), vec![average(1.0, 50.0)])
                },
                desired: 3,
                state: HpaState::FromMetrics,
                limit: Some(Limit::ScaleUpLimit),
            },
            RecommendCase {
                name: "behavior: scale down Disabled (paused-scale-in)",
                input: HpaInput {
                    behavior: Some(Behavior {
                        scale_up: None,
                        scale_down: Some(rules(Vec::new(), Some(SelectPolicy::Disabled), Some(0))),
                    }),
                    ..with(input(8), vec![average(10.0, 10.0)])
                },
                desired: 8,
                state: HpaState::FromMetrics,
                limit: Some(Limit::ScaleDownLimit),
            },
            RecommendCase {
                name: "behavior: scale down by percent truncates",
                input: HpaInput {
                    behavior: Some(Behavior {
                        scale_up: None,
                        scale_down: Some(rules(vec![percent(50, 60)], None, Some(0))),
                    }),
                    ..with(input(9), vec![average(10.0, 10.0)])
                },
                desired: 4,
                state: HpaState::FromMetrics,
                limit: Some(Limit::ScaleDownLimit),
            },
            RecommendCase {
                name: "behavior: scale-down window uses the highest recommendation inside it",
                input: HpaInput {
                    behavior: Some(Behavior {
                        scale_up: None,
                        scale_down: Some(rules(Vec::new(), None, Some(60))),
                    }),
                    recommendations: vec![at(30, 7), at(60, 9)],
                    ..with(input(8), vec![average(10.0, 10.0)])
                },
                desired: 7,
                state: HpaState::FromMetrics,
                limit: Some(Limit::DesiredWithinRange),
            },
            RecommendCase {
                name: "behavior: scale-up window holds back to the lowest recommendation",
                input: HpaInput {
                    behavior: Some(Behavior {
                        scale_up: Some(rules(Vec::new(), None, Some(120))),
                        scale_down: None,
                    }),
                    recommendations: vec![at(60, 3)],
                    ..with(input(2), vec![average(1.0, 6.0)])
                },
                desired: 3,
                state: HpaState::FromMetrics,
                limit: Some(Limit::DesiredWithinRange),
            },
        ];
        for case in cases {
            let got = recommend(&case.input, now());
            assert_eq!(got.desired_replicas, case.desired, "{}", case.name);
            assert_eq!(got.state, case.state, "{}", case.name);
            assert_eq!(got.limit, case.limit, "{}", case.name);
        }
    }

    #[test]
    fn records_for_the_history() {
        let got = recommend(
            &HpaInput {
                behavior: Some(Behavior::default()),
                ..with(input(2), vec![average(1.0, 3.0)])
            },
            now(),
        );
        assert_eq!(
            got.record,
            Some(Recommendation {
                replicas: 3,
                timestamp: now()
            })
        );
        assert_eq!(
            got.scale_event,
            Some((
                true,
                ScaleEvent {
                    replica_change: 1,
                    timestamp: now()
                }
            ))
        );
        let once = recommend_once(&[average(2.0, 9.0)], 1, 1, 100, None, now());
        assert_eq!(once.desired_replicas, 4);
        assert_eq!(once.scale_event, None);
    }

    fn behavior_strategy() -> impl Strategy<Value = Option<Behavior>> {
        let policy = (any::<bool>(), 1..200i32, 1..600i32).prop_map(|(is_pods, value, period)| {
            ScalingPolicy {
                policy_type: if is_pods {
                    PolicyType::Pods
                } else {
                    PolicyType::Percent
                },
                value,
                period_seconds: period,
            }
        });
        let select = prop_oneof![
            Just(None),
            Just(Some(SelectPolicy::Max)),
            Just(Some(SelectPolicy::Min)),
            Just(Some(SelectPolicy::Disabled)),
        ];
        let rules = (
            proptest::collection::vec(policy, 0..3),
            select,
            proptest::option::of(0..3600i32),
        )
            .prop_map(|(policies, select_policy, window)| ScalingRules {
                stabilization_window_seconds: window,
                select_policy,
                policies,
                tolerance: None,
            });
        proptest::option::of(
            (
                proptest::option::of(rules.clone()),
                proptest::option::of(rules),
            )
                .prop_map(|(scale_up, scale_down)| Behavior {
                    scale_up,
                    scale_down,
                }),
        )
    }

    proptest! {
        #[test]
        fn result_stays_within_bounds(
            current in 1..200i32,
            min in 1..50i32,
            extra in 0..100i32,
            value in 0.0..1.0e6f64,
            target in 0.001..1000.0f64,
            is_value in any::<bool>(),
            behavior in behavior_strategy(),
            history in proptest::collection::vec((0..900i64, 0..300i32), 0..5),
            ups in proptest::collection::vec((0..900i64, 1..50i32), 0..3),
            downs in proptest::collection::vec((0..900i64, 1..50i32), 0..3),
        ) {
            let max = min + extra;
            let metric = if is_value { value_metric(target, value) } else { average(target, value) };
            let got = recommend(
                &HpaInput {
                    metrics: vec![metric],
                    min_replicas: min,
                    max_replicas: max,
                    behavior,
                    recommendations: history.into_iter().map(|(ago, r)| at(ago, r)).collect(),
                    scale_up_events: ups.into_iter().map(|(ago, c)| event(ago, c)).collect(),
                    scale_down_events: downs.into_iter().map(|(ago, c)| event(ago, c)).collect(),
                    ..input(current)
                },
                now(),
            );
            prop_assert!(got.desired_replicas >= min, "{} < min {}", got.desired_replicas, min);
            prop_assert!(got.desired_replicas <= max, "{} > max {}", got.desired_replicas, max);
        }

        #[test]
        fn monotone_in_the_metric_value(
            current in 1..100i32,
            a in 0.0..1.0e5f64,
            b in 0.0..1.0e5f64,
            target in 0.001..1000.0f64,
            is_value in any::<bool>(),
            min in 1..10i32,
            extra in 0..200i32,
        ) {
            let (low, high) = if a <= b { (a, b) } else { (b, a) };
            let make = |v: f64| if is_value { value_metric(target, v) } else { average(target, v) };
            let run = |v: f64| recommend_once(&[make(v)], current, min, min + extra, None, now()).desired_replicas;
            prop_assert!(run(low) <= run(high));
            let proposal = |v: f64| proposed_for_target(
                make(v).target_type, target, v, TargetReplicas::settled(current), Tolerances::default());
            prop_assert!(proposal(low) <= proposal(high));
        }
    }
}
