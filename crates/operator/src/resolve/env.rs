//! The environment of the scale target's container, which `<key>FromEnv` parameters read.
//!
//! KEDA's rules (`pkg/scaling/resolver/scale_resolvers.go`): the container is the one named by
//! `scaleTargetRef.envSourceContainerName`, else the first; `envFrom` sources are read first
//! (ConfigMaps and Secrets, each key behind the source's `prefix`), then `env` entries in order,
//! later ones overriding earlier ones. A literal `value` has `$(VAR)` references expanded
//! against what is resolved so far (`$$` escapes a `$`, unknown references stay as written);
//! `valueFrom` reads a Secret or ConfigMap key; `fieldRef` and `resourceFieldRef` are skipped. A
//! missing Secret or ConfigMap fails unless the reference is `optional`.
//!
//! Offline, Windlass is stricter than KEDA in one place: a key missing from a Secret or
//! ConfigMap that is present is an error (KEDA silently uses ""), because the pod itself would
//! fail to start with that reference.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec};

use super::{ObjectLookup, ResolveError};

/// The container whose environment `<key>FromEnv` reads: `name`, or the first one.
pub fn select_container<'p>(
    pod: &'p PodSpec,
    name: Option<&str>,
) -> Result<&'p Container, ResolveError> {
    match name.filter(|name| !name.is_empty()) {
        Some(name) => pod
            .containers
            .iter()
            .find(|container| container.name == name)
            .ok_or_else(|| ResolveError::ContainerNotFound {
                container: name.to_owned(),
                available: pod.containers.iter().map(|c| c.name.clone()).collect(),
            }),
        None => pod.containers.first().ok_or(ResolveError::NoContainers),
    }
}

/// Resolves every environment variable of `container` that KEDA can resolve.
pub fn resolve_container_env(
    container: &Container,
    namespace: &str,
    objects: &dyn ObjectLookup,
) -> Result<BTreeMap<String, String>, ResolveError> {
    let mut resolved = BTreeMap::new();
    for source in container.env_from.iter().flatten() {
        let prefix = source.prefix.as_deref().unwrap_or_default();
        if let Some(reference) = &source.config_map_ref {
            match objects.config_map_data(namespace, &reference.name)? {
                Some(data) => {
                    resolved.extend(data.into_iter().map(|(k, v)| (format!("{prefix}{k}"), v)))
                }
                None if reference.optional == Some(true) => {}
                None => {
                    return Err(missing(
                        "ConfigMap",
                        namespace,
                        &reference.name,
                        &container.name,
                    ));
                }
            }
        } else if let Some(reference) = &source.secret_ref {
            match objects.secret_data(namespace, &reference.name)? {
                Some(data) => {
                    resolved.extend(data.into_iter().map(|(k, v)| (format!("{prefix}{k}"), v)))
                }
                None if reference.optional == Some(true) => {}
                None => {
                    return Err(missing(
                        "Secret",
                        namespace,
                        &reference.name,
                        &container.name,
                    ));
                }
            }
        }
    }
    for variable in container.env.iter().flatten() {
        if let Some(value) =
            resolve_variable(variable, &resolved, namespace, &container.name, objects)?
        {
            resolved.insert(variable.name.clone(), value);
        }
    }
    Ok(resolved)
}

