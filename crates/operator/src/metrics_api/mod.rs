//! The external metrics API (`external.metrics.k8s.io/v1beta1`) the HPA reads, served by every
//! replica from the warm values the scale loops keep.
//!
//! KEDA runs a separate adapter that asks the leader operator over gRPC for every HPA request;
//! here each replica answers from its own cache through [`ExternalMetricSource`], so there is
//! no extra hop and no single replica the HPA depends on. The server is a delegated
//! aggregated API server: TLS with a reloadable certificate ([`tls`]), the aggregator's
//! front-proxy identity, client certificates or TokenReview for authentication, and
//! SubjectAccessReview for authorisation ([`auth`]).
//!
//! Entry points: [`serve`] for the operator, [`MetricsApiServer`] to bind first and learn the
//! address (tests), [`router`] for in-process use.

pub mod auth;
pub mod router;
pub mod selector;
pub mod server;
pub mod source;
pub mod status;
pub mod tls;

pub use auth::Security;
pub use router::{ApiState, render_values, router};
pub use server::{MetricsApiArgs, MetricsApiError, MetricsApiServer, serve};
pub use source::{ExternalMetricQuery, ExternalMetricSource, MetricSourceError, MetricValue};
pub use status::ApiError;

#[cfg(test)]
mod tests;
