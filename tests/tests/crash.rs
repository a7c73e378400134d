//! A transaction commit survives SIGKILL: each transaction is either fully visible or not
//! at all after the next start, and no record is corrupt (DESIGN §6).

use std::process::Stdio;
use std::time::Duration;

use cachehost_tests::{example, TestContext};

/// A small deterministic generator, so a failing run can be repeated.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

#[test]
fn sigkill_during_commits_leaves_every_transaction_all_or_nothing() {
    let kills: u64 = std::env::var("CACHEHOST_CRASH_KILLS").ok().and_then(|n| n.parse().ok()).unwrap_or(50);
    let mut ctx = TestContext::new();
    let home = ctx.dir.path().join("home");
    ctx.env("CACHEHOST_HOME", home.to_str().unwrap());
    let path = example("transactions");
    let path = path.to_str().unwrap();
    // Warm the compiled cache, so kills land in the flow run rather than in compiling.
    assert!(ctx.run(&["inspect", path]).status.success());
    // Slow each multi-record commit down so kills land inside it too.
    ctx.env("CACHEHOST_DEBUG_COMMIT_PAUSE_MS", "15");
    // Time one whole run: the commit is its last ~90 ms (6 records, 15 ms apart), so kills
    // are spread over a window around it.
    let timed = std::time::Instant::now();
    ctx.report(&["run", path, "--flow", "batch", "--param", "start=-100", "--param", "count=6"], 0);
    let whole = timed.elapsed().as_millis() as u64;
    let window_start = whole.saturating_sub(400);
    let mut rng = Lcg(0x5eed);
    let (mut all, mut none, mut recovered) = (0, 0, 0);
    for round in 0..kills {
        let start = (round * 100).to_string();
        let start_param = format!("start={start}");
        let mut child = ctx
            .command(&["run", path, "--flow", "batch", "--param", &start_param, "--param", "count=6"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(window_start + rng.next(450)));
        let _ = child.kill();
        child.wait().unwrap();
        // The next start recovers or discards the interrupted commit, then looks the
        // records up: all six Cached (it was committed) or all six Completed (it was not).
        let report = ctx.report(&["run", path, "--flow", "batch", "--param", &start_param, "--param", "count=6"], 0);
        let states = report.states();
        assert!(!report.stderr.contains("unreadable"), "a corrupt record after a kill:\n{}", report.stderr);
        if report.stderr.contains("Completed a transaction commit interrupted earlier") {
            recovered += 1;
        }
        if states.iter().all(|s| s == "Cached") {
            all += 1;
        } else {
            assert!(
                states.iter().all(|s| s == "Completed"),
                "round {round}: a transaction was half visible: {states:?}"
            );
            none += 1;
        }
    }
    assert_eq!(all + none, kills);
    // No journal or temp file is left behind.
    let leftovers: Vec<_> =
        std::fs::read_dir(home.join("txn")).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    eprintln!("{kills} kills: {all} transactions fully visible ({recovered} of them completed from the journal at the next start), {none} not at all");
}
