//! One task call, end to end (DESIGN §1): key, lookup, on a miss a fresh instance of the
//! providing component, then the record, the state, the log line and the report entry.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::Val;
use wasmtime::StoreContextMut;

use super::ctx::{task_run_info_val, FlowRunCtx, LastState, RunCtx, TaskRunCtx};
use super::pool::Submission;
use super::reads::{self, and_list, ReadSet};
use super::report::{self, KeyPartReport, StateReport, TaskRunReport};
use super::sandbox::{self, limit_state, RunFailure};
use super::state::{State, TaskOutcome};
use super::{first_line, Purpose, Route, Session};
use crate::clock::now_ms;
use crate::key::{self, CacheKey, KeyInputs};
use crate::limits::{LimitExceeded, Limits};
use crate::log::{Level, Subject};
use crate::options::{self, ParentPersist};
use crate::policy::Part;
use crate::settings::Determinism;
use crate::store::{record, Lookup, ResultStore};
use crate::trust::Verdict;
use crate::txn::journal::{JournalEntry, StagedRecord};
use crate::txn::{self, HookTarget, Txn, TxnRef};
use crate::value::{abi, canonical, Ty, Value};

/// Results whose encoding is this long or longer are staged as a [`record::NewRecord`].
const SHARED_RECORD_FROM: u64 = 256 * 1024;

/// Who is calling a task: the flow run and, for nested calls, the calling task run.
#[derive(Clone, Default)]
pub struct Caller {
    /// The flow run, if any.
    pub flow_run: Option<Arc<FlowRunCtx>>,
    /// The task run making the call, for nested task calls.
    pub task_run: Option<TaskRunCtx>,
    /// The caller's nesting depth (0 for a flow).
    pub depth: u32,
    /// The caller's innermost open transaction: the call's transaction becomes its child.
    pub txn: Option<TxnRef>,
}

impl Caller {
    /// The caller that a Store's instance is.
    pub fn of(data: &RunCtx) -> Caller {
        Caller {
            flow_run: data.flow_run.clone(),
            task_run: data.task_run.clone(),
            depth: data.depth,
            txn: data.current_txn(),
        }
    }
}

/// Why one attempt at a task's body failed.
struct AttemptFailure {
    /// The state the run ends in if no retry follows.
    state: State,
    /// Set when the caller must trap (a trap or an exhausted limit, not a returned `err`).
    trap: Option<String>,
    /// The returned value, for a returned `err`.
    value: Option<Value>,
    /// The reason, for the log lines.
    reason: String,
}

/// The host function behind every imported task function: the arguments come straight
/// from the caller's memory (see `value::abi`), and the result goes back the same way.
pub(crate) fn serve_task_import(
    mut store: StoreContextMut<'_, RunCtx>,
    route: Route,
    args: Vec<Value>,
) -> wasmtime::Result<Option<Value>> {
    let data = store.data();
    let session = data.session.clone();
    let def = &session.components[route.component].tasks[route.task];
    let caller = Caller::of(data);
    let outcome = session.run_task(&caller, route, args);
    store.data_mut().last_state =
        Some(LastState { state: outcome.state.clone(), cache_key: outcome.cache_key.clone() });
    if let Some(trap) = outcome.trap {
        // A task declared `-> result<T, string>` reports every failure as a value, so the
        // caller can go on; any other task's failure traps the caller, as an exception would.
        if let Some(Ty::Result { err: Some(err), .. }) = &def.signature.result {
            if **err == Ty::String {
                let message = outcome.state.message.unwrap_or(trap);
                return Ok(Some(Value::Result(Err(Some(Box::new(Value::String(message)))))));
            }
        }
        return Err(wasmtime::Error::msg(format!("task {} failed: {trap}", def.function)));
    }
    match (&def.signature.result, outcome.value) {
        (Some(_), Some(value)) => Ok(Some(value)),
        (Some(_), None) => Err(wasmtime::Error::msg(format!("task {} returned no value", def.full_name))),
        (None, _) => Ok(None),
    }
}

/// The read set a READS record keeps: its READS part's detail.
fn reads_detail(meta: &record::RecordMeta) -> Option<&[(String, String)]> {
    meta.parts.iter().find(|p| p.name == Part::Reads.name()).map(|p| p.detail.as_slice())
}

/// The type a record of this task's result is stored as: a function without a result
/// stores the empty tuple.
pub(crate) fn stored_type(result: &Option<Ty>) -> Ty {
    result.clone().unwrap_or(Ty::Tuple(Vec::new()))
}

