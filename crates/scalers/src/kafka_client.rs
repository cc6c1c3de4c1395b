//! Kafka clients shared by every `kafka` and `apache-kafka` trigger: librdkafka (`rdkafka`) for
//! metadata and latest offsets, Windlass's own connections for committed offsets.
//!
//! # Why this shape
//!
//! KEDA builds a Sarama client (plus a cluster admin) per ScaledObject trigger, and each keeps the
//! metadata of the whole cluster; at 3,000 ScaledObjects its operator reached about 35 GiB. Here:
//!
//! - **One cluster client per brokers and credentials** ([`KafkaConnection`]), shared by every
//!   trigger on that cluster. It is a librdkafka consumer *without* a `group.id`, used only for
//!   metadata and latest offsets. Metadata is asked for **the topics in use only** (one request
//!   per topic, never cached by us; librdkafka keeps just the topics it was asked about). The
//!   exception is a trigger that names no topic: KEDA's rule then needs the topic list of the
//!   cluster, which is fetched for that poll and dropped.
//! - **Latest offsets in one batch**: `offsets_for_times` with timestamp −1 (`Offset::End`) is a
//!   ListOffsets request per partition-leader broker for all the partitions of a poll, as KEDA
//!   does. The cluster client reads with `isolation.level=read_uncommitted`, so the answer is the
//!   high-water mark (Sarama's "newest offset"), not the last stable offset.
//! - **Committed offsets without a client per group**: `rdkafka` 0.39 has no admin
//!   ListConsumerGroupOffsets (librdkafka does, but only through `unsafe` FFI, which this
//!   workspace forbids), and a librdkafka consumer reads committed offsets for its own
//!   `group.id` only. So Windlass speaks FindCoordinator and OffsetFetch itself
//!   ([`crate::kafka_offsets`]): one connection per coordinator broker and credentials, shared
//!   by every group and trigger, many groups per request on brokers that take them (Kafka 3.0+).
//!   Measured on librdkafka's three-broker mock cluster: reading 50 groups added no thread and
//!   opened 3 connections, where the per-group readers below added 314 threads.
//! - **Per-group readers, the fallback**: where the direct reader cannot serve a cluster (a TLS
//!   key with a password; a broker without FindCoordinator, OffsetFetch v1+ or, with SASL,
//!   SaslHandshake v1 and SaslAuthenticate), each group gets one small consumer with that
//!   `group.id` that **never subscribes** (so it never joins the group, takes no partitions and
//!   commits nothing), created on first use and shared by every trigger reading that group on
//!   that cluster. Its cost is librdkafka's threads, about 6 per reader on a 3-broker cluster. A
//!   reader unused for 15 minutes (its ScaledObject is gone, or reads another group) is closed.
//! - Clients are not rebuilt after errors: librdkafka reconnects by itself. Closing a client can
//!   wait on its brokers, so it happens on the blocking pool, never on an async worker.
//! - Calls are blocking in librdkafka; each runs on tokio's blocking pool with a timeout (the
//!   process-wide sample timeout), so a dead cluster costs a bounded wait and a categorised error.
//!
//! Security settings map to librdkafka as follows: `tls: enable` → `security.protocol` `ssl` or
//! `sasl_ssl`; `ca`, `cert`, `key`, `keyPassword` → `ssl.ca.pem`, `ssl.certificate.pem`,
//! `ssl.key.pem`, `ssl.key.password`; `unsafeSsl` → `enable.ssl.certificate.verification=false`
//! and no host-name check; `sasl: plaintext` → `PLAIN`, `scram_sha256`/`scram_sha512` →
//! `SCRAM-SHA-256`/`SCRAM-SHA-512` with `sasl.username`/`sasl.password`; `oauthbearer` (token
//! provider `bearer`) → `OAUTHBEARER` with tokens from an
//! [`OAuthTokenSource`].
//!
//! # OAUTHBEARER tokens
//!
//! This librdkafka has no libcurl, so its own OIDC client is out; Windlass fetches tokens itself
//! and hands them over through rdkafka's refresh hook ([`KafkaContext`]). librdkafka asks for a
//! token when a client is made and again at 80% of the token's life, by queueing an event that
//! is served when the client is polled: here, by the `drain` at the start of every request,
//! which runs on tokio's blocking pool. Before each request the token is also made sure of on
//! the async side ([`OAuthTokenSource::token`](crate::kafka_auth::OAuthTokenSource::token)), so
//! the hook normally finds it cached, and an endpoint that refuses or is down fails the poll at
//! once with its own categorised error instead of a broker timeout. When the hook does find no
//! reusable token (librdkafka's 80% refresh between polls), it spawns the request on the
//! runtime the client was made on and waits for the answer on a channel, bounded by the request
//! timeout. Why not `Handle::block_on`: it panics when called on an async worker, and a client
//! could be polled there (a consumer closing in a drop, say); the channel wait cannot panic,
//! and at worst holds that thread for the timeout. Why not a runtime of its own: a thread kept
//! for a rarely used path, and reqwest's pool tied to a second runtime; the waiting thread is a
//! blocking-pool thread anyway. One token source per set of client credentials is shared by the
//! cluster client and the group readers of every cluster that uses them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};
use scaler_core::{ErrorCategory, ScalerError};
use thiserror::Error;

