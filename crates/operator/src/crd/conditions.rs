//! Status conditions of a ScaledObject, shaped like KEDA's: a list of `{type, status, reason,
//! message}` entries without timestamps, one entry per condition type.
//!
//! A freshly reconciled object starts with `Ready`, `Active` and `Fallback` set to `Unknown`
//! and `Paused` set to `False` ([`Conditions::initialized`]). `HPAActive` is only added once
//! the HPA reports on its own scaling state.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Condition type `Ready`: the object is valid and its triggers can be evaluated.
pub const CONDITION_READY: &str = "Ready";
/// Condition type `Active`: at least one trigger is active, so the target is scaled above idle.
pub const CONDITION_ACTIVE: &str = "Active";
/// Condition type `Fallback`: at least one trigger is serving its fallback replica count.
pub const CONDITION_FALLBACK: &str = "Fallback";
/// Condition type `Paused`: autoscaling is paused (or paused in one direction) by annotation.
pub const CONDITION_PAUSED: &str = "Paused";
/// Condition type `HPAActive`: mirrors the owned HPA's `ScalingActive` condition.
pub const CONDITION_HPA_ACTIVE: &str = "HPAActive";

/// Ready reason after a successful reconcile or a healthy poll.
pub const REASON_READY_SUCCESS: &str = "ScaledObjectReady";
/// Ready message that goes with [`REASON_READY_SUCCESS`].
pub const MESSAGE_READY_SUCCESS: &str =
    "ScaledObject is defined correctly and is ready for scaling";
/// Paused reason while the object is paused.
pub const REASON_PAUSED: &str = "ScaledObjectPaused";
/// Paused message that goes with [`REASON_PAUSED`].
pub const MESSAGE_PAUSED: &str = "ScaledObject is paused";
/// HPAActive reason when the HPA scales normally.
pub const REASON_HPA_ACTIVE: &str = "HPAActive";
/// HPAActive reason mirroring the HPA's own `ScalingDisabled` (target at zero).
pub const REASON_HPA_SCALING_DISABLED: &str = "ScalingDisabled";
/// HPAActive reason used when the HPA cannot fetch metrics.
pub const REASON_HPA_METRICS_UNAVAILABLE: &str = "HPAMetricsUnavailable";

/// Tri-state status of a condition, as in Kubernetes' `metav1.ConditionStatus`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// It is not known (yet) whether the condition holds.
    #[default]
    Unknown,
}

impl ConditionStatus {
    /// The wire spelling: `True`, `False` or `Unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }
}

impl fmt::Display for ConditionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One observed condition of the object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Condition {
    /// Kind of condition: Ready, Active, Fallback, Paused or HPAActive.
    #[serde(rename = "type")]
    pub type_: String,
    /// Whether the condition holds: True, False or Unknown.
    #[schemars(with = "String")]
    pub status: ConditionStatus,
    /// Short CamelCase word explaining the current status.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Human-readable details about the current status.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl Condition {
    /// A condition of the given type and status, without reason or message.
    pub fn new(type_: &str, status: ConditionStatus) -> Self {
        Self {
            type_: type_.to_owned(),
            status,
            reason: String::new(),
            message: String::new(),
        }
    }

    /// The status is `True`.
    pub fn is_true(&self) -> bool {
        self.status == ConditionStatus::True
    }

    /// The status is `False`.
    pub fn is_false(&self) -> bool {
        self.status == ConditionStatus::False
    }

    /// The status is `Unknown`.
    pub fn is_unknown(&self) -> bool {
        self.status == ConditionStatus::Unknown
    }
}

/// The list of conditions in a status; at most one entry per type, kept in insertion order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Conditions(pub Vec<Condition>);

impl Conditions {
    /// The four conditions every reconciled object carries: Ready, Active and Fallback
    /// `Unknown`, Paused `False`.
    pub fn initialized() -> Self {
        Self(vec![
            Condition::new(CONDITION_READY, ConditionStatus::Unknown),
            Condition::new(CONDITION_ACTIVE, ConditionStatus::Unknown),
            Condition::new(CONDITION_FALLBACK, ConditionStatus::Unknown),
            Condition::new(CONDITION_PAUSED, ConditionStatus::False),
        ])
    }

    /// No condition is recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// All of Ready, Active, Fallback and Paused are present.
    pub fn are_initialized(&self) -> bool {
        [
            CONDITION_READY,
            CONDITION_ACTIVE,
            CONDITION_FALLBACK,
            CONDITION_PAUSED,
        ]
        .iter()
        .all(|t| self.get(t).is_some())
    }

    /// The condition of the given type, if recorded.
    pub fn get(&self, type_: &str) -> Option<&Condition> {
        self.0.iter().find(|c| c.type_ == type_)
    }

    /// Status of the given type; `Unknown` when the condition is absent.
    pub fn status_of(&self, type_: &str) -> ConditionStatus {
        self.get(type_)
            .map_or(ConditionStatus::Unknown, |c| c.status)
    }

    /// Sets status, reason and message of the given type, appending the condition when absent.
    /// An empty list is first filled with [`Conditions::initialized`], as KEDA does.
    pub fn set(&mut self, type_: &str, status: ConditionStatus, reason: &str, message: &str) {
        if self.0.is_empty() {
            *self = Self::initialized();
        }
        match self.0.iter_mut().find(|c| c.type_ == type_) {
            Some(c) => {
                c.status = status;
                reason.clone_into(&mut c.reason);
                message.clone_into(&mut c.message);
            }
            None => self.0.push(Condition {
                type_: type_.to_owned(),
                status,
                reason: reason.to_owned(),
                message: message.to_owned(),
            }),
        }
    }

    /// Removes the condition of the given type, if present.
    pub fn remove(&mut self, type_: &str) {
        self.0.retain(|c| c.type_ != type_);
    }

    /// Iterates over the recorded conditions.
    pub fn iter(&self) -> std::slice::Iter<'_, Condition> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_initializes_and_updates_in_place() {
        let mut c = Conditions::default();
        assert!(!c.are_initialized());
        c.set(
            CONDITION_READY,
            ConditionStatus::True,
            REASON_READY_SUCCESS,
            MESSAGE_READY_SUCCESS,
        );
        assert!(c.are_initialized());
        assert_eq!(c.0.len(), 4);
        assert_eq!(c.status_of(CONDITION_READY), ConditionStatus::True);
        assert_eq!(c.status_of(CONDITION_PAUSED), ConditionStatus::False);
        c.set(
            CONDITION_HPA_ACTIVE,
            ConditionStatus::True,
            REASON_HPA_ACTIVE,
            "HPA is actively scaling",
        );
        assert_eq!(c.0.len(), 5);
        assert_eq!(c.0[4].type_, CONDITION_HPA_ACTIVE);
        c.remove(CONDITION_HPA_ACTIVE);
        assert_eq!(c.0.len(), 4);
        assert_eq!(c.status_of(CONDITION_HPA_ACTIVE), ConditionStatus::Unknown);
    }

    #[test]
    fn serialises_like_keda() -> Result<(), serde_json::Error> {
        let c = Conditions::initialized();
        let v = serde_json::to_value(&c)?;
        assert_eq!(
            v,
            serde_json::json!([
                {"type": "Ready", "status": "Unknown"},
                {"type": "Active", "status": "Unknown"},
                {"type": "Fallback", "status": "Unknown"},
                {"type": "Paused", "status": "False"},
            ])
        );
        let back: Conditions = serde_json::from_value(v)?;
        assert_eq!(back, c);
        Ok(())
    }
}
