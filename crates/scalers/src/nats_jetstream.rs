//! `nats-jetstream` triggers: the lag of one JetStream consumer, read from the NATS monitoring
//! endpoint as KEDA reads it, or (a Windlass extension) asked of the JetStream API.
//!
//! # Parameters
//!
//! | Key | Source | Required | Default | Meaning |
//! |---|---|---|---|---|
//! | `natsServerMonitoringEndpoint` | A, M | one of the two | – | `host:port` of the NATS HTTP monitoring port, without scheme, e.g. `nats.nats.svc.cluster.local:8222` (KEDA's mode). |
//! | `natsServerURL` | A, M | one of the two | – | Windlass only: NATS client URL(s), comma-separated (`nats://nats.nats:4222`, `tls://…`); the lag is asked of the JetStream API, no monitoring port needed. |
//! | `account` | A, M | monitoring: one of the two | – | Account name (`$G` when NATS has no accounts configured). |
//! | `accountID` | A, M | monitoring: one of the two | `account` | Account id, sent as the `acc` query parameter. |
//! | `stream` | M | yes | – | Stream name. |
//! | `consumer` | M | yes | – | Consumer (durable) name. |
//! | `lagThreshold` | M | no | `10` | Integer (JSON rules); the HPA target. |
//! | `activationLagThreshold` | M | no | `0` | Integer; active iff the lag is greater. |
//! | `useHttps` | M | no | `false` | Boolean (Go `ParseBool`); scheme of the monitoring calls. |
//! | `username`, `password` | A | no | – | `natsServerURL` only: user and password. |
//! | `token` | A | no | – | `natsServerURL` only: authorization token. |
//! | `nkeySeed` | A | no | – | `natsServerURL` only: an nkey user seed (`SU…`). |
//! | `credentials` | A | no | – | `natsServerURL` only: the content of a `.creds` file (user JWT and seed). |
//! | `ca` | A | no | – | PEM CA bundle that replaces the system roots: for `natsServerURL`, and for the monitoring calls with `useHttps`. |
//! | `cert`, `key` | A | together | – | PEM client certificate and key for mutual TLS, same scope as `ca`. |
//!
//! Sources: M is the trigger's `metadata`, A the TriggerAuthentication's parameters; where both
//! are listed, the first non-empty value in that order wins (so a TriggerAuthentication
//! overrides the metadata). Values are trimmed and an empty value counts as missing.
//!
//! Exactly one of `natsServerMonitoringEndpoint` and `natsServerURL` is set. At most one kind
//! of NATS credentials (`username`/`password`, `token`, `nkeySeed`, `credentials`) is given.
//! In monitoring mode the NATS credentials are ignored, as KEDA ignores them; in native mode
//! `account`, `accountID` and `useHttps` are ignored (the credentials decide the account).
//!
//! # Lag
//!
//! Lag = `num_pending + num_ack_pending` of the consumer (messages not yet delivered plus
//! delivered but unacknowledged). Metric: `s<index>-nats-jetstream-<stream>`, target
//! `lagThreshold`; active iff lag > `activationLagThreshold`.
//!
//! **Monitoring mode** (KEDA's): `GET <scheme>://<endpoint>/jsz?acc=<accountID>&config=true&consumers=true`
//! (parameters encoded and sorted as Go's `url.Values`), then the account whose `id` is
//! `accountID` or whose `name` is `account`, its stream, its consumer. On a cluster
//! (`meta_cluster.cluster_size > 1`) the figure comes from the node that leads the consumer:
//! `/varz` of the endpoint lists the nodes' client URLs (`connect_urls`); each node is asked at
//! `<its host>:<the endpoint's port>` for its `server_name` and `/jsz`, and the node named by
//! the consumer's `cluster.leader` is used and remembered by this trigger. Without advertised
//! URLs (`no_advertise`), the route URLs in `cluster.urls` name the nodes (first DNS label),
//! asked at `<node>.<endpoint>` (a headless Service). The next sample asks the remembered node
//! first; when that node no longer holds the consumer, or names another leader, the search
//! starts again.
//!
//! **Native mode** (`natsServerURL`): the request `$JS.API.CONSUMER.INFO.<stream>.<consumer>`
//! on one NATS connection per servers, credentials and TLS settings, shared by every trigger
//! (`crate::nats_client`); async-nats reconnects by itself. JetStream answers from the
//! consumer leader, so clusters need nothing more.
//!
//! Errors: `consumer "<c>" not found in stream "<s>"` (KEDA's text; a missing stream or
//! account adds why), `leader node not found for consumer <c>` on a cluster where no node
//! claims the lead, HTTP or NATS connection failures (connect errors), answers that are not
//! the expected JSON (query errors). HTTP status codes are not checked, as in KEDA: an error
//! page fails to decode.
//!
//! # Differences from KEDA
//!
//! - KEDA keeps the last stream it found between samples, so a stream deleted on a
//!   single server keeps reporting its last lag; Windlass reports the stream as missing. For
//!   a stream that never existed KEDA says `consumer "<c>" not found in stream "<s>"`, which
//!   Windlass keeps, adding the reason.
//! - When the remembered leader node cannot be reached, Windlass forgets it and asks the
//!   configured endpoint again in the same sample (KEDA fails the sample and rebuilds the
//!   scaler, which forgets it too, then retries once).
//! - While searching a cluster, a node that cannot be reached is skipped instead of failing
//!   the sample; if no reachable node leads the consumer, the error lists the unreachable ones.
//!   When no node holds the consumer at all, the error is the "not found" one instead of
//!   "leader node not found".
//! - IPv6 hosts in `connect_urls` keep their brackets (KEDA splits at the first `:`).
//!
//! # Example
//!
//! ```yaml
//! triggers:
//! - type: nats-jetstream
//!   metadata:
//!     natsServerMonitoringEndpoint: "nats.nats.svc.cluster.local:8222"
//!     account: "$G"
//!     stream: "mystream"
//!     consumer: "pull_consumer"
//!     lagThreshold: "10"
//!     activationLagThreshold: "15"
//!     useHttps: "false"
//! ```
//!
//! Native mode with a user and password from a Secret:
//!
//! ```yaml
//! apiVersion: keda.sh/v1alpha1
//! kind: TriggerAuthentication
//! metadata:
//!   name: nats-auth
//! spec:
//!   secretTargetRef:
//!   - {parameter: username, name: nats-secret, key: user}
//!   - {parameter: password, name: nats-secret, key: password}
//!   - {parameter: ca, name: nats-secret, key: ca.crt}
//! ---
//! # in the ScaledObject
//! triggers:
//! - type: nats-jetstream
//!   authenticationRef:
//!     name: nats-auth
//!   metadata:
//!     natsServerURL: "tls://nats.nats.svc.cluster.local:4222"
//!     stream: "mystream"
//!     consumer: "pull_consumer"
//!     lagThreshold: "10"
//! ```

use std::sync::{Arc, Mutex, PoisonError};

