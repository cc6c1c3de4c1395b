//! TLS serving: the serving certificate, reloaded when its files change, and the server
//! configuration (HTTP/2 and HTTP/1.1 by ALPN, optional client certificates).
//!
//! The certificate files are checked on every handshake with two `stat` calls (modification
//! time, size and inode of each file); a handshake costs far more, and connections from the
//! aggregator are long-lived, so there is no need for a timer or a file watcher. A changed
//! pair is loaded only if the key matches the certificate, so a half-written rotation keeps
//! the old certificate until the second file lands.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tracing::{info, warn};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading the serving certificate {path}: {message}")]
    ReadCertificate { path: PathBuf, message: String },
    #[error("the serving certificate file {path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("reading the serving key {path}: {message}")]
    ReadKey { path: PathBuf, message: String },
    #[error("the serving key {key} does not fit the certificate {certificate}: {source}")]
    KeyMismatch {
        certificate: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    #[error("generating a self-signed serving certificate: {0}")]
    SelfSigned(String),
    #[error("building the TLS server configuration: {0}")]
    ServerConfig(#[source] rustls::Error),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Loads a PEM certificate chain and its PEM private key, checking that they match.
pub fn load_certified_key(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| TlsError::ReadCertificate {
            path: cert_path.to_owned(),
            message: error.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|error| TlsError::ReadKey {
        path: key_path.to_owned(),
        message: error.to_string(),
    })?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|source| TlsError::KeyMismatch {
        certificate: cert_path.to_owned(),
        key: key_path.to_owned(),
        source,
    })
}

/// A certificate for `localhost`, `127.0.0.1`, `::1` and the host's name, made at start when no
/// files are given: fine for development, useless to a client that verifies the server.
pub fn self_signed() -> Result<CertifiedKey, TlsError> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Ok(host) = std::env::var("HOSTNAME")
        && !host.is_empty()
    {
        names.push(host);
    }
    let generated = rcgen::generate_simple_self_signed(names)
        .map_err(|error| TlsError::SelfSigned(error.to_string()))?;
    let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
        .map_err(|error| TlsError::SelfSigned(error.to_owned()))?;
    CertifiedKey::from_der(vec![generated.cert.der().clone()], key, &provider())
        .map_err(|error| TlsError::SelfSigned(error.to_string()))
}

/// What identifies one version of a file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    let metadata = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
    #[cfg(not(unix))]
    let inode = 0;
    Some(FileStamp {
        modified: metadata.modified().ok(),
        len: metadata.len(),
        inode,
    })
}

struct Loaded {
    stamps: (Option<FileStamp>, Option<FileStamp>),
    key: Arc<CertifiedKey>,
}

/// Serves the certificate in a pair of files, re-reading them when they change.
pub struct ReloadingCertResolver {
    cert_path: PathBuf,
    key_path: PathBuf,
    loaded: Mutex<Loaded>,
}

impl std::fmt::Debug for ReloadingCertResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCertResolver")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl ReloadingCertResolver {
    /// Loads the pair now; a bad pair at start is an error, later ones are warnings.
    pub fn new(cert_path: PathBuf, key_path: PathBuf) -> Result<Self, TlsError> {
        let stamps = (stamp(&cert_path), stamp(&key_path));
        let key = Arc::new(load_certified_key(&cert_path, &key_path)?);
        Ok(Self {
            cert_path,
            key_path,
            loaded: Mutex::new(Loaded { stamps, key }),
        })
    }

    /// The current certificate, reloaded first if either file changed.
    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        let stamps = (stamp(&self.cert_path), stamp(&self.key_path));
        let mut loaded = self.loaded.lock().ok()?;
        if loaded.stamps != stamps {
            // Remember the new stamps even on failure: a broken pair is reported once, and
            // the next write to either file triggers another attempt.
            loaded.stamps = stamps;
            match load_certified_key(&self.cert_path, &self.key_path) {
                Ok(key) => {
                    info!(certificate = %self.cert_path.display(), "serving certificate reloaded");
                    loaded.key = Arc::new(key);
                }
                Err(error) => {
                    warn!(%error, "serving certificate changed but could not be loaded; keeping the previous one");
                }
            }
        }
        Some(loaded.key.clone())
    }
}

impl ResolvesServerCert for ReloadingCertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

/// A fixed certificate (the self-signed one).
#[derive(Debug)]
pub struct FixedCertResolver(pub Arc<CertifiedKey>);

impl ResolvesServerCert for FixedCertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// The server configuration: TLS 1.2 and 1.3 with ring, h2 and http/1.1, and client
/// certificates checked by `client_verifier` when there is one.
pub fn server_config(
    certificates: Arc<dyn ResolvesServerCert>,
    client_verifier: Option<Arc<dyn ClientCertVerifier>>,
) -> Result<ServerConfig, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::ServerConfig)?;
    let builder = match client_verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(certificates);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
