//! `external` and `external-push` triggers: a scaler running in another process, reached over
//! KEDA's `externalscaler.ExternalScaler` gRPC service.
//!
//! # Parameters
//!
//! | Key | Source | Required | Default | Meaning |
//! |---|---|---|---|---|
//! | `scalerAddress` | M | yes | – | gRPC target `host:port` of the external scaler. |
//! | `enableTLS` | M | no | `false` | Boolean (Go `ParseBool`: `true`, `false`, `1`, `0`, `t`, `F`…); connect with TLS, trusting the system CAs. TLS is also used whenever `caCert` or a client certificate and key are given. |
//! | `unsafeSsl` | M | no | `false` | Boolean; skip verification of the server certificate. |
//! | `caCert` | A | no | – | PEM CA certificate for the server. |
//! | `tlsClientCert` | A | no | – | PEM client certificate (used together with `tlsClientKey`). |
//! | `tlsClientKey` | A | no | – | PEM client key. |
//!
//! Sources: M is the trigger's `metadata`, A the TriggerAuthentication's parameters. Values are
//! trimmed and an empty value counts as missing. The certificate material is only used when
//! connecting, as in KEDA: a client certificate without a key is silently not sent. The docs'
//! `tlsCertFile` (external-push) is not read by KEDA and is ignored.
//!
//! Every metadata key, including `scalerAddress`, the TLS keys and any custom key, is forwarded
//! untouched to the external scaler in `ScaledObjectRef.scalerMetadata`; a `<key>FromEnv` entry
//! keeps its key but carries the resolved environment value (it is dropped when unresolved or
//! empty). TriggerAuthentication parameters are not forwarded.
//!
//! # Metrics
//!
//! The metric names and targets come from the external scaler's `GetMetricSpec` answer: each
//! `metricName` becomes `s<index>-<metricName>`, **not** normalised, with target
//! `targetSizeFloat` when it is positive, else `targetSize`. Without a connection nothing is known,
//! so [`Scaler::metric_specs`] returns an empty list; [`ExternalScaler::remote_metric_spec`]
//! converts one remote spec once it has been fetched.
//!
//! `external-push` additionally subscribes to `StreamIsActive` (and `StreamMetricSpec`) for
//! immediate activation. Sampling is not part of this build yet: [`Scaler::sample`] returns an
//! `unsupported` error.
//!
//! # Example
//!
//! ```yaml
//! triggers:
//! - type: external
//!   metadata:
//!     scalerAddress: redis-external-scaler-service:8080
//!     enableTLS: "false"
//!     listName: mylist        # any other key is passed to the external scaler
//!   authenticationRef:
//!     name: keda-trigger-auth # may provide caCert, tlsClientCert, tlsClientKey
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use scaler_core::metric::{ExternalMetric, MetricName, MetricTargetType, to_milli_precision};
use scaler_core::params::{ParamReader, order};
use scaler_core::registry::{ScalerKind, TriggerConfig};
use scaler_core::{MetricSpec, ParamErrors, Sample, SampleRequest, Scaler, ScalerError};

use crate::ScalerContext;

/// An `external` or `external-push` trigger's parameters, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub scaler_address: String,
    pub enable_tls: bool,
    pub unsafe_ssl: bool,
    pub ca_cert: Option<String>,
    pub tls_client_cert: Option<String>,
    pub tls_client_key: Option<String>,
    /// What the external scaler receives as `ScaledObjectRef.scalerMetadata`.
    pub scaler_metadata: BTreeMap<String, String>,
}

impl Metadata {
    pub fn parse(config: &TriggerConfig) -> Result<Self, ParamErrors> {
        let mut reader = ParamReader::new(&config.params);
        if let Err(error) = config.external_target_type() {
            reader.error(error);
        }
        let scaler_address = reader.key("scalerAddress", order::M).required().string();
        let enable_tls = reader.key("enableTLS", order::M).bool();
        let unsafe_ssl = reader.key("unsafeSsl", order::M).bool();
        let ca_cert = reader.key("caCert", order::A).string();
        let tls_client_cert = reader.key("tlsClientCert", order::A).string();
        let tls_client_key = reader.key("tlsClientKey", order::A).string();
        let params = reader.params();
        let scaler_metadata = params
            .metadata
            .iter()
            .filter_map(|(key, value)| {
                if key.ends_with("FromEnv") {
                    params
                        .resolved_env
                        .get(value)
                        .filter(|resolved| !resolved.is_empty())
                        .map(|resolved| (key.clone(), resolved.clone()))
                } else {
                    Some((key.clone(), value.clone()))
                }
            })
            .collect();
        match scaler_address {
            Some(scaler_address) if !reader.has_errors() => reader.finish(Self {
                scaler_address,
                enable_tls: enable_tls.unwrap_or(false),
                unsafe_ssl: unsafe_ssl.unwrap_or(false),
                ca_cert,
                tls_client_cert,
                tls_client_key,
                scaler_metadata,
            }),
            _ => Err(reader
                .finish(())
                .err()
                .unwrap_or_else(|| ParamErrors(Vec::new()))),
        }
    }

