//! Redis for the scaler tests, from the Debian packages (`redis-server`, `redis-sentinel`,
//! `redis-tools`): a standalone server (optionally with `requirepass`, ACL users and TLS), a
//! cluster of three masters, and a master watched by one Sentinel (optionally with a replica, for
//! failovers). Every process runs in the foreground in its own temporary directory, on free
//! loopback ports, without persistence, and is killed when its handle is dropped.
//!
//! Readiness is awaited, never slept for: a `PING` answered, `cluster_state:ok` on every node,
//! the Sentinel naming the master (and knowing the replica).
// Test infrastructure: a failure to set up a server should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::{ServerProcess, TestPki, free_port, free_port_pair, require_binary, wait_for};

const PACKAGE: &str = "redis-server redis-sentinel redis-tools";
const READY: Duration = Duration::from_secs(20);

fn redis_server() -> PathBuf {
    require_binary("redis-server", PACKAGE)
}

fn redis_cli() -> PathBuf {
    require_binary("redis-cli", PACKAGE)
}

/// How a standalone server is configured.
#[derive(Clone, Debug, Default)]
pub struct RedisOptions {
    /// `requirepass`: the default user's password.
    pub requirepass: Option<String>,
    /// ACL users `(name, password)` allowed every command on every key.
    pub users: Vec<(String, String)>,
    /// Serve TLS only (`--port 0 --tls-port P`) with a fresh [`TestPki`].
    pub tls: bool,
    /// With TLS: require a client certificate signed by the test CA.
    pub tls_client_auth: bool,
    /// More `redis-server` arguments (`--replicaof`, cluster settings, …).
    pub extra_args: Vec<String>,
}

impl RedisOptions {
    pub fn password(password: &str) -> Self {
        Self {
            requirepass: Some(password.to_owned()),
            ..Self::default()
        }
    }

    pub fn tls(client_auth: bool) -> Self {
        Self {
            tls: true,
            tls_client_auth: client_auth,
            ..Self::default()
        }
    }
}

/// One `redis-server` process.
#[derive(Debug)]
pub struct RedisServer {
    process: ServerProcess,
    dir: TempDir,
    port: u16,
    options: RedisOptions,
    pki: Option<TestPki>,
}

impl RedisServer {
    /// A plain server: no password, no TLS.
    pub async fn start() -> Self {
        Self::start_with(RedisOptions::default()).await
    }

    pub async fn start_with(options: RedisOptions) -> Self {
        Self::start_on(free_port(), options).await
    }

    /// A server on `port` (the cluster needs ports whose bus port is free too).
    pub async fn start_on(port: u16, options: RedisOptions) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory for redis");
        let pki = options.tls.then(|| TestPki::generate(dir.path()));
        let process = ServerProcess::spawn(
            "redis-server",
            Self::command(port, &options, &dir, pki.as_ref()),
            dir.path(),
        );
        let server = Self {
            process,
            dir,
            port,
            options,
            pki,
        };
        server.wait_ready().await;
        server
    }

    fn command(port: u16, options: &RedisOptions, dir: &TempDir, pki: Option<&TestPki>) -> Command {
        let mut command = Command::new(redis_server());
        command.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        command.arg("--dir").arg(dir.path());
        match pki {
            Some(pki) => {
                command.args(["--port", "0", "--tls-port", &port.to_string()]);
                command.arg("--tls-cert-file").arg(&pki.server.cert_file);
                command.arg("--tls-key-file").arg(&pki.server.key_file);
                command.arg("--tls-ca-cert-file").arg(&pki.ca_file);
                command.args([
                    "--tls-auth-clients",
                    if options.tls_client_auth { "yes" } else { "no" },
                ]);
            }
            None => {
                command.args(["--port", &port.to_string()]);
            }
        }
        if let Some(password) = &options.requirepass {
            command.args(["--requirepass", password]);
        }
        for (user, password) in &options.users {
            command.args([
                "--user",
                user,
                "on",
                &format!(">{password}"),
                "~*",
                "&*",
                "+@all",
            ]);
        }
        command.args(&options.extra_args);
        command
    }

    async fn wait_ready(&self) {
        let what = format!("redis-server on port {} to answer PING", self.port);
        wait_for(&what, READY, || async {
            let answer = self.try_cli(&["PING"]).await?;
            (answer == "PONG").then_some(())
        })
        .await;
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, as a trigger's `address`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The CA and certificates when the server speaks TLS.
    pub fn pki(&self) -> Option<&TestPki> {
        self.pki.as_ref()
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The process id (e.g. to stop it with SIGSTOP); `None` once killed.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    fn cli_command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(redis_cli());
        command.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "--no-auth-warning",
        ]);
        if let Some(password) = &self.options.requirepass {
            command.args(["-a", password]);
        }
        if let Some(pki) = &self.pki {
            command.arg("--tls").arg("--cacert").arg(&pki.ca_file);
            command.arg("--cert").arg(&pki.client.cert_file);
            command.arg("--key").arg(&pki.client.key_file);
        }
        command
    }

    async fn try_cli(&self, args: &[&str]) -> Option<String> {
        let output = self.cli_command().args(args).output().await.ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Runs one `redis-cli` command as the default user and returns what it printed.
    pub async fn cli(&self, args: &[&str]) -> String {
        match self.try_cli(args).await {
            Some(output) => output,
            None => panic!(
                "redis-cli {args:?} failed against port {}; server log:\n{}",
                self.port,
                self.log()
            ),
        }
    }

    /// Kills the server now (it "goes away").
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the server again on the same port with the same settings (and no data).
    pub async fn restart(&mut self) {
        self.process.kill();
        self.process = ServerProcess::spawn(
            "redis-server",
            Self::command(self.port, &self.options, &self.dir, self.pki.as_ref()),
            self.dir.path(),
        );
        self.wait_ready().await;
    }
}

