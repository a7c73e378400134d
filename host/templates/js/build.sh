#!/usr/bin/env bash
# Builds {{name}}.wasm from tasks.js with componentize-js 0.23.0
# (`npm install @bytecodealliance/componentize-js@0.23.0`). COMPONENTIZE_JS names the tool,
# else $CACHEHOST_TOOLS/npm/node_modules/.bin/componentize-js (a cachehost checkout's
# .tools, made by `make polyglot-tools`), else componentize-js on the PATH.
set -euo pipefail
cd "$(dirname "$0")"
tool=${COMPONENTIZE_JS:-${CACHEHOST_TOOLS:+$CACHEHOST_TOOLS/npm/node_modules/.bin/componentize-js}}
tool=${tool:-componentize-js}
# -d http -d fetch-event: no wasi:http import, which cachehost does not provide.
"$tool" tasks.js --wit wit -n {{name}} -d http -d fetch-event -o {{name}}.wasm
echo "built {{name}}.wasm"
