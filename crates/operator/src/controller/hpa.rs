//! The HPA Windlass owns for each ScaledObject, built and compared as pure functions
//! (keda-spec §2.2, §2.3, §1.2, §1.3).
//!
//! KEDA's rule (`controllers/keda/hpa.go`): one `autoscaling/v2` HPA per ScaledObject, named
//! `advanced.horizontalPodAutoscalerConfig.name` or `keda-hpa-<name>`, controlled by the
//! ScaledObject through an ownerReference. Its metrics are every trigger's metric specs, external
//! ones selected by `scaledobject.keda.sh/name: <so>`, sorted by source type; with
//! `scalingModifiers` a single `composite-metric` replaces the external ones. `minReplicas` is
//! never below 1 (KEDA itself moves the target between 0 and 1). Behavior is copied from the
//! ScaledObject, with a direction's `selectPolicy` set to `Disabled` while the matching
//! `paused-scale-in` / `paused-scale-out` annotation holds.
//!
//! The reconciler reads the live HPA under [`lookup_name`], replaces it (delete and create)
//! when [`is_renamed`], asks [`adoption`] before touching one it does not own, and writes
//! [`desired_hpa`] whenever [`needs_update`] says so.

mod compare;
mod quantity;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::{
    ContainerResourceMetricSource, CrossVersionObjectReference, ExternalMetricSource,
    HPAScalingRules, HorizontalPodAutoscaler, HorizontalPodAutoscalerBehavior,
    HorizontalPodAutoscalerSpec, MetricIdentifier, MetricSpec as HpaMetricSpec, MetricTarget,
    ResourceMetricSource,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use scaler_core::metric::{
    COMPOSITE_METRIC_NAME, ExternalMetric, MetricSpec, MetricTargetType, ResourceMetric,
    ResourceTarget, format_quantity,
};
use thiserror::Error;

use crate::crd::{
    API_VERSION, GroupVersionKindResource, HPA_EXCLUDED_LABELS_ANNOTATION, HealthStatus,
    ModifierMetricType, SCALED_OBJECT_OWNER_ANNOTATION, ScaledObject,
    TRANSFER_HPA_OWNERSHIP_ANNOTATION, VALIDATIONS_HPA_OWNERSHIP_ANNOTATION,
};

/// Value of the HPA's `app.kubernetes.io/managed-by` label.
///
/// KEDA's value, kept on purpose: label selectors, dashboards and policies written against KEDA
/// (`app.kubernetes.io/managed-by=keda-operator`) keep finding the HPAs Windlass manages.
pub const MANAGED_BY: &str = "keda-operator";

/// `kind` of the ScaledObject in ownerReferences.
const SCALED_OBJECT_KIND: &str = "ScaledObject";

/// Longest label value Kubernetes accepts.
const MAX_LABEL_VALUE_LENGTH: usize = 63;

/// HPA metric source types, as `MetricSpec.type` spells them.
const EXTERNAL: &str = "External";
const RESOURCE: &str = "Resource";
const CONTAINER_RESOURCE: &str = "ContainerResource";

/// Everything the HPA of one ScaledObject is built from.
#[derive(Clone, Copy, Debug)]
pub struct HpaInput<'a> {
    /// The ScaledObject, as read from the API (name, namespace and uid set).
    pub scaled_object: &'a ScaledObject,
    /// The scale target's resolved group, version, kind and resource.
    pub target: &'a GroupVersionKindResource,
    /// The scale target's name (`spec.scaleTargetRef.name`).
    pub target_name: &'a str,
    /// The metric specs of all triggers, in trigger order.
    pub metrics: &'a [MetricSpec],
    /// The operator's version, for the `app.kubernetes.io/version` label.
    pub operator_version: &'a str,
}

