//! Per-task options and their resolution (DESIGN §4, reference §2, §8, §9, §10).
//!
//! A task's options come in layers, lowest first: what the component declares, then
//! `cachehost.toml`. Within a layer an entry under the task's full name
//! (`example:math/tasks#add-one`) beats one under its function name (`add-one`). Every
//! field remembers its [`Source`] for `cachehost inspect`. [`resolve`] then applies
//! Prefect's derivation of the cache policy and `persist_result` (reference §2) exactly;
//! [`persist_at_run_time`] and [`overwrite`] are the decisions Prefect takes per run.

use std::collections::BTreeMap;
use std::time::Duration;

use thiserror::Error;

use crate::limits::Limits;
use crate::policy::{Part, Policy, PolicyError};
use crate::settings::{ConfigFile, Setting, Settings, Source, TaskOptions};

/// The warning Prefect logs when `persist_result=False` overrides a real policy (reference 2.6).
pub const IGNORING_POLICY_WARNING: &str = "Ignoring `cache_policy` because `persist_result` is False";

/// How long a SERIALIZABLE lease lasts unless renewed, by default.
pub const DEFAULT_LOCK_HOLD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a task waits for a SERIALIZABLE lock, by default.
pub const DEFAULT_LOCK_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(300);

/// One layer of task options: entries by function name or full name, from one source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layer {
    /// Where every entry of this layer came from.
    pub source: Source,
    /// Options by task: function name (`add-one`) or full name (`example:math/tasks#add-one`).
    pub tasks: BTreeMap<String, TaskOptions>,
}

impl Layer {
    /// The `[tasks]` tables of a `cachehost.toml`.
    ///
    /// A relative `key_storage` or `result_storage` folder is made relative to the file's
    /// folder, as every path in a `cachehost.toml` is; URLs (`s3://...`) are left as written.
    pub fn from_config(config: &ConfigFile) -> Layer {
        let folder = config.path.parent().unwrap_or(std::path::Path::new(""));
        let beside_config = |storage: &mut Option<String>| {
            if let Some(path) = storage.as_mut() {
                if !path.contains("://") && std::path::Path::new(path.as_str()).is_relative() {
                    *path = folder.join(path.as_str()).to_string_lossy().into_owned();
                }
            }
        };
        let mut tasks = config.tasks.clone();
        for options in tasks.values_mut() {
            beside_config(&mut options.key_storage);
            beside_config(&mut options.result_storage);
        }
        Layer { source: Source::ConfigFile(config.path.clone()), tasks }
    }
}

/// Where each resolved option came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sources {
    /// Of `cache_policy`.
    pub cache_policy: Source,
    /// Of `cache_expiration`.
    pub cache_expiration: Source,
    /// Of `refresh_cache`.
    pub refresh_cache: Source,
    /// Of `persist_result`.
    pub persist_result: Source,
    /// Of `isolation_level`.
    pub isolation_level: Source,
    /// Of `lock_manager`.
    pub lock_manager: Source,
    /// Of `key_storage`.
    pub key_storage: Source,
    /// Of `result_storage`.
    pub result_storage: Source,
    /// Of `lock_hold_timeout`.
    pub lock_hold_timeout: Source,
    /// Of `lock_acquire_timeout`.
    pub lock_acquire_timeout: Source,
    /// Of `timeout`.
    pub timeout: Source,
    /// Of `retries`.
    pub retries: Source,
    /// Of `retry_delay`.
    pub retry_delay: Source,
    /// Of `memory`.
    pub memory: Source,
    /// Of `fuel`.
    pub fuel: Source,
    /// Of `max_result_size`.
    pub max_result_size: Source,
    /// Of `replayable`.
    pub replayable: Source,
    /// Of `key_on_reads`.
    pub key_on_reads: Source,
}