impl Session {
    /// Runs one task call on its own, outside any flow run (`cachehost call`; RUN_ID is its
    /// task run's id), on a thread with stack enough for the deepest nesting allowed.
    pub fn run_standalone(self: &Arc<Self>, route: Route, args: Vec<Value>) -> TaskOutcome {
        sandbox::on_deep_stack(&self.settings.limits, || self.run_task(&Caller::default(), route, args))
    }

    /// Runs one task call under its cache policy.
    pub fn run_task(self: &Arc<Self>, caller: &Caller, route: Route, args: Vec<Value>) -> TaskOutcome {
        self.run_task_as(caller, route, args, uuid::Uuid::new_v4())
    }

    /// [`Session::run_task`] as the task run `id`: a worker runs a call under the id the
    /// flow's process gave it, so both name the run alike.
    pub fn run_task_as(
        self: &Arc<Self>,
        caller: &Caller,
        route: Route,
        args: Vec<Value>,
        id: uuid::Uuid,
    ) -> TaskOutcome {
        let started = Instant::now();
        let def = &self.components[route.component].tasks[route.task];
        let resolved = self.task_options(route);
        let name = format!("{}-{}", def.function, &id.simple().to_string()[..3]);
        let subject = Subject::TaskRun(name.clone());
        let parent = match (&caller.task_run, &caller.flow_run) {
            (Some(task), _) => ParentPersist::TaskRun(task.persist_result),
            (None, Some(flow)) => ParentPersist::FlowRun(flow.persist_result),
            (None, None) => ParentPersist::Standalone,
        };
        let persist = options::persist_at_run_time(resolved.persist_result, &self.settings, parent);
        let overwrite = options::overwrite(resolved.refresh_cache, &self.settings);
        let task_run =
            TaskRunCtx { id: id.to_string(), name: name.clone(), task: def.function.clone(), persist_result: persist };
        let limits = self.task_limits(route);
        let attempts = std::cell::Cell::new(0u32);
        // What the last attempt read, for the report.
        let reads = std::cell::RefCell::new(ReadSet::default());
        // What the body cost: measured on a miss, the record's on a hit (what the hit saved).
        let cost = std::cell::Cell::new(None::<record::Cost>);
        let start_offset_ms = caller
            .flow_run
            .as_ref()
            .map_or(0.0, |flow| started.saturating_duration_since(flow.started).as_secs_f64() * 1e3);
        // Only a kept report (every `cachehost run`) pays for values as JSON.
        let keep_values = self.reports_values();
        let inputs = keep_values
            .then(|| {
                def.signature
                    .params
                    .iter()
                    .zip(&args)
                    .map(|((name, ty), value)| Some((name.clone(), report::small_json(value, ty)?)))
                    .collect::<Option<serde_json::Map<_, _>>>()
            })
            .flatten();
        let finish =
            |state: State, key: Option<&CacheKey>, value: Option<Value>, trap: Option<String>, persisted: bool| {
                let level = if state.is_completed() { Level::Info } else { Level::Error };
                self.logger.log_args(level, &subject, format_args!("Finished in state {state}"));
                let cache_key = key.and_then(|k| k.key.clone());
                self.record_task_run(TaskRunReport {
                    id: task_run.id.clone(),
                    name: name.clone(),
                    task: def.full_name.clone(),
                    component: self.components[route.component].file_name(),
                    parent_task_run: caller.task_run.as_ref().map(|t| t.id.clone()),
                    state: StateReport::from(&state),
                    cache_key: cache_key.clone(),
                    cache_key_parts: key
                        .map(|k| {
                            k.parts.iter().map(|p| KeyPartReport { part: p.name.clone(), key: p.key.clone() }).collect()
                        })
                        .unwrap_or_default(),
                    persisted,
                    attempts: attempts.get(),
                    duration_ms: started.elapsed().as_secs_f64() * 1e3,
                    start_offset_ms,
                    inputs: inputs.clone(),
                    cost: cost.get(),
                    worker: None,
                    earlier_workers: Vec::new(),
                    result: match (keep_values, &value, &def.signature.result) {
                        (true, Some(value), Some(ty)) => report::small_json(value, ty),
                        _ => None,
                    },
                    reads: Some(reads.take()).filter(|reads| !reads.is_empty()),
                });
                TaskOutcome { state, cache_key, value, trap, value_json: None }
            };

        if caller.depth >= limits.max_nesting_depth {
            let limit = LimitExceeded::NestingDepth { limit: limits.max_nesting_depth };
            return finish(limit_state(&limit), None, None, Some(limit.to_string()), false);
        }
        let store = match self.result_store(resolved.result_storage.as_deref(), resolved.key_storage.as_deref()) {
            Ok(store) => store,
            Err(e) => {
                let message = format!("cannot open the result storage: {e}");
                return finish(State::failed(message.clone()), None, None, Some(message), false);
            }
        };
        let result_ty = stored_type(&def.signature.result);
        let mut cache_key = self.cache_key(route, &task_run, caller, &args, &subject);
        let key = cache_key.as_ref().and_then(|k| k.key.clone());
        let txn = Txn::open(key.clone(), None, caller.txn.clone());

        // A call sent to the workers takes its SERIALIZABLE lease there, around the body.
        let remote = self.runs_remotely(caller);
        if let Some(key) = &key {
            if let Err(message) = if remote { Ok(()) } else { self.isolate(&txn, key, resolved, &task_run.id) } {
                txn::exit(&txn, true, self);
                return finish(State::failed(message.clone()), cache_key.as_ref(), None, Some(message), false);
            }
            if !overwrite {
                match self.lookup_with_reads(route, store.as_ref(), key, &result_ty, &subject) {
                    Lookup::Hit(record) if !self.trusts(&record.meta, &record.meta.key, &subject) => {}
                    Lookup::Hit(record) => {
                        cost.set(record.meta.cost);
                        txn::mark_committed(&txn);
                        txn::exit(&txn, false, self);
                        let value = def.signature.result.as_ref().map(|_| match Arc::try_unwrap(record) {
                            Ok(record) => record.value,
                            Err(kept) => kept.value.clone(),
                        });
                        return finish(State::cached(), cache_key.as_ref(), value, None, false);
                    }
                    Lookup::Unreadable { reason } => self.logger.log(
                        Level::Warning,
                        &subject,
                        &format!(
                            "The cache record for key '{key}' is unreadable ({reason}); running the task and \
                            overwriting it"
                        ),
                    ),
                    Lookup::Miss | Lookup::Expired { .. } => {}
                }
            }
        }

        if remote {
            // Nothing was staged: the worker's own transaction writes the record.
            txn::exit(&txn, false, self);
            return match self.run_remote(route, caller, &task_run, &args) {
                Ok(outcome) => outcome,
                Err(message) => {
                    self.logger.log(Level::Error, &subject, &format!("The workers did not run this call: {message}"));
                    finish(State::failed(message.clone()), cache_key.as_ref(), None, Some(message), false)
                }
            };
        }

        // Prefect's retries: every failure of the body is retried while retries remain. Each
        // attempt is a transaction of its own, and a failed attempt rolls the enclosing
        // transaction back even when a retry then succeeds (reference 11.11).
        let retries = resolved.retries.unwrap_or(self.settings.tasks_default_retries);
        let mut txn = txn;
        let (returned, body_cost) = loop {
            attempts.set(attempts.get() + 1);
            let failure = match self.attempt(route, caller, &task_run, &args, &limits, &txn) {
                Ok((value, read, cost)) => {
                    *reads.borrow_mut() = read;
                    break (value, cost);
                }
                Err(failure) => failure,
            };
            // A failed attempt, whether it returned `err`, trapped, panicked or hit a limit,
            // rolls back before it stages anything, so its own on-rollback hooks never run
            // (reference 11.10, 13.8): an `err` is Prefect's raised exception, not a returned
            // Failed state (11.17). The transactions of its completed nested tasks are
            // children of this one and roll back with their hooks.
            txn::exit(&txn, true, self);
            let retry = attempts.get() - 1;
            if retry < retries {
                let delay = resolved.retry_delay.unwrap_or(self.settings.tasks_default_retry_delay);
                let when = if delay.is_zero() {
                    "immediately".to_owned()
                } else {
                    format!("{} second(s) from now", delay.as_secs_f64())
                };
                self.logger.log(
                    Level::Info,
                    &subject,
                    &format!(
                        "Task run failed with exception: {} - Retry {}/{retries} will start {when}",
                        first_line(&failure.reason),
                        retry + 1
                    ),
                );
                std::thread::sleep(delay);
                txn = Txn::open(key.clone(), None, caller.txn.clone());
                if let Some(key) = &key {
                    if let Err(message) = self.isolate(&txn, key, resolved, &task_run.id) {
                        txn::exit(&txn, true, self);
                        return finish(State::failed(message.clone()), cache_key.as_ref(), None, Some(message), false);
                    }
                }
                continue;
            }
            if failure.trap.is_some() {
                self.logger.log(Level::Error, &subject, &format!("Task run failed with exception: {}", failure.reason));
            }
            return finish(failure.state, cache_key.as_ref(), failure.value, failure.trap, false);
        };
        cost.set(Some(body_cost));
        if let (Some(_), true) = (&key, persist) {
            let guarded = self.guard_determinism(route, &reads.borrow(), &subject);
            if let Err(message) = guarded {
                txn::exit(&txn, true, self);
                return finish(State::failed(message.clone()), cache_key.as_ref(), None, Some(message), false);
            }
        }
        // A READS record keeps what the run read in its READS part (see `run::reads`).
        let read_detail = reads.borrow().detail();
        for part in cache_key.iter_mut().flat_map(|k| k.parts.iter_mut()).filter(|p| p.name == Part::Reads.name()) {
            part.detail = read_detail.clone();
        }
        let record = match (&key, persist) {
            (Some(key), true) => Some(self.record_entry(
                key,
                route,
                cache_key.as_ref().expect("a key has its parts"),
                &result_ty,
                (&returned, body_cost, &reads.borrow()),
                &args,
            )),
            _ => None,
        };
        let staged = record.is_some();
        // Hooks are registered only here, by the attempt that completed (reference 1.6).
        let hooks = self.components[route.component].hook_exports.map(|_| HookTarget {
            component: route.component,
            task: def.function.clone(),
            run_name: name.clone(),
        });
        let variant = record.as_ref().and_then(|entry| self.reads_variant(route, entry, &returned));
        txn::stage(&txn, record, hooks);
        let committed = txn::exit(&txn, false, self);
        if let (Some(variant), true) = (variant, committed) {
            if let Err(e) = variant.record.write_to(store.as_ref(), &variant.key) {
                self.logger.log(
                    Level::Warning,
                    &subject,
                    &format!("The record of this read set could not also be kept under '{}': {e}", variant.key),
                );
            }
        }
        let value = def.signature.result.as_ref().map(|_| returned);
        finish(State::completed(), cache_key.as_ref(), value, None, staged && committed)
    }

