//! Behaviour every lock manager must show, run by each backend's tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::{Lease, LockError, LockManager};

const LONG: Duration = Duration::from_secs(60);

pub fn acquire_release_and_holder_checks(m: Arc<dyn LockManager>) {
    assert_eq!(m.holder("k").unwrap(), None);
    m.acquire("k", "a", Duration::ZERO, LONG).unwrap();
    assert_eq!(m.holder("k").unwrap().as_deref(), Some("a"));

    assert_eq!(
        m.release("k", "b"),
        Err(LockError::NotHolder { key: "k".into(), holder: "b".into(), actual: Some("a".into()) })
    );
    assert_eq!(
        m.renew("k", "b", LONG),
        Err(LockError::Lost { key: "k".into(), holder: "b".into(), now_held_by: Some("a".into()) })
    );
    assert_eq!(m.holder("k").unwrap().as_deref(), Some("a"));
    m.renew("k", "a", LONG).unwrap();

    m.release("k", "a").unwrap();
    assert_eq!(m.holder("k").unwrap(), None);
    assert_eq!(m.release("k", "a"), Err(LockError::NotHolder { key: "k".into(), holder: "a".into(), actual: None }));
    assert!(matches!(m.renew("k", "a", LONG), Err(LockError::Lost { now_held_by: None, .. })));
    m.acquire("k", "b", Duration::ZERO, LONG).unwrap();
    assert_eq!(m.holder("k").unwrap().as_deref(), Some("b"));
}

pub fn acquire_timeout_names_the_holder_seen(m: Arc<dyn LockManager>) {
    m.acquire("k", "a", Duration::ZERO, LONG).unwrap();
    for timeout in [Duration::ZERO, Duration::from_millis(100)] {
        let err = m.acquire("k", "b", timeout, LONG).unwrap_err();
        let LockError::AcquireTimeout { key, waited, holder_seen } = err else { panic!("{err:?}") };
        assert_eq!(key, "k");
        assert_eq!(holder_seen.as_deref(), Some("a"));
        assert!(waited >= timeout, "{waited:?} < {timeout:?}");
    }
    assert_eq!(m.holder("k").unwrap().as_deref(), Some("a"));
}

pub fn same_holder_reacquires_at_once_and_extends_the_lease(m: Arc<dyn LockManager>) {
    m.acquire("k", "a", Duration::ZERO, Duration::from_millis(200)).unwrap();
    m.acquire("k", "a", Duration::ZERO, LONG).unwrap();
    thread::sleep(Duration::from_millis(300));
    // Without the extension the 200 ms lease would have expired and "b" would take it.
    let err = m.acquire("k", "b", Duration::ZERO, LONG).unwrap_err();
    assert!(matches!(err, LockError::AcquireTimeout { holder_seen: Some(ref h), .. } if h == "a"));
}

pub fn expired_lease_is_taken_over_and_its_holder_has_lost_it(m: Arc<dyn LockManager>) {
    let hold = Duration::from_secs(2);
    // "a" acquires without a Lease: nothing renews it, as if its process had died.
    m.acquire("k", "a", Duration::ZERO, hold).unwrap();
    // While its lease lasts the lock is not taken over (the check comes at once, far inside it).
    let early = m.acquire("k", "b", Duration::ZERO, LONG).unwrap_err();
    assert!(matches!(early, LockError::AcquireTimeout { holder_seen: Some(ref h), .. } if h == "a"), "{early:?}");
    m.acquire("k", "b", Duration::from_secs(30), LONG).unwrap();
    assert_eq!(m.holder("k").unwrap().as_deref(), Some("b"));
    assert_eq!(
        m.renew("k", "a", LONG),
        Err(LockError::Lost { key: "k".into(), holder: "a".into(), now_held_by: Some("b".into()) })
    );
    assert_eq!(
        m.release("k", "a"),
        Err(LockError::NotHolder { key: "k".into(), holder: "a".into(), actual: Some("b".into()) })
    );
    assert_eq!(m.holder("k").unwrap().as_deref(), Some("b"));
}

pub fn expired_lease_nobody_took_can_be_renewed_and_released(m: Arc<dyn LockManager>) {
    m.acquire("k", "a", Duration::ZERO, Duration::from_millis(20)).unwrap();
    thread::sleep(Duration::from_millis(60));
    assert_eq!(m.holder("k").unwrap(), None);
    m.renew("k", "a", LONG).unwrap();
    assert_eq!(m.holder("k").unwrap().as_deref(), Some("a"));

    m.acquire("k2", "a", Duration::ZERO, Duration::from_millis(20)).unwrap();
    thread::sleep(Duration::from_millis(60));
    m.release("k2", "a").unwrap();
    // Released means free, not merely expired: a renewal cannot bring it back.
    assert!(matches!(m.renew("k2", "a", LONG), Err(LockError::Lost { .. })));
}

