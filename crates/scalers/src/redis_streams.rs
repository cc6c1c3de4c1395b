//! `redis-streams`, `redis-cluster-streams` and `redis-sentinel-streams` triggers: scale on a
//! Redis stream.
//!
//! The mode follows from the parameters:
//! - no `consumerGroup`: **stream length** (`XLEN stream`), target `streamLength`;
//! - `consumerGroup` and a non-zero `lagCount`: **lag** of the group (`XINFO GROUPS`, Redis ≥ 7;
//!   the stream's length while the group does not exist yet, 0 while the stream does not exist),
//!   target `lagCount`;
//! - `consumerGroup` otherwise: **pending entries** of the group (`XPENDING`), target
//!   `pendingEntriesCount`.
//!
//! In every mode the trigger is active when the value exceeds `activationLagCount`.
//!
//! # Parameters
//!
//! Sources in lookup order: **M** = trigger metadata, **A** = TriggerAuthentication parameter,
//! **E** = `<key>FromEnv` naming an env var of the scale target's container. Integers are JSON
//! integers.
//!
//! | Key (aliases) | Src | Default | Meaning |
//! |---|---|---|---|
//! | `stream` | M | required | Stream key. |
//! | `consumerGroup` | M | – | Consumer group; selects the pending-entries or lag mode. |
//! | `pendingEntriesCount` | M | `5` | Target in pending-entries mode. |
//! | `streamLength` | M | `5` | Target in stream-length mode. |
//! | `lagCount` | M | `0` (unset) | Target in lag mode; non-zero selects lag mode. |
//! | `activationLagCount` | M | `0` | Activation threshold, every mode. |
//! | `databaseIndex` | M | `0` | Database number (standalone and Sentinel). |
//! | `address` (`addresses`) | M, A, E | – | Comma list of `host:port`. |
//! | `host` (`hosts`), `port` (`ports`) | M, E, A | – | Parallel comma lists joined into addresses; counts must match. |
//! | `username`, `password` | M, E, A | – | ACL user and password. |
//! | `sentinelUsername`, `sentinelPassword`, `sentinelMaster` | M, A, E | – | Sentinel credentials and master name. |
//! | `enableTLS` | M | `false` | Connect with TLS. |
//! | `tls` | A | – | `enable`/`disable`; an error together with `enableTLS`. |
//! | `unsafeSsl` | M | `false` | Skip certificate verification. |
//! | `Cert` (`cert`), `key`, `keyPassword`, `ca` | A | – | TLS material. |
//!
//! The metric is `s<index>-redis-streams-<stream>`.
//!
//! # Example
//!
//! ```yaml
//! triggers:
//! - type: redis-streams
//!   metadata:
//!     addressFromEnv: REDIS_HOST
//!     passwordFromEnv: REDIS_PASSWORD
//!     stream: my-stream
//!     consumerGroup: consumer-group-1
//!     lagCount: "10"
//!     activationLagCount: "3"
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use scaler_core::metric::{ExternalMetric, MetricSpec};
use scaler_core::params::{ParamError, ParamReader, order};
use scaler_core::registry::{ScalerKind, TriggerConfig};
use scaler_core::{ParamErrors, Sample, SampleRequest, Scaler, ScalerError};

use crate::ScalerContext;
use crate::kafka::build_metric;
use crate::redis_connection::{ConnectionInfo, Topology};

mod defaults {
    pub const PENDING_ENTRIES_COUNT: &str = "5";
    pub const STREAM_LENGTH: &str = "5";
    pub const ACTIVATION_LAG_COUNT: &str = "0";
}

/// What is measured, with its HPA target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamMode {
    /// `XLEN stream` against `streamLength`.
    Length { target: i64 },
    /// `XPENDING stream group` against `pendingEntriesCount`.
    PendingEntries { consumer_group: String, target: i64 },
    /// The group's `lag` from `XINFO GROUPS` against `lagCount`.
    Lag { consumer_group: String, target: i64 },
}