    /// Whether the record found under `key` may be used, as this host's trust settings judge
    /// it (DESIGN §9a). A refused record is a miss with one WARNING naming it and its signer;
    /// the task then runs, and its record (signed, if this host signs) replaces it.
    pub(crate) fn trusts(&self, meta: &record::RecordMeta, key: &str, subject: &Subject) -> bool {
        match self.trust.judge(meta) {
            Verdict::Trusted => true,
            Verdict::UnsignedAllowed => {
                self.logger.log(
                    Level::Warning,
                    subject,
                    &format!("The cache record for key '{key}' is unsigned; using it because require_signed is false"),
                );
                true
            }
            Verdict::Refused { reason } => {
                let then = if self.trust.signing_key().is_some() {
                    "running the task and overwriting it with a signed record"
                } else {
                    "running the task"
                };
                self.logger.log(
                    Level::Warning,
                    subject,
                    &format!("The cache record for key '{key}' is not trusted: {reason}; {then}"),
                );
                false
            }
        }
    }

    /// [`ResultStore::lookup`] of `key`, and for a task keyed on READS, the check that the
    /// record's read set holds: every file, listing and variable it names as it was. When one
    /// is not, the record kept under the key of the read set as it is now
    /// ([`reads::variant_key`]) is the hit, if an earlier run saw things so; else a miss,
    /// logged with what changed.
    fn lookup_with_reads(
        &self,
        route: Route,
        store: &dyn ResultStore,
        key: &str,
        result_ty: &Ty,
        subject: &Subject,
    ) -> Lookup {
        let (found, change) = self.lookup_checking_reads(route, store, key, result_ty);
        if let Some(change) = change {
            self.logger.log(
                Level::Info,
                subject,
                &format!("READS: {change} since the cache record for key '{key}' was written; running the task"),
            );
        }
        found
    }

