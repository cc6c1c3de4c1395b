//! Liveness and readiness, as the kubelet probes them on `/healthz` and `/readyz`.
//!
//! Components update one shared [`Health`]; the probe handlers only read it, so a probe never
//! waits on the component it reports on.
//!
//! - **Liveness** fails only when the controller's event loop has stopped beating for longer
//!   than the bound: a stuck loop is what a restart fixes. A failing backend or API server is
//!   not a reason to restart.
//! - **Readiness** needs the controller's caches synced and the external metrics API serving.
//!   It does not depend on leadership: standby replicas serve the metrics API too, and the HPA
//!   reaches them through the same Service.
//!
//! Bodies follow the Kubernetes API server's verbose format (`[+]name ok`,
//! `[-]name failed: reason`, then `readyz check passed|failed`), with status 200 or 500 as
//! controller-runtime answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// How long the controller's event loop may go without a heartbeat before liveness fails.
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(60);

/// The time source of the heartbeat check; tests pass a hand-moved clock.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// How far the controller has come in watching its resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControllerSync {
    /// No watch has answered yet.
    Starting,
    /// The watches are open; the initial lists are not all in the caches yet.
    WatchEstablished,
    /// Every cache holds the initial list.
    Synced,
}

impl ControllerSync {
    fn from_u8(value: u8) -> Self {
        match value {
            2 => Self::Synced,
            1 => Self::WatchEstablished,
            _ => Self::Starting,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            Self::Starting => 0,
            Self::WatchEstablished => 1,
            Self::Synced => 2,
        }
    }
}

/// The shared health state. Cheap to clone; every clone sees the same state.
#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

struct Inner {
    controller: AtomicU8,
    metrics_api_serving: AtomicBool,
    leader: AtomicBool,
    /// Nanoseconds from `origin` to the last heartbeat.
    heartbeat: AtomicU64,
    origin: Instant,
    heartbeat_timeout: Duration,
    clock: Clock,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("controller", &self.controller())
            .field("metrics_api_serving", &self.metrics_api_serving())
            .field("leader", &self.is_leader())
            .field("heartbeat_age", &self.heartbeat_age())
            .finish()
    }
}

impl Default for Health {
    fn default() -> Self {
        Self::new(DEFAULT_HEARTBEAT_TIMEOUT)
    }
}

/// One named probe check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    /// `None` when the check passes; otherwise why it fails.
    pub failure: Option<String>,
}

impl Check {
    fn pass(name: &'static str) -> Self {
        Self {
            name,
            failure: None,
        }
    }

    fn fail(name: &'static str, why: impl Into<String>) -> Self {
        Self {
            name,
            failure: Some(why.into()),
        }
    }
}

impl Health {
    /// A fresh state: nothing synced or serving, not leader, and the heartbeat counted from
    /// now, so a controller that never starts its loop fails liveness after `heartbeat_timeout`.
    pub fn new(heartbeat_timeout: Duration) -> Self {
        Self::with_clock(heartbeat_timeout, Arc::new(Instant::now))
    }

    /// [`Health::new`] with another time source.
    pub fn with_clock(heartbeat_timeout: Duration, clock: Clock) -> Self {
        let origin = clock();
        Self {
            inner: Arc::new(Inner {
                controller: AtomicU8::new(ControllerSync::Starting.as_u8()),
                metrics_api_serving: AtomicBool::new(false),
                leader: AtomicBool::new(false),
                heartbeat: AtomicU64::new(0),
                origin,
                heartbeat_timeout,
                clock,
            }),
        }
    }

