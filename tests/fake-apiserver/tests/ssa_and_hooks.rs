//! Server-side apply, field ownership, and the test hooks of the fake API server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use fake_apiserver::{FakeApiServer, FakeError, RequestMatcher};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenReview;
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ObjectReference};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

async fn server() -> (FakeApiServer, Client) {
    let server = FakeApiServer::start().await.unwrap();
    let client = server.client();
    (server, client)
}

fn api_err(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn cm_apply(data: Value) -> Patch<Value> {
    Patch::Apply(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": data}),
    )
}

/// The managers and operations recorded in managedFields, with the data keys each owns.
fn owners(cm: &ConfigMap) -> BTreeMap<String, Vec<String>> {
    cm.metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|e| {
            let fields = serde_json::to_value(e.fields_v1.as_ref().unwrap()).unwrap();
            let mut keys: Vec<String> = fields["f:data"]
                .as_object()
                .map(|m| {
                    m.keys()
                        .map(|k| k.trim_start_matches("f:").to_string())
                        .collect()
                })
                .unwrap_or_default();
            keys.sort();
            (
                format!(
                    "{}/{}",
                    e.manager.as_deref().unwrap(),
                    e.operation.as_deref().unwrap()
                ),
                keys,
            )
        })
        .collect()
}

fn data(cm: &ConfigMap) -> BTreeMap<String, String> {
    cm.data.clone().unwrap_or_default()
}

#[tokio::test]
async fn server_side_apply_tracks_ownership_removes_omitted_fields_and_conflicts() {
    let (server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let alpha = PatchParams::apply("alpha");
    let beta = PatchParams::apply("beta");

    let created = cms
        .patch(
            "cfg",
            &alpha,
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cfg", "labels": {"x": "1"}},
                "data": {"a": "1", "b": "2"},
            })),
        )
        .await
        .unwrap();
    assert_eq!(owners(&created)["alpha/Apply"], ["a", "b"]);
    let rec = server
        .requests()
        .into_iter()
        .find(|r| r.verb == "patch")
        .unwrap();
    assert_eq!(rec.field_manager.as_deref(), Some("alpha"));
    assert_eq!(
        rec.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(rec.code, 201, "apply creates a missing object");

    let both = cms
        .patch("cfg", &beta, &cm_apply(json!({"c": "3"})))
        .await
        .unwrap();
    assert_eq!(data(&both).len(), 3);
    assert_eq!(owners(&both)["beta/Apply"], ["c"]);

    let err = api_err(
        cms.patch("cfg", &beta, &cm_apply(json!({"a": "9", "c": "3"})))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"alpha\" using v1: .data.a"
    );

    // the same value is shared ownership, not a conflict
    let shared = cms
        .patch("cfg", &beta, &cm_apply(json!({"a": "1", "c": "3"})))
        .await
        .unwrap();
    assert_eq!(owners(&shared)["beta/Apply"], ["a", "c"]);

    // alpha stops applying a (beta still owns it: kept) and the label (only alpha: removed)
    let dropped = cms
        .patch("cfg", &alpha, &cm_apply(json!({"b": "2"})))
        .await
        .unwrap();
    assert_eq!(data(&dropped)["a"], "1");
    assert!(
        dropped.metadata.labels.is_none(),
        "{:?}",
        dropped.metadata.labels
    );
    let dropped = cms
        .patch("cfg", &alpha, &cm_apply(json!({})))
        .await
        .unwrap();
    assert!(!data(&dropped).contains_key("b"), "b had no other owner");

    // force takes the field over
    cms.patch("cfg", &alpha, &cm_apply(json!({"a": "1"})))
        .await
        .unwrap();
    let forced = cms
        .patch(
            "cfg",
            &beta.clone().force(),
            &cm_apply(json!({"a": "7", "c": "3"})),
        )
        .await
        .unwrap();
    assert_eq!(data(&forced)["a"], "7");
    assert!(
        !owners(&forced).contains_key("alpha/Apply"),
        "alpha lost its only field: {:?}",
        owners(&forced)
    );

    // an ordinary update takes ownership of what it changes, and apply then conflicts with it
    let edited = cms
        .patch(
            "cfg",
            &PatchParams {
                field_manager: Some("editor".into()),
                ..PatchParams::default()
            },
            &Patch::Merge(json!({"data": {"c": "edited"}})),
        )
        .await
        .unwrap();
    assert_eq!(owners(&edited)["editor/Update"], ["c"]);
    assert_eq!(owners(&edited)["beta/Apply"], ["a"]);
    let err = api_err(
        cms.patch("cfg", &beta, &cm_apply(json!({"a": "7", "c": "3"})))
            .await
            .unwrap_err(),
    );
    assert!(
        err.message.contains("conflict with \"editor\""),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn apply_requires_a_field_manager() {
    let (server, client) = server().await;
    let req = http::Request::patch(format!(
        "{}/api/v1/namespaces/default/configmaps/x",
        server.url()
    ))
    .header("content-type", "application/apply-patch+yaml")
    .body(b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n".to_vec())
    .unwrap();
    let err = api_err(client.request_text(req).await.unwrap_err());
    assert_eq!(err.code, 400);
    // YAML bodies are accepted once a manager is given
    let req = http::Request::patch(format!(
        "{}/api/v1/namespaces/default/configmaps/x?fieldManager=yaml",
        server.url()
    ))
    .header("content-type", "application/apply-patch+yaml")
    .body(b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  k: v\n".to_vec())
    .unwrap();
    client.request_text(req).await.unwrap();
    assert_eq!(
        server.get("v1", "ConfigMap", "default", "x").unwrap()["data"]["k"],
        "v"
    );
}

#[tokio::test]
async fn apply_merges_keyed_lists_per_item() {
    let (_server, client) = server().await;
    let deploys: Api<Deployment> = Api::namespaced(client, "default");
    let deploy = |containers: Value| {
        Patch::Apply(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}}},
        }))
    };
    deploys
        .patch(
            "web",
            &PatchParams::apply("app"),
            &deploy(json!([{"name": "main", "image": "app:1"}])),
        )
        .await
        .unwrap();
    let sidecar = Patch::Apply(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "proxy", "image": "proxy:1"}]}}},
    }));
    let both = deploys
        .patch("web", &PatchParams::apply("mesh"), &sidecar)
        .await
        .unwrap();
    let names = |d: &Deployment| -> Vec<String> {
        d.spec
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers
            .iter()
            .map(|c| c.name.clone())
            .collect()
    };
    assert_eq!(names(&both), ["main", "proxy"]);
    let updated = deploys
        .patch(
            "web",
            &PatchParams::apply("app"),
            &deploy(json!([{"name": "main", "image": "app:2"}])),
        )
        .await
        .unwrap();
    assert_eq!(names(&updated), ["main", "proxy"]);
    assert_eq!(updated.metadata.generation, Some(3));
    let without_main = deploys
        .patch(
            "web",
            &PatchParams::apply("app"),
            &deploy(json!([{"name": "other", "image": "o:1"}])),
        )
        .await
        .unwrap();
    assert_eq!(names(&without_main), ["proxy", "other"]);
    assert_eq!(without_main.spec.replicas, Some(1), "defaulted fields stay");
}

