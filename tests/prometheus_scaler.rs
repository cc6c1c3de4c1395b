//! The `prometheus` scaler against a real Prometheus 2.42: values and KEDA's result rules,
//! the request KEDA sends (namespace, query parameters, headers, credentials), basic auth,
//! mutual TLS and `unsafeSsl`, timeouts, a server that goes away and comes back, shared HTTP
//! clients, and `windlass plan` end to end.
//!
//! Scalers are built through `scalers::builtin_registry()`, so the decorators (the bound on a
//! sample, identical queries asked once) are part of what is tested. Each test starts its own
//! servers on free ports. Most use backfilled data (see `servers::prometheus`): exact values at
//! a known time, queryable as soon as the server is ready; the scraping test waits the ~6 s
//! Prometheus needs for its first scrape.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use scaler_core::{ErrorCategory, MetricName, Sample, SampleRequest, Scaler, ScalerError};
use scalers::{ScalerContext, Settings};
use windlass_tests::servers::prometheus::{
    CannedServer, ClientAuth, MetricsEndpoint, Prometheus, PrometheusConfig, RecordingProxy,
    SilentServer, TEST_PASSWORD, TEST_USER, gauges,
};
use windlass_tests::servers::{TestPki, wait_for};
use windlass_tests::{Manifests, object};

use windlass_tests::scalers::Pairs;

/// A prometheus trigger (index 0) with `metadata` and TriggerAuthentication `auth` parameters.
/// Builds the trigger the way the engine does: registry and decorators.
fn build(context: &ScalerContext, metadata: Pairs<'_>, auth: Pairs<'_>) -> Arc<dyn Scaler> {
    windlass_tests::scalers::build(context, "prometheus", metadata, auth)
}

async fn sample_at(scaler: &Arc<dyn Scaler>, now: DateTime<Utc>) -> Result<Sample, ScalerError> {
    let metric = MetricName::from_raw("s0-prometheus");
    scaler
        .sample(SampleRequest {
            metric: &metric,
            now,
        })
        .await
}

/// A scaler for `query` on `server` with extra metadata, sampled at `now`.
async fn ask(
    context: &ScalerContext,
    server: &str,
    query: &str,
    extra: Pairs<'_>,
    auth: Pairs<'_>,
    now: DateTime<Utc>,
) -> Result<Sample, ScalerError> {
    let mut metadata = vec![
        ("serverAddress", server),
        ("query", query),
        ("threshold", "10"),
    ];
    metadata.extend_from_slice(extra);
    sample_at(&build(context, &metadata, auth), now).await
}

fn sample(value: f64, active: bool) -> Sample {
    Sample { value, active }
}

fn borrowed<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[track_caller]
fn value(result: Result<Sample, ScalerError>) -> f64 {
    match result {
        Ok(sample) => sample.value,
        Err(error) => panic!("expected a value, got {:?} error: {error}", error.category),
    }
}

#[track_caller]
fn error(result: Result<Sample, ScalerError>, category: ErrorCategory) -> String {
    match result {
        Ok(sample) => panic!("expected a {category} error, got {sample:?}"),
        Err(error) => {
            assert_eq!(error.category, category, "{error}");
            error.message
        }
    }
}

/// Backfilled samples' time: ten minutes ago, whole seconds, so queries "just after" it are
/// inside Prometheus's 5 min lookback and the test never depends on the clock again.
fn backfill_time() -> i64 {
    (Utc::now() - chrono::Duration::minutes(10)).timestamp()
}

fn after(time: i64, seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(time + seconds, 0).unwrap()
}

/// `queue_depth` for three queues, and `one_series 42`.
fn queues(time: i64) -> String {
    gauges(
        &[
            (
                "queue_depth",
                &[
                    ("queue=\"orders\"", 42.0),
                    ("queue=\"billing\"", 8.0),
                    ("queue=\"audit\"", 0.5),
                ],
            ),
            ("one_series", &[("", 42.0)]),
        ],
        time,
    )
}

