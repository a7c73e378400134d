//! Settings from the environment and `cachehost.toml` (DESIGN §4, reference §15).
//!
//! Prefect's settings with the `CACHEHOST_` prefix. Each is read from the environment,
//! else from the `[settings]` table of `cachehost.toml`, else its default; [`Settings`]
//! remembers which, so `cachehost inspect` can say where a value came from. The same file
//! holds per-task options in `[tasks."NAME"]` tables, parsed here into [`TaskOptions`], which
//! [`crate::options`] layers over what components declare.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use thiserror::Error;

use crate::limits::{ComponentGrants, LimitSettingError, Limits, LimitsTable, SandboxProfile};
use crate::units::{deserialize_size, deserialize_timeout, parse_duration};

/// One setting, named as in the environment (`CACHEHOST_…`) and in `[settings]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Setting {
    /// `CACHEHOST_HOME`: cachehost's own folder.
    Home,
    /// `CACHEHOST_LOCAL_STORAGE_PATH`: the default result store.
    LocalStoragePath,
    /// `CACHEHOST_RESULTS_PERSIST_BY_DEFAULT`: fallback for persisting results (reference 8.1).
    ResultsPersistByDefault,
    /// `CACHEHOST_TASKS_REFRESH_CACHE`: overwrite for tasks whose refresh_cache is unset (10.1).
    TasksRefreshCache,
    /// `CACHEHOST_TASKS_DEFAULT_PERSIST_RESULT`: persist_result for tasks that leave it unset (8.1).
    TasksDefaultPersistResult,
    /// `CACHEHOST_TASKS_DEFAULT_NO_CACHE`: NONE for tasks without a cache_policy (2.1).
    TasksDefaultNoCache,
    /// `CACHEHOST_TASKS_DISABLE_CACHING`: NONE for every task (2.5).
    TasksDisableCaching,
    /// `CACHEHOST_TASKS_DEFAULT_RETRIES`: retries of tasks that leave `retries` unset
    /// (Prefect's `PREFECT_TASKS_DEFAULT_RETRIES`).
    TasksDefaultRetries,
    /// `CACHEHOST_TASKS_DEFAULT_RETRY_DELAY`: the wait before each such retry, e.g. `10s`.
    TasksDefaultRetryDelay,
    /// `CACHEHOST_SIGNING_KEY`: the private key file this host signs its records with.
    SigningKey,
    /// `CACHEHOST_TRUSTED_KEYS`: the public keys of the writers a reader accepts.
    TrustedKeys,
    /// `CACHEHOST_TRUSTED_KEYS_FILE`: a file of trusted public keys, one a line.
    TrustedKeysFile,
    /// `CACHEHOST_REQUIRE_SIGNED`: with trusted keys, whether unsigned records are misses.
    RequireSigned,
    /// `CACHEHOST_SANDBOX`: the sandbox profile, `default` or `strict`.
    Sandbox,
    /// `CACHEHOST_RUNS_KEEP`: how many run reports `$CACHEHOST_HOME/runs` keeps, the most
    /// recent (default 1,000; 0 keeps none).
    RunsKeep,
    /// `CACHEHOST_DETERMINISM`: what a cached task that read the clock, random or its
    /// environment gets: `warn` (default), `deny` or `off`.
    Determinism,
    /// `CACHEHOST_EXECUTOR`: `redis://host:port` sends a flow's task calls to workers there
    /// (default: none, every call runs in the flow's process).
    Executor,
    /// `CACHEHOST_EXECUTOR_TIMEOUT`: how long a call sent to workers waits for its outcome,
    /// and how long Redis may be unreachable meanwhile (default: 5m).
    ExecutorTimeout,
    /// `CACHEHOST_WORKER_LEASE`: how long a worker's claim on a call lasts unless renewed;
    /// once it lapses, another worker runs the call (default: 30s).
    WorkerLease,
}

impl Setting {
    /// Every setting, in the order they are documented.
    pub const ALL: [Setting; 19] = [
        Setting::Home,
        Setting::LocalStoragePath,
        Setting::ResultsPersistByDefault,
        Setting::TasksRefreshCache,
        Setting::TasksDefaultPersistResult,
        Setting::TasksDefaultNoCache,
        Setting::TasksDisableCaching,
        Setting::TasksDefaultRetries,
        Setting::TasksDefaultRetryDelay,
        Setting::SigningKey,
        Setting::TrustedKeys,
        Setting::TrustedKeysFile,
        Setting::RequireSigned,
        Setting::Sandbox,
        Setting::RunsKeep,
        Setting::Determinism,
        Setting::Executor,
        Setting::ExecutorTimeout,
        Setting::WorkerLease,
    ];

