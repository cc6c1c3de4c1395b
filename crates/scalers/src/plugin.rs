//! Serving a scaler written in Rust over KEDA's external scaler protocol, so that Windlass (with
//! `type: external` or `external-push`) or KEDA itself can use it.
//!
//! Write a type that implements [`Scaler`] (and [`PushScaler`](scaler_core::PushScaler) if it can push activity), then
//! hand [`serve`] a listener and a function that gives the scaler for a request. Each call
//! carries the ScaledObject's name, namespace and the trigger's metadata
//! ([`proto::ScaledObjectRef`]), so one plugin can serve many ScaledObjects with different
//! settings; build the scaler from them, or return the same one every time.
//!
//! How the protocol maps onto the trait:
//!
//! | RPC | answered from |
//! |---|---|
//! | `GetMetricSpec` | [`Scaler::live_metric_specs`] (external metrics only), names without their `s0-` prefix: the engine that calls adds its own `s<index>-` |
//! | `GetMetrics` | [`Scaler::sample`] of the metric named in the request; `metricValueFloat` carries the value, `metricValue` the value rounded |
//! | `IsActive` | [`Scaler::sample`] of every metric: active if any sample is |
//! | `StreamIsActive` | [`PushScaler::activity_stream`](scaler_core::PushScaler::activity_stream) when [`Scaler::as_push`] is `Some`; `Unimplemented` otherwise |
//! | `StreamMetricSpec` | `Unimplemented` (the engine then keeps calling `GetMetricSpec`) |
//!
//! A [`ScalerError`] becomes a gRPC status: `Connect` → `Unavailable`, `Timeout` →
//! `DeadlineExceeded`, `Metadata` → `InvalidArgument`, others → `Internal`. The example
//! `crates/scalers/examples/queue_depth_plugin.rs` is a complete plugin.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use scaler_core::{ErrorCategory, MetricName, MetricSpec, SampleRequest, Scaler, ScalerError};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

pub use crate::external_client::proto;
use proto::external_scaler_server::{ExternalScaler, ExternalScalerServer};

/// Gives the scaler that answers a request; plugins usually build it from the request's
/// `scaler_metadata` (or return one shared scaler).
pub trait ScalerSource: Send + Sync + 'static {
    fn scaler(&self, object: &proto::ScaledObjectRef) -> Result<Arc<dyn Scaler>, ScalerError>;
}

impl<F> ScalerSource for F
where
    F: Fn(&proto::ScaledObjectRef) -> Result<Arc<dyn Scaler>, ScalerError> + Send + Sync + 'static,
{
    fn scaler(&self, object: &proto::ScaledObjectRef) -> Result<Arc<dyn Scaler>, ScalerError> {
        self(object)
    }
}

/// The external scaler service over a [`ScalerSource`].
#[derive(Debug)]
pub struct Plugin<S> {
    source: S,
}

impl<S: ScalerSource> Plugin<S> {
    pub fn new(source: S) -> Self {
        Self { source }
    }

    /// The tonic service, to add to a `tonic::transport::Server` of your own (for TLS, say).
    pub fn into_service(self) -> ExternalScalerServer<Self> {
        ExternalScalerServer::new(self)
    }

    fn scaler(&self, object: Option<&proto::ScaledObjectRef>) -> Result<Arc<dyn Scaler>, Status> {
        let object = object.ok_or_else(|| Status::invalid_argument("no scaledObjectRef"))?;
        self.source.scaler(object).map_err(|e| to_status(&e))
    }
}

/// Serves `source` on `listener` until the process ends.
pub async fn serve<S: ScalerSource>(
    listener: TcpListener,
    source: S,
) -> Result<(), tonic::transport::Error> {
    serve_with_shutdown(listener, source, std::future::pending()).await
}

/// Serves `source` on `listener` until `shutdown` completes.
pub async fn serve_with_shutdown<S: ScalerSource>(
    listener: TcpListener,
    source: S,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(Plugin::new(source).into_service())
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
}

/// The name a metric has on the wire: without the `s0-` prefix the engine adds back.
fn wire_name(name: &MetricName) -> &str {
    name.as_str().strip_prefix("s0-").unwrap_or(name.as_str())
}

