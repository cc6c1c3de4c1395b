//! The `redis*` and `redis*-streams` scalers against real Redis servers (standalone, TLS, ACL,
//! cluster, Sentinel), built through the registry so the timeout and query-sharing decorators
//! are in the way, as in `windlass plan`. Each test starts its own servers on free ports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use scaler_core::{ErrorCategory, Sample, Scaler, ScalerError};
use scalers::{ScalerContext, Settings};
use windlass_tests::servers::redis::{RedisCluster, RedisOptions, RedisSentinel, RedisServer};
use windlass_tests::servers::{TestPki, wait_for};
use windlass_tests::{Manifests, object};

use windlass_tests::scalers::Pairs;

/// A context whose identical queries are never reused, so every sample reaches the server.
fn context() -> ScalerContext {
    windlass_tests::scalers::unshared_context()
}

fn build(
    context: &ScalerContext,
    trigger_type: &str,
    metadata: Pairs<'_>,
    auth: Pairs<'_>,
) -> Arc<dyn Scaler> {
    windlass_tests::scalers::build(context, trigger_type, metadata, auth)
}

async fn sample(scaler: &Arc<dyn Scaler>) -> Result<Sample, ScalerError> {
    windlass_tests::scalers::sample_first(scaler).await
}

#[track_caller]
fn value_of(result: Result<Sample, ScalerError>) -> (f64, bool) {
    let sample = result.unwrap_or_else(|e| panic!("sample failed: {} ({})", e, e.category));
    (sample.value, sample.active)
}

#[track_caller]
fn error_of(result: Result<Sample, ScalerError>) -> ScalerError {
    match result {
        Ok(sample) => panic!("expected an error, got {sample:?}"),
        Err(error) => error,
    }
}

/// A `redis` list trigger on `address` for `list`, with more metadata.
fn list(context: &ScalerContext, address: &str, list: &str, more: Pairs<'_>) -> Arc<dyn Scaler> {
    list_as(context, "redis", address, list, more, &[])
}

fn list_as(
    context: &ScalerContext,
    trigger_type: &str,
    address: &str,
    list: &str,
    more: Pairs<'_>,
    auth: Pairs<'_>,
) -> Arc<dyn Scaler> {
    let mut metadata = vec![("address", address), ("listName", list)];
    metadata.extend_from_slice(more);
    build(context, trigger_type, &metadata, auth)
}

fn stream(
    context: &ScalerContext,
    trigger_type: &str,
    address: &str,
    metadata: Pairs<'_>,
) -> Arc<dyn Scaler> {
    let mut all = vec![("address", address)];
    all.extend_from_slice(metadata);
    build(context, trigger_type, &all, &[])
}

/// Something that runs `redis-cli` commands: a server or a cluster.
trait Cli {
    async fn cli(&self, args: &[&str]) -> String;
}

impl Cli for RedisServer {
    async fn cli(&self, args: &[&str]) -> String {
        RedisServer::cli(self, args).await
    }
}

impl Cli for RedisCluster {
    async fn cli(&self, args: &[&str]) -> String {
        RedisCluster::cli(self, args).await
    }
}

/// Appends `count` entries to `stream`.
async fn xadd(target: &impl Cli, stream: &str, count: usize) {
    for i in 0..count {
        target
            .cli(&["XADD", stream, "*", "n", &i.to_string()])
            .await;
    }
}

