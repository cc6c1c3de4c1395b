//! An in-memory Kubernetes API server for Windlass's controller tests.
//!
//! No kube-apiserver can run on the test machines, and fake clients lack watch streams and the
//! scale subresource. [`FakeApiServer`] serves the real HTTP API (plain HTTP, no auth) on a
//! loopback port, so the real `kube::Client`, kube-runtime's `watcher` / `reflector` /
//! `Controller`, and the real `windlass operator` binary (through
//! [`FakeApiServer::write_kubeconfig`]) run against it unchanged.
//!
//! # What it implements
//!
//! - **Resources**: core `v1` namespaces (cluster-scoped), pods, secrets, configmaps, events,
//!   services, serviceaccounts, limitranges; `apps/v1` deployments, statefulsets, replicasets
//!   (status + scale); `autoscaling/v2` horizontalpodautoscalers (status);
//!   `coordination.k8s.io/v1` leases; `events.k8s.io/v1` events; `keda.sh/v1alpha1`
//!   scaledobjects, scaledjobs, triggerauthentications and clustertriggerauthentications
//!   (cluster-scoped), all with status as in KEDA's CRDs; `authentication.k8s.io/v1`
//!   tokenreviews and `authorization.k8s.io/v1` subjectaccessreviews (create-only, answered by
//!   handlers the test installs); `apiextensions.k8s.io/v1` customresourcedefinitions: creating
//!   one serves its storage version (status and scale subresources included) at once, deleting
//!   it removes the resource and its objects. More with [`FakeApiServer::register_resource`],
//!   including a CRD-style `/scale`.
//! - **Discovery**: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/{g}`, `/apis/{g}/{v}`, and
//!   aggregated discovery (`apidiscovery.k8s.io/v2`) when the `Accept` header asks for it, so
//!   `Discovery::run()`, `run_aggregated()` and `pinned_kind` work.
//! - **Verbs**: get, list (label and field selectors, `limit`/`continue` over a consistent
//!   snapshot), watch, create, update, patch (merge, strategic, JSON, server-side apply),
//!   delete, deletecollection, on namespaced and cluster-wide paths, plus `/status` and
//!   `/scale` (get, update, patch). `dryRun=All` is honoured, and metadata-only requests
//!   (`Accept: …;as=PartialObjectMetadata[List]`) get `meta.k8s.io/v1` objects.
//! - **Consistency**: one global resourceVersion counter; every change is one history event;
//!   watches replay history strictly in order and turn selector transitions into ADDED /
//!   DELETED as the API server's watch cache does; stale `metadata.resourceVersion` → 409
//!   `Conflict`; a watch from before the retained history → an `ERROR` event with a 410
//!   `Expired` `Status` inside the 200 stream ([`FakeApiServer::compact`] forces that);
//!   `allowWatchBookmarks` gives periodic `BOOKMARK`s
//!   ([`FakeApiServer::set_bookmark_interval`]); `sendInitialEvents` (streaming lists) ends
//!   the initial ADDED events with the `k8s.io/initial-events-end` bookmark.
//! - **Object rules**: `generateName`, uid, creationTimestamp; `metadata.generation` starts at 1
//!   and bumps only when something outside `metadata` and `status` changes (for kinds that
//!   track it: workloads, HPAs, custom resources); the main endpoint of a kind with a status
//!   subresource ignores `status` and `/status` ignores everything else; no-op writes do not
//!   bump the resourceVersion or emit events; Deployment/StatefulSet/ReplicaSet
//!   `spec.replicas` defaults to 1; names must be DNS subdomains; namespaced objects need an
//!   existing, non-terminating namespace (`default`, `kube-system`, `kube-public` and
//!   `kube-node-lease` exist from the start; see [`FakeApiServer::require_namespaces`]).
//! - **Deletion**: with finalizers, DELETE sets `deletionTimestamp` (MODIFIED) and the object
//!   goes when an update removes the last finalizer; otherwise it goes at once (DELETED).
//!   Garbage collection runs synchronously within the request: objects whose every owner is
//!   gone are deleted (finalizers honoured), dangling owner references next to live owners are
//!   removed. Deleting a namespace deletes its contents and removes the namespace once empty.
//! - **Field ownership**: `metadata.managedFields` for every write, and server-side apply with
//!   conflicts, `force`, and removal of fields a manager stops applying; see the `fields`
//!   module docs for the exact rules.
//! - **Test hooks** on the handle: direct object access, a request log with counters, fault
//!   injection, review handlers, notify-based [`FakeApiServer::wait_until`], and a workload
//!   simulator ([`FakeApiServer::simulate_workloads`]).
//!
//! # What it simplifies
//!
//! - One version per resource, no conversion, no OpenAPI schema, no validation beyond names,
//!   namespaces and the rules above (a field of the wrong type is stored as sent).
//! - Strategic merge patch is a merge patch that merges keyed lists (items with `name`,
//!   `type`, `uid` or `containerPort`) item by item and honours `$patch: delete|replace` and
//!   `$deleteFromPrimitiveList`; lists of scalars are replaced (the real server merges
//!   `finalizers`).
//! - Server-side apply treats lists as atomic except lists of objects keyed as above and
//!   `metadata.finalizers` (a set); maps emptied by a removal are pruned; `managedFields` sent
//!   by clients are ignored (the server keeps its own).
//! - Foreground deletion behaves like background; `Orphan` strips the owner references first.
//! - Core `v1` and `events.k8s.io/v1` Events are separate stores (the real server shares one).
//! - A JSON patch `test` for `null` passes on a missing path, as on the real server.
//! - Pods of simulated Deployments are owned by the Deployment directly (no ReplicaSets);
//!   pods are never scheduled or run anything.
//! - `resourceVersionMatch=Exact` lists only work for the current resourceVersion (older ones
//!   answer 410); `fieldSelector` accepts any dotted path.
//! - Fault injection answers before the request is processed; note that kube's client retries
//!   429, 503 and 504 by itself.
//!
//! # Use from a test
//!
//! The server runs on its own thread and runtime: a test may block (wait for a child process,
//! use any runtime flavour) and the server keeps answering. Predicates given to
//! [`FakeApiServer::wait_until`] run under the server's lock and must not call the handle.
//!
//! ```no_run
//! # async fn t() -> Result<(), Box<dyn std::error::Error>> {
//! use fake_apiserver::FakeApiServer;
//! use std::time::Duration;
//!
//! let server = FakeApiServer::start().await?;
//! let client = server.client(); // a real kube::Client
//! let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> = kube::Api::namespaced(client, "default");
//! // ... run the code under test, then check the server's view:
//! server
//!     .wait_until(|v| v.get("v1", "ConfigMap", "default", "out").is_some(), Duration::from_secs(5))
//!     .await?;
//! // a separate process (the operator binary) loads this with KUBECONFIG=…
//! let kubeconfig = server.write_kubeconfig(std::path::Path::new("/tmp"))?;
//! # let _ = (cms, kubeconfig);
//! # Ok(()) }
//! ```