use crate::connections::SharedConnections;
use crate::kafka_auth::{OAuthClientCredentials, OAuthTokenSource, OAuthTokenSources, TokenError};
use crate::kafka_offsets::{BrokerError, ConnectionStats, OffsetReaders, Route};

/// Partition ids by topic.
pub type TopicPartitions = BTreeMap<String, Vec<i32>>;

/// Offsets by topic and partition.
pub type PartitionOffsets = BTreeMap<(String, i32), i64>;

/// TLS settings of a Kafka connection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlsSettings {
    /// CA certificates (PEM); none means the system's roots.
    pub ca: Option<String>,
    /// Client certificate and key (PEM), with the key's password.
    pub cert: Option<String>,
    pub key: Option<String>,
    pub key_password: Option<String>,
    /// Skip certificate and host-name verification (`unsafeSsl`).
    pub skip_verify: bool,
}

/// SASL mechanisms librdkafka is built with here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum SaslSettings {
    #[default]
    None,
    Plain {
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
    /// `OAUTHBEARER` with tokens from an OAuth client-credentials endpoint.
    OAuthBearer(OAuthClientCredentials),
}

/// Brokers and credentials: the key of one shared cluster client.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KafkaConnection {
    bootstrap_servers: String,
    /// librdkafka properties for security, sorted.
    properties: BTreeMap<String, String>,
    /// Where OAUTHBEARER tokens come from, with `sasl.mechanism=OAUTHBEARER`.
    oauth: Option<OAuthClientCredentials>,
    /// The same settings, typed, for the direct offset reader ([`crate::kafka_offsets`]).
    tls: Option<TlsSettings>,
    sasl: SaslSettings,
}

/// Properties whose values are secrets: hidden from [`KafkaConnection::identity`].
const SECRET_PROPERTIES: &[&str] = &["sasl.password", "ssl.key.pem", "ssl.key.password"];

impl KafkaConnection {
    pub fn new(
        bootstrap_servers: &[String],
        tls: Option<&TlsSettings>,
        sasl: &SaslSettings,
    ) -> Self {
        let mut properties = BTreeMap::new();
        let mut set = |key: &str, value: &str| {
            properties.insert(key.to_owned(), value.to_owned());
        };
        let credentials = match sasl {
            SaslSettings::None | SaslSettings::OAuthBearer(_) => None,
            SaslSettings::Plain { username, password } => Some(("PLAIN", username, password)),
            SaslSettings::ScramSha256 { username, password } => {
                Some(("SCRAM-SHA-256", username, password))
            }
            SaslSettings::ScramSha512 { username, password } => {
                Some(("SCRAM-SHA-512", username, password))
            }
        };
        let oauth = match sasl {
            SaslSettings::OAuthBearer(credentials) => Some(credentials.clone()),
            _ => None,
        };
        let protocol = match (tls.is_some(), credentials.is_some() || oauth.is_some()) {
            (false, false) => "plaintext",
            (true, false) => "ssl",
            (false, true) => "sasl_plaintext",
            (true, true) => "sasl_ssl",
        };
        set("security.protocol", protocol);
        if let Some((mechanism, username, password)) = credentials {
            set("sasl.mechanism", mechanism);
            set("sasl.username", username);
            set("sasl.password", password);
        }
        if oauth.is_some() {
            set("sasl.mechanism", "OAUTHBEARER");
        }
        if let Some(tls) = tls {
            if let Some(ca) = &tls.ca {
                set("ssl.ca.pem", ca);
            }
            if let Some(cert) = &tls.cert {
                set("ssl.certificate.pem", cert);
            }
            if let Some(key) = &tls.key {
                set("ssl.key.pem", key);
            }
            if let Some(password) = &tls.key_password {
                set("ssl.key.password", password);
            }
            if tls.skip_verify {
                set("enable.ssl.certificate.verification", "false");
                set("ssl.endpoint.identification.algorithm", "none");
            }
        }
        Self {
            bootstrap_servers: bootstrap_servers
                .iter()
                .map(|server| server.trim())
                .collect::<Vec<_>>()
                .join(","),
            properties,
            oauth,
            tls: tls.cloned(),
            sasl: sasl.clone(),
        }
    }

