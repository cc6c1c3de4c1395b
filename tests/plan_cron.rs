//! `windlass plan` end to end with cron triggers: KEDA's window rule in IANA time zones, the
//! 0 ↔ min decision (activation, cooldown, deactivation, idle replicas) and what the HPA sets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::Value;
use windlass_tests::{Manifests, Running, object};

/// A ScaledObject `name` in `default` scaling Deployment `name` with one cron trigger, and
/// extra `spec` lines (each indented two spaces, ending in a newline).
fn cron_object(
    name: &str,
    timezone: &str,
    start: &str,
    end: &str,
    replicas: u32,
    spec: &str,
) -> String {
    format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: {name}}}\nspec:\n  scaleTargetRef: {{name: {name}}}\n{spec}  triggers:\n    - type: cron\n      metadata:\n        timezone: {timezone}\n        start: {start}\n        end: {end}\n        desiredReplicas: \"{replicas}\"\n"
    )
}

/// Berlin business hours on weekdays, 4 replicas, minReplicaCount 0, cooldown 300 s: the
/// repository's example.
fn berlin(spec: &str) -> String {
    cron_object(
        "berlin",
        "Europe/Berlin",
        "0 8 * * 1-5",
        "0 18 * * 1-5",
        4,
        spec,
    )
}

const MIN_0: &str = "  minReplicaCount: 0\n  maxReplicaCount: 10\n  cooldownPeriod: 300\n";

/// Monday 2026-11-23 (CET, UTC+1).
const INSIDE: &str = "2026-11-23T10:00:00+01:00";
const OUTSIDE: &str = "2026-11-23T20:00:00+01:00";

fn plan(manifests: &Manifests, args: &[&str]) -> Value {
    let run = manifests.plan_json(args);
    run.assert_code(0);
    run.json()
}

#[test]
fn inside_the_window_the_trigger_is_active_with_desired_replicas() {
    struct Case {
        what: &'static str,
        spec: &'static str,
        current: &'static str,
        action: &'static str,
        scale_to: Value,
        /// What the HPA sets: desiredReplicas clamped to [max(min,1), max].
        desired: i64,
    }
    let cases = [
        Case {
            what: "from zero: Windlass activates to 1, the HPA takes it to 4",
            spec: MIN_0,
            current: "0",
            action: "Activate",
            scale_to: Value::from(1),
            desired: 4,
        },
        Case {
            what: "already running: the HPA keeps it at 4",
            spec: MIN_0,
            current: "2",
            action: "KeepActive",
            scale_to: Value::Null,
            desired: 4,
        },
        Case {
            what: "from zero with minReplicaCount 2: activates to the minimum",
            spec: "  minReplicaCount: 2\n  maxReplicaCount: 10\n",
            current: "0",
            action: "Activate",
            scale_to: Value::from(2),
            desired: 4,
        },
        Case {
            what: "maxReplicaCount 3 caps the cron's 4",
            spec: "  minReplicaCount: 0\n  maxReplicaCount: 3\n",
            current: "1",
            action: "KeepActive",
            scale_to: Value::Null,
            desired: 3,
        },
        Case {
            what: "minReplicaCount 6 lifts the cron's 4",
            spec: "  minReplicaCount: 6\n  maxReplicaCount: 10\n",
            current: "6",
            action: "KeepActive",
            scale_to: Value::Null,
            desired: 6,
        },
    ];
    for case in cases {
        let manifests = Manifests::with(&berlin(case.spec));
        let plans = plan(
            &manifests,
            &["--at", INSIDE, "--current-replicas", case.current],
        );
        let so = object(&plans, "berlin");
        let trigger = &so["triggers"][0];
        assert_eq!(trigger["type"], "cron", "{}", case.what);
        assert_eq!(trigger["active"], true, "{}: {so:#}", case.what);
        assert_eq!(
            trigger["value"].as_f64(),
            Some(4.0),
            "{}: {so:#}",
            case.what
        );
        assert_eq!(
            trigger["target"].as_f64(),
            Some(1.0),
            "{}: {so:#}",
            case.what
        );
        assert_eq!(trigger["error"], Value::Null, "{}: {so:#}", case.what);
        assert_eq!(trigger["proposedReplicas"], 4, "{}: {so:#}", case.what);
        assert_eq!(so["active"], true, "{}: {so:#}", case.what);
        assert_eq!(
            so["decision"]["action"], case.action,
            "{}: {so:#}",
            case.what
        );
        assert_eq!(
            so["decision"]["scaleTo"], case.scale_to,
            "{}: {so:#}",
            case.what
        );
        assert_eq!(
            so["decision"]["reason"], "ScalerActive",
            "{}: {so:#}",
            case.what
        );
        assert_eq!(so["hpaReplicas"], case.desired, "{}: {so:#}", case.what);
        assert_eq!(so["desiredReplicas"], case.desired, "{}: {so:#}", case.what);
        assert_eq!(so["errors"], Value::Array(vec![]), "{}: {so:#}", case.what);
    }
}

