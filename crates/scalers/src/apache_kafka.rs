//! `apache-kafka` triggers: consumer-group lag through KEDA's experimental kafka-go scaler.
//!
//! Same lag arithmetic, cap and activation as [`crate::kafka`], with a different parameter
//! set: `topic` is a list, there is no `version`, `fullMetadata`, `unsafeSsl`, OAuth or
//! Kerberos configuration, and SASL offers `aws_msk_iam` directly.
//!
//! # Parameters
//!
//! Sources in lookup order: **M** = trigger metadata, **A** = TriggerAuthentication parameter,
//! **E** = `<key>FromEnv` naming an env var of the scale target's container. Booleans accept Go's
//! `ParseBool` forms; integers are JSON integers.
//!
//! | Key | Src | Default | Meaning |
//! |---|---|---|---|
//! | `bootstrapServers` | M, E | required | Comma list of `host:port` brokers. |
//! | `consumerGroup` | M, E | required | Consumer group. |
//! | `topic` | M, E | – | Comma list of topics. Empty: every topic, and the group must have active members. |
//! | `partitionLimitation` | M | all | Partition ids and ranges, `1,2,10-20`; ignored without `topic`. |
//! | `lagThreshold` | M | `10` | HPA target; must be > 0. |
//! | `activationLagThreshold` | M | `0` | Active when lag > this; must be ≥ 0. |
//! | `offsetResetPolicy` | M | `latest` | `latest` or `earliest`. |
//! | `allowIdleConsumers` | M | `false` | Do not cap the lag at partitions × `lagThreshold`; not with `limitToPartitionsWithLag`. |
//! | `excludePersistentLag` | M | `false` | Ignore partitions whose offset has not moved since the last poll. |
//! | `scaleToZeroOnInvalidOffset` | M | `false` | Partitions without committed offset count 0. |
//! | `limitToPartitionsWithLag` | M | `false` | Cap at partitions with lag; needs `topic`. |
//! | `ensureEvenDistributionOfPartitions` | M | `false` | Round up to a divisor of the partition count. |
//! | `sasl` | M **or** A | `none` | `none`, `plaintext`, `scram_sha256`, `scram_sha512`, `gssapi`, `aws_msk_iam`. Setting it in both places is an error. |
//! | `username`, `password` | A | – | Required by `plaintext`; used by `scram_*`. |
//! | `awsRegion` | M | – | Required by `aws_msk_iam`, which also needs `tls: enable` and AWS credentials (`awsRoleArn`, or `awsAccessKeyID` + `awsSecretAccessKey`, or the TriggerAuthentication's `podIdentity.provider: aws`, which skips the credential checks). |
//! | `tls` | M **or** A | `disable` | `enable` or `disable`. Setting it in both places is an error. |
//! | `ca`, `cert`, `key`, `keyPassword` | A | – | TLS material; with TLS, `cert` and `key` only together. |
//!
//! `sasl: gssapi` passes validation, but KEDA's kafka-go client cannot use it, so the trigger
//! fails to build, as in KEDA.
//!
//! The metric is `s<index>-kafka-<topics joined by ",">`, or `s<index>-kafka-<consumerGroup>-topics`
//! without topics.
//!
//! # Sampling
//!
//! As KEDA's kafka-go scaler: with `topic`, the partitions of the listed topics (a listed topic
//! that does not exist is skipped, since KEDA filters the cluster's metadata), limited by
//! `partitionLimitation`. Without `topic`, the group must have active members (DescribeGroups;
//! otherwise the poll fails with "no active members in group …"), and then every topic of the
//! cluster counts. Committed offsets come from one OffsetFetch (a partition missing from the
//! answer counts as committed offset 0; an empty answer is an error) and latest offsets from
//! ListOffsets; the lag, cap and activation arithmetic is [`crate::kafka`]'s.
//!
//! Differences from KEDA: `sasl: aws_msk_iam` returns an `unsupported` error when sampled (no
//! SigV4 signing nor AWS credential resolution yet). librdkafka's mock cluster does not implement DescribeGroups, so the
//! no-topic path is exercised against real brokers only.
//!
//! # Example
//!
//! ```yaml
//! triggers:
//! - type: apache-kafka
//!   metadata:
//!     bootstrapServers: kafka.svc:9092
//!     consumerGroup: my-group
//!     topic: test-topic
//!     lagThreshold: "50"
//!     awsRegion: us-east-1     # with sasl: aws_msk_iam and tls: enable in the TriggerAuthentication
//!   authenticationRef:
//!     name: keda-trigger-auth-kafka-credential
//! ```

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use scaler_core::metric::{ExternalMetric, MetricName, MetricSpec};
use scaler_core::params::{ParamError, ParamReader, order};
use scaler_core::registry::{ScalerKind, TriggerConfig};
use scaler_core::{ParamErrors, Sample, SampleRequest, Scaler, ScalerError};

use crate::ScalerContext;
use crate::kafka::{
    LagError, LagRules, MissingCommitted, OffsetResetPolicy, PreviousOffsets, TotalLag,
    build_metric, total_lag,
};
use crate::kafka_auth::{AwsAuthorization, Tls, TlsMaterial, read_aws_authorization, single_enum};
use crate::kafka_client::{
    KafkaClientError, KafkaConnection, SaslSettings, TopicPartitions, request_timeout,
};
use thiserror::Error;

mod defaults {
    pub const LAG_THRESHOLD: &str = "10";
    pub const ACTIVATION_LAG_THRESHOLD: &str = "0";
}

/// SCRAM hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

/// The SASL mechanism of an `apache-kafka` trigger.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Sasl {
    #[default]
    None,
    Plaintext {
        username: String,
        password: String,
    },
    /// KEDA does not require credentials for SCRAM; missing ones fail at the broker.
    Scram {
        mechanism: ScramMechanism,
        username: Option<String>,
        password: Option<String>,
    },
    /// Accepted by the parameters, rejected when the scaler is built (as in KEDA).
    Gssapi,
    AwsMskIam {
        region: String,
        authorization: AwsAuthorization,
    },
}

/// An `apache-kafka` trigger's parameters, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub bootstrap_servers: Vec<String>,
    pub consumer_group: String,
    /// Empty: every topic of the cluster.
    pub topics: Vec<String>,
    /// `None` = all partitions (always `None` without topics).
    pub partition_limitation: Option<Vec<i64>>,
    pub lag_threshold: i64,
    pub activation_lag_threshold: i64,
    pub offset_reset_policy: OffsetResetPolicy,
    pub allow_idle_consumers: bool,
    pub exclude_persistent_lag: bool,
    pub scale_to_zero_on_invalid_offset: bool,
    pub limit_to_partitions_with_lag: bool,
    pub ensure_even_distribution_of_partitions: bool,
    pub sasl: Sasl,
    pub tls: Tls,
}

