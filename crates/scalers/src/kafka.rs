//! `kafka` triggers: scale on the lag of a consumer group (KEDA's Sarama-based scaler).
//!
//! The metric is the group's total lag (latest offset − committed offset, summed over the
//! partitions considered), served against the target `lagThreshold`; the trigger is active when
//! the lag exceeds `activationLagThreshold`.
//!
//! # Parameters
//!
//! Sources are listed in lookup order: **M** = trigger metadata, **A** = TriggerAuthentication
//! parameter, **E** = `<key>FromEnv` naming an env var of the scale target's container. The first
//! non-empty, trimmed value wins. Booleans accept Go's `ParseBool` forms (`true`, `1`, `T`, …);
//! integers are JSON integers.
//!
//! | Key | Src | Default | Meaning |
//! |---|---|---|---|
//! | `bootstrapServers` | M, E | required | Comma list of `host:port` brokers. |
//! | `consumerGroup` | M, E | required | Group whose committed offsets are read. |
//! | `topic` | M, E | – | One topic. Empty: every topic the group has committed offsets for. |
//! | `partitionLimitation` | M | all | Partition ids to consider, `1,2,10-20`; ignored without `topic` (but still validated). |
//! | `lagThreshold` | M | `10` | HPA target; must be > 0. |
//! | `activationLagThreshold` | M | `0` | Active when lag > this; must be ≥ 0. |
//! | `offsetResetPolicy` | M | `latest` | `latest` or `earliest`: how a partition without committed offset counts (1, or its whole high-water mark). |
//! | `allowIdleConsumers` | M | `false` | Do not cap the lag at partitions × `lagThreshold`. |
//! | `excludePersistentLag` | M | `false` | Ignore partitions whose committed offset has not moved since the last poll (activation still sees them). |
//! | `scaleToZeroOnInvalidOffset` | M | `false` | Count partitions without committed offset as 0 lag. |
//! | `limitToPartitionsWithLag` | M | `false` | Cap at (partitions with lag) × `lagThreshold`; needs `topic`; not with `allowIdleConsumers` nor `ensureEvenDistributionOfPartitions`. |
//! | `ensureEvenDistributionOfPartitions` | M | `false` | Round the replica count up to a divisor of the partition count; needs `topic`. |
//! | `fullMetadata` | M | `true` | Refresh the whole cluster's metadata; `false` fetches only `topic`'s (needs `topic`). |
//! | `version` | M | `1.0.0` | Kafka protocol version: `x.y.z`, or `0.x.y.z` before 1.0. |
//! | `tls` | M, A | `disable` | `enable` or `disable`. |
//! | `unsafeSsl` | M | `false` | Skip certificate verification. |
//! | `ca`, `cert`, `key`, `keyPassword` | A | – | TLS material; `cert` and `key` only together. |
//! | `sasl` | M, A | `none` | `none`, `plaintext` (SASL/PLAIN), `scram_sha256`, `scram_sha512`, `oauthbearer`, `gssapi`. |
//! | `username`, `password` | A | – | Required by `plaintext`, `scram_*`, `oauthbearer`/`bearer` (client id and secret) and `gssapi` (username; password or keytab). |
//! | `saslTokenProvider` | M, A | `bearer` | With `oauthbearer`: `bearer` (OAuth client credentials) or `aws_msk_iam`. |
//! | `oauthTokenEndpointUri` | A | – | Required by `bearer`. |
//! | `scopes` | A | – | Comma list of OAuth scopes. |
//! | `oauthExtensions` | A | – | `k=v,k2=v2` SASL extensions. |
//! | `awsRegion` | M | – | Required by `aws_msk_iam`, which also needs `tls: enable` and AWS credentials (`awsRoleArn`, or `awsAccessKeyID` + `awsSecretAccessKey`, or the TriggerAuthentication's `podIdentity.provider: aws`, which skips the credential checks). |
//! | `keytab`, `realm`, `kerberosConfig` | A | – | `gssapi`: exactly one of `password`/`keytab`; `realm` and `kerberosConfig` (krb5.conf text) required. |
//! | `kerberosServiceName` | A | `kafka` | `gssapi` service name. |
//! | `kerberosDisableFAST` | A | `false` | Disable Kerberos FAST negotiation. |
//!
//! The metric is named `s<index>-kafka-<topic>`, or `s<index>-kafka-<consumerGroup>-topics`
//! without a topic.
//!
//! # Sampling
//!
//! Each poll, as KEDA's `getTotalLag`:
//! 1. Partitions: `topic`'s partitions (one metadata request for that topic), kept by
//!    `partitionLimitation` (none left is an error). Without `topic`: the topics the group has
//!    committed offsets for; if it has none, every topic of the cluster (KEDA describes an empty
//!    topic list, which Kafka answers with all topics).
//! 2. The group's committed offsets (one OffsetFetch) and the latest offsets (one ListOffsets
//!    per leader broker), concurrently.
//! 3. Per partition of the latest-offsets answer: no committed offset → `latest`: 1,
//!    `earliest`: the latest offset, 0 with `scaleToZeroOnInvalidOffset`; otherwise
//!    latest − committed. With `excludePersistentLag`, a partition whose committed offset equals
//!    the one seen by this trigger's previous poll counts 0 for the metric (still for activation).
//!    A partition missing from the OffsetFetch answer fails the poll. KEDA has no log-start rule
//!    at the reference commit: messages removed by retention still count as lag.
//! 4. Unless `allowIdleConsumers` (or with `limitToPartitionsWithLag` or
//!    `ensureEvenDistributionOfPartitions`): `ensureEvenDistributionOfPartitions` makes the lag
//!    `f × lagThreshold` for the smallest divisor `f` of the partition count with
//!    `f × lagThreshold ≥ lag` (a lag of 0 gives one threshold); then, if
//!    `lag / lagThreshold` (integer division) exceeds the partitions (with lag, under
//!    `limitToPartitionsWithLag`), the lag becomes that many thresholds.
//!
//! The value is that lag; the trigger is active when the lag *including* persistent lag is above
//! `activationLagThreshold`. Identical triggers share one poll, except with
//! `excludePersistentLag`, whose memory belongs to each trigger. Clients are shared per cluster
//! and credentials ([`crate::kafka_client`]).
//!
//! Differences from KEDA:
//! - `version` and `fullMetadata` are validated but unused: librdkafka negotiates protocol
//!   versions, and metadata is only ever fetched for the topics in use.
//! - `sasl: oauthbearer` with the `bearer` token provider fetches tokens as KEDA's
//!   client-credentials flow does (see [`crate::kafka_auth::OAuthTokenSource`]); a token is
//!   renewed once half its life is gone, and librdkafka asks for one at 80% of it. A refusing or
//!   unreachable token endpoint fails the poll with a `connect` error naming the endpoint and
//!   its answer. Not supported (an `unsupported` error when sampled): `oauthExtensions` (rdkafka
//!   passes no SASL extensions to librdkafka), `saslTokenProvider: aws_msk_iam` (no SigV4
//!   signing nor AWS credential resolution yet) and `sasl: gssapi` (no Kerberos in this
//!   librdkafka; see [`crate::kafka_auth::GSSAPI_UNSUPPORTED`]).
//! - Without `topic`, a topic the group committed to that no longer exists is skipped; KEDA's
//!   describe fails the poll.
//!
//! # Example
//!
//! ```yaml
//! triggers:
//! - type: kafka
//!   metadata:
//!     bootstrapServers: kafka.svc:9092
//!     consumerGroup: my-group
//!     topic: test-topic
//!     lagThreshold: "50"
//!     offsetResetPolicy: latest
//!     sasl: plaintext        # username and password come from the TriggerAuthentication
//!     tls: enable
//!   authenticationRef:
//!     name: keda-trigger-auth-kafka-credential
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use scaler_core::metric::{ExternalMetric, MetricName, MetricSpec};
use scaler_core::params::{ParamError, ParamReader, order};
use scaler_core::registry::{PodIdentity, ScalerKind, TriggerConfig};
use scaler_core::{ParamErrors, Sample, SampleRequest, Scaler, ScalerError};

use crate::ScalerContext;
use crate::kafka_auth::{
    AwsAuthorization, GSSAPI_UNSUPPORTED, MSK_IAM_UNSUPPORTED, OAUTH_EXTENSIONS_UNSUPPORTED,
    OAuthClientCredentials, Tls, TlsMaterial, read_aws_authorization, single_enum,
};
use crate::kafka_client::{
    KafkaClientError, KafkaConnection, PartitionOffsets, SaslSettings, TopicPartitions,
    committed_topics, request_timeout,
};
use thiserror::Error;

mod defaults {
    pub const LAG_THRESHOLD: &str = "10";
    pub const ACTIVATION_LAG_THRESHOLD: &str = "0";
    pub const OFFSET_RESET_POLICY: &str = "latest";
    pub const KERBEROS_SERVICE_NAME: &str = "kafka";
}

/// How a partition without a committed offset is counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OffsetResetPolicy {
    /// Lag 1, so one consumer starts and commits (0 with `scaleToZeroOnInvalidOffset`).
    #[default]
    Latest,
    /// Lag = the partition's latest offset (0 with `scaleToZeroOnInvalidOffset`).
    Earliest,
}

impl OffsetResetPolicy {
    pub const ALLOWED: &'static [&'static str] = &["latest", "earliest"];

    /// Reads `offsetResetPolicy` (metadata only, default `latest`).
    pub(crate) fn read(reader: &mut ParamReader<'_>) -> Option<Self> {
        let value = single_enum(
            reader,
            "offsetResetPolicy",
            order::M,
            Self::ALLOWED,
            Some(defaults::OFFSET_RESET_POLICY),
        )?;
        Some(if value == "earliest" {
            Self::Earliest
        } else {
            Self::Latest
        })
    }
}

/// A Kafka protocol version as Sarama parses it (`1.0.0`, `2.8.1`, `0.10.2.1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KafkaVersion(pub [u64; 4]);

impl KafkaVersion {
    pub const DEFAULT: Self = Self([1, 0, 0, 0]);

    /// Sarama's `ParseKafkaVersion`: at least 5 characters; `0.a.b.c` before 1.0, `a.b.c` after.
    pub fn parse(value: &str) -> Result<Self, String> {
        let invalid = || format!("invalid version `{value}`");
        if value.len() < 5 {
            return Err(invalid());
        }
        let parts: Vec<&str> = value.split('.').collect();
        let expected = if value.starts_with('0') { 4 } else { 3 };
        if parts.len() != expected
            || parts
                .iter()
                .any(|part| part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(invalid());
        }
        let mut numbers = [0u64; 4];
        for (slot, part) in numbers.iter_mut().zip(&parts) {
            *slot = part.parse().map_err(|_| invalid())?;
        }
        Ok(Self(numbers))
    }
}

impl fmt::Display for KafkaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        if a == 0 {
            write!(f, "{a}.{b}.{c}.{d}")
        } else {
            write!(f, "{a}.{b}.{c}")
        }
    }
}

