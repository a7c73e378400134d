//! One cache shared by machines (DESIGN §5, §6): results and keys in S3-compatible storage,
//! SERIALIZABLE leases in Redis. Each test starts its own moto_server and redis-server (see
//! tests/servers.rs), and each "machine" is a `cachehost` process with a home of its own.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use cachehost_tests::servers::{RedisServer, S3Server};
use cachehost_tests::{example, wait_until, Report, TestContext};
use serde_json::Value as Json;

const BUCKET: &str = "shared";

/// A copy of the `concurrency` example beside a cachehost.toml holding `toml`.
fn flow(dir: &Path, toml: &str) -> PathBuf {
    let dir = dir.join("flow");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("concurrency.wasm");
    std::fs::copy(example("concurrency"), &path).unwrap();
    std::fs::write(dir.join("cachehost.toml"), toml).unwrap();
    path
}

/// The `[s3]` table for `s3`, with short timeouts.
pub(crate) fn s3_table(s3: &S3Server) -> String {
    format!(
        "[s3]\nendpoint = \"{}\"\nallow_http = true\nregion = \"us-east-1\"\naccess_key_id = \"testing\"\n\
         secret_access_key = \"testing\"\nconnect_timeout = \"1s\"\ntimeout = \"2s\"\n",
        s3.endpoint()
    )
}

/// `slow-add`'s options.
fn slow_add(options: &str) -> String {
    format!("[tasks.slow-add]\n{options}\n")
}

/// A machine: a context with a home (compiled components, value copies) of its own.
fn machine() -> TestContext {
    let mut ctx = TestContext::new();
    let home = ctx.dir.path().join("home");
    ctx.env("CACHEHOST_HOME", home.to_str().unwrap());
    ctx
}

/// `cachehost call <flow> slow-add --arg x=<x> --arg ms=<ms>`, with `--json`.
fn call(ctx: &TestContext, path: &Path, x: i64, ms: u64, status: i32) -> Report {
    ctx.report(
        &["call", path.to_str().unwrap(), "slow-add", "--arg", &format!("x={x}"), "--arg", &format!("ms={ms}")],
        status,
    )
}

fn spawn_call(ctx: &TestContext, path: &Path, x: i64, ms: u64) -> Child {
    ctx.command(&[
        "call",
        path.to_str().unwrap(),
        "slow-add",
        "--arg",
        &format!("x={x}"),
        "--arg",
        &format!("ms={ms}"),
        "--json",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap()
}

/// Waits for a spawned `--json` run and parses its report, asserting its exit status. A run
/// that does not end fails the test after the hang guard (its output fits the pipes).
fn finish(mut child: Child, status: i32) -> Report {
    wait_until("the run ending", || child.try_wait().unwrap().is_some());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(status), "stderr:\n{stderr}");
    let json: Json =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("no report ({e}); stderr:\n{stderr}"));
    Report { json, stderr }
}

/// `cachehost cache <args> --json` run in the folder of `path` (whose cachehost.toml says how
/// to reach S3), parsed.
fn cache_json(ctx: &TestContext, path: &Path, args: &[&str]) -> Json {
    let mut all = vec!["cache"];
    all.extend_from_slice(args);
    all.push("--json");
    let output = ctx.command(&all).current_dir(path.parent().unwrap()).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "cachehost {all:?} failed:\n{stderr}");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("not JSON ({e}); stderr:\n{stderr}"))
}

fn requests(report: &Report) -> u64 {
    report.json["object_store_requests"].as_u64().expect("object_store_requests is a number")
}

fn count(states: &[String], name: &str) -> usize {
    states.iter().filter(|s| *s == name).count()
}

/// Log lines of `level` (e.g. "WARNING") in a run's stderr.
fn lines<'a>(stderr: &'a str, level: &str) -> Vec<&'a str> {
    stderr.lines().filter(|l| l.contains(&format!("| {level}"))).collect()
}

