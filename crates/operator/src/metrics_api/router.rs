//! The HTTP surface: discovery documents, the one data endpoint, health checks.
//!
//! Paths, bodies and error codes follow what KEDA's adapter (a `custom-metrics-apiserver`
//! generic API server) answers, so the aggregator, the HPA and `kubectl get --raw` see no
//! difference. The discovery documents are rendered once; a metric request costs one call of
//! the [`ExternalMetricSource`] and one small JSON serialisation.
//!
//! OpenAPI: `/openapi/v2` and `/openapi/v3` answer 404. The aggregator treats a 404 from an
//! APIService as "this server publishes no spec" and skips it, which is what we want: a
//! hand-written partial document would only add a second description of types the
//! `k8s.io/metrics` schema already defines, and a malformed one would break the merged spec.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use chrono::SecondsFormat;
use scaler_core::metric::format_quantity;
use serde::Serialize;

use super::auth::request_info::percent_decode;
use super::auth::{self, Security};
use super::selector::{SCALED_OBJECT_LABEL, parse_equality_selector};
use super::source::{ExternalMetricQuery, ExternalMetricSource, MetricValue};
use super::status::{ApiError, GROUP};

/// The version this server serves.
pub const VERSION: &str = "v1beta1";
/// `group/version`.
pub const GROUP_VERSION: &str = "external.metrics.k8s.io/v1beta1";

/// What the handlers share: the controller's values and the gate in front of them.
#[derive(Clone)]
pub struct ApiState {
    source: Arc<dyn ExternalMetricSource>,
    security: Security,
    discovery: Arc<Discovery>,
}

impl ApiState {
    /// A state that lets every request through: for in-process tests and
    /// `--metrics-api-insecure-disable-auth`.
    pub fn new(source: Arc<dyn ExternalMetricSource>) -> Self {
        Self::with_security(source, Security::Disabled)
    }

    /// A state whose requests are authenticated and authorised by `security` first.
    pub fn with_security(source: Arc<dyn ExternalMetricSource>, security: Security) -> Self {
        Self {
            source,
            security,
            discovery: Arc::new(Discovery::render()),
        }
    }

    pub fn security(&self) -> &Security {
        &self.security
    }
}

/// The three discovery documents, serialised once.
struct Discovery {
    group_list: Bytes,
    group: Bytes,
    resource_list: Bytes,
}

#[derive(Clone, Serialize)]
struct GroupVersionForDiscovery {
    #[serde(rename = "groupVersion")]
    group_version: &'static str,
    version: &'static str,
}

#[derive(Clone, Serialize)]
struct ApiGroup {
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(rename = "apiVersion", skip_serializing_if = "Option::is_none")]
    api_version: Option<&'static str>,
    name: &'static str,
    versions: Vec<GroupVersionForDiscovery>,
    #[serde(rename = "preferredVersion")]
    preferred_version: GroupVersionForDiscovery,
}

#[derive(Serialize)]
struct ApiGroupList {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    groups: Vec<ApiGroup>,
}

#[derive(Serialize)]
struct ApiResource {
    name: &'static str,
    #[serde(rename = "singularName")]
    singular_name: &'static str,
    namespaced: bool,
    kind: &'static str,
    verbs: Vec<&'static str>,
}

#[derive(Serialize)]
struct ApiResourceList {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    #[serde(rename = "groupVersion")]
    group_version: &'static str,
    resources: Vec<ApiResource>,
}

/// Plain structs of strings: serialisation cannot fail.
fn encode<T: Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

impl Discovery {
    fn render() -> Self {
        let version = GroupVersionForDiscovery {
            group_version: GROUP_VERSION,
            version: VERSION,
        };
        let group = ApiGroup {
            kind: None,
            api_version: None,
            name: GROUP,
            versions: vec![version.clone()],
            preferred_version: version,
        };
        let list = ApiGroupList {
            kind: "APIGroupList",
            api_version: "v1",
            groups: vec![group.clone()],
        };
        let group = ApiGroup {
            kind: Some("APIGroup"),
            api_version: Some("v1"),
            ..group
        };
        // KEDA advertises one placeholder resource; real metric names are not listed.
        let resources = ApiResourceList {
            kind: "APIResourceList",
            api_version: "v1",
            group_version: GROUP_VERSION,
            resources: vec![ApiResource {
                name: "externalmetric",
                singular_name: "",
                namespaced: true,
                kind: "ExternalMetricValueList",
                verbs: vec!["get"],
            }],
        };
        Self {
            group_list: encode(&list),
            group: encode(&group),
            resource_list: encode(&resources),
        }
    }
}

