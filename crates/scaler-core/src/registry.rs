//! Trigger type name → scaler factory, filled in one place by the scalers crate.
//!
//! The registry is generic over the context scalers are built with (shared connection pools and
//! settings), which the scalers crate defines; the engine needs to know nothing about it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::metric::{ExternalMetric, MetricName, MetricTargetType, to_milli_precision};
use crate::params::{ParamError, ParamErrors, TriggerParams};
use crate::scaler::Scaler;

/// The ScaledObject a trigger belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    pub namespace: String,
    pub name: String,
}

/// Everything a scaler is built from: one trigger of one ScaledObject, parameters resolved.
#[derive(Clone, Debug, Default)]
pub struct TriggerConfig {
    /// 0-based position in `spec.triggers`; it prefixes the metric names (`s0-…`).
    pub index: usize,
    /// `triggers[].type`.
    pub trigger_type: String,
    /// `triggers[].name`, if given.
    pub name: Option<String>,
    /// `triggers[].metricType`, if given.
    pub metric_type: Option<MetricTargetType>,
    /// `triggers[].useCachedMetrics`.
    pub use_cached_metrics: bool,
    pub params: TriggerParams,
    pub scaled_object: ObjectRef,
    /// `spec.podIdentity` of the trigger's TriggerAuthentication or ClusterTriggerAuthentication
    /// (KEDA's `ScalerConfig.PodIdentity`); `None` when the trigger has no authentication or
    /// the authentication no pod identity, which scalers treat as provider `none`.
    pub pod_identity: Option<PodIdentity>,
}

/// The platform identity a trigger authenticates with, as its TriggerAuthentication's
/// `spec.podIdentity` writes it. Plain data: the operator fills it, scalers read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodIdentity {
    /// `provider` as written: `azure-workload`, `gcp`, `aws`, `aws-eks` or `none` (the CRD's
    /// enum); scalers compare the text, so a value outside the enum simply matches nothing.
    pub provider: String,
    /// `roleArn` (AWS): the role to assume with provider `aws`.
    pub role_arn: Option<String>,
    /// `externalID` (AWS): passed when assuming `roleArn`.
    pub external_id: Option<String>,
    /// `identityOwner` (AWS): `keda` or `workload`; with `workload` the operator reads the role
    /// from the workload's ServiceAccount (it arrives as authParam `awsRoleArn`).
    pub identity_owner: Option<String>,
    /// `identityId` (Azure): client id of the identity to use instead of the default one.
    pub identity_id: Option<String>,
    /// `identityTenantId` (Azure): tenant to use instead of the default one.
    pub identity_tenant_id: Option<String>,
    /// `identityAuthorityHost` (Azure): authority host to use instead of the default one.
    pub identity_authority_host: Option<String>,
}

impl PodIdentity {
    /// Provider `none`.
    pub const NONE: &'static str = "none";
    /// Provider `aws` (IRSA or EKS Pod Identity, optionally assuming `roleArn`).
    pub const AWS: &'static str = "aws";
    /// Provider `aws-eks` (deprecated: the role of the workload's ServiceAccount).
    pub const AWS_EKS: &'static str = "aws-eks";
    /// Provider `azure-workload`.
    pub const AZURE_WORKLOAD: &'static str = "azure-workload";
    /// Provider `gcp`.
    pub const GCP: &'static str = "gcp";

    /// A pod identity with only `provider` set.
    pub fn new(provider: impl Into<String>) -> Self {
        Self {
            provider: provider.into(),
            ..Self::default()
        }
    }

    /// Whether `provider` is set to something other than `none`.
    pub fn is_enabled(&self) -> bool {
        !self.provider.is_empty() && self.provider != Self::NONE
    }
}

impl TriggerConfig {
    /// The pod identity provider, `""` when there is no pod identity (KEDA compares the
    /// provider with `none` and with the empty string alike).
    pub fn pod_identity_provider(&self) -> &str {
        self.pod_identity
            .as_ref()
            .map(|identity| identity.provider.as_str())
            .unwrap_or("")
    }

