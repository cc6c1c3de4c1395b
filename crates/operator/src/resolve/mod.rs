//! Turns one trigger of a ScaledObject into the [`TriggerParams`] its scaler parses: the
//! trigger's metadata, the scale target container's environment (for `<key>FromEnv`), and the
//! parameters of its TriggerAuthentication or ClusterTriggerAuthentication.
//!
//! Resolution reads objects by exact name through [`ObjectLookup`], so the same code serves the
//! offline manifest set (`check`, `plan`) and, later, a cache the operator fills from the API.
//! KEDA's order for authentication parameters (later sources overwrite earlier ones): `env`,
//! then `filePath` (ClusterTriggerAuthentication only, and then nothing else),
//! `configMapTargetRef`, `secretTargetRef`, the external secret stores, bound service account
//! tokens and `oauth2`.
//!
//! Offline, a referenced object the set lacks is an error that says what to add (KEDA logs it
//! and uses an empty value). Secret stores that need the network (Vault, cloud secret managers)
//! and service account tokens cannot be resolved offline; their parameters stay unset and
//! [`Resolved::notes`] says so.

pub mod env;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;
use scaler_core::TriggerParams;

use crate::crd::scaled_object::{AuthenticationRefKind, ScaleTrigger, ScaledObject};
use crate::crd::trigger_authentication::TriggerAuthenticationSpec;

/// Where the objects a trigger refers to are read from, by exact name.
pub trait ObjectLookup {
    /// A Secret's data (`data` decoded, merged with `stringData`), if the Secret exists.
    fn secret_data(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ResolveError>;
    /// A ConfigMap's `data`, if the ConfigMap exists.
    fn config_map_data(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ResolveError>;
    /// The pod spec of a workload (`spec.template.spec`), if the workload exists.
    fn workload_pod_spec(
        &self,
        namespace: &str,
        api_version: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<PodSpec>, ResolveError>;
    fn trigger_authentication(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<TriggerAuthenticationSpec>, ResolveError>;
    fn cluster_trigger_authentication(
        &self,
        name: &str,
    ) -> Result<Option<TriggerAuthenticationSpec>, ResolveError>;
}

/// Why a trigger's parameters could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("{kind} {} is not in the manifests, but {used_by} needs it (fix: add its manifest with -f)", qualified(.namespace.as_deref(), .name))]
    MissingObject {
        kind: &'static str,
        namespace: Option<String>,
        name: String,
        used_by: String,
    },
    #[error(
        "{kind} {namespace}/{name} has no key {key:?}, but {used_by} reads it (fix: add the key, or mark the reference optional)"
    )]
    MissingKey {
        kind: &'static str,
        namespace: String,
        name: String,
        key: String,
        used_by: String,
    },
    #[error("couldn't find container with name {container} on Target object (it has: {}) (fix: correct scaleTargetRef.envSourceContainerName)", .available.join(", "))]
    ContainerNotFound {
        container: String,
        available: Vec<String>,
    },
    #[error("target object doesn't have containers")]
    NoContainers,
    #[error("{object}: {message}")]
    Malformed { object: String, message: String },
    #[error(
        "filePath is only supported for ClusterTriggerAuthentication, got kind: TriggerAuthentication (fix: move filePath to a ClusterTriggerAuthentication)"
    )]
    FilePathNotCluster,
}

fn qualified(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(namespace) => format!("{namespace}/{name}"),
        None => name.to_owned(),
    }
}

/// Settings that decide where cluster-wide references are read.
#[derive(Clone, Debug)]
pub struct ResolveOptions {
    /// Where ClusterTriggerAuthentications' Secrets and ConfigMaps live (KEDA's
    /// `KEDA_CLUSTER_OBJECT_NAMESPACE`, by default the operator's namespace).
    pub cluster_object_namespace: String,
}

impl Default for ResolveOptions {
    fn default() -> Self {
        Self {
            cluster_object_namespace: "keda".to_owned(),
        }
    }
}

/// A trigger's parameters, with notes on what could not be resolved offline.
#[derive(Clone, Debug, Default)]
pub struct Resolved {
    pub params: TriggerParams,
    /// Parameters left unset because their source needs a cluster or the network.
    pub notes: Vec<String>,
}

/// The scale target's pod spec, read only when a trigger needs its environment.
struct TargetPod<'a> {
    scaled_object: &'a ScaledObject,
    objects: &'a dyn ObjectLookup,
    pod: Option<Option<PodSpec>>,
}

