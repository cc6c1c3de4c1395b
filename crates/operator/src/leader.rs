//! Leader election on a `coordination.k8s.io/v1` Lease: only the leader scales, manages HPAs
//! and writes status; every replica watches and serves the external metrics API.
//!
//! The rules are client-go's (`k8s.io/client-go/tools/leaderelection`):
//!
//! - A replica takes the lease when it does not exist, has no holder (released), is already
//!   its own, or has expired. Expired means both that the record's own arithmetic says so
//!   (`renewTime + leaseDurationSeconds < now`, [`expired_by_record`]) and that this replica
//!   has seen the record unchanged for a whole lease duration on its own monotonic clock, as
//!   client-go checks it. The second condition makes takeover independent of clock skew
//!   between nodes: a holder that keeps renewing keeps changing the record.
//! - Every write is an update with the `resourceVersion` that was read, so of two replicas
//!   racing for an expired lease exactly one wins; the other gets `409 Conflict`, reads again
//!   and retries one retry period later. Taking over from another holder increments
//!   `leaseTransitions`; renewing keeps it and `acquireTime`.
//! - The leader renews every retry period. When no renewal has succeeded within the renew
//!   deadline, it steps down at once (the `watch` flips to `false`) and becomes a candidate
//!   again; a request still in flight at the deadline is abandoned.
//! - On shutdown the leader steps down and releases the lease (no holder, a one-second
//!   duration, as client-go's `ReleaseOnCancel`), so a standby takes over at its next retry
//!   instead of waiting for the lease to expire.
//!
//! **Why a leader that steps down has stopped before anyone else starts.** Let `t` be the
//! instant the leader *sent* its last successful renewal; the API server committed it at some
//! `c >= t`. The leader steps down no later than `t + renewDeadline` (every request is bounded
//! by the remaining deadline). A standby can take over only after it has seen that committed
//! record unchanged for `leaseDuration`, and it cannot have seen it before `c`, so not before
//! `t + leaseDuration`. Between the two lies `leaseDuration - renewDeadline` (5 s with the
//! defaults 15 s and 10 s) for the controller to notice the flip and finish or abandon its
//! writes, and for clocks that run at slightly different rates. This only holds while
//! `leaseDuration > renewDeadline`, which [`LeaderElectionConfig::validate`] enforces (with
//! client-go's margin `renewDeadline > 1.2 × retryPeriod`). The controller must therefore check
//! the `watch` before every write, not once per reconcile, and shutdown must stop the
//! controller before the elector is told to release.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::pin;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::Args;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::telemetry::{Health, OperatorMetrics};

/// KEDA's leases are `operator.keda.sh`; Windlass must never share them.
pub const DEFAULT_LEASE_NAME: &str = "windlass-operator";
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);
/// The namespace when neither the flag, `POD_NAMESPACE` nor the service account says, as KEDA.
pub const FALLBACK_NAMESPACE: &str = "keda";
const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
/// client-go's `JitterFactor`: candidates wait up to 20 % longer than the retry period, so
/// replicas started together do not all ask at the same instant.
const JITTER_FACTOR: f64 = 1.2;

