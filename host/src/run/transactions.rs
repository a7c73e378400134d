//! The session's side of transactions, isolation and submitted calls: publishing records,
//! calling hooks, recovering interrupted commits, leases for SERIALIZABLE, and the runtime
//! interface's transaction and submit functions.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::Val;

use super::ctx::RunCtx;
use super::{Purpose, Session};
use crate::clock::now_ms;
use crate::lock::{self, Lease};
use crate::log::{Level, Subject};
use crate::options::ResolvedTask;
use crate::store::{record, Lookup};
use crate::txn::journal::{self, Journal, JournalEntry, StagedRecord};
use crate::txn::{self, CommitMode, Effects, Held, HookTarget, Txn, TxnRef};
use crate::value::{Ty, Value};

/// The error of a SERIALIZABLE task or transaction without a lock manager (reference 11.3).
pub const SERIALIZABLE_WITHOUT_LOCK_MANAGER: &str = "Isolation level SERIALIZABLE is not supported by provided \
    configuration. Please ensure you've provided a lock file directory or lock manager when using the SERIALIZABLE \
    isolation level.";

impl Held for Lease {
    fn release(self: Box<Self>) {
        // A lost lease was already reported by the renewer; nothing else to do here.
        let _ = Lease::release(*self);
    }
}

impl Session {
    /// Takes the lease a SERIALIZABLE transaction on `key` needs, held until it ends.
    pub(crate) fn isolate(
        self: &Arc<Self>,
        txn: &TxnRef,
        key: &str,
        resolved: &ResolvedTask,
        holder: &str,
    ) -> Result<(), String> {
        self.isolate_with(
            txn,
            key,
            resolved.isolation_level.as_deref(),
            resolved.lock_manager.as_deref(),
            resolved,
            holder,
        )
    }

    fn isolate_with(
        self: &Arc<Self>,
        txn: &TxnRef,
        key: &str,
        isolation_level: Option<&str>,
        lock_manager: Option<&str>,
        timeouts: &ResolvedTask,
        holder: &str,
    ) -> Result<(), String> {
        if isolation_level != Some("SERIALIZABLE") {
            return Ok(());
        }
        let spec = lock_manager.ok_or(SERIALIZABLE_WITHOUT_LOCK_MANAGER)?;
        let manager = lock::manager_for(spec, &self.settings.home).map_err(|e| e.to_string())?;
        let lease = Lease::acquire(manager, key, holder, timeouts.lock_acquire_timeout, timeouts.lock_hold_timeout)
            .map_err(|e| e.to_string())?;
        txn::hold(txn, Box::new(lease));
        Ok(())
    }

    /// Writes one record to the store its entry names.
    fn apply(&self, entry: &JournalEntry) -> Result<(), String> {
        let store = self
            .result_store(entry.result_storage.as_deref(), entry.key_storage.as_deref())
            .map_err(|e| e.to_string())?;
        entry.record.write_to(store.as_ref(), &entry.key).map_err(|e| e.to_string())
    }

    /// Re-applies the commits a killed host left half done, before anything runs.
    pub(crate) fn recover_journals(&self) {
        let dir = self.settings.home.join("txn");
        for path in journal::pending(&dir) {
            match journal::read(&path) {
                Ok(entries) => {
                    let applied = entries.iter().all(|entry| self.apply(entry).is_ok());
                    if applied {
                        let _ = std::fs::remove_file(&path);
                        self.logger.log(
                            Level::Warning,
                            &Subject::Host,
                            &format!("Completed a transaction commit interrupted earlier ({} records)", entries.len()),
                        );
                    } else {
                        self.logger.log(
                            Level::Warning,
                            &Subject::Host,
                            &format!(
                                "Cannot yet complete the interrupted commit {}; will retry at the next start",
                                path.display()
                            ),
                        );
                    }
                }
                Err(e) => {
                    let _ = std::fs::rename(&path, path.with_extension("damaged"));
                    self.logger.log(Level::Error, &Subject::Host, &format!("{e}; it was set aside and not applied"));
                }
            }
        }
    }

    fn call_hook(
        self: &Arc<Self>,
        target: &HookTarget,
        commit: bool,
        key: Option<&str>,
        values: &BTreeMap<String, String>,
    ) {
        let component = &self.components[target.component];
        let Some((on_commit, on_rollback)) = component.hook_exports else { return };
        let (export, name, kind) =
            if commit { (on_commit, "on-commit", "Commit") } else { (on_rollback, "on-rollback", "Rollback") };
        let subject = Subject::TaskRun(target.run_name.clone());
        self.logger.log(Level::Info, &subject, &format!("Running {} hook '{name}'", kind.to_lowercase()));
        let call = Val::Record(vec![
            ("task".into(), Val::String(target.task.clone())),
            ("key".into(), Val::Option(key.map(|k| Box::new(Val::String(k.to_owned()))))),
            (
                "values".into(),
                Val::List(
                    values
                        .iter()
                        .map(|(n, v)| Val::Tuple(vec![Val::String(n.clone()), Val::String(v.clone())]))
                        .collect(),
                ),
            ),
        ]);
        let result = (|| {
            let mut store = self.new_store(target.component, None, None, 0, &self.settings.limits, None);
            store.data_mut().log_subject = Some(subject.clone());
            let instance = self.instantiate(&mut store, target.component, Purpose::Hook)?;
            let func = instance.get_func(&mut store, export).ok_or("the hook export is not a function")?;
            func.call(&mut store, &[call], &mut []).map_err(|e| format!("{e:#}"))
        })();
        match result {
            Ok(()) => {
                self.logger.log(Level::Info, &subject, &format!("{kind} hook '{name}' finished running successfully"))
            }
            Err(e) => self.logger.log(
                Level::Error,
                &subject,
                &format!("{kind} hook '{name}' failed: {}", super::first_line(&e)),
            ),
        }
    }

