//! A flow's tasks on many workers (DESIGN §9a, issue 14): `cachehost run --executor` sends
//! the calls that miss the cache to `cachehost worker` processes over a Redis stream. Each
//! test starts its own redis-server; each worker has a home of its own (so it fetches the
//! components by digest), and all share the flow's result storage folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use cachehost_tests::servers::{RedisServer, S3Server};
use cachehost_tests::{example, wait_until, TestContext};
use serde_json::Value as Json;

/// A worker process and where its log lines go.
struct Worker {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Worker {
    fn start(ctx: &TestContext, redis: &RedisServer, name: &str, extra: &[&str]) -> Worker {
        let log = ctx.dir.path().join(format!("{name}.log"));
        let home = ctx.dir.path().join(format!("home-{name}"));
        let url = redis.url();
        let mut args = vec!["worker", "--queue", &url, "--name", name];
        args.extend_from_slice(extra);
        let child = ctx
            .command(&args)
            .env("CACHEHOST_HOME", &home)
            .stderr(std::fs::File::create(&log).unwrap())
            .stdout(Stdio::null())
            .spawn()
            .expect("a worker starts");
        let worker = Worker { name: name.to_owned(), child, log };
        wait_until(&format!("worker {name} taking calls"), || worker.log().contains("is taking task calls"));
        worker
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The x of every `work` body this worker ran, in order.
    fn bodies(&self) -> Vec<i64> {
        bodies(&self.log())
    }

    fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// SIGTERM, then the exit status once it drained.
    fn stop(mut self) -> (Option<i32>, String) {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code(), self.log());
            }
            assert!(Instant::now() < deadline, "worker {} did not stop after SIGTERM", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The x of every `work body x=<x>` line of a log.
fn bodies(log: &str) -> Vec<i64> {
    log.lines()
        .filter_map(|line| line.split("work body x=").nth(1))
        .map(|x| x.trim().parse().expect("x is a number"))
        .collect()
}

fn concurrency() -> String {
    example("concurrency").to_str().unwrap().to_owned()
}

/// How many record files the storage folder holds (the components folder is not records).
fn records(storage: &Path) -> usize {
    std::fs::read_dir(storage)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().unwrap().is_file() && !e.file_name().to_string_lossy().starts_with('.'))
                .count()
        })
        .unwrap_or(0)
}

/// `cachehost run <args> --json` started in the background.
fn spawn_report(ctx: &TestContext, args: &[&str]) -> Child {
    let mut all = args.to_vec();
    all.push("--json");
    ctx.command(&all).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("cachehost starts")
}

/// The report and stderr of a run from `spawn_report`, asserting its exit status.
fn finish_report(run: Child, status: i32) -> (Json, String) {
    let output = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(status), "{stderr}");
    (serde_json::from_slice(&output.stdout).expect("a JSON report"), stderr)
}

/// A copy of `example` beside a cachehost.toml that reaches `s3`, whose bucket `shared` it
/// creates, and holds `tasks`.
fn in_bucket(ctx: &TestContext, s3: &S3Server, example_name: &str, tasks: &str) -> PathBuf {
    s3.create_bucket("shared");
    let dir = ctx.dir.path().join("flow");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{example_name}.wasm"));
    std::fs::copy(example(example_name), &path).unwrap();
    std::fs::write(dir.join("cachehost.toml"), format!("{}{tasks}", super::shared_cache::s3_table(s3))).unwrap();
    path
}

fn task_runs(report: &Json) -> &Vec<Json> {
    report["task_runs"].as_array().expect("task_runs")
}

fn input_x(run: &Json) -> i64 {
    run["inputs"]["x"].as_i64().expect("the report keeps the inputs")
}

