//! Committed offsets of any number of consumer groups over one connection per coordinator
//! broker and credentials, speaking the Kafka protocol directly (`kafka-protocol` encodes and
//! decodes; the framing, version negotiation, TLS and SASL are here).
//!
//! # Why
//!
//! `rdkafka` 0.39 has no safe call for another group's committed offsets, so the librdkafka
//! path ([`crate::kafka_client`]) keeps one never-subscribing consumer per group, about six
//! threads each on a three-broker cluster: thousands of groups would be thousands of threads.
//! Here every group of a cluster shares one TCP (or TLS) connection per coordinator broker,
//! served by one tokio task: no thread per group, no thread per broker.
//!
//! # How a read goes
//!
//! 1. The group's coordinator: remembered from an earlier read, else `FindCoordinator`, asked of
//!    any broker already connected, else of the bootstrap servers in order. Lookups arriving
//!    together go out as one request where the broker speaks `FindCoordinator` v4+. An answer
//!    `COORDINATOR_NOT_AVAILABLE` (none elected yet: a new cluster, a broker restarting) is
//!    asked again after a short backoff, within the read's deadline.
//! 2. `OffsetFetch` to the coordinator for the named partitions. Reads of different groups that
//!    queue up while the connection is busy go out together: one request naming many groups on
//!    brokers with `OffsetFetch` v8+ (Kafka 3.0+), else one request per group, pipelined on the
//!    same connection. A partition without a committed offset is −1.
//! 3. Errors: `NOT_COORDINATOR` or `COORDINATOR_NOT_AVAILABLE` forget the coordinator and find it
//!    again (a few times within the read's deadline); `COORDINATOR_LOAD_IN_PROGRESS` fails the
//!    read with a `connect` error and is retried by the next poll; a connection that fails is
//!    closed and the coordinator forgotten, and the next read connects again. A connection that
//!    was idle (the broker may have closed it, or restarted) gets one fresh retry. Everything is
//!    bounded by the read's deadline (the trigger's request timeout).
//!
//! # Connections
//!
//! Each broker connection is a task owning the socket and a queue of reads. It connects on
//! first use: TCP, TLS when the trigger has `tls: enable` (the same `ca`, `cert`, `key` and
//! `unsafeSsl` as librdkafka gets; the system roots plus `ca`, as KEDA), `ApiVersions`, then
//! SASL (`SaslHandshake` + `SaslAuthenticate`) for PLAIN, SCRAM-SHA-256/512 and OAUTHBEARER
//! (tokens from the trigger's [`OAuthTokenSource`]). When the broker bounds the session
//! (KIP-368), the connection is replaced before the session ends. A connection idle for
//! [`IDLE_CONNECTION`] is closed, and its task ends.
//!
//! # What is left to librdkafka
//!
//! A cluster or credentials this path cannot serve keeps the per-group readers: a TLS key with
//! a password (rustls reads no encrypted keys), or a broker whose `ApiVersions` lacks
//! `FindCoordinator`, `OffsetFetch` v1+ or (with SASL) `SaslHandshake` v1 and
//! `SaslAuthenticate`. The choice is made per cluster and credentials and remembered.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::SaslHandshakeResponse;
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, GroupId, OffsetFetchRequest, OffsetFetchResponse, RequestHeader,
    ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use rustls::RootCertStore;
use rustls::pki_types::ServerName;
use scaler_core::ErrorCategory;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::kafka_auth::{
    OAuthTokenSource, ScramClient, ScramError, ScramHash, TokenError, oauthbearer_message,
    plain_message,
};
use crate::kafka_client::{
    KafkaConnection, PartitionOffsets, SaslSettings, TlsSettings, TopicPartitions,
};

/// A broker connection unused this long is closed.
pub const IDLE_CONNECTION: Duration = Duration::from_secs(10 * 60);

/// The port of a bootstrap server given without one (librdkafka's default).
const DEFAULT_PORT: u16 = 9092;

/// Groups named in one `FindCoordinator` (v4+) or `OffsetFetch` (v8+) request.
const GROUPS_PER_REQUEST: usize = 100;

/// Reads one connection task takes from its queue at once.
const READS_PER_ROUND: usize = 1000;

/// The largest answer accepted: a garbled size (a TLS broker spoken to in plain text, say) must
/// not allocate gigabytes.
const MAX_FRAME: usize = 64 << 20;

/// How often a read may find its group's coordinator moved before it gives up.
const COORDINATOR_MOVES: usize = 3;

/// The versions this client speaks. ApiVersions v3 (flexible) would add our name to the
/// broker's metrics, but librdkafka's mock cluster answers it malformed; v2 is kept by every
/// broker (Kafka 4 included).
const API_VERSIONS_VERSION: i16 = 2;
const FIND_COORDINATOR_VERSIONS: (i16, i16) = (0, 6);
const OFFSET_FETCH_VERSIONS: (i16, i16) = (1, 9);
const SASL_HANDSHAKE_VERSIONS: (i16, i16) = (1, 1);
const SASL_AUTHENTICATE_VERSIONS: (i16, i16) = (0, 2);

/// Kafka error codes acted on.
mod codes {
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const UNSUPPORTED_VERSION: i16 = 35;
}

/// When a read must be answered, and the time it was given (for messages).
#[derive(Clone, Copy, Debug)]
struct Deadline {
    at: Instant,
    budget: Duration,
}

impl Deadline {
    fn after(budget: Duration) -> Self {
        Self {
            at: Instant::now() + budget,
            budget,
        }
    }

    fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }
}

/// A broker's `host:port`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BrokerAddress {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for BrokerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl BrokerAddress {
    /// A bootstrap server as librdkafka takes it: `host:port`, `[v6]:port`, `host` (port 9092),
    /// optionally behind `scheme://`.
    pub fn parse(server: &str) -> Option<Self> {
        let server = server.trim();
        let server = server.split_once("://").map_or(server, |(_, rest)| rest);
        let (host, port) = if let Some(rest) = server.strip_prefix('[') {
            let (host, after) = rest.split_once(']')?;
            match after.strip_prefix(':') {
                Some(port) => (host, port.parse().ok()?),
                None if after.is_empty() => (host, DEFAULT_PORT),
                None => return None,
            }
        } else {
            match server.rsplit_once(':') {
                Some((host, _)) if host.contains(':') => (server, DEFAULT_PORT),
                Some((host, port)) => (host, port.parse().ok()?),
                None => (server, DEFAULT_PORT),
            }
        };
        (!host.is_empty()).then(|| Self {
            host: host.to_owned(),
            port,
        })
    }
}

