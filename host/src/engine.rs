//! The wasmtime engine and the on-disk cache of compiled components (DESIGN §9).
//!
//! Nothing else in cachehost configures wasmtime. A component is read once, hashed
//! with BLAKE3 (its TASK_SOURCE digest), and compiled at most once per engine build:
//! the compiled artefact is kept under `<cache>/<digest>-<engine hash>.chc1` (`chc1`: the
//! entry format, so entries of another format are never read), written
//! atomically, followed by a trailer holding its BLAKE3 digest, and recompiled (with a
//! WARNING) when it is truncated, corrupt or fails to load: wasmtime itself checks only the
//! header of a compiled artefact, and corrupt machine code must never run.
//!
//! The engine always has epoch interruption on (a thread advances the epoch every
//! [`EPOCH_TICK`], so Stores can have wall-clock deadlines), and fuel metering only when a
//! fuel limit is configured, because metering slows every guest down.
//!
//! The digest of an unchanged file is remembered under `<cache>/digests/` ([`digests`]
//! gives the exact rule), so a warm start neither reads nor hashes the component; by the
//! same rule an entry whose trailer was checked once is mapped, unread, while its file is
//! unchanged.
//! Instances come from wasmtime's pooling allocator when the machine allows it (it reserves
//! terabytes of virtual address space up front), else from on-demand allocation.

mod digests;

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Instant;

use wasmtime::component::Component;

use crate::files::{self, Durability, STRAY_TEMP_AGE};
use crate::limits::{EPOCH_TICK, MAX_WASM_STACK};

/// Ends a compiled-cache entry: the BLAKE3 digest of the artefact before it, then this.
const TRAILER_MAGIC: &[u8; 8] = b"CHCWASM1";
const TRAILER_LEN: usize = 32 + TRAILER_MAGIC.len();

/// Components larger than this (4 MiB) log their compile, and their load from the
/// compiled cache, as progress lines: compiling one takes seconds.
const LARGE: u64 = 4 * 1024 * 1024;

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The path is a directory.
    #[error("{path} is a directory, not a component file")]
    IsDirectory {
        /// The path given.
        path: PathBuf,
    },
    /// The file is empty.
    #[error("{path} is empty, not a WebAssembly component")]
    Empty {
        /// The file given.
        path: PathBuf,
    },
    /// The file is a core WebAssembly module, not a component.
    #[error(
        "{path} is a core WebAssembly module, not a component; build it for wasm32-wasip2 or wrap it with \
        `wasm-tools component new`"
    )]
    CoreModule {
        /// The file given.
        path: PathBuf,
    },
    /// The file is not WebAssembly at all.
    #[error("{path} is not a WebAssembly component (it does not start with the `\\0asm` header)")]
    NotWasm {
        /// The file given.
        path: PathBuf,
    },
    /// wasmtime refused to compile the component.
    #[error("cannot compile {path}: {message}")]
    Compile {
        /// The file given.
        path: PathBuf,
        /// wasmtime's explanation.
        message: String,
    },
}

/// The process-wide wasmtime engine plus the compiled-component cache folder.
pub struct Engine {
    engine: wasmtime::Engine,
    compiled_dir: Option<PathBuf>,
    engine_hash: String,
    fuel: bool,
    allocator: Allocator,
    digests: Option<digests::DigestCache>,
}

/// How the engine allocates instances, memories and tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocator {
    /// Pre-reserved pools: a new instance costs a slot, not a set of mmap calls.
    Pooling,
    /// wasmtime's default: every instance maps its own memories and tables.
    OnDemand,
}

/// How the engine is configured beyond cachehost's fixed choices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineOptions {
    /// Meter fuel (needed when any task has a fuel limit).
    pub fuel: bool,
}