    /// Opens a transaction for the runtime interface's `begin-transaction`.
    pub(crate) fn begin_transaction(self: &Arc<Self>, data: &mut RunCtx, options: &Val) -> Result<(), String> {
        let field = |name: &str| match options {
            Val::Record(fields) => fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()),
            _ => None,
        };
        let text = |name: &str| match field(name) {
            Some(Val::Option(Some(v))) => match *v {
                Val::String(s) => Some(s),
                _ => None,
            },
            _ => None,
        };
        let flag = |name: &str| match field(name) {
            Some(Val::Option(Some(v))) => match *v {
                Val::Bool(b) => Some(b),
                _ => None,
            },
            _ => None,
        };
        let mode = match field("commit-mode") {
            Some(Val::Option(Some(v))) => match *v {
                Val::Enum(ref m) if m == "eager" => Some(CommitMode::Eager),
                Val::Enum(ref m) if m == "off" => Some(CommitMode::Off),
                _ => Some(CommitMode::Lazy),
            },
            _ => None,
        };
        let key = text("key");
        if let Some(key) = &key {
            crate::key::check_key(key).map_err(|e| e.to_string())?;
        }
        let txn = Txn::open(key.clone(), mode, data.current_txn());
        txn::set_write_on_commit(&txn, flag("write-on-commit").unwrap_or(true));
        if let Some(key) = &key {
            let holder = uuid::Uuid::new_v4().to_string();
            let timeouts = self.default_timeouts();
            self.isolate_with(
                &txn,
                key,
                text("isolation-level").as_deref(),
                text("lock-manager").as_deref(),
                &timeouts,
                &holder,
            )?;
            if !flag("overwrite").unwrap_or(false) {
                let store = self.result_store(None, None).map_err(|e| e.to_string())?;
                if let Lookup::Hit(record) = store.lookup(key, &Ty::String, now_ms()) {
                    if self.trusts(&record.meta, key, &data.subject()) {
                        txn::mark_committed(&txn);
                    }
                }
            }
        }
        data.txns.push(txn);
        data.opened_txns += 1;
        Ok(())
    }

    /// Ends the innermost transaction this instance opened (`end-transaction`).
    pub(crate) fn end_transaction(self: &Arc<Self>, data: &mut RunCtx, failed: bool) -> bool {
        if data.opened_txns == 0 {
            self.logger.log(Level::Warning, &data.subject(), "end-transaction was called without an open transaction");
            return false;
        }
        let txn = data.txns.pop().expect("an opened transaction is on the stack");
        data.opened_txns -= 1;
        if !failed && !txn::has_record(&txn) {
            // A keyed transaction writes its record even when nothing was staged (reference 11.14).
            self.stage_user_value(&txn, "null");
        }
        txn::exit(&txn, failed, self)
    }

    /// Stages `json` as a keyed user transaction's record (`stage`).
    pub(crate) fn stage_user_value(&self, txn: &TxnRef, json: &str) {
        let Some(key) = txn::key(txn) else { return };
        if !txn::write_on_commit(txn) {
            return;
        }
        let value = Value::String(json.to_owned());
        let value_bytes = record::encode_value(&value);
        let now = now_ms();
        let mut meta = record::RecordMeta::new(
            key.clone(),
            String::new(),
            String::new(),
            Vec::new(),
            now,
            None,
            Ty::String,
            &value_bytes,
        );
        self.trust.sign(&mut meta);
        let entry = JournalEntry {
            result_storage: None,
            key_storage: None,
            key,
            record: StagedRecord::Bytes(record::encode(&meta, &value_bytes)),
        };
        txn::stage(txn, Some(entry), None);
    }

    fn default_timeouts(&self) -> ResolvedTask {
        crate::options::resolve("", &[], &self.settings).expect("the empty layering always resolves")
    }
}

impl Effects for Arc<Session> {
    fn publish(&self, entries: Vec<JournalEntry>) -> Result<(), String> {
        match entries.len() {
            0 => Ok(()),
            // One record is one atomic file write.
            1 => self.apply(&entries[0]),
            _ => {
                let journal = Journal::write(&self.settings.home.join("txn"), &entries).map_err(|e| e.to_string())?;
                // The journal is durable: the commit is decided. A record that cannot be
                // written now is written at the next start.
                let mut all = true;
                for entry in &entries {
                    if let Some(pause) = self.commit_pause {
                        std::thread::sleep(pause);
                    }
                    if let Err(e) = self.apply(entry) {
                        all = false;
                        self.logger.log(
                            Level::Warning,
                            &Subject::Host,
                            &format!(
                                "Could not write record '{}' yet ({e}); it will be written at the next start",
                                entry.key
                            ),
                        );
                    }
                }
                if all {
                    journal.finish();
                }
                Ok(())
            }
        }
    }

    fn run_hook(&self, target: &HookTarget, commit: bool, key: Option<&str>, values: &BTreeMap<String, String>) {
        self.call_hook(target, commit, key, values);
    }

    fn commit_failed(&self, key: Option<&str>, reason: &str) {
        self.logger.log(
            Level::Error,
            &Subject::Host,
            &format!("An error was encountered while committing transaction '{}': {reason}", key.unwrap_or("")),
        );
    }
}
