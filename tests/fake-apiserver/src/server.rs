//! The HTTP side: routing `/api` and `/apis` paths, discovery documents, verbs, watch streams
//! and the request log.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::{ApiError, reason_for_code};
use crate::hooks::RequestRecord;
use crate::registry::{ResKey, ResourceDef};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{DeleteOpts, Deleted, EventKind, HistoryEvent, PatchBody, Store, Sub, WriteCtx};

/// State shared by the HTTP handlers and the test handle.
pub(crate) struct Shared {
    store: Mutex<Store>,
    /// Bumped after every change to the store or the request log.
    pub changes: watch::Sender<u64>,
    /// Set to true to stop the server and its watches.
    pub shutdown: watch::Sender<bool>,
    /// `host:port`, for `serverAddressByClientCIDRs`.
    pub address: String,
}

impl Shared {
    pub fn new(address: String) -> Self {
        Self {
            store: Mutex::new(Store::new()),
            changes: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
            address,
        }
    }

    /// Runs `f` under the lock and notifies waiters if anything changed.
    pub fn with<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        let mut guard = self
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let out = f(&mut guard);
        if guard.dirty {
            guard.dirty = false;
            self.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
        out
    }
}

const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(shared)
}

fn json_response(code: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn error_response(e: &ApiError) -> Response {
    json_response(e.code, &e.to_status())
}

/// The parsed request target.
enum Route {
    Version,
    Health,
    CoreVersions,
    CoreResources,
    Groups,
    Group(String),
    GroupVersion(String, String),
    Resource(Box<Target>),
    NotFound,
}

#[derive(Clone)]
struct Target {
    def: ResourceDef,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_route(store: &Store, path: &str) -> Route {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "livez" | "readyz", ..] => Route::Health,
        ["api"] => Route::CoreVersions,
        ["api", "v1"] => Route::CoreResources,
        ["api", v, rest @ ..] => resource_route(store, "", v, rest),
        ["apis"] => Route::Groups,
        ["apis", g] => Route::Group((*g).to_string()),
        ["apis", g, v] => Route::GroupVersion((*g).to_string(), (*v).to_string()),
        ["apis", g, v, rest @ ..] => resource_route(store, g, v, rest),
        _ => Route::NotFound,
    }
}

fn resource_route(store: &Store, group: &str, version: &str, rest: &[&str]) -> Route {
    let namespaced_def = |plural: &str| {
        store
            .registry
            .by_path(group, version, plural)
            .filter(|d| d.namespaced)
            .cloned()
    };
    if rest.len() >= 3
        && rest[0] == "namespaces"
        && let Some(def) = namespaced_def(rest[2])
    {
        if rest.len() > 5 {
            return Route::NotFound;
        }
        return Route::Resource(Box::new(Target {
            def,
            namespace: Some(rest[1].to_string()),
            name: rest.get(3).map(|s| (*s).to_string()),
            sub: rest.get(4).map(|s| (*s).to_string()),
        }));
    }
    if rest.is_empty() || rest.len() > 3 {
        return Route::NotFound;
    }
    let Some(def) = store.registry.by_path(group, version, rest[0]).cloned() else {
        return Route::NotFound;
    };
    // a namespaced object can only be addressed by name inside its namespace
    if def.namespaced && rest.len() > 1 {
        return Route::NotFound;
    }
    Route::Resource(Box::new(Target {
        def,
        namespace: None,
        name: rest.get(1).map(|s| (*s).to_string()),
        sub: rest.get(2).map(|s| (*s).to_string()),
    }))
}

fn query_pairs(uri: &axum::http::Uri) -> Vec<(String, String)> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

struct Query(Vec<(String, String)>);