#[tokio::test]
async fn apply_on_status_and_scale_subresources() {
    let (_server, client) = server().await;
    let deploys: Api<Deployment> = Api::namespaced(client, "default");
    let manifest = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}},
    });
    deploys
        .patch(
            "web",
            &PatchParams::apply("deployer"),
            &Patch::Apply(manifest.clone()),
        )
        .await
        .unwrap();

    let st = deploys
        .patch_status(
            "web",
            &PatchParams::apply("status-writer"),
            &Patch::Apply(
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                                 "spec": {"replicas": 50}, "status": {"replicas": 2}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(st.spec.replicas, Some(2));
    assert_eq!(st.status.as_ref().unwrap().replicas, Some(2));
    let entry = st
        .metadata
        .managed_fields
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.manager.as_deref() == Some("status-writer"))
        .unwrap();
    assert_eq!(entry.subresource.as_deref(), Some("status"));

    // the deployer owns spec.replicas: applying the scale conflicts unless forced
    let scale = |n: i32| {
        Patch::Apply(
            json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"}, "spec": {"replicas": n}}),
        )
    };
    let err = api_err(
        deploys
            .patch_scale("web", &PatchParams::apply("autoscaler"), &scale(5))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 409);
    let forced = deploys
        .patch_scale("web", &PatchParams::apply("autoscaler").force(), &scale(5))
        .await
        .unwrap();
    assert_eq!(forced.spec.unwrap().replicas, Some(5));
    let err = api_err(
        deploys
            .patch(
                "web",
                &PatchParams::apply("deployer"),
                &Patch::Apply(manifest),
            )
            .await
            .unwrap_err(),
    );
    assert!(
        err.message.contains("conflict with \"autoscaler\""),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn fault_injection_and_request_counters() {
    let (server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap(),
    )
    .await
    .unwrap();
    server.fail_requests(
        RequestMatcher::verb("patch", "configmaps").name("c"),
        500,
        1,
    );
    let patch = Patch::Merge(json!({"data": {"k": "v"}}));
    let err = api_err(
        cms.patch("c", &PatchParams::default(), &patch)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (500, "InternalError"));
    cms.patch("c", &PatchParams::default(), &patch)
        .await
        .unwrap();

    server.fail_requests(RequestMatcher::verb("get", "configmaps"), 409, 2);
    assert_eq!(api_err(cms.get("c").await.unwrap_err()).code, 409);
    assert_eq!(api_err(cms.get("c").await.unwrap_err()).code, 409);
    cms.get("c").await.unwrap();

    assert_eq!(server.count("patch", "configmaps", None), 2);
    assert_eq!(server.count("get", "configmaps", None), 3);
    let codes: Vec<u16> = server
        .requests()
        .iter()
        .filter(|r| r.plural == "configmaps")
        .map(|r| r.code)
        .collect();
    assert_eq!(codes, [201, 500, 200, 409, 409, 200]);
    server.clear_requests();
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn review_handlers_answer_token_and_access_reviews() {
    let (server, client) = server().await;
    let reviews: Api<TokenReview> = Api::all(client.clone());
    let review: TokenReview = serde_json::from_value(json!({"spec": {"token": "good"}})).unwrap();
    let denied = reviews
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    assert_eq!(
        denied.status.unwrap().authenticated,
        Some(false),
        "no handler: unauthenticated"
    );

    server.set_token_review_handler(|spec| {
        json!({"authenticated": spec["token"] == "good", "user": {"username": "system:serviceaccount:keda:hpa"}})
    });
    server.set_subject_access_review_handler(
        |spec| json!({"allowed": spec["user"] == "system:serviceaccount:keda:hpa"}),
    );
    let answered = reviews
        .create(&PostParams::default(), &review)
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(answered.authenticated, Some(true));
    assert_eq!(
        answered.user.unwrap().username.as_deref(),
        Some("system:serviceaccount:keda:hpa")
    );

    let sars: Api<SubjectAccessReview> = Api::all(client);
    let sar: SubjectAccessReview = serde_json::from_value(json!({
        "spec": {"user": "system:serviceaccount:keda:hpa", "resourceAttributes": {"verb": "get"}}
    }))
    .unwrap();
    assert!(
        sars.create(&PostParams::default(), &sar)
            .await
            .unwrap()
            .status
            .unwrap()
            .allowed
    );
    assert!(
        server
            .list("authentication.k8s.io/v1", "TokenReview", None)
            .is_empty(),
        "reviews are not stored"
    );
    assert_eq!(server.count("create", "subjectaccessreviews", None), 1);
}

#[tokio::test]
async fn test_hooks_write_objects_and_watchers_see_them() {
    let (server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let head = server.resource_version().to_string();
    let mut events = cms
        .watch(&WatchParams::default().disable_bookmarks(), &head)
        .await
        .unwrap()
        .boxed();

    let put = server
        .put_object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "h", "namespace": "default"}, "data": {"a": "1"}}))
        .unwrap();
    assert!(put["metadata"]["uid"].is_string());
    server
        .put_object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "h", "namespace": "default"}, "data": {"a": "2"}}))
        .unwrap();
    assert_eq!(
        server.get("v1", "configmaps", "default", "h").unwrap()["metadata"]["uid"],
        put["metadata"]["uid"],
        "replacing keeps the uid"
    );
    assert!(
        server
            .delete_object("v1", "ConfigMap", "default", "h")
            .unwrap()
    );

    let mut seen = Vec::new();
    while seen.len() < 3 {
        seen.push(
            match tokio::time::timeout(WAIT, events.try_next())
                .await
                .unwrap()
                .unwrap()
                .unwrap()
            {
                WatchEvent::Added(o) => format!("ADDED {}", data(&o)["a"]),
                WatchEvent::Modified(o) => format!("MODIFIED {}", data(&o)["a"]),
                WatchEvent::Deleted(o) => format!("DELETED {}", data(&o)["a"]),
                other => panic!("{other:?}"),
            },
        );
    }
    assert_eq!(seen, ["ADDED 1", "MODIFIED 2", "DELETED 2"]);

    // put_object keeps a status as given, even for kinds with a status subresource
    let hpa = server
        .put_object(json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "keda-hpa-web", "namespace": "default"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5},
            "status": {"currentReplicas": 3, "desiredReplicas": 4},
        }))
        .unwrap();
    assert_eq!(hpa["metadata"]["generation"], 1);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client, "default");
    let got = hpas.get("keda-hpa-web").await.unwrap();
    assert_eq!(got.status.unwrap().desired_replicas, 4);

    let timeout = server
        .wait_until(|_| false, Duration::from_millis(30))
        .await;
    assert!(matches!(timeout, Err(FakeError::Timeout(_))));
    let found = server
        .wait_for(
            |v| {
                v.get(
                    "autoscaling/v2",
                    "horizontalpodautoscalers",
                    "default",
                    "keda-hpa-web",
                )
            },
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(found["spec"]["maxReplicas"], 5);
}

