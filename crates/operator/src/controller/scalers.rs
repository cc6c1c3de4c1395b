//! Building one ScaledObject's scalers from the cluster: the controller's re-checks, trigger
//! resolution through [`ApiObjects`], the registry, and the metric specs the HPA will watch.
//!
//! KEDA keeps built scalers per ScaledObject and generation, and rebuilds them after any scaler
//! error (re-reading Secrets and env). [`ObjectScalers`] is that unit: built once per
//! generation, dropped as a whole when a trigger fails, so the next poll rebuilds it. The
//! clients behind the scalers are not rebuilt: they live in the shared [`ScalerContext`], one
//! per backend and credentials.

use std::sync::Arc;

use ::scalers::ScalerContext;
use scaler_core::modifiers::{self, CompiledFormula};
use scaler_core::registry::ScalerRegistry;
use scaler_core::{MetricSpec, Scaler};

use super::lookup::ApiObjects;
use super::target::TargetResolver;
use crate::crd::ScaledObject;
use crate::prepare::{self, PreparedTrigger};
use crate::resolve::ResolveOptions;
use crate::validate::{self, Problem};

/// One trigger, built.
#[derive(Clone, Debug)]
pub struct BuiltTrigger {
    pub index: usize,
    pub trigger_type: String,
    pub name: Option<String>,
    pub scaler: Arc<dyn Scaler>,
    /// The specs as the backend describes them now (external scalers ask `GetMetricSpec`).
    pub metric_specs: Vec<MetricSpec>,
}

/// Every trigger of one ScaledObject generation, built.
#[derive(Clone, Debug)]
pub struct ObjectScalers {
    /// The generation these were built from.
    pub generation: Option<i64>,
    pub triggers: Vec<BuiltTrigger>,
    /// The compiled scalingModifiers formula, when modifiers are in use.
    pub formula: Option<CompiledFormula>,
}

impl ObjectScalers {
    /// All metric specs, in trigger order.
    pub fn metric_specs(&self) -> Vec<MetricSpec> {
        self.triggers
            .iter()
            .flat_map(|t| t.metric_specs.iter().cloned())
            .collect()
    }
}

/// Why a ScaledObject's scalers could not be built: every problem, each naming its field.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{}", .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct BuildFailure {
    pub problems: Vec<Problem>,
}

/// Everything a build reads.
pub struct BuildInputs<'a> {
    pub client: &'a kube::Client,
    pub resolver: &'a TargetResolver,
    pub registry: &'a ScalerRegistry<ScalerContext>,
    pub context: &'a ScalerContext,
    pub options: &'a ResolveOptions,
}

/// Builds the scalers of `so`, or reports every problem that prevents it.
pub async fn build(
    inputs: &BuildInputs<'_>,
    so: &ScaledObject,
) -> Result<ObjectScalers, BuildFailure> {
    let mut problems = validate::controller_rules(so);
    if !problems.is_empty() {
        return Err(BuildFailure { problems });
    }
    let objects = ApiObjects::new(inputs.client, inputs.resolver);
    let prepared: Vec<PreparedTrigger> = objects
        .resolve(|lookup| {
            let mut warnings = Vec::new();
            so.spec
                .triggers
                .iter()
                .enumerate()
                .map(|(index, trigger)| {
                    prepare::prepare_trigger(
                        so,
                        index,
                        trigger,
                        lookup,
                        inputs.registry,
                        inputs.context,
                        inputs.options,
                        &mut warnings,
                    )
                })
                .collect()
        })
        .await;
    let mut triggers = Vec::with_capacity(prepared.len());
    for trigger in prepared {
        problems.extend(trigger.errors.iter().cloned().map(for_cluster));
        let Some(scaler) = trigger.scaler else {
            continue;
        };
        let metric_specs = match scaler.live_metric_specs().await {
            Ok(specs) => specs,
            Err(error) => {
                problems.push(Problem::new(
                    format!("spec.triggers[{}]", trigger.index),
                    format!("error getting metric spec: {}", error.message),
                ));
                continue;
            }
        };
        triggers.push(BuiltTrigger {
            index: trigger.index,
            trigger_type: trigger.trigger_type,
            name: trigger.name,
            scaler,
            metric_specs,
        });
    }
    problems.extend(duplicate_names(&triggers));
    if problems.is_empty() && triggers.iter().all(|t| t.metric_specs.is_empty()) {
        problems.push(Problem::new(
            "spec.triggers",
            "no metrics found for the ScaledObject: every trigger returned an empty metric spec",
        ));
    }
    let formula = match so.scaling_modifiers().filter(|m| !m.is_empty()) {
        Some(written) => {
            let engine = validate::engine_modifiers(written);
            let names = so.formula_triggers();
            match modifiers::validate(&engine, &names) {
                Ok(formula) => Some(formula),
                Err(error) => {
                    problems.push(Problem::new(
                        "spec.advanced.scalingModifiers",
                        error.to_string().replace('\n', ": "),
                    ));
                    None
                }
            }
        }
        None => None,
    };
    if !problems.is_empty() {
        return Err(BuildFailure { problems });
    }
    Ok(ObjectScalers {
        generation: so.metadata.generation,
        triggers,
        formula,
    })
}

/// The offline messages suggest `-f`; in a cluster the object is simply missing.
fn for_cluster(mut problem: Problem) -> Problem {
    if let Some(at) = problem
        .message
        .find(" is not in the manifests but is needed by ")
    {
        let (object, rest) = problem.message.split_at(at);
        let used_by = rest
            .trim_start_matches(" is not in the manifests but is needed by ")
            .trim_end_matches(" (fix: add its manifest with -f)");
        problem.message = format!("{object} not found, needed by {used_by}");
        problem.fix = Some("create it, or correct the reference".to_owned());
    }
    problem
}

fn duplicate_names(triggers: &[BuiltTrigger]) -> Vec<Problem> {
    let mut seen = std::collections::BTreeSet::new();
    let mut problems = Vec::new();
    for trigger in triggers {
        for spec in &trigger.metric_specs {
            if let Some(metric) = spec.external()
                && !seen.insert(metric.name.as_str().to_lowercase())
            {
                problems.push(Problem::new(
                    format!("spec.triggers[{}]", trigger.index),
                    format!("metricName {} defined multiple times", metric.name),
                ));
            }
        }
    }
    problems
}