#[test]
fn three_workers_run_300_submitted_calls_each_body_once_and_a_local_run_then_hits_every_record() {
    let ctx = TestContext::new();
    let redis = RedisServer::start();
    let workers: Vec<Worker> =
        ["w1", "w2", "w3"].iter().map(|name| Worker::start(&ctx, &redis, name, &["--concurrency", "4"])).collect();
    let flow = concurrency();
    let executor = redis.url();
    let args = ["run", &flow, "--flow", "fan-out", "--param", "n=300", "--param", "ms=0", "--executor", &executor];
    let report = ctx.report(&args, 0);
    assert_eq!(report.result(), &Json::from((0..300).map(|x| x * 2).sum::<i64>()));
    let runs = task_runs(&report.json);
    assert_eq!(runs.len(), 300);
    assert!(runs.iter().all(|run| run["state"]["name"] == "Completed"), "{}", report.stderr);
    let by_worker = runs.iter().fold(BTreeMap::<String, usize>::new(), |mut counts, run| {
        *counts.entry(run["worker"].as_str().expect("each run names its worker").to_owned()).or_default() += 1;
        counts
    });
    assert!(by_worker.len() >= 2, "the calls were spread over the workers: {by_worker:?}");
    // The flow's log reads as if the tasks ran here: their own lines came back with them.
    assert_eq!(bodies(&report.stderr).len(), 300, "{}", report.stderr);
    assert_eq!(report.stderr.matches("Finished in state Completed()").count(), 301);

    let mut all_bodies = Vec::new();
    for worker in workers {
        let (status, log) = worker.stop();
        assert_eq!(status, Some(0), "a drained worker exits 0:\n{log}");
        assert!(log.contains("stopped"), "{log}");
        all_bodies.extend(bodies(&log));
    }
    all_bodies.sort();
    assert_eq!(all_bodies, (0..300).collect::<Vec<_>>(), "each body ran exactly once");
    assert_eq!(records(&ctx.storage()), 300, "one record per key");

    // A plain local run (no executor) finds every record the workers wrote.
    let local = ctx.report(&["run", &flow, "--flow", "fan-out", "--param", "n=300", "--param", "ms=0"], 0);
    let states: Vec<_> = task_runs(&local.json).iter().map(|run| run["state"]["name"].clone()).collect();
    assert_eq!(states, vec![Json::from("Cached"); 300]);
}

#[test]
fn a_sigkilled_workers_calls_run_again_on_another_worker_as_new_attempts() {
    let ctx = TestContext::new();
    let redis = RedisServer::start();
    let lease = ["--concurrency", "2", "--lease", "1s"];
    let doomed = Worker::start(&ctx, &redis, "doomed", &lease);
    let flow = concurrency();
    let executor = redis.url();
    let run = spawn_report(
        &ctx,
        &["run", &flow, "--flow", "fan-out", "--param", "n=8", "--param", "ms=1500", "--executor", &executor],
    );
    // The doomed worker is inside two bodies when it dies: they never finish there.
    wait_until("the doomed worker running two bodies", || doomed.bodies().len() == 2);
    let killed: Vec<i64> = doomed.bodies();
    doomed.signal("KILL");
    drop(doomed);
    let others = [Worker::start(&ctx, &redis, "w1", &lease), Worker::start(&ctx, &redis, "w2", &lease)];
    let (report, stderr) = finish_report(run, 0);
    let runs = task_runs(&report);
    assert_eq!(runs.len(), 8);
    assert!(runs.iter().all(|run| run["state"]["name"] == "Completed"), "{stderr}");
    for run in runs {
        let x = input_x(run);
        assert_ne!(run["worker"], "doomed");
        if killed.contains(&x) {
            assert_eq!(run["earlier_workers"], serde_json::json!(["doomed"]), "x={x}: {run}");
            assert_eq!(run["attempts"], 2, "the rerun is a new attempt: {run}");
        } else {
            assert!(run.get("earlier_workers").is_none(), "x={x} ran once: {run}");
            assert_eq!(run["attempts"], 1);
        }
    }
    let again = stderr.matches("Worker 'doomed' stopped answering while it ran this call").count();
    assert_eq!(again, 2, "the log says which calls ran again:\n{stderr}");
    let mut ran: Vec<i64> = others.iter().flat_map(Worker::bodies).collect();
    ran.sort();
    assert_eq!(ran, (0..8).collect::<Vec<_>>(), "the others ran every call once, the killed ones again");
    assert_eq!(records(&ctx.storage()), 8);
}