    /// The key in `[settings]`: the environment name, lower-case, without `CACHEHOST_`.
    pub fn key(self) -> &'static str {
        match self {
            Setting::Home => "home",
            Setting::LocalStoragePath => "local_storage_path",
            Setting::ResultsPersistByDefault => "results_persist_by_default",
            Setting::TasksRefreshCache => "tasks_refresh_cache",
            Setting::TasksDefaultPersistResult => "tasks_default_persist_result",
            Setting::TasksDefaultNoCache => "tasks_default_no_cache",
            Setting::TasksDisableCaching => "tasks_disable_caching",
            Setting::TasksDefaultRetries => "tasks_default_retries",
            Setting::TasksDefaultRetryDelay => "tasks_default_retry_delay",
            Setting::SigningKey => "signing_key",
            Setting::TrustedKeys => "trusted_keys",
            Setting::TrustedKeysFile => "trusted_keys_file",
            Setting::RequireSigned => "require_signed",
            Setting::Sandbox => "sandbox",
            Setting::RunsKeep => "runs_keep",
            Setting::Determinism => "determinism",
            Setting::Executor => "executor",
            Setting::ExecutorTimeout => "executor_timeout",
            Setting::WorkerLease => "worker_lease",
        }
    }

    /// The environment variable, e.g. `CACHEHOST_TASKS_REFRESH_CACHE`.
    pub fn env_name(self) -> String {
        format!("CACHEHOST_{}", self.key().to_uppercase())
    }
}

/// How many run reports `$CACHEHOST_HOME/runs` keeps unless `runs_keep` says otherwise.
pub const DEFAULT_RUNS_KEEP: usize = 1000;

/// How long a call sent to workers waits for its outcome unless `executor_timeout` says.
pub const DEFAULT_EXECUTOR_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a worker's claim on a call lasts unless renewed, unless `worker_lease` says.
pub const DEFAULT_WORKER_LEASE: Duration = Duration::from_secs(30);

/// The resolved settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `CACHEHOST_HOME`, default `~/.cachehost`.
    pub home: PathBuf,
    /// `CACHEHOST_LOCAL_STORAGE_PATH`, default `$CACHEHOST_HOME/storage`.
    pub local_storage_path: PathBuf,
    /// `CACHEHOST_RESULTS_PERSIST_BY_DEFAULT`, default false.
    pub results_persist_by_default: bool,
    /// `CACHEHOST_TASKS_REFRESH_CACHE`, default false.
    pub tasks_refresh_cache: bool,
    /// `CACHEHOST_TASKS_DEFAULT_PERSIST_RESULT`, default unset.
    pub tasks_default_persist_result: Option<bool>,
    /// `CACHEHOST_TASKS_DEFAULT_NO_CACHE`, default false.
    pub tasks_default_no_cache: bool,
    /// `CACHEHOST_TASKS_DISABLE_CACHING`, default false.
    pub tasks_disable_caching: bool,
    /// `CACHEHOST_TASKS_DEFAULT_RETRIES`, default 0.
    pub tasks_default_retries: u32,
    /// `CACHEHOST_TASKS_DEFAULT_RETRY_DELAY`, default none.
    pub tasks_default_retry_delay: Duration,
    /// `CACHEHOST_RUNS_KEEP`, default [`DEFAULT_RUNS_KEEP`].
    pub runs_keep: usize,
    /// The global limits of task runs: `CACHEHOST_LIMITS_*`, else `[limits]`, else defaults;
    /// under the strict sandbox, never looser than its limits.
    pub limits: Limits,
    /// `CACHEHOST_SIGNING_KEY`: the private key file records are signed with; default none.
    pub signing_key: Option<PathBuf>,
    /// `CACHEHOST_TRUSTED_KEYS` (comma- or space-separated): `cachehost-ed25519:…` keys of the
    /// writers a reader accepts; default none (every readable record is a hit).
    pub trusted_keys: Vec<String>,
    /// `CACHEHOST_TRUSTED_KEYS_FILE`: more trusted keys, one a line, `#` comments.
    pub trusted_keys_file: Option<PathBuf>,
    /// `CACHEHOST_REQUIRE_SIGNED`, default true: with trusted keys, an unsigned record is a
    /// miss; false lets it through with a WARNING.
    pub require_signed: bool,
    /// `CACHEHOST_SANDBOX`: `default`, or `strict` for untrusted code.
    pub sandbox: SandboxProfile,
    /// `CACHEHOST_DETERMINISM`: the determinism guard, default [`Determinism::Warn`].
    pub determinism: Determinism,
    /// `CACHEHOST_EXECUTOR`: the Redis whose workers run this host's task calls; default none.
    pub executor: Option<String>,
    /// `CACHEHOST_EXECUTOR_TIMEOUT`, default [`DEFAULT_EXECUTOR_TIMEOUT`].
    pub executor_timeout: Duration,
    /// `CACHEHOST_WORKER_LEASE`, default [`DEFAULT_WORKER_LEASE`].
    pub worker_lease: Duration,
    sources: BTreeMap<Setting, Source>,
}

/// The determinism guard: what happens to a task cached under a policy without RUN_ID
/// whose run read the wall clock, random, or an environment variable its key does not cover.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Determinism {
    /// The first such run of each task logs a WARNING; its result is cached.
    #[default]
    Warn,
    /// Such a run fails before anything is cached.
    Deny,
    /// Nothing is checked.
    Off,
}

impl Determinism {
    /// `warn`, `deny` or `off`, any case.
    pub fn parse(text: &str) -> Option<Determinism> {
        match text.trim().to_ascii_lowercase().as_str() {
            "warn" => Some(Determinism::Warn),
            "deny" => Some(Determinism::Deny),
            "off" => Some(Determinism::Off),
            _ => None,
        }
    }

