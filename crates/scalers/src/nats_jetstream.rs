//! (being written) `"nats-jetstream"` triggers.

use std::sync::Arc;

use scaler_core::registry::{ScalerKind, TriggerConfig};
use scaler_core::{ParamErrors, Scaler};

use crate::ScalerContext;

#[derive(Debug)]
pub struct NatsJetStreamScaler;

impl ScalerKind<ScalerContext> for NatsJetStreamScaler {
    const TYPES: &'static [&'static str] = &["nats-jetstream"];

    fn build(
        _config: &TriggerConfig,
        _context: &ScalerContext,
    ) -> Result<Arc<dyn Scaler>, ParamErrors> {
        todo!()
    }
}
