//! From a manifest set to ScaledObjects ready to sample: typed, validated with KEDA's rules,
//! each trigger's parameters resolved and its scaler built. `check` reports what this finds;
//! `plan` samples what it builds. No network is touched here.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::LimitRange;
use scaler_core::registry::{BuildError, ObjectRef, ScalerRegistry, TriggerConfig};
use scaler_core::{MetricSpec, MetricTargetType, ParamError, Scaler};
use scalers::ScalerContext;

use crate::crd::{self, ScaleTrigger, ScaledObject};
use crate::manifest::{Document, ManifestSet, Origin};
use crate::resolve::{self, ObjectLookup, ResolveError, ResolveOptions};
use crate::validate::{self, Neighbours, Problem};

/// One ScaledObject of the set, with everything found about it.
#[derive(Debug)]
pub struct PreparedObject {
    pub origin: Origin,
    pub namespace: String,
    pub name: String,
    /// The typed object; `None` when the document does not fit the schema.
    pub scaled_object: Option<ScaledObject>,
    /// Problems with the object as a whole.
    pub errors: Vec<Problem>,
    /// Non-fatal findings (KEDA's webhook warnings, values unknown offline).
    pub warnings: Vec<String>,
    pub triggers: Vec<PreparedTrigger>,
}

impl PreparedObject {
    /// Valid when neither the object nor any trigger has an error.
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty() && self.triggers.iter().all(|t| t.errors.is_empty())
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// One trigger, resolved and built when it could be.
#[derive(Debug)]
pub struct PreparedTrigger {
    pub index: usize,
    pub trigger_type: String,
    pub name: Option<String>,
    pub config: Option<TriggerConfig>,
    pub scaler: Option<Arc<dyn Scaler>>,
    /// Problems with this trigger; each field is relative to the ScaledObject.
    pub errors: Vec<Problem>,
}

impl PreparedTrigger {
    /// The trigger's metric specs (empty when it could not be built).
    pub fn metric_specs(&self) -> Vec<MetricSpec> {
        self.scaler
            .as_ref()
            .map(|s| s.metric_specs())
            .unwrap_or_default()
    }
}

/// Prepares every ScaledObject of `set`, in input order.
pub fn prepare_all(
    set: &ManifestSet,
    registry: &ScalerRegistry<ScalerContext>,
    context: &ScalerContext,
    options: &ResolveOptions,
) -> Vec<PreparedObject> {
    let documents: Vec<&Document> = set.of_kind(crd::GROUP, "ScaledObject").collect();
    let typed: Vec<(Option<ScaledObject>, Vec<Problem>)> = documents
        .iter()
        .map(|doc| typed_scaled_object(doc))
        .collect();
    let hpas: Vec<(String, HorizontalPodAutoscaler)> =
        typed_of_kind(set, "autoscaling", "HorizontalPodAutoscaler");
    let limit_ranges: Vec<(String, LimitRange)> = typed_of_kind(set, "", "LimitRange");

    documents
        .iter()
        .enumerate()
        .zip(&typed)
        .map(|((position, doc), typed_so)| {
            let mut prepared = PreparedObject {
                origin: doc.origin.clone(),
                namespace: doc.namespace().to_owned(),
                name: doc.name().to_owned(),
                scaled_object: None,
                errors: Vec::new(),
                warnings: Vec::new(),
                triggers: Vec::new(),
            };
            if let Some(later) = documents[position + 1..]
                .iter()
                .find(|other| other.namespace() == doc.namespace() && other.name() == doc.name())
            {
                prepared.warnings.push(format!(
                    "{} defines this ScaledObject again; applied together, only that later document would remain",
                    later.origin
                ));
            }
            let (typed_so, problems) = typed_so;
            prepared.errors.extend(problems.iter().cloned());
            let Some(so) = typed_so else {
                return prepared;
            };
            prepared.errors.extend(validate::schema_rules(so));
            let neighbours = neighbours(so, &typed, &hpas, &limit_ranges, set);
            let findings = validate::webhook_rules(so, &neighbours);
            prepared.errors.extend(findings.errors);
            prepared.warnings.extend(findings.warnings);
            prepared.triggers = so
                .spec
                .triggers
                .iter()
                .enumerate()
                .map(|(index, trigger)| {
                    prepare_trigger(
                        so,
                        index,
                        trigger,
                        set,
                        registry,
                        context,
                        options,
                        &mut prepared.warnings,
                    )
                })
                .collect();
            prepared
                .errors
                .extend(duplicate_metric_names(&prepared.triggers));
            prepared.scaled_object = Some(so.clone());
            prepared
        })
        .collect()
}

/// The document as a ScaledObject of `keda.sh/v1alpha1`, or the problems that prevent it.
///
/// Trigger metadata values written as YAML numbers or booleans are reported (the API server
/// rejects them) and then read as strings, so the object's other problems are found too.
fn typed_scaled_object(doc: &Document) -> (Option<ScaledObject>, Vec<Problem>) {
    if doc.api_version() != crd::API_VERSION {
        let problem = Problem::new(
            "apiVersion",
            format!(
                "{:?} is not served; ScaledObjects are {}",
                doc.api_version(),
                crd::API_VERSION
            ),
        )
        .fix(format!("set apiVersion: {}", crd::API_VERSION));
        return (None, vec![problem]);
    }
    let mut document = doc.clone();
    let problems = stringify_metadata(&mut document.value);
    match document.typed::<ScaledObject>() {
        Ok(so) => (Some(so), problems),
        Err(error) => {
            let problem = Problem::new(error.path, error.message)
                .fix("match the field to KEDA's ScaledObject schema (`windlass crds` prints it)");
            (None, problems.into_iter().chain([problem]).collect())
        }
    }
}

/// Turns non-string trigger metadata values into strings, with one problem for each.
fn stringify_metadata(value: &mut serde_json::Value) -> Vec<Problem> {
    let mut problems = Vec::new();
    let Some(triggers) = value
        .pointer_mut("/spec/triggers")
        .and_then(|t| t.as_array_mut())
    else {
        return problems;
    };
    for (index, trigger) in triggers.iter_mut().enumerate() {
        let Some(metadata) = trigger.get_mut("metadata").and_then(|m| m.as_object_mut()) else {
            continue;
        };
        for (key, entry) in metadata.iter_mut() {
            let text = match &*entry {
                serde_json::Value::String(_) => continue,
                serde_json::Value::Null => String::new(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                other => other.to_string(),
            };
            problems.push(
                Problem::new(
                    format!("spec.triggers[{index}].metadata.{key}"),
                    format!("must be a string, got {entry}"),
                )
                .fix(format!("quote the value: {key}: \"{text}\"")),
            );
            *entry = serde_json::Value::String(text);
        }
    }
    problems
}

fn typed_of_kind<T: serde::de::DeserializeOwned>(
    set: &ManifestSet,
    group: &str,
    kind: &str,
) -> Vec<(String, T)> {
    set.of_kind(group, kind)
        .filter_map(|doc| {
            doc.typed::<T>()
                .ok()
                .map(|object| (doc.namespace().to_owned(), object))
        })
        .collect()
}

fn neighbours<'a>(
    so: &ScaledObject,
    all: &'a [(Option<ScaledObject>, Vec<Problem>)],
    hpas: &[(String, HorizontalPodAutoscaler)],
    limit_ranges: &[(String, LimitRange)],
    set: &ManifestSet,
) -> Neighbours<'a> {
    let namespace = so.metadata.namespace.as_deref().unwrap_or("default");
    let target = &so.spec.scale_target_ref;
    let target_is_apps_workload = target.api_version_or_default() == "apps/v1"
        && matches!(target.kind_or_default(), "Deployment" | "StatefulSet");
    let target_pod_spec = set
        .workload_pod_spec(
            namespace,
            target.api_version_or_default(),
            target.kind_or_default(),
            &target.name,
        )
        .ok()
        .flatten();
    Neighbours {
        scaled_objects: all
            .iter()
            .filter_map(|(other, _)| other.as_ref())
            .filter(|other| other.metadata.namespace.as_deref().unwrap_or("default") == namespace)
            .collect(),
        hpas: hpas
            .iter()
            .filter(|(ns, _)| ns == namespace)
            .map(|(_, hpa)| hpa.clone())
            .collect(),
        target_pod_spec,
        target_is_apps_workload,
        limit_ranges: limit_ranges
            .iter()
            .filter(|(ns, _)| ns == namespace)
            .map(|(_, range)| range.clone())
            .collect(),
    }
}

