//! Redis connection parameters shared by the list (`redis*`) and stream (`redis*-streams`)
//! triggers: addresses, credentials, Sentinel settings and TLS (KEDA's `redisConnectionInfo`).
//!
//! | Key (aliases) | Src | Meaning |
//! |---|---|---|
//! | `address` (`addresses`) | M, A, E | Comma list of `host:port`. |
//! | `host` (`hosts`), `port` (`ports`) | M, E, A | Parallel comma lists; when both are given their counts must match and each `host:port` is appended to the addresses. |
//! | `username`, `password` | M, E, A | ACL user and password. |
//! | `sentinelUsername`, `sentinelPassword`, `sentinelMaster` | M, A, E | Sentinel credentials and the master's name. |
//! | `enableTLS` | M | Boolean: connect with TLS. |
//! | `tls` | A | `enable` or `disable`; not together with `enableTLS`. |
//! | `unsafeSsl` | M | Skip certificate verification (default `false`). |
//! | `Cert` (`cert`), `key`, `keyPassword`, `ca` | A | TLS material. |
//!
//! At least one address must remain after merging, and the first must not be empty. A host
//! without a port (or a port without a host) is not merged, so alone it leaves no address. The
//! standalone topology uses only the first address; cluster uses all as seeds; Sentinel uses
//! them as Sentinel addresses.

use std::collections::BTreeMap;

use scaler_core::params::{ParamError, ParamReader, order, parse_go_bool};

/// Which Redis deployment the trigger type talks to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Topology {
    /// `redis`, `redis-streams`: one server, the first address.
    #[default]
    Standalone,
    /// `redis-cluster`, `redis-cluster-streams`: every address is a seed node.
    Cluster,
    /// `redis-sentinel`, `redis-sentinel-streams`: the addresses are Sentinels.
    Sentinel,
}

impl Topology {
    /// The topology a trigger type names.
    pub fn of_trigger_type(trigger_type: &str) -> Self {
        if trigger_type.starts_with("redis-cluster") {
            Self::Cluster
        } else if trigger_type.starts_with("redis-sentinel") {
            Self::Sentinel
        } else {
            Self::Standalone
        }
    }
}

/// TLS settings of the connection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlsSettings {
    pub enabled: bool,
    pub unsafe_ssl: bool,
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub key_password: Option<String>,
}

/// Where and as whom to connect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// `address` items followed by the merged `host:port` pairs; never empty.
    pub addresses: Vec<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub sentinel_username: Option<String>,
    pub sentinel_password: Option<String>,
    pub sentinel_master: Option<String>,
    pub tls: TlsSettings,
}

/// Go's `net.JoinHostPort`: brackets around hosts that contain a colon (IPv6).
pub(crate) fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

const NO_ADDRESSES: &str = "no addresses or hosts given. address should be a comma separated list of host:port or set the host/port values";

