//! A scripted [`ExternalMetricSource`] that counts its calls.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};

use crate::metrics_api::source::{
    ExternalMetricQuery, ExternalMetricSource, MetricSourceError, MetricValue,
};

/// The instant every fake value was sampled at.
pub fn sampled_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
        .single()
        .unwrap_or_default()
}

/// Answers from a table keyed by (namespace, ScaledObject, lower-cased metric name).
#[derive(Default)]
pub struct FakeSource {
    answers: HashMap<(String, String, String), Result<Vec<MetricValue>, MetricSourceError>>,
    calls: AtomicUsize,
    queries: Mutex<Vec<ExternalMetricQuery>>,
}

impl FakeSource {
    pub fn new() -> Self {
        Self::default()
    }

    /// `namespace/scaled_object` has `metric` with these raw values.
    pub fn with_values(
        mut self,
        namespace: &str,
        scaled_object: &str,
        metric: &str,
        values: &[f64],
    ) -> Self {
        let items = values
            .iter()
            .map(|&value| MetricValue {
                metric_name: metric.to_owned(),
                value,
                timestamp: sampled_at(),
            })
            .collect();
        self.answers.insert(
            (
                namespace.to_owned(),
                scaled_object.to_owned(),
                metric.to_lowercase(),
            ),
            Ok(items),
        );
        self
    }

    /// `namespace/scaled_object`'s `metric` fails with `error`.
    pub fn with_error(
        mut self,
        namespace: &str,
        scaled_object: &str,
        metric: &str,
        error: MetricSourceError,
    ) -> Self {
        self.answers.insert(
            (
                namespace.to_owned(),
                scaled_object.to_owned(),
                metric.to_lowercase(),
            ),
            Err(error),
        );
        self
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn queries(&self) -> Vec<ExternalMetricQuery> {
        self.queries.lock().map(|q| q.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl ExternalMetricSource for FakeSource {
    async fn values(
        &self,
        query: &ExternalMetricQuery,
    ) -> Result<Vec<MetricValue>, MetricSourceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut queries) = self.queries.lock() {
            queries.push(query.clone());
        }
        let key = (
            query.namespace.clone(),
            query.scaled_object.clone(),
            query.metric_name.to_lowercase(),
        );
        match self.answers.get(&key) {
            Some(answer) => answer.clone(),
            None if self
                .answers
                .keys()
                .any(|(ns, so, _)| *ns == query.namespace && *so == query.scaled_object) =>
            {
                Err(MetricSourceError::MetricNotFound {
                    metric_name: query.metric_name.clone(),
                })
            }
            None => Err(MetricSourceError::ScaledObjectNotFound {
                namespace: query.namespace.clone(),
                name: query.scaled_object.clone(),
            }),
        }
    }
}
