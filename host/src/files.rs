//! Files written so that a reader never sees a part of one, also across a crash: the one
//! atomic write of the result store, the compiled-component cache and the transaction
//! journal, and the clean-up of what a killed writer left behind.
//!
//! A file is written to a temporary file `.tmp-<pid>-<uuid>` in the target's own folder (so
//! the rename stays on one file system), optionally fsynced, renamed over the target, and
//! its folder optionally fsynced. The writer's pid in the temporary name lets a later
//! process tell a dead writer's stray from a live writer's file in progress.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The name prefix of a file being written; a file with it that stays is a stray from a
/// killed process, never a finished file.
pub const TEMP_PREFIX: &str = ".tmp-";

/// Temporary files older than this are strays of a killed process, whoever wrote them.
pub const STRAY_TEMP_AGE: Duration = Duration::from_secs(10 * 60);

/// Whether an atomic write is made durable before it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file before the rename and the folder after it: the new file survives a
    /// crash of the machine once the write has returned.
    Durable,
    /// Leave flushing to the operating system: a crash of the machine may lose the new file
    /// (never leave a part of it in place of the old one on a journalling file system).
    Lazy,
}

/// Which step of an atomic write failed, on which path.
#[derive(Debug, thiserror::Error)]
#[error("could not {action} {}: {source}", path.display())]
pub struct WriteError {
    /// What was being done, e.g. "create the temporary file".
    pub action: &'static str,
    /// The file or folder concerned.
    pub path: PathBuf,
    /// The operating system's error.
    pub source: io::Error,
}

fn step(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> WriteError {
    let path = path.to_owned();
    move |source| WriteError { action, path, source }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename,
/// creating the folder if it is missing: a reader sees the old file or the new one, never a
/// part. Returns the new file, still open (its metadata is the stamp of exactly these bytes,
/// whatever another process does to the path meanwhile).
pub fn write_atomically(path: &Path, bytes: &[u8], sync: Durability) -> Result<File, WriteError> {
    write_atomically_with(path, sync, |file| file.write_all(bytes))
}

/// [`write_atomically`] of the bytes `write` puts in the temporary file, in as many writes
/// as it likes (a record's header, then its value from the value's own buffer).
pub fn write_atomically_with(
    path: &Path,
    sync: Durability,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<File, WriteError> {
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    let tmp = folder.join(temp_file_name());
    let written = write_temp(&tmp, write, sync, folder).and_then(|file| {
        fs::rename(&tmp, path).map_err(step("move the new file into place at", path))?;
        Ok(file)
    });
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    let file = written?;
    if sync == Durability::Durable {
        sync_folder(folder).map_err(step("sync the folder", folder))?;
    }
    Ok(file)
}

/// Writes a new temporary file `tmp` in `folder` with `write`; returns it, still open.
fn write_temp(
    tmp: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
    sync: Durability,
    folder: &Path,
) -> Result<File, WriteError> {
    let create = || OpenOptions::new().write(true).create_new(true).open(tmp);
    // The folder almost always exists: create it only when the file cannot be, which saves
    // every write a system call.
    let created = match create() {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(folder).map_err(step("create the folder", folder))?;
            create()
        }
        other => other,
    };
    let mut file = created.map_err(step("create the temporary file", tmp))?;
    write(&mut file).map_err(step("write the temporary file", tmp))?;
    if sync == Durability::Durable {
        file.sync_all().map_err(step("sync the temporary file", tmp))?;
    }
    Ok(file)
}

/// Makes a rename in `folder` durable. Only Unix lets a folder be opened and synced;
/// elsewhere the rename is as durable as it gets.
pub fn sync_folder(folder: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(folder)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = folder;
    Ok(())
}

/// A fresh temporary file name: `.tmp-<pid>-<uuid>`, so a cleaner can tell a dead writer's
/// file from a live one's.
pub fn temp_file_name() -> String {
    format!("{TEMP_PREFIX}{}-{}", std::process::id(), uuid::Uuid::new_v4().simple())
}

/// Removes the temporary files under `root` (recursively) that a killed writer left: those
/// whose writer process is gone (known on Linux from the pid in the name), and any older
/// than `older_than`. A live writer's fresh file is kept, so its rename still succeeds.
/// Returns how many were removed; files that cannot be removed are left alone.
pub fn clean_stray_temp_files(root: &Path, older_than: Duration) -> usize {
    let now = SystemTime::now();
    let mut removed = 0;
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            if file_type.is_dir() {
                folders.push(entry.path());
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(TEMP_PREFIX) else {
                continue;
            };
            if !file_type.is_file() {
                continue;
            }
            let writer_gone = rest
                .split_once('-')
                .and_then(|(pid, _)| pid.parse::<u32>().ok())
                .is_some_and(|pid| pid != std::process::id() && !process_alive(pid));
            let age =
                entry.metadata().and_then(|m| m.modified()).ok().and_then(|modified| now.duration_since(modified).ok());
            // A file modified "in the future" (clock skew) has no age and is kept.
            let stale = age.is_some_and(|age| age >= older_than);
            if (writer_gone || stale) && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

/// Whether process `pid` exists; where that cannot be known, it is taken to exist.
pub fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid no process has (beyond Linux's pid_max).
    const DEAD_PID: u32 = 4_194_305;

    fn entries(folder: &Path) -> usize {
        fs::read_dir(folder).unwrap().count()
    }

    #[test]
    fn a_write_creates_its_folder_replaces_the_file_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/file");
        for (bytes, sync) in [(&b"first"[..], Durability::Lazy), (&b"second"[..], Durability::Durable)] {
            write_atomically(&path, bytes, sync).unwrap();
            assert_eq!(fs::read(&path).unwrap(), bytes);
        }
        assert_eq!(entries(path.parent().unwrap()), 1, "no temp file is left");
    }

    #[test]
    fn a_failed_write_names_its_step_and_removes_its_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), b"x").unwrap();
        let error = write_atomically(&target, b"bytes", Durability::Lazy).unwrap_err();
        assert_eq!(error.action, "move the new file into place at");
        assert_eq!(entries(dir.path()), 1, "no temp file is left");
    }

    #[test]
    fn strays_of_dead_writers_and_old_strays_go_a_live_writers_fresh_file_stays() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir.path().join(format!("{TEMP_PREFIX}{DEAD_PID}-abc"));
        let live = dir.path().join("sub").join(temp_file_name());
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(&dead, b"half").unwrap();
        fs::write(&live, b"in progress").unwrap();
        fs::write(dir.path().join("record"), b"kept").unwrap();
        assert_eq!(clean_stray_temp_files(dir.path(), Duration::from_secs(3600)), 1);
        assert!(!dead.exists() && live.exists());
        assert_eq!(clean_stray_temp_files(dir.path(), Duration::ZERO), 1);
        assert!(!live.exists());
        assert!(dir.path().join("record").exists());
    }

    #[test]
    fn this_process_is_alive_and_a_pid_beyond_pid_max_is_not() {
        assert!(process_alive(std::process::id()));
        assert_eq!(process_alive(DEAD_PID), !cfg!(target_os = "linux"));
    }
}
