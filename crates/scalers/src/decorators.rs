//! What every scaler gets without writing it: a bound on each sample, and identical queries
//! asked once. The registry applies [`decorate`] to every scaler it builds.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use scaler_core::{MetricName, MetricSpec, PushScaler, Sample, SampleRequest, Scaler, ScalerError};

use crate::ScalerContext;

/// Wraps `scaler` with a timeout and query sharing.
pub fn decorate(scaler: Arc<dyn Scaler>, context: &ScalerContext) -> Arc<dyn Scaler> {
    Arc::new(Guarded {
        inner: scaler,
        context: context.clone(),
    })
}

/// A scaler whose samples are bounded in time and shared between identical queries.
#[derive(Debug)]
struct Guarded {
    inner: Arc<dyn Scaler>,
    context: ScalerContext,
}

impl Guarded {
    fn timeout(&self) -> Duration {
        self.inner
            .sample_timeout()
            .unwrap_or(self.context.settings().default_timeout)
    }
}

#[async_trait]
impl Scaler for Guarded {
    fn metric_specs(&self) -> Vec<MetricSpec> {
        self.inner.metric_specs()
    }

    fn activation_target(&self) -> Option<f64> {
        self.inner.activation_target()
    }

    fn query_key(&self, metric: &MetricName) -> Option<String> {
        self.inner.query_key(metric)
    }

    fn sample_timeout(&self) -> Option<Duration> {
        self.inner.sample_timeout()
    }

    async fn live_metric_specs(&self) -> Result<Vec<MetricSpec>, ScalerError> {
        let timeout = self.timeout();
        match tokio::time::timeout(timeout, self.inner.live_metric_specs()).await {
            Ok(result) => result,
            Err(_) => Err(ScalerError::timeout(format!(
                "no metric specs within {} ms",
                timeout.as_millis()
            ))),
        }
    }

    fn as_push(&self) -> Option<&dyn PushScaler> {
        self.inner.as_push()
    }

    async fn sample(&self, request: SampleRequest<'_>) -> Result<Sample, ScalerError> {
        let timeout = self.timeout();
        let inner = self.inner.clone();
        let metric = request.metric.clone();
        let now = request.now;
        let bounded = async move {
            let sample = inner.sample(SampleRequest {
                metric: &metric,
                now,
            });
            match tokio::time::timeout(timeout, sample).await {
                Ok(result) => result,
                Err(_) => Err(ScalerError::timeout(format!(
                    "no answer within {} ms",
                    timeout.as_millis()
                ))),
            }
        };
        match self.inner.query_key(request.metric) {
            Some(key) => {
                let window = self.context.settings().shared_query_window;
                self.context.queries().run(&key, window, bounded).await
            }
            None => bounded.await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use chrono::Utc;
    use scaler_core::ErrorCategory;

    use super::*;
    use crate::context::Settings;

    #[derive(Debug)]
    struct Slow {
        delay: Duration,
        key: Option<&'static str>,
        calls: Arc<AtomicUsize>,
    }

    #[async_trait]
    impl Scaler for Slow {
        fn metric_specs(&self) -> Vec<MetricSpec> {
            Vec::new()
        }

        fn query_key(&self, _metric: &MetricName) -> Option<String> {
            self.key.map(str::to_owned)
        }

        async fn sample(&self, _request: SampleRequest<'_>) -> Result<Sample, ScalerError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            Ok(Sample {
                value: 7.0,
                active: true,
            })
        }
    }

    fn context(timeout: Duration) -> ScalerContext {
        ScalerContext::new(Settings {
            default_timeout: timeout,
            shared_query_window: Duration::from_secs(5),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_sample_that_takes_too_long_is_a_timeout() {
        let calls = Arc::new(AtomicUsize::new(0));
        let slow: Arc<dyn Scaler> = Arc::new(Slow {
            delay: Duration::from_secs(10),
            key: None,
            calls,
        });
        let guarded = decorate(slow, &context(Duration::from_secs(3)));
        let metric = MetricName::indexed(0, "x");
        let error = guarded
            .sample(SampleRequest {
                metric: &metric,
                now: Utc::now(),
            })
            .await
            .unwrap_err();
        assert_eq!(error.category, ErrorCategory::Timeout);
    }

    #[tokio::test(start_paused = true)]
    async fn identical_queries_from_different_scalers_are_asked_once() {
        let calls = Arc::new(AtomicUsize::new(0));
        let context = context(Duration::from_secs(3));
        let make = || -> Arc<dyn Scaler> {
            decorate(
                Arc::new(Slow {
                    delay: Duration::from_millis(100),
                    key: Some("same"),
                    calls: calls.clone(),
                }),
                &context,
            )
        };
        let (a, b) = (make(), make());
        let metric = MetricName::indexed(0, "x");
        let now = Utc::now();
        let (first, second) = tokio::join!(
            a.sample(SampleRequest {
                metric: &metric,
                now
            }),
            b.sample(SampleRequest {
                metric: &metric,
                now
            })
        );
        assert_eq!(first.unwrap().value, 7.0);
        assert_eq!(second.unwrap().value, 7.0);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