#[test]
fn a_task_computed_on_one_machine_is_cached_on_another_with_one_get() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path());
    s3.create_bucket(BUCKET);
    let path = flow(dir.path(), &format!("{}{}", s3_table(&s3), slow_add("result_storage = \"s3://shared/cache\"")));

    let first = call(&machine(), &path, 1, 0, 0);
    assert_eq!(first.states(), ["Completed"]);
    assert_eq!(first.task_runs()[0]["persisted"], true);
    assert_eq!(requests(&first), 2, "a GET that misses, then the PUT");

    let other = machine();
    let second = call(&other, &path, 1, 0, 0);
    assert_eq!(second.states(), ["Cached"]);
    assert_eq!(second.keys(), first.keys());
    assert_eq!(requests(&second), 1, "a hit is exactly one GET");

    // Four calls in one run: one GET, then the record read is served from memory.
    let run = other.report(
        &[
            "run",
            path.to_str().unwrap(),
            "--flow",
            "race",
            "--param",
            "n=4",
            "--param",
            "x=1",
            "--param",
            "ms=0",
            "--concurrency",
            "1",
        ],
        0,
    );
    assert_eq!(run.states(), ["Cached"; 4]);
    assert_eq!(run.result(), &serde_json::json!([2, 2, 2, 2]));
    assert_eq!(requests(&run), 1);
    assert_eq!(run.instantiations("tasks"), 0);
}

#[test]
fn key_storage_on_s3_shares_keys_and_values_and_a_local_value_copy_saves_a_get() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path());
    s3.create_bucket(BUCKET);
    let options = "result_storage = \"s3://shared/results\"\nkey_storage = \"s3://shared/keys\"";
    let path = flow(dir.path(), &format!("{}{}", s3_table(&s3), slow_add(options)));

    let first = call(&machine(), &path, 1, 0, 0);
    assert_eq!(first.states(), ["Completed"]);
    assert_eq!(requests(&first), 3, "a GET that misses, the value's PUT, the key record's PUT");
    let other = machine();
    let second = call(&other, &path, 1, 0, 0);
    assert_eq!(second.states(), ["Cached"]);
    assert_eq!(requests(&second), 2, "the key record, then the value");
    let third = call(&other, &path, 1, 0, 0);
    assert_eq!(third.states(), ["Cached"]);
    assert_eq!(requests(&third), 1, "the value is kept on this machine by its digest");

    let key = first.keys()[0].clone().unwrap();
    let listed = cache_json(&other, &path, &["ls", "--storage", "s3://shared/keys"]);
    let records = listed["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{listed}");
    assert_eq!(records[0]["key"], key.as_str());
}

#[test]
fn two_then_eight_processes_sharing_a_bucket_and_redis_run_the_body_once_under_serializable() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path());
    s3.create_bucket(BUCKET);
    let redis = RedisServer::start();
    let options = format!(
        "result_storage = \"s3://shared/cache\"\nisolation_level = \"SERIALIZABLE\"\nlock_manager = \"{}\"\nlock_acquire_timeout = \"60s\"",
        redis.url()
    );
    let path = flow(dir.path(), &format!("{}{}", s3_table(&s3), slow_add(&options)));
    let machines: Vec<TestContext> = (0..8).map(|_| machine()).collect();
    // Compile the component on every machine first, so the calls start together.
    for m in &machines {
        assert!(m.run(&["inspect", path.to_str().unwrap()]).status.success());
    }

    for (n, x) in [(2, 5), (8, 6)] {
        let children: Vec<Child> = machines[..n].iter().map(|m| spawn_call(m, &path, x, 500)).collect();
        let reports: Vec<Report> = children.into_iter().map(|c| finish(c, 0)).collect();
        let states: Vec<String> = reports.iter().map(|r| r.states()[0].clone()).collect();
        assert_eq!(count(&states, "Completed"), 1, "{n} processes: {states:?}");
        assert_eq!(count(&states, "Cached"), n - 1, "{n} processes: {states:?}");
        let bodies: u64 = reports.iter().map(|r| r.instantiations("tasks")).sum();
        assert_eq!(bodies, 1, "the task body ran once across {n} processes");
    }
    assert_eq!(redis.count_keys("cachehost:lock:*"), 0, "every lease was released");
}

#[test]
fn a_lock_holder_killed_with_sigkill_releases_by_lease_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start();
    let options = format!(
        "isolation_level = \"SERIALIZABLE\"\nlock_manager = \"{}\"\nlock_hold_timeout = \"1s\"\nlock_acquire_timeout = \"60s\"",
        redis.url()
    );
    let path = flow(dir.path(), &slow_add(&options));
    let (a, b) = (machine(), machine());
    let mut holder = a
        .command(&["call", path.to_str().unwrap(), "slow-add", "--arg", "x=9", "--arg", "ms=30000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the holder taking its lock", || redis.count_keys("cachehost:lock:*") == 1);
    holder.kill().unwrap();
    holder.wait().unwrap();
    // A killed holder releases nothing: its key stays, past its lease, for another minute.
    assert_eq!(redis.count_keys("cachehost:lock:*"), 1);
    let report = call(&b, &path, 9, 0, 0);
    // The acquire timeout is far longer than the lease: the next run waited out the lease,
    // took it over, and released it (only the holder deletes the key).
    assert_eq!(report.states(), ["Completed"], "the next run got the lock, and the killed holder wrote nothing");
    assert_eq!(report.instantiations("tasks"), 1);
    assert_eq!(redis.count_keys("cachehost:lock:*"), 0, "the next run took the lease over and released it");
}

