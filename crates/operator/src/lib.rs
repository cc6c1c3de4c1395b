//! Windlass operator library.

pub mod check;
pub mod cli;
pub mod controller;
pub mod crd;
pub mod crds;
pub mod hpa_behavior;
pub mod leader;
pub mod manifest;
pub mod metrics_api;
pub mod operator;
pub mod plan;
pub mod prepare;
pub mod resolve;
pub mod telemetry;
pub mod time;
pub mod validate;
