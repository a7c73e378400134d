//! Lock managers for SERIALIZABLE isolation (DESIGN.md §6): one lock per cache key, so that
//! concurrent identical calls run the task body once and the others come back Cached.
//!
//! **Differs from Prefect on purpose** (reference §12): a lock is a *lease*. It has a hold
//! timeout and is renewed while its holder works ([`Lease`] renews it in the background), so a
//! holder that dies without releasing blocks others only until its lease expires; acquisition
//! has a timeout that ends in [`LockError::AcquireTimeout`]; and every release checks the holder.
//!
//! Backends: [`memory`] (threads of one process), [`file`] (processes on one machine) and
//! [`redis`] (processes on many machines);
//! [`manager_for`] turns a `lock_manager` option into one.

pub mod file;
pub mod memory;
pub mod redis;
#[cfg(test)]
mod tests_common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

pub use self::redis::RedisLockManager;
pub use file::FileLockManager;
pub use memory::MemoryLockManager;

/// A place that grants leases on keys to named holders.
///
/// A key is held by at most one holder at a time; a lease that has expired counts as free and is
/// taken over by the next acquirer. Holders are opaque strings chosen by the caller (cachehost
/// uses a fresh id per task run): two calls with the same holder are the same owner.
pub trait LockManager: Send + Sync {
    /// Takes the lock on `key` for `holder` until `hold_timeout` from now, waiting up to
    /// `acquire_timeout` while another holder has an unexpired lease.
    ///
    /// If `holder` already holds the lock this succeeds at once and extends the lease. Gives up
    /// with [`LockError::AcquireTimeout`] naming the holder it last saw; a zero
    /// `acquire_timeout` tries once without waiting.
    fn acquire(
        &self,
        key: &str,
        holder: &str,
        acquire_timeout: Duration,
        hold_timeout: Duration,
    ) -> Result<(), LockError>;

    /// Extends `holder`'s lease on `key` to `hold_timeout` from now.
    ///
    /// Succeeds while `holder` is still the recorded holder, even if its lease has just expired
    /// and nobody took it; fails with [`LockError::Lost`] when another holder took the lock or
    /// nobody holds it any more. It never creates a lock.
    fn renew(&self, key: &str, holder: &str, hold_timeout: Duration) -> Result<(), LockError>;

    /// Releases `holder`'s lock on `key`.
    ///
    /// Releasing an expired lease that nobody else took is fine; releasing a lock held by
    /// another holder, or by nobody, is [`LockError::NotHolder`] and changes nothing.
    fn release(&self, key: &str, holder: &str) -> Result<(), LockError>;

    /// The holder of an unexpired lease on `key`, if any (for messages and `cache explain`).
    fn holder(&self, key: &str) -> Result<Option<String>, LockError>;

    /// What this manager is, for messages, e.g. "file lock manager in /home/u/.cachehost/locks".
    fn describe(&self) -> String;
}

/// Why a lock operation failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum LockError {
    /// Another holder kept the lock for the whole acquire timeout.
    #[error("Timed out after {waited:.1?} waiting for the lock on key {key:?}, {}.", held_by(holder_seen))]
    AcquireTimeout {
        /// The key that was asked for.
        key: String,
        /// How long the acquirer waited.
        waited: Duration,
        /// The holder seen at the last attempt (None if it was released just then).
        holder_seen: Option<String>,
    },
    /// A release by someone who does not hold the lock.
    #[error("Cannot release the lock on key {key:?} for {holder:?}: it is {}.", held_by(actual))]
    NotHolder {
        /// The key that was released.
        key: String,
        /// Who tried to release it.
        holder: String,
        /// Who holds it instead (an unexpired lease), if anyone.
        actual: Option<String>,
    },
    /// A holder's lease expired and the lock is gone: someone else took it over or it was
    /// released, so the holder no longer has exclusive access.
    #[error(
        "The lock on key {key:?} held by {holder:?} was lost: its lease expired and it is now {}.",
        held_by(now_held_by)
    )]
    Lost {
        /// The key of the lost lock.
        key: String,
        /// The holder that lost it.
        holder: String,
        /// Who holds it now (an unexpired lease), if anyone.
        now_held_by: Option<String>,
    },
    /// The manager could not do its work (an I/O error, a Redis outage).
    #[error("The {manager} cannot be used: {message}")]
    Unavailable {
        /// [`LockManager::describe`] of the manager.
        manager: String,
        /// What went wrong, with the OS error.
        message: String,
    },
    /// A `lock_manager` option that names no lock manager cachehost has.
    #[error(
        "Unknown lock manager {spec:?}: use \"memory\" (one process), \"file\" (processes on one \
         machine, in CACHEHOST_HOME/locks), \"file:/some/dir\" or \"redis://host:port\" \
         (processes on many machines)."
    )]
    UnknownManager {
        /// The option's value.
        spec: String,
    },
}

fn held_by(holder: &Option<String>) -> String {
    match holder {
        Some(h) => format!("held by {h:?}"),
        None => "held by nobody".to_string(),
    }
}

