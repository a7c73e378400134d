//! `cachehost worker`: joins the consumer group, runs the calls it claims through the same
//! task-run code as a local run, writes their records, replies, then acknowledges.
//!
//! A claim is a lease: the worker renews it (XCLAIM of its own entries, which resets their
//! idle time) while a call runs, and any worker takes over entries idle for longer than its
//! lease (XAUTOCLAIM). A SIGKILLed worker's calls are so run again elsewhere; a worker told to
//! stop (SIGTERM, Ctrl-C) takes nothing new and leaves once its calls are done.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::call::{self, Call, Outcome, Payload};
use super::queue::{self, Queue, QueueError, CALLS, DEAD, GROUP, RUNNING, WORKERS};
use super::status::{RunningCall, WorkerInfo};
use crate::clock::now_ms;
use crate::engine::{Engine, EngineOptions};
use crate::log::{Capture, Level, Logger, Subject};
use crate::run::ctx::FlowRunCtx;
use crate::run::report::{LogLineReport, StateReport};
use crate::run::task::Caller;
use crate::run::{Route, Session};
use crate::settings::{ConfigFile, Settings};
use crate::store::{record, Shared};

/// How long one wait for new calls blocks in Redis.
const READ_BLOCK: Duration = Duration::from_secs(1);

/// Set by SIGTERM and SIGINT: take no new call, finish the running ones, leave.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// The settings a call carries from the flow's process: those that decide what a task run
/// does. The others (home, signing and trusted keys, the run history) are the worker's.
pub const CARRIED_SETTINGS: [crate::settings::Setting; 10] = {
    use crate::settings::Setting::*;
    [
        LocalStoragePath,
        ResultsPersistByDefault,
        TasksRefreshCache,
        TasksDefaultPersistResult,
        TasksDefaultNoCache,
        TasksDisableCaching,
        TasksDefaultRetries,
        TasksDefaultRetryDelay,
        Sandbox,
        Determinism,
    ]
};

/// Whether the environment variable `name` is a setting a call carries.
pub fn is_carried(name: &str) -> bool {
    name.starts_with("CACHEHOST_LIMITS_") || CARRIED_SETTINGS.iter().any(|s| s.env_name() == name)
}

/// How a worker runs.
pub struct WorkerOptions {
    /// `redis://host:port`.
    pub queue: String,
    /// Its name in the group (default: host-pid).
    pub name: String,
    /// How many calls it runs at once.
    pub concurrency: usize,
    /// Its lease on a call.
    pub lease: Duration,
    /// Whether every call runs under the strict sandbox, whatever the flow says.
    pub strict: bool,
}

/// A worker.
pub struct Worker {
    queue: Queue,
    options: WorkerOptions,
    logger: Arc<Logger>,
    home: PathBuf,
    sessions: Mutex<HashMap<blake3::Hash, Arc<Session>>>,
    /// Held while a session loads, so calls that need the same one fetch and compile once.
    loading: Mutex<()>,
    running: Mutex<BTreeMap<String, RunningCall>>,
    finished: Condvar,
}

/// Why a call could not be run at all.
struct Refusal {
    message: String,
}

impl Worker {
    /// A worker on the queue at `options.queue`; `home` is its own CACHEHOST_HOME (compiled
    /// components and fetched components are kept there).
    pub fn new(options: WorkerOptions, home: PathBuf, logger: Arc<Logger>) -> Result<Worker, QueueError> {
        let queue = Queue::open(&options.queue)?;
        Ok(Worker {
            queue,
            options,
            logger,
            home,
            sessions: Mutex::new(HashMap::new()),
            loading: Mutex::new(()),
            running: Mutex::new(BTreeMap::new()),
            finished: Condvar::new(),
        })
    }

