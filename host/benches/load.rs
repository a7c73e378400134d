//! Loading a large component on a warm start (its compiled artefact cached): with its digest
//! remembered, and with the digest forgotten before every load, which reads and hashes the
//! whole file as every start did before digests were remembered.
//!
//! The component is the bench example with a 20 MB custom section appended (the size of a
//! componentize-py component; custom sections do not change what is compiled), written once
//! into the kept benchmark folder.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

use cachehost::engine::{Engine, EngineOptions};

const PADDING: usize = 20 << 20;

/// The bench example plus a custom section of PADDING bytes, older than the digest cache's
/// settling time.
fn big_component() -> PathBuf {
    let path = common::kept_dir().join("bench-20MB.wasm");
    if !path.exists() {
        let mut bytes = std::fs::read(common::example("bench")).unwrap();
        let name = b"padding";
        let mut payload = vec![name.len() as u8];
        payload.extend_from_slice(name);
        payload.extend((0..PADDING).map(|i| (i * 131 % 251) as u8));
        bytes.push(0); // custom section
        let mut len = payload.len();
        loop {
            let byte = (len & 0x7f) as u8;
            len >>= 7;
            bytes.push(if len == 0 { byte } else { byte | 0x80 });
            if len == 0 {
                break;
            }
        }
        bytes.extend_from_slice(&payload);
        std::fs::write(&path, bytes).unwrap();
        std::thread::sleep(Duration::from_millis(2_100));
    }
    path
}

fn load_large_component(c: &mut Criterion) {
    let path = big_component();
    let compiled = common::kept_dir().join("compiled");
    let engine = Engine::new(Some(compiled.clone()), EngineOptions::default()).unwrap();
    engine.load(&path, &|_, _| {}).unwrap();
    let mut group = c.benchmark_group("warm_load_20MB");
    group.bench_function(BenchmarkId::from_parameter("digest_remembered"), |b| {
        b.iter(|| {
            let loaded = engine.load(&path, &|_, _| {}).unwrap();
            assert!(loaded.from_cache);
        })
    });
    group.bench_function(BenchmarkId::from_parameter("read_and_hash"), |b| {
        b.iter_batched(
            || {
                let _ = std::fs::remove_dir_all(compiled.join("digests"));
            },
            |()| engine.load(&path, &|_, _| {}).unwrap(),
            criterion::BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, load_large_component);
criterion_main!(benches);
