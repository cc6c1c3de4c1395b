//! NATS with JetStream for the scaler tests, from the Debian package `nats-server`: a standalone
//! server (optionally with user/password, token or nkey auth, TLS on the client port, mutual
//! TLS, and the monitoring port over HTTPS), and a three-node JetStream cluster.
//!
//! A standalone server picks its own ports (`-p -1 -m -1`) and writes them to a ports file
//! (`--ports_file_dir`), so there is no free-port race; a restart reuses them. Cluster nodes
//! listen on 127.0.0.1, 127.0.0.2 and 127.0.0.3 (all loopback on Linux) with the same ports,
//! the layout of a Kubernetes StatefulSet: KEDA reaches every node at `<node host>:<the
//! monitoring port>`, which only works when the nodes differ by host, not by port.
//!
//! Readiness is awaited, never slept for: the ports file, `/healthz?js-enabled-only=true`
//! (or the log's `Server is ready` when monitoring is HTTPS), and for the cluster a JetStream
//! meta leader known to every node.
// Test infrastructure: a failure to set up a server should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ServerProcess, TestPki, require_binary, wait_for};

const PACKAGE: &str = "nats-server";
const READY: Duration = Duration::from_secs(20);

fn nats_server() -> PathBuf {
    require_binary("nats-server", PACKAGE)
}

/// How clients authenticate to a standalone server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum NatsServerAuth {
    #[default]
    None,
    UserPassword {
        user: String,
        password: String,
    },
    Token(String),
    /// An nkey user; the server knows only its public key.
    Nkey {
        public_key: String,
        seed: String,
    },
}

impl NatsServerAuth {
    pub fn user_password(user: &str, password: &str) -> Self {
        Self::UserPassword {
            user: user.to_owned(),
            password: password.to_owned(),
        }
    }

    /// A fresh nkey user.
    pub fn new_nkey() -> Self {
        let pair = nkeys::KeyPair::new_user();
        Self::Nkey {
            public_key: pair.public_key(),
            seed: pair.seed().expect("an nkey seed"),
        }
    }
}

/// How a standalone server is configured.
#[derive(Clone, Debug, Default)]
pub struct NatsOptions {
    pub auth: NatsServerAuth,
    /// TLS on the client port (`--tls`) with a fresh [`TestPki`]; clients must use TLS.
    pub tls: bool,
    /// With TLS: require a client certificate signed by the test CA (`--tlsverify`).
    pub tls_client_auth: bool,
    /// Serve monitoring over HTTPS (`-ms`, needs `tls`) instead of HTTP.
    pub https_monitoring: bool,
}

/// A standalone `nats-server` with JetStream, killed when dropped.
#[derive(Debug)]
pub struct NatsServer {
    process: ServerProcess,
    options: NatsOptions,
    pki: Option<TestPki>,
    client_port: u16,
    monitoring_port: u16,
    // Last: removed after the process is killed.
    dir: TempDir,
}

impl NatsServer {
    /// A server without auth or TLS.
    pub async fn start() -> Self {
        Self::start_with(NatsOptions::default()).await
    }

