//! Loading a session (DESIGN §2): each component is read and compiled (or loaded from the
//! compiled cache), introspected, linked to the providers of the tasks it imports, and its
//! tasks' options are resolved, before anything runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use wasmtime::component::Val;

use super::{pool, Purpose, Session};
use crate::component::{ComponentInfo, InterfaceError};
use crate::engine::{Engine, LoadError};
use crate::limits;
use crate::link::{self, LinkError};
use crate::log::{Level, Logger, Subject};
use crate::options::{self, OptionsError, ResolvedTask};
use crate::settings::{ConfigFile, Settings, Source, TaskOptions};

/// Why a session could not start: the run never began.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// A component file could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A component's interface cannot be served.
    // `error`, not `source`: the message already holds it, and as the error's source it
    // would print a second time in a `{:#}` chain.
    #[error("{component}: {error}")]
    Interface {
        /// The component's file name.
        component: String,
        /// What is wrong.
        error: InterfaceError,
    },
    /// The components cannot be linked.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// A task's options are invalid.
    #[error("{component}: {error}")]
    Options {
        /// The component's file name.
        component: String,
        /// What is wrong (held in the message, as for `Interface`).
        error: Box<OptionsError>,
    },
    /// The signing key or the trusted keys cannot be used.
    #[error(transparent)]
    Trust(#[from] crate::trust::TrustError),
    /// A component's `task-options` export failed.
    #[error("{component}: its cachehost:task/options#task-options export failed: {message}")]
    OptionsExport {
        /// The component's file name.
        component: String,
        /// The trap or error.
        message: String,
    },
}

impl Session {
    /// Loads, introspects and links the components at `paths` (the first is the flow or the
    /// called component; the others are `--tasks` providers), then resolves task options.
    pub fn load(
        engine: Engine,
        settings: Settings,
        config: Option<ConfigFile>,
        logger: Arc<Logger>,
        paths: &[PathBuf],
        providers_mode: link::Providers,
        concurrency: usize,
    ) -> Result<Arc<Session>, SessionError> {
        let trust = crate::trust::Trust::load(&settings)?;
        let mut components = Vec::new();
        for path in paths {
            let progress = |level: Level, message: &str| logger.log(level, &Subject::Host, message);
            let loaded = engine.load(path, &progress)?;
            let info = ComponentInfo::new(engine.wasmtime(), loaded)
                .map_err(|error| SessionError::Interface { component: file_name(path), error })?;
            components.push(info);
        }
        let providers = link::providers(&components)?;
        let mut pres = Vec::new();
        for index in 0..components.len() {
            pres.push(link::link(engine.wasmtime(), &components, &providers, index, providers_mode)?);
        }
        let grants = components
            .iter()
            .map(|component| {
                // The strict sandbox grants nothing, whatever cachehost.toml says.
                if !settings.sandbox.allows_grants() {
                    return None;
                }
                let config = config.as_ref()?;
                let config_dir = config.path.parent().unwrap_or(Path::new(""));
                limits::grants_for(&config.components, &component.path, config_dir)
            })
            .collect();
        let component_count = components.len();
        let session = Arc::new(Session {
            engine,
            settings,
            config,
            logger,
            components,
            pres,
            grants,
            options: OnceLock::new(),
            stores: Mutex::new(HashMap::new()),
            task_runs: Mutex::new(Vec::new()),
            counts: Default::default(),
            pool: Arc::new(pool::Pool::new(concurrency)),
            trust,
            commit_pause: std::env::var("CACHEHOST_DEBUG_COMMIT_PAUSE_MS")
                .ok()
                .and_then(|ms| ms.parse().ok())
                .map(std::time::Duration::from_millis),
            history: OnceLock::new(),
            determinism_warned: Mutex::default(),
            first_call_reads: (0..component_count).map(|_| Default::default()).collect(),
            file_digests: Default::default(),
            executor: OnceLock::new(),
            values_in_reports: Default::default(),
        });
        session.recover_journals();
        let resolved = session.resolve_options()?;
        let _ = session.options.set(resolved);
        Ok(session)
    }