/// A failed step of a direct offset read, naming the broker and the request.
#[derive(Clone, Debug, Error)]
pub enum BrokerError {
    #[error("bootstrap server `{0}` is not host:port")]
    Address(String),
    #[error("TLS settings: {0}")]
    TlsSettings(String),
    #[error("connecting to broker {broker}: {source}")]
    Connect {
        broker: BrokerAddress,
        #[source]
        source: Arc<io::Error>,
    },
    #[error("TLS handshake with broker {broker}: {source}")]
    Handshake {
        broker: BrokerAddress,
        #[source]
        source: Arc<io::Error>,
    },
    #[error("{request} with broker {broker}: {source}")]
    Io {
        request: &'static str,
        broker: BrokerAddress,
        #[source]
        source: Arc<io::Error>,
    },
    #[error("{request} with broker {broker}: no answer within {timeout:?}")]
    Timeout {
        request: &'static str,
        broker: BrokerAddress,
        timeout: Duration,
    },
    #[error("{request} with broker {broker}: unreadable answer: {reason}")]
    Decode {
        request: &'static str,
        broker: BrokerAddress,
        reason: String,
    },
    #[error("encoding {request} for broker {broker}: {reason}")]
    Encode {
        request: &'static str,
        broker: BrokerAddress,
        reason: String,
    },
    #[error("SASL {mechanism} with broker {broker}: {reason}")]
    Authentication {
        mechanism: &'static str,
        broker: BrokerAddress,
        reason: String,
    },
    #[error("{request} with broker {broker}: {what}: {error}")]
    Kafka {
        request: &'static str,
        broker: BrokerAddress,
        what: String,
        error: ResponseError,
    },
    #[error("broker {broker} does not offer {what}")]
    Unsupported { broker: BrokerAddress, what: String },
    #[error("{0}")]
    Token(Arc<TokenError>),
    #[error("the connection task of broker {0} stopped")]
    Worker(BrokerAddress),
    #[error("no bootstrap server")]
    NoServers,
}

impl BrokerError {
    /// The category the policy acts on.
    pub fn category(&self) -> ErrorCategory {
        match self {
            Self::Address(_) | Self::TlsSettings(_) | Self::NoServers => ErrorCategory::Metadata,
            Self::Connect { .. }
            | Self::Handshake { .. }
            | Self::Io { .. }
            | Self::Authentication { .. }
            | Self::Worker(_) => ErrorCategory::Connect,
            Self::Timeout { .. } => ErrorCategory::Timeout,
            Self::Decode { .. } | Self::Encode { .. } => ErrorCategory::Query,
            Self::Unsupported { .. } => ErrorCategory::Unsupported,
            Self::Token(error) => error.category(),
            Self::Kafka { error, .. } => match error.code() {
                codes::COORDINATOR_LOAD_IN_PROGRESS
                | codes::COORDINATOR_NOT_AVAILABLE
                | codes::NOT_COORDINATOR => ErrorCategory::Connect,
                // SASL_AUTHENTICATION_FAILED, UNSUPPORTED_SASL_MECHANISM, ILLEGAL_SASL_STATE.
                58 | 33 | 34 => ErrorCategory::Connect,
                // REQUEST_TIMED_OUT.
                7 => ErrorCategory::Timeout,
                _ => ErrorCategory::Query,
            },
        }
    }

    /// The coordinator answered that it is not (or no longer) the group's coordinator.
    fn coordinator_moved(&self) -> bool {
        matches!(self, Self::Kafka { error, .. }
            if matches!(error.code(), codes::NOT_COORDINATOR | codes::COORDINATOR_NOT_AVAILABLE))
    }

    /// The broker could not be reached or the connection broke: another broker may do.
    fn is_connection(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. } | Self::Handshake { .. } | Self::Io { .. } | Self::Worker(_)
        )
    }
}

/// Counts of direct connections, for tests and diagnostics.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    open: AtomicUsize,
    made: AtomicUsize,
}

impl ConnectionStats {
    /// Broker connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Broker connections made so far (authenticated and ready).
    pub fn made(&self) -> usize {
        self.made.load(Ordering::SeqCst)
    }
}

/// Counts a connection open while it lives.
struct OpenConnection(Arc<ConnectionStats>);

impl OpenConnection {
    fn new(stats: &Arc<ConnectionStats>) -> Self {
        stats.open.fetch_add(1, Ordering::SeqCst);
        stats.made.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(stats))
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why a connection cannot be read directly at all (it keeps librdkafka's per-group readers),
/// or `None`.
pub fn unsupported_settings(tls: Option<&TlsSettings>) -> Option<&'static str> {
    tls.filter(|tls| tls.key_password.is_some())
        .map(|_| "a TLS key with a password (keyPassword), which rustls cannot read")
}

/// How a cluster's committed offsets are read.
pub enum Route {
    Direct(Arc<ClusterOffsets>),
    /// Through librdkafka's per-group readers, for this reason.
    Readers(String),
}

/// The direct readers of every cluster and credentials.
#[derive(Default)]
pub struct OffsetReaders {
    clusters: Mutex<HashMap<KafkaConnection, ClusterState>>,
    stats: Arc<ConnectionStats>,
}

impl fmt::Debug for OffsetReaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OffsetReaders")
            .field("open_connections", &self.stats.open())
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
enum ClusterState {
    Direct(Arc<ClusterOffsets>),
    Readers(String),
}

impl OffsetReaders {
    pub fn stats(&self) -> &ConnectionStats {
        &self.stats
    }

    /// The route of `connection`: its direct reader (made now if need be, with `tokens` for
    /// OAUTHBEARER), or the reason it keeps librdkafka's readers.
    pub fn route(
        &self,
        connection: &KafkaConnection,
        tokens: Option<Arc<OAuthTokenSource>>,
    ) -> Result<Route, BrokerError> {
        let route_of = |state: &ClusterState| match state {
            ClusterState::Direct(cluster) => Route::Direct(Arc::clone(cluster)),
            ClusterState::Readers(reason) => Route::Readers(reason.clone()),
        };
        if let Some(state) = self
            .clusters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(connection)
        {
            return Ok(route_of(state));
        }
        let state = match unsupported_settings(connection.tls()) {
            Some(reason) => ClusterState::Readers(reason.to_owned()),
            // Made without the lock held: loading the system's roots reads files.
            None => ClusterState::Direct(Arc::new(ClusterOffsets::new(
                connection,
                tokens,
                &self.stats,
            )?)),
        };
        let mut clusters = self.clusters.lock().unwrap_or_else(PoisonError::into_inner);
        // A concurrent first use may have been quicker: the reader made first is kept.
        Ok(route_of(
            clusters.entry(connection.clone()).or_insert(state),
        ))
    }

