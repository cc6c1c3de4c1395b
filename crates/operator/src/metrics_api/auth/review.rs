//! The two questions a delegated API server asks the kube-apiserver: "whose token is this?"
//! (TokenReview) and "may this user do this?" (SubjectAccessReview). Each is a small trait
//! so tests can fake it, a kube implementation, and a caching decorator with the generic API
//! server's default lifetimes (10 s), so the HPA's steady stream of identical requests costs
//! one review per user and metric per TTL rather than one per request.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use sha2::{Digest, Sha256};

use super::request_info::RequestAttributes;

/// An authenticated user, as Kubernetes' `user.Info`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// Why a review could not be made (not: why it said no).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("creating a TokenReview: {0}")]
    TokenReview(#[source] kube::Error),
    #[error("creating a SubjectAccessReview: {0}")]
    SubjectAccessReview(#[source] kube::Error),
    /// A fake's or a future implementation's failure.
    #[error("{0}")]
    Other(String),
}

/// Authenticates bearer tokens.
#[async_trait]
pub trait TokenReviewer: Send + Sync + 'static {
    /// `Ok(None)`: the token is not valid.
    async fn review(&self, token: &str) -> Result<Option<UserInfo>, ReviewError>;
}

/// The outcome of an authorisation check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Why, as the authoriser put it; goes into the 403 message.
    pub reason: String,
}

/// Authorises requests.
#[async_trait]
pub trait Authorizer: Send + Sync + 'static {
    async fn authorize(
        &self,
        user: &UserInfo,
        attributes: &RequestAttributes,
    ) -> Result<Decision, ReviewError>;
}

/// TokenReview through the kube-apiserver (`authentication.k8s.io/v1`).
pub struct KubeTokenReviewer {
    api: kube::Api<TokenReview>,
}

impl KubeTokenReviewer {
    pub fn new(client: kube::Client) -> Self {
        Self {
            api: kube::Api::all(client),
        }
    }
}

#[async_trait]
impl TokenReviewer for KubeTokenReviewer {
    async fn review(&self, token: &str) -> Result<Option<UserInfo>, ReviewError> {
        let review = TokenReview {
            metadata: Default::default(),
            spec: TokenReviewSpec {
                token: token.to_owned(),
                audiences: None,
            },
            status: None,
        };
        let reviewed = self
            .api
            .create(&PostParams::default(), &review)
            .await
            .map_err(ReviewError::TokenReview)?;
        let status = reviewed.status.unwrap_or_default();
        if status.authenticated != Some(true) {
            return Ok(None);
        }
        let user = status.user.unwrap_or_default();
        Ok(Some(UserInfo {
            name: user.username.unwrap_or_default(),
            uid: user.uid.unwrap_or_default(),
            groups: user.groups.unwrap_or_default(),
            extra: user.extra.unwrap_or_default(),
        }))
    }
}

/// SubjectAccessReview through the kube-apiserver (`authorization.k8s.io/v1`).
pub struct KubeAuthorizer {
    api: kube::Api<SubjectAccessReview>,
}

impl KubeAuthorizer {
    pub fn new(client: kube::Client) -> Self {
        Self {
            api: kube::Api::all(client),
        }
    }
}

/// The review's spec for `user` doing `attributes`; empty strings are left out as Go omits
/// them.
pub fn subject_access_review(
    user: &UserInfo,
    attributes: &RequestAttributes,
) -> SubjectAccessReview {
    let some = |text: &str| Some(text.to_owned()).filter(|t| !t.is_empty());
    let (resource_attributes, non_resource_attributes) = match attributes {
        RequestAttributes::Resource {
            verb,
            namespace,
            group,
            version,
            resource,
            subresource,
            name,
        } => (
            Some(ResourceAttributes {
                verb: some(verb),
                namespace: some(namespace),
                group: some(group),
                version: some(version),
                resource: some(resource),
                subresource: some(subresource),
                name: some(name),
                ..Default::default()
            }),
            None,
        ),
        RequestAttributes::NonResource { verb, path } => (
            None,
            Some(NonResourceAttributes {
                verb: some(verb),
                path: some(path),
            }),
        ),
    };
    SubjectAccessReview {
        metadata: Default::default(),
        spec: SubjectAccessReviewSpec {
            user: some(&user.name),
            uid: some(&user.uid),
            groups: Some(user.groups.clone()).filter(|g| !g.is_empty()),
            extra: Some(user.extra.clone()).filter(|e| !e.is_empty()),
            resource_attributes,
            non_resource_attributes,
        },
        status: None,
    }
}

