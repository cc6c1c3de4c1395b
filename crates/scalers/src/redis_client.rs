//! Redis connections shared by topology, addresses and credentials (being written).

/// Redis connections by connection settings.
#[derive(Debug, Default)]
pub struct RedisClients {}
