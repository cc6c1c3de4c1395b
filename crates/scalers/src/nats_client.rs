//! NATS connections shared by servers and credentials (being written).

/// NATS connections by servers and credentials.
#[derive(Debug, Default)]
pub struct NatsClients {}