/// A component's bytes, read and compiled, with its identity.
pub struct LoadedBytes {
    /// The file it was read from.
    pub path: PathBuf,
    /// BLAKE3 of the component's bytes: the TASK_SOURCE digest.
    pub digest: blake3::Hash,
    /// Size of the component in bytes.
    pub size: u64,
    /// The compiled component.
    pub component: Component,
    /// Whether it came from the compiled cache rather than a fresh compile.
    pub from_cache: bool,
}

impl Engine {
    /// Creates the engine; compiled components are cached under `compiled_dir` when given.
    ///
    /// Uses the pooling allocator, or on-demand allocation when the pools cannot be
    /// reserved (e.g. under a limit on virtual memory). Stray temporary files a killed
    /// process left in `compiled_dir` are removed here.
    pub fn new(compiled_dir: Option<PathBuf>, options: EngineOptions) -> anyhow::Result<Engine> {
        Engine::with_pool(compiled_dir, options, Some(pooling_config()))
    }

    /// Creates the engine with `pool` as the pooling configuration, or with on-demand
    /// allocation when `pool` is `None` or cannot be created.
    pub fn with_pool(
        compiled_dir: Option<PathBuf>,
        options: EngineOptions,
        pool: Option<wasmtime::PoolingAllocationConfig>,
    ) -> anyhow::Result<Engine> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.consume_fuel(options.fuel);
        config.max_wasm_stack(MAX_WASM_STACK);
        let pooled = pool.and_then(|pool| {
            config.allocation_strategy(pool);
            wasmtime::Engine::new(&config).ok()
        });
        let (engine, allocator) = match pooled {
            Some(engine) => (engine, Allocator::Pooling),
            None => {
                config.allocation_strategy(wasmtime::InstanceAllocationStrategy::OnDemand);
                let engine = wasmtime::Engine::new(&config)
                    .map_err(|e| anyhow::anyhow!("cannot create the wasmtime engine: {e:#}"))?;
                (engine, Allocator::OnDemand)
            }
        };
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_hash = format!("{:016x}", hasher.finish());
        start_epoch_ticker(&engine);
        if let Some(dir) = &compiled_dir {
            files::clean_stray_temp_files(dir, STRAY_TEMP_AGE);
        }
        let digests = compiled_dir.as_ref().map(|dir| digests::DigestCache::new(dir.join("digests")));
        Ok(Engine { engine, compiled_dir, engine_hash, fuel: options.fuel, allocator, digests })
    }

    /// How this engine allocates instances.
    pub fn allocator(&self) -> Allocator {
        self.allocator
    }

    /// Whether Stores of this engine meter fuel (each must then be given fuel to run).
    pub fn fuel_metered(&self) -> bool {
        self.fuel
    }

    /// The wasmtime engine itself.
    pub fn wasmtime(&self) -> &wasmtime::Engine {
        &self.engine
    }

    /// Reads, checks, hashes and compiles (or loads from the cache) the component at `path`.
    ///
    /// `progress` is called with a level and a human sentence: before a compile that may take
    /// a while and when a large component is loaded from the compiled cache instead (INFO),
    /// and when a compiled-cache entry is unusable and recompiled (WARNING).
    pub fn load(&self, path: &Path, progress: &dyn Fn(crate::log::Level, &str)) -> Result<LoadedBytes, LoadError> {
        use crate::log::Level;
        if path.is_dir() {
            return Err(LoadError::IsDirectory { path: path.to_owned() });
        }
        // A remembered digest means the file was a component that compiled; with its compiled
        // artefact still there and intact, the component's bytes are not needed at all.
        if let Some((digest, size)) = self.digests.as_ref().and_then(|d| d.known(path)) {
            if let Some(Ok(Some(component))) = self.cached_path(&digest).map(|c| self.load_cached(&c, &digest)) {
                if size > LARGE {
                    progress(
                        Level::Info,
                        &format!("Loaded {} ({:.1} MB) from the compiled cache", path.display(), size as f64 / 1e6),
                    );
                }
                return Ok(LoadedBytes { path: path.to_owned(), digest, size, component, from_cache: true });
            }
        }
        let before = std::fs::metadata(path).ok();
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read { path: path.to_owned(), source })?;
        check_component_header(path, &bytes)?;
        let digest = blake3::hash(&bytes);
        let size = bytes.len() as u64;
        if let (Some(cache), Some(before)) = (&self.digests, &before) {
            cache.remember(path, before, &digest);
        }
        let cached = self.cached_path(&digest);
        if let Some(cached) = &cached {
            match self.load_cached(cached, &digest) {
                Ok(Some(component)) => {
                    if size > LARGE {
                        progress(
                            Level::Info,
                            &format!("Loaded {} ({:.1} MB) from the compiled cache", path.display(), size as f64 / 1e6),
                        );
                    }
                    return Ok(LoadedBytes { path: path.to_owned(), digest, size, component, from_cache: true });
                }
                Ok(None) => {}
                Err(reason) => {
                    progress(
                        Level::Warning,
                        &format!(
                            "The compiled cache entry {} is unusable ({reason}); recompiling {}",
                            cached.display(),
                            path.display()
                        ),
                    );
                    let _ = std::fs::remove_file(cached);
                }
            }
        }
        if size > LARGE {
            progress(
                Level::Info,
                &format!(
                    "Compiling {} ({:.1} MB) for the first time; later starts load it from the compiled cache",
                    path.display(),
                    size as f64 / 1e6
                ),
            );
        }
        let started = Instant::now();
        let spinner = crate::progress::Progress::spinner(&format!("Compiling {}", path.display()));
        let compile_error =
            |e: wasmtime::Error| LoadError::Compile { path: path.to_owned(), message: format!("{e:#}") };
        let component = match &cached {
            Some(cached) => {
                let serialized = self.engine.precompile_component(&bytes).map_err(compile_error)?;
                let mut entry = serialized.clone();
                entry.extend_from_slice(blake3::keyed_hash(digest.as_bytes(), &serialized).as_bytes());
                entry.extend_from_slice(TRAILER_MAGIC);
                // A failure to write the cache only costs the next start a compile. Not synced:
                // an entry torn by a crash fails its trailer check and is compiled again.
                let _ = files::write_atomically(cached, &entry, Durability::Lazy);
                // SAFETY: these bytes were produced by this engine a moment ago.
                unsafe { Component::deserialize(&self.engine, &serialized) }.map_err(compile_error)?
            }
            None => Component::new(&self.engine, &bytes).map_err(compile_error)?,
        };
        // Cleared before the next log line, which would otherwise be drawn over.
        drop(spinner);
        if size > LARGE {
            progress(Level::Info, &format!("Compiled {} in {:.1} s", path.display(), started.elapsed().as_secs_f64()));
        }
        Ok(LoadedBytes { path: path.to_owned(), digest, size, component, from_cache: false })
    }

    /// The compiled component in the cache entry `cached`: none when there is no entry, an
    /// error saying why when the entry is unusable.
    fn load_cached(&self, cached: &Path, component: &blake3::Hash) -> Result<Option<Component>, String> {
        // An entry checked whole before, for this component, whose file is unchanged since
        // (the trust rule of remembered digests, `digests`), is mapped as it is: reading and
        // hashing a 35 MB entry at every start would cost more than the rest of the start.
        let checked_before = self.digests.as_ref().and_then(|d| d.known(cached));
        if checked_before.is_some_and(|(checked_for, _)| checked_for == *component) {
            // SAFETY: the file is byte for byte the entry whose trailer matched when it was
            // remembered (its stamp is unchanged), written by this cachehost for an engine with
            // the same compatibility hash; `deserialize_file` checks that hash again.
            if let Ok(loaded) = unsafe { Component::deserialize_file(&self.engine, cached) } {
                return Ok(Some(loaded));
            }
        }
        let before = match std::fs::metadata(cached) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read it: {e}")),
        };
        let entry = match std::fs::read(cached) {
            Ok(entry) => entry,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read it: {e}")),
        };
        let artefact = check_trailer(&entry, component)?;
        // SAFETY: the artefact's digest, keyed by the component's digest, matches the one
        // written after it, so these are the exact bytes `Engine::precompile_component`
        // produced for this component and an engine with the same compatibility hash (it is
        // in the file name); `deserialize` checks that hash again.
        let loaded = unsafe { Component::deserialize(&self.engine, artefact) }
            .map_err(|e| format!("wasmtime refused it: {e:#}"))?;
        if let Some(digests) = &self.digests {
            digests.remember(cached, &before, component);
        }
        Ok(Some(loaded))
    }

    fn cached_path(&self, digest: &blake3::Hash) -> Option<PathBuf> {
        self.compiled_dir.as_ref().map(|dir| dir.join(format!("{}-{}.chc1", digest.to_hex(), self.engine_hash)))
    }
}

