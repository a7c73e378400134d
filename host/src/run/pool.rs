//! The bounded pool of host threads that runs submitted task calls (Prefect's task runner).
//!
//! At most `size` submitted calls run at once. A worker that waits for a call it submitted
//! itself gives its place back while it waits, so nested submissions cannot deadlock the pool.

use std::cell::Cell;
use std::sync::{Arc, Condvar, Mutex};

use super::state::TaskOutcome;

thread_local! {
    static HOLDS_PLACE: Cell<Option<*const Pool>> = const { Cell::new(None) };
}

/// The pool: a counting semaphore over OS threads.
pub struct Pool {
    size: usize,
    running: Mutex<usize>,
    freed: Condvar,
}

/// A submitted call; `wait` blocks until it is done.
pub struct Submission {
    outcome: Mutex<Option<Arc<TaskOutcome>>>,
    done: Condvar,
}

impl Pool {
    /// A pool running at most `size` calls at once.
    pub fn new(size: usize) -> Pool {
        Pool { size: size.max(1), running: Mutex::new(0), freed: Condvar::new() }
    }

    /// How many calls may run at once.
    pub fn size(&self) -> usize {
        self.size
    }

    fn take_place(&self) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        while *running >= self.size {
            running = self.freed.wait(running).unwrap_or_else(|e| e.into_inner());
        }
        *running += 1;
    }

    fn give_place(&self) {
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        self.freed.notify_one();
    }

    /// Runs `call` on a pool thread once a place is free.
    pub fn submit(self: &Arc<Self>, call: impl FnOnce() -> TaskOutcome + Send + 'static) -> Arc<Submission> {
        let submission = Arc::new(Submission { outcome: Mutex::new(None), done: Condvar::new() });
        let pool = self.clone();
        let finished = submission.clone();
        // A call submitted while a worker captures a call's log lines is part of that call.
        let capture = crate::log::Capture::current();
        std::thread::spawn(move || {
            pool.take_place();
            HOLDS_PLACE.with(|p| p.set(Some(Arc::as_ptr(&pool))));
            let outcome = crate::log::Capture::carry(capture, call);
            HOLDS_PLACE.with(|p| p.set(None));
            pool.give_place();
            *finished.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(outcome));
            finished.done.notify_all();
        });
        submission
    }

    /// Runs `wait`, which waits for something other than this pool (a worker elsewhere),
    /// with this thread's place given back meanwhile if it holds one.
    pub fn waiting<R>(&self, wait: impl FnOnce() -> R) -> R {
        let holds = HOLDS_PLACE.with(|p| p.get()) == Some(self as *const Pool);
        if holds {
            self.give_place();
        }
        let result = wait();
        if holds {
            self.take_place();
        }
        result
    }

    /// Waits for a submission, giving back this thread's place meanwhile if it holds one.
    pub fn wait(&self, submission: &Submission) -> Arc<TaskOutcome> {
        let holds = HOLDS_PLACE.with(|p| p.get()) == Some(self as *const Pool);
        let already = submission.outcome.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(outcome) = already {
            return outcome;
        }
        if holds {
            self.give_place();
        }
        let mut outcome = submission.outcome.lock().unwrap_or_else(|e| e.into_inner());
        while outcome.is_none() {
            outcome = submission.done.wait(outcome).unwrap_or_else(|e| e.into_inner());
        }
        let result = outcome.clone().expect("checked above");
        drop(outcome);
        if holds {
            self.take_place();
        }
        result
    }
}

impl Submission {
    /// The outcome, if the call has finished.
    pub fn outcome(&self) -> Option<Arc<TaskOutcome>> {
        self.outcome.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