    /// [`Session::lookup_with_reads`] without the log line: the lookup, and for a miss of a
    /// READS record, what changed.
    pub(crate) fn lookup_checking_reads(
        &self,
        route: Route,
        store: &dyn ResultStore,
        key: &str,
        result_ty: &Ty,
    ) -> (Lookup, Option<String>) {
        let found = store.lookup(key, result_ty, now_ms());
        if !self.task_options(route).policy.parts.contains(&Part::Reads) {
            return (found, None);
        }
        let Lookup::Hit(record) = found else { return (found, None) };
        let Some(kept) = reads_detail(&record.meta) else { return (Lookup::Hit(record), None) };
        let now = self.current_reads(route, kept);
        let Some(change) = reads::first_change(kept, &now) else { return (Lookup::Hit(record), None) };
        if let Lookup::Hit(variant) = store.lookup(&reads::variant_key(key, &now), result_ty, now_ms()) {
            if reads_detail(&variant.meta) == Some(now.as_slice()) {
                return (Lookup::Hit(variant), None);
            }
        }
        (Lookup::Miss, Some(change))
    }

    /// What the labels of a kept read set of the task at `route` hold now.
    pub(crate) fn current_reads(&self, route: Route, kept: &[(String, String)]) -> Vec<(String, String)> {
        let grants = self.grants(route.component);
        let dirs = grants.map(|g| g.dirs.as_slice()).unwrap_or_default();
        let env: Vec<(String, String)> = grants
            .map(|g| g.env.iter().filter_map(|name| std::env::var(name).ok().map(|v| (name.clone(), v))).collect())
            .unwrap_or_default();
        reads::current_detail(kept, dirs, &env, &self.file_digests)
    }

