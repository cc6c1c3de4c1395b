//! KEDA's validation of a ScaledObject, as pure functions: the CRD schema (what the API server
//! rejects before anything else sees the object) and the admission webhook's rules
//! (`apis/keda/v1alpha1/scaledobject_webhook.go`).
//!
//! KEDA's webhook stops at the first failing rule, in random order; Windlass reports every
//! problem at once, each naming its field and how to fix it. Rules that need other objects
//! (duplicate targets, foreign HPAs, cpu/memory requests, LimitRanges) look at the other objects
//! of the same manifest set, through [`Neighbours`].
//!
//! Trigger metadata is validated by each scaler's parser, not here.

use std::fmt;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{LimitRange, PodSpec};

use crate::crd::scaled_object::{
    FallbackBehavior, ScaledObject, TRANSFER_HPA_OWNERSHIP_ANNOTATION,
    VALIDATIONS_HPA_OWNERSHIP_ANNOTATION,
};

/// Longest ScaledObject (and HPA) name: it is used as a label value.
const MAX_LABEL_VALUE_LENGTH: usize = 63;

/// One reason an object is invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The field concerned, e.g. `spec.minReplicaCount` or `spec.triggers[1].metadata.listName`.
    pub field: String,
    pub message: String,
    /// How to fix it.
    pub fix: Option<String>,
}

impl Problem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            fix: None,
        }
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, " (fix: {fix})")?;
        }
        Ok(())
    }
}

/// What the webhook found: errors reject the object, warnings do not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    pub errors: Vec<Problem>,
    pub warnings: Vec<String>,
}

/// The objects around a ScaledObject that KEDA's webhook looks up in the cluster.
#[derive(Debug, Default)]
pub struct Neighbours<'a> {
    /// The other ScaledObjects of the same namespace.
    pub scaled_objects: Vec<&'a ScaledObject>,
    /// The HPAs of the same namespace.
    pub hpas: Vec<HorizontalPodAutoscaler>,
    /// The scale target's pod spec, when the target is a Deployment or StatefulSet in the set.
    pub target_pod_spec: Option<PodSpec>,
    /// Whether the target is an `apps/v1` Deployment or StatefulSet (KEDA checks cpu/memory
    /// requests only for those).
    pub target_is_apps_workload: bool,
    /// The LimitRanges of the same namespace.
    pub limit_ranges: Vec<LimitRange>,
}

