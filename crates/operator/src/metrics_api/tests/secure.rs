//! The server over real sockets: TLS, the front proxy's certificate and headers, client
//! certificates, bearer tokens, SubjectAccessReview, the review caches and certificate reload.
#![allow(clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::oneshot;

use super::fakes::FakeSource;
use super::pki::{Ca, Leaf, client_config, http_client};
use crate::metrics_api::auth::config::{
    AuthenticationConfig, RequestHeaderConfig, header_names, header_prefixes,
};
use crate::metrics_api::auth::{
    Authorizer, CacheTtls, Decision, DelegatedAuth, RequestAttributes, ReviewError, Security,
    TokenReviewer, UserInfo,
};
use crate::metrics_api::{MetricsApiArgs, MetricsApiServer};

const METRIC_PATH: &str = "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/s0-redis-mylist?labelSelector=scaledobject.keda.sh%2Fname%3Dmy-so";

/// Accepts the tokens it was given.
#[derive(Default)]
struct FakeTokens {
    users: HashMap<String, UserInfo>,
    calls: AtomicUsize,
}

#[async_trait]
impl TokenReviewer for FakeTokens {
    async fn review(&self, token: &str) -> Result<Option<UserInfo>, ReviewError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(self.users.get(token).cloned())
    }
}

/// Allows the users it was given, and records what it was asked.
#[derive(Default)]
struct FakeAuthorizer {
    allowed: HashSet<String>,
    calls: AtomicUsize,
    asked: Mutex<Vec<(UserInfo, RequestAttributes)>>,
}

#[async_trait]
impl Authorizer for FakeAuthorizer {
    async fn authorize(
        &self,
        user: &UserInfo,
        attributes: &RequestAttributes,
    ) -> Result<Decision, ReviewError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut asked) = self.asked.lock() {
            asked.push((user.clone(), attributes.clone()));
        }
        Ok(Decision {
            allowed: self.allowed.contains(&user.name),
            reason: "no RBAC policy matched".to_owned(),
        })
    }
}

/// The cluster's CAs and a running server.
struct Cluster {
    serving_ca: Ca,
    front_proxy_ca: Ca,
    client_ca: Ca,
    dir: tempfile::TempDir,
    source: Arc<FakeSource>,
    tokens: Arc<FakeTokens>,
    authorizer: Arc<FakeAuthorizer>,
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Cluster {
    fn cert_file(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }

    fn key_file(&self) -> PathBuf {
        self.dir.path().join("tls.key")
    }

    /// Starts a server whose front proxy must be called `front-proxy-client`, which trusts
    /// the token `good-token` (user `token-user`) and allows the users in `allowed`.
    async fn start(allowed: &[&str]) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let serving_ca = Ca::new("serving CA");
        let front_proxy_ca = Ca::new("front-proxy CA");
        let client_ca = Ca::new("client CA");
        serving_ca
            .server("windlass-a")
            .write(&dir.path().join("tls.crt"), &dir.path().join("tls.key"));

        let source =
            Arc::new(FakeSource::new().with_values("ns", "my-so", "s0-redis-mylist", &[7.0]));
        let tokens = Arc::new(FakeTokens {
            users: HashMap::from([(
                "good-token".to_owned(),
                UserInfo {
                    name: "token-user".to_owned(),
                    ..Default::default()
                },
            )]),
            ..Default::default()
        });
        let authorizer = Arc::new(FakeAuthorizer {
            allowed: allowed.iter().map(|u| (*u).to_owned()).collect(),
            ..Default::default()
        });
        let authentication = AuthenticationConfig {
            client_ca: vec![client_ca.der()],
            request_header: Some(RequestHeaderConfig {
                client_ca: vec![front_proxy_ca.der()],
                allowed_names: vec!["front-proxy-client".to_owned()],
                username_headers: header_names(&["X-Remote-User"], "test").expect("valid"),
                uid_headers: Vec::new(),
                group_headers: header_names(&["X-Remote-Group"], "test").expect("valid"),
                extra_header_prefixes: header_prefixes(&["X-Remote-Extra-"]),
            }),
        };
        let gate = DelegatedAuth::new(
            authentication,
            tokens.clone(),
            authorizer.clone(),
            CacheTtls {
                token: Duration::from_secs(60),
                authorized: Duration::from_secs(60),
                unauthorized: Duration::from_secs(60),
            },
        )
        .expect("a valid setup");
        let args = MetricsApiArgs {
            bind_address: "127.0.0.1:0".parse().expect("an address"),
            tls_cert_file: Some(dir.path().join("tls.crt")),
            tls_private_key_file: Some(dir.path().join("tls.key")),
            ..MetricsApiArgs::default()
        };
        let server = MetricsApiServer::bind_with_security(
            &args,
            source.clone(),
            Security::Delegated(Arc::new(gate)),
        )
        .await
        .expect("the server binds");
        let address = server.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            server
                .run(async {
                    let _ = stopped.await;
                })
                .await
                .expect("the server runs");
        });
        Self {
            serving_ca,
            front_proxy_ca,
            client_ca,
            dir,
            source,
            tokens,
            authorizer,
            address,
            stop: Some(stop),
            server: Some(server),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.address)
    }

    fn client(&self, identity: Option<&Leaf>) -> reqwest::Client {
        http_client(client_config(&self.serving_ca, identity, false))
    }

    fn front_proxy(&self) -> reqwest::Client {
        self.client(Some(&self.front_proxy_ca.client("front-proxy-client", &[])))
    }

    /// Stops the server and waits for it to finish.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(15), server)
                .await
                .expect("the server stops")
                .expect("the server task ends cleanly");
        }
    }
}

