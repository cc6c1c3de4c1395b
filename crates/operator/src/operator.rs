//! `windlass operator`: the controller, the scale loops and the external metrics API in one
//! process. Every replica watches, samples and serves metrics; only the lease holder scales,
//! manages HPAs and writes status.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::sync::watch;
use tracing::{error, info};

use crate::controller::runtime::WarmMetrics;
use crate::controller::{self, ControllerParts, Settings};
use crate::leader::LeaderElector;
use crate::metrics_api::server::MetricsApiServer;
use crate::telemetry::{self, BuildInfo, Health, OperatorMetrics};

/// Which ScaledObjects this operator handles, and how it reconciles them. Every flag has the
/// environment variable KEDA reads for the same setting.
#[derive(Clone, Debug, Args)]
pub struct ScopeArgs {
    /// Namespaces to watch, comma-separated; empty watches all namespaces.
    #[arg(
        long,
        env = "WATCH_NAMESPACE",
        default_value = "",
        value_name = "NAMESPACES"
    )]
    pub watch_namespace: String,
    /// Only ScaledObjects matching this label selector are handled.
    #[arg(long, env = "WATCH_LABEL_SELECTOR", value_name = "SELECTOR")]
    pub watch_label_selector: Option<String>,
    /// Namespace holding the Secrets and ConfigMaps ClusterTriggerAuthentications refer to
    /// (default: the operator's own namespace).
    #[arg(long, env = "KEDA_CLUSTER_OBJECT_NAMESPACE", value_name = "NAMESPACE")]
    pub cluster_object_namespace: Option<String>,
    /// The operator's namespace, from the downward API.
    #[arg(long, env = "POD_NAMESPACE", value_name = "NAMESPACE")]
    pub pod_namespace: Option<String>,
    /// This replica's name, from the downward API (events and the lease identity).
    #[arg(long, env = "POD_NAME", value_name = "NAME")]
    pub pod_name: Option<String>,
    /// ScaledObjects reconciled at once.
    #[arg(
        long,
        env = "KEDA_SCALEDOBJECT_CTRL_MAX_RECONCILES",
        default_value_t = 5,
        value_name = "N"
    )]
    pub max_concurrent_reconciles: u16,
    /// Timeout of scaler HTTP requests, in milliseconds (KEDA's default: 3000).
    #[arg(
        long,
        env = "KEDA_HTTP_DEFAULT_TIMEOUT",
        default_value_t = 3000,
        value_name = "MILLIS"
    )]
    pub http_default_timeout: u64,
}

impl ScopeArgs {
    /// The operator's namespace: the flag, else the service account's, else `keda`.
    pub fn operator_namespace(&self) -> String {
        if let Some(namespace) = self.pod_namespace.clone().filter(|n| !n.is_empty()) {
            return namespace;
        }
        std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
            .ok()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "keda".to_owned())
    }

    /// The controller's settings.
    pub fn settings(&self) -> Settings {
        Settings {
            namespaces: self
                .watch_namespace
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect(),
            label_selector: self.watch_label_selector.clone().filter(|s| !s.is_empty()),
            cluster_object_namespace: self
                .cluster_object_namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| self.operator_namespace()),
            max_concurrent_reconciles: self.max_concurrent_reconciles.max(1),
            instance: self.pod_name.clone(),
        }
    }
}

/// `windlass operator`'s flags.
#[derive(Clone, Debug, Args)]
pub struct OperatorArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    #[command(flatten)]
    pub leader_election: crate::leader::LeaderElectionArgs,
    #[command(flatten)]
    pub telemetry: crate::telemetry::TelemetryArgs,
    #[command(flatten)]
    pub metrics_api: crate::metrics_api::server::MetricsApiArgs,
}

/// Resolves when the process is asked to stop (SIGTERM or Ctrl-C).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// How often the controller proves it is alive to `/healthz`.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);

