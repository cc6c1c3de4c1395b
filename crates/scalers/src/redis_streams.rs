//! (being written) `"redis-streams", "redis-cluster-streams", "redis-sentinel-streams"` triggers.

use std::sync::Arc;

use scaler_core::registry::{ScalerKind, TriggerConfig};
use scaler_core::{ParamErrors, Scaler};

use crate::ScalerContext;

#[derive(Debug)]
pub struct RedisStreamsScaler;

impl ScalerKind<ScalerContext> for RedisStreamsScaler {
    const TYPES: &'static [&'static str] = &[
        "redis-streams",
        "redis-cluster-streams",
        "redis-sentinel-streams",
    ];

    fn build(
        _config: &TriggerConfig,
        _context: &ScalerContext,
    ) -> Result<Arc<dyn Scaler>, ParamErrors> {
        todo!()
    }
}
