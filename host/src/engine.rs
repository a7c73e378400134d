//! The wasmtime engine and the on-disk cache of compiled components (DESIGN §9).
//!
//! Nothing else in cachehost configures wasmtime. A component is read once, hashed
//! with BLAKE3 (its TASK_SOURCE digest), and compiled at most once per engine build:
//! the compiled artefact is kept under `<cache>/<digest>-<engine hash>.cwasm`, written
//! atomically, and recompiled when it fails to load. The digest of an unchanged file is
//! remembered under `<cache>/digests/` ([`digests`] gives the exact rule), so a warm start
//! neither reads nor hashes the component.
//!
//! Instances come from wasmtime's pooling allocator when the machine allows it (it reserves
//! terabytes of virtual address space up front), else from on-demand allocation.

mod digests;

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use wasmtime::component::Component;

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
    #[error("{path} is a core WebAssembly module, not a component; build it for wasm32-wasip2 or wrap it with `wasm-tools component new`")]
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
    /// reserved (e.g. under a limit on virtual memory).
    pub fn new(compiled_dir: Option<PathBuf>) -> anyhow::Result<Engine> {
        Engine::with_pool(compiled_dir, Some(pooling_config()))
    }

    /// Creates the engine with `pool` as the pooling configuration, or with on-demand
    /// allocation when `pool` is `None` or cannot be created.
    pub fn with_pool(compiled_dir: Option<PathBuf>, pool: Option<wasmtime::PoolingAllocationConfig>) -> anyhow::Result<Engine> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
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
        let digests = compiled_dir.as_ref().map(|dir| digests::DigestCache::new(dir.join("digests")));
        Ok(Engine { engine, compiled_dir, engine_hash, allocator, digests })
    }

    /// How this engine allocates instances.
    pub fn allocator(&self) -> Allocator {
        self.allocator
    }

    /// The wasmtime engine itself.
    pub fn wasmtime(&self) -> &wasmtime::Engine {
        &self.engine
    }

    /// Reads, checks, hashes and compiles (or loads from the cache) the component at `path`.
    ///
    /// `progress` is called with a human sentence before a compile that may take a while.
    pub fn load(&self, path: &Path, progress: &dyn Fn(&str)) -> Result<LoadedBytes, LoadError> {
        if path.is_dir() {
            return Err(LoadError::IsDirectory { path: path.to_owned() });
        }
        // A remembered digest means the file was a component that compiled; with its compiled
        // artefact still there, the component's bytes are not needed at all.
        if let Some((digest, size)) = self.digests.as_ref().and_then(|d| d.known(path)) {
            if let Some(cached) = self.cached_path(&digest).filter(|c| c.exists()) {
                // SAFETY: as below.
                if let Ok(component) = unsafe { Component::deserialize_file(&self.engine, &cached) } {
                    return Ok(LoadedBytes { path: path.to_owned(), digest, size, component, from_cache: true });
                }
            }
        }
        let before = std::fs::metadata(path).ok();
        let bytes = std::fs::read(path)
            .map_err(|source| LoadError::Read { path: path.to_owned(), source })?;
        check_component_header(path, &bytes)?;
        let digest = blake3::hash(&bytes);
        let size = bytes.len() as u64;
        if let (Some(cache), Some(before)) = (&self.digests, &before) {
            cache.remember(path, before, &digest);
        }
        let cached = self.cached_path(&digest);
        if let Some(cached) = &cached {
            if cached.exists() {
                // SAFETY: the file was written by `Engine::precompile_component` of an engine
                // with the same compatibility hash (it is in the name), into a folder only
                // cachehost writes, and atomically (temp file + rename). A file that fails the
                // header checks of `deserialize_file` is recompiled below.
                match unsafe { Component::deserialize_file(&self.engine, cached) } {
                    Ok(component) => {
                        return Ok(LoadedBytes { path: path.to_owned(), digest, size, component, from_cache: true });
                    }
                    Err(_) => {
                        let _ = std::fs::remove_file(cached);
                    }
                }
            }
        }
        if size > 4 * 1024 * 1024 {
            progress(&format!(
                "Compiling {} ({:.1} MB) for the first time; later starts load it from the compiled cache",
                path.display(),
                size as f64 / 1e6
            ));
        }
        let started = Instant::now();
        let compile_error = |e: wasmtime::Error| LoadError::Compile { path: path.to_owned(), message: format!("{e:#}") };
        let component = match &cached {
            Some(cached) => {
                let serialized = self.engine.precompile_component(&bytes).map_err(compile_error)?;
                // A failure to write the cache only costs the next start a compile.
                let _ = write_atomically(cached, &serialized);
                // SAFETY: these bytes were produced by this engine a moment ago.
                unsafe { Component::deserialize(&self.engine, &serialized) }.map_err(compile_error)?
            }
            None => Component::new(&self.engine, &bytes).map_err(compile_error)?,
        };
        if size > 4 * 1024 * 1024 {
            progress(&format!("Compiled {} in {:.1} s", path.display(), started.elapsed().as_secs_f64()));
        }
        Ok(LoadedBytes { path: path.to_owned(), digest, size, component, from_cache: false })
    }

    fn cached_path(&self, digest: &blake3::Hash) -> Option<PathBuf> {
        self.compiled_dir
            .as_ref()
            .map(|dir| dir.join(format!("{}-{}.cwasm", digest.to_hex(), self.engine_hash)))
    }
}

