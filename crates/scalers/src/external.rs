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
//! # Metrics and sampling
//!
//! The metric names and targets come from the external scaler's `GetMetricSpec` answer: each
//! `metricName` becomes `s<index>-<metricName>`, **not** normalised, with target
//! `targetSizeFloat` when it is positive, else `targetSize`. Without a connection nothing is known,
//! so [`Scaler::metric_specs`] returns an empty list and [`Scaler::live_metric_specs`] asks the
//! external scaler (an empty answer is KEDA's "got empty metric spec"); `windlass plan` uses it.
//!
//! A sample is KEDA's `GetMetricsAndActivity`: `GetMetrics` with the metric name stripped of its
//! `s<index>-` prefix, each returned value `metricValueFloat` when positive, else `metricValue`,
//! summed as the HPA sums an external metric's items; then `IsActive` for activity. gRPC
//! `Unavailable` is a `Connect` error, `DeadlineExceeded` a `Timeout`, any other status a `Query`
//! error.
//!
//! Channels are shared process-wide by address and TLS settings (see
//! [`crate::external_client`]); they connect on first use and reconnect by themselves, so a
//! restarted external scaler costs one failed sample.
//!
//! `external-push` samples the same way and is also a [`PushScaler`]: its activity stream
//! follows `StreamIsActive` (every `true` reaches the engine as it arrives) and, alongside,
//! `StreamMetricSpec`, whose messages replace the specs `live_metric_specs` returns (a scaler
//! answering `Unimplemented` is silently not followed). Both reconnect with KEDA's backoff: 2 s,
//! doubling to 1 min, back to 2 s after a clean end of stream (and, for `StreamMetricSpec`,
//! after a delivered message).
//!
//! Differences from KEDA: the channel dials `scalerAddress` directly (KEDA's gRPC client
//! resolves DNS and balances round-robin over the addresses); an answer with no values samples as
//! 0 (KEDA passes the empty list to the HPA, which fails that metric).
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
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use futures::StreamExt;
use scaler_core::metric::{ExternalMetric, MetricName, MetricTargetType, to_milli_precision};
use scaler_core::params::{ParamReader, order};
use scaler_core::registry::{ObjectRef, ScalerKind, TriggerConfig};
use scaler_core::{
    ActivityStream, MetricSpec, ParamErrors, PushScaler, Sample, SampleRequest, Scaler, ScalerError,
};

use crate::ScalerContext;
use crate::external_client::{Backoff, ChannelKey, proto, status_error};

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
    object: ObjectRef,
    context: ScalerContext,
    /// Specs received through `StreamMetricSpec` (external-push); they replace `GetMetricSpec`.
    pushed_specs: Arc<Mutex<Option<Vec<MetricSpec>>>>,
    /// Bumped whenever `pushed_specs` changes, for [`PushScaler::metric_spec_changes`].
    spec_version: Arc<tokio::sync::watch::Sender<u64>>,
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
        remote_spec(
            self.index,
            self.target_type,
            &proto::MetricSpec {
                metric_name: metric_name.to_owned(),
                target_size,
                target_size_float,
            },
        )
    }

    fn channel_key(&self) -> ChannelKey {
        ChannelKey {
            address: self.metadata.scaler_address.clone(),
            enable_tls: self.metadata.enable_tls,
            unsafe_ssl: self.metadata.unsafe_ssl,
            ca_cert: self.metadata.ca_cert.clone(),
            tls_client_cert: self.metadata.tls_client_cert.clone(),
            tls_client_key: self.metadata.tls_client_key.clone(),
        }
    }

    /// KEDA's `ScaledObjectRef`: the ScaledObject and the forwarded metadata.
    fn object_ref(&self) -> proto::ScaledObjectRef {
        proto::ScaledObjectRef {
            name: self.object.name.clone(),
            namespace: self.object.namespace.clone(),
            scaler_metadata: self
                .metadata
                .scaler_metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    fn call_error(&self, operation: &'static str) -> impl Fn(tonic::Status) -> ScalerError + '_ {
        move |status| status_error(operation, &self.metadata.scaler_address, &status)
    }

    /// The metric's name as the external scaler knows it: the HPA name without `s<index>-`.
    fn remote_name<'m>(&self, metric: &'m MetricName) -> Result<&'m str, ScalerError> {
        let prefix = format!("s{}-", self.index);
        metric.as_str().strip_prefix(&prefix).ok_or_else(|| {
            ScalerError::query(format!(
                "metric name {metric} does not contain the correct prefix {prefix}"
            ))
        })
    }
}

/// A remote spec as the HPA sees it (see [`ExternalScaler::remote_metric_spec`]).
fn remote_spec(
    index: usize,
    target_type: MetricTargetType,
    spec: &proto::MetricSpec,
) -> MetricSpec {
    let target = if spec.target_size_float > 0.0 {
        spec.target_size_float
    } else {
        spec.target_size as f64
    };
    MetricSpec::External(ExternalMetric {
        name: MetricName::indexed_verbatim(index, &spec.metric_name),
        target: to_milli_precision(target),
        target_type,
    })
}

