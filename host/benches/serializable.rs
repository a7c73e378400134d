//! 64 concurrent identical SERIALIZABLE calls (the concurrency example's `race` flow, the
//! memory lock manager, 64 submitted calls at once, a body that sleeps 10 ms): the extra
//! wall time of the 64 over a run with one call, each with a fresh key. Every sample
//! checks that the 64 calls executed the body exactly once.

mod common;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};

use cachehost::value::Value;

const CONFIG: &str = r#"
[tasks."slow-add"]
isolation_level = "SERIALIZABLE"
lock_manager = "memory"
"#;

fn race(n: u32, x: i64) -> Vec<Value> {
    vec![Value::U32(n), Value::S64(x), Value::U64(10)]
}

fn serializable_64(c: &mut Criterion) {
    let component = common::example("concurrency");
    let mut group = c.benchmark_group("serializable");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    group.bench_function("64_identical_calls_extra_wall_time", |b| {
        b.iter_custom(|iters| {
            let home = tempfile::tempdir().unwrap();
            let session = common::session(home.path(), &component, Some(CONFIG), 64);
            let mut extra = Duration::ZERO;
            for i in 0..iters as i64 {
                let before = common::task_instances(&session);
                let started = Instant::now();
                common::run_flow(&session, "race", race(64, 2 * i));
                let sixty_four = started.elapsed();
                assert_eq!(
                    common::task_instances(&session) - before,
                    1,
                    "64 identical SERIALIZABLE calls execute once"
                );
                let started = Instant::now();
                common::run_flow(&session, "race", race(1, 2 * i + 1));
                extra += sixty_four.saturating_sub(started.elapsed());
            }
            extra
        })
    });
    group.finish();
}

criterion_group!(benches, serializable_64);
criterion_main!(benches);
