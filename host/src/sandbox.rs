//! The sandbox of a run (DESIGN §8): what a guest may touch, and how much it may use.
//!
//! Deny by default: a Store's WASI context has no files, environment, network or args.
//! `cachehost.toml` grants a component preopened folders and named environment variables in
//! `[components."file.wasm"]`. Every Store also gets limits: memory (a [`ResourceLimiter`]
//! over all its linear memories), a wall-clock timeout (epoch interruption, ticked by the
//! engine), optional fuel, and, for task runs, the nesting depth of task calls and the size
//! of the result. Each exhausted limit is a [`LimitExceeded`], never a string to parse.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use wasmtime::{ResourceLimiter, Store, Trap};
use wasmtime_wasi::{FsPerms, WasiCtx};

use crate::log::{GuestOutput, Level, Logger, Subject};
use crate::options::ResolvedTask;
use crate::run::ctx::RunCtx;
use crate::run::state::{State, StateName};
use crate::units::{
    deserialize_size, deserialize_timeout, duration_text, parse_duration_or_seconds, parse_size, size_text,
};

/// The memory a Store may use when nothing else is configured: 512 MiB.
pub const DEFAULT_MEMORY: u64 = 512 * 1024 * 1024;
/// How deep task calls may nest by default.
pub const DEFAULT_MAX_NESTING_DEPTH: u32 = 64;
/// The largest result a task may return by default (postcard-encoded size): 16 MiB.
pub const DEFAULT_MAX_RESULT_SIZE: u64 = 16 * 1024 * 1024;
/// wasmtime's message when a call copies more data out of a guest than its hostcall fuel
/// allows. Its error type is private, so this text is how it is recognised; the sandbox
/// integration tests fail if a wasmtime upgrade changes it.
const HOSTCALL_FUEL_EXHAUSTED: &str =
    "too much data is being copied between the host and the guest: fuel allocated for hostcalls has been exhausted";
/// How often the engine's epoch advances: the resolution of timeouts.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);
/// The most native stack one Store's guest code may use (wasmtime's `max_wasm_stack`).
pub const MAX_WASM_STACK: usize = 512 * 1024;
/// Native stack budgeted per nesting level beyond the guest's own: the host's frames between
/// a guest's task import and the nested guest (generous for debug builds).
const HOST_STACK_PER_LEVEL: usize = 512 * 1024;

/// A folder a component is given.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// The folder on the host; relative to the `cachehost.toml` folder.
    pub host: PathBuf,
    /// Where the guest sees it, e.g. `/data`.
    pub guest: String,
    /// `ro` (the default) or `rw`.
    #[serde(default)]
    pub mode: DirMode,
}

/// Whether a granted folder may be written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum DirMode {
    /// Read only: writes, creates and deletes are refused.
    #[default]
    #[serde(rename = "ro")]
    ReadOnly,
    /// Read and write.
    #[serde(rename = "rw")]
    ReadWrite,
}

/// What `[components."NAME"]` grants one component (by file name, `tasks.wasm`, or its stem).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentGrants {
    /// Preopened folders.
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
    /// Names of host environment variables the guest sees (when they are set).
    #[serde(default)]
    pub env: Vec<String>,
}

/// The `[limits]` table of `cachehost.toml`: defaults for every task run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsTable {
    /// Memory per run: bytes, or `"512MiB"`, `"1GiB"`, `"64MB"`.
    #[serde(default, deserialize_with = "deserialize_size")]
    pub memory: Option<u64>,
    /// Wall-clock timeout per task run: `"30s"`, `"5m"`, or seconds.
    #[serde(default, deserialize_with = "deserialize_timeout")]
    pub timeout: Option<Duration>,
    /// Fuel (roughly, wasm instructions) per task run.
    pub fuel: Option<u64>,
    /// How deep task calls may nest.
    pub max_nesting_depth: Option<u32>,
    /// The largest result a task may return: bytes or a size string.
    #[serde(default, deserialize_with = "deserialize_size")]
    pub max_result_size: Option<u64>,
}

/// The limits of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of linear memory, summed over the Store's memories.
    pub memory: u64,
    /// Wall-clock time; none waits forever.
    pub timeout: Option<Duration>,
    /// Fuel; none is unmetered.
    pub fuel: Option<u64>,
    /// How deep task calls may nest.
    pub max_nesting_depth: u32,
    /// The largest postcard-encoded result a task may return.
    pub max_result_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: DEFAULT_MEMORY,
            timeout: None,
            fuel: None,
            max_nesting_depth: DEFAULT_MAX_NESTING_DEPTH,
            max_result_size: DEFAULT_MAX_RESULT_SIZE,
        }
    }
}

