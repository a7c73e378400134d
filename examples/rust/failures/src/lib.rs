//! Failure cases, one per flow `mode`: a task that panics, one that returns `err`, a KEY_FN key function that panics
//! (the task then runs uncached), a task that prints to stdout and stderr, a task that calls another task. Run:
//! `cachehost run build/examples/failures.wasm --param 'mode="err"' --param x=-1`.

wit_bindgen::generate!({
    world: "example:failures/failures",
    path: ["../../../wit", "wit"],
    // The key function's task-run-info is defined in cachehost:task/types: share the
    // SDK's bindings of it instead of generating a second copy.
    with: { "cachehost:task/types@0.1.0": cachehost_guest::bindings::cachehost::task::types },
});

use cachehost_guest::{TaskOptions, TaskRun};
use example::failures::tasks;

struct Component;

impl exports::example::failures::tasks::Guest for Component {
    fn panics(x: i64) -> i64 {
        panic!("panics was called with x={x}");
    }

    fn checked(x: i64) -> Result<i64, String> {
        if x < 0 {
            Err(format!("negative input: {x}"))
        } else {
            Ok(x + 1)
        }
    }

    fn bad_key(x: i64) -> i64 {
        x + 1
    }

    fn keyed(x: i64) -> i64 {
        x + 1
    }

    fn chatty(x: i64) -> i64 {
        println!("chatty to stdout: x={x}");
        eprintln!("chatty to stderr: x={x}");
        x + 1
    }

    fn outer(x: i64) -> i64 {
        let inner = tasks::inner(x);
        if x < 0 {
            panic!("outer failed after inner({x}) returned {inner}");
        }
        inner * 10
    }

    fn inner(x: i64) -> i64 {
        x + 1
    }

    fn plain(x: i64) -> i64 {
        x + 1
    }
}

impl exports::example::failures::flow::Guest for Component {
    fn failures(mode: String, x: i64) -> String {
        let outcome = match mode.as_str() {
            "panic" => Ok(tasks::panics(x)),
            "err" => tasks::checked(x),
            "bad-key" => Ok(tasks::bad_key(x)),
            "keyed" => Ok(tasks::keyed(x)),
            "print" => Ok(tasks::chatty(x)),
            "nested" => Ok(tasks::outer(x)),
            "plain" => Ok(tasks::plain(x) + tasks::plain(x)),
            other => panic!("unknown mode {other:?}: expected panic, err, bad-key, keyed, print, nested or plain"),
        };
        if let Some(state) = cachehost_guest::runtime::last_state() {
            let message = state.message.map(|message| format!(": {message}")).unwrap_or_default();
            cachehost_guest::info(format!("mode {mode}: state {}{message}", state.name));
        }
        match outcome {
            Ok(value) => format!("ok {value}"),
            Err(message) => format!("err {message}"),
        }
    }
}

/// Panics for `bad-key`, so the host must log an ERROR and run that task uncached.
fn key_fn(run: &TaskRun, inputs: &[(String, String)]) -> Option<String> {
    match run.task.as_str() {
        "bad-key" => panic!("the key function failed for {}", run.name),
        // A key that would leave the store: the host must refuse it and run uncached.
        "keyed" if cachehost_guest::input(inputs, "x")?.starts_with('-') => Some("../outside-the-store".into()),
        _ => Some(format!("keyed-x={}", cachehost_guest::input(inputs, "x")?)),
    }
}

cachehost_guest::export_task_options!(
    Component,
    [
        TaskOptions::new("panics").cache_policy("INPUTS"),
        TaskOptions::new("checked").cache_policy("INPUTS"),
        TaskOptions::new("bad-key").cache_policy("KEY_FN"),
        TaskOptions::new("keyed").cache_policy("KEY_FN"),
        TaskOptions::new("chatty").cache_policy("INPUTS"),
        TaskOptions::new("outer").cache_policy("INPUTS + TASK_SOURCE"),
        TaskOptions::new("inner").cache_policy("INPUTS + TASK_SOURCE"),
    ]
);
cachehost_guest::export_key_fn!(Component, key_fn);

export!(Component);
