//! The fake API server driven by the real kube client and kube-runtime.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fake_apiserver::{FakeApiServer, ResourceDef, ScalePaths};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use kube::runtime::{WatchStreamExt, controller, reflector, watcher};
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

fn deployment(name: &str, replicas: Option<i32>) -> Deployment {
    let mut d = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "busybox"}]},
            },
        },
    });
    if let Some(r) = replicas {
        d["spec"]["replicas"] = json!(r);
    }
    serde_json::from_value(d).unwrap()
}

fn configmap(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"k": "v"},
    }))
    .unwrap()
}

fn scaled_object_resource() -> ApiResource {
    ApiResource {
        group: "keda.sh".into(),
        version: "v1alpha1".into(),
        api_version: "keda.sh/v1alpha1".into(),
        kind: "ScaledObject".into(),
        plural: "scaledobjects".into(),
    }
}

fn rv(o: &impl ResourceExt) -> u64 {
    o.resource_version().unwrap().parse().unwrap()
}

#[tokio::test]
async fn typed_crud_round_trip() {
    let (server, client) = server().await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let created = deploys
        .create(&PostParams::default(), &deployment("web", None))
        .await
        .unwrap();
    assert_eq!(created.spec.replicas, Some(1), "apiserver defaulting");
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let first_rv = rv(&created);

    let got = deploys.get("web").await.unwrap();
    assert_eq!(got.metadata.uid, created.metadata.uid);

    let mut changed = got.clone();
    changed.spec.replicas = Some(4);
    let replaced = deploys
        .replace("web", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert!(rv(&replaced) > first_rv);
    assert_eq!(replaced.metadata.generation, Some(2));

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &configmap("a", &[("team", "x")]))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &configmap("b", &[("team", "y")]))
        .await
        .unwrap();
    let mut generate = configmap("", &[]);
    generate.metadata.name = None;
    generate.metadata.generate_name = Some("gen-".into());
    let generated = cms.create(&PostParams::default(), &generate).await.unwrap();
    assert!(generated.name_any().starts_with("gen-") && generated.name_any().len() == 9);
    assert_eq!(
        generated.metadata.generation, None,
        "ConfigMaps do not track generation"
    );

    let list = cms
        .list(&ListParams::default().labels("team=x"))
        .await
        .unwrap();
    assert_eq!(
        list.items
            .iter()
            .map(ResourceExt::name_any)
            .collect::<Vec<_>>(),
        ["a"]
    );
    assert_eq!(
        list.metadata.resource_version.unwrap(),
        server.resource_version().to_string()
    );
    let by_name = cms
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    let not_in = cms
        .list(&ListParams::default().labels("team notin (x),team"))
        .await
        .unwrap();
    assert_eq!(not_in.items.len(), 1);

    cms.delete("a", &DeleteParams::default()).await.unwrap();
    let err = api_err(cms.get("a").await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
    assert_eq!(err.message, "configmaps \"a\" not found");
    let err = api_err(deploys.get("nope").await.unwrap_err());
    assert_eq!(err.message, "deployments.apps \"nope\" not found");

    // the server's own view agrees
    assert_eq!(
        server
            .get("apps/v1", "Deployment", "default", "web")
            .unwrap()["spec"]["replicas"],
        json!(4)
    );
}

