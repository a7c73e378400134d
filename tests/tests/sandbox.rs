//! The sandbox (DESIGN §8) on the `hostile` example: every hostile task ends as a Failed or
//! TimedOut task run whose message names its reason, the host stays up, and normal tasks in
//! the same flow run still complete. Grants, limits from every place they are configured,
//! and retries.

use std::path::PathBuf;

use cachehost_tests::{example, Report, TestContext};
use serde_json::Value as Json;

/// Writes `cachehost.toml` into the test's folder and returns its path.
fn config(ctx: &TestContext, text: &str) -> PathBuf {
    let path = ctx.dir.path().join("cachehost.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn hostile() -> String {
    example("hostile").to_str().unwrap().to_owned()
}

/// `cachehost call hostile.wasm TASK ARGS... --config CONFIG --json`.
fn call(ctx: &TestContext, config: Option<&PathBuf>, task: &str, args: &[&str], status: i32) -> Report {
    let hostile = hostile();
    let mut all = vec!["call", hostile.as_str(), task];
    for arg in args {
        all.extend(["--arg", arg]);
    }
    let config = config.map(|c| c.to_str().unwrap().to_owned());
    if let Some(config) = &config {
        all.extend(["--config", config.as_str()]);
    }
    ctx.report(&all, status)
}

fn only_run(report: &Report) -> &Json {
    assert_eq!(report.task_runs().len(), 1, "{:#}", report.json);
    &report.task_runs()[0]
}

fn state(run: &Json) -> (&str, &str) {
    (run["state"]["name"].as_str().unwrap(), run["state"]["message"].as_str().unwrap_or(""))
}

fn runs_of<'a>(report: &'a Report, function: &str) -> Vec<&'a Json> {
    let suffix = format!("#{function}");
    report.task_runs().iter().filter(|t| t["task"].as_str().unwrap().ends_with(&suffix)).collect()
}

#[test]
fn a_flow_survives_every_hostile_task_and_its_normal_tasks_complete() {
    let ctx = TestContext::new();
    let config = config(
        &ctx,
        "[tasks.spin]\ntimeout = \"500ms\"\n[tasks.hog-memory]\nmemory = \"64MiB\"\n[tasks.huge]\nmax_result_size = \
            \"1MiB\"\n",
    );
    let report = ctx.report(&["run", &hostile(), "--flow", "survive", "--config", config.to_str().unwrap()], 0);
    assert_eq!(report.flow_state(), "Completed", "{}", report.stderr);

    let expected = [
        ("spin", "TimedOut", "exceeded its timeout of 500ms (timeout)"),
        ("hog-memory", "Failed", "exceeded its memory limit of 64 MiB (memory)"),
        ("recurse", "Failed", "Task run encountered a trap: wasm trap:"),
        ("trap", "Failed", "Task run encountered a trap: wasm trap: wasm `unreachable` instruction executed"),
        ("panics", "Failed", "Task run encountered a trap: wasm trap: wasm `unreachable` instruction executed"),
        ("huge", "Failed", "over the limit of 1 MiB (max_result_size)"),
        ("read-file", "Failed", "cannot read /etc/passwd"),
    ];
    for (task, name, message) in expected {
        let runs = runs_of(&report, task);
        assert_eq!(runs.len(), 1, "{task}");
        let (got_name, got_message) = state(runs[0]);
        assert_eq!(got_name, name, "{task}: {got_message}");
        assert!(got_message.contains(message), "{task}: {got_message:?} lacks {message:?}");
    }
    assert!(report.stderr.contains("the hostile task panicked on purpose"), "the panic message is logged");

    // Unbounded nesting stops at the default depth of 64: 65 runs, the deepest refused.
    let nest = runs_of(&report, "nest");
    assert_eq!(nest.len(), 65);
    for run in &nest {
        let (name, message) = state(run);
        assert_eq!(name, "Failed");
        assert!(message.contains("task calls are nested deeper than the limit of 64 (max_nesting_depth)"), "{message}");
    }

    // Each hostile call was followed by a normal one, and every one of them completed.
    let add_one = runs_of(&report, "add-one");
    assert_eq!(add_one.len(), 8);
    assert!(add_one.iter().all(|run| state(run).0 == "Completed"), "{:#}", report.json);
    let lines: Vec<&str> = report.result().as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    let normal: Vec<&&str> = lines.iter().filter(|l| l.starts_with("add-one: ")).collect();
    assert_eq!(
        normal,
        [
            "add-one: ok 1",
            "add-one: ok 2",
            "add-one: ok 3",
            "add-one: ok 4",
            "add-one: ok 5",
            "add-one: ok 6",
            "add-one: ok 7",
            "add-one: ok 8"
        ]
        .iter()
        .collect::<Vec<_>>()
    );
    assert!(lines[0].starts_with("spin: err Task run failed: the task run exceeded its timeout"), "{lines:?}");
}

