//! Every way a metrics API request fails, rendered as the Kubernetes `Status` object a
//! generic API server would send (same `reason` strings and codes), so `kubectl get --raw`
//! and the HPA's client read our errors exactly as they read KEDA's.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::source::MetricSourceError;

/// The API group this server serves.
pub const GROUP: &str = "external.metrics.k8s.io";

/// Why a request got no metric values.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The `labelSelector` query parameter does not parse, or uses more than `key=value` terms
    /// (KEDA turns the selector into a plain label map).
    #[error("invalid labelSelector: {0}")]
    InvalidSelector(String),
    /// A path segment does not decode (bad percent-encoding, not UTF-8).
    #[error("invalid path: {0}")]
    InvalidPath(String),
    /// The selector lacks `scaledobject.keda.sh/name`; KEDA's message.
    #[error("scaledObject name is not specified")]
    ScaledObjectNameMissing,
    /// The controller's source had no value.
    #[error(transparent)]
    Source(#[from] MetricSourceError),
    /// No client certificate, front-proxy identity or valid bearer token.
    #[error("Unauthorized")]
    Unauthenticated,
    /// The SubjectAccessReview said no; `message` is the apiserver's `forbidden` sentence.
    #[error("{message}")]
    Forbidden {
        message: String,
        group: String,
        resource: String,
        name: String,
    },
    /// The SubjectAccessReview could not be made (the API server is unreachable, say).
    #[error("Internal error occurred: {0}")]
    AuthorizationFailed(String),
    /// No route for the path.
    #[error("the server could not find the requested resource")]
    RouteNotFound,
    /// Anything but GET (and HEAD) on a route.
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
}

impl ApiError {
    /// The HTTP status and the Kubernetes `StatusReason`.
    pub fn code_and_reason(&self) -> (StatusCode, &'static str) {
        match self {
            Self::InvalidSelector(_) | Self::InvalidPath(_) | Self::ScaledObjectNameMissing => {
                (StatusCode::BAD_REQUEST, "BadRequest")
            }
            Self::Source(
                MetricSourceError::ScaledObjectNotFound { .. }
                | MetricSourceError::MetricNotFound { .. },
            )
            | Self::RouteNotFound => (StatusCode::NOT_FOUND, "NotFound"),
            Self::Source(MetricSourceError::Scaler { .. }) | Self::AuthorizationFailed(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "InternalError")
            }
            Self::Unauthenticated => (StatusCode::UNAUTHORIZED, "Unauthorized"),
            Self::Forbidden { .. } => (StatusCode::FORBIDDEN, "Forbidden"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
        }
    }

    fn details(&self) -> Option<StatusDetails> {
        match self {
            Self::Source(MetricSourceError::ScaledObjectNotFound { name, .. }) => {
                Some(StatusDetails {
                    name: Some(name.clone()),
                    group: Some("keda.sh".to_owned()),
                    kind: Some("scaledobjects".to_owned()),
                    causes: None,
                })
            }
            Self::Source(MetricSourceError::MetricNotFound { metric_name }) => {
                Some(StatusDetails {
                    name: Some(metric_name.clone()),
                    group: Some(GROUP.to_owned()),
                    kind: None,
                    causes: None,
                })
            }
            // The apiserver's InternalError carries the bare message as the one cause.
            Self::Source(error @ MetricSourceError::Scaler { .. }) => Some(StatusDetails {
                causes: Some(vec![StatusCause {
                    message: error.to_string(),
                }]),
                ..StatusDetails::default()
            }),
            Self::AuthorizationFailed(message) => Some(StatusDetails {
                causes: Some(vec![StatusCause {
                    message: message.clone(),
                }]),
                ..StatusDetails::default()
            }),
            Self::Forbidden {
                group,
                resource,
                name,
                ..
            } => Some(StatusDetails {
                name: Some(name.clone()).filter(|n| !n.is_empty()),
                group: Some(group.clone()).filter(|g| !g.is_empty()),
                kind: Some(resource.clone()).filter(|r| !r.is_empty()),
                causes: None,
            }),
            // The apiserver's generic 404 and 405 carry empty details; its 400 and 401 none.
            Self::RouteNotFound | Self::MethodNotAllowed => Some(StatusDetails::default()),
            Self::InvalidSelector(_)
            | Self::InvalidPath(_)
            | Self::ScaledObjectNameMissing
            | Self::Unauthenticated => None,
        }
    }

    /// The message as the apiserver words it: InternalError prefixes its cause.
    fn message(&self) -> String {
        match self {
            Self::Source(error @ MetricSourceError::Scaler { .. }) => {
                format!("Internal error occurred: {error}")
            }
            other => other.to_string(),
        }
    }
}

/// `metav1.Status`, field order as the apiserver writes it.
#[derive(Serialize)]
struct Status<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: Empty,
    status: &'static str,
    message: &'a str,
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<StatusDetails>,
    code: u16,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Default, Serialize)]
struct StatusDetails {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    causes: Option<Vec<StatusCause>>,
}

#[derive(Serialize)]
struct StatusCause {
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, reason) = self.code_and_reason();
        let message = self.message();
        let status = Status {
            kind: "Status",
            api_version: "v1",
            metadata: Empty {},
            status: "Failure",
            message: &message,
            reason,
            details: self.details(),
            code: code.as_u16(),
        };
        let body = serde_json::to_vec(&status).unwrap_or_default();
        let mut response = (code, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}
