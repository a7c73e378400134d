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
    #[command(
        after_help = "Example:\n  cachehost run build/examples/persist-default.wasm\n  cachehost run flow.wasm --param \
            n=3 --tasks tasks.wasm --json"
    )]
    Run(RunArgs),
    /// Run one task of a component on its own (a standalone task run).
    #[command(after_help = "Example:\n  cachehost call build/examples/inputs.wasm add-one --arg x=41")]
    Call(CallArgs),
    /// Show a component's tasks, flows, signatures, resolved options and TASK_SOURCE digest.
    #[command(after_help = "Example:\n  cachehost inspect build/examples/inputs-exclude.wasm")]
    Inspect(InspectArgs),
    /// Manage the result store: list, show, explain, remove and prune cached records.
    #[command(after_help = "Examples:\n  cachehost cache ls --task add-one\n  cachehost cache explain \
            build/examples/inputs.wasm add-one --arg x=1\n  cachehost cache prune --dry-run")]
    Cache(CacheArgs),
    /// Make and show the ed25519 key this host signs its cache records with.
    #[command(after_help = "Examples:\n  cachehost key generate --out ~/.cachehost/signing.key\n  cachehost key show")]
    Key(KeyArgs),
    /// Write a new component that builds: its WIT, its source, its SDK and its build script.
    #[command(
        after_help = "Examples:\n  cachehost new --lang python my-tasks\n  cachehost new --lang rust my-tasks --dir \
            components/my-tasks"
    )]
    New(NewArgs),
    /// The run history: every `cachehost run` keeps its report in $CACHEHOST_HOME/runs (the `runs_keep` most recent).
    #[command(
        after_help = "Examples:\n  cachehost runs ls\n  cachehost runs show 0190f3c4 --json\n  cachehost runs rm \
            0190f3c4"
    )]
    Runs(RunsArgs),
    /// Serve a local web page of the runs and the cache: a timeline of each run, the records, what they saved.
    #[command(after_help = "Examples:\n  cachehost ui --open\n  cachehost ui --port 8080\n  cachehost ui --bind \
            0.0.0.0 --token   (a random token, printed)")]
    Ui(UiArgs),
    /// Run the task calls that flows send to a Redis queue (`cachehost run --executor redis://…`), here, in the
    /// sandbox, writing their records to the flows' shared result storage; `worker status` shows the queue.
    #[command(
        after_help = "Run one worker per machine, all on one Redis and one shared result storage (S3, or a shared \
            folder):\n  cachehost worker --queue redis://10.0.0.5:6379 --concurrency 4\n  cachehost run flow.wasm \
            --executor redis://10.0.0.5:6379\n  cachehost worker status --queue redis://10.0.0.5:6379\n\nSIGTERM or \
            Ctrl-C drains: running calls finish, no new one is taken. A worker killed outright loses nothing: \
            once its lease lapses (--lease, worker_lease) another worker runs its calls again."
    )]
    Worker(WorkerArgs),
}

/// `cachehost worker`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct WorkerArgs {
    /// `status`, or nothing to run a worker.
    #[command(subcommand)]
    pub command: Option<WorkerCommand>,
    /// The Redis queue: redis://host:port[/db].
    #[arg(long, value_name = "URL")]
    pub queue: Option<String>,
    /// The worker's name in the queue (default: <hostname>-<pid>).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// How many calls this worker runs at once.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub concurrency: usize,
    /// How long the worker's claim on a call lasts unless renewed (it is renewed every third of it while the call
    /// runs); another worker takes over calls whose claim lapsed. Default: worker_lease, else 30s.
    #[arg(long, value_name = "DURATION")]
    pub lease: Option<String>,
    /// `strict` runs every call under the strict sandbox, whatever the flow's configuration says.
    #[arg(long, value_name = "PROFILE")]
    pub sandbox: Option<String>,
    /// Show log lines of this level and above: debug, info, warning, error.
    #[arg(long, default_value = "info", value_name = "LEVEL")]
    pub log_level: String,
}

