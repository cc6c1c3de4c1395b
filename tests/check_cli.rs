//! `windlass check` end to end: the real binary on manifests in temporary directories.
//!
//! Exit codes (0 valid, 1 invalid, 2 unreadable input), the `-o json` report's shape, errors
//! that name the field and the fix, input forms (files, directories, stdin), and the
//! resolution of `<key>FromEnv` and `authenticationRef` from the objects of the manifest set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use windlass_tests::{Manifests, all_errors, error_fields, object, windlass, windlass_with_stdin};

/// A valid set: a Deployment and a ScaledObject with a cron and a redis trigger.
const VALID: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: worker, namespace: jobs}
spec:
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec:
      containers:
        - name: app
          image: example.invalid/worker:1
          env:
            - {name: REDIS_ADDRESS, value: "redis.jobs:6379"}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: worker, namespace: jobs}
spec:
  scaleTargetRef: {name: worker}
  minReplicaCount: 0
  maxReplicaCount: 10
  triggers:
    - type: cron
      name: office-hours
      metadata:
        timezone: Europe/Berlin
        start: 0 8 * * 1-5
        end: 0 18 * * 1-5
        desiredReplicas: "4"
    - type: redis
      metadata:
        addressFromEnv: REDIS_ADDRESS
        listName: orders
        listLength: "50"
        activationListLength: "3"
"#;

/// A ScaledObject in `default` named `so` targeting Deployment `app` with `triggers`
/// (indented as list items under `triggers:`) and extra `spec` lines.
fn scaled_object(spec: &str, triggers: &str) -> String {
    format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: so}}\nspec:\n  scaleTargetRef: {{name: app}}\n{spec}  triggers:\n{triggers}"
    )
}

const REDIS_TRIGGER: &str =
    "    - type: redis\n      metadata: {address: 'redis:6379', listName: jobs, listLength: '5'}\n";

#[test]
fn a_valid_set_exits_0_with_the_documented_json_shape() {
    let manifests = Manifests::with(VALID);
    let run = manifests.check_json();
    run.assert_code(0);
    let reports = run.json();
    let reports = reports.as_array().expect("a JSON array");
    assert_eq!(reports.len(), 1, "{reports:#?}");
    let report = &reports[0];
    for key in ["kind", "namespace", "name", "valid", "errors", "triggers"] {
        assert!(report.get(key).is_some(), "missing {key:?} in {report:#}");
    }
    assert_eq!(report["kind"], "ScaledObject");
    assert_eq!(report["namespace"], "jobs");
    assert_eq!(report["name"], "worker");
    assert_eq!(report["valid"], true);
    assert_eq!(report["errors"], Value::Array(vec![]));

    struct Expected {
        index: u64,
        trigger_type: &'static str,
        name: Value,
        metric_name: &'static str,
        metric_type: &'static str,
        target: f64,
        /// `None` for cron, which has no activation threshold.
        activation_target: Option<f64>,
    }
    let expected = [
        Expected {
            index: 0,
            trigger_type: "cron",
            name: Value::from("office-hours"),
            metric_name: "s0-cron-Europe-Berlin-08xx1-5-018xx1-5",
            metric_type: "AverageValue",
            target: 1.0,
            activation_target: None,
        },
        Expected {
            index: 1,
            trigger_type: "redis",
            name: Value::Null,
            metric_name: "s1-redis-orders",
            metric_type: "AverageValue",
            target: 50.0,
            activation_target: Some(3.0),
        },
    ];
    let triggers = report["triggers"].as_array().expect("triggers array");
    assert_eq!(triggers.len(), expected.len());
    for (trigger, expected) in triggers.iter().zip(&expected) {
        for key in [
            "index",
            "type",
            "name",
            "metricName",
            "metricType",
            "target",
            "activationTarget",
            "errors",
        ] {
            assert!(trigger.get(key).is_some(), "missing {key:?} in {trigger:#}");
        }
        assert_eq!(trigger["index"], expected.index, "{trigger:#}");
        assert_eq!(trigger["type"], expected.trigger_type, "{trigger:#}");
        assert_eq!(trigger["name"], expected.name, "{trigger:#}");
        assert_eq!(trigger["metricName"], expected.metric_name, "{trigger:#}");
        assert_eq!(trigger["metricType"], expected.metric_type, "{trigger:#}");
        assert_eq!(trigger["target"].as_f64(), Some(expected.target));
        assert_eq!(
            trigger["activationTarget"].as_f64(),
            expected.activation_target,
            "{trigger:#}"
        );
        assert_eq!(trigger["errors"], Value::Array(vec![]), "{trigger:#}");
    }
}

