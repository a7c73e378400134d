//! The {{name}} component's tasks and flow (wit/world.wit), on cachehost's Rust SDK
//! (cachehost-guest, beside this crate).

wit_bindgen::generate!({
    world: "{{name}}",
    path: "wit",
    // The runtime is cachehost-guest's: share its bindings instead of a second copy.
    with: {
        "cachehost:task/types@0.1.0": cachehost_guest::bindings::cachehost::task::types,
        "cachehost:task/runtime@0.1.0": cachehost_guest::bindings::cachehost::task::runtime,
    },
});

use std::time::Duration;

use cachehost_guest::{TaskOptions, TaskRun};

struct Component;

impl exports::local::{{snake}}::tasks::Guest for Component {
    fn greet(name: String, verbose: bool) -> String {
        cachehost_guest::info(format!("greeting {name}"));
        if verbose {
            cachehost_guest::info("verbosely");
        }
        format!("Hello, {name}!")
    }

    fn word_count(text: String) -> u32 {
        text.split_whitespace().count() as u32
    }
}

impl exports::local::{{snake}}::flow::Guest for Component {
    // Calls through the import run through cachehost: the second greet is a cache hit.
    fn main(name: String) -> Vec<String> {
        let quiet = local::{{snake}}::tasks::greet(&name, false);
        let verbose = local::{{snake}}::tasks::greet(&name, true);
        let words = local::{{snake}}::tasks::word_count(&quiet);
        vec![quiet, verbose, words.to_string()]
    }
}

cachehost_guest::export_task_options!(
    Component,
    [
        TaskOptions::new("greet")
            .cache_policy("INPUTS - 'verbose' + TASK_SOURCE")
            .cache_expiration(Duration::from_secs(86_400))
            .retries(2)
            .retry_delay(Duration::from_secs(1))
            .timeout(Duration::from_secs(30)),
        TaskOptions::new("word-count")
            .cache_policy("KEY_FN")
            .persist_result(true)
            .isolation_level("SERIALIZABLE")
            .lock_manager("memory"),
    ]
);

// Prefect's cache_key_fn: `words-` + the text in lower case.
fn key_fn(run: &TaskRun, inputs: &[(String, String)]) -> Option<String> {
    if run.task != "word-count" {
        return None;
    }
    let text: String = serde_json::from_str(cachehost_guest::input(inputs, "text")?).ok()?;
    Some(format!("words-{}", text.to_lowercase()))
}
cachehost_guest::export_key_fn!(Component, key_fn);

export!(Component);
