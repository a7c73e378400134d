//! Key storage (DESIGN §5, reference §6.5): metadata in the key store, values in the result
//! store by content digest; a missing or corrupt value is a miss with a WARNING, not a Failed
//! task as in Prefect (reference §7.4).

use std::fs;
use std::path::{Path, PathBuf};

use cachehost_tests::{example, Report, TestContext};

/// Copies an example into `<test dir>/flow/` next to a cachehost.toml holding `toml`.
fn with_config(ctx: &TestContext, name: &str, toml: &str) -> PathBuf {
    let dir = ctx.dir.path().join("flow");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.wasm"));
    fs::copy(example(name), &path).unwrap();
    fs::write(dir.join("cachehost.toml"), toml).unwrap();
    path
}

fn run(ctx: &TestContext, path: &Path, status: i32) -> Report {
    ctx.report(&["run", path.to_str().unwrap()], status)
}

/// Names of the files directly in `folder`, sorted; none if it does not exist.
fn files(folder: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(folder) else { return Vec::new() };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Every value file under `<storage>/.values`, as paths.
fn value_files(storage: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(shards) = fs::read_dir(storage.join(".values")) {
        for shard in shards.map(|s| s.unwrap()).filter(|s| s.file_type().unwrap().is_dir()) {
            let shard_name = shard.file_name().into_string().unwrap();
            for file in fs::read_dir(shard.path()).unwrap().map(|f| f.unwrap()) {
                let name = file.file_name().into_string().unwrap();
                // Named by the value's hex BLAKE3 digest, in a folder named by its first two digits.
                assert!(name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()), "{name}");
                assert_eq!(shard_name, name[..2]);
                found.push(file.path());
            }
        }
    }
    found.sort();
    found
}

fn distinct_keys(report: &Report) -> Vec<String> {
    let mut keys: Vec<String> = report.keys().into_iter().flatten().collect();
    keys.sort();
    keys.dedup();
    keys
}

#[test]
fn metadata_goes_to_the_key_store_and_values_to_the_result_store_by_digest() {
    let ctx = TestContext::new();
    // A relative key_storage in cachehost.toml is relative to the file's folder.
    let path = with_config(&ctx, "inputs", "[tasks.add-one]\nkey_storage = \"keys\"\n");
    let keys_dir = path.parent().unwrap().join("keys");

    let first = run(&ctx, &path, 0);
    assert_eq!(first.states(), ["Completed", "Cached", "Completed"]);
    assert_eq!(first.result(), &serde_json::json!([2, 2, 3]));
    let keys = distinct_keys(&first);
    assert_eq!(files(&keys_dir), keys, "one key record per key");
    for key in &keys {
        let bytes = fs::read(keys_dir.join(key)).unwrap();
        assert!(bytes.starts_with(b"CHKEY"), "a key record, not a whole record");
    }
    assert_eq!(value_files(&ctx.storage()).len(), 2);
    assert!(files(&ctx.storage()).is_empty(), "no record in the result store itself");

    let second = run(&ctx, &path, 0);
    assert_eq!(second.states(), ["Cached", "Cached", "Cached"]);
    assert_eq!(second.result(), &serde_json::json!([2, 2, 3]));
}

#[test]
fn a_missing_value_is_a_miss_with_a_warning_and_is_written_again() {
    let ctx = TestContext::new();
    let path = with_config(&ctx, "inputs", "[tasks.add-one]\nkey_storage = \"keys\"\n");
    run(&ctx, &path, 0);
    let values = value_files(&ctx.storage());
    for value in &values {
        fs::remove_file(value).unwrap();
    }

    let report = run(&ctx, &path, 0);
    // Prefect fails the task here (reference §7.4); cachehost runs it again.
    assert_eq!(report.states(), ["Completed", "Cached", "Completed"]);
    assert_eq!(report.flow_state(), "Completed");
    assert_eq!(report.result(), &serde_json::json!([2, 2, 3]));
    let warnings: Vec<&str> = report.stderr.lines().filter(|l| l.contains("WARNING")).collect();
    assert_eq!(warnings.len(), 2, "{}", report.stderr);
    for warning in &warnings {
        assert!(warning.contains("is unreadable") && warning.contains("is missing"), "{warning}");
    }
    assert_eq!(value_files(&ctx.storage()), values, "the values are written again");
    assert_eq!(run(&ctx, &path, 0).states(), ["Cached", "Cached", "Cached"]);
}

