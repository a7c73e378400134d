//! The default result store: one file per key in a local folder, as in Prefect
//! (reference §6.3), but written atomically.
//!
//! A hit must cost microseconds (DESIGN §9), and opening and reading a file costs more than
//! that on its own, so the store keeps the records it decoded and serves one again after a
//! single `stat` of its file, while the file's stamp is unchanged and had settled when it
//! was read ([`crate::stamp`]): a record removed, replaced or rewritten by any process is
//! read again, never served stale.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{durability, record, Listing, Lookup, Record, ResultStore, Shared, StoreError, VALUES_FOLDER};
use crate::files::{self, TEMP_PREFIX};
use crate::stamp::{FileStamp, SETTLE};
use crate::value::Ty;

/// Records as files under a root folder; a key with `/` in it makes sub-folders.
#[derive(Clone, Debug)]
pub struct LocalStore {
    root: PathBuf,
    sync: bool,
    /// Shared by clones: an entry is only ever trusted through its file's stamp.
    decoded: Arc<Mutex<DecodedRecords>>,
    settle: Duration,
}

/// At most this many decoded records are kept, holding at most [`DECODED_BYTES`] bytes of
/// record files; when one more would not fit, all are dropped and the keeping starts over.
const DECODED_RECORDS: usize = 16_384;
const DECODED_BYTES: u64 = 64 << 20;

/// Records decoded from their files, by key, each with the stamp of the file it came from.
#[derive(Debug, Default)]
struct DecodedRecords {
    entries: HashMap<String, (FileStamp, Arc<Record>)>,
    bytes: u64,
}

impl DecodedRecords {
    fn keep(&mut self, key: &str, stamp: FileStamp, record: Arc<Record>) {
        self.forget(key);
        if self.entries.len() >= DECODED_RECORDS || self.bytes + stamp.size > DECODED_BYTES {
            self.entries.clear();
            self.bytes = 0;
        }
        if stamp.size <= DECODED_BYTES {
            self.bytes += stamp.size;
            self.entries.insert(key.to_owned(), (stamp, record));
        }
    }

    fn forget(&mut self, key: &str) {
        if let Some((stamp, _)) = self.entries.remove(key) {
            self.bytes -= stamp.size;
        }
    }
}

impl LocalStore {
    /// Opens the store in `root`, creating the folder if needed.
    pub fn open(root: &Path) -> Result<LocalStore, StoreError> {
        fs::create_dir_all(root).map_err(StoreError::io("create the result store folder", root))?;
        Ok(LocalStore { root: root.to_path_buf(), sync: false, decoded: Arc::default(), settle: SETTLE })
    }

    /// The store with files trusted once `settle` old instead of [`SETTLE`] (tests).
    #[cfg(test)]
    pub(crate) fn settled_after(mut self, settle: Duration) -> LocalStore {
        self.settle = settle;
        self
    }

    /// Whether a decoded record is kept for `key` (tests).
    #[cfg(test)]
    pub(crate) fn keeps(&self, key: &str) -> bool {
        self.decoded().entries.contains_key(key)
    }

    /// Replaces the value of the record kept for `key`, keeping its stamp: shows whether a
    /// lookup reads the file again (it must not while the stamp is unchanged).
    #[cfg(test)]
    pub(crate) fn forge(&self, key: &str, value: crate::value::Value) {
        let mut decoded = self.decoded();
        let (_, record) = decoded.entries.get_mut(key).expect("a kept record");
        *record = Arc::new(Record { meta: record.meta.clone(), value });
    }