/// A limit setting that cannot be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{name} is not a valid {what}: {value:?}")]
pub struct LimitSettingError {
    /// The environment variable.
    pub name: String,
    /// What it should hold.
    pub what: &'static str,
    /// What it holds.
    pub value: String,
}

impl Limits {
    /// The global limits: `CACHEHOST_LIMITS_*` variables (read through `env`), else
    /// `[limits]`, else the defaults.
    pub fn load(
        env: impl Fn(&str) -> Option<String>,
        table: Option<&LimitsTable>,
    ) -> Result<Limits, LimitSettingError> {
        let table = table.cloned().unwrap_or_default();
        let var = |key: &str| {
            let name = format!("CACHEHOST_LIMITS_{}", key.to_uppercase());
            env(&name).filter(|v| !v.trim().is_empty()).map(|v| (name, v))
        };
        let bad = |name: String, what, value: String| LimitSettingError { name, what, value };
        let memory = match var("memory") {
            Some((name, v)) => Some(parse_size(&v).ok_or_else(|| bad(name, "size like 512MiB", v))?),
            None => table.memory,
        };
        let timeout = match var("timeout") {
            Some((name, v)) => Some(parse_duration_or_seconds(&v).ok_or_else(|| bad(name, "duration like 30s", v))?),
            None => table.timeout,
        };
        let fuel = match var("fuel") {
            Some((name, v)) => Some(v.trim().parse().map_err(|_| bad(name, "number", v))?),
            None => table.fuel,
        };
        let max_nesting_depth = match var("max_nesting_depth") {
            Some((name, v)) => Some(v.trim().parse().map_err(|_| bad(name, "number", v))?),
            None => table.max_nesting_depth,
        };
        let max_result_size = match var("max_result_size") {
            Some((name, v)) => Some(parse_size(&v).ok_or_else(|| bad(name, "size like 64MiB", v))?),
            None => table.max_result_size,
        };
        let default = Limits::default();
        Ok(Limits {
            memory: memory.unwrap_or(default.memory),
            timeout: timeout.filter(|t| !t.is_zero()),
            fuel,
            max_nesting_depth: max_nesting_depth.unwrap_or(default.max_nesting_depth),
            max_result_size: max_result_size.unwrap_or(default.max_result_size),
        })
    }

    /// These limits with a task's own options (`[tasks."NAME"]`) applied over them.
    pub fn for_task(&self, task: &ResolvedTask) -> Limits {
        Limits {
            memory: task.memory.unwrap_or(self.memory),
            timeout: task.timeout.or(self.timeout).filter(|t| !t.is_zero()),
            fuel: task.fuel.or(self.fuel),
            max_nesting_depth: self.max_nesting_depth,
            max_result_size: task.max_result_size.unwrap_or(self.max_result_size),
        }
    }

    /// The native stack a thread needs to run guests nested as deep as these limits allow.
    pub fn stack_size(&self) -> usize {
        (self.max_nesting_depth as usize + 2) * (MAX_WASM_STACK + HOST_STACK_PER_LEVEL)
    }
}

/// A limit a run exhausted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// The guest tried to grow its memory past the limit.
    #[error("the task run exceeded its memory limit of {} (memory)", size_text(*limit))]
    Memory {
        /// The limit in bytes.
        limit: u64,
    },
    /// The run took longer than its timeout.
    #[error("the task run exceeded its timeout of {} (timeout)", duration_text(*limit))]
    Timeout {
        /// The timeout.
        limit: Duration,
    },
    /// The run used up its fuel.
    #[error("the task run ran out of fuel after {limit} units (fuel)")]
    Fuel {
        /// The fuel it was given.
        limit: u64,
    },
    /// A task call was nested deeper than allowed; the call was refused.
    #[error("task calls are nested deeper than the limit of {limit} (max_nesting_depth)")]
    NestingDepth {
        /// The limit.
        limit: u32,
    },
    /// The task returned a result larger than allowed.
    #[error("the task returned a result {}over the limit of {} (max_result_size)", size.map(|s| format!("of {s} bytes, ")).unwrap_or_default(), size_text(*limit))]
    ResultSize {
        /// The encoded size of the result, when it got as far as being encoded.
        size: Option<u64>,
        /// The limit in bytes.
        limit: u64,
    },
}

