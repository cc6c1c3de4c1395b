//! NATS client connections shared by servers, credentials and TLS settings: every
//! `nats-jetstream` trigger in native mode (`natsServerURL`) that names the same servers with
//! the same credentials uses one [`async_nats::Client`], whatever the ScaledObject.
//!
//! The first caller connects; a failed attempt is not remembered (the next sample tries again).
//! Once connected, async-nats reconnects by itself after the server goes away; while it is
//! reconnecting [`NatsClients::client`] still returns the client and the scaler reports the
//! state. A connection the server rejected for its credentials (an `Authorization Violation`
//! after a reconnect, e.g. a rotated password) is dropped and made anew, so the error surfaces
//! as a connect error instead of endless silent reconnects.

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::rustls;
use async_nats::{ConnectErrorKind, ConnectOptions, Event, ServerAddr, ServerError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use scaler_core::ScalerError;

use crate::connections::SharedConnections;
use crate::http::TlsOptions;

/// How a NATS connection authenticates. Secrets never appear in `Debug` output.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub enum NatsAuth {
    /// No credentials (or credentials inside the server URL, `nats://user:pass@host`).
    #[default]
    None,
    UserPassword {
        user: String,
        password: String,
    },
    Token(String),
    /// An nkey seed (`SU…`): the server sends a nonce, the client signs it.
    NkeySeed(String),
    /// The content of a `.creds` file (user JWT and nkey seed), as `nsc` writes it.
    Credentials(String),
}

impl fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

impl NatsAuth {
    /// The kind of credentials, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::UserPassword { .. } => "user/password",
            Self::Token(_) => "token",
            Self::NkeySeed(_) => "nkey",
            Self::Credentials(_) => "credentials",
        }
    }
}

/// Everything that makes two NATS connections differ.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NatsConnectionKey {
    /// Server URLs as written (`nats://host:4222`, `tls://host:4222`, `host:4222`).
    pub servers: Vec<String>,
    pub auth: NatsAuth,
    /// CA (replaces the system roots), client certificate and key; `insecure_skip_verify` is not
    /// used for NATS.
    pub tls: TlsOptions,
}

impl fmt::Debug for NatsConnectionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsConnectionKey")
            .field("servers", &self.servers)
            .field("auth", &self.auth)
            .field("ca", &self.tls.ca_pem.is_some())
            .field("client_cert", &self.tls.client_cert_pem.is_some())
            .finish()
    }
}

impl NatsConnectionKey {
    /// A short digest of the credentials and TLS material, to tell keys apart in query keys
    /// without writing secrets into them.
    pub fn secret_digest(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.auth.hash(&mut hasher);
        self.tls.hash(&mut hasher);
        hasher.finish()
    }

    /// Whether TLS material was given (the connection then requires TLS).
    fn has_tls_material(&self) -> bool {
        self.tls.ca_pem.is_some() || self.tls.client_cert_pem.is_some()
    }
}

/// One shared connection and what its event callback learnt about it.
#[derive(Clone, Debug)]
struct NatsConnection {
    client: async_nats::Client,
    /// Set when the server rejected the credentials after the connection was made.
    auth_rejected: Arc<AtomicBool>,
}

/// NATS connections by servers and credentials.
#[derive(Debug, Default)]
pub struct NatsClients {
    connections: SharedConnections<NatsConnectionKey, NatsConnection>,
}

impl NatsClients {
    /// The shared client for `key`, connecting (within `timeout`) if there is none yet.
    ///
    /// Errors: [`ScalerError::metadata`] for unusable TLS or credential material,
    /// [`ScalerError::connect`] when the servers cannot be reached or refuse the credentials.
    pub async fn client(
        &self,
        key: &NatsConnectionKey,
        timeout: Duration,
    ) -> Result<async_nats::Client, ScalerError> {
        let connection = self
            .connections
            .get_or_connect(key, || connect(key, timeout))
            .await?;
        if !connection.auth_rejected.load(Ordering::SeqCst) {
            return Ok(connection.client);
        }
        // The server refused these credentials on a reconnect: start over, so the caller sees
        // the refusal instead of a client that keeps retrying.
        self.invalidate(key);
        let connection = self
            .connections
            .get_or_connect(key, || connect(key, timeout))
            .await?;
        Ok(connection.client)
    }

    /// Forgets the connection of `key`; the next caller connects anew.
    pub fn invalidate(&self, key: &NatsConnectionKey) {
        self.connections.invalidate(key);
    }

    /// How many distinct connections exist (or are being made).
    pub fn len(&self) -> usize {
        self.connections.len()
    }

    pub fn is_empty(&self) -> bool {
        self.connections.is_empty()
    }
}

/// Parses one server URL as async-nats reads it (`nats://` and port 4222 assumed).
pub fn parse_server(url: &str) -> Result<ServerAddr, String> {
    url.parse::<ServerAddr>().map_err(|e| e.to_string())
}

/// Checks credentials whose format can be checked before connecting.
pub fn check_auth(auth: &NatsAuth) -> Result<(), String> {
    match auth {
        NatsAuth::NkeySeed(seed) => nkeys::KeyPair::from_seed(seed)
            .map(|_| ())
            .map_err(|e| format!("not an nkey seed: {e}")),
        NatsAuth::Credentials(creds) => ConnectOptions::with_credentials(creds)
            .map(|_| ())
            .map_err(|e| format!("not the content of a .creds file: {e}")),
        NatsAuth::None | NatsAuth::UserPassword { .. } | NatsAuth::Token(_) => Ok(()),
    }
}

