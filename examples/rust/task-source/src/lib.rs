//! TASK_SOURCE: the key is the component's digest (plus the task name), not the inputs, so `--param x=5` after `--param
//! x=1` is Cached with add-one(1)'s result; `task-source-changed.wasm` (feature `changed`, another body) misses. Run:
//! `cachehost run build/examples/task-source.wasm --param x=1`.

wit_bindgen::generate!({
    world: "example:task-source/task-source",
    path: ["../../../wit", "wit"],
});

use cachehost_guest::TaskOptions;
use example::task_source::tasks;

struct Component;

impl exports::example::task_source::tasks::Guest for Component {
    #[cfg(not(feature = "changed"))]
    fn add_one(x: i64) -> i64 {
        x + 1
    }

    #[cfg(feature = "changed")]
    fn add_one(x: i64) -> i64 {
        x + 100
    }
}

impl exports::example::task_source::flow::Guest for Component {
    fn task_source(x: i64) -> i64 {
        tasks::add_one(x)
    }
}

cachehost_guest::export_task_options!(Component, [TaskOptions::new("add-one").cache_policy("TASK_SOURCE")]);

export!(Component);