/// One returned value: `metricValueFloat` if positive, else the integer `metricValue`.
fn remote_value(value: &proto::MetricValue) -> f64 {
    if value.metric_value_float > 0.0 {
        value.metric_value_float
    } else {
        value.metric_value as f64
    }
}

impl ScalerKind<ScalerContext> for ExternalScaler {
    const TYPES: &'static [&'static str] = &["external", "external-push"];

    fn build(
        config: &TriggerConfig,
        context: &ScalerContext,
    ) -> Result<Arc<dyn Scaler>, ParamErrors> {
        let metadata = Metadata::parse(config)?;
        let target_type = config.external_target_type()?;
        Ok(Arc::new(Self {
            metadata,
            index: config.index,
            push: config.trigger_type == "external-push",
            target_type,
            object: config.scaled_object.clone(),
            context: context.clone(),
            pushed_specs: Arc::default(),
            spec_version: Arc::new(tokio::sync::watch::channel(0).0),
        }))
    }
}

#[async_trait]
impl Scaler for ExternalScaler {
    /// Empty: the specs come from the external scaler's `GetMetricSpec`, which needs a
    /// connection; see [`Scaler::live_metric_specs`].
    fn metric_specs(&self) -> Vec<MetricSpec> {
        Vec::new()
    }

    fn query_key(&self, metric: &MetricName) -> Option<String> {
        // The request carries the ScaledObject and its metadata, so only the same trigger of the
        // same ScaledObject asks the same question. Hashed: resolved `FromEnv` values and TLS
        // keys may be secrets.
        let mut hasher = DefaultHasher::new();
        self.channel_key().hash(&mut hasher);
        self.object.hash(&mut hasher);
        self.metadata.scaler_metadata.hash(&mut hasher);
        Some(format!("external|{:016x}|{metric}", hasher.finish()))
    }

    /// KEDA's `GetMetricsAndActivity`: `GetMetrics` for the metric (the sum of the returned
    /// values, as the HPA adds up an external metric's items), then `IsActive`.
    async fn sample(&self, request: SampleRequest<'_>) -> Result<Sample, ScalerError> {
        let metric_name = self.remote_name(request.metric)?.to_owned();
        let mut client = self.context.grpc().client(&self.channel_key()).await?;
        let values = client
            .get_metrics(proto::GetMetricsRequest {
                scaled_object_ref: Some(self.object_ref()),
                metric_name,
            })
            .await
            .map_err(self.call_error("GetMetrics"))?
            .into_inner()
            .metric_values;
        let value = values.iter().map(remote_value).sum();
        let active = client
            .is_active(self.object_ref())
            .await
            .map_err(self.call_error("IsActive"))?
            .into_inner()
            .result;
        Ok(Sample { value, active })
    }

    /// The specs last pushed through `StreamMetricSpec`, else the answer to `GetMetricSpec`;
    /// an empty answer is KEDA's "got empty metric spec".
    async fn live_metric_specs(&self) -> Result<Vec<MetricSpec>, ScalerError> {
        let pushed = self
            .pushed_specs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let specs = match pushed {
            Some(specs) => specs,
            None => {
                let mut client = self.context.grpc().client(&self.channel_key()).await?;
                client
                    .get_metric_spec(self.object_ref())
                    .await
                    .map_err(self.call_error("GetMetricSpec"))?
                    .into_inner()
                    .metric_specs
                    .iter()
                    .map(|spec| remote_spec(self.index, self.target_type, spec))
                    .collect()
            }
        };
        if specs.is_empty() {
            return Err(ScalerError::query(format!(
                "external scaler {}: got empty metric spec",
                self.metadata.scaler_address
            )));
        }
        Ok(specs)
    }

    fn as_push(&self) -> Option<&dyn PushScaler> {
        if self.push { Some(self) } else { None }
    }
}

/// Where a push subscription stands.
struct Subscription<T> {
    context: ScalerContext,
    key: ChannelKey,
    object: proto::ScaledObjectRef,
    backoff: Backoff,
    stream: Option<tonic::Streaming<T>>,
    started: bool,
}

impl<T> Subscription<T> {
    fn new(scaler: &ExternalScaler) -> Self {
        Self {
            context: scaler.context.clone(),
            key: scaler.channel_key(),
            object: scaler.object_ref(),
            backoff: Backoff::default(),
            stream: None,
            started: false,
        }
    }

    /// Waits out the backoff before every attempt but the first, as KEDA's loop does.
    async fn pause(&mut self) {
        if self.started {
            tokio::time::sleep(self.backoff.next_delay()).await;
        }
        self.started = true;
    }

    fn error(&self, operation: &str, status: &tonic::Status) -> ScalerError {
        status_error(operation, &self.key.address, status)
    }
}

