//! `nats-jetstream` triggers: the lag of one JetStream consumer, read from the NATS monitoring
//! endpoint.
//!
//! # Parameters
//!
//! | Key | Source | Required | Default | Meaning |
//! |---|---|---|---|---|
//! | `natsServerMonitoringEndpoint` | A, M | yes | – | `host:port` of the NATS HTTP monitoring port, without scheme, e.g. `nats.nats.svc.cluster.local:8222`. |
//! | `account` | A, M | one of the two | – | Account name (`$G` when NATS has no accounts configured). |
//! | `accountID` | A, M | one of the two | `account` | Account id, sent as the `acc` query parameter. |
//! | `stream` | M | yes | – | Stream name. |
//! | `consumer` | M | yes | – | Consumer (durable) name. |
//! | `lagThreshold` | M | no | `10` | Integer (JSON rules); the HPA target. |
//! | `activationLagThreshold` | M | no | `0` | Integer; active iff the lag is greater. |
//! | `useHttps` | M | no | `false` | Boolean (Go `ParseBool`); scheme of the monitoring calls. |
//!
//! Sources: M is the trigger's `metadata`, A the TriggerAuthentication's parameters; where both
//! are listed, the first non-empty value in that order wins (so a TriggerAuthentication
//! overrides the metadata). Values are trimmed and an empty value counts as missing.
//!
//! Lag = `num_pending + num_ack_pending` of the consumer, read from
//! `<scheme>://<endpoint>/jsz?acc=<accountID>&config=true&consumers=true` (on a cluster, from the
//! node that leads the consumer). Metric: `s<index>-nats-jetstream-<stream>`, target
//! `lagThreshold`.
//!
//! Sampling is not part of this build yet: [`Scaler::sample`] returns an `unsupported` error.
//!
//! # Example
//!
//! ```yaml
//! triggers:
//! - type: nats-jetstream
//!   metadata:
//!     natsServerMonitoringEndpoint: "nats.nats.svc.cluster.local:8222"
//!     account: "$G"
//!     stream: "mystream"
//!     consumer: "pull_consumer"
//!     lagThreshold: "10"
//!     activationLagThreshold: "15"
//!     useHttps: "false"
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use scaler_core::metric::ExternalMetric;
use scaler_core::params::{ParamError, ParamReader, order};
use scaler_core::registry::{ScalerKind, TriggerConfig};
use scaler_core::{MetricSpec, ParamErrors, Sample, SampleRequest, Scaler, ScalerError};

use crate::ScalerContext;

mod defaults {
    pub const LAG_THRESHOLD: &str = "10";
    pub const ACTIVATION_LAG_THRESHOLD: &str = "0";
    pub const USE_HTTPS: &str = "false";
}

/// A `nats-jetstream` trigger's parameters, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub monitoring_endpoint: String,
    /// The account name, if given.
    pub account: Option<String>,
    /// The account id (the name when no id is given); matched against `id` or `name`.
    pub account_id: String,
    pub stream: String,
    pub consumer: String,
    pub lag_threshold: i64,
    pub activation_lag_threshold: i64,
    pub use_https: bool,
}

