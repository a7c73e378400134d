//! Flow runs and task runs: the session that holds the loaded components of one `cachehost`
//! invocation, runs flows, and collects the run report.
//!
//! [`load`] builds the session (it is the one part that calls [`crate::link`]); a task call
//! is [`task`], whose transactions, leases and hooks are [`transactions`]; what every Store
//! carries is [`ctx`], its limits and WASI context [`sandbox`].

pub mod ctx;
pub mod history;
pub mod load;
pub mod names;
pub mod pool;
pub mod reads;
pub mod remote;
pub mod report;
pub mod sandbox;
pub mod state;
pub mod task;
pub mod transactions;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use wasmtime::component::InstancePre;
use wasmtime::Store;

use crate::component::ComponentInfo;
use crate::engine::Engine;
use crate::limits::{ComponentGrants, Limits};
use crate::log::{Level, Logger, Subject};
use crate::options::ResolvedTask;
use crate::settings::{ConfigFile, Settings};
use crate::store::{local::LocalStore, object, ResultStore, SplitStore, StoreError};
use crate::value::{abi, Ty, Value};
use ctx::{FlowRunCtx, RunCtx};
use report::{FlowRunReport, Instantiations, LogLineReport, RunReport, StateReport, TaskRunReport};
use state::State;

/// Which exported task serves a call: a task of one of the session's components.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// Index of the providing component in the session.
    pub component: usize,
    /// Index of the task in that component's `tasks`.
    pub task: usize,
}

/// Everything shared by the runs of one `cachehost` invocation.
pub struct Session {
    /// The engine.
    pub engine: Engine,
    /// The resolved settings.
    pub settings: Settings,
    /// `cachehost.toml`, if one was found.
    pub config: Option<ConfigFile>,
    /// Where log lines go.
    pub logger: Arc<Logger>,
    /// The loaded components, the first one being the flow (or the called component).
    pub components: Vec<ComponentInfo>,
    pres: Vec<InstancePre<RunCtx>>,
    grants: Vec<Option<ComponentGrants>>,
    options: OnceLock<Vec<Vec<ResolvedTask>>>,
    stores: Mutex<HashMap<StoreFolders, Arc<dyn ResultStore>>>,
    task_runs: Mutex<Vec<TaskRunReport>>,
    counts: [AtomicU64; 5],
    /// The pool that runs submitted task calls.
    pub pool: Arc<pool::Pool>,
    /// What this host signs its records with and whose records it accepts.
    pub trust: crate::trust::Trust,
    /// Fault injection for crash tests: a pause between the records of a multi-record
    /// commit (`CACHEHOST_DEBUG_COMMIT_PAUSE_MS`).
    pub(crate) commit_pause: Option<std::time::Duration>,
    history: OnceLock<Live>,
    /// Tasks the determinism guard has warned about in this session (once each).
    determinism_warned: Mutex<std::collections::BTreeSet<String>>,
    /// By component: whether its runtime reads the clock, random or the environment on an
    /// instance's first call (Python does), seen when its options were read at load.
    first_call_reads: Vec<std::sync::atomic::AtomicBool>,
    /// Digests of the files READS records name, by stamp (`run::reads`).
    pub(crate) file_digests: reads::FileDigests,
    /// The workers' queue, once started ([`Session::start_executor`]).
    executor: OnceLock<Arc<crate::worker::executor::Executor>>,
    /// Whether task run reports carry values without a run history (a worker's session).
    values_in_reports: std::sync::atomic::AtomicBool,
}

/// The run history of a session that keeps one ([`Session::keep_history`]): the flow run in
/// progress and when its report was last written.
struct Live {
    history: history::History,
    keep: usize,
    flow_run: Mutex<Option<FlowRunReport>>,
    last_write: Mutex<Option<Instant>>,
}

/// How many submitted task calls run at once unless `--concurrency` says otherwise.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// The folders a store lives in: key storage (if any), result storage.
type StoreFolders = (Option<PathBuf>, PathBuf);

/// Which kind of instance is being created, for the report's counts.
#[derive(Clone, Copy)]
pub(crate) enum Purpose {
    Flow = 0,
    Task = 1,
    KeyFunction = 2,
    Options = 3,
    Hook = 4,
}

/// The outcome of a flow run.
pub struct FlowOutcome {
    /// The flow run's report entry.
    pub report: FlowRunReport,
    /// Whether the flow completed.
    pub completed: bool,
}