    /// The guard's name, as configured.
    pub fn name(self) -> &'static str {
        match self {
            Determinism::Warn => "warn",
            Determinism::Deny => "deny",
            Determinism::Off => "off",
        }
    }
}

/// A setting that cannot be read.
#[derive(Debug, PartialEq, Eq, Error)]
pub enum SettingsError {
    /// A boolean setting holds something else.
    #[error("{name} must be true, false, 1, 0, yes or no, not {value:?}")]
    InvalidBool {
        /// The environment variable.
        name: String,
        /// What it holds.
        value: String,
    },
    /// Neither `CACHEHOST_HOME` nor `HOME` says where cachehost's folder is.
    #[error("cannot find cachehost's home folder: set CACHEHOST_HOME (HOME is not set either)")]
    NoHome,
    /// A setting holds something else than its kind of value.
    #[error("{name} must be {expected}, not {value:?}")]
    InvalidValue {
        /// The environment variable or `[settings]` key.
        name: String,
        /// What it must be, e.g. "a whole number".
        expected: &'static str,
        /// What it holds.
        value: String,
    },
    /// A `CACHEHOST_LIMITS_*` variable holds something else than its kind of value.
    #[error(transparent)]
    Limit(#[from] LimitSettingError),
}

impl Settings {
    /// Reads the settings: `env` first (an environment lookup, e.g. `std::env::var(n).ok()`),
    /// then `config`'s `[settings]`, then the defaults. An empty variable counts as unset.
    pub fn load(env: impl Fn(&str) -> Option<String>, config: Option<&ConfigFile>) -> Result<Settings, SettingsError> {
        let env = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        let limits = Limits::load(|name: &str| env(name), config.map(|c| &c.limits))?;
        let user_home = env("HOME");
        let table = config.map(|c| &c.settings);
        let file_source = || Source::ConfigFile(config.map(|c| c.path.clone()).unwrap_or_default());
        let mut sources = BTreeMap::new();

        let mut path_setting = |setting: Setting, from_file: Option<&PathBuf>| {
            if let Some(value) = env(&setting.env_name()) {
                sources.insert(setting, Source::Environment);
                Some(expand_home(Path::new(&value), user_home.as_deref()))
            } else if let (Some(value), Some(config)) = (from_file, config) {
                sources.insert(setting, file_source());
                let value = expand_home(value, user_home.as_deref());
                let folder = config.path.parent().unwrap_or(Path::new(""));
                Some(folder.join(value))
            } else {
                sources.insert(setting, Source::Default);
                None
            }
        };
        let home = match path_setting(Setting::Home, table.and_then(|t| t.home.as_ref())) {
            Some(home) => home,
            None => Path::new(user_home.as_deref().ok_or(SettingsError::NoHome)?).join(".cachehost"),
        };
        let local_storage_path =
            path_setting(Setting::LocalStoragePath, table.and_then(|t| t.local_storage_path.as_ref()))
                .unwrap_or_else(|| home.join("storage"));
        let signing_key = path_setting(Setting::SigningKey, table.and_then(|t| t.signing_key.as_ref()));
        let trusted_keys_file =
            path_setting(Setting::TrustedKeysFile, table.and_then(|t| t.trusted_keys_file.as_ref()));

        let mut bool_setting = |setting: Setting, from_file: Option<bool>| -> Result<Option<bool>, SettingsError> {
            let name = setting.env_name();
            if let Some(value) = env(&name) {
                sources.insert(setting, Source::Environment);
                return parse_bool(&value).map(Some).ok_or(SettingsError::InvalidBool { name, value });
            }
            sources.insert(setting, if from_file.is_some() { file_source() } else { Source::Default });
            Ok(from_file)
        };
        let results_persist_by_default =
            bool_setting(Setting::ResultsPersistByDefault, table.and_then(|t| t.results_persist_by_default))?
                .unwrap_or(false);
        let tasks_refresh_cache =
            bool_setting(Setting::TasksRefreshCache, table.and_then(|t| t.tasks_refresh_cache))?.unwrap_or(false);
        let tasks_default_persist_result =
            bool_setting(Setting::TasksDefaultPersistResult, table.and_then(|t| t.tasks_default_persist_result))?;
        let tasks_default_no_cache =
            bool_setting(Setting::TasksDefaultNoCache, table.and_then(|t| t.tasks_default_no_cache))?.unwrap_or(false);
        let tasks_disable_caching =
            bool_setting(Setting::TasksDisableCaching, table.and_then(|t| t.tasks_disable_caching))?.unwrap_or(false);
        let require_signed =
            bool_setting(Setting::RequireSigned, table.and_then(|t| t.require_signed))?.unwrap_or(true);

        // A setting read as text: where it was found (variable or key) and the text.
        let mut text_setting = |setting: Setting, from_file: Option<&str>| match (env(&setting.env_name()), from_file) {
            (Some(value), _) => {
                sources.insert(setting, Source::Environment);
                Some((setting.env_name(), value))
            }
            (None, Some(value)) => {
                sources.insert(setting, file_source());
                Some((setting.key().to_owned(), value.to_owned()))
            }
            (None, None) => {
                sources.insert(setting, Source::Default);
                None
            }
        };
        let invalid = |(name, value): (String, String), expected| SettingsError::InvalidValue { name, expected, value };
        let retries_in_file = table.and_then(|t| t.tasks_default_retries).map(|n| n.to_string());
        let tasks_default_retries = match text_setting(Setting::TasksDefaultRetries, retries_in_file.as_deref()) {
            Some(read) => match read.1.trim().parse() {
                Ok(retries) => retries,
                Err(_) => return Err(invalid(read, "a whole number of retries")),
            },
            None => 0,
        };
        let delay_in_file = table.and_then(|t| t.tasks_default_retry_delay.as_deref());
        let tasks_default_retry_delay = match text_setting(Setting::TasksDefaultRetryDelay, delay_in_file) {
            Some(read) => match parse_duration(&read.1) {
                Some(delay) => delay,
                None => return Err(invalid(read, "a duration such as 500ms, 10s or 5m")),
            },
            None => Duration::ZERO,
        };
        let keep_in_file = table.and_then(|t| t.runs_keep).map(|n| n.to_string());
        let runs_keep = match text_setting(Setting::RunsKeep, keep_in_file.as_deref()) {
            Some(read) => match read.1.trim().parse() {
                Ok(keep) => keep,
                Err(_) => return Err(invalid(read, "a whole number of run reports")),
            },
            None => DEFAULT_RUNS_KEEP,
        };

        let sandbox_in_file = table.and_then(|t| t.sandbox.as_deref());
        let sandbox = match text_setting(Setting::Sandbox, sandbox_in_file) {
            Some(read) => match SandboxProfile::parse(&read.1) {
                Some(profile) => profile,
                None => return Err(invalid(read, "default or strict")),
            },
            None => SandboxProfile::Default,
        };
        let limits = sandbox.cap(limits);
        let determinism_in_file = table.and_then(|t| t.determinism.as_deref());
        let determinism = match text_setting(Setting::Determinism, determinism_in_file) {
            Some(read) => match Determinism::parse(&read.1) {
                Some(guard) => guard,
                None => return Err(invalid(read, "warn, deny or off")),
            },
            None => Determinism::Warn,
        };
        let executor_in_file = table.and_then(|t| t.executor.as_deref());
        let executor = match text_setting(Setting::Executor, executor_in_file) {
            Some(read) if read.1.starts_with("redis://") => Some(read.1),
            Some(read) => return Err(invalid(read, "a redis://host:port URL")),
            None => None,
        };
        let mut duration_setting =
            |setting: Setting, from_file: Option<&str>, default: Duration| match text_setting(setting, from_file) {
                Some(read) => match parse_duration(&read.1) {
                    Some(duration) if !duration.is_zero() => Ok(duration),
                    _ => Err(invalid(read, "a duration such as 500ms, 10s or 5m")),
                },
                None => Ok(default),
            };
        let executor_timeout = duration_setting(
            Setting::ExecutorTimeout,
            table.and_then(|t| t.executor_timeout.as_deref()),
            DEFAULT_EXECUTOR_TIMEOUT,
        )?;
        let worker_lease = duration_setting(
            Setting::WorkerLease,
            table.and_then(|t| t.worker_lease.as_deref()),
            DEFAULT_WORKER_LEASE,
        )?;
        let trusted_keys = match env(&Setting::TrustedKeys.env_name()) {
            Some(value) => {
                sources.insert(Setting::TrustedKeys, Source::Environment);
                value.split([',', ' ', '\n']).filter(|k| !k.trim().is_empty()).map(|k| k.trim().to_owned()).collect()
            }
            None => match table.and_then(|t| t.trusted_keys.clone()) {
                Some(keys) => {
                    sources.insert(Setting::TrustedKeys, file_source());
                    keys
                }
                None => Vec::new(),
            },
        };

        Ok(Settings {
            home,
            local_storage_path,
            results_persist_by_default,
            tasks_refresh_cache,
            tasks_default_persist_result,
            tasks_default_no_cache,
            tasks_disable_caching,
            tasks_default_retries,
            tasks_default_retry_delay,
            runs_keep,
            limits,
            signing_key,
            trusted_keys,
            trusted_keys_file,
            require_signed,
            sandbox,
            determinism,
            executor,
            executor_timeout,
            worker_lease,
            sources,
        })
    }