    /// Why `connection` is read through librdkafka's readers, if it is.
    pub fn reason(&self, connection: &KafkaConnection) -> Option<String> {
        match self
            .clusters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(connection)
        {
            Some(ClusterState::Readers(reason)) => Some(reason.clone()),
            _ => None,
        }
    }

    /// Sends `connection` to librdkafka's readers from now on: its brokers cannot be read
    /// directly (`reason`). Its connections close as their tasks go idle.
    pub fn fall_back(&self, connection: &KafkaConnection, reason: String) {
        self.clusters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(connection.clone(), ClusterState::Readers(reason));
    }
}

/// What every connection of a cluster needs to open.
struct Security {
    tls: Option<Arc<rustls::ClientConfig>>,
    sasl: SaslSettings,
    tokens: Option<Arc<OAuthTokenSource>>,
    stats: Arc<ConnectionStats>,
}

/// The direct reader of one cluster and credentials: its broker connections and the
/// coordinators found.
pub struct ClusterOffsets {
    bootstrap: Vec<BrokerAddress>,
    security: Arc<Security>,
    brokers: Mutex<HashMap<BrokerAddress, mpsc::Sender<Job>>>,
    /// Group → coordinator, with the last use (entries unused for [`IDLE_CONNECTION`] go).
    coordinators: Mutex<HashMap<String, (BrokerAddress, Instant)>>,
}

impl fmt::Debug for ClusterOffsets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterOffsets")
            .field("bootstrap", &self.bootstrap)
            .finish_non_exhaustive()
    }
}

