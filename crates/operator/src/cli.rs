//! The `windlass` command line: one clap struct, one function per subcommand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{check, plan};

/// Windlass: an event-driven autoscaler for Kubernetes that reads KEDA's YAML unchanged.
#[derive(Debug, Parser)]
#[command(name = "windlass", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate ScaledObjects offline with KEDA's rules (schema, admission webhook, trigger metadata).
    ///
    /// Exit code 0 when every ScaledObject is valid, 1 when any is not, 2 when the input cannot be
    /// read or the command line is wrong.
    Check(CheckArgs),
    /// Sample every trigger of the ScaledObjects in the manifests and show what Windlass and the HPA would do.
    Plan(PlanArgs),
    /// Print the CustomResourceDefinitions Windlass serves (KEDA's `keda.sh/v1alpha1` kinds).
    Crds(CrdsArgs),
    /// Run the controller and the external metrics API in a cluster.
    ///
    /// Every replica watches ScaledObjects, samples their triggers and serves the external
    /// metrics API from that warm state; the replica holding the lease scales targets, manages
    /// HPAs and writes status. Every flag can also be set through the environment variable
    /// shown, the same variables KEDA reads where KEDA has the setting.
    Operator(Box<crate::operator::OperatorArgs>),
}

/// Where manifests come from.
#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// A manifest file, a directory of them, or `-` for standard input; repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub manifests: ManifestArgs,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub manifests: ManifestArgs,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Keep sampling every pollingInterval and redraw the table in place.
    #[arg(long)]
    pub watch: bool,
    /// The scale target's current replica count (default: the target manifest's `spec.replicas`, else 1).
    #[arg(long, value_name = "N")]
    pub current_replicas: Option<i32>,
    /// Evaluate at this instant instead of now (RFC 3339, e.g. 2026-11-23T09:30:00Z); handy for cron triggers.
    #[arg(long, value_name = "TIME")]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// How long ago the ScaledObject was last active (status.lastActiveTime), e.g. 90s or 10m, to see the cooldown.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub last_active: Option<chrono::Duration>,
}

#[derive(Debug, Args)]
pub struct CrdsArgs {
    /// Write one file per CRD into this directory instead of printing them.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
}

/// `90s`, `10m`, `2h` or a plain number of seconds.
fn parse_duration(text: &str) -> Result<chrono::Duration, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(split) => text.split_at(split),
        None => (text, "s"),
    };
    let amount: i64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90s, 10m or 2h"))?;
    match unit {
        "s" => Ok(chrono::Duration::seconds(amount)),
        "m" => Ok(chrono::Duration::minutes(amount)),
        "h" => Ok(chrono::Duration::hours(amount)),
        _ => Err(format!("{text:?}: unknown unit {unit:?}; use s, m or h")),
    }
}

/// Writes command output to stdout. A reader that went away (`windlass check | head -1`) is not
/// an error worth a panic: the rest of the output is dropped.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

/// Runs the parsed command line and returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Plan(args) => plan::run(&args).await,
        Command::Crds(args) => crds(&args),
        Command::Operator(args) => crate::operator::run(&args).await,
    }
}

fn crds(args: &CrdsArgs) -> ExitCode {
    let result = match &args.output_dir {
        Some(dir) => crate::crds::write_all(dir).map(|_| ()),
        None => crate::crds::render_all().map(|yaml| emit(&yaml)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("windlass crds: {error}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90s"), Ok(chrono::Duration::seconds(90)));
        assert_eq!(parse_duration("10m"), Ok(chrono::Duration::minutes(10)));
        assert_eq!(parse_duration("45"), Ok(chrono::Duration::seconds(45)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
