//! Connection security shared by the `kafka` and `apache-kafka` triggers: TLS material, the AWS
//! credentials used by MSK IAM, and the single-valued enum rule both scalers need.
//!
//! The trigger-specific rules (which SASL modes exist, which credentials each needs, whether
//! `sasl`/`tls` may be set in both metadata and the TriggerAuthentication) live in `kafka.rs`
//! and `apache_kafka.rs`; this module holds only what the two read identically.
//!
//! TLS material always comes from the TriggerAuthentication (authParams `ca`, `cert`, `key`,
//! `keyPassword`); the PEM text itself is only checked when a connection is built.
//!
//! AWS credentials for MSK IAM follow KEDA's `GetAwsAuthorization`. With the
//! TriggerAuthentication's `podIdentity.provider: aws` nothing else is checked: the pod identity
//! is used, assuming `podIdentity.roleArn` (with its `externalID`) if set, else authParam
//! `awsRoleArn` if set. Otherwise (no pod identity, or another provider such as the deprecated
//! `aws-eks`): metadata `identityOwner: operator` uses the operator's own identity; otherwise
//! (`pod` or empty) authParam `awsRoleArn` wins, then authParams `awsAccessKeyID` (or
//! `awsAccessKeyId`) with `awsSecretAccessKey` and optional `awsSessionToken`, then metadata
//! `awsAccessKeyID` (or `awsAccessKeyIDFromEnv`) with `awsSecretAccessKeyFromEnv`. These keys
//! are read verbatim (not trimmed), as KEDA reads them.
//!
//! OAuth bearer tokens for `sasl: oauthbearer` (token provider `bearer`) come from
//! [`OAuthTokenSource`]: KEDA's client-credentials flow (`golang.org/x/oauth2/clientcredentials`)
//! redone with `reqwest`, because this build's librdkafka has no libcurl for its own OIDC
//! support, and librdkafka's OIDC would insist on JWT tokens where KEDA takes any token.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use scaler_core::ErrorCategory;
use scaler_core::params::{ParamError, ParamReader, Source, order};
use scaler_core::registry::PodIdentity;
use thiserror::Error;

/// TLS client material from the TriggerAuthentication.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsMaterial {
    /// `ca`: PEM of the certificate authority; absent = the system roots.
    pub ca: Option<String>,
    /// `cert`: PEM client certificate; present exactly when `key` is.
    pub cert: Option<String>,
    /// `key`: PEM client key.
    pub key: Option<String>,
    /// `keyPassword`: decrypts an encrypted `key`.
    pub key_password: Option<String>,
}

impl TlsMaterial {
    /// Reads `ca`, `cert`, `key` and `keyPassword` from authParams.
    pub fn read(reader: &mut ParamReader<'_>) -> Self {
        Self {
            ca: reader.key("ca", order::A).string(),
            cert: reader.key("cert", order::A).string(),
            key: reader.key("key", order::A).string(),
            key_password: reader.key("keyPassword", order::A).string(),
        }
    }
}

/// Whether and how the client speaks TLS to the brokers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Tls {
    /// `tls: disable` (the default).
    #[default]
    Disabled,
    /// `tls: enable`.
    Enabled(TlsMaterial),
}

impl Tls {
    pub fn is_enabled(&self) -> bool {
        matches!(self, Self::Enabled(_))
    }

    /// The client's TLS settings, `None` when TLS is off.
    pub fn settings(&self, skip_verify: bool) -> Option<crate::kafka_client::TlsSettings> {
        match self {
            Self::Disabled => None,
            Self::Enabled(material) => Some(crate::kafka_client::TlsSettings {
                ca: material.ca.clone(),
                cert: material.cert.clone(),
                key: material.key.clone(),
                key_password: material.key_password.clone(),
                skip_verify,
            }),
        }
    }
}

/// How the scaler authenticates to AWS for MSK IAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AwsAuthorization {
    /// `podIdentity.provider: aws` (KEDA's `UsingPodIdentity`): the pod's IRSA or EKS Pod
    /// Identity credentials, assuming `role_arn` when one is given.
    PodIdentity {
        /// `podIdentity.roleArn` if non-empty, else authParam `awsRoleArn` if non-empty (where
        /// KEDA's resolver puts the ServiceAccount's role for `identityOwner: workload`).
        role_arn: Option<String>,
        /// `podIdentity.externalID`, only with `podIdentity.roleArn`.
        external_id: Option<String>,
        /// `podIdentity.identityOwner` (`keda` or `workload`), as written. KEDA has already
        /// turned `workload` into authParam `awsRoleArn`; it is kept to explain a missing role.
        identity_owner: Option<String>,
    },
    /// Metadata `identityOwner: operator`: the credentials of the Windlass operator itself.
    OperatorIdentity,
    /// AuthParam `awsRoleArn`: assume this role.
    Role { role_arn: String },
    /// Static keys, from authParams or (legacy) from metadata and the target's env.
    AccessKey {
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
    },
    /// Metadata `identityOwner` has a value other than `pod` or `operator`: KEDA accepts it and
    /// resolves no credentials, leaving the AWS SDK's default chain.
    Unresolved,
}

fn raw<'a>(values: &'a std::collections::BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    values
        .get(key)
        .map(String::as_str)
        .filter(|value| !value.is_empty())
}

const AWS_CREDENTIALS_HINT: &str =
    "give the TriggerAuthentication `awsRoleArn`, or `awsAccessKeyID` and `awsSecretAccessKey`";

/// KEDA's `GetAwsAuthorization`; errors are recorded on `reader`. `pod_identity` is the
/// trigger's [`TriggerConfig::pod_identity`](scaler_core::registry::TriggerConfig::pod_identity):
/// with provider `aws` the static-credential checks are skipped.
pub fn read_aws_authorization(
    reader: &mut ParamReader<'_>,
    pod_identity: Option<&PodIdentity>,
) -> Option<AwsAuthorization> {
    let params = reader.params();
    if let Some(identity) = pod_identity.filter(|i| i.provider == PodIdentity::AWS) {
        let non_empty = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
        let (role_arn, external_id) = match non_empty(&identity.role_arn) {
            Some(role_arn) => (Some(role_arn), non_empty(&identity.external_id)),
            None => (
                raw(&params.auth_params, "awsRoleArn").map(str::to_owned),
                None,
            ),
        };
        return Some(AwsAuthorization::PodIdentity {
            role_arn,
            external_id,
            identity_owner: identity.identity_owner.clone(),
        });
    }
    match params
        .metadata
        .get("identityOwner")
        .map(String::as_str)
        .unwrap_or("")
    {
        "operator" => return Some(AwsAuthorization::OperatorIdentity),
        "" | "pod" => {}
        _ => return Some(AwsAuthorization::Unresolved),
    }
    let auth = &params.auth_params;
    if let Some(role_arn) = raw(auth, "awsRoleArn") {
        return Some(AwsAuthorization::Role {
            role_arn: role_arn.to_owned(),
        });
    }
    if let Some(access_key_id) = raw(auth, "awsAccessKeyID").or_else(|| raw(auth, "awsAccessKeyId"))
    {
        let Some(secret) = raw(auth, "awsSecretAccessKey") else {
            reader.error(
                ParamError::new("awsSecretAccessKey", "awsSecretAccessKey not found")
                    .with_hint("add parameter `awsSecretAccessKey` to the TriggerAuthentication next to `awsAccessKeyID`"),
            );
            return None;
        };
        return Some(AwsAuthorization::AccessKey {
            access_key_id: access_key_id.to_owned(),
            secret_access_key: secret.to_owned(),
            session_token: raw(auth, "awsSessionToken").map(str::to_owned),
        });
    }
    let from_env = |key: &str| {
        raw(&params.metadata, &format!("{key}FromEnv"))
            .and_then(|var| raw(&params.resolved_env, var))
    };
    let access_key_id =
        raw(&params.metadata, "awsAccessKeyID").or_else(|| from_env("awsAccessKeyID"));
    let Some(access_key_id) = access_key_id else {
        reader.error(
            ParamError::new("awsAccessKeyID", "awsAccessKeyID not found")
                .with_hint(AWS_CREDENTIALS_HINT),
        );
        return None;
    };
    let Some(secret) = from_env("awsSecretAccessKey") else {
        reader.error(
            ParamError::new("awsSecretAccessKey", "awsSecretAccessKey not found")
                .with_hint(AWS_CREDENTIALS_HINT),
        );
        return None;
    };
    Some(AwsAuthorization::AccessKey {
        access_key_id: access_key_id.to_owned(),
        secret_access_key: secret.to_owned(),
        session_token: None,
    })
}