#[test]
fn the_repository_example_is_valid() {
    let example = windlass_tests::repo_path("examples/cron-business-hours.yaml");
    let run = windlass(["check".as_ref(), "-f".as_ref(), example.as_os_str()]);
    run.assert_code(0);
    assert!(
        run.stdout
            .contains("ScaledObject demo/report-worker: valid"),
        "{}",
        run.describe()
    );
}

#[test]
fn invalid_objects_exit_1_naming_the_field() {
    struct Case {
        what: &'static str,
        spec: &'static str,
        triggers: &'static str,
        /// A field every listed error must include among the errors' fields.
        field: &'static str,
        /// Text the error for that field contains.
        message: &'static str,
    }
    let cases = [
        Case {
            what: "listLength not an integer",
            spec: "",
            triggers: "    - type: redis\n      metadata: {address: 'redis:6379', listName: jobs, listLength: five}\n",
            field: "spec.triggers[0].metadata.listLength",
            message: "five",
        },
        Case {
            what: "idleReplicaCount not below minReplicaCount",
            spec: "  idleReplicaCount: 2\n  minReplicaCount: 2\n",
            triggers: REDIS_TRIGGER,
            field: "spec.idleReplicaCount",
            message: "IdleReplicaCount=2 must be less than MinReplicaCount=2",
        },
        Case {
            what: "minReplicaCount above maxReplicaCount (webhook rule)",
            spec: "  minReplicaCount: 5\n  maxReplicaCount: 3\n",
            triggers: REDIS_TRIGGER,
            field: "spec.minReplicaCount",
            message: "MinReplicaCount=5 must be less than MaxReplicaCount=3",
        },
        Case {
            what: "minReplicaCount above maxReplicaCount (the CRD's CEL rule)",
            spec: "  minReplicaCount: 5\n  maxReplicaCount: 3\n",
            triggers: REDIS_TRIGGER,
            field: "spec",
            message: "minReplicaCount must be less than or equal to maxReplicaCount",
        },
        Case {
            what: "missing listName",
            spec: "",
            triggers: "    - type: redis\n      metadata: {address: 'redis:6379'}\n",
            field: "spec.triggers[0].metadata.listName",
            message: "",
        },
        Case {
            what: "pollingInterval below the schema minimum",
            spec: "  pollingInterval: 0\n",
            triggers: REDIS_TRIGGER,
            field: "spec.pollingInterval",
            message: "less than the minimum of 1",
        },
    ];
    for case in cases {
        let manifests = Manifests::with(&scaled_object(case.spec, case.triggers));
        let run = manifests.check_json();
        run.assert_code(1);
        let reports = run.json();
        let report = object(&reports, "so");
        assert_eq!(report["valid"], false, "{}: {report:#}", case.what);
        let errors = all_errors(report);
        let hit = errors.iter().find(|e| {
            e.split_once(": ").is_some_and(|(field, message)| {
                field == case.field && message.contains(case.message)
            })
        });
        assert!(
            hit.is_some(),
            "{}: no error on {} containing {:?} in {errors:#?}",
            case.what,
            case.field,
            case.message
        );
    }
}

#[test]
fn malformed_yaml_exits_2_with_one_line_naming_the_file() {
    let manifests = Manifests::new();
    let file = manifests.write("broken.yaml", "kind: [unclosed\nmetadata: {name: x\n");
    let run = windlass(["check".as_ref(), "-f".as_ref(), file.as_os_str()]);
    run.assert_code(2);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", run.describe());
    assert!(
        lines[0].contains(&file.display().to_string()),
        "{}",
        run.describe()
    );
    assert!(lines[0].contains("not valid YAML"), "{}", run.describe());
    assert!(run.stdout.is_empty(), "{}", run.describe());
}

