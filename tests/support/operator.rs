//! Running the real controller against the in-memory Kubernetes API, with a backend the test
//! controls.
//!
//! - [`Knob`]: a scaler whose value (or error) the test sets, served over KEDA's external
//!   scaler protocol by `scalers::plugin` on a free port, so ScaledObjects reach it through an
//!   ordinary `type: external` trigger; it can also push activity (`external-push`).
//! - [`Operator`]: `windlass::controller::run` in this process on a [`FakeApiServer`], with a
//!   leader flag the test flips.
//! - Builders for the objects the scenarios create.

// Test support: a failed setup step is a failed test.
#![allow(clippy::expect_used)]

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use fake_apiserver::{FakeApiServer, View};
use futures::Stream;
use scaler_core::{
    ActivityStream, ExternalMetric, MetricName, MetricSpec, MetricTargetType, PushScaler, Sample,
    SampleRequest, Scaler, ScalerError,
};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, oneshot, watch};
use windlass::controller::{self, ControllerHandles, ControllerParts, Settings};

/// A backend value the test turns: `Ok(value)` or an error.
#[derive(Debug)]
pub struct Knob {
    value: Mutex<Result<f64, ScalerError>>,
    samples: AtomicUsize,
    pushes: broadcast::Sender<bool>,
}

impl Knob {
    pub fn new(value: f64) -> Arc<Self> {
        Arc::new(Self {
            value: Mutex::new(Ok(value)),
            samples: AtomicUsize::new(0),
            pushes: broadcast::channel(16).0,
        })
    }

    pub fn set(&self, value: f64) {
        *self.value.lock().unwrap_or_else(|e| e.into_inner()) = Ok(value);
    }

    /// The backend fails from now on (a connection error, as a downed server gives).
    pub fn fail(&self) {
        *self.value.lock().unwrap_or_else(|e| e.into_inner()) =
            Err(ScalerError::connect("backend down"));
    }

    /// How many samples were taken.
    pub fn samples(&self) -> usize {
        self.samples.load(Ordering::SeqCst)
    }

    /// How many `external-push` activity streams are subscribed.
    pub fn subscribers(&self) -> usize {
        self.pushes.receiver_count()
    }

    /// Pushes an activity change to `external-push` subscribers.
    pub fn push(&self, active: bool) {
        let _ = self.pushes.send(active);
    }
}

/// The scaler the plugin serves for a [`Knob`]: metric `queue`, target 5, active above 0.
#[derive(Debug, Clone)]
struct KnobScaler(Arc<Knob>);

#[async_trait]
impl Scaler for KnobScaler {
    fn metric_specs(&self) -> Vec<MetricSpec> {
        vec![MetricSpec::External(ExternalMetric {
            name: MetricName::indexed(0, "queue"),
            target: 5.0,
            target_type: MetricTargetType::AverageValue,
        })]
    }

    async fn sample(&self, _request: SampleRequest<'_>) -> Result<Sample, ScalerError> {
        self.0.samples.fetch_add(1, Ordering::SeqCst);
        let value = self
            .0
            .value
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        Ok(Sample::with_threshold(value, 0.0))
    }

    fn as_push(&self) -> Option<&dyn PushScaler> {
        Some(self)
    }
}