mod error;
mod fields;
mod hooks;
mod patch;
mod registry;
mod selector;
mod server;
mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

pub use error::ApiError;
pub use hooks::{RequestMatcher, RequestRecord, ReviewHandler};
pub use registry::{ResourceDef, ReviewKind, ScalePaths};

use hooks::Fault;
use server::Shared;
use store::{Deleted, Store};

/// Failures of the handle's own operations.
#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    /// Binding or inspecting the loopback listener failed.
    #[error("binding the fake API server's loopback listener: {0}")]
    Bind(#[source] std::io::Error),
    /// Writing the kubeconfig file failed.
    #[error("writing the kubeconfig {path}: {source}")]
    WriteKubeconfig {
        /// The file that could not be written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A direct object operation was refused as the API would refuse it.
    #[error("fake API server refused the operation: {0}")]
    Api(#[from] ApiError),
    /// [`FakeApiServer::wait_until`] ran out of time.
    #[error("condition not met within {0:?}")]
    Timeout(Duration),
}

/// A running fake API server; stops when dropped (or on [`FakeApiServer::shutdown`]).
pub struct FakeApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// Fires when the server thread has stopped.
    done: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl std::fmt::Debug for FakeApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeApiServer")
            .field("addr", &self.addr)
            .finish()
    }
}