#[test]
fn unreadable_input_exits_2() {
    struct Case {
        what: &'static str,
        /// Files written into the temporary directory first.
        files: &'static [(&'static str, &'static str)],
        /// The `-f` argument, relative to the temporary directory.
        input: &'static str,
        stderr: &'static str,
    }
    let cases = [
        Case {
            what: "a path that does not exist",
            files: &[],
            input: "missing.yaml",
            stderr: "missing.yaml: cannot read",
        },
        Case {
            what: "a document without kind",
            files: &[("nokind.yaml", "apiVersion: v1\nmetadata: {name: a}\n")],
            input: "nokind.yaml",
            stderr: "`kind` is missing",
        },
        Case {
            what: "a document that is not a mapping",
            files: &[("list.yaml", "- a\n- b\n")],
            input: "list.yaml",
            stderr: "not a mapping",
        },
        Case {
            what: "no ScaledObject at all",
            files: &[(
                "cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
            )],
            input: "cm.yaml",
            stderr: "no ScaledObject",
        },
        Case {
            what: "an empty directory",
            files: &[("empty/notes.txt", "not a manifest")],
            input: "empty",
            stderr: "no manifests found",
        },
    ];
    for case in cases {
        let manifests = Manifests::new();
        for (name, text) in case.files {
            manifests.write(name, text);
        }
        let path = manifests.path(case.input);
        let run = windlass(["check".as_ref(), "-f".as_ref(), path.as_os_str()]);
        assert_eq!(run.code, Some(2), "{}: {}", case.what, run.describe());
        assert!(
            run.stderr.contains(case.stderr),
            "{}: {}",
            case.what,
            run.describe()
        );
        assert!(!run.stderr.contains("panicked"), "{}", run.describe());
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["check"],
        vec!["check", "-f", "x.yaml", "-o", "xml"],
        vec!["check", "--no-such-flag", "-f", "x.yaml"],
    ] {
        let run = windlass(&args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.describe());
    }
}

#[test]
fn unknown_trigger_type_lists_the_known_types() {
    let manifests = Manifests::with(&scaled_object(
        "",
        "    - type: rabbitmq-typo\n      metadata: {queueName: q}\n",
    ));
    let run = manifests.check_json();
    run.assert_code(1);
    let reports = run.json();
    let errors = all_errors(object(&reports, "so"));
    let error = errors
        .iter()
        .find(|e| e.starts_with("spec.triggers[0].type: "))
        .unwrap_or_else(|| panic!("no type error in {errors:#?}"));
    assert!(
        error.contains("no scaler found for type: rabbitmq-typo"),
        "{error}"
    );
    for known in [
        "cron",
        "prometheus",
        "kafka",
        "apache-kafka",
        "redis",
        "redis-streams",
        "nats-jetstream",
        "external",
        "external-push",
        "cpu",
        "memory",
    ] {
        assert!(
            error.split([',', ' ', ')']).any(|word| word == known),
            "{known} is not listed in {error}"
        );
    }
}

#[test]
fn metadata_written_as_a_yaml_number_says_to_quote_it() {
    let manifests = Manifests::with(&scaled_object(
        "",
        "    - type: redis\n      metadata: {address: 'redis:6379', listName: jobs, listLength: 5}\n",
    ));
    let run = manifests.check_json();
    run.assert_code(1);
    let reports = run.json();
    let errors = all_errors(object(&reports, "so"));
    assert!(
        errors.iter().any(|e| e
            .starts_with("spec.triggers[0].metadata.listLength: ")
            && e.contains("quote")),
        "{errors:#?}"
    );
}

/// Deployment `app` in `default` whose container `app` has `env` from the trigger's point of
/// view, and the objects `extra` (YAML documents).
fn with_target(container: &str, extra: &str, so: &str) -> String {
    format!(
        "{}---\n{so}---\n{extra}",
        windlass_tests::yaml::deployment("default", "app", container)
    )
}

