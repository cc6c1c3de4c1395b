//! The validation rules KEDA documents (CRD schema, CEL rule, admission webhook), each through
//! `windlass check` and reported on its key. Every case lists the exact error fields of the
//! ScaledObject it checks, so a missing and a spurious error both fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use windlass_tests::{Manifests, all_errors, error_fields, object, yaml};

/// A ScaledObject `name` in `default` targeting Deployment `target`, with extra `spec` lines
/// and `triggers` (list items indented four spaces).
fn so(name: &str, target: &str, spec: &str, triggers: &str) -> String {
    format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: {name}\nspec:\n  scaleTargetRef: {{name: {target}}}\n{spec}  triggers:\n{triggers}"
    )
}

const REDIS: &str = "    - type: redis\n      metadata: {address: 'redis:6379', listName: jobs}\n";
const CRON: &str = "    - type: cron\n      metadata: {timezone: Etc/UTC, start: 0 8 * * *, end: 0 18 * * *, desiredReplicas: '2'}\n";
const CPU: &str = "    - type: cpu\n      metricType: Utilization\n      metadata: {value: '60'}\n";
const MEMORY: &str =
    "    - type: memory\n      metricType: Utilization\n      metadata: {value: '70'}\n";

/// A Deployment `app` with cpu and memory requests.
fn app_with_requests() -> String {
    yaml::deployment(
        "default",
        "app",
        "resources:\n  requests: {cpu: 100m, memory: 64Mi}",
    )
}

struct Case<'a> {
    what: &'static str,
    /// Every document of the set.
    manifests: String,
    /// The ScaledObject whose errors are checked.
    name: &'a str,
    /// Its error fields, in report order (object errors, then each trigger's).
    fields: &'static [&'static str],
    /// Text the first error contains.
    message: &'static str,
}

