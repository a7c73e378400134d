//! The `file` lock manager: leases in lock files, shared by the processes of one machine.
//!
//! One lock file per key, `<blake3 hex of the key>.lock`, holding the holder (none once
//! released), the lease's end (unix milliseconds), the writer's pid and the key, as JSON. The
//! file is named by a hash and never by the key itself: Prefect's `with_suffix` makes the keys
//! `a.b` and `a.c` share one file (reference §12.6).
//!
//! Every read and every change of a lock file (take, take over, renew, release) happens while
//! holding an OS file lock (`flock`) on a guard file, one of 256 chosen by the key's hash. That
//! makes check-then-write one step for all processes and threads, so two acquirers never both
//! take a lock, taking over an expired lease needs no compare-and-swap, and no reader sees a
//! write in progress. The OS drops the guard when its process dies, so a killed process never
//! blocks the guard; its lock file blocks others only until its lease expires (Prefect's blocks
//! forever).
//!
//! Lock files are overwritten in place, never truncated, renamed or deleted on the hot path: on
//! ext4, replacing a file by rename or truncation forces a data flush (`auto_da_alloc`) that
//! costs milliseconds, where an overwrite costs microseconds. A release writes "no holder";
//! [`FileLockManager::prune`] deletes lock files that are free.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{LockError, LockManager};
use crate::clock::now_ms;

/// How often a waiter looks at a lock file held by another process. A release in this process
/// wakes this process's waiters at once.
const POLL: Duration = Duration::from_millis(20);

/// Lock files in one folder.
#[derive(Debug)]
pub struct FileLockManager {
    dir: PathBuf,
    /// Counts releases made through this manager, so its own waiters wake without polling.
    releases: Mutex<u64>,
    released: Condvar,
}

/// The lease a lock file records.
#[derive(Clone, Debug, PartialEq)]
pub struct LockFile {
    /// Who holds the lock.
    pub holder: String,
    /// When the lease ends, unix milliseconds; at or after it the lock is free.
    pub expires_ms: i64,
    /// The process that wrote the lease, for people reading the file.
    pub pid: u32,
    /// The locked key, for people reading the file.
    pub key: String,
}

/// A lock file's JSON.
#[derive(Serialize, Deserialize)]
struct OnDisk {
    holder: Option<String>,
    expires_ms: i64,
    pid: u32,
    key: String,
}

/// A lock file opened under its guard.
struct Slot {
    file: File,
    path: PathBuf,
    len: u64,
    lease: Option<LockFile>,
}

impl FileLockManager {
    /// A manager keeping its lock files in `dir`, which is created if missing.
    pub fn open(dir: &Path) -> Result<FileLockManager, LockError> {
        let manager = FileLockManager { dir: dir.to_path_buf(), releases: Mutex::new(0), released: Condvar::new() };
        fs::create_dir_all(dir).map_err(|e| manager.io_error("create the folder", dir, e))?;
        Ok(manager)
    }