/// The next activity message of `StreamIsActive`, reconnecting as KEDA does: after an error wait
/// the backoff, after a clean end of stream reset it to 2 s.
async fn next_activity(
    mut sub: Subscription<proto::IsActiveResponse>,
) -> Option<(
    Result<bool, ScalerError>,
    Subscription<proto::IsActiveResponse>,
)> {
    loop {
        if let Some(stream) = sub.stream.as_mut() {
            match stream.message().await {
                Ok(Some(response)) => return Some((Ok(response.result), sub)),
                Ok(None) => {
                    sub.stream = None;
                    sub.backoff.reset();
                    continue;
                }
                Err(status) => {
                    sub.stream = None;
                    let error = sub.error("StreamIsActive", &status);
                    return Some((Err(error), sub));
                }
            }
        }
        sub.pause().await;
        let opened = match sub.context.grpc().client(&sub.key).await {
            Ok(mut client) => client
                .stream_is_active(sub.object.clone())
                .await
                .map_err(|status| sub.error("StreamIsActive", &status)),
            Err(error) => Err(error),
        };
        match opened {
            Ok(response) => sub.stream = Some(response.into_inner()),
            Err(error) => return Some((Err(error), sub)),
        }
    }
}

/// Follows `StreamMetricSpec`, storing each message as the trigger's specs; ends silently when
/// the external scaler does not implement it. Backoff resets after a delivered message too.
async fn follow_metric_specs(
    mut sub: Subscription<proto::GetMetricSpecResponse>,
    index: usize,
    target_type: MetricTargetType,
    cache: Arc<Mutex<Option<Vec<MetricSpec>>>>,
    version: Arc<tokio::sync::watch::Sender<u64>>,
) {
    loop {
        if let Some(stream) = sub.stream.as_mut() {
            match stream.message().await {
                Ok(Some(response)) => {
                    sub.backoff.reset();
                    let specs = response
                        .metric_specs
                        .iter()
                        .map(|spec| remote_spec(index, target_type, spec))
                        .collect();
                    let changed = {
                        let mut cached = cache.lock().unwrap_or_else(PoisonError::into_inner);
                        let changed = cached.as_ref() != Some(&specs);
                        *cached = Some(specs);
                        changed
                    };
                    if changed {
                        version.send_modify(|v| *v += 1);
                    }
                    continue;
                }
                Ok(None) => sub.backoff.reset(),
                Err(status) if status.code() == tonic::Code::Unimplemented => return,
                Err(_) => {}
            }
            sub.stream = None;
        }
        sub.pause().await;
        if let Ok(mut client) = sub.context.grpc().client(&sub.key).await {
            match client.stream_metric_spec(sub.object.clone()).await {
                Ok(response) => sub.stream = Some(response.into_inner()),
                Err(status) if status.code() == tonic::Code::Unimplemented => return,
                Err(_) => {}
            }
        }
    }
}

impl PushScaler for ExternalScaler {
    /// `StreamIsActive`, with `StreamMetricSpec` followed alongside while the stream is polled
    /// (its messages update [`Scaler::live_metric_specs`]; they are not items of this stream).
    fn activity_stream(&self) -> ActivityStream {
        let activity = futures::stream::unfold(Subscription::new(self), next_activity);
        let specs = futures::stream::once(follow_metric_specs(
            Subscription::new(self),
            self.index,
            self.target_type,
            self.pushed_specs.clone(),
            self.spec_version.clone(),
        ))
        .filter_map(|()| futures::future::ready(None));
        Box::pin(futures::stream::select(activity, specs))
    }

    fn metric_spec_changes(&self) -> Option<scaler_core::SpecChanges> {
        let changes =
            tokio_stream::wrappers::WatchStream::from_changes(self.spec_version.subscribe());
        Some(Box::pin(changes.map(|_| ())))
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
            object: ObjectRef::default(),
            context: ScalerContext::default(),
            pushed_specs: Arc::default(),
            spec_version: Arc::new(tokio::sync::watch::channel(0).0),
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
    async fn an_unreachable_scaler_is_a_connect_error_and_names_are_checked() {
        let scaler = ExternalScaler::build(
            &config("external-push", &[("scalerAddress", "127.0.0.1:1")], &[]),
            &ScalerContext::default(),
        )
        .unwrap();
        assert!(scaler.as_push().is_some());
        let sample = |name: &'static str| {
            let scaler = scaler.clone();
            async move {
                let name = MetricName::from_raw(name);
                scaler
                    .sample(SampleRequest {
                        metric: &name,
                        now: chrono::Utc::now(),
                    })
                    .await
                    .unwrap_err()
            }
        };
        let error = sample("s0-metric-a").await;
        assert_eq!(
            error.category,
            scaler_core::ErrorCategory::Connect,
            "{error}"
        );
        let error = sample("s1-metric-a").await;
        assert!(error.message.contains("correct prefix s0-"), "{error}");
        let error = scaler.live_metric_specs().await.unwrap_err();
        assert_eq!(
            error.category,
            scaler_core::ErrorCategory::Connect,
            "{error}"
        );
    }

    #[test]
    fn values_prefer_the_positive_float() {
        let value = |metric_value, metric_value_float| {
            remote_value(&proto::MetricValue {
                metric_name: "m".into(),
                metric_value,
                metric_value_float,
            })
        };
        assert_eq!(value(5, 0.0), 5.0);
        assert_eq!(value(5, 2.5), 2.5);
        assert_eq!(value(5, -1.0), 5.0);
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