/// How OAUTHBEARER tokens are obtained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OAuthTokenProvider {
    /// OAuth client credentials against `oauthTokenEndpointUri`.
    Bearer {
        client_id: String,
        client_secret: String,
        token_endpoint: String,
        /// `scopes`, split on commas; items trimmed and empty items dropped.
        scopes: Vec<String>,
        /// `oauthExtensions`, verbatim keys and values.
        extensions: BTreeMap<String, String>,
    },
    /// Signed AWS MSK IAM tokens.
    AwsMskIam {
        region: String,
        authorization: AwsAuthorization,
    },
}

/// How GSSAPI proves the identity of `username`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KerberosSecret {
    Password(String),
    /// Keytab content; written to a file when the client is built.
    Keytab(String),
}

/// GSSAPI (Kerberos) settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gssapi {
    pub username: String,
    pub secret: KerberosSecret,
    pub realm: String,
    /// krb5.conf content; written to a file when the client is built.
    pub kerberos_config: String,
    pub service_name: String,
    pub disable_fast: bool,
}

/// The SASL mechanism, with what each one needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Sasl {
    #[default]
    None,
    Plaintext {
        username: String,
        password: String,
    },
    ScramSha256 {
        username: String,
        password: String,
    },
    ScramSha512 {
        username: String,
        password: String,
    },
    OAuthBearer(OAuthTokenProvider),
    Gssapi(Gssapi),
}

/// A `kafka` trigger's parameters, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub bootstrap_servers: Vec<String>,
    pub consumer_group: String,
    /// `None`: every topic the group has committed offsets for.
    pub topic: Option<String>,
    /// Partitions to consider; `None` = all (always `None` without a topic).
    pub partition_limitation: Option<Vec<i32>>,
    pub lag_threshold: i64,
    pub activation_lag_threshold: i64,
    pub offset_reset_policy: OffsetResetPolicy,
    pub allow_idle_consumers: bool,
    pub exclude_persistent_lag: bool,
    pub scale_to_zero_on_invalid_offset: bool,
    pub limit_to_partitions_with_lag: bool,
    pub ensure_even_distribution_of_partitions: bool,
    pub full_metadata: bool,
    pub version: KafkaVersion,
    pub tls: Tls,
    pub unsafe_ssl: bool,
    pub sasl: Sasl,
}

const TOPIC_HINT: &str = "set `metadata.topic` (or `topicFromEnv`)";

/// KEDA's `parsePartitionLimitation`: ids and `a-b` ranges, items trimmed, int32 bounds.
pub fn parse_partition_limitation(value: &str) -> Result<Vec<i32>, String> {
    let mut partitions = Vec::new();
    for part in value.split(',').map(str::trim) {
        if part.contains('-') {
            let bounds: Vec<&str> = part.split('-').collect();
            let [start, end] = bounds[..] else {
                return Err(format!("invalid partition limitation range: {part}"));
            };
            let invalid = || format!("invalid partition limitation: {part}");
            let start: i32 = start.trim().parse().map_err(|_| invalid())?;
            let end: i32 = end.trim().parse().map_err(|_| invalid())?;
            partitions.extend(start..=end);
        } else {
            let id: i32 = part
                .parse()
                .map_err(|_| format!("invalid partition limitation: {part}"))?;
            partitions.push(id);
        }
    }
    Ok(partitions)
}

fn bool_flag(
    reader: &mut ParamReader<'_>,
    name: &'static str,
    default: &'static str,
) -> Option<bool> {
    reader.key(name, order::M).default(default).bool()
}

fn require(
    reader: &mut ParamReader<'_>,
    value: Option<String>,
    key: &'static str,
    message: &str,
    hint: &str,
) -> Option<String> {
    if value.is_none() {
        reader.error(ParamError::new(key, message).with_hint(hint));
    }
    value
}

fn auth_hint(key: &str, why: &str) -> String {
    format!("add parameter `{key}` to the TriggerAuthentication ({why})")
}

impl Metadata {
    /// Reads and validates a `kafka` trigger's parameters, reporting every problem found.
    pub fn parse(config: &TriggerConfig) -> Result<Self, ParamErrors> {
        let mut r = ParamReader::new(&config.params);
        let bootstrap_servers = r.key("bootstrapServers", order::M_E).required().list();
        let consumer_group = r.key("consumerGroup", order::M_E).required().string();
        let topic = r.key("topic", order::M_E).string();
        let partition_limitation = r.key("partitionLimitation", order::M).parse_with(
            "write partition ids and ranges, like \"1,2,10-20\"",
            parse_partition_limitation,
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
        let allow_idle_consumers = bool_flag(&mut r, "allowIdleConsumers", "false");
        let exclude_persistent_lag = bool_flag(&mut r, "excludePersistentLag", "false");
        let scale_to_zero_on_invalid_offset =
            bool_flag(&mut r, "scaleToZeroOnInvalidOffset", "false");
        let limit_to_partitions_with_lag = bool_flag(&mut r, "limitToPartitionsWithLag", "false");
        let ensure_even_distribution_of_partitions =
            bool_flag(&mut r, "ensureEvenDistributionOfPartitions", "false");
        let full_metadata = bool_flag(&mut r, "fullMetadata", "true");
        let version = r.key("version", order::M).parse_with(
            "write the brokers' version like \"2.8.1\" (or \"0.10.2.1\" before 1.0)",
            KafkaVersion::parse,
        );
        let tls_mode = single_enum(
            &mut r,
            "tls",
            order::M_A,
            &["enable", "disable"],
            Some("disable"),
        );
        let unsafe_ssl = bool_flag(&mut r, "unsafeSsl", "false");
        let material = TlsMaterial::read(&mut r);

        if lag_threshold.is_some_and(|value| value <= 0) {
            r.error(
                ParamError::new("lagThreshold", "\"lagThreshold\" must be positive number")
                    .with_hint("set `lagThreshold` to an integer above 0"),
            );
        }
        if activation_lag_threshold.is_some_and(|value| value < 0) {
            r.error(
                ParamError::new(
                    "activationLagThreshold",
                    "\"activationLagThreshold\" must be a non-negative number",
                )
                .with_hint("set `activationLagThreshold` to 0 or more"),
            );
        }
        let has_topic = topic.is_some();
        let flag = |value: Option<bool>| value.unwrap_or(false);
        if flag(allow_idle_consumers) && flag(limit_to_partitions_with_lag) {
            r.error(
                ParamError::new(
                    "limitToPartitionsWithLag",
                    "allowIdleConsumers and limitToPartitionsWithLag cannot be set simultaneously",
                )
                .with_hint("set at most one of `allowIdleConsumers` and `limitToPartitionsWithLag` to true"),
            );
        }
        if !has_topic && flag(limit_to_partitions_with_lag) {
            r.error(
                ParamError::new(
                    "limitToPartitionsWithLag",
                    "topic must be specified when using limitToPartitionsWithLag",
                )
                .with_hint(TOPIC_HINT),
            );
        }
        if flag(limit_to_partitions_with_lag) && flag(ensure_even_distribution_of_partitions) {
            r.error(
                ParamError::new(
                    "ensureEvenDistributionOfPartitions",
                    "limitToPartitionsWithLag and ensureEvenDistributionOfPartitions cannot be set simultaneously",
                )
                .with_hint("set at most one of `limitToPartitionsWithLag` and `ensureEvenDistributionOfPartitions` to true"),
            );
        }
        if !has_topic && flag(ensure_even_distribution_of_partitions) {
            r.error(
                ParamError::new(
                    "ensureEvenDistributionOfPartitions",
                    "topic must be specified when using ensureEvenDistributionOfPartitions",
                )
                .with_hint(TOPIC_HINT),
            );
        }
        if !has_topic && full_metadata == Some(false) {
            r.error(
                ParamError::new(
                    "fullMetadata",
                    "topic must be specified when fullMetadata is false",
                )
                .with_hint(format!("{TOPIC_HINT}, or remove `fullMetadata: \"false\"`")),
            );
        }

        let tls = match tls_mode.as_deref() {
            Some("enable") => {
                if material.cert.is_some() && material.key.is_none() {
                    r.error(
                        ParamError::new("key", "key must be provided with cert")
                            .with_hint(auth_hint("key", "a client certificate needs its key")),
                    );
                }
                if material.key.is_some() && material.cert.is_none() {
                    r.error(
                        ParamError::new("cert", "cert must be provided with key")
                            .with_hint(auth_hint("cert", "a client key needs its certificate")),
                    );
                }
                Tls::Enabled(material)
            }
            _ => Tls::Disabled,
        };
        let sasl = Self::read_sasl(&mut r, tls.is_enabled(), config.pod_identity.as_ref());

        let metadata = (|| {
            Some(Self {
                bootstrap_servers: bootstrap_servers?,
                consumer_group: consumer_group?,
                partition_limitation: if has_topic {
                    partition_limitation
                } else {
                    None
                },
                topic,
                lag_threshold: lag_threshold?,
                activation_lag_threshold: activation_lag_threshold?,
                offset_reset_policy: offset_reset_policy?,
                allow_idle_consumers: allow_idle_consumers?,
                exclude_persistent_lag: exclude_persistent_lag?,
                scale_to_zero_on_invalid_offset: scale_to_zero_on_invalid_offset?,
                limit_to_partitions_with_lag: limit_to_partitions_with_lag?,
                ensure_even_distribution_of_partitions: ensure_even_distribution_of_partitions?,
                full_metadata: full_metadata?,
                version: version.unwrap_or(KafkaVersion::DEFAULT),
                tls,
                unsafe_ssl: unsafe_ssl?,
                sasl: sasl?,
            })
        })();
        match metadata {
            Some(metadata) => r.finish(metadata),
            None => Err(r.finish(()).err().unwrap_or_else(|| {
                ParamErrors::single(ParamError::new("metadata", "invalid kafka metadata"))
            })),
        }
    }

    /// `sasl` and what each mechanism needs; `None` when a problem was recorded.
    fn read_sasl(
        r: &mut ParamReader<'_>,
        tls_enabled: bool,
        pod_identity: Option<&PodIdentity>,
    ) -> Option<Sasl> {
        const MODES: &[&str] = &[
            "none",
            "plaintext",
            "scram_sha256",
            "scram_sha512",
            "oauthbearer",
            "gssapi",
        ];
        let mode = single_enum(r, "sasl", order::M_A, MODES, None);
        let token_provider = single_enum(
            r,
            "saslTokenProvider",
            order::M_A,
            &["bearer", "aws_msk_iam"],
            None,
        );
        let username = r.key("username", order::A).string();
        let password = r.key("password", order::A).string();
        let scopes = r.key("scopes", order::A).string();
        let token_endpoint = r.key("oauthTokenEndpointUri", order::A).string();
        let extensions = r.key("oauthExtensions", order::A).string();
        let keytab = r.key("keytab", order::A).string();
        let realm = r.key("realm", order::A).string();
        let kerberos_config = r.key("kerberosConfig", order::A).string();
        let service_name = r.key("kerberosServiceName", order::A).string();
        let disable_fast = r
            .key("kerberosDisableFAST", order::A)
            .default("false")
            .bool();
        let aws_region = r.key("awsRegion", order::M).string();

        let Some(mode) = mode else {
            // Absent, or an enum error already recorded.
            let failed = r.params().first(&["sasl"], order::M_A).is_some();
            return (!failed).then_some(Sasl::None);
        };
        let credential =
            |r: &mut ParamReader<'_>, value: Option<String>, key: &'static str, why: &str| {
                require(
                    r,
                    value,
                    key,
                    &format!("no {key} given"),
                    &auth_hint(key, why),
                )
            };
        match mode.as_str() {
            "plaintext" | "scram_sha256" | "scram_sha512" => {
                let why = format!("sasl `{mode}` needs it");
                let username = credential(r, username, "username", &why)?;
                let password = credential(r, password, "password", &why)?;
                Some(match mode.as_str() {
                    "plaintext" => Sasl::Plaintext { username, password },
                    "scram_sha256" => Sasl::ScramSha256 { username, password },
                    _ => Sasl::ScramSha512 { username, password },
                })
            }
            "oauthbearer" => {
                let prefix = "error parsing OAuth token provider configuration: ";
                match token_provider.as_deref().unwrap_or("bearer") {
                    "aws_msk_iam" => {
                        if !tls_enabled {
                            r.error(
                                ParamError::new(
                                    "tls",
                                    format!("{prefix}TLS is required for AWS MSK authentication"),
                                )
                                .with_hint("set `tls: enable` in the trigger metadata or the TriggerAuthentication"),
                            );
                            return None;
                        }
                        let Some(region) = aws_region else {
                            r.error(
                                ParamError::new("awsRegion", format!("{prefix}no awsRegion given"))
                                    .with_hint(
                                        "set `metadata.awsRegion` to the MSK cluster's region",
                                    ),
                            );
                            return None;
                        };
                        let authorization = read_aws_authorization(r, pod_identity)?;
                        Some(Sasl::OAuthBearer(OAuthTokenProvider::AwsMskIam {
                            region,
                            authorization,
                        }))
                    }
                    _ => {
                        let why = "sasl `oauthbearer` with the `bearer` token provider needs it";
                        let message = |what: &str| format!("{prefix}no {what} given");
                        let client_id = require(
                            r,
                            username,
                            "username",
                            &message("username"),
                            &auth_hint("username", why),
                        )?;
                        let client_secret = require(
                            r,
                            password,
                            "password",
                            &message("password"),
                            &auth_hint("password", why),
                        )?;
                        let token_endpoint = require(
                            r,
                            token_endpoint,
                            "oauthTokenEndpointUri",
                            &message("oauth token endpoint uri"),
                            &auth_hint("oauthTokenEndpointUri", why),
                        )?;
                        let mut parsed = BTreeMap::new();
                        for pair in extensions.iter().flat_map(|value| value.split(',')) {
                            let parts: Vec<&str> = pair.split('=').collect();
                            let [key, value] = parts[..] else {
                                r.error(
                                    ParamError::new(
                                        "oauthExtensions",
                                        format!("{prefix}invalid OAuthBearer extension, must be of format key=value"),
                                    )
                                    .with_hint("write comma-separated key=value pairs, like \"extension_a=1,extension_b=2\""),
                                );
                                return None;
                            };
                            parsed.insert(key.to_owned(), value.to_owned());
                        }
                        Some(Sasl::OAuthBearer(OAuthTokenProvider::Bearer {
                            client_id,
                            client_secret,
                            token_endpoint,
                            scopes: scopes
                                .iter()
                                .flat_map(|value| value.split(','))
                                .map(str::trim)
                                .filter(|scope| !scope.is_empty())
                                .map(str::to_owned)
                                .collect(),
                            extensions: parsed,
                        }))
                    }
                }
            }
            "gssapi" => {
                let why = "sasl `gssapi` needs it";
                let username = credential(r, username, "username", why)?;
                let secret = match (password, keytab) {
                    (Some(password), None) => KerberosSecret::Password(password),
                    (None, Some(keytab)) => KerberosSecret::Keytab(keytab),
                    _ => {
                        r.error(
                            ParamError::new(
                                "keytab",
                                "exactly one of 'password' or 'keytab' must be provided for GSSAPI authentication",
                            )
                            .with_hint("give the TriggerAuthentication either `password` or `keytab`, not both"),
                        );
                        return None;
                    }
                };
                let realm = credential(r, realm, "realm", why)?;
                let kerberos_config = require(
                    r,
                    kerberos_config,
                    "kerberosConfig",
                    "no Kerberos configuration file (kerberosConfig) given",
                    &auth_hint("kerberosConfig", "the content of a krb5.conf"),
                )?;
                Some(Sasl::Gssapi(Gssapi {
                    username,
                    secret,
                    realm,
                    kerberos_config,
                    service_name: service_name
                        .unwrap_or_else(|| defaults::KERBEROS_SERVICE_NAME.to_owned()),
                    disable_fast: disable_fast?,
                }))
            }
            _ => Some(Sasl::None),
        }
    }

    /// `kafka-<topic>`, or `kafka-<consumerGroup>-topics` without a topic.
    pub fn metric_local_name(&self) -> String {
        match &self.topic {
            Some(topic) => format!("kafka-{topic}"),
            None => format!("kafka-{}-topics", self.consumer_group),
        }
    }
}

/// Builds the one external metric of a Kafka-lag trigger, collecting metricType problems too.
pub(crate) fn build_metric<M>(
    config: &TriggerConfig,
    parsed: Result<M, ParamErrors>,
    local_name: impl FnOnce(&M) -> String,
    target: impl FnOnce(&M) -> i64,
) -> Result<(M, ExternalMetric), ParamErrors> {
    let target_type = config.external_target_type();
    match (parsed, target_type) {
        (Ok(metadata), Ok(_)) => {
            let metric = config
                .external_metric(&local_name(&metadata), target(&metadata) as f64)
                .map_err(ParamErrors::single)?;
            Ok((metadata, metric))
        }
        (Ok(_), Err(error)) => Err(ParamErrors::single(error)),
        (Err(errors), Ok(_)) => Err(errors),
        (Err(mut errors), Err(error)) => {
            errors.0.insert(0, error);
            Err(errors)
        }
    }
}

/// What a partition without a committed offset in the OffsetFetch answer means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MissingCommitted {
    /// `kafka` (Sarama): the query fails.
    Error,
    /// `apache-kafka` (kafka-go): committed offset 0 (Go's zero value).
    Zero,
}