impl Query {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or_default().trim().to_string())
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => return error_response(&ApiError::bad_request(format!("reading the body: {e}"))),
    };
    let path = parts.uri.path().to_string();
    let query = Query(query_pairs(&parts.uri));
    let method = parts.method.clone();
    let route = shared.with(|s| parse_route(s, &path));
    let mut record = RequestRecord {
        verb: "discovery".into(),
        method: method.to_string(),
        path: path.clone(),
        group: String::new(),
        plural: String::new(),
        namespace: None,
        name: None,
        subresource: None,
        query: parts.uri.query().unwrap_or_default().to_string(),
        field_manager: query.get("fieldManager").map(str::to_string),
        content_type: content_type(&parts.headers),
        code: 200,
    };
    if let Route::Resource(t) = &route {
        record.verb = verb_of(&method, t, &query).to_string();
        record.group = t.def.group.clone();
        record.plural = t.def.plural.clone();
        record.namespace = t.namespace.clone();
        record.name = t.name.clone();
        record.subresource = t.sub.clone();
    }
    let fault = shared.with(|s| {
        let hit = s
            .faults
            .iter_mut()
            .find(|f| f.remaining > 0 && f.matcher.matches(&record))
            .map(|f| {
                f.remaining -= 1;
                f.code
            });
        s.faults.retain(|f| f.remaining > 0);
        hit
    });
    let response = match fault {
        Some(code) => error_response(&ApiError::new(
            code,
            reason_for_code(code),
            format!("injected failure for {} {}", record.verb, record.path),
        )),
        None => dispatch(&shared, route, &method, &parts.headers, &query, &bytes),
    };
    record.code = response.status().as_u16();
    shared.with(|s| {
        s.log.push(record);
        s.dirty = true;
    });
    response
}

fn verb_of(method: &Method, t: &Target, q: &Query) -> &'static str {
    match (method.as_str(), t.name.is_some()) {
        ("GET", false) if q.flag("watch") => "watch",
        ("GET", false) => "list",
        ("GET", true) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", false) => "deletecollection",
        ("DELETE", true) => "delete",
        _ => "unknown",
    }
}

fn dispatch(
    shared: &Arc<Shared>,
    route: Route,
    method: &Method,
    headers: &HeaderMap,
    q: &Query,
    body: &Bytes,
) -> Response {
    let aggregated = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=APIGroupDiscoveryList"));
    match route {
        Route::Version => json_response(
            200,
            &json!({
                "major": "1",
                "minor": "33",
                "gitVersion": "v1.33.0-windlass-fake",
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean",
                "buildDate": "2025-01-01T00:00:00Z",
                "goVersion": "go1.24.0",
                "compiler": "gc",
                "platform": "linux/amd64",
            }),
        ),
        Route::Health => (StatusCode::OK, "ok").into_response(),
        Route::CoreVersions => shared.with(|s| {
            if aggregated {
                aggregated_response(s, true)
            } else {
                json_response(
                    200,
                    &json!({
                        "kind": "APIVersions",
                        "versions": ["v1"],
                        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": shared.address}],
                    }),
                )
            }
        }),
        Route::CoreResources => shared.with(|s| json_response(200, &resource_list(s, "", "v1"))),
        Route::Groups => shared.with(|s| {
            if aggregated {
                aggregated_response(s, false)
            } else {
                let groups: Vec<Value> = s
                    .registry
                    .groups()
                    .iter()
                    .map(|(g, versions)| api_group(g, versions))
                    .collect();
                json_response(200, &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
            }
        }),
        Route::Group(g) => shared.with(|s| match s.registry.groups().get(&g) {
            Some(versions) => json_response(200, &api_group(&g, versions)),
            None => error_response(&not_served()),
        }),
        Route::GroupVersion(g, v) => shared.with(|s| {
            if s.registry.group_version(&g, &v).is_empty() {
                error_response(&not_served())
            } else {
                json_response(200, &resource_list(s, &g, &v))
            }
        }),
        Route::NotFound => error_response(&not_served()),
        Route::Resource(t) => match resource_request(shared, *t, method, headers, q, body) {
            Ok(r) => r,
            Err(e) => error_response(&e),
        },
    }
}

fn not_served() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

fn api_group(g: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": g,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or(Value::Null),
    })
}

