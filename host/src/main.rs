//! The `cachehost` binary: parses arguments, runs a subcommand, maps errors to exit statuses.

use std::process::ExitCode;

use clap::Parser;

use cachehost::cli::{Cli, Command};
use cachehost::commands::{self, EXIT_USAGE};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Every subcommand's `--json` output is for programs: no progress is drawn with it.
    if std::env::args_os().any(|arg| arg == "--json") {
        cachehost::progress::quiet();
    }
    let result = match cli.command {
        Command::Run(args) => commands::run::run(args),
        Command::Call(args) => commands::call::run(args),
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Cache(args) => commands::cache::run(args),
        Command::Key(args) => commands::key::run(args),
        Command::New(args) => commands::new::run(args),
        Command::Runs(args) => commands::runs::run(args),
        Command::Ui(args) => commands::ui::run(args),
        Command::Worker(args) => commands::worker::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            // One sentence first, then the causes.
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