/// KEDA's typed-config list of integers with `-` ranges: items trimmed, each side of a range
/// decoded as a JSON integer.
pub fn parse_int_ranges(value: &str) -> Result<Vec<i64>, String> {
    let mut items = Vec::new();
    for (index, item) in value.split(',').map(str::trim).enumerate() {
        let int = |text: &str| {
            serde_json::from_str::<i64>(text)
                .map_err(|_| format!("slice element {index}: {text:?} is not an integer"))
        };
        if item.contains('-') {
            let bounds: Vec<&str> = item.split('-').collect();
            let [start, end] = bounds[..] else {
                return Err(format!(
                    "slice element {index}: expected format start-end, got {item:?}"
                ));
            };
            items.extend(int(start)?..=int(end)?);
        } else {
            items.push(int(item)?);
        }
    }
    Ok(items)
}

fn both_places(reader: &mut ParamReader<'_>, key: &'static str) {
    let params = reader.params();
    let set = |map: &std::collections::BTreeMap<String, String>| {
        map.get(key).is_some_and(|value| !value.is_empty())
    };
    if set(&params.metadata) && set(&params.auth_params) {
        reader.error(
            ParamError::new(
                key,
                format!(
                    "unable to set `{key}` in both ScaledObject and TriggerAuthentication together"
                ),
            )
            .with_hint(format!(
                "remove `{key}` from either the trigger metadata or the TriggerAuthentication"
            )),
        );
    }
}

impl Metadata {
    /// Reads and validates an `apache-kafka` trigger's parameters, reporting every problem.
    pub fn parse(config: &TriggerConfig) -> Result<Self, ParamErrors> {
        let mut r = ParamReader::new(&config.params);
        let bootstrap_servers = r.key("bootstrapServers", order::M_E).required().list();
        let consumer_group = r.key("consumerGroup", order::M_E).required().string();
        let topics = r.key("topic", order::M_E).list().unwrap_or_default();
        let partition_limitation = r.key("partitionLimitation", order::M).parse_with(
            "write partition ids and ranges, like \"1,2,10-20\"",
            parse_int_ranges,
        );
        let lag_threshold = r
            .key("lagThreshold", order::M)
            .default(defaults::LAG_THRESHOLD)
            .int();
        let activation_lag_threshold = r
            .key("activationLagThreshold", order::M)
            .default(defaults::ACTIVATION_LAG_THRESHOLD)
            .int();
        let offset_reset_policy = OffsetResetPolicy::read(&mut r);
        let mut flag = |name: &'static str| r.key(name, order::M).default("false").bool();
        let allow_idle_consumers = flag("allowIdleConsumers");
        let exclude_persistent_lag = flag("excludePersistentLag");
        let scale_to_zero_on_invalid_offset = flag("scaleToZeroOnInvalidOffset");
        let limit_to_partitions_with_lag = flag("limitToPartitionsWithLag");
        let ensure_even_distribution_of_partitions = flag("ensureEvenDistributionOfPartitions");
        const MODES: &[&str] = &[
            "none",
            "plaintext",
            "scram_sha256",
            "scram_sha512",
            "gssapi",
            "aws_msk_iam",
        ];
        let sasl_mode = single_enum(&mut r, "sasl", order::M_A, MODES, Some("none"));
        let username = r.key("username", order::A).string();
        let password = r.key("password", order::A).string();
        let aws_region = r.key("awsRegion", order::M).string();
        let tls_mode = single_enum(
            &mut r,
            "tls",
            order::M_A,
            &["enable", "disable"],
            Some("disable"),
        );
        let material = TlsMaterial::read(&mut r);

        if lag_threshold.is_some_and(|value| value <= 0) {
            r.error(
                ParamError::new("lagThreshold", "lagThreshold must be a positive number")
                    .with_hint("set `lagThreshold` to an integer above 0"),
            );
        }
        if activation_lag_threshold.is_some_and(|value| value < 0) {
            r.error(
                ParamError::new(
                    "activationLagThreshold",
                    "activationLagThreshold must be a positive number",
                )
                .with_hint("set `activationLagThreshold` to 0 or more"),
            );
        }
        let on = |value: Option<bool>| value.unwrap_or(false);
        if on(allow_idle_consumers) && on(limit_to_partitions_with_lag) {
            r.error(
                ParamError::new(
                    "limitToPartitionsWithLag",
                    "allowIdleConsumers and limitToPartitionsWithLag cannot be set simultaneously",
                )
                .with_hint("set at most one of `allowIdleConsumers` and `limitToPartitionsWithLag` to true"),
            );
        }
        if topics.is_empty() && on(limit_to_partitions_with_lag) {
            r.error(
                ParamError::new(
                    "limitToPartitionsWithLag",
                    "topic must be specified when using limitToPartitionsWithLag",
                )
                .with_hint("set `metadata.topic` (or `topicFromEnv`)"),
            );
        }
        let tls_enabled = tls_mode.as_deref() == Some("enable");
        if tls_enabled && material.cert.is_some() != material.key.is_some() {
            let missing = if material.cert.is_some() {
                "key"
            } else {
                "cert"
            };
            r.error(
                ParamError::new(missing, "can't set only one of cert or key when using TLS")
                    .with_hint(format!(
                        "add parameter `{missing}` to the TriggerAuthentication, or remove the other one"
                    )),
            );
        }
        let sasl = match sasl_mode.as_deref() {
            Some("plaintext") => match (username, password) {
                (Some(username), Some(password)) => Some(Sasl::Plaintext { username, password }),
                (username, _) => {
                    let missing = if username.is_none() {
                        "username"
                    } else {
                        "password"
                    };
                    r.error(
                        ParamError::new(
                            missing,
                            "username and password must be set when using SASL/PLAINTEXT",
                        )
                        .with_hint(format!(
                            "add parameter `{missing}` to the TriggerAuthentication"
                        )),
                    );
                    None
                }
            },
            Some(mode @ ("scram_sha256" | "scram_sha512")) => Some(Sasl::Scram {
                mechanism: if mode == "scram_sha256" {
                    ScramMechanism::Sha256
                } else {
                    ScramMechanism::Sha512
                },
                username,
                password,
            }),
            Some("gssapi") => Some(Sasl::Gssapi),
            Some("aws_msk_iam") => {
                if aws_region.is_none() {
                    r.error(
                        ParamError::new(
                            "awsRegion",
                            "awsRegion must be set when using AWS MSK IAM",
                        )
                        .with_hint("set `metadata.awsRegion` to the MSK cluster's region"),
                    );
                }
                if !tls_enabled {
                    r.error(
                        ParamError::new("tls", "TLS must be enabled when using AWS MSK IAM")
                            .with_hint("set `tls: enable` in the trigger metadata or the TriggerAuthentication"),
                    );
                }
                match (aws_region, tls_enabled) {
                    (Some(region), true) => {
                        read_aws_authorization(&mut r, config.pod_identity.as_ref()).map(
                            |authorization| Sasl::AwsMskIam {
                                region,
                                authorization,
                            },
                        )
                    }
                    _ => None,
                }
            }
            Some(_) => Some(Sasl::None),
            None => None,
        };
        both_places(&mut r, "sasl");
        both_places(&mut r, "tls");
        let tls = if tls_enabled {
            Tls::Enabled(material)
        } else {
            Tls::Disabled
        };

        let metadata = (|| {
            Some(Self {
                bootstrap_servers: bootstrap_servers?,
                consumer_group: consumer_group?,
                partition_limitation: if topics.is_empty() {
                    None
                } else {
                    partition_limitation
                },
                topics,
                lag_threshold: lag_threshold?,
                activation_lag_threshold: activation_lag_threshold?,
                offset_reset_policy: offset_reset_policy?,
                allow_idle_consumers: allow_idle_consumers?,
                exclude_persistent_lag: exclude_persistent_lag?,
                scale_to_zero_on_invalid_offset: scale_to_zero_on_invalid_offset?,
                limit_to_partitions_with_lag: limit_to_partitions_with_lag?,
                ensure_even_distribution_of_partitions: ensure_even_distribution_of_partitions?,
                sasl: sasl?,
                tls,
            })
        })();
        match metadata {
            Some(metadata) => r.finish(metadata),
            None => Err(r.finish(()).err().unwrap_or_else(|| {
                ParamErrors::single(ParamError::new("metadata", "invalid apache-kafka metadata"))
            })),
        }
    }