    /// For a READS record about to be staged, the same record under the key of its read
    /// set ([`reads::variant_key`]), written once the record is committed. `value` is the
    /// record's value (a clone shares a large one's buffers).
    fn reads_variant(&self, route: Route, entry: &JournalEntry, value: &Value) -> Option<JournalEntry> {
        if !self.task_options(route).policy.parts.contains(&Part::Reads) {
            return None;
        }
        let mut meta = match &entry.record {
            StagedRecord::New(record) => record.meta.clone(),
            StagedRecord::Bytes(bytes) => record::split(bytes).ok()?.0,
        };
        let key = reads::variant_key(&entry.key, reads_detail(&meta)?);
        meta.key = key.clone();
        self.trust.sign(&mut meta);
        Some(JournalEntry {
            result_storage: entry.result_storage.clone(),
            key_storage: entry.key_storage.clone(),
            key,
            record: StagedRecord::New(Box::new(record::NewRecord::new(meta, value.clone()))),
        })
    }

    /// The determinism guard (`determinism`), for a run whose result is about to be cached:
    /// under a policy without RUN_ID, reading the wall clock, random or the environment makes
    /// the cached result one that a later call may not compute. `warn` logs it once per task,
    /// `deny` refuses the run (the error is the state's message).
    fn guard_determinism(&self, route: Route, reads: &ReadSet, subject: &Subject) -> Result<(), String> {
        let resolved = self.task_options(route);
        if self.settings.determinism == Determinism::Off || resolved.policy.parts.contains(&Part::RunId) {
            return Ok(());
        }
        // READS checks the variables' values at every lookup.
        let read = reads.uncovered(resolved.policy.parts.contains(&Part::Reads));
        if read.is_empty() {
            return Ok(());
        }
        let def = &self.components[route.component].tasks[route.task];
        let read = and_list(&read);
        let policy = &resolved.policy;
        match self.settings.determinism {
            Determinism::Deny => Err(format!(
                "the task read {read}, which its cache policy {policy} does not cover, and determinism = \"deny\" \
                 refuses to cache such a result; add RUN_ID to its policy to cache it within one flow run, or set \
                 determinism = \"warn\""
            )),
            _ => {
                let first =
                    self.determinism_warned.lock().unwrap_or_else(|e| e.into_inner()).insert(def.full_name.clone());
                if first {
                    self.logger.log(
                        Level::Warning,
                        subject,
                        &format!(
                            "Task {} read {read}, which its cache policy {policy} does not cover: its cached result \
                             may be stale for later calls. Add RUN_ID to its policy to cache it within one flow run, \
                             or set determinism = \"deny\" to refuse such results (\"off\" stops this warning)",
                            def.function
                        ),
                    );
                }
                Ok(())
            }
        }
    }

    /// Runs the body of the task at `route` once on `args`, as a miss would, outside any
    /// flow run and writing nothing (`cache verify`): its value, or why it failed.
    pub fn replay(self: &Arc<Self>, route: Route, args: &[Value]) -> Result<Value, String> {
        let def = &self.components[route.component].tasks[route.task];
        let id = uuid::Uuid::new_v4().to_string();
        let task_run = TaskRunCtx {
            name: format!("{}-{}", def.function, &id[..3]),
            id,
            task: def.function.clone(),
            persist_result: false,
        };
        let limits = self.task_limits(route);
        let txn = Txn::open(None, None, None);
        let outcome = sandbox::on_deep_stack(&self.settings.limits, || {
            self.execute(route, &Caller::default(), task_run, args, &limits, &txn)
        });
        // Rolled back: whatever nested task calls staged is never written.
        txn::exit(&txn, true, self);
        outcome.map(|(value, _, _)| value).map_err(|failure| match failure {
            RunFailure::Limit(limit) => limit.to_string(),
            RunFailure::Trap(message) => first_line(&message).to_owned(),
        })
    }

