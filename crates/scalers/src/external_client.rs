//! gRPC channels to external scalers (KEDA's `externalscaler.ExternalScaler` service), one per
//! address and TLS settings, shared by every `external` / `external-push` trigger that names
//! them, as KEDA pools its connections process-wide.
//!
//! Channels are lazy: building one never connects, the first call does, and a channel whose
//! connection broke reconnects on the next call by itself. So a scaler that restarts costs one
//! failed sample (a `Connect` error), not a rebuilt scaler.
//!
//! TLS is done here rather than by tonic so that `unsafeSsl` (skip verifying the server) can
//! be honoured: rustls with the `ring` provider, the system roots plus `caCert`, the client
//! certificate when both `tlsClientCert` and `tlsClientKey` are given, ALPN `h2`.

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use scaler_core::ScalerError;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tonic::Code;
use tonic::codegen::http::Uri;
use tonic::transport::{Channel, Endpoint};

use crate::connections::SharedConnections;
use crate::nats_client::{parse_certificates, parse_key};

/// Code generated from `proto/externalscaler.proto`: messages, client and server.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    tonic::include_proto!("externalscaler");
}

/// A client of KEDA's external scaler service over a pooled channel.
pub type ExternalScalerClient = proto::external_scaler_client::ExternalScalerClient<Channel>;

/// How long establishing a connection may take before the call fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What identifies a channel: the address and every TLS setting (KEDA's pool key).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ChannelKey {
    /// `scalerAddress`: `host:port` (a `dns:///` prefix is accepted).
    pub address: String,
    pub enable_tls: bool,
    pub unsafe_ssl: bool,
    pub ca_cert: Option<String>,
    pub tls_client_cert: Option<String>,
    pub tls_client_key: Option<String>,
}

impl fmt::Debug for ChannelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The client key is a secret: show only whether there is one.
        f.debug_struct("ChannelKey")
            .field("address", &self.address)
            .field("tls", &self.uses_tls())
            .field("unsafe_ssl", &self.unsafe_ssl)
            .field("ca_cert", &self.ca_cert.is_some())
            .field("client_cert", &self.client_identity().is_some())
            .finish()
    }
}

impl ChannelKey {
    /// TLS when `enableTLS` is set, or implicitly with a CA or a client certificate and key.
    pub fn uses_tls(&self) -> bool {
        self.enable_tls || self.ca_cert.is_some() || self.client_identity().is_some()
    }

    fn client_identity(&self) -> Option<(&str, &str)> {
        match (&self.tls_client_cert, &self.tls_client_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            _ => None,
        }
    }

    /// A digest of the whole key, for query-sharing keys that must not carry secrets.
    pub fn digest(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.hash(&mut hasher);
        hasher.finish()
    }

    fn uri(&self) -> String {
        let address = self
            .address
            .strip_prefix("dns:///")
            .unwrap_or(&self.address);
        format!("http://{address}")
    }
}

/// Channels to external scalers by [`ChannelKey`].
#[derive(Debug, Default)]
pub struct ExternalClients {
    channels: SharedConnections<ChannelKey, Channel>,
}

impl ExternalClients {
    /// A client on the shared channel of `key`, made if there is none yet (without connecting).
    pub async fn client(&self, key: &ChannelKey) -> Result<ExternalScalerClient, ScalerError> {
        let channel = self
            .channels
            .get_or_connect(key, || async { channel(key) })
            .await?;
        Ok(ExternalScalerClient::new(channel))
    }

    /// How many channels exist.
    pub fn len(&self) -> usize {
        self.channels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }
}

/// A lazy channel for `key`.
fn channel(key: &ChannelKey) -> Result<Channel, ScalerError> {
    let endpoint = Endpoint::from_shared(key.uri())
        .map_err(|e| {
            ScalerError::metadata(format!(
                "metadata key `scalerAddress`: {:?} is not a host:port address: {e}",
                key.address
            ))
        })?
        .connect_timeout(CONNECT_TIMEOUT);
    if !key.uses_tls() {
        return Ok(endpoint.connect_lazy());
    }
    let connector = TlsConnector::from(Arc::new(tls_config(key)?));
    let connect = tower::service_fn(move |uri: Uri| tls_connect(uri, connector.clone()));
    Ok(endpoint.connect_with_connector_lazy(connect))
}