const KAFKA_FROM_ENV: &str = "    - type: kafka\n      metadata: {bootstrapServers: 'kafka:9092', consumerGroup: g, topicFromEnv: TOPIC}\n";
const KAFKA_WITH_AUTH: &str = "    - type: kafka\n      metadata: {bootstrapServers: 'kafka:9092', consumerGroup: g, topic: t}\n      authenticationRef: {name: kafka-auth}\n";
const KAFKA_WITH_CLUSTER_AUTH: &str = "    - type: kafka\n      metadata: {bootstrapServers: 'kafka:9092', consumerGroup: g, topic: t}\n      authenticationRef: {name: kafka-auth, kind: ClusterTriggerAuthentication}\n";
const REDIS_PASSWORD_FROM_ENV: &str = "    - type: redis\n      metadata: {address: 'redis:6379', listName: jobs, passwordFromEnv: REDIS_PASSWORD}\n";

/// A TriggerAuthentication (or Cluster…) `kafka-auth` reading sasl/username/password from the
/// Secret `kafka-secret`.
fn kafka_auth(kind: &str) -> String {
    let namespace = if kind == "TriggerAuthentication" {
        "\n  namespace: default"
    } else {
        ""
    };
    format!(
        "apiVersion: keda.sh/v1alpha1\nkind: {kind}\nmetadata:\n  name: kafka-auth{namespace}\nspec:\n  secretTargetRef:\n    - {{parameter: sasl, name: kafka-secret, key: sasl}}\n    - {{parameter: username, name: kafka-secret, key: user}}\n    - {{parameter: password, name: kafka-secret, key: pass}}\n"
    )
}

fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn missing_referenced_objects_are_errors_that_say_what_to_add() {
    struct Case {
        what: &'static str,
        manifests: String,
        field: &'static str,
        /// Every piece must appear in the error.
        mentions: &'static [&'static str],
    }
    let secret_data = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: kafka-secret}}\ndata: {{sasl: {}, user: {}}}\n",
        b64("plaintext"),
        b64("alice")
    );
    let cases = [
        Case {
            what: "passwordFromEnv without the scale target",
            manifests: scaled_object("", REDIS_PASSWORD_FROM_ENV),
            field: "spec.scaleTargetRef",
            mentions: &[
                "scale target",
                "Deployment default/app",
                "not in the manifests",
                "add",
            ],
        },
        Case {
            what: "authenticationRef to a TriggerAuthentication the set lacks",
            manifests: scaled_object("", KAFKA_WITH_AUTH),
            field: "spec.triggers[0].authenticationRef",
            mentions: &[
                "TriggerAuthentication default/kafka-auth",
                "not in the manifests",
                "add",
            ],
        },
        Case {
            what: "authenticationRef to a ClusterTriggerAuthentication the set lacks",
            manifests: scaled_object("", KAFKA_WITH_CLUSTER_AUTH),
            field: "spec.triggers[0].authenticationRef",
            mentions: &[
                "ClusterTriggerAuthentication kafka-auth",
                "not in the manifests",
                "add",
            ],
        },
        Case {
            what: "TriggerAuthentication whose Secret the set lacks",
            manifests: format!(
                "{}---\n{}",
                scaled_object("", KAFKA_WITH_AUTH),
                kafka_auth("TriggerAuthentication")
            ),
            field: "spec.triggers[0].authenticationRef",
            mentions: &["Secret default/kafka-secret", "not in the manifests", "add"],
        },
        Case {
            what: "ClusterTriggerAuthentication whose Secret is in the wrong namespace",
            manifests: format!(
                "{}---\n{}---\n{}",
                scaled_object("", KAFKA_WITH_CLUSTER_AUTH),
                kafka_auth("ClusterTriggerAuthentication"),
                secret_data
            ),
            field: "spec.triggers[0].authenticationRef",
            mentions: &["Secret keda/kafka-secret", "not in the manifests"],
        },
        Case {
            what: "a Secret key the TriggerAuthentication reads is missing",
            manifests: format!(
                "{}---\n{}---\n{}",
                scaled_object("", KAFKA_WITH_AUTH),
                kafka_auth("TriggerAuthentication"),
                secret_data
            ),
            field: "spec.triggers[0].authenticationRef",
            mentions: &["Secret default/kafka-secret", "\"pass\""],
        },
        Case {
            what: "env valueFrom a Secret the set lacks",
            manifests: with_target(
                "env:\n- name: REDIS_PASSWORD\n  valueFrom: {secretKeyRef: {name: redis-secret, key: password}}",
                "",
                &scaled_object("", REDIS_PASSWORD_FROM_ENV),
            ),
            field: "spec.triggers[0].metadata",
            mentions: &["Secret", "redis-secret"],
        },
        Case {
            what: "envFrom a ConfigMap the set lacks",
            manifests: with_target(
                "envFrom:\n- configMapRef: {name: kafka-config}",
                "",
                &scaled_object("", KAFKA_FROM_ENV),
            ),
            field: "spec.triggers[0].metadata",
            mentions: &["ConfigMap", "kafka-config"],
        },
        Case {
            what: "envSourceContainerName naming no container",
            manifests: with_target(
                "env:\n- {name: TOPIC, value: t}",
                "",
                &scaled_object("", KAFKA_FROM_ENV).replace(
                    "scaleTargetRef: {name: app}",
                    "scaleTargetRef: {name: app, envSourceContainerName: sidecar}",
                ),
            ),
            field: "spec.triggers[0].metadata",
            mentions: &["sidecar", "it has: app"],
        },
    ];
    for case in cases {
        let manifests = Manifests::with(&case.manifests);
        let run = manifests.check_json();
        assert_eq!(run.code, Some(1), "{}: {}", case.what, run.describe());
        let reports = run.json();
        let errors = all_errors(object(&reports, "so"));
        let error = errors
            .iter()
            .find(|e| e.starts_with(&format!("{}: ", case.field)))
            .unwrap_or_else(|| panic!("{}: no error on {} in {errors:#?}", case.what, case.field));
        for mention in case.mentions {
            assert!(
                error.contains(mention),
                "{}: {mention:?} not in {error}",
                case.what
            );
        }
    }
}