/// Why the desired HPA cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum HpaError {
    /// The ScaledObject lacks metadata the HPA needs (its name, or its uid for the
    /// ownerReference): it was not read from the API server.
    #[error("building the HPA: the ScaledObject has no metadata.{field}")]
    MissingMetadata { field: &'static str },
    /// No trigger produced a metric (KEDA's wording).
    #[error("no metric specs returned from scalers for ScaledObject {namespace}/{name}")]
    NoMetricSpecs { namespace: String, name: String },
    /// Two triggers produced the same external metric name (KEDA's wording).
    #[error("metricName {metric} defined multiple times in ScaledObject {scaled_object}")]
    DuplicateMetricName {
        metric: String,
        scaled_object: String,
    },
    /// An external metric asked for a `Utilization` target, which only cpu and memory support.
    #[error(
        "building the HPA target of metric {metric}: 'Utilization' metric type is unsupported for external metrics"
    )]
    UtilizationExternalMetric { metric: String },
    /// A cpu or memory `AverageValue` target is not a Kubernetes quantity.
    #[error(
        "building the HPA target of the {resource} metric: {value:?} is not a Kubernetes quantity"
    )]
    InvalidQuantity {
        resource: &'static str,
        value: String,
    },
}

/// Name of the ScaledObject's HPA: `advanced.horizontalPodAutoscalerConfig.name` or
/// `keda-hpa-<name>`.
pub fn hpa_name(so: &ScaledObject) -> String {
    so.hpa_name()
}

/// Name under which to look the live HPA up: `status.hpaName` when set (the HPA that was
/// actually created, even if the configured name has changed since), else [`hpa_name`].
pub fn lookup_name(so: &ScaledObject) -> String {
    so.status
        .as_ref()
        .and_then(|s| s.hpa_name.as_deref())
        .filter(|n| !n.is_empty())
        .map_or_else(|| hpa_name(so), str::to_owned)
}

/// Whether the HPA found under [`lookup_name`] carries a name other than the configured one:
/// KEDA then deletes it and creates the HPA under the new name.
pub fn is_renamed(so: &ScaledObject, found: &HorizontalPodAutoscaler) -> bool {
    found.metadata.name.as_deref() != Some(hpa_name(so).as_str())
}