/// A task's options after layering and Prefect's derivation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedTask {
    /// The policy that computes its keys.
    pub policy: Policy,
    /// Whether results are written; None is decided per run by [`persist_at_run_time`].
    pub persist_result: Option<bool>,
    /// Passed to [`overwrite`] per run.
    pub refresh_cache: Option<bool>,
    /// How long a written record stays valid; None is forever.
    pub cache_expiration: Option<Duration>,
    /// `READ_COMMITTED` or `SERIALIZABLE`; None inherits the enclosing transaction's.
    pub isolation_level: Option<String>,
    /// The lock manager for SERIALIZABLE.
    pub lock_manager: Option<String>,
    /// Where record metadata is kept.
    pub key_storage: Option<String>,
    /// Where results are kept.
    pub result_storage: Option<String>,
    /// How long a SERIALIZABLE lease lasts unless renewed.
    pub lock_hold_timeout: Duration,
    /// How long to wait for a SERIALIZABLE lock.
    pub lock_acquire_timeout: Duration,
    /// The task's own timeout, over the global limit.
    pub timeout: Option<Duration>,
    /// How many times a failed run is retried; none is 0.
    pub retries: Option<u32>,
    /// The wait before each retry; none is immediately.
    pub retry_delay: Option<Duration>,
    /// The task's own memory limit, over the global one.
    pub memory: Option<u64>,
    /// The task's own fuel limit, over the global one.
    pub fuel: Option<u64>,
    /// The task's own result size limit, over the global one.
    pub max_result_size: Option<u64>,
    /// Whether its records keep the encoded inputs, for `cache verify` (default false).
    pub replayable: bool,
    /// Where each of the above came from.
    pub sources: Sources,
    /// Warnings for the host to log, once, when the task is loaded.
    pub warnings: Vec<String>,
}

impl ResolvedTask {
    /// The limits of this task's runs: its own options (`[tasks."NAME"]`) over `global`.
    pub fn limits(&self, global: &Limits) -> Limits {
        Limits {
            memory: self.memory.unwrap_or(global.memory),
            timeout: self.timeout.or(global.timeout).filter(|t| !t.is_zero()),
            fuel: self.fuel.or(global.fuel),
            max_nesting_depth: global.max_nesting_depth,
            max_result_size: self.max_result_size.unwrap_or(global.max_result_size),
        }
    }
}

/// Task options that cannot be resolved.
#[derive(Debug, PartialEq, Eq, Error)]
pub enum OptionsError {
    /// The effective `cache_policy` is not a valid policy expression.
    #[error("task '{task}' has an invalid cache_policy {expression:?} (from {origin}): {error}")]
    BadPolicy {
        /// The task's full name.
        task: String,
        /// The expression.
        expression: String,
        /// Where the expression came from.
        origin: Source,
        /// What is wrong with it.
        error: PolicyError,
    },
    /// The effective `isolation_level` is not one cachehost knows.
    #[error(
        "task '{task}' has an unknown isolation_level {value:?} (from {origin}); use READ_COMMITTED or SERIALIZABLE"
    )]
    BadIsolationLevel {
        /// The task's full name.
        task: String,
        /// The value given.
        value: String,
        /// Where it came from.
        origin: Source,
    },
}

impl OptionsError {
    /// For a bad policy, the expression with a caret under the failing column.
    pub fn caret(&self) -> Option<String> {
        match self {
            OptionsError::BadPolicy { expression, error, .. } => Some(error.caret(expression)),
            OptionsError::BadIsolationLevel { .. } => None,
        }
    }
}

/// Merges the layers for one task, keeping where each field came from.
pub fn layered(task_full_name: &str, layers: &[Layer]) -> (TaskOptions, Sources) {
    let short_name = task_full_name.rsplit_once('#').map_or(task_full_name, |(_, f)| f);
    let mut merged = TaskOptions::default();
    let mut sources = Sources::default();
    for layer in layers {
        let entries = [layer.tasks.get(short_name), layer.tasks.get(task_full_name)];
        // A task named without an interface has one name; its entry must not apply twice.
        let entries = if short_name == task_full_name { &entries[..1] } else { &entries[..] };
        for options in entries.iter().flatten() {
            macro_rules! take {
                ($($field:ident),*) => {$(
                    if let Some(value) = &options.$field {
                        merged.$field = Some(value.clone());
                        sources.$field = layer.source.clone();
                    }
                )*};
            }
            take!(
                cache_policy,
                cache_expiration,
                refresh_cache,
                persist_result,
                isolation_level,
                lock_manager,
                key_storage,
                result_storage,
                lock_hold_timeout,
                lock_acquire_timeout,
                timeout,
                retries,
                retry_delay,
                memory,
                fuel,
                max_result_size,
                replayable,
                key_on_reads
            );
        }
    }
    (merged, sources)
}

