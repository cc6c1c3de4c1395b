//! An in-memory Kubernetes API server for Windlass's controller tests.