use async_nats::RequestErrorKind;
use async_nats::connection::State;
use async_trait::async_trait;
use scaler_core::metric::ExternalMetric;
use scaler_core::params::{ParamError, ParamReader, order};
use scaler_core::registry::{ScalerKind, TriggerConfig};
use scaler_core::{
    MetricName, MetricSpec, ParamErrors, Sample, SampleRequest, Scaler, ScalerError,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::ScalerContext;
use crate::http::TlsOptions;
use crate::nats_client::{self, NatsAuth, NatsConnectionKey};

mod defaults {
    pub const LAG_THRESHOLD: &str = "10";
    pub const ACTIVATION_LAG_THRESHOLD: &str = "0";
    pub const USE_HTTPS: &str = "false";
}

/// JetStream API error codes the scaler tells apart.
mod api_codes {
    pub const STREAM_NOT_FOUND: u64 = 10059;
    pub const CONSUMER_NOT_FOUND: u64 = 10014;
}

/// Where the lag is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// KEDA's mode: the HTTP monitoring endpoint.
    Monitoring(Monitoring),
    /// Windlass's native mode: the JetStream API over a NATS connection.
    Native(Native),
}

/// The monitoring endpoint and how to find the account in its answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Monitoring {
    /// `host:port`, without scheme.
    pub endpoint: String,
    /// The account name, if given.
    pub account: Option<String>,
    /// The account id (the name when no id is given); matched against `id` or `name`.
    pub account_id: String,
    pub use_https: bool,
    /// CA and client certificate for the HTTPS calls (empty without `useHttps`).
    pub tls: TlsOptions,
}

/// A NATS connection: servers, credentials and TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Native {
    pub connection: NatsConnectionKey,
}

/// A `nats-jetstream` trigger's parameters, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub source: Source,
    pub stream: String,
    pub consumer: String,
    pub lag_threshold: i64,
    pub activation_lag_threshold: i64,
}

/// The NATS credential keys, in the order they are reported.
const CREDENTIAL_KEYS: &str = "`username`/`password`, `token`, `nkeySeed` or `credentials`";

impl Metadata {
    pub fn parse(config: &TriggerConfig) -> Result<Self, ParamErrors> {
        let mut reader = ParamReader::new(&config.params);
        if let Err(error) = config.external_target_type() {
            reader.error(error);
        }
        let account = reader.key("account", order::A_M).string();
        let account_id = reader.key("accountID", order::A_M).string();
        let stream = reader.key("stream", order::M).required().string();
        let consumer = reader.key("consumer", order::M).required().string();
        let lag_threshold = reader
            .key("lagThreshold", order::M)
            .default(defaults::LAG_THRESHOLD)
            .int();
        let activation_lag_threshold = reader
            .key("activationLagThreshold", order::M)
            .default(defaults::ACTIVATION_LAG_THRESHOLD)
            .int();
        let use_https = reader
            .key("useHttps", order::M)
            .default(defaults::USE_HTTPS)
            .bool();
        let monitoring_endpoint = reader
            .key("natsServerMonitoringEndpoint", order::A_M)
            .string();
        let server_urls = reader.key("natsServerURL", order::A_M).list();

        let source = match (monitoring_endpoint, server_urls) {
            (Some(_), Some(_)) => {
                reader.error(
                    ParamError::new(
                        "natsServerURL",
                        "both natsServerMonitoringEndpoint and natsServerURL are set; a trigger reads the lag either from the monitoring endpoint or from the JetStream API",
                    )
                    .with_hint("keep natsServerMonitoringEndpoint (KEDA's mode, host:port of the monitoring port) or natsServerURL (nats://host:4222), not both"),
                );
                None
            }
            (None, None) => {
                reader.error(
                    ParamError::new(
                        "natsServerMonitoringEndpoint",
                        "missing required parameter \"natsServerMonitoringEndpoint\" in [authParams triggerMetadata]",
                    )
                    .with_hint("set `metadata.natsServerMonitoringEndpoint` to the host:port of the NATS monitoring port (e.g. \"nats.nats.svc.cluster.local:8222\"), or `metadata.natsServerURL` to a NATS client URL (e.g. \"nats://nats.nats:4222\") to ask the JetStream API instead"),
                );
                None
            }
            (Some(endpoint), None) => {
                let account_id = account_id.or_else(|| account.clone());
                let tls = if use_https == Some(true) {
                    read_tls(&mut reader)
                } else {
                    Some(TlsOptions::default())
                };
                match (account_id, tls) {
                    (Some(account_id), Some(tls)) => Some(Source::Monitoring(Monitoring {
                        endpoint,
                        account,
                        account_id,
                        use_https: use_https.unwrap_or(false),
                        tls,
                    })),
                    (account_id, _) => {
                        if account_id.is_none() {
                            reader.error(
                                ParamError::new("account", "no account name or id given").with_hint(
                                    "set `account` (e.g. \"$G\" when NATS has no accounts) or `accountID` in the trigger metadata or the TriggerAuthentication",
                                ),
                            );
                        }
                        None
                    }
                }
            }
            (None, Some(urls)) => {
                let servers = read_servers(&mut reader, urls);
                let auth = read_auth(&mut reader);
                let tls = read_tls(&mut reader);
                for (key, name) in [("stream", &stream), ("consumer", &consumer)] {
                    if let Some(name) = name {
                        check_api_name(&mut reader, key, name);
                    }
                }
                match (servers, auth, tls) {
                    (Some(servers), Some(auth), Some(tls)) => Some(Source::Native(Native {
                        connection: NatsConnectionKey { servers, auth, tls },
                    })),
                    _ => None,
                }
            }
        };

        match (
            source,
            stream,
            consumer,
            lag_threshold,
            activation_lag_threshold,
        ) {
            (
                Some(source),
                Some(stream),
                Some(consumer),
                Some(lag_threshold),
                Some(activation_lag_threshold),
            ) if !reader.has_errors() => reader.finish(Self {
                source,
                stream,
                consumer,
                lag_threshold,
                activation_lag_threshold,
            }),
            _ => Err(reader
                .finish(())
                .err()
                .unwrap_or_else(|| ParamErrors(Vec::new()))),
        }
    }

    /// The scaler's metric name before indexing: `nats-jetstream-<stream>`.
    pub fn metric_local_name(&self) -> String {
        format!("nats-jetstream-{}", self.stream)
    }
}

/// `natsServerURL`: each item a server address async-nats accepts.
fn read_servers(reader: &mut ParamReader<'_>, urls: Vec<String>) -> Option<Vec<String>> {
    let mut ok = true;
    for url in &urls {
        let problem = if url.is_empty() {
            Some("an empty server URL in the list".to_owned())
        } else {
            nats_client::parse_server(url).err()
        };
        if let Some(problem) = problem {
            ok = false;
            reader.error(
                ParamError::new(
                    "natsServerURL",
                    format!("{url:?} is not a NATS server URL: {problem}"),
                )
                .with_hint("write NATS client URLs separated by commas, like \"nats://nats.nats:4222\" or \"tls://nats-0.nats:4222,tls://nats-1.nats:4222\""),
            );
        }
    }
    ok.then_some(urls)
}

