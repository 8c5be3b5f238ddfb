#!/bin/sh
# CTest entry: installs the npm clients (once, or when package.json changed) and runs every test*.mjs here, each
# against its own `mnemos serve`. usage: run.sh MNEMOS_BINARY MODEL_GGUF
set -e
cd "$(dirname "$0")"
if [ ! -f node_modules/.installed ] || [ package.json -nt node_modules/.installed ]; then
    npm install --no-audit --no-fund --no-package-lock >/dev/null
    touch node_modules/.installed
fi
failed=0
for t in test*.mjs; do
    echo "== $t"
    node "$t" "$@" || { echo "FAILED: $t"; failed=1; }
done
exit $failed
