//! Key storage (DESIGN §5): metadata in a key store, values in the result store by content
//! digest, so equal results are stored once.
//!
//! Layout, for key store folder `K` and result store folder `R`:
//!
//! ```text
//! K/<key>                       key record: header + metadata (record::encode_key_record)
//! R/.values/<h[0..2]>/<h>       postcard(Value), where h = hex BLAKE3 of these bytes
//! R/.values/key-stores          every key store folder that uses R, one absolute path a line
//! ```
//!
//! A value file's name is the digest of its content, so it can be checked on its own and
//! two writers of one value write the same bytes. `K` may be `R` itself: no key can name a
//! path through a `.values` folder ([`super::VALUES_FOLDER`]), so the two never collide.
//!
//! **Differs from Prefect on purpose (reference §7.4):** a key whose value is missing or corrupt
//! is [`Lookup::Unreadable`] (a miss with a WARNING, then overwritten), never a Failed task.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::local::LocalStore;
use super::{
    durability, record, Listing, Lookup, Record, RecordError, RecordMeta, ResultStore, Shared, StoreError,
    VALUES_FOLDER,
};
use crate::files::{self, TEMP_PREFIX};
use crate::value::Ty;

/// The file in the values folder that lists the key stores using it.
pub const KEY_STORES_FILE: &str = "key-stores";

/// How long an unreferenced value is kept by `cache prune`: a writer stores the value
/// before its key record, and a value younger than this may be one whose key is on its way.
pub const GARBAGE_GRACE: Duration = Duration::from_secs(10 * 60);

/// A result store split in two: key records in one folder, values by digest in another.
#[derive(Clone, Debug)]
pub struct SplitStore {
    keys: LocalStore,
    values: PathBuf,
    sync: bool,
}

impl SplitStore {
    /// Opens the store with key records in `keys_root` and values under
    /// `result_root/.values`, creating the folders if needed, and registers `keys_root` with
    /// the values folder so [`SplitStore::collect_garbage_older_than`] sees its references.
    pub fn open(keys_root: &Path, result_root: &Path) -> Result<SplitStore, StoreError> {
        let keys = LocalStore::open(keys_root)?;
        let values = result_root.join(VALUES_FOLDER);
        fs::create_dir_all(&values).map_err(StoreError::io("create the values folder", &values))?;
        let keys_abs =
            fs::canonicalize(keys_root).map_err(StoreError::io("resolve the key storage folder", keys_root))?;
        let values_abs = fs::canonicalize(&values).map_err(StoreError::io("resolve the values folder", &values))?;
        if keys_abs.starts_with(&values_abs) {
            return Err(StoreError::Unsupported {
                storage: keys_root.display().to_string(),
                reason: format!("the key storage folder is inside the values folder {}", values_abs.display()),
            });
        }
        let store = SplitStore { keys, values: values_abs, sync: false };
        store.register(&keys_abs)?;
        Ok(store)
    }

    /// The values folder under `result_root`, if there is one, as a store whose key records
    /// are in `result_root` itself; registers nothing (for [`ResultStore::collect_garbage`]
    /// on a result store that others use as their values folder).
    pub fn existing(result_root: &Path) -> Option<SplitStore> {
        let values = fs::canonicalize(result_root.join(VALUES_FOLDER)).ok()?;
        let keys = LocalStore::open(result_root).ok()?;
        Some(SplitStore { keys, values, sync: false })
    }

    /// The result storage folder: the one holding the values folder.
    fn result_root(&self) -> &Path {
        self.values.parent().unwrap_or(&self.values)
    }

    /// Whether writes fsync each file and its folder before returning (default: no).
    pub fn with_sync(mut self, sync: bool) -> SplitStore {
        self.keys = self.keys.with_sync(sync);
        self.sync = sync;
        self
    }

    /// The store of key records.
    pub fn keys(&self) -> &LocalStore {
        &self.keys
    }

    /// The folder holding the values (`<result storage>/.values`, resolved).
    pub fn values_folder(&self) -> &Path {
        &self.values
    }

    /// The file that holds the value with BLAKE3 digest `digest`.
    pub fn value_path(&self, digest: &[u8; 32]) -> PathBuf {
        let hex = blake3::Hash::from_bytes(*digest).to_hex();
        self.values.join(&hex[..2]).join(hex.as_str())
    }

