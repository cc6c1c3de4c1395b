//! (being written) `prometheus` test servers.