    /// Computes the call's cache key, or none when the policy gives none, the key function
    /// fails, or the key is refused (each logged at ERROR, as Prefect does: the task then
    /// runs uncached).
    fn cache_key(
        self: &Arc<Self>,
        route: Route,
        task_run: &TaskRunCtx,
        caller: &Caller,
        args: &[Value],
        subject: &Subject,
    ) -> Option<CacheKey> {
        match self.compute_key(route, task_run, caller, args) {
            Ok(cache_key) => cache_key,
            Err(reason) => {
                self.key_error(subject, &reason);
                None
            }
        }
    }

    /// The cache key a call of the task at `route` with `args` uses, in the run `caller` and
    /// `task_run` describe: the one computation shared by task runs and `cache explain`.
    ///
    /// `Ok(None)` when the policy has no parts; `Err` says why no key could be computed
    /// (an argument that cannot be hashed, a failing key function, a refused key).
    pub fn compute_key(
        self: &Arc<Self>,
        route: Route,
        task_run: &TaskRunCtx,
        caller: &Caller,
        args: &[Value],
    ) -> Result<Option<CacheKey>, String> {
        let component = &self.components[route.component];
        let def = &component.tasks[route.task];
        let policy = &self.task_options(route).policy;
        if policy.parts.is_empty() {
            return Ok(None);
        }
        let mut arg_digests = Vec::new();
        if policy.parts.iter().any(|p| matches!(p, crate::policy::Part::Inputs { .. })) {
            for (value, (name, ty)) in args.iter().zip(&def.signature.params) {
                let digest =
                    canonical::digest(value, ty).map_err(|e| format!("argument `{name}` cannot be hashed: {e}"))?;
                arg_digests.push((name.clone(), digest));
            }
        }
        let run_id = caller.flow_run.as_ref().map(|f| f.id.clone()).unwrap_or_else(|| task_run.id.clone());
        let mut key_fn = || self.call_key_fn(route, task_run, caller, args);
        let inputs = KeyInputs {
            args: &arg_digests,
            component_digest: &component.digest,
            task_name: &def.full_name,
            flow_parameters: caller.flow_run.as_ref().map(|f| f.parameter_digests.as_slice()),
            run_id: &run_id,
            key_fn: &mut key_fn,
        };
        // `compute` refuses keys that cannot name a storage entry (DESIGN §3).
        let cache_key = key::compute(policy, inputs).map_err(|e| e.to_string())?;
        Ok(Some(cache_key))
    }

    fn key_error(&self, subject: &Subject, reason: &str) {
        self.logger.log(
            Level::Error,
            subject,
            &format!("Error encountered when computing cache key - result will not be persisted. {reason}"),
        );
    }

    /// Calls the providing component's `cachehost:task/keys#cache-key` in a fresh instance.
    fn call_key_fn(
        self: &Arc<Self>,
        route: Route,
        task_run: &TaskRunCtx,
        caller: &Caller,
        args: &[Value],
    ) -> Result<Option<String>, String> {
        let component = &self.components[route.component];
        let def = &component.tasks[route.task];
        let export = component.keys_export.ok_or_else(|| {
            format!("the policy uses KEY_FN but {} does not export cachehost:task/keys", component.file_name())
        })?;
        let mut inputs = Vec::new();
        for (value, (name, ty)) in args.iter().zip(&def.signature.params) {
            let json = value.to_json(ty).map_err(|e| e.to_string())?;
            inputs.push(Val::Tuple(vec![Val::String(name.clone()), Val::String(json.to_string())]));
        }
        let flow_run_id = caller.flow_run.as_ref().map(|f| f.id.as_str());
        let info = task_run_info_val(&task_run.id, &task_run.name, &task_run.task, flow_run_id);
        let limits = self.task_limits(route);
        let mut store = self.new_store(
            route.component,
            caller.flow_run.clone(),
            Some(task_run.clone()),
            caller.depth + 1,
            &limits,
            None,
        );
        let instance = self.instantiate(&mut store, route.component, Purpose::KeyFunction)?;
        let func = instance.get_func(&mut store, export).ok_or("the keys export is not a function")?;
        let mut results = [Val::Bool(false)];
        func.call(&mut store, &[info, Val::List(inputs)], &mut results)
            .map_err(|e| format!("the key function trapped: {}", first_line(&format!("{e:#}"))))?;
        match &results[0] {
            Val::Option(None) => Ok(None),
            Val::Option(Some(key)) => match &**key {
                Val::String(key) => Ok(Some(key.clone())),
                other => Err(format!("the key function returned {other:?}, not a string")),
            },
            other => Err(format!("the key function returned {other:?}, not an option<string>")),
        }
    }

