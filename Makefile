# cachehost: `make demo` shows task caching end to end, `make test` runs every test.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := demo
MAKEFLAGS += --no-builtin-rules

# Shared by every build of this repository, so switching checkouts does not rebuild wasmtime.
CARGO_TARGET_DIR ?= $(HOME)/.cache/cachehost/target
export CARGO_TARGET_DIR

GUEST_TARGET := wasm32-wasip2
GUEST_PROFILE := release-guest
GUEST_OUT := $(CARGO_TARGET_DIR)/$(GUEST_TARGET)/$(GUEST_PROFILE)
EXAMPLES_OUT := build/examples
HOST_BIN := $(CARGO_TARGET_DIR)/debug/cachehost

# One crate per example, `examples/rust/<name>`, package `example-<name>`, built to
# `build/examples/<name>.wasm`; task-source is built a second time with its `changed` feature.
RUST_EXAMPLES := $(notdir $(patsubst %/,%,$(wildcard examples/rust/*/)))
EXAMPLE_WASMS := $(RUST_EXAMPLES:%=$(EXAMPLES_OUT)/%.wasm) $(EXAMPLES_OUT)/task-source-changed.wasm
GUEST_SOURCES := $(shell find wit guest-sdk examples/rust examples/polyglot -type f) Cargo.toml Cargo.lock

# The servers the shared-cache tests start: Redis from Debian, moto (S3) from PyPI.
MOTO_SERVER := .tools/moto/bin/moto_server
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# cargo-fuzz targets (fuzz/fuzz_targets/<name>.rs), each run for FUZZ_SECONDS by `make fuzz`.
FUZZ_TARGETS := $(basename $(notdir $(wildcard fuzz/fuzz_targets/*.rs)))
FUZZ_SECONDS ?= 60
CARGO_FUZZ_VERSION := 0.13.2

.PHONY: setup examples build demo lint test test-servers test-browser bench bench-sizes bench-workers fuzz

include polyglot.mk

## setup: add the Rust target the guest components are built for
setup:
	@rustup target list --installed | grep -qx '$(GUEST_TARGET)' || rustup target add '$(GUEST_TARGET)'

## examples: build every example component into build/examples/
examples: $(EXAMPLE_WASMS)

$(EXAMPLE_WASMS) &: $(GUEST_SOURCES) | setup
	cargo build --target $(GUEST_TARGET) --profile $(GUEST_PROFILE) $(RUST_EXAMPLES:%=-p example-%)
	mkdir -p $(EXAMPLES_OUT)
	for name in $(RUST_EXAMPLES); do \
	  cp "$(GUEST_OUT)/example_$${name//-/_}.wasm" "$(EXAMPLES_OUT)/$$name.wasm"; \
	done
	cargo build --target $(GUEST_TARGET) --profile $(GUEST_PROFILE) -p example-task-source --features changed
	cp "$(GUEST_OUT)/example_task_source.wasm" "$(EXAMPLES_OUT)/task-source-changed.wasm"

## build: build the cachehost binary (debug)
build:
	cargo build -p cachehost

## demo: run the persist-default flow twice, each run in its own flow run
demo: setup examples build
	@home="$$(mktemp -d -t cachehost-demo.XXXXXX)"; \
	echo "CACHEHOST_HOME=$$home"; \
	for run in 1 2; do \
	  echo "== cachehost run $(EXAMPLES_OUT)/persist-default.wasm (flow run $$run)"; \
	  CACHEHOST_HOME="$$home" "$(HOST_BIN)" run $(EXAMPLES_OUT)/persist-default.wasm; \
	done

## test-servers: install redis-server (apt) and moto_server (PyPI, into .tools/moto) unless present
test-servers: $(MOTO_SERVER)
	@command -v redis-server >/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y redis-server; }

## test-browser: install Debian's chromium and chromium-driver (apt) unless present, for the ui tests (tests/all ui::)
test-browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null \
	  || { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium chromium-driver; }

$(MOTO_SERVER):
	python3 -m venv .tools/moto
	.tools/moto/bin/pip install --quiet 'moto[s3]==5.2.5' flask flask-cors

## test: formatting and clippy, then build the examples (Python, JavaScript and C ones too) and run every test
test: export CACHEHOST_EXAMPLES := $(CURDIR)/$(EXAMPLES_OUT)
test: lint setup examples polyglot build test-servers test-browser
	@# host/tests/module_graph.rs fails on an import circle between the files of host/src.
	cargo test --no-fail-fast
	cargo test -p cachehost-guest
	@# The Python and JavaScript SDKs' own checks, on the host's interpreters.
	python3 -m unittest discover -s guest-sdk/python/tests
	node --test guest-sdk/js/test/
	@# The benchmarks are not run here, only built, so they cannot rot unnoticed.
	cargo build --benches -p cachehost

## lint: rustfmt (rustfmt.toml) and clippy, every warning an error, over the whole workspace
lint:
	cargo fmt --check
	cargo clippy --workspace --all-targets -- -D warnings

## bench: criterion benchmarks (release) and cachehost vs Prefect 3.9.1 side by side (BENCHMARKS.md)
bench: export CACHEHOST_EXAMPLES := $(CURDIR)/$(EXAMPLES_OUT)
bench: setup examples polyglot test-servers
	@command -v hyperfine >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y hyperfine >/dev/null; } \
	  || echo "hyperfine is not installed: whole processes are timed with a Python loop"
	@# prune runs last: deleting two million files slows down every file created on this disk
	@# in the next five minutes (host/benches/common/mod.rs), which would distort the others.
	cargo bench -p cachehost --bench flow --bench values --bench keys --bench load --bench serializable --bench store --bench trust --bench reads
	cargo build --release -p cachehost
	python3 bench/compare.py --cachehost "$(CARGO_TARGET_DIR)/release/cachehost" --examples $(EXAMPLES_OUT) \
	  --json "$(CARGO_TARGET_DIR)/cachehost-bench/compare.json"
	$(SIZES)
	$(WORKERS)
	cargo bench -p cachehost --bench prune
	rm -rf "$${CACHEHOST_BENCH_DIR:-$(CARGO_TARGET_DIR)/cachehost-bench}/scratch" /dev/shm/cachehost-bench-scratch

# The size sweep (bench/sizes.py); SIZES_ARGS passes more options, e.g. SIZES_ARGS='--sizes 1MiB,16MiB'.
SIZES = python3 bench/sizes.py --cachehost "$(CARGO_TARGET_DIR)/release/cachehost" --examples $(EXAMPLES_OUT) \
	  --out "$(CARGO_TARGET_DIR)/cachehost-bench/sizes.md" $(SIZES_ARGS)

## bench-sizes: cachehost vs Prefect 3.9.1 by value size, 1 B to 256 MiB: miss, hit, peak RSS (release)
bench-sizes: setup examples
	cargo build --release -p cachehost
	$(SIZES)

# Workers on a Redis queue (bench/workers.py); WORKERS_ARGS passes more options, e.g. WORKERS_ARGS='--workers 1,2'.
WORKERS = python3 bench/workers.py --cachehost "$(CARGO_TARGET_DIR)/release/cachehost" --examples $(EXAMPLES_OUT) \
	  --out "$(CARGO_TARGET_DIR)/cachehost-bench/workers.md" $(WORKERS_ARGS)

## bench-workers: calls through `cachehost worker` on Redis: throughput on 1, 2, 4 workers, per-call overhead, sizes (release)
bench-workers: setup examples test-servers
	cargo build --release -p cachehost
	$(WORKERS)

## fuzz: run each cargo-fuzz target for FUZZ_SECONDS (60) s with libFuzzer; not part of `make test`
# cargo-fuzz needs nightly flags (-Zsanitizer=address); RUSTC_BOOTSTRAP=1 lets this stable
# compiler take them. Inputs that crash are left in fuzz/artifacts/<target>/.
fuzz:
	@cargo fuzz --version 2>/dev/null | grep -qx 'cargo-fuzz $(CARGO_FUZZ_VERSION)' \
	  || cargo install cargo-fuzz --locked --version $(CARGO_FUZZ_VERSION)
	@# Each corpus starts from the seeds of host/tests/fuzz.rs (the stable short run).
	CACHEHOST_FUZZ_SEEDS=$(CURDIR)/fuzz/corpus cargo test -q -p cachehost --test fuzz -- --ignored --exact write_cargo_fuzz_seeds
	cd fuzz && failed=; for target in $(FUZZ_TARGETS); do \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run "$$target" -- -max_total_time=$(FUZZ_SECONDS) || failed="$$failed $$target"; \
	done; \
	[ -z "$$failed" ] || { echo "fuzz targets that crashed:$$failed (inputs in fuzz/artifacts/)"; exit 1; }