/// The pools the engine reserves: wasmtime's defaults (1,000 instances, memories and
/// tables; memories of up to 4 GiB, so no guest loses memory it had on demand) with room
/// for the largest guests known (a componentize-py component has tables of up to 100,000
/// elements) and modules with a few tables or memories. Guests run synchronously, so the
/// pool of async stacks is kept tiny: reserving wasmtime's default 1,000 stacks of 2 MiB
/// costs every process start 1,000 mprotect calls (about 5 ms here).
fn pooling_config() -> wasmtime::PoolingAllocationConfig {
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.table_elements(100_000).max_tables_per_module(8).max_memories_per_module(4).total_stacks(4);
    pool
}

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

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// reader never sees a partial file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest valid component: the header alone.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

    #[test]
    fn a_pool_that_cannot_be_reserved_falls_back_to_on_demand() {
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        // 16 million 4 GiB memories: more address space than any machine has.
        pool.total_memories(1 << 24);
        let engine = Engine::with_pool(None, Some(pool)).unwrap();
        assert_eq!(engine.allocator(), Allocator::OnDemand);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.wasm");
        std::fs::write(&path, EMPTY_COMPONENT).unwrap();
        engine.load(&path, &|_| {}).unwrap();
    }

    #[test]
    fn a_warm_load_uses_the_remembered_digest_without_hashing_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.wasm");
        std::fs::write(&path, EMPTY_COMPONENT).unwrap();
        let mut engine = Engine::new(Some(dir.path().join("compiled"))).unwrap();
        engine.digests = Some(digests::DigestCache::settled_after(
            dir.path().join("compiled/digests"),
            std::time::Duration::ZERO,
        ));
        let first = engine.load(&path, &|_| {}).unwrap();
        assert!(!first.from_cache);
        assert_eq!(first.digest, blake3::hash(EMPTY_COMPONENT));
        // Make the remembered digest a forged one with its own compiled artefact: a load that
        // hashed the file would find the true digest instead.
        let forged = blake3::hash(b"forged");
        let cache = engine.digests.as_ref().unwrap();
        cache.forge(&path, &forged);
        std::fs::copy(
            engine.cached_path(&first.digest).unwrap(),
            engine.cached_path(&forged).unwrap(),
        )
        .unwrap();
        let second = engine.load(&path, &|_| {}).unwrap();
        assert!(second.from_cache);
        assert_eq!(
            (second.digest, second.size),
            (forged, EMPTY_COMPONENT.len() as u64)
        );
    }
}
