//! `cachehost cache prune` of 1,000,000 expired records, whole process (the release
//! binary), timed once, next to `rm -rf` of an identical store (the cost of deleting the
//! files alone, which no pruning can beat). Pruning destroys its input, so every run builds
//! two fresh stores of a million expired records first (a few minutes; not timed), in the
//! kept benchmark folder, and writes them out to the disk (`sync`) as a store that has been
//! around for more than half a minute is. Prints one line per figure.
//!
//! Not a criterion benchmark: ten samples would need ten million records. `CACHEHOST_PRUNE_RECORDS`
//! sets another count.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    // `cargo bench -- FILTER` passes arguments: run only when the filter names this bench.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if !args.is_empty() && !args.iter().any(|a| "prune".contains(a.as_str())) {
        return;
    }
    let n: u64 = std::env::var("CACHEHOST_PRUNE_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let home = common::kept_dir().join("prune-home");
    let floor = common::kept_dir().join("prune-rm-floor");
    for dir in [&home, &floor] {
        let _ = std::fs::remove_dir_all(dir);
        let started = Instant::now();
        common::build(&dir.join("storage"), n, Some(1));
        eprintln!("prune: built {n} expired records in {} in {:.1} s", dir.display(), started.elapsed().as_secs_f64());
    }
    run("sync", Command::new("sync"));

    let mut prune = Command::new(env!("CARGO_BIN_EXE_cachehost"));
    prune.args(["cache", "prune"]).env("CACHEHOST_HOME", &home).env_remove("CACHEHOST_LOCAL_STORAGE_PATH");
    let pruned = run("cachehost cache prune", prune);
    assert_eq!(entries(&home.join("storage")), 0, "every expired record was pruned");
    let mut rm = Command::new("rm");
    rm.arg("-rf").arg(floor.join("storage"));
    let removed = run("rm -rf", rm);
    println!(
        "prune/{n}_expired_records: {:.2} s (whole process); rm -rf of the same records: {:.2} s ({:.2}x)",
        pruned.as_secs_f64(),
        removed.as_secs_f64(),
        pruned.as_secs_f64() / removed.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&home);
    let _ = std::fs::remove_dir_all(&floor);
}

/// Runs `command` to success, its output discarded; returns how long it took.
fn run(what: &str, mut command: Command) -> Duration {
    let started = Instant::now();
    let status = command.stdout(Stdio::null()).status().unwrap_or_else(|e| panic!("run {what}: {e}"));
    assert!(status.success(), "{what} failed: {status}");
    started.elapsed()
}

/// How many entries the folder has (none if it is gone).
fn entries(folder: &Path) -> usize {
    std::fs::read_dir(folder).map(|d| d.count()).unwrap_or(0)
}