/// Three masters holding every slot, no replicas.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub async fn start() -> Self {
        let mut ports: HashSet<u16> = HashSet::new();
        while ports.len() < 3 {
            let port = free_port_pair(10000);
            if !ports.contains(&(port + 10000)) && !ports.iter().any(|p: &u16| *p + 10000 == port) {
                ports.insert(port);
            }
        }
        let mut nodes = Vec::new();
        for port in ports {
            let options = RedisOptions {
                extra_args: vec![
                    "--cluster-enabled".into(),
                    "yes".into(),
                    "--cluster-config-file".into(),
                    format!("nodes-{port}.conf"),
                    "--cluster-node-timeout".into(),
                    "2000".into(),
                ],
                ..RedisOptions::default()
            };
            nodes.push(RedisServer::start_on(port, options).await);
        }
        let mut create = tokio::process::Command::new(redis_cli());
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(node.address());
        }
        create.args(["--cluster-replicas", "0", "--cluster-yes"]);
        let output = create
            .output()
            .await
            .expect("run redis-cli --cluster create");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = Self { nodes };
        for node in &cluster.nodes {
            let what = format!("cluster_state:ok on node {}", node.port());
            wait_for(&what, READY, || async {
                let info = node.try_cli(&["CLUSTER", "INFO"]).await?;
                info.contains("cluster_state:ok").then_some(())
            })
            .await;
        }
        cluster
    }

    /// Every node's `127.0.0.1:<port>`.
    pub fn addresses(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::address).collect()
    }

    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// Runs a command through `redis-cli -c`, which follows the cluster's redirections.
    pub async fn cli(&self, args: &[&str]) -> String {
        let node = &self.nodes[0];
        let output = node
            .cli_command()
            .arg("-c")
            .args(args)
            .output()
            .await
            .expect("run redis-cli -c");
        assert!(output.status.success(), "redis-cli -c {args:?} failed");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// The port of the master that serves `key`.
    pub async fn node_of(&self, key: &str) -> u16 {
        let slot: u16 = self.nodes[0]
            .cli(&["CLUSTER", "KEYSLOT", key])
            .await
            .parse()
            .expect("a slot number");
        // redis-cli prints each range flat: start, end, then ip, port, id of its master.
        let ranges = self.nodes[0].cli(&["CLUSTER", "SLOTS"]).await;
        let lines: Vec<&str> = ranges.lines().map(str::trim).collect();
        for window in lines.windows(4) {
            if let (Ok(start), Ok(end), Ok(port)) = (
                window[0].parse::<u16>(),
                window[1].parse::<u16>(),
                window[3].parse::<u16>(),
            ) && window[2] == "127.0.0.1"
                && (start..=end).contains(&slot)
            {
                return port;
            }
        }
        panic!("no node serves slot {slot} of `{key}`: {ranges}");
    }
}

