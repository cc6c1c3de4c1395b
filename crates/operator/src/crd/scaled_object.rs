//! The `ScaledObject` custom resource (`keda.sh/v1alpha1`): which workload to scale, between
//! which bounds, how often to poll, and which triggers decide.
//!
//! Field names, optionality and schema constraints follow KEDA's CRD so that existing manifests
//! apply unchanged. Optional fields are `Option`s without serde defaults: a manifest read and
//! written back keeps exactly the fields it had. Defaults KEDA applies at run time are documented
//! on each field and exposed through helper methods (`hpa_min_replicas`, `hpa_max_replicas`, ...).

use std::collections::BTreeMap;
use std::num::ParseIntError;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use super::conditions::Conditions;
use super::parse_go_bool;

/// Label (and HPA metric selector) key carrying the ScaledObject's name.
pub const SCALED_OBJECT_OWNER_ANNOTATION: &str = "scaledobject.keda.sh/name";
/// With value `"true"`, lets a ScaledObject adopt an existing HPA named in
/// `advanced.horizontalPodAutoscalerConfig.name`.
pub const TRANSFER_HPA_OWNERSHIP_ANNOTATION: &str = "scaledobject.keda.sh/transfer-hpa-ownership";
/// Comma-separated label keys that are not copied from the ScaledObject to its HPA.
pub const HPA_EXCLUDED_LABELS_ANNOTATION: &str = "scaledobject.keda.sh/hpa-excluded-labels";
/// On an HPA: value `"false"` excludes it from the "workload already managed" admission check.
pub const VALIDATIONS_HPA_OWNERSHIP_ANNOTATION: &str = "validations.keda.sh/hpa-ownership";
/// Integer: pauses autoscaling and pins the target to this many replicas.
pub const PAUSED_REPLICAS_ANNOTATION: &str = "autoscaling.keda.sh/paused-replicas";
/// Boolean: pauses autoscaling, leaving the replica count as it is.
pub const PAUSED_ANNOTATION: &str = "autoscaling.keda.sh/paused";
/// Boolean: blocks scaling in (HPA scale-down disabled, no active-to-idle step).
pub const PAUSED_SCALE_IN_ANNOTATION: &str = "autoscaling.keda.sh/paused-scale-in";
/// Boolean: blocks scaling out (HPA scale-up disabled, no idle-to-min step).
pub const PAUSED_SCALE_OUT_ANNOTATION: &str = "autoscaling.keda.sh/paused-scale-out";
/// Boolean: treat the object as active even when no trigger is.
pub const FORCE_ACTIVATION_ANNOTATION: &str = "autoscaling.keda.sh/force-activation";
/// Finalizer added to every ScaledObject and trigger authentication on first reconcile.
pub const FINALIZER: &str = "finalizer.keda.sh";
/// Metric name of the single composite metric used when scaling modifiers are configured.
pub const COMPOSITE_METRIC_NAME: &str = "composite-metric";

/// HPA `minReplicas` used when `minReplicaCount` is unset or 0: the HPA never owns zero.
pub const DEFAULT_HPA_MIN_REPLICAS: i32 = 1;
/// `maxReplicaCount` used when it is unset.
pub const DEFAULT_MAX_REPLICA_COUNT: i32 = 100;
/// `pollingInterval` (seconds) used when it is unset.
pub const DEFAULT_POLLING_INTERVAL_SECONDS: i32 = 30;
/// `cooldownPeriod` (seconds) used when it is unset.
pub const DEFAULT_COOLDOWN_PERIOD_SECONDS: i32 = 300;
/// `initialCooldownPeriod` (seconds) used when it is unset.
pub const DEFAULT_INITIAL_COOLDOWN_PERIOD_SECONDS: i32 = 0;
/// API version of the scale target when `scaleTargetRef.apiVersion` is empty.
pub const DEFAULT_SCALE_TARGET_API_VERSION: &str = "apps/v1";
/// Kind of the scale target when `scaleTargetRef.kind` is empty.
pub const DEFAULT_SCALE_TARGET_KIND: &str = "Deployment";