impl ClusterOffsets {
    fn new(
        connection: &KafkaConnection,
        tokens: Option<Arc<OAuthTokenSource>>,
        stats: &Arc<ConnectionStats>,
    ) -> Result<Self, BrokerError> {
        let bootstrap = connection
            .bootstrap_servers()
            .split(',')
            .filter(|server| !server.trim().is_empty())
            .map(|server| {
                BrokerAddress::parse(server).ok_or_else(|| BrokerError::Address(server.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if bootstrap.is_empty() {
            return Err(BrokerError::NoServers);
        }
        let tls = connection.tls().map(tls_config).transpose()?.map(Arc::new);
        Ok(Self {
            bootstrap,
            security: Arc::new(Security {
                tls,
                sasl: connection.sasl().clone(),
                tokens,
                stats: Arc::clone(stats),
            }),
            brokers: Mutex::default(),
            coordinators: Mutex::default(),
        })
    }

    /// The committed offsets of `group` for `partitions` (−1 where none is committed), within
    /// `timeout`.
    pub async fn committed_offsets(
        &self,
        group: &str,
        partitions: &TopicPartitions,
        timeout: Duration,
    ) -> Result<PartitionOffsets, BrokerError> {
        let deadline = Deadline::after(timeout);
        let mut moves = 0;
        loop {
            let coordinator = self.coordinator(group, deadline).await?;
            let (reply, answer) = oneshot::channel();
            let job = Job::Fetch {
                group: group.to_owned(),
                partitions: partitions.clone(),
                deadline,
                reply,
            };
            let result = self
                .ask(&coordinator, job, answer, deadline, "OffsetFetch")
                .await;
            match result {
                Ok(offsets) => return Ok(offsets),
                Err(error) => {
                    if error.coordinator_moved() || error.is_connection() {
                        self.forget(group);
                    }
                    if error.coordinator_moved() && moves < COORDINATOR_MOVES {
                        moves += 1;
                        continue;
                    }
                    return Err(error);
                }
            }
        }
    }

    /// Sends `job` to `broker`'s connection task and waits for its answer until `deadline`.
    async fn ask<T>(
        &self,
        broker: &BrokerAddress,
        mut job: Job,
        answer: oneshot::Receiver<Result<T, BrokerError>>,
        deadline: Deadline,
        request: &'static str,
    ) -> Result<T, BrokerError> {
        let timed_out = || BrokerError::Timeout {
            request,
            broker: broker.clone(),
            timeout: deadline.budget,
        };
        // A task that just ended (idle) hands the job back: one new task then.
        for _ in 0..2 {
            let sender = self.broker(broker);
            match tokio::time::timeout_at(deadline.at, sender.send(job)).await {
                Ok(Ok(())) => {
                    return match tokio::time::timeout_at(deadline.at, answer).await {
                        Ok(Ok(result)) => result,
                        Ok(Err(_)) => Err(BrokerError::Worker(broker.clone())),
                        Err(_) => Err(timed_out()),
                    };
                }
                Ok(Err(mpsc::error::SendError(returned))) => {
                    self.brokers
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(broker);
                    job = returned;
                }
                Err(_) => return Err(timed_out()),
            }
        }
        Err(BrokerError::Worker(broker.clone()))
    }

    /// The queue of `address`'s connection task, started now if there is none.
    fn broker(&self, address: &BrokerAddress) -> mpsc::Sender<Job> {
        let mut brokers = self.brokers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = brokers.get(address).filter(|sender| !sender.is_closed()) {
            return sender.clone();
        }
        brokers.retain(|_, sender| !sender.is_closed());
        let (sender, jobs) = mpsc::channel(READS_PER_ROUND * 4);
        let task = BrokerTask {
            address: address.clone(),
            security: Arc::clone(&self.security),
            jobs,
        };
        drop(tokio::spawn(task.run()));
        brokers.insert(address.clone(), sender.clone());
        sender
    }

    /// The coordinator of `group`: remembered, or found now.
    async fn coordinator(
        &self,
        group: &str,
        deadline: Deadline,
    ) -> Result<BrokerAddress, BrokerError> {
        let now = Instant::now();
        {
            let mut coordinators = self
                .coordinators
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some((address, used)) = coordinators.get_mut(group) {
                *used = now;
                return Ok(address.clone());
            }
            coordinators.retain(|_, (_, used)| now.duration_since(*used) < IDLE_CONNECTION);
        }
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.find_coordinator(group, deadline).await? {
                Found::At(address) => {
                    self.coordinators
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(group.to_owned(), (address.clone(), Instant::now()));
                    return Ok(address);
                }
                // A coordinator not elected yet (a new cluster, a broker restarting): shortly.
                Found::Failed { broker, error }
                    if matches!(
                        error.code(),
                        codes::COORDINATOR_NOT_AVAILABLE | codes::COORDINATOR_LOAD_IN_PROGRESS
                    ) && backoff < deadline.remaining() =>
                {
                    drop(broker);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Found::Failed { broker, error } => {
                    return Err(BrokerError::Kafka {
                        request: "FindCoordinator",
                        broker,
                        what: format!("coordinator of group `{group}`"),
                        error,
                    });
                }
            }
        }
    }

    /// Asks the brokers connected, then the bootstrap servers, for `group`'s coordinator; the
    /// next one when one cannot be reached.
    async fn find_coordinator(
        &self,
        group: &str,
        deadline: Deadline,
    ) -> Result<Found, BrokerError> {
        let mut candidates: Vec<BrokerAddress> = {
            let brokers = self.brokers.lock().unwrap_or_else(PoisonError::into_inner);
            let mut live: Vec<BrokerAddress> = brokers
                .iter()
                .filter(|(_, sender)| !sender.is_closed())
                .map(|(address, _)| address.clone())
                .collect();
            live.sort();
            live
        };
        for server in &self.bootstrap {
            if !candidates.contains(server) {
                candidates.push(server.clone());
            }
        }
        let mut last = None;
        for broker in candidates {
            let (reply, answer) = oneshot::channel();
            let job = Job::Find {
                group: group.to_owned(),
                deadline,
                reply,
            };
            match self
                .ask(&broker, job, answer, deadline, "FindCoordinator")
                .await
            {
                Ok(found) => return Ok(found),
                Err(error) if error.is_connection() => last = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(last.unwrap_or(BrokerError::NoServers))
    }

    fn forget(&self, group: &str) {
        self.coordinators
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(group);
    }
}

/// A coordinator lookup's answer for one group.
#[derive(Clone, Debug)]
enum Found {
    At(BrokerAddress),
    Failed {
        broker: BrokerAddress,
        error: ResponseError,
    },
}

/// A read queued on a broker's connection.
enum Job {
    Find {
        group: String,
        deadline: Deadline,
        reply: oneshot::Sender<Result<Found, BrokerError>>,
    },
    Fetch {
        group: String,
        partitions: TopicPartitions,
        deadline: Deadline,
        reply: oneshot::Sender<Result<PartitionOffsets, BrokerError>>,
    },
}

impl Job {
    fn deadline(&self) -> Instant {
        match self {
            Self::Find { deadline, .. } | Self::Fetch { deadline, .. } => deadline.at,
        }
    }

    /// Its reader gave up (timed out): nothing to do.
    fn abandoned(&self) -> bool {
        match self {
            Self::Find { reply, .. } => reply.is_closed(),
            Self::Fetch { reply, .. } => reply.is_closed(),
        }
    }

    fn fail(self, error: BrokerError) {
        match self {
            Self::Find { reply, .. } => drop(reply.send(Err(error))),
            Self::Fetch { reply, .. } => drop(reply.send(Err(error))),
        }
    }
}

/// Committed offsets of one group as answered: per partition, the offset or its error.
type GroupAnswer = Result<BTreeMap<(String, i32), Result<i64, ResponseError>>, BrokerError>;

/// What one round on a connection answered.
#[derive(Default)]
struct Answers {
    found: HashMap<String, Found>,
    fetched: HashMap<String, GroupAnswer>,
}

/// One broker connection: the task that owns its socket and serves its queue.
struct BrokerTask {
    address: BrokerAddress,
    security: Arc<Security>,
    jobs: mpsc::Receiver<Job>,
}

impl BrokerTask {
    async fn run(mut self) {
        let mut wire: Option<Wire> = None;
        loop {
            let first = match tokio::time::timeout(IDLE_CONNECTION, self.jobs.recv()).await {
                Ok(Some(job)) => job,
                // Idle, or every holder of the queue is gone: close.
                Ok(None) | Err(_) => return,
            };
            let mut batch = vec![first];
            while batch.len() < READS_PER_ROUND {
                match self.jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch.retain(|job| !job.abandoned());
            let Some(deadline) = batch.iter().map(Job::deadline).max() else {
                continue;
            };
            let budget = deadline.saturating_duration_since(Instant::now());
            let mut finds = BTreeSet::new();
            // Reads of one group in one round are one read of all their partitions.
            let mut wanted: BTreeMap<&str, BTreeMap<&str, BTreeSet<i32>>> = BTreeMap::new();
            for job in &batch {
                match job {
                    Job::Find { group, .. } => {
                        finds.insert(group.clone());
                    }
                    Job::Fetch {
                        group, partitions, ..
                    } => {
                        let topics = wanted.entry(group).or_default();
                        for (topic, ids) in partitions {
                            topics.entry(topic).or_default().extend(ids);
                        }
                    }
                }
            }
            let fetches: BTreeMap<String, TopicPartitions> = wanted
                .into_iter()
                .map(|(group, topics)| {
                    let topics = topics
                        .into_iter()
                        .map(|(topic, ids)| (topic.to_owned(), ids.into_iter().collect()))
                        .collect();
                    (group.to_owned(), topics)
                })
                .collect();
            let served = tokio::time::timeout_at(
                deadline,
                self.serve(&mut wire, &finds, &fetches, deadline),
            )
            .await;
            let answers = match served {
                Ok(Ok(answers)) => answers,
                Ok(Err(error)) => {
                    wire = None;
                    for job in batch {
                        job.fail(error.clone());
                    }
                    continue;
                }
                Err(_) => {
                    wire = None;
                    for job in batch {
                        job.fail(BrokerError::Timeout {
                            request: "connecting and reading offsets",
                            broker: self.address.clone(),
                            timeout: budget,
                        });
                    }
                    continue;
                }
            };
            for job in batch {
                self.reply(job, &answers);
            }
        }
    }

    fn reply(&self, job: Job, answers: &Answers) {
        match job {
            Job::Find { group, reply, .. } => {
                let found = answers
                    .found
                    .get(&group)
                    .cloned()
                    .ok_or_else(|| BrokerError::Decode {
                        request: "FindCoordinator",
                        broker: self.address.clone(),
                        reason: format!("no answer for group `{group}`"),
                    });
                drop(reply.send(found));
            }
            Job::Fetch {
                group,
                partitions,
                reply,
                ..
            } => {
                let result = match answers.fetched.get(&group) {
                    None => Err(BrokerError::Decode {
                        request: "OffsetFetch",
                        broker: self.address.clone(),
                        reason: format!("no answer for group `{group}`"),
                    }),
                    Some(Err(error)) => Err(error.clone()),
                    Some(Ok(answered)) => {
                        let mut offsets = PartitionOffsets::new();
                        let mut failed = None;
                        for (topic, ids) in &partitions {
                            for id in ids {
                                let key = (topic.clone(), *id);
                                match answered.get(&key) {
                                    Some(Ok(offset)) => {
                                        offsets.insert(key, *offset);
                                    }
                                    Some(Err(error)) => {
                                        failed.get_or_insert(BrokerError::Kafka {
                                            request: "OffsetFetch",
                                            broker: self.address.clone(),
                                            what: format!(
                                                "group `{group}`, topic `{topic}` partition {id}"
                                            ),
                                            error: *error,
                                        });
                                    }
                                    // Not in the answer: nothing committed (as librdkafka).
                                    None => {
                                        offsets.insert(key, -1);
                                    }
                                }
                            }
                        }
                        failed.map_or(Ok(offsets), Err)
                    }
                };
                drop(reply.send(result));
            }
        }
    }

    /// One round: connects if need be, sends every request, reads every answer. A connection
    /// that was idle and fails is replaced once.
    async fn serve(
        &self,
        wire: &mut Option<Wire>,
        finds: &BTreeSet<String>,
        fetches: &BTreeMap<String, TopicPartitions>,
        deadline: Instant,
    ) -> Result<Answers, BrokerError> {
        if wire.as_ref().is_some_and(Wire::session_over) {
            *wire = None;
        }
        let reused = wire.is_some();
        let connection = match wire {
            Some(connection) => connection,
            None => wire.insert(Wire::connect(&self.address, &self.security, deadline).await?),
        };
        match connection.round(finds, fetches).await {
            Err(error) if reused && error.is_connection() => {
                *wire = None;
                let fresh =
                    wire.insert(Wire::connect(&self.address, &self.security, deadline).await?);
                fresh.round(finds, fetches).await
            }
            other => other,
        }
    }
}

/// The byte stream to a broker: TCP, or TLS over TCP.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Requests encoded for one write, with the correlation id and version each was sent with.
struct Outgoing {
    buffer: BytesMut,
    sent: Vec<(i32, &'static str)>,
}

/// An open, authenticated connection to one broker.
struct Wire {
    stream: Box<dyn Stream>,
    broker: BrokerAddress,
    next_correlation: i32,
    /// The broker's version range by API key.
    versions: HashMap<i16, (i16, i16)>,
    /// When the broker ends the authenticated session (KIP-368): replaced before.
    session_end: Option<Instant>,
    _open: OpenConnection,
}

impl Wire {
    async fn connect(
        broker: &BrokerAddress,
        security: &Security,
        deadline: Instant,
    ) -> Result<Self, BrokerError> {
        let tcp = tokio::net::TcpStream::connect((broker.host.as_str(), broker.port))
            .await
            .map_err(|source| BrokerError::Connect {
                broker: broker.clone(),
                source: Arc::new(source),
            })?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Stream> = match &security.tls {
            None => Box::new(tcp),
            Some(config) => {
                let name = ServerName::try_from(broker.host.clone()).map_err(|error| {
                    BrokerError::TlsSettings(format!(
                        "{} is not a TLS server name: {error}",
                        broker.host
                    ))
                })?;
                let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
                    .connect(name, tcp)
                    .await
                    .map_err(|source| BrokerError::Handshake {
                        broker: broker.clone(),
                        source: Arc::new(source),
                    })?;
                Box::new(tls)
            }
        };
        let mut wire = Self {
            stream,
            broker: broker.clone(),
            next_correlation: 0,
            versions: HashMap::new(),
            session_end: None,
            _open: OpenConnection::new(&security.stats),
        };
        wire.negotiate_versions().await?;
        for (key, name, range) in [
            (
                ApiKey::FindCoordinator,
                "FindCoordinator",
                FIND_COORDINATOR_VERSIONS,
            ),
            (ApiKey::OffsetFetch, "OffsetFetch", OFFSET_FETCH_VERSIONS),
        ] {
            wire.version(key, name, range)?;
        }
        wire.authenticate(security, deadline).await?;
        Ok(wire)
    }

    /// Whether the authenticated session is about to end.
    fn session_over(&self) -> bool {
        self.session_end.is_some_and(|end| Instant::now() >= end)
    }

    /// The highest version of `key` both sides speak within `ours`.
    fn version(&self, key: ApiKey, name: &str, ours: (i16, i16)) -> Result<i16, BrokerError> {
        let unsupported = || BrokerError::Unsupported {
            broker: self.broker.clone(),
            what: format!("{name} v{}..v{}", ours.0, ours.1),
        };
        let (min, max) = self.versions.get(&(key as i16)).ok_or_else(unsupported)?;
        let version = (*max).min(ours.1);
        if version < (*min).max(ours.0) {
            return Err(unsupported());
        }
        Ok(version)
    }

    /// ApiVersions: v2, or v0 when the broker answers that it does not speak v2.
    async fn negotiate_versions(&mut self) -> Result<(), BrokerError> {
        const REQUEST: &str = "ApiVersions";
        let request = ApiVersionsRequest::default();
        let mut out = self.outgoing();
        self.push(&mut out, &request, API_VERSIONS_VERSION)?;
        let expected = out.sent[0].0;
        let frames = self.exchange(out).await?;
        let mut frame = frames.into_iter().next().unwrap_or_default();
        let header = ResponseHeader::decode(
            &mut frame,
            ApiVersionsResponse::header_version(API_VERSIONS_VERSION),
        )
        .map_err(|error| self.decode_error(REQUEST, &error))?;
        if header.correlation_id != expected {
            return Err(self.decode_error(REQUEST, &"the answer is to another request"));
        }
        // An unsupported version is answered in v0, whose first field is the error code.
        let code = frame.get(..2).map(|b| i16::from_be_bytes([b[0], b[1]]));
        let version = if code == Some(codes::UNSUPPORTED_VERSION) {
            0
        } else {
            API_VERSIONS_VERSION
        };
        let answer = ApiVersionsResponse::decode(&mut frame, version)
            .map_err(|error| self.decode_error(REQUEST, &error))?;
        if answer.error_code != 0 && version != 0 {
            return Err(self.kafka_error(REQUEST, "versions".to_owned(), answer.error_code));
        }
        self.versions = answer
            .api_keys
            .iter()
            .map(|key| (key.api_key, (key.min_version, key.max_version)))
            .collect();
        Ok(())
    }

    async fn authenticate(
        &mut self,
        security: &Security,
        deadline: Instant,
    ) -> Result<(), BrokerError> {
        let mechanism = match &security.sasl {
            SaslSettings::None => return Ok(()),
            SaslSettings::Plain { .. } => "PLAIN",
            SaslSettings::ScramSha256 { .. } => ScramHash::Sha256.mechanism(),
            SaslSettings::ScramSha512 { .. } => ScramHash::Sha512.mechanism(),
            SaslSettings::OAuthBearer(_) => "OAUTHBEARER",
        };
        let handshake = self.version(
            ApiKey::SaslHandshake,
            "SaslHandshake",
            SASL_HANDSHAKE_VERSIONS,
        )?;
        let version = self.version(
            ApiKey::SaslAuthenticate,
            "SaslAuthenticate",
            SASL_AUTHENTICATE_VERSIONS,
        )?;
        let request =
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
        let answer = self.call(&request, handshake).await?;
        let failed = |broker: &BrokerAddress, reason: String| BrokerError::Authentication {
            mechanism,
            broker: broker.clone(),
            reason,
        };
        if answer.error_code != 0 {
            let offered: Vec<&str> = answer.mechanisms.iter().map(|m| m.as_str()).collect();
            let reason = format!(
                "{}; the broker offers {}",
                describe_code(answer.error_code),
                offered.join(", ")
            );
            return Err(failed(&self.broker, reason));
        }
        match &security.sasl {
            SaslSettings::None => Ok(()),
            SaslSettings::Plain { username, password } => {
                let message = plain_message(username, password);
                self.sasl_step(version, mechanism, message).await?;
                Ok(())
            }
            SaslSettings::ScramSha256 { username, password } => {
                self.scram(version, ScramHash::Sha256, username, password)
                    .await
            }
            SaslSettings::ScramSha512 { username, password } => {
                self.scram(version, ScramHash::Sha512, username, password)
                    .await
            }
            SaslSettings::OAuthBearer(_) => {
                let Some(tokens) = &security.tokens else {
                    return Err(failed(&self.broker, "no OAuth token source".to_owned()));
                };
                let timeout = deadline.saturating_duration_since(Instant::now());
                let token = tokens
                    .token(timeout)
                    .await
                    .map_err(|error| BrokerError::Token(Arc::new(error)))?;
                let message = oauthbearer_message(&token.value);
                let challenge = self.sasl_step(version, mechanism, message).await?;
                if challenge.is_empty() {
                    return Ok(());
                }
                // RFC 7628 §3.2.2: an error challenge is acknowledged with one 0x01; the
                // broker then fails the exchange, and the challenge says why.
                let reason = format!(
                    "the broker refused the token: {}",
                    String::from_utf8_lossy(&challenge)
                );
                match self.sasl_step(version, mechanism, vec![1]).await {
                    Err(BrokerError::Authentication { .. }) | Ok(_) => {
                        Err(failed(&self.broker, reason))
                    }
                    Err(other) => Err(other),
                }
            }
        }
    }

    /// SCRAM's two rounds; the server's signature is checked.
    async fn scram(
        &mut self,
        version: i16,
        hash: ScramHash,
        username: &str,
        password: &str,
    ) -> Result<(), BrokerError> {
        let mechanism = hash.mechanism();
        let failed = |broker: &BrokerAddress, error: ScramError| BrokerError::Authentication {
            mechanism,
            broker: broker.clone(),
            reason: error.to_string(),
        };
        let mut client =
            ScramClient::new(hash, username, password).map_err(|e| failed(&self.broker, e))?;
        let first = client.client_first().into_bytes();
        let server_first = self.sasl_step(version, mechanism, first).await?;
        let server_first = String::from_utf8_lossy(&server_first).into_owned();
        // PBKDF2 costs thousands of HMACs: off the async workers.
        let (client, client_final) = tokio::task::spawn_blocking(move || {
            let message = client.client_final(&server_first);
            (client, message)
        })
        .await
        .map_err(|_| BrokerError::Worker(self.broker.clone()))?;
        let client_final = client_final.map_err(|e| failed(&self.broker, e))?;
        let server_final = self
            .sasl_step(version, mechanism, client_final.into_bytes())
            .await?;
        client
            .verify_server_final(&String::from_utf8_lossy(&server_final))
            .map_err(|e| failed(&self.broker, e))
    }

    /// One SaslAuthenticate round: our bytes, the broker's.
    async fn sasl_step(
        &mut self,
        version: i16,
        mechanism: &'static str,
        message: Vec<u8>,
    ) -> Result<Bytes, BrokerError> {
        let answer: SaslAuthenticateResponse = self
            .call(
                &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message)),
                version,
            )
            .await?;
        if answer.error_code != 0 {
            let detail = answer
                .error_message
                .as_ref()
                .map(|message| format!(": {}", message.as_str()))
                .unwrap_or_default();
            return Err(BrokerError::Authentication {
                mechanism,
                broker: self.broker.clone(),
                reason: format!("{}{detail}", describe_code(answer.error_code)),
            });
        }
        if answer.session_lifetime_ms > 0 {
            let lifetime = Duration::from_millis(answer.session_lifetime_ms.unsigned_abs());
            // Replaced a little before the broker would close it.
            self.session_end = Some(Instant::now() + lifetime.mul_f64(0.9));
        }
        Ok(answer.auth_bytes)
    }

    /// One round of coordinator lookups and offset reads.
    async fn round(
        &mut self,
        finds: &BTreeSet<String>,
        fetches: &BTreeMap<String, TopicPartitions>,
    ) -> Result<Answers, BrokerError> {
        let mut out = self.outgoing();
        let mut plan = Vec::new();
        if !finds.is_empty() {
            let version = self.version(
                ApiKey::FindCoordinator,
                "FindCoordinator",
                FIND_COORDINATOR_VERSIONS,
            )?;
            if version >= 4 {
                let groups: Vec<&String> = finds.iter().collect();
                for chunk in groups.chunks(GROUPS_PER_REQUEST) {
                    let request = FindCoordinatorRequest::default().with_coordinator_keys(
                        chunk
                            .iter()
                            .map(|group| StrBytes::from_string((*group).clone()))
                            .collect(),
                    );
                    self.push(&mut out, &request, version)?;
                    plan.push(Sent::FindMany(version));
                }
            } else {
                for group in finds {
                    let request = FindCoordinatorRequest::default()
                        .with_key(StrBytes::from_string(group.clone()));
                    self.push(&mut out, &request, version)?;
                    plan.push(Sent::FindOne(version, group.clone()));
                }
            }
        }
        if !fetches.is_empty() {
            let version =
                self.version(ApiKey::OffsetFetch, "OffsetFetch", OFFSET_FETCH_VERSIONS)?;
            if version >= 8 {
                let groups: Vec<(&String, &TopicPartitions)> = fetches.iter().collect();
                for chunk in groups.chunks(GROUPS_PER_REQUEST) {
                    let request = OffsetFetchRequest::default().with_groups(
                        chunk
                            .iter()
                            .map(|(group, partitions)| {
                                OffsetFetchRequestGroup::default()
                                    .with_group_id(group_id(group))
                                    .with_topics(Some(
                                        partitions
                                            .iter()
                                            .map(|(topic, ids)| {
                                                OffsetFetchRequestTopics::default()
                                                    .with_name(topic_name(topic))
                                                    .with_partition_indexes(ids.clone())
                                            })
                                            .collect(),
                                    ))
                            })
                            .collect(),
                    );
                    self.push(&mut out, &request, version)?;
                    plan.push(Sent::FetchMany(version));
                }
            } else {
                for (group, partitions) in fetches {
                    let request = OffsetFetchRequest::default()
                        .with_group_id(group_id(group))
                        .with_topics(Some(
                            partitions
                                .iter()
                                .map(|(topic, ids)| {
                                    OffsetFetchRequestTopic::default()
                                        .with_name(topic_name(topic))
                                        .with_partition_indexes(ids.clone())
                                })
                                .collect(),
                        ));
                    self.push(&mut out, &request, version)?;
                    plan.push(Sent::FetchOne(version, group.clone()));
                }
            }
        }
        let sent = out.sent.clone();
        let frames = self.exchange(out).await?;
        let mut answers = Answers::default();
        for ((frame, (correlation, _)), sent) in frames.into_iter().zip(sent).zip(plan) {
            match sent {
                Sent::FindOne(version, group) => {
                    let answer: FindCoordinatorResponse =
                        self.decode::<FindCoordinatorRequest>(frame, correlation, version)?;
                    let found = self.found(answer.error_code, &answer.host, answer.port);
                    answers.found.insert(group, found);
                }
                Sent::FindMany(version) => {
                    let answer: FindCoordinatorResponse =
                        self.decode::<FindCoordinatorRequest>(frame, correlation, version)?;
                    for coordinator in answer.coordinators {
                        let found =
                            self.found(coordinator.error_code, &coordinator.host, coordinator.port);
                        answers
                            .found
                            .insert(coordinator.key.as_str().to_owned(), found);
                    }
                }
                Sent::FetchOne(version, group) => {
                    let answer: OffsetFetchResponse =
                        self.decode::<OffsetFetchRequest>(frame, correlation, version)?;
                    let partitions = answer.topics.iter().flat_map(|topic| {
                        topic.partitions.iter().map(|p| {
                            (
                                topic.name.0.as_str(),
                                p.partition_index,
                                p.committed_offset,
                                p.error_code,
                            )
                        })
                    });
                    let result = self.group_answer(&group, answer.error_code, partitions);
                    answers.fetched.insert(group, result);
                }
                Sent::FetchMany(version) => {
                    let answer: OffsetFetchResponse =
                        self.decode::<OffsetFetchRequest>(frame, correlation, version)?;
                    for group in &answer.groups {
                        let partitions = group.topics.iter().flat_map(|topic| {
                            topic.partitions.iter().map(|p| {
                                (
                                    topic.name.0.as_str(),
                                    p.partition_index,
                                    p.committed_offset,
                                    p.error_code,
                                )
                            })
                        });
                        let name = group.group_id.0.as_str();
                        let result = self.group_answer(name, group.error_code, partitions);
                        answers.fetched.insert(name.to_owned(), result);
                    }
                }
            }
        }
        Ok(answers)
    }

    fn found(&self, code: i16, host: &StrBytes, port: i32) -> Found {
        if let Some(error) = ResponseError::try_from_code(code) {
            return Found::Failed {
                broker: self.broker.clone(),
                error,
            };
        }
        match u16::try_from(port) {
            Ok(port) if !host.is_empty() => Found::At(BrokerAddress {
                host: host.as_str().to_owned(),
                port,
            }),
            _ => Found::Failed {
                broker: self.broker.clone(),
                error: ResponseError::CoordinatorNotAvailable,
            },
        }
    }

    /// A group's answer: a group-level error (or a coordinator error on a partition, as
    /// OffsetFetch v1 reports it) fails it; other partition errors stay per partition.
    fn group_answer<'a>(
        &self,
        group: &str,
        code: i16,
        partitions: impl Iterator<Item = (&'a str, i32, i64, i16)>,
    ) -> GroupAnswer {
        let group_error = |code| self.kafka_error("OffsetFetch", format!("group `{group}`"), code);
        if code != 0 {
            return Err(group_error(code));
        }
        let mut answered = BTreeMap::new();
        for (topic, partition, offset, code) in partitions {
            let result = match ResponseError::try_from_code(code) {
                None => Ok(offset),
                Some(_)
                    if matches!(
                        code,
                        codes::COORDINATOR_LOAD_IN_PROGRESS
                            | codes::COORDINATOR_NOT_AVAILABLE
                            | codes::NOT_COORDINATOR
                    ) =>
                {
                    return Err(group_error(code));
                }
                Some(error) => Err(error),
            };
            answered.insert((topic.to_owned(), partition), result);
        }
        Ok(answered)
    }

    fn kafka_error(&self, request: &'static str, what: String, code: i16) -> BrokerError {
        BrokerError::Kafka {
            request,
            broker: self.broker.clone(),
            what,
            error: ResponseError::try_from_code(code).unwrap_or(ResponseError::Unknown(code)),
        }
    }

    fn decode_error(&self, request: &'static str, error: &dyn fmt::Display) -> BrokerError {
        BrokerError::Decode {
            request,
            broker: self.broker.clone(),
            reason: error.to_string(),
        }
    }

    fn outgoing(&self) -> Outgoing {
        Outgoing {
            buffer: BytesMut::new(),
            sent: Vec::new(),
        }
    }

    /// Encodes `request` (size, header, body) onto `out`.
    fn push<R: Call>(
        &mut self,
        out: &mut Outgoing,
        request: &R,
        version: i16,
    ) -> Result<(), BrokerError> {
        let name = R::NAME;
        let correlation = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(StrBytes::from_static_str("windlass")));
        let encode_error = |error: anyhow::Error| BrokerError::Encode {
            request: name,
            broker: self.broker.clone(),
            reason: error.to_string(),
        };
        let start = out.buffer.len();
        out.buffer.put_i32(0);
        header
            .encode(&mut out.buffer, R::header_version(version))
            .map_err(encode_error)?;
        request
            .encode(&mut out.buffer, version)
            .map_err(encode_error)?;
        let size =
            i32::try_from(out.buffer.len() - start - 4).map_err(|_| BrokerError::Encode {
                request: name,
                broker: self.broker.clone(),
                reason: "the request is too large".to_owned(),
            })?;
        out.buffer[start..start + 4].copy_from_slice(&size.to_be_bytes());
        out.sent.push((correlation, name));
        Ok(())
    }

    /// Writes every request of `out` while reading as many answers (Kafka answers in order),
    /// so neither side waits on a full socket buffer.
    async fn exchange(&mut self, out: Outgoing) -> Result<Vec<Bytes>, BrokerError> {
        let request = out.sent.first().map_or("request", |(_, name)| *name);
        let count = out.sent.len();
        let broker = self.broker.clone();
        let io_error = |source: io::Error| BrokerError::Io {
            request,
            broker: broker.clone(),
            source: Arc::new(source),
        };
        let (mut reader, mut writer) = tokio::io::split(&mut self.stream);
        let write = async {
            writer.write_all(&out.buffer).await?;
            writer.flush().await
        };
        let read = async {
            let mut frames = Vec::with_capacity(count);
            for _ in 0..count {
                let size = reader.read_i32().await?;
                let size = usize::try_from(size)
                    .ok()
                    .filter(|size| *size <= MAX_FRAME)
                    .ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "an answer of {size} bytes: not a Kafka broker, or TLS is missing"
                            ),
                        )
                    })?;
                let mut frame = vec![0; size];
                reader.read_exact(&mut frame).await?;
                frames.push(Bytes::from(frame));
            }
            Ok::<_, io::Error>(frames)
        };
        let ((), frames) = tokio::try_join!(write, read).map_err(io_error)?;
        Ok(frames)
    }

    /// One request and its answer.
    async fn call<R: Call>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, BrokerError> {
        let mut out = self.outgoing();
        self.push(&mut out, request, version)?;
        let correlation = out.sent[0].0;
        let frame = self
            .exchange(out)
            .await?
            .into_iter()
            .next()
            .unwrap_or_default();
        self.decode::<R>(frame, correlation, version)
    }

    /// The answer to `R` sent as `correlation` with `version`.
    fn decode<R: Call>(
        &self,
        mut frame: Bytes,
        correlation: i32,
        version: i16,
    ) -> Result<R::Response, BrokerError> {
        let name = R::NAME;
        let header = ResponseHeader::decode(&mut frame, R::Response::header_version(version))
            .map_err(|error| self.decode_error(name, &error))?;
        if header.correlation_id != correlation {
            return Err(self.decode_error(
                name,
                &format!(
                    "correlation id {} where {correlation} was sent",
                    header.correlation_id
                ),
            ));
        }
        R::Response::decode(&mut frame, version).map_err(|error| self.decode_error(name, &error))
    }
}

/// A request this client sends, with its answer's type. (`kafka-protocol`'s own `Request`
/// trait also needs the broker half of the crate.)
trait Call: Encodable + HeaderVersion {
    const KEY: ApiKey;
    const NAME: &'static str;
    type Response: Decodable + HeaderVersion;
}

macro_rules! calls {
    ($($request:ty => $response:ty, $name:ident;)*) => {
        $(impl Call for $request {
            const KEY: ApiKey = ApiKey::$name;
            const NAME: &'static str = stringify!($name);
            type Response = $response;
        })*
    };
}

calls! {
    ApiVersionsRequest => ApiVersionsResponse, ApiVersions;
    SaslHandshakeRequest => SaslHandshakeResponse, SaslHandshake;
    SaslAuthenticateRequest => SaslAuthenticateResponse, SaslAuthenticate;
    FindCoordinatorRequest => FindCoordinatorResponse, FindCoordinator;
    OffsetFetchRequest => OffsetFetchResponse, OffsetFetch;
}

/// What each request of a round was, to read its answer.
enum Sent {
    FindOne(i16, String),
    FindMany(i16),
    FetchOne(i16, String),
    FetchMany(i16),
}

fn describe_code(code: i16) -> String {
    ResponseError::try_from_code(code).map_or_else(
        || "no error".to_owned(),
        |error| format!("{error} (code {code})"),
    )
}

fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_owned()))
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