async fn backfilled(config: PrometheusConfig) -> (Prometheus, i64) {
    let time = backfill_time();
    let server = Prometheus::start(PrometheusConfig {
        backfill: Some(queues(time)),
        ..config
    })
    .await;
    (server, time)
}

#[tokio::test]
async fn values_and_result_rules_from_a_real_prometheus() {
    let (prometheus, time) = backfilled(PrometheusConfig::default()).await;
    let url = prometheus.url();
    let now = after(time, 30);
    let context = ScalerContext::default();
    let strict: Pairs<'_> = &[("ignoreNullValues", "false")];
    let q = |query: &'static str, extra: Pairs<'static>| {
        let (context, url) = (context.clone(), url.clone());
        async move { ask(&context, &url, query, extra, &[], now).await }
    };

    // One series, and a sum over several.
    let orders = q("queue_depth{queue=\"orders\"}", &[]).await.unwrap();
    assert_eq!(orders, sample(42.0, true));
    assert_eq!(value(q("sum(queue_depth)", &[]).await), 50.5);
    assert_eq!(value(q("one_series", &[]).await), 42.0);
    assert_eq!(value(q("queue_depth{queue=\"audit\"}", &[]).await), 0.5);

    // Activation: strictly greater than activationThreshold.
    let at_threshold = q("one_series", &[("activationThreshold", "42")]).await;
    assert_eq!(at_threshold.unwrap(), sample(42.0, false));
    let above = q("one_series", &[("activationThreshold", "41.99")]).await;
    assert_eq!(above.unwrap(), sample(42.0, true));
    let small = q("queue_depth{queue=\"audit\"}", &[]).await.unwrap();
    assert!(small.active, "0.5 > the default activationThreshold 0");

    // The query is asked at the sample's time, not the wall clock's. (A context of its own:
    // identical queries share an answer for a moment whatever their time, as in one poll.)
    let fresh = ScalerContext::default();
    let later = ask(&fresh, &url, "one_series", &[], &[], after(time, 3600)).await;
    assert_eq!(later.unwrap(), sample(0.0, false));

    // An empty result: 0 with ignoreNullValues (the default), else an error.
    assert_eq!(value(q("queue_depth{queue=\"nope\"}", &[]).await), 0.0);
    assert_eq!(
        error(
            q("queue_depth{queue=\"nope\"}", strict).await,
            ErrorCategory::Query
        ),
        "prometheus metrics 'prometheus' target may be lost, the result is empty"
    );

    // Several series.
    assert_eq!(
        error(q("queue_depth", &[]).await, ErrorCategory::Query),
        "prometheus query queue_depth returned multiple elements"
    );

    // NaN and ±Inf in a vector: 0 with ignoreNullValues, else an error naming the value.
    for (query, shown) in [
        ("vector(0) / 0", "NaN"),
        ("vector(1) / 0", "+Inf"),
        ("vector(-1) / 0", "-Inf"),
    ] {
        assert_eq!(value(q(query, &[]).await), 0.0, "{query}");
        assert_eq!(
            error(q(query, strict).await, ErrorCategory::Query),
            format!("prometheus query returns {shown}"),
            "{query}"
        );
    }
    // `0/0` and `1/0` are scalar expressions: Prometheus answers with a scalar result, which
    // does not decode into KEDA's vector shape, whatever ignoreNullValues says.
    for query in ["0/0", "1/0", "scalar(one_series)"] {
        let message = error(q(query, &[]).await, ErrorCategory::Query);
        assert!(
            message.starts_with("json: cannot unmarshal number"),
            "{query}: {message}"
        );
    }
    // A range vector: its series carry `values`, so `value` is empty.
    let matrix = "one_series[5m]";
    assert_eq!(value(q(matrix, &[]).await), 0.0);
    assert_eq!(
        error(q(matrix, strict).await, ErrorCategory::Query),
        "prometheus metrics 'prometheus' target may be lost, the value list is empty"
    );

    // Bad PromQL: Prometheus answers 400.
    assert_eq!(
        error(q("sum(", &[]).await, ErrorCategory::Query),
        "prometheus query api returned error. status: 400"
    );

    // Every scaler above had the same TLS settings: one HTTP client for all of them.
    assert_eq!(context.http().len(), 1);
    let many: Vec<Arc<dyn Scaler>> = (0..25)
        .map(|i| {
            let threshold = format!("{}", i + 1);
            build(
                &context,
                &[
                    ("serverAddress", url.as_str()),
                    ("query", "one_series"),
                    ("threshold", threshold.as_str()),
                ],
                &[],
            )
        })
        .collect();
    for scaler in &many {
        assert_eq!(value(sample_at(scaler, now).await), 42.0);
    }
    assert_eq!(context.http().len(), 1);
    assert_eq!(value(q("one_series", &[("unsafeSsl", "true")]).await), 42.0);
    assert_eq!(
        context.http().len(),
        2,
        "unsafeSsl needs a client of its own"
    );
}

