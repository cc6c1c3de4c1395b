//! The kube implementations against a small scripted API server: what they post, how they
//! read the answer, and the start-up read of the authentication ConfigMap.
#![allow(clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::fakes::FakeSource;
use super::pki::{Ca, client_config, http_client};
use crate::metrics_api::auth::{
    Authorizer, KubeAuthorizer, KubeTokenReviewer, RequestAttributes, TokenReviewer, UserInfo,
};
use crate::metrics_api::{MetricsApiArgs, MetricsApiServer};

#[derive(Clone, Default)]
struct Recorded {
    bodies: Arc<Mutex<Vec<Value>>>,
    configmap: Option<Value>,
}

/// Answers TokenReviews (`good` is user `alice`), SubjectAccessReviews (allows `alice`) and
/// the authentication ConfigMap (404 unless given).
async fn fake_apiserver(recorded: Recorded) -> kube::Client {
    async fn token_review(
        State(recorded): State<Recorded>,
        Json(body): Json<Value>,
    ) -> Json<Value> {
        recorded.bodies.lock().expect("a lock").push(body.clone());
        let mut review = body;
        review["status"] = if review["spec"]["token"] == "good" {
            json!({"authenticated": true, "user": {"username": "alice", "uid": "u-1", "groups": ["g"]}})
        } else {
            json!({"authenticated": false, "error": "invalid token"})
        };
        Json(review)
    }
    async fn access_review(
        State(recorded): State<Recorded>,
        Json(body): Json<Value>,
    ) -> Json<Value> {
        recorded.bodies.lock().expect("a lock").push(body.clone());
        let mut review = body;
        review["status"] = if review["spec"]["user"] == "alice" {
            json!({"allowed": true})
        } else {
            json!({"allowed": false, "reason": "no RBAC policy matched"})
        };
        Json(review)
    }
    async fn configmap(State(recorded): State<Recorded>) -> axum::response::Response {
        match recorded.configmap {
            Some(configmap) => Json(configmap).into_response(),
            None => (
                StatusCode::NOT_FOUND,
                Json(json!({
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "configmaps \"extension-apiserver-authentication\" not found",
                    "reason": "NotFound", "code": 404,
                })),
            )
                .into_response(),
        }
    }
    let app = Router::new()
        .route(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            post(token_review),
        )
        .route(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            post(access_review),
        )
        .route(
            "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication",
            get(configmap),
        )
        .with_state(recorded);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = kube::Config::new(format!("http://{address}").parse().expect("a URL"));
    kube::Client::try_from(config).expect("a client")
}

#[tokio::test]
async fn token_reviews_post_the_token_and_read_the_user() {
    let recorded = Recorded::default();
    let reviewer = KubeTokenReviewer::new(fake_apiserver(recorded.clone()).await);
    let user = reviewer.review("good").await.expect("reviewed");
    assert_eq!(
        user,
        Some(UserInfo {
            name: "alice".to_owned(),
            uid: "u-1".to_owned(),
            groups: vec!["g".to_owned()],
            ..Default::default()
        })
    );
    assert_eq!(reviewer.review("bad").await.expect("reviewed"), None);
    let bodies = recorded.bodies.lock().expect("a lock").clone();
    assert_eq!(bodies[0]["apiVersion"], "authentication.k8s.io/v1");
    assert_eq!(bodies[0]["kind"], "TokenReview");
    assert_eq!(bodies[0]["spec"]["token"], "good");
}

#[tokio::test]
async fn access_reviews_post_the_attributes_and_read_the_decision() {
    let recorded = Recorded::default();
    let authorizer = KubeAuthorizer::new(fake_apiserver(recorded.clone()).await);
    let attributes = RequestAttributes::Resource {
        verb: "list".to_owned(),
        namespace: "ns".to_owned(),
        group: "external.metrics.k8s.io".to_owned(),
        version: "v1beta1".to_owned(),
        resource: "s0-foo".to_owned(),
        subresource: String::new(),
        name: String::new(),
    };
    let alice = UserInfo {
        name: "alice".to_owned(),
        ..Default::default()
    };
    let bob = UserInfo {
        name: "bob".to_owned(),
        ..Default::default()
    };
    assert!(
        authorizer
            .authorize(&alice, &attributes)
            .await
            .expect("decided")
            .allowed
    );
    let denied = authorizer
        .authorize(&bob, &attributes)
        .await
        .expect("decided");
    assert!(!denied.allowed);
    assert_eq!(denied.reason, "no RBAC policy matched");
    let bodies = recorded.bodies.lock().expect("a lock").clone();
    assert_eq!(bodies[0]["kind"], "SubjectAccessReview");
    assert_eq!(
        bodies[0]["spec"]["resourceAttributes"],
        json!({"verb": "list", "namespace": "ns", "group": "external.metrics.k8s.io", "version": "v1beta1", "resource": "s0-foo"})
    );
}