/// One `env` entry's value; `None` when KEDA skips it (fieldRef, optional and missing, …).
fn resolve_variable(
    variable: &EnvVar,
    resolved: &BTreeMap<String, String>,
    namespace: &str,
    container: &str,
    objects: &dyn ObjectLookup,
) -> Result<Option<String>, ResolveError> {
    if let Some(value) = variable.value.as_deref().filter(|value| !value.is_empty()) {
        return Ok(Some(expand_references(value, resolved)));
    }
    let Some(source) = &variable.value_from else {
        return Ok(Some(String::new()));
    };
    if let Some(selector) = &source.secret_key_ref {
        let optional = selector.optional == Some(true);
        return match objects.secret_data(namespace, &selector.name)? {
            Some(data) => match data.get(&selector.key) {
                Some(value) => Ok(Some(value.clone())),
                None if optional => Ok(None),
                None => Err(ResolveError::MissingKey {
                    kind: "Secret",
                    namespace: namespace.to_owned(),
                    name: selector.name.clone(),
                    key: selector.key.clone(),
                    used_by: format!("env {} of container {container}", variable.name),
                }),
            },
            None if optional => Ok(None),
            None => Err(missing("Secret", namespace, &selector.name, container)),
        };
    }
    if let Some(selector) = &source.config_map_key_ref {
        let optional = selector.optional == Some(true);
        return match objects.config_map_data(namespace, &selector.name)? {
            Some(data) => match data.get(&selector.key) {
                Some(value) => Ok(Some(value.clone())),
                None if optional => Ok(None),
                None => Err(ResolveError::MissingKey {
                    kind: "ConfigMap",
                    namespace: namespace.to_owned(),
                    name: selector.name.clone(),
                    key: selector.key.clone(),
                    used_by: format!("env {} of container {container}", variable.name),
                }),
            },
            None if optional => Ok(None),
            None => Err(missing("ConfigMap", namespace, &selector.name, container)),
        };
    }
    // fieldRef and resourceFieldRef need a running pod; KEDA skips them too.
    Ok(None)
}

fn missing(kind: &'static str, namespace: &str, name: &str, container: &str) -> ResolveError {
    ResolveError::MissingObject {
        kind,
        namespace: Some(namespace.to_owned()),
        name: name.to_owned(),
        used_by: format!("the env of container {container}"),
    }
}

/// Expands `$(VAR)` references against already-resolved variables, as the kubelet and KEDA do:
/// `$$` is a literal `$`, an unknown or unterminated reference stays as written.
pub fn expand_references(value: &str, resolved: &BTreeMap<String, String>) -> String {
    let bytes = value.as_bytes();
    let mut out = String::with_capacity(value.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] == b'$' && cursor + 3 < bytes.len() {
            out.push_str(&value[checkpoint..cursor]);
            let mut length = 1;
            let content = match bytes[cursor + 1] {
                b'$' => "$".to_owned(),
                b'(' => match value[cursor + 2..].find(')') {
                    Some(offset) => {
                        let key = &value[cursor + 2..cursor + 2 + offset];
                        length = offset + 2;
                        resolved
                            .get(key)
                            .cloned()
                            .unwrap_or_else(|| format!("$({key})"))
                    }
                    None => "$(".to_owned(),
                },
                _ => value[cursor..].chars().take(2).collect(),
            };
            out.push_str(&content);
            cursor += length;
            checkpoint = (cursor + 1).min(bytes.len());
            // A multi-byte character after `$` was copied whole; skip the rest of it.
            while checkpoint < bytes.len() && !value.is_char_boundary(checkpoint) {
                checkpoint += 1;
            }
            cursor = checkpoint;
            continue;
        }
        cursor += 1;
    }
    out.push_str(&value[checkpoint.min(value.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn expands_references_like_keda() {
        struct Case {
            value: &'static str,
            expected: &'static str,
        }
        let resolved = env(&[("HOST", "redis"), ("PORT", "6379")]);
        let cases = [
            Case {
                value: "$(HOST):$(PORT)",
                expected: "redis:6379",
            },
            Case {
                value: "$$(HOST)",
                expected: "$(HOST)",
            },
            Case {
                value: "$(UNKNOWN)x",
                expected: "$(UNKNOWN)x",
            },
            Case {
                value: "no refs",
                expected: "no refs",
            },
            Case {
                value: "$(HOST",
                expected: "$(HOST",
            },
            Case {
                value: "a$b",
                expected: "a$b",
            },
            Case {
                value: "cost $5 or $(PORT)",
                expected: "cost $5 or 6379",
            },
            Case {
                value: "$(HOST)",
                expected: "redis",
            },
        ];
        for case in cases {
            assert_eq!(
                expand_references(case.value, &resolved),
                case.expected,
                "{}",
                case.value
            );
        }
    }
}
