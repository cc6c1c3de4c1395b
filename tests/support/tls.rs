//! Certificates made in the test: a CA, a server certificate for 127.0.0.1/localhost and a
//! client certificate, written as PEM files for servers and given as PEM text to clients.
// Test infrastructure: a failure to make certificates should stop the test loudly.
#![allow(clippy::expect_used)]

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};

/// PEM text and the files it was written to.
#[derive(Clone, Debug)]
pub struct Pem {
    pub cert: String,
    pub key: String,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// A test CA and the certificates it signed.
#[derive(Clone, Debug)]
pub struct TestPki {
    pub ca_cert: String,
    pub ca_file: PathBuf,
    pub server: Pem,
    pub client: Pem,
}

impl TestPki {
    /// Makes a fresh CA, a server certificate (127.0.0.1, ::1, localhost) and a client
    /// certificate, and writes them into `dir`.
    pub fn generate(dir: &Path) -> Self {
        let ca_key = KeyPair::generate().expect("generate the CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "windlass test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign the CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf = |name: &str, purpose: ExtendedKeyUsagePurpose, file: &str| {
            let key = KeyPair::generate().expect("generate a key");
            let mut params =
                CertificateParams::new(vec!["localhost".to_owned()]).expect("leaf parameters");
            params
                .subject_alt_names
                .push(SanType::IpAddress("127.0.0.1".parse().expect("an IP")));
            params
                .subject_alt_names
                .push(SanType::IpAddress("::1".parse().expect("an IP")));
            params.distinguished_name.push(DnType::CommonName, name);
            params.extended_key_usages = vec![purpose];
            let cert = params
                .signed_by(&key, &issuer)
                .expect("sign a leaf certificate");
            let pem = Pem {
                cert: cert.pem(),
                key: key.serialize_pem(),
                cert_file: dir.join(format!("{file}.crt")),
                key_file: dir.join(format!("{file}.key")),
            };
            std::fs::write(&pem.cert_file, &pem.cert).expect("write a certificate");
            std::fs::write(&pem.key_file, &pem.key).expect("write a key");
            pem
        };
        let server = leaf(
            "windlass test server",
            ExtendedKeyUsagePurpose::ServerAuth,
            "server",
        );
        let client = leaf(
            "windlass test client",
            ExtendedKeyUsagePurpose::ClientAuth,
            "client",
        );
        let ca_file = dir.join("ca.crt");
        std::fs::write(&ca_file, ca_cert.pem()).expect("write the CA certificate");
        Self {
            ca_cert: ca_cert.pem(),
            ca_file,
            server,
            client,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_ca_and_two_signed_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::generate(dir.path());
        for file in [
            &pki.ca_file,
            &pki.server.cert_file,
            &pki.server.key_file,
            &pki.client.cert_file,
        ] {
            let text = std::fs::read_to_string(file).unwrap();
            assert!(text.starts_with("-----BEGIN"), "{}", file.display());
        }
        assert_ne!(pki.server.cert, pki.client.cert);
    }
}
