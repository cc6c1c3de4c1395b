//! The ScaledObject controller: reconcile (finalizer, pause, target, HPA, status) and the
//! per-object scale loops, run on every replica with side effects gated on the lease.
//!
//! - [`reconcile`]: the kube-runtime reconcile function and its error policy.
//! - [`scale_loop`]: one loop per ScaledObject (sample → decide → scale → status).
//! - [`evaluate`]: one evaluation of an object's triggers (fallback, modifiers, activity).
//! - [`runtime`]: what a replica keeps per object, and the metrics API's warm source.
//! - [`scalers`], [`lookup`], [`target`]: building scalers from the cluster, reading Secrets
//!   and the target, `/scale`.
//! - [`hpa`], [`status`], [`events`]: the HPA Windlass owns, the one status writer, events.

pub mod evaluate;
pub mod events;
pub mod hpa;
pub mod lookup;
pub mod reconcile;
pub mod runtime;
pub mod scale_loop;
pub mod scalers;
pub mod status;
pub mod target;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ::scalers::ScalerContext;
use futures::StreamExt;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::Api;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use scaler_core::registry::ScalerRegistry;
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::crd::ScaledObject;
use crate::resolve::ResolveOptions;
use evaluate::Evaluation;
use runtime::Runtimes;
use status::StatusWriter;
use target::TargetResolver;

/// What the controller reports to its observer (Prometheus metrics in the operator).
pub trait Observer: Send + Sync + 'static {
    /// One evaluation of a ScaledObject's triggers.
    fn record_evaluation(&self, so: &ScaledObject, evaluation: &Evaluation);
    /// A `/scale` write by the loop.
    fn record_scale(&self, so: &ScaledObject, from: i32, to: i32);
    /// One reconcile and its error category, if it failed.
    fn record_reconcile(&self, so: &ScaledObject, duration: Duration, error: Option<&'static str>);
    /// An HPA create or update.
    fn record_hpa_write(&self, so: &ScaledObject, operation: &'static str);
    /// Whether the object is paused.
    fn set_paused(&self, so: &ScaledObject, paused: bool);
    /// The object is gone: drop its series.
    fn forget(&self, so: &ScaledObject);
}

/// Where the controller looks and how it identifies itself.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Namespaces to watch; empty = all.
    pub namespaces: Vec<String>,
    /// Label selector for ScaledObjects (`WATCH_LABEL_SELECTOR`).
    pub label_selector: Option<String>,
    /// Where ClusterTriggerAuthentications' Secrets live.
    pub cluster_object_namespace: String,
    /// Reconciles run at once.
    pub max_concurrent_reconciles: u16,
    /// This replica's name, for events.
    pub instance: Option<String>,
}

/// Everything reconcile and the loops share; built once.
pub struct Context {
    pub client: kube::Client,
    pub settings: Settings,
    pub registry: ScalerRegistry<ScalerContext>,
    pub scaler_context: ScalerContext,
    pub resolve_options: ResolveOptions,
    pub resolver: TargetResolver,
    pub runtimes: Runtimes,
    pub status: StatusWriter,
    pub events: events::EventSink,
    pub leader: watch::Receiver<bool>,
    pub scaled_objects: Store<ScaledObject>,
    pub hpas: Store<HorizontalPodAutoscaler>,
    pub metrics: Option<Arc<dyn Observer>>,
    pub started: Instant,
    /// The wall-clock start, to tell objects that existed before it.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Objects whose push source changed its metric specs: reconciled at once.
    pub spec_changed: futures::channel::mpsc::UnboundedSender<ObjectRef<ScaledObject>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("settings", &self.settings)
            .field("objects", &self.runtimes.len())
            .finish_non_exhaustive()
    }
}

impl Context {
    /// Whether this replica holds the lease (only the leader writes).
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    pub fn build_inputs(&self) -> scalers::BuildInputs<'_> {
        scalers::BuildInputs {
            client: &self.client,
            resolver: &self.resolver,
            registry: &self.registry,
            context: &self.scaler_context,
            options: &self.resolve_options,
        }
    }
}

/// What [`run`] needs from the process around it.
pub struct ControllerParts {
    pub client: kube::Client,
    pub settings: Settings,
    pub scaler_context: ScalerContext,
    pub leader: watch::Receiver<bool>,
    pub metrics: Option<Arc<dyn Observer>>,
    /// Told when the ScaledObject watch has listed everything once (readiness).
    pub synced: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The controller's handles for the rest of the process.
#[derive(Debug)]
pub struct ControllerHandles {
    pub runtimes: Runtimes,
    pub status: StatusWriter,
    task: tokio::task::JoinHandle<()>,
}

impl ControllerHandles {
    /// Waits for the controller to stop (after the shutdown future resolved).
    pub async fn join(self) -> Result<(), tokio::task::JoinError> {
        self.task.await
    }
}

/// Reconciles only when something KEDA reacts to changed: the spec (generation), labels,
/// annotations (pause, force-activation), finalizers or the deletion mark — not our own status
/// writes.
fn meaningful_change(so: &ScaledObject) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    so.metadata.generation.hash(&mut hasher);
    so.metadata.labels.hash(&mut hasher);
    so.metadata.annotations.hash(&mut hasher);
    so.metadata.finalizers.hash(&mut hasher);
    so.metadata
        .deletion_timestamp
        .as_ref()
        .map(|t| t.0.as_second())
        .hash(&mut hasher);
    Some(hasher.finish())
}