impl StreamMode {
    pub fn target(&self) -> i64 {
        match self {
            Self::Length { target }
            | Self::PendingEntries { target, .. }
            | Self::Lag { target, .. } => *target,
        }
    }
}

/// A stream trigger's parameters, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub topology: Topology,
    pub stream: String,
    pub mode: StreamMode,
    pub activation_lag_count: i64,
    pub database_index: i64,
    pub connection: ConnectionInfo,
}

impl Metadata {
    /// Reads and validates a stream trigger's parameters, reporting every problem found.
    pub fn parse(config: &TriggerConfig) -> Result<Self, ParamErrors> {
        let mut r = ParamReader::new(&config.params);
        let pending_entries_count = r
            .key("pendingEntriesCount", order::M)
            .default(defaults::PENDING_ENTRIES_COUNT)
            .int();
        let stream_length = r
            .key("streamLength", order::M)
            .default(defaults::STREAM_LENGTH)
            .int();
        let lag_count = r.key("lagCount", order::M).int();
        let stream = r.key("stream", order::M).required().string();
        let consumer_group = r.key("consumerGroup", order::M).string();
        let database_index = r.key("databaseIndex", order::M).int();
        let connection = ConnectionInfo::read(&mut r);
        let activation_lag_count = r
            .key("activationLagCount", order::M)
            .default(defaults::ACTIVATION_LAG_COUNT)
            .int();

        // A failed conversion is recorded on `r`, so `finish` reports it even where a default
        // stands in below.
        let metadata = (|| {
            let mode = match consumer_group {
                None => StreamMode::Length {
                    target: stream_length?,
                },
                Some(consumer_group) => match lag_count.unwrap_or(0) {
                    0 => StreamMode::PendingEntries {
                        consumer_group,
                        target: pending_entries_count?,
                    },
                    target => StreamMode::Lag {
                        consumer_group,
                        target,
                    },
                },
            };
            Some(Self {
                topology: Topology::of_trigger_type(&config.trigger_type),
                stream: stream?,
                mode,
                activation_lag_count: activation_lag_count?,
                database_index: database_index.unwrap_or(0),
                connection: connection?,
            })
        })();
        match metadata {
            Some(metadata) => r.finish(metadata),
            None => Err(r.finish(()).err().unwrap_or_else(|| {
                ParamErrors::single(ParamError::new(
                    "metadata",
                    "invalid redis streams metadata",
                ))
            })),
        }
    }

    /// `redis-streams-<stream>`.
    pub fn metric_local_name(&self) -> String {
        format!("redis-streams-{}", self.stream)
    }
}

/// A `redis-streams`, `redis-cluster-streams` or `redis-sentinel-streams` trigger.
#[derive(Debug)]
pub struct RedisStreamsScaler {
    trigger_type: String,
    metadata: Metadata,
    metric: ExternalMetric,
}

impl RedisStreamsScaler {
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

impl ScalerKind<ScalerContext> for RedisStreamsScaler {
    const TYPES: &'static [&'static str] = &[
        "redis-streams",
        "redis-cluster-streams",
        "redis-sentinel-streams",
    ];

    fn build(
        config: &TriggerConfig,
        _context: &ScalerContext,
    ) -> Result<Arc<dyn Scaler>, ParamErrors> {
        let (metadata, metric) = build_metric(
            config,
            Metadata::parse(config),
            Metadata::metric_local_name,
            |m| m.mode.target(),
        )?;
        Ok(Arc::new(Self {
            trigger_type: config.trigger_type.clone(),
            metadata,
            metric,
        }))
    }
}

#[async_trait]
impl Scaler for RedisStreamsScaler {
    fn metric_specs(&self) -> Vec<MetricSpec> {
        vec![MetricSpec::External(self.metric.clone())]
    }