impl LimitExceeded {
    /// The final state of a run that exhausted this limit: TimedOut for the timeout, else Failed.
    pub fn state(&self) -> State {
        let message = format!("Task run failed: {self}");
        match self {
            LimitExceeded::Timeout { .. } => State { name: StateName::TimedOut, message: Some(message) },
            _ => State::failed(message),
        }
    }
}

/// Why running guest code failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunFailure {
    /// A limit was exhausted.
    Limit(LimitExceeded),
    /// The guest trapped (panic, `unreachable`, stack overflow...) or could not start.
    Trap(String),
}

impl fmt::Display for RunFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunFailure::Limit(limit) => limit.fmt(f),
            RunFailure::Trap(message) => f.write_str(message),
        }
    }
}

/// Classifies the error of a call into guest code run under `limits`.
pub fn classify(error: &wasmtime::Error, limits: &Limits) -> RunFailure {
    if let Some(limit) = error.downcast_ref::<LimitExceeded>() {
        return RunFailure::Limit(limit.clone());
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => {
            RunFailure::Limit(LimitExceeded::Timeout { limit: limits.timeout.unwrap_or_default() })
        }
        Some(Trap::OutOfFuel) => RunFailure::Limit(LimitExceeded::Fuel { limit: limits.fuel.unwrap_or_default() }),
        _ => {
            let root = error.root_cause().to_string();
            if root == HOSTCALL_FUEL_EXHAUSTED {
                return RunFailure::Limit(LimitExceeded::ResultSize { size: None, limit: limits.max_result_size });
            }
            // The cause first (`wasm trap: ...`), then the chain with the guest's backtrace.
            RunFailure::Trap(format!("{root}\n{error:#}"))
        }
    }
}

/// The memory limiter of one Store: the sum of its linear memories stays under the limit.
pub struct MemoryLimiter {
    limit: u64,
    used: u64,
}

impl MemoryLimiter {
    /// A limiter allowing `limit` bytes in total.
    pub fn new(limit: u64) -> MemoryLimiter {
        MemoryLimiter { limit, used: 0 }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let used = self.used - current as u64 + desired as u64;
        if used > self.limit {
            // An error, not `Ok(false)`: the guest traps at once with the reason, instead of
            // seeing a failed `memory.grow` and aborting with a message of its own.
            return Err(wasmtime::Error::new(LimitExceeded::Memory { limit: self.limit }));
        }
        self.used = used;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Table elements are pointers: count them against the same budget.
        Ok((desired as u64).saturating_mul(8) <= self.limit)
    }
}

/// Applies `limits` to a new Store: memory, fuel and the epoch deadline.
pub fn apply_limits(store: &mut Store<RunCtx>, limits: &Limits, fuel_metered: bool) {
    store.limiter(|ctx| &mut ctx.limiter);
    if fuel_metered {
        // A Store of a fuel-metered engine starts empty; runs without a fuel limit get all of it.
        let _ = store.set_fuel(limits.fuel.unwrap_or(u64::MAX));
    }
    let ticks = match limits.timeout {
        Some(timeout) => timeout.as_nanos().div_ceil(EPOCH_TICK.as_nanos()).max(1) as u64,
        // The deadline is the current epoch plus this, which must not overflow.
        None => u64::MAX / 2,
    };
    store.set_epoch_deadline(ticks);
    // wasmtime bounds what the host allocates to lift a guest's values (one `Val` per list
    // item): allow a result of `max_result_size` bytes and no more.
    store.set_hostcall_fuel(hostcall_fuel(limits.max_result_size));
}

/// The hostcall fuel that lets wasmtime lift a value of up to `items` list items: its
/// dynamic API lifts a `list<u8>` as one `Val` per byte and charges `size_of::<Val>()`
/// (32 bytes) for each.
pub fn hostcall_fuel(items: u64) -> usize {
    let per_item = std::mem::size_of::<wasmtime::component::Val>() as u64;
    usize::try_from(items.saturating_mul(per_item)).unwrap_or(usize::MAX)
}

