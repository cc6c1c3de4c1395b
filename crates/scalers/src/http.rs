//! HTTP clients shared by TLS settings: every scaler that talks HTTP with the same TLS material
//! uses one client and its connection pool, whatever the ScaledObject.

use std::time::Duration;

use scaler_core::ScalerError;

use crate::connections::SharedConnections;

/// TLS settings that make two HTTP clients differ.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlsOptions {
    /// Skip server certificate verification (`unsafeSsl`).
    pub insecure_skip_verify: bool,
    /// Extra trusted CA certificates (PEM).
    pub ca_pem: Option<String>,
    /// Client certificate and private key (PEM) for mutual TLS.
    pub client_cert_pem: Option<String>,
    pub client_key_pem: Option<String>,
}

/// reqwest clients by [`TlsOptions`].
#[derive(Debug, Default)]
pub struct HttpClients {
    clients: SharedConnections<TlsOptions, reqwest::Client>,
}

impl HttpClients {
    /// The shared client for `tls`; per-request timeouts are set on each request.
    pub async fn client(&self, tls: &TlsOptions) -> Result<reqwest::Client, ScalerError> {
        self.clients
            .get_or_connect(tls, || async { build(tls) })
            .await
    }

    /// How many distinct clients exist.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

fn build(tls: &TlsOptions) -> Result<reqwest::Client, ScalerError> {
    crate::context::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(90))
        .danger_accept_invalid_certs(tls.insecure_skip_verify);
    if let Some(ca) = &tls.ca_pem {
        let certificates = reqwest::Certificate::from_pem_bundle(ca.as_bytes())
            .map_err(|e| ScalerError::metadata(format!("ca: not a PEM certificate bundle: {e}")))?;
        if certificates.is_empty() {
            return Err(ScalerError::metadata("ca: no PEM certificate found"));
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    match (&tls.client_cert_pem, &tls.client_key_pem) {
        (Some(cert), Some(key)) => {
            let identity = reqwest::Identity::from_pem(format!("{cert}\n{key}").as_bytes())
                .map_err(|e| {
                    ScalerError::metadata(format!("cert/key: not a PEM certificate and key: {e}"))
                })?;
            builder = builder.identity(identity);
        }
        (None, None) => {}
        _ => {
            return Err(ScalerError::metadata(
                "cert and key must be given together for TLS client authentication",
            ));
        }
    }
    builder
        .build()
        .map_err(|e| ScalerError::connect(format!("cannot build HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_client_per_tls_setting() {
        crate::context::install_crypto_provider();
        let clients = HttpClients::default();
        let plain = TlsOptions::default();
        let insecure = TlsOptions {
            insecure_skip_verify: true,
            ..TlsOptions::default()
        };
        clients.client(&plain).await.unwrap();
        clients.client(&plain).await.unwrap();
        clients.client(&insecure).await.unwrap();
        assert_eq!(clients.len(), 2);
    }

    #[tokio::test]
    async fn bad_pem_is_a_metadata_error() {
        let clients = HttpClients::default();
        let bad = TlsOptions {
            ca_pem: Some("not a certificate".into()),
            ..TlsOptions::default()
        };
        let error = clients.client(&bad).await.unwrap_err();
        assert_eq!(error.category, scaler_core::ErrorCategory::Metadata);
    }
}
