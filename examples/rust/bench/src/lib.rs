//! The workloads of `make bench`: `repeat` calls a trivial task many times (the same input: hits; distinct inputs:
//! misses with persisted records), `sized` passes a large `list<u8>` to a task. Run: `cachehost run
//! build/examples/bench.wasm --flow repeat --param n=1000 --param start=0 --param distinct=false`.

wit_bindgen::generate!({
    world: "example:bench/bench",
    path: ["../../../wit", "wit"],
});

use cachehost_guest::TaskOptions;
use example::bench::tasks;

struct Component;

impl exports::example::bench::tasks::Guest for Component {
    fn add_one(x: i64) -> i64 {
        x + 1
    }

    fn byte_count(data: Vec<u8>) -> u64 {
        data.len() as u64
    }
}

impl exports::example::bench::flow::Guest for Component {
    fn repeat(n: u32, start: i64, distinct: bool) -> i64 {
        (0..n).map(|i| tasks::add_one(if distinct { start + i64::from(i) } else { start })).sum()
    }

    fn sized(size: u64, seed: u8, n: u32) -> u64 {
        let data: Vec<u8> = (0..size).map(|i| seed.wrapping_add(i as u8)).collect();
        (0..n).map(|_| tasks::byte_count(&data)).sum()
    }
}

// A cache policy alone makes a task persist its result (Prefect's rule).
cachehost_guest::export_task_options!(
    Component,
    [TaskOptions::new("add-one").cache_policy("INPUTS"), TaskOptions::new("byte-count").cache_policy("INPUTS")]
);

export!(Component);
