//! Field ownership (`metadata.managedFields`) and server-side apply.
//!
//! A field set is a set of paths in the `FieldsV1` token syntax: `f:<field>` for a map field,
//! `k:{"name":"c"}` for an item of a keyed list and `.` for "the item itself". Leaves are
//! scalars, empty maps and atomic lists. Lists of objects whose items all carry one of the keys
//! in [`crate::patch::list_key`] are maps keyed by it (conditions by `type`, containers by
//! `name`, ownerReferences by `uid`); `metadata.finalizers` is a set whose items are owned one by one (`v:"x"`) and
//! merged as a union; every other list is atomic and owned as a whole. Maps get no `.` entry
//! of their own.
//!
//! What is tracked: `metadata.labels`, `metadata.annotations`, `metadata.ownerReferences`,
//! `metadata.finalizers` and everything outside `metadata` except `apiVersion`/`kind`, with
//! `status` belonging to the `/status` subresource when the kind has one.
//!
//! Updates (PUT, non-apply PATCH, POST) give the writing manager (operation `Update`) the
//! fields whose value it changed and take them from everybody else; removed fields leave every
//! set. Apply (operation `Apply`) gives the manager exactly the fields of its configuration,
//! fails on fields another manager owns with a different value (unless forced, which takes
//! them over), merges the configuration into the object, and removes fields the manager
//! applied before and omits now when no other manager owns them (maps emptied by such a
//! removal are pruned).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::patch::list_key;

pub(crate) type FieldPath = Vec<String>;
pub(crate) type FieldSet = BTreeSet<FieldPath>;

/// Which part of an object a write may touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The main endpoint of a kind with a status subresource: everything but `status`.
    MainWithoutStatus,
    /// The main endpoint of a kind without a status subresource.
    All,
    /// The `/status` subresource.
    StatusOnly,
}

const TRACKED_METADATA: &[&str] = &["labels", "annotations", "ownerReferences", "finalizers"];

