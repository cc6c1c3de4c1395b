//! `redis`, `redis-cluster` and `redis-sentinel` triggers: scale on the length of a Redis key.
//!
//! The value is the length of `listName`: `LLEN` for a list (or a missing key), `ZCARD` for a
//! sorted set, `SCARD` for a set, `HLEN` for a hash; any other type is an error. It is served
//! against the target `listLength`, and the trigger is active when it exceeds
//! `activationListLength`.
//!
//! # Parameters
//!
//! Sources in lookup order: **M** = trigger metadata, **A** = TriggerAuthentication parameter,
//! **E** = `<key>FromEnv` naming an env var of the scale target's container. Booleans accept Go's
//! `ParseBool` forms; integers are JSON integers.
//!
//! | Key (aliases) | Src | Default | Meaning |
//! |---|---|---|---|
//! | `listName` | M | required | Key to measure. |
//! | `listLength` | M | `5` | HPA target. |
//! | `activationListLength` | M | `0` | Active when the length exceeds this. |
//! | `databaseIndex` | M | `0` | Database number (standalone and Sentinel; cluster ignores it). |
//! | `address` (`addresses`) | M, A, E | – | Comma list of `host:port`. |
//! | `host` (`hosts`), `port` (`ports`) | M, E, A | – | Parallel comma lists joined into addresses; counts must match. |
//! | `username`, `password` | M, E, A | – | ACL user and password. |
//! | `sentinelUsername`, `sentinelPassword`, `sentinelMaster` | M, A, E | – | Sentinel credentials and master name (`redis-sentinel`). |
//! | `enableTLS` | M | `false` | Connect with TLS. |
//! | `tls` | A | – | `enable`/`disable`; an error together with `enableTLS`. |
//! | `unsafeSsl` | M | `false` | Skip certificate verification. |
//! | `Cert` (`cert`), `key`, `keyPassword`, `ca` | A | – | TLS material. |
//!
//! At least one address is required after merging `host`/`port` pairs ("no addresses or hosts
//! given"). `redis` uses the first address, `redis-cluster` all of them as seeds,
//! `redis-sentinel` all of them as Sentinels.
//!
//! The metric is `s<index>-redis-<listName>`.
//!
//! # Sampling
//!
//! One `EVAL` of a short Lua script reads the key's type and length in a single round trip (in
//! a cluster it goes to the master serving the key). The connection is shared by every trigger
//! that names the same server, database, credentials and TLS settings (`redis_client`), never
//! one per ScaledObject or per poll; a lost connection is reopened by the next sample, and a
//! `redis-sentinel` trigger asks the Sentinels for the master again after a failover.
//! Failures are categorised: server unreachable or credentials refused → `connect` (the message
//! says when authentication failed), no answer within the sample timeout → `timeout`, a key of
//! another type ("unsupported key type") → `query`. An encrypted client key (`keyPassword`) is
//! not supported yet: give the key unencrypted.
//!
//! # Example
//!
//! ```yaml
//! triggers:
//! - type: redis
//!   metadata:
//!     address: localhost:6379
//!     listName: mylist
//!     listLength: "10"
//!     passwordFromEnv: REDIS_PASSWORD
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use scaler_core::metric::{ExternalMetric, MetricSpec};
use scaler_core::params::{ParamError, ParamReader, order};
use scaler_core::registry::{ScalerKind, TriggerConfig};
use scaler_core::{MetricName, ParamErrors, Sample, SampleRequest, Scaler, ScalerError};

use crate::ScalerContext;
use crate::kafka::build_metric;
use crate::redis_client::{ConnectionSettings, Routing};
use crate::redis_connection::{ConnectionInfo, Topology};

mod defaults {
    pub const LIST_LENGTH: &str = "5";
}

/// A `redis*` list trigger's parameters, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub topology: Topology,
    pub list_name: String,
    pub list_length: i64,
    pub activation_list_length: i64,
    pub database_index: i64,
    pub connection: ConnectionInfo,
}

