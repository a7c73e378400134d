//! All-or-nothing publication of a transaction's records, also across a crash of the host.
//!
//! The records of one commit are first written, with a checksum, to one journal file
//! (temp file, fsync, rename into `<home>/txn/<id>.journal`, fsync of the folder: the
//! rename is the commit point), then applied to their stores, then the journal is deleted.
//! At the next start, every journal whose writer process is gone is applied again (applying
//! is idempotent) and temp files of dead writers are deleted: a commit is either fully
//! visible or not at all. Journals and temp files carry their writer's pid, so a process
//! never touches the commit another live process is making.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::files::{self, Durability, STRAY_TEMP_AGE};
use crate::store::record::NewRecord;
use crate::store::{ResultStore, StoreError};

const MAGIC: &[u8; 5] = b"CHTXN";
const VERSION: u8 = 1;

/// One record to publish: where, under which key, and its bytes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JournalEntry {
    /// The result storage the record belongs to (as the task's options name it).
    pub result_storage: Option<String>,
    /// The key storage, when keys are kept apart.
    pub key_storage: Option<String>,
    /// The record's key.
    pub key: String,
    /// The record.
    pub record: StagedRecord,
}

/// A staged record: its bytes, or a new record whose value is written from its own buffer
/// when it is published (a journal holds its bytes, as a `Vec<u8>` of them).
#[derive(Clone, Debug)]
pub enum StagedRecord {
    /// The encoded record.
    Bytes(Vec<u8>),
    /// A record built from a task's result.
    New(Box<NewRecord>),
}

impl StagedRecord {
    /// Writes the record to `store` under `key`.
    pub fn write_to(&self, store: &dyn ResultStore, key: &str) -> Result<(), StoreError> {
        match self {
            StagedRecord::Bytes(bytes) => store.write(key, bytes),
            StagedRecord::New(record) => store.write_new(key, record),
        }
    }

    fn bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        match self {
            StagedRecord::Bytes(bytes) => bytes.into(),
            StagedRecord::New(record) => record.to_bytes().into(),
        }
    }
}

impl PartialEq for StagedRecord {
    /// The same bytes.
    fn eq(&self, other: &StagedRecord) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Serialize for StagedRecord {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.bytes().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for StagedRecord {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<StagedRecord, D::Error> {
        Vec::<u8>::deserialize(deserializer).map(StagedRecord::Bytes)
    }
}

/// Why a journal could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The journal folder or file could not be written.
    #[error("cannot write the transaction journal {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A journal file is not a complete journal (it cannot be: the rename is the commit
    /// point; this means the file was damaged afterwards).
    #[error("the transaction journal {path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A written journal: apply its entries, then [`Journal::finish`].
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    /// Durably writes `entries` as one journal in `dir`.
    pub fn write(dir: &Path, entries: &[JournalEntry]) -> Result<Journal, JournalError> {
        let id = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        let path = dir.join(format!("{id}.journal"));
        let body = postcard::to_allocvec(entries).expect("journal entries always encode");
        let mut bytes = Vec::with_capacity(body.len() + 40);
        bytes.extend_from_slice(MAGIC);
        bytes.push(VERSION);
        bytes.extend_from_slice(crate::hash::blake3(&body).as_bytes());
        bytes.extend_from_slice(&body);
        files::write_atomically(&path, &bytes, Durability::Durable)
            .map_err(|e| JournalError::Write { path: path.clone(), source: e.source })?;
        Ok(Journal { path })
    }

    /// Deletes the journal once every entry is applied.
    pub fn finish(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads one journal file.
pub fn read(path: &Path) -> Result<Vec<JournalEntry>, JournalError> {
    let damaged = |reason: &str| JournalError::Damaged { path: path.to_owned(), reason: reason.to_owned() };
    let bytes = std::fs::read(path).map_err(|e| damaged(&e.to_string()))?;
    if bytes.len() < MAGIC.len() + 1 + 32 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(damaged("it does not start with a journal header"));
    }
    if bytes[MAGIC.len()] != VERSION {
        return Err(damaged(&format!("unsupported journal version {}", bytes[MAGIC.len()])));
    }
    let (digest, body) = bytes[MAGIC.len() + 1..].split_at(32);
    if crate::hash::blake3(body).as_bytes() != digest {
        return Err(damaged("its checksum does not match"));
    }
    postcard::from_bytes(body).map_err(|e| damaged(&e.to_string()))
}

/// Every complete journal left in `dir` by a host process that stopped before finishing a
/// commit, after deleting the temp files of dead writers (commits that never reached their
/// commit point). Journals of live processes are left to them.
pub fn pending(dir: &Path) -> Vec<PathBuf> {
    files::clean_stray_temp_files(dir, STRAY_TEMP_AGE);
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut journals = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_suffix(".journal") else { continue };
        let writer = id.split_once('-').and_then(|(pid, _)| pid.parse::<u32>().ok());
        let abandoned = match writer {
            Some(pid) => pid != std::process::id() && !files::process_alive(pid),
            None => true,
        };
        if abandoned {
            journals.push(entry.path());
        }
    }
    journals.sort();
    journals
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str) -> JournalEntry {
        JournalEntry {
            result_storage: Some("/s".into()),
            key_storage: None,
            key: key.into(),
            record: StagedRecord::Bytes(vec![1, 2, 3]),
        }
    }

