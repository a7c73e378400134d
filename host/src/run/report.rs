//! The `--json` run report: the flow run and every task run. The same report is kept in the
//! run history ([`super::history`]) and read back by `cachehost runs` and `cachehost ui`, so
//! it reads as well as it writes; fields added later default when an older report lacks them.

use serde::{Deserialize, Serialize};

use super::state::State;
use crate::store::record::Cost;
use crate::value::{Ty, Value};

/// A state as the report shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StateReport {
    /// `Completed`, `Cached`, `Failed`, `TimedOut` or `Crashed`.
    pub name: String,
    /// `COMPLETED`, `FAILED` or `CRASHED`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Why, for failures.
    pub message: Option<String>,
}

impl StateReport {
    /// The state of a flow run still going: `Running`, as Prefect names it.
    pub fn running() -> StateReport {
        StateReport { name: "Running".into(), type_name: "RUNNING".into(), message: None }
    }
}

impl StateReport {
    /// The state this report describes (a state sent by a worker).
    pub fn to_state(&self) -> State {
        use super::state::StateName;
        let name = match self.name.as_str() {
            "Completed" => StateName::Completed,
            "Cached" => StateName::Cached,
            "TimedOut" => StateName::TimedOut,
            "Crashed" => StateName::Crashed,
            _ => StateName::Failed,
        };
        State { name, message: self.message.clone() }
    }
}

impl From<&State> for StateReport {
    fn from(state: &State) -> Self {
        StateReport {
            name: state.name_str().to_owned(),
            type_name: state.type_name().to_owned(),
            message: state.message.clone(),
        }
    }
}

/// One task run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskRunReport {
    /// The task run's id.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// The task's full name, `<interface>#<function>`.
    pub task: String,
    /// The providing component's file name.
    pub component: String,
    /// The task run that called it, for nested task calls.
    pub parent_task_run: Option<String>,
    /// Its final state.
    pub state: StateReport,
    /// The cache key it used, if its policy produced one.
    pub cache_key: Option<String>,
    /// The policy parts that made the key, with each part's own key.
    pub cache_key_parts: Vec<KeyPartReport>,
    /// Whether its result was written to the cache.
    pub persisted: bool,
    /// How many times the body ran: 0 for a cache hit or a refused call, more than 1 after
    /// retries.
    pub attempts: u32,
    /// Wall-clock duration in milliseconds.
    pub duration_ms: f64,
    /// When it started, in milliseconds after its flow run started (0 outside a flow run).
    #[serde(default)]
    pub start_offset_ms: f64,
    /// Its arguments as JSON, by parameter name; none when they are too large to keep
    /// ([`MAX_KEPT_ITEMS`]).
    #[serde(default)]
    pub inputs: Option<serde_json::Map<String, serde_json::Value>>,
    /// Its result as JSON, when it has one small enough to keep.
    #[serde(default)]
    pub result: Option<serde_json::Value>,
    /// What its body read through WASI (files, folders, environment, clocks, random), when
    /// it ran and read anything (`run::reads`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reads: Option<super::reads::ReadSet>,
    /// What its body cost: for a Completed task run what the host measured, for a Cached
    /// one the cost its record keeps, which is what the hit saved (none for a record of
    /// format version 3 or older, and in reports written before costs were kept).
    #[serde(default)]
    pub cost: Option<Cost>,
    /// The worker that ran it, when the flow sent its calls to workers (`--executor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// Workers that ran this call before and stopped answering (their lease lapsed), oldest
    /// first: each is one more attempt, and the body may have run there in part.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_workers: Vec<String>,
}

/// One part of a cache key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyPartReport {
    /// The policy part: `INPUTS`, `TASK_SOURCE`, `FLOW_PARAMETERS`, `RUN_ID`, `KEY_FN`.
    pub part: String,
    /// That part's key.
    pub key: String,
}

/// The flow run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FlowRunReport {
    /// The flow run's id.
    pub id: String,
    /// Its adjective-animal name.
    pub name: String,
    /// The flow's function name.
    pub flow: String,
    /// Its parameters, as JSON.
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// Its final state.
    pub state: StateReport,
    /// Its result, as JSON, when it completed.
    pub result: Option<serde_json::Value>,
    /// When it started, in Unix milliseconds.
    #[serde(default)]
    pub started_ms: i64,
    /// How long it ran, in milliseconds; none while it runs.
    #[serde(default)]
    pub duration_ms: Option<f64>,
}

