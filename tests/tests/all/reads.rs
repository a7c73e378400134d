//! Read sets (DESIGN §9a, issue 16): what a task run read through WASI, as the host saw it,
//! in its report's `reads`: files opened for reading through a grant with the BLAKE3 of
//! their content, folders listed with their names, the environment it was given, and
//! whether it read the wall clock. Files it wrote itself are not inputs.

use std::path::{Path, PathBuf};

use cachehost_tests::{example, Report, TestContext};
use serde_json::{json, Value as Json};

/// A test folder with `data/` (`input.csv`, `sub/`) granted read-only at `/data`, `state/`
/// granted read-write at `/state`, and `GREETING` granted; the cachehost.toml's path.
fn granted(ctx: &TestContext) -> PathBuf {
    let dir = ctx.dir.path();
    std::fs::create_dir_all(dir.join("data/sub")).unwrap();
    std::fs::create_dir_all(dir.join("state")).unwrap();
    std::fs::write(dir.join("data/input.csv"), "a,b\n1,2\n").unwrap();
    let config = dir.join("cachehost.toml");
    std::fs::write(
        &config,
        "[components.hostile]\ndirs = [{ host = \"data\", guest = \"/data\" }, { host = \"state\", guest = \"/state\", \
         mode = \"rw\" }]\nenv = [\"GREETING\"]\n[tasks.flaky]\ncache_policy = \"NONE\"\nretries = 1\n",
    )
    .unwrap();
    config
}

/// `cachehost call hostile.wasm TASK ARGS... --config CONFIG --json`: the one task run's `reads`.
fn reads(ctx: &TestContext, config: &Path, task: &str, args: &[&str]) -> Json {
    let hostile = example("hostile");
    let mut all = vec!["call", hostile.to_str().unwrap(), task, "--config", config.to_str().unwrap()];
    for arg in args {
        all.extend(["--arg", arg]);
    }
    let report: Report = ctx.report(&all, 0);
    assert_eq!(report.task_runs().len(), 1, "{:#}", report.json);
    report.task_runs()[0]["reads"].clone()
}

fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

#[test]
fn a_file_read_through_a_grant_is_in_the_read_set_with_its_digest() {
    let ctx = TestContext::new();
    let config = granted(&ctx);
    let read = reads(&ctx, &config, "read-file", &["path=/data/sub/../input.csv"]);
    assert_eq!(read, json!({ "files": { "/data/input.csv": blake3_hex(b"a,b\n1,2\n") } }));
}

#[test]
fn a_listed_folder_is_in_the_read_set_with_its_names() {
    let ctx = TestContext::new();
    let config = granted(&ctx);
    let read = reads(&ctx, &config, "list-dir", &["path=/data"]);
    assert_eq!(read["dirs"], json!({ "/data": ["input.csv", "sub"] }), "{read:#}");
    assert!(read.get("files").is_none(), "listing opens no file for reading: {read:#}");
}

#[test]
fn a_file_the_task_wrote_itself_is_not_an_input() {
    let ctx = TestContext::new();
    let config = granted(&ctx);
    // `flaky` reads its marker file, then writes it.
    let read = reads(&ctx, &config, "flaky", &["marker=/state/marker"]);
    assert!(read.get("files").is_none(), "{read:#}");
    let read = reads(&ctx, &config, "write-file", &["path=/state/out.txt", "text=x"]);
    assert!(read.get("files").is_none(), "{read:#}");
    // The same file, only read, is one.
    let read = reads(&ctx, &config, "read-file", &["path=/state/marker"]);
    // Two attempts of `flaky` wrote "x", then "xx".
    assert_eq!(read["files"]["/state/marker"], blake3_hex(b"xx"), "{read:#}");
}

#[test]
fn the_environment_and_the_clock_are_seen_and_a_pure_task_reads_nothing() {
    let mut ctx = TestContext::new();
    ctx.env("GREETING", "hello");
    let config = granted(&ctx);
    assert_eq!(reads(&ctx, &config, "read-env", &[]), json!({ "env": { "GREETING": blake3_hex(b"hello") } }));
    assert_eq!(reads(&ctx, &config, "now", &[])["wall_clock"], true);
    assert_eq!(reads(&ctx, &config, "add-one", &["x=1"]), Json::Null, "a pure task has no read set");
}

