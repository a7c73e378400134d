//! The run history: every `cachehost run` keeps its report in
//! `$CACHEHOST_HOME/runs/<flow-run-id>.json`, written when the run starts, again as its task
//! runs finish (at most every [`LIVE_WRITE_INTERVAL`]) and when it ends, so `cachehost ui`
//! can follow a run that is still going. Each write is atomic; the `runs_keep` most recent
//! reports are kept (by the time they were last written).

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::report::RunReport;
use crate::files::{self, Durability};

/// A report still being written is rewritten at most this often.
pub const LIVE_WRITE_INTERVAL: Duration = Duration::from_millis(200);

/// The folder of run reports.
#[derive(Clone, Debug)]
pub struct History {
    dir: PathBuf,
}

/// A run report that could not be found, read, written or removed.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// A file operation failed.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "read".
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// An atomic write failed.
    #[error(transparent)]
    Write(#[from] files::WriteError),
    /// No report has this id or starts with it.
    #[error("no run {given:?} in {}; `cachehost runs ls` lists the runs kept", dir.display())]
    NotFound {
        /// The id, or start of one, given.
        given: String,
        /// The history folder.
        dir: PathBuf,
    },
    /// Several reports start with the id given.
    #[error("{count} runs start with {given:?}; give more of the id")]
    Ambiguous {
        /// The start of an id given.
        given: String,
        /// How many match.
        count: usize,
    },
    /// What was given cannot be a flow run id (they are UUIDs).
    #[error("{given:?} is not a flow run id: give its hex digits and dashes, as `cachehost runs ls` shows them")]
    BadId {
        /// What was given.
        given: String,
    },
    /// A report file is not a run report.
    #[error("{} is not a readable run report ({reason}); remove it with `cachehost runs rm`", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A report to keep has no flow run, so no id to be kept under.
    #[error("a report without a flow run (a standalone task run) is not kept in the run history")]
    NoFlowRun,
}

/// One kept report, or why it cannot be read.
#[derive(Debug)]
pub struct Listed {
    /// The flow run id (the file's name without `.json`).
    pub id: String,
    /// When the report was last written.
    pub modified: SystemTime,
    /// The report, or why it is unreadable.
    pub report: Result<RunReport, String>,
}

impl History {
    /// The history under `home` (`$CACHEHOST_HOME`).
    pub fn new(home: &Path) -> History {
        History { dir: home.join("runs") }
    }

    /// The folder holding the reports.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Writes `report` under its flow run's id, atomically (a reader sees the previous
    /// version or this one).
    pub fn save(&self, report: &RunReport) -> Result<(), HistoryError> {
        let id = &report.flow_run.as_ref().ok_or(HistoryError::NoFlowRun)?.id;
        check_id(id)?;
        let bytes = serde_json::to_vec_pretty(report).expect("a run report serializes");
        files::write_atomically(&self.path(id), &bytes, Durability::Lazy)?;
        Ok(())
    }

