//! Read sets (issue 16): a cache hit of a task keyed on READS, whose record names a 100 MiB
//! file it read, against a hit of the same task under INPUTS alone: 10,000 hits inside one
//! flow run, per call. A READS hit checks the file's stamp (one `stat`; the file is hashed
//! again only when its stamp moved), so the goal is at most 2x a plain hit.
//! `CACHEHOST_BENCH_READ_FILE_MIB` sets the file's size (default 100).

mod common;

use std::time::{Duration, Instant};

use cachehost::value::Value;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};

const CALLS: u32 = 10_000;

fn read_file(n: u32) -> Vec<Value> {
    vec![Value::String("/data/big.bin".into()), Value::U32(n)]
}

fn hits_of_a_task_that_read_a_large_file(c: &mut Criterion) {
    let bench = common::example("bench");
    let mib: usize = std::env::var("CACHEHOST_BENCH_READ_FILE_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let mut group = c.benchmark_group("reads_hit");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    for (label, policy) in
        [("inputs_per_call_of_10000", "INPUTS"), ("inputs_reads_per_call_of_10000", "INPUTS + READS")]
    {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("data")).unwrap();
        std::fs::write(home.path().join("data/big.bin"), vec![7u8; mib << 20]).unwrap();
        let config = format!(
            "[components.bench]\ndirs = [{{ host = \"data\", guest = \"/data\" }}]\n[tasks.file-size]\ncache_policy = \
             \"{policy}\"\n"
        );
        let session = common::session(home.path(), &bench, Some(&config), 16);
        common::run_flow(&session, "read-file", read_file(1));
        // Settled, as any record (and file) of an earlier run is: the store serves the record
        // it decoded after one stat, and READS trusts the file's stamp.
        std::thread::sleep(cachehost::stamp::SETTLE + Duration::from_millis(100));
        common::run_flow(&session, "read-file", read_file(1));
        assert_eq!(common::task_instances(&session), 1, "one miss, then hits");
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    common::run_flow(&session, "read-file", read_file(CALLS));
                    let with = started.elapsed();
                    let started = Instant::now();
                    common::run_flow(&session, "read-file", read_file(0));
                    total += with.saturating_sub(started.elapsed()) / CALLS;
                }
                total
            })
        });
        assert_eq!(common::task_instances(&session), 1, "every call after the first was a hit");
    }
    group.finish();
}

criterion_group!(benches, hits_of_a_task_that_read_a_large_file);
criterion_main!(benches);
