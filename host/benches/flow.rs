//! Task calls inside flow runs, in process (the figures of issue 7 that criterion measures):
//! the overhead of a cache hit (flow -> host -> lookup -> flow), a miss with a trivial body
//! and a persisted record (and the file system's floor for writing that record), flow runs
//! of 10 to 100,000 calls (how latency grows with the size of a value: `benches/values.rs`).
//! Per-call figures are reported as the time of one "iteration". Log lines are formatted and
//! written to /dev/null, as a run with stderr redirected does.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use cachehost::engine::{Allocator, Engine, EngineOptions};
use criterion::{criterion_group, BenchmarkId, Criterion, SamplingMode};

fn timed(f: impl FnOnce()) -> Duration {
    let started = Instant::now();
    f();
    started.elapsed()
}

/// One cache hit inside a flow run: a flow run of 10,000 identical calls, per call, on a
/// record written by an earlier flow run. `per_call_of_10000` waits until the record's file
/// has settled (older than `cachehost::stamp::SETTLE`, as the record of any run more than
/// two seconds earlier is), so the store serves the record it decoded after one `stat`;
/// `per_call_of_10000_fresh_record` times the hits at once, each of which reads the file.
fn hit_in_flow(c: &mut Criterion) {
    let bench = common::example("bench");
    let mut group = c.benchmark_group("hit_in_flow");
    group.sampling_mode(SamplingMode::Flat).sample_size(20);
    for (label, settled) in [("per_call_of_10000", true), ("per_call_of_10000_fresh_record", false)] {
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let home = tempfile::tempdir().unwrap();
                let session = common::session(home.path(), &bench, None, 16);
                common::run_flow(&session, "repeat", common::repeat(1, 0, false));
                if settled {
                    std::thread::sleep(cachehost::stamp::SETTLE + Duration::from_millis(100));
                }
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += timed(|| common::run_flow(&session, "repeat", common::repeat(10_000, 0, false)));
                }
                assert_eq!(common::task_instances(&session), 1, "every timed call was a hit");
                total / 10_000
            })
        });
    }
    group.finish();
}

/// One cache miss with a trivial body and a persisted record (no fsync), inside a flow run
/// of 1,000 distinct calls, per call; with the pooling allocator (the default) and with
/// on-demand allocation.
fn miss_in_flow(c: &mut Criterion) {
    let bench = common::example("bench");
    let mut group = c.benchmark_group("miss_in_flow");
    group.sampling_mode(SamplingMode::Flat).sample_size(20);
    // The third variant keeps the records on tmpfs, apart from the disk's cost of creating
    // files.
    let variants = [
        ("per_call_of_1000", true, false),
        ("per_call_of_1000_on_demand", false, false),
        ("per_call_of_1000_tmpfs", true, true),
    ];
    for (label, pooling, tmpfs) in variants {
        if tmpfs && !Path::new("/dev/shm").is_dir() {
            continue;
        }
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let home = common::miss_home(tmpfs);
                let compiled = Some(common::kept_dir().join("compiled"));
                let engine = if pooling {
                    Engine::new(compiled, EngineOptions::default())
                } else {
                    Engine::with_pool(compiled, EngineOptions::default(), None)
                }
                .unwrap();
                assert_eq!(
                    engine.allocator() == Allocator::Pooling,
                    pooling,
                    "this machine allows the pooling allocator"
                );
                let session = common::session_on(engine, &home, &bench, None, 16);
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    let start = i as i64 * 1_000;
                    total += timed(|| common::run_flow(&session, "repeat", common::repeat(1_000, start, true)));
                }
                assert_eq!(common::task_instances(&session), iters * 1_000, "every timed call was a miss");
                total / 1_000
            })
        });
    }
    group.finish();
}

/// The file system's part of a miss, as a floor: per file, creating a 371-byte file (a bench
/// record's size) through a temp file and a rename with plain `std::fs` calls, 1,000 files per
/// iteration into a scratch home, on the disk and on tmpfs, as the misses' records are.
fn record_file_floor(c: &mut Criterion) {
    let mut group = c.benchmark_group("record_file_floor");
    group.sampling_mode(SamplingMode::Flat).sample_size(20);
    let bytes = vec![7u8; 371];
    for (label, tmpfs) in [("per_file_of_1000", false), ("per_file_of_1000_tmpfs", true)] {
        if tmpfs && !Path::new("/dev/shm").is_dir() {
            continue;
        }
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let folder = common::miss_home(tmpfs).join("storage");
                std::fs::create_dir(&folder).unwrap();
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    total += timed(|| {
                        for j in 0..1_000 {
                            let tmp = folder.join(format!(".tmp-{i}-{j}"));
                            std::fs::write(&tmp, &bytes).unwrap();
                            std::fs::rename(&tmp, folder.join(format!("{i}-{j}"))).unwrap();
                        }
                    });
                }
                total / 1_000
            })
        });
    }
    group.finish();
}

/// Whole flow runs (one instance of the flow, then N calls): all hits, and all misses.
fn flow_runs(c: &mut Criterion) {
    let bench = common::example("bench");
    let mut group = c.benchmark_group("flow_run");
    group.sampling_mode(SamplingMode::Flat).sample_size(10).warm_up_time(Duration::from_millis(500));
    for calls in [10u32, 1_000, 100_000] {
        group.bench_with_input(BenchmarkId::new("hits", calls), &calls, |b, &calls| {
            b.iter_custom(|iters| {
                let home = tempfile::tempdir().unwrap();
                let session = common::session(home.path(), &bench, None, 16);
                common::run_flow(&session, "repeat", common::repeat(1, 0, false));
                (0..iters)
                    .map(|_| timed(|| common::run_flow(&session, "repeat", common::repeat(calls, 0, false))))
                    .sum()
            })
        });
    }
    for calls in [10u32, 1_000] {
        group.bench_with_input(BenchmarkId::new("misses", calls), &calls, |b, &calls| {
            b.iter_custom(|iters| {
                let home = common::miss_home(false);
                let session = common::session(&home, &bench, None, 16);
                (0..iters)
                    .map(|i| {
                        let start = i as i64 * i64::from(calls);
                        timed(|| common::run_flow(&session, "repeat", common::repeat(calls, start, true)))
                    })
                    .sum()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, hit_in_flow, miss_in_flow, record_file_floor, flow_runs);

fn main() {
    common::clear_scratch();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
