//! KEDA's documented examples through `windlass check`, unchanged.
//!
//! The trigger fixtures live in `crates/scalers/tests/fixtures/` (one file per keda.sh scaler
//! page). A file holds several examples that reuse object names and scale targets, which in
//! one manifest set would resolve against each other's Secrets and conflict as two
//! ScaledObjects scaling one Deployment. So each file is split, keeping every document's text
//! as written, into example groups: the documents up to and including a ScaledObject. Each
//! group is checked as its own set, with one addition when the group lacks it: the
//! Deployment the example scales (the docs assume it exists), whose container defines the
//! environment variables the example's `<key>FromEnv` parameters name and has cpu/memory
//! requests.
//!
//! A few documented examples are rejected by KEDA itself; [`KEDA_REJECTS`] lists them with
//! the key Windlass must name. Examples whose Secrets write plain text under `data` (the
//! docs' `<your ca>` placeholders) are checked separately (see
//! `examples_with_plain_text_secret_data_pass`).
//!
//! ScaledObject-level examples of the keda.sh reference (`reference/scaledobject-spec.md`,
//! `concepts/scaling-deployments.md`) are in `tests/fixtures/keda-docs/`, one set per file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use windlass_tests::{Manifests, all_errors, error_fields, object, repo_path, windlass};

fn fixtures_dir() -> PathBuf {
    repo_path("crates/scalers/tests/fixtures")
}

/// One documented example: the documents up to and including a ScaledObject.
#[derive(Debug)]
struct Group {
    file: String,
    /// 0-based position among the file's groups.
    ordinal: usize,
    /// The documents' text, as written.
    documents: Vec<String>,
    values: Vec<Value>,
}

impl Group {
    fn scaled_object(&self) -> &Value {
        self.values
            .last()
            .expect("a group ends with its ScaledObject")
    }