/// `cachehost call hostile.wasm now` (no arguments, so INPUTS gives no key) under `config`
/// with `determinism` and `policy`, persisted: its output.
fn now_under(ctx: &TestContext, config: &Path, determinism: &str, policy: &str) -> std::process::Output {
    let text = std::fs::read_to_string(config).unwrap();
    let text = format!("[settings]\ndeterminism = \"{determinism}\"\n{text}[tasks.now]\ncache_policy = \"{policy}\"\npersist_result = true\n");
    let config = config.with_file_name(format!("now-{determinism}.toml"));
    std::fs::write(&config, text).unwrap();
    let hostile = example("hostile");
    ctx.command(&["call", hostile.to_str().unwrap(), "now", "--config", config.to_str().unwrap(), "--json"])
        .output()
        .unwrap()
}

#[test]
fn a_cached_task_that_reads_the_clock_warns_once_and_deny_fails_it() {
    let ctx = TestContext::new();
    let config = granted(&ctx);
    // warn: a WARNING naming what was read, and the result is cached.
    let warned = now_under(&ctx, &config, "warn", "TASK_SOURCE");
    let stderr = String::from_utf8_lossy(&warned.stderr);
    assert_eq!(warned.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.matches("WARNING").count(), 1, "{stderr}");
    assert!(stderr.contains("read the wall clock, which its cache policy TASK_SOURCE does not cover"), "{stderr}");
    assert!(stderr.contains("may be stale"), "{stderr}");
    let report: Json = serde_json::from_slice(&warned.stdout).unwrap();
    assert_eq!(report["task_runs"][0]["persisted"], true);

    // deny: the run fails before anything is cached, and says why.
    let denied_ctx = TestContext::new();
    let config = granted(&denied_ctx);
    let denied = now_under(&denied_ctx, &config, "deny", "TASK_SOURCE");
    let report: Json = serde_json::from_slice(&denied.stdout).unwrap();
    let run = &report["task_runs"][0];
    assert_eq!(run["state"]["name"], "Failed", "{run:#}");
    assert!(run["state"]["message"].as_str().unwrap().contains("determinism = \"deny\""), "{run:#}");
    assert_eq!(run["persisted"], false);
    assert!(!denied_ctx.storage().exists() || std::fs::read_dir(denied_ctx.storage()).unwrap().next().is_none());

    // A policy with RUN_ID covers the clock: no warning, no refusal.
    let run_id = now_under(&denied_ctx, &config, "deny", "TASK_SOURCE + RUN_ID");
    assert_eq!(run_id.status.code(), Some(0), "{}", String::from_utf8_lossy(&run_id.stderr));
    assert!(!String::from_utf8_lossy(&run_id.stderr).contains("WARNING"));
    // off checks nothing.
    let off = now_under(&TestContext::new(), &config, "off", "TASK_SOURCE");
    assert!(!String::from_utf8_lossy(&off.stderr).contains("WARNING"));
}

/// A language runtime's own reads are not the task's: Python reads random on an instance's
/// first call and its logging stamps records with the wall clock, yet `greet`, which logs a
/// line, reads nothing in any of the four languages, so the determinism guard stays quiet.
#[test]
fn a_pure_task_that_logs_reads_nothing_in_every_language() {
    for component in ["poly-rust", "poly-py", "poly-js", "poly-c"] {
        let ctx = TestContext::new();
        let wasm = example(component);
        let output =
            ctx.command(&["call", wasm.to_str().unwrap(), "greet", "--arg", "name=\"x\"", "--json"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("greeting x"), "{component}: {stderr}");
        assert!(!stderr.contains("WARNING"), "{component}: {stderr}");
        let report: Json = serde_json::from_slice(&output.stdout).unwrap();
        let reads = &report["task_runs"][0]["reads"];
        assert!(reads.is_null() || reads == &json!({ "monotonic_clock": true }), "{component}: {reads:#}");
    }
}

/// `granted`'s cachehost.toml with `[tasks.<task>]` keyed on `policy` and persisted.
fn keyed_on(ctx: &TestContext, task: &str, policy: &str) -> PathBuf {
    let config = granted(ctx);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}[tasks.{task}]\ncache_policy = \"{policy}\"\npersist_result = true\n"))
        .unwrap();
    config
}