/// Desired state of a ScaledObject: the workload to scale, replica bounds, timings and the
/// triggers whose metrics drive scaling.
// Repeated `printcolumn(...)`/`shortname` arguments are intended.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "keda.sh",
    version = "v1alpha1",
    kind = "ScaledObject",
    plural = "scaledobjects",
    singular = "scaledobject",
    namespaced,
    shortname = "so",
    status = "ScaledObjectStatus",
    derive = "PartialEq",
    doc = "ScaledObject scales a Deployment, StatefulSet or any other workload exposing the /scale subresource between zero (or idle) and a maximum, driven by event-source triggers.",
    printcolumn(
        name = "ScaleTargetKind",
        type_ = "string",
        json_path = ".status.scaleTargetKind"
    ),
    printcolumn(
        name = "ScaleTargetName",
        type_ = "string",
        json_path = ".spec.scaleTargetRef.name"
    ),
    printcolumn(name = "Min", type_ = "integer", json_path = ".spec.minReplicaCount"),
    printcolumn(name = "Max", type_ = "integer", json_path = ".spec.maxReplicaCount"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Active",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Active\")].status"
    ),
    printcolumn(
        name = "Fallback",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Fallback\")].status"
    ),
    printcolumn(
        name = "Paused",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Paused\")].status"
    ),
    printcolumn(
        name = "Triggers",
        type_ = "string",
        json_path = ".status.triggersTypes"
    ),
    printcolumn(
        name = "Authentications",
        type_ = "string",
        json_path = ".status.authenticationsTypes"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::strip_null)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.minReplicaCount) || self.minReplicaCount <= (has(self.maxReplicaCount) ? self.maxReplicaCount : 100)",
    "message": "minReplicaCount must be less than or equal to maxReplicaCount"
}]))]
pub struct ScaledObjectSpec {
    /// The workload to scale; it lives in the ScaledObject's namespace and must expose the
    /// /scale subresource.
    pub scale_target_ref: ScaleTarget,
    /// Seconds between two evaluations of the triggers. Defaults to 30.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub polling_interval: Option<i32>,
    /// Seconds to wait after creation before the first scale-in to idle or zero, used until the
    /// object has been active once. Defaults to 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub initial_cooldown_period: Option<i32>,
    /// Seconds since the last active trigger before the workload is scaled in to idle or zero.
    /// Defaults to 300.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub cooldown_period: Option<i32>,
    /// Replica count while no trigger is active; must be lower than minReplicaCount. Unset means
    /// the workload stays at minReplicaCount (or goes to zero when that is 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub idle_replica_count: Option<i32>,
    /// Lowest replica count while active. Defaults to 0 (scale to zero when inactive).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_replica_count: Option<i32>,
    /// Highest replica count, the HPA's maxReplicas. Defaults to 100.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_replica_count: Option<i32>,
    /// Less common settings: HPA name and behavior, scaling modifiers, restore on deletion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advanced: Option<AdvancedConfig>,
    /// Event sources deciding the replica count; at least one is required.
    #[schemars(length(min = 1))]
    pub triggers: Vec<ScaleTrigger>,
    /// Replica count to use when triggers keep failing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
}

/// Reference to the workload being scaled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTarget {
    /// Name of the workload, in the ScaledObject's namespace.
    #[schemars(length(min = 1))]
    pub name: String,
    /// API group and version of the workload. Defaults to apps/v1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the workload. Defaults to Deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Container whose environment supplies `...FromEnv` trigger parameters. Defaults to the
    /// first container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_source_container_name: Option<String>,
}

impl ScaleTarget {
    /// The API version, or `apps/v1` when unset or empty.
    pub fn api_version_or_default(&self) -> &str {
        match self.api_version.as_deref() {
            Some(v) if !v.is_empty() => v,
            _ => DEFAULT_SCALE_TARGET_API_VERSION,
        }
    }

    /// The kind, or `Deployment` when unset or empty.
    pub fn kind_or_default(&self) -> &str {
        match self.kind.as_deref() {
            Some(k) if !k.is_empty() => k,
            _ => DEFAULT_SCALE_TARGET_KIND,
        }
    }
}

