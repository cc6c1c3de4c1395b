//! Authentication and authorisation as a delegated aggregated API server.
//!
//! The kube-apiserver's aggregator proxies the HPA's request to us over TLS with its
//! front-proxy client certificate and names the original user in `X-Remote-User`,
//! `X-Remote-Group` and `X-Remote-Extra-*`. We trust those headers only on a connection whose
//! certificate chains to the front-proxy CA and whose common name is an allowed name. Plain
//! client certificates (CN = user, O = groups) from the client CA and bearer tokens checked
//! by TokenReview are accepted too, in that order, as the generic API server does. The user
//! is then authorised by SubjectAccessReview on the attributes the apiserver would derive
//! ([`request_info`]). Unauthenticated → 401, refused → 403; neither reaches the source.
//!
//! One deliberate difference: the generic API server lets unauthenticated requests through
//! as `system:anonymous` and usually refuses them with 403 after a SubjectAccessReview; we
//! answer 401 without asking anyone, so anonymous traffic costs no API calls.

pub mod config;
pub mod request_info;
pub mod review;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use tracing::debug;
use x509_parser::prelude::{FromDer, X509Certificate};

pub use config::{AuthenticationConfig, RequestHeaderConfig};
pub use request_info::{RequestAttributes, request_attributes};
pub use review::{
    Authorizer, CachedAuthorizer, CachedTokenReviewer, Decision, KubeAuthorizer, KubeTokenReviewer,
    ReviewError, TokenReviewer, UserInfo,
};

use super::status::ApiError;

/// Whether requests are checked at all.
#[derive(Clone)]
pub enum Security {
    /// Everything is let through: development only (`--metrics-api-insecure-disable-auth`).
    Disabled,
    /// The aggregated-API-server model.
    Delegated(Arc<DelegatedAuth>),
}

/// How long reviews are remembered; the generic API server's defaults are 10 s each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheTtls {
    pub token: Duration,
    pub authorized: Duration,
    pub unauthorized: Duration,
}

impl Default for CacheTtls {
    fn default() -> Self {
        Self {
            token: Duration::from_secs(10),
            authorized: Duration::from_secs(10),
            unauthorized: Duration::from_secs(10),
        }
    }
}

/// Why the authentication setup is unusable.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("adding a certificate of the {which} CA bundle to the trust store: {source}")]
    InvalidCaCertificate {
        which: &'static str,
        source: rustls::Error,
    },
    #[error("building the client certificate verifier for the {which} CA bundle: {source}")]
    BuildVerifier {
        which: &'static str,
        source: rustls::server::VerifierBuilderError,
    },
}

/// A client certificate that chains to the front-proxy CA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrontProxyCertificate {
    pub common_name: String,
    /// Whether the common name is in `requestheader-allowed-names` (or the list is empty).
    pub allowed: bool,
}

/// What the connection's client certificate proves; worked out once per connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerIdentity {
    pub front_proxy: Option<FrontProxyCertificate>,
    /// The user a certificate that chains to the client CA names (CN, O).
    pub client_user: Option<UserInfo>,
}

struct FrontProxy {
    config: RequestHeaderConfig,
    verifier: Arc<dyn ClientCertVerifier>,
}