fn resource_list(s: &Store, g: &str, v: &str) -> Value {
    let mut resources = Vec::new();
    for d in s.registry.group_version(g, v) {
        resources.push(json!({
            "name": d.plural,
            "singularName": d.singular(),
            "namespaced": d.namespaced,
            "kind": d.kind,
            "verbs": d.verbs(),
            "shortNames": d.short_names,
        }));
        if d.status {
            resources.push(json!({
                "name": format!("{}/status", d.plural),
                "singularName": "",
                "namespaced": d.namespaced,
                "kind": d.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if d.scale.is_some() {
            resources.push(json!({
                "name": format!("{}/scale", d.plural),
                "singularName": "",
                "namespaced": d.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let gv = if g.is_empty() {
        v.to_string()
    } else {
        format!("{g}/{v}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

fn aggregated_response(s: &Store, core: bool) -> Response {
    let mut items = Vec::new();
    let groups: Vec<(String, Vec<String>)> = if core {
        vec![(String::new(), vec!["v1".to_string()])]
    } else {
        s.registry.groups().into_iter().collect()
    };
    for (g, versions) in groups {
        let mut vs = Vec::new();
        for v in versions {
            let resources: Vec<Value> = s
                .registry
                .group_version(&g, &v)
                .into_iter()
                .map(|d| {
                    let mut subs = Vec::new();
                    if d.status {
                        subs.push(json!({
                            "subresource": "status",
                            "responseKind": {"group": d.group, "version": d.version, "kind": d.kind},
                            "verbs": ["get", "patch", "update"],
                        }));
                    }
                    if d.scale.is_some() {
                        subs.push(json!({
                            "subresource": "scale",
                            "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
                            "verbs": ["get", "patch", "update"],
                        }));
                    }
                    json!({
                        "resource": d.plural,
                        "responseKind": {"group": d.group, "version": d.version, "kind": d.kind},
                        "scope": if d.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": d.singular(),
                        "verbs": d.verbs(),
                        "shortNames": d.short_names,
                        "subresources": subs,
                    })
                })
                .collect();
            vs.push(json!({"version": v, "freshness": "Current", "resources": resources}));
        }
        let md = if g.is_empty() {
            json!({})
        } else {
            json!({"name": g})
        };
        items.push(json!({"metadata": md, "versions": vs}));
    }
    let body = json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    });
    let mut resp = json_response(200, &body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(AGGREGATED_CONTENT_TYPE),
    );
    resp
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

fn field_manager(q: &Query, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(m) = q.get("fieldManager") {
        if m.len() > 128 {
            return Err(ApiError::bad_request(
                "fieldManager: Too long: may not be more than 128 bytes",
            ));
        }
        return Ok(m.to_string());
    }
    // the real server names an anonymous writer after its user agent
    Ok(headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
        .to_string())
}

fn resource_request(
    shared: &Arc<Shared>,
    t: Target,
    method: &Method,
    headers: &HeaderMap,
    q: &Query,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let def = t.def.clone();
    let ns = t.namespace.as_deref();
    let sub = match t.sub.as_deref() {
        None => Sub::Main,
        Some("status") if def.status => Sub::Status,
        Some("scale") if def.scale.is_some() => Sub::Scale,
        Some(_) => return Err(not_served()),
    };
    let dry_run = q.get("dryRun") == Some("All");
    let verb = verb_of(method, &t, q);
    if sub != Sub::Main && !matches!(verb, "get" | "update" | "patch") {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({verb} on {}/{})",
            def.plural,
            t.sub.as_deref().unwrap_or_default()
        )));
    }
    if def.review.is_some() && verb != "create" {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({verb} on {})",
            def.plural
        )));
    }
    let name = t.name.clone().unwrap_or_default();
    let meta_only = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=PartialObjectMetadata"));
    match verb {
        "get" => shared.with(|s| {
            let v = if sub == Sub::Scale {
                s.get_scale(&def, ns, &name)?
            } else {
                s.get(&def, ns, &name)?
            };
            Ok(json_response(
                200,
                &project(meta_only && sub != Sub::Scale, v),
            ))
        }),
        "list" => list(shared, &def, ns, q, meta_only),
        "watch" => watch(shared, &def, ns, q, meta_only),
        "create" => {
            let ctx = WriteCtx {
                manager: field_manager(q, headers)?,
                dry_run,
            };
            let body = parse_body(body)?;
            let created = shared.with(|s| s.create(&def, ns, body, &ctx))?;
            Ok(json_response(201, &project(meta_only, created)))
        }
        "update" => {
            let ctx = WriteCtx {
                manager: field_manager(q, headers)?,
                dry_run,
            };
            let body = parse_body(body)?;
            let out = shared.with(|s| match sub {
                Sub::Scale => s.update_scale(&def, ns, &name, &body, &ctx),
                _ => s.update(&def, ns, &name, body, sub, &ctx),
            })?;
            Ok(json_response(
                200,
                &project(meta_only && sub != Sub::Scale, out),
            ))
        }
        "patch" => {
            let ct = content_type(headers).unwrap_or_default();
            let patch = match ct.as_str() {
                "application/merge-patch+json" => PatchBody::Merge(parse_body(body)?),
                "application/strategic-merge-patch+json" => PatchBody::Strategic(parse_body(body)?),
                "application/json-patch+json" => PatchBody::Json(parse_body(body)?),
                "application/apply-patch+yaml" => {
                    if q.get("fieldManager").is_none_or(str::is_empty) {
                        return Err(ApiError::bad_request(
                            "PATCH, application/apply-patch+yaml: fieldManager is required for apply requests",
                        ));
                    }
                    let config = serde_json::from_slice(body).or_else(|_| {
                        serde_yaml_ng::from_slice::<Value>(body)
                            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
                    })?;
                    PatchBody::Apply {
                        config,
                        force: q.flag("force"),
                    }
                }
                other => {
                    return Err(ApiError::new(
                        415,
                        "UnsupportedMediaType",
                        format!(
                            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other:?})"
                        ),
                    ));
                }
            };
            if q.get("force").is_some() && !matches!(patch, PatchBody::Apply { .. }) {
                return Err(ApiError::bad_request(
                    "force: Forbidden: may not be specified for non-apply patch",
                ));
            }
            let ctx = WriteCtx {
                manager: field_manager(q, headers)?,
                dry_run,
            };
            let (out, created) = shared.with(|s| match sub {
                Sub::Scale => s
                    .patch_scale(&def, ns, &name, &patch, &ctx)
                    .map(|v| (v, false)),
                _ => s.patch(&def, ns, &name, &patch, sub, &ctx),
            })?;
            Ok(json_response(
                if created { 201 } else { 200 },
                &project(meta_only && sub != Sub::Scale, out),
            ))
        }
        "delete" => {
            let opts = delete_opts(q, body)?;
            let out = shared.with(|s| s.delete(&def, ns, &name, &opts))?;
            Ok(match out {
                Deleted::Gone(obj) if def.group.is_empty() && def.plural == "pods" => {
                    json_response(200, &obj)
                }
                Deleted::Gone(obj) => json_response(
                    200,
                    &json!({
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Success",
                        "details": {
                            "name": name,
                            "group": def.group,
                            "kind": def.plural,
                            "uid": obj.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
                        },
                    }),
                ),
                Deleted::Pending(obj) => json_response(200, &obj),
            })
        }
        "deletecollection" => {
            let opts = delete_opts(q, body)?;
            let labels = label_selector(q)?;
            let fields = field_selector(q)?;
            shared.with(|s| {
                let names: Vec<String> = s
                    .list(&def, ns, &|o| labels.matches_object(o) && fields.matches_object(o))
                    .iter()
                    .filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str).map(str::to_string))
                    .collect();
                for n in names {
                    s.delete(&def, ns, &n, &opts)?;
                }
                Ok(json_response(
                    200,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
                ))
            })
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method} {})",
            def.plural
        ))),
    }
}

