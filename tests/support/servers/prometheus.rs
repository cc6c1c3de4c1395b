//! `prometheus` test servers: a real Prometheus 2.42 (Debian's `prometheus` package) on a free
//! loopback port, in its own temporary directory, killed when the handle is dropped; and the
//! small HTTP pieces the tests put around it.
//!
//! # Where the data comes from
//!
//! - **Backfill** ([`PrometheusConfig::backfill`]): OpenMetrics text written into the TSDB with
//!   `promtool tsdb create-blocks-from openmetrics` before the server starts. The values and
//!   their timestamps are exactly the test's, and they are queryable as soon as `/-/ready`
//!   answers (about 0.1 s). The value cases use this: they are deterministic and cheap, and a
//!   test asks at a fixed `time` just after its samples, so nothing depends on the clock.
//! - **Scraping** ([`PrometheusConfig::scrape`]): the server scrapes `/metrics` endpoints the
//!   test serves ([`MetricsEndpoint`]) every second. Prometheus batches service-discovery
//!   updates for 5 s, so the first sample arrives about 6 s after start (measured: 5.4–5.9 s,
//!   with or without `--scrape.discovery-reload-interval`); [`Prometheus::start`] awaits it
//!   (`up == 1` for every target, which Prometheus stores together with the first scrape's
//!   samples, visible at the current whole second: KEDA's `time` parameter has no fraction). Tests that need a live value that changes, or a restart, use this.
//!
//! # TLS and basic auth
//!
//! [`PrometheusConfig::tls`] and [`PrometheusConfig::basic_auth`] write a
//! `--web.config.file` with `tls_server_config` (the [`TestPki`] server certificate, and its CA
//! as `client_ca_file` with the chosen `client_auth_type`) and `basic_auth_users`. Prometheus
//! wants bcrypt hashes there; [`TEST_PASSWORD_BCRYPT`] is a precomputed one for
//! [`TEST_PASSWORD`], so the tests need no bcrypt crate.
//!
//! # Fakes
//!
//! Where a real Prometheus cannot produce a case, or the test must see the request itself:
//! [`RecordingProxy`] forwards to a real server and records each request's target and headers;
//! [`CannedServer`] answers every request with one status and body; [`SilentServer`] accepts
//! connections and never answers.
// Test infrastructure: a failure to set up a server should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::{ServerProcess, TestPki, free_port, require_binary, wait_for};

/// The basic-auth user every protected test server knows.
pub const TEST_USER: &str = "windlass";
/// Its password.
pub const TEST_PASSWORD: &str = "windlass-test-password";
/// bcrypt (cost 5) of [`TEST_PASSWORD`], made once with
/// `python3 -c 'import crypt; print(crypt.crypt("windlass-test-password", "$2b$05$abcdefghijklmnopqrstuu"))'`
/// (glibc's libxcrypt bcrypt); Go's `x/crypto/bcrypt`, which Prometheus uses, accepts `$2b$`.
pub const TEST_PASSWORD_BCRYPT: &str =
    "$2b$05$abcdefghijklmnopqrstuug8uLk3eZ6eiweAW0t8Q.syH5g1jB.gK";

/// How long a server may take to answer `/-/ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the first scrape may take (about 6 s is normal; CI machines are slow).
const FIRST_SCRAPE_TIMEOUT: Duration = Duration::from_secs(30);

/// `client_auth_type` of the web config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    None,
    /// A client certificate, when given, must be signed by the test CA.
    VerifyIfGiven,
    /// A client certificate signed by the test CA is required.
    Require,
}

impl ClientAuth {
    fn web_config_name(self) -> &'static str {
        match self {
            Self::None => "NoClientCert",
            Self::VerifyIfGiven => "VerifyClientCertIfGiven",
            Self::Require => "RequireAndVerifyClientCert",
        }
    }
}

/// What a test server holds and how it is protected.
#[derive(Clone, Debug, Default)]
pub struct PrometheusConfig {
    /// OpenMetrics text (timestamps in seconds, ending with `# EOF`) to backfill before start.
    pub backfill: Option<String>,
    /// Ports of `/metrics` endpoints on 127.0.0.1 to scrape every second (job `app`).
    pub scrape: Vec<u16>,
    /// Serve HTTPS with this PKI's server certificate, asking for client certificates so.
    pub tls: Option<(TestPki, ClientAuth)>,
    /// Require basic auth as [`TEST_USER`] / [`TEST_PASSWORD`].
    pub basic_auth: bool,
}

