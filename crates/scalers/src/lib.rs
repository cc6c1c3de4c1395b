//! Windlass's built-in scalers, one module per KEDA trigger type.
//!
//! Each module opens with its user reference (keys, defaults, sources, an example), then its
//! typed `Metadata`, then the scaler. [`register_builtin`] is the one place that lists them.

pub mod apache_kafka;
pub mod connections;
pub mod context;
pub mod cpu_memory;
pub mod cron;
pub mod decorators;
pub mod external;
pub mod external_client;
pub mod http;
pub mod insecure_tls;
pub mod kafka;
pub mod kafka_auth;
pub mod kafka_client;
pub mod kafka_offsets;
pub mod nats_client;
pub mod nats_jetstream;
pub mod plugin;
pub mod prometheus;
pub mod redis;
pub mod redis_client;
pub mod redis_connection;
pub mod redis_streams;
pub mod single_flight;

use scaler_core::ScalerRegistry;

pub use context::{ScalerContext, Settings};

/// The registry of every built-in trigger type.
pub fn register_builtin(registry: &mut ScalerRegistry<ScalerContext>) {
    registry.decorate_with(decorators::decorate);
    registry.register::<prometheus::PrometheusScaler>();
    registry.register::<nats_jetstream::NatsJetStreamScaler>();
    registry.register::<kafka::KafkaScaler>();
    registry.register::<apache_kafka::ApacheKafkaScaler>();
    registry.register::<redis::RedisScaler>();
    registry.register::<redis_streams::RedisStreamsScaler>();
    registry.register::<cron::CronScaler>();
    registry.register::<external::ExternalScaler>();
    registry.register::<cpu_memory::CpuMemoryScaler>();
}

/// A registry with every built-in trigger type.
pub fn builtin_registry() -> ScalerRegistry<ScalerContext> {
    let mut registry = ScalerRegistry::default();
    register_builtin(&mut registry);
    registry
}

#[cfg(test)]
mod tests {
    use scaler_core::TriggerParams;
    use scaler_core::registry::TriggerConfig;

    use super::*;

    fn build(
        trigger_type: &str,
        metadata: &[(&str, &str)],
    ) -> std::sync::Arc<dyn scaler_core::Scaler> {
        let config = TriggerConfig {
            trigger_type: trigger_type.to_owned(),
            params: TriggerParams::from_metadata(metadata.iter().copied()),
            ..TriggerConfig::default()
        };
        builtin_registry()
            .build(&config, &ScalerContext::default())
            .unwrap_or_else(|e| panic!("{trigger_type}: {e}"))
    }

    #[test]
    fn every_kedas_type_is_registered() {
        let registry = builtin_registry();
        for trigger_type in [
            "prometheus",
            "nats-jetstream",
            "kafka",
            "apache-kafka",
            "redis",
            "redis-cluster",
            "redis-sentinel",
            "redis-streams",
            "redis-cluster-streams",
            "redis-sentinel-streams",
            "cron",
            "external",
            "external-push",
            "cpu",
            "memory",
        ] {
            assert!(registry.knows(trigger_type), "{trigger_type}");
        }
    }

    #[test]
    fn activation_targets_come_from_each_types_activation_key() {
        struct Case {
            trigger_type: &'static str,
            metadata: &'static [(&'static str, &'static str)],
            expected: Option<f64>,
        }
        let cases = [
            Case {
                trigger_type: "redis",
                metadata: &[
                    ("listName", "jobs"),
                    ("address", "r:6379"),
                    ("activationListLength", "7"),
                ],
                expected: Some(7.0),
            },
            Case {
                trigger_type: "redis-streams",
                metadata: &[
                    ("stream", "s"),
                    ("address", "r:6379"),
                    ("activationLagCount", "3"),
                ],
                expected: Some(3.0),
            },
            Case {
                trigger_type: "prometheus",
                metadata: &[
                    ("serverAddress", "http://p:9090"),
                    ("query", "up"),
                    ("threshold", "10"),
                    ("activationThreshold", "2.5"),
                ],
                expected: Some(2.5),
            },
            Case {
                trigger_type: "kafka",
                metadata: &[
                    ("bootstrapServers", "k:9092"),
                    ("consumerGroup", "g"),
                    ("topic", "t"),
                ],
                expected: Some(0.0),
            },
            Case {
                trigger_type: "apache-kafka",
                metadata: &[
                    ("bootstrapServers", "k:9092"),
                    ("consumerGroup", "g"),
                    ("topic", "t"),
                    ("activationLagThreshold", "4"),
                ],
                expected: Some(4.0),
            },
            Case {
                trigger_type: "nats-jetstream",
                metadata: &[
                    ("natsServerMonitoringEndpoint", "n:8222"),
                    ("account", "$G"),
                    ("stream", "s"),
                    ("consumer", "c"),
                    ("activationLagThreshold", "15"),
                ],
                expected: Some(15.0),
            },
            Case {
                trigger_type: "cron",
                metadata: &[
                    ("timezone", "Etc/UTC"),
                    ("start", "0 8 * * *"),
                    ("end", "0 9 * * *"),
                    ("desiredReplicas", "3"),
                ],
                expected: None,
            },
        ];
        for case in cases {
            let scaler = build(case.trigger_type, case.metadata);
            assert_eq!(
                scaler.activation_target(),
                case.expected,
                "{}",
                case.trigger_type
            );
        }
    }
}