#[test]
fn the_default_memory_limit_is_512_mib() {
    let ctx = TestContext::new();
    let report = call(&ctx, None, "hog-memory", &[], 1);
    let (name, message) = state(only_run(&report));
    assert_eq!(name, "Failed");
    assert_eq!(message, "Task run failed: the task run exceeded its memory limit of 512 MiB (memory)");
}

#[test]
fn a_timeout_from_the_environment_times_out_an_infinite_loop() {
    let mut ctx = TestContext::new();
    ctx.env("CACHEHOST_LIMITS_TIMEOUT", "300ms");
    let report = call(&ctx, None, "spin", &[], 1);
    let run = only_run(&report);
    assert_eq!(state(run), ("TimedOut", "Task run failed: the task run exceeded its timeout of 300ms (timeout)"));
    assert_eq!(run["state"]["type"], "FAILED");
    assert!(
        report.stderr.contains(
            "Finished in state TimedOut('Task run failed: the task run exceeded its timeout of \
        300ms (timeout)', type=FAILED)"
        ),
        "{}",
        report.stderr
    );
}

#[test]
fn fuel_stops_an_infinite_loop() {
    let ctx = TestContext::new();
    let config = config(&ctx, "[limits]\nfuel = 1000000\n");
    let report = call(&ctx, Some(&config), "spin", &[], 1);
    assert_eq!(
        state(only_run(&report)),
        ("Failed", "Task run failed: the task run ran out of fuel after 1000000 units (fuel)")
    );
    // The same engine still runs normal tasks with their default fuel.
    let report = call(&ctx, Some(&config), "add-one", &["x=1"], 0);
    assert_eq!(state(only_run(&report)).0, "Completed");
}

#[test]
fn deep_recursion_is_a_trap_not_a_crash() {
    let ctx = TestContext::new();
    let report = call(&ctx, None, "recurse", &["depth=100000000"], 1);
    let (name, message) = state(only_run(&report));
    assert_eq!(name, "Failed");
    assert!(message.starts_with("Task run encountered a trap: wasm trap: "), "{message}");
}

#[test]
fn a_result_over_max_result_size_fails_and_is_not_cached() {
    let ctx = TestContext::new();
    let config = config(&ctx, "[tasks.huge-text]\nmax_result_size = 1000\ncache_policy = \"INPUTS\"\n");
    let report = call(&ctx, Some(&config), "huge-text", &["size=5000"], 1);
    let run = only_run(&report);
    assert_eq!(
        state(run),
        (
            "Failed",
            "Task run failed: the task returned a result of 5006 bytes, over the limit of 1000 bytes (max_result_size)"
        )
    );
    assert_eq!(run["persisted"], false);
    // Under the limit it completes and is cached.
    let report = call(&ctx, Some(&config), "huge-text", &["size=900"], 0);
    assert_eq!(only_run(&report)["persisted"], true);
}

#[test]
fn a_lifted_result_over_max_result_size_fails_too() {
    // A list<u8> this large is refused by wasmtime while lifting it, before it is encoded.
    let ctx = TestContext::new();
    let config = config(&ctx, "[limits]\nmax_result_size = \"1MiB\"\n");
    let report = call(&ctx, Some(&config), "huge", &["size=2000000"], 1);
    assert_eq!(
        state(only_run(&report)),
        ("Failed", "Task run failed: the task returned a result over the limit of 1 MiB (max_result_size)")
    );
}

#[test]
fn the_nesting_limit_comes_from_the_environment() {
    let mut ctx = TestContext::new();
    ctx.env("CACHEHOST_LIMITS_MAX_NESTING_DEPTH", "5");
    let report = call(&ctx, None, "nest", &["level=0"], 1);
    assert_eq!(report.task_runs().len(), 6);
    let deepest = &report.task_runs()[0];
    assert_eq!(
        state(deepest),
        ("Failed", "Task run failed: task calls are nested deeper than the limit of 5 (max_nesting_depth)")
    );
    assert_eq!(deepest["attempts"], 0, "a refused call never ran");
}

#[test]
fn files_outside_the_grants_are_denied() {
    let ctx = TestContext::new();
    let report = call(&ctx, None, "read-file", &["path=/etc/passwd"], 1);
    let (name, message) = state(only_run(&report));
    assert_eq!(name, "Failed");
    assert!(message.contains("cannot read /etc/passwd"), "{message}");
    assert!(!message.contains("root:"), "{message}");
}

