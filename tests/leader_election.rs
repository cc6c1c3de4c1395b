//! Leader election against the in-memory Kubernetes API: acquisition, standby, step-down when
//! renewals fail, takeover after a crash, release on shutdown, and `409 Conflict` handling.
//!
//! Timings are short (1 s leases, 100 ms retries); every wait is a condition with a deadline.
//! The few fixed waits assert that something does *not* happen within a bound.

use std::time::{Duration, Instant};

use fake_apiserver::{FakeApiServer, RequestMatcher};
use prometheus_client::registry::Registry;
use serde_json::Value;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use windlass::leader::{LeaderElectionConfig, LeaderElector};
use windlass::telemetry::{BuildInfo, Health, OperatorMetrics};

const NAMESPACE: &str = "default";
const LEASE: &str = "windlass-operator";
const LEASE_DURATION: Duration = Duration::from_secs(1);
const RENEW_DEADLINE: Duration = Duration::from_millis(700);
const RETRY_PERIOD: Duration = Duration::from_millis(100);
/// Room for scheduling and HTTP round trips on a busy two-core machine.
const SLACK: Duration = Duration::from_millis(500);
const PATIENCE: Duration = Duration::from_secs(10);

fn config(identity: &str) -> LeaderElectionConfig {
    LeaderElectionConfig {
        lease_duration: LEASE_DURATION,
        renew_deadline: RENEW_DEADLINE,
        retry_period: RETRY_PERIOD,
        ..LeaderElectionConfig::new(NAMESPACE, LEASE, identity)
    }
}

struct Replica {
    leader: watch::Receiver<bool>,
    health: Health,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

fn start(server: &FakeApiServer, config: LeaderElectionConfig) -> Replica {
    start_with(server, config, None)
}

fn start_with(
    server: &FakeApiServer,
    config: LeaderElectionConfig,
    metrics: Option<OperatorMetrics>,
) -> Replica {
    assert!(config.validate().is_ok(), "test timings are valid");
    let health = Health::default();
    let (stop, stopped) = oneshot::channel::<()>();
    let mut elector = LeaderElector::new(server.client(), config).with_health(health.clone());
    if let Some(metrics) = metrics {
        elector = elector.with_metrics(metrics);
    }
    let (leader, task) = elector.start(async move {
        let _ = stopped.await;
    });
    Replica {
        leader,
        health,
        stop,
        task,
    }
}

impl Replica {
    /// Waits until leadership is `want`; returns how long that took.
    async fn wait_leading(&mut self, want: bool, within: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        tokio::time::timeout(within, self.leader.wait_for(|leading| *leading == want))
            .await
            .map_err(|_| anyhow::anyhow!("leadership did not become {want} within {within:?}"))?
            .map_err(|_| anyhow::anyhow!("the elector ended"))?;
        Ok(started.elapsed())
    }

    /// Asserts leadership stays `false` for `period`.
    async fn assert_stays_standby(&mut self, period: Duration) {
        let became_leader =
            tokio::time::timeout(period, self.leader.wait_for(|leading| *leading)).await;
        assert!(
            became_leader.is_err(),
            "a standby became leader while the lease was held"
        );
    }

    async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        tokio::time::timeout(PATIENCE, self.task).await??;
        Ok(())
    }
}

fn lease(server: &FakeApiServer) -> Value {
    server
        .get("coordination.k8s.io/v1", "Lease", NAMESPACE, LEASE)
        .unwrap_or(Value::Null)
}

fn holder(lease: &Value) -> Option<&str> {
    lease["spec"]["holderIdentity"].as_str()
}

fn transitions(lease: &Value) -> i64 {
    lease["spec"]["leaseTransitions"].as_i64().unwrap_or(0)
}

fn renew_time(lease: &Value) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    let text = lease["spec"]["renewTime"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no renewTime in {lease}"))?;
    Ok(text.parse()?)
}

