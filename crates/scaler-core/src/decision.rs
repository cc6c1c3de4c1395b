//! KEDA's `RequestScale`: what the scale loop does with the ScaledObject's activity — the 0 ↔ min
//! and idle ↔ min steps the HPA cannot take, the cooldown, and the conditions and events.
//!
//! KEDA's rule (`pkg/scaling/executor/scale_scaledobjects.go`), as reproduced by [`decide`]:
//! - **Fields read**: `spec.{minReplicaCount, idleReplicaCount, cooldownPeriod (default 300),
//!   initialCooldownPeriod (default 0), fallback.replicas}`, `status.{lastActiveTime,
//!   scaleTargetKind}`, `metadata.creationTimestamp`, the annotations `paused`,
//!   `paused-replicas`, `paused-scale-in`, `paused-scale-out`, `force-activation`, and the target's
//!   current replica count. `min = minReplicaCount or 0`.
//! - The Ready condition starts as True `ScaledObjectReady` on every poll.
//! - **Paused** (`paused` / `paused-replicas`): Paused=True and nothing else.
//! - **Active or forced**: Active=True `ScalerActive`, then the first match of
//!   1. (`idleReplicaCount` set and current < min) or current == 0 → scale to `max(min, 1)`
//!      (skipped under `paused-scale-out`), event `KEDAScaleTargetActivated`, lastActiveTime = now;
//!   2. a trigger failed → Ready=Unknown `PartialTriggerError` (lastActiveTime **not** refreshed);
//!   3. otherwise lastActiveTime = now.
//! - **Inactive**: Active=False `ScalerNotActive`, then the first match of
//!   1. a trigger failed, `fallback` set and `fallback.replicas != 0` → nothing;
//!   2. a trigger failed and no `fallback` → Ready=False `TriggerError`;
//!   3. (`idleReplicaCount` set and current > idle) or (current > 0 and min == 0) → unless
//!      `paused-scale-in`: when the cooldown has expired scale to `idleReplicaCount` or
//!      `minReplicaCount` (event `KEDAScaleTargetDeactivated`), else Active=False
//!      `ScalerCooldown`. Expiry is strict: `lastActiveTime + cooldownPeriod < now`, or without
//!      lastActiveTime `creationTimestamp + initialCooldownPeriod < now`;
//!   4. `idleReplicaCount` unset and current < min → scale to `minReplicaCount` (no event);
//!   5. otherwise nothing.
//!
//! Note that rule order makes a failing trigger with `fallback.replicas == 0` fall through to
//! rule 3: it can scale to zero. [`check_replica_bounds`] ports `CheckReplicaCountBoundsAreValid`.

use chrono::{DateTime, Duration, Utc};
use thiserror::Error;

use crate::metric::MetricName;

/// `cooldownPeriod` when unset, in seconds.
pub const DEFAULT_COOLDOWN_PERIOD: i32 = 300;
/// `initialCooldownPeriod` when unset, in seconds.
pub const DEFAULT_INITIAL_COOLDOWN_PERIOD: i32 = 0;
/// `maxReplicaCount` when unset.
pub const DEFAULT_MAX_REPLICA_COUNT: i32 = 100;

/// A condition's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConditionStatus {
    /// `True`.
    True,
    /// `False`.
    False,
    /// `Unknown`.
    Unknown,
}

impl ConditionStatus {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }
}

/// A ScaledObject condition's status, reason and message (the type is implied by the field).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    /// `status`.
    pub status: ConditionStatus,
    /// `reason`, one of KEDA's fixed reasons.
    pub reason: &'static str,
    /// `message`.
    pub message: String,
}