/// Keeps only the fields a write in `scope` may set (plus apiVersion/kind/name for context).
pub(crate) fn scope_filter(obj: &Value, scope: Scope) -> Value {
    let mut out = Map::new();
    let Some(m) = obj.as_object() else {
        return Value::Object(out);
    };
    for (k, v) in m {
        let keep = match k.as_str() {
            "metadata" => {
                let mut md = Map::new();
                if let Some(src) = v.as_object() {
                    for (mk, mv) in src {
                        if TRACKED_METADATA.contains(&mk.as_str()) && scope != Scope::StatusOnly {
                            md.insert(mk.clone(), mv.clone());
                        }
                    }
                }
                out.insert(k.clone(), Value::Object(md));
                false
            }
            "apiVersion" | "kind" => true,
            "status" => scope != Scope::MainWithoutStatus,
            _ => scope != Scope::StatusOnly,
        };
        if keep {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// The tracked leaf paths of `obj` in `scope`.
pub(crate) fn field_set(obj: &Value, scope: Scope) -> FieldSet {
    let mut out = FieldSet::new();
    let filtered = scope_filter(obj, scope);
    if let Some(m) = filtered.as_object() {
        for (k, v) in m {
            if k == "apiVersion" || k == "kind" {
                continue;
            }
            if k == "metadata" && v.as_object().is_some_and(Map::is_empty) {
                continue;
            }
            let mut path = vec![format!("f:{k}")];
            collect_value(v, &mut path, &mut out);
        }
    }
    out
}

/// Lists the real server treats as sets of scalars (`+listType=set`): items are owned one by
/// one (`v:` tokens) and apply merges them as a union.
fn is_set_list(path: &[String]) -> bool {
    path == ["f:metadata", "f:finalizers"]
}

fn collect_value(v: &Value, path: &mut FieldPath, out: &mut FieldSet) {
    if let Value::Array(items) = v
        && is_set_list(path)
        && !items.is_empty()
    {
        for item in items {
            path.push(format!("v:{item}"));
            out.insert(path.clone());
            path.pop();
        }
        return;
    }
    match v {
        Value::Object(m) if !m.is_empty() => collect_map(m, path, out),
        Value::Array(items) => match list_key(
            path.last()
                .and_then(|t| t.strip_prefix("f:"))
                .unwrap_or_default(),
            items,
        ) {
            Some(key) => {
                for item in items {
                    path.push(key_token(key, item.get(key).unwrap_or(&Value::Null)));
                    path.push(".".into());
                    out.insert(path.clone());
                    path.pop();
                    if let Some(m) = item.as_object() {
                        collect_map(m, path, out);
                    }
                    path.pop();
                }
            }
            None => {
                out.insert(path.clone());
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
}

fn collect_map(m: &Map<String, Value>, path: &mut FieldPath, out: &mut FieldSet) {
    for (k, v) in m {
        path.push(format!("f:{k}"));
        collect_value(v, path, out);
        path.pop();
    }
}

fn key_token(key: &str, value: &Value) -> String {
    let mut m = Map::new();
    m.insert(key.to_string(), value.clone());
    format!("k:{}", Value::Object(m))
}

fn parse_key_token(token: &str) -> Option<(String, Value)> {
    let obj: Map<String, Value> = serde_json::from_str(token.strip_prefix("k:")?).ok()?;
    obj.into_iter().next()
}

/// The value at a field path, if present.
pub(crate) fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for token in path {
        if token == "." {
            continue;
        }
        if let Some(f) = token.strip_prefix("f:") {
            cur = cur.get(f)?;
        } else if let Some(item) = token.strip_prefix("v:") {
            let want: Value = serde_json::from_str(item).ok()?;
            cur = cur.as_array()?.iter().find(|i| **i == want)?;
        } else {
            let (k, v) = parse_key_token(token)?;
            cur = cur.as_array()?.iter().find(|i| i.get(&k) == Some(&v))?;
        }
    }
    Some(cur)
}

fn value_at_mut<'a>(obj: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut cur = obj;
    for token in path {
        if token == "." {
            continue;
        }
        if let Some(f) = token.strip_prefix("f:") {
            cur = cur.get_mut(f)?;
        } else if let Some(item) = token.strip_prefix("v:") {
            let want: Value = serde_json::from_str(item).ok()?;
            cur = cur.as_array_mut()?.iter_mut().find(|i| **i == want)?;
        } else {
            let (k, v) = parse_key_token(token)?;
            cur = cur
                .as_array_mut()?
                .iter_mut()
                .find(|i| i.get(&k) == Some(&v))?;
        }
    }
    Some(cur)
}

/// Removes the field (or list item, for a path ending in `.`) at `path`, then prunes maps the
/// removal left empty.
fn remove_at(obj: &mut Value, path: &[String]) {
    let path: Vec<String> = match path.last() {
        Some(t) if t == "." => path[..path.len() - 1].to_vec(),
        _ => path.to_vec(),
    };
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let Some(parent) = value_at_mut(obj, parent_path) else {
        return;
    };
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = parent.as_object_mut() {
            m.remove(f);
        }
    } else if let (Some(item), Some(items)) = (last.strip_prefix("v:"), parent.as_array_mut()) {
        if let Ok(want) = serde_json::from_str::<Value>(item) {
            items.retain(|i| *i != want);
        }
    } else if let (Some((k, v)), Some(items)) = (parse_key_token(last), parent.as_array_mut()) {
        items.retain(|i| i.get(&k) != Some(&v));
    }
    // prune maps emptied by the removal, innermost first
    for depth in (1..path.len()).rev() {
        let prefix = &path[..depth];
        if !prefix.last().is_some_and(|t| t.starts_with("f:")) {
            break;
        }
        let empty = value_at(obj, prefix).is_some_and(|v| v.as_object().is_some_and(Map::is_empty));
        if !empty {
            break;
        }
        let (last, parent_path) = match prefix.split_last() {
            Some(x) => x,
            None => break,
        };
        if let (Some(f), Some(parent)) = (last.strip_prefix("f:"), value_at_mut(obj, parent_path))
            && let Some(m) = parent.as_object_mut()
        {
            m.remove(f);
        }
    }
}

/// Renders a path as the API server does in conflict messages: `.spec.containers[name="c"].image`.
pub(crate) fn render_path(path: &[String]) -> String {
    let mut s = String::new();
    for token in path {
        if let Some(f) = token.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(item) = token.strip_prefix("v:") {
            s.push_str(&format!("[={item}]"));
        } else if let Some((k, v)) = parse_key_token(token) {
            s.push_str(&format!("[{k}={v}]"));
        }
    }
    s
}

fn set_to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut cur = &mut root;
        for token in path {
            let entry = cur
                .entry(token.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(next) = entry else { break };
            cur = next;
        }
    }
    Value::Object(root)
}

fn fields_v1_to_set(v: &Value) -> FieldSet {
    fn walk(v: &Value, path: &mut FieldPath, out: &mut FieldSet) {
        match v.as_object() {
            Some(m) if !m.is_empty() => {
                for (k, child) in m {
                    path.push(k.clone());
                    walk(child, path, out);
                    path.pop();
                }
            }
            _ => {
                if !path.is_empty() {
                    out.insert(path.clone());
                }
            }
        }
    }
    let mut out = FieldSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// One `managedFields` entry.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

impl Entry {
    fn is(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }

    fn owns_or_covers(&self, p: &[String]) -> bool {
        self.fields.iter().any(|q| {
            let n = p.len().min(q.len());
            p[..n] == q[..n]
        })
    }
}

pub(crate) fn read_entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|e| {
                    let s = |k: &str| {
                        e.get(k)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string()
                    };
                    Entry {
                        manager: s("manager"),
                        operation: s("operation"),
                        api_version: s("apiVersion"),
                        time: s("time"),
                        subresource: e
                            .get("subresource")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        fields: e.get("fieldsV1").map(fields_v1_to_set).unwrap_or_default(),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn write_entries(obj: &mut Value, entries: &[Entry]) {
    let items: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": set_to_fields_v1(&e.fields),
            });
            if let (Some(sub), Some(m)) = (&e.subresource, v.as_object_mut()) {
                m.insert("subresource".into(), Value::String(sub.clone()));
            }
            v
        })
        .collect();
    if let Some(md) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if items.is_empty() {
            md.remove("managedFields");
        } else {
            md.insert("managedFields".into(), Value::Array(items));
        }
    }
}