fn run_cases(cases: Vec<Case<'_>>) {
    let mut failures = Vec::new();
    for case in cases {
        let manifests = Manifests::with(&case.manifests);
        let run = manifests.check_json();
        let expected_code = if case.fields.is_empty() { 0 } else { 1 };
        if run.code != Some(expected_code) || run.stderr.contains("panicked") {
            failures.push(format!(
                "{}: expected exit {expected_code}\n{}",
                case.what,
                run.describe()
            ));
            continue;
        }
        let reports = run.json();
        let report = object(&reports, case.name);
        let fields = error_fields(report);
        if fields != case.fields {
            failures.push(format!(
                "{}: error fields {fields:?}, expected {:?}\n{:#?}",
                case.what,
                case.fields,
                all_errors(report)
            ));
            continue;
        }
        if report["valid"] != case.fields.is_empty() {
            failures.push(format!("{}: valid is {}", case.what, report["valid"]));
        }
        let first = all_errors(report).first().cloned().unwrap_or_default();
        if !first.contains(case.message) {
            failures.push(format!(
                "{}: {first:?} does not contain {:?}",
                case.what, case.message
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn replica_bounds() {
    run_cases(vec![
        Case {
            what: "idleReplicaCount equal to minReplicaCount",
            manifests: so(
                "so",
                "app",
                "  idleReplicaCount: 2\n  minReplicaCount: 2\n",
                REDIS,
            ),
            name: "so",
            fields: &["spec.idleReplicaCount"],
            message: "IdleReplicaCount=2 must be less than MinReplicaCount=2",
        },
        Case {
            what: "idleReplicaCount above minReplicaCount",
            manifests: so(
                "so",
                "app",
                "  idleReplicaCount: 3\n  minReplicaCount: 1\n",
                REDIS,
            ),
            name: "so",
            fields: &["spec.idleReplicaCount"],
            message: "IdleReplicaCount=3",
        },
        Case {
            what: "idleReplicaCount 0 with minReplicaCount unset (KEDA counts it as 0)",
            manifests: so("so", "app", "  idleReplicaCount: 0\n", REDIS),
            name: "so",
            fields: &["spec.idleReplicaCount"],
            message: "IdleReplicaCount=0 must be less than MinReplicaCount=0",
        },
        Case {
            what: "idleReplicaCount 0 below minReplicaCount 1",
            manifests: so(
                "so",
                "app",
                "  idleReplicaCount: 0\n  minReplicaCount: 1\n",
                REDIS,
            ),
            name: "so",
            fields: &[],
            message: "",
        },
        Case {
            what: "minReplicaCount above maxReplicaCount: webhook and CEL rule",
            manifests: so(
                "so",
                "app",
                "  minReplicaCount: 5\n  maxReplicaCount: 3\n",
                REDIS,
            ),
            name: "so",
            fields: &["spec", "spec.minReplicaCount"],
            message: "minReplicaCount must be less than or equal to maxReplicaCount",
        },
        Case {
            what: "minReplicaCount above the default maxReplicaCount of 100",
            manifests: so("so", "app", "  minReplicaCount: 101\n", REDIS),
            name: "so",
            fields: &["spec", "spec.minReplicaCount"],
            message: "maxReplicaCount",
        },
        Case {
            what: "minReplicaCount equal to maxReplicaCount",
            manifests: so(
                "so",
                "app",
                "  minReplicaCount: 3\n  maxReplicaCount: 3\n",
                REDIS,
            ),
            name: "so",
            fields: &[],
            message: "",
        },
        Case {
            what: "negative minReplicaCount (schema minimum)",
            manifests: so("so", "app", "  minReplicaCount: -1\n", REDIS),
            name: "so",
            fields: &["spec.minReplicaCount"],
            message: "less than the minimum of 0",
        },
    ]);
}

#[test]
fn trigger_rules() {
    run_cases(vec![
        Case {
            what: "duplicate trigger names",
            manifests: so(
                "so",
                "app",
                "",
                "    - type: redis\n      name: queue\n      metadata: {address: 'redis:6379', listName: a}\n    - type: redis\n      name: queue\n      metadata: {address: 'redis:6379', listName: b}\n",
            ),
            name: "so",
            fields: &["spec.triggers[1].name"],
            message: "triggerName \"queue\" is defined multiple times",
        },
        Case {
            what: "useCachedMetrics on cron",
            manifests: so(
                "so",
                "app",
                "",
                "    - type: cron\n      useCachedMetrics: true\n      metadata: {timezone: Etc/UTC, start: 0 8 * * *, end: 0 18 * * *, desiredReplicas: '2'}\n",
            ),
            name: "so",
            fields: &["spec.triggers[0].useCachedMetrics"],
            message: "\"useCachedMetrics\" is not supported for \"cron\" scaler",
        },
        Case {
            what: "useCachedMetrics on cpu and memory",
            manifests: format!(
                "{}---\n{}",
                app_with_requests(),
                so(
                    "so",
                    "app",
                    "  minReplicaCount: 1\n",
                    &format!(
                        "{}      useCachedMetrics: true\n{}      useCachedMetrics: true\n",
                        CPU, MEMORY
                    ),
                )
            ),
            name: "so",
            fields: &[
                "spec.triggers[0].useCachedMetrics",
                "spec.triggers[1].useCachedMetrics",
            ],
            message: "\"cpu\"",
        },
        Case {
            what: "useCachedMetrics on redis is allowed",
            manifests: so(
                "so",
                "app",
                "",
                "    - type: redis\n      useCachedMetrics: true\n      metadata: {address: 'redis:6379', listName: a}\n",
            ),
            name: "so",
            fields: &[],
            message: "",
        },
        Case {
            what: "metricType Utilization on an event trigger",
            manifests: so(
                "so",
                "app",
                "",
                "    - type: redis\n      metricType: Utilization\n      metadata: {address: 'redis:6379', listName: a}\n",
            ),
            name: "so",
            fields: &["spec.triggers[0].metricType"],
            message: "",
        },
    ]);
}

#[test]
fn cpu_and_memory() {
    run_cases(vec![
        Case {
            what: "only cpu/memory triggers with minReplicaCount 0",
            manifests: format!(
                "{}---\n{}",
                app_with_requests(),
                so(
                    "so",
                    "app",
                    "  minReplicaCount: 0\n",
                    &format!("{CPU}{MEMORY}")
                )
            ),
            name: "so",
            fields: &["spec.minReplicaCount"],
            message: "scaledobject has only cpu/memory triggers AND minReplica is 0",
        },
        Case {
            what: "only cpu with minReplicaCount unset",
            manifests: format!("{}---\n{}", app_with_requests(), so("so", "app", "", CPU)),
            name: "so",
            fields: &["spec.minReplicaCount"],
            message: "scale to zero doesn't work",
        },
        Case {
            what: "cpu with minReplicaCount 1",
            manifests: format!(
                "{}---\n{}",
                app_with_requests(),
                so("so", "app", "  minReplicaCount: 1\n", CPU)
            ),
            name: "so",
            fields: &[],
            message: "",
        },
        Case {
            what: "cpu next to an event trigger can scale to zero",
            manifests: format!(
                "{}---\n{}",
                app_with_requests(),
                so(
                    "so",
                    "app",
                    "  minReplicaCount: 0\n",
                    &format!("{CPU}{REDIS}")
                )
            ),
            name: "so",
            fields: &[],
            message: "",
        },
        Case {
            what: "fallback with only cpu/memory triggers",
            manifests: format!(
                "{}---\n{}",
                app_with_requests(),
                so(
                    "so",
                    "app",
                    "  minReplicaCount: 1\n  fallback: {failureThreshold: 3, replicas: 2}\n",
                    CPU
                )
            ),
            name: "so",
            fields: &["spec.fallback"],
            message: "at least one trigger (that is not cpu or memory)",
        },
        Case {
            what: "fallback next to an event trigger",
            manifests: format!(
                "{}---\n{}",
                app_with_requests(),
                so(
                    "so",
                    "app",
                    "  minReplicaCount: 1\n  fallback: {failureThreshold: 3, replicas: 2}\n",
                    &format!("{CPU}{REDIS}")
                )
            ),
            name: "so",
            fields: &[],
            message: "",
        },
        Case {
            what: "cpu trigger whose container has no cpu request",
            manifests: format!(
                "{}---\n{}",
                yaml::deployment("default", "app", "resources:\n  requests: {memory: 64Mi}"),
                so("so", "app", "  minReplicaCount: 1\n", CPU)
            ),
            name: "so",
            fields: &["spec.triggers[0]"],
            message: "the container app doesn't have the cpu request defined",
        },
        Case {
            what: "memory trigger whose container has no resources at all",
            manifests: format!(
                "{}---\n{}",
                yaml::deployment("default", "app", ""),
                so("so", "app", "  minReplicaCount: 1\n", MEMORY)
            ),
            name: "so",
            fields: &["spec.triggers[0]"],
            message: "doesn't have the memory request defined",
        },
        Case {
            what: "a cpu limit counts as a request",
            manifests: format!(
                "{}---\n{}",
                yaml::deployment("default", "app", "resources:\n  limits: {cpu: '1'}"),
                so("so", "app", "  minReplicaCount: 1\n", CPU)
            ),
            name: "so",
            fields: &[],
            message: "",
        },
        Case {
            what: "a LimitRange default cpu request counts",
            manifests: format!(
                "{}---\napiVersion: v1\nkind: LimitRange\nmetadata: {{name: defaults}}\nspec:\n  limits:\n    - type: Container\n      defaultRequest: {{cpu: 200m}}\n---\n{}",
                yaml::deployment("default", "app", ""),
                so("so", "app", "  minReplicaCount: 1\n", CPU)
            ),
            name: "so",
            fields: &[],
            message: "",
        },
        Case {
            what: "a LimitRange in another namespace does not count",
            manifests: format!(
                "{}---\napiVersion: v1\nkind: LimitRange\nmetadata: {{name: defaults, namespace: other}}\nspec:\n  limits:\n    - type: Container\n      defaultRequest: {{cpu: 200m}}\n---\n{}",
                yaml::deployment("default", "app", ""),
                so("so", "app", "  minReplicaCount: 1\n", CPU)
            ),
            name: "so",
            fields: &["spec.triggers[0]"],
            message: "cpu request",
        },
        Case {
            what: "containerName restricts the check to that container",
            manifests: format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: app}}\nspec:\n  template:\n    spec:\n      containers:\n        - {{name: main, image: x, resources: {{requests: {{cpu: 100m}}}}}}\n        - {{name: sidecar, image: y}}\n---\n{}",
                so(
                    "so",
                    "app",
                    "  minReplicaCount: 1\n",
                    "    - type: cpu\n      metricType: Utilization\n      metadata: {value: '60', containerName: main}\n"
                )
            ),
            name: "so",
            fields: &[],
            message: "",
        },
        Case {
            what: "without containerName every container needs the request",
            manifests: format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: app}}\nspec:\n  template:\n    spec:\n      containers:\n        - {{name: main, image: x, resources: {{requests: {{cpu: 100m}}}}}}\n        - {{name: sidecar, image: y}}\n---\n{}",
                so("so", "app", "  minReplicaCount: 1\n", CPU)
            ),
            name: "so",
            fields: &["spec.triggers[0]"],
            message: "the container sidecar doesn't have the cpu request defined",
        },
    ]);
}

