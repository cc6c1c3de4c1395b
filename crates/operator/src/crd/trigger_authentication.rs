//! `TriggerAuthentication` (namespaced) and `ClusterTriggerAuthentication` (cluster-scoped):
//! where a trigger's secret parameters come from. Both kinds share [`TriggerAuthenticationSpec`]
//! and [`TriggerAuthenticationStatus`].
//!
//! `TriggerAuthentication` is derived with `kube::CustomResource`. The derive produces one root
//! type per spec type, so `ClusterTriggerAuthentication` is written by hand around the same spec
//! and its CRD is derived from the TriggerAuthentication one (scope, names and one extra printer
//! column differ).

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResource;
use kube::core::object::{HasSpec, HasStatus};
use kube::core::{ApiResource, ClusterResourceScope, CustomResourceExt, Resource};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Ways a trigger can obtain its authentication parameters. Sources are combined; for the same
/// parameter, later sources in this order win: env, configMapTargetRef, secretTargetRef,
/// hashiCorpVault, azureKeyVault, gcpSecretManager, awsSecretManager, boundServiceAccountToken,
/// oauth2.
// Repeated `printcolumn(...)`/`shortname` arguments are intended.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "keda.sh",
    version = "v1alpha1",
    kind = "TriggerAuthentication",
    plural = "triggerauthentications",
    singular = "triggerauthentication",
    namespaced,
    shortname = "ta",
    shortname = "triggerauth",
    status = "TriggerAuthenticationStatus",
    derive = "PartialEq",
    doc = "TriggerAuthentication tells the triggers of ScaledObjects in its namespace where to find credentials and other secret parameters.",
    printcolumn(
        name = "PodIdentity",
        type_ = "string",
        json_path = ".spec.podIdentity.provider"
    ),
    printcolumn(
        name = "Secret",
        type_ = "string",
        json_path = ".spec.secretTargetRef[*].name"
    ),
    printcolumn(name = "Env", type_ = "string", json_path = ".spec.env[*].name"),
    printcolumn(
        name = "VaultAddress",
        type_ = "string",
        json_path = ".spec.hashiCorpVault.address"
    ),
    printcolumn(
        name = "ScaledObjects",
        type_ = "string",
        priority = 1,
        json_path = ".status.scaledobjects"
    ),
    printcolumn(
        name = "ScaledJobs",
        type_ = "string",
        priority = 1,
        json_path = ".status.scaledjobs"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::strip_null)]
pub struct TriggerAuthenticationSpec {
    /// Platform workload identity to authenticate with (Azure, GCP, AWS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_identity: Option<AuthPodIdentity>,
    /// Parameters read from keys of Secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_target_ref: Option<Vec<AuthSecretTargetRef>>,
    /// Parameters read from keys of ConfigMaps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_map_target_ref: Option<Vec<AuthConfigMapTargetRef>>,
    /// Parameters read from environment variables of the scale target's containers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<AuthEnvironment>>,
    /// ClusterTriggerAuthentication only: path, relative to the operator's auth root directory,
    /// of a JSON file mapping parameter names to values. When set, only this file is used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,
    /// Parameters read from HashiCorp Vault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hashi_corp_vault: Option<HashiCorpVault>,
    /// Parameters read from Azure Key Vault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure_key_vault: Option<AzureKeyVault>,
    /// Parameters read from GCP Secret Manager.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gcp_secret_manager: Option<GcpSecretManager>,
    /// Parameters read from AWS Secrets Manager.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_secret_manager: Option<AwsSecretManager>,
    /// Parameters set to short-lived tokens of ServiceAccounts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bound_service_account_token: Option<Vec<BoundServiceAccountToken>>,
    /// OAuth2 client-credentials settings handed to the scaler.
    #[serde(rename = "oauth2", skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2>,
}

/// Objects currently referring to this authentication.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = super::strip_null)]
pub struct TriggerAuthenticationStatus {
    /// Comma-separated names of the ScaledObjects using it.
    #[serde(rename = "scaledobjects", skip_serializing_if = "Option::is_none")]
    pub scaled_objects: Option<String>,
    /// Comma-separated names of the ScaledJobs using it.
    #[serde(rename = "scaledjobs", skip_serializing_if = "Option::is_none")]
    pub scaled_jobs: Option<String>,
}

/// Workload identity provider.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum PodIdentityProvider {
    /// Azure Workload Identity.
    #[serde(rename = "azure-workload")]
    AzureWorkload,
    /// GCP Workload Identity.
    #[serde(rename = "gcp")]
    Gcp,
    /// AWS IAM role (IRSA or EKS Pod Identity).
    #[serde(rename = "aws")]
    Aws,
    /// AWS IRSA through the workload's ServiceAccount annotation (deprecated in favour of aws).
    #[serde(rename = "aws-eks")]
    AwsEks,
    /// No identity.
    #[default]
    #[serde(rename = "none")]
    None,
}

