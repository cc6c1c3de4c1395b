//! `deploy/*.yaml` against the binary: every container's arguments parse as a `windlass`
//! command line, every environment variable it sets is one that command reads, and the
//! pieces that must agree (ports, Secret, Service, APIService, RBAC subjects) agree.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::{CommandFactory, Parser};
use serde::Deserialize;
use serde_yaml_ng::Value;
use windlass::cli::Cli;

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// Every document of every `deploy/*.yaml`, with the file it came from.
fn documents() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir())
        .expect("deploy/ exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in deploy/");
    let mut documents = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        for document in serde_yaml_ng::Deserializer::from_str(&text) {
            let value = Value::deserialize(document)
                .unwrap_or_else(|error| panic!("{}: {error}", file.display()));
            if !value.is_null() {
                documents.push((file.display().to_string(), value));
            }
        }
    }
    documents
}

fn kind(document: &Value) -> &str {
    document["kind"].as_str().unwrap_or_default()
}

fn name(document: &Value) -> &str {
    document["metadata"]["name"].as_str().unwrap_or_default()
}

fn find<'a>(documents: &'a [(String, Value)], wanted_kind: &str, wanted_name: &str) -> &'a Value {
    documents
        .iter()
        .map(|(_, d)| d)
        .find(|d| kind(d) == wanted_kind && name(d) == wanted_name)
        .unwrap_or_else(|| panic!("no {wanted_kind} {wanted_name} in deploy/"))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|items| {
            items
                .iter()
                .map(|item| item.as_str().expect("a string").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The deployment's one container.
fn container(documents: &[(String, Value)]) -> &Value {
    let deployment = find(documents, "Deployment", "windlass-operator");
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .expect("containers");
    assert_eq!(containers.len(), 1);
    &containers[0]
}

/// Environment variables a subcommand reads, by clap's declarations.
fn declared_env(subcommand: &str) -> BTreeSet<String> {
    let command = Cli::command();
    let subcommand = command
        .get_subcommands()
        .find(|c| c.get_name() == subcommand)
        .unwrap_or_else(|| panic!("windlass has no {subcommand} subcommand"));
    subcommand
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_container_argument_is_a_windlass_flag() {
    let documents = documents();
    let container = container(&documents);
    assert!(
        container["command"].is_null(),
        "the image's entrypoint is windlass; arguments go in args"
    );
    let args = strings(&container["args"]);
    let mut argv = vec!["windlass".to_owned()];
    argv.extend(args.iter().cloned());
    if let Err(error) = Cli::try_parse_from(&argv) {
        panic!("deploy/deployment.yaml args {args:?} are not a windlass command line:\n{error}");
    }
    assert_eq!(args.first().map(String::as_str), Some("operator"));
}

#[test]
fn every_environment_variable_is_read_by_windlass_operator() {
    let documents = documents();
    let declared = declared_env("operator");
    for variable in container(&documents)["env"].as_sequence().expect("env") {
        let variable = variable["name"].as_str().expect("a name");
        assert!(
            declared.contains(variable),
            "deploy/deployment.yaml sets {variable}, which `windlass operator` does not read; it reads {declared:?}"
        );
    }
}

#[test]
fn the_pieces_agree() {
    let documents = documents();
    let container = container(&documents);
    let ports: Vec<(String, i64)> = container["ports"]
        .as_sequence()
        .expect("ports")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().expect("a port name").to_owned(),
                p["containerPort"].as_i64().expect("a port"),
            )
        })
        .collect();
    // The defaults of --metrics-api-bind-address, --metrics-bind-address and
    // --health-probe-bind-address.
    let defaults = Cli::try_parse_from(["windlass", "operator"]).expect("defaults parse");
    let windlass::cli::Command::Operator(operator) = defaults.command else {
        panic!("not the operator command");
    };
    for (port_name, expected) in [
        ("metrics-api", operator.metrics_api.bind_address.port()),
        ("metrics", operator.telemetry.metrics_bind_address.port()),
        (
            "health",
            operator.telemetry.health_probe_bind_address.port(),
        ),
    ] {
        assert!(
            ports.contains(&(port_name.to_owned(), i64::from(expected))),
            "container port {port_name} should be {expected}: {ports:?}"
        );
    }
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(container[probe]["httpGet"]["port"], "health", "{probe}");
    }

    // The Service sends 443 to the metrics API, and the APIService points at the Service.
    let service = find(&documents, "Service", "windlass-metrics-api");
    let https = service["spec"]["ports"]
        .as_sequence()
        .expect("ports")
        .iter()
        .find(|p| p["port"].as_i64() == Some(443))
        .expect("a 443 port");
    assert_eq!(https["targetPort"], "metrics-api");
    let api_service = find(&documents, "APIService", "v1beta1.external.metrics.k8s.io");
    assert_eq!(api_service["spec"]["group"], "external.metrics.k8s.io");
    assert_eq!(api_service["spec"]["version"], "v1beta1");
    assert_eq!(
        api_service["spec"]["service"]["name"],
        "windlass-metrics-api"
    );
    assert_eq!(api_service["spec"]["service"]["namespace"], "keda");

    // The serving certificate's Secret is the one mounted at the files the env names.
    let certificate = find(&documents, "Certificate", "windlass-metrics-api");
    let secret = certificate["spec"]["secretName"]
        .as_str()
        .expect("a Secret");
    let deployment = find(&documents, "Deployment", "windlass-operator");
    let volumes = deployment["spec"]["template"]["spec"]["volumes"]
        .as_sequence()
        .expect("volumes");
    let certs = volumes
        .iter()
        .find(|v| v["secret"]["secretName"].as_str() == Some(secret))
        .expect("the certificate's Secret is mounted");
    let mount = container["volumeMounts"]
        .as_sequence()
        .expect("mounts")
        .iter()
        .find(|m| m["name"] == certs["name"])
        .expect("mounted");
    let mount_path = mount["mountPath"].as_str().expect("a path");
    for variable in container["env"].as_sequence().expect("env") {
        if variable["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("WINDLASS_METRICS_API_TLS_"))
        {
            let value = variable["value"].as_str().expect("a value");
            assert!(
                value.starts_with(mount_path),
                "{value} is not under {mount_path}"
            );
        }
    }
    assert!(
        certificate["spec"]["dnsNames"]
            .as_sequence()
            .expect("dnsNames")
            .iter()
            .any(|n| n == "windlass-metrics-api.keda.svc"),
        "the certificate names the Service"
    );
}