    /// A stable text naming these settings, secrets replaced by a hash of them: used in query
    /// keys, messages and `Debug`.
    pub fn identity(&self) -> String {
        let mut secrets = DefaultHasher::new();
        let mut shown = Vec::new();
        for (key, value) in &self.properties {
            if SECRET_PROPERTIES.contains(&key.as_str()) {
                (key, value).hash(&mut secrets);
            } else if key.ends_with(".pem") {
                // Certificates are not secret but long: a hash tells them apart.
                (key, value).hash(&mut secrets);
                shown.push(format!("{key}=<pem>"));
            } else {
                shown.push(format!("{key}={value}"));
            }
        }
        if let Some(oauth) = &self.oauth {
            oauth.client_secret.hash(&mut secrets);
            shown.push(format!(
                "oauth={}@{} scopes={}",
                oauth.client_id,
                oauth.token_endpoint,
                oauth.scopes.join(" ")
            ));
        }
        format!(
            "kafka://{} {} #{:016x}",
            self.bootstrap_servers,
            shown.join(" "),
            secrets.finish()
        )
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// The TLS settings, when TLS is enabled.
    pub fn tls(&self) -> Option<&TlsSettings> {
        self.tls.as_ref()
    }

    /// The SASL settings.
    pub fn sasl(&self) -> &SaslSettings {
        &self.sasl
    }

    fn config(&self, timeout: Duration) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", "windlass")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("allow.auto.create.topics", "false")
            .set("isolation.level", "read_uncommitted")
            .set("socket.timeout.ms", timeout.as_millis().max(10).to_string())
            .set("log_level", "3");
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

impl fmt::Debug for KafkaConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.identity())
    }
}

/// A Kafka request that failed, naming what was asked of which cluster.
#[derive(Debug, Error)]
pub enum KafkaClientError {
    #[error("creating a Kafka client for {servers}: {source}")]
    Create {
        servers: String,
        #[source]
        source: KafkaError,
    },
    #[error("{operation} on {servers}: {source}")]
    Request {
        operation: &'static str,
        servers: String,
        #[source]
        source: KafkaError,
    },
    #[error("{operation} on {servers}: {what}: {code}")]
    Item {
        operation: &'static str,
        servers: String,
        what: String,
        code: RDKafkaErrorCode,
    },
    #[error("{operation} on {servers}: the request worker stopped")]
    Worker {
        operation: &'static str,
        servers: String,
    },
    #[error("{operation} on {servers}: {source}")]
    Token {
        operation: &'static str,
        servers: String,
        #[source]
        source: TokenError,
    },
    /// A direct request ([`crate::kafka_offsets`]) failed.
    #[error("{operation} on {servers}: {source}")]
    Broker {
        operation: &'static str,
        servers: String,
        #[source]
        source: BrokerError,
    },
}

fn category_of(code: Option<RDKafkaErrorCode>) -> ErrorCategory {
    use RDKafkaErrorCode as C;
    match code {
        Some(C::OperationTimedOut | C::RequestTimedOut | C::TimedOutQueue) => {
            ErrorCategory::Timeout
        }
        Some(
            C::AllBrokersDown
            | C::BrokerTransportFailure
            | C::BrokerNotAvailable
            | C::NetworkException
            | C::Resolve
            | C::SSL
            | C::Authentication
            | C::SaslAuthenticationFailed
            | C::CoordinatorNotAvailable
            | C::CoordinatorLoadInProgress
            | C::NotCoordinator,
        ) => ErrorCategory::Connect,
        _ => ErrorCategory::Query,
    }
}

impl KafkaClientError {
    /// The category the policy acts on.
    pub fn category(&self) -> ErrorCategory {
        match self {
            Self::Create { .. } | Self::Worker { .. } => ErrorCategory::Connect,
            Self::Request { source, .. } => category_of(source.rdkafka_error_code()),
            Self::Item { code, .. } => category_of(Some(*code)),
            Self::Token { source, .. } => source.category(),
            Self::Broker { source, .. } => source.category(),
        }
    }

    /// The error with its category, for the `sample` boundary.
    pub fn into_scaler_error(self, context: &str) -> ScalerError {
        ScalerError::new(self.category(), format!("{context}: {self}"))
    }

    /// Whether the error is "this topic does not exist".
    pub fn is_unknown_topic(&self) -> bool {
        matches!(
            self,
            Self::Item {
                code: RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic,
                ..
            }
        )
    }
}

/// The context of Windlass's librdkafka clients: it answers librdkafka's OAUTHBEARER token
/// refresh events from the connection's token source.
pub struct KafkaContext {
    tokens: Option<Arc<OAuthTokenSource>>,
    /// The runtime the client was made on, where token requests run.
    runtime: Option<tokio::runtime::Handle>,
    /// Bound on one token request.
    timeout: Duration,
}

/// How much longer than the token request's own bound the hook waits for its answer.
const TOKEN_WAIT_MARGIN: Duration = Duration::from_secs(1);

impl KafkaContext {
    /// A context taking tokens from `tokens` (none: the client does not use OAUTHBEARER),
    /// fetching on the current runtime if there is one.
    pub fn new(tokens: Option<Arc<OAuthTokenSource>>, timeout: Duration) -> Self {
        Self {
            tokens,
            runtime: tokio::runtime::Handle::try_current().ok(),
            timeout,
        }
    }