/// Reads an enum parameter that must hold exactly one of `allowed`.
///
/// KEDA checks enums item by item after splitting on commas, so `enable,disable` passes its
/// check and then matches no mode at all; Windlass rejects such a value instead.
pub fn single_enum(
    reader: &mut ParamReader<'_>,
    name: &'static str,
    sources: &'static [Source],
    allowed: &'static [&'static str],
    default: Option<&'static str>,
) -> Option<String> {
    let hint = format!("use exactly one of: {}", allowed.join(", "));
    let mut lookup = reader.key(name, sources).one_of(allowed);
    if let Some(default) = default {
        lookup = lookup.default(default);
    }
    lookup.parse_with(&hint, |value| {
        if value.contains(',') {
            Err("only one value may be given".to_owned())
        } else {
            Ok(value.to_owned())
        }
    })
}

/// Why `sasl: oauthbearer` with `saslTokenProvider: aws_msk_iam` (and `apache-kafka`'s
/// `sasl: aws_msk_iam`) cannot be sampled.
pub const MSK_IAM_UNSUPPORTED: &str = "AWS MSK IAM is not supported by this build of Windlass: \
    its OAUTHBEARER token is an AWS SigV4-presigned `kafka-cluster:Connect` request, and Windlass \
    has no SigV4 signer nor AWS credential resolution (STS AssumeRole, IRSA web identity, EKS \
    Pod Identity) yet";

/// Why `sasl: gssapi` cannot be sampled.
pub const GSSAPI_UNSUPPORTED: &str = "sasl `gssapi` (Kerberos) is not supported by this build \
    of Windlass: its librdkafka is built without Cyrus SASL (rdkafka's `gssapi` feature, which \
    needs libsasl2-dev to build and the sasl2-sys crate), and librdkafka's GSSAPI gets tickets by \
    running `kinit`, with the Kerberos configuration (KRB5_CONFIG) and credential cache shared \
    by the whole process, so a per-trigger `kerberosConfig` could not be honoured";

/// Why `sasl: oauthbearer` with `oauthExtensions` cannot be sampled.
pub const OAUTH_EXTENSIONS_UNSUPPORTED: &str = "sasl `oauthbearer` with `oauthExtensions` is \
    not supported by this build of Windlass: rdkafka 0.39 hands tokens to librdkafka without SASL \
    extensions, and librdkafka's call that takes them is only reachable through unsafe FFI, \
    which Windlass does not use; remove `oauthExtensions` if the broker does not need them";

/// How long librdkafka is told a token without `expires_in` lives. KEDA reuses such a token for
/// ever; librdkafka needs an expiry, asks again at 80% of it, and gets the same token.
const UNBOUNDED_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The shortest lifetime handed to librdkafka, which refuses expired tokens: a token the
/// endpoint says is expired already (`expires_in` ≤ 0) is still tried, as Sarama would try it
/// once, and librdkafka asks for another within the second.
const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(1);

/// The most of a token endpoint's answer that is read, as `golang.org/x/oauth2`.
const MAX_TOKEN_RESPONSE: usize = 1 << 20;

/// OAuth 2 client credentials for SASL/OAUTHBEARER: authParams `username` and `password` as
/// client id and secret, `oauthTokenEndpointUri`, and `scopes`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OAuthClientCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub token_endpoint: String,
    /// Sent space-separated as `scope` (empty when there are none, as KEDA sends it).
    pub scopes: Vec<String>,
}

impl fmt::Debug for OAuthClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClientCredentials")
            .field("client_id", &self.client_id)
            .field("token_endpoint", &self.token_endpoint)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// A bearer token as librdkafka takes it.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken {
    pub value: String,
    /// What librdkafka records as the token's principal: the client id. Brokers read the
    /// principal from the token; librdkafka does not send this one.
    pub principal: String,
    /// When librdkafka should consider the token expired, in milliseconds since the Unix epoch.
    pub lifetime_ms: i64,
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerToken")
            .field("principal", &self.principal)
            .field("lifetime_ms", &self.lifetime_ms)
            .finish_non_exhaustive()
    }
}

/// Why no OAuth token could be had.
#[derive(Debug, Error)]
pub enum TokenError {
    #[error("building the HTTP client for OAuth token requests: {0}")]
    Client(#[source] reqwest::Error),
    #[error("requesting an OAuth token from {endpoint}: {}", error_chain(.source))]
    Request {
        endpoint: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("OAuth token endpoint {endpoint} refused the token request: HTTP {status}{detail}")]
    Refused {
        endpoint: String,
        status: u16,
        /// `: <error>: <error_description>` from an OAuth error answer, or the start of the body.
        detail: String,
    },
    #[error("OAuth token endpoint {endpoint} answered something that is not a token: {reason}")]
    Decode { endpoint: String, reason: String },
    #[error("OAuth token endpoint {endpoint} answered without an access_token")]
    MissingAccessToken { endpoint: String },
    #[error(
        "the OAuth token from {endpoint} has characters SASL/OAUTHBEARER cannot carry (only \
         visible ASCII, space, tab, CR and LF)"
    )]
    InvalidToken { endpoint: String },
    #[error("requesting an OAuth token from {endpoint}: no token within {timeout:?}")]
    Timeout { endpoint: String, timeout: Duration },
    #[error("requesting an OAuth token from {endpoint}: the request task stopped")]
    Worker { endpoint: String },
}

/// An error with its causes, `a: b: c`: reqwest's own message is only "error sending request".
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        let part = next.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = next.source();
    }
    text
}

impl TokenError {
    /// The category the policy acts on: unreachable or refusing endpoints are `connect`, odd
    /// answers `query`, slow ones `timeout`, an unusable endpoint URI `metadata`.
    pub fn category(&self) -> ErrorCategory {
        match self {
            Self::Request { source, .. } if source.is_timeout() => ErrorCategory::Timeout,
            Self::Request { source, .. } if source.is_builder() => ErrorCategory::Metadata,
            Self::Client(_) | Self::Request { .. } | Self::Refused { .. } | Self::Worker { .. } => {
                ErrorCategory::Connect
            }
            Self::Decode { .. } | Self::MissingAccessToken { .. } | Self::InvalidToken { .. } => {
                ErrorCategory::Query
            }
            Self::Timeout { .. } => ErrorCategory::Timeout,
        }
    }
}

/// Where the client id and secret travel (`golang.org/x/oauth2`'s `AuthStyleInHeader` and
/// `AuthStyleInParams`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AuthStyle {
    /// HTTP basic auth of the URL-escaped id and secret.
    Header,
    /// `client_id` and `client_secret` form fields.
    Params,
}

#[derive(Clone)]
struct CachedToken {
    value: String,
    fetched: Instant,
    /// From `expires_in`; `None` when the endpoint gave none (the token does not expire).
    lifetime: Option<Duration>,
}

