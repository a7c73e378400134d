//! Concurrent task runs (Prefect's `.submit()`): `versions` runs two task versions with the same INPUTS key at once —
//! both run under READ_COMMITTED; under SERIALIZABLE exactly one runs and the other is Cached. `race` submits N
//! identical calls; `fan-out` submits N distinct ones, `chain` makes N plain calls in a row (workers: README).
//! Run: `cachehost run build/examples/concurrency.wasm --flow versions --param x=1 --param ms=300`
//! (SERIALIZABLE: see examples/README.md).

wit_bindgen::generate!({
    world: "example:concurrency/concurrency",
    path: ["../../../wit", "wit"],
});

use cachehost_guest::TaskOptions;
use std::time::Duration;

struct Component;

impl exports::example::concurrency::tasks::Guest for Component {
    fn version_one(x: i64, ms: u64) -> String {
        std::thread::sleep(Duration::from_millis(ms));
        format!("version one saw {x}")
    }

    fn version_two(x: i64, ms: u64) -> String {
        std::thread::sleep(Duration::from_millis(ms));
        format!("version two saw {x}")
    }

    fn slow_add(x: i64, ms: u64) -> i64 {
        std::thread::sleep(Duration::from_millis(ms));
        x + 1
    }

    fn work(x: i64, ms: u64) -> i64 {
        println!("work body x={x}");
        std::thread::sleep(Duration::from_millis(ms));
        x * 2
    }
}

fn wait_all(calls: Vec<cachehost_guest::Submitted>) -> Vec<String> {
    calls.iter().map(|call| call.wait().unwrap_or_else(|e| panic!("a submitted call failed: {e}"))).collect()
}

impl exports::example::concurrency::flow::Guest for Component {
    fn versions(x: i64, ms: u64) -> Vec<String> {
        let (x, ms) = (x.to_string(), ms.to_string());
        let args = [("x", x.as_str()), ("ms", ms.as_str())];
        let calls = ["version-one", "version-two"].map(|task| cachehost_guest::submit(task, &args).expect("submit"));
        wait_all(calls.into()).into_iter().map(|json| json.trim_matches('"').to_owned()).collect()
    }

    fn race(n: u32, x: i64, ms: u64) -> Vec<i64> {
        let (x, ms) = (x.to_string(), ms.to_string());
        let calls =
            (0..n).map(|_| cachehost_guest::submit("slow-add", &[("x", &x), ("ms", &ms)]).expect("submit")).collect();
        wait_all(calls).iter().map(|json| json.parse().expect("slow-add returns a number")).collect()
    }

    fn fan_out(n: u32, ms: u64) -> i64 {
        let ms = ms.to_string();
        let calls = (0..n)
            .map(|x| cachehost_guest::submit("work", &[("x", &x.to_string()), ("ms", &ms)]).expect("submit"))
            .collect();
        wait_all(calls).iter().map(|json| json.parse::<i64>().expect("work returns a number")).sum()
    }

    fn repeat(n: u32, x: i64, ms: u64) -> i64 {
        let (x, ms) = (x.to_string(), ms.to_string());
        let calls =
            (0..n).map(|_| cachehost_guest::submit("work", &[("x", &x), ("ms", &ms)]).expect("submit")).collect();
        wait_all(calls).iter().map(|json| json.parse::<i64>().expect("work returns a number")).sum()
    }

    fn chain(n: u32, ms: u64) -> i64 {
        (0..n).map(|x| example::concurrency::tasks::work(i64::from(x), ms)).sum()
    }
}

// INPUTS only: the key does not name the task, so the two versions share records.
cachehost_guest::export_task_options!(
    Component,
    [
        TaskOptions::new("version-one").cache_policy("INPUTS - 'ms'"),
        TaskOptions::new("version-two").cache_policy("INPUTS - 'ms'"),
        TaskOptions::new("slow-add").cache_policy("INPUTS - 'ms'"),
        TaskOptions::new("work").cache_policy("INPUTS - 'ms'"),
    ]
);

export!(Component);
