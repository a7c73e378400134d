//! Crash safety (DESIGN §5, §9): the host killed with SIGKILL at random moments while it
//! writes records never leaves a record that reads as corrupt or wrong, and the next run
//! removes the temporary files it left; corrupt records and compiled-cache entries are
//! misses with a WARNING (records) or a recompile (compiled components), never a crash or a
//! wrong value.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use cachehost::store::record::{self, RecordMeta};
use cachehost::value::{Ty, Value};
use cachehost_tests::{example, TestContext};

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            if entry.file_type().unwrap().is_dir() {
                folders.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    files
}

/// The compiled-cache entries in `dir` (not the remembered digests beside them).
fn compiled_entries(dir: &Path) -> Vec<PathBuf> {
    files_under(dir).into_iter().filter(|p| p.extension().is_some_and(|e| e == "chc1")).collect()
}

fn temp_files(dir: &Path) -> usize {
    files_under(dir).iter().filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".tmp-")).count()
}

/// Default scale fits a debug test run (about 30 s: 30 kills of runs of 200 calls); `CACHEHOST_KILL_TEST_FULL=1`
/// runs the scale: 200 kills of runs of 1,000 task calls.
#[test]
fn sigkill_at_random_moments_never_leaves_a_corrupt_or_wrong_record() {
    let full = std::env::var_os("CACHEHOST_KILL_TEST_FULL").is_some();
    let (kills, calls) = if full { (200, 1000) } else { (30, 200) };
    let size = "size=4096";
    let count = format!("count={calls}");
    let ctx = TestContext::new();
    let hostile = example("hostile");
    let hostile = hostile.to_str().unwrap();
    // Warm the compiled cache (without writing a record), so kills land while records are written.
    assert!(ctx.run(&["inspect", hostile]).status.success());

    let mut rng: u64 = 0x6b69_6c6c;
    let mut dead_pid = 0;
    for kill in 0..kills {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let salt = format!("salt={kill}");
        // Every call rewrites its record (refresh), with content that differs per run.
        let mut child = ctx
            .command(&[
                "run", hostile, "--flow", "churn", "--param", "start=0", "--param", &count, "--param", &salt,
                "--param", size,
            ])
            .env("CACHEHOST_TASKS_REFRESH_CACHE", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(50 + rng % 1500));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        dead_pid = child.id();
    }
    let strays = temp_files(&ctx.storage());
    let records = files_under(&ctx.storage()).len() - strays;
    eprintln!("{kills} kills: {records} records, {strays} temporary files left by killed writers");
    assert!(records > 0, "the killed runs wrote records");
    // A kill rarely lands inside a write of a few microseconds: leave what one leaves, a
    // partial record under a temporary name of a killed writer, in the root and a sub-folder.
    let partial = &std::fs::read(files_under(&ctx.storage())[0].clone()).unwrap()[..100];
    std::fs::write(ctx.storage().join(format!(".tmp-{dead_pid}-0123456789abcdef")), partial).unwrap();
    std::fs::create_dir_all(ctx.storage().join("sub")).unwrap();
    std::fs::write(ctx.storage().join(format!("sub/.tmp-{dead_pid}-fedcba9876543210")), partial).unwrap();

    // Every record reads back as a hit holding a value that checks out, or is a plain miss.
    let report = ctx.report(
        &[
            "run",
            hostile,
            "--flow",
            "churn",
            "--param",
            "start=0",
            "--param",
            &count,
            "--param",
            "salt=4242",
            "--param",
            size,
        ],
        0,
    );
    assert_eq!(report.result(), 0, "no value read back was wrong");
    for run in report.task_runs() {
        let state = run["state"]["name"].as_str().unwrap();
        assert!(state == "Cached" || state == "Completed", "{run:#}");
    }
    let cached = report.states().iter().filter(|s| *s == "Cached").count();
    assert_eq!(cached, records.min(calls), "every record written is a hit");
    assert!(!report.stderr.contains("unreadable"), "no record is corrupt:\n{}", report.stderr);
    assert_eq!(temp_files(&ctx.storage()), 0, "the next run removed the killed writers' temporary files");
}