/// Who is writing, for ownership bookkeeping.
#[derive(Clone, Debug)]
pub(crate) struct Writer<'a> {
    pub manager: &'a str,
    pub subresource: Option<&'a str>,
    pub api_version: &'a str,
    pub now: &'a str,
    pub scope: Scope,
}

/// Records a non-apply write: the writer now owns what it changed.
pub(crate) fn track_update(old: Option<&Value>, new: &mut Value, w: &Writer<'_>) {
    let mut entries = old.map(read_entries).unwrap_or_default();
    let old_set = old.map(|o| field_set(o, w.scope)).unwrap_or_default();
    let new_set = field_set(new, w.scope);
    let changed: FieldSet = new_set
        .iter()
        .filter(|p| {
            !old_set.contains(*p)
                || (p.last().is_some_and(|t| t != ".")
                    && old.and_then(|o| value_at(o, p)) != value_at(new, p))
        })
        .cloned()
        .collect();
    let removed: FieldSet = old_set.difference(&new_set).cloned().collect();
    if changed.is_empty() && removed.is_empty() {
        write_entries(new, &entries);
        return;
    }
    for e in &mut entries {
        e.fields.retain(|p| !removed.contains(p));
        if !e.is(w.manager, "Update", w.subresource) {
            e.fields.retain(|p| !changed.contains(p));
        }
    }
    if !changed.is_empty() {
        match entries
            .iter_mut()
            .find(|e| e.is(w.manager, "Update", w.subresource))
        {
            Some(e) => {
                e.fields.extend(changed);
                e.time = w.now.to_string();
                e.api_version = w.api_version.to_string();
            }
            None => entries.push(Entry {
                manager: w.manager.to_string(),
                operation: "Update".into(),
                api_version: w.api_version.to_string(),
                time: w.now.to_string(),
                subresource: w.subresource.map(str::to_string),
                fields: changed,
            }),
        }
    }
    entries.retain(|e| !e.fields.is_empty());
    write_entries(new, &entries);
}