    /// Whether the connection uses TLS: `enableTLS`, a CA, or a client certificate and key.
    pub fn uses_tls(&self) -> bool {
        self.enable_tls
            || self.ca_cert.is_some()
            || (self.tls_client_cert.is_some() && self.tls_client_key.is_some())
    }
}

/// A built `external` or `external-push` trigger.
#[derive(Debug)]
pub struct ExternalScaler {
    metadata: Metadata,
    index: usize,
    push: bool,
    target_type: MetricTargetType,
}

impl ExternalScaler {
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Whether this is an `external-push` trigger.
    pub fn is_push(&self) -> bool {
        self.push
    }

    /// One metric spec of the external scaler's `GetMetricSpec` answer, as the HPA will see it:
    /// `s<index>-<metric_name>` verbatim, target `target_size_float` if positive, else
    /// `target_size`.
    pub fn remote_metric_spec(
        &self,
        metric_name: &str,
        target_size: i64,
        target_size_float: f64,
    ) -> MetricSpec {
        let target = if target_size_float > 0.0 {
            target_size_float
        } else {
            target_size as f64
        };
        MetricSpec::External(ExternalMetric {
            name: MetricName::indexed_verbatim(self.index, metric_name),
            target: to_milli_precision(target),
            target_type: self.target_type,
        })
    }
}

impl ScalerKind<ScalerContext> for ExternalScaler {
    const TYPES: &'static [&'static str] = &["external", "external-push"];

    fn build(
        config: &TriggerConfig,
        _context: &ScalerContext,
    ) -> Result<Arc<dyn Scaler>, ParamErrors> {
        let metadata = Metadata::parse(config)?;
        let target_type = config.external_target_type()?;
        Ok(Arc::new(Self {
            metadata,
            index: config.index,
            push: config.trigger_type == "external-push",
            target_type,
        }))
    }
}

#[async_trait]
impl Scaler for ExternalScaler {
    /// Empty: the specs come from the external scaler's `GetMetricSpec`, which needs a
    /// connection (see [`ExternalScaler::remote_metric_spec`]).
    fn metric_specs(&self) -> Vec<MetricSpec> {
        Vec::new()
    }

