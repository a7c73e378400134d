//! What a task run read, as the host that serves its WASI calls saw it (DESIGN §9a): the
//! files it opened for reading through its grants (hashed when the run ends), the folders it
//! listed with the names they held, the environment it was given when it asked for it, and
//! whether it asked for the wall clock, the monotonic clock or random bytes. Nothing a guest
//! says about itself counts, only the calls the host served.
//!
//! wasmtime-wasi serves WASI; the few calls that reveal a read are defined a second time
//! over its own (`shadow_wasi`), record what they see, and hand the call on to wasmtime-wasi
//! unchanged. Clocks and random sources are wrapped when the WASI context is built.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtime::component::{Linker, Resource};
use wasmtime::StoreContextMut;
use wasmtime_wasi::cli::WasiCliView;
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::p2::bindings::sync::filesystem::{preopens, types};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

use crate::limits::DirGrant;
use crate::stamp::{FileStamp, SETTLE};

/// The read set of one task run, as reports and records show it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadSet {
    /// Files opened for reading and not written by the run, by their path as the guest
    /// sees it (`/data/input.csv`), with the BLAKE3 of their content when the run ended
    /// (`None`: the file could not be read then).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, Option<String>>,
    /// Folders listed, by guest path, with the names they held, sorted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dirs: BTreeMap<String, Vec<String>>,
    /// The environment variables the run was given when it asked for its environment, with
    /// the BLAKE3 of each value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Whether the run read the wall clock.
    #[serde(default, skip_serializing_if = "is_false")]
    pub wall_clock: bool,
    /// Whether the run read the monotonic clock.
    #[serde(default, skip_serializing_if = "is_false")]
    pub monotonic_clock: bool,
    /// Whether the run asked for random bytes.
    #[serde(default, skip_serializing_if = "is_false")]
    pub random: bool,
}

fn is_false(flag: &bool) -> bool {
    !flag
}

impl ReadSet {
    /// Whether the run read nothing the host can see.
    pub fn is_empty(&self) -> bool {
        *self == ReadSet::default()
    }

    /// What the run read that a cache key without RUN_ID does not cover, for the
    /// determinism guard: `the wall clock`, `random`, `the environment variable GREETING`;
    /// variables only when the key does not cover them (`env_covered`: it has READS).
    pub fn uncovered(&self, env_covered: bool) -> Vec<String> {
        let mut read = Vec::new();
        if self.wall_clock {
            read.push("the wall clock".to_owned());
        }
        if self.random {
            read.push("random".to_owned());
        }
        let names: Vec<&str> = if env_covered { Vec::new() } else { self.env.keys().map(String::as_str).collect() };
        match names.as_slice() {
            [] => {}
            [name] => read.push(format!("the environment variable {name}")),
            names => read.push(format!("the environment variables {}", names.join(", "))),
        }
        read
    }

    /// The read set as a record keeps it for people ([`crate::store::record::RecordMeta::reads`]):
    /// [`ReadSet::detail`], then `wall clock`, `monotonic clock` and `random` when used.
    pub fn kept(&self) -> Vec<(String, String)> {
        let mut kept = self.detail();
        for (used, what) in
            [(self.wall_clock, "wall clock"), (self.monotonic_clock, "monotonic clock"), (self.random, "random")]
        {
            if used {
                kept.push((what.to_owned(), "read".to_owned()));
            }
        }
        kept
    }

    /// The read set as a key part's detail, which a record keeps: `file <path>`, `dir <path>`
    /// and `env <name>` labels, each with the digest a later lookup must find again.
    pub fn detail(&self) -> Vec<(String, String)> {
        let files = self
            .files
            .iter()
            .map(|(path, digest)| (format!("{FILE}{path}"), digest.clone().unwrap_or_else(|| UNREADABLE.to_owned())));
        let dirs = self.dirs.iter().map(|(path, names)| (format!("{DIR}{path}"), listing_digest(names)));
        let env = self.env.iter().map(|(name, digest)| (format!("{ENV}{name}"), digest.clone()));
        files.chain(dirs).chain(env).collect()
    }
}

