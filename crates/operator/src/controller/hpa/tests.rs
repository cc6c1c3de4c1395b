//! The HPA against KEDA's code: each field, pause annotations, modifiers, cpu/memory, labels,
//! update detection, adoption, and two golden HPAs built from keda.sh examples.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use scaler_core::metric::{
    ExternalMetric, MetricName, MetricSpec, MetricTargetType, ResourceMetric, ResourceName,
    ResourceTarget,
};
use serde_json::{Value, json};

use super::*;
use crate::crd::{GroupVersionKindResource, HealthStatus, HealthStatusType, ScaledObject};

const VERSION: &str = "2.21.0";

/// A minimal ScaledObject as read from the API; tests merge their fields onto it.
fn base() -> Value {
    json!({
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "orders", "namespace": "shop", "uid": "uid-1"},
        "spec": {
            "scaleTargetRef": {"name": "orders"},
            "triggers": [{"type": "prometheus", "metadata": {}}]
        }
    })
}

/// JSON merge patch (RFC 7386): objects merge, `null` removes, anything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

fn scaled_object(patch: Value) -> ScaledObject {
    let mut value = base();
    merge(&mut value, &patch);
    serde_json::from_value(value).expect("valid ScaledObject")
}

fn deployment() -> GroupVersionKindResource {
    GroupVersionKindResource {
        group: "apps".into(),
        version: "v1".into(),
        kind: "Deployment".into(),
        resource: "deployments".into(),
    }
}

fn external(name: &str, target: f64) -> MetricSpec {
    MetricSpec::External(ExternalMetric {
        name: MetricName::from_raw(name),
        target,
        target_type: MetricTargetType::AverageValue,
    })
}

fn external_value(name: &str, target: f64) -> MetricSpec {
    MetricSpec::External(ExternalMetric {
        name: MetricName::from_raw(name),
        target,
        target_type: MetricTargetType::Value,
    })
}

fn resource(resource: ResourceName, container: Option<&str>, target: ResourceTarget) -> MetricSpec {
    MetricSpec::Resource(ResourceMetric {
        resource,
        container: container.map(str::to_owned),
        target,
    })
}

fn cpu(percent: i32) -> MetricSpec {
    resource(
        ResourceName::Cpu,
        None,
        ResourceTarget::Utilization(percent),
    )
}

fn build_with(
    so: &ScaledObject,
    metrics: &[MetricSpec],
) -> Result<HorizontalPodAutoscaler, HpaError> {
    desired_hpa(&HpaInput {
        scaled_object: so,
        target: &deployment(),
        target_name: &so.spec.scale_target_ref.name,
        metrics,
        operator_version: VERSION,
    })
}

/// The HPA as JSON, for field-by-field assertions.
fn build_json(so: &ScaledObject, metrics: &[MetricSpec]) -> Value {
    let hpa = build_with(so, metrics).expect("HPA builds");
    serde_json::to_value(hpa).expect("HPA serialises")
}

fn one_metric() -> Vec<MetricSpec> {
    vec![external("s0-prometheus", 10.0)]
}

// ---------------------------------------------------------------------------------------------
// Fields

struct FieldCase {
    name: &'static str,
    patch: Value,
    /// JSON pointer into the HPA.
    pointer: &'static str,
    expected: Value,
}

#[test]
fn each_field_is_built_as_keda_builds_it() {
    let cases = [
        FieldCase {
            name: "apiVersion",
            patch: json!({}),
            pointer: "/apiVersion",
            expected: json!("autoscaling/v2"),
        },
        FieldCase {
            name: "kind",
            patch: json!({}),
            pointer: "/kind",
            expected: json!("HorizontalPodAutoscaler"),
        },
        FieldCase {
            name: "default name",
            patch: json!({}),
            pointer: "/metadata/name",
            expected: json!("keda-hpa-orders"),
        },
        FieldCase {
            name: "configured name",
            patch: json!({"spec": {"advanced": {"horizontalPodAutoscalerConfig": {"name": "custom"}}}}),
            pointer: "/metadata/name",
            expected: json!("custom"),
        },
        FieldCase {
            name: "empty configured name falls back to the default",
            patch: json!({"spec": {"advanced": {"horizontalPodAutoscalerConfig": {"name": ""}}}}),
            pointer: "/metadata/name",
            expected: json!("keda-hpa-orders"),
        },
        FieldCase {
            name: "namespace",
            patch: json!({}),
            pointer: "/metadata/namespace",
            expected: json!("shop"),
        },
        FieldCase {
            name: "controller ownerReference",
            patch: json!({}),
            pointer: "/metadata/ownerReferences",
            expected: json!([{
                "apiVersion": "keda.sh/v1alpha1",
                "kind": "ScaledObject",
                "name": "orders",
                "uid": "uid-1",
                "controller": true,
                "blockOwnerDeletion": true
            }]),
        },
        FieldCase {
            name: "scaleTargetRef",
            patch: json!({}),
            pointer: "/spec/scaleTargetRef",
            expected: json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "orders"}),
        },
        FieldCase {
            name: "minReplicas defaults to 1",
            patch: json!({}),
            pointer: "/spec/minReplicas",
            expected: json!(1),
        },
        FieldCase {
            name: "minReplicaCount 0 gives minReplicas 1",
            patch: json!({"spec": {"minReplicaCount": 0}}),
            pointer: "/spec/minReplicas",
            expected: json!(1),
        },
        FieldCase {
            name: "positive minReplicaCount is kept",
            patch: json!({"spec": {"minReplicaCount": 5, "idleReplicaCount": 1}}),
            pointer: "/spec/minReplicas",
            expected: json!(5),
        },
        FieldCase {
            name: "maxReplicas defaults to 100",
            patch: json!({}),
            pointer: "/spec/maxReplicas",
            expected: json!(100),
        },
        FieldCase {
            name: "maxReplicaCount is kept",
            patch: json!({"spec": {"maxReplicaCount": 10}}),
            pointer: "/spec/maxReplicas",
            expected: json!(10),
        },
        FieldCase {
            name: "annotations are copied",
            patch: json!({"metadata": {"annotations": {
                "annotation-email": "email@example.com",
                "annotation-url": "https://example.com"
            }}}),
            pointer: "/metadata/annotations",
            expected: json!({
                "annotation-email": "email@example.com",
                "annotation-url": "https://example.com"
            }),
        },
        FieldCase {
            name: "no behavior without configuration or pause",
            patch: json!({}),
            pointer: "/spec/behavior",
            expected: Value::Null,
        },
        FieldCase {
            name: "behavior is copied",
            patch: json!({"spec": {"advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 60, "selectPolicy": "Min"}
            }}}}}),
            pointer: "/spec/behavior",
            expected: json!({"scaleUp": {"stabilizationWindowSeconds": 60, "selectPolicy": "Min"}}),
        },
    ];
    for case in cases {
        let hpa = build_json(&scaled_object(case.patch), &one_metric());
        assert_eq!(
            hpa.pointer(case.pointer).cloned().unwrap_or(Value::Null),
            case.expected,
            "{}",
            case.name
        );
    }
}

