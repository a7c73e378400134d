//! Large values cross a task call intact in every guest language (issue 13, test 5a): the
//! flow `large-bytes` of poly-flow sends 64 MiB of pseudo-random bytes to one language's
//! `reverse-bytes` twice, a miss and then a hit, and checks every byte of both results. Before
//! values crossed the host in bulk (one wasmtime `Val` per byte), a 64 MiB miss took seconds
//! and gigabytes of memory; `make test` builds the four components. `large-floats` does the
//! same with 1 Mi `f64` values (a `list<f64>`, which the host holds as one typed buffer) and
//! checks every bit of them.

use std::path::PathBuf;

use cachehost_tests::{example, Report, TestContext};
use serde_json::json;

/// The size sent: 64 MiB.
const SIZE: u32 = 64 * 1024 * 1024;
/// The seed of the bytes.
const SEED: u64 = 13;

fn component(lang: &str) -> PathBuf {
    if lang != "rust" {
        let toolchains = "`make polyglot`, which installs the toolchains with `make polyglot-tools`";
        let dir = std::env::var_os("CACHEHOST_EXAMPLES")
            .map(PathBuf::from)
            .unwrap_or_else(|| cachehost_tests::repo_root().join("build/examples"));
        let path = dir.join(format!("poly-{lang}.wasm"));
        assert!(path.exists(), "{} is missing: run {toolchains}", path.display());
        return path;
    }
    example("poly-rust")
}

/// The number of f64 values `large-floats` sends: 8 MiB of them.
const FLOATS: u32 = 1 << 20;

/// Runs `large-bytes` for `lang` with every language's component as a provider.
fn run_large_bytes(ctx: &TestContext, lang: &str) -> Report {
    run_large(ctx, "large-bytes", lang, &format!("size={SIZE}"))
}

/// Runs `flow` (`large-bytes` or `large-floats`) for `lang`, with every language's
/// component as a provider, the size parameter given as `size`.
fn run_large(ctx: &TestContext, flow_name: &str, lang: &str, size: &str) -> Report {
    // max_result_size bounds a result's encoded size, 67,108,869 bytes here (64 MiB and its
    // length prefix): over the default of 16 MiB, and over "64MiB" too. The test is about
    // values this large, so it raises the limit for its run to the next MiB.
    let config = ctx.dir.path().join("cachehost.toml");
    std::fs::write(&config, "[limits]\nmax_result_size = \"65MiB\"\n").unwrap();
    let flow = example("poly-flow");
    let providers: Vec<PathBuf> = ["rust", "py", "js", "c"].map(component).into();
    let (lang, seed) = (format!(r#"lang="{lang}""#), format!("seed={SEED}"));
    let mut args = vec!["run", flow.to_str().unwrap(), "--flow", flow_name, "--config", config.to_str().unwrap()];
    for provider in &providers {
        args.extend(["--tasks", provider.to_str().unwrap()]);
    }
    args.extend(["--param", &lang, "--param", size, "--param", &seed]);
    ctx.report(&args, 0)
}

/// FNV-1a (64-bit) of the bytes the flow sends: splitmix64 from `seed`, eight little-endian
/// bytes per step (poly-flow's `pseudo_random_bytes`), computed again here so the test knows
/// which bytes went through.
fn checksum_of_sent_bytes(size: u32, seed: u64) -> u64 {
    let (mut state, mut hash, mut left) = (seed, 0xcbf2_9ce4_8422_2325_u64, size as usize);
    while left > 0 {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let bytes = (z ^ (z >> 31)).to_le_bytes();
        for &b in &bytes[..left.min(8)] {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        left -= left.min(8);
    }
    hash
}

/// FNV-1a (64-bit) of the little-endian bytes of the floats `large-floats` sends: each
/// eight bytes of [`checksum_of_sent_bytes`]'s stream, its top 53 bits scaled into [0, 1e6).
fn checksum_of_sent_floats(count: u32, seed: u64) -> u64 {
    let mut state = seed;
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for _ in 0..count {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let x = ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64 * 1e6;
        for b in x.to_le_bytes() {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

fn floats_round_trip_through_a_miss_and_a_hit(lang: &str) {
    let ctx = TestContext::new();
    let report = run_large(&ctx, "large-floats", lang, &format!("count={FLOATS}"));
    let result = &report.result()["ok"];
    assert!(!result.is_null(), "{lang}: the flow's check failed: {}\n{}", report.result(), report.stderr);
    assert_eq!(result["size"], FLOATS, "{lang}");
    assert_eq!(result["checksum"], checksum_of_sent_floats(FLOATS, SEED), "{lang}: the flow sent other values");
    assert_eq!(result["states"], json!(["Completed", "Cached"]), "{lang}: the states the flow saw");
    assert_eq!(report.states(), ["Completed", "Cached"], "{lang}\n{}", report.stderr);
    for run in report.task_runs() {
        assert_eq!(run["task"], format!("example:poly/{lang}-tasks#reverse-floats"));
    }
    assert_eq!(report.instantiations("tasks"), 1, "{lang}: one task instance, for the miss");
}

#[test]
fn rust_floats_round_trip_through_a_miss_and_a_hit() {
    floats_round_trip_through_a_miss_and_a_hit("rust");
}

#[test]
fn python_floats_round_trip_through_a_miss_and_a_hit() {
    floats_round_trip_through_a_miss_and_a_hit("py");
}

#[test]
fn javascript_floats_round_trip_through_a_miss_and_a_hit() {
    floats_round_trip_through_a_miss_and_a_hit("js");
}

#[test]
fn c_floats_round_trip_through_a_miss_and_a_hit() {
    floats_round_trip_through_a_miss_and_a_hit("c");
}

fn round_trips_through_a_miss_and_a_hit(lang: &str) {
    let ctx = TestContext::new();
    let report = run_large_bytes(&ctx, lang);
    let result = &report.result()["ok"];
    assert!(!result.is_null(), "{lang}: the flow's check failed: {}\n{}", report.result(), report.stderr);
    assert_eq!(result["size"], SIZE, "{lang}");
    assert_eq!(result["checksum"], checksum_of_sent_bytes(SIZE, SEED), "{lang}: the flow sent other bytes");
    assert_eq!(result["states"], json!(["Completed", "Cached"]), "{lang}: the states the flow saw");

    assert_eq!(report.states(), ["Completed", "Cached"], "{lang}\n{}", report.stderr);
    let runs = report.task_runs();
    for run in runs {
        assert_eq!(run["task"], format!("example:poly/{lang}-tasks#reverse-bytes"));
        assert_eq!(run["component"], format!("poly-{lang}.wasm"));
    }
    assert!(runs[0]["persisted"].as_bool().unwrap(), "{lang}: the miss wrote its record");
    assert_eq!(runs[1]["cache_key"], runs[0]["cache_key"], "{lang}: the hit read the miss's record");
    assert_eq!(runs[1]["attempts"], 0, "{lang}: the hit ran no body");
    assert_eq!(report.instantiations("tasks"), 1, "{lang}: one task instance, for the miss");
}

#[test]
fn rust_64_mib_round_trips_through_a_miss_and_a_hit() {
    round_trips_through_a_miss_and_a_hit("rust");
}

#[test]
fn python_64_mib_round_trips_through_a_miss_and_a_hit() {
    round_trips_through_a_miss_and_a_hit("py");
}

#[test]
fn javascript_64_mib_round_trips_through_a_miss_and_a_hit() {
    round_trips_through_a_miss_and_a_hit("js");
}

#[test]
fn c_64_mib_round_trips_through_a_miss_and_a_hit() {
    round_trips_through_a_miss_and_a_hit("c");
}
