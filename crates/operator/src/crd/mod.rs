//! KEDA-compatible custom resources (`keda.sh/v1alpha1`): [`ScaledObject`],
//! [`TriggerAuthentication`] and [`ClusterTriggerAuthentication`].
//!
//! These Rust types are the source of truth for the CRD YAML in `crds/` (see [`crate::crds`]);
//! their doc comments become `kubectl explain` text.
//!
//! Differences from KEDA's generated CRDs that the derive cannot avoid (all equivalent once the
//! API server has defaulted the CRD):
//! - `names.listKind` is left for the API server to default (`<Kind>List`, as KEDA sets it);
//! - the root schema does not list `apiVersion`, `kind` and `metadata` (implicit for every CRD);
//! - the top-level `status` and the HPA behavior's `tolerance` are `nullable` (kube adds it to
//!   every optional root field and every optional int-or-string);
//! - bounds are written as floats (`minimum: 1.0`), the type k8s-openapi uses for them;
//! - descriptions are Windlass' own, and schemas carry a `title`.

pub mod conditions;
pub mod scaled_object;
pub mod trigger_authentication;

pub use conditions::{Condition, ConditionStatus, Conditions};
pub use scaled_object::*;
pub use trigger_authentication::*;

/// API group of all resources here.
pub const GROUP: &str = "keda.sh";
/// API version of all resources here.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` value of all resources here.
pub const API_VERSION: &str = "keda.sh/v1alpha1";

/// Go's `strconv.ParseBool`, which KEDA's annotations use: the engine's one copy.
pub use scaler_core::params::parse_go_bool;

/// Schema transform applied to the top-level spec and status types: removes the `null` that
/// schemars adds for `Option` fields, everywhere below the type.
///
/// KEDA's CRDs mark no field `nullable`, so an explicit `null` in a manifest is pruned by the API
/// server as it is for KEDA, instead of being stored.
pub(crate) fn strip_null(schema: &mut schemars::Schema) {
    if let Some(obj) = schema.as_object_mut() {
        strip_null_in(obj);
    }
}

fn is_null_schema(value: &serde_json::Value) -> bool {
    value.as_object().is_some_and(|o| {
        o.get("type").is_some_and(|t| t == "null")
            || (o.get("const").is_some_and(serde_json::Value::is_null) && !o.contains_key("type"))
            || o.get("nullable").is_some_and(|n| n == true)
                && o.len() <= 2
                && !o.contains_key("type")
    })
}

fn strip_null_in(obj: &mut serde_json::Map<String, serde_json::Value>) {
    use serde_json::Value;

    // `anyOf: [<schema>, <null>]` becomes `<schema>`, keeping this level's own keywords.
    if let Some(Value::Array(variants)) = obj.get("anyOf") {
        let non_null: Vec<&Value> = variants.iter().filter(|v| !is_null_schema(v)).collect();
        if non_null.len() == 1
            && non_null.len() < variants.len()
            && let Some(Value::Object(inner)) = non_null.first().map(|v| (*v).clone())
        {
            obj.remove("anyOf");
            for (k, v) in inner {
                obj.entry(k).or_insert(v);
            }
        }
    }
    if let Some(Value::Array(types)) = obj.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            obj.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(values)) = obj.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    obj.remove("nullable");

    for key in ["properties", "patternProperties"] {
        if let Some(Value::Object(props)) = obj.get_mut(key) {
            for sub in props.values_mut().filter_map(Value::as_object_mut) {
                strip_null_in(sub);
            }
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(Value::Object(sub)) = obj.get_mut(key) {
            strip_null_in(sub);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(subs)) = obj.get_mut(key) {
            for sub in subs.iter_mut().filter_map(Value::as_object_mut) {
                strip_null_in(sub);
            }
        }
    }
}

#[cfg(test)]
mod tests;