    /// The ids of the kept reports with when each was last written, most recent first.
    fn entries(&self) -> Result<Vec<(String, SystemTime)>, HistoryError> {
        let read = match std::fs::read_dir(&self.dir) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(HistoryError::Io { action: "list", path: self.dir.clone(), source }),
        };
        let mut entries = Vec::new();
        for entry in read.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else { continue };
            if check_id(id).is_err() {
                continue;
            }
            // A report removed meanwhile (by another process's pruning) is simply gone.
            let Ok(modified) = entry.metadata().and_then(|m| m.modified()) else { continue };
            entries.push((id.to_owned(), modified));
        }
        entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(entries)
    }

    /// Every kept report, most recently written first.
    pub fn list(&self) -> Result<Vec<Listed>, HistoryError> {
        Ok(self
            .entries()?
            .into_iter()
            .filter_map(|(id, modified)| {
                let report = match std::fs::read(self.path(&id)) {
                    Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| e.to_string()),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
                    Err(e) => Err(e.to_string()),
                };
                Some(Listed { id, modified, report })
            })
            .collect())
    }

    /// The full id of the kept report whose id is or starts with `given`.
    pub fn resolve(&self, given: &str) -> Result<String, HistoryError> {
        check_id(given)?;
        let given = given.to_ascii_lowercase();
        let found: Vec<String> =
            self.entries()?.into_iter().map(|(id, _)| id).filter(|id| id.starts_with(&given)).collect();
        match found.as_slice() {
            [id] => Ok(id.clone()),
            [] => Err(HistoryError::NotFound { given, dir: self.dir.clone() }),
            _ if found.contains(&given) => Ok(given),
            _ => Err(HistoryError::Ambiguous { given, count: found.len() }),
        }
    }

    /// The report whose id is or starts with `given`.
    pub fn load(&self, given: &str) -> Result<RunReport, HistoryError> {
        let id = self.resolve(given)?;
        let path = self.path(&id);
        let bytes = std::fs::read(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => HistoryError::NotFound { given: given.to_owned(), dir: self.dir.clone() },
            _ => HistoryError::Io { action: "read", path: path.clone(), source },
        })?;
        serde_json::from_slice(&bytes).map_err(|e| HistoryError::Unreadable { path, reason: e.to_string() })
    }

    /// A text that changes whenever the report of `id` is rewritten (its modification time
    /// and length); none when there is no such report.
    pub fn stamp(&self, id: &str) -> Option<String> {
        check_id(id).ok()?;
        let meta = std::fs::metadata(self.path(id)).ok()?;
        let modified = meta.modified().ok()?.duration_since(SystemTime::UNIX_EPOCH).ok()?;
        Some(format!("{}-{}", modified.as_nanos(), meta.len()))
    }

    /// Removes the reports with these full ids; returns how many were there.
    pub fn remove(&self, ids: &[String]) -> Result<usize, HistoryError> {
        let mut removed = 0;
        for id in ids {
            check_id(id)?;
            let path = self.path(id);
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(HistoryError::Io { action: "remove", path, source }),
            }
        }
        Ok(removed)
    }

    /// Removes all but the `keep` most recently written reports; returns the ids removed.
    pub fn prune(&self, keep: usize) -> Result<Vec<String>, HistoryError> {
        let old: Vec<String> = self.entries()?.into_iter().skip(keep).map(|(id, _)| id).collect();
        self.remove(&old)?;
        Ok(old)
    }
}

/// Flow run ids are UUIDs: hex digits and dashes, which also keeps every name inside the folder.
fn check_id(id: &str) -> Result<(), HistoryError> {
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(HistoryError::BadId { given: id.to_owned() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::report::{FlowRunReport, Instantiations, StateReport};

    fn report(id: &str) -> RunReport {
        RunReport {
            flow_run: Some(FlowRunReport {
                id: id.to_owned(),
                name: "calm-otter".into(),
                flow: "main".into(),
                parameters: Default::default(),
                state: StateReport { name: "Completed".into(), type_name: "COMPLETED".into(), message: None },
                result: None,
                started_ms: 1,
                duration_ms: Some(2.0),
            }),
            task_runs: Vec::new(),
            instantiations: Instantiations::default(),
            object_store_requests: 0,
            components: Vec::new(),
            logs: Vec::new(),
        }
    }

    #[test]
    fn reports_are_kept_read_back_by_prefix_and_pruned_to_the_most_recent() {
        let dir = tempfile::tempdir().unwrap();
        let history = History::new(dir.path());
        assert!(history.list().unwrap().is_empty(), "no folder yet is an empty history");
        for id in ["aaaa-1", "aaab-2", "bbbb-3"] {
            history.save(&report(id)).unwrap();
            // Modification times order the reports; make each one strictly later.
            let file = std::fs::File::options().write(true).open(history.path(id)).unwrap();
            let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000 + u64::from(id.as_bytes()[5] - b'0'));
            file.set_modified(when).unwrap();
        }
        assert_eq!(history.load("bb").unwrap().flow_run.unwrap().name, "calm-otter");
        assert!(matches!(history.resolve("aaa"), Err(HistoryError::Ambiguous { count: 2, .. })));
        assert!(matches!(history.resolve("c"), Err(HistoryError::NotFound { .. })));
        assert!(matches!(history.resolve("../x"), Err(HistoryError::BadId { .. })));
        let ids: Vec<String> = history.list().unwrap().into_iter().map(|l| l.id).collect();
        assert_eq!(ids, ["bbbb-3", "aaab-2", "aaaa-1"]);
        assert_eq!(history.prune(2).unwrap(), ["aaaa-1"]);
        assert_eq!(history.remove(&["aaab-2".into(), "aaab-2".into()]).unwrap(), 1);
        let ids: Vec<String> = history.list().unwrap().into_iter().map(|l| l.id).collect();
        assert_eq!(ids, ["bbbb-3"]);
    }

    #[test]
    fn an_unreadable_report_is_listed_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let history = History::new(dir.path());
        std::fs::create_dir_all(history.dir()).unwrap();
        std::fs::write(history.path("dead-beef"), b"{not json").unwrap();
        let listed = history.list().unwrap();
        assert!(listed[0].report.is_err());
        assert!(matches!(history.load("dead"), Err(HistoryError::Unreadable { .. })));
    }
}