#[tokio::test]
async fn the_request_is_the_one_keda_sends() {
    let (prometheus, time) = backfilled(PrometheusConfig::default()).await;
    let proxy = RecordingProxy::start(prometheus.port()).await;
    let url = proxy.url();
    let now = after(time, 30);
    let context = ScalerContext::default();

    let got = ask(
        &context,
        &url,
        "sum(queue_depth{queue=~\"orders|billing\"})",
        &[
            ("namespace", "team-a"),
            ("queryParameters", "dedup=false, partial_response=true"),
            ("customHeaders", "X-Scope-OrgID=tenant-1,X-Other=two words"),
            ("authModes", "bearer"),
        ],
        &[("bearerToken", "s3cr3t")],
        now,
    )
    .await;
    assert_eq!(value(got), 50.0, "Prometheus accepts the extra parameters");
    let requests = proxy.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "GET");
    assert!(
        request.target.starts_with("/api/v1/query?"),
        "{}",
        request.target
    );
    let expected_time = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    assert_eq!(
        request.raw_query(),
        format!(
            "query=sum%28queue_depth%7Bqueue%3D~%22orders%7Cbilling%22%7D%29&time={expected_time}\
             &namespace=team-a&dedup=false&partial_response=true"
        )
    );
    assert_eq!(
        request.query_param("query").as_deref(),
        Some("sum(queue_depth{queue=~\"orders|billing\"})")
    );
    assert_eq!(request.header("x-scope-orgid"), ["tenant-1"]);
    assert_eq!(request.header("x-other"), ["two words"]);
    assert_eq!(request.header("authorization"), ["Bearer s3cr3t"]);

    // custom auth: the named header; basic: the Authorization header.
    proxy.clear();
    let custom = ask(
        &context,
        &url,
        "one_series",
        &[("authModes", "custom")],
        &[
            ("customAuthHeader", "X-Api-Key"),
            ("customAuthValue", "k-123"),
        ],
        now,
    )
    .await;
    assert_eq!(value(custom), 42.0);
    let basic = ask(
        &context,
        &url,
        "one_series",
        &[("authModes", "basic")],
        &[("username", "user"), ("password", "pass")],
        now,
    )
    .await;
    assert_eq!(value(basic), 42.0);
    // Credentials without authModes are not sent.
    let unused = ask(
        &context,
        &url,
        "one_series",
        &[],
        &[("bearerToken", "t")],
        now,
    )
    .await;
    assert_eq!(value(unused), 42.0);
    let requests = proxy.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].header("x-api-key"), ["k-123"]);
    assert!(requests[0].header("authorization").is_empty());
    assert_eq!(requests[1].header("authorization"), ["Basic dXNlcjpwYXNz"]);
    assert!(requests[2].header("authorization").is_empty());

    // Identical queries from two ScaledObjects in one poll are asked once; other credentials
    // are another query.
    proxy.clear();
    let metadata: Pairs<'_> = &[
        ("serverAddress", url.as_str()),
        ("query", "queue_depth{queue=\"billing\"}"),
        ("threshold", "5"),
        ("authModes", "bearer"),
    ];
    let a = build(&context, metadata, &[("bearerToken", "one")]);
    let b = build(&context, metadata, &[("bearerToken", "one")]);
    let c = build(&context, metadata, &[("bearerToken", "two")]);
    let (ra, rb, rc) = tokio::join!(sample_at(&a, now), sample_at(&b, now), sample_at(&c, now));
    assert_eq!((value(ra), value(rb), value(rc)), (8.0, 8.0, 8.0));
    let mut tokens: Vec<String> = proxy
        .requests()
        .iter()
        .flat_map(|r| r.header("authorization").into_iter().map(str::to_owned))
        .collect();
    tokens.sort();
    assert_eq!(tokens, ["Bearer one", "Bearer two"]);
}

