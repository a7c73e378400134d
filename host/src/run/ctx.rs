//! The data every Store carries: which run it serves, its WASI context and its memory
//! limiter (both built by [`super::sandbox`]).

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::{ResourceTable, Val};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::pool::Submission;
use super::reads::{self, ReadLog};
use super::sandbox::{self, MemoryLimiter};
use super::state::State;
use super::Session;
use crate::log::Subject;
use crate::txn::TxnRef;

/// The flow run a Store works for.
#[derive(Debug)]
pub struct FlowRunCtx {
    /// The flow run's id (a UUID), also its RUN_ID key.
    pub id: String,
    /// Its adjective-animal name.
    pub name: String,
    /// Digests of its parameters, for FLOW_PARAMETERS.
    pub parameter_digests: Vec<(String, blake3::Hash)>,
    /// Whether results persist by default in this flow run (reference §8.1).
    pub persist_result: bool,
    /// When it started, for the start of its task runs in the report.
    pub started: std::time::Instant,
}

/// The task run a Store works for.
#[derive(Clone, Debug)]
pub struct TaskRunCtx {
    /// The task run's id.
    pub id: String,
    /// Its display name, e.g. `add-one-d85`.
    pub name: String,
    /// The task's function name.
    pub task: String,
    /// Its resolved persist_result, inherited by nested task runs.
    pub persist_result: bool,
}

/// The state of the last task call an instance made (Prefect's `return_state=True`).
#[derive(Clone, Debug)]
pub struct LastState {
    /// The state.
    pub state: State,
    /// The cache key the call used.
    pub cache_key: Option<String>,
}

/// What one Store (one flow or task run instance) carries.
pub struct RunCtx {
    wasi: WasiCtx,
    table: ResourceTable,
    /// Everything shared by the runs of this process.
    pub session: Arc<Session>,
    /// The flow run, if any (none for a standalone `cachehost call`).
    pub flow_run: Option<Arc<FlowRunCtx>>,
    /// The task run, if this Store runs a task.
    pub task_run: Option<TaskRunCtx>,
    /// The state of the last task this instance called.
    pub last_state: Option<LastState>,
    /// How many task calls deep this Store is (0 for a flow).
    pub depth: u32,
    /// The component this Store instantiates.
    pub component: usize,
    /// Open transactions, innermost last: a task Store starts with its task run's own.
    pub txns: Vec<TxnRef>,
    /// How many of `txns` this instance opened itself (only those it may end).
    pub opened_txns: usize,
    /// Calls this instance submitted, by handle.
    pub submitted: HashMap<u64, Arc<Submission>>,
    /// Whom this Store's log lines are about when it serves no run of its own (a hook).
    pub log_subject: Option<Subject>,
    /// Keeps the Store's memories under its limit.
    pub limiter: MemoryLimiter,
    /// What the guest read through WASI.
    pub reads: ReadLog,
}

impl RunCtx {
    /// A context for one run of `component`; guest stdout/stderr become log lines of the
    /// run, and the component gets only what `cachehost.toml` grants it.
    pub fn new(
        session: Arc<Session>,
        component: usize,
        flow_run: Option<Arc<FlowRunCtx>>,
        task_run: Option<TaskRunCtx>,
        depth: u32,
        memory_limit: u64,
        txn: Option<TxnRef>,
    ) -> RunCtx {
        let mut ctx = RunCtx {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            session,
            flow_run,
            task_run,
            last_state: None,
            depth,
            component,
            txns: txn.into_iter().collect(),
            opened_txns: 0,
            submitted: HashMap::new(),
            log_subject: None,
            limiter: MemoryLimiter::new(memory_limit),
            reads: ReadLog::default(),
        };
        ctx.wasi =
            sandbox::wasi_ctx(&ctx.session.logger, &ctx.subject(), ctx.session.grants(component), ctx.reads.sources());
        ctx
    }

    /// The innermost open transaction: a task call made now becomes its child.
    pub fn current_txn(&self) -> Option<TxnRef> {
        self.txns.last().cloned()
    }

    /// The name of the run this Store serves.
    pub fn subject_name(&self) -> String {
        match (&self.task_run, &self.flow_run) {
            (Some(task), _) => task.name.clone(),
            (None, Some(flow)) => flow.name.clone(),
            (None, None) => String::new(),
        }
    }

    /// Who log lines written from this Store are about.
    pub fn subject(&self) -> Subject {
        if let Some(subject) = &self.log_subject {
            return subject.clone();
        }
        match (&self.task_run, &self.flow_run) {
            (Some(task), _) => Subject::TaskRun(task.name.clone()),
            (None, Some(flow)) => Subject::FlowRun(flow.name.clone()),
            (None, None) => Subject::Host,
        }
    }
}

impl reads::Observed for RunCtx {
    fn read_log(&mut self) -> &mut ReadLog {
        &mut self.reads
    }
}

impl WasiView for RunCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The `task-run-info` record of the WIT `types` interface.
pub fn task_run_info_val(id: &str, name: &str, task: &str, flow_run_id: Option<&str>) -> Val {
    Val::Record(vec![
        ("id".into(), Val::String(id.into())),
        ("name".into(), Val::String(name.into())),
        ("task".into(), Val::String(task.into())),
        ("flow-run-id".into(), Val::Option(flow_run_id.map(|id| Box::new(Val::String(id.into()))))),
    ])
}
