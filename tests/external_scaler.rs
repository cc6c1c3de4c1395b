//! The `external` and `external-push` scalers against external scalers served in this process
//! on free loopback ports: a scripted server that answers exactly what a test sets (integer
//! and float fields, errors, empty specs), and plugins served by `scalers::plugin` from an
//! implementation of the engine's `Scaler` trait. Covers values and activity, a pushed `true`,
//! TLS with a generated CA and client certificates, `unsafeSsl`, a plugin that restarts, channels
//! shared by address, and `windlass plan` end to end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::{Stream, StreamExt};
use scaler_core::registry::{ObjectRef, TriggerConfig};
use scaler_core::{
    ActivityStream, ErrorCategory, ExternalMetric, MetricName, MetricSpec, MetricTargetType,
    PushScaler, Sample, SampleRequest, Scaler, ScalerError, TriggerParams,
};
use scalers::ScalerContext;
use scalers::external_client::proto;
use scalers::plugin::Plugin;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, oneshot};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Code, Request, Response, Status};
use windlass_tests::scalers::{Pairs, unshared_context};
use windlass_tests::servers::{TestPki, wait_for};
use windlass_tests::{Manifests, object};

use proto::external_scaler_server::{ExternalScaler, ExternalScalerServer};

// ---------------------------------------------------------------------------------------------
// Servers

/// A gRPC server running in this process; stopped gracefully by [`Running::stop`].
struct Running {
    port: u16,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("the server stops")
            .expect("the server task ends cleanly");
    }
}

/// Serves `service` on `port` (0: a free one), with TLS when `tls` is given.
async fn start<S: ExternalScaler>(
    service: ExternalScalerServer<S>,
    port: u16,
    tls: Option<ServerTlsConfig>,
) -> Running {
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = oneshot::channel::<()>();
    let mut builder = Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls).unwrap();
    }
    let router = builder.add_service(service);
    let task = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Running {
        port,
        stop: Some(stop),
        task,
    }
}

/// What the scripted server answers.
#[derive(Clone, Debug, Default)]
struct Script {
    specs: Vec<proto::MetricSpec>,
    values: Vec<proto::MetricValue>,
    active: bool,
    /// Every call fails with this code.
    fail_with: Option<Code>,
    /// Whether `StreamMetricSpec` is implemented (it then forwards `Scripted::spec_pushes`).
    stream_specs: bool,
}

/// An external scaler that answers its [`Script`] and records the requests.
#[derive(Clone)]
struct Scripted {
    script: Arc<Mutex<Script>>,
    metric_requests: Arc<Mutex<Vec<proto::GetMetricsRequest>>>,
    active_requests: Arc<Mutex<Vec<proto::ScaledObjectRef>>>,
    spec_pushes: broadcast::Sender<Vec<proto::MetricSpec>>,
}

impl Scripted {
    fn new(script: Script) -> Self {
        Self {
            script: Arc::new(Mutex::new(script)),
            metric_requests: Arc::default(),
            active_requests: Arc::default(),
            spec_pushes: broadcast::channel(16).0,
        }
    }

    fn answer(&self) -> Result<Script, Status> {
        let script = self.script.lock().unwrap().clone();
        match script.fail_with {
            Some(code) => Err(Status::new(code, "scripted failure")),
            None => Ok(script),
        }
    }
}

