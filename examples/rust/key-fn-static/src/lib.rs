//! KEY_FN with a constant key: every call shares the record `constant-key`, so add-one(2) is Cached and returns
//! add-one(1)'s result, 2 (also in later runs). Run: `cachehost run build/examples/key-fn-static.wasm`.

wit_bindgen::generate!({
    world: "example:key-fn-static/key-fn-static",
    path: ["../../../wit", "wit"],
    // The key function's task-run-info is defined in cachehost:task/types: share the
    // SDK's bindings of it instead of generating a second copy.
    with: { "cachehost:task/types@0.1.0": cachehost_guest::bindings::cachehost::task::types },
});

use cachehost_guest::{TaskOptions, TaskRun};
use example::key_fn_static::tasks;

struct Component;

impl exports::example::key_fn_static::tasks::Guest for Component {
    fn add_one(x: i64) -> i64 {
        x + 1
    }
}

impl exports::example::key_fn_static::flow::Guest for Component {
    fn key_fn_static() -> Vec<i64> {
        vec![tasks::add_one(1), tasks::add_one(2)]
    }
}

/// The key is used as returned, unhashed: the record is stored as `constant-key`.
fn static_key(_run: &TaskRun, _inputs: &[(String, String)]) -> Option<String> {
    Some("constant-key".to_string())
}

cachehost_guest::export_task_options!(Component, [TaskOptions::new("add-one").cache_policy("KEY_FN")]);
cachehost_guest::export_key_fn!(Component, static_key);

export!(Component);
