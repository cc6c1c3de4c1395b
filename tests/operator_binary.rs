//! The real `windlass operator` binary: its help documents every flag with its environment
//! variable, and, pointed at the in-memory Kubernetes API through a kubeconfig, it reconciles a
//! ScaledObject into its HPA and stops cleanly on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

use fake_apiserver::FakeApiServer;
use serde_json::json;
use windlass_tests::operator::{KnobServer, deployment, scaled_object};
use windlass_tests::{windlass, windlass_bin};

#[test]
fn help_documents_every_flag_and_its_environment_variable() {
    let run = windlass(["operator", "--help"]);
    run.assert_code(0);
    let help = run.stdout.clone();
    for (flag, env) in [
        ("--watch-namespace", "WATCH_NAMESPACE"),
        ("--watch-label-selector", "WATCH_LABEL_SELECTOR"),
        (
            "--cluster-object-namespace",
            "KEDA_CLUSTER_OBJECT_NAMESPACE",
        ),
        ("--pod-namespace", "POD_NAMESPACE"),
        ("--pod-name", "POD_NAME"),
        (
            "--max-concurrent-reconciles",
            "KEDA_SCALEDOBJECT_CTRL_MAX_RECONCILES",
        ),
        ("--http-default-timeout", "KEDA_HTTP_DEFAULT_TIMEOUT"),
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
        assert!(
            help.contains(&format!("env: {env}")),
            "--help lacks {env}:\n{help}"
        );
    }
    // Every long flag shown has an environment variable.
    let flags = help
        .lines()
        .filter(|line| line.trim_start().starts_with("--") && !line.contains("--help"))
        .count();
    let envs = help.matches("[env: ").count();
    assert!(flags > 0);
    assert_eq!(flags, envs, "every flag names its env variable:\n{help}");
}

#[tokio::test]
async fn the_binary_reconciles_a_scaled_object_into_its_hpa() {
    scalers::context::install_crypto_provider();
    let api = FakeApiServer::start().await.unwrap();
    api.simulate_workloads(true);
    let knob = KnobServer::start(2.0).await;
    api.create_namespace("keda").unwrap();
    api.put_object(deployment("default", "worker", 1)).unwrap();
    api.put_object(scaled_object("default", "worker", &knob.address, json!({})))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.write_kubeconfig(dir.path()).unwrap();
    let mut child = Command::new(windlass_bin())
        .args([
            "operator",
            "--health-probe-bind-address",
            "127.0.0.1:0",
            "--metrics-bind-address",
            "127.0.0.1:0",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env("POD_NAMESPACE", "keda")
        .env("POD_NAME", "windlass-test-0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let created = api
        .wait_until(
            |view| {
                view.get(
                    "autoscaling/v2",
                    "horizontalpodautoscalers",
                    "default",
                    "keda-hpa-worker",
                )
                .is_some()
            },
            Duration::from_secs(30),
        )
        .await;
    let lease = api
        .wait_until(
            |view| {
                view.get(
                    "coordination.k8s.io/v1",
                    "leases",
                    "keda",
                    "windlass-operator",
                )
                .is_some_and(|lease| lease["spec"]["holderIdentity"] == "windlass-test-0")
            },
            Duration::from_secs(30),
        )
        .await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exited = wait_exit(&mut child, Duration::from_secs(15));
    assert!(created.is_ok(), "the binary created the HPA");
    assert!(lease.is_ok(), "the binary holds the lease");
    let status = exited.expect("the operator stops on SIGTERM");
    assert!(status.success(), "clean exit, got {status:?}");
}

fn wait_exit(
    child: &mut std::process::Child,
    timeout: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