type Responses<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl ExternalScaler for Scripted {
    async fn is_active(
        &self,
        request: Request<proto::ScaledObjectRef>,
    ) -> Result<Response<proto::IsActiveResponse>, Status> {
        self.active_requests
            .lock()
            .unwrap()
            .push(request.into_inner());
        let script = self.answer()?;
        Ok(Response::new(proto::IsActiveResponse {
            result: script.active,
        }))
    }

    type StreamIsActiveStream = Responses<proto::IsActiveResponse>;

    async fn stream_is_active(
        &self,
        _request: Request<proto::ScaledObjectRef>,
    ) -> Result<Response<Self::StreamIsActiveStream>, Status> {
        Err(Status::unimplemented("scripted"))
    }

    async fn get_metric_spec(
        &self,
        _request: Request<proto::ScaledObjectRef>,
    ) -> Result<Response<proto::GetMetricSpecResponse>, Status> {
        let script = self.answer()?;
        Ok(Response::new(proto::GetMetricSpecResponse {
            metric_specs: script.specs,
        }))
    }

    async fn get_metrics(
        &self,
        request: Request<proto::GetMetricsRequest>,
    ) -> Result<Response<proto::GetMetricsResponse>, Status> {
        self.metric_requests
            .lock()
            .unwrap()
            .push(request.into_inner());
        let script = self.answer()?;
        Ok(Response::new(proto::GetMetricsResponse {
            metric_values: script.values,
        }))
    }

    type StreamMetricSpecStream = Responses<proto::GetMetricSpecResponse>;

    async fn stream_metric_spec(
        &self,
        _request: Request<proto::ScaledObjectRef>,
    ) -> Result<Response<Self::StreamMetricSpecStream>, Status> {
        if !self.answer()?.stream_specs {
            return Err(Status::unimplemented("scripted"));
        }
        let receiver = self.spec_pushes.subscribe();
        Ok(Response::new(Box::pin(futures::stream::unfold(
            receiver,
            |mut receiver| async {
                let metric_specs = receiver.recv().await.ok()?;
                Some((Ok(proto::GetMetricSpecResponse { metric_specs }), receiver))
            },
        ))))
    }
}

/// A scaler for plugins: one metric `queue-depth` (target 5) whose value a test sets, pushing
/// activity whenever a test calls [`Counter::push`] and ending every activity stream on
/// [`Counter::hang_up`].
#[derive(Clone, Debug)]
struct Counter {
    value: Arc<Mutex<f64>>,
    /// `None` ends the streams.
    pushes: broadcast::Sender<Option<bool>>,
}

impl Counter {
    fn new(value: f64) -> Self {
        Self {
            value: Arc::new(Mutex::new(value)),
            pushes: broadcast::channel(16).0,
        }
    }

    fn set(&self, value: f64) {
        *self.value.lock().unwrap() = value;
    }

    fn push(&self, active: bool) {
        self.pushes.send(Some(active)).unwrap();
    }

    fn hang_up(&self) {
        self.pushes.send(None).unwrap();
    }

    /// Waits until `count` activity streams are subscribed.
    async fn subscribers(&self, count: usize) {
        let pushes = self.pushes.clone();
        wait_for(
            "StreamIsActive subscribers",
            Duration::from_secs(10),
            || {
                let subscribed = pushes.receiver_count();
                async move { (subscribed == count).then_some(()) }
            },
        )
        .await;
    }

    fn serve(&self) -> ExternalScalerServer<impl ExternalScaler> {
        let counter = self.clone();
        Plugin::new(move |_: &proto::ScaledObjectRef| {
            Ok(Arc::new(counter.clone()) as Arc<dyn Scaler>)
        })
        .into_service()
    }
}

#[async_trait]
impl Scaler for Counter {
    fn metric_specs(&self) -> Vec<MetricSpec> {
        vec![MetricSpec::External(ExternalMetric {
            name: MetricName::indexed(0, "queue-depth"),
            target: 5.0,
            target_type: MetricTargetType::AverageValue,
        })]
    }

    async fn sample(&self, _request: SampleRequest<'_>) -> Result<Sample, ScalerError> {
        let value = *self.value.lock().unwrap();
        if value < 0.0 {
            return Err(ScalerError::connect("the queue is down"));
        }
        Ok(Sample::with_threshold(value, 0.0))
    }

    fn as_push(&self) -> Option<&dyn PushScaler> {
        Some(self)
    }
}

