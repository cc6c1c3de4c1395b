//! Load on the external metrics API over real TLS, next to a minimal hyper + rustls server
//! that returns the same bytes, so the ratio shows what routing, authentication (front-proxy
//! certificate and headers, cached authorisation) and rendering cost on this machine.
//!
//! `cargo bench -p windlass-operator --bench metrics_api`. Knobs: `METRICS_API_BENCH_SECONDS`
//! (per scenario, default 3) and `METRICS_API_BENCH_CONCURRENCY` (default 32). Client and
//! servers share the machine, so absolute numbers include the client's cost; compare ratios.
//! Nothing is asserted: this is a measurement, not a test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::oneshot;
use windlass::metrics_api::auth::config::{
    AuthenticationConfig, RequestHeaderConfig, header_names, header_prefixes,
};
use windlass::metrics_api::auth::{
    Authorizer, CacheTtls, Decision, DelegatedAuth, RequestAttributes, ReviewError, Security,
    TokenReviewer, UserInfo,
};
use windlass::metrics_api::{
    ExternalMetricQuery, ExternalMetricSource, MetricSourceError, MetricValue, MetricsApiArgs,
    MetricsApiServer, render_values,
};

const PATH: &str = "/apis/external.metrics.k8s.io/v1beta1/namespaces/bench/s0-redis-mylist?labelSelector=scaledobject.keda.sh%2Fname%3Dbench-so";

/// The warm cache: always the same value.
struct StaticSource(Vec<MetricValue>);

#[async_trait]
impl ExternalMetricSource for StaticSource {
    async fn values(&self, _: &ExternalMetricQuery) -> Result<Vec<MetricValue>, MetricSourceError> {
        Ok(self.0.clone())
    }
}

/// Allows everyone (and is asked once per TTL anyway).
struct AllowAll;

#[async_trait]
impl Authorizer for AllowAll {
    async fn authorize(
        &self,
        _: &UserInfo,
        _: &RequestAttributes,
    ) -> Result<Decision, ReviewError> {
        Ok(Decision {
            allowed: true,
            reason: String::new(),
        })
    }
}

struct NoTokens;

#[async_trait]
impl TokenReviewer for NoTokens {
    async fn review(&self, _: &str) -> Result<Option<UserInfo>, ReviewError> {
        Ok(None)
    }
}

struct Pki {
    ca_der: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key_pem: String,
    server_cert_pem: String,
    front_proxy_ca: CertificateDer<'static>,
    proxy_chain: Vec<CertificateDer<'static>>,
    proxy_key_pem: String,
}

fn ca(name: &str) -> (rcgen::Certificate, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    (cert, Issuer::new(params, key))
}

fn pki() -> Pki {
    let (serving_ca, serving_issuer) = ca("bench serving CA");
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = params.signed_by(&key, &serving_issuer).unwrap();

    let (proxy_ca, proxy_issuer) = ca("bench front-proxy CA");
    let proxy_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "front-proxy-client");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let proxy = params.signed_by(&proxy_key, &proxy_issuer).unwrap();

    Pki {
        ca_der: serving_ca.der().clone(),
        server_chain: vec![server.der().clone()],
        server_key_pem: key.serialize_pem(),
        server_cert_pem: server.pem(),
        front_proxy_ca: proxy_ca.der().clone(),
        proxy_chain: vec![proxy.der().clone()],
        proxy_key_pem: proxy_key.serialize_pem(),
    }
}

