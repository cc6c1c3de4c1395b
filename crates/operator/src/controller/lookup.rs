//! Secrets, ConfigMaps, TriggerAuthentications and the target's pod template, read from the API
//! by exact name for one scaler build.
//!
//! Trigger resolution ([`crate::resolve`]) is synchronous and shared with the offline commands.
//! [`ApiObjects::resolve`] runs it against an in-memory view, notes every object it asked for
//! and did not have, fetches those (concurrently, one GET each — never a list or watch of
//! Secrets), and runs it again until nothing new is asked for. A view lives for one build, so a
//! changed Secret is read again exactly when KEDA would rebuild the scalers: on a spec change or
//! after a scaler error.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use futures::future::join_all;
use k8s_openapi::api::core::v1::{ConfigMap, PodSpec, Secret};
use kube::api::Api;

use super::target::{self, TargetResolver};
use crate::crd::scaled_object::ScaleTarget;
use crate::crd::{ClusterTriggerAuthentication, TriggerAuthentication, TriggerAuthenticationSpec};
use crate::resolve::{ObjectLookup, ResolveError};

/// Resolution needs at most: the target, its authentication, then the Secrets both name.
const MAX_ROUNDS: usize = 5;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Secret {
        namespace: String,
        name: String,
    },
    ConfigMap {
        namespace: String,
        name: String,
    },
    Workload {
        namespace: String,
        api_version: String,
        kind: String,
        name: String,
    },
    TriggerAuthentication {
        namespace: String,
        name: String,
    },
    ClusterTriggerAuthentication {
        name: String,
    },
}

#[derive(Clone, Debug)]
enum Fetched {
    Data(BTreeMap<String, String>),
    Pod(PodSpec),
    Auth(TriggerAuthenticationSpec),
}

/// What one scaler build may read from the API.
pub struct ApiObjects<'a> {
    client: &'a kube::Client,
    resolver: &'a TargetResolver,
    /// `None` = not found; errors are kept as messages so resolution can report them.
    known: Mutex<HashMap<Key, Result<Option<Fetched>, String>>>,
    missing: Mutex<Vec<Key>>,
}

impl<'a> ApiObjects<'a> {
    pub fn new(client: &'a kube::Client, resolver: &'a TargetResolver) -> Self {
        Self {
            client,
            resolver,
            known: Mutex::new(HashMap::new()),
            missing: Mutex::new(Vec::new()),
        }
    }

    /// Runs `resolve` until every object it reads has been fetched, and returns its last answer.
    pub async fn resolve<T>(&self, resolve: impl Fn(&dyn ObjectLookup) -> T) -> T {
        let mut answer = resolve(self);
        for _ in 0..MAX_ROUNDS {
            let wanted: Vec<Key> = std::mem::take(&mut *lock(&self.missing));
            if wanted.is_empty() {
                break;
            }
            let fetched = join_all(wanted.iter().map(|key| self.fetch(key))).await;
            let mut known = lock(&self.known);
            for (key, value) in wanted.into_iter().zip(fetched) {
                known.insert(key, value);
            }
            drop(known);
            answer = resolve(self);
        }
        answer
    }