/// At most one kind of NATS credentials.
fn read_auth(reader: &mut ParamReader<'_>) -> Option<NatsAuth> {
    let username = reader.key("username", order::A).string();
    let password = reader.key("password", order::A).string();
    let token = reader.key("token", order::A).string();
    let nkey_seed = reader.key("nkeySeed", order::A).string();
    let credentials = reader.key("credentials", order::A).string();
    let mut kinds: Vec<(&'static str, NatsAuth)> = Vec::new();
    match (username, password) {
        (Some(user), Some(password)) => {
            kinds.push(("username", NatsAuth::UserPassword { user, password }));
        }
        (Some(_), None) => {
            reader.error(
                ParamError::new("password", "username is set but password is not")
                    .with_hint("add parameter `password` to the TriggerAuthentication"),
            );
            return None;
        }
        (None, Some(_)) => {
            reader.error(
                ParamError::new("username", "password is set but username is not")
                    .with_hint("add parameter `username` to the TriggerAuthentication"),
            );
            return None;
        }
        (None, None) => {}
    }
    if let Some(token) = token {
        kinds.push(("token", NatsAuth::Token(token)));
    }
    if let Some(seed) = nkey_seed {
        kinds.push(("nkeySeed", NatsAuth::NkeySeed(seed)));
    }
    if let Some(creds) = credentials {
        kinds.push(("credentials", NatsAuth::Credentials(creds)));
    }
    if let [(first, _), (second, _), ..] = kinds.as_slice() {
        reader.error(
            ParamError::new(
                *second,
                format!("{first} and {second} are both set; NATS takes one kind of credentials"),
            )
            .with_hint(format!(
                "keep only one of {CREDENTIAL_KEYS} in the TriggerAuthentication"
            )),
        );
        return None;
    }
    let Some((key, auth)) = kinds.pop() else {
        return Some(NatsAuth::None);
    };
    match nats_client::check_auth(&auth) {
        Ok(()) => Some(auth),
        Err(problem) => {
            reader.error(ParamError::new(key, problem).with_hint(match key {
                "nkeySeed" => "give the user's nkey seed, the line starting with \"SU\" (as `nk -gen user` prints it)",
                _ => "give the whole content of the .creds file, with its JWT and NKEY SEED blocks (as `nsc generate creds` writes it)",
            }));
            None
        }
    }
}

/// `ca`, `cert` and `key` as PEM text; cert and key together.
fn read_tls(reader: &mut ParamReader<'_>) -> Option<TlsOptions> {
    let ca = reader
        .key("ca", order::A)
        .parse_with("give the PEM text of the CA certificate(s)", |text| {
            nats_client::parse_certificates(text).map(|_| text.to_owned())
        });
    let cert = reader
        .key("cert", order::A)
        .parse_with("give the PEM text of the client certificate", |text| {
            nats_client::parse_certificates(text).map(|_| text.to_owned())
        });
    let key = reader
        .key("key", order::A)
        .parse_with("give the PEM text of the client private key", |text| {
            nats_client::parse_key(text).map(|_| text.to_owned())
        });
    let params = reader.params();
    let given = |name: &str| params.first(&[name], order::A).is_some();
    if given("ca") && ca.is_none()
        || given("cert") && cert.is_none()
        || given("key") && key.is_none()
    {
        return None;
    }
    match (&cert, &key) {
        (Some(_), None) => {
            reader.error(
                ParamError::new("key", "cert is set but key is not")
                    .with_hint("add the client private key as parameter `key`, or remove `cert`"),
            );
            return None;
        }
        (None, Some(_)) => {
            reader.error(
                ParamError::new("cert", "key is set but cert is not")
                    .with_hint("add the client certificate as parameter `cert`, or remove `key`"),
            );
            return None;
        }
        _ => {}
    }
    Some(TlsOptions {
        insecure_skip_verify: false,
        ca_pem: ca,
        client_cert_pem: cert,
        client_key_pem: key,
    })
}

/// Stream and consumer names become subject tokens of the JetStream API.
fn check_api_name(reader: &mut ParamReader<'_>, key: &'static str, name: &str) {
    if name
        .chars()
        .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace())
    {
        reader.error(
            ParamError::new(
                key,
                format!("{name:?} cannot name a JetStream {key}: it contains '.', '*', '>' or whitespace"),
            )
            .with_hint(format!("write the {key} name as JetStream shows it")),
        );
    }
}

/// Go's `url.QueryEscape`.
fn go_query_escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                escaped.push(char::from(byte));
            }
            b' ' => escaped.push('+'),
            _ => escaped.push_str(&format!("%{byte:02X}")),
        }
    }
    escaped
}

/// `host:port` → (`host`, `port`), as Go's `url.URL.Hostname`/`Port` read a URL's host.
fn split_host_port(host_port: &str) -> (&str, Option<&str>) {
    if let Some(rest) = host_port.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':').filter(|p| !p.is_empty())),
            None => (host_port, None),
        };
    }
    match host_port.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port).filter(|p| !p.is_empty())),
        _ => (host_port, None),
    }
}

/// Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl Monitoring {
    fn scheme(&self) -> &'static str {
        if self.use_https { "https" } else { "http" }
    }

    /// `<scheme>://<host>/jsz?acc=<accountID>&config=true&consumers=true`.
    fn jsz_url(&self, host: &str) -> String {
        format!(
            "{}://{host}/jsz?acc={}&config=true&consumers=true",
            self.scheme(),
            go_query_escape(&self.account_id)
        )
    }

    /// `<scheme>://<host>/varz`.
    fn varz_url(&self, host: &str) -> String {
        format!("{}://{host}/varz", self.scheme())
    }

    /// A node's host with the configured endpoint's port, if it has one.
    fn node_host(&self, hostname: &str) -> String {
        match split_host_port(&self.endpoint).1 {
            Some(port) => join_host_port(hostname, port),
            None => hostname.to_owned(),
        }
    }

    /// A node named by a route URL without advertised client URLs: `<node>.<endpoint>`.
    fn headless_host(&self, node: &str) -> String {
        format!("{node}.{}", self.endpoint)
    }

    fn is_account(&self, account: &AccountDetail) -> bool {
        account.id == self.account_id || self.account.as_deref() == Some(account.name.as_str())
    }
}