/// What to do when triggers fail repeatedly.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Fallback {
    /// Consecutive failures of a trigger tolerated before falling back; fallback starts once
    /// the count exceeds this number.
    #[schemars(range(min = 0))]
    pub failure_threshold: i32,
    /// Replica count to fall back to.
    #[schemars(range(min = 0))]
    pub replicas: i32,
    /// How the fallback replica count is combined with the current one. Defaults to static.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "static"))]
    pub behavior: Option<FallbackBehavior>,
}

impl Fallback {
    /// The behavior, `static` when unset.
    pub fn behavior_or_default(&self) -> FallbackBehavior {
        self.behavior.unwrap_or_default()
    }
}

/// How fallback replicas are applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FallbackBehavior {
    /// Always use `fallback.replicas`.
    #[default]
    Static,
    /// Keep the current replica count.
    CurrentReplicas,
    /// Use the current replica count if it is higher than `fallback.replicas`.
    CurrentReplicasIfHigher,
    /// Use the current replica count if it is lower than `fallback.replicas`.
    CurrentReplicasIfLower,
    /// Fall back on the composite metric of the scaling modifiers.
    ScalingModifiers,
}

/// Less common scaling options.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdvancedConfig {
    /// Settings of the HorizontalPodAutoscaler created for this ScaledObject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub horizontal_pod_autoscaler_config: Option<HorizontalPodAutoscalerConfig>,
    /// On deletion of the ScaledObject, scale the workload back to the replica count it had
    /// before autoscaling started. Defaults to false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_to_original_replica_count: Option<bool>,
    /// Combine the trigger metrics into one composite metric with a formula.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaling_modifiers: Option<ScalingModifiers>,
}

/// A formula combining named triggers into a single composite metric.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalingModifiers {
    /// Expression over trigger names giving the composite metric value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formula: Option<String>,
    /// Target value of the composite metric (a number written as a string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Composite value above which the workload is active (a number written as a string).
    /// Defaults to "0".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation_target: Option<String>,
    /// Target type of the composite metric. Defaults to AverageValue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_type: Option<ModifierMetricType>,
}

impl ScalingModifiers {
    /// True when none of the four fields has a non-empty value (KEDA treats such a block as
    /// absent).
    pub fn is_empty(&self) -> bool {
        let blank = |s: &Option<String>| s.as_deref().is_none_or(str::is_empty);
        blank(&self.formula)
            && blank(&self.target)
            && blank(&self.activation_target)
            && self.metric_type.is_none()
    }
}

/// Target type of the composite metric.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ModifierMetricType {
    /// The value is divided by the number of pods before comparing with the target.
    #[default]
    AverageValue,
    /// The value is compared with the target as is.
    Value,
}

/// Settings of the HorizontalPodAutoscaler owned by the ScaledObject.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HorizontalPodAutoscalerConfig {
    /// Scale-up and scale-down behavior, copied into the HPA as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "hpa_behavior_schema")]
    pub behavior: Option<HorizontalPodAutoscalerBehavior>,
    /// Name of the HPA. Defaults to keda-hpa-<ScaledObject name>.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Schema of the HPA behavior as KEDA's CRD has it: `stabilizationWindowSeconds` bounded to
/// 0..=3600 in both directions (the HPA API's own limits), `policies` an atomic list, and
/// `tolerance` an int-or-string whose string form must match the quantity syntax.
fn hpa_behavior_schema(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = <HorizontalPodAutoscalerBehavior as JsonSchema>::json_schema(generator);
    for direction in ["scaleUp", "scaleDown"] {
        let Some(rules) = schema
            .get_mut("properties")
            .and_then(|p| p.get_mut(direction))
            .and_then(|d| d.get_mut("properties"))
            .and_then(serde_json::Value::as_object_mut)
        else {
            continue;
        };
        if let Some(window) = rules
            .get_mut("stabilizationWindowSeconds")
            .and_then(serde_json::Value::as_object_mut)
        {
            window.insert("minimum".into(), 0.into());
            window.insert("maximum".into(), 3600.into());
        }
        if let Some(policies) = rules
            .get_mut("policies")
            .and_then(serde_json::Value::as_object_mut)
        {
            policies.insert("x-kubernetes-list-type".into(), "atomic".into());
        }
        if let Some(tolerance) = rules
            .get_mut("tolerance")
            .and_then(serde_json::Value::as_object_mut)
        {
            tolerance.insert("pattern".into(), QUANTITY_PATTERN.into());
            tolerance.insert("x-kubernetes-int-or-string".into(), true.into());
        }
    }
    schema
}