#[tokio::test]
async fn paginated_lists_are_consistent_snapshots() {
    let (server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    for i in 0..5 {
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": format!("c{i}")}})).unwrap(),
        )
        .await
        .unwrap();
    }
    let first = cms.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let token = first.metadata.continue_.clone().unwrap();
    // changes after the first page do not leak into later pages
    cms.delete("c4", &DeleteParams::default()).await.unwrap();
    let mut names: Vec<String> = first.items.iter().map(ResourceExt::name_any).collect();
    let mut next = Some(token);
    while let Some(t) = next {
        let page = cms
            .list(&ListParams::default().limit(2).continue_token(&t))
            .await
            .unwrap();
        assert_eq!(
            page.metadata.resource_version,
            first.metadata.resource_version
        );
        names.extend(page.items.iter().map(ResourceExt::name_any));
        next = page.metadata.continue_.filter(|c| !c.is_empty());
    }
    assert_eq!(names, ["c0", "c1", "c2", "c3", "c4"]);
    let err = api_err(
        cms.list(&ListParams::default().continue_token("fake-continue-999"))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 410);
    assert_eq!(server.list("v1", "ConfigMap", Some("default")).len(), 4);
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_events_then_changes() {
    let (_server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "before"}})).unwrap(),
    )
    .await
    .unwrap();
    let mut w = watcher(cms.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut initial = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, w.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            watcher::Event::InitApply(o) => initial.push(o.name_any()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(initial, ["before"]);
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "after"}})).unwrap(),
    )
    .await
    .unwrap();
    loop {
        if let watcher::Event::Apply(o) = tokio::time::timeout(WAIT, w.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            assert_eq!(o.name_any(), "after");
            break;
        }
    }
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_contents_and_waits_for_finalizers() {
    let (server, client) = server().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "temp"}})).unwrap(),
        )
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client, "temp");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "plain"}})).unwrap(),
    )
    .await
    .unwrap();
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "held", "finalizers": ["x/y"]}}))
            .unwrap(),
    )
    .await
    .unwrap();
    namespaces
        .delete("temp", &DeleteParams::default())
        .await
        .unwrap();
    let ns = namespaces.get("temp").await.unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    assert!(server.get("v1", "ConfigMap", "temp", "plain").is_none());
    let err = api_err(
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "new"}})).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (403, "Forbidden"));
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(api_err(namespaces.get("temp").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn dry_run_orphan_and_delete_collection() {
    let (server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = |name: &str, team: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": {"team": team}}}))
            .unwrap()
    };
    let dry = cms
        .create(
            &PostParams {
                dry_run: true,
                ..PostParams::default()
            },
            &cm("dry", "a"),
        )
        .await
        .unwrap();
    assert_eq!(dry.name_any(), "dry");
    assert!(server.get("v1", "ConfigMap", "default", "dry").is_none());

    let deploys: Api<Deployment> = Api::namespaced(client, "default");
    let owner: Deployment = deploys
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "o"}, "spec": {"selector": {}, "template": {}}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let mut owned = cm("owned", "b");
    owned.metadata.owner_references = Some(vec![
        serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "o", "uid": owner.uid().unwrap()}))
            .unwrap(),
    ]);
    cms.create(&PostParams::default(), &owned).await.unwrap();
    deploys.delete("o", &DeleteParams::orphan()).await.unwrap();
    let orphan = cms.get("owned").await.unwrap();
    assert!(orphan.metadata.owner_references.is_none());

    cms.create(&PostParams::default(), &cm("a1", "a"))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &cm("a2", "a"))
        .await
        .unwrap();
    cms.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("team=a"),
    )
    .await
    .unwrap();
    let left: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    assert_eq!(left, ["owned"]);
}