/// Resolves and builds one trigger's scaler; problems are collected, never raised.
#[allow(clippy::too_many_arguments)]
pub fn prepare_trigger(
    so: &ScaledObject,
    index: usize,
    trigger: &ScaleTrigger,
    objects: &dyn ObjectLookup,
    registry: &ScalerRegistry<ScalerContext>,
    context: &ScalerContext,
    options: &ResolveOptions,
    warnings: &mut Vec<String>,
) -> PreparedTrigger {
    let field = |suffix: &str| format!("spec.triggers[{index}]{suffix}");
    let mut prepared = PreparedTrigger {
        index,
        trigger_type: trigger.type_.clone(),
        name: trigger.name.clone().filter(|n| !n.is_empty()),
        config: None,
        scaler: None,
        errors: Vec::new(),
    };
    if !registry.knows(&trigger.type_) {
        let known: Vec<&str> = registry.types().collect();
        prepared.errors.push(
            Problem::new(
                field(".type"),
                format!("no scaler found for type: {}", trigger.type_),
            )
            .fix(format!("use one of: {}", known.join(", "))),
        );
        return prepared;
    }
    let metric_type = match trigger.metric_type.as_deref().filter(|m| !m.is_empty()) {
        None => None,
        Some(written) => match written.parse::<MetricTargetType>() {
            Ok(parsed) => Some(parsed),
            Err(message) => {
                prepared.errors.push(
                    Problem::new(field(".metricType"), message)
                        .fix("use AverageValue or Value (Utilization for cpu and memory)"),
                );
                return prepared;
            }
        },
    };
    let resolved = match resolve::resolve_trigger(so, trigger, objects, options) {
        Ok(resolved) => resolved,
        Err(error) => {
            let at = match &error {
                ResolveError::MissingTarget { .. } | ResolveError::NoContainers => {
                    "spec.scaleTargetRef".to_owned()
                }
                ResolveError::ContainerNotFound { .. } => field(".metadata"),
                _ if trigger.authentication_ref.is_some() => field(".authenticationRef"),
                _ => field(".metadata"),
            };
            prepared.errors.push(Problem::new(at, error.to_string()));
            return prepared;
        }
    };
    warnings.extend(
        resolved
            .notes
            .iter()
            .map(|note| format!("trigger {index} ({}): {note}", trigger.type_)),
    );
    let config = TriggerConfig {
        index,
        trigger_type: trigger.type_.clone(),
        name: prepared.name.clone(),
        metric_type,
        use_cached_metrics: trigger.uses_cached_metrics(),
        params: resolved.params,
        scaled_object: ObjectRef {
            namespace: so.metadata.namespace.clone().unwrap_or_default(),
            name: so.metadata.name.clone().unwrap_or_default(),
        },
        pod_identity: resolved.pod_identity,
    };
    match registry.build(&config, context) {
        Ok(scaler) => prepared.scaler = Some(scaler),
        Err(BuildError::UnknownType(kind)) => prepared.errors.push(Problem::new(
            field(".type"),
            format!("no scaler found for type: {kind}"),
        )),
        Err(BuildError::Params(errors)) => {
            prepared.errors.extend(
                errors
                    .0
                    .into_iter()
                    .map(|error| param_problem(index, error)),
            );
        }
    }
    prepared.config = Some(config);
    prepared
}

/// A parameter error as a problem on the trigger field that holds the key.
fn param_problem(index: usize, error: ParamError) -> Problem {
    let field = match error.key.as_str() {
        "metricType" => format!("spec.triggers[{index}].metricType"),
        key => format!("spec.triggers[{index}].metadata.{key}"),
    };
    Problem {
        field,
        message: error.message,
        fix: error.hint,
    }
}

/// KEDA refuses two triggers producing the same external metric name.
fn duplicate_metric_names(triggers: &[PreparedTrigger]) -> Vec<Problem> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for trigger in triggers {
        for spec in trigger.metric_specs() {
            let Some(metric) = spec.external() else {
                continue;
            };
            let name = metric.name.as_str().to_lowercase();
            if let Some(first) = seen.insert(name, trigger.index) {
                problems.push(
                    Problem::new(
                        format!("spec.triggers[{}]", trigger.index),
                        format!("metricName {} defined multiple times", metric.name),
                    )
                    .fix(format!(
                        "triggers {first} and {} produce the same metric; make them differ",
                        trigger.index
                    )),
                );
            }
        }
    }
    problems
}