/// Syntax of a Kubernetes resource quantity (e.g. `100m`, `1.5`, `2Gi`, `1e3`).
const QUANTITY_PATTERN: &str = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

/// Removes the `default` that schemars derives from `#[serde(default)]` on the properties of a
/// status type: status is written by the operator, KEDA's CRD declares no defaults there.
fn remove_property_defaults(schema: &mut Schema) {
    if let Some(props) = schema
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut)
    {
        for prop in props
            .values_mut()
            .filter_map(serde_json::Value::as_object_mut)
        {
            prop.remove("default");
        }
    }
}

/// One event source.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTrigger {
    /// Scaler to use, e.g. prometheus, kafka, redis, cron, cpu.
    #[serde(rename = "type")]
    #[schemars(length(min = 1))]
    pub type_: String,
    /// Optional name, unique within the ScaledObject; the variable name in scaling-modifier
    /// formulas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Serve the HPA's metric requests from the value read at the last poll instead of querying
    /// the source again. Defaults to false; not allowed for cpu, memory and cron.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_cached_metrics: Option<bool>,
    /// Scaler parameters; every value is a string.
    pub metadata: BTreeMap<String, String>,
    /// TriggerAuthentication or ClusterTriggerAuthentication supplying secret parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication_ref: Option<AuthenticationRef>,
    /// HPA target type of this trigger's metric: AverageValue (default), Value, or Utilization
    /// for cpu and memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_type: Option<String>,
}

impl ScaleTrigger {
    /// The trigger's name, `""` when unset.
    pub fn name_or_empty(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    /// Whether `useCachedMetrics` is true.
    pub fn uses_cached_metrics(&self) -> bool {
        self.use_cached_metrics.unwrap_or(false)
    }
}

/// Points at the TriggerAuthentication or ClusterTriggerAuthentication used by a trigger.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationRef {
    /// Name of the referenced object.
    pub name: String,
    /// Kind of the referenced object. Defaults to TriggerAuthentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<AuthenticationRefKind>,
}

impl AuthenticationRef {
    /// The kind, `TriggerAuthentication` when unset.
    pub fn kind_or_default(&self) -> AuthenticationRefKind {
        self.kind.unwrap_or_default()
    }
}

/// Kind of object an [`AuthenticationRef`] points at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum AuthenticationRefKind {
    /// A namespaced TriggerAuthentication in the ScaledObject's namespace.
    #[default]
    TriggerAuthentication,
    /// A cluster-scoped ClusterTriggerAuthentication.
    ClusterTriggerAuthentication,
}

/// Observed state of a ScaledObject, written by the operator.
// Scalar fields are `Option`s; lists and maps are left out of the serialised form when empty.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::strip_null)]
pub struct ScaledObjectStatus {
    /// Scale target as `<group>/<version>.<Kind>`, e.g. apps/v1.Deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_target_kind: Option<String>,
    /// Group, version, kind and resource of the scale target.
    #[serde(rename = "scaleTargetGVKR", skip_serializing_if = "Option::is_none")]
    pub scale_target_gvkr: Option<GroupVersionKindResource>,
    /// Replica count of the target when autoscaling first saw it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_replica_count: Option<i32>,
    /// Last time a trigger was active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_active_time: Option<Time>,
    /// External metric names served to the HPA, in trigger order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_metric_names: Vec<String>,
    /// Resource metric names (cpu, memory) used by the HPA.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_metric_names: Vec<String>,
    /// Name of the composite metric when scaling modifiers are in use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub composite_scaler_name: Option<String>,
    /// Ready, Active, Fallback, Paused and HPAActive conditions.
    #[serde(default, skip_serializing_if = "Conditions::is_empty")]
    pub conditions: Conditions,
    /// Failure tracking per external metric name, kept when a fallback is configured.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub health: BTreeMap<String, HealthStatus>,
    /// Whether each external metric was active at the last poll.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub triggers_activity: BTreeMap<String, TriggerActivityStatus>,
    /// Replica count pinned by the paused-replicas annotation while paused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_replica_count: Option<i32>,
    /// Name of the HPA created for this ScaledObject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hpa_name: Option<String>,
    /// Comma-separated distinct trigger types, in trigger order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triggers_types: Option<String>,
    /// Comma-separated distinct authentication reference names, in trigger order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentications_types: Option<String>,
}

