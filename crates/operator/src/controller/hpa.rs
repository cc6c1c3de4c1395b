//! The HPA Windlass owns for each ScaledObject (KEDA keda-spec §2.2), built as a pure function.
//! TEMPORARY interface stub; the real builder lands from the `hpa` branch.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use scaler_core::MetricSpec;

use crate::crd::{GroupVersionKindResource, ScaledObject};

pub struct HpaInput<'a> {
    pub scaled_object: &'a ScaledObject,
    pub target: &'a GroupVersionKindResource,
    pub target_name: &'a str,
    pub metric_specs: &'a [MetricSpec],
    pub operator_version: &'a str,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HpaError(String);

pub fn desired_hpa(input: &HpaInput<'_>) -> Result<HorizontalPodAutoscaler, HpaError> {
    let mut hpa = HorizontalPodAutoscaler::default();
    hpa.metadata.name = Some(input.scaled_object.hpa_name());
    Ok(hpa)
}

pub fn needs_update(_desired: &HorizontalPodAutoscaler, _live: &HorizontalPodAutoscaler) -> bool {
    true
}

pub struct MetricNames {
    pub external: Vec<String>,
    pub resource: Vec<String>,
    pub composite: Option<String>,
}

pub fn metric_names(_so: &ScaledObject, _specs: &[MetricSpec]) -> MetricNames {
    MetricNames {
        external: Vec::new(),
        resource: Vec::new(),
        composite: None,
    }
}

pub enum Adoption {
    Owned,
    Adopt,
    Conflict(String),
}

pub fn adoption(_live: &HorizontalPodAutoscaler, _so: &ScaledObject) -> Adoption {
    Adoption::Owned
}