fn set(map: &BTreeMap<String, String>, key: &str) -> Option<String> {
    map.get(key)
        .map(|value| value.trim())
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

impl ConnectionInfo {
    /// Reads the connection parameters; problems are recorded on `r`.
    pub fn read(r: &mut ParamReader<'_>) -> Option<Self> {
        let addresses = r
            .key("address", order::M_A_E)
            .aliases(&["addresses"])
            .list();
        let username = r.key("username", order::M_E_A).string();
        let password = r.key("password", order::M_E_A).string();
        let sentinel_username = r.key("sentinelUsername", order::M_A_E).string();
        let sentinel_password = r.key("sentinelPassword", order::M_A_E).string();
        let sentinel_master = r.key("sentinelMaster", order::M_A_E).string();
        let hosts = r.key("host", order::M_E_A).aliases(&["hosts"]).list();
        let ports = r.key("port", order::M_E_A).aliases(&["ports"]).list();
        let unsafe_ssl = r.key("unsafeSsl", order::M).default("false").bool();
        let cert = r.key("Cert", order::A).aliases(&["cert"]).string();
        let key = r.key("key", order::A).string();
        let key_password = r.key("keyPassword", order::A).string();
        let ca = r.key("ca", order::A).string();

        let mut addresses = addresses.unwrap_or_default();
        let mut ok = true;
        if let (Some(hosts), Some(ports)) = (&hosts, &ports) {
            if hosts.len() == ports.len() {
                addresses.extend(
                    hosts
                        .iter()
                        .zip(ports)
                        .map(|(host, port)| join_host_port(host, port)),
                );
            } else {
                r.error(
                    ParamError::new(
                        "hosts",
                        "not enough hosts or ports given. number of hosts should be equal to the number of ports",
                    )
                    .with_hint(format!(
                        "give as many `hosts` as `ports` (got {} hosts and {} ports)",
                        hosts.len(),
                        ports.len()
                    )),
                );
                ok = false;
            }
        }
        if ok && addresses.first().is_none_or(String::is_empty) {
            let hint = match (&hosts, &ports) {
                (Some(_), None) => "`host` needs a `port`: set `port` (or `portFromEnv`)",
                (None, Some(_)) => "`port` needs a `host`: set `host` (or `hostFromEnv`)",
                _ => "set `address` (or `addressFromEnv`) to host:port, or `host` and `port`",
            };
            r.error(ParamError::new("address", NO_ADDRESSES).with_hint(hint));
            ok = false;
        }

        let enabled = Self::read_enable_tls(r);
        Some(Self {
            addresses,
            username,
            password,
            sentinel_username,
            sentinel_password,
            sentinel_master,
            tls: TlsSettings {
                enabled: enabled?,
                unsafe_ssl: unsafe_ssl?,
                ca,
                cert,
                key,
                key_password,
            },
        })
        .filter(|_| ok)
    }

    /// KEDA's `SetEnableTLS`: metadata `enableTLS` (Go boolean) or authParam `tls`
    /// (`enable`/`disable`), never both.
    fn read_enable_tls(r: &mut ParamReader<'_>) -> Option<bool> {
        let params = r.params();
        let metadata = set(&params.metadata, "enableTLS");
        let auth = set(&params.auth_params, "tls");
        match (metadata, auth) {
            (Some(_), Some(_)) => {
                r.error(
                    ParamError::new(
                        "tls",
                        "unable to set `tls` in both ScaledObject and TriggerAuthentication together",
                    )
                    .with_hint("remove `metadata.enableTLS` or the TriggerAuthentication's `tls`"),
                );
                None
            }
            (Some(value), None) => match parse_go_bool(&value) {
                Some(enabled) => Some(enabled),
                None => {
                    r.error(
                        ParamError::new(
                            "enableTLS",
                            format!("EnableTLS parsing error: {value:?} is not a boolean"),
                        )
                        .with_hint("write \"true\" or \"false\""),
                    );
                    None
                }
            },
            (None, Some(value)) => match value.as_str() {
                "enable" => Some(true),
                "disable" => Some(false),
                _ => {
                    r.error(
                        ParamError::new(
                            "tls",
                            format!("error incorrect TLS value given, got {value}"),
                        )
                        .with_hint(
                            "set the TriggerAuthentication's `tls` to `enable` or `disable`",
                        ),
                    );
                    None
                }
            },
            (None, None) => Some(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_host_port_brackets_ipv6() {
        assert_eq!(join_host_port("a", "1"), "a:1");
        assert_eq!(join_host_port("::1", "6379"), "[::1]:6379");
    }

    #[test]
    fn topology_follows_the_trigger_type() {
        assert_eq!(Topology::of_trigger_type("redis"), Topology::Standalone);
        assert_eq!(
            Topology::of_trigger_type("redis-streams"),
            Topology::Standalone
        );
        assert_eq!(
            Topology::of_trigger_type("redis-cluster-streams"),
            Topology::Cluster
        );
        assert_eq!(
            Topology::of_trigger_type("redis-sentinel"),
            Topology::Sentinel
        );
    }
}