    fn activation_target(&self) -> Option<f64> {
        Some(self.metadata.activation_lag_count as f64)
    }

    async fn sample(&self, _request: SampleRequest<'_>) -> Result<Sample, ScalerError> {
        Err(ScalerError::unsupported(&self.trigger_type))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use scaler_core::params::TriggerParams;

    use super::*;
    use crate::redis_connection::TlsSettings;

    type Pairs = &'static [(&'static str, &'static str)];

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn config(
        trigger_type: &str,
        metadata: &[(&str, &str)],
        auth: &[(&str, &str)],
        env: &[(&str, &str)],
        index: usize,
    ) -> TriggerConfig {
        TriggerConfig {
            index,
            trigger_type: trigger_type.into(),
            params: TriggerParams {
                metadata: map(metadata),
                auth_params: map(auth),
                resolved_env: map(env),
            },
            ..TriggerConfig::default()
        }
    }

    fn parse(
        trigger_type: &str,
        metadata: &[(&str, &str)],
        auth: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> Result<Metadata, ParamErrors> {
        Metadata::parse(&config(trigger_type, metadata, auth, env, 0))
    }

    struct ValidCase {
        name: &'static str,
        metadata: Pairs,
        env: Pairs,
        auth: Pairs,
        mode: StreamMode,
        activation: i64,
        username: &'static str,
        tls: bool,
    }

    /// KEDA's `TestParseRedisStreamsMetadata` (pending-entries and lag cases).
    #[test]
    fn parse_redis_streams_metadata() {
        const ENV_ADDRESS: Pairs = &[
            ("REDIS_SERVICE", "myredis:6379"),
            ("REDIS_USERNAME", "foobarred"),
            ("REDIS_PASSWORD", "foobarred"),
        ];
        const ENV_HOST: Pairs = &[
            ("REDIS_HOST", "myredis"),
            ("REDIS_PORT", "6379"),
            ("REDIS_USERNAME", "foobarred"),
            ("REDIS_PASSWORD", "foobarred"),
        ];
        const AUTH: Pairs = &[("username", "foobarred"), ("password", "foobarred")];
        let group = || "my-stream-consumer-group".to_owned();
        let cases = [
            ValidCase {
                name: "pending, with address",
                metadata: &[
                    ("stream", "my-stream"),
                    ("consumerGroup", "my-stream-consumer-group"),
                    ("pendingEntriesCount", "5"),
                    ("addressFromEnv", "REDIS_SERVICE"),
                    ("usernameFromEnv", "REDIS_USERNAME"),
                    ("passwordFromEnv", "REDIS_PASSWORD"),
                    ("databaseIndex", "0"),
                    ("enableTLS", "true"),
                ],
                env: ENV_ADDRESS,
                auth: &[],
                mode: StreamMode::PendingEntries {
                    consumer_group: group(),
                    target: 5,
                },
                activation: 0,
                username: "foobarred",
                tls: true,
            },
            // `port` holds the literal "REDIS_PORT", as in KEDA's case: hosts and ports are joined verbatim.
            ValidCase {
                name: "pending, with host and port",
                metadata: &[
                    ("stream", "my-stream"),
                    ("consumerGroup", "my-stream-consumer-group"),
                    ("pendingEntriesCount", "15"),
                    ("hostFromEnv", "REDIS_HOST"),
                    ("port", "REDIS_PORT"),
                    ("usernameFromEnv", "REDIS_USERNAME"),
                    ("passwordFromEnv", "REDIS_PASSWORD"),
                    ("databaseIndex", "0"),
                    ("enableTLS", "false"),
                ],
                env: ENV_HOST,
                auth: AUTH,
                mode: StreamMode::PendingEntries {
                    consumer_group: group(),
                    target: 15,
                },
                activation: 0,
                username: "foobarred",
                tls: false,
            },
            ValidCase {
                name: "lag, with address",
                metadata: &[
                    ("stream", "my-stream"),
                    ("consumerGroup", "my-stream-consumer-group"),
                    ("lagCount", "5"),
                    ("activationLagCount", "3"),
                    ("addressFromEnv", "REDIS_SERVICE"),
                    ("usernameFromEnv", "REDIS_USERNAME"),
                    ("passwordFromEnv", "REDIS_PASSWORD"),
                    ("databaseIndex", "0"),
                    ("enableTLS", "true"),
                ],
                env: ENV_ADDRESS,
                auth: &[],
                mode: StreamMode::Lag {
                    consumer_group: group(),
                    target: 5,
                },
                activation: 3,
                username: "foobarred",
                tls: true,
            },
            ValidCase {
                name: "lag, with host and port",
                metadata: &[
                    ("stream", "my-stream"),
                    ("consumerGroup", "my-stream-consumer-group"),
                    ("lagCount", "2"),
                    ("activationLagCount", "3"),
                    ("hostFromEnv", "REDIS_HOST"),
                    ("port", "REDIS_PORT"),
                    ("usernameFromEnv", "REDIS_USERNAME"),
                    ("passwordFromEnv", "REDIS_PASSWORD"),
                    ("databaseIndex", "0"),
                    ("enableTLS", "false"),
                ],
                env: ENV_HOST,
                auth: AUTH,
                mode: StreamMode::Lag {
                    consumer_group: group(),
                    target: 2,
                },
                activation: 3,
                username: "foobarred",
                tls: false,
            },
        ];
        for case in cases {
            let m = parse("redis-streams", case.metadata, case.auth, case.env)
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert_eq!(m.stream, "my-stream", "{}", case.name);
            assert_eq!(m.mode, case.mode, "{}", case.name);
            assert_eq!(m.activation_lag_count, case.activation, "{}", case.name);
            assert_eq!(
                m.connection.username.as_deref(),
                Some(case.username),
                "{}",
                case.name
            );
            assert_eq!(
                m.connection.password.as_deref(),
                Some("foobarred"),
                "{}",
                case.name
            );
            assert_eq!(m.database_index, 0, "{}", case.name);
            assert_eq!(m.connection.tls.enabled, case.tls, "{}", case.name);
        }
    }

    /// KEDA's `TestParseRedisStreamsMetadataForInvalidCases`.
    #[test]
    fn parse_redis_streams_metadata_for_invalid_cases() {
        const ENV: Pairs = &[
            ("REDIS_SERVER", "myredis:6379"),
            ("REDIS_HOST", "myredis"),
            ("REDIS_PORT", "6379"),
            ("REDIS_PASSWORD", ""),
        ];
        let cases: &[(&str, Pairs, &str)] = &[
            (
                "missing address as well as host/port",
                &[
                    ("stream", "my-stream"),
                    ("pendingEntriesCount", "5"),
                    ("lagCount", "5"),
                    ("consumerGroup", "my-stream-consumer-group"),
                ],
                "address",
            ),
            (
                "host present but missing port",
                &[
                    ("stream", "my-stream"),
                    ("pendingEntriesCount", "5"),
                    ("lagCount", "5"),
                    ("consumerGroup", "my-stream-consumer-group"),
                    ("host", "REDIS_HOST"),
                ],
                "address",
            ),
            (
                "port present but missing host",
                &[
                    ("stream", "my-stream"),
                    ("pendingEntriesCount", "5"),
                    ("lagCount", "5"),
                    ("consumerGroup", "my-stream-consumer-group"),
                    ("port", "REDIS_PORT"),
                ],
                "address",
            ),
            (
                "missing stream",
                &[
                    ("pendingEntriesCount", "5"),
                    ("consumerGroup", "my-stream-consumer-group"),
                    ("address", "REDIS_HOST"),
                ],
                "stream",
            ),
            (
                "invalid lag",
                &[
                    ("stream", "my-stream"),
                    ("consumerGroup", "my-stream-consumer-group"),
                    ("pendingEntriesCount", "5"),
                    ("lagCount", "junk"),
                    ("host", "REDIS_HOST"),
                    ("port", "REDIS_PORT"),
                    ("databaseIndex", "0"),
                    ("enableTLS", "false"),
                ],
                "lagCount",
            ),
            (
                "invalid pendingEntriesCount",
                &[
                    ("stream", "my-stream"),
                    ("consumerGroup", "my-stream-consumer-group"),
                    ("pendingEntriesCount", "junk"),
                    ("host", "REDIS_HOST"),
                    ("port", "REDIS_PORT"),
                    ("databaseIndex", "0"),
                    ("enableTLS", "false"),
                ],
                "pendingEntriesCount",
            ),
            (
                "invalid streamLength",
                &[
                    ("stream", "my-stream"),
                    ("streamLength", "junk"),
                    ("host", "REDIS_HOST"),
                    ("port", "REDIS_PORT"),
                    ("databaseIndex", "0"),
                    ("enableTLS", "false"),
                ],
                "streamLength",
            ),
            (
                "invalid databaseIndex",
                &[
                    ("stream", "my-stream"),
                    ("consumerGroup", "my-stream-consumer-group"),
                    ("pendingEntriesCount", "15"),
                    ("address", "REDIS_SERVER"),
                    ("databaseIndex", "junk"),
                    ("enableTLS", "false"),
                ],
                "databaseIndex",
            ),
            (
                "invalid enableTLS",
                &[
                    ("stream", "my-stream"),
                    ("consumerGroup", "my-stream-consumer-group"),
                    ("pendingEntriesCount", "15"),
                    ("address", "REDIS_SERVER"),
                    ("databaseIndex", "1"),
                    ("enableTLS", "no"),
                ],
                "enableTLS",
            ),
            // Beyond KEDA's table: a target that does not apply to the mode is still checked.
            (
                "invalid pendingEntriesCount in length mode",
                &[
                    ("stream", "my-stream"),
                    ("pendingEntriesCount", "junk"),
                    ("address", "a:1"),
                ],
                "pendingEntriesCount",
            ),
            (
                "invalid activationLagCount",
                &[
                    ("stream", "my-stream"),
                    ("activationLagCount", "x"),
                    ("address", "a:1"),
                ],
                "activationLagCount",
            ),
        ];
        for (name, metadata, key) in cases {
            let errors = parse("redis-streams", metadata, &[], ENV)
                .map(|m| m.mode)
                .expect_err(name);
            assert!(
                errors.0.iter().any(|e| e.key == *key),
                "{name}: expected `{key}`, got {errors}"
            );
            assert!(errors.0.iter().all(|e| e.hint.is_some()), "{name}");
        }
    }

    /// KEDA's `TestRedisStreamsGetMetricSpecForScaling`.
    #[test]
    fn redis_streams_metric_identifiers() {
        let metadata: Pairs = &[
            ("stream", "my-stream"),
            ("consumerGroup", "my-stream-consumer-group"),
            ("pendingEntriesCount", "5"),
            ("address", "REDIS_SERVICE"),
            ("password", "REDIS_PASSWORD"),
            ("databaseIndex", "0"),
            ("enableTLS", "true"),
        ];
        for (index, name) in [
            (0, "s0-redis-streams-my-stream"),
            (1, "s1-redis-streams-my-stream"),
        ] {
            let scaler = RedisStreamsScaler::build(
                &config(
                    "redis-streams",
                    metadata,
                    &[],
                    &[("REDIS_SERVICE", "my-address")],
                    index,
                ),
                &ScalerContext::default(),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let specs = scaler.metric_specs();
            let metric = specs[0].external().unwrap_or_else(|| panic!("external"));
            assert_eq!(metric.name.as_str(), name);
            assert_eq!(metric.target, 5.0);
        }
    }

    struct TopologyCase {
        name: &'static str,
        metadata: Pairs,
        env: Pairs,
        auth: Pairs,
        expected: Result<Metadata, &'static str>,
    }

    fn meta(
        mode: StreamMode,
        activation: i64,
        addresses: &[&str],
        connection: ConnectionInfo,
    ) -> Metadata {
        Metadata {
            topology: Topology::Standalone,
            stream: "my-stream".into(),
            mode,
            activation_lag_count: activation,
            database_index: 0,
            connection: ConnectionInfo {
                addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
                ..connection
            },
        }
    }

    fn some(value: &str) -> Option<String> {
        Some(value.to_owned())
    }

    /// KEDA's `TestParseRedisClusterStreamsMetadata` / `TestParseRedisSentinelStreamsMetadata`.
    fn topology_cases() -> Vec<TopologyCase> {
        const HOSTS: (&str, &str) = ("hosts", "a, b, c");
        const PORTS: (&str, &str) = ("ports", "1, 2, 3");
        const STREAM: (&str, &str) = ("stream", "my-stream");
        const GROUP: (&str, &str) = ("consumerGroup", "consumer1");
        const PENDING: (&str, &str) = ("pendingEntriesCount", "5");
        const ABC: &[&str] = &["a:1", "b:2", "c:3"];
        const SEEDS: &[&str] = &[":7001", ":7002"];
        const ENV: Pairs = &[("REDIS_USERNAME", "none"), ("REDIS_PASSWORD", "none")];
        let pending = || StreamMode::PendingEntries {
            consumer_group: "consumer1".into(),
            target: 5,
        };
        let lag = |target| StreamMode::Lag {
            consumer_group: "consumer1".into(),
            target,
        };
        let length = || StreamMode::Length { target: 5 };
        let none = ConnectionInfo::default;
        vec![
            TopologyCase {
                name: "empty metadata",
                metadata: &[],
                env: &[],
                auth: &[],
                expected: Err("address"),
            },
            TopologyCase {
                name: "unequal hosts and ports",
                metadata: &[("hosts", "a, b, c"), ("ports", "1, 2")],
                env: &[],
                auth: &[],
                expected: Err("hosts"),
            },
            TopologyCase {
                name: "no stream name",
                metadata: &[HOSTS, PORTS, PENDING],
                env: &[],
                auth: &[],
                expected: Err("stream"),
            },
            TopologyCase {
                name: "invalid pending entries count",
                metadata: &[
                    STREAM,
                    HOSTS,
                    PORTS,
                    GROUP,
                    ("pendingEntriesCount", "invalid"),
                ],
                env: &[],
                auth: &[],
                expected: Err("pendingEntriesCount"),
            },
            TopologyCase {
                name: "invalid lag",
                metadata: &[STREAM, HOSTS, PORTS, GROUP, ("lagCount", "junk")],
                env: &[],
                auth: &[],
                expected: Err("lagCount"),
            },
            TopologyCase {
                name: "addresses in auth params, pending",
                metadata: &[STREAM, PENDING, GROUP],
                env: &[],
                auth: &[("addresses", ":7001, :7002")],
                expected: Ok(meta(pending(), 0, SEEDS, none())),
            },
            TopologyCase {
                name: "zero activation lag count with lag count",
                metadata: &[
                    STREAM,
                    ("lagCount", "7"),
                    ("activationLagCount", "0"),
                    GROUP,
                ],
                env: &[],
                auth: &[("addresses", ":7001, :7002")],
                expected: Ok(meta(lag(7), 0, SEEDS, none())),
            },
            TopologyCase {
                name: "addresses in auth params, lag",
                metadata: &[
                    STREAM,
                    ("lagCount", "7"),
                    ("activationLagCount", "3"),
                    GROUP,
                ],
                env: &[],
                auth: &[("addresses", ":7001, :7002")],
                expected: Ok(meta(lag(7), 3, SEEDS, none())),
            },
            TopologyCase {
                name: "hosts and ports in auth params",
                metadata: &[STREAM, PENDING, GROUP],
                env: &[],
                auth: &[("hosts", "   a, b,    c "), ("ports", "1, 2, 3")],
                expected: Ok(meta(pending(), 0, ABC, none())),
            },
            TopologyCase {
                name: "username in auth params",
                metadata: &[HOSTS, PORTS, STREAM, PENDING, GROUP],
                env: &[],
                auth: &[("username", "username")],
                expected: Ok(meta(
                    pending(),
                    0,
                    ABC,
                    ConnectionInfo {
                        username: some("username"),
                        ..none()
                    },
                )),
            },
            TopologyCase {
                name: "username in metadata",
                metadata: &[
                    HOSTS,
                    PORTS,
                    STREAM,
                    PENDING,
                    GROUP,
                    ("username", "username"),
                ],
                env: &[],
                auth: &[],
                expected: Ok(meta(
                    pending(),
                    0,
                    ABC,
                    ConnectionInfo {
                        username: some("username"),
                        ..none()
                    },
                )),
            },
            TopologyCase {
                name: "username from env",
                metadata: &[
                    HOSTS,
                    PORTS,
                    STREAM,
                    PENDING,
                    GROUP,
                    ("usernameFromEnv", "REDIS_USERNAME"),
                ],
                env: ENV,
                auth: &[],
                expected: Ok(meta(
                    pending(),
                    0,
                    ABC,
                    ConnectionInfo {
                        username: some("none"),
                        ..none()
                    },
                )),
            },
            TopologyCase {
                name: "password in auth params",
                metadata: &[HOSTS, PORTS, STREAM, PENDING, GROUP],
                env: &[],
                auth: &[("password", "password")],
                expected: Ok(meta(
                    pending(),
                    0,
                    ABC,
                    ConnectionInfo {
                        password: some("password"),
                        ..none()
                    },
                )),
            },
            TopologyCase {
                name: "password from env",
                metadata: &[
                    HOSTS,
                    PORTS,
                    STREAM,
                    PENDING,
                    GROUP,
                    ("passwordFromEnv", "REDIS_PASSWORD"),
                ],
                env: ENV,
                auth: &[],
                expected: Ok(meta(
                    pending(),
                    0,
                    ABC,
                    ConnectionInfo {
                        password: some("none"),
                        ..none()
                    },
                )),
            },
            TopologyCase {
                name: "enableTLS without unsafeSsl",
                metadata: &[STREAM, PENDING, GROUP, ("enableTLS", "true")],
                env: &[],
                auth: &[("addresses", ":7001, :7002")],
                expected: Ok(meta(
                    pending(),
                    0,
                    SEEDS,
                    ConnectionInfo {
                        tls: TlsSettings {
                            enabled: true,
                            ..TlsSettings::default()
                        },
                        ..none()
                    },
                )),
            },
            TopologyCase {
                name: "enableTLS with unsafeSsl",
                metadata: &[
                    STREAM,
                    PENDING,
                    GROUP,
                    ("enableTLS", "true"),
                    ("unsafeSsl", "true"),
                ],
                env: &[],
                auth: &[("addresses", ":7001, :7002")],
                expected: Ok(meta(
                    pending(),
                    0,
                    SEEDS,
                    ConnectionInfo {
                        tls: TlsSettings {
                            enabled: true,
                            unsafe_ssl: true,
                            ..TlsSettings::default()
                        },
                        ..none()
                    },
                )),
            },
            TopologyCase {
                name: "tls in auth params",
                metadata: &[HOSTS, PORTS, STREAM, PENDING, GROUP],
                env: &[],
                auth: &[
                    ("password", "password"),
                    ("tls", "enable"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                    ("keyPassword", "keeyPassword"),
                ],
                expected: Ok(meta(
                    pending(),
                    0,
                    ABC,
                    ConnectionInfo {
                        password: some("password"),
                        tls: TlsSettings {
                            enabled: true,
                            unsafe_ssl: false,
                            ca: some("caaa"),
                            cert: some("ceert"),
                            key: some("keey"),
                            key_password: some("keeyPassword"),
                        },
                        ..none()
                    },
                )),
            },
            TopologyCase {
                name: "stream only: length mode",
                metadata: &[STREAM],
                env: &[],
                auth: &[("addresses", ":7001, :7002")],
                expected: Ok(meta(length(), 0, SEEDS, none())),
            },
            TopologyCase {
                name: "stream and group: pending mode",
                metadata: &[STREAM, GROUP],
                env: &[],
                auth: &[("addresses", ":7001, :7002")],
                expected: Ok(meta(pending(), 0, SEEDS, none())),
            },
            TopologyCase {
                name: "sentinel settings in auth params",
                metadata: &[HOSTS, PORTS, STREAM, PENDING, GROUP],
                env: &[],
                auth: &[
                    ("sentinelUsername", "su"),
                    ("sentinelPassword", "sp"),
                    ("sentinelMaster", "sm"),
                ],
                expected: Ok(meta(
                    pending(),
                    0,
                    ABC,
                    ConnectionInfo {
                        sentinel_username: some("su"),
                        sentinel_password: some("sp"),
                        sentinel_master: some("sm"),
                        ..none()
                    },
                )),
            },
        ]
    }

    #[test]
    fn parse_redis_cluster_and_sentinel_streams_metadata() {
        for (trigger_type, topology) in [
            ("redis-cluster-streams", Topology::Cluster),
            ("redis-sentinel-streams", Topology::Sentinel),
        ] {
            for case in topology_cases() {
                match (
                    case.expected,
                    parse(trigger_type, case.metadata, case.auth, case.env),
                ) {
                    (Ok(expected), Ok(got)) => {
                        assert_eq!(
                            got,
                            Metadata {
                                topology,
                                ..expected
                            },
                            "{trigger_type}: {}",
                            case.name
                        )
                    }
                    (Err(key), Err(errors)) => {
                        assert!(
                            errors.0.iter().any(|e| e.key == key),
                            "{trigger_type}: {}: expected `{key}`, got {errors}",
                            case.name
                        )
                    }
                    (expected, got) => panic!(
                        "{trigger_type}: {}: expected {expected:?}, got {got:?}",
                        case.name
                    ),
                }
            }
        }
    }

    /// The metric target follows the mode (KEDA's `GetMetricSpecForScaling`).
    #[test]
    fn metric_target_follows_the_mode() {
        let cases: &[(Pairs, f64)] = &[
            (
                &[
                    ("stream", "s"),
                    ("address", "a:1"),
                    ("streamLength", "50"),
                    ("pendingEntriesCount", "7"),
                ],
                50.0,
            ),
            (
                &[
                    ("stream", "s"),
                    ("address", "a:1"),
                    ("consumerGroup", "g"),
                    ("streamLength", "50"),
                    ("pendingEntriesCount", "7"),
                ],
                7.0,
            ),
            (
                &[
                    ("stream", "s"),
                    ("address", "a:1"),
                    ("consumerGroup", "g"),
                    ("lagCount", "9"),
                    ("pendingEntriesCount", "7"),
                ],
                9.0,
            ),
            // lagCount without a group is ignored.
            (
                &[("stream", "s"), ("address", "a:1"), ("lagCount", "9")],
                5.0,
            ),
        ];
        for (metadata, target) in cases {
            let scaler = RedisStreamsScaler::build(
                &config("redis-streams", metadata, &[], &[], 0),
                &ScalerContext::default(),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let specs = scaler.metric_specs();
            assert_eq!(
                specs[0].external().map(|m| m.target),
                Some(*target),
                "{metadata:?}"
            );
        }
    }
}