    fn namespace(&self) -> String {
        self.scaled_object()["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_owned()
    }

    fn name(&self) -> String {
        self.scaled_object()["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn label(&self) -> String {
        format!(
            "{} example {} (ScaledObject {}/{})",
            self.file,
            self.ordinal,
            self.namespace(),
            self.name()
        )
    }

    /// Whether a Secret of the group writes something that is not base64 under `data`.
    fn has_plain_text_secret_data(&self) -> bool {
        use base64::Engine;
        self.values
            .iter()
            .filter(|v| v["kind"] == "Secret")
            .filter_map(|v| v["data"].as_object())
            .flat_map(|data| data.values())
            .any(|value| {
                let text = value.as_str().unwrap_or_default();
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .is_err()
            })
    }

    /// The group's text, plus the Deployment it scales when the group lacks it.
    fn manifests(&self) -> String {
        let mut text = self.documents.join("\n---\n");
        if let Some(deployment) = self.supporting_deployment() {
            text.push_str("\n---\n");
            text.push_str(&deployment);
        }
        text
    }

    /// The scale target the docs assume, when it is a Deployment the group does not define.
    fn supporting_deployment(&self) -> Option<String> {
        let so = self.scaled_object();
        let target = &so["spec"]["scaleTargetRef"];
        let api_version = target["apiVersion"].as_str().unwrap_or("apps/v1");
        let kind = target["kind"].as_str().unwrap_or("Deployment");
        let name = target["name"].as_str()?;
        if api_version != "apps/v1" || kind != "Deployment" {
            return None;
        }
        let present = self
            .values
            .iter()
            .any(|v| v["kind"] == "Deployment" && v["metadata"]["name"] == name);
        if present {
            return None;
        }
        let triggers = so["spec"]["triggers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut variables = BTreeSet::new();
        let mut containers = BTreeSet::new();
        for trigger in &triggers {
            for (key, value) in trigger["metadata"].as_object().into_iter().flatten() {
                let value = value.as_str().unwrap_or_default().trim();
                if key.ends_with("FromEnv") && !value.is_empty() {
                    variables.insert(value.to_owned());
                }
                if key == "containerName" && !value.is_empty() {
                    containers.insert(value.to_owned());
                }
            }
        }
        if let Some(name) = target["envSourceContainerName"].as_str() {
            containers.insert(name.to_owned());
        }
        if containers.is_empty() {
            containers.insert("app".to_owned());
        }
        let env: String = variables
            .iter()
            .map(|name| {
                format!(
                    "            - {{name: {name}, value: {:?}}}\n",
                    example_env_value(name)
                )
            })
            .collect();
        let containers: String = containers
            .iter()
            .map(|container| {
                format!(
                    "        - name: {container}\n          image: example.invalid/{container}:1\n          resources:\n            requests: {{cpu: 100m, memory: 128Mi}}\n{}",
                    if env.is_empty() {
                        String::new()
                    } else {
                        format!("          env:\n{env}")
                    }
                )
            })
            .collect();
        Some(format!(
            "# Added by the test: the workload the example scales.\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n{containers}",
            self.namespace()
        ))
    }
}

/// A plausible value for an environment variable the docs' examples read.
fn example_env_value(name: &str) -> &'static str {
    match name {
        "REDIS_HOST" | "REDIS_ADDRESS" => "redis.default.svc:6379",
        "REDIS_ADDRESSES" => "node1:6379, node2:6379, node3:6379",
        "REDIS_HOSTS" => "node1, node2, node3",
        "REDIS_PORT" => "6379",
        "REDIS_PORTS" => "6379, 6379, 6379",
        "REDIS_SENTINEL_MASTER" => "myprimary",
        _ => "example-value",
    }
}

/// The example groups of one fixture file (relative to the fixtures directory).
fn groups(file: &str) -> Vec<Group> {
    let path = fixtures_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut groups = Vec::new();
    let mut documents = Vec::new();
    let mut values = Vec::new();
    let mut current = String::new();
    let mut flush = |current: &mut String, groups: &mut Vec<Group>| {
        let document = std::mem::take(current);
        let value = Value::deserialize(serde_yaml_ng::Deserializer::from_str(&document))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        if value.is_null() {
            return;
        }
        let is_scaled_object = value["kind"] == "ScaledObject";
        documents.push(document);
        values.push(value);
        if is_scaled_object {
            groups.push(Group {
                file: file.to_owned(),
                ordinal: groups.len(),
                documents: std::mem::take(&mut documents),
                values: std::mem::take(&mut values),
            });
        }
    };
    for line in text.lines() {
        if line.starts_with("---") {
            flush(&mut current, &mut groups);
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    flush(&mut current, &mut groups);
    assert!(
        values.is_empty(),
        "{file}: documents after the last ScaledObject belong to no example"
    );
    assert!(!groups.is_empty(), "{file}: no ScaledObject");
    groups
}

/// A documented example KEDA itself rejects, and the key Windlass must name.
struct Rejected {
    file: &'static str,
    ordinal: usize,
    field: &'static str,
    why: &'static str,
}

const ONLY_CPU_MEMORY: &str = "KEDA's webhook rejects a ScaledObject with only cpu/memory triggers and minReplicaCount unset or 0 (the docs' example omits minReplicaCount)";
const TA_IN_ANOTHER_NAMESPACE: &str = "the ScaledObject is in namespace keda but its TriggerAuthentication in default; KEDA finds no TriggerAuthentication and the scaler fails to build";

const KEDA_REJECTS: &[Rejected] = &[
    Rejected {
        file: "cpu.yaml",
        ordinal: 0,
        field: "spec.minReplicaCount",
        why: ONLY_CPU_MEMORY,
    },
    Rejected {
        file: "cpu.yaml",
        ordinal: 1,
        field: "spec.minReplicaCount",
        why: ONLY_CPU_MEMORY,
    },
    Rejected {
        file: "cpu.yaml",
        ordinal: 2,
        field: "spec.minReplicaCount",
        why: ONLY_CPU_MEMORY,
    },
    Rejected {
        file: "memory.yaml",
        ordinal: 0,
        field: "spec.minReplicaCount",
        why: ONLY_CPU_MEMORY,
    },
    Rejected {
        file: "memory.yaml",
        ordinal: 1,
        field: "spec.minReplicaCount",
        why: ONLY_CPU_MEMORY,
    },
    Rejected {
        file: "memory.yaml",
        ordinal: 2,
        field: "spec.minReplicaCount",
        why: ONLY_CPU_MEMORY,
    },
    Rejected {
        file: "prometheus.yaml",
        ordinal: 2,
        field: "spec.triggers[0].authenticationRef",
        why: TA_IN_ANOTHER_NAMESPACE,
    },
    Rejected {
        file: "prometheus.yaml",
        ordinal: 3,
        field: "spec.triggers[0].authenticationRef",
        why: TA_IN_ANOTHER_NAMESPACE,
    },
    Rejected {
        file: "prometheus.yaml",
        ordinal: 4,
        field: "spec.triggers[0].authenticationRef",
        why: TA_IN_ANOTHER_NAMESPACE,
    },
    Rejected {
        file: "prometheus.yaml",
        ordinal: 5,
        field: "spec.triggers[0].authenticationRef",
        why: TA_IN_ANOTHER_NAMESPACE,
    },
    Rejected {
        file: "prometheus.yaml",
        ordinal: 6,
        field: "spec.triggers[0].authenticationRef",
        why: TA_IN_ANOTHER_NAMESPACE,
    },
];

fn rejected(group: &Group) -> Option<&'static Rejected> {
    KEDA_REJECTS
        .iter()
        .find(|r| r.file == group.file && r.ordinal == group.ordinal)
}

/// Checks one group; returns a description of what went wrong, if anything.
fn check_group(group: &Group) -> Option<String> {
    let manifests = Manifests::with(&group.manifests());
    let run = manifests.check_json();
    if run.stderr.contains("panicked") {
        return Some(format!(
            "{}: windlass panicked\n{}",
            group.label(),
            run.describe()
        ));
    }
    let reports: Value = match serde_json::from_str(&run.stdout) {
        Ok(reports) => reports,
        Err(_) => {
            return Some(format!(
                "{}: no JSON report\n{}",
                group.label(),
                run.describe()
            ));
        }
    };
    let report = object(&reports, &group.name());
    match rejected(group) {
        None if run.code == Some(0) && report["valid"] == true => None,
        None => Some(format!(
            "{}: expected valid, got exit {:?}: {:#?}",
            group.label(),
            run.code,
            all_errors(report)
        )),
        Some(expected) => {
            let fields = error_fields(report);
            if run.code == Some(1) && fields.iter().any(|f| f == expected.field) {
                None
            } else {
                Some(format!(
                    "{}: KEDA rejects it ({}), so expected exit 1 with an error on {}; got exit {:?}: {:#?}",
                    group.label(),
                    expected.why,
                    expected.field,
                    run.code,
                    all_errors(report)
                ))
            }
        }
    }
}

/// Every example group of `file` whose Secrets are well-formed passes (or is rejected as KEDA
/// rejects it).
fn assert_documented_examples(file: &str) {
    let groups = groups(file);
    let failures: Vec<String> = groups
        .iter()
        .filter(|g| rejected(g).is_some() || !g.has_plain_text_secret_data())
        .filter_map(check_group)
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

macro_rules! documented_examples {
    ($($test:ident => $file:literal,)*) => {
        $(
            #[test]
            fn $test() {
                assert_documented_examples($file);
            }
        )*

        /// Every fixture file has a test above.
        #[test]
        fn every_fixture_file_is_covered() {
            let covered: BTreeSet<&str> = [$($file),*].into_iter().collect();
            let on_disk: BTreeSet<String> = std::fs::read_dir(fixtures_dir())
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".yaml") || name.ends_with(".yml"))
                .collect();
            let on_disk: BTreeSet<&str> = on_disk.iter().map(String::as_str).collect();
            assert_eq!(covered, on_disk, "add the new fixture file to documented_examples!");
        }

        const ALL_FILES: &[&str] = &[$($file),*];
    };
}

documented_examples! {
    apache_kafka => "apache-kafka.yaml",
    cpu => "cpu.yaml",
    cron => "cron.yaml",
    external_push => "external-push.yaml",
    external => "external.yaml",
    kafka => "kafka.yaml",
    memory => "memory.yaml",
    nats_jetstream => "nats-jetstream.yaml",
    prometheus => "prometheus.yaml",
    redis_cluster_streams => "redis-cluster-streams.yaml",
    redis_cluster => "redis-cluster.yaml",
    redis_sentinel_streams => "redis-sentinel-streams.yaml",
    redis_sentinel => "redis-sentinel.yaml",
    redis_streams => "redis-streams.yaml",
    redis => "redis.yaml",
}

#[test]
fn splitting_keeps_every_documented_scaled_object() {
    struct Case {
        file: &'static str,
        groups: usize,
    }
    let cases = [
        Case {
            file: "kafka.yaml",
            groups: 6,
        },
        Case {
            file: "prometheus.yaml",
            groups: 10,
        },
        Case {
            file: "cpu.yaml",
            groups: 3,
        },
        Case {
            file: "redis.yaml",
            groups: 1,
        },
    ];
    for case in cases {
        let groups = groups(case.file);
        assert_eq!(groups.len(), case.groups, "{}", case.file);
        let last = groups.last().unwrap();
        assert_eq!(last.scaled_object()["kind"], "ScaledObject");
    }
    // The kafka page's TLS example keeps its Secret and TriggerAuthentication.
    let kafka = groups("kafka.yaml");
    let kinds: Vec<&str> = kafka[1]
        .values
        .iter()
        .map(|v| v["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Secret", "TriggerAuthentication", "ScaledObject"]);
}

#[test]
fn the_whole_fixture_file_in_one_set_is_readable() {
    // Unsplit, duplicate names and targets make examples invalid, but every file must still be
    // read and reported (exit 0 or 1, never 2 or a panic).
    for file in ALL_FILES {
        let path = fixtures_dir().join(file);
        let run = windlass([
            "check".as_ref(),
            "-o".as_ref(),
            "json".as_ref(),
            "-f".as_ref(),
            path.as_os_str(),
        ]);
        assert!(
            matches!(run.code, Some(0 | 1)),
            "{file}: {}",
            run.describe()
        );
        assert!(
            !run.stderr.contains("panicked"),
            "{file}: {}",
            run.describe()
        );
        let reports = run.json();
        let scaled_objects = groups(file).len();
        assert_eq!(
            reports.as_array().map(Vec::len),
            Some(scaled_objects),
            "{file}: one report per ScaledObject"
        );
    }
}

/// The docs' Secrets write placeholders and plain text under `data` (`ca: <your ca>`,
/// `sasl: "plaintext"`), which is not base64.
#[test]
fn examples_with_plain_text_secret_data_pass() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for file in ALL_FILES {
        for group in groups(file) {
            if rejected(&group).is_none() && group.has_plain_text_secret_data() {
                checked += 1;
                failures.extend(check_group(&group));
            }
        }
    }
    assert!(
        checked >= 10,
        "only {checked} examples with plain-text data"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn plain_text_secret_data_is_reported_on_the_secret_key() {
    // Whatever the policy on plain-text `data`, the error must name the Secret and its key.
    let group = &groups("kafka.yaml")[1];
    assert!(group.has_plain_text_secret_data());
    let manifests = Manifests::with(&group.manifests());
    let run = manifests.check_json();
    if run.code == Some(0) {
        return; // Accepted: nothing to report.
    }
    run.assert_code(1);
    let reports = run.json();
    let errors = all_errors(object(&reports, "kafka-scaledobject"));
    assert!(
        errors
            .iter()
            .any(|e| e.contains("Secret default/keda-kafka-secrets") && e.contains("data.")),
        "{errors:#?}"
    );
}

#[test]
fn known_invalid_examples_are_invalid() {
    let dir = fixtures_dir().join("known-invalid");
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert!(!files.is_empty());
    for file in files {
        let run = windlass([
            "check".as_ref(),
            "-o".as_ref(),
            "json".as_ref(),
            "-f".as_ref(),
            file.as_os_str(),
        ]);
        assert_eq!(run.code, Some(1), "{}: {}", file.display(), run.describe());
        let reports = run.json();
        for report in reports.as_array().unwrap() {
            assert_eq!(report["valid"], false, "{}: {report:#}", file.display());
        }
    }
}

/// The kafka page's MSK example (`type: apache-kafka`, `sasl: oauthbearer`): KEDA rejects it on
/// `sasl`. Its Secret also has plain-text `data` (`awsAccessKeyID: <your awsAccessKeyID>`),
/// which Windlass reports first, hiding the documented key.
#[test]
fn known_invalid_msk_example_names_sasl() {
    let file = fixtures_dir().join("known-invalid/apache-kafka-msk-from-kafka-docs.yaml");
    let run = windlass([
        "check".as_ref(),
        "-o".as_ref(),
        "json".as_ref(),
        "-f".as_ref(),
        file.as_os_str(),
    ]);
    run.assert_code(1);
    let reports = run.json();
    let fields = error_fields(object(&reports, "kafka-scaledobject"));
    assert!(
        fields.iter().any(|f| f == "spec.triggers[0].metadata.sasl"),
        "{fields:?}"
    );
}

/// The ScaledObject-level examples of the keda.sh reference, one set per file.
#[test]
fn keda_docs_scaled_object_examples_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keda-docs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    let mut failures = Vec::new();
    for file in &files {
        let run = windlass([
            "check".as_ref(),
            "-o".as_ref(),
            "json".as_ref(),
            "-f".as_ref(),
            file.as_os_str(),
        ]);
        if run.code != Some(0) {
            failures.push(format!("{}: {}", file.display(), run.describe()));
            continue;
        }
        for report in run.json().as_array().unwrap() {
            if report["valid"] != true || !report["errors"].as_array().unwrap().is_empty() {
                failures.push(format!("{}: {report:#}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
