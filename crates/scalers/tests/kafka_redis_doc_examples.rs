//! KEDA's documented examples for the kafka and redis trigger types, built by Windlass's scalers.
//!
//! Each fixture under `tests/fixtures/` is a YAML stream of the objects one keda.sh page shows.
//! A trigger's `authenticationRef` is resolved the way KEDA does it for `secretTargetRef`: the
//! nearest preceding TriggerAuthentication of that name, and for each of its entries the value of
//! `key` in the nearest preceding Secret named `name` (taken verbatim: the docs mix base64 and
//! plain text, and a missing Secret or key resolves to "", as in KEDA). `<key>FromEnv` names
//! resolve against a container env that defines every variable the examples use.

use std::collections::BTreeMap;

use scaler_core::registry::{ScalerKind, TriggerConfig};
use scaler_core::{ParamErrors, TriggerParams};
use scalers::ScalerContext;
use serde::Deserialize;
use serde_json::Value;

/// The scale target's container env the examples assume.
fn container_env() -> BTreeMap<String, String> {
    [
        ("REDIS_HOST", "redis.default.svc:6379"),
        ("REDIS_ADDRESS", "redis.default.svc:6379"),
        ("REDIS_ADDRESSES", "node1:6379, node2:6379, node3:6379"),
        ("REDIS_HOSTS", "node1, node2, node3"),
        ("REDIS_PORT", "6379"),
        ("REDIS_PORTS", "6379, 6379, 6379"),
        ("REDIS_USERNAME", "user"),
        ("REDIS_PASSWORD", "password"),
        ("REDIS_SENTINEL_USERNAME", "sentinel-user"),
        ("REDIS_SENTINEL_PASSWORD", "sentinel-password"),
        ("REDIS_SENTINEL_MASTER", "myprimary"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Every trigger of every ScaledObject in `file`, with its resolved parameters.
fn triggers(file: &str) -> Vec<TriggerConfig> {
    let path = format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
    let yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut secrets: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut auths: BTreeMap<String, Value> = BTreeMap::new();
    let mut configs = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(&yaml) {
        let document = Value::deserialize(document).unwrap_or_else(|e| panic!("{path}: {e}"));
        let name = text(&document["metadata"]["name"]);
        match document["kind"].as_str().unwrap_or_default() {
            "Secret" => {
                let data = document["data"]
                    .as_object()
                    .map(|data| data.iter().map(|(k, v)| (k.clone(), text(v))).collect())
                    .unwrap_or_default();
                secrets.insert(name, data);
            }
            "TriggerAuthentication" | "ClusterTriggerAuthentication" => {
                auths.insert(name, document);
            }
            "ScaledObject" | "ScaledJob" => {
                let triggers = document["spec"]["triggers"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                for (index, trigger) in triggers.iter().enumerate() {
                    let metadata = trigger["metadata"]
                        .as_object()
                        .map(|m| m.iter().map(|(k, v)| (k.clone(), text(v))).collect())
                        .unwrap_or_default();
                    let mut auth_params = BTreeMap::new();
                    if let Some(auth) = trigger["authenticationRef"]["name"].as_str() {
                        let auth = auths
                            .get(auth)
                            .unwrap_or_else(|| panic!("{path}: no TriggerAuthentication {auth}"));
                        for entry in auth["spec"]["secretTargetRef"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                        {
                            let value = secrets
                                .get(&text(&entry["name"]))
                                .and_then(|secret| secret.get(&text(&entry["key"])))
                                .cloned()
                                .unwrap_or_default();
                            auth_params.insert(text(&entry["parameter"]), value);
                        }
                    }
                    configs.push(TriggerConfig {
                        index,
                        trigger_type: text(&trigger["type"]),
                        metric_type: trigger["metricType"].as_str().and_then(|t| t.parse().ok()),
                        params: TriggerParams {
                            metadata,
                            auth_params,
                            resolved_env: container_env(),
                        },
                        ..TriggerConfig::default()
                    });
                }
            }
            _ => {}
        }
    }
    configs
}

/// Builds one trigger with the scaler of its type (only the types this file covers).
fn build(config: &TriggerConfig) -> Result<(), ParamErrors> {
    let context = ScalerContext::default();
    let built = match config.trigger_type.as_str() {
        "kafka" => scalers::kafka::KafkaScaler::build(config, &context),
        "apache-kafka" => scalers::apache_kafka::ApacheKafkaScaler::build(config, &context),
        t if scalers::redis::RedisScaler::TYPES.contains(&t) => {
            scalers::redis::RedisScaler::build(config, &context)
        }
        t if scalers::redis_streams::RedisStreamsScaler::TYPES.contains(&t) => {
            scalers::redis_streams::RedisStreamsScaler::build(config, &context)
        }
        other => panic!("unexpected trigger type {other}"),
    };
    built.map(|scaler| assert_eq!(scaler.metric_specs().len(), 1))
}

#[test]
fn documented_examples_build() {
    let files = [
        ("kafka.yaml", 6),
        ("apache-kafka.yaml", 4),
        ("redis.yaml", 1),
        ("redis-cluster.yaml", 1),
        ("redis-sentinel.yaml", 1),
        ("redis-streams.yaml", 4),
        ("redis-cluster-streams.yaml", 4),
        ("redis-sentinel-streams.yaml", 4),
    ];
    for (file, expected_triggers) in files {
        let configs = triggers(file);
        assert_eq!(configs.len(), expected_triggers, "{file}");
        for config in configs {
            if let Err(errors) = build(&config) {
                panic!("{file}: {} trigger: {errors}", config.trigger_type);
            }
        }
    }
}

#[test]
fn documented_examples_resolve_the_trigger_authentication() {
    let configs = triggers("kafka.yaml");
    let sasl_in_ta = &configs[1];
    assert_eq!(
        sasl_in_ta
            .params
            .auth_params
            .get("sasl")
            .map(String::as_str),
        Some("plaintext")
    );
    let metadata = scalers::kafka::Metadata::parse(sasl_in_ta).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        metadata.sasl,
        scalers::kafka::Sasl::Plaintext { .. }
    ));
    assert!(metadata.tls.is_enabled());
}

/// The kafka page's MSK example uses `type: apache-kafka` with `sasl: oauthbearer`, which
/// KEDA's apache-kafka scaler rejects; Windlass rejects it on the same key.
#[test]
fn kafka_docs_msk_example_is_rejected_like_keda() {
    let configs = triggers("known-invalid/apache-kafka-msk-from-kafka-docs.yaml");
    assert_eq!(configs.len(), 1);
    let errors = build(&configs[0]).expect_err("KEDA rejects this example");
    assert!(errors.0.iter().any(|e| e.key == "sasl"), "{errors}");
}
