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
//! # Sampling
//!
//! As KEDA: `XLEN` in stream-length mode (0 for a missing stream); the count of `XPENDING` in
//! pending-entries mode (a missing stream or group is an error, `NOGROUP`); in lag mode `INFO
//! server` (from the stream's master in a cluster) must report `redis_version` 7 or later, then
//! the group's `lag` from `XINFO GROUPS` (-1 when Redis cannot compute it after deletions, as
//! KEDA's client reports it), 0 when the stream does not exist, the stream's `XLEN` when the
//! group does not exist yet. Connections are shared as for the `redis` trigger (see there),
//! with the same error categories.
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
use redis::{FromRedisValue, Value};
use scaler_core::metric::{ExternalMetric, MetricSpec};
use scaler_core::params::{ParamError, ParamReader, order};
use scaler_core::registry::{ScalerKind, TriggerConfig};
use scaler_core::{MetricName, ParamErrors, Sample, SampleRequest, Scaler, ScalerError};

use crate::ScalerContext;
use crate::kafka::build_metric;
use crate::redis_client::{CommandError, ConnectionSettings, Routing};
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
    connection: ConnectionSettings,
    context: ScalerContext,
}

impl RedisStreamsScaler {
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    async fn run<T: FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
        routing: Routing<'_>,
    ) -> Result<T, CommandError> {
        self.context
            .redis()
            .run(&self.connection, cmd, routing)
            .await
    }

    fn fail(&self, doing: &str) -> impl FnOnce(CommandError) -> ScalerError + '_ {
        let doing = doing.to_owned();
        move |error| error.into_scaler_error(&self.connection, &doing)
    }

    /// `XLEN stream`: 0 while the stream does not exist.
    async fn stream_length(&self) -> Result<i64, ScalerError> {
        let stream = &self.metadata.stream;
        let mut cmd = redis::cmd("XLEN");
        cmd.arg(stream);
        self.run(&cmd, Routing::ByCommand)
            .await
            .map_err(self.fail(&format!("reading the length of stream `{stream}`")))
    }

    /// The count of `XPENDING stream group` (delivered, not acknowledged). As in KEDA, a missing
    /// stream or group is an error (`NOGROUP`).
    async fn pending_entries(&self, group: &str) -> Result<i64, ScalerError> {
        let stream = &self.metadata.stream;
        let mut cmd = redis::cmd("XPENDING");
        cmd.arg(stream).arg(group);
        let (count, _, _, _): (i64, Value, Value, Value) = self
            .run(&cmd, Routing::ByCommand)
            .await
            .map_err(self.fail(&format!(
                "reading the pending entries of group `{group}` on stream `{stream}`"
            )))?;
        Ok(count)
    }

    /// KEDA's lag mode: Redis 7 or later, then the group's `lag` from `XINFO GROUPS`; 0 while
    /// the stream does not exist, the stream's length while the group does not.
    async fn lag(&self, group: &str) -> Result<i64, ScalerError> {
        let stream = &self.metadata.stream;
        let mut info = redis::cmd("INFO");
        info.arg("server");
        let info: String = match self.run(&info, Routing::NodeOf(stream)).await {
            Ok(info) => info,
            Err(error) if error.is_connection_failure() => {
                return Err(error.into_scaler_error(&self.connection, "reading INFO server"));
            }
            Err(error) => {
                let error = error.into_scaler_error(&self.connection, "reading INFO server");
                return Err(ScalerError::query(format!(
                    "could not find Redis version: {error}"
                )));
            }
        };
        check_lag_support(&info)?;

        let mut groups = redis::cmd("XINFO");
        groups.arg("GROUPS").arg(stream);
        match self.run::<Value>(&groups, Routing::ByCommand).await {
            Ok(groups) => {
                if let Some(lag) = group_lag(groups, group) {
                    return Ok(lag);
                }
            }
            // The stream has not been created yet: no lag.
            Err(error) if error.is_server_error("ERR", "no such key") => return Ok(0),
            Err(error) if error.is_connection_failure() => {
                return Err(error.into_scaler_error(
                    &self.connection,
                    &format!("reading the groups of stream `{stream}`"),
                ));
            }
            // KEDA ignores any other failure here and falls back to the length.
            Err(_) => {}
        }
        // The group is not registered yet (its consumers are scaled to zero): everything in
        // the stream is lag.
        self.stream_length().await
    }
}

/// KEDA's version check: `redis_version` in INFO, major version 7 or later.
fn check_lag_support(info: &str) -> Result<(), ScalerError> {
    let version = info.lines().find_map(|line| {
        let mut parts = line.split(':');
        match (parts.next(), parts.next()) {
            (Some("redis_version"), Some(value)) => Some(value.trim().to_owned()),
            _ => None,
        }
    });
    let Some(version) = version else {
        return Err(ScalerError::query("could not find Redis version number"));
    };
    let major: i64 = version
        .split('.')
        .next()
        .unwrap_or_default()
        .parse()
        .map_err(|_| {
            ScalerError::query(format!(
                "redis version could not be converted to number: {version:?}"
            ))
        })?;
    if major < 7 {
        return Err(ScalerError::query(format!(
            "redis version 7+ required for lag (the server runs {version}); drop lagCount to scale on pending entries"
        )));
    }
    Ok(())
}

