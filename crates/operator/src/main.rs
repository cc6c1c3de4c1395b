//! The `windlass` binary; everything lives in the library.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    windlass::cli::run(windlass::cli::Cli::parse()).await
}
