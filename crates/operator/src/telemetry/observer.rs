//! [`OperatorMetrics`] as the controller's [`Observer`]: what reconcile and the scale loops
//! report, turned into KEDA's series.

use std::time::Duration;

use kube::ResourceExt;
use scaler_core::MetricName;

use super::metrics::{HpaOperation, OperatorMetrics, SampleLabels, ScaleDirection};
use crate::controller::Observer;
use crate::controller::evaluate::{Evaluation, Reading};
use crate::crd::ScaledObject;

fn key(so: &ScaledObject) -> (String, String) {
    (so.namespace().unwrap_or_default(), so.name_any())
}

impl Observer for OperatorMetrics {
    fn record_evaluation(&self, so: &ScaledObject, evaluation: &Evaluation) {
        let (namespace, name) = key(so);
        for reading in &evaluation.readings {
            let labels = SampleLabels {
                namespace: namespace.clone(),
                scaled_object: name.clone(),
                trigger_index: reading.trigger_index,
                trigger_type: reading.trigger_type.clone(),
                trigger_name: reading.trigger_name.clone(),
                metric: reading.metric.name.to_string(),
            };
            match &reading.reading {
                Reading::Sample(sample) => {
                    self.record_sample(&labels, reading.duration, Ok(*sample));
                }
                Reading::Error(error) => {
                    self.record_sample(&labels, reading.duration, Err(error.category));
                }
                // The reading no longer says why the scaler failed.
                Reading::Fallback { value, .. } => {
                    self.record_sample_fallback(&labels, reading.duration, Some(*value));
                }
                Reading::Placeholder => {
                    self.record_sample_fallback(&labels, reading.duration, None);
                }
            }
        }
        if let Some(Ok(value)) = evaluation.composite {
            // With scalingModifiers the object's activity is the formula's.
            self.record_composite(
                &namespace,
                &name,
                MetricName::composite().as_str(),
                value,
                evaluation.activity.active,
            );
        }
    }

    fn record_scale(&self, _so: &ScaledObject, from: i32, to: i32) {
        if let Some(direction) = ScaleDirection::between(from, to) {
            self.record_scale_write(direction);
        }
    }

    fn record_reconcile(&self, so: &ScaledObject, duration: Duration, error: Option<&'static str>) {
        let (namespace, name) = key(so);
        if so.metadata.deletion_timestamp.is_none() {
            let types: Vec<&str> = so.spec.triggers.iter().map(|t| t.type_.as_str()).collect();
            self.register_scaled_object(&namespace, &name, &types);
        }
        OperatorMetrics::record_reconcile(self, duration, error.map_or(Ok(()), Err));
    }

    fn record_hpa_write(&self, _so: &ScaledObject, operation: &'static str) {
        let operation = match operation {
            "create" => HpaOperation::Create,
            "update" => HpaOperation::Update,
            "delete" => HpaOperation::Delete,
            other => {
                tracing::debug!(operation = other, "unknown HPA write not counted");
                return;
            }
        };
        OperatorMetrics::record_hpa_write(self, operation);
    }

    fn set_paused(&self, so: &ScaledObject, paused: bool) {
        let (namespace, name) = key(so);
        OperatorMetrics::set_paused(self, &namespace, &name, paused);
    }

    fn forget(&self, so: &ScaledObject) {
        let (namespace, name) = key(so);
        self.forget_scaled_object(&namespace, &name);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::Utc;
    use prometheus_client::registry::Registry;
    use scaler_core::activity::Activity;
    use scaler_core::{ErrorCategory, ExternalMetric, MetricTargetType, Sample, ScalerError};

    use super::*;
    use crate::controller::evaluate::MetricReading;
    use crate::telemetry::metrics::{BuildInfo, render};

    fn scaled_object() -> ScaledObject {
        serde_yaml_ng::from_str(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: worker, namespace: apps}\nspec:\n  scaleTargetRef: {name: worker}\n  triggers:\n  - {type: redis, metadata: {}}\n  - {type: kafka, name: lag, metadata: {}}\n",
        )
        .unwrap()
    }

