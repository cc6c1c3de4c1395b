//! `cpu` and `memory` triggers: the HPA's own resource metrics, passed through.
//!
//! # Parameters
//!
//! | Key | Source | Required | Default | Meaning |
//! |---|---|---|---|---|
//! | `triggers[].metricType` | trigger | yes | – | `Utilization` (percent of the pods' requests) or `AverageValue` (a quantity per pod). `Value` or no `metricType` is an error. |
//! | `value` | M | yes | – | With `Utilization` an integer percent (Go `ParseInt`, 32 bits: `"50"`); with `AverageValue` a Kubernetes quantity (`"500m"`, `"512Mi"`). |
//! | `containerName` | M | no | – | Scale on one container's usage (an HPA `ContainerResource` metric) instead of the whole pod's. |
//! | `type` | M | – | – | Removed in KEDA 2.18: its presence is an error; use `triggers[].metricType`. |
//!
//! Source M is the trigger's `metadata`. Values are trimmed and an empty value counts as missing.
//!
//! The trigger becomes an HPA `Resource` metric (or `ContainerResource` with `containerName`):
//! the HPA reads it from the resource metrics API, so Windlass never samples it, it has no
//! external metric name, and it never activates a ScaledObject on its own (an object whose only
//! triggers are cpu/memory is always active and cannot scale to zero).
//!
//! # Differences from KEDA
//!
//! An `AverageValue` that is not a Kubernetes quantity makes KEDA's parser panic
//! (`resource.MustParse`); Windlass reports it as an error on `value`.
//!
//! # Example
//!
//! ```yaml
//! triggers:
//! - type: cpu
//!   metricType: Utilization   # or AverageValue
//!   metadata:
//!     value: "60"
//!     containerName: app      # optional
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use scaler_core::metric::{ResourceMetric, ResourceName, ResourceTarget};
use scaler_core::params::{ParamError, ParamReader, order};
use scaler_core::registry::{ScalerKind, TriggerConfig};
use scaler_core::{
    MetricSpec, MetricTargetType, ParamErrors, Sample, SampleRequest, Scaler, ScalerError,
};

use crate::ScalerContext;

/// A cpu or memory trigger's parameters, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Metadata {
    pub resource: ResourceName,
    /// `Utilization(percent)` or `AverageValue(quantity)`, from `metricType` and `value`.
    pub target: ResourceTarget,
    pub container_name: Option<String>,
}

impl Metadata {
    pub fn parse(config: &TriggerConfig) -> Result<Self, ParamErrors> {
        let resource = match config.trigger_type.as_str() {
            "memory" => ResourceName::Memory,
            _ => ResourceName::Cpu,
        };
        let mut reader = ParamReader::new(&config.params);
        if let Some(value) = reader.params().first(&["type"], order::M) {
            reader.error(
                ParamError::new(
                    "type",
                    format!(
                        "scaler {} info: The 'type' setting is DEPRECATED and is removed in v2.18 - Use 'metricType' instead.",
                        resource.as_str()
                    ),
                )
                .with_hint(format!(
                    "remove `metadata.type` and set `metricType: {value}` on the trigger itself"
                )),
            );
        }
        let value = reader.key("value", order::M).required().string();
        let container_name = reader.key("containerName", order::M).string();

        let target = match config.metric_type {
            Some(MetricTargetType::Utilization) => value.and_then(|value| {
                match parse_go_int32(&value) {
                    Ok(percent) => Some(ResourceTarget::Utilization(percent)),
                    Err(problem) => {
                        reader.error(
                            ParamError::new("value", format!("strconv.ParseInt: parsing {value:?}: {problem}"))
                                .with_hint("with metricType Utilization, write `value` as a whole percent, like \"60\""),
                        );
                        None
                    }
                }
            }),
            Some(MetricTargetType::AverageValue) => value.and_then(|value| {
                if is_quantity(&value) {
                    Some(ResourceTarget::AverageValue(value))
                } else {
                    reader.error(
                        ParamError::new("value", format!("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$', got {value:?}"))
                            .with_hint("with metricType AverageValue, write `value` as a Kubernetes quantity, like \"500m\" (cpu) or \"512Mi\" (memory)"),
                    );
                    None
                }
            }),
            other => {
                let written = other.map(|t| t.as_str()).unwrap_or("");
                reader.error(
                    ParamError::new(
                        "metricType",
                        format!("unknown metric type: {written}, allowed values are 'Utilization' or 'AverageValue'"),
                    )
                    .with_hint(format!("set `metricType: Utilization` or `metricType: AverageValue` on the {} trigger", resource.as_str())),
                );
                None
            }
        };
        match target {
            Some(target) if !reader.has_errors() => reader.finish(Self {
                resource,
                target,
                container_name,
            }),
            _ => Err(reader
                .finish(())
                .err()
                .unwrap_or_else(|| ParamErrors(Vec::new()))),
        }
    }
}