    /// Whether the trigger's authentication enables a pod identity (provider neither unset nor
    /// `none`).
    pub fn has_pod_identity(&self) -> bool {
        self.pod_identity
            .as_ref()
            .is_some_and(PodIdentity::is_enabled)
    }

    /// The HPA target type of an external metric: `AverageValue` unless `metricType` says
    /// `Value`; `Utilization` is an error, as in KEDA, for everything but cpu and memory.
    pub fn external_target_type(&self) -> Result<MetricTargetType, ParamError> {
        match self.metric_type {
            None | Some(MetricTargetType::AverageValue) => Ok(MetricTargetType::AverageValue),
            Some(MetricTargetType::Value) => Ok(MetricTargetType::Value),
            Some(MetricTargetType::Utilization) => Err(ParamError::new(
                "metricType",
                "'Utilization' metric type is unsupported for external metrics, allowed values are 'Value' or 'AverageValue'",
            )
            .with_hint("set `metricType` to AverageValue or Value (Utilization is for cpu and memory triggers)")),
        }
    }

    /// The external metric `s<index>-<normalised local name>` with `target` at milli precision.
    pub fn external_metric(
        &self,
        local_name: &str,
        target: f64,
    ) -> Result<ExternalMetric, ParamError> {
        Ok(ExternalMetric {
            name: MetricName::indexed(self.index, local_name),
            target: to_milli_precision(target),
            target_type: self.external_target_type()?,
        })
    }
}

/// Why a trigger could not be turned into a scaler.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("no scaler found for type: {0}")]
    UnknownType(String),
    #[error("{0}")]
    Params(#[from] ParamErrors),
}

/// A trigger type the registry can build, with the context `C` scalers share.
pub trait ScalerKind<C> {
    /// The `triggers[].type` values this kind serves (`redis`, `redis-cluster`, …).
    const TYPES: &'static [&'static str];

    /// Parses the trigger's parameters and builds the scaler; no I/O happens here.
    fn build(config: &TriggerConfig, context: &C) -> Result<Arc<dyn Scaler>, ParamErrors>;
}

type Factory<C> = fn(&TriggerConfig, &C) -> Result<Arc<dyn Scaler>, ParamErrors>;

/// Wraps every built scaler with cross-cutting behaviour (timeouts, shared queries).
pub type Decorator<C> = fn(Arc<dyn Scaler>, &C) -> Arc<dyn Scaler>;

/// The known trigger types.
pub struct ScalerRegistry<C> {
    factories: BTreeMap<&'static str, Factory<C>>,
    decorator: Option<Decorator<C>>,
}

impl<C> fmt::Debug for ScalerRegistry<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.factories.keys()).finish()
    }
}

impl<C> Default for ScalerRegistry<C> {
    fn default() -> Self {
        Self {
            factories: BTreeMap::new(),
            decorator: None,
        }
    }
}

impl<C> ScalerRegistry<C> {
    /// Adds every type of `K`.
    pub fn register<K: ScalerKind<C>>(&mut self) {
        for trigger_type in K::TYPES {
            self.factories.insert(trigger_type, K::build);
        }
    }

    /// Wraps every scaler [`ScalerRegistry::build`] returns.
    pub fn decorate_with(&mut self, decorator: Decorator<C>) {
        self.decorator = Some(decorator);
    }

    /// The registered type names, sorted.
    pub fn types(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.factories.keys().copied()
    }

    pub fn knows(&self, trigger_type: &str) -> bool {
        self.factories.contains_key(trigger_type)
    }

    /// Builds the scaler of one trigger.
    pub fn build(
        &self,
        config: &TriggerConfig,
        context: &C,
    ) -> Result<Arc<dyn Scaler>, BuildError> {
        let factory = self
            .factories
            .get(config.trigger_type.as_str())
            .ok_or_else(|| BuildError::UnknownType(config.trigger_type.clone()))?;
        let scaler = factory(config, context)?;
        Ok(match self.decorator {
            Some(decorate) => decorate(scaler, context),
            None => scaler,
        })
    }
}
