//! The workloads of `make bench`: `repeat` calls a trivial task many times (the same input: hits; distinct inputs:
//! misses with persisted records), `sized` passes a large `list<u8>` to a task, `sized-result` gets one back from a
//! task, `sized-words` passes a large `list<u64>`. Run: `cachehost run build/examples/bench.wasm --flow repeat
//! --param n=1000 --param start=0 --param distinct=false`.

wit_bindgen::generate!({
    world: "example:bench/bench",
    path: ["../../../wit", "wit"],
});

use cachehost_guest::TaskOptions;
use example::bench::tasks;

struct Component;

impl exports::example::bench::tasks::Guest for Component {
    fn add_one(x: i64) -> i64 {
        x + 1
    }

    fn byte_count(data: Vec<u8>) -> u64 {
        data.len() as u64
    }

    fn filled(size: u64, seed: u8) -> Vec<u8> {
        // xorshift64 (Marsaglia), eight bytes a step: about a memory write per byte.
        let mut state = 0x9e37_79b9_7f4a_7c15 ^ u64::from(seed);
        let mut data = vec![0u8; size as usize];
        let mut chunks = data.chunks_exact_mut(8);
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()
        };
        for chunk in &mut chunks {
            chunk.copy_from_slice(&next());
        }
        let tail = chunks.into_remainder();
        let last = next();
        tail.copy_from_slice(&last[..tail.len()]);
        data
    }

    fn word_sum(words: Vec<u64>) -> u64 {
        words.iter().fold(0, |sum, w| sum.wrapping_add(*w))
    }

    fn file_size(path: String) -> u64 {
        std::fs::read(&path).map_or(0, |bytes| bytes.len() as u64)
    }
}

impl exports::example::bench::flow::Guest for Component {
    fn repeat(n: u32, start: i64, distinct: bool) -> i64 {
        (0..n).map(|i| tasks::add_one(if distinct { start + i64::from(i) } else { start })).sum()
    }

    // Each `sized` flow first calls its task once on an empty value, whatever `n` is, as
    // bench/prefect_workloads.py calls Prefect's task once on a tiny input before it times:
    // a difference of two runs then leaves out what only a process's first call pays.

    fn sized(size: u64, seed: u8, n: u32) -> u64 {
        tasks::byte_count(&[]);
        let data: Vec<u8> = (0..size).map(|i| seed.wrapping_add(i as u8)).collect();
        (0..n).map(|_| tasks::byte_count(&data)).sum()
    }

    fn sized_result(size: u64, seed: u8, n: u32) -> u64 {
        tasks::filled(0, seed);
        (0..n).map(|_| tasks::filled(size, seed).len() as u64).sum()
    }

    fn read_file(path: String, n: u32) -> u64 {
        (0..n).map(|_| tasks::file_size(&path)).sum()
    }

    fn sized_words(size: u64, seed: u8, n: u32) -> u64 {
        tasks::word_sum(&[]);
        let words: Vec<u64> = (0..size / 8).map(|i| u64::from(seed) + i).collect();
        (0..n).fold(0, |sum, _| sum.wrapping_add(tasks::word_sum(&words)))
    }
}

// A cache policy alone makes a task persist its result (Prefect's rule).
cachehost_guest::export_task_options!(
    Component,
    [
        TaskOptions::new("add-one").cache_policy("INPUTS"),
        TaskOptions::new("byte-count").cache_policy("INPUTS"),
        TaskOptions::new("filled").cache_policy("INPUTS"),
        TaskOptions::new("word-sum").cache_policy("INPUTS"),
        TaskOptions::new("file-size").cache_policy("INPUTS")
    ]
);

export!(Component);
