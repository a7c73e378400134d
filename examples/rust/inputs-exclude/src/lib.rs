//! `INPUTS - 'debug'`: add-one(1, false) and add-one(1, true) share one record (Completed, then Cached), add-one(2,
//! true) misses. Run: `cachehost run build/examples/inputs-exclude.wasm`.

wit_bindgen::generate!({
    world: "example:inputs-exclude/inputs-exclude",
    path: ["../../../wit", "wit"],
});

use cachehost_guest::TaskOptions;
use example::inputs_exclude::tasks;

struct Component;

impl exports::example::inputs_exclude::tasks::Guest for Component {
    fn add_one(x: i64, debug: bool) -> i64 {
        if debug {
            println!("add-one called with x={x}");
        }
        x + 1
    }
}

impl exports::example::inputs_exclude::flow::Guest for Component {
    fn inputs_exclude() -> Vec<i64> {
        vec![tasks::add_one(1, false), tasks::add_one(1, true), tasks::add_one(2, true)]
    }
}

cachehost_guest::export_task_options!(Component, [TaskOptions::new("add-one").cache_policy("INPUTS - 'debug'")]);

export!(Component);