impl Session {
    /// The resolved options of a task.
    pub fn task_options(&self, route: Route) -> &ResolvedTask {
        &self.options.get().expect("options are resolved when the session is loaded")[route.component][route.task]
    }

    /// The limits of a task's runs: its own options over the global limits.
    pub fn task_limits(&self, route: Route) -> Limits {
        // Under the strict sandbox a task's own options cannot loosen its limits either.
        self.settings.sandbox.cap(self.task_options(route).limits(&self.settings.limits))
    }

    /// What `cachehost.toml` grants a component.
    pub fn grants(&self, component: usize) -> Option<&ComponentGrants> {
        self.grants.get(component).and_then(Option::as_ref)
    }

    /// A new Store for one run of `component`, sandboxed and limited by `limits`.
    pub(crate) fn new_store(
        self: &Arc<Self>,
        component: usize,
        flow_run: Option<Arc<FlowRunCtx>>,
        task_run: Option<ctx::TaskRunCtx>,
        depth: u32,
        limits: &Limits,
        txn: Option<crate::txn::TxnRef>,
    ) -> Store<RunCtx> {
        let ctx = RunCtx::new(self.clone(), component, flow_run, task_run, depth, limits.memory, txn);
        let mut store = Store::new(self.engine.wasmtime(), ctx);
        sandbox::apply_limits(&mut store, limits, self.engine.fuel_metered(), |ctx| &mut ctx.limiter);
        store
    }

    /// Instantiates a component in `store`, counting it.
    pub(crate) fn instantiate(
        &self,
        store: &mut Store<RunCtx>,
        component: usize,
        purpose: Purpose,
    ) -> Result<wasmtime::component::Instance, String> {
        self.counts[purpose as usize].fetch_add(1, Ordering::Relaxed);
        self.pres[component]
            .instantiate(store)
            .map_err(|e| format!("cannot instantiate {}: {e:#}", self.components[component].file_name()))
    }

    /// The store for a task's `result_storage` and `key_storage` options
    /// ([`open_result_store`]), one per pair of folders for the session.
    pub(crate) fn result_store(
        &self,
        storage: Option<&str>,
        key_storage: Option<&str>,
    ) -> Result<Arc<dyn ResultStore>, StoreError> {
        if [storage, key_storage].into_iter().flatten().any(object::is_object_storage) {
            return Ok(object_store(self.config.as_ref(), &self.settings, &self.logger, storage, key_storage)?);
        }
        let folders = local_folders(&self.settings, storage, key_storage)?;
        let mut stores = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = stores.get(&folders) {
            return Ok(store.clone());
        }
        let store = open_local_store(&folders)?;
        stores.insert(folders, store.clone());
        Ok(store)
    }

    /// The result storage a task's records go to, as a worker elsewhere must name it: its
    /// `result_storage`, or this host's local storage path.
    pub(crate) fn result_storage_of(&self, route: Route) -> String {
        match &self.task_options(route).result_storage {
            Some(storage) => storage.clone(),
            None => self.settings.local_storage_path.display().to_string(),
        }
    }

    /// Connects to the executor's Redis when `executor` is set: from then on, the flow's
    /// task calls that miss the cache run on workers (see [`crate::worker`]).
    pub fn start_executor(&self) -> Result<(), crate::worker::queue::QueueError> {
        let Some(url) = &self.settings.executor else { return Ok(()) };
        let executor =
            crate::worker::executor::Executor::open(url, self.settings.executor_timeout, self.logger.clone())?;
        let _ = self.executor.set(executor);
        Ok(())
    }

    /// The executor, once started.
    pub fn executor(&self) -> Option<&Arc<crate::worker::executor::Executor>> {
        self.executor.get()
    }

    /// From now on, task run reports carry inputs and results as a kept run history's do
    /// (a worker's, which the flow's process keeps).
    pub fn keep_values_in_reports(&self) {
        self.values_in_reports.store(true, Ordering::Relaxed);
    }

    /// Whether task run reports carry inputs and results.
    pub(crate) fn reports_values(&self) -> bool {
        self.keeps_history() || self.values_in_reports.load(Ordering::Relaxed)
    }