    pub async fn start_with(options: NatsOptions) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("windlass-nats-")
            .tempdir()
            .expect("a temporary directory");
        let pki = options.tls.then(|| TestPki::generate(dir.path()));
        let process = spawn_standalone(&dir, &options, pki.as_ref(), None);
        let (client_port, monitoring_port) = read_ports(&dir, &process).await;
        let server = Self {
            process,
            options,
            pki,
            client_port,
            monitoring_port,
            dir,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        if self.options.https_monitoring {
            let log = self.dir.path().join("nats.log");
            wait_for("nats-server to log `Server is ready`", READY, || {
                let log = log.clone();
                async move {
                    std::fs::read_to_string(&log)
                        .ok()
                        .filter(|text| text.contains("Server is ready"))
                }
            })
            .await;
        } else {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.monitoring_port));
            wait_for(
                "nats-server /healthz?js-enabled-only=true",
                READY,
                || async move {
                    http_get(addr, "/healthz?js-enabled-only=true")
                        .await
                        .filter(|body| body.contains("\"ok\""))
                },
            )
            .await;
        }
    }

    /// Kills the server now (it "goes away"); [`NatsServer::restart`] brings it back.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the server again on the same ports, with the same JetStream store.
    pub async fn restart(&mut self) {
        self.process.kill();
        self.process = spawn_standalone(
            &self.dir,
            &self.options,
            self.pki.as_ref(),
            Some((self.client_port, self.monitoring_port)),
        );
        self.wait_ready().await;
    }

    /// `nats://127.0.0.1:<port>` (or `tls://…` with TLS).
    pub fn client_url(&self) -> String {
        let scheme = if self.options.tls { "tls" } else { "nats" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// `127.0.0.1:<monitoring port>`: the value of `natsServerMonitoringEndpoint`.
    pub fn monitoring_endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.monitoring_port)
    }

    pub fn pki(&self) -> Option<&TestPki> {
        self.pki.as_ref()
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    /// A client with the server's credentials and TLS, for setting up streams and messages.
    pub async fn connect(&self) -> async_nats::Client {
        let mut options = match &self.options.auth {
            NatsServerAuth::None => async_nats::ConnectOptions::new(),
            NatsServerAuth::UserPassword { user, password } => {
                async_nats::ConnectOptions::with_user_and_password(user.clone(), password.clone())
            }
            NatsServerAuth::Token(token) => async_nats::ConnectOptions::with_token(token.clone()),
            NatsServerAuth::Nkey { seed, .. } => {
                async_nats::ConnectOptions::with_nkey(seed.clone())
            }
        };
        if let Some(pki) = &self.pki {
            options = options
                .add_root_certificates(pki.ca_file.clone())
                .require_tls(true);
            if self.options.tls_client_auth {
                options = options.add_client_certificate(
                    pki.client.cert_file.clone(),
                    pki.client.key_file.clone(),
                );
            }
        }
        options
            .connect(self.client_url())
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}\n{}", self.client_url(), self.log()))
    }
}

fn spawn_standalone(
    dir: &TempDir,
    options: &NatsOptions,
    pki: Option<&TestPki>,
    ports: Option<(u16, u16)>,
) -> ServerProcess {
    let (client, monitoring) = match ports {
        Some((client, monitoring)) => (client.to_string(), monitoring.to_string()),
        None => ("-1".to_owned(), "-1".to_owned()),
    };
    let mut command = Command::new(nats_server());
    command.args(["-a", "127.0.0.1", "-p", &client]);
    if options.https_monitoring {
        assert!(options.tls, "HTTPS monitoring needs `tls`");
        command.args(["-ms", &monitoring]);
    } else {
        command.args(["-m", &monitoring]);
    }
    command
        .arg("-js")
        .arg("-sd")
        .arg(dir.path().join("js"))
        .arg("--ports_file_dir")
        .arg(dir.path());
    match &options.auth {
        NatsServerAuth::None => {}
        NatsServerAuth::UserPassword { user, password } => {
            command.args(["--user", user, "--pass", password]);
        }
        NatsServerAuth::Token(token) => {
            command.args(["--auth", token]);
        }
        NatsServerAuth::Nkey { public_key, .. } => {
            let config = dir.path().join("nkey.conf");
            std::fs::write(
                &config,
                format!("authorization {{\n  users = [ {{ nkey: \"{public_key}\" }} ]\n}}\n"),
            )
            .expect("write the nkey configuration");
            command.arg("-c").arg(config);
        }
    }
    if let Some(pki) = pki {
        command
            .arg(if options.tls_client_auth {
                "--tlsverify"
            } else {
                "--tls"
            })
            .arg("--tlscert")
            .arg(&pki.server.cert_file)
            .arg("--tlskey")
            .arg(&pki.server.key_file)
            .arg("--tlscacert")
            .arg(&pki.ca_file);
    }
    ServerProcess::spawn("nats", command, dir.path())
}

/// The client and monitoring ports from `<dir>/nats-server_<pid>.ports`.
async fn read_ports(dir: &TempDir, process: &ServerProcess) -> (u16, u16) {
    let pid = process.pid().expect("a running nats-server");
    let path = dir.path().join(format!("nats-server_{pid}.ports"));
    let ports: Value = wait_for("the nats-server ports file", READY, || {
        let path = path.clone();
        async move {
            let text = std::fs::read_to_string(&path).ok()?;
            serde_json::from_str(&text).ok()
        }
    })
    .await;
    let port = |key: &str| -> u16 {
        let url = ports[key][0]
            .as_str()
            .unwrap_or_else(|| panic!("no {key} URL in {ports}"));
        url.rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in {url}"))
    };
    (port("nats"), port("monitoring"))
}

/// A plain HTTP GET (monitoring endpoints answer HTTP/1.0); the body, or `None` on any error.
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_owned())
}