#[tokio::test]
async fn list_length_follows_the_key_type() {
    let server = RedisServer::start().await;
    server.cli(&["RPUSH", "jobs", "a", "b", "c"]).await;
    server.cli(&["ZADD", "ranked", "1", "a", "2", "b"]).await;
    server.cli(&["SADD", "members", "a", "b", "c", "d"]).await;
    server
        .cli(&[
            "HSET", "fields", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5",
        ])
        .await;
    server.cli(&["SET", "plain", "x"]).await;
    let context = context();
    let address = server.address();
    for (key, expected) in [
        ("jobs", 3.0),
        ("ranked", 2.0),
        ("members", 4.0),
        ("fields", 5.0),
        ("missing", 0.0),
    ] {
        let scaler = list(&context, &address, key, &[]);
        assert_eq!(
            value_of(sample(&scaler).await),
            (expected, expected > 0.0),
            "{key}"
        );
    }
    let error = error_of(sample(&list(&context, &address, "plain", &[])).await);
    assert_eq!(error.category, ErrorCategory::Query, "{error}");
    assert!(error.message.contains("unsupported key type"), "{error}");
    assert!(error.message.contains("`plain`"), "{error}");
    // A query error does not drop the shared connection.
    assert_eq!(context.redis().connections_opened(), 1);
}

#[tokio::test]
async fn activation_is_strictly_above_the_threshold() {
    let server = RedisServer::start().await;
    let context = context();
    let address = server.address();
    server.cli(&["RPUSH", "jobs", "1", "2", "3"]).await;
    let jobs = list(&context, &address, "jobs", &[("activationListLength", "3")]);
    assert_eq!(value_of(sample(&jobs).await), (3.0, false));
    server.cli(&["RPUSH", "jobs", "4"]).await;
    assert_eq!(value_of(sample(&jobs).await), (4.0, true));

    xadd(&server, "events", 2).await;
    let events = stream(
        &context,
        "redis-streams",
        &address,
        &[("stream", "events"), ("activationLagCount", "2")],
    );
    assert_eq!(value_of(sample(&events).await), (2.0, false));
    server.cli(&["XADD", "events", "*", "n", "x"]).await;
    assert_eq!(value_of(sample(&events).await), (3.0, true));
}

#[tokio::test]
async fn stream_modes_and_missing_streams_and_groups() {
    let server = RedisServer::start().await;
    let context = context();
    let address = server.address();
    xadd(&server, "orders", 6).await;
    server
        .cli(&["XGROUP", "CREATE", "orders", "workers", "0"])
        .await;
    server
        .cli(&[
            "XREADGROUP",
            "GROUP",
            "workers",
            "w1",
            "COUNT",
            "4",
            "STREAMS",
            "orders",
            ">",
        ])
        .await;
    let ids = server
        .cli(&["XRANGE", "orders", "-", "+", "COUNT", "1"])
        .await;
    let first_id = ids.lines().next().expect("an entry id").to_owned();
    server.cli(&["XACK", "orders", "workers", &first_id]).await;

    let of = |metadata: Pairs<'_>| stream(&context, "redis-streams", &address, metadata);
    // Length: XLEN.
    let length = of(&[("stream", "orders")]);
    assert_eq!(value_of(sample(&length).await).0, 6.0);
    // Pending entries: 4 delivered, 1 acknowledged.
    let pending = of(&[("stream", "orders"), ("consumerGroup", "workers")]);
    assert_eq!(value_of(sample(&pending).await).0, 3.0);
    // Lag: 6 entries, 4 read by the group.
    let lag = of(&[
        ("stream", "orders"),
        ("consumerGroup", "workers"),
        ("lagCount", "10"),
    ]);
    assert_eq!(value_of(sample(&lag).await), (2.0, true));

    // A group that is not registered yet: lag mode counts the whole stream (KEDA's XLEN
    // fallback); pending mode fails as KEDA's XPENDING does (NOGROUP).
    let new_group = [
        ("stream", "orders"),
        ("consumerGroup", "new"),
        ("lagCount", "10"),
    ];
    assert_eq!(value_of(sample(&of(&new_group)).await).0, 6.0);
    let error = error_of(sample(&of(&[("stream", "orders"), ("consumerGroup", "new")])).await);
    assert_eq!(error.category, ErrorCategory::Query, "{error}");
    assert!(error.message.contains("NOGROUP"), "{error}");

    // A stream that does not exist: length 0, lag 0, pending an error (NOGROUP), as in KEDA.
    assert_eq!(
        value_of(sample(&of(&[("stream", "nope")])).await),
        (0.0, false)
    );
    let missing_lag = [
        ("stream", "nope"),
        ("consumerGroup", "workers"),
        ("lagCount", "5"),
    ];
    assert_eq!(value_of(sample(&of(&missing_lag)).await), (0.0, false));
    let error = error_of(sample(&of(&[("stream", "nope"), ("consumerGroup", "workers")])).await);
    assert_eq!(error.category, ErrorCategory::Query, "{error}");

    // A key of another type.
    server.cli(&["SET", "plain", "x"]).await;
    let error = error_of(sample(&of(&[("stream", "plain")])).await);
    assert_eq!(error.category, ErrorCategory::Query, "{error}");
    assert!(error.message.contains("WRONGTYPE"), "{error}");
}

