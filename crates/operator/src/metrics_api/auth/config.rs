//! Who may call us with a client certificate, and how the front proxy names its user: the
//! delegated-authentication configuration of an aggregated API server.
//!
//! As in Kubernetes' `DelegatingAuthenticationOptions`, flags win; whatever they leave unset
//! is read from the `kube-system/extension-apiserver-authentication` ConfigMap the
//! kube-apiserver publishes (unless `--authentication-skip-lookup`). A missing ConfigMap is
//! a warning (the cluster has no front proxy configured); any other failure to read it stops
//! the start, because serving without the front-proxy CA would refuse every HPA request.

use std::path::{Path, PathBuf};

use axum::http::HeaderName;
use k8s_openapi::api::core::v1::ConfigMap;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tracing::warn;

/// Where the kube-apiserver publishes its client and front-proxy CAs.
pub const AUTHENTICATION_CONFIGMAP_NAMESPACE: &str = "kube-system";
pub const AUTHENTICATION_CONFIGMAP_NAME: &str = "extension-apiserver-authentication";

/// Kubernetes' defaults for the front-proxy header flags.
pub const DEFAULT_USERNAME_HEADERS: &[&str] = &["X-Remote-User"];
pub const DEFAULT_GROUP_HEADERS: &[&str] = &["X-Remote-Group"];
pub const DEFAULT_EXTRA_HEADER_PREFIXES: &[&str] = &["X-Remote-Extra-"];

/// The delegated-authentication configuration.
#[derive(Clone, Debug, Default)]
pub struct AuthenticationConfig {
    /// CAs of plain client certificates (CN = user, O = groups); empty: none accepted.
    pub client_ca: Vec<CertificateDer<'static>>,
    /// The front proxy (the kube-apiserver's aggregator), if one is configured.
    pub request_header: Option<RequestHeaderConfig>,
}

/// How a front proxy authenticates itself and passes on its user.
#[derive(Clone, Debug)]
pub struct RequestHeaderConfig {
    /// CAs of the proxy's client certificate.
    pub client_ca: Vec<CertificateDer<'static>>,
    /// Common names the proxy's certificate may have; empty allows any.
    pub allowed_names: Vec<String>,
    /// Headers holding the user name; the first present wins.
    pub username_headers: Vec<HeaderName>,
    /// Headers holding the user's UID (Kubernetes 1.32+); the first present wins.
    pub uid_headers: Vec<HeaderName>,
    /// Headers holding groups; every value of each counts.
    pub group_headers: Vec<HeaderName>,
    /// Lower-cased prefixes of headers holding extra attributes (`x-remote-extra-<key>`).
    pub extra_header_prefixes: Vec<String>,
}

/// Why the authentication configuration could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("reading the CA bundle {path}: {source}")]
    ReadCaFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the CA bundle {origin} holds no PEM certificate")]
    EmptyCaBundle { origin: String },
    #[error("parsing the CA bundle {origin}: {message}")]
    ParseCaBundle { origin: String, message: String },
    #[error("header name {name:?} in {origin} is not a valid HTTP header name")]
    InvalidHeaderName { origin: String, name: String },
    #[error(
        "key {key} of ConfigMap {AUTHENTICATION_CONFIGMAP_NAMESPACE}/{AUTHENTICATION_CONFIGMAP_NAME} is not a JSON list of strings: {source}"
    )]
    ParseConfigMapList {
        key: &'static str,
        source: serde_json::Error,
    },
    #[error(
        "reading ConfigMap {AUTHENTICATION_CONFIGMAP_NAMESPACE}/{AUTHENTICATION_CONFIGMAP_NAME}: {0}"
    )]
    ReadConfigMap(#[source] kube::Error),
}

/// Parses every certificate of a PEM bundle; `origin` names it in errors.
pub fn parse_ca_bundle(
    pem: &[u8],
    origin: &str,
) -> Result<Vec<CertificateDer<'static>>, AuthConfigError> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| AuthConfigError::ParseCaBundle {
            origin: origin.to_owned(),
            message: error.to_string(),
        })?;
    if certificates.is_empty() {
        return Err(AuthConfigError::EmptyCaBundle {
            origin: origin.to_owned(),
        });
    }
    Ok(certificates)
}