/// Which identity to use when discovering the AWS role.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum IdentityOwner {
    /// The operator's own identity.
    #[default]
    Keda,
    /// The scaled workload's identity (its ServiceAccount's role annotation).
    Workload,
}

/// Platform workload identity settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthPodIdentity {
    /// Identity provider: azure-workload, gcp, aws, aws-eks or none.
    pub provider: PodIdentityProvider,
    /// Azure: client id of the identity to use instead of the default one; must not be empty
    /// when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_id: Option<String>,
    /// Azure: tenant to use instead of the default one; requires identityId.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_tenant_id: Option<String>,
    /// Azure: authority host to use instead of the default one; requires identityTenantId.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_authority_host: Option<String>,
    /// AWS: role to assume. Cannot be combined with identityOwner workload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// AWS: external id passed when assuming roleArn; requires roleArn.
    #[serde(rename = "externalID", skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// AWS: use the operator's (keda) or the workload's identity. Cannot be combined with roleArn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_owner: Option<IdentityOwner>,
}

impl AuthPodIdentity {
    /// `identityId`, `""` when unset.
    pub fn identity_id_or_empty(&self) -> &str {
        self.identity_id.as_deref().unwrap_or("")
    }

    /// `identityTenantId`, `""` when unset.
    pub fn identity_tenant_id_or_empty(&self) -> &str {
        self.identity_tenant_id.as_deref().unwrap_or("")
    }

    /// `identityAuthorityHost`, `""` when unset.
    pub fn identity_authority_host_or_empty(&self) -> &str {
        self.identity_authority_host.as_deref().unwrap_or("")
    }

    /// `identityOwner` is `workload`.
    pub fn is_workload_identity_owner(&self) -> bool {
        self.identity_owner == Some(IdentityOwner::Workload)
    }
}

/// A parameter taken from one key of a Secret or ConfigMap.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuthTargetRef {
    /// Trigger parameter to set.
    pub parameter: String,
    /// Name of the Secret or ConfigMap.
    pub name: String,
    /// Key within it.
    pub key: String,
}

/// A parameter taken from a Secret key.
pub type AuthSecretTargetRef = AuthTargetRef;
/// A parameter taken from a ConfigMap key.
pub type AuthConfigMapTargetRef = AuthTargetRef;

/// A parameter taken from an environment variable of the scale target.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthEnvironment {
    /// Trigger parameter to set.
    pub parameter: String,
    /// Name of the environment variable.
    pub name: String,
    /// Container to read it from. Defaults to the first container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
}

/// Parameters read from HashiCorp Vault.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HashiCorpVault {
    /// Vault server address.
    pub address: String,
    /// How to log in: token or kubernetes.
    pub authentication: VaultAuthentication,
    /// Secrets to read; at least one.
    #[schemars(length(min = 1))]
    pub secrets: Vec<VaultSecret>,
    /// Vault namespace (Vault Enterprise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Token or ServiceAccount used to log in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<VaultCredential>,
    /// Vault role for kubernetes authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Mount path of the kubernetes auth method.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount: Option<String>,
}

/// Vault login method.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum VaultAuthentication {
    /// A static Vault token.
    #[default]
    Token,
    /// A Kubernetes ServiceAccount token exchanged for a Vault token.
    Kubernetes,
}

/// Vault login material; which fields matter depends on the authentication method.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultCredential {
    /// Vault token (token authentication).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Path of a ServiceAccount token file (kubernetes authentication).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// ServiceAccount whose token is requested (kubernetes authentication).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
}

/// Kind of Vault secret engine a secret is read from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum VaultSecretType {
    /// Generic read of the path.
    #[default]
    #[serde(rename = "")]
    Generic,
    /// Key/value engine version 2.
    #[serde(rename = "secretV2")]
    SecretV2,
    /// Key/value engine version 1.
    #[serde(rename = "secret")]
    Secret,
    /// PKI engine: issue a certificate.
    #[serde(rename = "pki")]
    Pki,
}

/// One Vault secret mapped to a trigger parameter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultSecret {
    /// Trigger parameter to set.
    pub parameter: String,
    /// Vault path of the secret.
    pub path: String,
    /// Key within the secret.
    pub key: String,
    /// Secret engine type: "" (generic), secretV2, secret or pki.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<VaultSecretType>,
    /// Certificate request for the pki type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pki_data: Option<VaultPkiData>,
}