#[tokio::test]
async fn authentication_failures_are_connect_errors_that_say_so() {
    let server = RedisServer::start_with(RedisOptions {
        requirepass: Some("s3cret".into()),
        users: vec![("alice".into(), "wonderland".into())],
        ..RedisOptions::default()
    })
    .await;
    server.cli(&["RPUSH", "jobs", "a", "b"]).await;
    let context = context();
    let address = server.address();
    let with = |metadata: Pairs<'_>, auth: Pairs<'_>| {
        list_as(&context, "redis", &address, "jobs", metadata, auth)
    };

    assert_eq!(
        value_of(sample(&with(&[], &[("password", "s3cret")])).await).0,
        2.0
    );
    let alice = [("username", "alice"), ("password", "wonderland")];
    assert_eq!(value_of(sample(&with(&alice, &[])).await).0, 2.0);

    let wrong = error_of(sample(&with(&[], &[("password", "guess")])).await);
    assert_eq!(wrong.category, ErrorCategory::Connect, "{wrong}");
    assert!(wrong.message.contains("authentication failed"), "{wrong}");
    assert!(wrong.message.contains("the default user"), "{wrong}");

    let wrong_user = [("username", "bob"), ("password", "wonderland")];
    let error = error_of(sample(&with(&wrong_user, &[])).await);
    assert_eq!(error.category, ErrorCategory::Connect, "{error}");
    assert!(
        error
            .message
            .contains("authentication failed as user `bob`"),
        "{error}"
    );

    let wrong_password = [("username", "alice"), ("password", "guess")];
    let error = error_of(sample(&with(&wrong_password, &[])).await);
    assert_eq!(error.category, ErrorCategory::Connect, "{error}");
    assert!(error.message.contains("user `alice`"), "{error}");

    let anonymous = error_of(sample(&with(&[], &[])).await);
    assert_eq!(anonymous.category, ErrorCategory::Connect, "{anonymous}");
    assert!(anonymous.message.contains("authentication"), "{anonymous}");
}

#[tokio::test]
async fn a_server_going_away_is_a_connect_error_and_its_return_recovers() {
    let mut server = RedisServer::start().await;
    server.cli(&["RPUSH", "jobs", "a", "b"]).await;
    let context = context();
    let jobs = list(&context, &server.address(), "jobs", &[]);
    assert_eq!(value_of(sample(&jobs).await).0, 2.0);

    // The server closes the idle connection: the next sample reconnects without failing.
    server.cli(&["CLIENT", "KILL", "TYPE", "normal"]).await;
    assert_eq!(value_of(sample(&jobs).await).0, 2.0);
    assert_eq!(context.redis().connections_opened(), 2);

    server.kill();
    for _ in 0..2 {
        let error = error_of(sample(&jobs).await);
        assert_eq!(error.category, ErrorCategory::Connect, "{error}");
        assert!(error.message.contains(&server.address()), "{error}");
    }

    server.restart().await;
    server.cli(&["RPUSH", "jobs", "a", "b", "c"]).await;
    assert_eq!(value_of(sample(&jobs).await).0, 3.0);
}