    /// Fetches a token on the runtime and waits for it on this (non-async) thread.
    fn fetch_and_wait(
        &self,
        source: &Arc<OAuthTokenSource>,
    ) -> Result<crate::kafka_auth::BearerToken, TokenError> {
        let endpoint = || source.credentials().token_endpoint.clone();
        let Some(runtime) = &self.runtime else {
            return Err(TokenError::Worker {
                endpoint: endpoint(),
            });
        };
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        let task_source = Arc::clone(source);
        let timeout = self.timeout;
        drop(runtime.spawn(async move {
            let _ = answer.send(task_source.token(timeout).await);
        }));
        match answered.recv_timeout(timeout + TOKEN_WAIT_MARGIN) {
            Ok(token) => token,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(TokenError::Timeout {
                endpoint: endpoint(),
                timeout,
            }),
            // The runtime is gone (shut down): the task was dropped unrun.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(TokenError::Worker {
                endpoint: endpoint(),
            }),
        }
    }
}

impl ClientContext for KafkaContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    /// Called by librdkafka (on the thread that polls the client) when it needs a token: the
    /// cached one while reusable, else a new one. An error is handed to librdkafka, which
    /// retries in 10 s; the next request's own token check reports it.
    fn generate_oauth_token(
        &self,
        _oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        let source = self
            .tokens
            .as_ref()
            .ok_or("this Kafka client has no OAuth token source (its sasl is not oauthbearer)")?;
        let token = match source.cached() {
            Some(token) => token,
            None => self.fetch_and_wait(source)?,
        };
        Ok(OAuthToken {
            token: token.value,
            principal_name: token.principal,
            lifetime_ms: token.lifetime_ms,
        })
    }
}

impl ConsumerContext for KafkaContext {}

type Client = Arc<BaseConsumer<KafkaContext>>;

/// Group readers unused this long are closed: the ScaledObject that read the group is gone or
/// reads another group now.
const IDLE_READER: Duration = Duration::from_secs(15 * 60);

type GroupKey = (KafkaConnection, String);

/// The shared Kafka clients: one per cluster and credentials, and one per consumer group read.
pub struct KafkaClients {
    clusters: SharedConnections<KafkaConnection, Client>,
    groups: SharedConnections<GroupKey, Client>,
    /// When each group reader was last asked for.
    reader_use: Mutex<HashMap<GroupKey, Instant>>,
    idle_reader: Duration,
    /// OAuth token sources by client credentials.
    tokens: OAuthTokenSources,
    /// Committed offsets over Windlass's own connections, one per coordinator broker; `None`
    /// reads every group through its own librdkafka reader.
    offsets: Option<OffsetReaders>,
}

impl Default for KafkaClients {
    fn default() -> Self {
        Self::with_idle_reader_limit(IDLE_READER)
    }
}

impl fmt::Debug for KafkaClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaClients")
            .field("clusters", &self.clusters.len())
            .field("groups", &self.groups.len())
            .field("offsets", &self.offsets)
            .finish()
    }
}

/// What the cluster says about a group (DescribeGroups).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDescription {
    pub members: usize,
    pub state: String,
}

/// Runs a blocking librdkafka call on the blocking pool.
async fn blocking<T, F>(
    operation: &'static str,
    connection: &KafkaConnection,
    call: F,
) -> Result<T, KafkaClientError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, KafkaClientError> + Send + 'static,
{
    tokio::task::spawn_blocking(call).await.unwrap_or_else(|_| {
        Err(KafkaClientError::Worker {
            operation,
            servers: connection.bootstrap_servers.clone(),
        })
    })
}

impl KafkaClients {
    /// Clients whose group readers close after `idle` without use.
    pub fn with_idle_reader_limit(idle: Duration) -> Self {
        Self {
            clusters: SharedConnections::default(),
            groups: SharedConnections::default(),
            reader_use: Mutex::default(),
            idle_reader: idle,
            tokens: OAuthTokenSources::default(),
            offsets: Some(OffsetReaders::default()),
        }
    }

    /// Clients that read committed offsets through one librdkafka reader per group only, as
    /// before the direct reader existed: the path clusters it cannot serve still take (for
    /// tests and comparisons).
    pub fn with_group_readers_only(idle: Duration) -> Self {
        Self {
            offsets: None,
            ..Self::with_idle_reader_limit(idle)
        }
    }

    /// How many cluster clients and group readers exist (for tests and diagnostics).
    pub fn counts(&self) -> (usize, usize) {
        (self.clusters.len(), self.groups.len())
    }

    /// The direct offset reader's connection counts (none without it).
    pub fn offset_connections(&self) -> Option<&ConnectionStats> {
        self.offsets.as_ref().map(OffsetReaders::stats)
    }