impl Metadata {
    /// Reads and validates a list trigger's parameters, reporting every problem found.
    pub fn parse(config: &TriggerConfig) -> Result<Self, ParamErrors> {
        let mut r = ParamReader::new(&config.params);
        let list_length = r
            .key("listLength", order::M)
            .default(defaults::LIST_LENGTH)
            .int();
        let activation_list_length = r.key("activationListLength", order::M).int();
        let list_name = r.key("listName", order::M).required().string();
        let database_index = r.key("databaseIndex", order::M).int();
        let connection = ConnectionInfo::read(&mut r);
        // A failed conversion is recorded on `r`, so `finish` reports it even where a default
        // stands in below.
        let metadata = (|| {
            Some(Self {
                topology: Topology::of_trigger_type(&config.trigger_type),
                list_name: list_name?,
                list_length: list_length?,
                activation_list_length: activation_list_length.unwrap_or(0),
                database_index: database_index.unwrap_or(0),
                connection: connection?,
            })
        })();
        match metadata {
            Some(metadata) => r.finish(metadata),
            None => Err(r.finish(()).err().unwrap_or_else(|| {
                ParamErrors::single(ParamError::new("metadata", "invalid redis metadata"))
            })),
        }
    }

    /// `redis-<listName>`.
    pub fn metric_local_name(&self) -> String {
        format!("redis-{}", self.list_name)
    }
}

/// KEDA's length rule in one round trip: a list (or a missing key) by `LLEN`, a sorted set by
/// `ZCARD`, a set by `SCARD`, a hash by `HLEN`; any other type is an error.
const LENGTH_BY_TYPE: &str = r"
local key = KEYS[1]
local kind = redis.call('TYPE', key)['ok']
if kind == 'list' or kind == 'none' then
  return redis.call('LLEN', key)
elseif kind == 'zset' then
  return redis.call('ZCARD', key)
elseif kind == 'set' then
  return redis.call('SCARD', key)
elseif kind == 'hash' then
  return redis.call('HLEN', key)
end
return redis.error_reply('ERR unsupported key type: ' .. kind)
";

/// A `redis`, `redis-cluster` or `redis-sentinel` trigger.
#[derive(Debug)]
pub struct RedisScaler {
    trigger_type: String,
    metadata: Metadata,
    metric: ExternalMetric,
    connection: ConnectionSettings,
    context: ScalerContext,
}

impl RedisScaler {
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The length of `listName`, by its type.
    async fn length(&self) -> Result<i64, ScalerError> {
        let list_name = &self.metadata.list_name;
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(LENGTH_BY_TYPE).arg(1).arg(list_name);
        self.context
            .redis()
            .run(&self.connection, &cmd, Routing::ByCommand)
            .await
            .map_err(|error| {
                error.into_scaler_error(
                    &self.connection,
                    &format!("reading the length of `{list_name}`"),
                )
            })
    }
}

impl ScalerKind<ScalerContext> for RedisScaler {
    const TYPES: &'static [&'static str] = &["redis", "redis-cluster", "redis-sentinel"];

    fn build(
        config: &TriggerConfig,
        context: &ScalerContext,
    ) -> Result<Arc<dyn Scaler>, ParamErrors> {
        let (metadata, metric) = build_metric(
            config,
            Metadata::parse(config),
            Metadata::metric_local_name,
            |m| m.list_length,
        )?;
        let connection = ConnectionSettings::new(
            metadata.topology,
            &metadata.connection,
            metadata.database_index,
            context.settings().default_timeout,
        );
        Ok(Arc::new(Self {
            trigger_type: config.trigger_type.clone(),
            metadata,
            metric,
            connection,
            context: context.clone(),
        }))
    }
}

#[async_trait]
impl Scaler for RedisScaler {
    fn metric_specs(&self) -> Vec<MetricSpec> {
        vec![MetricSpec::External(self.metric.clone())]
    }

