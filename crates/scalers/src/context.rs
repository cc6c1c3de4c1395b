//! What scalers share: settings and the connections to their backends, one per backend address
//! and credentials, never one per ScaledObject.
//!
//! A [`ScalerContext`] is cheap to clone (one `Arc`); scalers keep a clone and reach their
//! backend through it when they sample. Building a scaler never connects.

use std::sync::Arc;
use std::time::Duration;

use scaler_core::{Sample, ScalerError};

use crate::external_client::ExternalClients;
use crate::http::HttpClients;
use crate::kafka_client::KafkaClients;
use crate::nats_client::NatsClients;
use crate::redis_client::RedisClients;
use crate::single_flight::SingleFlight;

/// Process-wide scaler settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Bound on one sample unless the scaler sets its own (KEDA's `KEDA_HTTP_DEFAULT_TIMEOUT`).
    pub default_timeout: Duration,
    /// How long a finished query's answer is reused by identical queries.
    pub shared_query_window: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            default_timeout: Duration::from_millis(3000),
            shared_query_window: Duration::from_secs(1),
        }
    }
}

impl Settings {
    /// Defaults, with `KEDA_HTTP_DEFAULT_TIMEOUT` (milliseconds) honoured as in KEDA.
    pub fn from_env() -> Self {
        let mut settings = Self::default();
        if let Some(millis) = std::env::var("KEDA_HTTP_DEFAULT_TIMEOUT")
            .ok()
            .and_then(|value| value.trim().parse::<u64>().ok())
        {
            settings.default_timeout = Duration::from_millis(millis);
        }
        settings
    }
}

/// The shared state behind a [`ScalerContext`].
#[derive(Debug, Default)]
pub struct Shared {
    pub settings: Settings,
    /// HTTP clients by TLS settings (Prometheus, NATS monitoring).
    pub http: HttpClients,
    /// Redis connections by topology, addresses and credentials.
    pub redis: RedisClients,
    /// NATS connections by servers and credentials.
    pub nats: NatsClients,
    /// Answers of identical queries in flight or just finished.
    pub queries: SingleFlight<Result<Sample, ScalerError>>,
    /// gRPC channels to external scalers by address and TLS settings.
    pub grpc: ExternalClients,
    /// Kafka clients by brokers and credentials, and group readers by group.
    pub kafka: KafkaClients,
}

/// A handle on what scalers share.
#[derive(Clone, Debug)]
pub struct ScalerContext {
    shared: Arc<Shared>,
}

impl Default for ScalerContext {
    fn default() -> Self {
        Self::new(Settings::default())
    }
}

impl ScalerContext {
    pub fn new(settings: Settings) -> Self {
        install_crypto_provider();
        Self {
            shared: Arc::new(Shared {
                settings,
                ..Shared::default()
            }),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    pub fn http(&self) -> &HttpClients {
        &self.shared.http
    }

    pub fn redis(&self) -> &RedisClients {
        &self.shared.redis
    }

    pub fn nats(&self) -> &NatsClients {
        &self.shared.nats
    }

    pub fn queries(&self) -> &SingleFlight<Result<Sample, ScalerError>> {
        &self.shared.queries
    }

    pub fn kafka(&self) -> &KafkaClients {
        &self.shared.kafka
    }

    pub fn grpc(&self) -> &ExternalClients {
        &self.shared.grpc
    }
}

/// TLS everywhere uses rustls with the `ring` provider. Several dependencies enable rustls; with
/// more than one provider compiled in, rustls needs the process default set once.
pub fn install_crypto_provider() {
    // Err means it was installed already, by us or by the embedding program: fine either way.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