#[tokio::test]
async fn basic_auth_and_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(dir.path());
    let (prometheus, time) = backfilled(PrometheusConfig {
        tls: Some((pki.clone(), ClientAuth::Require)),
        basic_auth: true,
        ..PrometheusConfig::default()
    })
    .await;
    let url = prometheus.url();
    assert!(url.starts_with("https://"));
    let now = after(time, 30);
    let context = ScalerContext::default();
    let tls_basic: Pairs<'_> = &[("authModes", "tls,basic")];
    let credentials = |password: &'static str| -> Vec<(&'static str, String)> {
        vec![
            ("ca", pki.ca_cert.clone()),
            ("cert", pki.client.cert.clone()),
            ("key", pki.client.key.clone()),
            ("username", TEST_USER.to_owned()),
            ("password", password.to_owned()),
        ]
    };
    let right = credentials(TEST_PASSWORD);
    let auth = borrowed(&right);

    let got = ask(&context, &url, "one_series", tls_basic, &auth, now).await;
    assert_eq!(value(got), 42.0);

    // The wrong password: Prometheus answers 401; the credentials were refused.
    let wrong = credentials("not-the-password");
    let wrong = borrowed(&wrong);
    assert_eq!(
        error(
            ask(&context, &url, "one_series", tls_basic, &wrong, now).await,
            ErrorCategory::Connect
        ),
        "prometheus query api returned error. status: 401"
    );

    // No client certificate: the server ends the handshake.
    let no_cert: Vec<(&str, &str)> = auth
        .iter()
        .copied()
        .filter(|(k, _)| !matches!(*k, "cert" | "key"))
        .collect();
    let refused = ask(
        &context,
        &url,
        "one_series",
        &[("authModes", "basic")],
        &no_cert,
        now,
    )
    .await;
    error(refused, ErrorCategory::Connect);

    // Without the CA the server certificate is unknown, and with the tls mode KEDA verifies it
    // even under unsafeSsl (its TLS transport is built with verification on).
    let no_ca: Vec<(&str, &str)> = auth.iter().copied().filter(|(k, _)| *k != "ca").collect();
    let unknown = ask(&context, &url, "one_series", tls_basic, &no_ca, now).await;
    let message = error(unknown, ErrorCategory::Connect);
    assert!(
        message.starts_with(&format!("Get \"{url}/api/v1/query?")),
        "{message}"
    );
    let still = ask(
        &context,
        &url,
        "one_series",
        &[("authModes", "tls,basic"), ("unsafeSsl", "true")],
        &no_ca,
        now,
    )
    .await;
    error(still, ErrorCategory::Connect);
}

#[tokio::test]
async fn unsafe_ssl_against_an_untrusted_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(dir.path());
    let (prometheus, time) = backfilled(PrometheusConfig {
        tls: Some((pki.clone(), ClientAuth::None)),
        ..PrometheusConfig::default()
    })
    .await;
    let url = prometheus.url();
    let now = after(time, 30);
    let context = ScalerContext::default();

    let verified = ask(&context, &url, "one_series", &[], &[], now).await;
    error(verified, ErrorCategory::Connect);
    let unsafe_ssl = ask(
        &context,
        &url,
        "one_series",
        &[("unsafeSsl", "true")],
        &[],
        now,
    )
    .await;
    assert_eq!(value(unsafe_ssl), 42.0);
    // KEDA uses `ca` only together with some authModes.
    let ca = [("ca", pki.ca_cert.as_str()), ("bearerToken", "t")];
    error(
        ask(&context, &url, "one_series", &[], &ca, now).await,
        ErrorCategory::Connect,
    );
    let with_mode = ask(
        &context,
        &url,
        "one_series",
        &[("authModes", "bearer")],
        &ca,
        now,
    )
    .await;
    assert_eq!(value(with_mode), 42.0);
    // Plain, insecure, and with the CA: three clients.
    assert_eq!(context.http().len(), 3);
}