    /// `kafka-<topics joined by ",">`, or `kafka-<consumerGroup>-topics` without topics.
    pub fn metric_local_name(&self) -> String {
        if self.topics.is_empty() {
            format!("kafka-{}-topics", self.consumer_group)
        } else {
            format!("kafka-{}", self.topics.join(","))
        }
    }
}

/// Why an `apache-kafka` trigger could not be sampled.
#[derive(Debug, Error)]
enum ApacheKafkaError {
    #[error("{0}")]
    Client(#[from] KafkaClientError),
    #[error("{}", crate::kafka_auth::MSK_IAM_UNSUPPORTED)]
    UnsupportedSasl,
    #[error("no active members in group {group}, group-state is {state}")]
    NoActiveMembers { group: String, state: String },
    #[error("{0}")]
    Lag(#[from] LagError),
}

impl ApacheKafkaError {
    fn into_scaler_error(self, group: &str) -> ScalerError {
        let context = format!("apache-kafka lag of group `{group}`");
        match self {
            Self::Client(error) => error.into_scaler_error(&context),
            Self::UnsupportedSasl => ScalerError::new(
                scaler_core::ErrorCategory::Unsupported,
                format!("{context}: {self}"),
            ),
            other => ScalerError::query(format!("{context}: {other}")),
        }
    }
}

/// An `apache-kafka` trigger.
pub struct ApacheKafkaScaler {
    metadata: Metadata,
    metric: ExternalMetric,
    context: ScalerContext,
    /// `None` for `aws_msk_iam`, which this build cannot speak.
    connection: Option<KafkaConnection>,
    previous: Mutex<PreviousOffsets>,
}

impl fmt::Debug for ApacheKafkaScaler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApacheKafkaScaler")
            .field("connection", &self.connection)
            .field("group", &self.metadata.consumer_group)
            .field("topics", &self.metadata.topics)
            .finish()
    }
}

impl ApacheKafkaScaler {
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn rules(&self) -> LagRules {
        let m = &self.metadata;
        LagRules {
            lag_threshold: m.lag_threshold,
            offset_reset_policy: m.offset_reset_policy,
            scale_to_zero_on_invalid_offset: m.scale_to_zero_on_invalid_offset,
            exclude_persistent_lag: m.exclude_persistent_lag,
            allow_idle_consumers: m.allow_idle_consumers,
            limit_to_partitions_with_lag: m.limit_to_partitions_with_lag,
            ensure_even_distribution_of_partitions: m.ensure_even_distribution_of_partitions,
            missing_committed: MissingCommitted::Zero,
        }
    }

    fn connection(metadata: &Metadata) -> Option<KafkaConnection> {
        let sasl = match &metadata.sasl {
            Sasl::None | Sasl::Gssapi => SaslSettings::None,
            Sasl::Plaintext { username, password } => SaslSettings::Plain {
                username: username.clone(),
                password: password.clone(),
            },
            // KEDA passes missing SCRAM credentials on as empty strings; the broker refuses them.
            Sasl::Scram {
                mechanism,
                username,
                password,
            } => {
                let username = username.clone().unwrap_or_default();
                let password = password.clone().unwrap_or_default();
                match mechanism {
                    ScramMechanism::Sha256 => SaslSettings::ScramSha256 { username, password },
                    ScramMechanism::Sha512 => SaslSettings::ScramSha512 { username, password },
                }
            }
            Sasl::AwsMskIam { .. } => return None,
        };
        Some(KafkaConnection::new(
            &metadata.bootstrap_servers,
            metadata.tls.settings(false).as_ref(),
            &sasl,
        ))
    }

    async fn lag(&self) -> Result<TotalLag, ApacheKafkaError> {
        let connection = self
            .connection
            .as_ref()
            .ok_or(ApacheKafkaError::UnsupportedSasl)?;
        let timeout = request_timeout(self.context.settings().default_timeout);
        let kafka = self.context.kafka();
        let group = &self.metadata.consumer_group;
        let described = if self.metadata.topics.is_empty() {
            // KEDA: the group must have active members; then every topic of the cluster.
            let description = kafka.describe_group(connection, group, timeout).await?;
            if description.members == 0 {
                return Err(ApacheKafkaError::NoActiveMembers {
                    group: group.clone(),
                    state: description.state,
                });
            }
            kafka.partitions(connection, None, timeout).await?
        } else {
            // KEDA reads the whole cluster's metadata and keeps the listed topics, so a listed
            // topic that does not exist is no error; here only the listed topics are asked for.
            let mut described = TopicPartitions::new();
            for topic in &self.metadata.topics {
                match kafka
                    .partitions(connection, Some(std::slice::from_ref(topic)), timeout)
                    .await
                {
                    Ok(found) => described.extend(found),
                    Err(error) if error.is_unknown_topic() => {}
                    Err(error) => return Err(error.into()),
                }
            }
            described
        };
        let partitions: TopicPartitions = described
            .into_iter()
            .map(|(topic, ids)| {
                let ids = ids
                    .into_iter()
                    .filter(|id| {
                        self.metadata
                            .partition_limitation
                            .as_ref()
                            .is_none_or(|allowed| allowed.contains(&i64::from(*id)))
                    })
                    .collect();
                (topic, ids)
            })
            .collect();
        let (committed, latest) = tokio::join!(
            kafka.committed_offsets(connection, group, &partitions, timeout),
            kafka.latest_offsets(connection, &partitions, timeout),
        );
        let (committed, latest) = (committed?, latest?);
        let mut previous = self.previous.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(total_lag(
            &self.rules(),
            &committed,
            &latest,
            &mut previous,
        )?)
    }
}

