//! The direct offset reader against librdkafka's mock cluster (FindCoordinator v3, OffsetFetch
//! v6: one request per group) and against a scripted broker on a loopback port, which speaks
//! the versions it is told to (batched FindCoordinator v4+ and OffsetFetch v8+ included),
//! records every request, injects coordinator errors and plays the server side of SASL.

use std::collections::VecDeque;

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{RequestHeader, SaslHandshakeResponse};
use kafka_protocol::protocol::{Decodable, Encodable};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{Offset, TopicPartitionList};
use tokio::net::TcpListener;

use super::*;
use crate::kafka_auth::OAuthClientCredentials;
use crate::kafka_client::KafkaClients;

type Mock = MockCluster<'static, DefaultProducerContext>;

const TIMEOUT: Duration = Duration::from_secs(5);

fn commit(mock: &Mock, group: &str, offsets: &[(&str, i32, i64)]) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap_servers())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for (topic, partition, offset) in offsets {
        list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .unwrap();
    }
    consumer.commit(&list, CommitMode::Sync).unwrap();
}

fn connection(servers: &str, sasl: SaslSettings) -> KafkaConnection {
    KafkaConnection::new(&[servers.to_owned()], None, &sasl)
}

fn partitions(topic: &str, ids: &[i32]) -> TopicPartitions {
    [(topic.to_owned(), ids.to_vec())].into_iter().collect()
}

fn offset(offsets: &PartitionOffsets, topic: &str, partition: i32) -> i64 {
    offsets[&(topic.to_owned(), partition)]
}

/// Reads every group at once (they queue on the connections together).
async fn read_all(
    clients: &KafkaClients,
    connection: &KafkaConnection,
    groups: &[String],
    wanted: &TopicPartitions,
) -> Vec<Result<PartitionOffsets, crate::kafka_client::KafkaClientError>> {
    futures::future::join_all(
        groups
            .iter()
            .map(|group| clients.committed_offsets(connection, group, wanted, TIMEOUT)),
    )
    .await
}

#[tokio::test]
async fn mock_cluster_groups_share_one_connection_per_coordinator() {
    let mock = MockCluster::new(3).unwrap();
    mock.create_topic("t", 2, 1).unwrap();
    let groups: Vec<String> = (0..24).map(|n| format!("g{n}")).collect();
    for (n, group) in (0i64..).zip(&groups) {
        commit(&mock, group, &[("t", 0, n), ("t", 1, 100 + n)]);
    }
    let connection = connection(&mock.bootstrap_servers(), SaslSettings::None);
    let clients = KafkaClients::default();
    let wanted = partitions("t", &[0, 1]);
    let answers = read_all(&clients, &connection, &groups, &wanted).await;
    for (n, answer) in (0i64..).zip(answers) {
        let offsets = answer.unwrap();
        assert_eq!(offset(&offsets, "t", 0), n);
        assert_eq!(offset(&offsets, "t", 1), 100 + n);
    }
    // No librdkafka client at all: neither a cluster client nor a reader per group.
    assert_eq!(clients.counts(), (0, 0));
    let stats = clients.offset_connections().unwrap();
    assert!(
        (1..=3).contains(&stats.open()),
        "{} connections",
        stats.open()
    );
    assert_eq!(stats.made(), stats.open());
    // A group that never committed: −1 everywhere, and still no new connection.
    let none = clients
        .committed_offsets(&connection, "fresh", &wanted, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(none.values().copied().collect::<Vec<_>>(), vec![-1, -1]);
    assert_eq!(stats.made(), stats.open());
    assert!(clients.group_reader_reason(&connection).is_none());
}

#[tokio::test]
async fn brokers_going_away_fail_reads_with_a_category_and_reads_recover() {
    let mock = MockCluster::new(3).unwrap();
    mock.create_topic("t", 1, 1).unwrap();
    commit(&mock, "g", &[("t", 0, 7)]);
    let connection = connection(&mock.bootstrap_servers(), SaslSettings::None);
    let clients = KafkaClients::default();
    let wanted = partitions("t", &[0]);
    let read = || clients.committed_offsets(&connection, "g", &wanted, Duration::from_secs(2));
    assert_eq!(offset(&read().await.unwrap(), "t", 0), 7);

    for broker in 1..=3 {
        mock.broker_down(broker).unwrap();
    }
    let error = read().await.unwrap_err();
    assert!(
        matches!(
            error.category(),
            ErrorCategory::Connect | ErrorCategory::Timeout
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("listing consumer group offsets"),
        "{error}"
    );

    for broker in 1..=3 {
        mock.broker_up(broker).unwrap();
    }
    // The failed connection was closed; the next read connects again.
    let offsets = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(offsets) = read().await {
                return offsets;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("reads recover once the brokers are back");
    assert_eq!(offset(&offsets, "t", 0), 7);
    assert_eq!(clients.counts(), (0, 0));
}

/// What the scripted broker was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    ApiVersions,
    SaslHandshake(String),
    SaslAuthenticate(Vec<u8>),
    FindCoordinator { version: i16, keys: Vec<String> },
    OffsetFetch { version: i16, groups: Vec<String> },
}

/// The server side of SASL the scripted broker plays.
#[derive(Clone)]
enum ServerSasl {
    Plain {
        username: String,
        password: String,
    },
    Scram {
        hash: ScramHash,
        username: String,
        password: String,
    },
    OAuthBearer {
        token: String,
    },
}

#[derive(Default)]
struct Script {
    /// Versions offered: (api key, max); every key from version 0 (OffsetFetch from 1).
    versions: Vec<(ApiKey, i16)>,
    /// Committed offsets by group.
    offsets: HashMap<String, BTreeMap<(String, i32), i64>>,
    /// Error codes answered to the next OffsetFetch reads of a group, in order.
    fetch_errors: Mutex<HashMap<String, VecDeque<i16>>>,
    /// Coordinators named by the next FindCoordinator answers (any group); then this broker.
    coordinators: Mutex<VecDeque<BrokerAddress>>,
    sasl: Option<ServerSasl>,
    /// `session_lifetime_ms` answered on successful authentication.
    session_lifetime_ms: i64,
    /// Close every connection after this many answers.
    close_after: Option<usize>,
}

impl Script {
    fn speaking(find: i16, fetch: i16) -> Self {
        Self {
            versions: vec![
                (ApiKey::ApiVersions, 3),
                (ApiKey::SaslHandshake, 1),
                (ApiKey::SaslAuthenticate, 2),
                (ApiKey::FindCoordinator, find),
                (ApiKey::OffsetFetch, fetch),
            ],
            ..Self::default()
        }
    }

    fn with_offsets(mut self, group: &str, offsets: &[(&str, i32, i64)]) -> Self {
        self.offsets.insert(
            group.to_owned(),
            offsets
                .iter()
                .map(|(topic, partition, offset)| (((*topic).to_owned(), *partition), *offset))
                .collect(),
        );
        self
    }
}

/// A scripted Kafka broker on a loopback port.
struct ScriptedBroker {
    address: BrokerAddress,
    script: Arc<Script>,
    seen: Arc<Mutex<Vec<Seen>>>,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScriptedBroker {
    async fn start(script: Script) -> Self {
        Self::start_with(script, None).await
    }

    /// A broker speaking TLS with `tls`.
    async fn start_with(script: Script, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let address = BrokerAddress {
            host: "127.0.0.1".to_owned(),
            port,
        };
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let accepted = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(script);
        let task = tokio::spawn({
            let (script, seen, accepted, address) = (
                Arc::clone(&script),
                Arc::clone(&seen),
                Arc::clone(&accepted),
                address.clone(),
            );
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let (script, seen, address) =
                        (Arc::clone(&script), Arc::clone(&seen), address.clone());
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        match tls {
                            None => {
                                let _ = serve_connection(stream, &script, &seen, &address).await;
                            }
                            Some(config) => {
                                let acceptor = tokio_rustls::TlsAcceptor::from(config);
                                if let Ok(stream) = acceptor.accept(stream).await {
                                    let _ =
                                        serve_connection(stream, &script, &seen, &address).await;
                                }
                            }
                        }
                    });
                }
            }
        });
        Self {
            address,
            script,
            seen,
            accepted,
            task,
        }
    }

    fn servers(&self) -> String {
        self.address.to_string()
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn offset_fetches(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|seen| matches!(seen, Seen::OffsetFetch { .. }))
            .collect()
    }

    fn coordinator_lookups(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|seen| matches!(seen, Seen::FindCoordinator { .. }))
            .collect()
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Topics and partitions an OffsetFetch asks about for one group.
type AskedTopics = Vec<(String, Vec<i32>)>;