pub fn waiter_gets_the_lock_when_it_is_released(m: Arc<dyn LockManager>) {
    m.acquire("k", "a", Duration::ZERO, LONG).unwrap();
    let waiter = {
        let m = m.clone();
        thread::spawn(move || m.acquire("k", "b", Duration::from_secs(30), LONG))
    };
    thread::sleep(Duration::from_millis(50));
    m.release("k", "a").unwrap();
    waiter.join().unwrap().unwrap();
    assert_eq!(m.holder("k").unwrap().as_deref(), Some("b"));
}

pub fn keys_are_independent(m: Arc<dyn LockManager>) {
    m.acquire("x.a", "a", Duration::ZERO, LONG).unwrap();
    m.acquire("x.b", "b", Duration::ZERO, LONG).unwrap();
    m.acquire("x", "c", Duration::ZERO, LONG).unwrap();
    assert_eq!(m.holder("x.a").unwrap().as_deref(), Some("a"));
    assert_eq!(m.holder("x.b").unwrap().as_deref(), Some("b"));
    m.release("x.a", "a").unwrap();
    assert_eq!(m.holder("x.b").unwrap().as_deref(), Some("b"));
}

pub fn lease_renewal_keeps_the_lock_past_its_hold_timeout(m: Arc<dyn LockManager>) {
    let hold = Duration::from_millis(600);
    let lease = Lease::acquire(m.clone(), "k", "a", Duration::ZERO, hold).unwrap();
    // The same hold timeout without renewal: a holder whose renewer stopped.
    m.acquire("dead", "a", Duration::ZERO, hold).unwrap();
    thread::sleep(hold * 3);

    let err = m.acquire("k", "b", Duration::ZERO, LONG).unwrap_err();
    assert!(matches!(err, LockError::AcquireTimeout { holder_seen: Some(ref h), .. } if h == "a"));
    m.acquire("dead", "b", Duration::ZERO, LONG).unwrap();

    lease.check().unwrap();
    lease.release().unwrap();
    m.acquire("k", "b", Duration::ZERO, LONG).unwrap();
}

pub fn lease_that_lost_its_lock_reports_lost(m: Arc<dyn LockManager>) {
    // The first renewal is due a second after the lease is taken, well after "b" takes the lock.
    let lease = Lease::acquire(m.clone(), "k", "a", Duration::ZERO, Duration::from_secs(3)).unwrap();
    assert_eq!((lease.key(), lease.holder()), ("k", "a"));
    // Another party frees the lock behind the lease's back and "b" takes it.
    m.release("k", "a").unwrap();
    m.acquire("k", "b", Duration::ZERO, LONG).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while lease.check().is_ok() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let lost = Err(LockError::Lost { key: "k".into(), holder: "a".into(), now_held_by: Some("b".into()) });
    assert_eq!(lease.check(), lost);
    assert_eq!(lease.release(), lost);
    // Releasing the lost lease left the new holder's lock alone.
    assert_eq!(m.holder("k").unwrap().as_deref(), Some("b"));
}

pub fn dropping_a_lease_releases_it(m: Arc<dyn LockManager>) {
    {
        let _lease = Lease::acquire(m.clone(), "k", "a", Duration::ZERO, LONG).unwrap();
        assert_eq!(m.holder("k").unwrap().as_deref(), Some("a"));
    }
    assert_eq!(m.holder("k").unwrap(), None);
}

/// `threads` threads take one key `rounds` times each, through leases, and check inside the
/// critical section that nobody else is in it; a non-atomic counter update loses increments if
/// two are ever inside together.
pub fn threads_never_hold_one_key_together(m: Arc<dyn LockManager>, threads: usize, rounds: usize) {
    let inside = Arc::new(AtomicU64::new(0));
    let counter = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (m, inside, counter) = (m.clone(), inside.clone(), counter.clone());
            thread::spawn(move || {
                for r in 0..rounds {
                    let holder = format!("t{t}-r{r}");
                    let lease = Lease::acquire(m.clone(), "contended", &holder, LONG, LONG).unwrap();
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders at once");
                    let seen = counter.load(Ordering::SeqCst);
                    thread::yield_now();
                    counter.store(seen + 1, Ordering::SeqCst);
                    inside.fetch_sub(1, Ordering::SeqCst);
                    lease.release().unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(counter.load(Ordering::SeqCst), (threads * rounds) as u64);
}