/// The lag rules both Kafka trigger types share (KEDA's `getLagForPartition` and
/// `getTotalLag`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LagRules {
    pub lag_threshold: i64,
    pub offset_reset_policy: OffsetResetPolicy,
    pub scale_to_zero_on_invalid_offset: bool,
    pub exclude_persistent_lag: bool,
    pub allow_idle_consumers: bool,
    pub limit_to_partitions_with_lag: bool,
    pub ensure_even_distribution_of_partitions: bool,
    pub missing_committed: MissingCommitted,
}

/// KEDA's `invalidOffset`: nothing committed.
const INVALID_OFFSET: i64 = -1;

/// The lag of a poll: the metric value (capped, persistent lag excluded) and the lag that
/// decides activation (persistent lag included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TotalLag {
    pub lag: i64,
    pub lag_with_persistent: i64,
}

/// Committed offsets remembered between polls for `excludePersistentLag`.
pub(crate) type PreviousOffsets = HashMap<(String, i32), i64>;

/// (lag, lag with persistent) of one partition.
fn partition_lag(
    rules: &LagRules,
    key: &(String, i32),
    committed: i64,
    latest: i64,
    previous: &mut PreviousOffsets,
) -> (i64, i64) {
    if committed == INVALID_OFFSET {
        let lag = match (
            rules.offset_reset_policy,
            rules.scale_to_zero_on_invalid_offset,
        ) {
            (_, true) => 0,
            (OffsetResetPolicy::Latest, false) => 1,
            (OffsetResetPolicy::Earliest, false) => latest,
        };
        return (lag, lag);
    }
    if rules.exclude_persistent_lag {
        match previous.get(key) {
            Some(before) if *before == committed => return (0, latest - committed),
            _ => {
                previous.insert(key.clone(), committed);
            }
        }
    }
    (latest - committed, latest - committed)
}

/// The smallest divisor `f` of `partitions` with `f × threshold ≥ lag`, else `partitions`.
fn balancing_factor(lag: i64, partitions: i64, threshold: i64) -> i64 {
    (1..=partitions)
        .filter(|factor| partitions % factor == 0)
        .find(|factor| factor * threshold >= lag)
        .unwrap_or(partitions)
}

/// The total lag over the partitions of the latest-offsets answer, capped as KEDA caps it.
pub(crate) fn total_lag(
    rules: &LagRules,
    committed: &PartitionOffsets,
    latest: &PartitionOffsets,
    previous: &mut PreviousOffsets,
) -> Result<TotalLag, LagError> {
    if rules.missing_committed == MissingCommitted::Zero
        && committed.is_empty()
        && !latest.is_empty()
    {
        return Err(LagError::NoCommittedOffsets);
    }
    let mut total = TotalLag::default();
    let mut partitions = 0i64;
    let mut partitions_with_lag = 0i64;
    for (key, latest) in latest {
        let committed = match (committed.get(key), rules.missing_committed) {
            (Some(offset), _) => *offset,
            (None, MissingCommitted::Zero) => 0,
            (None, MissingCommitted::Error) => {
                return Err(LagError::MissingPartition {
                    topic: key.0.clone(),
                    partition: key.1,
                });
            }
        };
        let (lag, with_persistent) = partition_lag(rules, key, committed, *latest, previous);
        total.lag += lag;
        total.lag_with_persistent += with_persistent;
        partitions += 1;
        if lag > 0 {
            partitions_with_lag += 1;
        }
    }
    if !rules.allow_idle_consumers
        || rules.limit_to_partitions_with_lag
        || rules.ensure_even_distribution_of_partitions
    {
        let threshold = rules.lag_threshold;
        if rules.ensure_even_distribution_of_partitions {
            total.lag = balancing_factor(total.lag, partitions, threshold) * threshold;
        }
        let upper_bound = if rules.limit_to_partitions_with_lag {
            partitions_with_lag
        } else {
            partitions
        };
        if total.lag / threshold > upper_bound {
            total.lag = upper_bound * threshold;
        }
    }
    Ok(total)
}

/// Why a poll's offsets could not be turned into a lag.
#[derive(Debug, Error)]
pub(crate) enum LagError {
    #[error("error finding offset block for topic {topic} and partition {partition}")]
    MissingPartition { topic: String, partition: i32 },
    #[error("consumerOffsets is empty")]
    NoCommittedOffsets,
}