/// Leader election flags. The duration flags take Go durations (`15s`, `1m30s`) and read
/// KEDA's environment variables, so a KEDA deployment's settings carry over.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct LeaderElectionArgs {
    /// Elect a leader so that only one replica scales; `--leader-elect=false` makes this
    /// replica act alone (safe only with a single replica).
    #[arg(
        long,
        env = "WINDLASS_LEADER_ELECT",
        value_name = "BOOL",
        default_value = "true",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = parse_bool
    )]
    pub leader_elect: bool,

    /// The namespace of the Lease (default: this pod's namespace from `POD_NAMESPACE`, else the
    /// service account's namespace, else `keda`).
    #[arg(long, env = "POD_NAMESPACE", value_name = "NAMESPACE")]
    pub leader_election_namespace: Option<String>,

    /// The name of the Lease. Not KEDA's `operator.keda.sh`: Windlass and KEDA must not elect
    /// each other.
    #[arg(
        long,
        env = "WINDLASS_LEADER_ELECTION_ID",
        value_name = "NAME",
        default_value = DEFAULT_LEASE_NAME
    )]
    pub leader_election_id: String,

    /// This replica's name in the Lease (default: the pod name from `POD_NAME`, else the host
    /// name with a random suffix).
    #[arg(long, env = "POD_NAME", value_name = "IDENTITY")]
    pub leader_election_identity: Option<String>,

    /// How long a lease stays valid after its last renewal; standbys wait this long before
    /// taking over from a leader that stopped renewing.
    #[arg(
        long,
        env = "KEDA_OPERATOR_LEADER_ELECTION_LEASE_DURATION",
        value_name = "DURATION",
        default_value = "15s",
        value_parser = lease_duration
    )]
    pub leader_election_lease_duration: Duration,

    /// How long the leader keeps leading without a successful renewal before it stops.
    #[arg(
        long,
        env = "KEDA_OPERATOR_LEADER_ELECTION_RENEW_DEADLINE",
        value_name = "DURATION",
        default_value = "10s",
        value_parser = renew_deadline
    )]
    pub leader_election_renew_deadline: Duration,

    /// How often the leader renews and candidates try to acquire.
    #[arg(
        long,
        env = "KEDA_OPERATOR_LEADER_ELECTION_RETRY_PERIOD",
        value_name = "DURATION",
        default_value = "2s",
        value_parser = retry_period
    )]
    pub leader_election_retry_period: Duration,
}

fn parse_bool(text: &str) -> Result<bool, String> {
    scaler_core::params::parse_go_bool(text.trim())
        .ok_or_else(|| format!("{text:?} is not a boolean (true, false, 1, 0, t, f)"))
}

/// A positive Go duration; empty means the default, as KEDA reads its environment.
fn parse_duration_or(text: &str, default: Duration) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(default);
    }
    match scaler_core::params::parse_go_duration(text) {
        Some(nanos) if nanos > 0 => Ok(Duration::from_nanos(nanos.unsigned_abs())),
        Some(_) => Err(format!("{text:?}: the duration must be positive")),
        None => Err(format!(
            "{text:?} is not a duration like 15s, 1m30s or 500ms"
        )),
    }
}

fn lease_duration(text: &str) -> Result<Duration, String> {
    parse_duration_or(text, DEFAULT_LEASE_DURATION)
}

fn renew_deadline(text: &str) -> Result<Duration, String> {
    parse_duration_or(text, DEFAULT_RENEW_DEADLINE)
}

fn retry_period(text: &str) -> Result<Duration, String> {
    parse_duration_or(text, DEFAULT_RETRY_PERIOD)
}

impl LeaderElectionArgs {
    /// The election to run, or `None` with `--leader-elect=false`.
    pub fn config(&self) -> Result<Option<LeaderElectionConfig>, LeaderElectionError> {
        if !self.leader_elect {
            return Ok(None);
        }
        let namespace = self
            .leader_election_namespace
            .clone()
            .filter(|namespace| !namespace.trim().is_empty())
            .unwrap_or_else(default_namespace);
        let identity = self
            .leader_election_identity
            .clone()
            .filter(|identity| !identity.trim().is_empty())
            .unwrap_or_else(default_identity);
        let config = LeaderElectionConfig {
            namespace,
            lease_name: self.leader_election_id.clone(),
            identity,
            lease_duration: self.leader_election_lease_duration,
            renew_deadline: self.leader_election_renew_deadline,
            retry_period: self.leader_election_retry_period,
        };
        config.validate()?;
        Ok(Some(config))
    }
}

/// The service account's namespace, else `keda`.
fn default_namespace() -> String {
    std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE)
        .ok()
        .map(|text| text.trim().to_owned())
        .filter(|namespace| !namespace.is_empty())
        .unwrap_or_else(|| FALLBACK_NAMESPACE.to_owned())
}

/// `<hostname>_<random>`, as controller-runtime names a replica without a pod name.
fn default_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|host| host.trim().to_owned())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "windlass".to_owned());
    format!("{host}_{:016x}", random_u64())
}

/// A random number from the standard library's per-process hash keys; enough to tell
/// replicas apart and to spread retries, not for anything secret.
fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default(),
    );
    hasher.finish()
}

/// One election: which Lease, who this replica is, and the timing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderElectionConfig {
    pub namespace: String,
    pub lease_name: String,
    pub identity: String,
    /// Whole seconds count: the Lease stores `leaseDurationSeconds`.
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