/// Runs `windlass operator` until it is asked to stop.
pub async fn run(args: &OperatorArgs) -> ExitCode {
    if let Err(error) =
        telemetry::logging::init(args.telemetry.log_format, &args.telemetry.log_level)
    {
        eprintln!("windlass operator: {error}");
        return ExitCode::from(2);
    }
    ::scalers::context::install_crypto_provider();
    let client = match kube::Client::try_default().await {
        Ok(client) => client,
        Err(error) => {
            eprintln!(
                "windlass operator: cannot reach the Kubernetes API: {error} (fix: run in a cluster, or point KUBECONFIG at one)"
            );
            return ExitCode::from(2);
        }
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    // Telemetry first, so probes answer (not ready) while the rest starts.
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = OperatorMetrics::register(&mut registry, &BuildInfo::current());
    let registry = Arc::new(registry);
    let health = Health::default();
    let probes = match telemetry::serve_probes(
        args.telemetry.health_probe_bind_address,
        health.clone(),
        stopped(stop_rx.clone()),
    )
    .await
    {
        Ok(serving) => serving,
        Err(error) => {
            eprintln!("windlass operator: {error}");
            return ExitCode::from(2);
        }
    };
    let metrics_server = match telemetry::serve_metrics(
        args.telemetry.metrics_bind_address,
        registry.clone(),
        stopped(stop_rx.clone()),
    )
    .await
    {
        Ok(serving) => serving,
        Err(error) => {
            eprintln!("windlass operator: {error}");
            return ExitCode::from(2);
        }
    };
    info!(probes = %probes.local_addr, metrics = %metrics_server.local_addr, "telemetry serving");

    // The lease: only its holder writes. The elector is stopped after the controller, so the
    // lease is released only once this replica can no longer act on it.
    let (elector_stop_tx, elector_stop_rx) = watch::channel(false);
    let elector = match LeaderElector::from_args(client.clone(), &args.leader_election) {
        Ok(elector) => elector
            .with_health(health.clone())
            .with_metrics(metrics.clone()),
        Err(error) => {
            eprintln!("windlass operator: {error}");
            return ExitCode::from(2);
        }
    };
    let (leader, elector_task) = elector.start(stopped(elector_stop_rx));

    let mut settings = ::scalers::context::Settings::from_env();
    settings.default_timeout = Duration::from_millis(args.scope.http_default_timeout.max(1));
    let scaler_context = ::scalers::ScalerContext::new(settings);
    let (synced_tx, synced_rx) = tokio::sync::oneshot::channel();
    let handles = controller::run(
        ControllerParts {
            client: client.clone(),
            settings: args.scope.settings(),
            scaler_context,
            leader,
            metrics: Some(Arc::new(metrics.clone())),
            synced: Some(synced_tx),
        },
        stopped(stop_rx.clone()),
    )
    .await;
    health.set_watch_established();
    let synced_health = health.clone();
    tokio::spawn(async move {
        if synced_rx.await.is_ok() {
            synced_health.set_caches_synced(true);
        }
    });
    // Every replica serves the external metrics API from its own warm state.
    let source = Arc::new(WarmMetrics::new(handles.runtimes.clone()));
    let metrics_api = match MetricsApiServer::bind(&args.metrics_api, source, Some(client)).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("windlass operator: {error}");
            let _ = stop_tx.send(true);
            return ExitCode::from(2);
        }
    };
    info!(address = %metrics_api.local_addr(), "external metrics API bound");
    health.set_metrics_api_serving(true);
    let api_health = health.clone();
    let metrics_api_task = tokio::spawn({
        let stop = stopped(stop_rx.clone());
        async move {
            if let Err(error) = metrics_api.run(stop).await {
                error!(error = %error, "the external metrics API stopped");
            }
            api_health.set_metrics_api_serving(false);
        }
    });
    let heartbeat_health = health.clone();
    let mut heartbeat_stop = stop_rx.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(HEARTBEAT_EVERY);
        loop {
            tokio::select! {
                _ = ticker.tick() => heartbeat_health.heartbeat(),
                _ = heartbeat_stop.wait_for(|stop| *stop) => return,
            }
        }
    });
    info!(namespaces = %args.scope.watch_namespace, "windlass operator started");

    stop_signal().await;
    info!("stopping");
    let _ = stop_tx.send(true);
    let joined = handles.join().await;
    let _ = metrics_api_task.await;
    let _ = elector_stop_tx.send(true);
    let _ = elector_task.await;
    if let Err(error) = joined {
        error!(error = %error, "controller task failed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
