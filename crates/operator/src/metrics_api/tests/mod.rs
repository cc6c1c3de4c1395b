//! Tests of the metrics API: the router in process, then TLS, authentication and
//! authorisation over real sockets.

pub(super) mod fakes;
mod kube_reviews;
mod pki;
mod router;
mod secure;