#[async_trait]
impl Authorizer for KubeAuthorizer {
    async fn authorize(
        &self,
        user: &UserInfo,
        attributes: &RequestAttributes,
    ) -> Result<Decision, ReviewError> {
        let reviewed = self
            .api
            .create(
                &PostParams::default(),
                &subject_access_review(user, attributes),
            )
            .await
            .map_err(ReviewError::SubjectAccessReview)?;
        let status = reviewed.status.unwrap_or_default();
        Ok(Decision {
            allowed: status.allowed,
            reason: status.reason.unwrap_or_default(),
        })
    }
}

/// A small map whose entries expire; bounded so a flood of distinct keys cannot grow it
/// without limit (when full, expired entries go first, then everything).
struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
    capacity: usize,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        let (expires, value) = entries.get(key)?;
        (Instant::now() < *expires).then(|| value.clone())
    }

    fn insert(&self, key: K, value: V, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.capacity {
            let now = Instant::now();
            entries.retain(|_, (expires, _)| *expires > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now() + ttl, value));
    }
}

/// How many distinct tokens or (user, request) pairs a cache remembers.
const CACHE_CAPACITY: usize = 4096;

/// Remembers token reviews, valid and invalid, keyed by the token's SHA-256 (the token itself
/// is never kept). Errors are not remembered.
pub struct CachedTokenReviewer {
    inner: Arc<dyn TokenReviewer>,
    ttl: Duration,
    cache: TtlCache<[u8; 32], Option<UserInfo>>,
}

impl CachedTokenReviewer {
    pub fn new(inner: Arc<dyn TokenReviewer>, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            cache: TtlCache::new(CACHE_CAPACITY),
        }
    }
}

#[async_trait]
impl TokenReviewer for CachedTokenReviewer {
    async fn review(&self, token: &str) -> Result<Option<UserInfo>, ReviewError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(user) = self.cache.get(&key) {
            return Ok(user);
        }
        let user = self.inner.review(token).await?;
        self.cache.insert(key, user.clone(), self.ttl);
        Ok(user)
    }
}

/// Remembers authorisation decisions per (user, attributes), allowed and denied for their
/// own lifetimes. Errors are not remembered.
pub struct CachedAuthorizer {
    inner: Arc<dyn Authorizer>,
    allowed_ttl: Duration,
    denied_ttl: Duration,
    cache: TtlCache<(UserInfo, RequestAttributes), Decision>,
}

impl CachedAuthorizer {
    pub fn new(inner: Arc<dyn Authorizer>, allowed_ttl: Duration, denied_ttl: Duration) -> Self {
        Self {
            inner,
            allowed_ttl,
            denied_ttl,
            cache: TtlCache::new(CACHE_CAPACITY),
        }
    }
}

#[async_trait]
impl Authorizer for CachedAuthorizer {
    async fn authorize(
        &self,
        user: &UserInfo,
        attributes: &RequestAttributes,
    ) -> Result<Decision, ReviewError> {
        let key = (user.clone(), attributes.clone());
        if let Some(decision) = self.cache.get(&key) {
            return Ok(decision);
        }
        let decision = self.inner.authorize(user, attributes).await?;
        let ttl = if decision.allowed {
            self.allowed_ttl
        } else {
            self.denied_ttl
        };
        self.cache.insert(key, decision.clone(), ttl);
        Ok(decision)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    struct CountingAuthorizer {
        calls: AtomicUsize,
        allow: bool,
    }

    #[async_trait]
    impl Authorizer for CountingAuthorizer {
        async fn authorize(
            &self,
            _: &UserInfo,
            _: &RequestAttributes,
        ) -> Result<Decision, ReviewError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(Decision {
                allowed: self.allow,
                reason: String::new(),
            })
        }
    }