/// The `cachehost worker` subcommands.
#[derive(Debug, Subcommand)]
pub enum WorkerCommand {
    /// The workers, the calls they run, the depth of the queue and the dead letters.
    #[command(after_help = "Example:\n  cachehost worker status --queue redis://127.0.0.1:6379 --json")]
    Status(WorkerStatusArgs),
}

/// `cachehost worker status`.
#[derive(Debug, Args)]
pub struct WorkerStatusArgs {
    /// The Redis queue: redis://host:port[/db].
    #[arg(long, value_name = "URL")]
    pub queue: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `cachehost runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// What to do with the run history.
    #[command(subcommand)]
    pub command: RunsCommand,
}

/// The `cachehost runs` subcommands.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List the kept runs, most recent first: name, flow, state, start, duration, task runs.
    Ls(RunsLsArgs),
    /// Show one run: the flow run and each task run with its state and cache key.
    Show(RunsShowArgs),
    /// Remove kept runs by id (or the start of one), or all of them with --all.
    Rm(RunsRmArgs),
}

/// `cachehost runs ls`.
#[derive(Debug, Args)]
pub struct RunsLsArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `cachehost runs show`.
#[derive(Debug, Args)]
pub struct RunsShowArgs {
    /// The flow run id, or the start of it.
    pub id: String,
    /// Print the run report as JSON (as `cachehost run --json` printed it).
    #[arg(long)]
    pub json: bool,
}

/// `cachehost runs rm`.
#[derive(Debug, Args)]
pub struct RunsRmArgs {
    /// Flow run ids, or starts of them.
    pub ids: Vec<String>,
    /// Remove every kept run.
    #[arg(long, conflicts_with = "ids")]
    pub all: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `cachehost ui`.
#[derive(Debug, Args)]
pub struct UiArgs {
    /// The port to listen on (0: any free port; the address is printed).
    #[arg(long, default_value_t = 4300, value_name = "N")]
    pub port: u16,
    /// The address to listen on. Anything but loopback needs --token.
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    pub bind: std::net::IpAddr,
    /// Require this token on every request (given once as ?token=, then kept in a cookie); without a
    /// value, a random one is made and printed.
    #[arg(long, value_name = "T", num_args = 0..=1, default_missing_value = "")]
    pub token: Option<String>,
    /// Open the page in the default browser.
    #[arg(long)]
    pub open: bool,
    /// The result store shown: a folder (default: CACHEHOST_LOCAL_STORAGE_PATH, or $CACHEHOST_HOME/storage).
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub storage: Option<PathBuf>,
    /// The key store, for records written with `key_storage`.
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub key_storage: Option<PathBuf>,
}

/// `cachehost key`.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// What to do with keys.
    #[command(subcommand)]
    pub command: KeyCommand,
}

/// The `cachehost key` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make a new key pair: the private key goes to a new file readable by its owner only, the public key to stdout.
    Generate {
        /// Where to write the private key (default: $CACHEHOST_HOME/signing.key); an existing file is never replaced.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Print the public key of a private key file as `cachehost-ed25519:<base64>`, for other hosts' trusted_keys.
    Show {
        /// The private key file (default: the signing_key setting, else $CACHEHOST_HOME/signing.key).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
}

/// `cachehost new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The component's language: python, js, rust or c.
    #[arg(long, value_name = "LANG", value_parser = ["python", "js", "rust", "c"])]
    pub lang: String,
    /// The component's name: lower-case words joined by '-' (its WIT package is local:NAME).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The folder to create (default: ./NAME).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
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
    /// The sandbox profile: `strict` for untrusted code (timeout, memory limit, nesting depth, no grants), or
    /// `default` (overrides CACHEHOST_SANDBOX and `sandbox` in cachehost.toml).
    #[arg(long, value_name = "PROFILE")]
    pub sandbox: Option<String>,
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
    /// Send the flow's task calls that miss the cache to the workers of this Redis queue (`cachehost worker`);
    /// overrides CACHEHOST_EXECUTOR and `executor` in cachehost.toml.
    #[arg(long, value_name = "redis://HOST:PORT")]
    pub executor: Option<String>,
    /// How long a call sent to workers waits for its outcome, and how long Redis may be unreachable meanwhile
    /// (default: executor_timeout, else 5m).
    #[arg(long, value_name = "DURATION")]
    pub executor_timeout: Option<String>,
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
    /// Describe the component under this sandbox profile (`strict` or `default`).
    #[arg(long, value_name = "PROFILE")]
    pub sandbox: Option<String>,
}