async fn status_json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.bytes().await.expect("a body");
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    (status, json)
}

#[tokio::test]
async fn the_front_proxy_with_an_allowed_name_gets_values_for_its_user() {
    let cluster = Cluster::start(&["alice"]).await;
    let response = cluster
        .front_proxy()
        .get(cluster.url(METRIC_PATH))
        .header("X-Remote-User", "alice")
        .header("X-Remote-Group", "team-a")
        .header("X-Remote-Extra-Scopes", "s1")
        .send()
        .await
        .expect("a response");
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"][0]["value"], "7");
    assert_eq!(cluster.source.calls(), 1);

    let asked = cluster.authorizer.asked.lock().expect("a lock").clone();
    assert_eq!(asked.len(), 1);
    let (user, attributes) = &asked[0];
    assert_eq!(user.name, "alice");
    assert_eq!(user.groups, ["team-a", "system:authenticated"]);
    assert_eq!(user.extra.get("scopes"), Some(&vec!["s1".to_owned()]));
    assert_eq!(
        *attributes,
        RequestAttributes::Resource {
            verb: "list".to_owned(),
            namespace: "ns".to_owned(),
            group: "external.metrics.k8s.io".to_owned(),
            version: "v1beta1".to_owned(),
            resource: "s0-redis-mylist".to_owned(),
            subresource: String::new(),
            name: String::new(),
        }
    );
    cluster.stop().await;
}

#[tokio::test]
async fn no_certificate_and_no_token_is_unauthorized() {
    let cluster = Cluster::start(&["alice"]).await;
    let response = cluster
        .client(None)
        .get(cluster.url(METRIC_PATH))
        .header("X-Remote-User", "alice")
        .send()
        .await
        .expect("a response");
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["reason"], "Unauthorized");
    assert_eq!(body["kind"], "Status");
    assert_eq!(cluster.source.calls(), 0);
    assert_eq!(cluster.authorizer.calls.load(Ordering::SeqCst), 0);

    // Unknown paths are behind authentication too.
    let response = cluster
        .client(None)
        .get(cluster.url("/apis/nothing"))
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    cluster.stop().await;
}

#[tokio::test]
async fn health_checks_need_no_credentials() {
    let cluster = Cluster::start(&[]).await;
    for path in ["/healthz", "/livez", "/readyz"] {
        let response = cluster
            .client(None)
            .get(cluster.url(path))
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    assert_eq!(cluster.authorizer.calls.load(Ordering::SeqCst), 0);
    cluster.stop().await;
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_rejected() {
    let cluster = Cluster::start(&["alice"]).await;
    let rogue = Ca::new("rogue CA").client("front-proxy-client", &[]);
    let result = cluster
        .client(Some(&rogue))
        .get(cluster.url(METRIC_PATH))
        .header("X-Remote-User", "alice")
        .send()
        .await;
    match result {
        Err(_) => {}
        Ok(response) => assert_eq!(response.status(), StatusCode::UNAUTHORIZED),
    }
    assert_eq!(cluster.source.calls(), 0);
    assert_eq!(cluster.authorizer.calls.load(Ordering::SeqCst), 0);
    cluster.stop().await;
}

#[tokio::test]
async fn a_front_proxy_certificate_with_a_name_not_allowed_is_unauthorized() {
    let cluster = Cluster::start(&["alice"]).await;
    let impostor = cluster.front_proxy_ca.client("someone-else", &[]);
    let response = cluster
        .client(Some(&impostor))
        .get(cluster.url(METRIC_PATH))
        .header("X-Remote-User", "alice")
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(cluster.source.calls(), 0);
    cluster.stop().await;
}

#[tokio::test]
async fn a_client_certificate_names_the_user_and_groups() {
    let cluster = Cluster::start(&["carol"]).await;
    // rcgen keeps one value per attribute type, so one organisation.
    let carol = cluster.client_ca.client("carol", &["ops"]);
    let response = cluster
        .client(Some(&carol))
        .get(cluster.url(METRIC_PATH))
        // Only the front proxy's headers count; on a client certificate they are ignored.
        .header("X-Remote-User", "mallory")
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::OK);
    let asked = cluster.authorizer.asked.lock().expect("a lock").clone();
    assert_eq!(asked[0].0.name, "carol");
    assert_eq!(asked[0].0.groups, ["ops", "system:authenticated"]);
    cluster.stop().await;
}

#[tokio::test]
async fn a_refused_review_is_forbidden_and_never_reaches_the_source() {
    let cluster = Cluster::start(&["alice"]).await;
    let response = cluster
        .front_proxy()
        .get(cluster.url(METRIC_PATH))
        .header("X-Remote-User", "bob")
        .send()
        .await
        .expect("a response");
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["reason"], "Forbidden");
    assert_eq!(
        body["message"],
        "s0-redis-mylist.external.metrics.k8s.io is forbidden: User \"bob\" cannot list resource \"s0-redis-mylist\" in API group \"external.metrics.k8s.io\" in the namespace \"ns\": no RBAC policy matched"
    );
    assert_eq!(body["details"]["group"], "external.metrics.k8s.io");
    assert_eq!(body["details"]["kind"], "s0-redis-mylist");
    assert_eq!(cluster.authorizer.calls.load(Ordering::SeqCst), 1);
    assert_eq!(cluster.source.calls(), 0);
    cluster.stop().await;
}