#[test]
fn a_corrupt_value_is_a_miss_with_a_warning_and_is_overwritten() {
    let ctx = TestContext::new();
    let path = with_config(&ctx, "inputs", "[tasks.add-one]\nkey_storage = \"keys\"\n");
    run(&ctx, &path, 0);
    let values = value_files(&ctx.storage());
    let originals: Vec<Vec<u8>> = values.iter().map(|v| fs::read(v).unwrap()).collect();
    for value in &values {
        let mut bytes = fs::read(value).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        fs::write(value, bytes).unwrap();
    }

    let report = run(&ctx, &path, 0);
    assert_eq!(report.states(), ["Completed", "Cached", "Completed"]);
    assert_eq!(report.result(), &serde_json::json!([2, 2, 3]), "never a wrong value");
    assert!(report.stderr.contains("does not match its digest"), "{}", report.stderr);
    let repaired: Vec<Vec<u8>> = values.iter().map(|v| fs::read(v).unwrap()).collect();
    assert_eq!(repaired, originals);
    assert_eq!(run(&ctx, &path, 0).states(), ["Cached", "Cached", "Cached"]);
}

#[test]
fn two_keys_with_equal_results_share_one_value_file() {
    let ctx = TestContext::new();
    // With INPUTS (not `INPUTS - 'debug'`), add-one(1, false) and add-one(1, true) have two
    // keys but one result, 2; add-one(2, true) returns 3.
    let path =
        with_config(&ctx, "inputs-exclude", "[tasks.add-one]\ncache_policy = \"INPUTS\"\nkey_storage = \"keys\"\n");
    let report = run(&ctx, &path, 0);
    assert_eq!(report.states(), ["Completed", "Completed", "Completed"]);
    assert_eq!(report.result(), &serde_json::json!([2, 2, 3]));
    assert_eq!(distinct_keys(&report).len(), 3);
    assert_eq!(files(&path.parent().unwrap().join("keys")).len(), 3);
    assert_eq!(value_files(&ctx.storage()).len(), 2, "equal results are stored once");
    assert_eq!(run(&ctx, &path, 0).states(), ["Cached", "Cached", "Cached"]);
}

#[test]
fn key_storage_may_be_the_result_storage_folder() {
    let ctx = TestContext::new();
    let storage = ctx.storage();
    let toml = format!("[tasks.add-one]\nkey_storage = {:?}\n", storage.to_str().unwrap());
    let path = with_config(&ctx, "inputs", &toml);
    let first = run(&ctx, &path, 0);
    assert_eq!(first.states(), ["Completed", "Cached", "Completed"]);
    assert_eq!(files(&storage), distinct_keys(&first));
    assert_eq!(value_files(&storage).len(), 2);
    assert_eq!(run(&ctx, &path, 0).states(), ["Cached", "Cached", "Cached"]);
}

/// S3 key storage needs S3 result storage (tests/tests/all/shared_cache.rs covers S3 itself).
#[test]
fn object_key_storage_with_local_results_is_a_clear_error() {
    let ctx = TestContext::new();
    let path = with_config(&ctx, "inputs", "[tasks.add-one]\nkey_storage = \"s3://bucket/keys\"\n");
    let report = run(&ctx, &path, 1);
    assert_eq!(report.states(), ["Failed"]);
    let message = report.task_runs()[0]["state"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"s3://bucket/keys\"")
            && message.contains("key storage on S3 needs its result storage on S3 too"),
        "{message}"
    );
    assert!(!ctx.dir.path().join("flow/s3:").exists(), "no local folder named after the URL");
}

#[test]
fn prune_removes_expired_key_records_then_the_values_only_they_used() {
    let ctx = TestContext::new();
    let path = with_config(&ctx, "inputs", "[tasks.add-one]\nkey_storage = \"keys\"\ncache_expiration = 1\n");
    let keys_dir = path.parent().unwrap().join("keys");
    let keys = keys_dir.to_str().unwrap();
    run(&ctx, &path, 0);
    let values = value_files(&ctx.storage());
    assert_eq!(values.len(), 2);
    // Older than the grace that protects a writer between its value and its key record.
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for value in &values {
        fs::File::options().write(true).open(value).unwrap().set_modified(hour_ago).unwrap();
    }
    let prune = |expected_keys: u64, expected_values: u64| {
        let out = ctx.stdout(&["cache", "prune", "--key-storage", keys, "--json"], 0);
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            (json["removed"].as_u64(), json["values_removed"].as_u64()),
            (Some(expected_keys), Some(expected_values)),
            "{out}"
        );
    };

    prune(0, 0);
    assert_eq!(value_files(&ctx.storage()), values, "values of live keys stay, however old");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    prune(2, 2);
    assert!(files(&keys_dir).is_empty());
    assert!(value_files(&ctx.storage()).is_empty());
    assert_eq!(run(&ctx, &path, 0).states(), ["Completed", "Cached", "Completed"]);
}
