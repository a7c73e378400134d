//! Transactions (reference §11, DESIGN §6): commit modes, nesting, hooks, keyed
//! transactions, values, and the failure cases, on the `transactions` example.

use cachehost_tests::{example, Report, TestContext};
use serde_json::json;

fn flow(ctx: &TestContext, flow: &str, params: &[&str], status: i32) -> Report {
    let path = example("transactions");
    let mut args = vec!["run", path.to_str().unwrap(), "--flow", flow];
    for param in params {
        args.push("--param");
        args.push(param);
    }
    ctx.report(&args, status)
}

/// Log messages (after `- `) of the guest's hook lines, in order.
fn hook_lines(report: &Report) -> Vec<String> {
    report
        .stderr
        .lines()
        .filter_map(|l| l.split_once(" - ").map(|(_, m)| m))
        .filter(|m| m.starts_with("on-commit") || m.starts_with("on-rollback"))
        .map(|m| {
            // Keys are digests: keep the task and values only.
            let task = m.split(" key=").next().unwrap().to_owned();
            let values = m.rsplit_once(" values=").map(|(_, v)| v).unwrap_or("");
            format!("{task} {values}")
        })
        .collect()
}

#[test]
fn nothing_is_cached_until_every_task_of_the_transaction_succeeds() {
    let ctx = TestContext::new();
    let failed = flow(&ctx, "pipeline", &["n=3", "fail=true"], 1);
    assert_eq!(failed.states(), ["Completed", "Failed"]);
    assert_eq!(
        failed.json["flow_run"]["state"]["message"],
        "Flow run returned err: {\"err\":\"processing 3 rows failed as asked\"}"
    );
    // The staged sibling's hooks run; the failing task staged nothing, so its own do not
    // (reference 11.10).
    assert_eq!(hook_lines(&failed), ["on-rollback task=load-data [rows=3]"]);
    assert_eq!(std::fs::read_dir(ctx.storage()).map(|d| d.count()).unwrap_or(0), 0, "no record was written");

    let succeeded = flow(&ctx, "pipeline", &["n=3", "fail=false"], 0);
    assert_eq!(succeeded.states(), ["Completed", "Completed"], "load-data was not cached by the failed run");
    assert_eq!(succeeded.result(), &json!({"ok": 6}));
    assert_eq!(hook_lines(&succeeded), ["on-commit task=load-data [rows=3]", "on-commit task=process-data []"]);
    // On-commit hooks run after the records are written, which is after the tasks finished.
    let last_finish = succeeded.stderr.find("Task run 'process-data").unwrap();
    assert!(succeeded.stderr.find("on-commit task=load-data").unwrap() > last_finish);

    let cached = flow(&ctx, "pipeline", &["n=3", "fail=false"], 0);
    assert_eq!(cached.states(), ["Cached", "Cached"]);
    assert!(hook_lines(&cached).is_empty(), "a cache hit runs no hooks (reference 14.4)");
}

#[test]
fn a_failing_task_runs_none_of_its_own_rollback_hooks() {
    // Its `err` rolled back with its own on-rollback hook first; in Prefect a task that fails
    // has staged nothing and registered no hooks (reference 11.10, 13.8).
    let ctx = TestContext::new();
    let report = flow(&ctx, "modes", &["mode=\"third-fails\""], 0);
    assert_eq!(report.result(), &json!(["Completed", "Completed", "Failed"]));
    assert_eq!(hook_lines(&report), ["on-rollback task=load-data [rows=9]", "on-rollback task=load-data [rows=8]"]);
    assert_eq!(std::fs::read_dir(ctx.storage()).map(|d| d.count()).unwrap_or(0), 0, "no record was written");
}

#[test]
fn a_lone_task_that_fails_runs_no_hooks() {
    // A lone task's `err` ran its own on-rollback hook; a failure, trap or `err`, runs none
    // (reference 13.8).
    let ctx = TestContext::new();
    let path = example("transactions");
    let path = path.to_str().unwrap();
    let trapped = ctx.report(&["call", path, "crash", "--arg", "n=3"], 1);
    assert_eq!(trapped.states(), ["Failed"]);
    assert!(!trapped.stderr.contains("hook"), "{}", trapped.stderr);
    let returned = ctx.report(&["call", path, "process-data", "--arg", "rows=[1,2]", "--arg", "fail=true"], 1);
    assert_eq!(returned.states(), ["Failed"]);
    assert!(!returned.stderr.contains("hook"), "{}", returned.stderr);
}

#[test]
fn a_retried_task_runs_none_of_its_hooks_and_its_failed_attempt_rolls_back() {
    // The failed attempt's `err` ran the retried task's own on-rollback hook; it runs none,
    // and the attempt still rolls the transaction back for good (reference 11.11).
    let ctx = TestContext::new();
    let dir = ctx.dir.path().join("flow");
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let path = dir.join("transactions.wasm");
    std::fs::copy(example("transactions"), &path).unwrap();
    std::fs::write(
        dir.join("cachehost.toml"),
        "[components.transactions]\ndirs = [{ host = \"state\", guest = \"/state\", mode = \"rw\" }]\n\
        [tasks.flaky]\nretries = 1\n",
    )
    .unwrap();
    let report = ctx.report(&["run", path.to_str().unwrap(), "--flow", "retried", "--param", "marker=\"/state/m\""], 0);
    assert_eq!(report.result(), &json!(["Completed", "Completed"]));
    assert_eq!(report.task_runs()[1]["attempts"], 2, "flaky failed once, then succeeded");
    assert_eq!(hook_lines(&report), ["on-rollback task=load-data [rows=10]"], "load-data's once, flaky's never");
    assert_eq!(std::fs::read_dir(ctx.storage()).map(|d| d.count()).unwrap_or(0), 0, "no record was written");
}