#[test]
fn scaling_modifiers() {
    let named = "    - type: redis\n      name: queue\n      metadata: {address: 'redis:6379', listName: a}\n    - type: redis\n      name: backlog\n      metadata: {address: 'redis:6379', listName: b}\n";
    run_cases(vec![
        Case {
            what: "formula without target",
            manifests: so(
                "so",
                "app",
                "  advanced:\n    scalingModifiers: {formula: 'queue + backlog'}\n",
                named,
            ),
            name: "so",
            fields: &["spec.advanced.scalingModifiers.target"],
            message: "",
        },
        Case {
            what: "formula referencing an unnamed trigger",
            manifests: so(
                "so",
                "app",
                "  advanced:\n    scalingModifiers: {formula: 'queue + other', target: '5'}\n",
                named,
            ),
            name: "so",
            fields: &["spec.advanced.scalingModifiers.formula"],
            message: "",
        },
        Case {
            what: "target that is not a number",
            manifests: so(
                "so",
                "app",
                "  advanced:\n    scalingModifiers: {formula: 'queue + backlog', target: 'five'}\n",
                named,
            ),
            name: "so",
            fields: &["spec.advanced.scalingModifiers.target"],
            message: "",
        },
        Case {
            what: "target of zero",
            manifests: so(
                "so",
                "app",
                "  advanced:\n    scalingModifiers: {formula: 'queue + backlog', target: '0'}\n",
                named,
            ),
            name: "so",
            fields: &["spec.advanced.scalingModifiers.target"],
            message: "",
        },
        Case {
            what: "target without formula",
            manifests: so(
                "so",
                "app",
                "  advanced:\n    scalingModifiers: {target: '5'}\n",
                named,
            ),
            name: "so",
            fields: &["spec.advanced.scalingModifiers.formula"],
            message: "",
        },
        Case {
            what: "metricType Utilization",
            manifests: so(
                "so",
                "app",
                "  advanced:\n    scalingModifiers: {formula: 'queue + backlog', target: '5', metricType: Utilization}\n",
                named,
            ),
            name: "so",
            fields: &["spec.advanced.scalingModifiers.metricType"],
            message: "",
        },
        Case {
            what: "a valid formula over named triggers",
            manifests: so(
                "so",
                "app",
                "  advanced:\n    scalingModifiers: {formula: 'max(queue, backlog) * 2', target: '5', activationTarget: '1'}\n",
                named,
            ),
            name: "so",
            fields: &[],
            message: "",
        },
        Case {
            what: "fallback behavior scalingModifiers without formula",
            manifests: so(
                "so",
                "app",
                "  fallback: {failureThreshold: 3, replicas: 2, behavior: scalingModifiers}\n",
                named,
            ),
            name: "so",
            fields: &["spec.fallback.behavior"],
            message: "requires scalingModifiers.formula",
        },
    ]);
}

