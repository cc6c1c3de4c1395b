//! The [`Scaler`] trait every trigger type implements, and what it returns.
//!
//! A scaler is built from its trigger's parameters alone (no I/O), so `windlass check` can ask
//! it for its metric specs offline; it reaches its backend only in [`Scaler::sample`], through
//! connections shared by every scaler that talks to the same backend with the same credentials.

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::ScalerError;
use crate::metric::{MetricName, MetricSpec};

/// A request for the current value of one of a scaler's external metrics.
#[derive(Clone, Copy, Debug)]
pub struct SampleRequest<'a> {
    /// The full metric name, as returned in [`Scaler::metric_specs`].
    pub metric: &'a MetricName,
    /// The time the sample is taken at; time-based scalers (cron) use it instead of a clock.
    pub now: DateTime<Utc>,
}

/// One observation of a metric: its value and whether it activates the ScaledObject.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub value: f64,
    /// KEDA's activation rule, decided by the scaler: usually `value > activation threshold`.
    pub active: bool,
}

impl Sample {
    /// A sample active when `value` strictly exceeds `activation_threshold`, KEDA's usual rule.
    pub fn with_threshold(value: f64, activation_threshold: f64) -> Self {
        Self {
            value,
            active: value > activation_threshold,
        }
    }
}

/// A trigger that can describe its metrics and sample them.
#[async_trait]
pub trait Scaler: Send + Sync + fmt::Debug {
    /// The metrics this trigger asks the HPA to watch, in order. Pure: no I/O.
    fn metric_specs(&self) -> Vec<MetricSpec>;

    /// The value the metric must strictly exceed to activate the ScaledObject (KEDA's
    /// `activation…` parameter of this trigger type), for `windlass check` to show; `None` when
    /// activation is not a threshold (cron's window, external scalers' `IsActive`).
    fn activation_target(&self) -> Option<f64> {
        None
    }

    /// A key naming everything that determines this metric's value (server, credentials,
    /// query), so identical queries from several ScaledObjects in one poll cycle are asked
    /// once. `None` (the default) never shares: right for time-based scalers such as cron.
    fn query_key(&self, _metric: &MetricName) -> Option<String> {
        None
    }

    /// How long one sample may take before it fails with a timeout; `None` uses the default
    /// (KEDA's `KEDA_HTTP_DEFAULT_TIMEOUT`, 3 s). Prometheus's `timeout` parameter sets it.
    fn sample_timeout(&self) -> Option<Duration> {
        None
    }

    /// Samples one of this trigger's external metrics.
    async fn sample(&self, request: SampleRequest<'_>) -> Result<Sample, ScalerError>;

    /// The metric specs as the backend describes them now. Most scalers know their metrics
    /// offline and keep the default, [`Scaler::metric_specs`]; a scaler whose metrics are named
    /// by its backend (KEDA's external scalers answer `GetMetricSpec`) asks it here, and
    /// returns an error when it cannot.
    async fn live_metric_specs(&self) -> Result<Vec<MetricSpec>, ScalerError> {
        Ok(self.metric_specs())
    }

    /// This scaler as a push source, when it is one (`external-push`). Decorators forward it,
    /// so the capability survives wrapping; the default is `None`.
    fn as_push(&self) -> Option<&dyn PushScaler> {
        None
    }
}

/// Activity changes pushed by a source: `Ok(true)` asks for an activation check now, `Ok(false)`
/// is informative (deactivation goes through normal polling, as in KEDA), `Err` reports a broken
/// subscription that the source is retrying on its own.
pub type ActivityStream = Pin<Box<dyn futures::Stream<Item = Result<bool, ScalerError>> + Send>>;

/// Notices that a push source's metric specs changed; each item means
/// [`Scaler::live_metric_specs`] may answer differently now.
pub type SpecChanges = Pin<Box<dyn futures::Stream<Item = ()> + Send>>;

/// A scaler that can also push activity as it changes, instead of waiting to be polled.
pub trait PushScaler: Scaler {
    /// Subscribes to activity changes. The stream reconnects by itself (with the source's
    /// backoff) and ends only when dropped; it does not hold on to `self`.
    fn activity_stream(&self) -> ActivityStream;

    /// Subscribes to metric spec changes the source pushes (KEDA's `StreamMetricSpec`), so the
    /// operator can rebuild the HPA at once. Updates arrive only while an
    /// [`PushScaler::activity_stream`] is being polled. `None` (the default): specs never change.
    fn metric_spec_changes(&self) -> Option<SpecChanges> {
        None
    }
}