/// A running Prometheus, killed when dropped.
#[derive(Debug)]
pub struct Prometheus {
    dir: tempfile::TempDir,
    port: u16,
    process: ServerProcess,
    config: PrometheusConfig,
    probe: reqwest::Client,
}

impl Prometheus {
    /// Backfills (if asked), starts the server and waits until it is ready and, when it
    /// scrapes, until every target has been scraped once.
    pub async fn start(config: PrometheusConfig) -> Self {
        let binary = require_binary("prometheus", "prometheus");
        let dir = tempfile::Builder::new()
            .prefix("windlass-prometheus-")
            .tempdir()
            .expect("create a temporary directory");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("create the data directory");
        if let Some(text) = &config.backfill {
            backfill(dir.path(), &data, text).await;
        }
        write_config(dir.path(), &config);
        let port = free_port();
        let process = spawn(&binary, dir.path(), port, &config);
        let mut server = Self {
            probe: probe_client(&config),
            dir,
            port,
            process,
            config,
        };
        server.wait_ready().await;
        if !server.config.scrape.is_empty() {
            server.wait_first_scrape().await;
        }
        server
    }

    /// `http://127.0.0.1:<port>` or `https://…`.
    pub fn url(&self) -> String {
        let scheme = if self.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Kills the server now (it "goes away"); [`Prometheus::restart`] brings it back.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the server again on the same port with the same data directory, and waits until
    /// it is ready (not for a new scrape: the samples written before the kill come back from
    /// the WAL, and scraping resumes about 6 s later).
    pub async fn restart(&mut self) {
        self.process.kill();
        let binary = require_binary("prometheus", "prometheus");
        self.process = spawn(&binary, self.dir.path(), self.port, &self.config);
        self.wait_ready().await;
    }

    /// The instant query's `data.result` at `time` (Unix seconds; `None` = now), through the
    /// server's own credentials; `None` when the server does not answer with success.
    pub async fn query(&self, promql: &str, time: Option<i64>) -> Option<Vec<Value>> {
        let mut params = vec![("query", promql.to_owned())];
        if let Some(time) = time {
            params.push(("time", time.to_string()));
        }
        let url = reqwest::Url::parse_with_params(&format!("{}/api/v1/query", self.url()), &params)
            .expect("a query URL");
        let response = self.authorized(self.probe.get(url)).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        let body: Value = response.json().await.ok()?;
        body["data"]["result"].as_array().cloned()
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.config.basic_auth {
            request.basic_auth(TEST_USER, Some(TEST_PASSWORD))
        } else {
            request
        }
    }

    async fn wait_ready(&mut self) {
        let url = format!("{}/-/ready", self.url());
        let what = format!("prometheus on port {} to be ready", self.port);
        let ready = {
            let process = &mut self.process;
            let probe = &self.probe;
            let basic_auth = self.config.basic_auth;
            wait_for(&what, READY_TIMEOUT, || {
                let exited = process.has_exited();
                let mut request = probe.get(&url);
                if basic_auth {
                    request = request.basic_auth(TEST_USER, Some(TEST_PASSWORD));
                }
                async move {
                    if exited {
                        return Some(false);
                    }
                    let response = request.send().await.ok()?;
                    response.status().is_success().then_some(true)
                }
            })
            .await
        };
        assert!(
            ready,
            "prometheus exited before it was ready; its log:\n{}",
            self.log()
        );
    }

    async fn wait_first_scrape(&self) {
        let targets = self.config.scrape.len();
        let what = format!(
            "prometheus on port {} to scrape {targets} target(s)",
            self.port
        );
        wait_for(&what, FIRST_SCRAPE_TIMEOUT, || async {
            // At the current whole second, as KEDA asks: a sample scraped within this second
            // is not visible yet to a query truncated to it.
            let second = chrono::Utc::now().timestamp();
            let result = self
                .query("count(up{job=\"app\"} == 1)", Some(second))
                .await?;
            let count = result.first()?["value"][1]
                .as_str()?
                .parse::<usize>()
                .ok()?;
            (count == targets).then_some(())
        })
        .await;
    }
}

async fn backfill(dir: &Path, data: &Path, text: &str) {
    let promtool = require_binary("promtool", "prometheus");
    let input = dir.join("backfill.om");
    std::fs::write(&input, text).expect("write the backfill file");
    let output = tokio::process::Command::new(promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(data)
        .output()
        .await
        .expect("run promtool");
    assert!(
        output.status.success(),
        "promtool could not backfill:\n{}{}\n--- input ---\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn write_config(dir: &Path, config: &PrometheusConfig) {
    let mut yaml = String::from(
        "global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 1s}\nscrape_configs:\n",
    );
    if config.scrape.is_empty() {
        yaml = yaml.replace("scrape_configs:\n", "scrape_configs: []\n");
    } else {
        let targets: Vec<String> = config
            .scrape
            .iter()
            .map(|port| format!("'127.0.0.1:{port}'"))
            .collect();
        writeln!(
            yaml,
            "  - job_name: app\n    static_configs: [{{targets: [{}]}}]",
            targets.join(", ")
        )
        .unwrap();
    }
    std::fs::write(dir.join("prometheus.yml"), yaml).expect("write prometheus.yml");
    if config.tls.is_none() && !config.basic_auth {
        return;
    }
    let mut web = String::new();
    if let Some((pki, client_auth)) = &config.tls {
        writeln!(
            web,
            "tls_server_config:\n  cert_file: '{}'\n  key_file: '{}'\n  client_auth_type: {}",
            pki.server.cert_file.display(),
            pki.server.key_file.display(),
            client_auth.web_config_name()
        )
        .unwrap();
        if *client_auth != ClientAuth::None {
            writeln!(web, "  client_ca_file: '{}'", pki.ca_file.display()).unwrap();
        }
    }
    if config.basic_auth {
        writeln!(
            web,
            "basic_auth_users:\n  {TEST_USER}: '{TEST_PASSWORD_BCRYPT}'"
        )
        .unwrap();
    }
    std::fs::write(dir.join("web.yml"), web).expect("write web.yml");
}

fn spawn(binary: &PathBuf, dir: &Path, port: u16, config: &PrometheusConfig) -> ServerProcess {
    let mut command = Command::new(binary);
    command
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=info");
    if config.tls.is_some() || config.basic_auth {
        command.arg(format!(
            "--web.config.file={}",
            dir.join("web.yml").display()
        ));
    }
    ServerProcess::spawn("prometheus", command, dir)
}

/// The harness's own client: trusts the test CA and presents the test client certificate.
fn probe_client(config: &PrometheusConfig) -> reqwest::Client {
    scalers::context::install_crypto_provider();
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(2));
    if let Some((pki, _)) = &config.tls {
        builder = builder
            .add_root_certificate(
                reqwest::Certificate::from_pem(pki.ca_cert.as_bytes()).expect("the test CA"),
            )
            .identity(
                reqwest::Identity::from_pem(
                    format!("{}\n{}", pki.client.cert, pki.client.key).as_bytes(),
                )
                .expect("the test client certificate"),
            );
    }
    builder.build().expect("build the probe client")
}

/// OpenMetrics text of gauges, every sample at `time` (Unix seconds), for
/// [`PrometheusConfig::backfill`]: `(metric family, [(labels, value)])`, labels as written
/// inside the braces (`queue="orders"`, or empty).
pub fn gauges(families: &[(&str, &[(&str, f64)])], time: i64) -> String {
    let mut text = String::new();
    for (family, samples) in families {
        writeln!(text, "# TYPE {family} gauge").unwrap();
        for (labels, value) in *samples {
            let labels = if labels.is_empty() {
                String::new()
            } else {
                format!("{{{labels}}}")
            };
            writeln!(text, "{family}{labels} {value} {time}").unwrap();
        }
    }
    text.push_str("# EOF\n");
    text
}

/// Reads one request head (up to the blank line); `None` when the peer closed first.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&byte[..n]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

async fn respond(stream: &mut TcpStream, status: u16, content_type: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn listen() -> (TcpListener, u16) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind a loopback port");
    let port = listener.local_addr().expect("a bound address").port();
    (listener, port)
}

/// A `/metrics` endpoint in the test process whose text the test changes at will.
#[derive(Debug)]
pub struct MetricsEndpoint {
    port: u16,
    body: Arc<Mutex<String>>,
    task: JoinHandle<()>,
}

impl MetricsEndpoint {
    /// Serves `body` (Prometheus text format) on a free port.
    pub async fn start(body: &str) -> Self {
        let (listener, port) = listen().await;
        let body = Arc::new(Mutex::new(body.to_owned()));
        let shared = body.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let text = shared.lock().unwrap().clone();
                tokio::spawn(async move {
                    if read_head(&mut stream).await.is_some() {
                        respond(&mut stream, 200, "text/plain; version=0.0.4", &text).await;
                    }
                });
            }
        });
        Self { port, body, task }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the next scrape gets.
    pub fn set(&self, body: &str) {
        *self.body.lock().unwrap() = body.to_owned();
    }
}