/// The one record of a fresh store after `call hostile.wasm add-one x=41`.
fn record_of_add_one(ctx: &TestContext) -> PathBuf {
    let report = ctx.report(&["call", example("hostile").to_str().unwrap(), "add-one", "--arg", "x=41"], 0);
    assert_eq!(report.task_runs()[0]["persisted"], true);
    let files = files_under(&ctx.storage());
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn a_corrupt_record_is_a_miss_with_a_warning_then_rewritten() {
    type Corruption = fn(&mut Vec<u8>);
    let corruptions: [(&str, Corruption, &str); 5] = [
        ("truncated", |b| b.truncate(b.len() / 2), "is truncated"),
        ("bit flip in the value", |b| *b.last_mut().unwrap() ^= 0x10, "does not match its digest"),
        ("zeroed", |b| b.iter_mut().for_each(|x| *x = 0), "bad magic"),
        (
            "another type under the key",
            |b| {
                let meta = record::decode_meta(b).unwrap();
                let value_bytes = record::encode_value(&Value::String("42".into()));
                let swapped = RecordMeta::new(
                    meta.key,
                    meta.task,
                    meta.component_digest,
                    meta.parts,
                    meta.created_ms,
                    None,
                    Ty::String,
                    &value_bytes,
                );
                *b = record::encode(&swapped, &value_bytes);
            },
            "holds a value of type String",
        ),
        (
            "bumped version",
            |b| b[record::MAGIC.len()] += 1,
            &format!("format version {} is not supported", record::FORMAT_VERSION + 1),
        ),
    ];
    let hostile = example("hostile");
    let hostile = hostile.to_str().unwrap();
    for (what, corrupt, reason) in corruptions {
        let ctx = TestContext::new();
        let path = record_of_add_one(&ctx);
        let mut bytes = std::fs::read(&path).unwrap();
        corrupt(&mut bytes);
        std::fs::write(&path, &bytes).unwrap();

        let output = ctx.run(&["call", hostile, "add-one", "--arg", "x=41"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{what}: {stderr}");
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "42", "{what}: the task ran again");
        assert!(
            stderr.contains("WARNING") && stderr.contains("is unreadable") && stderr.contains(reason),
            "{what}:\n{stderr}"
        );
        assert!(stderr.contains("Finished in state Completed()"), "{what}: a miss, not Cached:\n{stderr}");

        let report = ctx.report(&["call", hostile, "add-one", "--arg", "x=41"], 0);
        assert_eq!(report.states(), ["Cached"], "{what}: the record was rewritten");
    }
}

#[test]
fn a_corrupt_compiled_cache_entry_is_recompiled_with_a_warning() {
    type Corruption = fn(&mut Vec<u8>, &[u8]);
    let corruptions: [(&str, Corruption, &str); 5] = [
        ("truncated", |b, _| b.truncate(b.len() / 2), "truncated"),
        (
            "bit flip",
            |b, _| {
                let middle = b.len() / 2;
                b[middle] ^= 0x01
            },
            "do not match their digest",
        ),
        ("zeroed", |b, _| b.iter_mut().for_each(|x| *x = 0), "truncated or not a cachehost compiled-cache entry"),
        ("another component's entry", |b, other| *b = other.to_vec(), "belongs to another component"),
        ("bumped version", |b, _| *b.last_mut().unwrap() += 1, "not a cachehost compiled-cache entry"),
    ];
    let inputs = example("inputs");
    let inputs = inputs.to_str().unwrap();
    let expiration = example("expiration");
    for (what, corrupt, reason) in corruptions {
        let mut ctx = TestContext::new();
        let home = ctx.dir.path().join("home");
        ctx.env("CACHEHOST_HOME", home.to_str().unwrap());
        ctx.report(&["call", inputs, "add-one", "--arg", "x=1"], 0);
        let entries = compiled_entries(&home.join("compiled"));
        assert_eq!(entries.len(), 1, "{entries:?}");
        let mut other = Vec::new();
        if what == "another component's entry" {
            assert!(ctx.run(&["inspect", expiration.to_str().unwrap()]).status.success());
            let donor = compiled_entries(&home.join("compiled")).into_iter().find(|p| *p != entries[0]).unwrap();
            other = std::fs::read(donor).unwrap();
        }

        let mut bytes = std::fs::read(&entries[0]).unwrap();
        corrupt(&mut bytes, &other);
        std::fs::write(&entries[0], &bytes).unwrap();
        let output = ctx.run(&["call", inputs, "add-one", "--arg", "x=1"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{what}: {stderr}");
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "2", "{what}");
        assert!(
            stderr.contains("WARNING") && stderr.contains("is unusable") && stderr.contains(reason),
            "{what}:\n{stderr}"
        );

        let output = ctx.run(&["call", inputs, "add-one", "--arg", "x=1"]);
        assert!(!String::from_utf8_lossy(&output.stderr).contains("unusable"), "{what}: the entry was rewritten");
    }
}