#[tokio::test]
async fn dynamic_scaled_object_round_trip_and_cluster_wide_list() {
    let (server, client) = server().await;
    server.create_namespace("apps").unwrap();
    let ar = scaled_object_resource();
    let in_default: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let in_apps: Api<DynamicObject> = Api::namespaced_with(client.clone(), "apps", &ar);
    let so = |name: &str| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": name},
            "spec": {"scaleTargetRef": {"name": "web"}, "triggers": [{"type": "cron", "metadata": {}}]},
            "status": {"ignored": true},
        }))
        .unwrap()
    };
    let created = in_default
        .create(&PostParams::default(), &so("a"))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(
        created.data.get("status").is_none(),
        "status is dropped on create"
    );
    in_apps
        .create(&PostParams::default(), &so("b"))
        .await
        .unwrap();

    let all: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let listed = all.list(&ListParams::default()).await.unwrap();
    let mut names: Vec<_> = listed
        .items
        .iter()
        .map(|o| (o.namespace().unwrap(), o.name_any()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("apps".to_string(), "b".to_string()),
            ("default".into(), "a".into())
        ]
    );

    let patched = in_default
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"minReplicaCount": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["spec"]["minReplicaCount"], json!(2));
    assert_eq!(patched.data["spec"]["scaleTargetRef"]["name"], json!("web"));
    assert_eq!(patched.metadata.generation, Some(2));

    // custom resources need a resourceVersion on PUT, like CRDs on a real server
    let mut unconditional = patched.clone();
    unconditional.metadata.resource_version = None;
    let err = api_err(
        in_default
            .replace("a", &PostParams::default(), &unconditional)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));

    in_apps.delete("b", &DeleteParams::default()).await.unwrap();
    assert!(
        server
            .get("keda.sh/v1alpha1", "scaledobjects", "apps", "b")
            .is_none()
    );
    // a namespaced resource cannot be created in a namespace that does not exist
    let missing: Api<DynamicObject> = Api::namespaced_with(client, "nowhere", &ar);
    let err = api_err(
        missing
            .create(&PostParams::default(), &so("c"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.message.as_str()),
        (404, "namespaces \"nowhere\" not found")
    );
}

#[tokio::test]
async fn stale_update_conflicts_and_duplicate_create_already_exists() {
    let (_server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let v1 = cms
        .create(&PostParams::default(), &configmap("c", &[]))
        .await
        .unwrap();
    let mut v2 = v1.clone();
    v2.data = Some(BTreeMap::from([("k".to_string(), "2".to_string())]));
    cms.replace("c", &PostParams::default(), &v2).await.unwrap();

    let mut stale = v1.clone();
    stale.data = Some(BTreeMap::from([("k".to_string(), "3".to_string())]));
    let err = api_err(
        cms.replace("c", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        "Operation cannot be fulfilled on configmaps \"c\": the object has been modified; please apply your changes to the latest version and try again"
    );
    // a merge patch carrying the stale resourceVersion is a precondition too
    let err = api_err(
        cms.patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"resourceVersion": v1.resource_version()}, "data": {"k": "4"}}),
            ),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 409);

    let err = api_err(
        cms.create(&PostParams::default(), &configmap("c", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(err.message, "configmaps \"c\" already exists");

    // a JSON patch with a failing test op changes nothing
    let err = cms
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(json!([
                    {"op": "test", "path": "/data/k", "value": "nope"},
                    {"op": "replace", "path": "/data/k", "value": "5"}
                ]))
                .unwrap(),
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(api_err(err).code, 422);
    assert_eq!(cms.get("c").await.unwrap().data.unwrap()["k"], "2");
}

#[tokio::test]
async fn status_subresource_is_isolated_from_spec() {
    let (_server, client) = server().await;
    let deploys: Api<Deployment> = Api::namespaced(client, "default");
    deploys
        .create(&PostParams::default(), &deployment("web", Some(2)))
        .await
        .unwrap();

    let after_status = deploys
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"replicas": 9}, "status": {"replicas": 2, "readyReplicas": 1}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(after_status.spec.replicas, Some(2), "/status ignores spec");
    assert_eq!(
        after_status.status.as_ref().unwrap().ready_replicas,
        Some(1)
    );
    assert_eq!(
        after_status.metadata.generation,
        Some(1),
        "status changes do not bump generation"
    );

    let mut main = after_status.clone();
    main.spec.replicas = Some(3);
    main.status.as_mut().unwrap().ready_replicas = Some(7);
    let after_main = deploys
        .replace("web", &PostParams::default(), &main)
        .await
        .unwrap();
    assert_eq!(after_main.spec.replicas, Some(3));
    assert_eq!(
        after_main.status.as_ref().unwrap().ready_replicas,
        Some(1),
        "main endpoint ignores status"
    );

    let mut status_put = after_main.clone();
    status_put.status.as_mut().unwrap().ready_replicas = Some(3);
    status_put.spec.replicas = Some(100);
    let put = deploys
        .replace_status("web", &PostParams::default(), &status_put)
        .await
        .unwrap();
    assert_eq!(put.status.unwrap().ready_replicas, Some(3));
    assert_eq!(put.spec.replicas, Some(3));
    assert_eq!(
        deploys.get_status("web").await.unwrap().metadata.generation,
        Some(2)
    );
}

#[tokio::test]
async fn generation_bumps_on_spec_changes_only() {
    let (_server, client) = server().await;
    let deploys: Api<Deployment> = Api::namespaced(client, "default");
    deploys
        .create(&PostParams::default(), &deployment("web", Some(1)))
        .await
        .unwrap();
    let pp = PatchParams::default();
    let labelled = deploys
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}, "annotations": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(1));
    let spec = deploys
        .patch("web", &pp, &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx"}]}}}})))
        .await
        .unwrap();
    assert_eq!(spec.metadata.generation, Some(2));
    let containers = &spec.spec.template.spec.as_ref().unwrap().containers;
    assert_eq!(
        containers.len(),
        1,
        "strategic merge keys containers by name"
    );
    assert_eq!(containers[0].image.as_deref(), Some("nginx"));

    // a no-op write changes nothing, not even the resourceVersion
    let again = deploys
        .patch("web", &pp, &Patch::Merge(json!({"spec": {"replicas": 1}})))
        .await
        .unwrap();
    assert_eq!(again.resource_version(), spec.resource_version());
    assert_eq!(again.metadata.generation, Some(2));
}

