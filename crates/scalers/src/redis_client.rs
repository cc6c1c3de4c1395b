//! Redis connections shared by topology, addresses, database, credentials and TLS settings:
//! every `redis*` trigger that names the same server the same way uses one connection, whatever
//! the ScaledObject, and it stays open between polls.
//!
//! - **standalone** (`redis`, `redis-streams`): a [`ConnectionManager`] to the first address
//!   (KEDA uses only the first too); it reconnects by itself after a dropped connection.
//! - **cluster** (`redis-cluster*`): a [`ClusterConnection`] seeded with every address; it routes
//!   each command by its key and follows `MOVED`/`ASK`.
//! - **sentinel** (`redis-sentinel*`): the Sentinels are asked in order for the address of
//!   `sentinelMaster` (`SENTINEL get-master-addr-by-name`, with `sentinelUsername` /
//!   `sentinelPassword`), and a connection is made to that master, which must answer `ROLE` as a
//!   master. After a failover the old connection breaks, and the next sample asks again.
//!
//! TLS (`enableTLS` or `tls: enable`) applies to every connection, Sentinels included, as in
//! KEDA: `ca` replaces the system roots, `cert` + `key` authenticate the client, `unsafeSsl`
//! skips verification. `username`/`password` authenticate against the data nodes (ACL or
//! `requirepass`), `databaseIndex` selects the database (cluster: always 0).
//!
//! A command that fails because the connection is gone (refused, dropped, a node that is no
//! longer the master) forgets the shared connection, so the next sample connects afresh and the
//! trigger recovers as soon as the server is back. Failures carry a category: unreachable
//! servers and refused credentials are `connect`, a server that does not answer in time is
//! `timeout`, a command the server rejects is `query`.

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{
    AsyncConnectionConfig, Client, ClientTlsConfig, Cmd, ConnectionAddr, ErrorKind, FromRedisValue,
    IntoConnectionInfo, RedisConnectionInfo, RedisError, RedisResult, TlsCertificates, TlsMode,
    Value,
};
use scaler_core::ScalerError;

use crate::connections::SharedConnections;
use crate::redis_connection::{ConnectionInfo, TlsSettings, Topology, join_host_port};

/// Everything that makes two Redis connections differ; the key of the shared connection.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ConnectionSettings {
    pub topology: Topology,
    /// Standalone: the first address only; cluster: the seeds; sentinel: the Sentinels.
    pub addresses: Vec<String>,
    /// `databaseIndex` (always 0 for a cluster).
    pub database: i64,
    pub username: Option<String>,
    pub password: Option<String>,
    pub sentinel_username: Option<String>,
    pub sentinel_password: Option<String>,
    pub sentinel_master: Option<String>,
    pub tls: TlsSettings,
    /// Bound on connecting and on each answer.
    pub timeout: Duration,
}

impl fmt::Debug for ConnectionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.identity())
    }
}

impl ConnectionSettings {
    /// The settings a trigger of `topology` with these parameters connects with.
    pub fn new(
        topology: Topology,
        info: &ConnectionInfo,
        database: i64,
        timeout: Duration,
    ) -> Self {
        let sentinel = topology == Topology::Sentinel;
        let only_sentinel = |value: &Option<String>| value.clone().filter(|_| sentinel);
        Self {
            topology,
            addresses: match topology {
                Topology::Standalone => info.addresses.iter().take(1).cloned().collect(),
                Topology::Cluster | Topology::Sentinel => info.addresses.clone(),
            },
            database: if topology == Topology::Cluster {
                0
            } else {
                database
            },
            username: info.username.clone(),
            password: info.password.clone(),
            sentinel_username: only_sentinel(&info.sentinel_username),
            sentinel_password: only_sentinel(&info.sentinel_password),
            sentinel_master: only_sentinel(&info.sentinel_master),
            tls: info.tls.clone(),
            timeout,
        }
    }

