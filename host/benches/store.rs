//! Hit latency of the local result store with 1,000 and with 1,000,000 records (one file
//! per key in one folder, as Prefect keeps them): `ResultStore::lookup` of a present key,
//! which reads the record once, checks it and decodes its value.
//!
//! Building a million records takes a minute or two and 4 GB of disk (a 4 KiB block per
//! record), so the stores are built once into the kept benchmark folder
//! (`<target dir>/cachehost-bench/store-<n>`, or `$CACHEHOST_BENCH_DIR`) and reused by later
//! runs; delete the folder to rebuild them.

mod common;

use std::path::PathBuf;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

use cachehost::store::{LocalStore, Lookup, ResultStore};
use cachehost::value::Ty;

/// The kept store of `n` unexpiring records, built on first use.
fn kept_store(n: u64) -> PathBuf {
    let dir = common::kept_dir().join(format!("store-{n}"));
    let done = dir.join("complete");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let started = Instant::now();
        common::build(&dir.join("records"), n, None);
        std::fs::write(&done, b"").unwrap();
        eprintln!("built {n} records in {:.1} s", started.elapsed().as_secs_f64());
    }
    dir.join("records")
}

fn lookup_by_store_size(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_hit");
    // `CACHEHOST_BENCH_STORE_RECORDS` sets the large store's size (default a million).
    let large = std::env::var("CACHEHOST_BENCH_STORE_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    for n in [1_000u64, large] {
        let store = LocalStore::open(&kept_store(n)).unwrap();
        // 10,000 keys spread over the whole store, looked up in turn.
        let keys: Vec<String> = (0..10_000u64).map(|i| common::key(i * 7919 % n)).collect();
        let mut next = 0;
        group.bench_function(BenchmarkId::new("records", n), |b| {
            b.iter(|| {
                next = (next + 1) % keys.len();
                match store.lookup(&keys[next], &Ty::S64, 0) {
                    Lookup::Hit(record) => record,
                    other => panic!("expected a hit, got {other:?}"),
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, lookup_by_store_size);
criterion_main!(benches);