#[test]
fn thirty_two_identical_serializable_calls_across_three_workers_run_one_body() {
    let ctx = TestContext::new();
    let redis = RedisServer::start();
    let dir = ctx.dir.path().join("flow");
    std::fs::create_dir_all(&dir).unwrap();
    let flow = dir.join("concurrency.wasm");
    std::fs::copy(example("concurrency"), &flow).unwrap();
    let toml = format!("[tasks.work]\nisolation_level = \"SERIALIZABLE\"\nlock_manager = \"{}\"\n", redis.url());
    std::fs::write(dir.join("cachehost.toml"), toml).unwrap();
    let workers: Vec<Worker> =
        ["w1", "w2", "w3"].iter().map(|name| Worker::start(&ctx, &redis, name, &["--concurrency", "8"])).collect();
    let executor = redis.url();
    let flow = flow.to_str().unwrap();
    let args = ["run", flow, "--flow", "repeat", "--param", "n=32", "--param", "x=7", "--param", "ms=300"];
    let report = ctx.report(&[&args[..], &["--executor", &executor]].concat(), 0);
    assert_eq!(report.result(), &Json::from(32 * 14));
    let states: Vec<&str> = task_runs(&report.json).iter().map(|run| run["state"]["name"].as_str().unwrap()).collect();
    assert_eq!(states.iter().filter(|s| **s == "Completed").count(), 1, "{states:?}");
    assert_eq!(states.iter().filter(|s| **s == "Cached").count(), 31, "{states:?}");
    let ran: usize = workers.iter().map(|w| w.bodies().len()).sum();
    assert_eq!(ran, 1, "one body across the three workers");
    let used = task_runs(&report.json)
        .iter()
        .filter_map(|run| run["worker"].as_str())
        .collect::<std::collections::BTreeSet<_>>();
    assert!(used.len() >= 2, "the calls went to several workers: {used:?}");
    assert_eq!(redis.count_keys("cachehost:lock:*"), 0, "every lease was released");
    assert_eq!(records(&ctx.storage()), 1);
}

#[test]
fn a_worker_refuses_a_tampered_component_naming_its_digest() {
    let ctx = TestContext::new();
    let redis = RedisServer::start();
    let flow = concurrency();
    let bytes = std::fs::read(&flow).unwrap();
    let digest = blake3::hash(&bytes).to_hex().to_string();
    // The shared copy was changed after it was shared (same length, one byte flipped).
    let mut tampered = bytes.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0xff;
    let shared = ctx.storage().join(".components");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join(&digest), &tampered).unwrap();
    let worker = Worker::start(&ctx, &redis, "w1", &[]);
    let executor = redis.url();
    let report =
        ctx.report(&["run", &flow, "--flow", "chain", "--param", "n=1", "--param", "ms=0", "--executor", &executor], 1);
    let run = &task_runs(&report.json)[0];
    assert_eq!(run["state"]["name"], "Failed");
    let message = run["state"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("component {digest}")), "{message}");
    assert!(message.contains("refusing to run them"), "{message}");
    assert!(worker.log().contains(&digest), "{}", worker.log());
    assert!(worker.bodies().is_empty());
    assert_eq!(records(&ctx.storage()), 0);
    // The worker kept nothing of it: the genuine bytes, once shared, run.
    std::fs::write(shared.join(&digest), &bytes).unwrap();
    let report =
        ctx.report(&["run", &flow, "--flow", "chain", "--param", "n=1", "--param", "ms=0", "--executor", &executor], 0);
    assert_eq!(task_runs(&report.json)[0]["state"]["name"], "Completed");
}