/// Resolves a task's options: layers, then Prefect's `Task.__init__` derivation (reference §2).
pub fn resolve(task_full_name: &str, layers: &[Layer], settings: &Settings) -> Result<ResolvedTask, OptionsError> {
    let (options, mut sources) = layered(task_full_name, layers);
    let mut warnings = Vec::new();

    if let Some(value) = &options.isolation_level {
        if !matches!(value.as_str(), "READ_COMMITTED" | "SERIALIZABLE") {
            return Err(OptionsError::BadIsolationLevel {
                task: task_full_name.to_string(),
                value: value.clone(),
                origin: sources.isolation_level.clone(),
            });
        }
    }

    // None is Prefect's `NotSet`: no policy was given.
    let mut given: Option<Policy> = match &options.cache_policy {
        None => None,
        Some(expression) => {
            let parsed = Policy::parse_reporting(expression).map_err(|error| OptionsError::BadPolicy {
                task: task_full_name.to_string(),
                expression: expression.clone(),
                origin: sources.cache_policy.clone(),
                error,
            })?;
            warnings.extend(parsed.noop_exclusions.iter().map(|noop| format!("cache_policy {expression:?}, {noop}")));
            Some(parsed.policy)
        }
    };

    // 2.1
    if settings.tasks_default_no_cache && given.is_none() {
        given = Some(Policy::none());
        sources.cache_policy = settings.source(Setting::TasksDefaultNoCache).clone();
    }

    // 2.4
    let mut persist_result = options.persist_result;
    if persist_result.is_none() {
        if given.as_ref().is_some_and(|policy| !policy.is_none()) {
            persist_result = Some(true);
            sources.persist_result = Source::Derived("cache_policy");
        } else if options.result_storage.is_some() {
            persist_result = Some(true);
            sources.persist_result = Source::Derived("result_storage");
        }
    }

    // 2.5: after 2.4, so tasks with an explicit policy keep persist_result = true.
    if settings.tasks_disable_caching {
        given = Some(Policy::none());
        sources.cache_policy = settings.source(Setting::TasksDisableCaching).clone();
    }

    // 2.6
    let policy = if persist_result == Some(false) {
        match given {
            Some(policy) if !policy.is_none() => {
                warnings.push(IGNORING_POLICY_WARNING.to_string());
                sources.cache_policy = Source::Derived("persist_result");
            }
            Some(_) => {}
            None => sources.cache_policy = Source::Derived("persist_result"),
        }
        Policy::none()
    } else {
        given.unwrap_or_else(|| {
            sources.cache_policy = Source::Default;
            Policy::default_policy()
        })
    };

    // `key_on_reads = true` is READS added to whatever policy caches the task.
    let policy = if options.key_on_reads == Some(true) && !policy.is_none() {
        policy.plus(Policy::from_parts(vec![Part::Reads]))
    } else {
        policy
    };

    Ok(ResolvedTask {
        policy,
        persist_result,
        refresh_cache: options.refresh_cache,
        cache_expiration: options.cache_expiration,
        isolation_level: options.isolation_level,
        lock_manager: options.lock_manager,
        key_storage: options.key_storage,
        result_storage: options.result_storage,
        lock_hold_timeout: options.lock_hold_timeout.unwrap_or(DEFAULT_LOCK_HOLD_TIMEOUT),
        lock_acquire_timeout: options.lock_acquire_timeout.unwrap_or(DEFAULT_LOCK_ACQUIRE_TIMEOUT),
        timeout: options.timeout,
        retries: options.retries,
        retry_delay: options.retry_delay,
        memory: options.memory,
        fuel: options.fuel,
        max_result_size: options.max_result_size,
        replayable: options.replayable.unwrap_or(false),
        sources,
        warnings,
    })
}

/// What a task run inherits its persistence from when its own is unset (reference 8.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParentPersist {
    /// A nested task run: the enclosing task run's resolved value.
    TaskRun(bool),
    /// A task run in a flow run: the flow run's resolved value.
    FlowRun(bool),
    /// A standalone task run, without any run context.
    Standalone,
}

/// Whether this task run writes its result (reference 8.1): the task's own value, else
/// `CACHEHOST_TASKS_DEFAULT_PERSIST_RESULT`, else the parent run's, else
/// `CACHEHOST_RESULTS_PERSIST_BY_DEFAULT`.
pub fn persist_at_run_time(task: Option<bool>, settings: &Settings, parent: ParentPersist) -> bool {
    task.or(settings.tasks_default_persist_result).unwrap_or(match parent {
        ParentPersist::TaskRun(persist) | ParentPersist::FlowRun(persist) => persist,
        // Prefect also asks the server for a default storage block here; cachehost has none.
        ParentPersist::Standalone => settings.results_persist_by_default,
    })
}

