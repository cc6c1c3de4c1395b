//! The one status writer: every change to a ScaledObject's status — from reconcile or from its
//! scale loop — goes through [`StatusWriter::update`], which applies the whole status with
//! server-side apply under one field manager, and only when it differs from what was last
//! written. A steady state therefore costs no status writes (KEDA patches every active object's
//! status on every poll).
//!
//! Updates of one object are serialised by a per-object lock, so reconcile and the loop never
//! interleave partial views. The last written status is kept per object; the first update of an
//! object (or the first after [`StatusWriter::forget_all`], called when this replica becomes the
//! leader) starts from the status the API server holds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;

use crate::crd::{Conditions, ScaledObject, ScaledObjectStatus};

/// The field manager of every write Windlass makes.
pub const FIELD_MANAGER: &str = "windlass-operator";

type Cell = Arc<tokio::sync::Mutex<Option<ScaledObjectStatus>>>;

/// Serialises and de-duplicates status writes.
#[derive(Clone)]
pub struct StatusWriter {
    client: kube::Client,
    cells: Arc<Mutex<HashMap<ObjectRef<ScaledObject>, Cell>>>,
    writes: Arc<AtomicU64>,
}

impl std::fmt::Debug for StatusWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusWriter")
            .field("writes", &self.writes())
            .finish_non_exhaustive()
    }
}

impl StatusWriter {
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            cells: Arc::default(),
            writes: Arc::default(),
        }
    }

    /// Status writes made so far.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    fn cell(&self, key: &ObjectRef<ScaledObject>) -> Cell {
        self.cells
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone()
    }

    /// Applies `change` to the object's status and writes the result if it differs from the
    /// last written one. Returns the status now in effect and whether it was written.
    pub async fn update(
        &self,
        so: &ScaledObject,
        change: impl FnOnce(&mut ScaledObjectStatus),
    ) -> Result<(ScaledObjectStatus, bool), kube::Error> {
        let key = ObjectRef::from_obj(so);
        let cell = self.cell(&key);
        let mut last = cell.lock().await;
        let base = last
            .clone()
            .unwrap_or_else(|| so.status.clone().unwrap_or_default());
        let mut next = base.clone();
        if !next.conditions.are_initialized() {
            // KEDA's first reconcile: Ready, Active, Fallback Unknown; Paused False.
            let mut initialized = Conditions::initialized();
            for condition in next.conditions.iter() {
                initialized.set(
                    &condition.type_,
                    condition.status,
                    &condition.reason,
                    &condition.message,
                );
            }
            next.conditions = initialized;
        }
        change(&mut next);
        if next == base {
            *last = Some(next.clone());
            return Ok((next, false));
        }
        let namespace = so.metadata.namespace.as_deref().unwrap_or("default");
        let name = so.metadata.name.as_deref().unwrap_or_default();
        let api: Api<ScaledObject> = Api::namespaced(self.client.clone(), namespace);
        let patch = serde_json::json!({
            "apiVersion": crate::crd::API_VERSION,
            "kind": "ScaledObject",
            "status": next,
        });
        api.patch_status(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        *last = Some(next.clone());
        Ok((next, true))
    }

    /// The status in effect: the last written one, else the API server's.
    pub async fn current(&self, so: &ScaledObject) -> ScaledObjectStatus {
        let cell = self.cell(&ObjectRef::from_obj(so));
        let last = cell.lock().await.clone();
        last.unwrap_or_else(|| so.status.clone().unwrap_or_default())
    }

    /// Drops what is known of one object (it was deleted).
    pub fn forget(&self, key: &ObjectRef<ScaledObject>) {
        self.cells
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }

    /// Drops what is known of every object, so the next update starts from the API's view
    /// (another replica may have written while this one was not the leader).
    pub fn forget_all(&self) {
        self.cells
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}