/// The lock manager a `lock_manager` option names.
///
/// `"memory"` is the one in-process manager shared by the whole process (like Prefect's
/// singleton `MemoryLockManager`), `"file"` keeps lock files in `<home>/locks`, and
/// `"file:/some/dir"` in that folder, `"redis://host:port"` in that Redis server. File
/// managers are shared per folder within the process, so a release wakes the process's own
/// waiters at once; Redis managers per URL, so their connections are reused.
pub fn manager_for(spec: &str, home: &Path) -> Result<Arc<dyn LockManager>, LockError> {
    if spec.starts_with("redis://") {
        static REDIS_MANAGERS: OnceLock<Mutex<HashMap<String, Arc<RedisLockManager>>>> = OnceLock::new();
        let mut managers = REDIS_MANAGERS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        if let Some(manager) = managers.get(spec) {
            return Ok(manager.clone());
        }
        let manager = Arc::new(RedisLockManager::open(spec)?);
        managers.insert(spec.to_owned(), manager.clone());
        return Ok(manager);
    }
    let dir = match spec {
        "memory" => return Ok(MemoryLockManager::global()),
        "file" => home.join("locks"),
        _ => match spec.strip_prefix("file:") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => return Err(LockError::UnknownManager { spec: spec.to_string() }),
        },
    };
    static FILE_MANAGERS: OnceLock<Mutex<HashMap<PathBuf, Arc<FileLockManager>>>> = OnceLock::new();
    let mut managers = FILE_MANAGERS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(manager) = managers.get(&dir) {
        return Ok(manager.clone());
    }
    let manager = Arc::new(FileLockManager::open(&dir)?);
    managers.insert(dir, manager.clone());
    Ok(manager)
}

/// A held lock that renews itself in the background until released or dropped.
///
/// Renewal runs on one renewer thread shared by the whole process, about every third of the
/// hold timeout, so taking a lease costs no thread. If a renewal finds the lock lost, the lease
/// records it: [`Lease::check`] and [`Lease::release`] then report [`LockError::Lost`].
/// Dropping a lease releases it, ignoring errors.
pub struct Lease {
    manager: Arc<dyn LockManager>,
    key: String,
    holder: String,
    id: u64,
    lost: Arc<Mutex<Option<LockError>>>,
    released: bool,
}

impl Lease {
    /// Acquires `key` for `holder` (see [`LockManager::acquire`]) and starts renewing it.
    pub fn acquire(
        manager: Arc<dyn LockManager>,
        key: &str,
        holder: &str,
        acquire_timeout: Duration,
        hold_timeout: Duration,
    ) -> Result<Lease, LockError> {
        manager.acquire(key, holder, acquire_timeout, hold_timeout)?;
        let lost = Arc::new(Mutex::new(None));
        let id = renewer().add(Renewal {
            manager: manager.clone(),
            key: key.to_string(),
            holder: holder.to_string(),
            hold_timeout,
            due: Instant::now() + renew_interval(hold_timeout),
            lost: lost.clone(),
        });
        Ok(Lease { manager, key: key.to_string(), holder: holder.to_string(), id, lost, released: false })
    }

    /// The locked key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Who holds the lease.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// `Err(Lost)` if a renewal found the lock lost, so work done under it was not exclusive.
    pub fn check(&self) -> Result<(), LockError> {
        match &*self.lost.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Stops renewing and releases the lock; `Err(Lost)` if it was lost while held.
    pub fn release(mut self) -> Result<(), LockError> {
        self.release_inner()
    }

    fn release_inner(&mut self) -> Result<(), LockError> {
        self.released = true;
        renewer().remove(self.id);
        // A lost lock is not ours to release: it belongs to whoever took it over.
        self.check()?;
        self.manager.release(&self.key, &self.holder)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.released {
            let _ = self.release_inner();
        }
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("manager", &self.manager.describe())
            .field("key", &self.key)
            .field("holder", &self.holder)
            .finish()
    }
}

/// How long after a successful renewal the next one is due: a third of the hold timeout, so
/// two renewals can fail or be late before the lease expires.
fn renew_interval(hold_timeout: Duration) -> Duration {
    (hold_timeout / 3).max(Duration::from_millis(1))
}

/// One lease the renewer keeps alive.
struct Renewal {
    manager: Arc<dyn LockManager>,
    key: String,
    holder: String,
    hold_timeout: Duration,
    due: Instant,
    lost: Arc<Mutex<Option<LockError>>>,
}

/// The process's renewer: the leases to renew, and the thread that renews them when due.
struct Renewer {
    state: Mutex<RenewerState>,
    changed: Condvar,
}

#[derive(Default)]
struct RenewerState {
    leases: HashMap<u64, Renewal>,
    next_id: u64,
}

fn renewer() -> &'static Renewer {
    static RENEWER: OnceLock<Renewer> = OnceLock::new();
    RENEWER.get_or_init(|| {
        thread::Builder::new()
            .name("cachehost-lease-renewer".into())
            .spawn(|| renewer().run())
            .expect("the OS refused to start the lease renewer thread");
        Renewer { state: Mutex::new(RenewerState::default()), changed: Condvar::new() }
    })
}

