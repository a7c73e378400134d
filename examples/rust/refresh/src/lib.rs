//! refresh_cache=true: `stamp` is Completed then Cached (the same stamp, also in later runs), `refreshed-stamp` is
//! Completed every time and overwrites its record with a new stamp. Run: `cachehost run build/examples/refresh.wasm`.

wit_bindgen::generate!({
    world: "example:refresh/refresh",
    path: ["../../../wit", "wit"],
});

use std::time::{SystemTime, UNIX_EPOCH};

use cachehost_guest::TaskOptions;
use example::refresh::tasks;

struct Component;

fn now_ns() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
}

impl exports::example::refresh::tasks::Guest for Component {
    fn stamp(_x: i64) -> u64 {
        now_ns()
    }

    fn refreshed_stamp(_x: i64) -> u64 {
        now_ns()
    }
}

impl exports::example::refresh::flow::Guest for Component {
    fn refresh() -> Vec<u64> {
        vec![tasks::stamp(1), tasks::stamp(1), tasks::refreshed_stamp(1), tasks::refreshed_stamp(1)]
    }
}

// INPUTS alone gives both tasks one key for equal inputs (the key does not name the
// task); TASK_SOURCE, which does, keeps their records apart.
cachehost_guest::export_task_options!(
    Component,
    [
        TaskOptions::new("stamp").cache_policy("INPUTS + TASK_SOURCE"),
        TaskOptions::new("refreshed-stamp").cache_policy("INPUTS + TASK_SOURCE").refresh_cache(true),
    ]
);

export!(Component);
