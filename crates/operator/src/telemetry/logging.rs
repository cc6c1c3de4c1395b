//! The process-wide `tracing` subscriber: human-readable text or one JSON object per line, on
//! standard error, filtered with `tracing`'s directive syntax (`info`,
//! `windlass=debug,kube=warn`).

use clap::ValueEnum;
use thiserror::Error;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::ParseError;
use tracing_subscriber::util::{SubscriberInitExt, TryInitError};

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per event, for log collectors.
    Json,
}

#[derive(Debug, Error)]
pub enum LoggingError {
    #[error("parsing the log filter {filter:?}")]
    ParseFilter {
        filter: String,
        #[source]
        source: ParseError,
    },
    #[error("installing the global log subscriber (was logging already initialised?)")]
    Install(#[source] TryInitError),
}

/// Installs the global subscriber. Only the first call in a process can succeed; later calls
/// return [`LoggingError::Install`] and leave the first subscriber in place.
pub fn init(format: LogFormat, filter: &str) -> Result<(), LoggingError> {
    let env_filter = EnvFilter::try_new(filter).map_err(|source| LoggingError::ParseFilter {
        filter: filter.to_owned(),
        source,
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.finish().try_init(),
        LogFormat::Json => builder.json().with_current_span(true).finish().try_init(),
    }
    .map_err(LoggingError::Install)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_filter_is_rejected_before_anything_is_installed() {
        let error = init(LogFormat::Text, "windlass=loud").unwrap_err();
        assert!(
            matches!(&error, LoggingError::ParseFilter { filter, .. } if filter == "windlass=loud"),
            "{error:?}"
        );
    }

    /// The only test in this crate that installs the global subscriber; `off` keeps test
    /// output clean.
    #[test]
    fn init_succeeds_once_then_refuses() {
        init(LogFormat::Json, "off").unwrap();
        let again = init(LogFormat::Text, "info").unwrap_err();
        assert!(matches!(again, LoggingError::Install(_)), "{again:?}");
    }
}
