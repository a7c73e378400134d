//! The result store: cached results as records, one per cache key (DESIGN.md §5).
//!
//! A backend only moves record bytes; what makes a record a hit is decided here, once for all
//! backends, by [`Lookup::from_record_bytes`]: the record must decode, carry the key it was
//! asked for, hold a value of the expected type, and not have expired. With key storage,
//! [`SplitStore`] keeps the metadata and the values apart and makes the same checks.

pub mod local;
pub mod object;
pub mod record;
pub mod split;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

pub use local::LocalStore;
pub use object::ObjectStore;
pub use record::{KeyPartMeta, Record, RecordError, RecordMeta};

/// The file under a values folder that holds the bytes with BLAKE3 digest `digest`:
/// `<values>/<first two hex digits>/<hex>`.
pub fn value_file(values: &std::path::Path, digest: &[u8; 32]) -> PathBuf {
    let hex = blake3::Hash::from_bytes(*digest).to_hex();
    values.join(&hex[..2]).join(hex.as_str())
}

/// [`ResultStore::write_shared`] of a store whose result storage is the local folder `root`.
pub(crate) fn write_shared_file(
    root: &std::path::Path,
    kind: Shared,
    name: &str,
    bytes: &[u8],
) -> Result<(), StoreError> {
    files::write_atomically(&root.join(kind.path(name)), bytes, Durability::Lazy)?;
    Ok(())
}

/// [`ResultStore::read_shared`] of a local folder.
pub(crate) fn read_shared_file(
    root: &std::path::Path,
    kind: Shared,
    name: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    let path = root.join(kind.path(name));
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(kind.reading(), path)(e)),
    }
}

/// [`ResultStore::shared_len`] of a local folder.
pub(crate) fn shared_file_len(root: &std::path::Path, kind: Shared, name: &str) -> Result<Option<u64>, StoreError> {
    let path = root.join(kind.path(name));
    match std::fs::metadata(&path) {
        Ok(meta) => Ok(Some(meta.len())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(kind.reading(), path)(e)),
    }
}

/// [`ResultStore::remove_shared`] of a local folder.
pub(crate) fn remove_shared_file(root: &std::path::Path, kind: Shared, name: &str) -> Result<(), StoreError> {
    let path = root.join(kind.path(name));
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::io(kind.removing(), path)(e)),
        _ => Ok(()),
    }
}