#[test]
fn an_unreachable_redis_at_the_start_exits_2_naming_its_address() {
    let ctx = TestContext::new();
    let port = cachehost_tests::servers::free_port();
    let executor = format!("redis://127.0.0.1:{port}");
    let output = ctx.run(&[
        "run",
        &concurrency(),
        "--flow",
        "chain",
        "--param",
        "n=1",
        "--param",
        "ms=0",
        "--executor",
        &executor,
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.contains("redis-server"), "the error says what to do: {stderr}");
    let worker = ctx.run(&["worker", "--queue", &executor]);
    assert_eq!(worker.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&worker.stderr).contains(&format!("127.0.0.1:{port}")));
}

#[test]
fn with_no_worker_alive_the_flow_says_how_many_calls_are_queued_then_fails_them_at_the_timeout() {
    let ctx = TestContext::new();
    let redis = RedisServer::start();
    let executor = redis.url();
    let args = ["run", &concurrency(), "--flow", "fan-out", "--param", "n=3", "--param", "ms=0"];
    let report = ctx.report(&[&args[..], &["--executor", &executor, "--executor-timeout", "11s"]].concat(), 1);
    assert!(
        report.stderr.contains(&format!(
            "3 task calls are queued on the Redis queue at 127.0.0.1:{}; no worker is alive",
            redis.port
        )),
        "{}",
        report.stderr
    );
    let states: Vec<_> = task_runs(&report.json).iter().map(|run| run["state"]["message"].clone()).collect();
    assert_eq!(states.len(), 3);
    for message in states {
        let message = message.as_str().unwrap();
        assert!(message.contains("no worker answered within 11s on the Redis queue at"), "{message}");
    }
    // The withdrawn calls are gone: a worker started now finds nothing to run.
    let worker = Worker::start(&ctx, &redis, "late", &[]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(worker.bodies().is_empty(), "{}", worker.log());
}

#[test]
fn a_malformed_entry_goes_to_the_dead_letters_and_the_worker_goes_on_and_status_shows_it() {
    let ctx = TestContext::new();
    let redis = RedisServer::start();
    let worker = Worker::start(&ctx, &redis, "w1", &[]);
    assert!(redis.command(&["XADD", "cachehost:calls", "*", "v", "1", "head", "{not json"]).starts_with('$'));
    assert!(redis.command(&["XADD", "cachehost:calls", "*", "v", "9", "head", "{}"]).starts_with('$'));
    wait_until("two dead letters", || redis.command(&["XLEN", "cachehost:calls:dead"]) == ":2");
    let log = worker.log();
    assert!(log.contains("is not a task call (its `head` is not a call"), "{log}");
    assert!(log.contains("its format is \"9\"; this worker reads format 1"), "{log}");

    // It still runs calls, and status shows it running one.
    let executor = redis.url();
    let flow = concurrency();
    let run = ctx
        .command(&["run", &flow, "--flow", "chain", "--param", "n=1", "--param", "ms=2000", "--executor", &executor])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the body running", || !worker.bodies().is_empty());
    let status: Json =
        serde_json::from_str(&ctx.stdout(&["worker", "status", "--queue", &executor, "--json"], 0)).unwrap();
    assert_eq!(status["dead_letters"], 2);
    assert_eq!(status["workers"][0]["name"], "w1");
    assert_eq!(status["workers"][0]["alive"], true);
    assert_eq!(status["workers"][0]["running"][0]["task"], "example:concurrency/tasks#work");
    assert_eq!(status["pending"], 1);
    let text = ctx.stdout(&["worker", "status", "--queue", &executor], 0);
    assert!(text.contains("w1  alive"), "{text}");
    assert!(text.contains("its format is"), "{text}");
    assert_eq!(run.wait_with_output().unwrap().status.code(), Some(0));
    let status: Json =
        serde_json::from_str(&ctx.stdout(&["worker", "status", "--queue", &executor, "--json"], 0)).unwrap();
    assert_eq!(status["pending"], 0);
    assert_eq!(status["queued"], 0);
    assert_eq!(status["workers"][0]["running"], serde_json::json!([]));
}

#[test]
fn sigterm_drains_a_worker_its_running_call_completes_and_it_takes_no_new_one() {
    let ctx = TestContext::new();
    let redis = RedisServer::start();
    let first = Worker::start(&ctx, &redis, "first", &["--concurrency", "1"]);
    let executor = redis.url();
    let flow = concurrency();
    let run = spawn_report(
        &ctx,
        &["run", &flow, "--flow", "fan-out", "--param", "n=2", "--param", "ms=1500", "--executor", &executor],
    );
    wait_until("the first body running", || !first.bodies().is_empty());
    let (status, log) = first.stop();
    assert_eq!(status, Some(0), "{log}");
    assert_eq!(bodies(&log).len(), 1, "the drained worker finished its call and took no other:\n{log}");
    assert!(log.contains("stops: finishing 1 running calls"), "{log}");
    let second = Worker::start(&ctx, &redis, "second", &[]);
    let (report, _) = finish_report(run, 0);
    let workers: Vec<_> = task_runs(&report).iter().map(|run| run["worker"].as_str().unwrap().to_owned()).collect();
    assert_eq!(workers.iter().filter(|w| *w == "first").count(), 1, "{workers:?}");
    assert_eq!(workers.iter().filter(|w| *w == "second").count(), 1, "{workers:?}");
    assert!(task_runs(&report).iter().all(|run| run["attempts"] == 1));
    assert_eq!(second.bodies().len(), 1);
}

#[test]
fn redis_going_away_mid_run_fails_the_pending_calls_naming_redis_and_nothing_is_half_written() {
    let ctx = TestContext::new();
    let mut redis = RedisServer::start();
    let worker = Worker::start(&ctx, &redis, "w1", &["--concurrency", "2"]);
    let executor = redis.url();
    let flow = concurrency();
    let run = spawn_report(
        &ctx,
        &[
            "run",
            &flow,
            "--flow",
            "fan-out",
            "--param",
            "n=4",
            "--param",
            "ms=1500",
            "--executor",
            &executor,
            "--executor-timeout",
            "2s",
        ],
    );
    wait_until("two bodies running", || worker.bodies().len() == 2);
    redis.kill();
    let (report, _) = finish_report(run, 1);
    let runs = task_runs(&report);
    assert_eq!(runs.len(), 4);
    let address = format!("127.0.0.1:{}", redis.port);
    for run in runs {
        assert_eq!(run["state"]["name"], "Failed", "{run}");
        let message = run["state"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("Redis queue at {address}")), "{message}");
    }
    // The two bodies that were running finish and write whole records; nothing else is.
    wait_until("the running bodies finishing", || worker.log().matches("Finished in state Completed()").count() == 2);
    let listed: Json = serde_json::from_str(&ctx.stdout(&["cache", "ls", "--json"], 0)).unwrap();
    assert_eq!(listed["records"].as_array().expect("a list of records").len(), 2, "{listed}");
    assert_eq!(listed["unreadable"], Json::Array(vec![]), "{listed}");
}