/// `cachehost cache`.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// What to do with the cache.
    #[command(subcommand)]
    pub command: CacheCommand,
}

/// The `cachehost cache` subcommands.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// List cached records with their task, component, size, cost (the wall time and fuel of the body that computed
    /// it; - for records written before costs were kept), age and expiry.
    #[command(after_help = "Examples:\n  cachehost cache ls\n  cachehost cache ls --task add-one --newer-than 1h\n  \
            cachehost cache ls --component build/examples/inputs.wasm --json\n  cachehost cache ls --expired")]
    Ls(CacheLsArgs),
    /// Show one record: its metadata, its key parts and its value as JSON.
    #[command(
        after_help = "Examples:\n  cachehost cache show 3f1c0a9e5d2b   (a key, or the start of one)\n  cachehost cache \
            show constant-key --json"
    )]
    Show(CacheShowArgs),
    /// Remove records by key, task or component; says how many were removed.
    #[command(
        after_help = "Examples:\n  cachehost cache rm 3f1c0a9e5d2b\n  cachehost cache rm --task add-one\n  cachehost \
            cache rm --component build/examples/inputs.wasm --dry-run"
    )]
    Rm(CacheRmArgs),
    /// Remove expired records, and with --missing-components the records of components that are gone, and with
    /// --max-size the records least worth keeping until the rest fit; with key storage, also the stored values no key
    /// references any more (after a 10-minute grace); and the data of calls sent to workers that a flow stopped
    /// before their outcomes came (after a day).
    #[command(
        after_help = "Examples:\n  cachehost cache prune\n  cachehost cache prune --missing-components build/examples \
            --dry-run\n  cachehost cache prune --max-size 500MiB --json"
    )]
    Prune(CachePruneArgs),
    /// Per task: task runs, hits, misses and the compute the hits saved (the sum of the costs their records keep),
    /// over the runs kept in $CACHEHOST_HOME/runs, with the records the store holds.
    #[command(
        after_help = "Hits are counted from the run history, so only the runs_keep most recent flow runs of this \
            CACHEHOST_HOME count: not standalone `cachehost call`s, nor hits by other machines sharing the store.\n\n\
            Examples:\n  cachehost cache stats\n  cachehost cache stats --storage s3://bucket/prefix --json"
    )]
    Stats(CacheStatsArgs),
    /// Compute the key a task call would use and say, part by part, whether it would hit.
    #[command(
        after_help = "Examples:\n  cachehost cache explain build/examples/inputs.wasm add-one --arg x=1\n  cachehost \
            cache explain flow.wasm add-one --arg x=1 --flow-run-id 0190f3c4-7d2a-7a1b-9c3e-5f6a7b8c9d0e\n  cachehost \
            cache explain split-flow.wasm greet --tasks split-tasks.wasm --arg 'name=\"Ada\"' --json"
    )]
    Explain(CacheExplainArgs),
    /// Replay recorded results of `replayable` tasks in the sandbox and compare value digests: match, differs (exit
    /// status 1) or cannot replay, then a summary.
    #[command(
        after_help = "Examples:\n  cachehost cache verify --components build/examples\n  cachehost cache verify --all \
            --task stamp --components build/examples --json"
    )]
    Verify(CacheVerifyArgs),
}