#[test]
fn referenced_objects_in_the_set_resolve() {
    struct Case {
        what: &'static str,
        manifests: String,
        /// The metric name of trigger 0, which shows what `topicFromEnv` resolved to.
        metric_name: Option<&'static str>,
    }
    let kafka_secret = |data: &str| {
        format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: kafka-secret{data}\n")
    };
    let cases = [
        Case {
            what: "TriggerAuthentication reading a Secret's base64 data",
            manifests: format!(
                "{}---\n{}---\n{}",
                scaled_object("", KAFKA_WITH_AUTH),
                kafka_auth("TriggerAuthentication"),
                kafka_secret(&format!(
                    "}}\ndata: {{sasl: {}, user: {}, pass: {}}}",
                    b64("plaintext"),
                    b64("alice"),
                    b64("s3cret")
                ))
            ),
            metric_name: Some("s0-kafka-t"),
        },
        Case {
            what: "TriggerAuthentication reading a Secret's stringData",
            manifests: format!(
                "{}---\n{}---\n{}",
                scaled_object("", KAFKA_WITH_AUTH),
                kafka_auth("TriggerAuthentication"),
                kafka_secret("}\nstringData: {sasl: plaintext, user: alice, pass: s3cret}")
            ),
            metric_name: Some("s0-kafka-t"),
        },
        Case {
            what: "ClusterTriggerAuthentication reading a Secret in namespace keda",
            manifests: format!(
                "{}---\n{}---\n{}",
                scaled_object("", KAFKA_WITH_CLUSTER_AUTH),
                kafka_auth("ClusterTriggerAuthentication"),
                kafka_secret(
                    ", namespace: keda}\nstringData: {sasl: plaintext, user: alice, pass: s3cret}"
                )
            ),
            metric_name: Some("s0-kafka-t"),
        },
        Case {
            what: "TriggerAuthentication reading a ConfigMap and a Secret",
            manifests: format!(
                "{}---\n{}---\n{}---\n{}",
                scaled_object("", KAFKA_WITH_AUTH),
                "apiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata: {name: kafka-auth}\nspec:\n  configMapTargetRef:\n    - {parameter: sasl, name: kafka-config, key: mode}\n  secretTargetRef:\n    - {parameter: username, name: kafka-secret, key: user}\n    - {parameter: password, name: kafka-secret, key: pass}\n",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kafka-config}\ndata: {mode: plaintext}\n",
                kafka_secret("}\nstringData: {user: alice, pass: s3cret}")
            ),
            metric_name: Some("s0-kafka-t"),
        },
        Case {
            what: "topicFromEnv from a literal env value",
            manifests: with_target(
                "env:\n- {name: TOPIC, value: orders}",
                "",
                &scaled_object("", KAFKA_FROM_ENV),
            ),
            metric_name: Some("s0-kafka-orders"),
        },
        Case {
            what: "topicFromEnv with $(VAR) expansion",
            manifests: with_target(
                "env:\n- {name: REGION, value: eu}\n- {name: TOPIC, value: 'orders-$(REGION)'}",
                "",
                &scaled_object("", KAFKA_FROM_ENV),
            ),
            metric_name: Some("s0-kafka-orders-eu"),
        },
        Case {
            what: "topicFromEnv from envFrom a ConfigMap with a prefix",
            manifests: with_target(
                "envFrom:\n- configMapRef: {name: kafka-config}\n  prefix: KAFKA_\nenv:\n- {name: TOPIC, value: '$(KAFKA_topic)'}",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kafka-config}\ndata: {topic: payments}\n",
                &scaled_object("", KAFKA_FROM_ENV),
            ),
            metric_name: Some("s0-kafka-payments"),
        },
        Case {
            what: "topicFromEnv from envFrom a Secret (data) with a prefix",
            manifests: with_target(
                "envFrom:\n- secretRef: {name: kafka-env}\n  prefix: K_",
                &format!(
                    "apiVersion: v1\nkind: Secret\nmetadata: {{name: kafka-env}}\ndata: {{TOPIC: {}}}\n",
                    b64("invoices")
                ),
                &scaled_object("", KAFKA_FROM_ENV)
                    .replace("topicFromEnv: TOPIC", "topicFromEnv: K_TOPIC"),
            ),
            metric_name: Some("s0-kafka-invoices"),
        },
        Case {
            what: "topicFromEnv from valueFrom a Secret key, envSourceContainerName picks the container",
            manifests: format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: app}}\nspec:\n  template:\n    spec:\n      containers:\n        - {{name: first, image: x, env: [{{name: TOPIC, value: wrong}}]}}\n        - name: second\n          image: x\n          env:\n            - name: TOPIC\n              valueFrom: {{secretKeyRef: {{name: topics, key: main}}}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: topics}}\nstringData: {{main: shipments}}\n---\n{}",
                scaled_object("", KAFKA_FROM_ENV).replace(
                    "scaleTargetRef: {name: app}",
                    "scaleTargetRef: {name: app, envSourceContainerName: second}"
                )
            ),
            metric_name: Some("s0-kafka-shipments"),
        },
        Case {
            what: "passwordFromEnv from a Secret key",
            manifests: with_target(
                "env:\n- name: REDIS_PASSWORD\n  valueFrom: {secretKeyRef: {name: redis-secret, key: password}}",
                "apiVersion: v1\nkind: Secret\nmetadata: {name: redis-secret}\nstringData: {password: hunter2}\n",
                &scaled_object("", REDIS_PASSWORD_FROM_ENV),
            ),
            metric_name: Some("s0-redis-jobs"),
        },
    ];
    for case in cases {
        let manifests = Manifests::with(&case.manifests);
        let run = manifests.check_json();
        assert_eq!(run.code, Some(0), "{}: {}", case.what, run.describe());
        let reports = run.json();
        let report = object(&reports, "so");
        assert_eq!(report["valid"], true, "{}: {report:#}", case.what);
        if let Some(metric_name) = case.metric_name {
            assert_eq!(
                report["triggers"][0]["metricName"], metric_name,
                "{}: {report:#}",
                case.what
            );
        }
    }
}

