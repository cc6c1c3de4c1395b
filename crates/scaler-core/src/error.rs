//! The few error categories the policy acts on.
//!
//! Each scaler keeps a private error type that names the operation that failed; at the
//! [`crate::Scaler::sample`] boundary it becomes a [`ScalerError`] with one of these categories,
//! which metrics labels and the fallback policy use (never the error text).

use std::fmt;

use thiserror::Error;

/// Why a scaler could not produce a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    /// The trigger's parameters are wrong; retrying will not help until they change.
    Metadata,
    /// The backend could not be reached or refused the credentials.
    Connect,
    /// The backend answered, but not with a usable value.
    Query,
    /// The backend did not answer in time.
    Timeout,
    /// This build of Windlass cannot sample this trigger type yet.
    Unsupported,
}

impl ErrorCategory {
    /// A stable label for metrics and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Metadata => "metadata",
            Self::Connect => "connect",
            Self::Query => "query",
            Self::Timeout => "timeout",
            Self::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed sample, with the category the policy acts on and a message for people.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{message}")]
pub struct ScalerError {
    pub category: ErrorCategory,
    pub message: String,
}

impl ScalerError {
    pub fn new(category: ErrorCategory, message: impl Into<String>) -> Self {
        Self {
            category,
            message: message.into(),
        }
    }

    pub fn metadata(message: impl Into<String>) -> Self {
        Self::new(ErrorCategory::Metadata, message)
    }

    pub fn connect(message: impl Into<String>) -> Self {
        Self::new(ErrorCategory::Connect, message)
    }

    pub fn query(message: impl Into<String>) -> Self {
        Self::new(ErrorCategory::Query, message)
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorCategory::Timeout, message)
    }

    /// A trigger type whose network side is not part of this build yet.
    pub fn unsupported(trigger_type: &str) -> Self {
        Self::new(
            ErrorCategory::Unsupported,
            format!(
                "sampling `{trigger_type}` triggers is not implemented yet; `windlass check` validates them, and `plan` will sample them once their scaler lands"
            ),
        )
    }
}