    /// The key store folders registered with this store's values folder, including its own.
    pub fn key_stores(&self) -> Result<Vec<PathBuf>, StoreError> {
        let list = self.values.join(KEY_STORES_FILE);
        match fs::read_to_string(&list) {
            Ok(text) => Ok(text.lines().filter(|l| !l.is_empty()).map(PathBuf::from).collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(StoreError::io("read the list of key stores", list)(e)),
        }
    }

    /// Deletes the values that no key record of any registered key store references and that
    /// were not written or reused within `grace`; returns how many were deleted.
    ///
    /// Values may be shared by keys, so [`ResultStore::remove`] leaves them; this is how they
    /// go (`cache prune`). The grace period protects a concurrent writer, which stores (or
    /// touches) the value before its key record: a value younger than `grace` is kept even if
    /// nothing references it yet. Were a writer slower than that, its key would find its value
    /// missing: a miss with a warning, never a wrong value.
    pub fn collect_garbage_older_than(&self, grace: Duration) -> Result<usize, StoreError> {
        let started = SystemTime::now();
        let mut referenced = HashSet::new();
        // The records of the result folder itself may reference values too (the inputs of
        // replayable tasks, kept apart): its folder counts as a key store.
        let mut folders = self.key_stores()?;
        folders.push(self.keys.root().to_path_buf());
        for folder in folders {
            // A key store folder that was deleted references nothing any more.
            if !folder.is_dir() {
                continue;
            }
            for (_, meta) in LocalStore::open(&folder)?.list()? {
                if let Ok(meta) = meta {
                    referenced.insert(meta.value_digest);
                    // A replayable task's inputs kept apart are referenced by its record too.
                    if let Some(record::StoredInputs::ByDigest { digest, .. }) = meta.inputs {
                        referenced.insert(digest);
                    }
                }
            }
        }
        let mut removed = 0;
        for shard in fs::read_dir(&self.values).map_err(StoreError::io("list the values folder", &self.values))? {
            let shard = shard.map_err(StoreError::io("list the values folder", &self.values))?;
            if !shard.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let shard = shard.path();
            for entry in fs::read_dir(&shard).map_err(StoreError::io("list the values folder", &shard))? {
                let entry = entry.map_err(StoreError::io("list the values folder", &shard))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                // Temporary files are writes in progress (or strays, for clean_stray_temp_files).
                if name.starts_with(TEMP_PREFIX) {
                    continue;
                }
                let Ok(digest) = blake3::Hash::from_hex(name) else {
                    continue;
                };
                if referenced.contains(digest.as_bytes()) {
                    continue;
                }
                let recent = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .map(|modified| started.duration_since(modified).map_or(true, |age| age < grace))
                    .unwrap_or(true);
                if recent {
                    continue;
                }
                match fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StoreError::io("remove the value", entry.path())(e)),
                }
            }
            // Only succeeds once the shard is empty.
            let _ = fs::remove_dir(&shard);
        }
        Ok(removed)
    }

    /// Removes temporary files left by killed writers, in both folders, if older than
    /// `older_than`; returns how many were removed.
    pub fn clean_stray_temp_files(&self, older_than: Duration) -> usize {
        let values = LocalStore::open(&self.values).map(|v| v.clean_stray_temp_files(older_than));
        self.keys.clean_stray_temp_files(older_than) + values.unwrap_or(0)
    }

    /// Adds `keys_abs` to the values folder's list of key stores, unless it is there.
    fn register(&self, keys_abs: &Path) -> Result<(), StoreError> {
        let line = match keys_abs.to_str() {
            Some(line) if !line.contains('\n') => line,
            _ => {
                return Err(StoreError::Unsupported {
                    storage: keys_abs.display().to_string(),
                    reason: "a key storage folder's path must be UTF-8 without line breaks".into(),
                })
            }
        };
        if self.key_stores()?.iter().any(|known| known == keys_abs) {
            return Ok(());
        }
        let list = self.values.join(KEY_STORES_FILE);
        // One short append: concurrent registrations interleave whole lines, at worst twice.
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&list)
            .and_then(|mut file| file.write_all(format!("{line}\n").as_bytes()))
            .map_err(StoreError::io("register the key store in", list))
    }

    /// Stores `value_bytes` under their digest unless an intact copy is there; a reused copy
    /// gets its modification time refreshed, for [`SplitStore::collect_garbage_older_than`]'s grace period.
    fn put_value(&self, digest: &[u8; 32], value_bytes: &[u8]) -> Result<(), StoreError> {
        self.put_value_with(digest, |file| file.write_all(value_bytes))
    }

    /// [`SplitStore::put_value`] of the bytes `write` puts in the file.
    fn put_value_with(
        &self,
        digest: &[u8; 32],
        write: impl FnOnce(&mut fs::File) -> io::Result<()>,
    ) -> Result<(), StoreError> {
        let path = self.value_path(digest);
        if let Ok(existing) = fs::read(&path) {
            if blake3::hash(&existing).as_bytes() == digest {
                return OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|file| file.set_modified(SystemTime::now()))
                    .map_err(StoreError::io("refresh the time of the value", path));
            }
        }
        files::write_atomically_with(&path, durability(self.sync), write)?;
        Ok(())
    }
}