    /// A stable text naming these settings, secrets replaced by a hash of them: used in query
    /// keys and `Debug`.
    pub fn identity(&self) -> String {
        let mut secrets = DefaultHasher::new();
        (
            &self.password,
            &self.sentinel_password,
            &self.tls.key,
            &self.tls.key_password,
            &self.tls.cert,
            &self.tls.ca,
        )
            .hash(&mut secrets);
        let scheme = match self.topology {
            Topology::Standalone => "redis",
            Topology::Cluster => "redis-cluster",
            Topology::Sentinel => "redis-sentinel",
        };
        format!(
            "{scheme}://{user}@{addresses}/{db}?master={master}&sentinel-user={sentinel_user}&tls={tls}&insecure={insecure}&secrets={secrets:016x}&timeout={timeout}",
            user = self.username.as_deref().unwrap_or(""),
            addresses = self.addresses.join(","),
            db = self.database,
            master = self.sentinel_master.as_deref().unwrap_or(""),
            sentinel_user = self.sentinel_username.as_deref().unwrap_or(""),
            tls = self.tls.enabled,
            insecure = self.tls.unsafe_ssl,
            secrets = secrets.finish(),
            timeout = self.timeout.as_millis(),
        )
    }

    /// What the settings point at, for error messages.
    pub fn describe(&self) -> String {
        let addresses = self.addresses.join(", ");
        match self.topology {
            Topology::Standalone => format!("redis at {addresses}"),
            Topology::Cluster => format!("redis cluster at {addresses}"),
            Topology::Sentinel => format!(
                "redis master `{}` via sentinels {addresses}",
                self.sentinel_master.as_deref().unwrap_or("")
            ),
        }
    }

    fn who(&self) -> String {
        match &self.username {
            Some(user) => format!("user `{user}`"),
            None => "the default user".to_owned(),
        }
    }

    fn connection_config(&self) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
    }
}

/// One shared connection of any topology.
#[derive(Clone)]
pub enum RedisConnection {
    Standalone(ConnectionManager),
    Sentinel(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Standalone(_) => "RedisConnection::Standalone",
            Self::Sentinel(_) => "RedisConnection::Sentinel",
            Self::Cluster(_) => "RedisConnection::Cluster",
        })
    }
}

/// Where a command goes in a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routing<'a> {
    /// As the command's keys say (the usual case).
    ByCommand,
    /// To the master serving `key`, for keyless commands about it (`INFO` before `XINFO`).
    NodeOf(&'a str),
}

impl RedisConnection {
    async fn run(&mut self, cmd: &Cmd, routing: Routing<'_>) -> RedisResult<Value> {
        let value = match (self, routing) {
            (Self::Standalone(connection), _) => connection.req_packed_command(cmd).await?,
            (Self::Sentinel(connection), _) => connection.req_packed_command(cmd).await?,
            (Self::Cluster(connection), Routing::ByCommand) => {
                connection.req_packed_command(cmd).await?
            }
            (Self::Cluster(connection), Routing::NodeOf(key)) => {
                let route = Route::with_key(key, SlotAddr::Master);
                connection
                    .route_command(
                        cmd.clone(),
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                    )
                    .await?
            }
        };
        value.extract_error()
    }
}

/// Why a command produced no value.
#[derive(Debug)]
pub enum CommandError {
    /// There is no connection (unreachable, refused credentials, bad TLS material).
    Connect(ScalerError),
    /// The command failed on an open connection.
    Command(RedisError),
}

impl CommandError {
    /// The categorised error, saying what was being done.
    pub fn into_scaler_error(self, settings: &ConnectionSettings, doing: &str) -> ScalerError {
        match self {
            Self::Connect(error) => error,
            Self::Command(error) => failure(&error, settings, &settings.describe(), doing),
        }
    }

    /// Whether the server answered with exactly this error (`code` then `detail`), e.g.
    /// `ERR no such key`.
    pub fn is_server_error(&self, code: &str, detail: &str) -> bool {
        match self {
            Self::Command(error) => {
                error.code() == Some(code) && error.detail().map(str::trim) == Some(detail)
            }
            Self::Connect(_) => false,
        }
    }

    /// Whether the connection itself failed (rather than the command).
    pub fn is_connection_failure(&self) -> bool {
        match self {
            Self::Connect(_) => true,
            Self::Command(error) => breaks_connection(error) || error.is_timeout(),
        }
    }
}

