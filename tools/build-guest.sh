#!/usr/bin/env bash
# Builds one example:poly task component from a source folder, reproducibly.
#
#   tools/build-guest.sh py|js|c SOURCE_DIR OUTPUT.wasm
#
# The Makefile builds build/examples/poly-{py,js,c}.wasm with it; the tests call it to
# rebuild a copy of a guest's source. The toolchains come from `make polyglot-tools`
# (into .tools/, C packages through apt-get); a missing one is an error naming it.
#
# Reproducibility: the same source gives the same bytes.
# - C: clang without debug information; the sources are compiled in a fixed staging folder.
# - Python and JavaScript snapshot an interpreter's memory after loading the source
#   (componentize-py: CPython, componentize-js: SpiderMonkey under Wizer). The tools run
#   with tools/fixed-random.c preloaded: the host's random bytes, clocks and file times and
#   inode numbers are fixed (SOURCE_DATE_EPOCH; the statx calls wasmtime makes without libc
#   are trapped with seccomp), so the guest's hash seeds, random state, import caches and
#   freed heap memory are the same in every build. More per language below.
set -euo pipefail

lang=${1:?usage: tools/build-guest.sh py|js|c SOURCE_DIR OUTPUT.wasm}
src=$(cd "${2:?missing SOURCE_DIR}" && pwd)
out=${3:?missing OUTPUT.wasm}
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")

root=$(cd "$(dirname "$0")/.." && pwd)
tools=$root/.tools
wit=$root/examples/polyglot/wit
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}

need() { # need FILE TOOLCHAIN
  if [[ ! -e $1 ]]; then
    echo "error: the $2 toolchain is missing ($1 does not exist); install it with \`make polyglot-tools\`" >&2
    exit 1
  fi
}

need "$tools/fixed-random.so" "build-time determinism shim"

case $lang in
py)
  need "$tools/venv/bin/componentize-py" "Python (componentize-py)"
  # A fresh staging copy of the *.py files only: CPython writes __pycache__ into the
  # source folder, and a second build would otherwise load those instead of the sources.
  stage=$(mktemp -d -t cachehost-py.XXXXXX)
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage/app" "$stage/venv/lib/site-packages"
  cp "$src"/*.py "$root/tools/reproducible_entry.py" "$stage/app/"
  # The SDK (guest-sdk/python), unless the source folder brings its own copy.
  if [[ ! -d $src/cachehost ]]; then
    cp -r "$root/guest-sdk/python/cachehost" "$stage/app/"
  else
    cp -r "$src/cachehost" "$stage/app/"
  fi
  rm -rf "$stage/app/cachehost/__pycache__"
  # componentize-py adds the site-packages of $VIRTUAL_ENV (or else of `python3`) to the
  # guest's path: point it at an empty one so the host's packages never leak in.
  (cd "$stage/app" && VIRTUAL_ENV=$stage/venv LD_PRELOAD=$tools/fixed-random.so \
    "$tools/venv/bin/componentize-py" -d "$wit" -w py-tasks-world \
    componentize reproducible_entry -o "$out" >/dev/null)
  ;;
js)
  need "$tools/npm/node_modules/@bytecodealliance/componentize-js/src/cli.js" "JavaScript (componentize-js)"
  # componentize-js passes its working folder and a temporary folder named from
  # Math.random() to the guest, so both are fixed: a fixed path, and node's random seed.
  # The fixed path is shared by every checkout, so builds take turns (flock).
  stage=/tmp/cachehost-js-build
  exec 9>/tmp/cachehost-js-build.lock
  flock 9
  rm -rf "$stage"
  mkdir -p "$stage/src" "$stage/tmp"
  # The SDK (guest-sdk/js) first: a source folder that brings its own copy overrides it.
  cp "$root/guest-sdk/js/cachehost.js" "$root/guest-sdk/js/policies.js" "$stage/src/"
  cp "$src"/*.js "$stage/src/"
  # The WIT is copied beside the source: the tool reads files only under its working folder.
  cp -rL "$wit" "$stage/src/wit"
  # componentize-js runs Wizer with an environment of its own making, which the guest
  # inherits: a wrapper brings in the shim, from a path that is the same in every checkout.
  cp "$tools/fixed-random.so" "$stage/fixed-random.so"
  wizer=$(cd "$tools/npm/node_modules/@bytecodealliance/wizer-linux-x64" && pwd)/wizer
  printf '#!/bin/sh\nSOURCE_DATE_EPOCH=%s LD_PRELOAD=%s exec %s "$@"\n' \
    "$SOURCE_DATE_EPOCH" "$stage/fixed-random.so" "$wizer" >"$stage/wizer"
  chmod +x "$stage/wizer"
  (cd "$stage/src" && TMPDIR=$stage/tmp node --random-seed=1 \
    "$tools/npm/node_modules/@bytecodealliance/componentize-js/src/cli.js" \
    tasks.js --wit wit -n js-tasks-world -d http -d fetch-event --wizer-bin "$stage/wizer" \
    -o "$out" >/dev/null)
  rm -rf "$stage"
  ;;
c)
  need "$tools/bin/wit-bindgen" "C (wit-bindgen)"
  need "$tools/bin/wasm-tools" "C (wasm-tools)"
  need "$tools/wasi_snapshot_preview1.reactor.wasm" "C (WASI preview1 adapter)"
  if ! command -v clang >/dev/null || [[ ! -d /usr/include/wasm32-wasi ]]; then
    echo "error: the C toolchain is missing (clang and wasi-libc); install it with \`make polyglot-tools\`" >&2
    exit 1
  fi
  stage=$(mktemp -d -t cachehost-c.XXXXXX)
  trap 'rm -rf "$stage"' EXIT
  if ! log=$("$tools/bin/wit-bindgen" c "$wit" --world c-tasks-world --out-dir "$stage" 2>&1); then
    echo "$log" >&2
    exit 1
  fi
  # The SDK header (guest-sdk/c); a source folder that brings its own copy overrides it.
  cp "$root/guest-sdk/c/cachehost.h" "$stage/"
  cp "$src"/*.c "$stage/"
  if compgen -G "$src/*.h" >/dev/null; then cp "$src"/*.h "$stage/"; fi
  (cd "$stage" && clang --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra -Werror \
    -Wno-unused-parameter -s -I. -o core.wasm ./*.c c_tasks_world_component_type.o)
  "$tools/bin/wasm-tools" component new "$stage/core.wasm" \
    --adapt "wasi_snapshot_preview1=$tools/wasi_snapshot_preview1.reactor.wasm" -o "$out"
  ;;
*)
  echo "error: unknown language $lang: use py, js or c" >&2
  exit 2
  ;;
esac