/// Whether this task run skips the lookup and overwrites the record (reference 10.1).
pub fn overwrite(task_refresh: Option<bool>, settings: &Settings) -> bool {
    task_refresh.unwrap_or(settings.tasks_refresh_cache)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const TASK: &str = "example:math/tasks#add-one";

    fn settings(vars: &[(&str, &str)]) -> Settings {
        let vars: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::load(
            |name| {
                if name == "HOME" {
                    Some("/h".into())
                } else {
                    vars.get(name).cloned()
                }
            },
            None,
        )
        .unwrap()
    }

    fn component(options: TaskOptions) -> Vec<Layer> {
        vec![Layer { source: Source::Component, tasks: BTreeMap::from([("add-one".to_string(), options)]) }]
    }

    fn options(policy: Option<&str>, persist: Option<bool>) -> TaskOptions {
        TaskOptions { cache_policy: policy.map(String::from), persist_result: persist, ..TaskOptions::default() }
    }

    fn policy(text: &str) -> Policy {
        Policy::parse(text).unwrap()
    }

    #[test]
    fn persist_and_policy_derivation_table() {
        // (persist_result, cache_policy) -> (resolved persist_result, policy, warns); reference 2.4, 2.6.
        let table = [
            (None, None, None, "DEFAULT", false),
            (None, Some("NONE"), None, "NONE", false),
            (None, Some("INPUTS"), Some(true), "INPUTS", false),
            (None, Some("NONE + NONE"), None, "NONE", false),
            (Some(true), None, Some(true), "DEFAULT", false),
            (Some(true), Some("NONE"), Some(true), "NONE", false),
            (Some(true), Some("INPUTS"), Some(true), "INPUTS", false),
            (Some(false), None, Some(false), "NONE", false),
            (Some(false), Some("NO_CACHE"), Some(false), "NONE", false),
            (Some(false), Some("INPUTS"), Some(false), "NONE", true),
            (Some(false), Some("DEFAULT"), Some(false), "NONE", true),
        ];
        for (persist, given, want_persist, want_policy, warns) in table {
            let resolved = resolve(TASK, &component(options(given, persist)), &settings(&[])).unwrap();
            let case = format!("persist_result={persist:?} cache_policy={given:?}");
            assert_eq!(resolved.persist_result, want_persist, "{case}");
            assert_eq!(resolved.policy, policy(want_policy), "{case}");
            assert_eq!(resolved.warnings.contains(&IGNORING_POLICY_WARNING.to_string()), warns, "{case}");
        }
    }

    #[test]
    fn result_storage_alone_makes_the_task_persist() {
        let layers = component(TaskOptions { result_storage: Some("s3://b/p".into()), ..TaskOptions::default() });
        let resolved = resolve(TASK, &layers, &settings(&[])).unwrap();
        assert_eq!(resolved.persist_result, Some(true));
        assert_eq!(resolved.sources.persist_result, Source::Derived("result_storage"));
        assert_eq!(resolved.policy, Policy::default_policy());
    }

    #[test]
    fn default_no_cache_applies_only_to_tasks_without_a_policy() {
        // Reference 2.1: NONE replaces an unset policy; an explicit one is kept and still persists.
        let s = settings(&[("CACHEHOST_TASKS_DEFAULT_NO_CACHE", "true")]);
        let unset = resolve(TASK, &component(options(None, None)), &s).unwrap();
        assert_eq!(unset.policy, Policy::none());
        assert_eq!(unset.persist_result, None);
        assert_eq!(unset.sources.cache_policy, Source::Environment);
        let explicit = resolve(TASK, &component(options(Some("INPUTS"), None)), &s).unwrap();
        assert_eq!(explicit.policy, policy("INPUTS"));
        assert_eq!(explicit.persist_result, Some(true));
    }

    #[test]
    fn disable_caching_comes_after_persist_derivation() {
        // Reference 2.5 [V S29]: the explicit policy still made persist_result true.
        let s = settings(&[("CACHEHOST_TASKS_DISABLE_CACHING", "1")]);
        let explicit = resolve(TASK, &component(options(Some("INPUTS"), None)), &s).unwrap();
        assert_eq!(explicit.policy, Policy::none());
        assert_eq!(explicit.persist_result, Some(true));
        assert_eq!(explicit.sources.cache_policy, Source::Environment);
        let unset = resolve(TASK, &component(options(None, None)), &s).unwrap();
        assert_eq!(unset.policy, Policy::none());
        assert_eq!(unset.persist_result, None);
        // The policy was already NONE when persist_result=false is applied: no warning.
        let refused = resolve(TASK, &component(options(Some("INPUTS"), Some(false))), &s).unwrap();
        assert_eq!(refused.policy, Policy::none());
        assert!(refused.warnings.is_empty());
    }

    #[test]
    fn refresh_cache_table() {
        // Reference §10: (task.refresh_cache, setting) -> overwrite; false means a present key is Cached.
        let off = settings(&[]);
        let on = settings(&[("CACHEHOST_TASKS_REFRESH_CACHE", "true")]);
        let rows = [
            (Some(true), &off, true),
            (Some(true), &on, true),
            (Some(false), &off, false),
            (Some(false), &on, false),
            (None, &off, false),
            (None, &on, true),
        ];
        for (task, s, want) in rows {
            assert_eq!(overwrite(task, s), want, "refresh_cache={task:?} setting={}", s.tasks_refresh_cache);
        }
    }

    #[test]
    fn persist_at_run_time_table() {
        // Reference 8.1, in order: task value, DEFAULT_PERSIST_RESULT, parent task, flow, PERSIST_BY_DEFAULT.
        let plain = settings(&[]);
        let by_default = settings(&[("CACHEHOST_RESULTS_PERSIST_BY_DEFAULT", "true")]);
        let default_off = settings(&[("CACHEHOST_TASKS_DEFAULT_PERSIST_RESULT", "false")]);
        let default_on = settings(&[("CACHEHOST_TASKS_DEFAULT_PERSIST_RESULT", "true")]);
        let rows = [
            (Some(true), &default_off, ParentPersist::FlowRun(false), true),
            (Some(false), &default_on, ParentPersist::FlowRun(true), false),
            (None, &default_off, ParentPersist::FlowRun(true), false),
            (None, &default_on, ParentPersist::FlowRun(false), true),
            (None, &plain, ParentPersist::TaskRun(true), true),
            (None, &by_default, ParentPersist::TaskRun(false), false),
            (None, &plain, ParentPersist::FlowRun(true), true),
            (None, &by_default, ParentPersist::FlowRun(false), false),
            (None, &plain, ParentPersist::Standalone, false),
            (None, &by_default, ParentPersist::Standalone, true),
        ];
        for (i, (task, s, parent, want)) in rows.into_iter().enumerate() {
            assert_eq!(persist_at_run_time(task, s, parent), want, "row {i}: {task:?} {parent:?}");
        }
    }

    #[test]
    fn layers_full_name_beats_short_name_and_file_beats_component() {
        let file = Path::new("/flows/cachehost.toml").to_path_buf();
        let layers = vec![
            Layer {
                source: Source::Component,
                tasks: BTreeMap::from([
                    (
                        "add-one".into(),
                        TaskOptions {
                            lock_manager: Some("c-short".into()),
                            key_storage: Some("c-short".into()),
                            ..Default::default()
                        },
                    ),
                    (
                        TASK.into(),
                        TaskOptions {
                            lock_manager: Some("c-full".into()),
                            result_storage: Some("c-full".into()),
                            ..Default::default()
                        },
                    ),
                    (
                        "add-two".into(),
                        TaskOptions { isolation_level: Some("SERIALIZABLE".into()), ..Default::default() },
                    ),
                ]),
            },
            Layer {
                source: Source::ConfigFile(file.clone()),
                tasks: BTreeMap::from([
                    (TASK.into(), TaskOptions { refresh_cache: Some(true), ..Default::default() }),
                    (
                        "add-one".into(),
                        TaskOptions {
                            refresh_cache: Some(false),
                            result_storage: Some("f-short".into()),
                            ..Default::default()
                        },
                    ),
                ]),
            },
        ];
        let (merged, sources) = layered(TASK, &layers);
        assert_eq!(merged.lock_manager.as_deref(), Some("c-full"));
        assert_eq!(merged.key_storage.as_deref(), Some("c-short"));
        assert_eq!(merged.result_storage.as_deref(), Some("f-short"));
        assert_eq!(merged.refresh_cache, Some(true));
        assert_eq!(merged.isolation_level, None);
        assert_eq!(sources.lock_manager, Source::Component);
        assert_eq!(sources.result_storage, Source::ConfigFile(file.clone()));
        assert_eq!(sources.refresh_cache, Source::ConfigFile(file));
        assert_eq!(sources.isolation_level, Source::Default);
    }

    #[test]
    fn layer_from_config_file() {
        let config =
            ConfigFile::parse("[tasks.add-one]\ncache_policy = \"TASK_SOURCE\"\n", Path::new("/flows/cachehost.toml"))
                .unwrap();
        let layers = [component(options(Some("INPUTS"), None)).remove(0), Layer::from_config(&config)];
        let resolved = resolve(TASK, &layers, &settings(&[])).unwrap();
        assert_eq!(resolved.policy, policy("TASK_SOURCE"));
        assert_eq!(resolved.sources.cache_policy, Source::ConfigFile("/flows/cachehost.toml".into()));
        assert_eq!(resolved.sources.persist_result, Source::Derived("cache_policy"));
    }

    #[test]
    fn relative_storage_folders_in_a_config_file_are_beside_it() {
        let config = ConfigFile::parse(
            "[tasks.add-one]\nkey_storage = \"keys\"\nresult_storage = \"s3://b/p\"\n\
             [tasks.other]\nkey_storage = \"/abs/keys\"\nresult_storage = \"../results\"\n",
            Path::new("/flows/cachehost.toml"),
        )
        .unwrap();
        let layer = Layer::from_config(&config);
        let add_one = &layer.tasks["add-one"];
        assert_eq!(add_one.key_storage.as_deref(), Some("/flows/keys"));
        assert_eq!(add_one.result_storage.as_deref(), Some("s3://b/p"));
        let other = &layer.tasks["other"];
        assert_eq!(other.key_storage.as_deref(), Some("/abs/keys"));
        assert_eq!(other.result_storage.as_deref(), Some("/flows/../results"));
    }

    #[test]
    fn sources_of_defaulted_and_forced_policies() {
        let resolved = resolve(TASK, &[], &settings(&[])).unwrap();
        assert_eq!(resolved.policy, Policy::default_policy());
        assert_eq!(resolved.sources.cache_policy, Source::Default);
        let forced = resolve(TASK, &component(options(Some("INPUTS"), Some(false))), &settings(&[])).unwrap();
        assert_eq!(forced.sources.cache_policy, Source::Derived("persist_result"));
        assert_eq!(forced.sources.persist_result, Source::Component);
    }

    #[test]
    fn a_bad_policy_names_task_source_and_column() {
        let err = resolve(TASK, &component(options(Some("INPUTS + TASK_SORCE"), None)), &settings(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "task 'example:math/tasks#add-one' has an invalid cache_policy \"INPUTS + TASK_SORCE\" (from component): \
             column 10: unknown policy name 'TASK_SORCE'; did you mean TASK_SOURCE?"
        );
        assert_eq!(err.caret().unwrap(), "INPUTS + TASK_SORCE\n         ^");
    }

    #[test]
    fn noop_exclusions_become_warnings() {
        let resolved = resolve(TASK, &component(options(Some("TASK_SOURCE - 'x'"), None)), &settings(&[])).unwrap();
        assert_eq!(
            resolved.warnings,
            vec![
                "cache_policy \"TASK_SOURCE - 'x'\", column 13: `- 'x'` has no effect because the policy to its left \
                has no INPUTS"
            ]
        );
    }

    #[test]
    fn an_unknown_isolation_level_is_an_error() {
        let layers = component(TaskOptions { isolation_level: Some("serializable".into()), ..Default::default() });
        let err = resolve(TASK, &layers, &settings(&[])).unwrap_err();
        assert!(matches!(err, OptionsError::BadIsolationLevel { ref value, .. } if value == "serializable"), "{err}");
    }

    #[test]
    fn other_options_pass_through() {
        let layers = component(TaskOptions {
            cache_expiration: Some(Duration::from_secs(5)),
            refresh_cache: Some(true),
            isolation_level: Some("SERIALIZABLE".into()),
            lock_manager: Some("memory".into()),
            key_storage: Some("keys".into()),
            ..Default::default()
        });
        let resolved = resolve(TASK, &layers, &settings(&[])).unwrap();
        assert_eq!(resolved.cache_expiration, Some(Duration::from_secs(5)));
        assert_eq!(resolved.refresh_cache, Some(true));
        assert_eq!(resolved.isolation_level.as_deref(), Some("SERIALIZABLE"));
        assert_eq!(resolved.lock_manager.as_deref(), Some("memory"));
        assert_eq!(resolved.key_storage.as_deref(), Some("keys"));
        assert_eq!(resolved.sources.key_storage, Source::Component);
    }
}