/// Redis connections by [`ConnectionSettings`].
#[derive(Default)]
pub struct RedisClients {
    connections: SharedConnections<ConnectionSettings, RedisConnection>,
    opened: AtomicUsize,
}

impl fmt::Debug for RedisClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisClients")
            .field("connections", &self.connections.len())
            .field("opened", &self.connections_opened())
            .finish()
    }
}

impl RedisClients {
    /// The shared connection for `settings`, opened if there is none.
    pub async fn connection(
        &self,
        settings: &ConnectionSettings,
    ) -> Result<RedisConnection, ScalerError> {
        self.connections
            .get_or_connect(settings, || async {
                let connection = open(settings).await?;
                self.opened.fetch_add(1, Ordering::Relaxed);
                Ok(connection)
            })
            .await
    }

    /// Runs `cmd` (a read) on the shared connection and converts the answer. A failure that
    /// means the connection is gone drops it and the command is tried once more on a fresh
    /// connection, as go-redis retries network errors in KEDA: a connection the server closed
    /// while idle, or a master demoted by a failover, costs no failed sample. If the server is
    /// really gone, that second attempt fails to connect and says so.
    pub async fn run<T: FromRedisValue>(
        &self,
        settings: &ConnectionSettings,
        cmd: &Cmd,
        routing: Routing<'_>,
    ) -> Result<T, CommandError> {
        let mut retried = false;
        loop {
            let mut connection = self
                .connection(settings)
                .await
                .map_err(CommandError::Connect)?;
            match connection.run(cmd, routing).await {
                Ok(value) => {
                    return redis::from_redis_value(value)
                        .map_err(|error| CommandError::Command(RedisError::from(error)));
                }
                Err(error) if breaks_connection(&error) => {
                    self.connections.invalidate(settings);
                    if retried {
                        return Err(CommandError::Command(error));
                    }
                    retried = true;
                }
                Err(error) => return Err(CommandError::Command(error)),
            }
        }
    }

    /// How many distinct connection settings have (or are getting) a connection.
    pub fn len(&self) -> usize {
        self.connections.len()
    }

    pub fn is_empty(&self) -> bool {
        self.connections.is_empty()
    }

    /// How many connections were opened successfully since the start (reconnections included).
    pub fn connections_opened(&self) -> usize {
        self.opened.load(Ordering::Relaxed)
    }
}

/// Whether `error` means the connection (or the node behind it) is no longer usable.
fn breaks_connection(error: &RedisError) -> bool {
    if error.is_io_error() || error.is_connection_dropped() || error.is_connection_refusal() {
        return true;
    }
    if error.is_timeout() {
        return false;
    }
    matches!(
        error.kind(),
        ErrorKind::ClusterConnectionNotFound
            | ErrorKind::MasterNameNotFoundBySentinel
            | ErrorKind::EmptySentinelList
    ) || matches!(
        error.code(),
        Some("READONLY" | "MASTERDOWN" | "CLUSTERDOWN" | "LOADING")
    )
}

fn is_authentication_failure(error: &RedisError) -> bool {
    error.kind() == ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("WRONGPASS" | "NOAUTH"))
}

/// The categorised error for `error` met while `doing` something with `target`.
fn failure(
    error: &RedisError,
    settings: &ConnectionSettings,
    target: &str,
    doing: &str,
) -> ScalerError {
    if is_authentication_failure(error) {
        return ScalerError::connect(format!(
            "{target}: authentication failed as {who} while {doing}: {error} (check the username and password)",
            who = settings.who()
        ));
    }
    if error.code() == Some("NOPERM") {
        return ScalerError::connect(format!(
            "{target}: {who} is not permitted to do this ({doing}): {error} (grant the command and key in the user's ACL)",
            who = settings.who()
        ));
    }
    if error.is_timeout() {
        return ScalerError::timeout(format!(
            "{target}: no answer within {} ms while {doing}: {error}",
            settings.timeout.as_millis()
        ));
    }
    if error.kind() == ErrorKind::InvalidClientConfig {
        return ScalerError::metadata(format!("{target}: {doing}: {error}"));
    }
    if breaks_connection(error) {
        return ScalerError::connect(format!("{target}: cannot connect ({doing}): {error}"));
    }
    ScalerError::query(format!("{target}: {doing}: {error}"))
}