/// The `PartialObjectMetadata` form of an object, for metadata-only requests.
fn project(meta_only: bool, obj: Value) -> Value {
    if !meta_only {
        return obj;
    }
    json!({
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

fn delete_opts(q: &Query, body: &Bytes) -> Result<DeleteOpts, ApiError> {
    let mut opts = DeleteOpts {
        propagation: q.get("propagationPolicy").map(str::to_string),
        dry_run: q.get("dryRun") == Some("All"),
        ..DeleteOpts::default()
    };
    if !body.is_empty() {
        let v = parse_body(body)?;
        if let Some(p) = v.get("propagationPolicy").and_then(Value::as_str) {
            opts.propagation = Some(p.to_string());
        }
        if let Some(uid) = v.pointer("/preconditions/uid").and_then(Value::as_str) {
            opts.uid = Some(uid.to_string());
        }
        if let Some(rv) = v
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
        {
            opts.resource_version = Some(rv.to_string());
        }
        if v.get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|x| x == "All"))
        {
            opts.dry_run = true;
        }
    }
    Ok(opts)
}

fn label_selector(q: &Query) -> Result<LabelSelector, ApiError> {
    LabelSelector::parse(q.get("labelSelector").unwrap_or_default())
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))
}

fn field_selector(q: &Query) -> Result<FieldSelector, ApiError> {
    FieldSelector::parse(q.get("fieldSelector").unwrap_or_default()).map_err(ApiError::bad_request)
}