    fn reading(
        index: usize,
        trigger_type: &str,
        name: Option<&str>,
        reading: Reading,
    ) -> MetricReading {
        MetricReading {
            trigger_index: index,
            trigger_type: trigger_type.into(),
            trigger_name: name.map(str::to_owned),
            metric: ExternalMetric {
                name: MetricName::indexed(index, trigger_type),
                target: 5.0,
                target_type: MetricTargetType::AverageValue,
            },
            reading,
            duration: Duration::from_millis(10),
        }
    }

    fn lines(registry: &Registry, prefix: &str) -> Vec<String> {
        let mut lines: Vec<String> = render(registry)
            .unwrap()
            .lines()
            .filter(|line| line.starts_with(prefix))
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    }

    #[test]
    fn the_controller_reports_through_the_observer_trait() {
        let mut registry = Registry::default();
        let metrics = OperatorMetrics::register(&mut registry, &BuildInfo::current());
        let observer: &dyn Observer = &metrics;
        let so = scaled_object();

        observer.record_reconcile(&so, Duration::from_millis(2), None);
        observer.record_reconcile(&so, Duration::from_millis(2), Some("target"));
        observer.set_paused(&so, false);
        observer.record_hpa_write(&so, "create");
        observer.record_scale(&so, 0, 3);
        observer.record_scale(&so, 3, 3);
        observer.record_evaluation(
            &so,
            &Evaluation {
                at: Utc::now(),
                readings: vec![
                    reading(
                        0,
                        "redis",
                        None,
                        Reading::Sample(Sample {
                            value: 8.0,
                            active: true,
                        }),
                    ),
                    reading(
                        1,
                        "kafka",
                        Some("lag"),
                        Reading::Error(ScalerError::new(ErrorCategory::Connect, "refused")),
                    ),
                ],
                composite: None,
                activity: Activity::default(),
                health: BTreeMap::new(),
                fallback_configured: false,
            },
        );

        assert_eq!(
            lines(&registry, "keda_scaler_metrics_value"),
            [
                r#"keda_scaler_metrics_value{namespace="apps",metric="s0-redis",scaledObject="worker",scaler="redis",triggerIndex="0",type="scaledobject"} 8.0"#
            ]
        );
        assert_eq!(
            lines(&registry, "keda_scaler_detail_errors_total"),
            [
                r#"keda_scaler_detail_errors_total{namespace="apps",metric="s0-redis",scaledObject="worker",scaler="redis",triggerIndex="0",type="scaledobject"} 0"#,
                r#"keda_scaler_detail_errors_total{namespace="apps",metric="s1-kafka",scaledObject="worker",scaler="lag",triggerIndex="1",type="scaledobject"} 1"#,
            ]
        );
        assert_eq!(
            lines(&registry, "windlass_scaler_sample_duration_seconds_count"),
            [
                r#"windlass_scaler_sample_duration_seconds_count{namespace="apps",scaledObject="worker",triggerIndex="0",type="redis",result="success"} 1"#,
                r#"windlass_scaler_sample_duration_seconds_count{namespace="apps",scaledObject="worker",triggerIndex="1",type="kafka",result="connect"} 1"#,
            ]
        );
        assert_eq!(
            lines(&registry, "keda_trigger_registered_total"),
            [
                r#"keda_trigger_registered_total{type="kafka"} 1"#,
                r#"keda_trigger_registered_total{type="redis"} 1"#,
            ]
        );
        assert_eq!(
            lines(&registry, "windlass_reconcile_duration_seconds_count"),
            [
                r#"windlass_reconcile_duration_seconds_count{result="success"} 1"#,
                r#"windlass_reconcile_duration_seconds_count{result="target"} 1"#,
            ]
        );
        assert_eq!(
            lines(&registry, "windlass_scale_writes_total"),
            [r#"windlass_scale_writes_total{direction="up"} 1"#]
        );
        assert_eq!(
            lines(&registry, "windlass_hpa_writes_total"),
            [r#"windlass_hpa_writes_total{operation="create"} 1"#]
        );

        observer.forget(&so);
        let text = render(&registry).unwrap();
        assert!(!text.contains(r#"scaledObject="worker""#), "{text}");
    }
}
