//! Transactions (DESIGN §6, reference §11): records are staged and written only on commit.
//!
//! Every task run is a transaction whose key is its cache key; a flow or task may open
//! transactions of its own. A transaction opened while another is open is its child. The
//! rules are Prefect's (commit modes, children committed in call order, rollback of the
//! parent when a child fails, hooks), except where DESIGN §6 differs on purpose: the
//! outermost commit publishes every staged record all-or-nothing through a [`journal`], and
//! on-commit hooks run only after the records are durable.

pub mod journal;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use journal::JournalEntry;

/// When a transaction's records are written (Prefect's `CommitMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitMode {
    /// At the outermost transaction's commit.
    Lazy,
    /// At the transaction's own exit.
    Eager,
    /// Never; the outermost exit rolls back.
    Off,
}

/// Where a transaction is in its life (reference 11.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnState {
    /// Open.
    Active,
    /// A record has been staged.
    Staged,
    /// Committed: its record existed at begin, or its commit wrote it.
    Committed,
    /// Rolled back.
    RolledBack,
}

/// Whose hooks to call when a transaction commits or rolls back.
#[derive(Clone, Debug)]
pub struct HookTarget {
    /// The component exporting `cachehost:task/hooks`.
    pub component: usize,
    /// The task's function name.
    pub task: String,
    /// The run the hook's log lines belong to.
    pub run_name: String,
}

/// Something held while the transaction is open and let go when it ends (a lease lock).
pub trait Held: Send {
    /// Lets it go; errors are reported by the holder's own logging.
    fn release(self: Box<Self>);
}

/// One transaction.
pub struct Txn {
    /// Its key: the task run's cache key, or the key a component gave.
    pub key: Option<String>,
    /// Its commit mode.
    pub commit_mode: CommitMode,
    write_on_commit: bool,
    state: TxnState,
    parent: Option<TxnRef>,
    children: Vec<TxnRef>,
    staged: Option<JournalEntry>,
    values: BTreeMap<String, String>,
    hooks: Option<HookTarget>,
    held: Vec<Box<dyn Held>>,
}

/// A shared handle on a transaction: children are attached across Stores and threads.
pub type TxnRef = Arc<Mutex<Txn>>;

/// What committing and rolling back do outside the tree: write records, call hooks.
pub trait Effects {
    /// Durably publishes every entry, all or nothing.
    fn publish(&self, entries: Vec<JournalEntry>) -> Result<(), String>;
    /// Calls a component's on-commit (`commit` true) or on-rollback hook.
    fn run_hook(&self, target: &HookTarget, commit: bool, key: Option<&str>, values: &BTreeMap<String, String>);
    /// Reports a failed commit.
    fn commit_failed(&self, key: Option<&str>, reason: &str);
}

fn lock(txn: &TxnRef) -> MutexGuard<'_, Txn> {
    txn.lock().unwrap_or_else(|e| e.into_inner())
}

impl Txn {
    /// Opens a transaction under `parent`; the mode defaults to the parent's, else LAZY.
    pub fn open(key: Option<String>, commit_mode: Option<CommitMode>, parent: Option<TxnRef>) -> TxnRef {
        let inherited = parent.as_ref().map(|p| lock(p).commit_mode);
        Arc::new(Mutex::new(Txn {
            key,
            commit_mode: commit_mode.or(inherited).unwrap_or(CommitMode::Lazy),
            write_on_commit: true,
            state: TxnState::Active,
            parent,
            children: Vec::new(),
            staged: None,
            values: BTreeMap::new(),
            hooks: None,
            held: Vec::new(),
        }))
    }
}

/// Marks a transaction committed at begin: its record exists (a cache hit, reference 1.4).
pub fn mark_committed(txn: &TxnRef) {
    lock(txn).state = TxnState::Committed;
}

/// Whether the transaction is committed.
pub fn is_committed(txn: &TxnRef) -> bool {
    lock(txn).state == TxnState::Committed
}

/// The transaction's state.
pub fn state(txn: &TxnRef) -> TxnState {
    lock(txn).state
}