    /// One attempt at running the body: the value and what it cost, or why it failed.
    fn attempt(
        self: &Arc<Self>,
        route: Route,
        caller: &Caller,
        task_run: &TaskRunCtx,
        args: &[Value],
        limits: &Limits,
        txn: &TxnRef,
    ) -> Result<(Value, ReadSet, record::Cost), AttemptFailure> {
        let def = &self.components[route.component].tasks[route.task];
        let (returned, reads, cost) =
            self.execute(route, caller, task_run.clone(), args, limits, txn).map_err(|failure| {
                let (state, reason) = match &failure {
                    RunFailure::Limit(limit) => (limit_state(limit), limit.to_string()),
                    RunFailure::Trap(message) => (
                        State::failed(format!("Task run encountered a trap: {}", first_line(message))),
                        message.clone(),
                    ),
                };
                AttemptFailure { state, trap: Some(first_line(&reason).to_owned()), value: None, reason }
            })?;
        let value_len = record::value_len(&returned);
        if value_len > limits.max_result_size {
            let limit = LimitExceeded::ResultSize { size: Some(value_len), limit: limits.max_result_size };
            return Err(AttemptFailure {
                state: limit_state(&limit),
                trap: Some(limit.to_string()),
                value: None,
                reason: limit.to_string(),
            });
        }
        if let (Some(ty @ Ty::Result { .. }), Value::Result(Err(_))) = (&def.signature.result, &returned) {
            let json = returned.to_json(ty).map(|j| j.to_string()).unwrap_or_default();
            let state = State::failed(format!("Task run returned err: {json}"));
            let reason = format!("the task returned err: {json}");
            return Err(AttemptFailure {
                state,
                trap: None,
                value: def.signature.result.as_ref().map(|_| returned),
                reason,
            });
        }
        Ok((returned, reads, cost))
    }

    /// Runs the task body in a fresh instance of its component, with its own Store: its value
    /// and what it cost (from the instance's creation to the lifted result).
    fn execute(
        self: &Arc<Self>,
        route: Route,
        caller: &Caller,
        task_run: TaskRunCtx,
        args: &[Value],
        limits: &Limits,
        txn: &TxnRef,
    ) -> Result<(Value, ReadSet, record::Cost), RunFailure> {
        let def = &self.components[route.component].tasks[route.task];
        let started = Instant::now();
        let mut store = self.new_store(
            route.component,
            caller.flow_run.clone(),
            Some(task_run),
            caller.depth + 1,
            limits,
            Some(txn.clone()),
        );
        let instance = self.instantiate(&mut store, route.component, Purpose::Task).map_err(RunFailure::Trap)?;
        let func = instance
            .get_func(&mut store, def.export)
            .ok_or_else(|| RunFailure::Trap("the task export is not a function".to_owned()))?;
        let (params, result) = abi::signature_abi(&def.signature.params, def.signature.result.as_ref());
        // A runtime that reads the clock or random on an instance's first call (Python)
        // makes that call first, to its `task-options` export, so the read set holds the
        // task's own reads only.
        if self.first_call_reads[route.component].load(std::sync::atomic::Ordering::Relaxed) {
            if let Some(options) = self.components[route.component].options_export {
                if let Some(options) = instance.get_func(&mut store, options) {
                    let mut results = [Val::Bool(false)];
                    let _ = options.call(&mut store, &[], &mut results);
                }
            }
        }
        store.data_mut().reads.forget_instantiation();
        let value = abi::call_export(&mut store, &func, params, result, args);
        let grants = self.grants(route.component).map(|g| g.dirs.as_slice()).unwrap_or_default();
        let value = value.map_err(|e| sandbox::classify(&e, limits))?;
        let cost = sandbox::cost(&store, limits, started.elapsed());
        Ok((value.unwrap_or(Value::Tuple(Vec::new())), store.data().reads.read_set(grants, &self.file_digests), cost))
    }

