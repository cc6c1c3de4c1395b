//! Windlass operator library.

pub mod check;
pub mod cli;
pub mod crd;
pub mod crds;
pub mod hpa_behavior;
pub mod manifest;
pub mod plan;
pub mod prepare;
pub mod resolve;
pub mod time;
pub mod validate;