    /// Where a setting's value came from: the environment, `cachehost.toml` or the default.
    pub fn source(&self, setting: Setting) -> &Source {
        self.sources.get(&setting).unwrap_or(&Source::Default)
    }
}

/// Whether any configured limit meters fuel, so the engine must be built with fuel metering.
pub fn needs_fuel(settings: &Settings, config: Option<&ConfigFile>) -> bool {
    settings.limits.fuel.is_some() || config.is_some_and(|c| c.tasks.values().any(|t| t.fuel.is_some()))
}

/// `true/false/1/0/yes/no`, any case.
fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// Replaces a leading `~` with the user's home folder, when it is known.
fn expand_home(path: &Path, user_home: Option<&str>) -> PathBuf {
    match (path.strip_prefix("~"), user_home) {
        (Ok(rest), Some(home)) => Path::new(home).join(rest),
        _ => path.to_path_buf(),
    }
}

/// Where an option's or a setting's value came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// Nobody set it: cachehost's default.
    #[default]
    Default,
    /// The component's exported `cachehost:task/options`.
    Component,
    /// A `cachehost.toml`.
    ConfigFile(PathBuf),
    /// An environment variable (or a command-line flag standing for one).
    Environment,
    /// Prefect's derivation, from the named option (reference §2).
    Derived(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::Component => f.write_str("component"),
            Source::ConfigFile(path) => write!(f, "{}", path.display()),
            Source::Environment => f.write_str("environment"),
            Source::Derived(from) => write!(f, "derived from {from}"),
        }
    }
}