    async fn fetch(&self, key: &Key) -> Result<Option<Fetched>, String> {
        let client = self.client.clone();
        match key {
            Key::Secret { namespace, name } => {
                let secret = Api::<Secret>::namespaced(client, namespace)
                    .get_opt(name)
                    .await
                    .map_err(|e| format!("reading Secret {namespace}/{name}: {e}"))?;
                Ok(secret.map(|secret| {
                    let mut data: BTreeMap<String, String> = secret
                        .data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                        .collect();
                    data.extend(secret.string_data.unwrap_or_default());
                    Fetched::Data(data)
                }))
            }
            Key::ConfigMap { namespace, name } => {
                let map = Api::<ConfigMap>::namespaced(client, namespace)
                    .get_opt(name)
                    .await
                    .map_err(|e| format!("reading ConfigMap {namespace}/{name}: {e}"))?;
                Ok(map.map(|m| Fetched::Data(m.data.unwrap_or_default())))
            }
            Key::TriggerAuthentication { namespace, name } => {
                let auth = Api::<TriggerAuthentication>::namespaced(client, namespace)
                    .get_opt(name)
                    .await
                    .map_err(|e| {
                        format!("reading TriggerAuthentication {namespace}/{name}: {e}")
                    })?;
                Ok(auth.map(|a| Fetched::Auth(a.spec)))
            }
            Key::ClusterTriggerAuthentication { name } => {
                let auth = Api::<ClusterTriggerAuthentication>::all(client)
                    .get_opt(name)
                    .await
                    .map_err(|e| format!("reading ClusterTriggerAuthentication {name}: {e}"))?;
                Ok(auth.map(|a| Fetched::Auth(a.spec)))
            }
            Key::Workload {
                namespace,
                api_version,
                kind,
                name,
            } => {
                let reference = ScaleTarget {
                    name: name.clone(),
                    api_version: Some(api_version.clone()),
                    kind: Some(kind.clone()),
                    env_source_container_name: None,
                };
                let resolved = self
                    .resolver
                    .resolve(self.client, namespace, &reference)
                    .await
                    .map_err(|e| e.to_string())?;
                let object = target::read_object(self.client, &resolved)
                    .await
                    .map_err(|e| format!("reading {kind} {namespace}/{name}: {e}"))?;
                let Some(object) = object else {
                    return Ok(None);
                };
                let pod = object
                    .data
                    .pointer("/spec/template/spec")
                    .cloned()
                    .map(serde_json::from_value::<PodSpec>)
                    .transpose()
                    .map_err(|e| format!("{kind} {namespace}/{name}: spec.template.spec: {e}"))?;
                Ok(Some(Fetched::Pod(pod.unwrap_or_default())))
            }
        }
    }

    fn lookup(&self, key: Key) -> Result<Option<Fetched>, ResolveError> {
        let known = lock(&self.known);
        match known.get(&key) {
            Some(Ok(value)) => Ok(value.clone()),
            Some(Err(message)) => Err(ResolveError::Malformed {
                object: describe(&key),
                message: message.clone(),
            }),
            None => {
                drop(known);
                lock(&self.missing).push(key);
                Ok(None)
            }
        }
    }
}

fn describe(key: &Key) -> String {
    match key {
        Key::Secret { namespace, name } => format!("Secret {namespace}/{name}"),
        Key::ConfigMap { namespace, name } => format!("ConfigMap {namespace}/{name}"),
        Key::Workload {
            namespace,
            kind,
            name,
            ..
        } => format!("{kind} {namespace}/{name}"),
        Key::TriggerAuthentication { namespace, name } => {
            format!("TriggerAuthentication {namespace}/{name}")
        }
        Key::ClusterTriggerAuthentication { name } => {
            format!("ClusterTriggerAuthentication {name}")
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ObjectLookup for ApiObjects<'_> {
    fn secret_data(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ResolveError> {
        let key = Key::Secret {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        };
        Ok(match self.lookup(key)? {
            Some(Fetched::Data(data)) => Some(data),
            _ => None,
        })
    }

    fn config_map_data(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ResolveError> {
        let key = Key::ConfigMap {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        };
        Ok(match self.lookup(key)? {
            Some(Fetched::Data(data)) => Some(data),
            _ => None,
        })
    }

    fn workload_pod_spec(
        &self,
        namespace: &str,
        api_version: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<PodSpec>, ResolveError> {
        let key = Key::Workload {
            namespace: namespace.to_owned(),
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
        };
        Ok(match self.lookup(key)? {
            Some(Fetched::Pod(pod)) => Some(pod),
            _ => None,
        })
    }

    fn trigger_authentication(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<TriggerAuthenticationSpec>, ResolveError> {
        let key = Key::TriggerAuthentication {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        };
        Ok(match self.lookup(key)? {
            Some(Fetched::Auth(spec)) => Some(spec),
            _ => None,
        })
    }

    fn cluster_trigger_authentication(
        &self,
        name: &str,
    ) -> Result<Option<TriggerAuthenticationSpec>, ResolveError> {
        let key = Key::ClusterTriggerAuthentication {
            name: name.to_owned(),
        };
        Ok(match self.lookup(key)? {
            Some(Fetched::Auth(spec)) => Some(spec),
            _ => None,
        })
    }
}