    /// For an OAUTHBEARER connection, its token source with a reusable token in it: fetched now
    /// if need be, so that a refusing or unreachable endpoint fails `operation` with its own
    /// error, and librdkafka's refresh hook finds the token cached.
    async fn bearer_token(
        &self,
        operation: &'static str,
        connection: &KafkaConnection,
        timeout: Duration,
    ) -> Result<Option<Arc<OAuthTokenSource>>, KafkaClientError> {
        let Some(credentials) = &connection.oauth else {
            return Ok(None);
        };
        let failed = |source| KafkaClientError::Token {
            operation,
            servers: connection.bootstrap_servers.clone(),
            source,
        };
        let source = self.tokens.source(credentials).map_err(failed)?;
        source.token(timeout).await.map_err(failed)?;
        Ok(Some(source))
    }

    async fn cluster(
        &self,
        operation: &'static str,
        connection: &KafkaConnection,
        timeout: Duration,
    ) -> Result<Client, KafkaClientError> {
        let tokens = self.bearer_token(operation, connection, timeout).await?;
        self.clusters
            .get_or_connect(connection, || async {
                let context = KafkaContext::new(tokens, timeout);
                let consumer = connection
                    .config(timeout)
                    .create_with_context(context)
                    .map_err(|source| KafkaClientError::Create {
                        servers: connection.bootstrap_servers.clone(),
                        source,
                    })?;
                Ok(Arc::new(consumer))
            })
            .await
    }

    async fn group(
        &self,
        operation: &'static str,
        connection: &KafkaConnection,
        group: &str,
        timeout: Duration,
    ) -> Result<Client, KafkaClientError> {
        let tokens = self.bearer_token(operation, connection, timeout).await?;
        let key = (connection.clone(), group.to_owned());
        self.retire_idle_readers(&key).await;
        self.groups
            .get_or_connect(&key, || async {
                let mut config = connection.config(timeout);
                config.set("group.id", group);
                let context = KafkaContext::new(tokens, timeout);
                let consumer = config.create_with_context(context).map_err(|source| {
                    KafkaClientError::Create {
                        servers: connection.bootstrap_servers.clone(),
                        source,
                    }
                })?;
                Ok(Arc::new(consumer))
            })
            .await
    }

    /// Notes the use of `current` and closes the readers idle for too long. A reader is dropped
    /// on the blocking pool: closing a librdkafka consumer can wait on its brokers.
    async fn retire_idle_readers(&self, current: &GroupKey) {
        let now = Instant::now();
        let idle: Vec<GroupKey> = {
            let mut uses = self
                .reader_use
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            uses.insert(current.clone(), now);
            let idle: Vec<GroupKey> = uses
                .iter()
                .filter(|(_, used)| now.duration_since(**used) > self.idle_reader)
                .map(|(key, _)| key.clone())
                .collect();
            for key in &idle {
                uses.remove(key);
            }
            idle
        };
        for key in idle {
            let reader = self
                .groups
                .get_or_connect(&key, || async { Err(()) })
                .await
                .ok();
            self.groups.invalidate(&key);
            if let Some(reader) = reader {
                drop(tokio::task::spawn_blocking(move || drop(reader)));
            }
        }
    }

    /// Partition ids of `topics` (one metadata request per topic), or of every topic in the
    /// cluster when `topics` is `None`. A topic that the cluster reports with an error fails the
    /// call with [`KafkaClientError::Item`].
    pub async fn partitions(
        &self,
        connection: &KafkaConnection,
        topics: Option<&[String]>,
        timeout: Duration,
    ) -> Result<TopicPartitions, KafkaClientError> {
        const OPERATION: &str = "describing topics";
        let client = self.cluster(OPERATION, connection, timeout).await?;
        let servers = connection.bootstrap_servers.clone();
        let topics: Option<Vec<String>> = topics.map(<[String]>::to_vec);
        blocking(OPERATION, connection, move || {
            drain(&client);
            let request = |topic: Option<&str>| {
                client
                    .fetch_metadata(topic, timeout)
                    .map_err(|source| KafkaClientError::Request {
                        operation: OPERATION,
                        servers: servers.clone(),
                        source,
                    })
            };
            let mut answers = Vec::new();
            match &topics {
                Some(topics) => {
                    for topic in topics {
                        answers.push(request(Some(topic))?);
                    }
                }
                None => answers.push(request(None)?),
            }
            let mut result = TopicPartitions::new();
            for metadata in &answers {
                for topic in metadata.topics() {
                    if let Some(error) = topic.error() {
                        return Err(KafkaClientError::Item {
                            operation: OPERATION,
                            servers: servers.clone(),
                            what: format!("topic `{}`", topic.name()),
                            code: error.into(),
                        });
                    }
                    let mut ids: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
                    ids.sort_unstable();
                    result.insert(topic.name().to_owned(), ids);
                }
            }
            Ok(result)
        })
        .await
    }