/// Group, version, kind and resource of a workload.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct GroupVersionKindResource {
    /// API group; empty for the core group.
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Plural resource name.
    pub resource: String,
}

impl GroupVersionKindResource {
    /// `<group>/<version>.<Kind>`, the format of `status.scaleTargetKind`.
    pub fn gvk_string(&self) -> String {
        format!("{}/{}.{}", self.group, self.version, self.kind)
    }

    /// `<group>/<version>`, or just `<version>` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Failure tracking of one metric.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthStatus {
    /// Consecutive failures so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number_of_failures: Option<i32>,
    /// Happy or Failing.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub status: Option<HealthStatusType>,
}

/// Health of one metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum HealthStatusType {
    /// The last read succeeded.
    Happy,
    /// The last read failed.
    Failing,
}

/// Activity of one metric at the last poll.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = remove_property_defaults)]
pub struct TriggerActivityStatus {
    /// Whether the metric was above its activation threshold.
    #[serde(default)]
    pub is_active: bool,
}

impl ScaledObject {
    fn annotation(&self, key: &str) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .map(String::as_str)
    }

    /// Boolean annotation with KEDA's leniency: absent is false, Go `ParseBool` spellings are
    /// honoured, and any other value counts as true.
    fn bool_annotation(&self, key: &str) -> bool {
        self.annotation(key)
            .is_some_and(|v| parse_go_bool(v).unwrap_or(true))
    }

    /// Name of the HPA: `advanced.horizontalPodAutoscalerConfig.name` when non-empty, else
    /// `keda-hpa-<name>`.
    pub fn hpa_name(&self) -> String {
        let custom = self
            .spec
            .advanced
            .as_ref()
            .and_then(|a| a.horizontal_pod_autoscaler_config.as_ref())
            .and_then(|h| h.name.as_deref())
            .filter(|n| !n.is_empty());
        match custom {
            Some(n) => n.to_owned(),
            None => format!("keda-hpa-{}", self.metadata.name.as_deref().unwrap_or("")),
        }
    }

    /// HPA `minReplicas`: `minReplicaCount` when it is positive, else 1.
    pub fn hpa_min_replicas(&self) -> i32 {
        match self.spec.min_replica_count {
            Some(m) if m > 0 => m,
            _ => DEFAULT_HPA_MIN_REPLICAS,
        }
    }

    /// HPA `maxReplicas`: `maxReplicaCount`, 100 when unset.
    pub fn hpa_max_replicas(&self) -> i32 {
        self.spec
            .max_replica_count
            .unwrap_or(DEFAULT_MAX_REPLICA_COUNT)
    }

    /// Polling interval in seconds (30 when unset).
    pub fn polling_interval_seconds(&self) -> i32 {
        self.spec
            .polling_interval
            .unwrap_or(DEFAULT_POLLING_INTERVAL_SECONDS)
    }

    /// Cooldown period in seconds (300 when unset).
    pub fn cooldown_period_seconds(&self) -> i32 {
        self.spec
            .cooldown_period
            .unwrap_or(DEFAULT_COOLDOWN_PERIOD_SECONDS)
    }

    /// Initial cooldown period in seconds (0 when unset).
    pub fn initial_cooldown_period_seconds(&self) -> i32 {
        self.spec
            .initial_cooldown_period
            .unwrap_or(DEFAULT_INITIAL_COOLDOWN_PERIOD_SECONDS)
    }

    /// Scaling modifiers are configured (present and not all fields empty).
    pub fn is_using_modifiers(&self) -> bool {
        self.scaling_modifiers().is_some()
    }

    /// The scaling modifiers when they are in use.
    pub fn scaling_modifiers(&self) -> Option<&ScalingModifiers> {
        self.spec
            .advanced
            .as_ref()
            .and_then(|a| a.scaling_modifiers.as_ref())
            .filter(|m| !m.is_empty())
    }

    /// A fallback is configured with behavior `scalingModifiers`.
    pub fn fallback_scaling_modifiers(&self) -> bool {
        self.spec
            .fallback
            .as_ref()
            .is_some_and(|f| f.behavior == Some(FallbackBehavior::ScalingModifiers))
    }

    /// `advanced.restoreToOriginalReplicaCount` is true.
    pub fn restore_to_original_replica_count(&self) -> bool {
        self.spec
            .advanced
            .as_ref()
            .and_then(|a| a.restore_to_original_replica_count)
            .unwrap_or(false)
    }

    /// The `paused` or `paused-replicas` annotation is present, whatever its value.
    pub fn has_paused_annotation(&self) -> bool {
        self.annotation(PAUSED_ANNOTATION).is_some()
            || self.annotation(PAUSED_REPLICAS_ANNOTATION).is_some()
    }

    /// Autoscaling is paused: `paused-replicas` is present, or `paused` reads as true.
    pub fn needs_to_be_paused_by_annotation(&self) -> bool {
        self.annotation(PAUSED_REPLICAS_ANNOTATION).is_some()
            || self.bool_annotation(PAUSED_ANNOTATION)
    }

    /// Scale-in is blocked by the `paused-scale-in` annotation.
    pub fn needs_to_pause_scale_in(&self) -> bool {
        self.bool_annotation(PAUSED_SCALE_IN_ANNOTATION)
    }

    /// Scale-out is blocked by the `paused-scale-out` annotation.
    pub fn needs_to_pause_scale_out(&self) -> bool {
        self.bool_annotation(PAUSED_SCALE_OUT_ANNOTATION)
    }

    /// Activation is forced by the `force-activation` annotation.
    pub fn needs_to_force_activation(&self) -> bool {
        self.bool_annotation(FORCE_ACTIVATION_ANNOTATION)
    }

    /// The replica count of the `paused-replicas` annotation: `Ok(None)` when absent, an error
    /// when it is not a 32-bit integer.
    /// The triggers as a scalingModifiers formula sees them (name and type).
    pub fn formula_triggers(&self) -> Vec<scaler_core::modifiers::FormulaTrigger<'_>> {
        self.spec
            .triggers
            .iter()
            .map(|t| scaler_core::modifiers::FormulaTrigger {
                name: t.name_or_empty(),
                trigger_type: &t.type_,
            })
            .collect()
    }

    /// The engine's decision input for one poll of this object: its spec and annotations,
    /// the poll's activity, and the state a cluster (or `plan`) holds.
    pub fn decision_input(
        &self,
        activity: &scaler_core::activity::Activity,
        current_replicas: i32,
        last_active_time: Option<chrono::DateTime<chrono::Utc>>,
        target: scaler_core::decision::TargetRef,
    ) -> scaler_core::decision::DecisionInput {
        scaler_core::decision::DecisionInput {
            active: activity.active,
            error: activity.error,
            active_metrics: activity.active_metrics.clone(),
            force_activation: self.needs_to_force_activation(),
            paused: self.needs_to_be_paused_by_annotation(),
            paused_scale_in: self.needs_to_pause_scale_in(),
            paused_scale_out: self.needs_to_pause_scale_out(),
            fallback_replicas: self.spec.fallback.as_ref().map(|f| f.replicas),
            current_replicas,
            min_replica_count: self.spec.min_replica_count,
            idle_replica_count: self.spec.idle_replica_count,
            cooldown_period: self.spec.cooldown_period,
            initial_cooldown_period: self.spec.initial_cooldown_period,
            last_active_time,
            creation_timestamp: self
                .metadata
                .creation_timestamp
                .as_ref()
                .and_then(|t| crate::time::to_chrono(&t.0)),
            target,
        }
    }

    pub fn paused_replica_count(&self) -> Result<Option<i32>, ParseIntError> {
        self.annotation(PAUSED_REPLICAS_ANNOTATION)
            .map(str::parse::<i32>)
            .transpose()
    }

    /// `scaledobject.<namespace>.<name>` in lower case, the key KEDA uses for caches and logs.
    pub fn identifier(&self) -> String {
        format!(
            "scaledobject.{}.{}",
            self.metadata.namespace.as_deref().unwrap_or(""),
            self.metadata.name.as_deref().unwrap_or("")
        )
        .to_lowercase()
    }
}