    /// Takes the reports of the task run `id` and of the task runs nested in it out of the
    /// session's report, its own first.
    pub fn take_task_runs(&self, id: &str) -> Vec<TaskRunReport> {
        let mut all = self.task_runs.lock().unwrap_or_else(|e| e.into_inner());
        let mut ids = std::collections::HashSet::from([id.to_owned()]);
        // Children are recorded before their parents finish: go round until nothing is added.
        loop {
            let before = ids.len();
            for run in all.iter() {
                if run.parent_task_run.as_ref().is_some_and(|parent| ids.contains(parent)) {
                    ids.insert(run.id.clone());
                }
            }
            if ids.len() == before {
                break;
            }
        }
        let (mut taken, kept): (Vec<_>, Vec<_>) = all.drain(..).partition(|run| ids.contains(&run.id));
        *all = kept;
        taken.sort_by_key(|run| run.id != id);
        taken
    }

    pub(crate) fn record_task_run(&self, report: TaskRunReport) {
        self.task_runs.lock().unwrap_or_else(|e| e.into_inner()).push(report);
        self.write_live(false);
    }

    /// From now on, every flow run of this session keeps its report in the run history
    /// (`$CACHEHOST_HOME/runs`), with its task runs' inputs, results and log lines, bounded
    /// by the `runs_keep` setting (0 keeps none).
    pub fn keep_history(&self) {
        if self.settings.runs_keep == 0 {
            return;
        }
        self.logger.keep_lines(report::MAX_KEPT_LOG_LINES);
        let _ = self.history.set(Live {
            history: history::History::new(&self.settings.home),
            keep: self.settings.runs_keep,
            flow_run: Mutex::new(None),
            last_write: Mutex::new(None),
        });
    }

    /// Whether this session keeps a run history, so its reports carry values and log lines.
    pub(crate) fn keeps_history(&self) -> bool {
        self.history.get().is_some()
    }

    /// Writes the report of the flow run in progress, unless one was written less than
    /// [`history::LIVE_WRITE_INTERVAL`] ago (`now` writes anyway). A report that cannot be
    /// written is a WARNING: the run goes on.
    fn write_live(&self, now: bool) {
        let Some(live) = self.history.get() else { return };
        let flow_run = live.flow_run.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(flow_run) = flow_run else { return };
        {
            // Another thread writing now is as good as this one writing.
            let Ok(mut last) = (if now {
                Ok(live.last_write.lock().unwrap_or_else(|e| e.into_inner()))
            } else {
                live.last_write.try_lock()
            }) else {
                return;
            };
            if !now && last.is_some_and(|at| at.elapsed() < history::LIVE_WRITE_INTERVAL) {
                return;
            }
            *last = Some(Instant::now());
        }
        self.save_history(&self.report(Some(flow_run)));
    }

    fn save_history(&self, report: &RunReport) {
        let Some(live) = self.history.get() else { return };
        if let Err(e) = live.history.save(report) {
            self.logger.log(
                Level::Warning,
                &Subject::Host,
                &format!("The run report was not kept in the run history: {e}; `cachehost runs` will not show it"),
            );
        }
    }

    /// Finds a task of any loaded component by function name or full name.
    pub fn find_task(&self, name: &str) -> Result<Route, String> {
        let mut found = Vec::new();
        for (c, component) in self.components.iter().enumerate() {
            for (t, task) in component.tasks.iter().enumerate() {
                if task.function == name || task.full_name == name {
                    found.push(Route { component: c, task: t });
                }
            }
        }
        match found.as_slice() {
            [route] => Ok(*route),
            [] => Err(format!("no loaded component exports a task `{name}`")),
            _ => Err(format!("several tasks are named `{name}`; use the full name `<interface>#{name}`")),
        }
    }

