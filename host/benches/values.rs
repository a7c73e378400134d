//! Large values, in process (issue 13): hit and miss latency of a task taking a `list<u8>`
//! (`sized` of the bench example), of a task returning one (`sized-result`) and of a task
//! taking a `list<u64>` of as many bytes (`sized-words`), for values of
//! 1 B to 64 MiB. A figure is the time of a flow run making the calls minus that of the same
//! flow run making none (which still builds the input bytes), per call. Misses persist their
//! record; `max_result_size` is raised so that a 64 MiB result is allowed. Log lines are
//! formatted and written to /dev/null, as a run with stderr redirected does.

mod common;

use std::time::{Duration, Instant};

use criterion::{criterion_group, BenchmarkId, Criterion, SamplingMode};

/// `[limits]` for every session here: a result of 64 MiB is over the default 16 MiB.
const CONFIG: &str = "[limits]\nmax_result_size = \"256MiB\"\n";

/// The sizes, with the calls a hit iteration makes (enough to outweigh the flow run's start).
const SIZES: [(&str, u64, u32); 5] =
    [("1B", 1, 100), ("1KiB", 1 << 10, 100), ("1MiB", 1 << 20, 20), ("16MiB", 16 << 20, 3), ("64MiB", 64 << 20, 1)];

fn timed(f: impl FnOnce()) -> Duration {
    let started = Instant::now();
    f();
    started.elapsed()
}

/// Hits and misses of `flow` (`sized`: the value is the task's input; `sized-result`: its
/// result) by size, in the criterion group `group`.
fn by_size(c: &mut Criterion, group: &str, flow: &str) {
    let bench = common::example("bench");
    let mut group = c.benchmark_group(group);
    group.sampling_mode(SamplingMode::Flat).sample_size(10).warm_up_time(Duration::from_millis(500));
    for (label, size, calls) in SIZES {
        // The flow's warm-up call on an empty value is a call of its own, except where the
        // value is empty too (`sized-words` of fewer than 8 bytes is an empty list).
        let misses_per_run = if flow == "sized-words" && size < 8 { 1 } else { 2 };
        group.bench_function(BenchmarkId::new("hit", label), |b| {
            b.iter_custom(|iters| {
                let home = tempfile::tempdir().unwrap();
                let session = common::session(home.path(), &bench, Some(CONFIG), 16);
                common::run_flow(&session, flow, common::sized(size, 7, 1));
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let with = timed(|| common::run_flow(&session, flow, common::sized(size, 7, calls)));
                    let without = timed(|| common::run_flow(&session, flow, common::sized(size, 7, 0)));
                    total += with.saturating_sub(without) / calls;
                }
                assert_eq!(common::task_instances(&session), misses_per_run, "every timed call was a hit");
                total
            })
        });
        group.bench_function(BenchmarkId::new("miss", label), |b| {
            b.iter_custom(|iters| {
                let home = tempfile::tempdir().unwrap();
                let session = common::session(home.path(), &bench, Some(CONFIG), 16);
                let storage = home.path().join("storage");
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let _ = std::fs::remove_dir_all(&storage);
                    // The flow's warm-up call on an empty value misses here, untimed.
                    common::run_flow(&session, flow, common::sized(size, 7, 0));
                    let with = timed(|| common::run_flow(&session, flow, common::sized(size, 7, 1)));
                    let without = timed(|| common::run_flow(&session, flow, common::sized(size, 7, 0)));
                    total += with.saturating_sub(without);
                }
                assert_eq!(common::task_instances(&session), misses_per_run * iters, "every timed call was a miss");
                total
            })
        });
    }
    group.finish();
}

/// A `list<u8>` input: the flow builds the bytes and passes them to `byte-count`.
fn input(c: &mut Criterion) {
    by_size(c, "value_input", "sized");
}

/// A `list<u8>` result: `filled` returns the bytes to the flow.
fn result(c: &mut Criterion) {
    by_size(c, "value_result", "sized-result");
}

/// A `list<u64>` input (`size` bytes of words): the flow builds the words and passes them to
/// `word-sum`.
fn words(c: &mut Criterion) {
    by_size(c, "value_words", "sized-words");
}

criterion_group!(benches, input, result, words);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
