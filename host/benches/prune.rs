//! `cachehost cache prune` of 1,000,000 expired records, whole process (the release
//! binary), timed once: pruning destroys its input, so every run builds a fresh store of
//! a million expired records first (a minute or two; not timed), in the kept benchmark
//! folder, and removes what is left afterwards. Prints one line with the figure.
//!
//! Not a criterion benchmark: ten samples would need ten million records. `CACHEHOST_PRUNE_RECORDS`
//! sets another count.

mod common;

use std::process::{Command, Stdio};
use std::time::Instant;

#[path = "store.rs"]
#[allow(dead_code)]
mod store;

fn main() {
    // `cargo bench -- FILTER` passes arguments: run only when the filter names this bench.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if !args.is_empty() && !args.iter().any(|a| "prune".contains(a.as_str())) {
        return;
    }
    let n: u64 = std::env::var("CACHEHOST_PRUNE_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let home = common::kept_dir().join("prune-home");
    let _ = std::fs::remove_dir_all(&home);
    let started = Instant::now();
    store::build(&home.join("storage"), n, Some(1));
    eprintln!(
        "prune: built {n} expired records in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_cachehost"))
        .args(["cache", "prune"])
        .env("CACHEHOST_HOME", &home)
        .env_remove("CACHEHOST_LOCAL_STORAGE_PATH")
        .stdout(Stdio::null())
        .status()
        .expect("run cachehost cache prune");
    let elapsed = started.elapsed();
    assert!(status.success(), "cachehost cache prune failed: {status}");
    let left = std::fs::read_dir(home.join("storage"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "every expired record was pruned");
    println!(
        "prune/{n}_expired_records: {:.2} s (whole process)",
        elapsed.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&home);
}
