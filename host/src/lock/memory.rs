//! The `memory` lock manager: leases shared by the threads of one process.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::{LockError, LockManager};

/// Leases in a map guarded by a mutex; waiters sleep on a condition variable that every release
/// signals, and wake by themselves when the lease they wait for expires.
#[derive(Debug, Default)]
pub struct MemoryLockManager {
    leases: Mutex<HashMap<String, Held>>,
    released: Condvar,
}

/// The holder of a key and when its lease ends. An expired entry stays until it is released,
/// renewed by its holder or taken over.
#[derive(Debug)]
struct Held {
    holder: String,
    expires_at: Instant,
}

impl Held {
    fn live_holder(&self, now: Instant) -> Option<String> {
        (self.expires_at > now).then(|| self.holder.clone())
    }
}

impl MemoryLockManager {
    /// A manager of its own, independent of [`MemoryLockManager::global`].
    pub fn new() -> MemoryLockManager {
        MemoryLockManager::default()
    }

    /// The process-wide manager that the `memory` option names.
    pub fn global() -> Arc<MemoryLockManager> {
        static GLOBAL: OnceLock<Arc<MemoryLockManager>> = OnceLock::new();
        GLOBAL.get_or_init(Default::default).clone()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Held>> {
        // Every update is a single insert or remove, so a panic elsewhere cannot leave the map
        // half-changed.
        self.leases.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl LockManager for MemoryLockManager {
    fn acquire(
        &self,
        key: &str,
        holder: &str,
        acquire_timeout: Duration,
        hold_timeout: Duration,
    ) -> Result<(), LockError> {
        let start = Instant::now();
        let deadline = start + acquire_timeout;
        let mut leases = self.lock();
        loop {
            let now = Instant::now();
            let wait_until = match leases.get(key) {
                Some(held) if held.holder != holder && held.expires_at > now => {
                    if now >= deadline {
                        return Err(LockError::AcquireTimeout {
                            key: key.to_string(),
                            waited: now - start,
                            holder_seen: Some(held.holder.clone()),
                        });
                    }
                    held.expires_at.min(deadline)
                }
                _ => {
                    leases.insert(key.to_string(), Held { holder: holder.to_string(), expires_at: now + hold_timeout });
                    return Ok(());
                }
            };
            leases = self.released.wait_timeout(leases, wait_until - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    fn renew(&self, key: &str, holder: &str, hold_timeout: Duration) -> Result<(), LockError> {
        let mut leases = self.lock();
        let now = Instant::now();
        match leases.get_mut(key) {
            Some(held) if held.holder == holder => {
                held.expires_at = now + hold_timeout;
                Ok(())
            }
            other => Err(LockError::Lost {
                key: key.to_string(),
                holder: holder.to_string(),
                now_held_by: other.and_then(|h| h.live_holder(now)),
            }),
        }
    }

    fn release(&self, key: &str, holder: &str) -> Result<(), LockError> {
        let mut leases = self.lock();
        match leases.get(key) {
            Some(held) if held.holder == holder => {
                leases.remove(key);
                drop(leases);
                self.released.notify_all();
                Ok(())
            }
            other => Err(LockError::NotHolder {
                key: key.to_string(),
                holder: holder.to_string(),
                actual: other.and_then(|h| h.live_holder(Instant::now())),
            }),
        }
    }

    fn holder(&self, key: &str) -> Result<Option<String>, LockError> {
        Ok(self.lock().get(key).and_then(|h| h.live_holder(Instant::now())))
    }

    fn describe(&self) -> String {
        "in-memory lock manager of this process".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::tests_common;

    fn manager() -> Arc<dyn LockManager> {
        Arc::new(MemoryLockManager::new())
    }

    #[test]
    fn acquire_release_and_holder_checks() {
        tests_common::acquire_release_and_holder_checks(manager());
    }

    #[test]
    fn acquire_timeout_names_the_holder_seen() {
        tests_common::acquire_timeout_names_the_holder_seen(manager());
    }

    #[test]
    fn same_holder_reacquires_at_once_and_extends_the_lease() {
        tests_common::same_holder_reacquires_at_once_and_extends_the_lease(manager());
    }

    #[test]
    fn expired_lease_is_taken_over_and_its_holder_has_lost_it() {
        tests_common::expired_lease_is_taken_over_and_its_holder_has_lost_it(manager());
    }

    #[test]
    fn expired_lease_nobody_took_can_be_renewed_and_released() {
        tests_common::expired_lease_nobody_took_can_be_renewed_and_released(manager());
    }

    #[test]
    fn waiter_gets_the_lock_when_it_is_released() {
        tests_common::waiter_gets_the_lock_when_it_is_released(manager());
    }

    #[test]
    fn keys_are_independent() {
        tests_common::keys_are_independent(manager());
    }

    #[test]
    fn lease_renewal_keeps_the_lock_past_its_hold_timeout() {
        tests_common::lease_renewal_keeps_the_lock_past_its_hold_timeout(manager());
    }

    #[test]
    fn lease_that_lost_its_lock_reports_lost() {
        tests_common::lease_that_lost_its_lock_reports_lost(manager());
    }

    #[test]
    fn dropping_a_lease_releases_it() {
        tests_common::dropping_a_lease_releases_it(manager());
    }

    #[test]
    fn sixteen_threads_never_hold_one_key_together() {
        tests_common::threads_never_hold_one_key_together(manager(), 16, 50);
    }
}
