//! (being written) `"prometheus"` triggers.

use std::sync::Arc;

use scaler_core::registry::{ScalerKind, TriggerConfig};
use scaler_core::{ParamErrors, Scaler};

use crate::ScalerContext;

#[derive(Debug)]
pub struct PrometheusScaler;

impl ScalerKind<ScalerContext> for PrometheusScaler {
    const TYPES: &'static [&'static str] = &["prometheus"];

    fn build(
        _config: &TriggerConfig,
        _context: &ScalerContext,
    ) -> Result<Arc<dyn Scaler>, ParamErrors> {
        todo!()
    }
}
