//! The object store: one global resourceVersion counter, the objects, the event history that
//! watches replay, and every write rule (preconditions, subresources, generation, finalizers,
//! garbage collection, namespace deletion, the workload simulator).
//!
//! All state sits behind one mutex in [`crate::server::Shared`]; nothing here awaits, so each
//! request's writes (and the cascades they trigger) commit atomically and in order.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::fields::{self, Scope, Writer};
use crate::hooks::{Fault, RequestRecord, ReviewHandler};
use crate::patch;
use crate::registry::{Registry, ResKey, ResourceDef, ReviewKind};
use crate::selector::label_selector_object_to_string;

/// Watch event types stored in history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventKind {
    Added,
    Modified,
    Deleted,
}

/// One committed change.
#[derive(Clone, Debug)]
pub(crate) struct HistoryEvent {
    pub rv: u64,
    pub key: ResKey,
    pub namespace: String,
    pub kind: EventKind,
    pub object: Arc<Value>,
    pub prev: Option<Arc<Value>>,
}

/// Which endpoint a write came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sub {
    Main,
    Status,
    Scale,
}

impl Sub {
    fn name(self) -> Option<&'static str> {
        match self {
            Sub::Main => None,
            Sub::Status => Some("status"),
            Sub::Scale => Some("scale"),
        }
    }

    fn scope(self, def: &ResourceDef) -> Scope {
        match self {
            Sub::Status => Scope::StatusOnly,
            _ if def.status => Scope::MainWithoutStatus,
            _ => Scope::All,
        }
    }
}

/// How the resourceVersion precondition applies to a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Precondition {
    /// PUT: a given resourceVersion must match; none is allowed only for some kinds.
    Put,
    /// PATCH: a resourceVersion the patch sets must match.
    Patch,
    /// Internal and test-hook writes.
    None,
}

/// Whether the candidate already carries its managedFields (apply) or the write is an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ownership {
    Update,
    Applied,
}

/// The writer of a request.
#[derive(Clone, Debug)]
pub(crate) struct WriteCtx {
    pub manager: String,
    pub dry_run: bool,
}

impl WriteCtx {
    pub fn internal(manager: &str) -> Self {
        Self {
            manager: manager.into(),
            dry_run: false,
        }
    }
}

/// A parsed patch body.
#[derive(Clone, Debug)]
pub(crate) enum PatchBody {
    Merge(Value),
    Strategic(Value),
    Json(Value),
    Apply { config: Value, force: bool },
}

/// Options of a DELETE.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeleteOpts {
    pub propagation: Option<String>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

/// What a DELETE did.
#[derive(Clone, Debug)]
pub(crate) enum Deleted {
    /// The object is gone; its last state.
    Gone(Value),
    /// The object waits for finalizers; its current state.
    Pending(Value),
}

const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
const SIMULATOR: &str = "fake-workload-simulator";
const GC: &str = "garbage-collector";

pub(crate) struct Store {
    pub registry: Registry,
    objects: HashMap<ResKey, BTreeMap<(String, String), Value>>,
    pub rv: u64,
    history: VecDeque<HistoryEvent>,
    /// New watches must start at or after this resourceVersion.
    pub compacted_rv: u64,
    /// History events up to this resourceVersion are gone.
    history_floor: u64,
    pub history_limit: usize,
    rng: u64,
    pub simulate_workloads: bool,
    pub require_namespaces: bool,
    pub bookmark_interval: Duration,
    list_pages: BTreeMap<u64, (u64, Vec<Value>)>,
    next_page: u64,
    pub log: Vec<RequestRecord>,
    pub faults: Vec<Fault>,
    pub token_review: Option<ReviewHandler>,
    pub access_review: Option<ReviewHandler>,
    /// Set by every change; the server turns it into a notification.
    pub dirty: bool,
    settling: bool,
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let Value::Object(m) = obj else {
        unreachable!("just made an object")
    };
    let md = m
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !md.is_object() {
        *md = Value::Object(Map::new());
    }
    match md {
        Value::Object(md) => md,
        _ => unreachable!("just made an object"),
    }
}

fn meta_str<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    meta(obj).and_then(|m| m.get(key)).and_then(Value::as_str)
}

pub(crate) fn resource_version(obj: &Value) -> Option<&str> {
    meta_str(obj, "resourceVersion").filter(|s| !s.is_empty())
}

fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn is_deleting(obj: &Value) -> bool {
    meta_str(obj, "deletionTimestamp").is_some()
}

fn owner_uids(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// ObjectMeta is a typed struct on the real server: nulls and empty `omitempty` collections do
/// not survive storage (an emptied finalizer list disappears).
fn normalize_metadata(obj: &mut Value) {
    let md = meta_mut(obj);
    md.retain(|_, v| match v {
        Value::Null => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::String(s) => !s.is_empty(),
        _ => true,
    });
}

/// Everything that defines "the spec" for generation purposes.
fn spec_part(obj: &Value) -> Value {
    let mut m = obj.as_object().cloned().unwrap_or_default();
    for k in ["metadata", "status", "apiVersion", "kind"] {
        m.remove(k);
    }
    Value::Object(m)
}

/// The object as compared for no-op detection: no resourceVersion, no managedFields times.
fn comparable(obj: &Value) -> Value {
    let mut o = obj.clone();
    let md = meta_mut(&mut o);
    md.remove("resourceVersion");
    if let Some(Value::Array(entries)) = md.get_mut("managedFields") {
        for e in entries {
            if let Some(e) = e.as_object_mut() {
                e.remove("time");
            }
        }
    }
    o
}

/// Reads a CRD-style dotted path (`.spec.replicas`).
pub(crate) fn get_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.trim_start_matches('.')
        .split('.')
        .try_fold(obj, |cur, seg| cur.get(seg))
}

