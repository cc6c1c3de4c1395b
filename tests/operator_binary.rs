//! The real `windlass operator` binary: its help documents every flag with its environment
//! variable, and, pointed at the in-memory Kubernetes API through a kubeconfig, it takes the
//! lease, reconciles a ScaledObject into its HPA, answers the HPA's external metrics request
//! over TLS from a front-proxy client certificate (as the kube-apiserver's aggregator sends
//! it), and stops cleanly on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

use fake_apiserver::FakeApiServer;
use serde_json::json;
use windlass_tests::operator::{KnobServer, deployment, scaled_object};
use windlass_tests::servers::wait_for;
use windlass_tests::tls::TestPki;
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
    // The aggregator's front proxy: the client certificate's CA and name, as the cluster
    // publishes them, and an authoriser that lets only the HPA controller read metrics.
    let pki = TestPki::generate(dir.path());
    api.put_object(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "extension-apiserver-authentication", "namespace": "kube-system"},
        "data": {
            "requestheader-client-ca-file": pki.ca_cert,
            "requestheader-allowed-names": "[\"windlass test client\"]",
            "requestheader-username-headers": "[\"X-Remote-User\"]",
            "requestheader-group-headers": "[\"X-Remote-Group\"]",
            "requestheader-extra-headers-prefix": "[\"X-Remote-Extra-\"]"
        }
    }))
    .unwrap();
    api.set_subject_access_review_handler(|spec| {
        let allowed = spec["user"] == "system:serviceaccount:kube-system:horizontal-pod-autoscaler";
        json!({"allowed": allowed})
    });
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(windlass_bin())
        .args([
            "operator",
            "--health-probe-bind-address",
            "127.0.0.1:0",
            "--metrics-bind-address",
            "127.0.0.1:0",
            "--metrics-api-bind-address",
            &format!("127.0.0.1:{metrics_port}"),
            "--tls-cert-file",
            pki.server.cert_file.to_str().unwrap(),
            "--tls-private-key-file",
            pki.server.key_file.to_str().unwrap(),
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
    let served = read_metric(&pki, metrics_port).await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exited = wait_exit(&mut child, Duration::from_secs(15));
    assert!(created.is_ok(), "the binary created the HPA");
    assert!(lease.is_ok(), "the binary holds the lease");
    let (hpa_read, stranger_read) = served;
    assert_eq!(hpa_read.0, 200, "the HPA's read: {}", hpa_read.1);
    let list: serde_json::Value = serde_json::from_str(&hpa_read.1).unwrap();
    assert_eq!(list["kind"], "ExternalMetricValueList");
    assert_eq!(list["items"][0]["metricName"], "s0-queue");
    assert_eq!(list["items"][0]["value"], "2");
    assert_eq!(
        stranger_read.0, 403,
        "anyone else is refused: {}",
        stranger_read.1
    );
    let status = exited.expect("the operator stops on SIGTERM");
    assert!(status.success(), "clean exit, got {status:?}");
}

/// The HPA controller's read through the front proxy, and a stranger's, as (status, body);
/// retried until the value is warm (the first poll may not have run yet).
async fn read_metric(pki: &TestPki, port: u16) -> ((u16, String), (u16, String)) {
    let ca = reqwest::Certificate::from_pem(pki.ca_cert.as_bytes()).unwrap();
    let identity =
        reqwest::Identity::from_pem(format!("{}{}", pki.client.cert, pki.client.key).as_bytes())
            .unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .identity(identity)
        .build()
        .unwrap();
    let url = format!(
        "https://127.0.0.1:{port}/apis/external.metrics.k8s.io/v1beta1/namespaces/default/s0-queue?labelSelector=scaledobject.keda.sh%2Fname%3Dworker"
    );
    let read = |user: &'static str| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let response = client
                .get(&url)
                .header("X-Remote-User", user)
                .header("X-Remote-Group", "system:serviceaccounts")
                .send()
                .await
                .ok()?;
            let status = response.status().as_u16();
            Some((status, response.text().await.unwrap_or_default()))
        }
    };
    let hpa = wait_for(
        "the metrics API answers 200",
        Duration::from_secs(30),
        || async {
            read("system:serviceaccount:kube-system:horizontal-pod-autoscaler")
                .await
                .filter(|(status, _)| *status == 200)
        },
    )
    .await;
    let stranger = read("system:serviceaccount:default:nosy")
        .await
        .unwrap_or((0, String::new()));
    (hpa, stranger)
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