fn list(
    shared: &Arc<Shared>,
    def: &ResourceDef,
    ns: Option<&str>,
    q: &Query,
    meta_only: bool,
) -> Result<Response, ApiError> {
    let labels = label_selector(q)?;
    let fields = field_selector(q)?;
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let exact = q.get("resourceVersionMatch") == Some("Exact");
    shared.with(|s| {
        let (rv, items) = match q.get("continue").filter(|c| !c.is_empty()) {
            Some(token) => s.take_pages(token)?,
            None => {
                if exact
                    && let Some(want) = q.get("resourceVersion")
                    && want != s.rv.to_string()
                {
                    // history is not kept as snapshots: only the current state can be listed exactly
                    return Err(ApiError::expired(format!(
                        "too old resource version: {want} ({})",
                        s.rv
                    )));
                }
                let items = s.list(def, ns, &|o| {
                    labels.matches_object(o) && fields.matches_object(o)
                });
                (s.rv, items)
            }
        };
        let mut items = items;
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if let Some(limit) = limit
            && items.len() > limit
        {
            let rest = items.split_off(limit);
            let remaining = rest.len();
            let token = s.save_pages(rv, rest);
            metadata["continue"] = Value::String(token);
            metadata["remainingItemCount"] = json!(remaining);
        }
        let (kind, api_version) = if meta_only {
            (
                "PartialObjectMetadataList".to_string(),
                "meta.k8s.io/v1".to_string(),
            )
        } else {
            (format!("{}List", def.kind), def.api_version())
        };
        let items: Vec<Value> = items.into_iter().map(|o| project(meta_only, o)).collect();
        Ok(json_response(
            200,
            &json!({
                "kind": kind,
                "apiVersion": api_version,
                "metadata": metadata,
                "items": items,
            }),
        ))
    })
}

/// Everything a watch needs to filter and start.
struct WatchSpec {
    def: ResourceDef,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    /// Start after this resourceVersion; `None` sends the current state first.
    from: Option<u64>,
    send_initial_events: bool,
    bookmarks: bool,
    timeout: Duration,
    meta_only: bool,
}

impl WatchSpec {
    fn matches(&self, obj: &Value) -> bool {
        let ns_ok = match (&self.namespace, self.def.namespaced) {
            (Some(ns), true) => {
                obj.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns.as_str())
            }
            _ => true,
        };
        ns_ok && self.labels.matches_object(obj) && self.fields.matches_object(obj)
    }

    /// The event a watcher with this filter sees for a change, as the API server's watch
    /// cache decides it (objects moving into or out of the selection become ADDED / DELETED).
    fn convert(&self, ev: &HistoryEvent) -> Option<Value> {
        if self.def.namespaced
            && let Some(ns) = &self.namespace
            && ev.namespace != *ns
        {
            return None;
        }
        let cur = ev.kind != EventKind::Deleted && self.matches(&ev.object);
        let old = ev.prev.as_ref().is_some_and(|p| self.matches(p));
        let (ty, obj) = match (cur, old) {
            (true, false) => ("ADDED", (*ev.object).clone()),
            (true, true) => ("MODIFIED", (*ev.object).clone()),
            (false, true) if ev.kind == EventKind::Deleted => ("DELETED", (*ev.object).clone()),
            (false, true) => {
                let mut o = ev.prev.as_deref().cloned().unwrap_or(Value::Null);
                if let Some(md) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                    md.insert("resourceVersion".into(), Value::String(ev.rv.to_string()));
                }
                ("DELETED", o)
            }
            (false, false) => return None,
        };
        Some(json!({"type": ty, "object": project(self.meta_only, obj)}))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Value {
        let mut md = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            md["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        json!({
            "type": "BOOKMARK",
            "object": {"kind": self.def.kind, "apiVersion": self.def.api_version(), "metadata": md},
        })
    }
}

