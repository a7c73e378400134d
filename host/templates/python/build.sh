#!/usr/bin/env bash
# Builds {{name}}.wasm from app.py with componentize-py 0.25.1 (`pip install componentize-py==0.25.1`).
# COMPONENTIZE_PY names the tool, else $CACHEHOST_TOOLS/venv/bin/componentize-py (a cachehost
# checkout's .tools, made by `make polyglot-tools`), else componentize-py on the PATH.
set -euo pipefail
cd "$(dirname "$0")"
tool=${COMPONENTIZE_PY:-${CACHEHOST_TOOLS:+$CACHEHOST_TOOLS/venv/bin/componentize-py}}
tool=${tool:-componentize-py}
# The cachehost package beside app.py is the SDK; no other site-packages enter the component.
empty=$(mktemp -d)
trap 'rm -rf "$empty"' EXIT
mkdir -p "$empty/lib/site-packages"
VIRTUAL_ENV=$empty "$tool" -d wit -w {{name}} componentize app -o {{name}}.wasm
echo "built {{name}}.wasm"
