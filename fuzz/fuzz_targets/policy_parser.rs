#![no_main]
//! cargo-fuzz target: see `cachehost::fuzz_targets::policy_parser`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cachehost::fuzz_targets::policy_parser(data));
