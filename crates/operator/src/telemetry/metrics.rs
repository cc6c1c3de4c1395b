//! The operator's Prometheus metrics.
//!
//! KEDA's names, types, labels and help texts are kept where KEDA has the metric
//! (`kedacore/keda:pkg/metricscollector/prommetrics.go`), so existing dashboards and alerts keep
//! working: `keda_scaler_metrics_value`, `keda_scaler_metrics_latency_seconds`,
//! `keda_scaler_active`, `keda_scaler_detail_errors_total`, `keda_scaled_object_errors_total`,
//! `keda_scaled_object_paused`, `keda_resource_registered_total`,
//! `keda_trigger_registered_total`, `keda_internal_scale_loop_latency_seconds`,
//! `keda_build_info`, and controller-runtime's `leader_election_master_status`.
//!
//! Windlass adds histograms where KEDA only keeps the last value in a gauge, and counters of the
//! writes it makes: `windlass_scaler_sample_duration_seconds`,
//! `windlass_reconcile_duration_seconds`, `windlass_scale_loop_duration_seconds`,
//! `windlass_status_writes_total`, `windlass_scale_writes_total{direction}`,
//! `windlass_hpa_writes_total{operation}`. Failures are labelled with an error *category*
//! ([`ErrorCategory`], or the controller's own stable category strings), never an error message,
//! so the number of series stays bounded.
//!
//! Differences from KEDA, on purpose:
//! - `scaler` is the trigger's `name` when set, else its `type` (KEDA falls back to its Go type
//!   name, e.g. `redisScaler`, which has no meaning here).
//! - `keda_build_info` keeps KEDA's labels; `goversion` is empty because there is no Go runtime,
//!   `goos`/`goarch` use Go's spellings (`linux`, `amd64`) so queries written for KEDA match.
//! - The per-trigger series of an object are dropped when its triggers change or the object is
//!   deleted ([`OperatorMetrics::forget_scaled_object`]); KEDA drops them on every reconcile.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use scaler_core::{ErrorCategory, Sample};

/// KEDA's `type` label on its per-scaler series: the kind of scalable object.
const SCALED_OBJECT_TYPE: &str = "scaledobject";
/// KEDA's `type` label on `keda_resource_registered_total` for ScaledObjects.
const SCALED_OBJECT_RESOURCE: &str = "scaled_object";
/// The `result` label of a successful sample or reconcile.
const SUCCESS: &str = "success";
/// The `result` label of a failed sample that fallback replaced.
const FALLBACK: &str = "fallback";
/// KEDA's scaler name for the synthetic metric of `scalingModifiers`.
const COMPOSITE_SCALER: &str = "composite-metric";

/// Buckets for one query to a backend: 5 ms to 10 s, KEDA's scaler HTTP request buckets.
const SAMPLE_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets for a reconcile or a whole scale loop pass, which may wait for several backends and
/// API writes: 5 ms to 60 s.
const LOOP_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// What the controller knows about one metric of one trigger when it samples it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SampleLabels {
    pub namespace: String,
    pub scaled_object: String,
    /// The trigger's position in `spec.triggers`.
    pub trigger_index: usize,
    /// The trigger's `type` (`redis`, `kafka`, ...).
    pub trigger_type: String,
    /// The trigger's optional `name`; KEDA's `scaler` label prefers it over the type.
    pub trigger_name: Option<String>,
    /// The external metric name (`s0-redis-mylist`).
    pub metric: String,
}

impl SampleLabels {
    fn keda(&self) -> ScalerLabels {
        ScalerLabels {
            namespace: self.namespace.clone(),
            metric: self.metric.clone(),
            scaledObject: self.scaled_object.clone(),
            scaler: self
                .trigger_name
                .clone()
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| self.trigger_type.clone()),
            triggerIndex: self.trigger_index,
            r#type: SCALED_OBJECT_TYPE,
        }
    }

    fn duration(&self, result: &'static str) -> SampleDurationLabels {
        SampleDurationLabels {
            namespace: self.namespace.clone(),
            scaledObject: self.scaled_object.clone(),
            triggerIndex: self.trigger_index,
            r#type: self.trigger_type.clone(),
            result,
        }
    }

    fn object(&self) -> ObjectKey {
        (self.namespace.clone(), self.scaled_object.clone())
    }
}

/// KEDA's labels of the per-scaler series (`metricLabels` in `prommetrics.go`).
#[allow(non_snake_case)]
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ScalerLabels {
    namespace: String,
    metric: String,
    scaledObject: String,
    scaler: String,
    triggerIndex: usize,
    /// Always `scaledobject`; KEDA also has `scaledjob`.
    r#type: &'static str,
}

/// Labels of `windlass_scaler_sample_duration_seconds`. Unlike KEDA's `type`, this `type` is the
/// trigger type: the histogram exists to compare backends.
#[allow(non_snake_case)]
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SampleDurationLabels {
    namespace: String,
    scaledObject: String,
    triggerIndex: usize,
    r#type: String,
    /// `success`, an [`ErrorCategory`] label, or `fallback`.
    result: &'static str,
}