#[test]
fn names() {
    let long = "x".repeat(64);
    let sixty = "y".repeat(60);
    let sixty_three = "z".repeat(63);
    run_cases(vec![
        Case {
            what: "a ScaledObject name longer than 63 characters",
            manifests: so(&long, "app", "", REDIS),
            name: &long,
            fields: &["metadata.name"],
            message: "must be no more than 63 characters",
        },
        Case {
            what: "a 60-character name makes keda-hpa-<name> too long",
            manifests: so(&sixty, "app", "", REDIS),
            name: &sixty,
            fields: &["spec.advanced.horizontalPodAutoscalerConfig.name"],
            message: "HPA name",
        },
        Case {
            what: "a 63-character name with a short custom HPA name",
            manifests: so(
                &sixty_three,
                "app",
                "  advanced:\n    horizontalPodAutoscalerConfig: {name: short}\n",
                REDIS,
            ),
            name: &sixty_three,
            fields: &[],
            message: "",
        },
    ]);
}

/// An HPA `legacy` (not KEDA's) scaling Deployment `app`, with extra metadata lines.
fn foreign_hpa(metadata: &str, namespace: &str) -> String {
    format!(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: legacy\n  namespace: {namespace}\n{metadata}spec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: app}}\n  minReplicas: 1\n  maxReplicas: 5\n"
    )
}