/// SCRAM state of one connection: the bare client-first message and the server-first sent.
struct ScramExchange {
    client_first_bare: String,
    server_first: String,
}

async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    script: &Script,
    seen: &Mutex<Vec<Seen>>,
    me: &BrokerAddress,
) -> io::Result<()> {
    let mut answered = 0;
    let mut scram: Option<ScramExchange> = None;
    loop {
        if script.close_after.is_some_and(|limit| answered >= limit) {
            return Ok(());
        }
        let size = stream.read_i32().await?;
        let mut frame = vec![0; usize::try_from(size).unwrap()];
        stream.read_exact(&mut frame).await?;
        let mut frame = Bytes::from(frame);
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let api = ApiKey::try_from(key).unwrap();
        let header =
            RequestHeader::decode(&mut frame, api.request_header_version(version)).unwrap();
        let mut body = BytesMut::new();
        let record = |event| seen.lock().unwrap().push(event);
        match api {
            ApiKey::ApiVersions => {
                record(Seen::ApiVersions);
                let keys = script
                    .versions
                    .iter()
                    .map(|(key, max)| {
                        let min = i16::from(*key == ApiKey::OffsetFetch);
                        ApiVersion::default()
                            .with_api_key(*key as i16)
                            .with_min_version(min)
                            .with_max_version(*max)
                    })
                    .collect();
                ApiVersionsResponse::default()
                    .with_api_keys(keys)
                    .encode(&mut body, version)
                    .unwrap();
            }
            ApiKey::SaslHandshake => {
                let request = SaslHandshakeRequest::decode(&mut frame, version).unwrap();
                record(Seen::SaslHandshake(request.mechanism.as_str().to_owned()));
                let offered = match &script.sasl {
                    Some(ServerSasl::Plain { .. }) => "PLAIN",
                    Some(ServerSasl::Scram { hash, .. }) => hash.mechanism(),
                    Some(ServerSasl::OAuthBearer { .. }) => "OAUTHBEARER",
                    None => "",
                };
                let code = if request.mechanism.as_str() == offered {
                    0
                } else {
                    33
                };
                SaslHandshakeResponse::default()
                    .with_error_code(code)
                    .with_mechanisms(vec![StrBytes::from_static_str(offered)])
                    .encode(&mut body, version)
                    .unwrap();
            }
            ApiKey::SaslAuthenticate => {
                let request = SaslAuthenticateRequest::decode(&mut frame, version).unwrap();
                let message = request.auth_bytes.to_vec();
                record(Seen::SaslAuthenticate(message.clone()));
                let (code, reply) = sasl_step(script, &mut scram, &message);
                let mut answer = SaslAuthenticateResponse::default()
                    .with_error_code(code)
                    .with_auth_bytes(Bytes::from(reply));
                if code == 0 {
                    answer = answer.with_session_lifetime_ms(script.session_lifetime_ms);
                } else {
                    answer = answer
                        .with_error_message(Some(StrBytes::from_static_str("invalid credentials")));
                }
                answer.encode(&mut body, version).unwrap();
            }
            ApiKey::FindCoordinator => {
                let request = FindCoordinatorRequest::decode(&mut frame, version).unwrap();
                let keys: Vec<String> = if version >= 4 {
                    request
                        .coordinator_keys
                        .iter()
                        .map(|k| k.as_str().to_owned())
                        .collect()
                } else {
                    vec![request.key.as_str().to_owned()]
                };
                record(Seen::FindCoordinator {
                    version,
                    keys: keys.clone(),
                });
                let coordinator = script
                    .coordinators
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or_else(|| me.clone());
                let host = StrBytes::from_string(coordinator.host.clone());
                let port = i32::from(coordinator.port);
                let mut answer = FindCoordinatorResponse::default();
                if version >= 4 {
                    answer = answer.with_coordinators(
                        keys.iter()
                            .map(|key| {
                                Coordinator::default()
                                    .with_key(StrBytes::from_string(key.clone()))
                                    .with_host(host.clone())
                                    .with_port(port)
                            })
                            .collect(),
                    );
                } else {
                    answer = answer.with_host(host).with_port(port);
                }
                answer.encode(&mut body, version).unwrap();
            }
            ApiKey::OffsetFetch => {
                let request = OffsetFetchRequest::decode(&mut frame, version).unwrap();
                let asked: Vec<(String, AskedTopics)> = if version >= 8 {
                    request
                        .groups
                        .iter()
                        .map(|group| {
                            let topics = group.topics.iter().flatten().map(|topic| {
                                (
                                    topic.name.0.as_str().to_owned(),
                                    topic.partition_indexes.clone(),
                                )
                            });
                            (group.group_id.0.as_str().to_owned(), topics.collect())
                        })
                        .collect()
                } else {
                    let topics = request.topics.iter().flatten().map(|topic| {
                        (
                            topic.name.0.as_str().to_owned(),
                            topic.partition_indexes.clone(),
                        )
                    });
                    vec![(request.group_id.0.as_str().to_owned(), topics.collect())]
                };
                record(Seen::OffsetFetch {
                    version,
                    groups: asked.iter().map(|(group, _)| group.clone()).collect(),
                });
                let error_of = |group: &str| {
                    script
                        .fetch_errors
                        .lock()
                        .unwrap()
                        .get_mut(group)
                        .and_then(VecDeque::pop_front)
                        .unwrap_or(0)
                };
                let committed = |group: &str, topic: &str, partition: i32| {
                    script
                        .offsets
                        .get(group)
                        .and_then(|offsets| offsets.get(&(topic.to_owned(), partition)))
                        .copied()
                        .unwrap_or(-1)
                };
                let mut answer = OffsetFetchResponse::default();
                if version >= 8 {
                    let mut groups = Vec::new();
                    for (group, topics) in &asked {
                        let code = error_of(group);
                        let topics = topics.iter().map(|(topic, ids)| {
                            OffsetFetchResponseTopics::default()
                                .with_name(topic_name(topic))
                                .with_partitions(
                                    ids.iter()
                                        .map(|id| {
                                            OffsetFetchResponsePartitions::default()
                                                .with_partition_index(*id)
                                                .with_committed_offset(committed(group, topic, *id))
                                        })
                                        .collect(),
                                )
                        });
                        groups.push(
                            OffsetFetchResponseGroup::default()
                                .with_group_id(group_id(group))
                                .with_error_code(code)
                                .with_topics(if code == 0 {
                                    topics.collect()
                                } else {
                                    Vec::new()
                                }),
                        );
                    }
                    answer = answer.with_groups(groups);
                } else {
                    let (group, topics) = &asked[0];
                    let code = error_of(group);
                    let topics = topics.iter().map(|(topic, ids)| {
                        OffsetFetchResponseTopic::default()
                            .with_name(topic_name(topic))
                            .with_partitions(
                                ids.iter()
                                    .map(|id| {
                                        OffsetFetchResponsePartition::default()
                                            .with_partition_index(*id)
                                            .with_committed_offset(committed(group, topic, *id))
                                    })
                                    .collect(),
                            )
                    });
                    answer = answer.with_error_code(code).with_topics(if code == 0 {
                        topics.collect()
                    } else {
                        Vec::new()
                    });
                }
                answer.encode(&mut body, version).unwrap();
            }
            other => panic!("the scripted broker was asked {other:?}"),
        }
        let mut out = BytesMut::new();
        out.put_i32(0);
        ResponseHeader::default()
            .with_correlation_id(header.correlation_id)
            .encode(&mut out, api.response_header_version(version))
            .unwrap();
        out.extend_from_slice(&body);
        let size = i32::try_from(out.len() - 4).unwrap();
        out[..4].copy_from_slice(&size.to_be_bytes());
        stream.write_all(&out).await?;
        answered += 1;
    }
}

