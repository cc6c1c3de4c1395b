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
//! The authentication's `spec.podIdentity` travels beside the parameters
//! ([`Resolved::pod_identity`]), as KEDA's `ResolveAuthRefAndPodIdentity` returns it, with that
//! function's adjustments: provider `aws` with `roleArn` sets authParam `awsRoleArn` (and
//! `roleArn` with `identityOwner: workload` is an error); `identityOwner: workload` and provider
//! `aws-eks` read `awsRoleArn` from the workload's ServiceAccount annotation
//! `eks.amazonaws.com/role-arn`, which needs the cluster (a note offline); `azure-workload` with
//! an empty `identityId` is an error. KEDA applies these only when the scale target has a pod
//! template; Windlass applies them always.
//!
//! Offline, a referenced object the set lacks is an error that says what to add (KEDA logs it
//! and uses an empty value). Secret stores that need the network (Vault, cloud secret managers)
//! and service account tokens cannot be resolved offline; their parameters stay unset and
//! [`Resolved::notes`] says so.

pub mod env;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;
use scaler_core::TriggerParams;
use scaler_core::registry::PodIdentity;

use crate::crd::scaled_object::{AuthenticationRefKind, ScaleTrigger, ScaledObject};
use crate::crd::trigger_authentication::{
    AuthPodIdentity, IdentityOwner, PodIdentityProvider, TriggerAuthenticationSpec,
};

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
    #[error("{kind} {} is not in the manifests but is needed by {used_by} (fix: add its manifest with -f)", qualified(.namespace.as_deref(), .name))]
    MissingObject {
        kind: &'static str,
        namespace: Option<String>,
        name: String,
        used_by: String,
    },
    #[error(
        "the scale target {kind} {namespace}/{name} is not in the manifests but is needed by {used_by} (fix: add its manifest with -f)"
    )]
    MissingTarget {
        kind: String,
        namespace: String,
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
    /// The authentication's `spec.podIdentity`; `None` without authentication or pod identity
    /// (KEDA's provider `none`).
    pub pod_identity: Option<PodIdentity>,
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
            _ => Err(ResolveError::MissingTarget {
                kind: target.kind_or_default().to_owned(),
                namespace: self
                    .scaled_object
                    .metadata
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".to_owned()),
                name: target.name.clone(),
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
        pod_identity: None,
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
        if let Some(identity) = &spec.pod_identity {
            apply_pod_identity(identity, &used_by, &mut resolved)?;
        }
    }
    Ok(resolved)
}

/// `provider` as the CRD writes it.
fn provider_name(provider: PodIdentityProvider) -> &'static str {
    match provider {
        PodIdentityProvider::AzureWorkload => PodIdentity::AZURE_WORKLOAD,
        PodIdentityProvider::Gcp => PodIdentity::GCP,
        PodIdentityProvider::Aws => PodIdentity::AWS,
        PodIdentityProvider::AwsEks => PodIdentity::AWS_EKS,
        PodIdentityProvider::None => PodIdentity::NONE,
    }
}

/// The CRD's pod identity as the plain data scalers read.
pub fn pod_identity_of(identity: &AuthPodIdentity) -> PodIdentity {
    PodIdentity {
        provider: provider_name(identity.provider).to_owned(),
        role_arn: identity.role_arn.clone(),
        external_id: identity.external_id.clone(),
        identity_owner: identity.identity_owner.map(|owner| {
            match owner {
                IdentityOwner::Keda => "keda",
                IdentityOwner::Workload => "workload",
            }
            .to_owned()
        }),
        identity_id: identity.identity_id.clone(),
        identity_tenant_id: identity.identity_tenant_id.clone(),
        identity_authority_host: identity.identity_authority_host.clone(),
    }
}