    /// Runs until told to stop. Redis unreachable at the start is an error; later outages are
    /// logged and waited out, the running calls going on.
    pub fn serve(self: Arc<Self>) -> Result<(), QueueError> {
        self.queue.ping()?;
        self.queue.ensure_group()?;
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(libc::SIGTERM, on_stop_signal as *const () as libc::sighandler_t);
            libc::signal(libc::SIGINT, on_stop_signal as *const () as libc::sighandler_t);
        }
        self.register()?;
        let renewer = self.clone();
        std::thread::Builder::new()
            .name("cachehost-lease".to_owned())
            .spawn(move || renewer.renew_leases())
            .expect("a thread starts");
        self.logger.log(
            Level::Info,
            &Subject::Host,
            &format!(
                "Worker '{}' is taking task calls from the Redis queue at {} ({} at once, lease {})",
                self.options.name,
                self.queue.address(),
                self.options.concurrency,
                crate::units::duration_text(self.options.lease)
            ),
        );
        let mut connection = None;
        let mut last_claim = Instant::now() - self.options.lease;
        let mut outage: Option<Instant> = None;
        while !STOP.load(Ordering::SeqCst) {
            let free = self.free_places();
            if free == 0 {
                continue;
            }
            let taken = self.take_calls(free, &mut connection, &mut last_claim);
            match taken {
                Ok(calls) => {
                    if let Some(since) = outage.take() {
                        self.logger.log(
                            Level::Info,
                            &Subject::Host,
                            &format!(
                                "The Redis queue at {} answers again, after {}",
                                self.queue.address(),
                                crate::units::duration_text(since.elapsed())
                            ),
                        );
                    }
                    for (entry, rerun) in calls {
                        self.start(entry, rerun);
                    }
                }
                Err(e) => {
                    connection = None;
                    if outage.is_none() {
                        outage = Some(Instant::now());
                        self.logger.log(Level::Error, &Subject::Host, &format!("{e}; trying again every second"));
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
        self.drain();
        Ok(())
    }

    /// Waits until fewer than `concurrency` calls run (for at most a block's time): the
    /// number of free places.
    fn free_places(&self) -> usize {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let (running, _) = self
            .finished
            .wait_timeout_while(running, READ_BLOCK, |running| running.len() >= self.options.concurrency)
            .unwrap_or_else(|e| e.into_inner());
        self.options.concurrency.saturating_sub(running.len())
    }

    /// Takes up to `free` calls: first those whose worker's lease lapsed (XAUTOCLAIM, at
    /// most once a second), then new ones (XREADGROUP, blocking up to a second).
    fn take_calls<'q>(
        &'q self,
        free: usize,
        connection: &mut Option<queue::BlockingConnection<'q>>,
        last_claim: &mut Instant,
    ) -> Result<Vec<(queue::Entry, bool)>, QueueError> {
        let mut taken = Vec::new();
        if last_claim.elapsed() >= (self.options.lease / 4).min(Duration::from_secs(1)) {
            *last_claim = Instant::now();
            let reply = self.queue.run(
                redis::cmd("XAUTOCLAIM")
                    .arg(CALLS)
                    .arg(GROUP)
                    .arg(&self.options.name)
                    .arg(self.options.lease.as_millis() as u64)
                    .arg("0-0")
                    .arg("COUNT")
                    .arg(free),
            )?;
            if let Some(claimed) = queue::items(&reply).get(1) {
                taken.extend(queue::entries(claimed).into_iter().map(|entry| (entry, true)));
            }
        }
        let free = free - taken.len().min(free);
        if free == 0 {
            return Ok(taken);
        }
        if connection.is_none() {
            *connection = Some(self.queue.blocking_connection(READ_BLOCK)?);
        }
        let reply = connection.as_mut().expect("set above").run(
            redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(GROUP)
                .arg(&self.options.name)
                .arg("COUNT")
                .arg(free)
                .arg("BLOCK")
                .arg(READ_BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(CALLS)
                .arg(">"),
        )?;
        taken.extend(queue::read_entries(&reply).into_iter().map(|entry| (entry, false)));
        Ok(taken)
    }

    fn register(&self) -> Result<(), QueueError> {
        let info = WorkerInfo {
            name: self.options.name.clone(),
            host: hostname(),
            pid: std::process::id(),
            concurrency: self.options.concurrency,
            started_ms: now_ms(),
            lease_ms: self.options.lease.as_millis() as u64,
        };
        let json = serde_json::to_string(&info).expect("worker info is JSON");
        self.queue.run(redis::cmd("HSET").arg(WORKERS).arg(&self.options.name).arg(json))?;
        self.heartbeat()
    }

    fn heartbeat(&self) -> Result<(), QueueError> {
        let ms = (self.options.lease.as_millis() as u64).max(1000);
        self.queue
            .run(redis::cmd("SET").arg(queue::heartbeat_key(&self.options.name)).arg(now_ms()).arg("PX").arg(ms))?;
        Ok(())
    }

    /// Every third of the lease: the heartbeat, and the claims on the running calls.
    fn renew_leases(&self) {
        let every = (self.options.lease / 3).max(Duration::from_millis(50));
        loop {
            std::thread::sleep(every);
            let entries: Vec<String> = self.running.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
            let _ = self.heartbeat();
            if entries.is_empty() {
                continue;
            }
            // XCLAIM with no minimum idle time resets the idle time of entries this worker
            // still owns; JUSTID leaves their delivery count alone.
            let mut command = redis::cmd("XCLAIM");
            command.arg(CALLS).arg(GROUP).arg(&self.options.name).arg(0);
            for entry in &entries {
                command.arg(entry);
            }
            command.arg("JUSTID");
            if let Err(e) = self.queue.run(&command) {
                self.logger.log(
                    Level::Warning,
                    &Subject::Host,
                    &format!("The leases of running calls were not renewed: {e}"),
                );
            }
        }
    }

    /// Runs a call on a thread of its own.
    fn start(self: &Arc<Self>, entry: queue::Entry, rerun: bool) {
        let call = match call::parse_call(&entry) {
            Ok(call) => call,
            Err(reason) => return self.dead_letter(&entry, &reason),
        };
        let earlier = if rerun { self.earlier_workers(&call.entry) } else { Vec::new() };
        let running = RunningCall {
            entry: call.entry.clone(),
            worker: self.options.name.clone(),
            task_run: run_name(&call),
            task: call.head.task.clone(),
            since_ms: now_ms(),
            earlier_workers: earlier.clone(),
        };
        let json = serde_json::to_string(&running).expect("a running call is JSON");
        let _ = self.queue.run(redis::cmd("HSET").arg(RUNNING).arg(&call.entry).arg(json));
        self.running.lock().unwrap_or_else(|e| e.into_inner()).insert(call.entry.clone(), running);
        let worker = self.clone();
        std::thread::Builder::new()
            .name("cachehost-call".to_owned())
            .spawn(move || {
                let (outcome, value) = worker.run_call(&call, &earlier);
                worker.reply(&call, &outcome, value.as_ref());
                worker.running.lock().unwrap_or_else(|e| e.into_inner()).remove(&call.entry);
                worker.finished.notify_all();
            })
            .expect("a thread starts");
    }

    /// The workers that ran this entry before and stopped answering: the one the running
    /// hash names, after those it names as earlier.
    fn earlier_workers(&self, entry: &str) -> Vec<String> {
        let before = self.queue.run(redis::cmd("HGET").arg(RUNNING).arg(entry)).ok();
        let before: Option<RunningCall> =
            before.as_ref().and_then(queue::text).and_then(|j| serde_json::from_str(&j).ok());
        match before {
            Some(before) => {
                let mut earlier = before.earlier_workers;
                earlier.push(before.worker);
                earlier
            }
            None => vec!["a worker that stopped answering".to_owned()],
        }
    }

    /// Moves an entry no worker can read to the dead-letter stream, with the reason.
    fn dead_letter(&self, entry: &queue::Entry, reason: &str) {
        self.logger.log(
            Level::Error,
            &Subject::Host,
            &format!("Stream entry {} is not a task call ({reason}); it was moved to {DEAD}", entry.id),
        );
        let mut add = redis::cmd("XADD");
        add.arg(DEAD)
            .arg("*")
            .arg("entry")
            .arg(&entry.id)
            .arg("reason")
            .arg(reason)
            .arg("worker")
            .arg(&self.options.name);
        for (name, value) in &entry.fields {
            add.arg(format!("field:{name}")).arg(value.as_slice());
        }
        let mut pipeline = redis::pipe();
        pipeline.atomic().add_command(add).add_command(ack(&entry.id)).add_command(delete(&entry.id));
        if let Err(e) = self.queue.run_atomically(&pipeline) {
            self.logger.log(Level::Error, &Subject::Host, &format!("Entry {} could not be moved: {e}", entry.id));
        }
    }

    /// Sends the outcome to the flow, then acknowledges the call: a worker that dies in
    /// between leaves the call to another, whose run finds the record (a hit).
    fn reply(&self, call: &Call, outcome: &Outcome, value: Option<&Payload>) {
        let mut add = redis::cmd("XADD");
        add.arg(&call.head.reply).arg("*");
        call::add_fields(&mut add, &call::outcome_fields(outcome, value));
        let mut pipeline = redis::pipe();
        pipeline
            .atomic()
            .add_command(add)
            .add_command(redis::cmd("PEXPIRE").arg(&call.head.reply).arg(queue::REPLY_KEEP.as_millis() as u64).clone())
            .add_command(ack(&call.entry))
            .add_command(delete(&call.entry))
            .add_command(redis::cmd("HDEL").arg(RUNNING).arg(&call.entry).clone());
        let started = Instant::now();
        loop {
            match self.queue.run_atomically(&pipeline) {
                Ok(_) => return,
                Err(e) if started.elapsed() < self.options.lease => {
                    self.logger.log(
                        Level::Warning,
                        &Subject::Host,
                        &format!("The outcome of {} was not sent yet: {e}", outcome.call),
                    );
                    std::thread::sleep(Duration::from_secs(1));
                }
                // The lease lapses now: another worker runs the call again, and finds its
                // record if it has one.
                Err(e) => {
                    self.logger.log(
                        Level::Error,
                        &Subject::Host,
                        &format!(
                            "The outcome of {} could not be sent ({e}); another worker will take the call",
                            outcome.call
                        ),
                    );
                    return;
                }
            }
        }
    }

    /// Runs a call: its outcome, with its task runs and log lines, and its encoded value.
    fn run_call(&self, call: &Call, earlier: &[String]) -> (Outcome, Option<Payload>) {
        let capture = Capture::default();
        let subject = Subject::TaskRun(run_name(call));
        let ran = capture.within(|| {
            if let Some(last) = earlier.last() {
                self.logger.log(
                    Level::Warning,
                    &subject,
                    &format!(
                        "Worker '{last}' stopped answering while it ran this call and its lease lapsed; running it \
                         again on worker '{}' (attempt {}). Its body may have run there in part",
                        self.options.name,
                        earlier.len() + 1
                    ),
                );
            }
            self.execute(call)
        });
        let logs = capture
            .take()
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
            .collect();
        let mut outcome = Outcome {
            call: call.head.call.clone(),
            worker: self.options.name.clone(),
            state: StateReport::from(&crate::run::state::State::failed("")),
            cache_key: None,
            trap: None,
            task_runs: Vec::new(),
            logs,
        };
        match ran {
            Ok((session, route, task_outcome)) => {
                let mut runs = session.take_task_runs(&call.head.call);
                for run in &mut runs {
                    run.worker = Some(self.options.name.clone());
                }
                if let Some(own) = runs.first_mut() {
                    own.earlier_workers = earlier.to_vec();
                    own.attempts += earlier.len() as u32;
                }
                outcome.task_runs = runs;
                outcome.state = StateReport::from(&task_outcome.state);
                outcome.cache_key = task_outcome.cache_key.clone();
                outcome.trap = task_outcome.trap.clone();
                let has_result = session.components[route.component].tasks[route.task].signature.result.is_some();
                let Some(value) = task_outcome.value.as_ref().filter(|_| has_result).map(record::encode_value) else {
                    return (outcome, None);
                };
                let head = &call.head;
                let kept = session
                    .result_store(Some(&head.store.result_storage), head.store.key_storage.as_deref())
                    .map_err(|e| e.to_string())
                    .and_then(|store| Payload::keep(store.as_ref(), &call::value_name(&head.call), value));
                match kept {
                    Ok(value) => (outcome, Some(value)),
                    Err(e) => {
                        let message = format!("its value cannot be sent back: {e}");
                        self.logger.log(Level::Error, &subject, &message);
                        outcome.state = StateReport::from(&crate::run::state::State::failed(message.clone()));
                        outcome.trap = Some(message);
                        (outcome, None)
                    }
                }
            }
            Err(refusal) => {
                self.logger.log(Level::Error, &subject, &format!("Task call refused: {}", refusal.message));
                outcome.state = StateReport::from(&crate::run::state::State::failed(refusal.message.clone()));
                outcome.trap = Some(refusal.message);
                (outcome, None)
            }
        }
    }

    /// The session for the call's components and settings, and the call run in it.
    fn execute(&self, call: &Call) -> Result<(Arc<Session>, Route, crate::run::state::TaskOutcome), Refusal> {
        let session = self.session(call)?;
        let (component, task) = call.head.route;
        let def = session
            .components
            .get(component)
            .and_then(|c| c.tasks.get(task))
            .filter(|def| def.full_name == call.head.task)
            .ok_or_else(|| Refusal {
                message: format!("its components have no task {} where the call says", call.head.task),
            })?;
        let types: Vec<_> = def.signature.params.iter().map(|(_, ty)| ty.clone()).collect();
        let head = &call.head;
        let store = session
            .result_store(Some(&head.store.result_storage), head.store.key_storage.as_deref())
            .map_err(|e| Refusal { message: format!("cannot open its result storage: {e}") })?;
        let bytes = call
            .inputs
            .bytes(store.as_ref(), &call::inputs_name(&head.call))
            .map_err(|e| Refusal { message: format!("its inputs: {e}") })?;
        let inputs = record::decode_inputs(&bytes, &types)
            .map_err(|e| Refusal { message: format!("its inputs do not fit task {}: {e}", def.function) })?;
        // Inputs fetched by digest are not needed once decoded: the body's run would hold
        // them for nothing.
        drop(bytes);
        let flow = &call.head.flow_run;
        let mut parameter_digests = Vec::new();
        for (name, hex) in &flow.parameter_digests {
            let digest = blake3::Hash::from_hex(hex)
                .map_err(|_| Refusal { message: format!("flow parameter {name} has no digest") })?;
            parameter_digests.push((name.clone(), digest));
        }
        let elapsed = Duration::from_millis(now_ms().saturating_sub(flow.started_ms).max(0) as u64);
        let caller = Caller {
            flow_run: Some(Arc::new(FlowRunCtx {
                id: flow.id.clone(),
                name: flow.name.clone(),
                parameter_digests,
                persist_result: flow.persist_result,
                started: Instant::now().checked_sub(elapsed).unwrap_or_else(Instant::now),
            })),
            task_run: None,
            depth: 0,
            txn: None,
        };
        let id = uuid::Uuid::parse_str(&call.head.call)
            .map_err(|_| Refusal { message: format!("its call id {:?} is not a UUID", call.head.call) })?;
        let route = Route { component, task };
        let outcome = crate::run::sandbox::on_deep_stack(&session.settings.limits, || {
            session.run_task_as(&caller, route, inputs, id)
        });
        Ok((session, route, outcome))
    }

    /// The worker's session for a call: loaded once per set of components, configuration
    /// and carried settings, from components fetched by digest and checked.
    fn session(&self, call: &Call) -> Result<Arc<Session>, Refusal> {
        let head = &call.head;
        let identity = {
            let mut hasher = blake3::Hasher::new();
            let json = serde_json::to_vec(&(&head.components, &head.store.result_storage, &head.store.key_storage))
                .expect("JSON");
            hasher.update(&json);
            hasher.update(
                &serde_json::to_vec(&(&head.settings, head.config.as_ref().map(|c| (&c.path, &c.text)))).expect("JSON"),
            );
            hasher.finalize()
        };
        if let Some(session) = self.sessions.lock().unwrap_or_else(|e| e.into_inner()).get(&identity) {
            return Ok(session.clone());
        }
        let _loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(session) = self.sessions.lock().unwrap_or_else(|e| e.into_inner()).get(&identity) {
            return Ok(session.clone());
        }
        let refuse = |message: String| Refusal { message };
        let config = match &head.config {
            Some(c) => Some(
                ConfigFile::parse(&c.text, Path::new(&c.path))
                    .map_err(|e| refuse(format!("its configuration: {e}")))?,
            ),
            None => None,
        };
        let strict = self.options.strict;
        let env = |name: &str| {
            if strict && name == crate::settings::Setting::Sandbox.env_name() {
                return Some("strict".to_owned());
            }
            if is_carried(name) {
                return head.settings.get(name).cloned();
            }
            std::env::var(name).ok()
        };
        let mut settings = Settings::load(env, config.as_ref()).map_err(|e| refuse(format!("its settings: {e}")))?;
        // A worker runs calls; it never sends them on.
        settings.executor = None;
        let paths = self.fetch_components(head, config.as_ref(), &settings)?;
        let fuel = crate::settings::needs_fuel(&settings, config.as_ref());
        let engine = Engine::new(Some(self.home.join("compiled")), EngineOptions { fuel })
            .map_err(|e| refuse(format!("cannot set up wasmtime: {e:#}")))?;
        let session = Session::load(
            engine,
            settings,
            config,
            self.logger.clone(),
            &paths,
            crate::link::Providers::Required,
            crate::run::DEFAULT_CONCURRENCY,
        )
        .map_err(|e| refuse(format!("its components cannot be loaded: {e}")))?;
        // What was loaded is what the flow named, whatever happened to the kept copies.
        for (component, wanted) in session.components.iter().zip(&head.components) {
            if component.digest.to_hex().as_str() != wanted.digest {
                return Err(refuse(format!(
                    "component {} loaded as {}, not the bytes the call names; refusing to run it",
                    wanted.digest,
                    component.digest.to_hex()
                )));
            }
        }
        session.keep_values_in_reports();
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).insert(identity, session.clone());
        Ok(session)
    }

    /// The call's components as local files: kept copies, or fetched from the shared store
    /// and checked against their digest before they are kept.
    fn fetch_components(
        &self,
        head: &call::CallHead,
        config: Option<&ConfigFile>,
        settings: &Settings,
    ) -> Result<Vec<PathBuf>, Refusal> {
        let mut paths = Vec::new();
        let mut store = None;
        for wanted in &head.components {
            let refuse =
                |what: String| Refusal { message: format!("component {} ({}): {what}", wanted.digest, wanted.file) };
            let digest =
                blake3::Hash::from_hex(&wanted.digest).map_err(|_| refuse("not a BLAKE3 digest".to_owned()))?;
            if wanted.file.contains('/') || wanted.file.starts_with('.') {
                return Err(refuse("not a plain file name".to_owned()));
            }
            let path = self.home.join("worker").join("components").join(&wanted.digest).join(&wanted.file);
            if path.is_file() {
                paths.push(path);
                continue;
            }
            if store.is_none() {
                store = Some(
                    crate::run::open_result_store(
                        config,
                        settings,
                        &self.logger,
                        Some(&head.store.result_storage),
                        head.store.key_storage.as_deref(),
                    )
                    .map_err(|e| refuse(format!("cannot open the shared store {}: {e}", head.store.result_storage)))?,
                );
            }
            let store = store.as_ref().expect("opened above");
            let bytes = store
                .read_shared(Shared::Component, &wanted.digest)
                .map_err(|e| refuse(format!("cannot fetch it from {}: {e}", store.describe())))?
                .ok_or_else(|| {
                    refuse(format!(
                        "it is not in {}; a worker needs the flow's result storage shared with it (an S3 bucket, \
                         or a folder at the same path on every machine)",
                        store.describe()
                    ))
                })?;
            let found = blake3::hash(&bytes);
            if found != digest {
                return Err(refuse(format!(
                    "the bytes fetched from {} hash to {}, not to its digest; refusing to run them",
                    store.describe(),
                    found.to_hex()
                )));
            }
            crate::files::write_atomically(&path, &bytes, crate::files::Durability::Lazy)
                .map_err(|e| refuse(format!("cannot keep it at {}: {e}", path.display())))?;
            paths.push(path);
        }
        Ok(paths)
    }

    /// Stops taking calls, waits for the running ones, and leaves the group.
    fn drain(&self) {
        let count = self.running.lock().unwrap_or_else(|e| e.into_inner()).len();
        self.logger.log(
            Level::Info,
            &Subject::Host,
            &format!("Worker '{}' stops: finishing {count} running calls, taking no new one", self.options.name),
        );
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        while !running.is_empty() {
            running = self.finished.wait(running).unwrap_or_else(|e| e.into_inner());
        }
        drop(running);
        let _ = self.queue.run(redis::cmd("DEL").arg(queue::heartbeat_key(&self.options.name)));
        let _ = self.queue.run(redis::cmd("HDEL").arg(WORKERS).arg(&self.options.name));
        let _ = self.queue.run(redis::cmd("XGROUP").arg("DELCONSUMER").arg(CALLS).arg(GROUP).arg(&self.options.name));
        self.logger.log(Level::Info, &Subject::Host, &format!("Worker '{}' stopped", self.options.name));
    }
}

/// The name of the call's task run, as the flow's process gives it.
fn run_name(call: &Call) -> String {
    let function = call.head.task.rsplit('#').next().unwrap_or(&call.head.task);
    let id = uuid::Uuid::parse_str(&call.head.call).map(|id| id.simple().to_string()).unwrap_or_default();
    format!("{function}-{}", id.get(..3).unwrap_or(""))
}

fn ack(entry: &str) -> redis::Cmd {
    redis::cmd("XACK").arg(CALLS).arg(GROUP).arg(entry).clone()
}

fn delete(entry: &str) -> redis::Cmd {
    redis::cmd("XDEL").arg(CALLS).arg(entry).clone()
}

/// This machine's name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