#[test]
fn the_environment_is_empty_unless_granted() {
    let mut ctx = TestContext::new();
    ctx.env("CACHEHOST_TEST_SECRET", "s3cr3t").env("GREETING", "hello");
    let report = call(&ctx, None, "read-env", &[], 0);
    assert_eq!(report.task_runs()[0]["state"]["name"], "Completed");
    let output = ctx.run(&["call", &hostile(), "read-env"]);
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "[]");

    let config = config(&ctx, "[components.\"hostile.wasm\"]\nenv = [\"GREETING\", \"UNSET_VARIABLE\"]\n");
    let output = ctx.run(&["call", &hostile(), "read-env", "--config", config.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), r#"[["GREETING","hello"]]"#);
}

#[test]
fn sockets_are_denied() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = format!("address={}", listener.local_addr().unwrap());
    let ctx = TestContext::new();
    let report = call(&ctx, None, "connect", &[&address], 1);
    let (name, message) = state(only_run(&report));
    assert_eq!(name, "Failed");
    assert!(message.contains("cannot connect to 127.0.0.1:"), "{message}");
    assert!(listener.accept().is_err(), "nothing connected to the host's listener");
}

#[test]
fn a_read_only_grant_is_readable_and_refuses_writes() {
    let ctx = TestContext::new();
    let data = ctx.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("input.txt"), "granted text").unwrap();
    let config = config(&ctx, "[components.hostile]\ndirs = [{ host = \"data\", guest = \"/data\", mode = \"ro\" }]\n");
    let output = ctx.run(&[
        "call",
        &hostile(),
        "read-file",
        "--arg",
        "path=/data/input.txt",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        r#"{"ok":"granted text"}"#,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let report = call(&ctx, Some(&config), "write-file", &["path=/data/new.txt", "text=x"], 1);
    let (name, message) = state(only_run(&report));
    assert_eq!(name, "Failed");
    assert!(message.contains("cannot write /data/new.txt"), "{message}");
    assert!(!data.join("new.txt").exists());
    // `..` does not leave the granted folder.
    let report = call(&ctx, Some(&config), "read-file", &["path=/data/../cachehost.toml"], 1);
    assert_eq!(state(only_run(&report)).0, "Failed");
}

/// A folder granted read-write and a config giving `flaky` the options in `task_options`.
fn flaky_setup(ctx: &TestContext, task_options: &str) -> PathBuf {
    std::fs::create_dir_all(ctx.dir.path().join("state")).unwrap();
    config(
        ctx,
        &format!(
            "[components.hostile]\ndirs = [{{ host = \"state\", guest = \"/state\", mode = \"rw\" \
        }}]\n[tasks.flaky]\n{task_options}\n"
        ),
    )
}

#[test]
fn retries_recover_from_a_transient_failure() {
    let ctx = TestContext::new();
    let config = flaky_setup(&ctx, "retries = 1");
    let report = call(&ctx, Some(&config), "flaky", &["marker=/state/m"], 0);
    let run = only_run(&report);
    assert_eq!(state(run).0, "Completed");
    assert_eq!(run["attempts"], 2);
    assert!(
        report.stderr.contains(
            "Task run failed with exception: wasm trap: wasm `unreachable` instruction executed - \
            Retry 1/1 will start immediately"
        ),
        "{}",
        report.stderr
    );
    let output =
        ctx.run(&["call", &hostile(), "flaky", "--arg", "marker=/state/other", "--config", config.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "1");
}

#[test]
fn without_retries_a_transient_failure_fails() {
    let ctx = TestContext::new();
    let config = flaky_setup(&ctx, "");
    let report = call(&ctx, Some(&config), "flaky", &["marker=/state/m"], 1);
    let run = only_run(&report);
    assert_eq!(state(run).0, "Failed");
    assert_eq!(run["attempts"], 1);
}

#[test]
fn a_retry_delay_is_announced_and_waited() {
    let ctx = TestContext::new();
    let config = flaky_setup(&ctx, "retries = 2\nretry_delay = \"200ms\"");
    let report = call(&ctx, Some(&config), "flaky", &["marker=/state/m"], 0);
    assert_eq!(only_run(&report)["attempts"], 2);
    assert!(report.stderr.contains("- Retry 1/2 will start 0.2 second(s) from now"), "{}", report.stderr);
}

#[test]
fn the_global_default_retries_apply_to_tasks_without_their_own() {
    let mut ctx = TestContext::new();
    ctx.env("CACHEHOST_TASKS_DEFAULT_RETRIES", "1");
    let config = flaky_setup(&ctx, "");
    let report = call(&ctx, Some(&config), "flaky", &["marker=/state/m"], 0);
    assert_eq!(only_run(&report)["attempts"], 2, "{}", report.stderr);
    // A task's own `retries` wins over the default.
    let config = flaky_setup(&ctx, "retries = 0");
    let report = call(&ctx, Some(&config), "flaky", &["marker=/state/other"], 1);
    assert_eq!(only_run(&report)["attempts"], 1);
}
