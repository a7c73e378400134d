//! The INPUTS policy: add-one(1), add-one(1), add-one(2) finish Completed, Cached, Completed, and a second flow run is
//! Cached three times (the key does not depend on the run). Run: `cachehost run build/examples/inputs.wasm`.

wit_bindgen::generate!({
    world: "example:inputs/inputs",
    path: ["../../../wit", "wit"],
});

use cachehost_guest::TaskOptions;
use example::inputs::tasks;

struct Component;

impl exports::example::inputs::tasks::Guest for Component {
    fn add_one(x: i64) -> i64 {
        x + 1
    }
}

impl exports::example::inputs::flow::Guest for Component {
    fn inputs() -> Vec<i64> {
        vec![tasks::add_one(1), tasks::add_one(1), tasks::add_one(2)]
    }
}

// A cache policy alone makes the task persist its result (Prefect's rule).
cachehost_guest::export_task_options!(Component, [TaskOptions::new("add-one").cache_policy("INPUTS")]);

export!(Component);