    /// Runs flow number `flow` of the first component with `parameters` (already typed).
    pub fn run_flow(self: &Arc<Self>, flow: usize, parameters: Vec<Value>) -> FlowOutcome {
        let def = self.components[0].flows[flow].clone();
        let id = uuid::Uuid::new_v4();
        let name = names::run_name(&id);
        let subject = Subject::FlowRun(name.clone());
        let started = Instant::now();
        let started_ms = crate::clock::now_ms();
        let mut parameter_json = serde_json::Map::new();
        let mut parameter_digests = Vec::new();
        for ((param, ty), value) in def.signature.params.iter().zip(&parameters) {
            parameter_json.insert(param.clone(), value.to_json(ty).unwrap_or(serde_json::Value::Null));
            if let Ok(digest) = crate::value::canonical::digest(value, ty) {
                parameter_digests.push((param.clone(), digest));
            }
        }
        self.logger.log(Level::Info, &subject, &format!("Beginning flow run '{name}' for flow '{}'", def.function));
        let flow_run = Arc::new(FlowRunCtx {
            id: id.to_string(),
            name: name.clone(),
            parameter_digests,
            persist_result: self.settings.results_persist_by_default,
            started,
        });
        if let Some(live) = self.history.get() {
            *live.flow_run.lock().unwrap_or_else(|e| e.into_inner()) = Some(FlowRunReport {
                id: id.to_string(),
                name: name.clone(),
                flow: def.function.clone(),
                parameters: parameter_json.clone(),
                state: StateReport::running(),
                result: None,
                started_ms,
                duration_ms: None,
            });
            self.write_live(true);
        }
        let outcome = sandbox::on_deep_stack(&self.settings.limits, || self.call_flow(&def, flow_run, &parameters));
        let (state, result) = match outcome {
            Ok(value) => match (&def.signature.result, &value) {
                (Some(Ty::Result { .. }), Some(Value::Result(Err(_)))) => {
                    let json = value.as_ref().and_then(|v| v.to_json(def.signature.result.as_ref()?).ok());
                    (State::failed(format!("Flow run returned err: {}", json.unwrap_or_default())), None)
                }
                (Some(ty), Some(value)) => (State::completed(), value.to_json(ty).ok()),
                _ => (State::completed(), Some(serde_json::Value::Null)),
            },
            Err(message) => {
                self.logger.log(Level::Error, &subject, &format!("Flow run failed: {message}"));
                (State::failed(format!("Flow run encountered a trap: {}", first_line(&message))), None)
            }
        };
        let level = if state.is_completed() { Level::Info } else { Level::Error };
        self.logger.log(level, &subject, &format!("Finished in state {state}"));
        let report = FlowRunReport {
            id: id.to_string(),
            name,
            flow: def.function.clone(),
            parameters: parameter_json,
            state: StateReport::from(&state),
            result,
            started_ms,
            duration_ms: Some(started.elapsed().as_secs_f64() * 1e3),
        };
        if let Some(live) = self.history.get() {
            *live.flow_run.lock().unwrap_or_else(|e| e.into_inner()) = None;
            self.save_history(&self.report(Some(report.clone())));
            if let Err(e) = live.history.prune(live.keep) {
                self.logger.log(
                    Level::Warning,
                    &Subject::Host,
                    &format!("Old run reports were not removed from the run history: {e}"),
                );
            }
        }
        FlowOutcome { completed: state.is_completed(), report }
    }

    fn call_flow(
        self: &Arc<Self>,
        def: &crate::component::ExportedFn,
        flow_run: Arc<FlowRunCtx>,
        parameters: &[Value],
    ) -> Result<Option<Value>, String> {
        // A flow run has the global memory limit but no timeout or fuel limit of its own.
        let limits = Limits { timeout: None, fuel: None, ..self.settings.limits.clone() };
        let mut store = self.new_store(0, Some(flow_run), None, 0, &limits, None);
        // The flow's Store lifts the arguments of the tasks it calls, out of the flow's own
        // memory: any value the flow can hold must cross, so the budget is its memory limit
        // in list items, not max_result_size (which bounds task results and would refuse a
        // `list<u8>` argument over 16 MiB). The host pays `size_of::<Val>()` per item while
        // such an argument is lifted.
        store.set_hostcall_fuel(sandbox::hostcall_fuel(limits.memory.max(limits.max_result_size)));
        let instance = self.instantiate(&mut store, 0, Purpose::Flow)?;
        let func = instance.get_func(&mut store, def.export).ok_or("the flow export is not a function")?;
        let (params, result) = abi::signature_abi(&def.signature.params, def.signature.result.as_ref());
        // The cause first, as for a task: the state shows the first line, and `{e:#}` alone
        // starts with wasmtime's "error while executing at wasm backtrace:".
        abi::call_export(&mut store, &func, params, result, parameters).map_err(|e| {
            match sandbox::classify(&e, &limits) {
                sandbox::RunFailure::Limit(limit) => limit.to_string(),
                sandbox::RunFailure::Trap(message) => message,
            }
        })
    }

