//! The operator at scale: the real `windlass operator` binary, run as a child process (so its
//! memory is its own) against the in-memory Kubernetes API holding N Deployments and N
//! ScaledObjects whose `external` triggers all reach one in-process scaler plugin through one
//! pooled gRPC channel. Windlass's design target is 10,000 ScaledObjects in under 128 MiB on one
//! replica, polls jittered, no status writes in steady state.
//!
//! For each N it prints: the time until every object has its HPA and `Ready=True`, and until
//! every object has been polled once (its `Active` condition written); the child's VmRSS and
//! VmHWM after settling and after the steady-state window; CPU seconds of the operator and of
//! the fake API server's thread (to tell whether the fake is the bottleneck); the requests the
//! operator made per verb and resource while settling and during the steady-state window;
//! backend samples per second against N / pollingInterval; the size of one `/metrics` scrape;
//! and a restart: a second replica taking over the reconciled objects (time to the lease,
//! requests, memory). It measures; it asserts nothing about speed or memory.
//!
//! ```text
//! cargo bench -p windlass-tests --bench operator_scale               # N = 1000, 5000, 10000
//! OPERATOR_SCALE_N=1000 cargo bench -p windlass-tests --bench operator_scale
//! cargo bench -p windlass-tests --bench operator_scale -- 2000 4000  # arguments override
//! ```
//!
//! Settings (environment): `OPERATOR_SCALE_N` (comma-separated sizes), `OPERATOR_SCALE_INTERVAL`
//! (pollingInterval in seconds, default 30), `OPERATOR_SCALE_STEADY` (steady-state window in
//! polling intervals, default 2), `OPERATOR_SCALE_PER_NAMESPACE` (ScaledObjects per namespace,
//! default 10), `OPERATOR_SCALE_SETTLE_TIMEOUT` (seconds, default 300), `OPERATOR_SCALE_RESTART`
//! (`0` skips the restart). The full sweep takes about 7 minutes on two cores.
//!
//! The operator runs with `WINDLASS_LOG_FORMAT=json` (its log goes to a temporary file, whose
//! warnings are counted) and a self-signed metrics API certificate: no HPA controller reads the
//! metrics API here, and the fake runs no controllers, so HPAs have no status.
//!
//! The measured binary is [`windlass_tests::windlass_bin`]: this bench runs from
//! `target/release`, so that builds it with `cargo build --release` (the bench profile's
//! settings); `WINDLASS_BIN` overrides it. The path is printed.
//!
//! Objects carry a creation time an hour ago, as after an operator restart: their first polls
//! are then spread over the first polling interval (the operator's start jitter).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fake_apiserver::{FakeApiServer, RequestRecord, View};
use serde_json::{Value, json};
use windlass_tests::operator::{KnobServer, deployment, scaled_object};
use windlass_tests::servers::free_port;
use windlass_tests::windlass_bin;

/// What one sweep measures, from the environment and arguments.
#[derive(Debug, Clone)]
struct Settings {
    sizes: Vec<usize>,
    interval: u64,
    steady_intervals: u32,
    per_namespace: usize,
    settle_timeout: Duration,
    restart: bool,
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(text) if !text.trim().is_empty() => text
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={text:?} is not a number")),
        _ => Ok(default),
    }
}

fn parse_sizes(text: &str) -> Result<Vec<usize>> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.replace('_', "")
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .with_context(|| format!("{s:?} is not a positive object count"))
        })
        .collect()
}

impl Settings {
    fn from_env_and_args() -> Result<Self> {
        // `cargo bench` passes `--bench`; numbers among the arguments are sizes.
        let from_args: Vec<usize> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .map(|a| parse_sizes(&a))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        let sizes = if !from_args.is_empty() {
            from_args
        } else if let Ok(text) = std::env::var("OPERATOR_SCALE_N") {
            parse_sizes(&text)?
        } else {
            vec![1_000, 5_000, 10_000]
        };
        if sizes.is_empty() {
            bail!("no sizes to run");
        }
        Ok(Self {
            sizes,
            interval: env_number("OPERATOR_SCALE_INTERVAL", 30u64)?.max(1),
            steady_intervals: env_number("OPERATOR_SCALE_STEADY", 2u32)?.max(1),
            per_namespace: env_number("OPERATOR_SCALE_PER_NAMESPACE", 10usize)?.max(1),
            settle_timeout: Duration::from_secs(env_number(
                "OPERATOR_SCALE_SETTLE_TIMEOUT",
                300u64,
            )?),
            restart: env_number("OPERATOR_SCALE_RESTART", 1u8)? != 0,
        })
    }
}