impl CachedToken {
    /// Whether the token may still be handed out at `now`: in the first half of its life, so a
    /// client that gets it has half of it left before librdkafka asks again (at 80%).
    fn reusable(&self, now: Instant) -> bool {
        match self.lifetime {
            None => true,
            Some(lifetime) => now.saturating_duration_since(self.fetched) < lifetime / 2,
        }
    }

    fn bearer(&self, principal: &str, now: Instant, wall_clock: SystemTime) -> BearerToken {
        let remaining = match self.lifetime {
            None => UNBOUNDED_TOKEN_LIFETIME,
            Some(lifetime) => lifetime
                .saturating_sub(now.saturating_duration_since(self.fetched))
                .max(MIN_TOKEN_LIFETIME),
        };
        let expires = (wall_clock + remaining)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        BearerToken {
            value: self.value.clone(),
            principal: principal.to_owned(),
            lifetime_ms: i64::try_from(expires.as_millis()).unwrap_or(i64::MAX),
        }
    }
}

/// OAuth tokens for one set of client credentials, shared by every Kafka client that uses them.
///
/// As KEDA's `clientcredentials` token source: a POST of the form `grant_type=client_credentials`
/// and `scope` to the endpoint, the credentials first as basic auth and, if that attempt fails,
/// as form fields, remembering the way that worked. A token is reused during the first half of
/// its life (KEDA's `oauth2` reuses it until 10 s before expiry; librdkafka asks for a new one
/// at 80% of its life, and should get one).
pub struct OAuthTokenSource {
    credentials: OAuthClientCredentials,
    http: reqwest::Client,
    cache: Mutex<Option<CachedToken>>,
    style: Mutex<Option<AuthStyle>>,
    /// One request at a time: callers arriving meanwhile wait and share its token.
    fetching: tokio::sync::Mutex<()>,
}

impl fmt::Debug for OAuthTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthTokenSource")
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl OAuthTokenSource {
    pub fn new(credentials: OAuthClientCredentials, http: reqwest::Client) -> Self {
        Self {
            credentials,
            http,
            cache: Mutex::default(),
            style: Mutex::default(),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    pub fn credentials(&self) -> &OAuthClientCredentials {
        &self.credentials
    }

    /// The cached token while it is reusable; never waits.
    pub fn cached(&self) -> Option<BearerToken> {
        let now = Instant::now();
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|token| token.reusable(now))
            .map(|token| token.bearer(&self.credentials.client_id, now, SystemTime::now()))
    }

    /// A token: the cached one while reusable, else a new one from the endpoint, within
    /// `timeout` (both auth attempts together).
    pub async fn token(&self, timeout: Duration) -> Result<BearerToken, TokenError> {
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        let _one_at_a_time = self.fetching.lock().await;
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        let token = tokio::time::timeout(timeout, self.fetch())
            .await
            .map_err(|_| TokenError::Timeout {
                endpoint: self.credentials.token_endpoint.clone(),
                timeout,
            })??;
        let now = Instant::now();
        let bearer = token.bearer(&self.credentials.client_id, now, SystemTime::now());
        *self.cache.lock().unwrap_or_else(PoisonError::into_inner) = Some(token);
        Ok(bearer)
    }

    /// `golang.org/x/oauth2`'s `RetrieveToken` with `AuthStyleAutoDetect`.
    async fn fetch(&self) -> Result<CachedToken, TokenError> {
        let known = *self.style.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(style) = known {
            return self.request(style).await;
        }
        let (token, style) = match self.request(AuthStyle::Header).await {
            Ok(token) => (token, AuthStyle::Header),
            // Any failure: assume the endpoint wants the credentials in the form.
            Err(_) => (self.request(AuthStyle::Params).await?, AuthStyle::Params),
        };
        *self.style.lock().unwrap_or_else(PoisonError::into_inner) = Some(style);
        Ok(token)
    }

    async fn request(&self, style: AuthStyle) -> Result<CachedToken, TokenError> {
        let credentials = &self.credentials;
        let endpoint = || credentials.token_endpoint.clone();
        let failed = |source| TokenError::Request {
            endpoint: endpoint(),
            source,
        };
        let mut request = self
            .http
            .post(&credentials.token_endpoint)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(token_request_body(credentials, style));
        if style == AuthStyle::Header {
            request = request.basic_auth(
                go_query_escape(&credentials.client_id),
                Some(go_query_escape(&credentials.client_secret)),
            );
        }
        let mut response = request.send().await.map_err(failed)?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            let room = MAX_TOKEN_RESPONSE - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() == MAX_TOKEN_RESPONSE {
                break;
            }
        }
        if !status.is_success() {
            return Err(TokenError::Refused {
                endpoint: endpoint(),
                status: status.as_u16(),
                detail: refusal_detail(&body),
            });
        }
        let answer =
            parse_token_response(&content_type, &body).map_err(|reason| TokenError::Decode {
                endpoint: endpoint(),
                reason,
            })?;
        if answer.access_token.is_empty() {
            return Err(TokenError::MissingAccessToken {
                endpoint: endpoint(),
            });
        }
        if !answer
            .access_token
            .bytes()
            .all(|byte| matches!(byte, 0x21..=0x7e | b' ' | b'\t' | b'\r' | b'\n'))
        {
            return Err(TokenError::InvalidToken {
                endpoint: endpoint(),
            });
        }
        let lifetime = match answer.expires_in {
            0 => None,
            seconds => Some(Duration::from_secs(u64::try_from(seconds).unwrap_or(0))),
        };
        Ok(CachedToken {
            value: answer.access_token,
            fetched: Instant::now(),
            lifetime,
        })
    }
}

/// The token sources of a process, one per set of client credentials, kept while a client
/// holds them.
#[derive(Debug, Default)]
pub struct OAuthTokenSources {
    sources: Mutex<HashMap<OAuthClientCredentials, Weak<OAuthTokenSource>>>,
    /// The HTTP client of token requests, made on first use: the system's roots and default
    /// verification, as KEDA's `http.DefaultClient` (`unsafeSsl` and `ca` are for the brokers).
    http: Mutex<Option<reqwest::Client>>,
}

impl OAuthTokenSources {
    /// The source for `credentials`, shared with every holder of the same credentials.
    pub fn source(
        &self,
        credentials: &OAuthClientCredentials,
    ) -> Result<Arc<OAuthTokenSource>, TokenError> {
        let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(source) = sources.get(credentials).and_then(Weak::upgrade) {
            return Ok(source);
        }
        let source = Arc::new(OAuthTokenSource::new(credentials.clone(), self.http()?));
        sources.retain(|_, held| held.strong_count() > 0);
        sources.insert(credentials.clone(), Arc::downgrade(&source));
        Ok(source)
    }

    fn http(&self) -> Result<reqwest::Client, TokenError> {
        let mut http = self.http.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = http.as_ref() {
            return Ok(client.clone());
        }
        crate::context::install_crypto_provider();
        let client = reqwest::Client::builder()
            .build()
            .map_err(TokenError::Client)?;
        *http = Some(client.clone());
        Ok(client)
    }
}