#[tokio::test]
async fn the_aggregators_privileged_identity_needs_no_review() {
    let cluster = Cluster::start(&[]).await;
    let response = cluster
        .front_proxy()
        .get(cluster.url("/apis/external.metrics.k8s.io/v1beta1"))
        .header("X-Remote-User", "system:kube-aggregator")
        .header("X-Remote-Group", "system:masters")
        .send()
        .await
        .expect("a response");
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["kind"], "APIResourceList");
    assert_eq!(cluster.authorizer.calls.load(Ordering::SeqCst), 0);
    cluster.stop().await;
}

#[tokio::test]
async fn a_bearer_token_is_reviewed_and_the_reviews_are_cached() {
    let cluster = Cluster::start(&["token-user"]).await;
    let client = cluster.client(None);
    for _ in 0..3 {
        let response = client
            .get(cluster.url(METRIC_PATH))
            .bearer_auth("good-token")
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(cluster.source.calls(), 3);
    assert_eq!(
        cluster.tokens.calls.load(Ordering::SeqCst),
        1,
        "token review cached"
    );
    assert_eq!(
        cluster.authorizer.calls.load(Ordering::SeqCst),
        1,
        "decision cached"
    );

    for _ in 0..2 {
        let response = client
            .get(cluster.url(METRIC_PATH))
            .bearer_auth("bad-token")
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        cluster.tokens.calls.load(Ordering::SeqCst),
        2,
        "rejections are cached too"
    );
    cluster.stop().await;
}

#[tokio::test]
async fn denials_are_cached_as_well() {
    let cluster = Cluster::start(&[]).await;
    let client = cluster.front_proxy();
    for _ in 0..2 {
        let response = client
            .get(cluster.url(METRIC_PATH))
            .header("X-Remote-User", "bob")
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(cluster.authorizer.calls.load(Ordering::SeqCst), 1);
    cluster.stop().await;
}

#[tokio::test]
async fn http2_is_negotiated_by_alpn() {
    let cluster = Cluster::start(&["alice"]).await;
    let identity = cluster.front_proxy_ca.client("front-proxy-client", &[]);
    let client = http_client(client_config(&cluster.serving_ca, Some(&identity), true));
    let response = client
        .get(cluster.url(METRIC_PATH))
        .header("X-Remote-User", "alice")
        .send()
        .await
        .expect("a response");
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    cluster.stop().await;
}

fn served_certificate(response: &reqwest::Response) -> Vec<u8> {
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .map(<[u8]>::to_vec)
        .expect("the server's certificate")
}

#[tokio::test]
async fn a_rewritten_certificate_is_served_to_the_next_connection() {
    let cluster = Cluster::start(&[]).await;
    let first = cluster
        .client(None)
        .get(cluster.url("/healthz"))
        .send()
        .await
        .expect("a response");
    let before = served_certificate(&first);

    let renewed = cluster.serving_ca.server("windlass-b");
    renewed.write(&cluster.cert_file(), &cluster.key_file());

    let second = cluster
        .client(None)
        .get(cluster.url("/healthz"))
        .send()
        .await
        .expect("a response");
    let after = served_certificate(&second);
    assert_ne!(before, after);
    assert_eq!(after, renewed.der().as_ref());

    // A key that does not fit the certificate is not taken; the renewed pair stays.
    let other = cluster.serving_ca.server("windlass-c");
    std::fs::write(cluster.key_file(), &other.key_pem).expect("write a mismatched key");
    let third = cluster
        .client(None)
        .get(cluster.url("/healthz"))
        .send()
        .await
        .expect("a response");
    assert_eq!(served_certificate(&third), renewed.der().as_ref());
    cluster.stop().await;
}
