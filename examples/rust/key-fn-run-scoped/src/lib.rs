//! KEY_FN scoped to the flow run (Prefect's `cache_within_flow_run`): add-one(1), add-one(1), add-one(2) finish
//! Completed, Cached, Completed, and every new flow run misses again. Run: `cachehost run
//! build/examples/key-fn-run-scoped.wasm`.

wit_bindgen::generate!({
    world: "example:key-fn-run-scoped/key-fn-run-scoped",
    path: ["../../../wit", "wit"],
    // The key function's task-run-info is defined in cachehost:task/types: share the
    // SDK's bindings of it instead of generating a second copy.
    with: { "cachehost:task/types@0.1.0": cachehost_guest::bindings::cachehost::task::types },
});

use cachehost_guest::{TaskOptions, TaskRun};
use example::key_fn_run_scoped::tasks;

struct Component;

impl exports::example::key_fn_run_scoped::tasks::Guest for Component {
    fn add_one(x: i64) -> i64 {
        x + 1
    }
}

impl exports::example::key_fn_run_scoped::flow::Guest for Component {
    fn key_fn_run_scoped() -> Vec<i64> {
        vec![tasks::add_one(1), tasks::add_one(1), tasks::add_one(2)]
    }
}

/// `<flow run id>-<task>-x=1`; outside a flow run (`cachehost call`) there is no
/// flow run id, so the call runs uncached.
fn within_flow_run(run: &TaskRun, inputs: &[(String, String)]) -> Option<String> {
    let flow_run_id = run.flow_run_id.as_deref()?;
    let inputs: Vec<String> = inputs.iter().map(|(name, json)| format!("{name}={json}")).collect();
    Some(format!("{flow_run_id}-{}-{}", run.task, inputs.join(",")))
}

cachehost_guest::export_task_options!(Component, [TaskOptions::new("add-one").cache_policy("KEY_FN")]);
cachehost_guest::export_key_fn!(Component, within_flow_run);

export!(Component);
