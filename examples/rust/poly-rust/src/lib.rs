//! The example:poly tasks in Rust: a task-only component exporting `rust-tasks`, with the same options and key function as the Python, JavaScript and C versions (examples/polyglot/wit/poly.wit). Run: `cachehost call build/examples/poly-rust.wasm summarize --arg 'items=[{"name":"tea","quantity":2,"price-cents":350}]'`.

wit_bindgen::generate!({
    world: "example:poly/rust-tasks-world",
    path: "../../polyglot/wit",
    // The key function's task-run-info is defined in cachehost:task/types: share the
    // SDK's bindings of it instead of generating a second copy.
    with: { "cachehost:task/types@0.1.0": cachehost_guest::bindings::cachehost::task::types },
});

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

cachehost_guest::export_task_options!(Component, [
    TaskOptions::new("greet").cache_policy("INPUTS"),
    TaskOptions::new("summarize").cache_policy("INPUTS"),
    TaskOptions::new("parse-quantity").cache_policy("INPUTS"),
    TaskOptions::new("shout").cache_policy("KEY_FN"),
]);
cachehost_guest::export_key_fn!(Component, key_fn);

export!(Component);
