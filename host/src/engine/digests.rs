//! Remembered component digests: a warm start does not re-read and re-hash a 20 MB
//! component whose file has not changed.
//!
//! The trust rule is [`crate::stamp`]'s, on the file's canonical path: a remembered
//! BLAKE3 digest is used only while the file's stamp (device, inode, size, mtime, ctime)
//! equals the one recorded when it was hashed, and it is recorded only when the stamp was
//! the same just before and just after the file was read (no writer in between) and had
//! settled ([`SETTLE`]) at the moment of hashing. Off Unix, nothing is remembered and every
//! start hashes the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::files::{self, Durability};
use crate::stamp::{FileStamp as Stamp, SETTLE};

const FORMAT: &str = "cachehost-digest-v1";

/// The folder of remembered digests, one small file per component path.
pub struct DigestCache {
    dir: PathBuf,
    settle: Duration,
}

impl DigestCache {
    /// Digests remembered in `dir`, trusted under the rule of this module.
    pub fn new(dir: PathBuf) -> DigestCache {
        DigestCache { dir, settle: SETTLE }
    }

    /// Digests remembered in `dir`, kept only for files older than `settle` (tests use zero).
    #[cfg(test)]
    pub(crate) fn settled_after(dir: PathBuf, settle: Duration) -> DigestCache {
        DigestCache { dir, settle }
    }

    /// Replaces the remembered digest of `path` with `forged`, keeping the stamp: shows
    /// whether a load re-reads the file (it must not while the stamp is unchanged).
    #[cfg(test)]
    pub(crate) fn forge(&self, path: &Path, forged: &blake3::Hash) {
        let record = self.record_path(&std::fs::canonicalize(path).unwrap());
        let text = std::fs::read_to_string(&record).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        let hex = forged.to_hex();
        lines[3] = hex.as_str();
        std::fs::write(&record, lines.join("\n") + "\n").unwrap();
    }

    /// The remembered digest and size of the file at `path`, if its stamp is unchanged.
    pub fn known(&self, path: &Path) -> Option<(blake3::Hash, u64)> {
        let canonical = std::fs::canonicalize(path).ok()?;
        let stamp = Stamp::of(&std::fs::metadata(&canonical).ok()?)?;
        let text = std::fs::read_to_string(self.record_path(&canonical)).ok()?;
        let mut lines = text.lines();
        if lines.next()? != FORMAT || Path::new(lines.next()?) != canonical {
            return None;
        }
        let recorded = Stamp::parse(lines.next()?)?;
        let digest = blake3::Hash::from_hex(lines.next()?).ok()?;
        (recorded == stamp).then_some((digest, stamp.size))
    }

    /// Records `digest` for the file at `path`, hashed from bytes read after `before` was
    /// taken; does nothing when the file changed meanwhile or has not settled.
    pub fn remember(&self, path: &Path, before: &std::fs::Metadata, digest: &blake3::Hash) {
        let Ok(canonical) = std::fs::canonicalize(path) else {
            return;
        };
        let (Some(before), Some(after)) =
            (Stamp::of(before), std::fs::metadata(&canonical).ok().and_then(|m| Stamp::of(&m)))
        else {
            return;
        };
        if before != after || !after.settled(self.settle) {
            return;
        }
        let text = format!("{FORMAT}\n{}\n{}\n{}\n", canonical.display(), after.line(), digest.to_hex());
        // A digest that cannot be remembered only costs the next start a hash.
        let _ = files::write_atomically(&self.record_path(&canonical), text.as_bytes(), Durability::Lazy);
    }

    /// The file that remembers the digest of the file at `canonical`.
    fn record_path(&self, canonical: &Path) -> PathBuf {
        let name = blake3::hash(canonical.as_os_str().as_encoded_bytes());
        self.dir.join(&name.to_hex()[..32])
    }
}

impl Stamp {
    fn line(&self) -> String {
        format!("{} {} {} {} {}", self.dev, self.ino, self.size, self.mtime_ns, self.ctime_ns)
    }

