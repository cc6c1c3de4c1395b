//! (being written) `redis` test servers.