/// The rustls configuration of `tls`: the system roots plus `ca` (as KEDA's TLS settings),
/// the client certificate when given, no verification with `unsafeSsl`.
fn tls_config(tls: &TlsSettings) -> Result<rustls::ClientConfig, BrokerError> {
    use crate::nats_client::{parse_certificates, parse_key};

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|error| BrokerError::TlsSettings(error.to_string()))?;
    let builder = if tls.skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(
                crate::insecure_tls::AnyServerCertificate::new(provider),
            ))
    } else {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if let Some(ca) = &tls.ca {
            for certificate in parse_certificates(ca)
                .map_err(|error| BrokerError::TlsSettings(format!("ca: {error}")))?
            {
                roots.add(certificate).map_err(|error| {
                    BrokerError::TlsSettings(format!("ca: unusable certificate: {error}"))
                })?;
            }
        }
        builder.with_root_certificates(roots)
    };
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = parse_certificates(cert)
                .map_err(|error| BrokerError::TlsSettings(format!("cert: {error}")))?;
            let key = parse_key(key)
                .map_err(|error| BrokerError::TlsSettings(format!("key: {error}")))?;
            builder.with_client_auth_cert(chain, key).map_err(|error| {
                BrokerError::TlsSettings(format!(
                    "cert/key: not a matching certificate and key: {error}"
                ))
            })
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

#[cfg(test)]
mod tests;
