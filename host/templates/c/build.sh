#!/usr/bin/env bash
# Builds {{name}}.wasm from tasks.c: wit-bindgen 0.63 (C bindings), clang with wasi-libc
# (Debian: `apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32`), wasm-tools and
# the WASI preview1 reactor adapter. WIT_BINDGEN, WASM_TOOLS and WASI_ADAPTER name them,
# else $CACHEHOST_TOOLS/bin/wit-bindgen, $CACHEHOST_TOOLS/bin/wasm-tools and
# $CACHEHOST_TOOLS/wasi_snapshot_preview1.reactor.wasm (a cachehost checkout's .tools, made
# by `make polyglot-tools`), else the tools on the PATH and the adapter beside this script.
set -euo pipefail
cd "$(dirname "$0")"
wit_bindgen=${WIT_BINDGEN:-${CACHEHOST_TOOLS:+$CACHEHOST_TOOLS/bin/wit-bindgen}}
wasm_tools=${WASM_TOOLS:-${CACHEHOST_TOOLS:+$CACHEHOST_TOOLS/bin/wasm-tools}}
adapter=${WASI_ADAPTER:-${CACHEHOST_TOOLS:+$CACHEHOST_TOOLS/wasi_snapshot_preview1.reactor.wasm}}
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
if ! log=$("${wit_bindgen:-wit-bindgen}" c wit --world {{name}} --out-dir "$build" 2>&1); then
  echo "$log" >&2
  exit 1
fi
cp tasks.c cachehost.h "$build/"
(cd "$build" && clang --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra -Werror -Wno-unused-parameter \
  -s -I. -o core.wasm ./*.c {{snake}}_component_type.o)
"${wasm_tools:-wasm-tools}" component new "$build/core.wasm" \
  --adapt "wasi_snapshot_preview1=${adapter:-wasi_snapshot_preview1.reactor.wasm}" -o {{name}}.wasm
echo "built {{name}}.wasm"