/// The form KEDA posts: `grant_type` and `scope` (and, in the form style, the credentials),
/// keys sorted and escaped as Go's `url.Values.Encode`.
fn token_request_body(credentials: &OAuthClientCredentials, style: AuthStyle) -> String {
    let scope = credentials.scopes.join(" ");
    let mut fields = vec![
        ("grant_type", "client_credentials"),
        ("scope", scope.as_str()),
    ];
    if style == AuthStyle::Params {
        if !credentials.client_id.is_empty() {
            fields.push(("client_id", &credentials.client_id));
        }
        if !credentials.client_secret.is_empty() {
            fields.push(("client_secret", &credentials.client_secret));
        }
    }
    fields.sort_by_key(|(key, _)| *key);
    fields
        .iter()
        .map(|(key, value)| format!("{}={}", go_query_escape(key), go_query_escape(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Go's `url.QueryEscape`: unreserved bytes as they are, space as `+`, the rest `%XX`.
fn go_query_escape(value: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut escaped = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                escaped.push(char::from(byte));
            }
            b' ' => escaped.push('+'),
            _ => {
                escaped.push('%');
                escaped.push(char::from(HEX[usize::from(byte >> 4)]));
                escaped.push(char::from(HEX[usize::from(byte & 0xf)]));
            }
        }
    }
    escaped
}

/// The parts of a token answer that are used.
#[derive(Debug, PartialEq, Eq)]
struct TokenAnswer {
    access_token: String,
    /// Seconds; 0 when absent. Negative means already expired.
    expires_in: i64,
}

/// A token answer as `golang.org/x/oauth2` reads it: a form for `application/x-www-form-urlencoded`
/// and `text/plain`, JSON otherwise; `expires_in` a JSON number or numeric string.
fn parse_token_response(content_type: &str, body: &[u8]) -> Result<TokenAnswer, String> {
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if media_type == "application/x-www-form-urlencoded" || media_type == "text/plain" {
        let fields = parse_form(body)?;
        let get = |key: &str| {
            fields
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, value)| value.clone())
                .unwrap_or_default()
        };
        return Ok(TokenAnswer {
            access_token: get("access_token"),
            // Go's `strconv.Atoi`, its error ignored.
            expires_in: get("expires_in").parse().unwrap_or(0),
        });
    }
    #[derive(serde::Deserialize)]
    struct Json {
        #[serde(default)]
        access_token: Option<String>,
        #[serde(default)]
        expires_in: Option<serde_json::Value>,
    }
    let json: Json = serde_json::from_slice(body).map_err(|e| format!("cannot parse json: {e}"))?;
    let expires_in = match json.expires_in {
        None | Some(serde_json::Value::Null) => 0,
        Some(serde_json::Value::Number(number)) => number
            .as_i64()
            .ok_or_else(|| format!("expires_in {number} is not an integer"))?,
        Some(serde_json::Value::String(text)) => text
            .parse::<i64>()
            .map_err(|_| format!("expires_in {text:?} is not an integer"))?,
        Some(other) => return Err(format!("expires_in {other} is not a number")),
    };
    Ok(TokenAnswer {
        access_token: json.access_token.unwrap_or_default(),
        expires_in: expires_in.min(i64::from(i32::MAX)),
    })
}

/// `k=v&k2=v2` with `+` and `%XX` decoded.
fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    fn decode(part: &[u8]) -> Result<String, String> {
        let mut out = Vec::with_capacity(part.len());
        let mut bytes = part.iter().copied();
        while let Some(byte) = bytes.next() {
            match byte {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex = [bytes.next(), bytes.next()];
                    let value = match hex {
                        [Some(high), Some(low)] => std::str::from_utf8(&[high, low])
                            .ok()
                            .and_then(|text| u8::from_str_radix(text, 16).ok()),
                        _ => None,
                    };
                    out.push(value.ok_or("invalid URL escape in the form answer")?);
                }
                other => out.push(other),
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
    body.split(|byte| *byte == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut parts = pair.splitn(2, |byte| *byte == b'=');
            let key = decode(parts.next().unwrap_or_default())?;
            let value = decode(parts.next().unwrap_or_default())?;
            Ok((key, value))
        })
        .collect()
}

/// What a refusal says: the OAuth `error` and `error_description`, else the start of the body.
fn refusal_detail(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct OAuthError {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
    }
    if let Ok(error) = serde_json::from_slice::<OAuthError>(body) {
        return match error.error_description.filter(|d| !d.is_empty()) {
            Some(description) => format!(": {}: {description}", error.error),
            None => format!(": {}", error.error),
        };
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {}", text.chars().take(200).collect::<String>())
    }
}

/// The SCRAM hash functions Kafka offers (`SCRAM-SHA-256`, `SCRAM-SHA-512`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScramHash {
    Sha256,
    Sha512,
}

impl ScramHash {
    pub fn mechanism(self) -> &'static str {
        match self {
            Self::Sha256 => "SCRAM-SHA-256",
            Self::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub(crate) fn hmac(self) -> ring::hmac::Algorithm {
        match self {
            Self::Sha256 => ring::hmac::HMAC_SHA256,
            Self::Sha512 => ring::hmac::HMAC_SHA512,
        }
    }

    pub(crate) fn pbkdf2(self) -> ring::pbkdf2::Algorithm {
        match self {
            Self::Sha256 => ring::pbkdf2::PBKDF2_HMAC_SHA256,
            Self::Sha512 => ring::pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    pub(crate) fn digest(self) -> &'static ring::digest::Algorithm {
        match self {
            Self::Sha256 => &ring::digest::SHA256,
            Self::Sha512 => &ring::digest::SHA512,
        }
    }
}

/// The most PBKDF2 iterations a server may ask of the SCRAM client. Kafka itself allows at
/// most 16,384; the bound keeps a hostile or broken server from costing seconds of CPU.
pub const SCRAM_MAX_ITERATIONS: u32 = 1 << 20;

/// Why a SCRAM exchange failed on the client side.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ScramError {
    #[error("no random nonce could be drawn")]
    Random,
    #[error("the server's {message} is malformed: {reason}")]
    Malformed {
        message: &'static str,
        reason: String,
    },
    #[error("the server's nonce does not extend ours")]
    Nonce,
    #[error("the server asks for {0} PBKDF2 iterations (at most {SCRAM_MAX_ITERATIONS} are done)")]
    Iterations(u64),
    #[error("the server refused the proof: {0}")]
    Refused(String),
    #[error("the server's signature is wrong: it does not know this password")]
    ServerSignature,
    #[error("the exchange is not at the step this message belongs to")]
    State,
}

/// The client side of a SCRAM exchange (RFC 5802, as Kafka speaks it: no channel binding, no
/// authorisation id, the password used as its UTF-8 bytes as Kafka's own client does).
///
/// Pure computation: the caller carries the three messages over SaslAuthenticate. The PBKDF2
/// step ([`ScramClient::client_final`]) costs thousands of HMACs, so callers run it off the
/// async workers.
pub struct ScramClient {
    hash: ScramHash,
    password: String,
    client_first_bare: String,
    client_nonce: String,
    /// The server signature the final message must carry, once the proof is sent.
    expected_server_signature: Option<Vec<u8>>,
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient")
            .field("hash", &self.hash)
            .field("client_first_bare", &self.client_first_bare)
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// A client with a fresh random nonce.
    pub fn new(hash: ScramHash, username: &str, password: &str) -> Result<Self, ScramError> {
        use base64::Engine as _;
        use ring::rand::SecureRandom as _;

        let mut random = [0u8; 24];
        ring::rand::SystemRandom::new()
            .fill(&mut random)
            .map_err(|_| ScramError::Random)?;
        let nonce = base64::engine::general_purpose::STANDARD_NO_PAD.encode(random);
        Ok(Self::with_nonce(hash, username, password, &nonce))
    }

    /// A client with the given nonce (printable, without `,`): for test vectors.
    pub fn with_nonce(hash: ScramHash, username: &str, password: &str, nonce: &str) -> Self {
        // RFC 5802 §5.1: `=` and `,` in the name are escaped.
        let name = username.replace('=', "=3D").replace(',', "=2C");
        Self {
            hash,
            password: password.to_owned(),
            client_first_bare: format!("n={name},r={nonce}"),
            client_nonce: nonce.to_owned(),
            expected_server_signature: None,
        }
    }