#[test]
fn stopping_redis_mid_run_fails_the_next_task_naming_redis_and_its_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = RedisServer::start();
    let options = format!("isolation_level = \"SERIALIZABLE\"\nlock_manager = \"{}\"", redis.url());
    let path = flow(dir.path(), &slow_add(&options));
    let ctx = machine();
    let run = ctx
        .command(&[
            "run",
            path.to_str().unwrap(),
            "--flow",
            "race",
            "--param",
            "n=2",
            "--param",
            "x=3",
            "--param",
            "ms=2000",
            "--concurrency",
            "1",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first task holds its lock and sleeps in its body: Redis goes away now.
    wait_until("the first task taking its lock", || redis.count_keys("cachehost:lock:*") == 1);
    redis.kill();
    let report = finish(run, 1);
    assert_eq!(report.states(), ["Completed", "Failed"]);
    let message = report.task_runs()[1]["state"]["message"].as_str().unwrap();
    let expected = format!("The redis lock manager at 127.0.0.1:{} cannot be used: ", redis.port);
    assert!(message.starts_with(&expected), "{message}");
    let errors = lines(&report.stderr, "ERROR");
    assert!(errors.iter().any(|l| l.contains(&expected)), "{}", report.stderr);
}

#[test]
fn an_s3_server_that_stops_answering_mid_run_gives_one_warning_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s3 = S3Server::start(dir.path());
    s3.create_bucket(BUCKET);
    let path = flow(dir.path(), &format!("{}{}", s3_table(&s3), slow_add("result_storage = \"s3://shared/cache\"")));
    let ctx = machine();
    let kept = call(&ctx, &path, 1, 0, 0);
    assert_eq!(kept.states(), ["Completed"]);
    let kept_key = kept.keys()[0].clone().unwrap();

    let before = s3.requests().len();
    let run = ctx
        .command(&[
            "run",
            path.to_str().unwrap(),
            "--flow",
            "race",
            "--param",
            "n=3",
            "--param",
            "x=2",
            "--param",
            "ms=1500",
            "--concurrency",
            "1",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first task looked its key up and is in its body: the server freezes now.
    wait_until("the first lookup", || s3.requests().len() > before);
    s3.pause();
    let report = finish(run, 0);
    s3.resume();
    assert_eq!(report.states(), ["Completed"; 3], "the tasks ran uncached");
    assert!(report.task_runs().iter().all(|t| t["persisted"] == false));
    let store = format!("S3 object store s3://shared/cache at {}", s3.endpoint());
    let warnings = lines(&report.stderr, "WARNING");
    assert_eq!(warnings.len(), 1, "one warning for the outage:\n{}", report.stderr);
    assert!(warnings[0].contains(&store) && warnings[0].contains("cannot be used"), "{}", warnings[0]);
    let errors = lines(&report.stderr, "ERROR");
    assert_eq!(errors.len(), 3, "each task's record was not written:\n{}", report.stderr);
    assert!(errors.iter().all(|l| l.contains(&store)), "{}", report.stderr);
    // Not a hang: the client's own timeout ended the request the frozen server never answered
    // (the first task's write, or its lookup when the freeze caught the answer in flight).
    assert!(warnings[0].contains("operation timed out"), "{}", warnings[0]);

    // The server is back: the record written before the outage is intact. A PUT the client
    // gave up on may still land once the server goes on, and then it is whole: every record
    // in the bucket is readable.
    let after = call(&machine(), &path, 1, 0, 0);
    assert_eq!(after.states(), ["Cached"]);
    let listed = cache_json(&ctx, &path, &["ls", "--storage", "s3://shared/cache"]);
    assert_eq!(listed["unreadable"], serde_json::json!([]), "{listed}");
    let keys: Vec<&str> = listed["records"].as_array().unwrap().iter().map(|r| r["key"].as_str().unwrap()).collect();
    let outage_key = report.keys()[0].clone().unwrap();
    assert!(keys.contains(&kept_key.as_str()), "{keys:?}");
    assert!(keys.iter().all(|k| *k == kept_key || *k == outage_key), "{keys:?}");

    // A server that is gone (connection refused): the same warning, at once.
    s3.kill();
    let gone = call(&machine(), &path, 1, 0, 0);
    assert_eq!(gone.states(), ["Completed"]);
    let warnings = lines(&gone.stderr, "WARNING");
    assert_eq!(warnings.len(), 1, "{}", gone.stderr);
    assert!(warnings[0].contains(&store), "{}", warnings[0]);
}

#[test]
fn cache_ls_show_rm_and_prune_work_on_the_bucket_configured_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path());
    s3.create_bucket(BUCKET);
    let path = flow(dir.path(), &slow_add("result_storage = \"s3://shared/cache\""));
    let mut ctx = machine();
    for (name, value) in [
        ("AWS_ENDPOINT_URL", s3.endpoint().as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ] {
        ctx.env(name, value);
    }
    let keys: Vec<String> = [1, 2].iter().map(|&x| call(&ctx, &path, x, 0, 0).keys()[0].clone().unwrap()).collect();
    let storage = ["--storage", "s3://shared/cache"];
    let ls = |ctx: &TestContext| -> Vec<String> {
        let out: Json =
            serde_json::from_str(&ctx.stdout(&["cache", "ls", storage[0], storage[1], "--json"], 0)).unwrap();
        assert!(out["storage"].as_str().unwrap().starts_with("s3://shared/cache at http://127.0.0.1:"), "{out}");
        out["records"].as_array().unwrap().iter().map(|r| r["key"].as_str().unwrap().to_owned()).collect()
    };
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(ls(&ctx), sorted);

    let shown: Json =
        serde_json::from_str(&ctx.stdout(&["cache", "show", &keys[0][..12], storage[0], storage[1], "--json"], 0))
            .unwrap();
    assert_eq!(shown["key"], keys[0].as_str());
    assert_eq!(shown["value"], 2);

    let removed: Json =
        serde_json::from_str(&ctx.stdout(&["cache", "rm", &keys[0], storage[0], storage[1], "--json"], 0)).unwrap();
    assert_eq!(removed["removed"], 1);
    assert_eq!(ls(&ctx), [keys[1].clone()]);
    assert_eq!(call(&ctx, &path, 1, 0, 0).states(), ["Completed"], "the removed record is gone");

    // Records of a component that is not among the given ones are pruned.
    let other = example("inputs");
    let pruned: Json = serde_json::from_str(&ctx.stdout(
        &["cache", "prune", "--missing-components", other.to_str().unwrap(), storage[0], storage[1], "--json"],
        0,
    ))
    .unwrap();
    assert_eq!(pruned["removed"], 2, "{pruned}");
    assert!(ls(&ctx).is_empty());
}

/// A transaction's records on S3 are published all-or-nothing as on local storage: the server
/// freezes after the first of three records of a commit; the journal keeps the decided commit
/// and the next start writes the rest.
#[test]
fn a_commit_cut_by_an_s3_outage_is_completed_from_the_journal_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path());
    s3.create_bucket(BUCKET);
    let flow_dir = dir.path().join("txn-flow");
    std::fs::create_dir_all(&flow_dir).unwrap();
    let path = flow_dir.join("transactions.wasm");
    std::fs::copy(example("transactions"), &path).unwrap();
    std::fs::write(
        flow_dir.join("cachehost.toml"),
        format!("{}[tasks.load-data]\nresult_storage = \"s3://shared/txn\"\n", s3_table(&s3)),
    )
    .unwrap();
    let mut ctx = machine();
    let args =
        ["run", path.to_str().unwrap(), "--flow", "batch", "--param", "start=10", "--param", "count=3", "--json"];
    ctx.env("CACHEHOST_DEBUG_COMMIT_PAUSE_MS", "1000");
    let run = ctx.command(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_until("the first record's PUT", || s3.requests().iter().any(|l| l.contains("PUT /shared/txn/")));
    s3.pause();
    let cut = finish(run, 0);
    s3.resume();
    assert_eq!(cut.states(), ["Completed"; 3]);
    let not_yet: Vec<&str> = lines(&cut.stderr, "WARNING")
        .into_iter()
        .filter(|l| l.contains("it will be written at the next start"))
        .collect();
    assert_eq!(not_yet.len(), 2, "{}", cut.stderr);

    let next = ctx.report(&args[..args.len() - 1], 0);
    assert!(next.stderr.contains("Completed a transaction commit interrupted earlier (3 records)"), "{}", next.stderr);
    assert_eq!(next.states(), ["Cached"; 3], "the whole transaction is visible");
}