/// A port free on every one of `ips`.
fn port_free_on_all(ips: &[Ipv4Addr], taken: &[u16]) -> u16 {
    loop {
        let port = super::free_port();
        if taken.contains(&port) {
            continue;
        }
        if ips.iter().all(|ip| TcpListener::bind((*ip, port)).is_ok()) {
            return port;
        }
    }
}

/// One node of a [`NatsCluster`].
#[derive(Debug)]
pub struct ClusterNode {
    /// `n1`, `n2`, `n3`: the `server_name` JetStream reports as a leader.
    pub name: String,
    pub ip: Ipv4Addr,
    process: Option<ServerProcess>,
}

/// Three JetStream nodes in one cluster (`windlass`), killed when dropped.
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<ClusterNode>,
    client_port: u16,
    monitoring_port: u16,
    // Last: removed after the processes are killed.
    dir: TempDir,
}

impl NatsCluster {
    /// Starts the nodes and waits until every one knows the JetStream meta leader.
    pub async fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("windlass-nats-cluster-")
            .tempdir()
            .expect("a temporary directory");
        let ips: Vec<Ipv4Addr> = (1..=3).map(|n| Ipv4Addr::new(127, 0, 0, n)).collect();
        let client_port = port_free_on_all(&ips, &[]);
        let monitoring_port = port_free_on_all(&ips, &[client_port]);
        let cluster_port = port_free_on_all(&ips, &[client_port, monitoring_port]);
        let routes = ips
            .iter()
            .map(|ip| format!("nats://{ip}:{cluster_port}"))
            .collect::<Vec<_>>()
            .join(",");
        let nodes = ips
            .iter()
            .enumerate()
            .map(|(i, ip)| {
                let name = format!("n{}", i + 1);
                let node_dir = dir.path().join(&name);
                std::fs::create_dir_all(&node_dir).expect("a node directory");
                let mut command = Command::new(nats_server());
                command
                    .args(["-a", &ip.to_string()])
                    .args(["-p", &client_port.to_string()])
                    .args(["-m", &monitoring_port.to_string()])
                    .args(["--server_name", &name])
                    .args(["--cluster_name", "windlass"])
                    .args(["--cluster", &format!("nats://{ip}:{cluster_port}")])
                    .args(["--routes", &routes])
                    .args(["--client_advertise", &format!("{ip}:{client_port}")])
                    .arg("-js")
                    .arg("-sd")
                    .arg(node_dir.join("js"));
                ClusterNode {
                    name: name.clone(),
                    ip: *ip,
                    process: Some(ServerProcess::spawn(&name, command, &node_dir)),
                }
            })
            .collect();
        let cluster = Self {
            nodes,
            client_port,
            monitoring_port,
            dir,
        };
        for node in &cluster.nodes {
            let addr = SocketAddr::from((node.ip, monitoring_port));
            let what = format!("{} to know the JetStream meta leader", node.name);
            wait_for(&what, READY, || async move {
                let body = http_get(addr, "/jsz").await?;
                let jsz: Value = serde_json::from_str(&body).ok()?;
                jsz["meta_cluster"]["leader"]
                    .as_str()
                    .filter(|leader| !leader.is_empty())
                    .map(str::to_owned)
            })
            .await;
        }
        cluster
    }

    pub fn nodes(&self) -> &[ClusterNode] {
        &self.nodes
    }

    /// The node named `name` (`n1`…), by index.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|node| node.name == name)
    }

    /// `natsServerMonitoringEndpoint` of node `index`: `127.0.0.<index+1>:<monitoring port>`.
    pub fn monitoring_endpoint(&self, index: usize) -> String {
        format!("{}:{}", self.nodes[index].ip, self.monitoring_port)
    }

    /// `nats://<ip>:<port>` of every node still running.
    pub fn client_urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|node| node.process.is_some())
            .map(|node| format!("nats://{}:{}", node.ip, self.client_port))
            .collect()
    }

    /// Kills node `index` now.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut process) = self.nodes[index].process.take() {
            process.kill();
        }
    }

    /// A client connected to the running nodes.
    pub async fn connect(&self) -> async_nats::Client {
        let urls: Vec<async_nats::ServerAddr> = self
            .client_urls()
            .iter()
            .map(|url| url.parse().expect("a server URL"))
            .collect();
        async_nats::connect(urls)
            .await
            .unwrap_or_else(|e| panic!("connect to the cluster: {e}"))
    }

    /// The logs of every node, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .filter_map(|node| {
                node.process
                    .as_ref()
                    .map(|p| format!("--- {} ---\n{}", node.name, p.log()))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}
