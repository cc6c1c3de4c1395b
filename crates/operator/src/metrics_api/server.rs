//! The HTTPS server: flags, start-up (certificates, authentication configuration, bind) and
//! the accept loop, HTTP/1.1 and HTTP/2 over tokio-rustls with graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use clap::Args;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::server::ResolvesServerCert;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tracing::{debug, info, warn};

use super::auth::config::{
    self, AuthConfigError, AuthenticationConfig, DEFAULT_EXTRA_HEADER_PREFIXES,
    DEFAULT_GROUP_HEADERS, DEFAULT_USERNAME_HEADERS, PublishedAuthentication, RequestHeaderConfig,
};
use super::auth::{
    AuthSetupError, CacheTtls, DelegatedAuth, KubeAuthorizer, KubeTokenReviewer, PeerIdentity,
    Security,
};
use super::router::{ApiState, router};
use super::source::ExternalMetricSource;
use super::tls::{self, FixedCertResolver, ReloadingCertResolver, TlsError};

/// The external metrics API's flags; `windlass operator` flattens them. Names follow the
/// Kubernetes generic API server's flags where one exists.
#[derive(Clone, Debug, Args)]
pub struct MetricsApiArgs {
    /// Address the external metrics API (HTTPS) listens on; the Service maps 443 to it.
    #[arg(
        long = "metrics-api-bind-address",
        env = "WINDLASS_METRICS_API_BIND_ADDRESS",
        default_value = "0.0.0.0:6443",
        value_name = "ADDRESS"
    )]
    pub bind_address: SocketAddr,

    /// PEM serving certificate (chain); re-read when the file changes. Without it and
    /// --tls-private-key-file a self-signed certificate is generated (development only).
    #[arg(long, env = "WINDLASS_METRICS_API_TLS_CERT_FILE", value_name = "PATH")]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key of --tls-cert-file; re-read when the file changes.
    #[arg(
        long,
        env = "WINDLASS_METRICS_API_TLS_PRIVATE_KEY_FILE",
        value_name = "PATH"
    )]
    pub tls_private_key_file: Option<PathBuf>,

    /// CA bundle of plain client certificates (user = CN, groups = O). Default: the
    /// `client-ca-file` of kube-system/extension-apiserver-authentication.
    #[arg(long, env = "WINDLASS_METRICS_API_CLIENT_CA_FILE", value_name = "PATH")]
    pub client_ca_file: Option<PathBuf>,

    /// CA bundle of the front proxy's (the aggregator's) client certificate. Default: the
    /// `requestheader-*` keys of kube-system/extension-apiserver-authentication.
    #[arg(
        long,
        env = "WINDLASS_METRICS_API_REQUESTHEADER_CLIENT_CA_FILE",
        value_name = "PATH"
    )]
    pub requestheader_client_ca_file: Option<PathBuf>,

    /// Common names the front proxy's certificate may have, comma-separated; empty allows any
    /// certificate signed by --requestheader-client-ca-file.
    #[arg(
        long,
        env = "WINDLASS_METRICS_API_REQUESTHEADER_ALLOWED_NAMES",
        value_delimiter = ',',
        value_name = "NAMES"
    )]
    pub requestheader_allowed_names: Vec<String>,

    /// Headers holding the front proxy's user name, first present wins (with
    /// --requestheader-client-ca-file).
    #[arg(
        long,
        env = "WINDLASS_METRICS_API_REQUESTHEADER_USERNAME_HEADERS",
        value_delimiter = ',',
        default_values_t = DEFAULT_USERNAME_HEADERS.iter().map(|h| (*h).to_owned()),
        value_name = "HEADERS"
    )]
    pub requestheader_username_headers: Vec<String>,

    /// Headers holding the front proxy's user UID (with --requestheader-client-ca-file).
    #[arg(
        long,
        env = "WINDLASS_METRICS_API_REQUESTHEADER_UID_HEADERS",
        value_delimiter = ',',
        value_name = "HEADERS"
    )]
    pub requestheader_uid_headers: Vec<String>,

    /// Headers holding the front proxy's user groups (with --requestheader-client-ca-file).
    #[arg(
        long,
        env = "WINDLASS_METRICS_API_REQUESTHEADER_GROUP_HEADERS",
        value_delimiter = ',',
        default_values_t = DEFAULT_GROUP_HEADERS.iter().map(|h| (*h).to_owned()),
        value_name = "HEADERS"
    )]
    pub requestheader_group_headers: Vec<String>,

    /// Prefixes of headers holding the front proxy's user extras (with
    /// --requestheader-client-ca-file).
    #[arg(
        long,
        env = "WINDLASS_METRICS_API_REQUESTHEADER_EXTRA_HEADERS_PREFIX",
        value_delimiter = ',',
        default_values_t = DEFAULT_EXTRA_HEADER_PREFIXES.iter().map(|h| (*h).to_owned()),
        value_name = "PREFIXES"
    )]
    pub requestheader_extra_headers_prefix: Vec<String>,

    /// Do not read kube-system/extension-apiserver-authentication; use only the flags.
    #[arg(long, env = "WINDLASS_METRICS_API_AUTHENTICATION_SKIP_LOOKUP")]
    pub authentication_skip_lookup: bool,

    /// How long TokenReview results are remembered (Go duration, e.g. 10s; 0 disables).
    #[arg(
        long,
        env = "WINDLASS_METRICS_API_AUTHENTICATION_TOKEN_CACHE_TTL",
        default_value = "10s",
        value_parser = parse_ttl,
        value_name = "DURATION"
    )]
    pub authentication_token_webhook_cache_ttl: Duration,

    /// How long allowing SubjectAccessReview results are remembered.
    #[arg(
        long,
        env = "WINDLASS_METRICS_API_AUTHORIZATION_ALLOWED_CACHE_TTL",
        default_value = "10s",
        value_parser = parse_ttl,
        value_name = "DURATION"
    )]
    pub authorization_webhook_cache_authorized_ttl: Duration,

    /// How long denying SubjectAccessReview results are remembered.
    #[arg(
        long,
        env = "WINDLASS_METRICS_API_AUTHORIZATION_DENIED_CACHE_TTL",
        default_value = "10s",
        value_parser = parse_ttl,
        value_name = "DURATION"
    )]
    pub authorization_webhook_cache_unauthorized_ttl: Duration,

    /// DEVELOPMENT ONLY: serve every request without authentication or authorisation.
    /// Anyone who can reach the port can read every ScaledObject's metrics.
    #[arg(long, env = "WINDLASS_METRICS_API_INSECURE_DISABLE_AUTH")]
    pub metrics_api_insecure_disable_auth: bool,
}