#[tokio::test]
async fn the_server_takes_the_front_proxy_ca_from_the_published_configmap() {
    let serving_ca = Ca::new("serving CA");
    let front_proxy_ca = Ca::new("front-proxy CA");
    let dir = tempfile::tempdir().expect("a directory");
    serving_ca
        .server("windlass")
        .write(&dir.path().join("tls.crt"), &dir.path().join("tls.key"));
    let recorded = Recorded {
        configmap: Some(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "extension-apiserver-authentication", "namespace": "kube-system"},
            "data": {
                "requestheader-client-ca-file": front_proxy_ca.cert_pem,
                "requestheader-allowed-names": "[\"front-proxy-client\"]",
                "requestheader-username-headers": "[\"X-Remote-User\"]",
                "requestheader-group-headers": "[\"X-Remote-Group\"]",
                "requestheader-extra-headers-prefix": "[\"X-Remote-Extra-\"]",
            },
        })),
        ..Recorded::default()
    };
    let client = fake_apiserver(recorded.clone()).await;
    let args = MetricsApiArgs {
        bind_address: "127.0.0.1:0".parse().expect("an address"),
        tls_cert_file: Some(dir.path().join("tls.crt")),
        tls_private_key_file: Some(dir.path().join("tls.key")),
        ..MetricsApiArgs::default()
    };
    let source = Arc::new(FakeSource::new().with_values("ns", "my-so", "s0-m", &[2.5]));
    let server = MetricsApiServer::bind(&args, source.clone(), Some(client))
        .await
        .expect("starts with the published configuration");
    let address = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));

    let proxy = front_proxy_ca.client("front-proxy-client", &[]);
    let client = http_client(client_config(&serving_ca, Some(&proxy), false));
    let url = format!(
        "https://{address}/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/s0-m?labelSelector=scaledobject.keda.sh%2Fname%3Dmy-so"
    );
    let allowed = client
        .get(&url)
        .header("X-Remote-User", "alice")
        .send()
        .await
        .expect("a response");
    assert_eq!(allowed.status(), reqwest::StatusCode::OK);
    let body: Value = allowed.json().await.expect("JSON");
    assert_eq!(body["items"][0]["value"], "2500m");
    let denied = client
        .get(&url)
        .header("X-Remote-User", "bob")
        .send()
        .await
        .expect("a response");
    assert_eq!(denied.status(), reqwest::StatusCode::FORBIDDEN);
    assert_eq!(source.calls(), 1);

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(15), running)
        .await
        .expect("stops")
        .expect("joins")
        .expect("ran cleanly");
}

#[tokio::test]
async fn a_missing_configmap_still_starts_with_tokens_only() {
    let dir = tempfile::tempdir().expect("a directory");
    let serving_ca = Ca::new("serving CA");
    serving_ca
        .server("windlass")
        .write(&dir.path().join("tls.crt"), &dir.path().join("tls.key"));
    let client = fake_apiserver(Recorded::default()).await;
    let args = MetricsApiArgs {
        bind_address: "127.0.0.1:0".parse().expect("an address"),
        tls_cert_file: Some(dir.path().join("tls.crt")),
        tls_private_key_file: Some(dir.path().join("tls.key")),
        ..MetricsApiArgs::default()
    };
    let server = MetricsApiServer::bind(&args, Arc::new(FakeSource::new()), Some(client))
        .await
        .expect("starts without the ConfigMap");
    assert_ne!(server.local_addr().port(), 0);
}