#[tokio::test]
async fn no_answer_is_a_timeout_within_the_configured_bound() {
    let silent = SilentServer::start().await;
    let context = ScalerContext::new(Settings {
        default_timeout: Duration::from_millis(800),
        ..Settings::default()
    });
    let now = Utc::now();
    let url = silent.url();
    let timed = async {
        let started = Instant::now();
        let result = ask(&context, &url, "up", &[("timeout", "300")], &[], now).await;
        (started.elapsed(), result)
    };
    let defaulted = async {
        let started = Instant::now();
        let result = ask(&context, &url, "up", &[("timeout", "0")], &[], now).await;
        (started.elapsed(), result)
    };
    let ((short, short_result), (long, long_result)) = tokio::join!(timed, defaulted);
    error(short_result, ErrorCategory::Timeout);
    error(long_result, ErrorCategory::Timeout);
    assert!(
        short >= Duration::from_millis(290) && short < Duration::from_millis(1500),
        "timeout 300 ms took {short:?}"
    );
    assert!(
        long >= Duration::from_millis(790) && long < Duration::from_millis(2500),
        "the default 800 ms took {long:?}"
    );
}

#[tokio::test]
async fn answers_only_a_fake_server_gives() {
    let fake = CannedServer::start(503, "{\"status\":\"error\",\"error\":\"overloaded\"}").await;
    let url = fake.url();
    // The answers change between identical queries: no sharing window.
    let context = ScalerContext::new(Settings {
        shared_query_window: Duration::ZERO,
        ..Settings::default()
    });
    let now = Utc::now();
    let strict: Pairs<'_> = &[("ignoreNullValues", "false")];
    let one = |v: &str| {
        format!(
            "{{\"status\":\"success\",\"data\":{{\"resultType\":\"vector\",\"result\":[{{\"metric\":{{}},\"value\":{v}}}]}}}}"
        )
    };
    assert_eq!(
        error(
            ask(&context, &url, "up", &[], &[], now).await,
            ErrorCategory::Query
        ),
        "prometheus query api returned error. status: 503"
    );
    fake.set(403, "");
    error(
        ask(&context, &url, "up", &[], &[], now).await,
        ErrorCategory::Connect,
    );
    fake.set(200, &one("[1700000000.5,\"12.5\"]"));
    assert_eq!(value(ask(&context, &url, "up", &[], &[], now).await), 12.5);
    fake.set(200, &one("[1700000000.5]"));
    assert_eq!(
        error(
            ask(&context, &url, "up", &[], &[], now).await,
            ErrorCategory::Query
        ),
        "prometheus query up didn't return enough values"
    );
    fake.set(200, &one("[1700000000.5,null]"));
    assert_eq!(
        value(ask(&context, &url, "up", strict, &[], now).await),
        -1.0
    );
    fake.set(200, &one("[1700000000.5,7]"));
    error(
        ask(&context, &url, "up", &[], &[], now).await,
        ErrorCategory::Query,
    );
    fake.set(200, "<html>not json</html>");
    error(
        ask(&context, &url, "up", &[], &[], now).await,
        ErrorCategory::Query,
    );
    assert_eq!(fake.requests().len(), 7);
}