/// The HPA KEDA would create for this ScaledObject.
pub fn desired_hpa(input: &HpaInput<'_>) -> Result<HorizontalPodAutoscaler, HpaError> {
    let so = input.scaled_object;
    let so_name = so
        .metadata
        .name
        .as_deref()
        .ok_or(HpaError::MissingMetadata { field: "name" })?;
    let uid = so
        .metadata
        .uid
        .as_deref()
        .ok_or(HpaError::MissingMetadata { field: "uid" })?;
    let name = hpa_name(so);

    let metrics = hpa_metrics(so, so_name, input.metrics)?;
    let owner = OwnerReference {
        api_version: API_VERSION.to_owned(),
        kind: SCALED_OBJECT_KIND.to_owned(),
        name: so_name.to_owned(),
        uid: uid.to_owned(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };

    Ok(HorizontalPodAutoscaler {
        metadata: ObjectMeta {
            labels: Some(labels(so, so_name, &name, input.operator_version)),
            annotations: so.metadata.annotations.clone().filter(|a| !a.is_empty()),
            name: Some(name),
            namespace: so.metadata.namespace.clone(),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: HorizontalPodAutoscalerSpec {
            behavior: behavior(so),
            max_replicas: so.hpa_max_replicas(),
            metrics: Some(metrics),
            min_replicas: Some(so.hpa_min_replicas()),
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some(input.target.api_version()),
                kind: input.target.kind.clone(),
                name: input.target_name.to_owned(),
            },
        },
        status: None,
    })
}

/// Labels: KEDA's four `app.kubernetes.io/*` labels, then every label of the ScaledObject
/// (overriding them) except the keys listed in `scaledobject.keda.sh/hpa-excluded-labels`.
fn labels(
    so: &ScaledObject,
    so_name: &str,
    hpa_name: &str,
    version: &str,
) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = [
        ("app.kubernetes.io/name", name_label(hpa_name)),
        ("app.kubernetes.io/version", version.to_owned()),
        ("app.kubernetes.io/part-of", so_name.to_owned()),
        ("app.kubernetes.io/managed-by", MANAGED_BY.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    // Split on bare commas, untrimmed, as KEDA does: "a, b" excludes "a" and " b".
    let excluded: Vec<&str> = so
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(HPA_EXCLUDED_LABELS_ANNOTATION))
        .map(|list| list.split(',').collect())
        .unwrap_or_default();
    for (key, value) in so.metadata.labels.iter().flatten() {
        if !excluded.contains(&key.as_str()) {
            labels.insert(key.clone(), value.clone());
        }
    }
    labels
}

/// The HPA name as a label value: a name longer than 63 bytes is cut there and loses its
/// trailing non-alphanumeric characters (a label value must end with one).
fn name_label(hpa_name: &str) -> String {
    if hpa_name.len() <= MAX_LABEL_VALUE_LENGTH {
        return hpa_name.to_owned();
    }
    // KEDA cuts bytes; a character cut in half decodes as U+FFFD, which the trim removes too.
    let mut end = MAX_LABEL_VALUE_LENGTH;
    while !hpa_name.is_char_boundary(end) {
        end -= 1;
    }
    hpa_name[..end]
        .trim_end_matches(|c: char| !c.is_alphanumeric())
        .to_owned()
}

/// `advanced.horizontalPodAutoscalerConfig.behavior`, with scale-down disabled under
/// `paused-scale-in` and scale-up disabled under `paused-scale-out`.
fn behavior(so: &ScaledObject) -> Option<HorizontalPodAutoscalerBehavior> {
    let mut behavior = so
        .spec
        .advanced
        .as_ref()
        .and_then(|a| a.horizontal_pod_autoscaler_config.as_ref())
        .and_then(|h| h.behavior.clone());
    let disable = |rules: &mut Option<HPAScalingRules>| {
        rules
            .get_or_insert_with(HPAScalingRules::default)
            .select_policy = Some("Disabled".to_owned());
    };
    if so.needs_to_pause_scale_in() {
        disable(&mut behavior.get_or_insert_with(Default::default).scale_down);
    }
    if so.needs_to_pause_scale_out() {
        disable(&mut behavior.get_or_insert_with(Default::default).scale_up);
    }
    behavior
}

/// The HPA's metrics, in KEDA's order.
///
/// KEDA sorts by source type string (`ContainerResource` < `External` < `Resource`) with Go's
/// `sort.Slice`, which is not stable in general but is an insertion sort, hence stable, for up
/// to 12 elements. A stable sort therefore gives KEDA's exact order for every ScaledObject with
/// up to 12 metrics, and a deterministic one beyond (where KEDA's own order is an artefact of
/// its sorting algorithm).
fn hpa_metrics(
    so: &ScaledObject,
    so_name: &str,
    specs: &[MetricSpec],
) -> Result<Vec<HpaMetricSpec>, HpaError> {
    if specs.is_empty() {
        return Err(HpaError::NoMetricSpecs {
            namespace: so.metadata.namespace.clone().unwrap_or_default(),
            name: so_name.to_owned(),
        });
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut metrics = Vec::with_capacity(specs.len());
    for spec in specs {
        match spec {
            MetricSpec::External(metric) => {
                let name = metric.name.as_str();
                if seen.contains(&name) {
                    return Err(HpaError::DuplicateMetricName {
                        metric: name.to_owned(),
                        scaled_object: so_name.to_owned(),
                    });
                }
                seen.push(name);
                metrics.push(external_metric(metric, so_name)?);
            }
            MetricSpec::Resource(metric) => metrics.push(resource_metric(metric)?),
        }
    }
    metrics.sort_by(|a, b| a.type_.cmp(&b.type_));

    if let Some(composite) = composite_metric(so, so_name) {
        // KEDA keeps the Resource metrics (already sorted) and drops the ContainerResource ones.
        metrics.retain(|m| m.type_ == RESOURCE);
        metrics.push(composite);
    }
    Ok(metrics)
}

/// The selector KEDA's metrics adapter uses to find the ScaledObject behind a metric request.
fn owner_selector(so_name: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(
            SCALED_OBJECT_OWNER_ANNOTATION.to_owned(),
            so_name.to_owned(),
        )])),
        match_expressions: None,
    }
}

fn external_metric(metric: &ExternalMetric, so_name: &str) -> Result<HpaMetricSpec, HpaError> {
    // Integer targets print as "10", fractional ones as milli-quantities ("500m"): the forms
    // KEDA's NewQuantity and MustParse("%.3f") produce.
    let quantity = Some(Quantity(format_quantity(metric.target)));
    let target = match metric.target_type {
        MetricTargetType::AverageValue => MetricTarget {
            type_: MetricTargetType::AverageValue.as_str().to_owned(),
            average_value: quantity,
            ..MetricTarget::default()
        },
        MetricTargetType::Value => MetricTarget {
            type_: MetricTargetType::Value.as_str().to_owned(),
            value: quantity,
            ..MetricTarget::default()
        },
        MetricTargetType::Utilization => {
            return Err(HpaError::UtilizationExternalMetric {
                metric: metric.name.as_str().to_owned(),
            });
        }
    };
    Ok(HpaMetricSpec {
        type_: EXTERNAL.to_owned(),
        external: Some(ExternalMetricSource {
            metric: MetricIdentifier {
                name: metric.name.as_str().to_owned(),
                selector: Some(owner_selector(so_name)),
            },
            target,
        }),
        ..HpaMetricSpec::default()
    })
}

