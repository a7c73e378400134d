#![no_main]
//! cargo-fuzz target: see `cachehost::fuzz_targets::json_to_value`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cachehost::fuzz_targets::json_to_value(data));