/// Certificate request sent to a Vault PKI engine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultPkiData {
    /// Common name of the certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
    /// Subject alternative DNS names, comma-separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alt_names: Option<String>,
    /// IP subject alternative names, comma-separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_sans: Option<String>,
    /// URI subject alternative names, comma-separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri_sans: Option<String>,
    /// Other subject alternative names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_sans: Option<String>,
    /// Requested lifetime.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Output format (pem, der, pem_bundle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// Parameters read from Azure Key Vault.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKeyVault {
    /// URI of the key vault.
    pub vault_uri: String,
    /// Secrets to read; at least one.
    #[schemars(length(min = 1))]
    pub secrets: Vec<AzureKeyVaultSecret>,
    /// Service principal used to read the vault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<AzureKeyVaultCredentials>,
    /// Workload identity used to read the vault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_identity: Option<AuthPodIdentity>,
    /// Azure cloud the vault lives in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud: Option<AzureKeyVaultCloudInfo>,
}

/// Service principal credentials for Azure Key Vault.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKeyVaultCredentials {
    /// Application (client) id.
    pub client_id: String,
    /// Directory (tenant) id.
    pub tenant_id: String,
    /// Secret holding the client secret.
    pub client_secret: ValueFromSecretHolder,
}

/// Wrapper holding `valueFrom.secretKeyRef`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValueFromSecretHolder {
    /// Where the value comes from.
    pub value_from: ValueFromSecret,
}

/// A value taken from a Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValueFromSecret {
    /// The Secret key holding the value.
    pub secret_key_ref: SecretKeyRef,
}

/// One key of a Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretKeyRef {
    /// Name of the Secret.
    pub name: String,
    /// Key within the Secret.
    pub key: String,
}

/// One Azure Key Vault secret mapped to a trigger parameter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKeyVaultSecret {
    /// Trigger parameter to set.
    pub parameter: String,
    /// Name of the secret in the vault.
    pub name: String,
    /// Secret version. Defaults to the latest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Azure cloud settings for Key Vault.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKeyVaultCloudInfo {
    /// Cloud name, e.g. AzurePublicCloud, AzureChinaCloud, or Private.
    #[serde(rename = "type")]
    pub type_: String,
    /// Key Vault resource URL; needed for a private cloud.
    #[serde(
        rename = "keyVaultResourceURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub key_vault_resource_url: Option<String>,
    /// Active Directory endpoint; needed for a private cloud.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_directory_endpoint: Option<String>,
}

/// Parameters read from GCP Secret Manager.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcpSecretManager {
    /// Secrets to read; at least one.
    #[schemars(length(min = 1))]
    pub secrets: Vec<GcpSecretManagerSecret>,
    /// Service account key used to read the secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<GcpCredentials>,
    /// Workload identity used to read the secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_identity: Option<AuthPodIdentity>,
}

/// GCP service account key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcpCredentials {
    /// Secret holding the service account key JSON.
    pub client_secret: ValueFromSecretHolder,
}

/// One GCP secret mapped to a trigger parameter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcpSecretManagerSecret {
    /// Trigger parameter to set.
    pub parameter: String,
    /// Secret id.
    pub id: String,
    /// Secret version. Defaults to latest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Parameters read from AWS Secrets Manager.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsSecretManager {
    /// Secrets to read; at least one.
    #[schemars(length(min = 1))]
    pub secrets: Vec<AwsSecretManagerSecret>,
    /// Static access keys used to read the secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<AwsSecretManagerCredentials>,
    /// Workload identity used to read the secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_identity: Option<AuthPodIdentity>,
    /// AWS region of the secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// Static AWS access keys, each read from a Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsSecretManagerCredentials {
    /// Access key id.
    pub access_key: ValueFromSecretHolder,
    /// Secret access key.
    pub access_secret_key: ValueFromSecretHolder,
    /// Session token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<ValueFromSecretHolder>,
}

/// One AWS secret mapped to a trigger parameter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsSecretManagerSecret {
    /// Trigger parameter to set.
    pub parameter: String,
    /// Secret name or ARN.
    pub name: String,
    /// Secret version id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// Secret version stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_stage: Option<String>,
    /// Key within a JSON secret value; the whole value when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
}

/// A parameter set to a token issued for a ServiceAccount.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BoundServiceAccountToken {
    /// Trigger parameter to set.
    pub parameter: String,
    /// ServiceAccount, in the object's namespace, to issue the token for.
    pub service_account_name: String,
}

/// OAuth2 grant type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OAuth2GrantType {
    /// Client-credentials grant.
    #[default]
    ClientCredentials,
}

/// OAuth2 settings turned into the parameters oauthTokenURI, clientID, clientSecret, scopes and
/// endpointParams.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2 {
    /// Grant type; only clientCredentials. Defaults to clientCredentials.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(required, extend("default" = "clientCredentials"))]
    pub type_: Option<OAuth2GrantType>,
    /// OAuth2 client id.
    pub client_id: String,
    /// Secret holding the client secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<ValueFromSecretHolder>,
    /// Token endpoint (http or https URL).
    pub token_url: String,
    /// Scopes to request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Extra form parameters sent to the token endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_url_params: Option<BTreeMap<String, String>>,
}

