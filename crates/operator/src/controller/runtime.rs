//! What a replica keeps for each ScaledObject between polls: its built scalers, the latest
//! evaluation (the warm state the metrics API serves), fallback health, and its scale loop.
//!
//! Every replica runs the loops, leader or not, so each one can answer the HPA from warm state
//! and a standby that takes over has nothing to warm up. Only the leader acts on an evaluation
//! (scales, writes status, emits events); see [`super::scale_loop`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use kube::runtime::reflector::ObjectRef;
use scaler_core::fallback::MetricHealth;
use scaler_core::metric::MetricName;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::evaluate::Evaluation;
use super::scalers::ObjectScalers;
use super::target::Target;
use crate::crd::ScaledObject;
use crate::metrics_api::{
    ExternalMetricQuery, ExternalMetricSource, MetricSourceError, MetricValue,
};

/// How long an HPA read waits for a first evaluation before it gives up.
const FIRST_EVALUATION_WAIT: Duration = Duration::from_secs(10);
/// How long an HPA read waits for a fresh evaluation when the warm one is stale.
const REFRESH_WAIT: Duration = Duration::from_secs(5);

/// One ScaledObject's runtime state on this replica.
#[derive(Debug)]
pub struct ObjectRuntime {
    pub key: ObjectRef<ScaledObject>,
    /// The built scalers, `None` until built or after a scaler error (rebuilt on next use).
    pub scalers: tokio::sync::Mutex<Option<Arc<ObjectScalers>>>,
    /// The resolved scale target, once reconcile resolved it.
    pub target: Mutex<Option<Target>>,
    /// Failure counts per metric (`status.health`), carried from poll to poll.
    pub health: Mutex<BTreeMap<MetricName, MetricHealth>>,
    /// The latest evaluation.
    latest: watch::Sender<Option<Arc<Evaluation>>>,
    /// Asks the loop for an evaluation now (push activation, an HPA read with nothing warm).
    kick: Notify,
    /// A push source reported activity since the last poll (KEDA then scales as active
    /// without asking the backend again).
    pushed_active: std::sync::atomic::AtomicBool,
    /// A reader asked for an evaluation that is not published yet: later readers wait for
    /// that one instead of asking again.
    requested: std::sync::atomic::AtomicBool,
    /// The generation the loop was started for.
    pub loop_generation: Mutex<Option<i64>>,
    /// The last time this replica saw the object active: refreshed every active poll, but
    /// written to `status.lastActiveTime` only on transitions (see [`super::scale_loop`]).
    pub last_active: Mutex<Option<chrono::DateTime<chrono::Utc>>>,
    /// The loop's polling interval; an evaluation older than two of them is stale.
    pub interval: Mutex<Duration>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl ObjectRuntime {
    fn new(key: ObjectRef<ScaledObject>) -> Self {
        Self {
            key,
            scalers: tokio::sync::Mutex::new(None),
            target: Mutex::new(None),
            health: Mutex::new(BTreeMap::new()),
            latest: watch::channel(None).0,
            kick: Notify::new(),
            pushed_active: std::sync::atomic::AtomicBool::new(false),
            requested: std::sync::atomic::AtomicBool::new(false),
            loop_generation: Mutex::new(None),
            interval: Mutex::new(Duration::from_secs(30)),
            last_active: Mutex::new(None),
            task: Mutex::new(None),
        }
    }

    /// The latest evaluation, if any.
    pub fn latest(&self) -> Option<Arc<Evaluation>> {
        self.latest.borrow().clone()
    }

    /// Publishes an evaluation to readers.
    pub fn publish(&self, evaluation: Evaluation) {
        self.latest.send_replace(Some(Arc::new(evaluation)));
        self.requested
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Asks for one evaluation on behalf of readers: concurrent readers share it.
    pub fn request_evaluation(&self) {
        if !self
            .requested
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            self.kick();
        }
    }

    /// Asks the loop to evaluate now.
    pub fn kick(&self) {
        self.kick.notify_one();
    }

    /// A push source says the object is active: poll now and treat it as active.
    pub fn push_active(&self) {
        self.pushed_active
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.kick();
    }

    /// Takes the pushed-activity mark.
    pub fn take_pushed_active(&self) -> bool {
        self.pushed_active
            .swap(false, std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits for a kick.
    pub async fn kicked(&self) {
        self.kick.notified().await;
    }

    /// Waits for an evaluation newer than `than` (by time), up to `timeout`.
    pub async fn next_evaluation(
        &self,
        than: Option<chrono::DateTime<chrono::Utc>>,
        timeout: Duration,
    ) -> Option<Arc<Evaluation>> {
        let mut receiver = self.latest.subscribe();
        let newer = |e: &Option<Arc<Evaluation>>| match (e, than) {
            (Some(e), Some(than)) => e.at > than,
            (Some(_), None) => true,
            (None, _) => false,
        };
        tokio::time::timeout(timeout, receiver.wait_for(newer))
            .await
            .ok()
            .and_then(Result::ok)
            .and_then(|e| e.clone())
    }

    /// Replaces the loop task (aborting the previous one).
    pub fn set_task(&self, generation: Option<i64>, task: JoinHandle<()>) {
        if let Some(previous) = lock(&self.task).replace(task) {
            previous.abort();
        }
        *lock(&self.loop_generation) = generation;
    }

    /// Whether no loop was ever started (or the last one was stopped).
    pub fn loop_generation_is_unset(&self) -> bool {
        lock(&self.loop_generation).is_none()
    }

    /// Whether a loop runs for `generation`.
    pub fn runs_generation(&self, generation: Option<i64>) -> bool {
        lock(&self.task).as_ref().is_some_and(|t| !t.is_finished())
            && *lock(&self.loop_generation) == generation
    }

    /// Stops the loop.
    pub fn stop(&self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
        *lock(&self.loop_generation) = None;
    }
}

impl Drop for ObjectRuntime {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Every ScaledObject's runtime on this replica.
#[derive(Clone, Debug, Default)]
pub struct Runtimes {
    map: Arc<Mutex<HashMap<ObjectRef<ScaledObject>, Arc<ObjectRuntime>>>>,
}

impl Runtimes {
    /// The runtime of `key`, created if absent.
    pub fn entry(&self, key: &ObjectRef<ScaledObject>) -> Arc<ObjectRuntime> {
        lock(&self.map)
            .entry(key.clone())
            .or_insert_with(|| Arc::new(ObjectRuntime::new(key.clone())))
            .clone()
    }

    pub fn get(&self, key: &ObjectRef<ScaledObject>) -> Option<Arc<ObjectRuntime>> {
        lock(&self.map).get(key).cloned()
    }

    /// Stops and forgets `key` (deletion, pause).
    pub fn remove(&self, key: &ObjectRef<ScaledObject>) {
        if let Some(runtime) = lock(&self.map).remove(key) {
            runtime.stop();
        }
    }

    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether an evaluation is older than two polling intervals.
fn is_stale(evaluation: &Evaluation, interval: Duration) -> bool {
    let age = chrono::Utc::now() - evaluation.at;
    age.to_std().is_ok_and(|age| age > interval * 2)
}

/// The metrics API's view of the runtimes: the latest evaluation, or one asked for now.
#[derive(Clone, Debug)]
pub struct WarmMetrics {
    runtimes: Runtimes,
}

impl WarmMetrics {
    pub fn new(runtimes: Runtimes) -> Self {
        Self { runtimes }
    }
}

#[async_trait]
impl ExternalMetricSource for WarmMetrics {
    async fn values(
        &self,
        query: &ExternalMetricQuery,
    ) -> Result<Vec<MetricValue>, MetricSourceError> {
        let key = ObjectRef::new(&query.scaled_object).within(&query.namespace);
        let not_found = || MetricSourceError::ScaledObjectNotFound {
            namespace: query.namespace.clone(),
            name: query.scaled_object.clone(),
        };
        let runtime = self.runtimes.get(&key).ok_or_else(not_found)?;
        let evaluation = match runtime.latest() {
            Some(evaluation) if is_stale(&evaluation, *lock(&runtime.interval)) => {
                // The loop fell behind (a hung backend, a lost task): ask for a fresh
                // evaluation, but serve the stale one rather than nothing.
                runtime.request_evaluation();
                runtime
                    .next_evaluation(Some(evaluation.at), REFRESH_WAIT)
                    .await
                    .unwrap_or(evaluation)
            }
            Some(evaluation) => evaluation,
            None => {
                // Nothing warm yet: one evaluation, shared by every reader waiting for it.
                runtime.request_evaluation();
                runtime
                    .next_evaluation(None, FIRST_EVALUATION_WAIT)
                    .await
                    .ok_or_else(|| MetricSourceError::Scaler {
                        metric_name: query.metric_name.clone(),
                        message: "no value sampled yet".to_owned(),
                    })?
            }
        };
        evaluation.values_for(&query.metric_name)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use scaler_core::activity::Activity;

    use super::*;

    fn evaluation_at(at: chrono::DateTime<chrono::Utc>, value: f64) -> Evaluation {
        use scaler_core::metric::ExternalMetric;
        use scaler_core::{MetricTargetType, Sample};
        Evaluation {
            at,
            readings: vec![super::super::evaluate::MetricReading {
                trigger_index: 0,
                trigger_type: "external".to_owned(),
                trigger_name: None,
                metric: ExternalMetric {
                    name: MetricName::indexed(0, "queue"),
                    target: 5.0,
                    target_type: MetricTargetType::AverageValue,
                },
                reading: super::super::evaluate::Reading::Sample(Sample {
                    value,
                    active: value > 0.0,
                }),
                duration: Duration::ZERO,
            }],
            composite: None,
            activity: Activity::default(),
            health: BTreeMap::new(),
            fallback_configured: false,
        }
    }

    fn query() -> ExternalMetricQuery {
        ExternalMetricQuery {
            namespace: "default".to_owned(),
            scaled_object: "worker".to_owned(),
            metric_name: "S0-QUEUE".to_owned(),
        }
    }

    /// A stand-in scale loop: one evaluation per kick, counted.
    fn fake_loop(runtime: Arc<ObjectRuntime>, value: f64) -> Arc<AtomicUsize> {
        let evaluations = Arc::new(AtomicUsize::new(0));
        let counted = evaluations.clone();
        tokio::spawn(async move {
            loop {
                runtime.kicked().await;
                counted.fetch_add(1, Ordering::SeqCst);
                runtime.publish(evaluation_at(chrono::Utc::now(), value));
            }
        });
        evaluations
    }

    #[tokio::test]
    async fn concurrent_reads_of_a_cold_object_share_one_evaluation() {
        let runtimes = Runtimes::default();
        let key = ObjectRef::new("worker").within("default");
        let runtime = runtimes.entry(&key);
        let evaluations = fake_loop(runtime, 7.0);
        let source = WarmMetrics::new(runtimes);
        let reads: Vec<_> = (0..20)
            .map(|_| {
                let source = source.clone();
                tokio::spawn(async move { source.values(&query()).await })
            })
            .collect();
        for read in reads {
            let values = read.await.unwrap().unwrap();
            assert_eq!(values[0].value, 7.0);
            assert_eq!(values[0].metric_name, "s0-queue");
        }
        assert_eq!(
            evaluations.load(Ordering::SeqCst),
            1,
            "one upstream evaluation"
        );
        // Warm now: further reads ask nothing.
        source.values(&query()).await.unwrap();
        assert_eq!(evaluations.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_stale_value_is_refreshed_and_an_unknown_object_is_not_found() {
        let runtimes = Runtimes::default();
        let key = ObjectRef::new("worker").within("default");
        let runtime = runtimes.entry(&key);
        *lock(&runtime.interval) = Duration::from_secs(1);
        runtime.publish(evaluation_at(
            chrono::Utc::now() - chrono::Duration::seconds(30),
            1.0,
        ));
        let evaluations = fake_loop(runtime, 9.0);
        let source = WarmMetrics::new(runtimes);
        let values = source.values(&query()).await.unwrap();
        assert_eq!(values[0].value, 9.0, "the stale 1.0 was replaced");
        assert_eq!(evaluations.load(Ordering::SeqCst), 1);

        let unknown = ExternalMetricQuery {
            scaled_object: "other".to_owned(),
            ..query()
        };
        assert!(matches!(
            source.values(&unknown).await,
            Err(MetricSourceError::ScaledObjectNotFound { .. })
        ));
    }
}