#[test]
fn no_annotations_means_none_on_the_hpa() {
    let hpa = build_with(&scaled_object(json!({})), &one_metric()).expect("builds");
    assert_eq!(hpa.metadata.annotations, None);
    let empty = scaled_object(json!({"metadata": {"annotations": {}}}));
    let hpa = build_with(&empty, &one_metric()).expect("builds");
    assert_eq!(hpa.metadata.annotations, None);
}

#[test]
fn scale_target_ref_comes_from_the_resolved_target() {
    let so = scaled_object(json!({"spec": {"scaleTargetRef": {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "web"
    }}}));
    let rollout = GroupVersionKindResource {
        group: "argoproj.io".into(),
        version: "v1alpha1".into(),
        kind: "Rollout".into(),
        resource: "rollouts".into(),
    };
    let core = GroupVersionKindResource {
        group: String::new(),
        version: "v1".into(),
        kind: "ReplicationController".into(),
        resource: "replicationcontrollers".into(),
    };
    for (target, api_version, kind) in [
        (&rollout, "argoproj.io/v1alpha1", "Rollout"),
        (&core, "v1", "ReplicationController"),
    ] {
        let hpa = desired_hpa(&HpaInput {
            scaled_object: &so,
            target,
            target_name: "web",
            metrics: &one_metric(),
            operator_version: VERSION,
        })
        .expect("builds");
        let reference = hpa.spec.scale_target_ref;
        assert_eq!(reference.api_version.as_deref(), Some(api_version));
        assert_eq!(reference.kind, kind);
        assert_eq!(reference.name, "web");
    }
}

// ---------------------------------------------------------------------------------------------
// Labels

struct LabelCase {
    name: &'static str,
    patch: Value,
    expected: Value,
}

#[test]
fn labels_are_keda_s_four_then_the_scaled_object_s() {
    let standard = |name: &str| {
        json!({
            "app.kubernetes.io/name": name,
            "app.kubernetes.io/version": VERSION,
            "app.kubernetes.io/part-of": "orders",
            "app.kubernetes.io/managed-by": "keda-operator"
        })
    };
    let with = |name: &str, extra: Value| {
        let mut labels = standard(name);
        merge(&mut labels, &extra);
        labels
    };
    let long_name = "a".repeat(70);
    let cut_at_dash = format!("{}-bc", "a".repeat(62));
    let cut_after_dashes = format!("{}--.x", "a".repeat(61));
    let cases = [
        LabelCase {
            name: "standard labels",
            patch: json!({}),
            expected: standard("keda-hpa-orders"),
        },
        LabelCase {
            name: "scaled object labels are added",
            patch: json!({"metadata": {"labels": {"team": "payments", "scaledobject.keda.sh/name": "orders"}}}),
            expected: with(
                "keda-hpa-orders",
                json!({"team": "payments", "scaledobject.keda.sh/name": "orders"}),
            ),
        },
        LabelCase {
            name: "scaled object labels override the standard ones",
            patch: json!({"metadata": {"labels": {"app.kubernetes.io/managed-by": "argocd"}}}),
            expected: with(
                "keda-hpa-orders",
                json!({"app.kubernetes.io/managed-by": "argocd"}),
            ),
        },
        LabelCase {
            name: "excluded labels are not copied",
            patch: json!({"metadata": {
                "labels": {"team": "payments", "env": "prod", "tier": "backend"},
                "annotations": {"scaledobject.keda.sh/hpa-excluded-labels": "env,tier"}
            }}),
            expected: with("keda-hpa-orders", json!({"team": "payments"})),
        },
        LabelCase {
            name: "excluded keys are not trimmed",
            patch: json!({"metadata": {
                "labels": {"env": "prod", "tier": "backend"},
                "annotations": {"scaledobject.keda.sh/hpa-excluded-labels": "env, tier"}
            }}),
            expected: with("keda-hpa-orders", json!({"tier": "backend"})),
        },
        LabelCase {
            name: "excluding a standard label does not remove it",
            patch: json!({"metadata": {
                "annotations": {"scaledobject.keda.sh/hpa-excluded-labels": "app.kubernetes.io/version"}
            }}),
            expected: standard("keda-hpa-orders"),
        },
        LabelCase {
            name: "a name of 63 characters is kept",
            patch: json!({"spec": {"advanced": {"horizontalPodAutoscalerConfig": {"name": "a".repeat(63)}}}}),
            expected: standard(&"a".repeat(63)),
        },
        LabelCase {
            name: "a longer name is cut at 63",
            patch: json!({"spec": {"advanced": {"horizontalPodAutoscalerConfig": {"name": long_name}}}}),
            expected: standard(&"a".repeat(63)),
        },
        LabelCase {
            name: "a cut ending in a dash loses it",
            patch: json!({"spec": {"advanced": {"horizontalPodAutoscalerConfig": {"name": cut_at_dash}}}}),
            expected: standard(&"a".repeat(62)),
        },
        LabelCase {
            name: "every trailing non-alphanumeric goes",
            patch: json!({"spec": {"advanced": {"horizontalPodAutoscalerConfig": {"name": cut_after_dashes}}}}),
            expected: standard(&"a".repeat(61)),
        },
        LabelCase {
            name: "a short name ending in a dash is not trimmed",
            patch: json!({"spec": {"advanced": {"horizontalPodAutoscalerConfig": {"name": "short-"}}}}),
            expected: standard("short-"),
        },
    ];
    for case in cases {
        let hpa = build_json(&scaled_object(case.patch), &one_metric());
        assert_eq!(hpa["metadata"]["labels"], case.expected, "{}", case.name);
    }
}