/// A read-only view of the server's state, given to [`FakeApiServer::wait_until`] predicates.
/// It is taken under the server's lock: do not call the handle from inside a predicate.
pub struct View<'a> {
    store: &'a Store,
}

impl View<'_> {
    /// An object by `apiVersion`, kind or plural, namespace (`""` for cluster-scoped) and name.
    pub fn get(
        &self,
        api_version: &str,
        kind_or_plural: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let def = self.store.def(api_version, kind_or_plural).ok()?;
        self.store.get(&def, Some(namespace), name).ok()
    }

    /// Objects of a kind, in one namespace or all.
    pub fn list(
        &self,
        api_version: &str,
        kind_or_plural: &str,
        namespace: Option<&str>,
    ) -> Vec<Value> {
        match self.store.def(api_version, kind_or_plural) {
            Ok(def) => self.store.list(&def, namespace, &|_| true),
            Err(_) => Vec::new(),
        }
    }

    /// Requests so far with this verb, plural and subresource (`None` = main resource).
    pub fn count(&self, verb: &str, plural: &str, subresource: Option<&str>) -> usize {
        count_in(&self.store.log, verb, plural, subresource)
    }

    /// How many objects of a kind (in one namespace or all) satisfy `pred`, without copying
    /// them: cheap enough to run often over thousands of objects.
    pub fn count_objects(
        &self,
        api_version: &str,
        kind_or_plural: &str,
        namespace: Option<&str>,
        pred: impl Fn(&Value) -> bool,
    ) -> usize {
        match self.store.def(api_version, kind_or_plural) {
            Ok(def) => self.store.iter(&def, namespace).filter(|o| pred(o)).count(),
            Err(_) => 0,
        }
    }

    /// The request log.
    pub fn requests(&self) -> &[RequestRecord] {
        &self.store.log
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.store.rv
    }
}

fn count_in(log: &[RequestRecord], verb: &str, plural: &str, subresource: Option<&str>) -> usize {
    log.iter()
        .filter(|r| r.verb == verb && r.plural == plural && r.subresource.as_deref() == subresource)
        .count()
}