impl ScalerKind<ScalerContext> for ApacheKafkaScaler {
    const TYPES: &'static [&'static str] = &["apache-kafka"];

    fn build(
        config: &TriggerConfig,
        context: &ScalerContext,
    ) -> Result<Arc<dyn Scaler>, ParamErrors> {
        let (metadata, metric) = build_metric(
            config,
            Metadata::parse(config),
            Metadata::metric_local_name,
            |m| m.lag_threshold,
        )?;
        if metadata.sasl == Sasl::Gssapi {
            // KEDA's kafka-go client has no GSSAPI mechanism: the scaler can never be built.
            return Err(ParamErrors::single(
                ParamError::new("sasl", "err sasl type \"gssapi\" given").with_hint(
                    "use the `kafka` trigger type for Kerberos (GSSAPI), or another `sasl` mode",
                ),
            ));
        }
        let connection = Self::connection(&metadata);
        Ok(Arc::new(Self {
            metadata,
            metric,
            context: context.clone(),
            connection,
            previous: Mutex::default(),
        }))
    }
}

#[async_trait]
impl Scaler for ApacheKafkaScaler {
    fn metric_specs(&self) -> Vec<MetricSpec> {
        vec![MetricSpec::External(self.metric.clone())]
    }

    fn activation_target(&self) -> Option<f64> {
        Some(self.metadata.activation_lag_threshold as f64)
    }

    /// Identical triggers share one poll, except with `excludePersistentLag` (per-trigger state).
    fn query_key(&self, _metric: &MetricName) -> Option<String> {
        if self.metadata.exclude_persistent_lag {
            return None;
        }
        let connection = self.connection.as_ref()?;
        Some(format!(
            "apache-kafka|{}|group={}|topics={:?}|partitions={:?}|{:?}|activation={}",
            connection.identity(),
            self.metadata.consumer_group,
            self.metadata.topics,
            self.metadata.partition_limitation,
            self.rules(),
            self.metadata.activation_lag_threshold,
        ))
    }

