# The polyglot examples (examples/polyglot/wit): the example:poly tasks in Python,
# JavaScript and C, built from source with toolchains installed into .tools/ (C packages
# through apt-get). Included by the Makefile; the Rust task component and the flow are
# ordinary Rust examples (examples/rust/poly-rust, examples/rust/poly-flow).

TOOLS := $(CURDIR)/.tools
WASM_TOOLS := $(TOOLS)/bin/wasm-tools
WIT_BINDGEN := $(TOOLS)/bin/wit-bindgen
COMPONENTIZE_PY := $(TOOLS)/venv/bin/componentize-py
COMPONENTIZE_JS := $(TOOLS)/npm/node_modules/@bytecodealliance/componentize-js/src/cli.js
ADAPTER := $(TOOLS)/wasi_snapshot_preview1.reactor.wasm
FIXED_RANDOM := $(TOOLS)/fixed-random.so
C_TOOLCHAIN := $(TOOLS)/c-toolchain.stamp
C_PACKAGES := clang lld wasi-libc libclang-rt-14-dev-wasm32
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

POLY_TOOLS := $(WASM_TOOLS) $(WIT_BINDGEN) $(COMPONENTIZE_PY) $(COMPONENTIZE_JS) $(ADAPTER) $(FIXED_RANDOM) $(C_TOOLCHAIN)
POLY_WIT := $(wildcard examples/polyglot/wit/*.wit) wit/cachehost-task.wit tools/build-guest.sh $(FIXED_RANDOM)
POLY_WASMS := $(EXAMPLES_OUT)/poly-py.wasm $(EXAMPLES_OUT)/poly-js.wasm $(EXAMPLES_OUT)/poly-c.wasm

.PHONY: polyglot-tools polyglot polyglot-reproducible

## polyglot-tools: install the Python, JavaScript and C toolchains (quick when installed)
polyglot-tools: $(POLY_TOOLS)

$(WASM_TOOLS):
	cargo install --locked --root $(TOOLS) wasm-tools@1.263.0 --no-default-features --features component,validate,print,parse

$(WIT_BINDGEN):
	cargo install --locked --root $(TOOLS) wit-bindgen-cli@0.63.0 --no-default-features --features c

$(COMPONENTIZE_PY):
	python3 -m venv $(TOOLS)/venv
	$(TOOLS)/venv/bin/pip install --quiet componentize-py==0.25.1

$(COMPONENTIZE_JS): tools/npm/package.json tools/npm/package-lock.json
	mkdir -p $(TOOLS)/npm
	cp tools/npm/package.json tools/npm/package-lock.json $(TOOLS)/npm/
	# npm install, not npm ci: npm 11 records the optional, other-platform packages of this
	# lock file incompletely, and npm ci refuses it. The versions installed are the locked ones.
	npm install --prefix $(TOOLS)/npm --no-audit --no-fund
	touch $@

$(ADAPTER): tools/adapter/Cargo.toml tools/adapter/Cargo.lock tools/adapter/src/main.rs
	cargo run --quiet --locked --manifest-path tools/adapter/Cargo.toml -- $@

$(FIXED_RANDOM): tools/fixed-random.c
	mkdir -p $(TOOLS)
	gcc -O2 -Wall -shared -fPIC -o $@ $< -ldl

$(C_TOOLCHAIN):
	dpkg -s $(C_PACKAGES) >/dev/null 2>&1 || { $(SUDO) apt-get update && $(SUDO) apt-get install -y $(C_PACKAGES); }
	mkdir -p $(TOOLS)
	touch $@

## polyglot: build the Python, JavaScript and C task components into build/examples/
polyglot: $(POLY_WASMS)

$(EXAMPLES_OUT)/poly-py.wasm: $(wildcard examples/python/*.py) $(wildcard guest-sdk/python/cachehost/*.py) tools/reproducible_entry.py $(POLY_WIT) | polyglot-tools
	tools/build-guest.sh py examples/python $@

$(EXAMPLES_OUT)/poly-js.wasm: $(wildcard examples/js/*.js) $(wildcard guest-sdk/js/*.js) $(POLY_WIT) | polyglot-tools
	tools/build-guest.sh js examples/js $@

$(EXAMPLES_OUT)/poly-c.wasm: $(wildcard examples/c/*.c) guest-sdk/c/cachehost.h $(POLY_WIT) | polyglot-tools
	tools/build-guest.sh c examples/c $@