    fn parse(line: &str) -> Option<Stamp> {
        let mut fields = line.split(' ');
        let stamp = Stamp {
            dev: fields.next()?.parse().ok()?,
            ino: fields.next()?.parse().ok()?,
            size: fields.next()?.parse().ok()?,
            mtime_ns: fields.next()?.parse().ok()?,
            ctime_ns: fields.next()?.parse().ok()?,
        };
        fields.next().is_none().then_some(stamp)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::fs::{File, FileTimes};
    use std::os::unix::fs::MetadataExt;
    use std::time::SystemTime;

    fn cache(dir: &Path, settle: Duration) -> DigestCache {
        DigestCache::settled_after(dir.join("digests"), settle)
    }

    /// Hashes the file as `Engine::load` does and remembers the digest.
    fn hash_and_remember(cache: &DigestCache, path: &Path) -> blake3::Hash {
        let before = std::fs::metadata(path).unwrap();
        let digest = blake3::hash(&std::fs::read(path).unwrap());
        cache.remember(path, &before, &digest);
        digest
    }

    /// `c.wasm` holding "first version", its digest remembered by a cache trusting at once.
    fn remembered_first_version() -> (tempfile::TempDir, PathBuf, DigestCache) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.wasm");
        std::fs::write(&path, b"first version").unwrap();
        let cache = cache(dir.path(), Duration::ZERO);
        digest_of(&cache, &path);
        (dir, path, cache)
    }

    /// What `Engine::load` uses: the remembered digest, else a fresh hash.
    fn digest_of(cache: &DigestCache, path: &Path) -> blake3::Hash {
        cache.known(path).map(|(d, _)| d).unwrap_or_else(|| hash_and_remember(cache, path))
    }

    /// Rewrites `path` with `bytes` until its ctime moves past `old_ctime_ns` (file system
    /// timestamps tick coarsely), then sets its mtime to `mtime`.
    fn rewrite(path: &Path, bytes: &[u8], old_ctime_ns: i128, mtime: SystemTime) {
        loop {
            std::fs::write(path, bytes).unwrap();
            let meta = std::fs::metadata(path).unwrap();
            if i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()) != old_ctime_ns {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        File::options().write(true).open(path).unwrap().set_times(FileTimes::new().set_modified(mtime)).unwrap();
    }

    fn ctime_ns(path: &Path) -> i128 {
        let meta = std::fs::metadata(path).unwrap();
        i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec())
    }

    #[test]
    fn an_unchanged_file_is_not_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.wasm");
        std::fs::write(&path, b"first version").unwrap();
        let cache = cache(dir.path(), Duration::ZERO);
        assert_eq!(digest_of(&cache, &path), blake3::hash(b"first version"));
        let forged = blake3::hash(b"not the content");
        cache.forge(&path, &forged);
        assert_eq!(cache.known(&path), Some((forged, 13)), "the remembered digest is used without reading the file");
    }

    #[test]
    fn a_content_change_with_a_new_mtime_gives_the_new_digest() {
        let (_dir, path, cache) = remembered_first_version();
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        rewrite(&path, b"other content", ctime_ns(&path), mtime + Duration::from_secs(5));
        assert_eq!(digest_of(&cache, &path), blake3::hash(b"other content"));
    }

    #[test]
    fn a_rewrite_with_the_same_size_and_a_forged_mtime_gives_the_new_digest() {
        let (_dir, path, cache) = remembered_first_version();
        let before = std::fs::metadata(&path).unwrap();
        rewrite(&path, b"forged versio", ctime_ns(&path), before.modified().unwrap());
        let after = std::fs::metadata(&path).unwrap();
        assert_eq!(
            (after.len(), after.modified().unwrap(), after.ino()),
            (before.len(), before.modified().unwrap(), before.ino())
        );
        assert_eq!(cache.known(&path), None, "the ctime moved, so the record is not trusted");
        assert_eq!(digest_of(&cache, &path), blake3::hash(b"forged versio"));
    }

    #[test]
    fn a_file_replaced_by_a_rename_gives_the_new_digest() {
        let (dir, path, cache) = remembered_first_version();
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        let new = dir.path().join("new.wasm");
        std::fs::write(&new, b"second versn").unwrap();
        File::options().write(true).open(&new).unwrap().set_times(FileTimes::new().set_modified(mtime)).unwrap();
        std::fs::rename(&new, &path).unwrap();
        assert_eq!(digest_of(&cache, &path), blake3::hash(b"second versn"));
    }

    #[test]
    fn a_file_that_has_not_settled_is_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.wasm");
        std::fs::write(&path, b"just written").unwrap();
        let cache = cache(dir.path(), Duration::from_secs(3600));
        hash_and_remember(&cache, &path);
        assert_eq!(cache.known(&path), None);
        assert!(!cache.dir.exists(), "nothing was recorded");
    }

    #[test]
    fn the_same_file_through_another_path_shares_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.wasm");
        std::fs::write(&path, b"content").unwrap();
        let cache = cache(dir.path(), Duration::ZERO);
        hash_and_remember(&cache, &path);
        let other = dir.path().join(".").join("c.wasm");
        assert_eq!(cache.known(&other).map(|(d, _)| d), Some(blake3::hash(b"content")));
    }
}