/// A field another manager owns with a different value.
#[derive(Clone, Debug)]
pub(crate) struct Conflict {
    pub manager: String,
    pub api_version: String,
    pub path: FieldPath,
}

/// Server-side apply of `cfg` onto `live` (an object skeleton when creating). Returns the new
/// object with `managedFields` updated, or the conflicts.
pub(crate) fn apply(
    live: &Value,
    cfg: &Value,
    force: bool,
    w: &Writer<'_>,
) -> Result<Value, Vec<Conflict>> {
    let mut entries = read_entries(live);
    let cfg = scope_filter(cfg, w.scope);
    let cfg_set = field_set(&cfg, w.scope);
    let mut conflicts = Vec::new();
    for p in cfg_set
        .iter()
        .filter(|p| p.last().is_some_and(|t| t != "."))
    {
        // an empty map claims nothing another manager could hold a different value for
        if value_at(&cfg, p).is_some_and(|v| v.as_object().is_some_and(Map::is_empty)) {
            continue;
        }
        for e in entries.iter().filter(|e| e.manager != w.manager) {
            if e.owns_or_covers(p) && value_at(live, p) != value_at(&cfg, p) {
                conflicts.push(Conflict {
                    manager: e.manager.clone(),
                    api_version: e.api_version.clone(),
                    path: p.clone(),
                });
            }
        }
    }
    if !conflicts.is_empty() {
        if !force {
            return Err(conflicts);
        }
        for c in &conflicts {
            for e in entries.iter_mut().filter(|e| e.manager == c.manager) {
                e.fields.retain(|q| {
                    let n = q.len().min(c.path.len());
                    q[..n] != c.path[..n]
                });
            }
        }
    }
    let mut new = live.clone();
    let mut cfg_rest = cfg.clone();
    let applied_finalizers = cfg_rest
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove("finalizers"));
    merge_apply(&mut new, &cfg_rest);
    if let Some(Value::Array(add)) = applied_finalizers
        && let Some(md) = new.get_mut("metadata").and_then(Value::as_object_mut)
    {
        let list = md
            .entry("finalizers")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = list {
            for f in add {
                if !items.contains(&f) {
                    items.push(f);
                }
            }
        }
    }
    let previous: FieldSet = entries
        .iter()
        .find(|e| e.is(w.manager, "Apply", w.subresource))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut dropped: Vec<&FieldPath> = previous.difference(&cfg_set).collect();
    // deepest first, so an item's fields go before the item
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for r in dropped {
        let base: &[String] = match r.last() {
            Some(t) if t == "." => &r[..r.len() - 1],
            _ => r,
        };
        let owned_elsewhere = entries
            .iter()
            .filter(|e| !e.is(w.manager, "Apply", w.subresource))
            .any(|e| e.fields.iter().any(|q| q.starts_with(base)));
        let still_applied = cfg_set.iter().any(|q| q.starts_with(base));
        if !owned_elsewhere && !still_applied {
            remove_at(&mut new, r);
        }
    }
    match entries
        .iter_mut()
        .find(|e| e.is(w.manager, "Apply", w.subresource))
    {
        Some(e) => {
            e.fields = cfg_set;
            e.time = w.now.to_string();
            e.api_version = w.api_version.to_string();
        }
        None => entries.push(Entry {
            manager: w.manager.to_string(),
            operation: "Apply".into(),
            api_version: w.api_version.to_string(),
            time: w.now.to_string(),
            subresource: w.subresource.map(str::to_string),
            fields: cfg_set,
        }),
    }
    entries.retain(|e| !e.fields.is_empty());
    write_entries(&mut new, &entries);
    Ok(new)
}

