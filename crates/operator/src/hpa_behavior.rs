//! The edge between Kubernetes' `autoscaling/v2` HPA behavior and the engine's plain copy of it.
//!
//! Policy types and select policies the API would reject are dropped here (the API server
//! refuses such an HPA, so no HPA would exist to predict).

use k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscalerBehavior};
use scaler_core::hpa::{Behavior, PolicyType, ScalingPolicy, ScalingRules, SelectPolicy};

/// `advanced.horizontalPodAutoscalerConfig.behavior` as the engine reads it.
pub fn to_engine(behavior: &HorizontalPodAutoscalerBehavior) -> Behavior {
    Behavior {
        scale_up: behavior.scale_up.as_ref().map(rules),
        scale_down: behavior.scale_down.as_ref().map(rules),
    }
}

fn rules(rules: &HPAScalingRules) -> ScalingRules {
    ScalingRules {
        stabilization_window_seconds: rules.stabilization_window_seconds,
        select_policy: rules
            .select_policy
            .as_deref()
            .and_then(|policy| match policy {
                "Max" => Some(SelectPolicy::Max),
                "Min" => Some(SelectPolicy::Min),
                "Disabled" => Some(SelectPolicy::Disabled),
                _ => None,
            }),
        policies: rules
            .policies
            .iter()
            .flatten()
            .filter_map(|policy| {
                let policy_type = match policy.type_.as_str() {
                    "Pods" => PolicyType::Pods,
                    "Percent" => PolicyType::Percent,
                    _ => return None,
                };
                Some(ScalingPolicy {
                    policy_type,
                    value: policy.value,
                    period_seconds: policy.period_seconds,
                })
            })
            .collect(),
        tolerance: rules
            .tolerance
            .as_ref()
            .and_then(|quantity| parse_fraction(&quantity.0)),
    }
}

/// A tolerance quantity such as `0.05` or `50m`.
fn parse_fraction(quantity: &str) -> Option<f64> {
    match quantity.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok().map(|m| m / 1000.0),
        None => quantity.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_policies_and_windows() {
        let behavior: HorizontalPodAutoscalerBehavior = serde_json::from_value(serde_json::json!({
            "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Min",
                           "policies": [{"type": "Pods", "value": 2, "periodSeconds": 30}],
                           "tolerance": "50m"},
            "scaleUp": {"selectPolicy": "Disabled"}
        }))
        .unwrap();
        let engine = to_engine(&behavior);
        let down = engine.scale_down.unwrap();
        assert_eq!(down.stabilization_window_seconds, Some(60));
        assert_eq!(down.select_policy, Some(SelectPolicy::Min));
        assert_eq!(
            down.policies,
            vec![ScalingPolicy {
                policy_type: PolicyType::Pods,
                value: 2,
                period_seconds: 30
            }]
        );
        assert_eq!(down.tolerance, Some(0.05));
        assert_eq!(
            engine.scale_up.unwrap().select_policy,
            Some(SelectPolicy::Disabled)
        );
    }
}