#[test]
fn outside_the_window_cooldown_then_deactivation() {
    struct Case {
        what: &'static str,
        spec: &'static str,
        args: &'static [&'static str],
        action: &'static str,
        scale_to: Value,
        cooldown_remaining: Value,
        hpa: Value,
        desired: i64,
    }
    let cases = [
        Case {
            what: "active 2 minutes ago, cooldown 300 s: 180 s left, the HPA at its minimum",
            spec: MIN_0,
            args: &["--current-replicas", "4", "--last-active", "2m"],
            action: "CoolingDown",
            scale_to: Value::Null,
            cooldown_remaining: Value::from(180),
            hpa: Value::from(1),
            desired: 1,
        },
        Case {
            what: "active 10 minutes ago: the cooldown is over, scale to zero",
            spec: MIN_0,
            args: &["--current-replicas", "4", "--last-active", "10m"],
            action: "Deactivate",
            scale_to: Value::from(0),
            cooldown_remaining: Value::Null,
            hpa: Value::Null,
            desired: 0,
        },
        Case {
            what: "already at zero: nothing to do",
            spec: MIN_0,
            args: &["--current-replicas", "0", "--last-active", "10m"],
            action: "NoChange",
            scale_to: Value::Null,
            cooldown_remaining: Value::Null,
            hpa: Value::Null,
            desired: 0,
        },
        Case {
            what: "idle replicas, within the cooldown: stays at the minimum",
            spec: "  minReplicaCount: 2\n  idleReplicaCount: 0\n  maxReplicaCount: 10\n  cooldownPeriod: 60\n",
            args: &["--current-replicas", "2", "--last-active", "30s"],
            action: "CoolingDown",
            scale_to: Value::Null,
            cooldown_remaining: Value::from(30),
            hpa: Value::from(2),
            desired: 2,
        },
        Case {
            what: "idle replicas, cooldown over: down to idleReplicaCount",
            spec: "  minReplicaCount: 2\n  idleReplicaCount: 0\n  maxReplicaCount: 10\n  cooldownPeriod: 60\n",
            args: &["--current-replicas", "2", "--last-active", "2m"],
            action: "Deactivate",
            scale_to: Value::from(0),
            cooldown_remaining: Value::Null,
            hpa: Value::Null,
            desired: 0,
        },
        Case {
            what: "minReplicaCount 3 without idle: stays at 3",
            spec: "  minReplicaCount: 3\n  maxReplicaCount: 10\n",
            args: &["--current-replicas", "3", "--last-active", "10m"],
            action: "NoChange",
            scale_to: Value::Null,
            cooldown_remaining: Value::Null,
            hpa: Value::from(3),
            desired: 3,
        },
        Case {
            what: "minReplicaCount 3 without idle, below the minimum: straight to 3",
            spec: "  minReplicaCount: 3\n  maxReplicaCount: 10\n",
            args: &["--current-replicas", "1"],
            action: "ScaleToMin",
            scale_to: Value::from(3),
            cooldown_remaining: Value::Null,
            hpa: Value::from(3),
            desired: 3,
        },
    ];
    for case in cases {
        let manifests = Manifests::with(&berlin(case.spec));
        let mut args = vec!["--at", OUTSIDE];
        args.extend_from_slice(case.args);
        let plans = plan(&manifests, &args);
        let so = object(&plans, "berlin");
        let trigger = &so["triggers"][0];
        assert_eq!(trigger["active"], false, "{}: {so:#}", case.what);
        assert_eq!(
            trigger["value"].as_f64(),
            Some(0.0),
            "{}: {so:#}",
            case.what
        );
        assert_eq!(so["active"], false, "{}: {so:#}", case.what);
        assert_eq!(
            so["decision"]["action"], case.action,
            "{}: {so:#}",
            case.what
        );
        assert_eq!(
            so["decision"]["scaleTo"], case.scale_to,
            "{}: {so:#}",
            case.what
        );
        assert_eq!(
            so["decision"]["cooldownRemainingSeconds"], case.cooldown_remaining,
            "{}: {so:#}",
            case.what
        );
        assert_eq!(so["hpaReplicas"], case.hpa, "{}: {so:#}", case.what);
        assert_eq!(so["desiredReplicas"], case.desired, "{}: {so:#}", case.what);
    }
}