impl FakeApiServer {
    /// Binds 127.0.0.1:0 and serves until dropped. The server runs on its own thread and
    /// runtime, so it keeps answering while the test blocks (e.g. waiting for a child process)
    /// and whatever runtime flavour the test uses. Also installs rustls' ring provider as the
    /// process default (kube needs one, even for plain HTTP).
    pub async fn start() -> Result<Self, FakeError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(FakeError::Bind)?;
        listener.set_nonblocking(true).map_err(FakeError::Bind)?;
        let addr = listener.local_addr().map_err(FakeError::Bind)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(FakeError::Bind)?;
        let shared = Arc::new(Shared::new(addr.to_string()));
        let app = server::router(shared.clone());
        let mut stop = shared.shutdown.subscribe();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(format!("fake-apiserver-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::warn!("fake API server could not listen: {e}");
                            return;
                        }
                    };
                    let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                        let _ = stop.wait_for(|s| *s).await;
                    });
                    if let Err(e) = serve.await {
                        tracing::warn!("fake API server stopped with an error: {e}");
                    }
                });
                // connections still open (pooled by clients) are dropped here
                runtime.shutdown_timeout(Duration::from_millis(200));
                let _ = done_tx.send(());
            })
            .map_err(FakeError::Bind)?;
        Ok(Self {
            shared,
            addr,
            done: Some(done_rx),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kube config pointing at this server (namespace `default`, no auth).
    pub fn config(&self) -> kube::Config {
        let uri: http::Uri = self
            .url()
            .parse()
            .unwrap_or_else(|_| http::Uri::from_static("http://127.0.0.1"));
        kube::Config::new(uri)
    }

    /// A real `kube::Client` for this server.
    #[allow(
        clippy::expect_used,
        reason = "building a plain-HTTP client only fails without a crypto provider, which start() installs"
    )]
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config()).expect("kube client for the fake API server")
    }

    /// Writes `kubeconfig` into `dir` (cluster `fake`, plain-HTTP server, a user with no
    /// credentials, namespace `default`) for a separate process to load via `KUBECONFIG`.
    pub fn write_kubeconfig(&self, dir: &Path) -> Result<PathBuf, FakeError> {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\ncurrent-context: fake\nusers:\n- name: fake\n  user: {{}}\npreferences: {{}}\n",
            self.url()
        );
        std::fs::write(&path, text).map_err(|source| FakeError::WriteKubeconfig {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// Stops serving and waits (up to 5 s) for the server thread to finish.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(done) = self.done.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), done).await;
        }
    }

    // ------------------------------------------------------------- registry

    /// Serves another resource (like installing a CRD).
    pub fn register_resource(&self, def: ResourceDef) {
        self.shared.with(|s| {
            s.registry.insert(def);
            s.dirty = true;
        });
    }

    // -------------------------------------------------------------- objects

    /// An object by `apiVersion`, kind or plural, namespace (`""` for cluster-scoped) and name.
    pub fn get(
        &self,
        api_version: &str,
        kind_or_plural: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        self.shared
            .with(|s| View { store: s }.get(api_version, kind_or_plural, namespace, name))
    }

    /// Objects of a kind, in one namespace or all.
    pub fn list(
        &self,
        api_version: &str,
        kind_or_plural: &str,
        namespace: Option<&str>,
    ) -> Vec<Value> {
        self.shared
            .with(|s| View { store: s }.list(api_version, kind_or_plural, namespace))
    }

    /// Creates or replaces an object as given (status included), bypassing preconditions,
    /// subresource rules and namespace checks; uid, creationTimestamp and generation are
    /// filled in or kept; watchers see ADDED or MODIFIED.
    pub fn put_object(&self, obj: Value) -> Result<Value, FakeError> {
        Ok(self.shared.with(|s| s.put_object(obj))?)
    }

    /// Deletes like the API does (finalizers, garbage collection), without preconditions.
    /// Returns `true` when the object is gone, `false` when it waits for finalizers.
    pub fn delete_object(
        &self,
        api_version: &str,
        kind_or_plural: &str,
        namespace: &str,
        name: &str,
    ) -> Result<bool, FakeError> {
        let out = self.shared.with(|s| {
            let def = s.def(api_version, kind_or_plural)?;
            s.delete_hook(&def, Some(namespace), name)
        })?;
        Ok(matches!(out, Deleted::Gone(_)))
    }

    /// Creates a namespace unless it exists.
    pub fn create_namespace(&self, name: &str) -> Result<Value, FakeError> {
        Ok(self.shared.with(|s| s.ensure_namespace(name))?)
    }

    /// Whether namespaced objects need an existing namespace (default true, as on a cluster).
    pub fn require_namespaces(&self, on: bool) {
        self.shared.with(|s| s.require_namespaces = on);
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.with(|s| s.rv)
    }

    /// Compacts history like etcd behind the watch cache: a watch started afterwards from any
    /// earlier resourceVersion gets an ERROR event with 410 Expired; running watches go on.
    pub fn compact(&self) {
        self.shared.with(Store::compact);
    }

    /// How many events history keeps (default 100 000); older ones are compacted, and a running
    /// watch that has not caught up with them gets 410 Expired.
    pub fn set_history_limit(&self, events: usize) {
        self.shared.with(|s| s.history_limit = events.max(1));
    }

    /// How often watches that allow bookmarks get one (default 5 s).
    pub fn set_bookmark_interval(&self, interval: Duration) {
        self.shared.with(|s| {
            s.bookmark_interval = interval;
            s.dirty = true;
        });
    }

    /// Turns the workload simulator on or off. When on, after every change each Deployment
    /// and StatefulSet gets `spec.replicas` Running, Ready pods (labels from the selector's
    /// `matchLabels` and the template) owned by it, and `status.replicas`, `readyReplicas`,
    /// `availableReplicas`, `updatedReplicas` (and `currentReplicas` for StatefulSets) and
    /// `observedGeneration` mirror it.
    pub fn simulate_workloads(&self, on: bool) {
        self.shared.with(|s| {
            s.simulate_workloads = on;
            s.settle();
        });
    }

    // ------------------------------------------------------ requests, faults

    /// Every request so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.with(|s| s.log.clone())
    }

    /// Requests so far with this verb, plural and subresource (`None` = main resource).
    pub fn count(&self, verb: &str, plural: &str, subresource: Option<&str>) -> usize {
        self.shared
            .with(|s| count_in(&s.log, verb, plural, subresource))
    }

    /// Every request so far, emptying the log in the same step (so none falls between reading
    /// and clearing): for measuring phases of a long run without copying the whole log.
    pub fn take_requests(&self) -> Vec<RequestRecord> {
        self.shared.with(|s| std::mem::take(&mut s.log))
    }

    /// Runs `f` on a read-only view of the state, once, under the server's lock (do not call
    /// the handle from inside `f`). For polling a condition at a chosen rate where
    /// [`FakeApiServer::wait_until`], which re-checks after every change, would be too costly.
    pub fn inspect<R>(&self, f: impl FnOnce(&View<'_>) -> R) -> R {
        self.shared.with(|s| f(&View { store: s }))
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.shared.with(|s| s.log.clear());
    }

    /// Makes the next `times` requests matching `matcher` fail with `code` (a `Status` with
    /// the usual reason for that code) before they are processed.
    pub fn fail_requests(&self, matcher: RequestMatcher, code: u16, times: usize) {
        self.shared.with(|s| {
            s.faults.push(Fault {
                matcher,
                code,
                remaining: times,
            });
        });
    }

    /// Answers TokenReviews: gets the `spec`, returns the `status`.
    pub fn set_token_review_handler(
        &self,
        handler: impl Fn(&Value) -> Value + Send + Sync + 'static,
    ) {
        self.shared
            .with(|s| s.token_review = Some(Arc::new(handler)));
    }

    /// Answers SubjectAccessReviews: gets the `spec`, returns the `status`.
    pub fn set_subject_access_review_handler(
        &self,
        handler: impl Fn(&Value) -> Value + Send + Sync + 'static,
    ) {
        self.shared
            .with(|s| s.access_review = Some(Arc::new(handler)));
    }

    // ---------------------------------------------------------------- waits

    /// Waits until `pred` holds, re-checking after every change to objects or the request log.
    pub async fn wait_until(
        &self,
        mut pred: impl FnMut(&View<'_>) -> bool,
        timeout: Duration,
    ) -> Result<(), FakeError> {
        self.wait_for(|v| pred(v).then_some(()), timeout).await
    }

    /// Waits until `f` returns `Some`, re-checking after every change; returns its value.
    pub async fn wait_for<T>(
        &self,
        mut f: impl FnMut(&View<'_>) -> Option<T>,
        timeout: Duration,
    ) -> Result<T, FakeError> {
        let mut changes = self.shared.changes.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changes.borrow_and_update();
            if let Some(v) = self.shared.with(|s| f(&View { store: s })) {
                return Ok(v);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                _ => return Err(FakeError::Timeout(timeout)),
            }
        }
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        // the server thread finishes by itself once its connections see the signal
        self.shared.shutdown.send_replace(true);
    }
}
