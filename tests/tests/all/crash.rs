//! A transaction commit survives SIGKILL: each transaction is either fully visible or not
//! at all after the next start, and no record is corrupt (DESIGN §6).
//!
//! Kills land on events, not on guessed times: most rounds kill while the commit applies its
//! records (its journal is on disk, the records are slowed down by a debug pause), the others
//! once the first task run of the transaction has finished (records staged, no commit yet).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use cachehost_tests::{example, wait_until, TestContext};

/// Records one transaction of the `batch` flow commits.
const RECORDS: u64 = 6;
/// The debug pause before each record of a multi-record commit: a commit takes at least
/// `RECORDS * PAUSE_MS` between its journal appearing and the last record written.
const PAUSE_MS: u64 = 50;
/// One round in this many kills before the commit; the others aim inside it.
const BEFORE_EVERY: u64 = 4;

/// A small deterministic generator, so a failing run can be repeated.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

/// The commit journals in `dir` (`<pid>-<id>.journal`), of process `pid` or of any.
fn journals(dir: &Path, pid: Option<u32>) -> Vec<PathBuf> {
    let prefix = pid.map(|pid| format!("{pid}-")).unwrap_or_default();
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".journal")
        })
        .collect()
}

fn panic_if_exited(child: &mut Child, waiting_for: &str) {
    if let Some(status) = child.try_wait().unwrap() {
        panic!("the run exited ({status}) before {waiting_for}");
    }
}

#[test]
fn sigkill_during_commits_leaves_every_transaction_all_or_nothing() {
    let kills: u64 = std::env::var("CACHEHOST_CRASH_KILLS").ok().and_then(|n| n.parse().ok()).unwrap_or(50);
    let mut ctx = TestContext::new();
    let home = ctx.dir.path().join("home");
    let txn_dir = home.join("txn");
    ctx.env("CACHEHOST_HOME", home.to_str().unwrap());
    let path = example("transactions");
    let path = path.to_str().unwrap();
    // Warm the compiled cache, so the rounds spend their time in the flow run.
    assert!(ctx.run(&["inspect", path]).status.success());
    let count = format!("count={RECORDS}");
    let mut rng = Lcg(0x5eed);
    let (mut inside, mut recovered, mut all, mut none) = (0, 0, 0, 0);
    for round in 0..kills {
        let start_param = format!("start={}", round * 100);
        let args = ["run", path, "--flow", "batch", "--param", &start_param, "--param", &count];
        let aim_before = round % BEFORE_EVERY == BEFORE_EVERY - 1;
        let mut child = ctx
            .command(&args)
            .env("CACHEHOST_DEBUG_COMMIT_PAUSE_MS", PAUSE_MS.to_string())
            .stdout(Stdio::null())
            .stderr(if aim_before { Stdio::piped() } else { Stdio::null() })
            .spawn()
            .unwrap();
        // Kept open until the kill, so the run never writes to a closed pipe.
        let mut log = child.stderr.take().map(BufReader::new);
        if let Some(log) = &mut log {
            // The first task run finished: its record is staged, the commit is five runs away.
            let mut line = String::new();
            while !line.contains("Finished in state Completed") {
                line.clear();
                assert!(log.read_line(&mut line).unwrap() > 0, "the run ended before its first task run finished");
            }
        } else {
            // The journal is the commit point; then at least RECORDS pauses pass before the
            // commit ends. Kill within the first RECORDS - 2 of them.
            let pid = child.id();
            wait_until("the commit's journal", || {
                panic_if_exited(&mut child, "its commit's journal appeared");
                !journals(&txn_dir, Some(pid)).is_empty()
            });
            std::thread::sleep(Duration::from_millis(rng.next((RECORDS - 2) * PAUSE_MS)));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        drop(log);
        // A journal present now is a commit the kill interrupted: decided, not finished.
        let journal_found = !journals(&txn_dir, None).is_empty();
        inside += u64::from(journal_found);

        // The next start recovers the interrupted commit, then looks the records up: all
        // Cached (it was committed) or all Completed (it was not).
        let report = ctx.report(&args, 0);
        let states = report.states();
        assert!(!report.stderr.contains("unreadable"), "a corrupt record after a kill:\n{}", report.stderr);
        let recovery = format!("Completed a transaction commit interrupted earlier ({RECORDS} records)");
        let was_recovered = report.stderr.contains(&recovery);
        assert_eq!(
            was_recovered, journal_found,
            "round {round}: the next start recovers exactly the interrupted commit:\n{}",
            report.stderr
        );
        recovered += u64::from(was_recovered);
        if states.iter().all(|s| s == "Cached") {
            all += 1;
        } else {
            assert!(
                !journal_found && states.iter().all(|s| s == "Completed"),
                "round {round}: a transaction was half visible or a recovered commit lost (journal: \
                 {journal_found}): {states:?}"
            );
            none += 1;
        }
    }
    eprintln!(
        "{kills} kills: {inside} inside a commit, all {recovered} recovered at the next start; {all} transactions \
         fully visible, {none} not at all"
    );
    // Three in four kills aim inside a commit; a kill that misses (the test was descheduled for
    // the rest of the commit) shows as no journal. Two in three must land.
    assert!(inside * 3 >= kills * 2, "only {inside} of {kills} kills landed inside a commit");
    assert_eq!(recovered, inside, "every interrupted commit was recovered");
    assert!(recovered > 0);
    // No journal or temp file is left behind.
    let leftovers: Vec<_> =
        std::fs::read_dir(&txn_dir).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