    /// A replayable task's encoded inputs as its record keeps them: in the record up to
    /// [`record::INLINE_INPUTS_MAX`], else written to value storage first and kept by digest.
    /// Inputs that cannot be written are not kept (an ERROR): the record is still a record,
    /// only `cache verify` cannot replay it.
    fn kept_inputs(&self, args: &[Value], resolved: &options::ResolvedTask) -> Option<record::StoredInputs> {
        let bytes = record::encode_inputs(args);
        if bytes.len() <= record::INLINE_INPUTS_MAX {
            return Some(record::StoredInputs::Inline(bytes));
        }
        let digest = *crate::hash::blake3(&bytes).as_bytes();
        let written = self
            .result_store(resolved.result_storage.as_deref(), resolved.key_storage.as_deref())
            .and_then(|store| store.write_value(&digest, &bytes));
        match written {
            Ok(()) => Some(record::StoredInputs::ByDigest { digest, len: bytes.len() as u64 }),
            Err(e) => {
                self.logger.log(
                    Level::Error,
                    &Subject::Host,
                    &format!("The inputs of a replayable task could not be kept ({e}); `cache verify` cannot replay its record"),
                );
                None
            }
        }
    }

    /// The record of a completed run (its value, and what computing it cost), ready to stage
    /// in its transaction.
    fn record_entry(
        &self,
        key: &str,
        route: Route,
        cache_key: &CacheKey,
        result_ty: &Ty,
        (value, cost, reads): (&Value, record::Cost, &ReadSet),
        args: &[Value],
    ) -> JournalEntry {
        let component = &self.components[route.component];
        let def = &component.tasks[route.task];
        let resolved = self.task_options(route);
        let now = now_ms();
        let expiration_ms = resolved.cache_expiration.map(|d| now + d.as_millis() as i64);
        let meta = record::RecordMeta::for_value(
            key.to_owned(),
            def.full_name.clone(),
            component.digest.to_hex().to_string(),
            cache_key
                .parts
                .iter()
                .map(|p| record::KeyPartMeta { name: p.name.clone(), key: p.key.clone(), detail: p.detail.clone() })
                .collect(),
            now,
            expiration_ms,
            result_ty.clone(),
            value,
        )
        .with_origin(resolved.policy.to_string(), component.file_name())
        .with_cost(Some(cost))
        .with_reads(reads.kept());
        let inputs = resolved.replayable.then(|| self.kept_inputs(args, resolved)).flatten();
        let mut meta = meta.with_inputs(inputs);
        self.trust.sign(&mut meta);
        JournalEntry {
            result_storage: resolved.result_storage.clone(),
            key_storage: resolved.key_storage.clone(),
            key: key.to_owned(),
            // A large result is written from its own buffers, which the record shares with
            // the value returned (no copy); a small one is encoded at once, for less.
            record: if meta.value_len >= SHARED_RECORD_FROM {
                StagedRecord::New(Box::new(record::NewRecord::new(meta, value.clone())))
            } else {
                StagedRecord::Bytes(record::encode_with_value(&meta, value))
            },
        }
    }
}

impl Session {
    /// Submits a call of `task` with JSON arguments on the pool (`submit`).
    pub(crate) fn submit(
        self: &Arc<Self>,
        data: &RunCtx,
        task: &str,
        args: &[(String, String)],
    ) -> Result<Arc<Submission>, String> {
        let route = self.find_task(task)?;
        let def = &self.components[route.component].tasks[route.task];
        let mut values = Vec::new();
        for (name, ty) in &def.signature.params {
            let json = match args.iter().find(|(n, _)| n == name) {
                Some((_, text)) => {
                    serde_json::from_str(text).map_err(|e| format!("argument `{name}` is not valid JSON: {e}"))?
                }
                None if matches!(ty, Ty::Option(_)) => serde_json::Value::Null,
                None => return Err(format!("task `{}` needs the argument `{name}`", def.function)),
            };
            values.push(Value::from_json(&json, ty).map_err(|e| format!("argument `{name}`: {e}"))?);
        }
        if let Some((name, _)) = args.iter().find(|(n, _)| !def.signature.params.iter().any(|(p, _)| p == n)) {
            return Err(format!("task `{}` has no parameter `{name}`", def.function));
        }
        let caller = Caller::of(data);
        let session = self.clone();
        Ok(self.pool.submit(move || {
            let result = session.components[route.component].tasks[route.task].signature.result.as_ref();
            session.run_task(&caller, route, values).with_json(result)
        }))
    }
}