/// The metrics API's routes. With [`Security::Delegated`] every route but the health checks
/// (unknown paths included, as in the apiserver) is behind authentication and authorisation,
/// which run before the handlers, so a refused request never reaches the source.
pub fn router(state: ApiState) -> Router {
    let api = Router::new()
        .route("/apis", only_get(get(group_list)))
        .route(&format!("/apis/{GROUP}"), only_get(get(group)))
        .route(
            &format!("/apis/{GROUP_VERSION}"),
            only_get(get(resource_list)),
        )
        .route(
            &format!("/apis/{GROUP_VERSION}/namespaces/{{namespace}}/{{metric}}"),
            only_get(get(external_metric)),
        )
        .fallback(|| async { ApiError::RouteNotFound });
    let api = match state.security.clone() {
        Security::Disabled => api,
        Security::Delegated(gate) => {
            api.layer(axum::middleware::from_fn_with_state(gate, auth::guard))
        }
    };
    Router::new()
        .route("/healthz", only_get(get(ok)))
        .route("/livez", only_get(get(ok)))
        .route("/readyz", only_get(get(ok)))
        .merge(api)
        .with_state(state)
}

/// Any other method is a Kubernetes 405 rather than axum's empty one.
fn only_get(route: MethodRouter<ApiState>) -> MethodRouter<ApiState> {
    route.fallback(|| async { ApiError::MethodNotAllowed })
}

async fn ok() -> &'static str {
    "ok"
}

fn json_response(body: Bytes) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn group_list(State(state): State<ApiState>) -> Response {
    json_response(state.discovery.group_list.clone())
}

async fn group(State(state): State<ApiState>) -> Response {
    json_response(state.discovery.group.clone())
}

async fn resource_list(State(state): State<ApiState>) -> Response {
    json_response(state.discovery.resource_list.clone())
}

/// `ExternalMetricValueList` as the apiserver encodes it.
#[derive(Serialize)]
struct ValueList<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: Empty,
    items: Vec<ValueItem<'a>>,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct ValueItem<'a> {
    #[serde(rename = "metricName")]
    metric_name: &'a str,
    /// KEDA never sets labels; Go encodes the nil map as `null`.
    #[serde(rename = "metricLabels")]
    metric_labels: Option<()>,
    timestamp: String,
    value: String,
}

/// Renders values as KEDA serves them: RFC 3339 timestamps at second precision, and values as
/// milli-precise quantities with negative, NaN and infinite values served as 0.
pub fn render_values(values: &[MetricValue], pretty: bool) -> Vec<u8> {
    let list = ValueList {
        kind: "ExternalMetricValueList",
        api_version: GROUP_VERSION,
        metadata: Empty {},
        items: values
            .iter()
            .map(|value| ValueItem {
                metric_name: &value.metric_name,
                metric_labels: None,
                timestamp: value.timestamp.to_rfc3339_opts(SecondsFormat::Secs, true),
                value: format_quantity(value.value),
            })
            .collect(),
    };
    let rendered = if pretty {
        serde_json::to_vec_pretty(&list)
    } else {
        serde_json::to_vec(&list)
    };
    // Strings, a unit and a vector of them: serialisation cannot fail.
    rendered.unwrap_or_default()
}

/// One query parameter, form-decoded; the first of repeated parameters wins, as in Go. Only
/// the parameters asked for are decoded.
fn query_parameter(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| percent_decode(&value.replace('+', " ")))
    })
}

async fn external_metric(
    State(state): State<ApiState>,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let Path((namespace, metric_name)) =
        path.map_err(|rejection| ApiError::InvalidPath(rejection.body_text()))?;
    let query = query.unwrap_or_default();
    let selector = query_parameter(&query, "labelSelector").unwrap_or_default();
    let labels = parse_equality_selector(&selector)
        .map_err(|error| ApiError::InvalidSelector(error.to_string()))?;
    let scaled_object = labels
        .get(SCALED_OBJECT_LABEL)
        .filter(|name| !name.is_empty())
        .ok_or(ApiError::ScaledObjectNameMissing)?;
    let pretty = query_parameter(&query, "pretty")
        .is_some_and(|p| !matches!(p.as_str(), "" | "0" | "false"));

    let request = ExternalMetricQuery {
        namespace,
        scaled_object: scaled_object.clone(),
        metric_name,
    };
    let values = state.source.values(&request).await?;
    Ok(json_response(Bytes::from(render_values(&values, pretty))))
}