/// `host:port` (IPv6 in brackets) → host and port.
fn host_port(address: &str) -> Result<(String, u16), ScalerError> {
    let bad = || {
        ScalerError::metadata(format!(
            "redis address `{address}` is not host:port (e.g. redis.default.svc:6379)"
        ))
    };
    let (host, port) = address.trim().rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    // Go dials an empty host as the local system.
    let host = if host.is_empty() { "localhost" } else { host };
    Ok((host.to_owned(), port))
}

/// KEDA's TLS material as the redis crate takes it; `None` when the defaults do (system roots,
/// no client certificate).
fn certificates(tls: &TlsSettings) -> Result<Option<TlsCertificates>, ScalerError> {
    if let (Some(key), Some(_)) = (&tls.key, &tls.key_password)
        && key.contains("ENCRYPTED")
    {
        return Err(ScalerError::metadata(
            "key: encrypted client keys (keyPassword) are not supported for redis yet; give the key unencrypted (e.g. `openssl pkey -in key.pem -out plain.pem`)",
        ));
    }
    // As in KEDA, a client certificate is used only when both `cert` and `key` are set.
    let client_tls = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => Some(ClientTlsConfig {
            client_cert: cert.as_bytes().to_vec(),
            client_key: key.as_bytes().to_vec(),
        }),
        _ => None,
    };
    let root_cert = tls.ca.as_ref().map(|ca| ca.as_bytes().to_vec());
    if client_tls.is_none() && root_cert.is_none() {
        return Ok(None);
    }
    Ok(Some(TlsCertificates {
        client_tls,
        root_cert,
    }))
}

/// A client for one node: `address`, authenticated as `username`/`password`, database `db`.
fn client(
    address: &str,
    username: Option<&str>,
    password: Option<&str>,
    db: i64,
    tls: &TlsSettings,
) -> Result<Client, ScalerError> {
    let info = connection_info(address, username, password, db, tls)?;
    let built = match (tls.enabled, certificates(tls)?) {
        (true, Some(certificates)) => Client::build_with_tls(info, certificates),
        _ => Client::open(info),
    };
    built.map_err(|error| {
        ScalerError::metadata(format!("redis at {address}: invalid TLS material: {error}"))
    })
}

fn connection_info(
    address: &str,
    username: Option<&str>,
    password: Option<&str>,
    db: i64,
    tls: &TlsSettings,
) -> Result<redis::ConnectionInfo, ScalerError> {
    let (host, port) = host_port(address)?;
    let addr = if tls.enabled {
        ConnectionAddr::TcpTls {
            host,
            port,
            insecure: tls.unsafe_ssl,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(host, port)
    };
    let mut redis = RedisConnectionInfo::default()
        .set_db(db)
        .set_skip_set_lib_name();
    if let Some(username) = username {
        redis = redis.set_username(username);
    }
    if let Some(password) = password {
        redis = redis.set_password(password);
    }
    addr.into_connection_info()
        .map(|info| info.set_redis_settings(redis))
        .map_err(|error| ScalerError::metadata(format!("redis address `{address}`: {error}")))
}

async fn open(settings: &ConnectionSettings) -> Result<RedisConnection, ScalerError> {
    match settings.topology {
        Topology::Standalone => open_standalone(settings).await,
        Topology::Cluster => open_cluster(settings).await,
        Topology::Sentinel => open_sentinel(settings).await,
    }
}

async fn open_standalone(settings: &ConnectionSettings) -> Result<RedisConnection, ScalerError> {
    let address = settings
        .addresses
        .first()
        .ok_or_else(|| ScalerError::metadata("no redis address given"))?;
    let client = client(
        address,
        settings.username.as_deref(),
        settings.password.as_deref(),
        settings.database,
        &settings.tls,
    )?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(settings.timeout))
        .set_response_timeout(Some(settings.timeout))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500));
    ConnectionManager::new_with_config(client, config)
        .await
        .map(RedisConnection::Standalone)
        .map_err(|error| failure(&error, settings, &settings.describe(), "connecting"))
}

