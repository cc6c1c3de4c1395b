//! The real controller (kube-runtime, reconcile, scale loops) against the in-memory Kubernetes
//! API, with a backend the test turns: KEDA's scenarios end to end — the HPA and status on
//! create, activation from zero, cooldown back to zero, idle replicas, pause and unpause,
//! fallback and recovery, a backend that goes down, deletion with and without restore, a
//! steady state without status writes, and a leader change without double scaling.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use fake_apiserver::{FakeApiServer, View};
use kube::runtime::reflector::ObjectRef;
use serde_json::{Value, json};
use windlass::crd::ScaledObject;
use windlass_tests::operator::{
    KnobServer, Objects, Operator, condition, deployment, replicas, scaled_object,
};
use windlass_tests::servers::wait_for;

const NS: &str = "default";
const WAIT: Duration = Duration::from_secs(20);
const SO: &str = "keda.sh/v1alpha1";

async fn api() -> FakeApiServer {
    scalers::context::install_crypto_provider();
    let api = FakeApiServer::start()
        .await
        .expect("fake API server starts");
    api.simulate_workloads(true);
    api
}

fn so_of(api: &impl Objects, name: &str) -> Option<Value> {
    api.object(SO, "scaledobjects", NS, name)
}

/// Waits until `check` holds on the API's objects, re-checked on every change.
async fn until(api: &FakeApiServer, what: &str, check: impl Fn(&View<'_>) -> bool) {
    if let Err(error) = api.wait_until(|view| check(view), WAIT).await {
        let objects = api.list(SO, "scaledobjects", Some(NS));
        panic!(
            "timed out waiting for: {what} ({error}); ScaledObjects now:\n{}",
            serde_json::to_string_pretty(&objects).unwrap_or_default()
        );
    }
}

/// Waits until the backend has been sampled `count` more times.
async fn polls(knob: &KnobServer, count: usize) {
    let seen = knob.knob.samples();
    wait_for("backend samples", WAIT, || async {
        (knob.knob.samples() >= seen + count).then_some(())
    })
    .await;
}

fn condition_is(api: &impl Objects, name: &str, type_: &str, status: &str, reason: &str) -> bool {
    condition(api, NS, name, type_).is_some_and(|(s, r)| s == status && r == reason)
}

/// Edits ScaledObject `name`'s annotations as `kubectl annotate` would.
fn annotate(api: &FakeApiServer, name: &str, key: &str, value: Option<&str>) {
    let mut so = so_of(api, name).expect("the ScaledObject exists");
    let annotations = so["metadata"]
        .as_object_mut()
        .unwrap()
        .entry("annotations")
        .or_insert(json!({}));
    match value {
        Some(value) => annotations[key] = json!(value),
        None => {
            annotations.as_object_mut().unwrap().remove(key);
        }
    }
    api.put_object(so).expect("annotating the ScaledObject");
}

#[tokio::test]
async fn a_new_scaled_object_gets_keda_s_hpa_status_label_and_finalizer() {
    let api = api().await;
    let knob = KnobServer::start(3.0).await;
    api.put_object(deployment(NS, "worker", 2)).unwrap();
    let operator = Operator::start(&api, true).await;
    api.put_object(scaled_object(
        NS,
        "worker",
        &knob.address,
        json!({"minReplicaCount": 1, "maxReplicaCount": 7}),
    ))
    .unwrap();

    until(&api, "the HPA exists", |api| {
        api.object(
            "autoscaling/v2",
            "horizontalpodautoscalers",
            NS,
            "keda-hpa-worker",
        )
        .is_some()
    })
    .await;
    until(&api, "Ready=True", |api| {
        condition_is(api, "worker", "Ready", "True", "ScaledObjectReady")
    })
    .await;

    let hpa = api
        .get(
            "autoscaling/v2",
            "horizontalpodautoscalers",
            NS,
            "keda-hpa-worker",
        )
        .unwrap();
    assert_eq!(hpa["spec"]["minReplicas"], 1);
    assert_eq!(hpa["spec"]["maxReplicas"], 7);
    assert_eq!(
        hpa["spec"]["scaleTargetRef"],
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "worker"})
    );
    let metric = &hpa["spec"]["metrics"][0];
    assert_eq!(metric["type"], "External");
    assert_eq!(metric["external"]["metric"]["name"], "s0-queue");
    assert_eq!(
        metric["external"]["metric"]["selector"],
        json!({"matchLabels": {"scaledobject.keda.sh/name": "worker"}})
    );
    assert_eq!(
        metric["external"]["target"],
        json!({"type": "AverageValue", "averageValue": "5"})
    );
    let owner = &hpa["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "ScaledObject");
    assert_eq!(owner["name"], "worker");
    assert_eq!(owner["controller"], true);
    assert_eq!(
        hpa["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "keda-operator"
    );
    assert_eq!(
        hpa["metadata"]["labels"]["app.kubernetes.io/part-of"],
        "worker"
    );

    let so = so_of(&api, "worker").unwrap();
    assert_eq!(
        so["metadata"]["labels"]["scaledobject.keda.sh/name"],
        "worker"
    );
    assert_eq!(so["metadata"]["finalizers"], json!(["finalizer.keda.sh"]));
    let status = &so["status"];
    assert_eq!(status["hpaName"], "keda-hpa-worker");
    assert_eq!(status["externalMetricNames"], json!(["s0-queue"]));
    assert_eq!(status["scaleTargetKind"], "apps/v1.Deployment");
    assert_eq!(
        status["scaleTargetGVKR"],
        json!({"group": "apps", "version": "v1", "kind": "Deployment", "resource": "deployments"})
    );
    assert_eq!(status["originalReplicaCount"], 2);
    assert_eq!(status["triggersTypes"], "external");
    until(&api, "Active=True", |api| {
        condition_is(api, "worker", "Active", "True", "ScalerActive")
    })
    .await;
    assert_eq!(
        api.count("update", "horizontalpodautoscalers", None),
        0,
        "an HPA just created is not rewritten"
    );
    operator.stop().await;
}

#[tokio::test]
async fn activation_from_zero_and_cooldown_back_to_zero() {
    let api = api().await;
    let knob = KnobServer::start(0.0).await;
    api.put_object(deployment(NS, "worker", 0)).unwrap();
    let operator = Operator::start(&api, true).await;
    api.put_object(scaled_object(NS, "worker", &knob.address, json!({})))
        .unwrap();
    until(&api, "Active=False while the queue is empty", |api| {
        condition_is(api, "worker", "Active", "False", "ScalerNotActive")
    })
    .await;
    assert_eq!(replicas(&api, NS, "worker"), Some(0));

    knob.knob.set(12.0);
    until(&api, "activated to 1 replica", |api| {
        replicas(api, NS, "worker") == Some(1)
    })
    .await;
    until(&api, "Active=True", |api| {
        condition_is(api, "worker", "Active", "True", "ScalerActive")
    })
    .await;
    assert!(
        so_of(&api, "worker").unwrap()["status"]["lastActiveTime"].is_string(),
        "lastActiveTime is written on activation"
    );

    knob.knob.set(0.0);
    until(&api, "scaled back to zero after the 1 s cooldown", |api| {
        replicas(api, NS, "worker") == Some(0)
    })
    .await;
    until(&api, "Active=False", |api| {
        condition(api, NS, "worker", "Active").is_some_and(|(s, _)| s == "False")
    })
    .await;
    operator.stop().await;
}

#[tokio::test]
async fn idle_replicas_jump_between_idle_and_min() {
    let api = api().await;
    let knob = KnobServer::start(0.0).await;
    api.put_object(deployment(NS, "worker", 0)).unwrap();
    let operator = Operator::start(&api, true).await;
    api.put_object(scaled_object(
        NS,
        "worker",
        &knob.address,
        json!({"minReplicaCount": 3, "idleReplicaCount": 0}),
    ))
    .unwrap();
    until(&api, "inactive at idle", |api| {
        condition_is(api, "worker", "Active", "False", "ScalerNotActive")
    })
    .await;
    assert_eq!(replicas(&api, NS, "worker"), Some(0));
    knob.knob.set(1.0);
    until(&api, "active at min", |api| {
        replicas(api, NS, "worker") == Some(3)
    })
    .await;
    knob.knob.set(0.0);
    until(&api, "back to idle", |api| {
        replicas(api, NS, "worker") == Some(0)
    })
    .await;
    operator.stop().await;
}

#[tokio::test]
async fn paused_replicas_pin_the_target_and_unpausing_restores_the_hpa() {
    let api = api().await;
    let knob = KnobServer::start(10.0).await;
    api.put_object(deployment(NS, "worker", 1)).unwrap();
    let operator = Operator::start(&api, true).await;
    api.put_object(scaled_object(NS, "worker", &knob.address, json!({})))
        .unwrap();
    until(&api, "the HPA exists", |api| {
        api.object(
            "autoscaling/v2",
            "horizontalpodautoscalers",
            NS,
            "keda-hpa-worker",
        )
        .is_some()
    })
    .await;

    annotate(
        &api,
        "worker",
        "autoscaling.keda.sh/paused-replicas",
        Some("4"),
    );
    until(&api, "paused at 4 with the HPA deleted", |api| {
        replicas(api, NS, "worker") == Some(4)
            && api
                .get(
                    "autoscaling/v2",
                    "horizontalpodautoscalers",
                    NS,
                    "keda-hpa-worker",
                )
                .is_none()
            && condition_is(api, "worker", "Paused", "True", "ScaledObjectPaused")
            && so_of(api, "worker").is_some_and(|so| so["status"]["pausedReplicaCount"] == 4)
    })
    .await;
    // While paused the loop is stopped: nothing polls, nothing scales.
    let key = ObjectRef::<ScaledObject>::new("worker").within(NS);
    assert!(
        operator.handles.runtimes.get(&key).is_none(),
        "a paused object has no scale loop"
    );
    knob.knob.set(0.0);

    annotate(&api, "worker", "autoscaling.keda.sh/paused-replicas", None);
    until(&api, "unpaused with the HPA back", |api| {
        condition_is(api, "worker", "Paused", "False", "ScaledObjectUnpaused")
            && api
                .get(
                    "autoscaling/v2",
                    "horizontalpodautoscalers",
                    NS,
                    "keda-hpa-worker",
                )
                .is_some()
    })
    .await;
    assert!(
        so_of(&api, "worker").unwrap()["status"]
            .get("pausedReplicaCount")
            .is_none()
    );
    operator.stop().await;
}

#[tokio::test]
async fn fallback_after_failure_threshold_and_recovery() {
    let api = api().await;
    let knob = KnobServer::start(10.0).await;
    api.put_object(deployment(NS, "worker", 2)).unwrap();
    let operator = Operator::start(&api, true).await;
    api.put_object(scaled_object(
        NS,
        "worker",
        &knob.address,
        json!({"fallback": {"failureThreshold": 2, "replicas": 6}}),
    ))
    .unwrap();
    until(&api, "Ready", |api| {
        condition_is(api, "worker", "Ready", "True", "ScaledObjectReady")
    })
    .await;

    knob.knob.fail();
    until(&api, "Fallback=True after more than 2 failures", |api| {
        condition_is(api, "worker", "Fallback", "True", "FallbackExists")
    })
    .await;
    let so = so_of(&api, "worker").unwrap();
    let health = &so["status"]["health"]["s0-queue"];
    assert_eq!(health["status"], "Failing");
    assert!(health["numberOfFailures"].as_i64().unwrap() > 2);
    // The HPA reads target × fallback replicas: 5 × 6.
    let key = ObjectRef::<ScaledObject>::new("worker").within(NS);
    let evaluation = operator
        .handles
        .runtimes
        .get(&key)
        .and_then(|r| r.latest())
        .unwrap();
    assert_eq!(evaluation.values_for("s0-queue").unwrap()[0].value, 30.0);
    assert_eq!(
        replicas(&api, NS, "worker"),
        Some(2),
        "the HPA scales, not Windlass"
    );

    knob.knob.set(1.0);
    until(&api, "Fallback=False after recovery", |api| {
        condition_is(api, "worker", "Fallback", "False", "NoFallbackFound")
    })
    .await;
    let so = so_of(&api, "worker").unwrap();
    assert_eq!(so["status"]["health"]["s0-queue"]["status"], "Happy");
    operator.stop().await;
}

#[tokio::test]
async fn a_backend_that_goes_down_never_drives_the_target_to_zero() {
    let api = api().await;
    let knob = KnobServer::start(10.0).await;
    api.put_object(deployment(NS, "worker", 3)).unwrap();
    let operator = Operator::start(&api, true).await;
    api.put_object(scaled_object(NS, "worker", &knob.address, json!({})))
        .unwrap();
    until(&api, "Active", |api| {
        condition_is(api, "worker", "Active", "True", "ScalerActive")
    })
    .await;
    knob.knob.fail();
    until(&api, "Ready=False TriggerError", |api| {
        condition_is(api, "worker", "Ready", "False", "TriggerError")
    })
    .await;
    // Several polls past the 1 s cooldown: the target holds.
    polls(&knob, 3).await;
    assert_eq!(replicas(&api, NS, "worker"), Some(3));
    operator.stop().await;
}

async fn delete_and_wait(api: &FakeApiServer, name: &str) {
    api.delete_object(SO, "scaledobjects", NS, name)
        .expect("deleting the ScaledObject");
    until(api, "the ScaledObject is gone", |api| {
        so_of(api, name).is_none()
    })
    .await;
    until(api, "its HPA is garbage-collected", |api| {
        api.object(
            "autoscaling/v2",
            "horizontalpodautoscalers",
            NS,
            &format!("keda-hpa-{name}"),
        )
        .is_none()
    })
    .await;
}

#[tokio::test]
async fn deletion_restores_the_original_replica_count_only_when_asked() {
    let api = api().await;
    let knob = KnobServer::start(0.0).await;
    api.put_object(deployment(NS, "restored", 2)).unwrap();
    api.put_object(deployment(NS, "kept", 2)).unwrap();
    let operator = Operator::start(&api, true).await;
    api.put_object(scaled_object(
        NS,
        "restored",
        &knob.address,
        json!({"advanced": {"restoreToOriginalReplicaCount": true}}),
    ))
    .unwrap();
    api.put_object(scaled_object(NS, "kept", &knob.address, json!({})))
        .unwrap();
    until(&api, "both scaled to zero after cooldown", |api| {
        replicas(api, NS, "restored") == Some(0) && replicas(api, NS, "kept") == Some(0)
    })
    .await;
    assert_eq!(
        so_of(&api, "restored").unwrap()["status"]["originalReplicaCount"],
        2
    );

    delete_and_wait(&api, "restored").await;
    assert_eq!(replicas(&api, NS, "restored"), Some(2));
    delete_and_wait(&api, "kept").await;
    assert_eq!(replicas(&api, NS, "kept"), Some(0));
    operator.stop().await;
}

#[tokio::test]
async fn a_steady_state_makes_no_status_writes() {
    let api = api().await;
    let knob = KnobServer::start(8.0).await;
    api.put_object(deployment(NS, "worker", 1)).unwrap();
    let operator = Operator::start(&api, true).await;
    api.put_object(scaled_object(NS, "worker", &knob.address, json!({})))
        .unwrap();
    until(&api, "Active and Ready", |api| {
        condition_is(api, "worker", "Active", "True", "ScalerActive")
            && condition_is(api, "worker", "Ready", "True", "ScaledObjectReady")
    })
    .await;
    // Let the first polls settle, then watch five more.
    polls(&knob, 2).await;
    let writes = operator.status_writes();
    let api_writes = api.count("patch", "scaledobjects", Some("status"))
        + api.count("update", "scaledobjects", Some("status"));
    polls(&knob, 5).await;
    assert_eq!(operator.status_writes(), writes, "no status write per poll");
    assert_eq!(
        api.count("patch", "scaledobjects", Some("status"))
            + api.count("update", "scaledobjects", Some("status")),
        api_writes
    );
    operator.stop().await;
}

#[tokio::test]
async fn a_leader_change_scales_once() {
    let api = api().await;
    let knob = KnobServer::start(0.0).await;
    api.put_object(deployment(NS, "worker", 0)).unwrap();
    let first = Operator::start(&api, true).await;
    let second = Operator::start(&api, false).await;
    api.put_object(scaled_object(NS, "worker", &knob.address, json!({})))
        .unwrap();
    until(&api, "reconciled by the leader", |api| {
        condition_is(api, "worker", "Active", "False", "ScalerNotActive")
    })
    .await;
    assert_eq!(second.status_writes(), 0, "a standby writes nothing");

    first.set_leader(false);
    second.set_leader(true);
    knob.knob.set(9.0);
    until(&api, "activated by the new leader", |api| {
        replicas(api, NS, "worker") == Some(1)
    })
    .await;
    // Let both run a few more polls: no second scale write.
    polls(&knob, 4).await;
    assert_eq!(api.count("patch", "deployments", Some("scale")), 1);
    assert_eq!(replicas(&api, NS, "worker"), Some(1));
    first.stop().await;
    second.stop().await;
}

#[tokio::test]
async fn a_pushed_activation_scales_from_zero_without_waiting_for_the_poll() {
    let api = api().await;
    let knob = KnobServer::start(0.0).await;
    api.put_object(deployment(NS, "worker", 0)).unwrap();
    let operator = Operator::start(&api, true).await;
    let mut so = scaled_object(
        NS,
        "worker",
        &knob.address,
        json!({"pollingInterval": 3600}),
    );
    so["spec"]["triggers"][0]["type"] = json!("external-push");
    api.put_object(so).unwrap();
    until(&api, "reconciled", |api| {
        condition_is(api, "worker", "Active", "False", "ScalerNotActive")
    })
    .await;
    wait_for(
        "the operator subscribes to StreamIsActive",
        WAIT,
        || async { (knob.knob.subscribers() > 0).then_some(()) },
    )
    .await;
    let started = tokio::time::Instant::now();
    knob.knob.set(4.0);
    knob.knob.push(true);
    until(&api, "activated by the push", |api| {
        replicas(api, NS, "worker") == Some(1)
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the hour-long poll was not waited for"
    );
    operator.stop().await;
}

#[tokio::test]
async fn any_kind_with_a_scale_subresource_is_scaled_through_it() {
    use fake_apiserver::{ResourceDef, ScalePaths};
    let api = api().await;
    api.register_resource(
        ResourceDef::custom("argoproj.io", "v1alpha1", "Rollout", "rollouts", true)
            .with_status()
            .with_scale(ScalePaths::standard(Some(".status.selector"))),
    );
    api.put_object(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "canary", "namespace": NS},
        "spec": {"replicas": 0, "template": {"spec": {"containers": [{"name": "app", "image": "app:1"}]}}}
    }))
    .unwrap();
    let knob = KnobServer::start(0.0).await;
    let operator = Operator::start(&api, true).await;
    api.put_object(scaled_object(
        NS,
        "canary",
        &knob.address,
        json!({"scaleTargetRef": {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "canary"}}),
    ))
    .unwrap();
    until(&api, "reconciled against the Rollout", |api| {
        so_of(api, "canary").is_some_and(|so| {
            so["status"]["scaleTargetKind"] == "argoproj.io/v1alpha1.Rollout"
                && so["status"]["scaleTargetGVKR"]["resource"] == "rollouts"
        })
    })
    .await;
    knob.knob.set(3.0);
    until(&api, "the Rollout activated through /scale", |api| {
        api.object("argoproj.io/v1alpha1", "rollouts", NS, "canary")
            .is_some_and(|r| r["spec"]["replicas"] == 1)
    })
    .await;
    let hpa = api
        .object(
            "autoscaling/v2",
            "horizontalpodautoscalers",
            NS,
            "keda-hpa-canary",
        )
        .unwrap();
    assert_eq!(
        hpa["spec"]["scaleTargetRef"],
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "canary"})
    );
    operator.stop().await;
}
