//! (being written) `nats` test servers.
