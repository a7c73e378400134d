//! The `--json` run report: the flow run and every task run.

use serde::Serialize;

use super::state::State;

/// A state as the report shows it.
#[derive(Clone, Debug, Serialize)]
pub struct StateReport {
    /// `Completed`, `Cached`, `Failed`, `TimedOut` or `Crashed`.
    pub name: String,
    /// `COMPLETED`, `FAILED` or `CRASHED`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Why, for failures.
    pub message: Option<String>,
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
#[derive(Clone, Debug, Serialize)]
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
}

/// One part of a cache key.
#[derive(Clone, Debug, Serialize)]
pub struct KeyPartReport {
    /// The policy part: `INPUTS`, `TASK_SOURCE`, `FLOW_PARAMETERS`, `RUN_ID`, `KEY_FN`.
    pub part: String,
    /// That part's key.
    pub key: String,
}

/// The flow run.
#[derive(Clone, Debug, Serialize)]
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
}

/// How many instances were created, by purpose. A cache hit creates none.
#[derive(Clone, Debug, Default, Serialize)]
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
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// The flow run; none for a standalone task run.
    pub flow_run: Option<FlowRunReport>,
    /// Every task run, in the order they finished.
    pub task_runs: Vec<TaskRunReport>,
    /// Instances created.
    pub instantiations: Instantiations,
    /// HTTP requests sent to S3-compatible object storage, retries included (0 without it).
    pub object_store_requests: u64,
}
