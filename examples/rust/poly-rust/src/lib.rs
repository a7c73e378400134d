//! The example:poly tasks in Rust: a task-only component exporting `rust-tasks`, with the same options and key function
//! as the Python, JavaScript and C versions (examples/polyglot/wit/poly.wit). Run: `cachehost call
//! build/examples/poly-rust.wasm summarize --arg 'items=[{"name":"tea","quantity":2,"price-cents":350}]'`.

wit_bindgen::generate!({
    world: "example:poly/rust-tasks-world",
    path: "../../polyglot/wit",
    // The key function's task-run-info is defined in cachehost:task/types: share the
    // SDK's bindings of it instead of generating a second copy.
    with: { "cachehost:task/types@0.1.0": cachehost_guest::bindings::cachehost::task::types },
});

use cachehost_guest::bindings::cachehost::task::{runtime, types::TransactionOptions};
use std::time::Duration;

use cachehost_guest::{TaskOptions, TaskRun};
use exports::example::poly::rust_tasks::{Guest, Item, Summary};

struct Component;

impl Guest for Component {
    fn greet(name: String, punctuation: Option<String>) -> String {
        let run = cachehost_guest::runtime::current_task_run();
        let run_name = run.as_ref().map_or("no task run", |run| run.name.as_str());
        cachehost_guest::info(format!("greeting {name} in Rust ({run_name})"));
        format!("Hello, {name}{}", punctuation.as_deref().unwrap_or("!"))
    }

    fn word_lengths(words: Vec<String>) -> Vec<u32> {
        words.iter().map(|word| word.chars().count() as u32).collect()
    }

    fn summarize(items: Vec<Item>) -> Summary {
        let mut most_expensive: Option<&Item> = None;
        for item in &items {
            if most_expensive.is_none_or(|top| item.price_cents > top.price_cents) {
                most_expensive = Some(item);
            }
        }
        Summary {
            count: items.len() as u32,
            total_cents: items
                .iter()
                .fold(0u64, |total, item| total.wrapping_add(u64::from(item.quantity).wrapping_mul(item.price_cents))),
            names: items.iter().map(|item| item.name.clone()).collect(),
            most_expensive: most_expensive.map(|item| item.name.clone()),
        }
    }

    fn parse_quantity(text: String) -> Result<u32, String> {
        // Not str::parse: it also accepts a leading `+`.
        let digits = (1..=10).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
        match digits.then(|| text.parse::<u32>().ok()).flatten() {
            Some(value) => Ok(value),
            None => Err(format!("not a quantity: {text}")),
        }
    }

    fn shout(word: String) -> String {
        word.to_ascii_uppercase()
    }

    fn ledger(entry: String) -> String {
        // The run context: this task run, in the flow run the runtime reports (if any).
        let run = cachehost_guest::runtime::current_task_run().expect("ledger runs in a task run");
        assert_eq!(run.task, "ledger", "the task run is ledger's");
        assert_eq!(run.flow_run_id, cachehost_guest::runtime::flow_run_id(), "the task run is in the current flow run");

        // A transaction inside the task run's own. The SDK's `transaction` does not say
        // whether the transaction committed, so the raw bindings open and end it.
        let defaults = TransactionOptions {
            key: None,
            commit_mode: None,
            write_on_commit: None,
            overwrite: None,
            isolation_level: None,
            lock_manager: None,
        };
        runtime::begin_transaction(&defaults).expect("a transaction with default options opens");
        cachehost_guest::txn::set("entry", &serde_json::to_string(&entry).expect("a string is JSON"));
        let stored = cachehost_guest::txn::get("entry").and_then(|json| serde_json::from_str::<String>(&json).ok());
        assert_eq!(stored.as_deref(), Some(entry.as_str()), "get returns the value set");
        let committed = runtime::end_transaction(false);
        format!("{entry} recorded in a ledger transaction, committed={committed}")
    }

    fn reverse_bytes(mut data: Vec<u8>) -> Vec<u8> {
        data.reverse();
        data
    }

    fn reverse_floats(mut xs: Vec<f64>) -> Vec<f64> {
        xs.reverse();
        xs
    }
}

/// `shout` is cached by the word with ASCII letters lower-cased: `shout("ADA")` hits
/// `shout("ada")`, whose result is the same.
fn key_fn(run: &TaskRun, inputs: &[(String, String)]) -> Option<String> {
    if run.task != "shout" {
        return None;
    }
    let word: String = serde_json::from_str(cachehost_guest::input(inputs, "word")?).ok()?;
    Some(format!("shout-{}", word.to_ascii_lowercase()))
}

cachehost_guest::export_task_options!(
    Component,
    [
        TaskOptions::new("greet").cache_policy("INPUTS").cache_expiration(Duration::from_secs(86_400)),
        TaskOptions::new("word-lengths").retries(2).retry_delay(Duration::from_millis(500)),
        TaskOptions::new("summarize").cache_policy("INPUTS").persist_result(true),
        TaskOptions::new("parse-quantity").cache_policy("INPUTS").timeout(Duration::from_secs(60)).replayable(true),
        TaskOptions::new("shout").cache_policy("KEY_FN").refresh_cache(false),
        TaskOptions::new("ledger").cache_policy("INPUTS").isolation_level("READ_COMMITTED").lock_manager("memory"),
        TaskOptions::new("reverse-bytes").cache_policy("INPUTS"),
        TaskOptions::new("reverse-floats").cache_policy("INPUTS"),
    ]
);
cachehost_guest::export_key_fn!(Component, key_fn);

export!(Component);