    fn activation_target(&self) -> Option<f64> {
        Some(self.metadata.activation_list_length as f64)
    }

    fn query_key(&self, _metric: &MetricName) -> Option<String> {
        Some(format!(
            "{}|{}|list={}",
            self.trigger_type,
            self.connection.identity(),
            self.metadata.list_name
        ))
    }

    async fn sample(&self, _request: SampleRequest<'_>) -> Result<Sample, ScalerError> {
        let length = self.length().await?;
        Ok(Sample {
            value: length as f64,
            active: length > self.metadata.activation_list_length,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use scaler_core::params::TriggerParams;

    use super::*;
    use crate::redis_connection::TlsSettings;

    type Pairs = &'static [(&'static str, &'static str)];

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// KEDA's `testRedisResolvedEnv`.
    const RESOLVED_ENV: Pairs = &[
        ("REDIS_HOST", "none"),
        ("REDIS_PORT", "6379"),
        ("REDIS_USERNAME", "none"),
        ("REDIS_PASSWORD", "none"),
        ("REDIS_SENTINEL_MASTER", "none"),
        ("REDIS_SENTINEL_USERNAME", "none"),
        ("REDIS_SENTINEL_PASSWORD", "none"),
    ];

    fn config(
        trigger_type: &str,
        metadata: &[(&str, &str)],
        auth: &[(&str, &str)],
        env: &[(&str, &str)],
        index: usize,
    ) -> TriggerConfig {
        TriggerConfig {
            index,
            trigger_type: trigger_type.into(),
            params: TriggerParams {
                metadata: map(metadata),
                auth_params: map(auth),
                resolved_env: map(env),
            },
            ..TriggerConfig::default()
        }
    }

    struct Case {
        name: &'static str,
        metadata: Pairs,
        auth: Pairs,
        /// `Err(key)`: an error on that key is expected.
        expected: Result<(), &'static str>,
        tls: bool,
    }

    /// KEDA's `testRedisMetadata`, with KEDA's resolved env.
    #[test]
    fn test_redis_metadata() {
        let cases = [
            Case {
                name: "nothing passed",
                metadata: &[],
                auth: &[],
                expected: Err("listName"),
                tls: false,
            },
            Case {
                name: "listName and addressFromEnv",
                metadata: &[
                    ("listName", "mylist"),
                    ("listLength", "10"),
                    ("addressFromEnv", "REDIS_HOST"),
                    ("passwordFromEnv", "REDIS_PASSWORD"),
                ],
                auth: &[],
                expected: Ok(()),
                tls: false,
            },
            Case {
                name: "host and port from env",
                metadata: &[
                    ("listName", "mylist"),
                    ("listLength", "10"),
                    ("hostFromEnv", "REDIS_HOST"),
                    ("portFromEnv", "REDIS_PORT"),
                    ("passwordFromEnv", "REDIS_PASSWORD"),
                ],
                auth: &[],
                expected: Ok(()),
                tls: false,
            },
            Case {
                name: "address and host/port",
                metadata: &[
                    ("listName", "mylist"),
                    ("listLength", "10"),
                    ("addressFromEnv", "REDIS_HOST"),
                    ("host", "REDIS_HOST"),
                    ("port", "REDIS_PORT"),
                    ("passwordFromEnv", "REDIS_PASSWORD"),
                ],
                auth: &[],
                expected: Ok(()),
                tls: false,
            },
            Case {
                name: "host without port",
                metadata: &[
                    ("listName", "mylist"),
                    ("listLength", "10"),
                    ("hostFromEnv", "REDIS_HOST"),
                    ("passwordFromEnv", "REDIS_PASSWORD"),
                ],
                auth: &[],
                expected: Err("address"),
                tls: false,
            },
            Case {
                name: "empty address",
                metadata: &[
                    ("listName", "mylist"),
                    ("listLength", "10"),
                    ("address", ""),
                    ("password", ""),
                ],
                auth: &[],
                expected: Err("address"),
                tls: false,
            },
            Case {
                name: "listLength not int",
                metadata: &[
                    ("listName", "mylist"),
                    ("listLength", "AA"),
                    ("addressFromEnv", "REDIS_HOST"),
                    ("password", ""),
                ],
                auth: &[],
                expected: Err("listLength"),
                tls: false,
            },
            Case {
                name: "activationListLength not int",
                metadata: &[
                    ("listName", "mylist"),
                    ("listLength", "1"),
                    ("activationListLength", "AA"),
                    ("addressFromEnv", "REDIS_HOST"),
                    ("password", ""),
                ],
                auth: &[],
                expected: Err("activationListLength"),
                tls: false,
            },
            Case {
                name: "address env does not resolve",
                metadata: &[
                    ("listName", "mylist"),
                    ("listLength", "0"),
                    ("addressFromEnv", "REDIS_WRONG"),
                    ("password", ""),
                ],
                auth: &[],
                expected: Err("address"),
                tls: false,
            },
            Case {
                name: "empty password in auth params",
                metadata: &[
                    ("listName", "mylist"),
                    ("listLength", "0"),
                    ("addressFromEnv", "REDIS_WRONG"),
                ],
                auth: &[("password", "")],
                expected: Err("address"),
                tls: false,
            },
            Case {
                name: "address in auth params",
                metadata: &[("listName", "mylist"), ("listLength", "0")],
                auth: &[("address", "localhost:6379")],
                expected: Ok(()),
                tls: false,
            },
            Case {
                name: "host and port in auth params",
                metadata: &[("listName", "mylist"), ("listLength", "0")],
                auth: &[("host", "localhost"), ("port", "6379")],
                expected: Ok(()),
                tls: false,
            },
            Case {
                name: "tls in auth params",
                metadata: &[("listName", "mylist"), ("listLength", "0")],
                auth: &[
                    ("address", "localhost:6379"),
                    ("tls", "enable"),
                    ("ca", "caaa"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Ok(()),
                tls: true,
            },
            Case {
                name: "tls cert/key, public CA",
                metadata: &[("listName", "mylist"), ("listLength", "0")],
                auth: &[
                    ("address", "localhost:6379"),
                    ("tls", "enable"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                ],
                expected: Ok(()),
                tls: true,
            },
            Case {
                name: "tls keyPassword",
                metadata: &[("listName", "mylist"), ("listLength", "0")],
                auth: &[
                    ("address", "localhost:6379"),
                    ("tls", "enable"),
                    ("cert", "ceert"),
                    ("key", "keey"),
                    ("keyPassword", "keeyPassword"),
                ],
                expected: Ok(()),
                tls: true,
            },
            Case {
                name: "tls CA only",
                metadata: &[("listName", "mylist"), ("listLength", "0")],
                auth: &[
                    ("address", "localhost:6379"),
                    ("tls", "enable"),
                    ("ca", "caaa"),
                ],
                expected: Ok(()),
                tls: true,
            },
            Case {
                name: "enableTLS in metadata",
                metadata: &[
                    ("listName", "mylist"),
                    ("listLength", "0"),
                    ("enableTLS", "true"),
                ],
                auth: &[("address", "localhost:6379")],
                expected: Ok(()),
                tls: true,
            },
            Case {
                name: "enableTLS and tls",
                metadata: &[
                    ("listName", "mylist"),
                    ("listLength", "0"),
                    ("enableTLS", "true"),
                ],
                auth: &[("address", "localhost:6379"), ("tls", "disable")],
                expected: Err("tls"),
                tls: true,
            },
            Case {
                name: "host only in auth params",
                metadata: &[("listName", "mylist"), ("listLength", "0")],
                auth: &[("host", "localhost")],
                expected: Err("address"),
                tls: false,
            },
            // Beyond KEDA's table.
            Case {
                name: "enableTLS malformed",
                metadata: &[
                    ("listName", "mylist"),
                    ("enableTLS", "yes"),
                    ("address", "a:1"),
                ],
                auth: &[],
                expected: Err("enableTLS"),
                tls: false,
            },
            Case {
                name: "tls value wrong",
                metadata: &[("listName", "mylist"), ("address", "a:1")],
                auth: &[("tls", "on")],
                expected: Err("tls"),
                tls: false,
            },
            Case {
                name: "databaseIndex not int",
                metadata: &[
                    ("listName", "mylist"),
                    ("address", "a:1"),
                    ("databaseIndex", "x"),
                ],
                auth: &[],
                expected: Err("databaseIndex"),
                tls: false,
            },
        ];
        for case in cases {
            let result =
                Metadata::parse(&config("redis", case.metadata, case.auth, RESOLVED_ENV, 0));
            match (case.expected, result) {
                (Ok(()), Ok(m)) => {
                    assert_eq!(m.connection.tls.enabled, case.tls, "{}", case.name);
                    let get = |key: &str| {
                        case.auth
                            .iter()
                            .find(|(k, _)| *k == key)
                            .map(|(_, v)| (*v).to_owned())
                    };
                    if m.connection.tls.enabled {
                        assert_eq!(m.connection.tls.ca, get("ca"), "{}", case.name);
                        assert_eq!(m.connection.tls.cert, get("cert"), "{}", case.name);
                        assert_eq!(m.connection.tls.key, get("key"), "{}", case.name);
                        assert_eq!(
                            m.connection.tls.key_password,
                            get("keyPassword"),
                            "{}",
                            case.name
                        );
                    }
                }
                (Err(key), Err(errors)) => {
                    assert!(
                        errors.0.iter().any(|e| e.key == key),
                        "{}: expected `{key}`, got {errors}",
                        case.name
                    );
                    assert!(errors.0.iter().all(|e| e.hint.is_some()), "{}", case.name);
                }
                (expected, got) => panic!("{}: expected {expected:?}, got {got:?}", case.name),
            }
        }
    }

    #[test]
    fn addresses_merge_in_keda_order() {
        let m = Metadata::parse(&config(
            "redis",
            &[
                ("listName", "mylist"),
                ("addressFromEnv", "REDIS_HOST"),
                ("host", "REDIS_HOST"),
                ("port", "REDIS_PORT"),
            ],
            &[],
            RESOLVED_ENV,
            0,
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.connection.addresses, ["none", "REDIS_HOST:REDIS_PORT"]);
        assert_eq!(m.list_length, 5);
    }

    /// KEDA's `redisMetricIdentifiers`.
    #[test]
    fn redis_metric_identifiers() {
        let metadata: Pairs = &[
            ("listName", "mylist"),
            ("listLength", "10"),
            ("addressFromEnv", "REDIS_HOST"),
            ("passwordFromEnv", "REDIS_PASSWORD"),
        ];
        for (index, name) in [(0, "s0-redis-mylist"), (1, "s1-redis-mylist")] {
            let scaler = RedisScaler::build(
                &config("redis", metadata, &[], RESOLVED_ENV, index),
                &ScalerContext::default(),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let specs = scaler.metric_specs();
            let metric = specs[0].external().unwrap_or_else(|| panic!("external"));
            assert_eq!(metric.name.as_str(), name);
            assert_eq!(metric.target, 10.0);
        }
    }

    struct TopologyCase {
        name: &'static str,
        metadata: Pairs,
        env: Pairs,
        auth: Pairs,
        expected: Result<Metadata, &'static [&'static str]>,
    }

    fn meta(addresses: &[&str], connection: ConnectionInfo) -> Metadata {
        Metadata {
            topology: Topology::Standalone,
            list_name: "mylist".into(),
            list_length: 5,
            activation_list_length: 0,
            database_index: 0,
            connection: ConnectionInfo {
                addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
                ..connection
            },
        }
    }

    fn some(value: &str) -> Option<String> {
        Some(value.to_owned())
    }

    /// KEDA's `TestParseRedisClusterMetadata` and `TestParseRedisSentinelMetadata` cases.
    fn topology_cases() -> Vec<TopologyCase> {
        const HOSTS: (&str, &str) = ("hosts", "a, b, c");
        const PORTS: (&str, &str) = ("ports", "1, 2, 3");
        const LIST: (&str, &str) = ("listName", "mylist");
        const ABC: &[&str] = &["a:1", "b:2", "c:3"];
        let none = ConnectionInfo::default;
        vec![
            TopologyCase {
                name: "empty metadata",
                metadata: &[],
                env: &[],
                auth: &[],
                expected: Err(&["listName", "address"]),
            },
            TopologyCase {
                name: "unequal hosts and ports",
                metadata: &[LIST, ("hosts", "a, b, c"), ("ports", "1, 2")],
                env: &[],
                auth: &[],
                expected: Err(&["hosts"]),
            },
            TopologyCase {
                name: "no list name",
                metadata: &[HOSTS, PORTS, ("listLength", "5")],
                env: &[],
                auth: &[],
                expected: Err(&["listName"]),
            },
            TopologyCase {
                name: "invalid list length",
                metadata: &[HOSTS, PORTS, LIST, ("listLength", "invalid")],
                env: &[],
                auth: &[],
                expected: Err(&["listLength"]),
            },
            TopologyCase {
                name: "addresses in auth params",
                metadata: &[LIST],
                env: &[],
                auth: &[("addresses", ":7001, :7002")],
                expected: Ok(meta(&[":7001", ":7002"], none())),
            },
            TopologyCase {
                name: "hosts and ports in auth params",
                metadata: &[LIST],
                env: &[],
                auth: &[("hosts", "   a, b,    c "), ("ports", "1, 2, 3")],
                expected: Ok(meta(ABC, none())),
            },
            TopologyCase {
                name: "username in auth params",
                metadata: &[HOSTS, PORTS, LIST],
                env: &[],
                auth: &[("username", "username")],
                expected: Ok(meta(
                    ABC,
                    ConnectionInfo {
                        username: some("username"),
                        ..none()
                    },
                )),
            },
            TopologyCase {
                name: "username in metadata",
                metadata: &[HOSTS, PORTS, LIST, ("username", "username")],
                env: &[],
                auth: &[],
                expected: Ok(meta(
                    ABC,
                    ConnectionInfo {
                        username: some("username"),
                        ..none()
                    },
                )),
            },
            TopologyCase {
                name: "username from env",
                metadata: &[HOSTS, PORTS, LIST, ("usernameFromEnv", "REDIS_USERNAME")],
                env: RESOLVED_ENV,
                auth: &[],
                expected: Ok(meta(
                    ABC,
                    ConnectionInfo {
                        username: some("none"),
                        ..none()
                    },
                )),
            },
            TopologyCase {
                name: "password in auth params",
                metadata: &[HOSTS, PORTS, LIST],
                env: &[],
                auth: &[("password", "password")],
                expected: Ok(meta(
                    ABC,
                    ConnectionInfo {
                        password: some("password"),
                        ..none()
                    },
                )),
            },
            TopologyCase {
                name: "password from env",
                metadata: &[HOSTS, PORTS, LIST, ("passwordFromEnv", "REDIS_PASSWORD")],
                env: RESOLVED_ENV,
                auth: &[],
                expected: Ok(meta(
                    ABC,
                    ConnectionInfo {
                        password: some("none"),
                        ..none()
                    },
                )),
            },
            TopologyCase {
                name: "enableTLS without unsafeSsl",
                metadata: &[LIST, ("enableTLS", "true")],
                env: &[],
                auth: &[("addresses", ":7001, :7002")],
                expected: Ok(meta(
                    &[":7001", ":7002"],
                    ConnectionInfo {
                        tls: TlsSettings {
                            enabled: true,
                            ..TlsSettings::default()
                        },
                        ..none()
                    },
                )),
            },
            TopologyCase {
                name: "enableTLS with unsafeSsl",
                metadata: &[LIST, ("enableTLS", "true"), ("unsafeSsl", "true")],
                env: &[],
                auth: &[("addresses", ":7001, :7002")],
                expected: Ok(meta(
                    &[":7001", ":7002"],
                    ConnectionInfo {
                        tls: TlsSettings {
                            enabled: true,
                            unsafe_ssl: true,
                            ..TlsSettings::default()
                        },
                        ..none()
                    },
                )),
            },
            TopologyCase {
                name: "sentinel credentials in auth params",
                metadata: &[HOSTS, PORTS, LIST],
                env: &[],
                auth: &[
                    ("sentinelUsername", "sentinelUsername"),
                    ("sentinelPassword", "sentinelPassword"),
                    ("sentinelMaster", "sentinelMaster"),
                ],
                expected: Ok(meta(
                    ABC,
                    ConnectionInfo {
                        sentinel_username: some("sentinelUsername"),
                        sentinel_password: some("sentinelPassword"),
                        sentinel_master: some("sentinelMaster"),
                        ..none()
                    },
                )),
            },
            TopologyCase {
                name: "sentinel credentials in metadata",
                metadata: &[
                    HOSTS,
                    PORTS,
                    LIST,
                    ("sentinelUsername", "u"),
                    ("sentinelPassword", "p"),
                    ("sentinelMaster", "m"),
                ],
                env: &[],
                auth: &[],
                expected: Ok(meta(
                    ABC,
                    ConnectionInfo {
                        sentinel_username: some("u"),
                        sentinel_password: some("p"),
                        sentinel_master: some("m"),
                        ..none()
                    },
                )),
            },
            TopologyCase {
                name: "sentinel credentials from env",
                metadata: &[
                    HOSTS,
                    PORTS,
                    LIST,
                    ("sentinelUsernameFromEnv", "REDIS_SENTINEL_USERNAME"),
                    ("sentinelPasswordFromEnv", "REDIS_SENTINEL_PASSWORD"),
                    ("sentinelMasterFromEnv", "REDIS_SENTINEL_MASTER"),
                ],
                env: RESOLVED_ENV,
                auth: &[],
                expected: Ok(meta(
                    ABC,
                    ConnectionInfo {
                        sentinel_username: some("none"),
                        sentinel_password: some("none"),
                        sentinel_master: some("none"),
                        ..none()
                    },
                )),
            },
        ]
    }

    #[test]
    fn parse_redis_cluster_and_sentinel_metadata() {
        for (trigger_type, topology) in [
            ("redis-cluster", Topology::Cluster),
            ("redis-sentinel", Topology::Sentinel),
        ] {
            for case in topology_cases() {
                let result =
                    Metadata::parse(&config(trigger_type, case.metadata, case.auth, case.env, 0));
                match (case.expected, result) {
                    (Ok(expected), Ok(got)) => {
                        assert_eq!(
                            got,
                            Metadata {
                                topology,
                                ..expected
                            },
                            "{trigger_type}: {}",
                            case.name
                        )
                    }
                    (Err(keys), Err(errors)) => {
                        for key in keys {
                            assert!(
                                errors.0.iter().any(|e| e.key == *key),
                                "{trigger_type}: {}: expected `{key}`, got {errors}",
                                case.name
                            );
                        }
                    }
                    (expected, got) => panic!(
                        "{trigger_type}: {}: expected {expected:?}, got {got:?}",
                        case.name
                    ),
                }
            }
        }
    }

    #[test]
    fn metadata_password_shadows_auth_params_but_empty_does_not() {
        let m = Metadata::parse(&config(
            "redis",
            &[("listName", "l"), ("address", "a:1"), ("password", "")],
            &[("password", "secret")],
            &[],
            0,
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.connection.password.as_deref(), Some("secret"));
    }
}
