//! (being written) `"external", "external-push"` triggers.

use std::sync::Arc;

use scaler_core::registry::{ScalerKind, TriggerConfig};
use scaler_core::{ParamErrors, Scaler};

use crate::ScalerContext;

#[derive(Debug)]
pub struct ExternalScaler;

impl ScalerKind<ScalerContext> for ExternalScaler {
    const TYPES: &'static [&'static str] = &["external", "external-push"];

    fn build(
        _config: &TriggerConfig,
        _context: &ScalerContext,
    ) -> Result<Arc<dyn Scaler>, ParamErrors> {
        todo!()
    }
}
