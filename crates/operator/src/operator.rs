//! `windlass operator`: the controller, the scale loops and the external metrics API in one process.
