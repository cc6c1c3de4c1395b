//! Observability: Prometheus metrics (KEDA's names), health probes and logging.
