//! persist_result=true under the DEFAULT policy: add-one(1), add-one(1), add-one(2) in one flow run finish Completed,
//! Cached, Completed; a second run misses again because RUN_ID differs. Run: `cachehost run
//! build/examples/persist-default.wasm`.

wit_bindgen::generate!({
    world: "example:persist-default/persist-default",
    path: ["../../../wit", "wit"],
});

use cachehost_guest::TaskOptions;
use example::persist_default::tasks;

struct Component;

impl exports::example::persist_default::tasks::Guest for Component {
    fn add_one(x: i64) -> i64 {
        x + 1
    }
}

impl exports::example::persist_default::flow::Guest for Component {
    fn persist_default() -> Vec<i64> {
        [1, 1, 2]
            .into_iter()
            .map(|x| {
                let result = tasks::add_one(x);
                let state = cachehost_guest::runtime::last_state().map(|state| state.name);
                cachehost_guest::info(format!(
                    "add-one({x}) = {result}, state {}",
                    state.as_deref().unwrap_or("unknown")
                ));
                result
            })
            .collect()
    }
}

cachehost_guest::export_task_options!(Component, [TaskOptions::new("add-one").persist_result(true)]);

export!(Component);
