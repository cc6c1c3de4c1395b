//! The router in process with a fake source: what the aggregator and the HPA read.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::fakes::FakeSource;
use crate::metrics_api::source::MetricSourceError;
use crate::metrics_api::{ApiState, router};

const DATA: &str = "/apis/external.metrics.k8s.io/v1beta1/namespaces";
const SELECTOR: &str = "labelSelector=scaledobject.keda.sh%2Fname%3Dmy-so";

struct Reply {
    status: StatusCode,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

async fn call(source: Arc<FakeSource>, method: Method, uri: &str) -> Reply {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .expect("a valid request");
    let response = router(ApiState::new(source))
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes()
        .to_vec();
    Reply {
        status,
        content_type,
        body,
    }
}

async fn get(source: Arc<FakeSource>, uri: &str) -> Reply {
    call(source, Method::GET, uri).await
}

fn source() -> Arc<FakeSource> {
    Arc::new(
        FakeSource::new()
            .with_values("ns", "my-so", "s0-redis-mylist", &[7.0])
            .with_values("ns", "my-so", "s1-fractional", &[1.5])
            .with_values("ns", "my-so", "s2-negative", &[-3.0])
            .with_values("ns", "my-so", "s3-nan", &[f64::NAN])
            .with_values("ns", "my-so", "s4-inf", &[f64::INFINITY, f64::NEG_INFINITY])
            .with_values("ns", "my-so", "s5-big", &[12_000.0, 0.0004, 2.0006])
            .with_error(
                "ns",
                "my-so",
                "s6-broken",
                MetricSourceError::Scaler {
                    metric_name: "s6-broken".to_owned(),
                    message: "connection refused".to_owned(),
                },
            ),
    )
}

#[tokio::test]
async fn discovery_lists_the_group_and_keda_placeholder_resource() {
    let source = source();
    let version = json!({"groupVersion": "external.metrics.k8s.io/v1beta1", "version": "v1beta1"});

    let groups = get(source.clone(), "/apis").await;
    assert_eq!(groups.status, StatusCode::OK);
    assert_eq!(groups.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        groups.json(),
        json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [{
                "name": "external.metrics.k8s.io",
                "versions": [version],
                "preferredVersion": version,
            }],
        })
    );

    let group = get(source.clone(), "/apis/external.metrics.k8s.io").await;
    assert_eq!(group.status, StatusCode::OK);
    assert_eq!(
        group.json(),
        json!({
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": "external.metrics.k8s.io",
            "versions": [version],
            "preferredVersion": version,
        })
    );

    let resources = get(source.clone(), "/apis/external.metrics.k8s.io/v1beta1").await;
    assert_eq!(resources.status, StatusCode::OK);
    assert_eq!(
        resources.json(),
        json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": "external.metrics.k8s.io/v1beta1",
            "resources": [{
                "name": "externalmetric",
                "singularName": "",
                "namespaced": true,
                "kind": "ExternalMetricValueList",
                "verbs": ["get"],
            }],
        })
    );
    assert_eq!(source.calls(), 0, "discovery never asks the source");
}