/// Judges the key record read under `key` (the rules of every key store, local or not): its
/// metadata when the value should be read next, else what the lookup found.
pub(crate) fn judge_key_record(bytes: &[u8], key: &str, expected: &Ty, now_ms: i64) -> Result<RecordMeta, Box<Lookup>> {
    let unreadable = |reason: String| Err(Box::new(Lookup::Unreadable { reason }));
    let meta = match record::decode_key_record(bytes) {
        Ok(meta) => meta,
        Err(e) => return unreadable(e.to_string()),
    };
    // A key record copied or renamed under another key describes another call's result.
    if meta.key != key {
        return unreadable(format!("the record was written for key {:?}", meta.key));
    }
    if let Some(expiration_ms) = meta.expiration_ms.filter(|&e| e <= now_ms) {
        return Err(Box::new(Lookup::Expired { expiration_ms }));
    }
    if let Err(e) = record::check_type(&meta, expected) {
        return unreadable(e.to_string());
    }
    Ok(meta)
}

/// Judges the value bytes of `meta`, read from `place` (named in messages).
pub(crate) fn judge_value(meta: RecordMeta, value_bytes: &[u8], expected: &Ty, place: &str) -> Lookup {
    match record::decode_value(&meta, value_bytes, expected) {
        Ok(value) => Lookup::Hit(std::sync::Arc::new(Record { meta, value })),
        Err(RecordError::DigestMismatch) => Lookup::Unreadable {
            reason: format!("the record's value {place} does not match its digest (the file is corrupt)"),
        },
        Err(e) => Lookup::Unreadable { reason: format!("{e} ({place})") },
    }
}

