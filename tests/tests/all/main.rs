//! Every integration test in one binary, as wasmtime's `tests/all`: one link instead of one per
//! file. One module per area; run one area with `cargo test -p cachehost-tests --test all crash::`.

mod bad_input;
mod cache;
mod cost;
mod crash;
mod crash_safety;
mod failures;
mod isolation;
mod key_storage;
mod large_values;
mod policies;
mod polyglot;
mod reads;
mod sandbox;
mod sdk;
mod settings;
mod shared_cache;
mod transactions;
mod trust;
mod ui;
mod workers;
