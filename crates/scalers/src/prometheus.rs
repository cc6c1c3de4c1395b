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
//! | `ca` | A | no | – | PEM CA bundle trusted besides the system roots; used only with some `authModes` (as in KEDA). |
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
//! Cloud identities: with no `authModes`, a TriggerAuthentication
//! `podIdentity` of `azure-workload` enables Azure Managed Prometheus (resource from
//! `metadata.azureManagedPrometheusResourceURL`), `gcp` or the auth parameter
//! `GoogleApplicationCredentials` enables Google OAuth2, and `awsRegion` with AWS credentials
//! (`awsRoleArn`, `awsAccessKeyID`, `awsSecretAccessKey`, `awsSessionToken`) enables SigV4.
//! This build does not sign requests for these clouds: such a trigger parses, and sampling it
//! is an `unsupported` error rather than an unauthenticated query.
//! As in KEDA, `authModes` together with a pod identity other than `none`
//! ([`TriggerConfig::pod_identity`]) is an error: the two ways to authenticate exclude each
//! other.
//!
//! Metric: `s<index>-prometheus`, target `threshold`, value = the query result; active iff the
//! value is greater than `activationThreshold`. `oauth` and `apiKey` modes are accepted but, as
//! in KEDA, not applied to the queries.
//!
//! # Sampling
//!
//! As KEDA's `ExecutePromQuery`: `GET <serverAddress>/api/v1/query?query=<query, Go-escaped>&time=<the
//! sample time, RFC 3339 UTC seconds>`, then `&namespace=<namespace>` as written, then each
//! query parameter escaped (in key order); `customHeaders` as request headers; then one
//! credential, the first enabled of bearer (`Authorization: Bearer <token>`), basic, custom
//! (`customAuthHeader: customAuthValue`), replacing a custom header of the same name.
//!
//! TLS: with some `authModes` and either `ca` or the `tls` mode, the client trusts `ca` besides
//! the system roots, presents `cert`/`key` when both are set, and always verifies the server
//! (KEDA does not pass `unsafeSsl` to that transport); otherwise `unsafeSsl` decides. Clients
//! are shared by TLS settings ([`crate::http::HttpClients`]). The request, the body included,
//! is bounded by `timeout` (else the global HTTP timeout; a zero global timeout is 300 ms, as
//! Go's `CreateHTTPClient` makes it).
//!
//! The answer, by KEDA's rules: a status outside 2xx is `prometheus query api returned error.
//! status: N`; `data.result` empty gives 0 with `ignoreNullValues`, else an error; more than
//! one element is an error; an element whose `value` is empty (a matrix has `values` instead)
//! gives 0 or an error like an empty result; a `value` with one item is an error; the second
//! item is parsed as a Go float, and NaN or ±Inf give 0 with `ignoreNullValues`, else an error.
//! A scalar or string result (`result` is `[time, "v"]`) fails to decode. A JSON `null` value
//! gives -1, the value KEDA starts from.
//!
//! Error categories: refused connection, TLS failure or reset → `connect`; no answer within the
//! timeout → `timeout`; 401 and 403 → `connect` (the credentials were refused), other statuses
//! and unusable answers → `query`; an unparsable URL or header → `metadata`. Where KEDA would
//! panic (a `value` item that is neither a string nor null) this is a `query` error.
//!
//! Identical queries (same server, query, namespace, parameters, headers, credentials, TLS
//! material, result rules and activation threshold) from several ScaledObjects are asked once
//! per poll ([`Scaler::query_key`]; credentials enter it hashed).
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
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use scaler_core::metric::ExternalMetric;
use scaler_core::params::{ParamError, ParamReader, order};
use scaler_core::registry::{PodIdentity, ScalerKind, TriggerConfig};
use scaler_core::{
    ErrorCategory, MetricName, MetricSpec, ParamErrors, Sample, SampleRequest, Scaler, ScalerError,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::ScalerContext;
use crate::http::TlsOptions;

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

/// Why a query gave no value; each becomes a [`ScalerError`] of one category at the
/// [`Scaler::sample`] boundary. The messages are KEDA's where KEDA has one.
#[derive(Debug, thiserror::Error)]
enum QueryError {
    #[error("parse {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("invalid request header {name:?}: {reason}")]
    Header { name: String, reason: String },
    #[error("cannot set up the HTTP client: {0}")]
    Client(ScalerError),
    #[error("Get {url:?}: {cause}")]
    Transport {
        url: String,
        cause: String,
        timed_out: bool,
    },
    #[error("prometheus query api returned error. status: {0}")]
    Status(u16),
    #[error("{0}")]
    Decode(String),
    #[error("prometheus metrics 'prometheus' target may be lost, the result is empty")]
    EmptyResult,
    #[error("prometheus query {0} returned multiple elements")]
    MultipleElements(String),
    #[error("prometheus metrics 'prometheus' target may be lost, the value list is empty")]
    EmptyValue,
    #[error("prometheus query {0} didn't return enough values")]
    NotEnoughValues(String),
    #[error("prometheus query {query} returned a value that is not a string: {value}")]
    ValueNotString { query: String, value: String },
    #[error("strconv.ParseFloat: parsing {0:?}: {1}")]
    ParseFloat(String, &'static str),
    #[error("prometheus query returns {0}")]
    NotFinite(String),
}

impl From<QueryError> for ScalerError {
    fn from(error: QueryError) -> Self {
        let message = error.to_string();
        match error {
            QueryError::Url { .. } | QueryError::Header { .. } => ScalerError::metadata(message),
            QueryError::Client(inner) => ScalerError::new(inner.category, message),
            QueryError::Transport {
                timed_out: true, ..
            } => ScalerError::timeout(message),
            QueryError::Transport { .. } => ScalerError::connect(message),
            // The server refused the credentials: the category says so, the text is KEDA's.
            QueryError::Status(401 | 403) => ScalerError::connect(message),
            _ => ScalerError::query(message),
        }
    }
}

/// A built `prometheus` trigger.
#[derive(Debug)]
pub struct PrometheusScaler {
    metadata: Metadata,
    metric: ExternalMetric,
    context: ScalerContext,
    tls: TlsOptions,
    query_key: String,
    /// The cloud authentication KEDA would apply and this build cannot.
    cloud_auth: Option<&'static str>,
}

impl PrometheusScaler {
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// KEDA's client timeout: `timeout` when positive, else the global HTTP timeout; Go's
    /// `CreateHTTPClient` turns a zero into 300 ms.
    fn http_timeout(&self) -> Duration {
        let timeout = self
            .metadata
            .timeout
            .filter(|t| !t.is_zero())
            .unwrap_or(self.context.settings().default_timeout);
        if timeout.is_zero() {
            Duration::from_millis(300)
        } else {
            timeout
        }
    }

    /// The query URL exactly as KEDA assembles it: the query escaped with Go's
    /// `url.QueryEscape`, `time` in RFC 3339 UTC seconds, `namespace` appended as written and
    /// each query parameter escaped (in key order; Go's map order is random).
    fn url(&self, now: DateTime<Utc>) -> String {
        let m = &self.metadata;
        let mut url = format!(
            "{}/api/v1/query?query={}&time={}",
            m.server_address,
            query_escape(&m.query),
            now.format("%Y-%m-%dT%H:%M:%SZ")
        );
        if let Some(namespace) = &m.namespace {
            url.push_str("&namespace=");
            url.push_str(namespace);
        }
        for (key, value) in &m.query_parameters {
            url.push('&');
            url.push_str(&query_escape(key));
            url.push('=');
            url.push_str(&query_escape(value));
        }
        url
    }

    /// `customHeaders` added first, then the one auth header KEDA sets (replacing any custom
    /// header of that name): bearer, else basic, else custom.
    fn headers(&self) -> Result<HeaderMap, QueryError> {
        let mut headers = HeaderMap::new();
        let invalid = |name: &str, reason: String| QueryError::Header {
            name: name.to_owned(),
            reason,
        };
        let parse = |name: &str, value: &str| -> Result<(HeaderName, HeaderValue), QueryError> {
            let header_name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| invalid(name, e.to_string()))?;
            let header_value =
                HeaderValue::from_str(value).map_err(|e| invalid(name, e.to_string()))?;
            Ok((header_name, header_value))
        };
        for (name, value) in &self.metadata.custom_headers {
            let (name, value) = parse(name, value)?;
            headers.append(name, value);
        }
        let auth = &self.metadata.auth;
        let credential = if auth.modes.is_empty() {
            None
        } else if auth.enabled(AuthMode::Bearer) {
            let token = auth.bearer_token.as_deref().unwrap_or_default();
            Some(("authorization", format!("Bearer {token}")))
        } else if auth.enabled(AuthMode::Basic) {
            let user = auth.username.as_deref().unwrap_or_default();
            let password = auth.password.as_deref().unwrap_or_default();
            let encoded = BASE64.encode(format!("{user}:{password}"));
            Some(("authorization", format!("Basic {encoded}")))
        } else if auth.enabled(AuthMode::Custom) {
            let name = auth.custom_auth_header.as_deref().unwrap_or_default();
            let value = auth.custom_auth_value.clone().unwrap_or_default();
            Some((name, value))
        } else {
            None
        };
        if let Some((name, value)) = credential {
            let (name, mut value) = parse(name, &value)?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        Ok(headers)
    }

    /// KEDA's `ExecutePromQuery`.
    async fn query(&self, now: DateTime<Utc>) -> Result<f64, QueryError> {
        let url = self.url(now);
        let parsed = reqwest::Url::parse(&url).map_err(|e| QueryError::Url {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let headers = self.headers()?;
        let client = self
            .context
            .http()
            .client(&self.tls)
            .await
            .map_err(QueryError::Client)?;
        let transport = |error: reqwest::Error| QueryError::Transport {
            url: url.clone(),
            cause: error_chain(&error),
            timed_out: error.is_timeout(),
        };
        let response = client
            .get(parsed)
            .headers(headers)
            .timeout(self.http_timeout())
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        if !status.is_success() {
            return Err(QueryError::Status(status.as_u16()));
        }
        let body = response.bytes().await.map_err(transport)?;
        self.value_of(&body)
    }

    /// The value in a query API answer, by KEDA's rules.
    fn value_of(&self, body: &[u8]) -> Result<f64, QueryError> {
        let m = &self.metadata;
        let result = decode_result(body)?;
        let element = match result.as_slice() {
            [] if m.ignore_null_values => return Ok(0.0),
            [] => return Err(QueryError::EmptyResult),
            [element] => element,
            _ => return Err(QueryError::MultipleElements(m.query.clone())),
        };
        let value = match element.as_slice() {
            [] if m.ignore_null_values => return Ok(0.0),
            [] => return Err(QueryError::EmptyValue),
            [_] => return Err(QueryError::NotEnoughValues(m.query.clone())),
            [_, value, ..] => value,
        };
        let number = match value {
            // KEDA leaves its initial -1 when the value is JSON null.
            Value::Null => -1.0,
            Value::String(text) => parse_go_float(text)?,
            other => {
                return Err(QueryError::ValueNotString {
                    query: m.query.clone(),
                    value: other.to_string(),
                });
            }
        };
        if number.is_finite() {
            Ok(number)
        } else if m.ignore_null_values {
            Ok(0.0)
        } else {
            Err(QueryError::NotFinite(go_float_f(number)))
        }
    }
}

/// The cloud authentication KEDA applies when no `authModes` are set: Azure Managed Prometheus
/// for the `azure-workload` identity, Google OAuth2 for `gcp` or `GoogleApplicationCredentials`,
/// AWS SigV4 for `awsRegion` with AWS credentials or identity.
fn cloud_auth(config: &TriggerConfig, metadata: &Metadata) -> Option<&'static str> {
    if !metadata.auth.modes.is_empty() {
        return None;
    }
    let provider = config.pod_identity_provider();
    let auth_param = |name: &str| {
        config
            .params
            .auth_params
            .get(name)
            .is_some_and(|v| !v.trim().is_empty())
    };
    if provider == PodIdentity::AZURE_WORKLOAD {
        Some("Azure Managed Prometheus (podIdentity azure-workload)")
    } else if provider == PodIdentity::GCP || auth_param("GoogleApplicationCredentials") {
        Some("Google OAuth2 (podIdentity gcp or GoogleApplicationCredentials)")
    } else if metadata.aws_region.is_some()
        && (provider == PodIdentity::AWS
            || provider == PodIdentity::AWS_EKS
            || auth_param("awsRoleArn")
            || auth_param("awsAccessKeyID"))
    {
        Some("AWS SigV4 (awsRegion with AWS credentials)")
    } else {
        None
    }
}

/// KEDA's TLS choice: with any `authModes` and a `ca` or the `tls` mode, a transport with that
/// CA (added to the system roots), the client certificate when both `cert` and `key` are set,
/// and certificate verification always on (`unsafeSsl` is not passed to it); otherwise the
/// shared transport with `unsafeSsl`. Without `authModes`, `ca`, `cert` and `key` are unused.
fn tls_options(metadata: &Metadata) -> TlsOptions {
    let auth = &metadata.auth;
    if !auth.modes.is_empty() && (auth.ca.is_some() || auth.enabled(AuthMode::Tls)) {
        let (client_cert_pem, client_key_pem) = match (&auth.cert, &auth.key) {
            (Some(cert), Some(key)) => (Some(cert.clone()), Some(key.clone())),
            _ => (None, None),
        };
        TlsOptions {
            insecure_skip_verify: false,
            ca_pem: auth.ca.clone(),
            client_cert_pem,
            client_key_pem,
        }
    } else {
        TlsOptions {
            insecure_skip_verify: metadata.unsafe_ssl,
            ..TlsOptions::default()
        }
    }
}

/// Everything that decides a sample: the request (URL without the time, headers, credentials),
/// the TLS material, the result rules and the activation threshold. Secrets are hashed.
fn query_key(metadata: &Metadata, tls: &TlsOptions, timeout: Duration) -> String {
    let auth = &metadata.auth;
    let mut secrets = Sha256::new();
    for secret in [
        &auth.bearer_token,
        &auth.username,
        &auth.password,
        &auth.custom_auth_header,
        &auth.custom_auth_value,
        &tls.ca_pem,
        &tls.client_cert_pem,
        &tls.client_key_pem,
    ] {
        match secret {
            Some(text) => {
                secrets.update((text.len() as u64 + 1).to_le_bytes());
                secrets.update(text.as_bytes());
            }
            None => secrets.update(0u64.to_le_bytes()),
        }
    }
    let digest: String = secrets
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!(
        "prometheus\0{}\0{}\0{:?}\0{:?}\0{:?}\0{:?}\0{}\0{}\0{}\0{:?}\0{}",
        metadata.server_address,
        metadata.query,
        metadata.namespace,
        metadata.query_parameters,
        metadata.custom_headers,
        auth.modes,
        tls.insecure_skip_verify,
        metadata.ignore_null_values,
        metadata.activation_threshold,
        timeout,
        digest
    )
}

/// Go's `url.QueryEscape`: unreserved bytes stay, a space becomes `+`, the rest `%XX`.
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Go's `strconv.ParseFloat(s, 64)` for what Prometheus sends (decimal, exponent, `NaN`,
/// `±Inf`): out-of-range finite text is an error, as in Go.
fn parse_go_float(text: &str) -> Result<f64, QueryError> {
    let unsigned = text.trim_start_matches(['+', '-']);
    let named = ["inf", "infinity", "nan"]
        .iter()
        .any(|name| unsigned.eq_ignore_ascii_case(name));
    let plain = text.len() - unsigned.len() <= 1
        && !unsigned.is_empty()
        && unsigned
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !named && !plain {
        return Err(QueryError::ParseFloat(text.to_owned(), "invalid syntax"));
    }
    match text.parse::<f64>() {
        Ok(value) if value.is_infinite() && !named => Err(QueryError::ParseFloat(
            text.to_owned(),
            "value out of range",
        )),
        Ok(value) => Ok(value),
        Err(_) => Err(QueryError::ParseFloat(text.to_owned(), "invalid syntax")),
    }
}

/// Go's `%f` for the non-finite values KEDA reports.
fn go_float_f(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value > 0.0 {
        "+Inf".to_owned()
    } else {
        "-Inf".to_owned()
    }
}

/// The `data.result[].value` arrays, decoded with the leniency and the failures of Go's
/// `encoding/json` into KEDA's `promQueryResult`: missing or null fields are empty, keys match
/// case-insensitively, a field of the wrong JSON type fails (so a scalar or string result,
/// whose `result` is `[time, "value"]`, fails), and a matrix's `values` is not `value`.
fn decode_result(body: &[u8]) -> Result<Vec<Vec<Value>>, QueryError> {
    let document: Value = serde_json::from_slice(body).map_err(|e| {
        QueryError::Decode(format!(
            "cannot decode the prometheus response as JSON: {e}"
        ))
    })?;
    let root = object(&document, "promQueryResult")?;
    if let Some(root) = root {
        string(field(root, "status"), "promQueryResult.status")?;
    }
    let Some(data) = root
        .map(|root| object_field(root, "data", "promQueryResult.data"))
        .transpose()?
        .flatten()
    else {
        return Ok(Vec::new());
    };
    string(field(data, "resultType"), "promQueryResult.data.resultType")?;
    let elements = match field(data, "result") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(elements)) => elements,
        Some(other) => return Err(mismatch(other, "promQueryResult.data.result", "[]struct")),
    };
    let mut result = Vec::with_capacity(elements.len());
    for element in elements {
        let Some(element) = object(element, "promQueryResult.data.result")? else {
            result.push(Vec::new());
            continue;
        };
        object_field(element, "metric", "promQueryResult.data.result.metric")?;
        match field(element, "value") {
            None | Some(Value::Null) => result.push(Vec::new()),
            Some(Value::Array(values)) => result.push(values.clone()),
            Some(other) => {
                return Err(mismatch(
                    other,
                    "promQueryResult.data.result.value",
                    "[]interface {}",
                ));
            }
        }
    }
    Ok(result)
}

type JsonObject = serde_json::Map<String, Value>;

/// A struct field the way Go's decoder finds it: the exact key, else a case-insensitive one.
fn field<'v>(object: &'v JsonObject, name: &str) -> Option<&'v Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

