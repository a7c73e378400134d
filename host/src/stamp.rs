//! File stamps: what identifies one version of a file without reading it, for the caches
//! that trust a file's earlier reading while it is unchanged (remembered component digests,
//! decoded records of the local result store).
//!
//! The trust rule: a file is unchanged while its device, inode, size, mtime and ctime
//! (nanoseconds) are all the same, and only if its mtime and ctime were at least [`SETTLE`]
//! old when it was read. A write within one tick of the file system's clock can leave both
//! times unchanged (git's "racily clean" files); a write after they have settled moves the
//! ctime, which no user can set back (only a change of the system clock can). A rename or
//! link onto the path moves the ctime of the file it brings, and a new file that reuses a
//! deleted one's inode has a ctime newer than the settled one. Not covered: writes to the
//! raw block device, and file systems whose ctime does not move on writes. Off Unix (no
//! ctime or inode) there are no stamps, so nothing is trusted.

use std::time::{Duration, SystemTime};

/// How old a file's mtime and ctime must be for a reading of it to be trusted later.
pub const SETTLE: Duration = Duration::from_secs(2);

/// One version of a file, as its metadata identifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    /// The device holding it.
    pub dev: u64,
    /// Its inode number.
    pub ino: u64,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i128,
    /// Its status-change time, nanoseconds since the Unix epoch.
    pub ctime_ns: i128,
}

impl FileStamp {
    /// The stamp of a file from its metadata; none off Unix.
    #[cfg(unix)]
    pub fn of(meta: &std::fs::Metadata) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let ns = |secs: i64, nanos: i64| i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        Some(FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        })
    }

    /// The stamp of a file from its metadata; none off Unix.
    #[cfg(not(unix))]
    pub fn of(_meta: &std::fs::Metadata) -> Option<FileStamp> {
        None
    }

    /// Whether both times are at least `settle` older than now.
    pub fn settled(&self, settle: Duration) -> bool {
        let Ok(now) = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) else {
            return false;
        };
        let now_ns = now.as_nanos() as i128;
        let old = |stamp_ns: i128| now_ns - stamp_ns >= settle.as_nanos() as i128;
        old(self.mtime_ns) && old(self.ctime_ns)
    }
}