#[tokio::test]
async fn a_value_is_served_as_keda_serves_it() {
    let source = source();
    let reply = get(
        source.clone(),
        &format!("{DATA}/ns/s0-redis-mylist?{SELECTOR}"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        String::from_utf8_lossy(&reply.body),
        r#"{"kind":"ExternalMetricValueList","apiVersion":"external.metrics.k8s.io/v1beta1","metadata":{},"items":[{"metricName":"s0-redis-mylist","metricLabels":null,"timestamp":"2026-01-02T03:04:05Z","value":"7"}]}"#
    );
    let queries = source.queries();
    assert_eq!(queries.len(), 1);
    assert_eq!(queries[0].namespace, "ns");
    assert_eq!(queries[0].scaled_object, "my-so");
    assert_eq!(queries[0].metric_name, "s0-redis-mylist");
}

#[tokio::test]
async fn values_are_milli_quantities_and_never_negative_nan_or_infinite() {
    let source = source();
    for (metric, expected) in [
        ("s1-fractional", vec!["1500m"]),
        ("s2-negative", vec!["0"]),
        ("s3-nan", vec!["0"]),
        ("s4-inf", vec!["0", "0"]),
        ("s5-big", vec!["12k", "0", "2001m"]),
    ] {
        let reply = get(source.clone(), &format!("{DATA}/ns/{metric}?{SELECTOR}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{metric}");
        let values: Vec<Value> = reply.json()["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|item| item["value"].clone())
            .collect();
        assert_eq!(values, expected, "{metric}");
    }
}

#[tokio::test]
async fn the_metric_name_reaches_the_source_as_requested() {
    let source = source();
    let reply = get(
        source.clone(),
        &format!("{DATA}/ns/S0-Redis-MyList?{SELECTOR}"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(source.queries()[0].metric_name, "S0-Redis-MyList");
}

#[tokio::test]
async fn a_selector_without_the_scaled_object_is_a_bad_request() {
    for query in [
        "",
        "?labelSelector=",
        "?labelSelector=app%3Dweb",
        "?labelSelector=scaledobject.keda.sh%2Fname%3D",
    ] {
        let source = source();
        let reply = get(source.clone(), &format!("{DATA}/ns/s0-redis-mylist{query}")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(
            reply.json(),
            json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "scaledObject name is not specified",
                "reason": "BadRequest",
                "code": 400,
            }),
            "{query}"
        );
        assert_eq!(source.calls(), 0);
    }
}

#[tokio::test]
async fn a_malformed_or_set_based_selector_is_a_bad_request() {
    for selector in [
        "scaledobject.keda.sh%2Fname%20in%20(a)",
        "scaledobject.keda.sh%2Fname%3Dmy-so%2Capp%21%3Dweb",
        "%3D%3D",
    ] {
        let source = source();
        let reply = get(
            source.clone(),
            &format!("{DATA}/ns/s0-redis-mylist?labelSelector={selector}"),
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{selector}");
        assert_eq!(reply.json()["reason"], "BadRequest");
        assert_eq!(source.calls(), 0);
    }
}

#[tokio::test]
async fn a_path_that_does_not_decode_is_a_bad_request() {
    let source = source();
    let reply = get(source.clone(), &format!("{DATA}/ns/s0-%FF?{SELECTOR}")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["reason"], "BadRequest");
    assert_eq!(source.calls(), 0);
}

#[tokio::test]
async fn an_unknown_metric_or_scaled_object_is_not_found() {
    let source = source();
    let reply = get(source.clone(), &format!("{DATA}/ns/s9-nope?{SELECTOR}")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let status = reply.json();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "NotFound");
    assert_eq!(status["code"], 404);
    assert_eq!(status["message"], "no matching metrics found for s9-nope");

    let reply = get(
        source.clone(),
        &format!("{DATA}/other/s0-redis-mylist?{SELECTOR}"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.json()["message"],
        "ScaledObject other/my-so not found"
    );
}

#[tokio::test]
async fn a_scaler_error_is_an_internal_error() {
    let source = source();
    let reply = get(source.clone(), &format!("{DATA}/ns/s6-broken?{SELECTOR}")).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        reply.json(),
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Internal error occurred: metric:s6-broken encountered error: connection refused",
            "reason": "InternalError",
            "details": {"causes": [{"message": "metric:s6-broken encountered error: connection refused"}]},
            "code": 500,
        })
    );
}

#[tokio::test]
async fn only_get_is_allowed() {
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let source = source();
        let reply = call(
            source.clone(),
            method.clone(),
            &format!("{DATA}/ns/s0-redis-mylist?{SELECTOR}"),
        )
        .await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(reply.json()["reason"], "MethodNotAllowed");
        assert_eq!(reply.json()["code"], 405);
        assert_eq!(source.calls(), 0);

        let reply = call(
            source,
            method.clone(),
            "/apis/external.metrics.k8s.io/v1beta1",
        )
        .await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
}

#[tokio::test]
async fn unknown_paths_and_openapi_are_not_found() {
    for path in [
        "/openapi/v2",
        "/openapi/v3",
        "/apis/external.metrics.k8s.io/v1beta2",
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns",
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/a/b",
        "/api",
    ] {
        let reply = get(source(), path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.json()["reason"], "NotFound", "{path}");
    }
}

#[tokio::test]
async fn health_checks_answer_ok() {
    for path in ["/healthz", "/livez", "/readyz"] {
        let reply = get(source(), path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.body, b"ok", "{path}");
    }
}

#[tokio::test]
async fn pretty_indents_the_list() {
    let reply = get(
        source(),
        &format!("{DATA}/ns/s0-redis-mylist?{SELECTOR}&pretty=true"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    assert!(text.contains("\n  \"items\": ["), "{text}");
    assert_eq!(reply.json()["items"][0]["value"], "7");
}