async fn open_cluster(settings: &ConnectionSettings) -> Result<RedisConnection, ScalerError> {
    let seeds = settings
        .addresses
        .iter()
        .map(|address| connection_info(address, None, None, 0, &settings.tls))
        .collect::<Result<Vec<_>, _>>()?;
    let mut builder = ClusterClientBuilder::new(seeds)
        .retries(2)
        .min_retry_wait(50)
        .max_retry_wait(500)
        .connection_timeout(settings.timeout)
        .response_timeout(settings.timeout);
    if let Some(username) = &settings.username {
        builder = builder.username(username);
    }
    if let Some(password) = &settings.password {
        builder = builder.password(password);
    }
    if settings.tls.enabled {
        builder = builder.tls(if settings.tls.unsafe_ssl {
            TlsMode::Insecure
        } else {
            TlsMode::Secure
        });
        if let Some(certificates) = certificates(&settings.tls)? {
            builder = builder.certs(certificates);
        }
    }
    let client = builder
        .build()
        .map_err(|error| ScalerError::metadata(format!("{}: {error}", settings.describe())))?;
    client
        .get_async_connection()
        .await
        .map(RedisConnection::Cluster)
        .map_err(|error| failure(&error, settings, &settings.describe(), "connecting"))
}

async fn open_sentinel(settings: &ConnectionSettings) -> Result<RedisConnection, ScalerError> {
    let master = settings.sentinel_master.as_deref().ok_or_else(|| {
        ScalerError::metadata(
            "sentinelMaster is not set: a redis-sentinel trigger needs the name of the master the Sentinels monitor",
        )
    })?;
    let mut problems = Vec::new();
    for sentinel in &settings.addresses {
        let client = client(
            sentinel,
            settings.sentinel_username.as_deref(),
            settings.sentinel_password.as_deref(),
            0,
            &settings.tls,
        )?;
        let answer: RedisResult<Option<(String, String)>> = async {
            let mut connection = client
                .get_multiplexed_async_connection_with_config(&settings.connection_config())
                .await?;
            redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg(master)
                .query_async(&mut connection)
                .await
        }
        .await;
        match answer {
            Ok(Some((host, port))) => {
                return open_master(settings, &join_host_port(&host, &port)).await;
            }
            Ok(None) => problems.push(format!("{sentinel} does not monitor `{master}`")),
            Err(error) if is_authentication_failure(&error) => problems.push(format!(
                "{sentinel}: authentication failed as {}: {error} (check sentinelUsername and sentinelPassword)",
                settings
                    .sentinel_username
                    .as_deref()
                    .map_or_else(|| "the default user".to_owned(), |u| format!("user `{u}`"))
            )),
            Err(error) => problems.push(format!("{sentinel}: {error}")),
        }
    }
    Err(ScalerError::connect(format!(
        "no sentinel named the address of master `{master}`: {}",
        problems.join("; ")
    )))
}