fn set_path(obj: &mut Value, path: &str, value: Value) {
    let segs: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    let mut cur = obj;
    for (i, seg) in segs.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(m) = cur else { return };
        if i + 1 == segs.len() {
            m.insert((*seg).to_string(), value);
            return;
        }
        cur = m
            .entry((*seg).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// Builds `{spec: {replicas: n}}` for a dotted path.
fn nested(path: &str, value: Value) -> Value {
    let mut v = Value::Object(Map::new());
    set_path(&mut v, path, value);
    v
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

impl Store {
    pub fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        let mut s = Self {
            registry: Registry::builtin(),
            objects: HashMap::new(),
            rv: 0,
            history: VecDeque::new(),
            compacted_rv: 0,
            history_floor: 0,
            history_limit: 100_000,
            rng: seed | 1,
            simulate_workloads: false,
            require_namespaces: true,
            bookmark_interval: Duration::from_secs(5),
            list_pages: BTreeMap::new(),
            next_page: 0,
            log: Vec::new(),
            faults: Vec::new(),
            token_review: None,
            access_review: None,
            dirty: false,
            settling: false,
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            // the namespace resource is built in and the store is empty: cannot fail
            let _ = s.ensure_namespace(ns);
        }
        s
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*: names and uids only need to be unique, not unpredictable
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn new_uid(&mut self) -> String {
        let a = self.next_rand();
        let b = self.next_rand();
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0xfff,
            b & 0xffff_ffff_ffff
        )
    }

    fn random_suffix(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| {
                let i = (self.next_rand() % NAME_ALPHABET.len() as u64) as usize;
                NAME_ALPHABET[i] as char
            })
            .collect()
    }

    pub fn def(&self, api_version: &str, kind_or_plural: &str) -> Result<ResourceDef, ApiError> {
        self.registry
            .by_api_version(api_version, kind_or_plural)
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "NotFound",
                    format!("the server could not find the requested resource ({api_version} {kind_or_plural})"),
                )
            })
    }

    fn ns_key(def: &ResourceDef, ns: Option<&str>) -> String {
        if def.namespaced {
            ns.unwrap_or_default().to_string()
        } else {
            String::new()
        }
    }

    // ---------------------------------------------------------------- reads

    pub fn get(&self, def: &ResourceDef, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        self.lookup(def, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(def, name))
    }

    fn lookup(&self, def: &ResourceDef, ns: Option<&str>, name: &str) -> Option<&Value> {
        self.objects
            .get(&ResKey::of(def))
            .and_then(|m| m.get(&(Self::ns_key(def, ns), name.to_string())))
    }

    /// Objects of a resource, optionally in one namespace, filtered.
    pub fn list(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        filter: &dyn Fn(&Value) -> bool,
    ) -> Vec<Value> {
        self.objects
            .get(&ResKey::of(def))
            .map(|m| {
                m.iter()
                    .filter(|((ons, _), _)| !def.namespaced || ns.is_none_or(|n| n == ons))
                    .map(|(_, v)| v)
                    .filter(|v| filter(v))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Objects of a resource, optionally in one namespace, by reference (no copies: for
    /// inspections that run often over many objects).
    pub fn iter<'s>(
        &'s self,
        def: &ResourceDef,
        ns: Option<&'s str>,
    ) -> impl Iterator<Item = &'s Value> + 's {
        let namespaced = def.namespaced;
        self.objects
            .get(&ResKey::of(def))
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(move |((ons, _), _)| !namespaced || ns.is_none_or(|n| n == ons))
            .map(|(_, v)| v)
    }

    /// Stores the rest of a paginated list; returns the continue token.
    pub fn save_pages(&mut self, rv: u64, rest: Vec<Value>) -> String {
        self.next_page += 1;
        self.list_pages.insert(self.next_page, (rv, rest));
        while self.list_pages.len() > 64 {
            self.list_pages.pop_first();
        }
        format!("fake-continue-{}", self.next_page)
    }

    /// The rest of a paginated list, as saved under `token`.
    pub fn take_pages(&mut self, token: &str) -> Result<(u64, Vec<Value>), ApiError> {
        token
            .strip_prefix("fake-continue-")
            .and_then(|n| n.parse::<u64>().ok())
            .and_then(|n| self.list_pages.remove(&n))
            .ok_or_else(|| {
                ApiError::expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                )
            })
    }

    /// History events for `key` after `cursor`, or `Err(oldest kept)` if some are gone.
    pub fn events_since(&self, key: &ResKey, cursor: u64) -> Result<Vec<HistoryEvent>, u64> {
        if cursor < self.history_floor {
            return Err(self.history_floor);
        }
        let start = self.history.partition_point(|e| e.rv <= cursor);
        Ok(self
            .history
            .iter()
            .skip(start)
            .filter(|e| &e.key == key)
            .cloned()
            .collect())
    }

    /// Like etcd compaction behind the API server's watch cache: watches started from any
    /// earlier resourceVersion get 410 Expired; running watches go on.
    pub fn compact(&mut self) {
        self.compacted_rv = self.rv;
        self.dirty = true;
    }

    // --------------------------------------------------------------- commits

    fn commit_put(
        &mut self,
        def: &ResourceDef,
        mut obj: Value,
        kind: EventKind,
        prev: Option<Value>,
    ) -> Value {
        normalize_metadata(&mut obj);
        if is_crd(def) {
            self.register_crd(&obj);
        }
        self.rv += 1;
        meta_mut(&mut obj).insert("resourceVersion".into(), Value::String(self.rv.to_string()));
        let ns = meta_str(&obj, "namespace").unwrap_or_default().to_string();
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let key = ResKey::of(def);
        self.objects
            .entry(key.clone())
            .or_default()
            .insert((ns.clone(), name), obj.clone());
        self.push_history(HistoryEvent {
            rv: self.rv,
            key,
            namespace: ns,
            kind,
            object: Arc::new(obj.clone()),
            prev: prev.map(Arc::new),
        });
        obj
    }

    /// Removes an object for good (its final state is `last`), then lets garbage collection and
    /// namespace deletion follow.
    fn commit_remove(&mut self, def: &ResourceDef, mut last: Value) -> Value {
        let ns = meta_str(&last, "namespace").unwrap_or_default().to_string();
        let name = meta_str(&last, "name").unwrap_or_default().to_string();
        let key = ResKey::of(def);
        let prev = self
            .objects
            .get_mut(&key)
            .and_then(|m| m.remove(&(ns.clone(), name)));
        self.rv += 1;
        meta_mut(&mut last).insert("resourceVersion".into(), Value::String(self.rv.to_string()));
        self.push_history(HistoryEvent {
            rv: self.rv,
            key,
            namespace: ns.clone(),
            kind: EventKind::Deleted,
            object: Arc::new(last.clone()),
            prev: prev.map(Arc::new),
        });
        if let Some(uid) = meta_str(&last, "uid") {
            let uid = uid.to_string();
            self.collect_garbage(&uid);
        }
        if is_crd(def) {
            self.unregister_crd(&last);
        } else if def.group.is_empty() && def.plural == "namespaces" {
            let name = meta_str(&last, "name").unwrap_or_default().to_string();
            self.delete_namespace_contents(&name);
        } else if def.namespaced {
            self.maybe_finish_namespace(&ns);
        }
        last
    }

    fn push_history(&mut self, ev: HistoryEvent) {
        self.history.push_back(ev);
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.history_floor = old.rv;
                self.compacted_rv = self.compacted_rv.max(old.rv);
            }
        }
        self.dirty = true;
    }

    // --------------------------------------------------------------- create

    /// POST. `check_namespace` is off for test hooks; `applied` keeps the body's managedFields.
    pub fn create(
        &mut self,
        def: &ResourceDef,
        ns: Option<&str>,
        body: Value,
        ctx: &WriteCtx,
    ) -> Result<Value, ApiError> {
        self.create_inner(def, ns, body, ctx, Ownership::Update, true)
    }

    fn create_inner(
        &mut self,
        def: &ResourceDef,
        ns: Option<&str>,
        mut body: Value,
        ctx: &WriteCtx,
        ownership: Ownership,
        check_namespace: bool,
    ) -> Result<Value, ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        self.check_type_meta(def, &body)?;
        if let Some(review) = def.review {
            return Ok(self.review(review, body));
        }
        let api_version = def.api_version();
        if let Some(m) = body.as_object_mut() {
            m.insert("apiVersion".into(), Value::String(api_version.clone()));
            m.insert("kind".into(), Value::String(def.kind.clone()));
        }
        let name = match meta_str(&body, "name").filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => match meta_str(&body, "generateName").filter(|n| !n.is_empty()) {
                Some(prefix) => {
                    let prefix = prefix.to_string();
                    format!("{prefix}{}", self.random_suffix(5))
                }
                None => {
                    return Err(ApiError::invalid(
                        def,
                        "",
                        "metadata.name: Required value: name or generateName is required",
                    ));
                }
            },
        };
        if !valid_name(&name) {
            return Err(ApiError::invalid(
                def,
                &name,
                &format!(
                    "metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
                ),
            ));
        }
        let namespace = if def.namespaced {
            let url_ns = ns.unwrap_or_default();
            match meta_str(&body, "namespace").filter(|n| !n.is_empty()) {
                Some(b) if !url_ns.is_empty() && b != url_ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                Some(b) if url_ns.is_empty() => b.to_string(),
                _ => url_ns.to_string(),
            }
        } else {
            String::new()
        };
        if def.namespaced && namespace.is_empty() {
            return Err(ApiError::bad_request(
                "the namespace of the object is required",
            ));
        }
        if def.namespaced && check_namespace && self.require_namespaces {
            let ns_def = self.def("v1", "namespaces")?;
            match self.lookup(&ns_def, None, &namespace) {
                None => return Err(ApiError::not_found(&ns_def, &namespace)),
                Some(n) if is_deleting(n) => {
                    return Err(ApiError::new(
                        403,
                        "Forbidden",
                        format!(
                            "{} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                            def.qualified_plural()
                        ),
                    )
                    .with_details(def, &name));
                }
                Some(_) => {}
            }
        }
        if self.lookup(def, Some(&namespace), &name).is_some() {
            return Err(ApiError::already_exists(def, &name));
        }
        let uid = self.new_uid();
        let md = meta_mut(&mut body);
        for k in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "selfLink",
        ] {
            md.remove(k);
        }
        if ownership == Ownership::Update {
            md.remove("managedFields");
        }
        md.insert("name".into(), Value::String(name.clone()));
        if def.namespaced {
            md.insert("namespace".into(), Value::String(namespace.clone()));
        } else {
            md.remove("namespace");
        }
        md.insert("uid".into(), Value::String(uid));
        md.insert("creationTimestamp".into(), Value::String(now()));
        if def.tracks_generation {
            md.insert("generation".into(), json!(1));
        }
        if def.status
            && let Some(m) = body.as_object_mut()
        {
            m.remove("status");
        }
        apply_defaults(def, &mut body);
        if is_crd(def) {
            establish_crd(&mut body);
        }
        normalize_metadata(&mut body);
        if ownership == Ownership::Update {
            let t = now();
            fields::track_update(
                None,
                &mut body,
                &Writer {
                    manager: &ctx.manager,
                    subresource: None,
                    api_version: &api_version,
                    now: &t,
                    scope: Sub::Main.scope(def),
                },
            );
        }
        if ctx.dry_run {
            return Ok(body);
        }
        let created = self.commit_put(def, body, EventKind::Added, None);
        self.settle();
        Ok(created)
    }

    fn check_type_meta(&self, def: &ResourceDef, body: &Value) -> Result<(), ApiError> {
        let api_version = def.api_version();
        if let Some(av) = body.get("apiVersion").and_then(Value::as_str)
            && !av.is_empty()
            && av != api_version
        {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({api_version})"
            )));
        }
        if let Some(k) = body.get("kind").and_then(Value::as_str)
            && !k.is_empty()
            && k != def.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                def.kind
            )));
        }
        Ok(())
    }

    fn review(&self, kind: ReviewKind, mut body: Value) -> Value {
        let spec = body.get("spec").cloned().unwrap_or(Value::Null);
        let status = match kind {
            ReviewKind::Token => match &self.token_review {
                Some(h) => h(&spec),
                None => {
                    json!({"authenticated": false, "error": "no TokenReview handler installed in the fake API server"})
                }
            },
            ReviewKind::SubjectAccess => match &self.access_review {
                Some(h) => h(&spec),
                None => {
                    json!({"allowed": false, "reason": "no SubjectAccessReview handler installed in the fake API server"})
                }
            },
        };
        if let Some(m) = body.as_object_mut() {
            m.insert("status".into(), status);
        }
        body
    }

    // --------------------------------------------------------------- update

    /// PUT on the main resource or `/status`.
    pub fn update(
        &mut self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
        body: Value,
        sub: Sub,
        ctx: &WriteCtx,
    ) -> Result<Value, ApiError> {
        let old = self.get(def, ns, name)?;
        self.write_existing(
            def,
            &old,
            body,
            sub,
            ctx,
            Precondition::Put,
            Ownership::Update,
        )
    }

    /// PATCH on the main resource or `/status`; apply creates a missing object.
    /// Returns the object and whether it was created.
    pub fn patch(
        &mut self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
        body: &PatchBody,
        sub: Sub,
        ctx: &WriteCtx,
    ) -> Result<(Value, bool), ApiError> {
        let existing = self.lookup(def, ns, name).cloned();
        if let PatchBody::Apply { config, force } = body {
            self.check_type_meta(def, config)?;
            if config.get("apiVersion").is_none() || config.get("kind").is_none() {
                return Err(ApiError::bad_request(
                    "apiVersion and kind must be set in an apply configuration",
                ));
            }
            if let Some(n) = meta_str(config, "name")
                && n != name
            {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            let t = now();
            let api_version = def.api_version();
            let writer = Writer {
                manager: &ctx.manager,
                subresource: sub.name(),
                api_version: &api_version,
                now: &t,
                scope: sub.scope(def),
            };
            return match existing {
                Some(old) => {
                    if let Some(rv) = resource_version(config)
                        && Some(rv) != resource_version(&old)
                    {
                        return Err(ApiError::conflict(def, name));
                    }
                    let applied = fields::apply(&old, config, *force, &writer)
                        .map_err(|c| apply_conflict(def, name, &c))?;
                    let out = self.write_existing(
                        def,
                        &old,
                        applied,
                        sub,
                        ctx,
                        Precondition::None,
                        Ownership::Applied,
                    )?;
                    Ok((out, false))
                }
                None if sub != Sub::Main => Err(ApiError::not_found(def, name)),
                None => {
                    let mut skeleton = json!({
                        "apiVersion": api_version,
                        "kind": def.kind,
                        "metadata": {"name": name},
                    });
                    if def.namespaced {
                        meta_mut(&mut skeleton).insert(
                            "namespace".into(),
                            Value::String(ns.unwrap_or_default().into()),
                        );
                    }
                    let mut applied = fields::apply(&skeleton, config, *force, &writer)
                        .map_err(|c| apply_conflict(def, name, &c))?;
                    meta_mut(&mut applied).insert("name".into(), Value::String(name.into()));
                    let out = self.create_inner(def, ns, applied, ctx, Ownership::Applied, true)?;
                    Ok((out, true))
                }
            };
        }
        let old = existing.ok_or_else(|| ApiError::not_found(def, name))?;
        let mut cand = old.clone();
        apply_patch(&mut cand, body)?;
        let out = self.write_existing(
            def,
            &old,
            cand,
            sub,
            ctx,
            Precondition::Patch,
            Ownership::Update,
        )?;
        Ok((out, false))
    }

    #[allow(clippy::too_many_arguments)]
    fn write_existing(
        &mut self,
        def: &ResourceDef,
        old: &Value,
        cand: Value,
        sub: Sub,
        ctx: &WriteCtx,
        pre: Precondition,
        ownership: Ownership,
    ) -> Result<Value, ApiError> {
        let name = meta_str(old, "name").unwrap_or_default().to_string();
        let old_rv = resource_version(old);
        match (pre, resource_version(&cand)) {
            (Precondition::Put | Precondition::Patch, Some(rv)) if Some(rv) != old_rv => {
                return Err(ApiError::conflict(def, &name));
            }
            (Precondition::Put, None) if !def.allow_unconditional_update => {
                return Err(ApiError::invalid(
                    def,
                    &name,
                    "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
                ));
            }
            _ => {}
        }
        if pre != Precondition::None {
            if let Some(uid) = meta_str(&cand, "uid").filter(|u| !u.is_empty())
                && Some(uid) != meta_str(old, "uid")
            {
                return Err(ApiError::new(
                    409,
                    "Conflict",
                    format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta_str(old, "uid").unwrap_or_default()
                    ),
                )
                .with_details(def, &name));
            }
            if let Some(n) = meta_str(&cand, "name")
                && n != name
            {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            if def.namespaced
                && let Some(n) = meta_str(&cand, "namespace").filter(|n| !n.is_empty())
                && Some(n) != meta_str(old, "namespace")
            {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            self.check_type_meta(def, &cand)?;
        }
        let mut new = match sub {
            Sub::Status => {
                let mut n = old.clone();
                if let Some(m) = n.as_object_mut() {
                    match cand.get("status") {
                        Some(s) if !s.is_null() => {
                            m.insert("status".into(), s.clone());
                        }
                        _ => {
                            m.remove("status");
                        }
                    }
                }
                if ownership == Ownership::Applied
                    && let Some(mf) = meta(&cand).and_then(|m| m.get("managedFields"))
                {
                    meta_mut(&mut n).insert("managedFields".into(), mf.clone());
                }
                n
            }
            Sub::Main | Sub::Scale => {
                let mut n = cand;
                if let Some(m) = n.as_object_mut() {
                    m.insert("apiVersion".into(), Value::String(def.api_version()));
                    m.insert("kind".into(), Value::String(def.kind.clone()));
                    if def.status {
                        match old.get("status") {
                            Some(s) => {
                                m.insert("status".into(), s.clone());
                            }
                            None => {
                                m.remove("status");
                            }
                        }
                    }
                }
                let old_md = meta(old).cloned().unwrap_or_default();
                let md = meta_mut(&mut n);
                for k in [
                    "name",
                    "namespace",
                    "uid",
                    "creationTimestamp",
                    "generation",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                ] {
                    match old_md.get(k) {
                        Some(v) => md.insert(k.into(), v.clone()),
                        None => md.remove(k),
                    };
                }
                md.remove("selfLink");
                if ownership == Ownership::Update {
                    match old_md.get("managedFields") {
                        Some(v) => md.insert("managedFields".into(), v.clone()),
                        None => md.remove("managedFields"),
                    };
                }
                apply_defaults(def, &mut n);
                n
            }
        };
        normalize_metadata(&mut new);
        if is_deleting(old) {
            let before = finalizers(old);
            if let Some(added) = finalizers(&new).into_iter().find(|f| !before.contains(f)) {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    format!(
                        "{} \"{name}\" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{\"{added}\"}}",
                        def.kind
                    ),
                )
                .with_details(def, &name));
            }
        }
        if ownership == Ownership::Update {
            let t = now();
            let api_version = def.api_version();
            fields::track_update(
                Some(old),
                &mut new,
                &Writer {
                    manager: &ctx.manager,
                    subresource: sub.name(),
                    api_version: &api_version,
                    now: &t,
                    scope: sub.scope(def),
                },
            );
        }
        if def.tracks_generation && spec_part(&new) != spec_part(old) {
            let g = meta(old)
                .and_then(|m| m.get("generation"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut new).insert("generation".into(), json!(g + 1));
        }
        if let Some(rv) = old_rv {
            meta_mut(&mut new).insert("resourceVersion".into(), Value::String(rv.into()));
        }
        if comparable(&new) == comparable(old) {
            return Ok(old.clone());
        }
        if ctx.dry_run {
            return Ok(new);
        }
        let out = if is_deleting(&new) && finalizers(&new).is_empty() {
            self.commit_remove(def, new)
        } else {
            self.commit_put(def, new, EventKind::Modified, Some(old.clone()))
        };
        self.settle();
        Ok(out)
    }

    // ---------------------------------------------------------------- scale

    fn scale_paths(def: &ResourceDef, name: &str) -> Result<crate::registry::ScalePaths, ApiError> {
        def.scale.clone().ok_or_else(|| {
            ApiError::new(
                404,
                "NotFound",
                format!(
                    "{} \"{name}\" has no scale subresource",
                    def.qualified_plural()
                ),
            )
        })
    }

    /// The `autoscaling/v1` `Scale` of an object.
    pub fn scale_of(def: &ResourceDef, obj: &Value) -> Result<Value, ApiError> {
        let name = meta_str(obj, "name").unwrap_or_default();
        let paths = Self::scale_paths(def, name)?;
        let spec = get_path(obj, &paths.spec_replicas)
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let status = get_path(obj, &paths.status_replicas)
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let selector = paths
            .label_selector
            .as_deref()
            .and_then(|p| get_path(obj, p))
            .and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Object(_) => Some(label_selector_object_to_string(v)),
                _ => None,
            });
        let mut md = Map::new();
        for k in [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "creationTimestamp",
        ] {
            if let Some(v) = meta(obj).and_then(|m| m.get(k)) {
                md.insert(k.into(), v.clone());
            }
        }
        let mut scale = json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": md,
            "spec": {},
            "status": {"replicas": status},
        });
        if spec != 0 {
            scale["spec"]["replicas"] = json!(spec);
        }
        if let Some(s) = selector {
            scale["status"]["selector"] = Value::String(s);
        }
        Ok(scale)
    }

    pub fn get_scale(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        Self::scale_paths(def, name)?;
        let obj = self.get(def, ns, name)?;
        Self::scale_of(def, &obj)
    }

    /// PUT `/scale`.
    pub fn update_scale(
        &mut self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
        body: &Value,
        ctx: &WriteCtx,
    ) -> Result<Value, ApiError> {
        let paths = Self::scale_paths(def, name)?;
        let old = self.get(def, ns, name)?;
        if let Some(rv) = resource_version(body)
            && Some(rv) != resource_version(&old)
        {
            return Err(ApiError::conflict(def, name));
        }
        let replicas = body
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        self.set_replicas(def, &old, &paths, replicas, ctx)
    }

    fn set_replicas(
        &mut self,
        def: &ResourceDef,
        old: &Value,
        paths: &crate::registry::ScalePaths,
        replicas: i64,
        ctx: &WriteCtx,
    ) -> Result<Value, ApiError> {
        if replicas < 0 {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!(
                    "Scale.autoscaling \"{}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0",
                    meta_str(old, "name").unwrap_or_default()
                ),
            ));
        }
        let mut cand = old.clone();
        set_path(&mut cand, &paths.spec_replicas, json!(replicas));
        let out = self.write_existing(
            def,
            old,
            cand,
            Sub::Scale,
            ctx,
            Precondition::None,
            Ownership::Update,
        )?;
        Self::scale_of(def, &out)
    }

    /// PATCH `/scale`: the patch applies to the `Scale`, its `spec.replicas` to the parent.
    pub fn patch_scale(
        &mut self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
        body: &PatchBody,
        ctx: &WriteCtx,
    ) -> Result<Value, ApiError> {
        let paths = Self::scale_paths(def, name)?;
        let old = self.get(def, ns, name)?;
        let mut scale = Self::scale_of(def, &old)?;
        if let PatchBody::Apply { config, force } = body {
            if let Some(rv) = resource_version(config)
                && Some(rv) != resource_version(&old)
            {
                return Err(ApiError::conflict(def, name));
            }
            let Some(replicas) = config.pointer("/spec/replicas").and_then(Value::as_i64) else {
                return Ok(scale);
            };
            // ownership of the parent's replicas field is tracked under subresource "scale"
            let mut parent_cfg = nested(&paths.spec_replicas, json!(replicas));
            if let Some(m) = parent_cfg.as_object_mut() {
                m.insert("apiVersion".into(), Value::String(def.api_version()));
                m.insert("kind".into(), Value::String(def.kind.clone()));
            }
            let t = now();
            let api_version = def.api_version();
            let writer = Writer {
                manager: &ctx.manager,
                subresource: Some("scale"),
                api_version: &api_version,
                now: &t,
                scope: Sub::Scale.scope(def),
            };
            let applied = fields::apply(&old, &parent_cfg, *force, &writer)
                .map_err(|c| apply_conflict(def, name, &c))?;
            let out = self.write_existing(
                def,
                &old,
                applied,
                Sub::Scale,
                ctx,
                Precondition::None,
                Ownership::Applied,
            )?;
            return Self::scale_of(def, &out);
        }
        apply_patch(&mut scale, body)?;
        if let Some(rv) = resource_version(&scale)
            && Some(rv) != resource_version(&old)
        {
            return Err(ApiError::conflict(def, name));
        }
        let replicas = scale
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        self.set_replicas(def, &old, &paths, replicas, ctx)
    }

    // --------------------------------------------------------------- delete

    pub fn delete(
        &mut self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOpts,
    ) -> Result<Deleted, ApiError> {
        let old = self.get(def, ns, name)?;
        if let Some(uid) = &opts.uid
            && Some(uid.as_str()) != meta_str(&old, "uid")
        {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&old, "uid").unwrap_or_default()
                ),
            )
            .with_details(def, name));
        }
        if let Some(rv) = &opts.resource_version
            && Some(rv.as_str()) != resource_version(&old)
        {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    resource_version(&old).unwrap_or_default()
                ),
            )
            .with_details(def, name));
        }
        if opts.dry_run {
            return Ok(if finalizers(&old).is_empty() {
                Deleted::Gone(old)
            } else {
                Deleted::Pending(old)
            });
        }
        if opts.propagation.as_deref() == Some("Orphan")
            && let Some(uid) = meta_str(&old, "uid")
        {
            let uid = uid.to_string();
            self.orphan_dependents(&uid);
        }
        let out = self.delete_object(def, old);
        self.settle();
        Ok(out)
    }

    /// Deletes with finalizer semantics; no preconditions.
    fn delete_object(&mut self, def: &ResourceDef, old: Value) -> Deleted {
        let is_namespace = def.group.is_empty() && def.plural == "namespaces";
        if is_namespace {
            return self.delete_namespace(def, old);
        }
        if finalizers(&old).is_empty() {
            return Deleted::Gone(self.commit_remove(def, old));
        }
        if is_deleting(&old) {
            return Deleted::Pending(old);
        }
        let new = self.mark_deleting(def, &old);
        Deleted::Pending(self.commit_put(def, new, EventKind::Modified, Some(old)))
    }

    fn mark_deleting(&self, def: &ResourceDef, old: &Value) -> Value {
        let mut new = old.clone();
        let md = meta_mut(&mut new);
        md.insert("deletionTimestamp".into(), Value::String(now()));
        md.insert("deletionGracePeriodSeconds".into(), json!(0));
        if def.tracks_generation {
            let g = md.get("generation").and_then(Value::as_i64).unwrap_or(0);
            md.insert("generation".into(), json!(g + 1));
        }
        new
    }

    /// A namespace turns Terminating, its contents are deleted, and it goes when it is empty.
    fn delete_namespace(&mut self, def: &ResourceDef, old: Value) -> Deleted {
        let name = meta_str(&old, "name").unwrap_or_default().to_string();
        let current = if is_deleting(&old) {
            old
        } else {
            let mut new = self.mark_deleting(def, &old);
            if let Some(m) = new.as_object_mut() {
                m.insert("status".into(), json!({"phase": "Terminating"}));
            }
            self.commit_put(def, new, EventKind::Modified, Some(old))
        };
        self.delete_namespace_contents(&name);
        match self.lookup(def, None, &name) {
            Some(v) => Deleted::Pending(v.clone()),
            None => Deleted::Gone(current),
        }
    }

    fn delete_namespace_contents(&mut self, ns: &str) {
        let defs: Vec<ResourceDef> = self
            .registry
            .all()
            .filter(|d| d.namespaced)
            .cloned()
            .collect();
        for def in defs {
            for obj in self.list(&def, Some(ns), &|_| true) {
                self.delete_object(&def, obj);
            }
        }
        self.maybe_finish_namespace(ns);
    }

    fn namespace_is_empty(&self, ns: &str) -> bool {
        self.registry
            .all()
            .filter(|d| d.namespaced)
            .all(|d| self.list(d, Some(ns), &|_| true).is_empty())
    }

    fn maybe_finish_namespace(&mut self, ns: &str) {
        let Ok(ns_def) = self.def("v1", "namespaces") else {
            return;
        };
        let Some(nsobj) = self.lookup(&ns_def, None, ns).cloned() else {
            return;
        };
        if is_deleting(&nsobj) && finalizers(&nsobj).is_empty() && self.namespace_is_empty(ns) {
            self.commit_remove(&ns_def, nsobj);
        }
    }

    /// Objects owned by `uid`: deleted when no other owner is left, otherwise the dangling
    /// reference is removed (what the garbage collector does in background propagation).
    fn collect_garbage(&mut self, uid: &str) {
        let defs: Vec<ResourceDef> = self.registry.all().cloned().collect();
        for def in defs {
            let dependents = self.list(&def, None, &|o| owner_uids(o).iter().any(|u| u == uid));
            for dep in dependents {
                let remaining: Vec<String> = owner_uids(&dep)
                    .into_iter()
                    .filter(|u| u != uid && self.uid_exists(u))
                    .collect();
                if remaining.is_empty() {
                    // the dependent may already have gone in this cascade
                    if let Some(cur) = self
                        .lookup(
                            &def,
                            meta_str(&dep, "namespace"),
                            meta_str(&dep, "name").unwrap_or_default(),
                        )
                        .cloned()
                    {
                        self.delete_object(&def, cur);
                    }
                } else {
                    self.drop_owner_refs(&def, &dep, uid);
                }
            }
        }
    }

    fn orphan_dependents(&mut self, uid: &str) {
        let defs: Vec<ResourceDef> = self.registry.all().cloned().collect();
        for def in defs {
            for dep in self.list(&def, None, &|o| owner_uids(o).iter().any(|u| u == uid)) {
                self.drop_owner_refs(&def, &dep, uid);
            }
        }
    }

    fn drop_owner_refs(&mut self, def: &ResourceDef, dep: &Value, uid: &str) {
        let mut cand = dep.clone();
        let md = meta_mut(&mut cand);
        if let Some(Value::Array(refs)) = md.get_mut("ownerReferences") {
            refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
            if refs.is_empty() {
                md.remove("ownerReferences");
            }
        }
        let _ = self.write_existing(
            def,
            dep,
            cand,
            Sub::Main,
            &WriteCtx::internal(GC),
            Precondition::None,
            Ownership::Update,
        );
    }

    fn uid_exists(&self, uid: &str) -> bool {
        self.objects
            .values()
            .any(|m| m.values().any(|o| meta_str(o, "uid") == Some(uid)))
    }

    // ----------------------------------------------------------- test hooks

    /// Create-or-replace, bypassing preconditions, subresource rules and admission.
    pub fn put_object(&mut self, mut obj: Value) -> Result<Value, ApiError> {
        let api_version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let def = self.def(&api_version, &kind)?;
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let ns = meta_str(&obj, "namespace").map(str::to_string);
        if def.namespaced && ns.as_deref().is_none_or(str::is_empty) {
            return Err(ApiError::bad_request(
                "put_object: metadata.namespace is required",
            ));
        }
        match self.lookup(&def, ns.as_deref(), &name).cloned() {
            None => {
                let uid = meta_str(&obj, "uid").map(str::to_string);
                let created_at = meta_str(&obj, "creationTimestamp").map(str::to_string);
                let status = obj.get("status").cloned();
                // build the object like a dry-run create, then put status and uid back
                let ctx = WriteCtx {
                    manager: "fake-apiserver-test".into(),
                    dry_run: true,
                };
                let created = self.create_inner(
                    &def,
                    ns.as_deref(),
                    obj.clone(),
                    &ctx,
                    Ownership::Update,
                    false,
                )?;
                let mut full = created;
                if let (Some(st), Some(m)) = (status, full.as_object_mut()) {
                    m.insert("status".into(), st);
                }
                if let Some(u) = uid {
                    meta_mut(&mut full).insert("uid".into(), Value::String(u));
                }
                // as documented: a given creationTimestamp is kept (objects "created earlier")
                if let Some(t) = created_at {
                    meta_mut(&mut full).insert("creationTimestamp".into(), Value::String(t));
                }
                let out = self.commit_put(&def, full, EventKind::Added, None);
                self.settle();
                Ok(out)
            }
            Some(old) => {
                let old_md = meta(&old).cloned().unwrap_or_default();
                let md = meta_mut(&mut obj);
                for k in ["uid", "creationTimestamp", "generation", "managedFields"] {
                    if !md.contains_key(k)
                        && let Some(v) = old_md.get(k)
                    {
                        md.insert(k.into(), v.clone());
                    }
                }
                md.remove("resourceVersion");
                if def.tracks_generation
                    && spec_part(&obj) != spec_part(&old)
                    && !md_has_explicit_generation(&old_md, &obj)
                {
                    let g = old_md
                        .get("generation")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    meta_mut(&mut obj).insert("generation".into(), json!(g + 1));
                }
                let out = if is_deleting(&obj) && finalizers(&obj).is_empty() {
                    self.commit_remove(&def, obj)
                } else {
                    self.commit_put(&def, obj, EventKind::Modified, Some(old))
                };
                self.settle();
                Ok(out)
            }
        }
    }

    /// DELETE without preconditions (finalizers, garbage collection and namespaces apply).
    pub fn delete_hook(
        &mut self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Deleted, ApiError> {
        let old = self.get(def, ns, name)?;
        let out = self.delete_object(def, old);
        self.settle();
        Ok(out)
    }

    /// Creates a namespace if missing.
    pub fn ensure_namespace(&mut self, name: &str) -> Result<Value, ApiError> {
        let def = self.def("v1", "namespaces")?;
        if let Some(v) = self.lookup(&def, None, name) {
            return Ok(v.clone());
        }
        let created = self.create_inner(
            &def,
            None,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
            &WriteCtx::internal("fake-apiserver"),
            Ownership::Update,
            false,
        )?;
        Ok(created)
    }

    // ------------------------------------------------------------ simulator

    /// Runs after every top-level write: the workload simulator converges.
    pub fn settle(&mut self) {
        if !self.simulate_workloads || self.settling {
            return;
        }
        self.settling = true;
        // the simulator's own writes are idempotent; a second pass only confirms convergence
        for _ in 0..3 {
            let before = self.rv;
            for plural in ["deployments", "statefulsets"] {
                let Some(def) = self.registry.by_path("apps", "v1", plural).cloned() else {
                    continue;
                };
                for w in self.list(&def, None, &|o| !is_deleting(o)) {
                    self.converge_workload(&def, &w);
                }
            }
            if self.rv == before {
                break;
            }
        }
        self.settling = false;
    }

    fn converge_workload(&mut self, def: &ResourceDef, w: &Value) {
        let Ok(pod_def) = self.def("v1", "pods") else {
            return;
        };
        let name = meta_str(w, "name").unwrap_or_default().to_string();
        let ns = meta_str(w, "namespace").unwrap_or_default().to_string();
        let uid = meta_str(w, "uid").unwrap_or_default().to_string();
        let desired = w
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1)
            .max(0) as usize;
        let is_sts = def.kind == "StatefulSet";
        let mut pods = self.list(&pod_def, Some(&ns), &|p| {
            !is_deleting(p) && owner_uids(p).contains(&uid)
        });
        pods.sort_by_key(|p| pod_order(p, &name));
        while pods.len() > desired {
            if let Some(p) = pods.pop() {
                self.delete_object(&pod_def, p);
            }
        }
        if pods.len() < desired {
            let mut labels = w
                .pointer("/spec/template/metadata/labels")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if let Some(ml) = w
                .pointer("/spec/selector/matchLabels")
                .and_then(Value::as_object)
            {
                labels.extend(ml.clone());
            }
            let spec = w
                .pointer("/spec/template/spec")
                .cloned()
                .unwrap_or_else(|| json!({}));
            let mut used: Vec<String> = pods
                .iter()
                .filter_map(|p| meta_str(p, "name").map(str::to_string))
                .collect();
            let mut ordinal = 0usize;
            while pods.len() < desired {
                let pod_name = if is_sts {
                    while used.contains(&format!("{name}-{ordinal}")) {
                        ordinal += 1;
                    }
                    format!("{name}-{ordinal}")
                } else {
                    format!("{name}-{}", self.random_suffix(5))
                };
                used.push(pod_name.clone());
                let pod = json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": pod_name,
                        "namespace": ns,
                        "labels": labels,
                        "ownerReferences": [{
                            "apiVersion": def.api_version(),
                            "kind": def.kind,
                            "name": name,
                            "uid": uid,
                            "controller": true,
                            "blockOwnerDeletion": true,
                        }],
                    },
                    "spec": spec,
                });
                let Ok(created) = self.create_inner(
                    &pod_def,
                    Some(&ns),
                    pod,
                    &WriteCtx::internal(SIMULATOR),
                    Ownership::Update,
                    false,
                ) else {
                    return;
                };
                let t = now();
                let mut running = created.clone();
                if let Some(m) = running.as_object_mut() {
                    m.insert(
                        "status".into(),
                        json!({
                            "phase": "Running",
                            "conditions": [
                                {"type": "Ready", "status": "True", "lastTransitionTime": t},
                                {"type": "ContainersReady", "status": "True", "lastTransitionTime": t},
                            ],
                            "startTime": t,
                        }),
                    );
                }
                let Ok(p) = self.write_existing(
                    &pod_def,
                    &created,
                    running,
                    Sub::Status,
                    &WriteCtx::internal(SIMULATOR),
                    Precondition::None,
                    Ownership::Update,
                ) else {
                    return;
                };
                pods.push(p);
            }
        }
        let Some(current) = self.lookup(def, Some(&ns), &name).cloned() else {
            return;
        };
        let n = desired as i64;
        let mut status = current
            .get("status")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let counters: &[&str] = if is_sts {
            &[
                "replicas",
                "readyReplicas",
                "availableReplicas",
                "currentReplicas",
                "updatedReplicas",
            ]
        } else {
            &[
                "replicas",
                "readyReplicas",
                "availableReplicas",
                "updatedReplicas",
            ]
        };
        for c in counters {
            if n == 0 {
                status.remove(*c);
            } else {
                status.insert((*c).to_string(), json!(n));
            }
        }
        if let Some(g) = meta(&current).and_then(|m| m.get("generation")) {
            status.insert("observedGeneration".into(), g.clone());
        }
        let mut cand = current.clone();
        if let Some(m) = cand.as_object_mut() {
            m.insert("status".into(), Value::Object(status));
        }
        let _ = self.write_existing(
            def,
            &current,
            cand,
            Sub::Status,
            &WriteCtx::internal(SIMULATOR),
            Precondition::None,
            Ownership::Update,
        );
    }
}