fn object<'v>(value: &'v Value, path: &str) -> Result<Option<&'v JsonObject>, QueryError> {
    match value {
        Value::Null => Ok(None),
        Value::Object(object) => Ok(Some(object)),
        other => Err(mismatch(other, path, "struct")),
    }
}

fn object_field<'v>(
    parent: &'v JsonObject,
    name: &str,
    path: &str,
) -> Result<Option<&'v JsonObject>, QueryError> {
    field(parent, name).map_or(Ok(None), |value| object(value, path))
}

fn string(value: Option<&Value>, path: &str) -> Result<(), QueryError> {
    match value {
        None | Some(Value::Null | Value::String(_)) => Ok(()),
        Some(other) => Err(mismatch(other, path, "string")),
    }
}

fn mismatch(value: &Value, path: &str, go_type: &str) -> QueryError {
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    QueryError::Decode(format!(
        "json: cannot unmarshal {kind} into Go struct field {path} of type {go_type}"
    ))
}

/// An error and its causes, `a: b: c`, the way Go prints wrapped errors.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl ScalerKind<ScalerContext> for PrometheusScaler {
    const TYPES: &'static [&'static str] = &["prometheus"];

    fn build(
        config: &TriggerConfig,
        context: &ScalerContext,
    ) -> Result<Arc<dyn Scaler>, ParamErrors> {
        Ok(Arc::new(Self::new(config, context)?))
    }
}