// ---------------------------------------------------------------- /proc

/// Clock ticks per second for `/proc/*/stat` CPU times.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime of a `/proc/.../stat` file, in seconds.
fn cpu_seconds(stat_path: &Path, ticks: f64) -> Option<f64> {
    let text = std::fs::read_to_string(stat_path).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks)
}

/// VmRSS and VmHWM of a process, in KiB.
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    rss_kib: u64,
    hwm_kib: u64,
    threads: u64,
}

impl Memory {
    fn of(pid: u32) -> Option<Self> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        };
        Some(Self {
            rss_kib: field("VmRSS:")?,
            hwm_kib: field("VmHWM:")?,
            threads: field("Threads:").unwrap_or(0),
        })
    }
}

/// Established TCP connections accepted on loopback `port` (server side), from
/// `/proc/net/tcp`: how many connections the operator holds to a server of the bench.
fn connections_to(port: u16) -> usize {
    let wanted = format!(":{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is `IP:PORT` in hex; state 01 is ESTABLISHED.
            fields.get(1).is_some_and(|local| local.ends_with(&wanted))
                && fields.get(3) == Some(&"01")
        })
        .count()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The fake API server's thread in this process (named `fake-apiserver-<port>`, which the
/// kernel truncates to 15 characters): the newest one, as an earlier server may still be
/// finishing.
fn fake_api_thread() -> Option<PathBuf> {
    std::fs::read_dir("/proc/self/task")
        .ok()?
        .filter_map(|entry| entry.ok())
        .filter(|entry| {
            std::fs::read_to_string(entry.path().join("comm"))
                .is_ok_and(|comm| comm.starts_with("fake-apiserver"))
        })
        .filter_map(|entry| {
            let tid: u64 = entry.file_name().to_str()?.parse().ok()?;
            Some((tid, entry.path().join("stat")))
        })
        .max_by_key(|(tid, _)| *tid)
        .map(|(_, stat)| stat)
}

// ------------------------------------------------------------- the child

/// One `/metrics` exposition.
#[derive(Debug, Clone, Copy)]
struct Scrape {
    bytes: usize,
    samples: usize,
    took: Duration,
}

/// The operator process; killed when dropped.
struct OperatorProcess {
    child: Child,
    log: PathBuf,
    metrics_port: u16,
}

