//! The short fuzz run of `make test`, on stable: each fuzz target of
//! `cachehost::fuzz_targets` over its seeds and random mutations of them (bit flips,
//! insertions, deletions, duplications, splices, truncations). `CACHEHOST_FUZZ_ITERATIONS`
//! sets the mutations per target (default 20,000); the long runs use cargo-fuzz (`fuzz/`).

use cachehost::fuzz_targets::{json_to_value, policy_parser, record_decoder, types};
use cachehost::store::record;
use cachehost::value::Value;

/// xorshift64*: a fixed seed, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(rng: &mut Rng, input: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = out.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(len + 1);
                out.insert(i, rng.next() as u8);
            }
            2 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below(len - i);
                out.drain(i..i + n.min(8));
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(16));
                let chunk: Vec<u8> = out[i..i + n].to_vec();
                let at = rng.below(out.len() + 1);
                out.splice(at..at, chunk);
            }
            4 => {
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(out.len() + 1);
                let from = rng.below(other.len() + 1);
                out.truncate(cut);
                out.extend_from_slice(&other[from..]);
            }
            5 => out.truncate(rng.below(len + 1)),
            _ if len > 0 => {
                let i = rng.below(len);
                out[i] = [0, 0xff, 0x7f, 0x80, b'"', b'[', b'('][rng.below(7)];
            }
            _ => {}
        }
    }
    out
}

fn iterations() -> usize {
    std::env::var("CACHEHOST_FUZZ_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000)
}

fn run(target: fn(&[u8]), seeds: Vec<Vec<u8>>, seed: u64) {
    for input in &seeds {
        target(input);
    }
    let mut rng = Rng(seed);
    let mut corpus = seeds.clone();
    for _ in 0..iterations() {
        let base = corpus[rng.below(corpus.len())].clone();
        let input = mutate(&mut rng, &base, &seeds);
        target(&input);
        if corpus.len() < 512 && rng.below(8) == 0 {
            corpus.push(input);
        }
    }
}

/// A typed value for each of `types()`, as JSON, to seed records and conversions.
fn json_seeds() -> Vec<(usize, &'static str)> {
    vec![
        (0, "true"),
        (1, "-42"),
        (2, "255"),
        (3, "1.5e300"),
        (4, "\"é\""),
        (5, "\"hello\""),
        (6, "[1, 2, 255]"),
        (7, "[-1, 2147483647]"),
        (8, "{\"some\": null}"),
        (9, "{\"err\": \"boom\"}"),
        (10, "{\"ok\": null}"),
        (11, "[-8, 0.25, \"x\"]"),
        (12, "{\"name\": \"a\", \"tags\": [\"x\", \"y\"]}"),
        (13, "[{\"name\": \"a\", \"tags\": []}]"),
        (14, "{\"deep\": [true, false]}"),
        (15, "\"green\""),
        (16, "[\"a\", \"c\"]"),
    ]
}

#[test]
fn record_decoder_survives_mutated_records() {
    let types = types();
    let mut seeds = Vec::new();
    for (index, json) in json_seeds() {
        let ty = &types[index];
        let value = Value::from_json(&serde_json::from_str(json).unwrap(), ty).unwrap();
        let value_bytes = record::encode_value(&value);
        let meta = record::RecordMeta::new(
            "k".into(),
            "example:t/tasks#f".into(),
            "d".into(),
            vec![record::KeyPartMeta {
                name: "inputs".into(),
                key: "p".into(),
                detail: vec![("x".into(), "1".into())],
            }],
            1,
            Some(2),
            ty.clone(),
            &value_bytes,
        );
        let mut seed = vec![index as u8];
        seed.extend(record::encode(&meta, &value_bytes));
        seeds.push(seed);
    }
    run(record_decoder, seeds, 0x5eed_0001);
}

#[test]
fn policy_parser_survives_mutated_expressions() {
    let seeds = [
        "DEFAULT",
        "INPUTS - 'debug' + TASK_SOURCE",
        "(INPUTS + RUN_ID) - 'x' - \"y\"",
        "NONE",
        "NO_CACHE + KEY_FN + FLOW_PARAMETERS",
        "INPUTS - 'a b' + (TASK_SOURCE + RUN_ID)",
        "((((INPUTS))))",
    ];
    run(policy_parser, seeds.iter().map(|s| s.as_bytes().to_vec()).collect(), 0x5eed_0002);
}

#[test]
fn json_to_value_survives_mutated_json() {
    let seeds = json_seeds()
        .into_iter()
        .map(|(index, json)| {
            let mut seed = vec![index as u8];
            seed.extend_from_slice(json.as_bytes());
            seed
        })
        .collect();
    run(json_to_value, seeds, 0x5eed_0003);
}

/// Inputs the mutations rarely reach: nesting far past every limit.
#[test]
fn targets_survive_deep_nesting() {
    let mut deep_json = vec![13u8];
    deep_json.extend(std::iter::repeat_n(b'[', 100_000));
    json_to_value(&deep_json);
    policy_parser(&[b'('; 100_000]);
    let mut deep_record = vec![8u8];
    deep_record.extend_from_slice(b"CHREC\x01");
    deep_record.extend_from_slice(&200_000u32.to_le_bytes());
    deep_record.extend(std::iter::repeat_n(18u8, 200_000));
    record_decoder(&deep_record);
}
