//! (being written) `"cpu", "memory"` triggers.

use std::sync::Arc;

use scaler_core::registry::{ScalerKind, TriggerConfig};
use scaler_core::{ParamErrors, Scaler};

use crate::ScalerContext;

#[derive(Debug)]
pub struct CpuMemoryScaler;

impl ScalerKind<ScalerContext> for CpuMemoryScaler {
    const TYPES: &'static [&'static str] = &["cpu", "memory"];

    fn build(
        _config: &TriggerConfig,
        _context: &ScalerContext,
    ) -> Result<Arc<dyn Scaler>, ParamErrors> {
        todo!()
    }
}