/// A task's options as declared in one place; unset fields leave the decision to others.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskOptions {
    /// A policy expression, e.g. `"INPUTS - 'debug' + TASK_SOURCE"`.
    pub cache_policy: Option<String>,
    /// How long a written record stays valid; in TOML `"30s"`, `"5m"`... or seconds.
    #[serde(default, deserialize_with = "deserialize_expiration")]
    pub cache_expiration: Option<Duration>,
    /// true: always run and overwrite; false or unset: see [`crate::options::overwrite`].
    pub refresh_cache: Option<bool>,
    /// Whether results are written; unset is decided by [`crate::options::resolve`] or at run time.
    pub persist_result: Option<bool>,
    /// `READ_COMMITTED` or `SERIALIZABLE`.
    pub isolation_level: Option<String>,
    /// `memory`, `file` or `redis://...`.
    pub lock_manager: Option<String>,
    /// Where record metadata is kept, apart from the values.
    pub key_storage: Option<String>,
    /// Where results are kept.
    pub result_storage: Option<String>,
    /// How long a SERIALIZABLE lease lasts unless renewed (it is renewed while the task runs).
    #[serde(default, deserialize_with = "deserialize_expiration")]
    pub lock_hold_timeout: Option<Duration>,
    /// How long to wait for a SERIALIZABLE lock before the task run fails.
    #[serde(default, deserialize_with = "deserialize_expiration")]
    pub lock_acquire_timeout: Option<Duration>,
    /// Wall-clock limit of a run (Prefect's `timeout_seconds`); over it, the run is TimedOut.
    #[serde(default, deserialize_with = "deserialize_timeout")]
    pub timeout: Option<Duration>,
    /// How many times a failed run is retried (Prefect's `retries`).
    pub retries: Option<u32>,
    /// How long to wait before each retry (Prefect's `retry_delay_seconds`).
    #[serde(default, deserialize_with = "deserialize_timeout")]
    pub retry_delay: Option<Duration>,
    /// Memory limit of a run: bytes or `"512MiB"`.
    #[serde(default, deserialize_with = "deserialize_size")]
    pub memory: Option<u64>,
    /// Fuel limit of a run.
    pub fuel: Option<u64>,
    /// The largest result the task may return: bytes or `"64MiB"`.
    #[serde(default, deserialize_with = "deserialize_size")]
    pub max_result_size: Option<u64>,
    /// Whether the task's records keep its encoded inputs, so `cache verify` can replay it.
    pub replayable: Option<bool>,
    /// `key_on_reads = true`: shorthand for adding READS to the task's cache policy.
    pub key_on_reads: Option<bool>,
}

/// `cache_expiration` in TOML: a duration string or an integer of seconds.
fn deserialize_expiration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = Option<Duration>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration like \"500ms\", \"30s\", \"5m\", \"1h\" or \"2d\", or an integer of seconds")
        }

        fn visit_i64<E: serde::de::Error>(self, seconds: i64) -> Result<Self::Value, E> {
            u64::try_from(seconds)
                .map(|s| Some(Duration::from_secs(s)))
                .map_err(|_| E::custom("cache_expiration must not be negative"))
        }

        fn visit_u64<E: serde::de::Error>(self, seconds: u64) -> Result<Self::Value, E> {
            Ok(Some(Duration::from_secs(seconds)))
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
            parse_duration(text).map(Some).ok_or_else(|| {
                E::custom(format!(
                    "invalid cache_expiration {text:?}: expected a duration like \"500ms\", \"30s\", \"5m\", \"1h\" or \
                        \"2d\", or an integer of seconds"
                ))
            })
        }
    }
    deserializer.deserialize_any(Visitor)
}

/// A parsed `cachehost.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigFile {
    /// Where it was read from; relative paths inside it are relative to its folder.
    pub path: PathBuf,
    /// Its text, as read (sent with the calls a worker runs).
    pub text: String,
    /// The `[settings]` table.
    pub settings: SettingsTable,
    /// The `[tasks."NAME"]` tables, by function name (`add-one`) or full name
    /// (`example:math/tasks#add-one`).
    pub tasks: BTreeMap<String, TaskOptions>,
    /// The `[limits]` table: limits of every task run.
    pub limits: LimitsTable,
    /// The `[components."NAME"]` tables: what each component is granted, by file name or stem.
    pub components: BTreeMap<String, ComponentGrants>,
    /// The `[s3]` table: how to reach `s3://` storage (the AWS environment variables win).
    pub s3: S3Table,
}

