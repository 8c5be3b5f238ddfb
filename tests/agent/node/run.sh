#!/bin/sh
# CTest entry: installs the openai npm client (once) and runs test.mjs.
# usage: run.sh MNEMOS_BINARY MODEL_GGUF
set -e
cd "$(dirname "$0")"
if [ ! -d node_modules/openai ]; then
    npm install --no-audit --no-fund --no-package-lock >/dev/null
fi
exec node test.mjs "$@"