/// The CRD schema's rules that serde alone does not enforce (minimums, lengths, the CEL rule).
pub fn schema_rules(so: &ScaledObject) -> Vec<Problem> {
    let spec = &so.spec;
    let mut problems = Vec::new();
    let mut minimum = |field: &str, value: Option<i32>, min: i32| {
        if let Some(value) = value.filter(|v| *v < min) {
            problems.push(
                Problem::new(
                    format!("spec.{field}"),
                    format!("{value} is less than the minimum of {min}"),
                )
                .fix(format!("set {field} to {min} or more")),
            );
        }
    };
    minimum("pollingInterval", spec.polling_interval, 1);
    minimum("initialCooldownPeriod", spec.initial_cooldown_period, 0);
    minimum("cooldownPeriod", spec.cooldown_period, 0);
    minimum("idleReplicaCount", spec.idle_replica_count, 0);
    minimum("minReplicaCount", spec.min_replica_count, 0);
    minimum("maxReplicaCount", spec.max_replica_count, 1);
    if let Some(fallback) = &spec.fallback {
        minimum(
            "fallback.failureThreshold",
            Some(fallback.failure_threshold),
            0,
        );
        minimum("fallback.replicas", Some(fallback.replicas), 0);
    }
    if spec.scale_target_ref.name.is_empty() {
        problems.push(
            Problem::new("spec.scaleTargetRef.name", "must not be empty")
                .fix("name the Deployment, StatefulSet or other workload to scale"),
        );
    }
    if spec.triggers.is_empty() {
        problems.push(
            Problem::new("spec.triggers", "at least one trigger is required")
                .fix("add a trigger, e.g. `- type: cron` with its metadata"),
        );
    }
    for (index, trigger) in spec.triggers.iter().enumerate() {
        if trigger.type_.is_empty() {
            problems.push(
                Problem::new(format!("spec.triggers[{index}].type"), "must not be empty")
                    .fix("set the trigger type, e.g. prometheus, kafka, redis or cron"),
            );
        }
    }
    if let Some(behavior) = spec
        .advanced
        .as_ref()
        .and_then(|a| a.horizontal_pod_autoscaler_config.as_ref())
        .and_then(|h| h.behavior.as_ref())
    {
        let directions = [
            ("scaleUp", behavior.scale_up.as_ref()),
            ("scaleDown", behavior.scale_down.as_ref()),
        ];
        for (direction, rules) in directions {
            if let Some(window) = rules.and_then(|r| r.stabilization_window_seconds)
                && !(0..=3600).contains(&window)
            {
                problems.push(
                    Problem::new(
                        format!("spec.advanced.horizontalPodAutoscalerConfig.behavior.{direction}.stabilizationWindowSeconds"),
                        format!("{window} is outside 0..3600"),
                    )
                    .fix("use a window between 0 and 3600 seconds"),
                );
            }
        }
    }
    // The CEL rule of KEDA's CRD.
    if let Some(min) = spec.min_replica_count {
        let max = spec.max_replica_count.unwrap_or(100);
        if min > max {
            problems.push(
                Problem::new(
                    "spec",
                    "minReplicaCount must be less than or equal to maxReplicaCount",
                )
                .fix(format!(
                    "lower minReplicaCount ({min}) or raise maxReplicaCount ({max})"
                )),
            );
        }
    }
    problems
}

/// KEDA's admission webhook rules.
pub fn webhook_rules(so: &ScaledObject, neighbours: &Neighbours<'_>) -> Findings {
    let mut findings = Findings::default();
    check_names(so, &mut findings);
    check_replica_bounds(so, &mut findings);
    check_triggers(so, &mut findings);
    check_fallback(so, &mut findings);
    check_scaled_object_conflicts(so, neighbours, &mut findings);
    check_hpa_conflicts(so, neighbours, &mut findings);
    check_cpu_memory(so, neighbours, &mut findings);
    check_scaling_modifiers(so, &mut findings);
    warn_irrelevant_settings(so, &mut findings);
    findings
}

/// The subset of the webhook's rules KEDA's controller checks again, because the webhook may
/// have been bypassed: replica bounds and triggers.
pub fn controller_rules(so: &ScaledObject) -> Vec<Problem> {
    let mut findings = Findings::default();
    check_replica_bounds(so, &mut findings);
    check_triggers(so, &mut findings);
    findings.errors
}

fn name(so: &ScaledObject) -> &str {
    so.metadata.name.as_deref().unwrap_or_default()
}

fn check_names(so: &ScaledObject, findings: &mut Findings) {
    let so_name = name(so);
    if so_name.len() > MAX_LABEL_VALUE_LENGTH {
        findings.errors.push(
            Problem::new(
                "metadata.name",
                format!(
                    "scaledobject name {so_name:?} is {} characters long; must be no more than {MAX_LABEL_VALUE_LENGTH} characters because it is used as the \"scaledobject.keda.sh/name\" label value",
                    so_name.len()
                ),
            )
            .fix("shorten the ScaledObject's name"),
        );
        return;
    }
    let hpa_name = so.hpa_name();
    if hpa_name.len() > MAX_LABEL_VALUE_LENGTH {
        findings.errors.push(
            Problem::new(
                "spec.advanced.horizontalPodAutoscalerConfig.name",
                format!(
                    "HPA name {hpa_name:?} derived from scaledobject is {} characters long; must be no more than {MAX_LABEL_VALUE_LENGTH} characters",
                    hpa_name.len()
                ),
            )
            .fix("set spec.advanced.horizontalPodAutoscalerConfig.name to a shorter name or shorten the scaledobject name"),
        );
    }
}

