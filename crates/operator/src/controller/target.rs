//! The scale target: resolving `scaleTargetRef` to a group/version/kind/resource and reading or
//! writing its replica count through the `/scale` subresource, for any kind that has one.
//!
//! KEDA maps `Deployment` and `StatefulSet` of `apps` without asking the API server and resolves
//! every other kind through discovery (`apis/keda/v1alpha1/gvkr.go`); a target without `/scale`
//! is an error ("Target resource doesn't expose /scale subresource"). Discovery answers are
//! cached per group/version/kind for the life of the process, as KEDA caches confirmed ones.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::pinned_kind;

use crate::crd::GroupVersionKindResource;
use crate::crd::scaled_object::ScaleTarget;

/// Why the target could not be resolved, read or scaled.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("scaleTargetRef.apiVersion {api_version:?} is not a valid group/version")]
    BadApiVersion { api_version: String },
    #[error("Target resource doesn't exist: no kind {kind} in {api_version} ({source})")]
    UnknownKind {
        api_version: String,
        kind: String,
        #[source]
        source: kube::Error,
    },
    #[error("Target resource doesn't expose /scale subresource: {gvk}")]
    NoScaleSubresource { gvk: String },
    #[error("Target resource doesn't exist: {kind} {namespace}/{name}")]
    NotFound {
        kind: String,
        namespace: String,
        name: String,
    },
    #[error("reading the /scale subresource of {kind} {namespace}/{name}: {source}")]
    ReadScale {
        kind: String,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("updating the /scale subresource of {kind} {namespace}/{name}: {source}")]
    WriteScale {
        kind: String,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// A resolved target: where it lives and how to reach its `/scale`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub gvkr: GroupVersionKindResource,
    pub namespace: String,
    pub name: String,
}

impl Target {
    fn api_resource(&self) -> ApiResource {
        let gvk = GroupVersionKind::gvk(&self.gvkr.group, &self.gvkr.version, &self.gvkr.kind);
        ApiResource::from_gvk_with_plural(&gvk, &self.gvkr.resource)
    }

    fn api(&self, client: &kube::Client) -> Api<DynamicObject> {
        Api::namespaced_with(client.clone(), &self.namespace, &self.api_resource())
    }

    /// `<group>/<version>.<Kind>` as KEDA's events and status spell it.
    pub fn kind_string(&self) -> String {
        self.gvkr.gvk_string()
    }
}

/// The target's replica state as `/scale` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaleState {
    /// `spec.replicas` (a missing value reads as 0, as the API server reports it for /scale).
    pub replicas: i32,
    /// `status.selector`, the pods' label selector, if the kind reports one.
    pub selector: Option<String>,
}

/// Resolves group/version/kind/resource of scale targets, caching discovery answers.
#[derive(Clone, Default)]
pub struct TargetResolver {
    cache: Arc<Mutex<HashMap<(String, String), GroupVersionKindResource>>>,
}

impl std::fmt::Debug for TargetResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetResolver").finish_non_exhaustive()
    }
}

impl TargetResolver {
    /// The target of `reference` in `namespace`.
    pub async fn resolve(
        &self,
        client: &kube::Client,
        namespace: &str,
        reference: &ScaleTarget,
    ) -> Result<Target, TargetError> {
        let api_version = reference.api_version_or_default().to_owned();
        let kind = reference.kind_or_default().to_owned();
        let gvkr = self.gvkr(client, &api_version, &kind).await?;
        Ok(Target {
            gvkr,
            namespace: namespace.to_owned(),
            name: reference.name.clone(),
        })
    }

