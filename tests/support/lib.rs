//! Shared helpers for the cross-crate tests: run the real `windlass` binary as a subprocess on
//! manifests written to temporary directories, and read what it prints.
//!
//! The binary belongs to `windlass-operator`, not to this package, so Cargo does not set
//! `CARGO_BIN_EXE_windlass` here. [`windlass_bin`] builds it once per test process with
//! `cargo build -p windlass-operator --bin windlass` (a no-op when it is fresh, so a test never
//! runs a binary older than the sources), in the same target directory and profile as the test
//! executable, and takes the path Cargo reports. Cargo's own build-directory lock serialises the
//! builds of test binaries that run at the same time; a `OnceLock` serialises the tests of one
//! binary. Without a usable `cargo`, the `windlass` next to the test executable
//! (`deps/../windlass`) is used. `WINDLASS_BIN=/path/to/windlass` skips both.

pub mod operator;
pub mod scalers;
pub mod servers;
pub mod tls;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The workspace root (the parent of this package's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
}

/// A path below the workspace root.
pub fn repo_path(relative: &str) -> PathBuf {
    workspace_root().join(relative)
}

/// The directory holding the test executable's profile output (`target/debug`), from
/// `target/debug/deps/<test>-<hash>`.
fn profile_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test executable")?;
    let deps = exe
        .parent()
        .context("the test executable has no parent directory")?;
    let profile = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().unwrap_or(deps)
    } else {
        deps
    };
    Ok(profile.to_path_buf())
}

fn exe_name() -> String {
    format!("windlass{}", std::env::consts::EXE_SUFFIX)
}

/// `cargo build -p windlass-operator --bin windlass`, returning the executable Cargo reports.
fn cargo_build(profile: &Path) -> Result<PathBuf> {
    cargo_build_target(
        profile,
        &["-p", "windlass-operator", "--bin", "windlass"],
        &exe_name(),
    )
}

/// `cargo build <target>` (package and target selection), returning the executable named `exe`
/// that Cargo reports.
fn cargo_build_target(profile: &Path, target: &[&str], exe: &str) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(workspace_root().join("Cargo.toml"))
        .args(target)
        .arg("--message-format=json-render-diagnostics")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    // Cargo sets these for the test process; inherited, they change build-script inputs (ring
    // watches CARGO_MANIFEST_DIR) and make the nested build and `cargo test` rebuild each other.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name == "CARGO_MANIFEST_DIR"
            || name == "CARGO_MANIFEST_PATH"
            || name == "CARGO_CRATE_NAME"
            || name == "CARGO_PRIMARY_PACKAGE"
            || name == "CARGO_TARGET_TMPDIR"
            || name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_BIN_")
        {
            command.env_remove(name.as_ref());
        }
    }
    // The same target directory and profile as the test executable, unless the environment
    // already names the target directory (CARGO_TARGET_DIR is inherited by the child).
    let target_dir = profile
        .parent()
        .filter(|_| std::env::var_os("CARGO_TARGET_DIR").is_none())
        .filter(|_| profile.file_name().is_some_and(|n| n == "debug"));
    if let Some(target_dir) = target_dir {
        command.arg("--target-dir").arg(target_dir);
    }
    if profile.file_name().is_some_and(|n| n == "release") {
        command.arg("--release");
    }
    let output = command.output().context("running cargo build")?;
    if !output.status.success() {
        bail!("cargo build {} failed", target.join(" "));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter_map(|message| message["executable"].as_str().map(PathBuf::from))
        .find(|path| path.file_name().is_some_and(|n| n == exe))
        .with_context(|| format!("cargo build reported no {exe} executable"))
}

/// Builds the Cargo example `example` of `package` in the test's target directory and profile
/// (a no-op when fresh) and returns its executable.
///
/// # Panics
/// When it cannot be built.
pub fn example_bin(package: &str, example: &str) -> PathBuf {
    let exe = format!("{example}{}", std::env::consts::EXE_SUFFIX);
    profile_dir()
        .and_then(|profile| {
            cargo_build_target(&profile, &["-p", package, "--example", example], &exe)
        })
        .unwrap_or_else(|error| panic!("building example {example}: {error:#}"))
}

fn locate_windlass() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("WINDLASS_BIN") {
        return Ok(PathBuf::from(path));
    }
    let profile = profile_dir()?;
    match cargo_build(&profile) {
        Ok(path) => Ok(path),
        Err(error) => {
            let beside = profile.join(exe_name());
            if beside.is_file() {
                eprintln!(
                    "windlass-tests: {error:#}; using {} as it is",
                    beside.display()
                );
                Ok(beside)
            } else {
                Err(error.context(format!("and there is no {}", beside.display())))
            }
        }
    }
}

/// The `windlass` executable, built once per test process.
///
/// # Panics
/// When it can neither be built nor found: every test needs it.
pub fn windlass_bin() -> &'static Path {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BIN.get_or_init(|| locate_windlass().map_err(|e| format!("{e:#}"))) {
        Ok(path) => path,
        Err(error) => panic!("cannot find or build the windlass binary: {error}"),
    }
}

/// What one run of `windlass` produced.
#[derive(Debug)]
pub struct Run {
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(output: Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// stdout parsed as one JSON document.
    ///
    /// # Panics
    /// When stdout is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|error| {
            panic!(
                "stdout is not JSON ({error}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// A description for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "exit code {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// Asserts the exit code, showing everything printed when it differs.
    ///
    /// # Panics
    /// When the exit code differs.
    #[track_caller]
    pub fn assert_code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(expected),
            "unexpected exit code\n{}",
            self.describe()
        );
        assert!(
            !self.stderr.contains("panicked"),
            "windlass panicked\n{}",
            self.describe()
        );
        self
    }
}

/// Runs `windlass ARGS…` with empty standard input.
///
/// # Panics
/// When the process cannot be started.
pub fn windlass<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    windlass_with_stdin(args, "")
}