    /// The folder of the lock files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The lock file of `key`.
    pub fn lock_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{}.lock", hash(key)))
    }

    /// The lease recorded for `key`, expired or not; None if there is none, it was released,
    /// or the file cannot be parsed (which counts as free: see [`Self::slot`]).
    pub fn read_lock_file(&self, key: &str) -> Result<Option<LockFile>, LockError> {
        self.guarded(&hash(key), || Ok(self.slot(key, false)?.and_then(|s| s.lease)))
    }

    /// Deletes the lock files that nobody holds (released, expired or unreadable); returns how
    /// many. Safe while other processes use the folder.
    pub fn prune(&self) -> Result<usize, LockError> {
        let entries = fs::read_dir(&self.dir).map_err(|e| self.io_error("list the folder", &self.dir, e))?;
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(|e| self.io_error("list the folder", &self.dir, e))?;
            let name = entry.file_name();
            let Some(hash) = name.to_str().and_then(|n| n.strip_suffix(".lock")) else {
                continue;
            };
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            let path = entry.path();
            removed += self.guarded(hash, || {
                let lease = match fs::read(&path) {
                    Ok(bytes) => parse(&bytes),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
                    Err(e) => return Err(self.io_error("read the lock file", &path, e)),
                };
                if live_holder(lease, now_ms()).is_some() {
                    return Ok(0);
                }
                // Deleting is safe under the guard: every user of the file opens it under the
                // guard, so nobody holds it open across this.
                match fs::remove_file(&path) {
                    Ok(()) => Ok(1),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
                    Err(e) => Err(self.io_error("remove the lock file", &path, e)),
                }
            })?;
        }
        Ok(removed)
    }

    fn io_error(&self, what: &str, path: &Path, e: io::Error) -> LockError {
        LockError::Unavailable { manager: self.describe(), message: format!("cannot {what} {}: {e}.", path.display()) }
    }

    /// Runs `f` while holding the guard for the lock file named by `hash`, excluding every other
    /// thread and process that touches a lock file of the same guard.
    fn guarded<T>(&self, hash: &str, f: impl FnOnce() -> Result<T, LockError>) -> Result<T, LockError> {
        let path = self.dir.join(format!("guard-{}", &hash[..2]));
        let guard = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| self.io_error("open the guard file", &path, e))?;
        guard.lock().map_err(|e| self.io_error("lock the guard file", &path, e))?;
        let result = f();
        // Closing the file drops the OS lock.
        drop::<File>(guard);
        result
    }

    /// Opens `key`'s lock file and reads its lease; call only inside [`Self::guarded`]. With
    /// `create`, a missing file is created empty; without, a missing file is None.
    ///
    /// Content that does not parse counts as free. Under the guard nobody can be writing it, so
    /// it can only come from a writer that died mid-write (an overwrite of a few dozen bytes is
    /// not split by SIGKILL, but a machine crash may leave anything), and a dead writer holds
    /// nothing.
    fn slot(&self, key: &str, create: bool) -> Result<Option<Slot>, LockError> {
        let path = self.lock_path(key);
        let opened = OpenOptions::new().read(true).write(true).create(create).truncate(false).open(&path);
        let mut file = match opened {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !create => return Ok(None),
            Err(e) => return Err(self.io_error("open the lock file", &path, e)),
        };
        let mut bytes = Vec::with_capacity(256);
        file.read_to_end(&mut bytes).map_err(|e| self.io_error("read the lock file", &path, e))?;
        Ok(Some(Slot { file, len: bytes.len() as u64, lease: parse(&bytes), path }))
    }

    /// Records `holder`'s lease until `expires_ms`, or no holder; call only inside
    /// [`Self::guarded`].
    fn write(&self, slot: &mut Slot, key: &str, holder: Option<&str>, expires_ms: i64) -> Result<(), LockError> {
        let mut content = serde_json::to_vec(&OnDisk {
            holder: holder.map(str::to_string),
            expires_ms,
            pid: std::process::id(),
            key: key.to_string(),
        })
        .expect("a lock file always serializes");
        // Spaces over the rest of a longer old content; JSON ignores them. Not truncating keeps
        // the write an in-place overwrite (see the module comment).
        if (content.len() as u64) < slot.len {
            content.resize(slot.len as usize, b' ');
        }
        // No fsync: a lock need not survive a machine crash, which ends every holder with it.
        slot.file
            .rewind()
            .and_then(|()| slot.file.write_all(&content))
            .map_err(|e| self.io_error("write the lock file", &slot.path, e))?;
        slot.len = slot.len.max(content.len() as u64);
        Ok(())
    }

    fn notify_release(&self) {
        *self.releases.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.released.notify_all();
    }
}

fn parse(bytes: &[u8]) -> Option<LockFile> {
    let on_disk: OnDisk = serde_json::from_slice(bytes).ok()?;
    Some(LockFile { holder: on_disk.holder?, expires_ms: on_disk.expires_ms, pid: on_disk.pid, key: on_disk.key })
}

