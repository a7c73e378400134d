//! Options and settings end to end: cachehost.toml over component defaults, and the
//! environment settings' truth tables (reference §2, §8, §10, §15).

use cachehost_tests::{example, Report, TestContext};

/// Copies an example next to a cachehost.toml holding `toml`, returns its path.
fn with_config(ctx: &TestContext, name: &str, toml: &str) -> std::path::PathBuf {
    let dir = ctx.dir.path().join(format!("cfg-{}", toml.len()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.wasm"));
    std::fs::copy(example(name), &path).unwrap();
    std::fs::write(dir.join("cachehost.toml"), toml).unwrap();
    path
}

fn run(ctx: &TestContext, path: &std::path::Path, extra: &[&str]) -> Report {
    let mut args = vec!["run", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    ctx.report(&args, 0)
}

#[test]
fn cachehost_toml_overrides_the_component_and_persist_false_disables_caching() {
    let ctx = TestContext::new();
    let path = with_config(&ctx, "inputs", "[tasks.add-one]\npersist_result = false\n");
    let report = run(&ctx, &path, &[]);
    assert_eq!(report.states(), ["Completed", "Completed", "Completed"]);
    assert_eq!(report.keys(), [None, None, None]);
    // The component declared a policy, so Prefect's warning is logged (reference 2.6).
    assert!(report.stderr.contains("Ignoring `cache_policy` because `persist_result` is False"), "{}", report.stderr);
}

#[test]
fn disable_caching_turns_every_policy_off() {
    let mut ctx = TestContext::new();
    ctx.env("CACHEHOST_TASKS_DISABLE_CACHING", "true");
    let report = run(&ctx, &cachehost_tests::example("inputs"), &[]);
    assert_eq!(report.states(), ["Completed", "Completed", "Completed"]);
    assert_eq!(report.keys(), [None, None, None]);
}

#[test]
fn default_no_cache_applies_only_to_tasks_without_a_policy() {
    let mut ctx = TestContext::new();
    ctx.env("CACHEHOST_TASKS_DEFAULT_NO_CACHE", "true").env("CACHEHOST_RESULTS_PERSIST_BY_DEFAULT", "true");
    // `inputs` declares a policy: still cached.
    assert_eq!(run(&ctx, &example("inputs"), &[]).states(), ["Completed", "Cached", "Completed"]);
    // `plain` declares none: NO_CACHE.
    let plain =
        ctx.report(&["run", example("failures").to_str().unwrap(), "--param", "mode=plain", "--param", "x=1"], 0);
    assert_eq!(plain.states(), ["Completed", "Completed"]);
    assert_eq!(plain.keys(), [None, None]);
}

/// Reference §10: every row of the refresh_cache table, for a key that exists.
#[test]
fn refresh_cache_truth_table() {
    for (task_refresh, setting, expected) in [
        (Some(true), false, "Completed"),
        (Some(true), true, "Completed"),
        (Some(false), false, "Cached"),
        (Some(false), true, "Cached"),
        (None, false, "Cached"),
        (None, true, "Completed"),
    ] {
        let mut ctx = TestContext::new();
        let toml = match task_refresh {
            Some(flag) => format!("[tasks.add-one]\nrefresh_cache = {flag}\n"),
            None => String::new(),
        };
        let path = with_config(&ctx, "expiration", &toml);
        let first = run(&ctx, &path, &["--param", "x=7"]);
        assert_eq!(first.states(), ["Completed"]);
        ctx.env("CACHEHOST_TASKS_REFRESH_CACHE", if setting { "true" } else { "false" });
        let second = run(&ctx, &path, &["--param", "x=7"]);
        assert_eq!(second.states(), [expected], "refresh_cache={task_refresh:?}, setting={setting}");
        assert_eq!(second.keys(), first.keys());
    }
}

#[test]
fn flow_parameters_keys_on_the_flow_run_parameters() {
    let ctx = TestContext::new();
    let path = with_config(
        &ctx,
        "expiration",
        "[tasks.add-one]\ncache_policy = \"FLOW_PARAMETERS\"\ncache_expiration = 3600\n",
    );
    let one = run(&ctx, &path, &["--param", "x=1"]);
    assert_eq!(one.states(), ["Completed"]);
    assert_eq!(run(&ctx, &path, &["--param", "x=1"]).states(), ["Cached"]);
    assert_eq!(run(&ctx, &path, &["--param", "x=2"]).states(), ["Completed"]);
    // Outside a flow run there are no flow parameters: no key (reference 3.3).
    let call = ctx.report(&["call", path.to_str().unwrap(), "add-one", "--arg", "x=1"], 0);
    assert_eq!(call.keys(), [None]);
}

#[test]
fn a_standalone_call_has_its_own_run_id() {
    let ctx = TestContext::new();
    let path = with_config(&ctx, "expiration", "[tasks.add-one]\ncache_policy = \"RUN_ID\"\ncache_expiration = 3600\n");
    let first = ctx.report(&["call", path.to_str().unwrap(), "add-one", "--arg", "x=1"], 0);
    assert_eq!(first.keys()[0].as_deref(), first.task_runs()[0]["id"].as_str(), "RUN_ID is the task run id, unhashed");
    let second = ctx.report(&["call", path.to_str().unwrap(), "add-one", "--arg", "x=1"], 0);
    assert_eq!(second.states(), ["Completed"], "RUN_ID never hits outside a flow (reference 3.4)");
    // INPUTS hits across standalone calls, and the result is printed as JSON.
    let output = ctx.run(&["call", example("inputs").to_str().unwrap(), "add-one", "--arg", "x=41"]);
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "42");
    let hit = ctx.report(&["call", example("inputs").to_str().unwrap(), "add-one", "--arg", "x=41"], 0);
    assert_eq!(hit.states(), ["Cached"]);
}

#[test]
fn a_corrupt_record_is_a_miss_with_a_warning_and_is_overwritten() {
    let ctx = TestContext::new();
    let path = example("expiration");
    let first = run(&ctx, &path, &["--param", "x=5"]);
    let key = first.keys()[0].clone().unwrap();
    let record = ctx.storage().join(&key);
    let mut bytes = std::fs::read(&record).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&record, &bytes).unwrap();
    let second = run(&ctx, &path, &["--param", "x=5"]);
    assert_eq!(second.states(), ["Completed"]);
    assert_eq!(second.result(), 6, "never a wrong value");
    assert!(second.stderr.contains("WARNING") && second.stderr.contains("unreadable"), "{}", second.stderr);
    assert_eq!(run(&ctx, &path, &["--param", "x=5"]).states(), ["Cached"], "the miss rewrote the record");
}

#[test]
fn a_corrupt_compiled_cache_entry_is_recompiled() {
    let mut ctx = TestContext::new();
    let home = ctx.dir.path().join("home");
    ctx.env("CACHEHOST_HOME", home.to_str().unwrap());
    let path = example("inputs");
    run(&ctx, &path, &[]);
    // The compiled entries, not the folder of remembered digests beside them.
    let compiled: Vec<_> =
        std::fs::read_dir(home.join("compiled")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    assert_eq!(compiled.len(), 1, "{compiled:?}");
    std::fs::write(&compiled[0], b"garbage").unwrap();
    let report = run(&ctx, &path, &[]);
    assert_eq!(report.states(), ["Cached", "Cached", "Cached"]);
    assert!(std::fs::metadata(&compiled[0]).unwrap().len() > 1000, "the entry was rewritten");
}

#[test]
fn inspect_shows_signatures_options_with_their_source_and_the_digest() {
    let ctx = TestContext::new();
    let path = with_config(&ctx, "inputs-exclude", "[tasks.add-one]\ncache_expiration = \"5m\"\n");
    let output = ctx.run(&["inspect", path.to_str().unwrap()]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("add-one: func(x: s64, debug: bool) -> s64"), "{text}");
    assert!(text.contains("INPUTS - 'debug'") && text.contains("(component)"), "{text}");
    assert!(text.contains("300s") && text.contains("cachehost.toml"), "{text}");
    assert!(text.contains("TASK_SOURCE digest: "), "{text}");
    let json = ctx.run(&["inspect", path.to_str().unwrap(), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["tasks"][0]["options"]["cache_policy"]["source"], "component");
    assert_eq!(json["tasks"][0]["options"]["persist_result"]["value"], true);
}