/// [`ResultStore::remove_shared_older_than`] of a local folder.
pub(crate) fn remove_shared_files_older_than(
    root: &std::path::Path,
    kind: Shared,
    age: std::time::Duration,
) -> Result<usize, StoreError> {
    let folder = root.join(kind.folder());
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(StoreError::io("list the folder", folder)(e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(StoreError::io("list the folder", &folder))?;
        let old = entry.metadata().and_then(|meta| meta.modified()).is_ok_and(|at| at.elapsed().is_ok_and(|e| e > age));
        if old && entry.file_type().is_ok_and(|t| t.is_file()) {
            std::fs::remove_file(entry.path()).map_err(StoreError::io(kind.removing(), entry.path()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Reads the file of a stored value, `None` when it is missing or does not match `digest`.
pub(crate) fn read_value_file(path: &std::path::Path, digest: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) if blake3::hash(&bytes).as_bytes() == digest => Ok(Some(bytes)),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io("read the stored value", path)(e)),
    }
}
pub use split::SplitStore;

use crate::files::{self, Durability, TEMP_PREFIX};
use crate::value::Ty;

/// The folder, inside a result store, that holds the values of key storage by digest
/// (see [`split`]); no key may name a path through a folder of this name, so records and
/// values can share a folder without ever colliding.
pub const VALUES_FOLDER: &str = ".values";

/// How old call data must be before `cache prune` removes it: a call's inputs are needed
/// until its outcome comes back (the executor timeout, 5 minutes by default).
pub const CALL_DATA_GRACE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The folder, inside a result store, that holds components by digest for workers
/// (DESIGN §9a); no key may name a path through it either.
pub const COMPONENTS_FOLDER: &str = ".components";

/// The folder, inside a result store, that holds the inputs and values of calls in flight
/// that are too large for the queue; no key may name a path through it either.
pub const CALLS_FOLDER: &str = ".calls";

/// What a result store keeps for workers, by name, beside its records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shared {
    /// A component, for workers to fetch: `.components/<hex>`.
    Component,
    /// Encoded inputs or a value of a call in flight: `.calls/<call id>-inputs` or
    /// `-value`, removed by the flow's process once it has the call's outcome.
    CallData,
}

impl Shared {
    /// Its folder in the store.
    pub fn folder(self) -> &'static str {
        match self {
            Shared::Component => COMPONENTS_FOLDER,
            Shared::CallData => CALLS_FOLDER,
        }
    }

    /// The path, relative to the store's root, of what it keeps as `name` (a component's
    /// BLAKE3 digest in hex; a call's id and what it is).
    pub fn path(self, name: &str) -> String {
        format!("{}/{name}", self.folder())
    }

    /// Whether `segment` of a path is one of these folders (records are never there).
    pub fn is_folder(segment: &str) -> bool {
        segment == COMPONENTS_FOLDER || segment == CALLS_FOLDER
    }

    fn reading(self) -> &'static str {
        match self {
            Shared::Component => "read the component",
            Shared::CallData => "read the call's data",
        }
    }

    fn removing(self) -> &'static str {
        match self {
            Shared::Component => "remove the component",
            Shared::CallData => "remove the call's data",
        }
    }
}

/// A place that holds records by cache key: a local folder or S3-compatible object storage.
pub trait ResultStore: Send + Sync {
    /// The record under `key`, if it is a hit for a task returning `expected` at `now_ms`.
    ///
    /// Never fails: a record that cannot be used is [`Lookup::Unreadable`], which the caller
    /// logs as a warning and treats as a miss. A hit never rewrites the record.
    fn lookup(&self, key: &str, expected: &Ty, now_ms: i64) -> Lookup;

    /// Stores `record_bytes` (from [`record::encode`]) under `key` atomically, replacing any
    /// record there: a reader sees the old record or the new one, never a part.
    fn write(&self, key: &str, record_bytes: &[u8]) -> Result<(), StoreError>;

    /// [`ResultStore::write`] of `record`'s bytes. Stores that write files override it to
    /// write a large value from its own buffer, never copying it into a record buffer.
    fn write_new(&self, key: &str, record: &record::NewRecord) -> Result<(), StoreError> {
        self.write(key, &record.to_bytes())
    }

    /// The raw bytes of the record under `key`, or `None` when there is none; for
    /// `cache show`, which decodes the record with the type stored in it.
    fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Stores `bytes` in the store's value storage under their BLAKE3 `digest`: the inputs
    /// of a replayable task too large to keep in its record ([`record::StoredInputs`]).
    fn write_value(&self, digest: &[u8; 32], bytes: &[u8]) -> Result<(), StoreError>;