#[tokio::test]
async fn scale_subresource_on_a_deployment() {
    let (server, client) = server().await;
    let deploys: Api<Deployment> = Api::namespaced(client, "default");
    let created = deploys
        .create(&PostParams::default(), &deployment("web", None))
        .await
        .unwrap();

    let scale = deploys.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.as_ref().unwrap().replicas, Some(1));
    assert_eq!(
        scale.status.as_ref().unwrap().selector.as_deref(),
        Some("app=web")
    );
    assert_eq!(
        scale.metadata.resource_version,
        created.metadata.resource_version
    );

    let patched = deploys
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.unwrap().replicas, Some(3));
    let parent = deploys.get("web").await.unwrap();
    assert_eq!(parent.spec.replicas, Some(3));
    assert_eq!(parent.metadata.generation, Some(2));
    assert!(rv(&parent) > rv(&created));

    // PUT honours the resourceVersion precondition
    let err = api_err(
        deploys
            .replace_scale("web", &PostParams::default(), &scale)
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 409);
    let mut fresh = deploys.get_scale("web").await.unwrap();
    fresh.spec.as_mut().unwrap().replicas = Some(5);
    let replaced = deploys
        .replace_scale("web", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_eq!(replaced.spec.unwrap().replicas, Some(5));

    let json_patched = deploys
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(
                    json!([{"op": "replace", "path": "/spec/replicas", "value": 0}]),
                )
                .unwrap(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        json_patched.spec.unwrap().replicas,
        None,
        "zero is omitted like the real Scale"
    );
    assert_eq!(deploys.get("web").await.unwrap().spec.replicas, Some(0));
    assert_eq!(server.count("patch", "deployments", Some("scale")), 2);
    assert_eq!(server.count("update", "deployments", Some("scale")), 2);

    // no scale on ConfigMaps
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    cms.create(&PostParams::default(), &configmap("c", &[]))
        .await
        .unwrap();
    assert_eq!(api_err(cms.get_scale("c").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn scale_subresource_on_a_registered_custom_resource() {
    let (server, client) = server().await;
    server.register_resource(
        ResourceDef::custom("example.com", "v1", "Widget", "widgets", true)
            .with_status()
            .with_scale(ScalePaths::standard(Some(".status.selector"))),
    );
    let ar = ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    let widgets: Api<DynamicObject> = Api::namespaced_with(client, "default", &ar);
    let w: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"replicas": 2}
    }))
    .unwrap();
    widgets.create(&PostParams::default(), &w).await.unwrap();
    widgets
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 2, "selector": "app=w"}})),
        )
        .await
        .unwrap();

    let scale: Scale = widgets.get_scale("w").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(2));
    let status = scale.status.unwrap();
    assert_eq!(
        (status.replicas, status.selector.as_deref()),
        (2, Some("app=w"))
    );

    widgets
        .patch_scale(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 6}})),
        )
        .await
        .unwrap();
    let parent = widgets.get("w").await.unwrap();
    assert_eq!(parent.data["spec"]["replicas"], json!(6));
    assert_eq!(parent.metadata.generation, Some(2));
    let mut s = widgets.get_scale("w").await.unwrap();
    s.spec.as_mut().unwrap().replicas = Some(1);
    widgets
        .replace_scale("w", &PostParams::default(), &s)
        .await
        .unwrap();
    assert_eq!(
        widgets.get("w").await.unwrap().data["spec"]["replicas"],
        json!(1)
    );
}

