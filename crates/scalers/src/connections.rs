//! One connection (client, pool, channel) per backend address and credentials, shared by every
//! scaler that talks to that backend.
//!
//! KEDA builds clients per ScaledObject and trigger; at thousands of ScaledObjects that means
//! thousands of connections to the same server. Here a scaler asks [`SharedConnections`] for the
//! connection of its key (address, credentials, TLS settings): the first caller connects, callers
//! arriving meanwhile wait for that same attempt, and everyone after shares the result. A failed
//! attempt is not remembered, so the next caller tries again; a connection that broke is dropped
//! with [`SharedConnections::invalidate`].

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OnceCell;

/// Connections of type `V` by key `K`.
pub struct SharedConnections<K, V> {
    slots: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K, V> Default for SharedConnections<K, V> {
    fn default() -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
        }
    }
}

impl<K, V> fmt::Debug for SharedConnections<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedConnections")
            .field(
                "keys",
                &self
                    .slots
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .len(),
            )
            .finish()
    }
}

impl<K: Eq + Hash + Clone, V: Clone> SharedConnections<K, V> {
    fn slot(&self, key: &K) -> Arc<OnceCell<V>> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.entry(key.clone()).or_default().clone()
    }

    /// The connection for `key`, made with `connect` if there is none yet.
    pub async fn get_or_connect<E, F, Fut>(&self, key: &K, connect: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let slot = self.slot(key);
        slot.get_or_try_init(connect).await.cloned()
    }

    /// Forgets the connection of `key` (it broke); the next caller connects anew.
    pub fn invalidate(&self, key: &K) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.remove(key);
    }

    /// How many keys have (or are getting) a connection.
    pub fn len(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn one_connection_per_key_even_under_concurrency() {
        let connections: Arc<SharedConnections<String, usize>> = Arc::default();
        let attempts = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let connections = connections.clone();
            let attempts = attempts.clone();
            tasks.push(tokio::spawn(async move {
                connections
                    .get_or_connect(&"redis:6379".to_owned(), || async {
                        tokio::task::yield_now().await;
                        Ok::<_, ()>(attempts.fetch_add(1, Ordering::SeqCst))
                    })
                    .await
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(0));
        }
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
        assert_eq!(connections.len(), 1);
    }

    #[tokio::test]
    async fn failures_are_not_remembered_and_invalidate_reconnects() {
        let connections: SharedConnections<&str, u32> = SharedConnections::default();
        let failed: Result<u32, &str> = connections
            .get_or_connect(&"a", || async { Err("refused") })
            .await;
        assert_eq!(failed, Err("refused"));
        let first: Result<u32, &str> = connections.get_or_connect(&"a", || async { Ok(1) }).await;
        assert_eq!(first, Ok(1));
        let cached: Result<u32, &str> = connections.get_or_connect(&"a", || async { Ok(2) }).await;
        assert_eq!(cached, Ok(1));
        connections.invalidate(&"a");
        let fresh: Result<u32, &str> = connections.get_or_connect(&"a", || async { Ok(3) }).await;
        assert_eq!(fresh, Ok(3));
    }
}