#[test]
fn a_multibyte_character_cut_in_half_is_dropped() {
    // 62 ASCII bytes then "é" (2 bytes): byte 63 falls inside it.
    let name = format!("{}éz", "a".repeat(62));
    assert_eq!(name_label(&name), "a".repeat(62));
}

// ---------------------------------------------------------------------------------------------
// Pause annotations

struct PauseCase {
    name: &'static str,
    annotations: Value,
    behavior: Value,
    expected: Value,
}

#[test]
fn paused_scale_in_and_out_disable_a_direction() {
    let configured = json!({
        "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Min",
                      "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
        "scaleUp": {"stabilizationWindowSeconds": 0}
    });
    let cases = [
        PauseCase {
            name: "scale-in paused without behavior",
            annotations: json!({"autoscaling.keda.sh/paused-scale-in": "true"}),
            behavior: Value::Null,
            expected: json!({"scaleDown": {"selectPolicy": "Disabled"}}),
        },
        PauseCase {
            name: "scale-out paused without behavior",
            annotations: json!({"autoscaling.keda.sh/paused-scale-out": "true"}),
            behavior: Value::Null,
            expected: json!({"scaleUp": {"selectPolicy": "Disabled"}}),
        },
        PauseCase {
            name: "both paused",
            annotations: json!({
                "autoscaling.keda.sh/paused-scale-in": "true",
                "autoscaling.keda.sh/paused-scale-out": "1"
            }),
            behavior: Value::Null,
            expected: json!({"scaleDown": {"selectPolicy": "Disabled"}, "scaleUp": {"selectPolicy": "Disabled"}}),
        },
        PauseCase {
            name: "scale-in paused keeps the rest of the configured behavior",
            annotations: json!({"autoscaling.keda.sh/paused-scale-in": "true"}),
            behavior: configured.clone(),
            expected: json!({
                "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Disabled",
                              "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
                "scaleUp": {"stabilizationWindowSeconds": 0}
            }),
        },
        PauseCase {
            name: "scale-out paused keeps the rest of the configured behavior",
            annotations: json!({"autoscaling.keda.sh/paused-scale-out": "true"}),
            behavior: configured.clone(),
            expected: json!({
                "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Min",
                              "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
                "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Disabled"}
            }),
        },
        PauseCase {
            name: "false does not pause",
            annotations: json!({"autoscaling.keda.sh/paused-scale-in": "false"}),
            behavior: Value::Null,
            expected: Value::Null,
        },
        PauseCase {
            name: "an unparsable value counts as true",
            annotations: json!({"autoscaling.keda.sh/paused-scale-in": "yes please"}),
            behavior: Value::Null,
            expected: json!({"scaleDown": {"selectPolicy": "Disabled"}}),
        },
    ];
    for case in cases {
        let so = scaled_object(json!({
            "metadata": {"annotations": case.annotations},
            "spec": {"advanced": {"horizontalPodAutoscalerConfig": {"behavior": case.behavior}}}
        }));
        let hpa = build_json(&so, &one_metric());
        assert_eq!(
            hpa["spec"].get("behavior").cloned().unwrap_or(Value::Null),
            case.expected,
            "{}",
            case.name
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics

#[test]
fn metrics_are_sorted_by_source_type_keeping_trigger_order_within_a_type() {
    let metrics = [
        cpu(50),
        external("s1-redis-a", 5.0),
        resource(
            ResourceName::Memory,
            Some("app"),
            ResourceTarget::AverageValue("512Mi".into()),
        ),
        external("s3-redis-b", 5.0),
        resource(ResourceName::Memory, None, ResourceTarget::Utilization(70)),
        resource(
            ResourceName::Cpu,
            Some("sidecar"),
            ResourceTarget::Utilization(90),
        ),
    ];
    let hpa = build_json(&scaled_object(json!({})), &metrics);
    let order: Vec<(String, String)> = hpa["spec"]["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|m| {
            let source = m["type"].as_str().unwrap_or_default().to_owned();
            let detail = match source.as_str() {
                "External" => m["external"]["metric"]["name"].clone(),
                "Resource" => m["resource"]["name"].clone(),
                _ => json!(format!(
                    "{}/{}",
                    m["containerResource"]["container"]
                        .as_str()
                        .unwrap_or_default(),
                    m["containerResource"]["name"].as_str().unwrap_or_default()
                )),
            };
            (source, detail.as_str().unwrap_or_default().to_owned())
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("ContainerResource", "app/memory"),
        ("ContainerResource", "sidecar/cpu"),
        ("External", "s1-redis-a"),
        ("External", "s3-redis-b"),
        ("Resource", "cpu"),
        ("Resource", "memory"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(order, expected);
}

struct MetricCase {
    name: &'static str,
    metric: MetricSpec,
    expected: Value,
}

#[test]
fn each_metric_becomes_keda_s_hpa_metric() {
    let selector = json!({"matchLabels": {"scaledobject.keda.sh/name": "orders"}});
    let cases = [
        MetricCase {
            name: "integer AverageValue target",
            metric: external("s0-redis-jobs", 10.0),
            expected: json!({"type": "External", "external": {
                "metric": {"name": "s0-redis-jobs", "selector": selector},
                "target": {"type": "AverageValue", "averageValue": "10"}
            }}),
        },
        MetricCase {
            name: "fractional target is a milli-quantity",
            metric: external("s0-prometheus", 0.5),
            expected: json!({"type": "External", "external": {
                "metric": {"name": "s0-prometheus", "selector": selector},
                "target": {"type": "AverageValue", "averageValue": "500m"}
            }}),
        },
        MetricCase {
            name: "large target in canonical form",
            metric: external("s0-prometheus", 12000.0),
            expected: json!({"type": "External", "external": {
                "metric": {"name": "s0-prometheus", "selector": selector},
                "target": {"type": "AverageValue", "averageValue": "12k"}
            }}),
        },
        MetricCase {
            name: "Value target",
            metric: external_value("s0-prometheus", 2.5),
            expected: json!({"type": "External", "external": {
                "metric": {"name": "s0-prometheus", "selector": selector},
                "target": {"type": "Value", "value": "2500m"}
            }}),
        },
        MetricCase {
            name: "cpu utilization",
            metric: cpu(50),
            expected: json!({"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}
            }}),
        },
        MetricCase {
            name: "memory average value, canonical",
            metric: resource(
                ResourceName::Memory,
                None,
                ResourceTarget::AverageValue("1024Mi".into()),
            ),
            expected: json!({"type": "Resource", "resource": {
                "name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}
            }}),
        },
        MetricCase {
            name: "cpu average value written as a decimal",
            metric: resource(
                ResourceName::Cpu,
                None,
                ResourceTarget::AverageValue("0.5".into()),
            ),
            expected: json!({"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "AverageValue", "averageValue": "500m"}
            }}),
        },
        MetricCase {
            name: "container cpu utilization",
            metric: resource(
                ResourceName::Cpu,
                Some("app"),
                ResourceTarget::Utilization(75),
            ),
            expected: json!({"type": "ContainerResource", "containerResource": {
                "name": "cpu", "container": "app",
                "target": {"type": "Utilization", "averageUtilization": 75}
            }}),
        },
        MetricCase {
            name: "container memory average value",
            metric: resource(
                ResourceName::Memory,
                Some("app"),
                ResourceTarget::AverageValue("512Mi".into()),
            ),
            expected: json!({"type": "ContainerResource", "containerResource": {
                "name": "memory", "container": "app",
                "target": {"type": "AverageValue", "averageValue": "512Mi"}
            }}),
        },
    ];
    for case in cases {
        let hpa = build_json(&scaled_object(json!({})), &[case.metric]);
        assert_eq!(
            hpa["spec"]["metrics"],
            json!([case.expected]),
            "{}",
            case.name
        );
    }
}

// ---------------------------------------------------------------------------------------------
// scalingModifiers

struct ModifierCase {
    name: &'static str,
    modifiers: Value,
    /// Source type and name (metric or resource) of each HPA metric, in order.
    expected: &'static [(&'static str, &'static str)],
    /// The composite metric's target, when there is one.
    composite_target: Option<Value>,
}

#[test]
fn scaling_modifiers_replace_external_metrics_with_the_composite_one() {
    let metrics = [
        external("s0-prometheus", 5.0),
        cpu(50),
        external("s2-prometheus", 5.0),
        resource(
            ResourceName::Memory,
            Some("app"),
            ResourceTarget::Utilization(80),
        ),
    ];
    let all: &[(&str, &str)] = &[
        ("ContainerResource", "memory"),
        ("External", "s0-prometheus"),
        ("External", "s2-prometheus"),
        ("Resource", "cpu"),
    ];
    let composite: &[(&str, &str)] = &[("Resource", "cpu"), ("External", "composite-metric")];
    let cases = [
        ModifierCase {
            name: "AverageValue by default",
            modifiers: json!({"formula": "a + b", "target": "2"}),
            expected: composite,
            composite_target: Some(json!({"type": "AverageValue", "averageValue": "2"})),
        },
        ModifierCase {
            name: "Value",
            modifiers: json!({"formula": "a + b", "target": "2", "metricType": "Value"}),
            expected: composite,
            composite_target: Some(json!({"type": "Value", "value": "2"})),
        },
        ModifierCase {
            name: "fractional target",
            modifiers: json!({"formula": "a + b", "target": "0.5"}),
            expected: composite,
            composite_target: Some(json!({"type": "AverageValue", "averageValue": "500m"})),
        },
        ModifierCase {
            name: "target truncated to milli units",
            modifiers: json!({"formula": "a + b", "target": "2.0005"}),
            expected: composite,
            composite_target: Some(json!({"type": "AverageValue", "averageValue": "2"})),
        },
        ModifierCase {
            name: "target 0 keeps the trigger metrics",
            modifiers: json!({"formula": "a + b", "target": "0"}),
            expected: all,
            composite_target: None,
        },
        ModifierCase {
            name: "no target keeps the trigger metrics",
            modifiers: json!({"formula": "a + b"}),
            expected: all,
            composite_target: None,
        },
        ModifierCase {
            name: "unparsable target keeps the trigger metrics",
            modifiers: json!({"formula": "a + b", "target": "two"}),
            expected: all,
            composite_target: None,
        },
        ModifierCase {
            name: "empty modifiers are not in use",
            modifiers: json!({"formula": "", "target": ""}),
            expected: all,
            composite_target: None,
        },
    ];
    for case in cases {
        let so = scaled_object(json!({"spec": {"advanced": {"scalingModifiers": case.modifiers}}}));
        let hpa = build_json(&so, &metrics);
        let hpa_metrics = hpa["spec"]["metrics"].as_array().expect("metrics");
        let shape: Vec<(&str, &str)> = hpa_metrics
            .iter()
            .map(|m| {
                let source = m["type"].as_str().unwrap_or_default();
                let name = match source {
                    "External" => m["external"]["metric"]["name"].as_str(),
                    "Resource" => m["resource"]["name"].as_str(),
                    _ => m["containerResource"]["name"].as_str(),
                };
                (source, name.unwrap_or_default())
            })
            .collect();
        assert_eq!(shape, case.expected, "{}", case.name);
        let composite_metric = hpa_metrics
            .iter()
            .find(|m| m["external"]["metric"]["name"] == "composite-metric");
        assert_eq!(
            composite_metric.map(|m| m["external"]["target"].clone()),
            case.composite_target,
            "{}",
            case.name
        );
        if let Some(metric) = composite_metric {
            assert_eq!(
                metric["external"]["metric"]["selector"],
                json!({"matchLabels": {"scaledobject.keda.sh/name": "orders"}}),
                "{}",
                case.name
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

#[test]
fn duplicate_external_metric_names_are_an_error_naming_the_metric() {
    let so = scaled_object(json!({}));
    let error = build_with(
        &so,
        &[
            external("s0-redis-jobs", 5.0),
            cpu(50),
            external("s0-redis-jobs", 7.0),
        ],
    )
    .expect_err("duplicate names");
    assert_eq!(
        error,
        HpaError::DuplicateMetricName {
            metric: "s0-redis-jobs".into(),
            scaled_object: "orders".into()
        }
    );
    assert_eq!(
        error.to_string(),
        "metricName s0-redis-jobs defined multiple times in ScaledObject orders"
    );
}

#[test]
fn other_errors_say_what_failed() {
    let so = scaled_object(json!({}));
    let no_uid = scaled_object(json!({"metadata": {"uid": null}}));
    let utilization = MetricSpec::External(ExternalMetric {
        name: MetricName::from_raw("s0-prometheus"),
        target: 5.0,
        target_type: MetricTargetType::Utilization,
    });
    let bad_quantity = resource(
        ResourceName::Memory,
        None,
        ResourceTarget::AverageValue("1.5.5".into()),
    );
    let cases: [(&str, &ScaledObject, Vec<MetricSpec>, &str); 4] = [
        (
            "no metrics",
            &so,
            vec![],
            "no metric specs returned from scalers for ScaledObject shop/orders",
        ),
        (
            "no uid",
            &no_uid,
            one_metric(),
            "building the HPA: the ScaledObject has no metadata.uid",
        ),
        (
            "utilization on an external metric",
            &so,
            vec![utilization],
            "building the HPA target of metric s0-prometheus: 'Utilization' metric type is unsupported for external metrics",
        ),
        (
            "not a quantity",
            &so,
            vec![bad_quantity],
            "building the HPA target of the memory metric: \"1.5.5\" is not a Kubernetes quantity",
        ),
    ];
    for (name, so, metrics, message) in cases {
        let error = build_with(so, &metrics).expect_err(name);
        assert_eq!(error.to_string(), message, "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// Status metric names

struct NamesCase {
    name: &'static str,
    modifiers: Value,
    metrics: Vec<MetricSpec>,
    expected: MetricNames,
}

#[test]
fn status_metric_names_are_written_as_keda_writes_them() {
    let strings = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    let cases = [
        NamesCase {
            name: "external names in trigger order, resources without containers",
            modifiers: Value::Null,
            metrics: vec![
                external("s0-redis-b", 1.0),
                cpu(50),
                resource(
                    ResourceName::Memory,
                    Some("app"),
                    ResourceTarget::Utilization(80),
                ),
                external("s3-cron-x", 1.0),
                resource(ResourceName::Memory, None, ResourceTarget::Utilization(80)),
            ],
            expected: MetricNames {
                external: strings(&["s0-redis-b", "s3-cron-x"]),
                resource: strings(&["cpu", "memory"]),
                composite: None,
            },
        },
        NamesCase {
            name: "composite name with modifiers; external names still listed",
            modifiers: json!({"formula": "a", "target": "1"}),
            metrics: vec![
                external("s0-prometheus", 1.0),
                external("s1-prometheus", 1.0),
            ],
            expected: MetricNames {
                external: strings(&["s0-prometheus", "s1-prometheus"]),
                resource: vec![],
                composite: Some("composite-metric".into()),
            },
        },
        NamesCase {
            name: "no composite name when the target is not positive",
            modifiers: json!({"formula": "a", "target": "0"}),
            metrics: vec![external("s0-prometheus", 1.0)],
            expected: MetricNames {
                external: strings(&["s0-prometheus"]),
                resource: vec![],
                composite: None,
            },
        },
    ];
    for case in cases {
        let so = scaled_object(json!({"spec": {"advanced": {"scalingModifiers": case.modifiers}}}));
        assert_eq!(
            metric_names(&so, &case.metrics),
            case.expected,
            "{}",
            case.name
        );
    }
}

#[test]
fn health_of_metrics_that_are_gone_is_pruned() {
    let failing = HealthStatus {
        number_of_failures: Some(87),
        status: Some(HealthStatusType::Failing),
    };
    let so = scaled_object(json!({"status": {"health": {
        "another metric name": {"numberOfFailures": 87, "status": "Failing"},
        "some metric name": {"numberOfFailures": 87, "status": "Failing"}
    }}}));
    let pruned = pruned_health(&so, &["some metric name".to_owned()]);
    assert_eq!(
        pruned,
        BTreeMap::from([("some metric name".to_owned(), failing)])
    );
    assert!(pruned_health(&so, &[]).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Update detection

/// The desired HPA as the API server hands it back: defaults filled in, quantities canonical,
/// status and server-managed metadata added.
fn as_served(desired: &HorizontalPodAutoscaler) -> HorizontalPodAutoscaler {
    let mut live = desired.clone();
    live.metadata.resource_version = Some("42".into());
    live.metadata.uid = Some("hpa-uid".into());
    live.metadata.creation_timestamp = None;
    if let Some(behavior) = live.spec.behavior.as_ref() {
        live.spec.behavior = Some(compare::with_server_defaults(behavior));
    }
    live.status = Some(
        serde_json::from_value(json!({"currentReplicas": 1, "desiredReplicas": 1}))
            .expect("status"),
    );
    live
}

fn edited(hpa: &HorizontalPodAutoscaler, edit: impl FnOnce(&mut Value)) -> HorizontalPodAutoscaler {
    let mut value = serde_json::to_value(hpa).expect("serialises");
    edit(&mut value);
    serde_json::from_value(value).expect("still an HPA")
}

struct UpdateCase {
    name: &'static str,
    /// The ScaledObject the desired HPA is built from.
    desired: Value,
    /// The ScaledObject the live HPA was built from, served back by the API server.
    live_from: Value,
    /// A further edit of the live HPA (JSON).
    edit: fn(&mut Value),
    needs_update: bool,
}

fn no_edit(_: &mut Value) {}

#[test]
fn updates_are_detected_as_keda_detects_them() {
    let behavior = json!({"spec": {"advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
        "scaleDown": {"stabilizationWindowSeconds": 300}
    }}}}});
    let scale_up_only = json!({"spec": {"advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
        "scaleUp": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
                    "policies": [{"type": "Pods", "value": 5, "periodSeconds": 30}]}
    }}}}});
    let mut scale_up_paused = scale_up_only.clone();
    merge(
        &mut scale_up_paused,
        &json!({"metadata": {"annotations": {
            "autoscaling.keda.sh/paused-scale-in": "true", "other": "x"
        }}}),
    );
    let mut scale_up_unpaused = scale_up_only.clone();
    merge(
        &mut scale_up_unpaused,
        &json!({"metadata": {"annotations": {"other": "x"}}}),
    );
    let cases = [
        UpdateCase {
            name: "unchanged",
            desired: json!({}),
            live_from: json!({}),
            edit: no_edit,
            needs_update: false,
        },
        UpdateCase {
            name: "server-defaulted behavior is not a difference",
            desired: behavior.clone(),
            live_from: behavior.clone(),
            edit: no_edit,
            needs_update: false,
        },
        UpdateCase {
            name: "quantities spelled differently by the server are not a difference",
            desired: json!({}),
            live_from: json!({}),
            edit: |hpa| {
                hpa["spec"]["metrics"][0]["external"]["target"]["averageValue"] = json!("10000m")
            },
            needs_update: false,
        },
        UpdateCase {
            name: "fields the desired HPA leaves unset are ignored",
            desired: json!({}),
            live_from: json!({}),
            edit: |hpa| {
                hpa["spec"]["metrics"][0]["external"]["metric"]["selector"]["matchExpressions"] =
                    json!([{"key": "x", "operator": "Exists"}])
            },
            needs_update: false,
        },
        UpdateCase {
            name: "extra labels and annotations on the HPA are left alone",
            desired: json!({"metadata": {"annotations": {"a": "1"}}}),
            live_from: json!({"metadata": {"annotations": {"a": "1"}}}),
            edit: |hpa| {
                hpa["metadata"]["labels"]["added-by"] = json!("someone");
                hpa["metadata"]["annotations"]["added-by"] = json!("someone");
            },
            needs_update: false,
        },
        UpdateCase {
            name: "changed metric target",
            desired: json!({}),
            live_from: json!({}),
            edit: |hpa| {
                hpa["spec"]["metrics"][0]["external"]["target"]["averageValue"] = json!("20")
            },
            needs_update: true,
        },
        UpdateCase {
            name: "third-party edit of maxReplicas is reverted",
            desired: json!({}),
            live_from: json!({}),
            edit: |hpa| hpa["spec"]["maxReplicas"] = json!(3),
            needs_update: true,
        },
        UpdateCase {
            name: "third-party edit of the target is reverted",
            desired: json!({}),
            live_from: json!({}),
            edit: |hpa| hpa["spec"]["scaleTargetRef"]["name"] = json!("other"),
            needs_update: true,
        },
        UpdateCase {
            name: "metric added by a third party",
            desired: json!({}),
            live_from: json!({}),
            edit: |hpa| {
                let metric = json!({"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 50}}});
                if let Some(metrics) = hpa["spec"]["metrics"].as_array_mut() {
                    metrics.push(metric);
                }
            },
            needs_update: true,
        },
        UpdateCase {
            name: "changed behavior",
            desired: json!({"spec": {"advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
                "scaleDown": {"stabilizationWindowSeconds": 60}
            }}}}}),
            live_from: behavior.clone(),
            edit: no_edit,
            needs_update: true,
        },
        UpdateCase {
            name: "behavior added by a third party",
            desired: json!({}),
            live_from: json!({}),
            edit: |hpa| hpa["spec"]["behavior"] = json!({"scaleUp": {"selectPolicy": "Min"}}),
            needs_update: true,
        },
        UpdateCase {
            name: "behavior removed from the ScaledObject",
            desired: json!({}),
            live_from: behavior.clone(),
            edit: no_edit,
            needs_update: true,
        },
        UpdateCase {
            name: "paused-scale-in added",
            desired: json!({"metadata": {"annotations": {"autoscaling.keda.sh/paused-scale-in": "true"}}}),
            live_from: json!({}),
            edit: no_edit,
            needs_update: true,
        },
        UpdateCase {
            name: "paused-scale-in removed without a configured scale-down",
            desired: scale_up_unpaused,
            live_from: scale_up_paused,
            edit: no_edit,
            needs_update: true,
        },
        UpdateCase {
            name: "changed label",
            desired: json!({"metadata": {"labels": {"team": "a"}}}),
            live_from: json!({"metadata": {"labels": {"team": "b"}}}),
            edit: no_edit,
            needs_update: true,
        },
        UpdateCase {
            name: "changed annotation",
            desired: json!({"metadata": {"annotations": {"a": "1"}}}),
            live_from: json!({"metadata": {"annotations": {"a": "2"}}}),
            edit: no_edit,
            needs_update: true,
        },
        UpdateCase {
            name: "all annotations removed from the ScaledObject",
            desired: json!({}),
            live_from: json!({"metadata": {"annotations": {"a": "1"}}}),
            edit: no_edit,
            needs_update: true,
        },
        UpdateCase {
            name: "one annotation removed while others remain is left (KEDA)",
            desired: json!({"metadata": {"annotations": {"a": "1"}}}),
            live_from: json!({"metadata": {"annotations": {"a": "1", "b": "2"}}}),
            edit: no_edit,
            needs_update: false,
        },
        UpdateCase {
            name: "owned by an earlier ScaledObject of the same name",
            desired: json!({}),
            live_from: json!({"metadata": {"uid": "uid-0"}}),
            edit: no_edit,
            needs_update: true,
        },
    ];
    let metrics = one_metric();
    for case in cases {
        let desired = build_with(&scaled_object(case.desired), &metrics).expect("desired builds");
        let live = build_with(&scaled_object(case.live_from), &metrics).expect("live builds");
        let live = edited(&as_served(&live), case.edit);
        assert_eq!(
            needs_update(&desired, &live),
            case.needs_update,
            "{}",
            case.name
        );
    }
}

#[test]
fn a_removed_trigger_is_an_update() {
    let so = scaled_object(json!({}));
    let desired = build_with(&so, &[external("s0-a", 1.0)]).expect("builds");
    let live = build_with(&so, &[external("s0-a", 1.0), external("s1-b", 1.0)]).expect("builds");
    assert!(needs_update(&desired, &as_served(&live)));
}

// ---------------------------------------------------------------------------------------------
// Names and adoption

#[test]
fn the_live_hpa_is_looked_up_under_the_name_in_status() {
    let so = scaled_object(json!({
        "spec": {"advanced": {"horizontalPodAutoscalerConfig": {"name": "new-name"}}},
        "status": {"hpaName": "keda-hpa-orders"}
    }));
    assert_eq!(hpa_name(&so), "new-name");
    assert_eq!(lookup_name(&so), "keda-hpa-orders");
    let found = HorizontalPodAutoscaler {
        metadata: ObjectMeta {
            name: Some("keda-hpa-orders".into()),
            ..ObjectMeta::default()
        },
        ..HorizontalPodAutoscaler::default()
    };
    assert!(is_renamed(&so, &found));

    let plain = scaled_object(json!({}));
    assert_eq!(lookup_name(&plain), "keda-hpa-orders");
    assert!(!is_renamed(&plain, &found));
}

struct AdoptionCase {
    name: &'static str,
    so: Value,
    hpa: Value,
    expected: Adoption,
}

#[test]
fn foreign_hpas_are_adopted_only_as_keda_allows() {
    let hpa = |name: &str, target: &str, extra: Value| {
        let mut value = json!({
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                "maxReplicas": 5
            }
        });
        merge(&mut value, &extra);
        value
    };
    let owner = |kind: &str, name: &str| {
        json!({"metadata": {"ownerReferences": [{
            "apiVersion": if kind == "ScaledObject" { "keda.sh/v1alpha1" } else { "apps/v1" },
            "kind": kind, "name": name, "uid": "u", "controller": true
        }]}})
    };
    let transfer = |name: Option<&str>| {
        let mut so = json!({"metadata": {"annotations": {
            "scaledobject.keda.sh/transfer-hpa-ownership": "true"
        }}});
        if let Some(name) = name {
            merge(
                &mut so,
                &json!({"spec": {"advanced": {"horizontalPodAutoscalerConfig": {"name": name}}}}),
            );
        }
        so
    };
    let cases = [
        AdoptionCase {
            name: "owned by this ScaledObject",
            so: json!({}),
            hpa: hpa("keda-hpa-orders", "orders", owner("ScaledObject", "orders")),
            expected: Adoption::Owned,
        },
        AdoptionCase {
            name: "owned by another ScaledObject",
            so: json!({}),
            hpa: hpa("keda-hpa-orders", "orders", owner("ScaledObject", "billing")),
            expected: Adoption::Conflict(
                "the hpa 'keda-hpa-orders' is already managed by the ScaledObject 'billing'".into(),
            ),
        },
        AdoptionCase {
            name: "foreign HPA of the same workload",
            so: json!({}),
            hpa: hpa("keda-hpa-orders", "orders", json!({})),
            expected: Adoption::Conflict(
                "the workload 'orders' of type 'apps/v1.Deployment' is already managed by the hpa 'keda-hpa-orders'".into(),
            ),
        },
        AdoptionCase {
            name: "foreign HPA with an empty apiVersion and kind (apps/v1 Deployment)",
            so: json!({}),
            hpa: hpa("keda-hpa-orders", "orders", json!({"spec": {"scaleTargetRef": {"apiVersion": null, "kind": ""}}})),
            expected: Adoption::Conflict(
                "the workload 'orders' of type 'apps/v1.Deployment' is already managed by the hpa 'keda-hpa-orders'".into(),
            ),
        },
        AdoptionCase {
            name: "transfer by name",
            so: transfer(Some("legacy")),
            hpa: hpa("legacy", "orders", owner("Application", "argo")),
            expected: Adoption::Adopt,
        },
        AdoptionCase {
            name: "transfer without naming the HPA",
            so: transfer(None),
            hpa: hpa("keda-hpa-orders", "orders", json!({})),
            expected: Adoption::Conflict(
                "the existing hpa 'keda-hpa-orders' for workload 'orders' of type 'apps/v1.Deployment' must be specified by name in advanced settings to enable ownership transfer".into(),
            ),
        },
        AdoptionCase {
            name: "transfer annotation must be exactly true",
            so: json!({
                "metadata": {"annotations": {"scaledobject.keda.sh/transfer-hpa-ownership": "True"}},
                "spec": {"advanced": {"horizontalPodAutoscalerConfig": {"name": "legacy"}}}
            }),
            hpa: hpa("legacy", "orders", json!({})),
            expected: Adoption::Conflict(
                "the workload 'orders' of type 'apps/v1.Deployment' is already managed by the hpa 'legacy'".into(),
            ),
        },
        AdoptionCase {
            name: "HPA opted out of the ownership check",
            so: json!({}),
            hpa: hpa("keda-hpa-orders", "orders", json!({"metadata": {"annotations": {
                "validations.keda.sh/hpa-ownership": "false"
            }}})),
            expected: Adoption::Adopt,
        },
        AdoptionCase {
            name: "HPA of another workload under our name",
            so: json!({}),
            hpa: hpa("keda-hpa-orders", "payments", json!({})),
            expected: Adoption::Adopt,
        },
        AdoptionCase {
            name: "HPA of a StatefulSet of the same name",
            so: json!({}),
            hpa: hpa("keda-hpa-orders", "orders", json!({"spec": {"scaleTargetRef": {"kind": "StatefulSet"}}})),
            expected: Adoption::Adopt,
        },
    ];
    for case in cases {
        let so = scaled_object(case.so);
        let existing: HorizontalPodAutoscaler =
            serde_json::from_value(case.hpa).expect("valid HPA");
        assert_eq!(
            adoption(&existing, &so, &deployment()),
            case.expected,
            "{}",
            case.name
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Golden HPAs: keda.sh examples through the real scalers, against HPAs written out by hand
// from KEDA's code.

fn golden(scaled_object_yaml: &str, expected_json: &str) {
    let mut set = crate::manifest::ManifestSet::default();
    set.add_yaml("scaledobject.yaml", scaled_object_yaml)
        .expect("fixture loads");
    let registry = scalers::builtin_registry();
    let objects = crate::prepare::prepare_all(
        &set,
        &registry,
        &scalers::ScalerContext::default(),
        &crate::resolve::ResolveOptions::default(),
    );
    let object = objects.first().expect("one ScaledObject");
    for trigger in &object.triggers {
        assert!(
            trigger.errors.is_empty(),
            "trigger {}: {:?}",
            trigger.index,
            trigger.errors
        );
    }
    let metrics: Vec<MetricSpec> = object
        .triggers
        .iter()
        .flat_map(|t| t.metric_specs())
        .collect();
    let so = object.scaled_object.as_ref().expect("typed ScaledObject");
    let hpa = build_with(so, &metrics).expect("HPA builds");
    let expected: Value = serde_json::from_str(expected_json).expect("fixture is JSON");
    assert_eq!(serde_json::to_value(&hpa).expect("serialises"), expected);

    // Served back as is, the HPA needs no update.
    assert!(!needs_update(&hpa, &as_served(&hpa)));
}

#[test]
fn golden_reference_example() {
    golden(
        include_str!("../../../tests/fixtures/hpa/reference-example.scaledobject.yaml"),
        include_str!("../../../tests/fixtures/hpa/reference-example.hpa.json"),
    );
}

#[test]
fn golden_modifiers_example() {
    golden(
        include_str!("../../../tests/fixtures/hpa/modifiers-example.scaledobject.yaml"),
        include_str!("../../../tests/fixtures/hpa/modifiers-example.hpa.json"),
    );
}