impl Drop for MetricsEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One request as it reached a fake server.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// `GET`.
    pub method: String,
    /// Path and query, as sent (`/api/v1/query?query=up&time=…`).
    pub target: String,
    /// Header names (lower case) and values, in order.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    fn parse(head: &str) -> Self {
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next().unwrap_or_default().split(' ');
        let method = request_line.next().unwrap_or_default().to_owned();
        let target = request_line.next().unwrap_or_default().to_owned();
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Self {
            method,
            target,
            headers,
        }
    }

    /// The values of header `name`.
    pub fn header(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The raw query string (after `?`).
    pub fn raw_query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    /// The decoded query parameters, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        let url = reqwest::Url::parse(&format!("http://x{}", self.target)).expect("a target");
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// The decoded value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

type Requests = Arc<Mutex<Vec<RecordedRequest>>>;

/// A plain-HTTP proxy to a server on 127.0.0.1 that records each request head, forwards it
/// (with `Connection: close`) and relays the answer.
#[derive(Debug)]
pub struct RecordingProxy {
    port: u16,
    requests: Requests,
    task: JoinHandle<()>,
}

impl RecordingProxy {
    pub async fn start(upstream_port: u16) -> Self {
        let (listener, port) = listen().await;
        let requests = Requests::default();
        let recorded = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    let Some(head) = read_head(&mut client).await else {
                        return;
                    };
                    recorded.lock().unwrap().push(RecordedRequest::parse(&head));
                    let forwarded: String = head
                        .trim_end_matches("\r\n")
                        .split("\r\n")
                        .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
                        .map(|line| format!("{line}\r\n"))
                        .collect::<String>()
                        + "Connection: close\r\n\r\n";
                    let Ok(mut upstream) =
                        TcpStream::connect((Ipv4Addr::LOCALHOST, upstream_port)).await
                    else {
                        respond(&mut client, 502, "text/plain", "upstream down").await;
                        return;
                    };
                    if upstream.write_all(forwarded.as_bytes()).await.is_ok() {
                        let _ = tokio::io::copy(&mut upstream, &mut client).await;
                    }
                    let _ = client.shutdown().await;
                });
            }
        });
        Self {
            port,
            requests,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// Forgets the requests so far.
    pub fn clear(&self) {
        self.requests.lock().unwrap().clear();
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers every request with one status and JSON body, recording the requests.
#[derive(Debug)]
pub struct CannedServer {
    port: u16,
    answer: Arc<Mutex<(u16, String)>>,
    requests: Requests,
    task: JoinHandle<()>,
}

impl CannedServer {
    pub async fn start(status: u16, body: &str) -> Self {
        let (listener, port) = listen().await;
        let answer = Arc::new(Mutex::new((status, body.to_owned())));
        let requests = Requests::default();
        let (shared, recorded) = (answer.clone(), requests.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (shared, recorded) = (shared.clone(), recorded.clone());
                tokio::spawn(async move {
                    if let Some(head) = read_head(&mut stream).await {
                        recorded.lock().unwrap().push(RecordedRequest::parse(&head));
                        let (status, body) = shared.lock().unwrap().clone();
                        respond(&mut stream, status, "application/json", &body).await;
                    }
                });
            }
        });
        Self {
            port,
            answer,
            requests,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What the next requests get.
    pub fn set(&self, status: u16, body: &str) {
        *self.answer.lock().unwrap() = (status, body.to_owned());
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for CannedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections and reads requests, but never answers.
#[derive(Debug)]
pub struct SilentServer {
    port: u16,
    task: JoinHandle<()>,
}

impl SilentServer {
    pub async fn start() -> Self {
        let (listener, port) = listen().await;
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        Self { port, task }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
