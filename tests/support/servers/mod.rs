//! Real servers for the scaler tests: each test starts its own processes on free loopback
//! ports, in its own temporary directory, and they are killed when the handle is dropped.
//!
//! A missing server binary is a failure with the install command, never a skip: CI installs
//! them (`scripts/test`), and a developer sees at once what to install.
// Test infrastructure: a failure to set up a server should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod nats;
pub mod prometheus;
pub mod redis;

pub use crate::tls::TestPki;

use std::future::Future;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The path of `binary`, or a panic that says which Debian package provides it.
pub fn require_binary(binary: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(binary))
            .find(|candidate| candidate.is_file())
    });
    match found {
        Some(path) => path,
        None => panic!(
            "`{binary}` is not installed; the scaler tests need the real server. Install it with `apt-get install {package}` (scripts/test does this)"
        ),
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind an ephemeral port on 127.0.0.1");
    listener
        .local_addr()
        .expect("local address of a bound listener")
        .port()
}

/// A free port `p` whose `p + offset` is free too (Redis Cluster's bus port is `p + 10000`).
pub fn free_port_pair(offset: u16) -> u16 {
    loop {
        let port = free_port();
        let Some(partner) = port.checked_add(offset) else {
            continue;
        };
        if TcpListener::bind((Ipv4Addr::LOCALHOST, partner)).is_ok() {
            return port;
        }
    }
}

/// A child process that is killed (and reaped) when dropped; its output goes to a log file in
/// its directory, shown by [`ServerProcess::log`] when a test needs to explain a failure.
#[derive(Debug)]
pub struct ServerProcess {
    name: String,
    child: Option<Child>,
    log_path: PathBuf,
}

impl ServerProcess {
    /// Starts `command` with stdout and stderr appended to `<dir>/<name>.log`.
    pub fn spawn(name: &str, mut command: Command, dir: &Path) -> Self {
        let log_path = dir.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path).expect("create the server log file");
        let err = log.try_clone().expect("clone the log file handle");
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err));
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self {
            name: name.to_owned(),
            child: Some(child),
            log_path,
        }
    }

    /// What the server printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The process id, e.g. to send it a signal.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the process now and waits for it to exit (a server "going away" mid-test).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process has exited on its own.
    pub fn has_exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(Some(_))),
            None => true,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `condition` until it returns `Some`, or panics after `timeout` with `what`.
///
/// Servers announce readiness in different ways (a ports file, a health endpoint, a PING);
/// this is the one place that waits for them.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = condition().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Whether something accepts TCP connections on `127.0.0.1:port`.
pub async fn port_is_open(port: u16) -> bool {
    tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .await
        .is_ok()
}