impl Metadata {
    pub fn parse(config: &TriggerConfig) -> Result<Self, ParamErrors> {
        let mut reader = ParamReader::new(&config.params);
        if let Err(error) = config.external_target_type() {
            reader.error(error);
        }
        let account = reader.key("account", order::A_M).string();
        let account_id = reader.key("accountID", order::A_M).string();
        let stream = reader.key("stream", order::M).required().string();
        let consumer = reader.key("consumer", order::M).required().string();
        let lag_threshold = reader
            .key("lagThreshold", order::M)
            .default(defaults::LAG_THRESHOLD)
            .int();
        let activation_lag_threshold = reader
            .key("activationLagThreshold", order::M)
            .default(defaults::ACTIVATION_LAG_THRESHOLD)
            .int();
        let use_https = reader
            .key("useHttps", order::M)
            .default(defaults::USE_HTTPS)
            .bool();
        let monitoring_endpoint = reader
            .key("natsServerMonitoringEndpoint", order::A_M)
            .required()
            .string();
        let account_id = account_id.or_else(|| account.clone());
        if account_id.is_none() {
            reader.error(
                ParamError::new("account", "no account name or id given").with_hint(
                    "set `account` (e.g. \"$G\" when NATS has no accounts) or `accountID` in the trigger metadata or the TriggerAuthentication",
                ),
            );
        }
        match (
            monitoring_endpoint,
            account_id,
            stream,
            consumer,
            lag_threshold,
            activation_lag_threshold,
            use_https,
        ) {
            (
                Some(monitoring_endpoint),
                Some(account_id),
                Some(stream),
                Some(consumer),
                Some(lag_threshold),
                Some(activation_lag_threshold),
                Some(use_https),
            ) if !reader.has_errors() => reader.finish(Self {
                monitoring_endpoint,
                account,
                account_id,
                stream,
                consumer,
                lag_threshold,
                activation_lag_threshold,
                use_https,
            }),
            _ => Err(reader
                .finish(())
                .err()
                .unwrap_or_else(|| ParamErrors(Vec::new()))),
        }
    }

    /// The scaler's metric name before indexing: `nats-jetstream-<stream>`.
    pub fn metric_local_name(&self) -> String {
        format!("nats-jetstream-{}", self.stream)
    }
}

/// A built `nats-jetstream` trigger.
#[derive(Debug)]
pub struct NatsJetStreamScaler {
    metadata: Metadata,
    metric: ExternalMetric,
}

impl NatsJetStreamScaler {
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

impl ScalerKind<ScalerContext> for NatsJetStreamScaler {
    const TYPES: &'static [&'static str] = &["nats-jetstream"];

    fn build(
        config: &TriggerConfig,
        _context: &ScalerContext,
    ) -> Result<Arc<dyn Scaler>, ParamErrors> {
        let metadata = Metadata::parse(config)?;
        let metric =
            config.external_metric(&metadata.metric_local_name(), metadata.lag_threshold as f64)?;
        Ok(Arc::new(Self { metadata, metric }))
    }
}

#[async_trait]
impl Scaler for NatsJetStreamScaler {
    fn metric_specs(&self) -> Vec<MetricSpec> {
        vec![MetricSpec::External(self.metric.clone())]
    }

    fn activation_target(&self) -> Option<f64> {
        Some(self.metadata.activation_lag_threshold as f64)
    }

