//! (being written) `"cron"` triggers.

use std::sync::Arc;

use scaler_core::registry::{ScalerKind, TriggerConfig};
use scaler_core::{ParamErrors, Scaler};

use crate::ScalerContext;

#[derive(Debug)]
pub struct CronScaler;

impl ScalerKind<ScalerContext> for CronScaler {
    const TYPES: &'static [&'static str] = &["cron"];

    fn build(
        _config: &TriggerConfig,
        _context: &ScalerContext,
    ) -> Result<Arc<dyn Scaler>, ParamErrors> {
        todo!()
    }
}