/// A JSON array or object that Go may also write as `null`.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The parts of `/jsz` the scaler reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Jsz {
    #[serde(deserialize_with = "nullable")]
    account_details: Vec<AccountDetail>,
    #[serde(deserialize_with = "nullable")]
    meta_cluster: MetaCluster,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MetaCluster {
    cluster_size: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AccountDetail {
    id: String,
    name: String,
    #[serde(deserialize_with = "nullable")]
    stream_detail: Vec<StreamDetail>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StreamDetail {
    name: String,
    #[serde(deserialize_with = "nullable")]
    consumer_detail: Vec<ConsumerDetail>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ConsumerDetail {
    name: String,
    num_pending: i64,
    num_ack_pending: i64,
    #[serde(deserialize_with = "nullable")]
    cluster: ConsumerCluster,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ConsumerCluster {
    leader: String,
}

impl ConsumerDetail {
    fn lag(&self) -> i64 {
        self.num_pending.saturating_add(self.num_ack_pending)
    }
}

/// The parts of `/varz` the scaler reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Varz {
    server_name: String,
    #[serde(deserialize_with = "nullable")]
    connect_urls: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    cluster: VarzCluster,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct VarzCluster {
    #[serde(deserialize_with = "nullable")]
    urls: Vec<String>,
}

/// What one `/jsz` answer says about the consumer.
enum Found<'a> {
    Consumer(&'a ConsumerDetail),
    NoConsumer,
    NoStream,
    NoAccount,
}

fn find_consumer<'a>(jsz: &'a Jsz, monitoring: &Monitoring, metadata: &Metadata) -> Found<'a> {
    let mut found = Found::NoAccount;
    for account in jsz
        .account_details
        .iter()
        .filter(|a| monitoring.is_account(a))
    {
        if matches!(found, Found::NoAccount) {
            found = Found::NoStream;
        }
        for stream in account
            .stream_detail
            .iter()
            .filter(|s| s.name == metadata.stream)
        {
            found = Found::NoConsumer;
            if let Some(consumer) = stream
                .consumer_detail
                .iter()
                .find(|c| c.name == metadata.consumer)
            {
                return Found::Consumer(consumer);
            }
        }
    }
    found
}

/// The answer of the JetStream API to `CONSUMER.INFO`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ApiResponse {
    Error { error: ApiError },
    Info(ConsumerInfo),
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ApiError {
    code: u64,
    err_code: u64,
    description: String,
}

#[derive(Debug, Deserialize)]
struct ConsumerInfo {
    num_pending: i64,
    num_ack_pending: i64,
}

/// What went wrong while sampling; converted to a [`ScalerError`] category at the boundary.
#[derive(Debug, thiserror::Error)]
enum NatsError {
    #[error("unable to access NATS JetStream monitoring endpoint {url}: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("unable to decode NATS JetStream {what} from {url} (HTTP {status}): {source}")]
    Decode {
        what: &'static str,
        url: String,
        status: u16,
        source: serde_json::Error,
    },
    #[error("consumer {consumer:?} not found in stream {stream:?}{why}")]
    ConsumerNotFound {
        consumer: String,
        stream: String,
        why: String,
    },
    #[error("leader node not found for consumer {consumer}{why}")]
    LeaderNotFound { consumer: String, why: String },
    #[error(
        "not connected to NATS at {servers}: the connection was lost and the client is reconnecting"
    )]
    NotConnected { servers: String },
    #[error(
        "no JetStream answer for consumer {consumer:?} of stream {stream:?}: JetStream is not enabled for this account on {servers} (no responders)"
    )]
    NoResponders {
        consumer: String,
        stream: String,
        servers: String,
    },
    #[error("JetStream did not answer within the request timeout ({servers})")]
    RequestTimeout { servers: String },
    #[error("JetStream request to {servers} failed: {source}")]
    Request {
        servers: String,
        source: async_nats::RequestError,
    },
    #[error("JetStream API error {code} (err_code {err_code}): {description}")]
    Api {
        code: u64,
        err_code: u64,
        description: String,
    },
    #[error("unable to decode the JetStream consumer info: {0}")]
    ApiDecode(serde_json::Error),
    #[error("{0}")]
    Scaler(ScalerError),
}

impl NatsError {
    /// The monitoring node could not be reached at all (as opposed to a bad answer).
    fn is_unreachable(&self) -> bool {
        matches!(self, Self::Http { .. })
    }
}

impl From<ScalerError> for NatsError {
    fn from(error: ScalerError) -> Self {
        Self::Scaler(error)
    }
}

impl From<NatsError> for ScalerError {
    fn from(error: NatsError) -> Self {
        let message = error.to_string();
        match error {
            NatsError::Scaler(error) => error,
            NatsError::Http { source, .. } if source.is_timeout() => ScalerError::timeout(message),
            NatsError::Http { .. } | NatsError::NotConnected { .. } | NatsError::Request { .. } => {
                ScalerError::connect(message)
            }
            NatsError::RequestTimeout { .. } => ScalerError::timeout(message),
            NatsError::Decode { .. }
            | NatsError::ConsumerNotFound { .. }
            | NatsError::LeaderNotFound { .. }
            | NatsError::NoResponders { .. }
            | NatsError::Api { .. }
            | NatsError::ApiDecode(_) => ScalerError::query(message),
        }
    }
}

/// The node found to lead the consumer, remembered between samples.
#[derive(Clone, Debug, PartialEq, Eq)]
struct LeaderCache {
    /// The consumer's `cluster.leader` (a server name).
    leader: String,
    /// That node's `/jsz` URL.
    url: String,
}

/// A built `nats-jetstream` trigger.
#[derive(Debug)]
pub struct NatsJetStreamScaler {
    metadata: Metadata,
    metric: ExternalMetric,
    context: ScalerContext,
    leader: Mutex<Option<LeaderCache>>,
}

