//! Tests of the metrics API: the router in process, then TLS, authentication and
//! authorisation over real sockets.

mod fakes;
mod router;