fn hash(key: &str) -> String {
    blake3::hash(key.as_bytes()).to_hex().to_string()
}

/// When a lease taken or renewed at `now_ms` for `hold` ends. `now_ms` truncates to the
/// millisecond, so one more millisecond keeps a lease from ending before `hold` has passed.
fn lease_end(now_ms: i64, hold: Duration) -> i64 {
    now_ms + hold.as_millis() as i64 + 1
}

fn live_holder(lease: Option<LockFile>, now_ms: i64) -> Option<String> {
    lease.filter(|l| l.expires_ms > now_ms).map(|l| l.holder)
}

impl LockManager for FileLockManager {
    fn acquire(
        &self,
        key: &str,
        holder: &str,
        acquire_timeout: Duration,
        hold_timeout: Duration,
    ) -> Result<(), LockError> {
        let start = Instant::now();
        let deadline = start + acquire_timeout;
        let hash = hash(key);
        loop {
            let releases = *self.releases.lock().unwrap_or_else(|e| e.into_inner());
            let seen = self.guarded(&hash, || {
                let mut slot = self.slot(key, true)?.expect("created when missing");
                let now = now_ms();
                match slot.lease.take() {
                    Some(lease) if lease.holder != holder && lease.expires_ms > now => Ok(Some(lease)),
                    // Free, expired, unreadable, or ours already: take it or extend it.
                    _ => self.write(&mut slot, key, Some(holder), lease_end(now, hold_timeout)).map(|()| None),
                }
            })?;
            let Some(seen) = seen else { return Ok(()) };
            let now = Instant::now();
            if now >= deadline {
                return Err(LockError::AcquireTimeout {
                    key: key.to_string(),
                    waited: now - start,
                    holder_seen: Some(seen.holder),
                });
            }
            let until_expiry = Duration::from_millis((seen.expires_ms - now_ms()).max(0) as u64);
            let wait = POLL.min(deadline - now).min(until_expiry);
            let guard = self.releases.lock().unwrap_or_else(|e| e.into_inner());
            let _ = self
                .released
                .wait_timeout_while(guard, wait, |count| *count == releases)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    fn renew(&self, key: &str, holder: &str, hold_timeout: Duration) -> Result<(), LockError> {
        self.guarded(&hash(key), || {
            let now = now_ms();
            match self.slot(key, false)? {
                Some(mut slot) if slot.lease.as_ref().is_some_and(|l| l.holder == holder) => {
                    self.write(&mut slot, key, Some(holder), lease_end(now, hold_timeout))
                }
                other => Err(LockError::Lost {
                    key: key.to_string(),
                    holder: holder.to_string(),
                    now_held_by: live_holder(other.and_then(|s| s.lease), now),
                }),
            }
        })
    }

    fn release(&self, key: &str, holder: &str) -> Result<(), LockError> {
        self.guarded(&hash(key), || match self.slot(key, false)? {
            Some(mut slot) if slot.lease.as_ref().is_some_and(|l| l.holder == holder) => {
                self.write(&mut slot, key, None, 0)
            }
            other => Err(LockError::NotHolder {
                key: key.to_string(),
                holder: holder.to_string(),
                actual: live_holder(other.and_then(|s| s.lease), now_ms()),
            }),
        })?;
        self.notify_release();
        Ok(())
    }

    fn holder(&self, key: &str) -> Result<Option<String>, LockError> {
        Ok(live_holder(self.read_lock_file(key)?, now_ms()))
    }

    fn describe(&self) -> String {
        format!("file lock manager in {}", self.dir.display())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::lock::tests_common;

    fn manager() -> (tempfile::TempDir, Arc<dyn LockManager>) {
        let dir = tempfile::tempdir().unwrap();
        let manager = Arc::new(FileLockManager::open(&dir.path().join("locks")).unwrap());
        (dir, manager)
    }

    #[test]
    fn acquire_release_and_holder_checks() {
        let (_dir, m) = manager();
        tests_common::acquire_release_and_holder_checks(m);
    }

    #[test]
    fn acquire_timeout_names_the_holder_seen() {
        let (_dir, m) = manager();
        tests_common::acquire_timeout_names_the_holder_seen(m);
    }

    #[test]
    fn same_holder_reacquires_at_once_and_extends_the_lease() {
        let (_dir, m) = manager();
        tests_common::same_holder_reacquires_at_once_and_extends_the_lease(m);
    }

    #[test]
    fn expired_lease_is_taken_over_and_its_holder_has_lost_it() {
        let (_dir, m) = manager();
        tests_common::expired_lease_is_taken_over_and_its_holder_has_lost_it(m);
    }

    #[test]
    fn expired_lease_nobody_took_can_be_renewed_and_released() {
        let (_dir, m) = manager();
        tests_common::expired_lease_nobody_took_can_be_renewed_and_released(m);
    }

    #[test]
    fn waiter_gets_the_lock_when_it_is_released() {
        let (_dir, m) = manager();
        tests_common::waiter_gets_the_lock_when_it_is_released(m);
    }

    #[test]
    fn keys_are_independent() {
        let (_dir, m) = manager();
        tests_common::keys_are_independent(m);
    }

    #[test]
    fn lease_renewal_keeps_the_lock_past_its_hold_timeout() {
        let (_dir, m) = manager();
        tests_common::lease_renewal_keeps_the_lock_past_its_hold_timeout(m);
    }

    #[test]
    fn lease_that_lost_its_lock_reports_lost() {
        let (_dir, m) = manager();
        tests_common::lease_that_lost_its_lock_reports_lost(m);
    }

    #[test]
    fn dropping_a_lease_releases_it() {
        let (_dir, m) = manager();
        tests_common::dropping_a_lease_releases_it(m);
    }

    #[test]
    fn sixteen_threads_never_hold_one_key_together() {
        let (_dir, m) = manager();
        tests_common::threads_never_hold_one_key_together(m, 16, 50);
    }

    /// Regression for Prefect's `with_suffix` (reference §12.6): `a.b` and `a.c` shared `a.lock`.
    #[test]
    fn keys_differing_after_a_dot_have_their_own_lock_files() {
        let dir = tempfile::tempdir().unwrap();
        let m = FileLockManager::open(dir.path()).unwrap();
        assert_ne!(m.lock_path("a.b"), m.lock_path("a.c"));
        m.acquire("a.b", "h1", Duration::ZERO, Duration::from_secs(60)).unwrap();
        m.acquire("a.c", "h2", Duration::ZERO, Duration::from_secs(60)).unwrap();
        let name = m.lock_path("a.b").file_name().unwrap().to_str().unwrap().to_string();
        assert_eq!(name, format!("{}.lock", blake3::hash(b"a.b").to_hex()));
    }

    #[test]
    fn lock_file_holds_holder_expiry_pid_and_key_and_reads_free_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let m = FileLockManager::open(dir.path()).unwrap();
        let before = now_ms();
        m.acquire("../k/ey", "run-1", Duration::ZERO, Duration::from_secs(30)).unwrap();
        let lock = m.read_lock_file("../k/ey").unwrap().unwrap();
        assert_eq!(lock.holder, "run-1");
        assert_eq!(lock.key, "../k/ey");
        assert_eq!(lock.pid, std::process::id());
        // At least 30 s from the acquire: one millisecond more covers now_ms's truncation.
        assert!(lock.expires_ms > before + 30_000 && lock.expires_ms <= now_ms() + 30_001);
        // The key is never part of a path.
        assert_eq!(m.lock_path("../k/ey").parent(), Some(dir.path()));
        m.release("../k/ey", "run-1").unwrap();
        assert_eq!(m.read_lock_file("../k/ey").unwrap(), None);
    }

    /// Overwrites never truncate, so a shorter lease is padded over a longer one.
    #[test]
    fn shorter_lease_over_a_longer_one_reads_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let m = FileLockManager::open(dir.path()).unwrap();
        let long = "h".repeat(300);
        m.acquire("k", &long, Duration::ZERO, Duration::from_secs(60)).unwrap();
        m.release("k", &long).unwrap();
        m.acquire("k", "h", Duration::ZERO, Duration::from_secs(60)).unwrap();
        assert_eq!(m.read_lock_file("k").unwrap().unwrap().holder, "h");
        let text = fs::read_to_string(m.lock_path("k")).unwrap();
        assert!(text.len() > 300 && text.trim_end().ends_with('}'), "{text}");
    }

    #[test]
    fn prune_removes_free_lock_files_and_keeps_held_ones() {
        let dir = tempfile::tempdir().unwrap();
        let m = FileLockManager::open(dir.path()).unwrap();
        let hour = Duration::from_secs(3600);
        m.acquire("held", "a", Duration::ZERO, hour).unwrap();
        m.acquire("released", "a", Duration::ZERO, hour).unwrap();
        m.release("released", "a").unwrap();
        m.acquire("expired", "a", Duration::ZERO, Duration::ZERO).unwrap();
        // A lease of zero still lasts until the next millisecond.
        std::thread::sleep(Duration::from_millis(2));
        fs::write(m.lock_path("junk"), b"{").unwrap();
        fs::write(dir.path().join("not-a-lock.lock"), b"{").unwrap();

        assert_eq!(m.prune().unwrap(), 3);
        assert!(m.lock_path("held").exists());
        for gone in ["released", "expired", "junk"] {
            assert!(!m.lock_path(gone).exists(), "{gone}");
        }
        assert!(dir.path().join("not-a-lock.lock").exists());
        // A pruned key locks as before.
        m.acquire("released", "b", Duration::ZERO, hour).unwrap();
        assert_eq!(m.holder("held").unwrap().as_deref(), Some("a"));
    }

    /// A writer killed mid-write may leave partial content; under the guard nobody else can be
    /// writing it, so it is free.
    #[test]
    fn unreadable_lock_file_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let m = FileLockManager::open(dir.path()).unwrap();
        let long_junk = vec![b'x'; 500];
        for junk in [&b""[..], b"{\"holder\":\"x\",\"expi", b"\xff\x00", &long_junk] {
            fs::write(m.lock_path("k"), junk).unwrap();
            assert_eq!(m.holder("k").unwrap(), None);
            m.acquire("k", "h", Duration::ZERO, Duration::from_secs(60)).unwrap();
            assert_eq!(m.holder("k").unwrap().as_deref(), Some("h"));
            m.release("k", "h").unwrap();
        }
    }

    #[test]
    fn missing_folder_is_unavailable_naming_the_manager() {
        let dir = tempfile::tempdir().unwrap();
        let m = FileLockManager::open(&dir.path().join("locks")).unwrap();
        fs::remove_dir(dir.path().join("locks")).unwrap();
        let err = m.acquire("k", "h", Duration::ZERO, Duration::from_secs(1)).unwrap_err();
        let LockError::Unavailable { manager, message } = &err else { panic!("{err:?}") };
        assert_eq!(manager, &m.describe());
        assert!(message.contains("guard"), "{message}");
        assert!(err.to_string().starts_with("The file lock manager in "), "{err}");
    }

    #[test]
    fn two_managers_on_one_folder_exclude_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let a = FileLockManager::open(dir.path()).unwrap();
        let b = FileLockManager::open(dir.path()).unwrap();
        a.acquire("k", "h1", Duration::ZERO, Duration::from_secs(60)).unwrap();
        let err = b.acquire("k", "h2", Duration::from_millis(50), Duration::from_secs(60)).unwrap_err();
        assert!(matches!(err, LockError::AcquireTimeout { holder_seen: Some(ref h), .. } if h == "h1"));
    }
}
