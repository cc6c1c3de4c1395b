//! The plain-HTTP listeners for probes and metrics, as KEDA runs them (`:8081` and `:8080`).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::health::{self, Health};
use super::metrics;

/// The content type of the OpenMetrics text format, which Prometheus negotiates.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Error)]
pub enum ServeError {
    #[error("binding the {server} listener to {addr}")]
    Bind {
        server: &'static str,
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("reading the address the {server} listener is bound to")]
    LocalAddr {
        server: &'static str,
        #[source]
        source: io::Error,
    },
}

/// A listener that is accepting connections.
#[derive(Debug)]
pub struct Serving {
    /// The bound address; with port 0 in the request, the port the system chose.
    pub local_addr: SocketAddr,
    /// Ends when the shutdown future completes and open requests are answered.
    pub task: JoinHandle<io::Result<()>>,
}

async fn metrics_handler(State(registry): State<Arc<Registry>>) -> Response {
    match metrics::render(&registry) {
        Ok(text) => ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding the metrics failed\n",
        )
            .into_response(),
    }
}

/// `/metrics`: the registry in the OpenMetrics text format.
pub fn metrics_router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .with_state(registry)
}

/// Binds `addr` and serves `router` until `shutdown` completes.
pub async fn serve(
    server: &'static str,
    addr: SocketAddr,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Serving, ServeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            server,
            addr,
            source,
        })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| ServeError::LocalAddr { server, source })?;
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
    });
    tracing::info!(%local_addr, server, "listening");
    Ok(Serving { local_addr, task })
}

/// Serves `/healthz` and `/readyz` on `addr`.
pub async fn serve_probes(
    addr: SocketAddr,
    health: Health,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Serving, ServeError> {
    serve("health probe", addr, health::router(health), shutdown).await
}

/// Serves `/metrics` on `addr`.
pub async fn serve_metrics(
    addr: SocketAddr,
    registry: Arc<Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Serving, ServeError> {
    serve("metrics", addr, metrics_router(registry), shutdown).await
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::telemetry::metrics::{BuildInfo, OperatorMetrics};

    #[tokio::test]
    async fn metrics_route_renders_openmetrics() {
        let mut registry = Registry::default();
        let metrics = OperatorMetrics::register(&mut registry, &BuildInfo::current());
        metrics.set_paused("apps", "worker", true);
        let response = metrics_router(Arc::new(registry))
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            OPENMETRICS_CONTENT_TYPE
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            text.contains(
                "keda_scaled_object_paused{namespace=\"apps\",scaledObject=\"worker\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }

    /// Both listeners on port 0 over real TCP, then a graceful shutdown.
    #[tokio::test]
    async fn serves_on_a_free_port_and_shuts_down() {
        let health = Health::default();
        health.set_caches_synced(true);
        health.set_metrics_api_serving(true);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let probes = serve_probes("127.0.0.1:0".parse().unwrap(), health, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
        assert_ne!(probes.local_addr.port(), 0);

        let mut stream = tokio::net::TcpStream::connect(probes.local_addr)
            .await
            .unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("readyz check passed\n"), "{answer}");

        stop.send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), probes.task)
            .await
            .expect("the server stops after shutdown")
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn a_taken_port_is_a_bind_error() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let error = serve_metrics(addr, Arc::new(Registry::default()), std::future::pending())
            .await
            .unwrap_err();
        assert!(
            matches!(error, ServeError::Bind { addr: a, .. } if a == addr),
            "{error:?}"
        );
    }
}
