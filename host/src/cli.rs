//! Command-line arguments: clap types only; each subcommand lives in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Runs WebAssembly task components with Prefect 3's task caching, enforced by the host.
#[derive(Debug, Parser)]
#[command(name = "cachehost", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a flow component's flow: its task calls go through the cache.
    #[command(after_help = "Example:\n  cachehost run build/examples/persist-default.wasm\n  cachehost run flow.wasm --param n=3 --tasks tasks.wasm --json")]
    Run(RunArgs),
    /// Run one task of a component on its own (a standalone task run).
    #[command(after_help = "Example:\n  cachehost call build/examples/inputs.wasm add-one --arg x=41")]
    Call(CallArgs),
    /// Show a component's tasks, flows, signatures, resolved options and TASK_SOURCE digest.
    #[command(after_help = "Example:\n  cachehost inspect build/examples/inputs-exclude.wasm")]
    Inspect(InspectArgs),
}

/// Options every command that loads components shares.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Another component providing task interfaces the first one imports (repeatable).
    #[arg(long = "tasks", value_name = "COMPONENT.wasm")]
    pub tasks: Vec<PathBuf>,
    /// The configuration file (default: cachehost.toml beside the first component, if present).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print a JSON report on stdout instead of the result.
    #[arg(long)]
    pub json: bool,
    /// How many submitted task calls may run at once.
    #[arg(long, default_value_t = crate::run::DEFAULT_CONCURRENCY, value_name = "N")]
    pub concurrency: usize,
    /// Show log lines of this level and above: debug, info, warning, error.
    #[arg(long, default_value = "info", value_name = "LEVEL")]
    pub log_level: String,
}

/// `cachehost run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The flow component.
    #[arg(value_name = "FLOW.wasm")]
    pub flow: PathBuf,
    /// A flow parameter as NAME=JSON, e.g. `--param n=3` or `--param names='["a","b"]'` (repeatable).
    #[arg(long = "param", value_name = "NAME=JSON")]
    pub params: Vec<String>,
    /// Which flow to run when the component exports several.
    #[arg(long = "flow", value_name = "NAME")]
    pub flow_name: Option<String>,
    /// Loading options.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// `cachehost call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The component exporting the task.
    #[arg(value_name = "COMPONENT.wasm")]
    pub component: PathBuf,
    /// The task: its function name (`add-one`) or full name (`example:math/tasks#add-one`).
    pub task: String,
    /// An argument as NAME=JSON (repeatable).
    #[arg(long = "arg", value_name = "NAME=JSON")]
    pub args: Vec<String>,
    /// Loading options.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// `cachehost inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The component to describe.
    #[arg(value_name = "COMPONENT.wasm")]
    pub component: PathBuf,
    /// The configuration file (default: cachehost.toml beside the component, if present).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