async fn connect(
    key: &NatsConnectionKey,
    timeout: Duration,
) -> Result<NatsConnection, ScalerError> {
    crate::context::install_crypto_provider();
    let servers = key
        .servers
        .iter()
        .map(|server| {
            parse_server(server)
                .map_err(|e| ScalerError::metadata(format!("natsServerURL {server:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let auth_rejected = Arc::new(AtomicBool::new(false));
    let flag = auth_rejected.clone();
    let mut options = match &key.auth {
        NatsAuth::None => ConnectOptions::new(),
        NatsAuth::UserPassword { user, password } => {
            ConnectOptions::with_user_and_password(user.clone(), password.clone())
        }
        NatsAuth::Token(token) => ConnectOptions::with_token(token.clone()),
        NatsAuth::NkeySeed(seed) => ConnectOptions::with_nkey(seed.clone()),
        NatsAuth::Credentials(creds) => ConnectOptions::with_credentials(creds)
            .map_err(|e| ScalerError::metadata(format!("credentials: {e}")))?,
    };
    options = options
        .name("windlass")
        .connection_timeout(timeout)
        .request_timeout(Some(timeout))
        .event_callback(move |event| {
            let flag = flag.clone();
            async move {
                if let Event::ServerError(ServerError::AuthorizationViolation) = event {
                    flag.store(true, Ordering::SeqCst);
                }
            }
        });
    if key.has_tls_material() {
        options = options
            .tls_client_config(tls_config(&key.tls)?)
            .require_tls(true);
    }
    let client = options.connect(servers).await.map_err(|e| {
        let what = match e.kind() {
            ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => {
                format!(
                    "NATS refused the {} credentials",
                    key.auth.kind().replace("none", "(missing)")
                )
            }
            ConnectErrorKind::Tls => "TLS handshake with NATS failed".to_owned(),
            ConnectErrorKind::TimedOut => "connecting to NATS timed out".to_owned(),
            _ => "cannot connect to NATS".to_owned(),
        };
        ScalerError::connect(format!("{what} at {}: {e}", key.servers.join(",")))
    })?;
    Ok(NatsConnection {
        client,
        auth_rejected,
    })
}

/// A rustls client configuration from PEM text: the CA replaces the system roots (as KEDA's
/// TLS parameters do), the client certificate and key enable mutual TLS.
fn tls_config(tls: &TlsOptions) -> Result<rustls::ClientConfig, ScalerError> {
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca_pem {
        Some(ca) => {
            let certificates =
                parse_certificates(ca).map_err(|e| ScalerError::metadata(format!("ca: {e}")))?;
            for certificate in certificates {
                roots
                    .add(certificate)
                    .map_err(|e| ScalerError::metadata(format!("ca: unusable certificate: {e}")))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ScalerError::connect(format!("TLS setup: {e}")))?
        .with_root_certificates(roots);
    match (&tls.client_cert_pem, &tls.client_key_pem) {
        (Some(cert), Some(key)) => {
            let chain = parse_certificates(cert)
                .map_err(|e| ScalerError::metadata(format!("cert: {e}")))?;
            let key = parse_key(key).map_err(|e| ScalerError::metadata(format!("key: {e}")))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                ScalerError::metadata(format!("cert/key: not a matching certificate and key: {e}"))
            })
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err(ScalerError::metadata(
            "cert and key must be given together for TLS client authentication",
        )),
    }
}

/// Every certificate in a PEM bundle; at least one.
pub fn parse_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
    if certificates.is_empty() {
        return Err("no PEM certificate found".to_owned());
    }
    Ok(certificates)
}

/// A PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn parse_key(pem: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| format!("not a PEM private key: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(auth: NatsAuth) -> NatsConnectionKey {
        NatsConnectionKey {
            servers: vec!["nats://127.0.0.1:1".to_owned()],
            auth,
            tls: TlsOptions::default(),
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let shown = format!(
            "{:?}",
            key(NatsAuth::UserPassword {
                user: "u".into(),
                password: "hunter2".into()
            })
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("user/password"), "{shown}");
        let token = format!("{:?}", key(NatsAuth::Token("s3cret".into())));
        assert!(!token.contains("s3cret"), "{token}");
    }

    #[test]
    fn digests_tell_credentials_apart() {
        let a = key(NatsAuth::Token("a".into()));
        let b = key(NatsAuth::Token("b".into()));
        assert_ne!(a.secret_digest(), b.secret_digest());
        assert_eq!(a.secret_digest(), a.clone().secret_digest());
    }

    #[test]
    fn credential_formats_are_checked() {
        assert!(check_auth(&NatsAuth::NkeySeed("SUxyz".into())).is_err());
        let seed = nkeys::KeyPair::new_user().seed().unwrap();
        assert!(check_auth(&NatsAuth::NkeySeed(seed)).is_ok());
        assert!(check_auth(&NatsAuth::Credentials("not creds".into())).is_err());
        assert!(parse_certificates("nothing").is_err());
        assert!(parse_key("nothing").is_err());
    }

    #[tokio::test]
    async fn refused_connections_are_connect_errors_and_not_remembered() {
        let clients = NatsClients::default();
        // Port 1 on loopback: nothing listens there.
        let error = clients
            .client(&key(NatsAuth::None), Duration::from_secs(2))
            .await
            .unwrap_err();
        assert_eq!(
            error.category,
            scaler_core::ErrorCategory::Connect,
            "{error}"
        );
        assert!(error.message.contains("127.0.0.1:1"), "{error}");
    }

    #[tokio::test]
    async fn bad_tls_material_is_a_metadata_error() {
        let clients = NatsClients::default();
        let mut bad = key(NatsAuth::None);
        bad.tls.ca_pem = Some("not a certificate".into());
        let error = clients
            .client(&bad, Duration::from_secs(2))
            .await
            .unwrap_err();
        assert_eq!(
            error.category,
            scaler_core::ErrorCategory::Metadata,
            "{error}"
        );
    }
}