impl Default for MetricsApiArgs {
    fn default() -> Self {
        Self {
            bind_address: SocketAddr::from(([0, 0, 0, 0], 6443)),
            tls_cert_file: None,
            tls_private_key_file: None,
            client_ca_file: None,
            requestheader_client_ca_file: None,
            requestheader_allowed_names: Vec::new(),
            requestheader_username_headers: owned(DEFAULT_USERNAME_HEADERS),
            requestheader_uid_headers: Vec::new(),
            requestheader_group_headers: owned(DEFAULT_GROUP_HEADERS),
            requestheader_extra_headers_prefix: owned(DEFAULT_EXTRA_HEADER_PREFIXES),
            authentication_skip_lookup: false,
            authentication_token_webhook_cache_ttl: Duration::from_secs(10),
            authorization_webhook_cache_authorized_ttl: Duration::from_secs(10),
            authorization_webhook_cache_unauthorized_ttl: Duration::from_secs(10),
            metrics_api_insecure_disable_auth: false,
        }
    }
}

fn owned(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// A non-negative Go duration (`10s`, `1m30s`, `0`).
fn parse_ttl(text: &str) -> Result<Duration, String> {
    let nanos = scaler_core::params::parse_go_duration(text.trim())
        .ok_or_else(|| format!("{text:?} is not a duration such as 10s or 1m"))?;
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| format!("{text:?} is negative"))
}