/// Keeps `held` until the transaction ends (commit or rollback).
pub fn hold(txn: &TxnRef, held: Box<dyn Held>) {
    lock(txn).held.push(held);
}

/// Stages a record and registers hooks (reference 1.6); ignored when already committed.
pub fn stage(txn: &TxnRef, record: Option<JournalEntry>, hooks: Option<HookTarget>) {
    let mut t = lock(txn);
    if t.state == TxnState::Committed || t.state == TxnState::RolledBack {
        return;
    }
    if record.is_some() {
        t.staged = record;
    }
    if hooks.is_some() {
        t.hooks = hooks;
    }
    t.state = TxnState::Staged;
}

/// Whether committing writes the keyed record (reference 11.14, default true).
pub fn set_write_on_commit(txn: &TxnRef, write: bool) {
    lock(txn).write_on_commit = write;
}

/// Whether committing writes the keyed record.
pub fn write_on_commit(txn: &TxnRef) -> bool {
    lock(txn).write_on_commit
}

/// Whether a record has been staged.
pub fn has_record(txn: &TxnRef) -> bool {
    lock(txn).staged.is_some()
}

/// The transaction's key.
pub fn key(txn: &TxnRef) -> Option<String> {
    lock(txn).key.clone()
}

/// Sets a value on the transaction.
pub fn set(txn: &TxnRef, name: &str, value: String) {
    lock(txn).values.insert(name.to_owned(), value);
}

/// Reads a value from the transaction or its parents (reference 11.15).
pub fn get(txn: &TxnRef, name: &str) -> Option<String> {
    let mut current = Some(txn.clone());
    while let Some(t) = current {
        let guard = lock(&t);
        if let Some(value) = guard.values.get(name) {
            return Some(value.clone());
        }
        current = guard.parent.clone();
    }
    None
}

/// The parent transaction.
pub fn parent(txn: &TxnRef) -> Option<TxnRef> {
    lock(txn).parent.clone()
}

/// Commits: publishes the staged records of the transaction and of its children not yet
/// committed or rolled back, then marks them committed, lets their leases go and runs
/// their on-commit hooks in commit order. Returns false when already committed or rolled
/// back (nothing happens, reference 11.6) or when publishing failed (then it rolls back).
pub fn commit(txn: &TxnRef, effects: &dyn Effects) -> bool {
    {
        let mut t = lock(txn);
        if t.state == TxnState::Committed || t.state == TxnState::RolledBack {
            release(&mut t);
            return false;
        }
    }
    let mut order = Vec::new();
    commit_order(txn, &mut order);
    // Taken, not cloned: a record may hold a large value, and nothing reads it once it is
    // published (or, if publishing fails, rolled back).
    let entries: Vec<JournalEntry> = order.iter().filter_map(|t| lock(t).staged.take()).collect();
    if let Err(reason) = effects.publish(entries) {
        effects.commit_failed(lock(txn).key.as_deref(), &reason);
        rollback(txn, effects);
        return false;
    }
    let mut hooks = Vec::new();
    for node in &order {
        let mut t = lock(node);
        t.state = TxnState::Committed;
        release(&mut t);
        if let Some(target) = t.hooks.clone() {
            hooks.push((target, t.key.clone(), t.values.clone()));
        }
    }
    for (target, key, values) in hooks {
        effects.run_hook(&target, true, key.as_deref(), &values);
    }
    true
}

/// Children first, in call order, each with its own children first; then the transaction.
fn commit_order(txn: &TxnRef, order: &mut Vec<TxnRef>) {
    let children = lock(txn).children.clone();
    for child in children {
        let state = lock(&child).state;
        if state != TxnState::Committed && state != TxnState::RolledBack {
            commit_order(&child, order);
        }
    }
    order.push(txn.clone());
}