/// Go's `strconv.ParseInt(value, 10, 32)`: optional sign, decimal digits, 32-bit range.
fn parse_go_int32(value: &str) -> Result<i32, &'static str> {
    let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("invalid syntax");
    }
    value
        .strip_prefix('+')
        .unwrap_or(value)
        .parse::<i32>()
        .map_err(|_| "value out of range")
}

/// Whether `value` is a Kubernetes quantity: a signed decimal number, then nothing, a binary
/// suffix (`Ki`…`Ei`), a decimal suffix (`n u m k M G T P E`) or an exponent (`e3`, `E-2`).
pub fn is_quantity(value: &str) -> bool {
    let unsigned = value.strip_prefix(['+', '-']).unwrap_or(value);
    let number_end = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(number_end);
    let valid_number = match number.split_once('.') {
        Some((whole, fraction)) => {
            !fraction.contains('.') && (!whole.is_empty() || !fraction.is_empty())
        }
        None => !number.is_empty(),
    };
    if !valid_number {
        return false;
    }
    const SUFFIXES: [&str; 15] = [
        "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P",
    ];
    if SUFFIXES.contains(&suffix) || suffix == "E" {
        return true;
    }
    let Some(exponent) = suffix.strip_prefix(['e', 'E']) else {
        return false;
    };
    let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A built `cpu` or `memory` trigger.
#[derive(Debug)]
pub struct CpuMemoryScaler {
    metadata: Metadata,
}

impl CpuMemoryScaler {
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

impl ScalerKind<ScalerContext> for CpuMemoryScaler {
    const TYPES: &'static [&'static str] = &["cpu", "memory"];

    fn build(
        config: &TriggerConfig,
        _context: &ScalerContext,
    ) -> Result<Arc<dyn Scaler>, ParamErrors> {
        Ok(Arc::new(Self {
            metadata: Metadata::parse(config)?,
        }))
    }
}

#[async_trait]
impl Scaler for CpuMemoryScaler {
    fn metric_specs(&self) -> Vec<MetricSpec> {
        vec![MetricSpec::Resource(ResourceMetric {
            resource: self.metadata.resource,
            container: self.metadata.container_name.clone(),
            target: self.metadata.target.clone(),
        })]
    }

    /// Resource metrics are read by the HPA itself; there is no external metric to sample.
    async fn sample(&self, _request: SampleRequest<'_>) -> Result<Sample, ScalerError> {
        Err(ScalerError::metadata(format!(
            "{} triggers have no external metric: the HPA reads them from the resource metrics API",
            self.metadata.resource.as_str()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scaler_core::params::TriggerParams;

    fn config(
        trigger_type: &str,
        metric_type: Option<MetricTargetType>,
        pairs: &[(&str, &str)],
    ) -> TriggerConfig {
        TriggerConfig {
            trigger_type: trigger_type.into(),
            metric_type,
            params: TriggerParams::from_metadata(pairs.iter().copied()),
            ..TriggerConfig::default()
        }
    }

    struct ParseCase {
        name: &'static str,
        metric_type: Option<MetricTargetType>,
        metadata: &'static [(&'static str, &'static str)],
        /// `None` when parsing succeeds, else the key the first error names.
        error_key: Option<&'static str>,
    }

    /// KEDA's `testCPUMemoryMetadata`, plus Windlass's own cases.
    const PARSE_CASES: &[ParseCase] = &[
        ParseCase {
            name: "nothing",
            metric_type: None,
            metadata: &[],
            error_key: Some("value"),
        },
        ParseCase {
            name: "utilization",
            metric_type: Some(MetricTargetType::Utilization),
            metadata: &[("value", "50")],
            error_key: None,
        },
        ParseCase {
            name: "average value",
            metric_type: Some(MetricTargetType::AverageValue),
            metadata: &[("value", "50")],
            error_key: None,
        },
        ParseCase {
            name: "Value is rejected",
            metric_type: Some(MetricTargetType::Value),
            metadata: &[("value", "50")],
            error_key: Some("metricType"),
        },
        ParseCase {
            name: "empty value",
            metric_type: None,
            metadata: &[("value", "")],
            error_key: Some("value"),
        },
        ParseCase {
            name: "missing metricType",
            metric_type: None,
            metadata: &[("value", "50")],
            error_key: Some("metricType"),
        },
        ParseCase {
            name: "deprecated type",
            metric_type: Some(MetricTargetType::Utilization),
            metadata: &[("type", "Utilization"), ("value", "50")],
            error_key: Some("type"),
        },
        ParseCase {
            name: "utilization must be an integer",
            metric_type: Some(MetricTargetType::Utilization),
            metadata: &[("value", "50.5")],
            error_key: Some("value"),
        },
        ParseCase {
            name: "utilization beyond 32 bits",
            metric_type: Some(MetricTargetType::Utilization),
            metadata: &[("value", "3000000000")],
            error_key: Some("value"),
        },
        ParseCase {
            name: "average value must be a quantity",
            metric_type: Some(MetricTargetType::AverageValue),
            metadata: &[("value", "half a core")],
            error_key: Some("value"),
        },
        ParseCase {
            name: "container",
            metric_type: Some(MetricTargetType::AverageValue),
            metadata: &[("value", "512Mi"), ("containerName", "foo")],
            error_key: None,
        },
    ];

    #[test]
    fn parse_table() {
        for case in PARSE_CASES {
            for trigger_type in CpuMemoryScaler::TYPES {
                let result =
                    Metadata::parse(&config(trigger_type, case.metric_type, case.metadata));
                match (case.error_key, result) {
                    (None, Ok(_)) => {}
                    (None, Err(errors)) => panic!("{}: unexpected error {errors}", case.name),
                    (Some(key), Ok(_)) => panic!("{}: expected an error on {key}", case.name),
                    (Some(key), Err(errors)) => {
                        assert_eq!(errors.0[0].key, key, "{}: {errors}", case.name);
                        assert!(errors.0.iter().all(|e| e.hint.is_some()), "{}", case.name);
                    }
                }
            }
        }
    }

    #[test]
    fn keda_error_messages() {
        let errors = Metadata::parse(&config(
            "cpu",
            Some(MetricTargetType::Value),
            &[("value", "50")],
        ))
        .unwrap_err();
        assert_eq!(
            errors.0[0].message,
            "unknown metric type: Value, allowed values are 'Utilization' or 'AverageValue'"
        );
        let errors = Metadata::parse(&config(
            "memory",
            None,
            &[("type", "AverageValue"), ("value", "1Gi")],
        ))
        .unwrap_err();
        assert_eq!(
            errors.0[0].message,
            "scaler memory info: The 'type' setting is DEPRECATED and is removed in v2.18 - Use 'metricType' instead."
        );
    }

    struct SpecCase {
        trigger_type: &'static str,
        metric_type: MetricTargetType,
        metadata: &'static [(&'static str, &'static str)],
        expected: ResourceMetric,
    }

    #[test]
    fn metric_specs_are_resource_metrics() {
        let cases = [
            SpecCase {
                trigger_type: "cpu",
                metric_type: MetricTargetType::Utilization,
                metadata: &[("value", "50")],
                expected: ResourceMetric {
                    resource: ResourceName::Cpu,
                    container: None,
                    target: ResourceTarget::Utilization(50),
                },
            },
            SpecCase {
                trigger_type: "cpu",
                metric_type: MetricTargetType::Utilization,
                metadata: &[("value", "50"), ("containerName", "foo")],
                expected: ResourceMetric {
                    resource: ResourceName::Cpu,
                    container: Some("foo".into()),
                    target: ResourceTarget::Utilization(50),
                },
            },
            SpecCase {
                trigger_type: "memory",
                metric_type: MetricTargetType::AverageValue,
                metadata: &[("value", " 512Mi ")],
                expected: ResourceMetric {
                    resource: ResourceName::Memory,
                    container: None,
                    target: ResourceTarget::AverageValue("512Mi".into()),
                },
            },
        ];
        for case in cases {
            let scaler = CpuMemoryScaler::build(
                &config(case.trigger_type, Some(case.metric_type), case.metadata),
                &ScalerContext::default(),
            )
            .unwrap();
            assert_eq!(
                scaler.metric_specs(),
                vec![MetricSpec::Resource(case.expected)]
            );
        }
    }

    #[test]
    fn quantities() {
        for good in [
            "50", "500m", "0.5", ".5", "5.", "+1", "-1", "512Mi", "1Gi", "1e3", "1E-2", "2E",
            "100n", "3k",
        ] {
            assert!(is_quantity(good), "{good}");
        }
        for bad in ["", ".", "m", "1.2.3", "1KB", "1ki", "1e", "one", "1 Gi"] {
            assert!(!is_quantity(bad), "{bad}");
        }
        assert_eq!(parse_go_int32("+50"), Ok(50));
        assert_eq!(parse_go_int32("050"), Ok(50));
        assert_eq!(parse_go_int32("-5"), Ok(-5));
        assert!(parse_go_int32("5_0").is_err());
    }

    mod fixtures {
        include!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/support.rs"
        ));
    }

    #[test]
    fn documented_examples_parse() {
        for file in ["cpu.yaml", "memory.yaml", "cron.yaml"] {
            let triggers = fixtures::triggers_of(file, CpuMemoryScaler::TYPES);
            assert!(!triggers.is_empty(), "{file}");
            for cfg in triggers {
                CpuMemoryScaler::build(&cfg, &ScalerContext::default()).unwrap();
            }
        }
    }
}