/// A master, optionally a replica, and one Sentinel monitoring them as `mymaster` (quorum 1).
#[derive(Debug)]
pub struct RedisSentinel {
    pub master: RedisServer,
    pub replica: Option<RedisServer>,
    sentinel: ServerProcess,
    sentinel_port: u16,
    _dir: TempDir,
}

impl RedisSentinel {
    pub const MASTER_NAME: &'static str = "mymaster";

    /// `with_replica` adds a replica the Sentinel can promote when the master dies.
    pub async fn start(with_replica: bool) -> Self {
        let master = RedisServer::start_with(RedisOptions {
            extra_args: vec!["--repl-diskless-sync-delay".into(), "0".into()],
            ..RedisOptions::default()
        })
        .await;
        let replica = if with_replica {
            Some(
                RedisServer::start_with(RedisOptions {
                    extra_args: vec![
                        "--replicaof".into(),
                        "127.0.0.1".into(),
                        master.port().to_string(),
                        "--repl-diskless-sync-delay".into(),
                        "0".into(),
                    ],
                    ..RedisOptions::default()
                })
                .await,
            )
        } else {
            None
        };
        let dir = tempfile::tempdir().expect("a temporary directory for redis-sentinel");
        let sentinel_port = free_port();
        // Sentinel rewrites its configuration file, so it gets its own writable copy.
        let config = dir.path().join("sentinel.conf");
        std::fs::write(
            &config,
            format!(
                "port {sentinel_port}\nbind 127.0.0.1\ndir {}\nsentinel monitor {name} 127.0.0.1 {master} 1\nsentinel down-after-milliseconds {name} 1000\nsentinel failover-timeout {name} 3000\n",
                dir.path().display(),
                name = Self::MASTER_NAME,
                master = master.port(),
            ),
        )
        .expect("write sentinel.conf");
        let mut command = Command::new(require_binary("redis-sentinel", PACKAGE));
        command.arg(&config);
        let sentinel = ServerProcess::spawn("redis-sentinel", command, dir.path());
        let setup = Self {
            master,
            replica,
            sentinel,
            sentinel_port,
            _dir: dir,
        };
        let expected = setup.master.port();
        wait_for("the sentinel to name the master", READY, || async {
            (setup.master_port().await == Some(expected)).then_some(())
        })
        .await;
        if let Some(replica) = &setup.replica {
            wait_for(
                "the replica to sync and the sentinel to know it",
                READY,
                || async {
                    let info = replica.try_cli(&["INFO", "replication"]).await?;
                    let replicas = setup
                        .sentinel_cli(&["SENTINEL", "REPLICAS", Self::MASTER_NAME])
                        .await?;
                    (info.contains("master_link_status:up")
                        && replicas.contains(&replica.port().to_string()))
                    .then_some(())
                },
            )
            .await;
        }
        setup
    }

    /// `127.0.0.1:<sentinel port>`, as a `redis-sentinel` trigger's `address`.
    pub fn sentinel_address(&self) -> String {
        format!("127.0.0.1:{}", self.sentinel_port)
    }

    pub fn sentinel_log(&self) -> String {
        self.sentinel.log()
    }

    async fn sentinel_cli(&self, args: &[&str]) -> Option<String> {
        let output = tokio::process::Command::new(redis_cli())
            .args(["-h", "127.0.0.1", "-p", &self.sentinel_port.to_string()])
            .args(args)
            .output()
            .await
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// The master's port as the Sentinel reports it now.
    pub async fn master_port(&self) -> Option<u16> {
        let answer = self
            .sentinel_cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", Self::MASTER_NAME])
            .await?;
        answer.lines().nth(1)?.trim().parse().ok()
    }

    /// Kills the master and waits until the Sentinel has promoted the replica; returns the new
    /// master's port.
    pub async fn fail_over(&mut self) -> u16 {
        let replica = self
            .replica
            .as_ref()
            .expect("a failover needs a replica")
            .port();
        self.master.kill();
        wait_for("the sentinel to promote the replica", READY, || async {
            (self.master_port().await == Some(replica)).then_some(())
        })
        .await;
        replica
    }
}