/// `cachehost cache verify`.
#[derive(Debug, Args)]
pub struct CacheVerifyArgs {
    /// Replay this many records picked at random among the replayable ones (default 10).
    #[arg(long, value_name = "N", conflicts_with = "all")]
    pub sample: Option<usize>,
    /// Replay every replayable record.
    #[arg(long)]
    pub all: bool,
    /// Only records of this task: function name (`add-one`) or full name.
    #[arg(long, value_name = "TASK")]
    pub task: Option<String>,
    /// Where the components are: .wasm files, or folders searched for them, matched by digest (default: the current
    /// folder).
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub components: Vec<PathBuf>,
    /// Where, and how to print.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Where the records are, and how to print them; shared by every `cache` subcommand.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The result store: a folder or s3://bucket/prefix (default: CACHEHOST_LOCAL_STORAGE_PATH,
    /// or $CACHEHOST_HOME/storage).
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub storage: Option<PathBuf>,
    /// The key store, for records written with `key_storage`: key records there, their
    /// values in --storage.
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub key_storage: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Which records `cache ls` and `cache rm` apply to.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Only records of this task: function name (`add-one`) or full name.
    #[arg(long, value_name = "TASK")]
    pub task: Option<String>,
    /// Only records of this component: a .wasm file, or the start of its digest.
    #[arg(long, value_name = "FILE|DIGEST")]
    pub component: Option<String>,
    /// Only records created at least this long ago, e.g. `30s`, `5m`, `2h`, `1d`.
    #[arg(long, value_name = "AGE")]
    pub older_than: Option<String>,
    /// Only records created less than this long ago, e.g. `10m`.
    #[arg(long, value_name = "AGE")]
    pub newer_than: Option<String>,
    /// Only records that have expired.
    #[arg(long)]
    pub expired: bool,
    /// Only records signed by this key (`cachehost-ed25519:…`, as `cachehost key show` prints it), or `unsigned`.
    #[arg(long, value_name = "KEY|unsigned")]
    pub signer: Option<String>,
}

/// `cachehost cache ls`.
#[derive(Debug, Args)]
pub struct CacheLsArgs {
    /// Which records.
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Where, and how to print.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `cachehost cache show`.
#[derive(Debug, Args)]
pub struct CacheShowArgs {
    /// The record's key, or the start of it.
    pub key: String,
    /// Where, and how to print.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `cachehost cache rm`.
#[derive(Debug, Args)]
pub struct CacheRmArgs {
    /// Keys (or starts of keys) of records to remove.
    pub keys: Vec<String>,
    /// Which records, besides the keys given.
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Say what would be removed, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Where, and how to print.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `cachehost cache prune`.
#[derive(Debug, Args)]
pub struct CachePruneArgs {
    /// Also remove records whose component is none of these .wasm files or the .wasm files under these folders.
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub missing_components: Vec<PathBuf>,
    /// Also remove entries that are not readable records (corrupt, or from another format version).
    #[arg(long)]
    pub unreadable: bool,
    /// Also remove records until the results of the rest take at most SIZE (e.g. 500MiB, 2GB; as `cache ls` totals
    /// them), keeping those with the highest cost × recent hits per byte: hits in the runs kept in $CACHEHOST_HOME/runs;
    /// a record never hit, or written before costs were kept, ranks as worth 0 (the oldest of those go first).
    #[arg(long, value_name = "SIZE")]
    pub max_size: Option<String>,
    /// Say what would be removed, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Where, and how to print.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `cachehost cache stats`.
#[derive(Debug, Args)]
pub struct CacheStatsArgs {
    /// Where, and how to print.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `cachehost cache explain`.
#[derive(Debug, Args)]
pub struct CacheExplainArgs {
    /// The flow or task component whose task would be called.
    #[arg(value_name = "FLOW.wasm|COMPONENT.wasm")]
    pub component: PathBuf,
    /// The task: its function name (`add-one`) or full name.
    pub task: String,
    /// An argument as NAME=JSON (repeatable).
    #[arg(long = "arg", value_name = "NAME=JSON")]
    pub args: Vec<String>,
    /// Explain the call as if made inside this flow run (its id, as in `cache show` or a run report).
    #[arg(long, value_name = "ID")]
    pub flow_run_id: Option<String>,
    /// Another component providing task interfaces (repeatable).
    #[arg(long = "tasks", value_name = "COMPONENT.wasm")]
    pub tasks: Vec<PathBuf>,
    /// The configuration file (default: cachehost.toml beside the component, if present).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Where, and how to print.
    #[command(flatten)]
    pub store: StoreArgs,
}