    fn resolve_options(self: &Arc<Self>) -> Result<Vec<Vec<ResolvedTask>>, SessionError> {
        let mut all = Vec::new();
        for (index, component) in self.components.iter().enumerate() {
            let mut layers = Vec::new();
            if let Some(export) = component.options_export {
                layers.push(
                    self.declared_options(index, export)
                        .map_err(|message| SessionError::OptionsExport { component: component.file_name(), message })?,
                );
            }
            if let Some(config) = &self.config {
                layers.push(options::Layer::from_config(config));
            }
            let mut resolved = Vec::new();
            for task in &component.tasks {
                let task_options = options::resolve(&task.full_name, &layers, &self.settings).map_err(|source| {
                    SessionError::Options { component: component.file_name(), error: Box::new(source) }
                })?;
                for warning in &task_options.warnings {
                    self.logger.log(Level::Warning, &Subject::Host, &format!("task '{}': {warning}", task.function));
                }
                resolved.push(task_options);
            }
            all.push(resolved);
        }
        Ok(all)
    }

    /// Calls a component's `task-options` export in a throw-away instance.
    fn declared_options(
        self: &Arc<Self>,
        component: usize,
        export: wasmtime::component::ComponentExportIndex,
    ) -> Result<options::Layer, String> {
        let mut store = self.new_store(component, None, None, 0, &self.settings.limits, None);
        let instance = self.instantiate(&mut store, component, Purpose::Options)?;
        let func = instance.get_func(&mut store, export).ok_or("the export is not a function")?;
        let mut results = [Val::Bool(false)];
        store.data_mut().reads.forget_instantiation();
        func.call(&mut store, &[], &mut results).map_err(|e| format!("{e:#}"))?;
        // A runtime that reads a source on its first call, whatever the call, would make
        // every task of the component look as if it read it (see `Session::execute`).
        let read = store.data().reads.read_set(&[], &self.file_digests);
        let first_call_reads = read.wall_clock || read.random || read.monotonic_clock || !read.env.is_empty();
        self.first_call_reads[component].store(first_call_reads, std::sync::atomic::Ordering::Relaxed);
        declared_layer(&results[0])
    }
}

/// The `list<task-defaults>` a component's `task-options` export returned, as a layer.
fn declared_layer(val: &Val) -> Result<options::Layer, String> {
    let Val::List(entries) = val else { return Err("task-options did not return a list".into()) };
    let mut tasks = std::collections::BTreeMap::new();
    for entry in entries {
        let Val::Record(fields) = entry else { return Err("a task-defaults entry is not a record".into()) };
        let mut task = None;
        let mut declared = TaskOptions::default();
        for (name, value) in fields {
            let text = || match value {
                Val::Option(Some(inner)) => match &**inner {
                    Val::String(text) => Some(text.clone()),
                    _ => None,
                },
                _ => None,
            };
            let flag = || match value {
                Val::Option(Some(inner)) => match &**inner {
                    Val::Bool(flag) => Some(*flag),
                    _ => None,
                },
                _ => None,
            };
            let millis = || match value {
                Val::Option(Some(inner)) => match &**inner {
                    Val::U64(ms) => Some(std::time::Duration::from_millis(*ms)),
                    _ => None,
                },
                _ => None,
            };
            match name.as_str() {
                "task" => task = if let Val::String(t) = value { Some(t.clone()) } else { None },
                "cache-policy" => declared.cache_policy = text(),
                "cache-expiration-ms" => declared.cache_expiration = millis(),
                "retries" => {
                    if let Val::Option(Some(inner)) = value {
                        if let Val::U32(retries) = &**inner {
                            declared.retries = Some(*retries);
                        }
                    }
                }
                "retry-delay-ms" => declared.retry_delay = millis(),
                "timeout-ms" => declared.timeout = millis(),
                "replayable" => declared.replayable = flag(),
                "refresh-cache" => declared.refresh_cache = flag(),
                "persist-result" => declared.persist_result = flag(),
                "isolation-level" => declared.isolation_level = text(),
                "lock-manager" => declared.lock_manager = text(),
                "key-storage" => declared.key_storage = text(),
                "result-storage" => declared.result_storage = text(),
                _ => {}
            }
        }
        let task = task.ok_or("a task-defaults entry has no task name")?;
        tasks.insert(task, declared);
    }
    Ok(options::Layer { source: Source::Component, tasks })
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}