impl MetricsApiArgs {
    fn cache_ttls(&self) -> CacheTtls {
        CacheTtls {
            token: self.authentication_token_webhook_cache_ttl,
            authorized: self.authorization_webhook_cache_authorized_ttl,
            unauthorized: self.authorization_webhook_cache_unauthorized_ttl,
        }
    }

    /// The authentication configuration the flags alone give.
    pub fn authentication_from_flags(&self) -> Result<AuthenticationConfig, AuthConfigError> {
        let client_ca = match &self.client_ca_file {
            Some(path) => config::read_ca_file(path)?,
            None => Vec::new(),
        };
        let request_header = match &self.requestheader_client_ca_file {
            None => None,
            Some(path) => Some(RequestHeaderConfig {
                client_ca: config::read_ca_file(path)?,
                allowed_names: self
                    .requestheader_allowed_names
                    .iter()
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty())
                    .collect(),
                username_headers: config::header_names(
                    &self.requestheader_username_headers,
                    "--requestheader-username-headers",
                )?,
                uid_headers: config::header_names(
                    &self.requestheader_uid_headers,
                    "--requestheader-uid-headers",
                )?,
                group_headers: config::header_names(
                    &self.requestheader_group_headers,
                    "--requestheader-group-headers",
                )?,
                extra_header_prefixes: config::header_prefixes(
                    &self.requestheader_extra_headers_prefix,
                ),
            }),
        };
        Ok(AuthenticationConfig {
            client_ca,
            request_header,
        })
    }

    /// The security the flags ask for, completed from the cluster's published configuration
    /// and checked against the cluster through `client`.
    pub async fn security(
        &self,
        client: Option<kube::Client>,
    ) -> Result<Security, MetricsApiError> {
        if self.metrics_api_insecure_disable_auth {
            warn!(
                "the external metrics API serves WITHOUT AUTHENTICATION OR AUTHORISATION \
                 (--metrics-api-insecure-disable-auth): for local development only"
            );
            return Ok(Security::Disabled);
        }
        let client = client.ok_or(MetricsApiError::KubeClientRequired)?;
        let mut authentication = self
            .authentication_from_flags()
            .map_err(MetricsApiError::LoadAuthentication)?;
        if !self.authentication_skip_lookup
            && (authentication.client_ca.is_empty() || authentication.request_header.is_none())
            && let Some(published) = PublishedAuthentication::fetch(client.clone())
                .await
                .map_err(MetricsApiError::LoadAuthentication)?
        {
            authentication = authentication.fill_from(published);
        }
        if authentication.request_header.is_none() {
            warn!(
                "no front-proxy CA (requestheader-client-ca-file): requests the kube-apiserver \
                 proxies for the HPA will be refused"
            );
        }
        let gate = DelegatedAuth::new(
            authentication,
            Arc::new(KubeTokenReviewer::new(client.clone())),
            Arc::new(KubeAuthorizer::new(client)),
            self.cache_ttls(),
        )
        .map_err(MetricsApiError::BuildAuthentication)?;
        Ok(Security::Delegated(Arc::new(gate)))
    }
}

/// Why the metrics API could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum MetricsApiError {
    #[error("--tls-cert-file and --tls-private-key-file must be given together")]
    IncompleteTlsFlags,
    #[error("setting up TLS: {0}")]
    SetUpTls(#[from] TlsError),
    #[error("loading the authentication configuration: {0}")]
    LoadAuthentication(#[source] AuthConfigError),
    #[error("building the authenticator: {0}")]
    BuildAuthentication(#[source] AuthSetupError),
    #[error(
        "the metrics API needs a Kubernetes client for TokenReview and SubjectAccessReview \
         (or --metrics-api-insecure-disable-auth for local development)"
    )]
    KubeClientRequired,
    #[error("binding the metrics API to {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("reading the metrics API's bound address: {0}")]
    LocalAddress(#[source] std::io::Error),
}

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish their requests at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A bound, not yet serving, metrics API: tests bind to `127.0.0.1:0` and read
/// [`local_addr`](Self::local_addr) before [`run`](Self::run).
pub struct MetricsApiServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    acceptor: TlsAcceptor,
    router: Router,
    security: Security,
}