/// Runs `windlass ARGS…` with `stdin` as standard input.
///
/// # Panics
/// When the process cannot be started.
pub fn windlass_with_stdin<I, S>(args: I, stdin: &str) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut child = Command::new(windlass_bin())
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("starting {}: {error}", windlass_bin().display()));
    if let Some(mut input) = child.stdin.take() {
        // The binary may exit before reading everything (e.g. usage errors): ignore EPIPE.
        let _ = input.write_all(stdin.as_bytes());
    }
    let output = child
        .wait_with_output()
        .unwrap_or_else(|error| panic!("waiting for windlass: {error}"));
    Run::from_output(output)
}

/// A temporary directory of manifest files, removed when dropped.
#[derive(Debug)]
pub struct Manifests {
    dir: tempfile::TempDir,
}

impl Manifests {
    /// An empty directory.
    ///
    /// # Panics
    /// When the temporary directory cannot be created.
    pub fn new() -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix("windlass-tests-")
                .tempdir()
                .unwrap_or_else(|error| panic!("creating a temporary directory: {error}")),
        }
    }

    /// A directory holding one file, `manifests.yaml`, with `yaml`.
    pub fn with(yaml: &str) -> Self {
        let manifests = Self::new();
        manifests.write("manifests.yaml", yaml);
        manifests
    }

    /// Writes `relative` (sub-directories are created) and returns its path.
    ///
    /// # Panics
    /// When the file cannot be written.
    pub fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|error| panic!("creating {}: {error}", parent.display()));
        }
        std::fs::write(&path, text)
            .unwrap_or_else(|error| panic!("writing {}: {error}", path.display()));
        path
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the directory (which need not exist).
    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// `windlass check -o json -f <dir>`.
    pub fn check_json(&self) -> Run {
        windlass([
            "check".as_ref(),
            "-o".as_ref(),
            "json".as_ref(),
            "-f".as_ref(),
            self.dir().as_os_str(),
        ])
    }

    /// `windlass check -f <dir>` (text output).
    pub fn check_text(&self) -> Run {
        windlass(["check".as_ref(), "-f".as_ref(), self.dir().as_os_str()])
    }

    /// `windlass plan -o json -f <dir> EXTRA…`.
    pub fn plan_json(&self, extra: &[&str]) -> Run {
        let mut args: Vec<std::ffi::OsString> = vec![
            "plan".into(),
            "-o".into(),
            "json".into(),
            "-f".into(),
            self.dir().into(),
        ];
        args.extend(extra.iter().map(Into::into));
        windlass(args)
    }
}

impl Default for Manifests {
    fn default() -> Self {
        Self::new()
    }
}

/// The report of the ScaledObject `name` in `check -o json` or `plan -o json` output.
///
/// # Panics
/// When there is no such object.
#[track_caller]
pub fn object<'v>(reports: &'v Value, name: &str) -> &'v Value {
    reports
        .as_array()
        .and_then(|objects| objects.iter().find(|o| o["name"] == name))
        .unwrap_or_else(|| panic!("no ScaledObject {name:?} in {reports:#}"))
}

/// Every error of a `check -o json` object report: the object's, then each trigger's.
pub fn all_errors(report: &Value) -> Vec<String> {
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|e| e.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut errors = strings(&report["errors"]);
    for trigger in report["triggers"].as_array().into_iter().flatten() {
        errors.extend(strings(&trigger["errors"]));
    }
    errors
}

/// The field each error names (the text before the first `": "`).
pub fn error_fields(report: &Value) -> Vec<String> {
    all_errors(report)
        .iter()
        .map(|e| e.split_once(": ").map_or(e.as_str(), |(f, _)| f).to_owned())
        .collect()
}

/// A `windlass` process whose stdout is read as it is produced, killed when dropped.
#[derive(Debug)]
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    /// Starts `windlass ARGS…`.
    ///
    /// # Panics
    /// When the process cannot be started.
    pub fn start<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut child = Command::new(windlass_bin())
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("starting windlass: {error}"));
        let (sender, lines) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Self { child, lines }
    }

    /// The first complete JSON document on stdout, waiting at most `timeout` in all.
    pub fn first_json(&mut self, timeout: Duration) -> Result<Value> {
        let deadline = std::time::Instant::now() + timeout;
        let mut text = String::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self.lines.recv_timeout(left).with_context(|| {
                format!("no complete JSON document within {timeout:?}; read so far:\n{text}")
            })?;
            text.push_str(&line);
            text.push('\n');
            let mut stream = serde_json::Deserializer::from_str(&text).into_iter::<Value>();
            match stream.next() {
                Some(Ok(value)) => return Ok(value),
                Some(Err(error)) if error.is_eof() => {}
                Some(Err(error)) => bail!("stdout is not JSON ({error}):\n{text}"),
                None => {}
            }
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Minimal manifests for tests.
pub mod yaml {
    /// A Deployment named `name` in `namespace` with one container `app` whose body (indented
    /// as the container's fields, e.g. `"env:\n- {name: A, value: b}"`) is `container`.
    pub fn deployment(namespace: &str, name: &str, container: &str) -> String {
        let body: String = container
            .lines()
            .map(|line| format!("          {line}\n"))
            .collect();
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n        - name: app\n          image: example.invalid/{name}:1\n{body}"
        )
    }
}
