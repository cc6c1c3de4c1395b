//! `prometheus` triggers: the value of one PromQL instant query.
//!
//! # Parameters
//!
//! | Key | Source | Required | Default | Meaning |
//! |---|---|---|---|---|
//! | `serverAddress` | M | yes | – | Base URL of the Prometheus HTTP API, e.g. `http://prometheus:9090`. |
//! | `query` | M | yes | – | PromQL instant query; it must return zero or one series. |
//! | `threshold` | M | yes | – | Number (JSON rules: `"100"`, `"100.5"`, `"1e3"`); the HPA target, kept to 3 decimals. |
//! | `activationThreshold` | M | no | `0` | Number; active iff the value is greater. |
//! | `namespace` | M | no | – | Sent as `&namespace=` (Thanos querier tenancy). |
//! | `queryParameters` | M | no | – | `k=v,k2=v2`, appended to the query URL. |
//! | `customHeaders` | M | no | – | `k=v,k2=v2`, sent as request headers. |
//! | `ignoreNullValues` | M | no | `true` | Boolean (Go `ParseBool`: `true`, `false`, `1`, `0`, `t`, `F`, `TRUE`, `False`…); if true an empty result, an empty value, NaN or ±Inf count as 0, otherwise they are errors. |
//! | `unsafeSsl` | M | no | `false` | Boolean; skip TLS certificate verification. |
//! | `timeout` | M | no | global | Per-trigger HTTP timeout: a Go duration (`"30s"`, `"1m30s"`) or an integer of milliseconds (`"1000"`); negative is an error, 0 means the global default (`KEDA_HTTP_DEFAULT_TIMEOUT`). |
//! | `awsRegion` | M, A | no | – | Enables AWS SigV4 signing (Amazon Managed Service for Prometheus). |
//! | `identityOwner` | M | no | – | AWS identity selection (`operator`, `pod`). |
//! | `authModes` (alias `authMode`) | M, A | no | – | Comma list of `apiKey`, `basic`, `tls`, `bearer`, `custom`, `oauth`; at most one of `bearer`, `basic`, `oauth`. |
//! | `bearerToken` (alias `token`) | A | with `bearer` | – | Sent as `Authorization: Bearer <token>`. |
//! | `username` | A | with `basic` | – | Basic auth user. |
//! | `password` | A | no | – | Basic auth password (may be empty). |
//! | `cert`, `key` | A | with `tls` | – | PEM client certificate and key. |
//! | `ca` | A | no | – | PEM CA bundle; used even without `authModes`. |
//! | `customAuthHeader`, `customAuthValue` | A | with `custom` | – | A header name and value sent with every query. |
//! | `oauthTokenURI`, `clientID` | A | with `oauth` | – | OAuth2 client-credentials endpoint and client. |
//! | `clientSecret` | A | no | – | OAuth2 client secret. |
//! | `scopes` (alias `scope`) | A | no | – | Comma list of OAuth2 scopes (empty items dropped). |
//! | `endpointParams` | A | no | – | URL-encoded extra token request parameters (`a=1&b=2`). |
//! | `apiKey` | M, A | with `apiKey` | – | API key. |
//! | `method` | M, A | no | `header` | `header` or `query`: how the API key is sent. Checked even without `authModes`, as in KEDA. |
//! | `keyParamName` | M, A | no | – | Header or query parameter name for the API key. |
//!
//! Sources: M is the trigger's `metadata`, A the TriggerAuthentication's parameters; where both
//! are listed, the first non-empty value in that order wins. Values are trimmed and an empty
//! value counts as missing. The legacy `metadata.metricName` is ignored.
//!
//! Cloud identities (read when sampling, not here): with no `authModes`, a TriggerAuthentication
//! `podIdentity` of `azure-workload` enables Azure Managed Prometheus (resource from
//! `metadata.azureManagedPrometheusResourceURL`), `gcp` or the auth parameter
//! `GoogleApplicationCredentials` enables Google OAuth2, and `awsRegion` with AWS credentials
//! (`awsRoleArn`, `awsAccessKeyID`, `awsSecretAccessKey`, `awsSessionToken`) enables SigV4.
//! As in KEDA, `authModes` together with a pod identity other than `none`
//! ([`TriggerConfig::pod_identity`]) is an error: the two ways to authenticate exclude each
//! other.
//!
//! Metric: `s<index>-prometheus`, target `threshold`, value = the query result; active iff the
//! value is greater than `activationThreshold`. `oauth` and `apiKey` modes are accepted but, as
//! in KEDA, not applied to the queries.
//!
//! Sampling is not part of this build yet: [`Scaler::sample`] returns an `unsupported` error.
//!
//! # Example
//!
//! ```yaml
//! triggers:
//! - type: prometheus
//!   metadata:
//!     serverAddress: http://prometheus.monitoring:9090
//!     query: sum(rate(http_requests_total{deployment="my-deployment"}[2m]))
//!     threshold: "100.50"
//!     activationThreshold: "5.5"
//!     authModes: bearer
//!   authenticationRef:
//!     name: keda-prom-creds   # provides bearerToken
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use scaler_core::metric::ExternalMetric;
use scaler_core::params::{ParamError, ParamReader, order};
use scaler_core::registry::{ScalerKind, TriggerConfig};
use scaler_core::{MetricSpec, ParamErrors, Sample, SampleRequest, Scaler, ScalerError};

