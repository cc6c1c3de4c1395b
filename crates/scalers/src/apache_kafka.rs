//! (being written) `"apache-kafka"` triggers.

use std::sync::Arc;

use scaler_core::registry::{ScalerKind, TriggerConfig};
use scaler_core::{ParamErrors, Scaler};

use crate::ScalerContext;

#[derive(Debug)]
pub struct ApacheKafkaScaler;

impl ScalerKind<ScalerContext> for ApacheKafkaScaler {
    const TYPES: &'static [&'static str] = &["apache-kafka"];

    fn build(
        _config: &TriggerConfig,
        _context: &ScalerContext,
    ) -> Result<Arc<dyn Scaler>, ParamErrors> {
        todo!()
    }
}