/// Reads and parses a PEM CA bundle file.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, AuthConfigError> {
    let pem = std::fs::read(path).map_err(|source| AuthConfigError::ReadCaFile {
        path: path.to_owned(),
        source,
    })?;
    parse_ca_bundle(&pem, &path.display().to_string())
}

/// Header names, validated and lower-cased.
pub fn header_names<S: AsRef<str>>(
    names: &[S],
    origin: &str,
) -> Result<Vec<HeaderName>, AuthConfigError> {
    names
        .iter()
        .map(|name| name.as_ref().trim())
        .filter(|name| !name.is_empty())
        .map(|name| {
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                AuthConfigError::InvalidHeaderName {
                    origin: origin.to_owned(),
                    name: name.to_owned(),
                }
            })
        })
        .collect()
}

/// Extra-header prefixes, lower-cased for matching against lower-cased header names.
pub fn header_prefixes<S: AsRef<str>>(prefixes: &[S]) -> Vec<String> {
    prefixes
        .iter()
        .map(|prefix| prefix.as_ref().trim().to_ascii_lowercase())
        .filter(|prefix| !prefix.is_empty())
        .collect()
}

/// What the `extension-apiserver-authentication` ConfigMap says.
#[derive(Clone, Debug, Default)]
pub struct PublishedAuthentication {
    pub client_ca: Option<Vec<CertificateDer<'static>>>,
    pub request_header: Option<RequestHeaderConfig>,
}

fn configmap_list(
    data: &std::collections::BTreeMap<String, String>,
    key: &'static str,
) -> Result<Vec<String>, AuthConfigError> {
    match data.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(text)
            .map_err(|source| AuthConfigError::ParseConfigMapList { key, source }),
    }
}

impl PublishedAuthentication {
    /// Interprets the ConfigMap's data; keys are those the kube-apiserver writes.
    pub fn from_configmap(configmap: &ConfigMap) -> Result<Self, AuthConfigError> {
        let empty = Default::default();
        let data = configmap.data.as_ref().unwrap_or(&empty);
        let origin = |key: &str| {
            format!("{AUTHENTICATION_CONFIGMAP_NAMESPACE}/{AUTHENTICATION_CONFIGMAP_NAME}:{key}")
        };
        let client_ca = data
            .get("client-ca-file")
            .filter(|pem| !pem.trim().is_empty())
            .map(|pem| parse_ca_bundle(pem.as_bytes(), &origin("client-ca-file")))
            .transpose()?;
        let request_header = match data
            .get("requestheader-client-ca-file")
            .filter(|pem| !pem.trim().is_empty())
        {
            None => None,
            Some(pem) => Some(RequestHeaderConfig {
                client_ca: parse_ca_bundle(
                    pem.as_bytes(),
                    &origin("requestheader-client-ca-file"),
                )?,
                allowed_names: configmap_list(data, "requestheader-allowed-names")?,
                username_headers: header_names(
                    &configmap_list(data, "requestheader-username-headers")?,
                    &origin("requestheader-username-headers"),
                )?,
                uid_headers: header_names(
                    &configmap_list(data, "requestheader-uid-headers")?,
                    &origin("requestheader-uid-headers"),
                )?,
                group_headers: header_names(
                    &configmap_list(data, "requestheader-group-headers")?,
                    &origin("requestheader-group-headers"),
                )?,
                extra_header_prefixes: header_prefixes(&configmap_list(
                    data,
                    "requestheader-extra-headers-prefix",
                )?),
            }),
        };
        Ok(Self {
            client_ca,
            request_header,
        })
    }

    /// Reads the ConfigMap; `None` when it does not exist.
    pub async fn fetch(client: kube::Client) -> Result<Option<Self>, AuthConfigError> {
        let api = kube::Api::<ConfigMap>::namespaced(client, AUTHENTICATION_CONFIGMAP_NAMESPACE);
        match api
            .get_opt(AUTHENTICATION_CONFIGMAP_NAME)
            .await
            .map_err(AuthConfigError::ReadConfigMap)?
        {
            Some(configmap) => Ok(Some(Self::from_configmap(&configmap)?)),
            None => {
                warn!(
                    "ConfigMap {AUTHENTICATION_CONFIGMAP_NAMESPACE}/{AUTHENTICATION_CONFIGMAP_NAME} \
                     does not exist: no front-proxy or client-certificate authentication from it"
                );
                Ok(None)
            }
        }
    }
}