use crate::ScalerContext;

mod defaults {
    pub const IGNORE_NULL_VALUES: &str = "true";
    pub const ACTIVATION_THRESHOLD: &str = "0";
    pub const API_KEY_METHOD: &str = "header";
}

/// One of KEDA's `authModes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    ApiKey,
    Basic,
    Tls,
    Bearer,
    Custom,
    OAuth,
}

impl AuthMode {
    pub const ALL: &'static [&'static str] =
        &["apiKey", "basic", "tls", "bearer", "custom", "oauth"];

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "apiKey" => Self::ApiKey,
            "basic" => Self::Basic,
            "tls" => Self::Tls,
            "bearer" => Self::Bearer,
            "custom" => Self::Custom,
            "oauth" => Self::OAuth,
            _ => return None,
        })
    }
}

/// KEDA's shared HTTP authentication parameters (`pkg/scalers/authentication`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuthConfig {
    pub modes: Vec<AuthMode>,
    pub bearer_token: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub ca: Option<String>,
    pub oauth_token_uri: Option<String>,
    pub scopes: Vec<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Decoded `endpointParams`: name → values.
    pub endpoint_params: BTreeMap<String, Vec<String>>,
    pub custom_auth_header: Option<String>,
    pub custom_auth_value: Option<String>,
    pub api_key: Option<String>,
    /// `header` or `query`.
    pub api_key_method: String,
    pub key_param_name: Option<String>,
}

impl AuthConfig {
    pub fn enabled(&self, mode: AuthMode) -> bool {
        self.modes.contains(&mode)
    }

    /// Reads the parameters and checks KEDA's per-mode requirements.
    pub fn read(reader: &mut ParamReader<'_>) -> Self {
        let modes = reader
            .key("authModes", order::M_A)
            .aliases(&["authMode"])
            .one_of(AuthMode::ALL)
            .list()
            .unwrap_or_default();
        let exclusive = modes
            .iter()
            .filter(|m| matches!(m.as_str(), "bearer" | "basic" | "oauth"))
            .count();
        if exclusive > 1 {
            reader.error(
                ParamError::new(
                    "authModes",
                    format!(
                        "parameter \"authModes,authMode\" value {:?} must contain only one of [bearer basic oauth]",
                        modes.join(",")
                    ),
                )
                .with_hint("keep at most one of bearer, basic and oauth in `authModes` (tls, custom and apiKey combine with any)"),
            );
        }
        let modes: Vec<AuthMode> = modes
            .iter()
            .filter_map(|m| AuthMode::from_name(m))
            .collect();
        let mut auth = Self {
            modes,
            bearer_token: reader
                .key("bearerToken", order::A)
                .aliases(&["token"])
                .string(),
            username: reader.key("username", order::A).string(),
            password: reader.key("password", order::A).string(),
            cert: reader.key("cert", order::A).string(),
            key: reader.key("key", order::A).string(),
            ca: reader.key("ca", order::A).string(),
            oauth_token_uri: reader.key("oauthTokenURI", order::A).string(),
            scopes: reader
                .key("scopes", order::A)
                .aliases(&["scope"])
                .list()
                .unwrap_or_default()
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect(),
            client_id: reader.key("clientID", order::A).string(),
            client_secret: reader.key("clientSecret", order::A).string(),
            endpoint_params: reader
                .key("endpointParams", order::A)
                .parse_with(
                    "URL-encode the parameters, like \"audience=api&resource=x\"",
                    parse_query,
                )
                .unwrap_or_default(),
            custom_auth_header: reader.key("customAuthHeader", order::A).string(),
            custom_auth_value: reader.key("customAuthValue", order::A).string(),
            api_key: reader.key("apiKey", order::M_A).string(),
            api_key_method: reader
                .key("method", order::M_A)
                .default(defaults::API_KEY_METHOD)
                .one_of(&["header", "query"])
                .string()
                .unwrap_or_else(|| defaults::API_KEY_METHOD.to_owned()),
            key_param_name: reader.key("keyParamName", order::M_A).string(),
        };
        auth.validate(reader);
        auth.modes.dedup();
        auth
    }