/// The state name of the one task run of `cachehost call hostile.wasm TASK ARGS...`, and its stderr.
fn state_of(ctx: &TestContext, config: &Path, task: &str, args: &[&str]) -> (String, String) {
    let hostile = example("hostile");
    let mut all = vec!["call", hostile.to_str().unwrap(), task, "--config", config.to_str().unwrap(), "--json"];
    for arg in args {
        all.extend(["--arg", arg]);
    }
    let output = ctx.command(&all).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report: Json = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    (report["task_runs"][0]["state"]["name"].as_str().unwrap().to_owned(), stderr)
}

#[test]
fn an_edited_file_is_a_miss_and_restoring_it_hits_the_original_record() {
    let ctx = TestContext::new();
    let config = keyed_on(&ctx, "read-file", "INPUTS + READS");
    let input = ctx.dir.path().join("data/input.csv");
    let call = || state_of(&ctx, &config, "read-file", &["path=/data/input.csv"]);
    assert_eq!(call().0, "Completed");
    assert_eq!(call().0, "Cached");

    std::fs::write(&input, "a,b\n1,3\n").unwrap();
    let hostile = example("hostile");
    let explain = ctx.stdout(
        &[
            "cache",
            "explain",
            hostile.to_str().unwrap(),
            "read-file",
            "--arg",
            "path=/data/input.csv",
            "--config",
            config.to_str().unwrap(),
        ],
        0,
    );
    assert!(explain.contains("READS: /data/input.csv changed"), "{explain}");
    let (state, stderr) = call();
    assert_eq!(state, "Completed", "an edited input is a miss: {stderr}");
    assert!(stderr.contains("READS: /data/input.csv changed since the cache record"), "{stderr}");
    assert_eq!(call().0, "Cached");

    std::fs::write(&input, "a,b\n1,2\n").unwrap();
    let (state, stderr) = call();
    assert_eq!(state, "Cached", "the original content hits the original record: {stderr}");
    let output = ctx.run(&[
        "call",
        hostile.to_str().unwrap(),
        "read-file",
        "--config",
        config.to_str().unwrap(),
        "--arg",
        "path=/data/input.csv",
    ]);
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), r#"{"ok":"a,b\n1,2\n"}"#);
}

#[test]
fn a_listed_folder_gaining_a_file_is_a_miss() {
    let ctx = TestContext::new();
    let config = keyed_on(&ctx, "list-dir", "INPUTS + READS");
    let call = || state_of(&ctx, &config, "list-dir", &["path=/data"]);
    assert_eq!(call().0, "Completed");
    assert_eq!(call().0, "Cached");
    std::fs::write(ctx.dir.path().join("data/new.csv"), "x").unwrap();
    let (state, stderr) = call();
    assert_eq!(state, "Completed", "{stderr}");
    assert!(stderr.contains("READS: the listing of /data changed"), "{stderr}");
}

#[test]
fn without_reads_an_edited_file_still_hits() {
    let ctx = TestContext::new();
    let config = keyed_on(&ctx, "read-file", "INPUTS");
    let call = || state_of(&ctx, &config, "read-file", &["path=/data/input.csv"]);
    assert_eq!(call().0, "Completed");
    std::fs::write(ctx.dir.path().join("data/input.csv"), "changed").unwrap();
    assert_eq!(call().0, "Cached", "INPUTS alone does not see the file (the gap READS closes)");
}

#[test]
fn a_changed_environment_variable_is_a_miss() {
    let mut ctx = TestContext::new();
    ctx.env("GREETING", "hello");
    let config = keyed_on(&ctx, "read-env", "TASK_SOURCE + READS");
    assert_eq!(state_of(&ctx, &config, "read-env", &[]).0, "Completed");
    assert_eq!(state_of(&ctx, &config, "read-env", &[]).0, "Cached");
    ctx.env("GREETING", "bonjour");
    let (state, stderr) = state_of(&ctx, &config, "read-env", &[]);
    assert_eq!(state, "Completed", "{stderr}");
    assert!(stderr.contains("READS: the environment variable GREETING changed"), "{stderr}");
}