#[test]
fn workers_sharing_an_s3_bucket_fetch_the_component_once_shared_and_write_records_a_local_run_then_hits() {
    let ctx = TestContext::new();
    let redis = RedisServer::start();
    let s3 = S3Server::start(ctx.dir.path());
    let flow = in_bucket(&ctx, &s3, "concurrency", "[tasks.work]\nresult_storage = \"s3://shared/cache\"\n");
    let flow = flow.to_str().unwrap();
    let digest = blake3::hash(&std::fs::read(flow).unwrap()).to_hex().to_string();
    let component = format!("/shared/cache/.components/{digest}");

    // The workers know nothing of S3 but what travels with each call.
    let w1 = Worker::start(&ctx, &redis, "w1", &[]);
    let w2 = Worker::start(&ctx, &redis, "w2", &[]);
    let executor = redis.url();
    let fan_out = ["run", flow, "--flow", "fan-out", "--param", "n=20", "--param", "ms=50", "--executor", &executor];
    let report = ctx.report(&fan_out, 0);
    let runs = task_runs(&report.json);
    assert_eq!(runs.len(), 20);
    assert!(runs.iter().all(|run| run["state"]["name"] == "Completed" && run["persisted"] == true), "{runs:?}");
    let workers: Vec<&str> = runs.iter().map(|run| run["worker"].as_str().expect("names its worker")).collect();
    assert!(workers.contains(&"w1") && workers.contains(&"w2"), "{workers:?}");
    let puts = |s3: &S3Server| s3.requests().iter().filter(|r| r.contains(&format!("PUT {component} "))).count();
    assert_eq!(puts(&s3), 1, "the component is shared once");
    let gets = s3.requests().iter().filter(|r| r.contains(&format!("GET {component} "))).count();
    assert_eq!(gets, 2, "each worker fetches it once");
    assert_eq!(w1.bodies().len() + w2.bodies().len(), 20);

    // Again through the workers: the flow's process answers every hit; nothing is shared again.
    let again = ctx.report(&fan_out, 0);
    assert!(task_runs(&again.json).iter().all(|run| run["state"]["name"] == "Cached" && run["worker"].is_null()));
    assert_eq!(puts(&s3), 1);
    // And a plain local run with a home of its own reads the workers' records.
    let mut local = TestContext::new();
    local.env("CACHEHOST_HOME", ctx.dir.path().join("home-local").to_str().unwrap());
    let report = local.report(&["run", flow, "--flow", "fan-out", "--param", "n=20", "--param", "ms=50"], 0);
    assert!(task_runs(&report.json).iter().all(|run| run["state"]["name"] == "Cached"));
    assert_eq!(w1.bodies().len() + w2.bodies().len(), 20);
}