/// Merges an apply configuration: maps recursively, keyed lists item by item, everything else
/// replaced; `null` removes.
fn merge_apply(target: &mut Value, cfg: &Value) {
    let Value::Object(cfg_map) = cfg else {
        *target = cfg.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in cfg_map {
        match v {
            Value::Null => {
                t.remove(k);
            }
            Value::Object(_) => merge_apply(t.entry(k.clone()).or_insert(Value::Null), v),
            Value::Array(items) => {
                let key = list_key(k, items);
                match (t.get_mut(k), key) {
                    (Some(Value::Array(existing)), Some(key))
                        if existing.iter().all(|e| e.get(key).is_some()) =>
                    {
                        for item in items {
                            let id = item.get(key);
                            match existing.iter_mut().find(|e| e.get(key) == id) {
                                Some(e) => merge_apply(e, item),
                                None => existing.push(item.clone()),
                            }
                        }
                    }
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
            other => {
                t.insert(k.clone(), other.clone());
            }
        }
    }
}

/// The API server's conflict message.
pub(crate) fn conflict_message(conflicts: &[Conflict]) -> String {
    let n = conflicts.len();
    let noun = if n == 1 { "conflict" } else { "conflicts" };
    let parts: Vec<String> = conflicts
        .iter()
        .map(|c| {
            format!(
                "conflict with \"{}\" using {}: {}",
                c.manager,
                c.api_version,
                render_path(&c.path)
            )
        })
        .collect();
    format!("Apply failed with {n} {noun}: {}", parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer<'a>(manager: &'a str) -> Writer<'a> {
        Writer {
            manager,
            subresource: None,
            api_version: "apps/v1",
            now: "2024-01-01T00:00:00Z",
            scope: Scope::MainWithoutStatus,
        }
    }

    #[test]
    fn field_set_uses_keys_for_containers() {
        let obj = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i"}], "args": ["x"]}, "status": {"phase": "x"}});
        let set = field_set(&obj, Scope::MainWithoutStatus);
        let rendered: Vec<String> = set.iter().map(|p| p.join("/")).collect();
        assert_eq!(
            rendered,
            vec![
                "f:metadata/f:labels/f:a",
                "f:spec/f:args",
                "f:spec/f:containers/k:{\"name\":\"c\"}/.",
                "f:spec/f:containers/k:{\"name\":\"c\"}/f:image",
                "f:spec/f:containers/k:{\"name\":\"c\"}/f:name",
            ]
        );
        let back = fields_v1_to_set(&set_to_fields_v1(&set));
        assert_eq!(back, set);
    }

    #[test]
    fn apply_removes_omitted_fields_and_conflicts() {
        let live =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}});
        let a1 = apply(
            &live,
            &json!({"spec": {"replicas": 2, "paused": false}}),
            false,
            &writer("a"),
        )
        .unwrap();
        let b1 = apply(
            &a1,
            &json!({"spec": {"minReadySeconds": 5}}),
            false,
            &writer("b"),
        )
        .unwrap();
        let err = apply(&b1, &json!({"spec": {"replicas": 3}}), false, &writer("b")).unwrap_err();
        assert_eq!(err[0].manager, "a");
        assert_eq!(render_path(&err[0].path), ".spec.replicas");
        // same value: shared ownership, no conflict
        let b2 = apply(
            &b1,
            &json!({"spec": {"minReadySeconds": 5, "replicas": 2}}),
            false,
            &writer("b"),
        )
        .unwrap();
        // a drops paused and replicas: paused goes, replicas stays (b owns it)
        let a2 = apply(&b2, &json!({"spec": {}}), false, &writer("a")).unwrap();
        assert_eq!(a2["spec"], json!({"replicas": 2, "minReadySeconds": 5}));
    }
}