impl PushScaler for Counter {
    fn activity_stream(&self) -> ActivityStream {
        let receiver = self.pushes.subscribe();
        Box::pin(futures::stream::unfold(receiver, |mut receiver| async {
            let active = receiver.recv().await.ok().flatten()?;
            Some((Ok(active), receiver))
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn pairs(pairs: Pairs<'_>) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Trigger `index` of ScaledObject `default/orders`, built through the registry.
fn build_at(
    context: &ScalerContext,
    trigger_type: &str,
    index: usize,
    metadata: Pairs<'_>,
    auth: Pairs<'_>,
) -> Arc<dyn Scaler> {
    let config = TriggerConfig {
        index,
        trigger_type: trigger_type.to_owned(),
        params: TriggerParams {
            metadata: pairs(metadata),
            auth_params: pairs(auth),
            resolved_env: BTreeMap::new(),
        },
        scaled_object: ObjectRef {
            namespace: "default".into(),
            name: "orders".into(),
        },
        ..TriggerConfig::default()
    };
    scalers::builtin_registry()
        .build(&config, context)
        .unwrap_or_else(|e| panic!("building {trigger_type}: {e}"))
}

fn build(
    context: &ScalerContext,
    trigger_type: &str,
    metadata: Pairs<'_>,
    auth: Pairs<'_>,
) -> Arc<dyn Scaler> {
    build_at(context, trigger_type, 0, metadata, auth)
}

async fn sample(scaler: &Arc<dyn Scaler>, metric: &str) -> Result<Sample, ScalerError> {
    let metric = MetricName::from_raw(metric);
    scaler
        .sample(SampleRequest {
            metric: &metric,
            now: chrono::Utc::now(),
        })
        .await
}

/// The live specs as `(name, target)` pairs.
async fn live_specs(scaler: &Arc<dyn Scaler>) -> Result<Vec<(String, f64)>, ScalerError> {
    Ok(scaler
        .live_metric_specs()
        .await?
        .iter()
        .filter_map(|spec| spec.external())
        .map(|metric| (metric.name.to_string(), metric.target))
        .collect())
}

fn spec(name: &str, target_size: i64, target_size_float: f64) -> proto::MetricSpec {
    proto::MetricSpec {
        metric_name: name.into(),
        target_size,
        target_size_float,
    }
}

fn value(name: &str, metric_value: i64, metric_value_float: f64) -> proto::MetricValue {
    proto::MetricValue {
        metric_name: name.into(),
        metric_value,
        metric_value_float,
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn a_plugin_serves_values_and_activity_through_type_external() {
    let counter = Counter::new(3.5);
    let server = start(counter.serve(), 0, None).await;
    let context = unshared_context();
    let address = server.address();
    let scaler = build(&context, "external", &[("scalerAddress", &address)], &[]);

    assert!(scaler.metric_specs().is_empty(), "no I/O offline");
    assert_eq!(
        live_specs(&scaler).await.unwrap(),
        [("s0-queue-depth".to_owned(), 5.0)]
    );
    let got = sample(&scaler, "s0-queue-depth").await.unwrap();
    assert_eq!(
        got,
        Sample {
            value: 3.5,
            active: true
        }
    );
    counter.set(0.0);
    let got = sample(&scaler, "s0-queue-depth").await.unwrap();
    assert_eq!(
        got,
        Sample {
            value: 0.0,
            active: false
        }
    );
    // The plugin's Connect error reaches the engine as one.
    counter.set(-1.0);
    let error = sample(&scaler, "s0-queue-depth").await.unwrap_err();
    assert_eq!(error.category, ErrorCategory::Connect, "{error}");
    assert!(error.message.contains("the queue is down"), "{error}");
    // An index other than 0: the engine strips its own prefix before asking.
    counter.set(2.0);
    let second = build_at(&context, "external", 3, &[("scalerAddress", &address)], &[]);
    assert_eq!(
        live_specs(&second).await.unwrap(),
        [("s3-queue-depth".to_owned(), 5.0)]
    );
    assert_eq!(sample(&second, "s3-queue-depth").await.unwrap().value, 2.0);
    server.stop().await;
}

#[tokio::test]
async fn float_fields_win_when_positive_and_integers_are_the_fallback() {
    let scripted = Scripted::new(Script {
        specs: vec![
            spec("a", 50, 0.0),
            spec("b", 7, 1.5),
            spec("queue.depth/x", 3, 0.0),
        ],
        values: vec![value("a", 7, 0.0), value("a", 9, 2.5)],
        active: true,
        fail_with: None,
        stream_specs: false,
    });
    let server = start(ExternalScalerServer::new(scripted.clone()), 0, None).await;
    let context = unshared_context();
    let address = server.address();
    let scaler = build(
        &context,
        "external",
        &[("scalerAddress", &address), ("listName", "jobs")],
        &[("tlsClientKey", "not forwarded")],
    );

    assert_eq!(
        live_specs(&scaler).await.unwrap(),
        [
            ("s0-a".to_owned(), 50.0),
            ("s0-b".to_owned(), 1.5),
            // not normalised, as KEDA
            ("s0-queue.depth/x".to_owned(), 3.0),
        ]
    );
    // The items are summed, as the HPA does: 7 (integer) + 2.5 (float).
    let got = sample(&scaler, "s0-a").await.unwrap();
    assert_eq!(
        got,
        Sample {
            value: 9.5,
            active: true
        }
    );

    let request = scripted.metric_requests.lock().unwrap()[0].clone();
    assert_eq!(request.metric_name, "a", "the s0- prefix is removed");
    let object = request.scaled_object_ref.unwrap();
    assert_eq!(
        (object.name.as_str(), object.namespace.as_str()),
        ("orders", "default")
    );
    let forwarded: BTreeMap<_, _> = object.scaler_metadata.into_iter().collect();
    assert_eq!(
        forwarded,
        pairs(&[("scalerAddress", &address), ("listName", "jobs")]),
        "metadata verbatim, auth parameters not forwarded"
    );
    assert_eq!(scripted.active_requests.lock().unwrap().len(), 1);

    scripted.script.lock().unwrap().active = false;
    assert!(!sample(&scaler, "s0-a").await.unwrap().active);
    server.stop().await;
}

#[tokio::test]
async fn errors_and_empty_specs_map_to_keda_categories() {
    let scripted = Scripted::new(Script::default());
    let server = start(ExternalScalerServer::new(scripted.clone()), 0, None).await;
    let context = unshared_context();
    let scaler = build(
        &context,
        "external",
        &[("scalerAddress", &server.address())],
        &[],
    );

    let error = live_specs(&scaler).await.unwrap_err();
    assert_eq!(error.category, ErrorCategory::Query, "{error}");
    assert!(error.message.contains("got empty metric spec"), "{error}");

    for (code, category) in [
        (Code::Internal, ErrorCategory::Query),
        (Code::NotFound, ErrorCategory::Query),
        (Code::Unavailable, ErrorCategory::Connect),
        (Code::DeadlineExceeded, ErrorCategory::Timeout),
    ] {
        scripted.script.lock().unwrap().fail_with = Some(code);
        let error = sample(&scaler, "s0-a").await.unwrap_err();
        assert_eq!(error.category, category, "{code:?}: {error}");
        assert!(error.message.contains("GetMetrics"), "{error}");
        let error = live_specs(&scaler).await.unwrap_err();
        assert_eq!(error.category, category, "{code:?}: {error}");
    }
    server.stop().await;

    // Nothing listening at all.
    let error = sample(&scaler, "s0-a").await.unwrap_err();
    assert_eq!(error.category, ErrorCategory::Connect, "{error}");
}

#[tokio::test]
async fn a_pushed_true_reaches_the_engine_immediately() {
    let counter = Counter::new(0.0);
    let server = start(counter.serve(), 0, None).await;
    let port = server.port;
    let address = server.address();
    let context = unshared_context();
    let scaler = build(
        &context,
        "external-push",
        &[("scalerAddress", &address)],
        &[],
    );
    let plain = build(&context, "external", &[("scalerAddress", &address)], &[]);
    assert!(plain.as_push().is_none(), "only external-push pushes");

    // Sampling works on external-push as on external.
    assert!(!sample(&scaler, "s0-queue-depth").await.unwrap().active);

    let mut activity = scaler
        .as_push()
        .expect("external-push is a push source")
        .activity_stream();
    // The stream subscribes when first polled: poll it in a task.
    let (forward, mut received) = tokio::sync::mpsc::unbounded_channel();
    let follower = tokio::spawn(async move {
        while let Some(item) = activity.next().await {
            if forward.send(item).is_err() {
                break;
            }
        }
    });
    counter.subscribers(1).await;

    let sent = Instant::now();
    counter.push(true);
    let item = tokio::time::timeout(Duration::from_secs(1), received.recv())
        .await
        .expect("the push arrives well within the polling interval")
        .expect("the stream is open");
    assert_eq!(item, Ok(true));
    assert!(
        sent.elapsed() < Duration::from_millis(500),
        "{:?}",
        sent.elapsed()
    );
    counter.push(false);
    let item = tokio::time::timeout(Duration::from_secs(1), received.recv()).await;
    assert_eq!(item.unwrap(), Some(Ok(false)));

    // The plugin ends its streams and restarts on the same port: after the clean end of stream
    // the engine resubscribes after KEDA's 2 s, and pushes flow again.
    let ended = Instant::now();
    counter.hang_up();
    counter.subscribers(0).await;
    server.stop().await;
    let server = start(counter.serve(), port, None).await;
    counter.subscribers(1).await;
    let waited = ended.elapsed();
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(6),
        "resubscribed after {waited:?}"
    );
    counter.push(true);
    let item = tokio::time::timeout(Duration::from_secs(1), received.recv()).await;
    assert_eq!(
        item.unwrap(),
        Some(Ok(true)),
        "nothing but the push was yielded"
    );

    follower.abort();
    let _ = follower.await;
    counter.hang_up();
    server.stop().await;
}

#[tokio::test]
async fn a_scripted_scaler_without_push_reports_a_stream_error() {
    let server = start(
        ExternalScalerServer::new(Scripted::new(Script::default())),
        0,
        None,
    )
    .await;
    let context = unshared_context();
    let scaler = build(
        &context,
        "external-push",
        &[("scalerAddress", &server.address())],
        &[],
    );
    let mut activity = scaler.as_push().unwrap().activity_stream();
    let item = tokio::time::timeout(Duration::from_secs(5), activity.next())
        .await
        .unwrap()
        .unwrap();
    let error = item.unwrap_err();
    assert_eq!(error.category, ErrorCategory::Query, "{error}");
    assert!(error.message.contains("StreamIsActive"), "{error}");
    drop(activity);
    server.stop().await;
}

#[tokio::test]
async fn tls_with_a_generated_ca_client_certificates_and_unsafe_ssl() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(dir.path());
    let identity = Identity::from_pem(&pki.server.cert, &pki.server.key);
    let context = unshared_context();
    let client_cert = pki.client.cert.as_str();
    let client_key = pki.client.key.as_str();

    // Server TLS only.
    let counter = Counter::new(4.0);
    let tls = ServerTlsConfig::new().identity(identity.clone());
    let server = start(counter.serve(), 0, Some(tls)).await;
    let address = server.address();
    let with_ca = build(
        &context,
        "external",
        &[("scalerAddress", &address)],
        &[("caCert", &pki.ca_cert)],
    );
    assert_eq!(sample(&with_ca, "s0-queue-depth").await.unwrap().value, 4.0);
    let unverified = build(
        &context,
        "external",
        &[
            ("scalerAddress", &address),
            ("enableTLS", "true"),
            ("unsafeSsl", "true"),
        ],
        &[],
    );
    assert_eq!(
        sample(&unverified, "s0-queue-depth").await.unwrap().value,
        4.0
    );
    let untrusted = build(
        &context,
        "external",
        &[("scalerAddress", &address), ("enableTLS", "true")],
        &[],
    );
    let error = sample(&untrusted, "s0-queue-depth").await.unwrap_err();
    assert_eq!(error.category, ErrorCategory::Connect, "{error}");
    let plaintext = build(&context, "external", &[("scalerAddress", &address)], &[]);
    assert!(sample(&plaintext, "s0-queue-depth").await.is_err());
    server.stop().await;

    // Mutual TLS.
    let tls = ServerTlsConfig::new()
        .identity(identity)
        .client_ca_root(Certificate::from_pem(&pki.ca_cert));
    let server = start(counter.serve(), 0, Some(tls)).await;
    let address = server.address();
    let mutual = build(
        &context,
        "external",
        &[("scalerAddress", &address)],
        &[
            ("caCert", &pki.ca_cert),
            ("tlsClientCert", client_cert),
            ("tlsClientKey", client_key),
        ],
    );
    assert_eq!(sample(&mutual, "s0-queue-depth").await.unwrap().value, 4.0);
    let push = build(
        &context,
        "external-push",
        &[("scalerAddress", &address)],
        &[
            ("caCert", &pki.ca_cert),
            ("tlsClientCert", client_cert),
            ("tlsClientKey", client_key),
        ],
    );
    assert_eq!(live_specs(&push).await.unwrap().len(), 1);
    let anonymous = build(
        &context,
        "external",
        &[("scalerAddress", &address)],
        &[("caCert", &pki.ca_cert)],
    );
    assert!(
        sample(&anonymous, "s0-queue-depth").await.is_err(),
        "no client certificate"
    );
    // Bad PEM is the trigger's mistake.
    let bad = build(
        &context,
        "external",
        &[("scalerAddress", &address)],
        &[("caCert", "not a certificate")],
    );
    let error = sample(&bad, "s0-queue-depth").await.unwrap_err();
    assert_eq!(error.category, ErrorCategory::Metadata, "{error}");
    server.stop().await;
}

#[tokio::test]
async fn a_plugin_that_restarts_costs_one_failed_sample() {
    let counter = Counter::new(6.0);
    let server = start(counter.serve(), 0, None).await;
    let port = server.port;
    let context = unshared_context();
    let scaler = build(
        &context,
        "external",
        &[("scalerAddress", &server.address())],
        &[],
    );
    assert_eq!(sample(&scaler, "s0-queue-depth").await.unwrap().value, 6.0);

    server.stop().await;
    let error = sample(&scaler, "s0-queue-depth").await.unwrap_err();
    assert_eq!(error.category, ErrorCategory::Connect, "{error}");

    counter.set(8.0);
    let server = start(counter.serve(), port, None).await;
    let recovered = wait_for(
        "the sample after the restart",
        Duration::from_secs(10),
        || {
            let scaler = scaler.clone();
            async move { sample(&scaler, "s0-queue-depth").await.ok() }
        },
    )
    .await;
    assert_eq!(recovered.value, 8.0);
    assert_eq!(context.grpc().len(), 1, "the same channel reconnected");
    server.stop().await;
}

#[tokio::test]
async fn channels_are_shared_by_address_and_tls_settings() {
    let counter = Counter::new(1.0);
    let server = start(counter.serve(), 0, None).await;
    let other = start(counter.serve(), 0, None).await;
    let context = unshared_context();
    let address = server.address();
    let scalers: Vec<_> = (0..5)
        .map(|i| {
            let list = format!("list-{i}");
            build_at(
                &context,
                "external",
                i,
                &[("scalerAddress", &address), ("listName", &list)],
                &[],
            )
        })
        .collect();
    for (i, scaler) in scalers.iter().enumerate() {
        assert_eq!(
            sample(scaler, &format!("s{i}-queue-depth"))
                .await
                .unwrap()
                .value,
            1.0
        );
    }
    assert_eq!(context.grpc().len(), 1);
    let elsewhere = build(
        &context,
        "external",
        &[("scalerAddress", &other.address())],
        &[],
    );
    sample(&elsewhere, "s0-queue-depth").await.unwrap();
    assert_eq!(context.grpc().len(), 2);
    server.stop().await;
    other.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windlass_plan_reports_what_keda_would() {
    let scripted = Scripted::new(Script {
        specs: vec![spec("queue-depth", 10, 0.0)],
        values: vec![value("queue-depth", 0, 42.0)],
        active: true,
        fail_with: None,
        stream_specs: false,
    });
    let server = start(ExternalScalerServer::new(scripted.clone()), 0, None).await;
    let manifests = Manifests::with(&format!(
        "apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: orders, namespace: shop}}
spec:
  scaleTargetRef: {{name: orders}}
  minReplicaCount: 0
  maxReplicaCount: 20
  triggers:
    - type: external
      metadata:
        scalerAddress: {address}
        queue: orders
    - type: external-push
      metadata:
        scalerAddress: 127.0.0.1:1
",
        address = server.address()
    ));
    // The windlass binary blocks a thread while it queries the in-process server.
    let run =
        tokio::task::spawn_blocking(move || manifests.plan_json(&["--current-replicas", "3"]))
            .await
            .unwrap();
    run.assert_code(0);
    let plans = run.json();
    let plan = object(&plans, "orders");
    let trigger = &plan["triggers"][0];
    assert_eq!(trigger["type"], "external", "{plan:#}");
    assert_eq!(trigger["metricName"], "s0-queue-depth", "{plan:#}");
    assert_eq!(trigger["value"], 42.0, "{plan:#}");
    assert_eq!(trigger["target"], 10.0, "{plan:#}");
    assert_eq!(trigger["active"], true, "{plan:#}");
    // AverageValue: ceil(42 / 10).
    assert_eq!(trigger["proposedReplicas"], 5, "{plan:#}");
    assert!(trigger["error"].is_null(), "{plan:#}");
    let unreachable = &plan["triggers"][1];
    assert_eq!(unreachable["type"], "external-push", "{plan:#}");
    assert!(
        unreachable["error"]
            .as_str()
            .unwrap()
            .contains("GetMetricSpec"),
        "{plan:#}"
    );
    assert_eq!(plan["active"], true, "{plan:#}");
    assert_eq!(plan["maxProposedReplicas"], 5, "{plan:#}");

    let request = scripted.metric_requests.lock().unwrap()[0].clone();
    let object = request.scaled_object_ref.unwrap();
    assert_eq!(
        (object.name.as_str(), object.namespace.as_str()),
        ("orders", "shop")
    );
    assert_eq!(
        object.scaler_metadata.get("queue").map(String::as_str),
        Some("orders")
    );
    server.stop().await;
}

#[tokio::test]
async fn pushed_metric_specs_replace_get_metric_spec() {
    let scripted = Scripted::new(Script {
        specs: vec![spec("polled", 10, 0.0)],
        stream_specs: true,
        ..Script::default()
    });
    let server = start(ExternalScalerServer::new(scripted.clone()), 0, None).await;
    let context = unshared_context();
    let scaler = build(
        &context,
        "external-push",
        &[("scalerAddress", &server.address())],
        &[],
    );
    assert_eq!(
        live_specs(&scaler).await.unwrap(),
        [("s0-polled".to_owned(), 10.0)]
    );

    // The specs are followed while the activity stream is polled; StreamIsActive is
    // unimplemented here, which only yields errors on the activity side.
    let mut activity = scaler.as_push().unwrap().activity_stream();
    let follower = tokio::spawn(async move { while activity.next().await.is_some() {} });
    let pushes = scripted.spec_pushes.clone();
    wait_for(
        "the StreamMetricSpec subscriber",
        Duration::from_secs(10),
        || {
            let count = pushes.receiver_count();
            async move { (count > 0).then_some(()) }
        },
    )
    .await;
    scripted
        .spec_pushes
        .send(vec![spec("pushed", 0, 2.5)])
        .unwrap();
    wait_for("the pushed specs", Duration::from_secs(10), || {
        let scaler = scaler.clone();
        async move {
            let specs = live_specs(&scaler).await.ok()?;
            (specs == [("s0-pushed".to_owned(), 2.5)]).then_some(())
        }
    })
    .await;
    follower.abort();
    let _ = follower.await;
    server.stop().await;
}

/// The example plugin, built as a user would build it and run as its own process.
#[tokio::test]
async fn the_example_plugin_builds_and_serves() {
    let bin = tokio::task::spawn_blocking(|| {
        windlass_tests::example_bin("scalers", "queue_depth_plugin")
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let depth = dir.path().join("queue-depth");
    std::fs::write(&depth, "42\n").unwrap();
    let port = windlass_tests::servers::free_port();
    let mut command = std::process::Command::new(bin);
    command.arg(format!("127.0.0.1:{port}"));
    let _plugin =
        windlass_tests::servers::ServerProcess::spawn("queue-depth-plugin", command, dir.path());

    let context = unshared_context();
    let path = depth.to_str().unwrap();
    let address = format!("127.0.0.1:{port}");
    let scaler = build(
        &context,
        "external",
        &[
            ("scalerAddress", &address),
            ("path", path),
            ("targetSize", "10"),
        ],
        &[],
    );
    let specs = wait_for("the example plugin", Duration::from_secs(30), || {
        let scaler = scaler.clone();
        async move { live_specs(&scaler).await.ok() }
    })
    .await;
    assert_eq!(specs, [("s0-queue-depth".to_owned(), 10.0)]);
    assert_eq!(
        sample(&scaler, "s0-queue-depth").await.unwrap(),
        Sample {
            value: 42.0,
            active: true
        }
    );
    std::fs::write(&depth, "lots").unwrap();
    let error = sample(&scaler, "s0-queue-depth").await.unwrap_err();
    assert_eq!(error.category, ErrorCategory::Query, "{error}");
    std::fs::remove_file(&depth).unwrap();
    let error = sample(&scaler, "s0-queue-depth").await.unwrap_err();
    assert_eq!(error.category, ErrorCategory::Connect, "{error}");
    let missing = build(&context, "external", &[("scalerAddress", &address)], &[]);
    let error = sample(&missing, "s0-queue-depth").await.unwrap_err();
    assert!(error.message.contains("`path` is required"), "{error}");
}