    fn attributes(path: &str) -> RequestAttributes {
        RequestAttributes::NonResource {
            verb: "get".to_owned(),
            path: path.to_owned(),
        }
    }

    #[tokio::test]
    async fn decisions_are_cached_per_user_and_request_for_their_ttl() {
        let inner = Arc::new(CountingAuthorizer {
            calls: AtomicUsize::new(0),
            allow: true,
        });
        let cached = CachedAuthorizer::new(inner.clone(), Duration::from_secs(60), Duration::ZERO);
        let alice = UserInfo {
            name: "alice".to_owned(),
            ..Default::default()
        };
        let bob = UserInfo {
            name: "bob".to_owned(),
            ..Default::default()
        };
        for _ in 0..3 {
            assert!(
                cached
                    .authorize(&alice, &attributes("/a"))
                    .await
                    .expect("decided")
                    .allowed
            );
        }
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
        cached
            .authorize(&bob, &attributes("/a"))
            .await
            .expect("decided");
        cached
            .authorize(&alice, &attributes("/b"))
            .await
            .expect("decided");
        assert_eq!(inner.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_zero_ttl_disables_caching() {
        let inner = Arc::new(CountingAuthorizer {
            calls: AtomicUsize::new(0),
            allow: false,
        });
        let cached = CachedAuthorizer::new(inner.clone(), Duration::from_secs(60), Duration::ZERO);
        for _ in 0..2 {
            let decision = cached
                .authorize(&UserInfo::default(), &attributes("/a"))
                .await
                .expect("decided");
            assert!(!decision.allowed);
        }
        assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = TtlCache::new(2);
        cache.insert(1, 1, Duration::from_secs(60));
        cache.insert(2, 2, Duration::from_secs(60));
        cache.insert(3, 3, Duration::from_secs(60));
        assert_eq!(cache.get(&3), Some(3));
        assert!(cache.entries.lock().map(|e| e.len()).unwrap_or(usize::MAX) <= 2);
    }

    #[test]
    fn the_review_carries_the_user_and_the_resource_attributes() {
        let user = UserInfo {
            name: "system:serviceaccount:kube-system:horizontal-pod-autoscaler".to_owned(),
            uid: "u-1".to_owned(),
            groups: vec![
                "system:serviceaccounts".to_owned(),
                "system:authenticated".to_owned(),
            ],
            extra: BTreeMap::from([("scopes".to_owned(), vec!["a".to_owned()])]),
        };
        let review = subject_access_review(
            &user,
            &RequestAttributes::Resource {
                verb: "list".to_owned(),
                namespace: "ns".to_owned(),
                group: "external.metrics.k8s.io".to_owned(),
                version: "v1beta1".to_owned(),
                resource: "s0-foo".to_owned(),
                subresource: String::new(),
                name: String::new(),
            },
        );
        let json = serde_json::to_value(&review).expect("serialisable");
        assert_eq!(json["apiVersion"], "authorization.k8s.io/v1");
        assert_eq!(json["kind"], "SubjectAccessReview");
        assert_eq!(
            json["spec"],
            serde_json::json!({
                "user": "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
                "uid": "u-1",
                "groups": ["system:serviceaccounts", "system:authenticated"],
                "extra": {"scopes": ["a"]},
                "resourceAttributes": {
                    "verb": "list",
                    "namespace": "ns",
                    "group": "external.metrics.k8s.io",
                    "version": "v1beta1",
                    "resource": "s0-foo",
                },
            })
        );
    }
}
