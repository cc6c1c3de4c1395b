//! The external metrics API (`external.metrics.k8s.io/v1beta1`) the HPA reads, served by every
//! replica from the warm values the scale loops keep.
//!
//! KEDA runs a separate adapter that asks the leader operator over gRPC for every HPA request;
//! here each replica answers from its own cache through [`ExternalMetricSource`], so there is
//! no extra hop and no single replica the HPA depends on.

pub mod router;
pub mod selector;
pub mod source;
pub mod status;

pub use router::{ApiState, render_values, router};
pub use source::{ExternalMetricQuery, ExternalMetricSource, MetricSourceError, MetricValue};
pub use status::ApiError;

#[cfg(test)]
mod tests;