#[tokio::test]
async fn event_recorder_creates_and_updates_events() {
    let (server, client) = server().await;
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: "windlass".into(),
            instance: None,
        },
    );
    let reference = ObjectReference {
        api_version: Some("keda.sh/v1alpha1".into()),
        kind: Some("ScaledObject".into()),
        name: Some("so".into()),
        namespace: Some("default".into()),
        uid: Some("u".into()),
        ..ObjectReference::default()
    };
    let ev = Event {
        type_: EventType::Normal,
        reason: "KEDAScalersStarted".into(),
        note: Some("started".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    recorder.publish(&ev, &reference).await.unwrap();
    recorder.publish(&ev, &reference).await.unwrap();
    let events = server.list("events.k8s.io/v1", "Event", Some("default"));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["reason"], "KEDAScalersStarted");
    assert_eq!(events[0]["series"]["count"], 2);
    assert_eq!(server.count("create", "events", None), 1);
    assert_eq!(server.count("patch", "events", None), 1);
}

#[tokio::test]
async fn finalizers_are_a_set_for_apply_and_strategic_merge() {
    let (_server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let with_finalizer = |f: &str| {
        Patch::Apply(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "finalizers": [f]}}),
        )
    };
    cms.patch(
        "cfg",
        &PatchParams::apply("one"),
        &with_finalizer("example.com/one"),
    )
    .await
    .unwrap();
    let both = cms
        .patch(
            "cfg",
            &PatchParams::apply("two"),
            &with_finalizer("example.com/two"),
        )
        .await
        .unwrap();
    assert_eq!(both.finalizers(), ["example.com/one", "example.com/two"]);
    let strategic = cms
        .patch(
            "cfg",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"finalizers": ["example.com/three"]}})),
        )
        .await
        .unwrap();
    assert_eq!(strategic.finalizers().len(), 3);
    // manager one drops its finalizer; the others stay
    let dropped = cms
        .patch(
            "cfg",
            &PatchParams::apply("one"),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        dropped.finalizers(),
        ["example.com/two", "example.com/three"]
    );
}