fn watch(
    shared: &Arc<Shared>,
    def: &ResourceDef,
    ns: Option<&str>,
    q: &Query,
    meta_only: bool,
) -> Result<Response, ApiError> {
    let send_initial_events = q.flag("sendInitialEvents");
    let bookmarks = q.flag("allowWatchBookmarks");
    if send_initial_events && !bookmarks {
        return Err(ApiError::new(
            422,
            "Invalid",
            "ListOptions.meta.k8s.io \"\" is invalid: allowWatchBookmarks: Forbidden: sendInitialEvents requires setting allowWatchBookmarks=true",
        ));
    }
    let from = match q
        .get("resourceVersion")
        .filter(|r| !r.is_empty() && *r != "0")
    {
        None => None,
        Some(_) if send_initial_events => None,
        Some(r) => Some(
            r.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {r}")))?,
        ),
    };
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let spec = WatchSpec {
        def: def.clone(),
        namespace: ns.map(str::to_string),
        labels: label_selector(q)?,
        fields: field_selector(q)?,
        from,
        send_initial_events,
        bookmarks,
        timeout,
        meta_only,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(run_watch(shared.clone(), spec, tx));
    let stream = ReceiverStream::new(rx).map(Ok::<_, Infallible>);
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

fn line(v: &Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

async fn run_watch(shared: Arc<Shared>, spec: WatchSpec, tx: mpsc::Sender<Bytes>) {
    let mut changes = shared.changes.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    let key = ResKey::of(&spec.def);
    let start = shared.with(|s| match spec.from {
        Some(rv) if rv < s.compacted_rv => Err(s.compacted_rv),
        Some(rv) => Ok((rv, Vec::new())),
        None => {
            let objs = s.list(&spec.def, spec.namespace.as_deref(), &|o| spec.matches(o));
            Ok((s.rv, objs))
        }
    });
    let (mut cursor, initial) = match start {
        Ok(s) => s,
        Err(compacted) => {
            let from = spec.from.unwrap_or_default();
            let status =
                ApiError::expired(format!("too old resource version: {from} ({compacted})"))
                    .to_status();
            let _ = tx
                .send(line(&json!({"type": "ERROR", "object": status})))
                .await;
            return;
        }
    };
    for obj in initial {
        if tx
            .send(line(
                &json!({"type": "ADDED", "object": project(spec.meta_only, obj)}),
            ))
            .await
            .is_err()
        {
            return;
        }
    }
    if spec.send_initial_events && tx.send(line(&spec.bookmark(cursor, true))).await.is_err() {
        return;
    }
    let deadline = Instant::now() + spec.timeout;
    let mut last_bookmark = Instant::now();
    loop {
        changes.borrow_and_update();
        let batch = shared.with(|s| {
            s.events_since(&key, cursor)
                .map(|evs| (evs, s.rv, s.bookmark_interval))
        });
        let interval = match batch {
            Err(compacted) => {
                let status =
                    ApiError::expired(format!("too old resource version: {cursor} ({compacted})"))
                        .to_status();
                let _ = tx
                    .send(line(&json!({"type": "ERROR", "object": status})))
                    .await;
                return;
            }
            Ok((events, head, interval)) => {
                for ev in &events {
                    if let Some(v) = spec.convert(ev)
                        && tx.send(line(&v)).await.is_err()
                    {
                        return;
                    }
                }
                cursor = cursor.max(head);
                interval
            }
        };
        let next_bookmark = last_bookmark + interval;
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep_until(next_bookmark), if spec.bookmarks => {
                if tx.send(line(&spec.bookmark(cursor, false))).await.is_err() {
                    return;
                }
                last_bookmark = Instant::now();
            }
            () = tokio::time::sleep_until(deadline) => return,
            () = async { let _ = shutdown.wait_for(|s| *s).await; } => return,
            () = tx.closed() => return,
        }
    }
}