impl MetricsApiServer {
    /// Reads certificates and the authentication configuration, and binds.
    pub async fn bind(
        args: &MetricsApiArgs,
        source: Arc<dyn ExternalMetricSource>,
        client: Option<kube::Client>,
    ) -> Result<Self, MetricsApiError> {
        let security = args.security(client).await?;
        Self::bind_with_security(args, source, security).await
    }

    /// Like [`bind`](Self::bind) with the security given (tests pass fake reviewers); the
    /// flags' authentication settings are not read.
    pub async fn bind_with_security(
        args: &MetricsApiArgs,
        source: Arc<dyn ExternalMetricSource>,
        security: Security,
    ) -> Result<Self, MetricsApiError> {
        let certificates: Arc<dyn ResolvesServerCert> =
            match (&args.tls_cert_file, &args.tls_private_key_file) {
                (Some(cert), Some(key)) => {
                    Arc::new(ReloadingCertResolver::new(cert.clone(), key.clone())?)
                }
                (None, None) => {
                    warn!(
                        "no --tls-cert-file/--tls-private-key-file: serving a self-signed \
                         certificate generated at start (development only; the APIService \
                         cannot verify it)"
                    );
                    Arc::new(FixedCertResolver(Arc::new(tls::self_signed()?)))
                }
                _ => return Err(MetricsApiError::IncompleteTlsFlags),
            };
        let client_verifier = match &security {
            Security::Delegated(gate) => gate.client_cert_verifier(),
            Security::Disabled => None,
        };
        let tls_config = tls::server_config(certificates, client_verifier)?;
        let listener = TcpListener::bind(args.bind_address)
            .await
            .map_err(|source| MetricsApiError::Bind {
                address: args.bind_address,
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(MetricsApiError::LocalAddress)?;
        Ok(Self {
            listener,
            local_addr,
            acceptor: TlsAcceptor::from(Arc::new(tls_config)),
            router: router(ApiState::with_security(source, security.clone())),
            security,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` resolves, then lets open connections finish their requests
    /// (for up to ten seconds).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), MetricsApiError> {
        info!(address = %self.local_addr, "external metrics API listening");
        let (stop, stopped) = watch::channel(false);
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(hyper_util::rt::TokioTimer::new());
        builder.http2().timer(hyper_util::rt::TokioTimer::new());
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        connections.spawn(serve_connection(
                            stream,
                            self.acceptor.clone(),
                            builder.clone(),
                            self.router.clone(),
                            self.security.clone(),
                            stopped.clone(),
                        ));
                    }
                    Err(error) => {
                        // Out of file descriptors and the like: back off rather than spin.
                        warn!(%error, "accepting a metrics API connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        drop(self.listener);
        let _ = stop.send(true);
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            connections.abort_all();
        }
        info!("external metrics API stopped");
        Ok(())
    }
}

/// One connection: TLS handshake, the client certificate classified once, then HTTP until
/// the client leaves or the server stops.
async fn serve_connection(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    builder: auto::Builder<TokioExecutor>,
    router: Router,
    security: Security,
    mut stopped: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            debug!(%error, "metrics API TLS handshake failed");
            return;
        }
        Err(_) => {
            debug!("metrics API TLS handshake timed out");
            return;
        }
    };
    let peer = Arc::new(match &security {
        Security::Delegated(gate) => gate.identify_peer(tls.get_ref().1.peer_certificates()),
        Security::Disabled => PeerIdentity::default(),
    });
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(peer.clone());
        router.clone().oneshot(request)
    });
    let connection = builder.serve_connection(TokioIo::new(tls), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                debug!(%error, "metrics API connection ended with an error");
            }
        }
        // The guard `wait_for` returns is not Send; drop it inside.
        () = async { let _ = stopped.wait_for(|stop| *stop).await; } => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// Binds and serves the external metrics API until `shutdown` resolves.
///
/// `client` is needed for the authentication ConfigMap, TokenReview and SubjectAccessReview;
/// without it only `--metrics-api-insecure-disable-auth` can start.
pub async fn serve(
    args: &MetricsApiArgs,
    source: Arc<dyn ExternalMetricSource>,
    client: Option<kube::Client>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), MetricsApiError> {
    MetricsApiServer::bind(args, source, client)
        .await?
        .run(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: MetricsApiArgs,
    }

    fn parse(argv: &[&str]) -> MetricsApiArgs {
        let mut full = vec!["windlass"];
        full.extend_from_slice(argv);
        Cli::try_parse_from(full).expect("valid flags").args
    }

    #[test]
    fn the_defaults_are_kubernetes_generic_api_server_defaults() {
        let parsed = parse(&[]);
        let default = MetricsApiArgs::default();
        assert_eq!(parsed.bind_address, default.bind_address);
        assert_eq!(parsed.bind_address.to_string(), "0.0.0.0:6443");
        assert_eq!(parsed.requestheader_username_headers, ["X-Remote-User"]);
        assert_eq!(parsed.requestheader_group_headers, ["X-Remote-Group"]);
        assert_eq!(
            parsed.requestheader_extra_headers_prefix,
            ["X-Remote-Extra-"]
        );
        assert_eq!(
            parsed.requestheader_username_headers,
            default.requestheader_username_headers
        );
        assert!(parsed.requestheader_uid_headers.is_empty());
        assert_eq!(parsed.cache_ttls(), CacheTtls::default());
        assert_eq!(default.cache_ttls(), CacheTtls::default());
        assert!(!parsed.metrics_api_insecure_disable_auth);
        assert!(!parsed.authentication_skip_lookup);
    }

    #[test]
    fn lists_and_durations_parse() {
        let parsed = parse(&[
            "--metrics-api-bind-address=127.0.0.1:7443",
            "--requestheader-allowed-names=front-proxy-client,aggregator",
            "--authentication-token-webhook-cache-ttl=1m30s",
            "--authorization-webhook-cache-unauthorized-ttl=0",
        ]);
        assert_eq!(parsed.bind_address.port(), 7443);
        assert_eq!(
            parsed.requestheader_allowed_names,
            ["front-proxy-client", "aggregator"]
        );
        assert_eq!(
            parsed.authentication_token_webhook_cache_ttl,
            Duration::from_secs(90)
        );
        assert_eq!(
            parsed.authorization_webhook_cache_unauthorized_ttl,
            Duration::ZERO
        );
        assert!(
            Cli::try_parse_from([
                "windlass",
                "--authorization-webhook-cache-authorized-ttl=-1s"
            ])
            .is_err()
        );
    }

    #[tokio::test]
    async fn security_needs_a_client_unless_disabled() {
        let args = MetricsApiArgs::default();
        assert!(matches!(
            args.security(None).await,
            Err(MetricsApiError::KubeClientRequired)
        ));
        let args = MetricsApiArgs {
            metrics_api_insecure_disable_auth: true,
            ..MetricsApiArgs::default()
        };
        assert!(matches!(args.security(None).await, Ok(Security::Disabled)));
    }

    #[tokio::test]
    async fn half_a_certificate_pair_is_refused() {
        let args = MetricsApiArgs {
            bind_address: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls_cert_file: Some(PathBuf::from("/nonexistent/tls.crt")),
            ..MetricsApiArgs::default()
        };
        let source = Arc::new(super::super::tests::fakes::FakeSource::new());
        assert!(matches!(
            MetricsApiServer::bind_with_security(&args, source, Security::Disabled).await,
            Err(MetricsApiError::IncompleteTlsFlags)
        ));
    }

    #[tokio::test]
    async fn without_files_a_self_signed_certificate_is_served() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let args = MetricsApiArgs {
            bind_address: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..MetricsApiArgs::default()
        };
        let source = Arc::new(super::super::tests::fakes::FakeSource::new());
        let server = MetricsApiServer::bind_with_security(&args, source, Security::Disabled)
            .await
            .expect("binds");
        let address = server.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .tls_danger_accept_invalid_certs(true)
            .build()
            .expect("a client");
        let response = client
            .get(format!("https://{address}/readyz"))
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(15), running)
            .await
            .expect("stops")
            .expect("joins")
            .expect("ran cleanly");
    }
}