    /// The report of everything run so far in this session.
    pub fn report(&self, flow_run: Option<FlowRunReport>) -> RunReport {
        let count = |purpose: Purpose| self.counts[purpose as usize].load(Ordering::Relaxed);
        RunReport {
            flow_run,
            task_runs: self.task_runs.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            instantiations: Instantiations {
                flows: count(Purpose::Flow),
                tasks: count(Purpose::Task),
                key_functions: count(Purpose::KeyFunction),
                options: count(Purpose::Options),
                hooks: count(Purpose::Hook),
            },
            object_store_requests: crate::store::object::requests(),
            components: self.components.iter().map(|c| c.path.display().to_string()).collect(),
            logs: self
                .logger
                .kept()
                .into_iter()
                .map(|line| LogLineReport {
                    at_ms: line.at_ms,
                    level: line.level.name().to_owned(),
                    task_run: match line.subject {
                        Subject::TaskRun(name) => Some(name),
                        _ => None,
                    },
                    message: line.message,
                })
                .collect(),
        }
    }
}

/// The process's S3 store for `storage` and `key_storage`, set up from the AWS environment
/// variables and `config`'s `[s3]` table; outage warnings go to `logger`.
pub fn object_store(
    config: Option<&ConfigFile>,
    settings: &Settings,
    logger: &Arc<Logger>,
    storage: Option<&str>,
    key_storage: Option<&str>,
) -> Result<Arc<object::ObjectStore>, StoreError> {
    let table = config.map(|c| c.s3.clone()).unwrap_or_default();
    let s3 = object::S3Settings::resolve(|name| std::env::var(name).ok(), &table)?;
    let logger = logger.clone();
    object::shared(object::OpenOptions {
        results: storage,
        keys: key_storage,
        settings: s3,
        value_cache: Some(object::value_cache_folder(&settings.home)),
        warn: Arc::new(move |message: &str| logger.log(Level::Warning, &Subject::Host, message)),
    })
}

/// The store for `storage` and `key_storage` as a task's options name them: S3-compatible
/// object storage when either is `s3://…`; otherwise the result storage folder (default: the
/// local storage path), split into key records and values when key storage is set (DESIGN §5).
pub fn open_result_store(
    config: Option<&ConfigFile>,
    settings: &Settings,
    logger: &Arc<Logger>,
    storage: Option<&str>,
    key_storage: Option<&str>,
) -> Result<Arc<dyn ResultStore>, StoreError> {
    if [storage, key_storage].into_iter().flatten().any(object::is_object_storage) {
        return Ok(object_store(config, settings, logger, storage, key_storage)?);
    }
    open_local_store(&local_folders(settings, storage, key_storage)?)
}

fn local_folders(
    settings: &Settings,
    storage: Option<&str>,
    key_storage: Option<&str>,
) -> Result<StoreFolders, StoreError> {
    let results = match storage {
        Some(storage) => storage_folder(storage)?,
        None => settings.local_storage_path.clone(),
    };
    Ok((key_storage.map(storage_folder).transpose()?, results))
}

/// Opens a local store. Key storage may be the result storage folder itself: values live in
/// its `.values` folder, which no key can name. What a killed writer left is removed before
/// this process writes.
fn open_local_store(folders: &StoreFolders) -> Result<Arc<dyn ResultStore>, StoreError> {
    Ok(match folders {
        (Some(keys), results) => {
            let split = SplitStore::open(keys, results)?;
            split.clean_stray_temp_files(crate::files::STRAY_TEMP_AGE);
            Arc::new(split)
        }
        (None, results) => {
            let local = LocalStore::open(results)?;
            local.clean_stray_temp_files(crate::files::STRAY_TEMP_AGE);
            Arc::new(local)
        }
    })
}

/// The first line of a possibly multi-line error (wasmtime appends backtraces).
pub(crate) fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or(message)
}

/// The local folder a `key_storage` or `result_storage` option names (a relative path set in a
/// `cachehost.toml` was made relative to its folder when the options were resolved).
fn storage_folder(storage: &str) -> Result<PathBuf, StoreError> {
    if storage.contains("://") {
        return Err(StoreError::Unsupported {
            storage: storage.to_owned(),
            reason: "only local folders and s3:// object storage are supported".to_owned(),
        });
    }
    Ok(PathBuf::from(storage))
}