/// One SASL step on the server side: (error code, bytes to send back).
fn sasl_step(script: &Script, scram: &mut Option<ScramExchange>, message: &[u8]) -> (i16, Vec<u8>) {
    use base64::Engine as _;
    const FAILED: i16 = 58;
    let text = String::from_utf8_lossy(message).into_owned();
    match &script.sasl {
        None => (34, Vec::new()),
        Some(ServerSasl::Plain { username, password }) => {
            if message == plain_message(username, password) {
                (0, Vec::new())
            } else {
                (FAILED, Vec::new())
            }
        }
        Some(ServerSasl::OAuthBearer { token }) => {
            if message == oauthbearer_message(token) {
                (0, Vec::new())
            } else if message == [1] {
                (FAILED, Vec::new())
            } else {
                (0, br#"{"status":"invalid_token"}"#.to_vec())
            }
        }
        Some(ServerSasl::Scram {
            hash,
            username,
            password,
        }) => match scram.take() {
            None => {
                let bare = text.strip_prefix("n,,").unwrap_or_default().to_owned();
                let name_ok = bare.starts_with(&format!("n={username},"));
                let nonce = bare
                    .rsplit_once("r=")
                    .map(|(_, n)| n.to_owned())
                    .unwrap_or_default();
                let server_first = format!(
                    "r={nonce}server-nonce,s={},i=4096",
                    base64::engine::general_purpose::STANDARD.encode(b"pepper")
                );
                if !name_ok {
                    return (FAILED, Vec::new());
                }
                *scram = Some(ScramExchange {
                    client_first_bare: bare,
                    server_first: server_first.clone(),
                });
                (0, server_first.into_bytes())
            }
            Some(exchange) => {
                // RFC 5802 §3 from the stored credential: StoredKey and ServerKey.
                let mut salted = vec![0u8; hash.digest().output_len()];
                ring::pbkdf2::derive(
                    hash.pbkdf2(),
                    std::num::NonZeroU32::new(4096).unwrap(),
                    b"pepper",
                    password.as_bytes(),
                    &mut salted,
                );
                let salted = ring::hmac::Key::new(hash.hmac(), &salted);
                let client_key = ring::hmac::sign(&salted, b"Client Key");
                let stored_key = ring::digest::digest(hash.digest(), client_key.as_ref());
                let server_key = ring::hmac::sign(&salted, b"Server Key");
                let Some((without_proof, proof)) = text.rsplit_once(",p=") else {
                    return (FAILED, Vec::new());
                };
                let auth_message = format!(
                    "{},{},{without_proof}",
                    exchange.client_first_bare, exchange.server_first
                );
                let signature = ring::hmac::sign(
                    &ring::hmac::Key::new(hash.hmac(), stored_key.as_ref()),
                    auth_message.as_bytes(),
                );
                let proof = base64::engine::general_purpose::STANDARD
                    .decode(proof)
                    .unwrap_or_default();
                let recovered: Vec<u8> = proof
                    .iter()
                    .zip(signature.as_ref())
                    .map(|(p, s)| p ^ s)
                    .collect();
                if ring::digest::digest(hash.digest(), &recovered).as_ref() != stored_key.as_ref() {
                    return (FAILED, Vec::new());
                }
                let verifier = ring::hmac::sign(
                    &ring::hmac::Key::new(hash.hmac(), server_key.as_ref()),
                    auth_message.as_bytes(),
                );
                let server_final = format!(
                    "v={}",
                    base64::engine::general_purpose::STANDARD.encode(verifier.as_ref())
                );
                (0, server_final.into_bytes())
            }
        },
    }
}

fn groups(count: usize) -> Vec<String> {
    (0..count).map(|n| format!("group-{n}")).collect()
}

/// A scripted broker speaking `find`/`fetch` versions, where `group-n` committed n on `t`/0.
async fn broker_with_groups(find: i16, fetch: i16, count: usize) -> ScriptedBroker {
    let mut script = Script::speaking(find, fetch);
    for (n, group) in (0i64..).zip(groups(count)) {
        script = script.with_offsets(&group, &[("t", 0, n)]);
    }
    ScriptedBroker::start(script).await
}

#[tokio::test]
async fn new_brokers_get_one_lookup_and_one_offset_fetch_for_many_groups() {
    const GROUPS: usize = 150;
    let broker = broker_with_groups(6, 9, GROUPS).await;
    let connection = connection(&broker.servers(), SaslSettings::None);
    let clients = KafkaClients::default();
    let all = groups(GROUPS);
    let wanted = partitions("t", &[0, 1]);
    for (n, answer) in (0i64..).zip(read_all(&clients, &connection, &all, &wanted).await) {
        let offsets = answer.unwrap();
        assert_eq!(offset(&offsets, "t", 0), n);
        // Partition 1 has no commit.
        assert_eq!(offset(&offsets, "t", 1), -1);
    }
    // Reads queued together go out together, at most 100 groups per request: a handful of
    // requests for 150 groups (how many depends on how the reads interleave with the
    // connection's task), every group named once.
    let lookups = broker.coordinator_lookups();
    let fetches = broker.offset_fetches();
    let named = |seen: &[Seen]| -> Vec<(i16, usize)> {
        seen.iter()
            .map(|seen| match seen {
                Seen::FindCoordinator { version, keys } => (*version, keys.len()),
                Seen::OffsetFetch { version, groups } => (*version, groups.len()),
                _ => (0, 0),
            })
            .collect()
    };
    for (requests, version) in [(named(&lookups), 6), (named(&fetches), 9)] {
        assert!(requests.len() <= 4, "{requests:?}");
        assert!(
            requests.iter().all(|(v, n)| *v == version && *n <= 100),
            "{requests:?}"
        );
        assert_eq!(requests.iter().map(|(_, n)| n).sum::<usize>(), GROUPS);
    }
    assert_eq!(broker.accepted(), 1);

    // Coordinators are remembered: the next poll is offsets only.
    let again = read_all(&clients, &connection, &all, &wanted).await;
    assert!(again.iter().all(Result::is_ok));
    assert_eq!(broker.coordinator_lookups(), lookups);
    let more = named(&broker.offset_fetches()[fetches.len()..]);
    assert!(more.len() <= 4, "{more:?}");
    assert_eq!(more.iter().map(|(_, n)| n).sum::<usize>(), GROUPS);
    assert_eq!(broker.accepted(), 1);
    assert_eq!(clients.counts(), (0, 0));
}

#[tokio::test]
async fn old_brokers_get_one_request_per_group_on_the_same_connection() {
    let broker = broker_with_groups(3, 7, 5).await;
    let connection = connection(&broker.servers(), SaslSettings::None);
    let clients = KafkaClients::default();
    let all = groups(5);
    let wanted = partitions("t", &[0]);
    for (n, answer) in (0i64..).zip(read_all(&clients, &connection, &all, &wanted).await) {
        assert_eq!(offset(&answer.unwrap(), "t", 0), n);
    }
    let fetches = broker.offset_fetches();
    assert_eq!(fetches.len(), 5);
    assert!(
        fetches.iter().all(
            |seen| matches!(seen, Seen::OffsetFetch { version: 7, groups } if groups.len() == 1)
        )
    );
    assert_eq!(broker.coordinator_lookups().len(), 5);
    assert_eq!(broker.accepted(), 1);
}

#[tokio::test]
async fn not_coordinator_finds_the_coordinator_again_within_the_read() {
    let new_home =
        ScriptedBroker::start(Script::speaking(6, 9).with_offsets("g", &[("t", 0, 42)])).await;
    let old_home = ScriptedBroker::start(Script::speaking(6, 9)).await;
    old_home
        .script
        .fetch_errors
        .lock()
        .unwrap()
        .insert("g".to_owned(), VecDeque::from([codes::NOT_COORDINATOR]));
    // The first lookup names the old home itself; the second, the new home.
    old_home
        .script
        .coordinators
        .lock()
        .unwrap()
        .extend([old_home.address.clone(), new_home.address.clone()]);
    let connection = connection(&old_home.servers(), SaslSettings::None);
    let clients = KafkaClients::default();
    let offsets = clients
        .committed_offsets(&connection, "g", &partitions("t", &[0]), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(offset(&offsets, "t", 0), 42);
    assert_eq!(old_home.coordinator_lookups().len(), 2);
    assert_eq!(old_home.offset_fetches().len(), 1);
    assert_eq!(new_home.offset_fetches().len(), 1);
    // One connection each, kept.
    let stats = clients.offset_connections().unwrap();
    assert_eq!((stats.open(), stats.made()), (2, 2));
}

#[tokio::test]
async fn a_loading_coordinator_fails_the_read_and_the_next_poll_reads() {
    let broker =
        ScriptedBroker::start(Script::speaking(6, 9).with_offsets("g", &[("t", 0, 3)])).await;
    broker.script.fetch_errors.lock().unwrap().insert(
        "g".to_owned(),
        VecDeque::from([codes::COORDINATOR_LOAD_IN_PROGRESS]),
    );
    let connection = connection(&broker.servers(), SaslSettings::None);
    let clients = KafkaClients::default();
    let wanted = partitions("t", &[0]);
    let error = clients
        .committed_offsets(&connection, "g", &wanted, TIMEOUT)
        .await
        .unwrap_err();
    assert_eq!(error.category(), ErrorCategory::Connect, "{error}");
    assert!(error.to_string().contains("group `g`"), "{error}");
    assert!(
        error.to_string().contains("CoordinatorLoadInProgress"),
        "{error}"
    );
    // Not retried within the read: one OffsetFetch.
    assert_eq!(broker.offset_fetches().len(), 1);
    let offsets = clients
        .committed_offsets(&connection, "g", &wanted, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(offset(&offsets, "t", 0), 3);
    // The coordinator was kept (it is the coordinator, only busy), and so was the connection.
    assert_eq!(broker.coordinator_lookups().len(), 1);
    assert_eq!(broker.accepted(), 1);
}

#[tokio::test]
async fn other_group_errors_are_query_errors_naming_the_group() {
    let broker = ScriptedBroker::start(Script::speaking(6, 9)).await;
    // GROUP_AUTHORIZATION_FAILED.
    broker
        .script
        .fetch_errors
        .lock()
        .unwrap()
        .insert("secret".to_owned(), VecDeque::from([30]));
    let connection = connection(&broker.servers(), SaslSettings::None);
    let clients = KafkaClients::default();
    let wanted = partitions("t", &[0]);
    let (secret, open) = tokio::join!(
        clients.committed_offsets(&connection, "secret", &wanted, TIMEOUT),
        clients.committed_offsets(&connection, "open", &wanted, TIMEOUT),
    );
    let error = secret.unwrap_err();
    assert_eq!(error.category(), ErrorCategory::Query, "{error}");
    assert!(error.to_string().contains("group `secret`"), "{error}");
    // The other group of the same request is unaffected.
    assert_eq!(offset(&open.unwrap(), "t", 0), -1);
}

#[tokio::test]
async fn a_connection_the_broker_closed_while_idle_is_replaced_once() {
    let mut script = Script::speaking(6, 9).with_offsets("g", &[("t", 0, 9)]);
    // ApiVersions, FindCoordinator, OffsetFetch: then the broker drops the connection.
    script.close_after = Some(3);
    let broker = ScriptedBroker::start(script).await;
    let connection = connection(&broker.servers(), SaslSettings::None);
    let clients = KafkaClients::default();
    let wanted = partitions("t", &[0]);
    // Reads 1 and 3 end their connection's life; reads 2 and 4 find it closed and reconnect.
    for _ in 0..4 {
        let offsets = clients
            .committed_offsets(&connection, "g", &wanted, TIMEOUT)
            .await
            .unwrap();
        assert_eq!(offset(&offsets, "t", 0), 9);
    }
    assert_eq!(broker.accepted(), 3);
    assert_eq!(clients.offset_connections().unwrap().made(), 3);
}

#[tokio::test]
async fn a_broker_that_does_not_answer_is_a_timeout_within_the_budget() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let servers = listener.local_addr().unwrap().to_string();
    // Accepts, reads nothing, answers nothing.
    let _held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let connection = connection(&servers, SaslSettings::None);
    let clients = KafkaClients::default();
    let started = std::time::Instant::now();
    let error = clients
        .committed_offsets(
            &connection,
            "g",
            &partitions("t", &[0]),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
    assert_eq!(error.category(), ErrorCategory::Timeout, "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(error.to_string().contains(&servers), "{error}");
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let servers = listener.local_addr().unwrap().to_string();
    drop(listener);
    let connection = connection(&servers, SaslSettings::None);
    let clients = KafkaClients::default();
    let error = clients
        .committed_offsets(&connection, "g", &partitions("t", &[0]), TIMEOUT)
        .await
        .unwrap_err();
    assert_eq!(error.category(), ErrorCategory::Connect, "{error}");
    assert!(
        error.to_string().contains("connecting to broker"),
        "{error}"
    );
}

#[tokio::test]
async fn a_broker_without_the_apis_falls_back_to_the_group_readers() {
    // OffsetFetch not offered at all.
    let mut script = Script::speaking(6, 9);
    script
        .versions
        .retain(|(key, _)| *key != ApiKey::OffsetFetch);
    let broker = ScriptedBroker::start(script).await;
    let connection = connection(&broker.servers(), SaslSettings::None);
    let clients = KafkaClients::default();
    // The librdkafka reader cannot talk to the scripted broker either; what matters is that
    // it was the one asked.
    let result = clients
        .committed_offsets(
            &connection,
            "g",
            &partitions("t", &[0]),
            Duration::from_millis(500),
        )
        .await;
    assert!(result.is_err());
    let reason = clients.group_reader_reason(&connection).unwrap();
    assert!(reason.contains("does not offer OffsetFetch"), "{reason}");
    assert_eq!(clients.counts(), (0, 1));
}

#[test]
fn encrypted_keys_keep_the_group_readers() {
    let tls = TlsSettings {
        key_password: Some("p".into()),
        ..TlsSettings::default()
    };
    assert!(unsupported_settings(Some(&tls)).is_some());
    assert!(unsupported_settings(Some(&TlsSettings::default())).is_none());
    assert!(unsupported_settings(None).is_none());
    let readers = OffsetReaders::default();
    let connection = KafkaConnection::new(&["a:9092".to_owned()], Some(&tls), &SaslSettings::None);
    assert!(matches!(
        readers.route(&connection, None),
        Ok(Route::Readers(reason)) if reason.contains("keyPassword")
    ));
}

#[test]
fn bootstrap_servers_parse_as_librdkafka_takes_them() {
    let parse = |s: &str| BrokerAddress::parse(s).map(|a| (a.host, a.port));
    assert_eq!(parse("kafka:9093"), Some(("kafka".into(), 9093)));
    assert_eq!(parse(" kafka "), Some(("kafka".into(), 9092)));
    assert_eq!(
        parse("PLAINTEXT://kafka:19092"),
        Some(("kafka".into(), 19092))
    );
    assert_eq!(parse("[::1]:9092"), Some(("::1".into(), 9092)));
    assert_eq!(parse("::1"), Some(("::1".into(), 9092)));
    assert_eq!(parse("kafka:port"), None);
    assert_eq!(parse(""), None);
    assert_eq!(
        BrokerAddress::parse("[::1]:9092").unwrap().to_string(),
        "[::1]:9092"
    );
}

async fn sasl_broker(sasl: ServerSasl) -> ScriptedBroker {
    let mut script = Script::speaking(6, 9).with_offsets("g", &[("t", 0, 11)]);
    script.sasl = Some(sasl);
    ScriptedBroker::start(script).await
}

#[tokio::test]
async fn sasl_plain_and_scram_authenticate_each_connection() {
    let credentials = |username: &str, password: &str| (username.to_owned(), password.to_owned());
    let cases = [
        (
            "PLAIN",
            ServerSasl::Plain {
                username: "u".into(),
                password: "p".into(),
            },
            (|(username, password)| SaslSettings::Plain { username, password })
                as fn((String, String)) -> SaslSettings,
        ),
        (
            "SCRAM-SHA-256",
            ServerSasl::Scram {
                hash: ScramHash::Sha256,
                username: "u".into(),
                password: "p".into(),
            },
            |(username, password)| SaslSettings::ScramSha256 { username, password },
        ),
        (
            "SCRAM-SHA-512",
            ServerSasl::Scram {
                hash: ScramHash::Sha512,
                username: "u".into(),
                password: "p".into(),
            },
            |(username, password)| SaslSettings::ScramSha512 { username, password },
        ),
    ];
    for (mechanism, server, client) in cases {
        let broker = sasl_broker(server).await;
        let clients = KafkaClients::default();
        let wanted = partitions("t", &[0]);
        let good = connection(&broker.servers(), client(credentials("u", "p")));
        let offsets = clients
            .committed_offsets(&good, "g", &wanted, TIMEOUT)
            .await
            .unwrap_or_else(|error| panic!("{mechanism}: {error}"));
        assert_eq!(offset(&offsets, "t", 0), 11, "{mechanism}");
        assert!(
            broker
                .seen()
                .contains(&Seen::SaslHandshake(mechanism.to_owned())),
            "{mechanism}"
        );

        let bad = connection(&broker.servers(), client(credentials("u", "wrong")));
        let error = clients
            .committed_offsets(&bad, "g", &wanted, TIMEOUT)
            .await
            .unwrap_err();
        assert_eq!(
            error.category(),
            ErrorCategory::Connect,
            "{mechanism}: {error}"
        );
        assert!(
            error.to_string().contains(&format!("SASL {mechanism}")),
            "{error}"
        );
        assert!(!error.to_string().contains("wrong"), "{error}");
    }
}

#[tokio::test]
async fn a_mechanism_the_broker_does_not_offer_is_named() {
    let broker = sasl_broker(ServerSasl::Plain {
        username: "u".into(),
        password: "p".into(),
    })
    .await;
    let clients = KafkaClients::default();
    let scram = connection(
        &broker.servers(),
        SaslSettings::ScramSha512 {
            username: "u".into(),
            password: "p".into(),
        },
    );
    let error = clients
        .committed_offsets(&scram, "g", &partitions("t", &[0]), TIMEOUT)
        .await
        .unwrap_err();
    assert_eq!(error.category(), ErrorCategory::Connect, "{error}");
    assert!(
        error.to_string().contains("the broker offers PLAIN"),
        "{error}"
    );
}

#[tokio::test]
async fn oauthbearer_sends_the_token_source_s_token() {
    use crate::kafka_auth::tests::token_endpoint::{Endpoint, json};

    crate::context::install_crypto_provider();
    let endpoint =
        Endpoint::start(|_, _| json(200, r#"{"access_token":"tok-1","expires_in":3600}"#)).await;
    let broker = sasl_broker(ServerSasl::OAuthBearer {
        token: "tok-1".into(),
    })
    .await;
    let credentials = OAuthClientCredentials {
        client_id: "windlass".into(),
        client_secret: "s".into(),
        token_endpoint: endpoint.url.clone(),
        scopes: Vec::new(),
    };
    let clients = KafkaClients::default();
    let wanted = partitions("t", &[0]);
    let good = connection(
        &broker.servers(),
        SaslSettings::OAuthBearer(credentials.clone()),
    );
    let offsets = clients
        .committed_offsets(&good, "g", &wanted, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(offset(&offsets, "t", 0), 11);
    assert!(
        broker
            .seen()
            .contains(&Seen::SaslAuthenticate(oauthbearer_message("tok-1")))
    );
    assert_eq!(endpoint.requests().len(), 1);

    // A broker that refuses the token: its error challenge is acknowledged and reported.
    let refusing = sasl_broker(ServerSasl::OAuthBearer {
        token: "other".into(),
    })
    .await;
    let bad = connection(&refusing.servers(), SaslSettings::OAuthBearer(credentials));
    let error = clients
        .committed_offsets(&bad, "g", &wanted, TIMEOUT)
        .await
        .unwrap_err();
    assert_eq!(error.category(), ErrorCategory::Connect, "{error}");
    assert!(error.to_string().contains("invalid_token"), "{error}");
    assert!(refusing.seen().contains(&Seen::SaslAuthenticate(vec![1])));
}

#[tokio::test]
async fn a_bounded_session_is_replaced_before_it_ends() {
    let mut script = Script::speaking(6, 9).with_offsets("g", &[("t", 0, 5)]);
    script.sasl = Some(ServerSasl::Plain {
        username: "u".into(),
        password: "p".into(),
    });
    // The broker ends sessions after 50 ms (KIP-368).
    script.session_lifetime_ms = 50;
    let broker = ScriptedBroker::start(script).await;
    let good = connection(
        &broker.servers(),
        SaslSettings::Plain {
            username: "u".into(),
            password: "p".into(),
        },
    );
    let clients = KafkaClients::default();
    let wanted = partitions("t", &[0]);
    clients
        .committed_offsets(&good, "g", &wanted, TIMEOUT)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    clients
        .committed_offsets(&good, "g", &wanted, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(broker.accepted(), 2);
    assert_eq!(clients.offset_connections().unwrap().open(), 1);
}

/// A CA, and a server and a client certificate it signed (for 127.0.0.1).
struct Pki {
    ca: String,
    server: (String, String),
    client: (String, String),
}

impl Pki {
    fn generate() -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
            SanType,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |purpose| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
            params
                .subject_alt_names
                .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
            params.extended_key_usages = vec![purpose];
            let cert = params.signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        Self {
            ca: ca.pem(),
            server: leaf(ExtendedKeyUsagePurpose::ServerAuth),
            client: leaf(ExtendedKeyUsagePurpose::ClientAuth),
        }
    }

    /// The broker's TLS: its certificate, and client certificates required when `mutual`.
    fn server_config(&self, mutual: bool) -> Arc<rustls::ServerConfig> {
        use crate::nats_client::{parse_certificates, parse_key};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if mutual {
            let mut roots = RootCertStore::empty();
            for cert in parse_certificates(&self.ca).unwrap() {
                roots.add(cert).unwrap();
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        Arc::new(
            builder
                .with_single_cert(
                    parse_certificates(&self.server.0).unwrap(),
                    parse_key(&self.server.1).unwrap(),
                )
                .unwrap(),
        )
    }
}

fn tls_connection(servers: &str, tls: TlsSettings) -> KafkaConnection {
    KafkaConnection::new(&[servers.to_owned()], Some(&tls), &SaslSettings::None)
}

#[tokio::test]
async fn tls_is_verified_with_the_trigger_s_ca_or_skipped_with_unsafe_ssl() {
    let pki = Pki::generate();
    let broker = ScriptedBroker::start_with(
        Script::speaking(6, 9).with_offsets("g", &[("t", 0, 8)]),
        Some(pki.server_config(false)),
    )
    .await;
    let clients = KafkaClients::default();
    let wanted = partitions("t", &[0]);
    let read = |tls| {
        let connection = tls_connection(&broker.servers(), tls);
        let clients = &clients;
        let wanted = &wanted;
        async move {
            clients
                .committed_offsets(&connection, "g", wanted, TIMEOUT)
                .await
        }
    };
    let with_ca = read(TlsSettings {
        ca: Some(pki.ca.clone()),
        ..TlsSettings::default()
    })
    .await
    .unwrap();
    assert_eq!(offset(&with_ca, "t", 0), 8);
    let unsafe_ssl = read(TlsSettings {
        skip_verify: true,
        ..TlsSettings::default()
    })
    .await
    .unwrap();
    assert_eq!(offset(&unsafe_ssl, "t", 0), 8);

    // Another CA: the handshake fails, a connect error naming the broker.
    let other = Pki::generate();
    let error = read(TlsSettings {
        ca: Some(other.ca.clone()),
        ..TlsSettings::default()
    })
    .await
    .unwrap_err();
    assert_eq!(error.category(), ErrorCategory::Connect, "{error}");
    assert!(
        error.to_string().contains("TLS handshake with broker"),
        "{error}"
    );

    // Plain text to a TLS broker: refused as such, not a hang nor a huge allocation.
    let plain = connection(&broker.servers(), SaslSettings::None);
    let error = clients
        .committed_offsets(&plain, "g", &wanted, TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error.category(),
            ErrorCategory::Connect | ErrorCategory::Timeout
        ),
        "{error}"
    );

    // A CA that is not PEM: a metadata error, before any connection.
    let error = read(TlsSettings {
        ca: Some("not a certificate".into()),
        ..TlsSettings::default()
    })
    .await
    .unwrap_err();
    assert_eq!(error.category(), ErrorCategory::Metadata, "{error}");
}

#[tokio::test]
async fn the_client_certificate_is_presented_to_brokers_that_require_one() {
    let pki = Pki::generate();
    let broker = ScriptedBroker::start_with(
        Script::speaking(6, 9).with_offsets("g", &[("t", 0, 4)]),
        Some(pki.server_config(true)),
    )
    .await;
    let clients = KafkaClients::default();
    let wanted = partitions("t", &[0]);
    let mutual = tls_connection(
        &broker.servers(),
        TlsSettings {
            ca: Some(pki.ca.clone()),
            cert: Some(pki.client.0.clone()),
            key: Some(pki.client.1.clone()),
            ..TlsSettings::default()
        },
    );
    let offsets = clients
        .committed_offsets(&mutual, "g", &wanted, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(offset(&offsets, "t", 0), 4);

    let anonymous = tls_connection(
        &broker.servers(),
        TlsSettings {
            ca: Some(pki.ca.clone()),
            ..TlsSettings::default()
        },
    );
    let error = clients
        .committed_offsets(&anonymous, "g", &wanted, TIMEOUT)
        .await
        .unwrap_err();
    assert_eq!(error.category(), ErrorCategory::Connect, "{error}");
}

/// Threads of this process (Linux).
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

/// The figure behind this module: threads added by reading `GROUPS` groups of a three-broker
/// cluster through librdkafka's per-group readers, and through the direct reader. Thread counts
/// are process-wide, so this runs alone:
/// `cargo test -p scalers --lib thread_cost -- --ignored --test-threads=1 --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measures process-wide threads: run alone with --test-threads=1"]
async fn thread_cost_of_reading_many_groups() {
    const GROUPS: usize = 50;
    let mock = MockCluster::new(3).unwrap();
    mock.create_topic("t", 1, 1).unwrap();
    let all: Vec<String> = (0..GROUPS).map(|n| format!("g{n}")).collect();
    for group in &all {
        commit(&mock, group, &[("t", 0, 1)]);
    }
    let connection = connection(&mock.bootstrap_servers(), SaslSettings::None);
    let wanted = partitions("t", &[0]);
    // Settle: the commits' clients are gone, the blocking pool is warm.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let before = threads();
    let direct = KafkaClients::default();
    assert!(
        read_all(&direct, &connection, &all, &wanted)
            .await
            .iter()
            .all(Result::is_ok)
    );
    let with_direct = threads();
    let connections = direct.offset_connections().unwrap().open();

    let readers = KafkaClients::with_group_readers_only(Duration::from_secs(600));
    assert!(
        read_all(&readers, &connection, &all, &wanted)
            .await
            .iter()
            .all(Result::is_ok)
    );
    let with_readers = threads();
    eprintln!(
        "{GROUPS} groups, 3 brokers: direct reader +{} threads, {connections} connections, {:?} librdkafka clients; per-group readers +{} threads, {:?} librdkafka clients",
        with_direct.saturating_sub(before),
        direct.counts(),
        with_readers.saturating_sub(with_direct),
        readers.counts(),
    );
    assert_eq!(direct.counts(), (0, 0));
    assert_eq!(readers.counts(), (0, GROUPS));
    assert!(
        with_direct.saturating_sub(before) < 8,
        "{before} → {with_direct}"
    );
    assert!(
        with_readers - with_direct > GROUPS,
        "{with_direct} → {with_readers}"
    );
}
