//! Metric names, metric specs and targets, as KEDA hands them to the HPA.
//!
//! KEDA names every external metric `s<trigger index>-<scaler's name>`, where the scaler's name
//! has each of `/ . : % ( )` replaced by `-` (external scalers' names are the exception: they are
//! used verbatim). The HPA may ask for a name in lower case, so names compare case-insensitively.
//! With `scalingModifiers` a single metric named `composite-metric` replaces them all.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The name of the metric that stands for all external metrics when `scalingModifiers` is used.
pub const COMPOSITE_METRIC_NAME: &str = "composite-metric";

/// The characters KEDA's `NormalizeString` replaces with `-`.
const NORMALISED_CHARACTERS: [char; 6] = ['/', '.', ':', '%', '(', ')'];

/// Replaces each of `/ . : % ( )` with `-`, as KEDA does before indexing a metric name.
pub fn normalise(name: &str) -> String {
    name.chars()
        .map(|c| {
            if NORMALISED_CHARACTERS.contains(&c) {
                '-'
            } else {
                c
            }
        })
        .collect()
}

/// A full external metric name as the HPA sees it: `s0-redis-mylist` or `composite-metric`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MetricName(String);

impl MetricName {
    /// `s<index>-<normalised local name>`: how every built-in scaler's metric is named.
    pub fn indexed(index: usize, local_name: &str) -> Self {
        Self(format!("s{index}-{}", normalise(local_name)))
    }

    /// `s<index>-<local name>` without normalising: how external scalers' metrics are named.
    pub fn indexed_verbatim(index: usize, local_name: &str) -> Self {
        Self(format!("s{index}-{local_name}"))
    }

    /// The metric that carries a `scalingModifiers` formula's result.
    pub fn composite() -> Self {
        Self(COMPOSITE_METRIC_NAME.to_owned())
    }

    /// A name taken as it is, for example from an HPA request.
    pub fn from_raw(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `other` names this metric; the HPA may lower-case names (KEDA issue #4954).
    pub fn matches(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }

    /// The name without its `s<index>-` prefix: what an external scaler's `GetMetrics` receives.
    pub fn without_index(&self) -> &str {
        let Some(rest) = self.0.strip_prefix('s') else {
            return &self.0;
        };
        match rest.split_once('-') {
            Some((digits, local))
                if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) =>
            {
                local
            }
            _ => &self.0,
        }
    }
}

impl fmt::Display for MetricName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the HPA compares a metric with its target (`triggers[].metricType`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MetricTargetType {
    /// `desired = ceil(value / target)`: the value is spread over the pods. KEDA's default.
    #[default]
    AverageValue,
    /// `desired = ceil(current × value / target)`.
    Value,
    /// Percent of the pods' resource requests; only cpu and memory triggers accept it.
    Utilization,
}

impl MetricTargetType {
    pub const ALL: [&'static str; 3] = ["AverageValue", "Value", "Utilization"];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AverageValue => "AverageValue",
            Self::Value => "Value",
            Self::Utilization => "Utilization",
        }
    }
}

impl fmt::Display for MetricTargetType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MetricTargetType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "AverageValue" => Ok(Self::AverageValue),
            "Value" => Ok(Self::Value),
            "Utilization" => Ok(Self::Utilization),
            other => Err(format!(
                "metricType {other:?} is not one of AverageValue, Value, Utilization"
            )),
        }
    }
}

/// One external metric a trigger feeds the HPA.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExternalMetric {
    pub name: MetricName,
    /// The HPA target, already rounded to milli precision as KEDA does.
    pub target: f64,
    pub target_type: MetricTargetType,
}

/// A Kubernetes resource a cpu or memory trigger scales on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResourceName {
    Cpu,
    Memory,
}

impl ResourceName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Memory => "memory",
        }
    }
}

/// The target of a cpu or memory trigger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ResourceTarget {
    /// `averageUtilization`, in percent of the pods' requests.
    Utilization(i32),
    /// `averageValue`, a Kubernetes quantity such as `500m` or `512Mi`.
    AverageValue(String),
}

/// A Resource (or, with a container name, ContainerResource) metric of the HPA.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceMetric {
    pub resource: ResourceName,
    pub container: Option<String>,
    pub target: ResourceTarget,
}

/// What a trigger asks the HPA to watch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MetricSpec {
    /// Served by Windlass through the external metrics API.
    External(ExternalMetric),
    /// Read by the HPA from the resource metrics API; Windlass never samples it.
    Resource(ResourceMetric),
}

impl MetricSpec {
    pub fn external(&self) -> Option<&ExternalMetric> {
        match self {
            Self::External(metric) => Some(metric),
            Self::Resource(_) => None,
        }
    }
}

/// Rounds to the 3 decimals a Kubernetes milli-quantity keeps; NaN, ±Inf and negatives become 0.
///
/// KEDA formats values and float targets with 3 decimals before turning them into quantities,
/// and serves negative or non-finite values as 0.
pub fn to_milli_precision(value: f64) -> f64 {
    if !value.is_finite() || value <= 0.0 {
        return 0.0;
    }
    (value * 1000.0).round() / 1000.0
}

/// Renders a value as the canonical Kubernetes quantity KEDA would serve (`7`, `1500m`, `12k`).
pub fn format_quantity(value: f64) -> String {
    let milli = (to_milli_precision(value) * 1000.0).round() as i128;
    if milli % 1000 != 0 {
        return format!("{milli}m");
    }
    let mut units = milli / 1000;
    if units == 0 {
        return "0".to_owned();
    }
    let mut suffix = 0;
    while units % 1000 == 0 && suffix < 6 {
        units /= 1000;
        suffix += 1;
    }
    let suffixes = ["", "k", "M", "G", "T", "P", "E"];
    format!("{units}{}", suffixes[suffix])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexed_names_are_normalised_like_keda() {
        assert_eq!(
            MetricName::indexed(0, "redis-mylist").as_str(),
            "s0-redis-mylist"
        );
        assert_eq!(
            MetricName::indexed(3, "cron-Etc/UTC-a.b:c%d(e)").as_str(),
            "s3-cron-Etc-UTC-a-b-c-d-e-"
        );
        assert_eq!(
            MetricName::indexed_verbatim(1, "a/b.c").as_str(),
            "s1-a/b.c"
        );
    }

    #[test]
    fn names_match_case_insensitively() {
        let name = MetricName::indexed(0, "kafka-MyTopic");
        assert!(name.matches("s0-kafka-mytopic"));
        assert!(!name.matches("s1-kafka-mytopic"));
    }

    #[test]
    fn without_index_strips_only_a_real_prefix() {
        assert_eq!(
            MetricName::indexed_verbatim(12, "metric-a").without_index(),
            "metric-a"
        );
        assert_eq!(MetricName::composite().without_index(), "composite-metric");
        assert_eq!(MetricName::from_raw("sx-foo").without_index(), "sx-foo");
    }

    #[test]
    fn quantities_are_milli_precise_and_never_negative() {
        assert_eq!(format_quantity(7.0), "7");
        assert_eq!(format_quantity(1.5), "1500m");
        assert_eq!(format_quantity(0.0004), "0");
        assert_eq!(format_quantity(-3.0), "0");
        assert_eq!(format_quantity(f64::NAN), "0");
        assert_eq!(format_quantity(12000.0), "12k");
        assert_eq!(format_quantity(2.0005), "2001m");
    }
}