    /// A pid no process has (beyond Linux's pid_max).
    const DEAD_PID: u32 = 4_194_305;

    /// Renames this process's journals in `dir` as if a dead process had written them.
    fn orphan(dir: &Path) -> Vec<PathBuf> {
        let mine = format!("{}-", std::process::id());
        let mut orphaned = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(rest) = name.strip_prefix(&mine) {
                let path = dir.join(format!("{DEAD_PID}-{rest}"));
                std::fs::rename(entry.path(), &path).unwrap();
                orphaned.push(path);
            }
        }
        orphaned
    }

    #[test]
    fn a_written_journal_reads_back_and_finish_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::write(dir.path(), &[entry("a"), entry("b")]).unwrap();
        let written: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.path()).collect();
        assert_eq!(written.len(), 1);
        assert_eq!(read(&written[0]).unwrap(), vec![entry("a"), entry("b")]);
        journal.finish();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_new_record_is_journaled_as_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (_, new) = crate::store::local::tests::large_new_record("big");
        let bytes = new.to_bytes();
        let staged = JournalEntry { record: StagedRecord::New(Box::new(new)), ..entry("big") };
        Journal::write(dir.path(), std::slice::from_ref(&staged)).unwrap();
        let read_back = read(&orphan(dir.path())[0]).unwrap();
        assert!(matches!(&read_back[0].record, StagedRecord::Bytes(b) if *b == bytes));
        // The journal format is unchanged: the entry reads as one with those bytes would.
        let as_bytes = JournalEntry { record: StagedRecord::Bytes(bytes), ..entry("big") };
        assert_eq!(postcard::to_allocvec(&staged).unwrap(), postcard::to_allocvec(&as_bytes).unwrap());
    }

    #[test]
    fn only_journals_of_dead_writers_are_recovered() {
        let dir = tempfile::tempdir().unwrap();
        Journal::write(dir.path(), &[entry("live")]).unwrap();
        assert!(pending(dir.path()).is_empty(), "this process is alive: its commit is its own");
        let orphaned = orphan(dir.path());
        assert_eq!(pending(dir.path()), orphaned);
    }

    #[test]
    fn a_temp_file_of_a_dead_writer_is_discarded_and_a_live_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir.path().join(format!(".tmp-{DEAD_PID}-abc"));
        let live = dir.path().join(files::temp_file_name());
        std::fs::write(&dead, b"half a journal").unwrap();
        std::fs::write(&live, b"a journal being written").unwrap();
        assert!(pending(dir.path()).is_empty());
        assert!(!dead.exists());
        assert!(live.exists(), "a live writer's temp file must survive another process's start");
    }

    #[test]
    fn a_damaged_journal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Journal::write(dir.path(), &[entry("a")]).unwrap();
        let path = &orphan(dir.path())[0];
        let mut bytes = std::fs::read(path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(path, &bytes).unwrap();
        assert!(matches!(read(path), Err(JournalError::Damaged { .. })));
    }
}