    /// The committed offsets of `group` for `partitions`, in one OffsetFetch request. A partition
    /// without a committed offset is −1 (KEDA's `invalidOffset`).
    ///
    /// Read over the direct connections of [`crate::kafka_offsets`] (no librdkafka client per
    /// group); a cluster or credentials they cannot serve is read through the group's own
    /// librdkafka reader, as before.
    pub async fn committed_offsets(
        &self,
        connection: &KafkaConnection,
        group: &str,
        partitions: &TopicPartitions,
        timeout: Duration,
    ) -> Result<PartitionOffsets, KafkaClientError> {
        const OPERATION: &str = "listing consumer group offsets";
        if partitions.values().all(Vec::is_empty) {
            return Ok(PartitionOffsets::new());
        }
        if let Some(offsets) = &self.offsets {
            let failed = |source| KafkaClientError::Broker {
                operation: OPERATION,
                servers: connection.bootstrap_servers.clone(),
                source,
            };
            let tokens = self.bearer_token(OPERATION, connection, timeout).await?;
            match offsets.route(connection, tokens).map_err(failed)? {
                Route::Direct(cluster) => {
                    match cluster.committed_offsets(group, partitions, timeout).await {
                        Ok(offsets) => return Ok(offsets),
                        Err(error @ BrokerError::Unsupported { .. }) => {
                            offsets.fall_back(connection, error.to_string());
                        }
                        Err(error) => return Err(failed(error)),
                    }
                }
                Route::Readers(_) => {}
            }
        }
        self.committed_offsets_of_reader(connection, group, partitions, timeout)
            .await
    }

    /// Why committed offsets of `connection` are read through per-group librdkafka readers, or
    /// `None` when they are read directly (or not read yet).
    pub fn group_reader_reason(&self, connection: &KafkaConnection) -> Option<String> {
        match &self.offsets {
            None => Some("the direct offset reader is off".to_owned()),
            Some(offsets) => offsets.reason(connection),
        }
    }

    /// Committed offsets through the group's own librdkafka reader.
    async fn committed_offsets_of_reader(
        &self,
        connection: &KafkaConnection,
        group: &str,
        partitions: &TopicPartitions,
        timeout: Duration,
    ) -> Result<PartitionOffsets, KafkaClientError> {
        const OPERATION: &str = "listing consumer group offsets";
        let client = self.group(OPERATION, connection, group, timeout).await?;
        let servers = connection.bootstrap_servers.clone();
        let list = partition_list(partitions);
        let group = group.to_owned();
        blocking(OPERATION, connection, move || {
            drain(&client);
            let answer = client.committed_offsets(list, timeout).map_err(|source| {
                KafkaClientError::Request {
                    operation: OPERATION,
                    servers: servers.clone(),
                    source,
                }
            })?;
            let mut offsets = PartitionOffsets::new();
            for element in answer.elements() {
                if let Err(error) = element.error() {
                    return Err(KafkaClientError::Item {
                        operation: OPERATION,
                        servers: servers.clone(),
                        what: format!(
                            "group `{group}`, topic `{}` partition {}",
                            element.topic(),
                            element.partition()
                        ),
                        code: error.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail),
                    });
                }
                let offset = match element.offset() {
                    Offset::Offset(offset) => offset,
                    _ => -1,
                };
                offsets.insert((element.topic().to_owned(), element.partition()), offset);
            }
            Ok(offsets)
        })
        .await
    }

    /// The latest (high-water) offsets of `partitions`: one ListOffsets request per leader broker.
    /// Partitions the cluster gave no offset for are left out, as KEDA leaves out partitions
    /// missing from the answer.
    pub async fn latest_offsets(
        &self,
        connection: &KafkaConnection,
        partitions: &TopicPartitions,
        timeout: Duration,
    ) -> Result<PartitionOffsets, KafkaClientError> {
        const OPERATION: &str = "listing latest offsets";
        if partitions.values().all(Vec::is_empty) {
            return Ok(PartitionOffsets::new());
        }
        let client = self.cluster(OPERATION, connection, timeout).await?;
        let servers = connection.bootstrap_servers.clone();
        let mut list = TopicPartitionList::new();
        for (topic, ids) in partitions {
            for id in ids {
                // Timestamp −1 asks ListOffsets for the latest offset.
                list.add_partition_offset(topic, *id, Offset::End)
                    .map_err(|source| KafkaClientError::Request {
                        operation: OPERATION,
                        servers: servers.clone(),
                        source,
                    })?;
            }
        }
        blocking(OPERATION, connection, move || {
            drain(&client);
            let answer = client.offsets_for_times(list, timeout).map_err(|source| {
                KafkaClientError::Request {
                    operation: OPERATION,
                    servers: servers.clone(),
                    source,
                }
            })?;
            let mut offsets = PartitionOffsets::new();
            for element in answer.elements() {
                if let Err(error) = element.error() {
                    return Err(KafkaClientError::Item {
                        operation: OPERATION,
                        servers: servers.clone(),
                        what: format!(
                            "topic `{}` partition {}",
                            element.topic(),
                            element.partition()
                        ),
                        code: error.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail),
                    });
                }
                if let Offset::Offset(offset) = element.offset() {
                    offsets.insert((element.topic().to_owned(), element.partition()), offset);
                }
            }
            Ok(offsets)
        })
        .await
    }

    /// Members and state of `group` (DescribeGroups through librdkafka's group list).
    pub async fn describe_group(
        &self,
        connection: &KafkaConnection,
        group: &str,
        timeout: Duration,
    ) -> Result<GroupDescription, KafkaClientError> {
        const OPERATION: &str = "describing group";
        let client = self.cluster(OPERATION, connection, timeout).await?;
        let servers = connection.bootstrap_servers.clone();
        let group = group.to_owned();
        blocking(OPERATION, connection, move || {
            drain(&client);
            let list = client
                .fetch_group_list(Some(&group), timeout)
                .map_err(|source| KafkaClientError::Request {
                    operation: OPERATION,
                    servers: servers.clone(),
                    source,
                })?;
            Ok(list
                .groups()
                .iter()
                .find(|info| info.name() == group)
                .map(|info| GroupDescription {
                    members: info.members().len(),
                    state: info.state().to_owned(),
                })
                .unwrap_or(GroupDescription {
                    members: 0,
                    state: "Dead".to_owned(),
                }))
        })
        .await
    }
}