impl Condition {
    /// A condition from its parts.
    pub fn new(status: ConditionStatus, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            reason,
            message: message.into(),
        }
    }

    /// Ready=True `ScaledObjectReady`, which every poll starts from.
    pub fn ready() -> Self {
        Self::new(
            ConditionStatus::True,
            "ScaledObjectReady",
            "ScaledObject is defined correctly and is ready for scaling",
        )
    }

    fn scaler_active(forced: bool) -> Self {
        let message = if forced {
            "Scaling is performed because activation is being forced by annotation"
        } else {
            "Scaling is performed because triggers are active"
        };
        Self::new(ConditionStatus::True, "ScalerActive", message)
    }

    fn scaler_not_active() -> Self {
        Self::new(
            ConditionStatus::False,
            "ScalerNotActive",
            "Scaling is not performed because triggers are not active",
        )
    }

    fn scaler_cooldown() -> Self {
        Self::new(
            ConditionStatus::False,
            "ScalerCooldown",
            "Scaler cooling down because triggers are not active",
        )
    }

    fn paused() -> Self {
        Self::new(
            ConditionStatus::True,
            "ScaledObjectPaused",
            "ScaledObject is paused",
        )
    }
}

/// The scale target, as it appears in event messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetRef {
    /// `status.scaleTargetKind`, e.g. `apps/v1.Deployment` (empty before it is resolved).
    pub kind: String,
    /// The ScaledObject's namespace.
    pub namespace: String,
    /// `spec.scaleTargetRef.name`.
    pub name: String,
}

/// Everything [`decide`] reads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DecisionInput {
    /// Whether any trigger is active (see [`crate::activity`]).
    pub active: bool,
    /// Whether any trigger failed.
    pub error: bool,
    /// The active metric names, for the activation event.
    pub active_metrics: Vec<MetricName>,
    /// `autoscaling.keda.sh/force-activation`.
    pub force_activation: bool,
    /// `autoscaling.keda.sh/paused` or `paused-replicas`.
    pub paused: bool,
    /// `autoscaling.keda.sh/paused-scale-in`.
    pub paused_scale_in: bool,
    /// `autoscaling.keda.sh/paused-scale-out`.
    pub paused_scale_out: bool,
    /// `spec.fallback.replicas` when `spec.fallback` is present (valid or not).
    pub fallback_replicas: Option<i32>,
    /// The target's current replica count.
    pub current_replicas: i32,
    /// `spec.minReplicaCount`.
    pub min_replica_count: Option<i32>,
    /// `spec.idleReplicaCount`.
    pub idle_replica_count: Option<i32>,
    /// `spec.cooldownPeriod` in seconds (default 300).
    pub cooldown_period: Option<i32>,
    /// `spec.initialCooldownPeriod` in seconds (default 0).
    pub initial_cooldown_period: Option<i32>,
    /// `status.lastActiveTime`.
    pub last_active_time: Option<DateTime<Utc>>,
    /// `metadata.creationTimestamp`.
    pub creation_timestamp: Option<DateTime<Utc>>,
    /// The target, for event messages.
    pub target: TargetRef,
}

/// What the loop does this poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Paused: nothing runs.
    Paused,
    /// Scale from zero (or idle) to `max(min, 1)`.
    Activate,
    /// Active, but `paused-scale-out` blocks the step from zero or idle.
    ActivationBlockedByPausedScaleOut,
    /// Active with a failing trigger: Ready=Unknown, lastActiveTime kept.
    PartialTriggerError,
    /// Active and already scaled: refresh lastActiveTime.
    KeepActive,
    /// Inactive with a failing trigger and a non-zero fallback: wait for the HPA's fallback.
    WaitForFallback,
    /// Inactive with a failing trigger and no fallback: Ready=False.
    TriggerError,
    /// Cooldown expired: scale to idle or min.
    Deactivate,
    /// Inactive but still inside the cooldown window.
    CoolingDown,
    /// Inactive, cooldown or not, but `paused-scale-in` blocks the step down.
    DeactivationBlockedByPausedScaleIn,
    /// Inactive, below min without idle mode: scale up to min.
    ScaleToMin,
    /// Nothing to do.
    NoChange,
}

/// A Kubernetes event's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// `Normal`.
    Normal,
    /// `Warning`.
    Warning,
}

/// An event to record on the ScaledObject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// `Normal` or `Warning`.
    pub event_type: EventType,
    /// KEDA's event reason.
    pub reason: &'static str,
    /// KEDA's message.
    pub message: String,
}

/// The events for a `/scale` update: one if it succeeds, one if it fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaleEvents {
    /// Recorded when the update succeeds.
    pub on_success: Event,
    /// Recorded when the update fails.
    pub on_failure: Event,
}

