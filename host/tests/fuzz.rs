//! The short fuzz run of `make test`, on stable: each fuzz target of
//! `cachehost::fuzz_targets` over its seeds and random mutations of them (bit flips,
//! insertions, deletions, duplications, splices, truncations). `CACHEHOST_FUZZ_ITERATIONS`
//! sets the mutations per target (default 20,000); the long runs use cargo-fuzz (`fuzz/`).

use cachehost::fuzz_targets::{json_to_value, policy_parser, record_decoder, types};
use cachehost::store::record::{self, RecordError};
use cachehost::value::{Ty, Value, MAX_DECODE_DEPTH};

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

/// A record of each of `types()`, behind its type index.
fn record_seeds() -> Vec<Vec<u8>> {
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
    seeds
}

fn policy_seeds() -> Vec<Vec<u8>> {
    [
        "DEFAULT",
        "INPUTS - 'debug' + TASK_SOURCE",
        "(INPUTS + RUN_ID) - 'x' - \"y\"",
        "NONE",
        "NO_CACHE + KEY_FN + FLOW_PARAMETERS",
        "INPUTS - 'a b' + (TASK_SOURCE + RUN_ID)",
        "((((INPUTS))))",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// Each of `json_seeds()` behind its type index.
fn json_to_value_seeds() -> Vec<Vec<u8>> {
    json_seeds()
        .into_iter()
        .map(|(index, json)| {
            let mut seed = vec![index as u8];
            seed.extend_from_slice(json.as_bytes());
            seed
        })
        .collect()
}

#[test]
fn record_decoder_survives_mutated_records() {
    run(record_decoder, record_seeds(), 0x5eed_0001);
}

#[test]
fn policy_parser_survives_mutated_expressions() {
    run(policy_parser, policy_seeds(), 0x5eed_0002);
}

#[test]
fn json_to_value_survives_mutated_json() {
    run(json_to_value, json_to_value_seeds(), 0x5eed_0003);
}

/// Not a test: `make fuzz` runs it (`--ignored`) to start each cargo-fuzz corpus from the seeds
/// above, written to `$CACHEHOST_FUZZ_SEEDS/<target>/seed-<n>`.
#[test]
#[ignore = "writes the cargo-fuzz seeds for make fuzz"]
fn write_cargo_fuzz_seeds() {
    let dir = std::path::PathBuf::from(std::env::var_os("CACHEHOST_FUZZ_SEEDS").expect("CACHEHOST_FUZZ_SEEDS is set"));
    for (target, seeds) in [
        ("record_decoder", record_seeds()),
        ("policy_parser", policy_seeds()),
        ("json_to_value", json_to_value_seeds()),
    ] {
        let target_dir = dir.join(target);
        std::fs::create_dir_all(&target_dir).unwrap();
        for (n, seed) in seeds.iter().enumerate() {
            std::fs::write(target_dir.join(format!("seed-{n}")), seed).unwrap();
        }
    }
}

/// Regression (found by `make fuzz`): a record whose metadata holds an overlong varint (`80 00`,
/// the length of an empty label) decodes, and re-encodes to other bytes; the target asserted the same bytes.
#[test]
fn record_with_an_overlong_varint_decodes_to_a_record_that_reencodes_canonically() {
    let input =
        hex("064348524543024d000000016b116578616d706c653a742f7461736b73236601640106696e70757473017001800001310201030d\
         025a355748d490906260bbe70ef09060a95e99a1a5c39f22b5509bc6aae66ca3cb0500000e030102ff");
    let decoded = record::decode(&input[1..], &types()[input[0] as usize]).expect("postcard reads overlong varints");
    assert_eq!(decoded.meta.parts[0].detail, [(String::new(), "1".to_owned())], "the label's length is `80 00`");
    record_decoder(&input);
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

/// `postcard(wrap(leaf))` is `level ++ postcard(leaf)`: the bytes one level of nesting adds.
fn one_level<T: serde::Serialize>(leaf: T, wrap: fn(T) -> T) -> (Vec<u8>, Vec<u8>) {
    let leaf_bytes = postcard::to_stdvec(&leaf).unwrap();
    let wrapped = postcard::to_stdvec(&wrap(leaf)).unwrap();
    assert!(wrapped.ends_with(&leaf_bytes), "a level is a prefix");
    (wrapped[..wrapped.len() - leaf_bytes.len()].to_vec(), leaf_bytes)
}

/// `levels` copies of `level`, then `leaf`: a value or type nested `levels + 1` deep, made as
/// bytes (a nested `Ty` or `Value` that deep would overflow the stack being built or dropped).
fn nested(level: &[u8], levels: usize, leaf: &[u8]) -> Vec<u8> {
    let mut bytes = level.repeat(levels);
    bytes.extend_from_slice(leaf);
    bytes
}

/// A record in the current format, framed here from its constants: `MAGIC`,
/// `FORMAT_VERSION`, the metadata's length, the metadata, the value.
fn frame(meta_bytes: &[u8], value_bytes: &[u8]) -> Vec<u8> {
    let mut bytes = record::MAGIC.to_vec();
    bytes.push(record::FORMAT_VERSION);
    bytes.extend_from_slice(&u32::try_from(meta_bytes.len()).unwrap().to_le_bytes());
    bytes.extend_from_slice(meta_bytes);
    bytes.extend_from_slice(value_bytes);
    bytes
}

fn meta(ty: Ty, value_bytes: &[u8]) -> record::RecordMeta {
    record::RecordMeta::new("k".into(), "example:t/tasks#f".into(), "d".into(), vec![], 1, None, ty, value_bytes)
}

/// A record whose stored value type is `Option` nested `levels` deep around `bool`.
fn record_with_deep_type(levels: usize) -> Vec<u8> {
    // The type goes where a marker type sits in the encoded metadata.
    let marker = Ty::Enum(vec!["the deep type goes here".into()]);
    let value_bytes = record::encode_value(&Value::Bool(true));
    let meta = meta(marker.clone(), &value_bytes);
    let mut meta_bytes = postcard::to_stdvec(&meta).unwrap();
    assert_eq!(frame(&meta_bytes, &value_bytes), record::encode(&meta, &value_bytes), "framed as encode does");
    let marker_bytes = postcard::to_stdvec(&marker).unwrap();
    let at = meta_bytes.windows(marker_bytes.len()).position(|w| w == marker_bytes).expect("the marker is there");
    let (level, leaf) = one_level(Ty::Bool, |ty| Ty::Option(Box::new(ty)));
    meta_bytes.splice(at..at + marker_bytes.len(), nested(&level, levels, &leaf));
    frame(&meta_bytes, &value_bytes)
}

/// A record of type `ty` whose value is `Some` nested `levels` deep around `true` (the value
/// is checked against its digest, then decoded as a `ty`).
fn record_with_deep_value(ty: Ty, levels: usize) -> Vec<u8> {
    let (level, leaf) = one_level(Value::Bool(true), |value| Value::Option(Some(Box::new(value))));
    let value_bytes = nested(&level, levels, &leaf);
    frame(&postcard::to_stdvec(&meta(ty, &value_bytes)).unwrap(), &value_bytes)
}

/// The fuzz target's input for `bytes`: a type index, then the bytes.
fn with_type_index(index: u8, bytes: &[u8]) -> Vec<u8> {
    let mut input = vec![index];
    input.extend_from_slice(bytes);
    input
}

/// Inputs the mutations rarely reach: nesting far past every limit. Each must reach the
/// decoder's nesting limit (not stop at an earlier check, as a record of a stale format
/// version would), which the record cases show at the limit's edge: one level under it
/// decodes, the limit itself is refused; a value nested past its type is refused.
#[test]
fn targets_survive_deep_nesting() {
    let mut deep_json = vec![13u8];
    deep_json.extend(std::iter::repeat_n(b'[', 100_000));
    json_to_value(&deep_json);
    let refused = serde_json::from_slice::<serde_json::Value>(&deep_json[1..]).unwrap_err();
    assert!(refused.to_string().contains("recursion limit"), "{refused}");

    let deep_policy = "(".repeat(100_000);
    policy_parser(deep_policy.as_bytes());
    let refused = cachehost::policy::Policy::parse(&deep_policy).unwrap_err();
    assert!(refused.to_string().contains("nested deeper"), "{refused}");

    let limit = MAX_DECODE_DEPTH as usize;
    // Option^n(bool) is n + 1 levels of `Ty`.
    let under = record::decode_meta(&record_with_deep_type(limit - 1)).expect("a type one level under the limit");
    assert!(matches!(under.value_type, Ty::Option(_)), "{:?}", under.value_type);
    for levels in [limit, 200_000] {
        let bytes = record_with_deep_type(levels);
        let refused = record::decode_meta(&bytes).unwrap_err();
        assert!(matches!(refused, RecordError::MetaUndecodable(_)), "{levels} levels: {refused}");
        record_decoder(&with_type_index(0, &bytes));
    }

    // A value is read as its type, so it nests no deeper than its type can: as deep as the
    // deepest type, it decodes; deeper than its type, it is refused where it stops fitting.
    let deepest_ty = (0..limit - 2).fold(Ty::Bool, |ty, _| Ty::Option(Box::new(ty)));
    let deepest = record_with_deep_value(deepest_ty.clone(), limit - 2);
    let under = record::decode(&deepest, &deepest_ty).expect("a value as deep as the deepest type");
    assert!(matches!(under.value, Value::Option(Some(_))), "{:?}", under.value);
    let index = 8;
    let ty = types()[index].clone();
    for levels in [limit, 200_000] {
        let bytes = record_with_deep_value(ty.clone(), levels);
        let refused = record::decode(&bytes, &ty).unwrap_err();
        assert!(matches!(refused, RecordError::ValueUndecodable(_)), "{levels} levels: {refused}");
        record_decoder(&with_type_index(index as u8, &bytes));
    }
}