#[test]
fn the_same_instant_in_any_offset_gives_the_same_plan() {
    let manifests = Manifests::with(&berlin(MIN_0));
    for instants in [
        [
            "2026-11-23T10:00:00+01:00",
            "2026-11-23T09:00:00Z",
            "2026-11-23T14:30:00+05:30",
        ],
        [
            "2026-11-23T20:00:00+01:00",
            "2026-11-23T19:00:00Z",
            "2026-11-23T14:00:00-05:00",
        ],
    ] {
        let plans: Vec<Value> = instants
            .iter()
            .map(|at| {
                plan(
                    &manifests,
                    &["--at", at, "--current-replicas", "4", "--last-active", "2m"],
                )
            })
            .collect();
        for (at, other) in instants.iter().zip(&plans).skip(1) {
            assert_eq!(other, &plans[0], "{at} differs from {}", instants[0]);
        }
    }
}

#[test]
fn window_edges_follow_keda() {
    // Active iff the next end comes before the next start, both strictly after now: the start
    // instant is inside, the end instant outside. Weekends are outside a 1-5 window.
    struct Case {
        at: &'static str,
        active: bool,
    }
    let cases = [
        Case {
            at: "2026-11-23T07:59:59+01:00",
            active: false,
        },
        Case {
            at: "2026-11-23T08:00:00+01:00",
            active: true,
        },
        Case {
            at: "2026-11-23T17:59:59+01:00",
            active: true,
        },
        Case {
            at: "2026-11-23T18:00:00+01:00",
            active: false,
        },
        Case {
            at: "2026-11-28T10:00:00+01:00", // Saturday
            active: false,
        },
        Case {
            at: "2026-11-27T10:00:00+01:00", // Friday
            active: true,
        },
    ];
    let manifests = Manifests::with(&berlin(MIN_0));
    for case in cases {
        let plans = plan(&manifests, &["--at", case.at, "--current-replicas", "1"]);
        let so = object(&plans, "berlin");
        assert_eq!(
            so["triggers"][0]["active"], case.active,
            "{}: {so:#}",
            case.at
        );
        let value = if case.active { 4.0 } else { 0.0 };
        assert_eq!(
            so["triggers"][0]["value"].as_f64(),
            Some(value),
            "{}",
            case.at
        );
    }
}