/// Serves the events librdkafka queued for `client`: broker errors, mostly, and OAUTHBEARER
/// token refreshes, which call [`KafkaContext`]'s hook here. These clients are never polled for
/// messages, so without this the queue would grow while brokers flap, and tokens would never be
/// handed over.
fn drain(client: &BaseConsumer<KafkaContext>) {
    for _ in 0..64 {
        if client.poll(Duration::ZERO).is_none() {
            break;
        }
    }
}

fn partition_list(partitions: &TopicPartitions) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    for (topic, ids) in partitions {
        for id in ids {
            list.add_partition(topic, *id);
        }
    }
    list
}

/// The bound on one librdkafka request within a sample bounded by `sample_timeout`: shorter, so
/// a request that hangs fails with its own error (which request, which cluster) before the
/// sample's timeout cuts it off anonymously.
pub fn request_timeout(sample_timeout: Duration) -> Duration {
    sample_timeout.mul_f64(0.8)
}

/// Topics of `offsets` with at least one committed offset: what Kafka's OffsetFetch for all
/// topics of a group answers.
pub fn committed_topics(offsets: &PartitionOffsets) -> BTreeSet<String> {
    offsets
        .iter()
        .filter(|(_, offset)| **offset >= 0)
        .map(|((topic, _), _)| topic.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_maps_to_librdkafka_properties() {
        let servers = vec!["a:9092".to_owned(), " b:9092".to_owned()];
        let plain = KafkaConnection::new(&servers, None, &SaslSettings::None);
        assert_eq!(plain.bootstrap_servers(), "a:9092,b:9092");
        assert_eq!(plain.properties["security.protocol"], "plaintext");

        let scram = KafkaConnection::new(
            &servers,
            Some(&TlsSettings {
                ca: Some("CA".into()),
                skip_verify: true,
                ..TlsSettings::default()
            }),
            &SaslSettings::ScramSha512 {
                username: "u".into(),
                password: "hunter2".into(),
            },
        );
        let p = &scram.properties;
        assert_eq!(p["security.protocol"], "sasl_ssl");
        assert_eq!(p["sasl.mechanism"], "SCRAM-SHA-512");
        assert_eq!(p["sasl.username"], "u");
        assert_eq!(p["ssl.ca.pem"], "CA");
        assert_eq!(p["enable.ssl.certificate.verification"], "false");
        assert!(
            !scram.identity().contains("hunter2"),
            "{}",
            scram.identity()
        );
        assert!(!format!("{scram:?}").contains("hunter2"));

        let mut other = scram.clone();
        other
            .properties
            .insert("sasl.password".into(), "other".into());
        assert_ne!(scram.identity(), other.identity());

        let tls_only =
            KafkaConnection::new(&servers, Some(&TlsSettings::default()), &SaslSettings::None);
        assert_eq!(tls_only.properties["security.protocol"], "ssl");
        let sasl_only = KafkaConnection::new(
            &servers,
            None,
            &SaslSettings::Plain {
                username: "u".into(),
                password: "p".into(),
            },
        );
        assert_eq!(sasl_only.properties["security.protocol"], "sasl_plaintext");
        assert_eq!(sasl_only.properties["sasl.mechanism"], "PLAIN");
    }

    #[tokio::test]
    async fn idle_group_readers_are_closed() {
        use rdkafka::mocking::MockCluster;

        let mock = MockCluster::new(1).unwrap();
        mock.create_topic("t", 1, 1).unwrap();
        let connection =
            KafkaConnection::new(&[mock.bootstrap_servers()], None, &SaslSettings::None);
        // Any time at all is too long: the reader of `a` is idle once `b` is asked for.
        let clients = KafkaClients::with_group_readers_only(Duration::ZERO);
        let partitions: TopicPartitions = [("t".to_owned(), vec![0])].into_iter().collect();
        let timeout = Duration::from_secs(5);
        for group in ["a", "b"] {
            let offsets = clients
                .committed_offsets(&connection, group, &partitions, timeout)
                .await
                .unwrap();
            assert_eq!(offsets[&("t".to_owned(), 0)], -1);
        }
        // Reading `b` closed `a`.
        assert_eq!(clients.counts(), (0, 1));
        // No partitions: nothing to ask, no reader made.
        let none = clients
            .committed_offsets(&connection, "c", &TopicPartitions::new(), timeout)
            .await
            .unwrap();
        assert!(none.is_empty());
        assert_eq!(clients.counts(), (0, 1));
    }

    fn oauth_connection(servers: &str, endpoint: &str) -> KafkaConnection {
        KafkaConnection::new(
            &[servers.to_owned()],
            None,
            &SaslSettings::OAuthBearer(OAuthClientCredentials {
                client_id: "windlass".into(),
                client_secret: "hunter2".into(),
                token_endpoint: endpoint.into(),
                scopes: vec!["kafka".into()],
            }),
        )
    }

    #[test]
    fn oauthbearer_maps_to_librdkafka_properties() {
        let connection = oauth_connection("a:9092", "https://idp/token");
        assert_eq!(connection.properties["security.protocol"], "sasl_plaintext");
        assert_eq!(connection.properties["sasl.mechanism"], "OAUTHBEARER");
        assert!(!connection.properties.contains_key("sasl.username"));
        let identity = connection.identity();
        assert!(
            identity.contains("oauth=windlass@https://idp/token"),
            "{identity}"
        );
        assert!(!identity.contains("hunter2"), "{identity}");
        let mut other = connection.clone();
        if let Some(oauth) = other.oauth.as_mut() {
            oauth.client_secret = "other".into();
        }
        assert_ne!(connection, other);
        assert_ne!(connection.identity(), other.identity());
    }

    /// librdkafka asks the hook for a token when the client is made and again at 80% of the
    /// token's life; the hook runs on the polling thread and fetches on the runtime.
    #[tokio::test]
    async fn librdkafka_gets_tokens_through_the_refresh_hook() {
        use crate::kafka_auth::tests::token_endpoint::{Endpoint, json};

        crate::context::install_crypto_provider();
        let endpoint = Endpoint::start(|n, _| {
            json(
                200,
                &format!(r#"{{"access_token":"tok-{n}","expires_in":6}}"#),
            )
        })
        .await;
        // No broker is needed to get a token; nothing listens on port 9.
        let connection = oauth_connection("127.0.0.1:9", &endpoint.url);
        let timeout = Duration::from_secs(5);
        let sources = OAuthTokenSources::default();
        let source = connection
            .oauth
            .as_ref()
            .map(|credentials| sources.source(credentials).unwrap());
        let client: Client = Arc::new(
            connection
                .config(timeout)
                .create_with_context(KafkaContext::new(source, timeout))
                .unwrap(),
        );
        let requests = move |count: usize, within: Duration| {
            let client = Arc::clone(&client);
            let endpoint_requests = endpoint.requests_handle();
            tokio::task::spawn_blocking(move || {
                let deadline = Instant::now() + within;
                while endpoint_requests().len() < count {
                    assert!(Instant::now() < deadline, "librdkafka asked for no token");
                    drain(&client);
                    std::thread::sleep(Duration::from_millis(20));
                }
                endpoint_requests()
            })
        };
        let first = requests(1, Duration::from_secs(5)).await.unwrap();
        assert_eq!(first[0].body, "grant_type=client_credentials&scope=kafka");
        // librdkafka took the token with its expiry: it asks again at 80% of 6 s (its timer
        // ticks each second), not 10 s later as after a refused token.
        let both = requests(2, Duration::from_secs(15)).await.unwrap();
        let gap = both[1].at - both[0].at;
        assert!(gap >= Duration::from_secs(4), "{gap:?}");
        assert!(
            gap < Duration::from_secs(6),
            "renewed after expiry: {gap:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_token_fails_the_request_before_any_client_is_made() {
        use crate::kafka_auth::tests::token_endpoint::{Endpoint, json};

        crate::context::install_crypto_provider();
        let endpoint = Endpoint::start(|_, _| json(400, r#"{"error":"invalid_scope"}"#)).await;
        let connection = oauth_connection("127.0.0.1:9", &endpoint.url);
        let clients = KafkaClients::default();
        let error = clients
            .partitions(&connection, Some(&["t".to_owned()]), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(error, KafkaClientError::Token { .. }), "{error}");
        assert_eq!(error.category(), ErrorCategory::Connect);
        assert!(
            error.to_string().contains("HTTP 400: invalid_scope"),
            "{error}"
        );
        assert_eq!(clients.counts(), (0, 0));
    }

    #[test]
    fn committed_topics_are_those_with_an_offset() {
        let offsets: PartitionOffsets = [
            (("a".to_owned(), 0), -1),
            (("a".to_owned(), 1), 5),
            (("b".to_owned(), 0), -1),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            committed_topics(&offsets).into_iter().collect::<Vec<_>>(),
            vec!["a".to_owned()]
        );
    }
}