/// The pools the engine reserves: wasmtime's defaults (1,000 instances, memories and
/// tables; memories of up to 4 GiB, so no guest loses memory it had on demand) with room
/// for the largest guests known (a componentize-py component has tables of up to 100,000
/// elements) and modules with a few tables or memories. Guests run synchronously, so the
/// pool of async stacks is kept tiny: reserving wasmtime's default 1,000 stacks of 2 MiB
/// costs every process start 1,000 mprotect calls (about 5 ms here).
///
/// A slot keeps the first [`KEEP_RESIDENT`] bytes of its memory and tables resident when its
/// instance ends and resets them with `memset`, instead of handing the pages back with
/// `madvise` and faulting them in again on the next task run.
fn pooling_config() -> wasmtime::PoolingAllocationConfig {
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.table_elements(100_000).max_tables_per_module(8).max_memories_per_module(4).total_stacks(4);
    pool.linear_memory_keep_resident(KEEP_RESIDENT).table_keep_resident(KEEP_RESIDENT);
    pool
}

/// How much of each pooled memory and table stays resident between instances: measured on
/// 10,000 misses, 64 KiB beat both nothing and 2 MiB (whose `memset` costs more than the
/// page faults it saves).
const KEEP_RESIDENT: usize = 64 << 10;

/// Refuses files that are not WebAssembly components, with a sentence saying what they are.
fn check_component_header(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::Empty { path: path.to_owned() });
    }
    if bytes.len() < 8 || &bytes[0..4] != b"\0asm" {
        return Err(LoadError::NotWasm { path: path.to_owned() });
    }
    // Bytes 4..8 are the version and layer: 1 0 0 0 for a core module, a layer of 1 for a
    // component.
    if bytes[6..8] == [0, 0] {
        return Err(LoadError::CoreModule { path: path.to_owned() });
    }
    Ok(())
}