/// Rolls back: runs the transaction's on-rollback hooks, then rolls back its children in
/// reverse order (reference 11.7). Returns false when already committed or rolled back.
pub fn rollback(txn: &TxnRef, effects: &dyn Effects) -> bool {
    let (hooks, children) = {
        let mut t = lock(txn);
        if t.state == TxnState::Committed || t.state == TxnState::RolledBack {
            // Unlike Prefect (reference 11.7), a lease is always let go.
            release(&mut t);
            return false;
        }
        t.state = TxnState::RolledBack;
        release(&mut t);
        (t.hooks.clone().map(|h| (h, t.key.clone(), t.values.clone())), t.children.clone())
    };
    if let Some((target, key, values)) = hooks {
        effects.run_hook(&target, false, key.as_deref(), &values);
    }
    for child in children.iter().rev() {
        rollback(child, effects);
    }
    true
}

/// Leaves the transaction, as Prefect's `__exit__` + `reset()` (reference 11.4, 11.5):
/// `failed` rolls it back; otherwise EAGER commits at once. With a parent, it becomes the
/// parent's child (and a rolled-back child rolls the parent back at once); without one,
/// LAZY commits and OFF rolls back. Returns whether the transaction is committed.
pub fn exit(txn: &TxnRef, failed: bool, effects: &dyn Effects) -> bool {
    let (mode, parent) = {
        let t = lock(txn);
        (t.commit_mode, t.parent.clone())
    };
    if failed {
        rollback(txn, effects);
    } else if mode == CommitMode::Eager {
        commit(txn, effects);
    }
    match parent {
        Some(parent) => {
            lock(&parent).children.push(txn.clone());
            if state(txn) == TxnState::RolledBack {
                rollback(&parent, effects);
            }
        }
        None if !failed => match mode {
            CommitMode::Off => {
                rollback(txn, effects);
            }
            CommitMode::Lazy | CommitMode::Eager => {
                commit(txn, effects);
            }
        },
        None => {}
    }
    is_committed(txn)
}