    /// KEDA's `Config.Validate`: each enabled mode needs its parameters.
    fn validate(&self, reader: &mut ParamReader<'_>) {
        let state = |v: &Option<String>| if v.is_some() { "<present>" } else { "<empty>" };
        let ta = "in the TriggerAuthentication named by `authenticationRef`";
        if self.enabled(AuthMode::Bearer) && self.bearer_token.is_none() {
            reader.error(
                ParamError::new(
                    "bearerToken",
                    "bearer token=<empty> is required when bearer auth is enabled",
                )
                .with_hint(format!(
                    "add parameter `bearerToken` {ta}, or remove bearer from `authModes`"
                )),
            );
        }
        if self.enabled(AuthMode::Basic) && self.username.is_none() {
            reader.error(
                ParamError::new("username", "username=<empty> is required when basic auth is enabled")
                    .with_hint(format!("add parameter `username` (and `password`) {ta}, or remove basic from `authModes`")),
            );
        }
        if self.enabled(AuthMode::Tls) && (self.cert.is_none() || self.key.is_none()) {
            let key = if self.cert.is_none() { "cert" } else { "key" };
            reader.error(
                ParamError::new(
                    key,
                    format!(
                        "cert={} and key={} are required when tls auth is enabled",
                        state(&self.cert),
                        state(&self.key)
                    ),
                )
                .with_hint(format!(
                    "add parameters `cert` and `key` {ta}, or remove tls from `authModes`"
                )),
            );
        }
        if self.enabled(AuthMode::OAuth)
            && (self.oauth_token_uri.is_none() || self.client_id.is_none())
        {
            let key = if self.oauth_token_uri.is_none() {
                "oauthTokenURI"
            } else {
                "clientID"
            };
            reader.error(
                ParamError::new(
                    key,
                    format!(
                        "oauthTokenURI={} and clientID={} are required when oauth is enabled",
                        state(&self.oauth_token_uri),
                        state(&self.client_id)
                    ),
                )
                .with_hint(format!("add parameters `oauthTokenURI` and `clientID` {ta} (or use its `oauth2` section), or remove oauth from `authModes`")),
            );
        }
        if self.enabled(AuthMode::Custom)
            && (self.custom_auth_header.is_none() || self.custom_auth_value.is_none())
        {
            let key = if self.custom_auth_header.is_none() {
                "customAuthHeader"
            } else {
                "customAuthValue"
            };
            reader.error(
                ParamError::new(
                    key,
                    format!(
                        "customAuthHeader={} and customAuthValue={} are required when custom auth is enabled",
                        state(&self.custom_auth_header),
                        state(&self.custom_auth_value)
                    ),
                )
                .with_hint(format!("add parameters `customAuthHeader` and `customAuthValue` {ta}, or remove custom from `authModes`")),
            );
        }
        if self.enabled(AuthMode::ApiKey) && self.api_key.is_none() {
            reader.error(
                ParamError::new("apiKey", "apiKey is required when apiKey auth is enabled")
                    .with_hint(format!(
                        "add parameter `apiKey` {ta}, or remove apiKey from `authModes`"
                    )),
            );
        }
    }
}

/// Go's `url.ParseQuery`: `&`-separated `k=v`, `+` is a space, `%XX` escapes; `;` is an error.
fn parse_query(query: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        if pair.contains(';') {
            return Err("invalid semicolon separator in query".to_owned());
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        values
            .entry(unescape(key)?)
            .or_default()
            .push(unescape(value)?);
    }
    Ok(values)
}