impl OperatorProcess {
    /// Starts replica `pod_name`, logging to `<dir>/<pod_name>.log`.
    fn start(binary: &Path, kubeconfig: &Path, dir: &Path, pod_name: &str) -> Result<Self> {
        let log = dir.join(format!("{pod_name}.log"));
        let out = std::fs::File::create(&log).context("creating the operator log")?;
        let err = out.try_clone().context("sharing the operator log")?;
        let metrics_api = format!("127.0.0.1:{}", free_port());
        let metrics_port = free_port();
        let metrics = format!("127.0.0.1:{metrics_port}");
        let child = Command::new(binary)
            .args([
                "operator",
                "--health-probe-bind-address",
                "127.0.0.1:0",
                "--metrics-bind-address",
                &metrics,
                "--metrics-api-bind-address",
                &metrics_api,
            ])
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAMESPACE", "keda")
            .env("POD_NAME", pod_name)
            // JSON lines: levels can be matched (text logs carry ANSI colours even in a file).
            .env("WINDLASS_LOG_FORMAT", "json")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Self {
            child,
            log,
            metrics_port,
        })
    }

    /// One scrape of `/metrics`: its size in bytes, its samples (non-comment lines), and how
    /// long it took.
    async fn scrape(&self) -> Option<Scrape> {
        let started = Instant::now();
        let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", self.metrics_port))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        Some(Scrape {
            bytes: text.len(),
            samples: text
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .count(),
            took: started.elapsed(),
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn cpu(&self, ticks: f64) -> f64 {
        cpu_seconds(Path::new(&format!("/proc/{}/stat", self.pid())), ticks).unwrap_or(f64::NAN)
    }

    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Warning and error lines: how many, and the first few.
    fn warnings(&self) -> (usize, Vec<String>) {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text
            .lines()
            .filter(|line| {
                line.contains(r#""level":"WARN""#) || line.contains(r#""level":"ERROR""#)
            })
            .collect();
        let first = lines
            .iter()
            .take(3)
            .map(|line| line.chars().take(220).collect())
            .collect();
        (lines.len(), first)
    }

    /// SIGTERM, then the time it took to exit (killed after 30 s).
    async fn stop(mut self) -> Option<Duration> {
        let started = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        while started.elapsed() < Duration::from_secs(30) {
            if self.exited().is_some() {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ------------------------------------------------------------ the objects

fn namespace_of(index: usize, per_namespace: usize) -> String {
    format!("scale-{:04}", index / per_namespace)
}

fn name_of(index: usize) -> String {
    format!("worker-{index:05}")
}

/// Creates the namespaces, N Deployments and N ScaledObjects, created an hour ago.
fn create_objects(api: &FakeApiServer, n: usize, settings: &Settings, address: &str) -> Result<()> {
    let created = (chrono::Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    api.create_namespace("keda")?;
    for index in (0..n).step_by(settings.per_namespace) {
        api.create_namespace(&namespace_of(index, settings.per_namespace))?;
    }
    for index in 0..n {
        let namespace = namespace_of(index, settings.per_namespace);
        let name = name_of(index);
        let mut target = deployment(&namespace, &name, 1);
        target["metadata"]["creationTimestamp"] = json!(created);
        api.put_object(target)?;
        let mut so = scaled_object(
            &namespace,
            &name,
            address,
            json!({"pollingInterval": settings.interval, "cooldownPeriod": 300}),
        );
        so["metadata"]["creationTimestamp"] = json!(created);
        api.put_object(so)?;
    }
    Ok(())
}

fn condition_is(so: &Value, type_: &str, status: &str) -> bool {
    so.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c["type"] == type_ && c["status"] == status)
        })
}

/// Objects with an HPA, with Ready=True, and with an Active condition other than Unknown
/// (written by the first poll).
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    hpas: usize,
    ready: usize,
    polled: usize,
}

fn progress(view: &View<'_>) -> Progress {
    Progress {
        hpas: view.count_objects("autoscaling/v2", "horizontalpodautoscalers", None, |_| true),
        ready: view.count_objects("keda.sh/v1alpha1", "scaledobjects", None, |so| {
            condition_is(so, "Ready", "True")
        }),
        polled: view.count_objects("keda.sh/v1alpha1", "scaledobjects", None, |so| {
            condition_is(so, "Active", "True") || condition_is(so, "Active", "False")
        }),
    }
}

/// Serialized sizes of one object as the API serves it, and of its `metadata.managedFields`:
/// what every watch event carries and a cache keeps unless it prunes.
#[derive(Debug, Clone, Copy, Default)]
struct ObjectSize {
    json: usize,
    managed_fields: usize,
}

impl ObjectSize {
    fn of(object: Option<Value>) -> Self {
        let Some(object) = object else {
            return Self::default();
        };
        Self {
            json: object.to_string().len(),
            managed_fields: object
                .pointer("/metadata/managedFields")
                .map_or(0, |m| m.to_string().len()),
        }
    }
}

// ------------------------------------------------------------ the figures

/// Requests per (verb, resource[/subresource]).
type RequestCounts = BTreeMap<(String, String), usize>;

fn count_requests(records: &[RequestRecord]) -> RequestCounts {
    let mut counts = RequestCounts::new();
    for record in records {
        let resource = if record.plural.is_empty() {
            // Discovery: the path tells which document.
            "(discovery)".to_owned()
        } else {
            match &record.subresource {
                Some(sub) => format!("{}/{sub}", record.plural),
                None => record.plural.clone(),
            }
        };
        *counts.entry((record.verb.clone(), resource)).or_default() += 1;
    }
    counts
}

fn failed_requests(records: &[RequestRecord]) -> BTreeMap<(String, String, u16), usize> {
    let mut counts = BTreeMap::new();
    for record in records.iter().filter(|r| r.code >= 400) {
        *counts
            .entry((record.verb.clone(), record.plural.clone(), record.code))
            .or_default() += 1;
    }
    counts
}

/// One measured phase.
#[derive(Debug, Default)]
struct Phase {
    duration: Duration,
    requests: RequestCounts,
    failed: BTreeMap<(String, String, u16), usize>,
    total_requests: usize,
    operator_cpu: f64,
    api_cpu: f64,
    bench_cpu: f64,
    samples: usize,
    memory: Memory,
    /// Connections from the operator to the API server and to the scaler, at the end.
    api_connections: usize,
    backend_connections: usize,
}

/// Backend samples taken in each whole second.
fn per_second(timeline: &[(Duration, usize)], from: Duration, to: Duration) -> Vec<usize> {
    let points: Vec<&(Duration, usize)> = timeline
        .iter()
        .filter(|(at, _)| *at >= from && *at <= to)
        .collect();
    points
        .windows(2)
        .map(|pair| pair[1].1.saturating_sub(pair[0].1))
        .collect()
}

fn percentile(sorted: &[usize], p: f64) -> usize {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

struct Report {
    n: usize,
    namespaces: usize,
    create: Duration,
    to_hpas: Option<Duration>,
    to_ready: Option<Duration>,
    to_polled: Option<Duration>,
    settled: bool,
    settle: Phase,
    steady: Phase,
    steady_polls: usize,
    first_interval_rates: Vec<usize>,
    steady_rates: Vec<usize>,
    shutdown: Option<Duration>,
    operator_warnings: usize,
    first_warnings: Vec<String>,
    scaled_object_size: ObjectSize,
    hpa_size: ObjectSize,
    restart: Option<Restart>,
    scrape: Option<Scrape>,
}

fn secs(d: Option<Duration>) -> String {
    d.map_or_else(
        || "never".to_owned(),
        |d| format!("{:.1} s", d.as_secs_f64()),
    )
}

fn rate_summary(rates: &[usize]) -> String {
    if rates.is_empty() {
        return "no data".to_owned();
    }
    let mut sorted = rates.to_vec();
    sorted.sort_unstable();
    let mean = rates.iter().sum::<usize>() as f64 / rates.len() as f64;
    format!(
        "mean {mean:.0}, min {}, p10 {}, p50 {}, p90 {}, max {} ({} one-second buckets)",
        sorted[0],
        percentile(&sorted, 0.1),
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.9),
        sorted[sorted.len() - 1],
        rates.len()
    )
}

impl Report {
    fn print(&self, settings: &Settings) {
        let n = self.n;
        let interval = settings.interval;
        println!();
        println!(
            "=== N = {n} ScaledObjects in {} namespaces, pollingInterval {interval} s, one external scaler ===",
            self.namespaces
        );
        if !self.settled {
            println!(
                "!!! did not settle within {:?}: figures below are partial",
                settings.settle_timeout
            );
        }
        println!(
            "objects created (direct, no HTTP)   {:.1} s",
            self.create.as_secs_f64()
        );
        println!("operator start → every HPA          {}", secs(self.to_hpas));
        println!(
            "operator start → every Ready=True   {}",
            secs(self.to_ready)
        );
        println!(
            "operator start → every object polled {} (Active condition written; first polls jittered over one interval)",
            secs(self.to_polled)
        );
        println!(
            "memory, settled                     VmRSS {:.1} MiB, VmHWM {:.1} MiB  ({:.1} KiB RSS per ScaledObject)",
            mib(self.settle.memory.rss_kib),
            mib(self.settle.memory.hwm_kib),
            self.settle.memory.rss_kib as f64 / n as f64
        );
        println!(
            "memory, after {:>2} intervals          VmRSS {:.1} MiB, VmHWM {:.1} MiB",
            settings.steady_intervals,
            mib(self.steady.memory.rss_kib),
            mib(self.steady.memory.hwm_kib),
        );
        println!(
            "one object as served: ScaledObject {} B JSON ({} B managedFields), HPA {} B ({} B managedFields)",
            self.scaled_object_size.json,
            self.scaled_object_size.managed_fields,
            self.hpa_size.json,
            self.hpa_size.managed_fields,
        );
        println!(
            "threads {}; connections to the API {} (settled) / {} (steady), to the scaler {} / {}",
            self.steady.memory.threads,
            self.settle.api_connections,
            self.steady.api_connections,
            self.settle.backend_connections,
            self.steady.backend_connections,
        );
        for (name, phase) in [("settle", &self.settle), ("steady", &self.steady)] {
            let seconds = phase.duration.as_secs_f64().max(0.001);
            println!(
                "CPU, {name} ({:>5.1} s)              operator {:>6.1} s ({:>3.0}% of one core), fake API thread {:>6.1} s ({:>3.0}%), rest of bench {:>5.1} s",
                seconds,
                phase.operator_cpu,
                100.0 * phase.operator_cpu / seconds,
                phase.api_cpu,
                100.0 * phase.api_cpu / seconds,
                phase.bench_cpu,
            );
        }
        println!(
            "requests: settle {} ({:.1} per object, {:.0}/s); steady {} ({:.0}/s, {:.2} per object per poll)",
            self.settle.total_requests,
            self.settle.total_requests as f64 / n as f64,
            self.settle.total_requests as f64 / self.settle.duration.as_secs_f64().max(0.001),
            self.steady.total_requests,
            self.steady.total_requests as f64 / self.steady.duration.as_secs_f64().max(0.001),
            self.steady.total_requests as f64 / self.steady_polls.max(1) as f64,
        );
        let mut keys: Vec<&(String, String)> = self
            .settle
            .requests
            .keys()
            .chain(self.steady.requests.keys())
            .collect();
        keys.sort();
        keys.dedup();
        println!(
            "  {:<10} {:<36} {:>9} {:>8} {:>9} {:>13}",
            "verb", "resource", "settle", "per SO", "steady", "per SO·poll"
        );
        for key in keys {
            let settle = self.settle.requests.get(key).copied().unwrap_or(0);
            let steady = self.steady.requests.get(key).copied().unwrap_or(0);
            println!(
                "  {:<10} {:<36} {:>9} {:>8.2} {:>9} {:>13.3}",
                key.0,
                key.1,
                settle,
                settle as f64 / n as f64,
                steady,
                steady as f64 / self.steady_polls.max(1) as f64,
            );
        }
        let status_writes = |phase: &Phase| {
            phase
                .requests
                .iter()
                .filter(|((verb, resource), _)| {
                    resource == "scaledobjects/status" && verb != "get" && verb != "list"
                })
                .map(|(_, count)| count)
                .sum::<usize>()
        };
        println!(
            "status writes: settle {}, steady {}",
            status_writes(&self.settle),
            status_writes(&self.steady)
        );
        for (name, phase) in [("settle", &self.settle), ("steady", &self.steady)] {
            if !phase.failed.is_empty() {
                let failed: Vec<String> = phase
                    .failed
                    .iter()
                    .map(|((verb, plural, code), count)| format!("{verb} {plural} {code} ×{count}"))
                    .collect();
                println!("failed requests, {name}: {}", failed.join(", "));
            }
        }
        let expected = n as f64 / interval as f64;
        println!(
            "backend samples: expected {expected:.1}/s (N / pollingInterval); steady window: {} samples in {:.0} s = {:.1}/s ({:.2} per object per poll)",
            self.steady.samples,
            self.steady.duration.as_secs_f64(),
            self.steady.samples as f64 / self.steady.duration.as_secs_f64().max(0.001),
            self.steady.samples as f64 / self.steady_polls.max(1) as f64,
        );
        println!(
            "  per second, steady:            {}",
            rate_summary(&self.steady_rates)
        );
        println!(
            "  per second, start → all polled: {}",
            rate_summary(&self.first_interval_rates)
        );
        println!("  unjittered, all {n} would fall in the same second of every interval");
        match self.scrape {
            Some(scrape) => println!(
                "/metrics: {:.1} MiB, {} samples ({:.1} per ScaledObject), scraped in {:.0} ms",
                scrape.bytes as f64 / 1_048_576.0,
                scrape.samples,
                scrape.samples as f64 / n as f64,
                scrape.took.as_secs_f64() * 1000.0
            ),
            None => println!("/metrics: could not be scraped"),
        }
        println!(
            "operator: {} WARN/ERROR log lines; SIGTERM → exit {}",
            self.operator_warnings,
            secs(self.shutdown)
        );
        for line in &self.first_warnings {
            println!("  {line}");
        }
        if let Some(restart) = &self.restart {
            let phase = &restart.phase;
            println!(
                "restart (a second replica takes over reconciled objects): lease after {}, ≈ every object polled after {}; VmRSS {:.1} MiB, VmHWM {:.1} MiB; CPU operator {:.1} s, fake API {:.1} s; {} WARN/ERROR lines",
                secs(restart.to_lease),
                secs(restart.to_polled),
                mib(phase.memory.rss_kib),
                mib(phase.memory.hwm_kib),
                phase.operator_cpu,
                phase.api_cpu,
                restart.warnings,
            );
            println!(
                "  requests {} ({:.1} per object): {}",
                phase.total_requests,
                phase.total_requests as f64 / n as f64,
                phase
                    .requests
                    .iter()
                    .map(|((verb, resource), count)| format!("{verb} {resource} {count}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if !phase.failed.is_empty() {
                let failed: Vec<String> = phase
                    .failed
                    .iter()
                    .map(|((verb, plural, code), count)| format!("{verb} {plural} {code} ×{count}"))
                    .collect();
                println!("  failed requests: {}", failed.join(", "));
            }
        }
    }
}

// --------------------------------------------------------------- one run

/// Backend sample counts, timestamped from the operator's start.
type Timeline = Arc<Mutex<Vec<(Duration, usize)>>>;

/// Samples the backend counter once a second, timestamped from `origin`.
fn spawn_sampler(
    knob: Arc<windlass_tests::operator::Knob>,
    origin: Instant,
) -> (Timeline, tokio::task::JoinHandle<()>) {
    let timeline = Arc::new(Mutex::new(Vec::new()));
    let recorded = timeline.clone();
    let task = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            recorded
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((origin.elapsed(), knob.samples()));
        }
    });
    (timeline, task)
}

struct CpuClock {
    ticks: f64,
    api_thread: Option<PathBuf>,
}

impl CpuClock {
    fn api(&self) -> f64 {
        self.api_thread
            .as_deref()
            .and_then(|stat| cpu_seconds(stat, self.ticks))
            .unwrap_or(f64::NAN)
    }

    fn bench(&self) -> f64 {
        cpu_seconds(Path::new("/proc/self/stat"), self.ticks).unwrap_or(f64::NAN)
    }
}

async fn run(n: usize, settings: &Settings, binary: &Path, ticks: f64) -> Result<Report> {
    let api = FakeApiServer::start().await?;
    let knob = KnobServer::start(2.0).await;
    let dir = tempfile::Builder::new()
        .prefix("windlass-scale-")
        .tempdir()
        .context("creating a temporary directory")?;
    let kubeconfig = api.write_kubeconfig(dir.path())?;
    let api_port = api.addr().port();
    let backend_port: u16 = knob
        .address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .context("the scaler's port")?;

    let created_at = Instant::now();
    create_objects(&api, n, settings, &knob.address)?;
    let create = created_at.elapsed();
    let namespaces = n.div_ceil(settings.per_namespace);
    // The server thread names itself when it starts running, and the previous run's server
    // thread is gone by now (shut down and joined).
    let clock = CpuClock {
        ticks,
        api_thread: fake_api_thread(),
    };

    let api_cpu_0 = clock.api();
    let bench_cpu_0 = clock.bench();
    let mut operator = OperatorProcess::start(binary, &kubeconfig, dir.path(), FIRST_REPLICA)?;
    let origin = Instant::now();
    let (timeline, sampler) = spawn_sampler(knob.knob.clone(), origin);

    // Settle: every HPA, every Ready=True, every object polled once.
    let mut to_hpas = None;
    let mut to_ready = None;
    let mut to_polled = None;
    let mut last_print = Instant::now();
    let (settled, last) = loop {
        if let Some(status) = operator.exited() {
            bail!(
                "the operator exited ({status}) while settling; its log ends:\n{}",
                operator.log_tail(40)
            );
        }
        let now = api.inspect(progress);
        let elapsed = origin.elapsed();
        if to_hpas.is_none() && now.hpas >= n {
            to_hpas = Some(elapsed);
        }
        if to_ready.is_none() && now.ready >= n {
            to_ready = Some(elapsed);
        }
        if to_polled.is_none() && now.polled >= n {
            to_polled = Some(elapsed);
        }
        if to_ready.is_some() && to_polled.is_some() {
            break (true, now);
        }
        if elapsed > settings.settle_timeout {
            break (false, now);
        }
        if last_print.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "  [{:>5.0} s] N={n}: {} HPAs, {} Ready, {} polled, {} samples",
                elapsed.as_secs_f64(),
                now.hpas,
                now.ready,
                now.polled,
                knob.knob.samples()
            );
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    if !settled {
        eprintln!(
            "  N={n}: not settled: {} HPAs, {} Ready, {} polled; operator log ends:\n{}",
            last.hpas,
            last.ready,
            last.polled,
            operator.log_tail(20)
        );
    }
    let settle_records = api.take_requests();
    let settle_end = origin.elapsed();
    let settle = Phase {
        duration: settle_end,
        total_requests: settle_records.len(),
        requests: count_requests(&settle_records),
        failed: failed_requests(&settle_records),
        operator_cpu: operator.cpu(ticks),
        api_cpu: clock.api() - api_cpu_0,
        bench_cpu: (clock.bench() - bench_cpu_0) - (clock.api() - api_cpu_0),
        samples: knob.knob.samples(),
        memory: Memory::of(operator.pid()).unwrap_or_default(),
        api_connections: connections_to(api_port),
        backend_connections: connections_to(backend_port),
    };
    drop(settle_records);

    // Steady state: a few polling intervals with nothing changing.
    let steady_start = origin.elapsed();
    let operator_cpu_1 = operator.cpu(ticks);
    let api_cpu_1 = clock.api();
    let bench_cpu_1 = clock.bench();
    let samples_1 = knob.knob.samples();
    let window = Duration::from_secs(settings.interval * u64::from(settings.steady_intervals));
    let window_end = tokio::time::Instant::now() + window;
    while tokio::time::Instant::now() < window_end {
        if let Some(status) = operator.exited() {
            bail!(
                "the operator exited ({status}) in the steady state; its log ends:\n{}",
                operator.log_tail(40)
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let steady_records = api.take_requests();
    let steady_end = origin.elapsed();
    let steady = Phase {
        duration: steady_end - steady_start,
        total_requests: steady_records.len(),
        requests: count_requests(&steady_records),
        failed: failed_requests(&steady_records),
        operator_cpu: operator.cpu(ticks) - operator_cpu_1,
        api_cpu: clock.api() - api_cpu_1,
        bench_cpu: (clock.bench() - bench_cpu_1) - (clock.api() - api_cpu_1),
        samples: knob.knob.samples() - samples_1,
        memory: Memory::of(operator.pid()).unwrap_or_default(),
        api_connections: connections_to(api_port),
        backend_connections: connections_to(backend_port),
    };
    drop(steady_records);
    sampler.abort();
    let timeline = timeline
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let first_interval_rates =
        per_second(&timeline, Duration::ZERO, to_polled.unwrap_or(settle_end));
    let steady_rates = per_second(&timeline, steady_start, steady_end);
    let scrape = operator.scrape().await;
    let (operator_warnings, first_warnings) = operator.warnings();
    let first_namespace = namespace_of(0, settings.per_namespace);
    let scaled_object_size = ObjectSize::of(api.get(
        "keda.sh/v1alpha1",
        "scaledobjects",
        &first_namespace,
        &name_of(0),
    ));
    let hpa_size = ObjectSize::of(api.get(
        "autoscaling/v2",
        "horizontalpodautoscalers",
        &first_namespace,
        &format!("keda-hpa-{}", name_of(0)),
    ));
    let shutdown = operator.stop().await;
    let restart = if settings.restart {
        // Whatever the stopping replica sent (the lease release) belongs to no phase.
        drop(api.take_requests());
        let samples_per_poll =
            steady.samples as f64 / (n * settings.steady_intervals as usize).max(1) as f64;
        let replica = Replica {
            binary,
            kubeconfig: &kubeconfig,
            dir: dir.path(),
            api: &api,
            knob: &knob.knob,
            ports: (api_port, backend_port),
            clock: &clock,
        };
        Some(restart_phase(n, settings, &replica, samples_per_poll).await?)
    } else {
        None
    };
    api.shutdown().await;
    drop(knob);
    Ok(Report {
        restart,
        scrape,
        n,
        namespaces,
        create,
        to_hpas,
        to_ready,
        to_polled,
        settled,
        settle,
        steady,
        steady_polls: n * settings.steady_intervals as usize,
        first_interval_rates,
        steady_rates,
        shutdown,
        operator_warnings,
        first_warnings,
        scaled_object_size,
        hpa_size,
    })
}

/// The replica started first; a restart starts [`SECOND_REPLICA`], as a rolled pod is.
const FIRST_REPLICA: &str = "windlass-scale-0";
const SECOND_REPLICA: &str = "windlass-scale-1";

/// What a replica started by the bench needs, and what it is measured against.
struct Replica<'a> {
    binary: &'a Path,
    kubeconfig: &'a Path,
    dir: &'a Path,
    api: &'a FakeApiServer,
    knob: &'a windlass_tests::operator::Knob,
    /// The API server's and the scaler's ports.
    ports: (u16, u16),
    clock: &'a CpuClock,
}

/// A new replica taking over objects that are already reconciled: what a rolling update or a
/// crash costs.
#[derive(Debug, Default)]
struct Restart {
    to_lease: Option<Duration>,
    /// Until the backend saw about one poll per object.
    to_polled: Option<Duration>,
    phase: Phase,
    warnings: usize,
}

async fn restart_phase(
    n: usize,
    settings: &Settings,
    replica: &Replica<'_>,
    samples_per_poll: f64,
) -> Result<Restart> {
    let api = replica.api;
    let api_cpu_0 = replica.clock.api();
    let bench_cpu_0 = replica.clock.bench();
    let samples_0 = replica.knob.samples();
    let mut operator = OperatorProcess::start(
        replica.binary,
        replica.kubeconfig,
        replica.dir,
        SECOND_REPLICA,
    )?;
    let origin = Instant::now();
    let wanted = (n as f64 * samples_per_poll.max(1.0)).ceil() as usize;
    let deadline = Duration::from_secs(settings.interval * 2 + 60);
    let mut to_lease = None;
    let mut to_polled = None;
    while to_polled.is_none() && origin.elapsed() < deadline {
        if let Some(status) = operator.exited() {
            bail!(
                "the restarted operator exited ({status}); its log ends:\n{}",
                operator.log_tail(40)
            );
        }
        if to_lease.is_none()
            && api.inspect(|view| {
                view.get(
                    "coordination.k8s.io/v1",
                    "leases",
                    "keda",
                    "windlass-operator",
                )
                .is_some_and(|lease| lease["spec"]["holderIdentity"] == SECOND_REPLICA)
            })
        {
            to_lease = Some(origin.elapsed());
        }
        if replica.knob.samples() - samples_0 >= wanted {
            to_polled = Some(origin.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let records = api.take_requests();
    let phase = Phase {
        duration: origin.elapsed(),
        total_requests: records.len(),
        requests: count_requests(&records),
        failed: failed_requests(&records),
        operator_cpu: operator.cpu(replica.clock.ticks),
        api_cpu: replica.clock.api() - api_cpu_0,
        bench_cpu: (replica.clock.bench() - bench_cpu_0) - (replica.clock.api() - api_cpu_0),
        samples: replica.knob.samples() - samples_0,
        memory: Memory::of(operator.pid()).unwrap_or_default(),
        api_connections: connections_to(replica.ports.0),
        backend_connections: connections_to(replica.ports.1),
    };
    let (warnings, _) = operator.warnings();
    operator.stop().await;
    Ok(Restart {
        to_lease,
        to_polled,
        phase,
        warnings,
    })
}

/// The one-minute load average: other work on the machine skews time and CPU figures.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

fn main() -> Result<()> {
    let settings = Settings::from_env_and_args()?;
    let binary = windlass_bin();
    let how = if std::env::var_os("WINDLASS_BIN").is_some() {
        "WINDLASS_BIN"
    } else if binary.components().any(|c| c.as_os_str() == "release") {
        "cargo build --release, via windlass_tests::windlass_bin"
    } else {
        "NOT a release build: numbers are not representative"
    };
    println!("operator binary: {} ({how})", binary.display());
    println!(
        "sizes {:?}, pollingInterval {} s, steady window {} intervals, {} ScaledObjects per namespace, {} CPUs",
        settings.sizes,
        settings.interval,
        settings.steady_intervals,
        settings.per_namespace,
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let ticks = clock_ticks();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("building the bench's runtime")?;
    runtime.block_on(async {
        scalers::context::install_crypto_provider();
        for &n in &settings.sizes {
            let started = Instant::now();
            eprintln!("N={n}: starting");
            let load_before = load_average();
            let report = run(n, &settings, binary, ticks).await?;
            report.print(&settings);
            println!(
                "machine load average (1 min): {load_before} before, {} after — other processes on this machine compete for its CPUs",
                load_average()
            );
            eprintln!(
                "N={n}: done in {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
        Ok(())
    })
}