impl ResultStore for SplitStore {
    fn lookup(&self, key: &str, expected: &Ty, now_ms: i64) -> Lookup {
        let unreadable = |reason: String| Lookup::Unreadable { reason };
        let path = match self.keys.path_of(key) {
            Ok(path) => path,
            Err(e) => return unreadable(e.to_string()),
        };
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Lookup::Miss,
            Err(e) => return unreadable(format!("could not read {}: {e}", path.display())),
        };
        let meta = match judge_key_record(&bytes, key, expected, now_ms) {
            Ok(meta) => meta,
            Err(lookup) => return *lookup,
        };
        let value_path = self.value_path(&meta.value_digest);
        let value_bytes = match fs::read(&value_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return unreadable(format!("the record's value {} is missing", value_path.display()))
            }
            Err(e) => return unreadable(format!("could not read the record's value {}: {e}", value_path.display())),
        };
        judge_value(meta, &value_bytes, expected, &value_path.display().to_string())
    }

    /// Splits `record_bytes` (a whole record) into its value, stored first under its digest,
    /// and a key record, stored last: a reader never finds a key record without its value.
    fn write(&self, key: &str, record_bytes: &[u8]) -> Result<(), StoreError> {
        // Refuse a bad key before anything is written.
        self.keys.path_of(key)?;
        let (meta, value_bytes) = record::split(record_bytes)?;
        if blake3::hash(value_bytes).as_bytes() != &meta.value_digest {
            return Err(RecordError::DigestMismatch.into());
        }
        self.put_value(&meta.value_digest, value_bytes)?;
        self.keys.write(key, &record::encode_key_record(&meta))
    }

    fn write_new(&self, key: &str, record: &record::NewRecord) -> Result<(), StoreError> {
        self.keys.path_of(key)?;
        // The value from its own buffer; its digest and length in `meta` were computed from it.
        self.put_value_with(&record.meta.value_digest, |file| record.write_value_to(file))?;
        self.keys.write(key, &record::encode_key_record(&record.meta))
    }

    fn write_value(&self, digest: &[u8; 32], bytes: &[u8]) -> Result<(), StoreError> {
        self.put_value(digest, bytes)
    }

    fn read_value(&self, digest: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        super::read_value_file(&self.value_path(digest), digest)
    }

    fn write_shared(&self, kind: Shared, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        super::write_shared_file(self.result_root(), kind, name, bytes)
    }

    fn read_shared(&self, kind: Shared, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        super::read_shared_file(self.result_root(), kind, name)
    }

    fn shared_len(&self, kind: Shared, name: &str) -> Result<Option<u64>, StoreError> {
        super::shared_file_len(self.result_root(), kind, name)
    }

    fn remove_shared(&self, kind: Shared, name: &str) -> Result<(), StoreError> {
        super::remove_shared_file(self.result_root(), kind, name)
    }

    fn remove_shared_older_than(&self, kind: Shared, age: std::time::Duration) -> Result<usize, StoreError> {
        super::remove_shared_files_older_than(self.result_root(), kind, age)
    }

    /// Joins the key record and its value back into one whole record.
    fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(key_record) = self.keys.read(key)? else { return Ok(None) };
        let meta = record::decode_key_record(&key_record)?;
        let value_path = self.value_path(&meta.value_digest);
        let value_bytes = fs::read(&value_path).map_err(|source| StoreError::Io {
            action: "read the value of",
            path: value_path.clone(),
            source,
        })?;
        Ok(Some(record::encode(&meta, &value_bytes)))
    }

    /// Removes the key record; the value stays, as other keys may share it.
    fn remove(&self, key: &str) -> Result<bool, StoreError> {
        self.keys.remove(key)
    }

    fn list(&self) -> Result<Listing, StoreError> {
        self.keys.list()
    }

    fn collect_garbage(&self) -> Result<usize, StoreError> {
        self.collect_garbage_older_than(GARBAGE_GRACE)
    }

    fn describe(&self) -> String {
        format!("{} (keys), {} (values)", self.keys.root().display(), self.values.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::{encode, encode_value, KeyPartMeta, RecordMeta};
    use crate::value::Value;

    const NOW: i64 = 1_700_000_000_000;

    fn ty() -> Ty {
        Ty::List(Box::new(Ty::String))
    }

    fn value(text: &str) -> Value {
        Value::List(vec![Value::String(text.into()), Value::String("!".into())])
    }

    fn meta_and_bytes(key: &str, text: &str, expiration_ms: Option<i64>) -> (RecordMeta, Vec<u8>) {
        let value_bytes = encode_value(&value(text));
        let meta = RecordMeta::new(
            key.into(),
            "example:math/ops.shout".into(),
            "ef".repeat(32),
            vec![KeyPartMeta { name: "inputs".into(), key: "12".into(), detail: vec![] }],
            NOW - 5,
            expiration_ms,
            ty(),
            &value_bytes,
        );
        let bytes = encode(&meta, &value_bytes);
        (meta, bytes)
    }

    fn record_bytes(key: &str, text: &str) -> Vec<u8> {
        meta_and_bytes(key, text, None).1
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        root: PathBuf,
        store: SplitStore,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let store = SplitStore::open(&root.join("keys"), &root.join("results")).unwrap();
        Fixture { _dir: dir, root, store }
    }

    fn unreadable_reason(lookup: Lookup) -> String {
        match lookup {
            Lookup::Unreadable { reason } => reason,
            other => panic!("expected Unreadable, got {other:?}"),
        }
    }

    /// Every value file, as paths relative to the values folder, sorted.
    fn value_files(store: &SplitStore) -> Vec<String> {
        let mut files = Vec::new();
        for shard in fs::read_dir(store.values_folder()).unwrap() {
            let shard = shard.unwrap();
            if shard.file_type().unwrap().is_dir() {
                for file in fs::read_dir(shard.path()).unwrap() {
                    let file = file.unwrap().path();
                    files.push(file.strip_prefix(store.values_folder()).unwrap().display().to_string());
                }
            }
        }
        files.sort();
        files
    }

    fn age(path: &Path, by: Duration) {
        let file = OpenOptions::new().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - by).unwrap();
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn write_puts_the_metadata_in_the_key_store_and_the_value_under_its_digest() {
        let f = fixture();
        let (meta, bytes) = meta_and_bytes("k1", "hello", None);
        f.store.write("k1", &bytes).unwrap();

        assert_eq!(fs::read(f.root.join("keys/k1")).unwrap(), record::encode_key_record(&meta));
        let hex = blake3::Hash::from_bytes(meta.value_digest).to_hex().to_string();
        let value_file = f.root.join("results/.values").join(&hex[..2]).join(&hex);
        assert_eq!(fs::read(&value_file).unwrap(), encode_value(&value("hello")));
        assert_eq!(value_files(&f.store), [format!("{}/{hex}", &hex[..2])]);

        match f.store.lookup("k1", &ty(), NOW) {
            Lookup::Hit(record) => {
                assert_eq!(record.meta, meta);
                assert_eq!(record.value, value("hello"));
            }
            other => panic!("expected a hit, got {other:?}"),
        }
    }

    #[test]
    fn a_new_record_is_split_as_write_splits_its_bytes() {
        let (written, streamed) = (fixture(), fixture());
        let (ty, new) = crate::store::local::tests::large_new_record("big");
        written.store.write("big", &new.to_bytes()).unwrap();
        streamed.store.write_new("big", &new).unwrap();
        for path in ["keys/big".to_owned(), format!("results/.values/{}", value_files(&written.store)[0])] {
            assert_eq!(
                fs::read(streamed.root.join(&path)).unwrap(),
                fs::read(written.root.join(&path)).unwrap(),
                "{path}"
            );
        }
        match streamed.store.lookup("big", &ty, NOW) {
            Lookup::Hit(record) => assert_eq!(record.value, new.value),
            other => panic!("expected a hit, got {other:?}"),
        }
    }

    #[test]
    fn missing_key_is_a_miss() {
        let f = fixture();
        assert_eq!(f.store.lookup("nothing", &ty(), NOW), Lookup::Miss);
    }

    #[test]
    fn two_keys_with_equal_values_store_one_value() {
        let f = fixture();
        f.store.write("a", &record_bytes("a", "same")).unwrap();
        f.store.write("b/c", &record_bytes("b/c", "same")).unwrap();
        f.store.write("d", &record_bytes("d", "other")).unwrap();
        assert_eq!(value_files(&f.store).len(), 2);
        for key in ["a", "b/c"] {
            match f.store.lookup(key, &ty(), NOW) {
                Lookup::Hit(record) => assert_eq!(record.value, value("same")),
                other => panic!("{key}: expected a hit, got {other:?}"),
            }
        }
    }

    #[test]
    fn missing_value_is_unreadable_naming_the_value() {
        let f = fixture();
        let (meta, bytes) = meta_and_bytes("k", "v", None);
        f.store.write("k", &bytes).unwrap();
        let value_file = f.store.value_path(&meta.value_digest);
        fs::remove_file(&value_file).unwrap();
        let reason = unreadable_reason(f.store.lookup("k", &ty(), NOW));
        assert!(reason.contains("is missing"), "{reason}");
        assert!(reason.contains(&value_file.display().to_string()), "{reason}");
        // Writing again repairs it.
        f.store.write("k", &bytes).unwrap();
        assert!(matches!(f.store.lookup("k", &ty(), NOW), Lookup::Hit(_)));
    }

    #[test]
    fn corrupt_value_is_unreadable_and_rewritten_by_the_next_write() {
        let f = fixture();
        let (meta, bytes) = meta_and_bytes("k", "v", None);
        f.store.write("k", &bytes).unwrap();
        let value_file = f.store.value_path(&meta.value_digest);
        let mut corrupt = fs::read(&value_file).unwrap();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0x20;
        fs::write(&value_file, &corrupt).unwrap();
        let reason = unreadable_reason(f.store.lookup("k", &ty(), NOW));
        assert!(reason.contains("does not match its digest"), "{reason}");
        // An existing value file is reused only when intact.
        f.store.write("k", &bytes).unwrap();
        assert_eq!(fs::read(&value_file).unwrap(), encode_value(&value("v")));
        assert!(matches!(f.store.lookup("k", &ty(), NOW), Lookup::Hit(_)));
    }

    #[test]
    fn truncated_value_is_unreadable() {
        let f = fixture();
        let (meta, bytes) = meta_and_bytes("k", "v", None);
        f.store.write("k", &bytes).unwrap();
        let value_file = f.store.value_path(&meta.value_digest);
        let full = fs::read(&value_file).unwrap();
        fs::write(&value_file, &full[..full.len() - 1]).unwrap();
        let reason = unreadable_reason(f.store.lookup("k", &ty(), NOW));
        assert!(reason.contains("does not match its digest"), "{reason}");
    }

    #[test]
    fn corrupt_key_record_is_unreadable() {
        let f = fixture();
        f.store.write("k", &record_bytes("k", "v")).unwrap();
        let key_file = f.root.join("keys/k");
        let full = fs::read(&key_file).unwrap();
        fs::write(&key_file, &full[..full.len() - 3]).unwrap();
        let reason = unreadable_reason(f.store.lookup("k", &ty(), NOW));
        assert!(reason.contains("truncated"), "{reason}");
        // A whole record where a key record belongs is not taken for one.
        fs::write(&key_file, record_bytes("k", "v")).unwrap();
        let reason = unreadable_reason(f.store.lookup("k", &ty(), NOW));
        assert_eq!(reason, RecordError::BadMagic.to_string());
    }

    #[test]
    fn key_record_under_another_key_is_unreadable() {
        let f = fixture();
        f.store.write("a", &record_bytes("a", "v")).unwrap();
        fs::copy(f.root.join("keys/a"), f.root.join("keys/b")).unwrap();
        let reason = unreadable_reason(f.store.lookup("b", &ty(), NOW));
        assert!(reason.contains("written for key \"a\""), "{reason}");
    }

    #[test]
    fn mistyped_record_is_unreadable() {
        let f = fixture();
        f.store.write("k", &record_bytes("k", "v")).unwrap();
        let reason = unreadable_reason(f.store.lookup("k", &Ty::String, NOW));
        assert!(reason.contains("the task returns String"), "{reason}");
    }

    #[test]
    fn value_of_another_type_under_the_digest_is_unreadable() {
        // A value file whose bytes match the digest but not postcard: the decode refuses it.
        let f = fixture();
        let garbage = [0xff_u8; 3];
        let meta = RecordMeta::new("k".into(), "t".into(), "d".into(), vec![], 0, None, ty(), &garbage);
        f.store.write("k", &encode(&meta, &garbage)).unwrap();
        let reason = unreadable_reason(f.store.lookup("k", &ty(), NOW));
        assert!(reason.contains("cannot be decoded"), "{reason}");
    }

    #[test]
    fn expiry_is_strict_and_reads_no_value() {
        let f = fixture();
        let (meta, bytes) = meta_and_bytes("k", "v", Some(NOW));
        f.store.write("k", &bytes).unwrap();
        assert!(matches!(f.store.lookup("k", &ty(), NOW - 1), Lookup::Hit(_)));
        assert_eq!(f.store.lookup("k", &ty(), NOW), Lookup::Expired { expiration_ms: NOW });
        assert_eq!(f.store.lookup("k", &ty(), NOW + 1), Lookup::Expired { expiration_ms: NOW });
        // Expiry is decided from the metadata alone.
        fs::remove_file(f.store.value_path(&meta.value_digest)).unwrap();
        assert_eq!(f.store.lookup("k", &ty(), NOW), Lookup::Expired { expiration_ms: NOW });
    }

    #[test]
    fn overwrite_points_the_key_at_the_new_value() {
        let f = fixture();
        f.store.write("k", &record_bytes("k", "old")).unwrap();
        f.store.write("k", &record_bytes("k", "new")).unwrap();
        match f.store.lookup("k", &ty(), NOW) {
            Lookup::Hit(record) => assert_eq!(record.value, value("new")),
            other => panic!("expected a hit, got {other:?}"),
        }
        // The old value stays until garbage collection.
        assert_eq!(value_files(&f.store).len(), 2);
    }

    #[test]
    fn remove_deletes_the_key_and_leaves_shared_values() {
        let f = fixture();
        let (meta, bytes) = meta_and_bytes("a", "same", None);
        f.store.write("a", &bytes).unwrap();
        f.store.write("b", &record_bytes("b", "same")).unwrap();
        assert!(f.store.remove("a").unwrap());
        assert!(!f.store.remove("a").unwrap());
        assert_eq!(f.store.lookup("a", &ty(), NOW), Lookup::Miss);
        assert!(f.store.value_path(&meta.value_digest).is_file());
        assert!(matches!(f.store.lookup("b", &ty(), NOW), Lookup::Hit(_)));
    }

    #[test]
    fn collect_garbage_removes_only_unreferenced_old_values() {
        let f = fixture();
        let (kept, bytes) = meta_and_bytes("a", "kept", None);
        f.store.write("a", &bytes).unwrap();
        let (dropped, bytes) = meta_and_bytes("b", "dropped", None);
        f.store.write("b", &bytes).unwrap();
        let (young, bytes) = meta_and_bytes("c", "young", None);
        f.store.write("c", &bytes).unwrap();
        assert!(f.store.remove("b").unwrap());
        assert!(f.store.remove("c").unwrap());
        for meta in [&kept, &dropped] {
            age(&f.store.value_path(&meta.value_digest), 2 * HOUR);
        }
        let temp = f.store.values_folder().join("00/.tmp-123");
        fs::create_dir_all(temp.parent().unwrap()).unwrap();
        fs::write(&temp, b"in progress").unwrap();
        age(&temp, 2 * HOUR);

        assert_eq!(f.store.collect_garbage_older_than(HOUR).unwrap(), 1);
        assert!(f.store.value_path(&kept.value_digest).is_file());
        assert!(!f.store.value_path(&dropped.value_digest).exists());
        // Too young to go, though unreferenced: a writer may be about to write its key.
        assert!(f.store.value_path(&young.value_digest).is_file());
        assert!(temp.is_file(), "temporary files are not values");
        assert!(matches!(f.store.lookup("a", &ty(), NOW), Lookup::Hit(_)));
        assert_eq!(f.store.collect_garbage_older_than(Duration::ZERO).unwrap(), 1);
        assert!(!f.store.value_path(&young.value_digest).exists());
    }

    #[test]
    fn reusing_a_value_refreshes_its_time() {
        let f = fixture();
        let (meta, bytes) = meta_and_bytes("a", "v", None);
        f.store.write("a", &bytes).unwrap();
        assert!(f.store.remove("a").unwrap());
        age(&f.store.value_path(&meta.value_digest), 2 * HOUR);
        f.store.write("b", &record_bytes("b", "v")).unwrap();
        assert!(f.store.remove("b").unwrap());
        // Unreferenced now, but reused a moment ago.
        assert_eq!(f.store.collect_garbage_older_than(HOUR).unwrap(), 0);
    }

    #[test]
    fn collect_garbage_keeps_values_of_every_key_store_sharing_the_result_store() {
        let f = fixture();
        let other = SplitStore::open(&f.root.join("other-keys"), &f.root.join("results")).unwrap();
        let (meta, bytes) = meta_and_bytes("x", "only in other", None);
        other.write("x", &bytes).unwrap();
        age(&other.value_path(&meta.value_digest), 2 * HOUR);
        assert_eq!(f.store.key_stores().unwrap().len(), 2);

        assert_eq!(f.store.collect_garbage_older_than(HOUR).unwrap(), 0);
        assert!(matches!(other.lookup("x", &ty(), NOW), Lookup::Hit(_)));

        // Opening again registers nothing twice; a deleted key store references nothing.
        SplitStore::open(&f.root.join("other-keys"), &f.root.join("results")).unwrap();
        assert_eq!(f.store.key_stores().unwrap().len(), 2);
        fs::remove_dir_all(f.root.join("other-keys")).unwrap();
        assert_eq!(f.store.collect_garbage_older_than(HOUR).unwrap(), 1);
    }

    #[test]
    fn list_gives_keys_with_metadata_and_skips_temp_files() {
        let f = fixture();
        let (meta_b, bytes_b) = meta_and_bytes("b", "v", None);
        let (meta_a, bytes_a) = meta_and_bytes("x/a", "w", Some(NOW));
        f.store.write("b", &bytes_b).unwrap();
        f.store.write("x/a", &bytes_a).unwrap();
        fs::write(f.root.join("keys/.tmp-1"), b"partial").unwrap();
        let listed = f.store.list().unwrap();
        let keys: Vec<&str> = listed.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "x/a"]);
        assert_eq!(listed[0].1.as_ref().unwrap(), &meta_b);
        assert_eq!(listed[1].1.as_ref().unwrap(), &meta_a);
    }

    #[test]
    fn key_storage_may_be_the_result_storage_folder() {
        let dir = tempfile::tempdir().unwrap();
        let store = SplitStore::open(dir.path(), dir.path()).unwrap();
        store.write("k", &record_bytes("k", "v")).unwrap();
        store.write("l", &record_bytes("l", "v")).unwrap();
        assert!(matches!(store.lookup("k", &ty(), NOW), Lookup::Hit(_)));
        let keys: Vec<String> = store.list().unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["k", "l"]);
        // The values are not keys, and a key cannot reach them.
        let err = store.write(".values/x", &record_bytes(".values/x", "v")).unwrap_err();
        assert!(matches!(err, StoreError::BadKey { .. }), "{err}");
        assert_eq!(value_files(&store).len(), 1);
    }

    #[test]
    fn key_storage_inside_the_values_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = SplitStore::open(&dir.path().join("r/.values/k"), &dir.path().join("r")).unwrap_err();
        assert!(err.to_string().contains("inside the values folder"), "{err}");
    }

    #[test]
    fn bad_keys_are_refused_before_any_value_is_written() {
        let f = fixture();
        for key in ["", "../k", "a//b", ".tmp-1"] {
            let err = f.store.write(key, &record_bytes(key, "v")).unwrap_err();
            assert!(matches!(err, StoreError::BadKey { .. }), "{key:?}: {err}");
            assert!(matches!(f.store.lookup(key, &ty(), NOW), Lookup::Unreadable { .. }));
        }
        assert!(value_files(&f.store).is_empty());
    }

    #[test]
    fn a_record_whose_value_does_not_match_its_digest_is_not_stored() {
        let f = fixture();
        let mut bytes = record_bytes("k", "v");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let err = f.store.write("k", &bytes).unwrap_err();
        assert!(matches!(err, StoreError::Record(RecordError::DigestMismatch)), "{err}");
        assert!(value_files(&f.store).is_empty());
        assert_eq!(f.store.lookup("k", &ty(), NOW), Lookup::Miss);
    }

    #[test]
    fn clean_stray_temp_files_cleans_both_folders() {
        let f = fixture();
        f.store.write("k", &record_bytes("k", "v")).unwrap();
        fs::write(f.root.join("keys/.tmp-1"), b"x").unwrap();
        fs::create_dir_all(f.store.values_folder().join("ab")).unwrap();
        fs::write(f.store.values_folder().join("ab/.tmp-2"), b"x").unwrap();
        assert_eq!(f.store.clean_stray_temp_files(Duration::ZERO), 2);
        assert!(matches!(f.store.lookup("k", &ty(), NOW), Lookup::Hit(_)));
    }

    #[test]
    fn synced_write_reads_back() {
        let f = fixture();
        let store = f.store.clone().with_sync(true);
        store.write("a/k", &record_bytes("a/k", "v")).unwrap();
        assert!(matches!(store.lookup("a/k", &ty(), NOW), Lookup::Hit(_)));
    }
}
