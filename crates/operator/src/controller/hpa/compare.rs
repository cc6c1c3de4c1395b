//! Go's `equality.Semantic` comparisons that KEDA's HPA update check relies on, over the JSON
//! form of the HPA, plus the API server's defaulting of HPA `behavior`.
//!
//! `DeepDerivative(desired, live)` holds when every field set in `desired` has the same value in
//! `live`: nil pointers, nil or empty slices and maps, and empty strings in `desired` are
//! "unset" and match anything; a slice matches a longer one by its prefix; a map's keys must all
//! be present in the live map. In JSON, an unset field is an absent key or `null`. Numbers and
//! booleans are always compared. Quantities compare by value.
//!
//! `DeepEqual` (used for `behavior`) treats nil and empty slices as equal and quantities by value.

use k8s_openapi::api::autoscaling::v2::{
    HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscalerBehavior,
};
use serde_json::Value;

use super::quantity;

/// JSON keys whose string values are Kubernetes quantities in an HPA spec.
const QUANTITY_KEYS: [&str; 3] = ["averageValue", "value", "tolerance"];

/// JSON keys that are Go maps (not structs) in an HPA spec: keys set in the desired map must
/// exist in the live one even when their value is empty.
const MAP_KEYS: [&str; 1] = ["matchLabels"];

/// `equality.Semantic.DeepDerivative(desired, live)` on JSON; `key` is the field name of both
/// values (empty at the root).
pub(super) fn derives(desired: &Value, live: Option<&Value>, key: &str) -> bool {
    let is_map = MAP_KEYS.contains(&key);
    match desired {
        Value::Null => return true,
        Value::String(s) if s.is_empty() => return true,
        Value::Array(items) if items.is_empty() => return true,
        Value::Object(fields) if fields.is_empty() && is_map => return true,
        _ => {}
    }
    let Some(live) = live else {
        // A set pointer or a non-empty value against Go's nil: not derived.
        return false;
    };
    match (desired, live) {
        (Value::String(d), Value::String(l)) if QUANTITY_KEYS.contains(&key) => {
            quantity::same_value(d, l)
        }
        (Value::Array(d), Value::Array(l)) => {
            d.len() <= l.len() && d.iter().zip(l).all(|(d, l)| derives(d, Some(l), key))
        }
        (Value::Object(d), Value::Object(l)) if is_map => d.iter().all(|(k, v)| match l.get(k) {
            Some(lv) => derives(v, Some(lv), ""),
            None => false,
        }),
        (Value::Object(d), Value::Object(l)) => d.iter().all(|(k, v)| derives(v, l.get(k), k)),
        (d, l) => d == l,
    }
}

/// `DeepDerivative` of two string maps (labels, annotations): every desired key is present in
/// `live`, with the same value unless the desired value is empty.
pub(super) fn map_derives(
    desired: Option<&std::collections::BTreeMap<String, String>>,
    live: Option<&std::collections::BTreeMap<String, String>>,
) -> bool {
    let Some(desired) = desired else {
        return true;
    };
    desired.iter().all(|(k, v)| {
        live.and_then(|live| live.get(k))
            .is_some_and(|lv| v.is_empty() || v == lv)
    })
}

/// `equality.Semantic.DeepEqual` of two behaviors: nil and empty policy lists are equal, and
/// tolerances compare by value.
pub(super) fn behavior_equal(
    a: Option<&HorizontalPodAutoscalerBehavior>,
    b: Option<&HorizontalPodAutoscalerBehavior>,
) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            rules_equal(a.scale_up.as_ref(), b.scale_up.as_ref())
                && rules_equal(a.scale_down.as_ref(), b.scale_down.as_ref())
        }
        _ => false,
    }
}