/// The `[s3]` table of `cachehost.toml`, for `s3://` result and key storage; each value is
/// overridden by its AWS environment variable (see [`crate::store::object::S3Settings`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Table {
    /// `endpoint`: the S3-compatible server's URL (`AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// `region` (`AWS_REGION`, `AWS_DEFAULT_REGION`).
    pub region: Option<String>,
    /// `allow_http`: whether an `http://` endpoint may be used (`AWS_ALLOW_HTTP`).
    pub allow_http: Option<bool>,
    /// `access_key_id` (`AWS_ACCESS_KEY_ID`).
    pub access_key_id: Option<String>,
    /// `secret_access_key` (`AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key: Option<String>,
    /// `connect_timeout`, e.g. `"2s"` (`CACHEHOST_S3_CONNECT_TIMEOUT`).
    pub connect_timeout: Option<String>,
    /// `timeout`: the longest one request may take, retries included, e.g. `"5s"`
    /// (`CACHEHOST_S3_TIMEOUT`).
    pub timeout: Option<String>,
}

/// The `[settings]` table: every [`Setting`], by its [`Setting::key`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsTable {
    /// `home`.
    pub home: Option<PathBuf>,
    /// `local_storage_path`.
    pub local_storage_path: Option<PathBuf>,
    /// `results_persist_by_default`.
    pub results_persist_by_default: Option<bool>,
    /// `tasks_refresh_cache`.
    pub tasks_refresh_cache: Option<bool>,
    /// `tasks_default_persist_result`.
    pub tasks_default_persist_result: Option<bool>,
    /// `tasks_default_no_cache`.
    pub tasks_default_no_cache: Option<bool>,
    /// `tasks_disable_caching`.
    pub tasks_disable_caching: Option<bool>,
    /// `tasks_default_retries`.
    pub tasks_default_retries: Option<u32>,
    /// `tasks_default_retry_delay`, e.g. `"10s"`.
    pub tasks_default_retry_delay: Option<String>,
    /// `signing_key`: a private key file, relative to this file's folder.
    pub signing_key: Option<PathBuf>,
    /// `trusted_keys`: `["cachehost-ed25519:…", …]`.
    pub trusted_keys: Option<Vec<String>>,
    /// `trusted_keys_file`: relative to this file's folder.
    pub trusted_keys_file: Option<PathBuf>,
    /// `require_signed`.
    pub require_signed: Option<bool>,
    /// `sandbox`: `"default"` or `"strict"`.
    pub sandbox: Option<String>,
    /// `determinism`: `"warn"`, `"deny"` or `"off"`.
    pub determinism: Option<String>,
    /// `runs_keep`.
    pub runs_keep: Option<usize>,
    /// `executor`: `"redis://host:port"`.
    pub executor: Option<String>,
    /// `executor_timeout`, e.g. `"10m"`.
    pub executor_timeout: Option<String>,
    /// `worker_lease`, e.g. `"30s"`.
    pub worker_lease: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    settings: SettingsTable,
    #[serde(default)]
    tasks: BTreeMap<String, TaskOptions>,
    #[serde(default)]
    limits: LimitsTable,
    #[serde(default)]
    components: BTreeMap<String, ComponentGrants>,
    #[serde(default)]
    s3: S3Table,
}

/// A `cachehost.toml` that cannot be read or parsed.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid: bad TOML, an unknown key or a value of the wrong kind.
    #[error("{} is not a valid cachehost.toml: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line, column and the offending key.
        message: String,
    },
}

