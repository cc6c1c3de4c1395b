//! A complete external scaler plugin written in Rust: it scales on a number kept in a file (say,
//! a queue depth that another job writes), and serves it over KEDA's external scaler protocol.
//!
//! ```text
//! echo 42 > /tmp/queue-depth
//! cargo run -p scalers --example queue_depth_plugin -- 127.0.0.1:9090
//! ```
//!
//! and a ScaledObject trigger that uses it (any key besides `scalerAddress` reaches the plugin
//! in `scalerMetadata`):
//!
//! ```yaml
//! triggers:
//! - type: external
//!   metadata:
//!     scalerAddress: queue-depth-plugin.default:9090
//!     path: /tmp/queue-depth      # the file holding the number
//!     targetSize: "10"            # the value one replica handles (default 10)
//!     activationTargetSize: "0"   # active above this (default 0)
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use scaler_core::{
    ExternalMetric, MetricName, MetricSpec, MetricTargetType, Sample, SampleRequest, Scaler,
    ScalerError,
};
use scalers::plugin::{self, proto::ScaledObjectRef};
use tokio::net::TcpListener;

/// The scaler: one metric, `queue-depth`, read from a file on every sample.
#[derive(Debug)]
struct QueueDepth {
    path: PathBuf,
    target: f64,
    activation: f64,
}

#[async_trait]
impl Scaler for QueueDepth {
    fn metric_specs(&self) -> Vec<MetricSpec> {
        // Name it as trigger 0; the plugin helper strips `s0-` on the wire and the engine that
        // calls adds its own `s<index>-`.
        vec![MetricSpec::External(ExternalMetric {
            name: MetricName::indexed(0, "queue-depth"),
            target: self.target,
            target_type: MetricTargetType::AverageValue,
        })]
    }

    async fn sample(&self, _request: SampleRequest<'_>) -> Result<Sample, ScalerError> {
        let text = std::fs::read_to_string(&self.path).map_err(|e| {
            // Unavailable on the wire: the engine counts it as a connection failure.
            ScalerError::connect(format!("reading {}: {e}", self.path.display()))
        })?;
        let value: f64 = text.trim().parse().map_err(|e| {
            ScalerError::query(format!(
                "{}: {:?} is not a number: {e}",
                self.path.display(),
                text.trim()
            ))
        })?;
        Ok(Sample::with_threshold(value, self.activation))
    }
}

/// Builds the scaler from the trigger's metadata, which every call carries.
fn from_metadata(object: &ScaledObjectRef) -> Result<Arc<dyn Scaler>, ScalerError> {
    let metadata = &object.scaler_metadata;
    let number = |key: &str, default: f64| -> Result<f64, ScalerError> {
        match metadata
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
        {
            None => Ok(default),
            Some(text) => text.parse().map_err(|_| {
                ScalerError::metadata(format!("metadata key `{key}`: {text:?} is not a number"))
            }),
        }
    };
    let path = metadata
        .get("path")
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ScalerError::metadata("metadata key `path` is required"))?;
    Ok(Arc::new(QueueDepth {
        path: PathBuf::from(path),
        target: number("targetSize", 10.0)?,
        activation: number("activationTargetSize", 0.0)?,
    }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9090".to_owned());
    let listener = TcpListener::bind(&address).await?;
    eprintln!("queue-depth plugin listening on {}", listener.local_addr()?);
    plugin::serve(listener, from_metadata).await?;
    Ok(())
}
