//! Writes the WASI preview1 reactor adapter of wasmtime 48.0.8 to the path given.

fn main() {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: write-adapter OUTPUT.wasm");
        std::process::exit(2);
    };
    let bytes = wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;
    if let Err(e) = std::fs::write(&path, bytes) {
        eprintln!("cannot write {}: {e}", std::path::Path::new(&path).display());
        std::process::exit(1);
    }
}