const FILE: &str = "file ";
const DIR: &str = "dir ";
const ENV: &str = "env ";
/// The digest of a file that could not be read, in a read set's detail.
const UNREADABLE: &str = "unreadable";
/// What a folder that cannot be listed, or a variable no longer given, holds now.
const GONE: &str = "gone";

fn listing_digest(names: &[String]) -> String {
    let mut hasher = blake3::Hasher::new();
    for name in names {
        hasher.update(&(name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
    }
    hasher.finalize().to_hex().to_string()
}

fn text_digest(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

/// What the labels of a kept read set (a READS part's [`ReadSet::detail`]) hold now, for a
/// task of a component with `grants` whose granted environment is `env`: the same labels,
/// each with its digest as it is now (`unreadable`, or `gone` for a folder or variable).
pub fn current_detail(
    detail: &[(String, String)],
    grants: &[DirGrant],
    env: &[(String, String)],
    digests: &FileDigests,
) -> Vec<(String, String)> {
    detail
        .iter()
        .map(|(label, _)| {
            let now = if let Some(path) = label.strip_prefix(FILE) {
                host_path(grants, path).and_then(|host| digests.digest(&host)).unwrap_or_else(|| UNREADABLE.to_owned())
            } else if let Some(path) = label.strip_prefix(DIR) {
                let names = host_path(grants, path).and_then(|host| std::fs::read_dir(host).ok()).map(|entries| {
                    let mut names: Vec<String> =
                        entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
                    names.sort();
                    names
                });
                names.map_or_else(|| GONE.to_owned(), |names| listing_digest(&names))
            } else if let Some(name) = label.strip_prefix(ENV) {
                env.iter().find(|(n, _)| n == name).map_or_else(|| GONE.to_owned(), |(_, value)| text_digest(value))
            } else {
                GONE.to_owned()
            };
            (label.clone(), now)
        })
        .collect()
}

/// The first entry of a kept read set that `now` ([`current_detail`]) does not match, said
/// for people: `/data/input.csv changed`, `the listing of /data changed`.
pub fn first_change(kept: &[(String, String)], now: &[(String, String)]) -> Option<String> {
    kept.iter().zip(now).find(|(kept, now)| kept.1 != now.1).map(|((label, _), (_, now))| {
        if let Some(path) = label.strip_prefix(FILE) {
            if now == UNREADABLE {
                format!("{path} is gone or unreadable")
            } else {
                format!("{path} changed")
            }
        } else if let Some(path) = label.strip_prefix(DIR) {
            format!("the listing of {path} changed")
        } else if let Some(name) = label.strip_prefix(ENV) {
            format!("the environment variable {name} changed")
        } else {
            format!("{label} changed")
        }
    })
}

/// The key a record with this read set is also kept under, beside its own key: a lookup
/// whose read set no longer holds finds a record written when the files were as they are
/// now (an edited file restored hits again), by the key of the current read set.
pub fn variant_key(key: &str, detail: &[(String, String)]) -> String {
    let mut hasher = blake3::Hasher::new();
    for (label, digest) in detail {
        for text in [label, digest] {
            hasher.update(&(text.len() as u64).to_le_bytes());
            hasher.update(text.as_bytes());
        }
    }
    format!("{key}-reads-{}", &hasher.finalize().to_hex()[..16])
}

/// BLAKE3 digests of files, remembered by their stamp (device, inode, size, mtime, ctime),
/// so a file that has not changed is not hashed again: a lookup of a task that read a large
/// file costs a `stat`. A stamp is trusted only once it is [`SETTLE`] old, as a write within
/// one tick of the file system's clock could leave it unchanged.
#[derive(Default)]
pub struct FileDigests {
    known: std::sync::Mutex<HashMap<PathBuf, (FileStamp, String)>>,
}

impl FileDigests {
    /// The digest of the file at `path`, or `None` when it cannot be read.
    pub fn digest(&self, path: &std::path::Path) -> Option<String> {
        let stamp = std::fs::metadata(path).ok().and_then(|meta| FileStamp::of(&meta));
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(stamp), Some((known_stamp, digest))) = (&stamp, known.get(path)) {
            if stamp == known_stamp {
                return Some(digest.clone());
            }
        }
        drop(known);
        let digest = file_digest(path)?;
        if let Some(stamp) = stamp.filter(|s| s.settled(SETTLE)) {
            let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            known.insert(path.to_owned(), (stamp, digest.clone()));
        }
        Some(digest)
    }
}

/// `a`, `a and b`, `a, b and c`.
pub fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// What one Store's WASI calls showed, kept in its [`RunCtx`].
#[derive(Default)]
pub struct ReadLog {
    /// Guest paths of open descriptors: preopens by their mount, others by where they were opened.
    paths: HashMap<u32, String>,
    /// Directory entry streams: the folder each one lists.
    streams: HashMap<u32, String>,
    read: BTreeSet<String>,
    written: BTreeSet<String>,
    dirs: BTreeMap<String, BTreeSet<String>>,
    env: Option<Vec<(String, String)>>,
    sources: Arc<Sources>,
}

/// Set by the clocks and random sources of a Store's WASI context when the guest uses them.
#[derive(Default)]
pub struct Sources {
    wall_clock: AtomicBool,
    monotonic_clock: AtomicBool,
    random: AtomicBool,
}

impl ReadLog {
    /// Forgets what was read so far: what a component's runtime reads while it is
    /// instantiated (Python seeds its random module, JavaScript starts its timers) is no
    /// read of the task's.
    pub fn forget_instantiation(&mut self) {
        let paths = std::mem::take(&mut self.paths);
        *self = ReadLog { paths, sources: self.sources.clone(), ..ReadLog::default() };
        for flag in [&self.sources.wall_clock, &self.sources.monotonic_clock, &self.sources.random] {
            flag.store(false, Ordering::Relaxed);
        }
    }

    /// The sources a WASI context built for this log reports to.
    pub fn sources(&self) -> Arc<Sources> {
        self.sources.clone()
    }

    /// The read set so far: each file read is hashed now, found through `grants`.
    /// `digests` remembers files by stamp, so a lookup right after the run does not hash
    /// them again.
    pub fn read_set(&self, grants: &[DirGrant], digests: &FileDigests) -> ReadSet {
        let files = self
            .read
            .iter()
            .filter(|path| !self.written.contains(*path))
            .map(|path| (path.clone(), host_path(grants, path).and_then(|host| digests.digest(&host))))
            .collect();
        ReadSet {
            files,
            dirs: self.dirs.iter().map(|(dir, names)| (dir.clone(), names.iter().cloned().collect())).collect(),
            env: self.env.iter().flatten().map(|(name, value)| (name.clone(), text_digest(value))).collect(),
            wall_clock: self.sources.wall_clock.load(Ordering::Relaxed),
            monotonic_clock: self.sources.monotonic_clock.load(Ordering::Relaxed),
            random: self.sources.random.load(Ordering::Relaxed),
        }
    }
}

/// The host file behind the guest path `path`, through the grant whose mount holds it.
fn host_path(grants: &[DirGrant], path: &str) -> Option<PathBuf> {
    grants.iter().find_map(|grant| {
        let mount = normalize(&grant.guest);
        let rest = if mount.is_empty() { Some(path) } else { path.strip_prefix(&mount) }?;
        let rest = match rest.strip_prefix('/') {
            Some(rest) => rest,
            None if rest.is_empty() => rest,
            None if mount.is_empty() || mount == "/" => rest,
            None => return None,
        };
        Some(grant.host.join(rest))
    })
}

fn file_digest(path: &std::path::Path) -> Option<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::fs::File::open(path).ok()?).ok()?;
    Some(hasher.finalize().to_hex().to_string())
}

