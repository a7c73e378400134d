//! Transactions (Prefect's `with transaction():`): `pipeline` runs load-data and process-data in one transaction, so
//! nothing is cached until both succeed; `modes` shows LAZY, EAGER, OFF, nesting and values; `keyed` skips its work
//! once its key is committed. Hooks log each commit and rollback. Run: `cachehost run build/examples/transactions.wasm
//! --flow pipeline --param n=3 --param fail=true`, then with `fail=false`.

wit_bindgen::generate!({
    world: "example:transactions/transactions",
    path: ["../../../wit", "wit"],
    // Hook calls use the types interface; generate this component's own copy of it.
    with: { "cachehost:task/types@0.1.0": generate },
});

use cachehost_guest::{txn, CommitMode, HookCall, TaskOptions, TransactionOptions};
use example::transactions::tasks;

struct Component;

impl exports::example::transactions::tasks::Guest for Component {
    fn load_data(n: i64) -> Vec<i64> {
        txn::set("rows", &n.to_string());
        (1..=n).collect()
    }

    fn process_data(rows: Vec<i64>, fail: bool) -> Result<i64, String> {
        if fail {
            return Err(format!("processing {} rows failed as asked", rows.len()));
        }
        Ok(rows.iter().sum())
    }
}

impl exports::example::transactions::flow::Guest for Component {
    fn pipeline(n: i64, fail: bool) -> Result<i64, String> {
        cachehost_guest::transaction(TransactionOptions::default(), || {
            let rows = tasks::load_data(n);
            tasks::process_data(&rows, fail)
        })
    }

    fn modes(mode: String) -> Vec<String> {
        let state = || cachehost_guest::runtime::last_state().map(|s| s.name).unwrap_or_default();
        let mut states = Vec::new();
        let twice = |mode: CommitMode, states: &mut Vec<String>| {
            let _ = cachehost_guest::transaction::<_, String>(TransactionOptions::default().commit_mode(mode), || {
                tasks::load_data(2);
                states.push(state());
                tasks::load_data(2);
                states.push(state());
                Ok(())
            });
        };
        match mode.as_str() {
            "lazy-twice" => twice(CommitMode::Lazy, &mut states),
            "eager-twice" => twice(CommitMode::Eager, &mut states),
            "off" => twice(CommitMode::Off, &mut states),
            "nested" => {
                let _ = cachehost_guest::transaction::<_, String>(TransactionOptions::default(), || {
                    tasks::load_data(4);
                    cachehost_guest::transaction::<_, String>(TransactionOptions::default(), || {
                        tasks::load_data(5);
                        Ok(())
                    })?;
                    Ok(())
                });
            }
            "values" => {
                let _ = cachehost_guest::transaction::<_, String>(TransactionOptions::default(), || {
                    txn::set("who", "\"outer\"");
                    cachehost_guest::transaction::<_, String>(TransactionOptions::default(), || {
                        states.push(txn::get("who").unwrap_or_default());
                        txn::set("who", "\"inner\"");
                        states.push(txn::get("who").unwrap_or_default());
                        Ok(())
                    })?;
                    states.push(txn::get("who").unwrap_or_default());
                    states.push(txn::get("nobody").unwrap_or_else(|| "none".into()));
                    Ok(())
                });
            }
            "caught" => {
                // The failure is caught and the block goes on: the transaction is rolled
                // back all the same, and nothing in it is written (reference 11.11).
                let _ = cachehost_guest::transaction::<_, String>(TransactionOptions::default(), || {
                    tasks::load_data(6);
                    states.push(state());
                    let _ignored = tasks::process_data(&[6], true);
                    states.push(state());
                    tasks::load_data(7);
                    states.push(state());
                    Ok(())
                });
            }
            other => panic!("unknown mode {other:?}"),
        }
        states
    }

    fn batch(start: i64, count: i64) -> Vec<String> {
        let state = || cachehost_guest::runtime::last_state().map(|s| s.name).unwrap_or_default();
        let mut states = Vec::new();
        let _ = cachehost_guest::transaction::<_, String>(TransactionOptions::default(), || {
            for n in start..start + count {
                tasks::load_data(n);
                states.push(state());
            }
            Ok(())
        });
        states
    }

    fn keyed(key: String) -> bool {
        let mut was_committed = false;
        let _ = cachehost_guest::transaction::<_, String>(TransactionOptions::keyed(key), || {
            was_committed = txn::is_committed();
            if !was_committed {
                tasks::load_data(3);
            }
            Ok(())
        });
        was_committed
    }
}

fn describe(what: &str, call: &HookCall) {
    let values: Vec<String> = call.values.iter().map(|(n, v)| format!("{n}={v}")).collect();
    cachehost_guest::info(format!(
        "{what} task={} key={} values=[{}]",
        if call.task.is_empty() { "-" } else { &call.task },
        call.key.as_deref().unwrap_or("-"),
        values.join(",")
    ));
}

cachehost_guest::export_hooks!(Component, |call| describe("on-commit", call), |call| describe("on-rollback", call));

cachehost_guest::export_task_options!(
    Component,
    [TaskOptions::new("load-data").cache_policy("INPUTS"), TaskOptions::new("process-data").cache_policy("INPUTS"),]
);

export!(Component);