    /// The first message: GS2 header `n,,` (no channel binding) and the bare part.
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// The final message (with the proof) answering the server's first message.
    pub fn client_final(&mut self, server_first: &str) -> Result<String, ScramError> {
        use base64::Engine as _;
        const MESSAGE: &str = "first message";

        let malformed = |reason: &str| ScramError::Malformed {
            message: MESSAGE,
            reason: reason.to_owned(),
        };
        if self.expected_server_signature.is_some() {
            return Err(ScramError::State);
        }
        let attributes = scram_attributes(server_first);
        if attributes.iter().any(|(key, _)| *key == 'm') {
            return Err(malformed("it requires an extension (m=)"));
        }
        let find = |key: char| {
            attributes
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, value)| *value)
        };
        let nonce = find('r').ok_or_else(|| malformed("no nonce (r=)"))?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(ScramError::Nonce);
        }
        let salt = find('s')
            .and_then(|salt| base64::engine::general_purpose::STANDARD.decode(salt).ok())
            .ok_or_else(|| malformed("no base64 salt (s=)"))?;
        let iterations: u64 = find('i')
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| malformed("no iteration count (i=)"))?;
        let iterations = u32::try_from(iterations)
            .ok()
            .filter(|i| *i <= SCRAM_MAX_ITERATIONS)
            .and_then(std::num::NonZeroU32::new)
            .ok_or(ScramError::Iterations(iterations))?;

        let mut salted = vec![0u8; self.hash.digest().output_len()];
        ring::pbkdf2::derive(
            self.hash.pbkdf2(),
            iterations,
            &salt,
            self.password.as_bytes(),
            &mut salted,
        );
        let salted = ring::hmac::Key::new(self.hash.hmac(), &salted);
        let client_key = ring::hmac::sign(&salted, b"Client Key");
        let stored_key = ring::digest::digest(self.hash.digest(), client_key.as_ref());
        // `biws` is base64 of the GS2 header `n,,`.
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = ring::hmac::sign(
            &ring::hmac::Key::new(self.hash.hmac(), stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(client_signature.as_ref())
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = ring::hmac::sign(&salted, b"Server Key");
        let server_signature = ring::hmac::sign(
            &ring::hmac::Key::new(self.hash.hmac(), server_key.as_ref()),
            auth_message.as_bytes(),
        );
        self.expected_server_signature = Some(server_signature.as_ref().to_vec());
        Ok(format!(
            "{without_proof},p={}",
            base64::engine::general_purpose::STANDARD.encode(proof)
        ))
    }

    /// Checks the server's final message: its signature proves it knows the password too.
    pub fn verify_server_final(&self, server_final: &str) -> Result<(), ScramError> {
        use base64::Engine as _;

        let expected = self
            .expected_server_signature
            .as_ref()
            .ok_or(ScramError::State)?;
        let attributes = scram_attributes(server_final);
        if let Some((_, error)) = attributes.iter().find(|(key, _)| *key == 'e') {
            return Err(ScramError::Refused((*error).to_owned()));
        }
        let signature = attributes
            .iter()
            .find(|(key, _)| *key == 'v')
            .and_then(|(_, v)| base64::engine::general_purpose::STANDARD.decode(v).ok())
            .ok_or_else(|| ScramError::Malformed {
                message: "final message",
                reason: "no base64 signature (v=)".to_owned(),
            })?;
        if &signature != expected {
            return Err(ScramError::ServerSignature);
        }
        Ok(())
    }
}

/// `k=value` attributes of a SCRAM message, in order.
fn scram_attributes(message: &str) -> Vec<(char, &str)> {
    message
        .split(',')
        .filter_map(|attribute| {
            let mut chars = attribute.chars();
            let key = chars.next()?;
            let value = chars.as_str().strip_prefix('=')?;
            Some((key, value))
        })
        .collect()
}

/// SASL/PLAIN's single message: no authorisation id, then the name and password.
pub fn plain_message(username: &str, password: &str) -> Vec<u8> {
    format!("\0{username}\0{password}").into_bytes()
}