/// Builds the WASI context of a Store of `component`: stdout/stderr become log lines of
/// `subject`; nothing else unless `grants` give it. A granted folder that cannot be opened
/// is logged at ERROR and left out (denied).
pub fn wasi_ctx(logger: &std::sync::Arc<Logger>, subject: &Subject, grants: Option<&ComponentGrants>) -> WasiCtx {
    let mut builder = WasiCtx::builder();
    builder
        .stdout(GuestOutput::new(logger.clone(), subject.clone(), Level::Info))
        .stderr(GuestOutput::new(logger.clone(), subject.clone(), Level::Warning))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    if let Some(grants) = grants {
        for dir in &grants.dirs {
            let perms = match dir.mode {
                DirMode::ReadOnly => FsPerms::ReadOnly,
                DirMode::ReadWrite => FsPerms::ReadWrite,
            };
            if let Err(e) = builder.preopened_dir(&dir.host, &dir.guest, perms) {
                logger.log(
                    Level::Error,
                    subject,
                    &format!(
                        "Cannot open the granted folder {} for {}: {e:#}; it is not given",
                        dir.host.display(),
                        dir.guest
                    ),
                );
            }
        }
        for name in &grants.env {
            if let Ok(value) = std::env::var(name) {
                builder.env(name, value);
            }
        }
    }
    builder.build()
}

/// Whether any configured limit meters fuel, so the engine must be built with fuel metering.
pub fn needs_fuel(settings: &crate::settings::Settings, config: Option<&crate::settings::ConfigFile>) -> bool {
    settings.limits.fuel.is_some() || config.is_some_and(|c| c.tasks.values().any(|t| t.fuel.is_some()))
}

/// The grants of the component in `file` (by file name, else by stem), with relative host
/// folders made relative to `config_dir`.
pub fn grants_for(
    components: &BTreeMap<String, ComponentGrants>,
    file: &Path,
    config_dir: &Path,
) -> Option<ComponentGrants> {
    let name = file.file_name()?.to_string_lossy();
    let stem = file.file_stem()?.to_string_lossy();
    let grants = components.get(name.as_ref()).or_else(|| components.get(stem.as_ref()))?;
    let mut grants = grants.clone();
    for dir in &mut grants.dirs {
        dir.host = config_dir.join(&dir.host);
    }
    Some(grants)
}

/// Runs `f` on a thread whose stack fits guests nested as deep as `limits` allow: each
/// nested task run has its own Store, so each level may use [`MAX_WASM_STACK`] of native
/// stack on top of the host's frames, more than a main thread has.
pub fn on_deep_stack<T: Send>(limits: &Limits, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("cachehost-run".into())
            .stack_size(limits.stack_size())
            .spawn_scoped(scope, f)
            .expect("the operating system starts a thread")
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_beats_the_table_and_defaults_fill_the_rest() {
        let table = LimitsTable { memory: Some(1 << 20), timeout: Some(Duration::from_secs(3)), ..Default::default() };
        let limits =
            Limits::load(|name| (name == "CACHEHOST_LIMITS_TIMEOUT").then(|| "250ms".to_owned()), Some(&table))
                .unwrap();
        assert_eq!(limits.memory, 1 << 20);
        assert_eq!(limits.timeout, Some(Duration::from_millis(250)));
        assert_eq!(limits.max_nesting_depth, DEFAULT_MAX_NESTING_DEPTH);
        assert_eq!(limits.max_result_size, DEFAULT_MAX_RESULT_SIZE);
        assert_eq!(limits.fuel, None);
        let err =
            Limits::load(|name| (name == "CACHEHOST_LIMITS_MEMORY").then(|| "lots".to_owned()), None).unwrap_err();
        assert_eq!(err.to_string(), "CACHEHOST_LIMITS_MEMORY is not a valid size like 512MiB: \"lots\"");
    }

    #[test]
    fn the_memory_limiter_counts_every_memory_of_the_store() {
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        assert!(limiter.memory_growing(60, 80, None).unwrap());
        let err = limiter.memory_growing(0, 30, None).unwrap_err();
        assert_eq!(err.downcast_ref::<LimitExceeded>(), Some(&LimitExceeded::Memory { limit: 100 }));
        assert!(limiter.memory_growing(0, 20, None).unwrap());
    }

    #[test]
    fn each_limit_names_itself_and_only_the_timeout_is_timed_out() {
        let timeout = LimitExceeded::Timeout { limit: Duration::from_millis(1500) };
        assert_eq!(timeout.state().name, StateName::TimedOut);
        assert_eq!(timeout.to_string(), "the task run exceeded its timeout of 1.5s (timeout)");
        let memory = LimitExceeded::Memory { limit: DEFAULT_MEMORY };
        assert_eq!(memory.state().name, StateName::Failed);
        assert_eq!(memory.to_string(), "the task run exceeded its memory limit of 512 MiB (memory)");
    }
}