/// What [`decide`] concluded.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleDecision {
    /// The branch taken.
    pub action: Action,
    /// The replica count to write through `/scale`, if any.
    pub scale_to: Option<i32>,
    /// The Ready condition to write.
    pub ready: Condition,
    /// The Active condition to write; `None` while paused (left as it was).
    pub active: Option<Condition>,
    /// The Paused condition to write, when paused.
    pub paused: Option<Condition>,
    /// The new `status.lastActiveTime`, if it changes. For [`Action::Activate`] KEDA writes it
    /// only once the `/scale` update has succeeded.
    pub last_active_time: Option<DateTime<Utc>>,
    /// Time left before the scale down, while cooling down (zero at the exact deadline: expiry
    /// needs `now` strictly after it).
    pub cooldown_remaining: Option<Duration>,
    /// The events for the `/scale` update in `scale_to`, when KEDA records any.
    pub events: Option<ScaleEvents>,
}

/// KEDA's `RequestScale` decision for one poll at time `now`.
pub fn decide(input: &DecisionInput, now: DateTime<Utc>) -> ScaleDecision {
    let mut decision = ScaleDecision {
        action: Action::NoChange,
        scale_to: None,
        ready: Condition::ready(),
        active: None,
        paused: None,
        last_active_time: None,
        cooldown_remaining: None,
        events: None,
    };
    if input.paused {
        decision.action = Action::Paused;
        decision.paused = Some(Condition::paused());
        return decision;
    }
    let min = input.min_replica_count.unwrap_or(0);
    let current = input.current_replicas;

    if input.active || input.force_activation {
        decision.active = Some(Condition::scaler_active(input.force_activation));
        let below_min_in_idle_mode = input.idle_replica_count.is_some() && current < min;
        if below_min_in_idle_mode || current == 0 {
            if input.paused_scale_out {
                decision.action = Action::ActivationBlockedByPausedScaleOut;
                return decision;
            }
            let to = activation_replicas(input.min_replica_count);
            decision.action = Action::Activate;
            decision.scale_to = Some(to);
            decision.last_active_time = Some(now);
            decision.events = Some(activation_events(input, current, to));
        } else if input.error {
            decision.action = Action::PartialTriggerError;
            decision.ready = Condition::new(
                ConditionStatus::Unknown,
                "PartialTriggerError",
                "Some triggers defined in ScaledObject are not working correctly",
            );
        } else {
            decision.action = Action::KeepActive;
            decision.last_active_time = Some(now);
        }
        return decision;
    }

    decision.active = Some(Condition::scaler_not_active());
    if input.error && input.fallback_replicas.is_some_and(|r| r != 0) {
        decision.action = Action::WaitForFallback;
    } else if input.error && input.fallback_replicas.is_none() {
        decision.action = Action::TriggerError;
        decision.ready = Condition::new(
            ConditionStatus::False,
            "TriggerError",
            "Triggers defined in ScaledObject are not working correctly",
        );
    } else if input.idle_replica_count.is_some_and(|idle| current > idle)
        || (current > 0 && min == 0)
    {
        if input.paused_scale_in {
            decision.action = Action::DeactivationBlockedByPausedScaleIn;
            return decision;
        }
        match cooldown_remaining(input, now) {
            None => {
                let to = input.idle_replica_count.unwrap_or(min);
                decision.action = Action::Deactivate;
                decision.scale_to = Some(to);
                decision.events = Some(deactivation_events(&input.target, current, to));
            }
            Some(remaining) => {
                decision.action = Action::CoolingDown;
                decision.active = Some(Condition::scaler_cooldown());
                decision.cooldown_remaining = Some(remaining);
            }
        }
    } else if input.idle_replica_count.is_none() && current < min {
        decision.action = Action::ScaleToMin;
        decision.scale_to = Some(min);
    }
    decision
}

/// The count KEDA activates to: `minReplicaCount` if > 0, else 1.
pub fn activation_replicas(min_replica_count: Option<i32>) -> i32 {
    min_replica_count.filter(|&m| m > 0).unwrap_or(1)
}