/// KEDA's `CheckReplicaCountBoundsAreValid`: an explicit minReplicaCount counts as at least 1.
fn check_replica_bounds(so: &ScaledObject, findings: &mut Findings) {
    let min = match so.spec.min_replica_count {
        Some(_) => so.hpa_min_replicas(),
        None => 0,
    };
    let max = so.hpa_max_replicas();
    if min > max {
        findings.errors.push(
            Problem::new(
                "spec.minReplicaCount",
                format!("MinReplicaCount={min} must be less than MaxReplicaCount={max}"),
            )
            .fix("make minReplicaCount at most maxReplicaCount"),
        );
    }
    if let Some(idle) = so.spec.idle_replica_count
        && idle >= min
    {
        findings.errors.push(
            Problem::new(
                "spec.idleReplicaCount",
                format!("IdleReplicaCount={idle} must be less than MinReplicaCount={min}"),
            )
            .fix(if so.spec.min_replica_count.is_none() {
                "set minReplicaCount above idleReplicaCount (KEDA counts an unset minReplicaCount as 0)"
            } else {
                "make idleReplicaCount lower than minReplicaCount (only idleReplicaCount: 0 works reliably)"
            }),
        );
    }
}

/// KEDA's `ValidateTriggers`.
fn check_triggers(so: &ScaledObject, findings: &mut Findings) {
    let mut seen = std::collections::BTreeMap::new();
    for (index, trigger) in so.spec.triggers.iter().enumerate() {
        let kind = trigger.type_.as_str();
        if trigger.uses_cached_metrics() && matches!(kind, "cpu" | "memory" | "cron") {
            findings.errors.push(
                Problem::new(
                    format!("spec.triggers[{index}].useCachedMetrics"),
                    format!("property \"useCachedMetrics\" is not supported for {kind:?} scaler"),
                )
                .fix("remove useCachedMetrics from this trigger"),
            );
        }
        let trigger_name = trigger.name_or_empty();
        if trigger_name.is_empty() {
            continue;
        }
        if let Some(first) = seen.insert(trigger_name.to_owned(), index) {
            findings.errors.push(
                Problem::new(
                    format!("spec.triggers[{index}].name"),
                    format!(
                        "triggerName {trigger_name:?} is defined multiple times in the ScaledObject/ScaledJob, but it must be unique"
                    ),
                )
                .fix(format!("rename this trigger or trigger {first}")),
            );
        }
    }
}

fn is_resource_trigger(kind: &str) -> bool {
    matches!(kind, "cpu" | "memory")
}

/// KEDA's `CheckFallbackValid` and the scalingModifiers fallback requirement.
fn check_fallback(so: &ScaledObject, findings: &mut Findings) {
    let Some(fallback) = &so.spec.fallback else {
        return;
    };
    if fallback.failure_threshold < 0 || fallback.replicas < 0 {
        findings.errors.push(
            Problem::new(
                "spec.fallback",
                format!(
                    "FailureThreshold={} & Replicas={} must both be greater than or equal to 0",
                    fallback.failure_threshold, fallback.replicas
                ),
            )
            .fix("use non-negative failureThreshold and replicas"),
        );
        return;
    }
    if !so.is_using_modifiers()
        && so
            .spec
            .triggers
            .iter()
            .all(|t| is_resource_trigger(&t.type_))
    {
        findings.errors.push(
            Problem::new(
                "spec.fallback",
                "at least one trigger (that is not cpu or memory) has to have the `AverageValue` type for the fallback to be enabled",
            )
            .fix("add a trigger that is not cpu or memory, or remove fallback"),
        );
    }
    if fallback.behavior == Some(FallbackBehavior::ScalingModifiers)
        && so
            .scaling_modifiers()
            .and_then(|m| m.formula.as_deref())
            .is_none_or(str::is_empty)
    {
        findings.errors.push(
            Problem::new(
                "spec.fallback.behavior",
                "scalingModifiers fallback behavior requires scalingModifiers.formula to be defined",
            )
            .fix("define spec.advanced.scalingModifiers.formula, or choose another fallback behavior"),
        );
    }
}