fn resource_metric(metric: &ResourceMetric) -> Result<HpaMetricSpec, HpaError> {
    let resource = metric.resource.as_str();
    let target = match &metric.target {
        ResourceTarget::Utilization(percent) => MetricTarget {
            type_: MetricTargetType::Utilization.as_str().to_owned(),
            average_utilization: Some(*percent),
            ..MetricTarget::default()
        },
        ResourceTarget::AverageValue(value) => MetricTarget {
            type_: MetricTargetType::AverageValue.as_str().to_owned(),
            average_value: Some(Quantity(quantity::canonical(value).ok_or_else(|| {
                HpaError::InvalidQuantity {
                    resource,
                    value: value.clone(),
                }
            })?)),
            ..MetricTarget::default()
        },
    };
    Ok(match &metric.container {
        Some(container) => HpaMetricSpec {
            type_: CONTAINER_RESOURCE.to_owned(),
            container_resource: Some(ContainerResourceMetricSource {
                container: container.clone(),
                name: resource.to_owned(),
                target,
            }),
            ..HpaMetricSpec::default()
        },
        None => HpaMetricSpec {
            type_: RESOURCE.to_owned(),
            resource: Some(ResourceMetricSource {
                name: resource.to_owned(),
                target,
            }),
            ..HpaMetricSpec::default()
        },
    })
}

/// The composite metric's target when KEDA uses one: scaling modifiers in use and `target`
/// parsing (Go `ParseFloat`) to a number above 0. Otherwise the trigger metrics stay as they are.
fn composite_target(so: &ScaledObject) -> Option<(f64, ModifierMetricType)> {
    let modifiers = so.scaling_modifiers()?;
    let engine = scaler_core::modifiers::ScalingModifiers {
        target: modifiers.target.clone().unwrap_or_default(),
        ..Default::default()
    };
    let target = engine.target_value().filter(|t| *t > 0.0)?;
    Some((target, modifiers.metric_type.unwrap_or_default()))
}

fn composite_metric(so: &ScaledObject, so_name: &str) -> Option<HpaMetricSpec> {
    let (target, metric_type) = composite_target(so)?;
    // `int64(target * 1000)`: truncated, not rounded ("2.0005" is 2, not 2001m). Rust's cast
    // saturates where Go's is undefined (an infinite target).
    let quantity = quantity::Quantity::from_milli((target * 1000.0) as i64)
        .canonical()
        .map(Quantity);
    let target = match metric_type {
        ModifierMetricType::AverageValue => MetricTarget {
            type_: MetricTargetType::AverageValue.as_str().to_owned(),
            average_value: quantity,
            ..MetricTarget::default()
        },
        ModifierMetricType::Value => MetricTarget {
            type_: MetricTargetType::Value.as_str().to_owned(),
            value: quantity,
            ..MetricTarget::default()
        },
    };
    Some(HpaMetricSpec {
        type_: EXTERNAL.to_owned(),
        external: Some(ExternalMetricSource {
            metric: MetricIdentifier {
                name: COMPOSITE_METRIC_NAME.to_owned(),
                selector: Some(owner_selector(so_name)),
            },
            target,
        }),
        ..HpaMetricSpec::default()
    })
}