impl TargetPod<'_> {
    fn get(&mut self, used_by: &str) -> Result<&PodSpec, ResolveError> {
        if self.pod.is_none() {
            let target = &self.scaled_object.spec.scale_target_ref;
            let namespace = self
                .scaled_object
                .metadata
                .namespace
                .as_deref()
                .unwrap_or("default");
            self.pod = Some(self.objects.workload_pod_spec(
                namespace,
                target.api_version_or_default(),
                target.kind_or_default(),
                &target.name,
            )?);
        }
        let target = &self.scaled_object.spec.scale_target_ref;
        match &self.pod {
            Some(Some(pod)) => Ok(pod),
            _ => Err(ResolveError::MissingObject {
                kind: "scale target",
                namespace: self.scaled_object.metadata.namespace.clone(),
                name: format!("{} {}", target.kind_or_default(), target.name),
                used_by: used_by.to_owned(),
            }),
        }
    }
}

/// Resolves the parameters of `trigger` (of `scaled_object`) as KEDA would.
pub fn resolve_trigger(
    scaled_object: &ScaledObject,
    trigger: &ScaleTrigger,
    objects: &dyn ObjectLookup,
    options: &ResolveOptions,
) -> Result<Resolved, ResolveError> {
    let namespace = scaled_object
        .metadata
        .namespace
        .as_deref()
        .unwrap_or("default");
    let mut target = TargetPod {
        scaled_object,
        objects,
        pod: None,
    };
    let mut resolved = Resolved {
        params: TriggerParams {
            metadata: trigger.metadata.clone(),
            ..TriggerParams::default()
        },
        notes: Vec::new(),
    };

    let uses_env = trigger
        .metadata
        .iter()
        .any(|(key, value)| key.ends_with("FromEnv") && !value.trim().is_empty());
    if uses_env {
        let pod = target.get("the trigger's *FromEnv parameters")?;
        let container_name = scaled_object
            .spec
            .scale_target_ref
            .env_source_container_name
            .as_deref();
        let container = env::select_container(pod, container_name)?;
        resolved.params.resolved_env = env::resolve_container_env(container, namespace, objects)?;
    }

    if let Some(reference) = trigger
        .authentication_ref
        .as_ref()
        .filter(|r| !r.name.is_empty())
    {
        let kind = reference.kind_or_default();
        let (spec, secrets_namespace, kind_name) = match kind {
            AuthenticationRefKind::TriggerAuthentication => (
                objects.trigger_authentication(namespace, &reference.name)?,
                namespace.to_owned(),
                "TriggerAuthentication",
            ),
            AuthenticationRefKind::ClusterTriggerAuthentication => (
                objects.cluster_trigger_authentication(&reference.name)?,
                options.cluster_object_namespace.clone(),
                "ClusterTriggerAuthentication",
            ),
        };
        let spec = spec.ok_or_else(|| ResolveError::MissingObject {
            kind: kind_name,
            namespace: (kind == AuthenticationRefKind::TriggerAuthentication)
                .then(|| namespace.to_owned()),
            name: reference.name.clone(),
            used_by: "the trigger's authenticationRef".to_owned(),
        })?;
        let used_by = format!("{kind_name} {}", reference.name);
        resolve_auth(
            &spec,
            kind,
            &secrets_namespace,
            namespace,
            &used_by,
            &mut target,
            objects,
            &mut resolved,
        )?;
    }
    Ok(resolved)
}