/// `group/version.Kind` of a scale target, as KEDA prints it.
fn target_gvk(api_version: &str, kind: &str) -> String {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    format!("{group}/{version}.{kind}")
}

fn so_target_gvk(so: &ScaledObject) -> String {
    let target = &so.spec.scale_target_ref;
    target_gvk(target.api_version_or_default(), target.kind_or_default())
}

/// No other ScaledObject may scale the same workload or own the same HPA.
fn check_scaled_object_conflicts(
    so: &ScaledObject,
    neighbours: &Neighbours<'_>,
    findings: &mut Findings,
) {
    let target = &so.spec.scale_target_ref.name;
    let gvk = so_target_gvk(so);
    let hpa_name = so.hpa_name();
    for other in &neighbours.scaled_objects {
        if name(other) == name(so) {
            continue;
        }
        if &other.spec.scale_target_ref.name == target && so_target_gvk(other) == gvk {
            findings.errors.push(
                Problem::new(
                    "spec.scaleTargetRef",
                    format!(
                        "the workload '{target}' of type '{gvk}' is already managed by the ScaledObject '{}'",
                        name(other)
                    ),
                )
                .fix("scale each workload with one ScaledObject only: merge the triggers into one"),
            );
        }
        if other.hpa_name() == hpa_name {
            findings.errors.push(
                Problem::new(
                    "spec.advanced.horizontalPodAutoscalerConfig.name",
                    format!(
                        "the HPA '{hpa_name}' is already managed by the ScaledObject '{}'",
                        name(other)
                    ),
                )
                .fix("give this ScaledObject's HPA another name"),
            );
        }
    }
}

/// A workload already scaled by a foreign HPA can only be adopted by name.
fn check_hpa_conflicts(so: &ScaledObject, neighbours: &Neighbours<'_>, findings: &mut Findings) {
    let target = &so.spec.scale_target_ref.name;
    let gvk = so_target_gvk(so);
    for hpa in &neighbours.hpas {
        let annotations = hpa.metadata.annotations.as_ref();
        if annotations
            .and_then(|a| a.get(VALIDATIONS_HPA_OWNERSHIP_ANNOTATION))
            .is_some_and(|v| v == "false")
        {
            continue;
        }
        let spec = &hpa.spec;
        let hpa_target = &spec.scale_target_ref;
        let hpa_api_version = hpa_target.api_version.as_deref().unwrap_or_default();
        if &hpa_target.name != target || target_gvk(hpa_api_version, &hpa_target.kind) != gvk {
            continue;
        }
        let owned = hpa
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|owner| owner.kind == "ScaledObject" && owner.name == name(so));
        if owned {
            continue;
        }
        let hpa_name = hpa.metadata.name.as_deref().unwrap_or_default();
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
        if transfer && !named {
            findings.errors.push(
                Problem::new(
                    "spec.advanced.horizontalPodAutoscalerConfig.name",
                    format!(
                        "the existing hpa '{hpa_name}' for workload '{target}' of type '{gvk}' must be specified by name in advanced settings to enable ownership transfer"
                    ),
                )
                .fix(format!("set spec.advanced.horizontalPodAutoscalerConfig.name to {hpa_name}")),
            );
        } else if !transfer {
            findings.errors.push(
                Problem::new(
                    "spec.scaleTargetRef",
                    format!("the workload '{target}' of type '{gvk}' is already managed by the hpa '{hpa_name}'"),
                )
                .fix(format!(
                    "delete HPA {hpa_name}, or adopt it with annotation {TRANSFER_HPA_OWNERSHIP_ANNOTATION}: \"true\" and horizontalPodAutoscalerConfig.name: {hpa_name}"
                )),
            );
        }
    }
}

/// Whether a Kubernetes quantity string is greater than zero (`500m`, `1Gi`, `0.5`).
fn quantity_is_positive(quantity: &str) -> bool {
    let number: String = quantity
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | '+' | '-'))
        .collect();
    number.parse::<f64>().is_ok_and(|value| value > 0.0)
}

