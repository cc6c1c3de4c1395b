//! Patch application: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and a simplified
//! strategic merge patch.
//!
//! The strategic merge patch here is a merge patch that, instead of replacing them wholesale,
//! merges lists of objects whose items carry a key (`name`, `type`, `uid`, `containerPort`;
//! `uid` for ownerReferences; see [`list_key`]) item by item, honours `$patch: delete` / `$patch: replace` on list items and
//! maps, and ignores the `$setElementOrder/…` and `$retainKeys` directives. Lists of scalars
//! are replaced, except `metadata.finalizers` (merged as a set) and
//! `$deleteFromPrimitiveList/<field>`, which removes the listed values.
//! The real server reads the merge key and strategy per field from the OpenAPI schema.

use serde_json::{Map, Value};

/// Key fields that make a list of objects a map, in the order they are tried. The real server
/// reads the key from the schema (`x-kubernetes-list-map-keys`, `patchMergeKey`); these cover
/// containers, env, volumes, ports, conditions and ownerReferences.
const LIST_KEYS: &[&str] = &["name", "type", "uid", "containerPort"];

/// The key field by which every item of the list `field` is identified, if there is one
/// (`ownerReferences` go by `uid`, as their schema says).
pub(crate) fn list_key(field: &str, items: &[Value]) -> Option<&'static str> {
    if items.is_empty() {
        return None;
    }
    let keyed_by = |k: &str| {
        items.iter().all(|i| {
            i.get(k)
                .is_some_and(|v| v.is_string() || v.is_number() || v.is_boolean())
        })
    };
    if field == "ownerReferences" {
        return keyed_by("uid").then_some("uid");
    }
    LIST_KEYS.iter().copied().find(|k| keyed_by(k))
}

/// RFC 7386 merge patch.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// RFC 6902 JSON patch, with the API server's leniency: a `test` for `null` passes on a
/// missing path (kube-runtime's finalizer helper relies on it).
pub(crate) fn json_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    let p: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| format!("invalid JSON patch: {e}"))?;
    for op in &p.0 {
        if let json_patch::PatchOperation::Test(t) = op
            && t.value.is_null()
            && target.pointer(t.path.as_str()).is_none()
        {
            continue;
        }
        json_patch::patch(target, std::slice::from_ref(op)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The simplified strategic merge patch described in the module docs. `metadata.finalizers`
/// merges as a set, as its `patchStrategy: merge` asks.
pub(crate) fn strategic_merge_patch(target: &mut Value, patch: &Value) {
    let mut patch = patch.clone();
    if let (Some(Value::Array(add)), Some(existing)) = (
        patch.pointer("/metadata/finalizers").cloned(),
        target
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array),
    ) {
        let mut union = existing.clone();
        for f in add {
            if !union.contains(&f) {
                union.push(f);
            }
        }
        if let Some(md) = patch.get_mut("metadata").and_then(Value::as_object_mut) {
            md.insert("finalizers".into(), Value::Array(union));
        }
    }
    strategic_merge(target, &patch);
}

fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut p = patch_map.clone();
        p.remove("$patch");
        *target = Value::Object(p);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in patch_map {
        if k == "$patch" || k == "$retainKeys" || k.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Some(remove)) = (t.get_mut(field), v.as_array()) {
                items.retain(|i| !remove.contains(i));
            }
            continue;
        }
        match v {
            Value::Null => {
                t.remove(k);
            }
            Value::Object(obj) if obj.get("$patch").and_then(Value::as_str) == Some("delete") => {
                t.remove(k);
            }
            Value::Object(_) => strategic_merge(t.entry(k.clone()).or_insert(Value::Null), v),
            Value::Array(items) => {
                let merged = match (t.get(k), list_key(k, items)) {
                    (Some(Value::Array(existing)), Some(key))
                        if existing.iter().all(|e| e.get(key).is_some()) =>
                    {
                        merge_keyed_list(existing, items, key)
                    }
                    _ => items
                        .iter()
                        .filter(|i| i.get("$patch").is_none())
                        .cloned()
                        .collect(),
                };
                t.insert(k.clone(), Value::Array(merged));
            }
            other => {
                t.insert(k.clone(), other.clone());
            }
        }
    }
}

fn merge_keyed_list(existing: &[Value], patch: &[Value], key: &str) -> Vec<Value> {
    let mut out: Vec<Value> = existing.to_vec();
    for item in patch {
        let id = item.get(key);
        let pos = out.iter().position(|e| e.get(key) == id);
        let directive = item.get("$patch").and_then(Value::as_str);
        match (pos, directive) {
            (Some(i), Some("delete")) => {
                out.remove(i);
            }
            (None, Some("delete")) => {}
            (Some(i), Some("replace")) => {
                let mut v = item.clone();
                if let Value::Object(m) = &mut v {
                    m.remove("$patch");
                }
                out[i] = v;
            }
            (Some(i), _) => strategic_merge(&mut out[i], item),
            (None, _) => {
                let mut v = Value::Null;
                strategic_merge(&mut v, item);
                out.push(v);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merges_containers_by_name() {
        let mut t = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}
        ], "args": ["x"]}});
        strategic_merge_patch(
            &mut t,
            &json!({"spec": {"containers": [
                {"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"},
                {"name": "a", "$patch": "delete"}
            ], "args": ["y"]}}),
        );
        assert_eq!(
            t,
            json!({"spec": {"containers": [
                {"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}
            ], "args": ["y"]}})
        );
    }

    #[test]
    fn json_patch_test_op_fails() {
        let mut t = json!({"a": 1});
        assert!(json_patch(&mut t, &json!([{"op": "test", "path": "/a", "value": 2}])).is_err());
        json_patch(
            &mut t,
            &json!([{"op": "replace", "path": "/a", "value": 3}]),
        )
        .unwrap();
        assert_eq!(t, json!({"a": 3}));
    }
}