/// Why a `kafka` trigger could not be sampled.
#[derive(Debug, Error)]
enum KafkaError {
    #[error("{0}")]
    Client(#[from] KafkaClientError),
    #[error("{0}")]
    UnsupportedSasl(&'static str),
    #[error("expected only 1 topic metadata, got {0}")]
    TopicCount(usize),
    #[error("expected at least one active partition within the topic '{0}'")]
    NoActivePartition(String),
    #[error("{0}")]
    Lag(#[from] LagError),
}

impl KafkaError {
    fn into_scaler_error(self, group: &str) -> ScalerError {
        let context = format!("kafka lag of group `{group}`");
        match self {
            Self::Client(error) => error.into_scaler_error(&context),
            Self::UnsupportedSasl(_) => ScalerError::new(
                scaler_core::ErrorCategory::Unsupported,
                format!("{context}: {self}"),
            ),
            other => ScalerError::query(format!("{context}: {other}")),
        }
    }
}

/// A `kafka` trigger.
pub struct KafkaScaler {
    metadata: Metadata,
    metric: ExternalMetric,
    context: ScalerContext,
    /// Why not, when the SASL settings are ones this build cannot speak.
    connection: Result<KafkaConnection, &'static str>,
    previous: Mutex<PreviousOffsets>,
}

impl fmt::Debug for KafkaScaler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaScaler")
            .field("connection", &self.connection)
            .field("group", &self.metadata.consumer_group)
            .field("topic", &self.metadata.topic)
            .finish()
    }
}

impl KafkaScaler {
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
            missing_committed: MissingCommitted::Error,
        }
    }

    fn connection(metadata: &Metadata) -> Result<KafkaConnection, &'static str> {
        let sasl = match &metadata.sasl {
            Sasl::None => SaslSettings::None,
            Sasl::Plaintext { username, password } => SaslSettings::Plain {
                username: username.clone(),
                password: password.clone(),
            },
            Sasl::ScramSha256 { username, password } => SaslSettings::ScramSha256 {
                username: username.clone(),
                password: password.clone(),
            },
            Sasl::ScramSha512 { username, password } => SaslSettings::ScramSha512 {
                username: username.clone(),
                password: password.clone(),
            },
            Sasl::OAuthBearer(OAuthTokenProvider::Bearer { extensions, .. })
                if !extensions.is_empty() =>
            {
                return Err(OAUTH_EXTENSIONS_UNSUPPORTED);
            }
            Sasl::OAuthBearer(OAuthTokenProvider::Bearer {
                client_id,
                client_secret,
                token_endpoint,
                scopes,
                extensions: _,
            }) => SaslSettings::OAuthBearer(OAuthClientCredentials {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                token_endpoint: token_endpoint.clone(),
                scopes: scopes.clone(),
            }),
            Sasl::OAuthBearer(OAuthTokenProvider::AwsMskIam { .. }) => {
                return Err(MSK_IAM_UNSUPPORTED);
            }
            Sasl::Gssapi(_) => return Err(GSSAPI_UNSUPPORTED),
        };
        Ok(KafkaConnection::new(
            &metadata.bootstrap_servers,
            metadata.tls.settings(metadata.unsafe_ssl).as_ref(),
            &sasl,
        ))
    }

    /// The partitions to evaluate, and for a trigger without topic the committed offsets
    /// already read to find its topics.
    async fn topic_partitions(
        &self,
        connection: &KafkaConnection,
        timeout: Duration,
    ) -> Result<(TopicPartitions, Option<PartitionOffsets>), KafkaError> {
        let kafka = self.context.kafka();
        let group = &self.metadata.consumer_group;
        match &self.metadata.topic {
            Some(topic) => {
                let described = kafka
                    .partitions(connection, Some(std::slice::from_ref(topic)), timeout)
                    .await?;
                if described.len() != 1 {
                    return Err(KafkaError::TopicCount(described.len()));
                }
                let mut result = TopicPartitions::new();
                for (name, ids) in described {
                    let active: Vec<i32> = ids
                        .into_iter()
                        .filter(|id| {
                            self.metadata
                                .partition_limitation
                                .as_ref()
                                .is_none_or(|allowed| allowed.contains(id))
                        })
                        .collect();
                    if active.is_empty() {
                        return Err(KafkaError::NoActivePartition(name));
                    }
                    result.insert(name, active);
                }
                Ok((result, None))
            }
            None => {
                // KEDA lists the group's committed offsets for all topics (OffsetFetch with no
                // topics) and describes those topics. librdkafka only fetches offsets of named
                // partitions, so: every partition of the cluster, one OffsetFetch, then the
                // topics with a committed offset. When there are none, KEDA's DescribeTopics
                // with an empty list asks Kafka for every topic (Sarama encodes it as a null
                // array), so every topic counts then.
                let all = kafka.partitions(connection, None, timeout).await?;
                let committed = kafka
                    .committed_offsets(connection, group, &all, timeout)
                    .await?;
                let topics = committed_topics(&committed);
                let partitions: TopicPartitions = if topics.is_empty() {
                    all
                } else {
                    all.into_iter()
                        .filter(|(topic, _)| topics.contains(topic))
                        .collect()
                };
                Ok((partitions, Some(committed)))
            }
        }
    }

    async fn lag(&self) -> Result<TotalLag, KafkaError> {
        let connection = self
            .connection
            .as_ref()
            .map_err(|sasl| KafkaError::UnsupportedSasl(sasl))?;
        let timeout = request_timeout(self.context.settings().default_timeout);
        let kafka = self.context.kafka();
        let group = &self.metadata.consumer_group;
        let (partitions, known) = self.topic_partitions(connection, timeout).await?;
        let (committed, latest) = match known {
            Some(committed) => (
                committed,
                kafka
                    .latest_offsets(connection, &partitions, timeout)
                    .await?,
            ),
            None => {
                let (committed, latest) = tokio::join!(
                    kafka.committed_offsets(connection, group, &partitions, timeout),
                    kafka.latest_offsets(connection, &partitions, timeout),
                );
                (committed?, latest?)
            }
        };
        let latest: PartitionOffsets = latest
            .into_iter()
            .filter(|((topic, id), _)| partitions.get(topic).is_some_and(|ids| ids.contains(id)))
            .collect();
        let mut previous = self.previous.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(total_lag(
            &self.rules(),
            &committed,
            &latest,
            &mut previous,
        )?)
    }
}

impl ScalerKind<ScalerContext> for KafkaScaler {
    const TYPES: &'static [&'static str] = &["kafka"];

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
impl Scaler for KafkaScaler {
    fn metric_specs(&self) -> Vec<MetricSpec> {
        vec![MetricSpec::External(self.metric.clone())]
    }

    fn activation_target(&self) -> Option<f64> {
        Some(self.metadata.activation_lag_threshold as f64)
    }