fn unescape(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        let end = (i + 3).min(bytes.len());
                        format!(
                            "invalid URL escape {:?}",
                            String::from_utf8_lossy(&bytes[i..end])
                        )
                    })?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "invalid UTF-8 after unescaping".to_owned())
}

/// A `prometheus` trigger's parameters, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Metadata {
    pub server_address: String,
    pub query: String,
    pub query_parameters: BTreeMap<String, String>,
    pub threshold: f64,
    pub activation_threshold: f64,
    pub namespace: Option<String>,
    pub custom_headers: BTreeMap<String, String>,
    pub ignore_null_values: bool,
    pub unsafe_ssl: bool,
    pub aws_region: Option<String>,
    /// `None`, or zero, means the global HTTP timeout.
    pub timeout: Option<Duration>,
    pub identity_owner: Option<String>,
    pub auth: AuthConfig,
}

impl Metadata {
    pub fn parse(config: &TriggerConfig) -> Result<Self, ParamErrors> {
        let mut reader = ParamReader::new(&config.params);
        if let Err(error) = config.external_target_type() {
            reader.error(error);
        }
        let auth = AuthConfig::read(&mut reader);
        check_auth_with_pod_identity(config, &auth, &mut reader);
        let server_address = reader.key("serverAddress", order::M).required().string();
        let query = reader.key("query", order::M).required().string();
        let query_parameters = reader
            .key("queryParameters", order::M)
            .map()
            .unwrap_or_default();
        let threshold = reader.key("threshold", order::M).required().float();
        let activation_threshold = reader
            .key("activationThreshold", order::M)
            .default(defaults::ACTIVATION_THRESHOLD)
            .float();
        let namespace = reader.key("namespace", order::M).string();
        let custom_headers = reader
            .key("customHeaders", order::M)
            .map()
            .unwrap_or_default();
        let ignore_null_values = reader
            .key("ignoreNullValues", order::M)
            .default(defaults::IGNORE_NULL_VALUES)
            .bool();
        let unsafe_ssl = reader.key("unsafeSsl", order::M).bool().unwrap_or(false);
        let aws_region = reader.key("awsRegion", order::M_A).string();
        let timeout = reader.key("timeout", order::M).duration();
        let identity_owner = reader.key("identityOwner", order::M).string();
        match (
            server_address,
            query,
            threshold,
            activation_threshold,
            ignore_null_values,
        ) {
            (
                Some(server_address),
                Some(query),
                Some(threshold),
                Some(activation_threshold),
                Some(ignore_null_values),
            ) if !reader.has_errors() => reader.finish(Self {
                server_address,
                query,
                query_parameters,
                threshold,
                activation_threshold,
                namespace,
                custom_headers,
                ignore_null_values,
                unsafe_ssl,
                aws_region,
                timeout,
                identity_owner,
                auth,
            }),
            _ => Err(reader
                .finish(())
                .err()
                .unwrap_or_else(|| ParamErrors(Vec::new()))),
        }
    }
}

/// KEDA's `checkAuthConfigWithPodIdentity`: `authModes` and a pod identity exclude each other.
fn check_auth_with_pod_identity(
    config: &TriggerConfig,
    auth: &AuthConfig,
    reader: &mut ParamReader<'_>,
) {
    if auth.modes.is_empty() || !config.has_pod_identity() {
        return;
    }
    reader.error(
        ParamError::new(
            "authModes",
            "pod identity cannot be enabled with other auth types",
        )
        .with_hint(format!(
            "remove `authModes` to authenticate with the TriggerAuthentication's pod identity ({}), or remove its `podIdentity` (or set `provider: none`) to use `authModes`",
            config.pod_identity_provider()
        )),
    );
}

/// A built `prometheus` trigger.
#[derive(Debug)]
pub struct PrometheusScaler {
    metadata: Metadata,
    metric: ExternalMetric,
}

impl PrometheusScaler {
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

impl ScalerKind<ScalerContext> for PrometheusScaler {
    const TYPES: &'static [&'static str] = &["prometheus"];

    fn build(
        config: &TriggerConfig,
        _context: &ScalerContext,
    ) -> Result<Arc<dyn Scaler>, ParamErrors> {
        let metadata = Metadata::parse(config)?;
        let metric = config.external_metric("prometheus", metadata.threshold)?;
        Ok(Arc::new(Self { metadata, metric }))
    }
}

