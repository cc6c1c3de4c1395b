//! Observability: Prometheus metrics (KEDA's names), health probes and logging.
//!
//! - [`metrics`]: [`OperatorMetrics`], the series the controller and scale loops update.
//! - [`health`]: [`Health`], the shared state behind `/healthz` and `/readyz`.
//! - [`server`]: the HTTP listeners for probes and `/metrics`.
//! - [`logging`]: the global `tracing` subscriber.
//!
//! [`OperatorMetrics`] implements the controller's [`crate::controller::Observer`].

pub mod health;
pub mod logging;
pub mod metrics;
mod observer;
pub mod server;

use std::net::{Ipv4Addr, SocketAddr};

use clap::Args;

pub use health::{ControllerSync, Health};
pub use logging::LogFormat;
pub use metrics::{BuildInfo, HpaOperation, OperatorMetrics, SampleLabels, ScaleDirection};
pub use server::{ServeError, Serving, serve_metrics, serve_probes};

/// Where the operator serves probes and metrics, and how it logs.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct TelemetryArgs {
    /// The address the probe endpoints (`/healthz`, `/readyz`) bind to; `:8081` means all
    /// interfaces, as in KEDA.
    #[arg(
        long,
        env = "WINDLASS_HEALTH_PROBE_BIND_ADDRESS",
        value_name = "ADDR",
        default_value = "0.0.0.0:8081",
        value_parser = parse_bind_address
    )]
    pub health_probe_bind_address: SocketAddr,

    /// The address the Prometheus endpoint (`/metrics`) binds to; `:8080` means all interfaces,
    /// as in KEDA.
    #[arg(
        long,
        env = "WINDLASS_METRICS_BIND_ADDRESS",
        value_name = "ADDR",
        default_value = "0.0.0.0:8080",
        value_parser = parse_bind_address
    )]
    pub metrics_bind_address: SocketAddr,

    /// Log line format.
    #[arg(long, env = "WINDLASS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Which events to log, as a `tracing` filter: a level (`info`) or per-module directives
    /// (`info,windlass=debug,kube=warn`).
    #[arg(
        long,
        env = "WINDLASS_LOG_LEVEL",
        value_name = "FILTER",
        default_value = "info"
    )]
    pub log_level: String,
}

/// `host:port`, or Go's `:port` for every interface, so KEDA-style values keep working.
pub fn parse_bind_address(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Some(port) = text.strip_prefix(':') {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{text:?}: the port is not a number from 0 to 65535"))?;
        return Ok(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)));
    }
    text.parse()
        .map_err(|_| format!("{text:?} is not an address like 0.0.0.0:8080, [::]:8080 or :8080"))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        telemetry: TelemetryArgs,
    }

    #[test]
    fn defaults_match_kedas_ports() {
        let cli = Cli::try_parse_from(["windlass"]).unwrap();
        assert_eq!(
            cli.telemetry,
            TelemetryArgs {
                health_probe_bind_address: "0.0.0.0:8081".parse().unwrap(),
                metrics_bind_address: "0.0.0.0:8080".parse().unwrap(),
                log_format: LogFormat::Text,
                log_level: "info".into(),
            }
        );
    }

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from([
            "windlass",
            "--health-probe-bind-address=:9091",
            "--metrics-bind-address",
            "127.0.0.1:9090",
            "--log-format=json",
            "--log-level=windlass=debug",
        ])
        .unwrap();
        assert_eq!(
            cli.telemetry.health_probe_bind_address,
            "0.0.0.0:9091".parse().unwrap()
        );
        assert_eq!(
            cli.telemetry.metrics_bind_address,
            "127.0.0.1:9090".parse().unwrap()
        );
        assert_eq!(cli.telemetry.log_format, LogFormat::Json);
        assert_eq!(cli.telemetry.log_level, "windlass=debug");
    }

    #[test]
    fn bind_addresses() {
        assert_eq!(
            parse_bind_address(":8080"),
            Ok("0.0.0.0:8080".parse().unwrap())
        );
        assert_eq!(
            parse_bind_address("[::1]:80"),
            Ok("[::1]:80".parse().unwrap())
        );
        assert!(parse_bind_address(":http").is_err());
        assert!(parse_bind_address("localhost").is_err());
    }
}