    fn decoded(&self) -> std::sync::MutexGuard<'_, DecodedRecords> {
        self.decoded.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads and decodes the record file at `path`, keeping the record when its file had
    /// settled; the stamp is taken before the bytes are read, so a write during the read
    /// moves the stamp past the kept one.
    fn read_record(&self, key: &str, path: &Path, expected: &Ty, now_ms: i64) -> Lookup {
        let read = |path: &Path| -> io::Result<(Option<FileStamp>, Vec<u8>)> {
            let mut file = fs::File::open(path)?;
            let meta = file.metadata()?;
            let mut bytes = crate::buffers::with_capacity(meta.len() as usize);
            file.read_to_end(&mut bytes)?;
            Ok((FileStamp::of(&meta), bytes))
        };
        let (stamp, bytes) = match read(path) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Lookup::Miss,
            Err(e) => return Lookup::Unreadable { reason: format!("could not read {}: {e}", path.display()) },
        };
        let record = match record::decode_owned(bytes, expected) {
            Ok(record) => Arc::new(record),
            Err(e) => return Lookup::Unreadable { reason: e.to_string() },
        };
        if let Some(stamp) = stamp.filter(|s| s.settled(self.settle)) {
            self.decoded().keep(key, stamp, record.clone());
        }
        Lookup::of_record(record, key, now_ms)
    }

    /// Whether writes fsync the record and its folder before returning (default: no).
    pub fn with_sync(mut self, sync: bool) -> LocalStore {
        self.sync = sync;
        self
    }

    /// The store's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file that holds `key`'s record; refuses keys that would leave the folder
    /// ([`super::check_key`]).
    pub fn path_of(&self, key: &str) -> Result<PathBuf, StoreError> {
        super::check_key(key)?;
        Ok(self.root.join(key))
    }

    /// Removes temporary files left by writers that were killed (see
    /// [`files::clean_stray_temp_files`]); returns how many were removed.
    pub fn clean_stray_temp_files(&self, older_than: Duration) -> usize {
        files::clean_stray_temp_files(&self.root, older_than)
    }
}

impl ResultStore for LocalStore {
    fn lookup(&self, key: &str, expected: &Ty, now_ms: i64) -> Lookup {
        let path = match self.path_of(key) {
            Ok(path) => path,
            Err(e) => return Lookup::Unreadable { reason: e.to_string() },
        };
        // A record decoded earlier is served again while one stat shows its file unchanged.
        let kept = self.decoded().entries.get(key).map(|(stamp, record)| (*stamp, record.clone()));
        if let Some((stamp, record)) = kept {
            match fs::metadata(&path) {
                Ok(meta) if FileStamp::of(&meta) == Some(stamp) => {
                    return match record::check_type(&record.meta, expected) {
                        Ok(()) => Lookup::of_record(record, key, now_ms),
                        Err(e) => Lookup::Unreadable { reason: e.to_string() },
                    };
                }
                _ => self.decoded().forget(key),
            }
        }
        self.read_record(key, &path, expected, now_ms)
    }

    fn write(&self, key: &str, record_bytes: &[u8]) -> Result<(), StoreError> {
        // The stamp of the file put in place is taken from the still-open file after the
        // rename (which moves its ctime): the stamp of exactly these bytes.
        let stamp = files::write_atomically(&self.path_of(key)?, record_bytes, durability(self.sync))
            .map(|file| file.metadata().ok().and_then(|meta| FileStamp::of(&meta)))
            .map_err(StoreError::from);
        // What this store wrote is kept at once, under the stamp of the file it put in place:
        // another writer's record (cachehost replaces files, never writes into them) is a new
        // file with another stamp. A flow that calls a task again within SETTLE of writing
        // its record, the common case, then hits without reading the file.
        // A record too large to keep is not decoded: that would copy its value for nothing.
        let keepable = record_bytes.len() as u64 <= DECODED_BYTES;
        let kept = match (&stamp, record::split(record_bytes)) {
            (Ok(Some(stamp)), Ok((meta, value_bytes))) if keepable => {
                record::decode_value_bytes(value_bytes, &meta.value_type)
                    .ok()
                    .map(|value| (*stamp, Arc::new(Record { meta, value })))
            }
            _ => None,
        };
        let mut decoded = self.decoded();
        match kept {
            Some((stamp, record)) => decoded.keep(key, stamp, record),
            None => decoded.forget(key),
        }
        stamp.map(|_| ())
    }