    async fn sample(&self, _request: SampleRequest<'_>) -> Result<Sample, ScalerError> {
        let lag = self
            .lag()
            .await
            .map_err(|error| error.into_scaler_error(&self.metadata.consumer_group))?;
        Ok(Sample {
            value: lag.lag as f64,
            active: lag.lag_with_persistent > self.metadata.activation_lag_threshold,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use scaler_core::params::TriggerParams;
    use scaler_core::registry::PodIdentity;

    use super::*;

    type Pairs = &'static [(&'static str, &'static str)];

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn config(metadata: &[(&str, &str)], auth: &[(&str, &str)], index: usize) -> TriggerConfig {
        TriggerConfig {
            index,
            trigger_type: "apache-kafka".into(),
            params: TriggerParams {
                metadata: map(metadata),
                auth_params: map(auth),
                resolved_env: BTreeMap::new(),
            },
            ..TriggerConfig::default()
        }
    }

    #[derive(Debug)]
    enum Outcome {
        Ok,
        Err(&'static str),
    }

    fn check(
        name: &str,
        metadata: &[(&str, &str)],
        auth: &[(&str, &str)],
        expected: &Outcome,
    ) -> Option<Metadata> {
        match (expected, Metadata::parse(&config(metadata, auth, 0))) {
            (Outcome::Ok, Ok(metadata)) => Some(metadata),
            (Outcome::Err(key), Err(errors)) => {
                assert!(
                    errors.0.iter().any(|e| e.key == *key),
                    "{name}: expected an error on `{key}`, got {errors}"
                );
                assert!(
                    errors.0.iter().all(|e| e.hint.is_some()),
                    "{name}: every error has a hint"
                );
                None
            }
            (expected, got) => panic!("{name}: expected {expected:?}, got {got:?}"),
        }
    }

    // KEDA's validApacheKafkaMetadata / validApacheKafkaWithAuthParams.
    const VALID: Pairs = &[
        ("bootstrapServers", "broker1:9092,broker2:9092"),
        ("consumerGroup", "my-group"),
        ("topic", "my-topics"),
        ("allowIdleConsumers", "false"),
    ];
    const WITH_AUTH: Pairs = &[
        ("sasl", "plaintext"),
        ("username", "admin"),
        ("password", "admin"),
    ];

    struct MetadataCase {
        name: &'static str,
        metadata: Pairs,
        expected: Outcome,
        brokers: &'static [&'static str],
        topics: &'static [&'static str],
        partitions: Option<&'static [i64]>,
        policy: OffsetResetPolicy,
        allow_idle: bool,
        exclude_persistent: bool,
        limit_to_lag: bool,
        even: bool,
    }

    const BASE: MetadataCase = MetadataCase {
        name: "",
        metadata: &[],
        expected: Outcome::Ok,
        brokers: &["foobar:9092"],
        topics: &["my-topics"],
        partitions: None,
        policy: OffsetResetPolicy::Latest,
        allow_idle: false,
        exclude_persistent: false,
        limit_to_lag: false,
        even: false,
    };

    /// KEDA's `parseApacheKafkaMetadataTestDataset`, run with and without SASL auth params.
    fn metadata_cases() -> Vec<MetadataCase> {
        const B: (&str, &str) = ("bootstrapServers", "foobar:9092");
        const BB: (&str, &str) = ("bootstrapServers", "foo:9092,bar:9092");
        const G: (&str, &str) = ("consumerGroup", "my-group");
        const T: (&str, &str) = ("topic", "my-topics");
        const TWO: &[&str] = &["foo:9092", "bar:9092"];
        vec![
            MetadataCase {
                name: "no consumer group",
                metadata: &[B],
                expected: Outcome::Err("consumerGroup"),
                ..BASE
            },
            MetadataCase {
                name: "no topics",
                metadata: &[B, G],
                topics: &[],
                ..BASE
            },
            MetadataCase {
                name: "partitionLimitation ignored without topics",
                metadata: &[B, G, ("partitionLimitation", "1,2,3,4,5,6")],
                topics: &[],
                ..BASE
            },
            MetadataCase {
                name: "whitespace partitionLimitation",
                metadata: &[B, G, ("partitionLimitation", "           ")],
                topics: &[],
                ..BASE
            },
            MetadataCase {
                name: "empty partitionLimitation",
                metadata: &[B, G, ("partitionLimitation", "")],
                topics: &[],
                ..BASE
            },
            MetadataCase {
                name: "negative lagThreshold",
                metadata: &[B, G, T, ("lagThreshold", "-1")],
                expected: Outcome::Err("lagThreshold"),
                ..BASE
            },
            MetadataCase {
                name: "zero lagThreshold",
                metadata: &[B, G, T, ("lagThreshold", "0")],
                expected: Outcome::Err("lagThreshold"),
                ..BASE
            },
            MetadataCase {
                name: "big lagThreshold",
                metadata: &[
                    B,
                    G,
                    T,
                    ("lagThreshold", "1000000"),
                    ("activationLagThreshold", "0"),
                ],
                ..BASE
            },
            MetadataCase {
                name: "activationLagThreshold zero",
                metadata: &[
                    B,
                    G,
                    T,
                    ("lagThreshold", "10"),
                    ("activationLagThreshold", "0"),
                ],
                ..BASE
            },
            MetadataCase {
                name: "success",
                metadata: &[B, G, T],
                ..BASE
            },
            MetadataCase {
                name: "partitionLimitation list",
                metadata: &[B, G, T, ("partitionLimitation", "1,2,3,4")],
                partitions: Some(&[1, 2, 3, 4]),
                ..BASE
            },
            MetadataCase {
                name: "partitionLimitation range",
                metadata: &[B, G, T, ("partitionLimitation", "1-4")],
                partitions: Some(&[1, 2, 3, 4]),
                ..BASE
            },
            MetadataCase {
                name: "partitionLimitation mixed",
                metadata: &[B, G, T, ("partitionLimitation", "1-4,8,10-12")],
                partitions: Some(&[1, 2, 3, 4, 8, 10, 11, 12]),
                ..BASE
            },
            MetadataCase {
                name: "partitionLimitation not numbers",
                metadata: &[B, G, T, ("partitionLimitation", "a,b,c,d")],
                expected: Outcome::Err("partitionLimitation"),
                ..BASE
            },
            MetadataCase {
                name: "more brokers",
                metadata: &[BB, G, T],
                brokers: TWO,
                ..BASE
            },
            MetadataCase {
                name: "offsetResetPolicy latest",
                metadata: &[BB, G, T, ("offsetResetPolicy", "latest")],
                brokers: TWO,
                ..BASE
            },
            MetadataCase {
                name: "offsetResetPolicy wrong",
                metadata: &[BB, G, T, ("offsetResetPolicy", "foo")],
                expected: Outcome::Err("offsetResetPolicy"),
                ..BASE
            },
            MetadataCase {
                name: "offsetResetPolicy earliest",
                metadata: &[BB, G, T, ("offsetResetPolicy", "earliest")],
                brokers: TWO,
                policy: OffsetResetPolicy::Earliest,
                ..BASE
            },
            MetadataCase {
                name: "allowIdleConsumers malformed",
                metadata: &[B, G, T, ("allowIdleConsumers", "notvalid")],
                expected: Outcome::Err("allowIdleConsumers"),
                ..BASE
            },
            MetadataCase {
                name: "allowIdleConsumers true",
                metadata: &[B, G, T, ("allowIdleConsumers", "true")],
                allow_idle: true,
                ..BASE
            },
            MetadataCase {
                name: "excludePersistentLag malformed",
                metadata: &[B, G, T, ("excludePersistentLag", "notvalid")],
                expected: Outcome::Err("excludePersistentLag"),
                ..BASE
            },
            MetadataCase {
                name: "excludePersistentLag true",
                metadata: &[B, G, T, ("excludePersistentLag", "true")],
                exclude_persistent: true,
                ..BASE
            },
            MetadataCase {
                name: "limitToPartitionsWithLag true",
                metadata: &[B, G, T, ("limitToPartitionsWithLag", "true")],
                limit_to_lag: true,
                ..BASE
            },
            MetadataCase {
                name: "limitToPartitionsWithLag malformed",
                metadata: &[B, G, T, ("limitToPartitionsWithLag", "notvalid")],
                expected: Outcome::Err("limitToPartitionsWithLag"),
                ..BASE
            },
            MetadataCase {
                name: "allowIdle and limit",
                metadata: &[
                    B,
                    G,
                    T,
                    ("allowIdleConsumers", "true"),
                    ("limitToPartitionsWithLag", "true"),
                ],
                expected: Outcome::Err("limitToPartitionsWithLag"),
                ..BASE
            },
            MetadataCase {
                name: "allowIdle, limit false",
                metadata: &[
                    B,
                    G,
                    T,
                    ("allowIdleConsumers", "true"),
                    ("limitToPartitionsWithLag", "false"),
                ],
                allow_idle: true,
                ..BASE
            },
            MetadataCase {
                name: "limit needs topic",
                metadata: &[B, G, ("limitToPartitionsWithLag", "true")],
                expected: Outcome::Err("limitToPartitionsWithLag"),
                ..BASE
            },
            MetadataCase {
                name: "ensureEven without topic is fine",
                metadata: &[B, G, ("ensureEvenDistributionOfPartitions", "true")],
                topics: &[],
                even: true,
                ..BASE
            },
            MetadataCase {
                name: "ensureEven and limit without topic",
                metadata: &[
                    B,
                    G,
                    ("ensureEvenDistributionOfPartitions", "true"),
                    ("limitToPartitionsWithLag", "true"),
                ],
                expected: Outcome::Err("limitToPartitionsWithLag"),
                ..BASE
            },
            // Beyond KEDA's table.
            MetadataCase {
                name: "ensureEven and limit with topic are allowed",
                metadata: &[
                    B,
                    G,
                    T,
                    ("ensureEvenDistributionOfPartitions", "true"),
                    ("limitToPartitionsWithLag", "true"),
                ],
                even: true,
                limit_to_lag: true,
                ..BASE
            },
            MetadataCase {
                name: "topic list",
                metadata: &[B, G, ("topic", "a, b")],
                topics: &["a", "b"],
                ..BASE
            },
            MetadataCase {
                name: "no bootstrapServers",
                metadata: &[G, T],
                expected: Outcome::Err("bootstrapServers"),
                ..BASE
            },
            MetadataCase {
                name: "negative activationLagThreshold",
                metadata: &[B, G, T, ("activationLagThreshold", "-2")],
                expected: Outcome::Err("activationLagThreshold"),
                ..BASE
            },
        ]
    }

    #[test]
    fn parse_apache_kafka_metadata_test_dataset() {
        for case in metadata_cases() {
            for auth in [WITH_AUTH, &[][..]] {
                let Some(m) = check(case.name, case.metadata, auth, &case.expected) else {
                    continue;
                };
                assert_eq!(m.bootstrap_servers, case.brokers, "{}", case.name);
                assert_eq!(m.consumer_group, "my-group", "{}", case.name);
                assert_eq!(m.topics, case.topics, "{}", case.name);
                assert_eq!(
                    m.partition_limitation.as_deref(),
                    case.partitions,
                    "{}",
                    case.name
                );
                assert_eq!(m.offset_reset_policy, case.policy, "{}", case.name);
                assert_eq!(m.allow_idle_consumers, case.allow_idle, "{}", case.name);
                assert_eq!(
                    m.exclude_persistent_lag, case.exclude_persistent,
                    "{}",
                    case.name
                );
                assert_eq!(
                    m.limit_to_partitions_with_lag, case.limit_to_lag,
                    "{}",
                    case.name
                );
                assert_eq!(
                    m.ensure_even_distribution_of_partitions, case.even,
                    "{}",
                    case.name
                );
            }
        }
    }

    /// KEDA's `parseApacheKafkaAuthParamsTestDataset`: `sasl`/`tls` from the TriggerAuthentication.
    #[test]
    fn parse_apache_kafka_auth_params_test_dataset() {
        struct AuthParamsCase {
            name: &'static str,
            auth: Pairs,
            expected: Outcome,
            tls: bool,
        }
        let cases: &[AuthParamsCase] = &[
            AuthParamsCase {
                name: "SASL plaintext",
                auth: &[
                    ("sasl", "plaintext"),
                    ("username", "admin"),
                    ("password", "admin"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthParamsCase {
                name: "SASL scram_sha256",
                auth: &[
                    ("sasl", "scram_sha256"),
                    ("username", "admin"),
                    ("password", "admin"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthParamsCase {
                name: "SASL scram_sha512",
                auth: &[
                    ("sasl", "scram_sha512"),
                    ("username", "admin"),
                    ("password", "admin"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthParamsCase {
                name: "TLS only",
                auth: &[
                    ("tls", "enable"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Outcome::Ok,
                tls: true,
            },
            AuthParamsCase {
                name: "TLS cert/key",
                auth: &[("tls", "enable"), ("cert", "ceert"), ("key", "keey")],
                expected: Outcome::Ok,
                tls: true,
            },
            AuthParamsCase {
                name: "TLS keyPassword",
                auth: &[
                    ("tls", "enable"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                    ("keyPassword", "keeyPassword"),
                ],
                expected: Outcome::Ok,
                tls: true,
            },
            AuthParamsCase {
                name: "TLS CA only",
                auth: &[("tls", "enable"), ("ca", "caaa")],
                expected: Outcome::Ok,
                tls: true,
            },
            AuthParamsCase {
                name: "SASL + TLS",
                auth: &[
                    ("sasl", "plaintext"),
                    ("username", "admin"),
                    ("password", "admin"),
                    ("tls", "enable"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Outcome::Ok,
                tls: true,
            },
            AuthParamsCase {
                name: "SASL + TLS disabled",
                auth: &[
                    ("sasl", "plaintext"),
                    ("username", "admin"),
                    ("password", "admin"),
                    ("tls", "disable"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthParamsCase {
                name: "SASL incorrect type",
                auth: &[
                    ("sasl", "foo"),
                    ("username", "admin"),
                    ("password", "admin"),
                ],
                expected: Outcome::Err("sasl"),
                tls: false,
            },
            AuthParamsCase {
                name: "SASL missing username",
                auth: &[("sasl", "plaintext"), ("password", "admin")],
                expected: Outcome::Err("username"),
                tls: false,
            },
            AuthParamsCase {
                name: "SASL missing password",
                auth: &[("sasl", "plaintext"), ("username", "admin")],
                expected: Outcome::Err("password"),
                tls: false,
            },
            AuthParamsCase {
                name: "TLS missing cert",
                auth: &[("tls", "enable"), ("ca", "caaa"), ("key", "keey")],
                expected: Outcome::Err("cert"),
                tls: false,
            },
            AuthParamsCase {
                name: "TLS missing key",
                auth: &[("tls", "enable"), ("ca", "caaa"), ("cert", "ceert")],
                expected: Outcome::Err("key"),
                tls: false,
            },
            AuthParamsCase {
                name: "TLS invalid",
                auth: &[
                    ("tls", "yes"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Outcome::Err("tls"),
                tls: false,
            },
            AuthParamsCase {
                name: "SASL + TLS incorrect sasl",
                auth: &[
                    ("sasl", "foo"),
                    ("username", "admin"),
                    ("password", "admin"),
                    ("tls", "enable"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Outcome::Err("sasl"),
                tls: false,
            },
            AuthParamsCase {
                name: "SASL + TLS incorrect tls",
                auth: &[
                    ("sasl", "plaintext"),
                    ("username", "admin"),
                    ("password", "admin"),
                    ("tls", "foo"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Outcome::Err("tls"),
                tls: false,
            },
            AuthParamsCase {
                name: "SASL + TLS missing username",
                auth: &[
                    ("sasl", "plaintext"),
                    ("password", "admin"),
                    ("tls", "enable"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Outcome::Err("username"),
                tls: false,
            },
            AuthParamsCase {
                name: "SASL + TLS missing password",
                auth: &[
                    ("sasl", "plaintext"),
                    ("username", "admin"),
                    ("tls", "enable"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Outcome::Err("password"),
                tls: false,
            },
            AuthParamsCase {
                name: "SASL + TLS missing cert",
                auth: &[
                    ("sasl", "plaintext"),
                    ("username", "admin"),
                    ("password", "admin"),
                    ("tls", "enable"),
                    ("ca", "caaa"),
                    ("key", "keey"),
                ],
                expected: Outcome::Err("cert"),
                tls: false,
            },
            AuthParamsCase {
                name: "SASL + TLS missing key",
                auth: &[
                    ("sasl", "plaintext"),
                    ("username", "admin"),
                    ("password", "admin"),
                    ("tls", "enable"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                ],
                expected: Outcome::Err("key"),
                tls: false,
            },
        ];
        for AuthParamsCase {
            name,
            auth,
            expected,
            tls,
        } in cases
        {
            if let Some(m) = check(name, VALID, auth, expected) {
                assert_eq!(m.tls.is_enabled(), *tls, "{name}");
                if let Tls::Enabled(material) = &m.tls {
                    let get = |key: &str| {
                        auth.iter()
                            .find(|(k, _)| *k == key)
                            .map(|(_, v)| (*v).to_owned())
                    };
                    assert_eq!(material.ca, get("ca"), "{name}");
                    assert_eq!(material.cert, get("cert"), "{name}");
                    assert_eq!(material.key, get("key"), "{name}");
                    assert_eq!(material.key_password, get("keyPassword"), "{name}");
                }
            }
        }
    }

    /// KEDA's `parseApacheKafkaAuthParamsTestDataset2`: `sasl`/`tls` in the ScaledObject.
    #[test]
    fn parse_apache_kafka_auth_params_test_dataset2() {
        const B: (&str, &str) = ("bootstrapServers", "foobar:9092");
        const G: (&str, &str) = ("consumerGroup", "my-group");
        const T: (&str, &str) = ("topic", "my-topics");
        const I: (&str, &str) = ("allowIdleConsumers", "true");
        const R: (&str, &str) = ("awsRegion", "us-east-1");
        struct MetadataAndAuthCase {
            name: &'static str,
            metadata: Pairs,
            auth: Pairs,
            expected: Outcome,
            tls: bool,
        }
        let cases: &[MetadataAndAuthCase] = &[
            MetadataAndAuthCase {
                name: "plaintext",
                metadata: &[("sasl", "plaintext"), B, G, T, I],
                auth: &[("username", "admin"), ("password", "admin")],
                expected: Outcome::Ok,
                tls: false,
            },
            MetadataAndAuthCase {
                name: "scram_sha256",
                metadata: &[("sasl", "scram_sha256"), B, G, T, I],
                auth: &[("username", "admin"), ("password", "admin")],
                expected: Outcome::Ok,
                tls: false,
            },
            MetadataAndAuthCase {
                name: "scram_sha512",
                metadata: &[("sasl", "scram_sha512"), B, G, T, I],
                auth: &[("username", "admin"), ("password", "admin")],
                expected: Outcome::Ok,
                tls: false,
            },
            MetadataAndAuthCase {
                name: "TLS only",
                metadata: &[("tls", "enable"), B, G, T, I],
                auth: &[("ca", "caaa"), ("cert", "ceert"), ("key", "keey")],
                expected: Outcome::Ok,
                tls: true,
            },
            MetadataAndAuthCase {
                name: "TLS cert/key",
                metadata: &[("tls", "enable"), B, G, T, I],
                auth: &[("cert", "ceert"), ("key", "keey")],
                expected: Outcome::Ok,
                tls: true,
            },
            MetadataAndAuthCase {
                name: "TLS keyPassword",
                metadata: &[("tls", "enable"), B, G, T, I],
                auth: &[
                    ("cert", "ceert"),
                    ("key", "keey"),
                    ("keyPassword", "keeyPassword"),
                ],
                expected: Outcome::Ok,
                tls: true,
            },
            MetadataAndAuthCase {
                name: "TLS CA only",
                metadata: &[("tls", "enable"), B, G, T, I],
                auth: &[("ca", "caaa")],
                expected: Outcome::Ok,
                tls: true,
            },
            MetadataAndAuthCase {
                name: "SASL + TLS",
                metadata: &[("sasl", "plaintext"), ("tls", "enable"), B, G, T, I],
                auth: &[
                    ("username", "admin"),
                    ("password", "admin"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Outcome::Ok,
                tls: true,
            },
            MetadataAndAuthCase {
                name: "SASL + TLS disabled",
                metadata: &[("sasl", "plaintext"), ("tls", "disable"), B, G, T, I],
                auth: &[("username", "admin"), ("password", "admin")],
                expected: Outcome::Ok,
                tls: false,
            },
            MetadataAndAuthCase {
                name: "SASL incorrect type",
                metadata: &[("sasl", "foo"), B, G, T, I],
                auth: &[("username", "admin"), ("password", "admin")],
                expected: Outcome::Err("sasl"),
                tls: false,
            },
            MetadataAndAuthCase {
                name: "SASL missing username",
                metadata: &[("sasl", "plaintext"), B, G, T, I],
                auth: &[("password", "admin")],
                expected: Outcome::Err("username"),
                tls: false,
            },
            MetadataAndAuthCase {
                name: "SASL missing password",
                metadata: &[("sasl", "plaintext"), B, G, T, I],
                auth: &[("username", "admin")],
                expected: Outcome::Err("password"),
                tls: false,
            },
            MetadataAndAuthCase {
                name: "TLS missing cert",
                metadata: &[("tls", "enable"), B, G, T, I],
                auth: &[("ca", "caaa"), ("key", "keey")],
                expected: Outcome::Err("cert"),
                tls: false,
            },
            MetadataAndAuthCase {
                name: "TLS missing key",
                metadata: &[("tls", "enable"), B, G, T, I],
                auth: &[("ca", "caaa"), ("cert", "ceert")],
                expected: Outcome::Err("key"),
                tls: false,
            },
            MetadataAndAuthCase {
                name: "TLS invalid",
                metadata: &[("tls", "random"), B, G, T, I],
                auth: &[("ca", "caaa"), ("cert", "ceert"), ("key", "keey")],
                expected: Outcome::Err("tls"),
                tls: false,
            },
            MetadataAndAuthCase {
                name: "SASL + TLS incorrect SASL",
                metadata: &[("sasl", "foo"), ("tls", "enable"), B, G, T, I],
                auth: &[
                    ("username", "admin"),
                    ("password", "admin"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Outcome::Err("sasl"),
                tls: false,
            },
            MetadataAndAuthCase {
                name: "SASL + TLS incorrect tls",
                metadata: &[("sasl", "plaintext"), ("tls", "foo"), B, G, T, I],
                auth: &[
                    ("username", "admin"),
                    ("password", "admin"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Outcome::Err("tls"),
                tls: false,
            },
            MetadataAndAuthCase {
                name: "SASL + TLS missing username",
                metadata: &[("sasl", "plaintext"), ("tls", "enable"), B, G, T, I],
                auth: &[
                    ("password", "admin"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Outcome::Err("username"),
                tls: false,
            },
            MetadataAndAuthCase {
                name: "SASL + TLS missing password",
                metadata: &[("sasl", "plaintext"), ("tls", "enable"), B, G, T, I],
                auth: &[
                    ("username", "admin"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Outcome::Err("password"),
                tls: false,
            },
            MetadataAndAuthCase {
                name: "SASL + TLS missing cert",
                metadata: &[("sasl", "plaintext"), ("tls", "enable"), B, G, T, I],
                auth: &[
                    ("username", "admin"),
                    ("password", "admin"),
                    ("ca", "caaa"),
                    ("key", "keey"),
                ],
                expected: Outcome::Err("cert"),
                tls: false,
            },
            MetadataAndAuthCase {
                name: "SASL + TLS missing key (and sasl twice)",
                metadata: &[("sasl", "plaintext"), ("tls", "enable"), B, G, T, I],
                auth: &[
                    ("sasl", "plaintext"),
                    ("username", "admin"),
                    ("password", "admin"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                ],
                expected: Outcome::Err("key"),
                tls: false,
            },
            MetadataAndAuthCase {
                name: "SASL in both places",
                metadata: &[("sasl", "scram_sha512"), B, G, T, I],
                auth: &[
                    ("sasl", "scram_sha512"),
                    ("username", "admin"),
                    ("password", "admin"),
                ],
                expected: Outcome::Err("sasl"),
                tls: false,
            },
            MetadataAndAuthCase {
                name: "TLS in both places",
                metadata: &[("tls", "enable"), B, G, T, I],
                auth: &[
                    ("tls", "enable"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Outcome::Err("tls"),
                tls: false,
            },
            MetadataAndAuthCase {
                name: "plaintext with newline",
                metadata: &[B, G, T, I],
                auth: &[
                    ("sasl", "plaintext\n"),
                    ("username", "admin"),
                    ("password", "admin"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            MetadataAndAuthCase {
                name: "plaintext with space",
                metadata: &[B, G, T, I],
                auth: &[
                    ("sasl", "plaintext "),
                    ("username", "admin"),
                    ("password", "admin"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            MetadataAndAuthCase {
                name: "scram_sha256 with newline",
                metadata: &[B, G, T, I],
                auth: &[
                    ("sasl", "scram_sha256\n"),
                    ("username", "admin"),
                    ("password", "admin"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            MetadataAndAuthCase {
                name: "scram_sha256 with space",
                metadata: &[B, G, T, I],
                auth: &[
                    ("sasl", "scram_sha256 "),
                    ("username", "admin"),
                    ("password", "admin"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            MetadataAndAuthCase {
                name: "scram_sha512 with newline",
                metadata: &[B, G, T, I],
                auth: &[
                    ("sasl", "scram_sha512\n"),
                    ("username", "admin"),
                    ("password", "admin"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            MetadataAndAuthCase {
                name: "scram_sha512 with space",
                metadata: &[B, G, T, I],
                auth: &[
                    ("sasl", "scram_sha512 "),
                    ("username", "admin"),
                    ("password", "admin"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            MetadataAndAuthCase {
                name: "MSK with TLS and keys",
                metadata: &[B, G, T, I, R],
                auth: &[
                    ("tls", "enable"),
                    ("sasl", "aws_msk_iam"),
                    ("awsAccessKeyID", "none"),
                    ("awsSecretAccessKey", "none"),
                ],
                expected: Outcome::Ok,
                tls: true,
            },
            MetadataAndAuthCase {
                name: "MSK without region",
                metadata: &[B, G, T, I],
                auth: &[
                    ("tls", "enable"),
                    ("sasl", "aws_msk_iam"),
                    ("awsAccessKeyID", "none"),
                    ("awsSecretAccessKey", "none"),
                ],
                expected: Outcome::Err("awsRegion"),
                tls: true,
            },
            MetadataAndAuthCase {
                name: "MSK without TLS",
                metadata: &[B, G, T, I, R],
                auth: &[
                    ("sasl", "aws_msk_iam"),
                    ("awsAccessKeyID", "none"),
                    ("awsSecretAccessKey", "none"),
                ],
                expected: Outcome::Err("tls"),
                tls: false,
            },
            MetadataAndAuthCase {
                name: "MSK without secret key",
                metadata: &[B, G, T, I, R],
                auth: &[
                    ("tls", "enable"),
                    ("sasl", "aws_msk_iam"),
                    ("awsAccessKeyID", "none"),
                ],
                expected: Outcome::Err("awsSecretAccessKey"),
                tls: true,
            },
            MetadataAndAuthCase {
                name: "MSK without key id",
                metadata: &[B, G, T, I, R],
                auth: &[
                    ("tls", "enable"),
                    ("sasl", "aws_msk_iam"),
                    ("awsSecretAccessKey", "none"),
                ],
                expected: Outcome::Err("awsAccessKeyID"),
                tls: true,
            },
        ];
        for MetadataAndAuthCase {
            name,
            metadata,
            auth,
            expected,
            tls,
        } in cases
        {
            if let Some(m) = check(name, metadata, auth, expected) {
                assert_eq!(m.tls.is_enabled(), *tls, "{name}");
            }
        }
    }

    /// KEDA's `apacheKafkaMetricIdentifiers`, plus a topic list (the comma is kept).
    #[test]
    fn apache_kafka_metric_identifiers() {
        let one: Pairs = &[
            ("bootstrapServers", "foobar:9092"),
            ("consumerGroup", "my-group"),
            ("topic", "my-topics"),
        ];
        let none: Pairs = &[
            ("bootstrapServers", "foobar:9092"),
            ("consumerGroup", "my-group"),
        ];
        let two: Pairs = &[
            ("bootstrapServers", "foobar:9092"),
            ("consumerGroup", "my-group"),
            ("topic", "a, b.c"),
        ];
        let cases = [
            (one, 0, "s0-kafka-my-topics"),
            (one, 1, "s1-kafka-my-topics"),
            (none, 1, "s1-kafka-my-group-topics"),
            (two, 0, "s0-kafka-a,b-c"),
        ];
        for (metadata, index, name) in cases {
            let scaler = ApacheKafkaScaler::build(
                &config(metadata, WITH_AUTH, index),
                &ScalerContext::default(),
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            let specs = scaler.metric_specs();
            let metric = specs[0]
                .external()
                .unwrap_or_else(|| panic!("{name}: external"));
            assert_eq!(metric.name.as_str(), name);
        }
    }

    #[test]
    fn gssapi_parses_but_cannot_be_built() {
        let auth: Pairs = &[("sasl", "gssapi")];
        assert_eq!(
            check("gssapi", VALID, auth, &Outcome::Ok).map(|m| m.sasl),
            Some(Sasl::Gssapi)
        );
        let errors = ApacheKafkaScaler::build(&config(VALID, auth, 0), &ScalerContext::default())
            .unwrap_err();
        assert_eq!(errors.0[0].key, "sasl");
    }

    /// KEDA's `GetAwsAuthorization`: with `podIdentity.provider: aws` no static keys are needed.
    #[test]
    fn msk_iam_with_aws_pod_identity_needs_no_keys() {
        let metadata: Pairs = &[
            ("bootstrapServers", "foobar:9092"),
            ("consumerGroup", "my-group"),
            ("topic", "my-topics"),
            ("awsRegion", "us-east-1"),
        ];
        let auth: Pairs = &[("tls", "enable"), ("sasl", "aws_msk_iam")];
        let mut cfg = config(metadata, auth, 0);
        assert_eq!(
            Metadata::parse(&cfg).unwrap_err().0[0].key,
            "awsAccessKeyID"
        );
        cfg.pod_identity = Some(PodIdentity {
            provider: "aws".into(),
            role_arn: Some("arn:aws:iam::123456789012:role/msk".into()),
            ..PodIdentity::default()
        });
        let m = Metadata::parse(&cfg).unwrap();
        assert_eq!(
            m.sasl,
            Sasl::AwsMskIam {
                region: "us-east-1".into(),
                authorization: AwsAuthorization::PodIdentity {
                    role_arn: Some("arn:aws:iam::123456789012:role/msk".into()),
                    external_id: None,
                    identity_owner: None,
                },
            }
        );
    }

    #[test]
    fn oauthbearer_is_not_an_apache_kafka_mode() {
        check(
            "oauthbearer",
            VALID,
            &[("sasl", "oauthbearer")],
            &Outcome::Err("sasl"),
        );
    }

    #[test]
    fn int_ranges_follow_the_typed_config() {
        assert_eq!(parse_int_ranges("1, 3-5 ,8"), Ok(vec![1, 3, 4, 5, 8]));
        assert_eq!(parse_int_ranges("5-3"), Ok(vec![]));
        assert!(parse_int_ranges("-1").is_err());
        assert!(parse_int_ranges("1,,2").is_err());
        assert!(parse_int_ranges("1.5").is_err());
    }
}
