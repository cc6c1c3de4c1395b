//! Certificates made in the test: CAs, serving and client certificates, and TLS clients.
// Test infrastructure: a failure to make certificates should stop the test loudly.
#![allow(clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate and its key, as PEM text.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Leaf {
    pub fn der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).expect("a PEM certificate")
    }

    /// Writes the pair by renaming fresh files over the old ones, as a Secret volume update
    /// swaps files, so a reader never sees half a certificate.
    pub fn write(&self, cert_file: &Path, key_file: &Path) {
        for (path, text) in [(cert_file, &self.cert_pem), (key_file, &self.key_pem)] {
            let staging = path.with_extension("staging");
            std::fs::write(&staging, text).expect("write a staging file");
            std::fs::rename(&staging, path).expect("rename over the old file");
        }
    }
}

/// A test CA.
pub struct Ca {
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("self-sign the CA");
        Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    pub fn der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).expect("a PEM certificate")
    }

    /// A serving certificate for 127.0.0.1 and localhost.
    pub fn server(&self, common_name: &str) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned()]).expect("server parameters");
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().expect("an IP")));
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client certificate with this CN and these organisations (groups).
    pub fn client(&self, common_name: &str, organisations: &[&str]) -> Leaf {
        // rcgen keeps one value per attribute type: the last organisation wins.
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        for organisation in organisations {
            params
                .distinguished_name
                .push(DnType::OrganizationName, *organisation);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().expect("a key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// A TLS client configuration trusting `server_ca`, presenting `identity` if given.
pub fn client_config(
    server_ca: &Ca,
    identity: Option<&Leaf>,
    alpn_h2: bool,
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server_ca.der()).expect("a valid CA");
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("default versions")
    .with_root_certificates(roots);
    let mut config = match identity {
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![leaf.der()],
                PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("a PEM key"),
            )
            .expect("a client identity"),
        None => builder.with_no_client_auth(),
    };
    if alpn_h2 {
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    }
    config
}

/// A reqwest client over `config`; each client has its own connection pool.
pub fn http_client(config: rustls::ClientConfig) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .tls_info(true)
        .build()
        .expect("a client")
}