    /// The bytes [`ResultStore::write_value`] stored under `digest`, checked against it;
    /// `None` when they are not there (or no longer match their digest).
    fn read_value(&self, digest: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Keeps `bytes` as [`Shared::path`] of `name`, for workers to fetch.
    fn write_shared(&self, kind: Shared, name: &str, bytes: &[u8]) -> Result<(), StoreError>;

    /// The bytes kept as [`Shared::path`] of `name`, as they are: the reader checks their
    /// digest itself, so that a mismatch is named rather than taken for a missing file.
    fn read_shared(&self, kind: Shared, name: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// The length of what is kept as `name`, if anything (a flow uploads a component only
    /// when this is not its length).
    fn shared_len(&self, kind: Shared, name: &str) -> Result<Option<u64>, StoreError>;

    /// Removes what is kept as `name`, if anything.
    fn remove_shared(&self, kind: Shared, name: &str) -> Result<(), StoreError>;

    /// Removes what of `kind` was written more than `age` ago, and says how many
    /// (`cache prune`: the call data a flow's process killed mid-call left behind).
    fn remove_shared_older_than(&self, kind: Shared, age: std::time::Duration) -> Result<usize, StoreError>;

    /// Deletes the record under `key`; `false` if there was none.
    fn remove(&self, key: &str) -> Result<bool, StoreError>;

    /// Every record's key and metadata (or why it cannot be read), sorted by key.
    fn list(&self) -> Result<Listing, StoreError>;

    /// Where the records are, for messages, e.g. the folder's path.
    fn describe(&self) -> String;

    /// Deletes stored values that no record references any more and returns how many
    /// (`cache prune`). Only key storage shares values between records, so only it has any:
    /// [`ResultStore::remove`] leaves a removed key's value, which another key may share.
    fn collect_garbage(&self) -> Result<usize, StoreError> {
        Ok(0)
    }
}

/// Refuses keys that cannot name a record in every store, so that a key works the same in a
/// local folder and in object storage: a key is one or more `/`-separated plain file names,
/// none of them `.`, `..`, a temporary file's name, the values or the components folder, without control
/// characters.
pub fn check_key(key: &str) -> Result<(), StoreError> {
    let bad = |reason| Err(StoreError::BadKey { key: key.to_owned(), reason });
    if key.is_empty() {
        return bad("it is empty");
    }
    if key.starts_with('/') {
        return bad("it is an absolute path");
    }
    if key.chars().any(char::is_control) {
        return bad("it contains a control character");
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return bad("it has an empty segment between slashes");
        }
        if segment == "." || segment == ".." {
            return bad("it has a `.` or `..` segment");
        }
        if segment.starts_with(TEMP_PREFIX) {
            return bad("a segment starts with `.tmp-`, which marks temporary files");
        }
        if segment == VALUES_FOLDER {
            return bad("a segment is `.values`, the folder of stored values");
        }
        if Shared::is_folder(segment) {
            return bad("a segment is `.components` or `.calls`, the folders of what workers fetch");
        }
        // Catches what the platform reads as more than a file name (`C:`, `\` on Windows).
        let mut components = std::path::Path::new(segment).components();
        if !matches!((components.next(), components.next()), (Some(std::path::Component::Normal(_)), None)) {
            return bad("a segment is not a plain file name");
        }
    }
    Ok(())
}

/// Every record in a store: its key, and its metadata or why it cannot be read.
pub type Listing = Vec<(String, Result<RecordMeta, StoreError>)>;

/// What a lookup found under a key.
#[derive(Clone, Debug, PartialEq)]
pub enum Lookup {
    /// A usable record: the call is Cached with its value. Shared, so a store may keep
    /// decoded records and serve them again without copying.
    Hit(Arc<Record>),
    /// No record under the key.
    Miss,
    /// A record that expired at `expiration_ms` (at or before now): a miss, overwritten by the
    /// next write.
    Expired {
        /// When the record expired, unix milliseconds.
        expiration_ms: i64,
    },
    /// A record that is corrupt, truncated, of another type, or cannot be read: a miss with a
    /// warning giving `reason`, overwritten by the next write.
    Unreadable {
        /// What is wrong with the record, one sentence.
        reason: String,
    },
}

impl Lookup {
    /// Judges the bytes a backend read under `key`: the one place hits are decided.
    ///
    /// Expiry is strict, as in Prefect (reference §9.2): a hit iff there is no expiration or
    /// `expiration_ms > now_ms`.
    pub fn from_record_bytes(bytes: &[u8], key: &str, expected: &Ty, now_ms: i64) -> Lookup {
        match record::decode(bytes, expected) {
            Ok(record) => Lookup::of_record(Arc::new(record), key, now_ms),
            Err(e) => Lookup::Unreadable { reason: e.to_string() },
        }
    }