#[tokio::test]
async fn raw_watch_delivers_ordered_events() {
    let (_server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let start = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = cms
        .watch(&WatchParams::default().disable_bookmarks(), &start)
        .await
        .unwrap()
        .boxed();

    cms.create(&PostParams::default(), &configmap("a", &[]))
        .await
        .unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    cms.create(&PostParams::default(), &configmap("b", &[]))
        .await
        .unwrap();
    cms.delete("a", &DeleteParams::default()).await.unwrap();

    let mut seen = Vec::new();
    while seen.len() < 4 {
        let ev = tokio::time::timeout(WAIT, stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push(match ev {
            WatchEvent::Added(o) => ("ADDED", o.name_any(), rv(&o)),
            WatchEvent::Modified(o) => ("MODIFIED", o.name_any(), rv(&o)),
            WatchEvent::Deleted(o) => ("DELETED", o.name_any(), rv(&o)),
            other => panic!("unexpected {other:?}"),
        });
    }
    let kinds: Vec<_> = seen.iter().map(|(t, n, _)| (*t, n.as_str())).collect();
    assert_eq!(
        kinds,
        [
            ("ADDED", "a"),
            ("MODIFIED", "a"),
            ("ADDED", "b"),
            ("DELETED", "a")
        ]
    );
    assert!(
        seen.windows(2).all(|w| w[0].2 < w[1].2),
        "strictly increasing resourceVersions: {seen:?}"
    );
}

#[tokio::test]
async fn bookmarks_arrive_when_allowed() {
    let (server, client) = server().await;
    server.set_bookmark_interval(Duration::from_millis(50));
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cms.create(&PostParams::default(), &configmap("a", &[]))
        .await
        .unwrap();
    let head = server.resource_version().to_string();
    let mut stream = cms
        .watch(&WatchParams::default(), &head)
        .await
        .unwrap()
        .boxed();
    let ev = tokio::time::timeout(WAIT, stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match ev {
        WatchEvent::Bookmark(b) => assert_eq!(b.metadata.resource_version, head),
        other => panic!("expected a bookmark, got {other:?}"),
    }
}

#[tokio::test]
async fn compaction_expires_old_watches_and_the_watcher_relists() {
    let (server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client, "default");
    let old = cms
        .create(&PostParams::default(), &configmap("old", &[]))
        .await
        .unwrap();
    let old_rv = old.resource_version().unwrap();
    let secret: Secret = serde_json::from_value(json!({"metadata": {"name": "s"}})).unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    server.compact();

    // a raw watch from before the compaction: 200, then an ERROR event with 410 Expired
    let mut stream = cms
        .watch(&WatchParams::default(), &old_rv)
        .await
        .unwrap()
        .boxed();
    match tokio::time::timeout(WAIT, stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
    {
        WatchEvent::Error(status) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
            assert!(status.message.starts_with("too old resource version"));
        }
        other => panic!("expected 410, got {other:?}"),
    }

    // kube-runtime's watcher: its watch (running at compaction time) times out, resumes from
    // a compacted resourceVersion, gets 410, lists again, and keeps delivering changes
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let cfg = watcher::Config::default().timeout(1).disable_bookmarks();
    let task = tokio::spawn(watcher(cms.clone(), cfg).for_each(move |e| {
        let _ = tx.send(e);
        async {}
    }));
    server
        .wait_until(|v| v.count("watch", "configmaps", None) == 2, WAIT)
        .await
        .unwrap();
    let mut live = cms
        .watch(
            &WatchParams::default().disable_bookmarks(),
            &server.resource_version().to_string(),
        )
        .await
        .unwrap()
        .boxed();
    secrets
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"x": "eA=="}})),
        )
        .await
        .unwrap();
    server.compact();

    let mut errors = 0;
    let mut init_done = 0;
    loop {
        match tokio::time::timeout(WAIT, events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            Err(watcher::Error::WatchError(s)) if s.code == 410 => errors += 1,
            Ok(watcher::Event::InitDone) => {
                init_done += 1;
                if errors > 0 {
                    break;
                }
            }
            Err(e) => panic!("unexpected watcher error {e}"),
            Ok(_) => {}
        }
    }
    assert_eq!((errors, init_done), (1, 2), "one 410, then a fresh list");
    cms.create(&PostParams::default(), &configmap("new", &[]))
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(WAIT, events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            Ok(watcher::Event::Apply(o)) if o.name_any() == "new" => break,
            _ => {}
        }
    }
    task.abort();

    // a watch that was running at compaction time goes on
    match tokio::time::timeout(WAIT, live.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
    {
        WatchEvent::Added(o) => assert_eq!(o.name_any(), "new"),
        other => panic!("expected ADDED, got {other:?}"),
    }
}