impl PrometheusScaler {
    /// Parses the trigger and settles what every query needs (TLS material, the query key);
    /// no I/O.
    pub fn new(config: &TriggerConfig, context: &ScalerContext) -> Result<Self, ParamErrors> {
        let metadata = Metadata::parse(config)?;
        let metric = config.external_metric("prometheus", metadata.threshold)?;
        let tls = tls_options(&metadata);
        let cloud_auth = cloud_auth(config, &metadata);
        let mut scaler = Self {
            query_key: String::new(),
            metadata,
            metric,
            context: context.clone(),
            tls,
            cloud_auth,
        };
        scaler.query_key = query_key(&scaler.metadata, &scaler.tls, scaler.http_timeout());
        Ok(scaler)
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

    fn query_key(&self, _metric: &MetricName) -> Option<String> {
        Some(self.query_key.clone())
    }

    fn sample_timeout(&self) -> Option<Duration> {
        Some(self.http_timeout())
    }

    async fn sample(&self, request: SampleRequest<'_>) -> Result<Sample, ScalerError> {
        if let Some(cloud) = self.cloud_auth {
            return Err(ScalerError::new(
                ErrorCategory::Unsupported,
                format!("prometheus with {cloud} authentication is not supported by this build"),
            ));
        }
        let value = self.query(request.now).await?;
        Ok(Sample::with_threshold(
            value,
            self.metadata.activation_threshold,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scaler_core::MetricTargetType;
    use scaler_core::params::TriggerParams;

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

    fn scaler(metadata: Pairs, auth: Pairs) -> PrometheusScaler {
        PrometheusScaler::new(&config(metadata, auth, 0), &ScalerContext::default()).unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn query_url_as_keda_builds_it() {
        let s = scaler(
            &[
                ("serverAddress", "http://prom:9090"),
                ("threshold", "1"),
                ("query", "sum(rate(x{a=\"b c\"}[2m])) * 2 / 1~"),
                ("namespace", "team-a"),
                ("queryParameters", "z=1 2,a/b=c&d"),
            ],
            &[],
        );
        assert_eq!(
            s.url(at("2026-03-04T05:06:07.891+01:00")),
            "http://prom:9090/api/v1/query?query=sum%28rate%28x%7Ba%3D%22b+c%22%7D%5B2m%5D%29%29+%2A+2+%2F+1~\
             &time=2026-03-04T04:06:07Z&namespace=team-a&a%2Fb=c%26d&z=1+2"
        );
    }

    #[test]
    fn headers_custom_then_one_credential() {
        let header = |s: &PrometheusScaler, name: &str| -> Vec<String> {
            s.headers()
                .unwrap()
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect()
        };
        let plain = scaler(
            with_base!("customHeaders" => "X-Org=1,Authorization=mine"),
            &[],
        );
        assert_eq!(header(&plain, "x-org"), ["1"]);
        assert_eq!(header(&plain, "authorization"), ["mine"]);
        // bearer replaces a custom Authorization header (Go's Header.Set)
        let bearer = scaler(
            with_base!("customHeaders" => "Authorization=mine", "authModes" => "bearer"),
            &[("bearerToken", "tok")],
        );
        assert_eq!(header(&bearer, "authorization"), ["Bearer tok"]);
        let basic = scaler(
            with_base!("authModes" => "basic"),
            &[("username", "user"), ("password", "pass")],
        );
        assert_eq!(header(&basic, "authorization"), ["Basic dXNlcjpwYXNz"]);
        let no_password = scaler(with_base!("authModes" => "basic"), &[("username", "user")]);
        assert_eq!(header(&no_password, "authorization"), ["Basic dXNlcjo="]);
        let custom = scaler(
            with_base!("authModes" => "custom"),
            &[("customAuthHeader", "X-Key"), ("customAuthValue", "v")],
        );
        assert_eq!(header(&custom, "x-key"), ["v"]);
        // KEDA's switch: basic wins over custom, which is then not sent
        let both = scaler(
            with_base!("authModes" => "basic,custom"),
            &[
                ("username", "u"),
                ("customAuthHeader", "X-Key"),
                ("customAuthValue", "v"),
            ],
        );
        assert_eq!(header(&both, "x-key"), Vec::<String>::new());
        assert_eq!(header(&both, "authorization"), ["Basic dTo="]);
        // credentials without authModes are not sent
        let unused = scaler(BASE, &[("bearerToken", "tok")]);
        assert!(unused.headers().unwrap().is_empty());
        let bad = scaler(with_base!("customHeaders" => "bad name=1"), &[]);
        let error = ScalerError::from(bad.headers().unwrap_err());
        assert_eq!(error.category, scaler_core::ErrorCategory::Metadata);
    }

    #[test]
    fn tls_material_as_keda_uses_it() {
        let tls = |metadata: Pairs, auth: Pairs| scaler(metadata, auth).tls;
        assert_eq!(tls(BASE, &[("ca", "C")]), TlsOptions::default());
        assert!(tls(with_base!("unsafeSsl" => "true"), &[("ca", "C")]).insecure_skip_verify);
        let bearer_ca = tls(
            with_base!("authModes" => "bearer", "unsafeSsl" => "true"),
            &[("bearerToken", "t"), ("ca", "C")],
        );
        assert_eq!(
            bearer_ca,
            TlsOptions {
                ca_pem: Some("C".into()),
                ..TlsOptions::default()
            }
        );
        let mutual = tls(
            with_base!("authModes" => "tls"),
            &[("cert", "c"), ("key", "k")],
        );
        assert_eq!(mutual.client_cert_pem.as_deref(), Some("c"));
        assert_eq!(mutual.client_key_pem.as_deref(), Some("k"));
        assert_eq!(mutual.ca_pem, None);
        let bearer_only = tls(
            with_base!("authModes" => "bearer", "unsafeSsl" => "true"),
            &[("bearerToken", "t")],
        );
        assert!(bearer_only.insecure_skip_verify);
    }

    #[test]
    fn timeouts() {
        assert_eq!(
            scaler(BASE, &[]).sample_timeout(),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            scaler(with_base!("timeout" => "1500"), &[]).sample_timeout(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            scaler(with_base!("timeout" => "0"), &[]).sample_timeout(),
            Some(Duration::from_secs(3))
        );
        let zero_default = ScalerContext::new(crate::Settings {
            default_timeout: Duration::ZERO,
            ..crate::Settings::default()
        });
        let s = PrometheusScaler::new(&config(BASE, &[], 0), &zero_default).unwrap();
        assert_eq!(s.sample_timeout(), Some(Duration::from_millis(300)));
    }

    #[test]
    fn query_keys() {
        let key = |metadata: Pairs, auth: Pairs| {
            let name = MetricName::from_raw("s0-prometheus");
            scaler(metadata, auth).query_key(&name).unwrap()
        };
        assert_eq!(key(BASE, &[]), key(BASE, &[]));
        let bearer = |token| {
            key(
                with_base!("authModes" => "bearer"),
                if token == "a" {
                    &[("bearerToken", "s3cr3t-a")]
                } else {
                    &[("bearerToken", "s3cr3t-b")]
                },
            )
        };
        assert_ne!(bearer("a"), bearer("b"));
        assert!(!bearer("a").contains("s3cr3t"));
        for other in [
            with_base!("namespace" => "n"),
            with_base!("queryParameters" => "a=1"),
            with_base!("customHeaders" => "a=1"),
            with_base!("ignoreNullValues" => "false"),
            with_base!("activationThreshold" => "3"),
            with_base!("unsafeSsl" => "true"),
            with_base!("timeout" => "100"),
        ] {
            assert_ne!(key(BASE, &[]), key(other, &[]), "{other:?}");
        }
    }

    fn value(metadata: Pairs, body: &str) -> Result<f64, ScalerError> {
        scaler(metadata, &[])
            .value_of(body.as_bytes())
            .map_err(ScalerError::from)
    }

    fn vector(values: &str) -> String {
        format!(r#"{{"status":"success","data":{{"resultType":"vector","result":[{values}]}}}}"#)
    }

    const STRICT: Pairs = with_base!("ignoreNullValues" => "false");

    #[test]
    fn result_rules() {
        let one = |v: &str| vector(&format!(r#"{{"metric":{{}},"value":[1.5,{v}]}}"#));
        assert_eq!(value(BASE, &one(r#""42.5""#)).unwrap(), 42.5);
        assert_eq!(value(BASE, &one(r#""-3""#)).unwrap(), -3.0);
        assert_eq!(value(BASE, &one(r#""1e3""#)).unwrap(), 1000.0);
        // null stays KEDA's initial -1
        assert_eq!(value(STRICT, &one("null")).unwrap(), -1.0);
        for special in ["NaN", "+Inf", "-Inf"] {
            let body = one(&format!("{special:?}"));
            assert_eq!(value(BASE, &body).unwrap(), 0.0, "{special}");
            let error = value(STRICT, &body).unwrap_err();
            assert_eq!(error.message, format!("prometheus query returns {special}"));
        }
        assert_eq!(
            value(BASE, &one(r#""abc""#)).unwrap_err().message,
            r#"strconv.ParseFloat: parsing "abc": invalid syntax"#
        );
        assert_eq!(
            value(BASE, &one(r#""1e400""#)).unwrap_err().message,
            r#"strconv.ParseFloat: parsing "1e400": value out of range"#
        );
        assert_eq!(
            value(BASE, &one("7")).unwrap_err().category,
            scaler_core::ErrorCategory::Query
        );
        assert_eq!(value(BASE, &vector("")).unwrap(), 0.0);
        assert_eq!(
            value(STRICT, &vector("")).unwrap_err().message,
            "prometheus metrics 'prometheus' target may be lost, the result is empty"
        );
        let two = vector(r#"{"value":[1,"1"]},{"value":[1,"2"]}"#);
        assert_eq!(
            value(BASE, &two).unwrap_err().message,
            "prometheus query up returned multiple elements"
        );
        assert_eq!(value(BASE, &vector(r#"{"value":[]}"#)).unwrap(), 0.0);
        assert_eq!(
            value(STRICT, &vector(r#"{"value":[]}"#))
                .unwrap_err()
                .message,
            "prometheus metrics 'prometheus' target may be lost, the value list is empty"
        );
        assert_eq!(
            value(BASE, &vector(r#"{"value":[1]}"#))
                .unwrap_err()
                .message,
            "prometheus query up didn't return enough values"
        );
        // a matrix has `values`, so `value` is empty
        let matrix =
            r#"{"data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"5"]]}]}}"#;
        assert_eq!(value(BASE, matrix).unwrap(), 0.0);
        assert!(value(STRICT, matrix).is_err());
        // a scalar's result is [time, "value"]: it does not decode
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"3"]}}"#;
        let error = value(BASE, scalar).unwrap_err();
        assert_eq!(error.category, scaler_core::ErrorCategory::Query);
        assert!(
            error.message.starts_with("json: cannot unmarshal number"),
            "{error}"
        );
        // Go's lenient decoding: missing data is an empty result; keys match in any case
        assert_eq!(value(BASE, r#"{"status":"error"}"#).unwrap(), 0.0);
        assert_eq!(value(BASE, "null").unwrap(), 0.0);
        assert_eq!(
            value(BASE, r#"{"DATA":{"Result":[{"VALUE":[1,"8"]}]}}"#).unwrap(),
            8.0
        );
        assert!(value(BASE, "not json").is_err());
        assert!(value(BASE, r#"{"status":1}"#).is_err());
        assert!(
            value(
                BASE,
                r#"{"data":{"result":[{"metric":"x","value":[1,"1"]}]}}"#
            )
            .is_err()
        );
    }

    #[tokio::test]
    async fn cloud_authentication_is_unsupported() {
        let name = MetricName::from_raw("s0-prometheus");
        let mut cfg = config(BASE, &[], 0);
        cfg.pod_identity = Some(PodIdentity::new("azure-workload"));
        let s = PrometheusScaler::new(&cfg, &ScalerContext::default()).unwrap();
        let request = SampleRequest {
            metric: &name,
            now: chrono::Utc::now(),
        };
        let error = s.sample(request).await.unwrap_err();
        assert_eq!(error.category, ErrorCategory::Unsupported);
        let aws = scaler(
            with_base!("awsRegion" => "eu-west-1"),
            &[("awsAccessKeyID", "a"), ("awsSecretAccessKey", "b")],
        );
        assert!(aws.cloud_auth.is_some());
        assert!(
            scaler(with_base!("awsRegion" => "eu-west-1"), &[])
                .cloud_auth
                .is_none()
        );
    }

    #[test]
    fn go_query_escape() {
        assert_eq!(query_escape("a b+c&d=é*~"), "a+b%2Bc%26d%3D%C3%A9%2A~");
    }

    #[tokio::test]
    async fn refused_connection_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let address = format!("http://127.0.0.1:{port}");
        let mut cfg = config(BASE, &[], 0);
        cfg.params
            .metadata
            .insert("serverAddress".into(), address.clone());
        let s = PrometheusScaler::new(&cfg, &ScalerContext::default()).unwrap();
        let name = MetricName::from_raw("s0-prometheus");
        let error = s
            .sample(SampleRequest {
                metric: &name,
                now: chrono::Utc::now(),
            })
            .await
            .unwrap_err();
        assert_eq!(
            error.category,
            scaler_core::ErrorCategory::Connect,
            "{error}"
        );
        assert!(
            error
                .message
                .starts_with(&format!("Get \"{address}/api/v1/query?query=up&time=")),
            "{error}"
        );
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