impl NatsJetStreamScaler {
    /// Parses `config` into a scaler that samples through `context`'s shared connections.
    pub fn new(config: &TriggerConfig, context: &ScalerContext) -> Result<Self, ParamErrors> {
        let metadata = Metadata::parse(config)?;
        let metric =
            config.external_metric(&metadata.metric_local_name(), metadata.lag_threshold as f64)?;
        Ok(Self {
            metadata,
            metric,
            context: context.clone(),
            leader: Mutex::new(None),
        })
    }

    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The `/jsz` URL of the cluster node found to lead the consumer, if one was found (monitoring
    /// mode on a cluster); the next sample asks it first.
    pub fn cached_leader_url(&self) -> Option<String> {
        self.cache().map(|cache| cache.url)
    }

    fn cache(&self) -> Option<LeaderCache> {
        self.leader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_cache(&self, cache: Option<LeaderCache>) {
        *self.leader.lock().unwrap_or_else(PoisonError::into_inner) = cache;
    }

    async fn lag(&self) -> Result<i64, NatsError> {
        match &self.metadata.source {
            Source::Monitoring(monitoring) => self.monitoring_lag(monitoring).await,
            Source::Native(native) => self.native_lag(native).await,
        }
    }

    fn not_found(&self, found: &Found<'_>, monitoring: &Monitoring) -> NatsError {
        let why = match found {
            Found::Consumer(_) | Found::NoConsumer => String::new(),
            Found::NoStream => format!(
                " (account {:?} has no stream {:?})",
                monitoring.account_id, self.metadata.stream
            ),
            Found::NoAccount => format!(
                " (no JetStream account {:?} on this server)",
                monitoring.account_id
            ),
        };
        NatsError::ConsumerNotFound {
            consumer: self.metadata.consumer.clone(),
            stream: self.metadata.stream.clone(),
            why,
        }
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        client: &reqwest::Client,
        url: &str,
        what: &'static str,
    ) -> Result<T, NatsError> {
        let http = |source| NatsError::Http {
            url: url.to_owned(),
            source,
        };
        let response = client
            .get(url)
            .timeout(self.context.settings().default_timeout)
            .send()
            .await
            .map_err(http)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(http)?;
        serde_json::from_slice(&body).map_err(|source| NatsError::Decode {
            what,
            url: url.to_owned(),
            status,
            source,
        })
    }

    async fn monitoring_lag(&self, monitoring: &Monitoring) -> Result<i64, NatsError> {
        let client = self.context.http().client(&monitoring.tls).await?;
        let configured = monitoring.jsz_url(&monitoring.endpoint);
        let mut cached = self.cache();
        let jsz: Jsz = match &cached {
            Some(cache) => match self.get_json(&client, &cache.url, "account details").await {
                Ok(jsz) => jsz,
                Err(error) if error.is_unreachable() => {
                    // The remembered leader went away: start over from the configured endpoint.
                    self.set_cache(None);
                    cached = None;
                    self.get_json(&client, &configured, "account details")
                        .await?
                }
                Err(error) => return Err(error),
            },
            None => {
                self.get_json(&client, &configured, "account details")
                    .await?
            }
        };
        let found = find_consumer(&jsz, monitoring, &self.metadata);
        if let Some(cache) = &cached {
            match &found {
                Found::Consumer(consumer) if consumer.cluster.leader == cache.leader => {
                    return Ok(consumer.lag());
                }
                Found::Consumer(_) => {}
                // The remembered node no longer holds the consumer.
                _ => self.set_cache(None),
            }
        }
        if jsz.meta_cluster.cluster_size > 1 {
            return match self.find_leader(&client, monitoring).await {
                Ok((cache, lag)) => {
                    self.set_cache(Some(cache));
                    Ok(lag)
                }
                Err(error) => {
                    self.set_cache(None);
                    Err(error)
                }
            };
        }
        match found {
            Found::Consumer(consumer) => Ok(consumer.lag()),
            other => Err(self.not_found(&other, monitoring)),
        }
    }

    /// Asks every cluster node for the consumer and keeps the one that leads it.
    async fn find_leader(
        &self,
        client: &reqwest::Client,
        monitoring: &Monitoring,
    ) -> Result<(LeaderCache, i64), NatsError> {
        let varz: Varz = self
            .get_json(
                client,
                &monitoring.varz_url(&monitoring.endpoint),
                "server details",
            )
            .await?;
        let advertised = !varz.connect_urls.is_empty();
        let urls = if advertised {
            varz.connect_urls
        } else {
            varz.cluster.urls
        };
        let mut unreachable: Vec<String> = Vec::new();
        let mut held = false;
        for url in &urls {
            let (node, host) = if advertised {
                let host = monitoring.node_host(split_host_port(url).0);
                let server: Varz = match self
                    .get_json(client, &monitoring.varz_url(&host), "server details")
                    .await
                {
                    Ok(server) => server,
                    Err(error) => {
                        unreachable.push(error.to_string());
                        continue;
                    }
                };
                (server.server_name, host)
            } else {
                let node = url.split('.').next().unwrap_or_default().to_owned();
                let host = monitoring.headless_host(&node);
                (node, host)
            };
            let node_url = monitoring.jsz_url(&host);
            let jsz: Jsz = match self.get_json(client, &node_url, "account details").await {
                Ok(jsz) => jsz,
                Err(error) => {
                    unreachable.push(error.to_string());
                    continue;
                }
            };
            if let Found::Consumer(consumer) = find_consumer(&jsz, monitoring, &self.metadata) {
                held = true;
                if consumer.cluster.leader == node {
                    let lag = consumer.lag();
                    return Ok((
                        LeaderCache {
                            leader: node,
                            url: node_url,
                        },
                        lag,
                    ));
                }
            }
        }
        if !held && unreachable.is_empty() {
            return Err(NatsError::ConsumerNotFound {
                consumer: self.metadata.consumer.clone(),
                stream: self.metadata.stream.clone(),
                why: format!(" (on none of the {} cluster nodes)", urls.len()),
            });
        }
        let why = if unreachable.is_empty() {
            String::new()
        } else {
            format!(" ({})", unreachable.join("; "))
        };
        Err(NatsError::LeaderNotFound {
            consumer: self.metadata.consumer.clone(),
            why,
        })
    }

    async fn native_lag(&self, native: &Native) -> Result<i64, NatsError> {
        let connection = &native.connection;
        let servers = connection.servers.join(",");
        let timeout = self.context.settings().default_timeout;
        let client = self.context.nats().client(connection, timeout).await?;
        if client.connection_state() != State::Connected {
            return Err(NatsError::NotConnected { servers });
        }
        let subject = format!(
            "$JS.API.CONSUMER.INFO.{}.{}",
            self.metadata.stream, self.metadata.consumer
        );
        let reply =
            client
                .request(subject, Default::default())
                .await
                .map_err(|source| match source.kind() {
                    RequestErrorKind::NoResponders => NatsError::NoResponders {
                        consumer: self.metadata.consumer.clone(),
                        stream: self.metadata.stream.clone(),
                        servers: servers.clone(),
                    },
                    RequestErrorKind::TimedOut => NatsError::RequestTimeout {
                        servers: servers.clone(),
                    },
                    _ => NatsError::Request {
                        servers: servers.clone(),
                        source,
                    },
                })?;
        match serde_json::from_slice::<ApiResponse>(&reply.payload).map_err(NatsError::ApiDecode)? {
            ApiResponse::Info(info) => Ok(info.num_pending.saturating_add(info.num_ack_pending)),
            ApiResponse::Error { error } => Err(match error.err_code {
                api_codes::STREAM_NOT_FOUND => NatsError::ConsumerNotFound {
                    consumer: self.metadata.consumer.clone(),
                    stream: self.metadata.stream.clone(),
                    why: " (JetStream: stream not found)".to_owned(),
                },
                api_codes::CONSUMER_NOT_FOUND => NatsError::ConsumerNotFound {
                    consumer: self.metadata.consumer.clone(),
                    stream: self.metadata.stream.clone(),
                    why: String::new(),
                },
                _ => NatsError::Api {
                    code: error.code,
                    err_code: error.err_code,
                    description: error.description,
                },
            }),
        }
    }
}

impl ScalerKind<ScalerContext> for NatsJetStreamScaler {
    const TYPES: &'static [&'static str] = &["nats-jetstream"];

    fn build(
        config: &TriggerConfig,
        context: &ScalerContext,
    ) -> Result<Arc<dyn Scaler>, ParamErrors> {
        Ok(Arc::new(Self::new(config, context)?))
    }
}

#[async_trait]
impl Scaler for NatsJetStreamScaler {
    fn metric_specs(&self) -> Vec<MetricSpec> {
        vec![MetricSpec::External(self.metric.clone())]
    }

    fn activation_target(&self) -> Option<f64> {
        Some(self.metadata.activation_lag_threshold as f64)
    }

    fn query_key(&self, _metric: &MetricName) -> Option<String> {
        let (stream, consumer) = (&self.metadata.stream, &self.metadata.consumer);
        Some(match &self.metadata.source {
            Source::Monitoring(m) => format!(
                "nats-jetstream|{}://{}|{}|{stream}|{consumer}",
                m.scheme(),
                m.endpoint,
                m.account_id
            ),
            Source::Native(n) => format!(
                "nats-jetstream|nats|{}|{:016x}|{stream}|{consumer}",
                n.connection.servers.join(","),
                n.connection.secret_digest()
            ),
        })
    }