#[tokio::test]
async fn scraped_values_and_a_server_that_goes_away() {
    let endpoint = MetricsEndpoint::start("# TYPE queue_depth gauge\nqueue_depth 5\n").await;
    let mut prometheus = Prometheus::start(PrometheusConfig {
        scrape: vec![endpoint.port()],
        ..PrometheusConfig::default()
    })
    .await;
    // Sampled again and again as the server changes: no sharing window between samples.
    let context = ScalerContext::new(Settings {
        shared_query_window: Duration::ZERO,
        ..Settings::default()
    });
    let scaler = build(
        &context,
        &[
            ("serverAddress", prometheus.url().as_str()),
            ("query", "queue_depth{job=\"app\"}"),
            ("threshold", "2"),
            ("activationThreshold", "5"),
        ],
        &[],
    );
    let first = sample_at(&scaler, Utc::now()).await.unwrap();
    assert_eq!(first, sample(5.0, false));

    endpoint.set("# TYPE queue_depth gauge\nqueue_depth 7\n");
    let seen = wait_for(
        "the scaler to see the scraped 7",
        Duration::from_secs(10),
        || async {
            let sample = sample_at(&scaler, Utc::now()).await.ok()?;
            (sample.value == 7.0).then_some(sample)
        },
    )
    .await;
    assert!(seen.active);

    prometheus.kill();
    let gone = sample_at(&scaler, Utc::now()).await;
    let message = error(gone, ErrorCategory::Connect);
    assert!(
        message.contains("Connection refused") || message.contains("connect"),
        "{message}"
    );

    prometheus.restart().await;
    let back = wait_for(
        "the scaler to recover after the restart",
        Duration::from_secs(20),
        || async {
            sample_at(&scaler, Utc::now())
                .await
                .ok()
                .filter(|s| s.value == 7.0)
        },
    )
    .await;
    assert!(back.active, "{}", prometheus.log());
    assert_eq!(context.http().len(), 1);
}

#[tokio::test]
async fn windlass_plan_reports_what_keda_would() {
    let (prometheus, time) = backfilled(PrometheusConfig {
        basic_auth: true,
        ..PrometheusConfig::default()
    })
    .await;
    let manifests = Manifests::with(&format!(
        "apiVersion: v1
kind: Secret
metadata: {{name: prom-creds}}
stringData: {{user: {TEST_USER}, pass: {TEST_PASSWORD}}}
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {{name: prom-auth}}
spec:
  secretTargetRef:
    - {{parameter: username, name: prom-creds, key: user}}
    - {{parameter: password, name: prom-creds, key: pass}}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: orders}}
spec:
  scaleTargetRef: {{name: orders}}
  minReplicaCount: 0
  maxReplicaCount: 20
  triggers:
    - type: prometheus
      metadata:
        serverAddress: {url}
        query: queue_depth{{queue=\"orders\"}}
        threshold: \"10\"
        activationThreshold: \"5\"
        authModes: basic
      authenticationRef: {{name: prom-auth}}
",
        url = prometheus.url()
    ));
    let at = after(time, 30).to_rfc3339();
    // The windlass binary queries the server itself; this test's runtime has nothing to do
    // meanwhile, so blocking it is fine.
    let run = manifests.plan_json(&["--at", &at, "--current-replicas", "3"]);
    run.assert_code(0);
    let plans = run.json();
    let plan = object(&plans, "orders");
    let trigger = &plan["triggers"][0];
    assert_eq!(trigger["type"], "prometheus", "{plan:#}");
    assert_eq!(trigger["metricName"], "s0-prometheus", "{plan:#}");
    assert_eq!(trigger["value"], 42.0, "{plan:#}");
    assert_eq!(trigger["target"], 10.0, "{plan:#}");
    assert_eq!(trigger["active"], true, "{plan:#}");
    // AverageValue: ceil(42 / 10).
    assert_eq!(trigger["proposedReplicas"], 5, "{plan:#}");
    assert!(trigger["error"].is_null(), "{plan:#}");
    assert_eq!(plan["active"], true, "{plan:#}");
    assert_eq!(plan["maxProposedReplicas"], 5, "{plan:#}");
    assert_eq!(plan["hpaReplicas"], 5, "{plan:#}");
}