impl Renewer {
    fn lock(&self) -> std::sync::MutexGuard<'_, RenewerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, renewal: Renewal) -> u64 {
        let mut state = self.lock();
        state.next_id += 1;
        let id = state.next_id;
        state.leases.insert(id, renewal);
        drop(state);
        self.changed.notify_one();
        id
    }

    fn remove(&self, id: u64) {
        // No wake-up needed: the thread finds nothing due for a removed lease.
        self.lock().leases.remove(&id);
    }

    fn run(&self) {
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            let next_due = state.leases.values().map(|r| r.due).min();
            match next_due {
                None => state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(due) if due > now => {
                    state = self.changed.wait_timeout(state, due - now).unwrap_or_else(|e| e.into_inner()).0
                }
                Some(_) => {
                    let due: Vec<_> = state
                        .leases
                        .iter()
                        .filter(|(_, r)| r.due <= now)
                        .map(|(id, r)| (*id, r.manager.clone(), r.key.clone(), r.holder.clone(), r.hold_timeout))
                        .collect();
                    // Renewals do I/O: never hold the state lock across them, so taking and
                    // releasing leases never waits for a slow renewal.
                    drop(state);
                    let results: Vec<_> = due
                        .into_iter()
                        .map(|(id, manager, key, holder, hold)| {
                            let result = manager.renew(&key, &holder, hold);
                            (id, hold, result)
                        })
                        .collect();
                    state = self.lock();
                    let now = Instant::now();
                    for (id, hold, result) in results {
                        // A lease released meanwhile is gone from the map; its result is moot.
                        let Some(renewal) = state.leases.get_mut(&id) else {
                            continue;
                        };
                        match result {
                            Ok(()) => renewal.due = now + renew_interval(hold),
                            Err(e @ (LockError::Lost { .. } | LockError::NotHolder { .. })) => {
                                *renewal.lost.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                                state.leases.remove(&id);
                            }
                            // The manager may recover (a full disk, a Redis restart): try again
                            // soon, while the lease has not expired.
                            Err(_) => renewal.due = now + renew_interval(hold).min(Duration::from_millis(200)),
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manager_for_memory_is_the_process_singleton() {
        let home = tempfile::tempdir().unwrap();
        let a = manager_for("memory", home.path()).unwrap();
        let b = manager_for("memory", home.path()).unwrap();
        a.acquire("k-singleton", "h1", Duration::ZERO, Duration::from_secs(60)).unwrap();
        assert_eq!(b.holder("k-singleton").unwrap().as_deref(), Some("h1"));
        b.release("k-singleton", "h1").unwrap();
        assert!(a.describe().contains("in-memory"));
    }

    #[test]
    fn manager_for_file_uses_home_locks_or_the_given_folder() {
        let home = tempfile::tempdir().unwrap();
        let m = manager_for("file", home.path()).unwrap();
        assert_eq!(m.describe(), format!("file lock manager in {}", home.path().join("locks").display()));
        assert!(home.path().join("locks").is_dir());
        let other = tempfile::tempdir().unwrap();
        let dir = other.path().join("mine");
        let m = manager_for(&format!("file:{}", dir.display()), home.path()).unwrap();
        assert_eq!(m.describe(), format!("file lock manager in {}", dir.display()));
        assert!(dir.is_dir());
    }

    #[test]
    fn manager_for_unknown_spec_names_it_and_the_supported_ones() {
        let home = tempfile::tempdir().unwrap();
        for spec in ["rediss://localhost:6379", "file:", "Memory", ""] {
            let err = manager_for(spec, home.path()).err().unwrap();
            assert_eq!(err, LockError::UnknownManager { spec: spec.into() });
            let text = err.to_string();
            assert!(text.starts_with(&format!("Unknown lock manager {spec:?}")), "{text}");
            assert!(text.contains("\"memory\"") && text.contains("\"file:/some/dir\""), "{text}");
            assert!(text.contains("\"redis://host:port\""), "{text}");
        }
    }

    #[test]
    fn messages_are_one_sentence_naming_key_and_holders() {
        let e = LockError::AcquireTimeout {
            key: "k".into(),
            waited: Duration::from_millis(1500),
            holder_seen: Some("run-1".into()),
        };
        assert_eq!(e.to_string(), "Timed out after 1.5s waiting for the lock on key \"k\", held by \"run-1\".");
        let e = LockError::NotHolder { key: "k".into(), holder: "run-2".into(), actual: None };
        assert_eq!(e.to_string(), "Cannot release the lock on key \"k\" for \"run-2\": it is held by nobody.");
        let e = LockError::Lost { key: "k".into(), holder: "run-1".into(), now_held_by: Some("run-2".into()) };
        assert_eq!(
            e.to_string(),
            "The lock on key \"k\" held by \"run-1\" was lost: its lease expired and it is now \
             held by \"run-2\"."
        );
    }
}