fn client(pki: &Pki, h2: bool) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(
        pki.proxy_chain.clone(),
        PrivateKeyDer::from_pem_slice(pki.proxy_key_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    config.alpn_protocols = if h2 {
        vec![b"h2".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .pool_max_idle_per_host(1024)
        .build()
        .unwrap()
}

/// Windlass's server with the front-proxy CA and cached authorisation.
async fn start_windlass(
    pki: &Pki,
    dir: &std::path::Path,
    values: Vec<MetricValue>,
) -> (SocketAddr, oneshot::Sender<()>) {
    std::fs::write(dir.join("tls.crt"), &pki.server_cert_pem).unwrap();
    std::fs::write(dir.join("tls.key"), &pki.server_key_pem).unwrap();
    let gate = DelegatedAuth::new(
        AuthenticationConfig {
            client_ca: Vec::new(),
            request_header: Some(RequestHeaderConfig {
                client_ca: vec![pki.front_proxy_ca.clone()],
                allowed_names: vec!["front-proxy-client".to_owned()],
                username_headers: header_names(&["X-Remote-User"], "bench").unwrap(),
                uid_headers: Vec::new(),
                group_headers: header_names(&["X-Remote-Group"], "bench").unwrap(),
                extra_header_prefixes: header_prefixes(&["X-Remote-Extra-"]),
            }),
        },
        Arc::new(NoTokens),
        Arc::new(AllowAll),
        CacheTtls::default(),
    )
    .unwrap();
    let args = MetricsApiArgs {
        bind_address: "127.0.0.1:0".parse().unwrap(),
        tls_cert_file: Some(dir.join("tls.crt")),
        tls_private_key_file: Some(dir.join("tls.key")),
        ..MetricsApiArgs::default()
    };
    let server = MetricsApiServer::bind_with_security(
        &args,
        Arc::new(StaticSource(values)),
        Security::Delegated(Arc::new(gate)),
    )
    .await
    .unwrap();
    let address = server.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    (address, stop)
}

/// The floor: hyper + rustls with the same client-certificate verification, answering the
/// same bytes without looking at the request.
async fn start_baseline(pki: &Pki, body: Bytes) -> SocketAddr {
    let roots = {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.front_proxy_ca.clone()).unwrap();
        Arc::new(roots)
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
            .allow_unauthenticated()
            .build()
            .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            pki.server_chain.clone(),
            PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |_request| {
                    let body = body.clone();
                    async move {
                        let mut response = hyper::Response::new(Full::new(body));
                        response.headers_mut().insert(
                            "content-type",
                            hyper::header::HeaderValue::from_static("application/json"),
                        );
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    address
}

struct Outcome {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Outcome {
    fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.latencies_us.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        Duration::from_micros(self.latencies_us[index])
    }
}

/// `concurrency` tasks sending requests back to back for `duration`, after a short warm-up.
async fn load(
    client: reqwest::Client,
    url: String,
    concurrency: usize,
    duration: Duration,
) -> Outcome {
    let warm_up = Instant::now() + Duration::from_millis(500);
    let end = warm_up + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            loop {
                let started = Instant::now();
                if started >= end {
                    break;
                }
                let ok = match client
                    .get(&url)
                    .header(
                        "X-Remote-User",
                        "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
                    )
                    .send()
                    .await
                {
                    Ok(response) => {
                        response.status().is_success() && response.bytes().await.is_ok()
                    }
                    Err(_) => false,
                };
                if started >= warm_up {
                    if ok {
                        latencies.push(started.elapsed().as_micros() as u64);
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (latencies, failed) = task.await.unwrap();
        latencies_us.extend(latencies);
        errors += failed;
    }
    latencies_us.sort_unstable();
    Outcome {
        requests: latencies_us.len(),
        errors,
        elapsed: duration,
        latencies_us,
    }
}

fn report(name: &str, outcome: &Outcome) {
    println!(
        "{name:<28} {:>10.0} req/s   p50 {:>8.3} ms   p99 {:>8.3} ms   ({} requests, {} errors)",
        outcome.throughput(),
        outcome.percentile(0.50).as_secs_f64() * 1000.0,
        outcome.percentile(0.99).as_secs_f64() * 1000.0,
        outcome.requests,
        outcome.errors,
    );
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let seconds = env_number("METRICS_API_BENCH_SECONDS", 3);
    let concurrency = env_number("METRICS_API_BENCH_CONCURRENCY", 32) as usize;
    let duration = Duration::from_secs(seconds);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pki = pki();
        let dir = tempfile::tempdir().unwrap();
        let values = vec![MetricValue {
            metric_name: "s0-redis-mylist".to_owned(),
            value: 42.5,
            timestamp: Utc::now(),
        }];
        let body = Bytes::from(render_values(&values, false));
        let (windlass, stop) = start_windlass(&pki, dir.path(), values).await;
        let baseline = start_baseline(&pki, body).await;

        println!(
            "external metrics API over TLS: {concurrency} concurrent clients, {seconds} s per scenario, {} CPUs",
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        );
        for (protocol, h2) in [("HTTP/1.1", false), ("HTTP/2", true)] {
            let ours = load(client(&pki, h2), format!("https://{windlass}{PATH}"), concurrency, duration).await;
            let floor = load(client(&pki, h2), format!("https://{baseline}{PATH}"), concurrency, duration).await;
            report(&format!("windlass {protocol}"), &ours);
            report(&format!("hyper+rustls {protocol}"), &floor);
            println!(
                "{:<28} throughput {:.2}x of the floor, p50 {:.2}x, p99 {:.2}x",
                format!("ratio {protocol}"),
                ours.throughput() / floor.throughput().max(f64::MIN_POSITIVE),
                ours.percentile(0.50).as_secs_f64() / floor.percentile(0.50).as_secs_f64().max(f64::MIN_POSITIVE),
                ours.percentile(0.99).as_secs_f64() / floor.percentile(0.99).as_secs_f64().max(f64::MIN_POSITIVE),
            );
        }
        let _ = stop.send(());
    });
}