#[tokio::test]
async fn reflector_store_stays_in_sync() {
    let (server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream =
        reflector(writer, watcher(cms.clone(), watcher::Config::default())).applied_objects();
    let task = tokio::spawn(stream.for_each(|_| async {}));
    reader.wait_until_ready().await.unwrap();

    for n in ["a", "b", "c"] {
        cms.create(&PostParams::default(), &configmap(n, &[]))
            .await
            .unwrap();
    }
    cms.delete("b", &DeleteParams::default()).await.unwrap();
    cms.patch(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "changed"}})),
    )
    .await
    .unwrap();

    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut names: Vec<_> = reader.state().iter().map(|o| o.name_any()).collect();
        names.sort();
        let c_changed = reader
            .state()
            .iter()
            .any(|o| o.name_any() == "c" && o.data.as_ref().is_some_and(|d| d["k"] == "changed"));
        if names == ["a", "c"] && c_changed {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "store never converged: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // the store matches the server exactly
    assert_eq!(server.list("v1", "ConfigMap", Some("default")).len(), 2);
    task.abort();
}

#[tokio::test]
async fn controller_reconciles_objects_created_after_start() {
    let (server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let calls = Arc::new(AtomicUsize::new(0));

    struct Ctx {
        client: Client,
        calls: Arc<AtomicUsize>,
    }
    async fn reconcile(
        cm: Arc<ConfigMap>,
        ctx: Arc<Ctx>,
    ) -> Result<controller::Action, kube::Error> {
        ctx.calls.fetch_add(1, Ordering::SeqCst);
        let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), "default");
        api.patch(
            &cm.name_any(),
            &PatchParams::apply("test-controller"),
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": cm.name_any(), "annotations": {"reconciled": "yes"}},
            })),
        )
        .await?;
        Ok(controller::Action::await_change())
    }
    fn error_policy(_: Arc<ConfigMap>, _: &kube::Error, _: Arc<Ctx>) -> controller::Action {
        controller::Action::requeue(Duration::from_millis(100))
    }
    let ctx = Arc::new(Ctx {
        client,
        calls: calls.clone(),
    });
    let task = tokio::spawn(
        controller::Controller::new(cms.clone(), watcher::Config::default())
            .run(reconcile, error_policy, ctx)
            .for_each(|_| async {}),
    );
    server
        .wait_until(|v| v.count("watch", "configmaps", None) > 0, WAIT)
        .await
        .unwrap();
    cms.create(&PostParams::default(), &configmap("late", &[]))
        .await
        .unwrap();
    server
        .wait_until(
            |v| {
                v.get("v1", "ConfigMap", "default", "late")
                    .is_some_and(|o| o["metadata"]["annotations"]["reconciled"] == "yes")
            },
            WAIT,
        )
        .await
        .unwrap();
    assert!(calls.load(Ordering::SeqCst) >= 1);
    task.abort();
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let (server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut cm = configmap("held", &[]);
    cm.metadata.finalizers = Some(vec!["example.com/cleanup".into()]);
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    let mut events = cms
        .watch(
            &WatchParams::default().disable_bookmarks(),
            created.resource_version().as_deref().unwrap(),
        )
        .await
        .unwrap()
        .boxed();

    let deleted = cms.delete("held", &DeleteParams::default()).await.unwrap();
    let pending = deleted
        .left()
        .expect("the object comes back while finalizers remain");
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert!(
        cms.get("held")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );

    // no new finalizers on a deleting object
    let err = api_err(
        cms.patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/cleanup", "other"]}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 422);

    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Json::<()>(
            serde_json::from_value(json!([{"op": "remove", "path": "/metadata/finalizers"}]))
                .unwrap(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(api_err(cms.get("held").await.unwrap_err()).code, 404);
    assert!(server.get("v1", "ConfigMap", "default", "held").is_none());

    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        match tokio::time::timeout(WAIT, events.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Modified(o) => {
                kinds.push(("MODIFIED", o.metadata.deletion_timestamp.is_some()))
            }
            WatchEvent::Deleted(o) => {
                kinds.push(("DELETED", o.metadata.deletion_timestamp.is_some()))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(kinds, [("MODIFIED", true), ("DELETED", true)]);
}

#[tokio::test]
async fn garbage_collection_deletes_owned_objects() {
    let (server, client) = server().await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let owner = deploys
        .create(&PostParams::default(), &deployment("owner", Some(1)))
        .await
        .unwrap();
    let other = deploys
        .create(&PostParams::default(), &deployment("other", Some(1)))
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let owner_ref = |d: &Deployment| json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": d.name_any(), "uid": d.uid().unwrap()});
    let mut owned = configmap("owned", &[]);
    owned.metadata.owner_references =
        Some(vec![serde_json::from_value(owner_ref(&owner)).unwrap()]);
    cms.create(&PostParams::default(), &owned).await.unwrap();
    let mut shared = configmap("shared", &[]);
    shared.metadata.owner_references = Some(vec![
        serde_json::from_value(owner_ref(&owner)).unwrap(),
        serde_json::from_value(owner_ref(&other)).unwrap(),
    ]);
    cms.create(&PostParams::default(), &shared).await.unwrap();

    deploys
        .delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    server
        .wait_until(
            |v| v.get("v1", "ConfigMap", "default", "owned").is_none(),
            WAIT,
        )
        .await
        .unwrap();
    let kept = cms.get("shared").await.unwrap();
    let refs = kept.metadata.owner_references.unwrap();
    assert_eq!(
        refs.len(),
        1,
        "the dangling reference goes, the live owner stays"
    );
    assert_eq!(refs[0].name, "other");
}

#[tokio::test]
async fn label_selector_watch_turns_transitions_into_added_and_deleted() {
    let (server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let head = server.resource_version().to_string();
    let mut stream = cms
        .watch(
            &WatchParams::default().labels("app=a").disable_bookmarks(),
            &head,
        )
        .await
        .unwrap()
        .boxed();
    cms.create(&PostParams::default(), &configmap("x", &[("app", "b")]))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &configmap("y", &[("app", "a")]))
        .await
        .unwrap();
    let pp = PatchParams::default();
    cms.patch(
        "x",
        &pp,
        &Patch::Merge(json!({"metadata": {"labels": {"app": "a"}}})),
    )
    .await
    .unwrap();
    cms.patch(
        "y",
        &pp,
        &Patch::Merge(json!({"metadata": {"labels": {"app": "c"}}})),
    )
    .await
    .unwrap();
    cms.patch("x", &pp, &Patch::Merge(json!({"data": {"k": "2"}})))
        .await
        .unwrap();

    let mut seen = Vec::new();
    while seen.len() < 4 {
        match tokio::time::timeout(WAIT, stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Added(o) => seen.push(("ADDED", o.name_any())),
            WatchEvent::Modified(o) => seen.push(("MODIFIED", o.name_any())),
            WatchEvent::Deleted(o) => {
                assert_eq!(
                    o.labels()["app"],
                    "a",
                    "the DELETED carries the last matching state"
                );
                seen.push(("DELETED", o.name_any()));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let expected: Vec<(&str, String)> = vec![
        ("ADDED", "y".into()),
        ("ADDED", "x".into()),
        ("DELETED", "y".into()),
        ("MODIFIED", "x".into()),
    ];
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn discovery_finds_groups_kinds_and_subresources() {
    let (server, client) = server().await;
    let discovery = kube::discovery::Discovery::new(client.clone())
        .run()
        .await
        .unwrap();
    for g in [
        "",
        "apps",
        "keda.sh",
        "coordination.k8s.io",
        "events.k8s.io",
        "autoscaling",
    ] {
        assert!(discovery.has_group(g), "group {g:?}");
    }
    let gvk = kube::api::GroupVersionKind::gvk("apps", "v1", "Deployment");
    let (ar, caps) = discovery.resolve_gvk(&gvk).unwrap();
    assert_eq!(ar.plural, "deployments");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    let subs: Vec<_> = caps
        .subresources
        .iter()
        .map(|(a, _)| a.plural.as_str())
        .collect();
    assert!(
        subs.contains(&"status") && subs.contains(&"scale"),
        "{subs:?}"
    );

    let cta =
        kube::api::GroupVersionKind::gvk("keda.sh", "v1alpha1", "ClusterTriggerAuthentication");
    let (_, caps) = kube::discovery::pinned_kind(&client, &cta).await.unwrap();
    assert_eq!(caps.scope, kube::discovery::Scope::Cluster);
    let (ns_ar, _) = kube::discovery::pinned_kind(
        &client,
        &kube::api::GroupVersionKind::gvk("", "v1", "Namespace"),
    )
    .await
    .unwrap();
    assert_eq!(ns_ar.plural, "namespaces");

    let aggregated = kube::discovery::Discovery::new(client.clone())
        .run_aggregated()
        .await
        .unwrap();
    let (ar, caps) = aggregated
        .resolve_gvk(&kube::api::GroupVersionKind::gvk(
            "keda.sh",
            "v1alpha1",
            "ScaledObject",
        ))
        .unwrap();
    assert_eq!(ar.plural, "scaledobjects");
    assert!(caps.subresources.iter().any(|(a, _)| a.plural == "status"));
    assert!(aggregated.has_group(""));

    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");

    // unknown resources and subresources are 404
    let bogus = ApiResource {
        group: "keda.sh".into(),
        version: "v1alpha1".into(),
        api_version: "keda.sh/v1alpha1".into(),
        kind: "Nope".into(),
        plural: "nopes".into(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &bogus);
    assert_eq!(
        api_err(api.list(&ListParams::default()).await.unwrap_err()).code,
        404
    );
    let so: Api<DynamicObject> = Api::namespaced_with(client, "default", &scaled_object_resource());
    assert_eq!(api_err(so.get_scale("x").await.unwrap_err()).code, 404);
    assert!(server.count("discovery", "", None) > 0);
}

#[tokio::test]
async fn workload_simulator_keeps_pods_and_status() {
    let (server, client) = server().await;
    server.simulate_workloads(true);
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deploys
        .create(&PostParams::default(), &deployment("web", Some(2)))
        .await
        .unwrap();
    let pods = server.list("v1", "Pod", Some("default"));
    assert_eq!(pods.len(), 2);
    for p in &pods {
        assert_eq!(p["metadata"]["labels"]["app"], "web");
        assert_eq!(p["status"]["phase"], "Running");
        assert_eq!(
            p["status"]["conditions"][0],
            json!({"type": "Ready", "status": "True", "lastTransitionTime": p["status"]["conditions"][0]["lastTransitionTime"]})
        );
    }
    let d = deploys.get("web").await.unwrap();
    let st = d.status.unwrap();
    assert_eq!(
        (st.replicas, st.ready_replicas, st.available_replicas),
        (Some(2), Some(2), Some(2))
    );
    assert_eq!(st.observed_generation, Some(1));

    deploys
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    assert!(server.list("v1", "Pod", Some("default")).is_empty());
    let st = deploys.get("web").await.unwrap().status.unwrap();
    assert_eq!(st.replicas, None);
    assert_eq!(st.observed_generation, Some(2));

    let sts: Value = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "default"},
        "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": []}}},
    });
    server.put_object(sts).unwrap();
    let mut names: Vec<String> = server
        .list("v1", "Pod", Some("default"))
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["db-0", "db-1", "db-2"]);
    deploys
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    server
        .delete_object("apps/v1", "StatefulSet", "default", "db")
        .unwrap();
    assert!(
        server.list("v1", "Pod", None).is_empty(),
        "pods are garbage collected"
    );
}

#[tokio::test]
async fn kubeconfig_file_loads_into_a_working_client() {
    let (server, _client) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = server.write_kubeconfig(dir.path()).unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(config.default_namespace, "default");
    let client = Client::try_from(config).unwrap();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    let names: Vec<_> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    assert!(names.contains(&"default".to_string()) && names.contains(&"kube-system".to_string()));
}

#[tokio::test]
async fn custom_resource_definitions_register_resources() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let (server, client) = server().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let widget_crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"kind": "Gadget", "plural": "gadgets", "singular": "gadget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "subresources": {"status": {}, "scale": {
                    "specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size", "labelSelectorPath": ".status.selector"
                }},
            }],
        },
    }))
    .unwrap();
    let created = crds
        .create(&PostParams::default(), &widget_crd)
        .await
        .unwrap();
    let conditions = created.status.unwrap().conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );

    let gvk = kube::api::GroupVersionKind::gvk("example.com", "v1", "Gadget");
    let (ar, caps) = kube::discovery::pinned_kind(&client, &gvk).await.unwrap();
    assert!(caps.subresources.iter().any(|(a, _)| a.plural == "scale"));
    let gadgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let g: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"size": 1}
    }))
    .unwrap();
    gadgets.create(&PostParams::default(), &g).await.unwrap();
    gadgets
        .patch_scale(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(
        gadgets.get("g").await.unwrap().data["spec"]["size"],
        json!(4)
    );

    crds.delete("gadgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(
        api_err(gadgets.list(&ListParams::default()).await.unwrap_err()).code,
        404
    );
    assert!(server.list("example.com/v1", "Gadget", None).is_empty());

    // the repository's generated CRDs install and serve their kinds
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crds");
    let mut installed = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let crd: CustomResourceDefinition = serde_yaml_ng::from_str(&text).unwrap();
        crds.create(&PostParams::default(), &crd).await.unwrap();
        installed += 1;
    }
    assert!(installed >= 3);
    let discovery = kube::discovery::Discovery::new(client)
        .filter(&["keda.sh"])
        .run()
        .await
        .unwrap();
    let (_, caps) = discovery
        .resolve_gvk(&kube::api::GroupVersionKind::gvk(
            "keda.sh",
            "v1alpha1",
            "ScaledObject",
        ))
        .unwrap();
    assert!(caps.subresources.iter().any(|(a, _)| a.plural == "status"));
}