fn external_metrics(specs: Vec<MetricSpec>) -> impl Iterator<Item = scaler_core::ExternalMetric> {
    specs
        .into_iter()
        .filter_map(|spec| spec.external().cloned())
}

/// A scaler error as a gRPC status (see the module documentation).
pub fn to_status(error: &ScalerError) -> Status {
    let message = error.message.clone();
    match error.category {
        ErrorCategory::Connect => Status::unavailable(message),
        ErrorCategory::Timeout => Status::deadline_exceeded(message),
        ErrorCategory::Metadata => Status::invalid_argument(message),
        ErrorCategory::Query | ErrorCategory::Unsupported => Status::internal(message),
    }
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl<S: ScalerSource> ExternalScaler for Plugin<S> {
    async fn is_active(
        &self,
        request: Request<proto::ScaledObjectRef>,
    ) -> Result<Response<proto::IsActiveResponse>, Status> {
        let scaler = self.scaler(Some(request.get_ref()))?;
        let specs = scaler
            .live_metric_specs()
            .await
            .map_err(|e| to_status(&e))?;
        let mut result = false;
        for metric in external_metrics(specs) {
            let sample = scaler
                .sample(SampleRequest {
                    metric: &metric.name,
                    now: chrono::Utc::now(),
                })
                .await
                .map_err(|e| to_status(&e))?;
            result |= sample.active;
        }
        Ok(Response::new(proto::IsActiveResponse { result }))
    }

    type StreamIsActiveStream = ResponseStream<proto::IsActiveResponse>;

    async fn stream_is_active(
        &self,
        request: Request<proto::ScaledObjectRef>,
    ) -> Result<Response<Self::StreamIsActiveStream>, Status> {
        let scaler = self.scaler(Some(request.get_ref()))?;
        let Some(push) = scaler.as_push() else {
            return Err(Status::unimplemented(
                "this scaler does not push activity; poll IsActive",
            ));
        };
        // Errors in the source's stream are its own reconnects: keep the client's stream open.
        let stream = push.activity_stream().filter_map(|item| {
            futures::future::ready(
                item.ok()
                    .map(|result| Ok(proto::IsActiveResponse { result })),
            )
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_metric_spec(
        &self,
        request: Request<proto::ScaledObjectRef>,
    ) -> Result<Response<proto::GetMetricSpecResponse>, Status> {
        let scaler = self.scaler(Some(request.get_ref()))?;
        let specs = scaler
            .live_metric_specs()
            .await
            .map_err(|e| to_status(&e))?;
        let metric_specs = external_metrics(specs)
            .map(|metric| proto::MetricSpec {
                metric_name: wire_name(&metric.name).to_owned(),
                target_size: metric.target.round() as i64,
                target_size_float: metric.target,
            })
            .collect();
        Ok(Response::new(proto::GetMetricSpecResponse { metric_specs }))
    }

    async fn get_metrics(
        &self,
        request: Request<proto::GetMetricsRequest>,
    ) -> Result<Response<proto::GetMetricsResponse>, Status> {
        let request = request.into_inner();
        let scaler = self.scaler(request.scaled_object_ref.as_ref())?;
        let specs = scaler
            .live_metric_specs()
            .await
            .map_err(|e| to_status(&e))?;
        let metric = external_metrics(specs)
            .find(|metric| wire_name(&metric.name) == request.metric_name)
            .ok_or_else(|| {
                Status::not_found(format!("no metric named {:?}", request.metric_name))
            })?;
        let sample = scaler
            .sample(SampleRequest {
                metric: &metric.name,
                now: chrono::Utc::now(),
            })
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(proto::GetMetricsResponse {
            metric_values: vec![proto::MetricValue {
                metric_name: request.metric_name,
                metric_value: sample.value.round() as i64,
                metric_value_float: sample.value,
            }],
        }))
    }

    type StreamMetricSpecStream = ResponseStream<proto::GetMetricSpecResponse>;

    async fn stream_metric_spec(
        &self,
        _request: Request<proto::ScaledObjectRef>,
    ) -> Result<Response<Self::StreamMetricSpecStream>, Status> {
        Err(Status::unimplemented(
            "metric specs are not pushed; call GetMetricSpec",
        ))
    }
}
