//! What the metrics API asks of the controller: the values of one metric of one ScaledObject.
//!
//! The controller implements [`ExternalMetricSource`] over the cache its scale loops fill
//! (sampling once, shared by concurrent readers, when the cache has nothing yet); the API
//! server only renders what it gets. Fallback and scalingModifiers are applied before a value
//! gets here, so a value is exactly what KEDA would hand the HPA, before KEDA's quantity rules
//! (milli precision; negative, NaN and ±Inf served as 0), which the API layer applies.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// One request of the HPA: `GET …/namespaces/{namespace}/{metric_name}?labelSelector=scaledobject.keda.sh/name={scaled_object}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExternalMetricQuery {
    pub namespace: String,
    pub scaled_object: String,
    /// As requested: the HPA may lower-case it, so the source matches it case-insensitively.
    pub metric_name: String,
}

/// One item of the `ExternalMetricValueList`.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricValue {
    /// The metric's name as the ScaledObject's HPA spells it (`s0-redis-mylist`, `composite-metric`).
    pub metric_name: String,
    /// The raw value; the API layer turns it into a milli quantity and clamps it as KEDA does.
    pub value: f64,
    /// When the value was sampled.
    pub timestamp: DateTime<Utc>,
}

/// Why a query has no value. Each maps to one HTTP status in the API layer.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum MetricSourceError {
    /// No ScaledObject `namespace/name` is known to this replica (404).
    #[error("ScaledObject {namespace}/{name} not found")]
    ScaledObjectNotFound { namespace: String, name: String },
    /// The ScaledObject has no metric of that name (404); KEDA's message.
    #[error("no matching metrics found for {metric_name}")]
    MetricNotFound { metric_name: String },
    /// The scaler failed and no fallback applies (500); KEDA's message shape.
    #[error("metric:{metric_name} encountered error: {message}")]
    Scaler {
        metric_name: String,
        message: String,
    },
}

/// The controller side of the metrics API.
#[async_trait]
pub trait ExternalMetricSource: Send + Sync + 'static {
    async fn values(
        &self,
        query: &ExternalMetricQuery,
    ) -> Result<Vec<MetricValue>, MetricSourceError>;
}