    fn write_new(&self, key: &str, record: &record::NewRecord) -> Result<(), StoreError> {
        let stamp =
            files::write_atomically_with(&self.path_of(key)?, durability(self.sync), |file| record.write_to(file))
                .map(|file| file.metadata().ok().and_then(|meta| FileStamp::of(&meta)))
                .map_err(StoreError::from);
        // Kept as `write` keeps what it wrote; the value is shared, not copied.
        let mut decoded = self.decoded();
        match &stamp {
            Ok(Some(stamp)) if record.len() <= DECODED_BYTES => {
                decoded.keep(key, *stamp, Arc::new(Record { meta: record.meta.clone(), value: record.value.clone() }))
            }
            _ => decoded.forget(key),
        }
        stamp.map(|_| ())
    }

    /// Values go to the `.values` folder of the store's folder, which no key can name.
    fn write_value(&self, digest: &[u8; 32], bytes: &[u8]) -> Result<(), StoreError> {
        let path = super::value_file(&self.root.join(VALUES_FOLDER), digest);
        files::write_atomically(&path, bytes, durability(self.sync))?;
        Ok(())
    }

    fn read_value(&self, digest: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        super::read_value_file(&super::value_file(&self.root.join(VALUES_FOLDER), digest), digest)
    }

    fn write_shared(&self, kind: Shared, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        super::write_shared_file(&self.root, kind, name, bytes)
    }

    fn read_shared(&self, kind: Shared, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        super::read_shared_file(&self.root, kind, name)
    }

    fn shared_len(&self, kind: Shared, name: &str) -> Result<Option<u64>, StoreError> {
        super::shared_file_len(&self.root, kind, name)
    }

    fn remove_shared(&self, kind: Shared, name: &str) -> Result<(), StoreError> {
        super::remove_shared_file(&self.root, kind, name)
    }

    fn remove_shared_older_than(&self, kind: Shared, age: std::time::Duration) -> Result<usize, StoreError> {
        super::remove_shared_files_older_than(&self.root, kind, age)
    }

    fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path_of(key)?;
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("read the record", path)(e)),
        }
    }

    fn remove(&self, key: &str) -> Result<bool, StoreError> {
        let path = self.path_of(key)?;
        self.decoded().forget(key);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io("remove the record", path)(e)),
        }
    }

    fn list(&self) -> Result<Listing, StoreError> {
        let mut records = Vec::new();
        // Record files found by the walk: (key, path), read and decoded afterwards in parallel.
        let mut files = Vec::new();
        // (folder, its key prefix: "" or "a/b/")
        let mut folders = vec![(self.root.clone(), String::new())];
        while let Some((folder, prefix)) = folders.pop() {
            let entries = match fs::read_dir(&folder) {
                Ok(entries) => entries,
                Err(e) if folder == self.root => return Err(StoreError::io("list the result store folder", folder)(e)),
                Err(e) => {
                    let key = prefix.trim_end_matches('/').to_string();
                    records.push((key, Err(StoreError::io("list the folder", folder)(e))));
                    continue;
                }
            };
            for entry in entries {
                let entry = entry.map_err(StoreError::io("list the folder", &folder))?;
                let name = entry.file_name();
                let key = format!("{prefix}{}", name.to_string_lossy());
                let Ok(file_type) = entry.file_type() else {
                    continue;
                };
                if name.to_string_lossy().starts_with(TEMP_PREFIX)
                    || name == VALUES_FOLDER
                    || Shared::is_folder(&name.to_string_lossy())
                {
                    continue;
                }
                if file_type.is_dir() {
                    folders.push((entry.path(), format!("{key}/")));
                } else if file_type.is_file() {
                    if name.to_str().is_none() {
                        let error = StoreError::BadKey { key: key.clone(), reason: "the file name is not UTF-8" };
                        records.push((key, Err(error)));
                    } else {
                        files.push((key, entry.path()));
                    }
                }
            }
        }
        records.extend(crate::parallel::map(&files, |(key, path)| {
            let meta = fs::read(path)
                .map_err(StoreError::io("read the record", path))
                .and_then(|bytes| Ok(record::decode_meta(&bytes)?));
            (key.clone(), meta)
        }));
        records.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(records)
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::record::{encode, encode_value, KeyPartMeta, RecordError, RecordMeta};
    use crate::value::{Numbers, Value};

    const NOW: i64 = 1_700_000_000_000;

    fn ty() -> Ty {
        Ty::Tuple(vec![Ty::String, Ty::List(Box::new(Ty::S64))])
    }

    fn value(text: &str) -> Value {
        Value::Tuple(vec![Value::String(text.into()), Value::Numbers(Numbers::S64(vec![-1, 2].into()))])
    }

    fn meta_and_bytes(key: &str, text: &str, expiration_ms: Option<i64>) -> (RecordMeta, Vec<u8>) {
        let value_bytes = encode_value(&value(text));
        let meta = RecordMeta::new(
            key.into(),
            "example:math/ops.pair".into(),
            "cd".repeat(32),
            vec![KeyPartMeta { name: "inputs".into(), key: "9a".into(), detail: vec![] }],
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

    fn store() -> (tempfile::TempDir, LocalStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("results")).unwrap();
        (dir, store)
    }

    fn unreadable_reason(lookup: Lookup) -> String {
        match lookup {
            Lookup::Unreadable { reason } => reason,
            other => panic!("expected Unreadable, got {other:?}"),
        }
    }

    /// File names in `folder`, sorted.
    fn names(folder: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(folder).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    }

    /// A 300 kB byte list's record, as a task's large result is staged.
    pub(crate) fn large_new_record(key: &str) -> (Ty, record::NewRecord) {
        let ty = Ty::List(Box::new(Ty::U8));
        let value = Value::Bytes((0..300_000u32).map(|i| (i % 251) as u8).collect());
        let meta =
            RecordMeta::for_value(key.into(), "t".into(), "cd".repeat(32), vec![], NOW - 5, None, ty.clone(), &value);
        (ty, record::NewRecord::new(meta, value))
    }

    #[test]
    fn a_new_record_is_written_from_its_value_with_the_bytes_write_writes() {
        let (_dir, store) = keeping_store();
        let (ty, new) = large_new_record("big");
        store.write_new("big", &new).unwrap();
        let expected = encode(&new.meta, &encode_value(&new.value));
        assert_eq!(fs::read(store.root().join("big")).unwrap(), expected);
        assert!(store.keeps("big"), "kept, as `write` keeps what it wrote");
        assert_eq!(hit_value(store.lookup("big", &ty, NOW)), new.value);
        assert_eq!(names(store.root()), ["big"], "no temp file left");
    }

    #[test]
    fn open_creates_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a/b");
        let store = LocalStore::open(&root).unwrap();
        assert!(root.is_dir());
        assert_eq!(store.describe(), root.display().to_string());
    }

    #[test]
    fn write_then_lookup_hits_with_the_same_meta_and_value() {
        let (_dir, store) = store();
        let (meta, bytes) = meta_and_bytes("k1", "hello", None);
        store.write("k1", &bytes).unwrap();
        assert_eq!(fs::read(store.root().join("k1")).unwrap(), bytes);
        match store.lookup("k1", &ty(), NOW) {
            Lookup::Hit(record) => {
                assert_eq!(record.meta, meta);
                assert_eq!(record.value, value("hello"));
            }
            other => panic!("expected a hit, got {other:?}"),
        }
    }

    #[test]
    fn missing_record_is_a_miss() {
        let (_dir, store) = store();
        assert_eq!(store.lookup("nothing", &ty(), NOW), Lookup::Miss);
        assert_eq!(store.lookup("no/such/folder", &ty(), NOW), Lookup::Miss);
    }

    #[test]
    fn expiry_is_strict_and_hits_do_not_rewrite() {
        let (_dir, store) = store();
        let (_, bytes) = meta_and_bytes("k", "v", Some(NOW));
        store.write("k", &bytes).unwrap();
        let modified = fs::metadata(store.root().join("k")).unwrap().modified().unwrap();
        assert!(matches!(store.lookup("k", &ty(), NOW - 1), Lookup::Hit(_)));
        assert_eq!(store.lookup("k", &ty(), NOW), Lookup::Expired { expiration_ms: NOW });
        assert_eq!(fs::read(store.root().join("k")).unwrap(), bytes);
        assert_eq!(fs::metadata(store.root().join("k")).unwrap().modified().unwrap(), modified);
    }

    #[test]
    fn truncated_record_at_every_length_is_unreadable() {
        let (_dir, store) = store();
        let bytes = record_bytes("k", "v");
        for len in 0..bytes.len() {
            fs::write(store.root().join("k"), &bytes[..len]).unwrap();
            let reason = unreadable_reason(store.lookup("k", &ty(), NOW));
            assert!(reason.contains("truncated"), "length {len}: {reason}");
        }
    }

    #[test]
    fn flipped_bit_in_the_value_is_unreadable() {
        let (_dir, store) = store();
        let mut bytes = record_bytes("k", "hello");
        let last = bytes.len() - 1;
        bytes[last] ^= 0x04;
        fs::write(store.root().join("k"), &bytes).unwrap();
        let reason = unreadable_reason(store.lookup("k", &ty(), NOW));
        assert_eq!(reason, RecordError::DigestMismatch.to_string());
    }

    #[test]
    fn zeroed_file_is_unreadable() {
        let (_dir, store) = store();
        let len = record_bytes("k", "v").len();
        fs::write(store.root().join("k"), vec![0u8; len]).unwrap();
        let reason = unreadable_reason(store.lookup("k", &ty(), NOW));
        assert_eq!(reason, RecordError::BadMagic.to_string());
    }

    #[test]
    fn prefect_record_is_unreadable() {
        let (_dir, store) = store();
        fs::write(store.root().join("k"), br#"{"metadata":{},"result":"gAVOLg==\n"}"#).unwrap();
        let reason = unreadable_reason(store.lookup("k", &ty(), NOW));
        assert_eq!(reason, RecordError::BadMagic.to_string());
    }

    #[test]
    fn bumped_version_is_unreadable() {
        let (_dir, store) = store();
        let mut bytes = record_bytes("k", "v");
        bytes[record::MAGIC.len()] += 1;
        fs::write(store.root().join("k"), &bytes).unwrap();
        let reason = unreadable_reason(store.lookup("k", &ty(), NOW));
        let unsupported = format!("version {} is not supported", record::FORMAT_VERSION + 1);
        assert!(reason.contains(&unsupported), "{reason}");
    }

    #[test]
    fn other_expected_type_is_unreadable_with_the_type_mismatch() {
        let (_dir, store) = store();
        store.write("k", &record_bytes("k", "v")).unwrap();
        let reason = unreadable_reason(store.lookup("k", &Ty::String, NOW));
        assert!(reason.contains("the task returns String"), "{reason}");
    }

    #[test]
    fn folder_in_place_of_the_record_is_unreadable() {
        let (_dir, store) = store();
        fs::create_dir(store.root().join("k")).unwrap();
        let reason = unreadable_reason(store.lookup("k", &ty(), NOW));
        assert!(reason.contains("could not read"), "{reason}");
    }

    #[test]
    fn overwrite_replaces_the_record() {
        let (_dir, store) = store();
        store.write("k", &record_bytes("k", "old")).unwrap();
        store.write("k", &record_bytes("k", "new")).unwrap();
        match store.lookup("k", &ty(), NOW) {
            Lookup::Hit(record) => assert_eq!(record.value, value("new")),
            other => panic!("expected a hit, got {other:?}"),
        }
        assert_eq!(names(store.root()), ["k"]);
    }

    #[test]
    fn write_over_an_unreadable_record_repairs_it() {
        let (_dir, store) = store();
        fs::write(store.root().join("k"), b"CHREC\x01garbage").unwrap();
        unreadable_reason(store.lookup("k", &ty(), NOW));
        store.write("k", &record_bytes("k", "v")).unwrap();
        assert!(matches!(store.lookup("k", &ty(), NOW), Lookup::Hit(_)));
    }

    #[test]
    fn slashes_in_keys_make_sub_folders() {
        let (_dir, store) = store();
        store.write("team/a/k", &record_bytes("team/a/k", "v")).unwrap();
        assert!(store.root().join("team/a").is_dir());
        assert!(store.root().join("team/a/k").is_file());
        assert!(matches!(store.lookup("team/a/k", &ty(), NOW), Lookup::Hit(_)));
        assert_eq!(names(&store.root().join("team/a")), ["k"]);
    }

    #[test]
    fn bad_keys_are_refused_and_touch_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("results")).unwrap();
        let bytes = record_bytes("x", "v");
        for key in [
            "",
            "/etc/k",
            "../k",
            "a/../../k",
            "a/./k",
            ".",
            "..",
            "a//k",
            "a/",
            "k\0",
            ".tmp-1",
            "a/.tmp-x/k",
            ".values/ab/cd",
            "a/.values/k",
        ] {
            let err = store.write(key, &bytes).unwrap_err();
            assert!(matches!(err, StoreError::BadKey { .. }), "{key:?}: {err}");
            assert!(matches!(store.remove(key), Err(StoreError::BadKey { .. })), "{key:?}");
            assert!(matches!(store.lookup(key, &ty(), NOW), Lookup::Unreadable { .. }), "{key:?}");
        }
        assert_eq!(names(dir.path()), ["results"]);
        assert!(names(store.root()).is_empty());
    }

    #[test]
    fn read_gives_the_bytes_or_none() {
        let (_dir, store) = store();
        let bytes = record_bytes("a/k", "v");
        store.write("a/k", &bytes).unwrap();
        assert_eq!(store.read("a/k").unwrap(), Some(bytes));
        assert_eq!(store.read("a/other").unwrap(), None);
        assert!(matches!(store.read("../k"), Err(StoreError::BadKey { .. })));
    }

    #[test]
    fn remove_says_whether_there_was_a_record() {
        let (_dir, store) = store();
        store.write("a/k", &record_bytes("a/k", "v")).unwrap();
        assert!(store.remove("a/k").unwrap());
        assert!(!store.remove("a/k").unwrap());
        assert_eq!(store.lookup("a/k", &ty(), NOW), Lookup::Miss);
    }

    #[test]
    fn list_gives_sorted_keys_with_meta_and_skips_temp_files() {
        let (_dir, store) = store();
        let (meta_b, bytes_b) = meta_and_bytes("b", "v", None);
        let (meta_a, bytes_a) = meta_and_bytes("x/a", "v", Some(NOW));
        store.write("b", &bytes_b).unwrap();
        store.write("x/a", &bytes_a).unwrap();
        fs::write(store.root().join("broken"), b"not a record").unwrap();
        fs::write(store.root().join(".tmp-0123"), &bytes_b[..3]).unwrap();
        fs::write(store.root().join("x/.tmp-4567"), &bytes_b).unwrap();
        fs::create_dir_all(store.root().join(".values/ab")).unwrap();
        fs::write(store.root().join(".values/ab/abcd"), b"a value").unwrap();

        let listed = store.list().unwrap();
        let keys: Vec<&str> = listed.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "broken", "x/a"]);
        assert_eq!(listed[0].1.as_ref().unwrap(), &meta_b);
        assert!(matches!(listed[1].1, Err(StoreError::Record(RecordError::BadMagic))));
        assert_eq!(listed[2].1.as_ref().unwrap(), &meta_a);
    }

    #[test]
    fn clean_stray_temp_files_removes_only_old_temp_files() {
        let (_dir, store) = store();
        store.write("a/k", &record_bytes("a/k", "v")).unwrap();
        fs::write(store.root().join(".tmp-1"), b"x").unwrap();
        fs::write(store.root().join("a/.tmp-2"), b"x").unwrap();

        assert_eq!(store.clean_stray_temp_files(Duration::from_secs(3600)), 0);
        assert_eq!(store.clean_stray_temp_files(Duration::ZERO), 2);
        assert_eq!(names(store.root()), ["a"]);
        assert_eq!(names(&store.root().join("a")), ["k"]);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_dead_writers_temp_file_is_removed_at_once_a_live_ones_is_kept() {
        let (_dir, store) = store();
        // Above Linux's largest pid (2^22), so no process has it.
        fs::write(store.root().join(".tmp-4194999-abc"), b"partial").unwrap();
        let own = store.root().join(files::temp_file_name());
        fs::write(&own, b"in progress").unwrap();
        assert_eq!(store.clean_stray_temp_files(Duration::from_secs(3600)), 1);
        assert!(own.exists());
    }

    #[test]
    fn write_leaves_no_temp_file_behind() {
        let (_dir, store) = store();
        store.write("a/k", &record_bytes("a/k", "v")).unwrap();
        store.write("a/k", &record_bytes("a/k", "w")).unwrap();
        assert_eq!(names(&store.root().join("a")), ["k"]);
    }

    #[test]
    fn synced_write_reads_back() {
        let (_dir, store) = store();
        let store = store.with_sync(true);
        store.write("a/k", &record_bytes("a/k", "v")).unwrap();
        assert!(matches!(store.lookup("a/k", &ty(), NOW), Lookup::Hit(_)));
    }

    /// A store that keeps every record it decodes at once, without waiting for its file to
    /// settle, so the tests can show what makes a kept record be read again.
    fn keeping_store() -> (tempfile::TempDir, LocalStore) {
        let (dir, store) = store();
        (dir, store.settled_after(Duration::ZERO))
    }

    fn hit_value(lookup: Lookup) -> Value {
        match lookup {
            Lookup::Hit(record) => record.value.clone(),
            other => panic!("expected a hit, got {other:?}"),
        }
    }

    fn ctime_ns(path: &Path) -> i128 {
        FileStamp::of(&fs::metadata(path).unwrap()).unwrap().ctime_ns
    }

    #[test]
    fn a_kept_record_is_served_without_reading_its_file() {
        let (_dir, store) = keeping_store();
        store.write("k", &record_bytes("k", "v")).unwrap();
        assert_eq!(hit_value(store.lookup("k", &ty(), NOW)), value("v"));
        store.forge("k", value("forged"));
        assert_eq!(hit_value(store.lookup("k", &ty(), NOW)), value("forged"));
        // The kept record is judged like a read one: type, then expiry.
        assert!(unreadable_reason(store.lookup("k", &Ty::String, NOW)).contains("the task returns String"));
    }

    #[test]
    fn a_fresh_record_read_from_its_file_is_not_kept_until_the_file_has_settled() {
        let (_dir, store) = store();
        let writer = LocalStore::open(store.root()).unwrap();
        writer.write("k", &record_bytes("k", "v")).unwrap();
        assert_eq!(hit_value(store.lookup("k", &ty(), NOW)), value("v"));
        assert!(!store.keeps("k"), "a file written within SETTLE may change without a new stamp");
    }

    #[test]
    fn a_record_this_store_wrote_is_kept_at_once_and_another_writers_replaces_it() {
        let (_dir, store) = store();
        store.write("k", &record_bytes("k", "mine")).unwrap();
        assert!(store.keeps("k"));
        store.forge("k", value("forged"));
        assert_eq!(hit_value(store.lookup("k", &ty(), NOW)), value("forged"), "served without reading the file");
        let other = LocalStore::open(store.root()).unwrap();
        other.write("k", &record_bytes("k", "theirs")).unwrap();
        assert_eq!(hit_value(store.lookup("k", &ty(), NOW)), value("theirs"));
    }

    #[test]
    fn a_kept_record_removed_by_another_process_is_a_miss() {
        let (_dir, store) = keeping_store();
        store.write("k", &record_bytes("k", "v")).unwrap();
        hit_value(store.lookup("k", &ty(), NOW));
        assert!(store.keeps("k"));
        fs::remove_file(store.root().join("k")).unwrap();
        assert_eq!(store.lookup("k", &ty(), NOW), Lookup::Miss);
    }

    #[test]
    fn a_kept_record_replaced_by_another_process_is_read_again() {
        let (_dir, store) = keeping_store();
        // Another process: a store of its own on the same folder.
        let other = LocalStore::open(store.root()).unwrap();
        store.write("k", &record_bytes("k", "old")).unwrap();
        hit_value(store.lookup("k", &ty(), NOW));
        assert!(store.keeps("k"));
        other.write("k", &record_bytes("k", "new")).unwrap();
        assert_eq!(hit_value(store.lookup("k", &ty(), NOW)), value("new"));
    }

    #[test]
    fn a_kept_record_rewritten_in_place_with_its_old_mtime_is_read_again() {
        let (_dir, store) = keeping_store();
        let path = store.root().join("k");
        store.write("k", &record_bytes("k", "old")).unwrap();
        hit_value(store.lookup("k", &ty(), NOW));
        assert!(store.keeps("k"));
        let before = fs::metadata(&path).unwrap();
        let old_ctime = ctime_ns(&path);
        // Same inode, same size, mtime set back: only the ctime can tell. File system times
        // tick coarsely, so write until it has moved.
        let new = record_bytes("k", "new");
        assert_eq!(new.len() as u64, before.len());
        while ctime_ns(&path) == old_ctime {
            std::thread::sleep(Duration::from_millis(1));
            fs::write(&path, &new).unwrap();
        }
        fs::File::options().write(true).open(&path).unwrap().set_modified(before.modified().unwrap()).unwrap();
        let after = FileStamp::of(&fs::metadata(&path).unwrap()).unwrap();
        let before = FileStamp::of(&before).unwrap();
        assert_eq!((after.ino, after.size, after.mtime_ns), (before.ino, before.size, before.mtime_ns));
        assert_eq!(hit_value(store.lookup("k", &ty(), NOW)), value("new"));
    }

    #[test]
    fn a_kept_record_is_judged_at_every_lookup_time() {
        let (_dir, store) = keeping_store();
        let (_, bytes) = meta_and_bytes("k", "v", Some(NOW));
        store.write("k", &bytes).unwrap();
        assert_eq!(hit_value(store.lookup("k", &ty(), NOW - 1)), value("v"));
        assert!(store.keeps("k"));
        assert_eq!(store.lookup("k", &ty(), NOW), Lookup::Expired { expiration_ms: NOW });
    }

    /// A reader racing a writer sees the old record or the new one, never a part of one.
    #[test]
    fn readers_never_see_a_partial_write() {
        let (_dir, store) = store();
        let big = |c: char| record_bytes("k", &c.to_string().repeat(256 * 1024));
        let records = [big('a'), big('b')];
        store.write("k", &records[0]).unwrap();
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..200 {
                    store.write("k", &records[i % 2]).unwrap();
                }
                done.store(true, std::sync::atomic::Ordering::Release);
            });
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::Acquire) || reads == 0 {
                match store.lookup("k", &ty(), NOW) {
                    Lookup::Hit(_) => reads += 1,
                    other => panic!("read {reads}: {other:?}"),
                }
            }
        });
    }
}