/// cpu/memory triggers need requests (or limits, or LimitRange defaults) on the containers,
/// and cannot scale to zero on their own.
fn check_cpu_memory(so: &ScaledObject, neighbours: &Neighbours<'_>, findings: &mut Findings) {
    let triggers = &so.spec.triggers;
    if !triggers.iter().any(|t| is_resource_trigger(&t.type_)) {
        return;
    }
    if triggers.iter().all(|t| is_resource_trigger(&t.type_))
        && so.spec.min_replica_count.unwrap_or(0) == 0
    {
        findings.errors.push(
            Problem::new(
                "spec.minReplicaCount",
                "scaledobject has only cpu/memory triggers AND minReplica is 0 (scale to zero doesn't work in this case)",
            )
            .fix("set minReplicaCount to 1 or more, or add an event trigger that can activate from zero"),
        );
    }
    if !neighbours.target_is_apps_workload {
        return;
    }
    let Some(pod) = &neighbours.target_pod_spec else {
        findings.warnings.push(format!(
            "cannot check the cpu/memory requests of {} {}: it is not in the manifests",
            so.spec.scale_target_ref.kind_or_default(),
            so.spec.scale_target_ref.name
        ));
        return;
    };
    for (index, trigger) in triggers.iter().enumerate() {
        let resource = trigger.type_.as_str();
        if !is_resource_trigger(resource) {
            continue;
        }
        let only = trigger
            .metadata
            .get("containerName")
            .filter(|c| !c.is_empty());
        for container in &pod.containers {
            if only.is_some_and(|only| only != &container.name) {
                continue;
            }
            let set_in = |map: Option<
                &std::collections::BTreeMap<
                    String,
                    k8s_openapi::apimachinery::pkg::api::resource::Quantity,
                >,
            >| {
                map.and_then(|m| m.get(resource))
                    .is_some_and(|q| quantity_is_positive(&q.0))
            };
            let resources = container.resources.as_ref();
            let in_container = set_in(resources.and_then(|r| r.requests.as_ref()))
                || set_in(resources.and_then(|r| r.limits.as_ref()));
            let in_limit_range = neighbours.limit_ranges.iter().any(|range| {
                range.spec.iter().flat_map(|s| s.limits.iter()).any(|item| {
                    item.type_ == "Container"
                        && (set_in(item.default_request.as_ref()) || set_in(item.default.as_ref()))
                })
            });
            if !in_container && !in_limit_range {
                findings.errors.push(
                    Problem::new(
                        format!("spec.triggers[{index}]"),
                        format!(
                            "the scaledobject has a {resource} trigger but the container {} doesn't have the {resource} request defined",
                            container.name
                        ),
                    )
                    .fix(format!(
                        "set resources.requests.{resource} on container {} (or a LimitRange default)",
                        container.name
                    )),
                );
            }
        }
    }
}

/// scalingModifiers: formula, target and metricType rules; the formula must compile and run
/// with every named trigger bound to -1 (the engine's `modifiers::validate`).
fn check_scaling_modifiers(so: &ScaledObject, findings: &mut Findings) {
    use scaler_core::modifiers::{self, ModifiersError};
    let Some(written) = so.scaling_modifiers() else {
        return;
    };
    let modifiers = engine_modifiers(written);
    let triggers = so.formula_triggers();
    let Err(error) = modifiers::validate(&modifiers, &triggers) else {
        return;
    };
    let (field, fix) = match &error {
        ModifiersError::MissingFormula | ModifiersError::Formula { .. } => (
            "formula",
            "write a formula over the names of triggers that are not cpu or memory (set triggers[].name), e.g. \"max(a, b) * 2\"",
        ),
        ModifiersError::MissingTarget | ModifiersError::Target { .. } => (
            "target",
            "set scalingModifiers.target to a number greater than 0, e.g. \"10\"",
        ),
        ModifiersError::UtilizationMetricType => ("metricType", "use AverageValue or Value"),
        _ => ("formula", "correct the scalingModifiers block"),
    };
    findings.errors.push(
        Problem::new(
            format!("spec.advanced.scalingModifiers.{field}"),
            error.to_string().replace('\n', ": "),
        )
        .fix(fix),
    );
}