#[derive(Debug, Error)]
pub enum LeaderElectionError {
    #[error(
        "leader election: the lease duration ({lease_duration:?}, counted in whole seconds) must be longer than the renew deadline ({renew_deadline:?}), or a standby could take over while the leader still acts"
    )]
    LeaseNotLongerThanDeadline {
        lease_duration: Duration,
        renew_deadline: Duration,
    },
    #[error(
        "leader election: the renew deadline ({renew_deadline:?}) must be longer than 1.2 × the retry period ({retry_period:?})"
    )]
    DeadlineTooShortForRetries {
        renew_deadline: Duration,
        retry_period: Duration,
    },
    #[error("leader election: the {what} must not be empty")]
    Empty { what: &'static str },
    #[error("reading Lease {namespace}/{name}")]
    Read {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("creating Lease {namespace}/{name}")]
    Create {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("updating Lease {namespace}/{name}")]
    Update {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl LeaderElectionConfig {
    /// An election with the default timing (15 s / 10 s / 2 s).
    pub fn new(
        namespace: impl Into<String>,
        lease_name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            lease_name: lease_name.into(),
            identity: identity.into(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
        }
    }

    /// client-go's rules, on the duration as the Lease records it (whole seconds).
    pub fn validate(&self) -> Result<(), LeaderElectionError> {
        for (what, value) in [
            ("namespace", &self.namespace),
            ("lease name", &self.lease_name),
            ("identity", &self.identity),
        ] {
            if value.trim().is_empty() {
                return Err(LeaderElectionError::Empty { what });
            }
        }
        let recorded = Duration::from_secs(u64::from(self.lease_duration_seconds().unsigned_abs()));
        if recorded <= self.renew_deadline {
            return Err(LeaderElectionError::LeaseNotLongerThanDeadline {
                lease_duration: self.lease_duration,
                renew_deadline: self.renew_deadline,
            });
        }
        if self.renew_deadline.as_secs_f64() <= JITTER_FACTOR * self.retry_period.as_secs_f64() {
            return Err(LeaderElectionError::DeadlineTooShortForRetries {
                renew_deadline: self.renew_deadline,
                retry_period: self.retry_period,
            });
        }
        Ok(())
    }

    fn lease_duration_seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }
}

/// When a lease lapses by its own record: `renewTime + leaseDurationSeconds`. `None` when the
/// record has no renew time, which counts as long expired.
pub fn lease_expiry(spec: &LeaseSpec) -> Option<DateTime<Utc>> {
    let renewed = crate::time::to_chrono(&spec.renew_time.as_ref()?.0)?;
    let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(0));
    renewed.checked_add_signed(chrono::Duration::seconds(seconds))
}

/// Whether the record says the lease has lapsed at `now` (`renewTime + leaseDurationSeconds <
/// now`, strictly, as client-go compares).
pub fn expired_by_record(spec: &LeaseSpec, now: DateTime<Utc>) -> bool {
    lease_expiry(spec).is_none_or(|expiry| expiry < now)
}

/// Who may write the lease, as seen by `identity`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseHolder {
    /// No holder: never taken, or released.
    Free,
    /// Held by `identity` itself.
    Ours,
    /// Held by someone else whose lease has lapsed.
    Expired { holder: String },
    /// Held by someone else and still valid.
    Other { holder: String },
}

impl LeaseHolder {
    /// Whether `identity` may write itself in as holder.
    pub fn may_acquire(&self) -> bool {
        !matches!(self, Self::Other { .. })
    }
}

/// The takeover rule, a pure function of the record, the clocks and what this replica has
/// seen: another holder's lease lapses only when the record says so at `now` *and* the record
/// has been unchanged for its whole duration as this replica observed it (`unchanged_for`).
pub fn lease_holder(
    spec: &LeaseSpec,
    identity: &str,
    now: DateTime<Utc>,
    unchanged_for: Duration,
) -> LeaseHolder {
    let holder = match spec.holder_identity.as_deref() {
        None | Some("") => return LeaseHolder::Free,
        Some(holder) if holder == identity => return LeaseHolder::Ours,
        Some(holder) => holder.to_owned(),
    };
    let duration = Duration::from_secs(u64::from(
        spec.lease_duration_seconds.unwrap_or(0).unsigned_abs(),
    ));
    if expired_by_record(spec, now) && unchanged_for > duration {
        LeaseHolder::Expired { holder }
    } else {
        LeaseHolder::Other { holder }
    }
}