    /// Judges a decoded record whose value has the expected type: the key it was written
    /// under, then its expiry (strict, as in [`Lookup::from_record_bytes`]).
    pub(crate) fn of_record(record: Arc<Record>, key: &str, now_ms: i64) -> Lookup {
        // A record copied or renamed under another key holds another call's result.
        if record.meta.key != key {
            return Lookup::Unreadable { reason: format!("the record was written for key {:?}", record.meta.key) };
        }
        match record.meta.expiration_ms {
            Some(expiration_ms) if expiration_ms <= now_ms => Lookup::Expired { expiration_ms },
            _ => Lookup::Hit(record),
        }
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key cannot name an entry in this store.
    #[error("cache key {key:?} cannot be used as a store entry: {reason}")]
    BadKey {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A file operation failed.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "write the record".
        action: &'static str,
        /// The file or folder concerned.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The bytes under a key are not a usable record.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A storage server that cannot be used now: unreachable, too slow, or refusing.
    #[error("{message}")]
    Unavailable {
        /// One sentence naming the store and its address, then the cause.
        message: String,
    },
    /// A storage location that cannot be used as configured.
    #[error("storage {storage:?} cannot be used: {reason}")]
    Unsupported {
        /// The storage as configured.
        storage: String,
        /// Why, and what to use instead.
        reason: String,
    },
}

impl From<files::WriteError> for StoreError {
    fn from(error: files::WriteError) -> StoreError {
        StoreError::Io { action: error.action, path: error.path, source: error.source }
    }
}

/// How a store that syncs (or not) writes its files.
pub(crate) fn durability(sync: bool) -> Durability {
    if sync {
        Durability::Durable
    } else {
        Durability::Lazy
    }
}

impl StoreError {
    /// A [`StoreError::Io`] builder for `map_err`.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { action, path, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    fn record_bytes(key: &str, expiration_ms: Option<i64>) -> Vec<u8> {
        let value_bytes = record::encode_value(&Value::S32(7));
        let meta = RecordMeta::new(key.into(), "t".into(), "d".into(), vec![], 0, expiration_ms, Ty::S32, &value_bytes);
        record::encode(&meta, &value_bytes)
    }

    #[test]
    fn expiry_is_strict() {
        let bytes = record_bytes("k", Some(1_000));
        assert_eq!(Lookup::from_record_bytes(&bytes, "k", &Ty::S32, 1_000), Lookup::Expired { expiration_ms: 1_000 });
        assert_eq!(Lookup::from_record_bytes(&bytes, "k", &Ty::S32, 1_001), Lookup::Expired { expiration_ms: 1_000 });
        match Lookup::from_record_bytes(&bytes, "k", &Ty::S32, 999) {
            Lookup::Hit(record) => assert_eq!(record.value, Value::S32(7)),
            other => panic!("expected a hit, got {other:?}"),
        }
    }

    #[test]
    fn no_expiration_always_hits() {
        let bytes = record_bytes("k", None);
        assert!(matches!(Lookup::from_record_bytes(&bytes, "k", &Ty::S32, i64::MAX), Lookup::Hit(_)));
    }

    #[test]
    fn record_for_another_key_is_unreadable() {
        let bytes = record_bytes("other", None);
        match Lookup::from_record_bytes(&bytes, "k", &Ty::S32, 0) {
            Lookup::Unreadable { reason } => assert!(reason.contains("\"other\""), "{reason}"),
            other => panic!("expected unreadable, got {other:?}"),
        }
    }

    #[test]
    fn mistyped_record_is_unreadable_with_the_reason() {
        let bytes = record_bytes("k", None);
        match Lookup::from_record_bytes(&bytes, "k", &Ty::String, 0) {
            Lookup::Unreadable { reason } => {
                assert!(reason.contains("type S32, the task returns String"), "{reason}")
            }
            other => panic!("expected unreadable, got {other:?}"),
        }
    }
}