    /// Identical triggers share one poll, except with `excludePersistentLag`, whose state
    /// belongs to each trigger (as in KEDA, per scaler instance).
    fn query_key(&self, _metric: &MetricName) -> Option<String> {
        if self.metadata.exclude_persistent_lag {
            return None;
        }
        let connection = self.connection.as_ref().ok()?;
        Some(format!(
            "kafka|{}|group={}|topic={:?}|partitions={:?}|{:?}|activation={}",
            connection.identity(),
            self.metadata.consumer_group,
            self.metadata.topic,
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
            trigger_type: "kafka".into(),
            params: TriggerParams {
                metadata: map(metadata),
                auth_params: map(auth),
                resolved_env: BTreeMap::new(),
            },
            ..TriggerConfig::default()
        }
    }

    /// Expected outcome: `Ok` or the key of the first error.
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
        let result = Metadata::parse(&config(metadata, auth, 0));
        match (expected, result) {
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

    // KEDA's validKafkaMetadata / validWithAuthParams.
    const VALID: Pairs = &[
        ("bootstrapServers", "broker1:9092,broker2:9092"),
        ("consumerGroup", "my-group"),
        ("topic", "my-topic"),
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
        topic: Option<&'static str>,
        partitions: Option<&'static [i32]>,
        policy: OffsetResetPolicy,
        allow_idle: bool,
        exclude_persistent: bool,
        limit_to_lag: bool,
        even: bool,
        full_metadata: bool,
    }

    const BASE: MetadataCase = MetadataCase {
        name: "",
        metadata: &[],
        expected: Outcome::Ok,
        brokers: &["foobar:9092"],
        topic: Some("my-topic"),
        partitions: None,
        policy: OffsetResetPolicy::Latest,
        allow_idle: false,
        exclude_persistent: false,
        limit_to_lag: false,
        even: false,
        full_metadata: true,
    };

    /// KEDA's `parseKafkaMetadataTestDataset`, each run with and without SASL auth params.
    fn metadata_cases() -> Vec<MetadataCase> {
        const B: (&str, &str) = ("bootstrapServers", "foobar:9092");
        const G: (&str, &str) = ("consumerGroup", "my-group");
        const T: (&str, &str) = ("topic", "my-topic");
        vec![
            MetadataCase {
                name: "no bootstrapServers",
                metadata: &[],
                expected: Outcome::Err("bootstrapServers"),
                ..BASE
            },
            MetadataCase {
                name: "no consumer group",
                metadata: &[B],
                expected: Outcome::Err("consumerGroup"),
                ..BASE
            },
            MetadataCase {
                name: "no topic",
                metadata: &[B, G],
                topic: None,
                ..BASE
            },
            MetadataCase {
                name: "partitionLimitation ignored without topic",
                metadata: &[B, G, ("partitionLimitation", "1,2,3,4,5,6")],
                topic: None,
                ..BASE
            },
            MetadataCase {
                name: "whitespace partitionLimitation",
                metadata: &[B, G, ("partitionLimitation", "           ")],
                topic: None,
                ..BASE
            },
            MetadataCase {
                name: "empty partitionLimitation",
                metadata: &[B, G, ("partitionLimitation", "")],
                topic: None,
                ..BASE
            },
            MetadataCase {
                name: "version not supported",
                metadata: &[B, G, T, ("version", "1.2.3.4")],
                expected: Outcome::Err("version"),
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
                name: "activationLagThreshold not int",
                metadata: &[
                    B,
                    G,
                    T,
                    ("lagThreshold", "10"),
                    ("activationLagThreshold", "AA"),
                ],
                expected: Outcome::Err("activationLagThreshold"),
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
                metadata: &[("bootstrapServers", "foo:9092,bar:9092"), G, T],
                brokers: &["foo:9092", "bar:9092"],
                ..BASE
            },
            MetadataCase {
                name: "offsetResetPolicy latest",
                metadata: &[
                    ("bootstrapServers", "foo:9092,bar:9092"),
                    G,
                    T,
                    ("offsetResetPolicy", "latest"),
                ],
                brokers: &["foo:9092", "bar:9092"],
                ..BASE
            },
            MetadataCase {
                name: "offsetResetPolicy wrong",
                metadata: &[
                    ("bootstrapServers", "foo:9092,bar:9092"),
                    G,
                    T,
                    ("offsetResetPolicy", "foo"),
                ],
                expected: Outcome::Err("offsetResetPolicy"),
                ..BASE
            },
            MetadataCase {
                name: "offsetResetPolicy earliest",
                metadata: &[
                    ("bootstrapServers", "foo:9092,bar:9092"),
                    G,
                    T,
                    ("offsetResetPolicy", "earliest"),
                ],
                brokers: &["foo:9092", "bar:9092"],
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
                name: "version supported",
                metadata: &[
                    B,
                    G,
                    T,
                    ("allowIdleConsumers", "true"),
                    ("version", "1.0.0"),
                ],
                allow_idle: true,
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
                name: "allowIdle and limitToPartitionsWithLag",
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
                name: "allowIdle with limit false",
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
                name: "limitToPartitionsWithLag needs topic",
                metadata: &[B, G, ("limitToPartitionsWithLag", "true")],
                expected: Outcome::Err("limitToPartitionsWithLag"),
                ..BASE
            },
            MetadataCase {
                name: "ensureEvenDistribution true",
                metadata: &[B, G, T, ("ensureEvenDistributionOfPartitions", "true")],
                even: true,
                ..BASE
            },
            MetadataCase {
                name: "limit and ensureEven",
                metadata: &[
                    B,
                    G,
                    T,
                    ("ensureEvenDistributionOfPartitions", "true"),
                    ("limitToPartitionsWithLag", "true"),
                ],
                expected: Outcome::Err("ensureEvenDistributionOfPartitions"),
                ..BASE
            },
            MetadataCase {
                name: "fullMetadata true with topic",
                metadata: &[B, G, T, ("fullMetadata", "true")],
                ..BASE
            },
            MetadataCase {
                name: "fullMetadata true without topic",
                metadata: &[B, G, ("fullMetadata", "true")],
                topic: None,
                ..BASE
            },
            MetadataCase {
                name: "fullMetadata false with topic",
                metadata: &[B, G, T, ("fullMetadata", "false")],
                full_metadata: false,
                ..BASE
            },
            MetadataCase {
                name: "fullMetadata false without topic",
                metadata: &[B, G, ("fullMetadata", "false")],
                expected: Outcome::Err("fullMetadata"),
                ..BASE
            },
            MetadataCase {
                name: "fullMetadata malformed",
                metadata: &[B, G, T, ("fullMetadata", "notabool")],
                expected: Outcome::Err("fullMetadata"),
                ..BASE
            },
            // Beyond KEDA's table: the rules it states but does not test.
            MetadataCase {
                name: "ensureEven needs topic",
                metadata: &[B, G, ("ensureEvenDistributionOfPartitions", "true")],
                expected: Outcome::Err("ensureEvenDistributionOfPartitions"),
                ..BASE
            },
            MetadataCase {
                name: "negative activationLagThreshold",
                metadata: &[B, G, T, ("activationLagThreshold", "-1")],
                expected: Outcome::Err("activationLagThreshold"),
                ..BASE
            },
            MetadataCase {
                name: "go booleans",
                metadata: &[B, G, T, ("allowIdleConsumers", "T"), ("fullMetadata", "0")],
                allow_idle: true,
                full_metadata: false,
                ..BASE
            },
            MetadataCase {
                name: "partitionLimitation validated without topic",
                metadata: &[B, G, ("partitionLimitation", "a")],
                expected: Outcome::Err("partitionLimitation"),
                ..BASE
            },
            MetadataCase {
                name: "lagThreshold float",
                metadata: &[B, G, T, ("lagThreshold", "10.5")],
                expected: Outcome::Err("lagThreshold"),
                ..BASE
            },
        ]
    }

    #[test]
    fn parse_kafka_metadata_test_dataset() {
        for case in metadata_cases() {
            for auth in [WITH_AUTH, &[][..]] {
                let Some(m) = check(case.name, case.metadata, auth, &case.expected) else {
                    continue;
                };
                assert_eq!(m.bootstrap_servers, case.brokers, "{}", case.name);
                assert_eq!(m.consumer_group, "my-group", "{}", case.name);
                assert_eq!(m.topic.as_deref(), case.topic, "{}", case.name);
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
                assert_eq!(m.full_metadata, case.full_metadata, "{}", case.name);
                let expected_threshold = case
                    .metadata
                    .iter()
                    .find(|(k, _)| *k == "lagThreshold")
                    .map_or(10, |(_, v)| v.parse().unwrap_or(10));
                assert_eq!(m.lag_threshold, expected_threshold, "{}", case.name);
            }
        }
    }

    struct AuthCase {
        name: &'static str,
        metadata: Pairs,
        auth: Pairs,
        expected: Outcome,
        tls: bool,
    }

    /// KEDA's `parseKafkaAuthParamsTestDataset`: everything from the TriggerAuthentication.
    #[test]
    fn parse_kafka_auth_params_test_dataset() {
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
                name: "TLS cert/key, public CA",
                auth: &[("tls", "enable"), ("cert", "ceert"), ("key", "keey")],
                expected: Outcome::Ok,
                tls: true,
            },
            AuthParamsCase {
                name: "TLS cert/key + keyPassword",
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
                name: "OAUTHBEARER",
                auth: &[
                    ("sasl", "oauthbearer"),
                    ("username", "admin"),
                    ("password", "admin"),
                    ("scopes", "scope"),
                    ("oauthTokenEndpointUri", "https://website.com"),
                    ("tls", "disable"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthParamsCase {
                name: "GSSAPI password",
                auth: &[
                    ("sasl", "gssapi"),
                    ("username", "admin"),
                    ("password", "admin"),
                    ("kerberosConfig", "<config>"),
                    ("realm", "tst.com"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthParamsCase {
                name: "GSSAPI keytab",
                auth: &[
                    ("sasl", "gssapi"),
                    ("username", "admin"),
                    ("keytab", "/path/to/keytab"),
                    ("kerberosConfig", "<config>"),
                    ("realm", "tst.com"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthParamsCase {
                name: "GSSAPI password + TLS",
                auth: &[
                    ("sasl", "gssapi"),
                    ("username", "admin"),
                    ("password", "admin"),
                    ("kerberosConfig", "<config>"),
                    ("realm", "tst.com"),
                    ("tls", "enable"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Outcome::Ok,
                tls: true,
            },
            AuthParamsCase {
                name: "GSSAPI keytab + TLS",
                auth: &[
                    ("sasl", "gssapi"),
                    ("username", "admin"),
                    ("keytab", "/path/to/keytab"),
                    ("kerberosConfig", "<config>"),
                    ("realm", "tst.com"),
                    ("tls", "enable"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Outcome::Ok,
                tls: true,
            },
            AuthParamsCase {
                name: "GSSAPI service name",
                auth: &[
                    ("sasl", "gssapi"),
                    ("username", "admin"),
                    ("keytab", "/path/to/keytab"),
                    ("kerberosConfig", "<config>"),
                    ("realm", "tst.com"),
                    ("kerberosServiceName", "srckafka"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthParamsCase {
                name: "bad sasl type",
                auth: &[
                    ("sasl", "foo"),
                    ("username", "admin"),
                    ("password", "admin"),
                    ("scopes", "scope"),
                    ("oauthTokenEndpointUri", "https://website.com"),
                    ("tls", "disable"),
                ],
                expected: Outcome::Err("sasl"),
                tls: false,
            },
            AuthParamsCase {
                name: "OAUTHBEARER no scope",
                auth: &[
                    ("sasl", "oauthbearer"),
                    ("username", "admin"),
                    ("password", "admin"),
                    ("oauthTokenEndpointUri", "https://website.com"),
                    ("tls", "disable"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthParamsCase {
                name: "OAUTHBEARER empty endpoint",
                auth: &[
                    ("sasl", "oauthbearer"),
                    ("username", "admin"),
                    ("password", "admin"),
                    ("scopes", "scope"),
                    ("oauthTokenEndpointUri", ""),
                    ("tls", "disable"),
                ],
                expected: Outcome::Err("oauthTokenEndpointUri"),
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
            AuthParamsCase {
                name: "GSSAPI no password nor keytab",
                auth: &[
                    ("sasl", "gssapi"),
                    ("username", "admin"),
                    ("kerberosConfig", "<config>"),
                    ("realm", "tst.com"),
                ],
                expected: Outcome::Err("keytab"),
                tls: false,
            },
            AuthParamsCase {
                name: "GSSAPI password and keytab",
                auth: &[
                    ("sasl", "gssapi"),
                    ("username", "admin"),
                    ("password", "admin"),
                    ("keytab", "/path/to/keytab"),
                    ("kerberosConfig", "<config>"),
                    ("realm", "tst.com"),
                ],
                expected: Outcome::Err("keytab"),
                tls: false,
            },
            AuthParamsCase {
                name: "GSSAPI + TLS missing realm",
                auth: &[
                    ("sasl", "gssapi"),
                    ("username", "admin"),
                    ("password", "admin"),
                    ("kerberosConfig", "<config>"),
                    ("tls", "enable"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Outcome::Err("realm"),
                tls: false,
            },
            AuthParamsCase {
                name: "GSSAPI + TLS missing username",
                auth: &[
                    ("sasl", "gssapi"),
                    ("keytab", "/path/to/keytab"),
                    ("kerberosConfig", "<config>"),
                    ("realm", "tst.com"),
                    ("tls", "enable"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Outcome::Err("username"),
                tls: false,
            },
            AuthParamsCase {
                name: "GSSAPI disableFAST",
                auth: &[
                    ("sasl", "gssapi"),
                    ("username", "admin"),
                    ("keytab", "/path/to/keytab"),
                    ("kerberosConfig", "<config>"),
                    ("realm", "tst.com"),
                    ("kerberosDisableFAST", "true"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthParamsCase {
                name: "GSSAPI disableFAST malformed",
                auth: &[
                    ("sasl", "gssapi"),
                    ("username", "admin"),
                    ("keytab", "/path/to/keytab"),
                    ("kerberosConfig", "<config>"),
                    ("realm", "tst.com"),
                    ("kerberosDisableFAST", "notabool"),
                ],
                expected: Outcome::Err("kerberosDisableFAST"),
                tls: false,
            },
            AuthParamsCase {
                name: "SASL none",
                auth: &[("sasl", "none")],
                expected: Outcome::Ok,
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
                if let Sasl::Gssapi(gssapi) = &m.sasl {
                    let expected = auth
                        .iter()
                        .find(|(k, _)| *k == "kerberosServiceName")
                        .map_or("kafka", |(_, v)| v);
                    assert_eq!(gssapi.service_name, expected, "{name}");
                }
            }
        }
    }

    /// KEDA's `parseAuthParamsTestDataset`: `sasl`/`tls` in the ScaledObject, secrets in the TA.
    #[test]
    fn parse_auth_params_test_dataset() {
        const M: (&str, &str) = ("bootstrapServers", "foobar:9092");
        const G: (&str, &str) = ("consumerGroup", "my-group");
        const T: (&str, &str) = ("topic", "my-topic");
        const I: (&str, &str) = ("allowIdleConsumers", "true");
        const V: (&str, &str) = ("version", "1.0.0");
        let cases = [
            AuthCase {
                name: "plaintext",
                metadata: &[("sasl", "plaintext"), M, G, T, I, V],
                auth: &[("username", "admin"), ("password", "admin")],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthCase {
                name: "scram_sha256",
                metadata: &[("sasl", "scram_sha256"), M, G, T, I, V],
                auth: &[("username", "admin"), ("password", "admin")],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthCase {
                name: "scram_sha512",
                metadata: &[("sasl", "scram_sha512"), M, G, T, I, V],
                auth: &[("username", "admin"), ("password", "admin")],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthCase {
                name: "TLS only",
                metadata: &[("tls", "enable"), M, G, T, I, V],
                auth: &[("ca", "caaa"), ("cert", "ceert"), ("key", "keey")],
                expected: Outcome::Ok,
                tls: true,
            },
            AuthCase {
                name: "TLS cert/key",
                metadata: &[("tls", "enable"), M, G, T, I, V],
                auth: &[("cert", "ceert"), ("key", "keey")],
                expected: Outcome::Ok,
                tls: true,
            },
            AuthCase {
                name: "TLS keyPassword",
                metadata: &[("tls", "enable"), M, G, T, I, V],
                auth: &[
                    ("cert", "ceert"),
                    ("key", "keey"),
                    ("keyPassword", "keeyPassword"),
                ],
                expected: Outcome::Ok,
                tls: true,
            },
            AuthCase {
                name: "TLS CA only",
                metadata: &[("tls", "enable"), M, G, T, I, V],
                auth: &[("ca", "caaa")],
                expected: Outcome::Ok,
                tls: true,
            },
            AuthCase {
                name: "TLS CA + unsafeSsl",
                metadata: &[("tls", "enable"), ("unsafeSsl", "true"), M, G, T, I, V],
                auth: &[("ca", "caaa")],
                expected: Outcome::Ok,
                tls: true,
            },
            AuthCase {
                name: "SASL + TLS",
                metadata: &[("sasl", "plaintext"), ("tls", "enable"), M, G, T, I, V],
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
            AuthCase {
                name: "SASL + TLS disabled",
                metadata: &[("sasl", "plaintext"), ("tls", "disable"), M, G, T, I, V],
                auth: &[("username", "admin"), ("password", "admin")],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthCase {
                name: "OAUTHBEARER TLS disabled",
                metadata: &[("sasl", "oauthbearer"), ("tls", "disable"), M, G, T, I, V],
                auth: &[
                    ("username", "admin"),
                    ("password", "admin"),
                    ("scopes", "scope"),
                    ("oauthTokenEndpointUri", "https://website.com"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthCase {
                name: "GSSAPI password",
                metadata: &[("sasl", "gssapi"), M, G, T, I, V],
                auth: &[
                    ("username", "admin"),
                    ("password", "admin"),
                    ("kerberosConfig", "<config>"),
                    ("realm", "test.com"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthCase {
                name: "GSSAPI password TLS disabled",
                metadata: &[("sasl", "gssapi"), ("tls", "disable"), M, G, T, I, V],
                auth: &[
                    ("username", "admin"),
                    ("password", "admin"),
                    ("kerberosConfig", "<config>"),
                    ("realm", "test.com"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthCase {
                name: "GSSAPI password, TLS material but disabled",
                metadata: &[("sasl", "gssapi"), ("tls", "disable"), M, G, T, I, V],
                auth: &[
                    ("username", "admin"),
                    ("password", "admin"),
                    ("kerberosConfig", "<config>"),
                    ("realm", "test.com"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthCase {
                name: "GSSAPI keytab",
                metadata: &[("sasl", "gssapi"), M, G, T, I, V],
                auth: &[
                    ("username", "admin"),
                    ("keytab", "/path/to/keytab"),
                    ("kerberosConfig", "<config>"),
                    ("realm", "test.com"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthCase {
                name: "GSSAPI keytab TLS disabled",
                metadata: &[("sasl", "gssapi"), ("tls", "disable"), M, G, T, I, V],
                auth: &[
                    ("username", "admin"),
                    ("keytab", "/path/to/keytab"),
                    ("kerberosConfig", "<config>"),
                    ("realm", "test.com"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthCase {
                name: "bad SASL type",
                metadata: &[("sasl", "foo"), ("tls", "disable"), M, G, T, I, V],
                auth: &[
                    ("username", "admin"),
                    ("password", "admin"),
                    ("scopes", "scope"),
                    ("oauthTokenEndpointUri", "https://website.com"),
                ],
                expected: Outcome::Err("sasl"),
                tls: false,
            },
            AuthCase {
                name: "OAUTHBEARER missing scope",
                metadata: &[("sasl", "oauthbearer"), ("tls", "disable"), M, G, T, I, V],
                auth: &[
                    ("username", "admin"),
                    ("password", "admin"),
                    ("oauthTokenEndpointUri", "https://website.com"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthCase {
                name: "OAUTHBEARER missing endpoint",
                metadata: &[("sasl", "oauthbearer"), ("tls", "disable"), M, G, T, I, V],
                auth: &[
                    ("username", "admin"),
                    ("password", "admin"),
                    ("scopes", "scope"),
                    ("oauthTokenEndpointUri", ""),
                ],
                expected: Outcome::Err("oauthTokenEndpointUri"),
                tls: false,
            },
            AuthCase {
                name: "SASL incorrect type",
                metadata: &[("sasl", "foo"), M, G, T, I, V],
                auth: &[("username", "admin"), ("password", "admin")],
                expected: Outcome::Err("sasl"),
                tls: false,
            },
            AuthCase {
                name: "SASL missing username",
                metadata: &[("sasl", "plaintext"), M, G, T, I, V],
                auth: &[("password", "admin")],
                expected: Outcome::Err("username"),
                tls: false,
            },
            AuthCase {
                name: "SASL missing password",
                metadata: &[("sasl", "plaintext"), M, G, T, I, V],
                auth: &[("username", "admin")],
                expected: Outcome::Err("password"),
                tls: false,
            },
            AuthCase {
                name: "TLS missing cert",
                metadata: &[("tls", "enable"), M, G, T, I, V],
                auth: &[("ca", "caaa"), ("key", "keey")],
                expected: Outcome::Err("cert"),
                tls: false,
            },
            AuthCase {
                name: "TLS missing key",
                metadata: &[("tls", "enable"), M, G, T, I, V],
                auth: &[("ca", "caaa"), ("cert", "ceert")],
                expected: Outcome::Err("key"),
                tls: false,
            },
            AuthCase {
                name: "TLS invalid",
                metadata: &[("tls", "random"), M, G, T, I, V],
                auth: &[("ca", "caaa"), ("cert", "ceert"), ("key", "keey")],
                expected: Outcome::Err("tls"),
                tls: false,
            },
            AuthCase {
                name: "SASL + TLS incorrect SASL",
                metadata: &[("sasl", "foo"), ("tls", "enable"), M, G, T, I, V],
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
            AuthCase {
                name: "SASL + TLS incorrect tls",
                metadata: &[("sasl", "plaintext"), ("tls", "foo"), M, G, T, I, V],
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
            AuthCase {
                name: "SASL + TLS missing username",
                metadata: &[("sasl", "plaintext"), ("tls", "enable"), M, G, T, I, V],
                auth: &[
                    ("password", "admin"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Outcome::Err("username"),
                tls: false,
            },
            AuthCase {
                name: "SASL + TLS missing password",
                metadata: &[("sasl", "plaintext"), ("tls", "enable"), M, G, T, I, V],
                auth: &[
                    ("username", "admin"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Outcome::Err("password"),
                tls: false,
            },
            AuthCase {
                name: "SASL + TLS missing cert",
                metadata: &[("sasl", "plaintext"), ("tls", "enable"), M, G, T, I, V],
                auth: &[
                    ("username", "admin"),
                    ("password", "admin"),
                    ("ca", "caaa"),
                    ("key", "keey"),
                ],
                expected: Outcome::Err("cert"),
                tls: false,
            },
            AuthCase {
                name: "SASL + TLS missing key",
                metadata: &[("sasl", "plaintext"), ("tls", "enable"), M, G, T, I, V],
                auth: &[
                    ("username", "admin"),
                    ("password", "admin"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                ],
                expected: Outcome::Err("key"),
                tls: false,
            },
            AuthCase {
                name: "GSSAPI missing keytab and password",
                metadata: &[("sasl", "gssapi"), M, G, T, I, V],
                auth: &[("username", "admin"), ("realm", "test.com")],
                expected: Outcome::Err("keytab"),
                tls: false,
            },
            AuthCase {
                name: "GSSAPI keytab and password",
                metadata: &[("sasl", "gssapi"), ("tls", "disable"), M, G, T, I, V],
                auth: &[
                    ("username", "admin"),
                    ("password", "admin"),
                    ("keytab", "/path/to/keytab"),
                    ("realm", "test.com"),
                ],
                expected: Outcome::Err("keytab"),
                tls: false,
            },
            AuthCase {
                name: "GSSAPI + TLS missing realm",
                metadata: &[("sasl", "gssapi"), ("tls", "enable"), M, G, T, I, V],
                auth: &[
                    ("username", "admin"),
                    ("keytab", "/path/to/keytab"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Outcome::Err("realm"),
                tls: true,
            },
            AuthCase {
                name: "GSSAPI + TLS missing username",
                metadata: &[("sasl", "gssapi"), ("tls", "enable"), M, G, T, I, V],
                auth: &[
                    ("realm", "test.com"),
                    ("keytab", "/path/to/keytab"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Outcome::Err("username"),
                tls: true,
            },
            AuthCase {
                name: "GSSAPI + TLS missing kerberosConfig",
                metadata: &[("sasl", "gssapi"), ("tls", "enable"), M, G, T, I, V],
                auth: &[
                    ("username", "admin"),
                    ("realm", "test.com"),
                    ("keytab", "/path/to/keytab"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Outcome::Err("kerberosConfig"),
                tls: true,
            },
            AuthCase {
                name: "SASL in both places, metadata wins",
                metadata: &[("sasl", "scram_sha512"), M, G, T, I, V],
                auth: &[
                    ("sasl", "scram_sha512"),
                    ("username", "admin"),
                    ("password", "admin"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthCase {
                name: "TLS in both places, metadata wins",
                metadata: &[("tls", "enable"), M, G, T, I, V],
                auth: &[
                    ("tls", "enable"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Outcome::Ok,
                tls: true,
            },
            AuthCase {
                name: "plaintext with newline",
                metadata: &[M, G, T, I, V],
                auth: &[
                    ("sasl", "plaintext\n"),
                    ("username", "admin"),
                    ("password", "admin"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthCase {
                name: "plaintext with space",
                metadata: &[M, G, T, I, V],
                auth: &[
                    ("sasl", "plaintext "),
                    ("username", "admin"),
                    ("password", "admin"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthCase {
                name: "scram_sha256 with newline",
                metadata: &[M, G, T, I, V],
                auth: &[
                    ("sasl", "scram_sha256\n"),
                    ("username", "admin"),
                    ("password", "admin"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthCase {
                name: "scram_sha512 with space",
                metadata: &[M, G, T, I, V],
                auth: &[
                    ("sasl", "scram_sha512 "),
                    ("username", "admin"),
                    ("password", "admin"),
                ],
                expected: Outcome::Ok,
                tls: false,
            },
            AuthCase {
                name: "SASL none",
                metadata: &[("sasl", "none"), M, G, T, I, V],
                auth: &[],
                expected: Outcome::Ok,
                tls: false,
            },
        ];
        for case in cases {
            if let Some(m) = check(case.name, case.metadata, case.auth, &case.expected) {
                assert_eq!(m.tls.is_enabled(), case.tls, "{}", case.name);
            }
        }
    }

    /// KEDA's `parseKafkaOAuthbearerAuthParamsTestDataset` (metadata merged over validKafkaMetadata).
    #[test]
    fn parse_kafka_oauthbearer_auth_params_test_dataset() {
        const BEARER: Pairs = &[
            ("sasl", "oauthbearer"),
            ("username", "admin"),
            ("password", "admin"),
            ("oauthTokenEndpointUri", "https://website.com"),
            ("tls", "disable"),
        ];
        struct OAuthCase {
            name: &'static str,
            extra: Pairs,
            auth: Pairs,
            expected: Outcome,
        }
        let cases: &[OAuthCase] = &[
            OAuthCase {
                name: "bearer",
                extra: &[],
                auth: &[
                    ("sasl", "oauthbearer"),
                    ("username", "admin"),
                    ("password", "admin"),
                    ("scopes", "scope"),
                    ("oauthTokenEndpointUri", "https://website.com"),
                    ("tls", "disable"),
                ],
                expected: Outcome::Ok,
            },
            OAuthCase {
                name: "explicit bearer",
                extra: &[],
                auth: &[
                    ("sasl", "oauthbearer"),
                    ("saslTokenProvider", "bearer"),
                    ("username", "admin"),
                    ("password", "admin"),
                    ("scopes", "scope"),
                    ("oauthTokenEndpointUri", "https://website.com"),
                    ("tls", "disable"),
                ],
                expected: Outcome::Ok,
            },
            OAuthCase {
                name: "multiple scopes",
                extra: &[],
                auth: &[
                    ("sasl", "oauthbearer"),
                    ("username", "admin"),
                    ("password", "admin"),
                    ("scopes", "scope1, scope2"),
                    ("oauthTokenEndpointUri", "https://website.com"),
                    ("tls", "disable"),
                ],
                expected: Outcome::Ok,
            },
            OAuthCase {
                name: "no scope",
                extra: &[],
                auth: BEARER,
                expected: Outcome::Ok,
            },
            OAuthCase {
                name: "bad sasl type",
                extra: &[],
                auth: &[
                    ("sasl", "foo"),
                    ("username", "admin"),
                    ("password", "admin"),
                    ("scopes", "scope"),
                    ("oauthTokenEndpointUri", "https://website.com"),
                    ("tls", "disable"),
                ],
                expected: Outcome::Err("sasl"),
            },
            OAuthCase {
                name: "empty endpoint",
                extra: &[],
                auth: &[
                    ("sasl", "oauthbearer"),
                    ("username", "admin"),
                    ("password", "admin"),
                    ("scopes", "scope"),
                    ("oauthTokenEndpointUri", ""),
                    ("tls", "disable"),
                ],
                expected: Outcome::Err("oauthTokenEndpointUri"),
            },
            OAuthCase {
                name: "extension",
                extra: &[],
                auth: &[
                    ("sasl", "oauthbearer"),
                    ("username", "admin"),
                    ("password", "admin"),
                    ("scopes", "scope"),
                    ("oauthTokenEndpointUri", "https://website.com"),
                    ("tls", "disable"),
                    ("oauthExtensions", "extension_foo=bar"),
                ],
                expected: Outcome::Ok,
            },
            OAuthCase {
                name: "extensions",
                extra: &[],
                auth: &[
                    ("sasl", "oauthbearer"),
                    ("username", "admin"),
                    ("password", "admin"),
                    ("scopes", "scope"),
                    ("oauthTokenEndpointUri", "https://website.com"),
                    ("tls", "disable"),
                    ("oauthExtensions", "extension_foo=bar,extension_baz=baz"),
                ],
                expected: Outcome::Ok,
            },
            OAuthCase {
                name: "bad extension",
                extra: &[],
                auth: &[
                    ("sasl", "oauthbearer"),
                    ("username", "admin"),
                    ("password", "admin"),
                    ("scopes", "scope"),
                    ("oauthTokenEndpointUri", "https://website.com"),
                    ("tls", "disable"),
                    ("oauthExtensions", "extension_foo=bar,extension_bazbaz"),
                ],
                expected: Outcome::Err("oauthExtensions"),
            },
            OAuthCase {
                name: "MSK + TLS + keys",
                extra: &[("awsRegion", "eu-west-1")],
                auth: &[
                    ("sasl", "oauthbearer"),
                    ("saslTokenProvider", "aws_msk_iam"),
                    ("tls", "enable"),
                    ("awsAccessKeyID", "none"),
                    ("awsSecretAccessKey", "none"),
                ],
                expected: Outcome::Ok,
            },
            OAuthCase {
                name: "MSK + TLS + role",
                extra: &[("awsRegion", "eu-west-1")],
                auth: &[
                    ("sasl", "oauthbearer"),
                    ("saslTokenProvider", "aws_msk_iam"),
                    ("tls", "enable"),
                    ("awsRegion", "eu-west-1"),
                    ("awsRoleArn", "none"),
                ],
                expected: Outcome::Ok,
            },
            OAuthCase {
                name: "MSK without TLS",
                extra: &[],
                auth: &[
                    ("sasl", "oauthbearer"),
                    ("saslTokenProvider", "aws_msk_iam"),
                    ("tls", "disable"),
                ],
                expected: Outcome::Err("tls"),
            },
            OAuthCase {
                name: "MSK without region",
                extra: &[],
                auth: &[
                    ("sasl", "oauthbearer"),
                    ("saslTokenProvider", "aws_msk_iam"),
                    ("tls", "enable"),
                    ("awsRegion", ""),
                ],
                expected: Outcome::Err("awsRegion"),
            },
            // KEDA names this case "no credentials", but `awsRegion` is read from metadata only,
            // so it fails on the region first.
            OAuthCase {
                name: "MSK, region only in auth params",
                extra: &[],
                auth: &[
                    ("sasl", "oauthbearer"),
                    ("saslTokenProvider", "aws_msk_iam"),
                    ("tls", "enable"),
                    ("awsRegion", "eu-west-1"),
                ],
                expected: Outcome::Err("awsRegion"),
            },
            OAuthCase {
                name: "MSK without credentials",
                extra: &[("awsRegion", "eu-west-1")],
                auth: &[
                    ("sasl", "oauthbearer"),
                    ("saslTokenProvider", "aws_msk_iam"),
                    ("tls", "enable"),
                ],
                expected: Outcome::Err("awsAccessKeyID"),
            },
        ];
        for OAuthCase {
            name,
            extra,
            auth,
            expected,
        } in cases
        {
            let mut metadata: Vec<(&str, &str)> = VALID.to_vec();
            metadata.extend_from_slice(extra);
            let Some(m) = check(name, &metadata, auth, expected) else {
                continue;
            };
            match &m.sasl {
                Sasl::OAuthBearer(OAuthTokenProvider::Bearer {
                    scopes, extensions, ..
                }) => {
                    let raw = auth.iter().find(|(k, _)| *k == "scopes").map(|(_, v)| *v);
                    let expected_scopes: Vec<&str> =
                        raw.map_or(vec![], |v| v.split(',').map(str::trim).collect());
                    assert_eq!(scopes, &expected_scopes, "{name}");
                    let raw = auth
                        .iter()
                        .find(|(k, _)| *k == "oauthExtensions")
                        .map(|(_, v)| *v);
                    assert_eq!(
                        extensions.len(),
                        raw.map_or(0, |v| v.split(',').count()),
                        "{name}"
                    );
                }
                Sasl::OAuthBearer(OAuthTokenProvider::AwsMskIam {
                    region,
                    authorization,
                }) => {
                    assert_eq!(region, "eu-west-1", "{name}");
                    let expected = if auth.iter().any(|(k, _)| *k == "awsRoleArn") {
                        AwsAuthorization::Role {
                            role_arn: "none".into(),
                        }
                    } else {
                        AwsAuthorization::AccessKey {
                            access_key_id: "none".into(),
                            secret_access_key: "none".into(),
                            session_token: None,
                        }
                    };
                    assert_eq!(authorization, &expected, "{name}");
                }
                other => panic!("{name}: expected oauthbearer, got {other:?}"),
            }
        }
    }

    /// KEDA's `GetAwsAuthorization`: with `podIdentity.provider: aws` no static keys are needed.
    #[test]
    fn msk_iam_with_aws_pod_identity_needs_no_keys() {
        let metadata: Pairs = &[
            ("bootstrapServers", "foobar:9092"),
            ("consumerGroup", "my-group"),
            ("topic", "my-topic"),
            ("awsRegion", "eu-west-1"),
        ];
        let auth: Pairs = &[
            ("sasl", "oauthbearer"),
            ("saslTokenProvider", "aws_msk_iam"),
            ("tls", "enable"),
        ];
        let mut cfg = config(metadata, auth, 0);
        assert_eq!(
            Metadata::parse(&cfg).unwrap_err().0[0].key,
            "awsAccessKeyID"
        );
        cfg.pod_identity = Some(PodIdentity::new("aws"));
        let m = Metadata::parse(&cfg).unwrap();
        assert_eq!(
            m.sasl,
            Sasl::OAuthBearer(OAuthTokenProvider::AwsMskIam {
                region: "eu-west-1".into(),
                authorization: AwsAuthorization::PodIdentity {
                    role_arn: None,
                    external_id: None,
                    identity_owner: None,
                },
            })
        );
    }

    /// KEDA's `kafkaMetricIdentifiers`.
    #[test]
    fn kafka_metric_identifiers() {
        let with_topic: Pairs = &[
            ("bootstrapServers", "foobar:9092"),
            ("consumerGroup", "my-group"),
            ("topic", "my-topic"),
        ];
        let without_topic: Pairs = &[
            ("bootstrapServers", "foobar:9092"),
            ("consumerGroup", "my-group"),
        ];
        let cases = [
            (with_topic, 0, "s0-kafka-my-topic"),
            (with_topic, 1, "s1-kafka-my-topic"),
            (without_topic, 1, "s1-kafka-my-group-topics"),
        ];
        let context = ScalerContext::default();
        for (metadata, index, name) in cases {
            let scaler = KafkaScaler::build(&config(metadata, WITH_AUTH, index), &context)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let specs = scaler.metric_specs();
            let metric = specs[0]
                .external()
                .unwrap_or_else(|| panic!("{name}: external"));
            assert_eq!(metric.name.as_str(), name);
            assert_eq!(metric.target, 10.0);
        }
    }

    /// KEDA's inline table in `TestKafkaParsePartitionLimitation`.
    #[test]
    fn partition_limitation_lists_and_ranges() {
        let cases: &[(&str, Option<&[i32]>)] = &[
            ("1", Some(&[1])),
            ("1,2,3,4", Some(&[1, 2, 3, 4])),
            (" 1 , 2 , 3 ", Some(&[1, 2, 3])),
            ("1-4", Some(&[1, 2, 3, 4])),
            ("3-3", Some(&[3])),
            (" 1 - 4 ", Some(&[1, 2, 3, 4])),
            ("1-4,8,10-12", Some(&[1, 2, 3, 4, 8, 10, 11, 12])),
            ("a,b,c", None),
            ("1-2-3", None),
            ("a-3", None),
            ("1-b", None),
            ("2147483648", None),
        ];
        for (input, expected) in cases {
            assert_eq!(
                parse_partition_limitation(input).ok().as_deref(),
                *expected,
                "{input:?}"
            );
        }
    }

    #[test]
    fn kafka_versions_follow_sarama() {
        assert_eq!(KafkaVersion::parse("1.0.0"), Ok(KafkaVersion([1, 0, 0, 0])));
        assert_eq!(
            KafkaVersion::parse("0.10.2.1"),
            Ok(KafkaVersion([0, 10, 2, 1]))
        );
        assert_eq!(
            KafkaVersion::parse("3.6.0")
                .map(|v| v.to_string())
                .as_deref(),
            Ok("3.6.0")
        );
        for bad in ["1.2.3.4", "1.0", "0.10.2", "v1.0.0", "1.a.0", "1..00"] {
            assert!(KafkaVersion::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metric_type_utilization_is_rejected_with_other_errors() {
        let mut c = config(&[], &[], 0);
        c.metric_type = Some(scaler_core::MetricTargetType::Utilization);
        let errors = KafkaScaler::build(&c, &ScalerContext::default()).unwrap_err();
        assert_eq!(errors.0[0].key, "metricType");
        assert!(errors.0.iter().any(|e| e.key == "bootstrapServers"));
    }

    #[tokio::test]
    async fn sasl_mechanisms_this_build_lacks_are_unsupported_when_sampled() {
        let cases: &[(Pairs, &str)] = &[
            (
                &[
                    ("sasl", "gssapi"),
                    ("username", "u"),
                    ("password", "p"),
                    ("realm", "EXAMPLE.COM"),
                    ("kerberosConfig", "[libdefaults]"),
                ],
                "gssapi",
            ),
            (
                &[
                    ("sasl", "oauthbearer"),
                    ("saslTokenProvider", "aws_msk_iam"),
                    ("tls", "enable"),
                    ("awsAccessKeyID", "k"),
                    ("awsSecretAccessKey", "s"),
                ],
                "AWS MSK IAM",
            ),
            (
                &[
                    ("sasl", "oauthbearer"),
                    ("username", "id"),
                    ("password", "secret"),
                    ("oauthTokenEndpointUri", "http://127.0.0.1:9/token"),
                    ("oauthExtensions", "logicalCluster=lkc-1"),
                ],
                "oauthExtensions",
            ),
        ];
        for (auth, named) in cases {
            let mut metadata = VALID.to_vec();
            if auth.iter().any(|(_, v)| *v == "aws_msk_iam") {
                metadata.push(("awsRegion", "eu-west-1"));
            }
            let scaler = KafkaScaler::build(&config(&metadata, auth, 0), &ScalerContext::default())
                .unwrap_or_else(|e| panic!("{e}"));
            let name = scaler_core::MetricName::indexed(0, "kafka-my-topic");
            let request = SampleRequest {
                metric: &name,
                now: chrono::Utc::now(),
            };
            let error = scaler.sample(request).await.unwrap_err();
            assert_eq!(
                error.category,
                scaler_core::ErrorCategory::Unsupported,
                "{error}"
            );
            assert!(error.message.contains(named), "{error}");
        }
    }

    #[test]
    fn oauthbearer_bearer_connects_with_client_credentials() {
        let auth: Pairs = &[
            ("sasl", "oauthbearer"),
            ("username", "id"),
            ("password", "secret"),
            ("oauthTokenEndpointUri", "https://idp.example/token"),
            ("scopes", "a, b"),
        ];
        let metadata = Metadata::parse(&config(VALID, auth, 0)).unwrap();
        let connection = KafkaScaler::connection(&metadata).unwrap();
        let expected = KafkaConnection::new(
            &metadata.bootstrap_servers,
            None,
            &SaslSettings::OAuthBearer(OAuthClientCredentials {
                client_id: "id".into(),
                client_secret: "secret".into(),
                token_endpoint: "https://idp.example/token".into(),
                scopes: vec!["a".into(), "b".into()],
            }),
        );
        assert_eq!(connection, expected);
        assert!(
            connection.identity().contains("OAUTHBEARER"),
            "{connection:?}"
        );
    }

    fn offsets(pairs: &[(&str, i32, i64)]) -> PartitionOffsets {
        pairs
            .iter()
            .map(|(topic, id, offset)| (((*topic).to_owned(), *id), *offset))
            .collect()
    }

    const RULES: LagRules = LagRules {
        lag_threshold: 10,
        offset_reset_policy: OffsetResetPolicy::Latest,
        scale_to_zero_on_invalid_offset: false,
        exclude_persistent_lag: false,
        allow_idle_consumers: false,
        limit_to_partitions_with_lag: false,
        ensure_even_distribution_of_partitions: false,
        missing_committed: MissingCommitted::Error,
    };

    #[test]
    fn balancing_factor_is_keda_get_next_factor() {
        // KEDA's TestGetNextFactor.
        for (lag, expected) in [
            (10, 1),
            (20, 2),
            (40, 4),
            (50, 5),
            (99, 10),
            (100, 10),
            (101, 20),
        ] {
            assert_eq!(balancing_factor(lag, 100, 10), expected, "lag {lag}");
        }
        assert_eq!(balancing_factor(0, 6, 10), 1, "lag 0 gives one threshold");
        assert_eq!(balancing_factor(1000, 6, 10), 6, "no divisor is enough");
        assert_eq!(balancing_factor(5, 0, 10), 0, "no partitions");
    }

    #[test]
    fn lag_rules_per_partition_and_cap() {
        struct Case {
            name: &'static str,
            rules: LagRules,
            committed: &'static [(&'static str, i32, i64)],
            latest: &'static [(&'static str, i32, i64)],
            lag: i64,
            with_persistent: i64,
        }
        let cases = [
            Case {
                name: "plain lag",
                rules: LagRules {
                    allow_idle_consumers: true,
                    ..RULES
                },
                committed: &[("t", 0, 4), ("t", 1, 7)],
                latest: &[("t", 0, 10), ("t", 1, 10)],
                lag: 9,
                with_persistent: 9,
            },
            Case {
                name: "invalid offset, latest policy",
                rules: RULES,
                committed: &[("t", 0, -1)],
                latest: &[("t", 0, 10)],
                lag: 1,
                with_persistent: 1,
            },
            Case {
                name: "invalid offset, earliest policy",
                rules: LagRules {
                    offset_reset_policy: OffsetResetPolicy::Earliest,
                    allow_idle_consumers: true,
                    ..RULES
                },
                committed: &[("t", 0, -1)],
                latest: &[("t", 0, 25)],
                lag: 25,
                with_persistent: 25,
            },
            Case {
                name: "invalid offset, scale to zero",
                rules: LagRules {
                    offset_reset_policy: OffsetResetPolicy::Earliest,
                    scale_to_zero_on_invalid_offset: true,
                    ..RULES
                },
                committed: &[("t", 0, -1)],
                latest: &[("t", 0, 25)],
                lag: 0,
                with_persistent: 0,
            },
            Case {
                name: "cap at partitions x threshold, integer division",
                rules: RULES,
                committed: &[("t", 0, 0), ("t", 1, 0)],
                latest: &[("t", 0, 15), ("t", 1, 14)],
                // 29 / 10 = 2, not above 2 partitions: no cap.
                lag: 29,
                with_persistent: 29,
            },
            Case {
                name: "cap applies above",
                rules: RULES,
                committed: &[("t", 0, 0), ("t", 1, 0)],
                latest: &[("t", 0, 15), ("t", 1, 15)],
                lag: 20,
                with_persistent: 30,
            },
            Case {
                name: "limit to partitions with lag",
                rules: LagRules {
                    limit_to_partitions_with_lag: true,
                    ..RULES
                },
                committed: &[("t", 0, 0), ("t", 1, 5), ("t", 2, 5)],
                latest: &[("t", 0, 50), ("t", 1, 5), ("t", 2, 5)],
                lag: 10,
                with_persistent: 50,
            },
            Case {
                name: "even distribution",
                rules: LagRules {
                    ensure_even_distribution_of_partitions: true,
                    ..RULES
                },
                committed: &[("t", 0, 0), ("t", 1, 0), ("t", 2, 0), ("t", 3, 0)],
                latest: &[("t", 0, 30), ("t", 1, 0), ("t", 2, 0), ("t", 3, 0)],
                // 30 needs 3 consumers; the next divisor of 4 is 4.
                lag: 40,
                with_persistent: 30,
            },
            Case {
                name: "even distribution with no lag is one threshold",
                rules: LagRules {
                    ensure_even_distribution_of_partitions: true,
                    ..RULES
                },
                committed: &[("t", 0, 3)],
                latest: &[("t", 0, 3)],
                lag: 10,
                with_persistent: 0,
            },
            Case {
                name: "partition missing from latest offsets is not evaluated",
                rules: RULES,
                committed: &[("t", 0, 0), ("t", 1, 0)],
                latest: &[("t", 0, 30)],
                lag: 10,
                with_persistent: 30,
            },
            Case {
                name: "apache-kafka: missing committed offset counts as 0",
                rules: LagRules {
                    missing_committed: MissingCommitted::Zero,
                    allow_idle_consumers: true,
                    ..RULES
                },
                committed: &[("t", 0, 2)],
                latest: &[("t", 0, 5), ("t", 1, 7)],
                lag: 10,
                with_persistent: 10,
            },
        ];
        for case in cases {
            let total = total_lag(
                &case.rules,
                &offsets(case.committed),
                &offsets(case.latest),
                &mut PreviousOffsets::new(),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert_eq!(total.lag, case.lag, "{}", case.name);
            assert_eq!(
                total.lag_with_persistent, case.with_persistent,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn missing_committed_offset_is_an_error_for_kafka_and_empty_for_apache() {
        let latest = offsets(&[("t", 0, 5)]);
        let error = total_lag(&RULES, &offsets(&[]), &latest, &mut PreviousOffsets::new());
        assert!(matches!(error, Err(LagError::MissingPartition { .. })));
        let apache = LagRules {
            missing_committed: MissingCommitted::Zero,
            ..RULES
        };
        let error = total_lag(&apache, &offsets(&[]), &latest, &mut PreviousOffsets::new());
        assert!(matches!(error, Err(LagError::NoCommittedOffsets)));
    }

    #[test]
    fn persistent_lag_is_excluded_from_the_second_poll_on() {
        let rules = LagRules {
            exclude_persistent_lag: true,
            allow_idle_consumers: true,
            ..RULES
        };
        let mut previous = PreviousOffsets::new();
        let latest = offsets(&[("t", 0, 10), ("t", 1, 10)]);
        let first = total_lag(
            &rules,
            &offsets(&[("t", 0, 2), ("t", 1, 4)]),
            &latest,
            &mut previous,
        );
        assert_eq!(
            first.unwrap(),
            TotalLag {
                lag: 14,
                lag_with_persistent: 14
            }
        );
        // Partition 0 is stuck, partition 1 moved.
        let second = total_lag(
            &rules,
            &offsets(&[("t", 0, 2), ("t", 1, 5)]),
            &latest,
            &mut previous,
        );
        assert_eq!(
            second.unwrap(),
            TotalLag {
                lag: 5,
                lag_with_persistent: 13
            }
        );
    }
}