#[test]
fn time_zones_are_applied_per_object() {
    // 16:00 UTC on a Monday: 17:00 in Berlin (inside 08–18), 21:30 in Kolkata (outside 09:30–17:30).
    // 06:30 UTC: 07:30 in Berlin in winter (outside) but 08:30 in summer (CEST, inside), and 12:00
    // in Kolkata (inside; India has no daylight saving time).
    let manifests = Manifests::with(&format!(
        "{}---\n{}",
        berlin(MIN_0),
        cron_object(
            "kolkata",
            "Asia/Kolkata",
            "30 9 * * 1-5",
            "30 17 * * 1-5",
            2,
            MIN_0
        )
    ));
    struct Case {
        at: &'static str,
        berlin: bool,
        kolkata: bool,
    }
    let cases = [
        Case {
            at: "2026-11-23T16:00:00Z",
            berlin: true,
            kolkata: false,
        },
        Case {
            at: "2026-11-23T06:30:00Z",
            berlin: false,
            kolkata: true,
        },
        Case {
            at: "2026-07-06T06:30:00Z",
            berlin: true,
            kolkata: true,
        },
        Case {
            at: "2026-11-23T03:00:00Z",
            berlin: false,
            kolkata: false,
        },
    ];
    for case in cases {
        let plans = plan(&manifests, &["--at", case.at, "--current-replicas", "0"]);
        for (name, active, replicas) in [("berlin", case.berlin, 4), ("kolkata", case.kolkata, 2)] {
            let so = object(&plans, name);
            assert_eq!(
                so["triggers"][0]["active"], active,
                "{name} at {}: {so:#}",
                case.at
            );
            assert_eq!(so["active"], active, "{name} at {}", case.at);
            let (action, desired) = if active {
                ("Activate", replicas)
            } else {
                ("NoChange", 0)
            };
            assert_eq!(
                so["decision"]["action"], action,
                "{name} at {}: {so:#}",
                case.at
            );
            assert_eq!(
                so["desiredReplicas"], desired,
                "{name} at {}: {so:#}",
                case.at
            );
        }
    }
}

/// A cron trigger next to a redis trigger whose server is not there (nothing listens on port 1).
fn cron_and_redis(spec: &str) -> Manifests {
    Manifests::with(&format!(
        "{}    - type: redis\n      metadata: {{address: '127.0.0.1:1', listName: jobs}}\n",
        berlin(spec)
    ))
}

#[test]
fn a_failing_trigger_reports_its_error_without_failing_the_run() {
    let manifests = cron_and_redis(MIN_0);
    let run = manifests.plan_json(&["--at", INSIDE, "--current-replicas", "1"]);
    // Per-trigger sampling errors are part of the plan, not a failure of the run: exit 0.
    run.assert_code(0);
    let plans = run.json();
    let so = object(&plans, "berlin");
    assert_eq!(so["errors"], Value::Array(vec![]), "{so:#}");
    let redis = &so["triggers"][1];
    assert_eq!(redis["type"], "redis");
    assert_eq!(redis["metricName"], "s1-redis-jobs");
    assert_eq!(redis["value"], Value::Null);
    let error = redis["error"].as_str().unwrap_or_default();
    assert!(error.contains("cannot connect"), "{redis:#}");
    // The cron trigger still decides: active, and the HPA scales up to its 4.
    assert_eq!(so["triggers"][0]["active"], true);
    assert_eq!(so["active"], true);
    assert_eq!(so["decision"]["action"], "PartialTriggerError");
    assert_eq!(so["desiredReplicas"], 4);

    // The text output names the trigger and the error too.
    let run = windlass_tests::windlass([
        "plan".as_ref(),
        "-f".as_ref(),
        manifests.dir().as_os_str(),
        "--at".as_ref(),
        INSIDE.as_ref(),
    ]);
    run.assert_code(0);
    assert!(
        run.stdout.contains("trigger 1 (redis): ") && run.stdout.contains("cannot connect"),
        "{}",
        run.describe()
    );
}

#[test]
fn outside_the_window_a_trigger_error_blocks_scale_to_zero() {
    // KEDA: not active + error + no fallback → TriggerError, Windlass does nothing.
    let manifests = cron_and_redis(MIN_0);
    let plans = plan(
        &manifests,
        &[
            "--at",
            OUTSIDE,
            "--current-replicas",
            "2",
            "--last-active",
            "10m",
        ],
    );
    let so = object(&plans, "berlin");
    assert_eq!(so["decision"]["action"], "TriggerError", "{so:#}");
    assert_eq!(so["decision"]["scaleTo"], Value::Null, "{so:#}");
}

