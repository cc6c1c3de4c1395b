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
}

impl TriggerConfig {
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

/// The known trigger types.
pub struct ScalerRegistry<C> {
    factories: BTreeMap<&'static str, Factory<C>>,
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
        Ok(factory(config, context)?)
    }
}