fn hpa_change(hpa: &HorizontalPodAutoscaler) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    hpa.metadata.labels.hash(&mut hasher);
    hpa.metadata.annotations.hash(&mut hasher);
    serde_json::to_string(&hpa.spec)
        .unwrap_or_default()
        .hash(&mut hasher);
    Some(hasher.finish())
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(
    parts: ControllerParts,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> ControllerHandles {
    let ControllerParts {
        client,
        settings,
        scaler_context,
        leader,
        metrics,
        synced,
    } = parts;
    let scaled_objects_api: Api<ScaledObject> = match settings.namespaces.as_slice() {
        [single] => Api::namespaced(client.clone(), single),
        _ => Api::all(client.clone()),
    };
    let mut watch_config = watcher::Config::default();
    if let Some(selector) = settings.label_selector.as_deref().filter(|s| !s.is_empty()) {
        watch_config = watch_config.labels(selector);
    }
    let namespaces = settings.namespaces.clone();
    let in_scope = move |so: &ScaledObject| {
        namespaces.len() <= 1
            || so
                .metadata
                .namespace
                .as_ref()
                .is_some_and(|ns| namespaces.contains(ns))
    };

    let (so_store, so_writer) = reflector::store();
    let mut synced = synced;
    let so_stream = reflector::reflector(
        so_writer,
        // Nothing reads managedFields; at 10,000 objects they were half the memory.
        watcher(scaled_objects_api.clone(), watch_config)
            .modify(|so: &mut ScaledObject| so.metadata.managed_fields = None),
    )
    .default_backoff()
    .inspect(move |event| {
        if matches!(event, Ok(watcher::Event::InitDone))
            && let Some(sender) = synced.take()
        {
            let _ = sender.send(());
        }
    })
    .applied_objects()
    .filter(move |so| futures::future::ready(so.as_ref().map_or(true, &in_scope)))
    .predicate_filter(meaningful_change, Default::default());

    let hpas_api: Api<HorizontalPodAutoscaler> = match settings.namespaces.as_slice() {
        [single] => Api::namespaced(client.clone(), single),
        _ => Api::all(client.clone()),
    };
    let (hpa_store, hpa_writer) = reflector::store();
    let hpa_watch = watcher::Config::default().labels("app.kubernetes.io/managed-by=keda-operator");
    let hpa_owners = reflector::reflector(
        hpa_writer,
        watcher(hpas_api, hpa_watch)
            .modify(|hpa: &mut HorizontalPodAutoscaler| hpa.metadata.managed_fields = None),
    )
    .default_backoff()
    .applied_objects()
    .predicate_filter(hpa_change, Default::default())
    .filter_map(|hpa| async move {
        let hpa = hpa.ok()?;
        let owner = hpa
            .metadata
            .owner_references
            .as_ref()?
            .iter()
            .find(|o| o.kind == "ScaledObject" && o.controller == Some(true))?
            .clone();
        Some(ObjectRef::<ScaledObject>::new(&owner.name).within(hpa.metadata.namespace.as_deref()?))
    });

    // Becoming the leader: forget cached status views and reconcile everything.
    let mut leader_changes = leader.clone();
    let (gained_tx, gained_rx) = futures::channel::mpsc::unbounded::<()>();
    let status = StatusWriter::new(client.clone());
    let status_for_leader = status.clone();
    tokio::spawn(async move {
        let mut was = *leader_changes.borrow_and_update();
        while leader_changes.changed().await.is_ok() {
            let now = *leader_changes.borrow_and_update();
            if now && !was {
                status_for_leader.forget_all();
                if gained_tx.unbounded_send(()).is_err() {
                    return;
                }
            }
            was = now;
        }
    });

    let (spec_changed, spec_changes) = futures::channel::mpsc::unbounded();
    let runtimes = Runtimes::default();
    let registry = ::scalers::builtin_registry();
    let context = Arc::new(Context {
        events: events::EventSink::new(client.clone(), settings.instance.clone()),
        client: client.clone(),
        resolve_options: ResolveOptions {
            cluster_object_namespace: settings.cluster_object_namespace.clone(),
        },
        settings: settings.clone(),
        registry,
        scaler_context,
        resolver: TargetResolver::default(),
        runtimes: runtimes.clone(),
        status: status.clone(),
        leader,
        scaled_objects: so_store.clone(),
        hpas: hpa_store,
        metrics,
        started: Instant::now(),
        started_at: chrono::Utc::now(),
        spec_changed,
    });
    let controller = Controller::for_stream(so_stream, so_store)
        .with_config(ControllerConfig::default().concurrency(settings.max_concurrent_reconciles))
        .reconcile_on(hpa_owners)
        .reconcile_on(spec_changes)
        .reconcile_all_on(gained_rx)
        .graceful_shutdown_on(shutdown);
    let task = tokio::spawn(async move {
        controller
            .run(reconcile::reconcile, reconcile::error_policy, context)
            .for_each(|result| async move {
                match result {
                    Ok((object, _)) => debug!(object = %object, "reconciled"),
                    Err(error) => warn!(error = %error, "reconcile failed"),
                }
            })
            .await;
    });
    ControllerHandles {
        runtimes,
        status,
        task,
    }
}
