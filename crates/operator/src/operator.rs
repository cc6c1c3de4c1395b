//! `windlass operator`: the controller, the scale loops and the external metrics API in one
//! process. Every replica watches, samples and serves metrics; only the lease holder scales,
//! manages HPAs and writes status.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tokio::sync::watch;
use tracing::{error, info};

use crate::controller::{self, ControllerParts, Settings};

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

/// Runs `windlass operator` until it is asked to stop.
pub async fn run(args: &OperatorArgs) -> ExitCode {
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
    let mut settings = ::scalers::context::Settings::from_env();
    settings.default_timeout = Duration::from_millis(args.scope.http_default_timeout.max(1));
    let scaler_context = ::scalers::ScalerContext::new(settings);
    let (_leader_tx, leader) = watch::channel(true);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut stop_for_controller = stop_rx.clone();
    let handles = controller::run(
        ControllerParts {
            client,
            settings: args.scope.settings(),
            scaler_context,
            leader,
            metrics: None,
            synced: None,
        },
        async move {
            let _ = stop_for_controller.wait_for(|stop| *stop).await;
        },
    )
    .await;
    info!(namespaces = %args.scope.watch_namespace, "windlass operator started");
    stop_signal().await;
    info!("stopping");
    let _ = stop_tx.send(true);
    if let Err(error) = handles.join().await {
        error!(error = %error, "controller task failed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
