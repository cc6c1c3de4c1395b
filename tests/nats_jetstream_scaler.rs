//! The `nats-jetstream` scaler against real `nats-server` processes: KEDA's monitoring mode
//! (`/jsz`, clustered leader search) and Windlass's native mode (`natsServerURL`, the
//! JetStream API with each kind of credentials and TLS), built through the registry with its
//! decorators, plus `windlass plan` end to end.
//!
//! Each test starts its own servers on free loopback ports; readiness and changes are awaited.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use scaler_core::registry::ScalerKind;
use scaler_core::registry::TriggerConfig;
use scaler_core::{ErrorCategory, MetricName, Sample, SampleRequest, Scaler, ScalerError};
use scalers::nats_jetstream::NatsJetStreamScaler;
use scalers::{ScalerContext, Settings};
use windlass_tests::servers::nats::{NatsCluster, NatsOptions, NatsServer, NatsServerAuth};
use windlass_tests::servers::wait_for;
use windlass_tests::{Manifests, object};

const STREAM: &str = "ORDERS";
const WAIT: Duration = Duration::from_secs(15);

use windlass_tests::scalers::Pairs;
type OwnedPairs = Vec<(&'static str, String)>;

/// A context without query sharing, so consecutive samples really ask the server.
fn context() -> ScalerContext {
    ScalerContext::new(Settings {
        default_timeout: Duration::from_secs(3),
        shared_query_window: Duration::ZERO,
    })
}

fn trigger(metadata: Pairs<'_>, auth: Pairs<'_>) -> TriggerConfig {
    windlass_tests::scalers::trigger("nats-jetstream", metadata, auth)
}

/// A scaler as the operator builds it: through the registry, with its decorators.
fn build(context: &ScalerContext, metadata: Pairs<'_>, auth: Pairs<'_>) -> Arc<dyn Scaler> {
    windlass_tests::scalers::build(context, "nats-jetstream", metadata, auth)
}

fn monitoring(
    context: &ScalerContext,
    endpoint: &str,
    consumer: &str,
    extra: Pairs<'_>,
) -> Arc<dyn Scaler> {
    let mut metadata = vec![
        ("natsServerMonitoringEndpoint", endpoint),
        ("account", "$G"),
        ("stream", STREAM),
        ("consumer", consumer),
    ];
    metadata.extend_from_slice(extra);
    build(context, &metadata, &[])
}

fn native(
    context: &ScalerContext,
    url: &str,
    consumer: &str,
    extra: Pairs<'_>,
    auth: Pairs<'_>,
) -> Arc<dyn Scaler> {
    let mut metadata = vec![
        ("natsServerURL", url),
        ("stream", STREAM),
        ("consumer", consumer),
    ];
    metadata.extend_from_slice(extra);
    build(context, &metadata, auth)
}

async fn sample(scaler: &dyn Scaler) -> Result<Sample, ScalerError> {
    let metric = MetricName::from_raw(format!("s0-nats-jetstream-{STREAM}"));
    scaler
        .sample(SampleRequest {
            metric: &metric,
            now: chrono::Utc::now(),
        })
        .await
}

async fn lag(scaler: &dyn Scaler) -> f64 {
    sample(scaler)
        .await
        .unwrap_or_else(|e| panic!("sample: {e}"))
        .value
}

/// Waits until `scaler` reports `expected` (acks are processed asynchronously by JetStream).
async fn await_lag(scaler: &dyn Scaler, expected: f64) {
    let mut last = None;
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let got = sample(scaler).await;
            if matches!(&got, Ok(s) if s.value == expected) {
                return;
            }
            last = Some(got);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await;
    assert!(found.is_ok(), "lag never became {expected}; last: {last:?}");
}

/// Stream `ORDERS` (subjects `orders.>`, file storage, `replicas`) and explicit-ack durable pull
/// consumers.
async fn setup(
    client: &async_nats::Client,
    replicas: usize,
    consumers: &[&str],
) -> (
    jetstream::Context,
    Vec<consumer::Consumer<consumer::pull::Config>>,
) {
    let js = jetstream::new(client.clone());
    let stream = js
        .get_or_create_stream(stream::Config {
            name: STREAM.into(),
            subjects: vec!["orders.>".into()],
            num_replicas: replicas,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("create stream: {e}"));
    let mut made = Vec::new();
    for name in consumers {
        made.push(
            stream
                .get_or_create_consumer(
                    name,
                    consumer::pull::Config {
                        durable_name: Some((*name).to_owned()),
                        ack_policy: consumer::AckPolicy::Explicit,
                        ..Default::default()
                    },
                )
                .await
                .unwrap_or_else(|e| panic!("create consumer {name}: {e}")),
        );
    }
    (js, made)
}

async fn publish(js: &jetstream::Context, count: usize) {
    for i in 0..count {
        js.publish("orders.new", format!("order {i}").into())
            .await
            .unwrap()
            .await
            .unwrap_or_else(|e| panic!("publish ack: {e}"));
    }
}

/// Fetches `fetch` messages and acknowledges (confirmed) the first `ack` of them.
async fn fetch_and_ack(
    consumer: &consumer::Consumer<consumer::pull::Config>,
    fetch: usize,
    ack: usize,
) {
    let mut messages = consumer
        .fetch()
        .max_messages(fetch)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .unwrap();
    let mut fetched = Vec::new();
    while fetched.len() < fetch {
        let message = messages
            .next()
            .await
            .expect("enough messages")
            .expect("a message");
        fetched.push(message);
    }
    for message in fetched.iter().take(ack) {
        message.double_ack().await.unwrap();
    }
}

#[tokio::test]
async fn lag_is_pending_plus_ack_pending_in_both_modes() {
    let server = NatsServer::start().await;
    let client = server.connect().await;
    let (js, consumers) = setup(&client, 1, &["idle", "worker"]).await;
    publish(&js, 25).await;
    let context = context();
    let endpoint = server.monitoring_endpoint();
    let url = server.client_url();

    // Never fetched: everything is pending.
    let idle_monitoring = monitoring(&context, &endpoint, "idle", &[]);
    let idle_native = native(&context, &url, "idle", &[], &[]);
    for scaler in [&idle_monitoring, &idle_native] {
        let got = sample(scaler.as_ref()).await.unwrap();
        assert_eq!(got.value, 25.0);
        assert!(got.active);
    }

    // Fetched 5, acknowledged 3: 20 pending + 2 awaiting their ack.
    fetch_and_ack(&consumers[1], 5, 3).await;
    let worker_monitoring = monitoring(&context, &endpoint, "worker", &[]);
    let worker_native = native(&context, &url, "worker", &[], &[]);
    assert_eq!(lag(worker_monitoring.as_ref()).await, 22.0);
    assert_eq!(lag(worker_native.as_ref()).await, 22.0);
    let info = consumers[1].clone().info().await.unwrap().clone();
    assert_eq!((info.num_pending, info.num_ack_pending), (20, 2));

    // One NATS connection and one HTTP client for all of them.
    assert_eq!(context.nats().len(), 1);
    assert_eq!(context.http().len(), 1);
    assert_eq!(
        idle_monitoring.metric_specs()[0].external().unwrap().target,
        10.0
    );
}

#[tokio::test]
async fn activation_is_strictly_above_the_threshold() {
    let server = NatsServer::start().await;
    let client = server.connect().await;
    let (js, _) = setup(&client, 1, &["worker"]).await;
    publish(&js, 5).await;
    let context = context();
    let threshold = [("activationLagThreshold", "5")];
    let scalers = [
        monitoring(
            &context,
            &server.monitoring_endpoint(),
            "worker",
            &threshold,
        ),
        native(&context, &server.client_url(), "worker", &threshold, &[]),
    ];
    for scaler in &scalers {
        let got = sample(scaler.as_ref()).await.unwrap();
        assert_eq!((got.value, got.active), (5.0, false), "equal: inactive");
        assert_eq!(scaler.activation_target(), Some(5.0));
    }
    publish(&js, 1).await;
    for scaler in &scalers {
        let got = sample(scaler.as_ref()).await.unwrap();
        assert_eq!((got.value, got.active), (6.0, true), "one more: active");
    }
}

#[tokio::test]
async fn missing_stream_and_consumer_are_kedas_query_errors() {
    let server = NatsServer::start().await;
    let client = server.connect().await;
    let (js, _) = setup(&client, 1, &["worker"]).await;
    publish(&js, 1).await;
    let context = context();
    let endpoint = server.monitoring_endpoint();
    let url = server.client_url();

    let no_consumer = [
        monitoring(&context, &endpoint, "nobody", &[]),
        native(&context, &url, "nobody", &[], &[]),
    ];
    for scaler in &no_consumer {
        let error = sample(scaler.as_ref()).await.unwrap_err();
        assert_eq!(error.category, ErrorCategory::Query, "{error}");
        assert_eq!(
            error.message,
            r#"consumer "nobody" not found in stream "ORDERS""#
        );
    }

    let no_stream = [
        build(
            &context,
            &[
                ("natsServerMonitoringEndpoint", &endpoint),
                ("account", "$G"),
                ("stream", "NOPE"),
                ("consumer", "worker"),
            ],
            &[],
        ),
        build(
            &context,
            &[
                ("natsServerURL", &url),
                ("stream", "NOPE"),
                ("consumer", "worker"),
            ],
            &[],
        ),
    ];
    for scaler in &no_stream {
        let error = sample(scaler.as_ref()).await.unwrap_err();
        assert_eq!(error.category, ErrorCategory::Query, "{error}");
        assert!(
            error
                .message
                .starts_with(r#"consumer "worker" not found in stream "NOPE""#),
            "{error}"
        );
        assert!(error.message.contains("stream"), "{error}");
    }
}

#[tokio::test]
async fn the_server_going_away_is_an_error_and_its_return_recovers() {
    let mut server = NatsServer::start().await;
    let client = server.connect().await;
    let (js, _) = setup(&client, 1, &["worker"]).await;
    publish(&js, 4).await;
    drop(client);
    let context = context();
    let scalers = [
        monitoring(&context, &server.monitoring_endpoint(), "worker", &[]),
        native(&context, &server.client_url(), "worker", &[], &[]),
    ];
    for scaler in &scalers {
        assert_eq!(lag(scaler.as_ref()).await, 4.0);
    }

    server.kill();
    for scaler in &scalers {
        let error = sample(scaler.as_ref()).await.unwrap_err();
        assert!(
            matches!(
                error.category,
                ErrorCategory::Connect | ErrorCategory::Timeout
            ),
            "{error:?}"
        );
    }

    // Same ports, same JetStream store: the stream and its consumer come back.
    server.restart().await;
    for scaler in &scalers {
        await_lag(scaler.as_ref(), 4.0).await;
    }
    assert_eq!(context.nats().len(), 1, "async-nats reconnected by itself");
}

#[tokio::test]
async fn monitoring_over_https_with_use_https() {
    let server = NatsServer::start_with(NatsOptions {
        tls: true,
        https_monitoring: true,
        ..NatsOptions::default()
    })
    .await;
    let client = server.connect().await;
    let (js, _) = setup(&client, 1, &["worker"]).await;
    publish(&js, 3).await;
    let pki = server.pki().unwrap();
    let context = context();
    let metadata = [
        ("natsServerMonitoringEndpoint", server.monitoring_endpoint()),
        ("account", "$G".to_owned()),
        ("stream", STREAM.to_owned()),
        ("consumer", "worker".to_owned()),
        ("useHttps", "true".to_owned()),
    ];
    let metadata: Vec<(&str, &str)> = metadata.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let trusted = build(&context, &metadata, &[("ca", &pki.ca_cert)]);
    assert_eq!(lag(trusted.as_ref()).await, 3.0);

    // KEDA's client trusts the system roots only: the test CA is unknown.
    let untrusted = build(&context, &metadata, &[]);
    let error = sample(untrusted.as_ref()).await.unwrap_err();
    assert_eq!(error.category, ErrorCategory::Connect, "{error}");
}

#[tokio::test]
async fn native_mode_with_each_kind_of_credentials() {
    let nkey = NatsServerAuth::new_nkey();
    let NatsServerAuth::Nkey { seed, .. } = &nkey else {
        unreachable!()
    };
    let other_seed = nkeys::KeyPair::new_user().seed().unwrap();
    let cases: Vec<(&str, NatsServerAuth, OwnedPairs, OwnedPairs)> = vec![
        (
            "user/password",
            NatsServerAuth::user_password("app", "s3cret"),
            vec![("username", "app".into()), ("password", "s3cret".into())],
            vec![("username", "app".into()), ("password", "wrong".into())],
        ),
        (
            "token",
            NatsServerAuth::Token("t0ken".into()),
            vec![("token", "t0ken".into())],
            vec![("token", "nope".into())],
        ),
        (
            "nkey",
            nkey.clone(),
            vec![("nkeySeed", seed.clone())],
            vec![("nkeySeed", other_seed)],
        ),
    ];
    for (kind, auth, good, bad) in cases {
        let server = NatsServer::start_with(NatsOptions {
            auth,
            ..NatsOptions::default()
        })
        .await;
        let client = server.connect().await;
        let (js, _) = setup(&client, 1, &["worker"]).await;
        publish(&js, 2).await;
        let context = context();
        let good: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let scaler = native(&context, &server.client_url(), "worker", &[], &good);
        assert_eq!(lag(scaler.as_ref()).await, 2.0, "{kind}");

        let bad: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let refused = native(&context, &server.client_url(), "worker", &[], &bad);
        let error = sample(refused.as_ref()).await.unwrap_err();
        assert_eq!(error.category, ErrorCategory::Connect, "{kind}: {error}");
        assert!(error.message.contains("refused"), "{kind}: {error}");

        let anonymous = native(&context, &server.client_url(), "worker", &[], &[]);
        let error = sample(anonymous.as_ref()).await.unwrap_err();
        assert_eq!(error.category, ErrorCategory::Connect, "{kind}: {error}");
    }
}

#[tokio::test]
async fn native_mode_over_tls_with_the_test_ca() {
    // TLS on the client port: the CA is enough.
    let server = NatsServer::start_with(NatsOptions {
        tls: true,
        ..NatsOptions::default()
    })
    .await;
    let client = server.connect().await;
    let (js, _) = setup(&client, 1, &["worker"]).await;
    publish(&js, 7).await;
    let pki = server.pki().unwrap().clone();
    let context = context();
    let trusted = native(
        &context,
        &server.client_url(),
        "worker",
        &[],
        &[("ca", &pki.ca_cert)],
    );
    assert_eq!(lag(trusted.as_ref()).await, 7.0);
    let untrusted = native(&context, &server.client_url(), "worker", &[], &[]);
    let error = sample(untrusted.as_ref()).await.unwrap_err();
    assert_eq!(error.category, ErrorCategory::Connect, "{error}");

    // Mutual TLS: the client certificate is required.
    let mutual = NatsServer::start_with(NatsOptions {
        tls: true,
        tls_client_auth: true,
        ..NatsOptions::default()
    })
    .await;
    let client = mutual.connect().await;
    let (js, _) = setup(&client, 1, &["worker"]).await;
    publish(&js, 1).await;
    let pki = mutual.pki().unwrap().clone();
    let with_cert = native(
        &context,
        &mutual.client_url(),
        "worker",
        &[],
        &[
            ("ca", &pki.ca_cert),
            ("cert", &pki.client.cert),
            ("key", &pki.client.key),
        ],
    );
    assert_eq!(lag(with_cert.as_ref()).await, 1.0);
    let without_cert = native(
        &context,
        &mutual.client_url(),
        "worker",
        &[],
        &[("ca", &pki.ca_cert)],
    );
    let error = sample(without_cert.as_ref()).await.unwrap_err();
    assert_eq!(error.category, ErrorCategory::Connect, "{error}");
}

/// The consumer's leader as JetStream reports it, once there is one.
async fn consumer_leader(js: &jetstream::Context, name: &str) -> String {
    let js = js.clone();
    let name = name.to_owned();
    wait_for("a consumer leader", WAIT, || {
        let js = js.clone();
        let name = name.clone();
        async move {
            let stream = js.get_stream(STREAM).await.ok()?;
            let info = stream.consumer_info(&name).await.ok()?;
            info.cluster?.leader.filter(|leader| !leader.is_empty())
        }
    })
    .await
}

/// Asks the consumer's leader to step down until `wanted` leads it.
async fn move_leader_to(js: &jetstream::Context, client: &async_nats::Client, wanted: &str) {
    let subject = format!("$JS.API.CONSUMER.LEADER.STEPDOWN.{STREAM}.worker");
    for _ in 0..20 {
        let current = consumer_leader(js, "worker").await;
        if current == wanted {
            return;
        }
        client.request(subject.clone(), "".into()).await.unwrap();
        wait_for("the consumer leader to change", WAIT, || {
            let js = js.clone();
            let current = current.clone();
            async move {
                let leader = consumer_leader(&js, "worker").await;
                (leader != current).then_some(())
            }
        })
        .await;
    }
    panic!("{wanted} never became the consumer leader");
}

#[tokio::test]
async fn clustered_lag_comes_from_the_consumer_leader_and_follows_it() {
    let mut cluster = NatsCluster::start().await;
    let client = cluster.connect().await;
    let js = jetstream::new(client.clone());
    // JetStream may still be placing peers right after the meta leader is known.
    wait_for("an R3 stream", WAIT, || {
        let js = js.clone();
        async move {
            js.get_or_create_stream(stream::Config {
                name: STREAM.into(),
                subjects: vec!["orders.>".into()],
                num_replicas: 3,
                ..Default::default()
            })
            .await
            .ok()
        }
    })
    .await;
    let (js, _consumers) = setup(&client, 3, &["worker"]).await;
    publish(&js, 10).await;

    let leader = consumer_leader(&js, "worker").await;
    let leader_index = cluster.index_of(&leader).unwrap();
    // The scaler is pointed at a node that does not lead the consumer.
    let configured = (leader_index + 1) % 3;
    let third = 3 - leader_index - configured;
    let context = context();
    let concrete = Arc::new(
        NatsJetStreamScaler::new(
            &trigger(
                &[
                    (
                        "natsServerMonitoringEndpoint",
                        &cluster.monitoring_endpoint(configured),
                    ),
                    ("account", "$G"),
                    ("stream", STREAM),
                    ("consumer", "worker"),
                ],
                &[],
            ),
            &context,
        )
        .unwrap(),
    );
    let scaler = scalers::decorators::decorate(concrete.clone(), &context);
    let endpoints: Vec<String> = (0..3).map(|i| cluster.monitoring_endpoint(i)).collect();
    let jsz_of = |index: usize| {
        format!(
            "http://{}/jsz?acc=%24G&config=true&consumers=true",
            endpoints[index]
        )
    };

    assert_eq!(lag(scaler.as_ref()).await, 10.0);
    assert_eq!(concrete.cached_leader_url(), Some(jsz_of(leader_index)));
    // The remembered leader answers the next sample.
    assert_eq!(lag(scaler.as_ref()).await, 10.0);
    assert_eq!(concrete.cached_leader_url(), Some(jsz_of(leader_index)));

    // Move the lead to the third node: the next sample finds it there.
    move_leader_to(&js, &client, &cluster.nodes()[third].name).await;
    publish(&js, 5).await;
    await_lag(scaler.as_ref(), 15.0).await;
    assert_eq!(concrete.cached_leader_url(), Some(jsz_of(third)));

    // Native mode needs no leader search: JetStream answers from the leader.
    let native_scaler = native(
        &context,
        &cluster.client_urls().join(","),
        "worker",
        &[],
        &[],
    );
    assert_eq!(lag(native_scaler.as_ref()).await, 15.0);

    // Kill the leader: another node takes over and the remembered URL is replaced.
    cluster.kill(third);
    let new_leader = wait_for("a new consumer leader", WAIT, || {
        let js = js.clone();
        let old = cluster.nodes()[third].name.clone();
        async move {
            let leader = consumer_leader(&js, "worker").await;
            (leader != old).then_some(leader)
        }
    })
    .await;
    let new_index = cluster.index_of(&new_leader).unwrap();
    await_lag(scaler.as_ref(), 15.0).await;
    assert_eq!(concrete.cached_leader_url(), Some(jsz_of(new_index)));
}

#[test]
fn plan_reports_the_lag_and_keda_s_proposed_replicas() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(NatsServer::start());
    runtime.block_on(async {
        let client = server.connect().await;
        let (js, _) = setup(&client, 1, &["worker"]).await;
        publish(&js, 25).await;
    });
    let manifests = Manifests::with(&format!(
        r#"apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: orders
spec:
  scaleTargetRef: {{name: orders}}
  minReplicaCount: 0
  maxReplicaCount: 10
  triggers:
  - type: nats-jetstream
    metadata:
      natsServerMonitoringEndpoint: "{endpoint}"
      account: "$G"
      stream: "{STREAM}"
      consumer: "worker"
      lagThreshold: "10"
      activationLagThreshold: "5"
"#,
        endpoint = server.monitoring_endpoint()
    ));
    let run = manifests.plan_json(&["--current-replicas", "1"]);
    run.assert_code(0);
    let report = run.json();
    let orders = object(&report, "orders");
    let trigger = &orders["triggers"][0];
    assert_eq!(trigger["error"], serde_json::Value::Null, "{orders:#}");
    assert_eq!(trigger["metricName"], "s0-nats-jetstream-ORDERS");
    assert_eq!(trigger["value"], 25.0);
    assert_eq!(trigger["target"], 10.0);
    assert_eq!(trigger["active"], true);
    // AverageValue: ceil(25 / 10).
    assert_eq!(trigger["proposedReplicas"], 3, "{orders:#}");
    assert_eq!(orders["active"], true);
    assert_eq!(orders["hpaReplicas"], 3, "{orders:#}");
}

/// `NatsJetStreamScaler` is also reachable as a registry kind.
#[test]
fn the_type_is_registered() {
    assert_eq!(NatsJetStreamScaler::TYPES, &["nats-jetstream"]);
}
