//! `INPUTS + RUN_ID` with cache_expiration 2 s: within one flow run the second add-one(x) is Cached unless `wait-ms`
//! outlasts the expiration; a new run always misses. Run: `cachehost run build/examples/inputs-run-id-expiring.wasm
//! --param x=1 --param wait-ms=0` (or `wait-ms=2500`).

wit_bindgen::generate!({
    world: "example:inputs-run-id-expiring/inputs-run-id-expiring",
    path: ["../../../wit", "wit"],
});

use std::time::Duration;

use cachehost_guest::TaskOptions;
use example::inputs_run_id_expiring::tasks;

struct Component;

impl exports::example::inputs_run_id_expiring::tasks::Guest for Component {
    fn add_one(x: i64) -> i64 {
        x + 1
    }
}

impl exports::example::inputs_run_id_expiring::flow::Guest for Component {
    fn inputs_run_id_expiring(x: i64, wait_ms: u64) -> Vec<i64> {
        let first = tasks::add_one(x);
        std::thread::sleep(Duration::from_millis(wait_ms));
        vec![first, tasks::add_one(x)]
    }
}

cachehost_guest::export_task_options!(
    Component,
    [TaskOptions::new("add-one").cache_policy("INPUTS + RUN_ID").cache_expiration(Duration::from_secs(2))]
);

export!(Component);