/// The artefact of a compiled-cache entry, if its trailer is present and its digest, keyed by
/// the component's digest (so another component's entry put in its place is refused), matches.
fn check_trailer<'a>(entry: &'a [u8], component: &blake3::Hash) -> Result<&'a [u8], String> {
    if entry.len() < TRAILER_LEN || !entry.ends_with(TRAILER_MAGIC) {
        return Err("it is truncated or not a cachehost compiled-cache entry".to_owned());
    }
    let (artefact, trailer) = entry.split_at(entry.len() - TRAILER_LEN);
    if blake3::keyed_hash(component.as_bytes(), artefact).as_bytes() != &trailer[..32] {
        return Err(
            "its contents do not match their digest (the file is corrupt or belongs to another component)".to_owned()
        );
    }
    Ok(artefact)
}

/// Advances `engine`'s epoch every [`EPOCH_TICK`] until the engine is dropped.
fn start_epoch_ticker(engine: &wasmtime::Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new().name("cachehost-epoch".into()).spawn(move || loop {
        std::thread::sleep(EPOCH_TICK);
        match weak.upgrade() {
            Some(engine) => engine.increment_epoch(),
            None => return,
        }
    });
    // Without the thread, timeouts never fire; everything else works.
    drop(spawned);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest valid component: the header alone.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

    /// An engine with its compiled cache in `dir`, whose digest cache trusts a file as soon as
    /// it is written (not after 2 s), and the smallest component written into `dir`.
    fn engine_trusting_at_once(dir: &Path) -> (Engine, PathBuf) {
        let path = dir.join("empty.wasm");
        std::fs::write(&path, EMPTY_COMPONENT).unwrap();
        let mut engine = Engine::new(Some(dir.join("compiled")), EngineOptions::default()).unwrap();
        engine.digests =
            Some(digests::DigestCache::settled_after(dir.join("compiled/digests"), std::time::Duration::ZERO));
        (engine, path)
    }

    #[test]
    fn a_pool_that_cannot_be_reserved_falls_back_to_on_demand() {
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        // 16 million 4 GiB memories: more address space than any machine has.
        pool.total_memories(1 << 24);
        let engine = Engine::with_pool(None, EngineOptions::default(), Some(pool)).unwrap();
        assert_eq!(engine.allocator(), Allocator::OnDemand);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.wasm");
        std::fs::write(&path, EMPTY_COMPONENT).unwrap();
        engine.load(&path, &|_, _| {}).unwrap();
    }

    #[test]
    fn a_checked_entry_is_mapped_until_its_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, path) = engine_trusting_at_once(dir.path());
        let digest = blake3::hash(EMPTY_COMPONENT);
        let entry = engine.cached_path(&digest).unwrap();
        assert!(!engine.load(&path, &|_, _| {}).unwrap().from_cache);
        assert!(engine.load(&path, &|_, _| {}).unwrap().from_cache);
        let known = engine.digests.as_ref().unwrap().known(&entry);
        assert_eq!(known.map(|(d, _)| d), Some(digest), "the whole check is remembered");

        // A later write moves the entry's stamp (past the file system's clock tick), so the
        // entry is checked whole again and its corruption found.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut bytes = std::fs::read(&entry).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        std::fs::write(&entry, &bytes).unwrap();
        let warnings = std::cell::RefCell::new(Vec::new());
        let loaded = engine.load(&path, &|level, line| {
            if level == crate::log::Level::Warning {
                warnings.borrow_mut().push(line.to_owned());
            }
        });
        assert!(!loaded.unwrap().from_cache, "recompiled");
        assert!(warnings.borrow().iter().any(|w| w.contains("do not match their digest")), "{:?}", warnings.borrow());
    }

    #[test]
    fn a_warm_load_uses_the_remembered_digest_without_hashing_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, path) = engine_trusting_at_once(dir.path());
        let first = engine.load(&path, &|_, _| {}).unwrap();
        assert!(!first.from_cache);
        assert_eq!(first.digest, blake3::hash(EMPTY_COMPONENT));
        // Make the remembered digest a forged one with its own compiled artefact: a load that
        // hashed the file would find the true digest instead.
        let forged = blake3::hash(b"forged");
        let cache = engine.digests.as_ref().unwrap();
        cache.forge(&path, &forged);
        let entry = std::fs::read(engine.cached_path(&first.digest).unwrap()).unwrap();
        let artefact = &entry[..entry.len() - TRAILER_LEN];
        let mut forged_entry = artefact.to_vec();
        forged_entry.extend_from_slice(blake3::keyed_hash(forged.as_bytes(), artefact).as_bytes());
        forged_entry.extend_from_slice(TRAILER_MAGIC);
        std::fs::write(engine.cached_path(&forged).unwrap(), forged_entry).unwrap();
        let second = engine.load(&path, &|_, _| {}).unwrap();
        assert!(second.from_cache);
        assert_eq!((second.digest, second.size), (forged, EMPTY_COMPONENT.len() as u64));
    }
}
