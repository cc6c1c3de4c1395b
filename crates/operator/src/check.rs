//! `windlass check`: validate every ScaledObject of a manifest set offline, with KEDA's rules.
//!
//! Exit codes: 0 when every ScaledObject is valid, 1 when any is invalid, 2 when the input
//! cannot be read (or contains no ScaledObject).

use std::process::ExitCode;

use scaler_core::MetricSpec;
use scaler_core::metric::ResourceTarget;
use serde::Serialize;

use crate::cli::{CheckArgs, OutputFormat};
use crate::manifest::ManifestSet;
use crate::prepare::{self, PreparedObject, PreparedTrigger};
use crate::resolve::ResolveOptions;

/// One ScaledObject in `-o json`.
#[derive(Debug, Serialize)]
pub struct ObjectReport {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub valid: bool,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    pub triggers: Vec<TriggerReport>,
}

/// One trigger in `-o json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerReport {
    pub index: usize,
    #[serde(rename = "type")]
    pub trigger_type: String,
    pub name: Option<String>,
    pub metric_name: Option<String>,
    pub metric_type: Option<String>,
    pub target: Option<serde_json::Value>,
    pub activation_target: Option<f64>,
    pub errors: Vec<String>,
}

/// What the first metric of a trigger looks like to the HPA: name, type and target.
pub fn describe_metric(
    trigger: &PreparedTrigger,
) -> (Option<String>, Option<String>, Option<serde_json::Value>) {
    match trigger.metric_specs().into_iter().next() {
        Some(MetricSpec::External(metric)) => (
            Some(metric.name.to_string()),
            Some(metric.target_type.to_string()),
            Some(json_number(metric.target)),
        ),
        Some(MetricSpec::Resource(resource)) => {
            let (kind, target) = match resource.target {
                ResourceTarget::Utilization(percent) => ("Utilization", serde_json::json!(percent)),
                ResourceTarget::AverageValue(quantity) => {
                    ("AverageValue", serde_json::json!(quantity))
                }
            };
            (
                Some(resource.resource.as_str().to_owned()),
                Some(kind.to_owned()),
                Some(target),
            )
        }
        None => (None, None, None),
    }
}

/// A whole number as a JSON integer (`1`, not `1.0`), anything else as a float.
fn json_number(value: f64) -> serde_json::Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if value.fract() == 0.0 && value.abs() < EXACT {
        serde_json::json!(value as i64)
    } else {
        serde_json::json!(value)
    }
}

/// The report of one prepared ScaledObject.
pub fn report(object: &PreparedObject) -> ObjectReport {
    ObjectReport {
        kind: "ScaledObject",
        namespace: object.namespace.clone(),
        name: object.name.clone(),
        valid: object.is_valid(),
        errors: object.errors.iter().map(ToString::to_string).collect(),
        warnings: object.warnings.clone(),
        triggers: object
            .triggers
            .iter()
            .map(|trigger| {
                let (metric_name, metric_type, target) = describe_metric(trigger);
                TriggerReport {
                    index: trigger.index,
                    trigger_type: trigger.trigger_type.clone(),
                    name: trigger.name.clone(),
                    metric_name,
                    metric_type,
                    target,
                    activation_target: trigger.scaler.as_ref().and_then(|s| s.activation_target()),
                    errors: trigger.errors.iter().map(ToString::to_string).collect(),
                }
            })
            .collect(),
    }
}

/// Runs `windlass check`.
pub fn run(args: &CheckArgs) -> ExitCode {
    let set = match ManifestSet::load(&args.manifests.files) {
        Ok(set) => set,
        Err(error) => {
            eprintln!("windlass check: {error}");
            return ExitCode::from(2);
        }
    };
    for warning in set.warnings() {
        eprintln!("windlass check: warning: {warning}");
    }
    let registry = scalers::builtin_registry();
    let context = scalers::ScalerContext::default();
    let objects = prepare::prepare_all(&set, &registry, &context, &ResolveOptions::default());
    if objects.is_empty() {
        eprintln!(
            "windlass check: no ScaledObject (apiVersion keda.sh/v1alpha1) in the given manifests"
        );
        return ExitCode::from(2);
    }
    let reports: Vec<ObjectReport> = objects.iter().map(report).collect();
    match args.output {
        OutputFormat::Json => match serde_json::to_string_pretty(&reports) {
            Ok(json) => crate::cli::emit(&format!("{json}\n")),
            Err(error) => {
                eprintln!("windlass check: {error}");
                return ExitCode::from(2);
            }
        },
        OutputFormat::Text => crate::cli::emit(&render_text(&objects)),
    }
    if reports.iter().all(|r| r.valid) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The human-readable report: one line per object, then one line per problem.
pub fn render_text(objects: &[PreparedObject]) -> String {
    let mut out = String::new();
    let mut invalid = 0;
    for object in objects {
        let valid = object.is_valid();
        if !valid {
            invalid += 1;
        }
        let subject = format!("ScaledObject {}", object.key());
        out.push_str(&format!(
            "{subject}: {} ({})\n",
            if valid { "valid" } else { "INVALID" },
            object.origin
        ));
        for error in &object.errors {
            out.push_str(&format!("  error: {error}\n"));
        }
        for trigger in &object.triggers {
            let label = format!("trigger {} ({})", trigger.index, trigger.trigger_type);
            if trigger.errors.is_empty() {
                let (metric, metric_type, target) = describe_metric(trigger);
                let metric = metric
                    .unwrap_or_else(|| "metrics named by the external scaler at run time".into());
                let target = match (metric_type, target) {
                    (Some(kind), Some(target)) => format!(", {kind} target {target}"),
                    _ => String::new(),
                };
                out.push_str(&format!("  {label}: ok, metric {metric}{target}\n"));
            }
            for error in &trigger.errors {
                out.push_str(&format!("  {label}: error: {error}\n"));
            }
        }
        for warning in &object.warnings {
            out.push_str(&format!("  warning: {warning}\n"));
        }
    }
    out.push_str(&format!(
        "{} ScaledObject(s) checked: {} valid, {invalid} invalid\n",
        objects.len(),
        objects.len() - invalid
    ));
    out
}
