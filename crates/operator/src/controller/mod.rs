//! The ScaledObject controller: reconcile (finalizer, pause, target, HPA, status) and the
//! per-object scale loops.

pub mod hpa;