    /// The controller's watches are open (their first answer arrived).
    pub fn set_watch_established(&self) {
        // Never moves a synced controller back.
        let _ = self.inner.controller.compare_exchange(
            ControllerSync::Starting.as_u8(),
            ControllerSync::WatchEstablished.as_u8(),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// Whether every cache holds its initial list; `false` sends the replica back to
    /// "watch established" (e.g. after the caches were rebuilt).
    pub fn set_caches_synced(&self, synced: bool) {
        let state = if synced {
            ControllerSync::Synced
        } else {
            ControllerSync::WatchEstablished
        };
        self.inner
            .controller
            .store(state.as_u8(), Ordering::Release);
    }

    pub fn controller(&self) -> ControllerSync {
        ControllerSync::from_u8(self.inner.controller.load(Ordering::Acquire))
    }

    /// Whether the external metrics API listener is accepting requests.
    pub fn set_metrics_api_serving(&self, serving: bool) {
        self.inner
            .metrics_api_serving
            .store(serving, Ordering::Release);
    }

    pub fn metrics_api_serving(&self) -> bool {
        self.inner.metrics_api_serving.load(Ordering::Acquire)
    }

    /// Whether this replica holds the lease (set by the leader elector). Informational only:
    /// neither probe depends on it.
    pub fn set_leader(&self, leader: bool) {
        self.inner.leader.store(leader, Ordering::Release);
    }

    pub fn is_leader(&self) -> bool {
        self.inner.leader.load(Ordering::Acquire)
    }

    /// The controller's event loop is alive. Call it on every turn of the loop and from a
    /// ticker inside the loop, so an idle but healthy loop still beats well within the bound.
    pub fn heartbeat(&self) {
        let elapsed = (self.inner.clock)().saturating_duration_since(self.inner.origin);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.inner.heartbeat.fetch_max(nanos, Ordering::AcqRel);
    }

    /// Time since the last heartbeat (or since this state was created).
    pub fn heartbeat_age(&self) -> Duration {
        let last =
            self.inner.origin + Duration::from_nanos(self.inner.heartbeat.load(Ordering::Acquire));
        (self.inner.clock)().saturating_duration_since(last)
    }

    /// The liveness checks: the controller's heartbeat.
    pub fn liveness(&self) -> Vec<Check> {
        let age = self.heartbeat_age();
        let limit = self.inner.heartbeat_timeout;
        let heartbeat = if age > limit {
            Check::fail(
                "controller-heartbeat",
                format!(
                    "the controller's event loop last reported {:.1}s ago (limit {:.1}s)",
                    age.as_secs_f64(),
                    limit.as_secs_f64()
                ),
            )
        } else {
            Check::pass("controller-heartbeat")
        };
        vec![Check::pass("ping"), heartbeat]
    }

    /// The readiness checks: caches synced and metrics API serving.
    pub fn readiness(&self) -> Vec<Check> {
        let sync = match self.controller() {
            ControllerSync::Synced => Check::pass("informer-sync"),
            ControllerSync::WatchEstablished => {
                Check::fail("informer-sync", "watches open, caches not synced yet")
            }
            ControllerSync::Starting => Check::fail("informer-sync", "watches not established yet"),
        };
        let metrics_api = if self.metrics_api_serving() {
            Check::pass("metrics-api")
        } else {
            Check::fail("metrics-api", "the external metrics API is not serving")
        };
        vec![Check::pass("ping"), sync, metrics_api]
    }
}

/// `200` with the listing when every check passes, else `500`.
fn respond(kind: &str, checks: &[Check]) -> Response {
    let mut body = String::new();
    for check in checks {
        match &check.failure {
            None => body.push_str(&format!("[+]{} ok\n", check.name)),
            Some(why) => body.push_str(&format!("[-]{} failed: {why}\n", check.name)),
        }
    }
    let healthy = checks.iter().all(|check| check.failure.is_none());
    let status = if healthy {
        body.push_str(&format!("{kind} check passed\n"));
        StatusCode::OK
    } else {
        body.push_str(&format!("{kind} check failed\n"));
        StatusCode::INTERNAL_SERVER_ERROR
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn healthz(State(health): State<Health>) -> Response {
    respond("healthz", &health.liveness())
}

async fn readyz(State(health): State<Health>) -> Response {
    respond("readyz", &health.readiness())
}

/// The probe endpoints: `/healthz` (liveness) and `/readyz` (readiness).
pub fn router(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(health)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    /// A clock that only moves when the test moves it.
    fn manual_clock() -> (Clock, Arc<Mutex<Instant>>) {
        let now = Arc::new(Mutex::new(Instant::now()));
        let reader = Arc::clone(&now);
        let clock: Clock = Arc::new(move || *reader.lock().unwrap());
        (clock, now)
    }

    async fn get(health: &Health, path: &str) -> (StatusCode, String) {
        let response = router(health.clone())
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn ready_only_when_caches_are_synced_and_the_metrics_api_serves() {
        let health = Health::default();
        let (status, body) = get(&health, "/readyz").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            "[+]ping ok\n\
             [-]informer-sync failed: watches not established yet\n\
             [-]metrics-api failed: the external metrics API is not serving\n\
             readyz check failed\n"
        );

        health.set_watch_established();
        health.set_metrics_api_serving(true);
        let (status, body) = get(&health, "/readyz").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            "[+]ping ok\n\
             [-]informer-sync failed: watches open, caches not synced yet\n\
             [+]metrics-api ok\n\
             readyz check failed\n"
        );

        health.set_caches_synced(true);
        let (status, body) = get(&health, "/readyz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            "[+]ping ok\n[+]informer-sync ok\n[+]metrics-api ok\nreadyz check passed\n"
        );

        health.set_metrics_api_serving(false);
        let (status, body) = get(&health, "/readyz").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body.contains("[-]metrics-api failed"), "{body}");
    }

    #[tokio::test]
    async fn readiness_does_not_depend_on_leadership() {
        let health = Health::default();
        health.set_caches_synced(true);
        health.set_metrics_api_serving(true);
        health.set_leader(false);
        assert_eq!(get(&health, "/readyz").await.0, StatusCode::OK);
        health.set_leader(true);
        assert_eq!(get(&health, "/readyz").await.0, StatusCode::OK);
        assert!(health.is_leader());
    }

    #[test]
    fn watch_established_never_undoes_synced() {
        let health = Health::default();
        health.set_caches_synced(true);
        health.set_watch_established();
        assert_eq!(health.controller(), ControllerSync::Synced);
        health.set_caches_synced(false);
        assert_eq!(health.controller(), ControllerSync::WatchEstablished);
    }

    #[tokio::test]
    async fn liveness_fails_when_the_heartbeat_is_stale() {
        let (clock, now) = manual_clock();
        let health = Health::with_clock(Duration::from_secs(30), clock);
        let advance = |by: Duration| {
            let mut now = now.lock().unwrap();
            *now += by;
        };

        let (status, body) = get(&health, "/healthz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            "[+]ping ok\n[+]controller-heartbeat ok\nhealthz check passed\n"
        );

        advance(Duration::from_secs(25));
        health.heartbeat();
        advance(Duration::from_secs(30));
        assert_eq!(get(&health, "/healthz").await.0, StatusCode::OK);

        advance(Duration::from_millis(1));
        let (status, body) = get(&health, "/healthz").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            "[+]ping ok\n\
             [-]controller-heartbeat failed: the controller's event loop last reported 30.0s ago (limit 30.0s)\n\
             healthz check failed\n"
        );

        health.heartbeat();
        assert_eq!(get(&health, "/healthz").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_loop_that_never_beats_fails_liveness_after_the_bound() {
        let (clock, now) = manual_clock();
        let health = Health::with_clock(Duration::from_secs(10), clock);
        *now.lock().unwrap() += Duration::from_secs(11);
        assert_eq!(
            get(&health, "/healthz").await.0,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[tokio::test]
    async fn liveness_ignores_readiness() {
        let health = Health::default();
        assert_eq!(get(&health, "/healthz").await.0, StatusCode::OK);
        assert_eq!(
            get(&health, "/readyz").await.0,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