fn rules_equal(a: Option<&HPAScalingRules>, b: Option<&HPAScalingRules>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            let policies = |r: &HPAScalingRules| -> Vec<HPAScalingPolicy> {
                r.policies.clone().unwrap_or_default()
            };
            a.select_policy == b.select_policy
                && a.stabilization_window_seconds == b.stabilization_window_seconds
                && policies(a) == policies(b)
                && match (&a.tolerance, &b.tolerance) {
                    (None, None) => true,
                    (Some(a), Some(b)) => quantity::same_value(&a.0, &b.0),
                    _ => false,
                }
        }
        _ => false,
    }
}

/// The behavior as the API server stores it (`SetDefaults_HorizontalPodAutoscalerBehavior` of
/// `autoscaling/v2`): once a behavior is given, both directions are filled in, field by field,
/// from the defaults. Scale-down's stabilization window stays unset: it comes from the
/// controller manager's `--horizontal-pod-autoscaler-downscale-stabilization` flag.
pub(super) fn with_server_defaults(
    behavior: &HorizontalPodAutoscalerBehavior,
) -> HorizontalPodAutoscalerBehavior {
    let policy = |type_: &str, value: i32| HPAScalingPolicy {
        type_: type_.to_owned(),
        value,
        period_seconds: 15,
    };
    let scale_up = HPAScalingRules {
        select_policy: Some("Max".to_owned()),
        stabilization_window_seconds: Some(0),
        policies: Some(vec![policy("Pods", 4), policy("Percent", 100)]),
        tolerance: None,
    };
    let scale_down = HPAScalingRules {
        select_policy: Some("Max".to_owned()),
        stabilization_window_seconds: None,
        policies: Some(vec![policy("Percent", 100)]),
        tolerance: None,
    };
    HorizontalPodAutoscalerBehavior {
        scale_up: Some(fill(behavior.scale_up.as_ref(), scale_up)),
        scale_down: Some(fill(behavior.scale_down.as_ref(), scale_down)),
    }
}