/// `None` once the cooldown has expired, else the time left (possibly zero).
fn cooldown_remaining(input: &DecisionInput, now: DateTime<Utc>) -> Option<Duration> {
    let deadline = match input.last_active_time {
        Some(last) => {
            last + Duration::seconds(i64::from(
                input.cooldown_period.unwrap_or(DEFAULT_COOLDOWN_PERIOD),
            ))
        }
        None => {
            // A missing creation timestamp is Go's zero time: long expired.
            let created = input.creation_timestamp?;
            created
                + Duration::seconds(i64::from(
                    input
                        .initial_cooldown_period
                        .unwrap_or(DEFAULT_INITIAL_COOLDOWN_PERIOD),
                ))
        }
    };
    if deadline < now {
        None
    } else {
        Some(deadline - now)
    }
}

fn activation_events(input: &DecisionInput, from: i32, to: i32) -> ScaleEvents {
    let TargetRef {
        kind,
        namespace,
        name,
    } = &input.target;
    let message = if input.force_activation {
        format!(
            "Scaled {kind} {namespace}/{name} from {from} to {to}, caused by forced activation annotation"
        )
    } else {
        let triggers: Vec<&str> = input
            .active_metrics
            .iter()
            .map(MetricName::as_str)
            .collect();
        format!(
            "Scaled {kind} {namespace}/{name} from {from} to {to}, triggered by {}",
            triggers.join(";")
        )
    };
    ScaleEvents {
        on_success: Event {
            event_type: EventType::Normal,
            reason: "KEDAScaleTargetActivated",
            message,
        },
        on_failure: Event {
            event_type: EventType::Warning,
            reason: "KEDAScaleTargetActivationFailed",
            message: format!("Failed to scale {kind} {namespace}/{name} from {from} to {to}"),
        },
    }
}

fn deactivation_events(target: &TargetRef, from: i32, to: i32) -> ScaleEvents {
    let TargetRef {
        kind,
        namespace,
        name,
    } = target;
    ScaleEvents {
        on_success: Event {
            event_type: EventType::Normal,
            reason: "KEDAScaleTargetDeactivated",
            message: format!("Deactivated {kind} {namespace}/{name} from {from} to {to}"),
        },
        on_failure: Event {
            event_type: EventType::Warning,
            reason: "KEDAScaleTargetDeactivationFailed",
            message: format!("Failed to deactivate {kind} {namespace}/{name} from {from} to {to}"),
        },
    }
}

/// Why `minReplicaCount`, `maxReplicaCount` and `idleReplicaCount` do not fit together.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum BoundsError {
    /// The effective minimum exceeds the maximum.
    #[error("MinReplicaCount={min} must be less than MaxReplicaCount={max}")]
    MinAboveMax {
        /// The effective minimum (`max(1, minReplicaCount)` when set).
        min: i32,
        /// `maxReplicaCount` or 100.
        max: i32,
    },
    /// The idle count is not below the effective minimum.
    #[error("IdleReplicaCount={idle} must be less than MinReplicaCount={min}")]
    IdleNotBelowMin {
        /// `idleReplicaCount`.
        idle: i32,
        /// The effective minimum.
        min: i32,
    },
}