#[test]
fn rbac_is_least_privilege() {
    let documents = documents();
    let role = find(&documents, "ClusterRole", "windlass-operator");
    for rule in role["rules"].as_sequence().expect("rules") {
        let groups = strings(&rule["apiGroups"]);
        let resources = strings(&rule["resources"]);
        let verbs = strings(&rule["verbs"]);
        assert!(
            !resources.iter().any(|r| r == "*"),
            "no rule over every resource: {rule:?}"
        );
        assert!(
            !verbs.iter().any(|v| v == "*"),
            "no wildcard verbs: {rule:?}"
        );
        if groups.iter().any(|g| g == "*") {
            assert_eq!(
                resources,
                ["*/scale"],
                "only /scale across groups: {rule:?}"
            );
        }
        if resources
            .iter()
            .any(|r| r == "secrets" || r == "configmaps")
        {
            assert_eq!(
                verbs,
                ["get"],
                "Secrets and ConfigMaps by name only: {rule:?}"
            );
        }
    }
    // The bindings the metrics API needs, for the Deployment's service account.
    let service_account = find(&documents, "Deployment", "windlass-operator")["spec"]["template"]
        ["spec"]["serviceAccountName"]
        .as_str()
        .expect("a service account")
        .to_owned();
    find(&documents, "ServiceAccount", &service_account);
    let delegator = find(
        &documents,
        "ClusterRoleBinding",
        "windlass-system-auth-delegator",
    );
    assert_eq!(delegator["roleRef"]["name"], "system:auth-delegator");
    assert_eq!(delegator["subjects"][0]["name"], service_account.as_str());
    let reader = find(&documents, "RoleBinding", "windlass-auth-reader");
    assert_eq!(reader["metadata"]["namespace"], "kube-system");
    assert_eq!(
        reader["roleRef"]["name"],
        "extension-apiserver-authentication-reader"
    );
    let hpa = find(
        &documents,
        "ClusterRoleBinding",
        "windlass-hpa-controller-external-metrics",
    );
    assert_eq!(hpa["subjects"][0]["name"], "horizontal-pod-autoscaler");
    assert_eq!(hpa["subjects"][0]["namespace"], "kube-system");
}

#[test]
fn the_operator_is_highly_available_and_unprivileged() {
    let documents = documents();
    let deployment = find(&documents, "Deployment", "windlass-operator");
    assert!(deployment["spec"]["replicas"].as_i64().unwrap_or(0) >= 2);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = container(&documents);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert!(!container["resources"]["requests"].is_null());
    let budget = find(&documents, "PodDisruptionBudget", "windlass-operator");
    assert_eq!(
        budget["spec"]["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
}