#[test]
fn conflicts_with_other_scalers_of_the_same_workload() {
    run_cases(vec![
        Case {
            what: "two ScaledObjects targeting the same Deployment",
            manifests: format!("{}---\n{}", so("first", "app", "", REDIS), so("second", "app", "", CRON)),
            name: "second",
            fields: &["spec.scaleTargetRef"],
            message: "the workload 'app' of type 'apps/v1.Deployment' is already managed by the ScaledObject 'first'",
        },
        Case {
            what: "…and the first is told about the second",
            manifests: format!("{}---\n{}", so("first", "app", "", REDIS), so("second", "app", "", CRON)),
            name: "first",
            fields: &["spec.scaleTargetRef"],
            message: "already managed by the ScaledObject 'second'",
        },
        Case {
            what: "a Deployment and a StatefulSet of the same name may coexist",
            manifests: format!(
                "{}---\n{}",
                so("first", "app", "", REDIS),
                so("second", "app", "", CRON)
                    .replace("scaleTargetRef: {name: app}", "scaleTargetRef: {name: app, kind: StatefulSet}")
            ),
            name: "second",
            fields: &[],
            message: "",
        },
        Case {
            what: "the same Deployment name in another namespace",
            manifests: format!(
                "{}---\n{}",
                so("first", "app", "", REDIS),
                so("second", "app", "", CRON).replace("  name: second\n", "  name: second\n  namespace: other\n")
            ),
            name: "second",
            fields: &[],
            message: "",
        },
        Case {
            what: "two ScaledObjects naming the same HPA",
            manifests: format!(
                "{}---\n{}",
                so("first", "one", "  advanced:\n    horizontalPodAutoscalerConfig: {name: shared}\n", REDIS),
                so("second", "two", "  advanced:\n    horizontalPodAutoscalerConfig: {name: shared}\n", CRON)
            ),
            name: "second",
            fields: &["spec.advanced.horizontalPodAutoscalerConfig.name"],
            message: "the HPA 'shared' is already managed by the ScaledObject 'first'",
        },
        Case {
            what: "a foreign HPA targeting the same Deployment",
            manifests: format!("{}---\n{}", foreign_hpa("", "default"), so("so", "app", "", REDIS)),
            name: "so",
            fields: &["spec.scaleTargetRef"],
            message: "the workload 'app' of type 'apps/v1.Deployment' is already managed by the hpa 'legacy'",
        },
        Case {
            what: "transfer-hpa-ownership without naming the HPA",
            manifests: format!(
                "{}---\n{}",
                foreign_hpa("", "default"),
                so("so", "app", "", REDIS).replace(
                    "  name: so\n",
                    "  name: so\n  annotations: {scaledobject.keda.sh/transfer-hpa-ownership: 'true'}\n"
                )
            ),
            name: "so",
            fields: &["spec.advanced.horizontalPodAutoscalerConfig.name"],
            message: "must be specified by name in advanced settings to enable ownership transfer",
        },
        Case {
            what: "transfer-hpa-ownership naming the HPA adopts it",
            manifests: format!(
                "{}---\n{}",
                foreign_hpa("", "default"),
                so(
                    "so",
                    "app",
                    "  advanced:\n    horizontalPodAutoscalerConfig: {name: legacy}\n",
                    REDIS
                )
                .replace(
                    "  name: so\n",
                    "  name: so\n  annotations: {scaledobject.keda.sh/transfer-hpa-ownership: 'true'}\n"
                )
            ),
            name: "so",
            fields: &[],
            message: "",
        },
        Case {
            what: "naming the HPA without the annotation is not enough",
            manifests: format!(
                "{}---\n{}",
                foreign_hpa("", "default"),
                so(
                    "so",
                    "app",
                    "  advanced:\n    horizontalPodAutoscalerConfig: {name: legacy}\n",
                    REDIS
                )
            ),
            name: "so",
            fields: &["spec.scaleTargetRef"],
            message: "already managed by the hpa 'legacy'",
        },
        Case {
            what: "an HPA with validations.keda.sh/hpa-ownership: \"false\" is ignored",
            manifests: format!(
                "{}---\n{}",
                foreign_hpa("  annotations: {validations.keda.sh/hpa-ownership: 'false'}\n", "default"),
                so("so", "app", "", REDIS)
            ),
            name: "so",
            fields: &[],
            message: "",
        },
        Case {
            what: "an HPA owned by this ScaledObject is its own",
            manifests: format!(
                "{}---\n{}",
                foreign_hpa(
                    "  ownerReferences: [{apiVersion: keda.sh/v1alpha1, kind: ScaledObject, name: so, uid: 0000}]\n",
                    "default"
                ),
                so("so", "app", "", REDIS)
            ),
            name: "so",
            fields: &[],
            message: "",
        },
        Case {
            what: "an HPA in another namespace",
            manifests: format!("{}---\n{}", foreign_hpa("", "other"), so("so", "app", "", REDIS)),
            name: "so",
            fields: &[],
            message: "",
        },
    ]);
}