/// The CRD's scalingModifiers block as the engine reads it.
pub fn engine_modifiers(
    written: &crate::crd::scaled_object::ScalingModifiers,
) -> scaler_core::modifiers::ScalingModifiers {
    use crate::crd::scaled_object::ModifierMetricType;
    scaler_core::modifiers::ScalingModifiers {
        formula: written.formula.clone().unwrap_or_default(),
        target: written.target.clone().unwrap_or_default(),
        activation_target: written.activation_target.clone().unwrap_or_default(),
        metric_type: written.metric_type.map(|m| match m {
            ModifierMetricType::AverageValue => scaler_core::MetricTargetType::AverageValue,
            ModifierMetricType::Value => scaler_core::MetricTargetType::Value,
        }),
    }
}

/// The webhook's warnings about settings that have no effect.
fn warn_irrelevant_settings(so: &ScaledObject, findings: &mut Findings) {
    let spec = &so.spec;
    let min = spec.min_replica_count.unwrap_or(0);
    let idle_disabled = spec.idle_replica_count.is_none();
    let cached = spec.triggers.iter().any(|t| t.uses_cached_metrics());
    if spec.polling_interval.is_some() && min > 0 && idle_disabled && !cached {
        findings.warnings.push("PollingInterval is configured but is not relevant. PollingInterval is only relevant when minReplicaCount = 0, idleReplicaCount is set, or useCachedMetrics is enabled".into());
    }
    if spec.cooldown_period.is_some() && min > 0 && idle_disabled {
        findings.warnings.push("CooldownPeriod is configured but is not relevant. CooldownPeriod is only relevant when minReplicaCount = 0 or idleReplicaCount is set".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scaled_object(yaml: &str) -> ScaledObject {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    const BASE: &str = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: worker, namespace: default}\n";

    fn with_spec(spec: &str) -> ScaledObject {
        scaled_object(&format!("{BASE}spec:\n{spec}"))
    }

    fn error_fields(findings: &Findings) -> Vec<&str> {
        findings.errors.iter().map(|p| p.field.as_str()).collect()
    }

    #[test]
    fn replica_bounds_follow_keda_including_the_explicit_zero_quirk() {
        struct Case {
            spec: &'static str,
            errors: &'static [&'static str],
        }
        let trigger = "  triggers: [{type: cron, metadata: {}}]\n";
        let cases = [
            Case {
                spec: "  minReplicaCount: 5\n  maxReplicaCount: 3\n",
                errors: &["spec.minReplicaCount"],
            },
            Case {
                spec: "  idleReplicaCount: 0\n",
                errors: &["spec.idleReplicaCount"],
            },
            Case {
                spec: "  idleReplicaCount: 0\n  minReplicaCount: 0\n",
                errors: &[],
            },
            Case {
                spec: "  idleReplicaCount: 2\n  minReplicaCount: 2\n",
                errors: &["spec.idleReplicaCount"],
            },
            Case {
                spec: "  idleReplicaCount: 1\n  minReplicaCount: 2\n",
                errors: &[],
            },
            Case {
                spec: "  minReplicaCount: 100\n",
                errors: &[],
            },
        ];
        for case in cases {
            let so = with_spec(&format!(
                "  scaleTargetRef: {{name: w}}\n{trigger}{}",
                case.spec
            ));
            let findings = webhook_rules(&so, &Neighbours::default());
            assert_eq!(error_fields(&findings), case.errors, "{}", case.spec);
        }
    }

    #[test]
    fn schema_rules_report_minimums_and_the_cel_rule() {
        let so = with_spec(
            "  scaleTargetRef: {name: ''}\n  pollingInterval: 0\n  minReplicaCount: 7\n  maxReplicaCount: 5\n  triggers: [{type: '', metadata: {}}]\n",
        );
        let fields: Vec<String> = schema_rules(&so).into_iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            [
                "spec.pollingInterval",
                "spec.scaleTargetRef.name",
                "spec.triggers[0].type",
                "spec"
            ]
        );
    }

    #[test]
    fn trigger_rules() {
        let so = with_spec(
            "  scaleTargetRef: {name: w}\n  triggers:\n  - {type: cron, name: a, useCachedMetrics: true, metadata: {}}\n  - {type: redis, name: a, metadata: {}}\n",
        );
        let findings = webhook_rules(&so, &Neighbours::default());
        assert_eq!(
            error_fields(&findings),
            ["spec.triggers[0].useCachedMetrics", "spec.triggers[1].name"]
        );
    }

    #[test]
    fn only_cpu_memory_cannot_scale_to_zero_nor_fall_back() {
        let so = with_spec(
            "  scaleTargetRef: {name: w}\n  fallback: {failureThreshold: 3, replicas: 2}\n  triggers: [{type: cpu, metricType: Utilization, metadata: {value: '50'}}]\n",
        );
        let findings = webhook_rules(&so, &Neighbours::default());
        assert_eq!(
            error_fields(&findings),
            ["spec.fallback", "spec.minReplicaCount"]
        );
    }

    #[test]
    fn names_longer_than_a_label_value_are_rejected() {
        let long = "x".repeat(64);
        let so = scaled_object(&format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: {long}}}\nspec:\n  scaleTargetRef: {{name: w}}\n  triggers: [{{type: cron, metadata: {{}}}}]\n"
        ));
        let findings = webhook_rules(&so, &Neighbours::default());
        assert_eq!(error_fields(&findings), ["metadata.name"]);
        let so = scaled_object(&format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: {}}}\nspec:\n  scaleTargetRef: {{name: w}}\n  triggers: [{{type: cron, metadata: {{}}}}]\n",
            "y".repeat(60)
        ));
        let findings = webhook_rules(&so, &Neighbours::default());
        assert_eq!(
            error_fields(&findings),
            ["spec.advanced.horizontalPodAutoscalerConfig.name"]
        );
    }

    #[test]
    fn conflicts_with_other_scaled_objects_and_foreign_hpas() {
        let so =
            with_spec("  scaleTargetRef: {name: w}\n  triggers: [{type: cron, metadata: {}}]\n");
        let other = scaled_object(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: other}\nspec:\n  scaleTargetRef: {name: w}\n  triggers: [{type: cron, metadata: {}}]\n",
        );
        let statefulset = scaled_object(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: sts}\nspec:\n  scaleTargetRef: {name: w, kind: StatefulSet}\n  triggers: [{type: cron, metadata: {}}]\n",
        );
        let hpa: HorizontalPodAutoscaler = serde_yaml_ng::from_str(
            "metadata: {name: legacy}\nspec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: w}, maxReplicas: 3}\n",
        )
        .unwrap();
        let neighbours = Neighbours {
            scaled_objects: vec![&other, &statefulset],
            hpas: vec![hpa],
            ..Neighbours::default()
        };
        let findings = webhook_rules(&so, &neighbours);
        assert_eq!(
            error_fields(&findings),
            ["spec.scaleTargetRef", "spec.scaleTargetRef"]
        );
        assert!(
            findings.errors[0]
                .message
                .contains("already managed by the ScaledObject 'other'")
        );
        assert!(
            findings.errors[1]
                .message
                .contains("already managed by the hpa 'legacy'")
        );
    }

    #[test]
    fn quantities() {
        assert!(quantity_is_positive("500m"));
        assert!(quantity_is_positive("1Gi"));
        assert!(!quantity_is_positive("0"));
        assert!(!quantity_is_positive("0m"));
    }

    #[test]
    fn warnings_for_settings_without_effect() {
        let so = with_spec(
            "  scaleTargetRef: {name: w}\n  minReplicaCount: 1\n  pollingInterval: 10\n  cooldownPeriod: 10\n  triggers: [{type: cron, metadata: {}}]\n",
        );
        let findings = webhook_rules(&so, &Neighbours::default());
        assert!(findings.errors.is_empty());
        assert_eq!(findings.warnings.len(), 2);
    }
}
