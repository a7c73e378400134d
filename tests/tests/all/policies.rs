//! Each Prefect caching situation, run end to end on a real example component: the state
//! sequence, values and cache keys come from the `--json` report (reference §2–5, 8–10).

use cachehost_tests::{example, TestContext};
use serde_json::json;

fn run(ctx: &TestContext, name: &str, extra: &[&str]) -> cachehost_tests::Report {
    let path = example(name);
    let mut args = vec!["run", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    ctx.report(&args, 0)
}

#[test]
fn persist_default_is_completed_cached_completed_and_a_new_run_misses() {
    let ctx = TestContext::new();
    let first = run(&ctx, "persist-default", &[]);
    assert_eq!(first.states(), ["Completed", "Cached", "Completed"]);
    assert_eq!(first.result(), &json!([2, 2, 3]));
    let keys = first.keys();
    assert_eq!(keys[0], keys[1], "add-one(1) twice shares one key");
    assert_ne!(keys[0], keys[2]);
    // RUN_ID is part of DEFAULT: a second flow run misses again.
    let second = run(&ctx, "persist-default", &[]);
    assert_eq!(second.states(), ["Completed", "Cached", "Completed"]);
    assert_ne!(second.keys()[0], keys[0]);
    // DEFAULT is INPUTS + TASK_SOURCE + RUN_ID.
    let parts: Vec<&str> = first.task_runs()[0]["cache_key_parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["part"].as_str().unwrap())
        .collect();
    assert_eq!(parts.len(), 3, "{parts:?}");
    for part in ["INPUTS", "TASK_SOURCE", "RUN_ID"] {
        assert!(parts.contains(&part), "{parts:?}");
    }
    // The flow logs the state it got back through runtime.last-state.
    assert!(first.stderr.contains("add-one(1) = 2, state Cached"), "{}", first.stderr);
}

#[test]
fn a_cache_hit_creates_no_instance() {
    let ctx = TestContext::new();
    let report = run(&ctx, "inputs", &[]);
    assert_eq!(report.states(), ["Completed", "Cached", "Completed"]);
    assert_eq!(report.instantiations("tasks"), 2, "one instance per miss, none for the hit");
    let again = run(&ctx, "inputs", &[]);
    assert_eq!(again.states(), ["Cached", "Cached", "Cached"]);
    assert_eq!(again.instantiations("tasks"), 0);
    assert_eq!(again.instantiations("flows"), 1);
}

#[test]
fn inputs_keys_do_not_depend_on_the_run() {
    let ctx = TestContext::new();
    let first = run(&ctx, "inputs", &[]);
    let second = run(&ctx, "inputs", &[]);
    assert_eq!(first.keys(), second.keys());
    assert_eq!(second.result(), &json!([2, 2, 3]));
}

#[test]
fn inputs_minus_debug_ignores_the_debug_argument() {
    let ctx = TestContext::new();
    let report = run(&ctx, "inputs-exclude", &[]);
    let states = report.states();
    let keys = report.keys();
    // The example calls add-one(1, false), add-one(1, true), add-one(2, false).
    assert_eq!(states, ["Completed", "Cached", "Completed"], "{}", report.stderr);
    assert_eq!(keys[0], keys[1]);
    assert_ne!(keys[0], keys[2]);
}

#[test]
fn an_expired_record_is_a_miss_and_hits_do_not_extend_it() {
    let ctx = TestContext::new();
    let first = run(&ctx, "expiration", &["--param", "x=1"]);
    assert_eq!(first.states(), ["Completed"]);
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let hit = run(&ctx, "expiration", &["--param", "x=1"]);
    assert_eq!(hit.states(), ["Cached"]);
    // 2 s after the write (not after the hit) the record has expired.
    std::thread::sleep(std::time::Duration::from_millis(1300));
    let expired = run(&ctx, "expiration", &["--param", "x=1"]);
    assert_eq!(expired.states(), ["Completed"]);
    let again = run(&ctx, "expiration", &["--param", "x=1"]);
    assert_eq!(again.states(), ["Cached"], "the miss rewrote the record");
}

#[test]
fn inputs_plus_run_id_caches_within_a_run_until_it_expires() {
    let ctx = TestContext::new();
    let quick = run(&ctx, "inputs-run-id-expiring", &["--param", "x=1", "--param", "wait-ms=0"]);
    assert_eq!(quick.states(), ["Completed", "Cached"]);
    let slow = run(&ctx, "inputs-run-id-expiring", &["--param", "x=1", "--param", "wait-ms=2500"]);
    assert_eq!(slow.states(), ["Completed", "Completed"]);
    assert_ne!(quick.keys()[0], slow.keys()[0], "a new run has a new RUN_ID");
}

#[test]
fn a_static_key_function_uses_its_key_as_the_record_name() {
    let ctx = TestContext::new();
    let first = run(&ctx, "key-fn-static", &[]);
    assert_eq!(first.keys()[0].as_deref(), Some("constant-key"));
    assert!(ctx.storage().join("constant-key").is_file(), "the record file is named by the key, unhashed");
    let second = run(&ctx, "key-fn-static", &[]);
    assert!(second.states().iter().all(|s| s == "Cached"), "{:?}", second.states());
    assert!(second.instantiations("key_functions") > 0);
}

#[test]
fn a_run_scoped_key_function_caches_within_one_flow_run_only() {
    let ctx = TestContext::new();
    let first = run(&ctx, "key-fn-run-scoped", &[]);
    assert_eq!(first.states(), ["Completed", "Cached", "Completed"]);
    let second = run(&ctx, "key-fn-run-scoped", &[]);
    assert_eq!(second.states(), ["Completed", "Cached", "Completed"]);
    assert_ne!(first.keys()[0], second.keys()[0]);
}

#[test]
fn task_source_changes_when_the_component_is_rebuilt_with_other_code() {
    let ctx = TestContext::new();
    let original = run(&ctx, "task-source", &["--param", "x=1"]);
    assert_eq!(original.states(), ["Completed"]);
    let changed = run(&ctx, "task-source-changed", &["--param", "x=1"]);
    assert_eq!(changed.states(), ["Completed"], "changed code misses");
    assert_ne!(original.keys(), changed.keys());
    assert_ne!(original.result(), changed.result());
    // The same bytes under another path (an unchanged rebuild is byte-identical) hit.
    let copy = ctx.dir.path().join("copy/task-source.wasm");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(example("task-source"), &copy).unwrap();
    let rebuilt = ctx.report(&["run", copy.to_str().unwrap(), "--param", "x=1"], 0);
    assert_eq!(rebuilt.states(), ["Cached"]);
    assert_eq!(rebuilt.result(), original.result());
}

#[test]
fn refresh_cache_true_always_runs_and_overwrites() {
    let ctx = TestContext::new();
    let first = run(&ctx, "refresh", &[]);
    let second = run(&ctx, "refresh", &[]);
    let by_task = |r: &cachehost_tests::Report, task: &str| -> Vec<String> {
        r.task_runs()
            .iter()
            .filter(|t| t["task"].as_str().unwrap().ends_with(&format!("#{task}")))
            .map(|t| t["state"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(by_task(&second, "stamp").iter().all(|s| s == "Cached"), "{:?}", second.states());
    assert!(by_task(&first, "refreshed-stamp")
        .iter()
        .chain(&by_task(&second, "refreshed-stamp"))
        .all(|s| s == "Completed"));
}
