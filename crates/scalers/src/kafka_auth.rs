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

use scaler_core::params::{ParamError, ParamReader, Source, order};
use scaler_core::registry::PodIdentity;

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

#[cfg(test)]
mod tests {
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
}