#[test]
fn a_wrong_secret_value_is_seen_by_the_scaler() {
    // The same Secret as the valid stringData case but with an unknown SASL mode: proves the
    // value really travels from the Secret through the TriggerAuthentication to the parser.
    let manifests = Manifests::with(&format!(
        "{}---\n{}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: kafka-secret}}\nstringData: {{sasl: bogus, user: alice, pass: s3cret}}\n",
        scaled_object("", KAFKA_WITH_AUTH),
        kafka_auth("TriggerAuthentication")
    ));
    let run = manifests.check_json();
    run.assert_code(1);
    let reports = run.json();
    let fields = error_fields(object(&reports, "so"));
    assert!(
        fields.iter().any(|f| f == "spec.triggers[0].metadata.sasl"),
        "{fields:?}"
    );
}

#[test]
fn stdin_is_read_with_dash() {
    let run = windlass_with_stdin(["check", "-o", "json", "-f", "-"], VALID);
    run.assert_code(0);
    let reports = run.json();
    assert_eq!(object(&reports, "worker")["valid"], true);

    let invalid = scaled_object(
        "  minReplicaCount: 5\n  maxReplicaCount: 3\n",
        REDIS_TRIGGER,
    );
    let run = windlass_with_stdin(["check", "-f", "-"], &invalid);
    run.assert_code(1);
    assert!(run.stdout.contains("<stdin>"), "{}", run.describe());
}