#[tokio::test]
async fn a_server_that_does_not_answer_is_a_timeout() {
    let server = RedisServer::start().await;
    let context = ScalerContext::new(Settings {
        shared_query_window: Duration::ZERO,
        default_timeout: Duration::from_millis(400),
    });
    let jobs = list(&context, &server.address(), "jobs", &[]);
    assert_eq!(value_of(sample(&jobs).await).0, 0.0);
    let pid = server.pid().expect("a running server").to_string();
    let signal = |name: &str| {
        let status = std::process::Command::new("kill")
            .args([name, &pid])
            .status()
            .expect("run kill");
        assert!(status.success());
    };
    signal("-STOP");
    let error = error_of(sample(&jobs).await);
    signal("-CONT");
    assert_eq!(error.category, ErrorCategory::Timeout, "{error}");
    assert_eq!(value_of(sample(&jobs).await).0, 0.0);
}

#[tokio::test]
async fn tls_with_a_ca_a_client_certificate_and_unsafe_ssl() {
    let server = RedisServer::start_with(RedisOptions::tls(true)).await;
    server.cli(&["RPUSH", "jobs", "a", "b", "c", "d"]).await;
    let pki = server.pki().expect("TLS material").clone();
    let other_dir = tempfile::tempdir().unwrap();
    let stranger = TestPki::generate(other_dir.path());
    let context = context();
    let address = server.address();
    let tls = |metadata: Pairs<'_>, auth: Pairs<'_>| {
        list_as(&context, "redis", &address, "jobs", metadata, auth)
    };
    let enable = [("enableTLS", "true")];

    // CA-verified, with the client certificate the server requires.
    let verified = [
        ("ca", pki.ca_cert.as_str()),
        ("cert", pki.client.cert.as_str()),
        ("key", pki.client.key.as_str()),
    ];
    assert_eq!(value_of(sample(&tls(&enable, &verified)).await).0, 4.0);
    // The same through the TriggerAuthentication's `tls: enable`.
    let mut by_auth = verified.to_vec();
    by_auth.push(("tls", "enable"));
    assert_eq!(value_of(sample(&tls(&[], &by_auth)).await).0, 4.0);

    // Without the client certificate the server refuses the handshake.
    let error = error_of(sample(&tls(&enable, &[("ca", pki.ca_cert.as_str())])).await);
    assert_eq!(error.category, ErrorCategory::Connect, "{error}");

    // A CA that did not sign the server's certificate: refused, unless unsafeSsl.
    let untrusted = [
        ("ca", stranger.ca_cert.as_str()),
        ("cert", pki.client.cert.as_str()),
        ("key", pki.client.key.as_str()),
    ];
    let error = error_of(sample(&tls(&enable, &untrusted)).await);
    assert_eq!(error.category, ErrorCategory::Connect, "{error}");
    assert!(
        error.message.to_lowercase().contains("certificate"),
        "{error}"
    );
    let insecure = [("enableTLS", "true"), ("unsafeSsl", "true")];
    assert_eq!(value_of(sample(&tls(&insecure, &untrusted)).await).0, 4.0);

    // Plain text against a TLS port fails as a connection problem, not a panic or a value.
    let error = error_of(sample(&tls(&[], &[])).await);
    assert!(
        matches!(
            error.category,
            ErrorCategory::Connect | ErrorCategory::Timeout
        ),
        "{error}"
    );
}

#[tokio::test]
async fn database_index_selects_the_database() {
    let server = RedisServer::start().await;
    server
        .cli(&["-n", "3", "RPUSH", "jobs", "a", "b", "c"])
        .await;
    server
        .cli(&["-n", "3", "XADD", "events", "*", "n", "1"])
        .await;
    let context = context();
    let address = server.address();
    let in_db = |db: &'static str| list(&context, &address, "jobs", &[("databaseIndex", db)]);
    assert_eq!(value_of(sample(&in_db("3")).await).0, 3.0);
    assert_eq!(value_of(sample(&in_db("0")).await).0, 0.0);
    let events = stream(
        &context,
        "redis-streams",
        &address,
        &[("stream", "events"), ("databaseIndex", "3")],
    );
    assert_eq!(value_of(sample(&events).await).0, 1.0);
}