/// The authenticator and authoriser behind [`Security::Delegated`].
pub struct DelegatedAuth {
    front_proxy: Option<FrontProxy>,
    client_ca: Option<Arc<dyn ClientCertVerifier>>,
    /// Accepts either CA, or no certificate, at the TLS layer.
    tls_verifier: Option<Arc<dyn ClientCertVerifier>>,
    tokens: Arc<dyn TokenReviewer>,
    authorizer: Arc<dyn Authorizer>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn root_store(
    certificates: &[CertificateDer<'static>],
    which: &'static str,
) -> Result<Arc<RootCertStore>, AuthSetupError> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates {
        roots
            .add(certificate.clone())
            .map_err(|source| AuthSetupError::InvalidCaCertificate { which, source })?;
    }
    Ok(Arc::new(roots))
}

fn verifier(
    certificates: &[CertificateDer<'static>],
    which: &'static str,
    optional: bool,
) -> Result<Arc<dyn ClientCertVerifier>, AuthSetupError> {
    let builder =
        WebPkiClientVerifier::builder_with_provider(root_store(certificates, which)?, provider());
    let builder = if optional {
        builder.allow_unauthenticated()
    } else {
        builder
    };
    builder
        .build()
        .map_err(|source| AuthSetupError::BuildVerifier { which, source })
}

const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// Members are allowed everything without a review, as the generic API server's default
/// `--authorization-always-allow-groups`; the aggregator's availability check uses it.
const PRIVILEGED_GROUP: &str = "system:masters";

/// Every authenticated user is in `system:authenticated`, as the apiserver's
/// `AuthenticatedGroupAdder` makes it; RBAC's discovery roles are bound to that group.
fn with_authenticated_group(mut user: UserInfo) -> UserInfo {
    if !user
        .groups
        .iter()
        .any(|g| g == AUTHENTICATED_GROUP || g == "system:unauthenticated")
        && user.name != "system:anonymous"
    {
        user.groups.push(AUTHENTICATED_GROUP.to_owned());
    }
    user
}

impl DelegatedAuth {
    /// `tokens` and `authorizer` are wrapped in caches with `ttls`.
    pub fn new(
        config: AuthenticationConfig,
        tokens: Arc<dyn TokenReviewer>,
        authorizer: Arc<dyn Authorizer>,
        ttls: CacheTtls,
    ) -> Result<Self, AuthSetupError> {
        let front_proxy = match config.request_header {
            Some(request_header) if !request_header.client_ca.is_empty() => Some(FrontProxy {
                verifier: verifier(&request_header.client_ca, "requestheader-client-ca", false)?,
                config: request_header,
            }),
            _ => None,
        };
        let client_ca = if config.client_ca.is_empty() {
            None
        } else {
            Some(verifier(&config.client_ca, "client-ca", false)?)
        };
        let mut all_cas = config.client_ca.clone();
        if let Some(front_proxy) = &front_proxy {
            all_cas.extend(front_proxy.config.client_ca.iter().cloned());
        }
        let tls_verifier = if all_cas.is_empty() {
            None
        } else {
            Some(verifier(
                &all_cas,
                "client-ca and requestheader-client-ca",
                true,
            )?)
        };
        Ok(Self {
            front_proxy,
            client_ca,
            tls_verifier,
            tokens: Arc::new(CachedTokenReviewer::new(tokens, ttls.token)),
            authorizer: Arc::new(CachedAuthorizer::new(
                authorizer,
                ttls.authorized,
                ttls.unauthorized,
            )),
        })
    }

    /// The TLS layer's client certificate verifier: certificates of either CA, or none.
    /// `None` when no CA is configured (no client certificates are requested).
    pub fn client_cert_verifier(&self) -> Option<Arc<dyn ClientCertVerifier>> {
        self.tls_verifier.clone()
    }

    /// Classifies the connection's verified certificate chain by the CA it chains to.
    pub fn identify_peer(&self, chain: Option<&[CertificateDer<'static>]>) -> PeerIdentity {
        let Some((end_entity, intermediates)) = chain.and_then(|c| c.split_first()) else {
            return PeerIdentity::default();
        };
        let now = UnixTime::now();
        let chains_to = |verifier: &Arc<dyn ClientCertVerifier>| {
            verifier
                .verify_client_cert(end_entity, intermediates, now)
                .is_ok()
        };
        let Ok((_, certificate)) = X509Certificate::from_der(end_entity.as_ref()) else {
            return PeerIdentity::default();
        };
        let common_name = certificate
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default()
            .to_owned();
        let front_proxy = self
            .front_proxy
            .as_ref()
            .filter(|proxy| chains_to(&proxy.verifier))
            .map(|proxy| FrontProxyCertificate {
                allowed: proxy.config.allowed_names.is_empty()
                    || proxy.config.allowed_names.contains(&common_name),
                common_name: common_name.clone(),
            });
        let client_user = self
            .client_ca
            .as_ref()
            .filter(|verifier| chains_to(verifier) && !common_name.is_empty())
            .map(|_| UserInfo {
                name: common_name.clone(),
                groups: certificate
                    .subject()
                    .iter_organization()
                    .filter_map(|o| o.as_str().ok())
                    .map(str::to_owned)
                    .collect(),
                ..UserInfo::default()
            });
        PeerIdentity {
            front_proxy,
            client_user,
        }
    }

    /// Who is asking: front proxy headers, then the client certificate, then a bearer token.
    pub async fn authenticate(
        &self,
        peer: &PeerIdentity,
        headers: &HeaderMap,
    ) -> Result<UserInfo, ApiError> {
        if let (Some(proxy), Some(certificate)) = (&self.front_proxy, &peer.front_proxy) {
            if !certificate.allowed {
                debug!(
                    common_name = %certificate.common_name,
                    "front-proxy certificate's common name is not in requestheader-allowed-names"
                );
            } else if let Some(user) = user_from_headers(&proxy.config, headers) {
                return Ok(with_authenticated_group(user));
            }
        }
        if let Some(user) = &peer.client_user {
            return Ok(with_authenticated_group(user.clone()));
        }
        if let Some(token) = bearer_token(headers) {
            match self.tokens.review(token).await {
                Ok(Some(user)) => return Ok(with_authenticated_group(user)),
                Ok(None) => debug!("bearer token rejected by TokenReview"),
                Err(error) => tracing::warn!(%error, "bearer token could not be reviewed"),
            }
        }
        Err(ApiError::Unauthenticated)
    }

    /// Whether `user` may do `attributes`.
    pub async fn authorize(
        &self,
        user: &UserInfo,
        attributes: &RequestAttributes,
    ) -> Result<(), ApiError> {
        if user.groups.iter().any(|g| g == PRIVILEGED_GROUP) {
            return Ok(());
        }
        let decision = self
            .authorizer
            .authorize(user, attributes)
            .await
            .map_err(|error| ApiError::AuthorizationFailed(error.to_string()))?;
        if decision.allowed {
            Ok(())
        } else {
            Err(forbidden(user, attributes, &decision.reason))
        }
    }
}

/// The front proxy's user, or `None` when no user-name header is set.
fn user_from_headers(config: &RequestHeaderConfig, headers: &HeaderMap) -> Option<UserInfo> {
    let first = |names: &[axum::http::HeaderName]| {
        names.iter().find_map(|name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        })
    };
    let name = first(&config.username_headers)?;
    let uid = first(&config.uid_headers).unwrap_or_default();
    // Group values are not split on commas: commas are legal in group names.
    let groups = config
        .group_headers
        .iter()
        .flat_map(|name| headers.get_all(name))
        .filter_map(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    let mut extra = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (header_name, value) in headers {
        let lower = header_name.as_str();
        let Some(prefix) = config
            .extra_header_prefixes
            .iter()
            .find(|p| lower.starts_with(p.as_str()))
        else {
            continue;
        };
        let Ok(value) = value.to_str() else {
            continue;
        };
        let key = request_info::percent_decode(&lower[prefix.len()..]);
        extra.entry(key).or_default().push(value.to_owned());
    }
    Some(UserInfo {
        name,
        uid,
        groups,
        extra,
    })
}

/// `Authorization: Bearer <token>`, the scheme case-insensitive.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let mut parts = value.splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The apiserver's 403: `<resource>.<group> is forbidden: User "u" cannot <verb> resource …`.
fn forbidden(user: &UserInfo, attributes: &RequestAttributes, reason: &str) -> ApiError {
    let (sentence, group, resource, name) = match attributes {
        RequestAttributes::NonResource { verb, path } => (
            format!("User {:?} cannot {verb} path {path:?}", user.name),
            String::new(),
            String::new(),
            String::new(),
        ),
        RequestAttributes::Resource {
            verb,
            namespace,
            group,
            resource,
            subresource,
            name,
            ..
        } => {
            let target = if subresource.is_empty() {
                resource.clone()
            } else {
                format!("{resource}/{subresource}")
            };
            let scope = if namespace.is_empty() {
                "at the cluster scope".to_owned()
            } else {
                format!("in the namespace {namespace:?}")
            };
            (
                format!(
                    "User {:?} cannot {verb} resource {target:?} in API group {group:?} {scope}",
                    user.name
                ),
                group.clone(),
                resource.clone(),
                name.clone(),
            )
        }
    };
    let sentence = if reason.is_empty() {
        sentence
    } else {
        format!("{sentence}: {reason}")
    };
    let qualified = match (resource.is_empty(), group.is_empty()) {
        (true, _) => String::new(),
        (false, true) => resource.clone(),
        (false, false) => format!("{resource}.{group}"),
    };
    let message = if qualified.is_empty() {
        format!("forbidden: {sentence}")
    } else if name.is_empty() {
        format!("{qualified} is forbidden: {sentence}")
    } else {
        format!("{qualified} {name:?} is forbidden: {sentence}")
    };
    ApiError::Forbidden {
        message,
        group,
        resource,
        name,
    }
}

/// The middleware in front of every route but the health checks.
pub async fn guard(
    State(gate): State<Arc<DelegatedAuth>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<Arc<PeerIdentity>>()
        .cloned()
        .unwrap_or_default();
    let user = match gate.authenticate(&peer, request.headers()).await {
        Ok(user) => user,
        Err(error) => return error.into_response(),
    };
    let attributes = request_attributes(
        request.method(),
        request.uri().path(),
        request.uri().query(),
    );
    if let Err(error) = gate.authorize(&user, &attributes).await {
        debug!(user = %user.name, ?attributes, %error, "request refused");
        return error.into_response();
    }
    request.extensions_mut().insert(user);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn request_header() -> RequestHeaderConfig {
        RequestHeaderConfig {
            client_ca: Vec::new(),
            allowed_names: Vec::new(),
            username_headers: config::header_names(&["X-Remote-User"], "t").expect("valid"),
            uid_headers: config::header_names(&["X-Remote-Uid"], "t").expect("valid"),
            group_headers: config::header_names(&["X-Remote-Group"], "t").expect("valid"),
            extra_header_prefixes: config::header_prefixes(&["X-Remote-Extra-"]),
        }
    }

    #[test]
    fn the_front_proxy_headers_give_user_uid_groups_and_extras() {
        let mut headers = HeaderMap::new();
        headers.insert("x-remote-user", HeaderValue::from_static("alice"));
        headers.insert("x-remote-uid", HeaderValue::from_static("u-1"));
        headers.append("x-remote-group", HeaderValue::from_static("a,b"));
        headers.append("x-remote-group", HeaderValue::from_static("c"));
        headers.append("x-remote-extra-scopes", HeaderValue::from_static("s1"));
        headers.append("x-remote-extra-scopes", HeaderValue::from_static("s2"));
        headers.append(
            "x-remote-extra-acme.com%2fproject",
            HeaderValue::from_static("p"),
        );
        let user = user_from_headers(&request_header(), &headers).expect("a user");
        assert_eq!(user.name, "alice");
        assert_eq!(user.uid, "u-1");
        assert_eq!(user.groups, ["a,b", "c"]);
        assert_eq!(user.extra["scopes"], ["s1", "s2"]);
        assert_eq!(user.extra["acme.com/project"], ["p"]);

        headers.remove("x-remote-user");
        assert_eq!(user_from_headers(&request_header(), &headers), None);
    }

    #[test]
    fn bearer_tokens_are_read_like_the_apiserver_reads_them() {
        let token = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            bearer_token(&headers).map(str::to_owned)
        };
        assert_eq!(token("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(token("bearer abc extra").as_deref(), Some("abc"));
        assert_eq!(token("Basic abc"), None);
        assert_eq!(token("Bearer"), None);
        assert_eq!(token("Bearer  abc"), None);
    }

    #[test]
    fn authenticated_users_join_system_authenticated_once() {
        let user = with_authenticated_group(UserInfo {
            name: "a".to_owned(),
            ..Default::default()
        });
        assert_eq!(user.groups, [AUTHENTICATED_GROUP]);
        assert_eq!(with_authenticated_group(user.clone()).groups, user.groups);
    }

    #[test]
    fn forbidden_messages_match_the_apiserver() {
        let user = UserInfo {
            name: "bob".to_owned(),
            ..Default::default()
        };
        let error = forbidden(
            &user,
            &request_attributes(
                &axum::http::Method::GET,
                "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/s0-foo",
                None,
            ),
            "",
        );
        assert_eq!(
            error.to_string(),
            "s0-foo.external.metrics.k8s.io is forbidden: User \"bob\" cannot list resource \"s0-foo\" in API group \"external.metrics.k8s.io\" in the namespace \"ns\""
        );
        let error = forbidden(
            &user,
            &request_attributes(&axum::http::Method::GET, "/apis", None),
            "no RBAC policy matched",
        );
        assert_eq!(
            error.to_string(),
            "forbidden: User \"bob\" cannot get path \"/apis\": no RBAC policy matched"
        );
    }
}