/// The `lag` of `group` in an `XINFO GROUPS` answer; `None` when the group is not there. A
/// lag Redis cannot compute (`nil`, after entries were deleted) is -1, as KEDA's client
/// reports it.
fn group_lag(groups: Value, group: &str) -> Option<i64> {
    let Value::Array(groups) = groups else {
        return None;
    };
    groups.into_iter().find_map(|entry| {
        let fields = fields(entry);
        let name = fields
            .iter()
            .find(|(key, _)| key == "name")
            .and_then(|(_, value)| redis::from_redis_value::<String>(value.clone()).ok())?;
        if name != group {
            return None;
        }
        let lag = fields
            .into_iter()
            .find(|(key, _)| key == "lag")
            .map(|(_, value)| value);
        Some(match lag {
            Some(Value::Nil) | None => -1,
            Some(value) => redis::from_redis_value::<i64>(value).unwrap_or(-1),
        })
    })
}

/// The field/value pairs of a RESP2 flat array or a RESP3 map.
fn fields(entry: Value) -> Vec<(String, Value)> {
    let pairs: Vec<(Value, Value)> = match entry {
        Value::Map(pairs) => pairs,
        Value::Array(items) => {
            let mut items = items.into_iter();
            let mut pairs = Vec::new();
            while let (Some(key), Some(value)) = (items.next(), items.next()) {
                pairs.push((key, value));
            }
            pairs
        }
        _ => Vec::new(),
    };
    pairs
        .into_iter()
        .filter_map(|(key, value)| {
            redis::from_redis_value::<String>(key)
                .ok()
                .map(|key| (key, value))
        })
        .collect()
}

impl ScalerKind<ScalerContext> for RedisStreamsScaler {
    const TYPES: &'static [&'static str] = &[
        "redis-streams",
        "redis-cluster-streams",
        "redis-sentinel-streams",
    ];

    fn build(
        config: &TriggerConfig,
        context: &ScalerContext,
    ) -> Result<Arc<dyn Scaler>, ParamErrors> {
        let (metadata, metric) = build_metric(
            config,
            Metadata::parse(config),
            Metadata::metric_local_name,
            |m| m.mode.target(),
        )?;
        let connection = ConnectionSettings::new(
            metadata.topology,
            &metadata.connection,
            metadata.database_index,
            context.settings().default_timeout,
        );
        Ok(Arc::new(Self {
            trigger_type: config.trigger_type.clone(),
            metadata,
            metric,
            connection,
            context: context.clone(),
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

    fn query_key(&self, _metric: &MetricName) -> Option<String> {
        let mode = match &self.metadata.mode {
            StreamMode::Length { .. } => "length".to_owned(),
            StreamMode::PendingEntries { consumer_group, .. } => {
                format!("pending/{consumer_group}")
            }
            StreamMode::Lag { consumer_group, .. } => format!("lag/{consumer_group}"),
        };
        Some(format!(
            "{}|{}|stream={}|{mode}",
            self.trigger_type,
            self.connection.identity(),
            self.metadata.stream
        ))
    }

    async fn sample(&self, _request: SampleRequest<'_>) -> Result<Sample, ScalerError> {
        let value = match &self.metadata.mode {
            StreamMode::Length { .. } => self.stream_length().await?,
            StreamMode::PendingEntries { consumer_group, .. } => {
                self.pending_entries(consumer_group).await?
            }
            StreamMode::Lag { consumer_group, .. } => self.lag(consumer_group).await?,
        };
        Ok(Sample {
            value: value as f64,
            active: value > self.metadata.activation_lag_count,
        })
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

    #[test]
    fn lag_needs_redis_7_as_in_keda() {
        assert!(
            check_lag_support("# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n")
                .is_ok()
        );
        let old = check_lag_support("redis_version:6.2.14\r\n").unwrap_err();
        assert!(
            old.message.contains("redis version 7+ required for lag"),
            "{old}"
        );
        let missing = check_lag_support("redis_mode:standalone\r\n").unwrap_err();
        assert_eq!(missing.message, "could not find Redis version number");
        let garbled = check_lag_support("redis_version:x.1\r\n").unwrap_err();
        assert!(
            garbled.message.contains("could not be converted"),
            "{garbled}"
        );
    }

    #[test]
    fn group_lag_reads_resp2_and_resp3_answers() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let resp2 = Value::Array(vec![
            Value::Array(vec![
                bulk("name"),
                bulk("other"),
                bulk("lag"),
                Value::Int(9),
            ]),
            Value::Array(vec![
                bulk("name"),
                bulk("workers"),
                bulk("entries-read"),
                Value::Nil,
                bulk("lag"),
                Value::Int(4),
            ]),
        ]);
        assert_eq!(group_lag(resp2.clone(), "workers"), Some(4));
        assert_eq!(group_lag(resp2, "missing"), None);
        let resp3 = Value::Array(vec![Value::Map(vec![
            (bulk("name"), bulk("workers")),
            (bulk("lag"), Value::Nil),
        ])]);
        assert_eq!(group_lag(resp3, "workers"), Some(-1));
    }
}