    async fn sample(&self, _request: SampleRequest<'_>) -> Result<Sample, ScalerError> {
        Err(ScalerError::unsupported(if self.push {
            "external-push"
        } else {
            "external"
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scaler_core::params::TriggerParams;

    type Pairs = &'static [(&'static str, &'static str)];

    fn config(trigger_type: &str, metadata: Pairs, auth: Pairs) -> TriggerConfig {
        let mut params = TriggerParams::from_metadata(metadata.iter().copied());
        params.auth_params = auth
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        TriggerConfig {
            trigger_type: trigger_type.into(),
            params,
            ..TriggerConfig::default()
        }
    }

    struct ParseCase {
        name: &'static str,
        metadata: Pairs,
        auth_params: Pairs,
        /// `None` when parsing succeeds, else the key the first error names.
        error_key: Option<&'static str>,
    }

    const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n";

    /// KEDA's `testExternalScalerMetadata`, plus Windlass's own cases.
    const PARSE_CASES: &[ParseCase] = &[
        ParseCase {
            name: "empty",
            metadata: &[],
            auth_params: &[],
            error_key: Some("scalerAddress"),
        },
        ParseCase {
            name: "all properly formed",
            metadata: &[
                ("scalerAddress", "myservice"),
                ("test1", "7"),
                ("test2", "SAMPLE_CREDS"),
                ("enableTLS", "true"),
                ("insecureSkipVerify", "true"),
            ],
            auth_params: &[("caCert", CA), ("tlsClientCert", CA)],
            error_key: None,
        },
        ParseCase {
            name: "missing scalerAddress",
            metadata: &[("test1", "1"), ("test2", "SAMPLE_CREDS")],
            auth_params: &[],
            error_key: Some("scalerAddress"),
        },
        ParseCase {
            name: "bad enableTLS",
            metadata: &[("scalerAddress", "a:1"), ("enableTLS", "yes")],
            auth_params: &[],
            error_key: Some("enableTLS"),
        },
        ParseCase {
            name: "bad unsafeSsl",
            metadata: &[("scalerAddress", "a:1"), ("unsafeSsl", "nope")],
            auth_params: &[],
            error_key: Some("unsafeSsl"),
        },
        ParseCase {
            name: "Go booleans",
            metadata: &[
                ("scalerAddress", "a:1"),
                ("enableTLS", "1"),
                ("unsafeSsl", "TRUE"),
            ],
            auth_params: &[],
            error_key: None,
        },
        ParseCase {
            name: "certificates in metadata are not read",
            metadata: &[("scalerAddress", "a:1"), ("caCert", "/path/to/ca.pem")],
            auth_params: &[],
            error_key: None,
        },
    ];

    #[test]
    fn parse_table() {
        for case in PARSE_CASES {
            for trigger_type in ExternalScaler::TYPES {
                let result =
                    Metadata::parse(&config(trigger_type, case.metadata, case.auth_params));
                match (case.error_key, result) {
                    (None, Ok(_)) => {}
                    (None, Err(errors)) => panic!("{}: unexpected error {errors}", case.name),
                    (Some(key), Ok(_)) => panic!("{}: expected an error on {key}", case.name),
                    (Some(key), Err(errors)) => {
                        assert_eq!(errors.0[0].key, key, "{}: {errors}", case.name);
                        assert!(errors.0.iter().all(|e| e.hint.is_some()), "{}", case.name);
                    }
                }
            }
        }
    }

    #[test]
    fn parsed_values_and_tls() {
        let m = Metadata::parse(&config(
            "external",
            &[("scalerAddress", " a:1 "), ("enableTLS", "true")],
            &[],
        ))
        .unwrap();
        assert_eq!(m.scaler_address, "a:1");
        assert!(m.enable_tls && !m.unsafe_ssl && m.uses_tls());
        let m = Metadata::parse(&config(
            "external",
            &[("scalerAddress", "a:1"), ("caCert", "ignored")],
            &[("tlsClientCert", "c")],
        ))
        .unwrap();
        assert_eq!(m.ca_cert, None);
        assert!(
            !m.uses_tls(),
            "a certificate without its key does not enable TLS"
        );
    }

    #[test]
    fn scaler_metadata_is_forwarded_with_env_resolved() {
        let mut cfg = config(
            "external",
            &[
                ("scalerAddress", "a:1"),
                ("listName", " mylist "),
                ("passwordFromEnv", "REDIS_PASSWORD"),
                ("hostFromEnv", "MISSING"),
                ("userFromEnv", "EMPTY"),
            ],
            &[("tlsClientKey", "secret")],
        );
        cfg.params.resolved_env = [
            ("REDIS_PASSWORD".to_owned(), "hunter2".to_owned()),
            ("EMPTY".to_owned(), String::new()),
        ]
        .into_iter()
        .collect();
        let m = Metadata::parse(&cfg).unwrap();
        let expected: BTreeMap<String, String> = [
            ("scalerAddress", "a:1"),
            ("listName", " mylist "),
            ("passwordFromEnv", "hunter2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(m.scaler_metadata, expected);
    }

    #[test]
    fn metric_specs_come_from_the_remote_scaler() {
        let scaler = ExternalScaler::build(
            &config("external", &[("scalerAddress", "a:1")], &[]),
            &ScalerContext::default(),
        )
        .unwrap();
        assert!(scaler.metric_specs().is_empty());

        // KEDA's TestConvertMetricSpecResponse
        let scaler = ExternalScaler {
            metadata: Metadata::parse(&config("external", &[("scalerAddress", "a:1")], &[]))
                .unwrap(),
            index: 0,
            push: true,
            target_type: MetricTargetType::AverageValue,
        };
        let a = scaler.remote_metric_spec("metric-a", 50, 0.0);
        let b = scaler.remote_metric_spec("metric-b", 0, 1.5);
        let a = a.external().unwrap();
        let b = b.external().unwrap();
        assert_eq!(a.name.as_str(), "s0-metric-a");
        assert_eq!(a.target, 50.0);
        assert_eq!(b.name.as_str(), "s0-metric-b");
        assert_eq!(b.target, 1.5);
        // names are not normalised
        let c = scaler.remote_metric_spec("queue.depth/a", 5, 0.0);
        assert_eq!(c.external().unwrap().name.as_str(), "s0-queue.depth/a");
    }

    #[test]
    fn utilization_is_rejected() {
        let mut cfg = config("external", &[("scalerAddress", "a:1")], &[]);
        cfg.metric_type = Some(MetricTargetType::Utilization);
        let errors = ExternalScaler::build(&cfg, &ScalerContext::default()).unwrap_err();
        assert_eq!(errors.0[0].key, "metricType");
    }

    #[tokio::test]
    async fn sampling_is_not_supported_yet() {
        let scaler = ExternalScaler::build(
            &config("external-push", &[("scalerAddress", "a:1")], &[]),
            &ScalerContext::default(),
        )
        .unwrap();
        let name = MetricName::from_raw("s0-metric-a");
        let error = scaler
            .sample(SampleRequest {
                metric: &name,
                now: chrono::Utc::now(),
            })
            .await
            .unwrap_err();
        assert_eq!(error.category, scaler_core::ErrorCategory::Unsupported);
        assert!(error.message.contains("external-push"));
    }

    mod fixtures {
        include!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/support.rs"
        ));
    }

    #[test]
    fn documented_examples_parse() {
        for (file, count) in [("external.yaml", 3), ("external-push.yaml", 3)] {
            let triggers = fixtures::triggers_of(file, ExternalScaler::TYPES);
            assert_eq!(triggers.len(), count, "{file}");
            for cfg in triggers {
                ExternalScaler::build(&cfg, &ScalerContext::default()).unwrap();
            }
        }
    }
}