/// Whether the live HPA must be overwritten with the desired one (KEDA's `updateHPAIfNeeded`).
///
/// True when the number of metrics differs, the behavior differs, the desired spec is not a
/// "deep derivative" of the live one (every field the desired spec sets has the same value
/// live; unset fields are ignored), or the desired labels or annotations are not a subset of the
/// live ones (or the ScaledObject has no annotations while the HPA has some). A third party's
/// edit of a field KEDA sets is therefore reverted, while fields it adds are left alone.
///
/// Behavior: KEDA compares it exactly, so that a behavior that must go back to nil (pause
/// annotation removed) is noticed. The API server fills every unset field of a given behavior
/// with defaults, so that exact comparison would see a difference on every reconcile; the
/// desired behavior is therefore also accepted in its server-defaulted form.
///
/// One addition to KEDA: the live HPA must carry the desired ownerReference (same uid). An HPA
/// left by a deleted and recreated ScaledObject, or adopted per [`adoption`], gets it written.
pub fn needs_update(desired: &HorizontalPodAutoscaler, live: &HorizontalPodAutoscaler) -> bool {
    let desired_spec = &desired.spec;
    let live_spec = &live.spec;

    let metric_count = |s: &HorizontalPodAutoscalerSpec| s.metrics.as_ref().map_or(0, Vec::len);
    if metric_count(desired_spec) != metric_count(live_spec) {
        return true;
    }

    let live_behavior = live_spec.behavior.as_ref();
    let behavior_matches = match desired_spec.behavior.as_ref() {
        None => live_behavior.is_none(),
        Some(desired) => {
            compare::behavior_equal(Some(desired), live_behavior)
                || compare::behavior_equal(
                    Some(&compare::with_server_defaults(desired)),
                    live_behavior,
                )
        }
    };
    if !behavior_matches {
        return true;
    }

    let spec_derives = match (
        serde_json::to_value(desired_spec),
        serde_json::to_value(live_spec),
    ) {
        (Ok(d), Ok(l)) => compare::derives(&d, Some(&l), ""),
        // Not reachable with k8s-openapi types; writing is the safe answer.
        _ => false,
    };
    if !spec_derives {
        return true;
    }

    let meta = (&desired.metadata, &live.metadata);
    if !compare::map_derives(meta.0.labels.as_ref(), meta.1.labels.as_ref()) {
        return true;
    }
    let no_annotations =
        |a: &Option<BTreeMap<String, String>>| a.as_ref().is_none_or(BTreeMap::is_empty);
    if (no_annotations(&meta.0.annotations) && !no_annotations(&meta.1.annotations))
        || !compare::map_derives(meta.0.annotations.as_ref(), meta.1.annotations.as_ref())
    {
        return true;
    }

    let live_owner_uids: Vec<&str> = meta
        .1
        .owner_references
        .iter()
        .flatten()
        .map(|r| r.uid.as_str())
        .collect();
    meta.0
        .owner_references
        .iter()
        .flatten()
        .any(|r| !live_owner_uids.contains(&r.uid.as_str()))
}

/// The metric names a ScaledObject's status lists (`status.externalMetricNames`,
/// `status.resourceMetricNames`, `status.compositeScalerName`), as KEDA writes them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricNames {
    /// External metric names in trigger order (the composite metric is not among them).
    pub external: Vec<String>,
    /// `cpu` / `memory` of the Resource metrics, in trigger order; container resource metrics
    /// are not listed.
    pub resource: Vec<String>,
    /// `composite-metric` when the HPA uses it. `None` means KEDA leaves the field as it was:
    /// it never clears a previously written name when scaling modifiers are removed.
    pub composite: Option<String>,
}

/// The status metric names for these metric specs (all triggers', in trigger order).
pub fn metric_names(so: &ScaledObject, metrics: &[MetricSpec]) -> MetricNames {
    MetricNames {
        external: metrics
            .iter()
            .filter_map(MetricSpec::external)
            .map(|m| m.name.as_str().to_owned())
            .collect(),
        resource: metrics
            .iter()
            .filter_map(|m| match m {
                MetricSpec::Resource(r) if r.container.is_none() => {
                    Some(r.resource.as_str().to_owned())
                }
                _ => None,
            })
            .collect(),
        composite: composite_target(so).map(|_| COMPOSITE_METRIC_NAME.to_owned()),
    }
}

/// `status.health` without the entries of metrics that no longer exist (KEDA prunes it whenever
/// it builds the HPA).
pub fn pruned_health(
    so: &ScaledObject,
    external_metric_names: &[String],
) -> BTreeMap<String, HealthStatus> {
    so.status
        .iter()
        .flat_map(|s| &s.health)
        .filter(|(name, _)| external_metric_names.contains(name))
        .map(|(name, health)| (name.clone(), health.clone()))
        .collect()
}