/// SASL/OAUTHBEARER's initial client response (RFC 7628) with `token`, no extensions.
pub fn oauthbearer_message(token: &str) -> Vec<u8> {
    format!("n,,\u{1}auth=Bearer {token}\u{1}\u{1}").into_bytes()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use scaler_core::params::TriggerParams;

    use super::*;

    fn params(
        metadata: &[(&str, &str)],
        auth: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> TriggerParams {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        TriggerParams {
            metadata: map(metadata),
            auth_params: map(auth),
            resolved_env: map(env),
        }
    }

    #[test]
    fn aws_authorization_follows_kedas_order() {
        struct Case {
            name: &'static str,
            metadata: &'static [(&'static str, &'static str)],
            auth: &'static [(&'static str, &'static str)],
            env: &'static [(&'static str, &'static str)],
            /// `podIdentity.provider`; `""` for no pod identity.
            provider: &'static str,
            expected: Result<AwsAuthorization, &'static str>,
        }
        let cases = [
            Case {
                name: "role arn wins over keys",
                metadata: &[],
                auth: &[("awsRoleArn", "arn:r"), ("awsAccessKeyID", "k")],
                env: &[],
                provider: "",
                expected: Ok(AwsAuthorization::Role {
                    role_arn: "arn:r".into(),
                }),
            },
            Case {
                name: "keys from auth params",
                metadata: &[],
                auth: &[("awsAccessKeyId", "k"), ("awsSecretAccessKey", "s")],
                env: &[],
                provider: "",
                expected: Ok(AwsAuthorization::AccessKey {
                    access_key_id: "k".into(),
                    secret_access_key: "s".into(),
                    session_token: None,
                }),
            },
            Case {
                name: "key without secret",
                metadata: &[],
                auth: &[("awsAccessKeyID", "k")],
                env: &[],
                provider: "",
                expected: Err("awsSecretAccessKey"),
            },
            Case {
                name: "nothing given",
                metadata: &[],
                auth: &[],
                env: &[],
                provider: "",
                expected: Err("awsAccessKeyID"),
            },
            Case {
                name: "legacy metadata key and env secret",
                metadata: &[
                    ("awsAccessKeyID", "k"),
                    ("awsSecretAccessKeyFromEnv", "SECRET"),
                ],
                auth: &[],
                env: &[("SECRET", "s")],
                provider: "",
                expected: Ok(AwsAuthorization::AccessKey {
                    access_key_id: "k".into(),
                    secret_access_key: "s".into(),
                    session_token: None,
                }),
            },
            Case {
                name: "operator identity needs nothing",
                metadata: &[("identityOwner", "operator")],
                auth: &[],
                env: &[],
                provider: "",
                expected: Ok(AwsAuthorization::OperatorIdentity),
            },
            // KEDA's TestGetAwsAuthorization (pkg/scalers/aws/aws_common_test.go)
            Case {
                name: "PodIdentity AWS provider sets UsingPodIdentity",
                metadata: &[],
                auth: &[],
                env: &[],
                provider: "aws",
                expected: Ok(AwsAuthorization::PodIdentity {
                    role_arn: None,
                    external_id: None,
                    identity_owner: None,
                }),
            },
            Case {
                name: "PodIdentity AWS with awsRoleArn sets both fields",
                metadata: &[],
                auth: &[("awsRoleArn", "arn:aws:iam::123456789012:role/MyRole")],
                env: &[],
                provider: "aws",
                expected: Ok(AwsAuthorization::PodIdentity {
                    role_arn: Some("arn:aws:iam::123456789012:role/MyRole".into()),
                    external_id: None,
                    identity_owner: None,
                }),
            },
            Case {
                name: "identityOwner=pod with awsRoleArn sets AwsRoleArn without access keys",
                metadata: &[("identityOwner", "pod")],
                auth: &[("awsRoleArn", "arn:aws:iam::123456789012:role/MyRole")],
                env: &[],
                provider: "",
                expected: Ok(AwsAuthorization::Role {
                    role_arn: "arn:aws:iam::123456789012:role/MyRole".into(),
                }),
            },
            Case {
                name: "identityOwner=pod with awsAccessKeyID but no secret returns error",
                metadata: &[("identityOwner", "pod")],
                auth: &[("awsAccessKeyID", "AKIAIOSFODNN7EXAMPLE")],
                env: &[],
                provider: "",
                expected: Err("awsSecretAccessKey"),
            },
            Case {
                name: "identityOwner=pod with awsAccessKeyIDFromEnv resolves key from env",
                metadata: &[
                    ("identityOwner", "pod"),
                    ("awsAccessKeyIDFromEnv", "AWS_KEY_ENV"),
                    ("awsSecretAccessKeyFromEnv", "AWS_SECRET_ENV"),
                ],
                auth: &[],
                env: &[("AWS_KEY_ENV", "AKIA"), ("AWS_SECRET_ENV", "wJal")],
                provider: "",
                expected: Ok(AwsAuthorization::AccessKey {
                    access_key_id: "AKIA".into(),
                    secret_access_key: "wJal".into(),
                    session_token: None,
                }),
            },
            // Windlass's own
            Case {
                name: "pod identity skips the static credential checks",
                metadata: &[("identityOwner", "operator")],
                auth: &[("awsAccessKeyID", "k")],
                env: &[],
                provider: "aws",
                expected: Ok(AwsAuthorization::PodIdentity {
                    role_arn: None,
                    external_id: None,
                    identity_owner: None,
                }),
            },
            Case {
                name: "aws-eks keeps the static path",
                metadata: &[],
                auth: &[],
                env: &[],
                provider: "aws-eks",
                expected: Err("awsAccessKeyID"),
            },
            Case {
                name: "provider none keeps the static path",
                metadata: &[],
                auth: &[("awsRoleArn", "arn:r")],
                env: &[],
                provider: "none",
                expected: Ok(AwsAuthorization::Role {
                    role_arn: "arn:r".into(),
                }),
            },
        ];
        for case in cases {
            let p = params(case.metadata, case.auth, case.env);
            let identity = (!case.provider.is_empty()).then(|| PodIdentity::new(case.provider));
            let mut reader = ParamReader::new(&p);
            let got = read_aws_authorization(&mut reader, identity.as_ref());
            let result = reader.finish(got);
            match (&case.expected, result) {
                (Ok(expected), Ok(got)) => {
                    assert_eq!(got.as_ref(), Some(expected), "{}", case.name)
                }
                (Err(key), Err(errors)) => assert_eq!(errors.0[0].key, *key, "{}", case.name),
                (expected, got) => panic!("{}: expected {expected:?}, got {got:?}", case.name),
            }
        }
    }

    #[test]
    fn pod_identity_role_wins_over_the_auth_param() {
        let p = params(&[], &[("awsRoleArn", "arn:from-params")], &[]);
        let identity = PodIdentity {
            provider: "aws".into(),
            role_arn: Some("arn:from-identity".into()),
            external_id: Some("ext".into()),
            identity_owner: Some("keda".into()),
            ..PodIdentity::default()
        };
        let mut reader = ParamReader::new(&p);
        let got = read_aws_authorization(&mut reader, Some(&identity));
        assert_eq!(
            reader.finish(got).unwrap(),
            Some(AwsAuthorization::PodIdentity {
                role_arn: Some("arn:from-identity".into()),
                external_id: Some("ext".into()),
                identity_owner: Some("keda".into()),
            })
        );
        // externalID only travels with the identity's own roleArn
        let identity = PodIdentity {
            role_arn: Some(String::new()),
            ..identity
        };
        let mut reader = ParamReader::new(&p);
        let got = read_aws_authorization(&mut reader, Some(&identity));
        assert_eq!(
            reader.finish(got).unwrap(),
            Some(AwsAuthorization::PodIdentity {
                role_arn: Some("arn:from-params".into()),
                external_id: None,
                identity_owner: Some("keda".into()),
            })
        );
    }

    #[test]
    fn single_enum_rejects_comma_combinations() {
        let p = params(&[("tls", "enable,disable")], &[], &[]);
        let mut reader = ParamReader::new(&p);
        assert_eq!(
            single_enum(
                &mut reader,
                "tls",
                order::M,
                &["enable", "disable"],
                Some("disable")
            ),
            None
        );
        assert_eq!(reader.finish(()).unwrap_err().0[0].key, "tls");
    }
    // ---- OAuth client credentials -------------------------------------------------------

    /// A token endpoint on a loopback port that records each request and answers with
    /// `answer(request number, request)`.
    pub(crate) mod token_endpoint {
        use std::sync::{Arc, Mutex};
        use std::time::Instant;

        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio::net::TcpListener;

        #[derive(Clone, Debug)]
        pub struct Request {
            pub at: Instant,
            /// Header lines, names lowercased.
            pub headers: Vec<(String, String)>,
            pub body: String,
        }

        impl Request {
            pub fn header(&self, name: &str) -> Option<&str> {
                self.headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
            }
        }

        pub struct Answer {
            pub status: u16,
            pub content_type: &'static str,
            pub body: String,
        }

        pub fn json(status: u16, body: &str) -> Answer {
            Answer {
                status,
                content_type: "application/json",
                body: body.to_owned(),
            }
        }

        type Answerer = dyn Fn(usize, &Request) -> Answer + Send + Sync;

        pub struct Endpoint {
            pub url: String,
            requests: Arc<Mutex<Vec<Request>>>,
            task: tokio::task::JoinHandle<()>,
        }

        impl Drop for Endpoint {
            fn drop(&mut self) {
                self.task.abort();
            }
        }

        impl Endpoint {
            pub async fn start(
                answer: impl Fn(usize, &Request) -> Answer + Send + Sync + 'static,
            ) -> Self {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let url = format!("http://{}/token", listener.local_addr().unwrap());
                let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
                let recorded = Arc::clone(&requests);
                let answer: Arc<Answerer> = Arc::new(answer);
                let task = tokio::spawn(async move {
                    while let Ok((mut stream, _)) = listener.accept().await {
                        let recorded = Arc::clone(&recorded);
                        let answer = Arc::clone(&answer);
                        tokio::spawn(async move {
                            let mut data = Vec::new();
                            let mut buffer = [0u8; 4096];
                            let head_end = loop {
                                if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                                    break at;
                                }
                                match stream.read(&mut buffer).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => data.extend_from_slice(&buffer[..n]),
                                }
                            };
                            let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
                            let headers: Vec<(String, String)> = head
                                .split("\r\n")
                                .skip(1)
                                .filter_map(|line| line.split_once(':'))
                                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                                .collect();
                            let length: usize = headers
                                .iter()
                                .find(|(n, _)| n == "content-length")
                                .and_then(|(_, v)| v.parse().ok())
                                .unwrap_or(0);
                            let mut body = data[head_end + 4..].to_vec();
                            while body.len() < length {
                                match stream.read(&mut buffer).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => body.extend_from_slice(&buffer[..n]),
                                }
                            }
                            let request = Request {
                                at: Instant::now(),
                                headers,
                                body: String::from_utf8_lossy(&body).into_owned(),
                            };
                            let number = {
                                let mut all = recorded.lock().unwrap();
                                all.push(request.clone());
                                all.len()
                            };
                            let reply = answer(number, &request);
                            let response = format!(
                                "HTTP/1.1 {} X\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                                reply.status,
                                reply.content_type,
                                reply.body.len(),
                                reply.body
                            );
                            let _ = stream.write_all(response.as_bytes()).await;
                            let _ = stream.shutdown().await;
                        });
                    }
                });
                Self {
                    url,
                    requests,
                    task,
                }
            }

            pub fn requests(&self) -> Vec<Request> {
                self.requests.lock().unwrap().clone()
            }

            /// The requests so far, readable from any thread.
            pub fn requests_handle(&self) -> impl Fn() -> Vec<Request> + Send + 'static {
                let requests = Arc::clone(&self.requests);
                move || requests.lock().unwrap().clone()
            }
        }
    }

    use token_endpoint::{Answer, Endpoint, json};

    fn credentials(endpoint: &str) -> OAuthClientCredentials {
        OAuthClientCredentials {
            client_id: "my client".into(),
            client_secret: "s3cret/+=".into(),
            token_endpoint: endpoint.into(),
            scopes: vec!["kafka.read".into(), "profile".into()],
        }
    }

    fn source(endpoint: &str) -> OAuthTokenSource {
        crate::context::install_crypto_provider();
        OAuthTokenSource::new(credentials(endpoint), reqwest::Client::new())
    }

    const TIMEOUT: Duration = Duration::from_secs(5);

    #[test]
    fn forms_are_encoded_as_go_encodes_them() {
        assert_eq!(go_query_escape("a b+c/~*é"), "a+b%2Bc%2F~%2A%C3%A9");
        let c = credentials("http://x");
        assert_eq!(
            token_request_body(&c, AuthStyle::Header),
            "grant_type=client_credentials&scope=kafka.read+profile"
        );
        assert_eq!(
            token_request_body(&c, AuthStyle::Params),
            "client_id=my+client&client_secret=s3cret%2F%2B%3D&grant_type=client_credentials&scope=kafka.read+profile"
        );
        // KEDA splits an empty `scopes` into one empty scope and sends it.
        let none = OAuthClientCredentials {
            scopes: Vec::new(),
            ..c
        };
        assert_eq!(
            token_request_body(&none, AuthStyle::Header),
            "grant_type=client_credentials&scope="
        );
    }

    #[test]
    fn token_answers_are_read_as_oauth2_reads_them() {
        let answer = |ct: &str, body: &str| parse_token_response(ct, body.as_bytes());
        let token = |access: &str, expires_in| {
            Ok(TokenAnswer {
                access_token: access.into(),
                expires_in,
            })
        };
        assert_eq!(
            answer(
                "application/json",
                r#"{"access_token":"t","expires_in":300}"#
            ),
            token("t", 300)
        );
        assert_eq!(
            answer(
                "application/json; charset=utf-8",
                r#"{"access_token":"t","expires_in":"60"}"#
            ),
            token("t", 60)
        );
        assert_eq!(answer("", r#"{"access_token":"t"}"#), token("t", 0));
        assert_eq!(
            answer(
                "application/json",
                r#"{"access_token":"t","expires_in":99999999999}"#
            ),
            token("t", i64::from(i32::MAX))
        );
        assert!(
            answer(
                "application/json",
                r#"{"access_token":"t","expires_in":1.5}"#
            )
            .is_err()
        );
        assert!(answer("application/json", "not json").is_err());
        assert_eq!(
            answer("text/plain", "access_token=a%2Bb+c&expires_in=x"),
            token("a+b c", 0)
        );
        assert_eq!(
            answer(
                "application/x-www-form-urlencoded",
                "token_type=bearer&access_token=t&expires_in=30"
            ),
            token("t", 30)
        );
        assert!(answer("text/plain", "access_token=%zz").is_err());
        assert_eq!(
            refusal_detail(br#"{"error":"invalid_client","error_description":"bad secret"}"#),
            ": invalid_client: bad secret"
        );
        assert_eq!(refusal_detail(b"nope"), ": nope");
        assert_eq!(refusal_detail(b""), "");
    }

    #[test]
    fn tokens_are_reused_in_the_first_half_of_their_life() {
        let start = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let token = CachedToken {
            value: "t".into(),
            fetched: start,
            lifetime: Some(Duration::from_secs(100)),
        };
        assert!(token.reusable(start + Duration::from_secs(49)));
        assert!(!token.reusable(start + Duration::from_secs(50)));
        // librdkafka learns the real expiry.
        let bearer = token.bearer("id", start + Duration::from_secs(20), wall);
        assert_eq!(bearer.lifetime_ms, (1_000_000 + 80) * 1000);
        assert_eq!(bearer.principal, "id");
        // Without expires_in: reused for ever, librdkafka asks again within the hour.
        let forever = CachedToken {
            lifetime: None,
            ..token.clone()
        };
        assert!(forever.reusable(start + Duration::from_secs(1_000_000)));
        assert_eq!(
            forever.bearer("id", start, wall).lifetime_ms,
            (1_000_000 + 3600) * 1000
        );
        // Expired at once (expires_in ≤ 0): never reused, still handed over once.
        let expired = CachedToken {
            lifetime: Some(Duration::ZERO),
            ..token
        };
        assert!(!expired.reusable(start));
        assert_eq!(
            expired.bearer("id", start, wall).lifetime_ms,
            (1_000_000 + 1) * 1000
        );
    }

    #[tokio::test]
    async fn client_credentials_go_as_basic_auth_first_then_in_the_form() {
        // Like endpoints that only read the form: the basic-auth attempt is refused.
        let endpoint = Endpoint::start(|_, request| {
            if request.body.contains("client_secret=") {
                json(
                    200,
                    r#"{"access_token":"tok-1","token_type":"bearer","expires_in":3600}"#,
                )
            } else {
                json(401, r#"{"error":"invalid_client"}"#)
            }
        })
        .await;
        let tokens = source(&endpoint.url);
        let token = tokens.token(TIMEOUT).await.unwrap();
        assert_eq!(token.value, "tok-1");
        assert_eq!(token.principal, "my client");
        let requests = endpoint.requests();
        assert_eq!(requests.len(), 2);
        use base64::Engine as _;
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("my+client:s3cret%2F%2B%3D")
        );
        assert_eq!(requests[0].header("authorization"), Some(basic.as_str()));
        assert_eq!(
            requests[0].header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(
            requests[0].body,
            "grant_type=client_credentials&scope=kafka.read+profile"
        );
        assert_eq!(requests[1].header("authorization"), None);
        assert_eq!(
            requests[1].body,
            "client_id=my+client&client_secret=s3cret%2F%2B%3D&grant_type=client_credentials&scope=kafka.read+profile"
        );
        // Cached: no new request.
        assert_eq!(tokens.cached().map(|t| t.value), Some("tok-1".to_owned()));
        tokens.token(TIMEOUT).await.unwrap();
        assert_eq!(endpoint.requests().len(), 2);
        // The form style is remembered: a new token is asked for in the form at once.
        *tokens.cache.lock().unwrap() = None;
        tokens.token(TIMEOUT).await.unwrap();
        let requests = endpoint.requests();
        assert_eq!(requests.len(), 3);
        assert!(requests[2].body.contains("client_secret="));
    }

    #[tokio::test]
    async fn a_token_is_renewed_before_it_expires() {
        let endpoint = Endpoint::start(|n, _| {
            json(
                200,
                &format!(r#"{{"access_token":"tok-{n}","expires_in":2}}"#),
            )
        })
        .await;
        let tokens = source(&endpoint.url);
        // Concurrent callers share one request.
        let (a, b) = tokio::join!(tokens.token(TIMEOUT), tokens.token(TIMEOUT));
        assert_eq!(a.unwrap().value, "tok-1");
        assert_eq!(b.unwrap().value, "tok-1");
        assert_eq!(endpoint.requests().len(), 1);
        let first = endpoint.requests()[0].at;
        let deadline = first + Duration::from_secs(10);
        let renewed = loop {
            let token = tokens.token(TIMEOUT).await.unwrap();
            if token.value == "tok-2" {
                break endpoint.requests()[1].at;
            }
            assert!(Instant::now() < deadline, "no new token");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // Renewed at half life (1 s), well before the first token's expiry (2 s).
        assert!(renewed - first >= Duration::from_secs(1));
        assert!(
            renewed - first < Duration::from_secs(2),
            "{:?}",
            renewed - first
        );
    }

    #[tokio::test]
    async fn endpoint_failures_are_categorised() {
        let refusing = Endpoint::start(|_, _| {
            json(
                401,
                r#"{"error":"invalid_client","error_description":"unknown client"}"#,
            )
        })
        .await;
        let error = source(&refusing.url).token(TIMEOUT).await.unwrap_err();
        assert_eq!(error.category(), ErrorCategory::Connect);
        assert_eq!(
            error.to_string(),
            format!(
                "OAuth token endpoint {} refused the token request: HTTP 401: invalid_client: unknown client",
                refusing.url
            )
        );
        // Both ways were tried, as KEDA tries them.
        assert_eq!(refusing.requests().len(), 2);

        let tokenless = Endpoint::start(|_, _| json(200, r#"{"token_type":"bearer"}"#)).await;
        let error = source(&tokenless.url).token(TIMEOUT).await.unwrap_err();
        assert!(
            matches!(error, TokenError::MissingAccessToken { .. }),
            "{error}"
        );
        assert_eq!(error.category(), ErrorCategory::Query);

        let garbled = Endpoint::start(|_, _| Answer {
            status: 200,
            content_type: "text/html",
            body: "<html>login</html>".into(),
        })
        .await;
        let error = source(&garbled.url).token(TIMEOUT).await.unwrap_err();
        assert!(matches!(error, TokenError::Decode { .. }), "{error}");

        let bad_token =
            Endpoint::start(|_, _| json(200, r#"{"access_token":"tok\u0001en"}"#)).await;
        let error = source(&bad_token.url).token(TIMEOUT).await.unwrap_err();
        assert!(matches!(error, TokenError::InvalidToken { .. }), "{error}");

        // Nothing listens: a connect error, not a panic.
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/token", listener.local_addr().unwrap())
        };
        let error = source(&closed).token(TIMEOUT).await.unwrap_err();
        assert_eq!(error.category(), ErrorCategory::Connect, "{error}");
        // The cause is shown, not just reqwest's "error sending request".
        assert!(error.to_string().contains("refused"), "{error}");

        let error = source("not a url").token(TIMEOUT).await.unwrap_err();
        assert_eq!(error.category(), ErrorCategory::Metadata, "{error}");
    }

    #[tokio::test]
    async fn a_silent_endpoint_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        // Accepts and never answers.
        let _held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                open.push(stream);
            }
        });
        let error = source(&url)
            .token(Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(error, TokenError::Timeout { .. }), "{error}");
        assert_eq!(error.category(), ErrorCategory::Timeout);
    }

    #[tokio::test]
    async fn sources_are_shared_per_credentials_while_held() {
        let sources = OAuthTokenSources::default();
        let a = sources.source(&credentials("http://a")).unwrap();
        let again = sources.source(&credentials("http://a")).unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        let b = sources.source(&credentials("http://b")).unwrap();
        assert!(!Arc::ptr_eq(&a, &b));
        drop((a, again));
        let fresh = sources.source(&credentials("http://a")).unwrap();
        assert!(fresh.cached().is_none());
        assert!(!format!("{fresh:?}").contains("s3cret"));
    }

    /// RFC 7677 §3's SCRAM-SHA-256 exchange, byte for byte.
    #[test]
    fn scram_sha256_follows_the_rfc_7677_example() {
        let mut client =
            ScramClient::with_nonce(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(client.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        assert_eq!(
            client.client_final(server_first).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        client
            .verify_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert_eq!(
            client.verify_server_final("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Err(ScramError::ServerSignature)
        );
        assert_eq!(
            client.verify_server_final("e=invalid-proof"),
            Err(ScramError::Refused("invalid-proof".into()))
        );
        assert!(!format!("{client:?}").contains("pencil"));
    }

    /// The server's side of SCRAM (RFC 5802 §3), from the stored key only: what a broker checks.
    fn server_accepts(
        hash: ScramHash,
        password: &str,
        salt: &[u8],
        client_final: &str,
        auth_message: &str,
    ) -> bool {
        use base64::Engine as _;
        let mut salted = vec![0u8; hash.digest().output_len()];
        ring::pbkdf2::derive(
            hash.pbkdf2(),
            std::num::NonZeroU32::new(4096).unwrap(),
            salt,
            password.as_bytes(),
            &mut salted,
        );
        let client_key =
            ring::hmac::sign(&ring::hmac::Key::new(hash.hmac(), &salted), b"Client Key");
        let stored_key = ring::digest::digest(hash.digest(), client_key.as_ref());
        let proof = client_final.rsplit_once(",p=").unwrap().1;
        let proof = base64::engine::general_purpose::STANDARD
            .decode(proof)
            .unwrap();
        let signature = ring::hmac::sign(
            &ring::hmac::Key::new(hash.hmac(), stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let recovered: Vec<u8> = proof
            .iter()
            .zip(signature.as_ref())
            .map(|(p, s)| p ^ s)
            .collect();
        ring::digest::digest(hash.digest(), &recovered).as_ref() == stored_key.as_ref()
    }

    #[test]
    fn scram_sha512_proof_is_what_the_server_checks() {
        use base64::Engine as _;
        let mut client = ScramClient::new(ScramHash::Sha512, "na=me,x", "s3cret").unwrap();
        let first = client.client_first();
        let bare = first.strip_prefix("n,,").unwrap().to_owned();
        assert!(bare.starts_with("n=na=3Dme=2Cx,r="), "{bare}");
        let nonce = bare.rsplit_once("r=").unwrap().1.to_owned();
        let salt = b"salt of the earth";
        let server_first = format!(
            "r={nonce}srv,s={},i=4096",
            base64::engine::general_purpose::STANDARD.encode(salt)
        );
        let client_final = client.client_final(&server_first).unwrap();
        let without_proof = client_final.rsplit_once(",p=").unwrap().0;
        let auth_message = format!("{bare},{server_first},{without_proof}");
        assert!(server_accepts(
            ScramHash::Sha512,
            "s3cret",
            salt,
            &client_final,
            &auth_message
        ));
        assert!(!server_accepts(
            ScramHash::Sha512,
            "other",
            salt,
            &client_final,
            &auth_message
        ));
        // A second proof for the same exchange is refused.
        assert_eq!(client.client_final(&server_first), Err(ScramError::State));
    }

    #[test]
    fn scram_refuses_what_a_broken_server_sends() {
        let fresh = || ScramClient::with_nonce(ScramHash::Sha256, "u", "p", "abc");
        let cases = [
            ("r=xyz,s=c2FsdA==,i=4096", ScramError::Nonce),
            ("r=abc,s=c2FsdA==,i=4096", ScramError::Nonce),
            ("r=abcd,s=c2FsdA==,i=0", ScramError::Iterations(0)),
            (
                "r=abcd,s=c2FsdA==,i=99999999999",
                ScramError::Iterations(99_999_999_999),
            ),
        ];
        for (server_first, expected) in cases {
            assert_eq!(
                fresh().client_final(server_first),
                Err(expected),
                "{server_first}"
            );
        }
        for server_first in [
            "r=abcd,i=4096",
            "r=abcd,s=c2FsdA==",
            "m=ext,r=abcd,s=c2FsdA==,i=1",
            "s=c2FsdA==,i=1",
        ] {
            assert!(
                matches!(
                    fresh().client_final(server_first),
                    Err(ScramError::Malformed { .. })
                ),
                "{server_first}"
            );
        }
        assert_eq!(fresh().verify_server_final("v=abc"), Err(ScramError::State));
    }

    #[test]
    fn plain_and_oauthbearer_messages() {
        assert_eq!(plain_message("u", "p"), b"\0u\0p");
        assert_eq!(
            oauthbearer_message("tok"),
            b"n,,\x01auth=Bearer tok\x01\x01"
        );
    }
}