/// The spec this replica writes to take or renew the lease.
fn claimed_spec(
    previous: &LeaseSpec,
    holder: &LeaseHolder,
    identity: &str,
    lease_duration_seconds: i32,
    now: DateTime<Utc>,
) -> LeaseSpec {
    let now = micro_time(now);
    let renewing = *holder == LeaseHolder::Ours;
    let transitions = previous.lease_transitions.unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(identity.to_owned()),
        lease_duration_seconds: Some(lease_duration_seconds),
        renew_time: Some(now.clone()),
        acquire_time: if renewing {
            previous.acquire_time.clone().or(Some(now))
        } else {
            Some(now)
        },
        lease_transitions: Some(if renewing {
            transitions
        } else {
            transitions.saturating_add(1)
        }),
        ..previous.clone()
    }
}

/// The spec that hands the lease back: no holder and a one-second duration, as client-go.
fn released_spec(previous: &LeaseSpec, now: DateTime<Utc>) -> LeaseSpec {
    let now = micro_time(now);
    LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        renew_time: Some(now.clone()),
        acquire_time: Some(now),
        ..previous.clone()
    }
}

fn micro_time(now: DateTime<Utc>) -> MicroTime {
    // A lease time is microseconds; chrono's range lies within jiff's, so this cannot fail
    // for a clock reading, and the epoch is only a fallback.
    let micros = now.timestamp_micros();
    MicroTime(
        k8s_openapi::jiff::Timestamp::from_microsecond(micros)
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

/// What one attempt to take or renew the lease found.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    /// This replica holds the lease now.
    Held,
    /// Someone else holds a valid lease.
    HeldBy(String),
    /// Someone else wrote the lease between our read and our write.
    Conflict,
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

/// Runs the election (or, disabled, reports leadership at once).
pub struct LeaderElector {
    /// `None` when election is disabled.
    election: Option<Election>,
    health: Option<Health>,
    metrics: Option<OperatorMetrics>,
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector")
            .field(
                "config",
                &self.election.as_ref().map(|election| &election.config),
            )
            .finish_non_exhaustive()
    }
}

struct Election {
    api: Api<Lease>,
    config: LeaderElectionConfig,
}

impl LeaderElector {
    /// An elector for `config` (validate it first: [`LeaderElectionArgs::config`] does).
    pub fn new(client: Client, config: LeaderElectionConfig) -> Self {
        Self {
            election: Some(Election {
                api: Api::namespaced(client, &config.namespace),
                config,
            }),
            health: None,
            metrics: None,
        }
    }

    /// No election: this replica leads from the start (`--leader-elect=false`).
    pub fn disabled() -> Self {
        Self {
            election: None,
            health: None,
            metrics: None,
        }
    }

    /// From the flags: [`LeaderElector::new`] or [`LeaderElector::disabled`].
    pub fn from_args(
        client: Client,
        args: &LeaderElectionArgs,
    ) -> Result<Self, LeaderElectionError> {
        Ok(match args.config()? {
            Some(config) => Self::new(client, config),
            None => Self::disabled(),
        })
    }

    /// Keeps [`Health::set_leader`] up to date.
    pub fn with_health(mut self, health: Health) -> Self {
        self.health = Some(health);
        self
    }

    /// Keeps `leader_election_master_status{name=<lease>}` up to date.
    pub fn with_metrics(mut self, metrics: OperatorMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Starts the election. The receiver says whether this replica leads right now; the task
    /// ends after `shutdown` completes and a held lease is released. Trigger `shutdown` only
    /// after the controller has stopped writing.
    pub fn start(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> (watch::Receiver<bool>, JoinHandle<()>) {
        let Self {
            election,
            health,
            metrics,
        } = self;
        match election {
            None => {
                let (sender, receiver) = watch::channel(true);
                if let Some(health) = &health {
                    health.set_leader(true);
                }
                // The sender lives until shutdown; the value never changes.
                let task = tokio::spawn(async move {
                    shutdown.await;
                    drop(sender);
                });
                (receiver, task)
            }
            Some(Election { api, config }) => {
                let (sender, receiver) = watch::channel(false);
                let candidate = Candidate {
                    api,
                    config,
                    observed: None,
                    leading: sender,
                    health,
                    metrics,
                };
                if let Some(metrics) = &candidate.metrics {
                    metrics.set_leader(&candidate.config.lease_name, false);
                }
                (receiver, tokio::spawn(candidate.run(shutdown)))
            }
        }
    }
}

/// The lease record as last seen, and when it was first seen in that state.
struct Observed {
    spec: LeaseSpec,
    since: Instant,
}

struct Candidate {
    api: Api<Lease>,
    config: LeaderElectionConfig,
    observed: Option<Observed>,
    leading: watch::Sender<bool>,
    health: Option<Health>,
    metrics: Option<OperatorMetrics>,
}

impl Candidate {
    async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = pin!(shutdown);
        // While leading: when the last successful renewal was sent.
        let mut renewed: Option<Instant> = None;
        loop {
            if let Some(sent) = renewed
                && sent.elapsed() >= self.config.renew_deadline
            {
                tracing::warn!(
                    lease = %self.config.lease_name,
                    deadline = ?self.config.renew_deadline,
                    "could not renew the lease within the renew deadline; stepping down"
                );
                self.set_leading(false);
                renewed = None;
            }

            let started = Instant::now();
            let bound = match renewed {
                Some(sent) => self.config.renew_deadline.saturating_sub(sent.elapsed()),
                None => self.config.renew_deadline,
            };
            let attempt = tokio::select! {
                () = &mut shutdown => break,
                attempt = tokio::time::timeout(bound, self.try_acquire_or_renew()) => attempt,
            };
            match attempt {
                Ok(Ok(Attempt::Held)) => {
                    if renewed.is_none() {
                        tracing::info!(
                            lease = %self.config.lease_name,
                            identity = %self.config.identity,
                            "acquired the lease; leading"
                        );
                        self.set_leading(true);
                    }
                    renewed = Some(started);
                }
                Ok(Ok(Attempt::HeldBy(holder))) => {
                    if renewed.take().is_some() {
                        tracing::warn!(lease = %self.config.lease_name, %holder, "the lease is held by another replica; stepping down");
                        self.set_leading(false);
                    } else {
                        tracing::debug!(lease = %self.config.lease_name, %holder, "the lease is held by another replica");
                    }
                }
                Ok(Ok(Attempt::Conflict)) => {
                    tracing::debug!(lease = %self.config.lease_name, "the lease changed while writing it; retrying");
                }
                Ok(Err(error)) => {
                    tracing::warn!(error = %error, source = ?std::error::Error::source(&error), "leader election attempt failed");
                }
                Err(_) => {
                    tracing::warn!(lease = %self.config.lease_name, ?bound, "leader election attempt timed out");
                }
            }

            let wait = match renewed {
                Some(sent) => self
                    .config
                    .retry_period
                    .min(self.config.renew_deadline.saturating_sub(sent.elapsed())),
                None => jittered(self.config.retry_period),
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(wait) => {}
            }
        }

        if renewed.is_some() {
            self.set_leading(false);
            match tokio::time::timeout(self.config.renew_deadline, self.release()).await {
                Ok(Ok(())) => tracing::info!(lease = %self.config.lease_name, "released the lease"),
                Ok(Err(error)) => {
                    tracing::warn!(error = %error, source = ?std::error::Error::source(&error), "could not release the lease; a standby takes over when it expires")
                }
                Err(_) => {
                    tracing::warn!(lease = %self.config.lease_name, "releasing the lease timed out; a standby takes over when it expires")
                }
            }
        }
    }

    fn set_leading(&self, leading: bool) {
        self.leading.send_replace(leading);
        if let Some(health) = &self.health {
            health.set_leader(leading);
        }
        if let Some(metrics) = &self.metrics {
            metrics.set_leader(&self.config.lease_name, leading);
        }
    }

    /// Remembers the record; the clock of "unchanged since" restarts when it differs.
    fn observe(&mut self, spec: &LeaseSpec) -> Duration {
        match &self.observed {
            Some(observed) if observed.spec == *spec => observed.since.elapsed(),
            _ => {
                self.observed = Some(Observed {
                    spec: spec.clone(),
                    since: Instant::now(),
                });
                Duration::ZERO
            }
        }
    }

    fn error_context(&self) -> (String, String) {
        (
            self.config.namespace.clone(),
            self.config.lease_name.clone(),
        )
    }

    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, LeaderElectionError> {
        let name = self.config.lease_name.clone();
        let existing = self.api.get_opt(&name).await.map_err(|source| {
            let (namespace, name) = self.error_context();
            LeaderElectionError::Read {
                namespace,
                name,
                source,
            }
        })?;
        let now = Utc::now();
        let Some(mut lease) = existing else {
            let spec = claimed_spec(
                &LeaseSpec::default(),
                &LeaseHolder::Ours,
                &self.config.identity,
                self.config.lease_duration_seconds(),
                now,
            );
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    lease_transitions: Some(0),
                    ..spec
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(&created.spec.unwrap_or_default());
                    Ok(Attempt::Held)
                }
                Err(error) if is_conflict(&error) => Ok(Attempt::Conflict),
                Err(source) => {
                    let (namespace, name) = self.error_context();
                    Err(LeaderElectionError::Create {
                        namespace,
                        name,
                        source,
                    })
                }
            };
        };

        let spec = lease.spec.clone().unwrap_or_default();
        let unchanged_for = self.observe(&spec);
        let holder = lease_holder(&spec, &self.config.identity, now, unchanged_for);
        if let LeaseHolder::Other { holder } = holder {
            return Ok(Attempt::HeldBy(holder));
        }
        if let LeaseHolder::Expired { holder } = &holder {
            tracing::info!(lease = %name, previous = %holder, "the lease expired; taking over");
        }
        lease.spec = Some(claimed_spec(
            &spec,
            &holder,
            &self.config.identity,
            self.config.lease_duration_seconds(),
            now,
        ));
        // `lease.metadata.resourceVersion` is the one read: a write since then is a conflict.
        match self
            .api
            .replace(&name, &PostParams::default(), &lease)
            .await
        {
            Ok(updated) => {
                self.observe(&updated.spec.unwrap_or_default());
                Ok(Attempt::Held)
            }
            Err(error) if is_conflict(&error) => Ok(Attempt::Conflict),
            Err(source) => {
                let (namespace, name) = self.error_context();
                Err(LeaderElectionError::Update {
                    namespace,
                    name,
                    source,
                })
            }
        }
    }

    /// Hands the lease back if this replica still holds it.
    async fn release(&mut self) -> Result<(), LeaderElectionError> {
        let name = self.config.lease_name.clone();
        let existing = self.api.get_opt(&name).await.map_err(|source| {
            let (namespace, name) = self.error_context();
            LeaderElectionError::Read {
                namespace,
                name,
                source,
            }
        })?;
        let Some(mut lease) = existing else {
            return Ok(());
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        lease.spec = Some(released_spec(&spec, Utc::now()));
        self.api
            .replace(&name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
            .map_err(|source| {
                let (namespace, name) = self.error_context();
                LeaderElectionError::Update {
                    namespace,
                    name,
                    source,
                }
            })
    }
}

/// `period` stretched by a random factor in `[1, JITTER_FACTOR)`.
fn jittered(period: Duration) -> Duration {
    // 53 random bits make a uniform fraction in [0, 1).
    #[allow(clippy::cast_precision_loss)]
    let fraction = (random_u64() >> 11) as f64 / (1u64 << 53) as f64;
    period.mul_f64(1.0 + (JITTER_FACTOR - 1.0) * fraction)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn spec(holder: Option<&str>, renewed: &str, seconds: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            lease_duration_seconds: Some(seconds),
            renew_time: Some(micro_time(at(renewed))),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn expiry_is_renew_time_plus_duration_compared_strictly() {
        let lease = spec(Some("a"), "2026-01-01T00:00:00Z", 15);
        assert_eq!(lease_expiry(&lease), Some(at("2026-01-01T00:00:15Z")));
        assert!(!expired_by_record(
            &lease,
            at("2026-01-01T00:00:14.999999Z")
        ));
        assert!(!expired_by_record(&lease, at("2026-01-01T00:00:15Z")));
        assert!(expired_by_record(&lease, at("2026-01-01T00:00:15.000001Z")));
    }

    #[test]
    fn a_record_without_renew_time_or_duration_has_lapsed() {
        let no_renew = LeaseSpec {
            holder_identity: Some("a".into()),
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        };
        assert_eq!(lease_expiry(&no_renew), None);
        assert!(expired_by_record(&no_renew, at("2026-01-01T00:00:00Z")));
        let no_duration = LeaseSpec {
            lease_duration_seconds: None,
            ..spec(Some("a"), "2026-01-01T00:00:00Z", 0)
        };
        assert!(expired_by_record(
            &no_duration,
            at("2026-01-01T00:00:00.000001Z")
        ));
    }

    #[test]
    fn holder_rules() {
        let now = at("2026-01-01T00:01:00Z");
        let long = Duration::from_secs(3600);
        struct Case {
            name: &'static str,
            lease: LeaseSpec,
            unchanged_for: Duration,
            expected: LeaseHolder,
        }
        let cases = [
            Case {
                name: "no holder",
                lease: spec(None, "2026-01-01T00:00:59Z", 15),
                unchanged_for: Duration::ZERO,
                expected: LeaseHolder::Free,
            },
            Case {
                name: "empty holder (client-go's release)",
                lease: spec(Some(""), "2026-01-01T00:00:59Z", 15),
                unchanged_for: Duration::ZERO,
                expected: LeaseHolder::Free,
            },
            Case {
                name: "ours, even expired",
                lease: spec(Some("me"), "2026-01-01T00:00:00Z", 15),
                unchanged_for: long,
                expected: LeaseHolder::Ours,
            },
            Case {
                name: "other, valid",
                lease: spec(Some("other"), "2026-01-01T00:00:50Z", 15),
                unchanged_for: long,
                expected: LeaseHolder::Other {
                    holder: "other".into(),
                },
            },
            Case {
                name: "other, lapsed by record and unchanged long enough",
                lease: spec(Some("other"), "2026-01-01T00:00:30Z", 15),
                unchanged_for: Duration::from_secs(16),
                expected: LeaseHolder::Expired {
                    holder: "other".into(),
                },
            },
            Case {
                name: "other, lapsed by record but only just seen (skewed clock or new replica)",
                lease: spec(Some("other"), "2026-01-01T00:00:30Z", 15),
                unchanged_for: Duration::from_secs(15),
                expected: LeaseHolder::Other {
                    holder: "other".into(),
                },
            },
        ];
        for case in cases {
            let got = lease_holder(&case.lease, "me", now, case.unchanged_for);
            assert_eq!(got, case.expected, "{}", case.name);
            assert_eq!(
                got.may_acquire(),
                !matches!(case.expected, LeaseHolder::Other { .. }),
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn taking_over_counts_a_transition_renewing_does_not() {
        let now = at("2026-01-01T00:01:00Z");
        let previous = LeaseSpec {
            acquire_time: Some(micro_time(at("2026-01-01T00:00:00Z"))),
            lease_transitions: Some(3),
            ..spec(Some("me"), "2026-01-01T00:00:58Z", 15)
        };
        let renewed = claimed_spec(&previous, &LeaseHolder::Ours, "me", 15, now);
        assert_eq!(renewed.lease_transitions, Some(3));
        assert_eq!(renewed.acquire_time, previous.acquire_time);
        assert_eq!(renewed.renew_time, Some(micro_time(now)));
        assert_eq!(renewed.holder_identity.as_deref(), Some("me"));

        let taken = claimed_spec(
            &LeaseSpec {
                holder_identity: Some("other".into()),
                ..previous.clone()
            },
            &LeaseHolder::Expired {
                holder: "other".into(),
            },
            "me",
            15,
            now,
        );
        assert_eq!(taken.lease_transitions, Some(4));
        assert_eq!(taken.acquire_time, Some(micro_time(now)));
        assert_eq!(taken.lease_duration_seconds, Some(15));

        let released = released_spec(&renewed, now);
        assert_eq!(released.holder_identity, None);
        assert_eq!(released.lease_duration_seconds, Some(1));
        assert_eq!(released.lease_transitions, Some(3));
        assert_eq!(
            lease_holder(&released, "other", now, Duration::ZERO),
            LeaseHolder::Free
        );
    }

    #[test]
    fn config_validation_follows_client_go() {
        let valid = LeaderElectionConfig::new("keda", "windlass-operator", "pod-0");
        assert!(valid.validate().is_ok());
        let short_lease = LeaderElectionConfig {
            lease_duration: Duration::from_millis(10_900),
            ..valid.clone()
        };
        // 10.9 s is recorded as 10 s, not longer than the 10 s deadline.
        assert!(matches!(
            short_lease.validate(),
            Err(LeaderElectionError::LeaseNotLongerThanDeadline { .. })
        ));
        let busy = LeaderElectionConfig {
            retry_period: Duration::from_secs(9),
            ..valid.clone()
        };
        assert!(matches!(
            busy.validate(),
            Err(LeaderElectionError::DeadlineTooShortForRetries { .. })
        ));
        let nameless = LeaderElectionConfig {
            identity: " ".into(),
            ..valid
        };
        assert!(matches!(
            nameless.validate(),
            Err(LeaderElectionError::Empty { what: "identity" })
        ));
    }

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        leader: LeaderElectionArgs,
    }

    #[test]
    fn flags_default_to_kedas_timing_and_our_own_lease() {
        let args = Cli::try_parse_from(["windlass"]).unwrap().leader;
        assert!(args.leader_elect);
        assert_eq!(args.leader_election_id, "windlass-operator");
        assert_eq!(args.leader_election_lease_duration, Duration::from_secs(15));
        assert_eq!(args.leader_election_renew_deadline, Duration::from_secs(10));
        assert_eq!(args.leader_election_retry_period, Duration::from_secs(2));
    }

    #[test]
    fn flags_parse_go_booleans_and_durations() {
        let args = Cli::try_parse_from([
            "windlass",
            "--leader-elect=false",
            "--leader-election-namespace=ops",
            "--leader-election-identity=pod-1",
            "--leader-election-lease-duration=1m30s",
            "--leader-election-renew-deadline=45s",
            "--leader-election-retry-period=500ms",
        ])
        .unwrap()
        .leader;
        assert!(!args.leader_elect);
        assert_eq!(args.leader_election_namespace.as_deref(), Some("ops"));
        assert_eq!(args.leader_election_lease_duration, Duration::from_secs(90));
        assert_eq!(args.leader_election_renew_deadline, Duration::from_secs(45));
        assert_eq!(
            args.leader_election_retry_period,
            Duration::from_millis(500)
        );
        assert_eq!(args.config().unwrap(), None);

        let bare = Cli::try_parse_from(["windlass", "--leader-elect"])
            .unwrap()
            .leader;
        assert!(bare.leader_elect);
        let go_false = Cli::try_parse_from(["windlass", "--leader-elect=F"])
            .unwrap()
            .leader;
        assert!(!go_false.leader_elect);

        assert!(Cli::try_parse_from(["windlass", "--leader-election-retry-period=2"]).is_err());
        assert!(Cli::try_parse_from(["windlass", "--leader-election-retry-period=-2s"]).is_err());
        assert_eq!(renew_deadline(""), Ok(DEFAULT_RENEW_DEADLINE));
    }

    #[test]
    fn config_resolves_identity_and_namespace() {
        let args = Cli::try_parse_from([
            "windlass",
            "--leader-election-namespace=ops",
            "--leader-election-identity=pod-1",
        ])
        .unwrap()
        .leader;
        let config = args.config().unwrap().unwrap();
        assert_eq!(config.namespace, "ops");
        assert_eq!(config.identity, "pod-1");
        assert_eq!(config.lease_name, "windlass-operator");

        let unnamed = LeaderElectionArgs {
            leader_election_identity: Some(String::new()),
            leader_election_namespace: Some(String::new()),
            ..args
        };
        let config = unnamed.config().unwrap().unwrap();
        let (host, suffix) = config.identity.rsplit_once('_').unwrap();
        assert!(!host.is_empty());
        assert_eq!(suffix.len(), 16);
        assert!(!config.namespace.is_empty());
    }

    #[test]
    fn jitter_stays_within_client_gos_factor() {
        let period = Duration::from_secs(2);
        for _ in 0..100 {
            let wait = jittered(period);
            assert!(
                wait >= period && wait < period.mul_f64(JITTER_FACTOR),
                "{wait:?}"
            );
        }
    }

    #[tokio::test]
    async fn disabled_election_always_leads() {
        let health = Health::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (leader, task) =
            LeaderElector::disabled()
                .with_health(health.clone())
                .start(async move {
                    let _ = stopped.await;
                });
        assert!(*leader.borrow());
        assert!(health.is_leader());
        stop.send(()).unwrap();
        task.await.unwrap();
        assert!(
            *leader.borrow(),
            "without election the replica always leads"
        );
    }
}
