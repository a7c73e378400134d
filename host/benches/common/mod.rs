//! What the benchmarks share: the example components, a session on a throw-away home, a
//! folder kept between runs for what is slow to build (compiled components, big stores),
//! homes for the stores that misses write, and the records of the store benchmarks.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cachehost::engine::{Engine, EngineOptions};
use cachehost::log::{Level, Logger};
use cachehost::run::Session;
use cachehost::settings::{ConfigFile, Settings};
use cachehost::store::{record, LocalStore, RecordMeta, ResultStore};
use cachehost::value::{Ty, Value};

/// A built example component: `$CACHEHOST_EXAMPLES/<name>.wasm`, else `build/examples/`
/// of the workspace (`make examples` builds them; `make bench` does it first).
pub fn example(name: &str) -> PathBuf {
    let dir = std::env::var_os("CACHEHOST_EXAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/examples"));
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} is missing; run `make examples` first", path.display());
    path
}

/// The folder kept between benchmark runs: `$CACHEHOST_BENCH_DIR`, else
/// `<target dir>/cachehost-bench`.
pub fn kept_dir() -> PathBuf {
    let dir = match std::env::var_os("CACHEHOST_BENCH_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
            target.join("cachehost-bench")
        }
    };
    std::fs::create_dir_all(&dir).expect("create the benchmark folder");
    dir
}

/// Where [`miss_home`] puts its homes: on the disk (the kept folder) or on tmpfs.
fn scratch_root(on_tmpfs: bool) -> PathBuf {
    if on_tmpfs {
        PathBuf::from("/dev/shm/cachehost-bench-scratch")
    } else {
        kept_dir().join("scratch")
    }
}

/// Empties both scratch folders: call it when a benchmark process starts. `make bench` also
/// does it once every benchmark has run.
pub fn clear_scratch() {
    for on_tmpfs in [false, true] {
        let _ = std::fs::remove_dir_all(scratch_root(on_tmpfs));
    }
}

/// A new, empty home for a benchmark that writes many records, on tmpfs or on the disk. It
/// is not deleted when the benchmark ends, but by the next [`clear_scratch`]: on an ext4 file
/// system without a journal (this machine's), every file created in the five minutes after
/// many files were deleted costs 0.5 to 1 ms instead of 35 µs (the allocator skips inodes it
/// freed recently), so deleting one sample's records would slow the next sample down.
pub fn miss_home(on_tmpfs: bool) -> PathBuf {
    let root = scratch_root(on_tmpfs);
    std::fs::create_dir_all(&root).expect("create the scratch folder");
    tempfile::Builder::new().prefix("home-").tempdir_in(root).expect("create a scratch home").keep()
}

/// A session running `component` with its home in `home`, log lines written to /dev/null
/// (formatted as in a real run), and `config` as its cachehost.toml.
pub fn session(home: &Path, component: &Path, config: Option<&str>, concurrency: usize) -> Arc<Session> {
    // The compiled cache is kept, so a session loads as on a warm start.
    let engine = Engine::new(Some(kept_dir().join("compiled")), EngineOptions::default()).expect("engine");
    session_on(engine, home, component, config, concurrency)
}

/// [`session`] on a given engine.
pub fn session_on(
    engine: Engine,
    home: &Path,
    component: &Path,
    config: Option<&str>,
    concurrency: usize,
) -> Arc<Session> {
    let config =
        config.map(|text| ConfigFile::parse(text, &home.join("cachehost.toml")).expect("a valid cachehost.toml"));
    let home_text = home.display().to_string();
    let storage = std::env::var("CACHEHOST_BENCH_STORAGE").ok();
    let env = |name: &str| match name {
        "CACHEHOST_HOME" => Some(home_text.clone()),
        "CACHEHOST_LOCAL_STORAGE_PATH" => storage.clone(),
        _ => None,
    };
    let settings = Settings::load(env, config.as_ref()).expect("settings");
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null").expect("open /dev/null");
    let logger = Arc::new(Logger::to_writer(Level::Info, Box::new(null)));
    Session::load(
        engine,
        settings,
        config,
        logger,
        &[component.to_owned()],
        cachehost::link::Providers::Required,
        concurrency,
    )
    .expect("load the component")
}

/// Runs the flow named `flow` with `parameters` and checks that it completed.
pub fn run_flow(session: &Arc<Session>, flow: &str, parameters: Vec<Value>) {
    let index = session.components[0].flows.iter().position(|f| f.function == flow).expect("the flow exists");
    let outcome = session.run_flow(index, parameters);
    assert!(outcome.completed, "flow {flow} failed: {:?}", outcome.report.state);
}

/// How many task instances the session created (executed task runs).
pub fn task_instances(session: &Session) -> u64 {
    session.report(None).instantiations.tasks
}

/// `repeat(n, start, distinct)` of the bench example.
pub fn repeat(n: u32, start: i64, distinct: bool) -> Vec<Value> {
    vec![Value::U32(n), Value::S64(start), Value::Bool(distinct)]
}

/// `sized(size, seed, n)` of the bench example.
pub fn sized(size: u64, seed: u8, n: u32) -> Vec<Value> {
    vec![Value::U64(size), Value::U8(seed), Value::U32(n)]
}

/// The key of record `i`: a BLAKE3 hex digest, as INPUTS keys are.
pub fn key(i: u64) -> String {
    blake3::hash(&i.to_le_bytes()).to_hex().to_string()
}

/// The bytes of record `i`, expiring at `expiration_ms` (none: never).
pub fn record_bytes(i: u64, expiration_ms: Option<i64>) -> Vec<u8> {
    let value_bytes = record::encode_value(&Value::S64(i as i64));
    let meta = RecordMeta::new(
        key(i),
        "example:bench/tasks#add-one".into(),
        "0".repeat(64),
        vec![],
        0,
        expiration_ms,
        Ty::S64,
        &value_bytes,
    );
    record::encode(&meta, &value_bytes)
}

/// Writes records 0..n into a local store at `root`.
pub fn build(root: &Path, n: u64, expiration_ms: Option<i64>) {
    let store = LocalStore::open(root).unwrap();
    for i in 0..n {
        store.write(&key(i), &record_bytes(i, expiration_ms)).unwrap();
    }
}
