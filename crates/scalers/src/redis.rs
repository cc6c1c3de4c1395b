//! (being written) `"redis", "redis-cluster", "redis-sentinel"` triggers.

use std::sync::Arc;

use scaler_core::registry::{ScalerKind, TriggerConfig};
use scaler_core::{ParamErrors, Scaler};

use crate::ScalerContext;

#[derive(Debug)]
pub struct RedisScaler;

impl ScalerKind<ScalerContext> for RedisScaler {
    const TYPES: &'static [&'static str] = &["redis", "redis-cluster", "redis-sentinel"];

    fn build(
        _config: &TriggerConfig,
        _context: &ScalerContext,
    ) -> Result<Arc<dyn Scaler>, ParamErrors> {
        todo!()
    }
}