#[test]
fn a_directory_is_read_recursively_and_combines_with_files() {
    let manifests = Manifests::new();
    // The target in one file, the ScaledObject in a nested one, plus a file that is not YAML.
    manifests.write(
        "deploy/app.yaml",
        &windlass_tests::yaml::deployment("default", "app", "env:\n- {name: TOPIC, value: t1}"),
    );
    manifests.write("scaling/nested/so.yml", &scaled_object("", KAFKA_FROM_ENV));
    manifests.write("README.md", "# not a manifest");
    let run = manifests.check_json();
    run.assert_code(0);
    let reports = run.json();
    assert_eq!(
        object(&reports, "so")["triggers"][0]["metricName"],
        "s0-kafka-t1"
    );

    // Only the ScaledObject's file: the target is missing, so the reference fails.
    let so_file = manifests.path("scaling/nested/so.yml");
    let run = windlass(["check".as_ref(), "-f".as_ref(), so_file.as_os_str()]);
    run.assert_code(1);

    // A file and a directory together.
    let deploy_dir = manifests.path("deploy");
    let run = windlass([
        "check".as_ref(),
        "-f".as_ref(),
        so_file.as_os_str(),
        "-f".as_ref(),
        deploy_dir.as_os_str(),
    ]);
    run.assert_code(0);
}

#[test]
fn text_output_names_object_trigger_key_and_fix() {
    let manifests = Manifests::with(&format!(
        "{}---\n{}",
        scaled_object(
            "",
            "    - type: cron\n      metadata: {timezone: Europe/Berlin, start: 0 8 * * *, end: 0 18 * * *, desiredReplicas: '2'}\n    - type: redis\n      metadata: {address: 'redis:6379', listName: jobs, listLength: five}\n"
        ),
        VALID
    ));
    let run = manifests.check_text();
    run.assert_code(1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ScaledObject default/so: INVALID")),
        "{}",
        run.describe()
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ScaledObject jobs/worker: valid")),
        "{}",
        run.describe()
    );
    assert!(
        lines.iter().any(|l| l.contains("trigger 0 (cron): ok")),
        "{}",
        run.describe()
    );
    let error = lines
        .iter()
        .find(|l| l.contains("trigger 1 (redis): error:"))
        .unwrap_or_else(|| panic!("no error line for trigger 1\n{}", run.describe()));
    assert!(
        error.contains("spec.triggers[1].metadata.listLength"),
        "{error}"
    );
    assert!(error.contains("fix:"), "{error}");
    assert!(
        lines
            .last()
            .is_some_and(|l| l.contains("2 ScaledObject(s) checked: 1 valid, 1 invalid")),
        "{}",
        run.describe()
    );
}

#[test]
fn list_kind_and_multi_document_files_are_flattened() {
    let list = format!(
        "apiVersion: v1\nkind: List\nitems:\n{}",
        scaled_object("", REDIS_TRIGGER)
            .lines()
            .enumerate()
            .map(|(i, l)| if i == 0 {
                format!("  - {l}\n")
            } else {
                format!("    {l}\n")
            })
            .collect::<String>()
    );
    let manifests = Manifests::with(&format!("{list}---\n# only a comment\n---\n"));
    let run = manifests.check_json();
    run.assert_code(0);
    let reports = run.json();
    assert_eq!(object(&reports, "so")["namespace"], "default");
}

