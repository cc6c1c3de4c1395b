//! Windlass's built-in scalers, one module per KEDA trigger type.
//!
//! Each module opens with its user reference (keys, defaults, sources, an example), then its
//! typed `Metadata`, then the scaler. [`register_builtin`] is the one place that lists them.

pub mod apache_kafka;
pub mod cpu_memory;
pub mod cron;
pub mod external;
pub mod kafka;
pub mod kafka_auth;
pub mod nats_jetstream;
pub mod prometheus;
pub mod redis;
pub mod redis_connection;
pub mod redis_streams;

use scaler_core::ScalerRegistry;

/// What scalers share: connection pools and settings, one per backend and credentials.
///
/// Scalers are built without I/O; pools connect lazily on the first sample.
#[derive(Debug, Default)]
pub struct ScalerContext {}

/// The registry of every built-in trigger type.
pub fn register_builtin(registry: &mut ScalerRegistry<ScalerContext>) {
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
