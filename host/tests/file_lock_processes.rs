//! The file lock manager across processes: the tests re-run this test binary as child
//! processes (the ignored `child` test, with `CHILD_ROLE` saying what to do).

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use cachehost::clock::now_ms;
use cachehost::lock::{FileLockManager, Lease, LockManager};

const ROLE: &str = "CHILD_ROLE";
const DIR: &str = "CHILD_LOCK_DIR";
const KEY: &str = "CHILD_KEY";
const ROUNDS: &str = "CHILD_ROUNDS";
const WORK: &str = "CHILD_WORK_DIR";
const LONG: Duration = Duration::from_secs(60);

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// What a child process does; run only by the tests below.
#[test]
#[ignore = "a child role of the other tests, run by them"]
fn child() {
    let manager: Arc<dyn LockManager> = Arc::new(FileLockManager::open(Path::new(&env(DIR))).unwrap());
    let key = env(KEY);
    let holder = format!("child-{}", std::process::id());
    match env(ROLE).as_str() {
        "contend" => contend(manager, &key, env(ROUNDS).parse().unwrap(), Path::new(&env(WORK))),
        "hold" => {
            let _lease = Lease::acquire(manager, &key, &holder, LONG, Duration::from_secs(1)).unwrap();
            println!("ACQUIRED {holder}");
            io::stdout().flush().unwrap();
            // Long enough for the test; short enough not to linger if the test dies first.
            thread::sleep(Duration::from_secs(60));
        }
        role => panic!("unknown child role {role}"),
    }
}

/// Takes `key` `rounds` times; inside the critical section, an O_EXCL marker file proves
/// nobody else is inside, and a read-then-write counter file loses counts if anyone ever is.
fn contend(manager: Arc<dyn LockManager>, key: &str, rounds: u64, work: &Path) {
    let marker = work.join("inside");
    let counter = work.join("counter");
    for round in 0..rounds {
        let holder = format!("child-{}-round-{round}", std::process::id());
        let lease = Lease::acquire(manager.clone(), key, &holder, LONG, LONG).unwrap();
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
            .expect("two holders inside the critical section at once");
        let seen: u64 = match fs::read_to_string(&counter) {
            Ok(text) => text.parse().unwrap(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => panic!("{e}"),
        };
        thread::yield_now();
        fs::write(&counter, (seen + 1).to_string()).unwrap();
        fs::remove_file(&marker).unwrap();
        lease.release().unwrap();
    }
}

fn spawn_child(role: &str, lock_dir: &Path, key: &str, extra: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(DIR, lock_dir)
        .env(KEY, key)
        .stdout(Stdio::piped());
    for (name, value) in extra {
        cmd.env(name, value);
    }
    cmd.spawn().unwrap()
}

fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let locks = dir.path().join("locks");
    (dir, locks)
}

#[test]
fn four_processes_never_hold_one_key_together() {
    let (dir, locks) = temp();
    let rounds = 50;
    let children: Vec<_> = (0..4)
        .map(|_| {
            spawn_child(
                "contend",
                &locks,
                "contended.key",
                &[(ROUNDS, rounds.to_string()), (WORK, dir.path().display().to_string())],
            )
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "a child failed: {}", String::from_utf8_lossy(&out.stdout));
    }
    let counted = fs::read_to_string(dir.path().join("counter")).unwrap();
    assert_eq!(counted, (4 * rounds).to_string());
}

#[test]
fn killed_holder_blocks_only_until_its_lease_expires() {
    let (_dir, locks) = temp();
    let manager = FileLockManager::open(&locks).unwrap();
    let mut child = spawn_child("hold", &locks, "k", &[]);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let holder = loop {
        let line = lines.next().expect("the child ended before taking the lock").unwrap();
        // The harness prints "test child ... " on the same line.
        if let Some((_, holder)) = line.split_once("ACQUIRED ") {
            break holder.to_string();
        }
    };
    // The child's lease renews itself past its 1 s hold timeout while the child lives.
    thread::sleep(Duration::from_millis(2500));
    assert_eq!(manager.holder("k").unwrap().as_deref(), Some(holder.as_str()));

    child.kill().unwrap(); // SIGKILL: no Drop, no release.
    child.wait().unwrap();
    let left = manager.read_lock_file("k").unwrap().expect("the killed child's lock file");
    assert_eq!((left.holder.as_str(), left.pid), (holder.as_str(), child.id()));

    manager.acquire("k", "next", Duration::from_secs(30), LONG).unwrap();
    assert!(now_ms() >= left.expires_ms, "took the lock before the killed holder's lease expired");
    assert_eq!(manager.holder("k").unwrap().as_deref(), Some("next"));
}
