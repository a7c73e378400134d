//! Concurrent task runs and SERIALIZABLE isolation with lease locks (reference §12,
//! DESIGN §6), in one process and across processes, plus a killed lock holder.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use cachehost_tests::{example, wait_until, TestContext};

/// A copy of the `concurrency` example beside a cachehost.toml holding `toml`, and a home
/// of this test's own (its lock folder).
fn setup(toml: &str) -> (TestContext, PathBuf) {
    let mut ctx = TestContext::new();
    let dir = ctx.dir.path().join("flow");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("concurrency.wasm");
    std::fs::copy(example("concurrency"), &path).unwrap();
    std::fs::write(dir.join("cachehost.toml"), toml).unwrap();
    let home = ctx.dir.path().join("home");
    ctx.env("CACHEHOST_HOME", home.to_str().unwrap());
    (ctx, path)
}

fn serializable(manager: &str, extra: &str) -> String {
    ["version-one", "version-two", "slow-add"]
        .iter()
        .map(|task| {
            format!("[tasks.{task}]\nisolation_level = \"SERIALIZABLE\"\nlock_manager = \"{manager}\"\n{extra}\n")
        })
        .collect()
}

/// The lock files in `dir`, as JSON (`holder`, null once released; `pid`, the last writer).
fn lock_files(dir: &Path) -> Vec<serde_json::Value> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "lock"))
        .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
        .collect()
}

/// Waits until a lock file in `dir` records a holder, and returns it.
fn wait_for_holder(dir: &Path) -> serde_json::Value {
    let mut held = None;
    wait_until("the holder taking its lock", || {
        held = lock_files(dir).into_iter().find(|l| !l["holder"].is_null());
        held.is_some()
    });
    held.unwrap()
}

fn count(states: &[String], name: &str) -> usize {
    states.iter().filter(|s| *s == name).count()
}

#[test]
fn two_task_versions_with_one_inputs_key_both_run_under_read_committed() {
    let (ctx, path) = setup("");
    // Both must look the key up before either finishes: 3 s leaves room on a loaded machine.
    let report =
        ctx.report(&["run", path.to_str().unwrap(), "--flow", "versions", "--param", "x=1", "--param", "ms=3000"], 0);
    assert_eq!(report.states(), ["Completed", "Completed"]);
    assert_eq!(report.keys()[0], report.keys()[1], "INPUTS does not name the task");
}

#[test]
fn under_serializable_exactly_one_version_runs_and_the_other_is_cached() {
    let (ctx, path) = setup(&serializable("memory", ""));
    let report =
        ctx.report(&["run", path.to_str().unwrap(), "--flow", "versions", "--param", "x=1", "--param", "ms=300"], 0);
    let mut states = report.states();
    states.sort();
    assert_eq!(states, ["Cached", "Completed"]);
    let result = report.result().as_array().unwrap();
    assert_eq!(result[0], result[1], "the waiter got the first version's record");
}

#[test]
fn thirty_two_concurrent_identical_calls_run_the_body_once() {
    let (ctx, path) = setup(&serializable("memory", ""));
    let report = ctx.report(
        &[
            "run",
            path.to_str().unwrap(),
            "--flow",
            "race",
            "--param",
            "n=32",
            "--param",
            "x=1",
            "--param",
            "ms=200",
            "--concurrency",
            "32",
        ],
        0,
    );
    let states = report.states();
    assert_eq!(states.len(), 32);
    assert_eq!(count(&states, "Completed"), 1, "{states:?}");
    assert_eq!(count(&states, "Cached"), 31);
    assert_eq!(report.instantiations("tasks"), 1);
    assert!(report.result().as_array().unwrap().iter().all(|v| v == 2));
}

#[test]
fn under_read_committed_concurrent_identical_calls_all_run() {
    let (ctx, path) = setup("");
    let report = ctx.report(
        &[
            "run",
            path.to_str().unwrap(),
            "--flow",
            "race",
            "--param",
            "n=8",
            "--param",
            "x=1",
            "--param",
            "ms=3000",
            "--concurrency",
            "8",
        ],
        0,
    );
    assert_eq!(count(&report.states(), "Completed"), 8, "reference 12.1");
}

#[test]
fn eight_processes_with_the_file_lock_manager_run_the_body_once() {
    let (ctx, path) = setup(&serializable("file", ""));
    // Warm the compiled cache so the processes start together.
    assert!(ctx.run(&["inspect", path.to_str().unwrap()]).status.success());
    let children: Vec<_> = (0..8)
        .map(|_| {
            ctx.command(&["call", path.to_str().unwrap(), "slow-add", "--arg", "x=5", "--arg", "ms=500", "--json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut states = Vec::new();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        states.push(report["task_runs"][0]["state"]["name"].as_str().unwrap().to_owned());
    }
    assert_eq!(count(&states, "Completed"), 1, "{states:?}");
    assert_eq!(count(&states, "Cached"), 7, "{states:?}");
}

/// The dead holder's lease outlives it and nothing releases it: the next run can only have
/// run by taking the lease over once it expired (its acquire timeout is far longer than the
/// lease, and a run that ignored the lock would leave the dead holder's lock file as it was).
#[test]
fn a_killed_lock_holder_blocks_the_next_run_only_until_its_lease_expires() {
    let (ctx, path) = setup(&serializable("file", "lock_hold_timeout = \"1s\"\nlock_acquire_timeout = \"60s\""));
    let lock_dir = ctx.dir.path().join("home/locks");
    let mut holder = ctx
        .command(&["call", path.to_str().unwrap(), "slow-add", "--arg", "x=9", "--arg", "ms=30000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the holder has taken its lock, then kill it with SIGKILL.
    let taken = wait_for_holder(&lock_dir);
    assert_eq!(taken["pid"], holder.id());
    holder.kill().unwrap();
    holder.wait().unwrap();
    // Its lease (perhaps renewed once more since) is still there: a killed holder releases nothing.
    let left: Vec<_> = lock_files(&lock_dir).iter().map(|l| (l["holder"].clone(), l["pid"].clone())).collect();
    assert_eq!(left, [(taken["holder"].clone(), taken["pid"].clone())]);
    let report = ctx.report(&["call", path.to_str().unwrap(), "slow-add", "--arg", "x=9", "--arg", "ms=0"], 0);
    assert_eq!(report.states(), ["Completed"], "the next run got the lock, and the killed holder wrote nothing");
    assert_eq!(report.instantiations("tasks"), 1);
    let after = lock_files(&lock_dir);
    assert_eq!(after.len(), 1, "{after:?}");
    assert!(after[0]["holder"].is_null(), "the next run released the lock it took over: {after:?}");
    assert_ne!(after[0]["pid"], taken["pid"], "written by the next run: {after:?}");
}

#[test]
fn a_lock_not_acquired_in_time_fails_the_task_with_a_clear_message() {
    let (ctx, path) = setup(&serializable("file", "lock_acquire_timeout = \"1s\""));
    let mut holder = ctx
        .command(&["call", path.to_str().unwrap(), "slow-add", "--arg", "x=3", "--arg", "ms=8000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_holder(&ctx.dir.path().join("home/locks"));
    let report = ctx.report(&["call", path.to_str().unwrap(), "slow-add", "--arg", "x=3", "--arg", "ms=0"], 1);
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!(report.states(), ["Failed"]);
    let message = report.task_runs()[0]["state"]["message"].as_str().unwrap();
    assert!(message.starts_with("Timed out after 1.0s waiting for the lock on key"), "{message}");
}
