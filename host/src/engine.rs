//! The wasmtime engine and the on-disk cache of compiled components (DESIGN §9).
//!
//! Nothing else in cachehost configures wasmtime. A component is read once, hashed
//! with BLAKE3 (its TASK_SOURCE digest), and compiled at most once per engine build:
//! the compiled artefact is kept under `<cache>/<digest>-<engine hash>.cwasm`, written
//! atomically, and recompiled when it fails to load.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use wasmtime::component::Component;

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
    pub fn new(compiled_dir: Option<PathBuf>) -> anyhow::Result<Engine> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        let engine = wasmtime::Engine::new(&config)
            .map_err(|e| anyhow::anyhow!("cannot create the wasmtime engine: {e:#}"))?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_hash = format!("{:016x}", hasher.finish());
        Ok(Engine { engine, compiled_dir, engine_hash })
    }

    /// The wasmtime engine itself.
    pub fn wasmtime(&self) -> &wasmtime::Engine {
        &self.engine
    }

    /// Reads, checks, hashes and compiles (or loads from the cache) the component at `path`.
    ///
    /// `progress` is called with a human sentence before a compile that may take a while,
    /// and when such a component is loaded from the compiled cache instead.
    pub fn load(&self, path: &Path, progress: &dyn Fn(&str)) -> Result<LoadedBytes, LoadError> {
        if path.is_dir() {
            return Err(LoadError::IsDirectory { path: path.to_owned() });
        }
        let bytes = std::fs::read(path)
            .map_err(|source| LoadError::Read { path: path.to_owned(), source })?;
        check_component_header(path, &bytes)?;
        let digest = blake3::hash(&bytes);
        let size = bytes.len() as u64;
        let cached = self.cached_path(&digest);
        if let Some(cached) = &cached {
            if cached.exists() {
                // SAFETY: the file was written by `Engine::precompile_component` of an engine
                // with the same compatibility hash (it is in the name), into a folder only
                // cachehost writes, and atomically (temp file + rename). A file that fails the
                // header checks of `deserialize_file` is recompiled below.
                match unsafe { Component::deserialize_file(&self.engine, cached) } {
                    Ok(component) => {
                        if size > LARGE {
                            progress(&format!("Loaded {} ({:.1} MB) from the compiled cache", path.display(), size as f64 / 1e6));
                        }
                        return Ok(LoadedBytes { path: path.to_owned(), digest, size, component, from_cache: true });
                    }
                    Err(_) => {
                        let _ = std::fs::remove_file(cached);
                    }
                }
            }
        }
        if size > LARGE {
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
        if size > LARGE {
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