#[tokio::test]
async fn scalers_with_the_same_settings_share_one_connection() {
    let server = RedisServer::start_with(RedisOptions {
        users: vec![("alice".into(), "wonderland".into())],
        ..RedisOptions::default()
    })
    .await;
    server.cli(&["RPUSH", "a", "1"]).await;
    server.cli(&["RPUSH", "b", "1", "2"]).await;
    let context = context();
    let address = server.address();
    // Two ScaledObjects, two lists, one server: one connection, kept across polls.
    let first = list(&context, &address, "a", &[]);
    let second = list(&context, &address, "b", &[]);
    let events = stream(&context, "redis-streams", &address, &[("stream", "s")]);
    for _ in 0..3 {
        assert_eq!(value_of(sample(&first).await).0, 1.0);
        assert_eq!(value_of(sample(&second).await).0, 2.0);
        assert_eq!(value_of(sample(&events).await).0, 0.0);
    }
    assert_eq!(context.redis().len(), 1);
    assert_eq!(context.redis().connections_opened(), 1);
    // The server agrees: our connection plus redis-cli's own.
    let clients = server.cli(&["INFO", "clients"]).await;
    assert!(clients.contains("connected_clients:2"), "{clients}");

    // Other credentials, other connection.
    let alice = list_as(
        &context,
        "redis",
        &address,
        "a",
        &[("username", "alice"), ("password", "wonderland")],
        &[],
    );
    assert_eq!(value_of(sample(&alice).await).0, 1.0);
    assert_eq!(context.redis().len(), 2);
    assert_eq!(context.redis().connections_opened(), 2);
}

#[tokio::test]
async fn cluster_routes_each_key_to_its_master() {
    let cluster = RedisCluster::start().await;
    // Three keys served by three different masters.
    let mut keys = Vec::new();
    let mut nodes = HashSet::new();
    for i in 0..200 {
        let key = format!("jobs-{i}");
        if nodes.insert(cluster.node_of(&key).await) {
            keys.push(key);
        }
        if keys.len() == 3 {
            break;
        }
    }
    assert_eq!(keys.len(), 3, "keys on three masters");
    for (n, key) in keys.iter().enumerate() {
        let mut args = vec!["RPUSH", key.as_str()];
        let items: Vec<String> = (0..=n).map(|i| i.to_string()).collect();
        args.extend(items.iter().map(String::as_str));
        cluster.cli(&args).await;
    }
    let context = context();
    let seeds = cluster.addresses().join(",");
    for (n, key) in keys.iter().enumerate() {
        let scaler = list_as(&context, "redis-cluster", &seeds, key, &[], &[]);
        assert_eq!(value_of(sample(&scaler).await).0, (n + 1) as f64, "{key}");
    }
    // One seed is enough: the client learns the others.
    let one_seed = &cluster.addresses()[1];
    let scaler = list_as(&context, "redis-cluster", one_seed, &keys[0], &[], &[]);
    assert_eq!(value_of(sample(&scaler).await).0, 1.0);

    // Streams: the lag mode reads INFO from the stream's own master.
    let stream_key = keys[2].replace("jobs", "orders");
    let stream_key = {
        let mut found = stream_key;
        for i in 0..200 {
            let candidate = format!("orders-{i}");
            if cluster.node_of(&candidate).await != cluster.nodes()[0].port() {
                found = candidate;
                break;
            }
        }
        found
    };
    xadd(&cluster, &stream_key, 5).await;
    cluster
        .cli(&["XGROUP", "CREATE", &stream_key, "workers", "0"])
        .await;
    cluster
        .cli(&[
            "XREADGROUP",
            "GROUP",
            "workers",
            "w",
            "COUNT",
            "2",
            "STREAMS",
            &stream_key,
            ">",
        ])
        .await;
    let of = |metadata: Pairs<'_>| stream(&context, "redis-cluster-streams", &seeds, metadata);
    let s = stream_key.as_str();
    assert_eq!(value_of(sample(&of(&[("stream", s)])).await).0, 5.0);
    let pending = [("stream", s), ("consumerGroup", "workers")];
    assert_eq!(value_of(sample(&of(&pending)).await).0, 2.0);
    let lag = [
        ("stream", s),
        ("consumerGroup", "workers"),
        ("lagCount", "1"),
    ];
    assert_eq!(value_of(sample(&of(&lag)).await).0, 3.0);
    // Every cluster scaler above shared one connection per seed list.
    assert_eq!(context.redis().len(), 2);
}