/// `path` joined to the folder `base`, with `.` and `..` segments resolved (wasmtime-wasi
/// has already refused any path that leaves its preopen).
fn join(base: &str, path: &str) -> String {
    if path.starts_with('/') {
        return normalize(path);
    }
    normalize(&format!("{base}/{path}"))
}

fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    let joined = parts.join("/");
    if path.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

/// A wall clock that marks its reads in `sources`.
pub struct ObservedWallClock {
    inner: wasmtime_wasi::clocks::WallClock,
    sources: Arc<Sources>,
}

impl ObservedWallClock {
    /// The system wall clock, reporting to `sources`.
    pub fn new(sources: Arc<Sources>) -> ObservedWallClock {
        ObservedWallClock { inner: wasmtime_wasi::clocks::WallClock, sources }
    }
}

impl HostWallClock for ObservedWallClock {
    fn resolution(&self) -> Duration {
        self.inner.resolution()
    }

    fn now(&self) -> Duration {
        self.sources.wall_clock.store(true, Ordering::Relaxed);
        self.inner.now()
    }
}

/// A monotonic clock that marks its reads in `sources`.
pub struct ObservedMonotonicClock {
    inner: wasmtime_wasi::clocks::MonotonicClock,
    sources: Arc<Sources>,
}

impl ObservedMonotonicClock {
    /// The system monotonic clock, reporting to `sources`.
    pub fn new(sources: Arc<Sources>) -> ObservedMonotonicClock {
        ObservedMonotonicClock { inner: wasmtime_wasi::clocks::MonotonicClock::default(), sources }
    }
}