/// KEDA's `CheckReplicaCountBoundsAreValid`: the effective minimum is 0 when
/// `minReplicaCount` is unset and `max(1, minReplicaCount)` when set (so an explicit
/// `minReplicaCount: 0` with `idleReplicaCount: 0` passes), the maximum `maxReplicaCount` or 100.
pub fn check_replica_bounds(
    min_replica_count: Option<i32>,
    max_replica_count: Option<i32>,
    idle_replica_count: Option<i32>,
) -> Result<(), BoundsError> {
    let min = match min_replica_count {
        None => 0,
        Some(m) => m.max(1),
    };
    let max = max_replica_count.unwrap_or(DEFAULT_MAX_REPLICA_COUNT);
    if min > max {
        return Err(BoundsError::MinAboveMax { min, max });
    }
    if let Some(idle) = idle_replica_count
        && idle >= min
    {
        return Err(BoundsError::IdleNotBelowMin { idle, min });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
    }

    fn input() -> DecisionInput {
        DecisionInput {
            target: TargetRef {
                kind: String::new(),
                namespace: "namespace".into(),
                name: "name".into(),
            },
            creation_timestamp: Some(now() - Duration::hours(1)),
            ..DecisionInput::default()
        }
    }

    struct Case {
        name: &'static str,
        input: DecisionInput,
        action: Action,
        scale_to: Option<i32>,
        active_reason: Option<&'static str>,
        ready_reason: &'static str,
        refreshes_last_active: bool,
    }

    #[test]
    fn request_scale_decision_table() {
        let cases = [
            Case {
                name: "scale to min (0) when not active (TestScaleToMinReplicasWhenNotActive)",
                input: DecisionInput {
                    min_replica_count: Some(0),
                    current_replicas: 10,
                    ..input()
                },
                action: Action::Deactivate,
                scale_to: Some(0),
                active_reason: Some("ScalerNotActive"),
                ready_reason: "ScaledObjectReady",
                refreshes_last_active: false,
            },
            Case {
                name: "scale up to min from a lower count when not active (TestScaleToMinReplicasFromLowerInitialReplicaCount)",
                input: DecisionInput {
                    min_replica_count: Some(5),
                    current_replicas: 1,
                    ..input()
                },
                action: Action::ScaleToMin,
                scale_to: Some(5),
                active_reason: Some("ScalerNotActive"),
                ready_reason: "ScaledObjectReady",
                refreshes_last_active: false,
            },
            Case {
                name: "scale from 0 to min when active (TestScaleFromMinReplicasWhenActive)",
                input: DecisionInput {
                    active: true,
                    min_replica_count: Some(0),
                    current_replicas: 0,
                    ..input()
                },
                action: Action::Activate,
                scale_to: Some(1),
                active_reason: Some("ScalerActive"),
                ready_reason: "ScaledObjectReady",
                refreshes_last_active: true,
            },
            Case {
                name: "scale to idle when not active (TestScaleToIdleReplicasWhenNotActive)",
                input: DecisionInput {
                    idle_replica_count: Some(0),
                    min_replica_count: Some(5),
                    current_replicas: 10,
                    ..input()
                },
                action: Action::Deactivate,
                scale_to: Some(0),
                active_reason: Some("ScalerNotActive"),
                ready_reason: "ScaledObjectReady",
                refreshes_last_active: false,
            },
            Case {
                name: "scale from idle to min when active (TestScaleFromIdleToMinReplicasWhenActive)",
                input: DecisionInput {
                    active: true,
                    idle_replica_count: Some(0),
                    min_replica_count: Some(5),
                    current_replicas: 0,
                    ..input()
                },
                action: Action::Activate,
                scale_to: Some(5),
                active_reason: Some("ScalerActive"),
                ready_reason: "ScaledObjectReady",
                refreshes_last_active: true,
            },
            Case {
                name: "idle mode below min jumps to min even above 0",
                input: DecisionInput {
                    active: true,
                    idle_replica_count: Some(0),
                    min_replica_count: Some(5),
                    current_replicas: 2,
                    ..input()
                },
                action: Action::Activate,
                scale_to: Some(5),
                active_reason: Some("ScalerActive"),
                ready_reason: "ScaledObjectReady",
                refreshes_last_active: true,
            },
            Case {
                name: "paused scale in blocks scale to min (TestNoScaleToMinReplicasWhenNotActiveAndPauseScaleInAnnotationSet)",
                input: DecisionInput {
                    min_replica_count: Some(0),
                    current_replicas: 10,
                    paused_scale_in: true,
                    ..input()
                },
                action: Action::DeactivationBlockedByPausedScaleIn,
                scale_to: None,
                active_reason: Some("ScalerNotActive"),
                ready_reason: "ScaledObjectReady",
                refreshes_last_active: false,
            },
            Case {
                name: "paused scale in blocks scale to idle (TestNoScaleToIdleReplicasWhenNotActiveAndPauseScaleInAnnotationSet)",
                input: DecisionInput {
                    idle_replica_count: Some(0),
                    min_replica_count: Some(5),
                    current_replicas: 10,
                    paused_scale_in: true,
                    ..input()
                },
                action: Action::DeactivationBlockedByPausedScaleIn,
                scale_to: None,
                active_reason: Some("ScalerNotActive"),
                ready_reason: "ScaledObjectReady",
                refreshes_last_active: false,
            },
            Case {
                name: "forced activation scales from 0 (TestScaleFromMinReplicasWhenActivationForced)",
                input: DecisionInput {
                    force_activation: true,
                    min_replica_count: Some(0),
                    current_replicas: 0,
                    ..input()
                },
                action: Action::Activate,
                scale_to: Some(1),
                active_reason: Some("ScalerActive"),
                ready_reason: "ScaledObjectReady",
                refreshes_last_active: true,
            },
            Case {
                name: "paused scale out blocks activation (TestNoScaleFromMinReplicasWhenActiveAndPausedScaleOutAnnotationSet)",
                input: DecisionInput {
                    active: true,
                    min_replica_count: Some(0),
                    current_replicas: 0,
                    paused_scale_out: true,
                    ..input()
                },
                action: Action::ActivationBlockedByPausedScaleOut,
                scale_to: None,
                active_reason: Some("ScalerActive"),
                ready_reason: "ScaledObjectReady",
                refreshes_last_active: false,
            },
            Case {
                name: "paused scale out blocks idle to min (TestNoScaleFromIdleReplicasToMinReplicasWhenActiveAndPausedScaleOutAnnotationSet)",
                input: DecisionInput {
                    active: true,
                    idle_replica_count: Some(0),
                    min_replica_count: Some(5),
                    current_replicas: 0,
                    paused_scale_out: true,
                    ..input()
                },
                action: Action::ActivationBlockedByPausedScaleOut,
                scale_to: None,
                active_reason: Some("ScalerActive"),
                ready_reason: "ScaledObjectReady",
                refreshes_last_active: false,
            },
            Case {
                name: "paused: only the Paused condition",
                input: DecisionInput {
                    active: true,
                    paused: true,
                    current_replicas: 0,
                    ..input()
                },
                action: Action::Paused,
                scale_to: None,
                active_reason: None,
                ready_reason: "ScaledObjectReady",
                refreshes_last_active: false,
            },
            Case {
                name: "all healthy and active at 1 refreshes lastActiveTime (TestRequestScale_AllHealthy)",
                input: DecisionInput {
                    active: true,
                    current_replicas: 1,
                    ..input()
                },
                action: Action::KeepActive,
                scale_to: None,
                active_reason: Some("ScalerActive"),
                ready_reason: "ScaledObjectReady",
                refreshes_last_active: true,
            },
            Case {
                name: "inactive with error and no fallback is TriggerError (TestRequestScale_ScalerError)",
                input: DecisionInput {
                    error: true,
                    current_replicas: 1,
                    ..input()
                },
                action: Action::TriggerError,
                scale_to: None,
                active_reason: Some("ScalerNotActive"),
                ready_reason: "TriggerError",
                refreshes_last_active: false,
            },
            Case {
                name: "active with error is PartialTriggerError and keeps lastActiveTime (TestRequestScale_PartialError)",
                input: DecisionInput {
                    active: true,
                    error: true,
                    current_replicas: 1,
                    ..input()
                },
                action: Action::PartialTriggerError,
                scale_to: None,
                active_reason: Some("ScalerActive"),
                ready_reason: "PartialTriggerError",
                refreshes_last_active: false,
            },
            Case {
                name: "activation beats the partial error at 0",
                input: DecisionInput {
                    active: true,
                    error: true,
                    current_replicas: 0,
                    ..input()
                },
                action: Action::Activate,
                scale_to: Some(1),
                active_reason: Some("ScalerActive"),
                ready_reason: "ScaledObjectReady",
                refreshes_last_active: true,
            },
            Case {
                name: "inactive with error and non-zero fallback waits",
                input: DecisionInput {
                    error: true,
                    fallback_replicas: Some(3),
                    current_replicas: 2,
                    ..input()
                },
                action: Action::WaitForFallback,
                scale_to: None,
                active_reason: Some("ScalerNotActive"),
                ready_reason: "ScaledObjectReady",
                refreshes_last_active: false,
            },
            Case {
                name: "inactive with error and fallback.replicas 0 can scale to zero",
                input: DecisionInput {
                    error: true,
                    fallback_replicas: Some(0),
                    current_replicas: 2,
                    ..input()
                },
                action: Action::Deactivate,
                scale_to: Some(0),
                active_reason: Some("ScalerNotActive"),
                ready_reason: "ScaledObjectReady",
                refreshes_last_active: false,
            },
            Case {
                name: "cooling down inside the window",
                input: DecisionInput {
                    current_replicas: 3,
                    last_active_time: Some(now() - Duration::seconds(100)),
                    ..input()
                },
                action: Action::CoolingDown,
                scale_to: None,
                active_reason: Some("ScalerCooldown"),
                ready_reason: "ScaledObjectReady",
                refreshes_last_active: false,
            },
            Case {
                name: "cooldown exactly elapsed is still cooling (strict <)",
                input: DecisionInput {
                    current_replicas: 3,
                    last_active_time: Some(now() - Duration::seconds(300)),
                    ..input()
                },
                action: Action::CoolingDown,
                scale_to: None,
                active_reason: Some("ScalerCooldown"),
                ready_reason: "ScaledObjectReady",
                refreshes_last_active: false,
            },
            Case {
                name: "cooldown elapsed by a second scales in",
                input: DecisionInput {
                    current_replicas: 3,
                    last_active_time: Some(now() - Duration::seconds(301)),
                    ..input()
                },
                action: Action::Deactivate,
                scale_to: Some(0),
                active_reason: Some("ScalerNotActive"),
                ready_reason: "ScaledObjectReady",
                refreshes_last_active: false,
            },
            Case {
                name: "initial cooldown measured from creation",
                input: DecisionInput {
                    current_replicas: 3,
                    initial_cooldown_period: Some(7200),
                    ..input()
                },
                action: Action::CoolingDown,
                scale_to: None,
                active_reason: Some("ScalerCooldown"),
                ready_reason: "ScaledObjectReady",
                refreshes_last_active: false,
            },
            Case {
                name: "min > 0 without idle: HPA owns scale in",
                input: DecisionInput {
                    min_replica_count: Some(2),
                    current_replicas: 5,
                    ..input()
                },
                action: Action::NoChange,
                scale_to: None,
                active_reason: Some("ScalerNotActive"),
                ready_reason: "ScaledObjectReady",
                refreshes_last_active: false,
            },
            Case {
                name: "already at zero: nothing",
                input: DecisionInput {
                    current_replicas: 0,
                    ..input()
                },
                action: Action::NoChange,
                scale_to: None,
                active_reason: Some("ScalerNotActive"),
                ready_reason: "ScaledObjectReady",
                refreshes_last_active: false,
            },
        ];
        for case in cases {
            let decision = decide(&case.input, now());
            assert_eq!(decision.action, case.action, "{}", case.name);
            assert_eq!(decision.scale_to, case.scale_to, "{}", case.name);
            assert_eq!(
                decision.active.as_ref().map(|c| c.reason),
                case.active_reason,
                "{}",
                case.name
            );
            assert_eq!(decision.ready.reason, case.ready_reason, "{}", case.name);
            assert_eq!(
                decision.last_active_time == Some(now()),
                case.refreshes_last_active,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn activation_event_names_the_triggers() {
        // TestEventWitTriggerInfo: the kind is empty until resolved, hence the double space.
        let decision = decide(
            &DecisionInput {
                active: true,
                active_metrics: vec![MetricName::from_raw("testTrigger")],
                idle_replica_count: Some(0),
                min_replica_count: Some(5),
                current_replicas: 2,
                ..input()
            },
            now(),
        );
        let events = decision.events.unwrap();
        assert_eq!(events.on_success.reason, "KEDAScaleTargetActivated");
        assert_eq!(
            events.on_success.message,
            "Scaled  namespace/name from 2 to 5, triggered by testTrigger"
        );
        let forced = decide(
            &DecisionInput {
                force_activation: true,
                current_replicas: 0,
                ..input()
            },
            now(),
        );
        assert!(
            forced
                .events
                .unwrap()
                .on_success
                .message
                .ends_with("caused by forced activation annotation")
        );
        assert_eq!(
            forced.active.unwrap().message,
            "Scaling is performed because activation is being forced by annotation"
        );
    }

    #[test]
    fn deactivation_event_and_cooldown_remaining() {
        let decision = decide(
            &DecisionInput {
                current_replicas: 4,
                target: TargetRef {
                    kind: "apps/v1.Deployment".into(),
                    namespace: "ns".into(),
                    name: "app".into(),
                },
                ..input()
            },
            now(),
        );
        assert_eq!(
            decision.events.unwrap().on_success.message,
            "Deactivated apps/v1.Deployment ns/app from 4 to 0"
        );
        let cooling = decide(
            &DecisionInput {
                current_replicas: 4,
                last_active_time: Some(now() - Duration::seconds(48)),
                ..input()
            },
            now(),
        );
        assert_eq!(cooling.cooldown_remaining, Some(Duration::seconds(252)));
    }

    struct BoundsCase {
        name: &'static str,
        min: Option<i32>,
        max: Option<i32>,
        idle: Option<i32>,
        error_contains: Option<&'static str>,
    }

    #[test]
    fn replica_bounds_like_keda() {
        let cases = [
            BoundsCase {
                name: "Valid: min 1, max 5, no idle",
                min: Some(1),
                max: Some(5),
                idle: None,
                error_contains: None,
            },
            BoundsCase {
                name: "Valid: min 1, max 5, idle 0",
                min: Some(1),
                max: Some(5),
                idle: Some(0),
                error_contains: None,
            },
            BoundsCase {
                name: "Invalid: min 2 > max 1",
                min: Some(2),
                max: Some(1),
                idle: None,
                error_contains: Some("MinReplicaCount=2 must be less than MaxReplicaCount=1"),
            },
            BoundsCase {
                name: "Invalid: idle 1 == min 1",
                min: Some(1),
                max: Some(5),
                idle: Some(1),
                error_contains: Some("IdleReplicaCount=1 must be less than MinReplicaCount=1"),
            },
            BoundsCase {
                name: "Invalid: idle 2 > min 1",
                min: Some(1),
                max: Some(5),
                idle: Some(2),
                error_contains: Some("IdleReplicaCount=2 must be less than MinReplicaCount=1"),
            },
            BoundsCase {
                name: "idle 0 with min unset is rejected",
                min: None,
                max: None,
                idle: Some(0),
                error_contains: Some("IdleReplicaCount=0 must be less than MinReplicaCount=0"),
            },
            BoundsCase {
                name: "idle 0 with explicit min 0 is accepted (effective min 1)",
                min: Some(0),
                max: None,
                idle: Some(0),
                error_contains: None,
            },
        ];
        for case in cases {
            match (
                check_replica_bounds(case.min, case.max, case.idle),
                case.error_contains,
            ) {
                (Ok(()), None) => {}
                (Err(e), Some(text)) => assert!(e.to_string().contains(text), "{}", case.name),
                (got, _) => panic!("{}: got {got:?}", case.name),
            }
        }
    }

    proptest! {
        #[test]
        fn never_scales_to_zero_on_error_with_nonzero_fallback(
            active in any::<bool>(),
            force in any::<bool>(),
            fallback_replicas in 1..50i32,
            current in 0..50i32,
            min in proptest::option::of(0..10i32),
            idle in proptest::option::of(0..1i32),
            paused_scale_in in any::<bool>(),
            paused_scale_out in any::<bool>(),
            since_active in proptest::option::of(0..10_000i64),
        ) {
            let decision = decide(
                &DecisionInput {
                    active,
                    error: true,
                    force_activation: force,
                    fallback_replicas: Some(fallback_replicas),
                    current_replicas: current,
                    min_replica_count: min,
                    idle_replica_count: idle,
                    paused_scale_in,
                    paused_scale_out,
                    last_active_time: since_active.map(|s| now() - Duration::seconds(s)),
                    ..input()
                },
                now(),
            );
            prop_assert_ne!(decision.scale_to, Some(0));
        }

        #[test]
        fn activation_always_reaches_at_least_one(
            min in proptest::option::of(0..10i32),
            idle in proptest::option::of(0..1i32),
        ) {
            let decision = decide(
                &DecisionInput { active: true, current_replicas: 0, min_replica_count: min, idle_replica_count: idle, ..input() },
                now(),
            );
            prop_assert!(decision.scale_to.is_some_and(|to| to >= 1 && to >= min.unwrap_or(0)));
        }
    }
}