/// `key_on_reads = true` is READS added to the task's policy, on a read-write grant too.
#[test]
fn key_on_reads_adds_reads_to_the_policy_on_a_read_write_grant() {
    let ctx = TestContext::new();
    let config = keyed_on(&ctx, "read-file", "INPUTS");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}key_on_reads = true\n")).unwrap();
    let hostile = example("hostile");
    let inspect = ctx.stdout(&["inspect", hostile.to_str().unwrap(), "--config", config.to_str().unwrap()], 0);
    assert!(inspect.contains("INPUTS + READS"), "{inspect}");

    let state = ctx.dir.path().join("state/notes.txt");
    std::fs::write(&state, "first").unwrap();
    let call = || state_of(&ctx, &config, "read-file", &["path=/state/notes.txt"]);
    assert_eq!(call().0, "Completed");
    assert_eq!(call().0, "Cached");
    std::fs::write(&state, "second").unwrap();
    let (state_name, stderr) = call();
    assert_eq!(state_name, "Completed", "{stderr}");
    assert!(stderr.contains("READS: /state/notes.txt changed"), "{stderr}");
}

/// READS with S3 result storage (moto), and a second machine: a read set names guest paths,
/// so the other machine checks it against its own grant, a folder elsewhere holding the same
/// file; an edited file there is a miss, and restoring it hits the record written before.
#[test]
fn reads_records_on_s3_are_checked_against_each_machines_own_grant() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = cachehost_tests::servers::S3Server::start(dir.path());
    s3.create_bucket("shared");
    let machine = || {
        let ctx = TestContext::new();
        let config = keyed_on(&ctx, "read-file", "INPUTS + READS");
        let text = std::fs::read_to_string(&config).unwrap();
        let table = crate::shared_cache::s3_table(&s3);
        std::fs::write(&config, format!("{table}{text}result_storage = \"s3://shared/cache\"\n")).unwrap();
        (ctx, config)
    };
    let (a, a_config) = machine();
    let (b, b_config) = machine();
    assert_ne!(a.dir.path(), b.dir.path());
    let call = |ctx: &TestContext, config: &Path| state_of(ctx, config, "read-file", &["path=/data/input.csv"]);
    assert_eq!(call(&a, &a_config).0, "Completed");
    assert_eq!(call(&b, &b_config).0, "Cached", "the same file in B's own grant");
    std::fs::write(b.dir.path().join("data/input.csv"), "b's edit").unwrap();
    let (state, stderr) = call(&b, &b_config);
    assert_eq!(state, "Completed", "{stderr}");
    assert!(stderr.contains("READS: /data/input.csv changed"), "{stderr}");
    std::fs::write(b.dir.path().join("data/input.csv"), "a,b\n1,2\n").unwrap();
    assert_eq!(call(&b, &b_config).0, "Cached", "restored: the record written before the edit, on S3");
}

/// Every record keeps what its run read (record format 5), READS or not: `cache show` prints
/// it, and `--json` has it.
#[test]
fn cache_show_prints_what_the_run_that_wrote_a_record_read() {
    let ctx = TestContext::new();
    let config = keyed_on(&ctx, "read-file", "INPUTS");
    let hostile = example("hostile");
    let report = ctx.report(
        &[
            "call",
            hostile.to_str().unwrap(),
            "read-file",
            "--config",
            config.to_str().unwrap(),
            "--arg",
            "path=/data/input.csv",
        ],
        0,
    );
    let key = report.task_runs()[0]["cache_key"].as_str().unwrap().to_owned();
    let shown = ctx.stdout(&["cache", "show", &key], 0);
    let digest = blake3_hex(b"a,b\n1,2\n");
    assert!(shown.contains("reads\n") && shown.contains("file /data/input.csv") && shown.contains(&digest), "{shown}");
    let json: Json = serde_json::from_str(&ctx.stdout(&["cache", "show", &key, "--json"], 0)).unwrap();
    assert_eq!(json["reads"], json!([["file /data/input.csv", digest]]), "{json:#}");
}