impl PushScaler for KnobScaler {
    fn activity_stream(&self) -> ActivityStream {
        let receiver = self.0.pushes.subscribe();
        let stream: Pin<Box<dyn Stream<Item = Result<bool, ScalerError>> + Send>> = Box::pin(
            futures::stream::unfold(receiver, |mut receiver| async move {
                loop {
                    match receiver.recv().await {
                        Ok(active) => return Some((Ok(active), receiver)),
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }),
        );
        stream
    }
}

/// A [`Knob`] served over the external scaler protocol on a free loopback port.
pub struct KnobServer {
    pub knob: Arc<Knob>,
    pub address: String,
    stop: Option<oneshot::Sender<()>>,
}

impl KnobServer {
    pub async fn start(initial: f64) -> Self {
        let knob = Knob::new(initial);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port");
        let address = format!(
            "127.0.0.1:{}",
            listener.local_addr().expect("bound address").port()
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let scaler: Arc<dyn Scaler> = Arc::new(KnobScaler(knob.clone()));
        tokio::spawn(async move {
            let source = move |_: &scalers::plugin::proto::ScaledObjectRef| Ok(scaler.clone());
            let _ = scalers::plugin::serve_with_shutdown(listener, source, async {
                let _ = stopped.await;
            })
            .await;
        });
        Self {
            knob,
            address,
            stop: Some(stop),
        }
    }
}

impl Drop for KnobServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The controller running in this process against a fake API server.
pub struct Operator {
    pub handles: ControllerHandles,
    leader: watch::Sender<bool>,
    stop: watch::Sender<bool>,
}

impl Operator {
    /// Starts a controller; `leader` says whether it holds the lease at first.
    pub async fn start(api: &FakeApiServer, leader: bool) -> Self {
        scalers::context::install_crypto_provider();
        // `RUST_LOG=windlass=debug cargo test …` shows the controller's logs.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let (leader_tx, leader_rx) = watch::channel(leader);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut stop_signal = stop_rx.clone();
        let handles = controller::run(
            ControllerParts {
                client: api.client(),
                settings: Settings {
                    namespaces: Vec::new(),
                    label_selector: None,
                    cluster_object_namespace: "keda".to_owned(),
                    max_concurrent_reconciles: 5,
                    instance: Some(format!(
                        "test-{}",
                        if leader { "leader" } else { "standby" }
                    )),
                },
                scaler_context: scalers::ScalerContext::default(),
                leader: leader_rx,
                metrics: None,
                synced: None,
            },
            async move {
                let _ = stop_signal.wait_for(|stop| *stop).await;
            },
        )
        .await;
        Self {
            handles,
            leader: leader_tx,
            stop: stop_tx,
        }
    }

    /// Gives or takes the lease.
    pub fn set_leader(&self, leader: bool) {
        let _ = self.leader.send(leader);
    }

    /// Status writes this controller made.
    pub fn status_writes(&self) -> u64 {
        self.handles.status.writes()
    }

    /// Stops the controller and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.handles.join()).await;
    }
}

/// An `apps/v1` Deployment with `replicas` and one container.
pub fn deployment(namespace: &str, name: &str, replicas: i32) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "worker", "image": "worker:1"}]}
            }
        }
    })
}

/// A ScaledObject targeting Deployment `name` with one `external` trigger on `address`;
/// `spec` is merged over the defaults (pollingInterval 1, cooldownPeriod 1).
pub fn scaled_object(namespace: &str, name: &str, address: &str, spec: Value) -> Value {
    let mut object = json!({
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"name": name},
            "pollingInterval": 1,
            "cooldownPeriod": 1,
            "triggers": [{"type": "external", "metadata": {"scalerAddress": address}}]
        }
    });
    merge(&mut object["spec"], spec);
    object
}

/// JSON merge (objects merged recursively, everything else replaced).
pub fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(into), Value::Object(from)) => {
            for (key, value) in from {
                merge(into.entry(key).or_insert(Value::Null), value);
            }
        }
        (into, from) => *into = from,
    }
}

/// Reading objects from the fake API server, or from a [`View`] inside its wait predicates.
pub trait Objects {
    fn object(&self, api_version: &str, plural: &str, namespace: &str, name: &str)
    -> Option<Value>;
}

impl Objects for FakeApiServer {
    fn object(
        &self,
        api_version: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        self.get(api_version, plural, namespace, name)
    }
}

impl Objects for View<'_> {
    fn object(
        &self,
        api_version: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        self.get(api_version, plural, namespace, name)
    }
}

/// The replica count of Deployment `name`.
pub fn replicas(api: &impl Objects, namespace: &str, name: &str) -> Option<i64> {
    api.object("apps/v1", "deployments", namespace, name)
        .and_then(|d| d.pointer("/spec/replicas").and_then(Value::as_i64))
}

/// The status and reason of condition `type_` of ScaledObject `name`.
pub fn condition(
    api: &impl Objects,
    namespace: &str,
    name: &str,
    type_: &str,
) -> Option<(String, String)> {
    let so = api.object("keda.sh/v1alpha1", "scaledobjects", namespace, name)?;
    let conditions = so.pointer("/status/conditions")?.as_array()?.clone();
    conditions.iter().find(|c| c["type"] == type_).map(|c| {
        (
            c["status"].as_str().unwrap_or_default().to_owned(),
            c["reason"].as_str().unwrap_or_default().to_owned(),
        )
    })
}