/// How many instances were created, by purpose. A cache hit creates none.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Instantiations {
    /// Flow instances.
    pub flows: u64,
    /// Task instances, one per executed task run.
    pub tasks: u64,
    /// Instances created to call a component's key function.
    pub key_functions: u64,
    /// Instances created to read a component's declared task options.
    pub options: u64,
    /// Instances created to run transaction hooks.
    pub hooks: u64,
}

/// Everything one `cachehost run` or `cachehost call` did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    /// The flow run; none for a standalone task run.
    pub flow_run: Option<FlowRunReport>,
    /// Every task run, in the order they finished.
    pub task_runs: Vec<TaskRunReport>,
    /// Instances created.
    pub instantiations: Instantiations,
    /// HTTP requests sent to S3-compatible object storage, retries included (0 without it).
    pub object_store_requests: u64,
    /// The paths of the session's components, the flow's first (for `cachehost ui` to
    /// explain a task run's call again).
    #[serde(default)]
    pub components: Vec<String>,
    /// The log lines of the run, in order (at most [`MAX_KEPT_LOG_LINES`]).
    #[serde(default)]
    pub logs: Vec<LogLineReport>,
}

impl RunReport {
    /// How many task runs up the chain of callers `parent` is: 0 for a task run the flow
    /// called, 1 for one a task called, and so on.
    pub fn nesting_depth<'a>(&'a self, mut parent: Option<&'a str>) -> usize {
        let mut depth = 0;
        // Bounded by the number of task runs, so a report with a loop of parents cannot hang.
        while let Some(id) = parent.filter(|_| depth < self.task_runs.len()) {
            depth += 1;
            parent = self.task_runs.iter().find(|t| t.id == id).and_then(|t| t.parent_task_run.as_deref());
        }
        depth
    }
}

/// One log line of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogLineReport {
    /// When, in Unix milliseconds.
    pub at_ms: i64,
    /// `DEBUG`, `INFO`, `WARNING` or `ERROR`.
    pub level: String,
    /// The task run's name for a line about a task run, e.g. `add-one-d85`.
    pub task_run: Option<String>,
    /// The message.
    pub message: String,
}

/// A report keeps a task run's inputs and result only when they hold at most this many
/// items (numbers, strings counted by 64 bytes, list items...): the report is for people,
/// and a hit must not pay for turning a large value into JSON.
pub const MAX_KEPT_ITEMS: usize = 4096;

/// A report keeps at most this many log lines; later ones are dropped.
pub const MAX_KEPT_LOG_LINES: usize = 10_000;

/// `value` as JSON when it is small enough to keep in a report.
pub fn small_json(value: &Value, ty: &Ty) -> Option<serde_json::Value> {
    let mut budget = MAX_KEPT_ITEMS;
    fits(value, &mut budget).then(|| value.to_json(ty).ok()).flatten()
}

/// Whether `value` holds at most `budget` items, counting down; stops at the first excess.
fn fits(value: &Value, budget: &mut usize) -> bool {
    let mut take = |n: usize| match budget.checked_sub(n.max(1)) {
        Some(left) => {
            *budget = left;
            true
        }
        None => false,
    };
    match value {
        Value::String(text) => take(text.len() / 64),
        Value::Bytes(bytes) => take(bytes.len()),
        Value::Numbers(numbers) => take(numbers.byte_len() / 4),
        Value::Flags(set) => take(set.len()),
        Value::List(items) | Value::Record(items) | Value::Tuple(items) => {
            take(1) && items.iter().all(|item| fits(item, budget))
        }
        Value::Variant(_, Some(inner)) | Value::Option(Some(inner)) => take(1) && fits(inner, budget),
        Value::Result(Ok(Some(inner)) | Err(Some(inner))) => take(1) && fits(inner, budget),
        _ => take(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_are_kept_and_large_ones_are_not() {
        let text = Value::String("<script>alert(1)</script>".into());
        assert_eq!(small_json(&text, &Ty::String), Some(serde_json::json!("<script>alert(1)</script>")));
        let many = Value::List((0..MAX_KEPT_ITEMS as u32).map(Value::U32).collect());
        assert_eq!(small_json(&many, &Ty::List(Box::new(Ty::U32))), None);
        let bytes = Value::Bytes(vec![0; 16].into());
        assert_eq!(small_json(&bytes, &Ty::List(Box::new(Ty::U8))).map(|j| j.as_array().map(Vec::len)), Some(Some(16)));
    }
}