/// Keeps every field set in `given` and takes the rest from `defaults`.
fn fill(given: Option<&HPAScalingRules>, defaults: HPAScalingRules) -> HPAScalingRules {
    let Some(given) = given else {
        return defaults;
    };
    HPAScalingRules {
        select_policy: given.select_policy.clone().or(defaults.select_policy),
        stabilization_window_seconds: given
            .stabilization_window_seconds
            .or(defaults.stabilization_window_seconds),
        policies: given.policies.clone().or(defaults.policies),
        tolerance: given.tolerance.clone().or(defaults.tolerance),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    struct DeriveCase {
        name: &'static str,
        desired: Value,
        live: Value,
        derives: bool,
    }

    #[test]
    fn deep_derivative_ignores_what_desired_leaves_unset() {
        let cases = [
            DeriveCase {
                name: "equal",
                desired: json!({"maxReplicas": 5, "scaleTargetRef": {"kind": "Deployment", "name": "a"}}),
                live: json!({"maxReplicas": 5, "scaleTargetRef": {"kind": "Deployment", "name": "a"}}),
                derives: true,
            },
            DeriveCase {
                name: "extra live fields are ignored",
                desired: json!({"maxReplicas": 5}),
                live: json!({"maxReplicas": 5, "minReplicas": 1}),
                derives: true,
            },
            DeriveCase {
                name: "numbers are always compared",
                desired: json!({"maxReplicas": 5}),
                live: json!({"maxReplicas": 6}),
                derives: false,
            },
            DeriveCase {
                name: "a set pointer against nil",
                desired: json!({"minReplicas": 1}),
                live: json!({}),
                derives: false,
            },
            DeriveCase {
                name: "empty desired string is unset",
                desired: json!({"scaleTargetRef": {"apiVersion": "", "name": "a"}}),
                live: json!({"scaleTargetRef": {"apiVersion": "apps/v1", "name": "a"}}),
                derives: true,
            },
            DeriveCase {
                name: "null is unset",
                desired: json!({"behavior": null}),
                live: json!({"behavior": {"scaleUp": {}}}),
                derives: true,
            },
            DeriveCase {
                name: "a slice matches a longer one by prefix",
                desired: json!({"metrics": [{"type": "External"}]}),
                live: json!({"metrics": [{"type": "External"}, {"type": "Resource"}]}),
                derives: true,
            },
            DeriveCase {
                name: "a longer desired slice does not",
                desired: json!({"metrics": [{"type": "External"}, {"type": "Resource"}]}),
                live: json!({"metrics": [{"type": "External"}]}),
                derives: false,
            },
            DeriveCase {
                name: "quantities compare by value",
                desired: json!({"target": {"type": "AverageValue", "averageValue": "1"}}),
                live: json!({"target": {"type": "AverageValue", "averageValue": "1000m"}}),
                derives: true,
            },
            DeriveCase {
                name: "different quantities",
                desired: json!({"target": {"averageValue": "2"}}),
                live: json!({"target": {"averageValue": "1"}}),
                derives: false,
            },
            DeriveCase {
                name: "map keys must exist even with an empty value",
                desired: json!({"selector": {"matchLabels": {"a": ""}}}),
                live: json!({"selector": {"matchLabels": {"b": "x"}}}),
                derives: false,
            },
            DeriveCase {
                name: "an empty map value matches any value",
                desired: json!({"selector": {"matchLabels": {"a": ""}}}),
                live: json!({"selector": {"matchLabels": {"a": "x"}}}),
                derives: true,
            },
            DeriveCase {
                name: "a set struct pointer against nil",
                desired: json!({"behavior": {"scaleDown": {}}}),
                live: json!({"behavior": {}}),
                derives: false,
            },
        ];
        for case in cases {
            assert_eq!(
                derives(&case.desired, Some(&case.live), ""),
                case.derives,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn string_maps_derive_by_key() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let live = map(&[("a", "1"), ("b", "2")]);
        assert!(map_derives(None, Some(&live)));
        assert!(map_derives(Some(&map(&[("a", "1")])), Some(&live)));
        assert!(map_derives(Some(&map(&[("a", "")])), Some(&live)));
        assert!(!map_derives(Some(&map(&[("a", "2")])), Some(&live)));
        assert!(!map_derives(Some(&map(&[("c", "")])), Some(&live)));
        assert!(!map_derives(Some(&map(&[("a", "1")])), None));
    }

    #[test]
    fn server_defaults_fill_each_unset_field() {
        let given = HorizontalPodAutoscalerBehavior {
            scale_down: Some(HPAScalingRules {
                select_policy: Some("Disabled".to_owned()),
                ..HPAScalingRules::default()
            }),
            scale_up: None,
        };
        let defaulted = with_server_defaults(&given);
        let expected: HorizontalPodAutoscalerBehavior = serde_json::from_value(json!({
            "scaleDown": {
                "selectPolicy": "Disabled",
                "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]
            },
            "scaleUp": {
                "selectPolicy": "Max",
                "stabilizationWindowSeconds": 0,
                "policies": [
                    {"type": "Pods", "value": 4, "periodSeconds": 15},
                    {"type": "Percent", "value": 100, "periodSeconds": 15}
                ]
            }
        }))
        .expect("valid behavior");
        assert_eq!(defaulted, expected);
    }

    #[test]
    fn behaviors_are_equal_up_to_empty_lists_and_quantity_spelling() {
        let with = |policies: Option<Vec<HPAScalingPolicy>>, tolerance: Option<&str>| {
            HorizontalPodAutoscalerBehavior {
                scale_up: Some(HPAScalingRules {
                    policies,
                    tolerance: tolerance.map(|t| {
                        k8s_openapi::apimachinery::pkg::api::resource::Quantity(t.to_owned())
                    }),
                    ..HPAScalingRules::default()
                }),
                scale_down: None,
            }
        };
        assert!(behavior_equal(
            Some(&with(None, Some("0.05"))),
            Some(&with(Some(Vec::new()), Some("50m")))
        ));
        assert!(!behavior_equal(
            Some(&with(None, Some("0.05"))),
            Some(&with(None, Some("0.1")))
        ));
        assert!(!behavior_equal(Some(&with(None, None)), None));
        assert!(behavior_equal(None, None));
    }
}