/// Two replicas race for an absent lease: exactly one wins, records itself, and the other
/// keeps waiting while the winner renews.
#[tokio::test]
async fn one_replica_acquires_and_the_other_waits() -> anyhow::Result<()> {
    let server = FakeApiServer::start().await?;
    let mut registry = Registry::default();
    let metrics = OperatorMetrics::register(&mut registry, &BuildInfo::current());
    let mut a = start_with(&server, config("a"), Some(metrics));
    let mut b = start(&server, config("b"));

    let winner = tokio::select! {
        won = a.wait_leading(true, PATIENCE) => { won?; "a" }
        won = b.wait_leading(true, PATIENCE) => { won?; "b" }
    };
    let (leader, standby) = if winner == "a" {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    let first = lease(&server);
    assert_eq!(holder(&first), Some(winner), "{first}");
    assert_eq!(transitions(&first), 0, "a fresh lease has no transitions");
    assert_eq!(first["spec"]["leaseDurationSeconds"], 1);

    standby.assert_stays_standby(LEASE_DURATION + SLACK).await;
    assert!(*leader.leader.borrow());
    assert!(leader.health.is_leader());
    assert!(!standby.health.is_leader());
    let later = lease(&server);
    assert_eq!(holder(&later), Some(winner));
    assert!(
        renew_time(&later)? > renew_time(&first)?,
        "the leader keeps renewing: {first} then {later}"
    );
    if winner == "a" {
        assert!(
            windlass::telemetry::metrics::render(&registry)?
                .contains("leader_election_master_status{name=\"windlass-operator\"} 1\n")
        );
    }

    a.shutdown().await?;
    b.shutdown().await?;
    Ok(())
}

/// A leader whose renewals fail stops leading within the renew deadline, before its lease
/// could expire for anyone else.
#[tokio::test]
async fn a_leader_that_cannot_renew_steps_down_before_its_lease_expires() -> anyhow::Result<()> {
    let server = FakeApiServer::start().await?;
    let mut a = start(&server, config("a"));
    a.wait_leading(true, PATIENCE).await?;

    server.fail_requests(RequestMatcher::verb("get", "leases"), 500, usize::MAX);
    server.fail_requests(RequestMatcher::verb("update", "leases"), 500, usize::MAX);
    let faults_from = Instant::now();
    a.wait_leading(false, RENEW_DEADLINE + RETRY_PERIOD + SLACK)
        .await?;
    let stepped_down_at = chrono::Utc::now();
    let stepped_down_after = faults_from.elapsed();
    assert!(!a.health.is_leader());

    let last = lease(&server);
    let expires = renew_time(&last)? + chrono::Duration::seconds(1);
    assert!(
        stepped_down_at < expires,
        "stepped down at {stepped_down_at}, but the lease renewed last at {} had expired at {expires}",
        renew_time(&last)?
    );
    assert!(
        stepped_down_after <= RENEW_DEADLINE + SLACK,
        "stepped down {stepped_down_after:?} after renewals began to fail"
    );
    assert_eq!(
        holder(&last),
        Some("a"),
        "nobody else could write the lease"
    );

    a.shutdown().await?;
    Ok(())
}

/// The leader dies without releasing: the standby takes over once the lease has lapsed, not
/// before, and within a lease duration plus a retry period.
#[tokio::test]
async fn the_standby_takes_over_when_the_leader_dies() -> anyhow::Result<()> {
    let server = FakeApiServer::start().await?;
    let mut a = start(&server, config("a"));
    a.wait_leading(true, PATIENCE).await?;
    let mut b = start(&server, config("b"));
    b.assert_stays_standby(RETRY_PERIOD * 3).await;

    a.task.abort();
    let died = Instant::now();
    b.wait_leading(true, LEASE_DURATION + RETRY_PERIOD + SLACK)
        .await?;
    let took = died.elapsed();
    assert!(
        took >= LEASE_DURATION - RETRY_PERIOD * 2,
        "took over after {took:?}, before the dead leader's lease could have lapsed"
    );
    let taken = lease(&server);
    assert_eq!(holder(&taken), Some("b"), "{taken}");
    assert_eq!(transitions(&taken), 1, "a takeover counts a transition");
    assert!(b.health.is_leader());

    b.shutdown().await?;
    Ok(())
}

/// On shutdown the leader releases the lease, and the standby takes over at its next retry
/// instead of waiting out the (here 5 s) lease.
#[tokio::test]
async fn release_on_shutdown_lets_the_standby_take_over_at_once() -> anyhow::Result<()> {
    let server = FakeApiServer::start().await?;
    let slow = |identity: &str| LeaderElectionConfig {
        lease_duration: Duration::from_secs(5),
        renew_deadline: Duration::from_secs(3),
        ..config(identity)
    };
    let mut a = start(&server, slow("a"));
    a.wait_leading(true, PATIENCE).await?;
    let mut b = start(&server, slow("b"));
    b.assert_stays_standby(RETRY_PERIOD * 3).await;

    let mut a_leader = a.leader.clone();
    let a_health = a.health.clone();
    a.shutdown().await?;
    assert!(
        !*a_leader.borrow_and_update(),
        "a stopped leading before it released"
    );
    assert!(!a_health.is_leader());
    let released = lease(&server);
    // b may already have taken it; either way a no longer holds it.
    assert_ne!(holder(&released), Some("a"), "{released}");

    let took = b.wait_leading(true, Duration::from_secs(2)).await?;
    assert!(took < Duration::from_secs(2));
    let taken = lease(&server);
    assert_eq!(holder(&taken), Some("b"));
    assert_eq!(transitions(&taken), 1);

    b.shutdown().await?;
    assert_eq!(holder(&lease(&server)), None, "b released it too");
    Ok(())
}

/// A `409` on create (someone created the lease first) and on update (someone wrote it since
/// the read) are retried; a leader does not step down for one.
#[tokio::test]
async fn conflicts_are_retried() -> anyhow::Result<()> {
    let server = FakeApiServer::start().await?;
    server.fail_requests(RequestMatcher::verb("create", "leases"), 409, 1);
    let mut a = start(&server, config("a"));
    a.wait_leading(true, PATIENCE).await?;
    let codes = |verb: &str| -> Vec<u16> {
        server
            .requests()
            .iter()
            .filter(|r| r.verb == verb && r.plural == "leases")
            .map(|r| r.code)
            .collect()
    };
    let creates = codes("create");
    assert_eq!(creates.first(), Some(&409), "{creates:?}");
    assert!(
        creates.len() >= 2,
        "retried after the conflict: {creates:?}"
    );
    a.leader.borrow_and_update();

    let renewals_before = codes("update").len();
    server.fail_requests(RequestMatcher::verb("update", "leases"), 409, 1);
    server
        .wait_until(
            |view| {
                let updates: Vec<u16> = view
                    .requests()
                    .iter()
                    .filter(|r| r.verb == "update" && r.plural == "leases")
                    .map(|r| r.code)
                    .skip(renewals_before)
                    .collect();
                updates
                    .iter()
                    .position(|&code| code == 409)
                    .is_some_and(|at| updates[at + 1..].contains(&200))
            },
            PATIENCE,
        )
        .await?;
    assert!(
        !a.leader.has_changed()?,
        "the leader never stepped down over one conflict"
    );
    assert!(*a.leader.borrow());
    assert_eq!(holder(&lease(&server)), Some("a"));

    a.shutdown().await?;
    Ok(())
}
