//! The scaling engine of Windlass, free of Kubernetes and of every backend.
//!
//! It holds what KEDA decides rather than what KEDA talks to:
//! - [`metric`]: metric names (`s0-redis-mylist`), metric specs and targets, milli quantities;
//! - [`scaler`]: the [`scaler::Scaler`] trait every trigger type implements, and its results;
//! - [`params`]: KEDA's parameter lookup (metadata, `<key>FromEnv`, authParams) and conversions;
//! - [`registry`]: trigger type name → scaler factory;
//! - the policy, one module per rule: [`activity`], [`decision`] (0 ↔ min, idle, cooldown),
//!   [`fallback`], [`modifiers`] (scalingModifiers formulas) and [`hpa`] (what the HPA will do).
//!
//! Every decision is a pure function of its inputs, the current time included.

pub mod activity;
pub mod decision;
pub mod error;
pub mod fallback;
pub mod hpa;
pub mod metric;
pub mod modifiers;
pub mod params;
pub mod registry;
pub mod scaler;

pub use error::{ErrorCategory, ScalerError};
pub use metric::{ExternalMetric, MetricName, MetricSpec, MetricTargetType};
pub use params::{ParamError, ParamErrors, ParamReader, Source, TriggerParams};
pub use registry::{ScalerRegistry, TriggerConfig};
pub use scaler::{ActivityStream, PushScaler, Sample, SampleRequest, Scaler, SpecChanges};