#[test]
fn large_inputs_and_results_travel_through_the_shared_store_checked_by_digest_not_through_redis() {
    let ctx = TestContext::new();
    let redis = RedisServer::start();
    // Redis itself now refuses any field over 1 MiB: a value sent inline would fail the call.
    assert_eq!(redis.command(&["CONFIG", "SET", "proto-max-bulk-len", "1mb"]), "+OK");
    let _worker = Worker::start(&ctx, &redis, "w1", &[]);
    let executor = redis.url();
    let bench = example("bench");
    let bench = bench.to_str().unwrap();
    let size = (4 << 20).to_string();
    let sized = |flow: &str| {
        let args = ["run", bench, "--flow", flow, "--param", &format!("size={size}"), "--param", "seed=7"];
        let mut args = args.to_vec();
        args.extend(["--param", "n=1", "--executor", &executor]);
        ctx.report(&args, 0)
    };
    for flow in ["sized", "sized-result"] {
        let report = sized(flow);
        assert_eq!(report.json["flow_run"]["result"], size.parse::<i64>().unwrap(), "{flow}");
        let runs = task_runs(&report.json);
        assert!(runs.iter().all(|run| run["state"]["name"] == "Completed" && run["worker"] == "w1"), "{runs:?}");
    }
    // The 4 MiB input and result went through the store's `.calls/`, and the flow's process
    // removed each once it had the outcome.
    let calls = ctx.storage().join(".calls");
    assert!(calls.is_dir(), "the calls folder was used");
    assert_eq!(walk(&calls), Vec::<PathBuf>::new(), "nothing is left behind");
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn cache_prune_removes_call_data_a_killed_flow_left_behind_once_a_day_old() {
    let ctx = TestContext::new();
    let calls = ctx.storage().join(".calls");
    std::fs::create_dir_all(&calls).unwrap();
    let old = calls.join("0b1e-inputs");
    let fresh = calls.join("f7e5-inputs");
    std::fs::write(&old, b"left behind").unwrap();
    std::fs::write(&fresh, b"in flight").unwrap();
    let two_days_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
    std::fs::File::options().write(true).open(&old).unwrap().set_modified(two_days_ago).unwrap();
    let pruned: Json = serde_json::from_str(&ctx.stdout(&["cache", "prune", "--json"], 0)).unwrap();
    assert_eq!(pruned["call_data_removed"], 1, "{pruned}");
    assert!(!old.exists());
    assert!(fresh.exists(), "a call in flight keeps its inputs");
    let text = ctx.stdout(&["cache", "prune"], 0);
    assert!(!text.contains("call data"), "nothing more to remove: {text}");
}

#[test]
fn on_s3_large_call_data_is_put_fetched_once_and_deleted_once_the_outcome_is_in() {
    let ctx = TestContext::new();
    let redis = RedisServer::start();
    let s3 = S3Server::start(ctx.dir.path());
    let storage = "result_storage = \"s3://shared/cache\"\npersist_result = true\n";
    let bench = in_bucket(&ctx, &s3, "bench", &format!("[tasks.byte-count]\n{storage}[tasks.filled]\n{storage}"));
    let _worker = Worker::start(&ctx, &redis, "w1", &[]);
    let executor = redis.url();
    let size = (2 << 20).to_string();
    for flow in ["sized", "sized-result"] {
        let args = ["run", bench.to_str().unwrap(), "--flow", flow, "--param", &format!("size={size}"), "--param"];
        let mut args = args.to_vec();
        args.extend(["seed=7", "--param", "n=1", "--executor", &executor]);
        let report = ctx.report(&args, 0);
        assert_eq!(report.json["flow_run"]["result"], size.parse::<i64>().unwrap(), "{flow}");
    }
    let calls: Vec<String> = s3.requests().into_iter().filter(|r| r.contains("/shared/cache/.calls/")).collect();
    let count = |verb: &str, what: &str| calls.iter().filter(|r| r.contains(verb) && r.contains(what)).count();
    assert_eq!(count("PUT ", "-inputs "), 1, "the 2 MiB input went through S3: {calls:#?}");
    assert_eq!(count("GET ", "-inputs "), 1, "{calls:#?}");
    assert_eq!(count("PUT ", "-value "), 1, "the 2 MiB result came back through S3: {calls:#?}");
    assert_eq!(count("GET ", "-value "), 1, "{calls:#?}");
    // object_store deletes through the bulk API (POST ?delete): one per call data object.
    let deletes = s3.requests().iter().filter(|r| r.contains("POST /shared?delete ")).count();
    assert_eq!(deletes, 2, "the input and the value are deleted once the outcome is in");
}

#[test]
fn an_executor_set_in_cachehost_toml_sends_plain_calls_and_their_log_lines_read_as_a_local_runs() {
    let ctx = TestContext::new();
    let redis = RedisServer::start();
    let worker = Worker::start(&ctx, &redis, "w1", &[]);
    let dir = ctx.dir.path().join("flow");
    std::fs::create_dir_all(&dir).unwrap();
    let flow = dir.join("concurrency.wasm");
    std::fs::copy(example("concurrency"), &flow).unwrap();
    std::fs::write(dir.join("cachehost.toml"), format!("[settings]\nexecutor = \"{}\"\n", redis.url())).unwrap();
    let report =
        ctx.report(&["run", flow.to_str().unwrap(), "--flow", "chain", "--param", "n=2", "--param", "ms=0"], 0);
    let runs = task_runs(&report.json);
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|run| run["state"]["name"] == "Completed" && run["worker"] == "w1"), "{runs:?}");
    assert_eq!(worker.bodies().len(), 2);
    // The worker's lines of each task run are the flow's, under the task run's name.
    for run in runs {
        let line = format!("Task run '{}' - Finished in state Completed()", run["name"].as_str().unwrap());
        assert!(report.stderr.contains(&line), "{line} is missing from:\n{}", report.stderr);
    }
}
