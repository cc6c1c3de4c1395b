//! Windlass operator library.

pub mod crd;
pub mod crds;