/// Cluster-wide variant of [`TriggerAuthentication`]: referenced from any namespace with
/// `authenticationRef.kind: ClusterTriggerAuthentication`; its Secrets and ConfigMaps are read
/// from the operator's cluster-object namespace.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterTriggerAuthentication {
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// Where the authentication parameters come from.
    pub spec: TriggerAuthenticationSpec,
    /// Objects currently referring to this authentication.
    #[serde(default)]
    pub status: Option<TriggerAuthenticationStatus>,
}

impl ClusterTriggerAuthentication {
    /// An object with the given name and spec and no status.
    pub fn new(name: &str, spec: TriggerAuthenticationSpec) -> Self {
        Self {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        }
    }
}

impl Serialize for ClusterTriggerAuthentication {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let fields = if self.status.is_some() { 5 } else { 4 };
        let mut obj = ser.serialize_struct("ClusterTriggerAuthentication", fields)?;
        obj.serialize_field("apiVersion", &<Self as Resource>::api_version(&()))?;
        obj.serialize_field("kind", &<Self as Resource>::kind(&()))?;
        obj.serialize_field("metadata", &self.metadata)?;
        obj.serialize_field("spec", &self.spec)?;
        if let Some(status) = &self.status {
            obj.serialize_field("status", status)?;
        }
        obj.end()
    }
}

impl Resource for ClusterTriggerAuthentication {
    type DynamicType = ();
    type Scope = ClusterResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "ClusterTriggerAuthentication".into()
    }

    fn group(_: &()) -> Cow<'_, str> {
        "keda.sh".into()
    }

    fn version(_: &()) -> Cow<'_, str> {
        "v1alpha1".into()
    }

    fn api_version(_: &()) -> Cow<'_, str> {
        "keda.sh/v1alpha1".into()
    }

    fn plural(_: &()) -> Cow<'_, str> {
        "clustertriggerauthentications".into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl HasSpec for ClusterTriggerAuthentication {
    type Spec = TriggerAuthenticationSpec;

    fn spec(&self) -> &TriggerAuthenticationSpec {
        &self.spec
    }

    fn spec_mut(&mut self) -> &mut TriggerAuthenticationSpec {
        &mut self.spec
    }
}

impl HasStatus for ClusterTriggerAuthentication {
    type Status = TriggerAuthenticationStatus;

    fn status(&self) -> Option<&TriggerAuthenticationStatus> {
        self.status.as_ref()
    }

    fn status_mut(&mut self) -> &mut Option<TriggerAuthenticationStatus> {
        &mut self.status
    }
}

const CTA_SHORT_NAMES: &[&str] = &["cta", "clustertriggerauth"];

impl CustomResourceExt for ClusterTriggerAuthentication {
    fn crd() -> CustomResourceDefinition {
        let mut crd = TriggerAuthentication::crd();
        crd.metadata.name = Some(Self::crd_name().to_owned());
        crd.spec.scope = "Cluster".to_owned();
        let names = &mut crd.spec.names;
        names.kind = "ClusterTriggerAuthentication".to_owned();
        names.plural = "clustertriggerauthentications".to_owned();
        names.singular = Some("clustertriggerauthentication".to_owned());
        names.short_names = Some(CTA_SHORT_NAMES.iter().map(|s| (*s).to_owned()).collect());
        for version in &mut crd.spec.versions {
            if let Some(columns) = version.additional_printer_columns.as_mut() {
                // KEDA shows the file path between Env and VaultAddress.
                let at = columns
                    .iter()
                    .position(|c| c.name == "VaultAddress")
                    .unwrap_or(columns.len());
                columns.insert(
                    at,
                    CustomResourceColumnDefinition {
                        name: "FilePath".to_owned(),
                        type_: "string".to_owned(),
                        json_path: ".spec.filePath".to_owned(),
                        ..CustomResourceColumnDefinition::default()
                    },
                );
            }
            if let Some(root) = version
                .schema
                .as_mut()
                .and_then(|s| s.open_api_v3_schema.as_mut())
            {
                root.description = Some(
                    "ClusterTriggerAuthentication tells the triggers of ScaledObjects in any namespace where to find credentials and other secret parameters; its Secrets and ConfigMaps are read from the operator's namespace."
                        .to_owned(),
                );
            }
        }
        crd
    }

    fn crd_name() -> &'static str {
        "clustertriggerauthentications.keda.sh"
    }

    fn api_resource() -> ApiResource {
        ApiResource::erase::<Self>(&())
    }

    fn shortnames() -> &'static [&'static str] {
        CTA_SHORT_NAMES
    }
}