/// `activationTarget` in `check -o json` is the trigger's documented `activation…` parameter.
fn activation_target_cases() -> Vec<(&'static str, &'static str, Option<f64>)> {
    vec![
        (
            "redis activationListLength",
            "    - type: redis\n      metadata: {address: 'redis:6379', listName: jobs, activationListLength: '7'}\n",
            Some(7.0),
        ),
        (
            "redis-streams activationLagCount",
            "    - type: redis-streams\n      metadata: {address: 'redis:6379', stream: s, consumerGroup: g, pendingEntriesCount: '10', activationLagCount: '4'}\n",
            Some(4.0),
        ),
        (
            "nats-jetstream activationLagThreshold",
            "    - type: nats-jetstream\n      metadata: {natsServerMonitoringEndpoint: 'nats:8222', account: $G, stream: s, consumer: c, activationLagThreshold: '15'}\n",
            Some(15.0),
        ),
        (
            "prometheus activationThreshold",
            "    - type: prometheus\n      metadata: {serverAddress: 'http://prometheus:9090', query: 'sum(up)', threshold: '100', activationThreshold: '5.5'}\n",
            Some(5.5),
        ),
        (
            "kafka activationLagThreshold",
            "    - type: kafka\n      metadata: {bootstrapServers: 'kafka:9092', consumerGroup: g, topic: t, activationLagThreshold: '3'}\n",
            Some(3.0),
        ),
        (
            "apache-kafka activationLagThreshold",
            "    - type: apache-kafka\n      metadata: {bootstrapServers: 'kafka:9092', consumerGroup: g, topic: t, activationLagThreshold: '3'}\n",
            Some(3.0),
        ),
        (
            "cron has no activation threshold",
            "    - type: cron\n      metadata: {timezone: Etc/UTC, start: 0 8 * * *, end: 0 18 * * *, desiredReplicas: '2'}\n",
            None,
        ),
    ]
}

fn assert_activation_targets(filter: impl Fn(&str) -> bool) {
    let mut failures = Vec::new();
    for (what, trigger, expected) in activation_target_cases() {
        if !filter(what) {
            continue;
        }
        let manifests = Manifests::with(&scaled_object("", trigger));
        let run = manifests.check_json();
        if run.code != Some(0) {
            failures.push(format!("{what}: {}", run.describe()));
            continue;
        }
        let reports = run.json();
        let actual = object(&reports, "so")["triggers"][0]["activationTarget"].as_f64();
        if actual != expected {
            failures.push(format!(
                "{what}: activationTarget {actual:?}, expected {expected:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn activation_targets_are_reported() {
    assert_activation_targets(|what| !what.contains("kafka") && !what.starts_with("prometheus"));
}

#[test]
fn activation_targets_of_kafka_and_prometheus_are_reported() {
    assert_activation_targets(|what| what.contains("kafka") || what.starts_with("prometheus"));
}

#[test]
fn later_duplicates_win_like_kubectl_apply() {
    // Two Secrets named kafka-secret: the later one (a valid SASL mode) is the one resolved.
    let manifests = Manifests::with(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: kafka-secret}}\nstringData: {{sasl: bogus, user: a, pass: b}}\n---\n{}---\n{}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: kafka-secret}}\nstringData: {{sasl: plaintext, user: alice, pass: s3cret}}\n",
        scaled_object("", KAFKA_WITH_AUTH),
        kafka_auth("TriggerAuthentication")
    ));
    let run = manifests.check_json();
    run.assert_code(0);
    assert_eq!(object(&run.json(), "so")["valid"], true);
}

#[test]
fn a_closed_stdout_does_not_panic() {
    let manifests = Manifests::with(VALID);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = std::process::Command::new(windlass_tests::windlass_bin())
        .args([
            "check".as_ref(),
            "-o".as_ref(),
            "json".as_ref(),
            "-f".as_ref(),
            manifests.dir().as_os_str(),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(output.status.code(), Some(101), "{stderr}");
}