#[tokio::test]
async fn put_object_keeps_a_given_creation_timestamp() {
    let (server, _client) = server().await;
    let old = "2020-01-02T03:04:05Z";
    server
        .put_object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "old", "namespace": "default", "creationTimestamp": old}}))
        .unwrap();
    server
        .put_object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new", "namespace": "default"}}))
        .unwrap();
    let stamp = |name: &str| {
        server.get("v1", "configmaps", "default", name).unwrap()["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(stamp("old"), old);
    assert_ne!(stamp("new"), old, "filled in when not given");
}

#[tokio::test]
async fn take_requests_empties_the_log_and_inspect_counts_objects_in_place() {
    let (server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    for (name, team) in [("a", "x"), ("b", "y"), ("c", "x")] {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": {"team": team}}}))
                .unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    let taken = server.take_requests();
    assert_eq!(taken.len(), 3);
    assert!(taken.iter().all(|r| r.verb == "create"));
    assert!(server.requests().is_empty(), "the log was emptied");
    cms.get("a").await.unwrap();
    assert_eq!(server.take_requests().len(), 1, "only what came after");

    let team_x = server.inspect(|view| {
        view.count_objects("v1", "configmaps", Some("default"), |cm| {
            cm["metadata"]["labels"]["team"] == "x"
        })
    });
    assert_eq!(team_x, 2);
    let elsewhere = server
        .inspect(|view| view.count_objects("v1", "configmaps", Some("kube-system"), |_| true));
    assert_eq!(elsewhere, 0);
    let unknown = server.inspect(|view| view.count_objects("v1", "widgets", None, |_| true));
    assert_eq!(unknown, 0);
}
