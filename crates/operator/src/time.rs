//! Kubernetes timestamps (jiff, in k8s-openapi) to the engine's chrono times.

use chrono::{DateTime, Utc};

/// The same instant as a chrono time; `None` only outside chrono's range.
pub fn to_chrono(timestamp: &k8s_openapi::jiff::Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(timestamp.subsec_nanosecond()).ok()?;
    DateTime::from_timestamp(timestamp.as_second(), nanos)
}

/// A chrono time as a Kubernetes `Time`, truncated to whole seconds as the API server stores
/// it (so a written value compares equal to the one read back).
pub fn to_k8s(time: DateTime<Utc>) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    let timestamp = k8s_openapi::jiff::Timestamp::from_second(time.timestamp())
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_the_same_instant() {
        let ts: k8s_openapi::jiff::Timestamp = "2026-11-23T10:00:00.5Z".parse().unwrap();
        assert_eq!(
            to_chrono(&ts).unwrap().to_rfc3339(),
            "2026-11-23T10:00:00.500+00:00"
        );
    }
}