/// KEDA's `resolveAuthRef`, for the sources that can be read offline.
#[allow(clippy::too_many_arguments)]
fn resolve_auth(
    spec: &TriggerAuthenticationSpec,
    kind: AuthenticationRefKind,
    secrets_namespace: &str,
    namespace: &str,
    used_by: &str,
    target: &mut TargetPod<'_>,
    objects: &dyn ObjectLookup,
    resolved: &mut Resolved,
) -> Result<(), ResolveError> {
    let params = &mut resolved.params.auth_params;
    for entry in spec.env.iter().flatten() {
        let pod = target.get(&format!("{used_by} (env parameter {})", entry.parameter))?;
        let container = env::select_container(pod, entry.container_name.as_deref())?;
        let environment = env::resolve_container_env(container, namespace, objects)?;
        params.insert(
            entry.parameter.clone(),
            environment.get(&entry.name).cloned().unwrap_or_default(),
        );
    }
    if let Some(path) = spec.file_path.as_deref().filter(|p| !p.is_empty()) {
        if kind != AuthenticationRefKind::ClusterTriggerAuthentication {
            return Err(ResolveError::FilePathNotCluster);
        }
        params.clear();
        resolved.notes.push(format!(
            "{used_by}: filePath {path:?} is read by the operator from its auth root; its parameters are unknown offline"
        ));
        return Ok(());
    }
    for reference in spec.config_map_target_ref.iter().flatten() {
        let data = objects
            .config_map_data(secrets_namespace, &reference.name)?
            .ok_or_else(|| ResolveError::MissingObject {
                kind: "ConfigMap",
                namespace: Some(secrets_namespace.to_owned()),
                name: reference.name.clone(),
                used_by: format!("{used_by} (parameter {})", reference.parameter),
            })?;
        let value = data
            .get(&reference.key)
            .cloned()
            .ok_or_else(|| ResolveError::MissingKey {
                kind: "ConfigMap",
                namespace: secrets_namespace.to_owned(),
                name: reference.name.clone(),
                key: reference.key.clone(),
                used_by: format!("{used_by} (parameter {})", reference.parameter),
            })?;
        params.insert(reference.parameter.clone(), value);
    }
    for reference in spec.secret_target_ref.iter().flatten() {
        let value = secret_value(
            objects,
            secrets_namespace,
            &reference.name,
            &reference.key,
            &format!("{used_by} (parameter {})", reference.parameter),
        )?;
        params.insert(reference.parameter.clone(), value);
    }
    let mut offline_only = |source: &str, parameters: Vec<&str>| {
        if !parameters.is_empty() {
            resolved.notes.push(format!(
                "{used_by}: {source} parameters ({}) need the cluster; they are unset offline",
                parameters.join(", ")
            ));
        }
    };
    if let Some(vault) = &spec.hashi_corp_vault {
        offline_only(
            "hashiCorpVault",
            vault.secrets.iter().map(|s| s.parameter.as_str()).collect(),
        );
    }
    if let Some(store) = &spec.azure_key_vault {
        offline_only(
            "azureKeyVault",
            store.secrets.iter().map(|s| s.parameter.as_str()).collect(),
        );
    }
    if let Some(store) = &spec.gcp_secret_manager {
        offline_only(
            "gcpSecretManager",
            store.secrets.iter().map(|s| s.parameter.as_str()).collect(),
        );
    }
    if let Some(store) = &spec.aws_secret_manager {
        offline_only(
            "awsSecretManager",
            store.secrets.iter().map(|s| s.parameter.as_str()).collect(),
        );
    }
    if let Some(tokens) = &spec.bound_service_account_token {
        offline_only(
            "boundServiceAccountToken",
            tokens.iter().map(|t| t.parameter.as_str()).collect(),
        );
    }
    let params = &mut resolved.params.auth_params;
    if let Some(oauth) = &spec.oauth2 {
        let secret = match &oauth.client_secret {
            Some(holder) => {
                let reference = &holder.value_from.secret_key_ref;
                secret_value(
                    objects,
                    secrets_namespace,
                    &reference.name,
                    &reference.key,
                    &format!("{used_by} (oauth2.clientSecret)"),
                )?
            }
            None => String::new(),
        };
        params.insert("oauthTokenURI".into(), oauth.token_url.clone());
        params.insert("clientID".into(), oauth.client_id.clone());
        params.insert("clientSecret".into(), secret);
        if let Some(scopes) = oauth.scopes.as_ref().filter(|s| !s.is_empty()) {
            params.insert("scopes".into(), scopes.join(","));
        }
        if let Some(extra) = oauth.token_url_params.as_ref().filter(|p| !p.is_empty()) {
            params.insert("endpointParams".into(), form_encode(extra));
        }
    }
    Ok(())
}

fn secret_value(
    objects: &dyn ObjectLookup,
    namespace: &str,
    name: &str,
    key: &str,
    used_by: &str,
) -> Result<String, ResolveError> {
    let data =
        objects
            .secret_data(namespace, name)?
            .ok_or_else(|| ResolveError::MissingObject {
                kind: "Secret",
                namespace: Some(namespace.to_owned()),
                name: name.to_owned(),
                used_by: used_by.to_owned(),
            })?;
    data.get(key)
        .cloned()
        .ok_or_else(|| ResolveError::MissingKey {
            kind: "Secret",
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            key: key.to_owned(),
            used_by: used_by.to_owned(),
        })
}

/// `application/x-www-form-urlencoded`, keys sorted, as Go's `url.Values.Encode`.
fn form_encode(pairs: &BTreeMap<String, String>) -> String {
    fn escape(text: &str) -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_owned(),
                other => format!("%{other:02X}"),
            })
            .collect()
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_matches_go() {
        let pairs = BTreeMap::from([
            ("b".to_owned(), "x y".to_owned()),
            ("a".to_owned(), "1&2".to_owned()),
        ]);
        assert_eq!(form_encode(&pairs), "a=1%262&b=x+y");
    }
}