/// KEDA's `ResolveAuthRefAndPodIdentity`: records the pod identity and applies its per-provider
/// adjustments to the parameters.
fn apply_pod_identity(
    identity: &AuthPodIdentity,
    used_by: &str,
    resolved: &mut Resolved,
) -> Result<(), ResolveError> {
    let service_account_role = || {
        format!(
            "{used_by}: podIdentity ({}) reads awsRoleArn from the workload's ServiceAccount annotation eks.amazonaws.com/role-arn, which needs the cluster; it is unset offline",
            provider_name(identity.provider)
        )
    };
    match identity.provider {
        PodIdentityProvider::Aws => {
            if let Some(role_arn) = &identity.role_arn {
                if identity.is_workload_identity_owner() {
                    return Err(ResolveError::Malformed {
                        object: used_by.to_owned(),
                        message: "roleArn can't be set if KEDA isn't identity owner, current value: 'workload' (fix: remove podIdentity.roleArn, or set identityOwner: keda)".to_owned(),
                    });
                }
                resolved
                    .params
                    .auth_params
                    .insert("awsRoleArn".into(), role_arn.clone());
            }
            if identity.is_workload_identity_owner() {
                resolved.notes.push(service_account_role());
            }
        }
        PodIdentityProvider::AwsEks => resolved.notes.push(service_account_role()),
        PodIdentityProvider::AzureWorkload => {
            if identity.identity_id.as_deref() == Some("") {
                return Err(ResolveError::Malformed {
                    object: used_by.to_owned(),
                    message: "IdentityID of PodIdentity should not be empty (fix: remove podIdentity.identityId, or give the identity's client id)".to_owned(),
                });
            }
        }
        PodIdentityProvider::Gcp | PodIdentityProvider::None => {}
    }
    resolved.pod_identity = Some(pod_identity_of(identity));
    Ok(())
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
    use crate::manifest::ManifestSet;

    const OBJECTS: &str = r#"
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: aws-auth
  namespace: apps
spec:
  podIdentity:
    provider: aws
    roleArn: arn:aws:iam::123456789012:role/keda
    externalID: ext
---
apiVersion: keda.sh/v1alpha1
kind: ClusterTriggerAuthentication
metadata:
  name: azure-auth
spec:
  podIdentity:
    provider: azure-workload
    identityId: client-1
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: workload-owner
  namespace: apps
spec:
  podIdentity:
    provider: aws
    identityOwner: workload
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: workload-with-role
  namespace: apps
spec:
  podIdentity:
    provider: aws
    identityOwner: workload
    roleArn: arn:aws:iam::123456789012:role/x
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: empty-identity-id
  namespace: apps
spec:
  podIdentity:
    provider: azure-workload
    identityId: ""
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: secrets-only
  namespace: apps
spec:
  secretTargetRef:
  - parameter: token
    name: creds
    key: token
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: apps
stringData:
  token: t0k3n
"#;

    fn scaled_object(auth_ref: &str) -> ScaledObject {
        let yaml = format!(
            r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: web
  namespace: apps
spec:
  scaleTargetRef:
    name: web
  triggers:
  - type: prometheus
    metadata:
      serverAddress: http://prometheus:9090
      query: up
      threshold: "1"
{auth_ref}
"#
        );
        serde_yaml_ng::from_str(&yaml).unwrap()
    }

    fn resolve(auth_ref: &str) -> Result<Resolved, ResolveError> {
        let mut set = ManifestSet::default();
        set.add_yaml("objects.yaml", OBJECTS).unwrap();
        let so = scaled_object(auth_ref);
        resolve_trigger(&so, &so.spec.triggers[0], &set, &ResolveOptions::default())
    }

    #[test]
    fn pod_identity_of_a_trigger_authentication_arrives() {
        let resolved = resolve("    authenticationRef:\n      name: aws-auth").unwrap();
        assert_eq!(
            resolved.pod_identity,
            Some(PodIdentity {
                provider: "aws".into(),
                role_arn: Some("arn:aws:iam::123456789012:role/keda".into()),
                external_id: Some("ext".into()),
                ..PodIdentity::default()
            })
        );
        // KEDA's resolver also hands the role to the scalers as authParam awsRoleArn.
        assert_eq!(
            resolved
                .params
                .auth_params
                .get("awsRoleArn")
                .map(String::as_str),
            Some("arn:aws:iam::123456789012:role/keda")
        );
        assert!(resolved.notes.is_empty());
    }

    #[test]
    fn pod_identity_of_a_cluster_trigger_authentication_arrives() {
        let resolved = resolve(
            "    authenticationRef:\n      name: azure-auth\n      kind: ClusterTriggerAuthentication",
        )
        .unwrap();
        let identity = resolved.pod_identity.unwrap();
        assert_eq!(identity.provider, "azure-workload");
        assert_eq!(identity.identity_id.as_deref(), Some("client-1"));
        assert!(identity.is_enabled());
        assert!(resolved.params.auth_params.is_empty());
    }

    #[test]
    fn no_pod_identity_without_one() {
        assert_eq!(resolve("").unwrap().pod_identity, None);
        let resolved = resolve("    authenticationRef:\n      name: secrets-only").unwrap();
        assert_eq!(resolved.pod_identity, None);
        assert_eq!(
            resolved.params.auth_params.get("token").map(String::as_str),
            Some("t0k3n")
        );
    }

    #[test]
    fn pod_identity_rules_of_kedas_resolver() {
        let resolved = resolve("    authenticationRef:\n      name: workload-owner").unwrap();
        let identity = resolved.pod_identity.unwrap();
        assert_eq!(identity.identity_owner.as_deref(), Some("workload"));
        assert!(!resolved.params.auth_params.contains_key("awsRoleArn"));
        assert_eq!(resolved.notes.len(), 1);
        assert!(resolved.notes[0].contains("eks.amazonaws.com/role-arn"));

        let error = resolve("    authenticationRef:\n      name: workload-with-role").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("roleArn can't be set if KEDA isn't identity owner"),
            "{error}"
        );
        let error = resolve("    authenticationRef:\n      name: empty-identity-id").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("IdentityID of PodIdentity should not be empty"),
            "{error}"
        );
    }

    #[test]
    fn form_encoding_matches_go() {
        let pairs = BTreeMap::from([
            ("b".to_owned(), "x y".to_owned()),
            ("a".to_owned(), "1&2".to_owned()),
        ]);
        assert_eq!(form_encode(&pairs), "a=1%262&b=x+y");
    }

    #[test]
    fn pod_identity_reaches_the_trigger_config() {
        let mut set = ManifestSet::default();
        set.add_yaml("objects.yaml", OBJECTS).unwrap();
        set.add_yaml(
            "so.yaml",
            r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: web
  namespace: apps
spec:
  scaleTargetRef:
    name: web
  triggers:
  - type: prometheus
    metadata:
      serverAddress: http://prometheus:9090
      query: up
      threshold: "1"
      authModes: bearer
    authenticationRef:
      name: azure-auth
      kind: ClusterTriggerAuthentication
"#,
        )
        .unwrap();
        let registry = scalers::builtin_registry();
        let objects = crate::prepare::prepare_all(
            &set,
            &registry,
            &scalers::ScalerContext::default(),
            &ResolveOptions::default(),
        );
        let trigger = &objects[0].triggers[0];
        let config = trigger.config.as_ref().unwrap();
        assert_eq!(config.pod_identity_provider(), "azure-workload");
        // prometheus refuses authModes next to a pod identity, as KEDA does
        assert!(
            trigger
                .errors
                .iter()
                .any(|e| e.to_string().contains("pod identity cannot be enabled")),
            "{:?}",
            trigger.errors
        );
    }
}
