//! The external metrics API (`external.metrics.k8s.io/v1beta1`) the HPA reads, served by every
//! replica from the warm values the scale loops keep.

pub mod source;

pub use source::{ExternalMetricQuery, ExternalMetricSource, MetricSourceError, MetricValue};