impl HostMonotonicClock for ObservedMonotonicClock {
    fn resolution(&self) -> u64 {
        self.inner.resolution()
    }

    fn now(&self) -> u64 {
        self.sources.monotonic_clock.store(true, Ordering::Relaxed);
        self.inner.now()
    }
}

/// A random source that marks its use in `sources`.
pub struct ObservedRandom {
    inner: Box<dyn wasmtime_wasi::Rng + Send>,
    sources: Arc<Sources>,
}

impl ObservedRandom {
    /// wasmtime-wasi's own generator, reporting to `sources`.
    pub fn new(sources: Arc<Sources>) -> ObservedRandom {
        ObservedRandom { inner: wasmtime_wasi::thread_rng(), sources }
    }

    fn used(&self) {
        self.sources.random.store(true, Ordering::Relaxed);
    }
}

impl rand_core::TryRng for ObservedRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.used();
        Ok(self.inner.next_u32())
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.used();
        Ok(self.inner.next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.used();
        self.inner.fill_bytes(dst);
        Ok(())
    }
}

/// The WASI filesystem interface these definitions shadow (wasmtime-wasi's own version of it).
const FILESYSTEM_TYPES: &str = "wasi:filesystem/types@0.2.12";
const FILESYSTEM_PREOPENS: &str = "wasi:filesystem/preopens@0.2.12";
const CLI_ENVIRONMENT: &str = "wasi:cli/environment@0.2.12";

/// A Store's data that keeps a [`ReadLog`] beside its WASI context.
pub trait Observed: wasmtime_wasi::WasiView + 'static {
    /// The log the shadowed WASI calls record into.
    fn read_log(&mut self) -> &mut ReadLog;
}