#[allow(non_snake_case)]
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ObjectLabels {
    namespace: String,
    scaledObject: String,
}

/// `keda_internal_scale_loop_latency_seconds` names the object `resource`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LoopLatencyLabels {
    namespace: String,
    r#type: &'static str,
    resource: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResourceLabels {
    r#type: &'static str,
    namespace: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TriggerTypeLabels {
    r#type: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DirectionLabels {
    direction: ScaleDirection,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OperationLabels {
    operation: HpaOperation,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LeaseLabels {
    name: String,
}

/// KEDA's `keda_build_info` labels.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildInfoLabels {
    version: String,
    git_commit: String,
    goversion: String,
    goos: &'static str,
    goarch: &'static str,
}

/// Which way a write to the scale subresource moved the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScaleDirection {
    Up,
    Down,
}

impl ScaleDirection {
    /// The direction from the current to the new replica count; `None` when they are equal.
    pub fn between(current: i32, desired: i32) -> Option<Self> {
        match desired.cmp(&current) {
            std::cmp::Ordering::Greater => Some(Self::Up),
            std::cmp::Ordering::Less => Some(Self::Down),
            std::cmp::Ordering::Equal => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}

impl EncodeLabelValue for ScaleDirection {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// A write to the owned HorizontalPodAutoscaler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HpaOperation {
    Create,
    Update,
    Delete,
}

impl HpaOperation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

impl EncodeLabelValue for HpaOperation {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// What `keda_build_info` reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildInfo {
    pub version: String,
    pub git_commit: String,
}

impl BuildInfo {
    /// This binary: the crate version and the commit in `WINDLASS_GIT_COMMIT` at build time
    /// (empty when unset, as KEDA's `GitCommit`).
    pub fn current() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            git_commit: option_env!("WINDLASS_GIT_COMMIT")
                .unwrap_or_default()
                .to_owned(),
        }
    }

    fn labels(&self) -> BuildInfoLabels {
        BuildInfoLabels {
            version: self.version.clone(),
            git_commit: self.git_commit.clone(),
            goversion: String::new(),
            goos: go_os(std::env::consts::OS),
            goarch: go_arch(std::env::consts::ARCH),
        }
    }
}

/// Go's `GOOS` for Rust's `std::env::consts::OS`.
fn go_os(os: &'static str) -> &'static str {
    match os {
        "macos" => "darwin",
        other => other,
    }
}

/// Go's `GOARCH` for Rust's `std::env::consts::ARCH`.
fn go_arch(arch: &'static str) -> &'static str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

type FloatGauge = Gauge<f64, AtomicU64>;
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;
type ObjectKey = (String, String);

fn sample_histogram() -> Histogram {
    Histogram::new(SAMPLE_BUCKETS)
}

fn loop_histogram() -> Histogram {
    Histogram::new(LOOP_BUCKETS)
}

/// Every series the operator exports. Cheap to clone; all clones update the same registry.
#[derive(Clone)]
pub struct OperatorMetrics {
    families: Arc<Families>,
    /// Label sets of the per-trigger series of each object, so that they can be removed when
    /// the object goes (prometheus-client removes series by exact label set only).
    index: Arc<Mutex<Index>>,
}

impl std::fmt::Debug for OperatorMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorMetrics").finish_non_exhaustive()
    }
}

struct Families {
    scaler_value: Family<ScalerLabels, FloatGauge>,
    scaler_latency: Family<ScalerLabels, FloatGauge>,
    scaler_active: Family<ScalerLabels, Gauge>,
    scaler_errors: Family<ScalerLabels, Counter>,
    scaled_object_errors: Family<ObjectLabels, Counter>,
    scaled_object_paused: Family<ObjectLabels, Gauge>,
    resource_registered: Family<ResourceLabels, Gauge>,
    trigger_registered: Family<TriggerTypeLabels, Gauge>,
    loop_latency: Family<LoopLatencyLabels, FloatGauge>,
    leader: Family<LeaseLabels, Gauge>,
    sample_duration: HistogramFamily<SampleDurationLabels>,
    reconcile_duration: HistogramFamily<ResultLabels>,
    loop_duration: HistogramFamily<ObjectLabels>,
    status_writes: Counter,
    scale_writes: Family<DirectionLabels, Counter>,
    hpa_writes: Family<OperationLabels, Counter>,
}

#[derive(Default)]
struct Index {
    /// Per object: KEDA's per-scaler label sets and the sample-duration label sets in use.
    series: HashMap<ObjectKey, ObjectSeries>,
    /// Per object: the trigger types counted in `keda_trigger_registered_total`.
    registered: HashMap<ObjectKey, Vec<String>>,
}

#[derive(Default)]
struct ObjectSeries {
    scaler: HashSet<ScalerLabels>,
    sample_duration: HashSet<SampleDurationLabels>,
}

impl OperatorMetrics {
    /// Registers every family in `registry` and sets `keda_build_info`.
    pub fn register(registry: &mut Registry, build: &BuildInfo) -> Self {
        let families = Families {
            scaler_value: Family::default(),
            scaler_latency: Family::default(),
            scaler_active: Family::default(),
            scaler_errors: Family::default(),
            scaled_object_errors: Family::default(),
            scaled_object_paused: Family::default(),
            resource_registered: Family::default(),
            trigger_registered: Family::default(),
            loop_latency: Family::default(),
            leader: Family::default(),
            sample_duration: Family::new_with_constructor(sample_histogram),
            reconcile_duration: Family::new_with_constructor(loop_histogram),
            loop_duration: Family::new_with_constructor(loop_histogram),
            status_writes: Counter::default(),
            scale_writes: Family::default(),
            hpa_writes: Family::default(),
        };
        // prometheus-client appends the final period of each help text, and `_total` to
        // counter names.
        registry.register(
            "keda_build",
            "Info metric, with static information about the build like: version, git commit and runtime info",
            Info::new(build.labels()),
        );
        registry.register(
            "keda_scaler_metrics_value",
            "The current value for each scaler's metric that would be used by the HPA in computing the target average",
            families.scaler_value.clone(),
        );
        registry.register(
            "keda_scaler_metrics_latency_seconds",
            "The latency of retrieving current metric from each scaler, in seconds",
            families.scaler_latency.clone(),
        );
        registry.register(
            "keda_scaler_active",
            "Indicates whether a scaler is active (1), or not (0)",
            families.scaler_active.clone(),
        );
        registry.register(
            "keda_scaled_object_paused",
            "Indicates whether a ScaledObject is paused (1), or not (0)",
            families.scaled_object_paused.clone(),
        );
        registry.register(
            "keda_scaler_detail_errors",
            "The total number of errors encountered for each scaler",
            families.scaler_errors.clone(),
        );
        registry.register(
            "keda_scaled_object_errors",
            "The number of errors that have occurred for each ScaledObject",
            families.scaled_object_errors.clone(),
        );
        // KEDA's two `*_registered_total` are gauges despite their names.
        registry.register(
            "keda_trigger_registered_total",
            "Total number of triggers per trigger type registered",
            families.trigger_registered.clone(),
        );
        registry.register(
            "keda_resource_registered_total",
            "Total number of KEDA custom resources per namespace for each custom resource type (CRD) registered",
            families.resource_registered.clone(),
        );
        registry.register(
            "keda_internal_scale_loop_latency_seconds",
            "Total deviation (in seconds) between the expected execution time and the actual execution time for the scaling loop",
            families.loop_latency.clone(),
        );
        registry.register(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease. Please make sure to group by name",
            families.leader.clone(),
        );
        registry.register(
            "windlass_scaler_sample_duration_seconds",
            "Time taken by one query to a scaler's backend, by trigger type and result (success or an error category)",
            families.sample_duration.clone(),
        );
        registry.register(
            "windlass_reconcile_duration_seconds",
            "Time taken by one reconcile of a ScaledObject, by result (success or an error category)",
            families.reconcile_duration.clone(),
        );
        registry.register(
            "windlass_scale_loop_duration_seconds",
            "Time taken by one pass of a ScaledObject's scale loop: sampling every trigger, deciding and writing",
            families.loop_duration.clone(),
        );
        registry.register(
            "windlass_status_writes",
            "Writes of ScaledObject status",
            families.status_writes.clone(),
        );
        registry.register(
            "windlass_scale_writes",
            "Writes to scale targets' scale subresource, by direction",
            families.scale_writes.clone(),
        );
        registry.register(
            "windlass_hpa_writes",
            "Writes to owned HorizontalPodAutoscalers, by operation",
            families.hpa_writes.clone(),
        );
        Self {
            families: Arc::new(families),
            index: Arc::default(),
        }
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        // The index holds only label sets; one left half-updated by a panic is still usable.
        self.index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One query of one trigger's metric, as KEDA's scale handler records it: on success the
    /// value and activity, on failure one more error for the scaler and for the object; the
    /// latency and the sample-duration histogram either way.
    ///
    /// Call it only for real queries: a value served from the metrics cache has no latency.
    pub fn record_sample(
        &self,
        labels: &SampleLabels,
        duration: Duration,
        result: Result<Sample, ErrorCategory>,
    ) {
        let outcome = match result {
            Ok(_) => SUCCESS,
            Err(category) => category.as_str(),
        };
        self.record_query(labels, duration, result.ok(), outcome);
    }

    /// A failed query whose category is no longer known because fallback replaced it: counted
    /// as an error, with `result="fallback"` in the histogram, and `served` (the fallback
    /// value, if any) as the metric value, as KEDA records the value after fallback.
    pub fn record_sample_fallback(
        &self,
        labels: &SampleLabels,
        duration: Duration,
        served: Option<f64>,
    ) {
        self.record_query(labels, duration, None, FALLBACK);
        if let Some(value) = served {
            self.set_metric_value(labels, value);
        }
    }

    fn record_query(
        &self,
        labels: &SampleLabels,
        duration: Duration,
        sample: Option<Sample>,
        outcome: &'static str,
    ) {
        let keda = labels.keda();
        let histogram = labels.duration(outcome);
        let families = &self.families;
        families
            .scaler_latency
            .get_or_create(&keda)
            .set(duration.as_secs_f64());
        families
            .sample_duration
            .get_or_create(&histogram)
            .observe(duration.as_secs_f64());
        let object = ObjectLabels {
            namespace: labels.namespace.clone(),
            scaledObject: labels.scaled_object.clone(),
        };
        match sample {
            Some(sample) => {
                families.scaler_value.get_or_create(&keda).set(sample.value);
                families
                    .scaler_active
                    .get_or_create(&keda)
                    .set(i64::from(sample.active));
                // KEDA exports the error counters at 0 once a scaler has been queried.
                drop(families.scaler_errors.get_or_create(&keda));
                drop(families.scaled_object_errors.get_or_create(&object));
            }
            None => {
                families.scaler_errors.get_or_create(&keda).inc();
                families.scaled_object_errors.get_or_create(&object).inc();
            }
        }
        let mut index = self.index();
        let series = index.series.entry(labels.object()).or_default();
        series.scaler.insert(keda);
        series.sample_duration.insert(histogram);
    }

    /// The value the HPA is served for a metric when it does not come from a fresh sample, e.g.
    /// a fallback value while the scaler fails (KEDA records the value after fallback).
    pub fn set_metric_value(&self, labels: &SampleLabels, value: f64) {
        let keda = labels.keda();
        self.families.scaler_value.get_or_create(&keda).set(value);
        self.index()
            .series
            .entry(labels.object())
            .or_default()
            .scaler
            .insert(keda);
    }

    /// Activity without a sample: KEDA marks cpu/memory triggers always active.
    pub fn set_scaler_active(&self, labels: &SampleLabels, active: bool) {
        let keda = labels.keda();
        self.families
            .scaler_active
            .get_or_create(&keda)
            .set(i64::from(active));
        self.index()
            .series
            .entry(labels.object())
            .or_default()
            .scaler
            .insert(keda);
    }

    /// The `scalingModifiers` formula's result, under KEDA's `composite-metric` scaler at trigger
    /// index 0; active when the value exceeds the modifiers' activation target.
    pub fn record_composite(
        &self,
        namespace: &str,
        scaled_object: &str,
        metric: &str,
        value: f64,
        active: bool,
    ) {
        let labels = SampleLabels {
            namespace: namespace.to_owned(),
            scaled_object: scaled_object.to_owned(),
            trigger_index: 0,
            trigger_type: COMPOSITE_SCALER.to_owned(),
            trigger_name: None,
            metric: metric.to_owned(),
        };
        self.set_metric_value(&labels, value);
        self.set_scaler_active(&labels, active);
    }

    /// An error of the object as a whole (its scalers could not be built, its target not read).
    pub fn record_scaled_object_error(&self, namespace: &str, scaled_object: &str) {
        self.families
            .scaled_object_errors
            .get_or_create(&object_labels(namespace, scaled_object))
            .inc();
    }

    /// Whether the object is paused (`autoscaling.keda.sh/paused*` annotations).
    pub fn set_paused(&self, namespace: &str, scaled_object: &str, paused: bool) {
        self.families
            .scaled_object_paused
            .get_or_create(&object_labels(namespace, scaled_object))
            .set(i64::from(paused));
    }

    /// Counts the object and its trigger types in KEDA's `*_registered_total` gauges.
    /// Idempotent: calling it again with the same triggers changes nothing; with other
    /// triggers it moves the counts and drops the object's per-trigger series, which would
    /// otherwise keep reporting triggers that no longer exist.
    pub fn register_scaled_object(
        &self,
        namespace: &str,
        scaled_object: &str,
        trigger_types: &[&str],
    ) {
        let key = (namespace.to_owned(), scaled_object.to_owned());
        let types: Vec<String> = trigger_types.iter().map(|&t| t.to_owned()).collect();
        let mut index = self.index();
        match index.registered.get(&key) {
            Some(previous) if *previous == types => return,
            Some(previous) => {
                for trigger_type in previous {
                    self.trigger_count(trigger_type).dec();
                }
                let series = index.series.remove(&key);
                self.remove_trigger_series(series);
            }
            None => {
                self.families
                    .resource_registered
                    .get_or_create(&resource_labels(namespace))
                    .inc();
            }
        }
        for trigger_type in &types {
            self.trigger_count(trigger_type).inc();
        }
        index.registered.insert(key, types);
    }

    fn trigger_count(&self, trigger_type: &str) -> Gauge {
        self.families
            .trigger_registered
            .get_or_create_owned(&TriggerTypeLabels {
                r#type: trigger_type.to_owned(),
            })
    }

    fn remove_trigger_series(&self, series: Option<ObjectSeries>) {
        let Some(series) = series else { return };
        let families = &self.families;
        for labels in &series.scaler {
            families.scaler_value.remove(labels);
            families.scaler_latency.remove(labels);
            families.scaler_active.remove(labels);
            families.scaler_errors.remove(labels);
        }
        for labels in &series.sample_duration {
            families.sample_duration.remove(labels);
        }
    }

    /// Removes every series of a deleted object and takes it out of the registered counts.
    pub fn forget_scaled_object(&self, namespace: &str, scaled_object: &str) {
        let key = (namespace.to_owned(), scaled_object.to_owned());
        let mut index = self.index();
        let series = index.series.remove(&key);
        self.remove_trigger_series(series);
        if let Some(types) = index.registered.remove(&key) {
            for trigger_type in &types {
                self.trigger_count(trigger_type).dec();
            }
            self.families
                .resource_registered
                .get_or_create(&resource_labels(namespace))
                .dec();
        }
        drop(index);
        let object = object_labels(namespace, scaled_object);
        let families = &self.families;
        families.scaled_object_errors.remove(&object);
        families.scaled_object_paused.remove(&object);
        families.loop_duration.remove(&object);
        families.loop_latency.remove(&LoopLatencyLabels {
            namespace: namespace.to_owned(),
            r#type: SCALED_OBJECT_TYPE,
            resource: scaled_object.to_owned(),
        });
    }

    /// One reconcile; `result` is `Ok` or the error's stable category string.
    pub fn record_reconcile(&self, duration: Duration, result: Result<(), &'static str>) {
        let result = result.err().unwrap_or(SUCCESS);
        self.families
            .reconcile_duration
            .get_or_create(&ResultLabels { result })
            .observe(duration.as_secs_f64());
    }

    /// One pass of an object's scale loop: `lateness` is how far past its due time the pass
    /// started (KEDA's `keda_internal_scale_loop_latency_seconds`), `duration` how long it took.
    pub fn record_scale_loop(
        &self,
        namespace: &str,
        scaled_object: &str,
        lateness: Duration,
        duration: Duration,
    ) {
        self.families
            .loop_latency
            .get_or_create(&LoopLatencyLabels {
                namespace: namespace.to_owned(),
                r#type: SCALED_OBJECT_TYPE,
                resource: scaled_object.to_owned(),
            })
            .set(lateness.as_secs_f64());
        self.families
            .loop_duration
            .get_or_create(&object_labels(namespace, scaled_object))
            .observe(duration.as_secs_f64());
    }

    /// One write of a ScaledObject's status.
    pub fn record_status_write(&self) {
        self.families.status_writes.inc();
    }

    /// One write to a target's scale subresource.
    pub fn record_scale_write(&self, direction: ScaleDirection) {
        self.families
            .scale_writes
            .get_or_create(&DirectionLabels { direction })
            .inc();
    }

    /// One write to an owned HPA.
    pub fn record_hpa_write(&self, operation: HpaOperation) {
        self.families
            .hpa_writes
            .get_or_create(&OperationLabels { operation })
            .inc();
    }

    /// Whether this replica holds the lease `lease_name`, as controller-runtime reports it.
    pub fn set_leader(&self, lease_name: &str, leader: bool) {
        self.families
            .leader
            .get_or_create(&LeaseLabels {
                name: lease_name.to_owned(),
            })
            .set(i64::from(leader));
    }
}

fn object_labels(namespace: &str, scaled_object: &str) -> ObjectLabels {
    ObjectLabels {
        namespace: namespace.to_owned(),
        scaledObject: scaled_object.to_owned(),
    }
}

/// KEDA counts objects without a namespace under `default`.
fn resource_labels(namespace: &str) -> ResourceLabels {
    ResourceLabels {
        r#type: SCALED_OBJECT_RESOURCE,
        namespace: if namespace.is_empty() {
            "default".to_owned()
        } else {
            namespace.to_owned()
        },
    }
}

/// The registry in the OpenMetrics text format, `# EOF` included.
pub fn render(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (Registry, OperatorMetrics) {
        let mut registry = Registry::default();
        let metrics = OperatorMetrics::register(
            &mut registry,
            &BuildInfo {
                version: "1.2.3".into(),
                git_commit: "abc123".into(),
            },
        );
        (registry, metrics)
    }

    fn redis(namespace: &str, name: &str) -> SampleLabels {
        SampleLabels {
            namespace: namespace.into(),
            scaled_object: name.into(),
            trigger_index: 0,
            trigger_type: "redis".into(),
            trigger_name: None,
            metric: "s0-redis-mylist".into(),
        }
    }

    /// The sample lines (no `#` comments) of the rendered registry.
    fn samples(registry: &Registry) -> Vec<String> {
        render(registry)
            .unwrap()
            .lines()
            .filter(|line| !line.starts_with('#'))
            .map(str::to_owned)
            .collect()
    }

    fn lines_of(registry: &Registry, name: &str) -> Vec<String> {
        samples(registry)
            .into_iter()
            .filter(|line| {
                line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} "))
            })
            .collect()
    }

    const KEDA_LABELS: &str = r#"namespace="apps",metric="s0-redis-mylist",scaledObject="worker",scaler="redis",triggerIndex="0",type="scaledobject""#;

    #[test]
    fn a_successful_sample_sets_keda_gauges_and_zero_error_counters() {
        let (registry, metrics) = setup();
        metrics.record_sample(
            &redis("apps", "worker"),
            Duration::from_millis(20),
            Ok(Sample {
                value: 42.0,
                active: true,
            }),
        );
        assert_eq!(
            lines_of(&registry, "keda_scaler_metrics_value"),
            [format!("keda_scaler_metrics_value{{{KEDA_LABELS}}} 42.0")]
        );
        assert_eq!(
            lines_of(&registry, "keda_scaler_metrics_latency_seconds"),
            [format!(
                "keda_scaler_metrics_latency_seconds{{{KEDA_LABELS}}} 0.02"
            )]
        );
        assert_eq!(
            lines_of(&registry, "keda_scaler_active"),
            [format!("keda_scaler_active{{{KEDA_LABELS}}} 1")]
        );
        assert_eq!(
            lines_of(&registry, "keda_scaler_detail_errors_total"),
            [format!(
                "keda_scaler_detail_errors_total{{{KEDA_LABELS}}} 0"
            )]
        );
        assert_eq!(
            lines_of(&registry, "keda_scaled_object_errors_total"),
            [r#"keda_scaled_object_errors_total{namespace="apps",scaledObject="worker"} 0"#]
        );
        assert_eq!(
            lines_of(&registry, "windlass_scaler_sample_duration_seconds_count"),
            [
                r#"windlass_scaler_sample_duration_seconds_count{namespace="apps",scaledObject="worker",triggerIndex="0",type="redis",result="success"} 1"#
            ]
        );
        assert!(
            lines_of(&registry, "windlass_scaler_sample_duration_seconds_bucket").contains(
                &r#"windlass_scaler_sample_duration_seconds_bucket{le="0.025",namespace="apps",scaledObject="worker",triggerIndex="0",type="redis",result="success"} 1"#.to_owned()
            ),
            "{:#?}",
            samples(&registry)
        );
    }

    #[test]
    fn a_failed_sample_counts_errors_by_category_and_keeps_the_last_value() {
        let (registry, metrics) = setup();
        let labels = SampleLabels {
            trigger_name: Some("queue".into()),
            ..redis("apps", "worker")
        };
        metrics.record_sample(&labels, Duration::from_secs(1), Err(ErrorCategory::Timeout));
        metrics.record_sample(&labels, Duration::from_secs(1), Err(ErrorCategory::Timeout));
        let keda = r#"namespace="apps",metric="s0-redis-mylist",scaledObject="worker",scaler="queue",triggerIndex="0",type="scaledobject""#;
        assert_eq!(
            lines_of(&registry, "keda_scaler_detail_errors_total"),
            [format!("keda_scaler_detail_errors_total{{{keda}}} 2")]
        );
        assert_eq!(
            lines_of(&registry, "keda_scaled_object_errors_total"),
            [r#"keda_scaled_object_errors_total{namespace="apps",scaledObject="worker"} 2"#]
        );
        assert_eq!(
            lines_of(&registry, "keda_scaler_metrics_value"),
            Vec::<String>::new()
        );
        assert_eq!(
            lines_of(&registry, "windlass_scaler_sample_duration_seconds_count"),
            [
                r#"windlass_scaler_sample_duration_seconds_count{namespace="apps",scaledObject="worker",triggerIndex="0",type="redis",result="timeout"} 2"#
            ]
        );
    }

    #[test]
    fn a_sample_replaced_by_fallback_counts_as_an_error_and_reports_the_served_value() {
        let (registry, metrics) = setup();
        metrics.record_sample_fallback(
            &redis("apps", "worker"),
            Duration::from_millis(5),
            Some(4.0),
        );
        assert_eq!(
            lines_of(&registry, "keda_scaler_metrics_value"),
            [format!("keda_scaler_metrics_value{{{KEDA_LABELS}}} 4.0")]
        );
        assert_eq!(
            lines_of(&registry, "keda_scaler_detail_errors_total"),
            [format!(
                "keda_scaler_detail_errors_total{{{KEDA_LABELS}}} 1"
            )]
        );
        assert_eq!(
            lines_of(&registry, "windlass_scaler_sample_duration_seconds_count"),
            [
                r#"windlass_scaler_sample_duration_seconds_count{namespace="apps",scaledObject="worker",triggerIndex="0",type="redis",result="fallback"} 1"#
            ]
        );
    }

    #[test]
    fn help_and_type_lines_keep_kedas_names() {
        let (registry, metrics) = setup();
        // prometheus-client leaves out families without series.
        let labels = redis("apps", "worker");
        let ok = Ok(Sample {
            value: 1.0,
            active: true,
        });
        metrics.register_scaled_object("apps", "worker", &["redis"]);
        metrics.record_sample(&labels, Duration::from_millis(1), ok);
        metrics.set_paused("apps", "worker", false);
        metrics.record_scale_loop("apps", "worker", Duration::ZERO, Duration::ZERO);
        metrics.record_reconcile(Duration::ZERO, Ok(()));
        metrics.record_scale_write(ScaleDirection::Down);
        metrics.record_hpa_write(HpaOperation::Delete);
        metrics.set_leader("windlass-operator", false);
        let text = render(&registry).unwrap();
        for expected in [
            "# HELP keda_scaler_metrics_value The current value for each scaler's metric that would be used by the HPA in computing the target average.",
            "# TYPE keda_scaler_metrics_value gauge",
            "# HELP keda_scaler_active Indicates whether a scaler is active (1), or not (0).",
            "# TYPE keda_scaler_detail_errors counter",
            "# TYPE keda_scaled_object_errors counter",
            "# HELP keda_scaled_object_paused Indicates whether a ScaledObject is paused (1), or not (0).",
            "# TYPE keda_trigger_registered_total gauge",
            "# TYPE keda_resource_registered_total gauge",
            "# TYPE keda_internal_scale_loop_latency_seconds gauge",
            "# TYPE keda_build info",
            "# TYPE windlass_scaler_sample_duration_seconds histogram",
            "# TYPE windlass_reconcile_duration_seconds histogram",
            "# TYPE windlass_scale_loop_duration_seconds histogram",
            "# TYPE windlass_status_writes counter",
            "# TYPE windlass_scale_writes counter",
            "# TYPE windlass_hpa_writes counter",
            "# TYPE leader_election_master_status gauge",
        ] {
            assert!(
                text.lines().any(|line| line == expected),
                "missing {expected:?} in\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn build_info_keeps_kedas_labels() {
        let (registry, _metrics) = setup();
        let line = format!(
            r#"keda_build_info{{version="1.2.3",git_commit="abc123",goversion="",goos="{}",goarch="{}"}} 1"#,
            go_os(std::env::consts::OS),
            go_arch(std::env::consts::ARCH)
        );
        assert_eq!(lines_of(&registry, "keda_build_info"), [line]);
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
        assert_eq!(go_os("linux"), "linux");
    }

    #[test]
    fn object_level_series() {
        let (registry, metrics) = setup();
        metrics.set_paused("apps", "worker", true);
        metrics.record_scaled_object_error("apps", "worker");
        metrics.record_scale_loop(
            "apps",
            "worker",
            Duration::from_millis(250),
            Duration::from_millis(40),
        );
        metrics.set_leader("windlass-operator", true);
        assert_eq!(
            lines_of(&registry, "keda_scaled_object_paused"),
            [r#"keda_scaled_object_paused{namespace="apps",scaledObject="worker"} 1"#]
        );
        assert_eq!(
            lines_of(&registry, "keda_scaled_object_errors_total"),
            [r#"keda_scaled_object_errors_total{namespace="apps",scaledObject="worker"} 1"#]
        );
        assert_eq!(
            lines_of(&registry, "keda_internal_scale_loop_latency_seconds"),
            [
                r#"keda_internal_scale_loop_latency_seconds{namespace="apps",type="scaledobject",resource="worker"} 0.25"#
            ]
        );
        assert_eq!(
            lines_of(&registry, "windlass_scale_loop_duration_seconds_sum"),
            [
                r#"windlass_scale_loop_duration_seconds_sum{namespace="apps",scaledObject="worker"} 0.04"#
            ]
        );
        assert_eq!(
            lines_of(&registry, "leader_election_master_status"),
            [r#"leader_election_master_status{name="windlass-operator"} 1"#]
        );
    }

    #[test]
    fn writes_and_reconciles_are_counted_with_bounded_labels() {
        let (registry, metrics) = setup();
        metrics.record_status_write();
        metrics.record_status_write();
        metrics.record_scale_write(ScaleDirection::Up);
        metrics.record_hpa_write(HpaOperation::Create);
        metrics.record_hpa_write(HpaOperation::Update);
        metrics.record_reconcile(Duration::from_millis(3), Ok(()));
        metrics.record_reconcile(Duration::from_millis(3), Err("hpa"));
        assert_eq!(
            lines_of(&registry, "windlass_status_writes_total"),
            ["windlass_status_writes_total 2"]
        );
        assert_eq!(
            lines_of(&registry, "windlass_scale_writes_total"),
            [r#"windlass_scale_writes_total{direction="up"} 1"#]
        );
        let mut hpa = lines_of(&registry, "windlass_hpa_writes_total");
        hpa.sort();
        assert_eq!(
            hpa,
            [
                r#"windlass_hpa_writes_total{operation="create"} 1"#,
                r#"windlass_hpa_writes_total{operation="update"} 1"#
            ]
        );
        let mut reconciles = lines_of(&registry, "windlass_reconcile_duration_seconds_count");
        reconciles.sort();
        assert_eq!(
            reconciles,
            [
                r#"windlass_reconcile_duration_seconds_count{result="hpa"} 1"#,
                r#"windlass_reconcile_duration_seconds_count{result="success"} 1"#
            ]
        );
        assert_eq!(ScaleDirection::between(2, 5), Some(ScaleDirection::Up));
        assert_eq!(ScaleDirection::between(5, 0), Some(ScaleDirection::Down));
        assert_eq!(ScaleDirection::between(3, 3), None);
    }

    #[test]
    fn registered_totals_follow_registrations_idempotently() {
        let (registry, metrics) = setup();
        metrics.register_scaled_object("apps", "worker", &["redis", "cron"]);
        metrics.register_scaled_object("apps", "worker", &["redis", "cron"]);
        metrics.register_scaled_object("apps", "other", &["redis"]);
        let mut triggers = lines_of(&registry, "keda_trigger_registered_total");
        triggers.sort();
        assert_eq!(
            triggers,
            [
                r#"keda_trigger_registered_total{type="cron"} 1"#,
                r#"keda_trigger_registered_total{type="redis"} 2"#
            ]
        );
        assert_eq!(
            lines_of(&registry, "keda_resource_registered_total"),
            [r#"keda_resource_registered_total{type="scaled_object",namespace="apps"} 2"#]
        );

        metrics.forget_scaled_object("apps", "worker");
        let mut triggers = lines_of(&registry, "keda_trigger_registered_total");
        triggers.sort();
        assert_eq!(
            triggers,
            [
                r#"keda_trigger_registered_total{type="cron"} 0"#,
                r#"keda_trigger_registered_total{type="redis"} 1"#
            ]
        );
        assert_eq!(
            lines_of(&registry, "keda_resource_registered_total"),
            [r#"keda_resource_registered_total{type="scaled_object",namespace="apps"} 1"#]
        );
    }

    #[test]
    fn forgetting_an_object_removes_all_its_series_and_only_its_series() {
        let (registry, metrics) = setup();
        let sample = Ok(Sample {
            value: 1.0,
            active: false,
        });
        for name in ["worker", "keeper"] {
            metrics.register_scaled_object("apps", name, &["redis"]);
            metrics.record_sample(&redis("apps", name), Duration::from_millis(5), sample);
            metrics.record_sample(
                &SampleLabels {
                    trigger_index: 1,
                    metric: "s1-redis-other".into(),
                    ..redis("apps", name)
                },
                Duration::from_millis(5),
                Err(ErrorCategory::Connect),
            );
            metrics.set_paused("apps", name, false);
            metrics.record_scale_loop("apps", name, Duration::ZERO, Duration::from_millis(5));
        }

        metrics.forget_scaled_object("apps", "worker");

        let remaining = samples(&registry);
        let mentions_worker: Vec<&String> = remaining
            .iter()
            .filter(|line| {
                line.contains(r#"scaledObject="worker""#) || line.contains(r#"resource="worker""#)
            })
            .collect();
        assert!(mentions_worker.is_empty(), "{mentions_worker:#?}");
        let keeper = |name: &str| {
            remaining
                .iter()
                .filter(|line| line.starts_with(name) && line.contains("keeper"))
                .count()
        };
        assert_eq!(keeper("keda_scaler_metrics_value{"), 1);
        assert_eq!(keeper("keda_scaler_metrics_latency_seconds{"), 2);
        assert_eq!(keeper("keda_scaler_detail_errors_total{"), 2);
        assert_eq!(keeper("keda_scaled_object_paused{"), 1);
        assert_eq!(keeper("windlass_scaler_sample_duration_seconds_count{"), 2);
        assert_eq!(keeper("keda_internal_scale_loop_latency_seconds{"), 1);
    }

    #[test]
    fn changing_an_objects_triggers_drops_its_old_trigger_series() {
        let (registry, metrics) = setup();
        metrics.register_scaled_object("apps", "worker", &["redis"]);
        metrics.record_sample(
            &redis("apps", "worker"),
            Duration::from_millis(5),
            Ok(Sample {
                value: 3.0,
                active: true,
            }),
        );
        metrics.register_scaled_object("apps", "worker", &["kafka"]);
        assert_eq!(
            lines_of(&registry, "keda_scaler_metrics_value"),
            Vec::<String>::new()
        );
        assert_eq!(
            lines_of(&registry, "keda_trigger_registered_total")
                .into_iter()
                .filter(|line| line.ends_with(" 1"))
                .collect::<Vec<_>>(),
            [r#"keda_trigger_registered_total{type="kafka"} 1"#]
        );
    }

    #[test]
    fn composite_metric_uses_kedas_scaler_name() {
        let (registry, metrics) = setup();
        metrics.record_composite("apps", "worker", "composite-metric", 7.5, true);
        assert_eq!(
            lines_of(&registry, "keda_scaler_metrics_value"),
            [
                r#"keda_scaler_metrics_value{namespace="apps",metric="composite-metric",scaledObject="worker",scaler="composite-metric",triggerIndex="0",type="scaledobject"} 7.5"#
            ]
        );
        metrics.forget_scaled_object("apps", "worker");
        assert_eq!(
            lines_of(&registry, "keda_scaler_active"),
            Vec::<String>::new()
        );
    }
}