#[tokio::test]
async fn metadata_only_requests_get_partial_object_metadata() {
    let (_server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cms.create(&PostParams::default(), &configmap("m", &[("app", "m")]))
        .await
        .unwrap();
    let meta = cms.get_metadata("m").await.unwrap();
    assert_eq!(meta.metadata.labels.unwrap()["app"], "m");
    let list = cms.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);

    let metas: Api<kube::core::PartialObjectMeta<ConfigMap>> =
        Api::namespaced(cms.clone().into_client(), "default");
    let mut w = watcher(metas, watcher::Config::default()).boxed();
    loop {
        if let watcher::Event::InitDone = tokio::time::timeout(WAIT, w.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            break;
        }
    }
    cms.create(&PostParams::default(), &configmap("n", &[]))
        .await
        .unwrap();
    loop {
        if let watcher::Event::Apply(o) = tokio::time::timeout(WAIT, w.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            assert_eq!(o.name_any(), "n");
            assert_eq!(o.types.as_ref().unwrap().kind, "PartialObjectMetadata");
            break;
        }
    }
}

#[tokio::test]
async fn serves_while_the_test_thread_blocks_and_stops_on_shutdown() {
    use std::io::{Read, Write};
    let server = FakeApiServer::start().await.unwrap();
    let addr = server.addr();
    // another OS thread plays the separate process; this runtime's only thread blocks on join
    let fetch = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(
            b"GET /api/v1/namespaces/default HTTP/1.1\r\nHost: fake\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    });
    let response = fetch.join().unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"kind\":\"Namespace\""));
    server.shutdown().await;
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the listener is closed"
    );
}