/// Defines, over wasmtime-wasi's, the WASI calls that show what a guest reads: each records
/// into the Store's [`ReadLog`] and then makes wasmtime-wasi's call.
pub fn shadow_wasi<T: Observed>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut preopens_instance = linker.instance(FILESYSTEM_PREOPENS)?;
    preopens_instance.func_wrap("get-directories", |mut store: StoreContextMut<'_, T>, (): ()| {
        let data = store.data_mut();
        let dirs = preopens::Host::get_directories(&mut data.filesystem())?;
        for (dir, mount) in &dirs {
            data.read_log().paths.insert(dir.rep(), normalize(mount));
        }
        Ok((dirs,))
    })?;

    let mut types_instance = linker.instance(FILESYSTEM_TYPES)?;
    types_instance.func_wrap(
        "[method]descriptor.open-at",
        |mut store: StoreContextMut<'_, T>,
         (fd, path_flags, path, open_flags, flags): (
            Resource<types::Descriptor>,
            types::PathFlags,
            String,
            types::OpenFlags,
            types::DescriptorFlags,
        )| {
            let data = store.data_mut();
            let base = data.read_log().paths.get(&fd.rep()).cloned();
            let opened =
                types::HostDescriptor::open_at(&mut data.filesystem(), fd, path_flags, path.clone(), open_flags, flags);
            let opened = match opened {
                Ok(descriptor) => descriptor,
                Err(e) => return Ok((Err(types::Host::convert_error_code(&mut data.filesystem(), e)?),)),
            };
            if let Some(base) = base {
                let full = join(&base, &path);
                let writes = flags.contains(types::DescriptorFlags::WRITE)
                    || open_flags.intersects(types::OpenFlags::CREATE | types::OpenFlags::TRUNCATE);
                if writes {
                    data.read_log().written.insert(full.clone());
                } else if !open_flags.contains(types::OpenFlags::DIRECTORY) {
                    data.read_log().read.insert(full.clone());
                }
                data.read_log().paths.insert(opened.rep(), full);
            }
            Ok((Ok(opened),))
        },
    )?;
    types_instance.func_wrap(
        "[method]descriptor.read-directory",
        |mut store: StoreContextMut<'_, T>, (fd,): (Resource<types::Descriptor>,)| {
            let data = store.data_mut();
            let dir = data.read_log().paths.get(&fd.rep()).cloned();
            match types::HostDescriptor::read_directory(&mut data.filesystem(), fd) {
                Ok(stream) => {
                    if let Some(dir) = dir {
                        data.read_log().dirs.entry(dir.clone()).or_default();
                        data.read_log().streams.insert(stream.rep(), dir);
                    }
                    Ok((Ok(stream),))
                }
                Err(e) => Ok((Err(types::Host::convert_error_code(&mut data.filesystem(), e)?),)),
            }
        },
    )?;
    types_instance.func_wrap(
        "[method]directory-entry-stream.read-directory-entry",
        |mut store: StoreContextMut<'_, T>, (stream,): (Resource<types::DirectoryEntryStream>,)| {
            let data = store.data_mut();
            let dir = data.read_log().streams.get(&stream.rep()).cloned();
            match types::HostDirectoryEntryStream::read_directory_entry(&mut data.filesystem(), stream) {
                Ok(entry) => {
                    if let (Some(dir), Some(entry)) = (dir, &entry) {
                        data.read_log().dirs.entry(dir).or_default().insert(entry.name.clone());
                    }
                    Ok((Ok(entry),))
                }
                Err(e) => Ok((Err(types::Host::convert_error_code(&mut data.filesystem(), e)?),)),
            }
        },
    )?;

    let mut environment = linker.instance(CLI_ENVIRONMENT)?;
    environment.func_wrap("get-environment", |mut store: StoreContextMut<'_, T>, (): ()| {
        let data = store.data_mut();
        let vars = wasmtime_wasi::p2::bindings::sync::cli::environment::Host::get_environment(&mut data.cli())?;
        data.read_log().env = Some(vars.clone());
        Ok((vars,))
    })?;
    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_and_normalize_as_the_guest_sees_them() {
        assert_eq!(join("/data", "input.csv"), "/data/input.csv");
        assert_eq!(join("/data", "./sub/../input.csv"), "/data/input.csv");
        assert_eq!(join("/data/sub", "/other/x"), "/other/x");
        assert_eq!(join("data", "x"), "data/x");
        assert_eq!(normalize("/"), "/");
    }

    #[test]
    fn guest_paths_map_to_the_files_of_their_grant() {
        let grants = vec![
            DirGrant { host: "/srv/in".into(), guest: "/data".into(), mode: Default::default() },
            DirGrant { host: "/srv/root".into(), guest: "/".into(), mode: Default::default() },
        ];
        assert_eq!(host_path(&grants, "/data/a/b.csv"), Some(PathBuf::from("/srv/in/a/b.csv")));
        assert_eq!(host_path(&grants, "/database"), Some(PathBuf::from("/srv/root/database")));
        assert_eq!(host_path(&grants[..1], "/database"), None, "a mount is a folder, not a prefix");
    }
}