impl ConfigFile {
    /// Parses the text of a `cachehost.toml` read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<ConfigFile, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        Ok(ConfigFile {
            path: path.to_path_buf(),
            text: text.to_owned(),
            settings: raw.settings,
            tasks: raw.tasks,
            limits: raw.limits,
            components: raw.components,
            s3: raw.s3,
        })
    }

    /// Reads and parses the `cachehost.toml` at `path`.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        ConfigFile::parse(&text, path)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| vars.get(name).cloned()
    }

    fn config(text: &str) -> ConfigFile {
        ConfigFile::parse(text, Path::new("/flows/cachehost.toml")).unwrap()
    }

    #[test]
    fn defaults() {
        let s = Settings::load(env(&[("HOME", "/home/ada")]), None).unwrap();
        assert_eq!(s.home, Path::new("/home/ada/.cachehost"));
        assert_eq!(s.local_storage_path, Path::new("/home/ada/.cachehost/storage"));
        assert!(!s.results_persist_by_default);
        assert!(!s.tasks_refresh_cache);
        assert_eq!(s.tasks_default_persist_result, None);
        assert!(!s.tasks_default_no_cache);
        assert!(!s.tasks_disable_caching);
        assert_eq!((s.tasks_default_retries, s.tasks_default_retry_delay), (0, Duration::ZERO));
        for setting in Setting::ALL {
            assert_eq!(s.source(setting), &Source::Default, "{setting:?}");
        }
    }

    #[test]
    fn storage_follows_home() {
        let s = Settings::load(env(&[("CACHEHOST_HOME", "/srv/ch")]), None).unwrap();
        assert_eq!(s.local_storage_path, Path::new("/srv/ch/storage"));
        assert_eq!(s.source(Setting::Home), &Source::Environment);
        assert_eq!(s.source(Setting::LocalStoragePath), &Source::Default);
    }

    #[test]
    fn default_retries_come_from_the_environment_or_the_file_and_are_checked() {
        let file = config("[settings]\ntasks_default_retries = 2\ntasks_default_retry_delay = \"10s\"\n");
        let s = Settings::load(env(&[("HOME", "/h")]), Some(&file)).unwrap();
        assert_eq!((s.tasks_default_retries, s.tasks_default_retry_delay), (2, Duration::from_secs(10)));
        assert!(matches!(s.source(Setting::TasksDefaultRetries), Source::ConfigFile(_)));
        let s = Settings::load(env(&[("HOME", "/h"), ("CACHEHOST_TASKS_DEFAULT_RETRIES", "3")]), Some(&file)).unwrap();
        assert_eq!(s.tasks_default_retries, 3);
        assert_eq!(s.source(Setting::TasksDefaultRetries), &Source::Environment);
        for (name, value) in
            [("CACHEHOST_TASKS_DEFAULT_RETRIES", "-1"), ("CACHEHOST_TASKS_DEFAULT_RETRY_DELAY", "soon")]
        {
            let error = Settings::load(env(&[("HOME", "/h"), (name, value)]), None).unwrap_err();
            assert!(matches!(&error, SettingsError::InvalidValue { name: n, .. } if n == name), "{error}");
        }
        let bad = config("[settings]\ntasks_default_retry_delay = \"5 weeks\"\n");
        let error = Settings::load(env(&[("HOME", "/h")]), Some(&bad)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "tasks_default_retry_delay must be a duration such as 500ms, 10s or 5m, not \"5 weeks\""
        );
    }

    #[test]
    fn tilde_is_the_user_home() {
        let s = Settings::load(env(&[("HOME", "/home/ada"), ("CACHEHOST_HOME", "~/ch")]), None).unwrap();
        assert_eq!(s.home, Path::new("/home/ada/ch"));
    }

    #[test]
    fn without_any_home_is_an_error() {
        assert_eq!(Settings::load(env(&[]), None), Err(SettingsError::NoHome));
        assert!(Settings::load(env(&[("CACHEHOST_HOME", "/x")]), None).is_ok());
    }

    #[test]
    fn env_names() {
        assert_eq!(Setting::TasksRefreshCache.env_name(), "CACHEHOST_TASKS_REFRESH_CACHE");
        assert_eq!(Setting::LocalStoragePath.env_name(), "CACHEHOST_LOCAL_STORAGE_PATH");
    }

    #[test]
    fn booleans_accept_the_usual_spellings() {
        for (text, value) in [("true", true), ("FALSE", false), ("1", true), ("0", false), ("Yes", true), ("no", false)]
        {
            let s = Settings::load(env(&[("HOME", "/h"), ("CACHEHOST_TASKS_DISABLE_CACHING", text)]), None).unwrap();
            assert_eq!(s.tasks_disable_caching, value, "{text}");
        }
        let s = Settings::load(env(&[("HOME", "/h"), ("CACHEHOST_TASKS_DEFAULT_PERSIST_RESULT", "no")]), None).unwrap();
        assert_eq!(s.tasks_default_persist_result, Some(false));
    }

    #[test]
    fn a_bad_boolean_names_the_variable() {
        let err = Settings::load(env(&[("HOME", "/h"), ("CACHEHOST_TASKS_REFRESH_CACHE", "maybe")]), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "CACHEHOST_TASKS_REFRESH_CACHE must be true, false, 1, 0, yes or no, not \"maybe\""
        );
    }

    #[test]
    fn an_empty_variable_is_unset() {
        let s = Settings::load(env(&[("HOME", "/h"), ("CACHEHOST_RESULTS_PERSIST_BY_DEFAULT", "")]), None).unwrap();
        assert!(!s.results_persist_by_default);
        assert_eq!(s.source(Setting::ResultsPersistByDefault), &Source::Default);
    }

    #[test]
    fn config_file_settings_apply_and_env_wins() {
        let file = config(
            "[settings]\nlocal_storage_path = \"cache\"\ntasks_refresh_cache = true\nresults_persist_by_default = \
                true\n",
        );
        let s = Settings::load(env(&[("HOME", "/h")]), Some(&file)).unwrap();
        // Relative paths in the file are relative to its folder.
        assert_eq!(s.local_storage_path, Path::new("/flows/cache"));
        assert!(s.tasks_refresh_cache);
        assert!(s.results_persist_by_default);
        let from_file = Source::ConfigFile(PathBuf::from("/flows/cachehost.toml"));
        assert_eq!(s.source(Setting::TasksRefreshCache), &from_file);
        assert_eq!(s.source(Setting::LocalStoragePath), &from_file);

        let s = Settings::load(
            env(&[("HOME", "/h"), ("CACHEHOST_TASKS_REFRESH_CACHE", "0"), ("CACHEHOST_LOCAL_STORAGE_PATH", "/var/c")]),
            Some(&file),
        )
        .unwrap();
        assert!(!s.tasks_refresh_cache);
        assert_eq!(s.local_storage_path, Path::new("/var/c"));
        assert_eq!(s.source(Setting::TasksRefreshCache), &Source::Environment);
        assert!(s.results_persist_by_default);
    }

    #[test]
    fn task_tables_parse() {
        let file = config(
            r#"
[tasks."add-one"]
cache_policy = "INPUTS - 'debug' + TASK_SOURCE"
cache_expiration = "5m"
refresh_cache = true
persist_result = false
isolation_level = "SERIALIZABLE"
lock_manager = "file"
key_storage = "keys"
result_storage = "s3://bucket/prefix"

[tasks."example:math/tasks#add-two"]
cache_expiration = 90
"#,
        );
        let add_one = &file.tasks["add-one"];
        assert_eq!(add_one.cache_policy.as_deref(), Some("INPUTS - 'debug' + TASK_SOURCE"));
        assert_eq!(add_one.cache_expiration, Some(Duration::from_secs(300)));
        assert_eq!(add_one.refresh_cache, Some(true));
        assert_eq!(add_one.persist_result, Some(false));
        assert_eq!(add_one.isolation_level.as_deref(), Some("SERIALIZABLE"));
        assert_eq!(add_one.lock_manager.as_deref(), Some("file"));
        assert_eq!(add_one.key_storage.as_deref(), Some("keys"));
        assert_eq!(add_one.result_storage.as_deref(), Some("s3://bucket/prefix"));
        assert_eq!(
            file.tasks["example:math/tasks#add-two"],
            TaskOptions { cache_expiration: Some(Duration::from_secs(90)), ..TaskOptions::default() }
        );
    }

    #[test]
    fn limits_and_grants_parse() {
        let file = config(
            r#"
[limits]
memory = "64MiB"
timeout = "2s"
fuel = 1000
max_nesting_depth = 8
max_result_size = 4096

[components."hostile.wasm"]
dirs = [{ host = "data", guest = "/data", mode = "ro" }, { host = "/tmp/out", guest = "/out", mode = "rw" }]
env = ["GREETING"]
"#,
        );
        assert_eq!(file.limits.memory, Some(64 << 20));
        assert_eq!(file.limits.timeout, Some(Duration::from_secs(2)));
        assert_eq!(file.limits.fuel, Some(1000));
        assert_eq!(file.limits.max_nesting_depth, Some(8));
        assert_eq!(file.limits.max_result_size, Some(4096));
        let grants = &file.components["hostile.wasm"];
        assert_eq!(grants.env, vec!["GREETING".to_owned()]);
        assert_eq!(grants.dirs[0].mode, crate::limits::DirMode::ReadOnly);
        assert_eq!(grants.dirs[1].mode, crate::limits::DirMode::ReadWrite);
        let s = Settings::load(env(&[("HOME", "/h")]), Some(&file)).unwrap();
        assert_eq!(s.limits.memory, 64 << 20);
        assert_eq!(s.limits.max_nesting_depth, 8);
    }

    #[test]
    fn unknown_keys_in_limits_and_grants_are_errors() {
        assert!(parse_error(
            "[limits]
memroy = 1
"
        )
        .contains("unknown field `memroy`"));
        assert!(parse_error(
            "[components.a]
network = true
"
        )
        .contains("unknown field `network`"));
        assert!(parse_error(
            "[components.a]
dirs = [{ host = \"x\", guest = \"/x\", mode = \"rx\" }]
"
        )
        .contains("unknown variant `rx`"));
        assert!(parse_error(
            "[limits]
memory = \"lots\"
"
        )
        .contains("invalid size \"lots\""));
    }

    fn parse_error(text: &str) -> String {
        ConfigFile::parse(text, Path::new("flows/cachehost.toml")).unwrap_err().to_string()
    }

    #[test]
    fn unknown_keys_name_the_key_and_the_file() {
        for (text, key) in [
            ("[settings]\ntasks_refresh = true\n", "tasks_refresh"),
            ("[tasks.add-one]\ncache_polcy = \"INPUTS\"\n", "cache_polcy"),
            ("[task.add-one]\n", "task"),
            ("[s3]\nendpoint_url = \"http://x\"\n", "endpoint_url"),
        ] {
            let message = parse_error(text);
            assert!(message.starts_with("flows/cachehost.toml is not a valid cachehost.toml: "), "{message}");
            assert!(message.contains(&format!("unknown field `{key}`")), "{message}");
        }
    }

    #[test]
    fn the_s3_table_is_read() {
        let c = config("[s3]\nendpoint = \"http://minio:9000\"\nallow_http = true\ntimeout = \"3s\"\n");
        assert_eq!(c.s3.endpoint.as_deref(), Some("http://minio:9000"));
        assert_eq!(c.s3.allow_http, Some(true));
        assert_eq!(c.s3.timeout.as_deref(), Some("3s"));
        assert_eq!(config("").s3, S3Table::default());
    }

    #[test]
    fn wrong_kinds_are_errors() {
        let message = parse_error("[settings]\ntasks_refresh_cache = \"yes\"\n");
        assert!(message.contains("tasks_refresh_cache"), "{message}");
        let message = parse_error("[tasks.f]\ncache_expiration = \"5 weeks\"\n");
        assert!(message.contains("invalid cache_expiration \"5 weeks\""), "{message}");
        let message = parse_error("[tasks.f]\ncache_expiration = -1\n");
        assert!(message.contains("cache_expiration must not be negative"), "{message}");
    }

    #[test]
    fn load_reports_a_missing_file() {
        let err = ConfigFile::load(Path::new("/nonexistent/cachehost.toml")).unwrap_err();
        assert!(err.to_string().starts_with("cannot read /nonexistent/cachehost.toml: "), "{err}");
    }
}