#[async_trait]
impl Scaler for PrometheusScaler {
    fn metric_specs(&self) -> Vec<MetricSpec> {
        vec![MetricSpec::External(self.metric.clone())]
    }

    fn activation_target(&self) -> Option<f64> {
        Some(self.metadata.activation_threshold)
    }

    async fn sample(&self, _request: SampleRequest<'_>) -> Result<Sample, ScalerError> {
        Err(ScalerError::unsupported("prometheus"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scaler_core::params::TriggerParams;
    use scaler_core::registry::PodIdentity;
    use scaler_core::{MetricName, MetricTargetType};

    type Pairs = &'static [(&'static str, &'static str)];

    fn config(metadata: Pairs, auth: Pairs, index: usize) -> TriggerConfig {
        let mut params = TriggerParams::from_metadata(metadata.iter().copied());
        params.auth_params = auth
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        TriggerConfig {
            index,
            trigger_type: "prometheus".into(),
            params,
            ..TriggerConfig::default()
        }
    }

    struct ParseCase {
        name: &'static str,
        metadata: Pairs,
        auth_params: Pairs,
        /// The TriggerAuthentication's `podIdentity.provider`; `""` for none at all.
        pod_identity: &'static str,
        /// `None` when parsing succeeds, else the key the first error names.
        error_key: Option<&'static str>,
    }

    const BASE: Pairs = &[
        ("serverAddress", "http://localhost:9090"),
        ("metricName", "http_requests_total"),
        ("threshold", "100"),
        ("query", "up"),
    ];

    macro_rules! with_base {
        ($($k:literal => $v:literal),* $(,)?) => {
            &[
                ("serverAddress", "http://localhost:9090"),
                ("metricName", "http_requests_total"),
                ("threshold", "100"),
                ("query", "up"),
                $(($k, $v),)*
            ]
        };
    }

    /// KEDA's `testPromMetadata` and `testPrometheusAuthMetadata`, plus Windlass's own cases.
    const PARSE_CASES: &[ParseCase] = &[
        ParseCase {
            name: "empty",
            metadata: &[],
            auth_params: &[],
            pod_identity: "",
            error_key: Some("serverAddress"),
        },
        ParseCase {
            name: "all properly formed",
            metadata: BASE,
            auth_params: &[],
            pod_identity: "",
            error_key: None,
        },
        ParseCase {
            name: "with namespace",
            metadata: &[
                ("serverAddress", "http://localhost:9090"),
                ("threshold", "100"),
                ("query", "up"),
                ("namespace", "foo"),
            ],
            auth_params: &[],
            pod_identity: "",
            error_key: None,
        },
        ParseCase {
            name: "ignoreNullValues false",
            metadata: with_base!("ignoreNullValues" => "false"),
            auth_params: &[],
            pod_identity: "",
            error_key: None,
        },
        ParseCase {
            name: "activationThreshold",
            metadata: with_base!("activationThreshold" => "50"),
            auth_params: &[],
            pod_identity: "",
            error_key: None,
        },
        ParseCase {
            name: "empty serverAddress",
            metadata: &[("serverAddress", ""), ("threshold", "100"), ("query", "up")],
            auth_params: &[],
            pod_identity: "",
            error_key: Some("serverAddress"),
        },
        ParseCase {
            name: "missing threshold",
            metadata: &[("serverAddress", "http://localhost:9090"), ("query", "up")],
            auth_params: &[],
            pod_identity: "",
            error_key: Some("threshold"),
        },
        ParseCase {
            name: "malformed threshold",
            metadata: &[
                ("serverAddress", "http://localhost:9090"),
                ("threshold", "one"),
                ("query", "up"),
            ],
            auth_params: &[],
            pod_identity: "",
            error_key: Some("threshold"),
        },
        ParseCase {
            name: "malformed activationThreshold",
            metadata: with_base!("activationThreshold" => "one"),
            auth_params: &[],
            pod_identity: "",
            error_key: Some("activationThreshold"),
        },
        ParseCase {
            name: "empty query",
            metadata: &[
                ("serverAddress", "http://localhost:9090"),
                ("threshold", "100"),
                ("query", ""),
            ],
            auth_params: &[],
            pod_identity: "",
            error_key: Some("query"),
        },
        ParseCase {
            name: "ignoreNullValues wrong",
            metadata: with_base!("ignoreNullValues" => "xxxx"),
            auth_params: &[],
            pod_identity: "",
            error_key: Some("ignoreNullValues"),
        },
        ParseCase {
            name: "unsafeSsl",
            metadata: with_base!("unsafeSsl" => "true"),
            auth_params: &[],
            pod_identity: "",
            error_key: None,
        },
        ParseCase {
            name: "customHeaders",
            metadata: with_base!("customHeaders" => "key1=value1,key2=value2"),
            auth_params: &[],
            pod_identity: "",
            error_key: None,
        },
        ParseCase {
            name: "customHeaders wrong format",
            metadata: with_base!("customHeaders" => "key1=value1,key2"),
            auth_params: &[],
            pod_identity: "",
            error_key: Some("customHeaders"),
        },
        ParseCase {
            name: "queryParameters",
            metadata: with_base!("queryParameters" => "key1=value1,key2=value2"),
            auth_params: &[],
            pod_identity: "",
            error_key: None,
        },
        ParseCase {
            name: "queryParameters wrong format",
            metadata: with_base!("queryParameters" => "key1=value1,key2"),
            auth_params: &[],
            pod_identity: "",
            error_key: Some("queryParameters"),
        },
        ParseCase {
            name: "timeout in ms",
            metadata: with_base!("timeout" => "1000"),
            auth_params: &[],
            pod_identity: "",
            error_key: None,
        },
        ParseCase {
            name: "negative timeout",
            metadata: with_base!("timeout" => "-1"),
            auth_params: &[],
            pod_identity: "",
            error_key: Some("timeout"),
        },
        ParseCase {
            name: "timeout not a number",
            metadata: with_base!("timeout" => "a"),
            auth_params: &[],
            pod_identity: "",
            error_key: Some("timeout"),
        },
        // testPrometheusAuthMetadata
        ParseCase {
            name: "tls",
            metadata: with_base!("authModes" => "tls"),
            auth_params: &[("ca", "caaa"), ("cert", "ceert"), ("key", "keey")],
            pod_identity: "",
            error_key: None,
        },
        ParseCase {
            name: "tls without ca",
            metadata: with_base!("authModes" => "tls"),
            auth_params: &[("cert", "ceert"), ("key", "keey")],
            pod_identity: "",
            error_key: None,
        },
        ParseCase {
            name: "tls without key",
            metadata: with_base!("authModes" => "tls"),
            auth_params: &[("ca", "caaa"), ("cert", "ceert")],
            pod_identity: "",
            error_key: Some("key"),
        },
        ParseCase {
            name: "tls without cert",
            metadata: with_base!("authModes" => "tls"),
            auth_params: &[("ca", "caaa"), ("key", "keey")],
            pod_identity: "",
            error_key: Some("cert"),
        },
        ParseCase {
            name: "bearer",
            metadata: with_base!("authModes" => "bearer"),
            auth_params: &[("bearerToken", "tooooken")],
            pod_identity: "",
            error_key: None,
        },
        ParseCase {
            name: "bearer without token",
            metadata: with_base!("authModes" => "bearer"),
            auth_params: &[],
            pod_identity: "",
            error_key: Some("bearerToken"),
        },
        ParseCase {
            name: "basic",
            metadata: with_base!("authModes" => "basic"),
            auth_params: &[("username", "user"), ("password", "pass")],
            pod_identity: "",
            error_key: None,
        },
        ParseCase {
            name: "basic without username",
            metadata: with_base!("authModes" => "basic"),
            auth_params: &[],
            pod_identity: "",
            error_key: Some("username"),
        },
        ParseCase {
            name: "tls, basic",
            metadata: with_base!("authModes" => "tls, basic"),
            auth_params: &[
                ("ca", "caaa"),
                ("cert", "ceert"),
                ("key", "keey"),
                ("username", "user"),
                ("password", "pass"),
            ],
            pod_identity: "",
            error_key: None,
        },
        ParseCase {
            name: "tls,basic without tls material",
            metadata: with_base!("authModes" => "tls,basic"),
            auth_params: &[("username", "user"), ("password", "pass")],
            pod_identity: "",
            error_key: Some("cert"),
        },
        ParseCase {
            name: "custom",
            metadata: with_base!("authModes" => "custom"),
            auth_params: &[("customAuthHeader", "header"), ("customAuthValue", "value")],
            pod_identity: "",
            error_key: None,
        },
        ParseCase {
            name: "custom without header",
            metadata: with_base!("authModes" => "custom"),
            auth_params: &[("customAuthHeader", "")],
            pod_identity: "",
            error_key: Some("customAuthHeader"),
        },
        ParseCase {
            name: "custom without value",
            metadata: with_base!("authModes" => "custom"),
            auth_params: &[("customAuthValue", "")],
            pod_identity: "",
            error_key: Some("customAuthHeader"),
        },
        ParseCase {
            name: "custom with newlines",
            metadata: with_base!("authModes" => "custom"),
            auth_params: &[
                ("customAuthHeader", "header\n"),
                ("customAuthValue", "value\n"),
            ],
            pod_identity: "",
            error_key: None,
        },
        ParseCase {
            name: "pod identity with authModes",
            metadata: with_base!("authModes" => "basic"),
            auth_params: &[("username", "user"), ("password", "pass")],
            pod_identity: "azure-workload",
            error_key: Some("authModes"),
        },
        ParseCase {
            name: "azure workload identity",
            metadata: BASE,
            auth_params: &[],
            pod_identity: "azure-workload",
            error_key: None,
        },
        ParseCase {
            name: "azure pod identity",
            metadata: BASE,
            auth_params: &[],
            pod_identity: "azure",
            error_key: None,
        },
        // Windlass's own
        ParseCase {
            name: "provider none allows authModes",
            metadata: with_base!("authModes" => "bearer"),
            auth_params: &[("bearerToken", "t")],
            pod_identity: "none",
            error_key: None,
        },
        ParseCase {
            name: "aws pod identity with authModes from authParams",
            metadata: BASE,
            auth_params: &[("authModes", "bearer"), ("bearerToken", "t")],
            pod_identity: "aws",
            error_key: Some("authModes"),
        },
        ParseCase {
            name: "bearer and basic are exclusive",
            metadata: with_base!("authModes" => "bearer,basic"),
            auth_params: &[("bearerToken", "t"), ("username", "u")],
            pod_identity: "",
            error_key: Some("authModes"),
        },
        ParseCase {
            name: "unknown auth mode",
            metadata: with_base!("authModes" => "kerberos"),
            auth_params: &[],
            pod_identity: "",
            error_key: Some("authModes"),
        },
        ParseCase {
            name: "authMode alias from authParams",
            metadata: BASE,
            auth_params: &[("authMode", "bearer"), ("token", "t")],
            pod_identity: "",
            error_key: None,
        },
        ParseCase {
            name: "oauth needs a token URI and client",
            metadata: with_base!("authModes" => "oauth"),
            auth_params: &[("clientID", "c")],
            pod_identity: "",
            error_key: Some("oauthTokenURI"),
        },
        ParseCase {
            name: "apiKey needs a key",
            metadata: with_base!("authModes" => "apiKey"),
            auth_params: &[],
            pod_identity: "",
            error_key: Some("apiKey"),
        },
        ParseCase {
            name: "method is checked even without authModes",
            metadata: with_base!("method" => "POST"),
            auth_params: &[],
            pod_identity: "",
            error_key: Some("method"),
        },
        ParseCase {
            name: "bad endpointParams escape",
            metadata: BASE,
            auth_params: &[("endpointParams", "a=%zz")],
            pod_identity: "",
            error_key: Some("endpointParams"),
        },
        ParseCase {
            name: "Go booleans",
            metadata: with_base!("ignoreNullValues" => "F", "unsafeSsl" => "True"),
            auth_params: &[],
            pod_identity: "",
            error_key: None,
        },
        ParseCase {
            name: "threshold must be a JSON number",
            metadata: &[("serverAddress", "x"), ("query", "up"), ("threshold", ".5")],
            auth_params: &[],
            pod_identity: "",
            error_key: Some("threshold"),
        },
        ParseCase {
            name: "timeout as a Go duration",
            metadata: with_base!("timeout" => "1m30s"),
            auth_params: &[],
            pod_identity: "",
            error_key: None,
        },
        ParseCase {
            name: "negative Go duration",
            metadata: with_base!("timeout" => "-5s"),
            auth_params: &[],
            pod_identity: "",
            error_key: Some("timeout"),
        },
    ];

    #[test]
    fn parse_table() {
        for case in PARSE_CASES {
            let mut cfg = config(case.metadata, case.auth_params, 0);
            if !case.pod_identity.is_empty() {
                cfg.pod_identity = Some(PodIdentity::new(case.pod_identity));
            }
            let result = Metadata::parse(&cfg);
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

    #[test]
    fn parsed_values() {
        let m = Metadata::parse(&config(
            with_base!("activationThreshold" => "5.5", "customHeaders" => "a=1, b = 2", "timeout" => "1500", "authModes" => "tls, basic"),
            &[("cert", "c"), ("key", "k"), ("username", "u")],
            0,
        ))
        .unwrap();
        assert_eq!(m.activation_threshold, 5.5);
        assert_eq!(m.custom_headers.get("b").map(String::as_str), Some("2"));
        assert_eq!(m.timeout, Some(Duration::from_millis(1500)));
        assert!(m.ignore_null_values);
        assert!(!m.unsafe_ssl);
        assert_eq!(m.auth.modes, vec![AuthMode::Tls, AuthMode::Basic]);
        assert_eq!(m.auth.api_key_method, "header");
    }

    #[test]
    fn keda_messages() {
        let errors = Metadata::parse(&config(
            with_base!("authModes" => "tls"),
            &[("cert", "c")],
            0,
        ))
        .unwrap_err();
        assert_eq!(
            errors.0[0].message,
            "cert=<present> and key=<empty> are required when tls auth is enabled"
        );
        let errors = Metadata::parse(&config(with_base!("timeout" => "-1"), &[], 0)).unwrap_err();
        assert_eq!(
            errors.0[0].message,
            "unable to set param \"timeout\" value \"-1\": duration cannot be negative: -1 milliseconds"
        );
        let mut cfg = config(
            with_base!("authModes" => "bearer"),
            &[("bearerToken", "t")],
            0,
        );
        cfg.pod_identity = Some(PodIdentity::new("gcp"));
        let errors = Metadata::parse(&cfg).unwrap_err();
        assert_eq!(errors.0.len(), 1);
        assert_eq!(errors.0[0].key, "authModes");
        assert_eq!(
            errors.0[0].message,
            "pod identity cannot be enabled with other auth types"
        );
        assert!(errors.0[0].hint.as_deref().unwrap_or("").contains("(gcp)"));
    }

    #[test]
    fn metric_names_and_targets() {
        for (index, name) in [(0, "s0-prometheus"), (1, "s1-prometheus")] {
            let scaler =
                PrometheusScaler::build(&config(BASE, &[], index), &ScalerContext::default())
                    .unwrap();
            let specs = scaler.metric_specs();
            let metric = specs[0].external().unwrap();
            assert_eq!(metric.name, MetricName::from_raw(name));
            assert_eq!(metric.target, 100.0);
        }
        let mut cfg = config(with_base!("threshold" => "0.0005"), &[], 0);
        // the later duplicate key wins in a BTreeMap built from pairs
        cfg.params
            .metadata
            .insert("threshold".into(), "100.5004".into());
        cfg.metric_type = Some(MetricTargetType::Value);
        let scaler = PrometheusScaler::build(&cfg, &ScalerContext::default()).unwrap();
        let metric = scaler.metric_specs()[0].external().unwrap().clone();
        assert_eq!(metric.target, 100.5);
        assert_eq!(metric.target_type, MetricTargetType::Value);
    }

    #[tokio::test]
    async fn sampling_is_not_supported_yet() {
        let scaler =
            PrometheusScaler::build(&config(BASE, &[], 0), &ScalerContext::default()).unwrap();
        let name = MetricName::from_raw("s0-prometheus");
        let error = scaler
            .sample(SampleRequest {
                metric: &name,
                now: chrono::Utc::now(),
            })
            .await
            .unwrap_err();
        assert_eq!(error.category, scaler_core::ErrorCategory::Unsupported);
    }

    mod fixtures {
        include!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/support.rs"
        ));
    }

    #[test]
    fn documented_examples_parse() {
        let triggers = fixtures::triggers_of("prometheus.yaml", PrometheusScaler::TYPES);
        assert_eq!(triggers.len(), 10);
        for cfg in triggers {
            PrometheusScaler::build(&cfg, &ScalerContext::default()).unwrap();
        }
    }
}