    async fn sample(&self, _request: SampleRequest<'_>) -> Result<Sample, ScalerError> {
        let lag = self.lag().await?;
        Ok(Sample {
            value: lag as f64,
            active: lag > self.metadata.activation_lag_threshold,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scaler_core::MetricName;
    use scaler_core::params::TriggerParams;

    type Pairs = &'static [(&'static str, &'static str)];

    fn config(metadata: Pairs, auth: Pairs, index: usize) -> TriggerConfig {
        let mut params = TriggerParams::from_metadata(metadata.iter().copied());
        params.auth_params = auth
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        TriggerConfig {
            index,
            trigger_type: "nats-jetstream".into(),
            params,
            ..TriggerConfig::default()
        }
    }

    struct ParseCase {
        name: &'static str,
        metadata: Pairs,
        auth_params: Pairs,
        /// `None` when parsing succeeds, else the key the first error names.
        error_key: Option<&'static str>,
    }

    const ALL_GOOD: Pairs = &[
        ("natsServerMonitoringEndpoint", "localhost:8222"),
        ("account", "$G"),
        ("accountID", "$G"),
        ("stream", "mystream"),
        ("consumer", "pull_consumer"),
        ("useHttps", "false"),
    ];

    /// KEDA's `testNATSJetStreamMetadata`, plus Windlass's own cases.
    const PARSE_CASES: &[ParseCase] = &[
        ParseCase {
            name: "all good localhost",
            metadata: ALL_GOOD,
            auth_params: &[],
            error_key: None,
        },
        ParseCase {
            name: "all good url",
            metadata: &[
                ("natsServerMonitoringEndpoint", "nats.nats:8222"),
                ("account", "$G"),
                ("stream", "mystream"),
                ("consumer", "pull_consumer"),
                ("useHttps", "true"),
            ],
            auth_params: &[],
            error_key: None,
        },
        ParseCase {
            name: "id instead of name",
            metadata: &[
                ("natsServerMonitoringEndpoint", "localhost:8222"),
                ("accountID", "$G"),
                ("stream", "mystream"),
                ("consumer", "pull_consumer"),
                ("useHttps", "false"),
            ],
            auth_params: &[],
            error_key: None,
        },
        ParseCase {
            name: "nothing",
            metadata: &[],
            auth_params: &[],
            error_key: Some("stream"),
        },
        ParseCase {
            name: "no account name or id",
            metadata: &[
                ("natsServerMonitoringEndpoint", "nats.nats:8222"),
                ("stream", "mystream"),
                ("consumer", "pull_consumer"),
            ],
            auth_params: &[],
            error_key: Some("account"),
        },
        ParseCase {
            name: "no stream",
            metadata: &[
                ("natsServerMonitoringEndpoint", "nats.nats:8222"),
                ("account", "$G"),
                ("consumer", "pull_consumer"),
            ],
            auth_params: &[],
            error_key: Some("stream"),
        },
        ParseCase {
            name: "no consumer",
            metadata: &[
                ("natsServerMonitoringEndpoint", "nats.nats:8222"),
                ("account", "$G"),
                ("stream", "mystream"),
            ],
            auth_params: &[],
            error_key: Some("consumer"),
        },
        ParseCase {
            name: "no endpoint",
            metadata: &[("account", "$G"), ("stream", "mystream")],
            auth_params: &[],
            error_key: Some("consumer"),
        },
        ParseCase {
            name: "activationLagThreshold",
            metadata: &[
                ("natsServerMonitoringEndpoint", "nats.nats:8222"),
                ("account", "$G"),
                ("stream", "mystream"),
                ("consumer", "pull_consumer"),
                ("activationLagThreshold", "10"),
            ],
            auth_params: &[],
            error_key: None,
        },
        ParseCase {
            name: "bad activationLagThreshold",
            metadata: &[
                ("natsServerMonitoringEndpoint", "nats.nats:8222"),
                ("account", "$G"),
                ("stream", "mystream"),
                ("consumer", "pull_consumer"),
                ("activationLagThreshold", "Y"),
            ],
            auth_params: &[],
            error_key: Some("activationLagThreshold"),
        },
        ParseCase {
            name: "endpoint from authParams",
            metadata: &[
                ("account", "$G"),
                ("stream", "mystream"),
                ("consumer", "pull_consumer"),
            ],
            auth_params: &[("natsServerMonitoringEndpoint", "nats.nats:8222")],
            error_key: None,
        },
        ParseCase {
            name: "empty endpoint in authParams",
            metadata: &[
                ("account", "$G"),
                ("stream", "mystream"),
                ("consumer", "pull_consumer"),
            ],
            auth_params: &[("natsServerMonitoringEndpoint", "")],
            error_key: Some("natsServerMonitoringEndpoint"),
        },
        ParseCase {
            name: "bad useHttps",
            metadata: &[
                ("natsServerMonitoringEndpoint", "nats.nats:8222"),
                ("account", "$G"),
                ("stream", "mystream"),
                ("consumer", "pull_consumer"),
                ("useHttps", "error"),
            ],
            auth_params: &[],
            error_key: Some("useHttps"),
        },
        ParseCase {
            name: "lagThreshold",
            metadata: &[
                ("account", "$G"),
                ("stream", "mystream"),
                ("consumer", "pull_consumer"),
                ("lagThreshold", "6"),
            ],
            auth_params: &[("natsServerMonitoringEndpoint", "nats.nats:8222")],
            error_key: None,
        },
        ParseCase {
            name: "bad lagThreshold",
            metadata: &[
                ("account", "$G"),
                ("stream", "mystream"),
                ("consumer", "pull_consumer"),
                ("lagThreshold", "Y"),
            ],
            auth_params: &[("natsServerMonitoringEndpoint", "nats.nats:8222")],
            error_key: Some("lagThreshold"),
        },
        ParseCase {
            name: "account from authParams",
            metadata: &[("stream", "mystream"), ("consumer", "pull_consumer")],
            auth_params: &[
                ("account", "$G"),
                ("natsServerMonitoringEndpoint", "nats.nats:8222"),
            ],
            error_key: None,
        },
        ParseCase {
            name: "no account anywhere",
            metadata: &[("stream", "mystream"), ("consumer", "pull_consumer")],
            auth_params: &[("natsServerMonitoringEndpoint", "nats.nats:8222")],
            error_key: Some("account"),
        },
        ParseCase {
            name: "useHttps takes Go booleans",
            metadata: &[
                ("natsServerMonitoringEndpoint", "nats.nats:8222"),
                ("account", "$G"),
                ("stream", "mystream"),
                ("consumer", "pull_consumer"),
                ("useHttps", "T"),
            ],
            auth_params: &[],
            error_key: None,
        },
    ];

    #[test]
    fn parse_table() {
        for case in PARSE_CASES {
            let result = Metadata::parse(&config(case.metadata, case.auth_params, 0));
            match (case.error_key, result) {
                (None, Ok(_)) => {}
                (None, Err(errors)) => panic!("{}: unexpected error {errors}", case.name),
                (Some(key), Ok(_)) => panic!("{}: expected an error on {key}", case.name),
                (Some(key), Err(errors)) => {
                    assert_eq!(errors.0[0].key, key, "{}: {errors}", case.name);
                    assert!(errors.0.iter().all(|e| e.hint.is_some()), "{}", case.name);
                }
            }
        }
    }

    #[test]
    fn defaults_and_precedence() {
        let m = Metadata::parse(&config(
            &[
                ("natsServerMonitoringEndpoint", "from-metadata:8222"),
                ("account", "meta-account"),
                ("stream", "s"),
                ("consumer", "c"),
            ],
            &[
                ("natsServerMonitoringEndpoint", "from-auth:8222"),
                ("account", "auth-account"),
            ],
            0,
        ))
        .unwrap();
        let Source::Monitoring(monitoring) = &m.source else {
            panic!("monitoring mode expected: {m:?}");
        };
        assert_eq!(monitoring.endpoint, "from-auth:8222");
        assert_eq!(monitoring.account.as_deref(), Some("auth-account"));
        assert_eq!(monitoring.account_id, "auth-account");
        assert_eq!(m.lag_threshold, 10);
        assert_eq!(m.activation_lag_threshold, 0);
        assert!(!monitoring.use_https);
    }

    #[test]
    fn metric_names_and_targets() {
        for (index, name) in [
            (0, "s0-nats-jetstream-mystream"),
            (1, "s1-nats-jetstream-mystream"),
        ] {
            let scaler = NatsJetStreamScaler::build(
                &config(ALL_GOOD, &[], index),
                &ScalerContext::default(),
            )
            .unwrap();
            let specs = scaler.metric_specs();
            let metric = specs[0].external().unwrap();
            assert_eq!(metric.name, MetricName::from_raw(name));
            assert_eq!(metric.target, 10.0);
        }
    }

    const NATIVE: Pairs = &[
        ("natsServerURL", "nats://127.0.0.1:4222"),
        ("stream", "mystream"),
        ("consumer", "pull_consumer"),
    ];

    /// Windlass's native mode (`natsServerURL`) and its credentials.
    const NATIVE_CASES: &[ParseCase] = &[
        ParseCase {
            name: "native, no account needed",
            metadata: NATIVE,
            auth_params: &[],
            error_key: None,
        },
        ParseCase {
            name: "native, several servers from authParams",
            metadata: &[("stream", "s"), ("consumer", "c")],
            auth_params: &[("natsServerURL", "nats://a:4222, tls://b:4222,c:4222")],
            error_key: None,
        },
        ParseCase {
            name: "both modes",
            metadata: &[
                ("natsServerURL", "nats://127.0.0.1:4222"),
                ("natsServerMonitoringEndpoint", "127.0.0.1:8222"),
                ("account", "$G"),
                ("stream", "s"),
                ("consumer", "c"),
            ],
            auth_params: &[],
            error_key: Some("natsServerURL"),
        },
        ParseCase {
            name: "an empty server in the list",
            metadata: &[
                ("natsServerURL", "nats://a:4222,,nats://b:4222"),
                ("stream", "s"),
                ("consumer", "c"),
            ],
            auth_params: &[],
            error_key: Some("natsServerURL"),
        },
        ParseCase {
            name: "a server that is not a URL",
            metadata: &[
                ("natsServerURL", "nats://host:port"),
                ("stream", "s"),
                ("consumer", "c"),
            ],
            auth_params: &[],
            error_key: Some("natsServerURL"),
        },
        ParseCase {
            name: "user and password",
            metadata: NATIVE,
            auth_params: &[("username", "u"), ("password", "p")],
            error_key: None,
        },
        ParseCase {
            name: "user without password",
            metadata: NATIVE,
            auth_params: &[("username", "u")],
            error_key: Some("password"),
        },
        ParseCase {
            name: "password without user",
            metadata: NATIVE,
            auth_params: &[("password", "p")],
            error_key: Some("username"),
        },
        ParseCase {
            name: "token",
            metadata: NATIVE,
            auth_params: &[("token", "t")],
            error_key: None,
        },
        ParseCase {
            name: "two kinds of credentials",
            metadata: NATIVE,
            auth_params: &[("username", "u"), ("password", "p"), ("token", "t")],
            error_key: Some("token"),
        },
        ParseCase {
            name: "not an nkey seed",
            metadata: NATIVE,
            auth_params: &[("nkeySeed", "SUnotaseed")],
            error_key: Some("nkeySeed"),
        },
        ParseCase {
            name: "not a creds file",
            metadata: NATIVE,
            auth_params: &[("credentials", "hello")],
            error_key: Some("credentials"),
        },
        ParseCase {
            name: "not a PEM CA",
            metadata: NATIVE,
            auth_params: &[("ca", "not pem")],
            error_key: Some("ca"),
        },
        ParseCase {
            name: "stream names are subject tokens",
            metadata: &[
                ("natsServerURL", "nats://127.0.0.1:4222"),
                ("stream", "my.stream"),
                ("consumer", "c"),
            ],
            auth_params: &[],
            error_key: Some("stream"),
        },
        ParseCase {
            name: "credentials are ignored in monitoring mode, as KEDA ignores them",
            metadata: ALL_GOOD,
            auth_params: &[("token", "t"), ("username", "u")],
            error_key: None,
        },
        ParseCase {
            name: "TLS material is checked in monitoring mode with useHttps",
            metadata: &[
                ("natsServerMonitoringEndpoint", "nats.nats:8222"),
                ("account", "$G"),
                ("stream", "s"),
                ("consumer", "c"),
                ("useHttps", "true"),
            ],
            auth_params: &[("ca", "not pem")],
            error_key: Some("ca"),
        },
        ParseCase {
            name: "TLS material is ignored without useHttps",
            metadata: ALL_GOOD,
            auth_params: &[("ca", "not pem")],
            error_key: None,
        },
    ];

    #[test]
    fn native_parse_table() {
        for case in NATIVE_CASES {
            let result = Metadata::parse(&config(case.metadata, case.auth_params, 0));
            match (case.error_key, result) {
                (None, Ok(_)) => {}
                (None, Err(errors)) => panic!("{}: unexpected error {errors}", case.name),
                (Some(key), Ok(_)) => panic!("{}: expected an error on {key}", case.name),
                (Some(key), Err(errors)) => {
                    assert_eq!(errors.0[0].key, key, "{}: {errors}", case.name);
                    assert!(errors.0.iter().all(|e| e.hint.is_some()), "{}", case.name);
                }
            }
        }
    }

    #[test]
    fn native_mode_reads_servers_and_credentials() {
        let seed = nkeys::KeyPair::new_user().seed().unwrap();
        let params: Vec<(&str, &str)> = vec![("nkeySeed", seed.as_str())];
        let mut cfg = config(
            &[
                ("natsServerURL", "nats://a:4222, nats://b:4222"),
                ("stream", "s"),
                ("consumer", "c"),
            ],
            &[],
            0,
        );
        cfg.params.auth_params = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let m = Metadata::parse(&cfg).unwrap();
        let Source::Native(native) = &m.source else {
            panic!("native mode expected: {m:?}");
        };
        assert_eq!(
            native.connection.servers,
            vec!["nats://a:4222".to_owned(), "nats://b:4222".to_owned()]
        );
        assert_eq!(native.connection.auth, NatsAuth::NkeySeed(seed.clone()));
        assert!(
            !format!("{m:?}").contains(&seed),
            "the seed leaks into Debug"
        );
    }

    #[test]
    fn neither_mode_names_both_keys_in_the_fix() {
        let errors = Metadata::parse(&config(
            &[("account", "$G"), ("stream", "s"), ("consumer", "c")],
            &[],
            0,
        ))
        .unwrap_err();
        assert_eq!(errors.0[0].key, "natsServerMonitoringEndpoint");
        let hint = errors.0[0].hint.clone().unwrap();
        assert!(hint.contains("natsServerURL"), "{hint}");
    }

    #[test]
    fn go_query_escaping() {
        assert_eq!(go_query_escape("$G"), "%24G");
        assert_eq!(go_query_escape("a b/c"), "a+b%2Fc");
        assert_eq!(go_query_escape("ACC-1_x.y~"), "ACC-1_x.y~");
    }

    fn monitoring(endpoint: &str, use_https: bool) -> Monitoring {
        Monitoring {
            endpoint: endpoint.to_owned(),
            account: Some("$G".to_owned()),
            account_id: "$G".to_owned(),
            use_https,
            tls: TlsOptions::default(),
        }
    }

    #[test]
    fn monitoring_urls_as_keda_builds_them() {
        let m = monitoring("nats.nats:8222", false);
        assert_eq!(
            m.jsz_url(&m.endpoint),
            "http://nats.nats:8222/jsz?acc=%24G&config=true&consumers=true"
        );
        assert_eq!(m.varz_url(&m.endpoint), "http://nats.nats:8222/varz");
        assert_eq!(m.node_host("10.0.0.7"), "10.0.0.7:8222");
        assert_eq!(m.node_host("fd00::7"), "[fd00::7]:8222");
        assert_eq!(m.headless_host("nats-1"), "nats-1.nats.nats:8222");
        let https = monitoring("nats", true);
        assert_eq!(
            https.jsz_url("nats"),
            "https://nats/jsz?acc=%24G&config=true&consumers=true"
        );
        assert_eq!(https.node_host("10.0.0.7"), "10.0.0.7");
        assert_eq!(split_host_port("[::1]:4222"), ("::1", Some("4222")));
        assert_eq!(split_host_port("10.0.0.1:4222"), ("10.0.0.1", Some("4222")));
        assert_eq!(split_host_port("nats"), ("nats", None));
    }

    const JSZ: &str = r#"{
        "meta_cluster": {"cluster_size": 3},
        "account_details": [
            {"name": "other", "id": "other", "stream_detail": null},
            {"name": "app", "id": "AID", "stream_detail": [
                {"name": "orders", "consumer_detail": [
                    {"name": "worker", "num_pending": 20, "num_ack_pending": 2,
                     "cluster": {"leader": "n2"}}
                ]},
                {"name": "empty"}
            ]}
        ]
    }"#;

    fn metadata_for(stream: &str, consumer: &str) -> Metadata {
        Metadata {
            source: Source::Monitoring(monitoring("x:8222", false)),
            stream: stream.to_owned(),
            consumer: consumer.to_owned(),
            lag_threshold: 10,
            activation_lag_threshold: 0,
        }
    }

    #[test]
    fn finds_the_consumer_by_account_id_or_name() {
        let jsz: Jsz = serde_json::from_str(JSZ).unwrap();
        assert_eq!(jsz.meta_cluster.cluster_size, 3);
        let by_id = Monitoring {
            account: None,
            account_id: "AID".into(),
            ..monitoring("x:8222", false)
        };
        let by_name = Monitoring {
            account: Some("app".into()),
            account_id: "nope".into(),
            ..monitoring("x:8222", false)
        };
        for m in [&by_id, &by_name] {
            match find_consumer(&jsz, m, &metadata_for("orders", "worker")) {
                Found::Consumer(c) => {
                    assert_eq!(c.lag(), 22);
                    assert_eq!(c.cluster.leader, "n2");
                }
                _ => panic!("consumer not found"),
            }
            assert!(matches!(
                find_consumer(&jsz, m, &metadata_for("orders", "nobody")),
                Found::NoConsumer
            ));
            assert!(matches!(
                find_consumer(&jsz, m, &metadata_for("empty", "worker")),
                Found::NoConsumer
            ));
            assert!(matches!(
                find_consumer(&jsz, m, &metadata_for("missing", "worker")),
                Found::NoStream
            ));
        }
        let elsewhere = Monitoring {
            account: None,
            account_id: "ghost".into(),
            ..monitoring("x:8222", false)
        };
        assert!(matches!(
            find_consumer(&jsz, &elsewhere, &metadata_for("orders", "worker")),
            Found::NoAccount
        ));
    }

    #[test]
    fn errors_keep_kedas_texts_and_categories() {
        let missing: ScalerError = NatsError::ConsumerNotFound {
            consumer: "c".into(),
            stream: "s".into(),
            why: String::new(),
        }
        .into();
        assert_eq!(missing.message, r#"consumer "c" not found in stream "s""#);
        assert_eq!(missing.category, scaler_core::ErrorCategory::Query);
        let leader: ScalerError = NatsError::LeaderNotFound {
            consumer: "c".into(),
            why: String::new(),
        }
        .into();
        assert_eq!(leader.message, "leader node not found for consumer c");
        let lost: ScalerError = NatsError::NotConnected {
            servers: "nats://x".into(),
        }
        .into();
        assert_eq!(lost.category, scaler_core::ErrorCategory::Connect);
    }

    #[test]
    fn query_keys_name_everything_that_decides_the_answer() {
        let key = |metadata: Pairs, auth: Pairs| {
            NatsJetStreamScaler::new(&config(metadata, auth, 0), &ScalerContext::default())
                .unwrap()
                .query_key(&MetricName::from_raw("s0-x"))
                .unwrap()
        };
        assert_eq!(key(ALL_GOOD, &[]), key(ALL_GOOD, &[]));
        assert_eq!(
            key(ALL_GOOD, &[]),
            "nats-jetstream|http://localhost:8222|$G|mystream|pull_consumer"
        );
        let with_token = key(NATIVE, &[("token", "s3cret")]);
        assert!(!with_token.contains("s3cret"), "{with_token}");
        assert_ne!(with_token, key(NATIVE, &[("token", "other")]));
        assert_ne!(key(NATIVE, &[]), key(ALL_GOOD, &[]));
    }

    #[tokio::test]
    async fn an_unreachable_monitoring_endpoint_is_a_connect_error() {
        let scaler = NatsJetStreamScaler::new(
            &config(
                &[
                    ("natsServerMonitoringEndpoint", "127.0.0.1:1"),
                    ("account", "$G"),
                    ("stream", "s"),
                    ("consumer", "c"),
                ],
                &[],
                0,
            ),
            &ScalerContext::default(),
        )
        .unwrap();
        let name = MetricName::from_raw("s0-nats-jetstream-s");
        let error = scaler
            .sample(SampleRequest {
                metric: &name,
                now: chrono::Utc::now(),
            })
            .await
            .unwrap_err();
        assert_eq!(
            error.category,
            scaler_core::ErrorCategory::Connect,
            "{error}"
        );
        assert!(
            error.message.contains("127.0.0.1:1/jsz?acc=%24G"),
            "{error}"
        );
    }

    mod fixtures {
        include!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/support.rs"
        ));
    }

    #[test]
    fn documented_examples_parse() {
        let triggers = fixtures::triggers_of("nats-jetstream.yaml", NatsJetStreamScaler::TYPES);
        assert_eq!(triggers.len(), 2);
        for cfg in triggers {
            NatsJetStreamScaler::build(&cfg, &ScalerContext::default()).unwrap();
        }
    }
}