#[tokio::test]
async fn sentinel_finds_the_master_and_follows_a_failover() {
    let mut setup = RedisSentinel::start(true).await;
    setup.master.cli(&["RPUSH", "jobs", "a", "b", "c"]).await;
    xadd(&setup.master, "events", 2).await;
    let replica = setup.replica.as_ref().expect("a replica");
    wait_for(
        "the replica to hold the data",
        Duration::from_secs(10),
        || async { (replica.cli(&["LLEN", "jobs"]).await == "3").then_some(()) },
    )
    .await;

    let context = context();
    let sentinels = setup.sentinel_address();
    let master = [("sentinelMaster", RedisSentinel::MASTER_NAME)];
    let jobs = list_as(&context, "redis-sentinel", &sentinels, "jobs", &master, &[]);
    assert_eq!(value_of(sample(&jobs).await).0, 3.0);
    let events = stream(
        &context,
        "redis-sentinel-streams",
        &sentinels,
        &[
            ("stream", "events"),
            ("sentinelMaster", RedisSentinel::MASTER_NAME),
        ],
    );
    assert_eq!(value_of(sample(&events).await).0, 2.0);

    // A master name the Sentinel does not monitor.
    let unknown = list_as(
        &context,
        "redis-sentinel",
        &sentinels,
        "jobs",
        &[("sentinelMaster", "other")],
        &[],
    );
    let error = error_of(sample(&unknown).await);
    assert_eq!(error.category, ErrorCategory::Connect, "{error}");
    assert!(
        error.message.contains("does not monitor `other`"),
        "{error}"
    );

    // The master dies; once the Sentinel has promoted the replica, samples reach it.
    let promoted = setup.fail_over().await;
    let value = wait_for(
        "a sample from the new master",
        Duration::from_secs(15),
        || async { sample(&jobs).await.ok().map(|s| s.value) },
    )
    .await;
    assert_eq!(value, 3.0);
    assert_ne!(promoted, setup.master.port());
    assert!(context.redis().connections_opened() >= 2);
}

#[test]
fn plan_reports_the_value_and_keda_replicas() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(RedisServer::start());
    let items: Vec<String> = (0..12).map(|i| i.to_string()).collect();
    let mut args = vec!["RPUSH", "jobs"];
    args.extend(items.iter().map(String::as_str));
    runtime.block_on(server.cli(&args));

    let manifests = Manifests::with(&format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: worker}}\nspec:\n  scaleTargetRef: {{name: worker}}\n  minReplicaCount: 0\n  maxReplicaCount: 10\n  triggers:\n    - type: redis\n      metadata:\n        address: {}\n        listName: jobs\n        listLength: \"5\"\n",
        server.address()
    ));
    let run = manifests.plan_json(&["--current-replicas", "1"]);
    run.assert_code(0);
    let report = run.json();
    let worker = object(&report, "worker");
    let trigger = &worker["triggers"][0];
    assert_eq!(trigger["value"], 12.0, "{worker:#}");
    assert_eq!(trigger["metricType"], "AverageValue", "{worker:#}");
    assert_eq!(trigger["proposedReplicas"], 3, "{worker:#}");
    assert_eq!(trigger["active"], true, "{worker:#}");
    assert!(trigger["error"].is_null(), "{worker:#}");
    assert_eq!(worker["active"], true, "{worker:#}");
}