async fn tls_connect(
    uri: Uri,
    connector: TlsConnector,
) -> Result<TokioIo<TlsStream<TcpStream>>, std::io::Error> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_owned());
    let host = uri
        .host()
        .ok_or_else(|| invalid("no host in scalerAddress"))?;
    let port = uri
        .port_u16()
        .ok_or_else(|| invalid("no port in scalerAddress"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let tcp = TcpStream::connect((host, port)).await?;
    tcp.set_nodelay(true)?;
    let server_name = ServerName::try_from(host.to_owned())
        .map_err(|e| invalid(&format!("{host} is not a TLS server name: {e}")))?;
    Ok(TokioIo::new(connector.connect(server_name, tcp).await?))
}

/// KEDA's `util.NewTLSConfig`: system roots plus the CA, the client certificate if both halves
/// are given, no verification with `unsafeSsl`.
fn tls_config(key: &ChannelKey) -> Result<ClientConfig, ScalerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ScalerError::connect(format!("TLS setup: {e}")))?;
    let builder = if key.unsafe_ssl {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(
                crate::insecure_tls::AnyServerCertificate::new(provider),
            ))
    } else {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if let Some(ca) = &key.ca_cert {
            for certificate in
                parse_certificates(ca).map_err(|e| ScalerError::metadata(format!("caCert: {e}")))?
            {
                roots.add(certificate).map_err(|e| {
                    ScalerError::metadata(format!("caCert: unusable certificate: {e}"))
                })?;
            }
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match key.client_identity() {
        Some((cert, private_key)) => {
            let chain = parse_certificates(cert)
                .map_err(|e| ScalerError::metadata(format!("tlsClientCert: {e}")))?;
            let private_key = parse_key(private_key)
                .map_err(|e| ScalerError::metadata(format!("tlsClientKey: {e}")))?;
            builder
                .with_client_auth_cert(chain, private_key)
                .map_err(|e| {
                    ScalerError::metadata(format!(
                        "tlsClientCert/tlsClientKey: not a matching certificate and key: {e}"
                    ))
                })?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// A failed call as the policy sees it: unreachable → `Connect`, deadline → `Timeout`, any
/// other status → `Query`.
pub fn status_error(operation: &str, address: &str, status: &tonic::Status) -> ScalerError {
    let message = format!(
        "{operation} on external scaler {address}: {:?}: {}",
        status.code(),
        status.message()
    );
    match status.code() {
        Code::Unavailable => ScalerError::connect(message),
        Code::DeadlineExceeded => ScalerError::timeout(message),
        _ => ScalerError::query(message),
    }
}

/// KEDA's reconnect backoff for push streams: 2 s, doubling to 1 min, back to 2 s on reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    delay: Duration,
}

impl Backoff {
    pub const INITIAL: Duration = Duration::from_secs(2);
    pub const MAX: Duration = Duration::from_secs(60);

    /// The delay to wait now; the next one doubles.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.delay;
        self.delay = (self.delay * 2).min(Self::MAX);
        delay
    }

    pub fn reset(&mut self) {
        self.delay = Self::INITIAL;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            delay: Self::INITIAL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(address: &str) -> ChannelKey {
        ChannelKey {
            address: address.to_owned(),
            enable_tls: false,
            unsafe_ssl: false,
            ca_cert: None,
            tls_client_cert: None,
            tls_client_key: Some("secret-key".to_owned()),
        }
    }

    #[test]
    fn backoff_doubles_to_a_minute_and_resets() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..7).map(|_| backoff.next_delay().as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 60, 60]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_secs(2));
    }

    #[test]
    fn tls_is_implicit_with_a_ca_or_a_full_client_identity() {
        let plain = key("a:1");
        assert!(!plain.uses_tls(), "a key without its certificate is unused");
        let with_ca = ChannelKey {
            ca_cert: Some("ca".into()),
            ..key("a:1")
        };
        assert!(with_ca.uses_tls());
        let with_identity = ChannelKey {
            tls_client_cert: Some("cert".into()),
            ..key("a:1")
        };
        assert!(with_identity.uses_tls());
        assert!(!format!("{with_identity:?}").contains("secret-key"));
        assert_ne!(plain.digest(), with_ca.digest());
    }

    #[tokio::test]
    async fn channels_are_shared_by_address_and_tls_settings() {
        let clients = ExternalClients::default();
        clients.client(&key("127.0.0.1:1")).await.unwrap();
        clients.client(&key("127.0.0.1:1")).await.unwrap();
        assert_eq!(clients.len(), 1);
        clients.client(&key("127.0.0.1:2")).await.unwrap();
        let unsafe_ssl = ChannelKey {
            unsafe_ssl: true,
            enable_tls: true,
            ..key("127.0.0.1:1")
        };
        clients.client(&unsafe_ssl).await.unwrap();
        assert_eq!(clients.len(), 3);
    }

    #[test]
    fn statuses_map_to_categories() {
        use scaler_core::ErrorCategory;
        let cases = [
            (
                tonic::Status::unavailable("refused"),
                ErrorCategory::Connect,
            ),
            (
                tonic::Status::deadline_exceeded("slow"),
                ErrorCategory::Timeout,
            ),
            (tonic::Status::internal("boom"), ErrorCategory::Query),
            (tonic::Status::not_found("no such"), ErrorCategory::Query),
        ];
        for (status, category) in cases {
            let error = status_error("GetMetrics", "a:1", &status);
            assert_eq!(error.category, category, "{status:?}");
            assert!(error.message.contains("GetMetrics on external scaler a:1"));
        }
    }
}
