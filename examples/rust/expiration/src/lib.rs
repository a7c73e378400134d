//! INPUTS with cache_expiration 2 s: a run within 2 s of the first is Cached, a run after that is Completed again (hits
//! never extend a record). Run: `cachehost run build/examples/expiration.wasm --param x=1`, again, then again after 2
//! s.

wit_bindgen::generate!({
    world: "example:expiration/expiration",
    path: ["../../../wit", "wit"],
});

use std::time::Duration;

use cachehost_guest::TaskOptions;
use example::expiration::tasks;

struct Component;

impl exports::example::expiration::tasks::Guest for Component {
    fn add_one(x: i64) -> i64 {
        x + 1
    }
}

impl exports::example::expiration::flow::Guest for Component {
    fn expiration(x: i64) -> i64 {
        tasks::add_one(x)
    }
}

cachehost_guest::export_task_options!(
    Component,
    [TaskOptions::new("add-one").cache_policy("INPUTS").cache_expiration(Duration::from_secs(2))]
);

export!(Component);