async fn open_master(
    settings: &ConnectionSettings,
    address: &str,
) -> Result<RedisConnection, ScalerError> {
    let target = format!(
        "redis master `{}` at {address}",
        settings.sentinel_master.as_deref().unwrap_or("")
    );
    let client = client(
        address,
        settings.username.as_deref(),
        settings.password.as_deref(),
        settings.database,
        &settings.tls,
    )?;
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&settings.connection_config())
        .await
        .map_err(|error| failure(&error, settings, &target, "connecting"))?;
    let role: Vec<Value> = redis::cmd("ROLE")
        .query_async(&mut connection)
        .await
        .map_err(|error| failure(&error, settings, &target, "asking its ROLE"))?;
    let role = role
        .into_iter()
        .next()
        .and_then(|value| redis::from_redis_value::<String>(value).ok())
        .unwrap_or_default();
    if role != "master" {
        return Err(ScalerError::connect(format!(
            "{target}: the server the sentinels name is a `{role}`, not a master (a failover is probably in progress)"
        )));
    }
    Ok(RedisConnection::Sentinel(connection))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(addresses: &[&str]) -> ConnectionInfo {
        ConnectionInfo {
            addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
            password: Some("hunter2".into()),
            sentinel_master: Some("mymaster".into()),
            ..ConnectionInfo::default()
        }
    }

    #[test]
    fn settings_follow_the_topology() {
        let timeout = Duration::from_secs(3);
        let standalone =
            ConnectionSettings::new(Topology::Standalone, &info(&["a:1", "b:2"]), 3, timeout);
        assert_eq!(standalone.addresses, ["a:1"]);
        assert_eq!(standalone.database, 3);
        assert_eq!(standalone.sentinel_master, None);
        let cluster =
            ConnectionSettings::new(Topology::Cluster, &info(&["a:1", "b:2"]), 3, timeout);
        assert_eq!(cluster.addresses, ["a:1", "b:2"]);
        assert_eq!(cluster.database, 0);
        let sentinel = ConnectionSettings::new(Topology::Sentinel, &info(&["a:1"]), 3, timeout);
        assert_eq!(sentinel.sentinel_master.as_deref(), Some("mymaster"));
        assert_eq!(sentinel.database, 3);
    }

    #[test]
    fn identity_hides_secrets_but_tells_them_apart() {
        let timeout = Duration::from_secs(3);
        let one = ConnectionSettings::new(Topology::Standalone, &info(&["a:1"]), 0, timeout);
        let mut other = one.clone();
        other.password = Some("other".into());
        assert!(!one.identity().contains("hunter2"), "{}", one.identity());
        assert!(!format!("{one:?}").contains("hunter2"));
        assert_ne!(one.identity(), other.identity());
        assert_eq!(one.identity(), one.clone().identity());
    }

    #[test]
    fn host_port_reads_keda_addresses() {
        assert_eq!(host_port("redis:6379").unwrap(), ("redis".into(), 6379));
        assert_eq!(host_port("[::1]:6380").unwrap(), ("::1".into(), 6380));
        assert_eq!(host_port(":7001").unwrap(), ("localhost".into(), 7001));
        assert_eq!(
            host_port("redis").unwrap_err().category,
            scaler_core::ErrorCategory::Metadata
        );
        assert!(host_port("redis:port").is_err());
    }

    #[test]
    fn encrypted_keys_are_refused_with_a_fix() {
        let tls = TlsSettings {
            enabled: true,
            cert: Some("cert".into()),
            key: Some("-----BEGIN ENCRYPTED PRIVATE KEY-----".into()),
            key_password: Some("pw".into()),
            ..TlsSettings::default()
        };
        let error = certificates(&tls).unwrap_err();
        assert!(error.message.contains("keyPassword"), "{error}");
    }

    #[test]
    fn lone_cert_or_key_is_ignored_as_in_keda() {
        let tls = TlsSettings {
            enabled: true,
            cert: Some("cert".into()),
            ..TlsSettings::default()
        };
        assert!(certificates(&tls).unwrap().is_none());
    }

    #[tokio::test]
    async fn refused_connection_is_a_connect_error_and_not_remembered() {
        crate::context::install_crypto_provider();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .unwrap();
        let settings = ConnectionSettings::new(
            Topology::Standalone,
            &ConnectionInfo {
                addresses: vec![format!("127.0.0.1:{port}")],
                ..ConnectionInfo::default()
            },
            0,
            Duration::from_secs(2),
        );
        let clients = RedisClients::default();
        let error = clients
            .run::<i64>(&settings, &redis::cmd("DBSIZE"), Routing::ByCommand)
            .await
            .unwrap_err();
        assert!(error.is_connection_failure());
        let error = error.into_scaler_error(&settings, "counting keys");
        assert_eq!(
            error.category,
            scaler_core::ErrorCategory::Connect,
            "{error}"
        );
        assert!(error.message.contains("cannot connect"), "{error}");
        assert_eq!(clients.connections_opened(), 0);
    }
}