/// What to do with an existing HPA that has the name this ScaledObject's HPA should have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Adoption {
    /// It already belongs to this ScaledObject (an ownerReference of kind ScaledObject with its
    /// name, the test KEDA's webhook applies): update it as usual.
    Owned,
    /// Take it over: overwrite it with the desired HPA, ownerReference included.
    Adopt,
    /// Leave it alone and report the reason (KEDA's webhook would have rejected the
    /// ScaledObject with this message).
    Conflict(String),
}

/// KEDA's rule for a foreign HPA under the desired name.
///
/// KEDA's controller never asks: it overwrites whatever HPA carries the name, taking it over.
/// What protects other HPAs is its admission webhook, which rejects a ScaledObject whose target
/// is already scaled by an HPA it does not own, unless that HPA carries
/// `validations.keda.sh/hpa-ownership: "false"` or the ScaledObject has
/// `scaledobject.keda.sh/transfer-hpa-ownership: "true"` and names that HPA in
/// `advanced.horizontalPodAutoscalerConfig.name`. Windlass applies the same rule here, so the
/// outcome does not depend on whether a webhook ran:
///
/// - owned by this ScaledObject: [`Adoption::Owned`];
/// - owned by another ScaledObject: conflict (the webhook forbids two ScaledObjects one HPA
///   name, and taking it over would make both fight over it);
/// - opted out of the ownership check, or scaling another workload: adopt, as KEDA does;
/// - scaling the same workload: adopt only on transfer by name, else conflict.
pub fn adoption(
    existing: &HorizontalPodAutoscaler,
    so: &ScaledObject,
    target: &GroupVersionKindResource,
) -> Adoption {
    let so_name = so.metadata.name.as_deref().unwrap_or_default();
    let hpa_name = existing.metadata.name.as_deref().unwrap_or_default();
    let owners = existing
        .metadata
        .owner_references
        .as_deref()
        .unwrap_or_default();

    if owners
        .iter()
        .any(|o| o.kind == SCALED_OBJECT_KIND && o.name == so_name)
    {
        return Adoption::Owned;
    }
    if let Some(other) = owners
        .iter()
        .find(|o| o.kind == SCALED_OBJECT_KIND && o.api_version.starts_with("keda.sh/"))
    {
        return Adoption::Conflict(format!(
            "the hpa '{hpa_name}' is already managed by the ScaledObject '{}'",
            other.name
        ));
    }

    let opted_out = existing
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(VALIDATIONS_HPA_OWNERSHIP_ANNOTATION))
        .is_some_and(|v| v == "false");
    let target_name = &so.spec.scale_target_ref.name;
    if opted_out || !scales_same_workload(existing, target, target_name) {
        return Adoption::Adopt;
    }

    let gvk = target.gvk_string();
    let transfer = so
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(TRANSFER_HPA_OWNERSHIP_ANNOTATION))
        .is_some_and(|v| v == "true");
    let named = so
        .spec
        .advanced
        .as_ref()
        .and_then(|a| a.horizontal_pod_autoscaler_config.as_ref())
        .and_then(|h| h.name.as_deref())
        == Some(hpa_name);
    match (transfer, named) {
        (true, true) => Adoption::Adopt,
        (true, false) => Adoption::Conflict(format!(
            "the existing hpa '{hpa_name}' for workload '{target_name}' of type '{gvk}' must be specified by name in advanced settings to enable ownership transfer"
        )),
        (false, _) => Adoption::Conflict(format!(
            "the workload '{target_name}' of type '{gvk}' is already managed by the hpa '{hpa_name}'"
        )),
    }
}

/// Whether the HPA scales the same group/version/kind and name (KEDA's `ParseGVKR`: empty
/// apiVersion means `apps/v1`, empty kind `Deployment`).
fn scales_same_workload(
    hpa: &HorizontalPodAutoscaler,
    target: &GroupVersionKindResource,
    target_name: &str,
) -> bool {
    let reference = &hpa.spec.scale_target_ref;
    let api_version = reference.api_version.as_deref().unwrap_or_default();
    let (group, version) = match api_version {
        "" => ("apps", "v1"),
        other => match other.split_once('/') {
            None => ("", other),
            Some((group, version)) if !version.contains('/') => (group, version),
            // Not a group/version: KEDA's webhook fails on it; it cannot be the same target.
            Some(_) => return false,
        },
    };
    let kind = match reference.kind.as_str() {
        "" => "Deployment",
        kind => kind,
    };
    reference.name == target_name
        && group == target.group
        && version == target.version
        && kind == target.kind
}