fn is_crd(def: &ResourceDef) -> bool {
    def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions"
}

/// The status a CRD gets once the (instant) establishing controller has seen it.
fn establish_crd(crd: &mut Value) {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(Value::Null);
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let t = now();
    if let Some(m) = crd.as_object_mut() {
        m.insert(
            "status".into(),
            json!({
                "acceptedNames": names,
                "storedVersions": stored,
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "lastTransitionTime": t},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "lastTransitionTime": t},
                ],
            }),
        );
    }
}

impl Store {
    fn register_crd(&mut self, crd: &Value) {
        if let Some(def) = ResourceDef::from_crd(crd) {
            self.registry.insert(def);
        }
    }

    /// A deleted CRD takes its resource and every object of it along.
    fn unregister_crd(&mut self, crd: &Value) {
        let Some(def) = ResourceDef::from_crd(crd) else {
            return;
        };
        for obj in self.list(&def, None, &|_| true) {
            self.commit_remove(&def, obj);
        }
        self.registry.remove(&ResKey::of(&def));
        self.objects.remove(&ResKey::of(&def));
    }
}

/// Pods sort by StatefulSet ordinal when they have one, else by name.
fn pod_order(p: &Value, owner: &str) -> (u64, String) {
    let name = meta_str(p, "name").unwrap_or_default().to_string();
    let ordinal = name
        .strip_prefix(owner)
        .and_then(|r| r.strip_prefix('-'))
        .and_then(|r| r.parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    (ordinal, name)
}

fn md_has_explicit_generation(old_md: &Map<String, Value>, obj: &Value) -> bool {
    meta(obj).and_then(|m| m.get("generation")) != old_md.get("generation")
}

/// Defaulting the real server does and controllers rely on.
fn apply_defaults(def: &ResourceDef, obj: &mut Value) {
    if def.group == "apps"
        && matches!(
            def.kind.as_str(),
            "Deployment" | "StatefulSet" | "ReplicaSet"
        )
        && let Some(m) = obj.as_object_mut()
    {
        let spec = m.entry("spec").or_insert_with(|| json!({}));
        if let Some(s) = spec.as_object_mut()
            && s.get("replicas").is_none_or(Value::is_null)
        {
            s.insert("replicas".into(), json!(1));
        }
    }
    if def.group.is_empty()
        && def.kind == "Namespace"
        && let Some(m) = obj.as_object_mut()
        && m.get("status").is_none()
    {
        m.insert("status".into(), json!({"phase": "Active"}));
    }
}

fn apply_patch(target: &mut Value, body: &PatchBody) -> Result<(), ApiError> {
    match body {
        PatchBody::Merge(p) => patch::merge_patch(target, p),
        PatchBody::Strategic(p) => patch::strategic_merge_patch(target, p),
        PatchBody::Json(p) => patch::json_patch(target, p).map_err(|e| {
            if e.contains("test") || e.contains("failed") {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            } else {
                ApiError::new(422, "Invalid", e)
            }
        })?,
        PatchBody::Apply { .. } => {
            return Err(ApiError::bad_request(
                "apply patches are handled separately",
            ));
        }
    }
    Ok(())
}

fn apply_conflict(def: &ResourceDef, name: &str, conflicts: &[fields::Conflict]) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with \"{}\" using {}", c.manager, c.api_version),
                "field": fields::render_path(&c.path),
            })
        })
        .collect();
    let mut e = ApiError::new(409, "Conflict", fields::conflict_message(conflicts));
    e.details =
        Some(json!({"name": name, "group": def.group, "kind": def.plural, "causes": causes}));
    e
}
