//! Failing tasks, failing key functions, guest output and nested tasks (reference §13, §14;
//! DESIGN §3, §7).

use cachehost_tests::{example, Report, TestContext};

fn failures(ctx: &TestContext, mode: &str, x: i64, status: i32) -> Report {
    let path = example("failures");
    let mode = format!("mode={mode}");
    let x = format!("x={x}");
    ctx.report(&["run", path.to_str().unwrap(), "--param", &mode, "--param", &x], status)
}

#[test]
fn a_trapping_task_is_failed_never_cached_and_fails_the_flow() {
    let ctx = TestContext::new();
    let report = failures(&ctx, "panic", 1, 1);
    assert_eq!(report.states(), ["Failed"]);
    let message = report.task_runs()[0]["state"]["message"].as_str().unwrap();
    assert!(message.starts_with("Task run encountered a trap"), "{message}");
    assert_eq!(report.flow_state(), "Failed");
    // Regression: the flow's state said only "error while executing at wasm backtrace:",
    // its cause on the lines after it, which a state's message leaves out.
    let flow_message = report.json["flow_run"]["state"]["message"].as_str().unwrap();
    assert!(!flow_message.contains("backtrace"), "{flow_message}");
    assert!(flow_message.contains("task panics failed: wasm trap: wasm `unreachable`"), "{flow_message}");
    assert!(report.result().is_null());
    // The guest's panic message reaches the log through its stderr.
    assert!(report.stderr.contains("panics was called with x=1"), "{}", report.stderr);
    assert!(report.stderr.contains("Finished in state Failed("), "{}", report.stderr);
    // Never cached: the same call fails again, running the body again.
    let again = failures(&ctx, "panic", 1, 1);
    assert_eq!(again.states(), ["Failed"]);
    assert_eq!(again.instantiations("tasks"), 1);
    assert_eq!(std::fs::read_dir(ctx.storage()).map(|d| d.count()).unwrap_or(0), 0, "nothing was written");
}

#[test]
fn a_task_returning_err_is_failed_and_not_cached_but_the_flow_gets_the_err() {
    let ctx = TestContext::new();
    let report = failures(&ctx, "err", -1, 0);
    assert_eq!(report.states(), ["Failed"]);
    assert_eq!(report.result(), "err negative input: -1");
    assert!(report.task_runs()[0]["state"]["message"].as_str().unwrap().contains("negative input: -1"));
    assert_eq!(report.task_runs()[0]["persisted"], false);
    let again = failures(&ctx, "err", -1, 0);
    assert_eq!(again.states(), ["Failed"], "a failed run is never Cached");
    // The ok case of the same task is cached as usual.
    assert_eq!(failures(&ctx, "err", 1, 0).states(), ["Completed"]);
    assert_eq!(failures(&ctx, "err", 1, 0).states(), ["Cached"]);
}

#[test]
fn a_failing_key_function_runs_the_task_uncached_with_an_error_line() {
    let ctx = TestContext::new();
    let report = failures(&ctx, "bad-key", 1, 0);
    assert_eq!(report.states(), ["Completed"]);
    assert_eq!(report.keys(), [None]);
    assert!(report.stderr.contains("ERROR   | Task run 'bad-key-"), "{}", report.stderr);
    assert!(
        report.stderr.contains("Error encountered when computing cache key - result will not be persisted."),
        "{}",
        report.stderr
    );
    assert_eq!(failures(&ctx, "bad-key", 1, 0).states(), ["Completed"], "nothing was cached");
}

#[test]
fn a_key_function_key_is_used_as_returned() {
    let ctx = TestContext::new();
    let report = failures(&ctx, "keyed", 4, 0);
    assert_eq!(report.keys(), [Some("keyed-x=4".to_owned())]);
    assert_eq!(failures(&ctx, "keyed", 4, 0).states(), ["Cached"]);
}

#[test]
fn a_refused_key_runs_the_task_uncached_and_writes_nothing_outside_the_store() {
    let ctx = TestContext::new();
    let report = failures(&ctx, "keyed", -3, 0);
    assert_eq!(report.states(), ["Completed"]);
    assert_eq!(report.keys(), [None]);
    assert!(report.stderr.contains("refused"), "{}", report.stderr);
    assert!(!ctx.dir.path().join("outside-the-store").exists());
    assert_eq!(failures(&ctx, "keyed", -3, 0).states(), ["Completed"]);
}

#[test]
fn guest_stdout_and_stderr_become_log_lines_of_the_task_run() {
    let ctx = TestContext::new();
    let report = failures(&ctx, "print", 2, 0);
    let line = |needle: &str| {
        report
            .stderr
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in\n{}", report.stderr))
            .to_owned()
    };
    let out = line("chatty to stdout: x=2");
    assert!(out.contains("| INFO    | Task run 'chatty-"), "{out}");
    let err = line("chatty to stderr: x=2");
    assert!(err.contains("| WARNING | Task run 'chatty-"), "{err}");
}

#[test]
fn nested_task_calls_go_through_the_host() {
    let ctx = TestContext::new();
    let report = failures(&ctx, "nested", 2, 0);
    assert_eq!(report.result(), "ok 30");
    let runs = report.task_runs();
    assert_eq!(runs.len(), 2);
    let inner = runs.iter().find(|r| r["task"].as_str().unwrap().ends_with("#inner")).unwrap();
    let outer = runs.iter().find(|r| r["task"].as_str().unwrap().ends_with("#outer")).unwrap();
    assert_eq!(inner["parent_task_run"], outer["id"]);
    assert_eq!(inner["state"]["name"], "Completed");
    // On an outer hit the body does not run, so the inner task is not called (reference 11.16).
    let again = failures(&ctx, "nested", 2, 0);
    assert_eq!(again.states(), ["Cached"]);
}

#[test]
fn a_plain_task_does_not_persist_and_never_hits_itself() {
    // Reference §8.2: DEFAULT policy, persistence off by default.
    let ctx = TestContext::new();
    let report = failures(&ctx, "plain", 1, 0);
    assert_eq!(report.states(), ["Completed", "Completed"]);
    assert!(report.keys().iter().all(Option::is_some), "a key is computed");
    assert!(report.task_runs().iter().all(|t| t["persisted"] == false));
}

#[test]
fn results_persist_by_default_makes_a_plain_task_hit_itself() {
    let mut ctx = TestContext::new();
    ctx.env("CACHEHOST_RESULTS_PERSIST_BY_DEFAULT", "true");
    assert_eq!(failures(&ctx, "plain", 1, 0).states(), ["Completed", "Cached"]);
}

#[test]
fn tasks_default_persist_result_makes_a_plain_task_hit_itself() {
    let mut ctx = TestContext::new();
    ctx.env("CACHEHOST_TASKS_DEFAULT_PERSIST_RESULT", "true");
    assert_eq!(failures(&ctx, "plain", 1, 0).states(), ["Completed", "Cached"]);
}