impl AuthenticationConfig {
    /// Fills what the flags left unset from the published configuration, field by field as
    /// the Kubernetes generic API server does (the client CA and the whole front-proxy
    /// block are independent).
    pub fn fill_from(mut self, published: PublishedAuthentication) -> Self {
        if self.client_ca.is_empty()
            && let Some(client_ca) = published.client_ca
        {
            self.client_ca = client_ca;
        }
        if self.request_header.is_none() {
            self.request_header = published.request_header;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem(name: &str) -> String {
        let key = rcgen::KeyPair::generate().expect("a key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.self_signed(&key).expect("self-signed").pem()
    }

    #[test]
    fn the_published_configmap_is_read_like_the_apiserver_writes_it() {
        let configmap: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": AUTHENTICATION_CONFIGMAP_NAME, "namespace": "kube-system"},
            "data": {
                "client-ca-file": ca_pem("client"),
                "requestheader-client-ca-file": ca_pem("front-proxy"),
                "requestheader-allowed-names": "[\"front-proxy-client\"]",
                "requestheader-username-headers": "[\"X-Remote-User\"]",
                "requestheader-uid-headers": "[\"X-Remote-Uid\"]",
                "requestheader-group-headers": "[\"X-Remote-Group\"]",
                "requestheader-extra-headers-prefix": "[\"X-Remote-Extra-\"]",
            },
        }))
        .expect("a ConfigMap");
        let published = PublishedAuthentication::from_configmap(&configmap).expect("valid");
        assert_eq!(published.client_ca.map(|c| c.len()), Some(1));
        let header = published.request_header.expect("a front proxy");
        assert_eq!(header.client_ca.len(), 1);
        assert_eq!(header.allowed_names, ["front-proxy-client"]);
        assert_eq!(header.username_headers, ["x-remote-user"]);
        assert_eq!(header.uid_headers, ["x-remote-uid"]);
        assert_eq!(header.group_headers, ["x-remote-group"]);
        assert_eq!(header.extra_header_prefixes, ["x-remote-extra-"]);
    }

    #[test]
    fn flags_win_and_the_configmap_fills_the_rest() {
        let flags = AuthenticationConfig {
            client_ca: parse_ca_bundle(ca_pem("flag").as_bytes(), "flag").expect("a CA"),
            request_header: None,
        };
        let published = PublishedAuthentication {
            client_ca: Some(Vec::new()),
            request_header: Some(RequestHeaderConfig {
                client_ca: parse_ca_bundle(ca_pem("cm").as_bytes(), "cm").expect("a CA"),
                allowed_names: vec!["a".to_owned()],
                username_headers: Vec::new(),
                uid_headers: Vec::new(),
                group_headers: Vec::new(),
                extra_header_prefixes: Vec::new(),
            }),
        };
        let merged = flags.fill_from(published);
        assert_eq!(merged.client_ca.len(), 1, "the flag's CA is kept");
        assert_eq!(
            merged.request_header.map(|h| h.allowed_names),
            Some(vec!["a".to_owned()])
        );
    }

    #[test]
    fn broken_configmap_values_are_errors_that_name_the_key() {
        let configmap: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": AUTHENTICATION_CONFIGMAP_NAME},
            "data": {
                "requestheader-client-ca-file": ca_pem("front-proxy"),
                "requestheader-allowed-names": "front-proxy-client",
            },
        }))
        .expect("a ConfigMap");
        let error = PublishedAuthentication::from_configmap(&configmap).expect_err("not JSON");
        assert!(
            error.to_string().contains("requestheader-allowed-names"),
            "{error}"
        );
        assert!(matches!(
            parse_ca_bundle(b"not pem", "x"),
            Err(AuthConfigError::EmptyCaBundle { .. })
        ));
    }
}