    async fn gvkr(
        &self,
        client: &kube::Client,
        api_version: &str,
        kind: &str,
    ) -> Result<GroupVersionKindResource, TargetError> {
        let (group, version) = match api_version.split_once('/') {
            Some((group, version)) if !version.is_empty() && !version.contains('/') => {
                (group.to_owned(), version.to_owned())
            }
            None if !api_version.is_empty() => (String::new(), api_version.to_owned()),
            _ => {
                return Err(TargetError::BadApiVersion {
                    api_version: api_version.to_owned(),
                });
            }
        };
        if let Some(known) = well_known(&group, &version, kind) {
            return Ok(known);
        }
        let key = (api_version.to_owned(), kind.to_owned());
        if let Some(cached) = self.lock().get(&key) {
            return Ok(cached.clone());
        }
        let gvk = GroupVersionKind::gvk(&group, &version, kind);
        let (resource, capabilities) =
            pinned_kind(client, &gvk)
                .await
                .map_err(|source| TargetError::UnknownKind {
                    api_version: api_version.to_owned(),
                    kind: kind.to_owned(),
                    source,
                })?;
        let has_scale = capabilities
            .subresources
            .iter()
            .any(|(sub, _)| sub.plural.ends_with("/scale") || sub.plural == "scale");
        if !has_scale {
            return Err(TargetError::NoScaleSubresource {
                gvk: format!("{api_version}.{kind}"),
            });
        }
        let gvkr = GroupVersionKindResource {
            group,
            version,
            kind: kind.to_owned(),
            resource: resource.plural,
        };
        self.lock().insert(key, gvkr.clone());
        Ok(gvkr)
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(String, String), GroupVersionKindResource>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// KEDA's shortcut: these kinds are never looked up.
fn well_known(group: &str, version: &str, kind: &str) -> Option<GroupVersionKindResource> {
    let resource = match (group, version, kind) {
        ("apps", "v1", "Deployment") => "deployments",
        ("apps", "v1", "StatefulSet") => "statefulsets",
        _ => return None,
    };
    Some(GroupVersionKindResource {
        group: group.to_owned(),
        version: version.to_owned(),
        kind: kind.to_owned(),
        resource: resource.to_owned(),
    })
}

/// Reads the target's `/scale`.
pub async fn read_scale(client: &kube::Client, target: &Target) -> Result<ScaleState, TargetError> {
    match target.api(client).get_scale(&target.name).await {
        Ok(scale) => Ok(ScaleState {
            replicas: scale.spec.and_then(|s| s.replicas).unwrap_or(0),
            selector: scale.status.and_then(|s| s.selector),
        }),
        Err(kube::Error::Api(status)) if status.code == 404 => Err(TargetError::NotFound {
            kind: target.kind_string(),
            namespace: target.namespace.clone(),
            name: target.name.clone(),
        }),
        Err(source) => Err(TargetError::ReadScale {
            kind: target.kind_string(),
            namespace: target.namespace.clone(),
            name: target.name.clone(),
            source,
        }),
    }
}

/// Sets the target's replica count through `/scale`.
pub async fn write_replicas(
    client: &kube::Client,
    target: &Target,
    replicas: i32,
) -> Result<(), TargetError> {
    let patch = serde_json::json!({ "spec": { "replicas": replicas } });
    target
        .api(client)
        .patch_scale(&target.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(|source| TargetError::WriteScale {
            kind: target.kind_string(),
            namespace: target.namespace.clone(),
            name: target.name.clone(),
            source,
        })
}

/// The target object itself (for its pod template), or `None` when it does not exist.
pub async fn read_object(
    client: &kube::Client,
    target: &Target,
) -> Result<Option<DynamicObject>, kube::Error> {
    target.api(client).get_opt(&target.name).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployments_and_statefulsets_need_no_discovery() {
        let deployment = well_known("apps", "v1", "Deployment").map(|g| g.resource);
        assert_eq!(deployment.as_deref(), Some("deployments"));
        let statefulset = well_known("apps", "v1", "StatefulSet").map(|g| g.resource);
        assert_eq!(statefulset.as_deref(), Some("statefulsets"));
        assert_eq!(well_known("argoproj.io", "v1alpha1", "Rollout"), None);
    }
}
