//! Identical queries asked once: when several scalers ask the same backend the same question at
//! about the same time (the same Prometheus query from ten ScaledObjects in one poll cycle), one
//! request goes out and everyone gets its answer.
//!
//! A query is identified by a key the scaler builds from everything that determines the answer
//! (server, credentials, query text). Callers arriving while it is in flight wait for it;
//! callers arriving up to `max_age` after it finished reuse its result.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

enum Flight<V> {
    InFlight(Shared<BoxFuture<'static, V>>),
    Done { value: V, at: Instant },
}

/// Shares the results of identical queries.
pub struct SingleFlight<V> {
    flights: Mutex<HashMap<String, Flight<V>>>,
}

impl<V> Default for SingleFlight<V> {
    fn default() -> Self {
        Self {
            flights: Mutex::new(HashMap::new()),
        }
    }
}

impl<V> fmt::Debug for SingleFlight<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self
            .flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("SingleFlight").field("keys", &len).finish()
    }
}

impl<V: Clone + Send + Sync + 'static> SingleFlight<V> {
    /// The result of `query` for `key`, shared with identical calls in flight or finished less
    /// than `max_age` ago.
    pub async fn run<F>(&self, key: &str, max_age: Duration, query: F) -> V
    where
        F: Future<Output = V> + Send + 'static,
    {
        let shared = {
            let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            flights.retain(|_, flight| match flight {
                Flight::InFlight(_) => true,
                Flight::Done { at, .. } => now.duration_since(*at) < max_age,
            });
            match flights.get(key) {
                Some(Flight::Done { value, .. }) => return value.clone(),
                Some(Flight::InFlight(shared)) => shared.clone(),
                None => {
                    let shared = query.boxed().shared();
                    flights.insert(key.to_owned(), Flight::InFlight(shared.clone()));
                    shared
                }
            }
        };
        let value = shared.await;
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(flights.get(key), Some(Flight::InFlight(_))) {
            flights.insert(
                key.to_owned(),
                Flight::Done {
                    value: value.clone(),
                    at: Instant::now(),
                },
            );
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_identical_queries_run_once() {
        let flights: Arc<SingleFlight<usize>> = Arc::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let (release, wait) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let flights = flights.clone();
            let runs = runs.clone();
            let mut wait = wait.clone();
            tasks.push(tokio::spawn(async move {
                flights
                    .run("q", Duration::from_secs(1), async move {
                        let _ = wait.wait_for(|go| *go).await;
                        runs.fetch_add(1, Ordering::SeqCst) + 100
                    })
                    .await
            }));
        }
        tokio::task::yield_now().await;
        release.send_replace(true);
        for task in tasks {
            assert_eq!(task.await.unwrap(), 100);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn results_expire_after_max_age_and_keys_are_separate() {
        let flights: SingleFlight<u32> = SingleFlight::default();
        assert_eq!(
            flights.run("a", Duration::from_secs(60), async { 1 }).await,
            1
        );
        assert_eq!(
            flights.run("a", Duration::from_secs(60), async { 2 }).await,
            1
        );
        assert_eq!(
            flights.run("b", Duration::from_secs(60), async { 3 }).await,
            3
        );
        assert_eq!(flights.run("a", Duration::ZERO, async { 4 }).await, 4);
    }
}