fn release(t: &mut Txn) {
    for held in t.held.drain(..) {
        held.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder {
        events: Mutex<Vec<String>>,
        fail_publish: bool,
    }

    impl Effects for Recorder {
        fn publish(&self, entries: Vec<JournalEntry>) -> Result<(), String> {
            if self.fail_publish {
                return Err("disk full".into());
            }
            let keys: Vec<String> = entries.iter().map(|e| e.key.clone()).collect();
            self.events.lock().unwrap().push(format!("publish {}", keys.join(",")));
            Ok(())
        }
        fn run_hook(&self, target: &HookTarget, commit: bool, key: Option<&str>, values: &BTreeMap<String, String>) {
            let what = if commit { "on-commit" } else { "on-rollback" };
            let values: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
            self.events.lock().unwrap().push(format!(
                "{what} {} {} [{}]",
                target.task,
                key.unwrap_or("-"),
                values.join(",")
            ));
        }
        fn commit_failed(&self, key: Option<&str>, reason: &str) {
            self.events.lock().unwrap().push(format!("commit failed {} {reason}", key.unwrap_or("-")));
        }
    }

    impl Recorder {
        fn events(&self) -> Vec<String> {
            self.events.lock().unwrap().clone()
        }
    }

    fn entry(key: &str) -> JournalEntry {
        JournalEntry {
            result_storage: None,
            key_storage: None,
            key: key.into(),
            record: journal::StagedRecord::Bytes(vec![]),
        }
    }

    fn hooks(task: &str) -> Option<HookTarget> {
        Some(HookTarget { component: 0, task: task.into(), run_name: format!("{task}-run") })
    }

    /// A task run inside `parent` that succeeds and stages `key`.
    fn task(parent: &TxnRef, key: &str, effects: &Recorder) -> TxnRef {
        let txn = Txn::open(Some(key.into()), None, Some(parent.clone()));
        stage(&txn, Some(entry(key)), hooks(key));
        exit(&txn, false, effects);
        txn
    }

    #[test]
    fn lazy_children_are_written_together_at_the_outer_commit_then_hooks_run_in_call_order() {
        let fx = Recorder::default();
        let outer = Txn::open(None, None, None);
        let a = task(&outer, "a", &fx);
        task(&outer, "b", &fx);
        assert!(fx.events().is_empty(), "nothing is written before the outer commit");
        assert!(!is_committed(&a));
        assert!(exit(&outer, false, &fx));
        assert_eq!(fx.events(), ["publish a,b", "on-commit a a []", "on-commit b b []"]);
        assert!(is_committed(&a));
    }

    #[test]
    fn eager_children_commit_at_their_own_exit_and_ignore_a_later_rollback() {
        let fx = Recorder::default();
        let outer = Txn::open(None, Some(CommitMode::Eager), None);
        task(&outer, "a", &fx);
        assert_eq!(fx.events(), ["publish a", "on-commit a a []"]);
        // A later failing child rolls the parent back; the committed child's hooks do not run.
        let failing = Txn::open(Some("b".into()), None, Some(outer.clone()));
        exit(&failing, true, &fx);
        assert_eq!(state(&outer), TxnState::RolledBack);
        assert_eq!(fx.events().len(), 2, "{:?}", fx.events());
    }

    #[test]
    fn off_writes_nothing_and_runs_rollback_hooks_at_the_outer_exit() {
        let fx = Recorder::default();
        let outer = Txn::open(None, Some(CommitMode::Off), None);
        task(&outer, "a", &fx);
        task(&outer, "b", &fx);
        assert!(!exit(&outer, false, &fx));
        assert_eq!(fx.events(), ["on-rollback b b []", "on-rollback a a []"]);
    }

    #[test]
    fn a_failing_child_rolls_the_parent_back_at_once_siblings_hooks_in_reverse() {
        let fx = Recorder::default();
        let outer = Txn::open(None, None, None);
        task(&outer, "a", &fx);
        task(&outer, "b", &fx);
        // Fails before staging: its own hooks are not registered, so they do not run.
        let failing = Txn::open(Some("c".into()), None, Some(outer.clone()));
        exit(&failing, true, &fx);
        assert_eq!(fx.events(), ["on-rollback b b []", "on-rollback a a []"]);
        // Later children complete, but nothing is ever written (reference 11.11).
        task(&outer, "d", &fx);
        assert!(!exit(&outer, false, &fx));
        assert_eq!(fx.events().len(), 2, "{:?}", fx.events());
    }

    #[test]
    fn children_of_a_committed_keyed_transaction_never_commit() {
        let fx = Recorder::default();
        let outer = Txn::open(Some("k".into()), None, None);
        mark_committed(&outer);
        task(&outer, "a", &fx);
        assert!(exit(&outer, false, &fx), "it was committed at begin");
        assert!(fx.events().is_empty(), "{:?}", fx.events());
    }

    #[test]
    fn nested_transactions_commit_depth_first() {
        let fx = Recorder::default();
        let outer = Txn::open(None, None, None);
        let middle = Txn::open(Some("m".into()), None, Some(outer.clone()));
        task(&middle, "inner", &fx);
        stage(&middle, Some(entry("m")), hooks("m"));
        exit(&middle, false, &fx);
        task(&outer, "last", &fx);
        exit(&outer, false, &fx);
        assert_eq!(fx.events()[0], "publish inner,m,last");
    }

    #[test]
    fn values_are_read_through_the_parent_chain() {
        let outer = Txn::open(None, None, None);
        set(&outer, "who", "\"outer\"".into());
        let inner = Txn::open(None, None, Some(outer.clone()));
        assert_eq!(get(&inner, "who").as_deref(), Some("\"outer\""));
        set(&inner, "who", "\"inner\"".into());
        assert_eq!(get(&inner, "who").as_deref(), Some("\"inner\""));
        assert_eq!(get(&inner, "nobody"), None);
    }

    #[test]
    fn a_failed_publish_rolls_back_and_reports_it() {
        let fx = Recorder { fail_publish: true, ..Default::default() };
        let outer = Txn::open(None, None, None);
        task(&outer, "a", &fx);
        assert!(!exit(&outer, false, &fx));
        assert_eq!(fx.events(), ["commit failed - disk full", "on-rollback a a []"]);
    }

    #[test]
    fn staging_is_ignored_once_committed() {
        let txn = Txn::open(Some("k".into()), None, None);
        mark_committed(&txn);
        stage(&txn, Some(entry("k")), None);
        assert!(lock(&txn).staged.is_none());
    }
}
