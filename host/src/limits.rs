//! Limits and grants (DESIGN §8): how much a run may use and what a component may touch,
//! as `cachehost.toml` and the `CACHEHOST_LIMITS_*` variables configure them.
//!
//! Deny by default: a component gets no files, environment, network or args unless
//! `[components."file.wasm"]` grants it preopened folders and named environment variables.
//! Every run has limits: memory (over all its linear memories), a wall-clock timeout (epoch
//! interruption, ticked every [`EPOCH_TICK`]), optional fuel, and, for task runs, the nesting
//! depth of task calls and the size of the result. Each exhausted limit is a
//! [`LimitExceeded`], never a string to parse. Enforcing them is [`crate::run::sandbox`]'s job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::units::{
    deserialize_size, deserialize_timeout, duration_text, parse_duration_or_seconds, parse_size, size_text,
};

/// The memory a Store may use when nothing else is configured: 512 MiB.
pub const DEFAULT_MEMORY: u64 = 512 * 1024 * 1024;
/// How deep task calls may nest by default.
pub const DEFAULT_MAX_NESTING_DEPTH: u32 = 64;
/// The largest result a task may return by default (postcard-encoded size): 16 MiB.
pub const DEFAULT_MAX_RESULT_SIZE: u64 = 16 * 1024 * 1024;
/// How often the engine's epoch advances: the resolution of timeouts.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);
/// The most native stack one Store's guest code may use (wasmtime's `max_wasm_stack`).
pub const MAX_WASM_STACK: usize = 512 * 1024;
/// Native stack budgeted per nesting level beyond the guest's own: the host's frames between
/// a guest's task import and the nested guest (generous for debug builds).
const HOST_STACK_PER_LEVEL: usize = 512 * 1024;

/// The strict sandbox's timeout of a task run: 10 s.
pub const STRICT_TIMEOUT: Duration = Duration::from_secs(10);
/// The strict sandbox's memory limit of a run: 256 MiB.
pub const STRICT_MEMORY: u64 = 256 * 1024 * 1024;
/// The strict sandbox's nesting depth of task calls: 16.
pub const STRICT_MAX_NESTING_DEPTH: u32 = 16;

/// How much a run is trusted: `sandbox = "strict"` (or `--sandbox strict`) for untrusted code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SandboxProfile {
    /// The limits and grants as configured.
    #[default]
    Default,
    /// At most [`STRICT_TIMEOUT`], [`STRICT_MEMORY`] and [`STRICT_MAX_NESTING_DEPTH`], and
    /// nothing granted. Configuration may tighten these limits, never loosen them: the
    /// `cachehost.toml` beside untrusted code may come from its author.
    Strict,
}

impl SandboxProfile {
    /// `default` or `strict`, any case.
    pub fn parse(text: &str) -> Option<SandboxProfile> {
        match text.trim().to_ascii_lowercase().as_str() {
            "default" => Some(SandboxProfile::Default),
            "strict" => Some(SandboxProfile::Strict),
            _ => None,
        }
    }

    /// The profile's name, as configured.
    pub fn name(self) -> &'static str {
        match self {
            SandboxProfile::Default => "default",
            SandboxProfile::Strict => "strict",
        }
    }

    /// `limits` under this profile: as they are, or no looser than the strict ones.
    pub fn cap(self, limits: Limits) -> Limits {
        match self {
            SandboxProfile::Default => limits,
            SandboxProfile::Strict => Limits {
                memory: limits.memory.min(STRICT_MEMORY),
                timeout: Some(limits.timeout.map_or(STRICT_TIMEOUT, |t| t.min(STRICT_TIMEOUT))),
                max_nesting_depth: limits.max_nesting_depth.min(STRICT_MAX_NESTING_DEPTH),
                ..limits
            },
        }
    }

    /// Whether components may be granted folders and environment variables.
    pub fn allows_grants(self) -> bool {
        self == SandboxProfile::Default
    }
}

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
    #[error("the task returned a result {}over the limit of {} \
        (max_result_size)", size.map(|s| format!("of {s} bytes, ")).unwrap_or_default(), size_text(*limit))]
    ResultSize {
        /// The encoded size of the result, when it got as far as being encoded.
        size: Option<u64>,
        /// The limit in bytes.
        limit: u64,
    },
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
    fn strict_caps_every_limit_it_sets_and_keeps_tighter_ones() {
        let strict = SandboxProfile::Strict.cap(Limits::default());
        assert_eq!(strict.timeout, Some(STRICT_TIMEOUT));
        assert_eq!(strict.memory, STRICT_MEMORY);
        assert_eq!(strict.max_nesting_depth, STRICT_MAX_NESTING_DEPTH);
        assert_eq!(strict.max_result_size, DEFAULT_MAX_RESULT_SIZE);
        let loose = Limits {
            memory: u64::MAX,
            timeout: Some(Duration::from_secs(3600)),
            max_nesting_depth: 1000,
            ..Limits::default()
        };
        assert_eq!(SandboxProfile::Strict.cap(loose), strict, "configuration cannot loosen strict");
        let tight = Limits {
            memory: 1 << 20,
            timeout: Some(Duration::from_millis(5)),
            max_nesting_depth: 2,
            ..Limits::default()
        };
        assert_eq!(SandboxProfile::Strict.cap(tight.clone()), tight);
        assert_eq!(SandboxProfile::Default.cap(Limits::default()), Limits::default());
        assert_eq!(SandboxProfile::parse(" Strict "), Some(SandboxProfile::Strict));
        assert_eq!(SandboxProfile::parse("lax"), None);
    }

    #[test]
    fn each_limit_names_itself() {
        let timeout = LimitExceeded::Timeout { limit: Duration::from_millis(1500) };
        assert_eq!(timeout.to_string(), "the task run exceeded its timeout of 1.5s (timeout)");
        let memory = LimitExceeded::Memory { limit: DEFAULT_MEMORY };
        assert_eq!(memory.to_string(), "the task run exceeded its memory limit of 512 MiB (memory)");
    }
}