    async fn sample(&self, _request: SampleRequest<'_>) -> Result<Sample, ScalerError> {
        Err(ScalerError::unsupported("nats-jetstream"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scaler_core::MetricName;
    use scaler_core::params::TriggerParams;

    type Pairs = &'static [(&'static str, &'static str)];

    fn config(metadata: Pairs, auth: Pairs, index: usize) -> TriggerConfig {
        let mut params = TriggerParams::from_metadata(metadata.iter().copied());
        params.auth_params = auth
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        TriggerConfig {
            index,
            trigger_type: "nats-jetstream".into(),
            params,
            ..TriggerConfig::default()
        }
    }

    struct ParseCase {
        name: &'static str,
        metadata: Pairs,
        auth_params: Pairs,
        /// `None` when parsing succeeds, else the key the first error names.
        error_key: Option<&'static str>,
    }

    const ALL_GOOD: Pairs = &[
        ("natsServerMonitoringEndpoint", "localhost:8222"),
        ("account", "$G"),
        ("accountID", "$G"),
        ("stream", "mystream"),
        ("consumer", "pull_consumer"),
        ("useHttps", "false"),
    ];

    /// KEDA's `testNATSJetStreamMetadata`, plus Windlass's own cases.
    const PARSE_CASES: &[ParseCase] = &[
        ParseCase {
            name: "all good localhost",
            metadata: ALL_GOOD,
            auth_params: &[],
            error_key: None,
        },
        ParseCase {
            name: "all good url",
            metadata: &[
                ("natsServerMonitoringEndpoint", "nats.nats:8222"),
                ("account", "$G"),
                ("stream", "mystream"),
                ("consumer", "pull_consumer"),
                ("useHttps", "true"),
            ],
            auth_params: &[],
            error_key: None,
        },
        ParseCase {
            name: "id instead of name",
            metadata: &[
                ("natsServerMonitoringEndpoint", "localhost:8222"),
                ("accountID", "$G"),
                ("stream", "mystream"),
                ("consumer", "pull_consumer"),
                ("useHttps", "false"),
            ],
            auth_params: &[],
            error_key: None,
        },
        ParseCase {
            name: "nothing",
            metadata: &[],
            auth_params: &[],
            error_key: Some("stream"),
        },
        ParseCase {
            name: "no account name or id",
            metadata: &[
                ("natsServerMonitoringEndpoint", "nats.nats:8222"),
                ("stream", "mystream"),
                ("consumer", "pull_consumer"),
            ],
            auth_params: &[],
            error_key: Some("account"),
        },
        ParseCase {
            name: "no stream",
            metadata: &[
                ("natsServerMonitoringEndpoint", "nats.nats:8222"),
                ("account", "$G"),
                ("consumer", "pull_consumer"),
            ],
            auth_params: &[],
            error_key: Some("stream"),
        },
        ParseCase {
            name: "no consumer",
            metadata: &[
                ("natsServerMonitoringEndpoint", "nats.nats:8222"),
                ("account", "$G"),
                ("stream", "mystream"),
            ],
            auth_params: &[],
            error_key: Some("consumer"),
        },
        ParseCase {
            name: "no endpoint",
            metadata: &[("account", "$G"), ("stream", "mystream")],
            auth_params: &[],
            error_key: Some("consumer"),
        },
        ParseCase {
            name: "activationLagThreshold",
            metadata: &[
                ("natsServerMonitoringEndpoint", "nats.nats:8222"),
                ("account", "$G"),
                ("stream", "mystream"),
                ("consumer", "pull_consumer"),
                ("activationLagThreshold", "10"),
            ],
            auth_params: &[],
            error_key: None,
        },
        ParseCase {
            name: "bad activationLagThreshold",
            metadata: &[
                ("natsServerMonitoringEndpoint", "nats.nats:8222"),
                ("account", "$G"),
                ("stream", "mystream"),
                ("consumer", "pull_consumer"),
                ("activationLagThreshold", "Y"),
            ],
            auth_params: &[],
            error_key: Some("activationLagThreshold"),
        },
        ParseCase {
            name: "endpoint from authParams",
            metadata: &[
                ("account", "$G"),
                ("stream", "mystream"),
                ("consumer", "pull_consumer"),
            ],
            auth_params: &[("natsServerMonitoringEndpoint", "nats.nats:8222")],
            error_key: None,
        },
        ParseCase {
            name: "empty endpoint in authParams",
            metadata: &[
                ("account", "$G"),
                ("stream", "mystream"),
                ("consumer", "pull_consumer"),
            ],
            auth_params: &[("natsServerMonitoringEndpoint", "")],
            error_key: Some("natsServerMonitoringEndpoint"),
        },
        ParseCase {
            name: "bad useHttps",
            metadata: &[
                ("natsServerMonitoringEndpoint", "nats.nats:8222"),
                ("account", "$G"),
                ("stream", "mystream"),
                ("consumer", "pull_consumer"),
                ("useHttps", "error"),
            ],
            auth_params: &[],
            error_key: Some("useHttps"),
        },
        ParseCase {
            name: "lagThreshold",
            metadata: &[
                ("account", "$G"),
                ("stream", "mystream"),
                ("consumer", "pull_consumer"),
                ("lagThreshold", "6"),
            ],
            auth_params: &[("natsServerMonitoringEndpoint", "nats.nats:8222")],
            error_key: None,
        },
        ParseCase {
            name: "bad lagThreshold",
            metadata: &[
                ("account", "$G"),
                ("stream", "mystream"),
                ("consumer", "pull_consumer"),
                ("lagThreshold", "Y"),
            ],
            auth_params: &[("natsServerMonitoringEndpoint", "nats.nats:8222")],
            error_key: Some("lagThreshold"),
        },
        ParseCase {
            name: "account from authParams",
            metadata: &[("stream", "mystream"), ("consumer", "pull_consumer")],
            auth_params: &[
                ("account", "$G"),
                ("natsServerMonitoringEndpoint", "nats.nats:8222"),
            ],
            error_key: None,
        },
        ParseCase {
            name: "no account anywhere",
            metadata: &[("stream", "mystream"), ("consumer", "pull_consumer")],
            auth_params: &[("natsServerMonitoringEndpoint", "nats.nats:8222")],
            error_key: Some("account"),
        },
        ParseCase {
            name: "useHttps takes Go booleans",
            metadata: &[
                ("natsServerMonitoringEndpoint", "nats.nats:8222"),
                ("account", "$G"),
                ("stream", "mystream"),
                ("consumer", "pull_consumer"),
                ("useHttps", "T"),
            ],
            auth_params: &[],
            error_key: None,
        },
    ];

    #[test]
    fn parse_table() {
        for case in PARSE_CASES {
            let result = Metadata::parse(&config(case.metadata, case.auth_params, 0));
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

    #[test]
    fn defaults_and_precedence() {
        let m = Metadata::parse(&config(
            &[
                ("natsServerMonitoringEndpoint", "from-metadata:8222"),
                ("account", "meta-account"),
                ("stream", "s"),
                ("consumer", "c"),
            ],
            &[
                ("natsServerMonitoringEndpoint", "from-auth:8222"),
                ("account", "auth-account"),
            ],
            0,
        ))
        .unwrap();
        assert_eq!(m.monitoring_endpoint, "from-auth:8222");
        assert_eq!(m.account.as_deref(), Some("auth-account"));
        assert_eq!(m.account_id, "auth-account");
        assert_eq!(m.lag_threshold, 10);
        assert_eq!(m.activation_lag_threshold, 0);
        assert!(!m.use_https);
    }

    #[test]
    fn metric_names_and_targets() {
        for (index, name) in [
            (0, "s0-nats-jetstream-mystream"),
            (1, "s1-nats-jetstream-mystream"),
        ] {
            let scaler = NatsJetStreamScaler::build(
                &config(ALL_GOOD, &[], index),
                &ScalerContext::default(),
            )
            .unwrap();
            let specs = scaler.metric_specs();
            let metric = specs[0].external().unwrap();
            assert_eq!(metric.name, MetricName::from_raw(name));
            assert_eq!(metric.target, 10.0);
        }
    }

    #[tokio::test]
    async fn sampling_is_not_supported_yet() {
        let scaler =
            NatsJetStreamScaler::build(&config(ALL_GOOD, &[], 0), &ScalerContext::default())
                .unwrap();
        let name = MetricName::from_raw("s0-nats-jetstream-mystream");
        let error = scaler
            .sample(SampleRequest {
                metric: &name,
                now: chrono::Utc::now(),
            })
            .await
            .unwrap_err();
        assert_eq!(error.category, scaler_core::ErrorCategory::Unsupported);
    }

    mod fixtures {
        include!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/support.rs"
        ));
    }

    #[test]
    fn documented_examples_parse() {
        let triggers = fixtures::triggers_of("nats-jetstream.yaml", NatsJetStreamScaler::TYPES);
        assert_eq!(triggers.len(), 2);
        for cfg in triggers {
            NatsJetStreamScaler::build(&cfg, &ScalerContext::default()).unwrap();
        }
    }
}