#[test]
fn the_hpa_does_not_scale_down_while_a_metric_is_invalid() {
    // The cron metric proposes 0 (→ the HPA minimum 1) and the redis metric cannot be read: the
    // Kubernetes HPA skips a scale-down when any metric is invalid, so 2 replicas stay.
    let manifests = cron_and_redis(MIN_0);
    let plans = plan(
        &manifests,
        &[
            "--at",
            OUTSIDE,
            "--current-replicas",
            "2",
            "--last-active",
            "10m",
        ],
    );
    let so = object(&plans, "berlin");
    assert_eq!(so["desiredReplicas"], 2, "{so:#}");
    assert_ne!(so["hpaReplicas"], 1, "{so:#}");
}

#[test]
fn an_invalid_object_is_reported_and_fails_the_run() {
    let manifests = Manifests::with(&format!(
        "{}---\n{}",
        berlin(MIN_0),
        cron_object(
            "broken",
            "Mars/Olympus_Mons",
            "0 8 * * *",
            "0 18 * * *",
            2,
            ""
        )
    ));
    let run = manifests.plan_json(&["--at", INSIDE]);
    run.assert_code(1);
    let plans = run.json();
    let broken = object(&plans, "broken");
    let errors = broken["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().unwrap_or_default().contains("timezone")),
        "{broken:#}"
    );
    // The valid object is still planned.
    assert_eq!(object(&plans, "berlin")["active"], true);
}

#[test]
fn current_replicas_default_to_the_target_manifest() {
    // Without --current-replicas: the Deployment's spec.replicas (3), else 1.
    let manifests = Manifests::with(&format!(
        "{}---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: berlin}}\nspec:\n  replicas: 3\n  template:\n    spec:\n      containers: [{{name: app, image: x}}]\n",
        berlin(MIN_0)
    ));
    let plans = plan(&manifests, &["--at", INSIDE]);
    assert_eq!(object(&plans, "berlin")["currentReplicas"], 3);

    let manifests = Manifests::with(&berlin(MIN_0));
    let plans = plan(&manifests, &["--at", INSIDE]);
    assert_eq!(object(&plans, "berlin")["currentReplicas"], 1);
}

#[test]
fn plan_usage_errors_exit_2() {
    let manifests = Manifests::with(&berlin(MIN_0));
    for extra in [
        &["--at", "yesterday"][..],
        &["--last-active", "5d"][..],
        &["--current-replicas", "many"][..],
    ] {
        let run = manifests.plan_json(extra);
        assert_eq!(run.code, Some(2), "{extra:?}: {}", run.describe());
    }
}

#[test]
fn watch_prints_a_plan_then_keeps_running() {
    let manifests = Manifests::with(&berlin(MIN_0));
    let mut running = Running::start([
        "plan".as_ref(),
        "--watch".as_ref(),
        "-o".as_ref(),
        "json".as_ref(),
        "--at".as_ref(),
        INSIDE.as_ref(),
        "--current-replicas".as_ref(),
        "0".as_ref(),
        "-f".as_ref(),
        manifests.dir().as_os_str(),
    ]);
    let first = running
        .first_json(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let so = object(&first, "berlin");
    assert_eq!(so["active"], true, "{so:#}");
    assert_eq!(so["decision"]["action"], "Activate", "{so:#}");
    assert_eq!(so["desiredReplicas"], 4, "{so:#}");
    assert!(
        running.is_running(),
        "--watch must keep running after the first plan"
    );
    // Dropping `running` kills the process.
}

#[test]
fn a_repeated_scaled_object_does_not_inherit_the_first_copys_state() {
    let manifests = Manifests::with(&format!(
        "{}---\n{}",
        berlin(MIN_0),
        cron_object(
            "berlin",
            "Europe/Berlin",
            "0 8 * * 1-5",
            "0 18 * * 1-5",
            2,
            MIN_0
        )
    ));
    let plans = plan(&manifests, &["--at", INSIDE, "--current-replicas", "0"]);
    for so in plans.as_array().unwrap() {
        assert_eq!(so["currentReplicas"], 0, "{plans:#}");
        assert_eq!(so["decision"]["action"], "Activate", "{plans:#}");
    }
    // Whichever copy is planned last (kubectl apply keeps the later one) wants 2 replicas.
    let last = plans.as_array().unwrap().last().unwrap();
    assert_eq!(last["desiredReplicas"], 2, "{plans:#}");
}