#[test]
fn lazy_has_no_read_your_writes_and_writes_at_the_outer_commit() {
    let ctx = TestContext::new();
    let report = flow(&ctx, "modes", &["mode=\"lazy-twice\""], 0);
    assert_eq!(report.result(), &json!(["Completed", "Completed"]), "reference 7.5");
    let again = flow(&ctx, "modes", &["mode=\"lazy-twice\""], 0);
    assert_eq!(again.result(), &json!(["Cached", "Cached"]));
}

#[test]
fn eager_commits_each_child_at_once() {
    let ctx = TestContext::new();
    let report = flow(&ctx, "modes", &["mode=\"eager-twice\""], 0);
    assert_eq!(report.result(), &json!(["Completed", "Cached"]), "reference 11.12");
}

#[test]
fn off_writes_nothing_and_rolls_back_at_the_outer_exit() {
    let ctx = TestContext::new();
    let report = flow(&ctx, "modes", &["mode=\"off\""], 0);
    assert_eq!(report.result(), &json!(["Completed", "Completed"]));
    assert_eq!(hook_lines(&report), ["on-rollback task=load-data [rows=2]", "on-rollback task=load-data [rows=2]"]);
    let again = flow(&ctx, "modes", &["mode=\"off\""], 0);
    assert_eq!(again.result(), &json!(["Completed", "Completed"]), "reference 11.13: nothing was written");
}

#[test]
fn nested_transactions_commit_with_the_outermost() {
    let ctx = TestContext::new();
    assert_eq!(flow(&ctx, "modes", &["mode=\"nested\""], 0).states(), ["Completed", "Completed"]);
    assert_eq!(flow(&ctx, "modes", &["mode=\"nested\""], 0).states(), ["Cached", "Cached"]);
}

#[test]
fn values_are_read_through_the_parent_chain() {
    let ctx = TestContext::new();
    let report = flow(&ctx, "modes", &["mode=\"values\""], 0);
    assert_eq!(report.result(), &json!(["\"outer\"", "\"inner\"", "\"outer\"", "none"]));
}

#[test]
fn a_caught_failure_still_rolls_the_transaction_back() {
    let ctx = TestContext::new();
    let report = flow(&ctx, "modes", &["mode=\"caught\""], 0);
    assert_eq!(report.result(), &json!(["Completed", "Failed", "Completed"]));
    let again = flow(&ctx, "modes", &["mode=\"caught\""], 0);
    assert_eq!(again.result(), &json!(["Completed", "Failed", "Completed"]), "reference 11.11: nothing was written");
}

#[test]
fn a_keyed_transaction_is_skipped_once_committed() {
    let ctx = TestContext::new();
    let first = flow(&ctx, "keyed", &["key=\"daily-load\""], 0);
    assert_eq!(first.result(), false);
    assert_eq!(first.states(), ["Completed"]);
    assert!(ctx.storage().join("daily-load").is_file(), "the keyed record is written on commit");
    let second = flow(&ctx, "keyed", &["key=\"daily-load\""], 0);
    assert_eq!(second.result(), true, "is-committed");
    assert!(second.states().is_empty());
}

#[test]
fn an_inner_task_of_a_failing_outer_task_is_never_written() {
    // Reference 11.16: nested tasks are children of the outer task's transaction.
    let ctx = TestContext::new();
    let path = example("failures");
    let run =
        |status| ctx.report(&["run", path.to_str().unwrap(), "--param", "mode=nested", "--param", "x=-1"], status);
    let first = run(1);
    assert_eq!(first.states(), ["Completed", "Failed"]);
    let second = run(1);
    assert_eq!(second.states(), ["Completed", "Failed"], "inner ran again: its record was rolled back with outer");
}

#[test]
fn serializable_without_a_lock_manager_fails_without_running_the_body() {
    let ctx = TestContext::new();
    let dir = ctx.dir.path().join("flow");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("transactions.wasm");
    std::fs::copy(example("transactions"), &path).unwrap();
    std::fs::write(dir.join("cachehost.toml"), "[tasks.load-data]\nisolation_level = \"SERIALIZABLE\"\n").unwrap();
    let report = ctx.report(&["call", path.to_str().unwrap(), "load-data", "--arg", "n=1"], 1);
    assert_eq!(report.states(), ["Failed"]);
    let message = report.task_runs()[0]["state"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Isolation level SERIALIZABLE is not supported by provided configuration"),
        "{message}"
    );
    assert_eq!(report.instantiations("tasks"), 0);
}
